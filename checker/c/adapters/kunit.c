// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_kunit_run(): every case of the unit's KUnit suite (the unit includes
 * one when built with GMF_HAVE_KUNIT); returns the failed expectations.
 */
#ifdef GMF_HAVE_KUNIT
int gmf_kunit_run(int *expectations)
{
	struct kunit test = { 0 };
	struct kunit_case *c;
	char desc[KUNIT_PARAM_DESC_SIZE];
	const void *p;

	for (c = gmf_kunit_suite->test_cases; c->run_case; c++) {
		if (!c->generate_params) {
			c->run_case(&test);
			continue;
		}
		for (p = c->generate_params(NULL, desc); p;
		     p = c->generate_params(p, desc)) {
			test.param_value = p;
			c->run_case(&test);
		}
	}
	*expectations = test.expectations;
	return test.failures;
}
#else
int gmf_kunit_run(int *expectations)
{
	*expectations = 0;
	return -2;
}
#endif
