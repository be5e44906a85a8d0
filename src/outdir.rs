//! Where `series` may write, and what `--force` may replace.
//!
//! The series is written into `--out`, a directory of `*.patch` files. Two
//! rules keep the user's files safe (ARCHITECTURE.md, "Invariants"):
//!
//! 1. `--out` never is, contains or lies inside the tree being read (its
//!    work tree, its git directory, or the tarball). This is decided on
//!    canonical paths before anything is written, so `.`, `..`, symbolic
//!    links and relative spellings cannot get around it.
//! 2. `--force` replaces only a directory that holds nothing but
//!    `git format-patch` files (regular files named `*.patch` that start
//!    with `From `), i.e. what an earlier `series` wrote. Anything else —
//!    a file, a directory with other files, subdirectories or links — is
//!    refused, with or without `--force`.
//!
//! The new series is built in a hidden sibling directory and renamed into
//! place; the old one is moved aside first and removed only after the new
//! one is in place, so a failure at any point leaves either the old series
//! or the new one, never half of either.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::failure::Failure;

/// The canonical form of `p`, also for a path that does not exist yet:
/// its deepest existing ancestor canonicalised, the rest appended.
fn canonical(p: &Path) -> io::Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        match fs::canonicalize(at) {
            Ok(c) => {
                let mut out = c;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(name) = at.file_name() else {
                    return Err(e);
                };
                // `..` after a missing component cannot be resolved
                // safely: refuse rather than guess.
                if name == ".." {
                    return Err(e);
                }
                rest.push(name.to_owned());
                at = match at.parent() {
                    Some(parent) => parent,
                    None => return Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// The paths that make up the user's tree: the path given as `--tree`,
/// and for a git repository its work tree and git directory.
pub fn tree_paths(tree: &Path) -> Vec<PathBuf> {
    let mut out = vec![tree.to_path_buf()];
    if let Ok(repo) = git2::Repository::open(tree) {
        out.push(repo.path().to_path_buf());
        if let Some(w) = repo.workdir() {
            out.push(w.to_path_buf());
        }
    }
    out
}

/// Refuses an `--out` that is, contains or lies inside any of `protected`.
/// Called before anything is read or written.
pub fn check_not_in_tree(out: &Path, protected: &[PathBuf]) -> Result<(), Failure> {
    let o = canonical(out).map_err(|e| Failure::input(format!("--out {}: {e}", out.display())))?;
    for p in protected {
        let Ok(t) = canonical(p) else { continue };
        let how = if o == t {
            "is"
        } else if t.starts_with(&o) {
            "contains"
        } else if o.starts_with(&t) {
            "lies inside"
        } else {
            continue;
        };
        return Err(Failure::input(format!(
            "--out {}: {how} the tree being read ({}); choose a directory outside it",
            out.display(),
            t.display()
        )));
    }
    Ok(())
}

/// Whether `dir` holds only `git format-patch` files (or nothing): the
/// only kind of directory `--force` replaces. `Err` says what else is there.
fn only_patches(dir: &Path) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list it: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list it: {e}"))?;
        let name = entry.file_name();
        let shown = name.to_string_lossy();
        let kind = entry.file_type().map_err(|e| format!("{shown}: {e}"))?;
        if !kind.is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        if !shown.ends_with(".patch") {
            return Err(format!("{shown} is not a *.patch file"));
        }
        let mut head = [0u8; 5];
        let n = fs::File::open(entry.path())
            .and_then(|mut f| io::Read::read(&mut f, &mut head))
            .map_err(|e| format!("{shown}: {e}"))?;
        if &head[..n] != b"From " {
            return Err(format!("{shown} is not a git format-patch file"));
        }
    }
    Ok(())
}

/// Refuses an existing `--out` unless `force` is given and it is a
/// directory of patches an earlier run wrote.
pub fn check_replaceable(out: &Path, force: bool) -> Result<(), Failure> {
    let meta = match fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Failure::input(format!("--out {}: {e}", out.display()))),
    };
    if !force {
        return Err(Failure::input(format!(
            "--out {}: exists; use --force to replace it (only a directory of *.patch files is replaced)",
            out.display()
        )));
    }
    if !meta.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: exists and is not a directory; --force replaces only a directory of *.patch files",
            out.display()
        )));
    }
    only_patches(out).map_err(|why| {
        Failure::input(format!(
            "--out {}: not a directory of patches gmemforge wrote ({why}); --force will not replace it",
            out.display()
        ))
    })
}

/// A sibling of `out` with a hidden, per-process name.
fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.{what}{}", std::process::id()))
}

/// Writes `files` (name, text) as the directory `out`, atomically: the
/// rules above are checked again right before anything is moved.
pub fn write(out: &Path, force: bool, files: &[(String, String)]) -> Result<(), Failure> {
    check_replaceable(out, force)?;
    let io = |e: io::Error, p: &Path| Failure::io(format!("{}: {e}", p.display()));
    let tmp = sibling(out, "tmp");
    let old = sibling(out, "old");
    // Leftovers of this very pid can only be from a run that died; both
    // names are ours alone.
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&old);
    fs::create_dir_all(&tmp).map_err(|e| io(e, &tmp))?;
    let written = files.iter().try_for_each(|(name, text)| {
        fs::write(tmp.join(name), text).map_err(|e| io(e, &tmp.join(name)))
    });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let had_old = out.exists();
    if had_old && let Err(e) = fs::rename(out, &old) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(io(e, out));
    }
    if let Err(e) = fs::rename(&tmp, out) {
        // Put the old series back before reporting.
        if had_old {
            let _ = fs::rename(&old, out);
        }
        let _ = fs::remove_dir_all(&tmp);
        return Err(io(e, out));
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gmf-outdir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    #[test]
    fn out_inside_equal_or_above_the_tree_is_refused() {
        let d = scratch("nest");
        let tree = d.join("linux");
        fs::create_dir_all(tree.join("virt")).expect("tree");
        let protected = vec![tree.clone()];
        for bad in [
            tree.clone(),
            tree.join("."),
            tree.join("virt/../"),
            d.clone(),
            tree.join("outgoing"),
            tree.join("virt/new/deeper"),
        ] {
            let e = check_not_in_tree(&bad, &protected).expect_err(&bad.display().to_string());
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(check_not_in_tree(&d.join("outgoing"), &protected).is_ok());
        // A link into the tree is the tree.
        std::os::unix::fs::symlink(&tree, d.join("link")).expect("symlink");
        assert!(check_not_in_tree(&d.join("link/out"), &protected).is_err());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn force_replaces_only_a_directory_of_patches() {
        let d = scratch("force");
        let out = d.join("series");
        fs::create_dir_all(&out).expect("out");
        fs::write(out.join("0001-a.patch"), "From abc\n").expect("patch");
        assert!(
            check_replaceable(&out, false).is_err(),
            "exists, no --force"
        );
        assert!(check_replaceable(&out, true).is_ok());
        fs::write(out.join("notes.txt"), "mine").expect("notes");
        assert!(check_replaceable(&out, true).is_err(), "a foreign file");
        fs::remove_file(out.join("notes.txt")).expect("rm");
        fs::write(out.join("x.patch"), "not a patch").expect("fake");
        assert!(check_replaceable(&out, true).is_err(), "not format-patch");
        fs::remove_file(out.join("x.patch")).expect("rm");
        fs::create_dir(out.join("sub")).expect("sub");
        assert!(check_replaceable(&out, true).is_err(), "a subdirectory");
        let file = d.join("Makefile");
        fs::write(&file, "all:\n").expect("file");
        assert!(check_replaceable(&file, true).is_err(), "a file");
        assert_eq!(fs::read_to_string(&file).expect("kept"), "all:\n");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn write_replaces_atomically_and_leaves_no_sibling() {
        let d = scratch("write");
        let out = d.join("series");
        let files = vec![("0001-x.patch".to_owned(), "From 1\n".to_owned())];
        write(&out, false, &files).expect("first write");
        let files2 = vec![("0001-y.patch".to_owned(), "From 2\n".to_owned())];
        assert!(write(&out, false, &files2).is_err(), "needs --force");
        write(&out, true, &files2).expect("replace");
        let names: Vec<_> = fs::read_dir(&d)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["series".to_owned()],
            "no temporary sibling left"
        );
        assert!(out.join("0001-y.patch").exists() && !out.join("0001-x.patch").exists());
        let _ = fs::remove_dir_all(&d);
    }
}
