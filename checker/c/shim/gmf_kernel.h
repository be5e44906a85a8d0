/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gmemforge kernel-API shim: just enough of the kernel for guest_memfd,
 * x86 MMU fault and SEV-SNP RMP functions to compile unchanged in
 * userspace (gcc -std=gnu11), and to report what they did.
 *
 * Nothing here is kernel code: every definition is written for the shim,
 * with the kernel's names, types and observable behaviour.  Functions the
 * code under test calls are either inline below or live in shim.c, which
 * records each call (recorder, see struct gmf_recorder) so an adapter can
 * hand the record back through the harness ABI (../harness.h).
 *
 * Compile-time profile, as the tree the C was written for:
 *   GMF_PROFILE=0  upstream (Linux 6.12 shapes)
 *   GMF_PROFILE=1  the 2023 kvm_gmem_solo branch shapes
 * The differences are in struct layouts (slot->gmem.pgoff vs .index stay
 * both available; kvm_gfn_range has attr_filter upstream, pte in 2023;
 * kvm_page_fault.error_code is u64 upstream, u32 in 2023) and in a few
 * hooks.
 *
 * kvm_arch_gmem_invalidate() is the upstream (start, end) hook in both
 * profiles: the series gives 2023 trees that hook.  A review of a 2023
 * tree that still has the RFC's (kvm, start, end) form passes
 * -DGMF_ARCH_INVALIDATE_HAS_KVM.
 */
#ifndef GMF_KERNEL_H
#define GMF_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "../harness.h"

#ifndef GMF_PROFILE
#error "compile with -DGMF_PROFILE=0 (upstream) or -DGMF_PROFILE=1 (2023)"
#endif

/*
 * How the tree calls its guest_memfd functions, which review reads from
 * each tree's own signatures (a tree may mix generations); builtin units
 * take their profile's:
 *   GMF_GMEM_INVALIDATE_TAKES_KVM  kvm_gmem_invalidate_begin(kvm, gmem, ...)
 *                                  (2023) rather than (gmem, ...) (v10+)
 *   GMF_PUNCH_HOLE_TAKES_FILE      kvm_gmem_punch_hole(file, ...) (2023)
 *                                  rather than (inode, ...) (v10+)
 */
#ifndef GMF_GMEM_INVALIDATE_TAKES_KVM
#define GMF_GMEM_INVALIDATE_TAKES_KVM (GMF_PROFILE == 1)
#endif
#ifndef GMF_PUNCH_HOLE_TAKES_FILE
#define GMF_PUNCH_HOLE_TAKES_FILE (GMF_PROFILE == 1)
#endif

/* ------------------------------------------------------------------ */
/* Compiler and integer basics                                         */
/* ------------------------------------------------------------------ */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;
typedef s32 __s32;
typedef s64 __s64;

typedef _Bool bool;
enum { false = 0, true = 1 };

/* x86-64 kernel: loff_t is long long, pgoff_t unsigned long. */
typedef long long loff_t;
/* Mainline (7.2) spells guest_memfd's unsigned offsets and sizes uoff_t. */
typedef u64 uoff_t;
typedef unsigned long pgoff_t;
typedef u64 gfn_t;
typedef u64 gpa_t;
typedef u64 hpa_t;
typedef u64 kvm_pfn_t;
typedef unsigned long hva_t;
typedef unsigned int gfp_t;
typedef unsigned int xa_mark_t;

/* glibc's <sys/cdefs.h> (via <stdint.h>) may have defined some already. */
#undef __always_inline
#undef __maybe_unused
#undef __must_check
#define __always_inline inline __attribute__((__always_inline__))

/*
 * Zero a small object with plain 16-byte stores: gcc turns a memset of a
 * hundred-odd bytes into "rep stos", whose start-up cost dominated the
 * invalidate vector and a quarter of the punch-hole adapter's own time.
 * The zero goes through an empty asm so gcc cannot see a memset pattern.
 * The shim's and the adapters' helper, never the unit's.
 */
typedef long long gmf_v2 __attribute__((vector_size(16), may_alias, aligned(8)));

static __always_inline void gmf_zero(void *p, size_t bytes)
{
	gmf_v2 *v = p, z = { 0, 0 };
	size_t i;

	__asm__("" : "+x"(z));
	for (i = 0; i < bytes / sizeof(*v); i++)
		v[i] = z;
	for (i = bytes & ~(sizeof(*v) - 1); i < bytes; i++)
		((char *)p)[i] = 0;
}

#define noinline __attribute__((__noinline__))
#define __maybe_unused __attribute__((__unused__))
#define __must_check __attribute__((__warn_unused_result__))
#define __force
#define __rcu
#define __user
#define __init
#define __exit
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define __GMF_PASTE2(a, b) a##b
#define __GMF_PASTE(a, b) __GMF_PASTE2(a, b)
#define __GMF_UNIQUE(p) __GMF_PASTE(__gmf_##p, __COUNTER__)

#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, val) do { *(volatile typeof(x) *)&(x) = (val); } while (0)
#define barrier() __asm__ __volatile__("" ::: "memory")
#define smp_rmb() barrier()
#define smp_wmb() barrier()
#define smp_mb() barrier()

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* IS_ENABLED(CONFIG_FOO): 1 iff CONFIG_FOO is defined to 1. */
#define __GMF_ARG_PLACEHOLDER_1 0,
#define __gmf_second(ignored, val, ...) val
#define __gmf_defined3(junk) __gmf_second(junk 1, 0, 0)
#define __gmf_defined2(val) __gmf_defined3(__GMF_ARG_PLACEHOLDER_##val)
#define IS_ENABLED(option) __gmf_defined2(option)

#define CONFIG_KVM_PRIVATE_MEM 1
#define CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES 1
#define CONFIG_KVM_SW_PROTECTED_VM 1
#define CONFIG_MITIGATION_RETPOLINE 1
#define CONFIG_RETPOLINE 1
#define CONFIG_HAVE_KVM_ARCH_GMEM_PREPARE 1
#define CONFIG_HAVE_KVM_ARCH_GMEM_INVALIDATE 1
/* The same hooks under their 2023 names (SNP host trees on gmem v12-v13). */
#define CONFIG_HAVE_KVM_GMEM_PREPARE 1
#define CONFIG_HAVE_KVM_GMEM_INVALIDATE 1

#define BIT(nr) (1UL << (nr))
#define BIT_ULL(nr) (1ULL << (nr))
#define GENMASK_ULL(h, l) ((~0ULL << (l)) & (~0ULL >> (63 - (h))))
#define lower_32_bits(n) ((u32)((n) & 0xffffffff))
#define upper_32_bits(n) ((u32)(((n) >> 16) >> 16))

#define __GMF_ALIGN_MASK(x, mask) (((x) + (mask)) & ~(mask))
#define ALIGN(x, a) __GMF_ALIGN_MASK(x, (typeof(x))(a) - 1)
#define ALIGN_DOWN(x, a) ((x) & ~((typeof(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((typeof(x))(a) - 1)) == 0)

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define PAGE_ALIGNED(addr) IS_ALIGNED((unsigned long)(addr), PAGE_SIZE)
#define PMD_SHIFT 21
#define PMD_SIZE (1UL << PMD_SHIFT)
#define PMD_MASK (~(PMD_SIZE - 1))
#define PTRS_PER_PMD 512
#define PFN_PMD_MASK (~((1ULL << (PMD_SHIFT - PAGE_SHIFT)) - 1))
#define HPAGE_PMD_ORDER (PMD_SHIFT - PAGE_SHIFT)
#define PMD_ORDER (PMD_SHIFT - PAGE_SHIFT)
#define HPAGE_PMD_SIZE PMD_SIZE

static inline gpa_t gfn_to_gpa(gfn_t gfn)
{
	return (gpa_t)gfn << PAGE_SHIFT;
}

static inline gfn_t gpa_to_gfn(gpa_t gpa)
{
	return (gfn_t)(gpa >> PAGE_SHIFT);
}

enum pg_level {
	PG_LEVEL_NONE,
	PG_LEVEL_4K,
	PG_LEVEL_2M,
	PG_LEVEL_1G,
	PG_LEVEL_512G,
	PG_LEVEL_NUM
};

#define KVM_MAX_HUGEPAGE_LEVEL PG_LEVEL_1G
#define KVM_HPAGE_GFN_SHIFT(x) (((x) - 1) * 9)
#define KVM_HPAGE_SHIFT(x) (PAGE_SHIFT + KVM_HPAGE_GFN_SHIFT(x))
#define KVM_HPAGE_SIZE(x) (1UL << KVM_HPAGE_SHIFT(x))
#define KVM_HPAGE_MASK(x) (~(KVM_HPAGE_SIZE(x) - 1))
#define KVM_PAGES_PER_HPAGE(x) (KVM_HPAGE_SIZE(x) / PAGE_SIZE)

/*
 * min()/max(): both operands must have the same type (qualifiers aside),
 * the rule of the kernel's (void)(&_x == &_y) check.  A static assertion
 * makes it an error on every gcc: -Wcompare-distinct-pointer-types only
 * exists from gcc 14 on, before that the pointer comparison is a warning
 * without an option of its own.
 */
#define __gmf_cmp(op, x, y, a, b) ({				\
	typeof(x) a = (x);					\
	typeof(y) b = (y);					\
	_Static_assert(__builtin_types_compatible_p(typeof(a), typeof(b)), \
		       "min()/max() of distinct types: " #x ", " #y); \
	a op b ? a : b; })
#define min(x, y) __gmf_cmp(<, x, y, __GMF_UNIQUE(a), __GMF_UNIQUE(b))
#define max(x, y) __gmf_cmp(>, x, y, __GMF_UNIQUE(a), __GMF_UNIQUE(b))
#define __gmf_cmp_t(op, t, x, y, a, b) ({			\
	t a = (x);						\
	t b = (y);						\
	a op b ? a : b; })
#define min_t(t, x, y) __gmf_cmp_t(<, t, x, y, __GMF_UNIQUE(a), __GMF_UNIQUE(b))
#define max_t(t, x, y) __gmf_cmp_t(>, t, x, y, __GMF_UNIQUE(a), __GMF_UNIQUE(b))

#define BUILD_BUG_ON(cond) \
	do { _Static_assert(!(cond), "BUILD_BUG_ON(" #cond ")"); } while (0)

#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)

/* ------------------------------------------------------------------ */
/* Errors, printing, WARN                                              */
/* ------------------------------------------------------------------ */

#define EPERM 1
#define ENOENT 2
#define EINTR 4
#define EIO 5
#define E2BIG 7
#define EBADF 9
#define EAGAIN 11
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOSPC 28
#define ERANGE 34
#define ENOSYS 38
#define EOPNOTSUPP 95
#define EHWPOISON 133
#define MAX_ERRNO 4095

#define IS_ERR_VALUE(x) unlikely((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)

static inline void *ERR_PTR(long error)
{
	return (void *)error;
}

static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

static inline bool IS_ERR_OR_NULL(const void *ptr)
{
	return !ptr || IS_ERR(ptr);
}

/* printk and friends are format-checked and print nothing. */
static inline __attribute__((format(printf, 1, 2)))
void gmf_printk(const char *fmt, ...)
{
	(void)fmt;
}

#define printk(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_warn_once(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_err_once(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_info_ratelimited(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_warn_ratelimited(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_err_ratelimited(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define pr_debug_ratelimited(fmt, ...) gmf_printk(fmt, ##__VA_ARGS__)
#define dump_stack() do { } while (0)

/*
 * WARNs never stop anything; each one that fires is counted.  The *_ONCE
 * variants count every firing too: the recorder is reset per vector, and
 * the model counts firings, not first firings.
 */
void gmf_warn(void);

#define WARN_ON(cond) ({					\
	bool __gmf_w = !!(cond);				\
	if (unlikely(__gmf_w))					\
		gmf_warn();					\
	unlikely(__gmf_w); })
#define WARN_ON_ONCE(cond) WARN_ON(cond)
#define WARN(cond, fmt, ...) ({					\
	bool __gmf_w = !!(cond);				\
	if (unlikely(__gmf_w)) {				\
		gmf_warn();					\
		gmf_printk(fmt, ##__VA_ARGS__);			\
	}							\
	unlikely(__gmf_w); })
#define WARN_ONCE(cond, fmt, ...) WARN(cond, fmt, ##__VA_ARGS__)
/* BUG() is the kernel's ud2: an oops. Here it traps (SIGILL), and the
 * checker reports the crash with the vector that caused it. */
#define BUG() __builtin_trap()
#define BUG_ON(cond) do { if (unlikely(cond)) BUG(); } while (0)
#define KVM_BUG_ON(cond, kvm) ({				\
	bool __gmf_b = WARN_ON(cond);				\
	if (__gmf_b)						\
		(kvm)->vm_bugged = true;			\
	__gmf_b; })
#define lockdep_assert_held(l) do { } while (0)
#define lockdep_assert_held_write(l) do { } while (0)

/* ------------------------------------------------------------------ */
/* Scheduling, signals, RCU, SRCU                                      */
/* ------------------------------------------------------------------ */

struct task_struct {
	int pid;
};

extern struct task_struct gmf_current_task;
#define current (&gmf_current_task)

bool gmf_signal_pending(struct task_struct *p);
#define signal_pending(p) gmf_signal_pending(p)
#define fatal_signal_pending(p) false

static inline void cond_resched(void) { }
static inline void might_sleep(void) { }

struct srcu_struct {
	int depth;
};

static inline int srcu_read_lock(struct srcu_struct *s)
{
	return s->depth++;
}

static inline void srcu_read_unlock(struct srcu_struct *s, int idx)
{
	(void)idx;
	s->depth--;
}

#define rcu_read_lock() do { } while (0)
#define rcu_read_unlock() do { } while (0)
#define synchronize_rcu() do { } while (0)
#define rcu_dereference(p) READ_ONCE(p)
#define rcu_dereference_protected(p, c) (p)
#define rcu_assign_pointer(p, v) WRITE_ONCE(p, v)
#define RCU_INIT_POINTER(p, v) do { (p) = (v); } while (0)

struct mutex {
	int locked;
};

#define mutex_lock(m) do { (m)->locked++; } while (0)
#define mutex_unlock(m) do { (m)->locked--; } while (0)

struct list_head {
	struct list_head *next, *prev;
};

static inline void INIT_LIST_HEAD(struct list_head *l)
{
	l->next = l;
	l->prev = l;
}

static inline bool list_empty(const struct list_head *head)
{
	return READ_ONCE(head->next) == head;
}

static inline void __list_add(struct list_head *new, struct list_head *prev,
			      struct list_head *next)
{
	next->prev = new;
	new->next = next;
	new->prev = prev;
	WRITE_ONCE(prev->next, new);
}

/* After head (a stack); list_add_tail(): before head (a queue). */
static inline void list_add(struct list_head *new, struct list_head *head)
{
	__list_add(new, head, head->next);
}

static inline void list_add_tail(struct list_head *new, struct list_head *head)
{
	__list_add(new, head->prev, head);
}

/* The kernel poisons a deleted entry; NULL makes any later use crash too. */
static inline void list_del(struct list_head *entry)
{
	entry->next->prev = entry->prev;
	WRITE_ONCE(entry->prev->next, entry->next);
	entry->next = NULL;
	entry->prev = NULL;
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) \
	list_entry((ptr)->next, type, member)
#define list_last_entry(ptr, type, member) \
	list_entry((ptr)->prev, type, member)
#define list_next_entry(pos, member) \
	list_entry((pos)->member.next, typeof(*(pos)), member)
#define list_entry_is_head(pos, head, member) (&(pos)->member == (head))
#define list_for_each(pos, head) \
	for (pos = (head)->next; pos != (head); pos = pos->next)
#define list_for_each_entry(pos, head, member)				\
	for (pos = list_first_entry(head, typeof(*pos), member);	\
	     !list_entry_is_head(pos, head, member);			\
	     pos = list_next_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member)			\
	for (pos = list_first_entry(head, typeof(*pos), member),	\
	     n = list_next_entry(pos, member);				\
	     !list_entry_is_head(pos, head, member);			\
	     pos = n, n = list_next_entry(n, member))

/* ------------------------------------------------------------------ */
/* xarray: sorted, bounded ranges [first, last] -> entry               */
/* ------------------------------------------------------------------ */

/*
 * A multi-index store is one range here, so a walk visits it once (the
 * kernel's xarray may split a store at 64-index node boundaries and visit
 * the same entry once per piece; unmapping a range twice is idempotent,
 * so the difference is invisible to what gmemforge checks).
 */
#define GMF_XA_MAX 32

struct gmf_xa_range {
	unsigned long first;
	unsigned long last;
	void *entry;
};

struct xarray {
	unsigned int nr;
	struct gmf_xa_range r[GMF_XA_MAX];
};

#define XA_PRESENT ((xa_mark_t)8U)
#define GFP_KERNEL ((gfp_t)0)
#define GFP_KERNEL_ACCOUNT ((gfp_t)0)

static inline void xa_init(struct xarray *xa)
{
	xa->nr = 0;
}

#define xa_init_flags(xa, flags) xa_init(xa)
#define xa_destroy(xa) xa_init(xa)

static inline bool xa_empty(const struct xarray *xa)
{
	return xa->nr == 0;
}

/* Errors travel as internal entries: (errno << 2) | 2, as the kernel's. */
static inline void *xa_mk_err(long err)
{
	return (void *)(((unsigned long)err << 2) | 2UL);
}

static inline bool xa_is_err(const void *entry)
{
	return ((unsigned long)entry & 3) == 2 && (long)entry < 0;
}

static inline int xa_err(void *entry)
{
	return xa_is_err(entry) ? (int)((long)entry >> 2) : 0;
}

void *xa_load(struct xarray *xa, unsigned long index);
void *xa_find(struct xarray *xa, unsigned long *indexp, unsigned long max,
	      xa_mark_t filter);
void *xa_find_after(struct xarray *xa, unsigned long *indexp,
		    unsigned long max, xa_mark_t filter);
void *xa_store_range(struct xarray *xa, unsigned long first,
		     unsigned long last, void *entry, gfp_t gfp);
void *xa_erase(struct xarray *xa, unsigned long index);

#define xa_for_each_range(xa, index, entry, start, last)		\
	for (index = (start),						\
	     entry = xa_find(xa, &index, last, XA_PRESENT);		\
	     entry;							\
	     entry = xa_find_after(xa, &index, last, XA_PRESENT))
#define xa_for_each(xa, index, entry) \
	xa_for_each_range(xa, index, entry, 0, ~0UL)

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/*
 * Memory: struct page is an entry of the shim's memmap, one per pfn the
 * RMP table models, so page_to_pfn() is an index as with the kernel's
 * vmemmap.  A folio is its head page seen as a folio (the kernel overlays
 * them the same way), so folio_page(folio, n) is the head's n-th
 * successor.  Only a head page carries folio state; tail pages are never
 * read, and splitting a folio writes the state into each page it frees.
 */
struct address_space;

struct page {
	struct list_head lru;
	struct address_space *mapping;
	pgoff_t index;
	unsigned int gmf_order;
	unsigned long flags;
};

struct folio {
	union {
		struct {
			struct list_head lru;	/* shim: the page cache list */
			struct address_space *mapping;
			pgoff_t index;
			unsigned int gmf_order;
			unsigned long flags;	/* PG_* below */
		};
		struct page page;
	};
};

_Static_assert(sizeof(struct folio) == sizeof(struct page),
	       "a folio is its head page");

extern struct page gmf_memmap[GMF_MAX_RMP_PFNS];

static inline unsigned long page_to_pfn(const struct page *page)
{
	return (unsigned long)(page - gmf_memmap);
}

/* pfn < GMF_MAX_RMP_PFNS: the memmap covers nothing else. */
static inline struct page *pfn_to_page(unsigned long pfn)
{
	return &gmf_memmap[pfn];
}

static inline struct page *folio_page(struct folio *folio, unsigned long n)
{
	return &folio->page + n;
}

static inline unsigned int folio_order(const struct folio *folio)
{
	return folio->gmf_order;
}

static inline bool folio_test_large(const struct folio *folio)
{
	return folio->gmf_order > 0;
}

static inline long folio_nr_pages(const struct folio *folio)
{
	return 1L << folio->gmf_order;
}

static inline size_t folio_size(const struct folio *folio)
{
	return PAGE_SIZE << folio->gmf_order;
}

static inline unsigned long folio_pfn(const struct folio *folio)
{
	return page_to_pfn(&folio->page);
}

static inline loff_t folio_pos(const struct folio *folio)
{
	return (loff_t)folio->index << PAGE_SHIFT;
}

static inline pgoff_t folio_next_index(const struct folio *folio)
{
	return folio->index + folio_nr_pages(folio);
}

/* The page of folio at file index (which the folio must contain). */
static inline struct page *folio_file_page(struct folio *folio, pgoff_t index)
{
	return folio_page(folio, index & (folio_nr_pages(folio) - 1));
}

/*
 * The head page of page's folio, and a head's order (0 for any other
 * page), as the 2023 trees read a folio's order back from a page
 * (compound_order(compound_head(page)), thp_order()).  Tail pages hold no
 * state here, so shim.c finds the head among the page cache's folios.
 */
struct page *compound_head(struct page *page);
unsigned int compound_order(struct page *page);
#define thp_order(page) compound_order(page)
#define thp_nr_pages(page) (1L << compound_order(page))

/* Page flags the guest_memfd code reads (a head page's, per folio). */
#define PG_uptodate 0
#define PG_hwpoison 1
#define PG_locked 2

static inline bool folio_test_uptodate(const struct folio *folio)
{
	return folio->flags & BIT(PG_uptodate);
}

static inline void folio_mark_uptodate(struct folio *folio)
{
	folio->flags |= BIT(PG_uptodate);
}

static inline bool folio_test_hwpoison(const struct folio *folio)
{
	return folio->flags & BIT(PG_hwpoison);
}

/* A folio's lock: uncontended here, so only whether it is held. */
static inline void folio_lock(struct folio *folio)
{
	folio->flags |= BIT(PG_locked);
}

static inline void folio_unlock(struct folio *folio)
{
	folio->flags &= ~BIT(PG_locked);
}

static inline bool folio_test_locked(const struct folio *folio)
{
	return folio->flags & BIT(PG_locked);
}

/*
 * Every other page flag a tree may test or set, by one rule as the kernel
 * generates them (FOLIO_FLAG()): kept per folio like the three above, read
 * by no harness, so guest_memfd code that touches one (folio_mark_dirty()
 * after clearing a page, folio_set_referenced()) compiles and behaves.
 */
#define GMF_FOLIO_FLAG(name, bit)						\
static inline bool folio_test_##name(const struct folio *folio)		\
{									\
	return folio->flags & BIT(bit);					\
}									\
static inline void folio_set_##name(struct folio *folio)		\
{									\
	folio->flags |= BIT(bit);					\
}									\
static inline void folio_clear_##name(struct folio *folio)		\
{									\
	folio->flags &= ~BIT(bit);					\
}
GMF_FOLIO_FLAG(dirty, 3)
GMF_FOLIO_FLAG(referenced, 4)
GMF_FOLIO_FLAG(private, 5)
GMF_FOLIO_FLAG(active, 6)
GMF_FOLIO_FLAG(workingset, 7)
GMF_FOLIO_FLAG(reclaim, 8)
GMF_FOLIO_FLAG(unevictable, 9)
GMF_FOLIO_FLAG(swapbacked, 10)
GMF_FOLIO_FLAG(writeback, 11)
GMF_FOLIO_FLAG(mlocked, 12)

/* True when the folio was clean: as the kernel's. */
static inline bool folio_mark_dirty(struct folio *folio)
{
	bool was = folio_test_dirty(folio);

	folio_set_dirty(folio);
	return !was;
}

/* References are not modelled: the page cache keeps every folio. */
static inline void folio_get(struct folio *folio) { (void)folio; }
static inline void folio_put(struct folio *folio) { (void)folio; }
static inline void folio_mark_accessed(struct folio *folio) { (void)folio; }
static inline void clear_highpage(struct page *page) { (void)page; }

/* mm/migrate_mode.h and the memory-failure result guest_memfd returns. */
enum migrate_mode {
	MIGRATE_ASYNC,
	MIGRATE_SYNC_LIGHT,
	MIGRATE_SYNC,
};

#define MF_DELAYED 2

/*
 * The members guest_memfd's kvm_gmem_aops sets, in both generations, so a
 * tree's table compiles as it is; the page cache calls ->free_folio only
 * (the others are reached by migration and memory failure, not modelled).
 */
struct address_space_operations {
	bool (*dirty_folio)(struct address_space *mapping, struct folio *folio);
	int (*migrate_folio)(struct address_space *mapping, struct folio *dst,
			     struct folio *src, enum migrate_mode mode);
	int (*error_remove_folio)(struct address_space *mapping,
				  struct folio *folio);
	int (*error_remove_page)(struct address_space *mapping,
				 struct page *page);
	/* Called once a folio has left the page cache, unlocked. */
	void (*free_folio)(struct folio *folio);
};

bool noop_dirty_folio(struct address_space *mapping, struct folio *folio);

struct address_space {
	int invalidate_lock;	/* > 0 exclusive holders, < 0 shared */
	unsigned long nrpages;
	const struct address_space_operations *a_ops;
	/* 6.8 renamed both; 2023 code has the old names. */
	union {
		struct list_head i_private_list;
		struct list_head private_list;
	};
	union {
		void *i_private_data;
		void *private_data;
	};
	/* The inode it belongs to (6.18's kvm_gmem_error_folio() reads it). */
	struct inode *host;
	/* shim: the page cache, folios in index order (the kernel's i_pages) */
	struct list_head gmf_folios;
	/* shim: where filemap_grab_folio() allocates: page i at pfn base + i */
	unsigned long gmf_pfn_base;
};

struct inode {
	loff_t i_size;
	struct address_space *i_mapping;
	struct address_space i_data;
	void *i_private;
};

struct file_operations {
	int owner;
};

/*
 * 6.18+: a NUMA shared policy per guest_memfd inode.  The shim has one node:
 * a lookup finds no policy, and allocation ignores it.
 */
struct mempolicy;
struct shared_policy {
	int gmf_unused;
};

static inline struct mempolicy *
mpol_shared_policy_lookup(struct shared_policy *sp, pgoff_t idx)
{
	(void)sp;
	(void)idx;
	return NULL;
}

static inline void mpol_cond_put(struct mempolicy *pol) { (void)pol; }

/*
 * 6.18+ embeds the VFS inode in struct gmem_inode (guest_memfd.c) and
 * reaches it with GMEM_I() = container_of(); every inode the shim hands
 * out lives in one, so the tree's accessor finds its flags.  The per-VM
 * files stay on i_mapping->i_private_list (kvm_gmem_for_each_file()
 * below), whichever spelling the tree uses.
 */
struct maple_tree {
	int gmf_unused;
};

struct gmem_inode {
	struct shared_policy policy;
	struct inode vfs_inode;
	u64 flags;
	/* In-place conversion series (2026): per-index memory attributes. */
	struct maple_tree attributes;
};

/* The tree's accessor is a file-scope inline over its own struct: ours. */
static __always_inline struct gmem_inode *GMEM_I(struct inode *inode)
{
	return container_of(inode, struct gmem_inode, vfs_inode);
}

/* KVM_CREATE_GUEST_MEMFD flags (uapi, 6.18+). */
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)

/* xarray value entries: an integer stored where a pointer would be. */
static inline void *xa_mk_value(unsigned long v)
{
	return (void *)((v << 1) | 1);
}

static inline unsigned long xa_to_value(const void *entry)
{
	return (unsigned long)entry >> 1;
}

/*
 * The in-place conversion series (2026) keeps each index's memory
 * attributes in a maple tree on the inode, every index stored when the
 * inode is set up: private unless GUEST_MEMFD_FLAG_INIT_SHARED. No
 * harness operation converts, so a lookup answers that default.
 */
static inline void *mtree_load(struct maple_tree *mt, unsigned long index)
{
	struct gmem_inode *gi = container_of(mt, struct gmem_inode, attributes);

	(void)index;
	return xa_mk_value(gi->flags & GUEST_MEMFD_FLAG_INIT_SHARED ?
			   0 : (1ULL << 3) /* KVM_MEMORY_ATTRIBUTE_PRIVATE */);
}

/*
 * The series' switch (a module parameter there): off, so a tree is
 * reviewed with guest_memfd backing private memory only, as before it.
 */
static const bool gmem_in_place_conversion = false;

struct file {
	const struct file_operations *f_op;
	void *private_data;
	struct inode *f_inode;
	struct address_space *f_mapping;
	long f_count;
};

extern struct file_operations kvm_gmem_fops;

static inline struct inode *file_inode(const struct file *f)
{
	return f->f_inode;
}

static inline loff_t i_size_read(const struct inode *inode)
{
	return inode->i_size;
}

struct file *fget(unsigned int fd);
void fput(struct file *file);

static inline struct file *get_file(struct file *f)
{
	f->f_count++;
	return f;
}

/* A reference to *f unless it is NULL or its last reference is gone. */
static inline struct file *get_file_active(struct file **f)
{
	struct file *file = READ_ONCE(*f);

	if (!file || file->f_count <= 0)
		return NULL;
	return get_file(file);
}

/*
 * 6.6-era get_file_rcu() (the gmem series v10-v14 use it): a reference
 * unless the last one is gone.
 */
static inline bool get_file_rcu(struct file *f)
{
	if (f->f_count <= 0)
		return false;
	f->f_count++;
	return true;
}

/* gmem series v10-v13: guest_memfd flags, huge folios on request. */
#define KVM_GUEST_MEMFD_ALLOW_HUGEPAGE (1ULL << 0)

static inline void filemap_invalidate_lock(struct address_space *m)
{
	m->invalidate_lock++;
}

static inline void filemap_invalidate_unlock(struct address_space *m)
{
	m->invalidate_lock--;
}

static inline void filemap_invalidate_lock_shared(struct address_space *m)
{
	m->invalidate_lock--;
}

static inline void filemap_invalidate_unlock_shared(struct address_space *m)
{
	m->invalidate_lock++;
}

/* An empty page cache, no a_ops, nothing on i_private_list. */
void gmf_mapping_init(struct address_space *mapping);
/*
 * Put a folio of 2^order pages, the memmap's at pfn, into the page cache
 * at index: 0, or -EINVAL (order above PMD_ORDER, index or pfn not
 * 2^order aligned, pfns outside the memmap), -EEXIST (overlap).
 */
int gmf_filemap_add_folio(struct address_space *mapping, pgoff_t index,
			  unsigned int order, unsigned long pfn);
void truncate_inode_pages_range(struct address_space *mapping, loff_t lstart,
				loff_t lend);
/*
 * The folio at index, locked; a missing one is allocated (order 0, at
 * mapping->gmf_pfn_base + index) and added, or ERR_PTR(-ENOMEM) when that
 * pfn is outside the memmap.
 */
struct folio *filemap_grab_folio(struct address_space *mapping, pgoff_t index);

/*
 * 6.18+'s kvm_gmem_get_folio(): the folio at index, locked, or
 * ERR_PTR(-ENOENT) when the page cache has none (filemap_lock_folio());
 * with FGP_CREAT a missing one is allocated as filemap_grab_folio() does
 * (__filemap_get_folio_mpol(), the policy ignored: one node).
 */
#define FGP_LOCK 0x01
#define FGP_CREAT 0x04
#define GFP_HIGHUSER ((gfp_t)0)
struct folio *filemap_lock_folio(struct address_space *mapping, pgoff_t index);
struct folio *__filemap_get_folio_mpol(struct address_space *mapping,
				       pgoff_t index, unsigned int fgp_flags,
				       gfp_t gfp, struct mempolicy *policy);

/* 6.13+ trees without NUMA policies ask the page cache directly. */
static inline struct folio *__filemap_get_folio(struct address_space *mapping,
						pgoff_t index,
						unsigned int fgp_flags, gfp_t gfp)
{
	return __filemap_get_folio_mpol(mapping, index, fgp_flags, gfp, NULL);
}

static inline gfp_t mapping_gfp_mask(struct address_space *mapping)
{
	(void)mapping;
	return GFP_HIGHUSER;
}

/*
 * The user-mapping fault path of 6.18+ (GUEST_MEMFD_FLAG_MMAP): its types,
 * so a tree's kvm_gmem_fault_user_mapping() compiles.  gmemforge does not
 * run it (no operation checks host mappings).
 */
typedef unsigned int vm_fault_t;
#define VM_FAULT_SIGBUS ((vm_fault_t)0x0002)
#define VM_FAULT_LOCKED ((vm_fault_t)0x0200)
#define VM_FAULT_RETRY ((vm_fault_t)0x0400)
#define VM_FAULT_OOM ((vm_fault_t)0x0001)
#define VM_SHARED 0x00000008UL
#define VM_MAYSHARE 0x00000080UL

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_flags;
	unsigned long vm_pgoff;
	struct file *vm_file;
	const void *vm_ops;
};

struct vm_fault {
	struct vm_area_struct *vma;
	pgoff_t pgoff;
	struct page *page;
};

static inline vm_fault_t vmf_error(int err)
{
	return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
}

static inline void truncate_inode_pages(struct address_space *mapping,
					loff_t lstart)
{
	truncate_inode_pages_range(mapping, lstart, -1);
}

#define FALLOC_FL_KEEP_SIZE 0x01
#define FALLOC_FL_PUNCH_HOLE 0x02
#define FALLOC_FL_NO_HIDE_STALE 0x04
#define FALLOC_FL_COLLAPSE_RANGE 0x08
#define FALLOC_FL_ZERO_RANGE 0x10
#define FALLOC_FL_INSERT_RANGE 0x20
#define FALLOC_FL_UNSHARE_RANGE 0x40

/* ------------------------------------------------------------------ */
/* KVM: uAPI constants                                                 */
/* ------------------------------------------------------------------ */

#define KVM_MEM_LOG_DIRTY_PAGES (1UL << 0)
#define KVM_MEM_READONLY (1UL << 1)
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#define KVM_MEM_PRIVATE KVM_MEM_GUEST_MEMFD	/* the 2023 name */
#define KVM_MEMSLOT_INVALID (1UL << 16)
#define KVM_MEMSLOT_GMEM_ONLY (1UL << 17)	/* 6.18+: guest_memfd backs all of it */

#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#define KVM_EXIT_MEMORY_FAULT 39

#define KVM_X86_DEFAULT_VM 0
#define KVM_X86_SW_PROTECTED_VM 1
#define KVM_X86_SEV_VM 2
#define KVM_X86_SEV_ES_VM 3
#define KVM_X86_SNP_VM 4
#define KVM_X86_TDX_VM 5

struct kvm_pre_fault_memory {
	__u64 gpa;
	__u64 size;
	__u64 flags;
	__u64 padding[5];
};

struct kvm_run {
	__u32 exit_reason;
	struct {
		__u64 flags;
		__u64 gpa;
		__u64 size;
	} memory_fault;
};

/* ------------------------------------------------------------------ */
/* KVM: x86 page-fault error code                                      */
/* ------------------------------------------------------------------ */

#define PFERR_PRESENT_MASK BIT(0)
#define PFERR_WRITE_MASK BIT(1)
#define PFERR_USER_MASK BIT(2)
#define PFERR_RSVD_MASK BIT(3)
#define PFERR_FETCH_MASK BIT(4)
#define PFERR_PK_MASK BIT(5)
#define PFERR_SGX_MASK BIT(15)
#define PFERR_GUEST_RMP_MASK BIT_ULL(31)
#define PFERR_GUEST_FINAL_MASK BIT_ULL(32)
#define PFERR_GUEST_PAGE_MASK BIT_ULL(33)
#define PFERR_GUEST_ENC_MASK BIT_ULL(34)
#define PFERR_GUEST_SIZEM_MASK BIT_ULL(35)
#define PFERR_GUEST_VMPL_MASK BIT_ULL(36)
#define PFERR_IMPLICIT_ACCESS BIT_ULL(48)
#define PFERR_PRIVATE_ACCESS BIT_ULL(49)
#define PFERR_SYNTHETIC_MASK (PFERR_IMPLICIT_ACCESS | PFERR_PRIVATE_ACCESS)
#define PFERR_NESTED_GUEST_PAGE \
	(PFERR_GUEST_PAGE_MASK | PFERR_WRITE_MASK | PFERR_PRESENT_MASK)

#define EMULTYPE_ALLOW_RETRY_PF (1 << 3)
#define EMULTYPE_PF (1 << 6)
#define EMULTYPE_WRITE_PF_TO_SP (1 << 8)

/* 6.12 order (mmu_internal.h); WRITE_PROTECTED is new since 2023's USER. */
enum {
	RET_PF_CONTINUE = 0,
	RET_PF_RETRY,
	RET_PF_EMULATE,
	RET_PF_WRITE_PROTECTED,
	RET_PF_INVALID,
	RET_PF_FIXED,
	RET_PF_SPURIOUS,
};

#define INVALID_PAGE (~(hpa_t)0)
#define VALID_PAGE(x) ((x) != INVALID_PAGE)
#define INVALID_GPA (~(gpa_t)0)
#define KVM_PFN_ERR_FAULT (0x7ffULL << 52)
#define KVM_HVA_ERR_BAD (0xffff888000000000UL)

/* ------------------------------------------------------------------ */
/* KVM: core structures                                                */
/* ------------------------------------------------------------------ */

struct kvm;
struct kvm_vcpu;
struct kvm_page_fault;

struct gmf_mmu_lock {
	int held;
};

struct kvm_arch {
	u8 vm_type;
	bool has_private_mem;
	bool has_protected_state;
	bool pre_fault_allowed;
	/* 2023 SNP RFC: a fault is private iff err & mask (0 = unused). */
	u64 mmu_private_fault_mask;
	/* 2023 TDX: the shared GPA bit as a gfn mask (0 = unused). */
	gfn_t gfn_shared_mask;
	/* 6.16+ TDX: the shared GPA bit as a gfn mask, set by tdx_td_init(). */
	gfn_t gfn_direct_bits;
};

struct kvm_memory_slot {
	gfn_t base_gfn;
	unsigned long npages;
	u32 flags;
	short id;
	u16 as_id;
	struct {
		struct file *file;
		union {
			pgoff_t pgoff;	/* upstream */
			pgoff_t index;	/* 2023 */
		};
	} gmem;
	u8 gmf_max_level;	/* shim: largest mapping the slot allows */
};

struct kvm {
	struct gmf_mmu_lock mmu_lock;
	struct kvm_arch arch;
	struct srcu_struct srcu;
	struct mutex slots_lock;
	unsigned long mmu_invalidate_seq;
	long mmu_invalidate_in_progress;
	gfn_t mmu_invalidate_range_start;
	gfn_t mmu_invalidate_range_end;
	bool vm_bugged;
	/* shim: memslots and the private-attribute gfn range */
	unsigned int gmf_nslots;
	struct kvm_memory_slot *gmf_slots[GMF_MAX_SLOTS];
	gfn_t gmf_private_start;
	gfn_t gmf_private_end;
};

struct kvm_gmem {
	struct kvm *kvm;
	struct xarray bindings;
	struct list_head entry;
#if GMF_PROFILE == 1
	u64 flags;
#endif
};

/*
 * 6.18+ splits the per-VM view of a guest_memfd into struct gmem_file (same
 * members) under a per-inode list; the shim's one struct serves both names.
 */
#define gmem_file kvm_gmem

/*
 * The tree's file-scope definitions are not extracted (review takes
 * functions and tables), so the shim carries 6.18+'s two: the walk over an
 * inode's per-VM files, whose argument is the mapping (6.18) or the inode
 * (later), and the gmem_get_file guard (a reference to slot->gmem.file
 * unless it is closing, dropped at scope exit).
 */
static inline struct list_head *gmf_inode_files(struct inode *inode)
{
	return &inode->i_mapping->i_private_list;
}

static inline struct list_head *gmf_mapping_files(struct address_space *m)
{
	return &m->i_private_list;
}

#define kvm_gmem_for_each_file(f, where)					\
	list_for_each_entry(f, _Generic((where),				\
		struct inode *: gmf_inode_files,				\
		struct address_space *: gmf_mapping_files)(where), entry)

#define DEFINE_CLASS(_name, _type, _exit, _init, _init_args...)		\
	typedef _type class_##_name##_t;				\
	static inline void class_##_name##_destructor(_type *p)		\
	{ _type _T = *p; _exit; }					\
	static inline _type class_##_name##_constructor(_init_args)	\
	{ _type t = _init; return t; }

#define CLASS(_name, var)						\
	class_##_name##_t var						\
	__attribute__((__cleanup__(class_##_name##_destructor))) =	\
		class_##_name##_constructor

DEFINE_CLASS(gmem_get_file, struct file *, if (_T) fput(_T),
	     get_file_active(&slot->gmem.file), struct kvm_memory_slot *slot);

typedef struct {
	unsigned long pte;
} pte_t;

#define __pte(x) ((pte_t){ (x) })

union kvm_mmu_notifier_arg {
	unsigned long attributes;
};

enum kvm_gfn_range_filter {
	KVM_FILTER_SHARED = BIT(0),
	KVM_FILTER_PRIVATE = BIT(1),
};

struct kvm_gfn_range {
	struct kvm_memory_slot *slot;
	gfn_t start;
	gfn_t end;
	union kvm_mmu_notifier_arg arg;
#if GMF_PROFILE == 0 && !defined(GMF_GFN_RANGE_NO_ATTR_FILTER)
	enum kvm_gfn_range_filter attr_filter;
#else
	/*
	 * Before attr_filter (6.12): 2023 trees' pte; Google trees'
	 * KVM_GFN_RANGE_FLAGS_*; late-2023 TDX trees' only_private/only_shared.
	 * A review of such a tree passes -DGMF_GFN_RANGE_NO_ATTR_FILTER.
	 */
	pte_t pte;
	unsigned int flags;
	bool only_private;
	bool only_shared;
#endif
	bool may_block;
};

#define KVM_GFN_RANGE_FLAGS_GMEM BIT(0)

union kvm_mmu_page_role {
	u32 word;
	struct {
		unsigned level:4;
		unsigned has_4_byte_gpte:1;
		unsigned quadrant:2;
		unsigned direct:1;
		unsigned access:3;
		unsigned invalid:1;
		unsigned efer_nx:1;
		unsigned cr0_wp:1;
		unsigned smep_andnot_wp:1;
		unsigned smap_andnot_wp:1;
		unsigned ad_disabled:1;
		unsigned guest_mode:1;
		unsigned passthrough:1;
		unsigned :5;
		unsigned smm:8;
	};
};

struct kvm_mmu_root_info {
	gpa_t pgd;
	hpa_t hpa;
};

struct kvm_mmu {
	int (*page_fault)(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault);
	struct kvm_mmu_root_info root;
	union kvm_mmu_page_role root_role;
};

struct kvm_vcpu_arch {
	struct kvm_mmu *mmu;
};

struct kvm_vcpu_stat {
	u64 pf_taken;
	u64 pf_fixed;
	u64 pf_emulate;
	u64 pf_spurious;
	u64 pf_fast;
	u64 pf_mmio_spte_created;
	u64 pf_guest;
};

struct kvm_vcpu {
	struct kvm *kvm;
	struct kvm_run *run;
	int vcpu_id;
	int loaded;		/* shim: vcpu_load() depth */
	struct kvm_vcpu_arch arch;
	struct kvm_vcpu_stat stat;
};

/* struct kvm_page_fault, inputs grouped as in mmu_internal.h. */
#ifndef GMF_FAULT_ERROR_CODE_T
#define GMF_FAULT_ERROR_CODE_T u64
#endif

struct kvm_page_fault {
	const gpa_t addr;
	/*
	 * u64 in 6.12 and in a 2023 tree once the series has widened it; a
	 * review of an unpatched 2023 tree passes -DGMF_FAULT_ERROR_CODE_T=u32.
	 */
	const GMF_FAULT_ERROR_CODE_T error_code;
	const bool prefetch;

	const bool exec;
	const bool write;
	const bool present;
	const bool rsvd;
	const bool user;

	const bool is_tdp;
	const bool is_private;
	const bool nx_huge_page_workaround_enabled;

	bool huge_page_disallowed;
	u8 max_level;
	u8 req_level;
	u8 goal_level;

	gfn_t gfn;
	struct kvm_memory_slot *slot;

	unsigned long mmu_seq;
	kvm_pfn_t pfn;
	hva_t hva;
	bool map_writable;
	bool write_fault_to_shadow_pgtable;
};

/* SVM's view of the same objects. */
struct vmcb_control_area {
	u64 exit_code;
	u64 exit_info_1;
	u64 exit_info_2;
	u8 insn_len;
	u8 insn_bytes[15];
};

struct vmcb {
	struct vmcb_control_area control;
};

struct vcpu_svm {
	struct kvm_vcpu vcpu;
	struct vmcb *vmcb;
};

struct kvm_sev_info {
	bool active;
	bool es_active;
	bool snp_active;	/* shim: vmsa_features has SNP_ACTIVE */
	unsigned int asid;
	unsigned int handle;
	int fd;
};

struct kvm_svm {
	struct kvm kvm;
	struct kvm_sev_info sev_info;
};

static inline struct vcpu_svm *to_svm(struct kvm_vcpu *vcpu)
{
	return container_of(vcpu, struct vcpu_svm, vcpu);
}

static inline struct kvm_svm *to_kvm_svm(struct kvm *kvm)
{
	return container_of(kvm, struct kvm_svm, kvm);
}

static inline struct kvm_sev_info *to_kvm_sev_info(struct kvm *kvm)
{
	return &to_kvm_svm(kvm)->sev_info;
}

static inline bool sev_guest(struct kvm *kvm)
{
	return to_kvm_svm(kvm)->sev_info.active;
}

static inline bool sev_es_guest(struct kvm *kvm)
{
	return sev_guest(kvm) && to_kvm_svm(kvm)->sev_info.es_active;
}

static inline bool sev_snp_guest(struct kvm *kvm)
{
	return sev_es_guest(kvm) && to_kvm_svm(kvm)->sev_info.snp_active;
}

#define X86_FEATURE_DECODEASSISTS (15 * 32 + 7)
#define static_cpu_has(f) true
#define boot_cpu_has(f) true

/* ------------------------------------------------------------------ */
/* KVM: memslots, attributes, memory-fault exits                       */
/* ------------------------------------------------------------------ */

static inline struct kvm_memory_slot *gfn_to_memslot(struct kvm *kvm,
						     gfn_t gfn)
{
	unsigned int i;

	for (i = 0; i < kvm->gmf_nslots; i++) {
		struct kvm_memory_slot *s = kvm->gmf_slots[i];

		if (gfn >= s->base_gfn && gfn - s->base_gfn < s->npages)
			return s;
	}
	return NULL;
}

static inline struct kvm_memory_slot *
kvm_vcpu_gfn_to_memslot(struct kvm_vcpu *vcpu, gfn_t gfn)
{
	return gfn_to_memslot(vcpu->kvm, gfn);
}

static inline bool kvm_slot_can_be_private(const struct kvm_memory_slot *slot)
{
	return slot && (slot->flags & KVM_MEM_GUEST_MEMFD);
}

#define kvm_slot_has_gmem(slot) kvm_slot_can_be_private(slot)

static inline bool kvm_arch_has_private_mem(struct kvm *kvm)
{
	return kvm->arch.has_private_mem;
}

/* The attribute as the adapter set it: private iff gfn in the range. */
static inline bool kvm_mem_is_private(struct kvm *kvm, gfn_t gfn)
{
	return gfn >= kvm->gmf_private_start && gfn < kvm->gmf_private_end;
}

static inline unsigned long kvm_get_memory_attributes(struct kvm *kvm,
						      gfn_t gfn)
{
	return kvm_mem_is_private(kvm, gfn) ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
}

static inline void kvm_prepare_memory_fault_exit(struct kvm_vcpu *vcpu,
						 gpa_t gpa, gpa_t size,
						 bool is_write, bool is_exec,
						 bool is_private)
{
	(void)is_write;
	(void)is_exec;
	vcpu->run->exit_reason = KVM_EXIT_MEMORY_FAULT;
	vcpu->run->memory_fault.gpa = gpa;
	vcpu->run->memory_fault.size = size;
	vcpu->run->memory_fault.flags =
		is_private ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0;
}

static inline void kvm_mmu_prepare_memory_fault_exit(struct kvm_vcpu *vcpu,
						     struct kvm_page_fault *fault)
{
	kvm_prepare_memory_fault_exit(vcpu, gfn_to_gpa(fault->gfn), PAGE_SIZE,
				      fault->write, fault->exec,
				      fault->is_private);
}

/* ------------------------------------------------------------------ */
/* KVM: MMU calls (recorded in shim.c)                                 */
/* ------------------------------------------------------------------ */

void gmf_mmu_lock(struct kvm *kvm);
void gmf_mmu_unlock(struct kvm *kvm);
#define KVM_MMU_LOCK(kvm) gmf_mmu_lock(kvm)
#define KVM_MMU_UNLOCK(kvm) gmf_mmu_unlock(kvm)
#define write_lock(l) gmf_mmu_lock(container_of(l, struct kvm, mmu_lock))
#define write_unlock(l) gmf_mmu_unlock(container_of(l, struct kvm, mmu_lock))

void kvm_mmu_invalidate_begin(struct kvm *kvm);
void kvm_mmu_invalidate_end(struct kvm *kvm);

/* The in-place conversion series' name for kvm_mmu_invalidate_begin(). */
static inline void kvm_mmu_invalidate_start(struct kvm *kvm)
{
	kvm_mmu_invalidate_begin(kvm);
}
void kvm_mmu_invalidate_range_add(struct kvm *kvm, gfn_t start, gfn_t end);
bool kvm_mmu_unmap_gfn_range(struct kvm *kvm, struct kvm_gfn_range *range);
bool kvm_unmap_gfn_range(struct kvm *kvm, struct kvm_gfn_range *range);
void kvm_flush_remote_tlbs(struct kvm *kvm);
void kvm_zap_gfn_range(struct kvm *kvm, gfn_t gfn_start, gfn_t gfn_end);

/*
 * x86's vendor ops, the members guest_memfd's hooks use.  The vendor module
 * registers its table (svm.c's svm_x86_ops) and kvm_ops_update() copies it
 * here; an adapter does the same with the table the C under test brings
 * (gmf_x86_ops_register(), adapters/common.h), so a hook missing from the
 * tree's table is missing here too.  Calls go through static_call() /
 * kvm_x86_call() as in the kernel: gmem_prepare and
 * private_max_mapping_level are OPTIONAL_RET0 (0 when unset),
 * gmem_invalidate is OPTIONAL (nothing when unset).
 */
struct kvm_x86_ops {
	int (*gmem_prepare)(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn,
			    int max_order);
	void (*gmem_invalidate)(kvm_pfn_t start, kvm_pfn_t end);
	int (*private_max_mapping_level)(struct kvm *kvm, kvm_pfn_t pfn);
	/*
	 * The SNP series v10-v11 (late 2023): lowers *max_level to what the
	 * RMP allows, or fails the fault (OPTIONAL_RET0).
	 */
	int (*gmem_max_level)(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn,
			      u8 *max_level);
};

extern struct kvm_x86_ops kvm_x86_ops;

#define __initdata
#define __ro_after_init
#define KBUILD_MODNAME "kvm_amd"
#define CONFIG_KVM_AMD_SEV 1

/* The static calls guest_memfd's x86 side makes (shim.c records them). */
int gmf_static_call_kvm_x86_gmem_prepare(struct kvm *kvm, kvm_pfn_t pfn,
					 gfn_t gfn, int max_order);
void gmf_static_call_kvm_x86_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end);
int gmf_static_call_kvm_x86_private_max_mapping_level(struct kvm *kvm,
						       kvm_pfn_t pfn);
int gmf_static_call_kvm_x86_gmem_max_level(struct kvm *kvm, kvm_pfn_t pfn,
					   gfn_t gfn, u8 *max_level);
#define static_call(name) gmf_static_call_##name
#define static_call_cond(name) gmf_static_call_##name
#define kvm_x86_call(func) static_call(kvm_x86_##func)

/* SVM's hooks (svm.h declares them for svm.c's table). */
int sev_gmem_prepare(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn, int max_order);
void sev_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end);
int sev_private_max_mapping_level(struct kvm *kvm, kvm_pfn_t pfn);
int sev_gmem_max_level(struct kvm *kvm, kvm_pfn_t pfn, gfn_t gfn, u8 *max_level);

/*
 * The generic hooks guest_memfd calls.  x86.c's wrappers (kvm_x86_call()
 * of the op, arguments reordered for gmem_prepare) are in shim.c, weak: a
 * tree's own x86.c wrappers replace them.
 */
int kvm_arch_gmem_prepare(struct kvm *kvm, gfn_t gfn, kvm_pfn_t pfn,
			  int max_order);
#ifdef GMF_ARCH_INVALIDATE_HAS_KVM
void kvm_arch_gmem_invalidate(struct kvm *kvm, kvm_pfn_t start, kvm_pfn_t end);
#else
void kvm_arch_gmem_invalidate(kvm_pfn_t start, kvm_pfn_t end);
#endif

/*
 * The in-place conversion series' arch hooks (2026). The model covers none
 * of them yet, and review says so on the items whose shape calls them
 * (shapes.rs): here they do nothing, so what the harness compares is
 * guest_memfd's own part (zaps, errnos, pfns, orders), never a claim about
 * the hooks.
 */
static inline void kvm_arch_gmem_invalidate_range(struct kvm *kvm,
						  struct kvm_gfn_range *range)
{
	(void)kvm;
	(void)range;
}

static inline bool kvm_arch_has_gmem_convert(void)
{
	return true;
}

static inline int kvm_arch_gmem_make_private(struct kvm *kvm, gfn_t gfn,
					     kvm_pfn_t pfn, kvm_pfn_t nr_pages)
{
	(void)kvm;
	(void)gfn;
	(void)pfn;
	(void)nr_pages;
	return 0;
}

static inline void kvm_arch_gmem_make_shared(kvm_pfn_t pfn, kvm_pfn_t nr_pages)
{
	(void)pfn;
	(void)nr_pages;
}

static inline void kvm_arch_gmem_reclaim(kvm_pfn_t pfn, pgoff_t nr_pages)
{
	(void)pfn;
	(void)nr_pages;
}

/* ------------------------------------------------------------------ */
/* KVM: x86 fault path around the functions under test                 */
/* ------------------------------------------------------------------ */

/* The TDP fault handler: records the fault, then kvm_faultin_pfn()'s checks. */
int kvm_tdp_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault);
/* The page_fault hook of a shadow-paging (non-TDP) MMU. */
int gmf_shadow_page_fault(struct kvm_vcpu *vcpu, struct kvm_page_fault *fault);
/* A unit that carries its own (static) kvm_tdp_map_page() says so. */
#ifndef GMF_HAVE_TDP_MAP_PAGE
int kvm_tdp_map_page(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code,
		     u8 *level);
#endif
int kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa, u64 error_code,
		       void *insn, int insn_len);
long kvm_arch_vcpu_pre_fault_memory(struct kvm_vcpu *vcpu,
				    struct kvm_pre_fault_memory *range);

/*
 * 6.16+ TDX (arch/x86/kvm/mmu.h, vmx/): the shared bit as "direct bits",
 * the TD vCPU and what an EPT violation exit leaves in it.  The tree's
 * tdx.c and vmx/common.h decide private from these; the shim only holds
 * the exit's fields and mmu.h's two accessors.
 */
static inline gfn_t kvm_gfn_direct_bits(const struct kvm *kvm)
{
	return kvm->arch.gfn_direct_bits;
}

static inline bool kvm_is_addr_direct(struct kvm *kvm, gpa_t gpa)
{
	gpa_t gpa_direct_bits = gfn_to_gpa(kvm_gfn_direct_bits(kvm));

	return !gpa_direct_bits || (gpa & gpa_direct_bits);
}

#define TDX_SHARED_BIT_PWL_5 gpa_to_gfn(BIT_ULL(51))
#define TDX_SHARED_BIT_PWL_4 gpa_to_gfn(BIT_ULL(47))

#define EPT_VIOLATION_ACC_READ BIT(0)
#define EPT_VIOLATION_ACC_WRITE BIT(1)
#define EPT_VIOLATION_ACC_INSTR BIT(2)
#define EPT_VIOLATION_PROT_READ BIT(3)
#define EPT_VIOLATION_PROT_WRITE BIT(4)
#define EPT_VIOLATION_PROT_EXEC BIT(5)
#define EPT_VIOLATION_EXEC_FOR_RING3_LIN BIT(6)
#define EPT_VIOLATION_PROT_MASK \
	(EPT_VIOLATION_PROT_READ | EPT_VIOLATION_PROT_WRITE | \
	 EPT_VIOLATION_PROT_EXEC)
#define EPT_VIOLATION_GVA_IS_VALID BIT(7)
#define EPT_VIOLATION_GVA_TRANSLATED BIT(8)

#define TDX_EXT_EXIT_QUAL_TYPE_MASK GENMASK_ULL(3, 0)
#define TDX_EXT_EXIT_QUAL_TYPE_PENDING_EPT_VIOLATION 6

struct vcpu_vt {
	unsigned long exit_qualification;
	u32 exit_intr_info;
};

struct vcpu_tdx {
	struct kvm_vcpu vcpu;
	struct vcpu_vt vt;
	gpa_t exit_gpa;
	u64 ext_exit_qualification;
};

static inline struct vcpu_tdx *to_tdx(struct kvm_vcpu *vcpu)
{
	return container_of(vcpu, struct vcpu_tdx, vcpu);
}

static inline struct vcpu_vt *to_vt(struct kvm_vcpu *vcpu)
{
	return &to_tdx(vcpu)->vt;
}

/* The shim's only VMX-family vCPU is a TD's. */
static inline unsigned long vmx_get_exit_qual(struct kvm_vcpu *vcpu)
{
	return to_vt(vcpu)->exit_qualification;
}

static inline bool is_td(struct kvm *kvm)
{
	return kvm->arch.vm_type == KVM_X86_TDX_VM;
}

static inline bool is_td_vcpu(struct kvm_vcpu *vcpu)
{
	return is_td(vcpu->kvm);
}

/* One fault, no pending event or request: a retry loop runs once more at most. */
#define KVM_REQ_VM_DEAD 1
static inline bool kvm_vcpu_has_events(struct kvm_vcpu *vcpu)
{
	(void)vcpu;
	return true;
}

static inline bool kvm_check_request(int req, struct kvm_vcpu *vcpu)
{
	(void)req;
	(void)vcpu;
	return false;
}

static inline void kvm_vm_dead(struct kvm *kvm)
{
	kvm->vm_bugged = true;
}

void gmf_trace_page_fault(struct kvm_vcpu *vcpu, u64 addr, u64 error_code);
#define trace_kvm_page_fault(vcpu, addr, err) gmf_trace_page_fault(vcpu, addr, err)

int x86_emulate_instruction(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
			    int emulation_type, void *insn, int insn_len);
void sev_handle_rmp_fault(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code);
/* Its name in the 2023 SNP host trees. */
void handle_rmp_page_fault(struct kvm_vcpu *vcpu, gpa_t gpa, u64 error_code);

static inline bool is_nx_huge_page_enabled(struct kvm *kvm)
{
	(void)kvm;
	return false;
}

static inline bool is_guest_mode(struct kvm_vcpu *vcpu)
{
	(void)vcpu;
	return false;
}

/* No MMIO SPTE is ever cached: reserved faults take the normal path. */
static inline int handle_mmio_page_fault(struct kvm_vcpu *vcpu, u64 addr,
					 bool direct)
{
	(void)vcpu;
	(void)addr;
	(void)direct;
	return RET_PF_INVALID;
}

static inline bool mmio_info_in_cache(struct kvm_vcpu *vcpu, gpa_t cr2_or_gpa,
				      bool direct)
{
	(void)vcpu;
	(void)cr2_or_gpa;
	(void)direct;
	return false;
}

static inline int kvm_mmu_write_protect_fault(struct kvm_vcpu *vcpu,
					      gpa_t cr2_or_gpa, u64 error_code,
					      int *emulation_type)
{
	(void)vcpu;
	(void)cr2_or_gpa;
	(void)error_code;
	(void)emulation_type;
	return RET_PF_EMULATE;
}

static inline bool kvm_mmu_unprotect_page(struct kvm *kvm, gfn_t gfn)
{
	(void)kvm;
	(void)gfn;
	return false;
}

static inline int kvm_mmu_reload(struct kvm_vcpu *vcpu)
{
	(void)vcpu;
	return 0;
}

static inline void vcpu_load(struct kvm_vcpu *vcpu)
{
	vcpu->loaded++;
}

static inline void vcpu_put(struct kvm_vcpu *vcpu)
{
	vcpu->loaded--;
}

/* ------------------------------------------------------------------ */
/* SEV-SNP RMP (rmp.h has the hardware model)                          */
/* ------------------------------------------------------------------ */

enum cc_attr {
	CC_ATTR_MEM_ENCRYPT,
	CC_ATTR_HOST_MEM_ENCRYPT,
	CC_ATTR_GUEST_MEM_ENCRYPT,
	CC_ATTR_GUEST_STATE_ENCRYPT,
	CC_ATTR_GUEST_UNROLL_STRING_IO,
	CC_ATTR_GUEST_SEV_SNP,
	CC_ATTR_HOST_SEV_SNP,
};

/* cc_platform_has() and the RMP functions below: inline, in rmp.h. */

#define RMP_PG_SIZE_4K 0
#define RMP_PG_SIZE_2M 1
#define RMP_TO_PG_LEVEL(level) \
	(((level) == RMP_PG_SIZE_4K) ? PG_LEVEL_4K : PG_LEVEL_2M)
#define PG_LEVEL_TO_RMP(level) \
	(((level) == PG_LEVEL_4K) ? RMP_PG_SIZE_4K : RMP_PG_SIZE_2M)

/* Hardware return codes (AMD APM); the kernel retries the last two. */
#define RMPUPDATE_FAIL_INPUT 1
#define PSMASH_FAIL_INUSE 3
#define RMPUPDATE_FAIL_OVERLAP 4
#define FAIL_INPUT 1
#define FAIL_INUSE 3
#define FAIL_OVERLAP 4

/*
 * snp_lookup_rmpentry(), rmp_make_private(), rmp_make_shared(), psmash()
 * and (unless the unit brings its own) snp_rmptable_psmash() are inline
 * in rmp.h, included at the end: they need the shim's state below.
 */

static inline void clflush_cache_range(void *addr, unsigned int size)
{
	(void)addr;
	(void)size;
}

static inline hpa_t pfn_to_hpa(kvm_pfn_t pfn)
{
	return (hpa_t)pfn << PAGE_SHIFT;
}

/* Never dereferenced: clflush_cache_range() above ignores it. */
#define __va(x) ((void *)(unsigned long)(x))

/* ------------------------------------------------------------------ */
/* The shim's own state                                                */
/* ------------------------------------------------------------------ */

/* What the functions under test did, reset per vector. */
struct gmf_recorder {
	uint32_t nevents;
	uint8_t events_overflow;
	uint32_t nranges;
	uint8_t ranges_overflow;
	uint32_t invalidate_begin;
	uint32_t invalidate_end;
	uint32_t range_add;
	uint32_t flushes;
	uint32_t warnings;
	int lock_depth;
	uint8_t lock_misuse;	/* an unlock without lock, or a nested lock */

	/* kvm_tdp_page_fault(): the fault as the MMU saw it */
	uint8_t fault_seen;
	uint8_t fault_private;
	uint64_t fault_err;
	uint64_t fault_gfn;
	int fault_ret;
	/* trace_kvm_page_fault(): the code npf_interception() passes on */
	uint8_t trace_seen;
	uint64_t trace_err;
	uint32_t emulated;

	/* signal_pending(): checks made, and the check that turns true */
	uint32_t signal_checks;
	uint32_t signal_after;	/* 0 = never */

	struct gmf_gfn_range ranges[GMF_MAX_RANGES];
	struct gmf_event events[GMF_MAX_EVENTS];
};

/*
 * The RMP table the hardware model updates.  Entries whose bit is clear
 * in both dirty[] (the entries the last load set) and written[] (the
 * entries the current vector's updates touched) are all zero, so a load
 * clears only those set.  Bitmaps, not spans: two pages far
 * apart cost two entries; the spans [dirty_lo, dirty_hi) and
 * [written_lo, written_hi) bound them, so a load or a copy looks at the
 * bitmaps' words there only.
 */
struct gmf_rmp_table {
	uint8_t snp_enabled;
	uint64_t max_pfn;
	uint64_t dirty_lo, dirty_hi;
	uint64_t written_lo, written_hi;
	uint64_t dirty[GMF_MAX_RMP_PFNS / 64];
	uint64_t written[GMF_MAX_RMP_PFNS / 64];
	struct gmf_rmp_entry entries[GMF_MAX_RMP_PFNS];
	/*
	 * The state the table was last loaded from (loaded_nruns is ~0U
	 * after a clear), and the entries as loaded (zero wherever dirty[]
	 * is clear, as entries[]): loading the same state again only puts
	 * back the entries written since, and the exhaustive bounds load one
	 * state for dozens of vectors in a row.
	 */
	uint32_t loaded_nruns;
	struct gmf_rmp_run loaded[GMF_MAX_RMP_RUNS];
	struct gmf_rmp_entry pristine[GMF_MAX_RMP_PFNS];
};

/* The objects a vector runs on; adapters fill what their op uses. */
struct gmf_world {
	struct kvm_svm vm;
	struct kvm_svm other_vm;
	struct vcpu_svm vcpu;
	struct vcpu_tdx tdx_vcpu;	/* classify's TD vCPU (6.16+ TDX) */
	struct vmcb vmcb;
	struct kvm_run run;
	struct kvm_mmu mmu;
	struct kvm_memory_slot slots[GMF_MAX_BINDINGS + GMF_MAX_SLOTS];
	struct kvm_gmem gmem[GMF_MAX_FILES];
	struct file files[GMF_MAX_FILES];
	uint32_t fds[GMF_MAX_FILES];
	struct gmem_inode inodes[GMF_MAX_FILES];	/* .vfs_inode: see gmem_inode */
	unsigned int nfiles;
};

extern struct gmf_recorder gmf_rec;
extern struct gmf_rmp_table gmf_rmp;
extern struct gmf_world gmf_world;

/*
 * Zero the recorder and the VM; leaves the RMP table alone (it is big)
 * and everything else to the adapter that uses it.
 */
void gmf_shim_reset(void);
/* A fresh vCPU of the VM, with a loaded TDP MMU (classify, prefault). */
void gmf_shim_reset_vcpu(void);
/*
 * Load the RMP table from a harness state (the RMP ops only): 0, or -1
 * for a run outside the table.
 */
int gmf_rmp_load(const struct gmf_rmp_state *st);
/* Every entry shared (clearing only what was loaded or written since). */
void gmf_rmp_clear(void);
/* Copy the entries the vector's updates wrote (and which) to out. */
void gmf_rmp_store(struct gmf_rmp_out *out);
/* The mmu_lock state of gmf_world.vm, for the recorder. */
static inline bool gmf_mmu_lock_held(void)
{
	return gmf_rec.lock_depth > 0;
}

#include "rmp.h"

#endif /* GMF_KERNEL_H */
