//! `review`: a real kernel tree's functions against the model.
//!
//! detect the profile (which generation of guest_memfd the tree carries) →
//! for each operation, find its functions in the tree with the C parser →
//! compile them *unchanged* against the shim (one object per operation, so
//! one function that does not compile costs only its own verdict; static
//! callees gcc reports as undeclared are pulled in from the same files) →
//! run the shared vectors, the exhaustive bound and seeded random cases →
//! one item per operation, named by its kernel functions.

use std::time::Instant;

use gmem_codegen::cparse;
use gmem_reference::Profile;
use serde::Serialize;
use serde_json::Value;

use crate::compile::{COp, CSource, CompileError, load};
use crate::library::Library;
use crate::ops::{OPERATIONS, Operation, Source};
use crate::progress::Event;
use crate::runner::{
    CheckError, Item, Report, Verdict, not_run, provides_define, report, run_item,
};
use crate::shapes;
use crate::tree::Tree;

/// How one operation is reviewed: where the tree keeps its guest_memfd
/// functions, the profile (model behaviour and shim shapes) chosen from
/// the tree's own signatures and fields, and what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpShape {
    /// The operation, as `check` names it.
    pub operation: &'static str,
    /// The registry entry that decided it (`shapes::SHAPES`); None when
    /// no known shape fits (with `gmem_file` set: the tree has the
    /// operation's function, of a shape review does not know).
    pub shape: Option<&'static str>,
    /// The model profile the operation is compared with.
    #[serde(serialize_with = "profile_name")]
    pub profile: Profile,
    /// The file its guest_memfd functions were found in (None: the
    /// operation has none, or the tree holds none of them).
    pub gmem_file: Option<&'static str>,
    /// Shim shape switches (`-D`) the tree's code needs for this operation.
    pub defines: Vec<&'static str>,
    /// The functions this shape reviews, when they are not the profile's
    /// (`functions_for()`), e.g. 7.2's two halves of bind.
    #[serde(skip)]
    pub functions: Option<&'static [(&'static str, &'static str)]>,
    /// What the model does not cover for this shape yet.
    #[serde(serialize_with = "gap_words", skip_serializing_if = "no_gap")]
    pub gap: shapes::Gap,
    /// What decided it, in words.
    pub evidence: String,
}

/// A generation of guest_memfd, as found in a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// The profile of the tree's guest_memfd invalidation (what `series`
    /// plans by); each operation has its own in `operations`.
    #[serde(serialize_with = "profile_name")]
    pub profile: Profile,
    /// 6.18+: per-file workers (`__kvm_gmem_invalidate_begin(f, ...)`)
    /// under per-inode wrappers.
    pub per_inode: bool,
    /// The generation the guest_memfd file looks like, in words.
    pub evidence: String,
    /// Per operation: profile, file and evidence.
    pub operations: Vec<OpShape>,
}

impl Detected {
    /// The shape chosen for `op`.
    pub fn shape(&self, op: COp) -> Option<&OpShape> {
        let name = operation(op)?.name;
        self.operations.iter().find(|s| s.operation == name)
    }

    /// The profile `op` is reviewed with.
    pub fn profile_of(&self, op: COp) -> Profile {
        self.shape(op).map_or(self.profile, |s| s.profile)
    }
}

fn gap_words<S: serde::Serializer>(g: &shapes::Gap, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(g.words().unwrap_or_default())
}

fn no_gap(g: &shapes::Gap) -> bool {
    *g == shapes::Gap::None
}

fn profile_name<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// Every file review may read.
pub const FILES: &[&str] = &[
    "virt/kvm/guest_memfd.c",
    "virt/kvm/guest_mem.c",
    "virt/kvm/kvm_main.c",
    "arch/x86/kvm/mmu/mmu_internal.h",
    "arch/x86/kvm/mmu/mmu.c",
    "arch/x86/kvm/svm/svm.c",
    "arch/x86/kvm/svm/sev.c",
    "arch/x86/kvm/x86.c",
    "arch/x86/kvm/vmx/tdx.c",
    "arch/x86/kvm/vmx/common.h",
];

/// What detection looks for, for the message when a guest_memfd file holds
/// none of it.
pub const LOOKED_FOR: &str = "kvm_gmem_invalidate_begin(), kvm_gmem_bind() (or 7.2's \
kvm_gmem_prepare_memory_region()), kvm_gmem_punch_hole() or kvm_gmem_get_pfn() defined in virt/kvm/guest_memfd.c (upstream, 6.8+) or virt/kvm/guest_mem.c \
(the 2023 kvm_gmem_solo branch and the gmem series v10–v14 of late-2023 vendor trees)";

/// The files a generation keeps guest_memfd in, newest name first.
const GMEM_FILES: [&str; 2] = ["virt/kvm/guest_memfd.c", "virt/kvm/guest_mem.c"];

/// The guest_memfd functions whose presence makes a tree reviewable.
const GMEM_FUNCTIONS: &[&str] = &[
    "kvm_gmem_invalidate_begin",
    "__kvm_gmem_invalidate_begin",
    "kvm_gmem_bind",
    "kvm_gmem_prepare_memory_region",
    "kvm_gmem_punch_hole",
    "kvm_gmem_get_pfn",
];

/// One guest_memfd file of the tree, for the generation's description:
/// its code with the comments blanked (`cparse::code_only`).
struct GmemFile {
    path: &'static str,
    code: String,
}

/// The generation a guest_memfd file looks like, in words (a description
/// for the user; the contracts come from the shape registry).
fn generation(f: &GmemFile, invalidation: Option<&str>) -> String {
    let what = if invalidation == Some("invalidate-in-place") {
        "with per-inode attributes and `_start` invalidation workers (in-place conversion \
         series shape, 2026)"
    } else if invalidation == Some("invalidate-per-file") {
        "with the per-inode file list (6.18+ shape: per-file invalidation workers)"
    } else if f.path == "virt/kvm/guest_memfd.c" && f.code.contains(".attr_filter") {
        "with slot->gmem.pgoff and attr_filter (upstream 6.12–6.17 shape)"
    } else if f.path == "virt/kvm/guest_memfd.c" {
        "with slot->gmem.pgoff, no attr_filter (upstream 6.8–6.11 shape)"
    } else if f.code.contains("gmem.pgoff") {
        "with slot->gmem.pgoff (gmem series v10–v14 shape: late-2023 TDX and SNP vendor trees \
         and their backports)"
    } else {
        "with slot->gmem.index (2023 kvm_gmem_solo shape)"
    };
    format!("{} {what}", f.path)
}

/// Detects, per operation, where the tree keeps its functions and which
/// contract its code is held to, from the shape registry (`shapes.rs`:
/// every known shape of every operation, identified by what the tree's
/// code holds, with the profile, shim switches, functions and evidence it
/// selects); None when no guest_memfd file holds any guest_memfd function
/// (nothing to review).
///
/// The gmem series v10–v14 (late 2023: Intel's TDX tree, the SEV-SNP host
/// trees, their 6.1/6.5/6.6 backports) needs no profile of its own; by
/// design each of its operations behaves as one of the two (see each
/// shape's evidence): invalidation and bind as upstream, get-pfn as 2023
/// (no prepared-folio state).
pub fn detect(tree: &Tree) -> Option<Detected> {
    with_code(tree, |code| detect_in(tree, code))
}

/// `f` on the tree's code as the shape registry reads it: the guest_memfd
/// files parsed once, other files on demand.
fn with_code<R>(tree: &Tree, f: impl FnOnce(&shapes::Code<'_>) -> R) -> R {
    let sources: Vec<(&'static str, &str)> = GMEM_FILES
        .iter()
        .filter_map(|&path| Some((path, tree.file(path)?)))
        .collect();
    let read = |p: &str| tree.file(p).map(str::to_owned);
    f(&shapes::Code::new(&sources, &read))
}

/// Every registry entry of `op` that the tree's code selects: what the
/// registry test checks (every entry's fixture selects it, and nothing
/// selects two of one operation).
pub fn shapes_selected(tree: &Tree, op: COp) -> Vec<&'static str> {
    with_code(tree, |code| shapes::all_shapes_of(code, op))
}

fn detect_in(tree: &Tree, code: &shapes::Code<'_>) -> Option<Detected> {
    let gmem_path = GMEM_FILES
        .iter()
        .copied()
        .find(|p| GMEM_FUNCTIONS.iter().any(|n| code.file_of(n) == Some(*p)))?;
    let inv = shapes::shape_of(code, COp::Invalidate);
    let per_file = inv
        .as_ref()
        .is_some_and(|(s, _)| s.defines.contains(&"GMF_GMEM_PER_INODE"));
    let gen_path = inv
        .as_ref()
        .and_then(|(s, _)| s.anchor)
        .and_then(|a| code.file_of(a))
        .unwrap_or(gmem_path);
    let gen_file = GmemFile {
        path: gen_path,
        code: cparse::code_only(tree.file(gen_path).unwrap_or_default()),
    };
    let mut evidence = generation(&gen_file, inv.as_ref().map(|(s, _)| s.id));
    let tree_profile = match inv.as_ref().and_then(|(s, _)| s.profile) {
        Some(p) => p,
        None if gen_file.code.contains("gmem.index") => Profile::GmemSolo2023,
        None => Profile::Upstream,
    };
    // Late-2023 SNP host trees add the arch hooks to the gmem series:
    // prepare from the lookup, invalidate from ->free_folio.
    if gen_path == "virt/kvm/guest_mem.c" {
        let mut hooks = Vec::new();
        if gen_file.code.contains("kvm_arch_gmem_prepare(") {
            hooks.push("kvm_arch_gmem_prepare() on the lookup path");
        }
        if code.file_of("kvm_gmem_free_folio") == Some(gen_path) {
            hooks.push("kvm_gmem_free_folio() → kvm_arch_gmem_invalidate()");
        }
        if !hooks.is_empty() {
            evidence.push_str(&format!(
                "; SEV-SNP hooks of late-2023 SNP host trees: {}",
                hooks.join(", ")
            ));
        }
    }
    let mut operations = Vec::new();
    for op in OPERATIONS {
        operations.push(match shapes::shape_of(code, op.cop) {
            Some((s, file)) => {
                let (switched, words) = shapes::switches(code, op.cop, s.anchor);
                let profile = s.profile.unwrap_or(tree_profile);
                let mut why = s.evidence.replace("{file}", &file);
                if !words.is_empty() {
                    why.push_str(&format!("; {}", words.join(", ")));
                }
                if s.profile.is_none() {
                    why.push_str(&format!(
                        " (the tree's guest_memfd profile: {})",
                        profile.name()
                    ));
                }
                let mut defines: Vec<&'static str> = s.defines.to_vec();
                for d in switched {
                    if !defines.contains(&d) {
                        defines.push(d);
                    }
                }
                OpShape {
                    operation: op.name,
                    shape: Some(s.id),
                    profile,
                    gmem_file: s.anchor.and_then(|a| code.file_of(a)),
                    defines,
                    functions: s.functions,
                    gap: s.gap,
                    evidence: why,
                }
            }
            None => {
                let looked: Vec<String> = shapes::SHAPES
                    .iter()
                    .filter(|s| s.ops.contains(&op.cop))
                    .filter_map(|s| s.anchor)
                    .fold(Vec::new(), |mut v, a| {
                        let a = format!("{a}()");
                        if !v.contains(&a) {
                            v.push(a);
                        }
                        v
                    });
                // Present but of no known shape: never a guessed contract.
                let unknown = shapes::SHAPES
                    .iter()
                    .filter(|s| s.ops.contains(&op.cop))
                    .filter_map(|s| s.anchor)
                    .find(|a| code.file_of(a).is_some());
                OpShape {
                    operation: op.name,
                    shape: None,
                    profile: tree_profile,
                    // Present but of no known shape: where it is.
                    gmem_file: unknown.and_then(|a| code.file_of(a)),
                    defines: Vec::new(),
                    functions: None,
                    gap: shapes::Gap::None,
                    evidence: match unknown {
                        Some(a) => format!(
                            "{}: {a}() is of no shape review knows (looked for the shapes of {})",
                            code.file_of(a).unwrap_or_default(),
                            looked.join(", ")
                        ),
                        None if looked.is_empty() => "no x86 MMU files".into(),
                        None => format!("no {}", looked.join(" or ")),
                    },
                }
            }
        });
    }
    // A tree may mix generations (a backport): then say so; each
    // operation's evidence says what decided it.
    if operations.iter().any(|s| s.profile != tree_profile) {
        evidence.push_str("; operations reviewed with different profiles, see each");
    }
    Some(Detected {
        profile: tree_profile,
        per_inode: per_file,
        evidence,
        operations,
    })
}

/// The functions one operation needs from a tree of the detected shape,
/// with each guest_memfd function in the file this tree keeps it in.
pub fn placed(op: COp, d: &Detected) -> Vec<(&'static str, &'static str)> {
    let file = d.shape(op).and_then(|s| s.gmem_file);
    functions_in(op, d)
        .iter()
        .map(|&(p, n)| (in_gmem_file(p, file), n))
        .collect()
}

/// `path`, or the tree's own guest_memfd file when `path` is one.
fn in_gmem_file(path: &'static str, file: Option<&'static str>) -> &'static str {
    match file {
        Some(f) if GMEM_FILES.contains(&path) => f,
        _ => path,
    }
}

/// The tables of `op` (`tables_for()`) in the tree's own files.
pub fn tables_placed(
    op: COp,
    d: &Detected,
) -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    let file = d.shape(op).and_then(|s| s.gmem_file);
    if op == COp::Prepare && has_define(d, op, GMEM_MAX_LEVEL) {
        return vec![("arch/x86/kvm/svm/svm.c", "svm_x86_ops", &["gmem_max_level"])];
    }
    tables_for(op, d.profile_of(op))
        .iter()
        .map(|&(p, t, k)| (in_gmem_file(p, file), t, k))
        .collect()
}

/// sev.c, where the SEV-SNP hooks live.
const SEV_C: &str = "arch/x86/kvm/svm/sev.c";

/// Shim switch: `prepare` asks the RMP level through `.gmem_max_level`
/// (the SNP series v10–v11) instead of `.private_max_mapping_level`.
const GMEM_MAX_LEVEL: &str = "GMF_GMEM_MAX_LEVEL";

/// Whether `op` was detected with the shim switch `define`.
fn has_define(d: &Detected, op: COp, define: &str) -> bool {
    d.shape(op).is_some_and(|s| s.defines.contains(&define))
}

/// The functions one operation needs from a tree of the detected shape
/// (paths as the generation of its profile names them; `placed()` puts
/// them where this tree has them).
pub fn functions_in(op: COp, d: &Detected) -> &'static [(&'static str, &'static str)] {
    if let Some(f) = d.shape(op).and_then(|s| s.functions) {
        return f;
    }
    functions_for(op, d.profile_of(op))
}

/// The functions one operation needs from a tree, callees first.
pub fn functions_for(op: COp, profile: Profile) -> &'static [(&'static str, &'static str)] {
    const SEV: &str = "arch/x86/kvm/svm/sev.c";
    const MMU: &str = "arch/x86/kvm/mmu/mmu.c";
    match (op, profile) {
        (COp::Invalidate, Profile::Upstream) => &[
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_end"),
        ],
        (COp::Invalidate, Profile::GmemSolo2023) => &[
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_end"),
        ],
        (COp::Bind, Profile::Upstream) => &[("virt/kvm/guest_memfd.c", "kvm_gmem_bind")],
        (COp::Bind, Profile::GmemSolo2023) => &[("virt/kvm/guest_mem.c", "kvm_gmem_bind")],
        (COp::Classify, _) => &[
            ("arch/x86/kvm/mmu/mmu_internal.h", "kvm_mmu_do_page_fault"),
            (MMU, "kvm_mmu_page_fault"),
            ("arch/x86/kvm/svm/svm.c", "npf_interception"),
        ],
        // Their static helpers (is_large_rmp_possible() in 6.12, inlined
        // in gmemforge's C) are pulled in as gcc asks for them.
        (COp::Prepare, _) => &[
            (SEV, "sev_gmem_prepare"),
            (SEV, "sev_private_max_mapping_level"),
        ],
        (COp::RmpInvalidate, _) => &[(SEV, "sev_gmem_invalidate")],
        // 6.12's kvm_tdp_map_page() is the shim's; a 2023 tree gets its
        // own from the series (calling the tree's fault path and rule).
        (COp::Prefault, Profile::Upstream) => &[
            (MMU, "kvm_arch_vcpu_pre_fault_memory"),
            ("virt/kvm/kvm_main.c", "kvm_vcpu_pre_fault_memory"),
        ],
        (COp::Prefault, Profile::GmemSolo2023) => &[
            ("arch/x86/kvm/mmu/mmu_internal.h", "kvm_mmu_do_page_fault"),
            (MMU, "kvm_tdp_map_page"),
            (MMU, "kvm_arch_vcpu_pre_fault_memory"),
            ("virt/kvm/kvm_main.c", "kvm_vcpu_pre_fault_memory"),
        ],
        (COp::PunchHole, Profile::Upstream) => &[
            (SEV, "sev_gmem_invalidate"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_invalidate_end"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_free_folio"),
            ("virt/kvm/guest_memfd.c", "kvm_gmem_punch_hole"),
        ],
        (COp::PunchHole, Profile::GmemSolo2023) => &[
            (SEV, "sev_gmem_invalidate"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_invalidate_end"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_free_folio"),
            ("virt/kvm/guest_mem.c", "kvm_gmem_punch_hole"),
        ],
        // Its static helpers (kvm_gmem_prepare_folio() and below in 6.12,
        // kvm_gmem_get_folio() in 2023) are pulled in as gcc asks. The hook
        // behind it is optional: a tree whose fault path reaches no hook is
        // reviewed (and diverges), not missing.
        (COp::GetPfn, Profile::Upstream) => &[("virt/kvm/guest_memfd.c", "kvm_gmem_get_pfn")],
        (COp::GetPfn, Profile::GmemSolo2023) => &[("virt/kvm/guest_mem.c", "kvm_gmem_get_pfn")],
    }
}

/// The tables through which the kernel reaches an operation's hooks, as
/// (file, table, members kept). The adapters register them as the kernel
/// does (`mapping->a_ops`, `kvm_ops_update()`), so a hook the tree's table
/// lacks is not called. An empty member list compiles the initializer
/// unchanged (its other members' functions are pulled in like callees);
/// otherwise only the listed members' lines and the preprocessor lines
/// around them are kept, because a vendor table names hundreds of
/// functions the shim has no business compiling.
pub fn tables_for(
    op: COp,
    profile: Profile,
) -> &'static [(&'static str, &'static str, &'static [&'static str])] {
    const SVM: &str = "arch/x86/kvm/svm/svm.c";
    match (op, profile) {
        (COp::GetPfn, _) => &[(SVM, "svm_x86_ops", &["gmem_prepare"])],
        (COp::Prepare, _) => &[(SVM, "svm_x86_ops", &["private_max_mapping_level"])],
        (COp::PunchHole, Profile::Upstream) => &[
            ("virt/kvm/guest_memfd.c", "kvm_gmem_aops", &[]),
            (SVM, "svm_x86_ops", &["gmem_invalidate"]),
        ],
        (COp::PunchHole, Profile::GmemSolo2023) => &[
            ("virt/kvm/guest_mem.c", "kvm_gmem_aops", &[]),
            (SVM, "svm_x86_ops", &["gmem_invalidate"]),
        ],
        _ => &[],
    }
}

/// A variable's initializer in `src`: from the unindented line declaring
/// `name` and ending in `= {` through the `};` that closes it, with the
/// 1-based line it starts on. None when absent or declared twice.
pub fn initializer<'s>(src: &'s str, name: &str) -> Option<(&'s str, usize)> {
    let mut found = None;
    let mut at = 0;
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        let declares = l
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == name);
        if !l.starts_with(char::is_whitespace) && l.ends_with("= {") && declares {
            if found.is_some() {
                return None;
            }
            found = Some((at, n + 1));
        }
        at += line.len();
    }
    let (start, line) = found?;
    let end = src[start..].find("\n};").map(|e| start + e + 3)?;
    Some((&src[start..end], line))
}

/// A table's text for the unit: whole (`keep` empty) or reduced to the
/// `keep` members and preprocessor lines, each with a `#line` into the tree.
fn table_text(path: &str, text: &str, line: usize, keep: &[&str]) -> String {
    if keep.is_empty() {
        return format!("#line {line} \"{path}\"\n{text}\n\n");
    }
    let mut out = String::new();
    let last = text.lines().count().saturating_sub(1);
    for (k, l) in text.lines().enumerate() {
        let t = l.trim_start();
        let member = t.strip_prefix('.').and_then(|m| {
            m.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        });
        if k == 0 || k == last || t.starts_with('#') || member.is_some_and(|m| keep.contains(&m)) {
            out.push_str(&format!("#line {} \"{path}\"\n{l}\n", line + k));
        }
    }
    out + "\n"
}

/// Optional helpers a tree may define itself (2023 SNP trees carry
/// kvm_mmu_fault_is_private()): the operations that use one, where it is.
/// x86.c's wrappers of the generic gmem hooks (the shim's stand-ins for
/// them dispatch through kvm_x86_ops the same way) too.
const OPTIONAL: &[(&[COp], &str, &str)] = &[
    (
        &[COp::Classify, COp::Prefault],
        "arch/x86/kvm/mmu/mmu_internal.h",
        "kvm_mmu_fault_is_private",
    ),
    // 6.16+ TDX: the EPT violation exit, which marks a fault private from
    // the GPA's shared bit (its helpers come from CALLEE_FILES). With it,
    // classify runs TDX cases through the tree.
    (
        &[COp::Classify],
        "arch/x86/kvm/vmx/tdx.c",
        "tdx_handle_ept_violation",
    ),
    (&[COp::GetPfn], "arch/x86/kvm/svm/sev.c", "sev_gmem_prepare"),
    (
        &[COp::GetPfn],
        "arch/x86/kvm/x86.c",
        "kvm_arch_gmem_prepare",
    ),
    (
        &[COp::PunchHole],
        "arch/x86/kvm/x86.c",
        "kvm_arch_gmem_invalidate",
    ),
    // 6.18+'s host-mapping fault handler: compiled with get-pfn (it shares
    // kvm_gmem_get_folio()), so a tree whose mmap path does not build
    // against the shim says so; no operation runs it.
    (
        &[COp::GetPfn],
        "virt/kvm/guest_memfd.c",
        "kvm_gmem_fault_user_mapping",
    ),
];

/// Files searched for static callees only, never for an operation's own
/// functions: 6.12 has a vmx/common.h too, whose EPT-violation helper
/// belongs to no operation until a tdx.c calls it.
const CALLEE_FILES: &[(&[COp], &str)] = &[(&[COp::Classify], "arch/x86/kvm/vmx/common.h")];

/// One function's text with a `#line` so compiler messages point at the
/// tree's own file and line.
fn with_line(path: &str, f: &cparse::CFunction, src: &str) -> String {
    format!("#line {} \"{}\"\n{}\n\n", f.line, path, f.text(src))
}

/// The names gcc says are undeclared functions: called (false), or named
/// in a table's initializer (true).
fn undeclared(log: &str) -> Vec<(String, bool)> {
    log.lines()
        .filter_map(|l| {
            l.split("implicit declaration of function '")
                .nth(1)
                .map(|r| (r, false))
                // Declared by the shim's headers, defined nowhere yet:
                // the linker names it (`-z defs`).
                .or_else(|| {
                    l.split("undefined reference to `")
                        .nth(1)
                        .map(|r| r.split('\'').next().unwrap_or(r))
                        .map(|r| (r, false))
                })
                .or_else(|| {
                    l.contains("' undeclared")
                        .then(|| l.split("error: '").nth(1))
                        .flatten()
                        .map(|r| (r, true))
                })
        })
        .filter_map(|(rest, table)| {
            rest.split(['\'', '`'])
                .next()
                .map(|n| (n.to_owned(), table))
        })
        .collect()
}

pub(crate) struct Extracted {
    pub(crate) text: String,
    /// The tables, compiled after every function.
    pub(crate) tables: String,
    pub(crate) defines: Vec<String>,
    /// What gmemforge's own C stands in for, when a file that registers a
    /// hook is not in the tree (a partial tree): the item says so.
    pub(crate) stand_in: Option<String>,
}

/// Why an operation's functions could not be taken from the tree.
pub(crate) enum NotFound {
    /// Not there: where it looked (verdict `missing`).
    Missing(String),
    /// There, but the file does not parse around it: file and line
    /// (verdict `error`).
    Parse(String),
}

/// The unbalanced definition that `name` is (or that holds where it was
/// found), if any.
fn unbalanced_at(
    src: &str,
    name: &str,
    found: Option<&cparse::CFunction>,
) -> Option<cparse::Unbalanced> {
    let call = format!("{name}(");
    let lines: Vec<&str> = src.lines().collect();
    cparse::unbalanced(src).into_iter().find(|u| match found {
        Some(f) => u.line <= f.line && f.line < u.at.max(u.line + 1),
        // Not found: the definition whose first lines name it.
        None => (u.line..u.at.min(u.line + 3))
            .filter_map(|l| lines.get(l - 1))
            .any(|l| l.contains(&call)),
    })
}

/// Finds the operation's functions; Err names what is missing and where
/// it looked, or where a file stops parsing.
pub(crate) fn extract(tree: &Tree, op: COp, d: &Detected) -> Result<Extracted, NotFound> {
    let mut text = String::new();
    let mut defines: Vec<String> = d
        .shape(op)
        .map(|s| s.defines.iter().map(|d| (*d).to_owned()).collect())
        .unwrap_or_default();
    for (path, name) in placed(op, d) {
        let src = tree
            .file(path)
            .ok_or_else(|| NotFound::Missing(format!("{name}(): {path} is not in the tree")))?;
        let found = cparse::find_recovering(src, name)
            .map_err(|e| NotFound::Parse(format!("{path}: {e}")))?;
        // A brace too many or too few makes the parser take a neighbour
        // into the function, or lose it: say where, not "no definition".
        if let Some(u) = unbalanced_at(src, name, found.as_ref()) {
            return Err(NotFound::Parse(format!("{path}:{}: {name}(): {u}", u.line)));
        }
        let f = found.ok_or_else(|| {
            NotFound::Missing(format!("{name}(): no single definition in {path}"))
        })?;
        text.push_str(&with_line(path, &f, src));
        defines.extend(provides_define(name).map(str::to_owned));
        // 6.13+ hands the page back too: the adapter calls the signature
        // the tree has.
        if name == "kvm_gmem_get_pfn" && f.text(src).contains("struct page **") {
            defines.push("GMF_GET_PFN_PAGE".to_owned());
        }
    }
    for (ops, path, name) in OPTIONAL {
        if !ops.contains(&op) {
            continue;
        }
        if let Some(src) = tree.file(path)
            && let Ok(Some(f)) = cparse::find_recovering(src, name)
        {
            text = with_line(path, &f, src) + &text;
            defines.extend(provides_define(name).map(str::to_owned));
        }
    }
    // Tables last: they name the functions above (static ones included).
    let mut tables = String::new();
    let mut stand_in = None;
    for (path, name, keep) in tables_placed(op, d) {
        if let Some(src) = tree.file(path)
            && let Some((t, line)) = initializer(src, name)
        {
            tables.push_str(&table_text(path, t, line, keep));
            defines.extend(provides_define(name).map(str::to_owned));
        } else if !tree.has(path) && op == COp::GetPfn && !defines.iter().any(|d| d == NO_HOOK) {
            // A partial tree: the file that registers the prepare hook is
            // not there, so its absence says nothing about the tree's
            // code. The registration (and, without sev.c, the hook) is
            // gmemforge's own C, the model's, and the item proves what the
            // guest_memfd code calls.
            let (c, words) = prepare_stand_in(tree, d.profile_of(op))
                .map_err(|e| NotFound::Parse(format!("gmemforge's stand-in: {e}")))?;
            text.push_str(&c);
            tables.push_str(
                "#line 1 \"<gmemforge stand-in for arch/x86/kvm/svm/svm.c>\"\n\
                 static struct kvm_x86_ops svm_x86_ops = {\n\t.gmem_prepare = sev_gmem_prepare,\n};\n",
            );
            defines.extend(provides_define(name).map(str::to_owned));
            stand_in = Some(format!(
                "{path} is not in the tree: the prepare hook's registration{words} is gmemforge's \
                 own C standing in, so this item proves what the guest_memfd code calls, not \
                 how the tree registers the hook"
            ));
        }
    }
    // The tree's own struct kvm_page_fault decides the error code's width.
    if op == COp::Classify
        && let Some(h) = tree.file("arch/x86/kvm/mmu/mmu_internal.h")
        && cparse::code_only(h).contains("const u32 error_code;")
    {
        defines.push("GMF_FAULT_ERROR_CODE_T=u32".into());
    }
    Ok(Extracted {
        text,
        tables,
        defines,
        stand_in,
    })
}

/// Shim switch: the fault path has no prepare hook the model covers.
const NO_HOOK: &str = "GMF_GET_PFN_NO_HOOK";

/// gmemforge's own `sev_gmem_prepare()` and its helpers (the builtin
/// unit's, generated from the model) when the tree has no sev.c; nothing
/// when it has one (its own hook is taken as an optional function).
fn prepare_stand_in(tree: &Tree, profile: Profile) -> Result<(String, &'static str), String> {
    if tree.has(SEV_C) {
        return Ok((String::new(), ""));
    }
    let unit = gmem_codegen::unit::builtin(profile).map_err(|e| e.to_string())?;
    let mut c = String::new();
    for name in [
        "is_pfn_range_shared",
        "max_level_for_order",
        "sev_gmem_prepare",
    ] {
        let f = unit
            .functions
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("the builtin unit has no {name}()"))?;
        c.push_str(&format!(
            "#line 1 \"<gmemforge stand-in for {SEV_C}>\"\n{}\n",
            f.text
        ));
    }
    Ok((
        c,
        " and the hook, sev_gmem_prepare() (arch/x86/kvm/svm/sev.c is not in the tree either),",
    ))
}

/// Where `build()` found the static callees it added: their names, in the
/// order they are compiled. `assemble()` puts the same unit together again
/// from a tree without compiling, so a verdict cache can key on the exact
/// text a verdict was reached with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Callees compiled before the operation's functions, first first.
    pub(crate) callees: Vec<String>,
    /// Functions only a table names, compiled after them.
    pub(crate) for_tables: Vec<String>,
}

/// The unit's text: callees, the operation's functions, the functions
/// only tables name, the tables.
fn compose(
    callees: &[(String, String)],
    ex: &Extracted,
    for_tables: &[(String, String)],
) -> String {
    let mut whole: String = callees.iter().map(|(_, t)| t.as_str()).collect();
    whole.push_str(&ex.text);
    for (_, t) in for_tables {
        whole.push_str(t);
    }
    whole.push_str(&ex.tables);
    whole
}

/// A static callee's text, from the first of the operation's files that
/// defines it.
fn find_callee(tree: &Tree, op: COp, d: &Detected, missing: &str) -> Option<String> {
    let optional = OPTIONAL
        .iter()
        .filter(|(ops, ..)| ops.contains(&op))
        .map(|(_, p, _)| p);
    let tables = tables_placed(op, d);
    let tables = tables.iter().map(|(p, ..)| p);
    let own = placed(op, d);
    let more = CALLEE_FILES
        .iter()
        .filter(|(ops, _)| ops.contains(&op))
        .map(|(_, p)| p);
    for path in own
        .iter()
        .map(|(p, _)| p)
        .chain(optional)
        .chain(tables)
        .chain(more)
    {
        if let Some(src) = tree.file(path)
            && let Ok(Some(f)) = cparse::find_recovering(src, missing)
        {
            return Some(with_line(path, &f, src));
        }
    }
    None
}

/// The text `build()` compiled for `layout`, taken from `tree` again
/// (None when a callee is no longer there).
pub(crate) fn assemble(
    tree: &Tree,
    op: COp,
    d: &Detected,
    ex: &Extracted,
    layout: &Layout,
) -> Option<String> {
    let take = |names: &[String]| -> Option<Vec<(String, String)>> {
        names
            .iter()
            .map(|n| Some((n.clone(), find_callee(tree, op, d, n)?)))
            .collect()
    };
    Some(compose(
        &take(&layout.callees)?,
        ex,
        &take(&layout.for_tables)?,
    ))
}

/// Compiles the extracted functions, adding static callees from the
/// operation's files when gcc reports them undeclared. `layout` is left
/// saying which callees the last attempt compiled, and `whole` its text.
pub(crate) fn build(
    tree: &Tree,
    op: COp,
    d: &Detected,
    name: &str,
    ex: &Extracted,
    layout: &mut Layout,
    whole: &mut String,
) -> Result<Library, CompileError> {
    let profile = d.profile_of(op);
    // Static callees, in the order they are compiled: before the functions
    // that call them. One that gcc still finds undeclared is called by a
    // callee pulled in after it, and moves to the front.
    let mut callees: Vec<(String, String)> = Vec::new();
    // Functions only a table names (kvm_gmem_aops' other members): after
    // the operation's functions, which they may call, before the tables.
    let mut for_tables: Vec<(String, String)> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    for _ in 0..8 {
        *whole = compose(&callees, ex, &for_tables);
        layout.callees = callees.iter().map(|(n, _)| n.clone()).collect();
        layout.for_tables = for_tables.iter().map(|(n, _)| n.clone()).collect();
        match load(&CSource {
            name,
            profile,
            text: whole,
            ops: &[op],
            defines: &ex.defines,
        }) {
            Ok(lib) => return Ok(lib),
            Err(CompileError::Rejected { unit, log }) => {
                let mut progress = false;
                for (missing, in_table) in undeclared(&log) {
                    if let Some(k) = callees.iter().position(|(n, _)| *n == missing) {
                        if k > 0 {
                            let c = callees.remove(k);
                            callees.insert(0, c);
                            progress = true;
                        }
                        continue;
                    }
                    if added.contains(&missing) {
                        continue;
                    }
                    if let Some(text) = find_callee(tree, op, d, &missing) {
                        if in_table {
                            for_tables.push((missing.clone(), text));
                        } else {
                            callees.insert(0, (missing.clone(), text));
                        }
                        added.push(missing.clone());
                        progress = true;
                    }
                }
                if !progress {
                    return Err(CompileError::Rejected { unit, log });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(CompileError::Io(format!(
        "{name}: callees kept appearing; gave up after {} added",
        added.len()
    )))
}

/// The tree's functions an operation's item names: its own, then the
/// optional ones this tree has and review compiles with them (a TDX exit,
/// x86.c's hook wrappers), comma-separated.
pub fn checked_functions(tree: &Tree, op: COp, detected: &Detected) -> String {
    let optional = OPTIONAL
        .iter()
        .filter(|(ops, ..)| ops.contains(&op))
        .filter(|(_, path, name)| {
            tree.file(path)
                .is_some_and(|src| matches!(cparse::find_recovering(src, name), Ok(Some(_))))
        })
        // Compiled only, never run: not named as checked.
        .filter(|(.., name)| *name != "kvm_gmem_fault_user_mapping")
        .map(|(.., name)| *name);
    placed(op, detected)
        .iter()
        .map(|(_, n)| *n)
        .chain(optional)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The operation's functions as review takes them: refused (`Parse`, an
/// `error` item) when the tree's function is of no known shape, not taken
/// (`Missing`, naming why) when the model does not cover the shape yet
/// (`Gap::Whole`), else `extract()`. `review` and `history` both go
/// through here, so a cached verdict is reached the same way.
pub(crate) fn extract_for_review(
    tree: &Tree,
    op: COp,
    d: &Detected,
) -> Result<Extracted, NotFound> {
    let shape = d.shape(op);
    if let Some(s) = shape.filter(|s| s.shape.is_none() && s.gmem_file.is_some()) {
        return Err(NotFound::Parse(s.evidence.clone()));
    }
    if let Some(shapes::Gap::Whole(w)) = shape.map(|s| s.gap) {
        return Err(NotFound::Missing(format!("not reviewed: {w}")));
    }
    extract(tree, op, d)
}

/// Says on a run item what its verdict does not cover: the shape's model
/// gap and a hook registration gmemforge stood in for.
pub(crate) fn note_unchecked(item: &mut Item, d: &Detected, op: COp, stand_in: Option<String>) {
    if item.verdict == Verdict::Missing || item.verdict == Verdict::Error {
        return;
    }
    let notes: Vec<String> = d
        .shape(op)
        .and_then(|s| s.gap.words())
        .map(str::to_owned)
        .into_iter()
        .chain(stand_in)
        .collect();
    item.not_checked = (!notes.is_empty()).then(|| notes.join("; "));
}

/// The whole review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The tree, in words.
    pub tree: String,
    /// Detected generation.
    pub detected: Detected,
    /// The verdicts.
    #[serde(flatten)]
    pub report: Report,
}

/// Reviews `tree`. `Err` when no profile fits (the message says what was
/// looked for). `progress` is told how many items the review makes, then
/// when each starts and ends (`progress::Event`).
pub fn review(
    tree: &Tree,
    sources: &[Source],
    jobs: u64,
    vectors: &dyn Fn(&str) -> Vec<Value>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Review, CheckError> {
    let detected = detect(tree).ok_or_else(|| {
        let holds_gmem = GMEM_FILES.iter().any(|f| tree.has(f));
        CheckError::BadInput(if holds_gmem {
            format!(
                "{}: no known guest_memfd generation; looked for {LOOKED_FOR}",
                tree.describe()
            )
        } else {
            format!(
                "{}: the tree has no guest_memfd (neither virt/kvm/guest_memfd.c nor \
                 virt/kvm/guest_mem.c): nothing to review",
                tree.describe()
            )
        })
    })?;
    let started = Instant::now();
    let mut items: Vec<Item> = Vec::new();
    let implementation = tree.describe();
    // One unit of work per operation: each makes exactly one item, found,
    // missing or in error.
    progress(Event::Total(OPERATIONS.len() as u64));
    for op in OPERATIONS {
        let function = checked_functions(tree, op.cop, &detected);
        let what = format!("{} {}", op.name, function);
        progress(Event::Start(&what));
        let extracted = extract_for_review(tree, op.cop, &detected);
        let stand_in = extracted.as_ref().ok().and_then(|ex| ex.stand_in.clone());
        let mut item = match extracted {
            Err(NotFound::Missing(why)) => {
                not_run(op, &implementation, function, Verdict::Missing, why)
            }
            Err(NotFound::Parse(why)) => {
                not_run(op, &implementation, function, Verdict::Error, why)
            }
            Ok(ex) => {
                progress(Event::Step(&format!(
                    "compiling {} for {}",
                    function, op.name
                )));
                let name = format!("{implementation} {}", op.name);
                let mut layout = Layout::default();
                match build(
                    tree,
                    op.cop,
                    &detected,
                    &name,
                    &ex,
                    &mut layout,
                    &mut String::new(),
                ) {
                    Ok(lib) => {
                        progress(Event::Step(&what));
                        run_item(
                            op,
                            &implementation,
                            function,
                            &lib,
                            detected.profile_of(op.cop),
                            sources,
                            jobs,
                            vectors,
                        )
                    }
                    Err(e @ CompileError::Load(_)) => {
                        return Err(CheckError::Internal(e.to_string()));
                    }
                    Err(e) => not_run(op, &implementation, function, Verdict::Error, e.to_string()),
                }
            }
        };
        note_unchecked(&mut item, &detected, op.cop, stand_in);
        progress(Event::Done {
            vectors: item.vectors,
        });
        items.push(item);
    }
    Ok(Review {
        tree: implementation,
        detected,
        report: report(items, started),
    })
}

/// The operation whose registry entry is `cop`.
pub fn operation(cop: COp) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.cop == cop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVM: &str = "\
static int npf(void) { return 0; }

static struct kvm_x86_ops svm_x86_ops __initdata = {
\t.name = KBUILD_MODNAME,
\t.vcpu_create = svm_vcpu_create,

#ifdef CONFIG_KVM_AMD_SEV
\t.mem_enc_ioctl = sev_mem_enc_ioctl,
\t.gmem_prepare = sev_gmem_prepare,
\t.gmem_invalidate = sev_gmem_invalidate,
#endif
};
";

    #[test]
    fn a_vendor_table_is_reduced_to_the_members_kept() {
        let (t, line) = initializer(SVM, "svm_x86_ops").expect("found");
        assert_eq!(line, 3);
        assert!(t.ends_with("#endif\n};"), "{t}");
        let out = table_text("svm.c", t, line, &["gmem_prepare"]);
        let code: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("#line") && !l.is_empty())
            .collect();
        assert_eq!(
            code,
            [
                "static struct kvm_x86_ops svm_x86_ops __initdata = {",
                "#ifdef CONFIG_KVM_AMD_SEV",
                "\t.gmem_prepare = sev_gmem_prepare,",
                "#endif",
                "};"
            ]
        );
        // Each kept line keeps its own line number in the tree.
        assert!(out.contains("#line 9 \"svm.c\"\n\t.gmem_prepare"), "{out}");
        // Whole: unchanged.
        assert!(table_text("svm.c", t, line, &[]).contains(t));
        assert_eq!(initializer(SVM, "kvm_gmem_aops"), None);
    }

    #[test]
    fn gcc_names_undeclared_callees_and_table_members() {
        let log = "x.c:3:5: error: implicit declaration of function 'kvm_gmem_get_index' [-Werror=implicit-function-declaration]\n\
                   x.c:9:20: error: 'kvm_gmem_error_folio' undeclared here (not in a function)\n\
                   /usr/bin/ld: /tmp/cc1.o: in function `gmf_get_pfn':\n\
                   unit.c:(.text+0x1d): undefined reference to `sev_gmem_prepare'\n";
        assert_eq!(
            undeclared(log),
            [
                ("kvm_gmem_get_index".to_owned(), false),
                ("kvm_gmem_error_folio".to_owned(), true),
                ("sev_gmem_prepare".to_owned(), false)
            ]
        );
    }
}
