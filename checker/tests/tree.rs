//! The kernel-tree input layer (`gmem_checker::tree`): directories, git
//! repositories (read without touching the work tree, index or refs) and
//! tarballs, including Debian's real `linux-source-6.12.tar.xz`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use git2::{Repository, Signature, Time};
use gmem_checker::tree::{Tree, TreeError, TreeSource};

const GMEM: &str = "virt/kvm/guest_memfd.c";
const SEV: &str = "arch/x86/kvm/svm/sev.c";
const MMU: &str = "arch/x86/kvm/mmu/mmu_internal.h";

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gmem-tree-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A minimal kernel-looking tree under `root`.
fn kernel_files(root: &Path, gmem: &str) {
    write(root, "Makefile", "VERSION = 6\nPATCHLEVEL = 12\n");
    write(root, GMEM, gmem);
    write(root, SEV, "int sev_gmem_prepare(void);\n");
}

fn open_err(src: &TreeSource, wanted: &[&str]) -> String {
    match Tree::open(src, wanted) {
        Ok(t) => panic!("expected an error, opened {}", t.describe()),
        Err(TreeError(msg)) => msg,
    }
}

// ---------------------------------------------------------------------------
// Directories

#[test]
fn dir_reads_wanted_files_and_missing_ones_are_absent() {
    let s = Scratch::new("dir");
    kernel_files(s.path(), "void kvm_gmem_invalidate_begin(void);\n");
    fs::write(s.path().join("virt/kvm/latin1.c"), b"caf\xe9\n").unwrap();

    let src = TreeSource::from_arg(s.path(), None).unwrap();
    assert_eq!(src, TreeSource::Dir(s.path().to_path_buf()));
    let t = Tree::open(&src, &[GMEM, SEV, MMU, "virt/kvm", "virt/kvm/latin1.c"]).unwrap();
    assert!(t.file(GMEM).unwrap().contains("kvm_gmem_invalidate_begin"));
    assert!(t.has(SEV));
    assert!(!t.has(MMU), "a missing file is absent, not an error");
    assert!(!t.has("virt/kvm"), "a directory is not a file");
    assert_eq!(t.file("virt/kvm/latin1.c"), Some("caf\u{fffd}\n"));
    assert_eq!(t.commit(), None);
    assert_eq!(t.describe(), format!("{} (directory)", s.path().display()));
}

#[test]
fn dir_that_is_not_a_kernel_tree_is_an_error() {
    let s = Scratch::new("notkernel");
    write(s.path(), "README", "hello\n");
    write(s.path(), "src/main.c", "int main;\n");
    let src = TreeSource::from_arg(s.path(), None).unwrap();
    let msg = open_err(&src, &[GMEM]);
    assert!(msg.starts_with(&s.path().display().to_string()), "{msg}");
    assert!(
        msg.contains("does not look like a Linux kernel tree"),
        "{msg}"
    );

    // A Makefile alone is not enough either.
    write(s.path(), "Makefile", "all:\n");
    let msg = open_err(&src, &[GMEM]);
    assert!(
        msg.contains("does not look like a Linux kernel tree"),
        "{msg}"
    );
}

#[test]
fn bad_arguments_are_errors_naming_the_input() {
    let s = Scratch::new("args");
    let missing = s.path().join("nope");
    let e = TreeSource::from_arg(&missing, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("--tree {}: no such file or directory", missing.display())
    );

    let plain = s.path().join("notes.txt");
    fs::write(&plain, "x").unwrap();
    let e = TreeSource::from_arg(&plain, None).unwrap_err();
    assert!(
        e.0.starts_with(&format!("--tree {}: ", plain.display())),
        "{e}"
    );
    assert!(e.0.contains("tarball"), "{e}");

    // --rev on something that is not a git repository.
    let e = TreeSource::from_arg(s.path(), Some("HEAD")).unwrap_err();
    assert!(e.0.contains("needs a git repository"), "{e}");

    // Wanted paths must be plain and relative.
    let k = Scratch::new("args-kernel");
    kernel_files(k.path(), "x");
    let src = TreeSource::Dir(k.path().to_path_buf());
    for bad in [
        "/etc/passwd",
        "../x",
        "virt/../Makefile",
        "./Makefile",
        "",
        "virt/",
    ] {
        let msg = open_err(&src, &[bad]);
        assert!(
            msg.contains("not a plain tree-relative path"),
            "{bad:?}: {msg}"
        );
    }
}

// ---------------------------------------------------------------------------
// Git

fn sig(secs: i64) -> Signature<'static> {
    Signature::new(
        "gmemforge test",
        "test@gmemforge.invalid",
        &Time::new(secs, 0),
    )
    .unwrap()
}

/// Stages every file under the work tree and commits it on HEAD.
fn commit_all(repo: &Repository, msg: &str, secs: i64) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig(secs), &sig(secs), msg, &tree, &parents)
        .unwrap()
}

/// A repository with two commits: v1 then v2 of guest_memfd.c (v2 also adds
/// mmu_internal.h). Returns (first, second).
fn two_commit_repo(root: &Path) -> (git2::Oid, git2::Oid) {
    let repo = Repository::init(root).unwrap();
    kernel_files(root, "/* v1 */ int kvm_gmem_create(void);\n");
    let first = commit_all(&repo, "first", 1_700_000_000);
    write(
        root,
        GMEM,
        "/* v2 */ void kvm_gmem_invalidate_begin(void);\n",
    );
    write(root, MMU, "struct kvm_mmu_page;\n");
    let second = commit_all(&repo, "second", 1_700_000_600);
    repo.tag_lightweight("v1", &repo.find_object(first, None).unwrap(), false)
        .unwrap();
    (first, second)
}

#[test]
fn git_head_and_an_older_rev() {
    let s = Scratch::new("git");
    let (first, second) = two_commit_repo(s.path());

    let head = TreeSource::from_arg(s.path(), None).unwrap();
    assert_eq!(
        head,
        TreeSource::Git {
            repo: s.path().to_path_buf(),
            rev: "HEAD".into()
        }
    );
    let t = Tree::open(&head, &[GMEM, SEV, MMU, "virt/nope.c"]).unwrap();
    assert!(t.file(GMEM).unwrap().starts_with("/* v2 */"));
    assert!(t.has(MMU) && t.has(SEV) && !t.has("virt/nope.c"));
    assert_eq!(t.commit(), Some(second.to_string()));
    assert_eq!(
        t.describe(),
        format!(
            "{}@{} (HEAD)",
            s.path().display(),
            &second.to_string()[..12]
        )
    );

    for rev in ["v1", "HEAD~1", &first.to_string()[..10]] {
        let old = TreeSource::from_arg(s.path(), Some(rev)).unwrap();
        let t = Tree::open(&old, &[GMEM, MMU]).unwrap();
        assert!(t.file(GMEM).unwrap().starts_with("/* v1 */"), "{rev}");
        assert!(!t.has(MMU), "{rev}: added only in the second commit");
        assert_eq!(t.commit(), Some(first.to_string()), "{rev}");
        assert!(
            t.describe().ends_with(&format!("({rev})")),
            "{}",
            t.describe()
        );
    }
}

#[test]
fn git_bare_repository() {
    let s = Scratch::new("git-bare-src");
    let (_, second) = two_commit_repo(s.path());
    let b = Scratch::new("git-bare");
    let bare_path = b.path().join("linux.git");
    let bare = Repository::init_bare(&bare_path).unwrap();
    // Copy the objects over with a local fetch into the bare repository.
    bare.remote_anonymous(s.path().to_str().unwrap())
        .unwrap()
        .fetch(&["+refs/heads/*:refs/heads/*"], None, None)
        .unwrap();
    let branch = Repository::open(s.path())
        .unwrap()
        .head()
        .unwrap()
        .shorthand()
        .unwrap()
        .to_string();
    bare.set_head(&format!("refs/heads/{branch}")).unwrap();

    for rev in [None, Some("HEAD")] {
        let src = TreeSource::from_arg(&bare_path, rev).unwrap();
        assert!(matches!(src, TreeSource::Git { .. }), "{src:?}");
        let t = Tree::open(&src, &[GMEM]).unwrap();
        assert_eq!(t.commit(), Some(second.to_string()));
    }
}

#[test]
fn git_bad_rev_is_an_error() {
    let s = Scratch::new("git-badrev");
    let (first, _) = two_commit_repo(s.path());
    let src = TreeSource::from_arg(s.path(), Some("v9.9")).unwrap();
    assert_eq!(
        open_err(&src, &[GMEM]),
        format!("--rev v9.9 in {}: no such revision", s.path().display())
    );

    // A revision naming a blob, not a commit.
    let blob = Repository::open(s.path())
        .unwrap()
        .find_commit(first)
        .unwrap()
        .tree()
        .unwrap()
        .get_name("Makefile")
        .unwrap()
        .id();
    let src = TreeSource::from_arg(s.path(), Some(&blob.to_string())).unwrap();
    let msg = open_err(&src, &[GMEM]);
    assert!(msg.contains("not a commit"), "{msg}");

    // A repository with no commits yet.
    let e = Scratch::new("git-empty");
    Repository::init(e.path()).unwrap();
    let src = TreeSource::from_arg(e.path(), None).unwrap();
    let msg = open_err(&src, &[GMEM]);
    assert_eq!(
        msg,
        format!("--rev HEAD in {}: no such revision", e.path().display())
    );
}

#[test]
fn git_repo_that_is_not_a_kernel_tree_is_an_error() {
    let s = Scratch::new("git-notkernel");
    let repo = Repository::init(s.path()).unwrap();
    write(s.path(), "README", "not a kernel\n");
    commit_all(&repo, "only", 1_700_000_000);
    let src = TreeSource::from_arg(s.path(), None).unwrap();
    let msg = open_err(&src, &[GMEM]);
    assert!(
        msg.contains("does not look like a Linux kernel tree"),
        "{msg}"
    );
}

/// Every file under `root` (the work tree and all of .git), with its bytes,
/// plus the index's modification time.
fn snapshot(root: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, SystemTime) {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.strip_prefix(root).unwrap().join(""), Vec::new());
                walk(&p, root, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    let index_mtime = fs::metadata(root.join(".git/index"))
        .unwrap()
        .modified()
        .unwrap();
    (out, index_mtime)
}

#[test]
fn git_reads_head_and_leaves_the_repository_untouched() {
    let s = Scratch::new("git-untouched");
    let (first, second) = two_commit_repo(s.path());
    let repo = Repository::open(s.path()).unwrap();

    // Stage one change to a wanted file, then change it again in the work
    // tree, and change another wanted file in the work tree only.
    write(s.path(), GMEM, "/* staged */\n");
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(GMEM)).unwrap();
    index.write().unwrap();
    write(s.path(), GMEM, "/* work tree */\n");
    write(s.path(), SEV, "/* work tree */\n");
    write(s.path(), "virt/kvm/untracked.c", "/* untracked */\n");

    let before = snapshot(s.path());
    for key in [".git/HEAD", ".git/index", ".git/refs/tags/v1"] {
        assert!(
            before.0.contains_key(Path::new(key)),
            "snapshot misses {key}"
        );
    }

    let head = TreeSource::from_arg(s.path(), None).unwrap();
    let t = Tree::open(&head, &[GMEM, SEV, "virt/kvm/untracked.c"]).unwrap();
    assert!(
        t.file(GMEM).unwrap().starts_with("/* v2 */"),
        "HEAD, not index or work tree"
    );
    assert_eq!(t.file(SEV), Some("int sev_gmem_prepare(void);\n"));
    assert!(
        !t.has("virt/kvm/untracked.c"),
        "untracked work-tree files are not read"
    );
    assert_eq!(t.commit(), Some(second.to_string()));
    let old = TreeSource::from_arg(s.path(), Some("v1")).unwrap();
    assert_eq!(
        Tree::open(&old, &[GMEM]).unwrap().commit(),
        Some(first.to_string())
    );
    let bad = TreeSource::from_arg(s.path(), Some("no-such-branch")).unwrap();
    assert!(Tree::open(&bad, &[GMEM]).is_err());

    let after = snapshot(s.path());
    let created: Vec<_> = after
        .0
        .keys()
        .filter(|p| !before.0.contains_key(*p))
        .collect();
    let removed: Vec<_> = before
        .0
        .keys()
        .filter(|p| !after.0.contains_key(*p))
        .collect();
    assert!(
        created.is_empty() && removed.is_empty(),
        "files created {created:?} or removed {removed:?} in the work tree or .git"
    );
    for (path, bytes) in &before.0 {
        assert!(after.0[path] == *bytes, "{} changed", path.display());
    }
    assert_eq!(before.1, after.1, "index rewritten");
}

// ---------------------------------------------------------------------------
// Tarballs

/// Builds a tarball of `(path, contents)` entries, xz-compressed if `xz`.
fn make_tarball(out: &Path, entries: &[(&str, &str)], xz: bool) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
        } else {
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
        }
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, path, text.as_bytes()).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    let mut f = fs::File::create(out).unwrap();
    if xz {
        let mut enc = xz2::write::XzEncoder::new(f, 6);
        enc.write_all(&bytes).unwrap();
        enc.finish().unwrap();
    } else {
        f.write_all(&bytes).unwrap();
    }
}

#[test]
fn small_tarballs_strip_the_top_directory() {
    let s = Scratch::new("tar");
    let entries = [
        ("linux-6.12/", ""),
        ("linux-6.12/Makefile", "VERSION = 6\n"),
        (
            "linux-6.12/virt/kvm/guest_memfd.c",
            "kvm_gmem_invalidate_begin\n",
        ),
        ("linux-6.12/arch/x86/kvm/svm/sev.c", "sev\n"),
    ];
    for (name, xz) in [("k.tar.xz", true), ("k.txz", true), ("k.tar", false)] {
        let p = s.path().join(name);
        make_tarball(&p, &entries, xz);
        let src = TreeSource::from_arg(&p, None).unwrap();
        assert_eq!(src, TreeSource::Tarball(p.clone()));
        let t = Tree::open(&src, &[GMEM, SEV, MMU]).unwrap();
        assert_eq!(t.file(GMEM), Some("kvm_gmem_invalidate_begin\n"), "{name}");
        assert_eq!(t.file(SEV), Some("sev\n"));
        assert!(!t.has(MMU));
        assert_eq!(t.describe(), format!("{} (tarball)", p.display()));
        assert_eq!(t.commit(), None);
    }
}

#[test]
fn bad_tarballs_are_errors() {
    let s = Scratch::new("tar-bad");

    let p = s.path().join("a.tar.xz");
    fs::write(&p, "this is plain text, not xz").unwrap();
    let msg = open_err(&TreeSource::from_arg(&p, None).unwrap(), &[GMEM]);
    assert!(
        msg.starts_with(&format!("{}: not an xz-compressed tar (", p.display())),
        "{msg}"
    );

    // Valid xz, but truncated half-way.
    let p = s.path().join("trunc.tar.xz");
    make_tarball(&p, &[("l/Makefile", &"x".repeat(100_000))], true);
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let msg = open_err(&TreeSource::Tarball(p.clone()), &[GMEM]);
    assert!(msg.starts_with(&format!("{}: ", p.display())), "{msg}");

    let p = s.path().join("notkernel.tar.xz");
    make_tarball(&p, &[("proj/", ""), ("proj/README", "hi\n")], true);
    let msg = open_err(&TreeSource::Tarball(p.clone()), &[GMEM]);
    assert!(
        msg.contains("does not look like a Linux kernel tree"),
        "{msg}"
    );
    assert!(msg.contains("after stripping proj/"), "{msg}");

    let p = s.path().join("two-tops.tar");
    make_tarball(
        &p,
        &[("a/Makefile", "x"), ("b/virt/kvm/guest_memfd.c", "y")],
        false,
    );
    let msg = open_err(&TreeSource::Tarball(p.clone()), &[GMEM]);
    assert!(msg.contains("single top-level directory"), "{msg}");

    let p = s.path().join("garbage.tar");
    fs::write(&p, vec![7u8; 4096]).unwrap();
    let msg = open_err(&TreeSource::Tarball(p.clone()), &[GMEM]);
    assert!(msg.starts_with(&format!("{}: ", p.display())), "{msg}");
}

const DEBIAN_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// Debian's real kernel source tarball (~145 MiB, 1.5 GB of tar). Needs the
/// `linux-source-6.12` package, which scripts/test.sh installs.
#[test]
fn debian_linux_source_tarball() {
    let path = Path::new(DEBIAN_TARBALL);
    assert!(
        path.is_file(),
        "{DEBIAN_TARBALL} is missing: install the Debian package linux-source-6.12 \
         (scripts/test.sh does) — this test does not skip"
    );
    let src = TreeSource::from_arg(path, None).unwrap();
    assert_eq!(src, TreeSource::Tarball(path.to_path_buf()));
    let start = Instant::now();
    let t = Tree::open(&src, &[GMEM, SEV, MMU, "virt/kvm/no_such_file.c"]).unwrap();
    eprintln!(
        "opened {} for 3 files in {:.2?}",
        t.describe(),
        start.elapsed()
    );
    assert!(t.file(GMEM).unwrap().contains("kvm_gmem_invalidate_begin"));
    assert!(t.file(SEV).unwrap().contains("sev_gmem_prepare"));
    assert!(t.file(MMU).unwrap().contains("struct kvm_mmu_page"));
    assert!(!t.has("virt/kvm/no_such_file.c"));
    assert_eq!(t.describe(), format!("{DEBIAN_TARBALL} (tarball)"));
}
