/* SPDX-License-Identifier: MIT */
/* Session cookies: sealing and opening tickets, finding cookies in requests, Set-Cookie values. */
#include "common/cookie.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "common/err.h"

#define TICKET_VERSION 1
#define TICKET_HEADER_LEN (1 + 8 + 8) /* version, issued, expiry */
#define TICKET_MAX (TICKET_HEADER_LEN + CMN_SESSION_ID_MAX)
#define SEALED_MAX (TICKET_MAX + CMN_AEAD_OVERHEAD)
#define COOKIE_NAME_MAX 128
#define COOKIE_SCOPE_MAX 255
#define AD_MAX (COOKIE_NAME_MAX + 1 + COOKIE_SCOPE_MAX)
#define SET_COOKIE_VALUE_MAX 4096
#define SET_COOKIE_PATH_MAX 1024
#define EXPIRES_IN_THE_PAST "Thu, 01 Jan 1970 00:00:00 GMT"

/* the sealed payload of the largest ticket must fit a cookie value with its NUL */
_Static_assert((SEALED_MAX * 4 + 2) / 3 < CMN_COOKIE_VALUE_MAX, "ticket too large for a cookie");

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/*
 * the associated data "name\nscope": binds a value to the cookie it was issued as. Neither part
 * may hold a newline, so two different pairs never give the same bytes. Returns the length or 0.
 */
static size_t build_ad(const char *name, const char *scope, char ad[AD_MAX])
{
    size_t name_len = strnlen(name, COOKIE_NAME_MAX + 1);
    size_t scope_len = strnlen(scope, COOKIE_SCOPE_MAX + 1);

    if (name_len == 0 || name_len > COOKIE_NAME_MAX || scope_len > COOKIE_SCOPE_MAX) {
        return 0;
    }
    if (memchr(name, '\n', name_len) != NULL || memchr(scope, '\n', scope_len) != NULL) {
        return 0;
    }

    memcpy(ad, name, name_len);
    ad[name_len] = '\n';
    memcpy(ad + name_len + 1, scope, scope_len);
    return name_len + 1 + scope_len;
}

/* session ids are printable tokens; anything else in a ticket means it was not ours */
static bool valid_session_id(const uint8_t *id, size_t len)
{
    if (len == 0 || len > CMN_SESSION_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (id[i] < 0x21 || id[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

int cmn_cookie_seal(const uint8_t key[CMN_KEY_LEN], const char *name, const char *scope,
                    const cmn_session_ticket_t *ticket, char out[CMN_COOKIE_VALUE_MAX])
{
    uint8_t payload[TICKET_MAX];
    uint8_t sealed[SEALED_MAX];
    char ad[AD_MAX];
    size_t id_len = strnlen(ticket->session_id, CMN_SESSION_ID_MAX + 1);
    size_t ad_len = build_ad(name, scope, ad);
    size_t payload_len = TICKET_HEADER_LEN + id_len;
    int ret = -1;

    if (ad_len == 0 || !valid_session_id((const uint8_t *)ticket->session_id, id_len)) {
        goto Exit;
    }

    payload[0] = TICKET_VERSION;
    put_u64(payload + 1, ticket->issued);
    put_u64(payload + 9, ticket->expiry);
    memcpy(payload + TICKET_HEADER_LEN, ticket->session_id, id_len);

    if (cmn_aead_seal(key, ad, ad_len, payload, payload_len, sealed) != 0) {
        goto Exit;
    }
    cmn_base64url_encode(sealed, payload_len + CMN_AEAD_OVERHEAD, out);
    ret = 0;

Exit:
    OPENSSL_cleanse(payload, sizeof(payload));
    return ret;
}

int cmn_cookie_open(const uint8_t key[CMN_KEY_LEN], const char *name, const char *scope,
                    const char *value, size_t len, uint64_t now, cmn_session_ticket_t *out,
                    const char **err)
{
    uint8_t sealed[SEALED_MAX];
    uint8_t payload[TICKET_MAX];
    char ad[AD_MAX];
    size_t ad_len = build_ad(name, scope, ad);
    long sealed_len = -1;
    size_t payload_len = 0;
    uint64_t issued = 0;
    uint64_t expiry = 0;
    int ret = -1;

    *err = cmn_err_malformed;
    if (ad_len == 0 || len >= CMN_COOKIE_VALUE_MAX) {
        goto Exit;
    }
    sealed_len = cmn_base64url_decode(value, len, sealed, sizeof(sealed));
    if (sealed_len < (long)(CMN_AEAD_OVERHEAD + TICKET_HEADER_LEN)) {
        goto Exit;
    }
    payload_len = (size_t)sealed_len - CMN_AEAD_OVERHEAD;

    if (cmn_aead_open(key, ad, ad_len, sealed, (size_t)sealed_len, payload) != 0) {
        *err = cmn_err_decrypt;
        goto Exit;
    }

    if (payload[0] != TICKET_VERSION) {
        goto Exit;
    }
    if (!valid_session_id(payload + TICKET_HEADER_LEN, payload_len - TICKET_HEADER_LEN)) {
        goto Exit;
    }
    issued = get_u64(payload + 1);
    expiry = get_u64(payload + 9);
    if (issued > expiry) {
        goto Exit;
    }

    if (now >= expiry) {
        *err = cmn_err_expired;
        goto Exit;
    }

    memcpy(out->session_id, payload + TICKET_HEADER_LEN, payload_len - TICKET_HEADER_LEN);
    out->session_id[payload_len - TICKET_HEADER_LEN] = '\0';
    out->issued = issued;
    out->expiry = expiry;
    *err = NULL;
    ret = 0;

Exit:
    OPENSSL_cleanse(payload, sizeof(payload));
    return ret;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

h2o_iovec_t cmn_cookie_find(h2o_iovec_t header, const char *name)
{
    size_t offset = 0;

    return cmn_cookie_find_next(header, name, &offset);
}

h2o_iovec_t cmn_cookie_find_next(h2o_iovec_t header, const char *name, size_t *offset)
{
    size_t name_len = strlen(name);
    const char *p = header.base + *offset;
    const char *end = header.base + header.len;

    if (header.base == NULL || name_len == 0 || *offset >= header.len) {
        return h2o_iovec_init(NULL, 0);
    }

    /* RFC 6265 §5.4: cookie-pair *( ";" SP cookie-pair ); tolerate extra spaces and tabs */
    while (p < end) {
        const char *pair_end = memchr(p, ';', (size_t)(end - p));
        if (pair_end == NULL) {
            pair_end = end;
        }
        while (p < pair_end && is_ows(*p)) {
            p++;
        }
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (eq != NULL) {
            const char *name_end = eq;
            while (name_end > p && is_ows(name_end[-1])) {
                name_end--;
            }
            if ((size_t)(name_end - p) == name_len && memcmp(p, name, name_len) == 0) {
                const char *v = eq + 1;
                const char *v_end = pair_end;
                while (v < v_end && is_ows(*v)) {
                    v++;
                }
                while (v_end > v && is_ows(v_end[-1])) {
                    v_end--;
                }
                *offset = (size_t)(pair_end - header.base) + (pair_end < end ? 1 : 0);
                return h2o_iovec_init(v, (size_t)(v_end - v));
            }
        }
        p = pair_end + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_iovec_t cmn_cookie_from_req_next(h2o_req_t *req, const char *name, cmn_cookie_cursor_t *cur)
{
    if (!cur->started) {
        cur->started = true;
        cur->header = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, -1);
    }
    while (cur->header != -1) {
        h2o_iovec_t found =
            cmn_cookie_find_next(req->headers.entries[cur->header].value, name, &cur->offset);
        if (found.base != NULL) {
            return found;
        }
        cur->header = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, cur->header);
        cur->offset = 0;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_iovec_t cmn_cookie_from_req(h2o_req_t *req, const char *name)
{
    ssize_t cursor = -1;

    /* HTTP/2 clients may send each cookie as its own header (RFC 7540 §8.1.2.5) */
    for (;;) {
        cursor = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, cursor);
        if (cursor == -1) {
            break;
        }
        h2o_iovec_t found = cmn_cookie_find(req->headers.entries[cursor].value, name);
        if (found.base != NULL) {
            return found;
        }
    }
    return h2o_iovec_init(NULL, 0);
}

/* true when `s` may appear in a Set-Cookie attribute: visible ASCII other than ';' and ',' */
static bool attr_safe(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == ';' || c == ',') {
            return false;
        }
    }
    return true;
}

/* true when `s` is an RFC 6265 §4.1.1 cookie-octet string (no quotes, no backslash either) */
static bool value_safe(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            return false;
        }
    }
    return attr_safe(s, len);
}

/* the parts of a Set-Cookie value are visible ASCII, within ceilings, with a known SameSite */
static bool build_args_ok(const char *name, h2o_iovec_t value, const char *path,
                          const cmn_cookie_attrs_t *attrs)
{
    size_t name_len = strnlen(name, COOKIE_NAME_MAX + 1);

    if (name_len == 0 || name_len > COOKIE_NAME_MAX || !attr_safe(name, name_len) ||
        memchr(name, '=', name_len) != NULL) {
        return false;
    }
    if (value.len > SET_COOKIE_VALUE_MAX || !value_safe(value.base, value.len)) {
        return false;
    }
    if (strnlen(path, SET_COOKIE_PATH_MAX + 1) > SET_COOKIE_PATH_MAX ||
        !attr_safe(path, strlen(path))) {
        return false;
    }
    if (attrs->domain != NULL) {
        size_t domain_len = strnlen(attrs->domain, COOKIE_SCOPE_MAX + 1);
        if (domain_len == 0 || domain_len > COOKIE_SCOPE_MAX ||
            !attr_safe(attrs->domain, domain_len)) {
            return false;
        }
    }
    if (attrs->same_site != NULL && strcmp(attrs->same_site, "Lax") != 0 &&
        strcmp(attrs->same_site, "Strict") != 0 && strcmp(attrs->same_site, "None") != 0) {
        return false;
    }
    return true;
}

static h2o_iovec_t iov_str(const char *s)
{
    return h2o_iovec_init(s, strlen(s));
}

h2o_iovec_t cmn_cookie_build(h2o_mem_pool_t *pool, const char *name, h2o_iovec_t value,
                             const cmn_cookie_attrs_t *attrs)
{
    const char *path = attrs->path != NULL ? attrs->path : "/";
    h2o_iovec_t empty = h2o_iovec_init("", 0);
    char max_age[64] = "";

    if (!build_args_ok(name, value, path, attrs)) {
        return h2o_iovec_init(NULL, 0);
    }

    /* a delete carries both forms: Max-Age wins where supported, Expires covers the rest */
    if (attrs->max_age < 0) {
        snprintf(max_age, sizeof(max_age), "; Max-Age=0; Expires=%s", EXPIRES_IN_THE_PAST);
    } else if (attrs->max_age > 0) {
        snprintf(max_age, sizeof(max_age), "; Max-Age=%" PRId64, attrs->max_age);
    }

    return h2o_concat(pool, iov_str(name), h2o_iovec_init(H2O_STRLIT("=")),
                      value.len > 0 ? value : empty, h2o_iovec_init(H2O_STRLIT("; Path=")),
                      iov_str(path), attrs->domain != NULL ? iov_str("; Domain=") : empty,
                      attrs->domain != NULL ? iov_str(attrs->domain) : empty, iov_str(max_age),
                      attrs->secure ? iov_str("; Secure") : empty,
                      attrs->http_only ? iov_str("; HttpOnly") : empty,
                      attrs->same_site != NULL ? iov_str("; SameSite=") : empty,
                      attrs->same_site != NULL ? iov_str(attrs->same_site) : empty);
}
