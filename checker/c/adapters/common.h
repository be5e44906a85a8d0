/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the adapters (included from unit.c only).
 */
#ifndef GMF_ADAPTERS_COMMON_H
#define GMF_ADAPTERS_COMMON_H

/* Shape the VM as KVM would for a harness VM type. */
static inline void gmf_setup_vm(uint32_t vm_type)
{
	struct kvm_svm *vm = &gmf_world.vm;

	vm->kvm.arch.vm_type = (u8)vm_type;
	vm->kvm.arch.has_private_mem = vm_type == GMF_VM_SW_PROTECTED ||
				       vm_type == GMF_VM_SNP ||
				       vm_type == GMF_VM_TDX;
	vm->kvm.arch.has_protected_state = vm_type == GMF_VM_SEV_ES ||
					   vm_type == GMF_VM_SNP ||
					   vm_type == GMF_VM_TDX;
	vm->sev_info.active = vm_type == GMF_VM_SEV ||
			      vm_type == GMF_VM_SEV_ES ||
			      vm_type == GMF_VM_SNP;
	vm->sev_info.es_active = vm_type == GMF_VM_SEV_ES ||
				 vm_type == GMF_VM_SNP;
	vm->sev_info.snp_active = vm_type == GMF_VM_SNP;
}

static inline void gmf_copy_events(struct gmf_event *dst, uint32_t *n,
				   uint8_t *overflow)
{
	*n = gmf_rec.nevents;
	*overflow = gmf_rec.events_overflow;
	__builtin_memcpy(dst, gmf_rec.events, gmf_rec.nevents * sizeof(*dst));
}

#endif /* GMF_ADAPTERS_COMMON_H */
