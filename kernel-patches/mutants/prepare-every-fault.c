//! profile: upstream
//! Prepares on every fault: kvm_gmem_get_pfn() calls kvm_gmem_prepare_folio()
//! whether or not the folio is uptodate, so the arch hook runs again for a
//! folio it already prepared (upstream promises it runs once per folio; only
//! an idempotent hook, the 2023 design, tolerates this).
//@ kvm_gmem_get_pfn context virt/kvm/guest_memfd.c
int kvm_gmem_get_pfn(struct kvm *kvm, struct kvm_memory_slot *slot,
		     gfn_t gfn, kvm_pfn_t *pfn, int *max_order)
{
	pgoff_t index = gfn - slot->base_gfn + slot->gmem.pgoff;
	struct file *file = get_file_active(&slot->gmem.file);
	struct kvm_gmem *gmem;
	struct folio *folio;
	int r = 0;

	if (!file)
		return -EFAULT;

	gmem = file->private_data;
	if (xa_load(&gmem->bindings, index) != slot) {
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

	/* The bug: no uptodate check. */
	r = kvm_gmem_prepare_folio(kvm, slot, gfn, folio);

out_unlock:
	folio_unlock(folio);
	if (r)
		folio_put(folio);
out:
	fput(file);
	return r;
}
