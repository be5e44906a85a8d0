//! The one way the series changes a function the tree already has: a
//! three-way line merge of our change (`base` → `ours`) onto the tree's text
//! (`theirs`).
//!
//! `base` is the shape the change was written against (a targeted edit's
//! old text, or a mutant's whole function: the bug before the fix), `ours`
//! the same with the fix. Their line diff is a list of hunks; each hunk is
//! placed in `theirs` through a line alignment of `base` with `theirs`
//! (longest common subsequence, lines compared with whitespace collapsed):
//!
//! - lines a hunk removes must all be found in `theirs` (blank lines
//!   excepted); they are removed there, and the hunk's new lines go where
//!   the first of them was;
//! - a hunk that only adds goes after the nearest line before it that was
//!   found (or before the nearest one after it);
//! - a hunk whose new lines are already in `theirs` and whose removed lines
//!   are not is already applied.
//!
//! Every line of `theirs` that no hunk removes stays, byte for byte: the
//! tree's own locks, tracepoints, initializer fields, comments and
//! declarations between and around the lines the fix names.

/// What a merge made of `theirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// `theirs` with every hunk placed.
    Changed(String),
    /// Every hunk is already there: nothing to change.
    AlreadyThere,
    /// A hunk has no place in `theirs`: what it looked for, in words.
    Unplaced(String),
}

fn norm(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// Longest common subsequence of `a` and `b` under `eq`: the matched pairs
/// (index in a, index in b), in order.
fn lcs<T>(a: &[T], b: &[T], eq: impl Fn(&T, &T) -> bool) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    // Suffix table: t[i][j] = LCS length of a[i..], b[j..].
    let mut t = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if eq(&a[i], &b[j]) {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if eq(&a[i], &b[j]) && t[i][j] == t[i + 1][j + 1] + 1 {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if t[i + 1][j] >= t[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// One hunk of base → ours: base lines `[b0, b1)` become ours `[o0, o1)`.
#[derive(Debug, Clone, Copy)]
struct Hunk {
    b0: usize,
    b1: usize,
    o0: usize,
    o1: usize,
}

fn hunks(base: &[&str], ours: &[&str]) -> Vec<Hunk> {
    let pairs = lcs(base, ours, |a, b| a == b);
    let mut out = Vec::new();
    let (mut bi, mut oi) = (0, 0);
    for &(b, o) in pairs
        .iter()
        .chain(std::iter::once(&(base.len(), ours.len())))
    {
        if b > bi || o > oi {
            out.push(Hunk {
                b0: bi,
                b1: b,
                o0: oi,
                o1: o,
            });
        }
        bi = b + 1;
        oi = o + 1;
    }
    out
}

/// Whether the non-blank lines of `block` appear in `theirs`, consecutively
/// (blank lines ignored on both sides).
fn contains_block(theirs: &[String], block: &[String]) -> bool {
    let t: Vec<&String> = theirs.iter().filter(|l| !l.is_empty()).collect();
    let b: Vec<&String> = block.iter().filter(|l| !l.is_empty()).collect();
    if b.is_empty() {
        return true;
    }
    t.windows(b.len()).any(|w| w == b.as_slice())
}

fn quote(line: &str) -> String {
    format!("`{}`", line.trim())
}

/// Whether theirs has the change already: every line the change adds, in
/// order (the tree's own lines may sit between them, later patches' too),
/// and none of the lines it removes without putting back elsewhere.
/// Checked first, so that a line the fix moves (a lock taken later) does
/// not read as still to be removed.
fn already(base: &str, ours: &str, theirs: &str) -> bool {
    let (b, o, t) = (lines(base), lines(ours), lines(theirs));
    let n = |v: &[&str]| v.iter().map(|l| norm(l)).collect::<Vec<_>>();
    let (bn, on, tn) = (n(&b), n(&o), n(&t));
    let added: Vec<String> = hunks(&b, &o)
        .iter()
        .flat_map(|h| on[h.o0..h.o1].iter().cloned())
        .filter(|l| !l.is_empty())
        .collect();
    let matched = lcs(&added, &tn, |x, y| x == y);
    if added.is_empty() || matched.len() < added.len() {
        return false;
    }
    let kept: std::collections::BTreeSet<&String> = on.iter().collect();
    let gone: std::collections::BTreeSet<&String> = bn
        .iter()
        .filter(|l| !l.is_empty() && !kept.contains(l))
        .collect();
    let ours_there: std::collections::BTreeSet<usize> = matched.iter().map(|(_, j)| *j).collect();
    !tn.iter()
        .enumerate()
        .any(|(j, l)| !ours_there.contains(&j) && gone.contains(l))
}

/// Merges base → ours onto theirs (see the module documentation).
pub fn merge(base: &str, ours: &str, theirs: &str) -> Merged {
    merge_with(base, ours, theirs, false)
}

/// `merge`; `strict`: every non-blank line of base must be in theirs (a
/// targeted edit's old text is exactly what it looks for, context and all).
fn merge_with(base: &str, ours: &str, theirs: &str, strict: bool) -> Merged {
    let (b, o, t) = (lines(base), lines(ours), lines(theirs));
    let (bn, on, tn): (Vec<String>, Vec<String>, Vec<String>) = (
        b.iter().map(|l| norm(l)).collect(),
        o.iter().map(|l| norm(l)).collect(),
        t.iter().map(|l| norm(l)).collect(),
    );
    if already(base, ours, theirs) {
        return Merged::AlreadyThere;
    }
    // Blank lines align only through their neighbours: they never anchor.
    let align = lcs(&bn, &tn, |x, y| x == y);
    let mut map: Vec<Option<usize>> = vec![None; b.len()];
    for (i, j) in align {
        map[i] = Some(j);
    }
    if strict {
        if let Some(i) = (0..b.len()).find(|&i| !bn[i].is_empty() && map[i].is_none()) {
            return Merged::Unplaced(format!("looked for {}", quote(b[i])));
        }
    }
    // Per line of theirs: removed?, and the lines to put before / after it.
    let mut removed = vec![false; t.len()];
    let mut before: Vec<Vec<&str>> = vec![Vec::new(); t.len() + 1];
    let mut after: Vec<Vec<&str>> = vec![Vec::new(); t.len()];
    let mut changed = false;
    for h in hunks(&b, &o) {
        let new_lines = &o[h.o0..h.o1];
        let required: Vec<usize> = (h.b0..h.b1).filter(|&i| !bn[i].is_empty()).collect();
        let all_found = required.iter().all(|&i| map[i].is_some());
        let applied = contains_block(&tn, &on[h.o0..h.o1]);
        if applied && (required.is_empty() || !all_found) {
            continue;
        }
        if !all_found {
            let missing = required
                .iter()
                .find(|&&i| map[i].is_none())
                .map(|&i| b[i])
                .unwrap_or_default();
            return Merged::Unplaced(format!(
                "looked for {} (a line the change removes or rewrites)",
                quote(missing)
            ));
        }
        changed = true;
        let found: Vec<usize> = (h.b0..h.b1).filter_map(|i| map[i]).collect();
        if let Some(&first) = found.first() {
            for &j in &found {
                removed[j] = true;
            }
            before[first].extend_from_slice(new_lines);
            continue;
        }
        // Only additions: placed by the lines around them, after the one
        // before if it is there, else before the one after.
        let before_it = (0..h.b0).rev().find(|&i| !bn[i].is_empty());
        let after_it = (h.b1..b.len()).find(|&i| !bn[i].is_empty());
        if let Some(j) = before_it
            .filter(|&k| map[k].is_some())
            .and_then(|k| (k..h.b0).rev().find_map(|i| map[i]))
        {
            after[j].extend_from_slice(new_lines);
        } else if let Some(j) = after_it
            .filter(|&k| map[k].is_some())
            .and_then(|k| (h.b1..=k).find_map(|i| map[i]))
        {
            before[j].extend_from_slice(new_lines);
        } else if t.is_empty() {
            before[0].extend_from_slice(new_lines);
        } else {
            let around = before_it.or(after_it).map(|i| b[i]).unwrap_or_default();
            return Merged::Unplaced(format!(
                "looked for {} (the line next to the addition)",
                quote(around)
            ));
        }
    }
    if !changed {
        return Merged::AlreadyThere;
    }
    let mut out = String::with_capacity(theirs.len() + ours.len());
    for (j, line) in t.iter().enumerate() {
        before[j].iter().for_each(|l| out.push_str(l));
        if !removed[j] {
            out.push_str(line);
        }
        after[j].iter().for_each(|l| out.push_str(l));
    }
    before[t.len()].iter().for_each(|l| out.push_str(l));
    Merged::Changed(out)
}

/// A function's parameter names, in order (None when the signature is not
/// one this simple reading understands).
pub(crate) fn params(function: &str) -> Option<Vec<String>> {
    let head = &function[..function.find('{')?];
    let open = head.find('(')?;
    let mut depth = 0;
    let mut parts = vec![String::new()];
    for c in head[open + 1..].chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => break,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    parts
        .iter()
        .map(|p| {
            let p = p.trim_end().trim_end_matches("[]");
            let name: String = p
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
        })
        .collect()
}

/// `text` with each identifier in `map` renamed, except member names
/// (after `.` or `->`).
pub(crate) fn rename(text: &str, map: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            let member = out.ends_with('.') || out.ends_with("->");
            match map.iter().find(|(from, _)| from == word) {
                Some((_, to)) if !member => out.push_str(to),
                _ => out.push_str(word),
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// A whole-function merge: base → ours onto theirs, with base's and ours'
/// parameters first renamed to the names theirs gives them (a tree may
/// call `end` `last`; the fix is the same).
pub fn merge_function(base: &str, ours: &str, theirs: &str) -> Merged {
    let map: Vec<(String, String)> = match (params(base), params(theirs)) {
        (Some(b), Some(t)) if b.len() == t.len() => {
            b.into_iter().zip(t).filter(|(x, y)| x != y).collect()
        }
        _ => Vec::new(),
    };
    if map.is_empty() {
        return merge(base, ours, theirs);
    }
    merge(&rename(base, &map), &rename(ours, &map), theirs)
}

/// A targeted edit (`old` → `new`) inside `region`: exact text first; where
/// the exact text is not there, the same change merged line by line, so
/// that lines of the tree's own between the ones the edit names stay.
pub fn edit(region: &str, old: &str, new: &str) -> Merged {
    let new_there = region.contains(new);
    if new_there && (new.contains(old) || !region.contains(old)) {
        return Merged::AlreadyThere;
    }
    if old.contains('\n') && already(old, new, region) {
        return Merged::AlreadyThere;
    }
    match region.matches(old).count() {
        1 => Merged::Changed(region.replacen(old, new, 1)),
        0 if old.contains('\n') => merge_with(old, new, region, true),
        0 => Merged::Unplaced(format!("looked for {}", quote(old))),
        n => Merged::Unplaced(format!(
            "{} appears {n} times, so where the change goes is ambiguous",
            quote(old)
        )),
    }
}

/// `edit`, for text that may appear more than once in `region`: each
/// place is changed (every declaration of one function). Already there
/// when `old` is nowhere and `new` is.
pub fn edit_every(region: &str, old: &str, new: &str) -> Merged {
    match region.matches(old).count() {
        0 if region.contains(new) => Merged::AlreadyThere,
        0 => Merged::Unplaced(format!("looked for {}", quote(old))),
        _ => Merged::Changed(region.replace(old, new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "\
{
\tbool flush = false;

\tlock();

\tfor_each(x) {
\t\tstruct r r = {
\t\t\t.start = bad_start,
\t\t\t.slot = x,
\t\t};

\t\tif (WARN(bad))
\t\t\tcontinue;

\t\tzap(&r);
\t}
\tunlock();
}
";
    const OURS: &str = "\
{
\tbool flush = false;

\tlock();

\tfor_each(x) {
\t\tstruct r r = {
\t\t\t.start = good_start(x),
\t\t\t.slot = x,
\t\t};

\t\tzap(&r);
\t}
\tunlock();
}
";

    #[test]
    fn keeps_the_trees_own_lines() {
        let theirs = "\
{
\tbool flush = false;
\tint extra = 0;

\tlock();
\ttrace_begin();

\tfor_each(x) {
\t\tstruct r r = {
\t\t\t.start    = bad_start,
\t\t\t.slot = x,
\t\t\t.flags = GMEM,
\t\t};

\t\tif (WARN(bad))
\t\t\tcontinue;

\t\t/* zap it */
\t\tzap(&r);
\t\tstat++;
\t}
\tunlock();
}
";
        let Merged::Changed(out) = merge(BASE, OURS, theirs) else {
            panic!("placed");
        };
        assert_eq!(
            out,
            theirs
                .replace(
                    "\t\t\t.start    = bad_start,\n",
                    "\t\t\t.start = good_start(x),\n"
                )
                .replace("\t\tif (WARN(bad))\n\t\t\tcontinue;\n\n", "")
        );
        assert_eq!(merge(BASE, OURS, &out), Merged::AlreadyThere);
    }

    #[test]
    fn parameters_take_the_trees_names() {
        let base = "static void f(struct s *g, pgoff_t start,\n\t      pgoff_t end)\n{\n\tr.start = bad(start, end);\n\tuse(g);\n}\n";
        let ours = "static void f(struct s *g, pgoff_t start,\n\t      pgoff_t end)\n{\n\tr.start = good(start, end);\n\tuse(g);\n}\n";
        let theirs = "static void f(struct s *g, pgoff_t first, pgoff_t last)\n{\n\tr.start = bad(first, last);\n\tuse(g);\n}\n";
        assert_eq!(
            merge_function(base, ours, theirs),
            Merged::Changed(theirs.replace("bad(", "good("))
        );
    }

    #[test]
    fn moved_lines_and_later_insertions_read_as_applied() {
        // The fix moves lock() into the loop: after it, lock() is still
        // there, and the merge must not take it for a line to remove.
        let base = "{\n\tlock();\n\tfor (;;) {\n\t\tbad();\n\t}\n}\n";
        let ours = "{\n\tfor (;;) {\n\t\tlock();\n\t\tgood();\n\t}\n}\n";
        assert_eq!(merge(base, ours, ours), Merged::AlreadyThere);
        // An insertion after an anchor, with a later patch's lines between.
        let region = "#endif\n\n/* later */\nint later;\n\n/* ours */\nint ours;\n";
        assert_eq!(
            edit(region, "#endif\n", "#endif\n\n/* ours */\nint ours;\n"),
            Merged::AlreadyThere
        );
    }

    #[test]
    fn an_addition_needs_its_context() {
        let old = "\tdecl;\n\tctx();\n\tend();\n";
        let new = "\tdecl;\n\tctx();\n\tadded();\n\tend();\n";
        let theirs = "{\n\tdecl;\n\tother();\n\tend();\n}\n";
        // An edit's old text is what it looks for, every line of it.
        assert_eq!(
            edit(theirs, old, new),
            Merged::Unplaced("looked for `ctx();`".into())
        );
        // A whole function's additions are placed by either neighbour.
        assert_eq!(
            merge(old, new, theirs),
            Merged::Changed("{\n\tdecl;\n\tother();\n\tadded();\n\tend();\n}\n".into())
        );
    }

    #[test]
    fn a_missing_line_is_named() {
        let theirs = BASE.replace("\t\t\t.start = bad_start,\n", "\t\t\t.start = other,\n");
        let Merged::Unplaced(why) = merge(BASE, OURS, &theirs) else {
            panic!("unplaced");
        };
        assert!(why.contains("`.start = bad_start,`"), "{why}");
    }

    #[test]
    fn additions_go_next_to_their_context() {
        let old = "\tif (!x)\n\t\treturn -E;\n";
        let new = "\tif (!x)\n\t\treturn -E;\n\n\tset = 1;\n";
        let theirs = "{\n\tint y;\n\n\tif (!x)\n\t\t/* why */\n\t\treturn -E;\n\tgo();\n}\n";
        assert_eq!(
            edit(theirs, old, new),
            Merged::Changed(
                "{\n\tint y;\n\n\tif (!x)\n\t\t/* why */\n\t\treturn -E;\n\n\tset = 1;\n\tgo();\n}\n"
                    .into()
            )
        );
        assert_eq!(
            edit(theirs, "u32 e,", "u64 e,"),
            Merged::Unplaced("looked for `u32 e,`".into())
        );
        assert_eq!(edit("f(u64 e,", "u32 e,", "u64 e,"), Merged::AlreadyThere);
        assert_eq!(
            edit("f(u32 e, u32 e,", "u32 e,", "u64 e,").clone(),
            Merged::Unplaced(
                "`u32 e,` appears 2 times, so where the change goes is ambiguous".into()
            )
        );
    }
}
