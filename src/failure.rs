//! How the CLI fails: one type, one place that maps it to an exit status.
//!
//! Exit status (product.md): 0 conforms / succeeded, 1 a divergence was
//! found, 2 bad usage or bad input. Messages name the input and what is
//! wrong; nothing here ever prints a backtrace.

use std::fmt;

/// A reason the command cannot do its job.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or bad input (exit 2). The text names the input.
    BadInput(String),
}

impl Failure {
    /// A bad-input failure.
    pub fn input(msg: impl Into<String>) -> Self {
        Failure::BadInput(msg.into())
    }

    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(m) => f.write_str(m),
        }
    }
}
