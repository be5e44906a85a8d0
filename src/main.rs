//! gmemforge: trust the guest_memfd / SEV-SNP code you write.
//!
//! The CLI front end: argument parsing, exit status, and dispatch to the
//! model, the checker and the series builder.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gmemforge::check_cmd::{self, CheckArgs};
use gmemforge::failure::Failure;
use gmemforge::history_cmd::{self, HistoryArgs};
use gmemforge::model_cmd::{self, ModelOp};
use gmemforge::review_cmd::{self, ReviewArgs};
use gmemforge::series_cmd::{self, SeriesArgs};

#[derive(Parser)]
#[command(
    name = "gmemforge",
    version,
    about = "Reference model, differential checker and patch-series generator for KVM guest_memfd / SEV-SNP",
    long_about = "gmemforge keeps an executable Rust model of how KVM guest_memfd bindings, \
invalidation ranges, private/shared fault classification and SEV-SNP RMP hooks must behave.\n\n\
Exit status: 0 = conforms / succeeded, 1 = a divergence was found, 2 = bad usage or bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Differential check: the C the series carries, compiled against a
    /// kernel-API shim, versus the reference model, on the shared vectors,
    /// seeded random vectors and (with --exhaustive) an exhaustive bound.
    ///
    /// Exit 0 when every operation conforms, 1 with a minimal
    /// counterexample when one diverges, 2 on bad input.
    Check(CheckArgs),
    /// Review a kernel tree: find its guest_memfd / SEV functions, compile
    /// them unchanged against the shim, and check each against the model.
    ///
    /// Says which generation (profile) the tree is, then one verdict per
    /// operation: conforms, diverges (with a minimal counterexample),
    /// missing (where it looked), or error (the compiler's message, with
    /// the tree's file and line). Exit 0 only when everything conforms.
    Review(ReviewArgs),
    /// Where each verdict changed: review every commit of a range that
    /// changes the files review reads (--rev A..B), a list of trees in
    /// order (Debian's package versions), or the patches of a posted
    /// series (--am), and print per operation only the changes, with the
    /// counterexample where an operation starts to diverge.
    ///
    /// Verdicts are cached by the text review compiles (with the shape,
    /// the shim, the model and the cases): a version that does not change
    /// an operation's functions costs a lookup, not a compile and a run.
    /// Repositories are only read. Exit 0 when everything conforms in the
    /// last version, 1 otherwise or when a patch does not apply.
    History(HistoryArgs),
    /// Generate the patch series for a kernel tree: the model's behaviour,
    /// as git format-patch files with a cover letter, for what the tree
    /// does not already do.
    ///
    /// Reviews the tree first; a patch whose behaviour the tree already has
    /// is left out, and the cover letter names the conforming functions.
    /// Never modifies the tree or its repository.
    Series(SeriesArgs),
    /// Ask the reference model: one JSON document on stdin, the answer on stdout.
    ///
    /// Example: echo '{"slots":[{"id":0,"base_gfn":256,"npages":4,"pgoff":0}],"start":2,"end":6}' | gmemforge model invalidate
    Model {
        /// The operation (input formats: README.md, "The model as a JSON filter").
        #[arg(value_enum)]
        op: ModelOp,
    },
}

fn main() -> ExitCode {
    // A panic is a bug of ours: one line naming it, exit 3, no backtrace.
    std::panic::set_hook(Box::new(|info| {
        let f = Failure::internal(format!("{info}"));
        if let Some(m) = f.message() {
            let _ = writeln!(std::io::stderr(), "{m}");
        }
    }));
    match std::panic::catch_unwind(run) {
        // The hook has said what happened.
        Err(_) => ExitCode::from(gmemforge::failure::EXIT_INTERNAL),
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(f)) => {
            if let Some(m) = f.message() {
                // stderr may be closed or full too: nothing more to do then.
                let _ = writeln!(std::io::stderr(), "{m}");
            }
            ExitCode::from(f.exit_code())
        }
    }
}

fn run() -> Result<u8, Failure> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; anything else is bad usage.
            let code = if e.use_stderr() { 2 } else { 0 };
            if !e.use_stderr() {
                // --help into a closed pipe or a full disk: as any output.
                gmemforge::output::emit(&e.render().to_string())?;
            } else {
                let _ = e.print();
            }
            return Ok(code);
        }
    };
    match cli.command {
        Command::Check(args) => check_cmd::run_check(args),
        Command::Review(args) => review_cmd::run_review(args),
        Command::History(args) => history_cmd::run_history(args),
        Command::Series(args) => series_cmd::run_series(args),
        Command::Model { op } => model_cmd::run_model(op).map(|()| 0),
    }
}
