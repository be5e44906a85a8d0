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
    /// For `git bisect run`: review only OP and exit 0 when it conforms,
    /// 1 when it diverges, 125 when this commit cannot be tested (OP
    /// missing or not compiling, no guest_memfd, not a kernel tree), as
    /// git expects. Verdicts are cached as `history`'s are.
    #[arg(long, value_name = "OP", value_parser = operations(), conflicts_with = "report")]
    pub bisect: Option<String>,
}

/// The operations' names, for --bisect.
fn operations() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(gmem_checker::ops::OPERATIONS.iter().map(|o| o.name))
}

/// `git bisect run`'s "this commit cannot be tested".
pub const EXIT_UNTESTABLE: u8 = 125;

/// `review --bisect OP`: one operation, its verdict as git bisect's exit
/// status. The reason a commit cannot be tested is printed, so the
/// bisect log says why it was skipped.
fn run_bisect(args: &ReviewArgs, op: &str) -> Result<u8, Failure> {
    let src = TreeSource::from_arg(&args.tree, args.rev.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?;
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let vectors = runner::vector_lookup(&files);
    let untestable = |why: &str| {
        let _ = crate::output::emitln(&format!("{op}: cannot be tested here: {why}"));
        Ok(EXIT_UNTESTABLE)
    };
    // A commit that is no kernel tree (before the tree existed, a broken
    // commit) is skipped, not bad.
    let tree = match Tree::open(&src, review::FILES) {
        Ok(t) => t,
        Err(e) => return untestable(&e.to_string()),
    };
    let Some(operation) = gmem_checker::history::operation_named(op) else {
        return Err(Failure::input(format!("--bisect {op}: no such operation")));
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
        .clamp(1, 64);
    let sources = runner::sources(true, args.random, args.seed);
    let run = gmem_checker::history::Run {
        sources: &sources,
        jobs,
        vectors: &vectors,
    };
    let v =
        gmem_checker::history::evaluate(&tree, &[operation.cop], &run).map_err(Failure::from)?;
    let Some(item) = v.items.first() else {
        return Err(Failure::internal(format!("--bisect {op}: no verdict")));
    };
    if args.json {
        crate::output::emitln(&serde_json::to_string_pretty(&item.item).unwrap_or_default())?;
    } else {
        crate::output::emit(&format!(
            "{op}: {} at {}\n{}",
            serde_json::to_value(item.verdict)
                .unwrap_or_default()
                .as_str()
                .unwrap_or(""),
            v.tree,
            crate::history_cmd::detail(&item.item)
        ))?;
    }
    Ok(match item.verdict {
        Verdict::Conforms => 0,
        Verdict::Diverges => 1,
        Verdict::Missing | Verdict::Error => EXIT_UNTESTABLE,
    })
}

/// Runs `review`; the exit status follows the verdict.
pub fn run_review(args: ReviewArgs) -> Result<u8, Failure> {
    if let Some(op) = &args.bisect {
        return run_bisect(&args, op);
    }
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
