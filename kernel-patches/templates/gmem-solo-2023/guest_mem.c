//@ kvm_gmem_invalidate_gfn_start carried virt/kvm/guest_mem.c
/*
 * First gfn of @slot to zap when file pages [@start, ...) are invalidated:
 * the range may begin before the binding, so clamp it to the first page
 * the memslot covers before translating to a gfn.
 */
static gfn_t kvm_gmem_invalidate_gfn_start(struct kvm_memory_slot *slot,
					   pgoff_t start)
{
	pgoff_t pgoff = slot->gmem.index;

	return @{gmem_invalidate_gfn_start(base_gfn: slot->base_gfn, pgoff: pgoff, start: start)};
}

//@ kvm_gmem_invalidate_gfn_end carried virt/kvm/guest_mem.c
/* One past the last gfn of @slot to zap: clamped to the binding's end. */
static gfn_t kvm_gmem_invalidate_gfn_end(struct kvm_memory_slot *slot,
					 pgoff_t end)
{
	pgoff_t pgoff = slot->gmem.index;

	return @{gmem_invalidate_gfn_end(base_gfn: slot->base_gfn, pgoff: pgoff, npages: slot->npages, end: end)};
}

//@ kvm_gmem_invalidate_begin carried virt/kvm/guest_mem.c
static void kvm_gmem_invalidate_begin(struct kvm *kvm, struct kvm_gmem *gmem,
				      pgoff_t start, pgoff_t end)
{
	bool flush = false, found_memslot = false;
	struct kvm_memory_slot *slot;
	unsigned long index;

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		struct kvm_gfn_range gfn_range = {
			.start = kvm_gmem_invalidate_gfn_start(slot, start),
			.end = kvm_gmem_invalidate_gfn_end(slot, end),
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

//@ kvm_gmem_free_folio carried virt/kvm/guest_mem.c
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

//@ kvm_gmem_punch_hole context virt/kvm/guest_mem.c
static long kvm_gmem_punch_hole(struct file *file, loff_t offset, loff_t len)
{
	struct kvm_gmem *gmem = file->private_data;
	pgoff_t start = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + len) >> PAGE_SHIFT;
	struct kvm *kvm = gmem->kvm;

	/* Bindings must not change between begin and end. */
	filemap_invalidate_lock(file->f_mapping);

	kvm_gmem_invalidate_begin(kvm, gmem, start, end);

	/* Frees the folios: kvm_gmem_free_folio() converts them. */
	truncate_inode_pages_range(file->f_mapping, offset, offset + len - 1);

	kvm_gmem_invalidate_end(kvm, gmem, start, end);

	filemap_invalidate_unlock(file->f_mapping);

	return 0;
}

//@ kvm_gmem_bind context virt/kvm/guest_mem.c
int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
		  unsigned int fd, loff_t offset)
{
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

	/* This generation does not check the offset's alignment. */
	if (offset < 0 ||
	    offset + (slot->npages << PAGE_SHIFT) > i_size_read(inode))
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

//@ kvm_gmem_get_folio context virt/kvm/guest_mem.c
static struct folio *kvm_gmem_get_folio(struct file *file, pgoff_t index)
{
	struct folio *folio;

	folio = filemap_grab_folio(file->f_mapping, index);
	if (IS_ERR_OR_NULL(folio))
		return NULL;

	/* Uptodate: zeroed once, before the guest first sees it. */
	if (!folio_test_uptodate(folio)) {
		unsigned long nr_pages = folio_nr_pages(folio), i;

		for (i = 0; i < nr_pages; i++)
			clear_highpage(folio_page(folio, i));

		folio_mark_uptodate(folio);
	}

	return folio;
}

//@ kvm_gmem_get_pfn context virt/kvm/guest_mem.c
int kvm_gmem_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot,
		     gfn_t gfn, kvm_pfn_t *pfn, int *max_order)
{
	pgoff_t index = gfn - slot->base_gfn + slot->gmem.index;
	struct kvm_gmem *gmem;
	struct folio *folio;
	struct page *page;
	struct file *file;
	int r;

	file = get_file_active(&slot->gmem.file);
	if (!file)
		return -EFAULT;

	gmem = file->private_data;

	if (WARN_ON_ONCE(xa_load(&gmem->bindings, index) != slot)) {
		r = -EIO;
		goto out_fput;
	}

	folio = kvm_gmem_get_folio(file, index);
	if (!folio) {
		r = -ENOMEM;
		goto out_fput;
	}

	if (folio_test_hwpoison(folio)) {
		r = -EHWPOISON;
		goto out_unlock;
	}

	page = folio_file_page(folio, index);

	*pfn = page_to_pfn(page);
	if (max_order)
		*max_order = 0;

	/* Every fault asks: the hook does nothing for a page it prepared. */
	r = kvm_arch_gmem_prepare(kvm, gfn, *pfn, folio_order(folio));

out_unlock:
	folio_unlock(folio);
	if (r)
		folio_put(folio);
out_fput:
	fput(file);

	return r;
}

//@ kvm_gmem_aops context virt/kvm/guest_mem.c
static const struct address_space_operations kvm_gmem_aops = {
	.dirty_folio = noop_dirty_folio,
	.free_folio = kvm_gmem_free_folio,
};
