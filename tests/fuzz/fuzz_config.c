/* fuzz_config.c: libFuzzer target for config_load (the input is the file) and reconcile. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "callrouted/config.h"
#include "fuzz_common.h"

/* The file lives in a memfd, opened again by path: no disk, no temp file to clean up. */
static int fz_fd = -1;
static char fz_path[64];
static struct config *fz_base;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char base[] = "database_url = postgresql:///callrouted\n";

	fuzz_setup();
	fz_fd = memfd_create("callrouted-fuzz-config", MFD_CLOEXEC);
	if (fz_fd < 0)
		abort();
	snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
	/* the block a reload compares against */
	if (pwrite(fz_fd, base, sizeof(base) - 1, 0) != (ssize_t)sizeof(base) - 1)
		abort();
	fz_base = config_load(fz_path);
	if (!fz_base)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;

	if (ftruncate(fz_fd, 0) != 0 || (size && pwrite(fz_fd, data, size, 0) != (ssize_t)size))
		abort();
	c = config_load(fz_path);
	if (!c)
		return 0;
	/* what config_load promises of a block it returns */
	if (!c->database_url)
		fuzz_fail("accepted without a database_url");
	if (!c->listen || !c->admin_listen || !c->state_dir || !*c->state_dir ||
		!c->instance_name || !*c->instance_name || !c->vapi_no_agent_message ||
		!c->public_url || !c->provider_ca_file || !c->tls_cert_file || !c->tls_key_file)
		fuzz_fail("accepted with a key unset");
	if (!*c->tls_cert_file != !*c->tls_key_file)
		fuzz_fail("accepted a TLS certificate without its key (or the reverse)");
	if (c->max_body_bytes < 256 || c->max_header_bytes < 1024 || c->request_timeout_ms < 100 ||
		c->keepalive_timeout_ms < 100 || c->max_connections < 1 || c->workers < 0 ||
		c->signature_tolerance_ms < 1000 || c->refresh_interval_ms < 1000 ||
		c->log_level < 0 || c->log_level > 3)
		fuzz_fail("accepted a value out of its bounds");
	/* a reload against it: restart-only keys keep the old values */
	if (!config_reconcile(fz_base, c) &&
		(strcmp(c->listen, fz_base->listen) != 0 || c->workers != fz_base->workers ||
			strcmp(c->state_dir, fz_base->state_dir) != 0))
		fuzz_fail("config_reconcile kept a changed restart-only key");
	config_free(c);
	return 0;
}
