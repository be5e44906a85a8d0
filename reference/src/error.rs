//! Inputs the model refuses.
//!
//! The model is total: every operation either answers or returns an
//! [`InputError`] naming the field that makes the input meaningless for the
//! kernel (say, two bindings that overlap in one file, which the kernel's
//! xarray cannot hold). Errors the *kernel* returns (`-EINVAL` and friends)
//! are answers, not `InputError`s.

use std::fmt;

/// An input the modelled kernel function can never be called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Path of the offending field, as in the JSON input (`slots[1].npages`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InputError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for InputError {}
