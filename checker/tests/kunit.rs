//! The KUnit suite generated from the shared vectors passes on the C the
//! series carries (both profiles), fails on a mutant, and is
//! checkpatch-clean.

use std::path::Path;
use std::process::Command;

use gmem_checker::kunit::{build, build_rule, range_cases, rule_cases, run};
use gmem_checker::tree::{Tree, TreeSource};
use gmem_codegen::kunit::{rule_suite, suite};
use gmem_codegen::unit;
use gmem_reference::Profile;
use serde_json::Value;

fn cases() -> Vec<gmem_codegen::kunit::RangeCase> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/invalidate.json"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    range_cases(file["vectors"].as_array().expect("list"))
}

#[test]
fn the_suite_passes_on_builtin_c_and_fails_on_a_mutant() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for p in Profile::ALL {
        let lib = build(&unit::builtin(p).expect("unit"), &cases).unwrap_or_else(|e| panic!("{e}"));
        let (failed, n) = run(&lib).expect("the suite runs to its end");
        assert_eq!((failed, n), (0, 2 * cases.len() as i32), "{}", p.name());
    }
    let lib =
        build(&unit::mutant("no-pgoff").expect("mutant"), &cases).unwrap_or_else(|e| panic!("{e}"));
    let (failed, _) = run(&lib).expect("the suite runs to its end");
    assert!(failed > 0, "the no-pgoff mutant fails the suite");
}

#[test]
fn the_suite_is_checkpatch_clean() {
    const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
    assert!(
        Path::new(TARBALL).exists(),
        "{TARBALL}: install linux-source-6.12 (scripts/test.sh does)"
    );
    let wanted = [
        "scripts/checkpatch.pl",
        "scripts/spelling.txt",
        "scripts/const_structs.checkpatch",
    ];
    let tree = Tree::open(&TreeSource::Tarball(TARBALL.into()), &wanted).expect("tarball");
    let dir = std::env::temp_dir().join(format!("gmemforge-kunit-{}", std::process::id()));
    for f in wanted {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, tree.file(f).expect("in the tarball")).expect("write");
    }
    let classify = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/classify.json"
    );
    let classify: Value =
        serde_json::from_str(&std::fs::read_to_string(classify).expect("vectors")).expect("json");
    let files = [
        ("guest_memfd_test.c", suite(Profile::Upstream, &cases())),
        ("guest_mem_test.c", suite(Profile::GmemSolo2023, &cases())),
        (
            "mmu_test.c",
            rule_suite(&rule_cases(classify["vectors"].as_array().expect("list"))),
        ),
    ];
    for (name, text) in files {
        let file = dir.join(name);
        std::fs::write(&file, text).expect("write");
        let out = Command::new("perl")
            .arg(dir.join("scripts/checkpatch.pl"))
            .args(["--strict", "--no-tree", "-f"])
            .arg(&file)
            .output()
            .expect("perl");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            report.contains("total: 0 errors, 0 warnings, 0 checks"),
            "{name}:\n{report}"
        );
    }
}

#[test]
fn the_fault_rule_suite_passes_on_the_series_c_and_fails_on_a_u32_rule() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/classify.json"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let cases = rule_cases(file["vectors"].as_array().expect("list"));
    assert!(
        cases.len() >= 15 && cases.iter().any(|c| c.private) && cases.iter().any(|c| !c.private),
        "{cases:?}"
    );
    // The rule exists in the 2023 profile (patch 3); upstream decides inline.
    let lib = build_rule(&unit::builtin(Profile::GmemSolo2023).expect("unit"), &cases)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run(&lib).expect("the suite runs to its end"),
        (0, 2 * cases.len() as i32),
        "every case passes, each its own parameter (allocation check, rule)"
    );
    let lib = build_rule(&unit::mutant("u32-rule").expect("mutant"), &cases)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run(&lib).expect("the suite runs to its end").0 > 0,
        "the u32-rule mutant fails the suite"
    );
}
