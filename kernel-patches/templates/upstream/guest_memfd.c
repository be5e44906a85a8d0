//@ kvm_gmem_invalidate_gfn_start carried virt/kvm/guest_memfd.c
/*
 * First gfn of @slot to zap when file pages [@start, ...) are invalidated:
 * the range may begin before the binding, so clamp it to the first page
 * the memslot covers before translating to a gfn.
 */
static gfn_t kvm_gmem_invalidate_gfn_start(struct kvm_memory_slot *slot,
					   pgoff_t start)
{
	pgoff_t pgoff = slot->gmem.pgoff;

	return @{gmem_invalidate_gfn_start(base_gfn: slot->base_gfn, pgoff: pgoff, start: start)};
}

//@ kvm_gmem_invalidate_gfn_end carried virt/kvm/guest_memfd.c
/* One past the last gfn of @slot to zap: clamped to the binding's end. */
static gfn_t kvm_gmem_invalidate_gfn_end(struct kvm_memory_slot *slot,
					 pgoff_t end)
{
	pgoff_t pgoff = slot->gmem.pgoff;

	return @{gmem_invalidate_gfn_end(base_gfn: slot->base_gfn, pgoff: pgoff, npages: slot->npages, end: end)};
}

//@ kvm_gmem_invalidate_begin carried virt/kvm/guest_memfd.c
static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,
				      pgoff_t end)
{
	bool flush = false, found_memslot = false;
	struct kvm_memory_slot *slot;
	struct kvm *kvm = gmem->kvm;
	unsigned long index;

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		struct kvm_gfn_range gfn_range = {
			.start = kvm_gmem_invalidate_gfn_start(slot, start),
			.end = kvm_gmem_invalidate_gfn_end(slot, end),
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

//@ kvm_gmem_invalidate_end context virt/kvm/guest_memfd.c
static void kvm_gmem_invalidate_end(struct kvm_gmem *gmem, pgoff_t start,
				    pgoff_t end)
{
	struct kvm *kvm = gmem->kvm;

	/* Begin happened iff a binding overlaps: balance it. */
	if (xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		KVM_MMU_LOCK(kvm);
		kvm_mmu_invalidate_end(kvm);
		KVM_MMU_UNLOCK(kvm);
	}
}

//@ kvm_gmem_bind context virt/kvm/guest_memfd.c
int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
		  unsigned int fd, u64 offset)
{
	u64 size = slot->npages << PAGE_SHIFT;
	unsigned long start, end;
	struct kvm_gmem *gmem;
	struct inode *inode;
	struct file *file;
	int r = -EINVAL;

	file = fget(fd);
	if (!file)
		return -EBADF;

	if (file->f_op != &kvm_gmem_fops)
		goto err;

	gmem = file->private_data;
	if (gmem->kvm != kvm)
		goto err;

	inode = file_inode(file);

	if (@{gmem_bind_range_invalid(offset: offset, size: size, i_size: i_size_read(inode))})
		goto err;

	filemap_invalidate_lock(inode->i_mapping);

	start = offset >> PAGE_SHIFT;
	end = start + slot->npages;

	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		goto err;
	}

	WRITE_ONCE(slot->gmem.file, file);
	slot->gmem.pgoff = start;

	r = xa_err(xa_store_range(&gmem->bindings, start, end - 1, slot,
				  GFP_KERNEL));
	if (r) {
		xa_store_range(&gmem->bindings, start, end - 1, NULL,
			       GFP_KERNEL);
		slot->gmem.file = NULL;
		slot->gmem.pgoff = 0;
	}
	filemap_invalidate_unlock(inode->i_mapping);

err:
	fput(file);
	return r;
}

//@ kvm_gmem_free_folio context virt/kvm/guest_memfd.c
static void kvm_gmem_free_folio(struct folio *folio)
{
	struct page *page = folio_page(folio, 0);
	kvm_pfn_t pfn = page_to_pfn(page);
	int order = folio_order(folio);

	/*
	 * The page cache is done with the folio: hand its pages back to the
	 * host (RMP make-shared for SNP). The MMU zapped them already, and
	 * mmu_lock is not held here.
	 */
	kvm_arch_gmem_invalidate(pfn, pfn + (1ul << order));
}

//@ kvm_gmem_punch_hole context virt/kvm/guest_memfd.c
static long kvm_gmem_punch_hole(struct inode *inode, loff_t offset, loff_t len)
{
	struct list_head *gmem_list = &inode->i_mapping->i_private_list;
	pgoff_t start = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + len) >> PAGE_SHIFT;
	struct kvm_gmem *gmem;

	/* Bindings must not change between begin and end. */
	filemap_invalidate_lock(inode->i_mapping);

	list_for_each_entry(gmem, gmem_list, entry)
		kvm_gmem_invalidate_begin(gmem, start, end);

	/* Frees the folios: kvm_gmem_free_folio() converts them. */
	truncate_inode_pages_range(inode->i_mapping, offset, offset + len - 1);

	list_for_each_entry(gmem, gmem_list, entry)
		kvm_gmem_invalidate_end(gmem, start, end);

	filemap_invalidate_unlock(inode->i_mapping);

	return 0;
}
