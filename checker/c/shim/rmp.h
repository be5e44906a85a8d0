/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gmemforge kernel-API shim: the SEV-SNP RMP hardware model and the
 * kernel's RMP functions on it, included at the end of gmf_kernel.h.
 *
 * Inline, not in shim.c, because they are the RMP operations' hot path:
 * sev_gmem_invalidate() and is_pfn_range_shared() look up every pfn of a
 * range, and a call into another translation unit per pfn (the compiler
 * cannot inline across shim.c and the unit) cost more than the rest of a
 * vector.  Each function is what the kernel's is; nothing here is a
 * kernel copy (see shim.c's header).
 */
#ifndef GMF_SHIM_RMP_H
#define GMF_SHIM_RMP_H

/* One event in the recorder: whatever the op, with the lock context. */
static inline void gmf_record(uint32_t op, uint64_t pfn, uint64_t arg,
			      int32_t level, uint32_t asid, int32_t ret)
{
	struct gmf_event *e;

	if (gmf_rec.nevents >= GMF_MAX_EVENTS) {
		gmf_rec.events_overflow = 1;
		return;
	}
	e = &gmf_rec.events[gmf_rec.nevents++];
	e->op = op;
	e->pfn = pfn;
	e->arg = arg;
	e->level = level;
	e->asid = asid;
	e->mmu_lock_held = gmf_mmu_lock_held();
	e->ret = ret;
}

/*
 * The RMP hardware model.  It must match the Rust model
 * (reference/src/rmp.rs) exactly; entries are pfns 0 .. max_pfn - 1.
 *
 * A 2M-aligned entry whose pagesize is 2M ("a 2M head") is authoritative
 * for the 512 pfns of its region.  All failures return FAIL_INPUT (1).
 *
 * lookup(pfn): -ENODEV without host SNP; pfn >= max_pfn -> WARN, -EFAULT
 *   (6.12 get_rmpentry()); else assigned = the pfn's own entry, level = 2M
 *   iff the region's head has pagesize 2M.
 *
 * RMPUPDATE 4K at pfn: fails if the region's head has pagesize 2M; else
 *   writes that one entry: make-private {assigned, 4K, immutable, asid,
 *   gpa, validated = 0}; make-shared all zero.
 * RMPUPDATE 2M at pfn: fails unless pfn is 2M aligned and pfn + 512 <=
 *   max_pfn.  Make-private fails if any of the 512 entries is assigned;
 *   else all 512 become assigned with asid/immutable, gpa + i * 4K,
 *   validated = 0, the head 2M and the rest 4K.  Make-shared fails unless
 *   the head has pagesize 2M; else all 512 are zeroed.
 * PSMASH at pfn: works on the 2M-aligned head; fails unless the head is
 *   assigned with pagesize 2M; else the head's pagesize becomes 4K, every
 *   other field of all 512 entries unchanged.
 *
 * Wrappers, as 6.12 arch/x86/virt/svm/sev.c:
 *   rmp_make_private()/rmp_make_shared() -> rmpupdate(): -ENODEV without
 *     host SNP; pfn >= max_pfn (adjust_direct_map()'s pfn_valid()) or a
 *     failed instruction -> -EFAULT.  (No RMPUPDATE_FAIL_OVERLAP here, so
 *     nothing is retried.)
 *   psmash(): -ENODEV without host SNP; pfn >= max_pfn -> -EINVAL; else
 *     the instruction's code (0 or 1).
 *   snp_rmptable_psmash(pfn): KVM's wrapper: psmash(pfn & ~511).
 *
 * Every update and PSMASH is one recorded event carrying the pfn the KVM
 * code passed (for snp_rmptable_psmash(), its unaligned argument), the
 * wrapper's return value, and whether mmu_lock was held.
 */

static inline bool cc_platform_has(enum cc_attr attr)
{
	return attr == CC_ATTR_HOST_SEV_SNP && gmf_rmp.snp_enabled;
}

/* Widen [*lo, *hi) to cover [lo, hi). */
static inline void rmp_span_add(uint64_t *span_lo, uint64_t *span_hi,
				uint64_t lo, uint64_t hi)
{
	if (lo < *span_lo)
		*span_lo = lo;
	if (hi > *span_hi)
		*span_hi = hi;
}

/* Set bits [lo, hi) of a pfn bitmap (hi <= GMF_MAX_RMP_PFNS). */
static inline void rmp_bits_set(uint64_t *map, uint64_t lo, uint64_t hi)
{
	/* A 4K update, the common case: one bit, no loop. */
	if (hi - lo == 1) {
		map[lo / 64] |= 1ULL << (lo % 64);
		return;
	}
	while (lo < hi) {
		uint64_t b = lo % 64, n = hi - lo;

		map[lo / 64] |= n >= 64 - b ? ~0ULL << b :
					      ((1ULL << n) - 1) << b;
		lo += 64 - b;
	}
}

/* Entries [lo, hi) are no longer all zero: a load must clear them. */
static inline void rmp_dirty(uint64_t lo, uint64_t hi)
{
	rmp_span_add(&gmf_rmp.dirty_lo, &gmf_rmp.dirty_hi, lo, hi);
	rmp_bits_set(gmf_rmp.dirty, lo, hi);
}

/*
 * Every write to the table goes through here.  A written entry is dirty
 * too, but is not marked so: gmf_rmp_clear() clears the written entries
 * with the dirty ones, and gmf_rmp_restore() puts them back as loaded.
 */
static inline void rmp_written(uint64_t lo, uint64_t hi)
{
	rmp_span_add(&gmf_rmp.written_lo, &gmf_rmp.written_hi, lo, hi);
	rmp_bits_set(gmf_rmp.written, lo, hi);
}



static inline u64 rmp_head(u64 pfn)
{
	return pfn & ~(u64)(PTRS_PER_PMD - 1);
}

static inline bool rmp_region_is_2m(u64 pfn)
{
	return gmf_rmp.entries[rmp_head(pfn)].pagesize == RMP_PG_SIZE_2M;
}

static inline int snp_lookup_rmpentry(u64 pfn, bool *assigned, int *level)
{
	if (!cc_platform_has(CC_ATTR_HOST_SEV_SNP))
		return -ENODEV;
	if (WARN_ON_ONCE(pfn >= gmf_rmp.max_pfn))
		return -EFAULT;

	*level = rmp_region_is_2m(pfn) ? PG_LEVEL_2M : PG_LEVEL_4K;
	*assigned = gmf_rmp.entries[pfn].assigned;
	return 0;
}

/* RMPUPDATE; pfn < max_pfn is the caller's. 0 or FAIL_INPUT. */
static inline int rmpupdate_hw(u64 pfn, int level, const struct gmf_rmp_entry *new)
{
	struct gmf_rmp_entry *e = gmf_rmp.entries;
	u64 i;

	if (level == PG_LEVEL_4K) {
		if (rmp_region_is_2m(pfn))
			return FAIL_INPUT;
		rmp_written(pfn, pfn + 1);
		e[pfn] = *new;
		return 0;
	}

	if (pfn != rmp_head(pfn) || pfn + PTRS_PER_PMD > gmf_rmp.max_pfn)
		return FAIL_INPUT;
	if (new->assigned) {
		for (i = 0; i < PTRS_PER_PMD; i++) {
			if (e[pfn + i].assigned)
				return FAIL_INPUT;
		}
		rmp_written(pfn, pfn + PTRS_PER_PMD);
		for (i = 0; i < PTRS_PER_PMD; i++) {
			e[pfn + i] = *new;
			e[pfn + i].pagesize = i ? RMP_PG_SIZE_4K : RMP_PG_SIZE_2M;
			e[pfn + i].gpa = new->gpa + (i << PAGE_SHIFT);
		}
		return 0;
	}
	if (!rmp_region_is_2m(pfn))
		return FAIL_INPUT;
	rmp_written(pfn, pfn + PTRS_PER_PMD);
	__builtin_memset(&e[pfn], 0, PTRS_PER_PMD * sizeof(e[0]));
	return 0;
}

static inline int rmpupdate(u64 pfn, int level, const struct gmf_rmp_entry *new)
{
	if (!cc_platform_has(CC_ATTR_HOST_SEV_SNP))
		return -ENODEV;
	if (pfn >= gmf_rmp.max_pfn)
		return -EFAULT;
	if (rmpupdate_hw(pfn, level, new)) {
		pr_err("RMPUPDATE failed for PFN %llx, pg_level: %d\n", pfn, level);
		return -EFAULT;
	}
	return 0;
}

static inline int rmp_make_private(u64 pfn, u64 gpa, enum pg_level level,
				   u32 asid, bool immutable)
{
	struct gmf_rmp_entry new = {
		.assigned = 1,
		.pagesize = PG_LEVEL_TO_RMP(level),
		.immutable = immutable,
		.asid = asid,
		.gpa = gpa,
	};
	int ret = rmpupdate(pfn, level, &new);

	gmf_record(GMF_EV_MAKE_PRIVATE, pfn, gpa, level, asid, ret);
	return ret;
}

static inline int rmp_make_shared(u64 pfn, enum pg_level level)
{
	struct gmf_rmp_entry new = { 0 };
	int ret = rmpupdate(pfn, level, &new);

	gmf_record(GMF_EV_MAKE_SHARED, pfn, 0, level, 0, ret);
	return ret;
}

static inline int psmash_insn(u64 pfn)
{
	struct gmf_rmp_entry *head;

	if (!cc_platform_has(CC_ATTR_HOST_SEV_SNP))
		return -ENODEV;
	if (pfn >= gmf_rmp.max_pfn)
		return -EINVAL;
	head = &gmf_rmp.entries[rmp_head(pfn)];
	if (!head->assigned || head->pagesize != RMP_PG_SIZE_2M)
		return FAIL_INPUT;
	rmp_written(rmp_head(pfn), rmp_head(pfn) + 1);
	head->pagesize = RMP_PG_SIZE_4K;
	return 0;
}

static inline int psmash(u64 pfn)
{
	int ret = psmash_insn(pfn);

	gmf_record(GMF_EV_PSMASH, pfn, 0, 0, 0, ret);
	return ret;
}

#ifndef GMF_UNIT_HAS_SNP_RMPTABLE_PSMASH
/* KVM's retrying wrapper (static in sev.c); the unit may bring its own. */
static inline int snp_rmptable_psmash(kvm_pfn_t pfn)
{
	int ret;

	/* Never PSMASH_FAIL_INUSE here, so one try is all KVM makes. */
	ret = psmash_insn(pfn & ~(kvm_pfn_t)(KVM_PAGES_PER_HPAGE(PG_LEVEL_2M) - 1));
	gmf_record(GMF_EV_PSMASH, pfn, 0, 0, 0, ret);
	return ret;
}
#endif

#endif /* GMF_SHIM_RMP_H */
