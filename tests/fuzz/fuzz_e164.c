/* fuzz_e164.c: libFuzzer target for e164_parse (format/re-parse round trip), e164_is_canonical. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "callrouted/e164.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char buf[E164_BUFSIZE], digits[E164_BUFSIZE], *small;
	uint64_t key, again;
	size_t n, i = 0, nd = 0;

	/* canonical: what e164_format writes, "+" then 7..15 digits, the first not 0 */
	if (size < 64) {
		char *z = fuzz_strndup(data, size);
		size_t zl = strlen(z), d = zl > 0 ? strspn(z + 1, "0123456789") : 0;
		bool want = zl >= 8 && zl <= 16 && z[0] == '+' && z[1] != '0' && d == zl - 1;

		if (e164_is_canonical(z) != want)
			fuzz_fail("e164_is_canonical(\"%s\") is %d", z, !want);
		free(z);
	}
	if (!e164_parse(s, size, &key))
		return 0;

	/* a parsed key formats as "+<7..15 digits>" and parses back to itself */
	n = e164_format(key, buf, sizeof(buf));
	if (n < 1 + E164_MIN_DIGITS || n > 1 + E164_MAX_DIGITS || buf[0] != '+' || buf[n] != 0)
		fuzz_fail("e164_format(%llu) gave \"%s\" (%zu)", (unsigned long long)key, buf, n);
	if (!e164_parse(buf, n, &again) || again != key)
		fuzz_fail("\"%s\" does not parse back to %llu", buf, (unsigned long long)key);

	/* the key's digits are the input's digits after the prefix, separators dropped */
	if (size >= 4 && strncasecmp(s, "tel:", 4) == 0)
		i = 4;
	i += s[i] == '+' ? 1 : 2;
	for (; i < size; i++)
		if (s[i] >= '0' && s[i] <= '9') {
			if (nd == E164_MAX_DIGITS)
				fuzz_fail("more than %d digits accepted", E164_MAX_DIGITS);
			digits[nd++] = s[i];
		}
	if (nd != n - 1 || memcmp(digits, buf + 1, nd) != 0)
		fuzz_fail("digits of the input differ from \"%s\"", buf);

	/* a buffer one byte short is refused, not overrun (ASan watches its end) */
	small = malloc(n);
	if (!small)
		abort();
	if (e164_format(key, small, n) != 0)
		fuzz_fail("e164_format wrote %zu bytes into %zu", n + 1, n);
	free(small);
	return 0;
}
