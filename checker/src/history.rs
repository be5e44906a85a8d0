//! Verdicts across versions of a tree: the commits of a range, a list of
//! trees (a distribution's package versions), or the patches of a posted
//! series applied one by one — and where each verdict changed.
//!
//! Most versions do not change what review reads, so each operation's
//! verdict is cached by content: the text review compiles for it (its
//! functions, the static callees gcc asked for, its tables), the shape
//! detection chose (profile, shim switches), the shim, the model and the
//! cases it runs. A version whose compiled text is the same as one already
//! reviewed costs an extraction and a lookup, not a compile and a run.
//!
//! Two cache files per verdict, both small JSON beside the compile cache
//! (`<cache>/gmemforge/c/verdicts/`), sealed and pruned by its rules
//! (`cache::write_sealed`, `cache::prune_files`), safe to delete:
//!
//! - `l-<key>.json`, keyed by what `extract()` gave (without the callees,
//!   which only a compile finds): the callees `build()` pulled in, so the
//!   whole text can be put together again from the next tree without gcc;
//! - `v-<key>.json`, keyed by that whole text: the item.
//!
//! Both keys hash the text with its comments blanked, `#line` directives
//! dropped and blank lines and trailing blanks removed: a commit that
//! only moves a function or edits a comment reuses its verdict. An item
//! in error (gcc's message names lines) is reused only for the same text
//! to the byte.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use gmem_codegen::cparse;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::cache;
use crate::compile::{self, C_FILES, C_FLAGS, COp, CompileError};
use crate::ops::{OPERATIONS, Operation, Source};
use crate::review::{self, Detected, Layout, NotFound};
use crate::runner::{CheckError, Verdict, not_run, run_item};
use crate::tree::{Tree, TreeSource};

/// What every verdict is reached with besides the tree.
pub struct Run<'a> {
    /// The cases (vectors, the exhaustive bound, seeded random ones).
    pub sources: &'a [Source],
    /// Child processes per operation (not part of the cache key: it
    /// spreads the same cases over more children).
    pub jobs: u64,
    /// The vector files, by operation.
    pub vectors: &'a dyn Fn(&str) -> Vec<Value>,
}

/// One operation's verdict in one tree.
#[derive(Debug, Clone, Serialize)]
pub struct OpVerdict {
    /// The operation.
    pub operation: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// The item as `review --json` has it.
    pub item: Value,
    /// Answered from the verdict cache.
    pub cached: bool,
}

/// The operations asked of one tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeVerdicts {
    /// The tree, in words.
    pub tree: String,
    /// Detection's answer (None: the tree holds no guest_memfd).
    #[serde(skip)]
    pub detected: Option<Detected>,
    /// One per operation asked, in registry order.
    pub items: Vec<OpVerdict>,
}

impl TreeVerdicts {
    /// The verdict of `op`, if it was asked.
    pub fn verdict(&self, op: &str) -> Option<Verdict> {
        self.items
            .iter()
            .find(|i| i.operation == op)
            .map(|i| i.verdict)
    }
}

/// The operation named `name`.
pub fn operation_named(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}

/// Reviews `ops` of `tree`, each from the verdict cache when its compiled
/// text was reviewed before. A tree with no guest_memfd makes every
/// operation `missing`, saying so (a history may start before guest_memfd
/// existed). `Err` only for gmemforge's own failure.
pub fn evaluate(tree: &Tree, ops: &[COp], run: &Run<'_>) -> Result<TreeVerdicts, CheckError> {
    let implementation = tree.describe();
    let wanted = OPERATIONS.iter().filter(|o| ops.contains(&o.cop));
    let Some(d) = review::detect(tree) else {
        let why = format!(
            "{implementation}: no guest_memfd function to review; looked for {}",
            review::LOOKED_FOR
        );
        return Ok(all_missing(implementation, ops, &why));
    };
    let mut items = Vec::new();
    for op in wanted {
        items.push(one(tree, op, &d, run)?);
    }
    Ok(TreeVerdicts {
        tree: implementation,
        detected: Some(d),
        items,
    })
}

/// Every operation of `ops` missing, for `why`.
fn all_missing(tree: String, ops: &[COp], why: &str) -> TreeVerdicts {
    let items = OPERATIONS
        .iter()
        .filter(|o| ops.contains(&o.cop))
        .map(|op| {
            let item = not_run(op, &tree, String::new(), Verdict::Missing, why.to_owned());
            OpVerdict {
                operation: op.name,
                verdict: Verdict::Missing,
                item: serde_json::to_value(&item).unwrap_or(Value::Null),
                cached: false,
            }
        })
        .collect();
    TreeVerdicts {
        tree,
        detected: None,
        items,
    }
}

/// A 128-bit key of `v`, in hex (two differently seeded hashes: the file
/// name is all that tells two verdicts apart).
fn key(v: &impl Hash) -> String {
    let mut a = DefaultHasher::new();
    ("gmemforge verdict a", v).hash(&mut a);
    let mut b = DefaultHasher::new();
    ("gmemforge verdict b", v).hash(&mut b);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// `text` as far as the compiler's answer goes: comments blanked, `#line`
/// directives (where the function sits in its file) dropped, trailing
/// blanks and blank lines removed.
fn normalized(text: &str) -> String {
    cparse::code_only(text)
        .lines()
        .filter(|l| !l.starts_with("#line "))
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The running binary, standing for the model it carries: a rebuilt
/// gmemforge may answer differently, so its verdicts are not reused.
fn model_identity() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::env::current_exe()
            .and_then(std::fs::metadata)
            .and_then(|m| Ok(format!("{} {:?}", m.len(), m.modified()?)))
            // Unknown: this process's verdicts are its own.
            .unwrap_or_else(|_| format!("process {}", std::process::id()))
    })
}

/// The verdict cache's directory.
pub fn verdict_dir() -> PathBuf {
    compile::cache_root().join("verdicts")
}

/// Verdict cache entries kept (each a few KiB).
const MAX_VERDICTS: usize = 4096;

fn is_entry(name: &str) -> bool {
    let hex = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (name.starts_with("l-") || name.starts_with("v-"))
        && name.strip_suffix(".json").is_some_and(|n| hex(&n[2..]))
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&cache::read_sealed(path)?).ok()
}

/// Writes a cache entry. A cache that cannot be written costs the next
/// run a compile, never this run its answer: the error is dropped.
fn write_json(path: &Path, v: &Value) {
    if cache::write_sealed(path, v.to_string().as_bytes()).is_ok()
        && let Some(dir) = path.parent()
    {
        cache::prune_files(dir, path, MAX_VERDICTS, is_entry);
    }
}

/// The operation's verdict: cached, or compiled and run (then cached).
fn one(tree: &Tree, op: &Operation, d: &Detected, run: &Run<'_>) -> Result<OpVerdict, CheckError> {
    let started = Instant::now();
    let implementation = tree.describe();
    let function = review::checked_functions(tree, op.cop, d);
    let fresh = |item: crate::runner::Item, cached: bool| OpVerdict {
        operation: op.name,
        verdict: item.verdict,
        item: serde_json::to_value(&item).unwrap_or(Value::Null),
        cached,
    };
    let ex = match review::extract_for_review(tree, op.cop, d) {
        Err(NotFound::Missing(why)) => {
            return Ok(fresh(
                not_run(op, &implementation, function, Verdict::Missing, why),
                false,
            ));
        }
        Err(NotFound::Parse(why)) => {
            return Ok(fresh(
                not_run(op, &implementation, function, Verdict::Error, why),
                false,
            ));
        }
        Ok(ex) => ex,
    };
    let profile = d.profile_of(op.cop);
    let shape = d
        .shape(op.cop)
        .map(|s| (s.shape, s.profile.name(), s.gmem_file, &s.defines));
    let dir = verdict_dir();
    let layout_file = dir.join(format!(
        "l-{}.json",
        key(&(
            op.name,
            profile.name(),
            shape,
            normalized(&ex.text),
            normalized(&ex.tables),
            &ex.defines,
        ))
    ));
    // Everything the verdict depends on besides the text: the cases and
    // vectors, the shim and its flags, the model.
    let vectors = serde_json::to_string(&(run.vectors)(op.name)).unwrap_or_default();
    let verdict_file = |whole: &str| {
        dir.join(format!(
            "v-{}.json",
            key(&(
                op.name,
                profile.name(),
                shape,
                normalized(whole),
                &ex.defines,
                format!("{:?}", run.sources),
                &vectors,
                C_FILES,
                C_FLAGS,
                model_identity(),
            ))
        ))
    };
    if let Some(l) = read_json(&layout_file) {
        let names = |k: &str| -> Vec<String> {
            l[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let layout = Layout {
            callees: names("callees"),
            for_tables: names("for_tables"),
        };
        if let Some(whole) = review::assemble(tree, op.cop, d, &ex, &layout)
            && let Some(v) = read_json(&verdict_file(&whole))
            && (v["item"]["verdict"] != "error" || v["exact"] == key(&whole))
        {
            let mut item = v["item"].clone();
            item["implementation"] = Value::String(implementation);
            item["function"] = Value::String(function);
            item["seconds"] = json!(started.elapsed().as_secs_f64());
            let verdict = serde_json::from_value(item["verdict"].clone()).unwrap_or(Verdict::Error);
            return Ok(OpVerdict {
                operation: op.name,
                verdict,
                item,
                cached: true,
            });
        }
    }
    let name = format!("{implementation} {}", op.name);
    let mut layout = Layout::default();
    let mut whole = String::new();
    let (item, keep) = match review::build(tree, op.cop, d, &name, &ex, &mut layout, &mut whole) {
        Ok(lib) => {
            let item = run_item(
                op,
                &implementation,
                function,
                &lib,
                profile,
                run.sources,
                run.jobs,
                run.vectors,
            );
            // A hang may be the machine's load, a lost child ours: run
            // again next time rather than remember it.
            let keep = item.counterexample.as_ref().is_none_or(|c| {
                !c.why.starts_with("the C hung") && !c.why.starts_with("the checker's child")
            });
            (item, keep)
        }
        Err(e @ CompileError::Load(_)) => return Err(CheckError::Internal(e.to_string())),
        Err(e @ CompileError::Rejected { .. }) => (
            not_run(op, &implementation, function, Verdict::Error, e.to_string()),
            true,
        ),
        // No compiler, a cache that cannot be written: about this machine,
        // not the tree.
        Err(e) => (
            not_run(op, &implementation, function, Verdict::Error, e.to_string()),
            false,
        ),
    };
    let mut item = item;
    review::note_unchecked(&mut item, d, op.cop, ex.stand_in.clone());
    let out = fresh(item, false);
    if keep {
        write_json(
            &layout_file,
            &json!({ "callees": layout.callees, "for_tables": layout.for_tables }),
        );
        write_json(
            &verdict_file(&whole),
            &json!({ "exact": key(&whole), "item": out.item }),
        );
    }
    Ok(out)
}

/// Where the content of a tree's review files is the same, so is every
/// verdict: versions are told apart by this.
fn content_key(tree: &Tree) -> String {
    key(&review::FILES
        .iter()
        .map(|f| (f, tree.file(f)))
        .collect::<Vec<_>>())
}

/// One version in a history.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// How the output names it: a commit's sha12, a tree's file name,
    /// `patch 2/5`.
    pub label: String,
    /// A commit's or patch's subject, or the tree in words.
    pub subject: String,
    /// The full sha of a commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Per operation, its verdict here.
    pub verdicts: Map<String, Value>,
    /// The items, as `review --json` has them.
    pub items: Vec<Value>,
}

/// A verdict that changed from a version's parent to the version.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The operation.
    pub operation: &'static str,
    /// Its verdict in the parent.
    pub from: Verdict,
    /// Its verdict here.
    pub to: Verdict,
    /// The version's index in `points`.
    pub at: usize,
    /// The version's label and subject.
    pub label: String,
    /// The version's subject.
    pub subject: String,
    /// The item here (the counterexample when it diverges, the error when
    /// in error).
    pub item: Value,
}

/// A whole history.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// What was walked, in words.
    pub what: String,
    /// The last version's verdict, as `review` sums it: the worst of its
    /// items (diverges, then error, then missing).
    pub verdict: Verdict,
    /// Every reviewed version, the starting one first.
    pub points: Vec<Point>,
    /// Every change, by operation (registry order), then by version.
    pub changes: Vec<Change>,
    /// Why the walk stopped early (a patch that does not apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Trees whose verdicts were worked out (distinct contents).
    pub reviewed: u64,
    /// Verdicts answered from the verdict cache.
    pub cached: u64,
    /// Times the C compiler ran.
    pub compiles: u64,
    /// Wall time.
    pub seconds: f64,
}

/// How a version is reached: where to open it, where to open its parent.
pub struct Version {
    /// Its label.
    pub label: String,
    /// Its subject.
    pub subject: String,
    /// The full sha of a commit.
    pub commit: Option<String>,
    /// The tree.
    pub source: TreeSource,
    /// Its parent: None for the starting version; `Previous` the version
    /// before it in the list; `Source` another tree (a commit's first
    /// parent that is not in the list).
    pub parent: Parent,
}

/// A version's parent.
pub enum Parent {
    /// None: the version verdicts start from.
    Start,
    /// The version before it in the list.
    Previous,
    /// Another tree (a commit's first parent).
    Source(TreeSource),
}

/// Why a history could not be made.
#[derive(Debug)]
pub enum HistoryError {
    /// Bad input: the message names it (exit 2).
    BadInput(String),
    /// gmemforge's own failure (exit 3).
    Internal(String),
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryError::BadInput(m) | HistoryError::Internal(m) => f.write_str(m),
        }
    }
}

impl From<CheckError> for HistoryError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::BadInput(m) => HistoryError::BadInput(m),
            CheckError::Internal(m) => HistoryError::Internal(m),
        }
    }
}

/// Reviews every version (each distinct content once) and names, per
/// operation, the versions whose verdict differs from their parent's.
/// `progress` hears which version is being reviewed.
pub fn walk(
    what: String,
    versions: &[Version],
    stopped: Option<String>,
    run: &Run<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<History, HistoryError> {
    let started = Instant::now();
    let compiles = compile::compiles();
    let all: Vec<COp> = OPERATIONS.iter().map(|o| o.cop).collect();
    let mut done: HashMap<String, TreeVerdicts> = HashMap::new();
    let mut cached = 0;
    let mut verdicts_of = |src: &TreeSource,
                           done: &mut HashMap<String, TreeVerdicts>|
     -> Result<String, HistoryError> {
        let tree = match (Tree::open(src, review::FILES), src) {
            (Ok(t), _) => t,
            // A commit of the range (or a patched one) that is no kernel
            // tree is a version with nothing to review, not bad input:
            // the user named the range, not each commit.
            (Err(e), TreeSource::Git { rev, .. }) => {
                let k = key(&e.0);
                done.entry(k.clone())
                    .or_insert_with(|| all_missing(rev.clone(), &all, &e.0));
                return Ok(k);
            }
            (Err(e), _) => return Err(HistoryError::BadInput(e.0)),
        };
        let k = content_key(&tree);
        if !done.contains_key(&k) {
            let v = evaluate(&tree, &all, run)?;
            cached += v.items.iter().filter(|i| i.cached).count() as u64;
            done.insert(k.clone(), v);
        }
        Ok(k)
    };
    let mut points = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut parents: Vec<Option<String>> = Vec::new();
    for (n, v) in versions.iter().enumerate() {
        progress(&format!(
            "[{}/{}] {} {}",
            n + 1,
            versions.len(),
            v.label,
            v.subject
        ));
        let k = verdicts_of(&v.source, &mut done)?;
        let parent = match &v.parent {
            Parent::Start => None,
            Parent::Previous => keys.last().cloned(),
            Parent::Source(src) => Some(verdicts_of(src, &mut done)?),
        };
        let tv = &done[&k];
        points.push(Point {
            label: v.label.clone(),
            subject: v.subject.clone(),
            commit: v.commit.clone(),
            verdicts: tv
                .items
                .iter()
                .map(|i| (i.operation.to_owned(), json!(i.verdict)))
                .collect(),
            items: tv.items.iter().map(|i| i.item.clone()).collect(),
        });
        keys.push(k);
        parents.push(parent);
    }
    let mut changes = Vec::new();
    for op in OPERATIONS {
        for (at, (k, parent)) in keys.iter().zip(&parents).enumerate() {
            let Some(parent) = parent else { continue };
            let (Some(to), Some(from)) = (done[k].verdict(op.name), done[parent].verdict(op.name))
            else {
                continue;
            };
            if to != from {
                let item = done[k]
                    .items
                    .iter()
                    .find(|i| i.operation == op.name)
                    .map(|i| i.item.clone())
                    .unwrap_or(Value::Null);
                changes.push(Change {
                    operation: op.name,
                    from,
                    to,
                    at,
                    label: points[at].label.clone(),
                    subject: points[at].subject.clone(),
                    item,
                });
            }
        }
    }
    let last = keys.last().map(|k| &done[k].items);
    let any = |v: Verdict| last.is_some_and(|items| items.iter().any(|i| i.verdict == v));
    let verdict = [Verdict::Diverges, Verdict::Error, Verdict::Missing]
        .into_iter()
        .find(|v| any(*v))
        .unwrap_or(Verdict::Conforms);
    Ok(History {
        what,
        verdict,
        points,
        changes,
        stopped,
        reviewed: done.len() as u64,
        cached,
        compiles: compile::compiles() - compiles,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `A..B` split into its ends (`A..` is `A..HEAD`).
fn range_ends<'r>(range: &'r str, repo: &Path) -> Result<(&'r str, &'r str), HistoryError> {
    let bad = |why: &str| {
        HistoryError::BadInput(format!(
            "--rev {range} for {}: {why}; give a range A..B (the commits after A up to B)",
            repo.display()
        ))
    };
    if range.contains("...") {
        return Err(bad("a symmetric difference (A...B) has no order"));
    }
    let (a, b) = range.split_once("..").ok_or_else(|| bad("not a range"))?;
    if a.is_empty() {
        return Err(bad("no start"));
    }
    Ok((a, if b.is_empty() { "HEAD" } else { b }))
}

fn short(oid: git2::Oid) -> String {
    oid.to_string().chars().take(12).collect()
}

/// The ids of `paths` in a commit (None where absent).
fn ids_at<'p>(
    commit: &git2::Commit<'_>,
    paths: impl IntoIterator<Item = &'p &'p str>,
) -> Vec<Option<git2::Oid>> {
    let tree = commit.tree().ok();
    paths
        .into_iter()
        .map(|f| {
            tree.as_ref()
                .and_then(|t| t.get_path(Path::new(f)).ok())
                .map(|e| e.id())
        })
        .collect()
}

/// The directories holding every file review reads, and the top-level
/// Makefile: where they are the same, so are those files.
const DIRS: [&str; 3] = ["virt/kvm", "arch/x86/kvm", "Makefile"];

/// The blobs of review's files in a commit (None where absent), and of
/// the top-level Makefile (without one, the commit is no kernel tree):
/// two commits with the same ones have the same verdicts.
fn files_of(commit: &git2::Commit<'_>) -> Vec<Option<git2::Oid>> {
    ids_at(commit, review::FILES.iter().chain(&["Makefile"]))
}

/// The versions of `A..B` in `repo`: A (where verdicts start), then the
/// commits after it up to B that change a file review reads (as
/// `git log --topo-order --reverse A..B -- FILES`), each compared with its
/// first parent. The repository is only read.
pub fn commits(repo_path: &Path, range: &str) -> Result<(String, Vec<Version>), HistoryError> {
    let (a, b) = range_ends(range, repo_path)?;
    let shown = repo_path.display();
    let repo = git2::Repository::open(repo_path).map_err(|e| {
        HistoryError::BadInput(format!(
            "--tree {shown}: --rev {range} needs a git repository ({})",
            e.message()
        ))
    })?;
    let commit = |rev: &str| {
        repo.revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| {
                HistoryError::BadInput(format!(
                    "--rev {range} in {shown}: {rev}: no such commit ({})",
                    e.message()
                ))
            })
    };
    let (start, end) = (commit(a)?, commit(b)?);
    let internal =
        |e: git2::Error| HistoryError::Internal(format!("{shown}: git: {}", e.message()));
    let mut walk = repo.revwalk().map_err(internal)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .map_err(internal)?;
    walk.push(end.id()).map_err(internal)?;
    walk.hide(start.id()).map_err(internal)?;
    let git = |oid: git2::Oid| TreeSource::Git {
        repo: repo_path.to_path_buf(),
        rev: oid.to_string(),
    };
    let subject = |c: &git2::Commit<'_>| c.summary().unwrap_or("").to_owned();
    let mut versions = vec![Version {
        label: short(start.id()),
        subject: subject(&start),
        commit: Some(start.id().to_string()),
        source: git(start.id()),
        parent: Parent::Start,
    }];
    let mut count = 0;
    for oid in walk {
        let c = repo.find_commit(oid.map_err(internal)?).map_err(internal)?;
        count += 1;
        let parent = c.parent(0).ok();
        // Most commits of a kernel range touch neither directory: two
        // tree ids settle them without walking down to each file.
        if parent
            .as_ref()
            .is_some_and(|p| ids_at(p, &DIRS) == ids_at(&c, &DIRS) || files_of(p) == files_of(&c))
        {
            continue;
        }
        versions.push(Version {
            label: short(c.id()),
            subject: subject(&c),
            commit: Some(c.id().to_string()),
            source: git(c.id()),
            parent: match parent {
                Some(p) => Parent::Source(git(p.id())),
                None => Parent::Start,
            },
        });
    }
    let what = format!(
        "{shown} {range}: {count} commits, {} of them change the files review reads",
        versions.len() - 1
    );
    Ok((what, versions))
}

/// `name`'s parts, numbers as numbers, for ordering versions:
/// linux-source-6.9 before linux-source-6.12.
fn natural(name: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

/// The versions of a list of trees, in the order given; a directory that
/// is not a kernel tree but holds tarballs stands for them, in version
/// order.
pub fn trees(paths: &[PathBuf]) -> Result<(String, Vec<Version>), HistoryError> {
    let mut list: Vec<PathBuf> = Vec::new();
    for p in paths {
        let kernel = p.join("virt").is_dir() || p.join("arch").is_dir() || p.join(".git").exists();
        if p.is_dir() && !kernel && git2::Repository::open(p).is_err() {
            let entries = std::fs::read_dir(p)
                .map_err(|e| HistoryError::BadInput(format!("--tree {}: {e}", p.display())))?;
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    let n = f.file_name().unwrap_or_default().to_string_lossy();
                    [".tar.xz", ".txz", ".tar"].iter().any(|s| n.ends_with(s))
                })
                .collect();
            if found.is_empty() {
                return Err(HistoryError::BadInput(format!(
                    "--tree {}: not a kernel tree, and holds no .tar.xz/.txz/.tar tarballs",
                    p.display()
                )));
            }
            found.sort_by_key(|f| natural(&f.file_name().unwrap_or_default().to_string_lossy()));
            list.extend(found);
        } else {
            list.push(p.clone());
        }
    }
    if list.len() < 2 {
        return Err(HistoryError::BadInput(format!(
            "--tree {}: a history needs two trees or more (or one repository with --rev A..B)",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" --tree ")
        )));
    }
    let mut versions = Vec::new();
    for (n, p) in list.iter().enumerate() {
        let source = TreeSource::from_arg(p, None).map_err(|e| HistoryError::BadInput(e.0))?;
        // A repository named here must be a kernel tree at its HEAD (a
        // commit of a range need not be: see `walk`). Checked now, cheaply:
        // no file is read.
        if matches!(source, TreeSource::Git { .. }) {
            Tree::open(&source, &[]).map_err(|e| HistoryError::BadInput(e.0))?;
        }
        versions.push(Version {
            label: p.file_name().map_or_else(
                || p.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            ),
            subject: p.display().to_string(),
            commit: None,
            source,
            parent: if n == 0 {
                Parent::Start
            } else {
                Parent::Previous
            },
        });
    }
    Ok((format!("{} trees", versions.len()), versions))
}

/// One patch of an mbox, as `git format-patch` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxPatch {
    /// `n/m` from `[PATCH n/m]` (or its place in the file).
    pub number: String,
    /// The subject without its `[PATCH ...]` prefix.
    pub subject: String,
    /// The diff: from its first `diff --git` line up to the signature.
    pub diff: String,
}

/// The patches of an mbox: messages start at `From <40 hex> ` lines (a
/// single message without one is one patch); a message with no diff is
/// skipped (a cover letter).
pub fn parse_mbox(text: &str) -> Vec<MboxPatch> {
    let starts_message = |l: &str| {
        l.strip_prefix("From ").is_some_and(|r| {
            r.len() > 41
                && r.as_bytes()[40] == b' '
                && r[..40].bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    let mut messages: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.split_inclusive('\n') {
        if starts_message(line) && !messages.last().is_some_and(Vec::is_empty) {
            messages.push(Vec::new());
        }
        if let Some(m) = messages.last_mut() {
            m.push(line);
        }
    }
    let mut out: Vec<MboxPatch> = Vec::new();
    for m in &messages {
        // Headers end at the first empty line; a folded header goes on
        // with lines that start with a blank.
        let mut subject: Option<String> = None;
        let mut in_subject = false;
        for l in m.iter().take_while(|l| !l.trim_end().is_empty()) {
            if let Some(s) = l.strip_prefix("Subject:") {
                subject = Some(s.trim().to_owned());
                in_subject = true;
            } else if in_subject && l.starts_with([' ', '\t']) {
                if let Some(s) = subject.as_mut() {
                    s.push(' ');
                    s.push_str(l.trim());
                }
            } else {
                in_subject = false;
            }
        }
        let body: String = m.concat();
        let Some(at) = body.find("\ndiff --git ").map(|a| a + 1) else {
            continue;
        };
        let mut diff = &body[at..];
        // format-patch's signature: "-- " and the version, last in the message.
        if let Some(sig) = diff.rfind("\n-- \n") {
            diff = &diff[..=sig];
        }
        let subject = subject.unwrap_or_default();
        let (number, subject) = match subject.strip_prefix('[').and_then(|s| s.split_once(']')) {
            Some((tag, rest)) => (
                tag.split_whitespace()
                    .find(|w| w.contains('/'))
                    .map(str::to_owned),
                rest.trim().to_owned(),
            ),
            None => (None, subject),
        };
        out.push(MboxPatch {
            number: number.unwrap_or_default(),
            subject,
            diff: diff.to_owned(),
        });
    }
    let total = out.len();
    for (n, p) in out.iter_mut().enumerate() {
        if p.number.is_empty() {
            p.number = format!("{}/{total}", n + 1);
        }
    }
    out
}

/// The private repository a posted series is applied in: a temporary
/// bare repository that borrows the user's objects through
/// `objects/info/alternates` (read-only), so nothing is written to the
/// user's repository; removed when dropped. Named as `series`' are
/// (`gmemforge-series-<pid>-<hex>`), so the CLI's signal handling and
/// stale-directory sweep cover it too.
pub struct Scratch {
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The versions of a series posted as an mbox, applied one by one on
/// `rev` of `repo`: the base first, then each patch compared with the one
/// before. A patch that does not apply ends the list, named in the
/// returned reason.
#[allow(clippy::type_complexity)] // the versions, why they stop, and what keeps them readable
pub fn series(
    repo_path: &Path,
    rev: &str,
    mbox: &Path,
) -> Result<(String, Vec<Version>, Option<String>, Scratch), HistoryError> {
    let shown = repo_path.display();
    let text = std::fs::read(mbox)
        .map_err(|e| HistoryError::BadInput(format!("--am {}: {e}", mbox.display())))?;
    let patches = parse_mbox(&String::from_utf8_lossy(&text));
    if patches.is_empty() {
        return Err(HistoryError::BadInput(format!(
            "--am {}: no patch in it (expected an mbox as git format-patch writes it, \
             with `diff --git` sections)",
            mbox.display()
        )));
    }
    let user = git2::Repository::open(repo_path).map_err(|e| {
        HistoryError::BadInput(format!(
            "--tree {shown}: --am needs a git repository ({})",
            e.message()
        ))
    })?;
    let base = user
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            HistoryError::BadInput(format!(
                "--rev {rev} in {shown}: no such commit ({})",
                e.message()
            ))
        })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let scratch = Scratch {
        dir: std::env::temp_dir()
            .join(format!("gmemforge-series-{}-{nanos:x}", std::process::id())),
    };
    let internal = |e: git2::Error| HistoryError::Internal(format!("--am: git: {}", e.message()));
    let private = git2::Repository::init_bare(&scratch.dir).map_err(internal)?;
    // On disk, so every later open of the private repository (each
    // version is read through TreeSource::Git) borrows the objects too.
    let objects = user.path().join("objects");
    let alternates = scratch.dir.join("objects/info/alternates");
    std::fs::create_dir_all(scratch.dir.join("objects/info"))
        .and_then(|()| std::fs::write(&alternates, format!("{}\n", objects.display())))
        .map_err(|e| HistoryError::Internal(format!("{}: {e}", alternates.display())))?;
    let private = {
        drop(private);
        git2::Repository::open_bare(&scratch.dir).map_err(internal)?
    };
    let sig = git2::Signature::new("gmemforge", "gmemforge@localhost", &git2::Time::new(0, 0))
        .map_err(internal)?;
    let mut versions = vec![Version {
        label: short(base.id()),
        subject: base.summary().unwrap_or("").to_owned(),
        commit: Some(base.id().to_string()),
        source: TreeSource::Git {
            repo: repo_path.to_path_buf(),
            rev: base.id().to_string(),
        },
        parent: Parent::Start,
    }];
    let mut parent = private.find_commit(base.id()).map_err(internal)?;
    let mut stopped = None;
    for p in &patches {
        let applied = git2::Diff::from_buffer(p.diff.as_bytes()).and_then(|diff| {
            let tree = parent.tree()?;
            let mut index = private.apply_to_tree(&tree, &diff, None)?;
            let oid = index.write_tree_to(&private)?;
            let tree = private.find_tree(oid)?;
            let message = format!("{}\n", p.subject);
            let c = private.commit(None, &sig, &sig, &message, &tree, &[&parent])?;
            private.find_commit(c)
        });
        match applied {
            Ok(c) => {
                versions.push(Version {
                    label: format!("patch {}", p.number),
                    subject: p.subject.clone(),
                    commit: None,
                    source: TreeSource::Git {
                        repo: scratch.dir.clone(),
                        rev: c.id().to_string(),
                    },
                    parent: Parent::Previous,
                });
                parent = c;
            }
            Err(e) => {
                stopped = Some(format!(
                    "patch {} \"{}\" does not apply on top of {}: {}",
                    p.number,
                    p.subject,
                    versions.last().map_or(String::new(), |v| v.label.clone()),
                    e.message()
                ));
                break;
            }
        }
    }
    let what = format!(
        "{} on {shown} at {} ({rev}): {} patches",
        mbox.display(),
        short(base.id()),
        patches.len()
    );
    Ok((what, versions, stopped, scratch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mbox_gives_each_patch_its_number_subject_and_diff() {
        let mbox = "From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
                    From: A <a@b>\n\
                    Subject: [PATCH v2 0/2] KVM: the cover\n\n\
                    The cover letter.\n\
                    From 1123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
                    From: A <a@b>\n\
                    Subject: [PATCH v2 1/2] KVM: guest_memfd: a long subject\n folded\n\n\
                    Body.\n---\n a | 1 +\n\n\
                    diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n-- \n2.47.0\n\n\
                    From 2123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
                    Subject: [PATCH] KVM: plain\n\n\
                    diff --git a/b b/b\n--- a/b\n+++ b/b\n@@ -1 +1 @@\n-x\n+y\n";
        let p = parse_mbox(mbox);
        assert_eq!(p.len(), 2, "the cover letter has no diff: {p:?}");
        assert_eq!(p[0].number, "1/2");
        assert_eq!(p[0].subject, "KVM: guest_memfd: a long subject folded");
        assert_eq!(
            p[0].diff,
            "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n"
        );
        // No number in its tag: its place.
        assert_eq!(p[1].number, "2/2");
        assert_eq!(p[1].subject, "KVM: plain");
    }

    #[test]
    fn every_file_review_reads_lies_under_the_directories_compared_first() {
        for f in review::FILES {
            assert!(
                DIRS.iter().any(|d| f.starts_with(&format!("{d}/"))),
                "{f}: a commit changing only it would be skipped"
            );
        }
    }

    #[test]
    fn versions_sort_by_their_numbers() {
        let mut v = [
            "linux-source-6.12.tar.xz",
            "linux-source-6.9.tar.xz",
            "linux-source-6.1.tar.xz",
        ];
        v.sort_by_key(|n| natural(n));
        assert_eq!(
            v,
            [
                "linux-source-6.1.tar.xz",
                "linux-source-6.9.tar.xz",
                "linux-source-6.12.tar.xz"
            ]
        );
    }

    #[test]
    fn comments_and_line_directives_do_not_change_the_key() {
        let a = "#line 10 \"virt/kvm/guest_memfd.c\"\nint f(void)\n{\n\treturn 1; /* one */\n}\n";
        let b = "#line 42 \"virt/kvm/guest_memfd.c\"\nint f(void)\n{\n\n\treturn 1;   \n}\n";
        assert_eq!(normalized(a), normalized(b));
        let c = a.replace("return 1", "return 2");
        assert_ne!(normalized(a), normalized(&c));
        assert!(is_entry(&format!("v-{}.json", key(&1))));
        assert!(!is_entry("v-xyz.json") && !is_entry("impl.so"));
    }
}
