/* tls.c: the webhook listener's TLS context: loaded at start, reloaded on SIGHUP. */
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "callrouted/log.h"
#include "tls.h"

/* TLS 1.2 suites: forward secrecy and AEAD only (Mozilla's "intermediate"); TLS 1.3 keeps
 * OpenSSL's defaults, which are all of that kind. */
#define TLS_CIPHERS                                                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx;
static bool tls_on;

static void
tls_log_errors(const char *what, const char *file)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	log_error("tls: %s \"%s\": %s", what, file,
		last && ERR_reason_error_string(last) ? ERR_reason_error_string(last) : "error");
}

static SSL_CTX *
tls_build(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx,
		SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* wire.c's output buffer may move between a partial SSL_write and its retry */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_log_errors("could not load the certificate", cert_file);
		goto fail_logged;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_log_errors("could not load the key", key_file);
		goto fail_logged;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors("the key does not match the certificate", cert_file);
		goto fail_logged;
	}
	return ctx;
fail:
	tls_log_errors("could not set up", cert_file);
fail_logged:
	SSL_CTX_free(ctx);
	return NULL;
}

bool
tls_setup(const char *cert_file, const char *key_file)
{
	tls_on = cert_file && *cert_file;
	if (!tls_on)
		return true;
	tls_ctx = tls_build(cert_file, key_file);
	if (tls_ctx)
		log_info("tls: webhook listener certificate \"%s\"", cert_file);
	return tls_ctx != NULL;
}

bool
tls_reload(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx, *old;

	if (!tls_on)
		return true;
	if (!cert_file || !*cert_file) {
		log_warning("tls: TLS cannot be turned off by a reload; keeping it");
		return false;
	}
	ctx = tls_build(cert_file, key_file);
	if (!ctx) {
		log_error("tls: keeping the certificate in force");
		return false;
	}
	pthread_mutex_lock(&tls_lock);
	old = tls_ctx;
	tls_ctx = ctx;
	pthread_mutex_unlock(&tls_lock);
	/* connections made with the old context hold their own reference */
	SSL_CTX_free(old);
	log_info("tls: certificate \"%s\" reloaded", cert_file);
	return true;
}

bool
tls_enabled(void)
{
	return tls_on;
}

SSL_CTX *
tls_context(void)
{
	SSL_CTX *ctx;

	if (!tls_on)
		return NULL;
	pthread_mutex_lock(&tls_lock);
	ctx = tls_ctx;
	if (ctx)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&tls_lock);
	return ctx;
}

void
tls_cleanup(void)
{
	pthread_mutex_lock(&tls_lock);
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	pthread_mutex_unlock(&tls_lock);
}
