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

//@ kvm_gmem_prepare_memory_region context virt/kvm/guest_memfd.c
/*
 * First half of binding a new memslot (7.2): check the file and the range
 * and hand the caller a reference to the file; nothing is bound yet.
 */
int kvm_gmem_prepare_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot,
				   unsigned int fd, uoff_t offset)
{
	uoff_t size = slot->npages << PAGE_SHIFT;
	struct kvm_gmem *gmem;
	struct file *file;

	file = fget(fd);
	if (!file)
		return -EBADF;

	if (file->f_op != &kvm_gmem_fops)
		goto err;

	gmem = file->private_data;
	if (gmem->kvm != kvm)
		goto err;

	if (@{gmem_bind_range_invalid(offset: offset, size: size, i_size: i_size_read(file_inode(file)))})
		goto err;

	WRITE_ONCE(slot->gmem.file, file);
	slot->gmem.pgoff = offset >> PAGE_SHIFT;
	return 0;

err:
	fput(file);
	return -EINVAL;
}

//@ kvm_gmem_commit_memory_region context virt/kvm/guest_memfd.c
/*
 * Second half: record the binding, unless some page of its file range is
 * bound already (-EEXIST, as for a GPA range bound twice).
 */
int kvm_gmem_commit_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	struct kvm_gmem *gmem = slot->gmem.file->private_data;
	struct inode *inode = file_inode(slot->gmem.file);
	unsigned long start = slot->gmem.pgoff;
	unsigned long end = start + slot->npages;
	int r;

	if (WARN_ON_ONCE(slot->gmem.file->f_op != &kvm_gmem_fops))
		return -EIO;

	filemap_invalidate_lock(inode->i_mapping);

	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		return -EEXIST;
	}

	r = xa_err(xa_store_range(&gmem->bindings, start, end - 1, slot,
				  GFP_KERNEL));
	if (r)
		xa_store_range(&gmem->bindings, start, end - 1, NULL,
			       GFP_KERNEL);

	filemap_invalidate_unlock(inode->i_mapping);
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

//@ kvm_gmem_prepare_folio context virt/kvm/guest_memfd.c
/*
 * Get @folio, which holds @gfn, ready for the guest: zero it, then hand
 * the arch hook the folio's first gfn and pfn and its order.  Uptodate
 * means prepared from then on, so it is set only when the hook succeeded.
 */
static int kvm_gmem_prepare_folio(struct kvm *kvm, struct kvm_memory_slot *slot,
				  gfn_t gfn, struct folio *folio)
{
	unsigned long nr_pages = folio_nr_pages(folio), i;
	pgoff_t index;
	int r;

	for (i = 0; i < nr_pages; i++)
		clear_highpage(folio_page(folio, i));

	/* A huge folio can be mapped huge only from an aligned binding. */
	WARN_ON(!IS_ALIGNED(slot->gmem.pgoff, 1 << folio_order(folio)));
	index = ALIGN_DOWN(gfn - slot->base_gfn + slot->gmem.pgoff,
			   1 << folio_order(folio));
	r = kvm_arch_gmem_prepare(kvm, slot->base_gfn + index - slot->gmem.pgoff,
				  folio_pfn(folio), folio_order(folio));
	if (!r)
		folio_mark_uptodate(folio);

	return r;
}

//@ kvm_gmem_get_pfn context virt/kvm/guest_memfd.c
int kvm_gmem_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot,
		     gfn_t gfn, kvm_pfn_t *pfn, int *max_order)
{
	pgoff_t index = gfn - slot->base_gfn + slot->gmem.pgoff;
	struct file *file = get_file_active(&slot->gmem.file);
	struct kvm_gmem *gmem;
	struct folio *folio;
	int r = 0;

	/* Not bound, or the file is on its way out. */
	if (!file)
		return -EFAULT;

	gmem = file->private_data;
	if (xa_load(&gmem->bindings, index) != slot) {
		/* The page belongs to another memslot: the caller is confused. */
		WARN_ON_ONCE(xa_load(&gmem->bindings, index));
		r = -EIO;
		goto out;
	}

	folio = filemap_grab_folio(file_inode(file)->i_mapping, index);
	if (IS_ERR(folio)) {
		r = PTR_ERR(folio);
		goto out;
	}

	if (folio_test_hwpoison(folio)) {
		r = -EHWPOISON;
		goto out_unlock;
	}

	*pfn = folio_pfn(folio) + (index & (folio_nr_pages(folio) - 1));
	if (max_order)
		*max_order = 0;

	/* First use: prepare now, before the caller takes mmu_lock. */
	if (!folio_test_uptodate(folio))
		r = kvm_gmem_prepare_folio(kvm, slot, gfn, folio);

out_unlock:
	folio_unlock(folio);
	if (r)
		folio_put(folio);
out:
	fput(file);
	return r;
}

//@ kvm_gmem_aops context virt/kvm/guest_memfd.c
static const struct address_space_operations kvm_gmem_aops = {
	.dirty_folio = noop_dirty_folio,
	.free_folio = kvm_gmem_free_folio,
};
