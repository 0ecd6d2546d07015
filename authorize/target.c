/* SPDX-License-Identifier: MIT */
/* Derives the target URL T from the /verify request and normalises its path for matching. */
#include "authorize/target.h"

#include <string.h>
#include <strings.h>
#include "common/err.h"

const char authz_err_no_target[] = "no target URL (uri, X-Original-URL, X-Forwarded-*)";
const char authz_err_bad_path[] = "path holds an encoded slash, a backslash or a NUL";

static bool starts_with_http(h2o_iovec_t v)
{
    return (v.len >= 7 && strncasecmp(v.base, "http://", 7) == 0) ||
           (v.len >= 8 && strncasecmp(v.base, "https://", 8) == 0);
}

static bool is_present(h2o_iovec_t v)
{
    return v.base != NULL && v.len > 0;
}

/* the uri parameter: raw to the end of the query, or percent-decoded once */
static int target_from_uri(h2o_mem_pool_t *pool, h2o_iovec_t query, h2o_iovec_t *out,
                           const char **err)
{
    h2o_iovec_t value = cmn_url_query_get(query, "uri");

    *out = h2o_iovec_init(NULL, 0);
    if (value.base == NULL) {
        return 0;
    }
    if (starts_with_http(value)) {
        /* nginx's $request_uri arrives unescaped: its own '&' belong to T */
        *out = h2o_iovec_init(value.base, query.base + query.len - value.base);
        return 0;
    }
    *out = cmn_url_decode(pool, value.base, value.len);
    if (out->base == NULL) {
        *err = cmn_err_malformed;
        return -1;
    }
    return 0;
}

static h2o_iovec_t target_from_forwarded(h2o_mem_pool_t *pool, const authz_target_input_t *in)
{
    if (!is_present(in->fwd_proto) || !is_present(in->fwd_host)) {
        return h2o_iovec_init(NULL, 0);
    }
    return h2o_concat(pool, in->fwd_proto, h2o_iovec_init(H2O_STRLIT("://")), in->fwd_host,
                      is_present(in->fwd_uri) ? in->fwd_uri : h2o_iovec_init(H2O_STRLIT("/")));
}

static bool iov_ieq(h2o_iovec_t a, h2o_iovec_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.base, b.base, a.len) == 0);
}

static bool iov_eq(h2o_iovec_t a, h2o_iovec_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* DESIGN.md §4: uri and X-Original-URL agreeing on scheme, host and path -> the header wins */
static bool same_resource(h2o_iovec_t a, h2o_iovec_t b)
{
    cmn_url_t ua, ub;
    const char *err = NULL;

    if (cmn_url_parse(a.base, a.len, &ua, &err) != 0 || cmn_url_parse(b.base, b.len, &ub, &err)) {
        return false;
    }
    return iov_ieq(ua.scheme, ub.scheme) && iov_ieq(ua.authority, ub.authority) &&
           iov_eq(ua.path, ub.path);
}

static h2o_iovec_t pick_method(const authz_target_input_t *in)
{
    if (is_present(in->original_method)) {
        return in->original_method;
    }
    if (is_present(in->fwd_method)) {
        return in->fwd_method;
    }
    return in->req_method;
}

/* the encoded forms that would let policy and the app see different paths */
static bool has_forbidden_escape(h2o_iovec_t raw)
{
    for (size_t i = 0; i + 2 < raw.len; i++) {
        if (raw.base[i] != '%') {
            continue;
        }
        char hi = raw.base[i + 1], lo = (char)(raw.base[i + 2] | 0x20);
        if ((hi == '2' && lo == 'f') || (hi == '5' && lo == 'c') || (hi == '0' && lo == '0')) {
            return true;
        }
    }
    /* a raw backslash is a slash to some upstreams and a plain byte to us: refuse it too */
    return memchr(raw.base, '\0', raw.len) != NULL || memchr(raw.base, '\\', raw.len) != NULL;
}

static bool is_dot_segment(const char *seg, size_t len)
{
    return (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.');
}

/* merges slashes and resolves dot segments (RFC 3986 §5.2.4), never climbing above the root */
static h2o_iovec_t resolve_segments(h2o_mem_pool_t *pool, h2o_iovec_t decoded)
{
    char *out = h2o_mem_alloc_pool(pool, decoded.len + 2);
    const char *p = decoded.base, *end = decoded.base + decoded.len;
    size_t o = 0;
    bool trailing = false;

    while (p < end) {
        const char *seg;
        size_t len;
        while (p < end && *p == '/') {
            p++;
        }
        seg = p;
        while (p < end && *p != '/') {
            p++;
        }
        len = (size_t)(p - seg);
        if (len == 0) {
            trailing = true;
            break;
        }
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && out[o - 1] != '/') {
                o--;
            }
            if (o > 0) {
                o--;
            }
        } else if (len != 1 || seg[0] != '.') {
            out[o++] = '/';
            memcpy(out + o, seg, len);
            o += len;
        }
        /* "/a/." and "/a/.." name a directory: keep a trailing slash */
        trailing = p == end && is_dot_segment(seg, len);
    }
    if (o == 0 || trailing) {
        out[o++] = '/';
    }
    out[o] = '\0';
    return h2o_iovec_init(out, o);
}

int authz_path_normalize(h2o_mem_pool_t *pool, h2o_iovec_t raw, h2o_iovec_t *out,
                         const char **err)
{
    h2o_iovec_t decoded;

    if (raw.base == NULL || raw.len == 0) {
        *out = h2o_strdup(pool, H2O_STRLIT("/"));
        return 0;
    }
    if (has_forbidden_escape(raw)) {
        *err = authz_err_bad_path;
        return -1;
    }

    decoded = cmn_url_decode(pool, raw.base, raw.len);
    if (decoded.base == NULL) {
        *err = cmn_err_malformed;
        return -1;
    }

    *out = resolve_segments(pool, decoded);
    return 0;
}

int authz_target_parse(h2o_mem_pool_t *pool, h2o_iovec_t raw, authz_target_t *out,
                       const char **err)
{
    if (raw.len > AUTHZ_TARGET_MAX) {
        *err = cmn_err_too_large;
        return -1;
    }

    out->raw = h2o_strdup(pool, raw.base, raw.len);
    if (cmn_url_parse(out->raw.base, out->raw.len, &out->url, err) != 0) {
        return -1;
    }

    out->host = cmn_host_lower(pool, out->url.host);
    out->port = cmn_url_effective_port(&out->url);
    return authz_path_normalize(pool, out->url.path, &out->path, err);
}

int authz_target_derive(h2o_mem_pool_t *pool, const authz_target_input_t *in,
                        authz_target_t *out, const char **err)
{
    h2o_iovec_t raw;

    if (target_from_uri(pool, in->query, &raw, err) != 0) {
        return -1;
    }

    if (raw.base == NULL) {
        raw = is_present(in->original_url) ? in->original_url : target_from_forwarded(pool, in);
    } else if (is_present(in->original_url) && same_resource(raw, in->original_url)) {
        raw = in->original_url;
    }
    if (raw.base == NULL || raw.len == 0) {
        *err = authz_err_no_target;
        return -1;
    }

    if (authz_target_parse(pool, raw, out, err) != 0) {
        return -1;
    }

    out->method = pick_method(in);
    if (out->method.len > AUTHZ_METHOD_MAX) {
        *err = cmn_err_too_large;
        return -1;
    }
    return 0;
}
