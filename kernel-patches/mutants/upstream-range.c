//! profile: upstream
//! The 2023 range formula on the upstream function: base_gfn + start -
//! pgoff, and an end clamped to npages after subtracting pgoff, with no
//! clamp of start to the binding. A range that starts before a binding
//! zaps gfns below the memslot; it is also the shape the series merges its
//! fix from on upstream trees.
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
			.start = slot->base_gfn + start - pgoff,
			.end = slot->base_gfn + min(end - pgoff, slot->npages),
			.slot = slot,
			.may_block = true,
			/* guest_memfd backs private mappings only. */
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
