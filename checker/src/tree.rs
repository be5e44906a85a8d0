//! # Kernel trees as input
//!
//! gmemforge reviews real Linux kernel trees, but only ever needs a handful of
//! their files (`virt/kvm/guest_memfd.c`, `arch/x86/kvm/svm/sev.c`, ...). This
//! module turns a `--tree PATH [--rev REV]` argument into a [`TreeSource`] and
//! loads just the wanted files of it into a read-only [`Tree`]:
//!
//! * [`TreeSource::Dir`]: a plain directory; files are read directly.
//! * [`TreeSource::Git`]: a git repository (bare or not) at a revision; blobs
//!   are read from the object database through libgit2. The work tree, the
//!   index and the refs are never read for content nor written: no checkout,
//!   no index write, no ref creation.
//! * [`TreeSource::Tarball`]: a `.tar.xz`/`.txz` or `.tar` file such as
//!   Debian's `/usr/src/linux-source-6.12.tar.xz`. It is decompressed as a
//!   stream, the single top-level directory (`linux-source-6.12/`) is
//!   stripped, and only the wanted files are kept in memory; nothing is
//!   extracted to disk and the tarball is never held whole in memory.
//!
//! Every source must look like a kernel tree: a top-level `Makefile` and a
//! top-level `virt/` or `arch/` directory. Wanted files that the tree does not
//! have are simply absent ([`Tree::has`] is false); that is not an error.
//! Everything that can go wrong is a [`TreeError`] naming the input and what
//! is wrong with it, never a panic.
//!
//! Only regular files are loaded. A wanted path that is a symbolic link in a
//! git tree or a tarball is treated as absent; in a directory the operating
//! system follows it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Where a kernel tree comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeSource {
    /// A plain directory holding a kernel tree.
    Dir(PathBuf),
    /// A git repository (bare or with a work tree) at a revision.
    ///
    /// The files are those of the commit that `rev` names, read from the
    /// object database: what is committed, never what is in the work tree
    /// or the index, even when those have uncommitted changes.
    Git {
        /// The repository: a work tree's top directory, or a bare
        /// repository (or a `.git` directory).
        repo: PathBuf,
        /// Anything `git rev-parse` accepts that names a commit (or a tag
        /// pointing at one): `HEAD`, `v6.12`, a branch, a sha.
        rev: String,
    },
    /// A `.tar.xz`, `.txz` or `.tar` archive whose entries all sit under one
    /// top-level directory, like `linux-source-6.12/`.
    Tarball(PathBuf),
}

/// What went wrong reading a tree. The message names the input and says what
/// is wrong with it, e.g. `--tree /x: no such file or directory` or
/// `--rev v9.9 in /repo: no such revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError(pub String);

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TreeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, TreeError> {
    Err(TreeError(msg.into()))
}

/// An I/O error's message without Rust's " (os error N)" suffix, lower-cased
/// like the C library's: "no such file or directory".
fn io_msg(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            let s = match s.find(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            let mut c = s.chars();
            match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => s,
            }
        }
    }
}

const TARBALL_SUFFIXES: [&str; 3] = [".tar.xz", ".txz", ".tar"];

impl TreeSource {
    /// Classifies the `--tree PATH [--rev REV]` arguments.
    ///
    /// * With `rev`, PATH must be a git repository, bare or not → [`Git`].
    /// * Without `rev`, a directory holding `.git` (or a bare repository) →
    ///   [`Git`] at `HEAD`. This reviews what is *committed*, not the work
    ///   tree: uncommitted or staged changes, even to the very files that are
    ///   reviewed, are ignored. Review a work tree's current state by copying
    ///   it, or committing first.
    /// * Any other directory → [`Dir`].
    /// * A file named `*.tar.xz`, `*.txz` or `*.tar` → [`Tarball`].
    /// * Anything else → [`TreeError`] naming PATH and why.
    ///
    /// Only the shape of PATH is checked here; whether the revision exists and
    /// whether the tree looks like a kernel is checked by [`Tree::open`].
    ///
    /// [`Git`]: TreeSource::Git
    /// [`Dir`]: TreeSource::Dir
    /// [`Tarball`]: TreeSource::Tarball
    pub fn from_arg(path: &Path, rev: Option<&str>) -> Result<TreeSource, TreeError> {
        let shown = path.display();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return err(format!("--tree {shown}: {}", io_msg(&e))),
        };
        if let Some(rev) = rev {
            if rev.is_empty() {
                return err(format!("--rev for {shown}: empty revision"));
            }
            if let Err(e) = git2::Repository::open(path) {
                let what = if meta.is_dir() {
                    "a directory"
                } else {
                    "a file"
                };
                return err(format!(
                    "--tree {shown}: --rev {rev} needs a git repository, but this is {what} \
                     that is not one ({})",
                    e.message()
                ));
            }
            return Ok(TreeSource::Git {
                repo: path.to_path_buf(),
                rev: rev.to_string(),
            });
        }
        if meta.is_dir() {
            // A work tree (has .git), a bare repository or a .git directory;
            // `open` does not search parent directories, so a plain
            // directory inside some repository stays a Dir.
            let is_repo = path.join(".git").exists() || git2::Repository::open(path).is_ok();
            return Ok(if is_repo {
                TreeSource::Git {
                    repo: path.to_path_buf(),
                    rev: "HEAD".to_string(),
                }
            } else {
                TreeSource::Dir(path.to_path_buf())
            });
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        match name {
            Some(n) if TARBALL_SUFFIXES.iter().any(|s| n.ends_with(s)) && meta.is_file() => {
                Ok(TreeSource::Tarball(path.to_path_buf()))
            }
            _ => err(format!(
                "--tree {shown}: not a directory, a git repository or a \
                 .tar.xz/.txz/.tar tarball"
            )),
        }
    }
}

/// A read-only view of the wanted files of one kernel tree.
#[derive(Debug, Clone)]
pub struct Tree {
    description: String,
    commit: Option<git2::Oid>,
    files: BTreeMap<String, String>,
}

impl Tree {
    /// Opens `src` and loads the files at `wanted`, tree-relative paths like
    /// `"virt/kvm/guest_memfd.c"`. A wanted file the tree does not have is
    /// simply absent. A source that does not look like a kernel tree (no
    /// top-level `Makefile`, or neither a `virt/` nor an `arch/` directory)
    /// is a [`TreeError`]; so is a wanted path that is not a plain relative
    /// path (absolute, or with `.`/`..` components).
    pub fn open(src: &TreeSource, wanted: &[&str]) -> Result<Tree, TreeError> {
        for w in wanted {
            check_wanted(w)?;
        }
        match src {
            TreeSource::Dir(root) => open_dir(root, wanted),
            TreeSource::Git { repo, rev } => open_git(repo, rev, wanted),
            TreeSource::Tarball(path) => open_tarball(path, wanted),
        }
    }

    /// The contents of a loaded file (invalid UTF-8 replaced by U+FFFD).
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Whether the tree has the (wanted) file at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Where the files came from, for reports:
    /// `/usr/src/linux-source-6.12.tar.xz (tarball)`, `/src/linux (directory)`,
    /// `/src/linux@0123456789ab (HEAD)`.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// The full hex sha of the commit read, for git sources.
    pub fn commit(&self) -> Option<String> {
        self.commit.map(|c| c.to_string())
    }
}

fn check_wanted(w: &str) -> Result<(), TreeError> {
    let p = Path::new(w);
    let clean = !w.is_empty()
        && !w.ends_with('/')
        && !w.contains("//")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if clean {
        Ok(())
    } else {
        err(format!(
            "wanted file {w:?}: not a plain tree-relative path like \"virt/kvm/guest_memfd.c\""
        ))
    }
}

fn not_kernel(what: &str) -> TreeError {
    TreeError(format!(
        "{what}: does not look like a Linux kernel tree (needs a top-level Makefile \
         and a virt/ or arch/ directory)"
    ))
}

// ---------------------------------------------------------------------------
// Directory

fn open_dir(root: &Path, wanted: &[&str]) -> Result<Tree, TreeError> {
    let shown = root.display();
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return err(format!("{shown}: not a directory")),
        Err(e) => return err(format!("{shown}: {}", io_msg(&e))),
    }
    // A directory may be a partial tree (say, only virt/kvm/guest_mem.c
    // copied out of a vendor kernel): review takes what it holds, so only
    // a virt/ or arch/ directory is required here.
    let looks_kernel = root.join("virt").is_dir() || root.join("arch").is_dir();
    if !looks_kernel {
        return Err(TreeError(format!(
            "{shown}: does not look like a Linux kernel tree (no virt/ or arch/ directory)"
        )));
    }
    let mut files = BTreeMap::new();
    for w in wanted {
        let p = root.join(w);
        match read_regular(&p) {
            Ok(bytes) => {
                files.insert(w.to_string(), lossy(bytes));
            }
            // Absent, a directory, or below a non-directory: not there.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::IsADirectory
                        | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return err(format!("{}: {}", p.display(), io_msg(&e))),
        }
    }
    Ok(Tree {
        description: format!("{shown} (directory)"),
        commit: None,
        files,
    })
}

/// The largest source file read (the largest file of a kernel tree is a
/// few MiB; a wanted C file is far smaller).
pub const MAX_FILE: u64 = 32 << 20;

/// Refused with its reason unless `p` is a regular file (after following
/// links, as the operating system does) of at most [`MAX_FILE`] bytes: a
/// device would never end (`/dev/zero`), a FIFO would block forever.
fn read_regular(p: &Path) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(p)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        return Err(io::Error::from(io::ErrorKind::IsADirectory));
    }
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::other(format!(
            "refused: {what}; only regular files are read"
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(io::Error::other(format!(
            "refused: {} bytes, more than the {MAX_FILE} a source file may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(p)?.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!(
            "refused: grew past {MAX_FILE} bytes while being read"
        )));
    }
    Ok(bytes)
}

fn too_big(shown: &str, w: &str, size: u64) -> TreeError {
    TreeError(format!(
        "{shown}: {w}: refused: {size} bytes, more than the {MAX_FILE} a source file may have"
    ))
}

fn lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Git

fn open_git(repo_path: &Path, rev: &str, wanted: &[&str]) -> Result<Tree, TreeError> {
    use git2::{ErrorCode, ObjectType};
    let shown = repo_path.display();
    let repo = git2::Repository::open(repo_path)
        .map_err(|e| TreeError(format!("{shown}: not a git repository ({})", e.message())))?;
    let object = repo.revparse_single(rev).map_err(|e| {
        TreeError(match e.code() {
            ErrorCode::NotFound | ErrorCode::UnbornBranch => {
                format!("--rev {rev} in {shown}: no such revision")
            }
            ErrorCode::Ambiguous => format!("--rev {rev} in {shown}: ambiguous revision"),
            _ => format!("--rev {rev} in {shown}: {}", e.message()),
        })
    })?;
    let commit = object.peel_to_commit().map_err(|_| {
        let kind = object.kind().map_or("object", |k| k.str());
        TreeError(format!(
            "--rev {rev} in {shown}: names {kind} {}, not a commit",
            object.id()
        ))
    })?;
    let tree = commit.tree().map_err(|e| {
        TreeError(format!(
            "--rev {rev} in {shown}: commit {} has no readable tree ({})",
            commit.id(),
            e.message()
        ))
    })?;
    let short: String = commit.id().to_string().chars().take(12).collect();
    let described = format!("{shown}@{short} ({rev})");

    let kind_at = |name: &str| tree.get_name(name).and_then(|e| e.kind());
    let looks_kernel = kind_at("Makefile") == Some(ObjectType::Blob)
        && (kind_at("virt") == Some(ObjectType::Tree) || kind_at("arch") == Some(ObjectType::Tree));
    if !looks_kernel {
        return Err(not_kernel(&described));
    }

    let mut files = BTreeMap::new();
    for w in wanted {
        let entry = match tree.get_path(Path::new(w)) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => continue,
            Err(e) => return err(format!("{described}: {w}: {}", e.message())),
        };
        // Regular files only (0o100644, 0o100755); not symlinks or submodules.
        let regular =
            entry.kind() == Some(ObjectType::Blob) && entry.filemode() & 0o170000 == 0o100000;
        if !regular {
            continue;
        }
        if let Ok(Ok(size)) = repo
            .odb()
            .map(|odb| odb.read_header(entry.id()).map(|(size, _)| size as u64))
            && size > MAX_FILE
        {
            return Err(too_big(&described, w, size));
        }
        let blob = repo.find_blob(entry.id()).map_err(|e| {
            TreeError(format!(
                "{described}: {w}: cannot read blob {} ({})",
                entry.id(),
                e.message()
            ))
        })?;
        files.insert(w.to_string(), lossy(blob.content().to_vec()));
    }
    Ok(Tree {
        description: described,
        commit: Some(commit.id()),
        files,
    })
}

// ---------------------------------------------------------------------------
// Tarball

const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
const BUF: usize = 1 << 20;

fn open_tarball(path: &Path, wanted: &[&str]) -> Result<Tree, TreeError> {
    let shown = path.display().to_string();
    // Opening a FIFO would block forever; a device would never end.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return err(format!(
                "{shown}: not a regular file; a tarball must be one"
            ));
        }
        Err(e) => return err(format!("{shown}: {}", io_msg(&e))),
    }
    let file = File::open(path).map_err(|e| TreeError(format!("{shown}: {}", io_msg(&e))))?;
    let mut input = BufReader::with_capacity(BUF, file);
    let head = input
        .fill_buf()
        .map_err(|e| TreeError(format!("{shown}: {}", io_msg(&e))))?;
    let is_xz = head.starts_with(&XZ_MAGIC);
    let named_xz = shown.ends_with(".xz") || shown.ends_with(".txz");
    let files = if is_xz {
        let decoder = xz2::bufread::XzDecoder::new_multi_decoder(input);
        scan_tar(
            BufReader::with_capacity(BUF, decoder),
            &shown,
            "xz-compressed tar",
            wanted,
        )?
    } else if named_xz {
        let start: Vec<String> = head.iter().take(6).map(|b| format!("{b:02x}")).collect();
        return err(format!(
            "{shown}: not an xz-compressed tar (no xz magic: starts with {})",
            if start.is_empty() {
                "nothing, the file is empty".to_string()
            } else {
                start.join(" ")
            }
        ));
    } else {
        scan_tar(input, &shown, "tar", wanted)?
    };
    Ok(Tree {
        description: format!("{shown} (tarball)"),
        commit: None,
        files,
    })
}

/// Streams through a tar archive once, keeping only the wanted regular files
/// (the last entry wins if a path repeats, as when extracting).
fn scan_tar<R: Read>(
    stream: R,
    shown: &str,
    kind: &str,
    wanted: &[&str],
) -> Result<BTreeMap<String, String>, TreeError> {
    use tar::EntryType;
    let bad = |e: io::Error| TreeError(format!("{shown}: not a readable {kind} ({e})"));
    let mut archive = tar::Archive::new(stream);
    let mut top: Option<String> = None;
    let mut entries_seen = 0usize;
    let (mut makefile, mut virt_or_arch) = (false, false);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let etype = entry.header().entry_type();
        if matches!(etype, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue; // pax metadata, as written by `git archive`
        }
        entries_seen += 1;
        let raw = entry.path_bytes().into_owned();
        let Ok(name) = std::str::from_utf8(&raw) else {
            continue; // a non-UTF-8 path can be neither wanted nor a marker
        };
        let mut parts = name.split('/').filter(|c| !c.is_empty() && *c != ".");
        let Some(first) = parts.next() else { continue };
        let rel: Vec<&str> = parts.collect();
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => {
                return err(format!(
                    "{shown}: not a kernel tarball with a single top-level directory \
                     (has both {t}/ and {first})"
                ));
            }
            Some(_) => {}
        }
        if rel.is_empty() {
            if etype != EntryType::Directory {
                return err(format!(
                    "{shown}: not a kernel tarball with a single top-level directory \
                     ({first} is a top-level file)"
                ));
            }
            continue;
        }
        let rel = rel.join("/");
        if rel == "Makefile" && etype.is_file() {
            makefile = true;
        }
        if rel == "virt" || rel == "arch" || rel.starts_with("virt/") || rel.starts_with("arch/") {
            virt_or_arch = true;
        }
        if etype.is_file() && wanted.contains(&rel.as_str()) {
            if entry.size() > MAX_FILE {
                return Err(too_big(shown, &rel, entry.size()));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(bad)?;
            files.insert(rel, lossy(bytes));
        } else if etype.is_symlink() || etype.is_hard_link() {
            // A later symlink over a wanted path replaces the file, as on disk.
            files.remove(&rel);
        }
    }
    if entries_seen == 0 {
        return err(format!("{shown}: not a readable {kind} (no entries)"));
    }
    if !(makefile && virt_or_arch) {
        return Err(not_kernel(&format!(
            "{shown} (after stripping {}/)",
            top.unwrap_or_default()
        )));
    }
    Ok(files)
}
