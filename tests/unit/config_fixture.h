/* config_fixture.h: what test_config.c and test_config_reload.c share: the shipped file's text. */
#ifndef CALLROUTED_TEST_CONFIG_FIXTURE_H
#define CALLROUTED_TEST_CONFIG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

/* (Include after cmocka.h.) conf/callrouted.conf with a '\n' put before it (so "\nkey =" finds the
 * first line too); the caller frees it. */
static inline char *
conf_file_text(void)
{
	char path[1024], *text;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/conf/callrouted.conf", CALLROUTED_SOURCE_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)size + 2);
	assert_non_null(text);
	text[0] = '\n';
	assert_int_equal(fread(text + 1, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	return text;
}

/* Write text as the file at path (a test's configuration file). */
static inline void
write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

#endif
