//! The series definition: `kernel-patches/series/NN-name.txt`.
//!
//! ```text
//! subject: KVM: guest_memfd: ...            (the shortlog)
//! operation: invalidate                     (the checker operation it fixes)
//! profile: gmem-solo-2023                   (only for trees of this generation)
//! depends: 04a-gmem-prepare-hook            (an earlier patch it builds on)
//! was: solo-2023-range                      (a mutant: the replaced function before the fix)
//! replace: kvm_gmem_invalidate_begin        (a carried function)
//! edit: <path> <function | struct NAME | var NAME | *> | <old> | <new>
//! edit: <path> <function | ...>             (the same, any C, as blocks:)
//! -old line                                 (every `-` line: old text)
//! +new line                                 (every `+` line: new text)
//! \                                         (the block before has no final newline)
//! alt: <path> <function>                    (an alternative to the edit before)
//! every: <path> <place> | <old> | <new>     (an edit of each place `old` is)
//! at: <path> <function>                     (a statement patch, anchor/:)
//! =*$4 = _;                                 (a statement that stays)
//! ...                                       (any statements between)
//! -$ret = 0;                                (a statement that goes)
//! +<TAB>$ret = hook($1);                 (a line added where it stands)
//! alt-at: <path> <function>                 (a statement patch as alternative)
//! field: <function> <TYPE>.<FIELD>          (`replace`: ours, whatever the tree's)
//! drop: <function> <statement pattern>      (`replace`: the tree's goes, in any form)
//!
//! Changelog paragraphs, in our own words.
//! ```
//!
//! A block line is its prefix character and then the C line exactly, so a
//! block holds any C (` | `, backslashes, `\n` in strings). The one-line
//! form is literal too (no escapes); it cannot hold ` | ` or a newline.
//!
//! `replace` changes the tree's function by merging the mutant's function
//! (`was`, of the tree's profile) → the builtin unit's, so only the lines
//! the fix names change (`merge.rs`); the builtin text is written whole
//! only where the tree has no such function. `edit` changes one fragment
//! inside a function (or struct, initializer, file) of the tree. Every
//! edit is required, unless it has `alt`ernatives: then the first that
//! places is.

use std::fmt;

use super::anchor::SemPatch;

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../kernel-patches/series/", $path)))),*]
    };
}

/// Every patch definition, in series order.
pub const PATCH_FILES: &[(&str, &str)] = embed!(
    "01-gmem-invalidate-range.txt",
    "02-mmu-full-error-code.txt",
    "03-mmu-configurable-private-rule.txt",
    "04a-gmem-prepare-hook.txt",
    "04b-sev-gmem-prepare.txt",
    "05a-gmem-free-folio-hook.txt",
    "05b-sev-gmem-invalidate.txt",
    "06a-prefault-ioctl.txt",
    "06b-x86-prefault.txt",
    "07-gmem-invalidate-kunit.txt",
    "08-mmu-private-rule-kunit.txt",
    "09-gmem-bind-unsigned.txt",
    "10-selftest-bind-offset.txt"
);

/// The operations the checker registers (`gmem_checker::ops::OPERATIONS`;
/// a test holds the two lists equal). An `operation:` not in it is a
/// parse error, not a patch that never applies.
pub const OPERATIONS: &[&str] = &[
    "invalidate",
    "classify",
    "prepare",
    "gmem-invalidate",
    "pre-fault",
    "bind",
    "punch-hole",
    "get-pfn",
];

/// A targeted edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// File in the tree.
    pub path: String,
    /// The function, or `struct NAME`, the edit stays inside.
    pub within: String,
    /// Text to find (exactly once inside `within`).
    pub old: String,
    /// Replacement.
    pub new: String,
    /// Alternatives (`alt:`), tried in order when this one does not place.
    pub alts: Vec<Edit>,
    /// A statement patch (`at:`, `alt-at:`): placed by C structure
    /// (`anchor/`) instead of by `old`/`new`, which are then empty.
    pub sem: Option<SemPatch>,
    /// `every:` — `old` may appear more than once, and each is changed
    /// (every declaration of a function whose parameter type changes).
    pub every: bool,
}

/// `field: <function> <TYPE>.<FIELD>`: in the `replace`d function, the
/// value of `.FIELD` in a `struct TYPE` initializer is ours whatever the
/// tree spells there (put in before the merge; `anchor::field_value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The replaced function.
    pub function: String,
    /// The struct's name.
    pub ty: String,
    /// The member.
    pub field: String,
}

/// A carried function written before an anchor function (a new function),
/// in the file the builtin unit's function belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// The function the new one goes before (`$`: the end of the file).
    pub before: String,
    /// The builtin unit's function to write.
    pub function: String,
    /// A config symbol the function is built under (`#ifdef` around it),
    /// when its only caller is.
    pub guard: Option<String>,
}

/// Members appended to a struct, before its closing brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// File in the tree.
    pub path: String,
    /// `struct NAME`.
    pub within: String,
    /// The lines (each ending in a newline).
    pub text: String,
}

/// Which generated KUnit suite a patch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The invalidation range helpers (`kunit::embedded`).
    Range,
    /// The configurable private-fault rule (`kunit::rule_embedded`).
    Rule,
}

/// `kunit: <range | rule> <function> [<path>]`: the suite, the function it
/// tests, and the file it is appended to (default: the file of the builtin
/// unit's function). The function must be in the tree by then (an earlier
/// patch may add it); where it is not, the patch is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kunit {
    /// The suite.
    pub suite: Suite,
    /// The function it tests.
    pub function: String,
    /// The file it goes to, when not the function's own.
    pub path: Option<String>,
}

/// One patch of the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchDef {
    /// Definition file name.
    pub file: &'static str,
    /// Shortlog.
    pub subject: String,
    /// Checker operation whose divergence this patch fixes.
    pub operation: String,
    /// Profiles (tree generations) the patch is for; empty: every one.
    pub profiles: Vec<String>,
    /// Earlier patches (definition file names without `.txt`) it builds on:
    /// where one of them is not in the tree and cannot be written, this
    /// one is not written either.
    pub depends: Vec<String>,
    /// Mutants holding the `replace`d functions as they were before the
    /// fix, one per profile: the merge's base.
    pub was: Vec<String>,
    /// Carried functions written whole.
    pub replace: Vec<String>,
    /// Targeted edits, every one required.
    pub edits: Vec<Edit>,
    /// Initializer fields the `replace` merge takes whole from ours.
    pub fields: Vec<Field>,
    /// `drop: <function> <statement pattern>`: a statement the fix removes
    /// from the `replace`d function in whatever form the tree has it (a
    /// WARN-and-skip), taken out of `was:` and the tree's text before the
    /// merge, so the merge needs no exact copy of it: (function, the
    /// pattern as written, the one-line statement patch that removes it).
    pub drops: Vec<(String, String, SemPatch)>,
    /// New functions.
    pub inserts: Vec<Insert>,
    /// Struct members.
    pub appends: Vec<Append>,
    /// Text appended to the end of a file: (path, text).
    pub file_appends: Vec<(String, String)>,
    /// A KUnit suite generated from the vectors.
    pub kunit: Option<Kunit>,
    /// Text an earlier patch (or the tree) must have put in a file for
    /// this patch to apply: (path, text). Without it, the patch is left out.
    pub requires: Vec<(String, String)>,
    /// Changelog body (without sign-off).
    pub changelog: String,
}

/// A malformed definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError(pub String);

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DefError {}

/// Parses one definition.
pub fn parse(file: &'static str, text: &str) -> Result<PatchDef, DefError> {
    let err = |line: usize, m: &str| DefError(format!("kernel-patches/series/{file}:{line}: {m}"));
    let (head, body) = text
        .split_once("\n\n")
        .ok_or_else(|| err(1, "a header, a blank line, then the changelog"))?;
    let mut def = PatchDef {
        file,
        subject: String::new(),
        operation: String::new(),
        profiles: Vec::new(),
        depends: Vec::new(),
        was: Vec::new(),
        replace: Vec::new(),
        edits: Vec::new(),
        fields: Vec::new(),
        drops: Vec::new(),
        inserts: Vec::new(),
        appends: Vec::new(),
        file_appends: Vec::new(),
        kunit: None,
        requires: Vec::new(),
        changelog: body.trim_end().to_owned(),
    };
    let lines: Vec<&str> = head.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let n = i + 1;
        i += 1;
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| err(n, "`key: value`, or a `-`/`+` block line after a key"))?;
        if key == "at" || key == "alt-at" {
            // A statement patch: `=`, `-`, `+` and `...` lines.
            let mut block = Vec::new();
            while i < lines.len()
                && (lines[i].starts_with(['=', '-', '+']) || lines[i].trim() == "...")
            {
                block.push(lines[i]);
                i += 1;
            }
            let sem = SemPatch::parse(&block).map_err(|m| err(n, &m))?;
            let (path, within) = value
                .split_once(' ')
                .ok_or_else(|| err(n, "`<path> <function>`"))?;
            let e = Edit {
                path: path.into(),
                within: within.into(),
                old: String::new(),
                new: String::new(),
                alts: Vec::new(),
                sem: Some(sem),
                every: false,
            };
            if key == "alt-at" {
                def.edits
                    .last_mut()
                    .ok_or_else(|| err(n, "`alt-at:` follows an `edit:` or `at:`"))?
                    .alts
                    .push(e);
            } else {
                def.edits.push(e);
            }
            continue;
        }
        // The `-` (old) and `+` (new) block lines after this key, if any.
        let mut old: Option<String> = None;
        let mut new: Option<String> = None;
        let mut last: Option<char> = None;
        while i < lines.len() {
            let l = lines[i];
            let Some(c) = l.chars().next().filter(|c| matches!(c, '-' | '+' | '\\')) else {
                break;
            };
            i += 1;
            let slot = match (c, last) {
                ('\\', Some('-')) => {
                    pop_newline(&mut old);
                    continue;
                }
                ('\\', Some('+')) => {
                    pop_newline(&mut new);
                    continue;
                }
                ('\\', _) => return Err(err(i, "`\\` follows a `-` or `+` line")),
                ('-', Some('+')) => return Err(err(i, "`-` lines come before `+` lines")),
                ('-', _) => &mut old,
                _ => &mut new,
            };
            let s = slot.get_or_insert_with(String::new);
            s.push_str(&l[1..]);
            s.push('\n');
            last = Some(c);
        }
        let block = old.is_some() || new.is_some();
        // `<place> | <a> | <b>` on one line, or `<place>` and a block.
        let split = |parts: usize| -> Result<Vec<String>, DefError> {
            if block {
                Ok(vec![value.to_owned()])
            } else {
                let v: Vec<String> = value.splitn(parts, " | ").map(str::to_owned).collect();
                if v.len() == parts {
                    Ok(v)
                } else {
                    Err(err(
                        n,
                        &format!("`{key}:` needs {parts} parts separated by ` | `, or a block"),
                    ))
                }
            }
        };
        match key {
            "subject" => def.subject = value.to_owned(),
            "operation" => {
                if !OPERATIONS.contains(&value) {
                    return Err(err(
                        n,
                        &format!(
                            "`{value}` is no checker operation (one of {})",
                            OPERATIONS.join(", ")
                        ),
                    ));
                }
                def.operation = value.to_owned();
            }
            "profile" => {
                if !gmem_reference::Profile::ALL
                    .iter()
                    .any(|p| p.name() == value)
                {
                    return Err(err(n, &format!("`{value}` is no profile")));
                }
                def.profiles.push(value.to_owned());
            }
            "depends" => def.depends.push(value.to_owned()),
            "was" => def.was.push(value.to_owned()),
            "replace" => def.replace.push(value.to_owned()),
            "edit" | "alt" | "every" => {
                let v = split(3)?;
                let (old, new) = if block {
                    match (&old, &new) {
                        (Some(o), Some(w)) => (o.clone(), w.clone()),
                        _ => return Err(err(n, "an edit block needs `-` and `+` lines")),
                    }
                } else {
                    (v[1].clone(), v[2].clone())
                };
                let (path, within) = v[0]
                    .split_once(' ')
                    .ok_or_else(|| err(n, "`<path> <function>`"))?;
                let e = Edit {
                    path: path.into(),
                    within: within.into(),
                    old,
                    new,
                    alts: Vec::new(),
                    sem: None,
                    every: key == "every",
                };
                if key == "alt" {
                    def.edits
                        .last_mut()
                        .ok_or_else(|| err(n, "`alt:` follows an `edit:`"))?
                        .alts
                        .push(e);
                } else {
                    def.edits.push(e);
                }
            }
            "field" => {
                let (function, place) = value
                    .split_once(' ')
                    .ok_or_else(|| err(n, "`field: <function> <TYPE>.<FIELD>`"))?;
                let (ty, field) = place
                    .split_once('.')
                    .ok_or_else(|| err(n, "`field: <function> <TYPE>.<FIELD>`"))?;
                if !def.replace.iter().any(|r| r == function) {
                    return Err(err(n, "`field:` names a function `replace:` merges"));
                }
                def.fields.push(Field {
                    function: function.into(),
                    ty: ty.into(),
                    field: field.into(),
                });
            }
            "drop" => {
                let (function, pattern) = value
                    .split_once(' ')
                    .ok_or_else(|| err(n, "`drop: <function> <statement pattern>`"))?;
                if !def.replace.iter().any(|r| r == function) {
                    return Err(err(n, "`drop:` names a function `replace:` merges"));
                }
                let line = format!("-{pattern}");
                let sem = SemPatch::parse(&[line.as_str()]).map_err(|m| err(n, &m))?;
                def.drops.push((function.into(), pattern.into(), sem));
            }
            "insert" => {
                let parts: Vec<&str> = value.split(" | ").collect();
                let (before, function, guard) = match parts[..] {
                    [b, f] => (b, f, None),
                    [b, f, g] => (b, f, Some(g.to_owned())),
                    _ => {
                        return Err(err(
                            n,
                            "`insert: <before | $> | <function> [| <CONFIG_SYMBOL>]`",
                        ));
                    }
                };
                def.inserts.push(Insert {
                    before: before.into(),
                    function: function.into(),
                    guard,
                });
            }
            "requires" | "struct" | "append" => {
                let v = split(2)?;
                let text = if block {
                    match (&old, &new) {
                        (None, Some(w)) => w.clone(),
                        _ => return Err(err(n, &format!("a `{key}:` block has `+` lines only"))),
                    }
                } else {
                    v[1].clone()
                };
                let place = v[0].clone();
                match key {
                    "requires" => def.requires.push((place, text)),
                    "append" => def.file_appends.push((place, text)),
                    _ => {
                        let (path, within) = place
                            .split_once(' ')
                            .ok_or_else(|| err(n, "`<path> struct NAME`"))?;
                        def.appends.push(Append {
                            path: path.into(),
                            within: within.into(),
                            text,
                        });
                    }
                }
            }
            "kunit" => {
                let mut words = value.split(' ');
                let suite = match words.next() {
                    Some("range") => Suite::Range,
                    Some("rule") => Suite::Rule,
                    _ => return Err(err(n, "`kunit: <range | rule> <function> [<path>]`")),
                };
                let function = words
                    .next()
                    .ok_or_else(|| err(n, "`kunit: <range | rule> <function> [<path>]`"))?;
                def.kunit = Some(Kunit {
                    suite,
                    function: function.into(),
                    path: words.next().map(str::to_owned),
                });
            }
            other => return Err(err(n, &format!("unknown key `{other}`"))),
        }
        if block
            && !matches!(
                key,
                "edit" | "alt" | "every" | "requires" | "struct" | "append"
            )
        {
            return Err(err(n, &format!("`{key}:` takes no block")));
        }
    }
    if def.subject.is_empty()
        || def.operation.is_empty()
        || (def.replace.is_empty()
            && def.edits.is_empty()
            && def.inserts.is_empty()
            && def.kunit.is_none())
    {
        return Err(err(
            1,
            "needs subject, operation, and at least one replace or edit",
        ));
    }
    if !def.replace.is_empty() && def.was.is_empty() {
        return Err(err(
            1,
            "`replace:` needs `was:` (the function before the fix)",
        ));
    }
    // maintainer-kvm-x86.rst: a fixed prefix, capitalised, no period, <= 75.
    let prefixes = [
        "KVM: x86/mmu: ",
        "KVM: SVM: ",
        "KVM: SEV: ",
        "KVM: x86: ",
        "KVM: guest_memfd: ",
        "KVM: selftests: ",
        "KVM: ",
    ];
    let rest = prefixes
        .iter()
        .find_map(|p| def.subject.strip_prefix(p))
        .ok_or_else(|| err(1, "subject needs a KVM shortlog prefix"))?;
    if def.subject.len() > 75
        || def.subject.ends_with('.')
        || !rest.starts_with(|c: char| c.is_ascii_uppercase())
    {
        return Err(err(
            1,
            "subject: capitalised after the prefix, no final period, at most 75 characters",
        ));
    }
    if def.changelog.lines().any(|l| l.chars().count() > 75) {
        return Err(err(1, "changelog lines are wrapped at 75 columns"));
    }
    Ok(def)
}

fn pop_newline(s: &mut Option<String>) {
    if let Some(s) = s {
        if s.ends_with('\n') {
            s.pop();
        }
    }
}

/// The definition's name: its file name without `.txt`.
pub fn stem(file: &str) -> &str {
    file.strip_suffix(".txt").unwrap_or(file)
}

/// The whole series, in order. `depends` must name an earlier patch, and
/// `was` a known mutant.
pub fn series() -> Result<Vec<PatchDef>, DefError> {
    let defs: Vec<PatchDef> = PATCH_FILES
        .iter()
        .map(|(f, t)| parse(f, t))
        .collect::<Result<_, _>>()?;
    let mutants = crate::unit::mutant_names();
    for (k, d) in defs.iter().enumerate() {
        for dep in &d.depends {
            if !defs[..k].iter().any(|e| stem(e.file) == dep) {
                return Err(DefError(format!(
                    "kernel-patches/series/{}: depends on `{dep}`, which is no earlier patch",
                    d.file
                )));
            }
        }
        for m in &d.was {
            if !mutants.contains(&m.as_str()) {
                return Err(DefError(format!(
                    "kernel-patches/series/{}: was: `{m}` is no mutant",
                    d.file
                )));
            }
        }
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_parses() {
        let s = series().expect("parses");
        assert_eq!(s.len(), PATCH_FILES.len());
        assert_eq!(s[0].replace, ["kvm_gmem_invalidate_begin"]);
        assert_eq!(s[1].edits.len(), 3);
        assert_eq!(s[1].edits[0].old, "u32 err,");
        let k = s
            .iter()
            .find(|d| d.file == "08-mmu-private-rule-kunit.txt")
            .and_then(|d| d.kunit.clone())
            .expect("a KUnit patch");
        assert_eq!(k.suite, Suite::Rule);
        assert_eq!(k.path.as_deref(), Some("arch/x86/kvm/mmu/mmu.c"));
    }

    #[test]
    fn every_definition_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../kernel-patches/series");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<String> = PATCH_FILES.iter().map(|(f, _)| (*f).to_owned()).collect();
        assert_eq!(on_disk, listed);
    }

    /// Definitions and template roles agree: each `carried` function is
    /// written by exactly one patch (common templates serve both profiles:
    /// one patch, for the profiles it is for), each `edited` one is changed
    /// by some edit and written by none, a `context` one by none; every
    /// function a patch writes is `carried` in the profiles it is for, and
    /// a replaced function has its shape before the fix there.
    #[test]
    fn definitions_and_template_roles_agree() {
        use crate::template::Role;
        let defs = series().expect("series");
        let for_profile = |d: &PatchDef, p: gmem_reference::Profile| {
            d.profiles.is_empty() || d.profiles.iter().any(|x| x == p.name())
        };
        let mut carried = std::collections::BTreeSet::new();
        for p in gmem_reference::Profile::ALL {
            let unit = crate::unit::builtin(p).expect("unit");
            let mine: Vec<&PatchDef> = defs.iter().filter(|d| for_profile(d, p)).collect();
            for f in &unit.functions {
                let writers: Vec<&str> = mine
                    .iter()
                    .filter(|d| {
                        d.replace.contains(&f.name)
                            || d.inserts.iter().any(|i| i.function == f.name)
                    })
                    .map(|d| d.file)
                    .collect();
                let edited = mine.iter().any(|d| {
                    d.edits
                        .iter()
                        .flat_map(|e| std::iter::once(e).chain(&e.alts))
                        .any(|e| e.within == f.name)
                });
                match f.role {
                    Role::Carried => {
                        carried.insert(f.name.clone());
                        assert!(
                            writers.len() <= 1,
                            "{}: carried {}() is written by {writers:?}",
                            p.name(),
                            f.name
                        );
                    }
                    Role::Edited => assert!(
                        edited && writers.is_empty(),
                        "{}: edited {}(): edited {edited}, written by {writers:?}",
                        p.name(),
                        f.name
                    ),
                    Role::Context => assert!(
                        writers.is_empty(),
                        "{}: context {}() is written by {writers:?}",
                        p.name(),
                        f.name
                    ),
                }
            }
            for d in &mine {
                for name in d
                    .replace
                    .iter()
                    .chain(d.inserts.iter().map(|i| &i.function))
                {
                    assert!(
                        unit.functions
                            .iter()
                            .any(|f| &f.name == name && f.role == Role::Carried),
                        "{}: {} writes {name}(), no carried {} function",
                        d.file,
                        p.name(),
                        p.name()
                    );
                }
                for name in &d.replace {
                    let before = d.was.iter().any(|m| {
                        crate::unit::mutant(m).is_ok_and(|u| u.profile == p && u.defines(name))
                    });
                    assert!(
                        before,
                        "{}: no `was:` mutant of {} defines {name}()",
                        d.file,
                        p.name()
                    );
                }
                if let Some(k) = &d.kunit {
                    assert!(unit.defines(&k.function), "{}: {}", d.file, k.function);
                }
            }
        }
        for name in &carried {
            let writers: Vec<&str> = defs
                .iter()
                .filter(|d| {
                    d.replace.contains(name) || d.inserts.iter().any(|i| &i.function == name)
                })
                .map(|d| d.file)
                .collect();
            assert_eq!(
                writers.len(),
                1,
                "carried {name}() is written by {writers:?}"
            );
        }
    }

    /// Patch 4a's call finds its place in kvm_gmem_get_pfn() of the 2023
    /// shapes: `r = 0;` before `out_unlock:` (the fixture), `ret = 0;`
    /// before the unlock (6.8's shape), and returning 0 after unlocking
    /// (written here by us in that shape, with a stat line of the tree's
    /// own); a function with no result variable at all is not placed.
    #[test]
    fn the_prepare_call_has_a_place_in_each_2023_shape() {
        use crate::series::anchor::Applied;
        let defs = series().expect("series");
        let d = defs
            .iter()
            .find(|d| d.file == "04a-gmem-prepare-hook.txt")
            .expect("4a");
        let e = &d.edits[0];
        let recipes: Vec<_> = std::iter::once(e)
            .chain(&e.alts)
            .map(|a| a.sem.clone().expect("a statement patch"))
            .collect();
        let place = |f: &str| -> Option<(usize, String)> {
            recipes
                .iter()
                .enumerate()
                .find_map(|(k, r)| match r.apply(f) {
                    Ok(Applied::Changed(t)) => Some((k, t)),
                    _ => None,
                })
        };
        let head = "int get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot, gfn_t gfn,\n\t    kvm_pfn_t *pfn, int *max_order)\n{\n\tstruct folio *folio;\n\tstruct file *file;\n\tint r;\n\n\tfile = get(slot);\n\t*pfn = page_to_pfn(page);\n\t*max_order = 0;\n\tstat_inc(kvm);\n\n";
        let early = format!(
            "{head}\tfolio_unlock(folio);\n\tfput(file);\n\n\treturn 0;\nout:\n\treturn r;\n}}\n"
        );
        let (k, out) = place(&early).expect("placed");
        assert_eq!(k, 2);
        assert!(out.contains("\tstat_inc(kvm);\n\n\t/*"), "{out}");
        assert!(out.contains("folio_order(folio));\n\n\tfolio_unlock(folio);\n\tif (r)\n\t\tfolio_put(folio);\n\tfput(file);\n\n\treturn r;\nout:"), "{out}");
        assert!(
            recipes
                .iter()
                .any(|r| r.apply(&out) == Ok(Applied::AlreadyThere))
        );
        let label =
            format!("{head}\tr = 0;\n\nout_unlock:\n\tfolio_unlock(folio);\n\treturn r;\n}}\n");
        assert_eq!(place(&label).expect("placed").0, 1);
        let unlock = format!("{head}\tr = 0;\n\tfolio_unlock(folio);\n\treturn r;\n}}\n");
        let (k, out) = place(&unlock).expect("placed");
        assert_eq!(k, 0);
        assert!(
            out.contains("\tfolio_unlock(folio);\n\tif (r)\n\t\tfolio_put(folio);\n\treturn r;"),
            "{out}"
        );
        let none = early
            .replace("\tint r;\n", "")
            .replace("\treturn r;\n", "\treturn -EIO;\n");
        assert!(place(&none).is_none());
    }

    #[test]
    fn blocks_hold_any_c() {
        let d = parse(
            "x",
            "subject: KVM: x86: Test things\noperation: classify\nedit: a.c f\n-\tx = a | b;\n+\tpr_info(\"a | b\\n\");\n\\\nalt: a.c g\n-y\n+z\nstruct: a.h struct s\n+\tint m;\n\nBody.",
        )
        .expect("parses");
        assert_eq!(d.edits[0].old, "\tx = a | b;\n");
        assert_eq!(d.edits[0].new, "\tpr_info(\"a | b\\n\");");
        assert_eq!(d.edits[0].alts[0].within, "g");
        assert_eq!(d.appends[0].text, "\tint m;\n");
        // An operation the checker does not register is a parse error.
        let e = parse(
            "x",
            "subject: KVM: x86: Test things\noperation: clasify\nedit: a.c f | a | b\n\nBody.",
        )
        .expect_err("refused");
        assert!(e.0.contains("`clasify` is no checker operation"), "{e}");
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(
            parse(
                "x",
                "subject: KVM: x86: fix things.\noperation: a\nreplace: f\n\nBody."
            )
            .is_err()
        );
        assert!(
            parse(
                "x",
                "subject: Fix things\noperation: a\nreplace: f\n\nBody."
            )
            .is_err()
        );
        assert!(parse("x", "subject: KVM: x86: Fix things\noperation: a\n\nBody.").is_err());
        assert!(
            parse(
                "x",
                "subject: KVM: x86: Test things\noperation: a\nkunit: other f\n\nBody."
            )
            .is_err()
        );
    }
}
