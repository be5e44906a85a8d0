//! `fallocate()` on a guest_memfd: allocate, or punch a hole.
//!
//! Models the VFS checks of `vfs_fallocate()` (fs/open.c) that guest_memfd
//! relies on, then `kvm_gmem_fallocate()` (virt/kvm/guest_memfd.c):
//! - offset < 0 or len <= 0 → -EINVAL (VFS);
//! - offset + len past `MAX_LFS_FILESIZE` (signed overflow) → -EFBIG (VFS);
//! - no `FALLOC_FL_KEEP_SIZE`, or any mode bit besides KEEP_SIZE and
//!   PUNCH_HOLE → -EOPNOTSUPP (guest_memfd files never change size);
//! - offset or len not page aligned → -EINVAL;
//! - punch hole: always succeeds, even past EOF, and invalidates file pages
//!   `[offset >> 12, (offset + len) >> 12)`;
//! - allocate: offset + len past EOF → -EINVAL, else pages are allocated.

use crate::kernel::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, PAGE_SHIFT, PAGE_SIZE, errno};

/// Input of [`kvm_gmem_fallocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct FallocateInput {
    /// `mode` (`FALLOC_FL_*` bits).
    pub mode: u32,
    /// `offset` (loff_t: may be negative).
    pub offset: i64,
    /// `len` (loff_t).
    pub len: i64,
    /// The file's size in bytes.
    pub size: i64,
}

/// A file page range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PageSpan {
    /// First page.
    pub start: u64,
    /// One past the last.
    pub end: u64,
}

/// Result of [`kvm_gmem_fallocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FallocateOutcome {
    /// 0 or -errno.
    pub ret: i32,
    /// Pages invalidated (punch hole).
    pub invalidate: Option<PageSpan>,
    /// Pages allocated.
    pub allocate: Option<PageSpan>,
}

/// `FALLOC_FL_MODE_MASK`: the modes `vfs_fallocate()` knows.
const FALLOC_FL_MODE_MASK: u32 = 0x02 | 0x08 | 0x10 | 0x20 | 0x40;

/// The mode checks of `vfs_fallocate()` (6.12 fs/open.c): unknown bits,
/// then exactly one mode, PUNCH_HOLE only with KEEP_SIZE, COLLAPSE and
/// INSERT only without it.
fn vfs_mode_ok(mode: u32) -> bool {
    if mode & !(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE) != 0 {
        return false;
    }
    let keep = mode & FALLOC_FL_KEEP_SIZE != 0;
    match mode & FALLOC_FL_MODE_MASK {
        0x00 | 0x10 | 0x40 => true,
        FALLOC_FL_PUNCH_HOLE => keep,
        0x08 | 0x20 => !keep,
        _ => false,
    }
}

/// `vfs_fallocate()` + `kvm_gmem_fallocate()`, in the kernel's order: the
/// VFS checks the range's sign, then the mode, then wrap-around; only then
/// does guest_memfd look at its own mode rules and alignment.
pub fn kvm_gmem_fallocate(i: &FallocateInput) -> FallocateOutcome {
    let fail = |e: i32| FallocateOutcome {
        ret: -e,
        invalidate: None,
        allocate: None,
    };
    if i.offset < 0 || i.len <= 0 {
        return fail(errno::EINVAL);
    }
    if !vfs_mode_ok(i.mode) {
        return fail(errno::EOPNOTSUPP);
    }
    // s_maxbytes is MAX_LFS_FILESIZE (LLONG_MAX): only wrap-around fails.
    let Some(end_byte) = i.offset.checked_add(i.len) else {
        return fail(errno::EFBIG);
    };
    if i.mode & FALLOC_FL_KEEP_SIZE == 0
        || i.mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0
    {
        return fail(errno::EOPNOTSUPP);
    }
    let aligned = |v: i64| (v as u64) & (PAGE_SIZE - 1) == 0;
    if !aligned(i.offset) || !aligned(i.len) {
        return fail(errno::EINVAL);
    }
    let span = PageSpan {
        start: (i.offset as u64) >> PAGE_SHIFT,
        end: (end_byte as u64) >> PAGE_SHIFT,
    };
    if i.mode & FALLOC_FL_PUNCH_HOLE != 0 {
        return FallocateOutcome {
            ret: 0,
            invalidate: Some(span),
            allocate: None,
        };
    }
    if end_byte > i.size {
        return fail(errno::EINVAL);
    }
    FallocateOutcome {
        ret: 0,
        invalidate: None,
        allocate: Some(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(mode: u32, offset: i64, len: i64) -> i32 {
        kvm_gmem_fallocate(&FallocateInput {
            mode,
            offset,
            len,
            size: 4 * 4096,
        })
        .ret
    }

    #[test]
    fn selftest_cases() {
        let punch = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
        assert_eq!(ret(FALLOC_FL_KEEP_SIZE, 0, 4 * 4096), 0);
        assert_eq!(ret(FALLOC_FL_KEEP_SIZE, 4 * 4096, 4096), -errno::EINVAL);
        assert_eq!(ret(punch, 4 * 4096, 4096), 0);
        assert_eq!(ret(punch, 1, 4096), -errno::EINVAL);
        assert_eq!(ret(punch, 0, 1), -errno::EINVAL);
        assert_eq!(ret(0, 0, 4096), -errno::EOPNOTSUPP);
        assert_eq!(ret(punch, i64::MAX - 4095, 8192), -errno::EFBIG);
        // The VFS rejects an unknown mode combination before the overflow.
        assert_eq!(ret(0x13, i64::MAX - 4095, 8192), -errno::EOPNOTSUPP);
        // A mode the VFS accepts but guest_memfd does not.
        assert_eq!(ret(0x10 | FALLOC_FL_KEEP_SIZE, 0, 4096), -errno::EOPNOTSUPP);
    }
}
