//! Locals a change leaves unused.
//!
//! A tree may keep a value of its own for the formula a fix replaces
//! (`pgoff_t pgoff = slot->gmem.index;` read only by `.start` and `.end`).
//! Once the formula is ours, the local is read nowhere, and the kernel's
//! W=1 build warns. Such a declaration goes with the formula; a local the
//! tree had left unused before stays, as everything the fix does not name.

use super::sempatch::{line_end, line_start};
use super::tokens::tokens;
use super::{parse, walk};

/// How often `name` is read in `text` as a variable (not as a member
/// after `.` or `->`), outside `skip`.
fn uses(text: &str, name: &str, skip: (usize, usize)) -> usize {
    let toks = tokens(text);
    toks.iter()
        .enumerate()
        .filter(|(i, t)| {
            &text[t.start..t.end] == name
                && !(skip.0 <= t.start && t.end <= skip.1)
                && !(*i > 0 && matches!(&text[toks[i - 1].start..toks[i - 1].end], "." | "->"))
        })
        .count()
}

/// The locals declared (one name per declaration) in `text`'s blocks:
/// (name, the declaration's byte range).
fn declared(text: &str) -> Vec<(String, (usize, usize))> {
    let Ok(tree) = parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.kind() != "declaration" || n.parent().is_none_or(|p| p.kind() != "compound_statement")
        {
            return;
        }
        let mut c = n.walk();
        let names: Vec<String> = n
            .children_by_field_name("declarator", &mut c)
            .filter_map(|mut d| {
                while d.kind() != "identifier" {
                    d = d.child_by_field_name("declarator")?;
                }
                Some(text[d.byte_range()].to_owned())
            })
            .collect();
        if let [name] = &names[..] {
            out.push((name.clone(), (n.start_byte(), n.end_byte())));
        }
    });
    out
}

/// `after` (`before` with a change made) without the declarations of the
/// locals `before` read and `after` no longer does; a blank line left
/// first in a block goes too.
pub fn drop_unused(before: &str, after: &str) -> String {
    let read_before: Vec<String> = declared(before)
        .into_iter()
        .filter(|(name, range)| uses(before, name, *range) > 0)
        .map(|(name, _)| name)
        .collect();
    let mut out = after.to_owned();
    // From the end, so earlier ranges stay valid.
    let mut gone: Vec<(usize, usize)> = declared(after)
        .into_iter()
        .filter(|(name, range)| read_before.contains(name) && uses(after, name, *range) == 0)
        .map(|(_, (s, e))| (line_start(after, s), line_end(after, e)))
        .collect();
    gone.sort();
    for (s, mut e) in gone.into_iter().rev() {
        let opens_block = out[..s].trim_end_matches([' ', '\t']).ends_with("{\n");
        if opens_block && out[e..].starts_with('\n') {
            e += 1;
        }
        out.replace_range(s..e, "");
    }
    out
}
