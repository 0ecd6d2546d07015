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
