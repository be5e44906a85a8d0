//! The KUnit suite of the series, built against the shim: its cases come
//! from the shared vectors, its C from codegen.

use gmem_codegen::kunit::{self, RangeCase, RuleCase};
use gmem_codegen::unit::Unit;
use gmem_reference::kernel::{PAGE_SHIFT, PFERR_GUEST_ENC_MASK};
use serde_json::Value;

use crate::compile::{CSource, CompileError, compile};
use crate::isolate::{self, Abnormal};
use crate::library::Library;
use crate::runner::{unit_defines, unit_ops};

/// One case per expected zap of each `invalidate` vector (refused vectors
/// have none), deduplicated, in vector order.
pub fn range_cases(vectors: &[Value]) -> Vec<RangeCase> {
    let mut out: Vec<RangeCase> = Vec::new();
    for v in vectors {
        let (input, expected) = (&v["input"], &v["expected"]);
        let (Some(start), Some(end)) = (input["start"].as_u64(), input["end"].as_u64()) else {
            continue;
        };
        let id = v["id"].as_str().unwrap_or("vector");
        let ranges = expected["ranges"].as_array().map_or(0, Vec::len);
        for r in expected["ranges"].as_array().into_iter().flatten() {
            let slot = input["slots"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["id"] == r["slot"]);
            let (Some(s), Some(gfn_start), Some(gfn_end)) =
                (slot, r["start"].as_u64(), r["end"].as_u64())
            else {
                continue;
            };
            let c = RangeCase {
                // One vector zapping several slots makes one case each.
                id: if ranges > 1 {
                    format!("{id}/slot{}", r["slot"])
                } else {
                    id.to_owned()
                },
                base_gfn: s["base_gfn"].as_u64().unwrap_or(0),
                pgoff: s["pgoff"].as_u64().unwrap_or(0),
                npages: s["npages"].as_u64().unwrap_or(0),
                start,
                end,
                gfn_start,
                gfn_end,
            };
            // The same binding and range from two vectors: one case.
            let same = |o: &RangeCase| RangeCase {
                id: String::new(),
                ..o.clone()
            };
            if !out.iter().any(|o| same(o) == same(&c)) {
                out.push(c);
            }
        }
    }
    out
}

/// `unit` with the suite for `cases` appended exactly as the series
/// appends it to guest_memfd.c, its config symbol on; compiled and loaded.
pub fn build(unit: &Unit, cases: &[RangeCase]) -> Result<Library, CompileError> {
    let text = format!("{}{}", unit.text(), kunit::embedded(unit.profile, cases));
    let ops = unit_ops(unit);
    let mut defines = unit_defines(unit);
    defines.push("GMF_HAVE_KUNIT".into());
    defines.push(format!("CONFIG_{}=1", kunit::CONFIG));
    let name = format!("{} + KUnit", unit.name);
    let path = compile(&CSource {
        name: &name,
        profile: unit.profile,
        text: &text,
        ops: &ops,
        defines: &defines,
    })?;
    Library::open(&path).map_err(|e| CompileError::Io(e.to_string()))
}

/// Runs the suite in a confined child, as every run of C under test is
/// (the suite is appended to a tree's own functions): (failed
/// expectations, expectations run), or how the child ended instead.
pub fn run(lib: &Library) -> Result<(i32, i32), Abnormal> {
    isolate::run(|p| {
        p.at(0);
        let mut n = 0;
        // SAFETY: gmf_kunit_run writes only through the pointer it is given.
        let failed = unsafe { (lib.kunit_run)(&mut n) };
        (failed, n)
    })
}

/// One case per `classify` vector of an SNP or TDX VM with the platform's
/// own rule: the masks that platform configures, the fault, and whether
/// the model calls it private.
pub fn rule_cases(vectors: &[Value]) -> Vec<RuleCase> {
    let mut out: Vec<RuleCase> = Vec::new();
    for v in vectors {
        let (input, expected) = (&v["input"], &v["expected"]);
        if !input["rule"].is_null() {
            continue;
        }
        let (Some(err), Some(gpa), Some(private)) = (
            input["error_code"].as_u64(),
            input["gpa"].as_u64(),
            expected["private"].as_bool(),
        ) else {
            continue;
        };
        let (fault_mask, shared_mask) = match input["vm_type"].as_str() {
            Some("snp") => (PFERR_GUEST_ENC_MASK, 0),
            Some("tdx") => match input["tdx_shared_bit"].as_u64().unwrap_or(51) {
                bit @ (47 | 51) => (0, (1u64 << bit) >> PAGE_SHIFT),
                _ => continue,
            },
            _ => continue,
        };
        let c = RuleCase {
            id: v["id"].as_str().unwrap_or("vector").to_owned(),
            fault_mask,
            shared_mask,
            err,
            gpa,
            private,
        };
        let same = |o: &RuleCase| RuleCase {
            id: String::new(),
            ..o.clone()
        };
        if !out.iter().any(|o| same(o) == same(&c)) {
            out.push(c);
        }
    }
    out
}

/// `unit` with the fault-rule suite appended as the series appends it to
/// mmu.c; compiled and loaded.
pub fn build_rule(unit: &Unit, cases: &[RuleCase]) -> Result<Library, CompileError> {
    let text = format!("{}{}", unit.text(), kunit::rule_embedded(cases));
    let ops = unit_ops(unit);
    let mut defines = unit_defines(unit);
    defines.push("GMF_HAVE_KUNIT".into());
    defines.push(format!("CONFIG_{}=1", kunit::RULE_CONFIG));
    let name = format!("{} + fault-rule KUnit", unit.name);
    let path = compile(&CSource {
        name: &name,
        profile: unit.profile,
        text: &text,
        ops: &ops,
        defines: &defines,
    })?;
    Library::open(&path).map_err(|e| CompileError::Io(e.to_string()))
}
