/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The part of KUnit a generated gmemforge suite uses: expectations count
 * failures instead of reporting them, and kunit_test_suite() makes the
 * suite the one gmf_kunit_run() runs.
 */
#ifndef GMF_KUNIT_TEST_H
#define GMF_KUNIT_TEST_H

struct kunit {
	int failures;
	int expectations;
	/* The current parameter of a KUNIT_CASE_PARAM case. */
	const void *param_value;
};

#define KUNIT_PARAM_DESC_SIZE 128

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
	const void *(*generate_params)(const void *prev, char *desc);
};

struct kunit_suite {
	const char *name;
	struct kunit_case *test_cases;
};

#define KUNIT_CASE(fn) { .run_case = fn, .name = #fn }
#define KUNIT_CASE_PARAM(fn, gen) \
	{ .run_case = fn, .name = #fn, .generate_params = gen }

/*
 * name##_gen_params(): each element of array in turn (NULL after the
 * last), with get_desc() naming it, as the kernel's KUNIT_ARRAY_PARAM().
 */
#define KUNIT_ARRAY_PARAM(name, array, get_desc)				\
	static const void *name##_gen_params(const void *prev, char *desc)	\
	{									\
		typeof((array)[0]) *__next = prev ?				\
			((typeof(__next))prev) + 1 : (array);			\
		void (*__get_desc)(typeof(__next), char *) = get_desc;		\
		if (__next - (array) >= (long)ARRAY_SIZE(array))		\
			return NULL;						\
		if (__get_desc)							\
			__get_desc(__next, desc);				\
		return __next;							\
	}

/* The kernel's strscpy(), enough for a case description. */
static inline long strscpy(char *dst, const char *src, unsigned long size)
{
	unsigned long i;

	if (!size)
		return -7;
	for (i = 0; i + 1 < size && src[i]; i++)
		dst[i] = src[i];
	dst[i] = 0;
	return src[i] ? -7 : (long)i;
}

#define KUNIT_EXPECT_EQ(test, left, right) do {			\
	(test)->expectations++;					\
	if ((left) != (right))					\
		(test)->failures++;				\
} while (0)

#define KUNIT_ASSERT_NOT_NULL(test, ptr) do {			\
	(test)->expectations++;					\
	if (!(ptr)) {						\
		(test)->failures++;				\
		return;						\
	}							\
} while (0)

/* Test-lifetime memory: the shim never frees it (tests are short). */
static inline void *kunit_kzalloc(struct kunit *test, size_t size, int gfp)
{
	(void)test;
	(void)gfp;
	return __builtin_calloc(1, size);
}

#define kunit_test_suite(suite) \
	struct kunit_suite *gmf_kunit_suite = &(suite)

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#endif /* GMF_KUNIT_TEST_H */
