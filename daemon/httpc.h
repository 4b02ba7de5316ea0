/* httpc.h: the asynchronous HTTP(S) client for provider APIs (bufferevent_openssl). */
#ifndef CALLROUTED_HTTPC_H
#define CALLROUTED_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "provider_api.h"

enum httpc_failure {
	HTTPC_OK = 0,  /* an HTTP answer came (any status) */
	HTTPC_TIMEOUT, /* no answer in time */
	HTTPC_CONNECT, /* could not connect, or the connection broke */
	HTTPC_TLS,     /* TLS handshake or certificate/host name verification failed */
	HTTPC_BAD_URL,
};

struct httpc_response {
	enum httpc_failure failure;
	int status;       /* HTTP status when failure == HTTPC_OK */
	const char *body; /* NUL-terminated; valid during the callback */
	size_t len;
	const char *detail; /* what went wrong, for logs and answers (no secrets) */
};

typedef void (*httpc_done_fn)(void *arg, const struct httpc_response *r);

/* TLS context with peer and host name verification; ca_file NULL: the system store. */
bool httpc_setup(struct event_base *base, const char *ca_file) __attribute__((warn_unused_result));
/* Drops every call still waiting for its answer, without callbacks, while the loop still runs:
 * libevent finishes freeing a connection (deferred bufferevent callbacks) in a later turn of the
 * loop, which httpc_cleanup, called after the loop stopped, cannot give it. */
void httpc_abort_all(void);
void httpc_cleanup(void);
/* Send req to base_url (http:// or https://, optional path prefix); done runs exactly once on
 * base's loop (never from within this call). */
bool httpc_request(const char *base_url, const struct papi_request *req, int timeout_s,
	httpc_done_fn done, void *arg) __attribute__((warn_unused_result));

#endif
