/* test_bland_blocks.c: which blocked_callers prefixes can be pushed to Bland (whole numbers). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include "bland_blocks.h"

static void
test_pushable(void **state)
{
	static const char *const yes[] = {
		"+14155550123",  /* +1: exactly 11 digits */
		"+442071838750", /* outside +1: 7 to 15 digits are taken as a whole number */
		"+4930123456", "+861012345678", "+3312345", /* 7 digits */
		"+999123456789012",                         /* 15 digits */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(bland_blocks_pushable(yes[i]));
}

static void
test_not_pushable(void **state)
{
	static const char *const no[] = {
		"+1",                /* a country code */
		"+1415",             /* an area code */
		"+1415555",          /* a prefix */
		"+141555501",        /* +1: 9 digits after the country code */
		"+1415555012",       /* +1: 10 digits in all: still a prefix */
		"+141555501234",     /* +1: 12 digits: no such number */
		"+44",               /* a country code */
		"+442071",           /* 6 digits: shorter than any number */
		"+0441234567",       /* a leading zero */
		"+9991234567890123", /* 16 digits */
		"14155550123",       /* no + */
		"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(bland_blocks_pushable(no[i]));
	assert_false(bland_blocks_pushable(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pushable),
		cmocka_unit_test(test_not_pushable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
