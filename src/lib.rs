//! gmemforge: trust the guest_memfd / SEV-SNP code you write.
//!
//! The library half of the CLI, so integration tests can drive the same
//! code paths as the binary.

pub mod check_cmd;
pub mod failure;
pub mod history_cmd;
pub mod html_report;
pub mod model_cmd;
pub mod outdir;
pub mod output;
pub mod progress;
pub mod review_cmd;
pub mod series_cmd;
pub mod series_json;
pub mod tempdirs;
pub mod vectors;
