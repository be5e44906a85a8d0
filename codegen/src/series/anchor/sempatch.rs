//! Statement patches: runs of statements of one block, matched by
//! pattern, kept, removed or added to.

use std::collections::BTreeMap;

use tree_sitter::Node;

use super::roles::{Roles, pattern, readable, roles};
use super::tokens::{Pat, Tok, matches, tokens};
use super::{Unplaced, parse, walk};

/// One line of a statement patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemLine {
    /// `=`: a statement that must be there and stays.
    Keep(String),
    /// `-`: a statement that must be there and goes.
    Remove(String),
    /// `...`: any statements (none included) of the same block.
    Gap,
    /// `+`: a line added where it stands (holes filled in).
    Add(String),
}

/// A statement patch (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemPatch {
    /// Its lines, in order.
    pub lines: Vec<SemLine>,
}

impl SemPatch {
    /// Parses block lines (`=`, `-`, `+` and a prefix character each, or
    /// `...`); `Err` names the first line that is none of them.
    pub fn parse(block: &[&str]) -> Result<SemPatch, String> {
        let mut lines = Vec::new();
        for l in block {
            lines.push(match l.chars().next() {
                _ if l.trim() == "..." => SemLine::Gap,
                Some('=') => SemLine::Keep(l[1..].to_owned()),
                Some('-') => SemLine::Remove(l[1..].to_owned()),
                Some('+') => SemLine::Add(l[1..].to_owned()),
                _ => return Err(format!("`{l}`: a statement patch line is =, -, + or ...")),
            });
        }
        if !lines
            .iter()
            .any(|l| matches!(l, SemLine::Keep(_) | SemLine::Remove(_)))
        {
            return Err("a statement patch needs a `=` or `-` statement to stand on".into());
        }
        if matches!(lines.first(), Some(SemLine::Gap)) || matches!(lines.last(), Some(SemLine::Gap))
        {
            return Err("`...` stands between two statements".into());
        }
        Ok(SemPatch { lines })
    }

    /// The statement patterns, as written (`-` ones: what a fix removes).
    pub fn removed(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            SemLine::Remove(p) => Some(p.as_str()),
            _ => None,
        })
    }
}

/// Every block's statements (byte ranges), comments left out.
fn blocks(root: Node<'_>) -> Vec<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    walk(root, &mut |n| {
        if n.kind() == "compound_statement" {
            let mut c = n.walk();
            let stmts: Vec<(usize, usize)> = n
                .named_children(&mut c)
                .filter(|s| s.kind() != "comment")
                .map(|s| (s.start_byte(), s.end_byte()))
                .collect();
            out.push(stmts);
        }
    });
    out
}

/// Where a statement patch placed: per pattern line, the statement it
/// matched.
struct Placed {
    stmts: Vec<Option<(usize, usize)>>,
    caps: BTreeMap<String, (usize, usize)>,
}

/// Tries to place `lines[li..]` at statement `si` of `block`.
fn place_from(
    lines: &[(usize, &SemLine, Vec<Pat>)],
    li: usize,
    block: &[(usize, usize)],
    si: usize,
    text: &str,
    placed: &mut Placed,
) -> bool {
    let Some((idx, line, pat)) = lines.get(li) else {
        return true;
    };
    match line {
        SemLine::Gap => {
            (si..=block.len()).any(|s| place_from(lines, li + 1, block, s, text, placed))
        }
        _ => {
            let Some(&(s, e)) = block.get(si) else {
                return false;
            };
            let toks: Vec<Tok> = tokens(&text[s..e])
                .into_iter()
                .map(|t| Tok {
                    start: t.start + s,
                    end: t.end + s,
                })
                .collect();
            let mut caps = placed.caps.clone();
            if !matches(pat, &toks, text, &mut caps) {
                return false;
            }
            let saved = std::mem::replace(&mut placed.caps, caps);
            placed.stmts[*idx] = Some((s, e));
            if place_from(lines, li + 1, block, si + 1, text, placed) {
                return true;
            }
            placed.caps = saved;
            placed.stmts[*idx] = None;
            false
        }
    }
}

/// What applying a statement patch gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The function's new text.
    Changed(String),
    /// The patch does not place, and what it adds is there already.
    AlreadyThere,
}

/// The start of `at`'s line when only blanks precede it on that line.
pub(super) fn line_start(text: &str, at: usize) -> usize {
    let ls = text[..at].rfind('\n').map_or(0, |i| i + 1);
    if text[ls..at].trim().is_empty() {
        ls
    } else {
        at
    }
}

/// Past `at`'s line end when only blanks follow it on that line.
pub(super) fn line_end(text: &str, at: usize) -> usize {
    let le = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    if text[at..le].trim().is_empty() {
        le
    } else {
        at
    }
}

/// The statements' indentation at `at`.
fn indent_at(text: &str, at: usize) -> &str {
    let ls = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let s = &text[ls..];
    &s[..s.len() - s.trim_start_matches([' ', '\t']).len()]
}

impl SemPatch {
    /// Applies the patch to `function` (a whole definition's text).
    pub fn apply(&self, function: &str) -> Result<Applied, Unplaced> {
        let tree = parse(function)?;
        let root = tree.root_node();
        let roles = roles(function, root);
        let mut lines = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let pat = match l {
                SemLine::Keep(p) | SemLine::Remove(p) => pattern(p, &roles).map_err(|e| {
                    Unplaced(format!(
                        "looked for the statements {} in one block, but {e}",
                        self.wanted(&roles)
                    ))
                })?,
                _ => Vec::new(),
            };
            lines.push((i, l, pat));
        }
        let pats: Vec<_> = lines
            .iter()
            .filter(|(_, l, _)| !matches!(l, SemLine::Add(_)))
            .cloned()
            .collect();
        let mut found: Vec<Placed> = Vec::new();
        for block in blocks(root) {
            for si in 0..block.len() {
                let mut placed = Placed {
                    stmts: vec![None; self.lines.len()],
                    caps: BTreeMap::new(),
                };
                if place_from(&pats, 0, &block, si, function, &mut placed) {
                    found.push(placed);
                }
            }
        }
        let wanted = || self.wanted(&roles);
        let placed = match found.len() {
            1 => found.pop().expect("one"),
            0 => {
                if self.added_there(function, &roles)? {
                    return Ok(Applied::AlreadyThere);
                }
                return Err(Unplaced(format!(
                    "looked for the statements {} in one block",
                    wanted()
                )));
            }
            n => {
                return Err(Unplaced(format!(
                    "the statements {} are in {n} places, so where the change goes is ambiguous",
                    wanted()
                )));
            }
        };
        let fill = |text: &str| -> Result<String, Unplaced> {
            let mut out = String::new();
            let mut last = 0;
            for t in tokens(text) {
                let s = &text[t.start..t.end];
                let with = if s.starts_with('$') {
                    roles.get(s)?
                } else if let Some(&(a, b)) = placed.caps.get(s) {
                    function[a..b].to_owned()
                } else if s.starts_with('@') {
                    return Err(Unplaced(format!("`{s}` is captured by no pattern")));
                } else {
                    continue;
                };
                out.push_str(&text[last..t.start]);
                out.push_str(&with);
                last = t.end;
            }
            out.push_str(&text[last..]);
            Ok(out)
        };
        // Edits as (start, end, new text), in order, not overlapping.
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        // The last statement matched since a gap, and the `+` lines not
        // yet placed with where they go.
        let mut at: Option<(usize, usize)> = None;
        let mut pending: Option<(usize, String)> = None;
        for (i, l) in self.lines.iter().enumerate() {
            match l {
                SemLine::Add(a) => {
                    let anchor = at.or_else(|| placed.stmts[i..].iter().find_map(|s| *s));
                    let indent = anchor.map_or("\t", |(s, _)| indent_at(function, s));
                    let a = match a.strip_prefix('\t') {
                        _ if a.trim().is_empty() => String::new(),
                        Some(rest) => format!("{indent}{rest}"),
                        None => a.clone(),
                    };
                    // After the statement before (in a removed one's
                    // place), else before the line of the one after.
                    let (_, text) = pending.get_or_insert_with(|| {
                        let pos = match at {
                            Some((_, e)) => line_end(function, e),
                            None => line_start(function, anchor.map_or(0, |(s, _)| s)),
                        };
                        (pos, String::new())
                    });
                    text.push_str(&fill(&a)?);
                    text.push('\n');
                }
                SemLine::Keep(_) | SemLine::Remove(_) => {
                    let (s, e) = placed.stmts[i].expect("placed");
                    let added = pending.take();
                    let lone = added.is_none();
                    edits.extend(added.map(|(pos, text)| (pos, pos, text)));
                    if matches!(l, SemLine::Remove(_)) {
                        let (mut rs, re) = (line_start(function, s), line_end(function, e));
                        // A statement removed between two blank lines, with
                        // nothing added next to it, takes one of them along.
                        let blank_before = function[..rs].ends_with("\n\n");
                        let blank_after = function[re..].starts_with('\n');
                        let followed = matches!(self.lines.get(i + 1), Some(SemLine::Add(_)));
                        if blank_before && blank_after && lone && !followed {
                            rs -= 1;
                        }
                        edits.push((rs, re, String::new()));
                    }
                    at = Some((s, e));
                }
                SemLine::Gap => {
                    edits.extend(pending.take().map(|(pos, text)| (pos, pos, text)));
                    at = None;
                }
            }
        }
        edits.extend(pending.take().map(|(pos, text)| (pos, pos, text)));
        edits.sort_by_key(|e| (e.0, e.1));
        let mut out = String::with_capacity(function.len() + 256);
        let mut last = 0;
        for (s, e, t) in &edits {
            out.push_str(&function[last..*s]);
            out.push_str(t);
            last = *e;
        }
        out.push_str(&function[last..]);
        Ok(Applied::Changed(out))
    }

    /// The statements it looks for, in words.
    fn wanted(&self, roles: &Roles) -> String {
        self.lines
            .iter()
            .filter_map(|l| match l {
                SemLine::Keep(p) | SemLine::Remove(p) => {
                    Some(format!("`{}`", readable(p.trim(), roles)))
                }
                SemLine::Gap => Some("...".into()),
                SemLine::Add(_) => None,
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether every run of `+` lines is in `function` already, as tokens
    /// (holes filled; a capture makes a run unknowable: not there).
    fn added_there(&self, function: &str, roles: &Roles) -> Result<bool, Unplaced> {
        let have: Vec<&str> = tokens(function)
            .iter()
            .map(|t| &function[t.start..t.end])
            .collect();
        let mut runs: Vec<String> = vec![String::new()];
        for l in &self.lines {
            match l {
                SemLine::Add(a) => {
                    let r = runs.last_mut().expect("a run");
                    r.push_str(a);
                    r.push('\n');
                }
                _ => runs.push(String::new()),
            }
        }
        let mut any = false;
        for run in runs.iter().filter(|r| !r.trim().is_empty()) {
            let mut want = Vec::new();
            for t in tokens(run) {
                let s = &run[t.start..t.end];
                if s.starts_with('@') {
                    return Ok(false);
                }
                want.push(if s.starts_with('$') {
                    match roles.get(s) {
                        Ok(n) => n,
                        Err(_) => return Ok(false),
                    }
                } else {
                    s.to_owned()
                });
            }
            if want.is_empty() {
                continue;
            }
            any = true;
            if !have.windows(want.len()).any(|w| w == want.as_slice()) {
                return Ok(false);
            }
        }
        Ok(any)
    }
}
