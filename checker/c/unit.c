// SPDX-License-Identifier: GPL-2.0-only
/*
 * One implementation under test as one translation unit:
 *
 *   gcc -shared -fPIC -fvisibility=hidden -DGMF_PROFILE=0|1 \
 *       -DGMF_UNIT='"/abs/path/to/unit.c"' -DGMF_HAVE_OP_INVALIDATE ... \
 *       unit.c shim/shim.c -o impl.so
 *
 * The unit (C under test) sees only the shim; it is included here so the
 * adapters can call its static functions.  Each GMF_HAVE_OP_* macro
 * enables one harness entry point; a disabled one returns -2.
 */

/* The harness entry points are this object's only exports. */
#pragma GCC visibility push(default)
#include "harness.h"
#pragma GCC visibility pop

#include "shim/gmf_kernel.h"

#ifndef GMF_UNIT
#error "compile with -DGMF_UNIT='\"/abs/path/to/unit.c\"'"
#endif
#include GMF_UNIT

#include "adapters/invalidate.c"
#include "adapters/classify.c"
#include "adapters/rmp.c"
#include "adapters/prefault.c"
#include "adapters/bind.c"
#include "adapters/punch.c"
#include "adapters/kunit.c"
#include "adapters/getpfn.c"

#ifndef GMF_HAVE_OP_INVALIDATE
int gmf_invalidate(const struct gmf_invalidate_in *in,
		   struct gmf_invalidate_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_CLASSIFY
int gmf_classify(const struct gmf_fault_in *in, struct gmf_fault_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_PREPARE
int gmf_prepare(const struct gmf_prepare_in *in, struct gmf_rmp_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_RMP_INVALIDATE
int gmf_rmp_invalidate(const struct gmf_rmp_invalidate_in *in,
		       struct gmf_rmp_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_PREFAULT
int gmf_prefault(const struct gmf_prefault_in *in, struct gmf_prefault_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_BIND
int gmf_bind(const struct gmf_bind_in *in, struct gmf_bind_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_PUNCH_HOLE
int gmf_punch_hole(const struct gmf_punch_in *in, struct gmf_rmp_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

#ifndef GMF_HAVE_OP_GET_PFN
int gmf_get_pfn(const struct gmf_getpfn_in *in, struct gmf_getpfn_out *out)
{
	(void)in;
	(void)out;
	return -2;
}
#endif

uint32_t gmf_ops(void)
{
	uint32_t ops = 0;

#ifdef GMF_HAVE_OP_INVALIDATE
	ops |= GMF_OP_INVALIDATE;
#endif
#ifdef GMF_HAVE_OP_CLASSIFY
	ops |= GMF_OP_CLASSIFY;
#endif
#ifdef GMF_HAVE_OP_PREPARE
	ops |= GMF_OP_PREPARE;
#endif
#ifdef GMF_HAVE_OP_RMP_INVALIDATE
	ops |= GMF_OP_RMP_INVALIDATE;
#endif
#ifdef GMF_HAVE_OP_PREFAULT
	ops |= GMF_OP_PREFAULT;
#endif
#ifdef GMF_HAVE_OP_BIND
	ops |= GMF_OP_BIND;
#endif
#ifdef GMF_HAVE_OP_PUNCH_HOLE
	ops |= GMF_OP_PUNCH_HOLE;
#endif
#ifdef GMF_HAVE_OP_GET_PFN
	ops |= GMF_OP_GET_PFN;
#endif
#if defined(GMF_HAVE_OP_CLASSIFY) && defined(GMF_HAVE_TDX_EPT_VIOLATION)
	ops |= GMF_OP_CLASSIFY_TDX;
#endif
#if defined(GMF_HAVE_OP_GET_PFN) && defined(GMF_GET_PFN_EVERY_FAULT)
	ops |= GMF_OP_GET_PFN_EVERY_FAULT;
#endif
#if defined(GMF_HAVE_OP_BIND) && defined(GMF_BIND_SPLIT)
	ops |= GMF_OP_BIND_SPLIT;
#endif
#if defined(GMF_HAVE_OP_GET_PFN) && defined(GMF_GET_PFN_NO_HOOK)
	ops |= GMF_OP_GET_PFN_NO_HOOK;
#endif
	return ops;
}

uint32_t gmf_abi_version(void)
{
	return GMF_ABI_VERSION;
}
