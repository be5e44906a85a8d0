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
use crate::tree::Tree;

/// How one operation is reviewed: where the tree keeps its guest_memfd
/// functions, the profile (model behaviour and shim shapes) chosen from
/// the tree's own signatures and fields, and what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpShape {
    /// The operation, as `check` names it.
    pub operation: &'static str,
    /// The model profile the operation is compared with.
    #[serde(serialize_with = "profile_name")]
    pub profile: Profile,
    /// The file its guest_memfd functions were found in (None: the
    /// operation has none, or the tree holds none of them).
    pub gmem_file: Option<&'static str>,
    /// Shim shape switches (`-D`) the tree's code needs for this operation.
    pub defines: Vec<&'static str>,
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
pub const LOOKED_FOR: &str = "kvm_gmem_invalidate_begin(), kvm_gmem_bind(), kvm_gmem_punch_hole() \
or kvm_gmem_get_pfn() defined in virt/kvm/guest_memfd.c (upstream, 6.8+) or virt/kvm/guest_mem.c \
(the 2023 kvm_gmem_solo branch and the gmem series v10–v14 of late-2023 vendor trees)";

/// The files a generation keeps guest_memfd in, newest name first.
const GMEM_FILES: [&str; 2] = ["virt/kvm/guest_memfd.c", "virt/kvm/guest_mem.c"];

/// The guest_memfd functions whose presence makes a tree reviewable.
const GMEM_FUNCTIONS: &[&str] = &[
    "kvm_gmem_invalidate_begin",
    "__kvm_gmem_invalidate_begin",
    "kvm_gmem_bind",
    "kvm_gmem_punch_hole",
    "kvm_gmem_get_pfn",
];

/// One guest_memfd file of the tree, parsed once, for detection: its code
/// with the comments blanked (`cparse::code_only`), so that a comment
/// naming a function or a field ("no is_prepared here", ".attr_filter is
/// set by the caller") never decides which contract the tree is held to.
struct GmemFile {
    path: &'static str,
    code: String,
    fns: Vec<cparse::CFunction>,
}

impl GmemFile {
    fn new(path: &'static str, src: &str) -> GmemFile {
        let code = cparse::code_only(src);
        let fns = cparse::functions(&code).unwrap_or_default();
        GmemFile { path, code, fns }
    }

    /// The code of `name`'s one definition here.
    fn get(&self, name: &str) -> Option<&str> {
        let mut it = self.fns.iter().filter(|f| f.name == name);
        match (it.next(), it.next()) {
            (Some(f), None) => Some(f.text(&self.code)),
            (Some(_), Some(_)) => None,
            // Lost to a brace elsewhere: its own definition, parsed alone.
            (None, _) => cparse::find_recovering(&self.code, name)
                .ok()
                .flatten()
                .map(|f| f.text(&self.code)),
        }
    }
}

/// The function's signature: its text up to the body's brace.
fn signature(text: &str) -> &str {
    text.split('{').next().unwrap_or(text)
}

/// How a file's invalidation is written, shared by `invalidate` and
/// `punch-hole` (which calls it).
struct Invalidation {
    profile: Profile,
    per_inode: bool,
    defines: Vec<&'static str>,
    evidence: String,
}

/// Reads the invalidation's shape from `kvm_gmem_invalidate_begin()`:
///
/// - who adds the range to the MMU's invalidation: the 2023 code called
///   `kvm_mmu_invalidate_range_add()` itself before `kvm_unmap_gfn_range()`
///   (the gmem-solo-2023 contract, which the comparison holds it to), the
///   gmem series v10+ and upstream leave it to `kvm_mmu_unmap_gfn_range()`
///   (upstream's);
/// - its arguments, `(kvm, gmem, start, end)` in 2023, `(gmem, start,
///   end)` from v10 on: the adapter calls it as the tree wrote it;
/// - whether `struct kvm_gfn_range` has `attr_filter` (6.12+): before it,
///   the shim's struct has none, so a tree cannot set a filter it lacks.
fn invalidation(f: &GmemFile) -> Option<Invalidation> {
    let per_inode = f.get("__kvm_gmem_invalidate_begin").is_some();
    let name = if per_inode {
        "__kvm_gmem_invalidate_begin"
    } else {
        "kvm_gmem_invalidate_begin"
    };
    let begin = f.get(name)?;
    let mut defines = Vec::new();
    let mut words = Vec::new();
    let takes_kvm = signature(begin).contains("struct kvm *");
    defines.push(if takes_kvm {
        "GMF_GMEM_INVALIDATE_TAKES_KVM=1"
    } else {
        "GMF_GMEM_INVALIDATE_TAKES_KVM=0"
    });
    if per_inode {
        defines.push("GMF_GMEM_PER_INODE");
        words.push(format!("{name}(f, ...) per file (6.18+)"));
    } else if takes_kvm {
        words.push(format!("{name}(kvm, gmem, start, end)"));
    } else {
        words.push(format!("{name}(gmem, start, end)"));
    }
    if begin.contains("gmem.index") {
        words.push("slot->gmem.index".into());
    } else if begin.contains("gmem.pgoff") {
        words.push("slot->gmem.pgoff".into());
    }
    let profile = if begin.contains("kvm_unmap_gfn_range(") {
        words.push("kvm_unmap_gfn_range() after its own kvm_mmu_invalidate_range_add()".into());
        Profile::GmemSolo2023
    } else {
        words.push("kvm_mmu_unmap_gfn_range()".into());
        Profile::Upstream
    };
    // A member set, not a word in a comment.
    if f.code.contains(".attr_filter") {
        words.push("attr_filter".into());
    } else {
        words.push("no attr_filter".into());
        defines.push("GMF_GFN_RANGE_NO_ATTR_FILTER");
    }
    Some(Invalidation {
        profile,
        per_inode,
        defines,
        evidence: format!("{}: {}", f.path, words.join(", ")),
    })
}

/// The generation a guest_memfd file looks like, in words.
fn generation(f: &GmemFile, inv: Option<&Invalidation>) -> String {
    let pgoff = f.code.contains("gmem.pgoff");
    let what = match (f.path, inv) {
        (_, Some(i)) if i.per_inode => {
            "with the per-inode file list (6.18+ shape: __kvm_gmem_invalidate_begin)"
        }
        ("virt/kvm/guest_memfd.c", _) if f.code.contains(".attr_filter") => {
            "with slot->gmem.pgoff and attr_filter (upstream 6.12–6.17 shape)"
        }
        ("virt/kvm/guest_memfd.c", _) => {
            "with slot->gmem.pgoff, no attr_filter (upstream 6.8–6.11 shape)"
        }
        (_, _) if pgoff => {
            "with slot->gmem.pgoff (gmem series v10–v14 shape: late-2023 TDX and SNP \
             vendor trees and their backports)"
        }
        _ => "with slot->gmem.index (2023 kvm_gmem_solo shape)",
    };
    format!("{} {what}", f.path)
}

/// Detects, per operation, where the tree keeps its functions and which
/// profile its code is written for; None when no guest_memfd file holds
/// any guest_memfd function (nothing to review).
///
/// The gmem series v10–v14 (late 2023: Intel's TDX tree, the SEV-SNP host
/// trees, their 6.1/6.5/6.6 backports) needs no profile of its own; by
/// design each of its operations behaves as one of the two:
///
/// - invalidation: `(gmem, start, end)`, `slot->gmem.pgoff`, the clamped
///   range and `kvm_mmu_unmap_gfn_range()`: upstream's contract (its
///   known bug, `kvm_mmu_invalidate_begin()` without an `_end()` when no
///   binding overlaps, is a divergence upstream fixed, not a design);
/// - bind: from v12 a bad fd is -EBADF and the offset must be page aligned
///   (`kvm_gmem_is_valid_size()`), as upstream; v10–v11 checked the
///   alignment but still said -EINVAL for a bad fd — reviewed against
///   upstream too, so that errno shows as a divergence, which is what a
///   userspace written for 6.8 sees;
/// - get-pfn: no prepare hook and a WARN on every binding mismatch, the
///   gmem-solo-2023 contract (a hook, when a vendor tree adds one, runs at
///   every lookup); upstream's "a prepared folio is not prepared again"
///   starts with `kvm_gmem_mark_prepared()` (6.11).
pub fn detect(tree: &Tree) -> Option<Detected> {
    let files: Vec<GmemFile> = GMEM_FILES
        .iter()
        .filter_map(|&path| Some(GmemFile::new(path, tree.file(path)?)))
        .collect();
    let holding = |name: &str| files.iter().find(|f| f.get(name).is_some());
    let gmem = files
        .iter()
        .find(|f| GMEM_FUNCTIONS.iter().any(|n| f.get(n).is_some()))?;
    let inv_file = holding("__kvm_gmem_invalidate_begin").or(holding("kvm_gmem_invalidate_begin"));
    let inv = inv_file.and_then(invalidation);
    let gen_file = inv_file.unwrap_or(gmem);
    let mut evidence = generation(gen_file, inv.as_ref());

    // The x86 fault path: PFERR_PRIVATE_ACCESS (upstream, 2024) marks private
    // faults with a synthetic error-code bit; before it the 2023 chain
    // has none and decides by the attribute or a configurable mask.
    let x86 = ["arch/x86/kvm/mmu/mmu_internal.h", "arch/x86/kvm/mmu/mmu.c"]
        .iter()
        .filter_map(|p| tree.file(p).map(|s| (*p, cparse::code_only(s))))
        .collect::<Vec<_>>();
    let fault = match x86.iter().find(|(_, s)| s.contains("PFERR_PRIVATE_ACCESS")) {
        Some((p, _)) => Some((
            Profile::Upstream,
            format!("{p}: PFERR_PRIVATE_ACCESS marks private faults (upstream, 2024)"),
        )),
        None if !x86.is_empty() => Some((
            Profile::GmemSolo2023,
            format!(
                "{}: no PFERR_PRIVATE_ACCESS: private faults by attribute or mask (2023 shape)",
                x86.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
            ),
        )),
        None => None,
    };
    let tree_profile = inv.as_ref().map_or(
        if gmem.code.contains("gmem.index") {
            Profile::GmemSolo2023
        } else {
            Profile::Upstream
        },
        |i| i.profile,
    );
    let sev_defines = |name: &str| {
        tree.file(SEV_C)
            .is_some_and(|src| matches!(cparse::find_recovering(src, name), Ok(Some(_))))
    };
    // Late-2023 SNP host trees add the arch hooks to the gmem series:
    // prepare from the lookup, invalidate from ->free_folio.
    let gmem_hooks = |f: &GmemFile| {
        let mut w = Vec::new();
        if f.code.contains("kvm_arch_gmem_prepare(") {
            w.push("kvm_arch_gmem_prepare() on the lookup path");
        }
        if f.get("kvm_gmem_free_folio").is_some() {
            w.push("kvm_gmem_free_folio() → kvm_arch_gmem_invalidate()");
        }
        w
    };
    if inv_file.is_some_and(|f| f.path == "virt/kvm/guest_mem.c") {
        let hooks = gmem_hooks(gen_file);
        if !hooks.is_empty() {
            evidence.push_str(&format!(
                "; SEV-SNP hooks of late-2023 SNP host trees: {}",
                hooks.join(", ")
            ));
        }
    }
    let mut operations = Vec::new();
    for op in OPERATIONS {
        let name = op.name;
        let mut defines = Vec::new();
        let (profile, gmem_file, why) = match op.cop {
            COp::Invalidate => match (&inv, inv_file) {
                (Some(i), Some(f)) => {
                    defines.clone_from(&i.defines);
                    (i.profile, Some(f.path), i.evidence.clone())
                }
                _ => (tree_profile, None, "no kvm_gmem_invalidate_begin()".into()),
            },
            COp::PunchHole => match holding("kvm_gmem_punch_hole") {
                Some(f) => {
                    let text = f.get("kvm_gmem_punch_hole").unwrap_or_default();
                    let takes_file = signature(text).contains("struct file *");
                    defines.push(if takes_file {
                        "GMF_PUNCH_HOLE_TAKES_FILE=1"
                    } else {
                        "GMF_PUNCH_HOLE_TAKES_FILE=0"
                    });
                    let i = invalidation(f);
                    let mut why = format!(
                        "{}: kvm_gmem_punch_hole({})",
                        f.path,
                        if takes_file {
                            "file, ..."
                        } else {
                            "inode, ..."
                        }
                    );
                    if f.get("kvm_gmem_free_folio").is_some() {
                        why.push_str(", folios freed through kvm_gmem_free_folio()");
                    }
                    if let Some(i) = &i {
                        defines.extend(i.defines.iter().copied());
                        why.push_str(&format!("; invalidation {}", i.evidence));
                    }
                    (i.map_or(tree_profile, |i| i.profile), Some(f.path), why)
                }
                None => (tree_profile, None, "no kvm_gmem_punch_hole()".into()),
            },
            COp::Bind => match holding("kvm_gmem_bind") {
                Some(f) => {
                    let body = f.get("kvm_gmem_bind").unwrap_or_default();
                    let ebadf = body.contains("-EBADF");
                    let aligned = [
                        "PAGE_ALIGNED(offset)",
                        "kvm_gmem_is_valid_size(offset",
                        "IS_ALIGNED(offset",
                    ]
                    .iter()
                    .any(|c| body.contains(c));
                    let (p, w) = match (ebadf, aligned) {
                        (true, _) => (
                            Profile::Upstream,
                            "-EBADF for a bad fd, offset alignment checked (gmem v12+, 6.8+)",
                        ),
                        (false, true) => (
                            Profile::Upstream,
                            "offset alignment checked but -EINVAL for a bad fd (gmem v10–v11): \
                             reviewed with upstream's errnos",
                        ),
                        (false, false) => (
                            Profile::GmemSolo2023,
                            "-EINVAL for every failure, no alignment check (2023)",
                        ),
                    };
                    (p, Some(f.path), format!("{}: kvm_gmem_bind(): {w}", f.path))
                }
                None => (tree_profile, None, "no kvm_gmem_bind()".into()),
            },
            COp::GetPfn => match holding("kvm_gmem_get_pfn") {
                Some(f) if prepares_every_fault_at_head(f) => {
                    defines.push("GMF_GET_PFN_EVERY_FAULT");
                    (
                        Profile::Upstream,
                        Some(f.path),
                        format!(
                            "{}: kvm_gmem_get_pfn() prepares at every fault, at the folio's \
                             head, with no prepared-folio state (mainline after 6.18)",
                            f.path
                        ),
                    )
                }
                Some(f)
                    if f.code.contains("kvm_gmem_mark_prepared")
                        || f.code.contains("is_prepared") =>
                {
                    (
                        Profile::Upstream,
                        Some(f.path),
                        format!(
                            "{}: kvm_gmem_get_pfn() prepares a folio once (kvm_gmem_mark_prepared, 6.11+)",
                            f.path
                        ),
                    )
                }
                Some(f) => (
                    Profile::GmemSolo2023,
                    Some(f.path),
                    format!(
                        "{}: kvm_gmem_get_pfn() with no prepared-folio state (2023 and gmem \
                         v10–v14 contract: a hook runs at every lookup, a mismatched binding \
                         WARNs){}",
                        f.path,
                        if f.code.contains("kvm_arch_gmem_prepare(") {
                            "; kvm_arch_gmem_prepare() called from it (late-2023 SNP host tree)"
                        } else {
                            ""
                        }
                    ),
                ),
                None => (tree_profile, None, "no kvm_gmem_get_pfn()".into()),
            },
            COp::Classify | COp::Prefault => match &fault {
                Some((p, w)) => (*p, None, w.clone()),
                None => (tree_profile, None, "no x86 MMU files".into()),
            },
            // The SNP series v10-v11 ask the RMP's level through their
            // own hook, .gmem_max_level, which lowers the level the MMU
            // hands in or fails the fault, after a successful prepare.
            COp::Prepare
                if sev_defines("sev_gmem_max_level")
                    && !sev_defines("sev_private_max_mapping_level") =>
            {
                defines.push(GMEM_MAX_LEVEL);
                (
                    tree_profile,
                    None,
                    format!(
                        "{SEV_C}: sev_gmem_max_level(kvm, pfn, gfn, &max_level) through \
                         .gmem_max_level (SNP series v10–v11), asked only after a successful \
                         prepare; the tree's guest_memfd profile ({})",
                        tree_profile.name()
                    ),
                )
            }
            // sev.c's hooks touch no guest_memfd structure: the tree's.
            COp::Prepare | COp::RmpInvalidate => (
                tree_profile,
                None,
                format!(
                    "SEV hooks: the tree's guest_memfd profile ({})",
                    tree_profile.name()
                ),
            ),
        };
        operations.push(OpShape {
            operation: name,
            profile,
            gmem_file,
            defines,
            evidence: why,
        });
    }
    // A tree may mix generations (a backport): then say so; each
    // operation's evidence says what decided it.
    if operations.iter().any(|s| s.profile != tree_profile) {
        evidence.push_str("; operations reviewed with different profiles, see each");
    }
    Some(Detected {
        profile: tree_profile,
        per_inode: inv.as_ref().is_some_and(|i| i.per_inode),
        evidence,
        operations,
    })
}

/// Whether the file's `kvm_gmem_get_pfn()` calls the prepare hook at every
/// fault through the folio-head form of `kvm_gmem_prepare_folio()` (the
/// one taking the memslot, 6.11+) with no prepared-folio state left: the
/// mainline shape after the preparation tracking was removed, reviewed
/// against upstream's contract with the hook at every fault
/// (`GMF_GET_PFN_EVERY_FAULT`). 6.10 and the 2023 trees call the hook at
/// every lookup too, but for the faulting page (their
/// `kvm_gmem_prepare_folio()` takes the inode): the 2023 contract.
fn prepares_every_fault_at_head(f: &GmemFile) -> bool {
    let (Some(get_pfn), Some(prepare)) =
        (f.get("kvm_gmem_get_pfn"), f.get("kvm_gmem_prepare_folio"))
    else {
        return false;
    };
    get_pfn.contains("kvm_gmem_prepare_folio(")
        && signature(prepare).contains("struct kvm_memory_slot")
        && !f.code.contains("kvm_gmem_mark_prepared")
        && !f.code.contains("is_prepared")
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
    match op {
        COp::Prepare if has_define(d, op, GMEM_MAX_LEVEL) => {
            &[(SEV_C, "sev_gmem_prepare"), (SEV_C, "sev_gmem_max_level")]
        }
        COp::Invalidate if d.per_inode => &[
            ("virt/kvm/guest_memfd.c", "__kvm_gmem_invalidate_begin"),
            ("virt/kvm/guest_memfd.c", "__kvm_gmem_invalidate_end"),
        ],
        _ => functions_for(op, d.profile_of(op)),
    }
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
    for (path, name, keep) in tables_placed(op, d) {
        if let Some(src) = tree.file(path)
            && let Some((t, line)) = initializer(src, name)
        {
            tables.push_str(&table_text(path, t, line, keep));
            defines.extend(provides_define(name).map(str::to_owned));
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
    })
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
        let item = match extract(tree, op.cop, &detected) {
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

    fn file(path: &'static str, src: &str) -> GmemFile {
        GmemFile::new(path, src)
    }

    #[test]
    fn comments_naming_code_do_not_decide_the_contract() {
        // v12's begin, with comments a vendor might write: the 2023 call,
        // the 6.12 filter and the 6.11 prepared state named, none in code.
        let v12 = "/* .attr_filter: not in this tree */\n\
                   static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,\n\
                   \t\tpgoff_t end)\n{\n\tpgoff_t pgoff = slot->gmem.pgoff;\n\
                   \t/* was: kvm_unmap_gfn_range(kvm, &r) after range_add */\n\
                   \tflush |= kvm_mmu_unmap_gfn_range(kvm, &r);\n}\n";
        let i = invalidation(&file("virt/kvm/guest_mem.c", v12)).expect("found");
        assert_eq!(i.profile, Profile::Upstream, "{}", i.evidence);
        assert!(i.defines.contains(&"GMF_GFN_RANGE_NO_ATTR_FILTER"));
        // Mainline's get-pfn with a comment on the state it no longer has.
        let mainline = "static int kvm_gmem_prepare_folio(struct kvm *kvm, struct kvm_memory_slot *slot,\n\
                        \t\tgfn_t gfn, struct folio *folio)\n{\n\treturn 0;\n}\n\
                        int kvm_gmem_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot)\n{\n\
                        \t/* no is_prepared, no kvm_gmem_mark_prepared(): every fault */\n\
                        \treturn kvm_gmem_prepare_folio(kvm, slot, gfn, folio);\n}\n";
        assert!(prepares_every_fault_at_head(&file(
            "virt/kvm/guest_memfd.c",
            mainline
        )));
        // The same with the state in code is 6.11-6.18's shape.
        let marked = mainline.replace(
            "\treturn kvm_gmem_prepare",
            "\tkvm_gmem_mark_prepared(folio);\n\treturn kvm_gmem_prepare",
        );
        assert!(!prepares_every_fault_at_head(&file(
            "virt/kvm/guest_memfd.c",
            &marked
        )));
    }

    #[test]
    fn the_invalidation_shape_comes_from_the_trees_own_code() {
        let solo = "static void kvm_gmem_invalidate_begin(struct kvm *kvm, struct kvm_gmem *gmem,\n\t\tpgoff_t start, pgoff_t end)\n{\n\tkvm_mmu_invalidate_range_add(kvm, s, e);\n\tflush |= kvm_unmap_gfn_range(kvm, &r);\n}\n";
        let i = invalidation(&file("virt/kvm/guest_mem.c", solo)).expect("found");
        assert_eq!(i.profile, Profile::GmemSolo2023);
        assert!(i.defines.contains(&"GMF_GMEM_INVALIDATE_TAKES_KVM=1"));
        let v12 = "static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,\n\t\tpgoff_t end)\n{\n\tpgoff_t pgoff = slot->gmem.pgoff;\n\tflush |= kvm_mmu_unmap_gfn_range(kvm, &r);\n}\n";
        let i = invalidation(&file("virt/kvm/guest_mem.c", v12)).expect("found");
        assert_eq!(i.profile, Profile::Upstream);
        assert!(i.defines.contains(&"GMF_GMEM_INVALIDATE_TAKES_KVM=0"));
        assert!(i.defines.contains(&"GMF_GFN_RANGE_NO_ATTR_FILTER"));
        assert!(i.evidence.contains("slot->gmem.pgoff"), "{}", i.evidence);
        // 6.12: the filter is set, so the shim's struct has it.
        let u612 = v12.replace("&r);", "&r);\n\tr.attr_filter = KVM_FILTER_PRIVATE;");
        let f = file("virt/kvm/guest_memfd.c", &u612);
        let i = invalidation(&f).expect("found");
        assert!(!i.defines.contains(&"GMF_GFN_RANGE_NO_ATTR_FILTER"));
        assert!(
            generation(&f, Some(&i)).contains("6.12"),
            "{}",
            generation(&f, Some(&i))
        );
    }
}
