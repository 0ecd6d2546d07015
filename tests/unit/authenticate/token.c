/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/token.c: client_secret_basic encoding and answer classification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/token.h"
#include "common/crypto.h"

static void test_form_escape(void **state)
{
    char out[64];

    assert_int_equal(authn_form_escape("a:b+c%d&e f~._-", out, sizeof(out)), 23);
    assert_string_equal(out, "a%3Ab%2Bc%25d%26e+f~._-");
    assert_int_equal(authn_form_escape("\xc3\xa9=", out, sizeof(out)), 9);
    assert_string_equal(out, "%C3%A9%3D");
    assert_int_equal(authn_form_escape("abc", out, 3), -1); /* no room for the NUL */
    assert_int_equal(authn_form_escape("%", out, 3), -1);
}

/* RFC 6749 §2.3.1: id and secret are form-encoded, then joined with ':' and base64'd */
static void test_client_basic_auth(void **state)
{
    char out[256];
    uint8_t decoded[128];
    long n;

    assert_int_equal(authn_client_basic_auth("my client", "s:e+c%r&et", out, sizeof(out)), 0);
    assert_memory_equal(out, "Basic ", 6);
    n = cmn_base64_std_decode(out + 6, strlen(out + 6), decoded, sizeof(decoded));
    assert_true(n > 0);
    decoded[n] = '\0';
    assert_string_equal((char *)decoded, "my+client:s%3Ae%2Bc%25r%26et");

    /* a plain pair gives the well-known value */
    assert_int_equal(authn_client_basic_auth("Aladdin", "open sesame", out, sizeof(out)), 0);
    assert_string_equal(out, "Basic QWxhZGRpbjpvcGVuK3Nlc2FtZQ==");

    assert_int_equal(authn_client_basic_auth("a", "b", out, 8), -1);
}

static void test_classify(void **state)
{
    authn_token_result_t res;
    json_t *body = NULL;
    const char ok[] = "{\"access_token\":\"at\",\"id_token\":\"it\",\"refresh_token\":\"rt\","
                      "\"expires_in\":3600,\"token_type\":\"Bearer\"}";
    const char bad_grant[] = "{\"error\":\"invalid_grant\",\"error_description\":\"<b>used</b>\"}";

    authn_token_classify(200, NULL, ok, strlen(ok), &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_OK);
    assert_string_equal(res.access_token, "at");
    assert_string_equal(res.id_token, "it");
    assert_string_equal(res.refresh_token, "rt");
    assert_int_equal(res.expires_in, 3600);
    json_decref(body);

    authn_token_classify(400, NULL, bad_grant, strlen(bad_grant), &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_PROVIDER_ERR);
    assert_string_equal(res.error, "invalid_grant");
    assert_string_equal(res.error_description, "<b>used</b>");
    json_decref(body);

    /* malformed JSON, a 500 without an error object, a transport error, no access token */
    authn_token_classify(200, NULL, "{nope", 5, &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_FAILED);
    assert_null(body);
    authn_token_classify(500, NULL, "{}", 2, &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_FAILED);
    json_decref(body);
    authn_token_classify(0, "timeout", NULL, 0, &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_FAILED);
    assert_string_equal(res.err, "timeout");
    authn_token_classify(200, NULL, "{\"id_token\":\"x\"}", 16, &res, &body);
    assert_int_equal(res.outcome, AUTHN_TOKEN_FAILED);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_escape),
        cmocka_unit_test(test_client_basic_auth),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
