//! C that crashes or hangs is a finding, not a checker crash: the verdict
//! names the vector it happened on.

use gmem_checker::compile::{CSource, compile};
use gmem_checker::library::Library;
use gmem_checker::ops::{OPERATIONS, Source};
use gmem_checker::runner::{unit_defines, unit_ops};
use gmem_codegen::unit;
use gmem_reference::Profile;
use serde_json::Value;

/// The builtin upstream unit named `name`, with `extra` inserted in
/// `function` before the first `before`.
fn builtin_with(name: &str, function: &str, before: &str, extra: &str) -> unit::Unit {
    let mut u = unit::builtin(Profile::Upstream).expect("builtin unit");
    u.name = name.into();
    let f = u
        .functions
        .iter_mut()
        .find(|f| f.name == function)
        .expect("defined");
    let at = f.text.find(before).expect("the anchor");
    f.text.insert_str(at, extra);
    u
}

/// `u` compiled with `defines` and loaded.
fn open(u: &unit::Unit, defines: &[String]) -> Library {
    let path = compile(&CSource {
        name: &u.name,
        profile: u.profile,
        text: &u.text(),
        ops: &unit_ops(u),
        defines,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Library::open(&path).expect("loads")
}

/// The builtin upstream unit with `kvm_gmem_invalidate_begin()` given an
/// extra first statement.
fn broken(extra: &str) -> Library {
    let u = builtin_with(
        "test:broken",
        "kvm_gmem_invalidate_begin",
        "\txa_for_each_range",
        extra,
    );
    open(&u, &unit_defines(&u))
}

fn invalidate_outcome(lib: &Library) -> gmem_checker::ops::Outcome {
    let op = OPERATIONS
        .iter()
        .find(|o| o.name == "invalidate")
        .expect("registered");
    gmem_checker::runner::run_operation(
        op,
        lib,
        Profile::Upstream,
        &[Source::Exhaustive],
        2,
        &|_| Vec::<Value>::new(),
    )
}

#[test]
fn a_segfault_in_c_is_a_finding_with_its_vector() {
    let lib = broken("\tif (start == 5 && end == 9)\n\t\t*(volatile int *)NULL = 1;\n\n");
    let o = invalidate_outcome(&lib);
    let c = o.counterexample.expect("the crash is reported");
    assert!(c.why.contains("crashed: signal 11, SIGSEGV"), "{}", c.why);
    assert_eq!(
        (c.input["start"].as_u64(), c.input["end"].as_u64()),
        (Some(5), Some(9)),
        "{}",
        c.input
    );
}

#[test]
fn a_hang_in_c_is_a_finding_with_its_vector() {
    // A volatile read in a loop: the compiler may not drop it.
    let lib = broken(
        "\tif (start == 3 && end == 4)\n\t\tfor (;;)\n\t\t\t(void)READ_ONCE(gmem->kvm);\n\n",
    );
    let o = invalidate_outcome(&lib);
    let c = o.counterexample.expect("the hang is reported");
    assert!(c.why.contains("hung"), "{}", c.why);
    assert_eq!(
        (c.input["start"].as_u64(), c.input["end"].as_u64()),
        (Some(3), Some(4)),
        "{}",
        c.input
    );
}

#[test]
fn bug_on_in_c_is_a_crash_with_its_vector() {
    let lib = broken("\tBUG_ON(start == 2 && end == 7);\n\n");
    let o = invalidate_outcome(&lib);
    let c = o.counterexample.expect("BUG_ON is reported");
    assert!(c.why.contains("BUG()"), "{}", c.why);
    assert_eq!(
        (c.input["start"].as_u64(), c.input["end"].as_u64()),
        (Some(2), Some(7)),
        "{}",
        c.input
    );
}

#[test]
fn c_that_calls_exit_is_a_finding_with_its_vector() {
    let lib = broken(
        "\t{\n\t\textern void exit(int);\n\n\t\tif (start == 4 && end == 6)\n\t\t\texit(0);\n\t}\n\n",
    );
    let o = invalidate_outcome(&lib);
    let c = o.counterexample.expect("exit() is reported");
    assert!(c.why.contains("ended the process itself"), "{}", c.why);
    assert_eq!(
        (c.input["start"].as_u64(), c.input["end"].as_u64()),
        (Some(4), Some(6)),
        "{}",
        c.input
    );
}

#[test]
fn a_crash_in_get_pfn_shows_the_case_under_the_trees_contract() {
    // A tree that prepares at every fault (mainline after 6.18) gets every
    // get-pfn case with `every_fault` set; the case a crash report shows
    // must be that one, not the same case under the other contract.
    let u = builtin_with(
        "test:every-fault-crash",
        "kvm_gmem_get_pfn",
        "\tpgoff_t index",
        "\t*(volatile int *)NULL = 1;\n",
    );
    let crash = |defines: Vec<String>| {
        let lib = open(&u, &defines);
        let op = OPERATIONS
            .iter()
            .find(|o| o.name == "get-pfn")
            .expect("registered");
        let o = gmem_checker::runner::run_operation(
            op,
            &lib,
            Profile::Upstream,
            &[Source::Exhaustive],
            1,
            &|_| Vec::<Value>::new(),
        );
        let c = o.counterexample.expect("the crash is reported");
        assert!(c.why.contains("SIGSEGV"), "{}", c.why);
        // Serialised only when set.
        c.input["every_fault"].as_bool().unwrap_or(false)
    };
    let mut every = unit_defines(&u);
    every.push("GMF_GET_PFN_EVERY_FAULT".into());
    assert!(crash(every));
    assert!(!crash(unit_defines(&u)));
}
