//! The repository `tests/history.rs` and `benches/history.rs` walk, made
//! at run time from the 6.18 fixture: 35 commits after its base. One
//! brings the 2023 invalidation range bug and one fixes it, one brings the
//! signed bind-range wrap and one fixes it, one rewrites a line of
//! kvm_gmem_bind() without changing what it does; the rest touch files
//! review never reads, or only comments (some inside the reviewed
//! functions, some moving every function below them).

#![allow(dead_code)] // the bench uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream-6.18");
pub const GMEM: &str = "virt/kvm/guest_memfd.c";

/// The 2023 start: the part of the slot before the range is zapped too.
pub const RANGE_GOOD: &str = ".start = slot->base_gfn + max(pgoff, start) - pgoff,";
pub const RANGE_BAD: &str = ".start = slot->base_gfn + start - pgoff,";
/// Signed: an offset near 2^63 wraps past the end-of-file check.
pub const BIND_GOOD: [&str; 2] = [
    "unsigned int fd, u64 offset)\n{\n\tu64 size",
    "if (!PAGE_ALIGNED(offset) || offset + size > i_size_read(inode))",
];
pub const BIND_BAD: [&str; 2] = [
    "unsigned int fd, loff_t offset)\n{\n\tloff_t size",
    "if (offset < 0 || !PAGE_ALIGNED(offset) || offset + size > i_size_read(inode))",
];

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmemforge-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

pub fn git(repo: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.org"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Replaces `from` by `to` in `path`, which must change.
pub fn edit(repo: &Path, path: &str, from: &str, to: &str) {
    let p = repo.join(path);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(text.contains(from), "{path}: {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
}

pub fn commit(repo: &Path, subject: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", subject]);
    git(repo, &["rev-parse", "HEAD"])
}

/// The test repository and its named commits.
pub struct Repo {
    pub dir: PathBuf,
    pub base: String,
    pub range_in: String,
    pub range_out: String,
    pub bind_in: String,
    pub bind_out: String,
    /// The commit that changes kvm_gmem_bind()'s text and not its behaviour.
    pub same: String,
    pub commits: usize,
}

/// Makes the repository in `dir`.
pub fn make_repo(dir: &Path) -> Repo {
    copy_dir(Path::new(FIXTURE), dir);
    git(dir, &["init", "-q"]);
    let base = commit(dir, "base: the 6.18 fixture");
    let mut n = 0;
    // A file review never reads.
    let mut unrelated = |dir: &Path, what: &str| {
        n += 1;
        let p = dir.join("Documentation/virt/kvm/notes.rst");
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let mut text = std::fs::read_to_string(&p).unwrap_or_default();
        text.push_str(&format!("{what} {n}\n"));
        std::fs::write(&p, text).expect("write");
        commit(dir, &format!("Documentation: note {n}"))
    };
    for w in ["a", "b", "c"] {
        unrelated(dir, w);
    }
    // Beside the reviewed files, in their directory: not reviewed either.
    std::fs::write(
        dir.join("virt/kvm/Kconfig"),
        "config KVM_GUEST_MEMFD\n\tbool\n",
    )
    .expect("write");
    commit(dir, "KVM: guest_memfd: a Kconfig entry");
    // Comments only: above every function of the file (each moves down),
    // and inside kvm_gmem_bind().
    edit(
        dir,
        GMEM,
        "int kvm_gmem_bind(",
        "/*\n * Binding a memslot to a guest_memfd file.\n */\nint kvm_gmem_bind(",
    );
    commit(dir, "KVM: guest_memfd: document kvm_gmem_bind()");
    let top = std::fs::read_to_string(dir.join(GMEM)).expect("read");
    std::fs::write(
        dir.join(GMEM),
        format!("// guest_memfd: private memory for guests\n\n{top}"),
    )
    .expect("write");
    commit(dir, "KVM: guest_memfd: a header comment");
    unrelated(dir, "d");
    edit(dir, GMEM, RANGE_GOOD, RANGE_BAD);
    let range_in = commit(dir, "KVM: guest_memfd: simplify the invalidation start");
    for w in ["e", "f", "g"] {
        unrelated(dir, w);
    }
    edit(
        dir,
        GMEM,
        "\tfile = fget(fd);\n\tif (!file)\n\t\treturn -EBADF;",
        "\t/* The fd must be a guest_memfd of this VM. */\n\tfile = fget(fd);\n\tif (!file)\n\t\treturn -EBADF;",
    );
    commit(dir, "KVM: guest_memfd: say what the fd must be");
    for w in ["h", "i"] {
        unrelated(dir, w);
    }
    edit(dir, GMEM, BIND_GOOD[0], BIND_BAD[0]);
    edit(dir, GMEM, BIND_GOOD[1], BIND_BAD[1]);
    let bind_in = commit(dir, "KVM: guest_memfd: take the offset as loff_t");
    edit(
        dir,
        "arch/x86/kvm/svm/sev.c",
        "int sev_gmem_prepare(",
        "/* Called by guest_memfd at first use of a folio. */\nint sev_gmem_prepare(",
    );
    commit(dir, "KVM: SEV: comment sev_gmem_prepare()");
    for w in ["j", "k", "l", "m"] {
        unrelated(dir, w);
    }
    edit(dir, GMEM, RANGE_BAD, RANGE_GOOD);
    let range_out = commit(dir, "KVM: guest_memfd: clamp the invalidation start again");
    for w in ["n", "o", "p", "q", "r"] {
        unrelated(dir, w);
    }
    edit(
        dir,
        "arch/x86/kvm/mmu/mmu.c",
        "int noinline kvm_mmu_page_fault(",
        "/* Every fault of a guest lands here. */\nint noinline kvm_mmu_page_fault(",
    );
    commit(dir, "KVM: x86/mmu: comment kvm_mmu_page_fault()");
    unrelated(dir, "s");
    edit(dir, GMEM, BIND_BAD[1], BIND_GOOD[1]);
    edit(dir, GMEM, BIND_BAD[0], BIND_GOOD[0]);
    let bind_out = commit(dir, "KVM: guest_memfd: the offset is unsigned again");
    unrelated(dir, "x");
    // New text, same behaviour: reviewed again (a compile and a run), no
    // verdict changes.
    edit(
        dir,
        GMEM,
        "\tint r = -EINVAL;\n\n\tBUILD_BUG_ON",
        "\tint r = -(EINVAL);\n\n\tBUILD_BUG_ON",
    );
    let same = commit(dir, "KVM: guest_memfd: parenthesise the errno");
    for w in ["t", "u", "v", "w"] {
        unrelated(dir, w);
    }
    let commits = git(dir, &["rev-list", "--count", &format!("{base}..HEAD")])
        .parse()
        .expect("a count");
    Repo {
        dir: dir.to_path_buf(),
        same,
        base,
        range_in,
        range_out,
        bind_in,
        bind_out,
        commits,
    }
}
