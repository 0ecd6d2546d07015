/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/signout.c: the form's CSRF token and the end-session URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/signout.h"
#include "common/url.h"

static void test_csrf(void **state)
{
    const uint8_t key[CMN_KEY_LEN] = {7};
    const uint8_t other[CMN_KEY_LEN] = {8};
    char a[AUTHN_SIGNOUT_CSRF_LEN + 1], b[AUTHN_SIGNOUT_CSRF_LEN + 1];
    char c[AUTHN_SIGNOUT_CSRF_LEN + 1], d[AUTHN_SIGNOUT_CSRF_LEN + 1];

    assert_int_equal(authn_signout_csrf(key, h2o_iovec_init(H2O_STRLIT("cookie-1")), a), 0);
    assert_int_equal(authn_signout_csrf(key, h2o_iovec_init(H2O_STRLIT("cookie-1")), b), 0);
    assert_int_equal(authn_signout_csrf(key, h2o_iovec_init(H2O_STRLIT("cookie-2")), c), 0);
    assert_int_equal(authn_signout_csrf(other, h2o_iovec_init(H2O_STRLIT("cookie-1")), d), 0);
    assert_int_equal(strlen(a), AUTHN_SIGNOUT_CSRF_LEN);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
}

static void test_end_session_url(void **state)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t url;

    h2o_mem_init_pool(&pool);
    url = authn_end_session_url(&pool, "https://idp.example/logout", "a.b.c",
                                "https://authn.example/.pomerium/signed_out", "client 1");
    assert_string_equal(url.base, "https://idp.example/logout?id_token_hint=a.b.c&"
                                  "post_logout_redirect_uri=https%3A%2F%2Fauthn.example%2F."
                                  "pomerium%2Fsigned_out&client_id=client%201");
    url = authn_end_session_url(&pool, "https://idp.example/logout?x=1", NULL, "https://a/", "c");
    assert_string_equal(url.base, "https://idp.example/logout?x=1&post_logout_redirect_uri="
                                  "https%3A%2F%2Fa%2F&client_id=c");
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_end_session_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
