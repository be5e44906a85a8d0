//! Templates: kernel C with placeholders for the model's rules.
//!
//! A template file (`kernel-patches/templates/<profile>/<kernel file>`)
//! holds whole kernel functions, each introduced by a directive line
//!
//! ```text
//! //@ <function> <carried|context> <path in the kernel tree>
//! ```
//!
//! `carried` functions are what the series writes into a tree; `context`
//! ones stand in for kernel code the series leaves alone, so the checker can
//! run a whole call chain. Inside a function, `@{rule(param: C expr, ...)}`
//! is replaced by the rule's C expression (see [`crate::translate`]).
//! Directive lines never reach the C: everything else is copied byte for
//! byte.

use std::fmt;

use crate::translate::{Rules, TranslateError};

/// Whether a patch carries the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Written into the tree by the series.
    Carried,
    /// Stand-in for kernel code, used only to run the chain.
    Context,
    /// The tree's own function, which the series changes with targeted
    /// edits (`edit:`): the text is what those edits make of it.
    Edited,
}

/// One function of a template, placeholders expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The C function's name.
    pub name: String,
    /// Carried or context.
    pub role: Role,
    /// Kernel source file it belongs to.
    pub site: String,
    /// The C text, ending in a newline.
    pub text: String,
}

/// A template problem, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Template file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Parses and expands one template file.
pub fn expand_file(file: &str, text: &str, rules: &Rules) -> Result<Vec<Function>, TemplateError> {
    let err = |line: usize, message: String| TemplateError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut out: Vec<Function> = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if let Some(d) = line.strip_prefix("//@ ") {
            let words: Vec<&str> = d.split_whitespace().collect();
            let [name, role, site] = words[..] else {
                return Err(err(
                    i + 1,
                    "directive is `//@ <function> <carried|context|edited> <path>`".into(),
                ));
            };
            let role = match role {
                "carried" => Role::Carried,
                "context" => Role::Context,
                "edited" => Role::Edited,
                other => {
                    return Err(err(
                        i + 1,
                        format!("role `{other}` is not carried, context or edited"),
                    ));
                }
            };
            out.push(Function {
                name: name.into(),
                role,
                site: site.into(),
                text: String::new(),
            });
            continue;
        }
        let Some(f) = out.last_mut() else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err(i + 1, "C before the first `//@` directive".into()));
        };
        let expanded = expand_line(line, rules).map_err(|m| err(i + 1, m))?;
        // Only lines a placeholder changed are rewrapped: the rest of the
        // template is copied byte for byte.
        if expanded == line {
            f.text.push_str(line);
        } else {
            f.text.push_str(&wrap(&expanded));
        }
    }
    for f in &mut out {
        // Functions are separated by one blank line in the file; keep none.
        while f.text.ends_with("\n\n") {
            f.text.pop();
        }
    }
    Ok(out)
}

fn expand_line(line: &str, rules: &Rules) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("@{") {
        out.push_str(&rest[..at]);
        let body_start = at + 2;
        let close = matching_brace(&rest[body_start..]).ok_or("unclosed `@{`")?;
        let body = &rest[body_start..body_start + close];
        out.push_str(&expand_call(body, rules)?);
        rest = &rest[body_start + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Width of `s` on screen, tabs to 8 columns.
fn width(s: &str) -> usize {
    s.chars().fold(0, |col, c| {
        if c == '\t' {
            (col / 8 + 1) * 8
        } else {
            col + 1
        }
    })
}

/// Preferred line width (coding-style.rst).
pub const MAX_COLUMNS: usize = 80;

/// Wraps an expanded line wider than [`MAX_COLUMNS`] the way kernel code
/// is wrapped: at the outermost `||` (else `&&`, else `+`), operator at the
/// end of the line, continuation aligned with the open parenthesis of an
/// `if (` or with the right-hand side of an assignment or `return`.
fn wrap(line: &str) -> String {
    let body = line.trim_end_matches('\n');
    if width(body) <= MAX_COLUMNS {
        return line.to_owned();
    }
    let indent_len = body.len() - body.trim_start_matches('\t').len();
    let (indent, content) = body.split_at(indent_len);
    // Where the wrapped expression starts, and at which paren depth its
    // top-level operators sit.
    let (start, depth) = if let Some(p) = ["if (", "while (", "} else if ("]
        .iter()
        .find_map(|k| content.starts_with(k).then_some(k.len()))
    {
        (p, 1)
    } else if let Some(p) = content.find(" = ") {
        (p + 3, 0)
    } else if content.starts_with("return ") {
        (7, 0)
    } else {
        return line.to_owned();
    };
    let mut cuts: Vec<(usize, &str)> = Vec::new();
    for op in ["||", "&&", "+"] {
        let pat = format!(" {op} ");
        let mut d = 0i32;
        for (i, c) in content.char_indices() {
            match c {
                '(' | '[' => d += 1,
                ')' | ']' => d -= 1,
                _ => {}
            }
            if i >= start && d == depth && content[i..].starts_with(&pat) {
                cuts.push((i, op));
            }
        }
        if !cuts.is_empty() {
            break;
        }
    }
    if cuts.is_empty() {
        return line.to_owned();
    }
    // Pieces: each ends with its operator.
    let mut pieces = Vec::new();
    let mut from = 0;
    for (i, op) in &cuts {
        pieces.push(&content[from..i + 1 + op.len()]);
        from = i + 2 + op.len();
    }
    pieces.push(&content[from..]);
    let align = width(indent) + width(&content[..start]);
    let cont = format!("{}{}", "\t".repeat(align / 8), " ".repeat(align % 8));
    let mut out = String::from(indent);
    let mut prefix = indent.to_owned();
    let mut cur = String::new();
    for p in pieces {
        if cur.is_empty() {
            cur = p.to_owned();
        } else if width(&format!("{prefix}{cur} {p}")) > MAX_COLUMNS {
            out.push_str(&cur);
            out.push('\n');
            out.push_str(&cont);
            prefix.clone_from(&cont);
            cur = p.to_owned();
        } else {
            cur = format!("{cur} {p}");
        }
    }
    out.push_str(&cur);
    out.push('\n');
    out
}

/// Index of the `}` closing a placeholder, skipping nested brackets.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' => depth -= 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `rule(a: x, b: f(y, z))` → the rule's C text.
fn expand_call(body: &str, rules: &Rules) -> Result<String, String> {
    let open = body
        .find('(')
        .ok_or("placeholder is `@{rule(param: expr, ...)}`")?;
    let name = body[..open].trim();
    let args_text = body[open + 1..]
        .strip_suffix(')')
        .ok_or("placeholder must end with `)`")?;
    let mut args = Vec::new();
    for part in split_top_level(args_text) {
        let (p, v) = part
            .split_once(':')
            .ok_or_else(|| format!("argument `{part}` is not `param: expr`"))?;
        args.push((p.trim(), v.trim()));
    }
    rules
        .expand(name, &args)
        .map(|e| e.to_c())
        .map_err(|e: TranslateError| e.to_string())
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_strips_directives() {
        let rules = Rules::load().expect("rules");
        let t = "//@ f carried virt/kvm/x.c\nint f(u64 a, u64 b)\n{\n\treturn @{gmem_invalidate_gfn_start(base_gfn: s->base_gfn, pgoff: a, start: min(a, b))};\n}\n\n//@ g context x.c\nvoid g(void)\n{\n}\n";
        let fs = expand_file("t.c", t, &rules).expect("expands");
        assert_eq!(fs.len(), 2);
        assert_eq!(
            fs[0].text,
            "int f(u64 a, u64 b)\n{\n\treturn s->base_gfn + max(a, min(a, b)) - a;\n}\n"
        );
        assert_eq!(fs[1].role, Role::Context);
    }

    #[test]
    fn wraps_long_conditions_like_kernel_code() {
        let w = wrap(
            "\tif (range->flags != 0 || (range->gpa & (PAGE_SIZE - 1)) != 0 || (range->size & (PAGE_SIZE - 1)) != 0 || range->gpa + range->size <= range->gpa)\n",
        );
        assert_eq!(
            w,
            "\tif (range->flags != 0 || (range->gpa & (PAGE_SIZE - 1)) != 0 ||\n\t    (range->size & (PAGE_SIZE - 1)) != 0 ||\n\t    range->gpa + range->size <= range->gpa)\n"
        );
        assert!(w.lines().all(|l| width(l) <= MAX_COLUMNS));
        let a = wrap(
            "\t\tuse_2m_update = (pfn & (PTRS_PER_PMD - 1)) == 0 && end >= pfn + PTRS_PER_PMD && rmp_level > PG_LEVEL_4K;\n",
        );
        assert_eq!(
            a,
            "\t\tuse_2m_update = (pfn & (PTRS_PER_PMD - 1)) == 0 &&\n\t\t\t\tend >= pfn + PTRS_PER_PMD &&\n\t\t\t\trmp_level > PG_LEVEL_4K;\n"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let rules = Rules::load().expect("rules");
        let e = expand_file("t.c", "//@ f carried x.c\n@{no_such_rule(a: 1)}\n", &rules)
            .expect_err("unknown rule");
        assert_eq!((e.file.as_str(), e.line), ("t.c", 2));
        assert!(expand_file("t.c", "int x;\n", &rules).is_err());
        assert!(expand_file("t.c", "//@ f maybe x.c\n", &rules).is_err());
    }
}
