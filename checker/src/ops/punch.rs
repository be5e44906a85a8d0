//! `punch-hole`: fallocate(PUNCH_HOLE) on a guest_memfd with folios.
//!
//! The C runs `kvm_gmem_punch_hole()`; the shim's page cache frees the
//! covered folios through `kvm_gmem_free_folio()`, whose hook runs
//! `sev_gmem_invalidate()`. Both sides record one sequence: invalidate
//! begin, each zap, each RMP operation with whether `mmu_lock` was held,
//! invalidate end. An RMP update under `mmu_lock` differs from the model
//! (which never holds it there) and is reported as the violation it is.
//!
//! Exhaustive bound (ARCHITECTURE.md says why it is enough): a file at pfn
//! 0x200 whose first 512 pages are the RMP bound's region, in every state
//! of [`super::rmp::region_states`], × page cache (a 2M folio over the
//! region, or 4K folios at its probe pages) × one or two bindings × every
//! hole of [`holes`].

use std::cell::RefCell;
use std::ops::ControlFlow;

use serde_json::{Value, json};

use super::rmp::{Fields, Pfns, Scratch, op_span, runs_state};

use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json, nth_visited,
    run_cases, run_visit, smaller_numbers, time_interleaved, time_split_visit, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::invalidate::Binding;
use gmem_reference::kernel::PAGE_SIZE;
use gmem_reference::lifecycle::{Folio, PunchScratch, TraceEvent};
use gmem_reference::ops::{PunchQuery, punch_hole, punch_hole_with};
use gmem_reference::rmp::{PageSize, RmpOp, RmpRun};

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "punch-hole",
    cop: COp::PunchHole,
    run,
    case_json,
    explain,
    picture,
};

/// The 2M region where the hole starts: its RMP entries before, after in
/// the model, after in the C, the hole's pfns outlined.
fn picture(c: &super::Counterexample) -> Option<String> {
    let base = c.input["pfn_base"].as_u64()?;
    let (offset, len) = (c.input["offset"].as_u64()?, c.input["len"].as_u64()?);
    let (start, end) = (offset >> 12, offset.saturating_add(len) >> 12);
    let (lo, hi) = (base.saturating_add(start), base.saturating_add(end));
    Some(super::picture::rmp_region_svg(
        "punch-hole",
        lo & !511,
        &c.input["rmp"],
        &c.model["rmp"],
        c.c.get("rmp"),
        (lo, hi),
        &format!("punch hole over file pages [{start}, {end}) = pfns [{lo:#x}, {hi:#x})"),
    ))
}

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::punch_hole)
}

const PFNS: u64 = abi::GMF_MAX_RMP_PFNS as u64;
const PFN_BASE: u64 = 0x200;

type Ev = (u32, u64, u64, i32, u8);

fn model_event(e: &TraceEvent) -> Option<Ev> {
    match e {
        TraceEvent::InvalidateBegin => Some((abi::GMF_EV_INVALIDATE_BEGIN, 0, 0, 0, 1)),
        TraceEvent::InvalidateEnd => Some((abi::GMF_EV_INVALIDATE_END, 0, 0, 0, 1)),
        TraceEvent::Zap { range, .. } => Some((abi::GMF_EV_UNMAP, range.start, range.end, 0, 1)),
        TraceEvent::Rmp { event } => Some(match event.op {
            RmpOp::MakeShared { pfn, level } => (
                abi::GMF_EV_MAKE_SHARED,
                pfn,
                0,
                level,
                u8::from(event.mmu_lock),
            ),
            RmpOp::Psmash { pfn } => (abi::GMF_EV_PSMASH, pfn, 0, 0, u8::from(event.mmu_lock)),
            RmpOp::MakePrivate {
                pfn, gpa, level, ..
            } => (
                abi::GMF_EV_MAKE_PRIVATE,
                pfn,
                gpa,
                level,
                u8::from(event.mmu_lock),
            ),
        }),
        TraceEvent::Map { .. } | TraceEvent::MemoryFaultExit { .. } => None,
    }
}

fn model_events(events: &[TraceEvent]) -> impl Iterator<Item = Ev> + '_ {
    events.iter().filter_map(model_event)
}

fn c_event(e: &abi::gmf_event) -> Ev {
    // Only the fields the event kind defines; the rest the C may leave.
    let (op, lock) = (e.op, e.mmu_lock_held);
    match op {
        abi::GMF_EV_INVALIDATE_BEGIN | abi::GMF_EV_INVALIDATE_END => (op, 0, 0, 0, lock),
        abi::GMF_EV_UNMAP => (op, e.pfn, e.arg, 0, lock),
        abi::GMF_EV_MAKE_SHARED => (op, e.pfn, 0, e.level, lock),
        abi::GMF_EV_MAKE_PRIVATE => (op, e.pfn, e.arg, e.level, lock),
        _ => (op, e.pfn, 0, 0, lock),
    }
}

fn c_events(o: &abi::gmf_rmp_out) -> impl Iterator<Item = Ev> + '_ {
    o.events[..(o.nevents as usize).min(o.events.len())]
        .iter()
        .map(c_event)
}

/// Whether the C recorded the model's events, in order: `check`'s hot
/// path. Each model event is matched against the C's fields directly,
/// the fields [`c_event`] keeps for its kind; building both sides'
/// [`Ev`]s and comparing those (`Iterator::eq`) cost more than the rest
/// of the comparison. `events_agree_is_the_tuple_compare` holds the two
/// to one answer.
///
/// On the way, the span each model RMP operation may have written goes
/// into `pfns`, for the table compare; all of them when the events agree,
/// those up to the first difference otherwise.
fn events_agree(o: &abi::gmf_rmp_out, m: &[TraceEvent], pfns: &mut Pfns) -> bool {
    let mut c = o.events[..(o.nevents as usize).min(o.events.len())].iter();
    for e in m {
        let same = match *e {
            TraceEvent::InvalidateBegin => c
                .next()
                .is_some_and(|c| c.op == abi::GMF_EV_INVALIDATE_BEGIN && c.mmu_lock_held == 1),
            TraceEvent::InvalidateEnd => c
                .next()
                .is_some_and(|c| c.op == abi::GMF_EV_INVALIDATE_END && c.mmu_lock_held == 1),
            TraceEvent::Zap { range, .. } => c.next().is_some_and(|c| {
                c.op == abi::GMF_EV_UNMAP
                    && c.pfn == range.start
                    && c.arg == range.end
                    && c.mmu_lock_held == 1
            }),
            TraceEvent::Rmp { event } => {
                pfns.add(op_span(&event.op));
                c.next().is_some_and(|c| {
                    c.mmu_lock_held == u8::from(event.mmu_lock)
                        && match event.op {
                            RmpOp::MakeShared { pfn, level } => {
                                c.op == abi::GMF_EV_MAKE_SHARED && c.pfn == pfn && c.level == level
                            }
                            RmpOp::Psmash { pfn } => c.op == abi::GMF_EV_PSMASH && c.pfn == pfn,
                            RmpOp::MakePrivate {
                                pfn, gpa, level, ..
                            } => {
                                c.op == abi::GMF_EV_MAKE_PRIVATE
                                    && c.pfn == pfn
                                    && c.arg == gpa
                                    && c.level == level
                            }
                        }
                })
            }
            TraceEvent::Map { .. } | TraceEvent::MemoryFaultExit { .. } => true,
        };
        if !same {
            return false;
        }
    }
    c.next().is_none()
}

/// Adds the span each of the model's RMP operations may have written.
fn add_model_spans(m: &[TraceEvent], pfns: &mut Pfns) {
    for e in m {
        if let TraceEvent::Rmp { event } = e {
            pfns.add(op_span(&event.op));
        }
    }
}

/// Whether the harness can express the case.
fn fits(q: &PunchQuery) -> bool {
    q.max_pfn <= PFNS
        && q.rmp.len() <= abi::GMF_MAX_RMP_RUNS as usize
        && q.bindings.len() <= abi::GMF_MAX_BINDINGS as usize
        && q.folios.len() <= abi::GMF_MAX_FOLIOS as usize
        && q.folios.iter().all(|f| {
            let pfn = q.pfn_base.saturating_add(f.index);
            // Like any buddy allocation, a folio's pfns are 2^order aligned.
            f.order < 64 && pfn.saturating_add(1 << f.order) <= PFNS && pfn % (1 << f.order) == 0
        })
}

/// The harness input of a case; `None` when it does not fit.
fn fill_input(q: &PunchQuery, input: &mut abi::gmf_punch_in) -> Option<()> {
    input.nbindings = q.bindings.len() as u32;
    for (d, b) in input.bindings.iter_mut().zip(&q.bindings) {
        *d = abi::gmf_binding {
            id: b.id,
            base_gfn: b.base_gfn,
            npages: b.npages,
            pgoff: b.pgoff,
        };
    }
    input.pfn_base = q.pfn_base;
    input.nfolios = q.folios.len() as u32;
    for (d, f) in input.folios.iter_mut().zip(&q.folios) {
        *d = abi::gmf_folio {
            index: f.index,
            order: f.order as u8,
        };
    }
    input.offset = q.offset;
    input.len = q.len;
    runs_state(true, q.max_pfn, &q.rmp, &mut input.rmp)?;
    Some(())
}

/// The C's answer against the model's, which `m` holds
/// ([`punch_hole_with`] ran on `q`).
fn check(
    lib: &Library,
    scratch: &mut Scratch,
    input: &mut abi::gmf_punch_in,
    q: &PunchQuery,
    m: &PunchScratch,
) -> Option<(String, Value)> {
    fill_input(q, input)?;
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.punch_hole)(&*input, &mut *scratch.out) };
    let (o, pfns) = scratch.out_and_model_pfns();
    let agree = o.overflow == 0 && events_agree(o, &m.events, pfns);
    if !agree {
        // The pass stopped early, or never ran: every span, for the report.
        pfns.clear();
        add_model_spans(&m.events, pfns);
    }
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_punch_hole returned {r}"));
    }
    if o.ret != 0 {
        why.push(format!("kvm_gmem_punch_hole() returned {}", o.ret));
    }
    if o.overflow != 0 {
        why.push("more events than the harness records".into());
    } else if !agree {
        // Only a divergence pays for the lists.
        let ce: Vec<Ev> = c_events(o).collect();
        let me: Vec<Ev> = model_events(&m.events).collect();
        let i = ce
            .iter()
            .zip(&me)
            .position(|(a, b)| a != b)
            .unwrap_or(ce.len().min(me.len()));
        let violation = ce.get(i).is_some_and(|e| {
            e.4 != 0 && matches!(e.0, abi::GMF_EV_MAKE_SHARED | abi::GMF_EV_PSMASH)
        });
        why.push(format!(
            "{}event {i}: C {:?}, model {:?} (op, pfn or gfn, gpa or gfn end, level, mmu_lock)",
            if violation {
                "RMP update under mmu_lock (violation): "
            } else {
                ""
            },
            ce.get(i),
            me.get(i)
        ));
    }
    if o.warnings != m.warnings {
        why.push(format!("WARNs: C {}, model {}", o.warnings, m.warnings));
    }
    if let Some(d) = scratch.gathered_table_differs(&input.rmp, &m.rmp, Fields::State) {
        why.push(d);
    }
    (!why.is_empty()).then(|| {
        let o = &scratch.out;
        let ce: Vec<Ev> = c_events(o).collect();
        let c = json!({"ret": o.ret, "events": ce.len(), "warnings": o.warnings,
            "under_mmu_lock": ce.iter().filter(|e| e.4 != 0 && matches!(e.0, abi::GMF_EV_MAKE_SHARED | abi::GMF_EV_PSMASH | abi::GMF_EV_MAKE_PRIVATE)).count(),
            "rmp": super::rmp::c_after_runs(&input.rmp, o)});
        (why.join("; "), c)
    })
}

/// RMP runs for folios as `sev_gmem_prepare()` leaves them.
fn prepared(folios: &[Folio]) -> Vec<RmpRun> {
    folios
        .iter()
        .map(|f| {
            let pfn = PFN_BASE + f.index;
            let size = if f.order == 9 {
                PageSize::M2
            } else {
                PageSize::K4
            };
            RmpRun {
                pfn,
                npages: 1 << f.order,
                size,
                asid: 1,
                gpa: (0x800 + f.index) << 12,
                immutable: false,
                validated: false,
            }
        })
        .collect()
}

/// The holes of the bound, in file pages (page `i` is pfn 0x200 + i, so
/// pages 0..512 are the RMP bound's region): every hole within the first
/// four pages, within the last four of the region and the first after it,
/// one in the middle, and three over the region: whole (the 2M folio goes
/// at once), from its second page, and to its last but one.
pub fn holes() -> Vec<(u64, u64)> {
    let clusters: [&[u64]; 3] = [&[0, 1, 2, 3], &[256, 257], &[509, 510, 511, 512]];
    let mut out = Vec::new();
    for c in clusters {
        for (i, &start) in c.iter().enumerate() {
            out.extend(c[i + 1..].iter().map(|&end| (start, end)));
        }
    }
    out.extend([(0, 512), (1, 512), (0, 511)]);
    out
}

/// Every RMP state of the bound's region ([`super::rmp::region_states`])
/// × page cache (one 2M folio over the region, or 4K folios at its probe
/// pages) × bindings (one over the file; two, the second at a file offset)
/// × hole ([`holes`]), one case at a time, changed in place.
fn exhaustive(f: &mut dyn FnMut(&PunchQuery) -> ControlFlow<()>) {
    let layouts: Vec<Vec<Folio>> = vec![
        vec![Folio { index: 0, order: 9 }],
        super::rmp::PROBES
            .iter()
            .map(|&p| Folio {
                index: p - PFN_BASE,
                order: 0,
            })
            .collect(),
    ];
    let bindings: Vec<Vec<Binding>> = vec![
        vec![Binding {
            id: 0,
            base_gfn: 0x800,
            npages: 1024,
            pgoff: 0,
        }],
        vec![
            Binding {
                id: 0,
                base_gfn: 0x800,
                npages: 300,
                pgoff: 0,
            },
            Binding {
                id: 1,
                base_gfn: 0x4000,
                npages: 500,
                pgoff: 520,
            },
        ],
    ];
    let holes = holes();
    let mut q = PunchQuery {
        bindings: Vec::new(),
        pfn_base: PFN_BASE,
        rmp: Vec::new(),
        folios: Vec::new(),
        offset: 0,
        len: 0,
        max_pfn: PFNS,
    };
    for rmp in super::rmp::region_states() {
        q.rmp = rmp;
        for folios in &layouts {
            q.folios.clone_from(folios);
            for b in &bindings {
                q.bindings.clone_from(b);
                for &(start, end) in &holes {
                    q.offset = (start * PAGE_SIZE) as i64;
                    q.len = ((end - start) * PAGE_SIZE) as i64;
                    if f(&q).is_break() {
                        return;
                    }
                }
            }
        }
    }
}

fn random_case(rng: &mut Rng) -> PunchQuery {
    let mut folios = Vec::new();
    let mut next = 0u64;
    while next < 1024 && folios.len() < 40 {
        if next % 512 == 0 && rng.below(3) == 0 {
            folios.push(Folio {
                index: next,
                order: 9,
            });
            next += 512;
        } else {
            if rng.below(3) == 0 {
                folios.push(Folio {
                    index: next,
                    order: 0,
                });
            }
            next += 1 + rng.below(60);
        }
    }
    let start = rng.below(1100);
    let end = start + 1 + rng.below(600);
    let b = Binding {
        id: 0,
        base_gfn: rng.below(1 << 20),
        npages: 1 + rng.below(1024),
        pgoff: rng.below(64),
    };
    PunchQuery {
        bindings: vec![b],
        pfn_base: PFN_BASE,
        rmp: prepared(&folios),
        folios,
        offset: (start * PAGE_SIZE) as i64,
        len: ((end - start) * PAGE_SIZE) as i64,
        max_pfn: PFNS,
    }
}

/// The vectors or random cases (the exhaustive bound is [`exhaustive`]).
fn cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = PunchQuery>> {
    cases_of(source, vectors, "punch-hole", std::iter::empty, random_case)
}

/// Smaller cases, in the order punch-hole minimises (ARCHITECTURE.md,
/// "Shrinking"): fewer folios, fewer bindings, a 2M folio made 4K, the
/// hole at a lower offset, a shorter hole, then each binding with fewer
/// pages, a lower file offset and gfn. The hole stays page aligned and
/// non-empty, as `kvm_gmem_fallocate()` passes it; a folio's RMP entries
/// stay what `sev_gmem_prepare()` leaves for it.
fn candidates(q: &PunchQuery) -> Vec<PunchQuery> {
    let mut out = Vec::new();
    let derived = q.rmp == prepared(&q.folios);
    for i in 0..q.folios.len() {
        let mut c = q.clone();
        c.folios.remove(i);
        c.rmp = prepared(&c.folios);
        out.push(c);
    }
    for i in 0..q.bindings.len() {
        let mut c = q.clone();
        c.bindings.remove(i);
        out.push(c);
    }
    if derived {
        for i in 0..q.folios.len() {
            if q.folios[i].order != 0 {
                let mut c = q.clone();
                c.folios[i].order = 0;
                c.rmp = prepared(&c.folios);
                out.push(c);
            }
        }
    }
    let pages = (q.len as u64) / PAGE_SIZE;
    let at = (q.offset as u64) / PAGE_SIZE;
    out.extend(smaller_numbers(at).into_iter().map(|p| PunchQuery {
        offset: (p * PAGE_SIZE) as i64,
        ..q.clone()
    }));
    out.extend(
        smaller_numbers(pages)
            .into_iter()
            .filter(|&p| p > 0)
            .map(|p| PunchQuery {
                len: (p * PAGE_SIZE) as i64,
                ..q.clone()
            }),
    );
    for i in 0..q.bindings.len() {
        let b = q.bindings[i];
        let mut with = |f: &dyn Fn(&mut Binding)| {
            let mut c = q.clone();
            f(&mut c.bindings[i]);
            out.push(c);
        };
        for n in smaller_numbers(b.npages).into_iter().filter(|&n| n > 0) {
            with(&|x| x.npages = n);
        }
        for p in smaller_numbers(b.pgoff) {
            with(&|x| x.pgoff = p);
        }
        for g in smaller_numbers(b.base_gfn) {
            with(&|x| x.base_gfn = g);
        }
    }
    out
}

/// `f` given a case as `check` runs it, with the storage a worker keeps
/// from case to case (the harness structs are large; the model's storage
/// is reused).
fn with_case_ops<R>(lib: &Library, f: impl FnOnce(&CaseOps<'_, PunchQuery>) -> R) -> R {
    let scratch = RefCell::new(Scratch::default());
    let input: RefCell<Box<abi::gmf_punch_in>> = RefCell::default();
    let answer: RefCell<PunchScratch> = RefCell::default();
    f(&CaseOps {
        other_profile: None,
        // The model's answer, computed once into reused storage:
        // `applicable` needs it to know the model accepts the case, and
        // `check` (always called next, on the same case) compares with it.
        applicable: &|q| fits(q) && punch_hole_with(&mut answer.borrow_mut(), q).is_ok(),
        check: &|q| {
            check(
                lib,
                &mut scratch.borrow_mut(),
                &mut input.borrow_mut(),
                q,
                &answer.borrow(),
            )
        },
        candidates: &candidates,
        model_json: &|q| punch_hole(q).map(|a| to_json(&a)).unwrap_or(Value::Null),
    })
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    with_case_ops(ctx.lib, |ops| match source {
        Source::Exhaustive => run_visit(ctx, exhaustive, ops),
        _ => run_cases(ctx, cases(source, ctx.vectors), ops),
    })
}

fn case_json(
    source: Source,
    index: u64,
    _p: Profile,
    _lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    match source {
        Source::Exhaustive => nth_visited(exhaustive, index).map(|q| to_json(&q)),
        _ => nth_case_json(cases(source, vectors), index),
    }
}

/// The exhaustive cases timed apart (the bench): the C alone, the model
/// alone, and the C alone interleaved with the differential path.
pub fn split(lib: &Library) -> Split {
    let mut m = PunchScratch::default();
    let mut out: Box<abi::gmf_rmp_out> = Box::default();
    let mut input: Box<abi::gmf_punch_in> = Box::default();
    let mut c = |q: &PunchQuery| {
        if fill_input(q, &mut input).is_some() {
            // SAFETY: valid pointers for the call.
            unsafe { (lib.punch_hole)(&*input, &mut *out) };
        }
        std::hint::black_box(&out);
    };
    let mut split = time_split_visit(exhaustive, fits, &mut c, |q| {
        std::hint::black_box(punch_hole_with(&mut m, q).is_ok());
    });
    split.interleaved = Some(with_case_ops(lib, |ops| {
        time_interleaved(exhaustive, fits, c, ops)
    }));
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmem_reference::invalidate::{AttrFilter, GfnRange};
    use gmem_reference::rmp::RmpEvent;

    /// The C's record of `events`, as the harness writes it: the fields
    /// [`c_event`] keeps, and fields it does not keep set to junk.
    fn recorded(events: &[TraceEvent]) -> Box<abi::gmf_rmp_out> {
        let mut o: Box<abi::gmf_rmp_out> = Box::default();
        for (d, (op, pfn, arg, level, lock)) in o.events.iter_mut().zip(model_events(events)) {
            *d = abi::gmf_event {
                op,
                pfn,
                arg,
                level,
                asid: 77,
                mmu_lock_held: lock,
                ret: -5,
            };
        }
        o.nevents = model_events(events).count() as u32;
        o
    }

    #[test]
    fn events_agree_is_the_tuple_compare() {
        let rmp = |op, mmu_lock| TraceEvent::Rmp {
            event: RmpEvent {
                op,
                mmu_lock,
                ret: 0,
            },
        };
        let model = vec![
            TraceEvent::InvalidateBegin,
            TraceEvent::Zap {
                range: GfnRange {
                    slot: 0,
                    start: 0x800,
                    end: 0x900,
                    attr_filter: AttrFilter::Private,
                },
                filter: AttrFilter::Private,
            },
            rmp(RmpOp::Psmash { pfn: 0x201 }, false),
            rmp(
                RmpOp::MakeShared {
                    pfn: 0x201,
                    level: 1,
                },
                false,
            ),
            TraceEvent::Map { gfn: 3, pfn: None },
            rmp(
                RmpOp::MakePrivate {
                    pfn: 0x400,
                    gpa: 0x1000,
                    level: 2,
                    asid: 1,
                },
                true,
            ),
            TraceEvent::MemoryFaultExit { gfn: 4 },
            TraceEvent::InvalidateEnd,
        ];
        let tuples = |o: &abi::gmf_rmp_out, m: &[TraceEvent]| c_events(o).eq(model_events(m));
        let agree =
            |o: &abi::gmf_rmp_out, m: &[TraceEvent]| events_agree(o, m, &mut Pfns::default());
        let same = recorded(&model);
        // Agreeing, the pass gathers every model operation's span.
        let mut gathered = Pfns::default();
        assert!(events_agree(&same, &model, &mut gathered));
        let mut spans = Pfns::default();
        add_model_spans(&model, &mut spans);
        assert_eq!(gathered, spans);
        assert!(spans.has(0x201) && spans.has(0x3ff) && spans.has(0x5ff));
        // Every field of every C event changed, one at a time, and the
        // lists cut short or run long on either side.
        let (mut agreed, mut differed) = (0, 0);
        let mut check = |o: &abi::gmf_rmp_out, m: &[TraceEvent]| {
            let want = tuples(o, m);
            assert_eq!(agree(o, m), want, "{:?}", &o.events[..o.nevents as usize]);
            if want { agreed += 1 } else { differed += 1 }
        };
        for i in 0..same.nevents as usize {
            let changes: [fn(&mut abi::gmf_event); 7] = [
                |e| e.op ^= 1,
                |e| e.pfn += 1,
                |e| e.arg += 1,
                |e| e.level += 1,
                |e| e.asid += 1,
                |e| e.mmu_lock_held ^= 1,
                |e| e.ret = 0,
            ];
            for change in changes {
                let mut o = recorded(&model);
                change(&mut o.events[i]);
                check(&o, &model);
            }
        }
        for n in 0..model.len() {
            check(&recorded(&model[..n]), &model);
            check(&same, &model[..n]);
        }
        // Fields a kind does not define (asid and ret always, the arg of a
        // begin, PSMASH or make-shared) agree; every kept field differs.
        assert!(
            agreed > 10 && differed > 20,
            "{agreed} agreed, {differed} differed"
        );
    }
}
