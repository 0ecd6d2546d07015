/* SPDX-License-Identifier: MIT */
/* JOSE on cjose: a JWKS key set, ID token verification, and the identity-assertion signer. */
#ifndef CMN_JOSE_H
#define CMN_JOSE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CMN_JWKS_MAX_KEYS 32
#define CMN_JWKS_MAX_BYTES (256 * 1024)
#define CMN_JWT_MAX_BYTES (64 * 1024)
#define CMN_JWT_LEEWAY_S 60
#define CMN_SIGNER_SEED_LEN 32     /* bytes of the seed of the derived P-256 key */
#define CMN_JWK_THUMBPRINT_LEN 43  /* base64url of a SHA-256 digest, no padding */

typedef struct st_cmn_jwks_t cmn_jwks_t;

/**
 * Parses a JWKS document. Keys that are not for signatures ("use" other than "sig"), of an
 * unsupported type (RSA under 2048 bits, EC other than P-256/P-384), naming an alg that does not
 * fit them, or beyond CMN_JWKS_MAX_KEYS are skipped. Returns NULL with `*err` set when the
 * document is too large (cmn_err_too_large), not JSON (cmn_err_bad_json), has no "keys" array
 * (cmn_err_malformed) or holds no usable key (cmn_err_not_found). Caller frees with
 * cmn_jwks_destroy.
 */
cmn_jwks_t *cmn_jwks_parse(const char *json, size_t len, const char **err);
void cmn_jwks_destroy(cmn_jwks_t *jwks);
size_t cmn_jwks_count(const cmn_jwks_t *jwks);

/* what an ID token must satisfy (OpenID Connect Core 1.0 §3.1.3.7) */
typedef struct st_cmn_jwt_expect_t {
    const char *issuer;    /* exact match on iss (a single trailing slash ignored) */
    const char *audience;  /* the client id: must be in aud; azp checked as in the contract */
    const char *nonce;     /* required match when not NULL */
    const char *const *allowed_algs; /* NULL-terminated, from discovery; NULL = all we support */
    uint64_t now;          /* unix seconds */
} cmn_jwt_expect_t;

/**
 * Verifies a compact JWS ID token against `jwks` and `expect`. Supported: RS256/384/512,
 * PS256/384/512, ES256/384; never "none" nor HMAC. On success stores the claims object in
 * `*claims` (caller decrefs) and returns 0. On failure returns -1 with `*err` one of the
 * cmn_err_jwt_* strings; cmn_err_jwt_unknown_kid tells the caller to refetch the JWKS once.
 */
int cmn_jwt_verify(const char *token, size_t len, const cmn_jwks_t *jwks,
                   const cmn_jwt_expect_t *expect, json_t **claims, const char **err);

/** decodes a JWT's payload without verifying anything (for tests and tools only) */
json_t *cmn_jwt_decode_unverified(const char *token, size_t len);

/**
 * Writes the RFC 7638 SHA-256 thumbprint (base64url, NUL-terminated) of an RSA or EC JWK object
 * into `out`. Returns 0, or -1 with `*err` set (cmn_err_malformed when a required member is
 * missing or the kty is neither).
 */
int cmn_jwk_thumbprint(const json_t *jwk, char out[CMN_JWK_THUMBPRINT_LEN + 1], const char **err);

/* the identity-assertion signer (ES256 by default, RS256 for an RSA key) */
typedef struct st_cmn_signer_t cmn_signer_t;

/**
 * Creates the signer from a PEM private key (EC P-256 -> ES256, RSA of 2048 bits or more ->
 * RS256), or, when `pem` is NULL, from a P-256 key derived deterministically from `seed`
 * (CMN_SIGNER_SEED_LEN bytes, reduced modulo the group order) so that every instance signs with
 * the same key. Returns NULL with `*err` set (cmn_err_malformed for an unusable key).
 */
cmn_signer_t *cmn_signer_create(const char *pem, const uint8_t *seed, const char **err);
void cmn_signer_destroy(cmn_signer_t *signer);

/** the RFC 7638 thumbprint (base64url), used as "kid" */
const char *cmn_signer_kid(const cmn_signer_t *signer);

/** "ES256" or "RS256" */
const char *cmn_signer_alg(const cmn_signer_t *signer);

/**
 * Signs `claims` as a compact JWS with header {alg, kid, typ: "JWT"}. Returns a malloc'd
 * string (caller frees) or NULL. Thread-safe.
 */
char *cmn_signer_sign(const cmn_signer_t *signer, const json_t *claims);

/** the public JWKS document {"keys":[...]} as a malloc'd JSON string (caller frees) */
char *cmn_signer_jwks_json(const cmn_signer_t *signer);

#endif
