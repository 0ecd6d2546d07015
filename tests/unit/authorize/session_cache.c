/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/session_cache.c: insert, lookup, evict, tombstones, bound, flush,
 * second chances and the claims a cached session keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>
#include "authorize/reload.h"
#include "authorize/session_cache.h"

#define NOW 1700000000u

static cmn_session_t *make(const char *id)
{
    json_t *data = json_pack("{s:s,s:s,s:b,s:[s],s:{},s:I,s:I}", "user_id", "sub", "email",
                             "a@example.com", "email_verified", 1, "groups", "g", "claims",
                             "issued", (json_int_t)NOW, "expiry", (json_int_t)NOW + 3600);
    const char *err = NULL;
    cmn_session_t *s = cmn_session_from_json(id, data, &err);

    json_decref(data);
    assert_non_null(s);
    return s;
}

static void test_insert_lookup_release(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(16);
    authz_cached_session_t ref, again;
    uint64_t gen = authz_session_cache_generation(c);

    assert_false(authz_session_cache_lookup(c, "s1", &ref));
    assert_int_equal(authz_session_cache_insert(c, make("s1"), 7, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    assert_string_equal(ref.session->id, "s1");
    assert_int_equal(ref.version, 7);
    assert_true(authz_session_cache_lookup(c, "s1", &again));
    assert_ptr_equal(again.session, ref.session);

    /* an eviction while a request holds a reference keeps the session alive for it */
    authz_session_cache_evict(c, "s1", 8, true, NOW);
    assert_false(authz_session_cache_lookup(c, "s1", &ref));
    assert_string_equal(again.session->email, "a@example.com");
    authz_session_cache_release(c, &again);
    authz_session_cache_release(c, &ref);
    assert_int_equal(authz_session_cache_size(c), 0);
    authz_session_cache_destroy(c);
}

static void test_tombstone_blocks_older_insert(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(16);
    uint64_t gen = authz_session_cache_generation(c);
    authz_cached_session_t ref;
    cmn_session_t *old = make("s2"), *updated = make("s2");

    /* a fetch read version 10; before it lands, the change stream says v11 deleted it */
    authz_session_cache_evict(c, "s2", 11, true, NOW);
    assert_int_equal(authz_session_cache_insert(c, old, 10, gen, NOW, &ref), AUTHZ_CACHE_DELETED);
    assert_false(authz_session_cache_lookup(c, "s2", &ref));
    cmn_session_destroy(old);

    /* an update (not a delete) at v12 makes a v11 read stale, and a v12 read fine */
    authz_session_cache_evict(c, "s2", 12, false, NOW);
    old = make("s2");
    assert_int_equal(authz_session_cache_insert(c, old, 11, gen, NOW, &ref), AUTHZ_CACHE_STALE);
    cmn_session_destroy(old);
    assert_int_equal(authz_session_cache_insert(c, updated, 12, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    assert_true(authz_session_cache_lookup(c, "s2", &ref));
    authz_session_cache_release(c, &ref);
    authz_session_cache_destroy(c);
}

static void test_flush_and_generation(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(16);
    uint64_t gen = authz_session_cache_generation(c);
    authz_cached_session_t ref;
    cmn_session_t *late = make("late");

    assert_int_equal(authz_session_cache_insert(c, make("a"), 1, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    authz_session_cache_flush(c);
    assert_int_equal(authz_session_cache_size(c), 0);
    assert_false(authz_session_cache_lookup(c, "a", &ref));

    /* a fetch that started before the resync must not repopulate the cache */
    assert_int_equal(authz_session_cache_insert(c, late, 1, gen, NOW, &ref), AUTHZ_CACHE_STALE);
    cmn_session_destroy(late);
    assert_int_equal(authz_session_cache_size(c), 0);
    authz_session_cache_destroy(c);
}

static void test_bounded_evicts_oldest(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(3);
    uint64_t gen = authz_session_cache_generation(c);
    authz_cached_session_t ref;
    const char *ids[] = {"k0", "k1", "k2", "k3", "k4"};

    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(authz_session_cache_insert(c, make(ids[i]), i + 1, gen, NOW, &ref),
                         AUTHZ_CACHE_INSERTED);
        authz_session_cache_release(c, &ref);
    }
    assert_int_equal(authz_session_cache_size(c), 3);
    assert_false(authz_session_cache_lookup(c, "k0", &ref));
    assert_false(authz_session_cache_lookup(c, "k1", &ref));
    for (size_t i = 2; i < 5; i++) {
        assert_true(authz_session_cache_lookup(c, ids[i], &ref));
        authz_session_cache_release(c, &ref);
    }

    /* re-inserting an id replaces it without growing */
    assert_int_equal(authz_session_cache_insert(c, make("k4"), 9, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    assert_int_equal(ref.version, 9);
    authz_session_cache_release(c, &ref);
    assert_int_equal(authz_session_cache_size(c), 3);
    authz_session_cache_destroy(c);
}

static void test_tombstones_expire(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(16);
    uint64_t gen = authz_session_cache_generation(c);
    authz_cached_session_t ref;

    authz_session_cache_evict(c, "t", 50, true, NOW);
    /* another change much later prunes the old tombstone */
    authz_session_cache_evict(c, "other", 51, true, NOW + AUTHZ_TOMBSTONE_TTL_S + 1);
    assert_int_equal(authz_session_cache_insert(c, make("t"), 40, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    authz_session_cache_destroy(c);
}

static void test_used_entry_survives_the_bound(void **state)
{
    authz_session_cache_t *c = authz_session_cache_create(2);
    uint64_t gen = authz_session_cache_generation(c);
    authz_cached_session_t ref;

    assert_int_equal(authz_session_cache_insert(c, make("old"), 1, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    assert_int_equal(authz_session_cache_insert(c, make("mid"), 2, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);

    /* "old" is looked up, so "mid", never used since its insert, goes first */
    assert_true(authz_session_cache_lookup(c, "old", &ref));
    authz_session_cache_release(c, &ref);
    assert_int_equal(authz_session_cache_insert(c, make("new"), 3, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    assert_int_equal(authz_session_cache_size(c), 2);
    assert_false(authz_session_cache_lookup(c, "mid", &ref));
    assert_true(authz_session_cache_lookup(c, "old", &ref));
    authz_session_cache_release(c, &ref);

    /* looked up again, "old" is spared again; "new", unused, goes */
    assert_int_equal(authz_session_cache_insert(c, make("newer"), 4, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    authz_session_cache_release(c, &ref);
    assert_false(authz_session_cache_lookup(c, "new", &ref));
    assert_true(authz_session_cache_lookup(c, "old", &ref));
    authz_session_cache_release(c, &ref);
    assert_true(authz_session_cache_lookup(c, "newer", &ref));
    authz_session_cache_release(c, &ref);
    authz_session_cache_destroy(c);
}

#define CLAIMS_BASE                                                                                \
    "cookie_secret: YVFTMIfW8yBJw+a6sYwdW8rHbU+IAAV/SUkCTg9Jtpo=\n"                                \
    "shared_secret: 80ldlrU2d7w+wVpKNfevk6fmb8otEx6CqOfshj2LwhQ=\n"                                \
    "idp_provider: google\n"                                                                       \
    "idp_client_id: id\n"                                                                          \
    "idp_client_secret: secret\n"                                                                  \
    "authenticate_service_url: https://authn.example.com\n"                                        \
    "databroker_storage_type: memory\n"                                                            \
    "jwt_claims_headers: [nickname, email, groups]\n"

static cmn_config_t *load_config(const char *routes)
{
    char path[] = "/tmp/portcullis-cache-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    cmn_config_diag_t diag;
    cmn_config_t *config;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "%s%s", CLAIMS_BASE, routes);
    assert_int_equal(fclose(f), 0);
    config = cmn_config_load(path, &diag);
    cmn_config_diag_clear(&diag);
    unlink(path);
    assert_non_null(config);
    return config;
}

static authz_routes_t *compile(const cmn_config_t *config)
{
    cmn_strlist_t errors = {NULL, 0};
    authz_routes_t *routes = authz_routes_compile(config, &errors);

    assert_non_null(routes);
    return routes;
}

static cmn_session_t *make_claims(const char *id, bool verified)
{
    json_t *data = json_pack("{s:s,s:s,s:b,s:[s],s:{s:s,s:s,s:s,s:s,s:b,s:{s:s},s:s,s:[s]},"
                             "s:I,s:I}",
                             "user_id", "sub", "email", "a@example.com", "email_verified",
                             verified, "groups", "g", "claims", "department", "eng", "team",
                             "blue", "nickname", "al", "picture", "https://x/p.png",
                             "email_verified", 0, "org", "unit", "ops", "email", "a@example.com",
                             "groups", "g", "issued", (json_int_t)NOW, "expiry",
                             (json_int_t)NOW + 3600);
    const char *err = NULL;
    cmn_session_t *s = cmn_session_from_json(id, data, &err);

    json_decref(data);
    assert_non_null(s);
    return s;
}

#define ROUTES_V1                                                                                  \
    "routes:\n  - from: https://a.example\n    allowed_idp_claims: {department: [eng]}\n"        \
    "    policy: [{allow: {and: [{claim/org.unit: ops}]}}]\n"
#define ROUTES_V2 ROUTES_V1 "  - from: https://b.example\n    policy: [{allow: {and: [{claim/team: blue}]}}]\n"

static void test_keeps_only_claims_read(void **state)
{
    cmn_config_t *v1 = load_config(ROUTES_V1);
    cmn_config_t *v2, *v3;
    authz_session_cache_t *c = authz_session_cache_create(16);
    authz_cached_session_t ref;
    uint64_t gen;

    authz_tables_init(compile(v1));
    authz_session_cache_keep_claims(c, v1);
    gen = authz_session_cache_generation(c);
    assert_int_equal(authz_session_cache_insert(c, make_claims("s", true), 1, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);

    /* the policy's claim (by its first segment), the route's idp claim and the header's; the
     * email and groups headers come from the session's own fields, so those claims go */
    assert_true(ref.session->compact);
    assert_string_equal(ref.session->email, "a@example.com");
    assert_string_equal(ref.session->groups.items[0], "g");
    assert_int_equal(json_object_size(ref.session->claims), 3);
    assert_string_equal(json_string_value(json_object_get(ref.session->claims, "department")),
                        "eng");
    assert_string_equal(json_string_value(json_object_get(ref.session->claims, "nickname")), "al");
    assert_non_null(json_object_get(json_object_get(ref.session->claims, "org"), "unit"));
    assert_null(json_object_get(ref.session->claims, "team"));
    assert_null(json_object_get(ref.session->claims, "picture"));
    assert_null(json_object_get(ref.session->claims, "email"));
    assert_null(json_object_get(ref.session->claims, "groups"));
    authz_session_cache_release(c, &ref);

    /* an unverified email keeps the claim that says so: a policy reads it then */
    assert_int_equal(authz_session_cache_insert(c, make_claims("u", false), 1, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    assert_true(json_is_false(json_object_get(ref.session->claims, "email_verified")));
    authz_session_cache_release(c, &ref);

    /* a reload whose policy reads a new claim drops what was cached without it */
    v2 = load_config(ROUTES_V2);
    authz_table_install(compile(v2), v2);
    assert_false(authz_session_cache_lookup(c, "s", &ref));
    gen = authz_session_cache_generation(c);
    assert_int_equal(authz_session_cache_insert(c, make_claims("s", true), 2, gen, NOW, &ref),
                     AUTHZ_CACHE_INSERTED);
    assert_string_equal(json_string_value(json_object_get(ref.session->claims, "team")), "blue");
    assert_non_null(json_object_get(ref.session->claims, "department"));
    authz_session_cache_release(c, &ref);

    /* a reload that reads nothing new keeps the cache */
    v3 = load_config(ROUTES_V1);
    authz_table_install(compile(v3), v3);
    assert_true(authz_session_cache_lookup(c, "s", &ref));
    assert_non_null(json_object_get(ref.session->claims, "team"));
    authz_session_cache_release(c, &ref);
    authz_session_cache_destroy(c);
    cmn_config_destroy(v1); /* the start-up config; the reloaded ones belong to their tables */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_lookup_release),
        cmocka_unit_test(test_tombstone_blocks_older_insert),
        cmocka_unit_test(test_flush_and_generation),
        cmocka_unit_test(test_bounded_evicts_oldest),
        cmocka_unit_test(test_tombstones_expire),
        cmocka_unit_test(test_used_entry_survives_the_bound),
        cmocka_unit_test(test_keeps_only_claims_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
