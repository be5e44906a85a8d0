// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_classify(): one #NPF (or, for TDX, one EPT violation) through the
 * unit's exit handler / kvm_mmu_page_fault() / kvm_mmu_do_page_fault()
 * into the shim's kvm_tdp_page_fault(), which records the fault.
 *
 * The gfn's memory attribute and memslot are the same for every gfn (one
 * all-covering slot, or none): the vector describes a single fault.
 */
#ifdef GMF_HAVE_OP_CLASSIFY
#include "common.h"

static struct file gmf_classify_file;

int gmf_classify(const struct gmf_fault_in *in, struct gmf_fault_out *out)
{
	struct kvm *kvm = &gmf_world.vm.kvm;
	struct kvm_vcpu *vcpu = &gmf_world.vcpu.vcpu;
	struct kvm_memory_slot *slot = &gmf_world.slots[0];
	int ret;

	if (in->vm_type > GMF_VM_TDX || in->slot_kind > GMF_SLOT_NONE ||
	    in->rule_source > 3)
		return -1;

	gmf_shim_reset();
	gmf_shim_reset_vcpu();
	gmf_setup_vm(in->vm_type);

	/* The platform rule, in the 2023 fields that carried it. */
	if (in->rule_source == 0 && in->rule_private_if_set)
		kvm->arch.mmu_private_fault_mask = in->rule_mask;
	if (in->rule_source == 1 && !in->rule_private_if_set)
		kvm->arch.gfn_shared_mask = gpa_to_gfn(in->rule_mask);

	if (in->attr_private) {
		kvm->gmf_private_start = 0;
		kvm->gmf_private_end = ~(gfn_t)0;
	}
	if (in->slot_kind != GMF_SLOT_NONE) {
		__builtin_memset(slot, 0, sizeof(*slot));
		slot->npages = ~0UL;
		slot->gmf_max_level = PG_LEVEL_4K;
		if (in->slot_kind == GMF_SLOT_GMEM) {
			slot->flags = KVM_MEM_GUEST_MEMFD;
			slot->gmem.file = &gmf_classify_file;
		}
		kvm->gmf_slots[0] = slot;
		kvm->gmf_nslots = 1;
	}

	if (in->vm_type == GMF_VM_TDX) {
#ifdef GMF_HAVE_TDX_EPT_VIOLATION
		/*
		 * 6.16+: the unit's own EPT-violation exit.  A TD exit has no
		 * error code: the GPA goes in as the exit's, the access as the
		 * exit qualification (a write or a read, the entry present or
		 * not), and KVM builds the code that kvm_mmu_page_fault() gets.
		 */
		struct vcpu_tdx *td = &gmf_world.tdx_vcpu;
		unsigned long qual;

		if (in->tdx_shared_bit != 47 && in->tdx_shared_bit != 51)
			return -1;
		/* As tdx_td_init() sets it from the TD's GPAW. */
		kvm->arch.gfn_direct_bits = in->tdx_shared_bit == 51 ?
					    TDX_SHARED_BIT_PWL_5 :
					    TDX_SHARED_BIT_PWL_4;
		qual = (in->error_code & PFERR_WRITE_MASK) ?
		       EPT_VIOLATION_ACC_WRITE : EPT_VIOLATION_ACC_READ;
		if (in->error_code & PFERR_PRESENT_MASK)
			qual |= EPT_VIOLATION_PROT_READ;
		__builtin_memset(td, 0, sizeof(*td));
		td->vcpu = *vcpu;
		td->exit_gpa = in->gpa;
		td->vt.exit_qualification = qual;
		vcpu = &td->vcpu;
		ret = tdx_handle_ept_violation(vcpu);
#else
		/* No SVM exit handler: the EPT violation reaches the MMU as is. */
		gmf_trace_page_fault(vcpu, in->gpa, in->error_code);
		ret = kvm_mmu_page_fault(vcpu, in->gpa, in->error_code, NULL, 0);
#endif
	} else {
		gmf_world.vmcb.control.exit_info_1 = in->error_code;
		gmf_world.vmcb.control.exit_info_2 = in->gpa;
		ret = npf_interception(vcpu);
	}

	__builtin_memset(out, 0, sizeof(*out));
	if (gmf_rec.fault_seen) {
		out->is_private = gmf_rec.fault_private;
		out->error_code = gmf_rec.fault_err;
		out->gfn = gmf_rec.fault_gfn;
#ifdef GMF_HAVE_TDX_EPT_VIOLATION
	} else if (in->vm_type == GMF_VM_TDX) {
		/* The exit stopped before the MMU: no classification to read. */
#endif
	} else if (gmf_rec.trace_seen) {
		/*
		 * Stopped before kvm_mmu_do_page_fault() (a private reserved
		 * fault): report what it would have been handed.
		 */
		u64 err = gmf_rec.trace_err;

		out->error_code = err;
#ifdef GMF_HAVE_FAULT_IS_PRIVATE
		out->is_private = kvm_mmu_fault_is_private(kvm, in->gpa, err);
#else
		out->is_private = !!(err & PFERR_PRIVATE_ACCESS);
#endif
		out->gfn = gpa_to_gfn(in->gpa) & ~kvm->arch.gfn_shared_mask;
	}

	if (gmf_world.run.exit_reason == KVM_EXIT_MEMORY_FAULT) {
		out->exit_gpa = gmf_world.run.memory_fault.gpa;
		out->exit_size = gmf_world.run.memory_fault.size;
		out->exit_flags = gmf_world.run.memory_fault.flags;
	}

	if (ret < 0)
		out->outcome = gmf_world.run.exit_reason == KVM_EXIT_MEMORY_FAULT ?
			       GMF_FAULT_MEMORY_EXIT : GMF_FAULT_EFAULT;
	else if (gmf_rec.fault_seen && gmf_rec.fault_ret == RET_PF_FIXED)
		out->outcome = GMF_FAULT_MAP;
	else if (gmf_rec.fault_seen && gmf_rec.fault_ret == RET_PF_EMULATE)
		out->outcome = GMF_FAULT_MMIO;
	else
		/* Returned to the guest without handling the fault. */
		out->outcome = GMF_FAULT_EFAULT;
	out->warnings = gmf_rec.warnings;
	return 0;
}
#endif /* GMF_HAVE_OP_CLASSIFY */
