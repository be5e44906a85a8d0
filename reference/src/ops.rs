//! The model's operations as whole queries: one input type and one output
//! type per operation, as `gmemforge model <op>` and the shared test vectors
//! (`tests/vectors/<op>.json`) spell them.
//!
//! Only plain data here; JSON text is parsed by the callers.

use crate::binding::{BindInput, BindOutcome, kvm_gmem_bind};
use crate::error::InputError;
use crate::fallocate::{FallocateInput, FallocateOutcome, kvm_gmem_fallocate};
use crate::fault::{FaultDecision, FaultInput, classify_fault};
use crate::invalidate::{Binding, Bindings, Invalidation, kvm_gmem_invalidate};
use crate::kernel::{PAGE_SHIFT, PAGE_SIZE};
use crate::lifecycle::{Folio, LifecycleTrace, Scenario};
use crate::prefault::{PreFaultInput, PreFaultOutcome, kvm_vcpu_pre_fault_memory};
use crate::rmp::{
    HookTrace, Rmp, RmpEvent, RmpRun, sev_gmem_invalidate, sev_gmem_prepare,
    sev_private_max_mapping_level,
};

/// `invalidate` input (format in README, "The model as a JSON filter").
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct InvalidateQuery {
    /// The file's bindings.
    pub slots: Vec<Binding>,
    /// First file page.
    pub start: u64,
    /// One past the last file page (`u64::MAX` = the release path's -1ul).
    pub end: u64,
}

/// Default RMP size for queries: large enough for any realistic pfn.
pub const DEFAULT_MAX_PFN: u64 = 1 << 40;

#[cfg(feature = "serde")]
fn default_max_pfn() -> u64 {
    DEFAULT_MAX_PFN
}
#[cfg(feature = "serde")]
fn yes() -> bool {
    true
}
#[cfg(feature = "serde")]
fn one() -> u32 {
    1
}

/// `prepare` input: `sev_gmem_prepare()` then the max-level hook.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PrepareQuery {
    /// `sev_snp_guest(kvm)`.
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub snp_guest: bool,
    /// `cc_platform_has(CC_ATTR_HOST_SEV_SNP)`.
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub snp_enabled: bool,
    /// The guest's ASID.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub asid: u32,
    /// Host pfn.
    pub pfn: u64,
    /// Guest frame.
    pub gfn: u64,
    /// The folio's order.
    pub max_order: i32,
    /// RMP table size in pfns.
    #[cfg_attr(feature = "serde", serde(default = "default_max_pfn"))]
    pub max_pfn: u64,
    /// Assigned RMP entries before the call.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rmp: Vec<RmpRun>,
}

/// `prepare` output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PrepareAnswer {
    /// `sev_gmem_prepare()`'s return.
    pub ret: i32,
    /// `sev_private_max_mapping_level()` on the pfn afterwards.
    pub max_level: i32,
    /// Assigned RMP entries after.
    pub rmp: Vec<RmpRun>,
    /// RMP operations.
    pub events: Vec<RmpEvent>,
    /// WARNs.
    pub warnings: u32,
}

/// `gmem-invalidate` input: `sev_gmem_invalidate(start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct RmpInvalidateQuery {
    /// `cc_platform_has(CC_ATTR_HOST_SEV_SNP)`.
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub snp_enabled: bool,
    /// First pfn.
    pub start: u64,
    /// One past the last pfn.
    pub end: u64,
    /// RMP table size in pfns.
    #[cfg_attr(feature = "serde", serde(default = "default_max_pfn"))]
    pub max_pfn: u64,
    /// Assigned RMP entries before the call.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rmp: Vec<RmpRun>,
}

/// `gmem-invalidate` output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RmpInvalidateAnswer {
    /// Assigned RMP entries after.
    pub rmp: Vec<RmpRun>,
    /// RMP operations.
    pub events: Vec<RmpEvent>,
    /// WARNs.
    pub warnings: u32,
}

/// `punch-hole` input: `kvm_gmem_punch_hole()` on a file with folios.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PunchQuery {
    /// The file's bindings.
    pub bindings: Vec<Binding>,
    /// Pfn of file page 0 (pages are contiguous).
    pub pfn_base: u64,
    /// The page cache.
    #[cfg_attr(feature = "serde", serde(default))]
    pub folios: Vec<Folio>,
    /// Byte offset of the hole (page aligned).
    pub offset: i64,
    /// Length in bytes (page aligned, > 0).
    pub len: i64,
    /// RMP table size in pfns.
    #[cfg_attr(feature = "serde", serde(default = "default_max_pfn"))]
    pub max_pfn: u64,
    /// Assigned RMP entries before.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rmp: Vec<RmpRun>,
}

/// `punch-hole`.
pub fn punch_hole(q: &PunchQuery) -> Result<LifecycleTrace, InputError> {
    let (start, end) = punch_range(q)?;
    let rmp = Rmp::from_runs(true, q.max_pfn, &q.rmp)?;
    crate::lifecycle::punch_hole(&q.bindings, q.pfn_base, &q.folios, rmp, start, end)
}

/// [`punch_hole`] into storage reused from query to query (the checker's
/// hot path): the answer is `sc`'s `events`, `warnings` and `rmp` after.
pub fn punch_hole_with(
    sc: &mut crate::lifecycle::PunchScratch,
    q: &PunchQuery,
) -> Result<(), InputError> {
    let (start, end) = punch_range(q)?;
    sc.loader.load(&mut sc.rmp, true, q.max_pfn, &q.rmp)?;
    crate::lifecycle::punch_hole_with(sc, &q.bindings, q.pfn_base, &q.folios, start, end)
}

/// The hole in file pages, as `kvm_gmem_fallocate()` lets it through.
fn punch_range(q: &PunchQuery) -> Result<(u64, u64), InputError> {
    let aligned = |v: i64| (v as u64) & (PAGE_SIZE - 1) == 0;
    if q.offset < 0 || !aligned(q.offset) {
        return Err(InputError::new(
            "offset",
            "kvm_gmem_fallocate() passes only page-aligned, non-negative offsets",
        ));
    }
    if q.len <= 0 || !aligned(q.len) || q.offset.checked_add(q.len).is_none() {
        return Err(InputError::new(
            "len",
            "kvm_gmem_fallocate() passes only page-aligned lengths > 0 that do not wrap",
        ));
    }
    let start = (q.offset as u64) >> PAGE_SHIFT;
    let end = ((q.offset + q.len) as u64) >> PAGE_SHIFT;
    Ok((start, end))
}

/// Largest pfn range `gmem-invalidate` walks (the kernel walks one folio).
pub const MAX_RMP_INVALIDATE_PFNS: u64 = 1 << 20;

/// `invalidate`.
pub fn invalidate(q: &InvalidateQuery) -> Result<Invalidation, InputError> {
    kvm_gmem_invalidate(&Bindings::new(&q.slots)?, q.start, q.end)
}

/// `classify`.
pub fn classify(q: &FaultInput) -> FaultDecision {
    classify_fault(q)
}

/// `prepare`.
pub fn prepare(q: &PrepareQuery) -> Result<PrepareAnswer, InputError> {
    // kvm_gmem_get_pfn() hands the hook the folio's order: 0 or more.
    if q.max_order < 0 {
        return Err(InputError::new(
            "max_order",
            format!("{} is not a folio order (0 = 4K, 9 = 2M)", q.max_order),
        ));
    }
    let mut rmp = Rmp::from_runs(q.snp_enabled, q.max_pfn, &q.rmp)?;
    let mut t = HookTrace::default();
    let ret = sev_gmem_prepare(
        &mut rmp,
        q.snp_guest,
        q.asid,
        q.pfn,
        q.gfn,
        q.max_order,
        false,
        &mut t,
    );
    let max_level = sev_private_max_mapping_level(&rmp, q.snp_guest, q.pfn, &mut t);
    Ok(PrepareAnswer {
        ret,
        max_level,
        rmp: rmp.runs(),
        events: t.events,
        warnings: t.warnings,
    })
}

/// `gmem-invalidate`.
pub fn rmp_invalidate(q: &RmpInvalidateQuery) -> Result<RmpInvalidateAnswer, InputError> {
    if q.end > q.start && q.end - q.start > MAX_RMP_INVALIDATE_PFNS {
        return Err(InputError::new(
            "end",
            format!("at most {MAX_RMP_INVALIDATE_PFNS} pfns at once"),
        ));
    }
    let mut rmp = Rmp::from_runs(q.snp_enabled, q.max_pfn, &q.rmp)?;
    let mut t = HookTrace::default();
    sev_gmem_invalidate(&mut rmp, q.start, q.end, false, &mut t);
    Ok(RmpInvalidateAnswer {
        rmp: rmp.runs(),
        events: t.events,
        warnings: t.warnings,
    })
}

/// `pre-fault`.
pub fn pre_fault(q: &PreFaultInput) -> Result<PreFaultOutcome, InputError> {
    kvm_vcpu_pre_fault_memory(q)
}

/// `bind`.
pub fn bind(q: &BindInput) -> Result<BindOutcome, InputError> {
    kvm_gmem_bind(q)
}

/// `fallocate`.
pub fn fallocate(q: &FallocateInput) -> FallocateOutcome {
    kvm_gmem_fallocate(q)
}

/// `lifecycle`.
pub fn lifecycle(q: &Scenario) -> Result<LifecycleTrace, InputError> {
    crate::lifecycle::run(q)
}

/// `get-pfn` input: `kvm_gmem_get_pfn()` once per fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct GetPfnQuery {
    /// Generation of the fault path.
    #[cfg_attr(feature = "serde", serde(default))]
    pub profile: crate::Profile,
    /// SNP guest on an SNP host.
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub snp: bool,
    /// The guest's ASID.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub asid: u32,
    /// RMP table size in pfns.
    #[cfg_attr(feature = "serde", serde(default = "default_max_pfn"))]
    pub max_pfn: u64,
    /// Pfns the host has (a new folio past them: -ENOMEM).
    #[cfg_attr(feature = "serde", serde(default = "default_max_pfn"))]
    pub nr_pfns: u64,
    /// The file's bindings.
    pub bindings: Vec<Binding>,
    /// The faulting memslot: an index into `bindings`, or null for a
    /// guest_memfd memslot whose file is gone.
    pub slot: Option<u32>,
    /// Pfn of file page 0.
    pub pfn_base: u64,
    /// The page cache before.
    #[cfg_attr(feature = "serde", serde(default))]
    pub folios: Vec<crate::getpfn::PcFolio>,
    /// gfns faulted, in order.
    pub faults: Vec<u64>,
    /// The RMP before, as runs; absent: each prepared folio's entries as
    /// `sev_gmem_prepare()` left them (one 2M entry for a 2M folio, 4K
    /// entries otherwise), every other page shared.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub rmp: Option<Vec<RmpRun>>,
    /// Upstream's fault path without a prepared-folio state (mainline after
    /// 6.18): the hook at every fault, at the folio's head.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "std::ops::Not::not")
    )]
    pub every_fault: bool,
    /// A generation with no arch prepare hook (upstream 6.8–6.10), or one
    /// whose fault path calls a hook the model does not cover yet (the
    /// in-place conversion series' `kvm_arch_gmem_make_private()`):
    /// nothing prepares, so only errnos, pfns and orders are answered.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "std::ops::Not::not")
    )]
    pub no_hook: bool,
}

/// `get-pfn`.
pub fn get_pfn(q: &GetPfnQuery) -> Result<crate::getpfn::GetPfnTrace, InputError> {
    crate::getpfn::kvm_gmem_get_pfn(&scenario(q))
}

/// [`get_pfn`] into storage reused from query to query (the checker's hot
/// path): the answer is `sc.trace`.
pub fn get_pfn_with(
    sc: &mut crate::getpfn::GetPfnScratch,
    q: &GetPfnQuery,
) -> Result<(), InputError> {
    crate::getpfn::kvm_gmem_get_pfn_with(sc, &scenario(q))
}

fn scenario(q: &GetPfnQuery) -> crate::getpfn::GetPfnScenario<'_> {
    crate::getpfn::GetPfnScenario {
        profile: q.profile,
        snp: q.snp,
        asid: q.asid,
        max_pfn: q.max_pfn,
        nr_pfns: q.nr_pfns,
        bindings: &q.bindings,
        slot: q.slot.map(|s| s as usize),
        pfn_base: q.pfn_base,
        folios: &q.folios,
        faults: &q.faults,
        rmp: q.rmp.as_deref(),
        every_fault: q.every_fault,
        no_hook: q.no_hook,
    }
}
