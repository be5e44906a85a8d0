//! Progress on stderr for long runs: once the checker says how many items
//! the run makes, a bar with items done / items in all, the vectors the
//! finished items ran, the current step and the time spent, e.g.
//! `[00:02] ███████░░░ 9/14 builtin:upstream invalidate   4,820,042 vectors`;
//! before that (reading a tree) a spinner with the step. Hidden when stderr
//! is not a terminal (pipes and CI stay clean) or with --quiet; data always
//! goes to stdout.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Duration;

use gmem_checker::progress::Event;
use indicatif::{HumanCount, ProgressBar, ProgressState, ProgressStyle};

/// Elapsed time as `[mm:ss]`: runs take seconds to minutes, so hours
/// would only be noise (an hour-long run shows `[75:03]`).
fn mmss(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let s = state.elapsed().as_secs();
    let _ = write!(w, "{:02}:{:02}", s / 60, s % 60);
}

/// Before the count is known.
fn spinner_style() -> Option<ProgressStyle> {
    ProgressStyle::with_template("{spinner} [{mmss}] {wide_msg}")
        .ok()
        .map(|s| s.with_key("mmss", mmss))
}

/// Once it is. `wide_msg` truncates the step to what the terminal leaves,
/// so a long list of kernel functions never wraps (a wrapped line would be
/// redrawn one row down each tick) and the vector count (the prefix, put
/// last) stays whole at the right edge.
fn bar_style() -> Option<ProgressStyle> {
    ProgressStyle::with_template("[{mmss}] {bar:16} {pos}/{len} {wide_msg} {prefix}")
        .ok()
        .map(|s| s.with_key("mmss", mmss).progress_chars("█░"))
}

/// A progress display, possibly hidden.
pub struct Progress {
    bar: ProgressBar,
    /// Vectors of the items done so far: the counts the items carry, so
    /// the number only moves when an item ends (the children's running
    /// counts stay in the children).
    vectors: Cell<u64>,
}

impl Progress {
    /// A spinner on stderr, unless `quiet` or stderr is not a terminal; it
    /// becomes a bar when the checker sends its total.
    pub fn new(quiet: bool) -> Progress {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new_spinner();
            if let Some(style) = spinner_style() {
                b.set_style(style);
            }
            // Redraws between events, so the time moves during a long
            // operation (an exhaustive one runs for seconds).
            b.enable_steady_tick(Duration::from_millis(120));
            b
        };
        Progress {
            bar,
            vectors: Cell::new(0),
        }
    }

    /// Names the current step.
    pub fn step(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// Shows one of the checker's events.
    pub fn event(&self, e: Event<'_>) {
        match e {
            Event::Total(n) => {
                if let Some(style) = bar_style() {
                    self.bar.set_style(style);
                }
                self.bar.set_length(n);
                self.bar.set_position(0);
            }
            Event::Start(what) | Event::Step(what) => self.step(what),
            Event::Done { vectors } => {
                self.bar.inc(1);
                if vectors > 0 {
                    let v = self.vectors.get() + vectors;
                    self.vectors.set(v);
                    self.bar.set_prefix(format!("{} vectors", HumanCount(v)));
                }
            }
        }
    }

    /// A callback for the checker's progress hooks.
    pub fn hook(&self) -> impl FnMut(Event<'_>) + '_ {
        move |e: Event<'_>| self.event(e)
    }
}

/// The series pipeline's steps and reviews, on the same bar.
impl gmem_series::pipeline::Progress for Progress {
    fn step(&self, what: &str) {
        Progress::step(self, what);
    }

    fn event(&self, e: Event<'_>) {
        Progress::event(self, e);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
