/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/assertion.c: claims, expiry cap, group filter and truncation, cache,
 * claim headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authorize/assertion.h"

#define NOW 1700000000u

static cmn_config_t config;
static cmn_route_t route;
static cmn_session_t session;
static cmn_signer_t *signer;
static char *groups[200];
static char group_names[200][40];
static h2o_mem_pool_t pool;

static int setup(void **state)
{
    uint8_t seed[32];
    const char *err = NULL;

    memset(seed, 7, sizeof(seed));
    signer = cmn_signer_create(NULL, seed, &err);
    assert_non_null(signer);
    memset(&config, 0, sizeof(config));
    config.authenticate_service_url.host = "authenticate.example";
    memset(&route, 0, sizeof(route));
    route.index = 3;
    memset(&session, 0, sizeof(session));
    session.id = "session-1";
    session.user_id = "sub-1";
    session.email = "alice@example.com";
    session.name = "Alice";
    session.expiry = NOW + 3600;
    session.claims = json_pack("{s:[s,s],s:s,s:s}", "roles", "a", "b", "locale", "fr\r\nX: y",
                               "given_name", "Alice");
    for (size_t i = 0; i < 200; i++) {
        snprintf(group_names[i], sizeof(group_names[i]), "group-with-a-long-name-%03zu", i);
        groups[i] = group_names[i];
    }
    session.groups.items = groups;
    session.groups.len = 2;
    h2o_mem_init_pool(&pool);
    return 0;
}

static int teardown(void **state)
{
    cmn_signer_destroy(signer);
    json_decref(session.claims);
    h2o_mem_clear_pool(&pool);
    return 0;
}

static authz_assertion_params_t params(void)
{
    authz_assertion_params_t p = {
        .config = &config,
        .signer = signer,
        .route = &route,
        .session = &session,
        .session_version = 5,
        .audience = h2o_iovec_init(H2O_STRLIT("verify.example")),
        .now = NOW,
        .max_len = 3000,
    };
    return p;
}

static json_t *decode(const char *jwt)
{
    json_t *claims = cmn_jwt_decode_unverified(jwt, strlen(jwt));

    assert_non_null(claims);
    return claims;
}

static void test_claims(void **state)
{
    authz_assertion_params_t p = params();
    bool truncated = true;
    char *jwt = authz_assertion_mint(&p, &truncated);
    json_t *c = decode(jwt);

    assert_false(truncated);
    assert_string_equal(json_string_value(json_object_get(c, "iss")), "authenticate.example");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "verify.example");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "sub-1");
    assert_string_equal(json_string_value(json_object_get(c, "user")), "sub-1");
    assert_string_equal(json_string_value(json_object_get(c, "email")), "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(c, "name")), "Alice");
    assert_string_equal(json_string_value(json_object_get(c, "sid")), "session-1");
    assert_true(strlen(json_string_value(json_object_get(c, "jti"))) >= 16);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 300);
    assert_int_equal(json_array_size(json_object_get(c, "groups")), 2);
    assert_null(json_object_get(c, "groups_truncated"));
    json_decref(c);
    free(jwt);
}

static void test_exp_capped_by_session(void **state)
{
    authz_assertion_params_t p = params();
    bool truncated;
    char *jwt;
    json_t *c;

    session.expiry = NOW + 42;
    jwt = authz_assertion_mint(&p, &truncated);
    c = decode(jwt);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 42);
    json_decref(c);
    free(jwt);
}

static void test_groups_filter(void **state)
{
    authz_assertion_params_t p = params();
    char *allowed[] = {group_names[1]};
    json_t *c;

    route.jwt_groups_filter.items = allowed;
    route.jwt_groups_filter.len = 1;
    c = authz_assertion_claims(&p, true);
    assert_int_equal(json_array_size(json_object_get(c, "groups")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "groups"), 0)),
                        group_names[1]);
    json_decref(c);
}

static void test_groups_truncated_when_too_long(void **state)
{
    authz_assertion_params_t p = params();
    bool truncated = false;
    char *jwt;
    json_t *c;

    session.groups.len = 200;
    jwt = authz_assertion_mint(&p, &truncated);
    assert_non_null(jwt);
    assert_true(truncated);
    assert_true(strlen(jwt) <= p.max_len);
    c = decode(jwt);
    assert_null(json_object_get(c, "groups"));
    assert_true(json_is_true(json_object_get(c, "groups_truncated")));
    json_decref(c);
    free(jwt);
}

static void test_cache_reuses_until_margin(void **state)
{
    authz_assertion_cache_t *cache = authz_assertion_cache_create();
    authz_assertion_params_t p = params();
    bool truncated;
    char first[4096], other_host[4096];
    const char *jwt;

    jwt = authz_assertion_get(cache, &p, &truncated);
    snprintf(first, sizeof(first), "%s", jwt);
    p.now = NOW + 100;
    assert_string_equal(authz_assertion_get(cache, &p, &truncated), first);

    /* another audience or a new session version gets its own */
    p.audience = h2o_iovec_init(H2O_STRLIT("admin.example"));
    snprintf(other_host, sizeof(other_host), "%s", authz_assertion_get(cache, &p, &truncated));
    assert_string_not_equal(other_host, first);
    p.audience = h2o_iovec_init(H2O_STRLIT("verify.example"));
    p.session_version = 6;
    assert_string_not_equal(authz_assertion_get(cache, &p, &truncated), first);

    /* after a reload (a new route table) the route's groups filter may differ: sign again */
    p.session_version = 5;
    assert_string_equal(authz_assertion_get(cache, &p, &truncated), first);
    p.table_generation = 2;
    assert_string_not_equal(authz_assertion_get(cache, &p, &truncated), first);
    p.table_generation = 0;

    /* within AUTHZ_ASSERTION_REUSE_MARGIN_S of exp a fresh one is signed */
    p.session_version = 5;
    p.now = NOW + AUTHZ_ASSERTION_TTL_S - AUTHZ_ASSERTION_REUSE_MARGIN_S;
    jwt = authz_assertion_get(cache, &p, &truncated);
    assert_string_not_equal(jwt, first);
    json_t *c = decode(jwt);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), p.now);
    json_decref(c);
    authz_assertion_cache_destroy(cache);
}

static const authz_header_t *find_header(const authz_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(h[i].name.base, name) == 0) {
            return &h[i];
        }
    }
    return NULL;
}

static void test_claim_headers(void **state)
{
    char *names[] = {"email", "roles", "locale", "groups", "missing", "bad name"};
    authz_header_t out[AUTHZ_CLAIM_HEADERS_MAX];
    const authz_header_t *h;
    size_t n;

    config.jwt_claims_headers.items = names;
    config.jwt_claims_headers.len = 6;
    n = authz_claim_headers(&pool, &config, &session, 4096, out);
    assert_int_equal(n, 4);
    h = find_header(out, n, "X-Pomerium-Claim-Email");
    assert_non_null(h);
    assert_string_equal(h->value.base, "alice@example.com");
    h = find_header(out, n, "X-Pomerium-Claim-Roles");
    assert_non_null(h);
    assert_string_equal(h->value.base, "a,b");
    h = find_header(out, n, "X-Pomerium-Claim-Locale");
    assert_non_null(h);
    assert_string_equal(h->value.base, "frX: y"); /* CR and LF dropped: no header injection */
    h = find_header(out, n, "X-Pomerium-Claim-Groups");
    assert_non_null(h);
    assert_string_equal(h->value.base, "group-with-a-long-name-000,group-with-a-long-name-001");

    /* a budget too small for a header leaves it out */
    n = authz_claim_headers(&pool, &config, &session, 50, out);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].name.base, "X-Pomerium-Claim-Email");
}

/* the session's own fields, rendered without JSON: same cleaning, limit and fall-back */
static void test_claim_headers_from_fields(void **state)
{
    char *names[] = {"name", "user", "sub", "groups", "email"};
    static char long_email[AUTHZ_CLAIM_VALUE_MAX + 2];
    authz_header_t out[AUTHZ_CLAIM_HEADERS_MAX];
    const authz_header_t *h;
    size_t n;

    config.jwt_claims_headers.items = names;
    config.jwt_claims_headers.len = 5;
    session.name = "Al\x01ice\n";
    session.groups.len = 0;
    memset(long_email, 'e', sizeof(long_email) - 1);
    session.email = long_email;
    json_object_set_new(session.claims, "email", json_string("from-claims@example.com"));
    n = authz_claim_headers(&pool, &config, &session, 4096, out);

    /* control bytes dropped; an empty group list is an empty value; too long is left out */
    assert_int_equal(n, 4);
    assert_string_equal(find_header(out, n, "X-Pomerium-Claim-Name")->value.base, "Alice");
    assert_string_equal(find_header(out, n, "X-Pomerium-Claim-User")->value.base, "sub-1");
    assert_string_equal(find_header(out, n, "X-Pomerium-Claim-Sub")->value.base, "sub-1");
    h = find_header(out, n, "X-Pomerium-Claim-Groups");
    assert_non_null(h);
    assert_int_equal(h->value.len, 0);
    assert_null(find_header(out, n, "X-Pomerium-Claim-Email"));

    /* a field the session lacks is read from the claims */
    session.email = NULL;
    n = authz_claim_headers(&pool, &config, &session, 4096, out);
    assert_string_equal(find_header(out, n, "X-Pomerium-Claim-Email")->value.base,
                        "from-claims@example.com");
}

/* a long display name is dropped before the user goes without identity; an identity too
 * long for any header block is told apart from a signing failure */
static void test_oversized_identity_shrinks_then_refuses(void **state)
{
    authz_assertion_params_t p = params();
    char *long_text = malloc(5000);
    char *saved_name = session.name, *saved_email = session.email;
    bool truncated = false;
    char *jwt;
    json_t *c;

    memset(long_text, 'n', 4999);
    long_text[4999] = '\0';
    session.name = long_text;
    jwt = authz_assertion_mint(&p, &truncated);
    assert_non_null(jwt);
    assert_true(truncated);
    assert_true(strlen(jwt) <= p.max_len);
    c = decode(jwt);
    assert_null(json_object_get(c, "name"));
    assert_true(json_is_true(json_object_get(c, "name_truncated")));
    assert_string_equal(json_string_value(json_object_get(c, "email")), "alice@example.com");
    json_decref(c);
    free(jwt);

    session.name = saved_name;
    session.email = long_text;
    truncated = false;
    assert_null(authz_assertion_mint(&p, &truncated));
    assert_true(truncated);

    session.email = saved_email;
    free(long_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_identity_shrinks_then_refuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exp_capped_by_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_truncated_when_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_reuses_until_margin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_headers_from_fields, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
