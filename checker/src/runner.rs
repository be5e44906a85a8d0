//! `check`: every operation of every implementation, against the model.
//!
//! For each implementation (the builtin unit of each profile, or a named
//! mutant) the C is compiled and loaded; each operation whose kernel
//! functions the unit defines runs its sources (vectors, the exhaustive
//! bound when asked, seeded random) in sharded child processes; shard
//! results merge into one item per operation.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::{COp, CSource, CompileError, load};
use crate::isolate::{Abnormal, NOT_STARTED, run_sharded};
use crate::library::Library;
use crate::ops::{Counterexample, Ctx, OPERATIONS, Operation, Outcome, Source};
use crate::progress::Event;
use gmem_codegen::unit::{self, Unit};
use gmem_reference::Profile;

/// An item's verdict (README "Exit status" and `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// C and model agree on every vector.
    Conforms,
    /// A counterexample was found (or the C crashed or hung).
    Diverges,
    /// The implementation does not define the functions.
    Missing,
    /// The C did not compile or load.
    Error,
}

/// One operation of one implementation.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Kernel functions under test, comma-separated.
    pub function: String,
    /// The operation.
    pub operation: &'static str,
    /// The implementation (`builtin:upstream`, `mutant:no-pgoff`, ...).
    pub implementation: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Vectors run through C and model.
    pub vectors: u64,
    /// Cases the C side cannot express.
    pub model_only: u64,
    /// Cases of another profile's configuration, not run (`Outcome`).
    #[serde(default)]
    pub other_profile: u64,
    /// Minimal counterexample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// For a divergence: the operation and the kind of difference
    /// (`bind:returned-model`), the same for the same bug in any tree, so
    /// findings across trees can be matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence_id: Option<String>,
    /// Why the item is missing or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the verdict does not cover, in words: a part of the tree's
    /// shape the model does not cover yet, or a hook registered outside
    /// the tree (review's partial trees). Never silent, never claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `conforms` iff every item conforms (missing items in a builtin unit
    /// count against it).
    pub verdict: Verdict,
    /// Items.
    pub items: Vec<Item>,
    /// Vectors run in all.
    pub vectors: u64,
    /// Wall time.
    pub seconds: f64,
    /// Throughput of the differential path.
    pub vectors_per_second: f64,
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The vector files, by operation name (`load_vectors`, or the
    /// CLI's checked and built-in ones).
    pub vectors: Vec<(String, Vec<Value>)>,
    /// Run the exhaustive bound.
    pub exhaustive: bool,
    /// Seeded random cases per operation.
    pub random: u64,
    /// Seed.
    pub seed: u64,
    /// Implementations: `builtin` (both profiles) or `mutant:NAME`.
    pub implementations: Vec<String>,
    /// Child processes per operation.
    pub jobs: u64,
}

/// Why a check cannot run at all.
#[derive(Debug)]
pub enum CheckError {
    /// Bad input (a vector file, an implementation name): exit 2.
    BadInput(String),
    /// gmemforge's own part failed (its compiled object does not load
    /// even after a rebuild): never a verdict about the C under test.
    Internal(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::BadInput(m) | CheckError::Internal(m) => f.write_str(m),
        }
    }
}

/// Reads every vector file of `dir`; a malformed one is bad input.
pub fn load_vectors(dir: &Path) -> Result<Vec<(String, Vec<Value>)>, CheckError> {
    let mut out = Vec::new();
    for op in OPERATIONS {
        let path = dir.join(format!("{}.json", op.name));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CheckError::BadInput(format!("{}: {e}", path.display()))),
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| CheckError::BadInput(format!("{}: not JSON: {e}", path.display())))?;
        let list = v["vectors"].as_array().ok_or_else(|| {
            CheckError::BadInput(format!("{}: no `vectors` list", path.display()))
        })?;
        out.push((op.name.to_owned(), list.clone()));
    }
    if out.is_empty() {
        return Err(CheckError::BadInput(format!(
            "{}: no vector files (<operation>.json) found",
            dir.display()
        )));
    }
    Ok(out)
}

/// Resolves implementation names to units.
pub fn units(names: &[String]) -> Result<Vec<Unit>, CheckError> {
    let mut out = Vec::new();
    for n in names {
        if n == "builtin" {
            for p in Profile::ALL {
                out.push(unit::builtin(p).map_err(|e| CheckError::BadInput(e.to_string()))?);
            }
        } else if let Some(m) = n.strip_prefix("mutant:") {
            out.push(
                unit::mutant(m).map_err(|e| CheckError::BadInput(format!("--impl {n}: {e}")))?,
            );
        } else {
            return Err(CheckError::BadInput(format!(
                "--impl {n}: expected builtin or mutant:NAME (mutants: {})",
                unit::mutant_names().join(", ")
            )));
        }
    }
    Ok(out)
}

fn merge(into: &mut Outcome, o: Outcome) {
    into.vectors += o.vectors;
    into.model_only += o.model_only;
    into.other_profile += o.other_profile;
    if into.counterexample.is_none() {
        into.counterexample = o.counterexample;
    }
}

/// A signal, as a reviewer knows it.
fn signal_name(signal: i32) -> String {
    let what = match signal {
        libc::SIGSEGV => "SIGSEGV (a bad memory access)",
        libc::SIGBUS => "SIGBUS (a bad memory access)",
        libc::SIGILL => "SIGILL (BUG(): the kernel's ud2, or an invalid instruction)",
        libc::SIGABRT => "SIGABRT (abort)",
        libc::SIGFPE => "SIGFPE (division by zero)",
        // The filter's arch check kills a call made through another ABI
        // (int 0x80) outright, with no handler to name it.
        libc::SIGSYS => "SIGSYS (a system call a confined child may not make)",
        libc::SIGXCPU => "SIGXCPU (the child's CPU time limit)",
        libc::SIGXFSZ => "SIGXFSZ (a confined child may not write files)",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal}, {what}")
}

fn abnormal_counterexample(
    op: &Operation,
    source: Source,
    profile: Profile,
    lib: &Library,
    a: &Abnormal,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Counterexample {
    let (at, why) = match a {
        Abnormal::Crashed { signal, at } => {
            (*at, format!("the C crashed: {}", signal_name(*signal)))
        }
        Abnormal::Exited { status, at } => (
            *at,
            format!("the C ended the process itself (exit status {status}) instead of returning"),
        ),
        Abnormal::Forbidden { call, at } => (
            *at,
            format!(
                "the C made a system call a confined child may not make: {}; \
                 stopped before it ran",
                call.describe()
            ),
        ),
        Abnormal::Panicked(m) => (NOT_STARTED, format!("the checker's child panicked: {m}")),
        Abnormal::Hung { at } => (
            *at,
            format!(
                "the C hung (no progress for {}s)",
                crate::isolate::STALL_LIMIT.as_secs()
            ),
        ),
        Abnormal::Lost(m) => (NOT_STARTED, format!("the checker's child was lost: {m}")),
    };
    let input = if at == NOT_STARTED {
        Value::Null
    } else {
        (op.case_json)(source, at, profile, lib, vectors).unwrap_or(Value::Null)
    };
    Counterexample {
        input,
        model: Value::Null,
        c: Value::String(why.clone()),
        why,
        model_why: Vec::new(),
        shrink_steps: 0,
    }
}

/// Runs one operation of one loaded implementation over `sources`.
pub fn run_operation(
    op: &Operation,
    lib: &Library,
    profile: Profile,
    sources: &[Source],
    jobs: u64,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Outcome {
    let mut total = Outcome::default();
    for &source in sources {
        let results = run_sharded(jobs, |shard, progress| {
            let ctx = Ctx {
                lib,
                profile,
                progress,
                vectors,
                shard: (shard, jobs),
            };
            (op.run)(&ctx, source)
        });
        for r in results {
            match r {
                Ok(o) => merge(&mut total, o),
                Err(a) => {
                    if total.counterexample.is_none() {
                        total.counterexample = Some(abnormal_counterexample(
                            op, source, profile, lib, &a, vectors,
                        ));
                    }
                }
            }
        }
        if total.counterexample.is_some() {
            break;
        }
    }
    total
}

/// Which operations a unit implements.
pub fn unit_ops(u: &Unit) -> Vec<COp> {
    COp::ALL
        .into_iter()
        .filter(|c| c.needs(u.profile).iter().all(|f| u.defines(f)))
        .collect()
}

/// Functions the shim otherwise stands in for (or declares), and the `-D`
/// that tells it C under test brings its own: a builtin unit or a tree.
const PROVIDES: &[(&str, &str)] = &[
    ("kvm_mmu_fault_is_private", "GMF_HAVE_FAULT_IS_PRIVATE"),
    ("kvm_tdp_map_page", "GMF_HAVE_TDP_MAP_PAGE"),
    // 6.16+ TDX: classify feeds TD faults through the tree's exit handler.
    ("tdx_handle_ept_violation", "GMF_HAVE_TDX_EPT_VIOLATION"),
    // 7.2's second half of bind: gmf_bind() calls prepare, then commit.
    ("kvm_gmem_commit_memory_region", "GMF_BIND_SPLIT"),
    // Tables, not functions: the adapters register these (the kernel's
    // a_ops and kvm_ops_update()), so hooks are reached through them.
    ("svm_x86_ops", "GMF_HAVE_SVM_X86_OPS"),
    ("kvm_gmem_aops", "GMF_HAVE_GMEM_AOPS"),
];

/// The `-D` for C that defines `function` itself, if the shim cares.
pub fn provides_define(function: &str) -> Option<&'static str> {
    PROVIDES
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, d)| *d)
}

/// `-D` definitions that tell the shim what the unit brings itself.
pub fn unit_defines(u: &Unit) -> Vec<String> {
    PROVIDES
        .iter()
        .filter(|(f, _)| u.defines(f))
        .map(|(_, d)| (*d).to_owned())
        .collect()
}

/// The sources a run uses.
pub fn sources(exhaustive: bool, random: u64, seed: u64) -> Vec<Source> {
    let mut sources = vec![Source::Vectors];
    if exhaustive {
        sources.push(Source::Exhaustive);
    }
    if random > 0 {
        sources.push(Source::Random { seed, n: random });
    }
    sources
}

/// Runs `op` on an already loaded library and makes its item.
#[allow(clippy::too_many_arguments)] // the item's identity plus run_operation's inputs
pub fn run_item(
    op: &Operation,
    implementation: &str,
    function: String,
    lib: &Library,
    profile: Profile,
    sources: &[Source],
    jobs: u64,
    vectors: &dyn Fn(&str) -> Vec<Value>,
) -> Item {
    let t = Instant::now();
    let mut o = run_operation(op, lib, profile, sources, jobs, vectors);
    if let Some(c) = &mut o.counterexample {
        name_errnos(c);
        // Only now, for the one case shown: the model re-runs its
        // decisions to say which rule decided (never per vector).
        c.model_why = (op.explain)(&c.input);
    }
    let divergence_id = o
        .counterexample
        .as_ref()
        .map(|c| divergence_id(op.name, &c.why, &c.model_why));
    Item {
        divergence_id,
        function,
        operation: op.name,
        implementation: implementation.to_owned(),
        verdict: if o.counterexample.is_some() {
            Verdict::Diverges
        } else {
            Verdict::Conforms
        },
        vectors: o.vectors,
        model_only: o.model_only,
        other_profile: o.other_profile,
        counterexample: o.counterexample,
        error: None,
        not_checked: None,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// An item that did not run.
pub fn not_run(
    op: &Operation,
    implementation: &str,
    function: String,
    verdict: Verdict,
    why: String,
) -> Item {
    Item {
        function,
        operation: op.name,
        implementation: implementation.to_owned(),
        verdict,
        vectors: 0,
        model_only: 0,
        other_profile: 0,
        counterexample: None,
        divergence_id: None,
        error: Some(why),
        not_checked: None,
        seconds: 0.0,
    }
}

/// A stable name for a divergence: the operation and the kind of
/// difference (its explanation's first words, numbers and errno names
/// left out), in lower case with dashes.
pub fn divergence_id(operation: &str, why: &str, model_why: &[String]) -> String {
    // Words only: no values, no errnos, so two trees' shrunk inputs that
    // differ in numbers still read the same.
    let words = |text: &str, n: usize| -> String {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .filter(|w| !w.starts_with("-E") && !w.chars().any(|c| c.is_ascii_digit()))
            .map(|w| w.trim_matches('-').to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .take(n)
            .collect::<Vec<_>>()
            .join("-")
    };
    // What differs on the C's side: the start of the first difference.
    let kind = words(why.split([':', ';', ',']).next().unwrap_or(""), 4);
    // The rule that decided on the model's side: its deciding line (the
    // one with `→`), without the function's name, up to its values.
    let decisive = model_why
        .iter()
        .find(|l| l.contains('→'))
        .or(model_why.last())
        .map(String::as_str)
        .unwrap_or("");
    let rule = decisive.split('→').next().unwrap_or("");
    let rule = rule.split_once("(): ").map_or(rule, |(_, r)| r);
    let rule = words(rule.split(':').next().unwrap_or(""), 6);
    if rule.is_empty() {
        format!("{operation}:{kind}")
    } else {
        format!("{operation}:{kind}/{rule}")
    }
}

/// Errnos as people know them: `-22` becomes `-EINVAL` in the
/// explanation, and every `"ret": -22` of the model's and the C's answer
/// gains a `"ret_errno": "-EINVAL"` beside it (the number stays).
pub fn name_errnos(c: &mut Counterexample) {
    use gmem_reference::kernel::errno;
    c.why = c
        .why
        .split_inclusive(|ch: char| ch.is_whitespace() || ch == ',' || ch == ';' || ch == ')')
        .map(|piece| {
            let word = piece.trim_end_matches(|ch: char| {
                ch.is_whitespace() || ch == ',' || ch == ';' || ch == ')'
            });
            match word
                .parse::<i64>()
                .ok()
                .filter(|n| *n < 0)
                .and_then(errno::name)
            {
                Some(name) => format!("{name}{}", &piece[word.len()..]),
                None => piece.to_owned(),
            }
        })
        .collect();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                let name = map
                    .get("ret")
                    .and_then(Value::as_i64)
                    .and_then(gmem_reference::kernel::errno::name);
                if let Some(n) = name {
                    map.insert("ret_errno".into(), Value::String(n));
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(list) => list.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut c.model);
    walk(&mut c.c);
}

/// Sums items into a report.
pub fn report(items: Vec<Item>, started: Instant) -> Report {
    let seconds = started.elapsed().as_secs_f64();
    let vectors: u64 = items.iter().map(|i| i.vectors).sum();
    // The worst of the items, in the order that says most: a divergence
    // is a finding; an operation that did not compile or was not found is
    // unproven, never a divergence.
    let any = |v: Verdict| items.iter().any(|i| i.verdict == v);
    let verdict = [Verdict::Diverges, Verdict::Error, Verdict::Missing]
        .into_iter()
        .find(|v| any(*v))
        .unwrap_or(Verdict::Conforms);
    Report {
        verdict,
        items,
        vectors,
        seconds,
        vectors_per_second: vectors as f64 / seconds.max(1e-9),
    }
}

/// Vector files by operation name, as the operations ask for them.
pub fn vector_lookup(files: &[(String, Vec<Value>)]) -> impl Fn(&str) -> Vec<Value> + '_ {
    move |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// Runs the whole check; `progress` is told how many items the run makes,
/// then when each starts and ends (`progress::Event`).
pub fn check(opts: &Options, progress: &mut dyn FnMut(Event<'_>)) -> Result<Report, CheckError> {
    let vectors = vector_lookup(&opts.vectors);
    let sources = sources(opts.exhaustive, opts.random, opts.seed);
    let started = Instant::now();
    let units = units(&opts.implementations)?;
    // One unit of work per item: every operation of every implementation
    // makes an item (missing and error ones too), so this is the exact
    // count before anything is compiled.
    progress(Event::Total((units.len() * OPERATIONS.len()) as u64));
    let mut items = Vec::new();
    for u in units {
        let ops = unit_ops(&u);
        let text = u.text();
        progress(Event::Step(&format!("compiling {}", u.name)));
        let defines = unit_defines(&u);
        let lib = match load(&CSource {
            name: &u.name,
            profile: u.profile,
            text: &text,
            ops: &ops,
            defines: &defines,
        }) {
            Err(e @ CompileError::Load(_)) => return Err(CheckError::Internal(e.to_string())),
            r => r.map_err(|e| e.to_string()),
        };
        for op in OPERATIONS {
            progress(Event::Start(&format!("{} {}", u.name, op.name)));
            let function = op.cop.needs(u.profile).join(", ");
            let item = if !ops.contains(&op.cop) {
                let why = format!("{} does not define {function}", u.name);
                not_run(op, &u.name, function, Verdict::Missing, why)
            } else {
                match &lib {
                    Ok(lib) => run_item(
                        op, &u.name, function, lib, u.profile, &sources, opts.jobs, &vectors,
                    ),
                    Err(e) => not_run(op, &u.name, function, Verdict::Error, e.clone()),
                }
            };
            progress(Event::Done {
                vectors: item.vectors,
            });
            items.push(item);
        }
    }
    Ok(report(items, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of an event, to look at after the run.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Total(u64),
        Start(String),
        Step,
        Done(u64),
    }

    /// The progress contract (`progress` module): `Total(n)` once and
    /// first, then exactly `n` units, each `Start` then `Done`, never two
    /// open at once; one unit per item; the vectors the events report add
    /// up to the report's. Both builtin units (two compilations, so a
    /// `Step` comes between units too), the shared vectors only, so the run
    /// is short.
    #[test]
    fn errnos_are_named_and_divergences_have_stable_ids() {
        let mut c = Counterexample {
            input: Value::Null,
            model: serde_json::json!({"ret": -22, "binding": null}),
            c: serde_json::json!({"ret": 0}),
            why: "kvm_gmem_bind() returned 0, model -22; slot 3 left set".into(),
            model_why: Vec::new(),
            shrink_steps: 3,
        };
        name_errnos(&mut c);
        assert_eq!(
            c.why,
            "kvm_gmem_bind() returned 0, model -EINVAL; slot 3 left set"
        );
        assert_eq!(c.model["ret_errno"], "-EINVAL");
        assert_eq!(c.model["ret"], -22, "the number stays");
        assert!(c.c.get("ret_errno").is_none(), "0 is no errno");
        let rule = |size: u64| {
            vec![format!(
                "kvm_gmem_bind(): offset + npages * PAGE_SIZE > i_size: 0 + 2 * 4096 = 8192 > {size} → -EINVAL"
            )]
        };
        let a = divergence_id(
            "bind",
            "kvm_gmem_bind() returned 0, model -EINVAL; x",
            &rule(4096),
        );
        let b = divergence_id(
            "bind",
            "kvm_gmem_bind() returned 0, model -EINVAL; y",
            &rule(65536),
        );
        assert_eq!(a, b, "values do not change the id");
        assert_eq!(
            a,
            "bind:kvm_gmem_bind-returned/offset-npages-page_size-i_size"
        );
        let other = divergence_id(
            "bind",
            "kvm_gmem_bind() returned 0, model -EINVAL; x",
            &["kvm_gmem_bind(): offset not page aligned: 12 → -EINVAL".to_owned()],
        );
        assert_ne!(a, other, "another rule, another id");
        assert_eq!(
            divergence_id("bind", "x returned 1", &[]),
            "bind:x-returned"
        );
    }

    #[test]
    fn check_announces_its_total_then_runs_exactly_that_many_units() {
        let opts = Options {
            vectors: load_vectors(Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/vectors"
            )))
            .expect("the repository's vectors"),
            exhaustive: false,
            random: 0,
            seed: 0,
            implementations: vec!["builtin".into()],
            jobs: 1,
        };
        let mut seen = Vec::new();
        let report = check(&opts, &mut |e| {
            seen.push(match e {
                Event::Total(n) => Seen::Total(n),
                Event::Start(what) => Seen::Start(what.to_owned()),
                Event::Step(_) => Seen::Step,
                Event::Done { vectors } => Seen::Done(vectors),
            })
        })
        .expect("check runs");

        let Some(Seen::Total(n)) = seen.first() else {
            panic!("the first event is not Total: {seen:?}");
        };
        let n = *n;
        assert_eq!(
            seen.iter().filter(|e| matches!(e, Seen::Total(_))).count(),
            1,
            "Total more than once: {seen:?}"
        );
        let (mut open, mut starts, mut dones, mut vectors) = (false, 0u64, 0u64, 0u64);
        for e in &seen[1..] {
            match e {
                Seen::Total(_) | Seen::Step => {}
                Seen::Start(what) => {
                    assert!(!open, "{what} starts before the last unit is done");
                    assert!(!what.is_empty());
                    open = true;
                    starts += 1;
                }
                Seen::Done(v) => {
                    assert!(open, "Done without a Start: {seen:?}");
                    open = false;
                    dones += 1;
                    vectors += v;
                }
            }
        }
        assert!(!open, "the last unit never ends");
        assert_eq!(
            (starts, dones),
            (n, n),
            "Total({n}) but {starts} starts, {dones} dones"
        );
        assert_eq!(n, report.items.len() as u64);
        assert_eq!(n, (Profile::ALL.len() * OPERATIONS.len()) as u64);
        assert!(report.vectors > 0);
        assert_eq!(
            vectors, report.vectors,
            "the events' vectors are the report's"
        );
    }
}
