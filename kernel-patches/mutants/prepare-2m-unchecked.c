//! profile: upstream
//! sev_gmem_prepare() asks for one 2M RMP entry whenever the folio is 2M,
//! without checking that no page of the 2M range is private yet: the 2M
//! RMPUPDATE fails on a region where an earlier fault made a page private
//! 4K, and the fault gets -EINVAL instead of a 4K entry.
//@ sev_gmem_prepare carried arch/x86/kvm/svm/sev.c
int sev_gmem_prepare(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn, int max_order)
{
	struct kvm_sev_info *sev = &to_kvm_svm(kvm)->sev_info;
	kvm_pfn_t pfn_aligned = pfn;
	gfn_t gfn_aligned = gfn;
	int level = PG_LEVEL_4K;
	bool assigned;
	int rc;

	if (!sev_snp_guest(kvm))
		return 0;

	rc = snp_lookup_rmpentry(pfn, &assigned, &level);
	if (rc)
		return -ENOENT;

	if (assigned)
		return 0;

	/* The folio's order alone decides the entry's size. */
	level = PG_LEVEL_4K;
	if (max_level_for_order(max_order) > PG_LEVEL_4K) {
		level = PG_LEVEL_2M;
		pfn_aligned = ALIGN_DOWN(pfn, PTRS_PER_PMD);
		gfn_aligned = ALIGN_DOWN(gfn, PTRS_PER_PMD);
	}

	rc = rmp_make_private(pfn_aligned, gfn_to_gpa(gfn_aligned), level,
			      sev->asid, false);
	if (rc)
		return -EINVAL;

	return 0;
}
