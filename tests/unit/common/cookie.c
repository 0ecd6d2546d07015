/* SPDX-License-Identifier: MIT */
/* Unit tests for common/cookie.c: ticket sealing, scope binding, Cookie parsing, Set-Cookie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "common/cookie.h"
#include "common/err.h"

#define NOW 1700000000u

static uint8_t key[CMN_KEY_LEN];

static int setup(void **state)
{
    memset(key, 0x5a, sizeof(key));
    return 0;
}

static cmn_session_ticket_t make_ticket(void)
{
    cmn_session_ticket_t t;

    memset(&t, 0, sizeof(t));
    cmn_random_id(t.session_id);
    t.issued = NOW;
    t.expiry = NOW + 14 * 3600;
    return t;
}

static void test_round_trip(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    cmn_session_ticket_t got;
    char value[CMN_COOKIE_VALUE_MAX];
    const char *err = cmn_err_io;

    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "portcullis.localhost", &t, value), 0);
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "portcullis.localhost", value, strlen(value),
                                     NOW + 1, &got, &err),
                     0);
    assert_null(err);
    assert_string_equal(got.session_id, t.session_id);
    assert_int_equal(got.issued, t.issued);
    assert_int_equal(got.expiry, t.expiry);
}

static void test_length(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    char value[CMN_COOKIE_VALUE_MAX];

    /* a 24-character id gives base64url(28 + 17 + 24 bytes): 92 characters */
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), 0);
    assert_int_equal(strlen(value), 92);
    assert_int_equal(
        strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(value));

    /* the longest id still fits */
    memset(t.session_id, 'x', CMN_SESSION_ID_MAX);
    t.session_id[CMN_SESSION_ID_MAX] = '\0';
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), 0);
    assert_true(strlen(value) < CMN_COOKIE_VALUE_MAX);
}

static void test_tampered(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    cmn_session_ticket_t got;
    char value[CMN_COOKIE_VALUE_MAX];
    const char *err = NULL;

    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), 0);

    /* change each interior character to another valid one; the last is left out because its
     * unused low bits make most replacements invalid base64 (malformed rather than decrypt) */
    for (size_t i = 0; i + 1 < strlen(value); i++) {
        char saved = value[i];
        value[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value),
                                         NOW, &got, &err),
                         -1);
        assert_ptr_equal(err, cmn_err_decrypt);
        value[i] = saved;
    }
}

static void test_other_name_scope_key(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    cmn_session_ticket_t got;
    char value[CMN_COOKIE_VALUE_MAX];
    uint8_t other_key[CMN_KEY_LEN];
    const char *err = NULL;

    memset(other_key, 0x5b, sizeof(other_key));
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "verify.portcullis.localhost", &t, value),
                     0);

    assert_int_equal(cmn_cookie_open(key, "_pomerium_authenticate", "verify.portcullis.localhost",
                                     value, strlen(value), NOW, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_decrypt);
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "admin.portcullis.localhost", value,
                                     strlen(value), NOW, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_decrypt);
    assert_int_equal(cmn_cookie_open(other_key, "_pomerium", "verify.portcullis.localhost", value,
                                     strlen(value), NOW, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_decrypt);

    /* moving the separator between name and scope changes the associated data */
    assert_int_equal(cmn_cookie_open(key, "_pomerium\nverify", "portcullis.localhost", value,
                                     strlen(value), NOW, &got, &err),
                     -1);
}

static void test_expired(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    cmn_session_ticket_t got;
    char value[CMN_COOKIE_VALUE_MAX];
    const char *err = NULL;

    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), 0);
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value),
                                     t.expiry - 1, &got, &err),
                     0);
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value),
                                     t.expiry, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_expired);
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value),
                                     t.expiry + 3600, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_expired);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {"", "!!!!", "Zm9v", "A", "abc def", "eyJhbGciOiJub25lIn0"};
    char long_value[CMN_COOKIE_VALUE_MAX + 50];
    cmn_session_ticket_t got;
    const char *err = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", bad[i], strlen(bad[i]),
                                         NOW, &got, &err),
                         -1);
        assert_ptr_equal(err, cmn_err_malformed);
    }

    memset(long_value, 'A', sizeof(long_value));
    assert_int_equal(cmn_cookie_open(key, "_pomerium", "app.localhost", long_value,
                                     sizeof(long_value), NOW, &got, &err),
                     -1);
    assert_ptr_equal(err, cmn_err_malformed);
}

/* a box that opens but holds no valid ticket is malformed, not trusted */
static void test_bad_payload(void **state)
{
    uint8_t payload[17 + 3];
    uint8_t sealed[sizeof(payload) + CMN_AEAD_OVERHEAD];
    char value[CMN_COOKIE_VALUE_MAX];
    cmn_session_ticket_t got;
    const char *err = NULL;

    memset(payload, 0, sizeof(payload));
    payload[0] = 2; /* unknown version */
    payload[16] = 0xff;
    memcpy(payload + 17, "abc", 3);
    assert_int_equal(
        cmn_aead_seal(key, "_pomerium\napp.localhost", 23, payload, sizeof(payload), sealed), 0);
    cmn_base64url_encode(sealed, sizeof(sealed), value);
    assert_int_equal(
        cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value), NOW, &got, &err),
        -1);
    assert_ptr_equal(err, cmn_err_malformed);

    /* right version, empty session id */
    uint8_t empty[17];
    uint8_t sealed_empty[sizeof(empty) + CMN_AEAD_OVERHEAD];
    memset(empty, 0, sizeof(empty));
    empty[0] = 1;
    empty[16] = 0xff;
    assert_int_equal(
        cmn_aead_seal(key, "_pomerium\napp.localhost", 23, empty, sizeof(empty), sealed_empty), 0);
    cmn_base64url_encode(sealed_empty, sizeof(sealed_empty), value);
    assert_int_equal(
        cmn_cookie_open(key, "_pomerium", "app.localhost", value, strlen(value), NOW, &got, &err),
        -1);
    assert_ptr_equal(err, cmn_err_malformed);
}

static void test_seal_refuses(void **state)
{
    cmn_session_ticket_t t = make_ticket();
    char value[CMN_COOKIE_VALUE_MAX];

    assert_int_equal(cmn_cookie_seal(key, "", "app.localhost", &t, value), -1);
    assert_int_equal(cmn_cookie_seal(key, "a\nb", "app.localhost", &t, value), -1);
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app\nlocalhost", &t, value), -1);

    t.session_id[0] = '\0';
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), -1);
    snprintf(t.session_id, sizeof(t.session_id), "has space");
    assert_int_equal(cmn_cookie_seal(key, "_pomerium", "app.localhost", &t, value), -1);
}

static void assert_found(const char *header, const char *name, const char *expected)
{
    h2o_iovec_t v = cmn_cookie_find(h2o_iovec_init(header, strlen(header)), name);

    if (expected == NULL) {
        assert_null(v.base);
        assert_int_equal(v.len, 0);
        return;
    }
    assert_non_null(v.base);
    assert_int_equal(v.len, strlen(expected));
    assert_memory_equal(v.base, expected, v.len);
}

static void test_find(void **state)
{
    assert_found("a=1; b=2", "a", "1");
    assert_found("a=1; b=2", "b", "2");
    assert_found("a=1;b=2", "b", "2");
    assert_found("xb=1; b=2", "b", "2"); /* not a suffix match */
    assert_found("bb=1; b=2", "b", "2"); /* not a prefix match */
    assert_found("bb=1", "b", NULL);
    assert_found("b=1; b=2", "b", "1"); /* first wins */
    assert_found("b=; c=3", "b", "");   /* present but empty */
    assert_found("b=x=y", "b", "x=y");  /* '=' inside a value */
    assert_found("  b=3  ", "b", "3");
    assert_found("a=1; b", "b", NULL); /* no '=' is not a cookie */
    assert_found("a=1; c=2", "b", NULL);
    assert_found("", "b", NULL);
    assert_found("a=b=1", "b", NULL); /* a value is not a name */
    assert_found("_pomerium_csrf=x; _pomerium=y", "_pomerium", "y");
}

static void test_from_req(void **state)
{
    h2o_req_t req;
    h2o_mem_pool_t pool;
    h2o_iovec_t v;

    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&pool);
    h2o_add_header(&pool, &req.headers, H2O_TOKEN_USER_AGENT, NULL, H2O_STRLIT("a=1"));
    h2o_add_header(&pool, &req.headers, H2O_TOKEN_COOKIE, NULL, H2O_STRLIT("a=1; b=2"));
    h2o_add_header(&pool, &req.headers, H2O_TOKEN_COOKIE, NULL, H2O_STRLIT("_pomerium=abc"));
    h2o_add_header(&pool, &req.headers, H2O_TOKEN_COOKIE, NULL, H2O_STRLIT("_pomerium=second"));

    v = cmn_cookie_from_req(&req, "_pomerium");
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.base, "abc", 3);
    v = cmn_cookie_from_req(&req, "b");
    assert_int_equal(v.len, 1);
    assert_memory_equal(v.base, "2", 1);
    v = cmn_cookie_from_req(&req, "c");
    assert_null(v.base);

    h2o_mem_clear_pool(&pool);
}

static void assert_built(const char *name, const char *value, const cmn_cookie_attrs_t *attrs,
                         const char *expected)
{
    h2o_mem_pool_t pool;
    h2o_iovec_t v;

    h2o_mem_init_pool(&pool);
    v = cmn_cookie_build(&pool, name, h2o_iovec_init(value, strlen(value)), attrs);
    if (expected == NULL) {
        assert_null(v.base);
    } else {
        assert_non_null(v.base);
        assert_int_equal(v.len, strlen(expected));
        assert_memory_equal(v.base, expected, v.len);
    }
    h2o_mem_clear_pool(&pool);
}

static void test_build(void **state)
{
    cmn_cookie_attrs_t attrs = {"portcullis.localhost", NULL, 50400, 1, 1, "Lax"};

    assert_built("_pomerium", "abc", &attrs,
                 "_pomerium=abc; Path=/; Domain=portcullis.localhost; Max-Age=50400; Secure; "
                 "HttpOnly; SameSite=Lax");

    /* host-only session cookie, no flags */
    cmn_cookie_attrs_t plain = {NULL, "/x", 0, 0, 0, NULL};
    assert_built("n", "v", &plain, "n=v; Path=/x");

    /* deletion */
    cmn_cookie_attrs_t del = {NULL, NULL, -1, 1, 1, "Strict"};
    assert_built("_pomerium", "", &del,
                 "_pomerium=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; "
                 "HttpOnly; SameSite=Strict");

    /* header injection and bad attributes are refused */
    assert_built("_pomerium", "a;b", &attrs, NULL);
    assert_built("_pomerium", "a\r\nSet-Cookie: x=y", &attrs, NULL);
    assert_built("_pomerium", "a b", &attrs, NULL);
    assert_built("_pomerium", "\"quoted\"", &attrs, NULL);
    assert_built("a=b", "v", &attrs, NULL);
    assert_built("", "v", &attrs, NULL);
    cmn_cookie_attrs_t bad_domain = {"evil; Domain=x", NULL, 0, 1, 1, "Lax"};
    assert_built("n", "v", &bad_domain, NULL);
    cmn_cookie_attrs_t bad_same_site = {NULL, NULL, 0, 1, 1, "lax; x"};
    assert_built("n", "v", &bad_same_site, NULL);
}

/* every cookie of one name, in order, within a header: the first is not always the good one */
static void test_find_next_walks_every_match(void **state)
{
    h2o_iovec_t header = h2o_iovec_init(H2O_STRLIT("_p=one; other=x; _p=two;_p=; _p = three"));
    size_t offset = 0;
    const char *want[] = {"one", "two", "", "three"};

    for (size_t i = 0; i < 4; i++) {
        h2o_iovec_t v = cmn_cookie_find_next(header, "_p", &offset);
        assert_non_null(v.base);
        assert_int_equal(v.len, strlen(want[i]));
        assert_memory_equal(v.base, want[i], v.len);
    }
    assert_null(cmn_cookie_find_next(header, "_p", &offset).base);
    assert_null(cmn_cookie_find_next(header, "_p", &offset).base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_next_walks_every_match),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_length),
        cmocka_unit_test(test_tampered),    cmocka_unit_test(test_other_name_scope_key),
        cmocka_unit_test(test_expired),     cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_payload), cmocka_unit_test(test_seal_refuses),
        cmocka_unit_test(test_find),        cmocka_unit_test(test_from_req),
        cmocka_unit_test(test_build),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
