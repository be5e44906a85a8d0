// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmemforge kernel-API shim: the state behind gmf_kernel.h and the
 * functions that record what the code under test does.
 *
 * Compiled with the same -DGMF_PROFILE as the unit, into the same shared
 * object.  Everything is static storage: nothing allocates, so one vector
 * costs a reset of a few hundred bytes plus what its op touches.
 */
#include "gmf_kernel.h"

/*
 * Stubs for kernel functions a unit under test may bring itself (hooks,
 * emulator entry points) are weak, so such a unit still links.
 */
#define __gmf_weak __attribute__((weak))

struct gmf_recorder gmf_rec;
struct gmf_rmp_table gmf_rmp;
struct gmf_world gmf_world;
struct task_struct gmf_current_task;
struct file_operations kvm_gmem_fops;
struct kvm_x86_ops kvm_x86_ops;
/* Written only for folios an adapter inserts: no reset, no hot-path cost. */
struct page gmf_memmap[GMF_MAX_RMP_PFNS];

void gmf_shim_reset(void)
{
	/* Only the counters: events/ranges are valid up to their counts. */
	gmf_zero(&gmf_rec, offsetof(struct gmf_recorder, ranges));
	gmf_zero(&gmf_world.vm, sizeof(gmf_world.vm));
	gmf_world.nfiles = 0;
}

void gmf_shim_reset_vcpu(void)
{
	struct gmf_world *w = &gmf_world;

	__builtin_memset(&w->run, 0, sizeof(w->run));
	__builtin_memset(&w->vmcb, 0, sizeof(w->vmcb));
	__builtin_memset(&w->mmu, 0, sizeof(w->mmu));
	__builtin_memset(&w->vcpu, 0, sizeof(w->vcpu));
	w->vcpu.vcpu.kvm = &w->vm.kvm;
	w->vcpu.vcpu.run = &w->run;
	w->vcpu.vcpu.arch.mmu = &w->mmu;
	w->vcpu.vmcb = &w->vmcb;
	/* A loaded TDP root: faults go to kvm_tdp_page_fault(). */
	w->mmu.page_fault = kvm_tdp_page_fault;
	w->mmu.root.hpa = 0x1000;
	w->mmu.root_role.direct = 1;
}

void gmf_warn(void)
{
	gmf_rec.warnings++;
}

bool gmf_signal_pending(struct task_struct *p)
{
	uint32_t n = gmf_rec.signal_checks++;

	(void)p;
	return gmf_rec.signal_after && n >= gmf_rec.signal_after;
}

/* ------------------------------------------------------------------ */
/* xarray                                                              */
/* ------------------------------------------------------------------ */

/* Index of the first range whose last index is >= index. */
static unsigned int xa_lower(const struct xarray *xa, unsigned long index)
{
	unsigned int lo = 0, hi = xa->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (xa->r[mid].last < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void *xa_load(struct xarray *xa, unsigned long index)
{
	unsigned int i = xa_lower(xa, index);

	if (i < xa->nr && xa->r[i].first <= index)
		return xa->r[i].entry;
	return NULL;
}

/*
 * Like the kernel: the first entry at or after *indexp and at most max;
 * *indexp moves to the index found (unchanged when it hits an entry
 * directly), and is left alone when nothing is found.
 */
void *xa_find(struct xarray *xa, unsigned long *indexp, unsigned long max,
	      xa_mark_t filter)
{
	unsigned long index = *indexp;
	unsigned int i;

	(void)filter;
	if (index > max)
		return NULL;
	i = xa_lower(xa, index);
	if (i >= xa->nr || xa->r[i].first > max)
		return NULL;
	if (xa->r[i].first > index)
		*indexp = xa->r[i].first;
	return xa->r[i].entry;
}

/* The next entry after the one at *indexp (its other indices skipped). */
void *xa_find_after(struct xarray *xa, unsigned long *indexp,
		    unsigned long max, xa_mark_t filter)
{
	unsigned long index = *indexp;
	unsigned int i;

	(void)filter;
	if (index == ~0UL || index >= max)
		return NULL;
	i = xa_lower(xa, index + 1);
	/* Still inside the entry at index: skip to the next range. */
	if (i < xa->nr && xa->r[i].first <= index)
		i++;
	if (i >= xa->nr || xa->r[i].first > max)
		return NULL;
	*indexp = xa->r[i].first;
	return xa->r[i].entry;
}

/* Move ranges [from, nr) to start at index to (tables are tiny: no libc). */
static void gmf_xa_move(struct xarray *xa, unsigned int to, unsigned int from)
{
	unsigned int i, n = xa->nr - from;

	if (to > from) {
		for (i = n; i-- > 0;)
			xa->r[to + i] = xa->r[from + i];
	} else if (to < from) {
		for (i = 0; i < n; i++)
			xa->r[to + i] = xa->r[from + i];
	}
}

/*
 * Store entry over [first, last], replacing whatever it covers (partially
 * covered ranges keep their uncovered parts); NULL erases.  Returns NULL,
 * or xa_mk_err(-ENOMEM) when the bounded table cannot hold the result, as
 * the kernel returns on allocation failure (the table is then unchanged).
 */
void *xa_store_range(struct xarray *xa, unsigned long first,
		     unsigned long last, void *entry, gfp_t gfp)
{
	struct gmf_xa_range left, right;
	unsigned int lo, hi, keep_left, keep_right, add, nr;

	(void)gfp;
	if (last < first)
		return xa_mk_err(-EINVAL);

	lo = xa_lower(xa, first);
	hi = lo;
	while (hi < xa->nr && xa->r[hi].first <= last)
		hi++;

	keep_left = lo < hi && xa->r[lo].first < first;
	keep_right = lo < hi && xa->r[hi - 1].last > last;
	if (keep_left) {
		left = xa->r[lo];
		left.last = first - 1;
	}
	if (keep_right) {
		right = xa->r[hi - 1];
		right.first = last + 1;
	}
	add = keep_left + !!entry + keep_right;
	nr = xa->nr - (hi - lo) + add;
	if (nr > GMF_XA_MAX)
		return xa_mk_err(-ENOMEM);

	gmf_xa_move(xa, lo + add, hi);
	if (keep_left)
		xa->r[lo++] = left;
	if (entry) {
		xa->r[lo].first = first;
		xa->r[lo].last = last;
		xa->r[lo].entry = entry;
		lo++;
	}
	if (keep_right)
		xa->r[lo] = right;
	xa->nr = nr;
	return NULL;
}

void *xa_erase(struct xarray *xa, unsigned long index)
{
	void *old = xa_load(xa, index);

	if (old)
		xa_store_range(xa, index, index, NULL, GFP_KERNEL);
	return old;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

struct file *fget(unsigned int fd)
{
	unsigned int i;

	for (i = 0; i < gmf_world.nfiles; i++) {
		if (gmf_world.fds[i] == fd)
			return get_file(&gmf_world.files[i]);
	}
	return NULL;
}

void fput(struct file *file)
{
	file->f_count--;
}

/* ------------------------------------------------------------------ */
/* Page cache                                                          */
/* ------------------------------------------------------------------ */

void gmf_mapping_init(struct address_space *mapping)
{
	mapping->invalidate_lock = 0;
	mapping->nrpages = 0;
	mapping->a_ops = NULL;
	INIT_LIST_HEAD(&mapping->i_private_list);
	mapping->i_private_data = NULL;
	INIT_LIST_HEAD(&mapping->gmf_folios);
	mapping->gmf_pfn_base = 0;
	/* Every shim mapping is its inode's i_data. */
	mapping->host = container_of(mapping, struct inode, i_data);
}

bool noop_dirty_folio(struct address_space *mapping, struct folio *folio)
{
	(void)mapping;
	(void)folio;
	return false;
}

/*
 * Shim-private page flag: this entry of the page cache stands for the
 * 2^order order-0 folios a split made of it, not yet written out.  A
 * split makes order-0 folios only of the pages someone is about to use
 * (truncate's hole, a lookup's index); the rest of the split folio stays
 * as a few aligned blocks carrying this flag, which any later use splits
 * the same way.  So a hole of one page in a 2M folio costs a handful of
 * list entries, not 511, and nothing the code under test can see differs:
 * it is only ever given order-0 pieces of a split folio, as split_folio()
 * would have made them.
 */
#define GMF_PG_SPLIT BIT(16)

/* Put the piece of a split folio at index after *prev; it becomes *prev. */
static void gmf_split_piece(struct list_head **prev, struct folio *head,
			    pgoff_t first, pgoff_t index, unsigned int order,
			    struct address_space *mapping, unsigned long flags)
{
	struct folio *f = (struct folio *)folio_page(head, index - first);

	f->mapping = mapping;
	f->index = index;
	f->gmf_order = order;
	f->flags = flags;
	list_add(&f->lru, *prev);
	*prev = &f->lru;
}

/* Pages [from, to) of a split folio starting at first, as GMF_PG_SPLIT
 * blocks: each the largest that is aligned in the folio (so in index and
 * pfn) and fits. */
static void gmf_split_blocks(struct list_head **prev, struct folio *head,
			     pgoff_t first, pgoff_t from, pgoff_t to,
			     struct address_space *mapping, unsigned long flags)
{
	while (from < to) {
		unsigned long off = from - first, n = to - from;
		unsigned int order = 63 - __builtin_clzl(n);

		if (off && (unsigned int)__builtin_ctzl(off) < order)
			order = __builtin_ctzl(off);
		gmf_split_piece(prev, head, first, from, order, mapping,
				flags | GMF_PG_SPLIT);
		from += 1UL << order;
	}
}

/*
 * split_folio() to order 0, in place, as far as pages [lo, hi] (inclusive,
 * inside the folio) go: each of them its own order-0 folio, in order; the
 * pages before and after stay GMF_PG_SPLIT blocks.  Every piece keeps the
 * folio's flags, as the kernel's split copies them to the new folios.
 *
 * For truncate (@truncate), the order-0 folios of [lo, hi] are then
 * removed and freed in index order, as gmf_filemap_remove() would each,
 * and never linked into the list only to be unlinked at once: a hole of
 * 511 pages in a 2M folio costs the 511 frees the kernel makes, not 511
 * insertions and removals besides.
 *
 * Returns where a walk goes on after [lo, hi]: the first piece after it.
 * Inlined at both callers, so each is compiled for its own @truncate (a
 * call made a punch-hole vector 1.5% dearer).
 */
static __always_inline struct list_head *
gmf_split_range(struct folio *folio, pgoff_t lo, pgoff_t hi, bool truncate)
{
	struct address_space *mapping = folio->mapping;
	const struct address_space_operations *a_ops = mapping->a_ops;
	struct list_head *prev = folio->lru.prev, *after;
	pgoff_t first = folio->index, end = first + folio_nr_pages(folio);
	unsigned long flags = folio->flags & ~GMF_PG_SPLIT;
	pgoff_t i;

	list_del(&folio->lru);
	gmf_split_blocks(&prev, folio, first, first, lo, mapping, flags);
	if (truncate)
		mapping->nrpages -= hi - lo + 1;
	for (i = lo; i <= hi; i++) {
		struct folio *f;

		if (!truncate) {
			gmf_split_piece(&prev, folio, first, i, 0, mapping, flags);
			continue;
		}
		f = (struct folio *)folio_page(folio, i - first);
		f->mapping = NULL;
		f->index = i;
		f->gmf_order = 0;
		f->flags = flags;
		if (a_ops && a_ops->free_folio)
			a_ops->free_folio(f);
	}
	after = prev;
	gmf_split_blocks(&prev, folio, first, hi + 1, end, mapping, flags);
	return after->next;
}

int gmf_filemap_add_folio(struct address_space *mapping, pgoff_t index,
			  unsigned int order, unsigned long pfn)
{
	unsigned long nr, last;
	struct folio *folio, *pos;

	if (order > PMD_ORDER)
		return -EINVAL;
	nr = 1UL << order;
	/* A buddy allocation is naturally aligned, and so is its index. */
	if (!IS_ALIGNED(index, nr) || !IS_ALIGNED(pfn, nr) ||
	    pfn >= GMF_MAX_RMP_PFNS || nr > GMF_MAX_RMP_PFNS - pfn)
		return -EINVAL;
	/* Inclusive: index + nr wraps for the file's last possible folio. */
	last = index + (nr - 1);

	/*
	 * The list is sorted: insert before the first folio past ours.  An
	 * adapter adds a page cache in index order, so past the last folio
	 * is looked at first (a walk per folio would cost a page cache of
	 * n folios n^2/2 steps, every vector).
	 */
	pos = list_last_entry(&mapping->gmf_folios, struct folio, lru);
	if (list_entry_is_head(pos, &mapping->gmf_folios, lru) ||
	    pos->index + (folio_nr_pages(pos) - 1) < index) {
		/* Past the last folio: before the head, at the tail. */
		pos = list_entry(&mapping->gmf_folios, struct folio, lru);
	} else {
		list_for_each_entry(pos, &mapping->gmf_folios, lru) {
			if (pos->index + (folio_nr_pages(pos) - 1) < index)
				continue;
			if (pos->index <= last)
				return -EEXIST;
			break;
		}
	}

	folio = (struct folio *)pfn_to_page(pfn);
	folio->mapping = mapping;
	folio->index = index;
	folio->gmf_order = order;
	/* A fresh allocation: not uptodate (not prepared), not poisoned. */
	folio->flags = 0;
	/* Before pos, or at the tail when the walk reached the head. */
	list_add_tail(&folio->lru, &pos->lru);
	mapping->nrpages += nr;
	return 0;
}

struct folio *filemap_grab_folio(struct address_space *mapping, pgoff_t index)
{
	struct folio *folio;
	int r;

	list_for_each_entry(folio, &mapping->gmf_folios, lru) {
		if (index < folio->index)
			break;
		if (index - folio->index < (pgoff_t)folio_nr_pages(folio))
			goto found;
	}
	/* guest_memfd asks for no large folios: order 0, as 6.12 gets. */
	if (mapping->gmf_pfn_base + index < mapping->gmf_pfn_base)
		return ERR_PTR(-ENOMEM);
	r = gmf_filemap_add_folio(mapping, index, 0, mapping->gmf_pfn_base + index);
	if (r)
		return ERR_PTR(-ENOMEM);
	folio = (struct folio *)pfn_to_page(mapping->gmf_pfn_base + index);
found:
	if (folio->flags & GMF_PG_SPLIT) {
		/* A page of a split folio: its own order-0 folio now. */
		struct folio *at = (struct folio *)folio_page(folio,
							       index - folio->index);

		gmf_split_range(folio, index, index, false);
		folio = at;
	}
	folio_lock(folio);
	return folio;
}

struct folio *filemap_lock_folio(struct address_space *mapping, pgoff_t index)
{
	struct folio *folio;

	list_for_each_entry(folio, &mapping->gmf_folios, lru) {
		if (index < folio->index)
			break;
		if (index - folio->index < (pgoff_t)folio_nr_pages(folio)) {
			folio_lock(folio);
			return folio;
		}
	}
	return ERR_PTR(-ENOENT);
}

struct folio *__filemap_get_folio_mpol(struct address_space *mapping,
				       pgoff_t index, unsigned int fgp_flags,
				       gfp_t gfp, struct mempolicy *policy)
{
	(void)gfp;
	(void)policy;
	if (!(fgp_flags & FGP_CREAT))
		return filemap_lock_folio(mapping, index);
	return filemap_grab_folio(mapping, index);
}

/*
 * Whether folio is in its mapping's page cache now (a memmap entry keeps
 * what an earlier vector left in it, so the fields alone do not say).
 */
static bool gmf_folio_cached(struct folio *folio)
{
	struct folio *pos;

	if (!folio->mapping)
		return false;
	list_for_each_entry(pos, &folio->mapping->gmf_folios, lru)
		if (pos == folio)
			return true;
	return false;
}

/*
 * A folio's pfns are aligned to its order, so its head is page's pfn
 * rounded down to that order: try each order, largest first, for a folio
 * in the page cache that holds page.  A page of a GMF_PG_SPLIT block is an
 * order-0 folio of its own (the split made it one), as is a page in no
 * page cache.
 */
struct page *compound_head(struct page *page)
{
	unsigned long pfn = page_to_pfn(page);
	int order;

	for (order = PMD_ORDER; order >= 0; order--) {
		struct folio *f = (struct folio *)pfn_to_page(pfn & ~((1UL << order) - 1));

		if (f->gmf_order == (unsigned int)order && gmf_folio_cached(f))
			return (f->flags & GMF_PG_SPLIT) ? page : &f->page;
	}
	return page;
}

unsigned int compound_order(struct page *page)
{
	struct folio *f = (struct folio *)page;

	if (f->flags & GMF_PG_SPLIT || !gmf_folio_cached(f))
		return 0;
	return f->gmf_order;
}

/* Off the page cache, then to ->free_folio, as filemap_free_folio(). */
static void gmf_filemap_remove(struct address_space *mapping,
			       struct folio *folio)
{
	list_del(&folio->lru);
	folio->mapping = NULL;
	mapping->nrpages -= folio_nr_pages(folio);
	if (mapping->a_ops && mapping->a_ops->free_folio)
		mapping->a_ops->free_folio(folio);
}

/*
 * mm/truncate.c's truncate_inode_pages_range() as guest_memfd sees it:
 *
 * - The pages removed are [start, end): start is lstart rounded up to a
 *   page, end is (lend + 1) >> PAGE_SHIFT, or the end of the file when
 *   lend is -1.  A partial page at either edge would only be zeroed, and
 *   zeroing is invisible here, so it stays.
 * - A folio wholly inside is removed and, if the mapping's a_ops has
 *   ->free_folio, freed through it (once, with its order).
 * - A large folio only partly inside is first split into order-0 folios,
 *   as the kernel does when split_folio() succeeds (the shim never makes
 *   it fail); then its pages inside are removed and freed one by one.
 *   (The pieces outside the hole are made lazily: GMF_PG_SPLIT above.)
 *   A folio with no page inside stays whole (the kernel may split one
 *   that a byte range merely touches: nothing observable).
 * - Frees happen in index order, as the model's truncate
 *   (reference/src/lifecycle.rs).  The kernel frees wholly covered folios
 *   in a first pass and the pieces of split ones in a second, so its
 *   order differs when a large folio straddles the start of a hole that
 *   also covers whole folios: those come before the straddler's pieces.
 *   Which pfns are freed, and in which chunks, is the same.
 */
void truncate_inode_pages_range(struct address_space *mapping, loff_t lstart,
				loff_t lend)
{
	pgoff_t start = ((u64)lstart + PAGE_SIZE - 1) >> PAGE_SHIFT;
	pgoff_t last_in;	/* the hole's last page, inclusive */
	struct list_head *pos = mapping->gmf_folios.next;

	if (lstart < 0)
		return;
	if (lend == -1) {
		last_in = ~0UL;
	} else {
		pgoff_t end = ((u64)lend + 1) >> PAGE_SHIFT;

		if (lend < lstart || end <= start)
			return;
		last_in = end - 1;
	}

	while (pos != &mapping->gmf_folios) {
		struct folio *folio = list_entry(pos, struct folio, lru);
		pgoff_t first = folio->index;
		pgoff_t last = first + (folio_nr_pages(folio) - 1);

		if (first > last_in)
			break;
		if (last < start) {
			pos = pos->next;
			continue;
		}
		if (first < start || last > last_in ||
		    (folio->flags & GMF_PG_SPLIT)) {
			/* Split, and its pages inside the hole freed. */
			pos = gmf_split_range(folio,
					      first < start ? start : first,
					      last > last_in ? last_in : last,
					      true);
			continue;
		}
		pos = pos->next;
		gmf_filemap_remove(mapping, folio);
	}
}

/* ------------------------------------------------------------------ */
/* KVM MMU                                                             */
/* ------------------------------------------------------------------ */

void gmf_mmu_lock(struct kvm *kvm)
{
	if (gmf_rec.lock_depth)
		gmf_rec.lock_misuse = 1;	/* would self-deadlock */
	gmf_rec.lock_depth++;
	kvm->mmu_lock.held++;
}

void gmf_mmu_unlock(struct kvm *kvm)
{
	if (gmf_rec.lock_depth <= 0)
		gmf_rec.lock_misuse = 1;
	gmf_rec.lock_depth--;
	kvm->mmu_lock.held--;
}

void kvm_mmu_invalidate_begin(struct kvm *kvm)
{
	kvm->mmu_invalidate_in_progress++;
	gmf_rec.invalidate_begin++;
	gmf_record(GMF_EV_INVALIDATE_BEGIN, 0, 0, 0, 0, 0);
}

void kvm_mmu_invalidate_end(struct kvm *kvm)
{
	kvm->mmu_invalidate_seq++;
	kvm->mmu_invalidate_in_progress--;
	gmf_rec.invalidate_end++;
	gmf_record(GMF_EV_INVALIDATE_END, 0, 0, 0, 0, 0);
}

void kvm_mmu_invalidate_range_add(struct kvm *kvm, gfn_t start, gfn_t end)
{
	kvm->mmu_invalidate_range_start = start;
	kvm->mmu_invalidate_range_end = end;
	gmf_rec.range_add++;
}

static bool gmf_unmap(struct kvm_gfn_range *range)
{
	struct gmf_gfn_range *r;

	gmf_record(GMF_EV_UNMAP, range->start, range->end, 0, 0, 0);
	if (gmf_rec.nranges >= GMF_MAX_RANGES) {
		gmf_rec.ranges_overflow = 1;
		return true;
	}
	r = &gmf_rec.ranges[gmf_rec.nranges++];
	r->slot = (uint16_t)range->slot->id;
	r->start = range->start;
	r->end = range->end;
#if GMF_PROFILE == 0 && !defined(GMF_GFN_RANGE_NO_ATTR_FILTER)
	r->attr_filter = (uint8_t)range->attr_filter;
#elif GMF_PROFILE == 0
	/*
	 * No filter field (6.8-6.11, gmem v10-v14): the zap reaches private
	 * mappings, which is what upstream's KVM_FILTER_PRIVATE asks; a TDX
	 * tree's only_shared would leave them mapped.
	 */
	r->attr_filter = range->only_shared ? KVM_FILTER_SHARED : KVM_FILTER_PRIVATE;
#else
	r->attr_filter = 0;
#endif
	r->mmu_lock_held = gmf_mmu_lock_held();
	/* Something may have been mapped: the caller must flush. */
	return true;
}

/*
 * Upstream's generic kvm_mmu_unmap_gfn_range() does its own range_add; the
 * recorder counts only explicit kvm_mmu_invalidate_range_add() calls (the
 * 2023 code made them itself).
 */
bool kvm_mmu_unmap_gfn_range(struct kvm *kvm, struct kvm_gfn_range *range)
{
	(void)kvm;
	return gmf_unmap(range);
}

bool kvm_unmap_gfn_range(struct kvm *kvm, struct kvm_gfn_range *range)
{
	(void)kvm;
	return gmf_unmap(range);
}

void kvm_flush_remote_tlbs(struct kvm *kvm)
{
	(void)kvm;
	gmf_rec.flushes++;
}

__gmf_weak
void kvm_zap_gfn_range(struct kvm *kvm, gfn_t gfn_start, gfn_t gfn_end)
{
	(void)kvm;
	gmf_record(GMF_EV_UNMAP, gfn_start, gfn_end, 0, 0, 0);
}

/*
 * The static calls of kvm_x86_ops members: the member the registered
 * table set, or the default of its KVM_X86_OP_OPTIONAL[_RET0] declaration.
 * A gmem_prepare call that reaches a member is recorded (before the call,
 * so the RMP updates it makes follow it), with the lock context and,
 * once it returns, its return value.
 */
int gmf_static_call_kvm_x86_gmem_prepare(struct kvm *kvm, kvm_pfn_t pfn,
					 gfn_t gfn, int max_order)
{
	uint32_t at = gmf_rec.nevents;
	int ret;

	if (!kvm_x86_ops.gmem_prepare)
		return 0;
	gmf_record(GMF_EV_GMEM_PREPARE, pfn, gfn, max_order, 0, 0);
	ret = kvm_x86_ops.gmem_prepare(kvm, pfn, gfn, max_order);
	if (at < GMF_MAX_EVENTS)
		gmf_rec.events[at].ret = ret;
	return ret;
}

void gmf_static_call_kvm_x86_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end)
{
	if (kvm_x86_ops.gmem_invalidate)
		kvm_x86_ops.gmem_invalidate(start, end);
}

int gmf_static_call_kvm_x86_private_max_mapping_level(struct kvm *kvm,
						       kvm_pfn_t pfn)
{
	if (!kvm_x86_ops.private_max_mapping_level)
		return 0;
	return kvm_x86_ops.private_max_mapping_level(kvm, pfn);
}

int gmf_static_call_kvm_x86_gmem_max_level(struct kvm *kvm, kvm_pfn_t pfn,
					   gfn_t gfn, u8 *max_level)
{
	if (!kvm_x86_ops.gmem_max_level)
		return 0;
	return kvm_x86_ops.gmem_max_level(kvm, pfn, gfn, max_level);
}

/*
 * 6.12 x86.c's wrappers of the generic hooks: the vendor op through the
 * registered table (gmem_prepare takes pfn before gfn).  Weak, so a tree's
 * own x86.c wrappers, when review finds them, replace these.
 */
__gmf_weak
int kvm_arch_gmem_prepare(struct kvm *kvm, gfn_t gfn, kvm_pfn_t pfn,
			  int max_order)
{
	return kvm_x86_call(gmem_prepare)(kvm, pfn, gfn, max_order);
}

__gmf_weak
#ifdef GMF_ARCH_INVALIDATE_HAS_KVM
void kvm_arch_gmem_invalidate(struct kvm *kvm, kvm_pfn_t start, kvm_pfn_t end)
#else
void kvm_arch_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end)
#endif
{
#ifdef GMF_ARCH_INVALIDATE_HAS_KVM
	(void)kvm;
#endif
	kvm_x86_call(gmem_invalidate)(start, end);
}

/* ------------------------------------------------------------------ */
/* x86 fault path                                                      */
/* ------------------------------------------------------------------ */

void gmf_trace_page_fault(struct kvm_vcpu *vcpu, u64 addr, u64 error_code)
{
	(void)vcpu;
	(void)addr;
	gmf_rec.trace_seen = 1;
	gmf_rec.trace_err = error_code;
}

__gmf_weak
int x86_emulate_instruction(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
			    int emulation_type, void *insn, int insn_len)
{
	(void)vcpu;
	(void)cr2_or_gpa;
	(void)emulation_type;
	(void)insn;
	(void)insn_len;
	gmf_rec.emulated++;
	return 1;
}

__gmf_weak
void sev_handle_rmp_fault(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code)
{
	(void)vcpu;
	(void)gpa;
	(void)error_code;
}

void handle_rmp_page_fault(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code)
{
	sev_handle_rmp_fault(vcpu, gpa, error_code);
}

/*
 * The largest level the slot allows at gfn: 2M iff its 2M frame fits in
 * the slot and all of it has one memory attribute (a frame with private
 * and shared gfns carries KVM_LPAGE_MIXED_FLAG in 6.12 and maps at 4K).
 */
static u8 gmf_slot_level(struct kvm *kvm, const struct kvm_memory_slot *slot,
			 gfn_t gfn)
{
	gfn_t head = gfn & ~(gfn_t)(PTRS_PER_PMD - 1);
	gfn_t tail = head + PTRS_PER_PMD;
	gfn_t ps = kvm->gmf_private_start, pe = kvm->gmf_private_end;
	bool mixed = ps < pe && !(ps <= head && tail <= pe) &&
		     !(pe <= head || ps >= tail);

	if (slot->gmf_max_level >= PG_LEVEL_2M && !mixed &&
	    head >= slot->base_gfn &&
	    head - slot->base_gfn + PTRS_PER_PMD <= slot->npages)
		return PG_LEVEL_2M;
	return PG_LEVEL_4K;
}

/*
 * The TDP fault handler as far as private memory goes: record what the
 * fault carries, then 6.12 kvm_faultin_pfn()'s decisions —
 *   is_private != the gfn's attribute     -> memory-fault exit, -EFAULT
 *   no memslot: private                   -> memory-fault exit, -EFAULT
 *               shared                    -> RET_PF_EMULATE (MMIO)
 *   private, memslot without guest_memfd  -> memory-fault exit, -EFAULT
 *   otherwise                             -> RET_PF_FIXED (mapped)
 * 6.12 reaches the no-slot private exit through RET_PF_EMULATE and
 * kvm_mmu_do_page_fault(); doing it here gives the same result for code
 * (like 2023's) whose kvm_mmu_do_page_fault() lacks that check.
 */
int kvm_tdp_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault)
{
	struct kvm *kvm = vcpu->kvm;
	int r;

	gmf_rec.fault_seen = 1;
	gmf_rec.fault_private = fault->is_private;
	gmf_rec.fault_err = fault->error_code;
	gmf_rec.fault_gfn = fault->gfn;

	fault->mmu_seq = kvm->mmu_invalidate_seq;
	if (fault->is_private != kvm_mem_is_private(kvm, fault->gfn)) {
		kvm_mmu_prepare_memory_fault_exit(vcpu, fault);
		r = -EFAULT;
	} else if (!fault->slot) {
		if (fault->is_private) {
			kvm_mmu_prepare_memory_fault_exit(vcpu, fault);
			r = -EFAULT;
		} else {
			r = RET_PF_EMULATE;
		}
	} else if (fault->is_private && !kvm_slot_can_be_private(fault->slot)) {
		kvm_mmu_prepare_memory_fault_exit(vcpu, fault);
		r = -EFAULT;
	} else {
		fault->goal_level = min_t(u8, fault->max_level,
					  gmf_slot_level(vcpu->kvm, fault->slot,
							 fault->gfn));
		r = RET_PF_FIXED;
	}
	gmf_rec.fault_ret = r;
	return r;
}

/*
 * 6.12 kvm_tdp_map_page() (static in mmu.c): -EOPNOTSUPP without a TDP
 * MMU, then one prefetch fault, RET_PF_EMULATE -> -ENOENT; the mapping's
 * level goes back through *level.  Signals are the generic loop's business.
 */
__gmf_weak
int kvm_tdp_map_page(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code,
		     u8 *level)
{
	struct kvm_page_fault fault = {
		.addr = gpa,
		.error_code = error_code,
		.prefetch = true,
		.exec = error_code & PFERR_FETCH_MASK,
		.write = error_code & PFERR_WRITE_MASK,
		.present = error_code & PFERR_PRESENT_MASK,
		.rsvd = error_code & PFERR_RSVD_MASK,
		.user = error_code & PFERR_USER_MASK,
		.is_tdp = true,
		.is_private = error_code & PFERR_PRIVATE_ACCESS,
		.max_level = KVM_MAX_HUGEPAGE_LEVEL,
		.req_level = PG_LEVEL_4K,
		.goal_level = PG_LEVEL_4K,
		.pfn = KVM_PFN_ERR_FAULT,
		.hva = KVM_HVA_ERR_BAD,
	};
	int r;

	if (vcpu->arch.mmu->page_fault != kvm_tdp_page_fault)
		return -EOPNOTSUPP;

	fault.gfn = gpa_to_gfn(gpa);
	fault.slot = kvm_vcpu_gfn_to_memslot(vcpu, fault.gfn);
	r = kvm_tdp_page_fault(vcpu, &fault);
	if (r < 0)
		return r;
	if (level)
		*level = fault.goal_level;

	switch (r) {
	case RET_PF_FIXED:
	case RET_PF_SPURIOUS:
	case RET_PF_WRITE_PROTECTED:
		return 0;
	case RET_PF_EMULATE:
		return -ENOENT;
	default:
		WARN_ONCE(1, "could not fix page fault during prefault");
		return -EIO;
	}
}

/* Anything but kvm_tdp_page_fault: the MMU is not TDP (shadow paging). */
int gmf_shadow_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault)
{
	return kvm_tdp_page_fault(vcpu, fault);
}

/* ------------------------------------------------------------------ */
/* SEV-SNP RMP (the hardware model is rmp.h, inline)                  */
/* ------------------------------------------------------------------ */

/*
 * The table all shared again, at the cost of the entries the last vector
 * loaded (dirty[]) or wrote (written[]), never the whole table: the RMP
 * ops run millions of vectors.  Nothing written yet.
 */
void gmf_rmp_clear(void)
{
	struct gmf_rmp_entry *e = gmf_rmp.entries, *pe = gmf_rmp.pristine;
	uint64_t lo = gmf_rmp.dirty_lo, hi = gmf_rmp.dirty_hi;
	uint32_t w;

	rmp_span_add(&lo, &hi, gmf_rmp.written_lo, gmf_rmp.written_hi);
	/* Only the words that can have a bit set: the two spans'. */
	for (w = lo / 64; lo < hi && w < (hi + 63) / 64; w++) {
		uint64_t d = gmf_rmp.dirty[w] | gmf_rmp.written[w];

		if (d == ~0ULL) {
			__builtin_memset(&e[w * 64], 0, 64 * sizeof(*e));
			__builtin_memset(&pe[w * 64], 0, 64 * sizeof(*pe));
		} else {
			for (; d; d &= d - 1) {
				uint32_t p = w * 64 + __builtin_ctzll(d);

				e[p] = (struct gmf_rmp_entry){ 0 };
				pe[p] = (struct gmf_rmp_entry){ 0 };
			}
		}
		gmf_rmp.dirty[w] = 0;
		gmf_rmp.written[w] = 0;
	}
	gmf_rmp.dirty_lo = GMF_MAX_RMP_PFNS;
	gmf_rmp.dirty_hi = 0;
	gmf_rmp.written_lo = GMF_MAX_RMP_PFNS;
	gmf_rmp.written_hi = 0;
	gmf_rmp.loaded_nruns = ~0U;
}

/*
 * Whether the table was last loaded from st (and not cleared since).
 * Field by field: the caller writes each run as a value, and the bytes
 * of its padding are whatever they were, so a memcmp() could call two
 * equal states different.
 */
static bool gmf_rmp_loaded_from(const struct gmf_rmp_state *st)
{
	uint32_t i;

	if (gmf_rmp.loaded_nruns != st->nruns ||
	    gmf_rmp.snp_enabled != st->snp_enabled ||
	    gmf_rmp.max_pfn != st->max_pfn)
		return false;
	for (i = 0; i < st->nruns; i++) {
		const struct gmf_rmp_run *a = &gmf_rmp.loaded[i], *b = &st->runs[i];

		if (a->pfn != b->pfn || a->npages != b->npages ||
		    a->gpa != b->gpa || a->asid != b->asid ||
		    a->pagesize != b->pagesize ||
		    a->immutable != b->immutable ||
		    a->validated != b->validated)
			return false;
	}
	return true;
}

/*
 * The entries written since the load back as loaded, nothing written:
 * the table holds the state it was loaded from again.
 */
static void gmf_rmp_restore(void)
{
	uint64_t lo = gmf_rmp.written_lo, hi = gmf_rmp.written_hi;
	uint32_t w;

	for (w = lo / 64; lo < hi && w < (hi + 63) / 64; w++) {
		uint64_t d = gmf_rmp.written[w];

		if (d == ~0ULL) {
			__builtin_memcpy(&gmf_rmp.entries[w * 64],
					 &gmf_rmp.pristine[w * 64],
					 64 * sizeof(gmf_rmp.entries[0]));
		} else {
			for (; d; d &= d - 1) {
				uint32_t p = w * 64 + __builtin_ctzll(d);

				gmf_rmp.entries[p] = gmf_rmp.pristine[p];
			}
		}
		gmf_rmp.written[w] = 0;
	}
	gmf_rmp.written_lo = GMF_MAX_RMP_PFNS;
	gmf_rmp.written_hi = 0;
}

/*
 * Costs the entries the state describes plus the ones the last vector
 * left; when the last vector ran on the same state, only the entries it
 * wrote.
 */
int gmf_rmp_load(const struct gmf_rmp_state *st)
{
	struct gmf_rmp_entry *e = gmf_rmp.entries;
	uint32_t i;
	uint64_t k;

	if (st->max_pfn > GMF_MAX_RMP_PFNS || st->nruns > GMF_MAX_RMP_RUNS)
		return -1;
	if (gmf_rmp_loaded_from(st)) {
		gmf_rmp_restore();
		return 0;
	}
	gmf_rmp_clear();
	gmf_rmp.snp_enabled = st->snp_enabled;
	gmf_rmp.max_pfn = st->max_pfn;
	for (i = 0; i < st->nruns; i++) {
		const struct gmf_rmp_run *r = &st->runs[i];

		if (r->pfn >= GMF_MAX_RMP_PFNS || !r->npages ||
		    r->npages > GMF_MAX_RMP_PFNS - r->pfn)
			return -1;
		rmp_dirty(r->pfn, r->pfn + r->npages);
		for (k = 0; k < r->npages; k++) {
			e[r->pfn + k] = (struct gmf_rmp_entry){
				.assigned = 1,
				.pagesize = r->pagesize && !k,
				.immutable = r->immutable,
				.validated = r->validated,
				.asid = r->asid,
				.gpa = r->gpa + (k << PAGE_SHIFT),
			};
			gmf_rmp.pristine[r->pfn + k] = e[r->pfn + k];
		}
	}
	__builtin_memcpy(gmf_rmp.loaded, st->runs, st->nruns * sizeof(st->runs[0]));
	gmf_rmp.loaded_nruns = st->nruns;
	return 0;
}

/* The written entries (bitmap, span and values) to out. */
void gmf_rmp_store(struct gmf_rmp_out *out)
{
	uint64_t lo = gmf_rmp.written_lo, hi = gmf_rmp.written_hi;
	uint32_t w;

	if (lo >= hi)
		lo = hi = 0;
	out->rmp_lo = lo;
	out->rmp_hi = hi;
	__builtin_memset(out->written, 0, sizeof(out->written));
	for (w = lo / 64; w < (hi + 63) / 64; w++) {
		uint64_t d = gmf_rmp.written[w];

		out->written[w] = d;
		if (d == ~0ULL) {
			__builtin_memcpy(&out->entries[w * 64],
					 &gmf_rmp.entries[w * 64],
					 64 * sizeof(out->entries[0]));
		} else {
			for (; d; d &= d - 1) {
				uint32_t p = w * 64 + __builtin_ctzll(d);

				out->entries[p] = gmf_rmp.entries[p];
			}
		}
	}
}
