/* SPDX-License-Identifier: MIT */
/* Unit tests for the PPL criteria, string and list matchers and the and/or/not/nor combinators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "authorize/policy.h"

static char *session_groups[4];
static cmn_session_t session;
static authz_policy_input_t in;
static authz_decision_t d;

static int setup(void **state)
{
    memset(&session, 0, sizeof(session));
    session.id = "sid";
    session.user_id = "sub-1";
    session.email = "Alice.Smith@Example.com";
    session.email_verified = true;
    session.groups.items = session_groups;
    session.claims = json_object();
    memset(&in, 0, sizeof(in));
    in.method = h2o_iovec_init(H2O_STRLIT("GET"));
    in.path = h2o_iovec_init(H2O_STRLIT("/api/v1"));
    return 0;
}

static int teardown(void **state)
{
    json_decref(session.claims);
    return 0;
}

/* evaluates the PPL `ppl` (JSON text) into `d`; returns the verdict */
static authz_verdict_t run(const char *ppl, const cmn_session_t *s)
{
    cmn_route_t route;
    cmn_strlist_t errors = {NULL, 0};
    json_error_t jerr;
    authz_policy_t *p;

    memset(&route, 0, sizeof(route));
    route.policy = json_loads(ppl, JSON_DECODE_ANY, &jerr);
    assert_non_null(route.policy);
    p = authz_policy_compile(&route, "t.yaml", &errors);
    if (p == NULL) {
        fail_msg("%s: %s", ppl, errors.len > 0 ? errors.items[0] : "?");
    }
    authz_policy_evaluate(p, &in, s, &d);
    authz_policy_destroy(p);
    json_decref(route.policy);
    free(errors.items);
    return d.verdict;
}

/* true when `ppl` fails to compile with a message containing `needle` */
static bool refused(const char *ppl, const char *needle)
{
    cmn_route_t route;
    cmn_strlist_t errors = {NULL, 0};
    json_error_t jerr;
    authz_policy_t *p;
    bool found = false;

    memset(&route, 0, sizeof(route));
    route.policy = json_loads(ppl, JSON_DECODE_ANY, &jerr);
    assert_non_null(route.policy);
    p = authz_policy_compile(&route, "t.yaml", &errors);
    authz_policy_destroy(p);
    for (size_t i = 0; i < errors.len; i++) {
        found = found || strstr(errors.items[i], needle) != NULL;
        free(errors.items[i]);
    }
    free(errors.items);
    json_decref(route.policy);
    return p == NULL && found;
}

static bool reasons_are(const char *a, const char *b)
{
    size_t want = (a != NULL) + (b != NULL);
    bool has_a = a == NULL, has_b = b == NULL;

    for (size_t i = 0; i < d.num_reasons; i++) {
        has_a = has_a || strcmp(d.reasons[i], a) == 0;
        has_b = has_b || (b != NULL && strcmp(d.reasons[i], b) == 0);
    }
    return d.num_reasons == want && has_a && has_b;
}

#define ALLOWS(ppl, s) assert_int_equal(run(ppl, s), AUTHZ_VERDICT_ALLOW)
#define DENIES(ppl, s) assert_int_equal(run(ppl, s), AUTHZ_VERDICT_DENY)

static void test_string_matchers(void **state)
{
    /* emails and domains ignore case, in the policy and in the session */
    ALLOWS("{\"allow\": {\"or\": [{\"email\": \"alice.smith@example.COM\"}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"email\": {\"starts_with\": \"ALICE.\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"email\": {\"ends_with\": \"@example.com\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"email\": {\"contains\": \"smith@\"}}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"email\": {\"contains\": \"smyth\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"email\": {\"in\": [\"x@y\", \"ALICE.smith@example.com\"]}}]}}",
           &session);
    DENIES("{\"allow\": {\"or\": [{\"email\": {\"not_in\": [\"alice.smith@example.com\"]}}]}}",
           &session);
    DENIES("{\"allow\": {\"or\": [{\"email\": {\"not\": \"alice.smith@example.com\"}}]}}",
           &session);
    assert_true(reasons_are("email-unauthorized", NULL));
    /* all operators of one object must hold */
    DENIES("{\"allow\": {\"or\": [{\"email\": {\"starts_with\": \"alice\", \"ends_with\": "
           "\".org\"}}]}}", &session);
    /* a bare list is compared whole, never as `in` */
    DENIES("{\"allow\": {\"or\": [{\"email\": [\"alice.smith@example.com\"]}]}}", &session);
    /* user ids and methods are case-sensitive and JSON-typed */
    DENIES("{\"allow\": {\"or\": [{\"user\": \"SUB-1\"}]}}", &session);
    session.user_id = "1234";
    DENIES("{\"allow\": {\"or\": [{\"user\": 1234}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"user\": \"1234\"}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"http_method\": \"get\"}]}}", NULL);
    ALLOWS("{\"allow\": {\"or\": [{\"http_path\": {\"starts_with\": \"/api/\"}}]}}", NULL);
    assert_true(reasons_are("http-path-ok", NULL));

    assert_true(refused("{\"allow\": {\"or\": [{\"email\": {\"is\": \"a\", \"like\": \"b\"}}]}}",
                        "unknown string matcher \"like\""));
    assert_true(refused("{\"allow\": {\"or\": [{\"email\": {\"starts_with\": 1}}]}}",
                        "\"starts_with\" needs a string"));
    assert_true(refused("{\"allow\": {\"or\": [{\"email\": {}}]}}", "at least one of"));
}

static void test_domain(void **state)
{
    ALLOWS("{\"allow\": {\"or\": [{\"domain\": \"EXAMPLE.com\"}]}}", &session);
    session.email = "a@sub.example.com";
    DENIES("{\"allow\": {\"or\": [{\"domain\": \"example.com\"}]}}", &session);
    /* the part after the first '@', up to a second one */
    session.email = "a@example.com@evil.com";
    ALLOWS("{\"allow\": {\"or\": [{\"domain\": \"example.com\"}]}}", &session);
    session.email = "no-at-sign";
    DENIES("{\"allow\": {\"or\": [{\"domain\": {\"not\": \"x\"}}]}}", &session);
    assert_true(reasons_are("domain-unauthorized", NULL));
}

static void test_list_matchers(void **state)
{
    session_groups[0] = "dev";
    session_groups[1] = "ops";
    session.groups.len = 2;
    ALLOWS("{\"allow\": {\"or\": [{\"groups\": \"ops\"}]}}", &session);
    assert_true(reasons_are("groups-ok", NULL));
    DENIES("{\"allow\": {\"or\": [{\"groups\": \"OPS\"}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"groups\": [\"dev\", \"ops\"]}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"groups\": {\"is\": \"dev\"}}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"groups\": {\"exclude\": \"ops\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"groups\": {\"has\": \"dev\", \"exclude\": \"qa\"}}]}}",
           &session);
    session.groups.len = 1;
    ALLOWS("{\"allow\": {\"or\": [{\"groups\": {\"is\": \"dev\"}}]}}", &session);
    assert_true(refused("{\"allow\": {\"or\": [{\"groups\": {\"in\": [\"a\"]}}]}}",
                        "unknown list matcher \"in\""));
}

static void test_claims(void **state)
{
    json_object_set_new(session.claims, "org", json_pack("{s:{s:[s,s]}}", "team", "x", "eng",
                                                         "qa"));
    json_object_set_new(session.claims, "org.team", json_string("literal"));
    json_object_set_new(session.claims, "example.com/role", json_string("admin"));
    json_object_set_new(session.claims, "verified", json_string("true"));
    json_object_set_new(session.claims, "level", json_integer(3));

    /* the literal key wins over the nested path */
    ALLOWS("{\"allow\": {\"or\": [{\"claim/org.team\": \"literal\"}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"claim/org.team\": \"eng\"}]}}", &session);
    /* nested with '/'; an array claim holds when an element matches */
    ALLOWS("{\"allow\": {\"or\": [{\"claim/org/team/x\": \"qa\"}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"claim/org/team.x\": {\"has\": \"eng\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"claim/example.com/role\": \"admin\"}]}}", &session);
    assert_true(reasons_are("claim-ok", NULL));
    /* JSON-typed */
    DENIES("{\"allow\": {\"or\": [{\"claim/verified\": true}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"claim/level\": 3}]}}", &session);
    DENIES("{\"allow\": {\"or\": [{\"claim/level\": \"3\"}]}}", &session);
    /* a missing claim is an empty list */
    DENIES("{\"allow\": {\"or\": [{\"claim/missing\": {\"has\": \"x\"}}]}}", &session);
    ALLOWS("{\"allow\": {\"or\": [{\"claim/missing\": {\"exclude\": \"x\"}}]}}", &session);
    assert_int_equal(run("{\"allow\": {\"or\": [{\"claim/missing\": 1}]}}", NULL),
                     AUTHZ_VERDICT_UNAUTHENTICATED);
    assert_true(reasons_are("user-unauthenticated", NULL));
}

static void test_request_criteria(void **state)
{
    ALLOWS("{\"allow\": {\"or\": [{\"accept\": false}]}}", NULL);
    assert_true(reasons_are("accept", NULL));
    DENIES("{\"allow\": {\"or\": [{\"reject\": true}]}}", NULL);
    assert_true(reasons_are("reject", NULL));
    ALLOWS("{\"allow\": {\"or\": [{\"authenticated_user\": false}]}}", &session);
    session.user_id = "";
    DENIES("{\"allow\": {\"or\": [{\"authenticated_user\": true}]}}", &session);
    assert_true(reasons_are("user-unauthorized", NULL));

    in.method = h2o_iovec_init(H2O_STRLIT("OPTIONS"));
    in.has_origin = true;
    DENIES("{\"allow\": {\"or\": [{\"cors_preflight\": 1}]}}", NULL);
    assert_true(reasons_are("non-cors-request", NULL));
    in.has_preflight_method = true;
    ALLOWS("{\"allow\": {\"or\": [{\"cors_preflight\": 1}]}}", NULL);
    assert_true(reasons_are("cors-request", NULL));
}

static void set_ip(const char *text)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&in.client_ip;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&in.client_ip;

    memset(&in.client_ip, 0, sizeof(in.client_ip));
    in.has_client_ip = true;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    sin6->sin6_family = AF_INET6;
}

static void test_source_ip(void **state)
{
    static const char v4[] =
        "{\"allow\": {\"or\": [{\"source_ip\": [\"10.0.0.1/8\", \"1.2.3.4\"]}]}}";
    static const char v6[] = "{\"allow\": {\"or\": [{\"source_ip\": \"2001:db8::1/32\"}]}}";
    static const char mapped[] =
        "{\"allow\": {\"or\": [{\"source_ip\": \"::ffff:192.168.0.0/112\"}]}}";
    static const char any6[] = "{\"allow\": {\"or\": [{\"source_ip\": \"::/0\"}]}}";

    DENIES(v4, NULL); /* no client address known */
    set_ip("10.200.3.4");
    ALLOWS(v4, NULL);
    assert_true(reasons_are("source-ip-ok", NULL));
    set_ip("1.2.3.5");
    DENIES(v4, NULL);
    assert_true(reasons_are("source-ip-unauthorized", NULL));
    set_ip("::ffff:10.1.1.1"); /* an IPv4 client seen through an IPv6 socket */
    ALLOWS(v4, NULL);
    set_ip("2001:db8:ffff::2");
    ALLOWS(v6, NULL);
    set_ip("2001:db9::2");
    DENIES(v6, NULL);
    set_ip("192.168.7.7");
    ALLOWS(mapped, NULL);
    set_ip("192.169.7.7");
    DENIES(mapped, NULL);
    /* IPv6 ranges hold only IPv6 clients */
    set_ip("192.168.7.7");
    DENIES(any6, NULL);
    set_ip("fe80::1");
    ALLOWS(any6, NULL);

    assert_true(refused("{\"allow\": {\"or\": [{\"source_ip\": \"10.0.0.300\"}]}}",
                        "\"10.0.0.300\" is neither"));
    assert_true(refused("{\"allow\": {\"or\": [{\"source_ip\": \"::1/129\"}]}}", "neither"));
    assert_true(refused("{\"allow\": {\"or\": [{\"source_ip\": []}]}}", "at least one"));
    assert_true(refused("{\"allow\": {\"or\": [{\"source_ip\": [\"1.2.3.4\", 5]}]}}",
                        "source_ip needs"));
}

/* §2.5 with request criteria: GET holds, path "/other" fails */
static void test_combinators(void **state)
{
    static const char *get_ok = "{\"http_method\": \"GET\"}";
    static const char *path_bad = "{\"http_path\": \"/other\"}";
    char ppl[512];

    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"and\": [%s, %s]}}", get_ok, path_bad);
    DENIES(ppl, NULL);
    assert_true(reasons_are("http-path-unauthorized", NULL)); /* only the failing ones */

    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"or\": [%s, %s]}}", get_ok, path_bad);
    ALLOWS(ppl, NULL);
    assert_true(reasons_are("http-method-ok", NULL)); /* only the true ones */

    /* not: none may hold (NOR); the inverted results keep their reasons */
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"not\": [%s, %s]}}", get_ok, path_bad);
    DENIES(ppl, NULL);
    assert_true(reasons_are("http-method-ok", NULL));
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"not\": [%s]}}", path_bad);
    ALLOWS(ppl, NULL);
    assert_true(reasons_are("http-path-unauthorized", NULL));

    /* nor: at least one fails (NAND) */
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"nor\": [%s, %s]}}", get_ok, path_bad);
    ALLOWS(ppl, NULL);
    assert_true(reasons_are("http-path-unauthorized", NULL));
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"nor\": [%s]}}", get_ok);
    DENIES(ppl, NULL);
    assert_true(reasons_are("http-method-ok", NULL));

    /* operator blocks of one action OR together, and so do rules in a list */
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"and\": [%s], \"or\": [%s]}}", path_bad, get_ok);
    ALLOWS(ppl, NULL);
    snprintf(ppl, sizeof(ppl), "[{\"allow\": {\"and\": [%s]}}, {\"allow\": {\"and\": [%s]}}]",
             path_bad, get_ok);
    ALLOWS(ppl, NULL);
    snprintf(ppl, sizeof(ppl), "[{\"allow\": {\"and\": [%s]}}, {\"allow\": {\"or\": [%s]}}]",
             path_bad, path_bad);
    DENIES(ppl, NULL);
    assert_true(reasons_are("http-path-unauthorized", NULL));

    /* a session criterion anywhere in the final result asks for login */
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"and\": [%s, {\"email\": \"x\"}]}}", path_bad);
    assert_int_equal(run(ppl, NULL), AUTHZ_VERDICT_UNAUTHENTICATED);
    assert_true(reasons_are("user-unauthenticated", NULL));
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"or\": [%s, {\"email\": \"x\"}]}}", get_ok);
    ALLOWS(ppl, NULL);
    snprintf(ppl, sizeof(ppl), "{\"allow\": {\"not\": [{\"email\": \"x\"}]}}");
    assert_int_equal(run(ppl, NULL), AUTHZ_VERDICT_UNAUTHENTICATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_string_matchers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_matchers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_criteria, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_ip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_combinators, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
