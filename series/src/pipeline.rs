//! The series from a tree to its texts: read the tree → review it → plan
//! → review the result → commit in a private repository → (`--build`,
//! `--kunit`) → the format-patch files, the cover letter, and what stdout
//! says about them.
//!
//! Nothing here prints or writes the user's output directory: [`run`]
//! returns the texts, and the caller writes them (the CLI's `series`
//! checks and replaces `--out` atomically).

use std::collections::BTreeMap;

use gmem_checker::progress::Event;
use gmem_checker::review::{self, Review};
use gmem_checker::runner::{self, Verdict};
use gmem_checker::tree::{Tree, TreeSource};
use gmem_codegen::kunit;
use gmem_codegen::series::plan::{self, OpVerdict, Outcome, Plan, State};
use gmem_codegen::series::{Base, Committed, Identity, Step, Workspace, def, email};
use gmem_reference::Profile;
use serde_json::Value;

use crate::Error;
use crate::cover::{self, CoverInput};
use crate::in_kernel;
use crate::kbuild;

/// Where the pipeline says how far it got: the checker's events during
/// reviews, and named steps (the kernel build's) between them.
pub trait Progress {
    /// Names the current step.
    fn step(&self, what: &str);
    /// One of the checker's events.
    fn event(&self, e: Event<'_>);
}

/// No progress to show.
impl Progress for () {
    fn step(&self, _: &str) {}
    fn event(&self, _: Event<'_>) {}
}

/// What the series is asked for, beyond the tree.
pub struct Request<'a> {
    /// Author and sender, `"Name <email>"`; `None`: the repository's or the
    /// user's git configuration.
    pub from: Option<&'a str>,
    /// Version N of the series (`[PATCH vN m/n]`, `vN-` file names).
    pub reroll: Option<u32>,
    /// Seeded random vectors per operation in each review.
    pub random: u64,
    /// The vector files by operation name.
    pub vectors: &'a dyn Fn(&str) -> Vec<Value>,
    /// `--build` (and `--kunit`), if asked for.
    pub build: Option<Build>,
}

/// `--build`'s options.
#[derive(Debug, Clone, Copy)]
pub struct Build {
    /// make's parallelism (`None`: the number of CPUs).
    pub jobs: Option<u32>,
    /// After the builds, run the series' KUnit suites under QEMU.
    pub kunit: bool,
}

/// The tree as the series reads it.
pub struct Input {
    source: TreeSource,
    defs: Vec<def::PatchDef>,
    /// The files the series reads (review's and every definition's).
    wanted: Vec<String>,
    tree: Tree,
    /// The wanted files the tree holds.
    files: BTreeMap<String, String>,
}

impl Input {
    /// Reads what the series needs of the tree at `source`. Apart from
    /// [`run`] so a caller can load its vectors after the tree, as the
    /// CLI's errors have always come in that order.
    pub fn read(source: &TreeSource) -> Result<Input, Error> {
        let defs = def::series()
            .map_err(|e| Error::internal(format!("the built-in series definitions: {e}")))?;
        let wanted = series_files(&defs);
        let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let tree = Tree::open(source, &wanted_refs).map_err(|e| Error::input(e.to_string()))?;
        let files: BTreeMap<String, String> = wanted
            .iter()
            .filter_map(|f| tree.file(f).map(|t| (f.clone(), t.to_owned())))
            .collect();
        Ok(Input {
            source: source.clone(),
            defs,
            wanted,
            tree,
            files,
        })
    }
}

/// What [`run`] made.
pub struct Made {
    /// Every patch of the series with its outcome, and the steps written.
    pub plan: Plan,
    /// The commits of the private repository, in order.
    pub committed: Vec<Committed>,
    /// The files to write, (file name, text): the cover letter, then each
    /// patch. Empty when the tree gets no patch: nothing is written then.
    pub files: Vec<(String, String)>,
    /// stdout before the names of the files: `--build`'s account (`None`
    /// without `--build`, or when the build could not run).
    pub build_report: Option<String>,
    /// stdout after the names of the files: what became of each patch not
    /// written, what review could not confirm. With no file to write, the
    /// whole of stdout.
    pub notes: String,
    /// The exit status when all went well: 0, or 1 when a patch could not
    /// be written, the result does not conform, or `--build`/`--kunit`
    /// found a failure.
    pub code: u8,
    /// `--build` could not do its job: the series is written all the same,
    /// then this is the run's error.
    pub build_error: Option<Error>,
    /// The tree's generation.
    pub profile: &'static str,
    /// The review of the tree before the series.
    pub before: Vec<OpVerdict>,
    /// The review of the result: operations that still diverge or do not
    /// compile (with the verdict's words), and those it does not hold
    /// (operation, what was looked for). Before, for a tree with nothing
    /// to write.
    pub still: Vec<String>,
    /// See `still`.
    pub missing_after: Vec<(String, String)>,
}

/// Makes the series for `input`: everything but writing it.
pub fn run(input: &Input, req: &Request<'_>, progress: &dyn Progress) -> Result<Made, Error> {
    let vectors = req.vectors;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let r = review::review(
        &input.tree,
        &runner::sources(true, req.random, 1),
        jobs,
        vectors,
        &mut |e| progress.event(e),
    )?;
    let profile = r.detected.profile;
    let suites = plan::Suites {
        range: kunit::suite(
            profile,
            &gmem_checker::kunit::range_cases(&vectors("invalidate")),
        ),
        rule: kunit::rule_suite(&gmem_checker::kunit::rule_cases(&vectors("classify"))),
    };
    let verdicts = verdicts(&r);
    // A generation that keeps the profile's guest_memfd code under the
    // other file name (gmem v10–v14 and their backports: upstream's design
    // in guest_mem.c) is planned under the profile's name and written to
    // the tree's own file.
    let moved = moved_gmem_file(profile, &r, &input.files);
    let plan_files = match moved {
        Some((ours, theirs)) => {
            let mut f = input.files.clone();
            if let Some(text) = f.remove(theirs) {
                f.insert(ours.to_owned(), text);
            }
            f
        }
        None => input.files.clone(),
    };
    let view = plan::TreeView {
        profile,
        files: &plan_files,
        verdicts: &verdicts,
    };
    let mut p = plan::plan(&view, &input.defs, &suites).map_err(|e| Error::input(e.to_string()))?;
    if let Some((ours, theirs)) = moved {
        for step in &mut p.steps {
            if let Some(text) = step.files.remove(ours) {
                step.files.insert(theirs.to_owned(), text);
            }
        }
    }
    let outcomes = outcome_lines(&p, profile.name());

    if p.steps.is_empty() {
        let mut text = format!(
            "{}: {} — no patch to write.\n",
            input.tree.describe(),
            profile.name()
        );
        for l in &outcomes {
            text.push_str(&format!("  {l}\n"));
        }
        // Nothing written: the result is the tree as it is.
        let diverging: Vec<&str> = verdicts
            .iter()
            .filter(|v| matches!(v.state, State::Diverges(_) | State::Error(_)))
            .map(|v| v.operation.as_str())
            .collect();
        if !diverging.is_empty() {
            text.push_str(&format!(
                "  still not conforming: {}\n",
                diverging.join(", ")
            ));
        }
        for v in &verdicts {
            if let State::Missing(m) = &v.state {
                text.push_str(&missing_line(&v.operation, m));
            }
        }
        let code = u8::from(p.left_out() || !diverging.is_empty());
        let still = diverging.iter().map(|o| (*o).to_owned()).collect();
        let missing_after = verdicts
            .iter()
            .filter_map(|v| match &v.state {
                State::Missing(m) => Some((v.operation.clone(), m.clone())),
                _ => None,
            })
            .collect();
        return Ok(Made {
            plan: p,
            committed: Vec::new(),
            files: Vec::new(),
            build_report: None,
            notes: text,
            code,
            build_error: None,
            profile: profile.name(),
            before: verdicts,
            still,
            missing_after,
        });
    }
    let (base, time, offset, base_line) = match (&input.source, input.tree.commit()) {
        (TreeSource::Git { repo, .. }, Some(commit)) => {
            let repo_handle = git2::Repository::open(repo)
                .map_err(|e| Error::input(format!("{}: {}", repo.display(), e.message())))?;
            let c = git2::Oid::from_str(&commit)
                .and_then(|o| repo_handle.find_commit(o))
                .map_err(|e| Error::input(e.message().to_owned()))?;
            let t = c.committer().when();
            (
                Base::Git {
                    repo: repo.clone(),
                    commit: commit.clone(),
                },
                t.seconds(),
                t.offset_minutes(),
                format!("base-commit: {commit}"),
            )
        }
        _ => (
            Base::Files {
                files: input.files.clone(),
            },
            FIXED_DATE,
            0,
            // No local path in the email: the tree is named on stdout.
            "Based on a source tree without git history: no base-commit.".to_owned(),
        ),
    };
    let id = identity(req.from, &input.source, time, offset)?;
    // Review the result, so the cover letter says what still differs.
    let after = review_result(&input.files, &p.steps, vectors, jobs, req.random)?;
    let ws = Workspace::new(&base, &id).map_err(|e| Error::input(e.to_string()))?;
    let committed = ws
        .commit(&p.steps, &id)
        .map_err(|e| Error::input(e.to_string()))?;
    let total = committed.len();
    let last = committed
        .last()
        .map(|c| c.commit)
        .ok_or_else(|| Error::input("no commits"))?;
    let stat = ws
        .total_stat(last)
        .map_err(|e| Error::input(e.to_string()))?;
    // --build (and --kunit) before the files are made, so the cover
    // letter can say what passed; the series is written either way.
    let mut code = u8::from(p.left_out() || !after.still.is_empty());
    let mut in_kernel = None;
    let mut build_report = None;
    let mut build_error = None;
    if let Some(build) = &req.build {
        let patches: Vec<kbuild::Patch<'_>> = p
            .steps
            .iter()
            .map(|s| kbuild::Patch {
                subject: &s.def.subject,
                files: &s.files,
            })
            .collect();
        match in_kernel::prove(
            build,
            &input.source,
            input.tree.commit().as_deref(),
            &patches,
            &input.wanted,
            progress,
        ) {
            Ok(proof) => {
                code = code.max(proof.code);
                in_kernel = proof.said;
                build_report = Some(proof.report);
            }
            Err(e) => build_error = Some(e),
        }
    }
    let written: Vec<&Step> = p.steps.iter().collect();
    let mut text = cover::cover_text(&CoverInput {
        steps: &written,
        verdicts: &verdicts,
        after: &after,
        random: req.random,
        git: matches!(base, Base::Git { .. }),
        left_out: p.left_out(),
    });
    if let Some(said) = in_kernel {
        text.summary.push_str(&format!("\n\n{said}"));
    }
    let sections = cover::sections(&p, &verdicts, profile.name());
    let letter = email::Cover {
        title: &text.title,
        summary: &text.summary,
        notes: &text.notes,
        sections: &sections,
        base: &base_line,
        stat: &stat,
    };
    let mut files = Vec::new();
    files.push((
        format!(
            "{}0000-cover-letter.patch",
            req.reroll.map(|v| format!("v{v}-")).unwrap_or_default()
        ),
        email::cover_letter(&letter, &last.to_string(), &id, req.reroll, total),
    ));
    for (i, c) in committed.iter().enumerate() {
        files.push((
            email::file_name(req.reroll, i + 1, &c.def.subject),
            email::patch_file(c, &id, req.reroll, i + 1, total),
        ));
    }
    let mut notes = String::new();
    for l in outcomes.iter().filter(|l| !l.starts_with("written")) {
        notes.push_str(&format!("  {l}\n"));
    }
    for (op, why) in &after.missing {
        notes.push_str(&missing_line(op, why));
    }
    for c in &committed {
        if let Some(gap) = &c.fixes_gap {
            notes.push_str(&format!(
                "  no Fixes: tag found for {}: {gap}\n",
                c.def.subject
            ));
        }
    }
    // What review could not confirm stays here, not in the email.
    if !after.still.is_empty() {
        notes.push_str(&format!(
            "  with the series applied, review still finds: {}\n",
            after.still.join("; ")
        ));
    }
    for v in &verdicts {
        if let State::Error(e) = &v.state {
            notes.push_str(&format!(
                "  not checked before the series (the tree's {} did not compile against the shim): {}\n",
                v.operation,
                e.lines().next().unwrap_or_default()
            ));
        }
    }
    Ok(Made {
        plan: p,
        committed,
        files,
        build_report,
        notes,
        code,
        build_error,
        profile: profile.name(),
        before: verdicts,
        still: after.still.clone(),
        missing_after: after
            .missing
            .iter()
            .map(|(o, w)| ((*o).to_owned(), w.clone()))
            .collect(),
    })
}

/// (the profile's guest_memfd file, the tree's) when the tree keeps the
/// profile's code under the other name: review found its guest_memfd
/// functions there, and the profile's file is not in the tree.
fn moved_gmem_file(
    profile: Profile,
    r: &Review,
    files: &BTreeMap<String, String>,
) -> Option<(&'static str, &'static str)> {
    let ours = match profile {
        Profile::Upstream => "virt/kvm/guest_memfd.c",
        Profile::GmemSolo2023 => "virt/kvm/guest_mem.c",
    };
    let theirs = r.detected.operations.iter().find_map(|s| s.gmem_file)?;
    (theirs != ours && files.contains_key(theirs) && !files.contains_key(ours))
        .then_some((ours, theirs))
}

/// Files the series reads: review's, plus every file a definition names.
fn series_files(defs: &[def::PatchDef]) -> Vec<String> {
    let mut f: Vec<String> = review::FILES.iter().map(|s| (*s).to_owned()).collect();
    for p in plan::files(defs) {
        if !f.contains(&p) {
            f.push(p);
        }
    }
    f
}

/// Commit date for non-git bases: fixed, so output is reproducible.
pub const FIXED_DATE: i64 = 1_767_225_600; // 2026-01-01 00:00:00 UTC

fn parse_from(s: &str) -> Option<(String, String)> {
    let (name, rest) = s.split_once('<')?;
    let email = rest.strip_suffix('>')?;
    (!name.trim().is_empty() && email.contains('@'))
        .then(|| (name.trim().to_owned(), email.to_owned()))
}

/// Author and sender: `from` ("Name <email>"), else the repository's or
/// the user's git configuration; dated `time` (`offset` minutes east).
fn identity(
    from: Option<&str>,
    src: &TreeSource,
    time: i64,
    offset: i32,
) -> Result<Identity, Error> {
    let (name, email) = match from {
        Some(f) => parse_from(f)
            .ok_or_else(|| Error::input(format!("--from {f:?}: expected \"Name <email>\"")))?,
        None => {
            let cfg = match src {
                TreeSource::Git { repo, .. } => {
                    git2::Repository::open(repo).and_then(|r| r.config())
                }
                _ => git2::Config::open_default(),
            };
            let get = |k: &str| cfg.as_ref().ok().and_then(|c| c.get_string(k).ok());
            match (get("user.name"), get("user.email")) {
                (Some(n), Some(e)) => (n, e),
                _ => {
                    return Err(Error::input(
                        "no --from and no user.name/user.email in git config: give --from \"Name <email>\"",
                    ));
                }
            }
        }
    };
    Ok(Identity {
        name,
        email,
        time,
        offset,
    })
}

/// The review's verdicts, as the planner takes them.
fn verdicts(r: &Review) -> Vec<OpVerdict> {
    r.report
        .items
        .iter()
        .map(|i| OpVerdict {
            operation: i.operation.to_owned(),
            state: match i.verdict {
                Verdict::Conforms => State::Conforms,
                Verdict::Diverges => State::Diverges(
                    i.counterexample
                        .as_ref()
                        .map(|c| c.why.clone())
                        .or_else(|| i.error.clone())
                        .unwrap_or_default(),
                ),
                Verdict::Missing => State::Missing(i.error.clone().unwrap_or_default()),
                Verdict::Error => State::Error(i.error.clone().unwrap_or_default()),
            },
            functions: i.function.clone(),
        })
        .collect()
}

/// Reviews the tree with every step applied (written to a temporary
/// directory); returns what does not conform, in words.
fn review_result(
    tree_files: &BTreeMap<String, String>,
    steps: &[Step],
    vectors: &dyn Fn(&str) -> Vec<Value>,
    jobs: u64,
    random: u64,
) -> Result<ResultReview, Error> {
    let dir = std::env::temp_dir().join(format!("gmemforge-series-result-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut files = tree_files.clone();
    for s in steps {
        files.extend(s.files.clone());
    }
    let io = |e: std::io::Error| Error::io(format!("{}: {e}", dir.display()));
    for (path, text) in &files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap_or(&dir)).map_err(io)?;
        std::fs::write(p, text).map_err(io)?;
    }
    let result = Tree::open(&TreeSource::Dir(dir.clone()), review::FILES)
        .map_err(|e| Error::input(e.to_string()))
        .and_then(|t| {
            review::review(
                &t,
                &runner::sources(true, random, 1),
                jobs,
                vectors,
                &mut |_| {},
            )
            .map_err(Error::from)
        });
    let _ = std::fs::remove_dir_all(&dir);
    let items = result?.report.items;
    Ok(ResultReview {
        // Operations the tree does not hold stay missing: not a divergence.
        still: items
            .iter()
            .filter(|i| !matches!(i.verdict, Verdict::Conforms | Verdict::Missing))
            .map(|i| {
                format!(
                    "{} {}",
                    i.operation,
                    serde_json::to_value(i.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )
            })
            .collect(),
        missing: items
            .iter()
            .filter(|i| i.verdict == Verdict::Missing)
            .map(|i| (i.operation, i.error.clone().unwrap_or_default()))
            .collect(),
        conforming: items
            .iter()
            .filter(|i| i.verdict == Verdict::Conforms)
            .map(|i| (i.operation, i.vectors))
            .collect(),
    })
}

/// The review of a series' result: what still differs (operation and
/// verdict), and the operations the result does not hold (operation: what
/// was looked for).
pub(crate) struct ResultReview {
    still: Vec<String>,
    missing: Vec<(&'static str, String)>,
    /// Conforming operations and the cases each ran.
    pub(crate) conforming: Vec<(&'static str, u64)>,
}

/// stdout's line for an operation the tree (or the series' result) does
/// not hold: no patch's outcome, but not left unsaid. `why`: what review
/// looked for.
fn missing_line(operation: &str, why: &str) -> String {
    format!("  missing from this tree (no patch of this series adds it here): {operation}: {why}\n")
}

/// One line per patch: what became of it (stdout).
fn outcome_lines(p: &Plan, profile: &str) -> Vec<String> {
    p.patches
        .iter()
        .map(|(d, o)| {
            let s = &d.subject;
            match o {
                Outcome::Written(_) => format!("written: {s}"),
                Outcome::AlreadyApplied => format!("already applied: {s}"),
                Outcome::NotNeeded(f) => format!("not needed (conforming: {f}): {s}"),
                Outcome::OtherProfile => format!("not for {profile} trees: {s}"),
                Outcome::Unplaced(w) => format!("NOT WRITTEN: {s}: {w}"),
                Outcome::NoFile(f) => {
                    format!("NOT WRITTEN: {s}: changes {f}, which the tree does not hold")
                }
                Outcome::Depends(on) => {
                    format!("NOT WRITTEN: {s}: builds on \"{on}\", which is not written")
                }
            }
        })
        .collect()
}
