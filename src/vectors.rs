//! The shared vector files: where they come from, and what they promise.
//!
//! `tests/vectors/<op>.json` holds `{"operation", "vectors": [{id, comment,
//! input, expected}]}`; `expected` is the model's whole answer, or
//! `{"refused": "<field>"}` for an input the model must refuse. A vector
//! file is a test: before any C runs, every case goes through the model and
//! is compared with its `expected`.
//!
//! - A file that is not of that shape — not JSON, another operation's
//!   file, a case without an id, input or expected, an id used twice — is
//!   bad input (exit 2), named with the file and the case.
//! - A case whose `expected` the model does not give (a wrong value, a
//!   refusal where an answer is expected or the other way round) is a
//!   disagreement: reported with the file and the case id, and the run
//!   exits 1.
//!
//! The files of this repository are built into the binary, so an installed
//! gmemforge needs no checkout; `--vectors DIR` reads a directory instead.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::failure::Failure;
use crate::model_cmd::{ModelOp, answer};

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../tests/vectors/", $name, ".json")))),*]
    };
}

/// The repository's vector files, by operation name.
pub const EMBEDDED: &[(&str, &str)] = embed!(
    "invalidate",
    "classify",
    "prepare",
    "gmem-invalidate",
    "pre-fault",
    "bind",
    "fallocate",
    "lifecycle",
    "punch-hole",
    "get-pfn",
);

/// Vector files by operation name, as the checker takes them.
pub type Files = Vec<(String, Vec<Value>)>;

/// Reads the vector files: from `dir`, or the built-in ones. Each file is
/// checked for shape (see the module documentation).
pub fn read(dir: Option<&Path>) -> Result<Files, Failure> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for op in ModelOp::ALL {
        let (source, text) = match dir {
            None => {
                let Some((_, text)) = EMBEDDED.iter().find(|(n, _)| *n == op.name()) else {
                    continue;
                };
                (format!("built-in {}.json", op.name()), (*text).to_owned())
            }
            Some(dir) => {
                let path = dir.join(format!("{}.json", op.name()));
                match std::fs::read_to_string(&path) {
                    Ok(t) => (path.display().to_string(), t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Failure::input(format!("{}: {e}", path.display()))),
                }
            }
        };
        out.push((op.name().to_owned(), shape(op, &source, &text, &mut ids)?));
    }
    if out.is_empty() {
        let dir = dir.map_or_else(|| "built-in".into(), |d| d.display().to_string());
        return Err(Failure::input(format!(
            "--vectors {dir}: no vector files (<operation>.json) found"
        )));
    }
    Ok(out)
}

/// One file's vectors, checked for shape; `ids` collects ids across files.
fn shape(
    op: ModelOp,
    source: &str,
    text: &str,
    ids: &mut BTreeSet<String>,
) -> Result<Vec<Value>, Failure> {
    let bad = |m: String| Failure::input(format!("{source}: {m}"));
    let file: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match file.get("operation").and_then(Value::as_str) {
        Some(name) if name == op.name() => {}
        Some(name) => {
            return Err(bad(format!(
                "holds `{name}` vectors, but the file is named for `{}`",
                op.name()
            )));
        }
        None => return Err(bad("no `operation` name".into())),
    }
    let list = file
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `vectors` list".into()))?;
    for (i, v) in list.iter().enumerate() {
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("vectors[{i}]: no `id` string")))?;
        for field in ["input", "expected"] {
            if !v.get(field).is_some_and(Value::is_object) {
                return Err(bad(format!("{id}: no `{field}` object")));
            }
        }
        if !ids.insert(id.to_owned()) {
            return Err(bad(format!("{id}: the id is used twice")));
        }
    }
    Ok(list.clone())
}

/// Runs every case of `files` through the model; one line per case whose
/// `expected` the model does not give, naming the file and the case.
pub fn disagreements(files: &Files) -> Vec<String> {
    let mut out = Vec::new();
    for (name, list) in files {
        let Some(op) = ModelOp::ALL.into_iter().find(|o| o.name() == name) else {
            continue;
        };
        for v in list {
            let id = v["id"].as_str().unwrap_or("?");
            let got = answer(op, id, &v["input"].to_string());
            let at = format!("{name}.json {id}");
            match (&v["expected"]["refused"], got) {
                (Value::String(field), Err(e)) => {
                    let msg = e.to_string();
                    if !msg.contains(&format!("`{field}`")) {
                        out.push(format!(
                            "{at}: refused as expected, but not naming `{field}`: {msg}"
                        ));
                    }
                }
                (Value::String(field), Ok(a)) => out.push(format!(
                    "{at}: expected a refusal naming `{field}`, the model answers {a}"
                )),
                (_, Err(e)) => out.push(format!(
                    "{at}: the model refuses the input ({e}); expected {}",
                    v["expected"]
                )),
                (_, Ok(a)) => {
                    if a != v["expected"] {
                        out.push(format!(
                            "{at}: expected {}, the model answers {a}",
                            v["expected"]
                        ));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(op: &str, vectors: &str) -> String {
        format!(r#"{{"operation":"{op}","vectors":[{vectors}]}}"#)
    }

    const GOOD: &str = r#"{"id":"t-1","comment":"c","input":{"slots":[],"start":0,"end":1},"expected":{"ranges":[],"mmu_invalidate":false}}"#;

    #[test]
    fn shape_errors_name_the_file_and_case() {
        let mut ids = BTreeSet::new();
        let e = shape(ModelOp::Invalidate, "f.json", &one("bind", GOOD), &mut ids)
            .expect_err("wrong operation");
        assert!(
            e.to_string().contains("file is named for `invalidate`"),
            "{e}"
        );
        let twice = format!("{GOOD},{GOOD}");
        let e = shape(
            ModelOp::Invalidate,
            "f.json",
            &one("invalidate", &twice),
            &mut ids,
        )
        .expect_err("duplicate");
        assert!(e.to_string().contains("t-1: the id is used twice"), "{e}");
        let no_expected = r#"{"id":"t-2","input":{}}"#;
        let e = shape(
            ModelOp::Invalidate,
            "f.json",
            &one("invalidate", no_expected),
            &mut ids,
        )
        .expect_err("no expected");
        assert!(e.to_string().contains("t-2: no `expected` object"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_wrong_expected_is_a_disagreement_naming_the_case() {
        let wrong = GOOD.replace("\"mmu_invalidate\":false", "\"mmu_invalidate\":true");
        let refused_wrongly = r#"{"id":"t-3","input":{"slots":[],"start":5,"end":5},"expected":{"ranges":[],"mmu_invalidate":false}}"#;
        let files: Files = vec![(
            "invalidate".into(),
            serde_json::from_str::<Value>(&format!(
                "[{wrong},{refused_wrongly},{}]",
                GOOD.replace("t-1", "t-4")
            ))
            .expect("json")
            .as_array()
            .expect("list")
            .clone(),
        )];
        let d = disagreements(&files);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("invalidate.json t-1: expected"), "{d:?}");
        assert!(
            d[1].starts_with("invalidate.json t-3: the model refuses"),
            "{d:?}"
        );
    }

    #[test]
    fn the_built_in_files_are_whole_and_agree_with_the_model() {
        let files = read(None).expect("built-in files have the right shape");
        assert_eq!(files.len(), ModelOp::ALL.len());
        assert_eq!(disagreements(&files), Vec::<String>::new());
    }
}
