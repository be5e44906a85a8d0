//! SEV-SNP RMP page state and the guest_memfd hooks that change it.
//!
//! The RMP holds one entry per host pfn: {assigned, page size (4K/2M),
//! immutable, asid, gpa, validated}. A 2M entry lives at the 2M-aligned pfn
//! and is authoritative for all 512 pfns (`__snp_lookup_rmpentry()` reads the
//! level from `pfn & ~511`). The table is sparse here: absent pfns are
//! shared (all-zero entries).
//!
//! Hardware semantics this model fixes (and the checker's shim implements):
//! - RMPUPDATE 4K fails if the pfn's 2M region is a 2M entry;
//!   otherwise it writes that one entry.
//! - RMPUPDATE 2M needs a 2M-aligned pfn; make-private fails if any of the
//!   512 entries is assigned and then assigns all 512 (gpa + i·4K, head
//!   marked 2M); make-shared needs the head to be 2M and clears all 512.
//! - PSMASH needs an assigned 2M head; it leaves 512 4K entries that keep
//!   their assigned/gpa/asid/validated state.
//!
//! Hooks modelled (arch/x86/kvm/svm/sev.c, 6.12): [`sev_gmem_prepare`],
//! [`sev_gmem_invalidate`], [`sev_private_max_mapping_level`]. Every RMP
//! update is an [`RmpEvent`] that records whether `mmu_lock` was held: an
//! update under `mmu_lock` is a violation (RMPUPDATE may sleep and must not
//! nest inside the MMU lock — the 2023 thread's reason for moving it out).

use std::collections::BTreeMap;

use crate::error::InputError;
use crate::kernel::{PAGE_SHIFT, PG_LEVEL_2M, PG_LEVEL_4K, PTRS_PER_PMD, errno};
use crate::last_input::LastInput;
use crate::rules::{max_level_for_order, rmp_use_2m_update};

/// RMPUPDATE / PSMASH failure code the model's hardware returns (FAIL_INPUT).
/// Not `RMPUPDATE_FAIL_OVERLAP` (4) nor `PSMASH_FAIL_INUSE` (3): the kernel
/// retries those forever.
pub const RMP_HW_FAIL: i32 = 1;

/// Page size of an RMP entry.
///
/// Two bytes wide, so that an [`RmpRun`] has no padding and the compiler
/// can read its last word (ASID, size, flags) as one load, which it does on
/// x86-64 ([`RmpRun::words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u16)]
pub enum PageSize {
    /// 4K.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "4K"))]
    K4,
    /// 2M.
    #[cfg_attr(feature = "serde", serde(rename = "2M"))]
    M2,
}

impl PageSize {
    /// The `enum pg_level` value.
    pub fn pg_level(self) -> i32 {
        match self {
            PageSize::K4 => PG_LEVEL_4K,
            PageSize::M2 => PG_LEVEL_2M,
        }
    }

    fn from_level(level: i32) -> PageSize {
        if level == PG_LEVEL_2M {
            PageSize::M2
        } else {
            PageSize::K4
        }
    }
}

/// One RMP entry (`struct rmpentry`, as the model needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RmpEntry {
    /// Assigned to a guest (private).
    pub assigned: bool,
    /// The entry's page size field (only meaningful on a 2M-aligned pfn).
    pub size: PageSize,
    /// Immutable (firmware-owned).
    pub immutable: bool,
    /// Owning ASID.
    pub asid: u32,
    /// Guest physical address.
    pub gpa: u64,
    /// Validated by the guest (PVALIDATE).
    pub validated: bool,
}

/// A run of assigned entries, the JSON form of the table: `npages` 4K
/// entries from `pfn` with gpa increasing by 4K, or one 2M entry.
// Equality compares every field (as four words) and the derived Hash
// hashes every field, so equal runs hash alike.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Copy, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct RmpRun {
    /// First pfn.
    pub pfn: u64,
    /// 4K entries in the run (512 for a 2M entry).
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub npages: u64,
    /// Page size.
    #[cfg_attr(feature = "serde", serde(default))]
    pub size: PageSize,
    /// ASID.
    #[cfg_attr(feature = "serde", serde(default))]
    pub asid: u32,
    /// GPA of the first page.
    #[cfg_attr(feature = "serde", serde(default))]
    pub gpa: u64,
    /// Immutable.
    #[cfg_attr(feature = "serde", serde(default))]
    pub immutable: bool,
    /// Validated.
    #[cfg_attr(feature = "serde", serde(default))]
    pub validated: bool,
}

#[cfg(feature = "serde")]
fn one() -> u64 {
    1
}

/// Largest number of assigned entries an input may describe (bounds the
/// model's memory; the kernel table is far larger, the vectors far smaller).
pub const MAX_INPUT_ENTRIES: u64 = 1 << 20;

/// The RMP table plus the platform state the hooks consult.
///
/// Assigned entries are kept as runs ([`RmpRun`], the JSON form), sorted by
/// pfn and disjoint, so a query costs what it describes: a 2M entry is one
/// run, not 512 entries, and the checker builds one table per vector,
/// millions of times. A run emptied by an update stays in place with
/// `npages == 0` (a hole: it describes nothing) so that removing one never
/// shifts the others; [`Rmp::runs`] leaves holes out.
#[derive(Debug, Clone, Default)]
pub struct Rmp {
    runs: Vec<RmpRun>,
    /// `cc_platform_has(CC_ATTR_HOST_SEV_SNP)`.
    pub snp_enabled: bool,
    /// Size of the table in pfns: lookups at or beyond fail (-EFAULT, WARN).
    pub max_pfn: u64,
    /// Names what `runs` hold: a number one load was given and nothing
    /// else in the process, or 0 when not known. A load takes a new one;
    /// a copy or a clone keeps its original's, since it holds the same
    /// runs; every other change of `runs` sets 0 ([`Rmp::touch`]). So two
    /// tables with one nonzero stamp hold the same runs, and
    /// [`RmpLoader`] can tell a table it copied is still as copied. A
    /// write costs a store, not a new number: the checker's RMP
    /// operations write millions of tables.
    stamp: u64,
}

/// The next [`Rmp`] stamp.
static NEXT_STAMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// [`Rmp::load_runs`] for a caller that loads the same input many times in
/// a row (the checker's exhaustive bounds hold one RMP state for dozens of
/// cases): the input last loaded and the table it gave are kept, and the
/// same input again is a copy of that table, not a check of every run, or
/// nothing at all when no write touched the table since (its stamp).
#[derive(Debug, Default)]
pub struct RmpLoader {
    /// The runs, host SNP and `max_pfn` that `table` was loaded from.
    input: LastInput<RmpRun, (bool, u64)>,
    table: Rmp,
    /// The stamp the last table loaded into was left with (0: none, or
    /// not known).
    loaded: u64,
    /// Inputs taken that were not the one held ([`RmpLoader::inputs`]).
    inputs: u64,
}

impl RmpLoader {
    /// Loads `runs` into `rmp` as [`Rmp::load_runs`] does (the same
    /// answer, the same error).
    pub fn load(
        &mut self,
        rmp: &mut Rmp,
        snp_enabled: bool,
        max_pfn: u64,
        runs: &[RmpRun],
    ) -> Result<(), InputError> {
        if self.input.is(runs, (snp_enabled, max_pfn)) {
            // A table nothing wrote since this loader filled it holds the
            // runs already (its two public fields are compared too, since
            // a caller may set those directly).
            let untouched = self.loaded != 0
                && rmp.stamp == self.loaded
                && rmp.snp_enabled == snp_enabled
                && rmp.max_pfn == max_pfn;
            if !untouched {
                rmp.copy_from(&self.table);
                self.loaded = rmp.stamp;
            }
            return Ok(());
        }
        // A refused input leaves `table` and its input as they were.
        self.inputs += 1;
        rmp.load_runs(snp_enabled, max_pfn, runs)?;
        self.table.copy_from(rmp);
        self.loaded = rmp.stamp;
        self.input.set(runs, (snp_enabled, max_pfn));
        Ok(())
    }

    /// How many inputs the loader took that were not the one it held
    /// (built into a table, or refused): while this stays the same, every
    /// load was of one input, so a caller may keep what it worked out
    /// from that input.
    pub fn inputs(&self) -> u64 {
        self.inputs
    }
}

/// [`Rmp::walk`]: the entries of increasing pfns.
#[derive(Debug, Clone)]
pub struct EntryWalk<'a> {
    runs: &'a [RmpRun],
    /// Runs before this one end at or before the last pfn asked for.
    next: usize,
}

impl EntryWalk<'_> {
    /// The entry of `pfn`, which is not below the last pfn asked for.
    /// Runs are in pfn order and the held ones disjoint, so the first run
    /// ending past `pfn` holds it if any does; an emptied run ends where it
    /// starts and is passed over like one that ended.
    pub fn entry(&mut self, pfn: u64) -> RmpEntry {
        while self
            .runs
            .get(self.next)
            .is_some_and(|r| r.pfn.saturating_add(r.npages) <= pfn)
        {
            self.next += 1;
        }
        match self.runs.get(self.next) {
            Some(r) if r.pfn <= pfn => r.entry(pfn),
            _ => RmpEntry::default(),
        }
    }
}

impl RmpRun {
    /// The entry of `pfn`, which the run holds: a 2M run's head alone
    /// is 2M, and the gpa goes up by a page per pfn.
    fn entry(&self, pfn: u64) -> RmpEntry {
        RmpEntry {
            assigned: true,
            size: if pfn == self.pfn {
                self.size
            } else {
                PageSize::K4
            },
            immutable: self.immutable,
            asid: self.asid,
            gpa: self.gpa.wrapping_add((pfn - self.pfn) << PAGE_SHIFT),
            validated: self.validated,
        }
    }

    /// The run as four words, equal exactly when the runs are (every field
    /// is named here, so a new one cannot be left out): the fields in their
    /// in-memory order, so the compiler reads the last word as one load.
    fn words(&self) -> [u64; 4] {
        let RmpRun {
            pfn,
            npages,
            size,
            asid,
            gpa,
            immutable,
            validated,
        } = *self;
        [
            pfn,
            npages,
            gpa,
            u64::from(asid)
                | u64::from(size as u16) << 32
                | u64::from(immutable) << 48
                | u64::from(validated) << 56,
        ]
    }
}

/// Equal runs are equal in every field, compared a run at a time as four
/// words: [`RmpLoader`] asks this of every case, nearly always of equal
/// inputs, so every field is read, and the derived comparison reads and
/// branches on the seven fields one by one (24 instructions a run on
/// x86-64, against 15 for this).
impl PartialEq for RmpRun {
    #[inline]
    fn eq(&self, other: &RmpRun) -> bool {
        let (x, y) = (self.words(), other.words());
        (x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) == 0
    }
}

impl Eq for RmpRun {}

/// Two tables are equal when they hold the same entries, however their
/// runs happen to be split.
impl PartialEq for Rmp {
    fn eq(&self, other: &Rmp) -> bool {
        self.snp_enabled == other.snp_enabled
            && self.max_pfn == other.max_pfn
            && self.runs() == other.runs()
    }
}

impl Eq for Rmp {}

/// An RMP operation as the hooks issue it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "op", rename_all = "snake_case"))]
pub enum RmpOp {
    /// `rmp_make_private(pfn, gpa, level, asid, immutable)`.
    MakePrivate {
        /// Host pfn.
        pfn: u64,
        /// GPA.
        gpa: u64,
        /// `PG_LEVEL_*`.
        level: i32,
        /// ASID.
        asid: u32,
    },
    /// `rmp_make_shared(pfn, level)`.
    MakeShared {
        /// Host pfn.
        pfn: u64,
        /// `PG_LEVEL_*`.
        level: i32,
    },
    /// `psmash(pfn)`.
    Psmash {
        /// Host pfn.
        pfn: u64,
    },
}

/// One RMP operation with its context and result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RmpEvent {
    /// The operation.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub op: RmpOp,
    /// Whether `kvm->mmu_lock` was held.
    pub mmu_lock: bool,
    /// The wrapper's return value (0 or -errno).
    pub ret: i32,
}

impl Rmp {
    /// An empty (all shared) table of `max_pfn` pfns.
    pub fn new(snp_enabled: bool, max_pfn: u64) -> Rmp {
        Rmp {
            runs: Vec::new(),
            snp_enabled,
            max_pfn,
            stamp: 0,
        }
    }

    /// Builds a table from runs, checking they describe a possible RMP.
    ///
    /// Runs may come in any order; the error names the first run (in input
    /// order) that is malformed or overlaps an earlier one, and the first
    /// pfn where it does.
    pub fn from_runs(snp_enabled: bool, max_pfn: u64, runs: &[RmpRun]) -> Result<Rmp, InputError> {
        let mut rmp = Rmp::new(snp_enabled, max_pfn);
        rmp.load_runs(snp_enabled, max_pfn, runs)?;
        Ok(rmp)
    }

    /// This table made equal to `other`, reusing its storage (a derived
    /// `clone_from` would allocate a new one).
    pub fn copy_from(&mut self, other: &Rmp) {
        self.runs.clone_from(&other.runs);
        self.snp_enabled = other.snp_enabled;
        self.max_pfn = other.max_pfn;
        self.stamp = other.stamp;
    }

    /// `runs` are about to change: what they hold has no name.
    fn touch(&mut self) {
        self.stamp = 0;
    }

    /// [`Rmp::from_runs`] into this table, reusing its storage: the
    /// checker loads a table per vector, millions of times. On an error
    /// the table holds some of the runs (load it again before use).
    pub fn load_runs(
        &mut self,
        snp_enabled: bool,
        max_pfn: u64,
        runs: &[RmpRun],
    ) -> Result<(), InputError> {
        let rmp = self;
        rmp.touch();
        rmp.snp_enabled = snp_enabled;
        rmp.max_pfn = max_pfn;
        rmp.runs.clear();
        let mut total = 0u64;
        // Ascending input (the usual case) is checked against its
        // predecessor alone; anything else goes through an interval map.
        let mut sorted = true;
        for (i, r) in runs.iter().enumerate() {
            let Some(npages) = run_pages(r, max_pfn, &mut total) else {
                return Err(bad_run(i, r, max_pfn, total));
            };
            if let Some(last) = rmp.runs.last()
                && r.pfn < last.pfn + last.npages
            {
                sorted = false;
                break;
            }
            rmp.runs.push(RmpRun { npages, ..*r });
        }
        if !sorted {
            rmp.runs = unsorted_runs(max_pfn, runs)?;
        }
        rmp.stamp = NEXT_STAMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The table as runs (the JSON output form), in pfn order: 4K entries
    /// that continue one another (pfn, gpa, attributes) form one run.
    pub fn runs(&self) -> Vec<RmpRun> {
        let mut out: Vec<RmpRun> = Vec::with_capacity(self.runs.len());
        for r in self.runs.iter().filter(|r| r.npages > 0) {
            if r.size == PageSize::K4
                && let Some(last) = out.last_mut()
                && last.size == PageSize::K4
                && last.pfn + last.npages == r.pfn
                && last.asid == r.asid
                && last.immutable == r.immutable
                && last.validated == r.validated
                && last.gpa.wrapping_add(last.npages << PAGE_SHIFT) == r.gpa
            {
                last.npages += r.npages;
                continue;
            }
            out.push(*r);
        }
        out
    }

    /// The assigned entries as they are held: disjoint runs in pfn order,
    /// not merged (cheaper than [`Rmp::runs`] for a caller that only walks
    /// them).
    pub fn held_runs(&self) -> impl Iterator<Item = &RmpRun> {
        self.runs.iter().filter(|r| r.npages > 0)
    }

    /// Index of the run holding `pfn`, if any. Only the last run starting
    /// at or before `pfn` can: held runs are disjoint, and no emptied run
    /// lies inside a held one ([`Rmp::insert`] keeps it so).
    fn find(&self, pfn: u64) -> Option<usize> {
        let i = self.runs.partition_point(|r| r.pfn <= pfn);
        let r = self.runs.get(i.checked_sub(1)?)?;
        (pfn - r.pfn < r.npages).then(|| i - 1)
    }

    /// Whether `pfn` is assigned.
    fn is_assigned(&self, pfn: u64) -> bool {
        self.find(pfn).is_some()
    }

    /// Whether run `i` (the one holding some pfn, if any) is a 2M entry:
    /// then that pfn's region is one. A 2M entry's run covers its region
    /// and nothing else, so it is the run holding any pfn of the region.
    fn is_2m(&self, i: Option<usize>) -> bool {
        i.is_some_and(|i| self.runs[i].size == PageSize::M2)
    }

    /// The first assigned pfn at or after `pfn`.
    fn next_assigned(&self, pfn: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.pfn <= pfn);
        if let Some(r) = i.checked_sub(1).map(|j| &self.runs[j])
            && pfn - r.pfn < r.npages
        {
            return Some(pfn);
        }
        self.runs[i..].iter().find(|r| r.npages > 0).map(|r| r.pfn)
    }

    /// The entry of `pfn` (all-zero when absent).
    pub fn entry(&self, pfn: u64) -> RmpEntry {
        match self.find(pfn) {
            Some(i) => self.runs[i].entry(pfn),
            None => RmpEntry::default(),
        }
    }

    /// [`Rmp::entry`] for pfns asked in increasing order, as the checker
    /// compares a table: one pass over the runs, not a search per pfn (a
    /// 2M region is 512 of them).
    pub fn walk(&self) -> EntryWalk<'_> {
        EntryWalk {
            runs: &self.runs,
            next: 0,
        }
    }

    fn head(pfn: u64) -> u64 {
        pfn & !(PTRS_PER_PMD - 1)
    }

    fn any_assigned(&self, head: u64) -> bool {
        self.next_assigned(head)
            .is_some_and(|p| p < head.saturating_add(PTRS_PER_PMD))
    }

    /// `snp_lookup_rmpentry(pfn, &assigned, &level)`: Ok((assigned, level)).
    pub fn lookup(&self, pfn: u64, warnings: &mut u32) -> Result<(bool, i32), i32> {
        if !self.snp_enabled {
            return Err(-errno::ENODEV);
        }
        if pfn >= self.max_pfn {
            *warnings += 1;
            return Err(-errno::EFAULT);
        }
        // One search answers both: the run holding pfn, if any, is the
        // region's 2M entry when the region is one.
        let i = self.find(pfn);
        let level = if self.is_2m(i) {
            PG_LEVEL_2M
        } else {
            PG_LEVEL_4K
        };
        Ok((i.is_some(), level))
    }

    /// RMPUPDATE as the hardware does it: 0 or a non-zero failure code.
    fn rmpupdate(&mut self, pfn: u64, level: i32, new: RmpEntry) -> i32 {
        let head = Self::head(pfn);
        if PageSize::from_level(level) == PageSize::K4 {
            let i = self.find(pfn);
            if self.is_2m(i) {
                return RMP_HW_FAIL;
            }
            self.set(i, pfn, new);
            return 0;
        }
        if pfn != head
            || head
                .checked_add(PTRS_PER_PMD)
                .is_none_or(|e| e > self.max_pfn)
        {
            return RMP_HW_FAIL;
        }
        if new.assigned {
            if self.any_assigned(head) {
                return RMP_HW_FAIL;
            }
            self.insert(RmpRun {
                pfn: head,
                npages: PTRS_PER_PMD,
                size: PageSize::M2,
                asid: new.asid,
                gpa: new.gpa,
                immutable: new.immutable,
                validated: new.validated,
            });
        } else {
            let i = self.find(head);
            if !self.is_2m(i) {
                return RMP_HW_FAIL;
            }
            // The 2M entry is the one run of its region: emptied in place.
            if let Some(i) = i {
                self.touch();
                self.runs[i].npages = 0;
            }
        }
        0
    }

    /// Inserts a run over pfns no run holds, in place of the emptied runs
    /// that start in its span: left there, one would be the last run
    /// starting at or before a pfn the new run holds, and [`Rmp::find`]
    /// would miss the pfn (and a split of the new run, inserted after it,
    /// would put the runs out of pfn order).
    fn insert(&mut self, run: RmpRun) {
        self.touch();
        let lo = self.runs.partition_point(|r| r.pfn < run.pfn);
        let hi = lo + self.runs[lo..].partition_point(|r| r.pfn < run.pfn + run.npages);
        debug_assert!(self.runs[lo..hi].iter().all(|r| r.npages == 0));
        if lo == hi {
            self.runs.insert(lo, run);
        } else {
            self.runs[lo] = run;
            self.runs.drain(lo + 1..hi);
        }
    }

    /// Writes one 4K entry of `pfn`, which run `held` holds if any (the
    /// region is not a 2M entry).
    fn set(&mut self, held: Option<usize>, pfn: u64, e: RmpEntry) {
        self.touch();
        if let Some(i) = held {
            // Cut pfn out of its run: trim an end, or split in two.
            let r = self.runs[i];
            let off = pfn - r.pfn;
            if off == 0 {
                let rest = &mut self.runs[i];
                rest.npages -= 1;
                if rest.npages > 0 {
                    rest.pfn += 1;
                    rest.gpa = rest.gpa.wrapping_add(1 << PAGE_SHIFT);
                    rest.size = PageSize::K4;
                }
            } else {
                self.runs[i].npages = off;
                if off + 1 < r.npages {
                    self.runs.insert(
                        i + 1,
                        RmpRun {
                            pfn: pfn + 1,
                            npages: r.npages - off - 1,
                            size: PageSize::K4,
                            gpa: r.gpa.wrapping_add((off + 1) << PAGE_SHIFT),
                            ..r
                        },
                    );
                }
            }
        }
        if e.assigned {
            self.insert(RmpRun {
                pfn,
                npages: 1,
                size: PageSize::K4,
                asid: e.asid,
                gpa: e.gpa,
                immutable: e.immutable,
                validated: e.validated,
            });
        }
    }

    /// `rmpupdate()`'s wrapper rules: -ENODEV without host SNP, -EFAULT for
    /// an invalid pfn or a failed instruction.
    fn update(&mut self, pfn: u64, level: i32, new: RmpEntry) -> i32 {
        if !self.snp_enabled {
            return -errno::ENODEV;
        }
        if pfn >= self.max_pfn {
            return -errno::EFAULT;
        }
        if self.rmpupdate(pfn, level, new) != 0 {
            -errno::EFAULT
        } else {
            0
        }
    }

    /// `rmp_make_private()`.
    pub fn make_private(
        &mut self,
        pfn: u64,
        gpa: u64,
        level: i32,
        asid: u32,
        immutable: bool,
    ) -> i32 {
        let size = PageSize::from_level(level);
        self.update(
            pfn,
            level,
            RmpEntry {
                assigned: true,
                size,
                immutable,
                asid,
                gpa,
                validated: false,
            },
        )
    }

    /// `rmp_make_shared()`.
    pub fn make_shared(&mut self, pfn: u64, level: i32) -> i32 {
        self.update(pfn, level, RmpEntry::default())
    }

    /// `psmash()`: -ENODEV without host SNP, -EINVAL for an invalid pfn,
    /// else the instruction's code (0 on success).
    pub fn psmash(&mut self, pfn: u64) -> i32 {
        if !self.snp_enabled {
            return -errno::ENODEV;
        }
        if pfn >= self.max_pfn {
            return -errno::EINVAL;
        }
        let head = Self::head(pfn);
        match self.find(head) {
            // 512 4K entries that keep every field: the same run, 4K.
            Some(i) if self.runs[i].pfn == head && self.runs[i].size == PageSize::M2 => {
                self.touch();
                self.runs[i].size = PageSize::K4;
                0
            }
            _ => RMP_HW_FAIL,
        }
    }
}

/// Run `i` of an input, checked on its own; a 2M run always covers 512.
#[inline]
fn checked_run(i: usize, r: &RmpRun, max_pfn: u64, total: &mut u64) -> Result<RmpRun, InputError> {
    match run_pages(r, max_pfn, total) {
        Some(n) => Ok(RmpRun { npages: n, ..*r }),
        None => Err(bad_run(i, r, max_pfn, *total)),
    }
}

/// The entries run `r` covers, added to `total`; `None` when it is
/// refused ([`bad_run`] says why). Only a number comes back, so the
/// checked run is built in place rather than moved through a `Result`
/// the size of an error.
#[inline]
fn run_pages(r: &RmpRun, max_pfn: u64, total: &mut u64) -> Option<u64> {
    let n = match r.size {
        PageSize::M2 if r.pfn % PTRS_PER_PMD == 0 && matches!(r.npages, 1 | PTRS_PER_PMD) => {
            PTRS_PER_PMD
        }
        PageSize::M2 => return None,
        PageSize::K4 => r.npages,
    };
    *total = total.saturating_add(n);
    if n == 0 || *total > MAX_INPUT_ENTRIES || r.pfn.checked_add(n).is_none_or(|e| e > max_pfn) {
        return None;
    }
    Some(n)
}

/// Why run `i` is refused (kept out of [`checked_run`], which the checker
/// calls for every run of millions of tables: the error, with its
/// strings, is built only when there is one).
#[cold]
#[inline(never)]
fn bad_run(i: usize, r: &RmpRun, max_pfn: u64, total: u64) -> InputError {
    let field = |f: &str| format!("rmp[{i}].{f}");
    match r.size {
        PageSize::M2 if r.pfn % PTRS_PER_PMD != 0 => {
            return InputError::new(field("pfn"), "a 2M entry starts 2M aligned");
        }
        PageSize::M2 if r.npages != 1 && r.npages != PTRS_PER_PMD => {
            return InputError::new(field("npages"), "a 2M entry covers 512 pages");
        }
        _ => {}
    }
    let n = if r.size == PageSize::M2 {
        PTRS_PER_PMD
    } else {
        r.npages
    };
    if n == 0 || total > MAX_INPUT_ENTRIES {
        return InputError::new(
            field("npages"),
            format!("runs hold 1 to {MAX_INPUT_ENTRIES} entries in all"),
        );
    }
    InputError::new(field("pfn"), format!("run ends past max_pfn {max_pfn}"))
}

/// [`Rmp::from_runs`] for runs in any order: each run against the earlier
/// ones through a map of their extents, then sorted.
fn unsorted_runs(max_pfn: u64, runs: &[RmpRun]) -> Result<Vec<RmpRun>, InputError> {
    // start -> (end, index into out)
    let mut map: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out: Vec<RmpRun> = Vec::with_capacity(runs.len());
    let mut total = 0u64;
    for (i, r) in runs.iter().enumerate() {
        let run = checked_run(i, r, max_pfn, &mut total)?;
        let (lo, hi) = (run.pfn, run.pfn + run.npages);
        // The first pfn of [lo, hi) an earlier run holds.
        let holder = map
            .range(..=lo)
            .next_back()
            .filter(|&(_, &end)| end > lo)
            .map(|_| lo)
            .or_else(|| map.range(lo..hi).next().map(|(&s, _)| s));
        let clash = match (run.size, holder) {
            (_, Some(p)) if run.size == PageSize::K4 || p == lo => {
                Some(format!("pfn {p} listed twice"))
            }
            // A 2M entry needs its whole region free.
            (PageSize::M2, Some(_)) => Some(format!("pfn {lo} overlaps a 2M entry")),
            _ => None,
        };
        if let Some(msg) = clash {
            return Err(InputError::new(format!("rmp[{i}].pfn"), msg));
        }
        map.insert(lo, hi);
        out.push(run);
    }
    out.sort_unstable_by_key(|r| r.pfn);
    Ok(out)
}

/// What a hook did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HookTrace {
    /// The RMP operations, in order.
    pub events: Vec<RmpEvent>,
    /// WARNs that fired.
    pub warnings: u32,
}

/// Where [`sev_gmem_invalidate`] records what it does: its RMP
/// operations, in order, and the WARNs that fired. [`HookTrace`] keeps
/// them apart; a caller with an event list of its own (the lifecycle
/// model, millions of punch holes in the checker) records into that list
/// directly rather than through a copy.
pub trait RmpTrace {
    /// One RMP operation, with whether `mmu_lock` was held and its result.
    fn record(&mut self, op: RmpOp, mmu_lock: bool, ret: i32);
    /// The WARN count.
    fn warnings(&mut self) -> &mut u32;
}

impl RmpTrace for HookTrace {
    fn record(&mut self, op: RmpOp, mmu_lock: bool, ret: i32) {
        self.events.push(RmpEvent { op, mmu_lock, ret });
    }

    fn warnings(&mut self) -> &mut u32 {
        &mut self.warnings
    }
}

impl HookTrace {
    /// The RMP updates issued while `mmu_lock` was held: each a violation.
    pub fn violations(&self) -> impl Iterator<Item = &RmpEvent> {
        self.events.iter().filter(|e| e.mmu_lock)
    }
}

/// `is_pfn_range_shared()`: every pfn of `[start, end)` looks up unassigned.
///
/// The kernel looks up one pfn at a time; a lookup of a shared pfn below
/// `max_pfn` has no effect, so the model goes straight to the first pfn
/// whose lookup does something (assigned, or past the table: WARN).
fn is_pfn_range_shared(rmp: &Rmp, start: u64, end: u64, trace: &mut HookTrace) -> bool {
    let mut pfn = start;
    while pfn < end {
        match rmp.lookup(pfn, &mut trace.warnings) {
            Ok((false, _)) => pfn = rmp.skip_shared(pfn, end),
            _ => return false,
        }
    }
    true
}

impl Rmp {
    /// After a lookup found `pfn` shared: the next pfn below `end` whose
    /// lookup can differ (the next assigned one, or `max_pfn`), else `end`.
    fn skip_shared(&self, pfn: u64, end: u64) -> u64 {
        let stop = self
            .next_assigned(pfn.saturating_add(1))
            .unwrap_or(u64::MAX)
            .min(self.max_pfn.max(pfn.saturating_add(1)));
        stop.min(end)
    }
}

/// `sev_gmem_prepare(kvm, pfn, gfn, max_order)`: make a freshly allocated
/// guest_memfd page private before its first mapping (called from
/// `kvm_gmem_get_pfn()`, never under `mmu_lock`). A 2M entry is used when the
/// folio is 2M and the whole aligned 2M range is still shared.
#[allow(clippy::too_many_arguments)] // mirrors the kernel hook plus model state
pub fn sev_gmem_prepare(
    rmp: &mut Rmp,
    snp_guest: bool,
    asid: u32,
    pfn: u64,
    gfn: u64,
    max_order: i32,
    mmu_lock: bool,
    trace: &mut HookTrace,
) -> i32 {
    if !snp_guest {
        return 0;
    }
    let assigned = match rmp.lookup(pfn, &mut trace.warnings) {
        Ok((assigned, _)) => assigned,
        Err(_) => return -errno::ENOENT,
    };
    if assigned {
        return 0;
    }
    let head = pfn & !(PTRS_PER_PMD - 1);
    let large = max_level_for_order(max_order) > PG_LEVEL_4K
        && is_pfn_range_shared(rmp, head, head.wrapping_add(PTRS_PER_PMD), trace);
    let (level, pfn_aligned, gfn_aligned) = if large {
        (PG_LEVEL_2M, head, gfn & !(PTRS_PER_PMD - 1))
    } else {
        (PG_LEVEL_4K, pfn, gfn)
    };
    let gpa = gfn_aligned.wrapping_shl(PAGE_SHIFT as u32);
    let rc = rmp.make_private(pfn_aligned, gpa, level, asid, false);
    trace.record(
        RmpOp::MakePrivate {
            pfn: pfn_aligned,
            gpa,
            level,
            asid,
        },
        mmu_lock,
        rc,
    );
    if rc != 0 { -errno::EINVAL } else { 0 }
}

/// `sev_gmem_invalidate(start, end)`: the pfns `[start, end)` of a freed
/// folio go back to shared. A 2M entry is converted whole when the range
/// covers it from its start; otherwise it is PSMASHed first and converted
/// 4K at a time.
pub fn sev_gmem_invalidate(
    rmp: &mut Rmp,
    start: u64,
    end: u64,
    mmu_lock: bool,
    trace: &mut impl RmpTrace,
) {
    if !rmp.snp_enabled {
        return;
    }
    let mut pfn = start;
    while pfn < end {
        let mut use_2m = false;
        if let Ok((true, rmp_level)) = rmp.lookup(pfn, trace.warnings()) {
            use_2m = rmp_use_2m_update(pfn, end, rmp_level);
            if !use_2m && rmp_level > PG_LEVEL_4K {
                let rc = rmp.psmash(pfn);
                trace.record(RmpOp::Psmash { pfn }, mmu_lock, rc);
                if rc != 0 {
                    *trace.warnings() += 1;
                }
            }
            let level = if use_2m { PG_LEVEL_2M } else { PG_LEVEL_4K };
            let rc = rmp.make_shared(pfn, level);
            trace.record(RmpOp::MakeShared { pfn, level }, mmu_lock, rc);
            // A failed update WARNs and moves on by the step it intended,
            // as 6.12 does (its `goto next_pfn` keeps `use_2m_update`).
            if rc != 0 {
                *trace.warnings() += 1;
            }
        }
        // The kernel's pfn never wraps (pfns are far below 2^64); the model
        // stops rather than loop forever on an input at the very top.
        let step = if use_2m { PTRS_PER_PMD } else { 1 };
        match pfn.checked_add(step) {
            Some(next) => pfn = next,
            None => break,
        }
        // Shared pfns below max_pfn do nothing but a lookup; past max_pfn
        // each lookup WARNs and nothing is assigned: count them at once.
        if pfn < end && pfn >= rmp.max_pfn {
            let n = end - pfn;
            let w = trace.warnings();
            *w = w.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
            break;
        }
        if pfn < end && !rmp.is_assigned(pfn) {
            pfn = rmp.skip_shared(pfn, end);
        }
    }
}

/// `sev_private_max_mapping_level(kvm, pfn)`: 0 (no limit) for non-SNP
/// guests, else the RMP level, 4K when the lookup fails or is unassigned.
pub fn sev_private_max_mapping_level(
    rmp: &Rmp,
    snp_guest: bool,
    pfn: u64,
    trace: &mut HookTrace,
) -> i32 {
    if !snp_guest {
        return 0;
    }
    match rmp.lookup(pfn, &mut trace.warnings) {
        Ok((true, level)) => level,
        _ => PG_LEVEL_4K,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loader_gives_what_load_runs_gives_however_often_asked() {
        let run = |pfn, size| RmpRun {
            pfn,
            npages: 1,
            size,
            asid: 1,
            gpa: pfn << 12,
            immutable: false,
            validated: false,
        };
        let a = [run(512, PageSize::M2), run(1024, PageSize::K4)];
        let b = [run(1030, PageSize::K4)];
        let (mut loader, mut rmp) = (RmpLoader::default(), Rmp::default());
        let fresh = |runs: &[RmpRun]| Rmp::from_runs(true, 2048, runs).expect("valid");
        loader.load(&mut rmp, true, 2048, &a).expect("valid");
        assert_eq!(rmp, fresh(&a));
        // The hooks change the table; the same runs again give it as loaded.
        assert_eq!(rmp.make_shared(1024, PG_LEVEL_4K), 0);
        assert_ne!(rmp, fresh(&a));
        loader.load(&mut rmp, true, 2048, &a).expect("valid");
        assert_eq!(rmp, fresh(&a));
        // Other runs, another size, SNP off: each loaded as asked.
        loader.load(&mut rmp, true, 2048, &b).expect("valid");
        assert_eq!(rmp, fresh(&b));
        loader.load(&mut rmp, true, 1536, &a).expect("valid");
        assert_eq!(rmp, Rmp::from_runs(true, 1536, &a).expect("valid"));
        loader.load(&mut rmp, false, 1536, &a).expect("valid");
        assert!(!rmp.snp_enabled);
        // Every kind of write between two loads of the same runs is undone
        // by the second (a table nothing wrote is not copied again).
        let c = [run(1024, PageSize::M2), run(1536, PageSize::K4)];
        let writes: [&dyn Fn(&mut Rmp); 7] = [
            &|r| assert_eq!(r.make_shared(1536, PG_LEVEL_4K), 0),
            &|r| assert_eq!(r.make_private(1600, 0, PG_LEVEL_4K, 1, false), 0),
            &|r| assert_eq!(r.make_private(512, 0, PG_LEVEL_2M, 1, false), 0),
            &|r| assert_eq!(r.psmash(1024), 0),
            &|r| assert_eq!(r.make_shared(1024, PG_LEVEL_2M), 0),
            &|r| r.snp_enabled = false,
            &|r| r.max_pfn = 1536,
        ];
        for write in writes {
            loader.load(&mut rmp, true, 2048, &c).expect("valid");
            loader.load(&mut rmp, true, 2048, &c).expect("valid");
            write(&mut rmp);
            assert_ne!(
                (&rmp, rmp.snp_enabled, rmp.max_pfn),
                (&fresh(&c), true, 2048)
            );
            loader.load(&mut rmp, true, 2048, &c).expect("valid");
            assert_eq!(
                (&rmp, rmp.snp_enabled, rmp.max_pfn),
                (&fresh(&c), true, 2048)
            );
        }
        // A stamp names one content, whichever table holds it: a copy of a
        // written table, loaded into neither, is not taken for the loaded
        // one (after a load by copy, and after a load of other runs).
        for other in [&c[..], &b[..]] {
            loader.load(&mut rmp, true, 2048, &c).expect("valid");
            assert_eq!(rmp.make_shared(1536, PG_LEVEL_4K), 0);
            let mut written = rmp.clone();
            loader.load(&mut rmp, true, 2048, other).expect("valid");
            loader.load(&mut written, true, 2048, other).expect("valid");
            assert_eq!(written, fresh(other));
        }
        // A copy holds its original's runs and stamp, not the loaded one's:
        // a table copied from another load is loaded in full (after a
        // load by copy, whose stamp is the loader's own table's).
        loader.load(&mut rmp, true, 2048, &c).expect("valid");
        assert_eq!(rmp.make_shared(1536, PG_LEVEL_4K), 0);
        loader.load(&mut rmp, true, 2048, &c).expect("valid");
        let mut copied = Rmp::default();
        copied.copy_from(&fresh(&b));
        loader.load(&mut copied, true, 2048, &c).expect("valid");
        assert_eq!(copied, fresh(&c));
        // Runs that differ from the last in one field alone are loaded.
        loader.load(&mut rmp, true, 2048, &a).expect("valid");
        let mut one_field: Vec<[RmpRun; 2]> = Vec::new();
        for f in 0..6 {
            let mut c = a;
            let r = &mut c[1];
            match f {
                0 => r.pfn += 1,
                1 => r.npages += 1,
                2 => r.asid += 1,
                3 => r.gpa += 1 << 12,
                4 => r.immutable = true,
                _ => r.validated = true,
            }
            one_field.push(c);
        }
        let mut sized = a;
        sized[0].size = PageSize::K4;
        one_field.push(sized);
        for c in &one_field {
            loader.load(&mut rmp, true, 2048, c).expect("valid");
            assert_eq!(rmp, fresh(c), "{c:?}");
            loader.load(&mut rmp, true, 2048, &a).expect("valid");
        }
        // A refused input is refused every time, and forgets the last.
        let past = [run(4096, PageSize::K4)];
        let err = Rmp::from_runs(true, 2048, &past).expect_err("past the table");
        assert_eq!(loader.load(&mut rmp, true, 2048, &past), Err(err.clone()));
        assert_eq!(loader.load(&mut rmp, true, 2048, &past), Err(err));
        loader.load(&mut rmp, true, 2048, &a).expect("valid");
        assert_eq!(rmp, fresh(&a));
    }

    #[test]
    fn prepare_2m_then_partial_invalidate_psmashes() {
        let mut rmp = Rmp::new(true, 2048);
        let mut t = HookTrace::default();
        assert_eq!(
            sev_gmem_prepare(&mut rmp, true, 1, 515, 0x1003, 9, false, &mut t),
            0
        );
        assert_eq!(
            rmp.runs(),
            [RmpRun {
                pfn: 512,
                npages: 512,
                size: PageSize::M2,
                asid: 1,
                gpa: 0x1000 << 12,
                immutable: false,
                validated: false
            }]
        );
        assert_eq!(
            sev_private_max_mapping_level(&rmp, true, 600, &mut t),
            PG_LEVEL_2M
        );
        let mut t = HookTrace::default();
        sev_gmem_invalidate(&mut rmp, 516, 518, false, &mut t);
        assert_eq!(
            t.events.len(),
            3,
            "psmash, then two 4K make-shared: {:?}",
            t.events
        );
        assert!(matches!(t.events[0].op, RmpOp::Psmash { pfn: 516 }));
        assert_eq!(rmp.runs().len(), 2);
        assert_eq!(
            sev_private_max_mapping_level(&rmp, true, 600, &mut t),
            PG_LEVEL_4K
        );
    }

    #[test]
    fn runs_round_trip_through_the_table() {
        let runs = [
            RmpRun {
                pfn: 512,
                npages: 512,
                size: PageSize::M2,
                asid: 2,
                gpa: 1 << 21,
                immutable: false,
                validated: true,
            },
            RmpRun {
                pfn: 1030,
                npages: 3,
                size: PageSize::K4,
                asid: 2,
                gpa: 0x5000,
                immutable: false,
                validated: false,
            },
        ];
        let rmp = Rmp::from_runs(true, 2048, &runs).expect("a 2M run and a 4K run");
        assert_eq!(rmp.runs(), runs);
        let clash = RmpRun {
            pfn: 600,
            npages: 1,
            size: PageSize::K4,
            asid: 2,
            gpa: 0,
            immutable: false,
            validated: false,
        };
        assert!(Rmp::from_runs(true, 2048, &[runs[0], clash]).is_err());
        assert!(Rmp::from_runs(true, 2048, &[clash, runs[0]]).is_err());
    }

    #[test]
    fn an_emptied_run_never_hides_the_entry_written_over_it() {
        // A 4K page made private then shared leaves an emptied run at 600;
        // a 2M entry written over its region must still be found at 600,
        // and a later split of that region keeps every page findable.
        let mut rmp = Rmp::new(true, 2048);
        assert_eq!(rmp.make_private(600, 0x1000, PG_LEVEL_4K, 1, false), 0);
        assert_eq!(rmp.make_shared(600, PG_LEVEL_4K), 0);
        assert_eq!(rmp.make_private(512, 0x2000, PG_LEVEL_2M, 1, false), 0);
        let mut w = 0;
        assert_eq!(rmp.lookup(600, &mut w), Ok((true, PG_LEVEL_2M)));
        assert!(rmp.entry(600).assigned);
        assert_eq!(rmp.psmash(512), 0);
        assert_eq!(rmp.make_shared(550, PG_LEVEL_4K), 0);
        assert_eq!(rmp.make_shared(700, PG_LEVEL_4K), 0);
        for pfn in 512..1024 {
            let shared = pfn == 550 || pfn == 700;
            assert_eq!(
                rmp.lookup(pfn, &mut w),
                Ok((!shared, PG_LEVEL_4K)),
                "pfn {pfn}"
            );
        }
        assert_eq!(w, 0);
        // 510 pages in three runs, in pfn order.
        let runs = rmp.runs();
        assert_eq!(runs.iter().map(|r| r.npages).sum::<u64>(), 510);
        assert!(runs.is_sorted_by_key(|r| r.pfn));
    }

    #[test]
    fn a_walk_gives_the_entries_a_lookup_gives() {
        // Tables the operations leave: emptied runs before, inside the span
        // of and after a 2M entry, a PSMASHed region with holes, 4K runs
        // back to back, and a run at the table's last pfn.
        let mut tables = vec![Rmp::new(true, 2048)];
        let mut rmp = Rmp::new(true, 2048);
        let steps: [(&str, u64, i32); 16] = [
            ("private", 600, PG_LEVEL_4K),
            ("private", 601, PG_LEVEL_4K),
            ("shared", 600, PG_LEVEL_4K),
            ("shared", 601, PG_LEVEL_4K),
            ("private", 100, PG_LEVEL_4K),
            ("shared", 100, PG_LEVEL_4K),
            ("private", 512, PG_LEVEL_2M),
            ("private", 1024, PG_LEVEL_2M),
            ("psmash", 1024, 0),
            ("shared", 1030, PG_LEVEL_4K),
            ("shared", 1535, PG_LEVEL_4K),
            ("private", 2047, PG_LEVEL_4K),
            ("private", 1030, PG_LEVEL_4K),
            ("shared", 512, PG_LEVEL_2M),
            ("private", 700, PG_LEVEL_4K),
            ("private", 1536, PG_LEVEL_4K),
        ];
        for (op, pfn, level) in steps {
            let rc = match op {
                "private" => rmp.make_private(pfn, pfn << 12, level, 3, pfn == 2047),
                "shared" => rmp.make_shared(pfn, level),
                _ => rmp.psmash(pfn),
            };
            assert_eq!(rc, 0, "{op} {pfn}");
            tables.push(rmp.clone());
        }
        for (t, rmp) in tables.iter().enumerate() {
            // Every pfn, and past the table's end.
            let mut walk = rmp.walk();
            for pfn in 0..2100 {
                assert_eq!(walk.entry(pfn), rmp.entry(pfn), "table {t}, pfn {pfn}");
            }
            // Far-apart pfns, and the same pfn twice.
            let mut walk = rmp.walk();
            for pfn in [0, 99, 100, 600, 600, 601, 700, 1024, 1030, 1031, 1535, 2047] {
                assert_eq!(walk.entry(pfn), rmp.entry(pfn), "table {t}, pfn {pfn}");
            }
        }
    }

    #[test]
    fn prepare_4k_when_region_partly_private() {
        let mut rmp = Rmp::from_runs(
            true,
            2048,
            &[RmpRun {
                pfn: 1000,
                npages: 1,
                size: PageSize::K4,
                asid: 1,
                gpa: 0,
                immutable: false,
                validated: false,
            }],
        )
        .unwrap();
        let mut t = HookTrace::default();
        assert_eq!(
            sev_gmem_prepare(&mut rmp, true, 1, 1001, 7, 9, false, &mut t),
            0
        );
        assert!(matches!(
            t.events[0].op,
            RmpOp::MakePrivate {
                pfn: 1001,
                level: 1,
                ..
            }
        ));
    }
}
