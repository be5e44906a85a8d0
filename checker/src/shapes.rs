//! Kernel shapes as data: per operation, every shape review knows, what
//! identifies it in a tree and what it selects.
//!
//! A shape is identified by *marks* read from the tree-sitter tree of the
//! tree's code (`cparse::facts`: the calls, names and parameter list of
//! each function; comments and strings never count): functions defined,
//! a parameter's type, a call, a name used. It selects the contract the
//! model holds the code to (a profile and shim switches, `-D`), the
//! functions review extracts, the evidence line the user reads, and, where
//! the model does not cover the shape yet, that gap in words. Independent
//! features of a shape (an extra argument, a field the tree's struct has)
//! are *switches*: marks that add a define and a word to the evidence.
//!
//! A new kernel shape is a new entry here and a fixture that selects it
//! (`tests/shapes.rs` walks the registry: every entry has its fixture,
//! and no fixture selects two entries of one operation).

use gmem_codegen::cparse::{self, Facts};
use gmem_reference::Profile;

use crate::compile::COp;

/// The file a shape's anchor function is in, or one the tree holds.
const GMEMFD: &str = "virt/kvm/guest_memfd.c";
const SEV: &str = "arch/x86/kvm/svm/sev.c";
const MMU_FILES: &[&str] = &["arch/x86/kvm/mmu/mmu_internal.h", "arch/x86/kvm/mmu/mmu.c"];

/// What a tree must hold. Function names may be [`ANCHOR`]: the shape's
/// own anchor function.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// The function is defined in a guest_memfd file.
    Defines(&'static str),
    /// The function's parameter list holds the text (e.g. `uoff_t`,
    /// `struct kvm *`), whitespace-insensitive.
    Param(&'static str, &'static str),
    /// The first function calls the second.
    Calls(&'static str, &'static str),
    /// The function uses the name (identifier, macro, type; a member as
    /// `.name`).
    Names(&'static str, &'static str),
    /// Some function of the anchor's file uses the name.
    FileNames(&'static str),
    /// The anchor is in this file (a generation's file name).
    InFile(&'static str),
    /// Some function of one of these files uses the name.
    PathNames(&'static [&'static str], &'static str),
    /// The file defines the function.
    PathDefines(&'static str, &'static str),
    /// The tree holds one of these files.
    PathExists(&'static [&'static str]),
    /// The mark does not hold.
    Not(&'static Mark),
    /// One of the marks holds.
    Any(&'static [Mark]),
}

/// The shape's own anchor function, in marks.
pub const ANCHOR: &str = "@";

/// One known shape of one operation.
#[derive(Debug)]
pub struct Shape {
    /// Operations it is a shape of.
    pub ops: &'static [COp],
    /// Its name, as tests and `--json` say it.
    pub id: &'static str,
    /// The function whose file is the operation's guest_memfd file (None:
    /// the operation reads other files).
    pub anchor: Option<&'static str>,
    /// What identifies it: every mark holds.
    pub marks: &'static [Mark],
    /// The model profile (None: the tree's guest_memfd profile).
    pub profile: Option<Profile>,
    /// The functions reviewed, when not the profile's (`functions_for()`).
    pub functions: Option<&'static [(&'static str, &'static str)]>,
    /// Shim switches.
    pub defines: &'static [&'static str],
    /// The evidence line; `{file}` is the anchor's file.
    pub evidence: &'static str,
    /// What the model does not cover for this shape yet: the item says so
    /// instead of claiming it.
    pub gap: Gap,
    /// The fixture that selects it: a tree under `tests/fixtures/`, or a
    /// `.c` file there reviewed as a tree's `virt/kvm/guest_memfd.c`.
    pub fixture: &'static str,
}

/// What the model does not cover for a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Nothing: the verdict covers the operation.
    None,
    /// A part, named: the verdict covers the rest.
    Part(&'static str),
    /// Too much to give a verdict: the operation is not run, and the
    /// item names why.
    Whole(&'static str),
}

impl Gap {
    /// The words, if any.
    pub fn words(self) -> Option<&'static str> {
        match self {
            Gap::None => None,
            Gap::Part(w) | Gap::Whole(w) => Some(w),
        }
    }
}

/// A feature a shape may have on top: when the marks hold, `on`, else
/// `off` (defines, word for the evidence).
#[derive(Debug)]
pub struct Switch {
    /// Operations it applies to.
    pub ops: &'static [COp],
    /// What identifies it (on the operation's anchor).
    pub marks: &'static [Mark],
    /// Defines and words when it holds.
    pub on: (&'static [&'static str], &'static str),
    /// Defines and words when it does not.
    pub off: (&'static [&'static str], &'static str),
}

const INV: &[COp] = &[COp::Invalidate];
const PUNCH: &[COp] = &[COp::PunchHole];
const BIND: &[COp] = &[COp::Bind];
const GET_PFN: &[COp] = &[COp::GetPfn];
const FAULT: &[COp] = &[COp::Classify, COp::Prefault];
const INV_PUNCH: &[COp] = &[COp::Invalidate, COp::PunchHole];

/// The 2023 code added the range to the MMU's invalidation itself, then
/// called `kvm_unmap_gfn_range()`.
const UNMAP_2023: Mark = Mark::Any(&[
    Mark::Calls("kvm_gmem_invalidate_begin", "kvm_unmap_gfn_range"),
    Mark::Calls("__kvm_gmem_invalidate_begin", "kvm_unmap_gfn_range"),
]);
const NOT_UNMAP_2023: Mark = Mark::Not(&UNMAP_2023);
const PER_FILE: Mark = Mark::Defines("__kvm_gmem_invalidate_begin");
const IN_PLACE: Mark = Mark::Defines("__kvm_gmem_invalidate_start");
const SPLIT_BIND: Mark = Mark::Defines("kvm_gmem_commit_memory_region");
const PREPARED_ONCE: Mark = Mark::Any(&[
    Mark::FileNames("kvm_gmem_mark_prepared"),
    Mark::FileNames("is_prepared"),
]);
const MAKE_PRIVATE: Mark = Mark::Calls(ANCHOR, "kvm_arch_gmem_make_private");
const ALIGN_CHECK: Mark = Mark::Any(&[
    Mark::Calls(ANCHOR, "PAGE_ALIGNED"),
    Mark::Calls(ANCHOR, "IS_ALIGNED"),
    Mark::Calls(ANCHOR, "kvm_gmem_is_valid_size"),
]);
const FAULT_BIT: Mark = Mark::PathNames(MMU_FILES, "PFERR_PRIVATE_ACCESS");
const SNP_V10_LEVEL: Mark = Mark::PathDefines(SEV, "sev_gmem_max_level");
const SNP_V10_ONLY: Mark = Mark::Not(&Mark::PathDefines(SEV, "sev_private_max_mapping_level"));

/// Every known shape, per operation in the order they are tried.
pub const SHAPES: &[Shape] = &[
    // ---- invalidate -------------------------------------------------
    Shape {
        ops: INV,
        id: "invalidate-in-place",
        anchor: Some("__kvm_gmem_invalidate_start"),
        marks: &[IN_PLACE, NOT_UNMAP_2023],
        profile: Some(Profile::Upstream),
        functions: Some(&[
            (GMEMFD, "__kvm_gmem_invalidate_start"),
            (GMEMFD, "__kvm_gmem_invalidate_end"),
        ]),
        defines: &["GMF_GMEM_PER_INODE", "GMF_GMEM_INVALIDATE_START"],
        evidence: "{file}: __kvm_gmem_invalidate_start(f, start, end, attr_filter) per file \
                   with kvm_mmu_invalidate_start() (in-place conversion series, 2026), \
                   kvm_mmu_unmap_gfn_range()",
        gap: Gap::Part(
            "kvm_arch_gmem_invalidate_range(), the per-range arch hook: called, not modelled \
             (the shim records nothing for it)",
        ),
        fixture: "in-place-2026",
    },
    Shape {
        ops: INV,
        id: "invalidate-per-file",
        anchor: Some("__kvm_gmem_invalidate_begin"),
        marks: &[PER_FILE, NOT_UNMAP_2023],
        profile: Some(Profile::Upstream),
        functions: Some(&[
            (GMEMFD, "__kvm_gmem_invalidate_begin"),
            (GMEMFD, "__kvm_gmem_invalidate_end"),
        ]),
        defines: &["GMF_GMEM_PER_INODE"],
        evidence: "{file}: __kvm_gmem_invalidate_begin(f, ...) per file (6.18+), \
                   kvm_mmu_unmap_gfn_range()",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
    Shape {
        ops: INV,
        id: "invalidate-upstream",
        anchor: Some("kvm_gmem_invalidate_begin"),
        marks: &[
            Mark::Defines("kvm_gmem_invalidate_begin"),
            Mark::Not(&PER_FILE),
            Mark::Not(&IN_PLACE),
            NOT_UNMAP_2023,
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_invalidate_begin(gmem, start, end), \
                   kvm_mmu_unmap_gfn_range() (gmem v10+, 6.8–6.17)",
        gap: Gap::None,
        fixture: "upstream-6.8",
    },
    Shape {
        ops: INV,
        id: "invalidate-2023",
        anchor: Some("kvm_gmem_invalidate_begin"),
        marks: &[
            Mark::Defines("kvm_gmem_invalidate_begin"),
            Mark::Not(&PER_FILE),
            UNMAP_2023,
        ],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_invalidate_begin(kvm, gmem, start, end), \
                   kvm_unmap_gfn_range() after its own kvm_mmu_invalidate_range_add() (2023)",
        gap: Gap::None,
        fixture: "gmem-solo-2023",
    },
    // ---- punch-hole: the invalidation of the same file --------------
    Shape {
        ops: PUNCH,
        id: "punch-hole-in-place",
        anchor: Some("kvm_gmem_punch_hole"),
        marks: &[Mark::Defines("kvm_gmem_punch_hole"), IN_PLACE],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &["GMF_GMEM_PER_INODE", "GMF_GMEM_INVALIDATE_START"],
        evidence: "{file}: kvm_gmem_punch_hole() through kvm_gmem_invalidate_start() (in-place \
                   conversion series, 2026); folios freed through kvm_arch_gmem_reclaim()",
        gap: Gap::Whole(
            "the folio-free hook is kvm_arch_gmem_reclaim() under \
             CONFIG_HAVE_KVM_ARCH_GMEM_RECLAIM, whose RMP effect the model does not cover yet: \
             punch-hole is not reviewed for this shape",
        ),
        fixture: "in-place-2026",
    },
    Shape {
        ops: PUNCH,
        id: "punch-hole-upstream",
        anchor: Some("kvm_gmem_punch_hole"),
        marks: &[
            Mark::Defines("kvm_gmem_punch_hole"),
            Mark::Not(&IN_PLACE),
            NOT_UNMAP_2023,
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_punch_hole()",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
    Shape {
        ops: PUNCH,
        id: "punch-hole-2023",
        anchor: Some("kvm_gmem_punch_hole"),
        marks: &[Mark::Defines("kvm_gmem_punch_hole"), UNMAP_2023],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_punch_hole(), the 2023 invalidation",
        gap: Gap::None,
        fixture: "gmem-solo-2023",
    },
    // ---- bind ---------------------------------------------------------
    Shape {
        ops: BIND,
        id: "bind-prepare-commit",
        anchor: Some("kvm_gmem_prepare_memory_region"),
        marks: &[Mark::Defines("kvm_gmem_prepare_memory_region"), SPLIT_BIND],
        profile: Some(Profile::Upstream),
        functions: Some(&[
            (GMEMFD, "kvm_gmem_prepare_memory_region"),
            (GMEMFD, "kvm_gmem_commit_memory_region"),
        ]),
        defines: &[],
        evidence: "{file}: kvm_gmem_prepare_memory_region() + kvm_gmem_commit_memory_region(): \
                   bind split in two (7.2 contract, 6.12.118+: a file range bound twice is \
                   -EEXIST)",
        gap: Gap::None,
        fixture: "bind-shapes/split.c",
    },
    Shape {
        ops: BIND,
        id: "bind-one-call",
        anchor: Some("kvm_gmem_bind"),
        marks: &[
            Mark::Defines("kvm_gmem_bind"),
            Mark::Not(&SPLIT_BIND),
            Mark::Names(ANCHOR, "EBADF"),
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_bind(): -EBADF for a bad fd, offset alignment checked (gmem \
                   v12+, 6.8 to 6.12.117 and mainline before 7.2: a file range bound twice is \
                   -EINVAL)",
        gap: Gap::None,
        fixture: "bind-shapes/one-call.c",
    },
    Shape {
        ops: BIND,
        id: "bind-v10",
        anchor: Some("kvm_gmem_bind"),
        marks: &[
            Mark::Defines("kvm_gmem_bind"),
            Mark::Not(&SPLIT_BIND),
            Mark::Not(&Mark::Names(ANCHOR, "EBADF")),
            ALIGN_CHECK,
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_bind(): offset alignment checked but -EINVAL for a bad fd \
                   (gmem v10–v11): reviewed with upstream's errnos",
        gap: Gap::None,
        fixture: "bind-shapes/v10.c",
    },
    Shape {
        ops: BIND,
        id: "bind-2023",
        anchor: Some("kvm_gmem_bind"),
        marks: &[
            Mark::Defines("kvm_gmem_bind"),
            Mark::Not(&SPLIT_BIND),
            Mark::Not(&Mark::Names(ANCHOR, "EBADF")),
            Mark::Not(&ALIGN_CHECK),
        ],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_bind(): -EINVAL for every failure, no alignment check (2023)",
        gap: Gap::None,
        fixture: "gmem-solo-2023",
    },
    // ---- get-pfn ------------------------------------------------------
    Shape {
        ops: GET_PFN,
        id: "get-pfn-in-place",
        anchor: Some("kvm_gmem_get_pfn"),
        marks: &[MAKE_PRIVATE],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &["GMF_GET_PFN_NO_HOOK"],
        evidence: "{file}: kvm_gmem_get_pfn() converts in place: kvm_arch_gmem_make_private() \
                   for private memory instead of the prepare hook (in-place conversion series, \
                   2026); errnos, pfn and order checked",
        gap: Gap::Part(
            "kvm_arch_gmem_make_private() (the in-place conversion hook, at every fault on \
             private memory): not modelled yet, so its calls and RMP effect are not checked",
        ),
        fixture: "in-place-2026",
    },
    Shape {
        ops: GET_PFN,
        id: "get-pfn-every-fault",
        anchor: Some("kvm_gmem_get_pfn"),
        // The memslot form of the hook's caller is mainline's design:
        // held to its contract whether or not the fault path calls it (a
        // fault path that does not diverges).
        marks: &[
            Mark::Defines("kvm_gmem_get_pfn"),
            Mark::Not(&MAKE_PRIVATE),
            Mark::Param("kvm_gmem_prepare_folio", "struct kvm_memory_slot"),
            Mark::Not(&PREPARED_ONCE),
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &["GMF_GET_PFN_EVERY_FAULT"],
        evidence: "{file}: kvm_gmem_get_pfn() prepares at every fault, at the folio's head, with \
                   no prepared-folio state (mainline after 6.18)",
        gap: Gap::None,
        fixture: "get-pfn-shapes/every-fault.c",
    },
    Shape {
        ops: GET_PFN,
        id: "get-pfn-prepared-once",
        anchor: Some("kvm_gmem_get_pfn"),
        marks: &[
            Mark::Defines("kvm_gmem_get_pfn"),
            Mark::Not(&MAKE_PRIVATE),
            PREPARED_ONCE,
        ],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_get_pfn() prepares a folio once (kvm_gmem_mark_prepared, \
                   6.11+)",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
    Shape {
        ops: GET_PFN,
        id: "get-pfn-no-hook",
        anchor: Some("kvm_gmem_get_pfn"),
        marks: &[
            Mark::Defines("kvm_gmem_get_pfn"),
            Mark::InFile(GMEMFD),
            Mark::Not(&MAKE_PRIVATE),
            Mark::Not(&PREPARED_ONCE),
            Mark::Not(&Mark::FileNames("kvm_arch_gmem_prepare")),
            Mark::Not(&Mark::Calls(ANCHOR, "kvm_gmem_prepare_folio")),
            Mark::Not(&Mark::Param(
                "kvm_gmem_prepare_folio",
                "struct kvm_memory_slot",
            )),
        ],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &["GMF_GET_PFN_NO_HOOK"],
        evidence: "{file}: kvm_gmem_get_pfn() with no arch prepare hook (upstream 6.8–6.10: \
                   SEV-SNP host support came in 6.11): errnos, pfn and order checked, no hook \
                   call expected",
        gap: Gap::None,
        fixture: "upstream-6.8",
    },
    Shape {
        ops: GET_PFN,
        id: "get-pfn-2023",
        anchor: Some("kvm_gmem_get_pfn"),
        marks: &[
            Mark::Defines("kvm_gmem_get_pfn"),
            Mark::Not(&MAKE_PRIVATE),
            Mark::Not(&PREPARED_ONCE),
            Mark::Not(&Mark::InFile(GMEMFD)),
        ],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_get_pfn() with no prepared-folio state (2023 and gmem \
                   v10–v14 contract: a hook runs at every lookup, a mismatched binding WARNs)",
        gap: Gap::None,
        fixture: "gmem-solo-2023",
    },
    Shape {
        ops: GET_PFN,
        id: "get-pfn-every-lookup",
        anchor: Some("kvm_gmem_get_pfn"),
        marks: &[
            Mark::Defines("kvm_gmem_get_pfn"),
            Mark::InFile(GMEMFD),
            Mark::Not(&MAKE_PRIVATE),
            Mark::Not(&PREPARED_ONCE),
            Mark::Any(&[
                Mark::FileNames("kvm_arch_gmem_prepare"),
                Mark::Calls(ANCHOR, "kvm_gmem_prepare_folio"),
            ]),
            Mark::Not(&Mark::Param(
                "kvm_gmem_prepare_folio",
                "struct kvm_memory_slot",
            )),
        ],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: kvm_gmem_get_pfn() prepares the faulting page at every lookup through \
                   kvm_gmem_prepare_folio(inode, ...), no prepared-folio state (the 2023 contract)",
        gap: Gap::None,
        fixture: "get-pfn-shapes/every-lookup.c",
    },
    // ---- classify, pre-fault: the x86 MMU's files --------------------
    Shape {
        ops: FAULT,
        id: "fault-private-access",
        anchor: None,
        marks: &[FAULT_BIT],
        profile: Some(Profile::Upstream),
        functions: None,
        defines: &[],
        evidence: "{file}: PFERR_PRIVATE_ACCESS marks private faults (upstream, 2024)",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
    Shape {
        ops: FAULT,
        id: "fault-2023",
        anchor: None,
        marks: &[Mark::PathExists(MMU_FILES), Mark::Not(&FAULT_BIT)],
        profile: Some(Profile::GmemSolo2023),
        functions: None,
        defines: &[],
        evidence: "{file}: no PFERR_PRIVATE_ACCESS: private faults by attribute or mask (2023 \
                   shape)",
        gap: Gap::None,
        fixture: "gmem-solo-2023",
    },
    // ---- prepare, gmem-invalidate: sev.c's hooks ---------------------
    Shape {
        ops: &[COp::Prepare],
        id: "prepare-snp-v10",
        anchor: None,
        marks: &[SNP_V10_LEVEL, SNP_V10_ONLY],
        profile: None,
        functions: Some(&[(SEV, "sev_gmem_prepare"), (SEV, "sev_gmem_max_level")]),
        defines: &["GMF_GMEM_MAX_LEVEL"],
        evidence: "{file}: sev_gmem_max_level(kvm, pfn, gfn, &max_level) through \
                   .gmem_max_level (SNP series v10–v11), asked only after a successful prepare",
        gap: Gap::None,
        fixture: "snp-host-v10",
    },
    Shape {
        ops: &[COp::Prepare],
        id: "prepare-sev",
        anchor: None,
        marks: &[Mark::Any(&[
            Mark::Not(&SNP_V10_LEVEL),
            Mark::PathDefines(SEV, "sev_private_max_mapping_level"),
        ])],
        profile: None,
        functions: None,
        defines: &[],
        evidence: "SEV hooks: sev_gmem_prepare() and the MMU's max private level through \
                   .private_max_mapping_level",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
    Shape {
        ops: &[COp::RmpInvalidate],
        id: "gmem-invalidate-sev",
        anchor: None,
        marks: &[],
        profile: None,
        functions: None,
        defines: &[],
        evidence: "SEV hooks: sev_gmem_invalidate()",
        gap: Gap::None,
        fixture: "upstream-6.18",
    },
];

/// Features on top of a shape.
pub const SWITCHES: &[Switch] = &[
    // The 2023 invalidation took the VM as its first argument.
    Switch {
        ops: INV_PUNCH,
        marks: &[Mark::Any(&[
            Mark::Param("kvm_gmem_invalidate_begin", "struct kvm *"),
            Mark::Param("__kvm_gmem_invalidate_begin", "struct kvm *"),
        ])],
        on: (&["GMF_GMEM_INVALIDATE_TAKES_KVM=1"], ""),
        off: (&["GMF_GMEM_INVALIDATE_TAKES_KVM=0"], ""),
    },
    // 6.12 added attr_filter to struct kvm_gfn_range: before it, the
    // shim's struct has none, so a tree cannot set a filter it lacks.
    Switch {
        ops: INV_PUNCH,
        marks: &[Mark::FileNames(".attr_filter")],
        on: (&[], "attr_filter"),
        off: (&["GMF_GFN_RANGE_NO_ATTR_FILTER"], "no attr_filter"),
    },
    Switch {
        ops: PUNCH,
        marks: &[Mark::Param(ANCHOR, "struct file *")],
        on: (
            &["GMF_PUNCH_HOLE_TAKES_FILE=1"],
            "kvm_gmem_punch_hole(file, ...)",
        ),
        off: (
            &["GMF_PUNCH_HOLE_TAKES_FILE=0"],
            "kvm_gmem_punch_hole(inode, ...)",
        ),
    },
    // 6.18's per-file workers under per-inode wrappers.
    Switch {
        ops: PUNCH,
        marks: &[PER_FILE],
        on: (&["GMF_GMEM_PER_INODE"], "per-file workers"),
        off: (&[], ""),
    },
    Switch {
        ops: INV_PUNCH,
        marks: &[Mark::Any(&[
            Mark::Names("kvm_gmem_invalidate_begin", ".index"),
            Mark::Names("kvm_gmem_invalidate_gfn_start", ".index"),
        ])],
        on: (&[], "slot->gmem.index"),
        off: (&[], ""),
    },
    Switch {
        ops: PUNCH,
        marks: &[Mark::Defines("kvm_gmem_free_folio")],
        on: (&[], "folios freed through kvm_gmem_free_folio()"),
        off: (&[], ""),
    },
    Switch {
        ops: BIND,
        marks: &[Mark::Param(ANCHOR, "uoff_t")],
        on: (&[], "uoff_t offset (mainline)"),
        off: (&[], ""),
    },
    Switch {
        ops: BIND,
        marks: &[Mark::Param(ANCHOR, "loff_t")],
        on: (&[], "loff_t offset"),
        off: (&[], ""),
    },
    Switch {
        ops: GET_PFN,
        marks: &[Mark::FileNames("kvm_arch_gmem_prepare")],
        on: (
            &[],
            "kvm_arch_gmem_prepare() called from it (late-2023 SNP host tree)",
        ),
        off: (&[], ""),
    },
];

/// One function's facts, in the file that defines it.
struct Def {
    file: usize,
    facts: Facts,
}

/// Reads another file of the tree.
pub type Reader<'t> = &'t dyn Fn(&str) -> Option<String>;

/// Facts of each function of a file, by name.
type FileFacts = Vec<(String, Facts)>;

/// The tree's code as marks read it: the guest_memfd files' functions
/// (parsed once each) and, on demand, other files.
pub struct Code<'t> {
    files: Vec<(&'static str, String)>,
    fns: std::collections::HashMap<String, Vec<Def>>,
    other: Reader<'t>,
    other_facts: std::cell::RefCell<std::collections::HashMap<String, Option<FileFacts>>>,
}

impl<'t> Code<'t> {
    /// The guest_memfd files (path, source) and a reader of the others.
    pub fn new(gmem: &[(&'static str, &str)], other: Reader<'t>) -> Code<'t> {
        let mut fns: std::collections::HashMap<String, Vec<Def>> = Default::default();
        let mut files = Vec::new();
        for (k, (path, src)) in gmem.iter().enumerate() {
            let code = cparse::code_only(src);
            for f in cparse::functions(&code).unwrap_or_default() {
                fns.entry(f.name.clone()).or_default().push(Def {
                    file: k,
                    facts: cparse::facts(f.text(&code)),
                });
            }
            // Lost to a brace elsewhere (only then, as `find_recovering()`
            // does): the balanced definitions parsed alone, for the names
            // the whole-file parse did not find.
            let defs = cparse::definitions(&code);
            if defs.iter().any(|d| d.problem.is_some()) {
                for d in defs.iter().filter(|d| d.problem.is_none()) {
                    let text = &code[d.start..d.end];
                    for f in cparse::functions(text).unwrap_or_default() {
                        if !fns
                            .get(&f.name)
                            .is_some_and(|v| v.iter().any(|x| x.file == k))
                        {
                            fns.entry(f.name.clone()).or_default().push(Def {
                                file: k,
                                facts: cparse::facts(f.text(text)),
                            });
                        }
                    }
                }
            }
            files.push((*path, code));
        }
        Code {
            files,
            fns,
            other,
            other_facts: Default::default(),
        }
    }

    /// The one definition of `name` in a guest_memfd file.
    fn get(&self, name: &str) -> Option<&Def> {
        match self.fns.get(name).map(Vec::as_slice) {
            Some([f]) => Some(f),
            _ => None,
        }
    }

    /// The file that defines `name`.
    pub fn file_of(&self, name: &str) -> Option<&'static str> {
        self.get(name).map(|f| self.files[f.file].0)
    }

    fn file_names(&self, file: usize, name: &str) -> bool {
        self.fns
            .values()
            .flatten()
            .any(|f| f.file == file && f.facts.names.contains(name))
    }

    fn other_file(&self, path: &str) -> Option<FileFacts> {
        self.other_facts
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert_with(|| {
                let src = (self.other)(path)?;
                let code = cparse::code_only(&src);
                Some(
                    cparse::functions(&code)
                        .unwrap_or_default()
                        .iter()
                        .map(|f| (f.name.clone(), cparse::facts(f.text(&code))))
                        .collect(),
                )
            })
            .clone()
    }

    /// Whether `mark` holds, with `anchor` for [`ANCHOR`]; the file a
    /// path mark matched goes to `at`.
    pub fn holds(&self, mark: &Mark, anchor: Option<&str>, at: &mut Option<String>) -> bool {
        let name = |n: &'static str| -> Option<String> {
            if n == ANCHOR {
                anchor.map(str::to_owned)
            } else {
                Some(n.to_owned())
            }
        };
        let facts = |n: &'static str| name(n).and_then(|n| self.get(&n).map(|f| &f.facts));
        match *mark {
            Mark::Defines(f) => name(f).is_some_and(|n| self.get(&n).is_some()),
            Mark::Param(f, t) => facts(f).is_some_and(|x| x.param(t)),
            Mark::Calls(f, c) => facts(f).is_some_and(|x| x.calls.contains(c)),
            Mark::Names(f, n) => facts(f).is_some_and(|x| x.names.contains(n)),
            Mark::FileNames(n) => anchor
                .and_then(|a| self.get(a))
                .is_some_and(|f| self.file_names(f.file, n)),
            Mark::InFile(p) => anchor.and_then(|a| self.file_of(a)) == Some(p),
            Mark::PathNames(paths, n) => {
                for p in paths {
                    if self
                        .other_file(p)
                        .is_some_and(|fs| fs.iter().any(|(_, f)| f.names.contains(n)))
                    {
                        *at = Some((*p).to_owned());
                        return true;
                    }
                }
                false
            }
            Mark::PathDefines(p, f) => {
                let hit = self
                    .other_file(p)
                    .is_some_and(|fs| fs.iter().filter(|(n, _)| n == f).count() == 1);
                if hit {
                    *at = Some(p.to_owned());
                }
                hit
            }
            Mark::PathExists(paths) => {
                let have: Vec<&str> = paths
                    .iter()
                    .copied()
                    .filter(|p| self.other_file(p).is_some())
                    .collect();
                if !have.is_empty() {
                    *at = Some(have.join(", "));
                }
                !have.is_empty()
            }
            Mark::Not(m) => !self.holds(m, anchor, &mut None),
            Mark::Any(ms) => ms.iter().any(|m| self.holds(m, anchor, at)),
        }
    }

    /// Whether every mark of `shape` holds; the file the evidence names.
    pub fn selects(&self, shape: &Shape) -> Option<String> {
        let mut at = None;
        shape
            .marks
            .iter()
            .all(|m| self.holds(m, shape.anchor, &mut at))
            .then(|| {
                shape
                    .anchor
                    .and_then(|a| self.file_of(a))
                    .map(str::to_owned)
                    .or(at)
                    .unwrap_or_default()
            })
    }
}

/// The shape of `op` this code has: the first that the code selects, with
/// the file its evidence names.
pub fn shape_of(code: &Code<'_>, op: COp) -> Option<(&'static Shape, String)> {
    SHAPES
        .iter()
        .filter(|s| s.ops.contains(&op))
        .find_map(|s| code.selects(s).map(|file| (s, file)))
}

/// Every shape of `op` the code selects (the registry test: at most one).
pub fn all_shapes_of(code: &Code<'_>, op: COp) -> Vec<&'static str> {
    SHAPES
        .iter()
        .filter(|s| s.ops.contains(&op) && code.selects(s).is_some())
        .map(|s| s.id)
        .collect()
}

/// The switches of `op` on `anchor`: defines and words.
pub fn switches(
    code: &Code<'_>,
    op: COp,
    anchor: Option<&str>,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut defines = Vec::new();
    let mut words = Vec::new();
    for s in SWITCHES.iter().filter(|s| s.ops.contains(&op)) {
        let on = s.marks.iter().all(|m| code.holds(m, anchor, &mut None));
        let (d, w) = if on { s.on } else { s.off };
        defines.extend_from_slice(d);
        if !w.is_empty() {
            words.push(w);
        }
    }
    (defines, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(path: &'static str, src: &str, op: COp) -> Option<&'static str> {
        let none = |_: &str| None;
        let code = Code::new(&[(path, src)], &none);
        let all = all_shapes_of(&code, op);
        assert!(all.len() <= 1, "{op:?}: {all:?}");
        shape_of(&code, op).map(|(s, _)| s.id)
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
        assert_eq!(
            shape("virt/kvm/guest_mem.c", v12, COp::Invalidate),
            Some("invalidate-upstream")
        );
        let none = |_: &str| None;
        let code = Code::new(&[("virt/kvm/guest_mem.c", v12)], &none);
        let (defines, _) = switches(&code, COp::Invalidate, Some("kvm_gmem_invalidate_begin"));
        assert!(defines.contains(&"GMF_GFN_RANGE_NO_ATTR_FILTER"));
        assert!(defines.contains(&"GMF_GMEM_INVALIDATE_TAKES_KVM=0"));
        // Mainline's get-pfn with a comment on the state it no longer has.
        let mainline = "static int kvm_gmem_prepare_folio(struct kvm *kvm, struct kvm_memory_slot *slot,\n\
                        \t\tgfn_t gfn, struct folio *folio)\n{\n\treturn 0;\n}\n\
                        int kvm_gmem_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot)\n{\n\
                        \t/* no is_prepared, no kvm_gmem_mark_prepared(): every fault */\n\
                        \treturn kvm_gmem_prepare_folio(kvm, slot, gfn, folio);\n}\n";
        assert_eq!(
            shape("virt/kvm/guest_memfd.c", mainline, COp::GetPfn),
            Some("get-pfn-every-fault")
        );
        // The same with the state in code is 6.11-6.18's shape.
        let marked = mainline.replace(
            "\treturn kvm_gmem_prepare",
            "\tkvm_gmem_mark_prepared(folio);\n\treturn kvm_gmem_prepare",
        );
        assert_eq!(
            shape("virt/kvm/guest_memfd.c", &marked, COp::GetPfn),
            Some("get-pfn-prepared-once")
        );
    }

    #[test]
    fn the_invalidation_shape_comes_from_the_trees_own_code() {
        let none = |_: &str| None;
        let solo = "static void kvm_gmem_invalidate_begin(struct kvm *kvm, struct kvm_gmem *gmem,\n\t\tpgoff_t start, pgoff_t end)\n{\n\tkvm_mmu_invalidate_range_add(kvm, s, e);\n\tflush |= kvm_unmap_gfn_range(kvm, &r);\n}\n";
        assert_eq!(
            shape("virt/kvm/guest_mem.c", solo, COp::Invalidate),
            Some("invalidate-2023")
        );
        let code = Code::new(&[("virt/kvm/guest_mem.c", solo)], &none);
        let (d, _) = switches(&code, COp::Invalidate, Some("kvm_gmem_invalidate_begin"));
        assert!(d.contains(&"GMF_GMEM_INVALIDATE_TAKES_KVM=1"), "{d:?}");
        // 6.12: the filter is set, so the shim's struct has it.
        let u612 = "static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,\n\t\tpgoff_t end)\n{\n\tflush |= kvm_mmu_unmap_gfn_range(kvm, &r);\n\tr.attr_filter = KVM_FILTER_PRIVATE;\n}\n";
        let code = Code::new(&[("virt/kvm/guest_memfd.c", u612)], &none);
        let (d, w) = switches(&code, COp::Invalidate, Some("kvm_gmem_invalidate_begin"));
        assert!(!d.contains(&"GMF_GFN_RANGE_NO_ATTR_FILTER"), "{d:?}");
        assert!(w.contains(&"attr_filter"), "{w:?}");
    }

    #[test]
    fn bind_shapes_are_told_apart_by_their_code() {
        let one = "int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,\n\
                   \t\tunsigned int fd, u64 offset)\n{\n\tif (!file)\n\t\treturn -EBADF;\n\
                   \tif (!PAGE_ALIGNED(offset))\n\t\treturn -EINVAL;\n\treturn 0;\n}\n";
        assert_eq!(
            shape("virt/kvm/guest_memfd.c", one, COp::Bind),
            Some("bind-one-call")
        );
        let v10 = one.replace("-EBADF", "-EINVAL");
        assert_eq!(
            shape("virt/kvm/guest_mem.c", &v10, COp::Bind),
            Some("bind-v10")
        );
        let solo = v10.replace("PAGE_ALIGNED(offset)", "offset < 0");
        assert_eq!(
            shape("virt/kvm/guest_mem.c", &solo, COp::Bind),
            Some("bind-2023")
        );
        // The split: a comment naming the old function decides nothing.
        let split = "int kvm_gmem_prepare_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot,\n\
                     \t\tunsigned int fd, uoff_t offset)\n{\n\t/* was kvm_gmem_bind() */\n\treturn 0;\n}\n\
                     int kvm_gmem_commit_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot)\n\
                     {\n\treturn -EEXIST;\n}\n";
        assert_eq!(
            shape("virt/kvm/guest_memfd.c", split, COp::Bind),
            Some("bind-prepare-commit")
        );
        let none = |_: &str| None;
        let code = Code::new(&[("virt/kvm/guest_memfd.c", split)], &none);
        let (_, w) = switches(&code, COp::Bind, Some("kvm_gmem_prepare_memory_region"));
        assert_eq!(w, ["uoff_t offset (mainline)"]);
    }
}
