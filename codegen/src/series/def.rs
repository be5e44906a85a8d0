//! The series definition: `kernel-patches/series/NN-name.txt`.
//!
//! ```text
//! subject: KVM: guest_memfd: ...            (the shortlog)
//! operation: invalidate                     (the checker operation it fixes)
//! replace: kvm_gmem_invalidate_begin        (a carried function, whole)
//! edit: <path> <function | struct NAME> | <old> | <new>   (a targeted edit)
//!
//! Changelog paragraphs, in our own words.
//! ```
//!
//! `replace` writes the builtin unit's function of the tree's profile: the
//! very text the checker compiled. `edit` changes one fragment inside a
//! function (or struct) of the tree that gmemforge does not own.

use std::fmt;

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
    "08-mmu-private-rule-kunit.txt"
);

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
    /// Carried functions written whole.
    pub replace: Vec<String>,
    /// Targeted edits. When a patch has any, the first one is its anchor:
    /// where it finds nothing, the tree is not of the shape this patch
    /// changes, and the patch is left out.
    pub edits: Vec<Edit>,
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
        replace: Vec::new(),
        edits: Vec::new(),
        inserts: Vec::new(),
        appends: Vec::new(),
        file_appends: Vec::new(),
        kunit: None,
        requires: Vec::new(),
        changelog: body.trim_end().to_owned(),
    };
    for (i, line) in head.lines().enumerate() {
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| err(i + 1, "`key: value`"))?;
        match key {
            "subject" => def.subject = value.to_owned(),
            "operation" => def.operation = value.to_owned(),
            "replace" => def.replace.push(value.to_owned()),
            "edit" => {
                let parts: Vec<&str> = value.split(" | ").collect();
                let [place, old, new] = parts[..] else {
                    return Err(err(i + 1, "`edit: <path> <function> | <old> | <new>`"));
                };
                let (path, within) = place
                    .split_once(' ')
                    .ok_or_else(|| err(i + 1, "`<path> <function>`"))?;
                def.edits.push(Edit {
                    path: path.into(),
                    within: within.into(),
                    old: unescape(old),
                    new: unescape(new),
                });
            }
            "insert" => {
                let parts: Vec<&str> = value.split(" | ").collect();
                let (before, function, guard) = match parts[..] {
                    [b, f] => (b, f, None),
                    [b, f, g] => (b, f, Some(g.to_owned())),
                    _ => {
                        return Err(err(
                            i + 1,
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
            "requires" => {
                let (path, text) = value
                    .split_once(" | ")
                    .ok_or_else(|| err(i + 1, "`requires: <path> | <text>`"))?;
                def.requires.push((path.into(), unescape(text)));
            }
            "struct" => {
                let (place, text) = value
                    .split_once(" | ")
                    .ok_or_else(|| err(i + 1, "`struct: <path> struct NAME | <lines>`"))?;
                let (path, within) = place
                    .split_once(' ')
                    .ok_or_else(|| err(i + 1, "`<path> struct NAME`"))?;
                def.appends.push(Append {
                    path: path.into(),
                    within: within.into(),
                    text: unescape(text),
                });
            }
            "append" => {
                let (path, text) = value
                    .split_once(" | ")
                    .ok_or_else(|| err(i + 1, "`append: <path> | <text>`"))?;
                def.file_appends.push((path.into(), unescape(text)));
            }
            "kunit" => {
                let mut words = value.split(' ');
                let suite = match words.next() {
                    Some("range") => Suite::Range,
                    Some("rule") => Suite::Rule,
                    _ => return Err(err(i + 1, "`kunit: <range | rule> <function> [<path>]`")),
                };
                let function = words
                    .next()
                    .ok_or_else(|| err(i + 1, "`kunit: <range | rule> <function> [<path>]`"))?;
                def.kunit = Some(Kunit {
                    suite,
                    function: function.into(),
                    path: words.next().map(str::to_owned),
                });
            }
            other => return Err(err(i + 1, &format!("unknown key `{other}`"))),
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

/// `\n` and `\t` in edit texts (definitions are one line per change).
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

/// The whole series, in order.
pub fn series() -> Result<Vec<PatchDef>, DefError> {
    PATCH_FILES.iter().map(|(f, t)| parse(f, t)).collect()
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
            .last()
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
