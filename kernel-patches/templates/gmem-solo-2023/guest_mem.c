//@ kvm_gmem_invalidate_begin carried virt/kvm/guest_mem.c
static void kvm_gmem_invalidate_begin(struct kvm *kvm, struct kvm_gmem *gmem,
				      pgoff_t start, pgoff_t end)
{
	bool flush = false, found_memslot = false;
	struct kvm_memory_slot *slot;
	unsigned long index;

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		pgoff_t pgoff = slot->gmem.index;

		/*
		 * The range may begin before this binding and end after it:
		 * clamp it to the file pages the memslot covers, then
		 * translate those pages to the memslot's gfns.
		 */
		struct kvm_gfn_range gfn_range = {
			.start = @{gmem_invalidate_gfn_start(base_gfn: slot->base_gfn, pgoff: pgoff, start: start)},
			.end = @{gmem_invalidate_gfn_end(base_gfn: slot->base_gfn, pgoff: pgoff, npages: slot->npages, end: end)},
			.slot = slot,
			.pte = __pte(0),
			.may_block = true,
		};

		/*
		 * Begin only once a binding is found, so that begin and
		 * kvm_gmem_invalidate_end() stay balanced.
		 */
		if (!found_memslot) {
			found_memslot = true;

			KVM_MMU_LOCK(kvm);
			kvm_mmu_invalidate_begin(kvm);
		}

		kvm_mmu_invalidate_range_add(kvm, gfn_range.start,
					     gfn_range.end);

		flush |= kvm_unmap_gfn_range(kvm, &gfn_range);
	}

	if (flush)
		kvm_flush_remote_tlbs(kvm);

	if (found_memslot)
		KVM_MMU_UNLOCK(kvm);
}

//@ kvm_gmem_invalidate_end context virt/kvm/guest_mem.c
static void kvm_gmem_invalidate_end(struct kvm *kvm, struct kvm_gmem *gmem,
				    pgoff_t start, pgoff_t end)
{
	if (xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		KVM_MMU_LOCK(kvm);
		kvm_mmu_invalidate_end(kvm);
		KVM_MMU_UNLOCK(kvm);
	}
}

//@ kvm_gmem_bind context virt/kvm/guest_mem.c
int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
		  unsigned int fd, loff_t offset)
{
	loff_t size = slot->npages << PAGE_SHIFT;
	unsigned long start, end;
	struct kvm_gmem *gmem;
	struct inode *inode;
	struct file *file;

	BUILD_BUG_ON(sizeof(gfn_t) != sizeof(slot->gmem.index));

	file = fget(fd);
	if (!file)
		return -EINVAL;

	if (file->f_op != &kvm_gmem_fops)
		goto err;

	gmem = file->private_data;
	if (gmem->kvm != kvm)
		goto err;

	inode = file_inode(file);

	/* This generation checks neither alignment nor wrap-around. */
	if (offset < 0 || offset + size > i_size_read(inode))
		goto err;

	filemap_invalidate_lock(inode->i_mapping);

	start = offset >> PAGE_SHIFT;
	end = start + slot->npages;

	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		goto err;
	}

	slot->gmem.file = file;
	slot->gmem.index = start;

	xa_store_range(&gmem->bindings, start, end - 1, slot, GFP_KERNEL);
	filemap_invalidate_unlock(inode->i_mapping);

	return 0;

err:
	fput(file);
	return -EINVAL;
}
