//! `gmemforge series`: the patch series for the user's tree.
//!
//! Argument handling and IO around the library's pipeline
//! (`gmem_series::pipeline`, which reads and reviews the tree, plans,
//! reviews the result, commits and proves): --out checked before anything
//! is read, the format-patch files and the cover letter written
//! atomically into it, stdout printed.

use std::path::PathBuf;

use gmem_checker::runner;
use gmem_checker::tree::TreeSource;
use gmem_series::pipeline::{self, Build, Input, Request};

use crate::failure::Failure;
use crate::output::emit;
use crate::progress::Progress;

/// `series`' arguments.
#[derive(Debug, clap::Args)]
pub struct SeriesArgs {
    /// The kernel tree: a source directory, a git repository (read at
    /// --rev, never modified), or a linux-source .tar.xz.
    #[arg(long, value_name = "PATH")]
    pub tree: PathBuf,
    /// Revision of a git repository (default HEAD); the series is based on it.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Output directory for the patch files (must not exist, unless --force).
    #[arg(long, value_name = "DIR", default_value = "gmemforge-series")]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// Mark the series as version N ([PATCH vN m/n], vN- file names).
    #[arg(long, value_name = "N")]
    pub reroll: Option<u32>,
    /// Author and sender, "Name <email>" (default: the repository's or the
    /// user's git configuration).
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub from: Option<String>,
    /// Directory of vector files (<operation>.json) to use instead of the
    /// ones built into gmemforge.
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// No progress on stderr (it is shown only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON document on stdout instead of the listing: each
    /// patch's outcome (and why), its Fixes:/Cc: stable trailers, the
    /// verdicts before the series and of its result, and what could not be
    /// checked. The files are written all the same.
    #[arg(long)]
    pub json: bool,
    /// Build every prefix of the series with the tree's own Kbuild (x86_64,
    /// KVM, KVM_AMD, KVM_AMD_SEV and every config symbol the series adds),
    /// W=1, in a private copy of the tree cached under
    /// ~/.cache/gmemforge/kbuild; a build error or a new warning fails the
    /// run (exit 1). Needs a whole kernel source.
    #[arg(long)]
    pub build: bool,
    /// After --build: run the series' KUnit suites with
    /// tools/testing/kunit/kunit.py under QEMU (qemu-system-x86).
    #[arg(long, requires = "build")]
    pub kunit: bool,
    /// make's parallelism for --build and --kunit (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Seeded random vectors per operation in the review.
    #[arg(long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=gmem_checker::ops::MAX_RANDOM))]
    pub random: u64,
}

/// Runs `series`.
pub fn run_series(args: SeriesArgs) -> Result<u8, Failure> {
    // Before anything is read or written: --out must keep clear of the
    // tree, and --force may only replace an earlier series.
    crate::outdir::check_not_in_tree(&args.out, &crate::outdir::tree_paths(&args.tree))?;
    crate::outdir::check_replaceable(&args.out, args.force)?;
    // Temporary directories: leftovers of dead runs go, ours go on ^C.
    crate::tempdirs::sweep_stale();
    crate::tempdirs::on_signal_remove_ours();
    let src = TreeSource::from_arg(&args.tree, args.rev.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?;
    let progress = Progress::new(args.quiet);
    progress.step(&format!("reading {}", args.tree.display()));
    let input = Input::read(&src)?;
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let vectors = runner::vector_lookup(&files);
    let request = Request {
        from: args.from.as_deref(),
        reroll: args.reroll,
        random: args.random,
        vectors: &vectors,
        build: args.build.then_some(Build {
            jobs: args.jobs,
            kunit: args.kunit,
        }),
    };
    let mut made = pipeline::run(&input, &request, &progress)?;
    // The bar is cleared before stdout is written to the same terminal.
    drop(progress);
    let json = args
        .json
        .then(|| crate::series_json::document(&made, &args.out).to_string() + "\n");
    if made.files.is_empty() {
        emit(json.as_deref().unwrap_or(&made.notes))?;
        return Ok(made.code);
    }
    // The build's account comes first, the series is written even when
    // the build could not run or its account cannot be printed, and the
    // run then ends with that failure.
    let mut failure = made.build_error.take().map(Failure::from);
    if let Some(report) = made.build_report.as_ref().filter(|_| json.is_none()) {
        if let Err(e) = emit(report) {
            failure = Some(e);
        }
    }
    crate::outdir::write(&args.out, args.force, &made.files)?;
    if let Some(doc) = json {
        emit(&doc)?;
        return match failure {
            Some(e) => Err(e),
            None => Ok(made.code),
        };
    }
    let mut listing: String = made
        .files
        .iter()
        .map(|(name, _)| format!("{}\n", args.out.join(name).display()))
        .collect();
    listing.push_str(&made.notes);
    emit(&listing)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(made.code),
    }
}
