/* callrouted/config.h: the configuration block and its key table (callrouted, callroutectl -c). */
#ifndef CALLROUTED_CONFIG_H
#define CALLROUTED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
	char *database_url;
	char *listen;       /* host:port of the webhook listener */
	char *admin_listen; /* host:port of the admin listener */
	char *state_dir;
	int log_level; /* LOG_ERROR .. LOG_DEBUG */
	int64_t refresh_interval_ms;
	int64_t reconnect_interval_ms;
	int64_t signature_tolerance_ms;
	size_t max_body_bytes;
	size_t max_header_bytes;
	int64_t request_timeout_ms;   /* a request's head and body must arrive within this */
	int64_t keepalive_timeout_ms; /* an idle keep-alive connection is closed after this */
	int max_connections;          /* webhook connections open at once (over: refused) */
	int admin_max_connections;    /* admin connections open at once (over: 503) */
	int admin_db_connections;     /* the admin API's database connections */
	int64_t admin_token_cache_ms; /* how long a checked token is kept (0: never) */
	size_t admin_max_header_bytes;
	size_t admin_max_body_bytes;
	int64_t admin_request_timeout_ms; /* absolute: a dripping client cannot extend it */
	int64_t admin_keepalive_timeout_ms;
	char *tls_cert_file; /* PEM chain; with tls_key_file: the webhook listener speaks TLS */
	char *tls_key_file;
	int workers; /* 0 = auto: one per core */
	char *instance_name;
	char *vapi_no_agent_message;
	char *public_url;       /* how providers reach our webhook listener (https://host[:port]) */
	char *provider_ca_file; /* CA bundle for provider APIs ("" = the system store) */
	int64_t provider_timeout_ms;
	int64_t provider_sync_interval_ms; /* the periodic drift check; 0: off */
	int64_t shutdown_delay_ms; /* SIGTERM: not ready at once, listeners closed after this */
	char *routes_database_url; /* "" = database_url */
	int64_t change_poll_interval_ms;
	char *replication_wait; /* "auto" or "off" */
	int64_t replication_wait_timeout_ms;
};

/* Parse and validate FILE into a new block; on error logs "FILE:LINE: key: reason" and returns
 * NULL. */
struct config *config_load(const char *path);
void config_free(struct config *c);
/* The configuration in force, for any thread; publish replaces it (SIGHUP).  Old blocks are
 * kept until config_free_all() at exit, so a reader never sees one freed. */
const struct config *config_current(void);
void config_publish(struct config *c);
void config_free_all(void);
/* Log what changed from old to new; false if a key that needs a restart changed (the rows
 * marked CF_NO_RELOAD in the key table: those keep their old values in new, so the running
 * process stays consistent). */
bool config_reconcile(const struct config *old, struct config *new);
/* False for a restart-only key (and for a name that is no key). */
bool config_key_reloadable(const char *name);
/* Print every key with its default and help line (for --help and the conf test). */
void config_print_keys(FILE *f);
/* The same as an mdoc tag list (.Bl ... .El) for callrouted.conf(5): type, help, default,
 * range and whether SIGHUP applies it (callrouted --print-config-man; the build's man page). */
void config_print_man(FILE *f);
/* Names of every key, NULL-terminated (for the test that checks conf/callrouted.conf). */
const char *const *config_key_names(void);

#endif
