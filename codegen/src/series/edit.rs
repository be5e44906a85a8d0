//! Where a patch's changes go in a file, as byte ranges.
//!
//! Functions are located with the C parser, structs and initializers by
//! their opening line; the change inside a range is `merge.rs`'s. New
//! functions go before a function (or at the end of the file), struct
//! members before the closing brace. Everything else in the file stays
//! byte-identical.

use crate::cparse;

/// Why a change cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceError(pub String);

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlaceError {}

/// The byte range of `within` in `src`: a function definition,
/// `struct NAME { ... };`, a variable's initializer (`var NAME`: a line
/// declaring NAME and ending in `= {`, through its `};`), or the whole
/// file (`*`, for wiring in headers and Kconfig-like places that hold no
/// function).
pub fn locate(path: &str, src: &str, within: &str) -> Result<(usize, usize), PlaceError> {
    if within == "*" {
        return Ok((0, src.len()));
    }
    if let Some(name) = within.strip_prefix("var ") {
        let mut at = 0;
        let mut found = None;
        for line in src.split_inclusive('\n') {
            let l = line.trim_end();
            let declares = l
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == name);
            if !l.starts_with(char::is_whitespace) && l.ends_with("= {") && declares {
                if found.is_some() {
                    return Err(PlaceError(format!("{path}: `{name} = {{` appears twice")));
                }
                found = Some(at);
            }
            at += line.len();
        }
        let start =
            found.ok_or_else(|| PlaceError(format!("{path}: no initializer `{name} ... = {{`")))?;
        let end = src[start..]
            .find("\n};")
            .map(|e| start + e + 3)
            .ok_or_else(|| PlaceError(format!("{path}: `{name}`'s initializer never closes")))?;
        return Ok((start, end));
    }
    if let Some(name) = within.strip_prefix("struct ") {
        let head = format!("struct {name} {{");
        let mut hits = src
            .match_indices(&head)
            .filter(|(i, _)| *i == 0 || src.as_bytes()[i - 1] == b'\n');
        let (start, _) = hits
            .next()
            .ok_or_else(|| PlaceError(format!("{path}: no `{head}` at the start of a line")))?;
        if hits.next().is_some() {
            return Err(PlaceError(format!("{path}: `{head}` appears twice")));
        }
        let end = src[start..]
            .find("\n};")
            .map(|e| start + e + 3)
            .ok_or_else(|| PlaceError(format!("{path}: `{head}` never closes")))?;
        return Ok((start, end));
    }
    let f = cparse::find(src, within)
        .map_err(|e| PlaceError(format!("{path}: {e}")))?
        .ok_or_else(|| PlaceError(format!("{within}(): no single definition in {path}")))?;
    Ok((f.start, f.end))
}

/// Writes `text` (a whole function) before the definition of `before`
/// (`$`: at the end of the file), separated by one blank line.
pub fn insert_before(
    path: &str,
    src: &str,
    before: &str,
    text: &str,
) -> Result<String, PlaceError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if before == "$" {
        return Ok(format!("{}\n\n{body}\n", src.trim_end_matches('\n')));
    }
    let (start, _) = locate(path, src, before)?;
    Ok(format!("{}{body}\n\n{}", &src[..start], &src[start..]))
}

/// Appends `text` to `struct NAME`, before its closing `};`.
pub fn append_to_struct(
    path: &str,
    src: &str,
    within: &str,
    text: &str,
) -> Result<String, PlaceError> {
    let (_, end) = locate(path, src, within)?;
    let close = end - "};".len();
    Ok(format!("{}{text}{}", &src[..close], &src[close..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "/* head */\nstruct s {\n\tconst u32 e;\n};\n\nstatic int f(u32 err, int x)\n{\n\treturn x;\n}\n\nint g(void)\n{\n\treturn 1;\n}\n";

    #[test]
    fn inserts_functions_and_struct_members() {
        let out = insert_before("x.c", SRC, "f", "static int h(void)\n{\n\treturn 3;\n}\n")
            .expect("placed");
        assert!(
            out.contains("};\n\nstatic int h(void)\n{\n\treturn 3;\n}\n\nstatic int f(u32 err"),
            "{out}"
        );
        let out = append_to_struct("x.c", SRC, "struct s", "\tu64 m;\n").expect("placed");
        assert!(
            out.starts_with("/* head */\nstruct s {\n\tconst u32 e;\n\tu64 m;\n};\n"),
            "{out}"
        );
    }

    #[test]
    fn initializers_whole_files_and_the_end_of_file() {
        let src =
            "static const struct ops my_ops = {\n\t.a = f,\n};\n\nint g(void)\n{\n\treturn 1;\n}\n";
        let out = append_to_struct("x.c", src, "var my_ops", "\t.b = h,\n").expect("placed");
        assert!(out.starts_with("static const struct ops my_ops = {\n\t.a = f,\n\t.b = h,\n};\n"));
        assert!(locate("x.c", src, "var other").is_err());
        assert_eq!(locate("x.c", src, "*").expect("placed"), (0, src.len()));
        let out = insert_before("x.c", src, "$", "int h(void)\n{\n}\n").expect("placed");
        assert!(
            out.ends_with("\treturn 1;\n}\n\nint h(void)\n{\n}\n"),
            "{out}"
        );
    }

    #[test]
    fn functions_and_structs_are_located() {
        let (s, e) = locate("x.c", SRC, "f").expect("found");
        assert!(SRC[s..e].starts_with("static int f(u32 err") && SRC[s..e].ends_with("}"));
        let (s, e) = locate("x.c", SRC, "struct s").expect("found");
        assert_eq!(&SRC[s..e], "struct s {\n\tconst u32 e;\n};");
        assert!(locate("x.c", SRC, "nope").is_err());
    }
}
