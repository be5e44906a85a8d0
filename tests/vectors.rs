//! Every shared vector (`tests/vectors/<op>.json`) through the model.
//!
//! A vector is `{id, comment, input, expected}`; `expected` is the model's
//! whole answer, or `{"refused": "<field>"}` for an input the model must
//! refuse, naming that field. Expected values were worked out from the
//! kernel sources (each vector's comment says which), not copied from the model's output.

use std::path::Path;

use gmemforge::vectors;

/// The files on disk (what `--vectors tests/vectors` reads) have the
/// shape `check` requires, every case agrees with the model, and each has
/// a comment saying where its expected value comes from.
#[test]
fn every_vector_matches_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let files = vectors::read(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let wrong = vectors::disagreements(&files);
    assert!(
        wrong.is_empty(),
        "{} vectors disagree with the model:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let mut total = 0;
    for (name, list) in &files {
        for v in list {
            assert!(
                v["comment"].as_str().is_some_and(|c| !c.is_empty()),
                "{name}: {}: needs a comment",
                v["id"]
            );
        }
        assert!(
            list.len() >= 5,
            "{name}.json has only {} vectors",
            list.len()
        );
        total += list.len();
    }
    assert_eq!(
        files.len(),
        gmemforge::model_cmd::ModelOp::ALL.len(),
        "one file per model operation"
    );
    assert!(total >= 150, "only {total} vectors in all");
}
