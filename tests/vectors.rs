//! Every shared vector (`tests/vectors/<op>.json`) through the model.
//!
//! A vector is `{id, comment, input, expected}`; `expected` is the model's
//! whole answer, or `{"refused": "<field>"}` for an input the model must
//! refuse, naming that field. Expected values were worked out from the
//! kernel sources and kernel-facts.md, not copied from the model's output.

use std::collections::BTreeSet;
use std::path::Path;

use gmemforge::model_cmd::{ModelOp, answer};
use serde_json::Value;

fn vector_file(op: ModelOp) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{}.json", op.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one file's vectors; returns how many ran.
fn check_op(op: ModelOp, ids: &mut BTreeSet<String>) -> usize {
    let file = vector_file(op);
    assert_eq!(
        file["operation"],
        op.name(),
        "{}.json names its operation",
        op.name()
    );
    let vectors = file["vectors"].as_array().expect("`vectors` is a list");
    let mut failures = Vec::new();
    for v in vectors {
        let id = v["id"].as_str().expect("every vector has an id").to_owned();
        assert!(
            v["comment"].as_str().is_some_and(|c| !c.is_empty()),
            "{id}: needs a comment"
        );
        assert!(ids.insert(id.clone()), "{id}: duplicate id");
        let input = v["input"].to_string();
        let got = answer(op, &id, &input);
        match (&v["expected"]["refused"], got) {
            (Value::String(field), Err(e)) => {
                let msg = e.to_string();
                if !msg.contains(&format!("`{field}`")) {
                    failures.push(format!(
                        "{id}: refused, but the message does not name `{field}`: {msg}"
                    ));
                }
            }
            (Value::String(field), Ok(out)) => failures.push(format!(
                "{id}: expected refusal naming `{field}`, got {out}"
            )),
            (_, Err(e)) => failures.push(format!("{id}: refused unexpectedly: {e}")),
            (_, Ok(out)) => {
                if out != v["expected"] {
                    failures.push(format!(
                        "{id}:\n  expected {}\n  model    {out}",
                        v["expected"]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {} vectors fail:\n{}",
        failures.len(),
        vectors.len(),
        op.name(),
        failures.join("\n")
    );
    vectors.len()
}

#[test]
fn every_vector_matches_the_model() {
    let mut ids = BTreeSet::new();
    let mut total = 0;
    for op in ModelOp::ALL {
        let n = check_op(op, &mut ids);
        assert!(n >= 5, "{}.json has only {n} vectors", op.name());
        total += n;
    }
    assert!(total >= 150, "only {total} vectors in all");
}
