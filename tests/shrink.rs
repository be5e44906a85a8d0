//! Shrinking ends at the smallest realistic counterexample: for each
//! operation, each mutant that breaks it (`codegen/src/unit.rs`) is run
//! through `gmemforge check`, and its counterexample's input must be the
//! minimum below, derived by hand from the bug.
//!
//! "Smallest" is the order each operation minimises in (its `candidates`
//! in `checker/src/ops/`, and ARCHITECTURE.md "Shrinking"): fewer things
//! first (memslots, bindings, folios, RMP runs, faults, files), then
//! fewer pages (file size, memslot size, hole, range), then lower offsets
//! and frame numbers (file offsets, gfns, the layout moved down as a
//! whole), then round values (0, single bits). "Realistic" is what real
//! callers pass: page-aligned guest_memfd offsets and sizes of at least a
//! page, page-aligned non-empty holes and pre-fault ranges, an SNP guest's
//! ASID of 1 or more, folios aligned to their order.

use std::process::Command;

use serde_json::{Value, json};

/// The counterexample input of `operation` when `mutant` is checked.
fn shrunk(mutant: &str, operation: &str) -> (Value, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(["check", "--json", "--random", "0", "--impl"])
        .arg(format!("mutant:{mutant}"))
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1), "{mutant} diverges");
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let item = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["operation"] == operation && i["verdict"] == "diverges")
        .unwrap_or_else(|| panic!("{mutant}: {operation} does not diverge: {r:#}"))
        .clone();
    let c = &item["counterexample"];
    assert!(
        c["shrink_steps"]
            .as_u64()
            .is_some_and(|n| n <= u64::from(gmem_checker::ops::SHRINK_LIMIT)),
        "{mutant}: shrinking hit its limit: {c}"
    );
    (c["input"].clone(), c.clone())
}

fn assert_minimal(mutant: &str, operation: &str, want: Value) {
    let (input, c) = shrunk(mutant, operation);
    assert_eq!(
        input, want,
        "{mutant} on {operation}: not the minimum\n{c:#}"
    );
}

#[test]
fn bind_shrinks_to_a_two_page_memslot_on_a_one_page_file() {
    // The smallest file a guest_memfd can have is one page; a binding of
    // one page fits any offset the mutant also accepts (offset <= i_size
    // and past it only at offset = i_size, a higher offset), so two pages
    // at offset 0: 0 + 2 * 4096 > 4096.
    assert_minimal(
        "bind-past-eof",
        "bind",
        json!({"profile": "gmem-solo-2023",
            "files": [{"fd": 3, "size": 4096, "gmem": true, "other_vm": false}],
            "slots": [],
            "new": {"id": 1, "base_gfn": 0, "npages": 2, "fd": 3, "offset": 0}}),
    );
}

#[test]
fn the_72_bind_contracts_mutants_shrink_to_one_page() {
    // A loff_t offset + size wraps negative first at 2^63: one page at
    // the last page-aligned offset below it, on the smallest file.
    assert_minimal(
        "bind-loff-wrap",
        "bind",
        json!({"profile": "upstream", "contract": "prepare-commit",
            "files": [{"fd": 3, "size": 4096, "gmem": true, "other_vm": false}],
            "slots": [],
            "new": {"id": 1, "base_gfn": 0, "npages": 1, "fd": 3,
                "offset": (1u64 << 63) - 4096}}),
    );
    // A file range bound twice: one page bound at file page 0 (gfn 0),
    // the same page again for the next gfn.
    assert_minimal(
        "commit-einval",
        "bind",
        json!({"profile": "upstream", "contract": "prepare-commit",
            "files": [{"fd": 3, "size": 4096, "gmem": true, "other_vm": false}],
            "slots": [{"id": 2, "base_gfn": 0, "npages": 1, "gmem": {"fd": 3, "pgoff": 0}}],
            "new": {"id": 1, "base_gfn": 1, "npages": 1, "fd": 3, "offset": 0}}),
    );
}

#[test]
fn invalidate_shrinks_to_one_page_bindings() {
    // 2023's code WARNs and skips a binding the range does not lie
    // inside: one page at offset 0, a range one page longer.
    assert_minimal(
        "solo-2023-range",
        "invalidate",
        json!({"slots": [{"id": 1, "base_gfn": 0, "npages": 1, "pgoff": 0}], "start": 0, "end": 2}),
    );
    // A missing pgoff shows first at file offset 1.
    for m in ["no-pgoff", "upstream-range"] {
        assert_minimal(
            m,
            "invalidate",
            json!({"slots": [{"id": 1, "base_gfn": 0, "npages": 1, "pgoff": 1}], "start": 0, "end": 2}),
        );
    }
}

#[test]
fn classify_shrinks_to_one_bit() {
    // The lowest bit a 32-bit truncation loses.
    let (input, _) = shrunk("u32-error-code", "classify");
    assert_eq!(input["error_code"], 1u64 << 32, "{input}");
    assert_eq!(
        (input["gpa"].as_u64(), input["vm_type"].as_str()),
        (Some(0), Some("snp"))
    );
    // The rule's own bit: 34, PFERR_GUEST_ENC, alone.
    let (input, _) = shrunk("u32-rule", "classify");
    assert_eq!(input["error_code"], 1u64 << 34, "{input}");
    assert_eq!(input["gpa"], 0);
}

#[test]
fn prepare_shrinks_to_one_private_page_next_to_the_head() {
    assert_minimal(
        "prepare-2m-unchecked",
        "prepare",
        json!({"snp_guest": true, "snp_enabled": true, "asid": 1, "pfn": 512, "gfn": 0,
            "max_order": 9, "max_pfn": 2048,
            "rmp": [{"pfn": 513, "npages": 1, "size": "4K", "asid": 1, "gpa": 4096,
                "immutable": false, "validated": false}]}),
    );
}

#[test]
fn gmem_invalidate_shrinks_to_one_page_of_a_2m_entry() {
    assert_minimal(
        "invalidate-no-psmash",
        "gmem-invalidate",
        json!({"snp_enabled": true, "start": 512, "end": 513, "max_pfn": 2048,
            "rmp": [{"pfn": 512, "npages": 512, "size": "2M", "asid": 1, "gpa": 2097152,
                "immutable": false, "validated": false}]}),
    );
}

#[test]
fn pre_fault_shrinks_to_one_private_page_at_gfn_0() {
    assert_minimal(
        "prefault-ignores-rule",
        "pre-fault",
        json!({"vm_type": "snp", "launched": true, "tdp": true, "gpa": 0, "size": 4096, "flags": 0,
            "slots": [{"base_gfn": 0, "npages": 1, "gmem": true, "max_level": "4K"}],
            "private": {"start": 0, "end": 1}, "interrupt_after": null}),
    );
}

#[test]
fn punch_hole_shrinks_to_one_page_holes() {
    // One 4K folio with its 4K RMP entry, a one-page hole over it.
    let one_folio = json!({"bindings": [], "pfn_base": 512,
        "folios": [{"index": 0, "order": 0}], "offset": 0, "len": 4096, "max_pfn": 2048,
        "rmp": [{"pfn": 512, "npages": 1, "size": "4K", "asid": 1, "gpa": 8388608,
            "immutable": false, "validated": false}]});
    for m in ["rmp-under-mmu-lock", "free-folio-unregistered"] {
        assert_minimal(m, "punch-hole", one_folio.clone());
    }
    // PSMASH is needed only for part of a 2M entry: a 2M folio, one page.
    assert_minimal(
        "invalidate-no-psmash",
        "punch-hole",
        json!({"bindings": [], "pfn_base": 512,
            "folios": [{"index": 0, "order": 9}], "offset": 0, "len": 4096, "max_pfn": 2048,
            "rmp": [{"pfn": 512, "npages": 512, "size": "2M", "asid": 1, "gpa": 8388608,
                "immutable": false, "validated": false}]}),
    );
    // The range bugs need a binding at file offset 1 and a hole from 0.
    assert_minimal(
        "no-pgoff",
        "punch-hole",
        json!({"bindings": [{"id": 1, "base_gfn": 0, "npages": 1, "pgoff": 1}], "pfn_base": 512,
            "folios": [], "offset": 0, "len": 8192, "max_pfn": 2048, "rmp": []}),
    );
}

#[test]
fn get_pfn_shrinks_to_one_page_at_gfn_0() {
    let q = |faults: Value| {
        json!({"profile": "upstream", "snp": true, "asid": 1, "max_pfn": 2048, "nr_pfns": 2048,
            "bindings": [{"id": 0, "base_gfn": 0, "npages": 1, "pgoff": 0}], "slot": 0,
            "pfn_base": 512, "folios": [], "faults": faults})
    };
    assert_minimal("prepare-unwired", "get-pfn", q(json!([0])));
    // Preparing twice needs two faults on the same page.
    assert_minimal("prepare-every-fault", "get-pfn", q(json!([0, 0])));
}

/// The minimum does not depend on where shrinking starts: a case with two
/// more memslots, a second file, a ten-page file and a five-page binding
/// at page 7 shrinks to the same two pages on a one-page file.
#[test]
fn bind_shrinks_to_the_same_minimum_from_a_larger_case() {
    let dir = std::env::temp_dir().join(format!("gmemforge-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let input = json!({"profile": "gmem-solo-2023",
        "files": [{"fd": 3, "size": 40960}, {"fd": 5, "size": 8192}],
        "slots": [{"id": 0, "base_gfn": 4096, "npages": 2, "gmem": {"fd": 3, "pgoff": 0}},
                  {"id": 2, "base_gfn": 8192, "npages": 1, "gmem": {"fd": 3, "pgoff": 3}}],
        "new": {"id": 1, "base_gfn": 32768, "npages": 5, "fd": 3, "offset": 28672}});
    let file = json!({"operation": "bind", "description": "a larger start",
        "vectors": [{"id": "big", "comment": "pages 7..12 of a 10-page file",
            "input": input, "expected": {"ret": -22, "binding": null}}]});
    std::fs::write(dir.join("bind.json"), file.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "check",
            "--json",
            "--random",
            "0",
            "--impl",
            "mutant:bind-past-eof",
            "--vectors",
        ])
        .arg(&dir)
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let bind = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["operation"] == "bind")
        .expect("bind item");
    assert_eq!(
        bind["counterexample"]["input"],
        json!({"profile": "gmem-solo-2023",
            "files": [{"fd": 3, "size": 4096, "gmem": true, "other_vm": false}],
            "slots": [],
            "new": {"id": 1, "base_gfn": 0, "npages": 2, "fd": 3, "offset": 0}}),
        "{bind:#}"
    );
}
