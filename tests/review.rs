//! `gmemforge review` on real trees: Debian's linux-source-6.12 (CI
//! installs it), the same files rewritten at test time back to their 2023
//! forms, and the team-written fixture trees (2023; 6.18 with TDX).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

fn review(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(["review", "--json", "--random", "300"])
        .args(args)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().expect("exited"),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr,
    )
}

fn item<'a>(r: &'a Value, op: &str) -> &'a Value {
    r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["operation"] == op)
        .unwrap_or_else(|| panic!("{op}: {r:#}"))
}

/// The review files of the 6.12 tarball, extracted once into a directory.
fn tree_612() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            Path::new(TARBALL).exists(),
            "{TARBALL} is missing: install Debian's linux-source-6.12 (scripts/test.sh does)"
        );
        let src =
            gmem_checker::tree::TreeSource::from_arg(Path::new(TARBALL), None).expect("tarball");
        let tree = gmem_checker::tree::Tree::open(&src, gmem_checker::review::FILES)
            .expect("tarball reads");
        let dir = std::env::temp_dir().join(format!("gmemforge-612-{}", std::process::id()));
        for f in gmem_checker::review::FILES {
            if let Some(text) = tree.file(f) {
                let p = dir.join(f);
                std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
                std::fs::write(&p, text).expect("write");
            }
        }
        std::fs::write(
            dir.join("Makefile"),
            "# extracted from linux-source-6.12 for a gmemforge test\n",
        )
        .expect("write");
        dir
    })
}

/// A copy of the 6.12 files with `edits` (path, from, to) applied.
fn rewritten(name: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gmemforge-{name}-{}", std::process::id()));
    for f in gmem_checker::review::FILES
        .iter()
        .chain(["Makefile"].iter())
    {
        if let Ok(text) = std::fs::read_to_string(tree_612().join(f)) {
            let mut text = text;
            for (path, from, to) in edits {
                if path == f {
                    assert!(text.contains(from), "{f} contains {from:?}");
                    text = text.replace(from, to);
                }
            }
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
    }
    dir
}

#[test]
fn linux_612_tarball_conforms() {
    let (code, r, err) = review(&["--tree", TARBALL]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(r["detected"]["profile"], "upstream");
    for i in r["items"].as_array().expect("items") {
        assert_eq!(i["verdict"], "conforms", "{i:#}");
        assert!(i["vectors"].as_u64().is_some_and(|n| n > 0), "{i:#}");
    }
    // 6.12 has no tdx.c: its TDX cases are model-only (a gap this tree
    // leaves), told apart from the 2023 rule's vectors (another profile).
    let c = item(&r, "classify");
    assert!(c["model_only"].as_u64().is_some_and(|n| n > 0), "{c:#}");
    assert_eq!(c["other_profile"], classify_rule_overrides(), "{c:#}");
}

/// The two shapes of bind (tests/fixtures/bind-shapes/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindShape {
    /// kvm_gmem_bind(): 6.8 to 6.12.117, mainline before 7.2.
    OneCall,
    /// kvm_gmem_prepare_memory_region() + kvm_gmem_commit_memory_region():
    /// 7.2, 6.12.118+.
    Split,
}

impl BindShape {
    fn functions(self) -> &'static [&'static str] {
        match self {
            BindShape::OneCall => &["kvm_gmem_bind"],
            BindShape::Split => &[
                "kvm_gmem_prepare_memory_region",
                "kvm_gmem_commit_memory_region",
            ],
        }
    }

    fn fixture(self) -> String {
        let name = match self {
            BindShape::OneCall => "one-call.c",
            BindShape::Split => "split.c",
        };
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bind-shapes")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

/// The bind shape a guest_memfd.c holds.
fn bind_shape_of(src: &str) -> BindShape {
    let has = |n| matches!(gmem_codegen::cparse::find(src, n), Ok(Some(_)));
    match (has("kvm_gmem_bind"), has("kvm_gmem_commit_memory_region")) {
        (true, false) => BindShape::OneCall,
        (false, true) => BindShape::Split,
        other => panic!("guest_memfd.c holds neither bind shape alone: {other:?}"),
    }
}

/// The 6.12 files with guest_memfd.c's bind in `shape`: the tarball's own
/// when it has that shape, else the team's (the other shape's functions
/// taken out, the fixture's put where the first of them was); then
/// `edits` (from, to) in guest_memfd.c.
fn with_bind_shape(name: &str, shape: BindShape, edits: &[(&str, &str)]) -> PathBuf {
    let dir = rewritten(name, &[]);
    let path = dir.join("virt/kvm/guest_memfd.c");
    let mut text = std::fs::read_to_string(&path).expect("read");
    let have = bind_shape_of(&text);
    if have != shape {
        let mut spans: Vec<(usize, usize)> = have
            .functions()
            .iter()
            .map(|n| {
                let f = gmem_codegen::cparse::find(&text, n)
                    .expect("parses")
                    .unwrap_or_else(|| panic!("{n}"));
                (f.start, f.end)
            })
            .collect();
        spans.sort();
        for (k, (start, end)) in spans.iter().enumerate().rev() {
            let with = if k == 0 {
                shape.fixture()
            } else {
                String::new()
            };
            text.replace_range(start..end, with.trim_end());
        }
        assert_eq!(bind_shape_of(&text), shape);
    }
    for (from, to) in edits {
        assert!(text.contains(from), "guest_memfd.c contains {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).expect("write");
    dir
}

/// 6.8's loff_t offset and size, in either shape.
const LOFF_BIND: [(&str, &str); 2] = [
    (
        "unsigned int fd, u64 offset)",
        "unsigned int fd, loff_t offset)",
    ),
    (
        "\tu64 size = slot->npages << PAGE_SHIFT;",
        "\tloff_t size = slot->npages << PAGE_SHIFT;",
    ),
];

#[test]
fn both_bind_shapes_of_612_conform_and_the_evidence_names_the_shape() {
    for (shape, called, contract) in [
        (BindShape::OneCall, "kvm_gmem_bind", "kvm_gmem_bind()"),
        (
            BindShape::Split,
            "kvm_gmem_prepare_memory_region, kvm_gmem_commit_memory_region",
            "-EEXIST",
        ),
    ] {
        let dir = with_bind_shape(&format!("bind-{shape:?}"), shape, &[]);
        let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
        let bind = item(&r, "bind");
        assert_eq!(bind["verdict"], "conforms", "{shape:?}: {err}\n{bind:#}");
        assert_eq!(bind["function"], called, "{bind:#}");
        assert_eq!(code, 0, "{shape:?}: {err}\n{r:#}");
        let evidence = r["detected"]["operations"]
            .as_array()
            .expect("operations")
            .iter()
            .find(|o| o["operation"] == "bind")
            .and_then(|o| o["evidence"].as_str())
            .expect("bind evidence");
        assert!(evidence.contains(contract), "{shape:?}: {evidence}");
    }
    // Mainline spells the split's offset uoff_t: the shim knows the type.
    let dir = with_bind_shape(
        "bind-uoff",
        BindShape::Split,
        &[
            (
                "unsigned int fd, u64 offset)",
                "unsigned int fd, uoff_t offset)",
            ),
            (
                "\tu64 size = slot->npages << PAGE_SHIFT;",
                "\tuoff_t size = slot->npages << PAGE_SHIFT;",
            ),
        ],
    );
    let (_, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(item(&r, "bind")["verdict"], "conforms", "{err}\n{r:#}");
    assert!(
        r["detected"]["operations"]
            .to_string()
            .contains("uoff_t offset (mainline)"),
        "{r:#}"
    );
}

#[test]
fn the_loff_t_wrap_diverges_in_either_bind_shape_and_commit_einval_in_the_split() {
    for shape in [BindShape::OneCall, BindShape::Split] {
        let dir = with_bind_shape(&format!("loff-{shape:?}"), shape, &LOFF_BIND);
        let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
        assert_eq!(code, 1, "{err}");
        let bind = item(&r, "bind");
        assert_eq!(bind["verdict"], "diverges", "{shape:?}: {bind:#}");
        // The wrap binds past the end of the file: the C says 0.
        assert!(
            bind["counterexample"]["why"]
                .as_str()
                .is_some_and(|w| w.contains("returned 0")),
            "{bind:#}"
        );
    }
    let dir = with_bind_shape(
        "commit-einval",
        BindShape::Split,
        &[("\t\treturn -EEXIST;", "\t\treturn -EINVAL;")],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let bind = item(&r, "bind");
    assert_eq!(bind["verdict"], "diverges", "{bind:#}");
    assert!(
        bind["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("model -EEXIST")),
        "{bind:#}"
    );
}

#[test]
fn the_2023_range_formula_diverges_with_a_counterexample() {
    let dir = rewritten(
        "range2023",
        &[
            (
                "virt/kvm/guest_memfd.c",
                ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
                ".start = slot->base_gfn + start - pgoff,",
            ),
            (
                "virt/kvm/guest_memfd.c",
                ".end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,",
                ".end = slot->base_gfn + min(end - pgoff, slot->npages),",
            ),
        ],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let inv = item(&r, "invalidate");
    assert_eq!(inv["verdict"], "diverges", "{inv:#}");
    assert!(
        inv["function"]
            .as_str()
            .is_some_and(|f| f.contains("kvm_gmem_invalidate_begin"))
    );
    let c = &inv["counterexample"];
    assert!(
        c["input"]["slots"].is_array() && c["why"].is_string(),
        "{c:#}"
    );
    // The other operations are untouched and still conform.
    assert_eq!(item(&r, "prepare")["verdict"], "conforms");
}

#[test]
fn the_2023_u32_error_code_diverges() {
    let dir = rewritten(
        "err2023",
        &[(
            "arch/x86/kvm/mmu/mmu_internal.h",
            "u64 err, bool prefetch,",
            "u32 err, bool prefetch,",
        )],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let c = item(&r, "classify");
    assert_eq!(c["verdict"], "diverges", "{c:#}");
    // Any error-code bit above 31 is lost on the way to kvm_mmu_do_page_fault().
    assert!(
        c["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("error code")),
        "{c:#}"
    );
    assert_eq!(item(&r, "invalidate")["verdict"], "conforms");
}

fn fixture() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gmem-solo-2023").to_owned()
}

#[test]
fn the_2023_fixture_is_reviewed_with_the_2023_profile() {
    let (code, r, err) = review(&["--tree", &fixture()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["detected"]["profile"], "gmem-solo-2023", "{r:#}");
    assert_eq!(item(&r, "invalidate")["verdict"], "diverges");
    assert_eq!(item(&r, "classify")["verdict"], "diverges");
    assert_eq!(
        item(&r, "bind")["verdict"],
        "conforms",
        "{:#}",
        item(&r, "bind")
    );
    // It holds kvm_gmem_get_pfn(), which reaches no prepare hook.
    let g = item(&r, "get-pfn");
    assert_eq!(g["verdict"], "diverges", "{g:#}");
    assert!(
        g["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("C nothing, model gmem_prepare")),
        "{g:#}"
    );
    for op in ["prepare", "gmem-invalidate", "pre-fault"] {
        let i = item(&r, op);
        assert_eq!(i["verdict"], "missing", "{i:#}");
        assert!(
            i["error"]
                .as_str()
                .is_some_and(|e| e.contains("arch/x86/kvm/")),
            "says where it looked: {i:#}"
        );
    }
}

#[test]
fn a_partial_tree_is_reviewed_for_what_it_holds() {
    let dir = std::env::temp_dir().join(format!("gmemforge-partial-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    std::fs::copy(
        Path::new(&fixture()).join("virt/kvm/guest_mem.c"),
        dir.join("virt/kvm/guest_mem.c"),
    )
    .expect("copy");
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(item(&r, "invalidate")["verdict"], "diverges");
    assert_eq!(item(&r, "bind")["verdict"], "conforms");
    assert_eq!(item(&r, "classify")["verdict"], "missing");
}

#[test]
fn a_tree_without_guest_memfd_is_bad_input() {
    let dir = std::env::temp_dir().join(format!("gmemforge-none-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    std::fs::write(dir.join("Makefile"), "VERSION = 6\n").expect("write");
    let (code, _, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the tree has no guest_memfd") && err.contains("guest_memfd.c"),
        "{err}"
    );
    // A guest_memfd.c of a shape no generation has: said as that.
    std::fs::write(dir.join("virt/kvm/guest_memfd.c"), "int x;\n").expect("write");
    let (code, _, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no known guest_memfd generation; looked for"),
        "{err}"
    );
    let (code, _, err) = review(&["--tree", "/nonexistent/linux"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/linux"), "{err}");
}

/// Debian's linux-source-6.1: a real kernel from before guest_memfd.
#[test]
fn linux_61_has_no_guest_memfd_and_says_so() {
    let tarball = "/usr/src/linux-source-6.1.tar.xz";
    assert!(
        Path::new(tarball).exists(),
        "{tarball} is missing: install linux-source-6.1 (scripts/test.sh does)"
    );
    let (code, _, err) = review(&["--tree", tarball]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the tree has no guest_memfd"), "{err}");
}

fn fixture_618() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream-6.18"
    ))
}

/// A copy of the 6.18 fixture (only `files`, or all of it when empty) with
/// `edits` (path, from, to) applied; each edit must change its file.
fn variant_618(name: &str, files: &[&str], edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gmemforge-618-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for f in gmem_checker::review::FILES {
        if !files.is_empty() && !files.contains(f) {
            continue;
        }
        let Ok(mut text) = std::fs::read_to_string(fixture_618().join(f)) else {
            continue;
        };
        for (path, from, to) in edits {
            if path == f {
                assert!(text.contains(from), "{f} contains {from:?}");
                text = text.replace(from, to);
            }
        }
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    }
    dir
}

/// The shared classify vectors that set a private-fault rule of their own
/// (the 2023 design's configurable rule, which no upstream tree has).
fn classify_rule_overrides() -> u64 {
    let src = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/classify.json"
    ));
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(src).expect("read")).expect("json");
    let n = c["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .filter(|v| !v["input"].get("rule").is_none_or(Value::is_null))
        .count();
    assert!(n > 0, "the vectors hold rule overrides");
    n as u64
}

#[test]
fn the_618_fixture_with_tdx_conforms_on_every_operation() {
    let (code, r, err) = review(&["--tree", fixture_618().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(r["detected"]["profile"], "upstream", "{err}");
    assert_eq!(r["detected"]["per_inode"], true);
    for i in r["items"].as_array().expect("items") {
        assert_eq!(i["verdict"], "conforms", "{i:#}");
        assert!(i["vectors"].as_u64().is_some_and(|n| n > 0), "{i:#}");
    }
    assert!(
        item(&r, "invalidate")["function"]
            .as_str()
            .is_some_and(|f| f.contains("__kvm_gmem_invalidate_begin"))
    );
    // Every TDX case went through the tree's EPT-violation exit: none is
    // model-only. The vectors of the 2023 configurable rule are counted
    // apart, as another profile's.
    let c = item(&r, "classify");
    assert_eq!(c["model_only"], 0, "{c:#}");
    assert_eq!(c["other_profile"], classify_rule_overrides(), "{c:#}");
    // ... and the item says so: the exit is among the functions it names.
    assert!(
        c["function"]
            .as_str()
            .is_some_and(|f| f.ends_with(", tdx_handle_ept_violation")),
        "{c:#}"
    );
}

/// The 6.18 fixture as mainline has it after 6.18: no prepared-folio state,
/// the prepare hook at every fault (still at the folio's head); `extra`
/// edits on top.
fn mainline_get_pfn(name: &str, extra: &[(&str, &str, &str)]) -> PathBuf {
    const GMEM: &str = "virt/kvm/guest_memfd.c";
    let mut edits = vec![
        (
            GMEM,
            "\t\t\t\t\tbool *is_prepared, int *max_order)",
            "\t\t\t\t\tint *max_order)",
        ),
        (GMEM, "\t*is_prepared = folio_test_uptodate(folio);\n", ""),
        (GMEM, "\tbool is_prepared = false;\n", ""),
        (GMEM, "pfn, &is_prepared, max_order);", "pfn, max_order);"),
        (
            GMEM,
            "\tif (!is_prepared)\n\t\tr = kvm_gmem_prepare_folio(",
            "\tr = kvm_gmem_prepare_folio(",
        ),
    ];
    edits.extend_from_slice(extra);
    variant_618(name, &[], &edits)
}

#[test]
fn mainline_preparing_at_every_fault_is_reviewed_with_that_contract() {
    let dir = mainline_get_pfn("every-fault", &[]);
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let g = item(&r, "get-pfn");
    assert_eq!(g["verdict"], "conforms", "{g:#}");
    // The region bound's faults on 4K folios ran (its large-folio half is
    // a state mainline cannot reach: model-only).
    assert!(g["vectors"].as_u64().is_some_and(|n| n > 600_000), "{g:#}");
    assert!(
        g["model_only"].as_u64().is_some_and(|n| n > 600_000),
        "{g:#}"
    );
    let shape = r["detected"]["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .find(|o| o["operation"] == "get-pfn")
        .expect("get-pfn shape");
    assert!(
        shape["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("prepares at every fault")),
        "{shape:#}"
    );
    // A prepare whose failure is dropped diverges under this contract.
    let dir = mainline_get_pfn(
        "every-fault-ignored",
        &[(
            "virt/kvm/guest_memfd.c",
            "\tr = kvm_gmem_prepare_folio(kvm, slot, gfn, folio);",
            "\tkvm_gmem_prepare_folio(kvm, slot, gfn, folio);",
        )],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}\n{r:#}");
    let g = item(&r, "get-pfn");
    assert_eq!(g["verdict"], "diverges", "{g:#}");
    assert!(
        g["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("C returned 0")),
        "{g:#}"
    );
}

#[test]
fn the_618_fixture_with_bugs_diverges_on_each_buggy_operation() {
    let dir = variant_618(
        "bugs",
        &[],
        &[
            // Signed: an offset near 2^63 wraps past the end-of-file check.
            (
                "virt/kvm/guest_memfd.c",
                "unsigned int fd, u64 offset)\n{\n\tu64 size",
                "unsigned int fd, loff_t offset)\n{\n\tloff_t size",
            ),
            (
                "virt/kvm/guest_memfd.c",
                "if (!PAGE_ALIGNED(offset) || offset + size > i_size_read(inode))",
                "if (offset < 0 || !PAGE_ALIGNED(offset) || offset + size > i_size_read(inode))",
            ),
            // The shared-bit test inverted: shared GPAs become private.
            (
                "arch/x86/kvm/vmx/common.h",
                "return !kvm_is_addr_direct(kvm, gpa);",
                "return kvm_is_addr_direct(kvm, gpa);",
            ),
        ],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let b = item(&r, "bind");
    assert_eq!(b["verdict"], "diverges", "{b:#}");
    assert!(
        b["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("returned 0, model -EINVAL")),
        "{b:#}"
    );
    let c = item(&r, "classify");
    assert_eq!(c["verdict"], "diverges", "{c:#}");
    assert_eq!(c["counterexample"]["input"]["vm_type"], "tdx", "{c:#}");
    assert!(
        c["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("is_private")),
        "{c:#}"
    );
    for op in [
        "invalidate",
        "prepare",
        "gmem-invalidate",
        "pre-fault",
        "punch-hole",
        "get-pfn",
    ] {
        assert_eq!(item(&r, op)["verdict"], "conforms", "{op}: {r:#}");
    }
}

#[test]
fn the_618_shapes_wrong_shared_bit_and_2023_range_diverge() {
    let dir = variant_618(
        "bit51",
        &[
            "virt/kvm/guest_memfd.c",
            "arch/x86/kvm/mmu/mmu_internal.h",
            "arch/x86/kvm/mmu/mmu.c",
            "arch/x86/kvm/svm/svm.c",
            "arch/x86/kvm/svm/sev.c",
            "arch/x86/kvm/vmx/tdx.c",
            "arch/x86/kvm/vmx/common.h",
        ],
        &[
            // The shared bit of 5-level EPT, whatever the TD's GPAW.
            (
                "arch/x86/kvm/vmx/common.h",
                "return !kvm_is_addr_direct(kvm, gpa);",
                "return !(gpa & BIT_ULL(51));",
            ),
            // The 2023 start: the part of the slot before the range too.
            (
                "virt/kvm/guest_memfd.c",
                ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
                ".start = slot->base_gfn + start - pgoff,",
            ),
        ],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["detected"]["per_inode"], true);
    let c = item(&r, "classify");
    assert_eq!(c["verdict"], "diverges", "{c:#}");
    assert_eq!(c["counterexample"]["input"]["tdx_shared_bit"], 47, "{c:#}");
    assert_eq!(item(&r, "invalidate")["verdict"], "diverges");
    assert_eq!(item(&r, "bind")["verdict"], "conforms");
}

#[test]
fn a_function_that_does_not_compile_is_an_error_pointing_at_the_tree() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream-6.18");
    let dir =
        std::env::temp_dir().join(format!("gmemforge-618-noncompiling-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    let src =
        std::fs::read_to_string(Path::new(fixture).join("virt/kvm/guest_memfd.c")).expect("read");
    // A vendor tree calling something the shim (and the kernel) never had.
    let bad = src.replace(
        "\t\tflush |= kvm_mmu_unmap_gfn_range(kvm, &gfn_range);",
        "\t\tflush |= vendor_unmap_fancy(kvm, &gfn_range, 42);",
    );
    assert_ne!(bad, src);
    let line = bad
        .lines()
        .position(|l| l.contains("vendor_unmap_fancy"))
        .expect("there")
        + 1;
    std::fs::write(dir.join("virt/kvm/guest_memfd.c"), bad).expect("write");
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let inv = item(&r, "invalidate");
    assert_eq!(inv["verdict"], "error", "{inv:#}");
    let msg = inv["error"].as_str().expect("the compiler's message");
    assert!(
        msg.contains(&format!("virt/kvm/guest_memfd.c:{line}:")),
        "points at the tree's file and line {line}: {msg}"
    );
}

#[test]
fn linux_612_without_the_prepare_call_diverges_on_get_pfn() {
    // The 2023 failure: the SEV side exists, the fault path never calls it.
    let dir = rewritten(
        "unwired612",
        &[(
            "virt/kvm/guest_memfd.c",
            "\tif (!is_prepared)\n\t\tr = kvm_gmem_prepare_folio(kvm, slot, gfn, folio);\n",
            "",
        )],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let g = item(&r, "get-pfn");
    assert_eq!(g["verdict"], "diverges", "{g:#}");
    assert!(
        g["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("C nothing, model gmem_prepare")),
        "{g:#}"
    );
    // sev_gmem_prepare() itself is untouched: its own operation conforms.
    assert_eq!(item(&r, "prepare")["verdict"], "conforms");
}

#[test]
fn linux_612_without_free_folio_in_its_aops_diverges_on_punch_hole() {
    let dir = rewritten(
        "unregistered612",
        &[(
            "virt/kvm/guest_memfd.c",
            "#ifdef CONFIG_HAVE_KVM_ARCH_GMEM_INVALIDATE\n\t.free_folio = kvm_gmem_free_folio,\n#endif\n",
            "",
        )],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let p = item(&r, "punch-hole");
    assert_eq!(p["verdict"], "diverges", "{p:#}");
    // kvm_gmem_free_folio() is still defined: the body is fine, the wiring is not.
    assert_eq!(item(&r, "gmem-invalidate")["verdict"], "conforms");
    assert_eq!(item(&r, "get-pfn")["verdict"], "conforms");
}

#[test]
fn linux_612_without_its_svm_x86_ops_hooks_diverges_on_get_pfn_and_prepare() {
    // sev.c still defines both: only the vendor table lost them.
    let dir = rewritten(
        "noop612",
        &[
            (
                "arch/x86/kvm/svm/svm.c",
                "\t.gmem_prepare = sev_gmem_prepare,\n",
                "",
            ),
            (
                "arch/x86/kvm/svm/svm.c",
                "\t.private_max_mapping_level = sev_private_max_mapping_level,\n",
                "",
            ),
        ],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(item(&r, "get-pfn")["verdict"], "diverges", "{r:#}");
    let p = item(&r, "prepare");
    assert_eq!(p["verdict"], "diverges", "{p:#}");
    assert!(
        p["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("level")),
        "{p:#}"
    );
    assert_eq!(item(&r, "punch-hole")["verdict"], "conforms");
}

/// A one-file tree: only `virt/kvm/guest_memfd.c` of `src`.
fn one_file(name: &str, src: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gmemforge-one-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    std::fs::copy(
        src.join("virt/kvm/guest_memfd.c"),
        dir.join("virt/kvm/guest_memfd.c"),
    )
    .expect("copy");
    dir
}

#[test]
fn one_file_trees_get_pfn_checks_what_guest_memfd_calls() {
    let u68 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-6.8");
    let mainline = mainline_get_pfn("one-file-mainline", &[]);
    for (name, src, shape) in [
        ("6.8", u68.as_path(), "get-pfn-no-hook"),
        ("6.12", tree_612(), "get-pfn-prepared-once"),
        ("6.18", fixture_618(), "get-pfn-prepared-once"),
        ("mainline", mainline.as_path(), "get-pfn-every-fault"),
    ] {
        let dir = one_file(name, src);
        let (_, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
        let g = item(&r, "get-pfn");
        assert_eq!(g["verdict"], "conforms", "{name}: {err}\n{g:#}");
        assert!(g["vectors"].as_u64().is_some_and(|n| n > 1000), "{g:#}");
        let op = r["detected"]["operations"]
            .as_array()
            .expect("operations")
            .iter()
            .find(|o| o["operation"] == "get-pfn")
            .expect("get-pfn shape");
        assert_eq!(op["shape"], shape, "{name}: {op:#}");
        let note = g["not_checked"].as_str().unwrap_or("");
        if name == "6.8" {
            // No hook in that generation: nothing stands in, nothing to say.
            assert!(
                op["evidence"]
                    .as_str()
                    .is_some_and(|e| e.contains("no arch prepare hook"))
            );
            assert_eq!(note, "", "{g:#}");
        } else {
            // The registration is outside the tree, and the item says so.
            assert!(
                note.contains("arch/x86/kvm/svm/svm.c is not in the tree"),
                "{name}: {g:#}"
            );
        }
    }
    // The stand-in registers the hook; the tree's fault path must still
    // call it: without the call, get-pfn diverges.
    let dir = one_file(
        "mainline-unwired",
        &mainline_get_pfn(
            "mainline-unwired",
            &[(
                "virt/kvm/guest_memfd.c",
                "\tr = kvm_gmem_prepare_folio(kvm, slot, gfn, folio);",
                "\tr = 0;",
            )],
        ),
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(item(&r, "get-pfn")["verdict"], "diverges", "{r:#}");
}

fn in_place() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/in-place-2026")
}

#[test]
fn the_in_place_conversion_fixture_has_a_verdict_or_a_named_gap_per_operation() {
    let (code, r, err) = review(&["--tree", in_place().to_str().expect("utf-8")]);
    // One file: the x86 operations are missing, so not everything is proven.
    assert_eq!(code, 1, "{err}");
    for op in ["invalidate", "bind", "get-pfn"] {
        assert_eq!(item(&r, op)["verdict"], "conforms", "{op}: {r:#}");
    }
    let note = |op: &str| {
        item(&r, op)["not_checked"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        note("invalidate").contains("kvm_arch_gmem_invalidate_range()"),
        "{r:#}"
    );
    assert!(
        note("get-pfn").contains("kvm_arch_gmem_make_private()"),
        "{r:#}"
    );
    assert_eq!(note("bind"), "", "{r:#}");
    let punch = item(&r, "punch-hole");
    assert_eq!(punch["verdict"], "missing", "{punch:#}");
    assert!(
        punch["error"]
            .as_str()
            .is_some_and(|e| e.contains("not reviewed") && e.contains("kvm_arch_gmem_reclaim()")),
        "{punch:#}"
    );
    // Never an error for a name the shim could know.
    for i in r["items"].as_array().expect("items") {
        assert_ne!(i["verdict"], "error", "{i:#}");
    }
}

#[test]
fn the_in_place_fixtures_bugs_diverge() {
    let dir = std::env::temp_dir().join(format!("gmemforge-in-place-bugs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    let text = std::fs::read_to_string(in_place().join("virt/kvm/guest_memfd.c")).expect("read");
    let edits = [
        (
            ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
            ".start = slot->base_gfn + start - pgoff,",
        ),
        (
            "\t*max_order = 0;\n",
            "\t*max_order = folio_order(folio) + 9;\n",
        ),
        ("\t\treturn -EEXIST;", "\t\treturn -EINVAL;"),
    ];
    let mut bad = text.clone();
    for (from, to) in edits {
        assert!(bad.contains(from), "{from}");
        bad = bad.replace(from, to);
    }
    std::fs::write(dir.join("virt/kvm/guest_memfd.c"), bad).expect("write");
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    for op in ["invalidate", "bind", "get-pfn"] {
        assert_eq!(item(&r, op)["verdict"], "diverges", "{op}: {r:#}");
    }
}

#[test]
fn a_function_of_no_known_shape_is_an_error_never_a_guessed_contract() {
    // 6.18's per-file workers calling the 2023 unmap: no generation did.
    let dir = variant_618(
        "no-shape",
        &["virt/kvm/guest_memfd.c"],
        &[(
            "virt/kvm/guest_memfd.c",
            "flush |= kvm_mmu_unmap_gfn_range(kvm, &gfn_range);",
            "flush |= kvm_unmap_gfn_range(kvm, &gfn_range);",
        )],
    );
    let (code, r, err) = review(&["--tree", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    let inv = item(&r, "invalidate");
    assert_eq!(inv["verdict"], "error", "{inv:#}");
    assert!(
        inv["error"].as_str().is_some_and(
            |e| e.contains("__kvm_gmem_invalidate_begin() is of no shape review knows")
        ),
        "{inv:#}"
    );
    // The other operations keep their shapes.
    assert_eq!(item(&r, "bind")["verdict"], "conforms", "{r:#}");
}
