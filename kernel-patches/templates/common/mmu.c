//@ kvm_arch_vcpu_pre_fault_memory carried arch/x86/kvm/mmu/mmu.c
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
