// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_get_pfn(): the guest_memfd fault path.  One guest_memfd file of the
 * VM, its bindings as memslots, its page cache holding the harness's
 * folios (prepared ones uptodate, with the RMP entries the prepare hook
 * left: a 2M entry for a 2M folio, 4K otherwise), then the unit's
 * kvm_gmem_get_pfn() once per fault, without mmu_lock, as
 * kvm_faultin_pfn_private() calls it.  The prepare hook is reached only
 * the kernel's way: kvm_arch_gmem_prepare() -> kvm_x86_ops.gmem_prepare
 * of the table the unit registers; the shim records each call that
 * reaches a member, and the RMP updates the member makes.
 */
#ifdef GMF_HAVE_OP_GET_PFN
#include "common.h"

static int gmf_getpfn_rmp(const struct gmf_getpfn_in *in)
{
	uint32_t i;

	if (in->rmp_given)
		return gmf_rmp_load(&in->rmp);
	gmf_rmp_clear();
	gmf_rmp.snp_enabled = in->snp;
	gmf_rmp.max_pfn = in->max_pfn;
	for (i = 0; i < in->nfolios; i++) {
		const struct gmf_pc_folio *f = &in->folios[i];
		uint64_t pfn = in->pfn_base + f->index, n = 1ULL << f->order, k;

		/* Entries past the table would not exist. */
		if (!f->prepared || pfn + n > in->max_pfn)
			continue;
		rmp_dirty(pfn, pfn + n);
		for (k = 0; k < n; k++) {
			struct gmf_rmp_entry *e = &gmf_rmp.entries[pfn + k];

			e->assigned = 1;
			e->pagesize = (f->order && !k) ? RMP_PG_SIZE_2M :
							 RMP_PG_SIZE_4K;
			e->asid = in->asid;
		}
	}
	return 0;
}

int gmf_get_pfn(const struct gmf_getpfn_in *in, struct gmf_getpfn_out *out)
{
	struct kvm_svm *vm = &gmf_world.vm;
	struct kvm_gmem *gmem = &gmf_world.gmem[0];
	struct file *file = &gmf_world.files[0];
	struct inode *inode = &gmf_world.inodes[0].vfs_inode;
	struct address_space *mapping = &inode->i_data;
	struct kvm_memory_slot *slot;
	uint32_t i;

	if (in->nbindings > GMF_MAX_BINDINGS || in->nfolios > GMF_MAX_FOLIOS ||
	    in->nfaults > GMF_MAX_FAULTS || in->max_pfn > GMF_MAX_RMP_PFNS)
		return -1;

	gmf_shim_reset();
	gmf_setup_vm(in->snp ? GMF_VM_SNP : GMF_VM_DEFAULT);
	vm->sev_info.asid = in->asid;
	if (gmf_getpfn_rmp(in))
		return -1;
	gmf_x86_ops_register();

	gmf_zero(&gmf_world.inodes[0], sizeof(gmf_world.inodes[0]));
	gmf_zero(file, sizeof(*file));
	inode->i_mapping = mapping;
	gmf_mapping_init(mapping);
	mapping->gmf_pfn_base = in->pfn_base;
	mapping->a_ops = gmf_gmem_aops();
	file->f_inode = inode;
	file->f_mapping = mapping;
	file->f_op = &kvm_gmem_fops;
	file->f_count = 1;
	file->private_data = gmem;
	gmem->kvm = &vm->kvm;
	list_add(&gmem->entry, &mapping->i_private_list);
	if (gmf_gmem_bind_slots(gmem, file, in->bindings, in->nbindings))
		return -1;

	for (i = 0; i < in->nfolios; i++) {
		const struct gmf_pc_folio *f = &in->folios[i];
		struct folio *folio;
		uint64_t pfn = in->pfn_base + f->index;

		if ((f->order != 0 && f->order != PMD_ORDER) ||
		    pfn < in->pfn_base ||
		    gmf_filemap_add_folio(mapping, f->index, f->order, pfn))
			return -1;
		folio = (struct folio *)pfn_to_page(pfn);
		if (f->prepared)
			folio_mark_uptodate(folio);
		if (f->hwpoison)
			folio->flags |= BIT(PG_hwpoison);
	}
	inode->i_size = (loff_t)1 << 62;

	if (in->slot < in->nbindings) {
		slot = &gmf_world.slots[in->slot];
	} else {
		/* A guest_memfd memslot whose file is gone. */
		slot = &gmf_world.slots[GMF_MAX_BINDINGS];
		__builtin_memset(slot, 0, sizeof(*slot));
		slot->flags = KVM_MEM_GUEST_MEMFD;
	}

	__builtin_memset(out->results, 0, sizeof(out->results));
	for (i = 0; i < in->nfaults; i++) {
		struct gmf_getpfn_result *r = &out->results[i];
		kvm_pfn_t pfn = ~(kvm_pfn_t)0;
		int order = INT32_MIN;

#ifdef GMF_GET_PFN_PAGE
		/* 6.13+: the page comes back too (a reference the caller drops). */
		struct page *page = NULL;

		r->ret = kvm_gmem_get_pfn(&vm->kvm, slot, in->gfns[i], &pfn,
					  &page, &order);
#else
		r->ret = kvm_gmem_get_pfn(&vm->kvm, slot, in->gfns[i], &pfn,
					  &order);
#endif
		r->pfn_set = pfn != ~(kvm_pfn_t)0;
		r->pfn = r->pfn_set ? pfn : 0;
		r->order_set = order != INT32_MIN;
		r->max_order = r->order_set ? order : 0;
	}

	out->nevents = 0;
	out->overflow = gmf_rec.events_overflow;
	for (i = 0; i < gmf_rec.nevents; i++) {
		if (out->nevents == GMF_MAX_GETPFN_EVENTS) {
			out->overflow = 1;
			break;
		}
		out->events[out->nevents++] = gmf_rec.events[i];
	}
	out->warnings = gmf_rec.warnings;
	out->lock_balanced = gmf_rec.lock_depth == 0 && !gmf_rec.lock_misuse;
	return 0;
}
#endif /* GMF_HAVE_OP_GET_PFN */
