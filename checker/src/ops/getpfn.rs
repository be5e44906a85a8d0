//! `get-pfn`: `kvm_gmem_get_pfn()`, the fault path into guest_memfd.
//!
//! The C runs the unit's (or tree's) `kvm_gmem_get_pfn()` and everything it
//! calls against the shim's page cache, once per fault; the prepare hook is
//! reached only through `kvm_arch_gmem_prepare()` and the `gmem_prepare`
//! member of the unit's own `svm_x86_ops`, so a fault path that never calls
//! the hook, calls it again for a prepared folio (upstream), or a table
//! that does not register it, all differ from the model. Compared: each
//! fault's return, `*pfn` and `*max_order` (and whether they were
//! written), every hook call (gfn, pfn, order, mmu_lock, return) and the
//! RMP updates it made, the WARNs, and the lock balance.
//!
//! The profile is a property of the C: cases of the other profile are
//! model-only. Exhaustive bound: a 1024-page file at pfn 0x200 (two 2M
//! regions), one or two bindings (at a pgoff not 2M aligned: ending inside
//! the second folio, or holding it whole), page
//! caches of 2M and 4K folios (prepared or not, one poisoned), SNP on and
//! off, RMP tables ending early, the faulting memslot (or a closed file),
//! and one or two faults at boundary gfns.

use std::cell::RefCell;

use serde_json::{Value, json};

use std::ops::ControlFlow;

use super::rmp::runs_state;
use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json, nth_visited,
    run_cases, run_visit, smaller_numbers, time_interleaved, time_split_visit, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::getpfn::{GetPfnEvent, GetPfnScratch, GetPfnTrace, PcFolio};
use gmem_reference::invalidate::Binding;
use gmem_reference::ops::{GetPfnQuery, get_pfn, get_pfn_with};
use gmem_reference::rmp::RmpOp;

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "get-pfn",
    cop: COp::GetPfn,
    run,
    case_json,
    explain,
    picture,
};

/// File pages: the bindings (the faulting memslot's outlined), the page
/// cache's folios (prepared ones dark, poisoned red), each fault's file
/// page, and the prepare hook's calls in the model and in the C (a call
/// one side made and the other did not outlined red).
fn picture(c: &super::Counterexample) -> Option<String> {
    use super::picture::{self, Axis, C_BLUE, MISSING_RED, MODEL_GREEN, rect, text, u};
    let bindings = c.input["bindings"].as_array()?;
    let base = u(&c.input["pfn_base"]);
    let slot = c.input["slot"]
        .as_u64()
        .and_then(|i| bindings.get(i as usize));
    let folios = c.input["folios"].as_array().cloned().unwrap_or_default();
    let faults: Vec<u64> = c.input["faults"].as_array()?.iter().map(u).collect();
    let page_of = |gfn: u64| {
        slot.map(|b| {
            gfn.wrapping_sub(u(&b["base_gfn"]))
                .wrapping_add(u(&b["pgoff"]))
        })
    };
    // (file page, pages, gfn) of each prepare call.
    let calls = |list: Vec<&Value>| -> Vec<(u64, u64, u64)> {
        list.into_iter()
            .map(|p| {
                (
                    u(&p["pfn"]).wrapping_sub(base),
                    1u64 << u(&p["order"]).min(20),
                    u(&p["gfn"]),
                )
            })
            .collect()
    };
    let model_calls = calls(
        c.model["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("prepare"))
            .collect(),
    );
    let c_calls = calls(c.c["prepares"].as_array().into_iter().flatten().collect());
    let mut pages: Vec<u64> = bindings
        .iter()
        .flat_map(|b| {
            [
                u(&b["pgoff"]),
                u(&b["pgoff"]).saturating_add(u(&b["npages"])),
            ]
        })
        .chain(folios.iter().flat_map(|f| {
            let i = u(&f["index"]);
            [i, i.saturating_add(1 << u(&f["order"]).min(20))]
        }))
        .chain(faults.iter().filter_map(|&g| page_of(g)))
        .chain(model_calls.iter().chain(&c_calls).map(|c| c.0))
        .filter(|&p| p < 1 << 40)
        .collect();
    pages.sort_unstable();
    let lo = pages.first().copied().unwrap_or(0);
    let hi = pages.last().copied().unwrap_or(1).max(lo + 1) + 1;
    let ax = Axis {
        lo,
        hi,
        x0: 150.0,
        w: 720.0,
    };
    let rows = [
        "bindings",
        "folios",
        "faults",
        "model prepares",
        "C prepares",
    ];
    let mut s = picture::open("get-pfn", 900, (40 + rows.len() * 40 + 20) as u32);
    ax.ticks(&mut s, 18.0, |p| p.to_string());
    for (i, r) in rows.iter().enumerate() {
        text(&mut s, 8.0, 50.0 + i as f64 * 40.0, "#222", r);
    }
    let row_y = |i: usize| 32.0 + i as f64 * 40.0;
    for b in bindings {
        let (p, n) = (u(&b["pgoff"]), u(&b["npages"]));
        let mine = slot == Some(b);
        rect(
            &mut s,
            if mine { "binding faulting" } else { "binding" },
            ax.x(p),
            row_y(0),
            ax.x(p.saturating_add(n)) - ax.x(p),
            26.0,
            if mine {
                r##"fill="#eee" stroke="#333" stroke-width="3""##
            } else {
                r##"fill="#eee" stroke="#999""##
            },
            &format!("slot {} (gfn {:#x})", u(&b["id"]), u(&b["base_gfn"])),
        );
    }
    for f in &folios {
        let (i, n) = (u(&f["index"]), 1u64 << u(&f["order"]).min(20));
        let (class, style) = if f["hwpoison"].as_bool() == Some(true) {
            ("folio poisoned", format!(r##"fill="{MISSING_RED}""##))
        } else if f["prepared"].as_bool() == Some(true) {
            ("folio prepared", r##"fill="#555""##.to_owned())
        } else {
            ("folio", r##"fill="#ccc" stroke="#555""##.to_owned())
        };
        rect(
            &mut s,
            class,
            ax.x(i),
            row_y(1),
            ax.x(i + n) - ax.x(i),
            26.0,
            &style,
            "",
        );
    }
    for (k, &g) in faults.iter().enumerate() {
        if let Some(p) = page_of(g) {
            rect(
                &mut s,
                "fault",
                ax.x(p),
                row_y(2),
                (ax.x(p + 1) - ax.x(p)).max(4.0),
                26.0,
                r##"fill="#fdae6b" stroke="#e6550d""##,
                &format!("{k}: gfn {g:#x}"),
            );
        }
    }
    let mut draw = |row: usize,
                    mine: &[(u64, u64, u64)],
                    other: &[(u64, u64, u64)],
                    colour: &str| {
        for &(p, n, g) in mine {
            let missing = !other.contains(&(p, n, g));
            let style = if missing {
                format!(
                    r##"fill="{colour}" stroke="{MISSING_RED}" stroke-width="3" stroke-dasharray="6 3""##
                )
            } else {
                format!(r##"fill="{colour}""##)
            };
            rect(
                &mut s,
                if missing {
                    "prepare unmatched"
                } else {
                    "prepare"
                },
                ax.x(p),
                row_y(row),
                (ax.x(p + n) - ax.x(p)).max(4.0),
                26.0,
                &style,
                &format!("gfn {g:#x}"),
            );
        }
    };
    draw(3, &model_calls, &c_calls, MODEL_GREEN);
    draw(4, &c_calls, &model_calls, C_BLUE);
    text(
        &mut s,
        8.0,
        row_y(5) + 12.0,
        "#222",
        &format!(
            "prepare calls: model {}, C {} (red dashes: made by one side only); file page = pfn - pfn_base {base:#x}",
            model_calls.len(),
            c_calls.len()
        ),
    );
    s.push_str("</svg>");
    Some(s)
}

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::get_pfn)
}

const PFNS: u64 = abi::GMF_MAX_RMP_PFNS as u64;
const PFN_BASE: u64 = 0x200;

/// (op, pfn, gfn or gpa, order or level, mmu_lock, ret).
type Ev = (u32, u64, u64, i32, u8, i32);

fn model_events(t: &GetPfnTrace) -> impl Iterator<Item = Ev> + '_ {
    t.events.iter().map(|e| match e {
        GetPfnEvent::Prepare { prepare: p } => (
            abi::GMF_EV_GMEM_PREPARE,
            p.pfn,
            p.gfn,
            p.order,
            u8::from(p.mmu_lock),
            p.ret,
        ),
        GetPfnEvent::Rmp(r) => {
            let lock = u8::from(r.mmu_lock);
            match r.op {
                RmpOp::MakePrivate {
                    pfn, gpa, level, ..
                } => (abi::GMF_EV_MAKE_PRIVATE, pfn, gpa, level, lock, r.ret),
                RmpOp::MakeShared { pfn, level } => {
                    (abi::GMF_EV_MAKE_SHARED, pfn, 0, level, lock, r.ret)
                }
                RmpOp::Psmash { pfn } => (abi::GMF_EV_PSMASH, pfn, 0, 0, lock, r.ret),
            }
        }
    })
}

fn c_events(o: &abi::gmf_getpfn_out) -> impl Iterator<Item = Ev> + '_ {
    o.events[..(o.nevents as usize).min(o.events.len())]
        .iter()
        .map(|e| {
            let (arg, level) = match e.op {
                abi::GMF_EV_GMEM_PREPARE | abi::GMF_EV_MAKE_PRIVATE | abi::GMF_EV_UNMAP => {
                    (e.arg, e.level)
                }
                abi::GMF_EV_MAKE_SHARED => (0, e.level),
                _ => (0, 0),
            };
            (e.op, e.pfn, arg, level, e.mmu_lock_held, e.ret)
        })
}

fn event_name(op: u32) -> &'static str {
    match op {
        abi::GMF_EV_GMEM_PREPARE => "gmem_prepare",
        abi::GMF_EV_MAKE_PRIVATE => "make_private",
        abi::GMF_EV_MAKE_SHARED => "make_shared",
        abi::GMF_EV_PSMASH => "psmash",
        abi::GMF_EV_UNMAP => "unmap",
        _ => "mmu invalidate",
    }
}

fn show(e: Option<&Ev>) -> String {
    match e {
        None => "nothing".into(),
        Some(&(op, pfn, arg, level, lock, ret)) if op == abi::GMF_EV_GMEM_PREPARE => format!(
            "gmem_prepare(pfn {pfn:#x}, gfn {arg:#x}, order {level}){} = {ret}",
            if lock != 0 { " under mmu_lock" } else { "" }
        ),
        Some(&(op, pfn, arg, level, lock, ret)) => format!(
            "{}(pfn {pfn:#x}, {arg:#x}, level {level}){} = {ret}",
            event_name(op),
            if lock != 0 { " under mmu_lock" } else { "" }
        ),
    }
}

/// Whether the harness can express the case (the model may still refuse it).
fn fits(profile: Profile, q: &GetPfnQuery) -> bool {
    q.profile == profile
        && q.max_pfn <= PFNS
        && q.nr_pfns == PFNS
        && q.bindings.len() <= abi::GMF_MAX_BINDINGS as usize
        && q.folios.len() <= abi::GMF_MAX_FOLIOS as usize
        && !q.faults.is_empty()
        && q.faults.len() <= abi::GMF_MAX_FAULTS as usize
        && q.rmp
            .as_ref()
            .is_none_or(|r| r.len() <= abi::GMF_MAX_RMP_RUNS as usize)
}

/// The harness input of a case; `None` when its RMP does not fit.
fn fill_input(q: &GetPfnQuery, input: &mut abi::gmf_getpfn_in) -> Option<()> {
    input.nbindings = q.bindings.len() as u32;
    for (d, b) in input.bindings.iter_mut().zip(&q.bindings) {
        *d = abi::gmf_binding {
            id: b.id,
            base_gfn: b.base_gfn,
            npages: b.npages,
            pgoff: b.pgoff,
        };
    }
    input.slot = q.slot.unwrap_or(u32::MAX);
    input.pfn_base = q.pfn_base;
    input.nfolios = q.folios.len() as u32;
    for (d, f) in input.folios.iter_mut().zip(&q.folios) {
        *d = abi::gmf_pc_folio {
            index: f.index,
            order: f.order as u8,
            prepared: u8::from(f.prepared),
            hwpoison: u8::from(f.hwpoison),
        };
    }
    input.snp = u8::from(q.snp);
    input.asid = q.asid;
    input.max_pfn = q.max_pfn;
    input.nfaults = q.faults.len() as u32;
    input.gfns[..q.faults.len()].copy_from_slice(&q.faults);
    input.rmp_given = u8::from(q.rmp.is_some());
    match &q.rmp {
        Some(runs) => runs_state(q.snp, q.max_pfn, runs, &mut input.rmp),
        None => Some(()),
    }
}

/// Buffers one worker reuses for every case.
#[derive(Default)]
struct Scratch {
    input: Box<abi::gmf_getpfn_in>,
    out: Box<abi::gmf_getpfn_out>,
}

/// The C's answer (in `scratch.out`) against the model's `m`.
fn check(
    lib: &Library,
    scratch: &mut Scratch,
    q: &GetPfnQuery,
    m: &GetPfnTrace,
) -> Option<(String, Value)> {
    fill_input(q, &mut scratch.input)?;
    let o = &mut *scratch.out;
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.get_pfn)(&*scratch.input, o) };
    let o = &*o;
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_get_pfn returned {r}"));
    }
    for (k, (cr, mr)) in o.results.iter().zip(&m.results).enumerate() {
        let cpfn = (cr.pfn_set != 0).then_some(cr.pfn);
        let cord = (cr.order_set != 0).then_some(cr.max_order);
        // The 2023 contract's max_order is a bound (the model answers the
        // largest allowed): 0, a 4K mapping, is always safe; more than the
        // model's lets a huge mapping leave the binding or the folio.
        let order_ok = cord == mr.max_order
            || (q.profile == Profile::GmemSolo2023 && cord == Some(0) && mr.max_order.is_some());
        // On an error the caller reads neither output
        // (kvm_faultin_pfn_private() returns at once): only the errno is
        // the contract there, whenever a tree writes them.
        let outputs_ok = (cpfn == mr.pfn && order_ok) || (cr.ret == mr.ret && mr.ret != 0);
        if cr.ret != mr.ret || !outputs_ok {
            why.push(format!(
                "fault {k} (gfn {:#x}): C returned {} pfn {:?} max_order {:?}, model {} pfn {:?} max_order {:?}",
                q.faults[k], cr.ret, cpfn, cord, mr.ret, mr.pfn, mr.max_order
            ));
            break;
        }
    }
    if o.overflow != 0 {
        why.push("more events than the harness records".into());
    } else if !c_events(o).eq(model_events(m)) {
        // Only a divergence pays for the lists.
        let ce: Vec<Ev> = c_events(o).collect();
        let me: Vec<Ev> = model_events(m).collect();
        let i = ce
            .iter()
            .zip(&me)
            .position(|(a, b)| a != b)
            .unwrap_or(ce.len().min(me.len()));
        let locked = ce.get(i).is_some_and(|e| e.4 != 0);
        why.push(format!(
            "{}hook event {i}: C {}, model {}",
            if locked {
                "under mmu_lock (violation): "
            } else {
                ""
            },
            show(ce.get(i)),
            show(me.get(i))
        ));
    }
    if o.warnings != m.warnings {
        why.push(format!("WARNs: C {}, model {}", o.warnings, m.warnings));
    }
    if o.lock_balanced == 0 {
        why.push("mmu_lock taken and not released (or released unheld)".into());
    }
    (!why.is_empty()).then(|| {
        let results: Vec<Value> = o.results[..q.faults.len()]
            .iter()
            .map(|r| {
                json!({"ret": r.ret,
                    "pfn": (r.pfn_set != 0).then_some(r.pfn),
                    "max_order": (r.order_set != 0).then_some(r.max_order)})
            })
            .collect();
        // The prepare calls the C made, for the report's picture.
        let prepares: Vec<Value> = c_events(o)
            .filter(|e| e.0 == abi::GMF_EV_GMEM_PREPARE)
            .map(|(_, pfn, gfn, order, lock, ret)| {
                json!({"pfn": pfn, "gfn": gfn, "order": order, "mmu_lock": lock != 0, "ret": ret})
            })
            .collect();
        let c = json!({"results": results,
            "events": c_events(o).map(|e| show(Some(&e))).collect::<Vec<_>>(),
            "prepares": prepares, "warnings": o.warnings});
        (why.join("; "), c)
    })
}

fn b(id: u16, base_gfn: u64, npages: u64, pgoff: u64) -> Binding {
    Binding {
        id,
        base_gfn,
        npages,
        pgoff,
    }
}

fn folio(index: u64, order: u32, prepared: bool) -> PcFolio {
    PcFolio {
        index,
        order,
        prepared,
        hwpoison: false,
    }
}

fn exhaustive() -> impl Iterator<Item = GetPfnQuery> {
    let layouts: Vec<Vec<PcFolio>> = vec![
        vec![],
        vec![folio(0, 9, false)],
        vec![folio(0, 9, true), folio(600, 0, true)],
        vec![
            folio(1, 0, false),
            folio(511, 0, true),
            folio(512, 9, false),
            PcFolio {
                hwpoison: true,
                ..folio(700, 0, false)
            },
        ],
        vec![folio(512, 9, true), folio(2, 0, false)],
    ];
    let bindings: Vec<Vec<Binding>> = vec![
        vec![b(0, 0x800, 1024, 0)],
        vec![b(0, 0x800, 300, 0), b(1, 0x4000, 500, 520)],
        // Starting inside the first 2M folio and holding the next whole:
        // a huge mapping may cover the second, never the first.
        vec![b(0, 0x800, 1024, 8)],
    ];
    // File pages to fault on, turned into gfns through the faulting slot.
    let pages = [
        0u64, 1, 2, 299, 300, 511, 512, 519, 520, 600, 700, 1019, 1023,
    ];
    // (snp, max_pfn): SNP with a whole table, SNP whose table ends inside
    // the second 2M region, no SNP.
    let platforms = [(true, PFNS), (true, 0x500), (false, PFNS)];
    Profile::ALL.into_iter().flat_map(move |profile| {
        let (layouts, bindings) = (layouts.clone(), bindings.clone());
        platforms.into_iter().flat_map(move |(snp, max_pfn)| {
            let (layouts, bindings) = (layouts.clone(), bindings.clone());
            layouts.into_iter().flat_map(move |folios| {
                let bindings = bindings.clone();
                bindings.into_iter().flat_map(move |bs| {
                    let folios = folios.clone();
                    let slots: Vec<Option<u32>> =
                        (0..bs.len() as u32).map(Some).chain([None]).collect();
                    slots.into_iter().flat_map(move |slot| {
                        let (bs, folios) = (bs.clone(), folios.clone());
                        let s = slot.map_or(bs[0], |i| bs[i as usize]);
                        let gfn = move |p: u64| s.base_gfn.wrapping_add(p).wrapping_sub(s.pgoff);
                        pages.into_iter().flat_map(move |p1| {
                            let (bs, folios) = (bs.clone(), folios.clone());
                            // One fault, the same page again, or a neighbour.
                            [None, Some(p1), Some(p1 + 1)]
                                .into_iter()
                                .map(move |p2| GetPfnQuery {
                                    profile,
                                    snp,
                                    asid: 7,
                                    max_pfn,
                                    nr_pfns: PFNS,
                                    bindings: bs.clone(),
                                    slot,
                                    pfn_base: PFN_BASE,
                                    folios: folios.clone(),
                                    faults: [Some(p1), p2].into_iter().flatten().map(gfn).collect(),
                                    rmp: None,
                                    every_fault: false,
                                    no_hook: false,
                                })
                        })
                    })
                })
            })
        })
    })
}

fn random_case(rng: &mut Rng) -> GetPfnQuery {
    let mut folios = Vec::new();
    let mut next = 0u64;
    while next < 1536 && folios.len() < 40 {
        if next % 512 == 0 && rng.below(3) == 0 {
            folios.push(PcFolio {
                index: next,
                order: 9,
                prepared: rng.bool(),
                hwpoison: rng.below(8) == 0,
            });
            next += 512;
        } else {
            if rng.below(3) == 0 {
                folios.push(PcFolio {
                    index: next,
                    order: 0,
                    prepared: rng.bool(),
                    hwpoison: rng.below(8) == 0,
                });
            }
            next += 1 + rng.below(60);
        }
    }
    let nb = 1 + rng.below(3);
    let mut bindings = Vec::new();
    let mut pgoff = rng.below(4) * 256;
    for id in 0..nb {
        let npages = 1 + rng.below(700);
        bindings.push(b(id as u16, rng.edgy(), npages, pgoff));
        pgoff += npages + rng.below(64);
    }
    let slot = (rng.below(6) != 0).then(|| rng.below(nb) as u32);
    let s = slot.map_or(bindings[0], |i| bindings[i as usize]);
    let nfaults = 1 + rng.below(abi::GMF_MAX_FAULTS as u64);
    let faults = (0..nfaults)
        .map(|_| match rng.below(4) {
            0 => rng.edgy(),
            _ => s
                .base_gfn
                .wrapping_add(rng.below(s.npages + 64))
                .wrapping_sub(32),
        })
        .collect();
    GetPfnQuery {
        profile: if rng.bool() {
            Profile::Upstream
        } else {
            Profile::GmemSolo2023
        },
        snp: rng.below(4) != 0,
        asid: 1 + rng.below(500) as u32,
        max_pfn: if rng.below(4) == 0 {
            rng.below(PFNS + 1)
        } else {
            PFNS
        },
        nr_pfns: PFNS,
        bindings,
        slot,
        pfn_base: rng.below(2) * 512,
        folios,
        faults,
        rmp: None,
        every_fault: false,
        no_hook: false,
    }
}

/// The exhaustive bound, one query changed in place: the wiring cases of
/// [`exhaustive`], then [`region_faults`].
fn exhaustive_visit(f: &mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>) {
    visit_bound(f, Hook::Profile);
}

/// [`exhaustive_visit`] for a C that prepares at every fault
/// (`GMF_OP_GET_PFN_EVERY_FAULT`): the same cases, each asking the model
/// for that contract.
fn exhaustive_visit_every_fault(f: &mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>) {
    visit_bound(f, Hook::EveryFault);
}

/// [`exhaustive_visit`] for a C with no prepare hook
/// (`GMF_OP_GET_PFN_NO_HOOK`): the same cases, the model asked to prepare
/// nothing.
fn exhaustive_visit_no_hook(f: &mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>) {
    visit_bound(f, Hook::None);
}

/// A walk over the exhaustive bound, one query changed in place.
type Visitor = fn(&mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>);

/// Which hook contract the C's shape selects (its `gmf_ops()` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hook {
    /// The profile's own: once per folio upstream, every lookup in 2023.
    Profile,
    /// Every fault at the folio's head (mainline after 6.18).
    EveryFault,
    /// No prepare hook on the fault path (6.8–6.10, or one the model does
    /// not cover yet).
    None,
}

impl Hook {
    fn of(lib: &Library) -> Hook {
        if lib.has(abi::GMF_OP_GET_PFN_NO_HOOK) {
            Hook::None
        } else if lib.has(abi::GMF_OP_GET_PFN_EVERY_FAULT) {
            Hook::EveryFault
        } else {
            Hook::Profile
        }
    }

    /// Sets the query's contract flags (a vector may set them itself).
    fn apply(self, q: &mut GetPfnQuery) {
        q.every_fault |= self == Hook::EveryFault;
        q.no_hook |= self == Hook::None;
    }

    /// The exhaustive bound as this contract asks it.
    fn visitor(self) -> Visitor {
        match self {
            Hook::Profile => exhaustive_visit,
            Hook::EveryFault => exhaustive_visit_every_fault,
            Hook::None => exhaustive_visit_no_hook,
        }
    }
}

fn visit_bound(f: &mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>, hook: Hook) {
    for mut q in exhaustive() {
        hook.apply(&mut q);
        if f(&q).is_break() {
            return;
        }
    }
    region_faults(f, hook);
}

/// A fault over every RMP state of the prepare bound's 2M region
/// ([`super::rmp::region_states`], pfns 512..1024 = file pages 0..512
/// here): per profile, state × table size (whole, or ending inside the
/// region where the state fits) × page cache (empty: a 4K folio is
/// allocated; one 2M folio, not prepared or prepared; 4K folios at the
/// probe pages) × memslot gfn (2M-aligned with the pfns, or not) × one
/// fault at each of `prepare`'s pfns. What the fault path adds to
/// `prepare`'s bound: the folio's order and head reaching the hook, and
/// the uptodate flag deciding whether it is called at all.
fn region_faults(f: &mut dyn FnMut(&GetPfnQuery) -> ControlFlow<()>, hook: Hook) {
    let probes: Vec<PcFolio> = super::rmp::PROBES
        .iter()
        .map(|&p| folio(p - PFN_BASE, 0, false))
        .collect();
    let layouts = [
        vec![],
        vec![folio(0, 9, false)],
        vec![folio(0, 9, true)],
        probes,
    ];
    let mut q = GetPfnQuery {
        profile: Profile::Upstream,
        snp: true,
        asid: 7,
        max_pfn: PFNS,
        nr_pfns: PFNS,
        bindings: vec![b(0, 0x800, 1024, 0)],
        slot: Some(0),
        pfn_base: PFN_BASE,
        folios: Vec::new(),
        faults: vec![0],
        rmp: Some(Vec::new()),
        every_fault: false,
        no_hook: false,
    };
    hook.apply(&mut q);
    let states = super::rmp::region_states();
    for profile in Profile::ALL {
        q.profile = profile;
        for state in &states {
            if let Some(r) = &mut q.rmp {
                r.clone_from(state);
            }
            for max_pfn in [PFNS, 2 * super::rmp::REGION - 1] {
                if !super::rmp::within(state, max_pfn) {
                    continue;
                }
                q.max_pfn = max_pfn;
                for folios in &layouts {
                    q.folios.clone_from(folios);
                    for base_gfn in [0x800, 0x803] {
                        q.bindings[0].base_gfn = base_gfn;
                        for pfn in super::rmp::PREPARE_PFNS {
                            q.faults[0] = base_gfn + (pfn - PFN_BASE);
                            if f(&q).is_break() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = GetPfnQuery>> {
    cases_of(source, vectors, "get-pfn", std::iter::empty, random_case)
}

/// Smaller cases, in the order get-pfn minimises (ARCHITECTURE.md,
/// "Shrinking"): fewer faults, fewer RMP runs (when given), fewer folios,
/// fewer bindings, then the faulting memslot at a lower gfn (its faults
/// moving with it, so they hit the same file pages), with fewer pages and
/// a lower file offset,
/// each fault at a lower gfn, then a lower ASID. An SNP guest's ASID
/// stays 1 or more: ASID 0 is the host's.
fn candidates(q: &GetPfnQuery) -> Vec<GetPfnQuery> {
    let mut out = Vec::new();
    if q.faults.len() > 1 {
        for i in 0..q.faults.len() {
            let mut c = q.clone();
            c.faults.remove(i);
            out.push(c);
        }
    }
    // An RMP given: fewer runs (pages made shared).
    if let Some(runs) = &q.rmp {
        for i in 0..runs.len() {
            let mut c = q.clone();
            if let Some(r) = &mut c.rmp {
                r.remove(i);
            }
            out.push(c);
        }
    }
    for i in 0..q.folios.len() {
        let mut c = q.clone();
        c.folios.remove(i);
        out.push(c);
    }
    for i in 0..q.bindings.len() {
        if q.slot.is_some_and(|s| s as usize == i) {
            continue;
        }
        let mut c = q.clone();
        c.bindings.remove(i);
        c.slot = q.slot.map(|s| if s as usize > i { s - 1 } else { s });
        out.push(c);
    }
    if let Some(k) = q.slot.map(|s| s as usize)
        && let Some(b) = q.bindings.get(k).copied()
    {
        for g in smaller_numbers(b.base_gfn) {
            let d = b.base_gfn - g;
            let mut c = q.clone();
            c.bindings[k].base_gfn = g;
            c.faults = q.faults.iter().map(|f| f.wrapping_sub(d)).collect();
            out.push(c);
        }
        for n in smaller_numbers(b.npages).into_iter().filter(|&n| n > 0) {
            let mut c = q.clone();
            c.bindings[k].npages = n;
            out.push(c);
        }
        for p in smaller_numbers(b.pgoff) {
            let mut c = q.clone();
            c.bindings[k].pgoff = p;
            out.push(c);
        }
        // Every fault on the same gfn moves together (a repeated fault
        // stays repeated).
        for &f in &q.faults {
            for g in [b.base_gfn, f.wrapping_sub(1)] {
                if g < f && g >= b.base_gfn && q.faults.iter().filter(|&&x| x == f).count() > 1 {
                    let mut c = q.clone();
                    for x in &mut c.faults {
                        if *x == f {
                            *x = g;
                        }
                    }
                    out.push(c);
                }
            }
        }
        for (i, &f) in q.faults.iter().enumerate() {
            for g in [b.base_gfn, f.wrapping_sub(1)] {
                if g < f && g >= b.base_gfn {
                    let mut c = q.clone();
                    c.faults[i] = g;
                    out.push(c);
                }
            }
        }
    }
    out.extend(
        smaller_numbers(u64::from(q.asid))
            .into_iter()
            .filter(|&a| a > 0 || !q.snp)
            .map(|a| GetPfnQuery {
                asid: a as u32,
                ..q.clone()
            }),
    );
    out
}

/// `f` given a case as `check` runs it for `lib` and `profile`.
fn with_case_ops<R>(
    lib: &Library,
    profile: Profile,
    f: impl FnOnce(&CaseOps<'_, GetPfnQuery>) -> R,
) -> R {
    // A fault path without a prepared-folio state (mainline after 6.18):
    // every case asks the model for that contract. Such a tree never
    // allocates a large folio (its lookup WARNs on one), so a case with
    // one is a state it cannot reach: model-only.
    let every = lib.has(abi::GMF_OP_GET_PFN_EVERY_FAULT);
    let reachable = move |q: &GetPfnQuery| !(every && q.folios.iter().any(|f| f.order > 0));
    let scratch = RefCell::new(Scratch::default());
    let answer: RefCell<GetPfnScratch> = RefCell::default();
    f(&CaseOps {
        other_profile: Some(&|q: &GetPfnQuery| q.profile != profile),
        // The model's answer, computed once: `applicable` needs it to
        // know the model accepts the case, and `check` (always called
        // next, on the same case) compares with it.
        applicable: &|q| {
            fits(profile, q) && reachable(q) && get_pfn_with(&mut answer.borrow_mut(), q).is_ok()
        },
        check: &|q| check(lib, &mut scratch.borrow_mut(), q, &answer.borrow().trace),
        candidates: &candidates,
        model_json: &|q| get_pfn(q).map(|a| to_json(&a)).unwrap_or(Value::Null),
    })
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let hook = Hook::of(ctx.lib);
    with_case_ops(ctx.lib, ctx.profile, |ops| match source {
        Source::Exhaustive => run_visit(ctx, hook.visitor(), ops),
        _ => run_cases(ctx, with_hook(cases(source, ctx.vectors), hook), ops),
    })
}

/// `cases` as the C's hook contract asks them.
fn with_hook(
    cases: impl Iterator<Item = GetPfnQuery>,
    hook: Hook,
) -> impl Iterator<Item = GetPfnQuery> {
    cases.map(move |mut q| {
        hook.apply(&mut q);
        q
    })
}

/// Case `index` as [`run`] gave it to this library: a tree preparing at
/// every fault got every case with `every_fault` set.
fn case_json(
    source: Source,
    index: u64,
    _p: Profile,
    lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    let hook = Hook::of(lib);
    match source {
        Source::Exhaustive => nth_visited(hook.visitor(), index).map(|q| to_json(&q)),
        _ => nth_case_json(Box::new(with_hook(cases(source, vectors), hook)), index),
    }
}

/// The exhaustive cases of the upstream profile timed apart (the bench):
/// the C alone, the model alone, and the C alone interleaved with the
/// differential path.
pub fn split(lib: &Library) -> Split {
    let mut scratch = Scratch::default();
    let model = RefCell::new(GetPfnScratch::default());
    let applicable = |q: &GetPfnQuery| {
        fits(Profile::Upstream, q) && get_pfn_with(&mut model.borrow_mut(), q).is_ok()
    };
    let mut c = |q: &GetPfnQuery| {
        let _ = fill_input(q, &mut scratch.input);
        // SAFETY: valid pointers for the call.
        unsafe { (lib.get_pfn)(&*scratch.input, &mut *scratch.out) };
        std::hint::black_box(&scratch.out);
    };
    let mut split = time_split_visit(exhaustive_visit, applicable, &mut c, |q| {
        std::hint::black_box(get_pfn_with(&mut model.borrow_mut(), q).is_ok());
    });
    split.interleaved = Some(with_case_ops(lib, Profile::Upstream, |ops| {
        time_interleaved(exhaustive_visit, applicable, c, ops)
    }));
    split
}
