//! profile: upstream
//! File indices added to base_gfn without subtracting the binding's file
//! offset (an early 2023 SNP-tree variant): right only for a binding at
//! file offset 0, off by pgoff for every other.
//@ kvm_gmem_invalidate_begin carried virt/kvm/guest_memfd.c
static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,
				      pgoff_t end)
{
	bool flush = false, found_memslot = false;
	struct kvm_memory_slot *slot;
	struct kvm *kvm = gmem->kvm;
	unsigned long index;

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		pgoff_t pgoff = slot->gmem.pgoff;

		struct kvm_gfn_range gfn_range = {
			.start = slot->base_gfn + max(pgoff, start),
			.end = slot->base_gfn + min(pgoff + slot->npages, end),
			.slot = slot,
			.may_block = true,
			.attr_filter = KVM_FILTER_PRIVATE,
		};

		if (!found_memslot) {
			found_memslot = true;

			KVM_MMU_LOCK(kvm);
			kvm_mmu_invalidate_begin(kvm);
		}

		flush |= kvm_mmu_unmap_gfn_range(kvm, &gfn_range);
	}

	if (flush)
		kvm_flush_remote_tlbs(kvm);

	if (found_memslot)
		KVM_MMU_UNLOCK(kvm);
}
