/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/provider.c: discovery parsing, the issuer rule, client auth, and
 * the JWKS cache against a scripted provider (cmn_http_client_send is replaced below). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <cjose/cjose.h>
#include "authenticate/provider.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/jose.h"

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

/* ---- the JWKS cache, with a scripted provider ---- */

#define ISSUER "https://idp.example"
#define MAX_PENDING 8

typedef struct st_pending_t {
    cmn_http_cb cb;
    void *ctx;
    bool jwks;
} pending_t;

static pending_t pending[MAX_PENDING];
static size_t num_pending;
static unsigned jwks_fetches, discovery_fetches;

/* replaces libcommon's client: records the request, answered by answer() */
int cmn_http_client_send(cmn_http_client_t *client, const cmn_http_request_t *req, cmn_http_cb cb,
                         void *ctx)
{
    bool jwks = strstr(req->url, "/jwks") != NULL;

    assert_true(num_pending < MAX_PENDING);
    pending[num_pending++] = (pending_t){.cb = cb, .ctx = ctx, .jwks = jwks};
    if (jwks) {
        jwks_fetches++;
    } else {
        discovery_fetches++;
    }
    return 0;
}

static void answer(int status, const char *body)
{
    pending_t p = pending[0];
    cmn_http_response_t res;

    assert_true(num_pending > 0);
    memmove(pending, pending + 1, sizeof(pending[0]) * --num_pending);
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.body = h2o_iovec_init(body, strlen(body));
    p.cb(p.ctx, &res);
}

static cjose_jwk_t *ec_key(const char *kid)
{
    cjose_err cerr;
    cjose_jwk_t *jwk = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);

    assert_non_null(jwk);
    assert_true(cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr));
    return jwk;
}

/* {"keys":[<public jwk>]} (caller frees) */
static char *jwks_of(cjose_jwk_t *jwk)
{
    cjose_err cerr;
    char *pub = cjose_jwk_to_json(jwk, false, &cerr);
    char *set = NULL;

    assert_non_null(pub);
    assert_true(asprintf(&set, "{\"keys\":[%s]}", pub) > 0);
    free(pub);
    return set;
}

static char *id_token(cjose_jwk_t *jwk, const char *kid)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_header_new(&cerr);
    char *payload = NULL;
    const char *compact = NULL;
    cjose_jws_t *jws;
    char *out;
    long now = (long)time(NULL);

    assert_true(asprintf(&payload,
                         "{\"iss\":\"" ISSUER "\",\"sub\":\"u1\",\"aud\":\"client\",\"exp\":%ld,"
                         "\"iat\":%ld,\"nonce\":\"n\"}",
                         now + 300, now) > 0);
    assert_true(cjose_header_set(hdr, CJOSE_HDR_ALG, "ES256", &cerr));
    assert_true(cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr));
    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
    assert_non_null(jws);
    assert_true(cjose_jws_export(jws, &compact, &cerr));
    out = strdup(compact);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    free(payload);
    return out;
}

static const char *verify_with(authn_provider_t *p, const char *token)
{
    cmn_jwt_expect_t e = {.issuer = ISSUER, .audience = "client", .nonce = "n"};
    json_t *claims = NULL;
    const char *err = NULL;

    e.now = (uint64_t)time(NULL);
    if (cmn_jwt_verify(token, strlen(token), authn_provider_jwks(p), &e, &claims, &err) == 0) {
        json_decref(claims);
        return NULL;
    }
    return err;
}

static unsigned refetch_callbacks;

static void on_refetched(void *ctx, const char *err)
{
    refetch_callbacks++;
}

typedef struct st_cache_fixture_t {
    h2o_loop_t *loop;
    cmn_config_t config;
    authn_provider_t *p;
    cjose_jwk_t *key;
} cache_fixture_t;

/* a provider made ready with one key, "k1" */
static int cache_setup(void **state)
{
    static const char disc[] = "{\"issuer\":\"" ISSUER "\",\"authorization_endpoint\":\"" ISSUER
                               "/auth\",\"token_endpoint\":\"" ISSUER "/token\",\"jwks_uri\":\""
                               ISSUER "/jwks\"}";
    cache_fixture_t *fx = calloc(1, sizeof(*fx));
    char *jwks;

    fx->loop = h2o_evloop_create();
    fx->config.idp_provider_url = ISSUER;
    fx->p = authn_provider_create(fx->loop, &fx->config, NULL);
    fx->key = ec_key("k1");
    num_pending = 0;
    jwks_fetches = discovery_fetches = refetch_callbacks = 0;

    authn_provider_start(fx->p);
    answer(200, disc);
    jwks = jwks_of(fx->key);
    answer(200, jwks);
    free(jwks);
    assert_true(authn_provider_ready(fx->p));
    assert_int_equal(jwks_fetches, 1);
    *state = fx;
    return 0;
}

static int cache_teardown(void **state)
{
    cache_fixture_t *fx = *state;

    authn_provider_destroy(fx->p);
    cjose_jwk_release(fx->key);
    h2o_evloop_destroy(fx->loop);
    free(fx);
    return 0;
}

/* issue #4: 1,000 ID tokens with random unknown kids in a burst: one JWKS refetch, not 1,000 */
static void test_unknown_kid_flood_refetches_once(void **state)
{
    cache_fixture_t *fx = *state;
    cjose_jwk_t *stranger = ec_key("x");
    unsigned i, refused = 0;
    char *jwks = jwks_of(fx->key);

    for (i = 0; i < 1000; i++) {
        char kid[CMN_ID_LEN + 1];
        char *token;

        cmn_random_id(kid);
        token = id_token(stranger, kid);
        assert_ptr_equal(verify_with(fx->p, token), cmn_err_jwt_unknown_kid);
        if (authn_provider_refetch_jwks(fx->p, on_refetched, NULL) != 0) {
            refused++;
        }
        free(token);

        /* the provider answers the one refetch part-way through the burst */
        if (i == 10) {
            assert_int_equal(num_pending, 1);
            answer(200, jwks);
        }
    }
    assert_int_equal(jwks_fetches, 2); /* the start-up fetch and one refetch */
    assert_int_equal(num_pending, 0);
    assert_int_equal(refetch_callbacks, 11); /* the tokens that waited for it */
    assert_int_equal(refused, 1000 - 11);   /* the rest: inside the cool-down window */
    free(jwks);
    cjose_jwk_release(stranger);
}

/* issue #4: the provider rotates to a new kid; one refetch picks it up and the token verifies */
static void test_key_rotation_refetch_succeeds(void **state)
{
    cache_fixture_t *fx = *state;
    cjose_jwk_t *next = ec_key("k2");
    char *token = id_token(next, "k2");
    char *jwks = jwks_of(next);

    assert_ptr_equal(verify_with(fx->p, token), cmn_err_jwt_unknown_kid);
    assert_int_equal(authn_provider_refetch_jwks(fx->p, on_refetched, NULL), 0);
    answer(200, jwks);
    assert_int_equal(refetch_callbacks, 1);
    assert_null(verify_with(fx->p, token));
    assert_int_equal(jwks_fetches, 2);
    free(jwks);
    free(token);
    cjose_jwk_release(next);
}

/* issue #4: while the JWKS endpoint is down, the last good key set keeps working */
static void test_jwks_down_keeps_last_good_keys(void **state)
{
    cache_fixture_t *fx = *state;
    char *good = id_token(fx->key, "k1");

    assert_int_equal(authn_provider_refetch_jwks(fx->p, on_refetched, NULL), 0);
    answer(503, "unavailable");
    assert_int_equal(refetch_callbacks, 1);
    assert_true(authn_provider_ready(fx->p));
    assert_int_equal(cmn_jwks_count(authn_provider_jwks(fx->p)), 1);
    assert_null(verify_with(fx->p, good));

    /* the cool-down counts the failed refetch too: no hammering a provider that is down */
    assert_int_equal(authn_provider_refetch_jwks(fx->p, on_refetched, NULL), -1);
    assert_int_equal(jwks_fetches, 2);
    assert_null(verify_with(fx->p, good));
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuer_matches),
        cmocka_unit_test(test_discovery_parse),
        cmocka_unit_test(test_client_auth_choice),
        cmocka_unit_test_setup_teardown(test_unknown_kid_flood_refetches_once, cache_setup,
                                        cache_teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation_refetch_succeeds, cache_setup,
                                        cache_teardown),
        cmocka_unit_test_setup_teardown(test_jwks_down_keeps_last_good_keys, cache_setup,
                                        cache_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
