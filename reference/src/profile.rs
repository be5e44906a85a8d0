//! Kernel generations the model maps onto.
//!
//! Behaviour that differs between trees *by design* (not by bug) is a profile
//! parameter of the one model: the 2023 kvm_gmem_solo bind had no alignment
//! check and returned -EINVAL for every failure; upstream (6.12) returns
//! -EBADF for a bad fd and rejects unaligned offsets.

/// A kernel generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Profile {
    /// virt/kvm/guest_memfd.c, `slot->gmem.pgoff`, Linux 6.12 and later.
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "upstream"))]
    Upstream,
    /// virt/kvm/guest_mem.c of the 2023 kvm_gmem_solo branch, `slot->gmem.index`.
    #[cfg_attr(feature = "serde", serde(rename = "gmem-solo-2023"))]
    GmemSolo2023,
}

impl Profile {
    /// Every profile, in a fixed order.
    pub const ALL: [Profile; 2] = [Profile::Upstream, Profile::GmemSolo2023];

    /// The profile's name as the CLI and the vectors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Upstream => "upstream",
            Profile::GmemSolo2023 => "gmem-solo-2023",
        }
    }

    /// Whether `kvm_gmem_bind()` rejects a file offset that is not page aligned.
    pub fn bind_checks_alignment(self) -> bool {
        self == Profile::Upstream
    }

    /// Whether a bad fd is -EBADF (upstream) rather than -EINVAL (2023).
    pub fn bind_bad_fd_is_ebadf(self) -> bool {
        self == Profile::Upstream
    }
}
