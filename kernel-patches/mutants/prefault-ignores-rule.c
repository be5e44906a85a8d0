//! profile: gmem-solo-2023
//! Pre-fault that ignores the platform's private-fault rule: the error code
//! is PFERR_GUEST_FINAL alone and the GPA is used as given, so on SNP
//! (private iff PFERR_GUEST_ENC) every pre-fault is shared, and on TDX
//! (private iff the shared bit is clear) every one is private, whatever
//! the gfn's attribute says.
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
