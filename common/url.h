/* SPDX-License-Identifier: MIT */
/* URL and query helpers for untrusted input: parse, percent-code, look up parameters, escape. */
#ifndef CMN_URL_H
#define CMN_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>

#define CMN_URL_MAX 8192

/* an absolute http(s) URL split into borrowed parts of the input (no decoding) */
typedef struct st_cmn_url_t {
    h2o_iovec_t scheme;    /* "http" or "https", as written */
    h2o_iovec_t authority; /* host[:port] as written */
    h2o_iovec_t host;      /* without port; IPv6 literals keep their brackets */
    uint16_t port;         /* explicit port or 0 */
    h2o_iovec_t path;      /* starts with '/', or empty when the URL has none */
    h2o_iovec_t query;     /* after '?', without it; base NULL when there is no '?' */
    bool has_query;        /* true also for a bare trailing '?' */
} cmn_url_t;

/**
 * Parses an absolute URL strictly: scheme http or https (any case), "//", a non-empty
 * authority of host characters only (no userinfo, no backslash), an optional port 1..65535,
 * then an optional path, query and fragment. Any byte below 0x21 or 0x7f anywhere refuses it.
 * Returns 0, or -1 with `*err` set.
 */
int cmn_url_parse(const char *s, size_t len, cmn_url_t *out, const char **err);

/** the port a URL is reached on: the explicit one, else 443 for https and 80 for http */
uint16_t cmn_url_effective_port(const cmn_url_t *url);

/** the value of one hexadecimal digit in either case, or -1 for any other byte */
int cmn_hex_value(char c);

/** percent-decodes once into the pool (NUL-terminated); '+' stays '+'. NULL on a bad escape */
h2o_iovec_t cmn_url_decode(h2o_mem_pool_t *pool, const char *s, size_t len);

/** percent-encodes every byte outside RFC 3986 unreserved characters, into the pool */
h2o_iovec_t cmn_url_encode(h2o_mem_pool_t *pool, const char *s, size_t len);

/**
 * Finds parameter `name` in a raw query string (no '?'); returns the raw, still-encoded value
 * (borrowed) or {NULL, 0} when absent; a present but empty value has base != NULL and len 0.
 */
h2o_iovec_t cmn_url_query_get(h2o_iovec_t query, const char *name);

/** the query part of a request path ("/verify?uri=..." -> "uri=..."), or {NULL, 0} */
h2o_iovec_t cmn_url_query_of_path(h2o_iovec_t path);

/** HTML-escapes & < > " ' into the pool */
h2o_iovec_t cmn_html_escape(h2o_mem_pool_t *pool, const char *s, size_t len);

/** lower-cases a host into the pool, stripping one trailing dot */
h2o_iovec_t cmn_host_lower(h2o_mem_pool_t *pool, h2o_iovec_t host);

/** true when `host` equals `domain` or ends with "." + domain (both lower-case) */
bool cmn_host_in_domain(h2o_iovec_t host, const char *domain);

#endif
