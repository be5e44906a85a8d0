//! `KVM_PRE_FAULT_MEMORY`: map guest memory before the vCPU runs.
//!
//! Models `kvm_vcpu_pre_fault_memory()` (virt/kvm/kvm_main.c) and
//! `kvm_arch_vcpu_pre_fault_memory()` / `kvm_tdp_map_page()`
//! (arch/x86/kvm/mmu/mmu.c), Linux 6.11+. The ioctl Sean proposed in the
//! 2023 thread instead of an allocation-time RMP hook: userspace opts in to
//! pre-converting memory (e.g. on a migration target), the default stays lazy.
//!
//! - `flags != 0`, an unaligned gpa or size, size 0 or a wrapping range → -EINVAL;
//! - the arch op: -EOPNOTSUPP unless pre-faulting is allowed (SNP and TDX
//!   only after launch finish) and the MMU is TDP; no memslot → -ENOENT
//!   (RET_PF_EMULATE); a private gfn without guest_memfd → -EFAULT; else
//!   the bytes up to the end of the mapping's (possibly 2M) page;
//! - the loop stops at the first error or a pending signal (-EINTR); the
//!   range is copied back to userspace even on error, and the ioctl returns
//!   0 if any page was mapped, else the error.

use crate::error::InputError;
use crate::fault::VmType;
use crate::kernel::{PAGE_SHIFT, PTRS_PER_PMD, errno};
use crate::rmp::PageSize;
use crate::rules::{pre_fault_mapping_end, pre_fault_progress, pre_fault_range_invalid};

/// A memslot as the pre-fault path sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PreFaultSlot {
    /// First gfn.
    pub base_gfn: u64,
    /// Pages.
    pub npages: u64,
    /// Bound to a guest_memfd.
    #[cfg_attr(feature = "serde", serde(default))]
    pub gmem: bool,
    /// Largest mapping KVM may use in this slot.
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_level: PageSize,
}

/// A gfn range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct GfnSpan {
    /// First gfn.
    pub start: u64,
    /// One past the last.
    pub end: u64,
}

/// Input of [`kvm_vcpu_pre_fault_memory`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct PreFaultInput {
    /// VM type.
    #[cfg_attr(feature = "serde", serde(default))]
    pub vm_type: VmType,
    /// SNP: `SNP_LAUNCH_FINISH` done (TDX: TD finalized).
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub launched: bool,
    /// The MMU is TDP (NPT/EPT).
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub tdp: bool,
    /// `range.gpa`.
    pub gpa: u64,
    /// `range.size`.
    pub size: u64,
    /// `range.flags`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub flags: u64,
    /// Memslots.
    #[cfg_attr(feature = "serde", serde(default))]
    pub slots: Vec<PreFaultSlot>,
    /// Gfns whose attribute is private.
    #[cfg_attr(feature = "serde", serde(default))]
    pub private: Option<GfnSpan>,
    /// A signal becomes pending after this many arch calls.
    #[cfg_attr(feature = "serde", serde(default))]
    pub interrupt_after: Option<u32>,
}

#[cfg(feature = "serde")]
fn yes() -> bool {
    true
}

/// Result of [`kvm_vcpu_pre_fault_memory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PreFaultOutcome {
    /// The ioctl's return value.
    pub ret: i64,
    /// `range.gpa` as copied back.
    pub gpa: u64,
    /// `range.size` as copied back: what is left to do.
    pub size: u64,
    /// Arch calls made.
    pub calls: u32,
    /// WARNs.
    pub warnings: u32,
}

/// Largest number of arch calls the model makes before giving up; inputs
/// needing more are refused (each maps at least one page).
pub const MAX_CALLS: u64 = 1 << 20;

impl PreFaultInput {
    /// `kvm->arch.pre_fault_allowed`, plus the TDP restriction.
    pub(crate) fn allowed(&self) -> bool {
        self.tdp && (self.launched || !matches!(self.vm_type, VmType::Snp | VmType::Tdx))
    }

    /// The memslots ordered by first gfn, checked: each holds a page or
    /// more, does not wrap, and overlaps no other (KVM refuses an
    /// overlapping memslot with -EEXIST before it ever exists).
    pub(crate) fn sorted_slots(&self) -> Result<Vec<&PreFaultSlot>, InputError> {
        for (i, s) in self.slots.iter().enumerate() {
            if s.npages == 0 || s.base_gfn.checked_add(s.npages).is_none() {
                return Err(InputError::new(
                    format!("slots[{i}]"),
                    "a memslot holds 1 page or more and does not wrap",
                ));
            }
        }
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by_key(|&i| self.slots[i].base_gfn);
        for w in order.windows(2) {
            let (a, b) = (&self.slots[w[0]], &self.slots[w[1]]);
            if a.base_gfn + a.npages > b.base_gfn {
                return Err(InputError::new(
                    format!("slots[{}]", w[1]),
                    format!("overlaps slots[{}]: memslots never overlap", w[0]),
                ));
            }
        }
        Ok(order.into_iter().map(|i| &self.slots[i]).collect())
    }

    pub(crate) fn is_private(&self, gfn: u64) -> bool {
        self.vm_type.has_private_mem()
            && self.private.is_some_and(|p| gfn >= p.start && gfn < p.end)
    }

    /// `kvm_arch_vcpu_pre_fault_memory()`: bytes mapped, or -errno.
    /// `sorted` is [`Self::sorted_slots`]: a lookup is a binary search, so
    /// a walk costs O(calls · log slots), never calls × slots.
    fn arch_call(&self, sorted: &[&PreFaultSlot], gpa: u64, size: u64) -> i64 {
        if !self.allowed() {
            return -i64::from(errno::EOPNOTSUPP);
        }
        let gfn = gpa >> PAGE_SHIFT;
        let private = self.is_private(gfn);
        let at = sorted.partition_point(|s| s.base_gfn <= gfn);
        let slot = at
            .checked_sub(1)
            .map(|i| sorted[i])
            .filter(|s| gfn - s.base_gfn < s.npages);
        let Some(slot) = slot else {
            return -i64::from(if private {
                errno::EFAULT
            } else {
                errno::ENOENT
            });
        };
        if private && !slot.gmem {
            return -i64::from(errno::EFAULT);
        }
        let head = gfn & !(PTRS_PER_PMD - 1);
        // A 2M mapping needs the whole 2M frame inside the slot and of one
        // attribute: a frame with private and shared gfns carries
        // KVM_LPAGE_MIXED_FLAG and maps 4K at a time.
        let uniform = match self.private {
            Some(p) if self.vm_type.has_private_mem() && p.start < p.end => {
                let covers = p.start <= head && head.saturating_add(PTRS_PER_PMD) <= p.end;
                let disjoint = p.end <= head || p.start >= head.saturating_add(PTRS_PER_PMD);
                covers || disjoint
            }
            _ => true,
        };
        let huge = slot.max_level == PageSize::M2
            && uniform
            && head >= slot.base_gfn
            && head - slot.base_gfn + PTRS_PER_PMD <= slot.npages;
        let page_size = if huge {
            PTRS_PER_PMD << PAGE_SHIFT
        } else {
            1 << PAGE_SHIFT
        };
        pre_fault_progress(gpa, size, pre_fault_mapping_end(gpa, page_size)) as i64
    }
}

/// The `KVM_PRE_FAULT_MEMORY` vCPU ioctl.
pub fn kvm_vcpu_pre_fault_memory(input: &PreFaultInput) -> Result<PreFaultOutcome, InputError> {
    let sorted = input.sorted_slots()?;
    let mut out = PreFaultOutcome {
        ret: 0,
        gpa: input.gpa,
        size: input.size,
        calls: 0,
        warnings: 0,
    };
    if pre_fault_range_invalid(input.gpa, input.size, input.flags) {
        out.ret = -i64::from(errno::EINVAL);
        return Ok(out);
    }
    let full_size = input.size;
    let mut r: i64;
    loop {
        if input.interrupt_after.is_some_and(|n| out.calls >= n) {
            r = -i64::from(errno::EINTR);
            break;
        }
        if u64::from(out.calls) >= MAX_CALLS {
            return Err(InputError::new(
                "size",
                format!("more than {MAX_CALLS} pages to pre-fault"),
            ));
        }
        r = input.arch_call(&sorted, out.gpa, out.size);
        out.calls += 1;
        if r == 0 || r == -i64::from(errno::EIO) {
            out.warnings += 1;
            break;
        }
        if r < 0 {
            break;
        }
        out.size -= r as u64;
        out.gpa = out.gpa.wrapping_add(r as u64);
        if out.size == 0 {
            break;
        }
    }
    out.ret = if full_size == out.size { r } else { 0 };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_memslots_are_refused() {
        let slot = |base_gfn, npages| PreFaultSlot {
            base_gfn,
            npages,
            gmem: false,
            max_level: PageSize::K4,
        };
        let input = |slots| PreFaultInput {
            vm_type: VmType::Default,
            launched: true,
            tdp: true,
            gpa: 0x10 << 12,
            size: 0x1000,
            flags: 0,
            slots,
            private: None,
            interrupt_after: None,
        };
        let e = kvm_vcpu_pre_fault_memory(&input(vec![slot(0x20, 4), slot(0x10, 0x11)]))
            .expect_err("overlap");
        assert_eq!(e.field, "slots[0]");
        // Adjacent is fine, in any order.
        let ok = kvm_vcpu_pre_fault_memory(&input(vec![slot(0x20, 4), slot(0x10, 0x10)]))
            .expect("adjacent");
        assert_eq!((ok.ret, ok.size), (0, 0));
    }

    /// The 6.12 selftest's layout: a 2M+4K slot, pre-fault past its end.
    #[test]
    fn selftest_layout() {
        let slot = PreFaultSlot {
            base_gfn: 0x1000,
            npages: 513,
            gmem: false,
            max_level: PageSize::M2,
        };
        let base = 0x1000u64 << 12;
        let run = |gpa, size| {
            kvm_vcpu_pre_fault_memory(&PreFaultInput {
                vm_type: VmType::Default,
                launched: true,
                tdp: true,
                gpa,
                size,
                flags: 0,
                slots: vec![slot],
                private: None,
                interrupt_after: None,
            })
            .expect("valid")
        };
        let all = run(base, 0x200000);
        assert_eq!((all.ret, all.size, all.calls), (0, 0, 1));
        let past = run(base + 0x200000, 0x2000);
        assert_eq!((past.ret, past.size), (0, 0x1000));
        let none = run(base + 0x201000, 0x1000);
        assert_eq!((none.ret, none.size), (-i64::from(errno::ENOENT), 0x1000));
    }
}
