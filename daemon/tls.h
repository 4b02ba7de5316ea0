/* tls.h: the webhook listener's TLS context: loaded at start, reloaded on SIGHUP. */
#ifndef CALLROUTED_TLS_H
#define CALLROUTED_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

/* Load cert+key (PEM); false (logged) if they do not load or do not match.  Empty paths: no
 * TLS.  At start a failure is fatal; on reload the old context stays in force. */
bool tls_setup(const char *cert_file, const char *key_file) __attribute__((warn_unused_result));
bool tls_reload(const char *cert_file, const char *key_file);
bool tls_enabled(void);
/* A reference to the context in force (SSL_CTX_free it), NULL without TLS; any thread. */
SSL_CTX *tls_context(void);
void tls_cleanup(void);

#endif
