//! `prepare` and `gmem-invalidate`: the SEV-SNP RMP hooks.
//!
//! The shim models an RMP of [`abi::GMF_MAX_RMP_PFNS`] entries (four 2M
//! regions); cases outside it are model-only. The state goes in as runs;
//! every RMP operation in order (pfn, level, gpa, asid, whether mmu_lock was
//! held, its return), the WARN count and the whole table after are compared
//! (the table over the entries either side wrote: elsewhere both hold what
//! was loaded).
//!
//! Exhaustive bound (ARCHITECTURE.md says why it is enough): every state of
//! [`region_states`] — seven probe pages of the 2M region at pfns 512..1024
//! in every page state, the region assigned 4K with holes or immutable
//! probes, one 2M entry — for prepare × pfn × folio order × gfn × table
//! size, for gmem-invalidate × `[start, end)` around the region's head,
//! middle and tail and across it × table size.

use std::cell::RefCell;
use std::ops::ControlFlow;

use serde_json::{Value, json};

use super::{
    CaseOps, Ctx, Operation, Outcome, Rng, Source, Split, cases_of, nth_case_json, nth_visited,
    run_cases, run_visit, smaller_numbers, time_interleaved, time_split_visit, to_json,
};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::ops::{
    MAX_RMP_INVALIDATE_PFNS, PrepareQuery, RmpInvalidateQuery, prepare, rmp_invalidate,
};
use gmem_reference::rmp::{
    HookTrace, PageSize, Rmp, RmpEntry, RmpEvent, RmpLoader, RmpOp, RmpRun, sev_gmem_invalidate,
    sev_gmem_prepare, sev_private_max_mapping_level,
};

/// The `prepare` registry entry.
pub const PREPARE: Operation = Operation {
    name: "prepare",
    cop: COp::Prepare,
    run: run_prepare,
    case_json: prepare_json,
    explain: explain_prepare,
    picture: picture_prepare,
};

fn explain_prepare(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::prepare)
}
/// The `gmem-invalidate` registry entry.
pub const RMP_INVALIDATE: Operation = Operation {
    name: "gmem-invalidate",
    cop: COp::RmpInvalidate,
    run: run_rmp_invalidate,
    case_json: rmp_invalidate_json,
    explain: explain_rmp_invalidate,
    picture: picture_rmp_invalidate,
};

fn explain_rmp_invalidate(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::rmp_invalidate)
}

const PFNS: u64 = abi::GMF_MAX_RMP_PFNS as u64;

/// Whether the harness can express the state: inside the shim's table,
/// within its run count.
fn fits(max_pfn: u64, runs: &[RmpRun]) -> bool {
    max_pfn <= PFNS
        && runs.len() <= abi::GMF_MAX_RMP_RUNS as usize
        && runs.iter().all(|r| r.pfn < PFNS)
}

/// Writes the entries `runs` describe into `tab`, which covers pfns
/// `[lo, lo + tab.len())` and starts all shared.
fn fill_span(
    runs: impl Iterator<Item = (u64, u64, bool, abi::gmf_rmp_entry)>,
    lo: u64,
    tab: &mut [abi::gmf_rmp_entry],
) {
    let hi = lo + tab.len() as u64;
    for (pfn, npages, head_2m, e) in runs {
        let (a, b) = (pfn.max(lo), (pfn + npages).min(hi));
        for p in a..b {
            let k = p - pfn;
            tab[(p - lo) as usize] = abi::gmf_rmp_entry {
                pagesize: u8::from(head_2m && k == 0),
                gpa: e.gpa.wrapping_add(k << 12),
                ..e
            };
        }
    }
}

fn loaded(
    s: &abi::gmf_rmp_state,
) -> impl Iterator<Item = (u64, u64, bool, abi::gmf_rmp_entry)> + '_ {
    s.runs[..s.nruns as usize].iter().map(|r| {
        (
            r.pfn,
            r.npages,
            r.pagesize != 0,
            abi::gmf_rmp_entry {
                assigned: 1,
                pagesize: 0,
                immutable: r.immutable,
                validated: r.validated,
                asid: r.asid,
                gpa: r.gpa,
            },
        )
    })
}

/// The pfns an RMP operation may write: its 2M region for a 2M update or
/// a PSMASH, else its own pfn.
pub fn op_span(op: &RmpOp) -> (u64, u64) {
    let (pfn, whole) = match *op {
        RmpOp::MakePrivate { pfn, level, .. } | RmpOp::MakeShared { pfn, level } => {
            (pfn, level != gmem_reference::kernel::PG_LEVEL_4K)
        }
        RmpOp::Psmash { pfn } => (pfn, true),
    };
    if whole {
        let head = pfn & !511;
        (head, head.saturating_add(512))
    } else {
        (pfn, pfn.saturating_add(1))
    }
}

/// Buffers one worker reuses for every vector: the harness structs are
/// large (events, a table's worth of entries), and a vector must cost what
/// it touches, not their size.
#[derive(Default)]
pub struct Scratch {
    /// The harness's answer.
    pub out: Box<abi::gmf_rmp_out>,
    /// A loaded state's runs in pfn order, built when a comparison first
    /// needs a loaded entry.
    sorted: Vec<Run>,
    /// The pfns the model's operations may have written, refilled per
    /// vector ([`Scratch::model_table_differs`]).
    model: Pfns,
}

/// A run as the tables are filled from it: first pfn, pages, whether its
/// first entry is a 2M one, the entry (gpa of the first page).
type Run = (u64, u64, bool, abi::gmf_rmp_entry);

/// The loaded state's entries, asked for in increasing pfn order: the
/// state's runs are put in pfn order only when the first entry is asked
/// for (a vector whose C wrote every pfn the model did never asks), then
/// walked once.
struct Loaded<'a> {
    state: &'a abi::gmf_rmp_state,
    runs: &'a mut Vec<Run>,
    /// Runs before this one end at or before the last pfn asked for.
    next: Option<usize>,
}

impl Loaded<'_> {
    fn entry(&mut self, p: u64) -> abi::gmf_rmp_entry {
        let next = match self.next {
            Some(i) => i,
            None => {
                self.runs.clear();
                self.runs.extend(loaded(self.state));
                if !self.runs.is_sorted_by_key(|r| r.0) {
                    self.runs.sort_by_key(|r| r.0);
                }
                0
            }
        };
        let skip = self.runs[next..]
            .iter()
            .take_while(|r| r.0 + r.1 <= p)
            .count();
        self.next = Some(next + skip);
        match self.runs.get(next + skip) {
            Some(&(pfn, _, head_2m, e)) if pfn <= p => {
                let k = p - pfn;
                abi::gmf_rmp_entry {
                    pagesize: u8::from(head_2m && k == 0),
                    gpa: e.gpa.wrapping_add(k << 12),
                    ..e
                }
            }
            _ => abi::gmf_rmp_entry::default(),
        }
    }
}

/// A model entry in the harness's form.
fn harness_entry(e: RmpEntry) -> abi::gmf_rmp_entry {
    abi::gmf_rmp_entry {
        assigned: u8::from(e.assigned),
        pagesize: u8::from(e.size == PageSize::M2),
        immutable: u8::from(e.immutable),
        validated: u8::from(e.validated),
        asid: e.asid,
        gpa: e.gpa,
    }
}

/// Which fields of an entry a comparison looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Every field.
    All,
    /// Assigned and page size only.
    State,
}

impl Fields {
    fn key(self, e: &abi::gmf_rmp_entry) -> (u8, u8, u8, u8, u32, u64) {
        match self {
            Fields::All => (
                e.assigned,
                e.pagesize,
                e.immutable,
                e.validated,
                e.asid,
                e.gpa,
            ),
            Fields::State => (e.assigned, e.pagesize, 0, 0, 0, 0),
        }
    }
}

impl Scratch {
    /// Compares the table after the call, whole: the C's is the loaded
    /// state with the entries it wrote (`out.entries` where `out.written`
    /// is set) on top, the model's is `after`; both equal the loaded state
    /// wherever neither wrote, so only the pfns the C wrote or the model's
    /// operations may have written (`model`) are compared, in pfn order:
    /// the model's entries from one walk over `after`'s runs, the C's
    /// loaded entry (where it wrote nothing) from one over the state's
    /// runs. The first difference, in words.
    pub fn table_differs(
        &mut self,
        state: &abi::gmf_rmp_state,
        after: &Rmp,
        model: &Pfns,
        fields: Fields,
    ) -> Option<String> {
        table_differs(&self.out, &mut self.sorted, state, after, model, fields)
    }

    /// [`Scratch::table_differs`] with the pfns the model's `ops` may
    /// have written, gathered in storage kept from vector to vector.
    pub fn model_table_differs<'a>(
        &mut self,
        state: &abi::gmf_rmp_state,
        after: &Rmp,
        ops: impl Iterator<Item = &'a RmpOp>,
        fields: Fields,
    ) -> Option<String> {
        self.model.clear();
        for op in ops {
            self.model.add(op_span(op));
        }
        self.gathered_table_differs(state, after, fields)
    }

    /// The harness's answer, and the model's pfn set emptied, for a
    /// caller that adds its operations' spans ([`op_span`]) in a pass it
    /// makes over the model's events anyway; then
    /// [`Scratch::gathered_table_differs`].
    pub fn out_and_model_pfns(&mut self) -> (&abi::gmf_rmp_out, &mut Pfns) {
        self.model.clear();
        (&self.out, &mut self.model)
    }

    /// [`Scratch::table_differs`] with the pfns gathered since
    /// [`Scratch::out_and_model_pfns`].
    pub fn gathered_table_differs(
        &mut self,
        state: &abi::gmf_rmp_state,
        after: &Rmp,
        fields: Fields,
    ) -> Option<String> {
        table_differs(
            &self.out,
            &mut self.sorted,
            state,
            after,
            &self.model,
            fields,
        )
    }
}

/// [`Scratch::table_differs`], on its parts.
fn table_differs(
    o: &abi::gmf_rmp_out,
    sorted: &mut Vec<Run>,
    state: &abi::gmf_rmp_state,
    after: &Rmp,
    model: &Pfns,
    fields: Fields,
) -> Option<String> {
    if o.rmp_lo > o.rmp_hi || o.rmp_hi > PFNS {
        return Some(format!(
            "the C reported RMP writes over pfns [{}, {}), outside the table",
            o.rmp_lo, o.rmp_hi
        ));
    }
    // Words outside the ones either side wrote hold nothing to compare.
    let model_words = model.span();
    let c_words = (o.rmp_lo / 64) as usize..o.rmp_hi.div_ceil(64) as usize;
    let words = match (c_words.is_empty(), model_words.is_empty()) {
        (true, true) => return None,
        (true, false) => model_words,
        (false, true) => c_words,
        (false, false) => c_words.start.min(model_words.start)..c_words.end.max(model_words.end),
    };
    let mut c = Loaded {
        state,
        runs: sorted,
        next: None,
    };
    let mut loaded = |p| c.entry(p);
    // first_difference asks in increasing pfn order.
    let mut walk = after.walk();
    let mut after = |p| harness_entry(walk.entry(p));
    // Each kind of compare compiled on its own: a `fields` known at
    // compile time compares only its fields per pfn.
    match fields {
        Fields::All => first_difference(o, model, words, Fields::All, &mut loaded, &mut after),
        Fields::State => first_difference(o, model, words, Fields::State, &mut loaded, &mut after),
    }
}

/// [`Scratch::table_differs`]' walk: every pfn set in the C's `written` or
/// in `model`, in the words `words`, the C's entry (what it wrote, else
/// `loaded(p)`) against the model's (`after(p)`).
#[inline(always)]
fn first_difference(
    o: &abi::gmf_rmp_out,
    model: &Pfns,
    words: std::ops::Range<usize>,
    fields: Fields,
    mut loaded: impl FnMut(u64) -> abi::gmf_rmp_entry,
    mut after: impl FnMut(u64) -> abi::gmf_rmp_entry,
) -> Option<String> {
    for w in words {
        let (c_wrote, mut bits) = (o.written[w], o.written[w] | model.words[w]);
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            let p = w as u64 * 64 + u64::from(bit);
            let m = after(p);
            let c = if c_wrote & (1 << bit) != 0 {
                o.entries[p as usize]
            } else {
                loaded(p)
            };
            if fields.key(&c) != fields.key(&m) {
                return Some(format!(
                    "RMP entry of pfn {p} after: C assigned {} 2M {} asid {} gpa {:#x}, model assigned {} 2M {} asid {} gpa {:#x}",
                    c.assigned, c.pagesize, c.asid, c.gpa, m.assigned, m.pagesize, m.asid, m.gpa
                ));
            }
        }
    }
    None
}

/// A set of the table's pfns, as the harness's `written` bitmap: bit
/// `pfn % 64` of word `pfn / 64`, and the words that hold them (so a walk
/// over the set does not look at the table's other words).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pfns {
    words: [u64; PFNS as usize / 64],
    /// Every set bit is in words `[span.0, span.1)`; empty when equal.
    span: (usize, usize),
}

impl Pfns {
    /// Adds `[lo, hi)` (clipped to the table).
    pub fn add(&mut self, (lo, hi): (u64, u64)) {
        let (mut p, hi) = (lo, hi.min(PFNS));
        if p >= hi {
            return;
        }
        let (first, end) = ((p / 64) as usize, hi.div_ceil(64) as usize);
        self.span = if self.span.0 == self.span.1 {
            (first, end)
        } else {
            (self.span.0.min(first), self.span.1.max(end))
        };
        // A 4K operation's pfn, the common case: one bit, no loop.
        if hi - p == 1 {
            self.words[first] |= 1 << (p % 64);
            return;
        }
        // A word at a time: a 2M operation's span is 512 pfns.
        while p < hi {
            let (b, n) = (p % 64, hi - p);
            let bits = if n >= 64 - b {
                !0u64 << b
            } else {
                ((1u64 << n) - 1) << b
            };
            self.words[(p / 64) as usize] |= bits;
            p += 64 - b;
        }
    }

    /// Empties the set (only the words it spans are touched).
    pub fn clear(&mut self) {
        // A loop, not `fill`: the span is a word or two, and a call to
        // memset cost more than the stores.
        for w in &mut self.words[self.span.0..self.span.1] {
            *w = 0;
        }
        self.span = (0, 0);
    }

    /// Whether `pfn` is in the set.
    pub fn has(&self, pfn: u64) -> bool {
        pfn < PFNS && self.words[(pfn / 64) as usize] & (1 << (pfn % 64)) != 0
    }

    /// The set as the harness's bitmap.
    pub fn words(&self) -> &[u64; PFNS as usize / 64] {
        &self.words
    }

    /// The words that hold the set (empty for an empty set).
    pub fn span(&self) -> std::ops::Range<usize> {
        self.span.0..self.span.1
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

/// The C's whole table after a call: the loaded state with the entries
/// the C wrote on top, and only those (an entry it did not write is
/// whatever an earlier vector left in `entries`). For a counterexample.
fn c_table_after(state: &abi::gmf_rmp_state, o: &abi::gmf_rmp_out) -> Vec<abi::gmf_rmp_entry> {
    let mut tab = vec![abi::gmf_rmp_entry::default(); PFNS as usize];
    fill_span(loaded(state), 0, &mut tab);
    for (p, e) in tab.iter_mut().enumerate() {
        if o.written[p / 64] & (1 << (p % 64)) != 0 {
            *e = o.entries[p];
        }
    }
    tab
}

fn c_json(state: &abi::gmf_rmp_state, o: &abi::gmf_rmp_out) -> Value {
    let events: Vec<Value> = o.events[..(o.nevents as usize).min(o.events.len())]
        .iter()
        .map(|e| json!({"op": e.op, "pfn": e.pfn, "arg": e.arg, "level": e.level, "mmu_lock": e.mmu_lock_held != 0, "ret": e.ret}))
        .collect();
    let tab = c_table_after(state, o);
    let assigned: Vec<u64> = tab
        .iter()
        .enumerate()
        .filter(|(_, e)| e.assigned != 0)
        .map(|(p, _)| p as u64)
        .collect();
    json!({"ret": o.ret, "max_level": o.max_level, "events": events, "warnings": o.warnings,
        "assigned_pfns": assigned.len(), "first_assigned": assigned.first(), "last_assigned": assigned.last(),
        "rmp": c_after_runs(state, o)})
}

/// The C's table after a call, as runs in the model's JSON form (a 2M
/// entry one run; 4K entries merged where contiguous and alike): what the
/// counterexample shows and its picture draws. Built only for a
/// counterexample.
pub fn c_after_runs(state: &abi::gmf_rmp_state, o: &abi::gmf_rmp_out) -> Value {
    let tab = c_table_after(state, o);
    let mut runs: Vec<RmpRun> = Vec::new();
    let mut p = 0usize;
    while p < tab.len() {
        let e = tab[p];
        if e.assigned == 0 {
            p += 1;
            continue;
        }
        let huge = e.pagesize != 0 && p as u64 % 512 == 0;
        let run = RmpRun {
            pfn: p as u64,
            npages: 1,
            size: if huge { PageSize::M2 } else { PageSize::K4 },
            asid: e.asid,
            gpa: e.gpa,
            immutable: e.immutable != 0,
            validated: e.validated != 0,
        };
        if huge {
            runs.push(RmpRun { npages: 512, ..run });
            p += 512;
            continue;
        }
        match runs.last_mut() {
            Some(r)
                if r.size == PageSize::K4
                    && r.pfn + r.npages == p as u64
                    && r.asid == run.asid
                    && r.immutable == run.immutable
                    && r.validated == run.validated
                    && r.gpa.wrapping_add(r.npages << 12) == run.gpa =>
            {
                r.npages += 1;
            }
            _ => runs.push(run),
        }
        p += 1;
    }
    to_json(&runs)
}

fn picture_prepare(c: &super::Counterexample) -> Option<String> {
    let pfn = c.input["pfn"].as_u64()?;
    Some(super::picture::rmp_region_svg(
        "prepare",
        pfn & !511,
        &c.input["rmp"],
        &c.model["rmp"],
        c.c.get("rmp"),
        (pfn, pfn.saturating_add(1)),
        &format!(
            "sev_gmem_prepare(pfn {pfn:#x}, gfn {:#x}, order {})",
            super::picture::u(&c.input["gfn"]),
            c.input["max_order"]
        ),
    ))
}

fn picture_rmp_invalidate(c: &super::Counterexample) -> Option<String> {
    let (start, end) = (c.input["start"].as_u64()?, c.input["end"].as_u64()?);
    let more = if end > (start & !511) + 512 {
        " (the range goes on into the next region)"
    } else {
        ""
    };
    Some(super::picture::rmp_region_svg(
        "gmem-invalidate",
        start & !511,
        &c.input["rmp"],
        &c.model["rmp"],
        c.c.get("rmp"),
        (start, end),
        &format!("sev_gmem_invalidate(pfns [{start:#x}, {end:#x})){more}"),
    ))
}

/// Compares events, warnings and the final table.
///
/// Most cases make no RMP operation on either side. Then the events agree,
/// and so do the tables: the model writes its table only by the operations
/// it records, the C wrote no entry. Only the WARN counts are left, and
/// this much is inlined in every case; the rest is [`compare_all`].
#[inline]
fn compare(
    scratch: &mut Scratch,
    state: &abi::gmf_rmp_state,
    t: &HookTrace,
    after: &Rmp,
    why: &mut Vec<String>,
) {
    let o = &scratch.out;
    let quiet = o.overflow == 0
        && o.nevents == 0
        && t.events.is_empty()
        && o.rmp_lo == o.rmp_hi
        && o.rmp_hi <= PFNS;
    if quiet {
        warnings_differ(o, t, why);
    } else {
        compare_all(scratch, state, t, after, why);
    }
}

/// [`compare`] in full: events, warnings, then the table's entries.
#[inline(never)]
fn compare_all(
    scratch: &mut Scratch,
    state: &abi::gmf_rmp_state,
    t: &HookTrace,
    after: &Rmp,
    why: &mut Vec<String>,
) {
    events_differ(&scratch.out, t, why);
    warnings_differ(&scratch.out, t, why);
    if let Some(d) =
        scratch.model_table_differs(state, after, t.events.iter().map(|e| &e.op), Fields::All)
    {
        why.push(d);
    }
}

fn warnings_differ(o: &abi::gmf_rmp_out, t: &HookTrace, why: &mut Vec<String>) {
    if o.warnings != t.warnings {
        why.push(format!("WARNs: C {}, model {}", o.warnings, t.warnings));
    }
}

/// The first RMP operation the C and the model made differently, or the
/// C's overflow of the harness's record.
fn events_differ(o: &abi::gmf_rmp_out, t: &HookTrace, why: &mut Vec<String>) {
    let c_events = &o.events[..(o.nevents as usize).min(o.events.len())];
    if o.overflow != 0 {
        why.push("the C made more RMP operations than the harness records".into());
    } else if c_events.len() != t.events.len()
        || c_events
            .iter()
            .zip(&t.events)
            .any(|(c, m)| c_event_tuple(c) != event_tuple(m))
    {
        let i = c_events
            .iter()
            .zip(&t.events)
            .position(|(c, m)| c_event_tuple(c) != event_tuple(m))
            .unwrap_or(c_events.len().min(t.events.len()));
        why.push(format!(
            "RMP operation {i}: C {:?}, model {:?} (op, pfn, gpa, level, asid, mmu_lock, ret)",
            c_events.get(i).map(c_event_tuple),
            t.events.get(i).map(event_tuple)
        ));
    }
}

/// The model's and the C's answers to one `prepare` case: the model's
/// table after, its trace and return values; the C's in `scratch.out`.
fn check_prepare(
    lib: &Library,
    scratch: &mut Scratch,
    input: &mut abi::gmf_prepare_in,
    q: &PrepareQuery,
    m: &mut Model,
) -> Option<(String, Value)> {
    prepare_input(q, input)?;
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.prepare)(input, &mut *scratch.out) };
    // A tree whose MMU asks the level only after a successful prepare (SNP
    // v10-v11) says when it did not: the model does not ask either, so
    // neither its answer nor its lookup's WARNs are compared.
    let asked = scratch.out.max_level != abi::GMF_LEVEL_NOT_ASKED;
    let (ret, max_level) = prepare_model(q, m, asked);
    let o = &scratch.out;
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_prepare returned {r}"));
    }
    if o.ret != ret {
        why.push(format!(
            "sev_gmem_prepare() returned {}, model {ret}",
            o.ret
        ));
    }
    if o.max_level != max_level {
        why.push(format!(
            "max mapping level after: C {}, model {max_level}",
            o.max_level
        ));
    }
    compare(scratch, &input.rmp, &m.t, &m.rmp, &mut why);
    (!why.is_empty()).then(|| (why.join("; "), c_json(&input.rmp, &scratch.out)))
}

fn check_rmp_invalidate(
    lib: &Library,
    scratch: &mut Scratch,
    input: &mut abi::gmf_rmp_invalidate_in,
    q: &RmpInvalidateQuery,
    m: &mut Model,
) -> Option<(String, Value)> {
    rmp_invalidate_input(q, input)?;
    // SAFETY: valid pointers for the call.
    let r = unsafe { (lib.rmp_invalidate)(input, &mut *scratch.out) };
    rmp_invalidate_model(q, m);
    let mut why = Vec::new();
    if r != 0 {
        why.push(format!("gmf_rmp_invalidate returned {r}"));
    }
    compare(scratch, &input.rmp, &m.t, &m.rmp, &mut why);
    (!why.is_empty()).then(|| (why.join("; "), c_json(&input.rmp, &scratch.out)))
}

/// The exhaustive bound's 2M region (pfns 512..1024, the table's second).
pub const REGION: u64 = 512;
/// Its probe pages: the head and the two after it (a 2M decision happens
/// only at an aligned pfn; the next two are unaligned, one of them the
/// neighbour of an unaligned pfn), one in the middle, and the last three
/// (where a walk over the region ends).
pub const PROBES: [u64; 7] = [512, 513, 514, 768, 1021, 1022, 1023];
/// What a probe page holds: shared, assigned, assigned and validated,
/// assigned and immutable (firmware's).
const PAGE_STATES: u32 = 4;
/// Table sizes: the whole table, one ending with the region (the next
/// region's pfns WARN), one ending inside it (a 2M update cannot fit).
pub const MAX_PFNS: [u64; 3] = [PFNS, 2 * REGION, 2 * REGION - 1];

fn page(pfn: u64, npages: u64, state: u32) -> RmpRun {
    RmpRun {
        pfn,
        npages,
        size: PageSize::K4,
        asid: 7,
        gpa: (pfn + 0x40000) << 12,
        immutable: state == 3,
        validated: state == 2,
    }
}

/// Every region state of the bound, as runs in pfn order:
///
/// - the seven probe pages each in one of the four page states over a
///   shared region (16384 states);
/// - the region assigned 4K (as a PSMASHed 2M entry leaves it) with each
///   probe either a hole or immutable (128 states);
/// - one 2M entry, plain, validated or immutable (3 states).
pub fn region_states() -> Vec<Vec<RmpRun>> {
    let mut states = Vec::new();
    for code in 0..PAGE_STATES.pow(PROBES.len() as u32) {
        let mut runs = Vec::new();
        let mut c = code;
        for &p in &PROBES {
            if c % PAGE_STATES != 0 {
                runs.push(page(p, 1, c % PAGE_STATES));
            }
            c /= PAGE_STATES;
        }
        states.push(runs);
    }
    for mask in 0u32..(1 << PROBES.len()) {
        let mut runs = Vec::new();
        let mut next = REGION;
        for (i, &p) in PROBES.iter().enumerate() {
            if p > next {
                runs.push(page(next, p - next, 1));
            }
            if mask & (1 << i) != 0 {
                runs.push(page(p, 1, 3));
            }
            next = p + 1;
        }
        if next < 2 * REGION {
            runs.push(page(next, 2 * REGION - next, 1));
        }
        states.push(runs);
    }
    for state in [1, 2, 3] {
        states.push(vec![RmpRun {
            npages: 512,
            size: PageSize::M2,
            ..page(REGION, 1, state)
        }]);
    }
    states
}

/// Whether every run of a state ends within a table of `max_pfn` pfns
/// (the bound never generates a state its table size makes impossible).
pub fn within(runs: &[RmpRun], max_pfn: u64) -> bool {
    runs.iter().all(|r| r.pfn + r.npages <= max_pfn)
}

/// `prepare`'s pfns: every probe page and one interior page that is not.
pub const PREPARE_PFNS: [u64; 8] = [512, 513, 514, 600, 768, 1021, 1022, 1023];
/// Folio orders: 4K, the two sides of `order >= PMD_ORDER`, and above.
pub const PREPARE_ORDERS: [i32; 4] = [0, 8, 9, 10];

/// `prepare`: every region state × pfn × folio order × gfn (2M-aligned
/// with the pfn, or not) × table size (whole, or ending inside the
/// region), for an SNP guest on an SNP host; then the early returns (no SNP
/// guest, no host SNP) over the shared region, each 2M state and one
/// state of every probe page assigned.
fn prepare_exhaustive(f: &mut dyn FnMut(&PrepareQuery) -> ControlFlow<()>) {
    let states = region_states();
    let early: Vec<&Vec<RmpRun>> = [0, 1, states.len() - 1]
        .into_iter()
        .map(|i| &states[i])
        .chain(&states[states.len() - 3..])
        .collect();
    let main = states.iter().map(|rmp| (true, true, rmp));
    let early = [(false, true), (true, false)]
        .into_iter()
        .flat_map(|(g, e)| early.iter().map(move |&rmp| (g, e, rmp)));
    let mut q = PrepareQuery {
        snp_guest: true,
        snp_enabled: true,
        asid: 7,
        pfn: 0,
        gfn: 0,
        max_order: 0,
        max_pfn: PFNS,
        rmp: Vec::new(),
    };
    for (snp_guest, snp_enabled, rmp) in main.chain(early) {
        q.snp_guest = snp_guest;
        q.snp_enabled = snp_enabled;
        q.rmp.clone_from(rmp);
        for pfn in PREPARE_PFNS {
            q.pfn = pfn;
            for max_pfn in [PFNS, 2 * REGION - 1]
                .into_iter()
                .filter(|&m| within(rmp, m))
            {
                q.max_pfn = max_pfn;
                for max_order in PREPARE_ORDERS {
                    q.max_order = max_order;
                    for gfn_off in [0u64, 3] {
                        q.gfn = 0x1000 + pfn - REGION + gfn_off;
                        if f(&q).is_break() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// `gmem-invalidate`'s ranges: every `[start, end)` within the points
/// around the region's head, its middle and its tail, and the walks over
/// the region from its head (aligned: a 2M update is possible) or the pfn
/// after, to the pfn before its end (a 2M update is not), its end, or past
/// it into the next region.
pub fn invalidate_ranges() -> Vec<(u64, u64)> {
    let clusters: [&[u64]; 3] = [
        &[511, 512, 513, 514, 515],
        &[767, 768, 769],
        &[1021, 1022, 1023, 1024, 1025],
    ];
    let mut out = Vec::new();
    for c in clusters {
        for (i, &start) in c.iter().enumerate() {
            out.extend(c[i + 1..].iter().map(|&end| (start, end)));
        }
    }
    for start in [512, 513] {
        out.extend([1023, 1024, 1536].map(|end| (start, end)));
    }
    out
}

/// `gmem-invalidate`: every region state × every range of
/// [`invalidate_ranges`] × table size, one case at a time, in place.
fn rmp_invalidate_exhaustive(f: &mut dyn FnMut(&RmpInvalidateQuery) -> ControlFlow<()>) {
    let ranges = invalidate_ranges();
    let mut q = RmpInvalidateQuery {
        snp_enabled: true,
        start: 0,
        end: 0,
        max_pfn: PFNS,
        rmp: Vec::new(),
    };
    for rmp in region_states() {
        for max_pfn in MAX_PFNS.into_iter().filter(|&m| within(&rmp, m)) {
            q.max_pfn = max_pfn;
            q.rmp.clone_from(&rmp);
            for &(start, end) in &ranges {
                q.start = start;
                q.end = end;
                if f(&q).is_break() {
                    return;
                }
            }
        }
    }
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
    cases_of(source, vectors, "prepare", std::iter::empty, random_prepare)
}

fn rmp_invalidate_cases(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Box<dyn Iterator<Item = RmpInvalidateQuery>> {
    cases_of(
        source,
        vectors,
        "gmem-invalidate",
        std::iter::empty,
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
    // A lone 4K run moves nearer the pfn prepared (the first pfn of its
    // 2M region other than it, or one lower): what matters is that it is
    // in the region, not where.
    let head = q.pfn & !511;
    for (i, r) in q.rmp.iter().enumerate() {
        if r.npages != 1 || r.size != PageSize::K4 {
            continue;
        }
        let first = if head == q.pfn { head + 1 } else { head };
        for pfn in [first, r.pfn.wrapping_sub(1)] {
            if pfn < r.pfn && pfn >= head && pfn != q.pfn {
                let mut c = q.clone();
                c.rmp[i].pfn = pfn;
                out.push(c);
            }
        }
    }
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

/// `f` given a `prepare` case as `check` runs it.
fn with_prepare_ops<R>(lib: &Library, f: impl FnOnce(&CaseOps<'_, PrepareQuery>) -> R) -> R {
    let scratch = RefCell::new(Scratch::default());
    let input: RefCell<Box<abi::gmf_prepare_in>> = RefCell::default();
    let model = RefCell::new(Model::default());
    f(&CaseOps {
        other_profile: None,
        // The model's table, loaded once (as for gmem-invalidate).
        applicable: &|q| model.borrow_mut().load(q.snp_enabled, q.max_pfn, &q.rmp),
        check: &|q| {
            check_prepare(
                lib,
                &mut scratch.borrow_mut(),
                &mut input.borrow_mut(),
                q,
                &mut model.borrow_mut(),
            )
        },
        candidates: &prepare_candidates,
        model_json: &|q| prepare(q).map(|a| to_json(&a)).unwrap_or(Value::Null),
    })
}

fn run_prepare(ctx: &Ctx<'_>, source: Source) -> Outcome {
    with_prepare_ops(ctx.lib, |ops| match source {
        Source::Exhaustive => run_visit(ctx, prepare_exhaustive, ops),
        _ => run_cases(ctx, prepare_cases(source, ctx.vectors), ops),
    })
}

/// `f` given a `gmem-invalidate` case as `check` runs it.
fn with_rmp_invalidate_ops<R>(
    lib: &Library,
    f: impl FnOnce(&CaseOps<'_, RmpInvalidateQuery>) -> R,
) -> R {
    let scratch = RefCell::new(Scratch::default());
    let input: RefCell<Box<abi::gmf_rmp_invalidate_in>> = RefCell::default();
    let model = RefCell::new(Model::default());
    f(&CaseOps {
        other_profile: None,
        // The model's table, loaded once: `applicable` needs it to know
        // the model accepts the case, `check` (always called next, on
        // the same case) runs the hook on it.
        applicable: &|q| rmp_invalidate_accepted(q, &mut model.borrow_mut()),
        check: &|q| {
            check_rmp_invalidate(
                lib,
                &mut scratch.borrow_mut(),
                &mut input.borrow_mut(),
                q,
                &mut model.borrow_mut(),
            )
        },
        candidates: &rmp_invalidate_candidates,
        model_json: &|q| {
            rmp_invalidate(q)
                .map(|a| to_json(&a))
                .unwrap_or(Value::Null)
        },
    })
}

/// Whether the harness can express a `gmem-invalidate` case and the
/// model accepts its table, which it loads into `m`.
fn rmp_invalidate_accepted(q: &RmpInvalidateQuery, m: &mut Model) -> bool {
    q.end.saturating_sub(q.start) <= MAX_RMP_INVALIDATE_PFNS
        && m.load(q.snp_enabled, q.max_pfn, &q.rmp)
}

fn run_rmp_invalidate(ctx: &Ctx<'_>, source: Source) -> Outcome {
    with_rmp_invalidate_ops(ctx.lib, |ops| match source {
        Source::Exhaustive => run_visit(ctx, rmp_invalidate_exhaustive, ops),
        _ => run_cases(ctx, rmp_invalidate_cases(source, ctx.vectors), ops),
    })
}

fn prepare_json(
    source: Source,
    index: u64,
    _p: Profile,
    _lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    match source {
        Source::Exhaustive => nth_visited(prepare_exhaustive, index).map(|q| to_json(&q)),
        _ => nth_case_json(prepare_cases(source, vectors), index),
    }
}

fn rmp_invalidate_json(
    source: Source,
    index: u64,
    _p: Profile,
    _lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    match source {
        Source::Exhaustive => nth_visited(rmp_invalidate_exhaustive, index).map(|q| to_json(&q)),
        _ => nth_case_json(rmp_invalidate_cases(source, vectors), index),
    }
}

/// `prepare`'s exhaustive cases timed apart (the bench).
pub fn split_prepare(lib: &Library) -> Split {
    let mut out: Box<abi::gmf_rmp_out> = Box::default();
    let mut input: Box<abi::gmf_prepare_in> = Box::default();
    let model = RefCell::new(Model::default());
    let accepted = |q: &PrepareQuery| model.borrow_mut().load(q.snp_enabled, q.max_pfn, &q.rmp);
    let mut c = |q: &PrepareQuery| {
        if prepare_input(q, &mut input).is_some() {
            // SAFETY: valid pointers for the call.
            unsafe { (lib.prepare)(&*input, &mut *out) };
        }
        std::hint::black_box(&out);
    };
    // The model as `check` runs it: its table loaded, then the hook.
    let mut split = time_split_visit(prepare_exhaustive, accepted, &mut c, |q| {
        let m = &mut *model.borrow_mut();
        m.load(q.snp_enabled, q.max_pfn, &q.rmp);
        std::hint::black_box(prepare_model(q, m, true));
    });
    split.interleaved = Some(with_prepare_ops(lib, |ops| {
        time_interleaved(prepare_exhaustive, accepted, c, ops)
    }));
    split
}

/// `gmem-invalidate`'s exhaustive cases timed apart (the bench).
pub fn split_rmp_invalidate(lib: &Library) -> Split {
    let mut out: Box<abi::gmf_rmp_out> = Box::default();
    let mut input: Box<abi::gmf_rmp_invalidate_in> = Box::default();
    let model = RefCell::new(Model::default());
    let accepted = |q: &RmpInvalidateQuery| rmp_invalidate_accepted(q, &mut model.borrow_mut());
    let mut c = |q: &RmpInvalidateQuery| {
        if rmp_invalidate_input(q, &mut input).is_some() {
            // SAFETY: valid pointers for the call.
            unsafe { (lib.rmp_invalidate)(&*input, &mut *out) };
        }
        std::hint::black_box(&out);
    };
    // The model as `check` runs it: its table loaded, then the hook.
    let mut split = time_split_visit(rmp_invalidate_exhaustive, accepted, &mut c, |q| {
        let m = &mut *model.borrow_mut();
        m.load(q.snp_enabled, q.max_pfn, &q.rmp);
        rmp_invalidate_model(q, m);
        std::hint::black_box(&m.t);
    });
    split.interleaved = Some(with_rmp_invalidate_ops(lib, |ops| {
        time_interleaved(rmp_invalidate_exhaustive, accepted, c, ops)
    }));
    split
}

/// The model's side of a case, reused from case to case: the table
/// (loaded by the case's applicability test, then changed by the hooks)
/// and the trace, so a vector allocates nothing.
#[derive(Default)]
pub struct Model {
    rmp: Rmp,
    t: HookTrace,
    loader: RmpLoader,
    /// [`fits`] of the loader's input, and the loader's input count it
    /// was worked out at: the exhaustive bounds hold one state for dozens
    /// of cases, and each would walk its runs again.
    fits: (u64, bool),
}

impl Model {
    /// Loads the case's table: whether the model accepts it and the
    /// harness can express it.
    fn load(&mut self, snp_enabled: bool, max_pfn: u64, runs: &[RmpRun]) -> bool {
        let ok = self
            .loader
            .load(&mut self.rmp, snp_enabled, max_pfn, runs)
            .is_ok();
        if self.fits.0 != self.loader.inputs() {
            self.fits = (self.loader.inputs(), fits(max_pfn, runs));
        }
        ok && self.fits.1
    }

    fn clear_trace(&mut self) {
        self.t.events.clear();
        self.t.warnings = 0;
    }
}

/// The harness input of a `prepare` case; `None` when its state does not
/// fit the harness.
fn prepare_input(q: &PrepareQuery, input: &mut abi::gmf_prepare_in) -> Option<()> {
    input.snp_guest = u8::from(q.snp_guest);
    input.asid = q.asid;
    input.pfn = q.pfn;
    input.gfn = q.gfn;
    input.max_order = q.max_order;
    runs_state(q.snp_enabled, q.max_pfn, &q.rmp, &mut input.rmp)
}

/// The harness input of a `gmem-invalidate` case; `None` when its state
/// does not fit the harness.
fn rmp_invalidate_input(
    q: &RmpInvalidateQuery,
    input: &mut abi::gmf_rmp_invalidate_in,
) -> Option<()> {
    input.start = q.start;
    input.end = q.end;
    runs_state(q.snp_enabled, q.max_pfn, &q.rmp, &mut input.rmp)
}

/// The model's side of a `gmem-invalidate` case, on the table `m` holds.
fn rmp_invalidate_model(q: &RmpInvalidateQuery, m: &mut Model) {
    m.clear_trace();
    sev_gmem_invalidate(&mut m.rmp, q.start, q.end, false, &mut m.t);
}

/// The model's side of one `prepare` case on the loaded table: the
/// hook's return and the max level after (`GMF_LEVEL_NOT_ASKED` unless
/// `ask_level`).
fn prepare_model(q: &PrepareQuery, m: &mut Model, ask_level: bool) -> (i32, i32) {
    m.clear_trace();
    let ret = sev_gmem_prepare(
        &mut m.rmp,
        q.snp_guest,
        q.asid,
        q.pfn,
        q.gfn,
        q.max_order,
        false,
        &mut m.t,
    );
    let max_level = if ask_level {
        sev_private_max_mapping_level(&m.rmp, q.snp_guest, q.pfn, &mut m.t)
    } else {
        abi::GMF_LEVEL_NOT_ASKED
    };
    (ret, max_level)
}

/// A harness state straight from (valid) input runs; `None` when there are
/// more runs than the harness holds.
pub fn runs_state(
    snp_enabled: bool,
    max_pfn: u64,
    runs: &[RmpRun],
    s: &mut abi::gmf_rmp_state,
) -> Option<()> {
    if runs.len() > s.runs.len() {
        return None;
    }
    s.snp_enabled = u8::from(snp_enabled);
    s.max_pfn = max_pfn;
    s.nruns = 0;
    for (d, r) in s.runs.iter_mut().zip(runs) {
        *d = abi::gmf_rmp_run {
            pfn: r.pfn,
            npages: if r.size == PageSize::M2 {
                512
            } else {
                r.npages
            },
            gpa: r.gpa,
            asid: r.asid,
            pagesize: u8::from(r.size == PageSize::M2),
            immutable: u8::from(r.immutable),
            validated: u8::from(r.validated),
        };
        s.nruns += 1;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(runs: &[RmpRun]) -> Box<abi::gmf_rmp_state> {
        let mut s: Box<abi::gmf_rmp_state> = Box::default();
        runs_state(true, PFNS, runs, &mut s).expect("fits");
        s
    }

    #[test]
    fn pfn_sets_add_spans_word_by_word_as_bit_by_bit() {
        for (lo, hi) in [
            (0, 0),
            (0, 1),
            (3, 64),
            (63, 65),
            (64, 128),
            (5, 700),
            (512, 1024),
            (2000, 4000),
        ] {
            let mut p = Pfns::default();
            p.add((lo, hi));
            for pfn in 0..PFNS + 64 {
                assert_eq!(
                    p.has(pfn),
                    pfn >= lo && pfn < hi.min(PFNS),
                    "[{lo}, {hi}) at {pfn}"
                );
            }
            let words = (lo / 64) as usize..hi.min(PFNS).div_ceil(64) as usize;
            assert_eq!(p.span(), if lo < hi.min(PFNS) { words } else { 0..0 });
        }
        // Two spans far apart: the words from the first's to the second's.
        let mut p = Pfns::default();
        p.add((700, 701));
        p.add((100, 130));
        assert_eq!(p.span(), 1..11);
        assert!(p.has(100) && p.has(129) && p.has(700) && !p.has(130));
        // Cleared, it is empty and takes a set again as a fresh one does.
        p.clear();
        assert_eq!(p, Pfns::default());
        p.add((600, 601));
        let mut fresh = Pfns::default();
        fresh.add((600, 601));
        assert_eq!(p, fresh);
    }

    #[test]
    fn a_case_without_rmp_operations_is_still_checked_for_table_writes() {
        // No events on either side, the model's table as loaded: the short
        // path. Each way the C's record can still differ must be reported.
        let runs = [page(600, 1, 1)];
        let s = state(&runs);
        let after = Rmp::from_runs(true, PFNS, &runs).expect("valid");
        let t = HookTrace::default();
        let why = |scratch: &mut Scratch| {
            let mut why = Vec::new();
            compare(scratch, &s, &t, &after, &mut why);
            why.join("; ")
        };
        let mut scratch = Scratch::default();
        assert_eq!(why(&mut scratch), "");
        // The C wrote pfn 600 shared without recording an operation.
        scratch.out.rmp_lo = 600;
        scratch.out.rmp_hi = 601;
        scratch.out.written[600 / 64] = 1 << (600 % 64);
        assert!(
            why(&mut scratch).contains("pfn 600"),
            "{}",
            why(&mut scratch)
        );
        // It recorded too many operations to hold.
        let mut scratch = Scratch::default();
        scratch.out.overflow = 1;
        assert!(why(&mut scratch).contains("more RMP operations"));
        // It reported an empty span past the table's end.
        let mut scratch = Scratch::default();
        scratch.out.rmp_lo = PFNS + 1;
        scratch.out.rmp_hi = PFNS + 1;
        assert!(why(&mut scratch).contains("outside the table"));
        // Its WARNs differ.
        let mut scratch = Scratch::default();
        scratch.out.warnings = 1;
        assert_eq!(why(&mut scratch), "WARNs: C 1, model 0");
    }

    #[test]
    fn whether_a_state_fits_the_harness_follows_each_new_state() {
        // The model accepts both states; only the first fits the harness.
        let inside = vec![page(600, 1, 1)];
        let outside = vec![page(PFNS, 1, 1)];
        let mut m = Model::default();
        for (runs, max_pfn, fits) in [
            (&inside, PFNS, true),
            (&outside, 2 * PFNS, false),
            (&outside, 2 * PFNS, false),
            (&inside, PFNS, true),
            (&inside, PFNS, true),
            // The same runs in a table too large for the harness.
            (&inside, 2 * PFNS, false),
            (&inside, PFNS, true),
        ] {
            assert_eq!(m.load(true, max_pfn, runs), fits, "{runs:?} of {max_pfn}");
        }
    }

    #[test]
    fn table_compare_walks_a_state_listed_out_of_pfn_order() {
        // Runs given high pfn first: the C loads them so, the model sorts.
        let runs = [page(900, 1, 1), page(600, 2, 2), page(700, 1, 3)];
        let s = state(&runs);
        let before = Rmp::from_runs(true, PFNS, &runs).expect("valid");
        let mut scratch = Scratch::default();
        let mut both = Pfns::default();
        for p in [600, 601, 700, 900] {
            both.add((p, p + 1));
        }
        // Neither wrote anything the other did not: every pfn agrees.
        scratch.out.rmp_lo = 0;
        scratch.out.rmp_hi = 0;
        assert_eq!(scratch.table_differs(&s, &before, &both, Fields::All), None);
        // The model made 700 shared, the C did not: found at 700, the
        // walk having passed 600's run first.
        let mut after = before.clone();
        assert_eq!(after.make_shared(700, 1), 0);
        let d = scratch.table_differs(&s, &after, &both, Fields::All);
        assert!(d.as_deref().is_some_and(|d| d.contains("pfn 700")), "{d:?}");
        // The C made 700 shared too: they agree again.
        scratch.out.rmp_lo = 700;
        scratch.out.rmp_hi = 701;
        scratch.out.written[700 / 64] = 1 << (700 % 64);
        scratch.out.entries[700] = abi::gmf_rmp_entry::default();
        assert_eq!(scratch.table_differs(&s, &after, &both, Fields::All), None);
    }

    #[test]
    fn table_compare_sees_writes_on_either_side() {
        let runs = [page(600, 2, 2)];
        let s = state(&runs);
        let before = Rmp::from_runs(true, PFNS, &runs).expect("valid");
        let mut scratch = Scratch::default();
        let none = Pfns::default();
        let only = |lo, hi| {
            let mut p = Pfns::default();
            p.add((lo, hi));
            p
        };
        // Nobody wrote: the tables agree.
        scratch.out.rmp_lo = 0;
        scratch.out.rmp_hi = 0;
        assert_eq!(scratch.table_differs(&s, &before, &none, Fields::All), None);
        // The model made pfn 600 shared, the C wrote nothing.
        let mut after = before.clone();
        assert_eq!(after.make_shared(600, 1), 0);
        let d = scratch.table_differs(&s, &after, &only(600, 601), Fields::All);
        assert!(d.as_deref().is_some_and(|d| d.contains("pfn 600")), "{d:?}");
        // The C wrote pfn 601's validated bit away, the model did nothing.
        scratch.out.rmp_lo = 601;
        scratch.out.rmp_hi = 602;
        scratch.out.written = *only(601, 602).words();
        scratch.out.entries[601] = abi::gmf_rmp_entry {
            assigned: 1,
            asid: 7,
            gpa: (601 + 0x40000) << 12,
            ..Default::default()
        };
        let d = scratch.table_differs(&s, &before, &none, Fields::All);
        assert!(d.as_deref().is_some_and(|d| d.contains("pfn 601")), "{d:?}");
        // ... which a state-only comparison (punch-hole's) does not look at.
        assert_eq!(
            scratch.table_differs(&s, &before, &none, Fields::State),
            None
        );
        // A span outside the table is a finding, not a panic.
        scratch.out.rmp_hi = PFNS + 1;
        assert!(
            scratch
                .table_differs(&s, &before, &none, Fields::All)
                .is_some()
        );
    }

    #[test]
    fn table_compare_looks_at_written_pfns_far_apart() {
        // Pfns 512 and 1023 assigned; both sides make both shared. Entries
        // in between are neither written nor copied (left stale here).
        let runs = [page(512, 1, 1), page(1023, 1, 1)];
        let s = state(&runs);
        let mut after = Rmp::from_runs(true, PFNS, &runs).expect("valid");
        assert_eq!(after.make_shared(512, 1), 0);
        assert_eq!(after.make_shared(1023, 1), 0);
        let mut model = Pfns::default();
        model.add((512, 513));
        model.add((1023, 1024));
        let mut scratch = Scratch::default();
        scratch.out.rmp_lo = 512;
        scratch.out.rmp_hi = 1024;
        scratch.out.written = *model.words();
        scratch.out.entries[700].assigned = 1;
        assert_eq!(scratch.table_differs(&s, &after, &model, Fields::All), None);
        // The C left pfn 1023 assigned: found, though 512 agrees.
        scratch.out.entries[1023] = abi::gmf_rmp_entry {
            assigned: 1,
            ..Default::default()
        };
        let d = scratch.table_differs(&s, &after, &model, Fields::All);
        assert!(
            d.as_deref().is_some_and(|d| d.contains("pfn 1023")),
            "{d:?}"
        );
        // A pfn the C wrote and the model did not: compared too.
        scratch.out.entries[1023] = abi::gmf_rmp_entry::default();
        scratch.out.written[700 / 64] |= 1 << (700 % 64);
        let d = scratch.table_differs(&s, &after, &model, Fields::All);
        assert!(d.as_deref().is_some_and(|d| d.contains("pfn 700")), "{d:?}");
    }

    #[test]
    fn the_c_table_shown_holds_only_the_entries_the_c_wrote() {
        // Pfns 512 and 1023 made shared; pfn 700, in their span but not
        // written, holds a stale entry from an earlier vector.
        let runs = [page(512, 1, 1), page(600, 1, 1), page(1023, 1, 1)];
        let s = state(&runs);
        let mut o: Box<abi::gmf_rmp_out> = Box::default();
        o.rmp_lo = 512;
        o.rmp_hi = 1024;
        o.written[512 / 64] |= 1 << (512 % 64);
        o.written[1023 / 64] |= 1 << (1023 % 64);
        o.entries[700].assigned = 1;
        o.entries[600].assigned = 0;
        let shown = c_after_runs(&s, &o);
        let pfns: Vec<u64> = shown
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["pfn"].as_u64().expect("pfn"))
            .collect();
        // 600 as loaded (not written), 700 not at all, 512 and 1023 shared.
        assert_eq!(pfns, [600]);
    }

    #[test]
    fn bound_states_are_valid_and_distinct() {
        let states = region_states();
        assert_eq!(states.len(), 16384 + 128 + 3);
        for runs in &states {
            assert!(Rmp::from_runs(true, PFNS, runs).is_ok(), "{runs:?}");
            assert!(fits(PFNS, runs));
        }
        let tables: std::collections::HashSet<Vec<RmpRun>> = states
            .iter()
            .map(|r| Rmp::from_runs(true, PFNS, r).expect("valid").runs())
            .collect();
        assert_eq!(tables.len(), states.len());
    }
}
