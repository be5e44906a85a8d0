//! `series --build`: the kernel's own Kbuild builds every prefix of the
//! series, on Debian's 6.12 source with the two 2023 bugs written back; a
//! patch that breaks the build or adds a warning is caught, named with
//! its file and line.
//!
//! Slow by nature (a cold x86_64 build of arch/x86/kvm/, a few minutes on
//! two cores); everything runs in one test so the build area is made once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gmem_checker::tree::TreeSource;
use gmem_series::kbuild::{self, Area, Patch};

mod common;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmf-kbuild-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// guest_memfd.c of the work tree with `line` added after the first
/// `{` of kvm_gmem_invalidate_end().
fn with_line(tree: &Path, line: &str) -> BTreeMap<String, String> {
    let path = "virt/kvm/guest_memfd.c";
    let text = std::fs::read_to_string(tree.join(path)).expect("read");
    let at = text
        .find("static void kvm_gmem_invalidate_end(")
        .expect("function");
    let brace = at + text[at..].find("{\n").expect("body") + 2;
    let mut new = text.clone();
    new.insert_str(brace, &format!("{line}\n"));
    BTreeMap::from([(path.to_owned(), new)])
}

#[test]
fn every_prefix_builds_and_a_breaking_patch_is_named() {
    let cache = tmp("cache");
    let tree = tmp("linux");
    let out = tmp("out");
    common::base_612(&tree, true);

    // What the series touches, before: the user's tree must keep it.
    let watched = [
        "virt/kvm/guest_memfd.c",
        "arch/x86/kvm/mmu/mmu_internal.h",
        "virt/kvm/Kconfig",
    ];
    let before: Vec<Vec<u8>> = watched
        .iter()
        .map(|f| std::fs::read(tree.join(f)).expect("read"))
        .collect();

    // The series, built patch by patch by the tree's own Kbuild.
    let o = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(["series", "--quiet", "--random", "200", "--build", "--from"])
        .arg("Ada Lovelace <ada@example.org>")
        .arg("--tree")
        .arg(&tree)
        .arg("--out")
        .arg(&out)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("{stdout}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let built: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("builds "))
        .collect();
    let patches = std::fs::read_dir(&out).expect("out").count() - 1;
    assert!(patches >= 2, "{stdout}");
    assert_eq!(
        built.len(),
        patches + 1,
        "the base and every patch: {stdout}"
    );
    assert!(
        built.iter().all(|l| l.contains(" 0 new warnings")),
        "{stdout}"
    );
    // The cover letter says what was built, since it all built.
    let cover = std::fs::read_to_string(out.join("0000-cover-letter.patch")).expect("cover");
    let flat = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("every prefix of the series build with make W=1 arch/x86/kvm/"),
        "{cover}"
    );

    // The same area (cached: only what the patches touch is rebuilt), with
    // a patch that adds a warning and one that does not compile.
    // SAFETY of the environment change: this test file has one test.
    unsafe { std::env::set_var("XDG_CACHE_HOME", &cache) };
    let area = Area::open(&TreeSource::Dir(tree.clone()), None, &|_| {}).expect("area");
    let ok = with_line(&tree, "\t/* gmemforge: a comment builds */");
    let warns = with_line(&tree, "\tint gmf_unused_here = 0;");
    let breaks = with_line(&tree, "\tthis is not C;");
    let p = |subject, files| Patch { subject, files };
    let r = kbuild::build_every_prefix(
        &area,
        &[p("comment", &ok), p("warning", &warns)],
        2,
        &|_| {},
    )
    .expect("builds run");
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(
        r[1].error.is_none() && r[1].new_warnings.is_empty(),
        "{r:?}"
    );
    assert!(
        r[2].new_warnings
            .iter()
            .any(|w| w.starts_with("virt/kvm/guest_memfd.c:") && w.contains("gmf_unused_here")),
        "{r:?}"
    );
    let r = kbuild::build_every_prefix(&area, &[p("breaks", &breaks), p("never", &ok)], 2, &|_| {})
        .expect("builds run");
    assert_eq!(r.len(), 2, "stops at the failing patch: {r:?}");
    let e = r[1].error.as_deref().expect("the build error");
    assert!(e.starts_with("virt/kvm/guest_memfd.c:"), "{e}");
    assert!(r[1].label.contains("breaks"), "{r:?}");
    let after: Vec<Vec<u8>> = watched
        .iter()
        .map(|f| std::fs::read(tree.join(f)).expect("read"))
        .collect();
    assert!(before == after, "the user's tree was written through");
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&out);
}
