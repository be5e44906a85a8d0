//! `invalidate`: kvm_gmem_invalidate_begin() + _end() on a file range.
//!
//! Exhaustive bound: a 16-page file, 0 to 3 bindings at every placement
//! (each binding on its own base gfn), every `[start, end)` inside the file
//! and every `[start, 2^64 - 1)` (the release path). Random: layouts near
//! 2^64 and ranges ending anywhere. The hot loop reuses the C input and the
//! model's bindings across the ranges of one layout, and compares without
//! allocating; only a mismatch builds the JSON of a counterexample.

use super::picture::{self, C_BLUE, MISSING_RED, MODEL_GREEN, u};
use serde_json::{Value, json};
use std::fmt::Write as _;

use super::{Counterexample, Ctx, Operation, Outcome, Rng, Source, shrink, smaller_numbers};
use crate::abi;
use crate::compile::COp;
use crate::library::Library;
use gmem_reference::Profile;
use gmem_reference::invalidate::{Binding, Bindings, invalidate_ranges};
use gmem_reference::ops::InvalidateQuery;

/// The registry entry.
pub const OPERATION: Operation = Operation {
    name: "invalidate",
    cop: COp::Invalidate,
    run,
    case_json,
    explain,
    picture,
};

fn explain(input: &Value) -> Vec<String> {
    super::explain_json(input, gmem_reference::explain::invalidate)
}

/// File size of the exhaustive bound, in pages.
pub const BOUND_PAGES: u64 = 16;
/// Most bindings in one exhaustive layout.
pub const BOUND_BINDINGS: usize = 3;

/// `KVM_FILTER_PRIVATE`.
const KVM_FILTER_PRIVATE: u8 = 1 << 1;

/// Every layout of up to `max` disjoint non-empty bindings in a `pages`-page
/// file, in file order; binding `i` gets base gfn `0x100 * (i + 1)`.
pub fn layouts(pages: u64, max: usize) -> Vec<Vec<Binding>> {
    fn rec(pages: u64, max: usize, from: u64, cur: &mut Vec<Binding>, out: &mut Vec<Vec<Binding>>) {
        out.push(cur.clone());
        if cur.len() == max {
            return;
        }
        for start in from..pages {
            for end in start + 1..=pages {
                let i = cur.len() as u64;
                cur.push(Binding {
                    id: i as u16,
                    base_gfn: 0x100 * (i + 1),
                    npages: end - start,
                    pgoff: start,
                });
                rec(pages, max, end, cur, out);
                cur.pop();
            }
        }
    }
    let mut out = Vec::new();
    rec(pages, max, 0, &mut Vec::new(), &mut out);
    out
}

/// The ranges checked against each exhaustive layout.
pub fn bound_ranges() -> Vec<(u64, u64)> {
    let mut r = Vec::new();
    for start in 0..BOUND_PAGES {
        for end in start + 1..=BOUND_PAGES {
            r.push((start, end));
        }
        r.push((start, u64::MAX));
    }
    r
}

/// The harness input for a layout (the range is set per case).
pub fn c_input(slots: &[Binding]) -> abi::gmf_invalidate_in {
    let mut input = abi::gmf_invalidate_in {
        nbindings: slots.len() as u32,
        ..Default::default()
    };
    for (d, s) in input.bindings.iter_mut().zip(slots) {
        *d = abi::gmf_binding {
            id: s.id,
            base_gfn: s.base_gfn,
            npages: s.npages,
            pgoff: s.pgoff,
        };
    }
    input
}

#[inline]
fn call(lib: &Library, input: &abi::gmf_invalidate_in, out: &mut abi::gmf_invalidate_out) -> i32 {
    // SAFETY: both pointers are valid for the call; the C writes only `out`.
    unsafe { (lib.invalidate)(input, out) }
}

/// Compares the C's record with the model; `None` when they agree.
#[inline]
fn differs(
    profile: Profile,
    bindings: &Bindings,
    start: u64,
    end: u64,
    out: &abi::gmf_invalidate_out,
) -> Option<String> {
    let mut n = 0usize;
    for m in invalidate_ranges(bindings, start, end) {
        if n >= out.nranges as usize {
            return Some(format!(
                "the C skipped slot {}'s zap [{:#x}, {:#x})",
                m.slot, m.start, m.end
            ));
        }
        let c = &out.ranges[n];
        if (c.slot, c.start, c.end) != (m.slot, m.start, m.end) {
            return Some(format!(
                "zap {n}: C slot {} [{:#x}, {:#x}), model slot {} [{:#x}, {:#x})",
                c.slot, c.start, c.end, m.slot, m.start, m.end
            ));
        }
        if c.mmu_lock_held == 0 {
            return Some(format!("zap {n} ran without mmu_lock"));
        }
        if profile == Profile::Upstream && c.attr_filter != KVM_FILTER_PRIVATE {
            return Some(format!(
                "zap {n} has attr_filter {:#x}, not KVM_FILTER_PRIVATE",
                c.attr_filter
            ));
        }
        n += 1;
    }
    if out.overflow != 0 || n != out.nranges as usize {
        return Some(format!(
            "the C zapped {} ranges, the model {n}",
            out.nranges
        ));
    }
    let begin = u32::from(n > 0);
    if out.invalidate_begin != begin || out.invalidate_end != begin {
        return Some(format!(
            "kvm_mmu_invalidate_begin/end called {}/{} times, the model {begin}/{begin}",
            out.invalidate_begin, out.invalidate_end
        ));
    }
    if out.lock_balanced == 0 {
        return Some("KVM_MMU_LOCK left held".into());
    }
    if profile == Profile::GmemSolo2023 && out.range_add as usize != n {
        return Some(format!(
            "kvm_mmu_invalidate_range_add called {} times for {n} zaps",
            out.range_add
        ));
    }
    if out.warnings != 0 {
        return Some(format!("{} WARN(s) fired", out.warnings));
    }
    None
}

fn c_json(out: &abi::gmf_invalidate_out) -> Value {
    let ranges: Vec<Value> = out.ranges[..(out.nranges as usize).min(out.ranges.len())]
        .iter()
        .map(|r| json!({"slot": r.slot, "start": r.start, "end": r.end}))
        .collect();
    json!({
        "ranges": ranges,
        "invalidate_begin": out.invalidate_begin,
        "invalidate_end": out.invalidate_end,
        "warnings": out.warnings,
    })
}

fn model_json(q: &InvalidateQuery) -> Value {
    gmem_reference::ops::invalidate(q)
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

/// Runs one case in full (slow path): the divergence, if any.
fn check_one(lib: &Library, profile: Profile, q: &InvalidateQuery) -> Option<(String, Value)> {
    let bindings = Bindings::new(&q.slots).ok()?;
    if q.start >= q.end || q.slots.len() > abi::GMF_MAX_BINDINGS as usize {
        return None;
    }
    let input = abi::gmf_invalidate_in {
        start: q.start,
        end: q.end,
        ..c_input(bindings.as_slice())
    };
    let mut out = abi::gmf_invalidate_out::default();
    call(lib, &input, &mut out);
    differs(profile, &bindings, q.start, q.end, &out).map(|why| (why, c_json(&out)))
}

fn candidates(q: &InvalidateQuery) -> Vec<InvalidateQuery> {
    let mut out = Vec::new();
    for i in 0..q.slots.len() {
        let mut c = q.clone();
        c.slots.remove(i);
        out.push(c);
    }
    for (i, s) in q.slots.iter().enumerate() {
        for v in smaller_numbers(s.base_gfn) {
            let mut c = q.clone();
            c.slots[i].base_gfn = v;
            out.push(c);
        }
        for v in smaller_numbers(s.npages).into_iter().filter(|&v| v > 0) {
            let mut c = q.clone();
            c.slots[i].npages = v;
            out.push(c);
        }
        for v in smaller_numbers(s.pgoff) {
            let mut c = q.clone();
            c.slots[i].pgoff = v;
            out.push(c);
        }
    }
    for v in smaller_numbers(q.end).into_iter().filter(|&v| v > q.start) {
        out.push(InvalidateQuery {
            end: v,
            ..q.clone()
        });
    }
    for v in smaller_numbers(q.start) {
        out.push(InvalidateQuery {
            start: v,
            ..q.clone()
        });
    }
    out
}

fn counterexample(
    lib: &Library,
    profile: Profile,
    q: InvalidateQuery,
    why: String,
    c: Value,
) -> Counterexample {
    let (q, (why, c), steps) = shrink(q, (why, c), candidates, |q| check_one(lib, profile, q));
    Counterexample {
        model: model_json(&q),
        input: serde_json::to_value(&q).unwrap_or(Value::Null),
        model_why: Vec::new(),
        c,
        why,
        shrink_steps: steps,
    }
}

/// Runs every range of `ranges` against one layout; returns (cases run,
/// first divergence).
fn run_layout(
    ctx: &Ctx<'_>,
    slots: &[Binding],
    ranges: impl Iterator<Item = (u64, u64)>,
    index: &mut u64,
) -> (u64, Option<(InvalidateQuery, String, Value)>) {
    let Ok(bindings) = Bindings::new(slots) else {
        return (0, None);
    };
    let mut input = c_input(bindings.as_slice());
    let mut out = abi::gmf_invalidate_out::default();
    let mut n = 0;
    for (start, end) in ranges {
        let i = *index;
        *index += 1;
        if !ctx.mine(i) || start >= end {
            continue;
        }
        input.start = start;
        input.end = end;
        ctx.progress.at(i);
        call(ctx.lib, &input, &mut out);
        n += 1;
        if let Some(why) = differs(ctx.profile, &bindings, start, end, &out) {
            let q = InvalidateQuery {
                slots: slots.to_vec(),
                start,
                end,
            };
            return (n, Some((q, why, c_json(&out))));
        }
    }
    (n, None)
}

/// Random cases: layouts anywhere in u64 (often near 2^64), ranges near
/// the bindings' edges.
fn random_case(rng: &mut Rng) -> InvalidateQuery {
    let mut slots = Vec::new();
    let mut next = rng.edgy();
    for i in 0..1 + rng.below(4) {
        let limit = if rng.bool() { 8 } else { 1 << 20 };
        let npages = 1 + rng.below(limit);
        let Some(last) = next.checked_add(npages - 1) else {
            break;
        };
        slots.push(Binding {
            id: i as u16,
            base_gfn: rng.edgy(),
            npages,
            pgoff: next,
        });
        match last.checked_add(1 + rng.below(4)) {
            Some(n) => next = n,
            None => break,
        }
    }
    let near = |rng: &mut Rng| match slots.get(rng.below(slots.len() as u64) as usize) {
        Some(s) if rng.below(4) != 0 => s.pgoff.wrapping_add(rng.below(12)).wrapping_sub(3),
        _ => rng.edgy(),
    };
    let (a, b) = (near(rng), near(rng));
    let (start, end) = if a < b {
        (a, b)
    } else if a > b {
        (b, a)
    } else {
        (a, a.saturating_add(1))
    };
    let end = if rng.below(8) == 0 { u64::MAX } else { end };
    InvalidateQuery { slots, start, end }
}

fn vector_cases(vectors: &dyn Fn(&str) -> Vec<Value>) -> Vec<InvalidateQuery> {
    vectors("invalidate")
        .into_iter()
        .filter_map(|v| serde_json::from_value::<InvalidateQuery>(v["input"].clone()).ok())
        .collect()
}

fn run(ctx: &Ctx<'_>, source: Source) -> Outcome {
    let mut outcome = Outcome::default();
    let mut index = 0u64;
    let mut found = None;
    match source {
        Source::Exhaustive => {
            let ranges = bound_ranges();
            for slots in layouts(BOUND_PAGES, BOUND_BINDINGS) {
                let (n, d) = run_layout(ctx, &slots, ranges.iter().copied(), &mut index);
                outcome.vectors += n;
                if d.is_some() {
                    found = d;
                    break;
                }
            }
        }
        Source::Vectors | Source::Random { .. } => {
            // Streamed: `--random` may ask for many millions.
            let cases: Box<dyn Iterator<Item = InvalidateQuery>> = match source {
                Source::Random { seed, n } => {
                    let mut rng = Rng(seed);
                    Box::new((0..n).map(move |_| random_case(&mut rng)))
                }
                _ => Box::new(vector_cases(ctx.vectors).into_iter()),
            };
            for q in cases {
                if Bindings::new(&q.slots).is_err() || q.start >= q.end {
                    // Refused by the model: nothing to run through C.
                    index += 1;
                    outcome.model_only += 1;
                    continue;
                }
                let (n, d) =
                    run_layout(ctx, &q.slots, std::iter::once((q.start, q.end)), &mut index);
                outcome.vectors += n;
                if d.is_some() {
                    found = d;
                    break;
                }
            }
        }
    }
    if let Some((q, why, c)) = found {
        outcome.counterexample = Some(counterexample(ctx.lib, ctx.profile, q, why, c));
    }
    outcome
}

fn case_json(
    source: Source,
    index: u64,
    _profile: Profile,
    _lib: &Library,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Option<Value> {
    let q = match source {
        Source::Exhaustive => {
            let ranges = bound_ranges();
            let per = ranges.len() as u64;
            let layout = layouts(BOUND_PAGES, BOUND_BINDINGS)
                .into_iter()
                .nth((index / per) as usize)?;
            let (start, end) = ranges[(index % per) as usize];
            InvalidateQuery {
                slots: layout,
                start,
                end,
            }
        }
        Source::Random { seed, .. } => {
            let mut rng = Rng(seed);
            (0..=index).map(|_| random_case(&mut rng)).last()?
        }
        Source::Vectors => vector_cases(vectors).into_iter().nth(index as usize)?,
    };
    serde_json::to_value(q).ok()
}

/// The file-page picture of an invalidation counterexample.
pub fn picture(c: &Counterexample) -> Option<String> {
    let slots = c.input["slots"].as_array()?;
    let (start, end) = (u(&c.input["start"]), u(&c.input["end"]));
    // File pages as (slot id → (base_gfn, pgoff, npages)).
    let binding = |id: u64| {
        slots
            .iter()
            .find(|s| u(&s["id"]) == id)
            .map(|s| (u(&s["base_gfn"]), u(&s["pgoff"]), u(&s["npages"])))
    };
    let to_file = |r: &Value| {
        let (base, pgoff, _) = binding(u(&r["slot"]))?;
        Some((
            u(&r["slot"]),
            u(&r["start"]).wrapping_sub(base).wrapping_add(pgoff),
            u(&r["end"]).wrapping_sub(base).wrapping_add(pgoff),
        ))
    };
    let model: Vec<(u64, u64, u64)> = c.model["ranges"]
        .as_array()
        .map(|a| a.iter().filter_map(to_file).collect())
        .unwrap_or_default();
    let cside: Vec<(u64, u64, u64)> = c.c["ranges"]
        .as_array()
        .map(|a| a.iter().filter_map(to_file).collect())
        .unwrap_or_default();
    // The axis spans the bindings and the range (a huge end, like the
    // release path's -1ul, is drawn running off the right edge).
    let lo = slots
        .iter()
        .map(|s| u(&s["pgoff"]))
        .chain([start])
        .min()
        .unwrap_or(0);
    let bind_hi = slots
        .iter()
        .map(|s| u(&s["pgoff"]).saturating_add(u(&s["npages"])))
        .max()
        .unwrap_or(start + 1);
    let hi = bind_hi
        .max(start.saturating_add(1))
        .max(if end - lo <= 4 * (bind_hi - lo + 1) {
            end
        } else {
            0
        })
        .saturating_add(1);
    let span = (hi - lo).max(1) as f64;
    let (x0, w) = (150.0, 720.0);
    let x = |p: u64| x0 + (p.saturating_sub(lo) as f64 / span).min(1.02) * w;
    let mut s = String::new();
    let rows = ["bindings", "invalidated", "model zaps", "C zaps"];
    let height = 40 + rows.len() * 44;
    let _ = write!(s, "{}", picture::open("invalidate", 900, height as u32));
    for (i, r) in rows.iter().enumerate() {
        let y = 30 + i * 44;
        let _ = write!(
            s,
            r##"<text x="8" y="{}">{r}</text><line x1="{x0}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>"##,
            y + 20,
            y + 32,
            x0 + w,
            y + 32
        );
    }
    // File page ticks.
    let mut last_tick = None;
    for t in 0..=8u64 {
        let p = lo + (hi - lo) * t / 8;
        if last_tick == Some(p) {
            continue;
        }
        last_tick = Some(p);
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="18" text-anchor="middle" fill="#666">{p}</text>"##,
            x(p)
        );
    }
    for sl in slots {
        let (id, pgoff, n) = (u(&sl["id"]), u(&sl["pgoff"]), u(&sl["npages"]));
        let (a, b) = (x(pgoff), x(pgoff.saturating_add(n)));
        let _ = write!(
            s,
            r##"<rect x="{a:.1}" y="34" width="{:.1}" height="28" fill="#eee" stroke="#333"/><text x="{:.1}" y="52">slot {id} (gfn {:#x})</text>"##,
            (b - a).max(2.0),
            a + 4.0,
            u(&sl["base_gfn"])
        );
    }
    let (a, b) = (x(start), x(end.min(hi)));
    let tail = if end > hi { " → -1ul" } else { "" };
    let _ = write!(
        s,
        r##"<rect x="{a:.1}" y="78" width="{:.1}" height="28" fill="#fdd49e" stroke="#e6550d"/><text x="{:.1}" y="96">[{start}, {end}){tail}</text>"##,
        (b - a).max(2.0),
        a + 4.0
    );
    let mut draw = |row: usize, zaps: &[(u64, u64, u64)], colour: &str| {
        let y = 30 + row * 44 + 4;
        for &(slot, zs, ze) in zaps {
            let (a, b) = (x(zs), x(ze));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{y}" width="{:.1}" height="28" fill="{colour}" fill-opacity="0.85"/><text x="{:.1}" y="{}" fill="#fff">slot {slot}</text>"##,
                (b - a).max(2.0),
                a + 3.0,
                y + 18
            );
        }
    };
    draw(2, &model, MODEL_GREEN);
    draw(3, &cside, C_BLUE);
    // What the model zaps and the C does not: outlined, labelled.
    for &(slot, zs, ze) in &model {
        if !cside
            .iter()
            .any(|&(cs, a, b)| cs == slot && a == zs && b == ze)
        {
            let (a, b) = (x(zs), x(ze));
            let _ = write!(
                s,
                r##"<rect class="skipped" x="{a:.1}" y="166" width="{:.1}" height="28" fill="{MISSING_RED}" fill-opacity="0.25" stroke="{MISSING_RED}" stroke-width="3" stroke-dasharray="6 3"/><text x="{:.1}" y="184" fill="{MISSING_RED}">slot {slot} skipped</text>"##,
                (b - a).max(2.0),
                a + 3.0
            );
        }
    }
    s.push_str("</svg>");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustive_bound_size() {
        let l = layouts(BOUND_PAGES, BOUND_BINDINGS);
        let total = l.len() * bound_ranges().len();
        assert!(
            total >= 1_000_000,
            "{} layouts x {} ranges = {total}",
            l.len(),
            bound_ranges().len()
        );
        assert!(l.iter().all(|s| Bindings::new(s).is_ok()));
    }
}
