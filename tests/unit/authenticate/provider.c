/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/provider.c: discovery parsing, the issuer rule, client auth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/provider.h"
#include "common/err.h"

static const char doc[] =
    "{\"issuer\":\"https://idp.example/\",\"authorization_endpoint\":\"https://idp.example/auth\","
    "\"token_endpoint\":\"https://idp.example/token\",\"jwks_uri\":\"https://idp.example/jwks\","
    "\"userinfo_endpoint\":\"https://idp.example/me\","
    "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\"]}";

static void test_issuer_matches(void **state)
{
    assert_true(authn_issuer_matches("https://idp.example", "https://idp.example/"));
    assert_true(authn_issuer_matches("https://idp.example/", "https://idp.example"));
    assert_true(authn_issuer_matches("https://idp.example", "https://idp.example"));
    assert_false(authn_issuer_matches("https://idp.example//", "https://idp.example"));
    assert_false(authn_issuer_matches("https://idp.example.evil", "https://idp.example"));
    assert_false(authn_issuer_matches("https://IDP.example", "https://idp.example"));
}

static void test_discovery_parse(void **state)
{
    authn_discovery_t d;
    const char *err = NULL;

    assert_int_equal(authn_discovery_parse(doc, strlen(doc), "https://idp.example", &d, &err), 0);
    assert_string_equal(d.token_endpoint, "https://idp.example/token");
    assert_string_equal(d.userinfo_endpoint, "https://idp.example/me");
    assert_null(d.end_session_endpoint);
    assert_non_null(d.algs);
    assert_string_equal(d.algs[0], "RS256");
    assert_string_equal(d.algs[1], "ES256");
    assert_null(d.algs[2]);
    assert_false(d.client_secret_post);
    authn_discovery_clear(&d);

    assert_int_equal(authn_discovery_parse(doc, strlen(doc), "https://other.example", &d, &err),
                     -1);
    assert_ptr_equal(err, authn_err_issuer_mismatch);
    assert_int_equal(authn_discovery_parse("[]", 2, "https://idp.example", &d, &err), -1);
    assert_ptr_equal(err, cmn_err_bad_json);

    {
        const char nojwks[] = "{\"issuer\":\"https://idp.example\",\"authorization_endpoint\":"
                              "\"https://idp.example/auth\",\"token_endpoint\":\"https://x/t\"}";
        assert_int_equal(
            authn_discovery_parse(nojwks, strlen(nojwks), "https://idp.example", &d, &err), -1);
        assert_ptr_equal(err, authn_err_discovery_field);
    }
}

static void test_client_auth_choice(void **state)
{
    authn_discovery_t d;
    const char *err = NULL;
    const char post_only[] =
        "{\"issuer\":\"https://i\",\"authorization_endpoint\":\"https://i/a\",\"token_endpoint\":"
        "\"https://i/t\",\"jwks_uri\":\"https://i/k\",\"token_endpoint_auth_methods_supported\":"
        "[\"client_secret_post\"]}";
    const char both[] =
        "{\"issuer\":\"https://i\",\"authorization_endpoint\":\"https://i/a\",\"token_endpoint\":"
        "\"https://i/t\",\"jwks_uri\":\"https://i/k\",\"token_endpoint_auth_methods_supported\":"
        "[\"client_secret_post\",\"client_secret_basic\"]}";

    assert_int_equal(authn_discovery_parse(post_only, strlen(post_only), "https://i", &d, &err), 0);
    assert_true(d.client_secret_post);
    authn_discovery_clear(&d);
    assert_int_equal(authn_discovery_parse(both, strlen(both), "https://i", &d, &err), 0);
    assert_false(d.client_secret_post);
    authn_discovery_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuer_matches),
        cmocka_unit_test(test_discovery_parse),
        cmocka_unit_test(test_client_auth_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
