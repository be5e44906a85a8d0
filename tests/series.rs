//! `gmemforge series` on a git repository made at test time from Linux
//! 6.12's real files with the two 2023 bugs written back (the range formula
//! and the 32-bit err), and on the team's 2023 fixture tree. Real git and
//! 6.12's scripts/checkpatch.pl are the oracles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gmem_checker::review::FILES;
use gmem_checker::tree::{Tree, TreeSource};

const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
const FROM: &str = "Ada Lovelace <ada@example.org>";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gmemforge-series-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// 6.12's review files plus scripts/checkpatch.pl, read once.
fn linux_612() -> &'static BTreeMap<String, String> {
    static FILES_612: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    FILES_612.get_or_init(|| {
        assert!(
            Path::new(TARBALL).exists(),
            "{TARBALL} is missing: install linux-source-6.12 (scripts/test.sh does)"
        );
        let mut wanted: Vec<&str> = FILES.to_vec();
        wanted.extend([
            "virt/kvm/Kconfig",
            "virt/kvm/kvm_mm.h",
            "tools/testing/selftests/kvm/set_memory_region_test.c",
            "MAINTAINERS",
            "scripts/checkpatch.pl",
            "scripts/spelling.txt",
            "scripts/const_structs.checkpatch",
        ]);
        let tree =
            Tree::open(&TreeSource::Tarball(TARBALL.into()), &wanted).expect("tarball reads");
        wanted
            .iter()
            .filter_map(|f| tree.file(f).map(|t| ((*f).to_owned(), t.to_owned())))
            .collect()
    })
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_as(dir, ("Base Author", "base@example.org"), args)
}

/// git as `who` (committer and, for format-patch, sender).
fn git_as(dir: &Path, who: (&str, &str), args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            &format!("user.name={}", who.0),
            "-c",
            &format!("user.email={}", who.1),
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git repository of the 6.12 review files with the 2023 forms written back.
fn base_repo(name: &str) -> PathBuf {
    let dir = tmp(name);
    for f in FILES.iter().chain(&["virt/kvm/Kconfig"]) {
        let Some(text) = linux_612().get(*f) else {
            continue;
        };
        let text = match *f {
            "virt/kvm/guest_memfd.c" => text
                .replace(
                    ".start = slot->base_gfn + max(pgoff, start) - pgoff,",
                    ".start = slot->base_gfn + start - pgoff,",
                )
                .replace(
                    ".end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,",
                    ".end = slot->base_gfn + min(end - pgoff, slot->npages),",
                ),
            "arch/x86/kvm/mmu/mmu_internal.h" => {
                text.replace("u64 err, bool prefetch,", "u32 err, bool prefetch,")
            }
            _ => text.clone(),
        };
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    std::fs::write(dir.join("Makefile"), "# 6.12 files for a gmemforge test\n").expect("write");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-f", "."]);
    git(
        &dir,
        &["commit", "-q", "-m", "base: 6.12 with the 2023 forms"],
    );
    dir
}

fn series(tree: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "series",
            "--tree",
            tree.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--from",
            FROM,
            "--random",
            "300",
        ])
        .args(extra)
        .output()
        .expect("runs");
    (
        o.status.code().expect("exited"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn patches(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Everything of a repository that series must not change.
fn snapshot(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(repo).expect("inside").display().to_string(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    out
}

/// 6.12's checkpatch.pl and the files it reads, written once for every
/// test of this binary: tests run in threads of one process, and a
/// directory per call named by the pid would be removed under another
/// test's feet.
fn checkpatch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp("checkpatch");
        for f in [
            "scripts/checkpatch.pl",
            "scripts/spelling.txt",
            "scripts/const_structs.checkpatch",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, &linux_612()[f]).expect("write");
        }
        dir
    })
}

/// checkpatch run in `repo`, as a maintainer runs it in the tree the
/// series is for: it looks up every `Fixes:` commit there and checks its
/// subject.
fn checkpatch(patch: &Path, repo: &Path) -> String {
    let dir = checkpatch_dir();
    let o = Command::new("perl")
        .current_dir(repo)
        .arg(dir.join("scripts/checkpatch.pl"))
        .args(["--strict", "--no-tree", "--show-types"])
        .arg(patch)
        .output()
        .expect("perl runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// checkpatch --strict finds nothing in `patch`, except the question it
/// asks of every patch that adds a file ("does MAINTAINERS need
/// updating?"), which is answered here: each file the patch creates is
/// already covered by an `F:` pattern of 6.12's MAINTAINERS.
fn assert_checkpatch_clean(patch: &Path, repo: &Path) {
    let report = checkpatch(patch, repo);
    if report.contains("total: 0 errors, 0 warnings, 0 checks") {
        return;
    }
    let text = std::fs::read_to_string(patch).expect("patch");
    let created: Vec<&str> = text
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].starts_with("new file mode"))
        .filter_map(|w| w[0].split(" b/").nth(1))
        .collect();
    assert!(
        report.contains("total: 0 errors, 1 warnings, 0 checks")
            && report.contains("WARNING:FILE_PATH_CHANGES")
            && !created.is_empty(),
        "{}:\n{report}",
        patch.display()
    );
    let maintainers = &linux_612()["MAINTAINERS"];
    for file in created {
        let covered = maintainers
            .lines()
            .filter_map(|l| l.strip_prefix("F:"))
            .any(|pat| maintainers_covers(pat.trim(), file));
        assert!(covered, "{file}: no MAINTAINERS F: pattern covers it");
    }
}

/// MAINTAINERS' `F:` rule: a trailing `/` covers everything below; `*`
/// and `?` match within one path component.
fn maintainers_covers(pat: &str, file: &str) -> bool {
    if let Some(dir) = pat.strip_suffix('/') {
        return file.starts_with(&format!("{dir}/"));
    }
    fn glob(p: &[u8], f: &[u8]) -> bool {
        match (p.first(), f.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                glob(&p[1..], f) || (f.first().is_some_and(|c| *c != b'/') && glob(p, &f[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &f[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &f[1..]),
            _ => false,
        }
    }
    glob(pat.as_bytes(), file.as_bytes())
}

#[test]
fn maintainers_patterns_match_as_get_maintainer_does() {
    assert!(maintainers_covers("virt/kvm/*", "virt/kvm/.kunitconfig"));
    assert!(maintainers_covers(
        "virt/kvm/*",
        "virt/kvm/guest_memfd_test.c"
    ));
    assert!(!maintainers_covers("virt/kvm/*", "virt/kvm/sub/x.c"));
    assert!(maintainers_covers(
        "arch/x86/kvm/",
        "arch/x86/kvm/mmu/mmu_test.c"
    ));
    assert!(!maintainers_covers("arch/x86/kvm/", "arch/x86/kvmx.c"));
    assert!(!maintainers_covers(
        "virt/kvm/kvm_main.c",
        "virt/kvm/guest_mem_test.c"
    ));
}

/// The cover letter is for kernel maintainers: no path of this machine
/// (the tree's, the temporary directory's, any home or work directory),
/// nothing of gmemforge's insides (the shim, compiler messages), and a
/// title that says what the series does. Returns the cover letter.
fn assert_cover_for_maintainers(out: &Path, tree: &Path) -> String {
    let files = patches(out);
    let cover = std::fs::read_to_string(&files[0]).expect("cover");
    let tmp_dir = std::env::temp_dir();
    let tmp_dir = tmp_dir.to_string_lossy();
    let tmp_dir = tmp_dir.trim_end_matches('/');
    for path in [
        tree.to_str().expect("utf-8"),
        tmp_dir,
        "/home",
        "/tmp",
        "/work",
    ] {
        assert!(
            !cover.contains(path),
            "{path} in the cover letter:\n{cover}"
        );
    }
    let lower = cover.to_lowercase();
    for internal in [
        "shim",
        "did not compile",
        "implicit declaration",
        "gmemforge review still",
    ] {
        assert!(
            !lower.contains(internal),
            "{internal:?} in the cover letter:\n{cover}"
        );
    }
    let flat = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    let subject = flat
        .split("Subject: ")
        .nth(1)
        .and_then(|s| s.split(" This series").next())
        .expect("a subject");
    assert!(!subject.contains("Match the reference model"), "{subject}");
    assert!(subject.starts_with("[PATCH"), "{subject}");
    // Its title names what the patches do, in their subjects' areas.
    assert!(
        subject.contains("KVM") && (subject.contains("Fix ") || subject.contains("Add ")),
        "{subject}"
    );
    cover
}

fn review_conforms(tree: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "review",
            "--random",
            "200",
            "--tree",
            tree.to_str().expect("utf-8"),
        ])
        .output()
        .expect("runs");
    (
        o.status.code().expect("exited"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn series_on_612_with_the_2023_bugs_passes_every_gate() {
    let repo = base_repo("612");
    let before = snapshot(&repo);
    let out = tmp("612-out");
    let (code, stdout, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        snapshot(&repo),
        before,
        "the user's repository is byte-identical (refs, HEAD, index, files)"
    );
    let files = patches(&out);
    assert_eq!(
        files.len(),
        4,
        "cover letter + patches 1, 2 and the KUnit tests: {stdout}"
    );
    // 6.12.118's bind takes the offset and size unsigned already.
    assert!(
        !files
            .iter()
            .any(|p| p.to_string_lossy().contains("Treat-the-binding-offset")),
        "{files:#?}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("not needed (conforming: kvm_gmem_")
                && l.ends_with("KVM: guest_memfd: Treat the binding offset and size as unsigned")),
        "{stdout}"
    );
    let cover = assert_cover_for_maintainers(&out, &repo);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    assert!(
        cover.contains(&format!("base-commit: {}", head.trim())),
        "{cover}"
    );
    // Patches 3-6 are for 2023 trees; 6.12 has its own prepare, free and
    // pre-fault paths, and they conform: the cover letter says so.
    assert!(cover.contains("Not for upstream trees:"), "{cover}");
    assert!(cover.contains("prepare: conforms"), "{cover}");

    // checkpatch --strict: zero errors, warnings and checks on every file.
    for f in &files {
        assert_checkpatch_clean(f, &repo);
    }

    // git am on a fresh clone, one patch at a time; after each, the
    // changed functions still compile against the shim (no `error`
    // verdict); after all of them, the tree conforms.
    let clone = tmp("612-clone");
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(&repo)
        .arg(&clone)
        .status()
        .expect("git clone");
    assert!(status.success());
    for p in &files[1..] {
        git_as(
            &clone,
            ("Ada Lovelace", "ada@example.org"),
            &[
                "am",
                "-q",
                "--committer-date-is-author-date",
                p.to_str().expect("utf-8"),
            ],
        );
        let (_, report) = review_conforms(&clone);
        assert!(
            !report.contains("ERROR"),
            "after {}:\n{report}",
            p.display()
        );
    }
    let (code, report) = review_conforms(&clone);
    assert_eq!(code, 0, "review after the whole series:\n{report}");

    // The files are what git format-patch writes for the applied commits
    // (but the signature's version line).
    let fp = tmp("612-fp");
    git_as(
        &clone,
        ("Ada Lovelace", "ada@example.org"),
        &[
            "format-patch",
            "-q",
            "--cover-letter",
            "-o",
            fp.to_str().expect("utf-8"),
            "HEAD~3",
        ],
    );
    let theirs = patches(&fp);
    for (ours, theirs) in files[1..].iter().zip(&theirs[1..]) {
        assert_eq!(ours.file_name(), theirs.file_name());
        let strip = |p: &Path| {
            let t = std::fs::read_to_string(p).expect("read");
            t[..t.rfind("\n-- \n").expect("signature")].to_owned()
        };
        assert_eq!(strip(ours), strip(theirs), "{}", ours.display());
    }

    // Same tree and options: the same bytes.
    let again = tmp("612-again");
    assert_eq!(series(&repo, &again, &[]).0, 0);
    for (a, b) in files.iter().zip(patches(&again)) {
        assert_eq!(
            std::fs::read(a).expect("a"),
            std::fs::read(&b).expect("b"),
            "{}",
            a.display()
        );
    }
}

#[test]
fn existing_output_is_not_overwritten_without_force() {
    let repo = base_repo("force");
    let out = tmp("force-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("keep"), "mine").expect("write");
    let (code, _, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep")).expect("kept"),
        "mine"
    );
    assert_eq!(
        std::fs::read_dir(&out).expect("dir").count(),
        1,
        "nothing written"
    );
    // --force replaces only an earlier series, never a file of the user's.
    let (code, _, stderr) = series(&repo, &out, &["--force"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a directory of patches"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep")).expect("kept"),
        "mine"
    );
    std::fs::remove_file(out.join("keep")).expect("rm");
    std::fs::write(
        out.join("0001-old.patch"),
        "From 0 Mon Sep 17 00:00:00 2001\n",
    )
    .expect("write");
    let (code, stdout, stderr) = series(&repo, &out, &["--force", "--reroll", "2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let names: Vec<String> = patches(&out)
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert!(
        names[0] == "v2-0000-cover-letter.patch" && names[1].starts_with("v2-0001-"),
        "{names:?}"
    );
    let p1 = std::fs::read_to_string(out.join(&names[1])).expect("read");
    assert!(p1.contains("Subject: [PATCH v2 1/3]"), "{p1}");
    assert_cover_for_maintainers(&out, &repo);
}

#[test]
fn a_missing_tree_or_rev_is_bad_input() {
    let out = tmp("bad-out");
    let (code, _, stderr) = series(Path::new("/nonexistent/linux"), &out, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/linux"), "{stderr}");
    let repo = base_repo("badrev");
    let (code, _, stderr) = series(&repo, &out, &["--rev", "v9.9-nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("v9.9-nope"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn series_on_the_2023_fixture_applies_every_patch_and_the_result_conforms() {
    // Every patch applies: 1-3, the prepare and free hooks with their SEV
    // sides (4a, 4b, 5a, 5b), the pre-fault ioctl and its x86 side (6a,
    // 6b), and both KUnit patches.
    // The fixture as a git repository, made at test time.
    let repo = tmp("fixture");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gmem-solo-2023");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&repo)
        .status()
        .expect("cp");
    assert!(status.success());
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-f", "."]);
    git(
        &repo,
        &["commit", "-q", "-m", "a 2023 kvm_gmem_solo-shaped tree"],
    );
    let before = snapshot(&repo);
    let out = tmp("fixture-out");
    let (code, stdout, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(snapshot(&repo), before, "the repository is untouched");
    let files = patches(&out);
    assert_eq!(
        files.len(),
        12,
        "cover letter + patches 1-3, 4a, 4b, 5a, 5b, 6a, 6b and the two KUnit patches"
    );
    for f in &files {
        assert_checkpatch_clean(f, &repo);
    }
    let cover = assert_cover_for_maintainers(&out, &repo);
    let flat = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("they agree on every case for"), "{cover}");
    // get-pfn and prepare are both the prepare hook: said once.
    assert_eq!(flat.matches("the prepare hook (").count(), 1, "{cover}");
    // A patch that removes lines names the commit that brought them (the
    // fixture's only one); one that only adds code has no Fixes: tag.
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let fixes = format!(
        "\nFixes: {} (\"a 2023 kvm_gmem_solo-shaped tree\")\nSigned-off-by:",
        &head.trim()[..12]
    );
    for f in &files[1..] {
        let text = std::fs::read_to_string(f).expect("patch");
        assert_eq!(
            text.contains(&fixes),
            !removed(f).is_empty(),
            "{}:\n{text}",
            f.display()
        );
        assert_eq!(
            text.matches("Fixes:").count(),
            usize::from(text.contains(&fixes))
        );
    }
    assert!(!flat.contains("could not be written"), "{cover}");
    let clone = tmp("fixture-clone");
    assert!(
        Command::new("git")
            .args(["clone", "-q"])
            .arg(&repo)
            .arg(&clone)
            .status()
            .expect("clone")
            .success()
    );
    // After every patch the reviewed functions still compile against the
    // shim (no `error` verdict): each prefix of the series is consistent.
    for p in &files[1..] {
        git_as(
            &clone,
            ("Ada Lovelace", "ada@example.org"),
            &["am", "-q", p.to_str().expect("utf-8")],
        );
        let (_, report) = review_conforms(&clone);
        assert!(
            !report.contains("ERROR"),
            "after {}:\n{report}",
            p.display()
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_gmemforge"))
        .args([
            "review",
            "--json",
            "--random",
            "200",
            "--tree",
            clone.to_str().expect("utf-8"),
        ])
        .output()
        .expect("runs");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let verdict = |op: &str| {
        r["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["operation"] == op)
            .expect("item")["verdict"]
            .clone()
    };
    assert_eq!(verdict("invalidate"), "conforms", "{r:#}");
    assert_eq!(verdict("classify"), "conforms", "{r:#}");
    assert_eq!(verdict("bind"), "conforms");
    // Patch 6: the pre-fault ioctl, with the tree's own kvm_tdp_map_page()
    // and private-fault rule under check.
    assert_eq!(verdict("pre-fault"), "conforms", "{r:#}");
    // Patch 5: freed memory goes back to shared from .free_folio, outside
    // mmu_lock, with PSMASH for partial 2M entries.
    assert_eq!(verdict("gmem-invalidate"), "conforms", "{r:#}");
    // Patch 4: the RMP make-private hook and the max mapping level.
    assert_eq!(verdict("prepare"), "conforms", "{r:#}");
    assert_eq!(verdict("punch-hole"), "conforms", "{r:#}");
    // The wiring: kvm_gmem_get_pfn() now calls kvm_arch_gmem_prepare(),
    // which reaches sev_gmem_prepare() through the tree's own svm_x86_ops;
    // .free_folio sits in the tree's kvm_gmem_aops.
    assert_eq!(verdict("get-pfn"), "conforms", "{r:#}");

    // The fault-rule suite is a file of its own next to mmu.c, exactly the
    // text checker/tests/kunit.rs checks with checkpatch (and whose body
    // it builds and runs: it passes on the series' C, fails on the
    // u32-rule mutant); mmu.c includes it under the test's symbol, and the
    // directory's .kunitconfig selects it. Its Kconfig entry sits inside
    // the VIRTUALIZATION block.
    let classify: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/classify.json"),
        )
        .expect("vectors"),
    )
    .expect("json");
    let suite = gmem_codegen::kunit::rule_suite(&gmem_checker::kunit::rule_cases(
        classify["vectors"].as_array().expect("list"),
    ));
    let test_c =
        std::fs::read_to_string(clone.join("arch/x86/kvm/mmu/mmu_test.c")).expect("mmu_test.c");
    assert_eq!(test_c, suite, "the suite's file");
    let mmu = std::fs::read_to_string(clone.join("arch/x86/kvm/mmu/mmu.c")).expect("mmu.c");
    assert!(
        mmu.ends_with(
            "\n#if IS_ENABLED(CONFIG_KVM_X86_MMU_PRIVATE_RULE_KUNIT_TEST)\n\
             #include \"mmu_test.c\"\n#endif /* CONFIG_KVM_X86_MMU_PRIVATE_RULE_KUNIT_TEST */\n"
        ),
        "the suite's #include closes mmu.c"
    );
    let kc =
        std::fs::read_to_string(clone.join("arch/x86/kvm/mmu/.kunitconfig")).expect(".kunitconfig");
    for want in [
        "CONFIG_KUNIT=y",
        "CONFIG_KVM=y",
        "CONFIG_KVM_X86_MMU_PRIVATE_RULE_KUNIT_TEST=y",
    ] {
        assert!(kc.lines().any(|l| l == want), "{want}:\n{kc}");
    }
    let range = std::fs::read_to_string(clone.join("virt/kvm/guest_mem_test.c"))
        .expect("the range suite's own file");
    assert!(range.contains("KUNIT_CASE_PARAM("), "{range}");
    let kc = std::fs::read_to_string(clone.join("virt/kvm/.kunitconfig")).expect(".kunitconfig");
    assert!(
        kc.lines()
            .any(|l| l == "CONFIG_KVM_GUEST_MEMFD_KUNIT_TEST=y"),
        "{kc}"
    );
    let kconfig = std::fs::read_to_string(clone.join("arch/x86/kvm/Kconfig")).expect("Kconfig");
    let entry = kconfig
        .find("config KVM_X86_MMU_PRIVATE_RULE_KUNIT_TEST")
        .expect("the entry");
    assert!(
        entry < kconfig.find("endif # VIRTUALIZATION").expect("endif"),
        "{kconfig}"
    );
    assert!(kconfig.contains("If unsure, say N.\n\nendif"), "{kconfig}");
}

/// The 2023 fixture with `variant`'s files laid over it (None: as it is),
/// as a git repository.
fn fixture_repo(name: &str, variant: Option<&str>) -> PathBuf {
    let repo = tmp(name);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(root.join("gmem-solo-2023"))
            .arg(&repo)
            .status()
            .expect("cp")
            .success()
    );
    if let Some(v) = variant {
        let functions = root.join("variants").join(format!("{v}.c"));
        if functions.exists() {
            splice(&repo.join("virt/kvm/guest_mem.c"), &functions);
        } else {
            assert!(
                Command::new("cp")
                    .arg("-r")
                    .arg(format!("{}/.", root.join("variants").join(v).display()))
                    .arg(&repo)
                    .status()
                    .expect("cp")
                    .success()
            );
        }
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-f", "."]);
    git(
        &repo,
        &["commit", "-q", "-m", "a 2023 kvm_gmem_solo-shaped tree"],
    );
    repo
}

/// `file` with each function of `functions` in place of its own of that
/// name; a function it lacks goes before the next one of `functions`
/// (tests/fixtures/variants/README.md).
fn splice(file: &Path, functions: &Path) {
    use gmem_codegen::cparse;
    let with = std::fs::read_to_string(functions).expect("variant");
    let mut text = std::fs::read_to_string(file).expect("fixture");
    let ours = cparse::functions(&with).expect("parses");
    assert!(!ours.is_empty(), "{}: no function", functions.display());
    for (k, f) in ours.iter().enumerate() {
        let body = f.text(&with);
        match cparse::find(&text, &f.name).expect("parses") {
            Some(t) => text.replace_range(t.start..t.end, body),
            None => {
                let next = ours[k + 1..]
                    .iter()
                    .find_map(|n| cparse::find(&text, &n.name).expect("parses"))
                    .unwrap_or_else(|| {
                        panic!("{}: nowhere to put {}()", functions.display(), f.name)
                    });
                text.insert_str(next.start, &format!("{body}\n\n"));
            }
        }
    }
    std::fs::write(file, text).expect("write");
}

fn clone_and_am(repo: &Path, name: &str, patches: &[PathBuf]) -> PathBuf {
    let clone = tmp(name);
    assert!(
        Command::new("git")
            .args(["clone", "-q"])
            .arg(repo)
            .arg(&clone)
            .status()
            .expect("clone")
            .success()
    );
    for p in patches {
        git_as(
            &clone,
            ("Ada Lovelace", "ada@example.org"),
            &["am", "-q", p.to_str().expect("utf-8")],
        );
    }
    clone
}

fn norm(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every line a definition names as old text: the `-` side of each edit
/// and each `was:` mutant's functions (the shape before a fix).
fn named_lines() -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for d in gmem_codegen::series::def::series().expect("series") {
        for e in d
            .edits
            .iter()
            .flat_map(|e| std::iter::once(e).chain(&e.alts))
        {
            out.extend(e.old.lines().map(norm));
        }
        for m in &d.was {
            let u = gmem_codegen::unit::mutant(m).expect("mutant");
            for name in &d.replace {
                if let Some(f) = u.functions.iter().find(|f| &f.name == name) {
                    out.extend(f.text.lines().map(norm));
                }
            }
        }
    }
    out
}

/// Whether a line a patch removes is one a fix names: a line of an
/// edit's old text or of a `was:` function (`named`), a statement a
/// statement patch or a `drop:` removes (by pattern), or part of an
/// initializer field a `field:` takes from ours, as `fields` (the tree's
/// own text of those fields) holds it.
fn is_named(line: &str, named: &std::collections::BTreeSet<String>, fields: &[String]) -> bool {
    use gmem_codegen::series::anchor;
    let l_n = norm(line);
    if l_n.is_empty()
        || named.contains(&l_n)
        || named
            .iter()
            .any(|n| n.len() >= 8 && l_n.contains(n.as_str()))
    {
        return true;
    }
    if fields.iter().any(|f| norm(f).contains(&l_n)) {
        return true;
    }
    // The statements structural changes remove, as patterns (read once).
    static PATTERNS: OnceLock<Vec<String>> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        let mut out = Vec::new();
        for d in gmem_codegen::series::def::series().expect("series") {
            out.extend(d.drops.iter().map(|(_, p, _)| p.clone()));
            for e in d
                .edits
                .iter()
                .flat_map(|e| std::iter::once(e).chain(&e.alts))
            {
                if let Some(s) = &e.sem {
                    out.extend(s.removed().map(str::to_owned));
                }
            }
        }
        out
    });
    patterns.iter().any(|p| anchor::could_match(p, line))
}

/// The tree's own text of each initializer field a `field:` names, in
/// `file` (the designator through the value).
fn field_texts(file: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in gmem_codegen::series::def::series().expect("series") {
        for f in &d.fields {
            let Some(func) = gmem_codegen::cparse::find(file, &f.function).expect("parses") else {
                continue;
            };
            let text = func.text(file);
            if let Ok((s, e)) = gmem_codegen::series::anchor::field_value(text, &f.ty, &f.field) {
                // From the designator's line through the value's last
                // line (its comma included).
                let ls = text[..s].rfind('\n').map_or(0, |i| i + 1);
                let le = text[e..].find('\n').map_or(text.len(), |i| e + i);
                out.push(text[ls..le].to_owned());
            }
        }
    }
    out
}

/// The lines a patch file removes.
fn removed(patch: &Path) -> Vec<String> {
    std::fs::read_to_string(patch)
        .expect("patch")
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---") && *l != "-- ")
        .map(|l| l[1..].to_owned())
        .collect()
}

/// Lines of the tree's own (they carry `gmf_own`), per file.
fn own_lines(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                let rel = p.strip_prefix(dir).expect("inside").display().to_string();
                out.extend(
                    t.lines()
                        .filter(|l| l.contains("gmf_own"))
                        .map(|l| (rel.clone(), l.to_owned())),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_trees_own_lines_stay_in_every_function_the_series_changes() {
    // Every function and initializer the series edits carries lines the
    // model does not know (locks, tracepoint and stat lines, initializer
    // fields, comments, other locals, another parameter name, another
    // wrapping), each marked `gmf_own`.
    let variant = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/variants/own-lines");
    let theirs = own_lines(&variant);
    assert!(theirs.len() >= 25, "{theirs:#?}");
    let repo = fixture_repo("own", Some("own-lines"));
    let out = tmp("own-out");
    let (code, stdout, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let files = patches(&out);
    assert_eq!(files.len(), 12, "{stdout}");
    assert_cover_for_maintainers(&out, &repo);
    let named = named_lines();
    let fields =
        field_texts(&std::fs::read_to_string(repo.join("virt/kvm/guest_mem.c")).expect("read"));
    for f in &files[1..] {
        for l in removed(f) {
            // A whole line a fix names, a line holding a fragment one
            // names (`u32 err,` inside a signature), or a statement or
            // field a structural change names.
            assert!(
                is_named(&l, &named, &fields),
                "{} removes `{l}`, a line no fix names",
                f.display()
            );
        }
        assert_checkpatch_clean(f, &repo);
    }
    let clone = clone_and_am(&repo, "own-clone", &files[1..]);
    let after = own_lines(&clone);
    for line in &theirs {
        assert!(after.contains(line), "lost after git am: {line:?}");
    }
    let (code, report) = review_conforms(&clone);
    assert_eq!(code, 0, "review after the series:\n{report}");
}

#[test]
fn other_spellings_of_the_range_and_the_lookup_are_fixed_in_place() {
    // Three wrong range computations other than the mutant's (the offset
    // never subtracted; the walk's index for start, with another guard
    // and .end wrapped; another name for the memslot, the whole memslot,
    // another field order and one more field) and two other shapes of the
    // lookup in kvm_gmem_get_pfn() (6.8's ERR_PTR lookup with `ret`, `f`
    // and no out_unlock label; a success path that returns at once).
    let variants = [
        ("range-no-offset", "kvm_gmem_invalidate_begin"),
        ("range-walk-index", "kvm_gmem_invalidate_begin"),
        ("range-whole-memslot", "kvm_gmem_invalidate_begin"),
        ("range-local-pgoff", "kvm_gmem_invalidate_begin"),
        ("lookup-err-ptr", "kvm_gmem_get_pfn"),
        ("lookup-early-return", "kvm_gmem_get_pfn"),
    ];
    let named = named_lines();
    for (variant, function) in variants {
        let repo = fixture_repo(&format!("spell-{variant}"), Some(variant));
        let gmem = "virt/kvm/guest_mem.c";
        let before = std::fs::read_to_string(repo.join(gmem)).expect("read");
        let theirs = gmem_codegen::cparse::find(&before, function)
            .expect("parses")
            .expect("the variant's function")
            .text(&before)
            .to_owned();
        let fields = field_texts(&before);
        let out = tmp(&format!("spell-{variant}-out"));
        let (code, stdout, stderr) = series(&repo, &out, &[]);
        assert_eq!(code, 0, "{variant}:\n{stdout}{stderr}");
        let files = patches(&out);
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        for want in ["Clamp-the-invalidation-range", "Prepare-private-memory"] {
            assert!(
                names.iter().any(|n| n.contains(want)),
                "{variant}: {want}: {names:#?}\n{stdout}"
            );
        }
        assert_cover_for_maintainers(&out, &repo);
        let mut gone = Vec::new();
        for f in &files[1..] {
            gone.extend(removed(f).into_iter().map(|l| (f.clone(), l)));
            assert_checkpatch_clean(f, &repo);
        }
        let clone = clone_and_am(&repo, &format!("spell-{variant}-clone"), &files[1..]);
        let after = std::fs::read_to_string(clone.join(gmem)).expect("read");
        let function_after = gmem_codegen::cparse::find(&after, function)
            .expect("parses")
            .expect("the function after the series")
            .text(&after)
            .to_owned();
        // A removed line is one a fix names, or the declaration of a local
        // the function no longer reads (it went with the formula).
        let unread = |l: &str| {
            let head = l.split(['=', ';']).next().unwrap_or_default();
            let name = head.split_whitespace().last().unwrap_or_default();
            !name.is_empty()
                && head.trim() != name
                && !function_after
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == name)
        };
        for (f, l) in &gone {
            assert!(
                is_named(l, &named, &fields) || unread(l),
                "{variant}: {} removes `{l}`, a line no fix names",
                f.display()
            );
        }
        let gone: Vec<String> = gone.into_iter().map(|(_, l)| l).collect();
        // Every line of the function that no patch removes is still there.
        for l in theirs.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                gone.iter().any(|g| g == l) || after.contains(l),
                "{variant}: lost `{l}`"
            );
        }
        let (code, report) = review_conforms(&clone);
        assert_eq!(code, 0, "{variant}: review after the series:\n{report}");
    }
}

/// The 6.12 review files (and kvm_mm.h) in a git repository, with bind
/// as 6.8 to 7.1 had it: the offset and the size loff_t, and the offset
/// tested for < 0. `one_call`: kvm_gmem_bind() (6.12.117's shape, from
/// tests/fixtures/bind-shapes/one-call.c) in place of the tarball's split
/// bind; else the tarball's own shape.
fn loff_bind_repo(name: &str, one_call: bool) -> PathBuf {
    let dir = tmp(name);
    for f in FILES.iter().chain(&[
        "virt/kvm/Kconfig",
        "virt/kvm/kvm_mm.h",
        "tools/testing/selftests/kvm/set_memory_region_test.c",
    ]) {
        let Some(text) = linux_612().get(*f) else {
            continue;
        };
        let mut text = text.clone();
        if *f == "virt/kvm/guest_memfd.c" {
            // The shape asked for, whichever apt serves: the tarball's own,
            // or the team's fixture of it in place of the tarball's.
            let find = |t: &str, n: &str| gmem_codegen::cparse::find(t, n).expect("parses");
            let fixture = |name: &str| {
                std::fs::read_to_string(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures/bind-shapes")
                        .join(name),
                )
                .expect("a bind shape")
            };
            match (one_call, find(&text, "kvm_gmem_prepare_memory_region")) {
                (true, Some(prepare)) => {
                    let commit = find(&text, "kvm_gmem_commit_memory_region").expect("split");
                    text.replace_range(commit.start..commit.end, "");
                    text.replace_range(
                        prepare.start..prepare.end,
                        fixture("one-call.c").trim_end(),
                    );
                }
                (false, None) => {
                    let bind = find(&text, "kvm_gmem_bind").expect("one-call");
                    text.replace_range(bind.start..bind.end, fixture("split.c").trim_end());
                }
                _ => {}
            }
            for (from, to) in [
                (
                    "unsigned int fd, u64 offset)",
                    "unsigned int fd, loff_t offset)",
                ),
                (
                    "\tu64 size = slot->npages << PAGE_SHIFT;",
                    "\tloff_t size = slot->npages << PAGE_SHIFT;",
                ),
                (
                    "if (!PAGE_ALIGNED(offset) || offset + size > i_size_read(inode))",
                    "if (offset < 0 || !PAGE_ALIGNED(offset) ||\n\t    offset + size > i_size_read(inode))",
                ),
            ] {
                assert!(text.contains(from), "guest_memfd.c: {from}");
                text = text.replace(from, to);
            }
        }
        if *f == "virt/kvm/kvm_mm.h" {
            text = text.replace(
                "unsigned int fd, u64 offset)",
                "unsigned int fd, loff_t offset)",
            );
        }
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    std::fs::write(dir.join("Makefile"), "# 6.12 files for a gmemforge test\n").expect("write");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-f", "."]);
    git(
        &dir,
        &["commit", "-q", "-m", "base: 6.12 with a loff_t bind"],
    );
    dir
}

#[test]
fn a_loff_t_bind_gets_the_unsigned_fix_and_then_conforms() {
    for one_call in [true, false] {
        let name = if one_call { "loff-one" } else { "loff-split" };
        let repo = loff_bind_repo(name, one_call);
        let (code, report) = review_conforms(&repo);
        assert_eq!(code, 1, "{report}");
        let bind_line = |r: &str| {
            r.lines()
                .find(|l| l.split_whitespace().nth(1) == Some("bind"))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(bind_line(&report).contains("DIVERGES"), "{report}");
        let out = tmp(&format!("{name}-out"));
        let (code, stdout, stderr) = series(&repo, &out, &[]);
        assert_eq!(code, 0, "{name}:\n{stdout}{stderr}");
        let files = patches(&out);
        let bind: Vec<&PathBuf> = files
            .iter()
            .filter(|p| p.to_string_lossy().contains("Treat-the-binding-offset"))
            .collect();
        assert_eq!(bind.len(), 1, "{name}: {files:#?}\n{stdout}");
        let patch = std::fs::read_to_string(bind[0]).expect("patch");
        // The minimal change, in the tree's own function and header.
        let function = if one_call {
            "kvm_gmem_bind"
        } else {
            "kvm_gmem_prepare_memory_region"
        };
        for want in [
            "-\t\t  unsigned int fd, loff_t offset)",
            "-\tloff_t size = slot->npages << PAGE_SHIFT;",
            "+\tu64 size = slot->npages << PAGE_SHIFT;",
            "-\tif (offset < 0 || !PAGE_ALIGNED(offset) ||",
            "+\tif (!PAGE_ALIGNED(offset) ||",
            " \t    offset + size > i_size_read(inode))",
            "virt/kvm/kvm_mm.h",
            "offset 0x7ffffffffffff000",
        ] {
            let want = if one_call || !want.contains("\t\t  unsigned") {
                want.to_owned()
            } else {
                "-\t\t\t\t   unsigned int fd, loff_t offset)".to_owned()
            };
            assert!(patch.contains(&want), "{name}: {want:?}\n{patch}");
        }
        assert!(patch.contains(function), "{patch}");
        assert_cover_for_maintainers(&out, &repo);
        for f in &files[1..] {
            assert_checkpatch_clean(f, &repo);
        }
        // The selftest case from bind-050, where the tree has the test.
        let test: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                p.to_string_lossy()
                    .contains("selftests-Test-a-guest_memfd-offset")
            })
            .collect();
        assert_eq!(test.len(), 1, "{name}: {files:#?}\n{stdout}");
        let test = std::fs::read_to_string(test[0]).expect("patch");
        assert!(
            test.contains("+\ttest_invalid_guest_memfd(vm, memfd, 0x7ffffffffffff000ull,"),
            "{test}"
        );
        let clone = clone_and_am(&repo, &format!("{name}-clone"), &files[1..]);
        let mm = std::fs::read_to_string(clone.join("virt/kvm/kvm_mm.h")).expect("read");
        assert!(!mm.contains("loff_t offset"), "{mm}");
        let (_, report) = review_conforms(&clone);
        assert!(bind_line(&report).contains("conforms"), "{name}:\n{report}");
    }
}

#[test]
fn a_change_without_its_place_is_named_and_its_dependants_are_not_written() {
    // kvm_gmem_get_pfn() hands the lookup to a helper: no statement sets
    // `*pfn` in it, so the prepare hook's call has no place, and neither
    // it nor the SEV side that only makes sense with it is written.
    let repo = fixture_repo("noanchor", Some("no-anchor"));
    let out = tmp("noanchor-out");
    let (code, stdout, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let files = patches(&out);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 10, "{names:#?}");
    assert!(
        !names.iter().any(
            |n| n.contains("Prepare-private-memory") || n.contains("memory-private-in-the-RMP")
        ),
        "{names:#?}"
    );
    let cover = assert_cover_for_maintainers(&out, &repo);
    let flat = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "Not written, although this tree needs them:",
        "KVM: guest_memfd: Prepare private memory at first use",
        "04a-gmem-prepare-hook.txt: not placed: change 1 of 2: in kvm_gmem_get_pfn() of virt/kvm/guest_mem.c: looked for the statements `*pfn = _;`, ..., `r = 0;`",
        "KVM: SEV: Make guest_memfd memory private in the RMP at first use",
        "builds on \"KVM: guest_memfd: Prepare private memory at first use\", which is not written",
    ] {
        assert!(flat.contains(want), "{want}\n{cover}");
    }
    assert!(flat.contains("could not be written"), "{cover}");
    assert!(
        stdout.contains("NOT WRITTEN: KVM: guest_memfd: Prepare"),
        "{stdout}"
    );
    // --json: the same outcomes, for scripts; the same files written.
    let out_json = tmp("noanchor-json");
    let (code, stdout, stderr) = series(&repo, &out_json, &["--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(doc["exit"], 1);
    assert_eq!(doc["files"].as_array().map(Vec::len), Some(10), "{doc:#}");
    let patch = |file: &str| {
        doc["patches"]
            .as_array()
            .expect("patches")
            .iter()
            .find(|p| p["definition"] == file)
            .cloned()
            .unwrap_or_else(|| panic!("{file}: {doc:#}"))
    };
    let p4a = patch("04a-gmem-prepare-hook.txt");
    assert_eq!(p4a["outcome"], "not-placed", "{p4a:#}");
    assert!(
        p4a["detail"]
            .as_str()
            .is_some_and(|d| d.contains("looked for the statements `*pfn = _;`")),
        "{p4a:#}"
    );
    assert_eq!(
        patch("04b-sev-gmem-prepare.txt")["outcome"],
        "depends-on-unwritten"
    );
    let p1 = patch("01-gmem-invalidate-range.txt");
    assert_eq!(p1["outcome"], "written");
    assert!(
        p1["trailers"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("Fixes: ")),
        "{p1:#}"
    );
    assert!(
        doc["after"]["still"].as_array().is_some_and(|s| s
            .iter()
            .any(|o| o.as_str().is_some_and(|o| o.starts_with("get-pfn")))),
        "{doc:#}"
    );
    assert_eq!(
        std::fs::read_to_string(out_json.join("0000-cover-letter.patch")).expect("cover"),
        std::fs::read_to_string(out.join("0000-cover-letter.patch")).expect("cover"),
    );
    // What is written still applies, patch by patch.
    let clone = clone_and_am(&repo, "noanchor-clone", &files[1..]);
    let gmem = std::fs::read_to_string(clone.join("virt/kvm/guest_mem.c")).expect("read");
    assert!(!gmem.contains("kvm_arch_gmem_prepare"));
}

#[test]
fn a_tree_with_the_series_applied_gets_no_patch() {
    let repo = fixture_repo("applied", None);
    let out = tmp("applied-out");
    let (code, stdout, stderr) = series(&repo, &out, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let files = patches(&out);
    assert_cover_for_maintainers(&out, &repo);
    let clone = clone_and_am(&repo, "applied-clone", &files[1..]);
    let again = tmp("applied-again");
    let (code, stdout, stderr) = series(&clone, &again, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!again.exists(), "no patch, no output");
    let defs = gmem_codegen::series::def::series().expect("series");
    for d in defs
        .iter()
        .filter(|d| d.profiles.is_empty() || d.profiles.iter().any(|p| p == "gmem-solo-2023"))
    {
        assert!(
            stdout.contains(&format!("already applied: {}", d.subject)),
            "{}:\n{stdout}",
            d.subject
        );
    }
}

#[test]
fn a_partial_tree_gets_the_patches_whose_files_it_holds() {
    // Only virt/kvm/guest_mem.c, with the 2023 range bug.
    let dir = tmp("partial");
    std::fs::create_dir_all(dir.join("virt/kvm")).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/gmem-solo-2023/virt/kvm/guest_mem.c"),
        dir.join("virt/kvm/guest_mem.c"),
    )
    .expect("copy");
    let out = tmp("partial-out");
    let (code, stdout, stderr) = series(&dir, &out, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let files = patches(&out);
    assert_eq!(
        files.len(),
        2,
        "cover letter and the invalidation patch: {stdout}"
    );
    assert!(
        files[1]
            .to_string_lossy()
            .contains("Clamp-the-invalidation-range"),
        "{files:?}"
    );
    let cover = assert_cover_for_maintainers(&out, &dir);
    let flat = cover.split_whitespace().collect::<Vec<_>>().join(" ");
    // No history, no Fixes: tag, and the cover letter says why.
    assert!(
        flat.contains("not a git repository") && flat.contains("no Fixes: tags"),
        "{cover}"
    );
    assert!(
        !std::fs::read_to_string(&files[1])
            .expect("patch")
            .contains("Fixes:")
    );
    for want in [
        "07-gmem-invalidate-kunit.txt: changes virt/kvm/Kconfig, which the tree does not hold",
        "02-mmu-full-error-code.txt: changes arch/x86/kvm/mmu/mmu_internal.h, which the tree does not hold",
        "classify: missing",
    ] {
        assert!(flat.contains(want), "{want}\n{cover}");
    }
    // Every other patch is named on stdout.
    let defs = gmem_codegen::series::def::series().expect("series");
    for d in &defs[1..] {
        assert!(stdout.contains(&d.subject), "{}:\n{stdout}", d.subject);
    }
    assert!(dir.join("virt/kvm/guest_mem.c").exists());
}

#[test]
fn definitions_name_the_checkers_operations() {
    // def::OPERATIONS is what `operation:` is parsed against; it must be
    // the checker's registry, in its order.
    let registered: Vec<&str> = gmem_checker::ops::OPERATIONS
        .iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(gmem_codegen::series::def::OPERATIONS, registered.as_slice());
}

#[test]
fn a_fix_names_the_commit_that_brought_its_lines() {
    // A history: the file without the range computation, then the commit
    // that brings the buggy lines, then one that changes another file.
    let repo = tmp("fixes");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gmem-solo-2023/virt/kvm/guest_mem.c");
    let buggy = std::fs::read_to_string(&src).expect("guest_mem.c");
    let bug = [
        "\t\t\t.start = slot->base_gfn + start - slot->gmem.index,\n",
        "\t\t\t.end = slot->base_gfn + min(end - slot->gmem.index, slot->npages),\n",
    ];
    assert!(bug.iter().all(|l| buggy.contains(l)), "the fixture's bug");
    let before = buggy
        .replace(bug[0], "\t\t\t.start = slot->base_gfn,\n")
        .replace(bug[1], "\t\t\t.end = slot->base_gfn + slot->npages,\n");
    std::fs::create_dir_all(repo.join("virt/kvm")).expect("mkdir");
    let file = repo.join("virt/kvm/guest_mem.c");
    std::fs::write(&file, before).expect("write");
    std::fs::write(repo.join("Makefile"), "# a kernel tree\n").expect("write");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-f", "."]);
    git(&repo, &["commit", "-q", "-m", "KVM: Add guest_memfd"]);
    std::fs::write(&file, &buggy).expect("write");
    let subject = "KVM: guest_memfd: Zap only the range each binding covers";
    git(&repo, &["commit", "-q", "-am", subject]);
    let culprit = git(&repo, &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(repo.join("README"), "later work\n").expect("write");
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "Add a README"]);
    // Tags that are not releases, on a commit that holds the culprit.
    git(&repo, &["tag", "vnext"]);
    git(&repo, &["tag", "-a", "-m", "tested", "tested-2026"]);
    let before = snapshot(&repo);

    let fixes = format!("Fixes: {} (\"{subject}\")", &culprit[..12]);
    let out = tmp("fixes-out");
    let (_, stdout, stderr) = series(&repo, &out, &[]);
    let files = patches(&out);
    assert_eq!(files.len(), 2, "{stdout}{stderr}");
    let patch = std::fs::read_to_string(&files[1]).expect("patch");
    // The trailer block: Fixes: right before the sign-off; not released,
    // so no Cc: stable.
    assert!(
        patch.contains(&format!("\n\n{fixes}\nSigned-off-by: {FROM}\n")),
        "{patch}"
    );
    assert!(!patch.contains("stable@"), "{patch}");
    assert_checkpatch_clean(&files[1], &repo);
    assert_cover_for_maintainers(&out, &repo);

    // Released: the commit is in v6.99 (a later tag reaches it).
    git(&repo, &["tag", "v6.99", "HEAD"]);
    let (_, stdout, stderr) = series(&repo, &out, &["--force"]);
    let files = patches(&out);
    assert_eq!(files.len(), 2, "{stdout}{stderr}");
    let patch = std::fs::read_to_string(&files[1]).expect("patch");
    assert!(
        patch.contains(&format!(
            "\n\n{fixes}\nCc: stable@vger.kernel.org\nSigned-off-by: {FROM}\n"
        )),
        "{patch}"
    );
    assert_checkpatch_clean(&files[1], &repo);
    let mut after = snapshot(&repo);
    after.remove(".git/refs/tags/v6.99");
    assert_eq!(after, before, "the repository is only read");
    // git am takes the trailers as they are.
    let clone = clone_and_am(&repo, "fixes-clone", &files[1..]);
    let msg = git(&clone, &["log", "-1", "--format=%B"]);
    assert!(
        msg.contains(&fixes) && msg.contains("Cc: stable@vger.kernel.org"),
        "{msg}"
    );
}
