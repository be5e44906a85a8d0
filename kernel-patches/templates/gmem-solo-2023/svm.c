//@ npf_interception context arch/x86/kvm/svm/svm.c
static int npf_interception(struct kvm_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	u64 fault_address = svm->vmcb->control.exit_info_2;
	u64 error_code = svm->vmcb->control.exit_info_1;

	trace_kvm_page_fault(vcpu, fault_address, error_code);
	return kvm_mmu_page_fault(vcpu, fault_address, error_code,
				  static_cpu_has(X86_FEATURE_DECODEASSISTS) ?
				  svm->vmcb->control.insn_bytes : NULL,
				  svm->vmcb->control.insn_len);
}

//@ svm_x86_ops context arch/x86/kvm/svm/svm.c
/* The guest_memfd members of SVM's vendor table (the rest is not run). */
static struct kvm_x86_ops svm_x86_ops __initdata = {
	.gmem_prepare = sev_gmem_prepare,
	.gmem_invalidate = sev_gmem_invalidate,
	.private_max_mapping_level = sev_private_max_mapping_level,
};
