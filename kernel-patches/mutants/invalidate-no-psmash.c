//! profile: upstream
//! sev_gmem_invalidate() converts a page of a 2M RMP entry with a 4K
//! update without splitting the entry first (no PSMASH): the RMPUPDATE
//! fails, WARNs, and the freed pages stay private.
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

		use_2m_update = @{rmp_use_2m_update(pfn: pfn, end: end, rmp_level: rmp_level)};

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
