/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/proxy.c: trusted_proxies and the client address for source_ip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "authorize/proxy.h"

static authz_cidrs_t *trusted;

static int setup(void **state)
{
    char *items[] = {"127.0.0.0/8", "10.0.0.0/8", "::1", NULL};
    cmn_strlist_t list = {items, 3};
    char err[128];

    trusted = authz_cidrs_parse(&list, err, sizeof(err));
    return trusted == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    authz_cidrs_destroy(trusted);
    return 0;
}

static struct sockaddr_storage v4(const char *s)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;

    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *s)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
    return ss;
}

static h2o_iovec_t iov(const char *s)
{
    return s != NULL ? h2o_iovec_init(s, strlen(s)) : h2o_iovec_init(NULL, 0);
}

/* the client address as text, or "none" */
static const char *client(struct sockaddr_storage peer, const char *xff, const char *real_ip)
{
    static char text[INET6_ADDRSTRLEN];
    struct sockaddr_storage out;

    if (!authz_client_addr(trusted, (struct sockaddr *)&peer, iov(xff), iov(real_ip), &out)) {
        return "none";
    }
    if (out.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&out)->sin_addr, text, sizeof(text));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&out)->sin6_addr, text, sizeof(text));
    }
    return text;
}

/* an untrusted peer is the client, whatever it claims */
static void test_untrusted_peer_is_the_client(void **state)
{
    assert_string_equal(client(v4("203.0.113.9"), "1.2.3.4", "5.6.7.8"), "203.0.113.9");
    assert_string_equal(client(v6("2001:db8::1"), "1.2.3.4", NULL), "2001:db8::1");
}

static void test_trusted_peer_headers(void **state)
{
    struct sockaddr_storage nginx = v4("127.0.0.1");

    assert_string_equal(client(nginx, "198.51.100.7", "198.51.100.8"), "198.51.100.7");
    assert_string_equal(client(nginx, NULL, "198.51.100.8"), "198.51.100.8");
    assert_string_equal(client(nginx, NULL, NULL), "127.0.0.1");
    /* the rightmost hop that is not a trusted proxy: the left ones are the client's claims */
    assert_string_equal(client(nginx, "6.6.6.6, 198.51.100.7, 10.1.2.3", NULL), "198.51.100.7");
    assert_string_equal(client(nginx, "6.6.6.6,198.51.100.7", NULL), "198.51.100.7");
    /* every hop trusted: the leftmost */
    assert_string_equal(client(nginx, "10.0.0.5, 10.0.0.6", NULL), "10.0.0.5");
    /* empty hops say nothing; ports and brackets are dropped */
    assert_string_equal(client(nginx, "198.51.100.7, ,", NULL), "198.51.100.7");
    assert_string_equal(client(nginx, "198.51.100.7:5555", NULL), "198.51.100.7");
    assert_string_equal(client(nginx, "[2001:db8::5]:443", NULL), "2001:db8::5");
    assert_string_equal(client(nginx, "2001:db8::5", NULL), "2001:db8::5");
    /* IPv4-mapped IPv6 reaches policy as IPv4 */
    assert_string_equal(client(nginx, "::ffff:198.51.100.7", NULL), "198.51.100.7");
    assert_string_equal(client(v6("::ffff:203.0.113.9"), NULL, NULL), "203.0.113.9");
    assert_string_equal(client(v6("::1"), "198.51.100.7", NULL), "198.51.100.7");
}

/* a hop that must be read and does not parse gives no address, never a wrong one */
static void test_malformed_headers(void **state)
{
    struct sockaddr_storage nginx = v4("127.0.0.1");

    assert_string_equal(client(nginx, "198.51.100.7, junk", NULL), "none");
    assert_string_equal(client(nginx, "unknown", NULL), "none");
    assert_string_equal(client(nginx, NULL, "not-an-ip"), "none");
    /* a bad hop left of the answer is never read */
    assert_string_equal(client(nginx, "junk, 198.51.100.7", NULL), "198.51.100.7");
    assert_string_equal(client(nginx, "[2001:db8::5", NULL), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_peer_is_the_client),
        cmocka_unit_test(test_trusted_peer_headers),
        cmocka_unit_test(test_malformed_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
