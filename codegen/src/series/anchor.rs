//! Changes anchored on C structure, not on exact text.
//!
//! Two kinds, both found in a function's parse tree (tree-sitter-c) and
//! compared on C tokens, so the tree's own spelling of a construct (its
//! wrapping, its local names, the fields and statements around it) does
//! not stop a change from placing, and every byte the change does not
//! name stays:
//!
//! - **A field of an initializer**: the value of `.FIELD` in the
//!   initializer of a `struct TYPE` variable ([`field_value`]). The series
//!   uses it to put our value of the field into the tree's function, and
//!   into the `was:` function, before the three-way merge (`plan.rs`): the
//!   tree's own formula for the field, whatever it is, then reads as the
//!   buggy one, and the merge has only the rest of the fix left to place.
//! - **A statement patch** ([`SemPatch`], `at:` in a definition): a run of
//!   statements of one block, each given as a pattern, some kept (`=`),
//!   some removed (`-`), with `...` for any statements between and `+`
//!   lines added where they stand — a small cousin of Coccinelle's
//!   semantic patches. A pattern is C tokens with holes:
//!   - `_` — any expression or tokens (brackets balanced);
//!   - `@X` — the same, captured: `+` lines may repeat it as `@X`;
//!   - `$N` — the function's Nth parameter (`$1` is the first);
//!   - `$ret` — the variable the function's last `return X;` returns;
//!   - `$T` — the one variable declared as `struct T *NAME`.
//!
//!   The patch must place in exactly one spot of the function; where it
//!   does not, what it looked for is said.

use std::collections::BTreeMap;
use std::fmt;

use tree_sitter::{Node, Parser};

/// Why a change did not place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced(pub String);

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One C token of a text: its bytes' range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tok {
    start: usize,
    end: usize,
}

const PUNCT3: &[&str] = &["<<=", ">>=", "..."];
const PUNCT2: &[&str] = &[
    "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=", "*=", "/=", "%=",
    "&=", "|=", "^=", "##",
];

/// The C tokens of `text`, comments and whitespace skipped. `$name` and
/// `@name` are one token each (pattern holes; never in kernel C).
fn tokens(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || (c == b'\\' && b.get(i + 1) == Some(&b'\n')) {
            i += 1;
            continue;
        }
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(b.len(), |e| i + e);
            continue;
        }
        if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            continue;
        }
        let start = i;
        if word(c) || ((c == b'$' || c == b'@') && b.get(i + 1).is_some_and(|&n| word(n))) {
            i += 1;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else if let Some(p) = PUNCT3
            .iter()
            .chain(PUNCT2)
            .find(|p| text[i..].starts_with(**p))
        {
            i += p.len();
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        out.push(Tok { start, end: i });
    }
    out
}

fn parse(text: &str) -> Result<tree_sitter::Tree, Unplaced> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_c::LANGUAGE.into())
        .map_err(|e| Unplaced(format!("tree-sitter-c: {e}")))?;
    parser
        .parse(text, None)
        .ok_or_else(|| Unplaced("tree-sitter gave up on the function".into()))
}

fn walk<'t>(node: Node<'t>, f: &mut impl FnMut(Node<'t>)) {
    f(node);
    let mut c = node.walk();
    for ch in node.children(&mut c) {
        walk(ch, f);
    }
}

/// The byte range of `.FIELD`'s value in the initializer of each
/// `struct TYPE` variable `function` declares: exactly one, or why not.
pub fn field_value(function: &str, ty: &str, field: &str) -> Result<(usize, usize), Unplaced> {
    let tree = parse(function)?;
    let mut hits = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.kind() != "declaration" {
            return;
        }
        let is_ty = n
            .child_by_field_name("type")
            .filter(|t| t.kind() == "struct_specifier")
            .and_then(|t| t.child_by_field_name("name"))
            .is_some_and(|name| &function[name.byte_range()] == ty);
        if !is_ty {
            return;
        }
        walk(n, &mut |p| {
            if p.kind() != "initializer_pair" {
                return;
            }
            let named = p
                .child_by_field_name("designator")
                .is_some_and(|d| function[d.byte_range()].trim_start_matches('.').trim() == field);
            if let Some(v) = p.child_by_field_name("value").filter(|_| named) {
                hits.push((v.start_byte(), v.end_byte()));
            }
        });
    });
    match hits[..] {
        [one] => Ok(one),
        [] => Err(Unplaced(format!(
            "no `.{field} =` in an initializer of a `struct {ty}`"
        ))),
        _ => Err(Unplaced(format!(
            "`.{field} =` of a `struct {ty}` appears {} times",
            hits.len()
        ))),
    }
}

/// The fields of each `struct TYPE` initializer in `function` whose
/// value is one identifier: (field, identifier).
fn identifier_fields(function: &str, ty: &str) -> Vec<(String, String)> {
    let Ok(tree) = parse(function) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.kind() != "initializer_pair" {
            return;
        }
        let mut up = n.parent();
        while let Some(u) = up.filter(|u| u.kind() != "declaration") {
            up = u.parent();
        }
        let of_ty = up
            .and_then(|d| d.child_by_field_name("type"))
            .and_then(|t| t.child_by_field_name("name"))
            .is_some_and(|t| &function[t.byte_range()] == ty);
        let field = n.child_by_field_name("designator");
        let value = n
            .child_by_field_name("value")
            .filter(|v| v.kind() == "identifier");
        if let (true, Some(f), Some(v)) = (of_ty, field, value) {
            out.push((
                function[f.byte_range()]
                    .trim_start_matches('.')
                    .trim()
                    .to_owned(),
                function[v.byte_range()].to_owned(),
            ));
        }
    });
    out
}

/// How names in `ours` read in `theirs`: the parameters by position, and
/// a local that is the value of a field of a `struct TYPE` initializer in
/// both (`.slot = slot` in ours, `.slot = memslot` in theirs).
pub fn names_between(ours: &str, theirs: &str, ty: &str) -> Vec<(String, String)> {
    let params = |t: &str| parse(t).map(|tree| roles(t, tree.root_node()).params);
    let mut map: Vec<(String, String)> = match (params(ours), params(theirs)) {
        (Ok(o), Ok(t)) if o.len() == t.len() => o.into_iter().zip(t).collect(),
        _ => Vec::new(),
    };
    let theirs_fields = identifier_fields(theirs, ty);
    for (f, o) in identifier_fields(ours, ty) {
        if let Some((_, t)) = theirs_fields.iter().find(|(g, _)| *g == f) {
            if !map.iter().any(|(from, _)| *from == o) {
                map.push((o, t.clone()));
            }
        }
    }
    map.retain(|(a, b)| a != b && !a.is_empty() && !b.is_empty());
    map
}

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

/// The names holes stand for in one function.
struct Roles {
    params: Vec<String>,
    ret: Option<String>,
    /// `struct T *NAME` declarations: T → the names.
    pointers: BTreeMap<String, Vec<String>>,
}

fn roles(function: &str, root: Node<'_>) -> Roles {
    let mut params = Vec::new();
    let mut ret = None;
    let mut pointers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let name_of = |mut d: Node<'_>| -> Option<String> {
        loop {
            match d.kind() {
                "identifier" => return Some(function[d.byte_range()].to_owned()),
                _ => d = d.child_by_field_name("declarator")?,
            }
        }
    };
    let mut fdecl = None;
    walk(root, &mut |n| match n.kind() {
        "function_declarator" if fdecl.is_none() => fdecl = Some(n),
        "return_statement" => {
            let t: Vec<&str> = tokens(&function[n.byte_range()])
                .iter()
                .map(|t| &function[n.start_byte() + t.start..n.start_byte() + t.end])
                .collect();
            if let ["return", v, ";"] = t[..] {
                let ident = v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
                ret = ident.then(|| v.to_owned());
            } else {
                ret = None;
            }
        }
        "declaration" | "parameter_declaration" => {
            let ty = n
                .child_by_field_name("type")
                .filter(|t| t.kind() == "struct_specifier")
                .and_then(|t| t.child_by_field_name("name"));
            let Some(ty) = ty else { return };
            let mut c = n.walk();
            for d in n.children_by_field_name("declarator", &mut c) {
                let d = if d.kind() == "init_declarator" {
                    d.child_by_field_name("declarator").unwrap_or(d)
                } else {
                    d
                };
                if d.kind() == "pointer_declarator" {
                    if let Some(name) = name_of(d) {
                        pointers
                            .entry(function[ty.byte_range()].to_owned())
                            .or_default()
                            .push(name);
                    }
                }
            }
        }
        _ => {}
    });
    if let Some(list) = fdecl.and_then(|f| f.child_by_field_name("parameters")) {
        let mut c = list.walk();
        for p in list.named_children(&mut c) {
            if p.kind() == "parameter_declaration" {
                params.push(
                    p.child_by_field_name("declarator")
                        .and_then(name_of)
                        .unwrap_or_default(),
                );
            }
        }
    }
    Roles {
        params,
        ret,
        pointers,
    }
}

impl Roles {
    /// The name `$hole` stands for.
    fn get(&self, hole: &str) -> Result<String, Unplaced> {
        let name = &hole[1..];
        if let Ok(n) = name.parse::<usize>() {
            return self
                .params
                .get(n.wrapping_sub(1))
                .filter(|p| !p.is_empty())
                .cloned()
                .ok_or_else(|| Unplaced(format!("`{hole}`: the function has no parameter {n}")));
        }
        if name == "ret" {
            return self.ret.clone().ok_or_else(|| {
                Unplaced("`$ret`: the function does not end in `return <variable>;`".into())
            });
        }
        match self.pointers.get(name).map(Vec::as_slice) {
            Some([one]) => Ok(one.clone()),
            Some(more) if more.len() > 1 => Err(Unplaced(format!(
                "`{hole}`: {} variables are `struct {name} *`",
                more.len()
            ))),
            _ => Err(Unplaced(format!("`{hole}`: no `struct {name} *` variable"))),
        }
    }
}

/// A pattern token: literal text, a hole, or a (captured) wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pat {
    Lit(String),
    Any,
    Capture(String),
}

fn pattern(p: &str, roles: &Roles) -> Result<Vec<Pat>, Unplaced> {
    tokens(p)
        .iter()
        .map(|t| {
            let s = &p[t.start..t.end];
            Ok(match s {
                "_" => Pat::Any,
                _ if s.starts_with('@') => Pat::Capture(s.to_owned()),
                _ if s.starts_with('$') => Pat::Lit(roles.get(s)?),
                _ => Pat::Lit(s.to_owned()),
            })
        })
        .collect()
}

/// Matches `pat` against all of `toks` (of `text`), filling `caps`.
fn matches(
    pat: &[Pat],
    toks: &[Tok],
    text: &str,
    caps: &mut BTreeMap<String, (usize, usize)>,
) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return toks.is_empty();
    };
    match first {
        Pat::Lit(l) => {
            toks.first().is_some_and(|t| &text[t.start..t.end] == l)
                && matches(rest, &toks[1..], text, caps)
        }
        Pat::Any | Pat::Capture(_) => {
            let mut depth = 0i32;
            for k in 0..toks.len() {
                match &text[toks[k].start..toks[k].end] {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    _ => {}
                }
                if depth < 0 {
                    return false;
                }
                if depth == 0 {
                    let mut trial = caps.clone();
                    if let Pat::Capture(name) = first {
                        let span = (toks[0].start, toks[k].end);
                        match trial.get(name) {
                            Some(&old) if text[old.0..old.1] != text[span.0..span.1] => continue,
                            _ => {
                                trial.insert(name.clone(), span);
                            }
                        }
                    }
                    if matches(rest, &toks[k + 1..], text, &mut trial) {
                        *caps = trial;
                        return true;
                    }
                }
            }
            false
        }
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

/// `pattern` with each hole the function gives a name to read as that
/// name (`*$4 = _;` → `*pfn = _;`), for messages.
fn readable(pattern: &str, roles: &Roles) -> String {
    let mut out = String::new();
    let mut last = 0;
    for t in tokens(pattern) {
        let s = &pattern[t.start..t.end];
        if let Some(name) = s.starts_with('$').then(|| roles.get(s).ok()).flatten() {
            out.push_str(&pattern[last..t.start]);
            out.push_str(&name);
            last = t.end;
        }
    }
    out.push_str(&pattern[last..]);
    out
}

/// The start of `at`'s line when only blanks precede it on that line.
fn line_start(text: &str, at: usize) -> usize {
    let ls = text[..at].rfind('\n').map_or(0, |i| i + 1);
    if text[ls..at].trim().is_empty() {
        ls
    } else {
        at
    }
}

/// Past `at`'s line end when only blanks follow it on that line.
fn line_end(text: &str, at: usize) -> usize {
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
        let mut at: Option<(usize, usize)> = None; // the last matched statement
        let mut pending = String::new();
        let mut pending_at: Option<usize> = None;
        let flush = |edits: &mut Vec<(usize, usize, String)>, pos: usize, text: &mut String| {
            if !text.is_empty() {
                edits.push((pos, pos, std::mem::take(text)));
            }
        };
        for (i, l) in self.lines.iter().enumerate() {
            match l {
                SemLine::Add(a) => {
                    let anchor = at.or_else(|| placed.stmts[i..].iter().find_map(|s| *s));
                    let indent = anchor.map_or("\t", |(s, _)| indent_at(function, s));
                    let a = a
                        .strip_prefix('\t')
                        .map_or_else(|| a.clone(), |rest| format!("{indent}{rest}"));
                    let a = if a.trim().is_empty() {
                        String::new()
                    } else {
                        a
                    };
                    pending.push_str(&fill(&a)?);
                    pending.push('\n');
                    if pending_at.is_none() {
                        pending_at = Some(match at {
                            Some((_, e)) => line_end(function, e),
                            None => line_start(function, anchor.map_or(0, |(s, _)| s)),
                        });
                    }
                }
                SemLine::Keep(_) | SemLine::Remove(_) => {
                    let (s, e) = placed.stmts[i].expect("placed");
                    if let Some(p) = pending_at.take() {
                        // Added lines before this statement go before its
                        // line; after a removed one, in its place.
                        let pos = if at.is_some() {
                            p
                        } else {
                            line_start(function, s)
                        };
                        flush(&mut edits, pos, &mut pending);
                    }
                    if matches!(l, SemLine::Remove(_)) {
                        edits.push((
                            line_start(function, s),
                            line_end(function, e),
                            String::new(),
                        ));
                    }
                    at = Some((s, e));
                }
                SemLine::Gap => {
                    if let Some(p) = pending_at.take() {
                        flush(&mut edits, p, &mut pending);
                    }
                    at = None;
                }
            }
        }
        if let Some(p) = pending_at.take() {
            flush(&mut edits, p, &mut pending);
        }
        edits.sort_by_key(|e| (e.0, e.1));
        let mut out = String::with_capacity(function.len() + 256);
        let mut last = 0;
        for (s, e, t) in &edits {
            out.push_str(&function[last..*s]);
            out.push_str(t);
            last = *e;
        }
        out.push_str(&function[last..]);
        // A statement removed with nothing in its place may leave two
        // blank lines meeting.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
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

/// Whether `line` (a line of C a patch removes) is a statement `pattern`
/// (of a `-` line) could match: its tokens, holes matching anything.
pub fn could_match(pattern: &str, line: &str) -> bool {
    let pat: Vec<Pat> = tokens(pattern)
        .iter()
        .map(|t| {
            let s = &pattern[t.start..t.end];
            match s {
                "_" => Pat::Any,
                _ if s.starts_with('@') || s.starts_with('$') => Pat::Capture(s.to_owned()),
                _ => Pat::Lit(s.to_owned()),
            }
        })
        .collect();
    let toks = tokens(line);
    // A removed line may be part of a statement: match its tokens against
    // any window of the pattern's that holds one of its words.
    let word = |p: &Pat| matches!(p, Pat::Lit(l) if l.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
    (0..pat.len()).any(|k| {
        (k..=pat.len()).any(|m| {
            pat[k..m].iter().any(word) && matches(&pat[k..m], &toks, line, &mut BTreeMap::new())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_PFN: &str = "\
int get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot,
\t    gfn_t gfn, kvm_pfn_t *pfn, int *max_order)
{
\tstruct folio *f;
\tint ret;

\tf = lookup(slot, gfn); /* the tree's own comment */
\tif (IS_ERR(f)) {
\t\tret = PTR_ERR(f);
\t\tgoto out;
\t}

\t*pfn = folio_file_pfn(f,
\t\t\t      gfn);
\tif (max_order)
\t\t*max_order = 0;

\tret = 0;

\tfolio_unlock(f);
out:
\treturn ret;
}
";

    fn sem(lines: &[&str]) -> SemPatch {
        SemPatch::parse(lines).expect("parses")
    }

    #[test]
    fn a_statement_patch_places_by_structure_and_keeps_the_rest() {
        let p = sem(&[
            "=*$4 = _;",
            "...",
            "-$ret = 0;",
            "+\t$ret = prepare($1, $3, *$4, folio_order($folio));",
            "=folio_unlock($folio);",
            "+\tif ($ret)",
            "+\t\tfolio_put($folio);",
        ]);
        let Applied::Changed(out) = p.apply(GET_PFN).expect("places") else {
            panic!("not applied");
        };
        assert!(
            out.contains(
                "\t\t*max_order = 0;\n\n\tret = prepare(kvm, gfn, *pfn, folio_order(f));\n\n\tfolio_unlock(f);\n\tif (ret)\n\t\tfolio_put(f);\nout:\n"
            ),
            "{out}"
        );
        // Everything the patch does not name is byte for byte.
        assert!(out.contains("/* the tree's own comment */"));
        assert!(out.contains("\t*pfn = folio_file_pfn(f,\n\t\t\t      gfn);\n"));
        // Applied twice: the second time it is already there.
        assert_eq!(p.apply(&out), Ok(Applied::AlreadyThere));
    }

    #[test]
    fn a_statement_patch_that_does_not_place_says_what_it_looked_for() {
        let p = sem(&["=*$4 = _;", "-$ret = 1;", "+\tx();"]);
        let e = p.apply(GET_PFN).expect_err("no place");
        assert!(e.0.contains("`*pfn = _;`, `ret = 1;`"), "{e}");
        let e = sem(&["-$folio_batch = 0;"])
            .apply(GET_PFN)
            .expect_err("role");
        assert!(e.0.contains("looked for the statements `$folio_batch = 0;` in one block, but `$folio_batch`: no `struct folio_batch *` variable"), "{e}");
        let e = sem(&["=_;"]).apply(GET_PFN).expect_err("ambiguous");
        assert!(e.0.contains("places"), "{e}");
    }

    #[test]
    fn captures_carry_the_trees_text_into_the_new_lines() {
        let src = "int bind(unsigned int fd, loff_t offset)\n{\n\tloff_t size = npages << PAGE_SHIFT;\n\n\tif (offset < 0 || !PAGE_ALIGNED(offset) ||\n\t    offset + size > limit)\n\t\tgoto err;\n\treturn 0;\nerr:\n\treturn -EINVAL;\n}\n";
        let p = sem(&[
            "-loff_t @S = @E;",
            "+\tu64 @S = @E;",
            "...",
            "-if ($2 < 0 || @C) @B",
            "+\tif (@C)",
            "+\t\t@B",
        ]);
        let Applied::Changed(out) = p.apply(src).expect("places") else {
            panic!("not applied");
        };
        assert!(
            out.contains("\tu64 size = npages << PAGE_SHIFT;\n\n\tif (!PAGE_ALIGNED(offset) ||\n\t    offset + size > limit)\n\t\tgoto err;\n"),
            "{out}"
        );
    }

    #[test]
    fn the_bind_fix_places_on_either_spelling_of_the_check() {
        // The offset check on its own (an early 2023 form), or with the
        // size check in one condition.
        let defs = crate::series::def::series().expect("series");
        let d = defs
            .iter()
            .find(|d| d.file == "09-gmem-bind-unsigned.txt")
            .expect("09");
        let sem = d.edits[0].sem.clone().expect("a statement patch");
        let apart = "int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,\n\t\t  unsigned int fd, loff_t offset)\n{\n\tloff_t size = slot->npages << PAGE_SHIFT;\n\tint r = -EINVAL;\n\n\tif (offset < 0 || !PAGE_ALIGNED(offset))\n\t\treturn -EINVAL;\n\n\tif (offset + size > i_size_read(inode))\n\t\tgoto err;\n\treturn 0;\nerr:\n\treturn r;\n}\n";
        let Ok(Applied::Changed(out)) = sem.apply(apart) else {
            panic!("places");
        };
        assert!(
            out.contains("\tu64 size = slot->npages << PAGE_SHIFT;\n\tint r = -EINVAL;\n\n\tif (!PAGE_ALIGNED(offset))\n\t\treturn -EINVAL;\n\n\tif (offset + size > i_size_read(inode))\n"),
            "{out}"
        );
        // Unsigned already: nothing to place, and nothing is claimed done
        // either (the `+` lines hold captures).
        let fixed = out.replace("loff_t offset", "u64 offset");
        assert!(sem.apply(&fixed).is_err());
    }

    #[test]
    fn fields_are_found_in_the_initializer_whatever_their_spelling() {
        let f = "static void f(struct kvm_gmem *gmem, pgoff_t start)\n{\n\txa_for_each_range(&gmem->bindings, index, memslot, start, end - 1) {\n\t\tstruct kvm_gfn_range r = {\n\t\t\t.slot = memslot,\n\t\t\t.start = memslot->base_gfn +\n\t\t\t\t max(start, memslot->gmem.index),\n\t\t\t.only_private = true,\n\t\t};\n\t}\n}\n";
        let (s, e) = field_value(f, "kvm_gfn_range", "start").expect("found");
        assert_eq!(
            &f[s..e],
            "memslot->base_gfn +\n\t\t\t\t max(start, memslot->gmem.index)"
        );
        assert!(field_value(f, "kvm_gfn_range", "end").is_err());
        assert!(field_value(f, "other", "start").is_err());
    }

    #[test]
    fn removed_lines_are_told_apart_by_pattern() {
        assert!(could_match("$ret = 0;", "\tr = 0;"));
        assert!(!could_match("$ret = 0;", "\tr = 1;"));
        assert!(could_match(
            "if ($2 < 0 || @C) @B",
            "\tif (offset < 0 || !PAGE_ALIGNED(offset) ||"
        ));
        assert!(!could_match("$ret = 0;", "\tfolio_put(folio);"));
    }
}
