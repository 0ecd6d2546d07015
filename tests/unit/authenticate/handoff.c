/* SPDX-License-Identifier: MIT */
/* Unit tests for authenticate/handoff.c: which host receives the handoff (shared or host-only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authenticate/handoff.h"

static void route(const cmn_config_t *config, const char *target, const char *audience,
                  const char *base)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t aud, b;
    cmn_url_t url;
    const char *err = NULL;

    h2o_mem_init_pool(&pool);
    assert_int_equal(cmn_url_parse(target, strlen(target), &url, &err), 0);
    authn_handoff_route(&pool, config, &url, &aud, &b);
    assert_int_equal(aud.len, strlen(audience));
    assert_memory_equal(aud.base, audience, aud.len);
    assert_int_equal(b.len, strlen(base));
    assert_memory_equal(b.base, base, b.len);
    h2o_mem_clear_pool(&pool);
}

static void test_shared_domain(void **state)
{
    cmn_config_t config = {0};

    config.cookie_domain = "portcullis.localhost";
    config.forward_auth_url.raw = "https://auth.portcullis.localhost:18443";
    config.forward_auth_url.host = "auth.portcullis.localhost";

    /* FA and T inside cookie_domain: the FA host consumes it and sets the domain cookie */
    route(&config, "https://verify.portcullis.localhost:18443/docs?x=1",
          "auth.portcullis.localhost", "https://auth.portcullis.localhost:18443");
    route(&config, "https://Admin.Portcullis.Localhost/", "auth.portcullis.localhost",
          "https://auth.portcullis.localhost:18443");

    /* T outside it: host-only, on T's own host with T's scheme and authority */
    route(&config, "https://app.localhost:18443/a?b=c", "app.localhost",
          "https://app.localhost:18443");
    /* a suffix that is not a label boundary is outside */
    route(&config, "https://evilportcullis.localhost/", "evilportcullis.localhost",
          "https://evilportcullis.localhost");
}

static void test_host_only(void **state)
{
    cmn_config_t config = {0};

    /* no cookie_domain: always T's host */
    config.forward_auth_url.raw = "https://auth.portcullis.localhost";
    config.forward_auth_url.host = "auth.portcullis.localhost";
    route(&config, "https://verify.portcullis.localhost/x", "verify.portcullis.localhost",
          "https://verify.portcullis.localhost");

    /* a cookie_domain that does not hold the FA host: T's host */
    config.cookie_domain = "example.com";
    route(&config, "http://a.example.com:8080/x", "a.example.com", "http://a.example.com:8080");

    /* no forward_auth_url at all */
    config.forward_auth_url.raw = NULL;
    config.forward_auth_url.host = NULL;
    route(&config, "https://a.example.com/", "a.example.com", "https://a.example.com");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_domain),
        cmocka_unit_test(test_host_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
