// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test unit, GMF_PROFILE=1: the 2023 kvm_gmem_solo-era shapes *with their
 * bugs*, written for gmemforge's tests (not taken from any tree):
 *  - the invalidation range is not clamped to the binding; a range that
 *    starts before it or ends after it WARNs and skips the slot, and
 *    begin runs even when nothing overlaps;
 *  - kvm_mmu_page_fault() hands kvm_mmu_do_page_fault() a u32 error
 *    code, so SNP's PFERR_GUEST_ENC (bit 34) never reaches the MMU;
 *  - kvm_gmem_bind() answers -EINVAL to everything;
 *  - no sev_gmem_invalidate(): freed folios reach kvm_arch_gmem_invalidate()
 *    and stop there, as in a tree without SNP.
 */
#define GMF_HAVE_FAULT_IS_PRIVATE 1
#define GMF_HAVE_GMEM_AOPS 1

/* ---- virt/kvm/guest_mem.c ---- */

static void kvm_gmem_invalidate_begin(struct kvm *kvm, struct kvm_gmem *gmem,
				      pgoff_t start, pgoff_t end)
{
	struct kvm_memory_slot *slot;
	unsigned long index;
	bool flush = false;

	KVM_MMU_LOCK(kvm);
	kvm_mmu_invalidate_begin(kvm);

	xa_for_each_range(&gmem->bindings, index, slot, start, end - 1) {
		struct kvm_gfn_range range = {
			.slot = slot,
			.start = slot->base_gfn + start - slot->gmem.index,
			.end = slot->base_gfn + min(end - slot->gmem.index,
						    slot->npages),
			.pte = __pte(0),
			.may_block = true,
		};

		if (WARN_ON_ONCE(start < slot->gmem.index ||
				 end > slot->gmem.index + slot->npages))
			continue;

		kvm_mmu_invalidate_range_add(kvm, range.start, range.end);
		flush |= kvm_unmap_gfn_range(kvm, &range);
	}

	if (flush)
		kvm_flush_remote_tlbs(kvm);
	KVM_MMU_UNLOCK(kvm);
}

static void kvm_gmem_invalidate_end(struct kvm *kvm, struct kvm_gmem *gmem,
				    pgoff_t start, pgoff_t end)
{
	KVM_MMU_LOCK(kvm);
	if (xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT))
		kvm_mmu_invalidate_end(kvm);
	KVM_MMU_UNLOCK(kvm);
}

/* The series' free hook, in the upstream shape the 2023 trees were given. */
static void kvm_gmem_free_folio(struct folio *folio)
{
	kvm_pfn_t pfn = folio_pfn(folio);

	kvm_arch_gmem_invalidate(pfn, pfn + folio_nr_pages(folio));
}

/* One kvm_gmem per file: the file's private_data, with the kvm in it. */
static long kvm_gmem_punch_hole(struct file *file, loff_t offset, loff_t len)
{
	struct kvm_gmem *gmem = file->private_data;
	struct kvm *kvm = gmem->kvm;
	pgoff_t start = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + len) >> PAGE_SHIFT;

	filemap_invalidate_lock(file->f_mapping);
	kvm_gmem_invalidate_begin(kvm, gmem, start, end);
	truncate_inode_pages_range(file->f_mapping, offset, offset + len - 1);
	kvm_gmem_invalidate_end(kvm, gmem, start, end);
	filemap_invalidate_unlock(file->f_mapping);
	return 0;
}

int kvm_gmem_bind(struct kvm *kvm, struct kvm_memory_slot *slot,
		  unsigned int fd, loff_t offset)
{
	loff_t size = slot->npages << PAGE_SHIFT;
	unsigned long first, end;
	struct kvm_gmem *gmem;
	struct inode *inode;
	struct file *file;

	file = fget(fd);
	if (!file)
		return -EINVAL;

	if (file->f_op != &kvm_gmem_fops)
		goto err;
	gmem = file->private_data;
	if (gmem->kvm != kvm)
		goto err;

	inode = file_inode(file);
	if (offset < 0 || offset + size > i_size_read(inode))
		goto err;

	filemap_invalidate_lock(inode->i_mapping);
	first = offset >> PAGE_SHIFT;
	end = first + slot->npages;
	if (!xa_empty(&gmem->bindings) &&
	    xa_find(&gmem->bindings, &first, end - 1, XA_PRESENT)) {
		filemap_invalidate_unlock(inode->i_mapping);
		goto err;
	}
	rcu_assign_pointer(slot->gmem.file, file);
	slot->gmem.index = first;
	xa_store_range(&gmem->bindings, first, end - 1, slot, GFP_KERNEL);
	filemap_invalidate_unlock(inode->i_mapping);
	return 0;
err:
	fput(file);
	return -EINVAL;
}

/* ---- arch/x86/kvm/mmu/mmu_internal.h (SNP RFC v9 shape) ---- */

static inline bool kvm_mmu_fault_is_private(struct kvm *kvm, gpa_t gpa, u64 err)
{
	struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gpa_to_gfn(gpa));

	if (!slot || !kvm_slot_can_be_private(slot))
		return false;
	if (kvm->arch.mmu_private_fault_mask)
		return !!(err & kvm->arch.mmu_private_fault_mask);
	return kvm_mem_is_private(kvm, gpa_to_gfn(gpa));
}

static inline int kvm_mmu_do_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
					u32 err, bool prefetch,
					int *emulation_type)
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
		.max_level = KVM_MAX_HUGEPAGE_LEVEL,
		.req_level = PG_LEVEL_4K,
		.goal_level = PG_LEVEL_4K,
		.is_private = kvm_mmu_fault_is_private(vcpu->kvm, cr2_or_gpa, err),
	};
	int r;

	if (vcpu->arch.mmu->root_role.direct) {
		fault.gfn = fault.addr >> PAGE_SHIFT;
		fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);
	}
	if (!prefetch)
		vcpu->stat.pf_taken++;

	if (IS_ENABLED(CONFIG_RETPOLINE) && fault.is_tdp)
		r = kvm_tdp_page_fault(vcpu, &fault);
	else
		r = vcpu->arch.mmu->page_fault(vcpu, &fault);

	if (fault.write_fault_to_shadow_pgtable && emulation_type)
		*emulation_type |= EMULTYPE_WRITE_PF_TO_SP;
	if (r == RET_PF_FIXED)
		vcpu->stat.pf_fixed++;
	else if (r == RET_PF_EMULATE)
		vcpu->stat.pf_emulate++;
	return r;
}

/* ---- arch/x86/kvm/mmu/mmu.c ---- */

int noinline kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				u64 error_code, void *insn, int insn_len)
{
	int r = RET_PF_INVALID, emulation_type = EMULTYPE_PF;
	bool direct = vcpu->arch.mmu->root_role.direct;

	if (WARN_ON(!VALID_PAGE(vcpu->arch.mmu->root.hpa)))
		return RET_PF_RETRY;

	if (unlikely(error_code & PFERR_RSVD_MASK)) {
		r = handle_mmio_page_fault(vcpu, cr2_or_gpa, direct);
		if (r == RET_PF_EMULATE)
			goto emulate;
	}

	if (r == RET_PF_INVALID) {
		/* The 2023 bug: the upper half of the error code is dropped. */
		r = kvm_mmu_do_page_fault(vcpu, cr2_or_gpa,
					  lower_32_bits(error_code), false,
					  &emulation_type);
		if (KVM_BUG_ON(r == RET_PF_INVALID, vcpu->kvm))
			return -EIO;
	}
	if (r < 0)
		return r;
	if (r != RET_PF_EMULATE)
		return 1;

	if (direct && (error_code & PFERR_NESTED_GUEST_PAGE) ==
		      PFERR_NESTED_GUEST_PAGE) {
		kvm_mmu_unprotect_page(vcpu->kvm, gpa_to_gfn(cr2_or_gpa));
		return 1;
	}
	if (!mmio_info_in_cache(vcpu, cr2_or_gpa, direct) && !is_guest_mode(vcpu))
		emulation_type |= EMULTYPE_ALLOW_RETRY_PF;
emulate:
	return x86_emulate_instruction(vcpu, cr2_or_gpa, emulation_type, insn,
				       insn_len);
}

/* ---- arch/x86/kvm/svm/svm.c ---- */

static int npf_interception(struct kvm_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	u64 gpa = svm->vmcb->control.exit_info_2;
	u64 error_code = svm->vmcb->control.exit_info_1;

	trace_kvm_page_fault(vcpu, gpa, error_code);
	return kvm_mmu_page_fault(vcpu, gpa, error_code,
				  static_cpu_has(X86_FEATURE_DECODEASSISTS) ?
				  svm->vmcb->control.insn_bytes : NULL,
				  svm->vmcb->control.insn_len);
}

/* The page cache frees folios through this table (no vendor table: no SNP). */
static const struct address_space_operations kvm_gmem_aops = {
	.free_folio = kvm_gmem_free_folio,
};
