/* SPDX-License-Identifier: MIT */
/* The target URL T of a /verify request (DESIGN.md §4) and the path policy matches on. */
#ifndef AUTHZ_TARGET_H
#define AUTHZ_TARGET_H

#include <stdint.h>
#include <h2o.h>
#include "common/url.h"

#define AUTHZ_TARGET_MAX CMN_URL_MAX
#define AUTHZ_METHOD_MAX 32

extern const char authz_err_no_target[];
extern const char authz_err_bad_path[];

/* where T may come from; every field is borrowed and {NULL, 0} when absent */
typedef struct st_authz_target_input_t {
    h2o_iovec_t query;           /* the raw query of the request (after '?') */
    h2o_iovec_t original_url;    /* X-Original-URL */
    h2o_iovec_t original_method; /* X-Original-Method */
    h2o_iovec_t fwd_proto;       /* X-Forwarded-Proto */
    h2o_iovec_t fwd_host;        /* X-Forwarded-Host */
    h2o_iovec_t fwd_uri;         /* X-Forwarded-Uri */
    h2o_iovec_t fwd_method;      /* X-Forwarded-Method */
    h2o_iovec_t req_method;      /* the method of the request itself */
} authz_target_input_t;

typedef struct st_authz_target_t {
    h2o_iovec_t raw;    /* T, NUL-terminated, in the pool */
    cmn_url_t url;      /* parts of raw */
    h2o_iovec_t host;   /* lower-case, no port, NUL-terminated (pool) */
    uint16_t port;      /* effective port */
    h2o_iovec_t path;   /* decoded and normalised, NUL-terminated (pool) */
    h2o_iovec_t method;
} authz_target_t;

/**
 * Derives T: the `uri` parameter (raw to the end of the query when it starts with http:// or
 * https://, else percent-decoded once), else X-Original-URL, else X-Forwarded-Proto, -Host and
 * -Uri. When `uri` and X-Original-URL agree on scheme, host and path, the header wins (its full
 * query). Returns 0, or -1 with `*err` = authz_err_no_target, cmn_err_too_large,
 * cmn_err_malformed (bad escape), authz_err_bad_path or a cmn_url_parse error.
 */
int authz_target_derive(h2o_mem_pool_t *pool, const authz_target_input_t *in,
                        authz_target_t *out, const char **err);

/** parses an already derived T string into `out` (the same checks as authz_target_derive) */
int authz_target_parse(h2o_mem_pool_t *pool, h2o_iovec_t raw, authz_target_t *out,
                       const char **err);

/**
 * Decodes and normalises a raw URL path the way the upstream sees it: %2F, %5C, NUL (%00) and a
 * raw backslash refuse it (authz_err_bad_path), a bad escape is cmn_err_malformed; then
 * percent-decoding once, merging slashes and resolving "." and ".." segments (never above the
 * root). An empty path is "/". The result is NUL-terminated, in the pool.
 */
int authz_path_normalize(h2o_mem_pool_t *pool, h2o_iovec_t raw, h2o_iovec_t *out,
                         const char **err);

#endif
