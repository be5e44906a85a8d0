// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_punch_hole(): fallocate(PUNCH_HOLE | KEEP_SIZE) on one guest_memfd
 * whose page cache holds the harness's folios, through the unit's
 * kvm_gmem_punch_hole().  The shim's truncate_inode_pages_range() frees
 * the covered folios through the unit's kvm_gmem_aops.free_folio, whose
 * kvm_arch_gmem_invalidate() reaches kvm_x86_ops.gmem_invalidate of the
 * unit's svm_x86_ops (sev_gmem_invalidate() on the shim's RMP table).  One event list records it all in order: invalidate
 * begin, the zaps, the RMP updates, invalidate end, each with whether
 * mmu_lock was held; an RMP update under mmu_lock is the unit's doing.
 */
#ifdef GMF_HAVE_OP_PUNCH_HOLE
#include "common.h"

/* What kvm_gmem_fallocate() lets through to the punch: no other input. */
static bool gmf_punch_range_ok(int64_t offset, int64_t len)
{
	return offset >= 0 && len > 0 &&
	       !((offset | len) & (int64_t)(PAGE_SIZE - 1)) &&
	       len <= INT64_MAX - offset;
}

int gmf_punch_hole(const struct gmf_punch_in *in, struct gmf_rmp_out *out)
{
	struct kvm *kvm = &gmf_world.vm.kvm;
	struct kvm_gmem *gmem = &gmf_world.gmem[0];
	struct file *file = &gmf_world.files[0];
	struct inode *inode = &gmf_world.inodes[0].vfs_inode;
	struct address_space *mapping = &inode->i_data;
	loff_t size;
	uint32_t i;
	long ret;

	if (in->nbindings > GMF_MAX_BINDINGS || in->nfolios > GMF_MAX_FOLIOS ||
	    !gmf_punch_range_ok(in->offset, in->len))
		return -1;

	size = in->offset + in->len;

	gmf_shim_reset();
	if (gmf_rmp_load(&in->rmp))
		return -1;

	/* One guest_memfd file of this VM: inode, mapping, kvm_gmem. */
	gmf_zero(&gmf_world.inodes[0], sizeof(gmf_world.inodes[0]));
	gmf_zero(file, sizeof(*file));
	inode->i_mapping = mapping;
	gmf_mapping_init(mapping);
	file->f_inode = inode;
	file->f_mapping = mapping;
	file->f_op = &kvm_gmem_fops;
	file->f_count = 1;
	file->private_data = gmem;	/* the 2023 shape's only way to it */
	gmem->kvm = kvm;
	/* 6.12 reaches every kvm_gmem of the inode through this list. */
	list_add(&gmem->entry, &mapping->i_private_list);
	if (gmf_gmem_bind_slots(gmem, file, in->bindings, in->nbindings))
		return -1;

	for (i = 0; i < in->nfolios; i++) {
		const struct gmf_folio *f = &in->folios[i];
		uint64_t pfn = in->pfn_base + f->index;
		loff_t end;

		/* guest_memfd allocates 4K or, with THP, PMD-sized folios. */
		if ((f->order != 0 && f->order != PMD_ORDER) ||
		    pfn < in->pfn_base ||
		    gmf_filemap_add_folio(mapping, f->index, f->order, pfn))
			return -1;
		end = (loff_t)((f->index + (1ULL << f->order)) << PAGE_SHIFT);
		if (end > size)
			size = end;
	}
	/* KEEP_SIZE: the hole is inside the file, and so are the folios. */
	inode->i_size = size;
	mapping->a_ops = gmf_gmem_aops();
	gmf_x86_ops_register();

#if !GMF_PUNCH_HOLE_TAKES_FILE
	ret = kvm_gmem_punch_hole(inode, in->offset, in->len);
#else
	ret = kvm_gmem_punch_hole(file, in->offset, in->len);
#endif
	gmf_rmp_out_fill(out, (int)ret, 0);
	return 0;
}
#endif /* GMF_HAVE_OP_PUNCH_HOLE */
