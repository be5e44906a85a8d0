//! The plan: which patches of the series a tree gets, and the new text of
//! every file each one changes — from the definitions, the tree's files and
//! the review's verdicts. No IO: the CLI reads the tree and reviews it.
//!
//! Every patch ends in one outcome, and every outcome is said (the cover
//! letter, stdout): written (and why), already applied, not needed (its
//! operation conforms), not for this generation of tree, or not written —
//! because a change could not be placed (what was looked for, where), a
//! file it changes is not in the tree, or a patch it depends on was not
//! written.

use std::collections::{BTreeMap, BTreeSet};

use gmem_reference::Profile;

use super::def::{self, PatchDef};
use super::merge::{self, Merged};
use super::{SeriesError, Step, anchor, edit};
use crate::{cparse, template, unit};

/// What the review said of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// C and model agree.
    Conforms,
    /// A counterexample, in words.
    Diverges(String),
    /// The tree does not hold the operation's functions: what was looked
    /// for and not found.
    Missing(String),
    /// The tree's C did not compile (the message).
    Error(String),
}

/// One operation's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpVerdict {
    /// The operation.
    pub operation: String,
    /// Its state.
    pub state: State,
    /// The functions reviewed (or looked for), comma-separated.
    pub functions: String,
}

/// The tree as the planner sees it.
pub struct TreeView<'a> {
    /// Its generation.
    pub profile: Profile,
    /// The files it holds (only those the series reads).
    pub files: &'a BTreeMap<String, String>,
    /// The review's verdicts.
    pub verdicts: &'a [OpVerdict],
}

/// The KUnit suites' files (generated from the vectors).
pub struct Suites {
    /// `kunit::suite()` for the tree's profile.
    pub range: String,
    /// `kunit::rule_suite()`.
    pub rule: String,
}

/// What became of one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written; why it is in the series.
    Written(String),
    /// Every change it makes is in the tree already.
    AlreadyApplied,
    /// Its operation conforms; the functions review ran.
    NotNeeded(String),
    /// For another generation of tree.
    OtherProfile,
    /// A change has no place in the tree: what was looked for, and where.
    Unplaced(String),
    /// A file it changes is not in the tree.
    NoFile(String),
    /// An earlier patch it builds on was not written (its subject).
    Depends(String),
}

impl Outcome {
    /// Whether the patch was needed and is not in the series: the tree
    /// still differs.
    pub fn left_out(&self) -> bool {
        matches!(
            self,
            Outcome::Unplaced(_) | Outcome::NoFile(_) | Outcome::Depends(_)
        )
    }
}

/// The plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The patches to commit, in order.
    pub steps: Vec<Step>,
    /// Every patch of the series with its outcome, in series order.
    pub patches: Vec<(PatchDef, Outcome)>,
}

impl Plan {
    /// Whether a needed patch is not in the series.
    pub fn left_out(&self) -> bool {
        self.patches.iter().any(|(_, o)| o.left_out())
    }
}

/// Every file the series reads: each path a definition names and the file
/// of each builtin function it writes, for every profile.
pub fn files(defs: &[PatchDef]) -> Vec<String> {
    let mut out = BTreeSet::new();
    let units: Vec<unit::Unit> = Profile::ALL
        .iter()
        .filter_map(|p| unit::builtin(*p).ok())
        .collect();
    let site = |name: &str| -> Vec<String> {
        units
            .iter()
            .flat_map(|u| u.functions.iter())
            .filter(|f| f.name == name)
            .map(|f| f.site.clone())
            .collect()
    };
    for d in defs {
        for e in &d.edits {
            out.insert(e.path.clone());
            out.extend(e.alts.iter().map(|a| a.path.clone()));
        }
        out.extend(d.appends.iter().map(|a| a.path.clone()));
        out.extend(d.file_appends.iter().map(|(p, _)| p.clone()));
        out.extend(d.requires.iter().map(|(p, _)| p.clone()));
        for name in d
            .replace
            .iter()
            .chain(d.inserts.iter().map(|i| &i.function))
        {
            out.extend(site(name));
        }
        if let Some(k) = &d.kunit {
            // The tested file, and the test file and `.kunitconfig` a
            // tree may already hold next to it.
            let tested: Vec<String> = k.path.iter().cloned().chain(site(&k.function)).collect();
            for t in &tested {
                out.insert(crate::kunit::test_path(t));
                out.insert(crate::kunit::kunitconfig_path(t));
            }
            out.extend(tested);
        }
    }
    out.into_iter().collect()
}

/// What placing one patch gave.
enum Placement {
    Changes(BTreeMap<String, String>, Vec<String>),
    Already,
    Unplaced(String),
    NoFile(String),
}

/// Plans the series for `tree`.
pub fn plan(tree: &TreeView<'_>, defs: &[PatchDef], suites: &Suites) -> Result<Plan, SeriesError> {
    let unit = unit::builtin(tree.profile).map_err(|e| SeriesError(e.to_string()))?;
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut plan = Plan {
        steps: Vec::new(),
        patches: Vec::new(),
    };
    for d in defs {
        let dep = d.depends.iter().find_map(|dep| {
            plan.patches
                .iter()
                .find(|(e, _)| def::stem(e.file) == dep)
                .filter(|(_, o)| o.left_out() || *o == Outcome::OtherProfile)
        });
        let outcome =
            if !d.profiles.is_empty() && !d.profiles.iter().any(|p| p == tree.profile.name()) {
                Outcome::OtherProfile
            } else if let Some((e, o)) = dep {
                match o {
                    Outcome::OtherProfile => Outcome::OtherProfile,
                    _ => Outcome::Depends(e.subject.clone()),
                }
            } else {
                let verdict = tree.verdicts.iter().find(|v| v.operation == d.operation);
                let state = verdict.map_or_else(
                    || State::Missing("not reviewed".into()),
                    |v| v.state.clone(),
                );
                let functions = verdict.map(|v| v.functions.clone()).unwrap_or_default();
                let placed = place(tree, &unit, d, &current, suites)?;
                match (&state, placed) {
                    (State::Conforms, Placement::Already) => Outcome::AlreadyApplied,
                    (State::Conforms, _) => Outcome::NotNeeded(functions),
                    (_, Placement::Already) => Outcome::AlreadyApplied,
                    (_, Placement::Unplaced(w)) => Outcome::Unplaced(w),
                    (_, Placement::NoFile(p)) => Outcome::NoFile(p),
                    (_, Placement::Changes(files, inserted)) => {
                        let why = why(d, &state, &inserted);
                        current.extend(files.clone());
                        plan.steps.push(Step {
                            def: d.clone(),
                            files,
                        });
                        Outcome::Written(why)
                    }
                }
            };
        plan.patches.push((d.clone(), outcome));
    }
    Ok(plan)
}

/// Why a written patch is in the series: its own operation's verdict, what
/// it adds that the tree lacks.
fn why(d: &PatchDef, state: &State, inserted: &[String]) -> String {
    if let Some(k) = &d.kunit {
        return format!(
            "adds KUnit tests for {}(), which the tree lacks.",
            k.function
        );
    }
    let mut why = match state {
        State::Diverges(c) => format!("{} diverges from the model: {c}", d.operation),
        State::Missing(m) => format!(
            "the tree has no {} operation ({m}); this patch adds part of it.",
            d.operation
        ),
        State::Error(e) => format!("{} did not compile: {e}", d.operation),
        State::Conforms => String::new(),
    };
    if !inserted.is_empty() {
        let names: Vec<String> = inserted.iter().map(|n| format!("{n}()")).collect();
        if !why.ends_with('.') && !why.is_empty() {
            why.push('.');
        }
        why.push_str(&format!(
            " Adds {}, which the tree lacks.",
            names.join(", ")
        ));
    }
    why.trim().to_owned()
}

/// Places every change of `d` on the tree's files as the earlier patches
/// left them.
fn place(
    tree: &TreeView<'_>,
    unit: &unit::Unit,
    d: &PatchDef,
    current: &BTreeMap<String, String>,
    suites: &Suites,
) -> Result<Placement, SeriesError> {
    let mut touched: BTreeMap<String, String> = BTreeMap::new();
    let mut inserted = Vec::new();
    // A path's text as this patch sees it: its own edits so far, then the
    // earlier patches', then the tree's.
    macro_rules! text_if_any {
        ($path:expr) => {{
            let p: &str = $path;
            touched
                .get(p)
                .or_else(|| current.get(p))
                .or_else(|| tree.files.get(p))
                .cloned()
        }};
    }
    macro_rules! text_of {
        ($path:expr) => {{
            let p: &str = $path;
            match text_if_any!(p) {
                Some(t) => t,
                None => return Ok(Placement::NoFile(p.to_owned())),
            }
        }};
    }
    for (path, text) in &d.requires {
        if !text_of!(path).contains(text.as_str()) {
            return Ok(Placement::Unplaced(format!(
                "{path} does not have `{}`, which this patch builds on",
                text.trim()
            )));
        }
    }
    for name in &d.replace {
        let ours = builtin(unit, d, name)?;
        let src = text_of!(&ours.site);
        let Some(f) = cparse::find(&src, name).map_err(|e| SeriesError(e.to_string()))? else {
            return Ok(Placement::Unplaced(format!(
                "{name}(): looked for its one definition in {}",
                ours.site
            )));
        };
        let base = base_of(d, name, tree.profile)?;
        let as_is = format!("{}\n", f.text(&src));
        let (base, theirs) = normalized(d, name, &ours.text, base, as_is.clone());
        // The normalisation is part of the change: with nothing left for
        // the merge to place, the tree still gets our fields.
        let merged = match merge::merge_function(&base, &ours.text, &theirs) {
            Merged::AlreadyThere if theirs != as_is => Merged::Changed(theirs),
            m => m,
        };
        match merged {
            Merged::Changed(t) => {
                let t = t.strip_suffix('\n').unwrap_or(&t);
                let new = format!("{}{t}{}", &src[..f.start], &src[f.end..]);
                touched.insert(ours.site.clone(), new);
            }
            Merged::AlreadyThere => {}
            Merged::Unplaced(w) => {
                return Ok(Placement::Unplaced(format!(
                    "{name}() in {}: {w}",
                    ours.site
                )));
            }
        }
    }
    for (k, e) in d.edits.iter().enumerate() {
        let mut whys: Vec<String> = Vec::new();
        let mut done = false;
        for alt in std::iter::once(e).chain(&e.alts) {
            let src = text_of!(&alt.path);
            let (start, end) = match edit::locate(&alt.path, &src, &alt.within) {
                Ok(r) => r,
                Err(err) => {
                    whys.push(err.0);
                    continue;
                }
            };
            let merged = match &alt.sem {
                Some(sem) => match sem.apply(&src[start..end]) {
                    Ok(anchor::Applied::Changed(t)) => Merged::Changed(t),
                    Ok(anchor::Applied::AlreadyThere) => Merged::AlreadyThere,
                    Err(e) => Merged::Unplaced(e.0),
                },
                None if alt.every => merge::edit_every(&src[start..end], &alt.old, &alt.new),
                None => merge::edit(&src[start..end], &alt.old, &alt.new),
            };
            match merged {
                Merged::Changed(r) => {
                    touched.insert(
                        alt.path.clone(),
                        format!("{}{r}{}", &src[..start], &src[end..]),
                    );
                }
                Merged::AlreadyThere => {}
                Merged::Unplaced(w) => {
                    whys.push(format!(
                        "in {} of {}: {w}",
                        within_words(&alt.within),
                        alt.path
                    ));
                    continue;
                }
            }
            done = true;
            break;
        }
        if !done {
            return Ok(Placement::Unplaced(format!(
                "change {} of {}: {}",
                k + 1,
                d.edits.len(),
                whys.join("; nor, the alternative: ")
            )));
        }
    }
    for ins in &d.inserts {
        let f = builtin(unit, d, &ins.function)?;
        let src = text_of!(&f.site);
        // Already there (a tree that has the function): nothing to add.
        if cparse_has(&src, &ins.function) {
            continue;
        }
        let text = match &ins.guard {
            Some(g) => format!("#ifdef {g}\n{}#endif\n", f.text),
            None => f.text.clone(),
        };
        match edit::insert_before(&f.site, &src, &ins.before, &text) {
            Ok(new) => {
                touched.insert(f.site.clone(), new);
                inserted.push(ins.function.clone());
            }
            Err(e) => {
                return Ok(Placement::Unplaced(format!(
                    "{}() goes before {}: {e}",
                    ins.function, ins.before
                )));
            }
        }
    }
    if let Some(k) = &d.kunit {
        let f = builtin(unit, d, &k.function)?;
        if !cparse_has(&text_of!(&f.site), &k.function) {
            return Ok(Placement::Unplaced(format!(
                "{}(), which the suite tests, is not in {}",
                k.function, f.site
            )));
        }
        // Kernel layout for tests of static functions: `<file>_test.c`
        // next to the tested file, included at its end under the test's
        // symbol, and a `.kunitconfig` beside them (`kunit::layout`).
        let tested = k.path.clone().unwrap_or_else(|| f.site.clone());
        let (config, test) = match k.suite {
            def::Suite::Range => (crate::kunit::CONFIG, &suites.range),
            def::Suite::Rule => (crate::kunit::RULE_CONFIG, &suites.rule),
        };
        let l = crate::kunit::layout(&tested, config, test.clone());
        let src = text_of!(&tested);
        // A file of the tree's own at our test file's path is never
        // overwritten.
        match text_if_any!(&l.test_path) {
            Some(t) if t != l.test => {
                return Ok(Placement::Unplaced(format!(
                    "the suite's file {} exists in the tree with other contents",
                    l.test_path
                )));
            }
            Some(_) => {}
            None => {
                touched.insert(l.test_path.clone(), l.test.clone());
            }
        }
        if !src.contains(&format!("CONFIG_{config}")) {
            touched.insert(tested.clone(), format!("{src}{}", l.include));
        }
        let kc = text_if_any!(&l.kunitconfig_path).unwrap_or_default();
        let merged = crate::kunit::kunitconfig_merge(&kc, &l.kunitconfig_lines);
        if merged != kc {
            touched.insert(l.kunitconfig_path, merged);
        }
    }
    for (path, text) in &d.file_appends {
        let src = text_of!(path);
        if !src.contains(text.trim()) {
            touched.insert(path.clone(), kconfig_append(&src, text));
        }
    }
    for ap in &d.appends {
        let src = text_of!(&ap.path);
        if src.contains(ap.text.trim()) {
            continue;
        }
        match edit::append_to_struct(&ap.path, &src, &ap.within, &ap.text) {
            Ok(new) => {
                touched.insert(ap.path.clone(), new);
            }
            Err(e) => return Ok(Placement::Unplaced(e.0)),
        }
    }
    touched.retain(|p, t| current.get(p).or_else(|| tree.files.get(p)) != Some(t));
    Ok(if touched.is_empty() {
        Placement::Already
    } else {
        Placement::Changes(touched, inserted)
    })
}

/// `base` and `theirs` without the statements `drop:` names, and with
/// each `field:` of `name` set to ours' value
/// (its names turned into theirs': parameters by position, and locals by
/// the other fields of the same initializer, `.slot = memslot`), so the
/// merge takes the tree's own formula there, however spelled, as the one
/// the fix replaces. A side without the field is left as it is: the merge
/// then says what it could not place.
fn normalized(
    d: &PatchDef,
    name: &str,
    ours: &str,
    mut base: String,
    mut theirs: String,
) -> (String, String) {
    let (base_was, theirs_was) = (base.clone(), theirs.clone());
    for (_, _, sem) in d.drops.iter().filter(|(f, _, _)| f == name) {
        for side in [&mut base, &mut theirs] {
            if let Ok(anchor::Applied::Changed(t)) = sem.apply(side) {
                *side = t;
            }
        }
    }
    for f in d.fields.iter().filter(|f| f.function == name) {
        let Ok((os, oe)) = anchor::field_value(ours, &f.ty, &f.field) else {
            continue;
        };
        for side in [&mut base, &mut theirs] {
            let Ok((s, e)) = anchor::field_value(side, &f.ty, &f.field) else {
                continue;
            };
            let map = anchor::names_between(ours, side, &f.ty);
            let value = merge::rename(&ours[os..oe], &map);
            side.replace_range(s..e, &value);
        }
    }
    // A local that only the replaced formula read goes with it.
    let without_unused = |was: &str, now: String| {
        if now == was {
            now
        } else {
            anchor::drop_unused(was, &now)
        }
    };
    (
        without_unused(&base_was, base),
        without_unused(&theirs_was, theirs),
    )
}

fn within_words(within: &str) -> String {
    match within {
        "*" => "the file".to_owned(),
        w if w.starts_with("struct ") => format!("`{w}`"),
        w => match w.strip_prefix("var ") {
            Some(v) => format!("the initializer of {v}"),
            None => format!("{w}()"),
        },
    }
}

/// The function `name` as it was before the fix, on `profile`: from the
/// first of `d.was`'s mutants written for that profile that defines it.
fn base_of(d: &PatchDef, name: &str, profile: Profile) -> Result<String, SeriesError> {
    for m in &d.was {
        let u = unit::mutant(m).map_err(|e| SeriesError(e.to_string()))?;
        if u.profile != profile {
            continue;
        }
        if let Some(f) = u.functions.iter().find(|f| f.name == name) {
            return Ok(f.text.clone());
        }
    }
    Err(SeriesError(format!(
        "{}: no `was:` mutant of profile {} defines {name}()",
        d.file,
        profile.name()
    )))
}

/// The builtin unit's function `name`, which patch `d` writes.
fn builtin<'u>(
    unit: &'u unit::Unit,
    d: &PatchDef,
    name: &str,
) -> Result<&'u template::Function, SeriesError> {
    unit.functions
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| {
            SeriesError(format!(
                "{}: `{name}` is not a builtin {} function",
                d.file,
                unit.profile.name()
            ))
        })
}

/// Whether `src` defines `name` already.
fn cparse_has(src: &str, name: &str) -> bool {
    cparse::find(src, name).ok().flatten().is_some()
}

/// `text` (a Kconfig entry, starting with a blank line) added at the end
/// of `src`, but inside a final `endif` block (arch/x86/kvm/Kconfig ends
/// with `endif # VIRTUALIZATION`), where the file's own entries live.
pub fn kconfig_append(src: &str, text: &str) -> String {
    let body = src.trim_end_matches('\n');
    let last = body.rfind('\n').map_or(0, |i| i + 1);
    if body[last..].starts_with("endif") {
        // Before the blank line that precedes the endif, if any.
        let at = body[..last].trim_end_matches('\n').len() + 1;
        let at = at.min(last);
        format!("{}{text}{}", &src[..at], &src[at..])
    } else {
        format!("{src}{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::kconfig_append;

    #[test]
    fn kconfig_entries_go_inside_a_final_endif_block() {
        let entry = "\nconfig NEW\n\tbool\n";
        assert_eq!(
            kconfig_append("if V\n\nconfig A\n\tbool\n\nendif # V\n", entry),
            "if V\n\nconfig A\n\tbool\n\nconfig NEW\n\tbool\n\nendif # V\n"
        );
        assert_eq!(
            kconfig_append("config A\n\tbool\n", entry),
            "config A\n\tbool\n\nconfig NEW\n\tbool\n"
        );
    }
}
