//! # gmem-checker: kernel C versus the model
//!
//! compile (gcc through `cc`, against the kernel-API shim in `c/shim/`) →
//! load (dlopen) → run every operation's vectors through the C and the
//! model in an isolated child → compare → shrink a divergence to a minimal
//! counterexample.

#[rustfmt::skip]
pub mod abi;
pub mod cache;
pub mod compile;
pub mod confine;
pub mod elf;
pub mod history;
pub mod isolate;
pub mod kunit;
pub mod library;
pub mod ops;
pub mod progress;
pub mod review;
pub mod runner;
pub mod screen;
pub mod shapes;
pub mod syscalls;
pub mod tree;
