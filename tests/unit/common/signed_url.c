/* SPDX-License-Identifier: MIT */
/* Unit tests for common/signed_url.c: valid, tampered, reordered and mistimed signed URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common/err.h"
#include "common/signed_url.h"

#define NOW 1700000000u
#define SIGN_IN "https://authenticate.portcullis.localhost/.pomerium/sign_in"
#define TARGET_PARAM "pomerium_redirect_uri=https%3A%2F%2Fapp.localhost%2Fx%3Fa%3D1"

static uint8_t key[CMN_KEY_LEN];

static int setup(void **state)
{
    memset(key, 0x77, sizeof(key));
    return 0;
}

static const char *verify_err(const char *url, uint64_t now)
{
    const char *err = NULL;

    if (cmn_signed_url_verify(key, url, strlen(url), now, &err) == 0) {
        assert_null(err);
        return NULL;
    }
    assert_non_null(err);
    return err;
}

/* appends a correct signature over `body`, for URLs the signer itself would never produce */
static void sign_raw(const char *body, char *out, size_t cap)
{
    uint8_t mac[CMN_HMAC_LEN];
    char sig[64];

    assert_int_equal(cmn_hmac_sha256(key, sizeof(key), body, strlen(body), mac), 0);
    cmn_base64url_encode(mac, sizeof(mac), sig);
    assert_true((size_t)snprintf(out, cap, "%s&pomerium_signature=%s", body, sig) < cap);
}

static void test_sign_format(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);
    const char *prefix = SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700000000"
                                 "&pomerium_expiry=1700000300&pomerium_signature=";

    assert_non_null(url);
    assert_int_equal(strncmp(url, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(url), strlen(prefix) + 43);
    free(url);

    /* without a query the parameters start one */
    url = cmn_signed_url_sign(key, SIGN_IN, NOW);
    assert_non_null(url);
    assert_int_equal(strncmp(url, SIGN_IN "?pomerium_issued=1700000000&", strlen(SIGN_IN) + 28), 0);
    assert_null(verify_err(url, NOW));
    free(url);
}

static void test_valid(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);

    assert_non_null(url);
    assert_null(verify_err(url, NOW));
    assert_null(verify_err(url, NOW + CMN_SIGNED_URL_TTL_S));
    assert_null(verify_err(url, NOW + CMN_SIGNED_URL_TTL_S + CMN_SIGNED_URL_LEEWAY_S));
    /* a verifier whose clock is a little behind still accepts it */
    assert_null(verify_err(url, NOW - CMN_SIGNED_URL_LEEWAY_S));
    free(url);
}

static void test_expired(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);

    assert_non_null(url);
    assert_ptr_equal(verify_err(url, NOW + CMN_SIGNED_URL_TTL_S + CMN_SIGNED_URL_LEEWAY_S + 1),
                     cmn_err_expired);
    assert_ptr_equal(verify_err(url, NOW + 86400), cmn_err_expired);
    /* issued further in the future than the leeway */
    assert_ptr_equal(verify_err(url, NOW - CMN_SIGNED_URL_LEEWAY_S - 1), cmn_err_expired);
    free(url);
}

static void test_issued_far_in_future(void **state)
{
    char url[1024];

    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700003600&pomerium_expiry=1700003900", url,
             sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_expired);
    assert_null(verify_err(url, 1700003600));
}

static void test_lifetime_over_ttl(void **state)
{
    char url[1024];

    /* correctly signed, but living a day: only the signer's TTL is acceptable */
    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700000000&pomerium_expiry=1700086400", url,
             sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_expired);

    /* expiry before issued */
    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700000000&pomerium_expiry=1699999999", url,
             sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);
}

static void test_modified(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);
    char *p = NULL;
    uint8_t other_key[CMN_KEY_LEN];
    const char *err = NULL;

    assert_non_null(url);

    /* the target */
    p = strstr(url, "app.localhost");
    assert_non_null(p);
    p[0] = 'b';
    assert_ptr_equal(verify_err(url, NOW), cmn_err_bad_signature);
    p[0] = 'a';

    /* the host of the signed URL itself */
    p = strstr(url, "authenticate");
    p[0] = 'A';
    assert_ptr_equal(verify_err(url, NOW), cmn_err_bad_signature);
    p[0] = 'a';

    /* the expiry, pushed one second later */
    p = strstr(url, "pomerium_expiry=1700000300");
    p[strlen("pomerium_expiry=1700000300") - 1] = '1';
    assert_ptr_equal(verify_err(url, NOW), cmn_err_bad_signature);
    p[strlen("pomerium_expiry=1700000300") - 1] = '0';

    /* the signature */
    p = url + strlen(url) - 5;
    char saved = p[0];
    p[0] = saved == 'A' ? 'B' : 'A';
    assert_ptr_equal(verify_err(url, NOW), cmn_err_bad_signature);
    p[0] = saved;

    assert_null(verify_err(url, NOW));
    memset(other_key, 0x78, sizeof(other_key));
    assert_int_equal(cmn_signed_url_verify(other_key, url, strlen(url), NOW, &err), -1);
    assert_ptr_equal(err, cmn_err_bad_signature);
    free(url);
}

static void test_moved_signature(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);
    char moved[1024];
    const char *sig = NULL;
    const char *q = NULL;

    assert_non_null(url);
    sig = strstr(url, "&pomerium_signature=");
    q = strchr(url, '?');
    assert_non_null(sig);

    /* the signature parameter first, everything else after it */
    snprintf(moved, sizeof(moved), "%.*s?%s&%.*s", (int)(q - url), url, sig + 1, (int)(sig - q - 1),
             q + 1);
    assert_ptr_equal(verify_err(moved, NOW), cmn_err_malformed);

    /* between issued and expiry */
    const char *expiry = strstr(url, "&pomerium_expiry=");
    snprintf(moved, sizeof(moved), "%.*s%s%.*s", (int)(expiry - url), url, sig, (int)(sig - expiry),
             expiry);
    assert_ptr_equal(verify_err(moved, NOW), cmn_err_malformed);
    free(url);
}

static void test_extra_param(void **state)
{
    char *url = cmn_signed_url_sign(key, SIGN_IN "?" TARGET_PARAM, NOW);
    char extra[1024];

    assert_non_null(url);
    snprintf(extra, sizeof(extra), "%s&pomerium_redirect_uri=https%%3A%%2F%%2Fevil.example", url);
    assert_ptr_equal(verify_err(extra, NOW), cmn_err_malformed);
    snprintf(extra, sizeof(extra), "%s&", url);
    assert_ptr_equal(verify_err(extra, NOW), cmn_err_malformed);
    snprintf(extra, sizeof(extra), "%s#frag", url);
    assert_ptr_equal(verify_err(extra, NOW), cmn_err_malformed);

    /* a verifier that reads only `len` bytes sees exactly the signed URL */
    const char *err = NULL;
    snprintf(extra, sizeof(extra), "%sJUNK", url);
    assert_int_equal(cmn_signed_url_verify(key, extra, strlen(url), NOW, &err), 0);
    assert_int_equal(cmn_signed_url_verify(key, extra, strlen(extra), NOW, &err), -1);
    assert_ptr_equal(err, cmn_err_bad_signature);
    free(url);
}

static void test_duplicates_and_missing(void **state)
{
    char url[1024];

    /* a second issued ahead of the real one would let two parsers read different times */
    sign_raw(SIGN_IN "?pomerium_issued=1&" TARGET_PARAM
                     "&pomerium_issued=1700000000&pomerium_expiry=1700000300",
             url, sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);

    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_expiry=1700000300", url, sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);

    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700000000", url, sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);

    /* times must be plain decimal */
    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=+1700000000&pomerium_expiry=1700000300",
             url, sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);
    sign_raw(SIGN_IN "?" TARGET_PARAM
                     "&pomerium_issued=1700000000&pomerium_expiry=99999999999999999999",
             url, sizeof(url));
    assert_ptr_equal(verify_err(url, NOW), cmn_err_malformed);

    assert_ptr_equal(verify_err(SIGN_IN, NOW), cmn_err_malformed);
    assert_ptr_equal(verify_err(SIGN_IN "?" TARGET_PARAM, NOW), cmn_err_malformed);
    assert_ptr_equal(verify_err(SIGN_IN "?pomerium_issued=1700000000&pomerium_expiry=1700000300"
                                        "&pomerium_signature=",
                                NOW),
                     cmn_err_bad_signature);
    assert_ptr_equal(verify_err(SIGN_IN "?pomerium_issued=1700000000&pomerium_expiry=1700000300"
                                        "&pomerium_signature=!!!!",
                                NOW),
                     cmn_err_bad_signature);

    /* a hand-built signed URL in the signer's own form verifies */
    sign_raw(SIGN_IN "?" TARGET_PARAM "&pomerium_issued=1700000000&pomerium_expiry=1700000300", url,
             sizeof(url));
    assert_null(verify_err(url, NOW));
}

static void test_sign_refuses(void **state)
{
    char *big = malloc(CMN_SIGNED_URL_MAX + 1);

    assert_null(cmn_signed_url_sign(key, SIGN_IN "#frag", NOW));
    assert_null(cmn_signed_url_sign(key, SIGN_IN "?pomerium_signature=x", NOW));
    assert_null(cmn_signed_url_sign(key, SIGN_IN "?a=1&pomerium_issued=1", NOW));

    assert_non_null(big);
    memset(big, 'a', CMN_SIGNED_URL_MAX);
    big[CMN_SIGNED_URL_MAX] = '\0';
    assert_null(cmn_signed_url_sign(key, big, NOW));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_format),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_issued_far_in_future),
        cmocka_unit_test(test_lifetime_over_ttl),
        cmocka_unit_test(test_modified),
        cmocka_unit_test(test_moved_signature),
        cmocka_unit_test(test_extra_param),
        cmocka_unit_test(test_duplicates_and_missing),
        cmocka_unit_test(test_sign_refuses),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
