/* SPDX-License-Identifier: MIT */
/* The identity handed to the app: X-Pomerium-Jwt-Assertion and X-Pomerium-Claim-* headers. */
#ifndef AUTHZ_ASSERTION_H
#define AUTHZ_ASSERTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include "common/config.h"
#include "common/jose.h"
#include "common/session.h"

#define AUTHZ_ASSERTION_TTL_S 300
#define AUTHZ_ASSERTION_REUSE_MARGIN_S 60 /* a cached assertion is reused until exp - this */
#define AUTHZ_ASSERTION_CACHE_SLOTS 4096
#define AUTHZ_HEADER_BLOCK_MAX 4096       /* the seed's proxy_buffer_size 4k */
#define AUTHZ_HEADER_OVERHEAD 512         /* status line, Date, Server, Content-* */
#define AUTHZ_CLAIM_HEADERS_MAX 64
#define AUTHZ_CLAIM_VALUE_MAX 1024

typedef struct st_authz_assertion_params_t {
    const cmn_config_t *config;
    const cmn_signer_t *signer;
    const cmn_route_t *route;     /* for its jwt_groups_filter */
    const cmn_session_t *session;
    uint64_t session_version;     /* record version: a changed session gets a new assertion */
    uint64_t table_generation;    /* of the route table in force: a reload changes filters */
    h2o_iovec_t audience;         /* the route host, lower-case */
    uint64_t now;
    size_t max_len;               /* longest acceptable JWT; 0 = no limit */
} authz_assertion_params_t;

/**
 * The claims of an assertion: iss, aud, sub, user, email, groups (filtered), name, sid, jti,
 * iat, exp (now + AUTHZ_ASSERTION_TTL_S, never past the session's expiry). With
 * `with_groups` false, "groups" is left out and "groups_truncated": true is set. Caller decrefs.
 */
json_t *authz_assertion_claims(const authz_assertion_params_t *p, bool with_groups);

/* how much of the identity an assertion carries, from all to the least that still identifies */
typedef enum en_authz_claims_size_t {
    AUTHZ_CLAIMS_FULL = 0,
    AUTHZ_CLAIMS_NO_GROUPS,        /* "groups_truncated": true */
    AUTHZ_CLAIMS_NO_GROUPS_NO_NAME /* also "name_truncated": true */
} authz_claims_size_t;

/** the claims at a given size; caller decrefs */
json_t *authz_assertion_claims_shrunk(const authz_assertion_params_t *p,
                                      authz_claims_size_t size);

/**
 * Signs an assertion; when it would be longer than p->max_len, signs it again without groups,
 * then also without the name, and sets `*truncated`. Returns a malloc'd JWT (caller frees), or
 * NULL: with `*truncated` false signing failed; with it true even the smallest form is too long
 * (an identity no header block can carry).
 */
char *authz_assertion_mint(const authz_assertion_params_t *p, bool *truncated);

/* per-thread cache of signed assertions keyed by (session, version, audience, route) */
typedef struct st_authz_assertion_cache_t authz_assertion_cache_t;
authz_assertion_cache_t *authz_assertion_cache_create(void);
void authz_assertion_cache_destroy(authz_assertion_cache_t *cache);

/**
 * A signed assertion from the cache, or a new one that is then cached. The result is borrowed
 * from the cache: copy it before the next call on the same cache. NULL when minting failed
 * (`*truncated` as for authz_assertion_mint).
 * Not thread-safe: one cache per thread.
 */
const char *authz_assertion_get(authz_assertion_cache_t *cache, const authz_assertion_params_t *p,
                                bool *truncated);

typedef struct st_authz_header_t {
    h2o_iovec_t name;
    h2o_iovec_t value;
} authz_header_t;

/**
 * The X-Pomerium-Claim-<Name> headers for the config's jwt_claims_headers, built in the pool:
 * arrays joined with commas, control bytes dropped, absent claims skipped, and no more than
 * `budget` bytes of "name: value\r\n" in all. Returns the number written to `out`.
 */
size_t authz_claim_headers(h2o_mem_pool_t *pool, const cmn_config_t *config,
                           const cmn_session_t *session, size_t budget,
                           authz_header_t out[AUTHZ_CLAIM_HEADERS_MAX]);

#endif
