//! `gmemforge history`: where each verdict changed — across the commits of
//! a range, a list of trees in order, or the patches of a posted series.

use std::path::PathBuf;

use gmem_checker::history::{self, History, HistoryError, Run};
use gmem_checker::runner::{self, Verdict};
use serde_json::Value;

use crate::failure::Failure;
use crate::progress::Progress;

/// `history`'s arguments.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The kernel tree: one git repository with --rev A..B (or --am), or
    /// several trees in the order given (directories, linux-source
    /// tarballs, repositories at HEAD), or a directory of tarballs (taken
    /// in version order). Repositories are only read.
    #[arg(long, value_name = "PATH", required = true)]
    pub tree: Vec<PathBuf>,
    /// A..B: A's verdicts, then every commit after A up to B that changes
    /// a file review reads, each compared with its first parent. With
    /// --am: the commit the series applies on (default HEAD).
    #[arg(long, value_name = "A..B")]
    pub rev: Option<String>,
    /// A posted series (an mbox as `git format-patch` writes it): applied
    /// patch by patch on --rev in a private repository, each compared with
    /// the one before; a patch that does not apply is named.
    #[arg(long, value_name = "FILE")]
    pub am: Option<PathBuf>,
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
    /// Print one JSON document: every reviewed version's verdicts and
    /// items, the changes, and what it cost (`compiles`: times the C
    /// compiler ran; `cached`: verdicts from the cache).
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page: one row per operation, one
    /// cell per version, coloured by verdict, the changes labelled.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// No progress on stderr (it is shown only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Child processes per operation, 1 to 64 (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
}

impl From<HistoryError> for Failure {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::BadInput(m) => Failure::input(m),
            HistoryError::Internal(m) => Failure::internal(m),
        }
    }
}

/// Runs `history`: exit 0 when every operation conforms in the last
/// version, 1 otherwise (or when a patch of --am does not apply).
pub fn run_history(args: HistoryArgs) -> Result<u8, Failure> {
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let vectors = runner::vector_lookup(&files);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
        .clamp(1, 64);
    let sources = runner::sources(true, args.random, args.seed);
    let run = Run {
        sources: &sources,
        jobs,
        vectors: &vectors,
    };
    let progress = Progress::new(args.quiet);
    let mut hook = |what: &str| progress.step(what);
    // Kept until the walk is over: the patched versions live in it.
    let mut _scratch = None;
    let h = match (&args.tree[..], &args.rev, &args.am) {
        ([repo], rev, Some(mbox)) => {
            crate::tempdirs::sweep_stale();
            crate::tempdirs::on_signal_remove_ours();
            let rev = rev.as_deref().unwrap_or("HEAD");
            let (what, versions, stopped, scratch) = history::series(repo, rev, mbox)?;
            _scratch = Some(scratch);
            history::walk(what, &versions, stopped, &run, &mut hook)?
        }
        ([repo], Some(range), None) => {
            let (what, versions) = history::commits(repo, range)?;
            history::walk(what, &versions, None, &run, &mut hook)?
        }
        (trees, None, None) => {
            let (what, versions) = history::trees(trees)?;
            history::walk(what, &versions, None, &run, &mut hook)?
        }
        (_, Some(_), _) | (_, _, Some(_)) => {
            return Err(Failure::input(
                "--rev and --am take one --tree (a git repository); several --tree are \
                 reviewed in the order given, without --rev",
            ));
        }
    };
    drop(progress);
    if let Some(path) = &args.report {
        crate::html_report::write_history(path, &h)?;
    }
    if args.json {
        crate::output::emitln(&serde_json::to_string_pretty(&h).unwrap_or_default())?;
    } else {
        crate::output::emit(&human(&h))?;
    }
    let last_conforms = h
        .points
        .last()
        .is_some_and(|p| p.verdicts.values().all(|v| v.as_str() == Some("conforms")));
    Ok(if last_conforms && h.stopped.is_none() {
        0
    } else {
        1
    })
}

/// A verdict as the human report spells it.
fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Conforms => "conforms",
        Verdict::Diverges => "diverges",
        Verdict::Missing => "missing",
        Verdict::Error => "error",
    }
}

/// A counterexample's or error's lines, indented, from an item.
pub fn detail(item: &Value) -> String {
    let pad = "            ";
    let mut s = String::new();
    if let Some(e) = item["error"].as_str() {
        s.push_str(&format!("{pad}{}\n", e.replace('\n', &format!("\n{pad}"))));
    }
    let c = &item["counterexample"];
    if c.is_object() {
        s.push_str(&format!(
            "{pad}why:   {}\n",
            c["why"].as_str().unwrap_or("")
        ));
        for w in c["model_why"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "{pad}why:   the model: {}\n",
                w.as_str().unwrap_or("")
            ));
        }
        s.push_str(&format!("{pad}input: {}\n", c["input"]));
        s.push_str(&format!("{pad}model: {}\n", c["model"]));
        s.push_str(&format!("{pad}C:     {}\n", c["c"]));
    }
    s
}

/// The human report: the starting verdicts, then per operation only its
/// changes, each with the counterexample (or error) where it changed.
pub fn human(h: &History) -> String {
    let mut s = format!("{}\n", h.what);
    if let Some(first) = h.points.first() {
        let verdicts: Vec<String> = first
            .verdicts
            .iter()
            .map(|(op, v)| format!("{op} {}", v.as_str().unwrap_or("")))
            .collect();
        s.push_str(&format!(
            "at {} {}: {}\n",
            first.label,
            first.subject,
            verdicts.join(", ")
        ));
    }
    for c in &h.changes {
        s.push_str(&format!(
            "{}: {} → {} at {} {}\n",
            c.operation,
            word(c.from),
            word(c.to),
            c.label,
            c.subject
        ));
        if c.to != Verdict::Conforms {
            s.push_str(&detail(&c.item));
        }
    }
    if h.changes.is_empty() {
        s.push_str("no verdict changed\n");
    }
    if let Some(why) = &h.stopped {
        s.push_str(&format!("stopped: {why}\n"));
    }
    s.push_str(&format!(
        "{} versions, {} distinct trees reviewed, {} verdicts from the cache, C compiled {} times, {:.2}s\n",
        h.points.len(),
        h.reviewed,
        h.cached,
        h.compiles,
        h.seconds
    ));
    s
}
