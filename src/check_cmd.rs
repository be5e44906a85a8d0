//! `gmemforge check`: the differential checker, for people and for scripts.

use std::path::PathBuf;

use gmem_checker::runner::{self, Item, Options, Report, Verdict};
use serde_json::Value;

use crate::failure::Failure;
use crate::progress::Progress;

/// `check`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Directory of vector files (<operation>.json) to use instead of the
    /// ones built into gmemforge.
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// Also run the exhaustive bound (a 16-page file with up to 3 bindings at
    /// every placement and every range; every error-code bit and pair; every
    /// RMP state of a 2M region; ...). Over a million vectors.
    #[arg(long)]
    pub exhaustive: bool,
    /// Seeded random vectors per operation, beyond the bound.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=gmem_checker::ops::MAX_RANDOM))]
    pub random: u64,
    /// Seed of the random vectors.
    #[arg(long, value_name = "S", default_value_t = 0x6d65_6d66)]
    pub seed: u64,
    /// Implementation under test: `builtin` (the C the series carries, both
    /// profiles) or `mutant:NAME` (a known bug, to see the checker catch it).
    #[arg(long = "impl", value_name = "IMPL", default_value = "builtin", help = impl_short_help(), long_help = impl_help())]
    pub implementation: Vec<String>,
    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr (it is shown only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write a self-contained HTML page with every verdict and a
    /// picture of each counterexample.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Child processes per operation, 1 to 64 (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
}

/// `--impl`'s long help: the mutants from their one registry.
fn impl_help() -> String {
    let mut s = String::from(
        "Implementation under test, repeatable: `builtin` (the C the series carries, \
         both profiles) or `mutant:NAME`, a known bug, to see the checker catch it:\n",
    );
    for (name, about) in gmem_codegen::unit::mutant_list() {
        s.push_str(&format!("\n  {name}: {about}"));
    }
    s
}

/// The human report: items grouped by implementation, then the totals.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for i in &r.items {
        if i.implementation != last {
            out.push_str(&format!("{}\n", i.implementation));
            last.clone_from(&i.implementation);
        }
        out.push_str(&item_line(i));
    }
    // A rate means something only when every case ran: an operation that
    // diverged stopped at its first divergence.
    let stopped: Vec<String> = r
        .items
        .iter()
        .filter(|i| i.verdict == Verdict::Diverges)
        .map(|i| format!("{} after {} vectors", i.operation, i.vectors))
        .collect();
    if stopped.is_empty() {
        out.push_str(&format!(
            "\n{}: {} vectors in {:.2}s ({:.0} vectors/s)\n",
            match r.verdict {
                Verdict::Conforms => "conforms",
                Verdict::Diverges => "DIVERGES",
                Verdict::Error => "NOT PROVEN (an operation did not compile)",
                Verdict::Missing => "NOT PROVEN (operations missing)",
            },
            r.vectors,
            r.seconds,
            r.vectors_per_second
        ));
    } else {
        out.push_str(&format!(
            "\nDIVERGES: {} vectors in {:.2}s; stopped at the first divergence ({})\n",
            r.vectors,
            r.seconds,
            stopped.join(", ")
        ));
    }
    out
}

fn item_line(i: &Item) -> String {
    let verdict = match i.verdict {
        Verdict::Conforms => "conforms",
        Verdict::Diverges => "DIVERGES",
        Verdict::Missing => "missing",
        Verdict::Error => "ERROR",
    };
    let mut model_only = if i.model_only > 0 {
        format!(", {} model-only", i.model_only)
    } else {
        String::new()
    };
    if i.other_profile > 0 {
        model_only.push_str(&format!(", {} of another profile", i.other_profile));
    }
    let mut s = format!(
        "  {verdict:<9} {:<16} {:>9} vectors{model_only}  {}\n",
        i.operation, i.vectors, i.function
    );
    if let Some(e) = &i.error {
        s.push_str(&format!(
            "            {}\n",
            e.replace('\n', "\n            ")
        ));
    }
    if let Some(n) = &i.not_checked {
        s.push_str(&format!("            not checked: {n}\n"));
    }
    if let Some(c) = &i.counterexample {
        let show = |v: &Value| serde_json::to_string(v).unwrap_or_default();
        // The difference first, then the model's own reasons, each on a
        // `why:` line of its own, beside the C's answer below.
        let model_why: String = c
            .model_why
            .iter()
            .map(|w| format!("            why:   the model: {w}\n"))
            .collect();
        s.push_str(&format!(
            "            why:   {}\n{model_why}            input: {}\n            model: {}\n            C:     {}\n            {}\n",
            c.why,
            show(&c.input),
            show(&c.model),
            show(&c.c),
            if c.shrink_steps > gmem_checker::ops::SHRINK_LIMIT {
                format!(
                    "(shrinking stopped at its limit of {} steps: smaller cases may exist)",
                    gmem_checker::ops::SHRINK_LIMIT
                )
            } else {
                format!("(shrunk in {} steps)", c.shrink_steps)
            }
        ));
    }
    s
}

/// Runs `check`; the exit status follows the verdict.
pub fn run_check(args: CheckArgs) -> Result<u8, Failure> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
        .clamp(1, 64);
    // The vector files are tests of the model first: a case whose
    // `expected` the model does not give is reported, and fails the run.
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let disagree = crate::vectors::disagreements(&files);
    let opts = Options {
        vectors: files,
        exhaustive: args.exhaustive,
        random: args.random,
        seed: args.seed,
        implementations: args.implementation,
        jobs,
    };
    let progress = Progress::new(args.quiet);
    let report = runner::check(&opts, &mut progress.hook()).map_err(Failure::from)?;
    drop(progress);
    if let Some(path) = &args.report {
        crate::html_report::write(path, "gmemforge check", &report)?;
    }
    if args.json {
        let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
        if let Some(map) = doc.as_object_mut() {
            if !disagree.is_empty() {
                map.insert("verdict".into(), Value::from("diverges"));
            }
            map.insert("vector_disagreements".into(), Value::from(disagree.clone()));
        }
        crate::output::emitln(&serde_json::to_string_pretty(&doc).unwrap_or_default())?;
    } else {
        let mut text = String::new();
        if !disagree.is_empty() {
            text.push_str(&format!(
                "vector files: {} cases disagree with the model\n",
                disagree.len()
            ));
            for d in &disagree {
                text.push_str(&format!("  {d}\n"));
            }
            text.push('\n');
        }
        text.push_str(&human(&report));
        crate::output::emit(&text)?;
    }
    Ok(u8::from(
        report.verdict != Verdict::Conforms || !disagree.is_empty(),
    ))
}

/// `--impl`'s short help (`-h`): the mutants' names from the registry
/// (`gmem_codegen::unit::mutant_names()`), never by hand.
fn impl_short_help() -> String {
    format!(
        "Implementation under test: `builtin` (the C the series carries, both profiles) \
         or `mutant:NAME` (a known bug, to see the checker catch it: {})",
        gmem_codegen::unit::mutant_names().join(", ")
    )
}
