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

#[cfg(test)]
mod tests {
    use super::*;

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
}
