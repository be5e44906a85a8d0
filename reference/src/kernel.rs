//! Kernel constants the model shares with C, under their kernel names.
//!
//! Values are those of Linux 6.12 (`arch/x86/include/asm/kvm_host.h`,
//! `include/uapi/linux/kvm.h`, `include/uapi/asm-generic/errno*.h`).
//! Codegen emits these names verbatim into C; the shim defines them with the
//! same values, and a checker test compares the two.

/// `PAGE_SHIFT` on x86-64.
pub const PAGE_SHIFT: u64 = 12;
/// `PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// `PTRS_PER_PMD`: 4K pages in a 2M page.
pub const PTRS_PER_PMD: u64 = 512;
/// `PMD_ORDER`: folio order of a 2M folio.
pub const PMD_ORDER: i32 = 9;

/// `enum pg_level` values used by the RMP and MMU code.
pub const PG_LEVEL_4K: i32 = 1;
/// `PG_LEVEL_2M`.
pub const PG_LEVEL_2M: i32 = 2;

/// #NPF / #PF error-code bits (`PFERR_*_MASK`).
pub const PFERR_PRESENT_MASK: u64 = 1 << 0;
/// `PFERR_WRITE_MASK`.
pub const PFERR_WRITE_MASK: u64 = 1 << 1;
/// `PFERR_USER_MASK`.
pub const PFERR_USER_MASK: u64 = 1 << 2;
/// `PFERR_RSVD_MASK`: reserved-bit fault, i.e. emulated MMIO (shared only).
pub const PFERR_RSVD_MASK: u64 = 1 << 3;
/// `PFERR_FETCH_MASK`.
pub const PFERR_FETCH_MASK: u64 = 1 << 4;
/// `PFERR_GUEST_RMP_MASK` (bit 31): the fault was an RMP violation.
pub const PFERR_GUEST_RMP_MASK: u64 = 1 << 31;
/// `PFERR_GUEST_FINAL_MASK` (bit 32).
pub const PFERR_GUEST_FINAL_MASK: u64 = 1 << 32;
/// `PFERR_GUEST_PAGE_MASK` (bit 33).
pub const PFERR_GUEST_PAGE_MASK: u64 = 1 << 33;
/// `PFERR_GUEST_ENC_MASK` (bit 34): SNP's encrypted (private) access bit.
pub const PFERR_GUEST_ENC_MASK: u64 = 1 << 34;
/// `PFERR_GUEST_SIZEM_MASK` (bit 35).
pub const PFERR_GUEST_SIZEM_MASK: u64 = 1 << 35;
/// `PFERR_GUEST_VMPL_MASK` (bit 36).
pub const PFERR_GUEST_VMPL_MASK: u64 = 1 << 36;
/// `PFERR_IMPLICIT_ACCESS` (bit 48), KVM-defined.
pub const PFERR_IMPLICIT_ACCESS: u64 = 1 << 48;
/// `PFERR_PRIVATE_ACCESS` (bit 49), KVM-defined: the synthetic flag that
/// tells `kvm_mmu_do_page_fault()` the fault is private.
pub const PFERR_PRIVATE_ACCESS: u64 = 1 << 49;
/// `PFERR_SYNTHETIC_MASK`: bits hardware must never report.
pub const PFERR_SYNTHETIC_MASK: u64 = PFERR_IMPLICIT_ACCESS | PFERR_PRIVATE_ACCESS;

/// `KVM_EXIT_MEMORY_FAULT` (39 upstream; 38 in 2023 drafts).
pub const KVM_EXIT_MEMORY_FAULT: u32 = 39;
/// `KVM_MEMORY_EXIT_FLAG_PRIVATE`.
pub const KVM_MEMORY_EXIT_FLAG_PRIVATE: u64 = 1 << 3;
/// `KVM_MEMORY_ATTRIBUTE_PRIVATE`.
pub const KVM_MEMORY_ATTRIBUTE_PRIVATE: u64 = 1 << 3;
/// `KVM_MEM_MAX_NR_PAGES` on x86: the largest memslot, in pages.
pub const KVM_MEM_MAX_NR_PAGES: u64 = (1 << 31) - 1;

/// `FALLOC_FL_KEEP_SIZE`.
pub const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE`.
pub const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;

/// Errno values, positive as in `errno-base.h`; functions return `-errno`.
pub mod errno {
    /// `ENOENT`
    pub const ENOENT: i32 = 2;
    /// `EINTR`
    pub const EINTR: i32 = 4;
    /// `EIO`
    pub const EIO: i32 = 5;
    /// `EBADF`
    pub const EBADF: i32 = 9;
    /// `EFAULT`
    pub const EFAULT: i32 = 14;
    /// `EEXIST`
    pub const EEXIST: i32 = 17;
    /// `ENODEV`
    pub const ENODEV: i32 = 19;
    /// `EINVAL`
    pub const EINVAL: i32 = 22;
    /// `EFBIG`
    pub const EFBIG: i32 = 27;
    /// `EOPNOTSUPP`
    pub const EOPNOTSUPP: i32 = 95;
    /// `ENOMEM`
    pub const ENOMEM: i32 = 12;
    /// `EHWPOISON`
    pub const EHWPOISON: i32 = 133;
}
