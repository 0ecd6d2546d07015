/* SPDX-License-Identifier: MIT */
/* The session cookie: an AEAD box holding the session id and its lifetime, bound to a scope. */
#ifndef CMN_COOKIE_H
#define CMN_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "common/crypto.h"

#define CMN_SESSION_ID_MAX 64
#define CMN_COOKIE_VALUE_MAX 200

typedef struct st_cmn_session_ticket_t {
    char session_id[CMN_SESSION_ID_MAX + 1];
    uint64_t issued;  /* unix seconds */
    uint64_t expiry;  /* unix seconds */
} cmn_session_ticket_t;

/**
 * Encodes a ticket as a cookie value: base64url(AEAD(key, payload)) with `name` and `scope`
 * (the host for a host-only cookie, else the cookie domain) as associated data, so the value
 * is refused under another name or scope. Writes a NUL-terminated value of less than
 * CMN_COOKIE_VALUE_MAX bytes into out. Returns 0 or -1.
 */
int cmn_cookie_seal(const uint8_t key[CMN_KEY_LEN], const char *name, const char *scope,
                    const cmn_session_ticket_t *ticket, char out[CMN_COOKIE_VALUE_MAX]);

/**
 * Opens a cookie value. Sets `*err` to cmn_err_malformed, cmn_err_decrypt (tampered, other key,
 * other name or scope) or cmn_err_expired (checked against `now`). Returns 0 or -1.
 */
int cmn_cookie_open(const uint8_t key[CMN_KEY_LEN], const char *name, const char *scope,
                    const char *value, size_t len, uint64_t now, cmn_session_ticket_t *out,
                    const char **err);

/**
 * Finds cookie `name` in a Cookie header value (several headers: call once per header).
 * Returns the value (borrowed from `header`) or {NULL, 0}.
 */
h2o_iovec_t cmn_cookie_find(h2o_iovec_t header, const char *name);

/**
 * Like cmn_cookie_find, starting at `*offset` (0 for the first); on a match moves `*offset`
 * past it, so repeated calls return every cookie of that name in the header, in order.
 */
h2o_iovec_t cmn_cookie_find_next(h2o_iovec_t header, const char *name, size_t *offset);

/** finds cookie `name` across every Cookie header of a request (the first one) */
h2o_iovec_t cmn_cookie_from_req(h2o_req_t *req, const char *name);

/* where cmn_cookie_from_req_next goes on from; start from {0} */
typedef struct st_cmn_cookie_cursor_t {
    bool started;
    ssize_t header; /* index in req->headers, -1 when done */
    size_t offset;  /* within that header's value */
} cmn_cookie_cursor_t;

/**
 * Every cookie `name` of a request in turn, across Cookie headers: a browser sends a host-only
 * and a domain cookie of the same name side by side, and only one of them may open.
 */
h2o_iovec_t cmn_cookie_from_req_next(h2o_req_t *req, const char *name, cmn_cookie_cursor_t *cur);

typedef struct st_cmn_cookie_attrs_t {
    const char *domain; /* NULL = host-only */
    const char *path;   /* NULL = "/" */
    int64_t max_age;    /* seconds; 0 = session cookie; <0 = delete */
    int secure;
    int http_only;
    const char *same_site; /* "Lax", "Strict", "None" or NULL */
} cmn_cookie_attrs_t;

/**
 * builds a Set-Cookie value in the pool; {NULL, 0} when a part holds a byte a cookie cannot
 * carry (controls, spaces, ';', ','; quotes or backslashes in the value) or same_site is unknown
 */
h2o_iovec_t cmn_cookie_build(h2o_mem_pool_t *pool, const char *name, h2o_iovec_t value,
                             const cmn_cookie_attrs_t *attrs);

#endif
