//! Progress events: what a long run tells whoever shows its progress.
//!
//! `check` and `review` call a hook with these events and the CLI draws
//! them (a bar on stderr). The checker itself stays free of any terminal
//! code, so a library caller or a test can count the events, or ignore them
//! with `&mut |_| {}`.
//!
//! The contract, which `runner`'s tests hold `check` to: `Total(n)` comes
//! once, before any unit of work starts; then each of the `n` units sends
//! `Start` and, when it is over, `Done`, one unit at a time. A unit is one
//! item of the report (one operation of one implementation), so the count
//! is known up front and the bar's length is honest. `Step` only renames
//! what is going on (compiling, between or inside units) and counts nothing.

/// One progress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The run has this many units of work (sent once, first).
    Total(u64),
    /// A unit of work starts; what it is, in words.
    Start(&'a str),
    /// What is going on now, in words; not a unit of work.
    Step(&'a str),
    /// The unit of work that started last is over.
    Done {
        /// Vectors it ran through C and model (its item's count; 0 for an
        /// item that did not run).
        vectors: u64,
    },
}
