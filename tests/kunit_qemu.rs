//! `series --build --kunit` end to end: the series' KUnit suites, built
//! into a kernel with the tree's own Kbuild and run by kunit.py under QEMU,
//! pass on the series; with the `no-pgoff` mutant's helpers in place of
//! the series' they fail and the run says so.
//!
//! Not part of `cargo test --workspace` (`test = false` in Cargo.toml): a
//! cold kunit.py build of an x86_64 kernel takes minutes more than CI
//! allows. `scripts/kunit.sh` installs what it needs and runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use gmem_checker::tree::TreeSource;
use gmem_codegen::{cparse, unit};
use gmem_series::kbuild::{self, Area, Patch};

mod common;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmf-kunit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `src` with each of `names` replaced by the mutant's text of it.
fn with_mutant_helpers(src: &str, mutant: &str, names: &[&str]) -> String {
    let m = unit::mutant(mutant).expect("mutant");
    let mut out = src.to_owned();
    for name in names {
        let f = cparse::find(&out, name)
            .expect("parses")
            .unwrap_or_else(|| panic!("{name} is in the series' file"));
        let text = &m
            .functions
            .iter()
            .find(|f| f.name == *name)
            .expect("the mutant has it")
            .text;
        out.replace_range(f.start..f.end, text.trim_end());
    }
    out
}

fn main() {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tree = tmp("linux");
    let out = tmp("out");
    common::base_612(&tree, false);

    let o = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "series", "--quiet", "--random", "200", "--build", "--kunit", "--from",
        ])
        .arg("Ada Lovelace <ada@example.org>")
        .arg("--tree")
        .arg(&tree)
        .arg("--out")
        .arg(&out)
        .arg("--jobs")
        .arg(jobs.to_string())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("{stdout}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("kvm_guest_memfd:") && stdout.contains(" 0 failed"),
        "the series' suite ran and passed: {stdout}"
    );

    // The mutant's helpers in the series' guest_memfd.c: the suite fails.
    let area = Area::open(&TreeSource::Dir(tree.clone()), None, &|_| {}).expect("area");
    let gmem = area.read("virt/kvm/guest_memfd.c").expect("series applied");
    let kconfig = area.read("virt/kvm/Kconfig").expect("Kconfig");
    let files = BTreeMap::from([
        (
            "virt/kvm/guest_memfd.c".to_owned(),
            with_mutant_helpers(
                &gmem,
                "no-pgoff",
                &[
                    "kvm_gmem_invalidate_gfn_start",
                    "kvm_gmem_invalidate_gfn_end",
                ],
            ),
        ),
        ("virt/kvm/Kconfig".to_owned(), kconfig),
    ]);
    // The suite's own file and the .kunitconfig next to it, as the series
    // wrote them (a build starts from the base, where they are absent).
    let mut files = files;
    for f in ["virt/kvm/guest_memfd_test.c", "virt/kvm/.kunitconfig"] {
        files.insert(f.to_owned(), area.read(f).expect("the series wrote it"));
    }
    let built = kbuild::build_every_prefix(
        &area,
        &[Patch {
            subject: "no-pgoff helpers",
            files: &files,
        }],
        jobs as u32,
        &|m| eprintln!("{m}"),
    )
    .expect("builds");
    assert!(built.iter().all(|r| r.error.is_none()), "{built:?}");
    let k = kbuild::run_kunit(&area, &["virt/kvm".to_owned()], jobs as u32).expect("kunit.py runs");
    println!("mutant: {:?} {}", k.suites, k.summary);
    assert!(!k.passed, "kunit.py reports the failure");
    let (_, failed, _) = k.suites.get("kvm_guest_memfd").copied().unwrap_or_default();
    assert!(failed > 0, "cases of kvm_guest_memfd fail: {:?}", k.suites);
    println!("kunit_qemu: 1 passed, 0 failed");
}
