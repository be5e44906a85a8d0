// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_prepare() and gmf_rmp_invalidate(): the SEV-SNP guest_memfd hooks
 * on the shim's RMP table.  Neither runs under mmu_lock (the callers in
 * guest_memfd.c do not hold it), so a recorded event with mmu_lock held
 * can only come from the unit taking the lock itself.
 */
#if defined(GMF_HAVE_OP_PREPARE) || defined(GMF_HAVE_OP_RMP_INVALIDATE)
#include "common.h"
#endif

#ifdef GMF_HAVE_OP_PREPARE
int gmf_prepare(const struct gmf_prepare_in *in, struct gmf_rmp_out *out)
{
	struct kvm_svm *vm = &gmf_world.vm;
	int ret, level;

	gmf_shim_reset();
	if (gmf_rmp_load(&in->rmp))
		return -1;
	gmf_setup_vm(in->snp_guest ? GMF_VM_SNP : GMF_VM_DEFAULT);
	vm->sev_info.asid = in->asid;

	ret = sev_gmem_prepare(&vm->kvm, in->pfn, in->gfn, in->max_order);
	/* The level the MMU asks for: through the unit's vendor table. */
	gmf_x86_ops_register();
#ifdef GMF_GMEM_MAX_LEVEL
	/*
	 * The SNP series v10-v11: kvm_faultin_pfn_private() asks
	 * .gmem_max_level only after kvm_gmem_get_pfn(), and so the prepare
	 * hook, succeeded, handing in the level it would map at; the hook
	 * lowers it to the RMP entry's or fails the fault.  Asked with a level
	 * above any RMP entry's, one left alone is no limit (0, as
	 * private_max_mapping_level says it); a failure is its -errno.
	 */
	if (ret) {
		level = GMF_LEVEL_NOT_ASKED;
	} else {
		u8 want = PG_LEVEL_1G;
		int r = kvm_x86_call(gmem_max_level)(&vm->kvm, in->pfn, in->gfn,
						     &want);

		level = r ? r : want == PG_LEVEL_1G ? 0 : want;
	}
#else
	level = kvm_x86_call(private_max_mapping_level)(&vm->kvm, in->pfn);
#endif
	gmf_rmp_out_fill(out, ret, level);
	return 0;
}
#endif /* GMF_HAVE_OP_PREPARE */

#ifdef GMF_HAVE_OP_RMP_INVALIDATE
int gmf_rmp_invalidate(const struct gmf_rmp_invalidate_in *in,
		       struct gmf_rmp_out *out)
{
	gmf_shim_reset();
	if (gmf_rmp_load(&in->rmp))
		return -1;

	sev_gmem_invalidate(in->start, in->end);
	/* No pfn of interest and no VM: the level hook is not asked. */
	gmf_rmp_out_fill(out, 0, 0);
	return 0;
}
#endif /* GMF_HAVE_OP_RMP_INVALIDATE */
