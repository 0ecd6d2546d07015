/* SPDX-License-Identifier: MIT */
/* Unit tests for common/route_target.c: exact and wildcard hosts, dot boundaries, ports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common/route_target.h"

static cmn_route_t routes[5];
static cmn_config_t config;

static void set_route(size_t i, const char *scheme, const char *host, uint16_t port)
{
    routes[i].from = (cmn_config_url_t){.scheme = (char *)scheme, .host = (char *)host,
                                        .port = port};
}

static int setup(void **state)
{
    memset(routes, 0, sizeof(routes));
    set_route(0, "https", "app.example", 0);
    set_route(1, "https", "*.wild.example", 0);
    set_route(2, "https", "pinned.example", 8443);
    set_route(3, "https", "default.example", 443);
    set_route(4, "http", "plain.example", 8080);
    config = (cmn_config_t){.routes = routes, .num_routes = 5};
    return 0;
}

static bool allowed(const char *host, uint16_t port)
{
    return cmn_route_target_allowed(&config, h2o_iovec_init(host, strlen(host)), port);
}

static void test_exact_host_any_case_any_port_when_none_written(void **state)
{
    assert_true(allowed("app.example", 443));
    assert_true(allowed("APP.Example", 443));
    assert_true(allowed("app.example.", 443));
    assert_true(allowed("app.example", 8443)); /* how the route is reached: no port = any */
    assert_false(allowed("app.example.evil", 443));
    assert_false(allowed("evilapp.example", 443));
    assert_false(allowed("pp.example", 443));
    assert_false(allowed("", 443));
}

static void test_wildcard_only_on_a_dot_boundary(void **state)
{
    assert_true(allowed("a.wild.example", 443));
    assert_true(allowed("A.B.WILD.example", 443));
    assert_false(allowed("wild.example", 443));
    assert_false(allowed("evilwild.example", 443));
    assert_false(allowed("a.wild.example.evil", 443));
    assert_false(allowed("a.wild.exampl", 443));
}

static void test_ports_as_route_matching(void **state)
{
    assert_true(allowed("pinned.example", 8443));
    assert_false(allowed("pinned.example", 443));
    assert_false(allowed("pinned.example", 8444));
    /* the scheme's default port written out is no port at all (policy-cases.md §2.1) */
    assert_true(allowed("default.example", 443));
    assert_true(allowed("default.example", 9000));
    assert_true(allowed("plain.example", 8080));
    assert_false(allowed("plain.example", 80));
}

static void test_nothing_without_routes_or_host(void **state)
{
    cmn_config_t empty = {0};

    assert_false(cmn_route_target_allowed(&empty, h2o_iovec_init(H2O_STRLIT("app.example")), 443));
    assert_false(cmn_route_target_allowed(NULL, h2o_iovec_init(H2O_STRLIT("app.example")), 443));
    assert_false(cmn_route_target_allowed(&config, h2o_iovec_init(NULL, 0), 443));
}

static void test_glob_patterns(void **state)
{
    assert_true(cmn_route_host_matches("*", "anything.example", 16));
    assert_true(cmn_route_host_matches("a*c.example", "abbbc.example", 13));
    assert_false(cmn_route_host_matches("a*c.example", "abbbd.example", 13));
    assert_true(cmn_route_host_matches("*.a.*.example", "x.a.y.example", 13));
    assert_false(cmn_route_host_matches("*.a.*.example", "x.b.y.example", 13));
    assert_false(cmn_route_host_matches("app.example", "app.example", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exact_host_any_case_any_port_when_none_written, setup),
        cmocka_unit_test_setup(test_wildcard_only_on_a_dot_boundary, setup),
        cmocka_unit_test_setup(test_ports_as_route_matching, setup),
        cmocka_unit_test_setup(test_nothing_without_routes_or_host, setup),
        cmocka_unit_test_setup(test_glob_patterns, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
