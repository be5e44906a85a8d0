//! # gmem-codegen: kernel C from the model
//!
//! parse (syn over the model's rules.rs) → bind (template placeholders give
//! each rule parameter a C expression) → emit (C text laid out as the
//! templates in `kernel-patches/` lay it out). The same text is what the
//! checker compiles and what a patch carries.

pub mod cexpr;
pub mod cparse;
pub mod kunit;
pub mod series;
pub mod template;
pub mod translate;
pub mod unit;
