/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/route.c: host, port and path matching, first match wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "authorize/route.h"

#define MAX_TEST_ROUTES 8

static cmn_route_t routes[MAX_TEST_ROUTES];
static cmn_config_t config;

static void reset(void)
{
    memset(routes, 0, sizeof(routes));
    memset(&config, 0, sizeof(config));
    config.routes = routes;
}

static cmn_route_t *add(const char *scheme, const char *host, uint16_t port)
{
    cmn_route_t *r = &routes[config.num_routes];

    r->index = config.num_routes;
    r->line = (unsigned)(10 + config.num_routes);
    r->from.scheme = (char *)scheme;
    r->from.host = (char *)host;
    r->from.port = port;
    config.num_routes++;
    return r;
}

static const cmn_route_t *match(authz_routes_t *t, const char *host, uint16_t port,
                                const char *path)
{
    return authz_routes_match(t, h2o_iovec_init(host, strlen(host)), port, path);
}

static void test_exact_host(void **state)
{
    reset();
    cmn_route_t *a = add("https", "a.example", 0);
    cmn_route_t *b = add("https", "b.example", 0);
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_non_null(t);
    assert_ptr_equal(match(t, "a.example", 443, "/"), a);
    assert_ptr_equal(match(t, "b.example", 443, "/x"), b);
    assert_null(match(t, "c.example", 443, "/"));
    assert_null(match(t, "a.example.evil", 443, "/"));
    assert_null(match(t, "sub.a.example", 443, "/"));
    assert_true(authz_routes_is_route_host(t, h2o_iovec_init(H2O_STRLIT("a.example"))));
    assert_false(authz_routes_is_route_host(t, h2o_iovec_init(H2O_STRLIT("x.example"))));
    authz_routes_destroy(t);
}

/* the target's host is lower-cased by target.c; the table holds lower-case config hosts */
static void test_case_is_callers_job(void **state)
{
    reset();
    add("https", "a.example", 0);
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_null(match(t, "A.example", 443, "/"));
    assert_non_null(match(t, "a.example", 443, "/"));
    authz_routes_destroy(t);
}

static void test_port_rules(void **state)
{
    reset();
    cmn_route_t *any = add("https", "any.example", 0);
    cmn_route_t *p443 = add("https", "std.example", 443);
    cmn_route_t *p8443 = add("https", "alt.example", 8443);
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_ptr_equal(match(t, "any.example", 443, "/"), any);
    assert_ptr_equal(match(t, "any.example", 18443, "/"), any);
    /* https://std.example:443 in the config equals https://std.example in T */
    assert_ptr_equal(match(t, "std.example", 443, "/"), p443);
    assert_null(match(t, "std.example", 8443, "/"));
    assert_ptr_equal(match(t, "alt.example", 8443, "/"), p8443);
    assert_null(match(t, "alt.example", 443, "/"));
    authz_routes_destroy(t);
}

static void test_prefix_path_regex(void **state)
{
    reset();
    cmn_route_t *exact = add("https", "h.example", 0);
    exact->path = "/exact";
    cmn_route_t *prefix = add("https", "h.example", 0);
    prefix->prefix = "/api/";
    cmn_route_t *regex = add("https", "h.example", 0);
    regex->regex = "/img/[0-9]+\\.png";
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_non_null(t);
    assert_ptr_equal(match(t, "h.example", 443, "/exact"), exact);
    assert_null(match(t, "h.example", 443, "/exact/"));
    assert_null(match(t, "h.example", 443, "/exactly"));
    assert_ptr_equal(match(t, "h.example", 443, "/api/v1"), prefix);
    assert_null(match(t, "h.example", 443, "/api"));
    assert_ptr_equal(match(t, "h.example", 443, "/img/42.png"), regex);
    /* anchored: no match on a substring */
    assert_null(match(t, "h.example", 443, "/x/img/42.png"));
    assert_null(match(t, "h.example", 443, "/img/42.png.exe"));
    assert_null(match(t, "h.example", 443, "/img/ab.png"));
    authz_routes_destroy(t);
}

/* an alternation must stay inside the anchors: ^(a|b)$, not ^a|b$ */
static void test_regex_alternation_anchored(void **state)
{
    reset();
    cmn_route_t *r = add("https", "h.example", 0);
    r->regex = "/a|/b";
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_ptr_equal(match(t, "h.example", 443, "/a"), r);
    assert_ptr_equal(match(t, "h.example", 443, "/b"), r);
    assert_null(match(t, "h.example", 443, "/a/x"));
    assert_null(match(t, "h.example", 443, "/x/b"));
    authz_routes_destroy(t);
}

static void test_first_match_wins(void **state)
{
    reset();
    cmn_route_t *first = add("https", "h.example", 0);
    first->prefix = "/admin";
    cmn_route_t *catchall = add("https", "h.example", 0);
    cmn_route_t *later = add("https", "h.example", 0);
    later->prefix = "/admin/deep";
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_ptr_equal(match(t, "h.example", 443, "/admin/deep/x"), first);
    assert_ptr_equal(match(t, "h.example", 443, "/other"), catchall);
    (void)later;
    authz_routes_destroy(t);
}

static void test_no_match_and_bad_regex(void **state)
{
    reset();
    cmn_route_t *r = add("https", "h.example", 0);
    r->prefix = "/only";
    char err[AUTHZ_ROUTE_ERR_MAX];
    authz_routes_t *t = authz_routes_compile(&config, err, sizeof(err));

    assert_null(match(t, "h.example", 443, "/"));
    authz_routes_destroy(t);

    reset();
    r = add("https", "h.example", 0);
    r->regex = "/(unclosed";
    assert_null(authz_routes_compile(&config, err, sizeof(err)));
    assert_non_null(strstr(err, "line 10"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_host),
        cmocka_unit_test(test_case_is_callers_job),
        cmocka_unit_test(test_port_rules),
        cmocka_unit_test(test_prefix_path_regex),
        cmocka_unit_test(test_regex_alternation_anchored),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_no_match_and_bad_regex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
