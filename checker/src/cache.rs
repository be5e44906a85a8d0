//! The compile cache's integrity: what is loaded is what was built.
//!
//! Each cached shared object `impl.so` has a seal beside it,
//! `impl.so.sum`: its length and FNV-1a 64-bit hash. The seal is written
//! (atomically, under a temporary name then renamed) before the object is
//! renamed into place, and checked before every load. A truncated object
//! would otherwise kill the process with SIGBUS inside dlopen, and a
//! garbage one would fail to load on every later run; either way the
//! entry is thrown away and rebuilt, and never becomes a verdict about
//! the C under test.
//!
//! The cache is pruned when an entry is added: entries unused for
//! [`MAX_AGE`] go, and beyond [`MAX_ENTRIES`] the least recently used go
//! (a load refreshes the seal's modification time).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::compile::CompileError;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 64;
/// Entries unused for this long are removed.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The seal of `bytes`: length and FNV-1a 64.
pub fn seal_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{} {h:016x}\n", bytes.len())
}

fn sum_path(lib: &Path) -> std::path::PathBuf {
    lib.with_extension("so.sum")
}

/// Whether `lib` exists and matches its seal; refreshes the seal's time
/// when it does (least recently used pruning).
pub fn verified(lib: &Path) -> bool {
    let sum = sum_path(lib);
    let (Ok(bytes), Ok(expected)) = (fs::read(lib), fs::read_to_string(&sum)) else {
        return false;
    };
    if seal_of(&bytes) != expected {
        return false;
    }
    let _ = fs::File::options()
        .append(true)
        .open(&sum)
        .and_then(|f| f.set_modified(SystemTime::now()));
    true
}

/// Removes `lib` and its seal (another process may be rebuilding it: both
/// removals may find nothing).
pub fn forget(lib: &Path) {
    let _ = fs::remove_file(sum_path(lib));
    let _ = fs::remove_file(lib);
}

/// Seals the freshly built `tmp` and renames it to `lib`.
pub fn seal(tmp: &Path, lib: &Path) -> Result<(), CompileError> {
    let io = |e: std::io::Error, p: &Path| CompileError::Io(format!("{}: {e}", p.display()));
    let bytes = fs::read(tmp).map_err(|e| io(e, tmp))?;
    let sum = sum_path(lib);
    let sum_tmp = sum.with_extension(format!("sum.tmp{}", std::process::id()));
    fs::write(&sum_tmp, seal_of(&bytes))
        .and_then(|()| fs::rename(&sum_tmp, &sum))
        .map_err(|e| io(e, &sum))?;
    fs::rename(tmp, lib).map_err(|e| io(e, lib))
}

/// Whether a directory name is a cache key (16 hex digits): nothing else
/// under the cache root is ever removed.
fn is_key(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Prunes `root`, keeping `keep` (the entry just built).
pub fn prune(root: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let now = SystemTime::now();
    let mut found: Vec<(SystemTime, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| is_key(&e.file_name().to_string_lossy()) && e.path() != keep)
        .map(|e| {
            let used = fs::metadata(e.path().join("impl.so.sum"))
                .or_else(|_| e.metadata())
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (used, e.path())
        })
        .collect();
    // Newest first; the one just built counts as one of the kept.
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (i, (used, path)) in found.iter().enumerate() {
        let old = now.duration_since(*used).unwrap_or_default() > MAX_AGE;
        if old || i + 1 >= MAX_ENTRIES {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// The seal of a small cached file: `<name>.sum` beside it.
fn file_sum(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sum");
    path.with_file_name(name)
}

/// Writes a small cache file (a verdict) sealed as the objects are: the
/// seal first, then the file, each under a temporary name renamed into
/// place, so a reader sees a whole pair or a pair that does not verify.
pub fn write_sealed(path: &Path, bytes: &[u8]) -> Result<(), CompileError> {
    let io = |e: std::io::Error, p: &Path| CompileError::Io(format!("{}: {e}", p.display()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
    }
    let sum = file_sum(path);
    let pid = std::process::id();
    let sum_tmp = sum.with_extension(format!("sum.tmp{pid}"));
    fs::write(&sum_tmp, seal_of(bytes))
        .and_then(|()| fs::rename(&sum_tmp, &sum))
        .map_err(|e| io(e, &sum))?;
    let tmp = path.with_extension(format!("tmp{pid}"));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| io(e, path))
}

/// A sealed cache file's bytes; None when it is missing or does not match
/// its seal (then both are removed: it is written again). A read
/// refreshes the seal's time, as a load does an object's.
pub fn read_sealed(path: &Path) -> Option<Vec<u8>> {
    let sum = file_sum(path);
    let (Ok(bytes), Ok(expected)) = (fs::read(path), fs::read_to_string(&sum)) else {
        return None;
    };
    if seal_of(&bytes) != expected {
        let _ = fs::remove_file(&sum);
        let _ = fs::remove_file(path);
        return None;
    }
    let _ = fs::File::options()
        .append(true)
        .open(&sum)
        .and_then(|f| f.set_modified(SystemTime::now()));
    Some(bytes)
}

/// Prunes a directory of sealed files by the objects' rules: files unused
/// for [`MAX_AGE`] go, and beyond `max` the least recently used; only
/// files `is_entry` names (and their seals) are ever removed, and `keep`
/// (the one just written) stays.
pub fn prune_files(dir: &Path, keep: &Path, max: usize, is_entry: fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut found: Vec<(SystemTime, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| is_entry(&e.file_name().to_string_lossy()) && e.path() != keep)
        .map(|e| {
            let used = fs::metadata(file_sum(&e.path()))
                .or_else(|_| e.metadata())
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (used, e.path())
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (i, (used, path)) in found.iter().enumerate() {
        let old = now.duration_since(*used).unwrap_or_default() > MAX_AGE;
        if old || i + 1 >= max {
            let _ = fs::remove_file(file_sum(path));
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gmf-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch");
        d
    }

    #[test]
    fn a_damaged_object_does_not_verify() {
        let d = scratch("seal");
        let lib = d.join("impl.so");
        let tmp = d.join("impl.so.tmp1");
        fs::write(&tmp, b"\x7fELF and the rest of a library").expect("tmp");
        seal(&tmp, &lib).expect("seal");
        assert!(verified(&lib));
        // Truncated.
        fs::write(&lib, b"\x7fELF and").expect("truncate");
        assert!(!verified(&lib));
        // Same length, other bytes.
        fs::write(&lib, b"\x7fELF and the rest of a librarY").expect("flip");
        assert!(!verified(&lib));
        // No seal at all (an object from before seals existed).
        fs::write(&lib, b"\x7fELF and the rest of a library").expect("restore");
        assert!(verified(&lib));
        fs::remove_file(d.join("impl.so.sum")).expect("rm seal");
        assert!(!verified(&lib));
        forget(&lib);
        assert!(!lib.exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_sealed_file_reads_back_only_whole() {
        let d = scratch("sealed");
        let f = d.join("v-0123.json");
        write_sealed(&f, b"{\"verdict\":\"conforms\"}").expect("write");
        assert_eq!(
            read_sealed(&f).as_deref(),
            Some(&b"{\"verdict\":\"conforms\"}"[..])
        );
        // Rewritten behind the seal's back: not read, and removed.
        fs::write(&f, b"{\"verdict\":\"diverges\"}").expect("flip");
        assert_eq!(read_sealed(&f), None);
        assert!(!f.exists() && !d.join("v-0123.json.sum").exists());
        // Pruning leaves files it does not name alone.
        for i in 0..5 {
            write_sealed(&d.join(format!("v-{i}.json")), b"x").expect("write");
        }
        fs::write(d.join("other"), b"y").expect("other");
        prune_files(&d, &d.join("v-4.json"), 3, |n| {
            n.starts_with("v-") && n.ends_with(".json")
        });
        let left: Vec<_> = fs::read_dir(&d).expect("list").flatten().collect();
        // Three kept (the one just written among them) with their seals,
        // and the foreign file.
        assert_eq!(left.len(), 7, "{left:?}");
        assert!(d.join("other").exists() && d.join("v-4.json").exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn prune_keeps_the_newest_and_only_touches_keys() {
        let d = scratch("prune");
        let keep = d.join("ffffffffffffffff");
        fs::create_dir_all(&keep).expect("keep");
        for i in 0..(MAX_ENTRIES + 5) {
            let e = d.join(format!("{i:016x}"));
            fs::create_dir_all(&e).expect("entry");
            let f = fs::File::create(e.join("impl.so.sum")).expect("sum");
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000 + i as u64))
                .expect("mtime");
        }
        fs::create_dir_all(d.join("not-a-key")).expect("other");
        prune(&d, &keep);
        let left = fs::read_dir(&d).expect("list").count();
        // MAX_ENTRIES - 1 others, the kept one, the foreign directory.
        assert_eq!(left, MAX_ENTRIES + 1);
        assert!(keep.exists() && d.join("not-a-key").exists());
        assert!(
            d.join(format!("{:016x}", MAX_ENTRIES + 4)).exists(),
            "newest kept"
        );
        assert!(!d.join(format!("{:016x}", 0)).exists(), "oldest gone");
        let _ = fs::remove_dir_all(&d);
    }
}
