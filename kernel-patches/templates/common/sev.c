//@ is_pfn_range_shared carried arch/x86/kvm/svm/sev.c
static bool is_pfn_range_shared(kvm_pfn_t start, kvm_pfn_t end)
{
	kvm_pfn_t pfn;

	for (pfn = start; pfn < end; pfn++) {
		int ret, rmp_level;
		bool assigned;

		ret = snp_lookup_rmpentry(pfn, &assigned, &rmp_level);
		if (ret || assigned)
			return false;
	}

	return true;
}

//@ max_level_for_order carried arch/x86/kvm/svm/sev.c
static u8 max_level_for_order(int order)
{
	return @{max_level_for_order(order: order)};
}

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

	/* Prepared earlier, e.g. by a 2M update covering this pfn. */
	if (assigned)
		return 0;

	/*
	 * One 2M entry when the folio allows it and nothing in the aligned
	 * 2M range is private yet; 4K otherwise.
	 */
	level = PG_LEVEL_4K;
	if (max_level_for_order(max_order) > PG_LEVEL_4K &&
	    is_pfn_range_shared(ALIGN_DOWN(pfn, PTRS_PER_PMD),
				ALIGN_DOWN(pfn, PTRS_PER_PMD) + PTRS_PER_PMD)) {
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

//@ sev_gmem_invalidate carried arch/x86/kvm/svm/sev.c
void sev_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end)
{
	kvm_pfn_t pfn;

	if (!cc_platform_has(CC_ATTR_HOST_SEV_SNP))
		return;

	for (pfn = start; pfn < end;) {
		bool use_2m_update = false;
		int rc, rmp_level;
		bool assigned;

		rc = snp_lookup_rmpentry(pfn, &assigned, &rmp_level);
		if (rc || !assigned)
			goto next_pfn;

		/*
		 * Convert a 2M entry in one go only when it starts here and
		 * the freed range covers all of it; otherwise split it first
		 * and convert this 4K page alone.
		 */
		use_2m_update = @{rmp_use_2m_update(pfn: pfn, end: end, rmp_level: rmp_level)};

		if (!use_2m_update && rmp_level > PG_LEVEL_4K) {
			rc = snp_rmptable_psmash(pfn);
			WARN_ONCE(rc, "SEV: PSMASH of PFN 0x%llx failed: %d\n",
				  pfn, rc);
		}

		rc = rmp_make_shared(pfn, use_2m_update ? PG_LEVEL_2M :
							  PG_LEVEL_4K);
		if (WARN_ONCE(rc, "SEV: RMP update of PFN 0x%llx failed: %d\n",
			      pfn, rc))
			goto next_pfn;

		clflush_cache_range(__va(pfn_to_hpa(pfn)),
				    use_2m_update ? PMD_SIZE : PAGE_SIZE);
next_pfn:
		pfn += use_2m_update ? PTRS_PER_PMD : 1;
		cond_resched();
	}
}

//@ sev_private_max_mapping_level carried arch/x86/kvm/svm/sev.c
int sev_private_max_mapping_level(struct kvm *kvm, kvm_pfn_t pfn)
{
	int level, rc;
	bool assigned;

	if (!sev_snp_guest(kvm))
		return 0;

	rc = snp_lookup_rmpentry(pfn, &assigned, &level);
	if (rc || !assigned)
		return PG_LEVEL_4K;

	return level;
}
