//! profile: upstream
//! RMP make-shared inside the mmu_lock section: the punch-hole path frees
//! (and so converts) the folios while holding KVM_MMU_LOCK, the 2023 idea of
//! tying RMP updates to the MMU zap. RMPUPDATE must not run under mmu_lock.
//@ kvm_gmem_punch_hole context virt/kvm/guest_memfd.c
static long kvm_gmem_punch_hole(struct inode *inode, loff_t offset, loff_t len)
{
	struct list_head *gmem_list = &inode->i_mapping->i_private_list;
	pgoff_t start = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + len) >> PAGE_SHIFT;
	struct kvm_gmem *gmem;

	filemap_invalidate_lock(inode->i_mapping);

	list_for_each_entry(gmem, gmem_list, entry)
		kvm_gmem_invalidate_begin(gmem, start, end);

	/* Convert while the zap still holds the MMU: the bug. */
	list_for_each_entry(gmem, gmem_list, entry) {
		KVM_MMU_LOCK(gmem->kvm);
		truncate_inode_pages_range(inode->i_mapping, offset,
					   offset + len - 1);
		KVM_MMU_UNLOCK(gmem->kvm);
		break;
	}

	list_for_each_entry(gmem, gmem_list, entry)
		kvm_gmem_invalidate_end(gmem, start, end);

	filemap_invalidate_unlock(inode->i_mapping);

	return 0;
}
