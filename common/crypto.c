/* SPDX-License-Identifier: MIT */
/* Primitives on OpenSSL 3 EVP: random ids, HKDF, AES-256-GCM, HMAC, strict base64. */
#include "common/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "common/err.h"

#define KEY_INFO_COOKIE "portcullis cookie v1"
#define KEY_INFO_HANDOFF "portcullis handoff v1"
#define KEY_INFO_SIGNED_URL "portcullis signed-url v1"
#define KEY_INFO_AT_REST "portcullis at-rest v1"
#define KEY_INFO_SIGNING "portcullis signing-key v1"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cmn_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;

    /* RAND_bytes takes an int length, so feed it in chunks */
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, chunk) != 1) {
            cmn_unreachable("RAND_bytes failed: the CSPRNG cannot produce random bytes");
        }
        p += chunk;
        len -= (size_t)chunk;
    }
}

void cmn_random_id(char out[CMN_ID_LEN + 1])
{
    uint8_t raw[CMN_ID_BYTES];

    cmn_random_bytes(raw, sizeof(raw));
    cmn_base64url_encode(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
}

int cmn_hkdf(const uint8_t *secret, size_t secret_len, const char *info, uint8_t *out,
             size_t out_len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[4];
    size_t n = 0;
    int ret = -1;

    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    if (kdf == NULL) {
        goto Exit;
    }
    ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == NULL) {
        goto Exit;
    }

    /* no salt parameter: RFC 5869 §2.2 treats an absent salt as HashLen zero bytes */
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
    if (info != NULL && info[0] != '\0') {
        params[n++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    }
    params[n] = OSSL_PARAM_construct_end();

    if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
        goto Exit;
    }
    ret = 0;

Exit:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

/*
 * AES-256-GCM contexts kept per thread, one per direction: fetching the cipher and setting up a
 * context and its key schedule cost more than opening a cookie, so the cipher is fetched once
 * and a context is keyed again only when the key changes. A nonce alone re-arms it per message.
 */
typedef struct st_gcm_slot_t {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[CMN_KEY_LEN];
    bool keyed;
} gcm_slot_t;

typedef struct st_gcm_thread_t {
    gcm_slot_t seal;
    gcm_slot_t open;
} gcm_thread_t;

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static pthread_key_t gcm_key;
static EVP_CIPHER *gcm_cipher;
static EVP_MD *sha256_md; /* fetched once: EVP_sha256() looks the provider up on every call */

static void gcm_slot_clear(gcm_slot_t *slot)
{
    EVP_CIPHER_CTX_free(slot->ctx);
    OPENSSL_cleanse(slot->key, sizeof(slot->key));
}

static void gcm_thread_free(void *arg)
{
    gcm_thread_t *t = arg;

    gcm_slot_clear(&t->seal);
    gcm_slot_clear(&t->open);
    OPENSSL_free(t);
}

static void crypto_init_once(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&gcm_key, gcm_thread_free) != 0) {
        cmn_unreachable("pthread_key_create failed");
    }
}

/* this thread's context for one direction, armed with `key` and `nonce`; NULL on failure */
static EVP_CIPHER_CTX *gcm_context(bool seal, const uint8_t key[CMN_KEY_LEN],
                                   const uint8_t *nonce)
{
    gcm_thread_t *t;
    gcm_slot_t *slot;
    const uint8_t *rekey = NULL;
    int ok;

    pthread_once(&crypto_once, crypto_init_once);
    if (gcm_cipher == NULL) {
        return NULL;
    }
    t = pthread_getspecific(gcm_key);
    if (t == NULL) {
        t = OPENSSL_zalloc(sizeof(*t));
        if (t == NULL || pthread_setspecific(gcm_key, t) != 0) {
            OPENSSL_free(t);
            return NULL;
        }
    }
    slot = seal ? &t->seal : &t->open;
    if (slot->ctx == NULL) {
        slot->ctx = EVP_CIPHER_CTX_new();
        if (slot->ctx == NULL) {
            return NULL;
        }
    }

    if (!slot->keyed || CRYPTO_memcmp(slot->key, key, CMN_KEY_LEN) != 0) {
        rekey = key;
    }
    slot->keyed = false;
    ok = seal ? EVP_EncryptInit_ex2(slot->ctx, rekey != NULL ? gcm_cipher : NULL, rekey, nonce,
                                    NULL)
              : EVP_DecryptInit_ex2(slot->ctx, rekey != NULL ? gcm_cipher : NULL, rekey, nonce,
                                    NULL);
    if (ok != 1) {
        return NULL;
    }
    if (rekey != NULL) {
        memcpy(slot->key, key, CMN_KEY_LEN);
    }
    slot->keyed = true;
    return slot->ctx;
}

int cmn_aead_seal(const uint8_t key[CMN_KEY_LEN], const void *ad, size_t ad_len, const void *pt,
                  size_t pt_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *nonce = out;
    uint8_t *ct = out + CMN_AEAD_NONCE_LEN;
    int n = 0;

    if (ad_len > INT_MAX || pt_len > INT_MAX - CMN_AEAD_OVERHEAD) {
        return -1;
    }

    /* a random 96-bit nonce per message: keys are long-lived, so never reuse a counter */
    cmn_random_bytes(nonce, CMN_AEAD_NONCE_LEN);

    ctx = gcm_context(true, key, nonce);
    if (ctx == NULL) {
        return -1;
    }
    if (ad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1) {
        return -1;
    }
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)pt_len) != 1) {
        return -1;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + pt_len, &n) != 1) {
        return -1;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CMN_AEAD_TAG_LEN, ct + pt_len) != 1) {
        return -1;
    }
    return 0;
}

int cmn_aead_open(const uint8_t key[CMN_KEY_LEN], const void *ad, size_t ad_len, const uint8_t *in,
                  size_t in_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    const uint8_t *ct = in + CMN_AEAD_NONCE_LEN;
    size_t ct_len = 0;
    int n = 0;

    if (in_len < CMN_AEAD_OVERHEAD || in_len > INT_MAX || ad_len > INT_MAX) {
        return -1;
    }
    ct_len = in_len - CMN_AEAD_OVERHEAD;

    ctx = gcm_context(false, key, in);
    if (ctx == NULL) {
        return -1;
    }
    if (ad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) != 1) {
        return -1;
    }
    if (ct_len > 0 && EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) != 1) {
        return -1;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CMN_AEAD_TAG_LEN, (void *)(ct + ct_len)) !=
        1) {
        return -1;
    }
    if (EVP_DecryptFinal_ex(ctx, out + ct_len, &n) != 1) {
        /* the tag did not verify: do not hand back unauthenticated plaintext */
        OPENSSL_cleanse(out, ct_len);
        return -1;
    }
    return 0;
}

int cmn_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[CMN_HMAC_LEN])
{
    size_t out_len = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, data, len, out, CMN_HMAC_LEN,
                  &out_len) == NULL) {
        return -1;
    }
    if (out_len != CMN_HMAC_LEN) {
        return -1;
    }
    return 0;
}

void cmn_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;

    pthread_once(&crypto_once, crypto_init_once);

    /* only fails when OpenSSL cannot allocate or lost its default provider */
    if (sha256_md == NULL || EVP_Digest(data, len, out, &out_len, sha256_md, NULL) != 1 ||
        out_len != 32) {
        cmn_unreachable("EVP_Digest(SHA-256) failed");
    }
}

bool cmn_consttime_eq(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len) {
        return false;
    }
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

size_t cmn_base64_encoded_len(size_t len)
{
    /* unpadded: four characters per three bytes, plus two or three for a tail */
    return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

size_t cmn_base64_std_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

/* encodes with `alphabet`; pads with '=' to a multiple of four when `pad` */
static size_t encode(const char *alphabet, bool pad, const void *in, size_t len, char *out)
{
    const uint8_t *src = in;
    size_t o = 0;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        out[o++] = alphabet[v >> 18 & 0x3f];
        out[o++] = alphabet[v >> 12 & 0x3f];
        out[o++] = alphabet[v >> 6 & 0x3f];
        out[o++] = alphabet[v & 0x3f];
    }

    if (len - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        out[o++] = alphabet[v >> 18 & 0x3f];
        out[o++] = alphabet[v >> 12 & 0x3f];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 0x3f];
        out[o++] = alphabet[v >> 12 & 0x3f];
        out[o++] = alphabet[v >> 6 & 0x3f];
        if (pad) {
            out[o++] = '=';
        }
    }

    out[o] = '\0';
    return o;
}

size_t cmn_base64url_encode(const void *in, size_t len, char *out)
{
    return encode(b64url_alphabet, false, in, len, out);
}

size_t cmn_base64_std_encode(const void *in, size_t len, char *out)
{
    return encode(b64std_alphabet, true, in, len, out);
}

/* the 6-bit value of `c` in `alphabet`, or -1 */
static int sextet(const char *alphabet, char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == alphabet[62]) {
        return 62;
    }
    if (c == alphabet[63]) {
        return 63;
    }
    return -1;
}

/*
 * decodes unpadded base64 in `alphabet`. Refuses any character outside it, a length that leaves
 * a single character over, and non-zero unused bits in the last character (RFC 4648 §3.5), so
 * each byte string has exactly one accepted encoding.
 */
static long decode(const char *alphabet, const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t out_len = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    if (len % 4 == 1 || out_len > cap || out_len > LONG_MAX) {
        return -1;
    }

    for (size_t i = 0; i < len; i++) {
        int v = sextet(alphabet, in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }

    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return -1;
    }
    return (long)o;
}

long cmn_base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap)
{
    return decode(b64url_alphabet, in, len, out, out_cap);
}

long cmn_base64_std_decode(const char *in, size_t len, uint8_t *out, size_t out_cap)
{
    /* padding is optional, but when present it must complete the last quantum exactly */
    if (len > 0 && in[len - 1] == '=') {
        if (len % 4 != 0) {
            return -1;
        }
        len--;
        if (in[len - 1] == '=') {
            len--;
        }
        if (len % 4 < 2) {
            return -1;
        }
    }
    return decode(b64std_alphabet, in, len, out, out_cap);
}

int cmn_keys_derive(const uint8_t cookie_secret[32], const uint8_t shared_secret[32],
                    cmn_keys_t *out)
{
    static const struct {
        const char *info;
        size_t offset;
        int from_cookie_secret;
    } labels[] = {
        {KEY_INFO_COOKIE, offsetof(cmn_keys_t, cookie), 1},
        {KEY_INFO_HANDOFF, offsetof(cmn_keys_t, handoff), 0},
        {KEY_INFO_SIGNED_URL, offsetof(cmn_keys_t, signed_url), 0},
        {KEY_INFO_AT_REST, offsetof(cmn_keys_t, at_rest), 0},
        {KEY_INFO_SIGNING, offsetof(cmn_keys_t, signing_seed), 0},
    };

    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        const uint8_t *secret = labels[i].from_cookie_secret ? cookie_secret : shared_secret;
        uint8_t *key = (uint8_t *)out + labels[i].offset;
        if (cmn_hkdf(secret, 32, labels[i].info, key, CMN_KEY_LEN) != 0) {
            cmn_keys_clear(out);
            return -1;
        }
    }
    return 0;
}

void cmn_keys_clear(cmn_keys_t *keys)
{
    OPENSSL_cleanse(keys, sizeof(*keys));
}
