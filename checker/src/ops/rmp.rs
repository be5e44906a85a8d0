//! `prepare` and `gmem-invalidate`: the SEV-SNP RMP hooks.
//!
//! The shim models an RMP of [`abi::GMF_MAX_RMP_PFNS`] entries (four 2M
//! regions); cases outside it are model-only. Both sides' whole tables are
//! compared after the call, with every RMP operation in order (pfn, level,
//! gpa, asid, whether mmu_lock was held, its return) and the WARN count.
//!
//! Exhaustive bound, on the 2M region at pfns 512..1024: the region
//! unassigned, one 2M entry, or 4K entries at any subset of five probe
//! pfns (its first, second, middle and last pfn, and the pfn under test);
//! for prepare every probe pfn × folio order 0/9 × guest/host SNP flags; for
//! gmem-invalidate every `[start, end)` over boundary pfns around the region.

use serde_json::{Value, json};

use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, cases_of, nth_case_json, run_cases,
    smaller_numbers, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::ops::{PrepareQuery, RmpInvalidateQuery, prepare, rmp_invalidate};
use gmem_reference::rmp::{PageSize, Rmp, RmpEvent, RmpOp, RmpRun};

/// The `prepare` registry entry.
pub const PREPARE: Operation = Operation {
    name: "prepare",
    cop: COp::Prepare,
    run: run_prepare,
    case_json: prepare_json,
};
/// The `gmem-invalidate` registry entry.
pub const RMP_INVALIDATE: Operation = Operation {
    name: "gmem-invalidate",
    cop: COp::RmpInvalidate,
    run: run_rmp_invalidate,
    case_json: rmp_invalidate_json,
};

const PFNS: u64 = abi::GMF_MAX_RMP_PFNS as u64;

fn fits(max_pfn: u64, runs: &[RmpRun]) -> bool {
    max_pfn <= PFNS && runs.iter().all(|r| r.pfn < PFNS)
}

fn c_state(snp_enabled: bool, max_pfn: u64, runs: &[RmpRun]) -> Option<Box<abi::gmf_rmp_state>> {
    let rmp = Rmp::from_runs(snp_enabled, max_pfn, runs).ok()?;
    let mut s: Box<abi::gmf_rmp_state> = Box::default();
    s.snp_enabled = u8::from(snp_enabled);
    s.max_pfn = max_pfn;
    fill_entries(&rmp, &mut s.entries);
    Some(s)
}

/// Writes the model's table into the harness's entry array.
pub fn fill_entries(rmp: &Rmp, entries: &mut [abi::gmf_rmp_entry]) {
    for (pfn, e) in entries.iter_mut().enumerate() {
        let m = rmp.entry(pfn as u64);
        *e = abi::gmf_rmp_entry {
            assigned: u8::from(m.assigned),
            pagesize: u8::from(m.size == PageSize::M2),
            immutable: u8::from(m.immutable),
            validated: u8::from(m.validated),
            asid: m.asid,
            gpa: m.gpa,
        };
    }
}

fn event_tuple(e: &RmpEvent) -> (u32, u64, u64, i32, u32, u8, i32) {
    let lock = u8::from(e.mmu_lock);
    match e.op {
        RmpOp::MakePrivate {
            pfn,
            gpa,
            level,
            asid,
        } => (abi::GMF_EV_MAKE_PRIVATE, pfn, gpa, level, asid, lock, e.ret),
        RmpOp::MakeShared { pfn, level } => {
            (abi::GMF_EV_MAKE_SHARED, pfn, 0, level, 0, lock, e.ret)
        }
        RmpOp::Psmash { pfn } => (abi::GMF_EV_PSMASH, pfn, 0, 0, 0, lock, e.ret),
    }
}

fn c_event_tuple(e: &abi::gmf_event) -> (u32, u64, u64, i32, u32, u8, i32) {
    let (arg, level, asid) = match e.op {
        abi::GMF_EV_MAKE_PRIVATE => (e.arg, e.level, e.asid),
        abi::GMF_EV_MAKE_SHARED => (0, e.level, 0),
        _ => (0, 0, 0),
    };
    (e.op, e.pfn, arg, level, asid, e.mmu_lock_held, e.ret)
}

fn c_json(o: &abi::gmf_rmp_out) -> Value {
    let events: Vec<Value> = o.events[..(o.nevents as usize).min(o.events.len())]
        .iter()
        .map(|e| json!({"op": e.op, "pfn": e.pfn, "arg": e.arg, "level": e.level, "mmu_lock": e.mmu_lock_held != 0, "ret": e.ret}))
        .collect();
    let assigned: Vec<u64> = o
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.assigned != 0)
        .map(|(p, _)| p as u64)
        .collect();
    json!({"ret": o.ret, "max_level": o.max_level, "events": events, "warnings": o.warnings,
        "assigned_pfns": assigned.len(), "first_assigned": assigned.first(), "last_assigned": assigned.last()})
}

/// Compares events, warnings and the final table.
fn compare(
    events: &[RmpEvent],
    warnings: u32,
    runs: &[RmpRun],
    o: &abi::gmf_rmp_out,
) -> Vec<String> {
    let mut why = Vec::new();
    let c_events: Vec<_> = o.events[..(o.nevents as usize).min(o.events.len())]
        .iter()
        .map(c_event_tuple)
        .collect();
    let m_events: Vec<_> = events.iter().map(event_tuple).collect();
    if o.overflow != 0 {
        why.push("the C made more RMP operations than the harness records".into());
    } else if c_events != m_events {
        let i = c_events
            .iter()
            .zip(&m_events)
            .position(|(a, b)| a != b)
            .unwrap_or(c_events.len().min(m_events.len()));
        why.push(format!(
            "RMP operation {i}: C {:?}, model {:?} (op, pfn, gpa, level, asid, mmu_lock, ret)",
            c_events.get(i),
            m_events.get(i)
        ));
    }
    if o.warnings != warnings {
        why.push(format!("WARNs: C {}, model {warnings}", o.warnings));
    }
    let rmp = Rmp::from_runs(true, PFNS, runs).unwrap_or_default();
    let mut model_table = vec![abi::gmf_rmp_entry::default(); PFNS as usize];
    fill_entries(&rmp, &mut model_table);
    if let Some(p) = (0..PFNS as usize).find(|&p| {
        let (a, b) = (&o.entries[p], &model_table[p]);
        (
            a.assigned,
            a.pagesize,
            a.immutable,
            a.validated,
            a.asid,
            a.gpa,
        ) != (
            b.assigned,
            b.pagesize,
            b.immutable,
            b.validated,
            b.asid,
            b.gpa,
        )
    }) {
        let (a, b) = (&o.entries[p], &model_table[p]);
        why.push(format!(
            "RMP entry of pfn {p} after: C assigned {} 2M {} asid {} gpa {:#x}, model assigned {} 2M {} asid {} gpa {:#x}",
            a.assigned, a.pagesize, a.asid, a.gpa, b.assigned, b.pagesize, b.asid, b.gpa
        ));
    }
    why
}

fn check_prepare(lib: &Library, q: &PrepareQuery) -> Option<(String, Value)> {
    let m = prepare(q).ok()?;
    let mut input: Box<abi::gmf_prepare_in> = Box::default();
    input.snp_guest = u8::from(q.snp_guest);
    input.asid = q.asid;
    input.pfn = q.pfn;
    input.gfn = q.gfn;
    input.max_order = q.max_order;
    input.rmp = *c_state(q.snp_enabled, q.max_pfn, &q.rmp)?;
    let mut o: Box<abi::gmf_rmp_out> = Box::default();
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.prepare)(&*input, &mut *o) };
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_prepare returned {r}"));
    }
    if o.ret != m.ret {
        why.push(format!(
            "sev_gmem_prepare() returned {}, model {}",
            o.ret, m.ret
        ));
    }
    if o.max_level != m.max_level {
        why.push(format!(
            "max mapping level after: C {}, model {}",
            o.max_level, m.max_level
        ));
    }
    why.extend(compare(&m.events, m.warnings, &m.rmp, &o));
    (!why.is_empty()).then(|| (why.join("; "), c_json(&o)))
}

fn check_rmp_invalidate(lib: &Library, q: &RmpInvalidateQuery) -> Option<(String, Value)> {
    let m = rmp_invalidate(q).ok()?;
    let mut input: Box<abi::gmf_rmp_invalidate_in> = Box::default();
    input.start = q.start;
    input.end = q.end;
    input.rmp = *c_state(q.snp_enabled, q.max_pfn, &q.rmp)?;
    let mut o: Box<abi::gmf_rmp_out> = Box::default();
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.rmp_invalidate)(&*input, &mut *o) };
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_rmp_invalidate returned {r}"));
    }
    why.extend(compare(&m.events, m.warnings, &m.rmp, &o));
    (!why.is_empty()).then(|| (why.join("; "), c_json(&o)))
}

const REGION: u64 = 512;
const PROBES: [u64; 4] = [512, 513, 768, 1023];

/// Region states: none, one 2M entry, or 4K entries at a subset of probes.
fn region_states(extra: u64) -> Vec<Vec<RmpRun>> {
    let run = |pfn: u64, size: PageSize| RmpRun {
        pfn,
        npages: 1,
        size,
        asid: 7,
        gpa: (pfn + 0x40000) << 12,
        immutable: false,
        validated: pfn % 2 == 0,
    };
    let mut probes: Vec<u64> = PROBES.to_vec();
    if !probes.contains(&extra) && (REGION..2 * REGION).contains(&extra) {
        probes.push(extra);
    }
    let mut states = vec![
        vec![],
        vec![RmpRun {
            npages: 512,
            ..run(REGION, PageSize::M2)
        }],
    ];
    for mask in 1u32..(1 << probes.len()) {
        states.push(
            probes
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &p)| run(p, PageSize::K4))
                .collect(),
        );
    }
    states
}

fn prepare_exhaustive() -> impl Iterator<Item = PrepareQuery> {
    let pfns = [512u64, 513, 700, 1023];
    pfns.into_iter().flat_map(|pfn| {
        region_states(pfn).into_iter().flat_map(move |rmp| {
            [0i32, 9].into_iter().flat_map(move |max_order| {
                let rmp = rmp.clone();
                [(true, true), (false, true), (true, false)]
                    .into_iter()
                    .map(move |(snp_guest, snp_enabled)| PrepareQuery {
                        snp_guest,
                        snp_enabled,
                        asid: 7,
                        pfn,
                        gfn: 0x1000 + pfn - REGION + 3,
                        max_order,
                        max_pfn: PFNS,
                        rmp: rmp.clone(),
                    })
            })
        })
    })
}

fn rmp_invalidate_exhaustive() -> impl Iterator<Item = RmpInvalidateQuery> {
    let points = [0u64, 511, 512, 513, 700, 1023, 1024, 1025, 1536];
    region_states(700).into_iter().flat_map(move |rmp| {
        points.into_iter().flat_map(move |start| {
            let rmp = rmp.clone();
            points
                .into_iter()
                .filter(move |&end| end > start)
                .map(move |end| RmpInvalidateQuery {
                    snp_enabled: true,
                    start,
                    end,
                    max_pfn: PFNS,
                    rmp: rmp.clone(),
                })
        })
    })
}

fn random_runs(rng: &mut Rng) -> Vec<RmpRun> {
    let mut runs: Vec<RmpRun> = Vec::new();
    for _ in 0..rng.below(4) {
        let size = if rng.below(3) == 0 {
            PageSize::M2
        } else {
            PageSize::K4
        };
        let pfn = match size {
            PageSize::M2 => rng.below(4) * 512,
            PageSize::K4 => rng.below(PFNS),
        };
        let npages = if size == PageSize::M2 {
            512
        } else {
            1 + rng.below(40)
        };
        let cand = RmpRun {
            pfn,
            npages,
            size,
            asid: rng.below(4) as u32,
            gpa: rng.next_u64() & 0x000f_ffff_ffff_f000,
            immutable: false,
            validated: rng.bool(),
        };
        let mut trial = runs.clone();
        trial.push(cand);
        if Rmp::from_runs(true, PFNS, &trial).is_ok() {
            runs = trial;
        }
    }
    runs
}

fn random_prepare(rng: &mut Rng) -> PrepareQuery {
    PrepareQuery {
        snp_guest: rng.below(8) != 0,
        snp_enabled: rng.below(8) != 0,
        asid: 1 + rng.below(16) as u32,
        pfn: rng.below(PFNS + 8),
        gfn: rng.edgy(),
        max_order: [0, 9, 10, 8, -1][rng.below(5) as usize],
        max_pfn: PFNS - if rng.below(4) == 0 { rng.below(600) } else { 0 },
        rmp: random_runs(rng),
    }
}

fn random_rmp_invalidate(rng: &mut Rng) -> RmpInvalidateQuery {
    let start = rng.below(PFNS);
    RmpInvalidateQuery {
        snp_enabled: rng.below(8) != 0,
        start,
        end: start + rng.below(1100),
        max_pfn: PFNS,
        rmp: random_runs(rng),
    }
}

fn prepare_cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = PrepareQuery>> {
    cases_of(
        source,
        vectors,
        "prepare",
        prepare_exhaustive,
        random_prepare,
    )
}

fn rmp_invalidate_cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = RmpInvalidateQuery>> {
    cases_of(
        source,
        vectors,
        "gmem-invalidate",
        rmp_invalidate_exhaustive,
        random_rmp_invalidate,
    )
}

fn prepare_candidates(q: &PrepareQuery) -> Vec<PrepareQuery> {
    let mut out: Vec<PrepareQuery> = (0..q.rmp.len())
        .map(|i| {
            let mut c = q.clone();
            c.rmp.remove(i);
            c
        })
        .collect();
    out.extend(
        smaller_numbers(q.gfn)
            .into_iter()
            .map(|gfn| PrepareQuery { gfn, ..q.clone() }),
    );
    out
}

fn rmp_invalidate_candidates(q: &RmpInvalidateQuery) -> Vec<RmpInvalidateQuery> {
    let mut out: Vec<RmpInvalidateQuery> = (0..q.rmp.len())
        .map(|i| {
            let mut c = q.clone();
            c.rmp.remove(i);
            c
        })
        .collect();
    out.extend(
        smaller_numbers(q.end)
            .into_iter()
            .filter(|&e| e > q.start)
            .map(|end| RmpInvalidateQuery { end, ..q.clone() }),
    );
    out.extend((q.start + 1 < q.end).then(|| RmpInvalidateQuery {
        start: q.start + 1,
        ..q.clone()
    }));
    out
}

fn run_prepare(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let lib = ctx.lib;
    run_cases(
        ctx,
        prepare_cases(source, ctx.vectors),
        &CaseOps {
            applicable: &|q| fits(q.max_pfn, &q.rmp) && prepare(q).is_ok(),
            check: &|q| check_prepare(lib, q),
            candidates: &prepare_candidates,
            model_json: &|q| prepare(q).map(|a| to_json(&a)).unwrap_or(Value::Null),
        },
    )
}

fn run_rmp_invalidate(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let lib = ctx.lib;
    run_cases(
        ctx,
        rmp_invalidate_cases(source, ctx.vectors),
        &CaseOps {
            applicable: &|q| fits(q.max_pfn, &q.rmp) && rmp_invalidate(q).is_ok(),
            check: &|q| check_rmp_invalidate(lib, q),
            candidates: &rmp_invalidate_candidates,
            model_json: &|q| {
                rmp_invalidate(q)
                    .map(|a| to_json(&a))
                    .unwrap_or(Value::Null)
            },
        },
    )
}

fn prepare_json(
    source: Source,
    index: u64,
    _p: Profile,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    nth_case_json(prepare_cases(source, vectors), index)
}

fn rmp_invalidate_json(
    source: Source,
    index: u64,
    _p: Profile,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    nth_case_json(rmp_invalidate_cases(source, vectors), index)
}
