//! `cargo bench -p gmem-checker`: throughput of the differential checker.
//!
//! In one run, on the invalidation operation and its exhaustive bound
//! (a 16-page file, up to 3 bindings at every placement, every range):
//!
//! - the full differential path (C through the harness ABI + model +
//!   comparison), one core, as `check` runs it (forked child);
//! - the C alone (harness calls, no model);
//! - the model alone (no C);
//! - a proptest harness of the same property (generated layouts and ranges,
//!   C versus model), the baseline;
//! - the whole `check --exhaustive` (every operation, both profiles, all
//!   cores), wall time.
//!
//! Figures vary with the machine's load; compare ratios from one run.

use std::hint::black_box;
use std::time::Instant;

use gmem_checker::abi;
use gmem_checker::compile::{CSource, compile};
use gmem_checker::library::Library;
use gmem_checker::ops::invalidate::{BOUND_BINDINGS, BOUND_PAGES, bound_ranges, c_input, layouts};
use gmem_checker::ops::{OPERATIONS, Source};
use gmem_checker::runner::{self, Options, unit_defines, unit_ops};
use gmem_codegen::unit;
use gmem_reference::Profile;
use gmem_reference::invalidate::{Binding, Bindings, invalidate_ranges};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn load() -> Library {
    let u = unit::builtin(Profile::Upstream).expect("builtin");
    let (ops, defines, text) = (unit_ops(&u), unit_defines(&u), u.text());
    let path = compile(&CSource {
        name: &u.name,
        profile: u.profile,
        text: &text,
        ops: &ops,
        defines: &defines,
    })
    .expect("compiles");
    Library::open(&path).expect("loads")
}

/// C and model agree on one case (the property proptest checks).
fn agrees(lib: &Library, b: &Bindings, input: &abi::gmf_invalidate_in) -> bool {
    let mut out = abi::gmf_invalidate_out::default();
    // SAFETY: valid pointers for the call.
    unsafe { (lib.invalidate)(input, &mut out) };
    let mut n = 0;
    for m in invalidate_ranges(b, input.start, input.end) {
        let c = &out.ranges[n];
        if (c.slot, c.start, c.end) != (m.slot, m.start, m.end) {
            return false;
        }
        n += 1;
    }
    n == out.nranges as usize
}

fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    // `cargo test --all-targets` runs benches as tests with no arguments;
    // only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let lib = load();
    let layouts = layouts(BOUND_PAGES, BOUND_BINDINGS);
    let ranges = bound_ranges();
    let cases = (layouts.len() * ranges.len()) as u64;
    println!(
        "exhaustive invalidation bound: {} layouts x {} ranges = {cases} vectors",
        layouts.len(),
        ranges.len()
    );

    // 1. The full differential path, one core, as `check` runs it.
    let op = OPERATIONS
        .iter()
        .find(|o| o.name == "invalidate")
        .expect("registered");
    let t = Instant::now();
    let o = runner::run_operation(
        op,
        &lib,
        Profile::Upstream,
        &[Source::Exhaustive],
        1,
        &|_| Vec::<Value>::new(),
    );
    assert!(o.counterexample.is_none(), "builtin C conforms");
    let differential = rate(o.vectors, t);

    // 2. C alone.
    let t = Instant::now();
    let mut out = abi::gmf_invalidate_out::default();
    for slots in &layouts {
        let mut input = c_input(slots);
        for &(start, end) in &ranges {
            input.start = start;
            input.end = end;
            // SAFETY: valid pointers for the call.
            unsafe { (lib.invalidate)(&input, &mut out) };
            black_box(&out);
        }
    }
    let c_alone = rate(cases, t);

    // 3. Model alone.
    let t = Instant::now();
    let mut zaps = 0u64;
    for slots in &layouts {
        let b = Bindings::new(slots).expect("valid");
        for &(start, end) in &ranges {
            zaps += invalidate_ranges(black_box(&b), start, end)
                .map(|r| r.end ^ r.start)
                .sum::<u64>();
        }
    }
    black_box(zaps);
    let model_alone = rate(cases, t);

    // 4. proptest baseline: the same property on generated cases.
    let n = 200_000u32;
    let strategy = (
        proptest::collection::vec((0u64..6, 1u64..6, 0u64..0x1000), 0..=BOUND_BINDINGS),
        0u64..BOUND_PAGES,
        1u64..=BOUND_PAGES,
    );
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let t = Instant::now();
    runner
        .run(&strategy, |(spec, start, len)| {
            // Lay the bindings out left to right with the generated gaps.
            let mut slots = Vec::new();
            let mut next = 0;
            for (i, (gap, npages, base)) in spec.into_iter().enumerate() {
                slots.push(Binding {
                    id: i as u16,
                    base_gfn: base,
                    npages,
                    pgoff: next + gap,
                });
                next += gap + npages;
            }
            let b = Bindings::new(&slots).expect("disjoint by construction");
            let input = abi::gmf_invalidate_in {
                start,
                end: start + len,
                ..c_input(&slots)
            };
            prop_assert!(agrees(&lib, &b, &input));
            Ok(())
        })
        .expect("the property holds");
    let proptest_rate = rate(u64::from(n), t);

    // 5. The whole check, every operation, both profiles, all cores.
    let opts = Options {
        vectors: runner::load_vectors(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors"
        )))
        .expect("the repository's vectors"),
        exhaustive: true,
        random: 0,
        seed: 0,
        implementations: vec!["builtin".into()],
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
    };
    let report = runner::check(&opts, &mut |_| {}).expect("check runs");

    println!();
    println!(
        "differential (C + model + compare), 1 core: {:>14.0} vectors/s",
        differential
    );
    println!(
        "C alone, 1 core:                             {:>14.0} calls/s",
        c_alone
    );
    println!(
        "model alone, 1 core:                         {:>14.0} calls/s",
        model_alone
    );
    println!(
        "proptest harness, same property, 1 core:     {:>14.0} cases/s",
        proptest_rate
    );
    println!();
    println!(
        "differential / proptest:  {:>8.1}x",
        differential / proptest_rate
    );
    println!("differential / C alone:   {:>8.2}", differential / c_alone);
    println!(
        "differential / model:     {:>8.2}",
        differential / model_alone
    );
    println!();
    println!(
        "check --exhaustive (all operations, both profiles, {} jobs): {} vectors in {:.2}s, verdict {:?}",
        opts.jobs, report.vectors, report.seconds, report.verdict
    );
}
