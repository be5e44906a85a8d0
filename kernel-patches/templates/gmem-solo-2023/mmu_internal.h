//@ kvm_mmu_fault_is_private carried arch/x86/kvm/mmu/mmu_internal.h
static inline bool kvm_mmu_fault_is_private(struct kvm *kvm, gpa_t gpa, u64 err)
{
	/* SNP: the error code says it (PFERR_GUEST_ENC). */
	if (kvm->arch.mmu_private_fault_mask)
		return @{fault_private_by_mask(bits: err, mask: kvm->arch.mmu_private_fault_mask, private_if_set: true)};

	/* TDX: the inverse, a GPA without the shared bit is private. */
	if (kvm->arch.gfn_shared_mask)
		return @{fault_private_by_mask(bits: gpa_to_gfn(gpa), mask: kvm->arch.gfn_shared_mask, private_if_set: false)};

	/* Software-protected VMs: the attribute decides; MMIO is shared. */
	if (!kvm_arch_has_private_mem(kvm) || (err & PFERR_RSVD_MASK))
		return false;

	return kvm_mem_is_private(kvm, gpa_to_gfn(gpa));
}

//@ kvm_mmu_do_page_fault edited arch/x86/kvm/mmu/mmu_internal.h
static inline int kvm_mmu_do_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
					u64 err, bool prefetch,
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

	/* The shared bit aliases the same gfn; strip it (no-op without TDX). */
	fault.gfn = gpa_to_gfn(fault.addr) & ~vcpu->kvm->arch.gfn_shared_mask;
	fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);

	r = kvm_tdp_page_fault(vcpu, &fault);

	/* The level the fault mapped (pre-fault reports how far it got). */
	if (level)
		*level = fault.goal_level;

	return r;
}
