/* SPDX-License-Identifier: MIT */
/* The source_ip criterion: IP addresses and CIDR ranges, IPv4-mapped IPv6 counted as IPv4. */
#include "authorize/ppl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define PPL_MAX_CIDR_TEXT 64 /* characters in one address or range */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool parse_bits(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (s[0] == '\0' || strlen(s) > 3) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return v <= max;
}

static void mask(ppl_cidr_t *cidr)
{
    unsigned total = cidr->v4 ? 32 : 128;
    uint8_t *bytes = cidr->v4 ? cidr->addr + 12 : cidr->addr;

    for (unsigned bit = cidr->bits; bit < total; bit++) {
        bytes[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    }
}

/* "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n"; host bits are dropped */
static bool parse_cidr(const char *text, ppl_cidr_t *out)
{
    char buf[PPL_MAX_CIDR_TEXT + 1];
    char *slash;
    struct in_addr a4;
    bool has_bits;
    unsigned bits = 0;

    if (strlen(text) > PPL_MAX_CIDR_TEXT) {
        return false;
    }
    strcpy(buf, text);
    slash = strchr(buf, '/');
    has_bits = slash != NULL;
    if (has_bits) {
        *slash = '\0';
    }

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        out->v4 = true;
        memcpy(out->addr, v4_mapped_prefix, 12);
        memcpy(out->addr + 12, &a4, 4);
        out->bits = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->bits = 128;
    } else {
        return false;
    }
    if (has_bits && !parse_bits(slash + 1, out->bits, &bits)) {
        return false;
    }
    if (has_bits) {
        out->bits = bits;
    }

    /* ::ffff:a.b.c.d/n with n >= 96 is the IPv4 range a.b.c.d/(n - 96) */
    if (!out->v4 && out->bits >= 96 && memcmp(out->addr, v4_mapped_prefix, 12) == 0) {
        out->v4 = true;
        out->bits -= 96;
    }
    mask(out);
    return true;
}

static int compile_one(ppl_compile_t *c, const json_t *item, ppl_cidr_t *out)
{
    if (!json_is_string(item)) {
        ppl_error(c, "source_ip needs an IP address, a CIDR range or a list of them");
        return -1;
    }
    if (!parse_cidr(json_string_value(item), out)) {
        ppl_error(c, "source_ip: \"%.64s\" is neither an IP address nor a CIDR range",
                  json_string_value(item));
        return -1;
    }
    return 0;
}

int ppl_cidrs_compile(ppl_compile_t *c, const json_t *spec, ppl_cidrs_t *out)
{
    size_t i;
    const json_t *item;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(spec)) {
        out->items = ppl_alloc(c->arena, sizeof(out->items[0]));
        out->len = 1;
        return compile_one(c, spec, &out->items[0]);
    }
    if (json_array_size(spec) == 0) {
        ppl_error(c, "source_ip needs at least one address or range");
        return -1;
    }
    out->len = json_array_size(spec);
    out->items = ppl_alloc(c->arena, out->len * sizeof(out->items[0]));
    json_array_foreach(spec, i, item) {
        if (compile_one(c, item, &out->items[i]) != 0) {
            ret = -1;
        }
    }
    return ret;
}

static bool client_addr(const struct sockaddr_storage *ip, uint8_t addr[16], bool *v4)
{
    if (ip->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ip;
        memcpy(addr, v4_mapped_prefix, 12);
        memcpy(addr + 12, &sin->sin_addr, 4);
        *v4 = true;
        return true;
    }
    if (ip->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ip;
        memcpy(addr, &sin6->sin6_addr, 16);
        *v4 = memcmp(addr, v4_mapped_prefix, 12) == 0;
        return true;
    }
    return false;
}

static bool cidr_contains(const ppl_cidr_t *cidr, const uint8_t addr[16])
{
    const uint8_t *a = cidr->v4 ? addr + 12 : addr;
    const uint8_t *n = cidr->v4 ? cidr->addr + 12 : cidr->addr;
    unsigned full = cidr->bits / 8, rest = cidr->bits % 8;

    if (memcmp(a, n, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    return ((a[full] ^ n[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool ppl_cidrs_match(const ppl_cidrs_t *cidrs, const struct sockaddr_storage *ip)
{
    uint8_t addr[16];
    bool v4 = false;

    if (!client_addr(ip, addr, &v4)) {
        return false;
    }
    for (size_t i = 0; i < cidrs->len; i++) {
        if (cidrs->items[i].v4 == v4 && cidr_contains(&cidrs->items[i], addr)) {
            return true;
        }
    }
    return false;
}
