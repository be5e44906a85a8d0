//@ kvm_mmu_page_fault edited arch/x86/kvm/mmu/mmu.c
int noinline kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				u64 error_code, void *insn, int insn_len)
{
	int r, emulation_type = EMULTYPE_PF;

	if (unlikely(error_code & PFERR_RSVD_MASK) &&
	    WARN_ON_ONCE(kvm_mmu_fault_is_private(vcpu->kvm, cr2_or_gpa,
						  error_code)))
		return -EFAULT;

	/* All 64 bits: SNP's PFERR_GUEST_ENC is bit 34. */
	r = kvm_mmu_do_page_fault(vcpu, cr2_or_gpa, error_code, false,
				  &emulation_type, NULL);
	if (r < 0)
		return r;

	return 1;
}

//@ kvm_tdp_map_page carried arch/x86/kvm/mmu/mmu.c
static int kvm_tdp_map_page(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code,
			    u8 *level)
{
	int r;

	/* Only a TDP MMU is indexed by GPA. */
	if (vcpu->arch.mmu->page_fault != kvm_tdp_page_fault)
		return -EOPNOTSUPP;

	for (;;) {
		r = kvm_mmu_do_page_fault(vcpu, gpa, error_code, true, NULL,
					  level);
		if (r != RET_PF_RETRY)
			break;

		/* An invalidation raced with the fault: wait it out. */
		if (signal_pending(current))
			return -EINTR;
		cond_resched();
	}

	if (r < 0)
		return r;

	switch (r) {
	case RET_PF_FIXED:
	case RET_PF_SPURIOUS:
		return 0;
	case RET_PF_EMULATE:
		/* No memslot (or MMIO): nothing to map. */
		return -ENOENT;
	default:
		WARN_ONCE(1, "could not fix page fault during prefault");
		return -EIO;
	}
}

//@ kvm_arch_vcpu_pre_fault_memory carried arch/x86/kvm/mmu/mmu.c
long kvm_arch_vcpu_pre_fault_memory(struct kvm_vcpu *vcpu,
				    struct kvm_pre_fault_memory *range)
{
	u64 error_code = PFERR_GUEST_FINAL_MASK;
	struct kvm *kvm = vcpu->kvm;
	gpa_t gpa = range->gpa;
	u8 level = PG_LEVEL_4K;
	u64 end;
	int r;

	if (!kvm->arch.pre_fault_allowed)
		return -EOPNOTSUPP;

	r = kvm_mmu_reload(vcpu);
	if (r)
		return r;

	/*
	 * Fault the way the guest reaches the gfn, so that the platform's
	 * private-fault rule agrees with its attribute: private with the
	 * error-code bits that mean private (SNP), shared with the GPA's
	 * shared bit set (TDX). Without either, the attribute decides.
	 */
	if (kvm_arch_has_private_mem(kvm) &&
	    kvm_mem_is_private(kvm, gpa_to_gfn(gpa)))
		error_code |= kvm->arch.mmu_private_fault_mask;
	else
		gpa |= gfn_to_gpa(kvm->arch.gfn_shared_mask);

	r = kvm_tdp_map_page(vcpu, gpa, error_code, &level);
	if (r < 0)
		return r;

	/*
	 * A huge mapping may extend beyond the range in both directions;
	 * report only the bytes of the range it covers.
	 */
	end = @{pre_fault_mapping_end(gpa: range->gpa, page_size: KVM_HPAGE_SIZE(level))};
	return @{pre_fault_progress(gpa: range->gpa, size: range->size, end: end)};
}
