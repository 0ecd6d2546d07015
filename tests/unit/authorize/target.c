/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/target.c: deriving T and normalising its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "common/err.h"
#include "authorize/target.h"

static h2o_mem_pool_t pool;

static int setup(void **state)
{
    h2o_mem_init_pool(&pool);
    return 0;
}

static int teardown(void **state)
{
    h2o_mem_clear_pool(&pool);
    return 0;
}

static h2o_iovec_t iov(const char *s)
{
    return s != NULL ? h2o_iovec_init(s, strlen(s)) : h2o_iovec_init(NULL, 0);
}

static void assert_iov(h2o_iovec_t v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.base, want, v.len);
}

static void test_raw_uri_keeps_its_query(void **state)
{
    authz_target_input_t in = {.query = iov("uri=https://Verify.Example/docs?x=1&y=2"),
                               .req_method = iov("GET")};
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    assert_iov(t.raw, "https://Verify.Example/docs?x=1&y=2");
    assert_iov(t.host, "verify.example");
    assert_int_equal(t.port, 443);
    assert_string_equal(t.path.base, "/docs");
    assert_iov(t.url.query, "x=1&y=2");
    assert_iov(t.method, "GET");
}

static void test_encoded_uri_decoded_once(void **state)
{
    authz_target_input_t in = {.query = iov("a=b&uri=https%3A%2F%2Fh.example%3A8443"
                                            "%2Fp%3Fq%3D%2541"),
                               .req_method = iov("GET")};
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    /* one decode only: %2541 becomes %41, not A */
    assert_iov(t.raw, "https://h.example:8443/p?q=%41");
    assert_int_equal(t.port, 8443);
    assert_string_equal(t.path.base, "/p");
}

static void test_original_url_fallback_and_method(void **state)
{
    authz_target_input_t in = {.query = iov("other=1"),
                               .original_url = iov("http://h.example/x"),
                               .original_method = iov("POST"),
                               .fwd_method = iov("PUT"),
                               .req_method = iov("GET")};
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    assert_iov(t.raw, "http://h.example/x");
    assert_int_equal(t.port, 80);
    assert_iov(t.method, "POST");
}

static void test_header_wins_when_same_resource(void **state)
{
    authz_target_input_t in = {.query = iov("uri=https%3A%2F%2Fh.example%2Fx%3Fa%3D1"),
                               .original_url = iov("https://h.example/x?a=1&b=2"),
                               .req_method = iov("GET")};
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    assert_iov(t.raw, "https://h.example/x?a=1&b=2");

    in.original_url = iov("https://other.example/x?a=1&b=2");
    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    assert_iov(t.raw, "https://h.example/x?a=1");
}

static void test_forwarded_headers(void **state)
{
    authz_target_input_t in = {.fwd_proto = iov("https"), .fwd_host = iov("h.example"),
                               .fwd_uri = iov("/a/b?c=d"), .fwd_method = iov("DELETE"),
                               .req_method = iov("GET")};
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_derive(&pool, &in, &t, &err), 0);
    assert_iov(t.raw, "https://h.example/a/b?c=d");
    assert_iov(t.method, "DELETE");
}

static void test_malformed(void **state)
{
    authz_target_t t;
    const char *err = NULL;
    authz_target_input_t none = {.query = iov("x=1"), .req_method = iov("GET")};
    authz_target_input_t ftp = {.query = iov("uri=ftp%3A%2F%2Fh.example%2F")};
    authz_target_input_t bad_escape = {.query = iov("uri=%zz")};
    authz_target_input_t userinfo = {.query = iov("uri=https://user@h.example/")};
    authz_target_input_t space = {.query = iov("uri=https%3A%2F%2Fh.example%2Fa%20b")};
    authz_target_input_t slash = {.query = iov("uri=https://h.example/a%2F..%2Fadmin")};

    assert_int_equal(authz_target_derive(&pool, &none, &t, &err), -1);
    assert_ptr_equal(err, authz_err_no_target);
    assert_int_equal(authz_target_derive(&pool, &ftp, &t, &err), -1);
    assert_int_equal(authz_target_derive(&pool, &bad_escape, &t, &err), -1);
    assert_ptr_equal(err, cmn_err_malformed);
    assert_int_equal(authz_target_derive(&pool, &userinfo, &t, &err), -1);
    assert_int_equal(authz_target_derive(&pool, &space, &t, &err), -1);
    assert_int_equal(authz_target_derive(&pool, &slash, &t, &err), -1);
    assert_ptr_equal(err, authz_err_bad_path);
}

static void expect_path(const char *raw, const char *want)
{
    h2o_iovec_t out;
    const char *err = NULL;

    assert_int_equal(authz_path_normalize(&pool, iov(raw), &out, &err), 0);
    assert_string_equal(out.base, want);
    assert_int_equal(out.len, strlen(want));
}

static void expect_bad_path(const char *raw)
{
    h2o_iovec_t out;
    const char *err = NULL;

    assert_int_equal(authz_path_normalize(&pool, iov(raw), &out, &err), -1);
    assert_non_null(err);
}

static void test_path_normalisation(void **state)
{
    expect_path("", "/");
    expect_path("/", "/");
    expect_path("/a/b", "/a/b");
    expect_path("//admin", "/admin");
    expect_path("/a//b///c", "/a/b/c");
    expect_path("/public/../admin", "/admin");
    expect_path("/public/%2e%2e/admin", "/admin");
    expect_path("/a/./b", "/a/b");
    expect_path("/../../etc", "/etc");
    expect_path("/a/", "/a/");
    expect_path("/a/..", "/");
    expect_path("/a/b/.", "/a/b/");
    expect_path("/%61dmin", "/admin");
    expect_path("/x%3Fy", "/x?y");
    expect_bad_path("/a%2fb");
    expect_bad_path("/a%2Fb");
    expect_bad_path("/a%5cb");
    expect_bad_path("/a%00b");
    expect_bad_path("/a%zz");
}

/* the brief's list, each as the upstream would see it */
static void test_normalisation_attacks(void **state)
{
    expect_path("//admin", "/admin");
    expect_path("///admin//users", "/admin/users");
    expect_path("/a/../admin", "/admin");
    expect_path("/%2e%2e/admin", "/admin");
    expect_path("/%2E%2E/admin", "/admin");
    expect_path("/.%2e/admin", "/admin");
    expect_path("/public/%2e/../admin", "/admin");
    expect_path("/a/b/../../../admin", "/admin");
    /* decoded once: %252e stays the literal "%2e", never a dot segment */
    expect_path("/%252e%252e/admin", "/%2e%2e/admin");
    expect_path("/a%20b", "/a b");
    expect_path("/echo//foo//bar", "/echo/foo/bar");
    expect_bad_path("/admin%2Fsecret");
    expect_bad_path("/admin%2fsecret");
    expect_bad_path("/echo/an%5Cexample");
    expect_bad_path("/echo/an%5cexample");
    expect_bad_path("/a%00");
    expect_bad_path("/a\\..\\admin");
    expect_bad_path("/%");
    expect_bad_path("/%4");
}

static void expect_target(const char *raw, const char *host, uint16_t port, const char *path)
{
    authz_target_t t;
    const char *err = NULL;

    assert_int_equal(authz_target_parse(&pool, iov(raw), &t, &err), 0);
    assert_string_equal(t.host.base, host);
    assert_int_equal(t.port, port);
    assert_string_equal(t.path.base, path);
}

/* upper-case hosts are lower-cased, a port is split off, the query never reaches the path */
static void test_hosts_and_ports(void **state)
{
    authz_target_t t;
    const char *err = NULL;

    expect_target("https://FROM.Example.COM/", "from.example.com", 443, "/");
    expect_target("https://From.Example.com:8443/x", "from.example.com", 8443, "/x");
    expect_target("http://h.example/x", "h.example", 80, "/x");
    expect_target("http://h.example:443", "h.example", 443, "/");
    expect_target("https://example.com", "example.com", 443, "/");
    expect_target("https://h.example/a/b?x=/../admin", "h.example", 443, "/a/b");
    expect_target("https://h.example//admin?q=1", "h.example", 443, "/admin");
    expect_target("https://[::1]:8443/x", "[::1]", 8443, "/x");

    assert_int_equal(authz_target_parse(&pool, iov("https://h.example/a%2Fb"), &t, &err), -1);
    assert_ptr_equal(err, authz_err_bad_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_raw_uri_keeps_its_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_uri_decoded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_original_url_fallback_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_wins_when_same_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarded_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_normalisation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normalisation_attacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_and_ports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
