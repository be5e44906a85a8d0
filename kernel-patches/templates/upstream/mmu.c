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
