//! An initializer's field, found by C structure.

use super::{Unplaced, parse, walk};

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
    // Parameters as the merge pairs them (`merge::params`).
    let params = crate::series::merge::params;
    let mut map: Vec<(String, String)> = match (params(ours), params(theirs)) {
        (Some(o), Some(t)) if o.len() == t.len() => o.into_iter().zip(t).collect(),
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
