// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_invalidate(): kvm_gmem_invalidate_begin() then _end() on one
 * guest_memfd whose bindings are the harness's memslots.
 *
 * Hot path (millions of vectors per second): no RMP, no big memsets.
 */
#ifdef GMF_HAVE_OP_INVALIDATE
#include "common.h"

int gmf_invalidate(const struct gmf_invalidate_in *in,
		   struct gmf_invalidate_out *out)
{
	struct kvm *kvm = &gmf_world.vm.kvm;
	struct kvm_gmem *gmem = &gmf_world.gmem[0];
	uint32_t n;

	if (in->nbindings > GMF_MAX_BINDINGS)
		return -1;

	gmf_shim_reset();
	gmem->kvm = kvm;
	if (gmf_gmem_bind_slots(gmem, &gmf_world.files[0], in->bindings,
				in->nbindings))
		return -1;

#if defined(GMF_GMEM_INVALIDATE_START)
	/* The in-place conversion series: the per-file workers' _start name. */
	__kvm_gmem_invalidate_start(gmem, in->start, in->end, KVM_FILTER_PRIVATE);
	__kvm_gmem_invalidate_end(gmem, in->start, in->end);
#elif defined(GMF_GMEM_PER_INODE)
	/* 6.18+: the per-file workers, with the filter the inode would pick. */
	__kvm_gmem_invalidate_begin(gmem, in->start, in->end, KVM_FILTER_PRIVATE);
	__kvm_gmem_invalidate_end(gmem, in->start, in->end);
#elif !GMF_GMEM_INVALIDATE_TAKES_KVM
	kvm_gmem_invalidate_begin(gmem, in->start, in->end);
	kvm_gmem_invalidate_end(gmem, in->start, in->end);
#else
	kvm_gmem_invalidate_begin(kvm, gmem, in->start, in->end);
	kvm_gmem_invalidate_end(kvm, gmem, in->start, in->end);
#endif

	n = gmf_rec.nranges;
	out->nranges = n;
	__builtin_memcpy(out->ranges, gmf_rec.ranges, n * sizeof(out->ranges[0]));
	__builtin_memset(&out->ranges[n], 0,
			 (GMF_MAX_RANGES - n) * sizeof(out->ranges[0]));
	out->invalidate_begin = gmf_rec.invalidate_begin;
	out->invalidate_end = gmf_rec.invalidate_end;
	out->range_add = gmf_rec.range_add;
	out->flushes = gmf_rec.flushes;
	out->warnings = gmf_rec.warnings;
	out->lock_balanced = gmf_rec.lock_depth == 0 && !gmf_rec.lock_misuse;
	out->overflow = gmf_rec.ranges_overflow;
	return 0;
}
#endif /* GMF_HAVE_OP_INVALIDATE */
