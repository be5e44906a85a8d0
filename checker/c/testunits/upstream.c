// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test unit, GMF_PROFILE=0: the Linux 6.12 behaviour of every checked
 * function, written for gmemforge's tests (not taken from the kernel).
 * Names and signatures are the kernel's so the adapters can call them.
 */

/* The tables at the end: the adapters register them as the kernel does. */
#define GMF_HAVE_GMEM_AOPS 1
#define GMF_HAVE_SVM_X86_OPS 1

/* ---- virt/kvm/guest_memfd.c ---- */

static void kvm_gmem_invalidate_begin(struct kvm_gmem *gmem, pgoff_t start,
				      pgoff_t end)
{
	struct kvm *kvm = gmem->kvm;
	struct kvm_memory_slot *slot;
	bool locked = false, flush = false;
	unsigned long index;

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		pgoff_t first = slot->gmem.pgoff;
		pgoff_t limit = first + slot->npages;
		/* Clamp [start, end) to this binding, then shift to gfns. */
		struct kvm_gfn_range range = {
			.slot = slot,
			.start = slot->base_gfn + max(first, start) - first,
			.end = slot->base_gfn + min(limit, end) - first,
			.attr_filter = KVM_FILTER_PRIVATE,
			.may_block = true,
		};

		if (!locked) {
			locked = true;
			KVM_MMU_LOCK(kvm);
			kvm_mmu_invalidate_begin(kvm);
		}
		flush |= kvm_mmu_unmap_gfn_range(kvm, &range);
	}

	if (flush)
		kvm_flush_remote_tlbs(kvm);
	if (locked)
		KVM_MMU_UNLOCK(kvm);
}

static void kvm_gmem_invalidate_end(struct kvm_gmem *gmem, pgoff_t start,
				    pgoff_t end)
{
	struct kvm *kvm = gmem->kvm;

	/* Pairs with begin, which started only if some binding overlaps. */
	if (!xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT))
		return;
	KVM_MMU_LOCK(kvm);
	kvm_mmu_invalidate_end(kvm);
	KVM_MMU_UNLOCK(kvm);
}

/* Runs once a folio has left the page cache: its pfns go back to the host. */
static void kvm_gmem_free_folio(struct folio *folio)
{
	kvm_pfn_t first = page_to_pfn(folio_page(folio, 0));

	kvm_arch_gmem_invalidate(first, first + (1ul << folio_order(folio)));
}

/*
 * Zap every binding's gfns for the hole under mmu_lock, drop the pages
 * (the free hook converts them, without mmu_lock), then let faults in.
 * GMF_SMOKE_RMP_UNDER_MMU_LOCK builds the smoke test's mutant, which
 * frees the folios under mmu_lock: the RMP updates then happen under it.
 */
static long kvm_gmem_punch_hole(struct inode *inode, loff_t offset, loff_t len)
{
	struct address_space *mapping = inode->i_mapping;
	pgoff_t first = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + len) >> PAGE_SHIFT;
	struct kvm_gmem *gmem;

	/* Keeps the bindings, so begin and end see the same ones. */
	filemap_invalidate_lock(mapping);

	list_for_each_entry(gmem, &mapping->i_private_list, entry)
		kvm_gmem_invalidate_begin(gmem, first, end);

#ifdef GMF_SMOKE_RMP_UNDER_MMU_LOCK
	gmem = list_first_entry(&mapping->i_private_list, struct kvm_gmem,
				entry);
	KVM_MMU_LOCK(gmem->kvm);
#endif
	truncate_inode_pages_range(mapping, offset, offset + len - 1);
#ifdef GMF_SMOKE_RMP_UNDER_MMU_LOCK
	KVM_MMU_UNLOCK(gmem->kvm);
#endif

	list_for_each_entry(gmem, &mapping->i_private_list, entry)
		kvm_gmem_invalidate_end(gmem, first, end);

	filemap_invalidate_unlock(mapping);
	return 0;
}

int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
		  unsigned int fd, u64 offset)
{
	u64 bytes = slot->npages << PAGE_SHIFT;
	unsigned long first, end;
	struct kvm_gmem *gmem;
	struct inode *inode;
	struct file *file;
	int r = -EINVAL;

	file = fget(fd);
	if (!file)
		return -EBADF;

	if (file->f_op != &kvm_gmem_fops)
		goto out;
	gmem = file->private_data;
	if (gmem->kvm != kvm)
		goto out;

	inode = file_inode(file);
	if (!PAGE_ALIGNED(offset) || offset + bytes > i_size_read(inode))
		goto out;

	filemap_invalidate_lock(inode->i_mapping);
	first = offset >> PAGE_SHIFT;
	end = first + slot->npages;
	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &first, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		goto out;
	}

	WRITE_ONCE(slot->gmem.file, file);
	slot->gmem.pgoff = first;
	r = xa_err(xa_store_range(&gmem->bindings, first, end - 1, slot,
				  GFP_KERNEL));
	if (r) {
		/* Undo: neither a half-stored range nor a dangling file. */
		xa_store_range(&gmem->bindings, first, end - 1, NULL, GFP_KERNEL);
		slot->gmem.file = NULL;
		slot->gmem.pgoff = 0;
	}
	filemap_invalidate_unlock(inode->i_mapping);
out:
	fput(file);
	return r;
}

/* ---- arch/x86/kvm/mmu/mmu_internal.h ---- */

static inline int kvm_mmu_do_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
					u64 err, bool prefetch,
					int *emulation_type, u8 *level)
{
	struct kvm_page_fault fault = {
		.addr = cr2_or_gpa,
		.error_code = err,
		.prefetch = prefetch,
		.exec = err & PFERR_FETCH_MASK,
		.write = err & PFERR_WRITE_MASK,
		.present = err & PFERR_PRESENT_MASK,
		.rsvd = err & PFERR_RSVD_MASK,
		.user = err & PFERR_USER_MASK,
		.is_tdp = vcpu->arch.mmu->page_fault == kvm_tdp_page_fault,
		.is_private = err & PFERR_PRIVATE_ACCESS,
		.max_level = KVM_MAX_HUGEPAGE_LEVEL,
		.req_level = PG_LEVEL_4K,
		.goal_level = PG_LEVEL_4K,
		.pfn = KVM_PFN_ERR_FAULT,
		.hva = KVM_HVA_ERR_BAD,
	};
	int r;

	if (vcpu->arch.mmu->root_role.direct) {
		fault.gfn = gpa_to_gfn(fault.addr);
		fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);
	}

	r = fault.is_tdp ? kvm_tdp_page_fault(vcpu, &fault) :
			   vcpu->arch.mmu->page_fault(vcpu, &fault);

	/* Private memory is never emulated: let userspace sort it out. */
	if (r == RET_PF_EMULATE && fault.is_private) {
		kvm_mmu_prepare_memory_fault_exit(vcpu, &fault);
		return -EFAULT;
	}

	if (fault.write_fault_to_shadow_pgtable && emulation_type)
		*emulation_type |= EMULTYPE_WRITE_PF_TO_SP;
	if (level)
		*level = fault.goal_level;
	return r;
}

/* ---- arch/x86/kvm/mmu/mmu.c ---- */

int noinline kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				u64 error_code, void *insn, int insn_len)
{
	int r = RET_PF_INVALID, emulation_type = EMULTYPE_PF;
	bool direct = vcpu->arch.mmu->root_role.direct;

	if (WARN_ON_ONCE(!VALID_PAGE(vcpu->arch.mmu->root.hpa)))
		return RET_PF_RETRY;

	/* Software-protected VMs: the attribute is the truth (not for MMIO). */
	if (vcpu->kvm->arch.vm_type == KVM_X86_SW_PROTECTED_VM &&
	    !(error_code & PFERR_RSVD_MASK) &&
	    kvm_mem_is_private(vcpu->kvm, gpa_to_gfn(cr2_or_gpa)))
		error_code |= PFERR_PRIVATE_ACCESS;

	if (unlikely(error_code & PFERR_RSVD_MASK)) {
		/* Emulated MMIO is shared by definition. */
		if (WARN_ON_ONCE(error_code & PFERR_PRIVATE_ACCESS))
			return -EFAULT;
		r = handle_mmio_page_fault(vcpu, cr2_or_gpa, direct);
		if (r == RET_PF_EMULATE)
			goto emulate;
	}

	if (r == RET_PF_INVALID) {
		vcpu->stat.pf_taken++;
		r = kvm_mmu_do_page_fault(vcpu, cr2_or_gpa, error_code, false,
					  &emulation_type, NULL);
		if (KVM_BUG_ON(r == RET_PF_INVALID, vcpu->kvm))
			return -EIO;
	}
	if (r < 0)
		return r;

	if (r == RET_PF_WRITE_PROTECTED)
		r = kvm_mmu_write_protect_fault(vcpu, cr2_or_gpa, error_code,
						&emulation_type);
	if (r == RET_PF_FIXED)
		vcpu->stat.pf_fixed++;
	else if (r == RET_PF_EMULATE)
		vcpu->stat.pf_emulate++;
	else if (r == RET_PF_SPURIOUS)
		vcpu->stat.pf_spurious++;
	if (r != RET_PF_EMULATE)
		return 1;
emulate:
	return x86_emulate_instruction(vcpu, cr2_or_gpa, emulation_type, insn,
				       insn_len);
}

long kvm_arch_vcpu_pre_fault_memory(struct kvm_vcpu *vcpu,
				    struct kvm_pre_fault_memory *range)
{
	u64 error_code = PFERR_GUEST_FINAL_MASK;
	u8 level = PG_LEVEL_4K;
	u64 page_end;
	int r;

	if (!vcpu->kvm->arch.pre_fault_allowed)
		return -EOPNOTSUPP;

	r = kvm_mmu_reload(vcpu);
	if (r)
		return r;

	if (kvm_arch_has_private_mem(vcpu->kvm) &&
	    kvm_mem_is_private(vcpu->kvm, gpa_to_gfn(range->gpa)))
		error_code |= PFERR_PRIVATE_ACCESS;

	r = kvm_tdp_map_page(vcpu, range->gpa, error_code, &level);
	if (r < 0)
		return r;

	/* The mapping may be huge: count only the part inside the range. */
	page_end = (range->gpa & KVM_HPAGE_MASK(level)) + KVM_HPAGE_SIZE(level);
	return min(range->size, page_end - range->gpa);
}

/* ---- virt/kvm/kvm_main.c ---- */

static int kvm_vcpu_pre_fault_memory(struct kvm_vcpu *vcpu,
				     struct kvm_pre_fault_memory *range)
{
	u64 requested;
	long r;
	int idx;

	if (range->flags)
		return -EINVAL;
	if (!PAGE_ALIGNED(range->gpa) || !PAGE_ALIGNED(range->size) ||
	    range->gpa + range->size <= range->gpa)
		return -EINVAL;

	vcpu_load(vcpu);
	idx = srcu_read_lock(&vcpu->kvm->srcu);

	requested = range->size;
	do {
		if (signal_pending(current)) {
			r = -EINTR;
			break;
		}
		r = kvm_arch_vcpu_pre_fault_memory(vcpu, range);
		/* No progress and no error would loop forever. */
		if (WARN_ON_ONCE(r == 0 || r == -EIO))
			break;
		if (r < 0)
			break;
		range->gpa += r;
		range->size -= r;
		cond_resched();
	} while (range->size);

	srcu_read_unlock(&vcpu->kvm->srcu, idx);
	vcpu_put(vcpu);

	/* Any progress is success; the range tells userspace how far. */
	return requested == range->size ? r : 0;
}

/* ---- arch/x86/kvm/svm/svm.c ---- */

static int npf_interception(struct kvm_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	u64 gpa = svm->vmcb->control.exit_info_2;
	u64 error_code = svm->vmcb->control.exit_info_1;
	int rc;

	/* Hardware never sets KVM's synthetic bits; drop them if it does. */
	if (WARN_ON_ONCE(error_code & PFERR_SYNTHETIC_MASK))
		error_code &= ~PFERR_SYNTHETIC_MASK;

	if (sev_snp_guest(vcpu->kvm) && (error_code & PFERR_GUEST_ENC_MASK))
		error_code |= PFERR_PRIVATE_ACCESS;

	trace_kvm_page_fault(vcpu, gpa, error_code);
	rc = kvm_mmu_page_fault(vcpu, gpa, error_code,
				static_cpu_has(X86_FEATURE_DECODEASSISTS) ?
				svm->vmcb->control.insn_bytes : NULL,
				svm->vmcb->control.insn_len);
	if (rc > 0 && (error_code & PFERR_GUEST_RMP_MASK))
		sev_handle_rmp_fault(vcpu, gpa, error_code);
	return rc;
}

/* ---- arch/x86/kvm/svm/sev.c ---- */

static bool is_pfn_range_shared(kvm_pfn_t start, kvm_pfn_t end)
{
	kvm_pfn_t pfn;

	for (pfn = start; pfn < end; pfn++) {
		bool assigned;
		int level;

		if (snp_lookup_rmpentry(pfn, &assigned, &level) || assigned)
			return false;
	}
	return true;
}

int sev_gmem_prepare(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn, int max_order)
{
	struct kvm_sev_info *sev = &to_kvm_svm(kvm)->sev_info;
	kvm_pfn_t head = ALIGN_DOWN(pfn, PTRS_PER_PMD);
	bool assigned;
	int level, rc;

	if (!sev_snp_guest(kvm))
		return 0;

	if (snp_lookup_rmpentry(pfn, &assigned, &level))
		return -ENOENT;
	if (assigned)
		return 0;

	/* One 2M entry if the folio is 2M and its whole frame is shared. */
	if (max_order >= KVM_HPAGE_GFN_SHIFT(PG_LEVEL_2M) &&
	    is_pfn_range_shared(head, head + PTRS_PER_PMD))
		rc = rmp_make_private(head, gfn_to_gpa(ALIGN_DOWN(gfn, PTRS_PER_PMD)),
				      PG_LEVEL_2M, sev->asid, false);
	else
		rc = rmp_make_private(pfn, gfn_to_gpa(gfn), PG_LEVEL_4K,
				      sev->asid, false);
	return rc ? -EINVAL : 0;
}

void sev_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end)
{
	kvm_pfn_t pfn = start;

	if (!cc_platform_has(CC_ATTR_HOST_SEV_SNP))
		return;

	while (pfn < end) {
		bool whole_2m = false;
		bool assigned;
		int level, rc;

		rc = snp_lookup_rmpentry(pfn, &assigned, &level);
		if (rc || !assigned)
			goto next;

		whole_2m = IS_ALIGNED(pfn, PTRS_PER_PMD) &&
			   end >= pfn + PTRS_PER_PMD && level > PG_LEVEL_4K;

		/* Converting part of a 2M entry needs it split first. */
		if (!whole_2m && level > PG_LEVEL_4K) {
			rc = snp_rmptable_psmash(pfn);
			WARN_ONCE(rc, "PSMASH of pfn 0x%llx: %d\n", pfn, rc);
		}

		rc = rmp_make_shared(pfn, whole_2m ? PG_LEVEL_2M : PG_LEVEL_4K);
		if (WARN_ONCE(rc, "RMPUPDATE of pfn 0x%llx: %d\n", pfn, rc))
			goto next;

		clflush_cache_range(__va(pfn_to_hpa(pfn)),
				    whole_2m ? PMD_SIZE : PAGE_SIZE);
next:
		pfn += whole_2m ? PTRS_PER_PMD : 1;
		cond_resched();
	}
}

int sev_private_max_mapping_level(struct kvm *kvm, kvm_pfn_t pfn)
{
	bool assigned;
	int level;

	if (!sev_snp_guest(kvm))
		return 0;
	if (snp_lookup_rmpentry(pfn, &assigned, &level) || !assigned)
		return PG_LEVEL_4K;
	return level;
}

/* ---- the tables the kernel reaches the hooks through ---- */

static const struct address_space_operations kvm_gmem_aops = {
	.free_folio = kvm_gmem_free_folio,
};

static struct kvm_x86_ops svm_x86_ops __initdata = {
	.gmem_prepare = sev_gmem_prepare,
	.gmem_invalidate = sev_gmem_invalidate,
	.private_max_mapping_level = sev_private_max_mapping_level,
};
