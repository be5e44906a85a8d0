//! guest_memfd invalidation: which gfn ranges a file range zaps.
//!
//! Models `kvm_gmem_invalidate_begin()` / `kvm_gmem_invalidate_end()`
//! (virt/kvm/guest_memfd.c). The file's bindings live in an xarray indexed by
//! file page; `xa_for_each_range(&gmem->bindings, index, slot, start, end - 1)`
//! visits, in file order, exactly the bindings that overlap `[start, end)`.
//! For each, the zapped gfns are the binding's own part of the range:
//! `base_gfn + max(pgoff, start) - pgoff .. base_gfn + min(pgoff + npages, end) - pgoff`
//! (see [`crate::rules`]). `kvm_mmu_invalidate_begin()` runs iff some binding
//! overlaps, and `kvm_gmem_invalidate_end()` ends it under the same
//! condition, so begin and end always balance. Every range carries the
//! private-only filter (`KVM_FILTER_PRIVATE`): guest_memfd backs only private
//! mappings.

use crate::error::InputError;
use crate::last_input::LastInput;
use crate::rules::{gmem_invalidate_gfn_end, gmem_invalidate_gfn_start};

/// A memslot bound to a guest_memfd file at file page `pgoff`
/// (`struct kvm_memory_slot` with `slot->gmem.pgoff`; `gmem.index` in 2023).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Binding {
    /// `slot->id`.
    pub id: u16,
    /// `slot->base_gfn`.
    pub base_gfn: u64,
    /// `slot->npages`.
    pub npages: u64,
    /// `slot->gmem.pgoff`: the file page backing `base_gfn`.
    pub pgoff: u64,
}

impl Binding {
    /// Last file page the binding covers (inclusive, as the xarray stores it).
    pub fn last_index(&self) -> u64 {
        self.pgoff.wrapping_add(self.npages).wrapping_sub(1)
    }
}

/// Which mappings a zap applies to (`enum kvm_gfn_range_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AttrFilter {
    /// `KVM_FILTER_SHARED`
    Shared,
    /// `KVM_FILTER_PRIVATE`
    Private,
}

/// One `kvm_mmu_unmap_gfn_range()` call: gfns `[start, end)` of memslot `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GfnRange {
    /// The memslot's id.
    pub slot: u16,
    /// First gfn.
    pub start: u64,
    /// One past the last gfn.
    pub end: u64,
    /// Always [`AttrFilter::Private`] for guest_memfd invalidations; not part
    /// of the JSON form (README, "The model as a JSON filter"), checked by the checker.
    #[cfg_attr(feature = "serde", serde(skip, default = "private_filter"))]
    pub attr_filter: AttrFilter,
}

#[cfg(feature = "serde")]
fn private_filter() -> AttrFilter {
    AttrFilter::Private
}

/// The guest_memfd file's bindings, validated and in file order: what
/// `gmem->bindings` holds.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    sorted: Vec<Binding>,
    /// The input `sorted` was loaded from, as given: [`Bindings::load`]
    /// of the same input again has nothing to check or sort.
    from: LastInput<Binding, ()>,
}

/// Two sets are equal when they hold the same bindings, in whatever order
/// they were given.
impl PartialEq for Bindings {
    fn eq(&self, other: &Bindings) -> bool {
        self.sorted == other.sorted
    }
}

impl Eq for Bindings {}

impl Bindings {
    /// Validates `slots` as the kernel's xarray could hold them: no empty
    /// binding, no binding wrapping past the last file index, no two
    /// bindings sharing a file page, no two with one slot id.
    pub fn new(slots: &[Binding]) -> Result<Self, InputError> {
        let mut b = Bindings::default();
        b.load(slots)?;
        Ok(b)
    }

    /// [`Bindings::new`] into this set, reusing its storage (the checker
    /// makes one per case, millions of times, mostly from the input it
    /// gave last). On an error the set is left as it was.
    pub fn load(&mut self, slots: &[Binding]) -> Result<(), InputError> {
        if self.from.is(slots, ()) {
            return Ok(());
        }
        for (i, s) in slots.iter().enumerate() {
            if s.npages == 0 {
                return Err(InputError::new(
                    format!("slots[{i}].npages"),
                    "a bound memslot has at least one page",
                ));
            }
            if s.pgoff.checked_add(s.npages - 1).is_none() {
                return Err(InputError::new(
                    format!("slots[{i}].pgoff"),
                    "pgoff + npages - 1 exceeds the largest file index (2^64 - 1)",
                ));
            }
            for (j, t) in slots[..i].iter().enumerate() {
                if t.id == s.id {
                    return Err(InputError::new(
                        format!("slots[{i}].id"),
                        format!("slot id {} is also slots[{j}]", s.id),
                    ));
                }
                if s.pgoff <= t.last_index() && t.pgoff <= s.last_index() {
                    return Err(InputError::new(
                        format!("slots[{i}]"),
                        format!("file pages overlap slots[{j}]; one file page has one binding"),
                    ));
                }
            }
        }
        self.sorted.clear();
        self.sorted.extend_from_slice(slots);
        self.sorted.sort_by_key(|s| s.pgoff);
        self.from.set(slots, ());
        Ok(())
    }

    /// The bindings in file order.
    pub fn as_slice(&self) -> &[Binding] {
        &self.sorted
    }

    /// `xa_for_each_range(bindings, index, slot, first, last)`: bindings that
    /// hold at least one file page in `[first, last]`, in file order.
    pub fn overlapping(&self, first: u64, last: u64) -> impl Iterator<Item = &Binding> {
        // Bindings are sorted and disjoint, so the ones ending before `first`
        // form a prefix.
        let skip = self.sorted.partition_point(|b| b.last_index() < first);
        self.sorted[skip..]
            .iter()
            .take_while(move |b| first <= last && b.pgoff <= last)
    }

    /// The binding holding file page `index` (`xa_load`).
    pub fn at(&self, index: u64) -> Option<&Binding> {
        self.overlapping(index, index).next()
    }
}

/// What invalidating a file range does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Invalidation {
    /// The `kvm_mmu_unmap_gfn_range()` calls, in file order.
    pub ranges: Vec<GfnRange>,
    /// Whether `kvm_mmu_invalidate_begin()` (and so `_end()`) runs.
    pub mmu_invalidate: bool,
}

/// The zap for one overlapping binding (the body of the xarray walk).
#[inline]
pub fn gfn_range_for(b: &Binding, start: u64, end: u64) -> GfnRange {
    GfnRange {
        slot: b.id,
        start: gmem_invalidate_gfn_start(b.base_gfn, b.pgoff, start),
        end: gmem_invalidate_gfn_end(b.base_gfn, b.pgoff, b.npages, end),
        attr_filter: AttrFilter::Private,
    }
}

/// `kvm_gmem_invalidate_begin(gmem, start, end)` followed by
/// `kvm_gmem_invalidate_end(gmem, start, end)`, as an iterator of zaps.
///
/// The range is half-open in file pages; callers never pass an empty one
/// (`start < end`), which [`kvm_gmem_invalidate`] checks.
pub fn invalidate_ranges(
    bindings: &Bindings,
    start: u64,
    end: u64,
) -> impl Iterator<Item = GfnRange> + '_ {
    bindings
        .overlapping(start, end.wrapping_sub(1))
        .map(move |b| gfn_range_for(b, start, end))
}

/// `kvm_gmem_invalidate_begin()` + `kvm_gmem_invalidate_end()` on file pages
/// `[start, end)`. `end == u64::MAX` is the release path's `-1ul`.
pub fn kvm_gmem_invalidate(
    bindings: &Bindings,
    start: u64,
    end: u64,
) -> Result<Invalidation, InputError> {
    if start >= end {
        return Err(InputError::new(
            "start",
            format!("the file range [{start}, {end}) is empty; callers always pass start < end"),
        ));
    }
    let ranges: Vec<GfnRange> = invalidate_ranges(bindings, start, end).collect();
    let mmu_invalidate = !ranges.is_empty();
    Ok(Invalidation {
        ranges,
        mmu_invalidate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloaded_set_is_the_one_its_input_gives() {
        // The same input again is kept; another, however ordered, is
        // checked and sorted; a refused one leaves the set as it was.
        let b = |id, pgoff| Binding {
            id,
            base_gfn: 0x100 * u64::from(id),
            npages: 4,
            pgoff,
        };
        let (ab, ba) = ([b(0, 0), b(1, 8)], [b(1, 8), b(0, 0)]);
        let mut set = Bindings::default();
        set.load(&ab).expect("valid");
        set.load(&ab).expect("valid");
        assert_eq!(set.as_slice(), ab);
        set.load(&[b(2, 2)]).expect("valid");
        assert_eq!(set.as_slice(), [b(2, 2)]);
        set.load(&ba).expect("valid");
        assert_eq!(set.as_slice(), ab);
        assert_eq!(set, Bindings::new(&ab).expect("valid"));
        assert!(set.load(&[b(0, 0), b(0, 8)]).is_err());
        assert_eq!(set.as_slice(), ab);
        set.load(&ab).expect("valid");
        assert_eq!(set.as_slice(), ab);
    }

    fn two_slots() -> Bindings {
        Bindings::new(&[
            Binding {
                id: 0,
                base_gfn: 0x100,
                npages: 4,
                pgoff: 0,
            },
            Binding {
                id: 1,
                base_gfn: 0x200,
                npages: 4,
                pgoff: 4,
            },
        ])
        .expect("valid layout")
    }

    fn zaps(start: u64, end: u64) -> Vec<(u16, u64, u64)> {
        kvm_gmem_invalidate(&two_slots(), start, end)
            .expect("non-empty range")
            .ranges
            .iter()
            .map(|r| (r.slot, r.start, r.end))
            .collect()
    }

    #[test]
    fn kernel_facts_table_fixed_column() {
        assert_eq!(zaps(2, 6), [(0, 0x102, 0x104), (1, 0x200, 0x202)]);
        assert_eq!(zaps(0, 8), [(0, 0x100, 0x104), (1, 0x200, 0x204)]);
        assert_eq!(zaps(5, 6), [(1, 0x201, 0x202)]);
        assert_eq!(zaps(1, 3), [(0, 0x101, 0x103)]);
        assert_eq!(zaps(0, u64::MAX), [(0, 0x100, 0x104), (1, 0x200, 0x204)]);
    }

    #[test]
    fn no_overlap_means_no_mmu_invalidate() {
        let inv = kvm_gmem_invalidate(&two_slots(), 8, 9).expect("non-empty");
        assert!(inv.ranges.is_empty());
        assert!(!inv.mmu_invalidate);
    }

    #[test]
    fn rejects_overlapping_bindings_and_empty_range() {
        let err = Bindings::new(&[
            Binding {
                id: 0,
                base_gfn: 0,
                npages: 4,
                pgoff: 0,
            },
            Binding {
                id: 1,
                base_gfn: 9,
                npages: 4,
                pgoff: 3,
            },
        ])
        .expect_err("overlap");
        assert_eq!(err.field, "slots[1]");
        assert!(kvm_gmem_invalidate(&two_slots(), 3, 3).is_err());
    }
}
