/* httpc.c: the asynchronous HTTP(S) client for provider APIs (bufferevent_openssl). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "httpc.h"
#include "callrouted/log.h"

static struct event_base *httpc_base;
static SSL_CTX *httpc_ctx;

struct httpc_call {
	struct evhttp_connection *evcon;
	SSL *ssl; /* owned by the bufferevent */
	httpc_done_fn done;
	void *arg;
	bool finished;
	enum evhttp_request_error err;
	bool errored;
	char host[256];
	char method[8];
	char path[1024];
	LIST_ENTRY(httpc_call) link; /* in httpc_calls until freed */
};

/* Calls sent and not yet freed: httpc_cleanup frees those still in flight when the loop
 * stops (their owners are gone too), so nothing leaks at exit. */
static LIST_HEAD(, httpc_call) httpc_calls = LIST_HEAD_INITIALIZER(httpc_calls);

bool
httpc_setup(struct event_base *base, const char *ca_file)
{
	httpc_base = base;
	httpc_ctx = SSL_CTX_new(TLS_client_method());
	if (!httpc_ctx)
		return false;
	SSL_CTX_set_min_proto_version(httpc_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(httpc_ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(httpc_ctx, ca_file, NULL) != 1) {
			log_error("httpc: could not load provider_ca_file \"%s\"", ca_file);
			return false;
		}
	} else if (SSL_CTX_set_default_verify_paths(httpc_ctx) != 1) {
		log_error("httpc: could not load the system's CA certificates");
		return false;
	}
	return true;
}

void
httpc_abort_all(void)
{
	struct httpc_call *c, *next;

	for (c = LIST_FIRST(&httpc_calls); c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->finished)
			continue; /* answered: its free is already scheduled (httpc_free_cb) */
		LIST_REMOVE(c, link);
		c->finished = true; /* no callback: its owner is being stopped */
		evhttp_connection_free(c->evcon);
		free(c);
	}
}

void
httpc_cleanup(void)
{
	struct httpc_call *c;

	while ((c = LIST_FIRST(&httpc_calls)) != NULL) {
		LIST_REMOVE(c, link);
		c->finished = true; /* no callback: its owner is being freed */
		evhttp_connection_free(c->evcon);
		free(c);
	}
	SSL_CTX_free(httpc_ctx);
	httpc_ctx = NULL;
}

static void
httpc_finish(struct httpc_call *c, struct evhttp_request *req)
{
	struct httpc_response r = { 0 };
	char detail[1024] = "";
	char *body = NULL;

	if (c->finished)
		return;
	c->finished = true;
	if (req && evhttp_request_get_response_code(req) > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);

		body = malloc(len + 1);
		if (body) {
			evbuffer_copyout(in, body, len);
			body[len] = 0;
			r.body = body;
			r.len = len;
		} else {
			r.body = "";
		}
		r.failure = HTTPC_OK;
		r.status = evhttp_request_get_response_code(req);
	} else {
		unsigned long e = 0, tls;

		if (c->ssl) {
			long v = SSL_get_verify_result(c->ssl);

			while ((tls = ERR_get_error()) != 0)
				e = tls;
			if (v != X509_V_OK) {
				snprintf(detail, sizeof(detail), "certificate of %s refused: %s",
					c->host, X509_verify_cert_error_string(v));
				r.failure = HTTPC_TLS;
			} else if (e) {
				snprintf(detail, sizeof(detail), "TLS with %s failed: %s", c->host,
					ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
								     "error");
				r.failure = HTTPC_TLS;
			}
		}
		if (!r.failure) {
			if (c->errored && c->err == EVREQ_HTTP_TIMEOUT) {
				r.failure = HTTPC_TIMEOUT;
				snprintf(detail, sizeof(detail), "%s did not answer in time",
					c->host);
			} else {
				r.failure = HTTPC_CONNECT;
				snprintf(detail, sizeof(detail), "could not reach %s", c->host);
			}
		}
		r.body = "";
		r.detail = detail;
	}
	log_debug("httpc: %s %s%s -> %d %s", c->method, c->host, c->path, r.status,
		r.detail ? log_esc(r.detail) : "");
	c->done(c->arg, &r);
	free(body);
}

/* The connection is freed on a later loop pass: not from inside its own callback. */
static void
httpc_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc_call *c = arg;

	LIST_REMOVE(c, link);
	evhttp_connection_free(c->evcon);
	free(c);
}

static void
httpc_done_cb(struct evhttp_request *req, void *arg)
{
	struct httpc_call *c = arg;

	httpc_finish(c, req);
	ERR_clear_error();
	if (event_base_once(httpc_base, -1, EV_TIMEOUT, httpc_free_cb, c, NULL) != 0)
		log_error("httpc: could not schedule freeing a connection");
}

static void
httpc_error_cb(enum evhttp_request_error err, void *arg)
{
	struct httpc_call *c = arg;

	c->errored = true;
	c->err = err;
}

bool
httpc_request(const char *base_url, const struct papi_request *req, int timeout_s,
	httpc_done_fn done, void *arg)
{
	struct evhttp_uri *uri = evhttp_uri_parse(base_url);
	const char *scheme, *host, *prefix;
	struct httpc_call *c = NULL;
	struct bufferevent *bev = NULL;
	struct evhttp_request *hreq;
	struct evkeyvalq *h;
	enum evhttp_cmd_type cmd;
	char path[1024], clen[24];
	bool tls;
	int port;

	if (!uri)
		return false;
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	prefix = evhttp_uri_get_path(uri);
	if (!scheme || !host || !*host ||
		(strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		evhttp_uri_free(uri);
		return false;
	}
	tls = strcmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(uri);
	if (port < 0)
		port = tls ? 443 : 80;
	if (strcmp(req->method, "GET") == 0)
		cmd = EVHTTP_REQ_GET;
	else if (strcmp(req->method, "POST") == 0)
		cmd = EVHTTP_REQ_POST;
	else if (strcmp(req->method, "PATCH") == 0)
		cmd = EVHTTP_REQ_PATCH;
	else if (strcmp(req->method, "DELETE") == 0)
		cmd = EVHTTP_REQ_DELETE;
	else
		cmd = EVHTTP_REQ_PUT;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->done = done;
	c->arg = arg;
	snprintf(c->host, sizeof(c->host), "%s", host);
	snprintf(c->method, sizeof(c->method), "%s", req->method);
	snprintf(path, sizeof(path), "%s%s", prefix && strcmp(prefix, "/") != 0 ? prefix : "",
		req->path);
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (tls) {
		c->ssl = SSL_new(httpc_ctx);
		if (!c->ssl)
			goto fail;
		SSL_set_tlsext_host_name(c->ssl, host);
		/* certificate must name the host (IP addresses too) */
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(c->ssl, host))
			goto fail;
		bev = bufferevent_openssl_socket_new(httpc_base, -1, c->ssl,
			BUFFEREVENT_SSL_CONNECTING,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (!bev) {
			SSL_free(c->ssl);
			c->ssl = NULL;
			goto fail;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(httpc_base, -1,
			BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (!bev)
			goto fail;
	}
	c->evcon = evhttp_connection_base_bufferevent_new(httpc_base, NULL, bev, host,
		(unsigned short)port);
	if (!c->evcon) {
		bufferevent_free(bev);
		goto fail;
	}
	evhttp_connection_set_timeout(c->evcon, timeout_s);
	evhttp_connection_set_retries(c->evcon, 0);
	hreq = evhttp_request_new(httpc_done_cb, c);
	if (!hreq)
		goto fail_conn;
	evhttp_request_set_error_cb(hreq, httpc_error_cb);
	h = evhttp_request_get_output_headers(hreq);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Accept", "application/json");
	evhttp_add_header(h, "User-Agent", "callrouted/" CALLROUTED_VERSION);
	evhttp_add_header(h, "Connection", "close");
	if (req->auth_name[0])
		evhttp_add_header(h, req->auth_name, req->auth_value);
	if (req->body) {
		char *s = json_dumps(req->body, JSON_COMPACT);

		if (!s) {
			evhttp_request_free(hreq);
			goto fail_conn;
		}
		evhttp_add_header(h, "Content-Type", "application/json");
		/* libevent 2.1 adds Content-Length by itself for POST and PUT only: a PATCH would
		 * go out with its body unannounced */
		snprintf(clen, sizeof(clen), "%zu", strlen(s));
		evhttp_add_header(h, "Content-Length", clen);
		evbuffer_add(evhttp_request_get_output_buffer(hreq), s, strlen(s));
		free(s);
	}
	ERR_clear_error();
	if (evhttp_make_request(c->evcon, hreq, cmd, path) != 0)
		goto fail_conn; /* evhttp_make_request frees the request on failure */
	LIST_INSERT_HEAD(&httpc_calls, c, link);
	evhttp_uri_free(uri);
	return true;
fail_conn:
	evhttp_connection_free(c->evcon);
fail:
	free(c);
	evhttp_uri_free(uri);
	return false;
}
