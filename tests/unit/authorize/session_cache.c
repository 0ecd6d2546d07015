/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/session_cache.c: insert, lookup, evict, tombstones, bound, flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_lookup_release),
        cmocka_unit_test(test_tombstone_blocks_older_insert),
        cmocka_unit_test(test_flush_and_generation),
        cmocka_unit_test(test_bounded_evicts_oldest),
        cmocka_unit_test(test_tombstones_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
