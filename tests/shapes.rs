//! The shape registry (`checker/src/shapes.rs`) is data that must stay
//! true: every entry has a fixture that selects it, and no fixture selects
//! two entries of one operation — so adding a shape is one entry, one
//! fixture and this test, and two shapes can never both claim a tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gmem_checker::review::{FILES, shapes_selected};
use gmem_checker::shapes::SHAPES;
use gmem_checker::tree::{Tree, TreeSource};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tree a registry fixture names: a directory as it is, a `.c` file as
/// a one-file tree's `virt/kvm/guest_memfd.c`.
fn tree(fixture: &str) -> Tree {
    let path = fixtures().join(fixture);
    assert!(path.exists(), "{fixture}: no such fixture");
    let dir = if path.is_dir() {
        path
    } else {
        let dir = std::env::temp_dir().join(format!(
            "gmemforge-shape-{}-{}",
            fixture.replace('/', "-"),
            std::process::id()
        ));
        let to = dir.join("virt/kvm/guest_memfd.c");
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&path, &to).expect("copy");
        dir
    };
    Tree::open(&TreeSource::Dir(dir), FILES).expect("fixture reads")
}

#[test]
fn every_shape_has_a_fixture_that_selects_it_alone() {
    let mut ids = BTreeSet::new();
    for s in SHAPES {
        assert!(ids.insert(s.id), "{} is in the registry twice", s.id);
        let t = tree(s.fixture);
        for &op in s.ops {
            assert_eq!(
                shapes_selected(&t, op),
                [s.id],
                "{}: fixture {} must select it, and only it, for {op:?}",
                s.id,
                s.fixture
            );
        }
    }
}

#[test]
fn no_fixture_selects_two_shapes_of_one_operation() {
    let mut trees: BTreeSet<String> = SHAPES.iter().map(|s| s.fixture.to_owned()).collect();
    // Every whole fixture tree too, whether or not an entry names it.
    for e in std::fs::read_dir(fixtures()).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.join("virt/kvm").is_dir() {
            trees.insert(p.file_name().expect("name").to_string_lossy().into_owned());
        }
    }
    assert!(trees.len() >= 10, "{trees:?}");
    for f in &trees {
        let t = tree(f);
        for op in gmem_checker::compile::COp::ALL {
            let got = shapes_selected(&t, op);
            assert!(got.len() <= 1, "{f} selects {got:?} for {op:?}");
        }
    }
}

#[test]
fn architecture_md_tables_every_shape() {
    let doc = include_str!("../ARCHITECTURE.md");
    for s in SHAPES {
        assert!(
            doc.contains(&format!("| `{}` |", s.id)),
            "ARCHITECTURE.md's registry table lacks {}",
            s.id
        );
    }
}
