/* SPDX-License-Identifier: MIT */
/* Unit tests for common/url.c: the strict parser against hostile URLs, coding and lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common/err.h"
#include "common/url.h"

static void assert_iov(h2o_iovec_t v, const char *expected)
{
    if (expected == NULL) {
        assert_null(v.base);
        assert_int_equal(v.len, 0);
        return;
    }
    assert_non_null(v.base);
    assert_int_equal(v.len, strlen(expected));
    assert_memory_equal(v.base, expected, v.len);
}

static const struct {
    const char *url;
    const char *scheme;
    const char *authority;
    const char *host;
    uint16_t port;
    uint16_t effective_port;
    const char *path;
    const char *query; /* NULL: no '?' */
} good[] = {
    {"https://app.localhost/", "https", "app.localhost", "app.localhost", 0, 443, "/", NULL},
    {"http://app.localhost", "http", "app.localhost", "app.localhost", 0, 80, "", NULL},
    {"HTTPS://App.Example.COM:8443/a/b?x=1&y=2#frag", "HTTPS", "App.Example.COM:8443",
     "App.Example.COM", 8443, 8443, "/a/b", "x=1&y=2"},
    {"https://a.example?", "https", "a.example", "a.example", 0, 443, "", ""},
    {"https://a.example?q", "https", "a.example", "a.example", 0, 443, "", "q"},
    {"https://a.example#f", "https", "a.example", "a.example", 0, 443, "", NULL},
    {"https://a.example/p#f?x", "https", "a.example", "a.example", 0, 443, "/p", NULL},
    {"https://127.0.0.1:1/", "https", "127.0.0.1:1", "127.0.0.1", 1, 1, "/", NULL},
    {"http://[::1]:65535/x", "http", "[::1]:65535", "[::1]", 65535, 65535, "/x", NULL},
    {"https://[2001:db8::7]/", "https", "[2001:db8::7]", "[2001:db8::7]", 0, 443, "/", NULL},
    {"https://a_b-c.example./~x", "https", "a_b-c.example.", "a_b-c.example.", 0, 443, "/~x", NULL},
    {"https://a.example/%2e%2e/?u=%20", "https", "a.example", "a.example", 0, 443, "/%2e%2e/",
     "u=%20"},
};

static void test_parse_good(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cmn_url_t url;
        const char *err = cmn_err_io;
        assert_int_equal(cmn_url_parse(good[i].url, strlen(good[i].url), &url, &err), 0);
        assert_null(err);
        assert_iov(url.scheme, good[i].scheme);
        assert_iov(url.authority, good[i].authority);
        assert_iov(url.host, good[i].host);
        assert_int_equal(url.port, good[i].port);
        assert_int_equal(cmn_url_effective_port(&url), good[i].effective_port);
        assert_int_equal(url.path.len, strlen(good[i].path));
        assert_memory_equal(url.path.base, good[i].path, url.path.len);
        assert_iov(url.query, good[i].query);
        assert_int_equal(url.has_query, good[i].query != NULL);
    }
}

static const char *const hostile[] = {
    "//evil.example/", /* scheme-relative */
    "/relative/path",
    "https:evil.example", /* no "//" */
    "https:/evil.example",
    "https:\\\\evil.example",
    "https:/\\evil.example",
    "https://a@evil", /* userinfo */
    "https://user:pass@evil.example/",
    "https://evil.example\\@good.example",
    "https://evil.example\\.good.example/",
    "https://good.example@evil.example",
    "javascript:alert(1)",
    "JavaScript://good.example/%0aalert(1)",
    "data:text/html,<script>",
    "ftp://good.example/",
    "file:///etc/passwd",
    "httpx://good.example/",
    "https://good.example%0d%0a",
    "https://good.example%2f@evil",
    "https://good.example\r\nSet-Cookie:x",
    "https://good .example/",
    "https://good.example/ x",
    "https://good.example/\x7f",
    "https://good.example/\t",
    " https://good.example/",
    "https://",
    "https:///path",
    "https://:443/",
    "https://good.example:0/",
    "https://good.example:65536/",
    "https://good.example:99999/",
    "https://good.example:/",
    "https://good.example:+443/",
    "https://good.example:0443/",
    "https://good.example:44a/",
    "https://good.example:443:443/",
    "https://[::1/",
    "https://[::1]x/",
    "https://[not-ipv6]/",
    "https://[::1%25eth0]/",
    "https://[]/",
    "https://.good.example/",
    "https://good..example/",
    "https://good.example!/",
    "https://good,example/",
    "https://0x7f.1/", /* read as 127.0.0.1 by browsers */
    "https://127.1/",
    "https://2130706433/",
    "https://127.0.0.01/",
    "https://256.0.0.1/",
    "https://example.123/",
    "https://\xe2\x80\x8bgood.example/", /* zero-width space */
    "",
    "https",
    "https:",
};

static void test_parse_hostile(void **state)
{
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        cmn_url_t url;
        const char *err = NULL;
        if (cmn_url_parse(hostile[i], strlen(hostile[i]), &url, &err) == 0) {
            fail_msg("accepted hostile URL #%zu", i);
        }
        assert_ptr_equal(err, cmn_err_malformed);
    }

    /* an embedded NUL is a control byte, not the end of the string */
    cmn_url_t url;
    const char *err = NULL;
    assert_int_equal(cmn_url_parse("https://a.example\0.evil/", 24, &url, &err), -1);
}

static void test_parse_too_large(void **state)
{
    size_t len = CMN_URL_MAX + 1;
    char *s = malloc(len + 1);
    cmn_url_t url;
    const char *err = NULL;

    assert_non_null(s);
    memcpy(s, "https://a.example/", 18);
    memset(s + 18, 'a', len - 18);
    s[len] = '\0';
    assert_int_equal(cmn_url_parse(s, len, &url, &err), -1);
    assert_ptr_equal(err, cmn_err_too_large);
    assert_int_equal(cmn_url_parse(s, CMN_URL_MAX, &url, &err), 0);
    free(s);
}

static void test_decode(void **state)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t v;

    h2o_mem_init_pool(&pool);
    v = cmn_url_decode(&pool, H2O_STRLIT("https%3A%2F%2Fa.example%2Fx%3Fb%3D1+2%2b"));
    assert_iov(v, "https://a.example/x?b=1+2+");
    assert_int_equal(v.base[v.len], '\0');
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("")), "");
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("%41%6a")), "Aj");
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("%")), NULL);
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("ab%4")), NULL);
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("%zz")), NULL);
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("%%41")), NULL);

    /* decoding happens once: %2541 becomes %41, not A */
    assert_iov(cmn_url_decode(&pool, H2O_STRLIT("%2541")), "%41");

    v = cmn_url_decode(&pool, H2O_STRLIT("a%00b"));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.base, "a\0b", 3);
    h2o_mem_clear_pool(&pool);
}

static void test_encode(void **state)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t v;
    h2o_iovec_t back;
    const char raw[] = "https://a.example/x?b=1 2&c=\xff~-._";

    h2o_mem_init_pool(&pool);
    v = cmn_url_encode(&pool, raw, strlen(raw));
    assert_iov(v, "https%3A%2F%2Fa.example%2Fx%3Fb%3D1%202%26c%3D%FF~-._");
    back = cmn_url_decode(&pool, v.base, v.len);
    assert_iov(back, raw);
    assert_iov(cmn_url_encode(&pool, H2O_STRLIT("")), "");
    h2o_mem_clear_pool(&pool);
}

static void test_query_get(void **state)
{
    h2o_iovec_t q = h2o_iovec_init(H2O_STRLIT("xuri=evil&uri=https%3A%2F%2Fa&empty=&bare&uri=2"));

    assert_iov(cmn_url_query_get(q, "uri"), "https%3A%2F%2Fa");
    assert_iov(cmn_url_query_get(q, "xuri"), "evil");
    assert_iov(cmn_url_query_get(q, "ur"), NULL);
    assert_iov(cmn_url_query_get(q, "uri="), NULL);
    assert_iov(cmn_url_query_get(q, "empty"), "");
    assert_iov(cmn_url_query_get(q, "bare"), "");
    assert_iov(cmn_url_query_get(q, "missing"), NULL);

    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("a=1&uri")), "uri"), "");
    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("uri")), "uri"), "");
    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("a=1&")), "uri"), NULL);
    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("")), "uri"), NULL);
    assert_iov(cmn_url_query_get(h2o_iovec_init(NULL, 0), "uri"), NULL);
    /* names are raw bytes: an encoded name is a different name */
    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("%75ri=x&uri=y")), "uri"), "y");
    /* the value keeps its own '=' */
    assert_iov(cmn_url_query_get(h2o_iovec_init(H2O_STRLIT("uri=a=b")), "uri"), "a=b");
}

static void test_query_of_path(void **state)
{
    assert_iov(cmn_url_query_of_path(h2o_iovec_init(H2O_STRLIT("/verify?uri=x"))), "uri=x");
    assert_iov(cmn_url_query_of_path(h2o_iovec_init(H2O_STRLIT("/verify?"))), "");
    assert_iov(cmn_url_query_of_path(h2o_iovec_init(H2O_STRLIT("/verify"))), NULL);
    assert_iov(cmn_url_query_of_path(h2o_iovec_init(H2O_STRLIT("/a?b?c"))), "b?c");
    assert_iov(cmn_url_query_of_path(h2o_iovec_init(NULL, 0)), NULL);
}

static void test_html_escape(void **state)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t v;

    h2o_mem_init_pool(&pool);
    v = cmn_html_escape(&pool, H2O_STRLIT("<script>alert('x&y')</script>\""));
    assert_iov(v, "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;");
    assert_int_equal(v.base[v.len], '\0');
    assert_iov(cmn_html_escape(&pool, H2O_STRLIT("plain")), "plain");
    assert_iov(cmn_html_escape(&pool, H2O_STRLIT("\"\"\"")), "&quot;&quot;&quot;");
    h2o_mem_clear_pool(&pool);
}

static void test_host_lower(void **state)
{
    h2o_mem_pool_t pool;

    h2o_mem_init_pool(&pool);
    assert_iov(cmn_host_lower(&pool, h2o_iovec_init(H2O_STRLIT("App.LocalHost."))),
               "app.localhost");
    assert_iov(cmn_host_lower(&pool, h2o_iovec_init(H2O_STRLIT("a.b"))), "a.b");
    assert_iov(cmn_host_lower(&pool, h2o_iovec_init(H2O_STRLIT("a.b.."))), "a.b.");
    assert_iov(cmn_host_lower(&pool, h2o_iovec_init(H2O_STRLIT(""))), "");
    h2o_mem_clear_pool(&pool);
}

static void test_host_in_domain(void **state)
{
    assert_true(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("example.com")), "example.com"));
    assert_true(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("a.example.com")), "example.com"));
    assert_true(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("a.b.example.com")), "example.com"));
    assert_true(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("a.example.com")), ".example.com"));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("evilexample.com")), "example.com"));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("example.com.evil")), "example.com"));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("xample.com")), "example.com"));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("com")), "example.com"));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("example.com")), ""));
    assert_false(cmn_host_in_domain(h2o_iovec_init(H2O_STRLIT("")), "example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),      cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_too_large), cmocka_unit_test(test_decode),
        cmocka_unit_test(test_encode),          cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_query_of_path),   cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_host_lower),      cmocka_unit_test(test_host_in_domain),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
