//! The names a pattern's holes stand for in one function: its
//! parameters, the variable it returns, its `struct T *` variables.

use std::collections::BTreeMap;

use tree_sitter::Node;

use super::Unplaced;
use super::tokens::{Pat, tokens};
use super::walk;

/// The names holes stand for in one function.
pub(super) struct Roles {
    params: Vec<String>,
    ret: Option<String>,
    /// `struct T *NAME` declarations: T → the names.
    pointers: BTreeMap<String, Vec<String>>,
}

pub(super) fn roles(function: &str, root: Node<'_>) -> Roles {
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
    pub(super) fn get(&self, hole: &str) -> Result<String, Unplaced> {
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

pub(super) fn pattern(p: &str, roles: &Roles) -> Result<Vec<Pat>, Unplaced> {
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

/// `pattern` with each hole the function gives a name to read as that
/// name (`*$4 = _;` → `*pfn = _;`), for messages.
pub(super) fn readable(pattern: &str, roles: &Roles) -> String {
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
