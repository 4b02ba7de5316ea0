/* wire.h: the daemon's HTTP/1.1 server on raw sockets (webhook workers, admin listener). */
#ifndef CALLROUTED_WIRE_H
#define CALLROUTED_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "stats.h"

enum wire_method {
	WIRE_GET,
	WIRE_HEAD,
	WIRE_POST,
	WIRE_PUT,
	WIRE_DELETE,
	WIRE_PATCH,
	WIRE_OPTIONS,
	WIRE_OTHER
};

#define WIRE_MAX_HEADERS 64

struct wire_conn;

/* One parsed request.  Strings point into the connection's buffer, NUL-terminated, valid
 * until the request is answered. */
struct wire_req {
	struct wire_conn *conn;
	enum wire_method method;
	const char *path;  /* without the query string */
	const char *query; /* NULL if none */
	const char *body;
	size_t body_len;
	int nhdr;
	const char *hdr_name[WIRE_MAX_HEADERS];
	const char *hdr_value[WIRE_MAX_HEADERS];
	size_t hdr_len[WIRE_MAX_HEADERS]; /* strlen(hdr_name[i]): a cheap first test */
	bool keep_alive;
	bool deferred; /* the handler answers later (wire_reply on this loop) */
};

/* Called for each complete request; it answers with wire_reply now, or sets deferred and
 * answers later from a callback of the same loop. */
typedef void (*wire_handler_fn)(struct wire_req *r, void *arg);

struct wire_limits {
	size_t max_body_bytes;
	size_t max_header_bytes;
	int request_timeout_ms; /* headers and body must arrive within this */
	int idle_timeout_ms;    /* keep-alive connection with no request */
	int max_connections;    /* open at once, every server of the group together */
};

/* Servers come in groups: the webhook workers together, and the admin listener.  A group
 * has its own counters and its own connection cap (max_connections counts the group). */
enum wire_group { WIRE_WEBHOOK, WIRE_ADMIN, WIRE_GROUPS };

/* Counters of every server of a group (any thread reads them). */
struct wire_stats {
	unsigned long long accepted, refused, open, request_timeouts, idle_closes, too_large,
		headers_too_large, bad_requests, tls_handshake_failures, accept_emfile,
		accept_enfile, accept_other,
		accept_reserve; /* refused (503): the last descriptors are the daemon's own */
};
void wire_get_stats(enum wire_group g, struct wire_stats *st);
/* The HTTP server figures of group g, through add (scrape.c): callrouted_http_* for the
 * webhook listener, callrouted_admin_http_* for the admin listener. */
void wire_stats(enum wire_group g, stat_fn add, void *ctx);

struct wire_server;

/* A server of group on base, accepting from fd (listening, non-blocking, owned from now on).
 * Only the webhook group speaks TLS (while tls_enabled()). */
struct wire_server *wire_server_new(struct event_base *base, int fd, enum wire_group group,
	const struct wire_limits *lim, wire_handler_fn handler, void *arg);
void wire_server_set_limits(struct wire_server *s, const struct wire_limits *lim);
/* Stop accepting (the listening socket is closed); connections go on. */
void wire_server_stop_accepting(struct wire_server *s);
/* Close every connection and free the server (its loop has stopped). */
void wire_server_free(struct wire_server *s);

/* Case-insensitive header look-up; NULL if absent. */
const char *wire_header(const struct wire_req *r, const char *name);
/* Answer: status, Content-Type, body; extra_headers ("Allow: POST\r\n") may be NULL. */
void wire_reply(struct wire_req *r, int status, const char *content_type, const void *body,
	size_t len, const char *extra_headers);

/* A query string decoded: key=value pairs joined by '&', percent-escapes and '+' decoded.
 * Strict: a pair without '=', an empty key, a bad escape, %00, a repeated key or more than
 * WIRE_MAX_PARAMS pairs make it unreadable (false).  NULL or "" is an empty query. */
#define WIRE_MAX_PARAMS 16
struct wire_query {
	int n;
	char *key[WIRE_MAX_PARAMS];
	char *value[WIRE_MAX_PARAMS];
	char *buf;
};
bool wire_query_parse(const char *q, struct wire_query *out) __attribute__((warn_unused_result));
const char *wire_query_get(const struct wire_query *q, const char *key);
void wire_query_clear(struct wire_query *q);

/* A listening TCP socket on "host:port" (SO_REUSEADDR; with shared, SO_REUSEPORT for our own
 * workers); -1 on error, logged.  The first listen of an address takes the process's lock on
 * it: an address held by another daemon (named by pid) or another process is refused. */
int wire_listen(const char *addr, bool shared) __attribute__((warn_unused_result));

/* Raise the soft RLIMIT_NOFILE to the hard limit; false (msg says why) if needed descriptors
 * are still above it, or it cannot be read.  msg says the limit otherwise. */
bool wire_raise_nofile(size_t needed, char *msg, size_t len) __attribute__((warn_unused_result));

#endif
