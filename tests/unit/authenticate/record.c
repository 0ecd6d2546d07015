/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/record.c: session data layout and refresh tokens at rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/record.h"
#include "common/err.h"
#include "common/session.h"

static const uint8_t key[CMN_KEY_LEN] = {1, 2, 3};
static const uint8_t other_key[CMN_KEY_LEN] = {9};

static void test_refresh_token_round_trip(void **state)
{
    char *sealed = authn_refresh_token_seal(key, "sid1", "rt-secret");
    char *opened;

    assert_non_null(sealed);
    assert_null(strstr(sealed, "rt-secret"));
    opened = authn_refresh_token_open(key, "sid1", sealed);
    assert_non_null(opened);
    assert_string_equal(opened, "rt-secret");
    free(opened);

    /* bound to the session id (ad) and the key */
    assert_null(authn_refresh_token_open(key, "sid2", sealed));
    assert_null(authn_refresh_token_open(other_key, "sid1", sealed));
    assert_null(authn_refresh_token_open(key, "sid1", "AAAA"));
    assert_null(authn_refresh_token_open(key, "sid1", "!!!"));
    free(sealed);
}

static void test_session_data(void **state)
{
    json_t *claims =
        json_pack("{s:s, s:s, s:b, s:s, s:[s, i, s], s:s}", "sub", "u1", "email", "a@example.com",
                  "email_verified", 1, "name", "A B", "groups", "g1", 7, "g2", "extra", "x");
    authn_session_fields_t f = {.session_id = "sid1",
                                .claims = claims,
                                .issued = 100,
                                .expiry = 200,
                                .last_refresh = 100,
                                .access_expiry = 150,
                                .id_token = "idt",
                                .access_token = "at",
                                .refresh_token = "rt"};
    json_t *data = authn_session_data(&f, key);
    const char *err = NULL;
    cmn_session_t *s;
    char *rt;

    assert_non_null(data);
    assert_string_equal(json_string_value(json_object_get(data, "user_id")), "u1");
    assert_int_equal(json_array_size(json_object_get(data, "groups")), 2);
    assert_string_equal(json_string_value(json_object_get(data, "access_token")), "at");
    assert_int_equal(json_integer_value(json_object_get(data, "access_expiry")), 150);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(data, "claims"), "extra")), "x");
    rt = authn_refresh_token_open(key, "sid1",
                                  json_string_value(json_object_get(data, "refresh_token")));
    assert_non_null(rt);
    assert_string_equal(rt, "rt");
    free(rt);

    /* what authorize reads */
    s = cmn_session_from_json("sid1", data, &err);
    assert_non_null(s);
    assert_string_equal(s->user_id, "u1");
    assert_string_equal(s->email, "a@example.com");
    assert_true(s->email_verified);
    assert_int_equal(s->groups.len, 2);
    assert_string_equal(s->groups.items[1], "g2");
    assert_int_equal(s->expiry, 200);
    cmn_session_destroy(s);
    json_decref(data);

    /* no refresh token: no field; a string "false" email_verified is false */
    json_object_set_new(claims, "email_verified", json_string("false"));
    f.refresh_token = NULL;
    data = authn_session_data(&f, key);
    assert_null(json_object_get(data, "refresh_token"));
    assert_true(json_is_false(json_object_get(data, "email_verified")));
    json_decref(data);

    /* no sub: no session */
    json_object_del(claims, "sub");
    assert_null(authn_session_data(&f, key));
    json_decref(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_token_round_trip),
        cmocka_unit_test(test_session_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
