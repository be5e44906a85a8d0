//! `gmemforge review` of trees whose code attacks the reviewer: the tree's
//! C never runs with the reviewer's rights. Each tree is the 6.18
//! fixture's guest_memfd.c with something hostile at the top of
//! `kvm_gmem_bind()`'s body; each must be reported, naming what it tried,
//! exit 1, never `conforms`, and leave no file behind outside the test's
//! own temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIND: &str = "int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
\t\t  unsigned int fd, u64 offset)
{
";

/// A fresh directory for one case: the tree goes in `tree/`, markers the
/// hostile code targets beside it.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gmemforge-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tree/virt/kvm")).expect("mkdir");
    dir
}

/// Writes the 6.18 fixture's guest_memfd.c into `dir/tree` with `body`
/// at the start of kvm_gmem_bind(); returns the 1-based line `body`
/// starts on.
fn hostile_tree(dir: &Path, body: &str) -> usize {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream-6.18/virt/kvm/guest_memfd.c"
    ))
    .expect("the fixture");
    let at = src.find(BIND).expect("kvm_gmem_bind() in the fixture") + BIND.len();
    let line = src[..at].lines().count() + 1;
    let text = format!("{}{body}\n{}", &src[..at], &src[at..]);
    std::fs::write(dir.join("tree/virt/kvm/guest_memfd.c"), text).expect("write");
    line
}

/// Reviews `dir/tree` (with `--report` into `dir`): exit status, the
/// JSON, stdout and stderr as text, the report page, and the time taken.
fn review(dir: &Path) -> (i32, Value, String, Duration) {
    let report = dir.join("report.html");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args(["review", "--json", "--tree"])
        .arg(dir.join("tree"))
        .arg("--report")
        .arg(&report)
        .output()
        .expect("the binary runs");
    let took = t.elapsed();
    let page = std::fs::read_to_string(&report).unwrap_or_default();
    let text = format!(
        "{}\n{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().expect("exited"),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        text,
        took,
    )
}

fn bind(r: &Value) -> &Value {
    r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["operation"] == "bind")
        .unwrap_or_else(|| panic!("no bind item: {r:#}"))
}

/// Reviews a tree whose bind runs `body`: bind must diverge with a
/// counterexample whose explanation contains every one of `names`, the
/// whole review must not conform, and `marker` must not exist.
fn stopped(name: &str, body: impl Fn(&str) -> String, names: &[&str]) {
    let dir = scratch(name);
    let marker = dir.join("marker");
    let marker_s = marker.to_str().expect("utf-8");
    hostile_tree(&dir, &body(marker_s));
    let (code, r, text, took) = review(&dir);
    assert!(
        !marker.exists(),
        "{name}: the hostile code created {marker_s}"
    );
    assert_eq!(code, 1, "{name}: {text}");
    assert_ne!(r["verdict"], "conforms", "{name}: {text}");
    let b = bind(&r);
    assert_eq!(b["verdict"], "diverges", "{name}: {b:#}");
    let why = b["counterexample"]["why"].as_str().expect("why");
    for n in names {
        assert!(why.contains(n), "{name}: {n:?} not in {why:?}");
    }
    assert!(took < Duration::from_secs(120), "{name}: took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn system_through_a_block_scope_declaration_is_stopped() {
    stopped(
        "system",
        |m| format!("\t{{ extern int system(const char *); system(\"touch {m}\"); }}"),
        &["a confined child may not make", "stopped before it ran"],
    );
}

#[test]
fn a_raw_openat_for_writing_is_stopped_and_named() {
    stopped(
        "openat",
        |m| {
            format!(
                "\t{{ register long r10 asm(\"r10\") = 0600; long ret;
\t  asm volatile(\"syscall\" : \"=a\"(ret) : \"0\"(257L), \"D\"(-100L), \"S\"(\"{m}\"),
\t\t\"d\"(01101L), \"r\"(r10) : \"rcx\", \"r11\", \"memory\"); }}"
            )
        },
        &["openat", "marker", "for writing, creating it"],
    );
}

#[test]
fn a_raw_execve_is_stopped_and_named() {
    stopped(
        "execve",
        |m| {
            format!(
                "\t{{ const char *argv[] = {{ \"touch\", \"{m}\", 0 }}; long ret;
\t  asm volatile(\"syscall\" : \"=a\"(ret) : \"0\"(59L), \"D\"(\"/usr/bin/touch\"), \"S\"(argv),
\t\t\"d\"(0L) : \"rcx\", \"r11\", \"memory\"); }}"
            )
        },
        &["execve \"/usr/bin/touch\"", "run a program"],
    );
}

#[test]
fn a_raw_socket_is_stopped_and_named() {
    stopped(
        "socket",
        |_| {
            "\t{ long ret;
\t  asm volatile(\"syscall\" : \"=a\"(ret) : \"0\"(41L), \"D\"(2L), \"S\"(1L), \"d\"(0L)
\t\t: \"rcx\", \"r11\", \"memory\"); }"
                .to_owned()
        },
        &["socket", "use the network"],
    );
}

#[test]
fn a_raw_fork_is_stopped_and_named() {
    stopped(
        "fork",
        |_| {
            "\t{ long ret;
\t  asm volatile(\"syscall\" : \"=a\"(ret) : \"0\"(57L) : \"rcx\", \"r11\", \"memory\"); }"
                .to_owned()
        },
        &["fork", "start a process"],
    );
}

#[test]
fn a_fork_bomb_is_stopped_at_its_first_fork() {
    stopped(
        "forkbomb",
        |_| "\t{ extern int fork(void); for (;;) fork(); }".to_owned(),
        &["clone", "start a process"],
    );
}

#[test]
fn a_64_gib_allocation_is_stopped_with_its_size() {
    // Touches only its first and last byte: were it not stopped, this
    // must not take the machine's memory.
    stopped(
        "alloc",
        |_| {
            "\t{ extern void *malloc(unsigned long); volatile char *p = malloc(64UL << 30);
\t  if (p) { p[0] = 1; p[(64UL << 30) - 1] = 1; } }"
                .to_owned()
        },
        &["mmap", "to map 687194"],
    );
}

#[test]
fn a_loop_forever_is_reported_as_a_hang_in_bounded_time() {
    stopped(
        "hang",
        |_| "\tfor (;;)\n\t\tasm volatile(\"\");".to_owned(),
        &["hung"],
    );
}

/// Reviews a tree whose bind body starts with `include`: bind is an
/// error naming the tree's file and line and the header, and nothing of
/// what the header holds reaches the output or the report.
fn refused(name: &str, include: &str, what: &str) {
    let dir = scratch(name);
    // A header outside the tree, where `..` from the tree's file would
    // find it (tree/virt/kvm/../../outside.h is tree/outside.h; one more
    // level reaches the scratch directory).
    let secret = "GMF_SECRET_CONTENT_NOT_TO_BE_SHOWN";
    std::fs::write(dir.join("tree/outside.h"), format!("{secret}\n")).expect("write");
    std::fs::write(dir.join("outside.h"), format!("{secret}\n")).expect("write");
    let line = hostile_tree(&dir, &format!("#include {include}"));
    let (code, r, text, took) = review(&dir);
    assert_eq!(code, 1, "{name}: {text}");
    assert_ne!(r["verdict"], "conforms", "{name}: {text}");
    let b = bind(&r);
    assert_eq!(b["verdict"], "error", "{name}: {b:#}");
    let msg = b["error"].as_str().expect("error");
    assert!(
        msg.contains(&format!("virt/kvm/guest_memfd.c:{line}:")),
        "{name}: line {line} not in {msg}"
    );
    assert!(msg.contains(what), "{name}: {what:?} not in {msg}");
    assert!(
        !text.contains(secret),
        "{name}: the header's content was shown"
    );
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let first = passwd.lines().next().unwrap_or("root:x:0:0");
    assert!(
        !text.contains(first),
        "{name}: /etc/passwd's first line was shown"
    );
    assert!(took < Duration::from_secs(120), "{name}: took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn including_etc_passwd_is_refused_before_gcc_reads_it() {
    refused(
        "passwd",
        "\"/etc/passwd\"",
        "\"/etc/passwd\" is an absolute path",
    );
}

#[test]
fn including_dev_zero_is_refused_before_gcc_reads_it() {
    refused("zero", "\"/dev/zero\"", "\"/dev/zero\" is an absolute path");
}

#[test]
fn including_a_header_outside_the_tree_is_refused() {
    refused(
        "outside",
        "\"../../outside.h\"",
        "\"../../outside.h\" leaves the shim's directory",
    );
}

#[test]
fn an_assembler_incbin_is_refused_before_it_reads() {
    let dir = scratch("incbin");
    hostile_tree(
        &dir,
        "\tasm(\".pushsection .rodata\\n.incbin \\\"/etc/passwd\\\"\\n.popsection\");",
    );
    let (code, r, text, _) = review(&dir);
    assert_eq!(code, 1, "{text}");
    let b = bind(&r);
    assert_eq!(b["verdict"], "error", "{b:#}");
    assert!(
        b["error"].as_str().expect("error").contains(".incbin"),
        "{b:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_constructor_the_checker_would_run_when_loading_is_refused() {
    // Inline assembly that registers code in .init_array: dlopen, in the
    // checker's own unconfined process, would run it (an openat creating
    // the marker) before any child confines itself.
    let dir = scratch("ctor");
    let marker = dir.join("marker");
    hostile_tree(
        &dir,
        &format!(
            r#"	asm(".pushsection .init_array,\"aw\"\n\t.quad 1f\n\t.popsection\n"
	    "\t.pushsection .text\n1:\tmov $257, %eax\n\tmov $-100, %rdi\n"
	    "\tlea 2f(%rip), %rsi\n\tmov $0x241, %edx\n\tmov $0x180, %r10d\n"
	    "\tsyscall\n\tret\n2:\t.asciz \"{}\"\n\t.popsection");"#,
            marker.display()
        ),
    );
    let (code, r, text, _) = review(&dir);
    assert!(
        !marker.exists(),
        "the constructor ran in the checker: {text}"
    );
    assert_eq!(code, 1, "{text}");
    let b = bind(&r);
    assert_eq!(b["verdict"], "error", "{b:#}");
    assert!(
        b["error"].as_str().expect("error").contains(".init_array"),
        "{b:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_entry_point_the_tree_redefines_runs_only_confined() {
    // The tree's text is compiled before the adapters, so its macros reach
    // them: here it renames the harness's gmf_ops() out of the way and
    // defines its own, which the checker calls to learn what the object
    // provides — were that call made in the checker's own process, the
    // openat would create the marker.
    let dir = scratch("entry");
    let marker = dir.join("marker");
    hostile_tree(
        &dir,
        &format!(
            r#"#define gmf_ops gmf_ops_renamed
	asm(".pushsection .text\n\t.globl gmf_ops\n\t.type gmf_ops, @function\ngmf_ops:\n"
	    "\tmov $257, %eax\n\tmov $-100, %rdi\n\tlea 9f(%rip), %rsi\n"
	    "\tmov $0x241, %edx\n\tmov $0x180, %r10d\n\tsyscall\n"
	    "\tmov $0xff, %eax\n\tret\n9:\t.asciz \"{}\"\n\t.popsection");"#,
            marker.display()
        ),
    );
    let (code, r, text, _) = review(&dir);
    assert!(
        !marker.exists(),
        "the tree's gmf_ops() ran in the checker: {text}"
    );
    assert_eq!(code, 1, "{text}");
    let b = bind(&r);
    assert_ne!(b["verdict"], "conforms", "{b:#}");
    let all = b.to_string();
    assert!(all.contains("openat"), "{b:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
