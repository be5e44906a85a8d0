//! Writing results to stdout without panicking.
//!
//! `println!` panics when stdout cannot be written (a closed pipe, a full
//! disk); every command prints through [`emit`] instead, which turns those
//! into a [`Failure`]: a closed pipe ends the command quietly with 141,
//! like coreutils; any other error is one line naming stdout, exit 3.

use std::io::{ErrorKind, Write};

use crate::failure::Failure;

/// Writes `text` to stdout and flushes it.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => Failure::ClosedPipe,
            _ => Failure::io(format!("cannot write stdout: {e}")),
        })
}

/// [`emit`] with a newline.
pub fn emitln(text: &str) -> Result<(), Failure> {
    emit(&format!("{text}\n"))
}
