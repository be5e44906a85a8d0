//! C tokens, and patterns of them with holes: matched on tokens, so the
//! tree's wrapping and comments never matter.

use std::collections::BTreeMap;

/// One C token of a text: its bytes' range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tok {
    pub(super) start: usize,
    pub(super) end: usize,
}

const PUNCT3: &[&str] = &["<<=", ">>=", "..."];
const PUNCT2: &[&str] = &[
    "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=", "*=", "/=", "%=",
    "&=", "|=", "^=", "##",
];

/// The C tokens of `text`, comments and whitespace skipped. `$name` and
/// `@name` are one token each (pattern holes; never in kernel C).
pub(super) fn tokens(text: &str) -> Vec<Tok> {
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

/// A pattern token: literal text, a hole, or a (captured) wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pat {
    Lit(String),
    Any,
    Capture(String),
}

/// Matches `pat` against all of `toks` (of `text`), filling `caps`.
pub(super) fn matches(
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
