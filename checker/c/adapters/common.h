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

/*
 * Bind gmf_world.slots[i] to gmem (as file's memslots) per bindings[i]:
 * 0, or -1 for an empty, wrapping or overlapping binding.  Inline: it is
 * on the invalidate hot path.
 */
static __always_inline int gmf_gmem_bind_slots(struct kvm_gmem *gmem,
					       struct file *file,
					       const struct gmf_binding *bindings,
					       uint32_t n)
{
	uint32_t i;

	xa_init(&gmem->bindings);
	for (i = 0; i < n; i++) {
		const struct gmf_binding *b = &bindings[i];
		struct kvm_memory_slot *slot = &gmf_world.slots[i];
		unsigned long last = b->pgoff + b->npages - 1;

		if (!b->npages || last < b->pgoff)
			return -1;
		slot->base_gfn = b->base_gfn;
		slot->npages = b->npages;
		slot->id = (short)b->id;
		slot->flags = KVM_MEM_GUEST_MEMFD;
		slot->gmem.file = file;
		slot->gmem.pgoff = b->pgoff;
		if (xa_err(xa_store_range(&gmem->bindings, b->pgoff, last, slot,
					  GFP_KERNEL)))
			return -1;
	}
	/* Overlapping bindings would have replaced one another. */
	return gmem->bindings.nr == n ? 0 : -1;
}

/*
 * The RMP ops' answer: the recorded events, WARNs and the entries the
 * call wrote (harness.h: nothing past nevents or outside the written span
 * is copied, so a vector costs what it did, not the table's size).
 */
static inline void gmf_rmp_out_fill(struct gmf_rmp_out *out, int ret,
				    int max_level)
{
	out->ret = ret;
	out->max_level = max_level;
	gmf_copy_events(out->events, &out->nevents, &out->overflow);
	out->warnings = gmf_rec.warnings;
	gmf_rmp_store(out);
}

/*
 * kvm_ops_update(): the vendor's table becomes kvm_x86_ops.  Only the
 * table the C under test brings (GMF_HAVE_SVM_X86_OPS: svm.c's
 * svm_x86_ops, as the tree has it) is registered, so a hook the table
 * lacks is not reached, as in the kernel.
 */
static inline void gmf_x86_ops_register(void)
{
#ifdef GMF_HAVE_SVM_X86_OPS
	kvm_x86_ops = svm_x86_ops;
#else
	__builtin_memset(&kvm_x86_ops, 0, sizeof(kvm_x86_ops));
#endif
}

/*
 * The guest_memfd inode's a_ops: the C under test's own kvm_gmem_aops
 * (GMF_HAVE_GMEM_AOPS), so the page cache frees folios through whatever
 * that table registered; without one, through nothing.
 */
static inline const struct address_space_operations *gmf_gmem_aops(void)
{
#ifdef GMF_HAVE_GMEM_AOPS
	return &kvm_gmem_aops;
#else
	return NULL;
#endif
}

#endif /* GMF_ADAPTERS_COMMON_H */
