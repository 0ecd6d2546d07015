/* SPDX-License-Identifier: MIT */
/* Unit tests for common/session.c: the session record as authorize reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/session.h"

static const char good[] =
    "{\"user_id\": \"sub-1\", \"email\": \"alice@example.com\", \"email_verified\": true,"
    " \"name\": \"Alice\", \"groups\": [\"admins\", \"ops\"],"
    " \"claims\": {\"department\": \"eng\"}, \"issued\": 1700000000, \"expiry\": 1700050400,"
    " \"last_refresh\": 1700000000, \"id_token\": \"x.y.z\", \"access_token\": \"at\"}";

static json_t *load(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}

static void test_good_record(void **state)
{
    json_t *data = load(good);
    const char *err = NULL;
    cmn_session_t *s = cmn_session_from_json("sid-1", data, &err);

    assert_non_null(s);
    assert_string_equal(s->id, "sid-1");
    assert_string_equal(s->user_id, "sub-1");
    assert_string_equal(s->email, "alice@example.com");
    assert_true(s->email_verified);
    assert_string_equal(s->name, "Alice");
    assert_int_equal(s->groups.len, 2);
    assert_string_equal(s->groups.items[1], "ops");
    assert_int_equal(s->issued, 1700000000);
    assert_int_equal(s->expiry, 1700050400);

    /* the claims object is shared, not copied */
    assert_ptr_equal(s->claims, json_object_get(data, "claims"));
    json_decref(data);
    assert_string_equal(json_string_value(json_object_get(s->claims, "department")), "eng");
    cmn_session_destroy(s);
}

static void test_minimal_record(void **state)
{
    json_t *data = load("{\"user_id\": \"u\", \"issued\": 1, \"expiry\": 2}");
    const char *err = NULL;
    cmn_session_t *s = cmn_session_from_json("sid", data, &err);

    assert_non_null(s);
    assert_null(s->email);
    assert_false(s->email_verified);
    assert_int_equal(s->groups.len, 0);
    assert_true(json_is_object(s->claims));
    cmn_session_destroy(s);
    json_decref(data);
}

static void expect_error(const char *text, const char *want)
{
    json_t *data = load(text);
    const char *err = NULL;

    assert_null(cmn_session_from_json("sid", data, &err));
    if (err != want) {
        fprintf(stderr, "%s: got %s\n", text, err != NULL ? err : "(null)");
    }
    assert_ptr_equal(err, want);
    json_decref(data);
}

static void test_bad_records(void **state)
{
    expect_error("{\"user_id\": \"u\", \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"issued\": 1}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"issued\": \"1\", \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"issued\": 1.5, \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"issued\": -1, \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"issued\": 3, \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"issued\": 1, \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": 7, \"issued\": 1, \"expiry\": 2}", cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"email\": [], \"issued\": 1, \"expiry\": 2}",
                 cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"email_verified\": \"yes\", \"issued\": 1, \"expiry\": 2}",
                 cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"groups\": \"admins\", \"issued\": 1, \"expiry\": 2}",
                 cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"groups\": [\"a\", 1], \"issued\": 1, \"expiry\": 2}",
                 cmn_err_malformed);
    expect_error("{\"user_id\": \"u\", \"claims\": [], \"issued\": 1, \"expiry\": 2}",
                 cmn_err_malformed);
    expect_error("[]", cmn_err_malformed);
}

static void test_too_many_groups(void **state)
{
    json_t *data = load("{\"user_id\": \"u\", \"issued\": 1, \"expiry\": 2}");
    json_t *groups = json_array();
    const char *err = NULL;
    cmn_session_t *s;
    size_t i;

    for (i = 0; i < CMN_SESSION_MAX_GROUPS; i++) {
        assert_int_equal(json_array_append_new(groups, json_string("g")), 0);
    }
    assert_int_equal(json_object_set_new(data, "groups", groups), 0);
    s = cmn_session_from_json("sid", data, &err);
    assert_non_null(s);
    assert_int_equal(s->groups.len, CMN_SESSION_MAX_GROUPS);
    cmn_session_destroy(s);

    assert_int_equal(json_array_append_new(groups, json_string("one more")), 0);
    assert_null(cmn_session_from_json("sid", data, &err));
    assert_ptr_equal(err, cmn_err_too_large);
    json_decref(data);
}

static void test_bad_id(void **state)
{
    json_t *data = load(good);
    const char *err = NULL;

    assert_null(cmn_session_from_json(NULL, data, &err));
    assert_ptr_equal(err, cmn_err_malformed);
    assert_null(cmn_session_from_json("", data, &err));
    cmn_session_destroy(NULL);
    json_decref(data);
}

static void test_compact_copy(void **state)
{
    json_t *data = load(good);
    json_t *keep = json_pack("{s:b,s:b}", "department", 1, "absent", 1);
    const char *err = NULL;
    cmn_session_t *s = cmn_session_from_json("sid-1", data, &err);
    cmn_session_t *c;
    cmn_session_t *all;

    assert_non_null(s);
    json_decref(data);
    json_object_set_new(s->claims, "picture", json_string("https://x/p.png"));

    c = cmn_session_compact(s, keep);
    all = cmn_session_compact(s, NULL);
    cmn_session_destroy(s);

    /* every field survives the original, in one block */
    assert_true(c->compact);
    assert_string_equal(c->id, "sid-1");
    assert_string_equal(c->user_id, "sub-1");
    assert_string_equal(c->email, "alice@example.com");
    assert_string_equal(c->name, "Alice");
    assert_true(c->email_verified);
    assert_int_equal(c->groups.len, 2);
    assert_string_equal(c->groups.items[0], "admins");
    assert_string_equal(c->groups.items[1], "ops");
    assert_null(c->groups.items[2]);
    assert_int_equal(c->issued, 1700000000);
    assert_int_equal(c->expiry, 1700050400);
    assert_int_equal(json_object_size(c->claims), 1);
    assert_string_equal(json_string_value(json_object_get(c->claims, "department")), "eng");
    assert_int_equal(json_object_size(all->claims), 2);
    assert_non_null(json_object_get(all->claims, "picture"));
    cmn_session_destroy(c);
    cmn_session_destroy(all);

    /* nothing kept: no claims object at all; an unverified email keeps what says so */
    data = json_pack("{s:s,s:s,s:b,s:{s:b,s:s},s:I,s:I}", "user_id", "u", "email", "e@x",
                     "email_verified", 0, "claims", "email_verified", 0, "other", "x", "issued",
                     (json_int_t)1, "expiry", (json_int_t)2);
    s = cmn_session_from_json("sid-2", data, &err);
    assert_non_null(s);
    json_decref(data);
    json_object_clear(keep);
    c = cmn_session_compact(s, keep);
    assert_null(c->name);
    assert_int_equal(c->groups.len, 0);
    assert_int_equal(json_object_size(c->claims), 1);
    assert_true(json_is_false(json_object_get(c->claims, "email_verified")));
    cmn_session_destroy(c);
    s->email_verified = true;
    c = cmn_session_compact(s, keep);
    assert_null(c->claims);
    cmn_session_destroy(c);
    cmn_session_destroy(s);
    json_decref(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_record), cmocka_unit_test(test_minimal_record),
        cmocka_unit_test(test_bad_records), cmocka_unit_test(test_too_many_groups),
        cmocka_unit_test(test_bad_id),         cmocka_unit_test(test_compact_copy),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
