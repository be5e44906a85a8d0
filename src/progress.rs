//! Progress on stderr for long runs: a spinner naming the current step and
//! the time spent. Hidden when stderr is not a terminal (pipes and CI stay
//! clean) or with --quiet; data always goes to stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner, possibly hidden.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner on stderr, unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Progress {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        } else {
            let b = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                b.set_style(style);
            }
            b.enable_steady_tick(Duration::from_millis(120));
            b
        };
        Progress { bar }
    }

    /// Names the current step.
    pub fn step(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// A callback for the checker's progress hooks.
    pub fn hook(&self) -> impl FnMut(&str) + '_ {
        move |what: &str| self.step(what)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
