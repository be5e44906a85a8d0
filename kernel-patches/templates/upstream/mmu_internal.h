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
		.is_private = err & PFERR_PRIVATE_ACCESS,
	};
	int r;

	fault.gfn = gpa_to_gfn(fault.addr);
	fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);

	r = kvm_tdp_page_fault(vcpu, &fault);

	if (level)
		*level = fault.goal_level;

	return r;
}
