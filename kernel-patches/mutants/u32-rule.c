//! profile: gmem-solo-2023
//! The configurable private-fault rule taking the error code as u32: the
//! call converts the 64-bit code, SNP's PFERR_GUEST_ENC (bit 34) is lost
//! inside the rule itself.
//@ kvm_mmu_fault_is_private carried arch/x86/kvm/mmu/mmu_internal.h
static inline bool kvm_mmu_fault_is_private(struct kvm *kvm, gpa_t gpa, u32 err)
{
	if (kvm->arch.mmu_private_fault_mask)
		return err & kvm->arch.mmu_private_fault_mask;

	if (kvm->arch.gfn_shared_mask)
		return !(gpa_to_gfn(gpa) & kvm->arch.gfn_shared_mask);

	if (!kvm_arch_has_private_mem(kvm) || (err & PFERR_RSVD_MASK))
		return false;

	return kvm_mem_is_private(kvm, gpa_to_gfn(gpa));
}
