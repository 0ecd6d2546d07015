/* SPDX-License-Identifier: MIT */
/* Parses trusted_proxies and tells whether a peer address lies in it. */
#include "authorize/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_cidr_t {
    uint8_t addr[16]; /* IPv4 as IPv4-mapped IPv6 */
    unsigned bits;    /* prefix length over the 128-bit form */
} cidr_t;

struct st_authz_cidrs_t {
    cidr_t *items;
    size_t len;
};

static void map_v4(const struct in_addr *v4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

static int parse_one(const char *s, cidr_t *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    struct in_addr v4;
    long bits;
    bool is_v4;

    if (hlen == 0 || hlen >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    is_v4 = inet_pton(AF_INET, host, &v4) == 1;
    if (is_v4) {
        map_v4(&v4, out->addr);
    } else if (inet_pton(AF_INET6, host, out->addr) != 1) {
        return -1;
    }

    bits = is_v4 ? 32 : 128;
    if (slash != NULL) {
        char *end = NULL;
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || bits < 0 || bits > (is_v4 ? 32 : 128)) {
            return -1;
        }
    }
    out->bits = (unsigned)(is_v4 ? bits + 96 : bits);
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, b, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

authz_cidrs_t *authz_cidrs_parse(const cmn_strlist_t *list, char *errbuf, size_t errlen)
{
    authz_cidrs_t *cidrs = calloc(1, sizeof(*cidrs));

    if (cidrs == NULL || list->len > AUTHZ_CIDRS_MAX) {
        snprintf(errbuf, errlen, "trusted_proxies: more than %d entries", AUTHZ_CIDRS_MAX);
        free(cidrs);
        return NULL;
    }
    cidrs->items = calloc(list->len + 1, sizeof(cidr_t));
    if (cidrs->items == NULL) {
        free(cidrs);
        return NULL;
    }
    for (size_t i = 0; i < list->len; i++) {
        if (parse_one(list->items[i], &cidrs->items[i]) != 0) {
            snprintf(errbuf, errlen, "trusted_proxies: \"%.64s\" is not a CIDR", list->items[i]);
            authz_cidrs_destroy(cidrs);
            return NULL;
        }
        cidrs->len = i + 1;
    }
    return cidrs;
}

void authz_cidrs_destroy(authz_cidrs_t *cidrs)
{
    if (cidrs != NULL) {
        free(cidrs->items);
        free(cidrs);
    }
}

bool authz_cidrs_contain(const authz_cidrs_t *cidrs, const struct sockaddr *sa)
{
    uint8_t addr[16];

    if (sa->sa_family == AF_INET) {
        map_v4(&((const struct sockaddr_in *)sa)->sin_addr, addr);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return sa->sa_family == AF_UNIX; /* a local socket is as trusted as loopback */
    }
    for (size_t i = 0; i < cidrs->len; i++) {
        if (prefix_equal(addr, cidrs->items[i].addr, cidrs->items[i].bits)) {
            return true;
        }
    }
    return false;
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes plain IPv4, so that one form reaches policy */
static void store_addr(const struct sockaddr *sa, struct sockaddr_storage *out)
{
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        memcpy(&v4->sin_addr, v6->sin6_addr.s6_addr + 12, 4);
    } else if (sa->sa_family == AF_INET) {
        memcpy(out, sa, sizeof(struct sockaddr_in));
    } else {
        memcpy(out, sa, sizeof(struct sockaddr_in6));
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_space(s[i])) {
            return false;
        }
    }
    return true;
}

/* one header address: "a.b.c.d", "a.b.c.d:port", "v6" or "[v6]" with an optional ":port" */
static bool parse_addr(const char *s, size_t len, struct sockaddr_storage *out)
{
    char text[AUTHZ_ADDR_TEXT_MAX + 1];
    const char *colon;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

    while (len > 0 && is_space(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1])) {
        len--;
    }
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL) {
            return false;
        }
        len = (size_t)(close - s) - 1;
        s++;
    } else {
        colon = memchr(s, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) == NULL) {
            len = (size_t)(colon - s); /* a.b.c.d:port */
        }
    }
    if (len == 0 || len > AUTHZ_ADDR_TEXT_MAX) {
        return false;
    }
    memcpy(text, s, len);
    text[len] = '\0';

    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
        store_addr((struct sockaddr *)&v4, out);
        return true;
    }
    if (inet_pton(AF_INET6, text, &v6.sin6_addr) == 1) {
        store_addr((struct sockaddr *)&v6, out);
        return true;
    }
    return false;
}

/* walks X-Forwarded-For from the right; 1 found, 0 header empty, -1 a hop does not parse */
static int rightmost_untrusted(const authz_cidrs_t *trusted, h2o_iovec_t xff,
                               struct sockaddr_storage *out)
{
    size_t end = xff.len;
    bool found = false;

    for (int hops = 0; end > 0 && hops < AUTHZ_FORWARDED_HOPS_MAX; hops++) {
        size_t start = end;
        while (start > 0 && xff.base[start - 1] != ',') {
            start--;
        }
        if (is_blank(xff.base + start, end - start)) {
            end = start > 0 ? start - 1 : 0; /* "a, , b": an empty hop says nothing */
            continue;
        }
        if (!parse_addr(xff.base + start, end - start, out)) {
            return -1;
        }
        found = true;
        if (!authz_cidrs_contain(trusted, (struct sockaddr *)out)) {
            return 1;
        }
        end = start > 0 ? start - 1 : 0;
    }
    return found ? 1 : 0; /* every hop trusted (or too many): the last one looked at */
}

bool authz_client_addr(const authz_cidrs_t *trusted, const struct sockaddr *peer, h2o_iovec_t xff,
                       h2o_iovec_t real_ip, struct sockaddr_storage *out)
{
    bool peer_is_ip = peer->sa_family == AF_INET || peer->sa_family == AF_INET6;
    int rc;

    memset(out, 0, sizeof(*out));
    if (trusted == NULL || !authz_cidrs_contain(trusted, peer)) {
        if (peer_is_ip) {
            store_addr(peer, out);
        }
        return peer_is_ip;
    }

    rc = xff.base != NULL ? rightmost_untrusted(trusted, xff, out) : 0;
    if (rc != 0) {
        return rc > 0;
    }
    if (real_ip.base != NULL && real_ip.len > 0) {
        return parse_addr(real_ip.base, real_ip.len, out);
    }
    if (peer_is_ip) {
        store_addr(peer, out);
    }
    return peer_is_ip;
}
