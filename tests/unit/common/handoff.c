/* SPDX-License-Identifier: MIT */
/* Unit tests for common/handoff.c: sealing, tampering, expiry and the limits on every field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common/err.h"
#include "common/handoff.h"

#define NOW 1700000000u
#define AD "portcullis handoff"

static uint8_t key[CMN_KEY_LEN];

static int setup(void **state)
{
    memset(key, 0x33, sizeof(key));
    return 0;
}

static cmn_handoff_t make_handoff(void)
{
    cmn_handoff_t h;

    memset(&h, 0, sizeof(h));
    cmn_random_id(h.id);
    cmn_random_id(h.session_id);
    snprintf(h.audience, sizeof(h.audience), "app.localhost");
    snprintf(h.target, sizeof(h.target), "https://app.localhost/path?a=1&b=%%22x%%22");
    h.session_expiry = NOW + 3600;
    h.expiry = NOW + CMN_HANDOFF_TTL_S;
    return h;
}

/* seals arbitrary JSON the way cmn_handoff_seal does, to reach the checks behind the AEAD */
static char *seal_json(const char *json)
{
    size_t len = strlen(json);
    uint8_t *sealed = malloc(len + CMN_AEAD_OVERHEAD);
    char *token = malloc(cmn_base64_encoded_len(len + CMN_AEAD_OVERHEAD) + 1);

    assert_non_null(sealed);
    assert_non_null(token);
    assert_int_equal(cmn_aead_seal(key, AD, strlen(AD), json, len, sealed), 0);
    cmn_base64url_encode(sealed, len + CMN_AEAD_OVERHEAD, token);
    free(sealed);
    return token;
}

static const char *open_err(const char *token, uint64_t now)
{
    cmn_handoff_t out;
    const char *err = NULL;

    if (cmn_handoff_open(key, token, strlen(token), now, &out, &err) == 0) {
        return NULL;
    }
    assert_non_null(err);
    return err;
}

static void test_round_trip(void **state)
{
    cmn_handoff_t h = make_handoff();
    cmn_handoff_t got;
    const char *err = cmn_err_io;
    char *token = cmn_handoff_seal(key, &h);

    assert_non_null(token);
    assert_true(strlen(token) <= CMN_HANDOFF_MAX);
    assert_int_equal(cmn_handoff_open(key, token, strlen(token), NOW, &got, &err), 0);
    assert_null(err);
    assert_string_equal(got.id, h.id);
    assert_string_equal(got.session_id, h.session_id);
    assert_string_equal(got.audience, h.audience);
    assert_string_equal(got.target, h.target);
    assert_int_equal(got.session_expiry, h.session_expiry);
    assert_int_equal(got.expiry, h.expiry);
    free(token);
}

static void test_tampered(void **state)
{
    cmn_handoff_t h = make_handoff();
    char *token = cmn_handoff_seal(key, &h);
    size_t len = strlen(token);
    uint8_t other_key[CMN_KEY_LEN];
    cmn_handoff_t got;
    const char *err = NULL;

    assert_non_null(token);
    for (size_t i = 0; i + 1 < len; i += 7) {
        char saved = token[i];
        token[i] = saved == 'A' ? 'B' : 'A';
        assert_ptr_equal(open_err(token, NOW), cmn_err_decrypt);
        token[i] = saved;
    }

    memset(other_key, 0x34, sizeof(other_key));
    assert_int_equal(cmn_handoff_open(other_key, token, len, NOW, &got, &err), -1);
    assert_ptr_equal(err, cmn_err_decrypt);

    /* a cut token is malformed or fails to decrypt, never accepted */
    assert_int_equal(cmn_handoff_open(key, token, len - 4, NOW, &got, &err), -1);
    free(token);
}

static void test_other_ad(void **state)
{
    cmn_handoff_t h = make_handoff();
    char *good = cmn_handoff_seal(key, &h);
    char json[512];
    size_t len = 0;
    uint8_t sealed[512 + CMN_AEAD_OVERHEAD];
    char token[1024];
    cmn_handoff_t got;
    const char *err = NULL;

    /* the same JSON sealed under the cookie's associated data is not a handoff */
    assert_non_null(good);
    assert_int_equal(cmn_handoff_open(key, good, strlen(good), NOW, &got, &err), 0);
    len = (size_t)snprintf(json, sizeof(json),
                           "{\"v\":1,\"id\":\"%s\",\"sid\":\"%s\",\"aud\":\"a\",\"t\":\"b\","
                           "\"sexp\":%u,\"exp\":%u}",
                           h.id, h.session_id, NOW + 10, NOW + 10);
    assert_int_equal(cmn_aead_seal(key, "_pomerium\na", 11, json, len, sealed), 0);
    cmn_base64url_encode(sealed, len + CMN_AEAD_OVERHEAD, token);
    assert_ptr_equal(open_err(token, NOW), cmn_err_decrypt);
    free(good);
}

static void test_expired(void **state)
{
    cmn_handoff_t h = make_handoff();
    char *token = cmn_handoff_seal(key, &h);

    assert_non_null(token);
    assert_null(open_err(token, h.expiry - 1));
    assert_ptr_equal(open_err(token, h.expiry), cmn_err_expired);
    assert_ptr_equal(open_err(token, h.expiry + 1000), cmn_err_expired);
    free(token);
}

static void test_too_large_and_malformed(void **state)
{
    char *big = malloc(CMN_HANDOFF_MAX + 2);

    assert_non_null(big);
    memset(big, 'A', CMN_HANDOFF_MAX + 1);
    big[CMN_HANDOFF_MAX + 1] = '\0';
    assert_ptr_equal(open_err(big, NOW), cmn_err_too_large);
    free(big);

    assert_ptr_equal(open_err("", NOW), cmn_err_malformed);
    assert_ptr_equal(open_err("not base64!", NOW), cmn_err_malformed);
    assert_ptr_equal(open_err("Zm9vYmFy", NOW), cmn_err_malformed);
}

static void test_payload_checks(void **state)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{}",
        /* wrong version */
        "{\"v\":2,\"id\":\"i\",\"sid\":\"s\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,\"exp\":"
        "9999999999}",
        /* missing target */
        "{\"v\":1,\"id\":\"i\",\"sid\":\"s\",\"aud\":\"a\",\"sexp\":1,\"exp\":9999999999}",
        /* empty session id */
        "{\"v\":1,\"id\":\"i\",\"sid\":\"\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,\"exp\":"
        "9999999999}",
        /* wrong types */
        "{\"v\":1,\"id\":1,\"sid\":\"s\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,\"exp\":9999999999}",
        "{\"v\":1,\"id\":\"i\",\"sid\":\"s\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,\"exp\":\"9\"}",
        /* negative time */
        "{\"v\":1,\"id\":\"i\",\"sid\":\"s\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":-1,\"exp\":"
        "9999999999}",
        /* duplicate key */
        "{\"v\":1,\"id\":\"i\",\"sid\":\"s\",\"sid\":\"x\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,"
        "\"exp\":9999999999}",
        /* NUL inside a string */
        "{\"v\":1,\"id\":\"i\",\"sid\":\"s\\u0000x\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,"
        "\"exp\":9999999999}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *token = seal_json(bad[i]);
        assert_ptr_equal(open_err(token, NOW), cmn_err_malformed);
        free(token);
    }

    char *ok = seal_json("{\"v\":1,\"id\":\"i\",\"sid\":\"s\",\"aud\":\"a\",\"t\":\"t\",\"sexp\":1,"
                         "\"exp\":9999999999}");
    assert_null(open_err(ok, NOW));
    free(ok);
}

/* every string field is held to the size of its buffer */
static void test_field_limits(void **state)
{
    static const struct {
        const char *field;
        size_t max;
    } fields[] = {{"id", CMN_ID_LEN}, {"sid", CMN_SESSION_ID_MAX}, {"aud", 255}, {"t", 2048}};
    char *long_value = malloc(CMN_HANDOFF_TARGET_MAX + 2);
    char *json = malloc(CMN_HANDOFF_TARGET_MAX + 512);

    assert_non_null(long_value);
    assert_non_null(json);
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            size_t len = fields[f].max + extra;
            memset(long_value, 'x', len);
            long_value[len] = '\0';
            snprintf(json, CMN_HANDOFF_TARGET_MAX + 512,
                     "{\"v\":1,\"id\":\"%s\",\"sid\":\"%s\",\"aud\":\"%s\",\"t\":\"%s\","
                     "\"sexp\":1,\"exp\":9999999999}",
                     f == 0 ? long_value : "i", f == 1 ? long_value : "s",
                     f == 2 ? long_value : "a", f == 3 ? long_value : "t");
            char *token = seal_json(json);
            if (extra == 0) {
                assert_null(open_err(token, NOW));
            } else {
                assert_ptr_equal(open_err(token, NOW), cmn_err_malformed);
            }
            free(token);
        }
    }
    free(long_value);
    free(json);
}

static void test_seal_limits(void **state)
{
    cmn_handoff_t h = make_handoff();
    char *token = NULL;

    /* the longest target still makes a token under the ceiling */
    memset(h.target, 'a', CMN_HANDOFF_TARGET_MAX);
    h.target[CMN_HANDOFF_TARGET_MAX] = '\0';
    token = cmn_handoff_seal(key, &h);
    assert_non_null(token);
    assert_true(strlen(token) <= CMN_HANDOFF_MAX);
    assert_null(open_err(token, NOW));
    free(token);

    /* an unterminated field is refused, not read past */
    memset(h.target, 'a', sizeof(h.target));
    assert_null(cmn_handoff_seal(key, &h));

    h = make_handoff();
    h.session_id[0] = '\0';
    assert_null(cmn_handoff_seal(key, &h));

    h = make_handoff();
    h.audience[0] = '\0';
    assert_null(cmn_handoff_seal(key, &h));

    h = make_handoff();
    h.expiry = UINT64_MAX;
    assert_null(cmn_handoff_seal(key, &h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_other_ad),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_too_large_and_malformed),
        cmocka_unit_test(test_payload_checks),
        cmocka_unit_test(test_field_limits),
        cmocka_unit_test(test_seal_limits),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
