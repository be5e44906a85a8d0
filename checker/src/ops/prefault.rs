//! `pre-fault`: the KVM_PRE_FAULT_MEMORY vCPU ioctl.
//!
//! The C runs `kvm_vcpu_pre_fault_memory()` and the arch op against the
//! shim's `kvm_tdp_map_page()`, which maps over the case's memslots.
//! Exhaustive bound: gpa and size over page, 2M and slot boundaries around
//! a 2M+4K slot (the 6.12 selftest's layout), with flags, VM types, launch
//! state, TDP, a private attribute span and a pending signal.

use serde_json::{Value, json};

use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json, run_cases,
    smaller_numbers, time_split, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::fault::VmType;
use gmem_reference::kernel::{PAGE_SHIFT, PG_LEVEL_2M, PG_LEVEL_4K};
use gmem_reference::prefault::{GfnSpan, PreFaultInput, PreFaultSlot, kvm_vcpu_pre_fault_memory};
use gmem_reference::rmp::PageSize;

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "pre-fault",
    cop: COp::Prefault,
    run,
    case_json,
    explain,
    picture,
};

/// Guest frames: the memslots (2M-capable ones dark), the private gfns,
/// the requested range, and how far the model and the C got through it.
fn picture(c: &super::Counterexample) -> Option<String> {
    use super::picture::{
        self, Axis, C_BLUE, MISSING_RED, MODEL_GREEN, RANGE_ORANGE, rect, text, u,
    };
    let (gpa, size) = (c.input["gpa"].as_u64()?, c.input["size"].as_u64()?);
    let (g0, g1) = (gpa >> 12, gpa.saturating_add(size) >> 12);
    let span = (g1 - g0).max(16);
    let ax = Axis {
        lo: g0.saturating_sub(span / 4),
        hi: g1.saturating_add(span / 4).max(g0 + 1),
        x0: 150.0,
        w: 720.0,
    };
    let rows = [
        "memslots",
        "private",
        "requested",
        "model mapped",
        "C mapped",
    ];
    let mut s = picture::open("pre-fault", 900, (40 + rows.len() * 40 + 30) as u32);
    ax.ticks(&mut s, 18.0, |g| format!("{g:#x}"));
    for (i, r) in rows.iter().enumerate() {
        text(&mut s, 8.0, 50.0 + i as f64 * 40.0, "#222", r);
    }
    let row_y = |i: usize| 32.0 + i as f64 * 40.0;
    for sl in c.input["slots"].as_array().into_iter().flatten() {
        let (b, n) = (u(&sl["base_gfn"]), u(&sl["npages"]));
        let huge = sl["max_level"].as_str() == Some("2M");
        rect(
            &mut s,
            "memslot",
            ax.x(b),
            row_y(0),
            ax.x(b.saturating_add(n)) - ax.x(b),
            26.0,
            if huge {
                r##"fill="#6baed6" stroke="#333""##
            } else {
                r##"fill="#c6dbef" stroke="#333""##
            },
            &format!(
                "gfn {b:#x}, {n} page{}, {}{}",
                if n == 1 { "" } else { "s" },
                if huge { "2M ok" } else { "4K only" },
                if sl["gmem"].as_bool() == Some(true) {
                    ", gmem"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(p) = c.input.get("private").filter(|p| !p.is_null()) {
        let (a, b) = (u(&p["start"]), u(&p["end"]));
        rect(
            &mut s,
            "private",
            ax.x(a),
            row_y(1),
            ax.x(b) - ax.x(a),
            26.0,
            r##"fill="#756bb1" fill-opacity="0.6""##,
            "private",
        );
    }
    rect(
        &mut s,
        "requested",
        ax.x(g0),
        row_y(2),
        ax.x(g1) - ax.x(g0),
        26.0,
        &format!(r##"fill="#fdd49e" stroke="{RANGE_ORANGE}""##),
        &format!("[{gpa:#x}, +{size:#x})"),
    );
    for (row, side, colour) in [(3, &c.model, MODEL_GREEN), (4, &c.c, C_BLUE)] {
        let done = side["gpa"].as_u64().unwrap_or(gpa) >> 12;
        let ret = side["ret_errno"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| side["ret"].to_string());
        if done > g0 {
            rect(
                &mut s,
                "mapped",
                ax.x(g0),
                row_y(row),
                ax.x(done) - ax.x(g0),
                26.0,
                &format!(r##"fill="{colour}" fill-opacity="0.85""##),
                "",
            );
        }
        text(
            &mut s,
            ax.x(done.max(g0)) + 4.0,
            row_y(row) + 17.0,
            "#222",
            &format!(
                "ret {ret}, {} calls, range.gpa {:#x}",
                side["calls"],
                u(&side["gpa"])
            ),
        );
    }
    let differ = c.model["gpa"] != c.c["gpa"] || c.model["ret"] != c.c["ret"];
    text(
        &mut s,
        8.0,
        row_y(5) + 14.0,
        if differ { MISSING_RED } else { "#222" },
        if differ {
            "the model and the C stop at different places or return differently"
        } else {
            "same progress and return; the difference is in calls or WARNs (see why)"
        },
    );
    s.push_str("</svg>");
    Some(s)
}

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::pre_fault)
}

/// Largest range the C is asked to walk, in pages (each page can be a call).
const MAX_C_PAGES: u64 = 1 << 14;

/// Model-only: more slots than the harness holds, ranges too long to walk
/// in C quickly, and a signal pending before the first call (the harness
/// spells "never" as 0).
fn applicable(q: &PreFaultInput) -> bool {
    fits(q) && kvm_vcpu_pre_fault_memory(q).is_ok()
}

/// Whether the harness can express the case.
fn fits(q: &PreFaultInput) -> bool {
    q.slots.len() <= abi::GMF_MAX_SLOTS as usize
        && q.interrupt_after != Some(0)
        && (q.size >> PAGE_SHIFT) <= MAX_C_PAGES
}

/// The harness input of a case.
fn prefault_input(q: &PreFaultInput) -> abi::gmf_prefault_in {
    let mut input = abi::gmf_prefault_in {
        vm_type: match q.vm_type {
            VmType::Default => abi::GMF_VM_DEFAULT,
            VmType::SwProtected => abi::GMF_VM_SW_PROTECTED,
            VmType::Sev => abi::GMF_VM_SEV,
            VmType::SevEs => abi::GMF_VM_SEV_ES,
            VmType::Snp => abi::GMF_VM_SNP,
            VmType::Tdx => abi::GMF_VM_TDX,
        },
        pre_fault_allowed: u8::from(q.launched || !matches!(q.vm_type, VmType::Snp | VmType::Tdx)),
        tdp: u8::from(q.tdp),
        gpa: q.gpa,
        size: q.size,
        flags: q.flags,
        nslots: q.slots.len() as u32,
        private_start: q.private.map_or(0, |p| p.start),
        private_end: q.private.map_or(0, |p| p.end),
        interrupt_after: 0,
        ..Default::default()
    };
    // "A signal after N arch calls"; the harness spells never as 0.
    input.interrupt_after = q.interrupt_after.unwrap_or(0);
    for (d, s) in input.slots.iter_mut().zip(&q.slots) {
        *d = abi::gmf_prefault_slot {
            base_gfn: s.base_gfn,
            npages: s.npages,
            gmem: u8::from(s.gmem),
            max_level: if s.max_level == PageSize::M2 {
                PG_LEVEL_2M as u8
            } else {
                PG_LEVEL_4K as u8
            },
        };
    }
    input
}

fn check(lib: &Library, q: &PreFaultInput) -> Option<(String, Value)> {
    let m = kvm_vcpu_pre_fault_memory(q).ok()?;
    let input = prefault_input(q);
    let mut o = abi::gmf_prefault_out::default();
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.prefault)(&input, &mut o) };
    let c = json!({"ret": o.ret, "gpa": o.gpa, "size": o.size, "calls": o.calls, "warnings": o.warnings});
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_prefault returned {r}"));
    }
    if o.ret != m.ret {
        why.push(format!("ioctl returned {}, model {}", o.ret, m.ret));
    }
    if (o.gpa, o.size) != (m.gpa, m.size) {
        why.push(format!(
            "range left: C gpa {:#x} size {:#x}, model gpa {:#x} size {:#x}",
            o.gpa, o.size, m.gpa, m.size
        ));
    }
    if o.calls != m.calls {
        why.push(format!("arch calls: C {}, model {}", o.calls, m.calls));
    }
    if o.warnings != m.warnings {
        why.push(format!("WARNs: C {}, model {}", o.warnings, m.warnings));
    }
    (!why.is_empty()).then(|| (why.join("; "), c))
}

const BASE: u64 = 0x10_0000; // gfn of the slot: GPA 4G

fn selftest_slot(max_level: PageSize, gmem: bool) -> PreFaultSlot {
    PreFaultSlot {
        base_gfn: BASE,
        npages: 513,
        gmem,
        max_level,
    }
}

fn exhaustive() -> impl Iterator<Item = PreFaultInput> {
    let base = BASE << PAGE_SHIFT;
    let gpas = [
        base - 0x1000,
        base,
        base + 0x1000,
        base + 0x1f_f000,
        base + 0x20_0000,
        base + 0x20_1000,
        base + 1,
    ];
    let sizes = [0u64, 0x1000, 0x2000, 0x20_0000, 0x20_1000, 0x40_0000, 0x800];
    let vms = [VmType::Default, VmType::SwProtected, VmType::Snp];
    gpas.into_iter()
        .flat_map(move |gpa| {
            sizes.into_iter().flat_map(move |size| {
                vms.into_iter().flat_map(move |vm_type| {
                    [
                        (true, true, false, None),
                        (false, true, false, None),
                        (true, false, false, None),
                        (true, true, true, None),
                        (true, true, false, Some(0)),
                        (true, true, false, Some(1)),
                    ]
                    .into_iter()
                    .flat_map(
                        move |(launched, tdp, private, interrupt_after)| {
                            [PageSize::K4, PageSize::M2]
                                .into_iter()
                                .flat_map(move |lvl| {
                                    [true, false].into_iter().map(move |gmem| PreFaultInput {
                                        vm_type,
                                        launched,
                                        tdp,
                                        gpa,
                                        size,
                                        flags: 0,
                                        slots: vec![selftest_slot(lvl, gmem)],
                                        private: private.then_some(GfnSpan {
                                            start: BASE + 1,
                                            end: BASE + 600,
                                        }),
                                        interrupt_after,
                                    })
                                })
                        },
                    )
                })
            })
        })
        .chain([1u64, 2, 1 << 63].into_iter().map(|flags| PreFaultInput {
            vm_type: VmType::Default,
            launched: true,
            tdp: true,
            gpa: BASE << PAGE_SHIFT,
            size: 0x1000,
            flags,
            slots: vec![selftest_slot(PageSize::K4, false)],
            private: None,
            interrupt_after: None,
        }))
}

fn random_case(rng: &mut Rng) -> PreFaultInput {
    let slots = (0..rng.below(3))
        .map(|i| PreFaultSlot {
            base_gfn: BASE + i * 0x400 + rng.below(4) * 0x100,
            npages: 1 + rng.below(0x400),
            gmem: rng.bool(),
            max_level: if rng.bool() {
                PageSize::M2
            } else {
                PageSize::K4
            },
        })
        .collect();
    PreFaultInput {
        vm_type: VmType::ALL[rng.below(6) as usize],
        launched: rng.below(4) != 0,
        tdp: rng.below(8) != 0,
        gpa: if rng.below(8) == 0 {
            rng.edgy()
        } else {
            (BASE + rng.below(0x1000)) << PAGE_SHIFT
        },
        size: if rng.below(8) == 0 {
            rng.edgy()
        } else {
            rng.below(0x500) << PAGE_SHIFT
        },
        flags: if rng.below(16) == 0 { rng.edgy() } else { 0 },
        slots,
        private: rng.bool().then(|| GfnSpan {
            start: BASE + rng.below(0x800),
            end: BASE + rng.below(0x1000),
        }),
        interrupt_after: (rng.below(8) == 0).then(|| rng.below(3) as u32),
    }
}

fn cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = PreFaultInput>> {
    cases_of(source, vectors, "pre-fault", exhaustive, random_case)
}

/// Smaller cases, in the order pre-fault minimises (ARCHITECTURE.md,
/// "Shrinking"): fewer memslots, a shorter range, no private gfns or a
/// narrower span of them, no pending signal, memslots with fewer pages,
/// then the whole layout (memslots, range, private span) moved down to
/// lower gfns by whole 2M frames, so 2M mappings stay possible where they
/// were. The range stays page aligned and non-empty, as the ioctl's
/// callers pass it.
fn candidates(q: &PreFaultInput) -> Vec<PreFaultInput> {
    let mut out: Vec<PreFaultInput> = (0..q.slots.len())
        .map(|i| {
            let mut c = q.clone();
            c.slots.remove(i);
            c
        })
        .collect();
    out.extend(
        smaller_numbers(q.size >> PAGE_SHIFT)
            .into_iter()
            .filter(|&p| p > 0)
            .map(|p| PreFaultInput {
                size: p << PAGE_SHIFT,
                ..q.clone()
            }),
    );
    if let Some(p) = q.private {
        out.push(PreFaultInput {
            private: None,
            ..q.clone()
        });
        let gfn = q.gpa >> PAGE_SHIFT;
        let n = p.end.saturating_sub(p.start);
        for (start, end) in [
            (p.start.max(gfn), p.end),
            (p.start, p.start + n / 2),
            (p.start, p.end.saturating_sub(1)),
            (p.start + n / 2, p.end),
            (p.start + 1, p.end),
        ] {
            if start < end && (start, end) != (p.start, p.end) {
                out.push(PreFaultInput {
                    private: Some(GfnSpan { start, end }),
                    ..q.clone()
                });
            }
        }
    }
    if q.interrupt_after.is_some() {
        out.push(PreFaultInput {
            interrupt_after: None,
            ..q.clone()
        });
    }
    for i in 0..q.slots.len() {
        for n in smaller_numbers(q.slots[i].npages)
            .into_iter()
            .filter(|&n| n > 0)
        {
            let mut c = q.clone();
            c.slots[i].npages = n;
            out.push(c);
        }
    }
    // Move everything down by whole 2M frames.
    let low = q
        .slots
        .iter()
        .map(|s| s.base_gfn)
        .chain([q.gpa >> PAGE_SHIFT])
        .chain(q.private.map(|p| p.start))
        .min()
        .unwrap_or(0)
        / 512;
    for k in smaller_numbers(low) {
        let d = (low - k) * 512;
        let mut c = q.clone();
        for s in &mut c.slots {
            s.base_gfn -= d;
        }
        c.gpa -= d << PAGE_SHIFT;
        c.private = q.private.map(|p| GfnSpan {
            start: p.start - d,
            end: p.end - d,
        });
        out.push(c);
    }
    out
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let lib = ctx.lib;
    run_cases(
        ctx,
        cases(source, ctx.vectors),
        &CaseOps {
            other_profile: None,
            applicable: &applicable,
            check: &|q| check(lib, q),
            candidates: &candidates,
            model_json: &|q| {
                kvm_vcpu_pre_fault_memory(q)
                    .map(|a| to_json(&a))
                    .unwrap_or(Value::Null)
            },
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
pub fn split(lib: &Library) -> Split {
    let none = |_: &str| Vec::new();
    time_split(
        || cases(Source::Exhaustive, &none),
        fits,
        |q| {
            let input = prefault_input(q);
            let mut o = abi::gmf_prefault_out::default();
            // SAFETY: valid pointers for the call.
            unsafe { (lib.prefault)(&input, &mut o) };
            std::hint::black_box(&o);
        },
        |q| {
            std::hint::black_box(kvm_vcpu_pre_fault_memory(q).ok());
        },
    )
}
