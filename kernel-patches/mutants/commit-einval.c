//! profile: upstream
//! kvm_gmem_commit_memory_region() refusing a file range bound twice with
//! -EINVAL, the one-call kvm_gmem_bind()'s errno, where the 7.2 contract
//! says -EEXIST.
//@ kvm_gmem_commit_memory_region context virt/kvm/guest_memfd.c
int kvm_gmem_commit_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	struct kvm_gmem *gmem = slot->gmem.file->private_data;
	struct inode *inode = file_inode(slot->gmem.file);
	unsigned long start = slot->gmem.pgoff;
	unsigned long end = start + slot->npages;
	int r;

	filemap_invalidate_lock(inode->i_mapping);

	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		return -EINVAL;
	}

	r = xa_err(xa_store_range(&gmem->bindings, start, end - 1, slot,
				  GFP_KERNEL));
	filemap_invalidate_unlock(inode->i_mapping);
	return r;
}
