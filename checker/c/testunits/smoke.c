// SPDX-License-Identifier: GPL-2.0-only
/*
 * Smoke test of the C side of the checker: loads one implementation's
 * shared object and checks its entry points on hand-computed cases
 * (the two-slot table of tests/vectors/invalidate.json and friends).
 *
 *   smoke IMPL.so upstream|solo2023|rmp-under-mmu-lock [--bench]
 *
 * rmp-under-mmu-lock is the upstream unit built with its punch hole
 * freeing folios under mmu_lock: every check of upstream holds, except
 * that the punch's RMP updates must show the lock held.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness.h"

#define PFERR_PRESENT (1ull << 0)
#define PFERR_WRITE (1ull << 1)
#define PFERR_RSVD (1ull << 3)
#define PFERR_GUEST_FINAL (1ull << 32)
#define PFERR_GUEST_ENC (1ull << 34)
#define PFERR_PRIVATE (1ull << 49)
#define ERR_ENOENT 2
#define ERR_EINTR 4
#define ERR_EBADF 9
#define ERR_EFAULT 14
#define ERR_EINVAL 22
#define ERR_EOPNOTSUPP 95

static int (*p_invalidate)(const struct gmf_invalidate_in *, struct gmf_invalidate_out *);
static int (*p_classify)(const struct gmf_fault_in *, struct gmf_fault_out *);
static int (*p_prepare)(const struct gmf_prepare_in *, struct gmf_rmp_out *);
static int (*p_rmp_invalidate)(const struct gmf_rmp_invalidate_in *,
			       struct gmf_rmp_out *);
static int (*p_prefault)(const struct gmf_prefault_in *, struct gmf_prefault_out *);
static int (*p_bind)(const struct gmf_bind_in *, struct gmf_bind_out *);
static int (*p_punch)(const struct gmf_punch_in *, struct gmf_rmp_out *);
static uint32_t (*p_ops)(void);
static uint32_t (*p_abi)(void);

static int failures;
static const char *impl_name;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s: %s:%d: CHECK(%s) failed\n",	\
			impl_name, __FILE__, __LINE__, #cond);		\
		failures++;						\
	}								\
} while (0)

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p) {
		fprintf(stderr, "missing symbol %s: %s\n", name, dlerror());
		exit(2);
	}
	return p;
}

/* ---- invalidate: slots A {0x100, index 0, 4} and B {0x200, index 4, 4} ---- */

static struct gmf_invalidate_in two_slots(uint64_t start, uint64_t end)
{
	struct gmf_invalidate_in in = {
		.nbindings = 2,
		.bindings = {
			{ .id = 0, .base_gfn = 0x100, .npages = 4, .pgoff = 0 },
			{ .id = 1, .base_gfn = 0x200, .npages = 4, .pgoff = 4 },
		},
		.start = start,
		.end = end,
	};
	return in;
}

static struct gmf_invalidate_out inval(uint64_t start, uint64_t end)
{
	struct gmf_invalidate_in in = two_slots(start, end);
	struct gmf_invalidate_out out;

	memset(&out, 0xa5, sizeof(out));
	CHECK(p_invalidate(&in, &out) == 0);
	return out;
}

static int zap_is(const struct gmf_invalidate_out *o, unsigned int i,
		  uint16_t slot, uint64_t start, uint64_t end)
{
	const struct gmf_gfn_range *r = &o->ranges[i];

	return i < o->nranges && r->slot == slot && r->start == start &&
	       r->end == end && r->mmu_lock_held;
}

static void test_invalidate_upstream(void)
{
	struct gmf_invalidate_out o;

	o = inval(2, 6);
	CHECK(o.nranges == 2 && zap_is(&o, 0, 0, 0x102, 0x104) &&
	      zap_is(&o, 1, 1, 0x200, 0x202));
	CHECK(o.ranges[0].attr_filter == 2 && o.ranges[1].attr_filter == 2);
	CHECK(o.invalidate_begin == 1 && o.invalidate_end == 1);
	CHECK(o.flushes == 1 && o.warnings == 0 && o.lock_balanced && !o.overflow);

	o = inval(0, 8);
	CHECK(o.nranges == 2 && zap_is(&o, 0, 0, 0x100, 0x104) &&
	      zap_is(&o, 1, 1, 0x200, 0x204));
	o = inval(5, 6);
	CHECK(o.nranges == 1 && zap_is(&o, 0, 1, 0x201, 0x202));
	o = inval(1, 3);
	CHECK(o.nranges == 1 && zap_is(&o, 0, 0, 0x101, 0x103));
	o = inval(0, ~0ull);	/* kvm_gmem_release(): 0, -1ul */
	CHECK(o.nranges == 2 && zap_is(&o, 0, 0, 0x100, 0x104) &&
	      zap_is(&o, 1, 1, 0x200, 0x204));
	CHECK(o.warnings == 0 && o.lock_balanced);
	o = inval(8, 10);	/* no binding: no mmu invalidation at all */
	CHECK(o.nranges == 0 && o.invalidate_begin == 0 &&
	      o.invalidate_end == 0 && o.flushes == 0 && o.lock_balanced);
}

static void test_invalidate_solo2023(void)
{
	struct gmf_invalidate_out o;

	o = inval(2, 6);	/* both slots WARN and are skipped */
	CHECK(o.nranges == 0 && o.warnings == 2 && o.range_add == 0);
	CHECK(o.invalidate_begin == 1 && o.invalidate_end == 1 && o.lock_balanced);
	o = inval(0, 8);
	CHECK(o.nranges == 0 && o.warnings == 2);
	o = inval(5, 6);
	CHECK(o.nranges == 1 && zap_is(&o, 0, 1, 0x201, 0x202));
	CHECK(o.ranges[0].attr_filter == 0 && o.range_add == 1 && o.warnings == 0);
	o = inval(1, 3);
	CHECK(o.nranges == 1 && zap_is(&o, 0, 0, 0x101, 0x103));
	o = inval(0, ~0ull);	/* closing the file zaps nothing */
	CHECK(o.nranges == 0 && o.warnings == 2);
	o = inval(8, 10);	/* begin without end */
	CHECK(o.nranges == 0 && o.invalidate_begin == 1 && o.invalidate_end == 0);
}

/* ---- classify ---- */

static struct gmf_fault_out classify(uint32_t vm, uint32_t slot, uint64_t err,
				     uint64_t gpa, int attr_private)
{
	struct gmf_fault_in in = {
		.vm_type = vm,
		.slot_kind = slot,
		.error_code = err,
		.gpa = gpa,
		.attr_private = (uint8_t)attr_private,
		.tdx_shared_bit = 51,
		.rule_source = vm == GMF_VM_SNP ? 0 : vm == GMF_VM_SW_PROTECTED ? 2 : 3,
		.rule_private_if_set = 1,
		.rule_mask = vm == GMF_VM_SNP ? PFERR_GUEST_ENC : 0,
	};
	struct gmf_fault_out out;

	memset(&out, 0xa5, sizeof(out));
	CHECK(p_classify(&in, &out) == 0);
	return out;
}

static void test_classify(int upstream)
{
	const uint64_t enc = PFERR_GUEST_ENC | PFERR_GUEST_FINAL | PFERR_WRITE |
			     PFERR_PRESENT;
	struct gmf_fault_out o;

	/* SNP private access to a private gfn: bit 34 must reach the MMU. */
	o = classify(GMF_VM_SNP, GMF_SLOT_GMEM, enc, 0x12345000, 1);
	CHECK(o.gfn == 0x12345 && o.warnings == 0);
	if (upstream) {
		CHECK(o.is_private && o.outcome == GMF_FAULT_MAP);
		CHECK(o.error_code == (enc | PFERR_PRIVATE));
	} else {
		/* Truncated to 32 bits: shared, so a memory-fault exit. */
		CHECK(!o.is_private && o.outcome == GMF_FAULT_MEMORY_EXIT);
		CHECK(o.error_code == (enc & 0xffffffffull));
		CHECK(o.exit_gpa == 0x12345000 && o.exit_size == 4096 &&
		      o.exit_flags == 0);
	}

	/* Shared access, no memslot: MMIO. */
	o = classify(GMF_VM_SW_PROTECTED, GMF_SLOT_NONE, PFERR_WRITE, 0x5000, 0);
	CHECK(!o.is_private && o.outcome == GMF_FAULT_MMIO && o.gfn == 5);

	/*
	 * Private attribute, memslot without guest_memfd: a memory-fault
	 * exit.  Upstream the fault is private (PRIVATE flag); the 2023
	 * rule calls any fault on such a slot shared.
	 */
	o = classify(GMF_VM_SW_PROTECTED, GMF_SLOT_PLAIN, PFERR_WRITE, 0x7000, 1);
	CHECK(o.is_private == upstream && o.outcome == GMF_FAULT_MEMORY_EXIT);
	CHECK(o.exit_gpa == 0x7000 && o.exit_size == 4096 &&
	      o.exit_flags == (upstream ? 8 : 0));

	if (upstream) {
		/* Private reserved-bit fault: WARN, -EFAULT, no exit. */
		o = classify(GMF_VM_SNP, GMF_SLOT_GMEM, enc | PFERR_RSVD,
			     0x9000, 1);
		CHECK(o.outcome == GMF_FAULT_EFAULT && o.warnings == 1);
		CHECK(o.is_private && o.gfn == 9 && o.exit_size == 0);
		CHECK(o.error_code == (enc | PFERR_RSVD | PFERR_PRIVATE));

		/* A synthetic bit from "hardware" is WARNed about and dropped. */
		o = classify(GMF_VM_SEV, GMF_SLOT_GMEM, PFERR_PRIVATE, 0x1000, 0);
		CHECK(o.warnings == 1 && !o.is_private && o.error_code == 0 &&
		      o.outcome == GMF_FAULT_MAP);
	}
}

/* ---- RMP ---- */

static struct gmf_rmp_out rmp_out;

/*
 * An entry of the table after the last call on state *in: what the call
 * wrote (rmp_out marks which), else what *in loaded.
 */
static struct gmf_rmp_entry rmp_after(const struct gmf_rmp_state *in,
				      uint64_t pfn)
{
	struct gmf_rmp_entry none = { 0 };
	uint32_t i;

	if (rmp_out.written[pfn / 64] & (1ULL << (pfn % 64)))
		return rmp_out.entries[pfn];
	for (i = 0; i < in->nruns; i++) {
		const struct gmf_rmp_run *r = &in->runs[i];

		if (pfn >= r->pfn && pfn - r->pfn < r->npages)
			return (struct gmf_rmp_entry){
				.assigned = 1,
				.pagesize = r->pagesize && pfn == r->pfn,
				.immutable = r->immutable,
				.validated = r->validated,
				.asid = r->asid,
				.gpa = r->gpa + ((pfn - r->pfn) << 12),
			};
	}
	return none;
}

/* The 2M entry sev_gmem_prepare(pfn 515, gfn 0x1003, order 9) makes. */
static const struct gmf_rmp_run prepared_2m = {
	.pfn = 512, .npages = 512, .gpa = 0x1000ull << 12, .asid = 1,
	.pagesize = 1,
};

static void test_rmp(void)
{
	static struct gmf_prepare_in pin;
	static struct gmf_rmp_invalidate_in iin;
	const struct gmf_event *ev = rmp_out.events;
	unsigned int i;

	memset(&pin, 0, sizeof(pin));
	pin.snp_guest = 1;
	pin.asid = 1;
	pin.pfn = 515;
	pin.gfn = 0x1003;
	pin.max_order = 9;
	pin.rmp.snp_enabled = 1;
	pin.rmp.max_pfn = GMF_MAX_RMP_PFNS;
	CHECK(p_prepare(&pin, &rmp_out) == 0);
	CHECK(rmp_out.ret == 0 && rmp_out.max_level == 2 && rmp_out.warnings == 0);
	CHECK(rmp_out.nevents == 1 && ev[0].op == GMF_EV_MAKE_PRIVATE &&
	      ev[0].pfn == 512 && ev[0].arg == 0x1000ull << 12 &&
	      ev[0].level == 2 && ev[0].asid == 1 && ev[0].ret == 0 &&
	      !ev[0].mmu_lock_held);
#define E(pfn) rmp_after(&pin.rmp, pfn)
	CHECK(E(512).assigned && E(512).pagesize == 1 && E(512).asid == 1);
	CHECK(E(515).assigned && E(515).pagesize == 0 &&
	      E(515).gpa == 0x1003ull << 12);
	CHECK(!E(511).assigned && !E(1024).assigned && E(1023).assigned);
	CHECK(rmp_out.rmp_lo == 512 && rmp_out.rmp_hi == 1024);
#undef E
#define E(pfn) rmp_after(&iin.rmp, pfn)

	/* Free two 4K pages inside the 2M entry: PSMASH, then 4K updates. */
	memset(&iin, 0, sizeof(iin));
	iin.start = 516;
	iin.end = 518;
	iin.rmp.snp_enabled = 1;
	iin.rmp.max_pfn = GMF_MAX_RMP_PFNS;
	iin.rmp.nruns = 1;
	iin.rmp.runs[0] = prepared_2m;
	CHECK(p_rmp_invalidate(&iin, &rmp_out) == 0);
	CHECK(rmp_out.nevents == 3 && rmp_out.warnings == 0);
	CHECK(ev[0].op == GMF_EV_PSMASH && ev[0].pfn == 516 && ev[0].ret == 0);
	CHECK(ev[1].op == GMF_EV_MAKE_SHARED && ev[1].pfn == 516 &&
	      ev[1].level == 1 && ev[1].ret == 0);
	CHECK(ev[2].op == GMF_EV_MAKE_SHARED && ev[2].pfn == 517);
	CHECK(E(512).assigned && E(512).pagesize == 0);
	CHECK(!E(516).assigned && !E(517).assigned && E(515).assigned &&
	      E(518).assigned && E(518).gpa == 0x1006ull << 12);

	/* Whole 2M freed at once: one 2M update. */
	iin.start = 512;
	iin.end = 1024;
	CHECK(p_rmp_invalidate(&iin, &rmp_out) == 0);
	CHECK(rmp_out.nevents == 1 && ev[0].op == GMF_EV_MAKE_SHARED &&
	      ev[0].pfn == 512 && ev[0].level == 2 && ev[0].ret == 0);
	for (i = 0; i < GMF_MAX_RMP_PFNS; i++)
		CHECK(!E(i).assigned && !E(i).pagesize);
#undef E

	/* A lookup past the table WARNs; prepare fails with -ENOENT. */
	pin.pfn = GMF_MAX_RMP_PFNS;
	CHECK(p_prepare(&pin, &rmp_out) == 0);
	CHECK(rmp_out.ret == -ERR_ENOENT && rmp_out.nevents == 0 &&
	      rmp_out.max_level == 1 && rmp_out.warnings == 2);
}

/*
 * ---- punch hole: a 1024-page file at pfn 0x200, bound at gfn 0x800,
 * holding a 2M folio at page 0 and a 4K folio at page 600, both private
 * (RMP as sev_gmem_prepare() leaves them: one 2M entry, one 4K entry).
 */

#define PUNCH_PFN 0x200ull
#define PUNCH_GFN 0x800ull

static struct gmf_punch_in punch_in;

static void punch_setup(void)
{
	struct gmf_rmp_run *r = punch_in.rmp.runs;

	memset(&punch_in, 0, sizeof(punch_in));
	punch_in.nbindings = 1;
	punch_in.bindings[0] = (struct gmf_binding){
		.id = 0, .base_gfn = PUNCH_GFN, .npages = 1024, .pgoff = 0,
	};
	punch_in.pfn_base = PUNCH_PFN;
	punch_in.nfolios = 2;
	punch_in.folios[0] = (struct gmf_folio){ .index = 0, .order = 9 };
	punch_in.folios[1] = (struct gmf_folio){ .index = 600, .order = 0 };
	punch_in.rmp.snp_enabled = 1;
	punch_in.rmp.max_pfn = GMF_MAX_RMP_PFNS;
	punch_in.rmp.nruns = 2;
	r[0] = (struct gmf_rmp_run){
		.pfn = PUNCH_PFN, .npages = 512, .pagesize = 1, .asid = 1,
		.gpa = PUNCH_GFN << 12,
	};
	r[1] = (struct gmf_rmp_run){
		.pfn = PUNCH_PFN + 600, .npages = 1, .asid = 1,
		.gpa = (PUNCH_GFN + 600) << 12,
	};
}

static int punch(uint64_t first, uint64_t npages)
{
	punch_in.offset = (int64_t)(first << 12);
	punch_in.len = (int64_t)(npages << 12);
	memset(&rmp_out, 0xa5, sizeof(rmp_out));
	return p_punch(&punch_in, &rmp_out);
}

static int ev_is(unsigned int i, uint32_t op, uint64_t pfn, uint64_t arg,
		 int32_t level, int locked)
{
	const struct gmf_event *ev = &rmp_out.events[i];

	return i < rmp_out.nevents && ev->op == op && ev->pfn == pfn &&
	       ev->arg == arg && ev->level == level && ev->ret == 0 &&
	       ev->mmu_lock_held == locked;
}

/*
 * sev: the unit has sev_gmem_invalidate() (the RMP events happen);
 * rmp_locked: the mutant frees the folios under mmu_lock.
 */
static void test_punch(int sev, int rmp_locked)
{
	unsigned int n;

#define E(pfn) rmp_after(&punch_in.rmp, pfn)
	/* Page 0: zap one gfn, split the 2M folio, free its first page. */
	punch_setup();
	CHECK(punch(0, 1) == 0);
	CHECK(rmp_out.ret == 0 && rmp_out.max_level == 0 &&
	      rmp_out.warnings == 0 && !rmp_out.overflow);
	CHECK(rmp_out.nevents == (sev ? 5 : 3));
	CHECK(ev_is(0, GMF_EV_INVALIDATE_BEGIN, 0, 0, 0, 1));
	CHECK(ev_is(1, GMF_EV_UNMAP, PUNCH_GFN, PUNCH_GFN + 1, 0, 1));
	if (sev) {
		CHECK(ev_is(2, GMF_EV_PSMASH, PUNCH_PFN, 0, 0, rmp_locked));
		CHECK(ev_is(3, GMF_EV_MAKE_SHARED, PUNCH_PFN, 0, 1, rmp_locked));
	}
	CHECK(ev_is(sev ? 4 : 2, GMF_EV_INVALIDATE_END, 0, 0, 0, 1));
	if (sev) {
		CHECK(!E(PUNCH_PFN).assigned && !E(PUNCH_PFN).pagesize);
		CHECK(E(PUNCH_PFN + 1).assigned && E(PUNCH_PFN + 511).assigned);
	} else {
		CHECK(E(PUNCH_PFN).assigned && E(PUNCH_PFN).pagesize == 1);
	}
	CHECK(E(PUNCH_PFN + 600).assigned);

	/*
	 * The whole file: the 2M folio goes whole (one 2M update), then the
	 * 4K one, in index order.
	 */
	CHECK(punch(0, 1024) == 0);
	n = sev ? 4 : 2;	/* END's position */
	CHECK(rmp_out.ret == 0 && rmp_out.nevents == n + 1 &&
	      rmp_out.warnings == 0);
	CHECK(ev_is(1, GMF_EV_UNMAP, PUNCH_GFN, PUNCH_GFN + 1024, 0, 1));
	if (sev) {
		CHECK(ev_is(2, GMF_EV_MAKE_SHARED, PUNCH_PFN, 0, 2, rmp_locked));
		CHECK(ev_is(3, GMF_EV_MAKE_SHARED, PUNCH_PFN + 600, 0, 1,
			    rmp_locked));
		CHECK(!E(PUNCH_PFN + 511).assigned && !E(PUNCH_PFN + 600).assigned);
	}
	CHECK(rmp_out.events[n].op == GMF_EV_INVALIDATE_END);

	/* Pages 2..513: split, then 510 4K frees after one PSMASH. */
	CHECK(punch(2, 512) == 0);
	if (sev) {
		CHECK(rmp_out.nevents == 2 + 1 + 510 + 1);
		CHECK(ev_is(2, GMF_EV_PSMASH, PUNCH_PFN + 2, 0, 0, rmp_locked));
		CHECK(ev_is(3, GMF_EV_MAKE_SHARED, PUNCH_PFN + 2, 0, 1, rmp_locked));
		CHECK(ev_is(512, GMF_EV_MAKE_SHARED, PUNCH_PFN + 511, 0, 1,
			    rmp_locked));
		CHECK(E(PUNCH_PFN + 1).assigned && !E(PUNCH_PFN + 2).assigned &&
		      !E(PUNCH_PFN + 511).assigned);
	}

	#undef E

	/* Inputs the kernel cannot produce are refused. */
	punch_in.folios[1] = (struct gmf_folio){ .index = 256, .order = 0 };
	CHECK(punch(0, 1) == -1);	/* inside the 2M folio */
	punch_in.folios[1] = (struct gmf_folio){ .index = 600, .order = 9 };
	CHECK(punch(0, 1) == -1);	/* unaligned */
	punch_in.folios[1] = (struct gmf_folio){ .index = 600, .order = 1 };
	CHECK(punch(0, 1) == -1);	/* neither 4K nor 2M */
	punch_setup();
	punch_in.pfn_base = PUNCH_PFN + 1;
	CHECK(punch(0, 1) == -1);	/* a 2M folio at an unaligned pfn */
	punch_setup();
	punch_in.len = 100;
	CHECK(p_punch(&punch_in, &rmp_out) == -1);
}

/* ---- bind ---- */

static struct gmf_bind_out bind(uint32_t fd, uint64_t offset, int other_vm)
{
	struct gmf_bind_in in = {
		.nfiles = 2,
		.files = {
			{ .fd = 3, .size = 16 << 12, .is_gmem = 1,
			  .other_vm = (uint8_t)other_vm },
			{ .fd = 4, .size = 16 << 12, .is_gmem = 0 },
		},
		.nbound = 1,
		.bound = { { .id = 0, .base_gfn = 0x100, .npages = 4, .pgoff = 0 } },
		.id = 1,
		.base_gfn = 0x200,
		.npages = 4,
		.fd = fd,
		.offset = offset,
	};
	struct gmf_bind_out out;

	if (fd != 3)
		in.nbound = 0;
	memset(&out, 0xa5, sizeof(out));
	CHECK(p_bind(&in, &out) == 0);
	return out;
}

static void test_bind(int upstream)
{
	struct gmf_bind_out o;

	o = bind(7, 0, 0);	/* no such fd */
	CHECK(o.ret == (upstream ? -ERR_EBADF : -ERR_EINVAL) && !o.file_set);
	o = bind(4, 0, 0);	/* not a guest_memfd */
	CHECK(o.ret == -ERR_EINVAL && !o.file_set);
	o = bind(3, 4 << 12, 1);	/* another VM's guest_memfd */
	CHECK(o.ret == -ERR_EINVAL);
	o = bind(3, 2 << 12, 0);	/* overlaps the existing binding */
	CHECK(o.ret == -ERR_EINVAL && !o.file_set && o.nbound == 1);
	o = bind(3, 13 << 12, 0);	/* past EOF */
	CHECK(o.ret == -ERR_EINVAL);

	o = bind(3, 4 << 12, 0);
	CHECK(o.ret == 0 && o.pgoff == 4 && o.file_set && o.nbound == 2);
	CHECK(o.bound[0].id == 0 && o.bound[0].pgoff == 0 && o.bound[0].npages == 4);
	CHECK(o.bound[1].id == 1 && o.bound[1].pgoff == 4 &&
	      o.bound[1].npages == 4 && o.bound[1].base_gfn == 0x200);

	/* Unaligned offset: upstream refuses, 2023 rounds it down. */
	o = bind(3, (4 << 12) + 0x800, 0);
	if (upstream)
		CHECK(o.ret == -ERR_EINVAL && o.nbound == 1);
	else
		CHECK(o.ret == 0 && o.pgoff == 4 && o.nbound == 2);
}

/* ---- pre-fault: the 6.12 selftest layout, a 2M+4K slot at gfn 0x1000 ---- */

static struct gmf_prefault_out prefault(uint64_t gpa, uint64_t size,
					uint8_t max_level, uint8_t allowed,
					uint32_t interrupt_after)
{
	struct gmf_prefault_in in = {
		.vm_type = GMF_VM_DEFAULT,
		.pre_fault_allowed = allowed,
		.tdp = 1,
		.gpa = gpa,
		.size = size,
		.nslots = 1,
		.slots = { { .base_gfn = 0x1000, .npages = 513, .max_level = max_level } },
		.interrupt_after = interrupt_after,
	};
	struct gmf_prefault_out out;

	memset(&out, 0xa5, sizeof(out));
	CHECK(p_prefault(&in, &out) == 0);
	return out;
}

static void test_prefault(void)
{
	const uint64_t base = 0x1000ull << 12;
	struct gmf_prefault_out o;

	o = prefault(base, 0x200000, 2, 1, 0);
	CHECK(o.ret == 0 && o.size == 0 && o.gpa == base + 0x200000 && o.calls == 1);
	o = prefault(base + 0x200000, 0x2000, 2, 1, 0);
	CHECK(o.ret == 0 && o.size == 0x1000 && o.calls == 2);
	o = prefault(base + 0x201000, 0x1000, 2, 1, 0);
	CHECK(o.ret == -ERR_ENOENT && o.size == 0x1000 && o.calls == 1);
	o = prefault(base, 0x4000, 1, 1, 2);	/* signal after two 4K maps */
	CHECK(o.ret == 0 && o.size == 0x2000 && o.gpa == base + 0x2000 &&
	      o.calls == 2);
	o = prefault(base, 0x4000, 1, 1, 0);
	CHECK(o.ret == 0 && o.size == 0 && o.calls == 4);
	o = prefault(base, 0x1000, 2, 0, 0);
	CHECK(o.ret == -ERR_EOPNOTSUPP && o.size == 0x1000 && o.calls == 1);
	o = prefault(base + 1, 0x1000, 2, 1, 0);
	CHECK(o.ret == -ERR_EINVAL && o.calls == 0);
	CHECK(o.warnings == 0);
}

static void bench(void)
{
	struct gmf_invalidate_in in = two_slots(2, 6);
	struct gmf_invalidate_out out;
	const long n = 20000000;
	struct timespec t0, t1;
	double s;
	long i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		in.start = i & 3;
		p_invalidate(&in, &out);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%s: gmf_invalidate %.1fM calls/s (%ld calls, %.2fs)\n",
	       impl_name, n / s / 1e6, n, s);
}

int main(int argc, char **argv)
{
	int upstream, mutant;
	uint32_t ops;
	void *h;

	if (argc < 3) {
		fprintf(stderr, "usage: smoke IMPL.so upstream|solo2023 [--bench]\n");
		return 2;
	}
	impl_name = argv[2];
	mutant = !strcmp(argv[2], "rmp-under-mmu-lock");
	upstream = mutant || !strcmp(argv[2], "upstream");
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	p_invalidate = sym(h, "gmf_invalidate");
	p_classify = sym(h, "gmf_classify");
	p_prepare = sym(h, "gmf_prepare");
	p_rmp_invalidate = sym(h, "gmf_rmp_invalidate");
	p_prefault = sym(h, "gmf_prefault");
	p_bind = sym(h, "gmf_bind");
	p_punch = sym(h, "gmf_punch_hole");
	p_ops = sym(h, "gmf_ops");
	p_abi = sym(h, "gmf_abi_version");

	CHECK(p_abi() == GMF_ABI_VERSION);
	ops = p_ops();
	if (upstream) {
		CHECK(ops == 0x7f);
		test_invalidate_upstream();
		test_rmp();
		test_prefault();
		test_punch(1, mutant);
	} else {
		struct gmf_prefault_in pin = { 0 };
		struct gmf_prefault_out pout;

		CHECK(ops == (GMF_OP_INVALIDATE | GMF_OP_CLASSIFY | GMF_OP_BIND |
			      GMF_OP_PUNCH_HOLE));
		CHECK(p_prefault(&pin, &pout) == -2);
		test_invalidate_solo2023();
		test_punch(0, 0);
	}
	test_classify(upstream);
	test_bind(upstream);

	if (argc > 3 && !strcmp(argv[3], "--bench"))
		bench();
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", impl_name, failures);
		return 1;
	}
	printf("%s: smoke OK\n", impl_name);
	return 0;
}
