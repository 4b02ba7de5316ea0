/* providers/papi_util.h: helpers shared by the providers' REST request builders (private). */
#ifndef CALLROUTED_PAPI_UTIL_H
#define CALLROUTED_PAPI_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "callrouted/e164.h"
#include "provider_api.h"

#define PAPI_ID_MAX 127 /* provider ids: agents, numbers, calls */
#define PAPI_NICKNAME_MAX 64
#define PAPI_API_KEY_MAX 256
#define PAPI_URL_MAX 2048

bool papi_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool papi_check_text(const char *what, const char *s, size_t max, char *err, size_t errlen);
bool papi_check_area_code(const char *s, char *err, size_t errlen);
bool papi_check_nickname(const char *s, char *err, size_t errlen);
bool papi_to_e164(const char *what, const char *s, char out[E164_BUFSIZE], char *err,
	size_t errlen);
bool papi_req_fail(struct papi_request *out);
bool papi_req_start(const struct papi_ctx *c, const char *method, const char *prefix,
	const char *arg, const char *auth_name, const char *auth_scheme, struct papi_request *out,
	char *err, size_t errlen);
bool papi_req_body(struct papi_request *out, json_t *body, char *err, size_t errlen);
bool papi_check_webhook(const struct papi_ctx *c, char *err, size_t errlen);
json_t *papi_load_object(const char *body, size_t len, char *err, size_t errlen);
bool papi_copy_string(json_t *o, const char *key, char *out, size_t outlen, char *err,
	size_t errlen);
bool papi_copy_e164(json_t *o, const char *key, char out[E164_BUFSIZE], char *err, size_t errlen);
void papi_msg_append(char *out, size_t outlen, const char *s);
/* A 2xx answer's string field key into out (a call id, say). */
bool papi_parse_field(const char *body, size_t len, const char *key, char *out, size_t outlen,
	char *err, size_t errlen);

/* Listing (provider_api.h, list_* and parse_*): an answer of any JSON type; a field as a JSON
 * string or null; a normalised number or agent appended to the array into (json_t arguments
 * stolen). */
json_t *papi_load_json(const char *body, size_t len, char *err, size_t errlen);
json_t *papi_item_str(json_t *o, const char *key, size_t max);
json_t *papi_item_e164(json_t *o, const char *key);
bool papi_listed_number(json_t *into, json_t *e164, json_t *id, json_t *webhook, json_t *agents,
	json_t *owner, json_t *credential, json_t *name, char *err, size_t errlen);
bool papi_listed_agent(json_t *into, json_t *id, json_t *name, char *err, size_t errlen);
bool papi_listed_has(json_t *into, json_t *id);

#endif
