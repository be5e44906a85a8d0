//! What C under test may name before gcc runs, and after.
//!
//! A tree's text is compiled with the shim as its only include path
//! (`-nostdinc`), but gcc still opens whatever an `#include` names by
//! absolute path or `..`, and prints what it read in its errors. So the
//! text is read first ([`text`]): every `#include`, `#include_next`,
//! `#embed` and `#import` must name one of the shim's headers
//! ([`SHIM_HEADERS`]) by a literal name; a `#line` may not point gcc's
//! diagnostics at a file outside the cache (gcc shows the named file's
//! lines); `#pragma GCC dependency` and `__has_include`/`__has_embed` name
//! files too. The assembler reads files as well (`.incbin`, `.include`)
//! and can build such a directive out of macros, so the assembly gcc makes
//! of the unit is read before it is assembled ([`assembly`]).
//!
//! A refusal names the tree's file and line, from the `#line` directives
//! review writes before each extracted function.

/// Headers the shim provides: the only names C under test may include.
pub const SHIM_HEADERS: &[&str] = &[
    "gmf_kernel.h",
    "rmp.h",
    "kunit/test.h",
    "stddef.h",
    "stdint.h",
];

/// Why a text was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `path:line` in the tree (or `line N` of the text without a `#line`).
    pub at: String,
    /// What was refused and why.
    pub why: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.why)
    }
}

/// Removes comments from one logical line, keeping string and character
/// literals whole; `in_comment` carries a `/* */` across lines.
fn code_of(line: &str, in_comment: &mut bool) -> String {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if *in_comment {
            if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                *in_comment = false;
                out.push(b' ');
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                *in_comment = true;
                i += 2;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            q @ (b'"' | b'\'') => {
                out.push(q);
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        out.push(b[i]);
                        i += 1;
                    }
                    out.push(b[i]);
                    i += 1;
                }
                if i < b.len() {
                    out.push(q);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a header name as written after `#include` (or inside
/// `__has_include(`): `Err` says why it may not be read.
fn header(arg: &str) -> Result<(), String> {
    let arg = arg.trim_start();
    let (close, rest) = match arg.chars().next() {
        Some('"') => ('"', &arg[1..]),
        Some('<') => ('>', &arg[1..]),
        _ => {
            return Err(format!(
                "`{}` is not a literal header name (a macro cannot be checked before gcc runs)",
                arg.trim()
            ));
        }
    };
    let name = rest.split(close).next().unwrap_or(rest);
    if name.starts_with('/') {
        return Err(format!("\"{name}\" is an absolute path"));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(format!("\"{name}\" leaves the shim's directory (`..`)"));
    }
    if !SHIM_HEADERS.contains(&name) {
        return Err(format!("\"{name}\" is not a header the shim provides"));
    }
    Ok(())
}

/// Checks a `#line`'s file name: relative, without `..` (gcc runs in the
/// cache directory, so a relative name can only reach the cache).
fn line_file(name: &str) -> Result<(), String> {
    if name.starts_with('/') {
        return Err(format!(
            "#line names \"{name}\", an absolute path (gcc would show that file's lines)"
        ));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(format!(
            "#line names \"{name}\", a path out of the cache (`..`; gcc would show that file's lines)"
        ));
    }
    Ok(())
}

/// A `#line N "file"` (or GNU `# N "file"`) argument: its number and file.
fn line_directive(arg: &str) -> Option<(usize, Option<String>)> {
    let mut it = arg.trim().splitn(2, char::is_whitespace);
    let n = it.next()?.parse().ok()?;
    let file = it.next().and_then(|r| {
        let r = r.trim_start().strip_prefix('"')?;
        Some(r.split('"').next().unwrap_or(r).to_owned())
    });
    Some((n, file))
}

/// Reads `text` as gcc's preprocessor would see its directives; `Err`
/// names the first thing that would make gcc read a file that is not the
/// shim's.
pub fn text(text: &str) -> Result<(), Refusal> {
    // Where physical line `p` is in the tree: the last #line seen, as
    // (physical line it was on, its number, its file).
    let mut mark: Option<(usize, usize, String)> = None;
    let at = |mark: &Option<(usize, usize, String)>, p: usize| match mark {
        Some((at, n, f)) => format!("{f}:{}", n + p - at - 1),
        None => format!("line {p} of the extracted text"),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut in_comment = false;
    let mut p = 0;
    while p < lines.len() {
        let start = p + 1;
        // Backslash-newline joins lines before anything else (phase 2).
        let mut logical = String::new();
        loop {
            let l = lines[p];
            p += 1;
            match l.strip_suffix('\\') {
                Some(s) if p < lines.len() => logical.push_str(s),
                _ => {
                    logical.push_str(l);
                    break;
                }
            }
        }
        let was_comment = in_comment;
        let code = code_of(&logical, &mut in_comment);
        let refuse = |why: String| Refusal {
            at: at(&mark, start),
            why,
        };
        for probe in ["__has_include_next", "__has_include", "__has_embed"] {
            let mut rest = code.as_str();
            while let Some(k) = rest.find(probe) {
                rest = &rest[k + probe.len()..];
                // `__has_include` is a prefix of `__has_include_next`.
                if rest.starts_with('_') {
                    continue;
                }
                let arg = rest.trim_start().strip_prefix('(').unwrap_or(rest);
                header(arg).map_err(|w| refuse(format!("{probe}({}: {w}", arg.trim())))?;
            }
        }
        if code.contains("_Pragma") && code.contains("dependency") {
            return Err(refuse(
                "_Pragma(\"GCC dependency ...\") names a file gcc would read".into(),
            ));
        }
        let t = code.trim_start();
        let directive = if was_comment {
            None
        } else {
            t.strip_prefix('#').or_else(|| t.strip_prefix("%:"))
        };
        let Some(d) = directive else { continue };
        let d = d.trim_start();
        let word: String = d
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let arg = &d[word.len()..];
        match word.as_str() {
            "include" | "include_next" | "embed" | "import" => {
                header(arg).map_err(|w| refuse(format!("#{word} {}: {w}", arg.trim())))?;
            }
            "pragma" if arg.contains("dependency") => {
                return Err(refuse(format!("#pragma{arg}: names a file gcc would read")));
            }
            w if w == "line" || w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() => {
                let arg = if w == "line" { arg } else { d };
                if let Some((n, file)) = line_directive(arg) {
                    if let Some(f) = &file {
                        line_file(f).map_err(refuse)?;
                    }
                    let f = file
                        .or_else(|| mark.as_ref().map(|m| m.2.clone()))
                        .unwrap_or_else(|| "extracted text".into());
                    mark = Some((p, n, f));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Assembler directives that read a file, or build directives out of
/// macro arguments (`.irp` can spell `.incbin` from parts): gcc never
/// writes them for C, only inline assembly can.
const ASM_REFUSED: &[&str] = &[
    ".incbin",
    ".include",
    ".macro",
    ".irp",
    ".irpc",
    ".altmacro",
    ".purgem",
];

/// Reads the assembly gcc made of the unit: `Err` names a directive of
/// [`ASM_REFUSED`], found in `source` (the unit's text) where it can be.
pub fn assembly(asm: &str, source: &str) -> Result<(), Refusal> {
    for line in asm.lines() {
        // `#` starts a comment in x86 gas; `;` separates statements.
        let line = line.split('#').next().unwrap_or("");
        for stmt in line.split(';') {
            let mut s = stmt.trim();
            // Labels before a directive (`1: .incbin ...`).
            while let Some(k) = s.find(':') {
                let label = &s[..k];
                if !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c))
                {
                    s = s[k + 1..].trim_start();
                } else {
                    break;
                }
            }
            let lower = s.to_ascii_lowercase();
            let Some(d) = ASM_REFUSED.iter().find(|d| {
                lower.starts_with(**d)
                    && !lower[d.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            }) else {
                continue;
            };
            let name = &d[1..];
            // Point at the text where it can be: the first line naming it.
            let at = text_line(source, name);
            return Err(Refusal {
                at,
                why: format!(
                    "inline assembly uses `{d}`, which {}: refused before assembling",
                    if *d == ".incbin" || *d == ".include" {
                        "reads a file"
                    } else {
                        "can build directives that read files"
                    }
                ),
            });
        }
    }
    Ok(())
}

/// `path:line` of the first line of `source` containing `needle`
/// (case-insensitive), through its `#line` directives.
fn text_line(source: &str, needle: &str) -> String {
    let mut mark: Option<(usize, usize, String)> = None;
    for (i, l) in source.lines().enumerate() {
        let p = i + 1;
        let t = l.trim_start();
        if let Some(arg) = t.strip_prefix("#line")
            && let Some((n, Some(f))) = line_directive(arg)
        {
            mark = Some((p, n, f));
            continue;
        }
        if l.to_ascii_lowercase().contains(needle) {
            return match &mark {
                Some((at, n, f)) => format!("{f}:{}", n + p - at - 1),
                None => format!("line {p} of the extracted text"),
            };
        }
    }
    "the extracted text".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FN: &str = "#line 40 \"virt/kvm/guest_memfd.c\"\nint f(void)\n{\n";

    fn refused(body: &str) -> Refusal {
        text(&format!("{FN}{body}\n}}\n")).expect_err(body)
    }

    #[test]
    fn includes_out_of_the_shim_are_refused_at_the_trees_line() {
        let r = refused("#include \"/etc/passwd\"");
        assert_eq!(r.at, "virt/kvm/guest_memfd.c:42");
        assert!(r.why.contains("absolute path"), "{r}");
        assert!(refused("  # include <../../outside.h>").why.contains(".."));
        assert!(
            refused("#include_next <stdio.h>")
                .why
                .contains("not a header the shim")
        );
        assert!(refused("#embed \"/dev/zero\"").why.contains("absolute"));
        assert!(refused("%:include \"/dev/zero\"").why.contains("absolute"));
        assert!(
            refused("#\\\ninclude \"/etc/passwd\"")
                .why
                .contains("absolute")
        );
        assert!(
            refused("#define P \"/etc/passwd\"\n#include P")
                .why
                .contains("macro")
        );
        assert!(
            refused("#if __has_include(\"/etc/shadow\")\n#endif")
                .why
                .contains("absolute")
        );
        assert!(
            refused("#pragma GCC dependency \"/etc/passwd\"")
                .why
                .contains("dependency")
        );
        assert!(refused("#line 1 \"/etc/passwd\"").why.contains("#line"));
        assert!(refused("# 1 \"../../x\"").why.contains(".."));
    }

    #[test]
    fn the_shims_headers_comments_and_strings_pass() {
        let ok = "#include <kunit/test.h>\n/* #include \"/etc/passwd\" */\n\
                  // #include </dev/zero>\nconst char *s = \"#include </etc/x>\";\n\
                  #line 7 \"arch/x86/kvm/svm/sev.c\"\n";
        assert_eq!(text(&format!("{FN}{ok}}}\n")), Ok(()));
    }

    #[test]
    fn assembler_file_reads_are_refused() {
        let src = "#line 10 \"a.c\"\nint f(void)\n{\n\tasm(\".incbin \\\"/etc/passwd\\\"\");\n}\n";
        let r = assembly("f:\n\t.incbin \"/etc/passwd\"\n\tret\n", src).expect_err("incbin");
        assert_eq!(r.at, "a.c:12");
        assert!(assembly("1: .IRP x,a\n", src).is_err());
        assert_eq!(
            assembly(
                "\t.section .text\n\t.include_ok:\n\tmovq %rax, %rbx # .incbin\n",
                src
            ),
            Ok(())
        );
    }
}
