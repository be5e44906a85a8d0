//@ kvm_mmu_page_fault carried arch/x86/kvm/mmu/mmu.c
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
				  &emulation_type);
	if (r < 0)
		return r;

	return 1;
}
