//! What a user can rely on, whatever they feed gmemforge (README
//! "What you can rely on"): nothing of theirs is lost, our own cache heals,
//! output errors are one line, work is bounded, special files are refused,
//! input is exactly what was asked for, and exit codes mean what they say.
//! Each test here failed before the behaviour it guards was built.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gmemforge");

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmf-robust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn run(args: &[&str], cwd: Option<&Path>, env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("gmemforge runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Every file below `dir` (including `.git`), with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// A git repository of the team's 2023 fixture, with an untracked file.
fn user_repo(name: &str) -> PathBuf {
    let dir = tmp(name).join("linux");
    std::fs::create_dir_all(&dir).expect("mkdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gmem-solo-2023"),
        &dir,
    );
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-f", "."],
        &[
            "-c",
            "user.name=U",
            "-c",
            "user.email=u@example.org",
            "commit",
            "-q",
            "-m",
            "base",
        ],
    ] {
        let o = Command::new("git")
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("git");
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    }
    std::fs::write(dir.join("my-notes.txt"), "untracked work\n").expect("notes");
    dir
}

// 1. Data loss ------------------------------------------------------------

#[test]
fn series_never_writes_into_over_or_above_the_tree() {
    let repo = user_repo("out-in-tree");
    let before = snapshot(&repo);
    let parent = repo.parent().expect("parent").to_path_buf();
    let cases: Vec<(Vec<&str>, &Path)> = vec![
        (vec!["--tree", ".", "--out", "."], &repo),
        (vec!["--tree", ".", "--out", ".git"], &repo),
        (vec!["--tree", ".", "--out", "Makefile"], &repo),
        (vec!["--tree", ".", "--out", "outgoing"], &repo),
        (vec!["--tree", ".", "--out", ".."], &repo),
        (vec!["--tree", "linux", "--out", "linux/virt/../"], &parent),
        (
            vec!["--tree", "linux/.git", "--out", "linux/patches"],
            &parent,
        ),
    ];
    for (args, cwd) in cases {
        for force in [false, true] {
            let mut a = vec!["series", "--from", "A <a@example.org>"];
            a.extend(&args);
            if force {
                a.push("--force");
            }
            let o = run(&a, Some(cwd), &[]);
            assert_eq!(code(&o), 2, "{a:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("the tree being read"),
                "{a:?}: {}",
                stderr(&o)
            );
            assert_eq!(snapshot(&repo), before, "{a:?} changed the repository");
        }
    }
    // Nothing was left beside the repository either.
    let names: Vec<_> = std::fs::read_dir(&parent)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("linux")]);
}

#[test]
fn force_replaces_only_a_series_directory() {
    let repo = user_repo("force-file");
    let scratch = repo.parent().expect("parent").to_path_buf();
    let file = scratch.join("Makefile.mine");
    std::fs::write(&file, "all:\n").expect("file");
    let args = |out: &Path| {
        vec![
            "series".to_owned(),
            "--tree".into(),
            repo.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--force".into(),
            "--from".into(),
            "A <a@example.org>".into(),
        ]
    };
    let a = args(&file);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "all:\n");
    let mine = scratch.join("documents");
    std::fs::create_dir_all(&mine).expect("dir");
    std::fs::write(mine.join("thesis.tex"), "\\begin{document}").expect("doc");
    let a = args(&mine);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), None, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(mine.join("thesis.tex").exists());
}

// 2. The compile cache heals ----------------------------------------------

fn cached_objects(cache: &Path) -> Vec<PathBuf> {
    let root = cache.join("gmemforge/c");
    std::fs::read_dir(&root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("impl.so"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_damaged_cached_object_is_rebuilt_not_a_verdict() {
    let cache = tmp("cache");
    let env = [("XDG_CACHE_HOME", cache.as_path())];
    let args = ["check", "--random", "0", "--json", "--quiet"];
    let first = run(&args, None, &env);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let objects = cached_objects(&cache);
    assert!(!objects.is_empty(), "check caches its objects");
    for damage in ["truncate", "empty", "garbage"] {
        for so in &objects {
            let bytes = std::fs::read(so).expect("object");
            let new = match damage {
                "truncate" => bytes[..bytes.len() / 3].to_vec(),
                "empty" => Vec::new(),
                _ => b"this is not an ELF object".repeat(40),
            };
            std::fs::write(so, new).expect("damage");
        }
        let again = run(&args, None, &env);
        assert_eq!(
            code(&again),
            0,
            "{damage}: signal {:?}, stderr {}",
            again.status,
            stderr(&again)
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&again.stdout).expect("one JSON document");
        assert_eq!(doc["verdict"], "conforms", "{damage}");
    }
}

// 3. Output errors -----------------------------------------------------------

const QUERY: &str = r#"{"slots":[{"id":0,"base_gfn":256,"npages":4,"pgoff":0}],"start":2,"end":6}"#;

#[test]
fn a_full_disk_is_one_line_and_exit_3() {
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = Command::new(BIN)
        .args(["model", "invalidate"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(QUERY.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("ends");
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    assert!(
        e.contains("cannot write stdout") && !e.contains("panicked"),
        "{e}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(BIN)
        .args(["model", "invalidate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Close the reading end before gmemforge has anything to write.
    drop(child.stdout.take());
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(QUERY.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("ends");
    assert_eq!(code(&o), 141, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "quiet: {}", stderr(&o));
}

// 4. Bounded work -----------------------------------------------------------

#[test]
fn unbounded_requests_are_refused_up_front() {
    for args in [
        &["check", "--random", "18446744073709551615"][..],
        &["check", "--random", "4294967296"],
        &["check", "--jobs", "0"],
        &["review", "--tree", "/nonexistent", "--jobs", "0"],
    ] {
        let o = run(args, None, &[]);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn pre_fault_with_many_slots_and_pages_answers() {
    // 100,000 one-page slots below one slot of 2^20 pages; the walk maps
    // all 2^20 4K pages, each a lookup among the slots.
    let mut slots: Vec<String> = (0..100_000u64)
        .map(|i| format!(r#"{{"base_gfn":{i},"npages":1}}"#))
        .collect();
    slots.push(r#"{"base_gfn":1048576,"npages":1048576}"#.into());
    let q = format!(
        r#"{{"gpa":{},"size":{},"slots":[{}]}}"#,
        1u64 << 32,
        (1u64 << 20) << 12,
        slots.join(",")
    );
    let mut child = Command::new(BIN)
        .args(["model", "pre-fault"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(q.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("ends");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (a["ret"].as_i64(), a["size"].as_u64()),
        (Some(0), Some(0)),
        "{a}"
    );
    assert_eq!(a["calls"].as_u64(), Some(1 << 20));
}

// 5. Special files --------------------------------------------------------

#[test]
fn special_files_in_a_tree_are_refused_by_name() {
    let tree = tmp("special");
    std::fs::create_dir_all(tree.join("virt/kvm")).expect("mkdir");
    std::fs::write(tree.join("Makefile"), "#\n").expect("Makefile");
    let target = tree.join("virt/kvm/guest_memfd.c");
    std::os::unix::fs::symlink("/dev/zero", &target).expect("symlink");
    let o = run(
        &["review", "--tree", tree.to_str().expect("utf-8")],
        None,
        &[],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("guest_memfd.c") && stderr(&o).contains("character device"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(&target).expect("rm");
    let c = std::ffi::CString::new(target.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let o = run(
        &["review", "--tree", tree.to_str().expect("utf-8")],
        None,
        &[],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
}

// 6. Input is what was asked for ------------------------------------------

fn model(op: &str, input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(["model", op])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("ends")
}

#[test]
fn model_input_is_one_object_and_nothing_else() {
    for (input, says) in [
        (format!("{QUERY} {QUERY}"), "more after the JSON object"),
        (format!("{QUERY}\ngarbage"), "more after the JSON object"),
        ("[[],2,6]".to_owned(), "found an array"),
        (r#"{"slots":[],"start":0"#.to_owned(), "JSON ends early"),
        (
            r#"{"slots":[],"start":0,"end":18446744073709551616}"#.to_owned(),
            "18446744073709551616 is out of range",
        ),
    ] {
        let o = model("invalidate", &input);
        assert_eq!(code(&o), 2, "{input}");
        assert!(stderr(&o).contains(says), "{input}: {}", stderr(&o));
        assert!(!stderr(&o).contains("field `?`"), "{}", stderr(&o));
    }
    let o = model("prepare", r#"{"pfn":1,"gfn":1,"max_order":-1}"#);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("max_order"), "{}", stderr(&o));
    let o = model(
        "pre-fault",
        r#"{"gpa":0,"size":4096,"slots":[{"base_gfn":0,"npages":4},{"base_gfn":2,"npages":4}]}"#,
    );
    assert_eq!(code(&o), 2, "overlapping memslots");
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
}

/// A copy of the repository's vector files with `edit` applied to one.
fn vectors_with(name: &str, file: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = tmp(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
        &dir,
    );
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).expect("vector file");
    std::fs::write(&p, edit(text)).expect("write");
    dir
}

#[test]
fn vector_files_are_tests_of_the_model() {
    let check = |dir: &Path| {
        run(
            &[
                "check",
                "--random",
                "0",
                "--vectors",
                dir.to_str().expect("utf-8"),
            ],
            None,
            &[],
        )
    };
    // A wrong expected value: exit 1, the file and case named.
    let dir = vectors_with("wrong-expected", "invalidate.json", |t| {
        t.replacen(
            r#""expected": {"ranges": [{"slot": 0, "start": 258, "end": 260}"#,
            r#""expected": {"ranges": [{"slot": 0, "start": 258, "end": 261}"#,
            1,
        )
    });
    let o = check(&dir);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("invalidate.json invalidate-001: expected"),
        "{out}"
    );
    // A duplicate id, a missing expected, another operation's file: exit 2.
    for (name, file, edit) in [
        (
            "dup",
            "bind.json",
            Box::new(|t: String| t.replacen("\"bind-002\"", "\"bind-001\"", 1))
                as Box<dyn Fn(String) -> String>,
        ),
        (
            "no-expected",
            "classify.json",
            Box::new(|t: String| t.replacen("\"expected\"", "\"expectd\"", 1)),
        ),
        (
            "wrong-op",
            "prepare.json",
            Box::new(|t: String| {
                t.replacen("\"operation\": \"prepare\"", "\"operation\": \"bind\"", 1)
            }),
        ),
    ] {
        let dir = vectors_with(name, file, edit);
        let o = check(&dir);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(file), "{name}: {}", stderr(&o));
    }
}

// 8. Exit codes --------------------------------------------------------------

#[test]
fn an_output_that_cannot_be_written_is_not_bad_input() {
    // The report's directory is a file: writing it fails. That is not a
    // verdict and not the input's fault: one line, exit 3.
    let scratch = tmp("exit3");
    std::fs::write(scratch.join("plain"), "x").expect("file");
    let report = scratch.join("plain/report.html");
    let o = run(
        &[
            "check",
            "--random",
            "0",
            "--quiet",
            "--report",
            report.to_str().expect("utf-8"),
        ],
        None,
        &[],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

// 10. One registry of mutants ----------------------------------------------

#[test]
fn help_readme_and_errors_list_every_mutant() {
    let help = String::from_utf8_lossy(&run(&["check", "--help"], None, &[]).stdout).into_owned();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let err = stderr(&run(&["check", "--impl", "mutant:nope"], None, &[]));
    for name in gmem_codegen::unit::mutant_names() {
        assert!(help.contains(name), "--help lacks {name}");
        assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        assert!(err.contains(name), "the error lacks {name}: {err}");
    }
}

// 11. An installed binary works anywhere ------------------------------------

#[test]
fn the_binary_needs_no_checkout() {
    let help = String::from_utf8_lossy(&run(&["check", "--help"], None, &[]).stdout).into_owned();
    assert!(
        !help.contains(env!("CARGO_MANIFEST_DIR")),
        "--help shows a path of the build machine"
    );
    // A copy of the binary, run from elsewhere: the built-in vectors.
    let dir = tmp("installed");
    let copy = dir.join("gmemforge");
    std::fs::copy(BIN, &copy).expect("copy");
    let o = Command::new(&copy)
        .args(["check", "--random", "0", "--json", "--quiet"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        doc["vectors"].as_u64().unwrap_or(0) > 100,
        "{}",
        doc["vectors"]
    );
}

// 9. Temporary directories --------------------------------------------------

/// This process's temporary directories of `series` with pid `pid`.
fn temp_dirs_of(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n == format!("gmemforge-series-result-{pid}")
                || n.starts_with(&format!("gmemforge-series-{pid}-"))
        })
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_terminated_series_leaves_no_temporary_directory() {
    let repo = user_repo("term");
    let out = repo.parent().expect("parent").join("outgoing");
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut child = Command::new(BIN)
            .args(["series", "--quiet", "--from", "A <a@example.org>", "--tree"])
            .arg(&repo)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runs");
        let pid = child.id();
        // Wait (bounded) until the run works in a temporary directory.
        let mut seen = false;
        for _ in 0..60_000 {
            if !temp_dirs_of(pid).is_empty() {
                seen = true;
                break;
            }
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(seen, "series never made a temporary directory");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, sig) };
        let status = child.wait().expect("ends");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "dies of the signal: {status:?}");
        assert_eq!(temp_dirs_of(pid), Vec::<PathBuf>::new(), "signal {sig}");
        assert!(!out.exists(), "no half-written output");
    }
}
