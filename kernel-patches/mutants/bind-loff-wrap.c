//! profile: upstream
//! kvm_gmem_prepare_memory_region() with the offset and size as loff_t, as
//! guest_memfd had them from 6.8 until 7.2: a huge offset plus the size
//! wraps negative under -fno-strict-overflow, passes the i_size check, and
//! a binding far past the end of the file is made.
//@ kvm_gmem_prepare_memory_region context virt/kvm/guest_memfd.c
int kvm_gmem_prepare_memory_region(struct kvm *kvm, struct kvm_memory_slot *slot,
				   unsigned int fd, loff_t offset)
{
	loff_t size = slot->npages << PAGE_SHIFT;
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

	if (!PAGE_ALIGNED(offset) || offset + size > i_size_read(file_inode(file)))
		goto err;

	WRITE_ONCE(slot->gmem.file, file);
	slot->gmem.pgoff = offset >> PAGE_SHIFT;
	return 0;

err:
	fput(file);
	return -EINVAL;
}
