//! Private memory over its life: fault, conversion, punch hole, release.
//!
//! A small guest_memfd + SNP VM, stepped through what userspace and the guest
//! do, recording every MMU and RMP action with the lock it ran under. It
//! fixes *when* RMP updates happen, the subject of the 2023 thread:
//!
//! - make-private at prepare: on the first fault of a page, from
//!   `kvm_gmem_get_pfn()`, before `mmu_lock` is taken (never a per-fault
//!   hook under `mmu_lock`);
//! - make-shared, by [`SharedPolicy`]: when the folio is freed (punch hole,
//!   file release) — the deferred policy the thread chose and upstream
//!   implemented with `.free_folio` — or already at conversion to shared, for
//!   userspace that never discards memory;
//! - a partial punch of a 2M folio splits it, and the RMP hook PSMASHes the
//!   2M entry before converting 4K pages.
//!
//! [`lock_violations`] checks any trace (the model's, or one recorded from
//! C): an RMP update while `mmu_lock` is held is a violation.

use std::collections::BTreeSet;

use crate::error::InputError;
use crate::invalidate::{AttrFilter, Binding, Bindings, GfnRange, invalidate_ranges};
use crate::kernel::PTRS_PER_PMD;
use crate::last_input::LastInput;
use crate::page_cache::PageCache;
use crate::rmp::{
    HookTrace, Rmp, RmpEvent, RmpOp, RmpRun, RmpTrace, sev_gmem_invalidate, sev_gmem_prepare,
};

/// When private memory goes back to shared in the RMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SharedPolicy {
    /// When the folio is freed (punch hole, release): upstream's choice.
    #[default]
    WhenFreed,
    /// When userspace converts the gfns to shared.
    AtConversion,
}

/// One thing userspace or the guest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Step {
    /// The guest touches `gfn` (private iff its attribute says so).
    Fault {
        /// The gfn.
        gfn: u64,
    },
    /// `KVM_SET_MEMORY_ATTRIBUTES` on gfns `[start, end)`.
    SetAttributes {
        /// First gfn.
        start: u64,
        /// One past the last.
        end: u64,
        /// Private (true) or shared.
        private: bool,
    },
    /// `fallocate(PUNCH_HOLE)` of file pages `[start, end)`.
    PunchHole {
        /// First file page.
        start: u64,
        /// One past the last.
        end: u64,
    },
    /// The last reference to the file goes away.
    Release,
}

/// Input of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Scenario {
    /// Make-shared policy.
    #[cfg_attr(feature = "serde", serde(default))]
    pub policy: SharedPolicy,
    /// The guest's ASID.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub asid: u32,
    /// The file's size in pages.
    pub file_pages: u64,
    /// Host pfn backing file page 0 (pages are contiguous).
    #[cfg_attr(feature = "serde", serde(default))]
    pub pfn_base: u64,
    /// Folio order the file allocates (0 or 9).
    #[cfg_attr(feature = "serde", serde(default))]
    pub folio_order: u32,
    /// The file's bindings.
    pub bindings: Vec<Binding>,
    /// What happens.
    pub steps: Vec<Step>,
}

#[cfg(feature = "serde")]
fn one() -> u32 {
    1
}

/// One recorded action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
pub enum TraceEvent {
    /// `kvm_mmu_invalidate_begin()`.
    InvalidateBegin,
    /// `kvm_mmu_invalidate_end()`.
    InvalidateEnd,
    /// An SPTE zap, always under `mmu_lock`.
    Zap {
        /// The zapped range.
        range: GfnRange,
        /// The filter.
        filter: AttrFilter,
    },
    /// A page mapped into the guest.
    Map {
        /// Gfn.
        gfn: u64,
        /// Pfn (for private faults).
        pfn: Option<u64>,
    },
    /// An RMP hook's update.
    Rmp {
        /// The update.
        #[cfg_attr(feature = "serde", serde(flatten))]
        event: RmpEvent,
    },
    /// A fault that exited to userspace (`KVM_EXIT_MEMORY_FAULT`).
    MemoryFaultExit {
        /// Gfn.
        gfn: u64,
    },
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LifecycleTrace {
    /// Everything, in order.
    pub events: Vec<TraceEvent>,
    /// The RMP at the end.
    pub rmp: Vec<RmpRun>,
    /// Indices into `events` of RMP updates made under `mmu_lock`.
    pub violations: Vec<usize>,
    /// WARNs.
    pub warnings: u32,
}

/// Indices of RMP updates recorded while `mmu_lock` was held.
pub fn lock_violations(events: &[TraceEvent]) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, TraceEvent::Rmp { event } if event.mmu_lock))
        .map(|(i, _)| i)
        .collect()
}

/// Largest scenario the model runs (file pages, steps).
pub const MAX_FILE_PAGES: u64 = 1 << 16;

/// What a [`Vm`] needs of its scenario beyond the bindings (a punch-hole
/// query has no scenario: it makes one of these).
#[derive(Clone, Copy)]
struct Setup {
    policy: SharedPolicy,
    asid: u32,
    file_pages: u64,
    pfn_base: u64,
    folio_order: u32,
}

/// The VM a scenario steps through. Its storage is borrowed, so the
/// checker's punch-hole path runs in a scratch kept from query to query
/// without moving the scratch's tables in and out per query.
struct Vm<'a> {
    s: Setup,
    bindings: &'a Bindings,
    private: &'a mut BTreeSet<u64>,
    /// Allocated folios by first file index, with whether prepared.
    folios: &'a mut PageCache<bool>,
    /// Whether the page cache matters after this step. A lone punch hole
    /// (false) only reads it: nothing is removed or split, so a caller
    /// can lend a page cache it keeps for the next query as it is.
    keep_page_cache: bool,
    rmp: &'a mut Rmp,
    events: &'a mut Vec<TraceEvent>,
    warnings: &'a mut u32,
}

/// The lifecycle's own event list as the invalidate hook's trace: each
/// RMP operation recorded once, where it belongs.
struct Recorder<'a> {
    events: &'a mut Vec<TraceEvent>,
    warnings: &'a mut u32,
}

impl RmpTrace for Recorder<'_> {
    fn record(&mut self, op: RmpOp, mmu_lock: bool, ret: i32) {
        self.events.push(TraceEvent::Rmp {
            event: RmpEvent { op, mmu_lock, ret },
        });
    }

    fn warnings(&mut self) -> &mut u32 {
        self.warnings
    }
}

/// `sev_gmem_invalidate()` over pfns `[start, end)`, outside `mmu_lock`,
/// its updates and WARNs recorded in `events` and `warnings`. A function
/// of the parts it uses, so a caller can run it while it reads the page
/// cache ([`Vm::truncate_lone`]).
fn invalidate_hook(
    rmp: &mut Rmp,
    events: &mut Vec<TraceEvent>,
    warnings: &mut u32,
    start: u64,
    end: u64,
) {
    let mut t = Recorder { events, warnings };
    sev_gmem_invalidate(rmp, start, end, false, &mut t);
}

impl Vm<'_> {
    /// [`invalidate_hook`] on this VM's table and record.
    fn invalidate_hook(&mut self, start: u64, end: u64) {
        invalidate_hook(self.rmp, self.events, self.warnings, start, end);
    }

    fn rmp_hook(&mut self, trace: HookTrace) {
        *self.warnings += trace.warnings;
        self.events.extend(
            trace
                .events
                .into_iter()
                .map(|event| TraceEvent::Rmp { event }),
        );
    }

    fn folio_of(&self, index: u64) -> Option<u64> {
        self.folios.folio_of(index)
    }

    fn fault(&mut self, gfn: u64) {
        let binding = self
            .bindings
            .as_slice()
            .iter()
            .find(|b| gfn >= b.base_gfn && gfn - b.base_gfn < b.npages)
            .copied();
        let private = self.private.contains(&gfn);
        if !private {
            self.events.push(TraceEvent::Map { gfn, pfn: None });
            return;
        }
        let Some(b) = binding else {
            self.events.push(TraceEvent::MemoryFaultExit { gfn });
            return;
        };
        // kvm_gmem_get_pfn(): allocate and prepare before mmu_lock.
        let index = gfn - b.base_gfn + b.pgoff;
        let (start, order, prepared) = match self.folios.holding(index) {
            Some(f) => f,
            None => {
                let order = self.s.folio_order;
                let head = index & !((1u64 << order) - 1);
                let fits = order > 0 && head + (1 << order) <= self.s.file_pages;
                let (start, order) = if fits { (head, order) } else { (index, 0) };
                self.folios.insert(start, order, false);
                (start, order, false)
            }
        };
        let pfn = self.s.pfn_base + index;
        if !prepared {
            let mut t = HookTrace::default();
            let folio_gfn = gfn - (index - start);
            let r = sev_gmem_prepare(
                self.rmp,
                true,
                self.s.asid,
                self.s.pfn_base + start,
                folio_gfn,
                order as i32,
                false,
                &mut t,
            );
            self.rmp_hook(t);
            if r != 0 {
                self.events.push(TraceEvent::MemoryFaultExit { gfn });
                return;
            }
            self.folios.insert(start, order, true);
        }
        self.events.push(TraceEvent::Map {
            gfn,
            pfn: Some(pfn),
        });
    }

    fn zap(&mut self, ranges: Vec<GfnRange>, filter: AttrFilter) {
        if ranges.is_empty() {
            return;
        }
        self.events.push(TraceEvent::InvalidateBegin);
        for range in ranges {
            self.events.push(TraceEvent::Zap { range, filter });
        }
    }

    /// Frees folio `start`, running the invalidate hook outside `mmu_lock`.
    /// `kvm_gmem_free_folio()`: every freed folio goes to the invalidate
    /// hook (6.12 does not look at whether it was prepared; the hook skips
    /// pfns the RMP does not have assigned).
    fn free_folio(&mut self, start: u64) {
        if let Some((order, _)) = self.folios.remove(start) {
            let pfn = self.s.pfn_base + start;
            self.invalidate_hook(pfn, pfn + (1 << order));
        }
    }

    fn truncate(&mut self, start: u64, end: u64) {
        if !self.keep_page_cache {
            return self.truncate_lone(start, end);
        }
        // The folios touching [start, end), in index order: the one holding
        // `start`, then each that begins before `end` (pieces a split
        // leaves behind lie before the next `from`, so are not revisited).
        let mut from = self.folio_of(start).unwrap_or(start);
        while from < end
            && let Some((f, order, prepared)) = self.folios.first_in(from, end)
        {
            from = f + (1 << order);
            if f >= start && f + (1 << order) <= end {
                self.free_folio(f);
                continue;
            }
            // Partly covered large folio: split, then free the covered pages
            // (each its own 4K folio, in index order).
            self.folios.remove(f);
            let (lo, hi) = (f.max(start), (f + (1 << order)).min(end));
            if self.keep_page_cache {
                for i in (f..lo).chain(hi..f + (1 << order)) {
                    self.folios.insert(i, 0, prepared);
                }
            }
            // One hook call per freed 4K page; run as one call over the
            // pages, which is the same: fewer than 512 pages never allow a
            // 2M update, so each pfn is looked up, PSMASHed if its region
            // is 2M, and made shared 4K, in order, either way.
            let pfn = self.s.pfn_base + lo;
            self.invalidate_hook(pfn, pfn + (hi - lo));
        }
    }

    /// [`Vm::truncate`] of a lone punch hole, the page cache only read:
    /// each folio touching `[start, end)`, in index order, has the pages
    /// the hole covers freed, as the whole folio or as the 4K pages a
    /// split leaves, which is one hook call over those pages either way.
    fn truncate_lone(&mut self, start: u64, end: u64) {
        for (f, order, _) in self.folios.touching(start, end) {
            let (lo, hi) = (f.max(start), (f + (1 << order)).min(end));
            let pfn = self.s.pfn_base + lo;
            invalidate_hook(self.rmp, self.events, self.warnings, pfn, pfn + (hi - lo));
        }
    }

    fn punch_hole(&mut self, start: u64, end: u64) {
        // zap(), without collecting the ranges first.
        let mut balanced = false;
        for range in invalidate_ranges(self.bindings, start, end) {
            if !balanced {
                self.events.push(TraceEvent::InvalidateBegin);
                balanced = true;
            }
            self.events.push(TraceEvent::Zap {
                range,
                filter: AttrFilter::Private,
            });
        }
        self.truncate(start, end);
        if balanced {
            self.events.push(TraceEvent::InvalidateEnd);
        }
    }

    fn set_attributes(&mut self, start: u64, end: u64, private: bool) {
        let changed: Vec<u64> = (start..end)
            .filter(|g| self.private.contains(g) != private)
            .collect();
        if changed.is_empty() {
            return;
        }
        if !private && self.s.policy == SharedPolicy::AtConversion {
            // Convert before taking mmu_lock, page by page.
            for &gfn in &changed {
                let Some(b) = self
                    .bindings
                    .as_slice()
                    .iter()
                    .find(|b| gfn >= b.base_gfn && gfn - b.base_gfn < b.npages)
                    .copied()
                else {
                    continue;
                };
                let index = gfn - b.base_gfn + b.pgoff;
                if let Some(f) = self.folio_of(index)
                    && self.folios.get(f).is_some_and(|(_, prepared)| prepared)
                {
                    let pfn = self.s.pfn_base + index;
                    self.invalidate_hook(pfn, pfn + 1);
                    // The page must be prepared again before it is private.
                    let (order, _) = self.folios.remove(f).unwrap_or((0, false));
                    for i in f..f + (1u64 << order) {
                        self.folios.insert(i, 0, i != index && order > 0);
                    }
                }
            }
        }
        // kvm_vm_set_mem_attributes(): zap the gfns' old mappings under mmu_lock.
        let filter = if private {
            AttrFilter::Shared
        } else {
            AttrFilter::Private
        };
        let mut ranges = Vec::new();
        for b in self.bindings.as_slice() {
            let s = start.max(b.base_gfn);
            let e = end.min(b.base_gfn + b.npages);
            if s < e {
                ranges.push(GfnRange {
                    slot: b.id,
                    start: s,
                    end: e,
                    attr_filter: filter,
                });
            }
        }
        let any = !ranges.is_empty();
        self.zap(ranges, filter);
        if any {
            self.events.push(TraceEvent::InvalidateEnd);
        }
        for g in changed {
            if private {
                self.private.insert(g);
            } else {
                self.private.remove(&g);
            }
        }
    }

    fn release(&mut self) {
        let ranges: Vec<GfnRange> = invalidate_ranges(self.bindings, 0, u64::MAX).collect();
        let any = !ranges.is_empty();
        self.zap(ranges, AttrFilter::Private);
        if any {
            self.events.push(TraceEvent::InvalidateEnd);
        }
        let all: Vec<u64> = self.folios.starts().collect();
        for f in all {
            self.free_folio(f);
        }
    }
}

/// A folio in the file's page cache: file pages `[index, index + 2^order)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Folio {
    /// First file page (2^order aligned).
    pub index: u64,
    /// 0 (4K) or 9 (2M).
    #[cfg_attr(feature = "serde", serde(default))]
    pub order: u32,
}

/// Largest number of folios a punch-hole query holds.
pub const MAX_FOLIOS: usize = 1 << 12;

/// What [`punch_hole_with`] answers in, reused from one query to the next
/// (the checker runs millions): the table, the event list and the
/// storage behind them keep their capacity.
#[derive(Debug, Default)]
pub struct PunchScratch {
    /// The RMP: loaded by the caller before the call, the table after it.
    pub rmp: Rmp,
    /// Everything, in order.
    pub events: Vec<TraceEvent>,
    /// WARNs.
    pub warnings: u32,
    bindings: Bindings,
    /// The VM's private gfns: a punch hole never reads or writes them.
    private: BTreeSet<u64>,
    /// The page cache of the last folios given, lent to the VM as it is.
    folio_loader: FolioLoader,
    /// Loads `rmp` from a query's runs (the same runs again by a copy).
    pub(crate) loader: crate::rmp::RmpLoader,
}

/// `kvm_gmem_punch_hole()` on a file whose page cache holds `folios`
/// backed by pfns `pfn_base + index`, with `rmp` as the RMP before: the
/// zaps, the RMP operations of the freed folios, their lock context.
/// `start`/`end` are file pages; `kvm_gmem_fallocate()` has already
/// checked alignment.
pub fn punch_hole(
    bindings: &[Binding],
    pfn_base: u64,
    folios: &[Folio],
    rmp: Rmp,
    start: u64,
    end: u64,
) -> Result<LifecycleTrace, InputError> {
    let mut sc = PunchScratch {
        rmp,
        ..PunchScratch::default()
    };
    punch_hole_with(&mut sc, bindings, pfn_base, folios, start, end)?;
    Ok(LifecycleTrace {
        rmp: sc.rmp.runs(),
        violations: lock_violations(&sc.events),
        warnings: sc.warnings,
        events: sc.events,
    })
}

/// [`punch_hole`] in `sc`, whose `rmp` holds the RMP before; the answer
/// is `sc`'s `events`, `warnings` and `rmp` (after). On an error `sc`'s
/// table is left unspecified (load it again).
pub fn punch_hole_with(
    sc: &mut PunchScratch,
    bindings: &[Binding],
    pfn_base: u64,
    folios: &[Folio],
    start: u64,
    end: u64,
) -> Result<(), InputError> {
    if start >= end {
        return Err(InputError::new(
            "len",
            "an empty hole: fallocate() refuses it first",
        ));
    }
    if folios.len() > MAX_FOLIOS {
        return Err(InputError::new(
            "folios",
            format!("at most {MAX_FOLIOS} folios"),
        ));
    }
    sc.bindings.load(bindings)?;
    sc.events.clear();
    sc.warnings = 0;
    let page_cache = sc.folio_loader.load(pfn_base, folios)?;
    Vm {
        s: Setup {
            policy: SharedPolicy::WhenFreed,
            asid: 0,
            file_pages: 0,
            pfn_base,
            folio_order: 0,
        },
        bindings: &sc.bindings,
        private: &mut sc.private,
        folios: page_cache,
        keep_page_cache: false,
        rmp: &mut sc.rmp,
        events: &mut sc.events,
        warnings: &mut sc.warnings,
    }
    .punch_hole(start, end);
    Ok(())
}

/// The page cache of a punch-hole query's folios, checked, for a caller
/// that asks for the same folios many times in a row (the exhaustive
/// bound keeps one page cache for dozens of holes): the folios last
/// loaded and the page cache they gave are kept, and the same folios
/// again are that page cache, neither checked nor copied (a lone punch
/// hole only reads it).
#[derive(Debug, Default)]
struct FolioLoader {
    /// The folios and pfn base `cache` was made from.
    input: LastInput<Folio, u64>,
    cache: PageCache<bool>,
}

impl FolioLoader {
    /// The page cache of `folios` (every folio prepared), or the error
    /// [`load_folios`] gives.
    fn load(
        &mut self,
        pfn_base: u64,
        folios: &[Folio],
    ) -> Result<&mut PageCache<bool>, InputError> {
        if !self.input.is(folios, pfn_base) {
            // Rebuilt in place: a refused input leaves nothing held.
            self.input.forget();
            self.cache.clear();
            load_folios(&mut self.cache, pfn_base, folios)?;
            self.input.set(folios, pfn_base);
        }
        Ok(&mut self.cache)
    }
}

/// The page cache of a punch-hole query, checked: every folio prepared.
fn load_folios(
    cache: &mut PageCache<bool>,
    pfn_base: u64,
    folios: &[Folio],
) -> Result<(), InputError> {
    for (i, f) in folios.iter().enumerate() {
        let n = 1u64 << f.order.min(63);
        let fits = pfn_base
            .checked_add(f.index)
            .and_then(|p| p.checked_add(n))
            .is_some();
        if (f.order != 0 && f.order != 9) || f.index % n != 0 || !fits {
            return Err(InputError::new(
                format!("folios[{i}]"),
                "order 0 or 9, index aligned to it, pfns in range",
            ));
        }
        if !cache.add(f.index, f.order, true) {
            return Err(InputError::new(
                format!("folios[{i}]"),
                "overlaps another folio",
            ));
        }
    }
    Ok(())
}

/// Runs a scenario.
pub fn run(s: &Scenario) -> Result<LifecycleTrace, InputError> {
    if s.file_pages == 0 || s.file_pages > MAX_FILE_PAGES {
        return Err(InputError::new(
            "file_pages",
            format!("1 to {MAX_FILE_PAGES} pages"),
        ));
    }
    if s.folio_order != 0 && s.folio_order != 9 {
        return Err(InputError::new("folio_order", "0 (4K) or 9 (2M)"));
    }
    let bindings = Bindings::new(&s.bindings)?;
    for (i, b) in s.bindings.iter().enumerate() {
        if b.pgoff + b.npages > s.file_pages || b.base_gfn.checked_add(b.npages).is_none() {
            return Err(InputError::new(
                format!("bindings[{i}]"),
                "binding ends past the file or wraps",
            ));
        }
    }
    let Some(pfn_end) = s.pfn_base.checked_add(s.file_pages) else {
        return Err(InputError::new("pfn_base", "pfns wrap"));
    };
    if s.folio_order > 0 && s.pfn_base % PTRS_PER_PMD != 0 {
        return Err(InputError::new(
            "pfn_base",
            "2M folios need a 2M-aligned pfn_base",
        ));
    }
    for (i, st) in s.steps.iter().enumerate() {
        if let Step::SetAttributes { start, end, .. } | Step::PunchHole { start, end } = *st
            && (start >= end || end - start > MAX_FILE_PAGES)
        {
            return Err(InputError::new(
                format!("steps[{i}]"),
                format!("range 1 to {MAX_FILE_PAGES} pages"),
            ));
        }
    }
    let max_pfn = pfn_end.div_ceil(PTRS_PER_PMD).saturating_mul(PTRS_PER_PMD);
    let (mut private, mut folios) = (BTreeSet::new(), PageCache::default());
    let (mut rmp, mut events, mut warnings) = (Rmp::new(true, max_pfn), Vec::new(), 0);
    let mut vm = Vm {
        s: Setup {
            policy: s.policy,
            asid: s.asid,
            file_pages: s.file_pages,
            pfn_base: s.pfn_base,
            folio_order: s.folio_order,
        },
        bindings: &bindings,
        private: &mut private,
        folios: &mut folios,
        keep_page_cache: true,
        rmp: &mut rmp,
        events: &mut events,
        warnings: &mut warnings,
    };
    for st in &s.steps {
        match *st {
            Step::Fault { gfn } => vm.fault(gfn),
            Step::SetAttributes {
                start,
                end,
                private,
            } => vm.set_attributes(start, end, private),
            Step::PunchHole { start, end } => vm.punch_hole(start, end),
            Step::Release => vm.release(),
        }
    }
    Ok(LifecycleTrace {
        rmp: rmp.runs(),
        violations: lock_violations(&events),
        warnings,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rmp::{RmpOp, sev_gmem_prepare};

    fn scenario(policy: SharedPolicy, steps: Vec<Step>) -> Scenario {
        Scenario {
            policy,
            asid: 1,
            file_pages: 1024,
            pfn_base: 0x1000,
            folio_order: 9,
            bindings: vec![Binding {
                id: 0,
                base_gfn: 0x800,
                npages: 1024,
                pgoff: 0,
            }],
            steps,
        }
    }

    #[test]
    fn a_reused_punch_scratch_answers_as_a_fresh_one() {
        // The scratch keeps the last bindings, page cache and RMP input
        // to copy them when asked again: every answer, in any order of
        // queries (the same again, another, a refused one), must be what
        // a fresh punch hole gives.
        use crate::ops::{PunchQuery, punch_hole, punch_hole_with};
        let b = |id, base_gfn, npages, pgoff| Binding {
            id,
            base_gfn,
            npages,
            pgoff,
        };
        let prepared = |index: u64, order: u32| RmpRun {
            pfn: 0x200 + index,
            npages: 1 << order,
            size: if order == 9 {
                crate::rmp::PageSize::M2
            } else {
                crate::rmp::PageSize::K4
            },
            asid: 1,
            gpa: index << 12,
            immutable: false,
            validated: false,
        };
        let big = PunchQuery {
            bindings: vec![b(0, 0x800, 1024, 0)],
            pfn_base: 0x200,
            rmp: vec![prepared(0, 9)],
            folios: vec![Folio { index: 0, order: 9 }],
            offset: 0x1000,
            len: 0x3000,
            max_pfn: 4096,
        };
        let small = PunchQuery {
            bindings: vec![b(1, 0x4000, 8, 520), b(0, 0x800, 300, 0)],
            rmp: vec![prepared(1, 0), prepared(3, 0)],
            folios: vec![Folio { index: 1, order: 0 }, Folio { index: 3, order: 0 }],
            offset: 0,
            len: 0x4000,
            ..big.clone()
        };
        let moved = PunchQuery {
            pfn_base: 0x400,
            rmp: vec![RmpRun {
                pfn: 0x400,
                ..prepared(0, 9)
            }],
            ..big.clone()
        };
        let overlapping = PunchQuery {
            folios: vec![Folio { index: 0, order: 9 }, Folio { index: 3, order: 0 }],
            ..big.clone()
        };
        // Refused at its second folio, after the first is in the page
        // cache: `big` right after must not get that half-made cache
        // (its hole would free nothing).
        let doubled = PunchQuery {
            folios: vec![Folio { index: 0, order: 0 }, Folio { index: 0, order: 0 }],
            ..big.clone()
        };
        // Folios whose pfns would pass 2^64: refused for this base alone.
        let far = PunchQuery {
            pfn_base: u64::MAX - 2,
            rmp: Vec::new(),
            ..small.clone()
        };
        let clashing = PunchQuery {
            bindings: vec![b(0, 0x800, 8, 0), b(0, 0x900, 8, 8)],
            ..small.clone()
        };
        let mut sc = PunchScratch::default();
        for q in [
            &big,
            &big,
            &doubled,
            &big,
            &small,
            &small,
            &overlapping,
            &small,
            &clashing,
            &small,
            &far,
            &moved,
            &big,
        ] {
            let fresh = punch_hole(q);
            let reused = punch_hole_with(&mut sc, q)
                .map(|()| (sc.events.clone(), sc.rmp.runs(), sc.warnings));
            let fresh = fresh.map(|t| (t.events, t.rmp, t.warnings));
            assert_eq!(reused, fresh, "{q:?}");
        }
    }

    fn rmp_ops(t: &LifecycleTrace) -> Vec<RmpOp> {
        t.events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Rmp { event } => Some(event.op),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn deferred_policy_converts_at_punch_hole_with_psmash() {
        let t = run(&scenario(
            SharedPolicy::WhenFreed,
            vec![
                Step::SetAttributes {
                    start: 0x800,
                    end: 0xa00,
                    private: true,
                },
                Step::Fault { gfn: 0x801 },
                Step::SetAttributes {
                    start: 0x800,
                    end: 0x801,
                    private: false,
                },
                Step::PunchHole { start: 0, end: 1 },
            ],
        ))
        .expect("valid");
        let ops = rmp_ops(&t);
        assert!(matches!(
            ops[0],
            RmpOp::MakePrivate {
                pfn: 0x1000,
                level: 2,
                ..
            }
        ));
        // Conversion alone changes nothing in the RMP; the punch does.
        assert!(matches!(ops[1], RmpOp::Psmash { pfn: 0x1000 }));
        assert!(matches!(
            ops[2],
            RmpOp::MakeShared {
                pfn: 0x1000,
                level: 1
            }
        ));
        assert_eq!(ops.len(), 3);
        assert!(t.violations.is_empty());
    }

    #[test]
    fn punch_hole_from_a_page_cache() {
        let mut rmp = Rmp::new(true, 0x2000);
        let mut t = HookTrace::default();
        sev_gmem_prepare(&mut rmp, true, 1, 0x1000, 0x800, 9, false, &mut t);
        sev_gmem_prepare(&mut rmp, true, 1, 0x1258, 0xa58, 0, false, &mut t);
        let b = [Binding {
            id: 0,
            base_gfn: 0x800,
            npages: 1024,
            pgoff: 0,
        }];
        let folios = [
            Folio { index: 0, order: 9 },
            Folio {
                index: 600,
                order: 0,
            },
        ];
        let t = punch_hole(&b, 0x1000, &folios, rmp, 0, 1).expect("valid");
        let kinds: Vec<String> = t.events.iter().map(|e| format!("{e:?}")).collect();
        assert!(
            matches!(t.events[0], TraceEvent::InvalidateBegin),
            "{kinds:?}"
        );
        assert!(matches!(
            t.events[1],
            TraceEvent::Zap {
                range: GfnRange {
                    start: 0x800,
                    end: 0x801,
                    ..
                },
                ..
            }
        ));
        assert!(
            matches!(t.events[2], TraceEvent::Rmp { event } if matches!(event.op, RmpOp::Psmash { pfn: 0x1000 }))
        );
        assert!(
            matches!(t.events[3], TraceEvent::Rmp { event } if matches!(event.op, RmpOp::MakeShared { pfn: 0x1000, level: 1 }))
        );
        assert!(matches!(t.events[4], TraceEvent::InvalidateEnd));
        assert_eq!(t.events.len(), 5);
        assert!(t.violations.is_empty());
    }

    #[test]
    fn conversion_policy_converts_before_the_zap() {
        let t = run(&scenario(
            SharedPolicy::AtConversion,
            vec![
                Step::SetAttributes {
                    start: 0x800,
                    end: 0xa00,
                    private: true,
                },
                Step::Fault { gfn: 0x801 },
                Step::SetAttributes {
                    start: 0x800,
                    end: 0x801,
                    private: false,
                },
            ],
        ))
        .expect("valid");
        assert_eq!(rmp_ops(&t).len(), 3);
        let first_rmp_after_fault = t
            .events
            .iter()
            .rposition(|e| matches!(e, TraceEvent::Rmp { .. }))
            .unwrap();
        let last_begin = t
            .events
            .iter()
            .rposition(|e| matches!(e, TraceEvent::InvalidateBegin))
            .unwrap();
        assert!(first_rmp_after_fault < last_begin);
        assert!(t.violations.is_empty());
    }
}
