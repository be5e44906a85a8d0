//! profile: gmem-solo-2023
//! The 2023 error-code truncation: kvm_mmu_page_fault() hands
//! lower_32_bits(error_code) to a kvm_mmu_do_page_fault() taking u32 err,
//! so SNP's PFERR_GUEST_ENC (bit 34) never reaches the private-fault rule.
//@ kvm_mmu_do_page_fault carried arch/x86/kvm/mmu/mmu_internal.h
static inline int kvm_mmu_do_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
					u32 err, bool prefetch,
					int *emulation_type, u8 *level)
{
	struct kvm_page_fault fault = {
		.addr = cr2_or_gpa,
		.error_code = err,
		.exec = err & PFERR_FETCH_MASK,
		.write = err & PFERR_WRITE_MASK,
		.present = err & PFERR_PRESENT_MASK,
		.rsvd = err & PFERR_RSVD_MASK,
		.user = err & PFERR_USER_MASK,
		.prefetch = prefetch,
		.is_tdp = true,
		.max_level = KVM_MAX_HUGEPAGE_LEVEL,
		.req_level = PG_LEVEL_4K,
		.goal_level = PG_LEVEL_4K,
		.is_private = kvm_mmu_fault_is_private(vcpu->kvm, cr2_or_gpa,
						       err),
	};
	int r;

	fault.gfn = gpa_to_gfn(fault.addr) & ~vcpu->kvm->arch.gfn_shared_mask;
	fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);

	r = kvm_tdp_page_fault(vcpu, &fault);
	if (level)
		*level = fault.goal_level;

	return r;
}

//@ kvm_mmu_page_fault carried arch/x86/kvm/mmu/mmu.c
int noinline kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				u64 error_code, void *insn, int insn_len)
{
	int r, emulation_type = EMULTYPE_PF;

	if (unlikely(error_code & PFERR_RSVD_MASK) &&
	    WARN_ON_ONCE(kvm_mmu_fault_is_private(vcpu->kvm, cr2_or_gpa,
						  error_code)))
		return -EFAULT;

	r = kvm_mmu_do_page_fault(vcpu, cr2_or_gpa, lower_32_bits(error_code),
				  false, &emulation_type, NULL);
	if (r < 0)
		return r;

	return 1;
}
