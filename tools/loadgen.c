/* loadgen.c: open-loop HTTP/1.1 load generator (latency from the intended send time). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/*
 * Model.  Request i (0-based, over all threads) is due at t0 + i/R.  Thread k of T owns the
 * requests k, k+T, k+2T, ... and C/T keep-alive connections, each carrying one request at a
 * time (no pipelining).  A due request takes the first idle connection; when every connection
 * is busy it waits, and its latency (answer complete - intended send time) grows with the
 * wait: that is the point of an open-loop generator.  Requests are due until --duration; the
 * ones still queued or in flight then get --drain seconds more, after which they count as
 * unsent/unanswered.  A connection that fails (refused, reset, closed mid-answer) is counted,
 * its request is not resent, and it reconnects after a short pause.
 *
 * --requests FILE: one JSON object per line, cycled through:
 *   {"method":"POST","path":"/v1/x","headers":{"Content-Type":"application/json"},"body":"..."}
 * method defaults to GET (POST when there is a body), path to the URL's; Host and
 * Content-Length are added.  Without --requests every request is a GET of the URL.
 *
 * Telling a stall of the server from one of this program or of the machine: per 100 ms window
 * of intended time it keeps the worst latency, the worst lateness of this program (a request
 * seen due after its time: the generator was not running), the worst service time (sent ->
 * answer) and the worst oversleep of a probe thread that only sleeps 1 ms at a time (when it
 * wakes late, every thread of the machine at its priority could have: the machine stalled,
 * e.g. other load or a hypervisor taking the vCPU).  A window whose worst latency is over
 * --stall-ms is blamed on the machine when the probe overslept at least half that latency in
 * it or the window before, else on the generator when it was that late itself, else on the
 * server.  The probe only needs a little CPU, so it sees the machine stop (every CPU taken by a
 * hog or by the hypervisor), not a fair share too small for the server: that shows as the
 * machine's busy share over the run (from /proc/stat, with the part stolen by the hypervisor).
 */

#define LG_MAX_CONNECTIONS 10000
#define LG_MAX_THREADS 64
#define LG_MAX_REQUESTS 20000000LL /* rate x duration */
#define LG_RECONNECT_NS 10000000LL /* 10 ms pause before reconnecting */
#define LG_MAX_RESPONSE (16 << 20)
#define LG_SLOT_NS 100000000LL /* timeline: worst latency per 100 ms of intended time */
#define LG_PROBE_NS 1000000LL  /* the probe thread's sleep */

struct lg_req {
	char *buf;
	size_t len;
};

enum lg_state { C_CLOSED, C_CONNECTING, C_IDLE, C_BUSY, C_WAIT };

struct lg_conn {
	int fd;
	uint32_t idx, gen; /* epoll data: idx | gen << 32 (events of a closed fd are stale) */
	enum lg_state state;
	bool used; /* an answer has come on this connection */
	int64_t intended_ns, sent_ns, retry_ns;
	const struct lg_req *req;
	size_t out_off;
	char *in;
	size_t in_len, in_cap;
};

struct lg_stats {
	uint64_t scheduled, sent, answered, unsent, unanswered;
	uint64_t err_connect, err_io;
	uint64_t status[600], status_other;
	int64_t *lat, *svc,
		*lag; /* µs: intended send -> answer, sent -> answer, intended -> sent */
	size_t n_lat, cap_lat;
	int64_t *late;          /* µs: intended send -> this program saw it due, per request */
	int64_t *slot_max;      /* µs: worst latency of the requests due in each 100 ms */
	int64_t *slot_late_max; /* µs: worst lateness of this program, per window */
	int64_t *slot_svc_max;  /* µs: worst sent -> answer, per window */
	size_t n_late;
	int64_t last_answer_ns;
	bool aborted;
};

struct lg_thread {
	int id;
	pthread_t tid;
	int epfd;
	struct lg_conn *conns;
	int n_conns;
	uint64_t n_req;     /* requests this thread owns */
	uint64_t due, next; /* local indices: due ones [0, due); sent or failed [0, next) */
	struct lg_stats st;
};

static struct {
	const char *url, *requests_path, *json_path;
	double rate, duration_s, drain_s;
	int connections, threads;
	long max_errors;
	bool quiet;
	char host[256], port_s[16], path[2048];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct lg_req *reqs;
	size_t n_reqs;
	int64_t t0_ns, end_ns, deadline_ns;
	int64_t n_slots;
	uint64_t total;
	double stall_ms;
	long slice_us;
	bool no_probe;
	int64_t *probe_slot_max; /* µs: worst oversleep of the probe per window */
	int64_t *probe_over;     /* µs: every oversleep of the probe */
	size_t n_probe, cap_probe;
	volatile bool probe_stop;
} g;

static volatile sig_atomic_t lg_interrupted;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("loadgen: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("loadgen: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double
opt_double(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "loadgen: --%s must be a number from %g to %g: '%s'\n", name, lo,
			hi, s);
		exit(2);
	}
	return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up: URL, requests                                                                      */

static void
parse_url(const char *url)
{
	const char *p, *hs, *he, *slash;
	struct addrinfo hints, *res;
	int rc;

	if (strncmp(url, "http://", 7) != 0)
		die("only http:// URLs are supported: '%s'", url);
	hs = url + 7;
	slash = strchr(hs, '/');
	he = slash ? slash : hs + strlen(hs);
	snprintf(g.path, sizeof(g.path), "%s", slash ? slash : "/");
	if (*hs == '[') {
		p = memchr(hs, ']', (size_t)(he - hs));
		if (!p)
			die("bad IPv6 address in URL: '%s'", url);
		snprintf(g.host, sizeof(g.host), "%.*s", (int)(p - hs - 1), hs + 1);
		p++;
	} else {
		for (p = hs; p < he && *p != ':'; p++)
			;
		snprintf(g.host, sizeof(g.host), "%.*s", (int)(p - hs), hs);
	}
	if (p < he && *p == ':')
		snprintf(g.port_s, sizeof(g.port_s), "%.*s", (int)(he - p - 1), p + 1);
	else
		snprintf(g.port_s, sizeof(g.port_s), "80");
	if (!g.host[0])
		die("no host in URL: '%s'", url);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(g.host, g.port_s, &hints, &res);
	if (rc != 0)
		die("cannot resolve the URL's host: %s", gai_strerror(rc));
	memcpy(&g.addr, res->ai_addr, res->ai_addrlen);
	g.addr_len = res->ai_addrlen;
	freeaddrinfo(res);
}

static void
add_request(const char *method, const char *path, json_t *headers, const char *body,
	size_t body_len)
{
	size_t cap = 512 + strlen(path) + body_len, len = 0;
	char *b = xmalloc(cap);
	const char *k;
	json_t *v;
	bool port80 = strcmp(g.port_s, "80") == 0;

#define LG_APPEND(...)                                                                             \
	do {                                                                                       \
		int n_ = snprintf(b + len, cap - len, __VA_ARGS__);                                \
		while (n_ >= 0 && (size_t)n_ >= cap - len) {                                       \
			cap = cap * 2 + (size_t)n_;                                                \
			b = xrealloc(b, cap);                                                      \
			n_ = snprintf(b + len, cap - len, __VA_ARGS__);                            \
		}                                                                                  \
		len += (size_t)n_;                                                                 \
	} while (0)

	LG_APPEND("%s %s HTTP/1.1\r\n", method, path);
	if (strchr(g.host, ':'))
		LG_APPEND("Host: [%s]%s%s\r\n", g.host, port80 ? "" : ":", port80 ? "" : g.port_s);
	else
		LG_APPEND("Host: %s%s%s\r\n", g.host, port80 ? "" : ":", port80 ? "" : g.port_s);
	if (headers) {
		json_object_foreach(headers, k, v)
		{
			if (!json_is_string(v))
				die("header values must be strings (header '%s')", k);
			if (strcasecmp(k, "host") == 0 || strcasecmp(k, "content-length") == 0)
				continue;
			LG_APPEND("%s: %s\r\n", k, json_string_value(v));
		}
	}
	if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
		LG_APPEND("Content-Length: %zu\r\n", body_len);
	LG_APPEND("\r\n");
#undef LG_APPEND
	if (body_len) {
		if (cap - len < body_len)
			b = xrealloc(b, len + body_len);
		memcpy(b + len, body, body_len);
		len += body_len;
	}
	g.reqs = xrealloc(g.reqs, (g.n_reqs + 1) * sizeof(*g.reqs));
	g.reqs[g.n_reqs].buf = b;
	g.reqs[g.n_reqs].len = len;
	g.n_reqs++;
}

static void
load_requests(const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;

	if (!f) {
		fprintf(stderr, "loadgen: %s: %s\n", file, strerror(errno));
		exit(2);
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		json_error_t err;
		json_t *o, *jm, *jp, *jh, *jb;
		const char *method, *path;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = 0;
		if (n == 0)
			continue;
		o = json_loadb(line, (size_t)n, 0, &err);
		if (!o || !json_is_object(o)) {
			fprintf(stderr, "loadgen: %s:%ld: not a JSON object: %s\n", file, lineno,
				o ? "" : err.text);
			exit(2);
		}
		jm = json_object_get(o, "method");
		jp = json_object_get(o, "path");
		jh = json_object_get(o, "headers");
		jb = json_object_get(o, "body");
		if ((jm && !json_is_string(jm)) || (jp && !json_is_string(jp)) ||
			(jh && !json_is_object(jh)) || (jb && !json_is_string(jb))) {
			fprintf(stderr,
				"loadgen: %s:%ld: method, path and body must be strings, "
				"headers an object\n",
				file, lineno);
			exit(2);
		}
		method = jm ? json_string_value(jm) : jb ? "POST" : "GET";
		path = jp ? json_string_value(jp) : g.path;
		add_request(method, path, jh, jb ? json_string_value(jb) : NULL,
			jb ? json_string_length(jb) : 0);
		json_decref(o);
	}
	free(line);
	fclose(f);
	if (g.n_reqs == 0)
		die("no requests in %s", file);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                */

static void
conn_close(struct lg_thread *t, struct lg_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_CLOSED;
	c->used = false;
	c->in_len = 0;
	c->req = NULL;
}

static void
conn_open(struct lg_thread *t, struct lg_conn *c)
{
	struct epoll_event ev;
	int one = 1, fd;

	fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->used = false;
	c->in_len = 0;
	c->req = NULL;
	if (connect(fd, (struct sockaddr *)&g.addr, g.addr_len) == 0) {
		c->state = C_IDLE;
	} else if (errno == EINPROGRESS) {
		c->state = C_CONNECTING;
	} else {
		t->st.err_connect++;
		close(fd);
		c->fd = -1;
		c->state = C_WAIT;
		c->retry_ns = mono_ns() + LG_RECONNECT_NS;
		return;
	}
	c->gen++;
	ev.events = c->state == C_CONNECTING ? EPOLLOUT : EPOLLIN;
	ev.data.u64 = (uint64_t)c->idx | (uint64_t)c->gen << 32;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		fprintf(stderr, "loadgen: epoll_ctl: %s\n", strerror(errno));
		exit(1);
	}
}

static void
conn_events(struct lg_thread *t, struct lg_conn *c, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.u64 = (uint64_t)c->idx | (uint64_t)c->gen << 32;
	epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* the connection failed: count it, drop its request, reconnect after a pause */
static void
conn_fail(struct lg_thread *t, struct lg_conn *c, bool connecting)
{
	if (connecting)
		t->st.err_connect++;
	else
		t->st.err_io++;
	conn_close(t, c);
	c->state = C_WAIT;
	c->retry_ns = mono_ns() + LG_RECONNECT_NS;
}

static void
record(struct lg_thread *t, struct lg_conn *c, int status, int64_t now)
{
	struct lg_stats *s = &t->st;

	if (s->n_lat == s->cap_lat) {
		s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 4096;
		s->lat = xrealloc(s->lat, s->cap_lat * sizeof(*s->lat));
		s->svc = xrealloc(s->svc, s->cap_lat * sizeof(*s->svc));
		s->lag = xrealloc(s->lag, s->cap_lat * sizeof(*s->lag));
	}
	s->lat[s->n_lat] = (now - c->intended_ns) / 1000;
	s->svc[s->n_lat] = (now - c->sent_ns) / 1000;
	s->lag[s->n_lat] = (c->sent_ns - c->intended_ns) / 1000;
	{
		int64_t slot = (c->intended_ns - g.t0_ns) / LG_SLOT_NS;

		if (slot >= 0 && slot < g.n_slots && s->lat[s->n_lat] > s->slot_max[slot])
			s->slot_max[slot] = s->lat[s->n_lat];
		if (slot >= 0 && slot < g.n_slots && s->svc[s->n_lat] > s->slot_svc_max[slot])
			s->slot_svc_max[slot] = s->svc[s->n_lat];
	}
	s->n_lat++;
	s->answered++;
	if (status >= 100 && status < 600)
		s->status[status]++;
	else
		s->status_other++;
	s->last_answer_ns = now;
}

static bool
header_is(const char *line, size_t len, const char *name, size_t *voff)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	n++;
	while (n < len && (line[n] == ' ' || line[n] == '\t'))
		n++;
	*voff = n;
	return true;
}

/*
 * Is a whole answer in c->in?  1: yes (*status, *close set); 0: not yet; -1: malformed.
 * eof: the peer has closed (completes an answer delimited by the close).
 */
static int
parse_response(struct lg_conn *c, bool eof, int *status, bool *close_after)
{
	char *buf = c->in, *hend, *p, *line_end;
	size_t hlen, need;
	long long clen = -1;
	bool chunked = false, http10 = false, ka = false;

	if (c->in_len < 12)
		return eof ? -1 : 0;
	hend = memmem(buf, c->in_len, "\r\n\r\n", 4);
	if (!hend)
		return eof || c->in_len > 65536 ? -1 : 0;
	hlen = (size_t)(hend - buf) + 4;
	if (strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -1;
	http10 = buf[7] == '0';
	*status = atoi(buf + 9);
	*close_after = http10;
	for (p = memchr(buf, '\n', hlen) + 1; p < hend; p = line_end + 2) {
		size_t len, v;

		line_end = memmem(p, (size_t)(hend + 2 - p), "\r\n", 2);
		if (!line_end)
			break;
		len = (size_t)(line_end - p);
		if (header_is(p, len, "content-length", &v))
			clen = strtoll(p + v, NULL, 10);
		else if (header_is(p, len, "transfer-encoding", &v))
			chunked = strncasecmp(p + v, "chunked", 7) == 0;
		else if (header_is(p, len, "connection", &v)) {
			if (strncasecmp(p + v, "close", 5) == 0)
				*close_after = true;
			else if (strncasecmp(p + v, "keep-alive", 10) == 0)
				ka = true;
		}
	}
	if (http10 && ka)
		*close_after = false;
	if ((*status >= 100 && *status < 200) || *status == 204 || *status == 304)
		return 1;
	if (chunked) {
		size_t off = hlen;

		for (;;) {
			char *e = memmem(buf + off, c->in_len - off, "\r\n", 2);
			unsigned long long sz;

			if (!e)
				return eof ? -1 : 0;
			sz = strtoull(buf + off, NULL, 16);
			off = (size_t)(e - buf) + 2;
			if (sz == 0) {
				/* trailers up to an empty line */
				for (;;) {
					e = memmem(buf + off, c->in_len - off, "\r\n", 2);
					if (!e)
						return eof ? -1 : 0;
					if (e == buf + off)
						return 1;
					off = (size_t)(e - buf) + 2;
				}
			}
			if (sz > LG_MAX_RESPONSE)
				return -1;
			if (c->in_len - off < sz + 2)
				return eof ? -1 : 0;
			off += sz + 2;
		}
	}
	if (clen >= 0) {
		if (clen > LG_MAX_RESPONSE)
			return -1;
		need = hlen + (size_t)clen;
		return c->in_len >= need ? 1 : eof ? -1 : 0;
	}
	/* delimited by the close */
	*close_after = true;
	return eof ? 1 : 0;
}

static void
conn_send(struct lg_thread *t, struct lg_conn *c)
{
	while (c->out_off < c->req->len) {
		ssize_t n = send(c->fd, c->req->buf + c->out_off, c->req->len - c->out_off,
			MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_events(t, c, EPOLLIN | EPOLLOUT);
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		conn_fail(t, c, false);
		return;
	}
}

static void
conn_readable(struct lg_thread *t, struct lg_conn *c)
{
	bool eof = false;
	int status = 0, r;
	bool close_after = false;

	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 16384) {
			if (c->in_cap >= LG_MAX_RESPONSE) {
				conn_fail(t, c, false);
				return;
			}
			c->in_cap = c->in_cap ? c->in_cap * 2 : 32768;
			c->in = xrealloc(c->in, c->in_cap);
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->in_len < c->in_cap)
				break;
			continue;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_fail(t, c, false);
		return;
	}
	if (c->state != C_BUSY) {
		/* the server closed an idle keep-alive connection (or sent what was not asked) */
		conn_close(t, c);
		conn_open(t, c);
		return;
	}
	r = parse_response(c, eof, &status, &close_after);
	if (r == 0)
		return;
	if (r < 0) {
		conn_fail(t, c, false);
		return;
	}
	record(t, c, status, mono_ns());
	c->req = NULL;
	c->in_len = 0;
	c->used = true;
	if (close_after || eof) {
		conn_close(t, c);
		conn_open(t, c);
	} else {
		c->state = C_IDLE;
		conn_events(t, c, EPOLLIN);
	}
}

static void
conn_writable(struct lg_thread *t, struct lg_conn *c)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			conn_fail(t, c, true);
			return;
		}
		c->state = C_IDLE;
		conn_events(t, c, EPOLLIN);
		return;
	}
	if (c->state == C_BUSY) {
		conn_send(t, c);
		if (c->state == C_BUSY && c->out_off == c->req->len)
			conn_events(t, c, EPOLLIN);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Telling the machine's stalls from the server's                                             */

/* sched_setattr(2): since Linux 6.12 a SCHED_OTHER thread may ask for a shorter time slice
 * (sched_runtime); with EEVDF it then preempts a longer-sliced CPU hog when it wakes */
struct lg_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};

static void
set_slice(void)
{
	struct lg_sched_attr a;

	if (g.slice_us <= 0)
		return;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = 0; /* SCHED_OTHER */
	a.sched_nice = 0;
	a.sched_runtime = (uint64_t)g.slice_us * 1000;
	if (syscall(SYS_sched_setattr, 0, &a, 0) != 0 && !g.quiet)
		fprintf(stderr, "loadgen: --slice-us: sched_setattr: %s (default slice kept)\n",
			strerror(errno));
}

/* Sleeps LG_PROBE_NS at a time (absolute deadlines) and keeps how late it woke. */
static void *
probe_main(void *arg)
{
	struct timespec ts;
	int64_t due = g.t0_ns;

	(void)arg;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	set_slice();
	while (!g.probe_stop && due < g.end_ns) {
		int64_t now, over, slot, last;

		ts.tv_sec = due / 1000000000;
		ts.tv_nsec = due % 1000000000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		now = mono_ns();
		over = (now - due) / 1000;
		/* every window the oversleep spanned: it was not running in any of them */
		last = (now - g.t0_ns) / LG_SLOT_NS;
		for (slot = (due - g.t0_ns) / LG_SLOT_NS; slot <= last && slot < g.n_slots; slot++)
			if (slot >= 0 && over > g.probe_slot_max[slot])
				g.probe_slot_max[slot] = over;
		/* past LG_MAX_REQUESTS samples (a day-long run) only the windows still count */
		if (g.n_probe == g.cap_probe && g.cap_probe < (size_t)LG_MAX_REQUESTS) {
			g.cap_probe = g.cap_probe ? g.cap_probe * 2 : 16384;
			g.probe_over = xrealloc(g.probe_over, g.cap_probe * sizeof(int64_t));
		}
		if (g.n_probe < g.cap_probe)
			g.probe_over[g.n_probe++] = over;
		/* the next deadline after now: a long stall counts once, not once per ms missed */
		due += LG_PROBE_NS;
		if (due <= now)
			due += ((now - due) / LG_PROBE_NS + 1) * LG_PROBE_NS;
	}
	return NULL;
}

/* /proc/stat's first line: total, idle (+ iowait) and steal jiffies (false where there is none) */
static bool
cpu_jiffies(uint64_t *total, uint64_t *idle, uint64_t *steal)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8] = { 0 };
	int n;

	if (!f)
		return false;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		&v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*idle = v[3] + v[4];
	*steal = v[7];
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop of one thread                                                                     */

static int64_t
intended_ns(const struct lg_thread *t, uint64_t local)
{
	uint64_t global = (uint64_t)t->id + local * (uint64_t)g.threads;

	return g.t0_ns + (int64_t)llround((double)global * 1e9 / g.rate);
}

static void *
thread_main(void *arg)
{
	struct lg_thread *t = arg;
	struct epoll_event evs[256];
	int rr = 0; /* where the search for an idle connection starts */

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	set_slice();
	for (;;) {
		int64_t now = mono_ns(), wake;
		struct timespec ts;
		int n, busy = 0;

		if (lg_interrupted) {
			t->st.aborted = true;
			break;
		}
		while (t->due < t->n_req && intended_ns(t, t->due) <= now) {
			int64_t in = intended_ns(t, t->due), late = (now - in) / 1000;
			int64_t slot = (in - g.t0_ns) / LG_SLOT_NS;

			t->st.late[t->st.n_late++] = late;
			if (slot >= 0 && slot < g.n_slots && late > t->st.slot_late_max[slot])
				t->st.slot_late_max[slot] = late;
			t->due++;
		}
		/* reconnect what waited long enough */
		for (int i = 0; i < t->n_conns; i++) {
			struct lg_conn *c = &t->conns[i];

			if (c->state == C_WAIT && c->retry_ns <= now)
				conn_open(t, c);
		}
		/* hand due requests to idle connections, oldest first */
		while (t->next < t->due) {
			struct lg_conn *c = NULL;

			for (int k = 0; k < t->n_conns; k++) {
				struct lg_conn *cc = &t->conns[(rr + k) % t->n_conns];

				if (cc->state == C_IDLE) {
					c = cc;
					rr = (rr + k + 1) % t->n_conns;
					break;
				}
			}
			if (!c)
				break;
			c->req = &g.reqs[(t->id + t->next * (uint64_t)g.threads) % g.n_reqs];
			c->intended_ns = intended_ns(t, t->next);
			c->sent_ns = mono_ns();
			c->out_off = 0;
			c->state = C_BUSY;
			t->next++;
			t->st.sent++;
			conn_send(t, c);
		}
		for (int i = 0; i < t->n_conns; i++)
			if (t->conns[i].state == C_BUSY)
				busy++;
		if (t->next == t->n_req && busy == 0)
			break;
		if (now >= g.deadline_ns)
			break;
		if ((long)(t->st.err_connect + t->st.err_io) > g.max_errors + 1000) {
			/* hopeless (nothing listens?): stop early rather than spin to the deadline
			 */
			t->st.aborted = true;
			break;
		}
		/* sleep until the next due request, a reconnect, an event or the deadline */
		wake = g.deadline_ns;
		for (int i = 0; i < t->n_conns; i++)
			if (t->conns[i].state == C_WAIT && t->conns[i].retry_ns < wake)
				wake = t->conns[i].retry_ns;
		if (t->due < t->n_req && intended_ns(t, t->due) < wake)
			wake = intended_ns(t, t->due);
		if (wake < now)
			wake = now;
		ts.tv_sec = (wake - now) / 1000000000;
		ts.tv_nsec = (wake - now) % 1000000000;
		n = epoll_pwait2(t->epfd, evs, 256, &ts, NULL);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "loadgen: epoll_pwait2: %s\n", strerror(errno));
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			struct lg_conn *c = &t->conns[(uint32_t)d];
			uint32_t e = evs[i].events;

			if (c->fd < 0 || c->gen != (uint32_t)(d >> 32))
				continue;
			if (c->state == C_CONNECTING) {
				conn_writable(t, c);
				continue;
			}
			if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
				conn_readable(t, c);
			if (c->fd >= 0 && (e & EPOLLOUT))
				conn_writable(t, c);
		}
	}
	t->st.scheduled = t->n_req;
	t->st.unsent = t->n_req - t->next;
	for (int i = 0; i < t->n_conns; i++) {
		if (t->conns[i].state == C_BUSY)
			t->st.unanswered++;
		conn_close(t, &t->conns[i]);
	}
	return NULL;
}

/* open every connection before t0 (at most 5 s), so connecting is not measured */
static void
connect_all(struct lg_thread *t)
{
	int64_t until = mono_ns() + 5000000000LL;
	struct epoll_event evs[256];

	for (int i = 0; i < t->n_conns; i++)
		conn_open(t, &t->conns[i]);
	for (;;) {
		int pending = 0, n;

		for (int i = 0; i < t->n_conns; i++)
			if (t->conns[i].state == C_CONNECTING)
				pending++;
		if (!pending || mono_ns() >= until)
			break;
		n = epoll_wait(t->epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			struct lg_conn *c = &t->conns[(uint32_t)d];

			if (c->fd >= 0 && c->gen == (uint32_t)(d >> 32) && c->state == C_CONNECTING)
				conn_writable(t, c);
		}
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Figures                                                                                    */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array, q in (0, 1] */
static int64_t
pct(const int64_t *v, size_t n, double q)
{
	size_t r;

	if (n == 0)
		return 0;
	r = (size_t)ceil(q * (double)n);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

struct lg_dist {
	int64_t p50, p90, p99, p999, max, min;
	double mean;
};

static struct lg_dist
dist(int64_t *v, size_t n)
{
	struct lg_dist d = { 0 };
	double sum = 0;

	if (n == 0)
		return d;
	qsort(v, n, sizeof(*v), cmp_i64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	d.p50 = pct(v, n, 0.50);
	d.p90 = pct(v, n, 0.90);
	d.p99 = pct(v, n, 0.99);
	d.p999 = pct(v, n, 0.999);
	d.min = v[0];
	d.max = v[n - 1];
	d.mean = sum / (double)n;
	return d;
}

static json_t *
dist_json(const struct lg_dist *d, size_t n)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "p50", (json_int_t)d->p50,
		"p90", (json_int_t)d->p90, "p99", (json_int_t)d->p99, "p99.9", (json_int_t)d->p999,
		"max", (json_int_t)d->max, "min", (json_int_t)d->min, "mean",
		round(d->mean * 10) / 10, "count", (json_int_t)n);
}

static void
usage(FILE *f)
{
	fputs("usage: loadgen --url http://HOST:PORT/PATH --rate R --duration S [options]\n"
	      "\n"
	      "Open-loop HTTP/1.1 load generator: request i is due at t0 + i/R whatever happened to the\n"
	      "others; latency is measured from that intended send time to the end of the answer, so a\n"
	      "stall shows in full (no coordinated omission).  Keep-alive connections, one request in\n"
	      "flight on each; when all are busy, due requests wait (and their latency grows).\n"
	      "\n"
	      "  --url URL            http://HOST:PORT[/PATH]: where to connect; PATH is the default\n"
	      "                       request path\n"
	      "  --rate R             requests per second (required)\n"
	      "  --duration S         seconds during which requests are due (required)\n"
	      "  --connections C      keep-alive connections (default 64)\n"
	      "  --threads T          threads, each with C/T connections and R/T of the rate (default 1)\n"
	      "  --requests FILE      requests to cycle through, one JSON object per line:\n"
	      "                       {\"method\":\"POST\",\"path\":\"/x\",\"headers\":{\"K\":\"V\"},\"body\":\"...\"}\n"
	      "                       (Host and Content-Length are added); default: GET of the URL\n"
	      "  --drain S            after the duration, seconds to finish what is queued or in flight\n"
	      "                       (default 5); what is left counts as unsent / unanswered\n"
	      "  --max-errors N       exit 1 when connection errors + unsent + unanswered exceed N\n"
	      "                       (default 0)\n"
	      "  --json FILE          also write the figures as JSON to FILE (- for stdout)\n"
	      "  --quiet              no text report\n"
	      "  --stall-ms MS        a 100 ms window whose worst latency L is over MS is a stall, blamed\n"
	      "                       on the machine (the probe woke L/2 late in it or the window\n"
	      "                       before), else this program (it saw requests due L/2 late), else\n"
	      "                       the server (default 5)\n"
	      "  --slice-us US        ask the kernel for a US µs time slice for this program's\n"
	      "                       threads (Linux >= 6.12, EEVDF: a shorter slice preempts sooner\n"
	      "                       on wake-up); default: the kernel's\n"
	      "  --no-probe           no probe thread (it sleeps 1 ms at a time and records how late it\n"
	      "                       woke: the machine's own stalls)\n"
	      "  --help               this text\n"
	      "\n"
	      "Exit status: 0 when the run completed within --max-errors (whatever the status codes:\n"
	      "they are reported); 1 otherwise; 2 on usage errors.\n",
		f);
}

static void
on_signal(int sig)
{
	(void)sig;
	lg_interrupted = 1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "requests", required_argument, NULL, 'R' },
		{ "drain", required_argument, NULL, 'D' },
		{ "max-errors", required_argument, NULL, 'e' },
		{ "json", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "stall-ms", required_argument, NULL, 's' },
		{ "slice-us", required_argument, NULL, 'S' },
		{ "no-probe", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lg_thread *th;
	struct lg_stats tot = { 0 };
	struct lg_dist dl, ds, dg, dw, dp;
	pthread_t probe;
	uint64_t jt0 = 0, ji0 = 0, js0 = 0, jt1 = 0, ji1 = 0, js1 = 0;
	bool have_jiffies;
	double steal_pct = -1, busy_pct = -1;
	int64_t *w_lat, *w_late, *w_svc;
	json_t *stalls;
	int n_stall[3] = { 0 }; /* machine, generator, server */
	static const char *const stall_cause[3] = { "machine", "generator", "server" };
	struct sigaction sa;
	int opt, rc = 0;
	double elapsed, achieved;
	uint64_t errors;

	g.connections = 64;
	g.threads = 1;
	g.drain_s = 5;
	g.max_errors = 0;
	g.stall_ms = 5;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			g.url = optarg;
			break;
		case 'r':
			g.rate = opt_double("rate", optarg, 0.001, 10000000);
			break;
		case 'd':
			g.duration_s = opt_double("duration", optarg, 0.001, 86400);
			break;
		case 'c':
			g.connections =
				(int)opt_double("connections", optarg, 1, LG_MAX_CONNECTIONS);
			break;
		case 't':
			g.threads = (int)opt_double("threads", optarg, 1, LG_MAX_THREADS);
			break;
		case 'R':
			g.requests_path = optarg;
			break;
		case 'D':
			g.drain_s = opt_double("drain", optarg, 0, 3600);
			break;
		case 'e':
			g.max_errors = (long)opt_double("max-errors", optarg, 0, 1e12);
			break;
		case 'j':
			g.json_path = optarg;
			break;
		case 'q':
			g.quiet = true;
			break;
		case 's':
			g.stall_ms = opt_double("stall-ms", optarg, 0.01, 60000);
			break;
		case 'S':
			g.slice_us = (long)opt_double("slice-us", optarg, 0, 100000);
			break;
		case 'P':
			g.no_probe = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see loadgen --help)", argv[optind]);
	if (!g.url || g.rate <= 0 || g.duration_s <= 0)
		die("%s (see loadgen --help)", "--url, --rate and --duration are required");
	if (g.threads > g.connections)
		die("%s", "--threads must not exceed --connections");
	if (g.rate * g.duration_s > (double)LG_MAX_REQUESTS)
		die("%s", "rate x duration is over 20 million requests");
	parse_url(g.url);
	if (g.requests_path)
		load_requests(g.requests_path);
	else
		add_request("GET", g.path, NULL, NULL, 0);
	g.total = (uint64_t)ceil(g.rate * g.duration_s - 1e-9);
	g.n_slots = (int64_t)ceil(g.duration_s * 1e9 / (double)LG_SLOT_NS);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	th = calloc((size_t)g.threads, sizeof(*th));
	if (!th)
		die("%s", "out of memory");
	for (int k = 0; k < g.threads; k++) {
		struct lg_thread *t = &th[k];

		t->id = k;
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (t->epfd < 0)
			die("epoll_create1: %s", strerror(errno));
		t->n_conns = g.connections / g.threads + (k < g.connections % g.threads ? 1 : 0);
		t->conns = calloc((size_t)t->n_conns, sizeof(*t->conns));
		if (!t->conns)
			die("%s", "out of memory");
		for (int i = 0; i < t->n_conns; i++) {
			t->conns[i].fd = -1;
			t->conns[i].idx = (uint32_t)i;
		}
		t->n_req = g.total > (uint64_t)k ?
				   (g.total - (uint64_t)k + (uint64_t)g.threads - 1) /
					   (uint64_t)g.threads :
				   0;
		t->st.late = xmalloc((size_t)t->n_req * sizeof(int64_t));
		t->st.slot_max = calloc((size_t)g.n_slots, sizeof(int64_t));
		t->st.slot_late_max = calloc((size_t)g.n_slots, sizeof(int64_t));
		t->st.slot_svc_max = calloc((size_t)g.n_slots, sizeof(int64_t));
		if (!t->st.slot_max || !t->st.slot_late_max || !t->st.slot_svc_max)
			die("%s", "out of memory");
		connect_all(t);
	}
	g.probe_slot_max = calloc((size_t)g.n_slots, sizeof(int64_t));
	if (!g.probe_slot_max)
		die("%s", "out of memory");
	g.t0_ns = mono_ns() + 1000000;
	g.end_ns = g.t0_ns + (int64_t)(g.duration_s * 1e9);
	g.deadline_ns = g.end_ns + (int64_t)(g.drain_s * 1e9);
	have_jiffies = cpu_jiffies(&jt0, &ji0, &js0);
	for (int k = 0; k < g.threads; k++) {
		if (pthread_create(&th[k].tid, NULL, thread_main, &th[k]) != 0)
			die("%s", "pthread_create failed");
	}
	if (!g.no_probe && pthread_create(&probe, NULL, probe_main, NULL) != 0)
		die("%s", "pthread_create failed");
	for (int k = 0; k < g.threads; k++) {
		struct lg_stats *s = &th[k].st;

		pthread_join(th[k].tid, NULL);
		tot.scheduled += s->scheduled;
		tot.sent += s->sent;
		tot.answered += s->answered;
		tot.unsent += s->unsent;
		tot.unanswered += s->unanswered;
		tot.err_connect += s->err_connect;
		tot.err_io += s->err_io;
		tot.status_other += s->status_other;
		tot.aborted |= s->aborted;
		for (int c = 0; c < 600; c++)
			tot.status[c] += s->status[c];
		if (s->last_answer_ns > tot.last_answer_ns)
			tot.last_answer_ns = s->last_answer_ns;
		tot.lat = xrealloc(tot.lat, (tot.n_lat + s->n_lat) * sizeof(int64_t));
		tot.svc = xrealloc(tot.svc, (tot.n_lat + s->n_lat) * sizeof(int64_t));
		tot.lag = xrealloc(tot.lag, (tot.n_lat + s->n_lat) * sizeof(int64_t));
		tot.late = xrealloc(tot.late, (tot.n_late + s->n_late) * sizeof(int64_t));
		if (s->n_late)
			memcpy(tot.late + tot.n_late, s->late, s->n_late * sizeof(int64_t));
		tot.n_late += s->n_late;
		if (s->n_lat) {
			memcpy(tot.lat + tot.n_lat, s->lat, s->n_lat * sizeof(int64_t));
			memcpy(tot.svc + tot.n_lat, s->svc, s->n_lat * sizeof(int64_t));
			memcpy(tot.lag + tot.n_lat, s->lag, s->n_lat * sizeof(int64_t));
		}
		tot.n_lat += s->n_lat;
	}
	g.probe_stop = true;
	if (!g.no_probe)
		pthread_join(probe, NULL);
	if (have_jiffies && cpu_jiffies(&jt1, &ji1, &js1) && jt1 > jt0) {
		steal_pct = 100.0 * (double)(js1 - js0) / (double)(jt1 - jt0);
		busy_pct = 100.0 * (double)(jt1 - jt0 - (ji1 - ji0)) / (double)(jt1 - jt0);
	}
	/* per window, over the threads: the worst latency, lateness and service time */
	w_lat = calloc((size_t)g.n_slots, sizeof(int64_t));
	w_late = calloc((size_t)g.n_slots, sizeof(int64_t));
	w_svc = calloc((size_t)g.n_slots, sizeof(int64_t));
	stalls = json_array();
	if (!w_lat || !w_late || !w_svc || !stalls)
		die("%s", "out of memory");
	for (int64_t i = 0; i < g.n_slots; i++) {
		int64_t lim = (int64_t)(g.stall_ms * 1000), pr = g.probe_slot_max[i], late;
		int cause;

		for (int k = 0; k < g.threads; k++) {
			if (th[k].st.slot_max[i] > w_lat[i])
				w_lat[i] = th[k].st.slot_max[i];
			if (th[k].st.slot_late_max[i] > w_late[i])
				w_late[i] = th[k].st.slot_late_max[i];
			if (th[k].st.slot_svc_max[i] > w_svc[i])
				w_svc[i] = th[k].st.slot_svc_max[i];
		}
		if (w_lat[i] <= lim)
			continue;
		/* a stall delays what is due after it too: look at the window before as well */
		late = w_late[i];
		if (i > 0) {
			if (g.probe_slot_max[i - 1] > pr)
				pr = g.probe_slot_max[i - 1];
			if (w_late[i - 1] > late)
				late = w_late[i - 1];
		}
		cause = !g.no_probe && pr * 2 >= w_lat[i] ? 0 : late * 2 >= w_lat[i] ? 1 : 2;
		n_stall[cause]++;
		json_array_append_new(stalls,
			json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:s}", "from_s",
				(double)i * LG_SLOT_NS / 1e9, "to_s",
				(double)(i + 1) * LG_SLOT_NS / 1e9, "max_us", (json_int_t)w_lat[i],
				"generator_late_us", (json_int_t)w_late[i], "service_us",
				(json_int_t)w_svc[i], "probe_us",
				(json_int_t)(g.no_probe ? -1 : pr), "cause", stall_cause[cause]));
	}
	dp = dist(g.probe_over, g.n_probe);
	elapsed = tot.last_answer_ns > g.t0_ns ? (double)(tot.last_answer_ns - g.t0_ns) / 1e9 : 0;
	if (elapsed < g.duration_s)
		elapsed = g.duration_s;
	achieved = (double)tot.answered / elapsed;
	dl = dist(tot.lat, tot.n_lat);
	ds = dist(tot.svc, tot.n_lat);
	dg = dist(tot.lag, tot.n_lat);
	dw = dist(tot.late, tot.n_late);
	errors = tot.err_connect + tot.err_io + tot.unsent + tot.unanswered;
	if ((long)errors > g.max_errors || tot.aborted)
		rc = 1;

	if (!g.quiet) {
		bool first = true;

		printf("loadgen %s  %.0f req/s for %.1f s over %d connections (%d thread%s, %zu "
		       "distinct requests)\n",
			g.url, g.rate, g.duration_s, g.connections, g.threads,
			g.threads == 1 ? "" : "s", g.n_reqs);
		printf("  %-10s %" PRIu64 " scheduled, %" PRIu64 " sent, %" PRIu64
		       " answered, %" PRIu64 " unsent, %" PRIu64 " unanswered\n",
			"requests", tot.scheduled, tot.sent, tot.answered, tot.unsent,
			tot.unanswered);
		printf("  %-10s connect %" PRIu64 ", io %" PRIu64 "%s\n", "errors", tot.err_connect,
			tot.err_io, tot.aborted ? " (run cut short)" : "");
		printf("  %-10s", "status");
		for (int c = 0; c < 600; c++) {
			if (tot.status[c]) {
				printf("%s%d: %" PRIu64, first ? " " : ", ", c, tot.status[c]);
				first = false;
			}
		}
		if (tot.status_other)
			printf("%sother: %" PRIu64, first ? " " : ", ", tot.status_other);
		else if (first)
			printf(" none");
		printf("\n");
		printf("  %-10s %.1f req/s achieved\n", "rate", achieved);
		printf("  %-10s p50 %" PRId64 "  p90 %" PRId64 "  p99 %" PRId64 "  p99.9 %" PRId64
		       "  max %" PRId64 " µs (from intended send time)\n",
			"latency", dl.p50, dl.p90, dl.p99, dl.p999, dl.max);
		printf("  %-10s p50 %" PRId64 "  p99 %" PRId64 "  max %" PRId64
		       " µs (from actual send time)\n",
			"service", ds.p50, ds.p99, ds.max);
		printf("  %-10s p50 %" PRId64 "  p99 %" PRId64 "  max %" PRId64
		       " µs (intended -> actual send: waiting for a connection, or this program late)\n",
			"send lag", dg.p50, dg.p99, dg.max);
		printf("  %-10s p50 %" PRId64 "  p99 %" PRId64 "  max %" PRId64
		       " µs (intended -> this program saw it due: its own lateness, CPU starved)\n",
			"late", dw.p50, dw.p99, dw.max);
		if (!g.no_probe)
			printf("  %-10s p50 %" PRId64 "  p99 %" PRId64 "  max %" PRId64
			       " µs (a thread sleeping 1 ms at a time: how late it woke; the machine)\n",
				"probe", dp.p50, dp.p99, dp.max);
		if (steal_pct >= 0)
			printf("  %-10s %.1f %% busy over the run (every process), %.2f %% stolen by "
			       "the hypervisor\n",
				"machine", busy_pct, steal_pct);
		printf("  %-10s %zu windows of 100 ms over %g ms: %d machine (the probe woke late "
		       "too), %d generator (late itself), %d server\n",
			"stalls", json_array_size(stalls), g.stall_ms, n_stall[0], n_stall[1],
			n_stall[2]);
		if (busy_pct >= 95 && n_stall[2])
			printf("    (the machine was %.0f %% busy: a window blamed on the server may be its "
			       "fair share of CPU falling short, which the probe does not see)\n",
				busy_pct);
		for (size_t i = 0; i < json_array_size(stalls) && i < 12; i++) {
			json_t *w = json_array_get(stalls, i);

			printf("    %5.1f-%-5.1f s  max %6.2f ms  generator late %6.2f ms  service "
			       "%6.2f ms  probe %6.2f ms  -> %s\n",
				json_real_value(json_object_get(w, "from_s")),
				json_real_value(json_object_get(w, "to_s")),
				(double)json_integer_value(json_object_get(w, "max_us")) / 1000,
				(double)json_integer_value(
					json_object_get(w, "generator_late_us")) /
					1000,
				(double)json_integer_value(json_object_get(w, "service_us")) / 1000,
				(double)json_integer_value(json_object_get(w, "probe_us")) / 1000,
				json_string_value(json_object_get(w, "cause")));
		}
		if (json_array_size(stalls) > 12)
			printf("    ... (%zu more)\n", json_array_size(stalls) - 12);
	}
	if (g.json_path) {
		json_t *j = json_object(), *st = json_object();
		FILE *f;
		char code[16];

		json_object_set_new(j, "url", json_string(g.url));
		json_object_set_new(j, "rate", json_real(g.rate));
		json_object_set_new(j, "duration_s", json_real(g.duration_s));
		json_object_set_new(j, "connections", json_integer(g.connections));
		json_object_set_new(j, "threads", json_integer(g.threads));
		json_object_set_new(j, "distinct_requests", json_integer((json_int_t)g.n_reqs));
		json_object_set_new(j, "scheduled", json_integer((json_int_t)tot.scheduled));
		json_object_set_new(j, "sent", json_integer((json_int_t)tot.sent));
		json_object_set_new(j, "answered", json_integer((json_int_t)tot.answered));
		json_object_set_new(j, "unsent", json_integer((json_int_t)tot.unsent));
		json_object_set_new(j, "unanswered", json_integer((json_int_t)tot.unanswered));
		json_object_set_new(j, "errors",
			json_pack("{s:I, s:I}", "connect", (json_int_t)tot.err_connect, "io",
				(json_int_t)tot.err_io));
		for (int c = 0; c < 600; c++) {
			if (tot.status[c]) {
				snprintf(code, sizeof(code), "%d", c);
				json_object_set_new(st, code,
					json_integer((json_int_t)tot.status[c]));
			}
		}
		if (tot.status_other)
			json_object_set_new(st, "other",
				json_integer((json_int_t)tot.status_other));
		json_object_set_new(j, "status", st);
		json_object_set_new(j, "achieved_rate", json_real(round(achieved * 10) / 10));
		json_object_set_new(j, "latency_us", dist_json(&dl, tot.n_lat));
		json_object_set_new(j, "service_us", dist_json(&ds, tot.n_lat));
		json_object_set_new(j, "send_lag_us", dist_json(&dg, tot.n_lat));
		json_object_set_new(j, "generator_late_us", dist_json(&dw, tot.n_late));
		{
			json_t *tl = json_array();

			for (int64_t i = 0; i < g.n_slots; i++) {
				int64_t m = 0;

				for (int k = 0; k < g.threads; k++)
					if (th[k].st.slot_max[i] > m)
						m = th[k].st.slot_max[i];
				json_array_append_new(tl, json_integer((json_int_t)m));
			}
			json_object_set_new(j, "timeline_slot_ms",
				json_integer(LG_SLOT_NS / 1000000));
			json_object_set_new(j, "timeline_max_us", tl);
			tl = json_array();
			for (int64_t i = 0; i < g.n_slots; i++)
				json_array_append_new(tl, json_integer((json_int_t)w_late[i]));
			json_object_set_new(j, "timeline_generator_late_us", tl);
			tl = json_array();
			for (int64_t i = 0; i < g.n_slots; i++)
				json_array_append_new(tl, json_integer((json_int_t)w_svc[i]));
			json_object_set_new(j, "timeline_service_us", tl);
			if (!g.no_probe) {
				tl = json_array();
				for (int64_t i = 0; i < g.n_slots; i++)
					json_array_append_new(tl,
						json_integer((json_int_t)g.probe_slot_max[i]));
				json_object_set_new(j, "timeline_probe_us", tl);
				json_object_set_new(j, "probe_oversleep_us",
					dist_json(&dp, g.n_probe));
			}
		}
		json_object_set_new(j, "steal_pct",
			steal_pct >= 0 ? json_real(round(steal_pct * 100) / 100) : json_null());
		json_object_set_new(j, "machine_busy_pct",
			busy_pct >= 0 ? json_real(round(busy_pct * 10) / 10) : json_null());
		json_object_set_new(j, "stall_ms", json_real(g.stall_ms));
		json_object_set_new(j, "stalls", json_incref(stalls));
		json_object_set_new(j, "stall_causes",
			json_pack("{s:i, s:i, s:i}", "machine", n_stall[0], "generator", n_stall[1],
				"server", n_stall[2]));
		json_object_set_new(j, "aborted", json_boolean(tot.aborted));
		json_object_set_new(j, "ok", json_boolean(rc == 0));
		if (strcmp(g.json_path, "-") == 0)
			f = stdout;
		else
			f = fopen(g.json_path, "w");
		if (!f || json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
			fprintf(stderr, "loadgen: cannot write %s\n", g.json_path);
			rc = 1;
		}
		if (f && f != stdout)
			fclose(f);
		else if (f)
			fputc('\n', f);
		json_decref(j);
	}
	if (rc && !g.quiet)
		fprintf(stderr,
			"loadgen: %" PRIu64 " errors (connect %" PRIu64 ", io %" PRIu64
			", unsent %" PRIu64 ", unanswered %" PRIu64 ") over --max-errors %ld%s\n",
			errors, tot.err_connect, tot.err_io, tot.unsent, tot.unanswered,
			g.max_errors, tot.aborted ? "; run cut short" : "");
	fflush(stdout);
	for (int k = 0; k < g.threads; k++) {
		for (int i = 0; i < th[k].n_conns; i++)
			free(th[k].conns[i].in);
		free(th[k].conns);
		free(th[k].st.lat);
		free(th[k].st.svc);
		free(th[k].st.lag);
		free(th[k].st.late);
		free(th[k].st.slot_max);
		free(th[k].st.slot_late_max);
		free(th[k].st.slot_svc_max);
		close(th[k].epfd);
	}
	free(th);
	free(w_lat);
	free(w_late);
	free(w_svc);
	json_decref(stalls);
	free(g.probe_slot_max);
	free(g.probe_over);
	free(tot.lat);
	free(tot.svc);
	free(tot.lag);
	free(tot.late);
	for (size_t i = 0; i < g.n_reqs; i++)
		free(g.reqs[i].buf);
	free(g.reqs);
	return rc;
}
