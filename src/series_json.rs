//! `series --json`: the run as one JSON document on stdout — every patch's
//! outcome, the verdicts before the series and of its result, the tags a
//! fix carries, and what the tool could not check (which stays out of the
//! email), so scripts need not parse the human listing.

use std::path::Path;

use gmem_codegen::series::plan::{Outcome, State};
use gmem_series::pipeline::Made;
use serde_json::{Value, json};

fn outcome(o: &Outcome) -> (&'static str, Option<&str>) {
    match o {
        Outcome::Written(why) => ("written", Some(why)),
        Outcome::AlreadyApplied => ("already-applied", None),
        Outcome::NotNeeded(functions) => ("not-needed", Some(functions)),
        Outcome::OtherProfile => ("other-generation", None),
        Outcome::Unplaced(what) => ("not-placed", Some(what)),
        Outcome::NoFile(path) => ("file-not-in-tree", Some(path)),
        Outcome::Depends(subject) => ("depends-on-unwritten", Some(subject)),
    }
}

fn state(s: &State) -> (&'static str, Option<&str>) {
    match s {
        State::Conforms => ("conforms", None),
        State::Diverges(c) => ("diverges", Some(c)),
        State::Missing(m) => ("missing", Some(m)),
        State::Error(e) => ("error", Some(e)),
    }
}

/// The document for `made`, whose files were written into `out` (none
/// when it has none).
pub fn document(made: &Made, out: &Path) -> Value {
    let patches: Vec<Value> = made
        .plan
        .patches
        .iter()
        .map(|(d, o)| {
            let (kind, detail) = outcome(o);
            let commit = made.committed.iter().find(|c| c.def.file == d.file);
            let trailers: Vec<&str> = commit
                .map(|c| {
                    c.message
                        .lines()
                        .filter(|l| l.starts_with("Fixes: ") || l.starts_with("Cc: stable"))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "definition": d.file,
                "subject": d.subject,
                "operation": d.operation,
                "outcome": kind,
                "detail": detail,
                "trailers": trailers,
                "no_fixes_tag": commit.and_then(|c| c.fixes_gap.as_deref()),
            })
        })
        .collect();
    let before: Vec<Value> = made
        .before
        .iter()
        .map(|v| {
            let (kind, detail) = state(&v.state);
            json!({"operation": v.operation, "verdict": kind, "detail": detail, "functions": v.functions})
        })
        .collect();
    let not_checked: Vec<Value> = made
        .before
        .iter()
        .filter_map(|v| match &v.state {
            State::Error(e) => Some(json!({
                "operation": v.operation,
                "before_the_series": true,
                "why": e.lines().next().unwrap_or_default(),
            })),
            _ => None,
        })
        .collect();
    json!({
        "profile": made.profile,
        "exit": made.code,
        "files": made
            .files
            .iter()
            .map(|(name, _)| out.join(name).display().to_string())
            .collect::<Vec<_>>(),
        "patches": patches,
        "before": before,
        "after": {
            "still": made.still,
            "missing": made
                .missing_after
                .iter()
                .map(|(o, w)| json!({"operation": o, "why": w}))
                .collect::<Vec<_>>(),
        },
        "not_checked": not_checked,
        "build": made.build_report,
    })
}
