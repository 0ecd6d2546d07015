/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/route.c: hosts, wildcards, ports, path specifiers, order, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "authorize/route.h"

#define MAX_TEST_ROUTES 10000

static cmn_route_t *routes;
static cmn_config_t config;
static cmn_strlist_t errors;

static void clear_errors(void)
{
    for (size_t i = 0; i < errors.len; i++) {
        free(errors.items[i]);
    }
    free(errors.items);
    errors = (cmn_strlist_t){NULL, 0};
}

static int setup(void **state)
{
    routes = calloc(MAX_TEST_ROUTES, sizeof(cmn_route_t));
    memset(&config, 0, sizeof(config));
    config.path = "test.yaml";
    config.routes = routes;
    return routes == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    clear_errors();
    free(routes);
    return 0;
}

/* every route is public, so that its policy compiles; a route is told apart by its pointer */
static cmn_route_t *add(const char *scheme, const char *host, uint16_t port)
{
    cmn_route_t *r = &routes[config.num_routes];

    r->index = config.num_routes;
    r->line = (unsigned)(10 + config.num_routes);
    r->from.scheme = (char *)scheme;
    r->from.host = (char *)host;
    r->from.port = port;
    r->allow_public_unauthenticated_access = true;
    config.num_routes++;
    return r;
}

static authz_routes_t *compile(void)
{
    authz_routes_t *t = authz_routes_compile(&config, &errors);

    if (t == NULL) {
        for (size_t i = 0; i < errors.len; i++) {
            fprintf(stderr, "unexpected: %s\n", errors.items[i]);
        }
    }
    assert_non_null(t);
    return t;
}

static const cmn_route_t *match(authz_routes_t *t, const char *host, uint16_t port,
                                const char *path)
{
    const authz_route_t *r = authz_routes_match(t, h2o_iovec_init(host, strlen(host)), port, path);

    if (r != NULL) {
        assert_non_null(r->policy);
    }
    return r != NULL ? r->def : NULL;
}

static bool is_route_host(authz_routes_t *t, const char *host)
{
    return authz_routes_is_route_host(t, h2o_iovec_init(host, strlen(host)));
}

static void test_exact_host_any_case(void **state)
{
    cmn_route_t *a = add("https", "a.example", 0);
    cmn_route_t *b = add("https", "b.example", 0);
    authz_routes_t *t = compile();

    assert_ptr_equal(match(t, "a.example", 443, "/"), a);
    assert_ptr_equal(match(t, "b.example", 443, "/x"), b);
    /* P146: exact hosts compare case-insensitively */
    assert_ptr_equal(match(t, "A.Example", 443, "/"), a);
    assert_null(match(t, "c.example", 443, "/"));
    assert_null(match(t, "a.example.evil", 443, "/"));
    assert_null(match(t, "sub.a.example", 443, "/"));
    assert_true(is_route_host(t, "a.example"));
    assert_true(is_route_host(t, "B.EXAMPLE"));
    assert_false(is_route_host(t, "x.example"));
    assert_false(is_route_host(t, ""));
    authz_routes_destroy(t);
}

static void test_port_rules(void **state)
{
    cmn_route_t *any = add("https", "any.example", 0);
    cmn_route_t *p443 = add("https", "std.example", 443);
    cmn_route_t *p8443 = add("https", "alt.example", 8443);
    cmn_route_t *p80 = add("http", "plain.example", 80);
    cmn_route_t *p443http = add("http", "odd.example", 443);
    authz_routes_t *t = compile();

    /* P143: no port in `from` is any port */
    assert_ptr_equal(match(t, "any.example", 443, "/"), any);
    assert_ptr_equal(match(t, "any.example", 18443, "/"), any);
    /* P145: https://std.example:443 is the same as no port */
    assert_ptr_equal(match(t, "std.example", 443, "/"), p443);
    assert_ptr_equal(match(t, "std.example", 8443, "/"), p443);
    /* P144: a non-default port matches only itself */
    assert_ptr_equal(match(t, "alt.example", 8443, "/"), p8443);
    assert_null(match(t, "alt.example", 443, "/"));
    assert_null(match(t, "alt.example", 8444, "/"));
    assert_ptr_equal(match(t, "plain.example", 8080, "/"), p80);
    /* 443 is no default for http */
    assert_ptr_equal(match(t, "odd.example", 443, "/"), p443http);
    assert_null(match(t, "odd.example", 80, "/"));
    authz_routes_destroy(t);
}

static void test_wildcard_hosts(void **state)
{
    cmn_route_t *w = add("https", "*.example.com", 0);
    cmn_route_t *two = add("https", "*.internal.*.corp.example", 0);
    cmn_route_t *pinned = add("https", "*.pinned.example", 1234);
    authz_routes_t *t = compile();

    /* P134, P136, P137: one label, any port, several labels */
    assert_ptr_equal(match(t, "from.example.com", 443, "/some/path"), w);
    assert_ptr_equal(match(t, "from.example.com", 8443, "/"), w);
    assert_ptr_equal(match(t, "a.b.example.com", 443, "/"), w);
    assert_ptr_equal(match(t, "From.Example.com", 443, "/"), w);
    /* P135: never the bare apex, and a dot boundary */
    assert_null(match(t, "example.com", 443, "/"));
    assert_null(match(t, "evilexample.com", 443, "/"));
    assert_null(match(t, "a.example.com.evil", 443, "/"));
    /* P139: two stars, any port */
    assert_ptr_equal(match(t, "a.internal.b.corp.example", 1234, "/"), two);
    assert_null(match(t, "a.external.b.corp.example", 443, "/"));
    /* P140-P142: a pattern that names a port matches only that port */
    assert_ptr_equal(match(t, "a.pinned.example", 1234, "/"), pinned);
    assert_null(match(t, "a.pinned.example", 443, "/"));
    assert_null(match(t, "a.pinned.example", 5678, "/"));

    assert_true(is_route_host(t, "x.example.com"));
    assert_true(is_route_host(t, "x.y.example.com"));
    assert_false(is_route_host(t, "example.com"));
    assert_false(is_route_host(t, "xexample.com"));
    authz_routes_destroy(t);
}

/* P147/P148: an exact host wins whatever the order, and never falls back to a wildcard */
static void test_exact_before_wildcard(void **state)
{
    cmn_route_t *wild = add("https", "*.example.com", 0);
    cmn_route_t *api = add("https", "app.example.com", 0);
    api->prefix = "/api";
    cmn_route_t *pinned = add("https", "pin.example.com", 8443);
    authz_routes_t *t = compile();

    assert_ptr_equal(match(t, "app.example.com", 443, "/api/x"), api);
    assert_null(match(t, "app.example.com", 443, "/other"));
    assert_ptr_equal(match(t, "other.example.com", 443, "/other"), wild);
    /* an exact host whose routes do not admit the port is not chosen: the wildcard serves */
    assert_ptr_equal(match(t, "pin.example.com", 8443, "/"), pinned);
    assert_ptr_equal(match(t, "pin.example.com", 443, "/"), wild);
    authz_routes_destroy(t);
}

static void test_prefix_path_regex(void **state)
{
    cmn_route_t *exact = add("https", "h.example", 0);
    exact->path = "/exact";
    cmn_route_t *prefix = add("https", "h.example", 0);
    prefix->prefix = "/api/";
    cmn_route_t *admin = add("https", "h.example", 0);
    admin->prefix = "/admin";
    cmn_route_t *regex = add("https", "h.example", 0);
    regex->regex = "/img/[0-9]+\\.png";
    authz_routes_t *t = compile();

    /* P158: exact path, a trailing slash differs */
    assert_ptr_equal(match(t, "h.example", 443, "/exact"), exact);
    assert_null(match(t, "h.example", 443, "/exact/"));
    assert_null(match(t, "h.example", 443, "/exactly"));
    assert_ptr_equal(match(t, "h.example", 443, "/api/v1"), prefix);
    assert_null(match(t, "h.example", 443, "/api"));
    /* P152: a plain string prefix, not segment-aware, and case-sensitive */
    assert_ptr_equal(match(t, "h.example", 443, "/administrator"), admin);
    assert_null(match(t, "h.example", 443, "/Admin"));
    assert_ptr_equal(match(t, "h.example", 443, "/img/42.png"), regex);
    /* anchored: no match on a substring */
    assert_null(match(t, "h.example", 443, "/x/img/42.png"));
    assert_null(match(t, "h.example", 443, "/img/42.png.exe"));
    assert_null(match(t, "h.example", 443, "/img/ab.png"));
    authz_routes_destroy(t);
}

/* only one specifier counts, regex > path > prefix, as Envoy's route match */
static void test_specifier_precedence(void **state)
{
    cmn_route_t *r = add("https", "h.example", 0);
    r->regex = "/r[0-9]";
    r->path = "/p";
    r->prefix = "/";
    cmn_route_t *p = add("https", "i.example", 0);
    p->path = "/p";
    p->prefix = "/";
    authz_routes_t *t = compile();

    assert_ptr_equal(match(t, "h.example", 443, "/r1"), r);
    assert_null(match(t, "h.example", 443, "/p"));
    assert_null(match(t, "h.example", 443, "/other"));
    assert_ptr_equal(match(t, "i.example", 443, "/p"), p);
    assert_null(match(t, "i.example", 443, "/other"));
    authz_routes_destroy(t);
}

/* an alternation must stay inside the anchors: ^(a|b)$, not ^a|b$; RE2 forms users write */
static void test_regex_forms(void **state)
{
    cmn_route_t *alt = add("https", "a.example", 0);
    alt->regex = "/a|/b";
    cmn_route_t *p160 = add("https", "b.example", 0);
    p160->regex = "^\\/foo\\/bar\\/[0-9a-f]\\/{0,1}$";
    cmn_route_t *digits = add("https", "c.example", 0);
    digits->regex = "/v\\d+/(?:x|y)";
    cmn_route_t *bracket = add("https", "d.example", 0);
    bracket->regex = "/[[:digit:]\\d]";
    cmn_route_t *all = add("https", "e.example", 0);
    all->regex = ".*";
    authz_routes_t *t = compile();

    assert_ptr_equal(match(t, "a.example", 443, "/a"), alt);
    assert_ptr_equal(match(t, "a.example", 443, "/b"), alt);
    assert_null(match(t, "a.example", 443, "/a/x"));
    assert_null(match(t, "a.example", 443, "/x/b"));
    assert_ptr_equal(match(t, "b.example", 443, "/foo/bar/0"), p160);
    assert_ptr_equal(match(t, "b.example", 443, "/foo/bar/a/"), p160);
    assert_null(match(t, "b.example", 443, "/foo/bar/g"));
    assert_ptr_equal(match(t, "c.example", 443, "/v12/y"), digits);
    assert_null(match(t, "c.example", 443, "/vx/y"));
    assert_null(match(t, "c.example", 443, "/v1/z"));
    /* inside brackets a backslash is literal (POSIX): [[:digit:]\d] is a digit, '\' or 'd' */
    assert_ptr_equal(match(t, "d.example", 443, "/7"), bracket);
    assert_ptr_equal(match(t, "d.example", 443, "/d"), bracket);
    assert_null(match(t, "d.example", 443, "/x"));
    /* P163: the empty path is "/" (normalised by target.c) */
    assert_ptr_equal(match(t, "e.example", 443, "/"), all);
    authz_routes_destroy(t);
}

/* P166-P169: config order, first match wins, no fall-through */
static void test_first_match_wins(void **state)
{
    cmn_route_t *first = add("https", "h.example", 0);
    first->prefix = "/admin";
    first->allow_public_unauthenticated_access = false;
    cmn_route_t *catchall = add("https", "h.example", 0);
    cmn_route_t *later = add("https", "h.example", 0);
    later->prefix = "/admin/deep";
    cmn_route_t *exact = add("https", "h.example", 0);
    exact->path = "/exact";
    authz_routes_t *t = compile();

    assert_ptr_equal(match(t, "h.example", 443, "/admin/deep/x"), first);
    assert_ptr_equal(match(t, "h.example", 443, "/other"), catchall);
    assert_ptr_equal(match(t, "h.example", 443, "/exact"), catchall);
    (void)later;
    (void)exact;
    authz_routes_destroy(t);
}

/* every error at once, with file, line and route; policy errors included */
static void test_errors_all_reported(void **state)
{
    cmn_route_t *r = add("https", "h.example", 0);
    r->regex = "/(unclosed";
    add("https", "ok.example", 0);
    r = add("https", "i.example", 0);
    r->regex = "/x[";
    r = add("https", "j.example", 0);
    r->allow_any_authenticated_user = true; /* and public: a conflict */
    r = add("https", NULL, 0);

    assert_null(authz_routes_compile(&config, &errors));
    assert_true(errors.len >= 4);
    assert_non_null(strstr(errors.items[0], "[test.yaml:10] routes[0].regex: does not compile"));
    bool saw_second = false, saw_policy = false, saw_from = false;
    for (size_t i = 0; i < errors.len; i++) {
        const char *e = errors.items[i];
        saw_second = saw_second || strstr(e, "[test.yaml:12] routes[2].regex") != NULL;
        saw_policy = saw_policy || strstr(e, "[test.yaml:13] routes[3]") != NULL;
        saw_from = saw_from || strstr(e, "[test.yaml:14] routes[4].from") != NULL;
    }
    assert_true(saw_second);
    assert_true(saw_policy);
    assert_true(saw_from);
}

static void test_no_match(void **state)
{
    cmn_route_t *r = add("https", "h.example", 0);
    r->prefix = "/only";
    authz_routes_t *t = compile();

    /* P151 */
    assert_null(match(t, "h.example", 443, "/"));
    assert_int_equal(authz_routes_count(t), 1);
    authz_routes_destroy(t);

    config.num_routes = 0;
    t = compile();
    assert_null(match(t, "h.example", 443, "/"));
    assert_false(is_route_host(t, "h.example"));
    authz_routes_destroy(t);
}

static double elapsed_us(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

/* 10,000 routes: exact hosts by hash; the time per match is printed, not asserted */
static void test_ten_thousand_routes(void **state)
{
    static char hosts[MAX_TEST_ROUTES][32];
    const int lookups = 100000;
    struct timespec t0, t1;
    const cmn_route_t *last = NULL;

    for (int i = 0; i < MAX_TEST_ROUTES - 2; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "app%d.example", i / 2);
        cmn_route_t *r = add("https", hosts[i], 0);
        if (i % 2 == 0) {
            r->prefix = "/api";
        }
    }
    cmn_route_t *wild = add("https", "*.wild.example", 0);
    cmn_route_t *wild2 = add("https", "*.other.example", 0);
    authz_routes_t *t = compile();

    assert_int_equal(authz_routes_count(t), MAX_TEST_ROUTES);
    assert_ptr_equal(match(t, "app4998.example", 443, "/api/x"), &routes[9996]);
    assert_ptr_equal(match(t, "app4998.example", 443, "/x"), &routes[9997]);
    assert_ptr_equal(match(t, "a.wild.example", 443, "/"), wild);
    assert_ptr_equal(match(t, "a.other.example", 443, "/"), wild2);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < lookups; i++) {
        last = match(t, hosts[(i * 7919) % (MAX_TEST_ROUTES - 2)], 443, "/x");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(last);
    printf("10000 routes: %.3f us per exact-host match\n", elapsed_us(t0, t1) / lookups);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < lookups; i++) {
        last = match(t, "a.other.example", 443, "/");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_ptr_equal(last, wild2);
    printf("10000 routes: %.3f us per wildcard match\n", elapsed_us(t0, t1) / lookups);
    authz_routes_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_host_any_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcard_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_before_wildcard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_path_regex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_specifier_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regex_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_match_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_all_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_routes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
