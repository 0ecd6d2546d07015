/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/ticket_cache.c: hits only for the exact value and scope, expiry on
 * every hit, eviction by a value sharing the slot, and scopes too long to keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common/cookie.h"
#include "common/crypto.h"
#include "authorize/ticket_cache.h"

#define NOW 1700000000u

static const uint8_t key[CMN_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* a real sealed cookie for `sid`, as authenticate writes it */
static void seal(const char *sid, const char *scope, char out[CMN_COOKIE_VALUE_MAX])
{
    cmn_session_ticket_t t = {.issued = NOW - 10, .expiry = NOW + 3600};

    snprintf(t.session_id, sizeof(t.session_id), "%s", sid);
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", scope, &t, out), 0);
}

/* what a miss does in verify.c: open, then remember */
static void open_and_put(authz_ticket_cache_t *c, const char *scope, const char *value)
{
    cmn_session_ticket_t t;
    const char *err = NULL;

    assert_int_equal(cmn_cookie_open(key, "_pomerium", scope, value, strlen(value), NOW, &t,
                                     &err), 0);
    authz_ticket_cache_put(c, scope, h2o_iovec_init(value, strlen(value)), &t);
}

static void test_hit_gives_the_opened_ticket(void **state)
{
    authz_ticket_cache_t *c = authz_ticket_cache_create();
    char value[CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got = {0};

    seal("session-one", "example.com", value);
    assert_false(authz_ticket_cache_get(c, "example.com", h2o_iovec_init(value, strlen(value)),
                                        NOW, &got));
    open_and_put(c, "example.com", value);
    assert_true(authz_ticket_cache_get(c, "example.com", h2o_iovec_init(value, strlen(value)),
                                       NOW, &got));
    assert_string_equal(got.session_id, "session-one");
    assert_int_equal(got.expiry, NOW + 3600);
    assert_int_equal(got.issued, NOW - 10);
    authz_ticket_cache_destroy(c);
}

static void test_other_scope_or_value_misses(void **state)
{
    authz_ticket_cache_t *c = authz_ticket_cache_create();
    char value[CMN_COOKIE_VALUE_MAX], changed[CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got;
    size_t len;

    seal("session-two", "example.com", value);
    len = strlen(value);
    open_and_put(c, "example.com", value);

    /* a cookie of one scope is never accepted under another, cached or not */
    assert_false(authz_ticket_cache_get(c, "other.example", h2o_iovec_init(value, len), NOW,
                                        &got));
    assert_false(authz_ticket_cache_get(c, "example.co", h2o_iovec_init(value, len), NOW, &got));

    /* the same tail (so the same slot) with one byte changed in front: a miss */
    memcpy(changed, value, len + 1);
    changed[0] = changed[0] == 'A' ? 'B' : 'A';
    assert_false(authz_ticket_cache_get(c, "example.com", h2o_iovec_init(changed, len), NOW,
                                        &got));

    /* a prefix of the value: a miss */
    assert_false(authz_ticket_cache_get(c, "example.com", h2o_iovec_init(value, len - 1), NOW,
                                        &got));
    assert_true(authz_ticket_cache_get(c, "example.com", h2o_iovec_init(value, len), NOW, &got));
    authz_ticket_cache_destroy(c);
}

static void test_expiry_checked_on_every_hit(void **state)
{
    authz_ticket_cache_t *c = authz_ticket_cache_create();
    char value[CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got;
    h2o_iovec_t v;

    seal("session-three", "example.com", value);
    v = h2o_iovec_init(value, strlen(value));
    open_and_put(c, "example.com", value);
    assert_true(authz_ticket_cache_get(c, "example.com", v, NOW + 3599, &got));
    assert_false(authz_ticket_cache_get(c, "example.com", v, NOW + 3600, &got));

    /* once expired it is forgotten, not revived by an earlier clock */
    assert_false(authz_ticket_cache_get(c, "example.com", v, NOW, &got));
    authz_ticket_cache_destroy(c);
}

static void test_slot_shared_last_one_wins(void **state)
{
    authz_ticket_cache_t *c = authz_ticket_cache_create();
    char values[AUTHZ_TICKET_CACHE_SLOTS + 1][CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got;
    size_t hits = 0;

    /* one more distinct cookie than slots: at least one was evicted, the newest always stays */
    for (size_t i = 0; i <= AUTHZ_TICKET_CACHE_SLOTS; i++) {
        char sid[32];
        snprintf(sid, sizeof(sid), "session-%zu", i);
        seal(sid, "example.com", values[i]);
        open_and_put(c, "example.com", values[i]);
    }
    for (size_t i = 0; i <= AUTHZ_TICKET_CACHE_SLOTS; i++) {
        h2o_iovec_t v = h2o_iovec_init(values[i], strlen(values[i]));
        if (authz_ticket_cache_get(c, "example.com", v, NOW, &got)) {
            char sid[32];
            snprintf(sid, sizeof(sid), "session-%zu", i);
            assert_string_equal(got.session_id, sid);
            hits++;
        }
    }
    assert_true(hits < AUTHZ_TICKET_CACHE_SLOTS + 1);
    assert_true(hits > AUTHZ_TICKET_CACHE_SLOTS / 2);
    assert_true(authz_ticket_cache_get(
        c, "example.com",
        h2o_iovec_init(values[AUTHZ_TICKET_CACHE_SLOTS], strlen(values[AUTHZ_TICKET_CACHE_SLOTS])),
        NOW, &got));
    authz_ticket_cache_destroy(c);
}

static void test_long_scope_not_kept(void **state)
{
    authz_ticket_cache_t *c = authz_ticket_cache_create();
    char scope[AUTHZ_TICKET_SCOPE_MAX + 8];
    char value[CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got;

    memset(scope, 'a', sizeof(scope) - 5);
    memcpy(scope + sizeof(scope) - 5, ".com", 5);
    seal("session-four", scope, value);
    open_and_put(c, scope, value);
    assert_false(authz_ticket_cache_get(c, scope, h2o_iovec_init(value, strlen(value)), NOW,
                                        &got));
    authz_ticket_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_gives_the_opened_ticket),
        cmocka_unit_test(test_other_scope_or_value_misses),
        cmocka_unit_test(test_expiry_checked_on_every_hit),
        cmocka_unit_test(test_slot_shared_last_one_wins),
        cmocka_unit_test(test_long_scope_not_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
