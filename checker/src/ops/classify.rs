//! `classify`: the private/shared fault classification chain.
//!
//! The C runs from the exit handler: `npf_interception()` for SVM VM
//! types, `kvm_mmu_page_fault()` directly for TDX, through
//! `kvm_mmu_do_page_fault()` to the shim's `kvm_tdp_page_fault()`, which
//! applies `kvm_faultin_pfn()`'s exits. Exhaustive bound: the zero code,
//! every error-code bit alone and every pair of bits, for each VM type,
//! both attributes, each slot kind, and GPAs with and without the TDX
//! shared bits.
//!
//! TDX on a tree with its own EPT-violation exit (6.16+ `tdx.c`,
//! `GMF_OP_CLASSIFY_TDX`): the case's GPA goes through
//! `tdx_handle_ept_violation()` and `__vmx_handle_ept_violation()`, its
//! error code only as the access (write or read, present or not) of the
//! exit qualification; the model is asked about the error code the exit
//! built, and its private bit, gfn and outcome must be TDX's rule's.
//!
//! Model-only cases: TDX on the upstream profile when the tree has no TDX
//! exit (6.12); rule overrides the 2023 profile's C cannot express; TDX
//! shared bits other than 47 and 51. A rule override on the upstream
//! profile is of another profile ([`Outcome::other_profile`]): upstream
//! has no configurable rule.

use super::picture::{self, MISSING_RED};
use serde_json::{Value, json};
use std::fmt::Write as _;

use super::{
    CaseOps, Counterexample, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json,
    run_cases, smaller_numbers, time_split, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::fault::{
    FaultInput, FaultRule, Outcome as FaultOutcome, PrivateWhen, RuleSource, SlotKind, VmType,
    classify_fault,
};
use gmem_reference::kernel::{PAGE_SHIFT, PFERR_PRIVATE_ACCESS, PFERR_SYNTHETIC_MASK};

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "classify",
    cop: COp::Classify,
    run,
    case_json,
    explain,
    picture,
};

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::classify)
}

fn vm_code(vm: VmType) -> u32 {
    match vm {
        VmType::Default => abi::GMF_VM_DEFAULT,
        VmType::SwProtected => abi::GMF_VM_SW_PROTECTED,
        VmType::Sev => abi::GMF_VM_SEV,
        VmType::SevEs => abi::GMF_VM_SEV_ES,
        VmType::Snp => abi::GMF_VM_SNP,
        VmType::Tdx => abi::GMF_VM_TDX,
    }
}

fn rule_of(q: &FaultInput) -> FaultRule {
    q.rule
        .unwrap_or_else(|| FaultRule::for_vm(q.vm_type, q.tdx_shared_bit))
}

/// Whether the case sets a private-fault rule of its own that no tree of
/// `profile` can be configured with: only the 2023 design had a per-VM
/// rule (`mmu_private_fault_mask`); upstream fixes each VM type's rule in
/// code, so an override there describes another generation, not a case
/// this C fails to express.
fn other_profile(profile: Profile, q: &FaultInput) -> bool {
    profile != Profile::GmemSolo2023
        && q.rule
            .is_some_and(|r| r != FaultRule::for_vm(q.vm_type, q.tdx_shared_bit))
}

/// Whether `profile`'s C can run the case; `tdx_exit`: the C brings its
/// own TDX EPT-violation exit (`GMF_OP_CLASSIFY_TDX`), which applies TDX's
/// own rule only.
fn applicable(profile: Profile, tdx_exit: bool, q: &FaultInput) -> bool {
    let natural = FaultRule::for_vm(q.vm_type, q.tdx_shared_bit);
    let rule = rule_of(q);
    if q.vm_type == VmType::Tdx && tdx_exit {
        return matches!(q.tdx_shared_bit, 47 | 51) && rule == natural;
    }
    if q.vm_type == VmType::Tdx
        && !(profile == Profile::GmemSolo2023 && matches!(q.tdx_shared_bit, 47 | 51))
    {
        return false;
    }
    if rule == natural {
        return true;
    }
    // The 2023 profile's configurable rule: an error-code mask that means
    // private when set, or a page-granular GPA mask that means private when
    // clear, each on a VM type with private memory.
    profile == Profile::GmemSolo2023
        && q.vm_type.has_private_mem()
        && rule.mask != 0
        && match (rule.source, rule.private_when) {
            (RuleSource::ErrorCode, PrivateWhen::Set) => true,
            (RuleSource::Gpa, PrivateWhen::Clear) => rule.mask & ((1 << PAGE_SHIFT) - 1) == 0,
            _ => false,
        }
}

fn c_input(q: &FaultInput) -> abi::gmf_fault_in {
    let rule = rule_of(q);
    abi::gmf_fault_in {
        vm_type: vm_code(q.vm_type),
        slot_kind: match q.slot {
            SlotKind::Gmem => abi::GMF_SLOT_GMEM,
            SlotKind::Plain => abi::GMF_SLOT_PLAIN,
            SlotKind::None => abi::GMF_SLOT_NONE,
        },
        error_code: q.error_code,
        gpa: q.gpa,
        attr_private: u8::from(q.attr_private),
        tdx_shared_bit: q.tdx_shared_bit,
        rule_source: match rule.source {
            RuleSource::ErrorCode => 0,
            RuleSource::Gpa => 1,
            RuleSource::Attribute => 2,
            RuleSource::Never => 3,
        },
        rule_private_if_set: u8::from(rule.private_when == PrivateWhen::Set),
        rule_mask: rule.mask,
    }
}

fn outcome_code(o: FaultOutcome) -> u32 {
    match o {
        FaultOutcome::Map => abi::GMF_FAULT_MAP,
        FaultOutcome::Mmio => abi::GMF_FAULT_MMIO,
        FaultOutcome::MemoryFault => abi::GMF_FAULT_MEMORY_EXIT,
        FaultOutcome::Efault => abi::GMF_FAULT_EFAULT,
    }
}

fn c_json(o: &abi::gmf_fault_out) -> Value {
    let outcome = ["map", "mmio", "memory_fault", "efault"]
        .get(o.outcome as usize)
        .copied()
        .unwrap_or("?");
    json!({
        "private": o.is_private != 0, "error_code": o.error_code, "gfn": o.gfn,
        "outcome": outcome,
        "exit": {"gpa": o.exit_gpa, "size": o.exit_size, "flags": o.exit_flags},
        "warnings": o.warnings,
    })
}

/// Whether TDX cases run through the library's own EPT-violation exit.
fn tdx_exit(lib: &Library) -> bool {
    lib.has(abi::GMF_OP_CLASSIFY_TDX)
}

fn check(lib: &Library, profile: Profile, q: &FaultInput) -> Option<(String, Value)> {
    let input = c_input(q);
    let mut o = abi::gmf_fault_out::default();
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.classify)(&input, &mut o) };
    let c = c_json(&o);
    if r != 0 {
        return Some((format!("gmf_classify returned {r}"), c));
    }
    // A TD exit carries no error code: KVM builds one from the exit
    // qualification, so the model is asked about the code the exit built
    // (less the private bit, which is the rule's to add). TDX's rule reads
    // the GPA alone, so private, gfn and outcome are the model's own.
    let m = if q.vm_type == VmType::Tdx && tdx_exit(lib) {
        classify_fault(&FaultInput {
            error_code: o.error_code & !PFERR_PRIVATE_ACCESS,
            ..*q
        })
    } else {
        classify_fault(q)
    };
    let mut why = Vec::new();
    if (o.is_private != 0) != m.private {
        why.push(format!(
            "is_private: C {}, model {}",
            o.is_private != 0,
            m.private
        ));
    }
    if o.outcome != outcome_code(m.outcome) {
        why.push(format!(
            "outcome: C {}, model {:?}",
            c["outcome"], m.outcome
        ));
    }
    if let Some(e) = m.exit
        && (o.exit_gpa, o.exit_size, o.exit_flags) != (e.gpa, e.size, e.flags)
    {
        why.push(format!(
            "memory-fault exit: C gpa {:#x} size {} flags {:#x}, model gpa {:#x} size {} flags {:#x}",
            o.exit_gpa, o.exit_size, o.exit_flags, e.gpa, e.size, e.flags
        ));
    }
    if o.gfn != m.gfn {
        why.push(format!("gfn: C {:#x}, model {:#x}", o.gfn, m.gfn));
    }
    // The 2023 chain has no synthetic bits: it neither strips nor sets them.
    let (code_mask, hw_synthetic) = match profile {
        Profile::Upstream => (u64::MAX, 0),
        Profile::GmemSolo2023 => (
            !(PFERR_SYNTHETIC_MASK | PFERR_PRIVATE_ACCESS),
            u32::from(q.error_code & PFERR_SYNTHETIC_MASK != 0),
        ),
    };
    if o.error_code & code_mask != m.error_code & code_mask {
        why.push(format!(
            "error code to kvm_mmu_do_page_fault(): C {:#x}, model {:#x}",
            o.error_code, m.error_code
        ));
    }
    if o.warnings != m.warnings - hw_synthetic {
        why.push(format!(
            "WARNs: C {}, model {}",
            o.warnings,
            m.warnings - hw_synthetic
        ));
    }
    (!why.is_empty()).then(|| (why.join("; "), c))
}

fn candidates(q: &FaultInput) -> Vec<FaultInput> {
    let mut out = Vec::new();
    // Drop error-code bits one at a time, highest first, then shrink the GPA.
    for bit in (0..64).rev() {
        if q.error_code & (1 << bit) != 0 {
            out.push(FaultInput {
                error_code: q.error_code & !(1 << bit),
                ..*q
            });
        }
    }
    for bit in (0..64).rev() {
        if q.gpa & (1 << bit) != 0 {
            out.push(FaultInput {
                gpa: q.gpa & !(1 << bit),
                ..*q
            });
        }
    }
    if q.slot != SlotKind::Gmem {
        out.push(FaultInput {
            slot: SlotKind::Gmem,
            ..*q
        });
    }
    if q.attr_private {
        out.push(FaultInput {
            attr_private: false,
            ..*q
        });
    }
    out.extend(
        smaller_numbers(q.gpa)
            .into_iter()
            .map(|gpa| FaultInput { gpa, ..*q }),
    );
    out
}

/// The exhaustive cases, in a fixed order.
pub fn exhaustive() -> impl Iterator<Item = FaultInput> {
    let mut codes = vec![0u64];
    for a in 0..64 {
        codes.push(1 << a);
        for b in a + 1..64 {
            codes.push((1 << a) | (1 << b));
        }
    }
    let gpas = [
        0x1234_5000u64,
        0x1234_5000 | (1 << 47),
        0x1234_5000 | (1 << 51),
    ];
    VmType::ALL.into_iter().flat_map(move |vm| {
        let codes = codes.clone();
        let bits: &'static [u8] = if vm == VmType::Tdx { &[47, 51] } else { &[51] };
        bits.iter().flat_map(move |&bit| {
            let codes = codes.clone();
            [SlotKind::Gmem, SlotKind::Plain, SlotKind::None]
                .into_iter()
                .flat_map(move |slot| {
                    let codes = codes.clone();
                    [false, true].into_iter().flat_map(move |attr| {
                        let codes = codes.clone();
                        gpas.into_iter().flat_map(move |gpa| {
                            codes.clone().into_iter().map(move |error_code| FaultInput {
                                vm_type: vm,
                                error_code,
                                gpa,
                                attr_private: attr,
                                slot,
                                tdx_shared_bit: bit,
                                rule: None,
                            })
                        })
                    })
                })
        })
    })
}

fn random_case(rng: &mut Rng) -> FaultInput {
    let vm = VmType::ALL[rng.below(6) as usize];
    FaultInput {
        vm_type: vm,
        error_code: if rng.bool() {
            rng.next_u64()
        } else {
            rng.edgy()
        },
        gpa: rng.edgy(),
        attr_private: rng.bool(),
        slot: [SlotKind::Gmem, SlotKind::Plain, SlotKind::None][rng.below(3) as usize],
        tdx_shared_bit: if rng.bool() { 47 } else { 51 },
        rule: None,
    }
}

fn cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = FaultInput>> {
    cases_of(source, vectors, "classify", exhaustive, random_case)
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let (lib, profile) = (ctx.lib, ctx.profile);
    let tdx = tdx_exit(lib);
    run_cases(
        ctx,
        cases(source, ctx.vectors),
        &CaseOps {
            other_profile: Some(&|q| other_profile(profile, q)),
            applicable: &|q| applicable(profile, tdx, q),
            check: &|q| check(lib, profile, q),
            candidates: &candidates,
            model_json: &|q| to_json(&classify_fault(q)),
        },
    )
}

fn case_json(
    source: Source,
    index: u64,
    _p: Profile,
    _lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    nth_case_json(cases(source, vectors), index)
}

/// The exhaustive cases timed apart (the bench).
pub fn split(lib: &Library, profile: Profile) -> Split {
    let none = |_: &str| Vec::new();
    time_split(
        || cases(Source::Exhaustive, &none),
        |q| applicable(profile, tdx_exit(lib), q),
        |q| {
            let input = c_input(q);
            let mut o = abi::gmf_fault_out::default();
            // SAFETY: valid pointers for the call.
            unsafe { (lib.classify)(&input, &mut o) };
            std::hint::black_box(&o);
        },
        |q| {
            std::hint::black_box(classify_fault(q));
        },
    )
}

/// The error code's bits, the deciding one marked.
pub fn picture(c: &Counterexample) -> Option<String> {
    let code = c.input["error_code"].as_u64()?;
    let vm = c.input["vm_type"].as_str().unwrap_or("");
    let model_code = c.model["error_code"].as_u64().unwrap_or(code);
    let c_code = c.c["error_code"].as_u64().unwrap_or(code);
    // The deciding bits: the rule's bit for the VM, and any bit where the
    // error codes the model and the C pass on differ.
    let mut decide: u64 = match vm {
        "snp" => 1 << 34,
        _ => 0,
    };
    decide |= model_code ^ c_code;
    let mut s = picture::open("classify", 900, 120);
    for bit in (0..64u32).rev() {
        let col = 63 - bit;
        let (xx, y) = (10 + col * 13 + (col / 8) * 4, 30);
        let set = code & (1 << bit) != 0;
        let fill = if set { "#333" } else { "#fff" };
        let (stroke, sw) = if decide & (1 << bit) != 0 {
            (MISSING_RED, 3)
        } else {
            ("#999", 1)
        };
        let _ = write!(
            s,
            r##"<rect class="{}" x="{xx}" y="{y}" width="11" height="22" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>"##,
            if decide & (1 << bit) != 0 {
                "bit deciding"
            } else {
                "bit"
            }
        );
        if bit % 8 == 0 || decide & (1 << bit) != 0 {
            let colour = if decide & (1 << bit) != 0 {
                MISSING_RED
            } else {
                "#666"
            };
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="{colour}">{bit}</text>"##,
                xx + 5,
                y + 38
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="10" y="18">error code {code:#x} ({vm}); red: the bit that decides private vs shared, or differs between model and C</text></svg>"##
    );
    Some(s)
}
