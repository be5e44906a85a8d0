//! `gmemforge series`: the patch series for the user's tree.
//!
//! Argument handling and IO around the planner (`codegen::series::plan`):
//! read and review the tree → plan → review the result → commit in a
//! private repository → write format-patch files and a cover letter,
//! atomically, into --out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gmem_checker::review::{self, Review};
use gmem_checker::runner::{self, Verdict};
use gmem_checker::tree::{Tree, TreeSource};
use gmem_codegen::kunit;
use gmem_codegen::series::plan::{self, OpVerdict, Outcome, Plan, State};
use gmem_codegen::series::{Base, Identity, Step, Workspace, def, email};
use gmem_reference::Profile;
use gmem_series::kbuild;

use crate::failure::Failure;
use crate::progress::Progress;

/// `series`' arguments.
#[derive(Debug, clap::Args)]
pub struct SeriesArgs {
    /// The kernel tree: a source directory, a git repository (read at
    /// --rev, never modified), or a linux-source .tar.xz.
    #[arg(long, value_name = "PATH")]
    pub tree: PathBuf,
    /// Revision of a git repository (default HEAD); the series is based on it.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Output directory for the patch files (must not exist, unless --force).
    #[arg(long, value_name = "DIR", default_value = "gmemforge-series")]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// Mark the series as version N ([PATCH vN m/n], vN- file names).
    #[arg(long, value_name = "N")]
    pub reroll: Option<u32>,
    /// Author and sender, "Name <email>" (default: the repository's or the
    /// user's git configuration).
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub from: Option<String>,
    /// Directory of vector files (<operation>.json) to use instead of the
    /// ones built into gmemforge.
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// No progress on stderr (it is shown only on a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Build every prefix of the series with the tree's own Kbuild (x86_64,
    /// KVM, KVM_AMD, KVM_AMD_SEV and every config symbol the series adds),
    /// W=1, in a private copy of the tree cached under
    /// ~/.cache/gmemforge/kbuild; a build error or a new warning fails the
    /// run (exit 1). Needs a whole kernel source.
    #[arg(long)]
    pub build: bool,
    /// After --build: run the series' KUnit suites with
    /// tools/testing/kunit/kunit.py under QEMU (qemu-system-x86).
    #[arg(long, requires = "build")]
    pub kunit: bool,
    /// make's parallelism for --build and --kunit (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Seeded random vectors per operation in the review.
    #[arg(long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=gmem_checker::ops::MAX_RANDOM))]
    pub random: u64,
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

fn identity(
    args: &SeriesArgs,
    src: &TreeSource,
    time: i64,
    offset: i32,
) -> Result<Identity, Failure> {
    let (name, email) = match &args.from {
        Some(f) => parse_from(f)
            .ok_or_else(|| Failure::input(format!("--from {f:?}: expected \"Name <email>\"")))?,
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
                    return Err(Failure::input(
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
    vectors: &dyn Fn(&str) -> Vec<serde_json::Value>,
    jobs: u64,
    random: u64,
) -> Result<ResultReview, Failure> {
    let dir = std::env::temp_dir().join(format!("gmemforge-series-result-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut files = tree_files.clone();
    for s in steps {
        files.extend(s.files.clone());
    }
    let io = |e: std::io::Error| Failure::io(format!("{}: {e}", dir.display()));
    for (path, text) in &files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap_or(&dir)).map_err(io)?;
        std::fs::write(p, text).map_err(io)?;
    }
    let result = Tree::open(&TreeSource::Dir(dir.clone()), review::FILES)
        .map_err(|e| Failure::input(e.to_string()))
        .and_then(|t| {
            review::review(
                &t,
                &runner::sources(true, random, 1),
                jobs,
                vectors,
                &mut |_| {},
            )
            .map_err(Failure::from)
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
struct ResultReview {
    still: Vec<String>,
    missing: Vec<(&'static str, String)>,
    /// Conforming operations and the cases each ran.
    conforming: Vec<(&'static str, u64)>,
}

/// stdout's line for an operation the tree (or the series' result) does
/// not hold: no patch's outcome, but not left unsaid. `why`: what review
/// looked for.
fn missing_line(operation: &str, why: &str) -> String {
    format!("  missing from this tree (no patch of this series adds it here): {operation}: {why}\n")
}

/// Runs `series`.
pub fn run_series(args: SeriesArgs) -> Result<u8, Failure> {
    // Before anything is read or written: --out must keep clear of the
    // tree, and --force may only replace an earlier series.
    crate::outdir::check_not_in_tree(&args.out, &crate::outdir::tree_paths(&args.tree))?;
    crate::outdir::check_replaceable(&args.out, args.force)?;
    // Temporary directories: leftovers of dead runs go, ours go on ^C.
    crate::tempdirs::sweep_stale();
    crate::tempdirs::on_signal_remove_ours();
    let src = TreeSource::from_arg(&args.tree, args.rev.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?;
    let progress = Progress::new(args.quiet);
    progress.step(&format!("reading {}", args.tree.display()));
    let defs = def::series()
        .map_err(|e| Failure::internal(format!("the built-in series definitions: {e}")))?;
    let wanted = series_files(&defs);
    let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let tree = Tree::open(&src, &wanted_refs).map_err(|e| Failure::input(e.to_string()))?;
    let tree_files: BTreeMap<String, String> = wanted
        .iter()
        .filter_map(|f| tree.file(f).map(|t| (f.clone(), t.to_owned())))
        .collect();
    let files = crate::vectors::read(args.vectors.as_deref())?;
    let vectors = runner::vector_lookup(&files);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let r = review::review(
        &tree,
        &runner::sources(true, args.random, 1),
        jobs,
        &vectors,
        &mut progress.hook(),
    )
    .map_err(Failure::from)?;
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
    let moved = moved_gmem_file(profile, &r, &tree_files);
    let plan_files = match moved {
        Some((ours, theirs)) => {
            let mut f = tree_files.clone();
            if let Some(text) = f.remove(theirs) {
                f.insert(ours.to_owned(), text);
            }
            f
        }
        None => tree_files.clone(),
    };
    let view = plan::TreeView {
        profile,
        files: &plan_files,
        verdicts: &verdicts,
    };
    let mut p = plan::plan(&view, &defs, &suites).map_err(|e| Failure::input(e.to_string()))?;
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
            tree.describe(),
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
        crate::output::emit(&text)?;
        return Ok(u8::from(p.left_out() || !diverging.is_empty()));
    }
    let (base, time, offset, base_line) = match (&src, tree.commit()) {
        (TreeSource::Git { repo, .. }, Some(commit)) => {
            let repo_handle = git2::Repository::open(repo)
                .map_err(|e| Failure::input(format!("{}: {}", repo.display(), e.message())))?;
            let c = git2::Oid::from_str(&commit)
                .and_then(|o| repo_handle.find_commit(o))
                .map_err(|e| Failure::input(e.message().to_owned()))?;
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
                files: tree_files.clone(),
            },
            FIXED_DATE,
            0,
            // No local path in the email: the tree is named on stdout.
            "Based on a source tree without git history: no base-commit.".to_owned(),
        ),
    };
    let id = identity(&args, &src, time, offset)?;
    // Review the result, so the cover letter says what still differs.
    let after = review_result(&tree_files, &p.steps, &vectors, jobs, args.random)?;
    let ws = Workspace::new(&base, &id).map_err(|e| Failure::input(e.to_string()))?;
    let committed = ws
        .commit(&p.steps, &id)
        .map_err(|e| Failure::input(e.to_string()))?;
    let total = committed.len();
    let last = committed
        .last()
        .map(|c| c.commit)
        .ok_or_else(|| Failure::input("no commits"))?;
    let stat = ws
        .total_stat(last)
        .map_err(|e| Failure::input(e.to_string()))?;
    // --build (and --kunit) before the files are written, so the cover
    // letter can say what passed; the series is written either way.
    let mut code = u8::from(p.left_out() || !after.still.is_empty());
    let mut in_kernel = None;
    let mut build_failure = None;
    if args.build {
        let patches: Vec<kbuild::Patch<'_>> = p
            .steps
            .iter()
            .map(|s| kbuild::Patch {
                subject: &s.def.subject,
                files: &s.files,
            })
            .collect();
        match prove_in_kernel(&args, &src, tree.commit().as_deref(), &patches, &wanted) {
            Ok((c, said)) => {
                code = code.max(c);
                in_kernel = said;
            }
            Err(e) => build_failure = Some(e),
        }
    }
    let written: Vec<&Step> = p.steps.iter().collect();
    let mut cover = cover_text(&CoverInput {
        steps: &written,
        verdicts: &verdicts,
        after: &after,
        random: args.random,
        git: matches!(base, Base::Git { .. }),
        left_out: p.left_out(),
    });
    if let Some(said) = in_kernel {
        cover.summary.push_str(&format!("\n\n{said}"));
    }
    let sections = sections(&p, &verdicts, profile.name());
    let cover = email::Cover {
        title: &cover.title,
        summary: &cover.summary,
        notes: &cover.notes,
        sections: &sections,
        base: &base_line,
        stat: &stat,
    };
    let mut out_files = Vec::new();
    out_files.push((
        format!(
            "{}0000-cover-letter.patch",
            args.reroll.map(|v| format!("v{v}-")).unwrap_or_default()
        ),
        email::cover_letter(&cover, &last.to_string(), &id, args.reroll, total),
    ));
    for (i, c) in committed.iter().enumerate() {
        out_files.push((
            email::file_name(args.reroll, i + 1, &c.def.subject),
            email::patch_file(c, &id, args.reroll, i + 1, total),
        ));
    }
    crate::outdir::write(&args.out, args.force, &out_files)?;
    let mut listing: String = out_files
        .iter()
        .map(|(name, _)| format!("{}\n", args.out.join(name).display()))
        .collect();
    for l in outcomes.iter().filter(|l| !l.starts_with("written")) {
        listing.push_str(&format!("  {l}\n"));
    }
    for (op, why) in &after.missing {
        listing.push_str(&missing_line(op, why));
    }
    for c in &committed {
        if let Some(gap) = &c.fixes_gap {
            listing.push_str(&format!(
                "  no Fixes: tag found for {}: {gap}\n",
                c.def.subject
            ));
        }
    }
    // What review could not confirm stays here, not in the email.
    if !after.still.is_empty() {
        listing.push_str(&format!(
            "  with the series applied, review still finds: {}\n",
            after.still.join("; ")
        ));
    }
    for v in &verdicts {
        if let State::Error(e) = &v.state {
            listing.push_str(&format!(
                "  not checked before the series (the tree's {} did not compile against the shim): {}\n",
                v.operation,
                e.lines().next().unwrap_or_default()
            ));
        }
    }
    crate::output::emit(&listing)?;
    match build_failure {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// What the cover letter is made from.
struct CoverInput<'a> {
    steps: &'a [&'a Step],
    verdicts: &'a [OpVerdict],
    after: &'a ResultReview,
    random: u64,
    /// A git base (Fixes: tags can be found).
    git: bool,
    left_out: bool,
}

/// The cover letter's own words: its title, summary and per-patch notes,
/// for kernel maintainers — no local path, nothing of gmemforge's insides
/// (those go to stdout).
struct CoverText {
    title: String,
    summary: String,
    notes: Vec<(String, String)>,
}

/// An operation's topic in the kernel's words.
fn topic(operation: &str) -> &str {
    match operation {
        "invalidate" => "the invalidation range",
        "classify" => "private faults",
        "get-pfn" | "prepare" => "the prepare hook",
        "gmem-invalidate" => "the free hook",
        "pre-fault" => "KVM_PRE_FAULT_MEMORY",
        "bind" => "binding",
        "punch-hole" => "hole punching",
        other => other,
    }
}

/// A changelog's opening paragraph, up to its last whole sentence (one that
/// leads into a command or a quote below stops short of it).
fn first_sentences(changelog: &str) -> String {
    let para = changelog.split("\n\n").next().unwrap_or_default().trim();
    if para.ends_with('.') {
        return para.to_owned();
    }
    match para.rfind(". ") {
        Some(i) => para[..=i].to_owned(),
        None => para.to_owned(),
    }
}

fn cover_text(c: &CoverInput<'_>) -> CoverText {
    let state = |op: &str| {
        c.verdicts
            .iter()
            .find(|v| v.operation == op)
            .map(|v| &v.state)
    };
    let mut fixes: Vec<&str> = Vec::new();
    let mut adds: Vec<&str> = Vec::new();
    let tests = c.steps.iter().any(|s| s.def.kunit.is_some());
    for s in c.steps.iter().filter(|s| s.def.kunit.is_none()) {
        let (list, t) = if matches!(state(&s.def.operation), Some(State::Missing(_)) | None) {
            (&mut adds, topic(&s.def.operation))
        } else {
            (&mut fixes, topic(&s.def.operation))
        };
        if !list.contains(&t) {
            list.push(t);
        }
    }
    let subjects: Vec<&str> = c.steps.iter().map(|s| s.def.subject.as_str()).collect();
    let title = email::cover_title(&subjects, &fixes, &adds, tests);
    // Per patch: what it does (its changelog's first paragraph) and, for
    // a fix, the case that shows the bug.
    let notes = c
        .steps
        .iter()
        .map(|s| {
            let mut why = first_sentences(&s.def.changelog);
            if s.def.kunit.is_none() {
                if let Some(State::Diverges(ce)) = state(&s.def.operation) {
                    if !ce.is_empty() {
                        why.push_str(&format!(" A case the tree gets wrong: {ce}"));
                    }
                }
            }
            (s.def.subject.clone(), why)
        })
        .collect();
    let area = "guest_memfd and the KVM code around it (the private-fault path \
                and the SEV-SNP hooks)";
    let does = match (fixes.is_empty(), adds.is_empty() && !tests) {
        (false, true) => format!("fixes {area} where this tree behaves wrongly"),
        (false, false) => format!(
            "fixes {area} where this tree behaves wrongly, and adds what the \
             fixes rest on"
        ),
        (true, _) => format!("adds to {area} what this tree lacks"),
    };
    let mut summary = format!(
        "This series {does}. Each patch is summarized below; its changelog \
         has the details."
    );
    // How it was verified: only what conforms is claimed.
    let mut ops: Vec<&str> = Vec::new();
    for s in c.steps {
        if !ops.contains(&s.def.operation.as_str()) {
            ops.push(&s.def.operation);
        }
    }
    // Per topic (two operations may share one), the cases run.
    let mut per_topic: Vec<(&str, u64)> = Vec::new();
    for op in &ops {
        let Some((_, n)) = c.after.conforming.iter().find(|(o, _)| o == op) else {
            continue;
        };
        match per_topic.iter_mut().find(|(t, _)| *t == topic(op)) {
            Some((_, sum)) => *sum += n,
            None => per_topic.push((topic(op), *n)),
        }
    }
    let checked: Vec<String> = per_topic
        .iter()
        .map(|(t, n)| format!("{t} ({n} cases)"))
        .collect();
    if !checked.is_empty() {
        summary.push_str(&format!(
            "\n\nTesting: with the series applied, the changed functions were \
             compiled in userspace and run side by side with an executable \
             reference model of guest_memfd and its SEV-SNP hooks, on shared test \
             vectors, an exhaustive sweep of small inputs and {} seeded random \
             inputs; they agree on every case for {}.",
            c.random,
            email::and_list(&checked.iter().map(String::as_str).collect::<Vec<_>>())
        ));
    }
    if c.left_out {
        summary.push_str(
            "\n\nPatches this tree also needs could not be written; they are \
             listed below.",
        );
    }
    if !c.git {
        summary.push_str(
            "\n\nThe tree is not a git repository: without its history the \
             commits that brought the changed lines are not known, so the \
             fixes carry no Fixes: tags.",
        );
    }
    CoverText {
        title,
        summary,
        notes,
    }
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

/// The cover letter's lists besides the per-patch notes.
fn sections(p: &Plan, verdicts: &[OpVerdict], profile: &str) -> Vec<email::Section> {
    let mut not_written = Vec::new();
    let mut applied = Vec::new();
    let mut not_needed = Vec::new();
    let mut other = Vec::new();
    for (d, o) in &p.patches {
        let s = d.subject.clone();
        match o {
            Outcome::Unplaced(w) => {
                not_written.push((s, Some(format!("{}: not placed: {w}", d.file))))
            }
            Outcome::NoFile(f) => not_written.push((
                s,
                Some(format!(
                    "{}: changes {f}, which the tree does not hold",
                    d.file
                )),
            )),
            Outcome::Depends(on) => not_written.push((
                s,
                Some(format!(
                    "{}: builds on \"{on}\", which is not written",
                    d.file
                )),
            )),
            Outcome::AlreadyApplied => applied.push((s, None)),
            Outcome::NotNeeded(f) => not_needed.push((s, Some(format!("conforming: {f}")))),
            Outcome::OtherProfile => other.push((s, None)),
            Outcome::Written(_) => {}
        }
    }
    // Per operation: conforms (the functions review ran) or missing (what
    // it looked for); diverging ones have their patches' notes.
    let ops: Vec<(String, Option<String>)> = verdicts
        .iter()
        .filter_map(|v| match &v.state {
            State::Conforms => Some((
                format!("{}: conforms", v.operation),
                Some(v.functions.clone()),
            )),
            State::Missing(m) => Some((format!("{}: missing", v.operation), Some(m.clone()))),
            _ => None,
        })
        .collect();
    [
        ("Not written, although this tree needs them:".to_owned(), not_written),
        ("Already applied in this tree:".to_owned(), applied),
        (
            "Left out because this tree already behaves as the model requires (checked by gmemforge review):"
                .to_owned(),
            not_needed,
        ),
        (format!("Not for {profile} trees:"), other),
        ("Operations reviewed in the tree before the series:".to_owned(), ops),
    ]
    .into_iter()
    .filter(|(_, items)| !items.is_empty())
    .map(|(heading, items)| email::Section { heading, items })
    .collect()
}

/// `--build` (and `--kunit`): every prefix built by the kernel's own
/// Kbuild; exit 1 when a prefix fails or a suite does not pass. The series
/// is written to --out either way. Also returns, for the cover letter,
/// what passed (nothing is claimed for what failed).
fn prove_in_kernel(
    args: &SeriesArgs,
    src: &TreeSource,
    commit: Option<&str>,
    patches: &[kbuild::Patch<'_>],
    series_files: &[String],
) -> Result<(u8, Option<String>), Failure> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let progress = Progress::new(args.quiet);
    let say = |m: &str| progress.step(m);
    let area = kbuild::Area::open(src, commit, &say)?;
    let results = kbuild::build_every_prefix(&area, patches, jobs, &say)?;
    let mut text = String::from("\nkernel build (make W=1 arch/x86/kvm/), every prefix:\n");
    let mut failed = false;
    for r in &results {
        let verdict = if r.error.is_some() {
            "FAILS"
        } else if !r.new_warnings.is_empty() {
            "WARNS"
        } else {
            "builds"
        };
        text.push_str(&format!(
            "  {verdict:<6} {:<60} {:>4} objects, {} new warnings, {:.1}s\n",
            r.label,
            r.objects,
            r.new_warnings.len(),
            r.seconds
        ));
        for w in &r.new_warnings {
            text.push_str(&format!("           {w}\n"));
        }
        if let Some(e) = &r.error {
            text.push_str(&format!("           {e}\n"));
        }
        failed |= verdict != "builds";
    }
    if results.len() < patches.len() + 1 {
        text.push_str(&format!(
            "  not built: patches {}..{} (after the first failure)\n",
            results.len(),
            patches.len()
        ));
    }
    let mut kunit_said = None;
    if args.kunit && !failed {
        // The series' suites as the patched tree has them (written now or
        // there already): each `.kunitconfig` beside a suite that enables
        // one of them. kunit.py runs exactly those directories, as a
        // developer would (`--kunitconfig=virt/kvm`).
        let mut suites = std::collections::BTreeSet::new();
        let mut dirs = Vec::new();
        let looked: Vec<&String> = series_files
            .iter()
            .filter(|p| p.ends_with("/.kunitconfig"))
            .collect();
        for path in &looked {
            let Some(text) = area.read(path) else {
                continue;
            };
            let enabled: Vec<String> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("CONFIG_")?.strip_suffix("=y"))
                .filter(|s| kunit::SUITES.iter().any(|(c, _)| c == s))
                .map(str::to_owned)
                .collect();
            if !enabled.is_empty() {
                suites.extend(enabled);
                dirs.extend(path.strip_suffix("/.kunitconfig").map(str::to_owned));
            }
        }
        if dirs.is_empty() {
            // Said, and the exit status tells: --kunit asked for suites
            // that the patched tree does not have (their patch not written).
            text.push_str(&format!(
                "\nKUnit: not run: no suite of the series is in the patched tree \
                 (looked for {} enabling {})\n",
                looked
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                kunit::SUITES
                    .iter()
                    .map(|(c, _)| format!("CONFIG_{c}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
            drop(progress);
            crate::output::emit(&text)?;
            return Ok((1, None));
        }
        say("running the KUnit suites under QEMU (kunit.py)");
        let k = kbuild::run_kunit(&area, &dirs, jobs)?;
        text.push_str(&format!(
            "\nKUnit (kunit.py run --arch=x86_64), {:.0}s:\n",
            k.seconds
        ));
        for (suite, (p, f, sk)) in &k.suites {
            text.push_str(&format!(
                "  {suite}: {p} passed, {f} failed, {sk} skipped\n"
            ));
        }
        text.push_str(&format!("  {}\n", k.summary.replace('\n', "\n  ")));
        // Each suite the series adds must have run, not only passed.
        let mut missing = Vec::new();
        for (config, suite) in kunit::SUITES {
            if suites.contains(*config) && !k.suites.contains_key(*suite) {
                missing.push(*suite);
            }
        }
        if !missing.is_empty() {
            text.push_str(&format!("  did not run: {}\n", missing.join(", ")));
        }
        failed |= !k.passed || !missing.is_empty();
        if !failed {
            let runs: Vec<String> = k
                .suites
                .iter()
                .map(|(suite, (p, _, sk))| format!("{suite} ({p} passed, {sk} skipped)"))
                .collect();
            kunit_said = Some(format!(
                " The KUnit suites pass under QEMU (kunit.py run --arch=x86_64): {}.",
                email::and_list(&runs.iter().map(String::as_str).collect::<Vec<_>>())
            ));
        }
    }
    drop(progress);
    crate::output::emit(&text)?;
    let said = (!failed).then(|| {
        format!(
            "The base and every prefix of the series build with make W=1 \
             arch/x86/kvm/ (x86_64 defconfig with KVM, KVM_AMD and KVM_AMD_SEV), \
             with no new warnings.{}",
            kunit_said.unwrap_or_default()
        )
    });
    Ok((u8::from(failed), said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_ends_on_a_whole_sentence() {
        assert_eq!(first_sentences("Do a. Do b.\n\nWhy."), "Do a. Do b.");
        assert_eq!(
            first_sentences("Add a suite. A .kunitconfig lets\n\n  kunit.py run"),
            "Add a suite."
        );
        assert_eq!(first_sentences("No stop"), "No stop");
    }
}
