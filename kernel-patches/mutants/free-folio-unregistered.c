//! profile: upstream
//! kvm_gmem_free_folio() is defined but not in kvm_gmem_aops: the page cache
//! frees punched folios without it, so their RMP entries stay private (the
//! host later touches guest-owned pages), while the function itself is fine.
//@ kvm_gmem_aops context virt/kvm/guest_memfd.c
static const struct address_space_operations kvm_gmem_aops = {
	.dirty_folio = noop_dirty_folio,
};
