//! The decision rules the model shares with kernel C.
//!
//! Every function here is written in the small subset of Rust that
//! `gmem-codegen` translates to C: parameters of kernel integer types, `let`
//! bindings, `if`/`else`, comparisons, bit operations, `max`/`min`, and
//! explicit `wrapping_*` arithmetic (which is what C's unsigned `+`, `-`, `<<`
//! do). The generated patches carry the translated expressions, so changing a
//! rule here changes the C, and the checker then tests the new C against the
//! model that uses the same rule. Nothing here may panic on any input.

use crate::kernel::{PAGE_SIZE, PG_LEVEL_2M, PG_LEVEL_4K, PMD_ORDER, PTRS_PER_PMD};

/// Kernel `max()` for two values of the same unsigned type.
#[inline]
pub fn max(a: u64, b: u64) -> u64 {
    if a > b { a } else { b }
}

/// Kernel `min()` for two values of the same unsigned type.
#[inline]
pub fn min(a: u64, b: u64) -> u64 {
    if a < b { a } else { b }
}

/// First gfn to zap for a binding at file offset `pgoff` when the file range
/// starting at `start` is invalidated: `kvm_gmem_invalidate_begin()`'s
/// `.start`, clamped so a range that begins before the binding starts at the
/// binding's first page (the May 2023 code used `start - pgoff` unclamped).
#[inline]
pub fn gmem_invalidate_gfn_start(base_gfn: u64, pgoff: u64, start: u64) -> u64 {
    base_gfn.wrapping_add(max(pgoff, start)).wrapping_sub(pgoff)
}

/// One past the last gfn to zap: `kvm_gmem_invalidate_begin()`'s `.end`,
/// clamped to the binding's end so the release path's `end = -1ul` works.
#[inline]
pub fn gmem_invalidate_gfn_end(base_gfn: u64, pgoff: u64, npages: u64, end: u64) -> u64 {
    base_gfn
        .wrapping_add(min(pgoff.wrapping_add(npages), end))
        .wrapping_sub(pgoff)
}

/// The platform-configurable private-fault rule: `bits` (the error code, or
/// the GPA for TDX) masked with `mask` decides; SNP's encrypted-access bit
/// means private when set, TDX's shared GPA bit means private when clear.
#[inline]
pub fn fault_private_by_mask(bits: u64, mask: u64, private_if_set: bool) -> bool {
    ((bits & mask) != 0) == private_if_set
}

/// `max_level_for_order()`: the largest RMP level a folio of `order` allows.
#[inline]
pub fn max_level_for_order(order: i32) -> i32 {
    if order >= PMD_ORDER {
        PG_LEVEL_2M
    } else {
        PG_LEVEL_4K
    }
}

/// `sev_gmem_invalidate()`: convert the whole 2M RMP entry in one update only
/// when `pfn` starts it, the freed range covers all of it, and the RMP entry
/// really is 2M; anything less needs PSMASH first.
#[inline]
pub fn rmp_use_2m_update(pfn: u64, end: u64, rmp_level: i32) -> bool {
    (pfn & (PTRS_PER_PMD - 1)) == 0
        && end >= pfn.wrapping_add(PTRS_PER_PMD)
        && rmp_level > PG_LEVEL_4K
}

/// `kvm_vcpu_pre_fault_memory()`'s argument check: flags must be zero, the
/// range page aligned, non-empty and not wrapping.
#[inline]
pub fn pre_fault_range_invalid(gpa: u64, size: u64, flags: u64) -> bool {
    flags != 0
        || (gpa & (PAGE_SIZE - 1)) != 0
        || (size & (PAGE_SIZE - 1)) != 0
        || gpa.wrapping_add(size) <= gpa
}

/// `kvm_arch_vcpu_pre_fault_memory()`: one past the last byte of the
/// mapping of `page_size` bytes that contains `gpa`.
#[inline]
pub fn pre_fault_mapping_end(gpa: u64, page_size: u64) -> u64 {
    (gpa & !(page_size.wrapping_sub(1))).wrapping_add(page_size)
}

/// `kvm_arch_vcpu_pre_fault_memory()`'s progress: the bytes of the range
/// from `gpa` that the mapping ending at `end` covers.
#[inline]
pub fn pre_fault_progress(gpa: u64, size: u64, end: u64) -> u64 {
    min(size, end.wrapping_sub(gpa))
}

/// `kvm_gmem_bind()`'s file-range check: the offset must be page aligned and
/// the binding must end inside the file.
#[inline]
pub fn gmem_bind_range_invalid(offset: u64, size: u64, i_size: u64) -> bool {
    (offset & (PAGE_SIZE - 1)) != 0 || offset.wrapping_add(size) > i_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_match_kernel_facts_table() {
        // Binding B of the two-slot table (tests/vectors/invalidate.json, invalidate-001): base 0x200, pgoff 4, 4 pages; [2, 6).
        assert_eq!(gmem_invalidate_gfn_start(0x200, 4, 2), 0x200);
        assert_eq!(gmem_invalidate_gfn_end(0x200, 4, 4, 6), 0x202);
        assert_eq!(gmem_invalidate_gfn_end(0x200, 4, 4, u64::MAX), 0x204);
    }

    #[test]
    fn private_rule_inverts() {
        assert!(fault_private_by_mask(1 << 34, 1 << 34, true));
        assert!(!fault_private_by_mask(0, 1 << 34, true));
        assert!(fault_private_by_mask(0, 1 << 51, false));
        assert!(!fault_private_by_mask(1 << 51, 1 << 51, false));
    }

    #[test]
    fn pre_fault_checks() {
        assert!(pre_fault_range_invalid(0, 0, 0));
        assert!(pre_fault_range_invalid(0, 4096, 1));
        assert!(pre_fault_range_invalid(1, 4096, 0));
        assert!(pre_fault_range_invalid(u64::MAX - 4095, 4096, 0));
        assert!(!pre_fault_range_invalid(0, 4096, 0));
        let end = pre_fault_mapping_end(0x201000, 0x200000);
        assert_eq!(end, 0x400000);
        assert_eq!(pre_fault_progress(0x201000, 0x400000, end), 0x1ff000);
        assert_eq!(pre_fault_progress(0x201000, 0x1000, end), 0x1000);
    }
}
