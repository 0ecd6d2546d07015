/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/refresh.c: which sessions are due and which failures are final. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/refresh.h"

static void test_due(void **state)
{
    json_t *d = json_pack("{s:s, s:I, s:I}", "refresh_token", "sealed", "access_expiry",
                          (json_int_t)1000, "expiry", (json_int_t)5000);

    assert_false(authn_refresh_due(d, 900));  /* lapses in 100 s */
    assert_true(authn_refresh_due(d, 940));   /* within 60 s */
    assert_true(authn_refresh_due(d, 2000));  /* already lapsed, session still alive */
    assert_false(authn_refresh_due(d, 5000)); /* the session itself is over */

    json_object_del(d, "refresh_token");
    assert_false(authn_refresh_due(d, 2000)); /* nothing to refresh with */
    json_decref(d);
}

static void test_permanent(void **state)
{
    assert_true(authn_refresh_permanent(400, "invalid_grant"));
    assert_false(authn_refresh_permanent(500, "invalid_grant"));
    assert_false(authn_refresh_permanent(0, NULL));
}

/* issue #4: a refresh the provider refuses for good ends the session, whatever the code */
static void test_refresh_refused_for_good_ends_session(void **state)
{
    assert_true(authn_refresh_permanent(401, "invalid_grant"));
    assert_true(authn_refresh_permanent(400, "invalid_client"));
    assert_true(authn_refresh_permanent(401, "invalid_client"));
    assert_true(authn_refresh_permanent(400, "unauthorized_client"));
    assert_true(authn_refresh_permanent(400, "invalid_request"));
    assert_true(authn_refresh_permanent(400, "invalid_scope"));

    /* transient: try again next round, the session stays */
    assert_false(authn_refresh_permanent(400, "temporarily_unavailable"));
    assert_false(authn_refresh_permanent(400, "server_error"));
    assert_false(authn_refresh_permanent(503, "temporarily_unavailable"));
    assert_false(authn_refresh_permanent(502, NULL));
    assert_false(authn_refresh_permanent(400, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_permanent),
        cmocka_unit_test(test_refresh_refused_for_good_ends_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
