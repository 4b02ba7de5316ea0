/* wire.c: the daemon's HTTP/1.1 server on raw sockets (webhook workers, admin listener). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "callrouted/log.h"
#include "tls.h"
#include "wire.h"

/*
 * Why not evhttp: with it the webhook path spent most of its time in evhttp's own
 * allocations, header formatting (printf) and epoll_ctl churn from its bufferevents (a perf
 * profile of the routing webhook showed libevent + libc + kernel at 87%, our work at 12%).
 * This server does what a webhook endpoint needs and no more: one read buffer per connection
 * parsed in place, responses written straight to the socket (the write event is armed only
 * when the kernel buffer is full), keep-alive and pipelining, Content-Length and chunked
 * bodies, Expect: 100-continue, limits on header and body size, a deadline for a request to
 * arrive and an idle timeout.  One request per connection is handled at a time; a deferred
 * answer (a call event waiting for its fsync) holds the connection's next request back.
 */

#define WIRE_READ_CHUNK 16384
#define WIRE_ACCEPT_BATCH 64
#define WIRE_DISCARD_MAX (64u << 20) /* what we read and drop after a 413 before closing */
#define WIRE_DISCARD_IDLE_MS 1000    /* ... while the client keeps sending */
#define WIRE_CHUNK_LINE_MAX 256      /* a chunk-size line with its extensions */
#define WIRE_ACCEPT_PAUSE_MS 250     /* no accepting after accept ran out of descriptors */
#define WIRE_FD_RESERVE 32           /* descriptors connections leave to the rest of the daemon */

enum wire_state { C_IDLE, C_READING, C_HANDLING, C_DISCARD };

struct wire_conn {
	struct wire_server *srv;
	struct wire_conn *next, *prev;
	int fd;
	SSL *ssl;                  /* NULL: plain TCP */
	bool ssl_read_wants_write; /* an SSL_read needs the socket writable (handshake) */
	enum wire_state state;
	struct event *rev, *wev, *tev;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	char *chunked;  /* decoded chunked body */
	size_t req_len; /* bytes of in the current request takes */
	size_t discard_left;
	bool sent_continue;
	bool close_after;   /* close once the output is written */
	bool close_pending; /* closing asked for inside wire_process: done on its way out */
	bool zombie;        /* socket closed while an answer was deferred */
	bool processing;    /* inside wire_process: closing waits until it returns */
	bool head_done;     /* the request's head is parsed (in place) */
	bool timer_armed;
	bool rev_on, wev_on; /* the read and write events are added (no lock taken to re-add) */
	bool dirty;          /* on the server's list of answers written at the loop's turn */
	struct wire_conn *dnext;
	int64_t deadline_ms; /* when the connection's timer really expires (monotonic, ms) */
	int64_t armed_ms;    /* when the armed timer fires (<= deadline_ms) */
	bool te_chunked;
	size_t head_len, clen;
	struct wire_req req;
};

struct wire_server {
	struct event_base *base;
	int lfd;
	struct event *accept_ev;
	struct wire_limits lim;
	struct wire_group_stats *st;
	enum wire_group group;
	struct event *resume_ev; /* accepting again after running out of descriptors */
	wire_handler_fn handler;
	void *arg;
	struct wire_conn *conns;
	struct wire_conn *dirty; /* answers formatted this turn of the loop, not yet written */
	struct event *flush_ev;  /* active while dirty is not empty: runs after the turn's reads */
	char date[40];
	time_t date_at;
};

/* The counters of a group of servers (the webhook workers together; the admin listener). */
struct wire_group_stats {
	_Atomic unsigned long long accepted, refused, request_timeouts, idle_closes, too_large,
		headers_too_large, bad_requests, tls_handshake_failures, accept_emfile,
		accept_enfile, accept_other, accept_reserve;
	_Atomic int open;
};

static struct wire_group_stats wire_groups[WIRE_GROUPS];

void
wire_get_stats(enum wire_group g, struct wire_stats *st)
{
	struct wire_group_stats *gs = &wire_groups[g];

	st->accepted = atomic_load(&gs->accepted);
	st->refused = atomic_load(&gs->refused);
	st->open = (unsigned long long)atomic_load(&gs->open);
	st->request_timeouts = atomic_load(&gs->request_timeouts);
	st->idle_closes = atomic_load(&gs->idle_closes);
	st->too_large = atomic_load(&gs->too_large);
	st->headers_too_large = atomic_load(&gs->headers_too_large);
	st->bad_requests = atomic_load(&gs->bad_requests);
	st->tls_handshake_failures = atomic_load(&gs->tls_handshake_failures);
	st->accept_emfile = atomic_load(&gs->accept_emfile);
	st->accept_enfile = atomic_load(&gs->accept_enfile);
	st->accept_other = atomic_load(&gs->accept_other);
	st->accept_reserve = atomic_load(&gs->accept_reserve);
}

/* TLS: the webhook listener while tls_enabled(); the admin listener is plain HTTP. */
static bool
wire_tls(const struct wire_server *s)
{
	return s->group == WIRE_WEBHOOK && tls_enabled();
}

static void wire_process(struct wire_conn *c);
static bool wire_flush(struct wire_conn *c);
static void wire_read_cb(evutil_socket_t fd, short what, void *arg);

/* The read and write events added or not, by flag: a request costs no libevent call (and no
 * base lock) for an event already in the state wanted. */
static void
wire_rev_add(struct wire_conn *c)
{
	if (!c->rev_on && event_add(c->rev, NULL) == 0)
		c->rev_on = true;
}

static void
wire_rev_del(struct wire_conn *c)
{
	if (c->rev_on) {
		event_del(c->rev);
		c->rev_on = false;
	}
}

static void
wire_wev_add(struct wire_conn *c)
{
	if (!c->wev_on && event_add(c->wev, NULL) == 0)
		c->wev_on = true;
}

static void
wire_wev_del(struct wire_conn *c)
{
	if (c->wev_on) {
		event_del(c->wev);
		c->wev_on = false;
	}
}

/* read/write over TCP or TLS: > 0 bytes, 0 end of stream, -1 with errno (EAGAIN: not now). */
static ssize_t
wire_io(struct wire_conn *c, void *buf, size_t n, bool writing)
{
	int r, err;

	if (!c->ssl)
		return writing ? write(c->fd, buf, n) : read(c->fd, buf, n);
	ERR_clear_error();
	r = writing ? SSL_write(c->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n)) :
		      SSL_read(c->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	err = SSL_get_error(c->ssl, r);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		/* (re)handshake output pending: the write event carries it on */
		if (!writing)
			c->ssl_read_wants_write = true;
		wire_wev_add(c);
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (r == 0 || errno == 0)
			return 0;
		return -1;
	default:
		if (!SSL_is_init_finished(c->ssl))
			atomic_fetch_add(&c->srv->st->tls_handshake_failures, 1);
		errno = EPROTO;
		return -1;
	}
}

/* ------------------------------------------------------------------------------------------ */

/*
 * One daemon per listen address.  SO_REUSEPORT lets our own workers share the port, but it
 * would as well let a second daemon (same user) share it silently, each getting a part of
 * the connections.  So before the first bind of an address the process takes a lock only one
 * process can hold, which the kernel drops when it dies: an abstract AF_UNIX socket named
 * "callrouted:listen:<host>:<port>", bound and listening (abstract names are per network
 * namespace, as ports are).  A second daemon fails to bind it, connects to it and names the
 * holder from SO_PEERCRED (the connection is never accepted: the backlog holds a few).  A
 * plain bind without SO_REUSEPORT then detects a holder that is not a callrouted.
 */
#define WIRE_LOCKS 8

static struct {
	char name[96];
	int fd;
} wire_locks[WIRE_LOCKS];
static int wire_nlocks;

/* "1.2.3.4:80" or "[::1]:80": one name per address however it was written */
static bool
wire_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
			return false;
		n = snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
			return false;
		n = snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		return false;
	}
	return n > 0 && (size_t)n < len;
}

static bool
wire_lock_address(const struct sockaddr *sa, socklen_t salen, const char *addr)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char name[96], where[80];
	socklen_t unlen;
	int fd = -1, probe = -1, one = 1, n;

	if (!wire_format_addr(sa, where, sizeof(where)))
		snprintf(where, sizeof(where), "%s", addr);
	n = snprintf(name, sizeof(name), "callrouted:listen:%s", where);
	if (n < 0 || (size_t)n >= sizeof(name) || (size_t)n + 1 > sizeof(un.sun_path)) {
		log_error("wire: listen address \"%s\" is too long", addr);
		return false;
	}
	for (int i = 0; i < wire_nlocks; i++)
		if (strcmp(wire_locks[i].name, name) == 0)
			return true; /* ours: another worker's socket on the same address */
	if (wire_nlocks == WIRE_LOCKS) {
		log_error("wire: too many listen addresses");
		return false;
	}
	memcpy(un.sun_path + 1, name, (size_t)n); /* sun_path[0] = 0: the abstract namespace */
	unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("wire: could not create the lock socket of %s: %s", addr,
			strerror(errno));
		return false;
	}
	if (bind(fd, (struct sockaddr *)&un, unlen) != 0) {
		struct ucred cred = { 0 };
		socklen_t cl = sizeof(cred);
		int err = errno;

		close(fd);
		if (err != EADDRINUSE) {
			log_error("wire: could not bind the lock socket of %s: %s", addr,
				strerror(err));
			return false;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, unlen) == 0 &&
			getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid > 0)
			log_error(
				"wire: %s is in use by another callrouted (pid %ld): one daemon per "
				"listen address",
				addr, (long)cred.pid);
		else
			log_error(
				"wire: %s is in use by another callrouted (pid unknown): one daemon "
				"per listen address",
				addr);
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (listen(fd, 16) != 0) {
		log_error("wire: could not listen on the lock socket of %s: %s", addr,
			strerror(errno));
		close(fd);
		return false;
	}
	/* a holder that is not one of us: a plain bind (no SO_REUSEPORT) fails beside it */
	probe = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0 || setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		bind(probe, sa, salen) != 0) {
		int err = errno;

		if (err == EADDRINUSE)
			log_error("wire: %s is in use by another process (not a callrouted of this "
				  "network namespace)",
				addr);
		else
			log_error("wire: could not listen on %s: %s", addr, strerror(err));
		if (probe >= 0)
			close(probe);
		close(fd);
		return false;
	}
	close(probe);
	/* held until the process exits (the kernel closes it) */
	snprintf(wire_locks[wire_nlocks].name, sizeof(wire_locks[0].name), "%s", name);
	wire_locks[wire_nlocks++].fd = fd;
	return true;
}

int
wire_listen(const char *addr, bool shared)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), fd, one = 1;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("wire: \"%s\" is not an address:port", addr);
		return -1;
	}
	if (!wire_lock_address((struct sockaddr *)&ss, (socklen_t)sslen, addr))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		(shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
		bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 1024) != 0) {
		log_error("wire: could not listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * Descriptors: raise the soft RLIMIT_NOFILE to the hard one (the soft default, 1024, is far
 * below max_connections), and say when what the daemon may need is still above it.  A
 * warning, not a refusal: the daemon runs; a connection that would take one of the last
 * WIRE_FD_RESERVE descriptors is refused (503), and when accept runs out of descriptors all
 * the same it stops accepting for a while and serves what is open (wire_accept_failed).
 */
bool
wire_raise_nofile(size_t needed, char *msg, size_t len)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(msg, len, "could not read RLIMIT_NOFILE: %s", strerror(errno));
		return false;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max;
		if (up.rlim_cur == RLIM_INFINITY)
			up.rlim_cur = 1 << 20; /* the kernel's default nr_open */
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = up.rlim_cur;
	}
	if (rl.rlim_cur != RLIM_INFINITY && needed > rl.rlim_cur) {
		snprintf(msg, len,
			"the descriptor limit (RLIMIT_NOFILE %llu, hard %llu) is below "
			"the %zu the configuration may need (max_connections, admin_max_connections "
			"and the daemon's own); connections beyond it are refused (503)",
			(unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, needed);
		return false;
	}
	snprintf(msg, len, "descriptor limit %llu", (unsigned long long)rl.rlim_cur);
	return true;
}

static void
wire_free_conn(struct wire_conn *c)
{
	struct wire_server *s = c->srv;

	if (c->dirty) {
		struct wire_conn **pp = &s->dirty;

		while (*pp != c)
			pp = &(*pp)->dnext;
		*pp = c->dnext;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	if (c->tev)
		event_free(c->tev);
	if (c->ssl) {
		if (c->fd >= 0 && SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c->chunked);
	free(c);
	atomic_fetch_sub(&s->st->open, 1);
}

/* Close now; a connection whose answer is deferred lingers (socket closed) until it comes. */
static void
wire_close(struct wire_conn *c)
{
	if (c->state == C_HANDLING && c->req.deferred) {
		wire_rev_del(c);
		wire_wev_del(c);
		event_del(c->tev);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		c->zombie = true;
		return;
	}
	wire_free_conn(c);
}

/* Close, or inside wire_process mark it for closing there; true if c still exists. */
static bool
wire_close_soon(struct wire_conn *c)
{
	if (c->processing) {
		c->close_pending = true;
		return true;
	}
	wire_close(c);
	return false;
}

static int64_t
wire_now_ms(struct wire_server *s)
{
	struct timespec ts;

	/* the coarse clock (vDSO, a few ms of resolution: enough for timeouts of seconds): no
	 * syscall and, unlike event_base_gettimeofday_cached, no base lock per request */
	(void)s;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set the connection's deadline.  The timer event is re-armed only when the new deadline is
 * earlier than the time the armed timer fires; a later one is found when the timer fires (so
 * a request costs no timer heap operations, like nginx's lazy timers: with request_timeout
 * shorter than keepalive_timeout, a busy connection's timer fires once a request_timeout). */
static void
wire_timer(struct wire_conn *c, int ms)
{
	int64_t deadline = wire_now_ms(c->srv) + ms;

	c->deadline_ms = deadline;
	if (c->timer_armed && deadline >= c->armed_ms)
		return;
	{
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		c->armed_ms = deadline;
		c->timer_armed = true;
		event_add(c->tev, &tv);
	}
}

static const char *
wire_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Status";
	}
}

static bool
wire_out_reserve(struct wire_conn *c, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + n)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return false;
		c->out = p;
		c->out_cap = cap;
	}
	return true;
}

static void
wire_date(struct wire_server *s)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now == s->date_at)
		return;
	s->date_at = now;
	gmtime_r(&now, &tm);
	strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static char *
wire_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* Append a whole response to the output buffer (no printf on this path). */
static bool
wire_format(struct wire_conn *c, int status, const char *ctype, const void *body, size_t len,
	const char *extra, bool close_it, bool head_only)
{
	const char *reason = wire_reason(status);
	size_t need, rl = strlen(reason), cl = strlen(ctype), el = extra ? strlen(extra) : 0;
	char num[24], *q = num + sizeof(num), *p;
	size_t v = len;

	if (status < 100 || status > 999)
		status = 500;
	do
		*--q = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	wire_date(c->srv);
	need = 13 + rl + 8 + strlen(c->srv->date) + 16 + cl + 18 + (size_t)(num + sizeof(num) - q) +
	       2 + (close_it ? 19 : 0) + el + 2 + (head_only ? 0 : len);
	if (!wire_out_reserve(c, need))
		return false;
	p = c->out + c->out_len;
	p = wire_put(p, "HTTP/1.1 ", 9);
	*p++ = (char)('0' + status / 100);
	*p++ = (char)('0' + status / 10 % 10);
	*p++ = (char)('0' + status % 10);
	*p++ = ' ';
	p = wire_put(p, reason, rl);
	p = wire_put(p, "\r\nDate: ", 8);
	p = wire_put(p, c->srv->date, strlen(c->srv->date));
	p = wire_put(p, "\r\nContent-Type: ", 16);
	p = wire_put(p, ctype, cl);
	p = wire_put(p, "\r\nContent-Length: ", 18);
	p = wire_put(p, q, (size_t)(num + sizeof(num) - q));
	p = wire_put(p, "\r\n", 2);
	if (close_it)
		p = wire_put(p, "Connection: close\r\n", 19);
	if (el)
		p = wire_put(p, extra, el);
	p = wire_put(p, "\r\n", 2);
	if (len && !head_only)
		p = wire_put(p, body, len);
	c->out_len = (size_t)(p - c->out);
	return true;
}

/* The code of an error answer of the admin listener. */
static const char *
wire_error_code(int status)
{
	switch (status) {
	case 408:
		return "timeout";
	case 413:
	case 431:
		return "too_large";
	case 501:
	case 505:
		return "not_implemented";
	default:
		return "invalid";
	}
}

/* An error answer from the server itself; the connection closes after it (after dropping
 * discard more bytes of body when discard > 0, so the client sees the answer).  The admin
 * listener answers in its one error shape, {"error":{"code":..,"message":..}}; the webhook
 * listener in the providers' {"error":".."}. */
static void
wire_fail(struct wire_conn *c, int status, const char *why, size_t discard)
{
	char body[192];
	int n = c->srv->group == WIRE_ADMIN ?
			snprintf(body, sizeof(body),
				"{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
				wire_error_code(status), why) :
			snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why);

	if (status == 413)
		atomic_fetch_add(&c->srv->st->too_large, 1);
	else if (status == 431)
		atomic_fetch_add(&c->srv->st->headers_too_large, 1);
	else if (status == 408)
		atomic_fetch_add(&c->srv->st->request_timeouts, 1);
	else
		atomic_fetch_add(&c->srv->st->bad_requests, 1);
	c->close_after = true;
	wire_format(c, status, "application/json", body, (size_t)n, NULL, true, false);
	c->in_len = 0;
	c->head_done = false;
	if (discard > 0) {
		c->state = C_DISCARD;
		c->discard_left = discard;
		wire_timer(c, WIRE_DISCARD_IDLE_MS);
	} else {
		c->state = C_IDLE;
	}
	wire_flush(c);
}

/* Write what we can; arm the write event for the rest; close when asked and done.  True if
 * c still exists afterwards. */
static bool
wire_flush(struct wire_conn *c)
{
	while (c->out_off < c->out_len && c->fd >= 0) {
		ssize_t n = wire_io(c, c->out + c->out_off, c->out_len - c->out_off, true);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			wire_wev_add(c);
			return true;
		}
		return wire_close_soon(c); /* peer gone */
	}
	wire_wev_del(c);
	c->out_off = c->out_len = 0;
	if (c->close_after && c->state != C_DISCARD)
		return wire_close_soon(c);
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */

static bool
wire_tchar(unsigned char ch)
{
	/* RFC 9110 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~", as a bitmap of the 256 bytes */
	static const uint32_t map[8] = { 0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff };

	return (map[ch >> 5] >> (ch & 31)) & 1;
}

/*
 * The end of the head: the first CRLF CRLF in [p, p + n), or NULL.  By its line feeds, which
 * memchr finds a vector at a time: glibc's memmem walked every byte of a 600-byte head
 * (~1,100 instructions per request under callgrind; this, ~250).
 */
static char *
wire_head_end(char *p, size_t n)
{
	size_t i = 3;

	while (i < n) {
		char *lf = memchr(p + i, '\n', n - i);

		if (!lf)
			return NULL;
		i = (size_t)(lf - p);
		if (lf[-1] == '\r' && lf[-2] == '\n' && lf[-3] == '\r')
			return lf - 3;
		i++;
	}
	return NULL;
}

/*
 * True if [p, p + n) holds no control character but HTAB (RFC 9110 field-value; a CR or LF
 * left in a value is refused here).  Eight bytes at a time: a word with no byte below 0x20
 * and none equal to 0x7f passes whole (both tests are exact for "some byte is"; bytes of
 * 0x80 and up never trigger them), one that has one is looked at byte by byte.
 */
static bool
wire_value_ok(const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;

		memcpy(&x, p + i, 8);
		y = x ^ (0x7f * ones);
		if ((((x - 0x20 * ones) & ~x) | ((y - ones) & ~y)) & highs) {
			for (size_t k = i; k < i + 8; k++)
				if (((unsigned char)p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f)
					return false;
		}
	}
	for (; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

/* The first CRLF in [p, end), or NULL (a lone CR or LF stays in the line: the checks of
 * names and values refuse it). */
static char *
wire_crlf(char *p, char *end)
{
	while (p < end) {
		char *cr = memchr(p, '\r', (size_t)(end - p));

		if (!cr || cr + 1 >= end)
			return NULL;
		if (cr[1] == '\n')
			return cr;
		p = cr + 1;
	}
	return NULL;
}

static enum wire_method
wire_method_of(const char *m, size_t n)
{
	static const struct {
		const char *s;
		enum wire_method m;
	} t[] = { { "GET", WIRE_GET }, { "HEAD", WIRE_HEAD }, { "POST", WIRE_POST },
		{ "PUT", WIRE_PUT }, { "DELETE", WIRE_DELETE }, { "PATCH", WIRE_PATCH },
		{ "OPTIONS", WIRE_OPTIONS } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].s) == n && memcmp(t[i].s, m, n) == 0)
			return t[i].m;
	return WIRE_OTHER;
}

const char *
wire_header(const struct wire_req *r, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < r->nhdr; i++)
		if (r->hdr_len[i] == n && strcasecmp(r->hdr_name[i], name) == 0)
			return r->hdr_value[i];
	return NULL;
}

static bool
wire_digits(const char *s, size_t *out)
{
	size_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (SIZE_MAX - 9) / 10)
			return false;
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return true;
}

/*
 * Decode a chunked body starting at p (avail bytes); 1 complete (*used set), 0 need more,
 * -1 malformed, -2 too large.
 */
static int
wire_dechunk(struct wire_conn *c, const char *p, size_t avail, size_t max, size_t *used)
{
	size_t off = 0, total = 0;
	char *dst;

	free(c->chunked);
	c->chunked = dst = malloc(max + 1);
	if (!dst)
		return -2;
	for (;;) {
		const char *eol = memmem(p + off, avail - off, "\r\n", 2);
		size_t size = 0, digits = 0;

		if (!eol) {
			/* an incomplete size line can already be wrong: too long, or more hex
			 * digits than any size we accept */
			size_t hexd = 0;

			while (off + hexd < avail && hexd <= 15 &&
				isxdigit((unsigned char)p[off + hexd]))
				hexd++;
			return avail - off > WIRE_CHUNK_LINE_MAX || hexd > 15 ? -1 : 0;
		}
		if ((size_t)(eol - (p + off)) > WIRE_CHUNK_LINE_MAX)
			return -1; /* chunk extensions are bounded: no body hidden in them */
		for (const char *q = p + off; q < eol; q++) {
			int h = *q >= '0' && *q <= '9' ? *q - '0' :
				*q >= 'a' && *q <= 'f' ? *q - 'a' + 10 :
				*q >= 'A' && *q <= 'F' ? *q - 'A' + 10 :
							 -1;

			if (h < 0) {
				if (*q == ';' && digits) /* chunk extensions: ignored */
					break;
				return -1;
			}
			if (++digits > 15)
				return -1;
			size = size * 16 + (size_t)h;
		}
		if (!digits)
			return -1;
		off = (size_t)(eol - p) + 2;
		if (size == 0) {
			/* trailers: skip header lines up to the empty one */
			for (;;) {
				const char *e = memmem(p + off, avail - off, "\r\n", 2);

				if (!e)
					return 0;
				if (e == p + off) {
					off += 2;
					break;
				}
				off = (size_t)(e - p) + 2;
			}
			*used = off;
			c->req.body = dst;
			c->req.body_len = total;
			dst[total] = 0;
			return 1;
		}
		if (total + size > max)
			return -2;
		if (avail - off < size + 2)
			return 0;
		if (memcmp(p + off + size, "\r\n", 2) != 0)
			return -1;
		memcpy(dst + total, p + off, size);
		total += size;
		off += size + 2;
	}
}

/* Parse the head in place (NULs replace separators); 1 done, -1 answered with an error. */
static int
wire_parse_head(struct wire_conn *c, char *end)
{
	struct wire_server *s = c->srv;
	struct wire_req *r = &c->req;
	char *line, *next, *sp1, *sp2, *qm;
	const char *cl = NULL, *te = NULL, *conn = NULL;
	bool http10;

	/* the scalars (the header arrays are valid up to nhdr) */
	r->conn = c;
	r->method = WIRE_OTHER;
	r->path = r->query = r->body = NULL;
	r->body_len = 0;
	r->nhdr = 0;
	r->keep_alive = r->deferred = false;
	c->head_len = (size_t)(end - c->in) + 4;
	/* a NUL would cut the head short for the C-string parsing below (and could hide a
	 * Content-Length: request smuggling) */
	if (memchr(c->in, 0, c->head_len)) {
		wire_fail(c, 400, "NUL in the request head", 0);
		return -1;
	}
	*end = 0;
	line = c->in;
	next = wire_crlf(line, end);
	if (next)
		*next = 0;
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp1[1] != '/' || strchr(sp2 + 1, ' ')) {
		wire_fail(c, 400, "bad request line", 0);
		return -1;
	}
	for (char *q = line; q < sp1; q++)
		if (!wire_tchar((unsigned char)*q)) {
			wire_fail(c, 400, "bad request line", 0);
			return -1;
		}
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0) {
		http10 = false;
	} else if (strcmp(sp2 + 1, "HTTP/1.0") == 0) {
		http10 = true;
	} else {
		wire_fail(c, strncmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400, "bad HTTP version", 0);
		return -1;
	}
	r->method = wire_method_of(line, (size_t)(sp1 - line));
	if (r->method == WIRE_OTHER) {
		wire_fail(c, 501, "method not implemented", 0);
		return -1;
	}
	*sp2 = 0;
	for (char *q = sp1 + 1; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
			wire_fail(c, 400, "bad request target", 0);
			return -1;
		}
	r->path = sp1 + 1;
	qm = strchr(sp1 + 1, '?');
	if (qm) {
		*qm = 0;
		r->query = qm + 1;
	}
	while (next) {
		char *colon, *v, *ve, *eol;
		size_t nl;

		line = next + 2;
		next = wire_crlf(line, end);
		eol = next ? next : end;
		*eol = 0;
		if (*line == ' ' || *line == '\t') {
			wire_fail(c, 400, "obsolete line folding", 0);
			return -1;
		}
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line) {
			wire_fail(c, 400, "bad header", 0);
			return -1;
		}
		for (char *q = line; q < colon; q++)
			if (!wire_tchar((unsigned char)*q)) {
				wire_fail(c, 400, "bad header name", 0);
				return -1;
			}
		*colon = 0;
		nl = (size_t)(colon - line);
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			*--ve = 0;
		if (!wire_value_ok(v, (size_t)(ve - v))) {
			wire_fail(c, 400, "bad header value", 0);
			return -1;
		}
		if (r->nhdr == WIRE_MAX_HEADERS) {
			wire_fail(c, 431, "too many headers", 0);
			return -1;
		}
		/* one Content-Length and one Transfer-Encoding only (two could smuggle a request)
		 */
		if (nl == 14 && strcasecmp(line, "Content-Length") == 0) {
			if (cl) {
				wire_fail(c, 400, "repeated Content-Length or Transfer-Encoding",
					0);
				return -1;
			}
			cl = v;
		} else if (nl == 17 && strcasecmp(line, "Transfer-Encoding") == 0) {
			if (te) {
				wire_fail(c, 400, "repeated Content-Length or Transfer-Encoding",
					0);
				return -1;
			}
			te = v;
		} else if (nl == 10 && !conn && strcasecmp(line, "Connection") == 0) {
			conn = v; /* the first, as wire_header would find */
		}
		r->hdr_name[r->nhdr] = line;
		r->hdr_len[r->nhdr] = nl;
		r->hdr_value[r->nhdr++] = v;
	}
	r->keep_alive = http10 ? conn && strcasecmp(conn, "keep-alive") == 0 :
				 !(conn && strcasecmp(conn, "close") == 0);
	c->clen = 0;
	c->te_chunked = false;
	if (te && cl) {
		wire_fail(c, 400, "both Content-Length and Transfer-Encoding", 0);
		return -1;
	}
	if (te) {
		if (strcasecmp(te, "chunked") != 0 || http10) {
			wire_fail(c, 501, "unsupported transfer encoding", 0);
			return -1;
		}
		c->te_chunked = true;
	} else if (cl && !wire_digits(cl, &c->clen)) {
		wire_fail(c, 400, "bad Content-Length", 0);
		return -1;
	}
	if (c->clen > s->lim.max_body_bytes) {
		/* answer now; read and drop what the client still sends so it sees the 413 */
		size_t have = c->in_len - c->head_len, rest = c->clen > have ? c->clen - have : 0;

		wire_fail(c, 413, "body too large", rest <= WIRE_DISCARD_MAX ? rest : 0);
		return -1;
	}
	c->head_done = true;
	return 1;
}

/* 1: a whole request is in c->req; 0: need more; -1: answered with an error. */
static int
wire_parse(struct wire_conn *c)
{
	struct wire_server *s = c->srv;
	struct wire_req *r = &c->req;

	if (!c->head_done) {
		char *end = wire_head_end(c->in, c->in_len);

		if (!end || (size_t)(end - c->in) + 4 > s->lim.max_header_bytes + 4) {
			if (end || c->in_len > s->lim.max_header_bytes) {
				wire_fail(c, 431, "headers too large", 0);
				return -1;
			}
			return 0;
		}
		if (wire_parse_head(c, end) < 0)
			return -1;
	}
	if (c->te_chunked) {
		size_t used = 0;
		int k = wire_dechunk(c, c->in + c->head_len, c->in_len - c->head_len,
			s->lim.max_body_bytes, &used);

		if (k == -2) {
			/* unknown length: drain what comes (bounded) so the client sees the 413 */
			wire_fail(c, 413, "body too large", WIRE_DISCARD_MAX);
			return -1;
		}
		if (k < 0) {
			wire_fail(c, 400, "bad chunked body", 0);
			return -1;
		}
		if (k == 1) {
			c->req_len = c->head_len + used;
			return 1;
		}
	} else if (c->in_len - c->head_len >= c->clen) {
		r->body = c->in + c->head_len;
		r->body_len = c->clen;
		c->req_len = c->head_len + c->clen;
		return 1;
	}
	if (!c->sent_continue) {
		const char *ex = wire_header(r, "Expect");

		c->sent_continue = true;
		if (ex && strcasecmp(ex, "100-continue") == 0 && wire_out_reserve(c, 25)) {
			memcpy(c->out + c->out_len, "HTTP/1.1 100 Continue\r\n\r\n", 25);
			c->out_len += 25;
			if (!wire_flush(c) || c->close_pending)
				return -1;
		}
	}
	return 0;
}

/* The parsed head's pointers as offsets into the input buffer, and back after it moved
 * (ptrdiff_t from the old buffer: no use of a pointer after realloc). */
#define WIRE_NPTR (2 + 2 * WIRE_MAX_HEADERS)

static void
wire_ptrs(struct wire_conn *c, const char ***out)
{
	struct wire_req *r = &c->req;
	int n = 0;

	out[n++] = &r->path;
	out[n++] = &r->query;
	for (int i = 0; i < r->nhdr; i++) {
		out[n++] = &r->hdr_name[i];
		out[n++] = &r->hdr_value[i];
	}
	for (; n < WIRE_NPTR; n++)
		out[n] = NULL;
}

static void
wire_save_offsets(struct wire_conn *c, ptrdiff_t *off)
{
	const char **p[WIRE_NPTR];

	wire_ptrs(c, p);
	for (int i = 0; i < WIRE_NPTR; i++)
		off[i] = p[i] && *p[i] ? *p[i] - c->in : -1;
}

static void
wire_restore_offsets(struct wire_conn *c, const ptrdiff_t *off)
{
	const char **p[WIRE_NPTR];

	wire_ptrs(c, p);
	for (int i = 0; i < WIRE_NPTR; i++)
		if (p[i] && off[i] >= 0)
			*p[i] = c->in + off[i];
}

/* ------------------------------------------------------------------------------------------ */

void
wire_reply(struct wire_req *r, int status, const char *content_type, const void *body, size_t len,
	const char *extra_headers)
{
	struct wire_conn *c = r->conn;
	bool close_it = !r->keep_alive, deferred = r->deferred;

	if (c->zombie) {
		wire_free_conn(c);
		return;
	}
	if (close_it)
		c->close_after = true;
	/* HEAD: the headers of the answer (its Content-Length too), no body */
	if (!wire_format(c, status, content_type, body, len, extra_headers, close_it,
		    r->method == WIRE_HEAD))
		c->close_after = true;
	/* the request's bytes are done with; a pipelined next one moves to the front */
	memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
	c->in_len -= c->req_len;
	c->req_len = 0;
	c->head_done = false;
	c->sent_continue = false;
	free(c->chunked);
	c->chunked = NULL;
	c->state = C_IDLE;
	r->deferred = false;
	wire_timer(c, c->srv->lim.idle_timeout_ms);
	if (c->processing && c->srv->flush_ev) {
		/* answered inside the read callback: written once the loop has read every
		 * connection ready in this turn (wire_flush_cb), so a burst of answers wakes the
		 * client side once rather than once each (the reply order is kept: one buffer) */
		if (!c->dirty) {
			bool first = !c->srv->dirty;

			c->dirty = true;
			c->dnext = c->srv->dirty;
			c->srv->dirty = c;
			if (first)
				event_active(c->srv->flush_ev, EV_TIMEOUT, 0);
		}
		return;
	}
	if (!wire_flush(c))
		return;
	/* an answer that came later resumes the connection's next request */
	if (deferred && !c->processing) {
		wire_rev_add(c);
		if (c->in_len > 0)
			wire_process(c);
	}
}

static void
wire_process(struct wire_conn *c)
{
	struct wire_server *s = c->srv;

	c->processing = true;
	while (!c->close_pending && !c->close_after &&
		(c->state == C_IDLE || c->state == C_READING)) {
		int k;

		if (c->in_len == 0)
			break;
		if (c->state == C_IDLE) {
			c->state = C_READING;
			wire_timer(c, s->lim.request_timeout_ms);
		}
		k = wire_parse(c);
		if (k <= 0)
			break;
		c->state = C_HANDLING;
		s->handler(&c->req, s->arg);
		if (c->req.deferred) {
			/* the answer comes later; hold the next request back (no reading) */
			wire_rev_del(c);
			break;
		}
	}
	c->processing = false;
	if (c->close_pending) {
		wire_close(c);
		return;
	}
	/* reading resumes unless an answer is outstanding (reads may have stopped at the limit) */
	if (!(c->state == C_HANDLING && c->req.deferred) && c->fd >= 0)
		wire_rev_add(c);
}

static void
wire_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_conn *c = arg;
	struct wire_server *s = c->srv;
	size_t limit = s->lim.max_header_bytes + s->lim.max_body_bytes * 2 + 8192;

	for (;;) {
		ssize_t n;

		if (c->state == C_DISCARD) {
			char sink[WIRE_READ_CHUNK];

			n = wire_io(c, sink, sizeof(sink), false);
			if (n > 0) {
				c->discard_left = (size_t)n >= c->discard_left ?
							  0 :
							  c->discard_left - (size_t)n;
				if (c->discard_left == 0) {
					wire_close(c);
					return;
				}
				wire_timer(c, WIRE_DISCARD_IDLE_MS);
				continue;
			}
		} else {
			if (c->in_cap - c->in_len < WIRE_READ_CHUNK / 4) {
				size_t cap = c->in_cap ? c->in_cap * 2 : WIRE_READ_CHUNK;
				ptrdiff_t off[WIRE_NPTR];
				char *p;

				if (cap > limit)
					cap = limit;
				if (cap <= c->in_len + 1) {
					/* more than any request may be */
					if (c->state == C_HANDLING) {
						/* pipelined data behind a deferred answer: wait for
						 * it */
						wire_rev_del(c);
						break;
					}
					/* a request that cannot complete within the limits (a
					 * chunked body whose framing is far larger than its data,
					 * say) */
					wire_fail(c, c->head_done ? 413 : 431, "request too large",
						0);
					return;
				}
				if (c->head_done)
					wire_save_offsets(c, off);
				p = realloc(c->in, cap);
				if (!p) {
					wire_close(c);
					return;
				}
				c->in = p;
				c->in_cap = cap;
				if (c->head_done)
					wire_restore_offsets(c, off);
			}
			n = wire_io(c, c->in + c->in_len, c->in_cap - c->in_len - 1, false);
			if (n > 0) {
				c->in_len += (size_t)n;
				c->in[c->in_len] = 0;
				/* parse what came before reading more (an oversized body is
				 * answered 413 as soon as its head says so); the level-triggered
				 * read event brings the rest, and TLS data already decrypted is
				 * read on */
				if (c->ssl && SSL_pending(c->ssl) > 0)
					continue;
				break;
			}
		}
		if (n == 0) {
			wire_close(c); /* peer closed (a deferred answer keeps c as a zombie) */
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		wire_close(c);
		return;
	}
	if (c->state == C_IDLE || c->state == C_READING)
		wire_process(c);
}

static void
wire_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_conn *c = arg;

	if (c->ssl_read_wants_write) {
		/* a TLS read (the handshake) waited for this: carry it on */
		c->ssl_read_wants_write = false;
		if (c->out_off == c->out_len)
			wire_wev_del(c);
		wire_read_cb(fd, EV_READ, c);
		return;
	}
	wire_flush(c);
}

static void
wire_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_conn *c = arg;
	int64_t left = c->deadline_ms - wire_now_ms(c->srv);

	c->timer_armed = false;
	if (left > 0) {
		/* the deadline moved on since the timer was armed */
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };

		c->timer_armed = true;
		c->armed_ms = c->deadline_ms;
		event_add(c->tev, &tv);
		return;
	}
	switch (c->state) {
	case C_READING:
		wire_fail(c, 408, "request timeout", 0);
		break;
	case C_HANDLING:
		break; /* a deferred answer is bounded by the journal, the database or the
			* provider timeout */
	case C_IDLE:
		atomic_fetch_add(&c->srv->st->idle_closes, 1);
		wire_close(c);
		break;
	case C_DISCARD:
		wire_close(c);
		break;
	}
}

/* The answers of this turn of the loop: libevent runs this after the callbacks that were active
 * when it was activated (the turn's reads), before it waits again. */
static void
wire_flush_dirty(struct wire_server *s)
{
	struct wire_conn *rev = NULL;

	/* pushed at the head: first answered, first written */
	while (s->dirty) {
		struct wire_conn *c = s->dirty;

		s->dirty = c->dnext;
		c->dnext = rev;
		rev = c;
	}
	s->dirty = rev;
	while (s->dirty) {
		struct wire_conn *c = s->dirty;

		s->dirty = c->dnext;
		c->dnext = NULL;
		c->dirty = false;
		wire_flush(c); /* may free c: it is off the list already */
	}
}

static void
wire_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	wire_flush_dirty(arg);
}

static void
wire_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wire_server *s = arg;

	if (s->lfd >= 0)
		event_add(s->accept_ev, NULL);
}

/* accept failed for want of a descriptor or of memory (or for a reason we do not know): the
 * listening socket stays readable, so accepting again at once would spin.  Stop accepting on
 * this listener for a while (nginx does the same), keep serving what is open. */
/* One line a second at most per listener group (the webhooks' and the admin API's: one's
 * failures must not hide the other's), every worker of the group together. */
static bool
wire_log_due(const struct wire_server *s)
{
	static _Atomic int64_t logged_at[WIRE_GROUPS];
	_Atomic int64_t *at = &logged_at[s->group < WIRE_GROUPS ? s->group : WIRE_WEBHOOK];
	struct timespec now;
	int64_t sec, prev;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sec = (int64_t)now.tv_sec;
	prev = atomic_load(at);
	return sec != prev && atomic_compare_exchange_strong(at, &prev, sec);
}

static const char *
wire_group_name(const struct wire_server *s)
{
	return s->group == WIRE_ADMIN ? "admin" : "webhook";
}

static void
wire_accept_failed(struct wire_server *s, int err)
{
	struct timeval tv = { 0, WIRE_ACCEPT_PAUSE_MS * 1000 };

	if (err == EMFILE)
		atomic_fetch_add(&s->st->accept_emfile, 1);
	else if (err == ENFILE)
		atomic_fetch_add(&s->st->accept_enfile, 1);
	else
		atomic_fetch_add(&s->st->accept_other, 1);
	event_del(s->accept_ev);
	evtimer_add(s->resume_ev, &tv);
	if (wire_log_due(s))
		log_warning("wire: could not accept a connection on the %s listener: %s (accepting "
			    "again in %d ms; open connections are served)",
			wire_group_name(s), strerror(err), WIRE_ACCEPT_PAUSE_MS);
}

/* Descriptors below the limit the new connection may not take: the lowest free number is
 * what accept returns, so fd within WIRE_FD_RESERVE of the soft limit means that few are
 * left, and those are kept for the journal, the snapshot and the database connections. */
static long long
wire_fd_ceiling(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
		rl.rlim_cur > (rlim_t)LLONG_MAX)
		return LLONG_MAX;
	return (long long)rl.rlim_cur - WIRE_FD_RESERVE;
}

/* A connection we do not take: 503 and close (on a TLS port no plain-text answer: close). */
static void
wire_refuse(struct wire_server *s, int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n"
				   "Retry-After: 1\r\n\r\n";

	/* best effort, never blocks: the socket is new and its buffer empty */
	if (!wire_tls(s) && write(fd, busy, sizeof(busy) - 1) < 0) {
	}
	close(fd);
}

static void
wire_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct wire_server *s = arg;
	long long ceiling = wire_fd_ceiling(); /* read each time: prlimit can change it */

	for (int i = 0; i < WIRE_ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct wire_conn *c;

		if (fd < 0) {
			/* a connection that went away before we took it is no fault of ours */
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
				errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
				return;
			wire_accept_failed(s, errno);
			return;
		}
		if ((long long)fd >= ceiling) {
			atomic_fetch_add(&s->st->accept_reserve, 1);
			if (wire_log_due(s))
				log_warning(
					"wire: refused a connection on the %s listener: fewer "
					"than %d descriptors left (RLIMIT_NOFILE %lld), kept for the "
					"journal and the database",
					wire_group_name(s), WIRE_FD_RESERVE,
					ceiling + WIRE_FD_RESERVE);
			wire_refuse(s, fd);
			continue;
		}
		/* the connection cap: libevent has no setting for it, so it is counted here */
		if (atomic_fetch_add(&s->st->open, 1) >= s->lim.max_connections) {
			atomic_fetch_sub(&s->st->open, 1);
			atomic_fetch_add(&s->st->refused, 1);
			wire_refuse(s, fd);
			continue;
		}
		atomic_fetch_add(&s->st->accepted, 1);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			atomic_fetch_sub(&s->st->open, 1);
			close(fd);
			wire_accept_failed(s, ENOMEM);
			return;
		}
		c->srv = s;
		c->fd = fd;
		if (wire_tls(s)) {
			SSL_CTX *ctx = tls_context();

			c->ssl = ctx ? SSL_new(ctx) : NULL;
			SSL_CTX_free(ctx); /* the SSL holds its own reference */
			if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
				if (c->ssl)
					SSL_free(c->ssl);
				free(c);
				atomic_fetch_sub(&s->st->open, 1);
				close(fd);
				continue;
			}
			SSL_set_accept_state(c->ssl);
		}
		c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, wire_read_cb, c);
		c->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, wire_write_cb, c);
		c->tev = evtimer_new(s->base, wire_timer_cb, c);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		if (!c->rev || !c->wev || !c->tev) {
			wire_free_conn(c);
			continue;
		}
		wire_rev_add(c);
		wire_timer(c, s->lim.idle_timeout_ms);
	}
}

struct wire_server *
wire_server_new(struct event_base *base, int fd, enum wire_group group,
	const struct wire_limits *lim, wire_handler_fn handler, void *arg)
{
	struct wire_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->lfd = fd;
	s->group = group;
	s->st = &wire_groups[group];
	s->lim = *lim;
	s->handler = handler;
	s->arg = arg;
	s->accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, wire_accept_cb, s);
	s->resume_ev = evtimer_new(base, wire_resume_cb, s);
	s->flush_ev = event_new(base, -1, 0, wire_flush_cb, s);
	if (!s->accept_ev || !s->resume_ev || !s->flush_ev || event_add(s->accept_ev, NULL) != 0)
		goto fail;
	return s;
fail:
	if (s->accept_ev)
		event_free(s->accept_ev);
	if (s->resume_ev)
		event_free(s->resume_ev);
	if (s->flush_ev)
		event_free(s->flush_ev);
	free(s);
	return NULL;
}

void
wire_server_set_limits(struct wire_server *s, const struct wire_limits *lim)
{
	s->lim = *lim;
}

void
wire_server_stop_accepting(struct wire_server *s)
{
	if (s->lfd >= 0) {
		event_del(s->accept_ev);
		event_del(s->resume_ev);
		close(s->lfd);
		s->lfd = -1;
	}
}

void
wire_server_free(struct wire_server *s)
{
	if (!s)
		return;
	wire_server_stop_accepting(s);
	/* answers formatted after the loop's last turn (the journal waiter's, at cleanup): what
	 * the sockets take now */
	wire_flush_dirty(s);
	event_free(s->accept_ev);
	event_free(s->resume_ev);
	event_free(s->flush_ev);
	while (s->conns)
		wire_free_conn(s->conns);
	free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Query strings                                                                               */

static int
wire_hex(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' :
	       ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 :
					-1;
}

/* Percent-decode [p, end) into dst ('+' is a space); false on a bad escape or a NUL. */
static bool
wire_unescape(const char *p, const char *end, char *dst)
{
	while (p < end) {
		if (*p == '%') {
			int hi = end - p >= 3 ? wire_hex(p[1]) : -1;
			int lo = hi >= 0 ? wire_hex(p[2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false;
			*dst++ = (char)(hi * 16 + lo);
			p += 3;
		} else {
			*dst++ = *p == '+' ? ' ' : *p;
			p++;
		}
	}
	*dst = 0;
	return true;
}

bool
wire_query_parse(const char *q, struct wire_query *out)
{
	size_t len;
	const char *p, *end;
	char *dst;

	memset(out, 0, sizeof(*out));
	if (!q || !*q)
		return true;
	len = strlen(q);
	p = q;
	end = q + len;
	out->buf = dst = malloc(len + 2);
	if (!out->buf)
		return false;
	while (p <= end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
		const char *stop = amp ? amp : end;

		eq = memchr(p, '=', (size_t)(stop - p));
		/* key=value, key not empty, a bounded number of them */
		if (!eq || eq == p || out->n == WIRE_MAX_PARAMS)
			goto fail;
		out->key[out->n] = dst;
		if (!wire_unescape(p, eq, dst))
			goto fail;
		dst += strlen(dst) + 1;
		out->value[out->n] = dst;
		if (!wire_unescape(eq + 1, stop, dst))
			goto fail;
		dst += strlen(dst) + 1;
		/* one value per key: which of two would count is anyone's guess */
		for (int i = 0; i < out->n; i++)
			if (strcmp(out->key[i], out->key[out->n]) == 0)
				goto fail;
		out->n++;
		if (!amp)
			break;
		p = amp + 1;
	}
	return true;
fail:
	wire_query_clear(out);
	return false;
}

const char *
wire_query_get(const struct wire_query *q, const char *key)
{
	for (int i = 0; i < q->n; i++)
		if (strcmp(q->key[i], key) == 0)
			return q->value[i];
	return NULL;
}

void
wire_query_clear(struct wire_query *q)
{
	free(q->buf);
	memset(q, 0, sizeof(*q));
}

void
wire_stats(enum wire_group g, stat_fn add, void *ctx)
{
	const char *pre = g == WIRE_ADMIN ? "callrouted_admin_http" : "callrouted_http";
	const char *who = g == WIRE_ADMIN ? "Admin" : "Webhook";
	const char *key = g == WIRE_ADMIN ? "admin_" : ""; /* its configuration keys */
	char name[96], help[256];
	struct wire_stats ws;

	wire_get_stats(g, &ws);
#define WIRE_STAT(suffix, ...)                                                                     \
	snprintf(name, sizeof(name), "%s_%s", pre, suffix);                                        \
	snprintf(help, sizeof(help), __VA_ARGS__)
	WIRE_STAT("connections_open", "%s connections open now.", who);
	STAT_GAUGE(add, ctx, name, help, (double)ws.open);
	WIRE_STAT("connections_accepted_total", "%s connections accepted.", who);
	STAT_COUNTER(add, ctx, name, help, ws.accepted);
	WIRE_STAT("connections_refused_total",
		"%s connections refused at %smax_connections (503, closed).", who, key);
	STAT_COUNTER(add, ctx, name, help, ws.refused);
	WIRE_STAT("request_timeouts_total",
		"Requests that did not arrive within %srequest_timeout (408, closed).", key);
	STAT_COUNTER(add, ctx, name, help, ws.request_timeouts);
	WIRE_STAT("idle_closes_total", "Keep-alive connections closed after %skeepalive_timeout.",
		key);
	STAT_COUNTER(add, ctx, name, help, ws.idle_closes);
	WIRE_STAT("body_too_large_total",
		"Requests refused for a body over %smax_body_bytes (413).", key);
	STAT_COUNTER(add, ctx, name, help, ws.too_large);
	WIRE_STAT("headers_too_large_total",
		"Requests refused for a head over %smax_header_bytes (431).", key);
	STAT_COUNTER(add, ctx, name, help, ws.headers_too_large);
	WIRE_STAT("bad_requests_total", "Malformed HTTP requests (400, 501, 505; closed).");
	STAT_COUNTER(add, ctx, name, help, ws.bad_requests);
	if (g == WIRE_WEBHOOK)
		STAT_COUNTER(add, ctx, "callrouted_http_tls_handshake_failures_total",
			"TLS handshakes that failed on the webhook listener.",
			ws.tls_handshake_failures);
	WIRE_STAT("accept_errors_total",
		"%s connections not taken for want of descriptors or memory, by reason: emfile, "
		"enfile, other (accept failed: accepting pauses for a moment), reserve (refused "
		"with 503: the last descriptors are kept for the daemon).",
		who);
#undef WIRE_STAT
	stat_u64(add, ctx, name, help, "counter", "reason=\"emfile\"", ws.accept_emfile);
	stat_u64(add, ctx, name, help, "counter", "reason=\"enfile\"", ws.accept_enfile);
	stat_u64(add, ctx, name, help, "counter", "reason=\"other\"", ws.accept_other);
	stat_u64(add, ctx, name, help, "counter", "reason=\"reserve\"", ws.accept_reserve);
}
