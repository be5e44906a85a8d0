//! `gmemforge history` and `review --bisect` on a git repository made at
//! test time from the 6.18 fixture (`common/history_repo.rs`: the range
//! bug and the bind wrap each brought and fixed, the rest unrelated files,
//! comments, a same-behaviour rewrite). Also: two tarballs made from the
//! fixture, and the bug-bringing commit as a posted patch (`--am`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

#[path = "common/history_repo.rs"]
mod history_repo;
use history_repo::*;

const BIN: &str = env!("CARGO_BIN_EXE_gmemforge");
/// The cache shared by the tests that do not count compiles: concurrent
/// runs share it safely (every entry is written whole, then renamed).
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch("cache"))
}

fn gmemforge(cache: &Path, cwd: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.env("XDG_CACHE_HOME", cache).args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().expect("the binary runs")
}

fn history_json(cache: &Path, args: &[&str]) -> (i32, Value, String) {
    let o = gmemforge(
        cache,
        None,
        &[&["history", "--json", "--quiet", "--random", "300"], args].concat(),
    );
    (
        o.status.code().expect("exited"),
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (operation, commit) of every change, and the commits named.
fn changes(h: &Value) -> BTreeSet<(String, String)> {
    h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let at = c["at"].as_u64().expect("at") as usize;
            (
                c["operation"].as_str().expect("op").to_owned(),
                h["points"][at]["commit"]
                    .as_str()
                    .or(h["points"][at]["label"].as_str())
                    .expect("names the version")
                    .to_owned(),
            )
        })
        .collect()
}

/// What of the repository a run could change: refs, HEAD, the index, and
/// every object file.
fn repo_state(dir: &Path) -> (String, Vec<u8>, Vec<PathBuf>) {
    let refs = git(dir, &["for-each-ref"]) + &git(dir, &["rev-parse", "HEAD"]);
    let index = std::fs::read(dir.join(".git/index")).expect("index");
    let mut objects = Vec::new();
    let mut stack = vec![dir.join(".git/objects")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("objects").flatten() {
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                objects.push(e.path());
            }
        }
    }
    objects.sort();
    (refs, index, objects)
}

#[test]
fn history_names_the_four_commits_and_a_second_run_compiles_nothing() {
    let root = scratch("range");
    let r = make_repo(&root.join("linux"));
    assert!(r.commits >= 30, "{} commits", r.commits);
    let before = repo_state(&r.dir);
    let cache = root.join("cache");
    let range = format!("{}..HEAD", r.base);
    let dir = r.dir.to_str().expect("utf-8");
    let (code, h, err) = history_json(&cache, &["--tree", dir, "--rev", &range]);
    // The tip conforms again.
    assert_eq!(code, 0, "{err}\n{h:#}");
    assert_eq!(h["verdict"], "conforms");
    let expected: BTreeSet<(String, String)> = [
        ("invalidate", &r.range_in),
        ("punch-hole", &r.range_in),
        ("bind", &r.bind_in),
        ("invalidate", &r.range_out),
        ("punch-hole", &r.range_out),
        ("bind", &r.bind_out),
    ]
    .iter()
    .map(|(op, c)| ((*op).to_owned(), (*c).clone()))
    .collect();
    assert_eq!(changes(&h), expected, "{h:#}");
    // The first reviewed commit is the range's start; every point after
    // it changes a file review reads (unrelated commits are skipped).
    let points = h["points"].as_array().expect("points");
    assert_eq!(points[0]["commit"], r.base.as_str());
    assert_eq!(points.len(), 1 + 10, "{h:#}");
    for p in points {
        assert_eq!(p["items"].as_array().map(Vec::len), Some(8), "{p:#}");
    }
    // Only the base's eight verdicts, the range bug's two (invalidate,
    // punch-hole), the bind wrap's one and the rewritten bind's one were
    // worked out: commits that only move functions or edit comments, even
    // inside kvm_gmem_bind(), and the fixes (back to text already
    // reviewed) cost lookups.
    assert_eq!(h["cached"], 11 * 8 - (8 + 2 + 1 + 1), "{h:#}");
    let first = h["compiles"].as_u64().expect("compiles");
    assert!(first > 0, "a cold cache compiles: {h:#}");
    // Diverging, the change carries its counterexample.
    let into_bind = h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["operation"] == "bind" && c["to"] == "diverges")
        .expect("bind diverges");
    assert!(
        into_bind["item"]["counterexample"]["why"]
            .as_str()
            .is_some_and(|w| w.contains("returned 0, model -EINVAL")),
        "{into_bind:#}"
    );

    // Again: every verdict from the cache, no compile at all.
    let (code, again, err) = history_json(&cache, &["--tree", dir, "--rev", &range]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["compiles"], 0, "{again:#}");
    assert_eq!(changes(&again), expected);

    // A verdict rewritten behind its seal (same length, other verdict) is
    // not believed: worked out again, with the same answers.
    let verdicts = cache.join("gmemforge/c/verdicts");
    let mut tampered = 0;
    for e in std::fs::read_dir(&verdicts)
        .expect("the verdict cache")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("v-") && name.ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).expect("read");
            let swapped = text
                .replace("\"conforms\"", "\"@@@@@@\"")
                .replace("\"diverges\"", "\"conforms\"")
                .replace("\"@@@@@@\"", "\"diverges\"");
            assert_ne!(swapped, text);
            std::fs::write(e.path(), swapped).expect("write");
            tampered += 1;
        }
    }
    assert_eq!(tampered, 8 + 2 + 1 + 1, "one file per verdict worked out");
    let (code, again, err) = history_json(&cache, &["--tree", dir, "--rev", &range]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["cached"], h["cached"], "{again:#}");
    assert_eq!(changes(&again), expected);

    // The human report: per operation only the changes, by sha12 and
    // subject, with the counterexample where it starts to diverge.
    let o = gmemforge(
        &cache,
        None,
        &[
            "history", "--quiet", "--random", "300", "--tree", dir, "--rev", &range,
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let line = format!(
        "bind: conforms → diverges at {} KVM: guest_memfd: take the offset as loff_t",
        &r.bind_in[..12]
    );
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains(&format!(
            "bind: diverges → conforms at {} KVM: guest_memfd: the offset is unsigned again",
            &r.bind_out[..12]
        )),
        "{text}"
    );
    let change_lines = text
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains(" → "))
        .count();
    assert_eq!(change_lines, 6, "{text}");
    assert!(text.contains("why:   "), "{text}");

    // The report: a cell per operation and version, the six changes marked.
    let page = root.join("history.html");
    let o = gmemforge(
        &cache,
        None,
        &[
            "history",
            "--quiet",
            "--random",
            "300",
            "--tree",
            dir,
            "--rev",
            &range,
            "--report",
            page.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).expect("the report");
    assert_eq!(html.matches("<td").count(), 8 * points.len(), "{html}");
    assert_eq!(html.matches("<td class=change").count(), 6, "{html}");
    let diverging = points
        .iter()
        .flat_map(|p| p["verdicts"].as_object().expect("verdicts").values())
        .filter(|v| *v == "diverges")
        .count();
    assert_eq!(
        diverging,
        3 * 4,
        "range bug over four versions, bind's over four"
    );
    assert_eq!(
        html.matches("data-verdict=\"diverges\"").count(),
        diverging,
        "{html}"
    );

    // Nothing of the repository changed: refs, HEAD, index, objects.
    assert_eq!(repo_state(&r.dir), before);
}

#[test]
fn git_bisect_run_finds_the_commit_that_brought_the_range_bug() {
    let root = scratch("bisect");
    let r = make_repo(&root.join("linux"));
    git(&r.dir, &["bisect", "start", &r.bind_in, &r.base]);
    let o = Command::new("git")
        .current_dir(&r.dir)
        .env("XDG_CACHE_HOME", shared_cache())
        .args(["bisect", "run", BIN, "review", "--bisect", "invalidate"])
        .args(["--tree", ".", "--random", "300", "--quiet"])
        .output()
        .expect("git runs");
    let out = String::from_utf8_lossy(&o.stdout);
    git(&r.dir, &["bisect", "reset"]);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("{} is the first bad commit", r.range_in)),
        "{out}"
    );
    // The exit statuses git reads, one by one.
    let at = |rev: &str, op: &str| {
        gmemforge(
            shared_cache(),
            None,
            &[
                "review",
                "--bisect",
                op,
                "--quiet",
                "--random",
                "300",
                "--tree",
                r.dir.to_str().expect("utf-8"),
                "--rev",
                rev,
            ],
        )
    };
    assert_eq!(at(&r.base, "invalidate").status.code(), Some(0));
    assert_eq!(at(&r.range_in, "invalidate").status.code(), Some(1));
    assert_eq!(at(&r.bind_in, "bind").status.code(), Some(1));
    // This commit cannot be tested: the operation's functions are gone.
    edit(
        &r.dir,
        GMEM,
        "int kvm_gmem_bind(",
        "int kvm_gmem_bind_renamed(",
    );
    let gone = commit(&r.dir, "KVM: guest_memfd: rename bind");
    let o = at(&gone, "bind");
    assert_eq!(
        o.status.code(),
        Some(125),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Nor one that is no kernel tree at all.
    std::fs::remove_file(r.dir.join("Makefile")).expect("rm");
    let no_kernel = commit(&r.dir, "remove the Makefile");
    let o = at(&no_kernel, "bind");
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("cannot be tested"),
        "{o:?}"
    );
}

#[test]
fn a_posted_patch_is_named_where_it_changes_a_verdict() {
    let root = scratch("am");
    let r = make_repo(&root.join("linux"));
    let mbox = root.join("series.mbox");
    let patch = git(&r.dir, &["format-patch", "-1", "--stdout", &r.range_in]);
    std::fs::write(&mbox, format!("{patch}\n")).expect("write");
    let before = repo_state(&r.dir);
    let parent = format!("{}~1", r.range_in);
    let dir = r.dir.to_str().expect("utf-8");
    let (code, h, err) = history_json(
        shared_cache(),
        &[
            "--tree",
            dir,
            "--rev",
            &parent,
            "--am",
            mbox.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1, "the series leaves a divergence: {err}\n{h:#}");
    let got: BTreeSet<(String, String)> = h["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["operation"].as_str().expect("op").to_owned(),
                format!(
                    "{} {}",
                    c["label"].as_str().expect("label"),
                    c["subject"].as_str().expect("subject")
                ),
            )
        })
        .collect();
    let named = "patch 1/1 KVM: guest_memfd: simplify the invalidation start".to_owned();
    assert_eq!(
        got,
        [
            ("invalidate".to_owned(), named.clone()),
            ("punch-hole".to_owned(), named)
        ]
        .into_iter()
        .collect(),
        "{h:#}"
    );

    // A second patch that does not apply is named, and stops the walk.
    let bad = "From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
               From: Test <test@example.org>\n\
               Subject: [PATCH 2/2] KVM: guest_memfd: a patch for another tree\n\n\
               ---\n\
               diff --git a/virt/kvm/guest_memfd.c b/virt/kvm/guest_memfd.c\n\
               --- a/virt/kvm/guest_memfd.c\n\
               +++ b/virt/kvm/guest_memfd.c\n\
               @@ -1,1 +1,1 @@\n\
               -this line is in no tree\n\
               +nor is this one\n";
    std::fs::write(&mbox, format!("{patch}\n{bad}")).expect("write");
    let child = Command::new(BIN)
        .env("XDG_CACHE_HOME", shared_cache())
        .args([
            "history", "--quiet", "--random", "300", "--tree", dir, "--rev", &parent,
        ])
        .arg("--am")
        .arg(&mbox)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    let o = child.wait_with_output().expect("it ends");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("patch 2/2 \"KVM: guest_memfd: a patch for another tree\" does not apply"),
        "{text}"
    );
    // The user's repository was only read: no object, ref or index written.
    assert_eq!(repo_state(&r.dir), before);
    // And the private repository the patches were applied in is gone.
    let left = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("gmemforge-series-{pid}-"))
        })
        .count();
    assert_eq!(left, 0);
}

/// A linux-source style tarball of the fixture, with `edits` applied.
fn tarball(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let top = dir.join("src").join(name);
    copy_dir(Path::new(FIXTURE), &top);
    for (from, to) in edits {
        edit(&top, GMEM, from, to);
    }
    let out = dir.join(format!("{name}.tar.xz"));
    let o = Command::new("tar")
        .arg("-C")
        .arg(dir.join("src"))
        .arg("-cJf")
        .arg(&out)
        .arg(name)
        .output()
        .expect("tar runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn two_tarballs_line_up_as_a_history() {
    let root = scratch("tarballs");
    let debs = root.join("debs");
    std::fs::create_dir_all(&debs).expect("mkdir");
    // Version order is not name order: 6.9 before 6.12.
    let old = tarball(&debs, "linux-source-6.9", &[]);
    let new = tarball(
        &debs,
        "linux-source-6.12",
        &[(BIND_GOOD[0], BIND_BAD[0]), (BIND_GOOD[1], BIND_BAD[1])],
    );
    std::fs::remove_dir_all(debs.join("src")).expect("rm");
    let (code, h, err) = history_json(
        shared_cache(),
        &[
            "--tree",
            old.to_str().expect("utf-8"),
            "--tree",
            new.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 1, "{err}\n{h:#}");
    assert_eq!(h["verdict"], "diverges");
    let expect: BTreeSet<(String, String)> =
        [("bind".to_owned(), "linux-source-6.12.tar.xz".to_owned())]
            .into_iter()
            .collect();
    assert_eq!(changes(&h), expect, "{h:#}");
    // A directory of them: the same, in version order.
    let (code, h, err) = history_json(shared_cache(), &["--tree", debs.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(h["points"][0]["label"], "linux-source-6.9.tar.xz");
    assert_eq!(changes(&h), expect, "{h:#}");
    // The other way round, the bug is fixed in the second.
    let (code, h, _) = history_json(
        shared_cache(),
        &[
            "--tree",
            new.to_str().expect("utf-8"),
            "--tree",
            old.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(h["changes"][0]["from"], "diverges", "{h:#}");
}

#[test]
fn a_commit_that_is_no_kernel_tree_is_a_version_with_nothing_reviewed() {
    let root = scratch("nokernel");
    let repo = root.join("linux");
    copy_dir(Path::new(FIXTURE), &repo);
    git(&repo, &["init", "-q"]);
    let base = commit(&repo, "base");
    std::fs::remove_file(repo.join("Makefile")).expect("rm");
    let gone = commit(&repo, "remove the Makefile");
    std::fs::write(repo.join("Makefile"), "# back\n").expect("write");
    let back = commit(&repo, "a Makefile again");
    let (code, h, err) = history_json(
        shared_cache(),
        &[
            "--tree",
            repo.to_str().expect("utf-8"),
            "--rev",
            &format!("{base}..HEAD"),
        ],
    );
    assert_eq!(code, 0, "{err}\n{h:#}");
    let changes = h["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 2 * 8, "{h:#}");
    for c in changes {
        let at = &h["points"][c["at"].as_u64().expect("at") as usize]["commit"];
        if c["to"] == "missing" {
            assert_eq!(at, gone.as_str(), "{c:#}");
            assert!(
                c["item"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("does not look like a Linux kernel tree")),
                "{c:#}"
            );
        } else {
            assert_eq!(
                (c["from"].as_str(), at.as_str()),
                (Some("missing"), Some(back.as_str()))
            );
        }
    }
}

#[test]
fn bad_input_is_named_with_exit_2() {
    let root = scratch("bad");
    let repo = root.join("linux");
    copy_dir(Path::new(FIXTURE), &repo);
    git(&repo, &["init", "-q"]);
    commit(&repo, "base");
    let dir = repo.to_str().expect("utf-8");
    // A repository named as a tree must be a kernel tree.
    let other = root.join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("README"), "not a kernel\n").expect("write");
    git(&other, &["init", "-q"]);
    commit(&other, "not a kernel");
    let git_repo_not_kernel = other.to_str().expect("utf-8");
    let cases: &[(&[&str], &str)] = &[
        (&["--tree", dir, "--rev", "HEAD"], "--rev HEAD"),
        (
            &["--tree", dir, "--rev", "nope..HEAD"],
            "nope: no such commit",
        ),
        (&["--tree", dir, "--rev", "HEAD...HEAD"], "symmetric"),
        (&["--tree", dir], "two trees or more"),
        (
            &["--tree", dir, "--tree", dir, "--rev", "HEAD..HEAD"],
            "one --tree",
        ),
        (
            &["--tree", dir, "--am", "/nonexistent.mbox"],
            "--am /nonexistent.mbox",
        ),
        (
            &["--tree", dir, "--tree", "/nonexistent"],
            "--tree /nonexistent",
        ),
        (
            &["--tree", dir, "--tree", git_repo_not_kernel],
            "does not look like a Linux kernel tree",
        ),
    ];
    for (args, says) in cases {
        let o = gmemforge(
            shared_cache(),
            None,
            &[&["history", "--quiet"], *args].concat(),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = gmemforge(
        shared_cache(),
        None,
        &["review", "--bisect", "nope", "--tree", dir],
    );
    assert_eq!(o.status.code(), Some(2));
}
