//! `series --build` / `--kunit`: the series proven by the kernel's own build.
//!
//! A maintainer's first question about a series is "does every patch
//! build?". This module answers it with the tree's own Kbuild, patch by
//! patch, in a private copy of the tree — never the user's:
//!
//! 1. **Work tree.** `$XDG_CACHE_HOME/gmemforge/kbuild/<key>/src`, keyed by
//!    the base (a git commit, a tarball's path, size and time, or a
//!    directory's path), made once: a tarball is unpacked with `tar`, a git
//!    commit's tree is written out through libgit2, a directory is copied
//!    (hard links where it can: patched files are replaced, never written
//!    through, so the user's files stay as they are).
//!    A directory's copy is made again when any of its files changed
//!    since (path, size and time of every file). Before a file is first
//!    patched its base text is saved under `base/`;
//!    each run starts by putting those back (and removing the files the
//!    series created, marked under `absent/`), so a rerun rebuilds only
//!    what the series changes.
//! 2. **Configuration.** `x86_64_defconfig`, then KVM, KVM_AMD,
//!    KVM_AMD_SEV (with what SEV needs: the PSP driver), KUNIT, and every
//!    `config` symbol a patch adds to a Kconfig file, then `olddefconfig`.
//!    Objects go to `out/` (`O=`), so the source stays clean for kunit.py.
//! 3. **Every prefix.** The base, then the base plus patches 1..k for each
//!    k: `make W=1 arch/x86/kvm/` (which holds virt/kvm's objects on x86).
//!    A build error names the patch, the file and line. A warning in a file
//!    the series touched that the base build of that file did not have is
//!    a failure of the patch that introduced it.
//! 4. **KUnit** (`--kunit`): `tools/testing/kunit/kunit.py run
//!    --arch=x86_64 --kunitconfig=DIR` for each directory whose
//!    `.kunitconfig` the series writes next to its suites, in its own build
//!    directory, under QEMU; the suite results as kunit.py reports them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use gmem_checker::tree::TreeSource;

use crate::Error;

/// One patch as the build sees it: its subject and the files it leaves.
pub struct Patch<'a> {
    /// The subject line.
    pub subject: &'a str,
    /// Path → contents after the patch (cumulative texts of its files).
    pub files: &'a BTreeMap<String, String>,
}

/// What one prefix's build did.
#[derive(Debug, Clone)]
pub struct PrefixResult {
    /// `base` or the patch's subject.
    pub label: String,
    /// Objects compiled.
    pub objects: usize,
    /// Warnings in touched files that the base did not have.
    pub new_warnings: Vec<String>,
    /// The first build error, if the build failed.
    pub error: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

/// What `--kunit` found.
#[derive(Debug, Clone, Default)]
pub struct KunitResult {
    /// Suite → (passed, failed, skipped).
    pub suites: BTreeMap<String, (u32, u32, u32)>,
    /// kunit.py's closing line.
    pub summary: String,
    /// Whether kunit.py reported success.
    pub passed: bool,
    /// Wall time.
    pub seconds: f64,
}

/// The kernel configuration every build starts from, beyond defconfig.
pub const BASE_CONFIG: &[&str] = &[
    "KVM",
    "KVM_AMD",
    "KVM_AMD_SEV",
    "CRYPTO_HW",
    "CRYPTO_DEV_CCP",
    "CRYPTO_DEV_CCP_DD",
    "CRYPTO_DEV_SP_PSP",
    "AMD_MEM_ENCRYPT",
    "KUNIT",
];

/// Symbols turned off for the build: warnings stay warnings.
const NO_WERROR: &[&str] = &["WERROR", "KVM_WERROR"];

/// The private build area of one base tree.
pub struct Area {
    root: PathBuf,
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(format!("{}: {e}", what.display()))
}

fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("gmemforge")
        .join("kbuild")
}

/// Areas unused for this long are removed.
const AREA_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);
/// At most this many areas stay (least recently used go first) ...
const AREA_MAX_COUNT: usize = 4;
/// ... but never one used within this time: another run may be building
/// in it (each prefix marks the area).
const AREA_BUSY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes build areas under `cache` other than `keep`: those unused for
/// `AREA_MAX_AGE`, then the least recently used beyond `AREA_MAX_COUNT`
/// that are not busy. Only directories with a `last-used` stamp are
/// areas; anything else under `cache` is left alone. Returns what went.
fn prune(cache: &Path, keep: &Path, now: std::time::SystemTime) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut areas: Vec<(std::time::Duration, PathBuf)> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != keep)
        .filter_map(|p| {
            let used = std::fs::metadata(p.join("last-used"))
                .and_then(|m| m.modified())
                .ok()?;
            Some((now.duration_since(used).unwrap_or_default(), p))
        })
        .collect();
    // Oldest first.
    areas.sort_by_key(|a| std::cmp::Reverse(a.0));
    let mut left = areas.len() + 1;
    let mut gone = Vec::new();
    for (age, p) in areas {
        let stale = age > AREA_MAX_AGE || (left > AREA_MAX_COUNT && age > AREA_BUSY);
        if stale && std::fs::remove_dir_all(&p).is_ok() {
            left -= 1;
            gone.push(p);
        }
    }
    gone
}

/// A stable key for the base: what it is, not where the user ran from.
fn key_of(src: &TreeSource, commit: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match src {
        TreeSource::Git { .. } => ("git", commit.unwrap_or("")).hash(&mut h),
        TreeSource::Tarball(p) => {
            let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let meta = std::fs::metadata(p).ok();
            (
                "tarball",
                canon,
                meta.as_ref().map(|m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
                .hash(&mut h);
        }
        // One area per directory; whether its copy is still the user's
        // tree is `fingerprint`'s to say.
        TreeSource::Dir(p) => (
            "dir",
            std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
        )
            .hash(&mut h),
    }
    format!("{:016x}", h.finish())
}

/// Every file of a directory tree (but `.git`) by path, size and
/// modification time, hashed: a file the user edited since the copy was
/// made changes it, so the copy is made again rather than built stale.
/// A stat per file: about a second for a whole kernel.
fn fingerprint(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if d == dir && e.file_name() == ".git" {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else {
                (
                    p.strip_prefix(dir).unwrap_or(&p),
                    m.len(),
                    m.modified().ok(),
                )
                    .hash(&mut h);
            }
        }
    }
    format!("{:016x}\n", h.finish())
}

/// Whether `dir` is a whole kernel source, as `make` needs it.
fn is_full_kernel(dir: &Path) -> bool {
    [
        "Makefile",
        "Kconfig",
        "scripts/Makefile.build",
        "arch/x86/Makefile",
        "arch/x86/kvm/Makefile",
    ]
    .iter()
    .all(|p| dir.join(p).is_file())
}

impl Area {
    /// The area for `src` (a git commit, tarball or directory), with its
    /// work tree made if it is not there yet. A tree that cannot be built
    /// (partial, no Makefile) is bad input.
    pub fn open(src: &TreeSource, commit: Option<&str>, say: &dyn Fn(&str)) -> Result<Area, Error> {
        let root = cache_root().join(key_of(src, commit));
        // Each area is a whole kernel plus its objects (GBs): old ones go.
        for gone in prune(&cache_root(), &root, std::time::SystemTime::now()) {
            say(&format!("removed the unused build area {}", gone.display()));
        }
        let area = Area { root };
        area.touch()?;
        let work = area.src();
        // What the copy was made from: a directory's fingerprint (its
        // files change in place), nothing for a commit or a tarball (the
        // key names them exactly).
        let made_from = match src {
            TreeSource::Dir(d) => fingerprint(d),
            _ => String::new(),
        };
        let done = area.root.join("src.complete");
        if std::fs::read_to_string(&done).ok().as_deref() != Some(made_from.as_str()) {
            let _ = std::fs::remove_dir_all(&work);
            let _ = std::fs::remove_dir_all(area.root.join("base"));
            let _ = std::fs::remove_dir_all(area.root.join("absent"));
            let _ = std::fs::remove_dir_all(area.root.join("out"));
            std::fs::create_dir_all(&work).map_err(io(&work))?;
            say("making a private copy of the tree to build in");
            match src {
                TreeSource::Tarball(p) => unpack_tarball(p, &work)?,
                TreeSource::Git { repo, .. } => {
                    write_git_tree(repo, commit.unwrap_or("HEAD"), &work)?
                }
                TreeSource::Dir(d) => copy_dir(d, &work)?,
            }
            if !is_full_kernel(&work) {
                let _ = std::fs::remove_dir_all(&area.root);
                return Err(Error::input(format!(
                    "--build: {} is not a whole kernel source (needs Makefile, Kconfig, scripts/ and \
                     arch/x86/kvm/Makefile); a partial tree cannot be built",
                    match src {
                        TreeSource::Tarball(p) | TreeSource::Dir(p) => p.display().to_string(),
                        TreeSource::Git { repo, rev } => format!("{}@{rev}", repo.display()),
                    }
                )));
            }
            std::fs::write(&done, &made_from).map_err(io(&done))?;
        }
        Ok(area)
    }

    /// Marks the area as in use now (`prune` keeps areas by this time).
    fn touch(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let stamp = self.root.join("last-used");
        std::fs::write(&stamp, b"").map_err(io(&stamp))
    }

    /// A file of the work tree as the last build left it (the whole
    /// series applied, after `build_every_prefix`).
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.src().join(path)).ok()
    }

    fn src(&self) -> PathBuf {
        self.root.join("src")
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    /// Puts back the base text of every file an earlier run patched.
    fn restore(&self) -> Result<(), Error> {
        let base = self.root.join("base");
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p.strip_prefix(&base).unwrap_or(&p);
                let target = self.src().join(rel);
                let text = std::fs::read(&p).map_err(io(&p))?;
                if std::fs::read(&target).ok().as_deref() != Some(&text[..]) {
                    write_new(&target, &text)?;
                }
            }
        }
        // Files the series created: gone again.
        let absent = self.root.join("absent");
        let mut stack = vec![absent.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let target = self.src().join(p.strip_prefix(&absent).unwrap_or(&p));
                match std::fs::remove_file(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&target)(e)),
                }
            }
        }
        Ok(())
    }

    /// Writes `files` into the work tree, saving each file's base text
    /// the first time it is patched.
    fn apply(&self, files: &BTreeMap<String, String>) -> Result<(), Error> {
        for (path, text) in files {
            let target = self.src().join(path);
            let saved = self.root.join("base").join(path);
            let absent = self.root.join("absent").join(path);
            if !saved.exists() && !absent.exists() {
                // A file the series creates (a KUnit suite's `_test.c`,
                // `.kunitconfig`) is marked absent, so restore() removes it.
                let (mark, base) = match std::fs::read(&target) {
                    Ok(b) => (saved, b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (absent, Vec::new()),
                    Err(e) => return Err(io(&target)(e)),
                };
                std::fs::create_dir_all(mark.parent().unwrap_or(&self.root)).map_err(io(&mark))?;
                std::fs::write(&mark, base).map_err(io(&mark))?;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            if std::fs::read_to_string(&target).ok().as_deref() != Some(text.as_str()) {
                write_new(&target, text.as_bytes())?;
            }
        }
        Ok(())
    }

    fn make(&self, jobs: u32) -> Command {
        let mut c = Command::new("make");
        c.current_dir(self.src())
            .arg(format!("O={}", self.out().display()))
            .arg(format!("-j{jobs}"))
            // Cargo's jobserver is not ours to join.
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("CARGO_MAKEFLAGS");
        c
    }

    /// Makes sure `out/.config` has the base configuration and `extra`.
    fn configure(&self, jobs: u32, extra: &BTreeSet<String>) -> Result<(), Error> {
        let config = self.out().join(".config");
        if !config.exists() {
            std::fs::create_dir_all(self.out()).map_err(io(&self.out()))?;
            run_quiet(
                self.make(jobs).arg("x86_64_defconfig"),
                "make x86_64_defconfig",
            )?;
        }
        let mut cmd = Command::new(self.src().join("scripts/config"));
        cmd.arg("--file").arg(&config);
        for sym in BASE_CONFIG
            .iter()
            .map(|s| (*s).to_owned())
            .chain(extra.iter().cloned())
        {
            cmd.arg("-e").arg(sym);
        }
        // A new warning is told apart from the base's by comparing the
        // two builds: -Werror (KVM_WERROR, default y on x86_64) would turn
        // it into an error that hides which patch brought what.
        for sym in NO_WERROR {
            cmd.arg("-d").arg(sym);
        }
        run_quiet(&mut cmd, "scripts/config")?;
        run_quiet(self.make(jobs).arg("olddefconfig"), "make olddefconfig")?;
        Ok(())
    }

    /// `make W=1 arch/x86/kvm/`: objects compiled, warnings and the
    /// first error, as (path relative to the tree, message) pairs.
    fn build(&self, jobs: u32) -> Result<Built, Error> {
        let mut child = self
            .make(jobs)
            .arg("W=1")
            .arg("arch/x86/kvm/")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::input(format!("--build: cannot run make: {e} (install make)")))?;
        let stderr = child.stderr.take();
        let err_lines = std::thread::spawn(move || {
            stderr
                .map(|s| {
                    BufReader::new(s)
                        .lines()
                        .map_while(Result::ok)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        let out_lines: Vec<String> = child
            .stdout
            .take()
            .map(|s| BufReader::new(s).lines().map_while(Result::ok).collect())
            .unwrap_or_default();
        let status = child.wait().map_err(|e| Error::io(format!("make: {e}")))?;
        let err_lines = err_lines.join().unwrap_or_default();
        let src = self.src();
        let mut built = Built {
            ok: status.success(),
            objects: out_lines
                .iter()
                .filter(|l| l.trim_start().starts_with("CC"))
                .count(),
            ..Built::default()
        };
        for l in &err_lines {
            if let Some(d) = diagnostic(l, &src) {
                match d.kind {
                    "warning" => built.warnings.push(d),
                    _ => built.errors.push(d),
                }
            }
        }
        if !built.ok && built.errors.is_empty() {
            let tail: Vec<&str> = err_lines.iter().rev().take(5).map(String::as_str).collect();
            built.errors.push(Diagnostic {
                file: String::new(),
                line: 0,
                kind: "error",
                message: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        Ok(built)
    }
}

#[derive(Debug, Default)]
struct Built {
    ok: bool,
    objects: usize,
    warnings: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Diagnostic {
    file: String,
    line: u32,
    kind: &'static str,
    message: String,
}

impl Diagnostic {
    /// What identifies a warning across builds: file and text, not line.
    fn key(&self) -> (String, String) {
        (self.file.clone(), self.message.clone())
    }
}

/// `path:line:col: warning|error: text` from gcc, with the path made
/// relative to the tree (Kbuild with O= names sources by absolute or
/// `../`-relative paths).
fn diagnostic(line: &str, src: &Path) -> Option<Diagnostic> {
    let (kind, at) = [
        ("error", ": error: "),
        ("warning", ": warning: "),
        ("error", ": fatal error: "),
    ]
    .into_iter()
    .find_map(|(k, pat)| line.find(pat).map(|i| (k, (i, pat.len()))))?;
    let (head, message) = (&line[..at.0], &line[at.0 + at.1..]);
    let mut parts = head.rsplitn(3, ':');
    let _col = parts.next()?;
    let line_no: u32 = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    let src_s = src.display().to_string();
    let rel = file
        .strip_prefix(&src_s)
        .map(|r| r.trim_start_matches('/').to_owned())
        // `../src/arch/...`: out/ and src/ are siblings in the area.
        .or_else(|| file.strip_prefix("../src/").map(str::to_owned))
        .unwrap_or_else(|| file.to_owned());
    Some(Diagnostic {
        file: lexical(&rel),
        line: line_no,
        kind,
        message: message.to_owned(),
    })
}

/// `arch/x86/kvm/../../../virt/kvm/x.c` as `virt/kvm/x.c` (Kbuild names
/// virt/kvm's sources from arch/x86/kvm/ on x86).
fn lexical(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(c),
        }
    }
    parts.join("/")
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let o = cmd
        .env_remove("MAKEFLAGS")
        .output()
        .map_err(|e| Error::input(format!("--build: cannot run {what}: {e}")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(Error::io(format!(
            "--build: {what} failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )))
    }
}

fn unpack_tarball(p: &Path, into: &Path) -> Result<(), Error> {
    let o = Command::new("tar")
        .arg("-xf")
        .arg(p)
        .arg("-C")
        .arg(into)
        .arg("--strip-components=1")
        .output()
        .map_err(|e| Error::io(format!("tar: {e}")))?;
    if !o.status.success() {
        return Err(Error::input(format!(
            "--build: {}: cannot unpack: {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    // Hard links first (`cp -al`): seconds, not a minute, for a whole
    // kernel, and no second copy on disk. Safe because nothing writes
    // into a linked file: `write_new` replaces a file with a new inode,
    // and Kbuild with O= writes only to out/. Across file systems links
    // cannot be made: a real copy then.
    for flags in ["-al", "-a"] {
        let o = Command::new("cp")
            .arg(flags)
            .arg(from.join("."))
            .arg(to)
            .output()
            .map_err(|e| Error::io(format!("cp: {e}")))?;
        if o.status.success() {
            return Ok(());
        }
        if flags == "-a" {
            return Err(Error::io(format!(
                "--build: copying {}: {}",
                from.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        let _ = std::fs::remove_dir_all(to);
        std::fs::create_dir_all(to).map_err(io(to))?;
    }
    Ok(())
}

/// Replaces `path` with a new file holding `bytes`: unlinked first, so a
/// hard link into the user's tree is never written through.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("{}: {e}", path.display()))),
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// Writes the tree of `rev` (blobs, executable bits, symbolic links)
/// under `into`, reading the repository's objects only.
fn write_git_tree(repo: &Path, rev: &str, into: &Path) -> Result<(), Error> {
    let git = |e: git2::Error| Error::internal(format!("{}: {}", repo.display(), e.message()));
    let r = git2::Repository::open(repo).map_err(git)?;
    let tree = r
        .revparse_single(rev)
        .and_then(|o| o.peel_to_tree())
        .map_err(git)?;
    let mut result = Ok(());
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let Some(name) = entry.name() else {
            return git2::TreeWalkResult::Ok;
        };
        let path = into.join(dir).join(name);
        let step = || -> Result<(), Error> {
            match entry.kind() {
                Some(git2::ObjectType::Tree) => std::fs::create_dir_all(&path).map_err(io(&path)),
                Some(git2::ObjectType::Blob) => {
                    let blob = r.find_blob(entry.id()).map_err(git)?;
                    if entry.filemode() == 0o120000 {
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        std::os::unix::fs::symlink(target, &path).map_err(io(&path))
                    } else {
                        std::fs::write(&path, blob.content()).map_err(io(&path))?;
                        if entry.filemode() == 0o100755 {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                                .map_err(io(&path))?;
                        }
                        Ok(())
                    }
                }
                _ => Ok(()),
            }
        };
        match step() {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                result = Err(e);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .map_err(git)?;
    result
}

/// `config FOO` lines a patch adds to Kconfig files (those not in the
/// base text).
fn added_symbols(area: &Area, files: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, text) in files {
        if !path.ends_with("Kconfig") {
            continue;
        }
        let saved = area.root.join("base").join(path);
        let base = std::fs::read_to_string(&saved)
            .or_else(|_| std::fs::read_to_string(area.src().join(path)))
            .unwrap_or_default();
        let syms = |t: &str| -> BTreeSet<String> {
            t.lines()
                .filter_map(|l| l.trim().strip_prefix("config "))
                .map(|s| s.trim().to_owned())
                .collect()
        };
        out.extend(syms(text).difference(&syms(&base)).cloned());
    }
    out
}

/// Builds the base and every prefix of `patches`; one line per prefix
/// through `say`. `Ok` holds one result per prefix (base first); the run
/// stops at the first prefix that fails.
pub fn build_every_prefix(
    area: &Area,
    patches: &[Patch<'_>],
    jobs: u32,
    say: &dyn Fn(&str),
) -> Result<Vec<PrefixResult>, Error> {
    area.restore()?;
    let mut symbols = BTreeSet::new();
    let mut results = Vec::new();
    // Warnings of the base, by file and text, with how often each showed.
    let mut base_warnings: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut configured = 0;
    for k in 0..=patches.len() {
        let t = Instant::now();
        let label = if k == 0 {
            "base".to_owned()
        } else {
            let p = &patches[k - 1];
            symbols.extend(added_symbols(area, p.files));
            area.apply(p.files)?;
            touched.extend(p.files.keys().cloned());
            format!("{}/{} {}", k, patches.len(), p.subject)
        };
        say(&format!("building {label}"));
        area.touch()?;
        // Reconfiguring makes Kbuild re-run syncconfig and its compiler
        // probes (a minute on two cores): only when a symbol was added.
        if k == 0 || symbols.len() > configured {
            area.configure(jobs, &symbols)?;
            configured = symbols.len();
        }
        let built = area.build(jobs)?;
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for w in &built.warnings {
            *counts.entry(w.key()).or_default() += 1;
        }
        let new_warnings = if k == 0 {
            base_warnings = counts;
            Vec::new()
        } else {
            built
                .warnings
                .iter()
                .filter(|w| touched.contains(&w.file))
                .filter(|w| counts[&w.key()] > base_warnings.get(&w.key()).copied().unwrap_or(0))
                .map(|w| format!("{}:{}: warning: {}", w.file, w.line, w.message))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let error = (!built.ok).then(|| {
            built
                .errors
                .first()
                .map(|e| format!("{}:{}: {}: {}", e.file, e.line, e.kind, e.message))
                .unwrap_or_else(|| "make failed".into())
        });
        let r = PrefixResult {
            label,
            objects: built.objects,
            new_warnings,
            error,
            seconds: t.elapsed().as_secs_f64(),
        };
        let failed = r.error.is_some() || !r.new_warnings.is_empty();
        results.push(r);
        if failed {
            break;
        }
    }
    Ok(results)
}

/// Runs the series' KUnit suites with kunit.py under QEMU, with the whole
/// series applied: `--kunitconfig` is each directory whose `.kunitconfig`
/// the series writes (kunit.py merges them), so what runs is what a
/// developer gets from the patched tree with
/// `kunit.py run --arch=x86_64 --kunitconfig=virt/kvm`.
pub fn run_kunit(area: &Area, dirs: &[String], jobs: u32) -> Result<KunitResult, Error> {
    let t = Instant::now();
    if dirs.is_empty() {
        return Err(Error::input(
            "--kunit: the series adds no KUnit suite (no .kunitconfig) to run".to_owned(),
        ));
    }
    let dir = area.root.join("kunit");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let o = Command::new("python3")
        .current_dir(area.src())
        .arg("tools/testing/kunit/kunit.py")
        .arg("run")
        .arg("--arch=x86_64")
        .arg(format!("--build_dir={}", dir.join("build").display()))
        .args(dirs.iter().map(|d| format!("--kunitconfig={d}")))
        .arg(format!("--jobs={jobs}"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .map_err(|e| {
            Error::input(format!(
                "--kunit: cannot run kunit.py: {e} (install python3)"
            ))
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut r = parse_kunit(&text);
    r.passed = o.status.success() && r.summary.contains("Testing complete");
    r.seconds = t.elapsed().as_secs_f64();
    if r.summary.is_empty() {
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        r.summary = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    }
    Ok(r)
}

/// kunit.py's parsed output: `===== suite (N subtests) =====` headers,
/// `[PASSED] case`, `[FAILED] case`, `[SKIPPED] case`, and the closing
/// `Testing complete. Ran N tests: ...` line.
fn parse_kunit(text: &str) -> KunitResult {
    let mut r = KunitResult::default();
    let mut suite = String::new();
    for raw in text.lines() {
        // kunit.py prefixes lines with a [hh:mm:ss] time stamp.
        let l = match raw.find("] ") {
            Some(i) if raw.starts_with('[') => raw[i + 2..].trim(),
            _ => raw.trim(),
        };
        if l.starts_with("=====") && l.contains('(') {
            let name = l.trim_matches('=').trim();
            suite = name.split(" (").next().unwrap_or(name).to_owned();
            r.suites.entry(suite.clone()).or_default();
        } else if let Some(e) = r.suites.get_mut(&suite) {
            if l.starts_with("[PASSED]") {
                e.0 += 1;
            } else if l.starts_with("[FAILED]") {
                e.1 += 1;
            } else if l.starts_with("[SKIPPED]") {
                e.2 += 1;
            }
        }
        if l.starts_with("Testing complete.") {
            r.summary = l.to_owned();
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_made_tree_relative() {
        let src = Path::new("/c/kbuild/1/src");
        let d = diagnostic(
            "/c/kbuild/1/src/virt/kvm/guest_memfd.c:120:9: warning: unused variable 'x' [-Wunused-variable]",
            src,
        )
        .expect("a warning");
        assert_eq!(d.file, "virt/kvm/guest_memfd.c");
        assert_eq!((d.line, d.kind), (120, "warning"));
        let d = diagnostic(
            "../src/arch/x86/kvm/mmu/mmu.c:5:1: error: expected ';'",
            src,
        )
        .expect("an error");
        assert_eq!(
            (d.file.as_str(), d.kind),
            ("arch/x86/kvm/mmu/mmu.c", "error")
        );
        assert!(diagnostic("  CC      arch/x86/kvm/x86.o", src).is_none());
        let d = diagnostic(
            "../src/arch/x86/kvm/../../../virt/kvm/guest_memfd.c:145:13: warning: unused variable 'x'",
            src,
        )
        .expect("a warning");
        assert_eq!(d.file, "virt/kvm/guest_memfd.c");
    }

    #[test]
    fn old_and_surplus_build_areas_go_busy_and_foreign_ones_stay() {
        use std::time::{Duration, SystemTime};
        let c = std::env::temp_dir().join(format!("gmf-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&c);
        let area = |name: &str| {
            let p = c.join(name);
            std::fs::create_dir_all(p.join("src")).expect("mkdir");
            std::fs::write(p.join("last-used"), b"").expect("stamp");
            p
        };
        let names = ["a", "b", "c", "d", "e"];
        for n in names {
            area(n);
        }
        std::fs::create_dir_all(c.join("not-an-area")).expect("mkdir");
        let hour = Duration::from_secs(3600);
        // All just used: five areas plus the one opened, none removed.
        assert!(prune(&c, &c.join("new"), SystemTime::now()).is_empty());
        // Two hours later: the surplus goes (4 kept counting the new one).
        let gone = prune(&c, &c.join("new"), SystemTime::now() + 2 * hour);
        assert_eq!(gone.len(), 2, "{gone:?}");
        // A month later every unused one goes; the opened one and what is
        // not an area stay.
        let gone = prune(&c, &c.join("a"), SystemTime::now() + 30 * 24 * hour);
        assert!(!gone.contains(&c.join("a")));
        assert!(c.join("not-an-area").exists());
        let left: Vec<_> = names.iter().filter(|n| c.join(n).exists()).collect();
        assert!(left.len() <= 1, "{left:?}");
        let _ = std::fs::remove_dir_all(&c);
    }

    #[test]
    fn a_directory_edited_in_place_has_another_fingerprint() {
        let d = std::env::temp_dir().join(format!("gmf-fingerprint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("virt/kvm")).expect("mkdir");
        std::fs::create_dir_all(d.join(".git")).expect("mkdir");
        std::fs::write(d.join("virt/kvm/guest_memfd.c"), "int a;\n").expect("write");
        let before = fingerprint(&d);
        assert_eq!(fingerprint(&d), before, "stable");
        std::fs::write(d.join(".git/index"), "x").expect("git");
        assert_eq!(fingerprint(&d), before, ".git is not the tree");
        std::fs::write(d.join("virt/kvm/guest_memfd.c"), "int ab;\n").expect("edit");
        assert_ne!(fingerprint(&d), before, "an edit is seen");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn kunit_output_is_read_per_suite() {
        let out = "\
[10:00:01] ============ kvm_guest_memfd (2 subtests) ============\n\
[10:00:01] [PASSED] invalidate-001\n\
[10:00:01] [FAILED] invalidate-002\n\
[10:00:01] ============ kvm_mmu_private_rule (1 subtest) ========\n\
[10:00:01] [PASSED] classify-001\n\
[10:00:02] Testing complete. Ran 3 tests: passed: 2, failed: 1\n";
        let r = parse_kunit(out);
        assert_eq!(r.suites["kvm_guest_memfd"], (1, 1, 0));
        assert_eq!(r.suites["kvm_mmu_private_rule"], (1, 0, 0));
        assert!(r.summary.starts_with("Testing complete. Ran 3 tests"));
    }
}
