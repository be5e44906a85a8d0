//! profile: upstream
//! File indices added to base_gfn without subtracting the binding's file
//! offset (an early 2023 SNP-tree variant): right only for a binding at
//! file offset 0, off by pgoff for every other.
//@ kvm_gmem_invalidate_gfn_start carried virt/kvm/guest_memfd.c
static gfn_t kvm_gmem_invalidate_gfn_start(struct kvm_memory_slot *slot,
					   pgoff_t start)
{
	return slot->base_gfn + max(slot->gmem.pgoff, start);
}

//@ kvm_gmem_invalidate_gfn_end carried virt/kvm/guest_memfd.c
static gfn_t kvm_gmem_invalidate_gfn_end(struct kvm_memory_slot *slot,
					 pgoff_t end)
{
	return slot->base_gfn + min(slot->gmem.pgoff + slot->npages, end);
}
