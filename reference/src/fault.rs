//! Private vs shared fault classification.
//!
//! The chain for one guest fault, as 6.12 runs it for SVM and as the TDX
//! series does for EPT violations:
//!
//! 1. the exit handler (`npf_interception()`, svm.c) takes the full 64-bit
//!    error code from hardware, WARNs and clears any KVM-synthetic bit
//!    (`PFERR_SYNTHETIC_MASK`) hardware should never set, and adds
//!    `PFERR_PRIVATE_ACCESS` when the platform rule says private;
//! 2. `kvm_mmu_page_fault()` (mmu.c) adds `PFERR_PRIVATE_ACCESS` for
//!    software-protected VMs from the gfn's memory attribute, except for
//!    reserved-bit (MMIO) faults; a reserved-bit fault that is private is a
//!    KVM bug: WARN, -EFAULT;
//! 3. `kvm_mmu_do_page_fault()` (mmu_internal.h) sets
//!    `fault->is_private = err & PFERR_PRIVATE_ACCESS`;
//! 4. `kvm_faultin_pfn()` exits to userspace with `KVM_EXIT_MEMORY_FAULT`
//!    when `is_private` disagrees with the attribute, when a private fault
//!    hits no memslot, or a memslot without guest_memfd.
//!
//! The platform rule is one configurable test ([`FaultRule`]): SNP looks at
//! error-code bit 34 (`PFERR_GUEST_ENC`) and is private when it is *set*;
//! TDX looks at the GPA's shared bit (47 or 51) and is private when it is
//! *clear* — the inverted analogue from the 2023 thread. The whole error code
//! is an input: truncating it to 32 bits (the 2023 `u32 err`) loses bit 34.

use crate::kernel::{
    KVM_MEMORY_EXIT_FLAG_PRIVATE, PAGE_SHIFT, PAGE_SIZE, PFERR_GUEST_ENC_MASK,
    PFERR_PRIVATE_ACCESS, PFERR_RSVD_MASK, PFERR_SYNTHETIC_MASK,
};
use crate::rules::fault_private_by_mask;

/// VM types (`KVM_X86_*_VM`, TDX as in later kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum VmType {
    /// `KVM_X86_DEFAULT_VM`: no private memory.
    #[default]
    Default,
    /// `KVM_X86_SW_PROTECTED_VM`: private memory decided by attributes.
    SwProtected,
    /// `KVM_X86_SEV_VM`.
    Sev,
    /// `KVM_X86_SEV_ES_VM`.
    SevEs,
    /// `KVM_X86_SNP_VM`.
    Snp,
    /// TDX.
    Tdx,
}

impl VmType {
    /// Every VM type, in a fixed order.
    pub const ALL: [VmType; 6] = [
        VmType::Default,
        VmType::SwProtected,
        VmType::Sev,
        VmType::SevEs,
        VmType::Snp,
        VmType::Tdx,
    ];

    /// `kvm_arch_has_private_mem()`.
    pub fn has_private_mem(self) -> bool {
        matches!(self, VmType::SwProtected | VmType::Snp | VmType::Tdx)
    }
}

/// What the platform rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RuleSource {
    /// The hardware error code (SNP).
    ErrorCode,
    /// The faulting GPA (TDX).
    Gpa,
    /// The gfn's memory attribute (software-protected VMs).
    Attribute,
    /// Nothing: never private (VMs without private memory).
    Never,
}

/// Whether a set masked bit means private or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum PrivateWhen {
    /// Private iff some bit of the mask is set.
    Set,
    /// Private iff no bit of the mask is set.
    Clear,
}

/// The platform-configurable private-fault rule (the 2023
/// `mmu_private_fault_mask`, with TDX's inverted GPA analogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct FaultRule {
    /// What is tested.
    pub source: RuleSource,
    /// Which bits.
    #[cfg_attr(feature = "serde", serde(default))]
    pub mask: u64,
    /// Polarity.
    pub private_when: PrivateWhen,
}

impl FaultRule {
    /// The rule each VM type uses. `tdx_shared_bit` is the GPA bit TDX uses
    /// for shared (47 with 4-level EPT, 51 with 5-level).
    pub fn for_vm(vm: VmType, tdx_shared_bit: u8) -> FaultRule {
        match vm {
            VmType::Snp => FaultRule {
                source: RuleSource::ErrorCode,
                mask: PFERR_GUEST_ENC_MASK,
                private_when: PrivateWhen::Set,
            },
            VmType::Tdx => FaultRule {
                source: RuleSource::Gpa,
                mask: 1u64.wrapping_shl(u32::from(tdx_shared_bit)),
                private_when: PrivateWhen::Clear,
            },
            VmType::SwProtected => FaultRule {
                source: RuleSource::Attribute,
                mask: 0,
                private_when: PrivateWhen::Set,
            },
            VmType::Default | VmType::Sev | VmType::SevEs => FaultRule {
                source: RuleSource::Never,
                mask: 0,
                private_when: PrivateWhen::Set,
            },
        }
    }

    /// Whether the platform says the access is private.
    pub fn is_private(&self, error_code: u64, gpa: u64, attr_private: bool) -> bool {
        let set = self.private_when == PrivateWhen::Set;
        match self.source {
            RuleSource::ErrorCode => fault_private_by_mask(error_code, self.mask, set),
            RuleSource::Gpa => fault_private_by_mask(gpa, self.mask, set),
            // Reserved-bit faults are emulated MMIO, shared by definition.
            RuleSource::Attribute => attr_private && error_code & PFERR_RSVD_MASK == 0,
            RuleSource::Never => false,
        }
    }
}

/// What backs the faulting gfn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SlotKind {
    /// A memslot bound to a guest_memfd.
    #[default]
    Gmem,
    /// A memslot without guest_memfd.
    Plain,
    /// No memslot.
    None,
}

/// Input of [`classify_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct FaultInput {
    /// VM type.
    pub vm_type: VmType,
    /// The error code as hardware reported it, all 64 bits.
    pub error_code: u64,
    /// The faulting GPA.
    pub gpa: u64,
    /// `KVM_MEMORY_ATTRIBUTE_PRIVATE` set on the gfn.
    #[cfg_attr(feature = "serde", serde(default))]
    pub attr_private: bool,
    /// What backs the gfn.
    #[cfg_attr(feature = "serde", serde(default))]
    pub slot: SlotKind,
    /// TDX's shared GPA bit, 47 or 51.
    #[cfg_attr(feature = "serde", serde(default = "default_shared_bit"))]
    pub tdx_shared_bit: u8,
    /// Overrides the VM type's rule.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rule: Option<FaultRule>,
}

#[cfg(feature = "serde")]
fn default_shared_bit() -> u8 {
    51
}

/// How the fault ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Outcome {
    /// The fault goes on to map the page.
    Map,
    /// No memslot and shared: emulated MMIO.
    Mmio,
    /// `KVM_EXIT_MEMORY_FAULT`, KVM_RUN returns -EFAULT.
    MemoryFault,
    /// -EFAULT without an exit (a WARN: private reserved-bit fault).
    Efault,
}

/// `run->memory_fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryFaultExit {
    /// `gfn << PAGE_SHIFT`.
    pub gpa: u64,
    /// Always `PAGE_SIZE`.
    pub size: u64,
    /// `KVM_MEMORY_EXIT_FLAG_PRIVATE` iff the fault was private.
    pub flags: u64,
}

/// What the classification chain decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FaultDecision {
    /// `fault->is_private`.
    pub private: bool,
    /// The error code `kvm_mmu_do_page_fault()` receives.
    pub error_code: u64,
    /// `fault->gfn` (the GPA's frame, TDX shared bit stripped).
    pub gfn: u64,
    /// How the fault ends.
    pub outcome: Outcome,
    /// The exit, when the outcome is [`Outcome::MemoryFault`].
    pub exit: Option<MemoryFaultExit>,
    /// WARNs on the way (hardware set a synthetic bit; private MMIO).
    pub warnings: u32,
}

/// Runs the classification chain for one fault.
pub fn classify_fault(input: &FaultInput) -> FaultDecision {
    let rule = input
        .rule
        .unwrap_or_else(|| FaultRule::for_vm(input.vm_type, input.tdx_shared_bit));
    let mut warnings = 0;
    let mut err = input.error_code;
    if err & PFERR_SYNTHETIC_MASK != 0 {
        warnings += 1;
        err &= !PFERR_SYNTHETIC_MASK;
    }
    let private = rule.is_private(err, input.gpa, input.attr_private);
    if private {
        err |= PFERR_PRIVATE_ACCESS;
    }
    // TDX's gfn has the shared bit stripped (it aliases the same memory).
    let strip = if rule.source == RuleSource::Gpa {
        rule.mask
    } else {
        0
    };
    let gfn = (input.gpa & !strip) >> PAGE_SHIFT;
    let exit = MemoryFaultExit {
        gpa: gfn << PAGE_SHIFT,
        size: PAGE_SIZE,
        flags: if private {
            KVM_MEMORY_EXIT_FLAG_PRIVATE
        } else {
            0
        },
    };
    let (outcome, exit) = if private && err & PFERR_RSVD_MASK != 0 {
        warnings += 1;
        (Outcome::Efault, None)
    } else if private != input.attr_private {
        (Outcome::MemoryFault, Some(exit))
    } else {
        match (input.slot, private) {
            (SlotKind::None, false) => (Outcome::Mmio, None),
            (SlotKind::None | SlotKind::Plain, true) => (Outcome::MemoryFault, Some(exit)),
            _ => (Outcome::Map, None),
        }
    };
    FaultDecision {
        private,
        error_code: err,
        gfn,
        outcome,
        exit,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snp(error_code: u64, attr_private: bool) -> FaultDecision {
        classify_fault(&FaultInput {
            vm_type: VmType::Snp,
            error_code,
            gpa: 0x1234_5000,
            attr_private,
            slot: SlotKind::Gmem,
            tdx_shared_bit: 51,
            rule: None,
        })
    }

    #[test]
    fn snp_bit_34_decides() {
        let d = snp(PFERR_GUEST_ENC_MASK | 1, true);
        assert!(d.private);
        assert_eq!(d.outcome, Outcome::Map);
        assert_eq!(
            d.error_code,
            PFERR_GUEST_ENC_MASK | 1 | PFERR_PRIVATE_ACCESS
        );
        // The same code truncated to 32 bits is shared, and mismatches.
        let t = snp((PFERR_GUEST_ENC_MASK | 1) & 0xffff_ffff, true);
        assert!(!t.private);
        assert_eq!(t.outcome, Outcome::MemoryFault);
        assert_eq!(
            t.exit,
            Some(MemoryFaultExit {
                gpa: 0x1234_5000,
                size: 4096,
                flags: 0
            })
        );
    }

    #[test]
    fn tdx_is_inverted() {
        let mut i = FaultInput {
            vm_type: VmType::Tdx,
            error_code: 0,
            gpa: 0x5000,
            attr_private: true,
            slot: SlotKind::Gmem,
            tdx_shared_bit: 47,
            rule: None,
        };
        assert!(classify_fault(&i).private);
        i.gpa |= 1 << 47;
        i.attr_private = false;
        let d = classify_fault(&i);
        assert!(!d.private);
        assert_eq!(d.gfn, 5);
    }
}
