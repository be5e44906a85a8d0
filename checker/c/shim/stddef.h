/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * <stddef.h> for C under test, compiled with -nostdinc (see stdint.h): from
 * the compiler's predefined macros and builtins.
 */
#ifndef GMF_SHIM_STDDEF_H
#define GMF_SHIM_STDDEF_H

typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
typedef __WCHAR_TYPE__ wchar_t;

#ifndef NULL
#define NULL ((void *)0)
#endif
#define offsetof(type, member) __builtin_offsetof(type, member)

#endif
