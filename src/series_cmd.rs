//! `gmemforge series`: the patch series for the user's tree.
//!
//! review the tree → for each patch of `kernel-patches/series/`, include it
//! iff its operation does not conform → place its changes in the tree's
//! files → commit in a private repository → write format-patch files and a
//! cover letter, atomically, into --out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gmem_checker::review::{self, Review};
use gmem_checker::runner::{self, Verdict};
use gmem_checker::tree::{Tree, TreeSource};
use gmem_codegen::kunit::{self, RangeCase, RuleCase};
use gmem_codegen::series::{self, Base, Identity, Step, Workspace, def, edit, email};
use gmem_codegen::unit;

use crate::failure::Failure;
use crate::kbuild;
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

/// Files the series reads: review's, plus the headers its patches extend.
fn series_files() -> Vec<&'static str> {
    let mut f = review::FILES.to_vec();
    f.push("arch/x86/include/asm/kvm_host.h");
    f.push("virt/kvm/Kconfig");
    f.push("arch/x86/kvm/Kconfig");
    // The wiring of the SEV-SNP gmem hooks.
    f.extend([
        "include/linux/kvm_host.h",
        "arch/x86/include/asm/kvm-x86-ops.h",
        "arch/x86/kvm/x86.c",
        "arch/x86/kvm/svm/svm.h",
        "include/uapi/linux/kvm.h",
    ]);
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

/// The cases of the generated KUnit suites, from the vectors.
struct KunitCases {
    range: Vec<RangeCase>,
    rule: Vec<RuleCase>,
}

/// The placed series: the steps, a note per included patch (subject,
/// why), and the conforming operations left alone (label, functions).
type Placed = (Vec<Step>, Vec<(String, String)>, Vec<(String, String)>);

/// Places every included patch; returns the steps and the per-patch notes.
fn place(
    tree: &Tree,
    r: &Review,
    defs: &[series::PatchDef],
    cases: &KunitCases,
) -> Result<Placed, Failure> {
    let profile = r.detected.profile;
    let unit = unit::builtin(profile).map_err(|e| Failure::input(e.to_string()))?;
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let (mut steps, mut notes, mut omitted) = (Vec::new(), Vec::new(), Vec::new());
    // Every operation the tree already gets right is named, with its
    // functions, whether or not a patch of the series targets it.
    for item in &r.report.items {
        if item.verdict == Verdict::Conforms {
            let label = match defs.iter().find(|d| d.operation == item.operation) {
                Some(d) => d.subject.clone(),
                None => format!("{} (no patch needed)", item.operation),
            };
            omitted.push((label, item.function.clone()));
        }
    }
    for d in defs {
        let item = r.report.items.iter().find(|i| i.operation == d.operation);
        let Some(item) = item else { continue };
        if item.verdict == Verdict::Conforms {
            continue;
        }
        let mut touched: BTreeMap<String, String> = BTreeMap::new();
        let text_of =
            |path: &str, touched: &BTreeMap<String, String>, current: &BTreeMap<String, String>| {
                touched
                    .get(path)
                    .or_else(|| current.get(path))
                    .cloned()
                    .or_else(|| tree.file(path).map(str::to_owned))
            };
        // A patch that builds on an earlier one the tree did not get.
        let met = d.requires.iter().all(|(path, text)| {
            text_of(path, &touched, &current).is_some_and(|t| t.contains(text.as_str()))
        });
        if !met {
            continue;
        }
        for name in &d.replace {
            let f = builtin_function(&unit, d, name)?;
            let src = text_of(&f.site, &touched, &current).ok_or_else(|| {
                Failure::input(format!(
                    "{name}(): {} is not in {}",
                    f.site,
                    tree.describe()
                ))
            })?;
            let new = edit::replace_function(&f.site, &src, name, &f.text)
                .map_err(|e| Failure::input(e.to_string()))?;
            touched.insert(f.site.clone(), new);
        }
        // The first targeted edit is the patch's anchor: no match, not
        // this tree's shape, patch left out.
        let mut anchored = true;
        for (k, e) in d.edits.iter().enumerate() {
            let placed = match text_of(&e.path, &touched, &current) {
                Some(src) => edit::apply_edit(&e.path, &src, &e.within, &e.old, &e.new)
                    .map_err(|e| Failure::input(e.to_string()))?,
                None => None,
            };
            match placed {
                Some(new) => {
                    touched.insert(e.path.clone(), new);
                }
                None if k == 0 => {
                    anchored = false;
                    break;
                }
                None => {}
            }
        }
        if !anchored {
            continue;
        }
        for ins in &d.inserts {
            let f = builtin_function(&unit, d, &ins.function)?;
            let src = text_of(&f.site, &touched, &current).ok_or_else(|| {
                Failure::input(format!(
                    "{}(): {} is not in {}",
                    ins.function,
                    f.site,
                    tree.describe()
                ))
            })?;
            // Already there (a tree that has the function): nothing to add.
            if cparse_has(&src, &ins.function) {
                continue;
            }
            let text = match &ins.guard {
                Some(g) => format!("#ifdef {g}\n{}#endif\n", f.text),
                None => f.text.clone(),
            };
            let new = edit::insert_before(&f.site, &src, &ins.before, &text)
                .map_err(|e| Failure::input(e.to_string()))?;
            touched.insert(f.site.clone(), new);
        }
        if let Some(k) = &d.kunit {
            // A function only the other profile carries (the 2023 rule
            // function; upstream decides inline): not this tree's patch.
            let Some(f) = unit.functions.iter().find(|f| f.name == k.function) else {
                if any_profile_has(&k.function) {
                    continue;
                }
                return Err(Failure::input(format!(
                    "{}: `{}` is no builtin function of any profile",
                    d.file, k.function
                )));
            };
            // The suite tests a function an earlier patch may have added:
            // without it, the tree is not of this patch's shape.
            if !text_of(&f.site, &touched, &current).is_some_and(|t| cparse_has(&t, &k.function)) {
                continue;
            }
            let path = k.path.as_deref().unwrap_or(&f.site);
            let src = text_of(path, &touched, &current).ok_or_else(|| {
                Failure::input(format!("{}: {path} is not in {}", d.file, tree.describe()))
            })?;
            let (config, block) = match k.suite {
                def::Suite::Range => (kunit::CONFIG, kunit::embedded(profile, &cases.range)),
                def::Suite::Rule => (kunit::RULE_CONFIG, kunit::rule_embedded(&cases.rule)),
            };
            if !src.contains(config) {
                touched.insert(path.to_owned(), format!("{src}{block}"));
            }
        }
        for (path, text) in &d.file_appends {
            let src = text_of(path, &touched, &current).ok_or_else(|| {
                Failure::input(format!("{}: {path} is not in {}", d.file, tree.describe()))
            })?;
            if !src.contains(text.trim()) {
                touched.insert(path.clone(), kconfig_append(&src, text));
            }
        }
        for ap in &d.appends {
            let src = text_of(&ap.path, &touched, &current).ok_or_else(|| {
                Failure::input(format!(
                    "{}: {} is not in {}; it holds {}",
                    d.file,
                    ap.path,
                    tree.describe(),
                    ap.within
                ))
            })?;
            if src.contains(ap.text.trim()) {
                continue;
            }
            let new = edit::append_to_struct(&ap.path, &src, &ap.within, &ap.text)
                .map_err(|e| Failure::input(e.to_string()))?;
            touched.insert(ap.path.clone(), new);
        }
        touched.retain(|p, t| {
            tree.file(p) != Some(t.as_str()) || current.get(p).is_some_and(|c| c != t)
        });
        if touched.is_empty() {
            continue;
        }
        let why = match &item.counterexample {
            Some(c) => format!("{} diverges from the model: {}", d.operation, c.why),
            None => format!(
                "{}: {}",
                d.operation,
                item.error.clone().unwrap_or_default()
            ),
        };
        notes.push((d.subject.clone(), why));
        current.extend(touched.clone());
        steps.push(Step {
            def: d.clone(),
            files: touched,
        });
    }
    // A diverging operation that the series targets but no patch could
    // change: the tree's shape is one gmemforge does not know.
    for item in &r.report.items {
        let targeted = defs
            .iter()
            .filter(|d| d.operation == item.operation)
            .collect::<Vec<_>>();
        let fixed = steps
            .iter()
            .any(|s: &Step| s.def.operation == item.operation);
        if item.verdict != Verdict::Conforms && !targeted.is_empty() && !fixed {
            return Err(Failure::input(format!(
                "`{}` does not conform in {}, but no patch of the series finds anything to change there \
                 (looked for the shapes of {}): the tree's shape is not one gmemforge knows",
                item.operation,
                tree.describe(),
                targeted
                    .iter()
                    .map(|d| d.file)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok((steps, notes, omitted))
}

/// Reviews the tree with every step applied (written to a temporary
/// directory); returns what does not conform, in words.
fn review_result(
    tree: &Tree,
    steps: &[Step],
    vectors: &dyn Fn(&str) -> Vec<serde_json::Value>,
    jobs: u64,
    random: u64,
) -> Result<Vec<String>, Failure> {
    let dir = std::env::temp_dir().join(format!("gmemforge-series-result-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut files: BTreeMap<String, String> = series_files()
        .iter()
        .filter_map(|f| tree.file(f).map(|t| ((*f).to_owned(), t.to_owned())))
        .collect();
    for s in steps {
        files.extend(s.files.clone());
    }
    let io = |e: std::io::Error| Failure::input(format!("{}: {e}", dir.display()));
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
    Ok(result?
        .report
        .items
        .iter()
        .filter(|i| i.verdict != Verdict::Conforms)
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
        .collect())
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
    let tree = Tree::open(&src, &series_files()).map_err(|e| Failure::input(e.to_string()))?;
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
    let defs = def::series().map_err(|e| Failure::input(e.to_string()))?;
    let cases = KunitCases {
        range: gmem_checker::kunit::range_cases(&vectors("invalidate")),
        rule: gmem_checker::kunit::rule_cases(&vectors("classify")),
    };
    let (steps, notes, omitted) = place(&tree, &r, &defs, &cases)?;

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
        _ => {
            let files = series_files()
                .iter()
                .filter_map(|f| tree.file(f).map(|t| ((*f).to_owned(), t.to_owned())))
                .collect();
            (
                Base::Files { files },
                FIXED_DATE,
                0,
                format!(
                    "Based on {} (not a git tree: no base-commit).",
                    tree.describe()
                ),
            )
        }
    };
    let id = identity(&args, &src, time, offset)?;
    let mut out_files = Vec::new();
    if steps.is_empty() {
        let mut text = format!(
            "{}: {} — every patch of the series is already there; nothing to write.\n",
            tree.describe(),
            r.detected.profile.name()
        );
        for (s, f) in &omitted {
            text.push_str(&format!("  left out: {s}\n    conforming: {f}\n"));
        }
        crate::output::emit(&text)?;
        return Ok(0);
    }
    // Review the result, so the cover letter says what still differs.
    let after = review_result(&tree, &steps, &vectors, jobs, args.random)?;
    let ws = Workspace::new(&base, &id).map_err(|e| Failure::input(e.to_string()))?;
    let committed = ws
        .commit(&steps, &id)
        .map_err(|e| Failure::input(e.to_string()))?;
    let total = committed.len();
    let last = committed
        .last()
        .map(|c| c.commit)
        .ok_or_else(|| Failure::input("no commits"))?;
    let stat = ws
        .total_stat(last)
        .map_err(|e| Failure::input(e.to_string()))?;
    let summary = format!(
        "This series brings the tree in line with the gmemforge reference model of guest_memfd and \
         its SEV-SNP hooks. Each patch fixes behaviour that the model's differential checker found \
         diverging in this tree; the C it writes is the C that was compiled and checked against \
         the model.\n\nTree: {} ({}, {}).",
        tree.describe(),
        r.detected.profile.name(),
        r.detected.evidence
    );
    let summary = if after.is_empty() {
        format!(
            "{summary}\n\nWith the series applied, gmemforge review finds every covered function conforming."
        )
    } else {
        format!(
            "{summary}\n\nWith the series applied, gmemforge review still finds: {}. This version of gmemforge's series does not write those changes yet.",
            after.join("; ")
        )
    };
    let cover = email::Cover {
        title: "KVM: guest_memfd, x86/mmu: Match the reference model",
        summary: &summary,
        notes: &notes,
        omitted: &omitted,
        base: &base_line,
        stat: &stat,
    };
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
    let listing: String = out_files
        .iter()
        .map(|(name, _)| format!("{}\n", args.out.join(name).display()))
        .collect();
    crate::output::emit(&listing)?;
    if args.build {
        let patches: Vec<kbuild::Patch<'_>> = steps
            .iter()
            .map(|s| kbuild::Patch {
                subject: &s.def.subject,
                files: &s.files,
            })
            .collect();
        return prove_in_kernel(&args, &src, tree.commit().as_deref(), &patches);
    }
    Ok(0)
}

/// `--build` (and `--kunit`): every prefix built by the kernel's own
/// Kbuild; exit 1 when a prefix fails or a suite does not pass. The series
/// written to --out stays as it is either way.
fn prove_in_kernel(
    args: &SeriesArgs,
    src: &TreeSource,
    commit: Option<&str>,
    patches: &[kbuild::Patch<'_>],
) -> Result<u8, Failure> {
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
    if args.kunit && !failed {
        let suites: std::collections::BTreeSet<String> = patches
            .iter()
            .flat_map(|p| p.files.values())
            .flat_map(|t| t.lines())
            .filter_map(|l| l.trim().strip_prefix("config "))
            .filter(|s| s.ends_with("_KUNIT_TEST"))
            .map(|s| s.trim().to_owned())
            .collect();
        say("running the KUnit suites under QEMU (kunit.py)");
        let k = kbuild::run_kunit(&area, &suites, jobs)?;
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
    }
    drop(progress);
    crate::output::emit(&text)?;
    Ok(u8::from(failed))
}

/// `text` (a Kconfig entry, starting with a blank line) added at the end
/// of `src`, but inside a final `endif` block (arch/x86/kvm/Kconfig ends
/// with `endif # VIRTUALIZATION`), where the file's own entries live.
fn kconfig_append(src: &str, text: &str) -> String {
    let body = src.trim_end_matches('\n');
    let last = body.rfind('\n').map_or(0, |i| i + 1);
    if body[last..].starts_with("endif") {
        // Before the blank line that precedes the endif, if any.
        let at = body[..last].trim_end_matches('\n').len() + 1;
        let at = at.min(last);
        format!("{}{text}{}", &src[..at], &src[at..])
    } else {
        format!("{src}{text}")
    }
}

/// The builtin unit's function `name`, which patch `d` writes.
fn builtin_function<'u>(
    unit: &'u unit::Unit,
    d: &series::PatchDef,
    name: &str,
) -> Result<&'u gmem_codegen::template::Function, Failure> {
    unit.functions
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| {
            Failure::input(format!(
                "{}: `{name}` is not a builtin {} function",
                d.file,
                unit.profile.name()
            ))
        })
}

/// Whether some profile's builtin unit defines `name`.
fn any_profile_has(name: &str) -> bool {
    gmem_reference::Profile::ALL
        .iter()
        .any(|p| unit::builtin(*p).is_ok_and(|u| u.functions.iter().any(|f| f.name == name)))
}

/// Whether `src` defines `name` already.
fn cparse_has(src: &str, name: &str) -> bool {
    gmem_codegen::cparse::find(src, name)
        .ok()
        .flatten()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::kconfig_append;

    #[test]
    fn kconfig_entries_go_inside_a_final_endif_block() {
        let entry = "\nconfig NEW\n\tbool\n";
        assert_eq!(
            kconfig_append("if V\n\nconfig A\n\tbool\n\nendif # V\n", entry),
            "if V\n\nconfig A\n\tbool\n\nconfig NEW\n\tbool\n\nendif # V\n"
        );
        assert_eq!(
            kconfig_append("config A\n\tbool\n", entry),
            "config A\n\tbool\n\nconfig NEW\n\tbool\n"
        );
    }
}
