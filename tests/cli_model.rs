//! `gmemforge model` through the real binary: answers on stdout, refusals
//! on stderr with exit status 2 and the field named, never a backtrace.

use std::io::Write;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn gmemforge(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let out = child.wait_with_output().expect("the binary ends");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const TWO_SLOTS: &str = r#"[{"id":0,"base_gfn":256,"npages":4,"pgoff":0},{"id":1,"base_gfn":512,"npages":4,"pgoff":4}]"#;

fn invalidate(start: u64, end: u64) -> String {
    let r = gmemforge(
        &["model", "invalidate"],
        &format!(r#"{{"slots":{TWO_SLOTS},"start":{start},"end":{end}}}"#),
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    r.stdout.trim().to_owned()
}

/// The two-slot table (A: base 0x100, pgoff 0; B: base 0x200, pgoff 4; 4 pages each), fixed (upstream) formula, row by row.
#[test]
fn two_slot_table_fixed_column() {
    let a = |s, e| format!(r#"{{"slot":0,"start":{s},"end":{e}}}"#);
    let b = |s, e| format!(r#"{{"slot":1,"start":{s},"end":{e}}}"#);
    let both = |x: String, y: String| format!(r#"{{"ranges":[{x},{y}],"mmu_invalidate":true}}"#);
    let one = |x: String| format!(r#"{{"ranges":[{x}],"mmu_invalidate":true}}"#);
    assert_eq!(invalidate(2, 6), both(a(0x102, 0x104), b(0x200, 0x202)));
    assert_eq!(invalidate(0, 8), both(a(0x100, 0x104), b(0x200, 0x204)));
    assert_eq!(invalidate(5, 6), one(b(0x201, 0x202)));
    assert_eq!(invalidate(1, 3), one(a(0x101, 0x103)));
    assert_eq!(
        invalidate(0, u64::MAX),
        both(a(0x100, 0x104), b(0x200, 0x204))
    );
}

fn refused(op: &str, input: &str, field: &str) {
    let r = gmemforge(&["model", op], input);
    assert_eq!(
        r.code, 2,
        "{op} {input}: stdout {} stderr {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    assert!(
        r.stderr.contains(field),
        "{op}: stderr names {field}: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_input_exits_2_naming_the_field() {
    refused(
        "invalidate",
        r#"{"slots":[{"id":0,"base_gfn":-1,"npages":4,"pgoff":0}],"start":0,"end":1}"#,
        "slots[0].base_gfn",
    );
    refused(
        "invalidate",
        r#"{"slots":[],"start":0,"end":18446744073709551616}"#,
        "end",
    );
    refused("invalidate", r#"{"slots":[],"start":0,"end":1.5}"#, "end");
    refused(
        "invalidate",
        r#"{"slots":[],"start":0,"end":1,"typo":3}"#,
        "typo",
    );
    refused("invalidate", r#"{"slots":[],"start":0"#, "stdin");
    refused("invalidate", r#"{"slots":[],"start":5,"end":5}"#, "start");
    refused(
        "classify",
        r#"{"vm_type":"sev-snp","error_code":0,"gpa":0}"#,
        "vm_type",
    );
    refused(
        "prepare",
        r#"{"pfn":1,"gfn":1,"max_order":0,"rmp":[{"pfn":3,"size":"2M"}]}"#,
        "rmp[0].pfn",
    );
    refused(
        "pre-fault",
        r#"{"gpa":0,"size":4096,"slots":[{"base_gfn":0,"npages":0}]}"#,
        "slots[0]",
    );
    refused(
        "bind",
        r#"{"files":[],"new":{"id":1,"base_gfn":0,"npages":0,"fd":3,"offset":0}}"#,
        "new.npages",
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(gmemforge(&["model", "nonsense"], "").code, 2);
    assert_eq!(gmemforge(&["frobnicate"], "").code, 2);
    let help = gmemforge(&["--help"], "");
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit status"), "{}", help.stdout);
}
