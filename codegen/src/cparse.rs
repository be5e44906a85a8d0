//! Finding kernel functions in C source, with tree-sitter-c.
//!
//! Kernel files parse with a few ERROR nodes (attribute macros,
//! `for_each`-style loop macros); function definitions are still found,
//! including those inside `#ifdef` blocks and header include guards, and
//! inside ERROR nodes. Only locations are taken from the parse: the text of
//! a function is the file's own bytes, untouched.

use tree_sitter::{Node, Parser};

/// A function definition in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFunction {
    /// Its name.
    pub name: String,
    /// Byte range in the file, from the first token of the definition
    /// (storage class, return type) to the closing brace.
    pub start: usize,
    /// End of the range (exclusive).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
}

impl CFunction {
    /// The definition's text in `source`.
    pub fn text<'s>(&self, source: &'s str) -> &'s str {
        &source[self.start..self.end]
    }
}

/// Why a file could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn declarator_name<'s>(mut node: Node<'_>, source: &'s str) -> Option<&'s str> {
    // function_definition → (pointer_)declarator → function_declarator → identifier
    while let Some(d) = node.child_by_field_name("declarator") {
        node = d;
    }
    (node.kind() == "identifier").then(|| &source[node.byte_range()])
}

fn collect(node: Node<'_>, source: &str, out: &mut Vec<CFunction>) {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        match child.kind() {
            "function_definition" => {
                if let Some(name) = declarator_name(child, source) {
                    out.push(CFunction {
                        name: name.to_owned(),
                        start: child.start_byte(),
                        end: child.end_byte(),
                        line: child.start_position().row + 1,
                    });
                }
            }
            // Conditional compilation and recovered errors can hold whole
            // functions; so can a linkage block.
            "preproc_if"
            | "preproc_ifdef"
            | "preproc_else"
            | "preproc_elif"
            | "preproc_elifdef"
            | "ERROR"
            | "linkage_specification"
            | "declaration_list" => collect(child, source, out),
            _ => {}
        }
    }
}

/// Every function definition in `source`, in file order.
pub fn functions(source: &str) -> Result<Vec<CFunction>, ParseError> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_c::LANGUAGE.into())
        .map_err(|e| ParseError(format!("tree-sitter-c: {e}")))?;
    let tree = parser
        .parse(source, None)
        .ok_or_else(|| ParseError("tree-sitter gave up on the file".into()))?;
    let mut out = Vec::new();
    collect(tree.root_node(), source, &mut out);
    Ok(out)
}

/// The definition of `name`, if `source` has exactly one (a name defined
/// twice under different `#ifdef`s is ambiguous: None).
pub fn find(source: &str, name: &str) -> Result<Option<CFunction>, ParseError> {
    let mut found: Vec<CFunction> = functions(source)?
        .into_iter()
        .filter(|f| f.name == name)
        .collect();
    Ok(if found.len() == 1 { found.pop() } else { None })
}

/// A top-level definition whose braces do not balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbalanced {
    /// 1-based line the definition starts on.
    pub line: usize,
    /// 1-based line where it shows: a `}` that closes nothing, or the line
    /// where the next definition starts (or the last line) with a `{`
    /// still open.
    pub at: usize,
    /// A `}` too many (else a `}` missing).
    pub extra_close: bool,
}

impl std::fmt::Display for Unbalanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.extra_close {
            write!(
                f,
                "unbalanced braces: the '}}' at line {} closes nothing (the definition starting \
                 at line {} has a '}}' too many or a '{{' missing)",
                self.at, self.line
            )
        } else {
            write!(
                f,
                "unbalanced braces: the definition starting at line {} is still open at line {} \
                 (a '{{' too many or a '}}' missing)",
                self.line, self.at
            )
        }
    }
}

/// Whether `line` starts a top-level definition in kernel style: an
/// identifier in column 0 that is not a goto label.
fn starts_definition(line: &str) -> bool {
    let Some(c) = line.chars().next() else {
        return false;
    };
    if !(c.is_ascii_alphabetic() || c == '_') {
        return false;
    }
    let word_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let rest = line[word_end..].trim_start();
    let label = rest.starts_with(':') && !rest.starts_with("::") && {
        let after = rest[1..].trim();
        after.is_empty() || after.starts_with("/*") || after.starts_with("//")
    };
    !label
}

/// A top-level definition as kernel layout shows it: from a line starting
/// with an identifier in column 0 to the next such line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Byte range in the file.
    pub start: usize,
    /// End of the range (exclusive).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// Where its braces do not balance, if they do not.
    pub problem: Option<Unbalanced>,
}

/// The top-level definitions of `source`, by layout.
///
/// tree-sitter recovers from an unbalanced brace by taking a neighbour
/// into the function or by losing it (and everything after), which would
/// then be reported as the neighbour being absent. Kernel style makes the
/// damage local: each definition starts with an identifier in column 0
/// and its body is indented, so each is checked on its own (comments,
/// strings, character literals and preprocessor lines skipped) and one bad
/// function does not hide the others.
pub fn definitions(source: &str) -> Vec<Definition> {
    let mut out: Vec<Definition> = Vec::new();
    let mut depth: i64 = 0;
    let mut in_block = false;
    let mut continued = false;
    let mut at = 0usize;
    let mut n = 0usize;
    let close = |out: &mut Vec<Definition>, depth: i64, end: usize, n: usize| {
        if let Some(d) = out.last_mut() {
            d.end = end;
            if depth > 0 && d.problem.is_none() {
                d.problem = Some(Unbalanced {
                    line: d.line,
                    at: n,
                    extra_close: false,
                });
            }
        }
    };
    for line in source.split_inclusive('\n') {
        n += 1;
        let start = at;
        at += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        // A preprocessor line, and its continuations.
        let pre = continued || (!in_block && line.trim_start().starts_with('#'));
        continued = pre && line.ends_with('\\');
        if pre {
            continue;
        }
        if !in_block && starts_definition(line) {
            close(&mut out, depth, start, n);
            out.push(Definition {
                start,
                end: source.len(),
                line: n,
                problem: None,
            });
            depth = 0;
        }
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if in_block {
                if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    in_block = false;
                    i += 1;
                }
            } else {
                match b[i] {
                    b'/' if b.get(i + 1) == Some(&b'/') => break,
                    b'/' if b.get(i + 1) == Some(&b'*') => {
                        in_block = true;
                        i += 1;
                    }
                    q @ (b'"' | b'\'') => {
                        i += 1;
                        while i < b.len() && b[i] != q {
                            i += if b[i] == b'\\' { 2 } else { 1 };
                        }
                    }
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth < 0
                            && let Some(d) = out.last_mut()
                            && d.problem.is_none()
                        {
                            d.problem = Some(Unbalanced {
                                line: d.line,
                                at: n,
                                extra_close: true,
                            });
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
    }
    close(&mut out, depth, source.len(), n);
    out
}

/// `source` with every comment blanked: each byte of a `/* */` or `//`
/// comment becomes a space, newlines stay, strings and character literals
/// are kept whole. Lines and byte offsets are the source's, so a function
/// found in one is the same range in the other. For detection by text:
/// a comment that names a function or a field says nothing about the code.
pub fn code_only(source: &str) -> String {
    let mut out = source.as_bytes().to_vec();
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            b'/' if out.get(i + 1) == Some(&b'/') => {
                while i < out.len() && out[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if out.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..]
                    .find("*/")
                    .map_or(out.len(), |k| i + 2 + k + 2);
                for c in &mut out[i..end] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
                i = end;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < out.len() && out[i] != q && out[i] != b'\n' {
                    i += if out[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were written, each over a whole comment: the
    // multi-byte characters left are the source's own, intact.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The top-level definitions of `source` whose braces do not balance.
pub fn unbalanced(source: &str) -> Vec<Unbalanced> {
    definitions(source)
        .into_iter()
        .filter_map(|d| d.problem)
        .collect()
}

/// `find()`, and where a brace elsewhere in the file made the parser lose
/// `name`, its own definition (by layout, balanced) parsed alone.
pub fn find_recovering(source: &str, name: &str) -> Result<Option<CFunction>, ParseError> {
    if let Some(f) = find(source, name)? {
        return Ok(Some(f));
    }
    let defs = definitions(source);
    if defs.iter().all(|d| d.problem.is_none()) {
        return Ok(None);
    }
    let call = format!("{name}(");
    let mut found = Vec::new();
    for d in defs.iter().filter(|d| d.problem.is_none()) {
        let text = &source[d.start..d.end];
        if !text.lines().take(3).any(|l| l.contains(&call)) {
            continue;
        }
        if let Some(f) = find(text, name)? {
            found.push(CFunction {
                name: f.name,
                start: d.start + f.start,
                end: d.start + f.end,
                line: d.line + f.line - 1,
            });
        }
    }
    Ok(if found.len() == 1 { found.pop() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_only_blanks_comments_and_keeps_everything_else_in_place() {
        let src = "int a; /* is_prepared — ünïcode */ int b; // .attr_filter\n\
                   char *s = \"/* not a comment */\"; char c = '\\''; /* two\nlines */ x\n";
        let code = code_only(src);
        assert_eq!(code.len(), src.len());
        assert_eq!(
            code.lines().count(),
            src.lines().count(),
            "newlines stay: {code:?}"
        );
        assert!(
            !code.contains("is_prepared") && !code.contains("attr_filter"),
            "{code:?}"
        );
        assert!(!code.contains("two") && !code.contains("lines"), "{code:?}");
        for kept in [
            "int a;",
            "int b;",
            "\"/* not a comment */\"",
            "'\\''",
            " x\n",
        ] {
            assert!(code.contains(kept), "{kept} in {code:?}");
        }
        // A function found in the code is the same range in the source.
        let fsrc = "/* f() { } */\nstatic int f(void)\n{\n\treturn 1; /* } */\n}\n";
        let f = find(&code_only(fsrc), "f").expect("parses").expect("found");
        assert_eq!(
            f.text(fsrc),
            "static int f(void)\n{\n\treturn 1; /* } */\n}"
        );
        // An unterminated comment runs to the end.
        assert_eq!(code_only("a /* b"), "a     ");
    }

    const SRC: &str = "\
#ifndef X_H
#define X_H
static inline int kvm_a(struct kvm *kvm, u64 err)
{
\treturn err & 1;
}
#endif

#ifdef CONFIG_FOO
static int __maybe_unused *kvm_b(void)
{
\tlist_for_each_entry(p, &h, entry) {
\t\tfoo(p);
\t}
\treturn NULL;
}
#endif
int noinline kvm_c(int x) { return x; }
";

    #[test]
    fn finds_functions_in_ifdefs_and_guards() {
        let fs = functions(SRC).expect("parses");
        let names: Vec<&str> = fs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["kvm_a", "kvm_b", "kvm_c"]);
        let b = find(SRC, "kvm_b").expect("parses").expect("found");
        assert!(
            b.text(SRC)
                .starts_with("static int __maybe_unused *kvm_b(void)\n{")
        );
        assert!(b.text(SRC).ends_with("return NULL;\n}"));
        assert_eq!(b.line, 10);
        assert_eq!(find(SRC, "nope").expect("parses"), None);
    }

    #[test]
    fn unbalanced_braces_are_found_per_definition() {
        let good = "static int a(void)\n{\n\tif (x) {\n\t\ty(\"}\");\n\t}\nout:\n\treturn '{';\n}\n\n/* } */\nint b;\n";
        assert_eq!(unbalanced(good), []);
        // A '{' too many in a(): still open where b() starts.
        let extra = "static int a(void)\n{\n\tif (x) {\n\t\ty();\n}\n\nstatic int b(void)\n{\n\treturn 0;\n}\n";
        assert_eq!(
            unbalanced(extra),
            [Unbalanced {
                line: 1,
                at: 7,
                extra_close: false
            }]
        );
        // A '{' missing in b(): its last '}' closes nothing; a() is fine.
        let missing = "static int a(void)\n{\n\treturn 0;\n}\n\nstatic int b(void)\n{\n\tif (x)\n\t\ty();\n\t}\n\treturn 1;\n}\n";
        let u = unbalanced(missing);
        assert_eq!(
            u,
            [Unbalanced {
                line: 6,
                at: 12,
                extra_close: true
            }]
        );
        assert!(u[0].to_string().contains("line 12"), "{}", u[0]);
    }

    #[test]
    fn a_function_lost_to_a_neighbours_brace_is_recovered() {
        let src =
            "static int a(void)\n{\n\tif (x) {\n\t\ty();\n}\n\nint b(int v)\n{\n\treturn v;\n}\n";
        let f = find_recovering(src, "b").expect("parses").expect("found");
        assert_eq!(f.line, 7);
        assert_eq!(f.text(src), "int b(int v)\n{\n\treturn v;\n}");
        // a() itself is not made up from its broken text.
        assert_eq!(
            definitions(src)[0].problem,
            Some(Unbalanced {
                line: 1,
                at: 7,
                extra_close: false
            })
        );
    }
}

/// What one function's code holds, read from its parse tree (comments and
/// string literals are nodes of their own, so neither counts): the
/// functions it calls, every name it uses (identifiers, members, types,
/// macros) and its parameter list as written. What review's shape
/// registry matches a tree against, instead of substrings of the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Callees of call expressions whose callee is a plain name.
    pub calls: std::collections::BTreeSet<String>,
    /// Identifiers and type names anywhere in the definition; members
    /// (field names) as `.name`.
    pub names: std::collections::BTreeSet<String>,
    /// The parameter list, from `(` to `)`, whitespace runs made one space.
    pub params: String,
}

impl Facts {
    /// Whether the parameter list holds `text` (e.g. `uoff_t`,
    /// `struct kvm *`, `struct page **`), whitespace-insensitive.
    pub fn param(&self, text: &str) -> bool {
        // Whitespace runs as one space, none around `*`: `struct kvm *kvm`
        // and `struct kvm* kvm` are the same parameter.
        let squash = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" *", "*")
                .replace("* ", "*")
        };
        squash(&self.params).contains(&squash(text))
    }
}

fn facts_walk(node: Node<'_>, source: &str, f: &mut Facts) {
    match node.kind() {
        // A macro's definition is not its use.
        "comment"
        | "string_literal"
        | "char_literal"
        | "system_lib_string"
        | "preproc_def"
        | "preproc_function_def" => return,
        "identifier" | "type_identifier" => {
            f.names.insert(source[node.byte_range()].to_owned());
        }
        // A member, set or read, as `.name`: a local `index` is not
        // `slot->gmem.index`.
        "field_identifier" => {
            f.names.insert(format!(".{}", &source[node.byte_range()]));
        }
        "call_expression" => {
            if let Some(callee) = node.child_by_field_name("function")
                && callee.kind() == "identifier"
            {
                f.calls.insert(source[callee.byte_range()].to_owned());
            }
        }
        "parameter_list" if f.params.is_empty() => {
            f.params = source[node.byte_range()]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
        _ => {}
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        facts_walk(child, source, f);
    }
}

/// The facts of one function's text (a whole definition, as
/// `CFunction::text` gives it). Macros the parser does not know (loop
/// macros, attributes) leave ERROR nodes, whose tokens still count.
pub fn facts(text: &str) -> Facts {
    let mut f = Facts::default();
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_c::LANGUAGE.into())
        .is_err()
    {
        return f;
    }
    if let Some(tree) = parser.parse(text, None) {
        facts_walk(tree.root_node(), text, &mut f);
    }
    f
}

#[cfg(test)]
mod facts_tests {
    use super::*;

    #[test]
    fn facts_come_from_code_not_comments_or_strings() {
        let f = facts(
            "int kvm_gmem_prepare_memory_region(struct kvm *kvm,\n\
             \t\tstruct kvm_memory_slot *slot, unsigned int fd, uoff_t offset)\n{\n\
             \t/* was kvm_gmem_bind(): is_prepared */\n\
             \tpr_info(\"kvm_gmem_mark_prepared\");\n\
             \txa_for_each(&gmem->bindings, index, s) {\n\
             \t\tr.attr_filter = KVM_FILTER_PRIVATE;\n\
             \t\tkvm_mmu_unmap_gfn_range(kvm, &r);\n\t}\n\
             \treturn -EBADF;\n}\n",
        );
        assert!(f.param("uoff_t offset"));
        assert!(f.param("struct kvm* kvm"));
        assert!(!f.param("loff_t"));
        assert!(f.calls.contains("kvm_mmu_unmap_gfn_range"));
        assert!(f.calls.contains("pr_info"));
        assert!(f.names.contains(".attr_filter"));
        assert!(!f.names.contains("attr_filter"));
        assert!(f.names.contains("EBADF"));
        for absent in ["kvm_gmem_bind", "is_prepared", "kvm_gmem_mark_prepared"] {
            assert!(!f.names.contains(absent), "{absent}: {f:?}");
            assert!(!f.calls.contains(absent), "{absent}");
        }
    }
}
