//! profile: upstream
//! The fault path never prepares: kvm_gmem_get_pfn() returns the pfn of a
//! fresh folio without calling kvm_gmem_prepare_folio(), so the arch hook
//! (SEV-SNP: RMP make-private) never runs, while sev_gmem_prepare() itself
//! is fine. The shape of a 2023 tree after its SEV side was added but
//! before anything called it.
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

	/* The bug: nothing prepares the folio. */
	folio_mark_uptodate(folio);

out_unlock:
	folio_unlock(folio);
	if (r)
		folio_put(folio);
out:
	fput(file);
	return r;
}
