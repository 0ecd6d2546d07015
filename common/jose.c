/* SPDX-License-Identifier: MIT */
/* JOSE on cjose: JWKS parsing, ID token verification and the identity-assertion signer. */
#include "common/jose.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "common/err.h"

#define JWK_KID_MAX 256          /* a key with a longer kid is skipped */
#define JWT_CLAIMS_MAX 256       /* members of an ID token's claims object */
#define RSA_MIN_BITS 2048        /* RFC 7518 §3.3 */
#define SIGNER_PEM_MAX (64 * 1024)
#define P256_LEN 32              /* bytes of a P-256 scalar or coordinate */
#define GROUP_NAME_MAX 64
#define JWT_EXP_LEEWAY_S 0       /* exp: none; iat and nbf get CMN_JWT_LEEWAY_S */

typedef enum en_key_family_t {
    KEY_RSA = 0,
    KEY_EC_P256,
    KEY_EC_P384,
} key_family_t;

typedef struct st_jwks_key_t {
    char *kid; /* NULL when the key has none */
    char *alg; /* NULL when the key does not name one */
    key_family_t family;
    cjose_jwk_t *jwk;
} jwks_key_t;

struct st_cmn_jwks_t {
    size_t count;
    jwks_key_t keys[CMN_JWKS_MAX_KEYS];
};

typedef struct st_jws_alg_t {
    const char *name;
    key_family_t family;
    size_t ec_sig_len; /* bytes of R || S for ECDSA (RFC 7518 §3.4); 0 for RSA */
} jws_alg_t;

/* the only algorithms we accept: no "none", no HMAC (a public key must never become an HMAC
 * secret), no ES512 since P-521 keys are not kept */
static const jws_alg_t supported_algs[] = {
    {"RS256", KEY_RSA, 0},      {"RS384", KEY_RSA, 0},      {"RS512", KEY_RSA, 0},
    {"PS256", KEY_RSA, 0},      {"PS384", KEY_RSA, 0},      {"PS512", KEY_RSA, 0},
    {"ES256", KEY_EC_P256, 64}, {"ES384", KEY_EC_P384, 96},
};

typedef struct st_jwt_parts_t {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
} jwt_parts_t;

/*
 * cjose documents no thread safety and signs through OpenSSL's deprecated EC_KEY and RSA
 * objects inside a key, so no two threads sign with one key object: each thread signs with its
 * own copy, imported from the private JWK the first time it signs. `lock` guards that export.
 */
struct st_cmn_signer_t {
    cjose_jwk_t *jwk; /* holds the private key */
    const char *alg;  /* "ES256" or "RS256" */
    char kid[CMN_JWK_THUMBPRINT_LEN + 1];
    char *jwks_json;  /* the public document, built once at creation */
    pthread_mutex_t lock;
    pthread_key_t thread_jwk; /* this thread's copy of jwk; released when the thread ends */
};

static const jws_alg_t *alg_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof(supported_algs) / sizeof(supported_algs[0]); i++) {
        if (strcmp(supported_algs[i].name, name) == 0) {
            return &supported_algs[i];
        }
    }
    return NULL;
}

static bool json_str_eq(const json_t *s, const char *want)
{
    size_t len = strlen(want);

    /* compare by length so a string with an embedded NUL never matches a prefix */
    return json_is_string(s) && json_string_length(s) == len &&
           memcmp(json_string_value(s), want, len) == 0;
}

/* ---- JWKS ---- */

static int key_family(const json_t *entry, key_family_t *family)
{
    const json_t *kty = json_object_get(entry, "kty");
    const json_t *crv = json_object_get(entry, "crv");

    if (json_str_eq(kty, "RSA")) {
        *family = KEY_RSA;
        return 0;
    }
    if (!json_str_eq(kty, "EC")) {
        return -1;
    }
    if (json_str_eq(crv, "P-256")) {
        *family = KEY_EC_P256;
        return 0;
    }
    if (json_str_eq(crv, "P-384")) {
        *family = KEY_EC_P384;
        return 0;
    }
    return -1;
}

/* checks the members we act on; returns -1 for a key we do not keep */
static int key_check_members(const json_t *entry, key_family_t *family)
{
    const json_t *use = json_object_get(entry, "use");
    const json_t *kid = json_object_get(entry, "kid");
    const json_t *alg = json_object_get(entry, "alg");
    const jws_alg_t *known = NULL;

    if (use != NULL && !json_str_eq(use, "sig")) {
        return -1;
    }
    if (key_family(entry, family) != 0) {
        return -1;
    }
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > JWK_KID_MAX)) {
        return -1;
    }

    /* a key that names an algorithm must name one we support, for its own type */
    if (alg != NULL) {
        known = json_is_string(alg) ? alg_lookup(json_string_value(alg)) : NULL;
        if (known == NULL || known->family != *family) {
            return -1;
        }
    }
    return 0;
}

/* checks that cjose read the type, curve and size we expect */
static bool key_matches(const cjose_jwk_t *jwk, key_family_t family)
{
    cjose_err cerr;

    if (family == KEY_RSA) {
        return cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_RSA &&
               cjose_jwk_get_keysize(jwk, &cerr) >= RSA_MIN_BITS;
    }
    return cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_EC &&
           cjose_jwk_EC_get_curve(jwk, &cerr) ==
               (family == KEY_EC_P256 ? CJOSE_JWK_EC_P_256 : CJOSE_JWK_EC_P_384);
}

/* hands one JWK to cjose */
static cjose_jwk_t *key_import(const json_t *entry, key_family_t family)
{
    char *text = json_dumps(entry, JSON_COMPACT);
    cjose_jwk_t *jwk = NULL;
    cjose_err cerr;

    if (text == NULL) {
        return NULL;
    }

    jwk = cjose_jwk_import(text, strlen(text), &cerr);
    free(text);
    if (jwk != NULL && !key_matches(jwk, family)) {
        cjose_jwk_release(jwk);
        jwk = NULL;
    }
    return jwk;
}

static char *dup_member(const json_t *entry, const char *name)
{
    const json_t *v = json_object_get(entry, name);

    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* returns 1 when the key was kept, 0 when skipped, -1 when out of memory */
static int jwks_add(cmn_jwks_t *jwks, const json_t *entry)
{
    jwks_key_t *key = &jwks->keys[jwks->count];

    if (!json_is_object(entry) || key_check_members(entry, &key->family) != 0) {
        return 0;
    }

    key->jwk = key_import(entry, key->family);
    if (key->jwk == NULL) {
        return 0;
    }

    key->kid = dup_member(entry, "kid");
    key->alg = dup_member(entry, "alg");
    if ((key->kid == NULL && json_object_get(entry, "kid") != NULL) ||
        (key->alg == NULL && json_object_get(entry, "alg") != NULL)) {
        cjose_jwk_release(key->jwk);
        free(key->kid);
        free(key->alg);
        memset(key, 0, sizeof(*key));
        return -1;
    }

    jwks->count++;
    return 1;
}

cmn_jwks_t *cmn_jwks_parse(const char *json, size_t len, const char **err)
{
    json_t *doc = NULL;
    const json_t *keys = NULL;
    cmn_jwks_t *jwks = NULL;
    cmn_jwks_t *ret = NULL;
    size_t i;

    if (len > CMN_JWKS_MAX_BYTES) {
        *err = cmn_err_too_large;
        goto Exit;
    }

    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (doc == NULL) {
        *err = cmn_err_bad_json;
        goto Exit;
    }

    keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        *err = cmn_err_malformed;
        goto Exit;
    }

    jwks = calloc(1, sizeof(*jwks));
    if (jwks == NULL) {
        *err = cmn_err_no_memory;
        goto Exit;
    }

    /* keys past the ceiling are skipped, not an error: the set stays usable */
    for (i = 0; i < json_array_size(keys) && jwks->count < CMN_JWKS_MAX_KEYS; i++) {
        if (jwks_add(jwks, json_array_get(keys, i)) < 0) {
            *err = cmn_err_no_memory;
            goto Exit;
        }
    }

    if (jwks->count == 0) {
        *err = cmn_err_not_found;
        goto Exit;
    }
    ret = jwks;
    jwks = NULL;

Exit:
    cmn_jwks_destroy(jwks);
    json_decref(doc);
    return ret;
}

void cmn_jwks_destroy(cmn_jwks_t *jwks)
{
    if (jwks == NULL) {
        return;
    }
    for (size_t i = 0; i < jwks->count; i++) {
        cjose_jwk_release(jwks->keys[i].jwk);
        free(jwks->keys[i].kid);
        free(jwks->keys[i].alg);
    }
    free(jwks);
}

size_t cmn_jwks_count(const cmn_jwks_t *jwks)
{
    return jwks == NULL ? 0 : jwks->count;
}

/* ---- compact serialisation ---- */

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* splits header.payload.signature; exactly three parts, base64url characters only */
static int jwt_split(const char *token, size_t len, jwt_parts_t *parts)
{
    size_t dots[2];
    size_t ndots = 0;

    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2) {
                return -1;
            }
            dots[ndots++] = i;
        } else if (!is_b64url_char(token[i])) {
            return -1;
        }
    }
    if (ndots != 2) {
        return -1;
    }

    parts->header = token;
    parts->header_len = dots[0];
    parts->payload = token + dots[0] + 1;
    parts->payload_len = dots[1] - dots[0] - 1;
    parts->sig = token + dots[1] + 1;
    parts->sig_len = len - dots[1] - 1;

    /* an empty signature is left for the algorithm check, which refuses "none" by name */
    return parts->header_len == 0 || parts->payload_len == 0 ? -1 : 0;
}

/* decodes one base64url segment holding a JSON object */
static json_t *segment_json(const char *in, size_t len)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    json_t *obj = NULL;
    cjose_err cerr;

    if (!cjose_base64url_decode(in, len, &raw, &raw_len, &cerr)) {
        return NULL;
    }

    obj = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
    cjose_get_dealloc()(raw);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* ---- header ---- */

static bool alg_allowed(const char *alg, const char *const *allowed)
{
    if (allowed == NULL) {
        return true;
    }
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strcmp(allowed[i], alg) == 0) {
            return true;
        }
    }
    return false;
}

/* reads alg and kid from the header, which we parse before cjose sees the token */
static const jws_alg_t *header_check(const json_t *header, const cmn_jwt_expect_t *expect,
                                     const char **kid, const char **err)
{
    const json_t *alg = json_object_get(header, "alg");
    const json_t *kid_v = json_object_get(header, "kid");
    const jws_alg_t *found = NULL;

    if (!json_is_string(alg)) {
        *err = cmn_err_jwt_malformed;
        return NULL;
    }

    found = alg_lookup(json_string_value(alg));
    if (found == NULL || !alg_allowed(found->name, expect->allowed_algs)) {
        *err = cmn_err_jwt_alg;
        return NULL;
    }

    /* RFC 7515 §4.1.11: we implement no extension, so any "crit" must be refused; keys carried
     * in the header (jwk, jku, x5u, x5c) are never looked at: keys come from the JWKS only */
    if (json_object_get(header, "crit") != NULL) {
        *err = cmn_err_jwt_malformed;
        return NULL;
    }

    if (kid_v != NULL && !json_is_string(kid_v)) {
        *err = cmn_err_jwt_malformed;
        return NULL;
    }
    *kid = kid_v != NULL ? json_string_value(kid_v) : NULL;
    return found;
}

/* ---- signature ---- */

static bool key_fits(const jwks_key_t *key, const jws_alg_t *alg)
{
    return key->family == alg->family && (key->alg == NULL || strcmp(key->alg, alg->name) == 0);
}

/* tries the candidate keys: the one(s) named by kid, else every key that fits alg */
static int signature_check(cjose_jws_t *jws, const cmn_jwks_t *jwks, const jws_alg_t *alg,
                           const char *kid, const char **err)
{
    bool kid_seen = false;
    bool tried = false;
    cjose_err cerr;

    /* no key set yet (first fetch pending) is treated like an empty one */
    for (size_t i = 0; i < cmn_jwks_count(jwks); i++) {
        const jwks_key_t *key = &jwks->keys[i];

        if (kid != NULL && (key->kid == NULL || strcmp(key->kid, kid) != 0)) {
            continue;
        }
        kid_seen = true;
        if (!key_fits(key, alg)) {
            continue;
        }
        tried = true;
        if (cjose_jws_verify(jws, key->jwk, &cerr)) {
            return 0;
        }
    }

    /* no key at all for this token tells the caller a refetch of the JWKS may help */
    if (tried) {
        *err = cmn_err_jwt_signature;
    } else if (kid != NULL && kid_seen) {
        *err = cmn_err_jwt_alg;
    } else {
        *err = cmn_err_jwt_unknown_kid;
    }
    return -1;
}

static json_t *verified_claims(cjose_jws_t *jws, const char **err)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    json_t *claims = NULL;
    cjose_err cerr;

    /* the plaintext stays owned by the JWS */
    if (!cjose_jws_get_plaintext(jws, &plain, &plain_len, &cerr)) {
        *err = cmn_err_jwt_malformed;
        return NULL;
    }

    claims = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims) || json_object_size(claims) > JWT_CLAIMS_MAX) {
        json_decref(claims);
        *err = cmn_err_jwt_malformed;
        return NULL;
    }
    return claims;
}

/* ---- claims (OpenID Connect Core 1.0 §3.1.3.7) ---- */

/* ignores one trailing slash on either side */
static bool issuer_eq(const json_t *iss, const char *want)
{
    size_t have_len = json_string_length(iss);
    size_t want_len = strlen(want);
    const char *have = json_string_value(iss);

    if (have_len > 0 && have[have_len - 1] == '/') {
        have_len--;
    }
    if (want_len > 0 && want[want_len - 1] == '/') {
        want_len--;
    }
    return have_len == want_len && memcmp(have, want, want_len) == 0;
}

static int check_string_claims(const json_t *claims, const cmn_jwt_expect_t *expect,
                               const char **err)
{
    const json_t *iss = json_object_get(claims, "iss");
    const json_t *sub = json_object_get(claims, "sub");

    if (iss == NULL || sub == NULL) {
        *err = cmn_err_jwt_missing_claim;
        return -1;
    }
    if (!json_is_string(iss) || !json_is_string(sub) || json_string_length(sub) == 0) {
        *err = cmn_err_jwt_malformed;
        return -1;
    }
    if (!issuer_eq(iss, expect->issuer)) {
        *err = cmn_err_jwt_iss;
        return -1;
    }
    return 0;
}

/* aud holds the client id; with several audiences azp must name it (it is checked whenever
 * present) */
static int check_audience(const json_t *claims, const char *audience, const char **err)
{
    const json_t *aud = json_object_get(claims, "aud");
    const json_t *azp = json_object_get(claims, "azp");
    size_t count = 1;
    bool found = false;

    if (aud == NULL) {
        *err = cmn_err_jwt_missing_claim;
        return -1;
    }

    if (json_is_string(aud)) {
        found = json_str_eq(aud, audience);
    } else if (json_is_array(aud)) {
        count = json_array_size(aud);
        for (size_t i = 0; i < count; i++) {
            const json_t *one = json_array_get(aud, i);
            if (!json_is_string(one)) {
                *err = cmn_err_jwt_aud;
                return -1;
            }
            found = found || json_str_eq(one, audience);
        }
    }
    if (!found) {
        *err = cmn_err_jwt_aud;
        return -1;
    }

    if ((count > 1 && azp == NULL) || (azp != NULL && !json_str_eq(azp, audience))) {
        *err = cmn_err_jwt_azp;
        return -1;
    }
    return 0;
}

/* reads a NumericDate; returns 1 when present, 0 when absent, -1 when not an integer */
static int claim_time(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);

    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v)) {
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 1;
}

static int check_times(const json_t *claims, uint64_t now_u, const char **err)
{
    /* clamped so that now + leeway cannot overflow */
    int64_t now = now_u > (uint64_t)(INT64_MAX - CMN_JWT_LEEWAY_S)
                      ? INT64_MAX - CMN_JWT_LEEWAY_S
                      : (int64_t)now_u;
    int64_t exp = 0, iat = 0, nbf = 0;
    int has_exp = claim_time(claims, "exp", &exp);
    int has_iat = claim_time(claims, "iat", &iat);
    int has_nbf = claim_time(claims, "nbf", &nbf);

    if (has_exp < 0 || has_iat < 0 || has_nbf < 0) {
        *err = cmn_err_jwt_malformed;
        return -1;
    }
    if (has_exp == 0 || has_iat == 0) {
        *err = cmn_err_jwt_missing_claim;
        return -1;
    }

    /* RFC 7519 §4.1.4: refuse when now >= exp + leeway; exp gets none (issue #4, see
     * ARCHITECTURE.md "Clock leeway"): an ID token is checked right after it was issued */
    if (now - JWT_EXP_LEEWAY_S >= exp) {
        *err = cmn_err_jwt_expired;
        return -1;
    }
    /* a provider clock a little ahead of ours is tolerated for iat and nbf only */
    if (iat > now + CMN_JWT_LEEWAY_S) {
        *err = cmn_err_jwt_iat;
        return -1;
    }
    if (has_nbf == 1 && nbf > now + CMN_JWT_LEEWAY_S) {
        *err = cmn_err_jwt_not_yet_valid;
        return -1;
    }
    return 0;
}

static int check_claims(const json_t *claims, const cmn_jwt_expect_t *expect, const char **err)
{
    if (check_string_claims(claims, expect, err) != 0) {
        return -1;
    }
    if (check_audience(claims, expect->audience, err) != 0) {
        return -1;
    }
    if (check_times(claims, expect->now, err) != 0) {
        return -1;
    }

    /* a missing nonce fails like a wrong one: both mean the login was not ours */
    if (expect->nonce != NULL && !json_str_eq(json_object_get(claims, "nonce"), expect->nonce)) {
        *err = cmn_err_jwt_nonce;
        return -1;
    }
    return 0;
}

int cmn_jwt_verify(const char *token, size_t len, const cmn_jwks_t *jwks,
                   const cmn_jwt_expect_t *expect, json_t **claims, const char **err)
{
    jwt_parts_t parts;
    json_t *header = NULL;
    json_t *payload = NULL;
    cjose_jws_t *jws = NULL;
    const jws_alg_t *alg = NULL;
    const char *kid = NULL;
    cjose_err cerr;
    int ret = -1;

    *claims = NULL;
    if (len > CMN_JWT_MAX_BYTES) {
        *err = cmn_err_too_large;
        goto Exit;
    }

    header = jwt_split(token, len, &parts) == 0 ? segment_json(parts.header, parts.header_len)
                                                : NULL;
    if (header == NULL) {
        *err = cmn_err_jwt_malformed;
        goto Exit;
    }

    alg = header_check(header, expect, &kid, err);
    if (alg == NULL) {
        goto Exit;
    }

    /* RFC 7518 §3.4: R || S has a fixed length; refuse any other before cjose splits it */
    if (parts.sig_len == 0 ||
        (alg->ec_sig_len != 0 && parts.sig_len != (alg->ec_sig_len * 4 + 2) / 3)) {
        *err = cmn_err_jwt_signature;
        goto Exit;
    }

    jws = cjose_jws_import(token, len, &cerr);
    if (jws == NULL) {
        *err = cmn_err_jwt_malformed;
        goto Exit;
    }

    if (signature_check(jws, jwks, alg, kid, err) != 0) {
        goto Exit;
    }

    payload = verified_claims(jws, err);
    if (payload == NULL || check_claims(payload, expect, err) != 0) {
        goto Exit;
    }

    *claims = payload;
    payload = NULL;
    ret = 0;

Exit:
    cjose_jws_release(jws);
    json_decref(payload);
    json_decref(header);
    return ret;
}

json_t *cmn_jwt_decode_unverified(const char *token, size_t len)
{
    jwt_parts_t parts;

    if (len > CMN_JWT_MAX_BYTES || jwt_split(token, len, &parts) != 0) {
        return NULL;
    }
    return segment_json(parts.payload, parts.payload_len);
}

/* ---- thumbprint ---- */

int cmn_jwk_thumbprint(const json_t *jwk, char out[CMN_JWK_THUMBPRINT_LEN + 1], const char **err)
{
    static const char *const ec_members[] = {"crv", "kty", "x", "y", NULL};
    static const char *const rsa_members[] = {"e", "kty", "n", NULL};
    const char *const *members = NULL;
    json_t *canon = NULL;
    char *text = NULL;
    char *b64 = NULL;
    size_t b64_len = 0;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    cjose_err cerr;
    int ret = -1;

    *err = cmn_err_malformed;
    if (json_str_eq(json_object_get(jwk, "kty"), "EC")) {
        members = ec_members;
    } else if (json_str_eq(json_object_get(jwk, "kty"), "RSA")) {
        members = rsa_members;
    } else {
        goto Exit;
    }

    /* RFC 7638 §3.2: the required members only, sorted, no whitespace */
    canon = json_object();
    if (canon == NULL) {
        *err = cmn_err_no_memory;
        goto Exit;
    }
    for (size_t i = 0; members[i] != NULL; i++) {
        json_t *v = json_object_get(jwk, members[i]);
        if (!json_is_string(v) || json_object_set(canon, members[i], v) != 0) {
            goto Exit;
        }
    }

    text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        *err = cmn_err_no_memory;
        goto Exit;
    }

    SHA256((const unsigned char *)text, strlen(text), digest);
    if (!cjose_base64url_encode(digest, sizeof(digest), &b64, &b64_len, &cerr) ||
        b64_len != CMN_JWK_THUMBPRINT_LEN) {
        *err = cmn_err_no_memory;
        goto Exit;
    }
    memcpy(out, b64, b64_len);
    out[b64_len] = '\0';
    ret = 0;

Exit:
    cjose_get_dealloc()(b64);
    free(text);
    json_decref(canon);
    return ret;
}

/* ---- signer: key loading ---- */

/* builds a P-256 cjose key from its scalar and public point */
static cjose_jwk_t *ec_jwk_create(const BIGNUM *d, const BIGNUM *x, const BIGNUM *y)
{
    uint8_t db[P256_LEN], xb[P256_LEN], yb[P256_LEN];
    cjose_jwk_ec_keyspec spec = {.crv = CJOSE_JWK_EC_P_256,
                                 .d = db, .dlen = sizeof(db),
                                 .x = xb, .xlen = sizeof(xb),
                                 .y = yb, .ylen = sizeof(yb)};
    cjose_jwk_t *jwk = NULL;
    cjose_err cerr;

    if (BN_bn2binpad(d, db, sizeof(db)) == sizeof(db) &&
        BN_bn2binpad(x, xb, sizeof(xb)) == sizeof(xb) &&
        BN_bn2binpad(y, yb, sizeof(yb)) == sizeof(yb)) {
        jwk = cjose_jwk_create_EC_spec(&spec, &cerr);
    }
    OPENSSL_cleanse(db, sizeof(db));
    return jwk;
}

/* the seed, reduced modulo the group order, is the private scalar; every instance given the
 * same seed derives the same key */
static cjose_jwk_t *jwk_from_seed(const uint8_t *seed, const char **err)
{
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *d = BN_secure_new();
    BIGNUM *x = BN_new();
    BIGNUM *y = BN_new();
    EC_POINT *pub = group != NULL ? EC_POINT_new(group) : NULL;
    cjose_jwk_t *jwk = NULL;

    *err = cmn_err_no_memory;
    if (group == NULL || ctx == NULL || d == NULL || x == NULL || y == NULL || pub == NULL) {
        goto Exit;
    }
    BN_set_flags(d, BN_FLG_CONSTTIME);

    if (BN_bin2bn(seed, CMN_SIGNER_SEED_LEN, d) == NULL ||
        BN_nnmod(d, d, EC_GROUP_get0_order(group), ctx) != 1) {
        goto Exit;
    }
    if (BN_is_zero(d)) {
        *err = cmn_err_malformed;
        goto Exit;
    }

    if (EC_POINT_mul(group, pub, d, NULL, NULL, ctx) != 1 ||
        EC_POINT_get_affine_coordinates(group, pub, x, y, ctx) != 1) {
        goto Exit;
    }
    jwk = ec_jwk_create(d, x, y);

Exit:
    EC_POINT_free(pub);
    BN_free(y);
    BN_free(x);
    BN_clear_free(d);
    BN_CTX_free(ctx);
    EC_GROUP_free(group);
    return jwk;
}

static cjose_jwk_t *ec_jwk_from_pkey(const EVP_PKEY *pkey, const char **err)
{
    char group[GROUP_NAME_MAX];
    BIGNUM *d = NULL;
    BIGNUM *x = NULL;
    BIGNUM *y = NULL;
    cjose_jwk_t *jwk = NULL;

    *err = cmn_err_malformed;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, SN_X9_62_prime256v1) != 0) {
        goto Exit;
    }

    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
        goto Exit;
    }
    jwk = ec_jwk_create(d, x, y);

Exit:
    BN_clear_free(d);
    BN_free(x);
    BN_free(y);
    return jwk;
}

/* copies one RSA parameter into a malloc'd big-endian buffer */
static int rsa_param(const EVP_PKEY *pkey, const char *name, uint8_t **out, size_t *len)
{
    BIGNUM *bn = NULL;
    int ret = -1;

    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
        goto Exit;
    }
    *len = (size_t)BN_num_bytes(bn);
    *out = OPENSSL_secure_malloc(*len > 0 ? *len : 1);
    if (*out == NULL || BN_bn2bin(bn, *out) != (int)*len) {
        goto Exit;
    }
    ret = 0;

Exit:
    BN_clear_free(bn);
    return ret;
}

static cjose_jwk_t *rsa_jwk_from_pkey(const EVP_PKEY *pkey, const char **err)
{
    cjose_jwk_rsa_keyspec spec;
    cjose_jwk_t *jwk = NULL;
    cjose_err cerr;

    memset(&spec, 0, sizeof(spec));
    *err = cmn_err_malformed;
    if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
        goto Exit;
    }

    if (rsa_param(pkey, OSSL_PKEY_PARAM_RSA_N, &spec.n, &spec.nlen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_E, &spec.e, &spec.elen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_D, &spec.d, &spec.dlen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, &spec.p, &spec.plen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, &spec.q, &spec.qlen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, &spec.dp, &spec.dplen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, &spec.dq, &spec.dqlen) != 0 ||
        rsa_param(pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, &spec.qi, &spec.qilen) != 0) {
        goto Exit;
    }
    jwk = cjose_jwk_create_RSA_spec(&spec, &cerr);

Exit:
    OPENSSL_secure_clear_free(spec.n, spec.nlen);
    OPENSSL_secure_clear_free(spec.e, spec.elen);
    OPENSSL_secure_clear_free(spec.d, spec.dlen);
    OPENSSL_secure_clear_free(spec.p, spec.plen);
    OPENSSL_secure_clear_free(spec.q, spec.qlen);
    OPENSSL_secure_clear_free(spec.dp, spec.dplen);
    OPENSSL_secure_clear_free(spec.dq, spec.dqlen);
    OPENSSL_secure_clear_free(spec.qi, spec.qilen);
    return jwk;
}

/* an encrypted PEM is refused instead of prompting on a terminal */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static cjose_jwk_t *jwk_from_pem(const char *pem, const char **alg, const char **err)
{
    size_t len = strnlen(pem, SIGNER_PEM_MAX + 1);
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    cjose_jwk_t *jwk = NULL;

    if (len > SIGNER_PEM_MAX) {
        *err = cmn_err_too_large;
        goto Exit;
    }

    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        *err = cmn_err_no_memory;
        goto Exit;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        *err = cmn_err_malformed;
        goto Exit;
    }

    if (EVP_PKEY_is_a(pkey, "EC")) {
        *alg = "ES256";
        jwk = ec_jwk_from_pkey(pkey, err);
    } else if (EVP_PKEY_is_a(pkey, "RSA")) {
        *alg = "RS256";
        jwk = rsa_jwk_from_pkey(pkey, err);
    } else {
        *err = cmn_err_malformed;
    }

Exit:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return jwk;
}

/* ---- signer: public document ---- */

/* the public members, straight from cjose's export without the private parts */
static json_t *public_jwk(const cjose_jwk_t *jwk)
{
    static const char *const ec_members[] = {"kty", "crv", "x", "y", NULL};
    static const char *const rsa_members[] = {"kty", "n", "e", NULL};
    char *text = NULL;
    json_t *exported = NULL;
    json_t *pub = NULL;
    const char *const *members = NULL;
    cjose_err cerr;

    text = cjose_jwk_to_json(jwk, false, &cerr);
    exported = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (exported == NULL) {
        goto Exit;
    }
    members = json_str_eq(json_object_get(exported, "kty"), "EC") ? ec_members : rsa_members;

    /* copy by allow-list, so no private member ("d", primes) can reach the document */
    pub = json_object();
    for (size_t i = 0; pub != NULL && members[i] != NULL; i++) {
        json_t *v = json_object_get(exported, members[i]);
        if (!json_is_string(v) || json_object_set(pub, members[i], v) != 0) {
            json_decref(pub);
            pub = NULL;
        }
    }

Exit:
    json_decref(exported);
    cjose_get_dealloc()(text);
    return pub;
}

static int signer_publish(cmn_signer_t *signer, const char **err)
{
    json_t *pub = public_jwk(signer->jwk);
    json_t *doc = NULL;
    int ret = -1;

    *err = cmn_err_no_memory;
    if (pub == NULL || cmn_jwk_thumbprint(pub, signer->kid, err) != 0) {
        goto Exit;
    }

    if (json_object_set_new(pub, "kid", json_string(signer->kid)) != 0 ||
        json_object_set_new(pub, "alg", json_string(signer->alg)) != 0 ||
        json_object_set_new(pub, "use", json_string("sig")) != 0) {
        goto Exit;
    }
    doc = json_pack("{s:[O]}", "keys", pub);
    signer->jwks_json = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (signer->jwks_json == NULL) {
        goto Exit;
    }
    ret = 0;

Exit:
    json_decref(doc);
    json_decref(pub);
    return ret;
}

static void release_thread_jwk(void *jwk)
{
    cjose_jwk_release(jwk);
}

cmn_signer_t *cmn_signer_create(const char *pem, const uint8_t *seed, const char **err)
{
    cmn_signer_t *signer = calloc(1, sizeof(*signer));

    if (signer == NULL) {
        *err = cmn_err_no_memory;
        return NULL;
    }
    if (pthread_mutex_init(&signer->lock, NULL) != 0) {
        free(signer);
        *err = cmn_err_no_memory;
        return NULL;
    }
    if (pthread_key_create(&signer->thread_jwk, release_thread_jwk) != 0) {
        pthread_mutex_destroy(&signer->lock);
        free(signer);
        *err = cmn_err_no_memory;
        return NULL;
    }

    if (pem != NULL) {
        signer->jwk = jwk_from_pem(pem, &signer->alg, err);
    } else if (seed != NULL) {
        signer->alg = "ES256";
        signer->jwk = jwk_from_seed(seed, err);
    } else {
        *err = cmn_err_malformed;
    }

    if (signer->jwk == NULL || signer_publish(signer, err) != 0) {
        cmn_signer_destroy(signer);
        return NULL;
    }
    return signer;
}

void cmn_signer_destroy(cmn_signer_t *signer)
{
    if (signer == NULL) {
        return;
    }
    /* the calling thread's copy; other threads' go when they end */
    cjose_jwk_release(pthread_getspecific(signer->thread_jwk));
    pthread_key_delete(signer->thread_jwk);
    cjose_jwk_release(signer->jwk);
    free(signer->jwks_json);
    pthread_mutex_destroy(&signer->lock);
    free(signer);
}

const char *cmn_signer_kid(const cmn_signer_t *signer)
{
    return signer->kid;
}

const char *cmn_signer_alg(const cmn_signer_t *signer)
{
    return signer->alg;
}

static cjose_header_t *signer_header(const cmn_signer_t *signer)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_header_new(&cerr);

    if (hdr == NULL) {
        return NULL;
    }
    if (!cjose_header_set(hdr, CJOSE_HDR_ALG, signer->alg, &cerr) ||
        !cjose_header_set(hdr, CJOSE_HDR_KID, signer->kid, &cerr) ||
        !cjose_header_set(hdr, "typ", "JWT", &cerr)) {
        cjose_header_release(hdr);
        return NULL;
    }
    return hdr;
}

/* this thread's own copy of the signing key, made on first use; NULL when it cannot be */
static cjose_jwk_t *thread_jwk(const cmn_signer_t *signer)
{
    cjose_jwk_t *jwk = pthread_getspecific(signer->thread_jwk);
    pthread_mutex_t *lock = (pthread_mutex_t *)&signer->lock; /* const dropped for it only */
    char *private_json = NULL;
    cjose_err cerr;

    if (jwk != NULL) {
        return jwk;
    }
    if (pthread_mutex_lock(lock) != 0) {
        return NULL;
    }
    private_json = cjose_jwk_to_json(signer->jwk, true, &cerr);
    pthread_mutex_unlock(lock);
    if (private_json == NULL) {
        return NULL;
    }
    jwk = cjose_jwk_import(private_json, strlen(private_json), &cerr);
    OPENSSL_cleanse(private_json, strlen(private_json));
    cjose_get_dealloc()(private_json);
    if (jwk != NULL && pthread_setspecific(signer->thread_jwk, jwk) != 0) {
        cjose_jwk_release(jwk);
        jwk = NULL;
    }
    return jwk;
}

char *cmn_signer_sign(const cmn_signer_t *signer, const json_t *claims)
{
    cjose_jwk_t *jwk = thread_jwk(signer);
    cjose_header_t *hdr = NULL;
    char *payload = NULL;
    cjose_jws_t *jws = NULL;
    const char *compact = NULL;
    char *out = NULL;
    cjose_err cerr;

    payload = json_dumps(claims, JSON_COMPACT);
    hdr = signer_header(signer);
    if (jwk == NULL || payload == NULL || hdr == NULL) {
        goto Exit;
    }

    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
    if (jws == NULL || !cjose_jws_export(jws, &compact, &cerr)) {
        goto Exit;
    }
    out = strdup(compact);

Exit:
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    free(payload);
    return out;
}

char *cmn_signer_jwks_json(const cmn_signer_t *signer)
{
    return strdup(signer->jwks_json);
}
