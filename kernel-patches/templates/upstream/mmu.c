//@ kvm_mmu_page_fault context arch/x86/kvm/mmu/mmu.c
int noinline kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				u64 error_code, void *insn, int insn_len)
{
	int r, emulation_type = EMULTYPE_PF;

	/* Software-protected VMs: the attribute decides; MMIO is shared. */
	if (vcpu->kvm->arch.vm_type == KVM_X86_SW_PROTECTED_VM &&
	    !(error_code & PFERR_RSVD_MASK) &&
	    kvm_mem_is_private(vcpu->kvm, gpa_to_gfn(cr2_or_gpa)))
		error_code |= PFERR_PRIVATE_ACCESS;

	if (unlikely(error_code & PFERR_RSVD_MASK) &&
	    WARN_ON_ONCE(error_code & PFERR_PRIVATE_ACCESS))
		return -EFAULT;

	r = kvm_mmu_do_page_fault(vcpu, cr2_or_gpa, error_code, false,
				  &emulation_type, NULL);
	if (r < 0)
		return r;

	/* Emulating the access (MMIO) is outside what gmemforge checks. */
	return 1;
}

//@ kvm_arch_vcpu_pre_fault_memory context arch/x86/kvm/mmu/mmu.c
long kvm_arch_vcpu_pre_fault_memory(struct kvm_vcpu *vcpu,
				    struct kvm_pre_fault_memory *range)
{
	u64 error_code = PFERR_GUEST_FINAL_MASK;
	u8 level = PG_LEVEL_4K;
	u64 end;
	int r;

	if (!vcpu->kvm->arch.pre_fault_allowed)
		return -EOPNOTSUPP;

	r = kvm_mmu_reload(vcpu);
	if (r)
		return r;

	if (kvm_arch_has_private_mem(vcpu->kvm) &&
	    kvm_mem_is_private(vcpu->kvm, gpa_to_gfn(range->gpa)))
		error_code |= PFERR_PRIVATE_ACCESS;

	r = kvm_tdp_map_page(vcpu, range->gpa, error_code, &level);
	if (r < 0)
		return r;

	/*
	 * A huge mapping may extend beyond the range in both directions;
	 * report only the bytes of the range it covers.
	 */
	end = @{pre_fault_mapping_end(gpa: range->gpa, page_size: KVM_HPAGE_SIZE(level))};
	return @{pre_fault_progress(gpa: range->gpa, size: range->size, end: end)};
}
