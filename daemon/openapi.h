/* openapi.h: the admin API's OpenAPI document, served at GET /v1/openapi.json. */
/* daemon/openapi.json, embedded at build time by daemon/openapi_embed.cmake. */
#ifndef CALLROUTED_OPENAPI_H
#define CALLROUTED_OPENAPI_H

#include <stddef.h>

extern const char openapi_json[]; /* NUL-terminated */
extern const size_t openapi_json_len;

#endif
