//! Binding a memslot to a guest_memfd file.
//!
//! Models the memslot checks of `__kvm_set_memory_region()` (virt/kvm/kvm_main.c)
//! that precede the bind, then `kvm_gmem_bind()` (virt/kvm/guest_memfd.c):
//!
//! 1. `guest_memfd_offset` not page aligned, or offset + size wrapping → -EINVAL
//!    (memslot code; upstream only — the 2023 branch did neither check);
//! 2. the new slot's gfns overlap another memslot → -EEXIST;
//! 3. `fget(fd)` fails → -EBADF (2023: -EINVAL);
//! 4. not a guest_memfd, or one of another VM → -EINVAL;
//! 5. offset not page aligned (upstream) or offset + size past EOF → -EINVAL;
//! 6. any file page of the new binding already bound → -EINVAL, or -EEXIST
//!    under the prepare/commit contract ([`BindContract::PrepareCommit`]).
//!
//! On success the slot records `gmem.pgoff = offset >> PAGE_SHIFT` and the
//! file's xarray holds the slot over `[pgoff, pgoff + npages)`.
//!
//! Upstream's 7.2 guest_memfd pull (and Debian's 6.12.118 stable update)
//! split `kvm_gmem_bind()` in two, called from the memslot code around
//! installing the slot: `kvm_gmem_prepare_memory_region()` makes checks 3-5
//! and keeps the file, `kvm_gmem_commit_memory_region()` makes check 6 and
//! stores the binding. The split changed one errno (a file range bound
//! twice is -EEXIST, as a GPA range bound twice always was) and spelled
//! offsets and sizes unsigned. The model's offset and size arithmetic was
//! always unsigned (u64, within what the memslot checks let through), so a
//! `loff_t` sum that wraps negative diverges under either contract.

use crate::error::InputError;
use crate::invalidate::{Binding, Bindings};
use crate::kernel::{KVM_MEM_MAX_NR_PAGES, PAGE_SHIFT, PAGE_SIZE, errno};
use crate::profile::Profile;
use crate::rules::gmem_bind_range_invalid;

/// An open file descriptor of the VM's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct OpenFile {
    /// The descriptor number.
    pub fd: u32,
    /// `i_size` in bytes.
    pub size: u64,
    /// Whether it is a guest_memfd (`file->f_op == &kvm_gmem_fops`).
    #[cfg_attr(feature = "serde", serde(default = "yes"))]
    pub gmem: bool,
    /// Whether the guest_memfd belongs to another VM (`gmem->kvm != kvm`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub other_vm: bool,
}

#[cfg(feature = "serde")]
fn yes() -> bool {
    true
}

/// An existing memslot of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Memslot {
    /// `slot->id`.
    pub id: u16,
    /// `slot->base_gfn`.
    pub base_gfn: u64,
    /// `slot->npages`.
    pub npages: u64,
    /// The guest_memfd binding, if any: (fd, file page offset).
    #[cfg_attr(feature = "serde", serde(default))]
    pub gmem: Option<SlotGmem>,
}

/// A memslot's guest_memfd binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct SlotGmem {
    /// The file's descriptor.
    pub fd: u32,
    /// `slot->gmem.pgoff`.
    pub pgoff: u64,
}

/// A `KVM_SET_USER_MEMORY_REGION2` creating a guest_memfd memslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct NewSlot {
    /// Slot id.
    pub id: u16,
    /// First gfn.
    pub base_gfn: u64,
    /// Size in pages.
    pub npages: u64,
    /// `guest_memfd`.
    pub fd: u32,
    /// `guest_memfd_offset` in bytes.
    pub offset: u64,
}

/// Which bind contract the C is held to: a property of its shape, not of
/// a vector (the checker sets it from what the C under test defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BindContract {
    /// `kvm_gmem_bind()` in one call (2023 to 6.12.117, mainline before
    /// 7.2): a file range bound twice is -EINVAL.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "bind"))]
    Bind,
    /// `kvm_gmem_prepare_memory_region()` + `kvm_gmem_commit_memory_region()`
    /// (7.2, 6.12.118+): a file range bound twice is -EEXIST.
    #[cfg_attr(feature = "serde", serde(rename = "prepare-commit"))]
    PrepareCommit,
}

impl BindContract {
    /// The errno of a file range already bound.
    pub fn overlap_errno(self) -> i32 {
        match self {
            BindContract::Bind => errno::EINVAL,
            BindContract::PrepareCommit => errno::EEXIST,
        }
    }

    /// The contract's name as the vectors spell it.
    pub fn name(self) -> &'static str {
        match self {
            BindContract::Bind => "bind",
            BindContract::PrepareCommit => "prepare-commit",
        }
    }

    /// Whether this is the default contract (serde skips it).
    pub fn is_default(&self) -> bool {
        *self == BindContract::Bind
    }
}

/// Input of [`kvm_gmem_bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct BindInput {
    /// Kernel generation.
    #[cfg_attr(feature = "serde", serde(default))]
    pub profile: Profile,
    /// One call or two (upstream only).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "BindContract::is_default")
    )]
    pub contract: BindContract,
    /// Open files.
    pub files: Vec<OpenFile>,
    /// Existing memslots.
    #[cfg_attr(feature = "serde", serde(default))]
    pub slots: Vec<Memslot>,
    /// The slot being created.
    pub new: NewSlot,
}

/// Result of [`kvm_gmem_bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BindOutcome {
    /// 0 or -errno.
    pub ret: i32,
    /// The new binding on success.
    pub binding: Option<Binding>,
}

impl BindOutcome {
    fn err(e: i32) -> Self {
        BindOutcome {
            ret: -e,
            binding: None,
        }
    }
}

fn validate(input: &BindInput) -> Result<(), InputError> {
    if input.contract == BindContract::PrepareCommit && input.profile != Profile::Upstream {
        return Err(InputError::new(
            "contract",
            "prepare-commit is an upstream contract (7.2, 6.12.118+)",
        ));
    }
    for (i, f) in input.files.iter().enumerate() {
        if input.files[..i].iter().any(|g| g.fd == f.fd) {
            return Err(InputError::new(format!("files[{i}].fd"), "fd listed twice"));
        }
        if f.size > i64::MAX as u64 {
            return Err(InputError::new(
                format!("files[{i}].size"),
                "i_size is a loff_t: at most 2^63 - 1",
            ));
        }
    }
    for (i, s) in input.slots.iter().enumerate() {
        if s.npages == 0 || s.npages > KVM_MEM_MAX_NR_PAGES {
            return Err(InputError::new(
                format!("slots[{i}].npages"),
                format!("a memslot has 1 to {KVM_MEM_MAX_NR_PAGES} pages"),
            ));
        }
        if s.base_gfn
            .checked_add(s.npages)
            .is_none_or(|e| e >= 1 << (64 - PAGE_SHIFT))
        {
            return Err(InputError::new(
                format!("slots[{i}].base_gfn"),
                "the memslot's GPA range exceeds 64 bits",
            ));
        }
        if input.slots[..i].iter().any(|t| t.id == s.id) || s.id == input.new.id {
            return Err(InputError::new(
                format!("slots[{i}].id"),
                "slot id used twice",
            ));
        }
        if let Some(g) = s.gmem
            && !input.files.iter().any(|f| f.fd == g.fd && f.gmem)
        {
            return Err(InputError::new(
                format!("slots[{i}].gmem.fd"),
                "a bound memslot's fd must be a guest_memfd in files",
            ));
        }
    }
    if input.new.npages == 0 {
        return Err(InputError::new(
            "new.npages",
            "a memslot has at least one page",
        ));
    }
    Ok(())
}

/// The memslot checks of `__kvm_set_memory_region()` that run before
/// `kvm_gmem_bind()`: the -errno they decide, or `None` to go on binding.
pub fn memslot_checks(input: &BindInput) -> Result<Option<i32>, InputError> {
    validate(input)?;
    let new = &input.new;
    // npages is capped by KVM_MEM_MAX_NR_PAGES first, so sizes cannot
    // overflow below.
    if new.npages > KVM_MEM_MAX_NR_PAGES {
        return Ok(Some(-errno::EINVAL));
    }
    let size = new.npages << PAGE_SHIFT;
    // `guest_phys_addr + memory_size < guest_phys_addr` in u64: a range
    // ending exactly at 2^64 wraps to 0 and fails too.
    let gpa_ok = new
        .base_gfn
        .checked_add(new.npages)
        .is_some_and(|e| e < 1 << (64 - PAGE_SHIFT));
    if !gpa_ok {
        return Ok(Some(-errno::EINVAL));
    }
    if input.profile == Profile::Upstream
        && ((new.offset & (PAGE_SIZE - 1)) != 0 || new.offset.checked_add(size).is_none())
    {
        return Ok(Some(-errno::EINVAL));
    }
    let new_end = new.base_gfn + new.npages;
    if input
        .slots
        .iter()
        .any(|s| new.base_gfn < s.base_gfn + s.npages && s.base_gfn < new_end)
    {
        return Ok(Some(-errno::EEXIST));
    }
    Ok(None)
}

/// The existing bindings of file `fd`.
pub fn bindings_of(input: &BindInput, fd: u32) -> Vec<Binding> {
    input
        .slots
        .iter()
        .filter_map(|s| {
            s.gmem.filter(|g| g.fd == fd).map(|g| Binding {
                id: s.id,
                base_gfn: s.base_gfn,
                npages: s.npages,
                pgoff: g.pgoff,
            })
        })
        .collect()
}

/// `__kvm_set_memory_region()`'s guest_memfd checks, then `kvm_gmem_bind()`.
pub fn kvm_gmem_bind(input: &BindInput) -> Result<BindOutcome, InputError> {
    if let Some(e) = memslot_checks(input)? {
        return Ok(BindOutcome {
            ret: e,
            binding: None,
        });
    }
    let p = input.profile;
    let new = &input.new;
    let size = new.npages << PAGE_SHIFT;

    let Some(file) = input.files.iter().find(|f| f.fd == new.fd) else {
        let e = if p.bind_bad_fd_is_ebadf() {
            errno::EBADF
        } else {
            errno::EINVAL
        };
        return Ok(BindOutcome::err(e));
    };
    if !file.gmem || file.other_vm {
        return Ok(BindOutcome::err(errno::EINVAL));
    }
    let range_bad = match p {
        Profile::Upstream => gmem_bind_range_invalid(new.offset, size, file.size),
        // No alignment check. `offset` is a loff_t, but
        // `offset + (npages << PAGE_SHIFT)` adds an unsigned long, so C's
        // usual conversions make the sum and the comparison with i_size
        // unsigned: no wrap for any offset below 2^63.
        Profile::GmemSolo2023 => (new.offset as i64) < 0 || new.offset + size > file.size,
    };
    if range_bad {
        return Ok(BindOutcome::err(errno::EINVAL));
    }
    let pgoff = new.offset >> PAGE_SHIFT;
    let bindings = Bindings::new(&bindings_of(input, new.fd))?;
    // The new binding's last page, as the kernel computes `end - 1`.
    let last = pgoff.wrapping_add(new.npages).wrapping_sub(1);
    if bindings.overlapping(pgoff, last).next().is_some() {
        return Ok(BindOutcome::err(input.contract.overlap_errno()));
    }
    Ok(BindOutcome {
        ret: 0,
        binding: Some(Binding {
            id: new.id,
            base_gfn: new.base_gfn,
            npages: new.npages,
            pgoff,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(profile: Profile, fd: u32, offset: u64) -> BindInput {
        BindInput {
            profile,
            contract: BindContract::Bind,
            files: vec![OpenFile {
                fd: 3,
                size: 16 * PAGE_SIZE,
                gmem: true,
                other_vm: false,
            }],
            slots: vec![Memslot {
                id: 0,
                base_gfn: 0x100,
                npages: 4,
                gmem: Some(SlotGmem { fd: 3, pgoff: 0 }),
            }],
            new: NewSlot {
                id: 1,
                base_gfn: 0x200,
                npages: 4,
                fd,
                offset,
            },
        }
    }

    fn ret(i: &BindInput) -> i32 {
        kvm_gmem_bind(i).expect("valid input").ret
    }

    #[test]
    fn errnos_per_profile() {
        assert_eq!(ret(&input(Profile::Upstream, 3, 4 * PAGE_SIZE)), 0);
        assert_eq!(
            ret(&input(Profile::Upstream, 7, 4 * PAGE_SIZE)),
            -errno::EBADF
        );
        assert_eq!(
            ret(&input(Profile::GmemSolo2023, 7, 4 * PAGE_SIZE)),
            -errno::EINVAL
        );
        assert_eq!(
            ret(&input(Profile::Upstream, 3, 4 * PAGE_SIZE + 1)),
            -errno::EINVAL
        );
        // 2023: unaligned offset accepted, pgoff truncated.
        let out = kvm_gmem_bind(&input(Profile::GmemSolo2023, 3, 4 * PAGE_SIZE + 1)).unwrap();
        assert_eq!(out.binding.map(|b| b.pgoff), Some(4));
        assert_eq!(
            ret(&input(Profile::Upstream, 3, 2 * PAGE_SIZE)),
            -errno::EINVAL
        );
        assert_eq!(
            ret(&input(Profile::Upstream, 3, 13 * PAGE_SIZE)),
            -errno::EINVAL
        );
        let mut gpa_overlap = input(Profile::Upstream, 3, 4 * PAGE_SIZE);
        gpa_overlap.new.base_gfn = 0x102;
        assert_eq!(ret(&gpa_overlap), -errno::EEXIST);
    }

    #[test]
    fn prepare_commit_changes_only_the_file_overlap_errno() {
        let split = |fd, offset| BindInput {
            contract: BindContract::PrepareCommit,
            ..input(Profile::Upstream, fd, offset)
        };
        // File pages 2-5 overlap slot 0's 0-3: commit says -EEXIST.
        assert_eq!(ret(&split(3, 2 * PAGE_SIZE)), -errno::EEXIST);
        assert_eq!(
            ret(&input(Profile::Upstream, 3, 2 * PAGE_SIZE)),
            -errno::EINVAL
        );
        // Prepare's refusals are the one-call bind's.
        assert_eq!(ret(&split(7, 4 * PAGE_SIZE)), -errno::EBADF);
        assert_eq!(ret(&split(3, 13 * PAGE_SIZE)), -errno::EINVAL);
        assert_eq!(ret(&split(3, 4 * PAGE_SIZE + 1)), -errno::EINVAL);
        // The loff_t wrap's input: unsigned, past the end of the file.
        assert_eq!(ret(&split(3, 0x7FFF_FFFF_FFFF_E000)), -errno::EINVAL);
        assert_eq!(ret(&split(3, 4 * PAGE_SIZE)), 0);
        let solo = BindInput {
            contract: BindContract::PrepareCommit,
            ..input(Profile::GmemSolo2023, 3, 0)
        };
        assert_eq!(
            kvm_gmem_bind(&solo).map_err(|e| e.field),
            Err("contract".to_owned())
        );
    }
}
