//! How the CLI fails: one type, one place that maps it to an exit status.
//!
//! Exit status (README "Exit status"):
//! - 0 conforms / succeeded, 1 a divergence was found (not a `Failure`);
//! - 2 bad usage or bad input: the message names the input and what is
//!   wrong;
//! - 3 the command could not do its job for a reason that is not the
//!   input's fault: an internal error of gmemforge (a bug, or its own
//!   compiled object failing to load), a git failure, or output that
//!   cannot be written (a full disk). The message says which;
//! - 141 (128 + SIGPIPE) when stdout is a closed pipe: nothing is printed,
//!   as coreutils do (`gmemforge model … | head -c 10`).
//!
//! Nothing here ever prints a backtrace.

use std::fmt;

/// A reason the command cannot do its job.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or bad input (exit 2). The text names the input.
    BadInput(String),
    /// Reading or writing something that is not the input failed: the
    /// output file or directory, stdout, a temporary directory (exit 3).
    Io(String),
    /// gmemforge itself went wrong: a bug, a git failure, its own compiled
    /// object not loading (exit 3).
    Internal(String),
    /// stdout was closed by the reader (exit 141, silent).
    ClosedPipe,
}

/// Exit status of [`Failure::Io`] and [`Failure::Internal`].
pub const EXIT_INTERNAL: u8 = 3;
/// Exit status when stdout is a closed pipe: the shell's 128 + SIGPIPE.
pub const EXIT_CLOSED_PIPE: u8 = 141;

impl Failure {
    /// A bad-input failure.
    pub fn input(msg: impl Into<String>) -> Self {
        Failure::BadInput(msg.into())
    }

    /// An IO failure on something other than the input.
    pub fn io(msg: impl Into<String>) -> Self {
        Failure::Io(msg.into())
    }

    /// An internal failure.
    pub fn internal(msg: impl Into<String>) -> Self {
        Failure::Internal(msg.into())
    }

    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Io(_) | Failure::Internal(_) => EXIT_INTERNAL,
            Failure::ClosedPipe => EXIT_CLOSED_PIPE,
        }
    }

    /// The one line printed on stderr, if any.
    pub fn message(&self) -> Option<String> {
        match self {
            Failure::BadInput(m) => Some(format!("gmemforge: error: {m}")),
            Failure::Io(m) => Some(format!("gmemforge: error: {m}")),
            Failure::Internal(m) => Some(format!(
                "gmemforge: internal error (not a problem with your input): {m}"
            )),
            Failure::ClosedPipe => None,
        }
    }
}

impl From<gmem_checker::runner::CheckError> for Failure {
    fn from(e: gmem_checker::runner::CheckError) -> Self {
        use gmem_checker::runner::CheckError;
        match e {
            CheckError::BadInput(m) => Failure::BadInput(m),
            CheckError::Internal(m) => Failure::Internal(m),
        }
    }
}

/// The series library's errors keep their kinds: input is exit 2, the
/// rest exit 3, as when the CLI held that code.
impl From<gmem_series::Error> for Failure {
    fn from(e: gmem_series::Error) -> Self {
        match e {
            gmem_series::Error::Input(m) => Failure::BadInput(m),
            gmem_series::Error::Io(m) => Failure::Io(m),
            gmem_series::Error::Internal(m) => Failure::Internal(m),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(m) | Failure::Io(m) | Failure::Internal(m) => f.write_str(m),
            Failure::ClosedPipe => f.write_str("stdout: broken pipe"),
        }
    }
}
