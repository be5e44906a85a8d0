/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gmemforge harness ABI: one entry point per checked operation, plain
 * structs in and out. Rust binds this header with bindgen (the output is
 * committed as checker/src/abi.rs; a test fails when it is stale).
 *
 * Every entry point is compiled once per implementation under test (our
 * generated C, each mutant, a reviewed tree's functions) into its own shared
 * object, so the names below carry no prefix: each object exports them once.
 *
 * Kernel functions under test see only the kernel-API shim (shim/); the
 * adapters in adapters/ translate these structs into shim state, call the
 * kernel function, and read back what the shim recorded.
 */
#ifndef GMF_HARNESS_H
#define GMF_HARNESS_H

#include <stdint.h>

#define GMF_ABI_VERSION 4

/* Bounds of the fixed-size arrays below (the checker never exceeds them). */
#define GMF_MAX_BINDINGS 8
#define GMF_MAX_RANGES 16
#define GMF_MAX_EVENTS 2112 /* a 2M region walked 4K at a time, and more */
#define GMF_MAX_RMP_PFNS 2048 /* RMP entries the shim models: 4 x 2M */
#define GMF_MAX_RMP_RUNS 128 /* runs of assigned entries in an RMP state */
#define GMF_MAX_SLOTS 4
#define GMF_MAX_FILES 4
#define GMF_MAX_FOLIOS 64

/* Profile the C was written for (the shim's struct shapes and hooks). */
enum gmf_profile {
	GMF_PROFILE_UPSTREAM = 0,
	GMF_PROFILE_SOLO2023 = 1,
};

struct gmf_binding {
	uint16_t id;
	uint64_t base_gfn;
	uint64_t npages;
	uint64_t pgoff;
};

/* One kvm_[mmu_]unmap_gfn_range() call as the shim recorded it. */
struct gmf_gfn_range {
	uint16_t slot;
	uint64_t start;
	uint64_t end;
	uint8_t attr_filter;   /* KVM_FILTER_* bits; 0 when the profile has none */
	uint8_t mmu_lock_held; /* KVM_MMU_LOCK held at the call */
};

/* kvm_gmem_invalidate_begin() then kvm_gmem_invalidate_end(). */
struct gmf_invalidate_in {
	uint32_t nbindings;
	struct gmf_binding bindings[GMF_MAX_BINDINGS];
	uint64_t start;
	uint64_t end;
};

struct gmf_invalidate_out {
	uint32_t nranges;
	struct gmf_gfn_range ranges[GMF_MAX_RANGES];
	uint32_t invalidate_begin;	/* kvm_mmu_invalidate_begin() calls */
	uint32_t invalidate_end;	/* kvm_mmu_invalidate_end() calls */
	uint32_t range_add;		/* kvm_mmu_invalidate_range_add() calls (2023) */
	uint32_t flushes;		/* kvm_flush_remote_tlbs() calls */
	uint32_t warnings;		/* WARN_ON_ONCE() / WARN_ONCE() that fired */
	uint8_t lock_balanced;		/* every KVM_MMU_LOCK had its UNLOCK */
	uint8_t overflow;		/* more than GMF_MAX_RANGES calls */
};

/* VM types, as KVM_X86_*_VM plus TDX. */
enum gmf_vm_type {
	GMF_VM_DEFAULT = 0,
	GMF_VM_SW_PROTECTED = 1,
	GMF_VM_SEV = 2,
	GMF_VM_SEV_ES = 3,
	GMF_VM_SNP = 4,
	GMF_VM_TDX = 5,
};

enum gmf_slot_kind {
	GMF_SLOT_GMEM = 0,	/* memslot bound to a guest_memfd */
	GMF_SLOT_PLAIN = 1,	/* memslot without guest_memfd */
	GMF_SLOT_NONE = 2,	/* no memslot at the gfn */
};

enum gmf_fault_outcome {
	GMF_FAULT_MAP = 0,		/* the fault proceeds to map the pfn */
	GMF_FAULT_MMIO = 1,		/* no memslot, shared: emulated MMIO */
	GMF_FAULT_MEMORY_EXIT = 2,	/* KVM_EXIT_MEMORY_FAULT, -EFAULT */
	GMF_FAULT_EFAULT = 3,		/* -EFAULT without an exit (WARN) */
};

/* The private-fault classification chain for one #NPF / EPT violation. */
struct gmf_fault_in {
	uint32_t vm_type;	/* enum gmf_vm_type */
	uint32_t slot_kind;	/* enum gmf_slot_kind */
	uint64_t error_code;	/* as hardware reported it (full 64 bits) */
	uint64_t gpa;
	uint8_t attr_private;	/* KVM_MEMORY_ATTRIBUTE_PRIVATE set on the gfn */
	uint8_t tdx_shared_bit;	/* 47 or 51 */
	/* The configurable rule (patch 3): 0 = error code, 1 = gpa,
	 * 2 = memory attribute, 3 = never private. */
	uint8_t rule_source;
	uint8_t rule_private_if_set;
	uint64_t rule_mask;
};

struct gmf_fault_out {
	uint8_t is_private;	/* kvm_page_fault.is_private */
	uint64_t error_code;	/* err handed to kvm_mmu_do_page_fault() */
	uint64_t gfn;		/* kvm_page_fault.gfn */
	uint32_t outcome;	/* enum gmf_fault_outcome */
	uint64_t exit_gpa;	/* run->memory_fault, when outcome is an exit */
	uint64_t exit_size;
	uint64_t exit_flags;
	uint32_t warnings;
};

/* One RMP entry of the shim's table (pfns 0 .. GMF_MAX_RMP_PFNS - 1). */
struct gmf_rmp_entry {
	uint8_t assigned;
	uint8_t pagesize;	/* 0 = 4K, 1 = 2M (RMP encoding) */
	uint8_t immutable;
	uint8_t validated;
	uint32_t asid;
	uint64_t gpa;
};

enum gmf_event_op {
	GMF_EV_MAKE_PRIVATE = 0,
	GMF_EV_MAKE_SHARED = 1,
	GMF_EV_PSMASH = 2,
	GMF_EV_UNMAP = 3,	/* an SPTE zap (kvm_[mmu_]unmap_gfn_range) */
	GMF_EV_INVALIDATE_BEGIN = 4,
	GMF_EV_INVALIDATE_END = 5,
	/* kvm_x86_ops.gmem_prepare reached through the table: pfn, arg = gfn,
	 * level = max_order, ret = the hook's return */
	GMF_EV_GMEM_PREPARE = 6,
};

/* An event in the order the shim saw it, with the lock context. */
struct gmf_event {
	uint32_t op;		/* enum gmf_event_op */
	uint64_t pfn;		/* pfn, or gfn start for UNMAP */
	uint64_t arg;		/* gpa for MAKE_PRIVATE, gfn end for UNMAP */
	int32_t level;		/* PG_LEVEL_4K / PG_LEVEL_2M for RMP updates */
	uint32_t asid;
	uint8_t mmu_lock_held;
	int32_t ret;		/* what the RMP instruction returned */
};

/*
 * A run of assigned RMP entries: npages 4K entries from pfn, gpa + 4K per
 * page, or (pagesize 1, npages 512, pfn 2M aligned) one 2M entry.  The
 * state is sparse so that a vector costs what it describes, not the table.
 */
struct gmf_rmp_run {
	uint64_t pfn;
	uint64_t npages;
	uint64_t gpa;
	uint32_t asid;
	uint8_t pagesize;	/* 0 = 4K entries, 1 = one 2M entry */
	uint8_t immutable;
	uint8_t validated;
};

struct gmf_rmp_state {
	uint8_t snp_enabled;		/* cc_platform_has(CC_ATTR_HOST_SEV_SNP) */
	uint64_t max_pfn;		/* lookups at or above fail (<= GMF_MAX_RMP_PFNS) */
	uint32_t nruns;			/* every other entry is shared (all zero) */
	struct gmf_rmp_run runs[GMF_MAX_RMP_RUNS];
};

/*
 * Only what the call wrote is copied out: events up to nevents, and the
 * entries of the pfns set in written[] (bit pfn % 64 of word pfn / 64),
 * every entry the call wrote; [rmp_lo, rmp_hi) is their span (empty:
 * rmp_lo == rmp_hi).  Every other entry is as loaded, and entries[] is
 * not written there: a walk that makes two far-apart pages shared costs
 * two entries, not the span between them.
 */
/*
 * gmf_rmp_out.max_level when the tree's MMU would not ask the level hook:
 * the SNP series v10-v11 ask .gmem_max_level only after kvm_gmem_get_pfn()
 * (and so the prepare hook) succeeded.  Far from any level or -errno.
 */
#define GMF_LEVEL_NOT_ASKED (-0x40000000)

struct gmf_rmp_out {
	int32_t ret;
	int32_t max_level;	/* the private max mapping level hook, after the op */
	uint32_t nevents;
	struct gmf_event events[GMF_MAX_EVENTS];
	uint32_t warnings;
	uint8_t overflow;
	uint64_t rmp_lo;
	uint64_t rmp_hi;
	uint64_t written[GMF_MAX_RMP_PFNS / 64];
	struct gmf_rmp_entry entries[GMF_MAX_RMP_PFNS];
};

/* sev_gmem_prepare() then the max-mapping-level hook on the same pfn. */
struct gmf_prepare_in {
	uint8_t snp_guest;
	uint32_t asid;
	uint64_t pfn;
	uint64_t gfn;
	int32_t max_order;
	struct gmf_rmp_state rmp;
};

/* sev_gmem_invalidate(start, end). */
struct gmf_rmp_invalidate_in {
	uint64_t start;
	uint64_t end;
	struct gmf_rmp_state rmp;
};

/*
 * A folio in a guest_memfd's page cache.  Its pages are pfns pfn_base +
 * index .. + 2^order - 1, which must lie below GMF_MAX_RMP_PFNS and, like
 * any buddy allocation, be 2^order aligned.
 */
struct gmf_folio {
	uint64_t index;	/* first file page; 2^order aligned */
	uint8_t order;	/* 0 or 9 */
};

/* fallocate(PUNCH_HOLE | KEEP_SIZE, offset, len) on a file with folios. */
struct gmf_punch_in {
	uint32_t nbindings;
	struct gmf_binding bindings[GMF_MAX_BINDINGS];
	uint64_t pfn_base;	/* pfn of file page 0: page i is pfn_base + i */
	uint32_t nfolios;
	struct gmf_folio folios[GMF_MAX_FOLIOS];
	int64_t offset;		/* bytes, page aligned */
	int64_t len;
	struct gmf_rmp_state rmp;
};

/* Bounds of the get-pfn operation. */
#define GMF_MAX_FAULTS 4
#define GMF_MAX_GETPFN_EVENTS 32

/* A folio of the get-pfn file: a gmf_folio plus its page flags. */
struct gmf_pc_folio {
	uint64_t index;
	uint8_t order;		/* 0 or 9 */
	uint8_t prepared;	/* uptodate, and its RMP entries assigned */
	uint8_t hwpoison;
};

/*
 * kvm_gmem_get_pfn(kvm, slot, gfn, &pfn, &max_order) once per fault, on one
 * guest_memfd whose bindings are the memslots; the page cache holds the
 * folios, file page i is pfn pfn_base + i (a missing folio is allocated
 * there, order 0).  The arch prepare hook is reached as the kernel reaches
 * it: kvm_arch_gmem_prepare() -> kvm_x86_ops.gmem_prepare, the member the
 * C under test registered in its own kvm_x86_ops table.
 */
struct gmf_getpfn_in {
	uint32_t nbindings;
	struct gmf_binding bindings[GMF_MAX_BINDINGS];
	uint32_t slot;		/* faulting memslot: bindings[slot]; >= nbindings:
				 * a guest_memfd slot whose file is gone */
	uint64_t pfn_base;
	uint32_t nfolios;
	struct gmf_pc_folio folios[GMF_MAX_FOLIOS];
	uint8_t snp;		/* SNP guest on an SNP host */
	uint32_t asid;
	uint64_t max_pfn;	/* RMP lookups at or above fail */
	uint32_t nfaults;
	uint64_t gfns[GMF_MAX_FAULTS];
	/*
	 * rmp_given: the RMP before is rmp (its snp_enabled and max_pfn are
	 * snp's and max_pfn's), whatever the folios' prepared flags; else
	 * each prepared folio's entries are what sev_gmem_prepare() left.
	 */
	uint8_t rmp_given;
	struct gmf_rmp_state rmp;
};

struct gmf_getpfn_result {
	int32_t ret;
	uint8_t pfn_set;	/* *pfn written */
	uint64_t pfn;
	uint8_t order_set;	/* *max_order written */
	int32_t max_order;
};

struct gmf_getpfn_out {
	struct gmf_getpfn_result results[GMF_MAX_FAULTS];
	uint32_t nevents;	/* GMEM_PREPARE calls and RMP updates, in order */
	struct gmf_event events[GMF_MAX_GETPFN_EVENTS];
	uint32_t warnings;
	uint8_t overflow;
	uint8_t lock_balanced;	/* mmu_lock released as often as taken */
};

struct gmf_prefault_slot {
	uint64_t base_gfn;
	uint64_t npages;
	uint8_t gmem;		/* bound to guest_memfd */
	uint8_t max_level;	/* PG_LEVEL_4K or PG_LEVEL_2M */
};

/* KVM_PRE_FAULT_MEMORY on a vCPU. */
struct gmf_prefault_in {
	uint32_t vm_type;
	uint8_t pre_fault_allowed;
	uint8_t tdp;
	uint64_t gpa;
	uint64_t size;
	uint64_t flags;
	uint32_t nslots;
	struct gmf_prefault_slot slots[GMF_MAX_SLOTS];
	uint64_t private_start;	/* gfns [private_start, private_end) private */
	uint64_t private_end;
	uint32_t interrupt_after; /* signal pending after N arch calls; 0 = never */
};

struct gmf_prefault_out {
	int64_t ret;
	uint64_t gpa;		/* range as copied back to userspace */
	uint64_t size;
	uint32_t calls;		/* kvm_arch_vcpu_pre_fault_memory() calls */
	uint32_t warnings;
};

struct gmf_file {
	uint32_t fd;
	uint64_t size;		/* i_size in bytes */
	uint8_t is_gmem;
	uint8_t other_vm;
};

/*
 * kvm_gmem_bind(kvm, slot, fd, offset), or its two halves, on a file with
 * existing bindings.
 */
struct gmf_bind_in {
	uint32_t nfiles;
	struct gmf_file files[GMF_MAX_FILES];
	uint32_t nbound;		/* existing bindings of file fd */
	struct gmf_binding bound[GMF_MAX_BINDINGS];
	uint16_t id;
	uint64_t base_gfn;
	uint64_t npages;
	uint32_t fd;
	uint64_t offset;
};

struct gmf_bind_out {
	int32_t ret;
	uint64_t pgoff;		/* slot->gmem.pgoff / .index after the call */
	uint8_t file_set;	/* slot->gmem.file points at the file */
	uint32_t nbound;	/* bindings of the file after the call */
	struct gmf_binding bound[GMF_MAX_BINDINGS];
};

/* Entry points; each returns 0, or -1 if the input exceeds the bounds. */
int gmf_invalidate(const struct gmf_invalidate_in *in, struct gmf_invalidate_out *out);
int gmf_classify(const struct gmf_fault_in *in, struct gmf_fault_out *out);
int gmf_prepare(const struct gmf_prepare_in *in, struct gmf_rmp_out *out);
int gmf_rmp_invalidate(const struct gmf_rmp_invalidate_in *in, struct gmf_rmp_out *out);
int gmf_prefault(const struct gmf_prefault_in *in, struct gmf_prefault_out *out);
int gmf_bind(const struct gmf_bind_in *in, struct gmf_bind_out *out);
/* out->ret is kvm_gmem_punch_hole()'s return; out->max_level is 0. */
/*
 * The unit's KUnit suite (built with GMF_HAVE_KUNIT): failed expectations,
 * with the number run in *expectations; -2 when the unit has no suite.
 */
int gmf_kunit_run(int *expectations);
int gmf_punch_hole(const struct gmf_punch_in *in, struct gmf_rmp_out *out);
int gmf_get_pfn(const struct gmf_getpfn_in *in, struct gmf_getpfn_out *out);

/* Which entry points this object implements (bit per GMF_OP_*). */
#define GMF_OP_INVALIDATE (1u << 0)
#define GMF_OP_CLASSIFY (1u << 1)
#define GMF_OP_PREPARE (1u << 2)
#define GMF_OP_RMP_INVALIDATE (1u << 3)
#define GMF_OP_PREFAULT (1u << 4)
#define GMF_OP_BIND (1u << 5)
#define GMF_OP_PUNCH_HOLE (1u << 6)
#define GMF_OP_GET_PFN (1u << 7)
/*
 * Not an entry point: gmf_classify() runs TDX faults through the unit's
 * own EPT-violation exit (tdx_handle_ept_violation(), 6.16+).
 */
#define GMF_OP_CLASSIFY_TDX (1u << 8)
/*
 * Not an entry point: the unit's kvm_gmem_get_pfn() prepares at every
 * fault, at the folio's head, with no prepared-folio state (mainline after
 * 6.18); the checker asks the model for that contract.
 */
#define GMF_OP_GET_PFN_EVERY_FAULT (1u << 9)
/*
 * Not an entry point: the unit binds in two halves,
 * kvm_gmem_prepare_memory_region() then kvm_gmem_commit_memory_region()
 * (7.2, 6.12.118+); gmf_bind() calls them as __kvm_set_memory_region()
 * does, and the checker asks the model for that contract (a file range
 * bound twice is -EEXIST).
 */
#define GMF_OP_BIND_SPLIT (1u << 10)
/*
 * Not an entry point: the unit's kvm_gmem_get_pfn() has no arch prepare
 * hook (upstream 6.8-6.10), or calls one the model does not cover yet
 * (the in-place conversion series' kvm_arch_gmem_make_private()): the
 * checker asks the model to prepare nothing and compares errnos, pfns and
 * orders.
 */
#define GMF_OP_GET_PFN_NO_HOOK (1u << 11)
uint32_t gmf_ops(void);
uint32_t gmf_abi_version(void);

#endif /* GMF_HARNESS_H */
