/* SPDX-License-Identifier: MIT */
/* Unit tests for common/crypto.c: RFC vectors for HKDF, HMAC, SHA-256 and base64; AEAD misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>
#include "common/crypto.h"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t out_len)
{
    assert_int_equal(strlen(hex), out_len * 2);
    for (size_t i = 0; i < out_len; i++) {
        unsigned int v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* RFC 5869 A.3: SHA-256, zero-length salt and info */
static void test_hkdf_rfc5869_case3(void **state)
{
    uint8_t ikm[22];
    uint8_t expected[42];
    uint8_t okm[42];

    memset(ikm, 0x0b, sizeof(ikm));
    hex_to_bytes("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                 "9d201395faa4b61a96c8",
                 expected, sizeof(expected));

    assert_int_equal(cmn_hkdf(ikm, sizeof(ikm), "", okm, sizeof(okm)), 0);
    assert_memory_equal(okm, expected, sizeof(okm));

    /* NULL info means the same as empty info */
    memset(okm, 0, sizeof(okm));
    assert_int_equal(cmn_hkdf(ikm, sizeof(ikm), NULL, okm, sizeof(okm)), 0);
    assert_memory_equal(okm, expected, sizeof(okm));
}

static void test_hkdf_info_separates(void **state)
{
    uint8_t secret[32];
    uint8_t a[32];
    uint8_t b[32];

    memset(secret, 7, sizeof(secret));
    assert_int_equal(cmn_hkdf(secret, sizeof(secret), "label a", a, sizeof(a)), 0);
    assert_int_equal(cmn_hkdf(secret, sizeof(secret), "label b", b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void test_keys_derive(void **state)
{
    uint8_t cookie_secret[32];
    uint8_t shared_secret[32];
    uint8_t expected[32];
    cmn_keys_t keys;
    cmn_keys_t again;
    const uint8_t zero[sizeof(cmn_keys_t)] = {0};

    memset(cookie_secret, 1, sizeof(cookie_secret));
    memset(shared_secret, 2, sizeof(shared_secret));
    assert_int_equal(cmn_keys_derive(cookie_secret, shared_secret, &keys), 0);
    assert_int_equal(cmn_keys_derive(cookie_secret, shared_secret, &again), 0);
    assert_memory_equal(&keys, &again, sizeof(keys));

    /* each key is HKDF of its secret under its own label */
    assert_int_equal(cmn_hkdf(cookie_secret, 32, "portcullis cookie v1", expected, 32), 0);
    assert_memory_equal(keys.cookie, expected, 32);
    assert_int_equal(cmn_hkdf(shared_secret, 32, "portcullis handoff v1", expected, 32), 0);
    assert_memory_equal(keys.handoff, expected, 32);
    assert_int_equal(cmn_hkdf(shared_secret, 32, "portcullis signed-url v1", expected, 32), 0);
    assert_memory_equal(keys.signed_url, expected, 32);
    assert_int_equal(cmn_hkdf(shared_secret, 32, "portcullis at-rest v1", expected, 32), 0);
    assert_memory_equal(keys.at_rest, expected, 32);
    assert_int_equal(cmn_hkdf(shared_secret, 32, "portcullis signing-key v1", expected, 32), 0);
    assert_memory_equal(keys.signing_seed, expected, 32);
    assert_memory_not_equal(keys.handoff, keys.signed_url, 32);

    cmn_keys_clear(&keys);
    assert_memory_equal(&keys, zero, sizeof(keys));
}

static void test_aead_round_trip(void **state)
{
    uint8_t key[CMN_KEY_LEN];
    const char pt[] = "session id and some more bytes";
    uint8_t sealed[sizeof(pt) + CMN_AEAD_OVERHEAD];
    uint8_t sealed2[sizeof(pt) + CMN_AEAD_OVERHEAD];
    uint8_t opened[sizeof(pt)];

    memset(key, 0x42, sizeof(key));
    assert_int_equal(cmn_aead_seal(key, "ad", 2, pt, sizeof(pt), sealed), 0);
    assert_int_equal(cmn_aead_open(key, "ad", 2, sealed, sizeof(sealed), opened), 0);
    assert_memory_equal(opened, pt, sizeof(pt));

    /* a fresh nonce each time: the same message never seals to the same bytes */
    assert_int_equal(cmn_aead_seal(key, "ad", 2, pt, sizeof(pt), sealed2), 0);
    assert_memory_not_equal(sealed, sealed2, CMN_AEAD_NONCE_LEN);
    assert_memory_not_equal(sealed + CMN_AEAD_NONCE_LEN, sealed2 + CMN_AEAD_NONCE_LEN, sizeof(pt));
}

static void *open_on_thread(void *arg)
{
    uint8_t *sealed = arg;
    uint8_t key[CMN_KEY_LEN];
    uint8_t opened[8];

    memset(key, 0x42, sizeof(key));
    return cmn_aead_open(key, "ad", 2, sealed, 8 + CMN_AEAD_OVERHEAD, opened) == 0 &&
                   memcmp(opened, "8 bytes!", 8) == 0
               ? sealed
               : NULL;
}

/* the per-thread contexts: keys that alternate, a wrong key after a right one, other threads */
static void test_aead_contexts_reused(void **state)
{
    uint8_t k1[CMN_KEY_LEN], k2[CMN_KEY_LEN];
    uint8_t s1[8 + CMN_AEAD_OVERHEAD], s2[8 + CMN_AEAD_OVERHEAD];
    uint8_t opened[8];
    pthread_t thread;
    void *result = NULL;

    memset(k1, 0x42, sizeof(k1));
    memset(k2, 0x43, sizeof(k2));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmn_aead_seal(k1, "ad", 2, "8 bytes!", 8, s1), 0);
        assert_int_equal(cmn_aead_seal(k2, "ad", 2, "8 bytes?", 8, s2), 0);
        assert_int_equal(cmn_aead_open(k1, "ad", 2, s1, sizeof(s1), opened), 0);
        assert_memory_equal(opened, "8 bytes!", 8);
        assert_int_equal(cmn_aead_open(k2, "ad", 2, s1, sizeof(s1), opened), -1);
        assert_int_equal(cmn_aead_open(k2, "ad", 2, s2, sizeof(s2), opened), 0);
        assert_memory_equal(opened, "8 bytes?", 8);
        assert_int_equal(cmn_aead_open(k1, "ad", 2, s2, sizeof(s2), opened), -1);
    }

    /* a failed open leaves nothing behind for the next one */
    s1[sizeof(s1) - 1] ^= 1;
    assert_int_equal(cmn_aead_open(k1, "ad", 2, s1, sizeof(s1), opened), -1);
    s1[sizeof(s1) - 1] ^= 1;
    assert_int_equal(cmn_aead_open(k1, "ad", 2, s1, sizeof(s1), opened), 0);

    assert_int_equal(pthread_create(&thread, NULL, open_on_thread, s1), 0);
    assert_int_equal(pthread_join(thread, &result), 0);
    assert_ptr_equal(result, s1);
}

static void test_aead_empty_plaintext(void **state)
{
    uint8_t key[CMN_KEY_LEN];
    uint8_t sealed[CMN_AEAD_OVERHEAD];
    uint8_t opened[1];

    memset(key, 0x42, sizeof(key));
    assert_int_equal(cmn_aead_seal(key, NULL, 0, "", 0, sealed), 0);
    assert_int_equal(cmn_aead_open(key, NULL, 0, sealed, sizeof(sealed), opened), 0);
    assert_int_equal(cmn_aead_open(key, "x", 1, sealed, sizeof(sealed), opened), -1);
}

static void test_aead_refuses(void **state)
{
    uint8_t key[CMN_KEY_LEN];
    uint8_t other[CMN_KEY_LEN];
    const char pt[] = "payload";
    uint8_t sealed[sizeof(pt) + CMN_AEAD_OVERHEAD];
    uint8_t opened[sizeof(pt)];

    memset(key, 0x42, sizeof(key));
    memset(other, 0x43, sizeof(other));
    assert_int_equal(cmn_aead_seal(key, "name\nscope", 10, pt, sizeof(pt), sealed), 0);

    assert_int_equal(cmn_aead_open(other, "name\nscope", 10, sealed, sizeof(sealed), opened), -1);
    assert_int_equal(cmn_aead_open(key, "name\nscopf", 10, sealed, sizeof(sealed), opened), -1);
    assert_int_equal(cmn_aead_open(key, "name\nscope", 9, sealed, sizeof(sealed), opened), -1);
    assert_int_equal(cmn_aead_open(key, "name\nscope", 10, sealed, sizeof(sealed) - 1, opened), -1);
    assert_int_equal(cmn_aead_open(key, "name\nscope", 10, sealed, CMN_AEAD_OVERHEAD - 1, opened),
                     -1);

    /* flipping any single byte (nonce, ciphertext or tag) is detected */
    for (size_t i = 0; i < sizeof(sealed); i++) {
        sealed[i] ^= 0x01;
        assert_int_equal(cmn_aead_open(key, "name\nscope", 10, sealed, sizeof(sealed), opened), -1);
        sealed[i] ^= 0x01;
    }
    assert_int_equal(cmn_aead_open(key, "name\nscope", 10, sealed, sizeof(sealed), opened), 0);
}

/* RFC 4231 test cases 1 and 2 */
static void test_hmac_rfc4231(void **state)
{
    uint8_t key1[20];
    uint8_t expected[CMN_HMAC_LEN];
    uint8_t mac[CMN_HMAC_LEN];

    memset(key1, 0x0b, sizeof(key1));
    hex_to_bytes("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", expected,
                 sizeof(expected));
    assert_int_equal(cmn_hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
    assert_memory_equal(mac, expected, sizeof(mac));

    hex_to_bytes("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", expected,
                 sizeof(expected));
    assert_int_equal(
        cmn_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    assert_memory_equal(mac, expected, sizeof(mac));
}

static void test_sha256(void **state)
{
    uint8_t expected[32];
    uint8_t digest[32];

    hex_to_bytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", expected,
                 sizeof(expected));
    cmn_sha256("abc", 3, digest);
    assert_memory_equal(digest, expected, sizeof(digest));
}

static void test_consttime_eq(void **state)
{
    assert_true(cmn_consttime_eq("abc", 3, "abc", 3));
    assert_false(cmn_consttime_eq("abc", 3, "abd", 3));
    assert_false(cmn_consttime_eq("abc", 3, "abcd", 4));
    assert_true(cmn_consttime_eq("", 0, "", 0));
}

static void test_random(void **state)
{
    char a[CMN_ID_LEN + 1];
    char b[CMN_ID_LEN + 1];
    uint8_t raw[CMN_ID_BYTES];

    cmn_random_id(a);
    cmn_random_id(b);
    assert_int_equal(strlen(a), CMN_ID_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     CMN_ID_LEN);
    assert_int_equal(cmn_base64url_decode(a, strlen(a), raw, sizeof(raw)), CMN_ID_BYTES);
}

/* RFC 4648 §10 */
static const char *const rfc4648[][2] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void test_base64url_vectors(void **state)
{
    char enc[16];
    uint8_t dec[16];

    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *raw = rfc4648[i][0];
        const char *b64 = rfc4648[i][1];
        assert_int_equal(cmn_base64_encoded_len(strlen(raw)), strlen(b64));
        assert_int_equal(cmn_base64url_encode(raw, strlen(raw), enc), strlen(b64));
        assert_string_equal(enc, b64);
        assert_int_equal(cmn_base64url_decode(b64, strlen(b64), dec, sizeof(dec)), strlen(raw));
        assert_memory_equal(dec, raw, strlen(raw));
    }
}

static void test_base64_alphabets(void **state)
{
    const uint8_t raw[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    uint8_t dec[8];

    assert_int_equal(cmn_base64url_encode(raw, 3, enc), 4);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(cmn_base64_std_encode(raw, 3, enc), 4);
    assert_string_equal(enc, "+/+/");
    assert_int_equal(cmn_base64_std_encode(raw, 2, enc), 4);
    assert_string_equal(enc, "+/8=");
    assert_int_equal(cmn_base64_std_encoded_len(2), 4);
    assert_int_equal(cmn_base64_std_encoded_len(3), 4);
    assert_int_equal(cmn_base64_std_encoded_len(4), 8);

    assert_int_equal(cmn_base64url_decode("-_8", 3, dec, sizeof(dec)), 2);
    assert_memory_equal(dec, raw, 2);
    assert_int_equal(cmn_base64_std_decode("+/8=", 4, dec, sizeof(dec)), 2);
    assert_memory_equal(dec, raw, 2);
    assert_int_equal(cmn_base64_std_decode("+/8", 3, dec, sizeof(dec)), 2);
    assert_memory_equal(dec, raw, 2);

    /* each alphabet refuses the other's two extra characters */
    assert_int_equal(cmn_base64url_decode("+/8", 3, dec, sizeof(dec)), -1);
    assert_int_equal(cmn_base64_std_decode("-_8=", 4, dec, sizeof(dec)), -1);
}

static void test_base64url_strict(void **state)
{
    static const char *const bad[] = {
        "Zg=",    /* padding is not base64url */
        "Zg==",   /* nor full padding */
        "Z",      /* one character left over */
        "Zh",     /* non-zero unused bits */
        "Zm9",    /* non-zero unused bits */
        "Zm9v+A", /* '+' is the standard alphabet */
        "Zm/v",   /* '/' too */
        " Zm9v",  /* whitespace */
        "Zm9v\n", /* newline */
        "Zm.v",   /* punctuation */
    };
    uint8_t dec[16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cmn_base64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
    }

    /* an embedded NUL counts as an invalid character, not as the end */
    assert_int_equal(cmn_base64url_decode("Zm\0v", 4, dec, sizeof(dec)), -1);

    /* the output capacity is a hard limit */
    assert_int_equal(cmn_base64url_decode("Zm9vYmFy", 8, dec, 5), -1);
    assert_int_equal(cmn_base64url_decode("Zm9vYmFy", 8, dec, 6), 6);
}

static void test_base64_std_strict(void **state)
{
    static const char *const bad[] = {
        "Zg=",   /* padding that does not complete the quantum */
        "Z===",  /* three pad characters */
        "====",  /* only padding */
        "=Zg=",  /* padding first */
        "Zg=A",  /* padding in the middle */
        "Zm9v=", /* padding after a full quantum */
        "Zh==",  /* non-zero unused bits */
        "Zm9v\r\n", "Zm 9v",
    };
    uint8_t dec[16];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cmn_base64_std_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
    }
    assert_int_equal(cmn_base64_std_decode("Zm9vYg==", 8, dec, sizeof(dec)), 4);
    assert_memory_equal(dec, "foob", 4);
    assert_int_equal(cmn_base64_std_decode("Zm9vYmE=", 8, dec, sizeof(dec)), 5);
    assert_memory_equal(dec, "fooba", 5);
    assert_int_equal(cmn_base64_std_decode("", 0, dec, sizeof(dec)), 0);
}

/* a 32-byte secret as the config holds it */
static void test_base64_std_secret(void **state)
{
    uint8_t secret[32];
    char enc[64];
    uint8_t dec[64];

    for (size_t i = 0; i < sizeof(secret); i++) {
        secret[i] = (uint8_t)(i * 37 + 11);
    }
    assert_int_equal(cmn_base64_std_encode(secret, sizeof(secret), enc), 44);
    assert_int_equal(enc[43], '=');
    assert_int_equal(cmn_base64_std_decode(enc, 44, dec, sizeof(dec)), 32);
    assert_memory_equal(dec, secret, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869_case3),   cmocka_unit_test(test_hkdf_info_separates),
        cmocka_unit_test(test_keys_derive),          cmocka_unit_test(test_aead_round_trip),
        cmocka_unit_test(test_aead_empty_plaintext), cmocka_unit_test(test_aead_refuses),
        cmocka_unit_test(test_hmac_rfc4231),         cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_consttime_eq),         cmocka_unit_test(test_random),
        cmocka_unit_test(test_base64url_vectors),    cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64url_strict),     cmocka_unit_test(test_base64_std_strict),
        cmocka_unit_test(test_base64_std_secret),    cmocka_unit_test(test_aead_contexts_reused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
