/* wire.h: the webhook listener's HTTP/1.1 server on raw sockets (one per worker loop). */
#ifndef CALLROUTED_WIRE_H
#define CALLROUTED_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

enum wire_method { WIRE_GET, WIRE_HEAD, WIRE_POST, WIRE_PUT, WIRE_DELETE, WIRE_PATCH,
	WIRE_OPTIONS, WIRE_OTHER };

#define WIRE_MAX_HEADERS 64

struct wire_conn;

/* One parsed request.  Strings point into the connection's buffer, NUL-terminated, valid
 * until the request is answered. */
struct wire_req {
	struct wire_conn *conn;
	enum wire_method method;
	const char *path;          /* without the query string */
	const char *query;         /* NULL if none */
	const char *body;
	size_t body_len;
	int nhdr;
	const char *hdr_name[WIRE_MAX_HEADERS];
	const char *hdr_value[WIRE_MAX_HEADERS];
	bool keep_alive;
	bool deferred;             /* the handler answers later (wire_reply on this loop) */
};

/* Called for each complete request; it answers with wire_reply now, or sets deferred and
 * answers later from a callback of the same loop. */
typedef void (*wire_handler_fn)(struct wire_req *r, void *arg);

struct wire_limits {
	size_t max_body_bytes;
	size_t max_header_bytes;
	int request_timeout_ms;    /* headers and body must arrive within this */
	int idle_timeout_ms;       /* keep-alive connection with no request */
	int max_connections;       /* open at once, every server of the process together */
};

/* Counters of every server of the process (any thread reads them). */
struct wire_stats {
	unsigned long long accepted, refused, open, request_timeouts, idle_closes, too_large,
		headers_too_large, bad_requests, tls_handshake_failures;
};
void wire_get_stats(struct wire_stats *st);

struct wire_server;

/* A server on base, accepting from fd (listening, non-blocking, owned from now on). */
struct wire_server *wire_server_new(struct event_base *base, int fd,
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

/* A listening TCP socket on "host:port" with SO_REUSEPORT (and SO_REUSEADDR); -1 on error. */
int wire_listen(const char *addr);

#endif
