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

mod field;
mod locals;
mod roles;
mod sempatch;
mod tokens;

use std::fmt;

use tree_sitter::{Node, Parser};

pub use field::{field_value, names_between};
pub use locals::drop_unused;
pub use sempatch::{Applied, SemLine, SemPatch};
pub use tokens::could_match;

/// Why a change did not place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced(pub String);

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(super) fn parse(text: &str) -> Result<tree_sitter::Tree, Unplaced> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_c::LANGUAGE.into())
        .map_err(|e| Unplaced(format!("tree-sitter-c: {e}")))?;
    parser
        .parse(text, None)
        .ok_or_else(|| Unplaced("tree-sitter gave up on the function".into()))
}

pub(super) fn walk<'t>(node: Node<'t>, f: &mut impl FnMut(Node<'t>)) {
    f(node);
    let mut c = node.walk();
    for ch in node.children(&mut c) {
        walk(ch, f);
    }
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
    fn a_removal_takes_one_blank_line_along_and_no_other_line_changes() {
        // The tree's own two blank lines stay; the removed statement's
        // blank neighbours become one.
        let f = "int f(int a)\n{\n\tint r;\n\n\n\tr = a;\n\n\tWARN(r);\n\n\treturn r;\n}\n";
        let Ok(Applied::Changed(out)) = sem(&["-WARN(_);"]).apply(f) else {
            panic!("places");
        };
        assert_eq!(
            out,
            "int f(int a)\n{\n\tint r;\n\n\n\tr = a;\n\n\treturn r;\n}\n"
        );
    }

    #[test]
    fn a_local_only_the_replaced_formula_read_goes_with_it() {
        let before = "static void f(pgoff_t start)\n{\n\tint spare;\n\n\tfor_each(slot) {\n\t\tpgoff_t pgoff = slot->gmem.index;\n\n\t\tstruct r r = {\n\t\t\t.start = slot->base_gfn + start - pgoff,\n\t\t\t.pgoff = 0,\n\t\t};\n\t\tzap(&r);\n\t}\n}\n";
        let after = before.replace("slot->base_gfn + start - pgoff", "first(slot, start)");
        let out = drop_unused(before, &after);
        assert_eq!(
            out,
            "static void f(pgoff_t start)\n{\n\tint spare;\n\n\tfor_each(slot) {\n\t\tstruct r r = {\n\t\t\t.start = first(slot, start),\n\t\t\t.pgoff = 0,\n\t\t};\n\t\tzap(&r);\n\t}\n}\n"
        );
        // Still read: stays.
        assert_eq!(drop_unused(before, before), before);
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
