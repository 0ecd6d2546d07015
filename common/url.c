/* SPDX-License-Identifier: MIT */
/* URL helpers for untrusted input: a strict absolute-URL parser, percent coding, query lookup. */
#include "common/url.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include "common/err.h"

#define HOST_MAX 255
#define IPV6_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */

static const char hex_digits[] = "0123456789ABCDEF";

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int cmn_hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static const char *find_any(const char *p, const char *end, const char *set)
{
    for (; p < end; p++) {
        if (strchr(set, *p) != NULL) {
            return p;
        }
    }
    return end;
}

/* "http" or "https" in any case, followed by "://"; returns the length of the scheme or 0 */
static size_t parse_scheme(const char *s, size_t len)
{
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        return 4;
    }
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        return 5;
    }
    return 0;
}

/* 1..65535 in decimal, without sign or leading zero */
static int parse_port(const char *p, size_t len, uint16_t *out)
{
    uint32_t v = 0;

    if (len == 0 || len > 5 || p[0] == '0') {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i])) {
            return -1;
        }
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > 65535) {
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

/* "[...]" holding an address inet_pton accepts (no zone id: '%' has no place in a host) */
static bool valid_ipv6_literal(const char *p, size_t len)
{
    char text[IPV6_TEXT_MAX + 1];
    struct in6_addr addr;

    if (len < 4 || len - 2 > IPV6_TEXT_MAX || p[0] != '[' || p[len - 1] != ']') {
        return false;
    }
    memcpy(text, p + 1, len - 2);
    text[len - 2] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

/* true when the last label is numeric, so browsers would read the host as an IPv4 address */
static bool looks_like_ipv4(const char *p, size_t len)
{
    const char *label = p + len;

    while (label > p && label[-1] != '.') {
        label--;
    }
    if (label == p + len) {
        return false;
    }
    if (p + len - label > 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
        return true;
    }
    for (const char *c = label; c < p + len; c++) {
        if (!is_digit(*c)) {
            return false;
        }
    }
    return true;
}

/*
 * a registered name of letters, digits, '-', '.', '_' and '~', with no empty label (one
 * trailing dot allowed); when it ends in a number it must be a dotted-quad IPv4 address, so
 * "0x7f.1" or "127.1" cannot reach a browser that reads them as 127.0.0.1
 */
static bool valid_reg_name(const char *p, size_t len)
{
    size_t body = len;
    char text[INET_ADDRSTRLEN];
    struct in_addr addr;

    if (len == 0 || len > HOST_MAX || p[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_unreserved(p[i]) || (p[i] == '.' && i > 0 && p[i - 1] == '.')) {
            return false;
        }
    }
    if (p[len - 1] == '.') {
        body--;
    }
    if (!looks_like_ipv4(p, body)) {
        return true;
    }
    if (body >= sizeof(text)) {
        return false;
    }
    memcpy(text, p, body);
    text[body] = '\0';
    return inet_pton(AF_INET, text, &addr) == 1;
}

/* splits "host[:port]" into out->host and out->port */
static int parse_authority(const char *p, size_t len, cmn_url_t *out)
{
    const char *host_end = p + len;

    if (len == 0 || memchr(p, '@', len) != NULL || memchr(p, '\\', len) != NULL ||
        memchr(p, '%', len) != NULL) {
        return -1;
    }

    if (p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL) {
            return -1;
        }
        host_end = close + 1;
        if (!valid_ipv6_literal(p, (size_t)(host_end - p))) {
            return -1;
        }
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon != NULL) {
            host_end = colon;
        }
        if (!valid_reg_name(p, (size_t)(host_end - p))) {
            return -1;
        }
    }

    out->port = 0;
    if (host_end < p + len) {
        if (*host_end != ':' ||
            parse_port(host_end + 1, (size_t)(p + len - host_end - 1), &out->port) != 0) {
            return -1;
        }
    }
    out->authority = h2o_iovec_init(p, len);
    out->host = h2o_iovec_init(p, (size_t)(host_end - p));
    return 0;
}

int cmn_url_parse(const char *s, size_t len, cmn_url_t *out, const char **err)
{
    const char *end = s + len;
    const char *p = NULL;
    const char *authority_end = NULL;
    const char *path_end = NULL;
    const char *query_end = NULL;
    size_t scheme_len = 0;
    cmn_url_t url;

    memset(&url, 0, sizeof(url));
    *err = cmn_err_too_large;
    if (len > CMN_URL_MAX) {
        return -1;
    }

    /* spaces, controls and DEL are never part of a URL; refusing them early stops CRLF
     * injection and the whitespace tricks browsers silently strip */
    *err = cmn_err_malformed;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f) {
            return -1;
        }
    }

    scheme_len = parse_scheme(s, len);
    if (scheme_len == 0) {
        return -1;
    }
    url.scheme = h2o_iovec_init(s, scheme_len);
    p = s + scheme_len + 3;

    /* browsers treat '\' as '/' in http(s) URLs; ending the authority at '/' alone and then
     * refusing '\' inside it means both readings agree on the host */
    authority_end = find_any(p, end, "/?#");
    if (parse_authority(p, (size_t)(authority_end - p), &url) != 0) {
        return -1;
    }

    path_end = find_any(authority_end, end, "?#");
    url.path = h2o_iovec_init(authority_end, (size_t)(path_end - authority_end));
    if (path_end < end && *path_end == '?') {
        query_end = find_any(path_end + 1, end, "#");
        url.query = h2o_iovec_init(path_end + 1, (size_t)(query_end - path_end - 1));
        url.has_query = true;
    }

    *out = url;
    *err = NULL;
    return 0;
}

uint16_t cmn_url_effective_port(const cmn_url_t *url)
{
    if (url->port != 0) {
        return url->port;
    }
    if (url->scheme.len == 5) {
        return 443;
    }
    return 80;
}

h2o_iovec_t cmn_url_decode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *buf = h2o_mem_alloc_pool(pool, len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            buf[o++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            return h2o_iovec_init(NULL, 0);
        }
        int hi = cmn_hex_value(s[i + 1]);
        int lo = cmn_hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) {
            return h2o_iovec_init(NULL, 0);
        }
        buf[o++] = (char)(hi << 4 | lo);
        i += 2;
    }

    buf[o] = '\0';
    return h2o_iovec_init(buf, o);
}

h2o_iovec_t cmn_url_encode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *buf = NULL;
    size_t o = 0;

    if (len > (SIZE_MAX - 1) / 3) {
        return h2o_iovec_init(NULL, 0);
    }
    buf = h2o_mem_alloc_pool(pool, len * 3 + 1);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved((char)c)) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '%';
            buf[o++] = hex_digits[c >> 4];
            buf[o++] = hex_digits[c & 0xf];
        }
    }

    buf[o] = '\0';
    return h2o_iovec_init(buf, o);
}

h2o_iovec_t cmn_url_query_get(h2o_iovec_t query, const char *name)
{
    size_t name_len = strlen(name);
    const char *p = query.base;
    const char *end = query.base + query.len;

    if (query.base == NULL) {
        return h2o_iovec_init(NULL, 0);
    }

    /* the first parameter whose raw name matches wins; "a" alone counts as an empty "a=" */
    for (;;) {
        const char *param_end = memchr(p, '&', (size_t)(end - p));
        if (param_end == NULL) {
            param_end = end;
        }
        const char *eq = memchr(p, '=', (size_t)(param_end - p));
        const char *name_end = eq != NULL ? eq : param_end;
        if ((size_t)(name_end - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *value = eq != NULL ? eq + 1 : param_end;
            return h2o_iovec_init(value, (size_t)(param_end - value));
        }
        if (param_end == end) {
            return h2o_iovec_init(NULL, 0);
        }
        p = param_end + 1;
    }
}

h2o_iovec_t cmn_url_query_of_path(h2o_iovec_t path)
{
    const char *q = NULL;

    if (path.base == NULL) {
        return h2o_iovec_init(NULL, 0);
    }
    q = memchr(path.base, '?', path.len);
    if (q == NULL) {
        return h2o_iovec_init(NULL, 0);
    }
    return h2o_iovec_init(q + 1, (size_t)(path.base + path.len - q - 1));
}

h2o_iovec_t cmn_html_escape(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    /* the longest replacement, "&quot;", is six bytes */
    char *buf = NULL;
    size_t o = 0;

    if (len > (SIZE_MAX - 1) / 6) {
        return h2o_iovec_init(NULL, 0);
    }
    buf = h2o_mem_alloc_pool(pool, len * 6 + 1);

    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            buf[o++] = s[i];
            continue;
        }
        memcpy(buf + o, rep, strlen(rep));
        o += strlen(rep);
    }

    buf[o] = '\0';
    return h2o_iovec_init(buf, o);
}

h2o_iovec_t cmn_host_lower(h2o_mem_pool_t *pool, h2o_iovec_t host)
{
    size_t len = host.len;
    char *buf = NULL;

    if (len > 0 && host.base[len - 1] == '.') {
        len--;
    }
    buf = h2o_mem_alloc_pool(pool, len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = host.base[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[len] = '\0';
    return h2o_iovec_init(buf, len);
}

bool cmn_host_in_domain(h2o_iovec_t host, const char *domain)
{
    size_t domain_len = 0;

    /* ".example.com" in a cookie domain means the same as "example.com" (RFC 6265 §5.2.3) */
    if (domain[0] == '.') {
        domain++;
    }
    domain_len = strlen(domain);
    if (domain_len == 0 || host.base == NULL || host.len < domain_len) {
        return false;
    }
    if (memcmp(host.base + host.len - domain_len, domain, domain_len) != 0) {
        return false;
    }
    /* a dot boundary: "evilexample.com" does not lie inside "example.com" */
    return host.len == domain_len || host.base[host.len - domain_len - 1] == '.';
}
