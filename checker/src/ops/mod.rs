//! The registry of checked operations and what they share.
//!
//! Each operation knows how to turn a case into the model's answer and into
//! a harness call, how to compare the two, where its cases come from
//! (the shared JSON vectors, an exhaustive bound, seeded random beyond it)
//! and how to make a failing case smaller. [`OPERATIONS`] lists them all; a
//! test fails if an operation has no vector file or no exhaustive cases.

pub mod bind;
pub mod classify;
pub mod getpfn;
pub mod invalidate;
pub mod picture;
pub mod prefault;
pub mod punch;
pub mod rmp;

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::COp;
use crate::isolate::Progress;
use crate::library::Library;
use gmem_reference::Profile;

/// The most seeded random cases one operation runs (`--random`): a run
/// that asks for more is refused up front rather than left to run for
/// days. Random cases are generated as they are run, never collected.
pub const MAX_RANDOM: u64 = 100_000_000;

/// Where cases come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// `tests/vectors/<op>.json`.
    Vectors,
    /// The exhaustive bound.
    Exhaustive,
    /// `n` seeded random cases beyond the bound.
    Random {
        /// Seed.
        seed: u64,
        /// How many.
        n: u64,
    },
}

/// A case on which C and the model disagree, minimised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The case, in the model's JSON input form.
    pub input: Value,
    /// The model's answer.
    pub model: Value,
    /// What the C did.
    pub c: Value,
    /// The first difference, in words.
    pub why: String,
    /// Why the model answers as it does: the rules that decided, with
    /// their values (`gmem_reference::explain`), computed once the case is
    /// shrunk, never per vector.
    #[serde(default)]
    pub model_why: Vec<String>,
    /// Cases tried while shrinking.
    pub shrink_steps: u32,
}

/// What running one operation's cases found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Outcome {
    /// Cases run through both the C and the model.
    pub vectors: u64,
    /// Cases the C side cannot express (see the operation's notes).
    pub model_only: u64,
    /// Cases that describe another profile's configuration (a 2023-profile
    /// bind, the 2023 configurable fault rule): this C has no such
    /// configuration, so they are neither run nor a gap in the checker.
    #[serde(default)]
    pub other_profile: u64,
    /// The first divergence, shrunk.
    pub counterexample: Option<Counterexample>,
}

/// Everything an operation needs to run cases.
pub struct Ctx<'a> {
    /// The implementation.
    pub lib: &'a Library,
    /// Its profile.
    pub profile: Profile,
    /// Progress word (vector index) for crash attribution.
    pub progress: &'a Progress,
    /// Vector files, by operation name.
    pub vectors: &'a dyn Fn(&str) -> Vec<Value>,
    /// Which of `k` workers this is, and `k`.
    pub shard: (u64, u64),
}

impl Ctx<'_> {
    /// Whether case `i` belongs to this worker.
    #[inline]
    pub fn mine(&self, i: u64) -> bool {
        // A lone worker owns every case without a division per case (a
        // 64-bit divide is tens of cycles; a case can be a few hundred).
        self.shard.1 == 1 || i % self.shard.1 == self.shard.0
    }
}

/// One checked operation.
pub struct Operation {
    /// Name (`invalidate`, ... as in `gmemforge model`).
    pub name: &'static str,
    /// The harness entry point.
    pub cop: COp,
    /// Runs cases from `source`.
    pub run: fn(&Ctx<'_>, Source) -> Outcome,
    /// Recomputes case `index` of `source`, in JSON, to report a crash:
    /// the case as `run` gave it for this profile and this library (whose
    /// shape can choose the contract, as get-pfn's does).
    #[allow(clippy::type_complexity)] // a plain fn pointer over the vector lookup
    pub case_json: fn(Source, u64, Profile, &Library, &dyn Fn(&str) -> Vec<Value>) -> Option<Value>,
    /// The model's reasons for its answer to a case (its JSON input):
    /// what a counterexample shows beside the C's answer.
    pub explain: fn(&Value) -> Vec<String>,
    /// The counterexample as an SVG picture (`--report`), when the
    /// operation draws one for it.
    pub picture: fn(&Counterexample) -> Option<String>,
}

/// The model's explanation of a case given as JSON, or why there is none.
pub fn explain_json<Q: serde::de::DeserializeOwned>(
    input: &Value,
    explain: impl Fn(&Q) -> Vec<String>,
) -> Vec<String> {
    match Q::deserialize(input) {
        Ok(q) => explain(&q),
        Err(_) if input.is_null() => Vec::new(),
        Err(e) => vec![format!("(no explanation: the input does not parse: {e})")],
    }
}

/// Every checked operation.
pub const OPERATIONS: &[Operation] = &[
    invalidate::OPERATION,
    classify::OPERATION,
    rmp::PREPARE,
    rmp::RMP_INVALIDATE,
    prefault::OPERATION,
    bind::OPERATION,
    punch::OPERATION,
    getpfn::OPERATION,
];

/// SplitMix64: the seeded generator behind every random source.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A coin.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A u64 biased towards edges: 0, 1, page and 2M boundaries, 2^32,
    /// 2^63, 2^64 - 1 and their neighbours.
    pub fn edgy(&mut self) -> u64 {
        const EDGES: [u64; 12] = [
            0,
            1,
            2,
            511,
            512,
            4095,
            4096,
            1 << 32,
            1 << 52,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        match self.next_u64() % 4 {
            0 => EDGES[self.below(EDGES.len() as u64) as usize],
            1 => EDGES[self.below(EDGES.len() as u64) as usize]
                .wrapping_add(self.below(9))
                .wrapping_sub(4),
            2 => self.below(64),
            _ => self.next_u64(),
        }
    }
}

/// Candidates tried at most while shrinking one counterexample; a
/// counterexample whose `shrink_steps` is above it stopped at the limit.
pub const SHRINK_LIMIT: u32 = 10_000;

/// Greedy shrinking: repeatedly take the first smaller candidate that still
/// diverges, until none does. `fails` returns the divergence for a case.
///
/// A candidate is taken only if it fails the same way (see
/// [`failure_kind`]): shrinking a skipped zap must not end at some other,
/// smaller divergence the same C also has.
pub fn shrink<C: Clone>(
    mut case: C,
    mut div: (String, Value),
    candidates: impl Fn(&C) -> Vec<C>,
    fails: impl Fn(&C) -> Option<(String, Value)>,
) -> (C, (String, Value), u32) {
    let kind = failure_kind(&div.0);
    let mut steps = 0;
    'outer: loop {
        for cand in candidates(&case) {
            steps += 1;
            if steps > SHRINK_LIMIT {
                // `steps` stays SHRINK_LIMIT + 1: the report says the
                // limit was hit, not that this is minimal.
                break 'outer;
            }
            if let Some(d) = fails(&cand)
                && failure_kind(&d.0) == kind
            {
                case = cand;
                div = d;
                continue 'outer;
            }
        }
        break;
    }
    (case, div, steps)
}

/// What kind of divergence an explanation describes: its first two words,
/// numbers left out ("zap 0: C slot 1 ..." and "zap 3: C slot 0 ..." are
/// one kind; "kvm_mmu_invalidate_begin/end called 1/0 times" another).
pub fn failure_kind(why: &str) -> String {
    why.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect()
}

/// Candidates that move a number towards zero (0, halves, minus one).
pub fn smaller_numbers(v: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if v != 0 {
        out.push(0);
    }
    if v > 1 {
        out.push(v / 2);
        out.push(v - 1);
    }
    out
}

/// How one operation plugs into [`run_cases`].
pub struct CaseOps<'a, Q> {
    /// Whether the case belongs to another profile than the C's (counted
    /// in [`Outcome::other_profile`], asked before `applicable`); `None`:
    /// every case is the C's profile's.
    pub other_profile: Option<&'a dyn Fn(&Q) -> bool>,
    /// Whether the C side can express the case (else it is model-only).
    pub applicable: &'a dyn Fn(&Q) -> bool,
    /// Runs the C and the model; the first difference and the C's result.
    pub check: &'a dyn Fn(&Q) -> Option<(String, Value)>,
    /// Smaller cases for shrinking.
    pub candidates: &'a dyn Fn(&Q) -> Vec<Q>,
    /// The model's answer as JSON.
    pub model_json: &'a dyn Fn(&Q) -> Value,
}

/// The common loop: progress, sharding, first divergence, shrinking.
pub fn run_cases<Q: Clone + Serialize>(
    ctx: &Ctx<'_>,
    cases: impl Iterator<Item = Q>,
    ops: &CaseOps<'_, Q>,
) -> Outcome {
    let mut r = CaseRunner::new(ctx, ops);
    for q in cases {
        if r.case(&q).is_break() {
            break;
        }
    }
    r.outcome
}

/// [`run_cases`] over cases a visitor makes one at a time in place
/// ([`Visit`]): an exhaustive bound of millions of cases then allocates
/// nothing per case.
pub fn run_visit<Q: Clone + Serialize>(
    ctx: &Ctx<'_>,
    visit: impl FnOnce(&mut dyn FnMut(&Q) -> ControlFlow<()>),
    ops: &CaseOps<'_, Q>,
) -> Outcome {
    let mut r = CaseRunner::new(ctx, ops);
    visit(&mut |q| r.case(q));
    r.outcome
}

/// A generator of cases that hands each one to `f` by reference (it may
/// be the same value, changed in place) until `f` breaks.
pub type Visit<Q> = fn(&mut dyn FnMut(&Q) -> ControlFlow<()>);

/// Case `index` of a visitor's sequence (what a crash report shows).
pub fn nth_visited<Q: Clone>(visit: Visit<Q>, index: u64) -> Option<Q> {
    let (mut k, mut found) = (0u64, None);
    visit(&mut |q| {
        if k == index {
            found = Some(q.clone());
            return ControlFlow::Break(());
        }
        k += 1;
        ControlFlow::Continue(())
    });
    found
}

/// [`run_cases`]' state: the case count, the outcome so far.
struct CaseRunner<'a, 'c, Q> {
    ctx: &'a Ctx<'c>,
    ops: &'a CaseOps<'a, Q>,
    i: u64,
    outcome: Outcome,
}

impl<'a, 'c, Q: Clone + Serialize> CaseRunner<'a, 'c, Q> {
    fn new(ctx: &'a Ctx<'c>, ops: &'a CaseOps<'a, Q>) -> Self {
        CaseRunner {
            ctx,
            ops,
            i: 0,
            outcome: Outcome::default(),
        }
    }

    /// One case; `Break` at the first divergence (shrunk by then).
    fn case(&mut self, q: &Q) -> ControlFlow<()> {
        let (ctx, ops) = (self.ctx, self.ops);
        let i = self.i;
        self.i += 1;
        if !ctx.mine(i) {
            return ControlFlow::Continue(());
        }
        if ops.other_profile.is_some_and(|f| f(q)) {
            self.outcome.other_profile += 1;
            return ControlFlow::Continue(());
        }
        if !(ops.applicable)(q) {
            self.outcome.model_only += 1;
            return ControlFlow::Continue(());
        }
        ctx.progress.at(i);
        self.outcome.vectors += 1;
        let Some(d) = (ops.check)(q) else {
            return ControlFlow::Continue(());
        };
        let keep = |c: &Q| (ops.applicable)(c).then(|| (ops.check)(c)).flatten();
        let (q, (why, c), steps) = shrink(q.clone(), d, ops.candidates, keep);
        self.outcome.counterexample = Some(Counterexample {
            input: serde_json::to_value(&q).unwrap_or(Value::Null),
            model: (ops.model_json)(&q),
            c,
            why,
            model_why: Vec::new(),
            shrink_steps: steps,
        });
        ControlFlow::Break(())
    }
}

/// The cases of `source` for one operation: the `input`s of its vector
/// file, its exhaustive bound, or `n` seeded random cases.
pub fn cases_of<Q, I>(
    source: Source,
    vectors: &dyn Fn(&str) -> Vec<Value>,
    name: &str,
    exhaustive: impl FnOnce() -> I,
    random: fn(&mut Rng) -> Q,
) -> Box<dyn Iterator<Item = Q>>
where
    Q: serde::de::DeserializeOwned + 'static,
    I: Iterator<Item = Q> + 'static,
{
    match source {
        Source::Vectors => Box::new(vector_inputs::<Q>(vectors, name).into_iter()),
        Source::Exhaustive => Box::new(exhaustive()),
        Source::Random { seed, n } => {
            let mut rng = Rng(seed);
            Box::new((0..n).map(move |_| random(&mut rng)))
        }
    }
}

/// Case `index` of a case sequence, as JSON: what a crash report shows.
pub fn nth_case_json<Q: Serialize>(
    mut cases: Box<dyn Iterator<Item = Q>>,
    index: u64,
) -> Option<Value> {
    cases.nth(index as usize).map(|q| to_json(&q))
}

/// The `input`s of an operation's vector file that parse as `Q`.
pub fn vector_inputs<Q: serde::de::DeserializeOwned>(
    vectors: &dyn Fn(&str) -> Vec<Value>,
    op: &str,
) -> Vec<Q> {
    vectors(op)
        .into_iter()
        .filter_map(|v| serde_json::from_value(v["input"].clone()).ok())
        .collect()
}

/// Serialises a model answer (plain data: cannot fail).
pub fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// One operation's cases run through the C alone and through the model
/// alone: what the bench sets the differential rate against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Split {
    /// Cases timed (the applicable ones).
    pub cases: u64,
    /// C calls per CPU second, harness input included.
    pub c_rate: f64,
    /// Model answers per CPU second.
    pub model_rate: f64,
    /// The differential path and the C alone timed interleaved
    /// ([`time_interleaved`]), per CPU second; `None` where the operation
    /// does not measure it.
    pub interleaved: Option<(f64, f64)>,
}

/// The differential path and the C alone over the same cases, timed in
/// alternating blocks of 1024 cases: two visits, the second with the
/// blocks' roles swapped, so each case runs once each way, and a machine
/// that slows for a while (a neighbour on the core) slows both alike:
/// their ratio is the code's. The differential side is a case as `check`
/// runs it (other profile, applicability with the model, then the C and
/// the comparison), in this process: the fork around a worker costs
/// nothing per case. A divergence panics (the bench runs conforming C).
/// Returns (differential, C alone) cases per CPU second.
pub fn time_interleaved<Q>(
    visit: Visit<Q>,
    c_applicable: impl Fn(&Q) -> bool,
    mut c: impl FnMut(&Q),
    ops: &CaseOps<'_, Q>,
) -> (f64, f64) {
    const BLOCK: u64 = 1024;
    let ok = accepted(visit, c_applicable);
    // [differential, C alone]: CPU seconds and cases.
    let (mut t, mut n) = ([0f64; 2], [0u64; 2]);
    for swap in 0..2u64 {
        let (mut i, mut start) = (0u64, cpu_seconds());
        let mode = |i: u64| ((i / BLOCK + swap) % 2) as usize;
        visit(&mut |q| {
            let m = mode(i);
            if m == 0 {
                if !ops.other_profile.is_some_and(|f| f(q)) && (ops.applicable)(q) {
                    if let Some((why, _)) = (ops.check)(q) {
                        panic!("the C diverges from the model: {why}");
                    }
                    n[0] += 1;
                }
            } else if ok[i as usize] {
                c(q);
                n[1] += 1;
            }
            i += 1;
            if i % BLOCK == 0 {
                let now = cpu_seconds();
                t[m] += now - start;
                start = now;
            }
            ControlFlow::Continue(())
        });
        t[mode(i.saturating_sub(1))] += cpu_seconds() - start;
    }
    (n[0] as f64 / t[0].max(1e-9), n[1] as f64 / t[1].max(1e-9))
}

/// CPU seconds this process and its finished children have used: on a
/// shared machine, time spent waiting for a core is not the code's.
pub fn cpu_seconds() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct it is given.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `who` is a valid selector.
        if unsafe { libc::getrusage(who, &mut r) } == 0 {
            for t in [r.ru_utime, r.ru_stime] {
                total += t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            }
        }
    }
    total
}

/// Times `c` and `model` over the same cases, those `applicable` (the
/// same test `check` applies) accepts. Which those are is found before
/// the timed passes, since the test can be the model's; each pass
/// generates the cases afresh as `check` does, so both rates include
/// that. Rates are per CPU second ([`cpu_seconds`]).
pub fn time_split<Q>(
    cases: impl Fn() -> Box<dyn Iterator<Item = Q>>,
    applicable: impl Fn(&Q) -> bool,
    mut c: impl FnMut(&Q),
    mut model: impl FnMut(&Q),
) -> Split {
    let ok: Vec<bool> = cases().map(|q| applicable(&q)).collect();
    let rate = |n: u64, t: f64| n as f64 / (cpu_seconds() - t).max(1e-9);
    let timed = |f: &mut dyn FnMut(&Q)| {
        let (t, mut n) = (cpu_seconds(), 0u64);
        for (q, _) in cases().zip(&ok).filter(|(_, ok)| **ok) {
            f(&q);
            n += 1;
        }
        (n, rate(n, t))
    };
    let (n, c_rate) = timed(&mut c);
    let (_, model_rate) = timed(&mut model);
    Split {
        cases: n,
        c_rate,
        model_rate,
        interleaved: None,
    }
}

/// Which of a visitor's cases `applicable` accepts, by index: found
/// before any timing, so that a timed pass pays for generating the cases
/// and for the work it names, not for the test (which can be the model's).
fn accepted<Q>(visit: Visit<Q>, applicable: impl Fn(&Q) -> bool) -> Vec<bool> {
    let mut ok = Vec::new();
    visit(&mut |q| {
        ok.push(applicable(q));
        ControlFlow::Continue(())
    });
    ok
}

/// [`time_split`] over a visitor's cases ([`Visit`]), as `check` runs
/// an exhaustive bound made in place; which cases `applicable` accepts is
/// found before the timed passes ([`accepted`]), so `model` must not
/// count on anything `applicable` did.
pub fn time_split_visit<Q>(
    visit: Visit<Q>,
    applicable: impl Fn(&Q) -> bool,
    mut c: impl FnMut(&Q),
    mut model: impl FnMut(&Q),
) -> Split {
    let ok = accepted(visit, applicable);
    let rate = |n: u64, t: f64| n as f64 / (cpu_seconds() - t).max(1e-9);
    let timed = |f: &mut dyn FnMut(&Q)| {
        let (t, mut i, mut n) = (cpu_seconds(), 0, 0u64);
        visit(&mut |q| {
            if ok[i] {
                f(q);
                n += 1;
            }
            i += 1;
            ControlFlow::Continue(())
        });
        (n, rate(n, t))
    };
    let (n, c_rate) = timed(&mut c);
    let (_, model_rate) = timed(&mut model);
    Split {
        cases: n,
        c_rate,
        model_rate,
        interleaved: None,
    }
}
