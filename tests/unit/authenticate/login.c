/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/login.c: PKCE S256, the binding, the authorization URL, targets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/login.h"
#include "common/err.h"
#include "common/url.h"

/* RFC 7636 Appendix B: the verifier and its S256 challenge as printed in the RFC */
static void test_pkce_rfc7636_appendix_b(void **state)
{
    char challenge[AUTHN_HASH_B64_LEN + 1];

    authn_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge);
    assert_string_equal(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void test_pkce_verifier_shape(void **state)
{
    char a[AUTHN_PKCE_VERIFIER_LEN + 1], b[AUTHN_PKCE_VERIFIER_LEN + 1];
    size_t i;

    authn_pkce_verifier(a);
    authn_pkce_verifier(b);
    assert_int_equal(strlen(a), 43); /* RFC 7636 §4.1: 43..128 characters */
    assert_string_not_equal(a, b);
    for (i = 0; i < strlen(a); i++) {
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    }
}

static void test_binding(void **state)
{
    char h1[AUTHN_HASH_B64_LEN + 1], h2[AUTHN_HASH_B64_LEN + 1];

    assert_true(authn_binding_well_formed(h2o_iovec_init(H2O_STRLIT("abcdefghijklmnopqrstuv-_"))));
    assert_false(authn_binding_well_formed(h2o_iovec_init(H2O_STRLIT("abcdefghijklmnopqrstuv-"))));
    assert_false(authn_binding_well_formed(h2o_iovec_init(H2O_STRLIT("abcdefghijklmnopqrstuv=_"))));
    assert_false(authn_binding_well_formed(h2o_iovec_init(NULL, 0)));

    /* SHA-256("abc") = ba7816bf..., base64url */
    authn_binding_hash("abc", 3, h1);
    assert_string_equal(h1, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    authn_binding_hash("abd", 3, h2);
    assert_string_not_equal(h1, h2);
}

/* the value of `name` in the URL's query, decoded, or NULL */
static char *param(h2o_mem_pool_t *pool, h2o_iovec_t url, const char *name)
{
    cmn_url_t parsed;
    const char *err;
    h2o_iovec_t v;

    assert_int_equal(cmn_url_parse(url.base, url.len, &parsed, &err), 0);
    v = cmn_url_query_get(parsed.query, name);
    if (v.base == NULL) {
        return NULL;
    }
    return cmn_url_decode(pool, v.base, v.len).base;
}

static void test_authorize_url(void **state)
{
    h2o_mem_pool_t pool;
    char *scopes_items[] = {"openid", "profile", "email", "offline_access"};
    cmn_strlist_t scopes = {scopes_items, 4};
    json_t *extra =
        json_pack("{s:s, s:s, s:s}", "prompt", "select_account", "hd", "a&b=c d", "state", "evil");
    authn_authorize_params_t p = {.endpoint = "https://idp.example/auth",
                                  .client_id = "client id&1",
                                  .redirect_uri = "https://authenticate.example/oauth2/callback",
                                  .scopes = &scopes,
                                  .state = "STATE123",
                                  .nonce = "NONCE456",
                                  .code_challenge = "E9Melhoofvmm-RSrBFJYzDkqGWhfWwC8ZqqZaUKGtEN",
                                  .extra = extra};
    h2o_iovec_t url;

    h2o_mem_init_pool(&pool);
    url = authn_authorize_url(&pool, &p);
    assert_true(url.len > strlen(p.endpoint));
    assert_memory_equal(url.base, "https://idp.example/auth?response_type=code&", 44);
    assert_string_equal(param(&pool, url, "response_type"), "code");
    assert_string_equal(param(&pool, url, "client_id"), "client id&1");
    assert_string_equal(param(&pool, url, "redirect_uri"),
                        "https://authenticate.example/oauth2/callback");
    assert_string_equal(param(&pool, url, "scope"), "openid profile email offline_access");
    assert_string_equal(param(&pool, url, "state"), "STATE123"); /* extra "state" ignored */
    assert_string_equal(param(&pool, url, "nonce"), "NONCE456");
    assert_string_equal(param(&pool, url, "code_challenge"),
                        "E9Melhoofvmm-RSrBFJYzDkqGWhfWwC8ZqqZaUKGtEN");
    assert_string_equal(param(&pool, url, "code_challenge_method"), "S256");
    assert_string_equal(param(&pool, url, "prompt"), "select_account");
    assert_string_equal(param(&pool, url, "hd"), "a&b=c d");
    /* encoded: nothing raw that could split a parameter */
    assert_non_null(strstr(url.base, "client_id=client%20id%261"));
    assert_non_null(strstr(url.base, "scope=openid%20profile%20email%20offline_access"));
    assert_null(strstr(url.base, "evil"));

    /* an endpoint that already has a query gets '&' */
    p.endpoint = "https://idp.example/auth?tenant=x";
    p.extra = NULL;
    url = authn_authorize_url(&pool, &p);
    assert_memory_equal(url.base, "https://idp.example/auth?tenant=x&response_type=code&", 53);
    assert_string_equal(param(&pool, url, "tenant"), "x");

    json_decref(extra);
    h2o_mem_clear_pool(&pool);
}

static void test_target_parse(void **state)
{
    h2o_mem_pool_t pool;
    cmn_route_t routes[2] = {0};
    cmn_config_t config = {0};
    h2o_iovec_t target;
    cmn_url_t url;
    const char *err = NULL;

    routes[0].from.host = "verify.example";
    routes[1].from.host = "app.localhost";
    config.routes = routes;
    config.num_routes = 2;
    h2o_mem_init_pool(&pool);

    assert_int_equal(authn_target_parse(&pool, &config,
                                        h2o_iovec_init(H2O_STRLIT(
                                            "https%3A%2F%2FVerify.Example%2Fdocs%3Fx%3D1%26y%3D2")),
                                        &target, &url, &err),
                     0);
    assert_string_equal(target.base, "https://Verify.Example/docs?x=1&y=2");

    err = NULL;
    assert_int_equal(authn_target_parse(&pool, &config,
                                        h2o_iovec_init(H2O_STRLIT("https%3A%2F%2Fevil.example%2F")),
                                        &target, &url, &err),
                     -1);
    assert_ptr_equal(err, authn_err_not_route_host);

    err = NULL;
    assert_int_equal(authn_target_parse(&pool, &config,
                                        h2o_iovec_init(H2O_STRLIT("%2F%2Fverify.example%2F")),
                                        &target, &url, &err),
                     -1);
    assert_non_null(err);

    err = NULL;
    assert_int_equal(
        authn_target_parse(&pool, &config, h2o_iovec_init(NULL, 0), &target, &url, &err), -1);
    assert_ptr_equal(err, cmn_err_malformed);
    h2o_mem_clear_pool(&pool);
}

/* issue #4: a return target must name a route host on a port its route admits, after
 * lower-casing; look-alike hosts are refused on the dot boundary */
static void test_target_outside_route_hosts_refused(void **state)
{
    static const struct {
        const char *raw;
        int want;
    } cases[] = {
        {"https://app.example:8443/", 0},          /* the route's own port */
        {"https://APP.example:8443/x?y", 0},       /* case does not matter */
        {"https://app.example./", -1},             /* effective port 443, route wants 8443 */
        {"https://app.example:8444/", -1},         /* another port */
        {"https://any.example:1234/", 0},          /* a route without port admits any */
        {"https://any.example./", 0},              /* one trailing dot is the same host */
        {"https://evilany.example/", -1},          /* no suffix matching */
        {"https://any.example.evil/", -1},         /* nor prefix matching */
        {"https://any.example@evil.example/", -1}, /* userinfo */
        {"https://any.example%2F@evil/", 0},       /* decoded once: "@evil/" is path */
        {"https:any.example/", -1},
        {"javascript:alert(1)", -1},
        {"//any.example/", -1},
        {"/%5Cevil.example", -1},
        {"https://any.example/ok%0d%0aSet-Cookie:%20x=1", -1}, /* CR LF after the decode */
    };
    h2o_mem_pool_t pool;
    cmn_route_t routes[2] = {0};
    cmn_config_t config = {0};
    h2o_iovec_t target;
    cmn_url_t url;
    const char *err = NULL;
    size_t i;

    routes[0].from.host = "app.example";
    routes[0].from.port = 8443;
    routes[1].from.host = "any.example";
    config.routes = routes;
    config.num_routes = 2;
    h2o_mem_init_pool(&pool);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = authn_target_parse(&pool, &config, h2o_iovec_init(cases[i].raw,
                                                                    strlen(cases[i].raw)),
                                     &target, &url, &err);
        if (got != cases[i].want) {
            fail_msg("%s: got %d", cases[i].raw, got);
        }
    }
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkce_rfc7636_appendix_b),
        cmocka_unit_test(test_pkce_verifier_shape),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_authorize_url),
        cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_target_outside_route_hosts_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
