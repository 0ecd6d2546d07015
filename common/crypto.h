/* SPDX-License-Identifier: MIT */
/* Primitives on OpenSSL: random ids, HKDF, AEAD, HMAC, base64, constant-time comparison. */
#ifndef CMN_CRYPTO_H
#define CMN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMN_KEY_LEN 32
#define CMN_AEAD_NONCE_LEN 12
#define CMN_AEAD_TAG_LEN 16
#define CMN_AEAD_OVERHEAD (CMN_AEAD_NONCE_LEN + CMN_AEAD_TAG_LEN)
#define CMN_HMAC_LEN 32
#define CMN_ID_BYTES 18
#define CMN_ID_LEN 24 /* base64url of CMN_ID_BYTES, no padding */

/** fills buf with random bytes from OpenSSL's CSPRNG; aborts if the CSPRNG fails */
void cmn_random_bytes(void *buf, size_t len);
/** writes a random id of CMN_ID_LEN base64url characters and a NUL into out */
void cmn_random_id(char out[CMN_ID_LEN + 1]);

/** HKDF-SHA256 (RFC 5869) with an empty salt; returns 0 or -1 */
int cmn_hkdf(const uint8_t *secret, size_t secret_len, const char *info, uint8_t *out,
             size_t out_len);

/**
 * AES-256-GCM seal: out receives nonce || ciphertext || tag, `pt_len + CMN_AEAD_OVERHEAD`
 * bytes (caller provides the space). `ad` is authenticated, not encrypted. Returns 0 or -1.
 */
int cmn_aead_seal(const uint8_t key[CMN_KEY_LEN], const void *ad, size_t ad_len, const void *pt,
                  size_t pt_len, uint8_t *out);
/**
 * Opens what cmn_aead_seal produced; writes `in_len - CMN_AEAD_OVERHEAD` bytes into out.
 * Returns 0, or -1 when the input is short, tampered, or sealed with another key or `ad`.
 */
int cmn_aead_open(const uint8_t key[CMN_KEY_LEN], const void *ad, size_t ad_len, const uint8_t *in,
                  size_t in_len, uint8_t *out);

/** HMAC-SHA256; returns 0 or -1 */
int cmn_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[CMN_HMAC_LEN]);
void cmn_sha256(const void *data, size_t len, uint8_t out[32]);

/** constant-time equality of two buffers of the same length; false when lengths differ */
bool cmn_consttime_eq(const void *a, size_t a_len, const void *b, size_t b_len);

/* base64: the encoders return the length written (out needs cmn_base64_encoded_len + 1 bytes,
 * NUL-terminated); the decoders return the decoded length or -1 on any invalid input.
 * url = base64url without padding (RFC 4648 §5); std = standard alphabet, padding optional */
size_t cmn_base64_encoded_len(size_t len);
size_t cmn_base64url_encode(const void *in, size_t len, char *out);
long cmn_base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap);
long cmn_base64_std_decode(const char *in, size_t len, uint8_t *out, size_t out_cap);
/* standard alphabet with padding (HTTP Basic credentials); out needs
 * cmn_base64_std_encoded_len + 1 bytes */
size_t cmn_base64_std_encoded_len(size_t len);
size_t cmn_base64_std_encode(const void *in, size_t len, char *out);

/* keys derived once from the configured secrets; zeroed by cmn_keys_clear */
typedef struct st_cmn_keys_t {
    uint8_t cookie[CMN_KEY_LEN];      /* session cookies (from cookie_secret) */
    uint8_t handoff[CMN_KEY_LEN];     /* handoff tokens (from shared_secret) */
    uint8_t signed_url[CMN_KEY_LEN];  /* HMAC of signed URLs (from shared_secret) */
    uint8_t at_rest[CMN_KEY_LEN];     /* refresh tokens in the databroker (from shared_secret) */
    uint8_t signing_seed[CMN_KEY_LEN]; /* seed of the derived P-256 signing key */
} cmn_keys_t;

int cmn_keys_derive(const uint8_t cookie_secret[32], const uint8_t shared_secret[32],
                    cmn_keys_t *out);
void cmn_keys_clear(cmn_keys_t *keys);

#endif
