//! The cover letter's own words, for kernel maintainers: its title,
//! summary and per-patch notes, and its lists of what the series leaves
//! out. No local path and nothing of gmemforge's insides: those go to
//! stdout (`pipeline`).

use gmem_codegen::series::plan::{OpVerdict, Outcome, Plan, State};
use gmem_codegen::series::{Step, email};

use crate::pipeline::ResultReview;

/// What the cover letter is made from.
pub(crate) struct CoverInput<'a> {
    pub(crate) steps: &'a [&'a Step],
    pub(crate) verdicts: &'a [OpVerdict],
    pub(crate) after: &'a ResultReview,
    pub(crate) random: u64,
    /// A git base (Fixes: tags can be found).
    pub(crate) git: bool,
    pub(crate) left_out: bool,
}

/// The cover letter's own words: its title, summary and per-patch notes,
/// for kernel maintainers — no local path, nothing of gmemforge's insides
/// (those go to stdout).
pub(crate) struct CoverText {
    pub(crate) title: String,
    pub(crate) summary: String,
    pub(crate) notes: Vec<(String, String)>,
}

/// An operation's topic in the kernel's words.
fn topic(operation: &str) -> &str {
    match operation {
        "invalidate" => "the invalidation range",
        "classify" => "private faults",
        "get-pfn" | "prepare" => "the prepare hook",
        "gmem-invalidate" => "the free hook",
        "pre-fault" => "KVM_PRE_FAULT_MEMORY",
        "bind" => "binding",
        "punch-hole" => "hole punching",
        other => other,
    }
}

/// A changelog's opening paragraph, up to its last whole sentence (one that
/// leads into a command or a quote below stops short of it).
fn first_sentences(changelog: &str) -> String {
    let para = changelog.split("\n\n").next().unwrap_or_default().trim();
    if para.ends_with('.') {
        return para.to_owned();
    }
    match para.rfind(". ") {
        Some(i) => para[..=i].to_owned(),
        None => para.to_owned(),
    }
}

pub(crate) fn cover_text(c: &CoverInput<'_>) -> CoverText {
    let state = |op: &str| {
        c.verdicts
            .iter()
            .find(|v| v.operation == op)
            .map(|v| &v.state)
    };
    let mut fixes: Vec<&str> = Vec::new();
    let mut adds: Vec<&str> = Vec::new();
    let tests = c.steps.iter().any(|s| s.def.kunit.is_some());
    for s in c.steps.iter().filter(|s| s.def.kunit.is_none()) {
        let (list, t) = if matches!(state(&s.def.operation), Some(State::Missing(_)) | None) {
            (&mut adds, topic(&s.def.operation))
        } else {
            (&mut fixes, topic(&s.def.operation))
        };
        if !list.contains(&t) {
            list.push(t);
        }
    }
    let subjects: Vec<&str> = c.steps.iter().map(|s| s.def.subject.as_str()).collect();
    let title = email::cover_title(&subjects, &fixes, &adds, tests);
    // Per patch: what it does (its changelog's first paragraph) and, for
    // a fix, the case that shows the bug.
    let notes = c
        .steps
        .iter()
        .map(|s| {
            let mut why = first_sentences(&s.def.changelog);
            if s.def.kunit.is_none() {
                if let Some(State::Diverges(ce)) = state(&s.def.operation) {
                    if !ce.is_empty() {
                        why.push_str(&format!(" A case the tree gets wrong: {ce}"));
                    }
                }
            }
            (s.def.subject.clone(), why)
        })
        .collect();
    let area = "guest_memfd and the KVM code around it (the private-fault path \
                and the SEV-SNP hooks)";
    let does = match (fixes.is_empty(), adds.is_empty() && !tests) {
        (false, true) => format!("fixes {area} where this tree behaves wrongly"),
        (false, false) => format!(
            "fixes {area} where this tree behaves wrongly, and adds what the \
             fixes rest on"
        ),
        (true, _) => format!("adds to {area} what this tree lacks"),
    };
    let mut summary = format!(
        "This series {does}. Each patch is summarized below; its changelog \
         has the details."
    );
    // How it was verified: only what conforms is claimed.
    let mut ops: Vec<&str> = Vec::new();
    for s in c.steps {
        if !ops.contains(&s.def.operation.as_str()) {
            ops.push(&s.def.operation);
        }
    }
    // Per topic (two operations may share one), the cases run.
    let mut per_topic: Vec<(&str, u64)> = Vec::new();
    for op in &ops {
        let Some((_, n)) = c.after.conforming.iter().find(|(o, _)| o == op) else {
            continue;
        };
        match per_topic.iter_mut().find(|(t, _)| *t == topic(op)) {
            Some((_, sum)) => *sum += n,
            None => per_topic.push((topic(op), *n)),
        }
    }
    let checked: Vec<String> = per_topic
        .iter()
        .map(|(t, n)| format!("{t} ({n} cases)"))
        .collect();
    if !checked.is_empty() {
        summary.push_str(&format!(
            "\n\nTesting: with the series applied, the changed functions were \
             compiled in userspace and run side by side with an executable \
             reference model of guest_memfd and its SEV-SNP hooks, on shared test \
             vectors, an exhaustive sweep of small inputs and {} seeded random \
             inputs; they agree on every case for {}.",
            c.random,
            email::and_list(&checked.iter().map(String::as_str).collect::<Vec<_>>())
        ));
    }
    if c.left_out {
        summary.push_str(
            "\n\nPatches this tree also needs could not be written; they are \
             listed below.",
        );
    }
    if !c.git {
        summary.push_str(
            "\n\nThe tree is not a git repository: without its history the \
             commits that brought the changed lines are not known, so the \
             fixes carry no Fixes: tags.",
        );
    }
    CoverText {
        title,
        summary,
        notes,
    }
}

/// The cover letter's lists besides the per-patch notes.
pub(crate) fn sections(p: &Plan, verdicts: &[OpVerdict], profile: &str) -> Vec<email::Section> {
    let mut not_written = Vec::new();
    let mut applied = Vec::new();
    let mut not_needed = Vec::new();
    let mut other = Vec::new();
    for (d, o) in &p.patches {
        let s = d.subject.clone();
        match o {
            Outcome::Unplaced(w) => {
                not_written.push((s, Some(format!("{}: not placed: {w}", d.file))))
            }
            Outcome::NoFile(f) => not_written.push((
                s,
                Some(format!(
                    "{}: changes {f}, which the tree does not hold",
                    d.file
                )),
            )),
            Outcome::Depends(on) => not_written.push((
                s,
                Some(format!(
                    "{}: builds on \"{on}\", which is not written",
                    d.file
                )),
            )),
            Outcome::AlreadyApplied => applied.push((s, None)),
            Outcome::NotNeeded(f) => not_needed.push((s, Some(format!("conforming: {f}")))),
            Outcome::OtherProfile => other.push((s, None)),
            Outcome::Written(_) => {}
        }
    }
    // Per operation: conforms (the functions review ran) or missing (what
    // it looked for); diverging ones have their patches' notes.
    let ops: Vec<(String, Option<String>)> = verdicts
        .iter()
        .filter_map(|v| match &v.state {
            State::Conforms => Some((
                format!("{}: conforms", v.operation),
                Some(v.functions.clone()),
            )),
            State::Missing(m) => Some((format!("{}: missing", v.operation), Some(m.clone()))),
            _ => None,
        })
        .collect();
    [
        ("Not written, although this tree needs them:".to_owned(), not_written),
        ("Already applied in this tree:".to_owned(), applied),
        (
            "Left out because this tree already behaves as the model requires (checked by gmemforge review):"
                .to_owned(),
            not_needed,
        ),
        (format!("Not for {profile} trees:"), other),
        ("Operations reviewed in the tree before the series:".to_owned(), ops),
    ]
    .into_iter()
    .filter(|(_, items)| !items.is_empty())
    .map(|(heading, items)| email::Section { heading, items })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_ends_on_a_whole_sentence() {
        assert_eq!(first_sentences("Do a. Do b.\n\nWhy."), "Do a. Do b.");
        assert_eq!(
            first_sentences("Add a suite. A .kunitconfig lets\n\n  kunit.py run"),
            "Add a suite."
        );
        assert_eq!(first_sentences("No stop"), "No stop");
    }
}
