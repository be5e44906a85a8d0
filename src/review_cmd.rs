//! `gmemforge review`: a kernel tree's functions against the model.

use std::path::PathBuf;

use gmem_checker::review;
use gmem_checker::runner::{self, Verdict};
use gmem_checker::tree::{Tree, TreeSource};

use crate::check_cmd::human;
use crate::failure::Failure;
use crate::progress::Progress;

/// `review`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The kernel tree: a source directory, a git repository (read at
    /// --rev, never its work tree), or a linux-source .tar.xz.
    #[arg(long, value_name = "PATH")]
    pub tree: PathBuf,
    /// Revision of a git repository (default HEAD).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Directory of vector files (<operation>.json) to use instead of the
    /// ones built into gmemforge.
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// Seeded random vectors per operation (besides the vectors and the
    /// exhaustive bound).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=gmem_checker::ops::MAX_RANDOM))]
    pub random: u64,
    /// Seed of the random vectors.
    #[arg(long, value_name = "S", default_value_t = 0x6d65_6d66)]
    pub seed: u64,
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

/// Runs `review`; the exit status follows the verdict.
pub fn run_review(args: ReviewArgs) -> Result<u8, Failure> {
    let src = TreeSource::from_arg(&args.tree, args.rev.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?;
    let progress = Progress::new(args.quiet);
    progress.step(&format!("reading {}", args.tree.display()));
    let tree = Tree::open(&src, review::FILES).map_err(|e| Failure::input(e.to_string()))?;
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let vectors = runner::vector_lookup(&files);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
        .clamp(1, 64);
    let sources = runner::sources(true, args.random, args.seed);
    let r = review::review(&tree, &sources, jobs, &vectors, &mut progress.hook())
        .map_err(Failure::from)?;
    drop(progress);
    if let Some(path) = &args.report {
        let title = format!(
            "gmemforge review of {} ({})",
            r.tree,
            r.detected.profile.name()
        );
        crate::html_report::write(path, &title, &r.report)?;
    }
    if args.json {
        crate::output::emitln(&serde_json::to_string_pretty(&r).unwrap_or_default())?;
    } else {
        // Per operation, what decided its profile: a tree may mix
        // generations (a backport).
        let shapes: String = r
            .detected
            .operations
            .iter()
            .map(|s| format!("  {}: {} ({})\n", s.operation, s.profile.name(), s.evidence))
            .collect();
        crate::output::emit(&format!(
            "{}: {} ({})\n{shapes}{}",
            r.tree,
            r.detected.profile.name(),
            r.detected.evidence,
            human(&r.report)
        ))?;
    }
    Ok(if r.report.verdict == Verdict::Conforms {
        0
    } else {
        1
    })
}
