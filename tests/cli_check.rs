//! `gmemforge check` through the binary: builtin C conforms, every mutant is
//! caught with a counterexample, the exhaustive bound is large, bad input
//! exits 2.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn check(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .arg("check")
        .arg("--json")
        .args(args)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().expect("exited"), json, stderr)
}

fn items<'a>(report: &'a Value, verdict: &str) -> Vec<&'a Value> {
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["verdict"] == verdict)
        .collect()
}

#[test]
fn builtin_c_conforms_on_vectors_and_random() {
    let (code, r, err) = check(&["--random", "2000"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(r["verdict"], "conforms");
    let all = r["items"].as_array().expect("items");
    assert!(
        all.len() >= 12,
        "every operation of both profiles: {}",
        all.len()
    );
    for i in all {
        assert!(i["vectors"].as_u64().is_some_and(|n| n > 0), "{i}");
        assert!(
            i["function"].as_str().is_some_and(|f| f.starts_with("kvm_")
                || f.starts_with("sev_")
                || f.starts_with("npf_")),
            "{i}"
        );
    }
    assert!(r["vectors_per_second"].as_f64().is_some_and(|v| v > 0.0));
}

/// Each mutant: exit 1, the named operation diverges with a counterexample
/// whose explanation mentions `why`.
fn caught(mutant: &str, operation: &str, why: &str) {
    let (code, r, err) = check(&["--impl", &format!("mutant:{mutant}"), "--random", "500"]);
    assert_eq!(code, 1, "{mutant}: {err}");
    assert_eq!(r["verdict"], "diverges");
    let bad = items(&r, "diverges");
    let item = bad
        .iter()
        .find(|i| i["operation"] == operation)
        .unwrap_or_else(|| panic!("{mutant}: {operation} diverges: {r:#}"));
    let c = &item["counterexample"];
    assert!(
        c["input"].is_object(),
        "{mutant}: counterexample input: {c}"
    );
    assert!(
        c["why"].as_str().is_some_and(|w| w.contains(why)),
        "{mutant}: {c}"
    );
    // The model names the rule that decided, with its values.
    let model_why = c["model_why"].as_array().expect("model_why is a list");
    assert!(
        !model_why.is_empty()
            && model_why
                .iter()
                .all(|w| w.as_str().is_some_and(|w| !w.is_empty())),
        "{mutant}: the model gives no reason: {c}"
    );
    assert!(
        !c["why"].as_str().unwrap_or("").contains("-22"),
        "{mutant}: errnos by name: {c}"
    );
}

#[test]
fn mutant_bind_past_eof_is_caught() {
    // The bug: a binding that runs past the end of the file.
    caught(
        "bind-past-eof",
        "bind",
        "kvm_gmem_bind() returned 0, model -EINVAL",
    );
}

#[test]
fn mutant_bind_loff_wrap_is_caught() {
    // 6.8-7.1's loff_t offset + size wraps negative past 2^63 and binds.
    caught(
        "bind-loff-wrap",
        "bind",
        "kvm_gmem_prepare_memory_region() + kvm_gmem_commit_memory_region() returned 0, model -EINVAL",
    );
}

#[test]
fn mutant_commit_einval_is_caught() {
    // 7.2's contract: a file range bound twice is -EEXIST.
    caught("commit-einval", "bind", "returned -EINVAL, model -EEXIST");
}

#[test]
fn mutant_prepare_2m_unchecked_is_caught() {
    caught(
        "prepare-2m-unchecked",
        "prepare",
        "sev_gmem_prepare() returned -EINVAL, model 0",
    );
}

#[test]
fn mutant_invalidate_no_psmash_is_caught() {
    caught("invalidate-no-psmash", "gmem-invalidate", "RMP operation 0");
}

#[test]
fn mutant_solo_2023_range_is_caught() {
    caught("solo-2023-range", "invalidate", "");
}

#[test]
fn mutant_upstream_range_is_caught() {
    caught("upstream-range", "invalidate", "");
}

#[test]
fn mutant_no_pgoff_is_caught() {
    caught("no-pgoff", "invalidate", "zap 0");
}

#[test]
fn mutant_u32_error_code_is_caught() {
    // The smallest counterexample is any bit above 31 lost on the way to
    // kvm_mmu_do_page_fault(); bit 34 then also flips is_private.
    caught(
        "u32-error-code",
        "classify",
        "error code to kvm_mmu_do_page_fault()",
    );
}

#[test]
fn mutant_rmp_under_mmu_lock_is_caught() {
    caught("rmp-under-mmu-lock", "punch-hole", "under mmu_lock");
}

#[test]
fn mutant_u32_rule_is_caught() {
    caught("u32-rule", "classify", "");
}

#[test]
fn mutant_prefault_ignores_rule_is_caught() {
    // SNP: a private gfn pre-faulted without PFERR_GUEST_ENC is a shared
    // fault on private memory, which exits to userspace (-EFAULT).
    caught("prefault-ignores-rule", "pre-fault", "ioctl returned");
}

#[test]
fn mutant_prepare_unwired_is_caught() {
    // A fresh folio's first fault must reach kvm_x86_ops.gmem_prepare.
    caught("prepare-unwired", "get-pfn", "hook event 0: C nothing");
}

#[test]
fn mutant_prepare_every_fault_is_caught() {
    // Upstream prepares a folio once: a second hook call is the bug.
    caught("prepare-every-fault", "get-pfn", ", model nothing");
}

#[test]
fn mutant_free_folio_unregistered_is_caught() {
    // Without .free_folio in kvm_gmem_aops nothing makes freed pages shared.
    caught("free-folio-unregistered", "punch-hole", "event");
}

#[test]
fn every_mutant_has_a_test_above() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-patches/mutants");
    let this = include_str!("cli_check.rs");
    for e in std::fs::read_dir(dir).expect("mutants") {
        let name = e.expect("entry").file_name();
        let name = name.to_string_lossy();
        let name = name.trim_end_matches(".c");
        assert!(
            this.contains(&format!("caught(\n        \"{name}\""))
                || this.contains(&format!("caught(\"{name}\"")),
            "mutant {name} has no `caught` test in tests/cli_check.rs"
        );
    }
}

#[test]
fn help_and_readme_list_every_mutant() {
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(["check", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    let readme = include_str!("../README.md");
    for m in gmem_codegen::unit::mutant_names() {
        assert!(help.contains(m), "check --help lacks {m}:\n{help}");
        assert!(readme.contains(&format!("`{m}`")), "README.md lacks `{m}`");
    }
}

#[test]
fn exhaustive_bound_conforms_over_a_million_vectors() {
    let (code, r, err) = check(&["--exhaustive", "--random", "0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["verdict"], "conforms");
    assert!(
        r["vectors"].as_u64().is_some_and(|n| n >= 1_000_000),
        "{}",
        r["vectors"]
    );
    // The RMP operations' bound (ARCHITECTURE.md) on its own, per profile.
    for op in ["prepare", "gmem-invalidate", "punch-hole", "get-pfn"] {
        let per_profile: Vec<&Value> = r["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["operation"] == op)
            .collect();
        assert_eq!(per_profile.len(), 2, "{op} on both profiles");
        for i in per_profile {
            assert!(
                i["vectors"].as_u64().is_some_and(|n| n >= 1_000_000),
                "{op}: {i}"
            );
        }
    }
}

#[test]
fn get_pfns_region_bound_catches_a_prepare_bug_through_the_fault_path() {
    // The mutant's prepare makes a 2M entry private without asking whether
    // the region fits the table: only a fault meeting an RMP state where
    // it does not (get-pfn's region bound, an RMP given) shows it there.
    let (code, r, err) = check(&[
        "--exhaustive",
        "--random",
        "0",
        "--impl",
        "mutant:prepare-2m-unchecked",
    ]);
    assert_eq!(code, 1, "{err}");
    let g = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["operation"] == "get-pfn")
        .expect("get-pfn item");
    assert_eq!(g["verdict"], "diverges", "{g:#}");
    let input = &g["counterexample"]["input"];
    assert!(input["rmp"].is_array(), "{g:#}");
    assert!(
        g["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("gmem_prepare(pfn 0x200")),
        "{g:#}"
    );
}

#[test]
fn bad_input_exits_2() {
    let (code, _, err) = check(&["--impl", "mutant:nonsense"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("mutant:nonsense") && err.contains("solo-2023-range"),
        "{err}"
    );
    let (code, _, err) = check(&["--vectors", "/nonexistent/dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}
