/* fuzz_wire.c: libFuzzer target for the webhook listener's HTTP/1.1 server (wire.c). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz_common.h"
#include "webhook.h"
#include "wire.h"

/*
 * wire.c's parser is static and works on sockets, so this drives a real wire_server: it
 * listens on an abstract AF_UNIX socket, a client connects per input, writes the input
 * (byte 0 picks how it is cut into writes: 1..15 bytes, or 16 x byte 0), shuts its side
 * down and reads every answer until the server closes.  One event loop, one thread: each
 * loop pass is non-blocking.  Handlers: /v1/webhooks/... goes to webhook_handle (the Retell
 * snapshot of fuzz_common.c, no journal), /defer... answers on a later loop pass (a deferred
 * answer, as call events have), anything else echoes what was parsed.
 * Properties: the server closes the connection once the client is done (no livelock, no
 * connection left open), every parsed request is well formed.
 */

#define FZ_SPINS_PER_WRITE 64

static struct event_base *fz_base;
static struct sockaddr_un fz_addr;
static socklen_t fz_addrlen;
static int fz_pending; /* deferred answers not yet given */

static const struct wire_limits fz_limits = {
	.max_body_bytes = 2048,
	.max_header_bytes = 1024,
	.request_timeout_ms = 60000, /* timers never fire within one input */
	.idle_timeout_ms = 60000,
	.max_connections = 16,
};

static void
fz_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	static const char body[] = "{\"deferred\":true}";

	fz_pending--;
	wire_reply(arg, 200, "application/json", body, sizeof(body) - 1, NULL);
}

static bool
fz_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Check a parsed request and fold every byte of it into a sum (ASan sees each read). */
static unsigned
fz_check_req(const struct wire_req *r)
{
	unsigned sum = (unsigned)r->method;

	if (!r->path || r->path[0] != '/')
		fuzz_fail("request path \"%s\"", r->path ? r->path : "(null)");
	for (const char *p = r->path; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?')
			fuzz_fail("request path with byte 0x%02x", (unsigned char)*p);
	for (const char *p = r->query; p && *p; p++)
		sum += (unsigned char)*p;
	if (r->nhdr < 0 || r->nhdr > WIRE_MAX_HEADERS)
		fuzz_fail("%d headers", r->nhdr);
	for (int i = 0; i < r->nhdr; i++) {
		const char *n = r->hdr_name[i], *v = r->hdr_value[i];

		if (!*n)
			fuzz_fail("empty header name");
		for (; *n; n++)
			if (!fz_tchar((unsigned char)*n))
				fuzz_fail("header name with byte 0x%02x", (unsigned char)*n);
		for (; *v; v++) {
			if (*v == '\r' || *v == '\n')
				fuzz_fail("header value with CR or LF");
			sum += (unsigned char)*v;
		}
		if (wire_header(r, r->hdr_name[i]) == NULL)
			fuzz_fail("header %s not found by its name", r->hdr_name[i]);
	}
	if (r->body_len > fz_limits.max_body_bytes)
		fuzz_fail("a body of %zu bytes passed the %zu limit", r->body_len,
			fz_limits.max_body_bytes);
	if (r->body_len && !r->body)
		fuzz_fail("body_len without a body");
	for (size_t i = 0; i < r->body_len; i++)
		sum += (unsigned char)r->body[i];
	return sum;
}

static void
fz_handler(struct wire_req *r, void *arg)
{
	static const struct timeval now = { 0, 0 };
	char buf[128];
	int n;

	n = snprintf(buf, sizeof(buf), "%d %d %zu %u\n", (int)r->method, r->nhdr, r->body_len,
		fz_check_req(r));
	if (strncmp(r->path, "/v1/webhooks/", 13) == 0) {
		webhook_handle(r, fuzz_config(), fuzz_snapshot(PROVIDER_RETELL), NULL);
		return;
	}
	if (strncmp(r->path, "/defer", 6) == 0 &&
		event_base_once(fz_base, -1, EV_TIMEOUT, fz_deferred_cb, r, &now) == 0) {
		r->deferred = true;
		fz_pending++;
		return;
	}
	if (r->method == WIRE_OTHER)
		fuzz_fail("a request with an unknown method reached the handler");
	wire_reply(r, 200, "text/plain", buf, (size_t)n,
		r->method == WIRE_OPTIONS ? "Allow: POST\r\n" : NULL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int lfd;

	fuzz_setup();
	fuzz_snapshot(PROVIDER_RETELL);
	fz_base = event_base_new();
	if (!fz_base)
		abort();
	fz_addr.sun_family = AF_UNIX;
	/* abstract namespace: nothing on disk, one per process */
	snprintf(fz_addr.sun_path + 1, sizeof(fz_addr.sun_path) - 1, "callrouted-fuzz-wire-%d",
		(int)getpid());
	fz_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				 strlen(fz_addr.sun_path + 1));
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&fz_addr, fz_addrlen) != 0 ||
		listen(lfd, 16) != 0)
		abort();
	if (!wire_server_new(fz_base, lfd, WIRE_WEBHOOK, &fz_limits, fz_handler, NULL))
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_stats st;
	size_t chunk, off = 0, spins = 0, max_spins;
	bool shut = false, eof = false;
	char sink[16384];
	int cfd;

	if (size == 0)
		return 0;
	chunk = data[0] < 16 ? (size_t)data[0] + 1 : (size_t)data[0] * 16;
	data++, size--;
	if (size / chunk > 512)
		chunk = size / 512 + 1;
	max_spins = (size / chunk + 1) * FZ_SPINS_PER_WRITE + 256;
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&fz_addr, fz_addrlen) != 0)
		abort();
	while (!eof || fz_pending > 0) {
		ssize_t n;

		if (++spins > max_spins)
			fuzz_fail(
				"the server made no progress in %zu loop passes (%zu of %zu bytes "
				"written)",
				spins, off, size);
		if (!shut && off < size) {
			n = write(cfd, data + off, size - off < chunk ? size - off : chunk);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				shut = true; /* the server closed early (an error answer) */
		}
		if (!shut && off == size) {
			shutdown(cfd, SHUT_WR);
			shut = true;
		}
		/* one pass: with EVLOOP_NONBLOCK alone libevent goes on while callbacks keep
		 * re-activating, and a server that spins would never return here */
		if (event_base_loop(fz_base, EVLOOP_ONCE | EVLOOP_NONBLOCK) < 0)
			abort();
		while ((n = read(cfd, sink, sizeof(sink))) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			eof = true;
	}
	close(cfd);
	wire_get_stats(WIRE_WEBHOOK, &st);
	if (st.open != 0)
		fuzz_fail("%llu connection(s) still open after the client left", st.open);
	return 0;
}
