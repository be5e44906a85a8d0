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
};

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
};

struct kunit_suite {
	const char *name;
	struct kunit_case *test_cases;
};

#define KUNIT_CASE(fn) { .run_case = fn, .name = #fn }

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
