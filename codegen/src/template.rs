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
                    "directive is `//@ <function> <carried|context> <path>`".into(),
                ));
            };
            let role = match role {
                "carried" => Role::Carried,
                "context" => Role::Context,
                other => {
                    return Err(err(
                        i + 1,
                        format!("role `{other}` is neither carried nor context"),
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
        f.text
            .push_str(&expand_line(line, rules).map_err(|m| err(i + 1, m))?);
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
    fn errors_name_file_and_line() {
        let rules = Rules::load().expect("rules");
        let e = expand_file("t.c", "//@ f carried x.c\n@{no_such_rule(a: 1)}\n", &rules)
            .expect_err("unknown rule");
        assert_eq!((e.file.as_str(), e.line), ("t.c", 2));
        assert!(expand_file("t.c", "int x;\n", &rules).is_err());
        assert!(expand_file("t.c", "//@ f maybe x.c\n", &rules).is_err());
    }
}
