//! `gmemforge check`: the differential checker, for people and for scripts.

use std::path::PathBuf;

use gmem_checker::runner::{self, Item, Options, Report, Verdict};
use serde_json::Value;

use crate::failure::Failure;
use crate::progress::Progress;

/// `check`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Directory of shared vectors (<operation>.json).
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))]
    pub vectors: PathBuf,
    /// Also run the exhaustive bound (a 16-page file with up to 3 bindings at
    /// every placement and every range; every error-code bit and pair; every
    /// RMP state of a 2M region; ...). Over a million vectors.
    #[arg(long)]
    pub exhaustive: bool,
    /// Seeded random vectors per operation, beyond the bound.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub random: u64,
    /// Seed of the random vectors.
    #[arg(long, value_name = "S", default_value_t = 0x6d65_6d66)]
    pub seed: u64,
    /// Implementation under test (help text from the mutant registry).
    #[arg(long = "impl", value_name = "IMPL", default_value = "builtin", help = impl_help())]
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
    /// Child processes per operation (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<u64>,
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
    out.push_str(&format!(
        "\n{}: {} vectors in {:.2}s ({:.0} vectors/s)\n",
        match r.verdict {
            Verdict::Conforms => "conforms",
            _ => "DIVERGES",
        },
        r.vectors,
        r.seconds,
        r.vectors_per_second
    ));
    out
}

fn item_line(i: &Item) -> String {
    let verdict = match i.verdict {
        Verdict::Conforms => "conforms",
        Verdict::Diverges => "DIVERGES",
        Verdict::Missing => "missing",
        Verdict::Error => "ERROR",
    };
    let model_only = if i.model_only > 0 {
        format!(", {} model-only", i.model_only)
    } else {
        String::new()
    };
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
    if let Some(c) = &i.counterexample {
        let show = |v: &Value| serde_json::to_string(v).unwrap_or_default();
        s.push_str(&format!(
            "            why:   {}\n            input: {}\n            model: {}\n            C:     {}\n            (shrunk in {} steps)\n",
            c.why,
            show(&c.input),
            show(&c.model),
            show(&c.c),
            c.shrink_steps
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
    let opts = Options {
        vectors_dir: args.vectors,
        exhaustive: args.exhaustive,
        random: args.random,
        seed: args.seed,
        implementations: args.implementation,
        jobs,
    };
    let progress = Progress::new(args.quiet);
    let report =
        runner::check(&opts, &mut progress.hook()).map_err(|e| Failure::input(e.to_string()))?;
    drop(progress);
    if let Some(path) = &args.report {
        crate::html_report::write(path, "gmemforge check", &report)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", human(&report));
    }
    Ok(if report.verdict == Verdict::Conforms {
        0
    } else {
        1
    })
}

/// `--impl`'s help: the mutants listed from the registry
/// (`gmem_codegen::unit::mutant_names()`), never by hand.
fn impl_help() -> String {
    format!(
        "Implementation under test: `builtin` (the C the series carries, both profiles) \
         or `mutant:NAME` (a known bug, to see the checker catch it: {})",
        gmem_codegen::unit::mutant_names().join(", ")
    )
}
