/* SPDX-License-Identifier: MIT */
/* Signed URLs: HMAC-SHA256 over the URL up to a trailing pomerium_signature parameter. */
#include "common/signed_url.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/err.h"
#include "common/url.h"

#define PARAM_ISSUED "pomerium_issued"
#define PARAM_EXPIRY "pomerium_expiry"
#define PARAM_SIGNATURE "pomerium_signature"
/* what signing appends: two times of at most 20 digits, the signature and the names */
#define SIGNED_SUFFIX_MAX 160
#define SIGNATURE_B64_LEN 43 /* base64url of CMN_HMAC_LEN bytes */

/* the parameters the verifier needs, located in one pass over the query */
typedef struct st_signed_params_t {
    h2o_iovec_t issued;
    h2o_iovec_t expiry;
    h2o_iovec_t signature;
    const char *signature_param; /* where "pomerium_signature=" starts */
} signed_params_t;

static bool param_is(const char *p, size_t len, const char *name, const char **value)
{
    size_t name_len = strlen(name);

    if (len <= name_len || memcmp(p, name, name_len) != 0 || p[name_len] != '=') {
        return false;
    }
    *value = p + name_len + 1;
    return true;
}

/* records `value` into `slot`; a parameter present twice makes the URL ambiguous */
static int take(h2o_iovec_t *slot, const char *value, const char *param_end)
{
    if (slot->base != NULL) {
        return -1;
    }
    *slot = h2o_iovec_init(value, (size_t)(param_end - value));
    return 0;
}

/* finds each of the three parameters exactly once, the signature as the very last one */
static int find_params(const char *query, const char *end, signed_params_t *out)
{
    const char *p = query;

    memset(out, 0, sizeof(*out));
    for (;;) {
        const char *param_end = memchr(p, '&', (size_t)(end - p));
        const char *value = NULL;
        if (param_end == NULL) {
            param_end = end;
        }
        size_t len = (size_t)(param_end - p);
        if (param_is(p, len, PARAM_ISSUED, &value) && take(&out->issued, value, param_end) != 0) {
            return -1;
        }
        if (param_is(p, len, PARAM_EXPIRY, &value) && take(&out->expiry, value, param_end) != 0) {
            return -1;
        }
        if (param_is(p, len, PARAM_SIGNATURE, &value)) {
            if (take(&out->signature, value, param_end) != 0 || param_end != end) {
                return -1;
            }
            out->signature_param = p;
        }
        if (param_end == end) {
            break;
        }
        p = param_end + 1;
    }

    if (out->issued.base == NULL || out->expiry.base == NULL || out->signature.base == NULL) {
        return -1;
    }
    return 0;
}

/* unix seconds in plain decimal, at most INT64_MAX so that adding leeway cannot wrap */
static int parse_time(h2o_iovec_t s, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 19 || (s.base[0] == '0' && s.len > 1)) {
        return -1;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.base[i] < '0' || s.base[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s.base[i] - '0');
    }
    if (v > INT64_MAX) {
        return -1;
    }
    *out = v;
    return 0;
}

static int check_signature(const uint8_t key[CMN_KEY_LEN], const char *url, size_t signed_len,
                           h2o_iovec_t signature)
{
    uint8_t expected[CMN_HMAC_LEN];
    uint8_t given[CMN_HMAC_LEN];
    long given_len = -1;

    if (signature.len != SIGNATURE_B64_LEN) {
        return -1;
    }
    given_len = cmn_base64url_decode(signature.base, signature.len, given, sizeof(given));
    if (given_len != CMN_HMAC_LEN) {
        return -1;
    }
    if (cmn_hmac_sha256(key, CMN_KEY_LEN, url, signed_len, expected) != 0) {
        return -1;
    }
    return cmn_consttime_eq(expected, sizeof(expected), given, sizeof(given)) ? 0 : -1;
}

/* true when a raw query already carries one of the names signing appends */
static bool has_signing_param(const char *url)
{
    const char *q = strchr(url, '?');
    h2o_iovec_t query = h2o_iovec_init(NULL, 0);

    if (q == NULL) {
        return false;
    }
    query = h2o_iovec_init(q + 1, strlen(q + 1));
    return cmn_url_query_get(query, PARAM_ISSUED).base != NULL ||
           cmn_url_query_get(query, PARAM_EXPIRY).base != NULL ||
           cmn_url_query_get(query, PARAM_SIGNATURE).base != NULL;
}

char *cmn_signed_url_sign(const uint8_t key[CMN_KEY_LEN], const char *url, uint64_t now)
{
    size_t url_len = strnlen(url, CMN_SIGNED_URL_MAX);
    const char *sep = "?";
    uint8_t mac[CMN_HMAC_LEN];
    char sig[SIGNATURE_B64_LEN + 1];
    char *buf = NULL;
    char *ret = NULL;
    int n = 0;

    /* a fragment would end the query early, and a second copy of a parameter is ambiguous */
    if (url_len + SIGNED_SUFFIX_MAX > CMN_SIGNED_URL_MAX || strchr(url, '#') != NULL ||
        has_signing_param(url) || now > INT64_MAX - CMN_SIGNED_URL_TTL_S) {
        goto Exit;
    }
    if (strchr(url, '?') != NULL) {
        sep = url[url_len - 1] == '?' || url[url_len - 1] == '&' ? "" : "&";
    }

    buf = malloc(CMN_SIGNED_URL_MAX + 1);
    if (buf == NULL) {
        goto Exit;
    }
    n = snprintf(buf, CMN_SIGNED_URL_MAX + 1,
                 "%s%s" PARAM_ISSUED "=%" PRIu64 "&" PARAM_EXPIRY "=%" PRIu64, url, sep, now,
                 now + CMN_SIGNED_URL_TTL_S);
    if (n < 0 || (size_t)n + SIGNATURE_B64_LEN + 32 > CMN_SIGNED_URL_MAX) {
        goto Exit;
    }

    if (cmn_hmac_sha256(key, CMN_KEY_LEN, buf, (size_t)n, mac) != 0) {
        goto Exit;
    }
    cmn_base64url_encode(mac, sizeof(mac), sig);
    snprintf(buf + n, CMN_SIGNED_URL_MAX + 1 - (size_t)n, "&" PARAM_SIGNATURE "=%s", sig);
    ret = buf;
    buf = NULL;

Exit:
    free(buf);
    return ret;
}

int cmn_signed_url_verify(const uint8_t key[CMN_KEY_LEN], const char *url, size_t len, uint64_t now,
                          const char **err)
{
    const char *end = url + len;
    const char *query = NULL;
    signed_params_t params;
    uint64_t issued = 0;
    uint64_t expiry = 0;

    *err = cmn_err_malformed;
    if (len > CMN_SIGNED_URL_MAX || memchr(url, '#', len) != NULL) {
        return -1;
    }
    query = memchr(url, '?', len);
    if (query == NULL || find_params(query + 1, end, &params) != 0) {
        return -1;
    }
    if (parse_time(params.issued, &issued) != 0 || parse_time(params.expiry, &expiry) != 0 ||
        expiry < issued) {
        return -1;
    }

    /* the signed bytes end before the '?' or '&' that introduces the signature */
    *err = cmn_err_bad_signature;
    if (check_signature(key, url, (size_t)(params.signature_param - 1 - url), params.signature) !=
        0) {
        return -1;
    }

    *err = cmn_err_expired;
    if (issued > now + CMN_SIGNED_URL_LEEWAY_S || expiry + CMN_SIGNED_URL_LEEWAY_S < now ||
        expiry - issued > CMN_SIGNED_URL_TTL_S) {
        return -1;
    }
    *err = NULL;
    return 0;
}
