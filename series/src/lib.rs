//! The patch series for a user's kernel tree, as a library: the CLI's
//! `series` command is argument handling and output around it.
//!
//! - [`pipeline`]: the tree read and reviewed, the series planned (by
//!   `gmem_codegen::series::plan`), the result reviewed, committed in a
//!   private repository, proven in the kernel if asked, and the texts of
//!   the format-patch files, the cover letter and stdout;
//! - `cover`: the cover letter's words for kernel maintainers;
//! - `in_kernel`: `--build`/`--kunit` as the series uses them, and what
//!   stdout and the cover letter say of them;
//! - [`kbuild`]: the kernel build itself: every prefix of the series built
//!   by the tree's own Kbuild in a private copy, the KUnit suites under
//!   QEMU.

use std::fmt;

mod cover;
mod in_kernel;
pub mod kbuild;
pub mod pipeline;

/// Why the series could not be made (or proven). The kinds are the CLI's
/// exit statuses: [`Error::Input`] is the user's to fix (exit 2), the
/// others are not (exit 3).
#[derive(Debug)]
pub enum Error {
    /// Bad input: the tree, a revision, `--from`, a tree that cannot be
    /// built. The text names it.
    Input(String),
    /// Reading or writing something that is not the input failed: a
    /// temporary directory, the build area, running a tool.
    Io(String),
    /// gmemforge itself went wrong: a bug, a git failure, its own compiled
    /// object not loading.
    Internal(String),
}

impl Error {
    /// An [`Error::Input`].
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// An [`Error::Io`].
    pub fn io(msg: impl Into<String>) -> Self {
        Error::Io(msg.into())
    }

    /// An [`Error::Internal`].
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(m) | Error::Io(m) | Error::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<gmem_checker::runner::CheckError> for Error {
    fn from(e: gmem_checker::runner::CheckError) -> Self {
        use gmem_checker::runner::CheckError;
        match e {
            CheckError::BadInput(m) => Error::Input(m),
            CheckError::Internal(m) => Error::Internal(m),
        }
    }
}
