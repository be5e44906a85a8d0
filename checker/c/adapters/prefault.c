// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_prefault(): the KVM_PRE_FAULT_MEMORY vCPU ioctl.  The adapter is
 * the ioctl: it copies the range in, calls the generic loop and copies
 * the range back (kvm_vcpu_ioctl() does so even on error).
 */
#ifdef GMF_HAVE_OP_PREFAULT
#include "common.h"

int gmf_prefault(const struct gmf_prefault_in *in, struct gmf_prefault_out *out)
{
	struct kvm *kvm = &gmf_world.vm.kvm;
	struct kvm_vcpu *vcpu = &gmf_world.vcpu.vcpu;
	struct kvm_pre_fault_memory range = {
		.gpa = in->gpa,
		.size = in->size,
		.flags = in->flags,
	};
	uint32_t i;
	long r;

	if (in->nslots > GMF_MAX_SLOTS || in->vm_type > GMF_VM_TDX)
		return -1;

	gmf_shim_reset();
	gmf_shim_reset_vcpu();
	gmf_setup_vm(in->vm_type);
	kvm->arch.pre_fault_allowed = in->pre_fault_allowed;
#ifdef GMF_HAVE_FAULT_IS_PRIVATE
	/*
	 * A unit with the configurable rule: each platform sets its own, as
	 * its VM setup does (SNP's error-code bit, TDX's shared GPA bit 51).
	 * The pre-fault must then reach the gfn as the guest would.
	 */
	kvm->arch.mmu_private_fault_mask =
		in->vm_type == GMF_VM_SNP ? PFERR_GUEST_ENC_MASK : 0;
	kvm->arch.gfn_shared_mask =
		in->vm_type == GMF_VM_TDX ? gpa_to_gfn(BIT_ULL(51)) : 0;
#endif
	if (!in->tdp)
		gmf_world.mmu.page_fault = gmf_shadow_page_fault;

	for (i = 0; i < in->nslots; i++) {
		const struct gmf_prefault_slot *s = &in->slots[i];
		struct kvm_memory_slot *slot = &gmf_world.slots[i];

		__builtin_memset(slot, 0, sizeof(*slot));
		slot->id = (short)i;
		slot->base_gfn = s->base_gfn;
		slot->npages = s->npages;
		slot->gmf_max_level = s->max_level;
		if (s->gmem) {
			slot->flags = KVM_MEM_GUEST_MEMFD;
			slot->gmem.file = &gmf_world.files[0];
		}
		kvm->gmf_slots[i] = slot;
	}
	kvm->gmf_nslots = in->nslots;

	/* Only VMs with private memory can have the attribute set. */
	if (kvm_arch_has_private_mem(kvm)) {
		kvm->gmf_private_start = in->private_start;
		kvm->gmf_private_end = in->private_end;
	}
	gmf_rec.signal_after = in->interrupt_after;

	r = kvm_vcpu_pre_fault_memory(vcpu, &range);

	__builtin_memset(out, 0, sizeof(*out));
	out->ret = r;
	out->gpa = range.gpa;
	out->size = range.size;
	/*
	 * The generic loop checks for a signal before every arch call, so
	 * the checks that found none are the arch calls made.
	 */
	out->calls = gmf_rec.signal_checks;
	if (gmf_rec.signal_after && out->calls > gmf_rec.signal_after)
		out->calls = gmf_rec.signal_after;
	out->warnings = gmf_rec.warnings;
	return 0;
}
#endif /* GMF_HAVE_OP_PREFAULT */
