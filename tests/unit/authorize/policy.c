/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/policy.c: outcomes, legacy fields, validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authorize/policy.h"

static char *users[4], *domains[4], *groups_allowed[4], *session_groups[4];
static cmn_route_t route;
static cmn_session_t session;
static authz_policy_input_t get = {.method = {"GET", 3}, .path = {"/", 1}};
static cmn_strlist_t errors;

static int setup(void **state)
{
    memset(&route, 0, sizeof(route));
    route.line = 7;
    route.index = 3;
    route.allowed_users.items = users;
    route.allowed_domains.items = domains;
    route.allowed_groups.items = groups_allowed;
    memset(&session, 0, sizeof(session));
    session.id = "sid";
    session.user_id = "sub-123";
    session.email = "Alice@Example.COM";
    session.email_verified = true;
    session.groups.items = session_groups;
    session.claims = json_object();
    memset(&errors, 0, sizeof(errors));
    return 0;
}

static int teardown(void **state)
{
    json_decref(session.claims);
    json_decref(route.allowed_idp_claims);
    json_decref(route.policy);
    for (size_t i = 0; i < errors.len; i++) {
        free(errors.items[i]);
    }
    free(errors.items);
    return 0;
}

static void set_policy(const char *ppl)
{
    json_error_t jerr;

    json_decref(route.policy);
    route.policy = json_loads(ppl, JSON_DECODE_ANY, &jerr);
    assert_non_null(route.policy);
}

static bool has_reason(const authz_decision_t *d, const char *reason)
{
    for (size_t i = 0; i < d->num_reasons; i++) {
        if (strcmp(d->reasons[i], reason) == 0) {
            return true;
        }
    }
    return false;
}

/* compiles the route and decides `in` for `s`; the decision's single reason must be `reason` */
static authz_verdict_t decide(const authz_policy_input_t *in, const cmn_session_t *s,
                              const char *reason)
{
    authz_policy_t *p = authz_policy_compile(&route, "cfg.yaml", &errors);
    authz_decision_t d;

    if (p == NULL) {
        fail_msg("compile failed: %s", errors.len > 0 ? errors.items[0] : "?");
    }
    authz_policy_evaluate(p, in, s, &d);
    authz_policy_destroy(p);
    if (reason != NULL) {
        assert_int_equal(d.num_reasons, 1);
        assert_string_equal(d.reasons[0], reason);
    }
    return d.verdict;
}

static void test_no_rule_denies_everyone(void **state)
{
    assert_int_equal(decide(&get, &session, NULL), AUTHZ_VERDICT_DENY);
    /* no login redirect either: nothing in the policy asks for a user */
    assert_int_equal(decide(&get, NULL, NULL), AUTHZ_VERDICT_DENY);
    assert_int_equal(AUTHZ_VERDICT_DENY, 0);
}

static void test_legacy_users_are_ids_or_emails(void **state)
{
    authz_policy_t *p;
    authz_decision_t d;

    users[0] = "alice@example.com";
    route.allowed_users.len = 1;
    assert_int_equal(decide(&get, &session, "email-ok"), AUTHZ_VERDICT_ALLOW);

    users[0] = "sub-123";
    assert_int_equal(decide(&get, &session, "user-ok"), AUTHZ_VERDICT_ALLOW);

    /* user ids are case-sensitive; a failure names both criteria */
    users[0] = "SUB-123";
    p = authz_policy_compile(&route, "cfg.yaml", &errors);
    authz_policy_evaluate(p, &get, &session, &d);
    authz_policy_destroy(p);
    assert_int_equal(d.verdict, AUTHZ_VERDICT_DENY);
    assert_int_equal(d.num_reasons, 2);
    assert_true(has_reason(&d, "user-unauthorized"));
    assert_true(has_reason(&d, "email-unauthorized"));

    assert_int_equal(decide(&get, NULL, "user-unauthenticated"), AUTHZ_VERDICT_UNAUTHENTICATED);
}

static void test_legacy_domains(void **state)
{
    domains[0] = "EXAMPLE.com";
    route.allowed_domains.len = 1;
    assert_int_equal(decide(&get, &session, "domain-ok"), AUTHZ_VERDICT_ALLOW);

    session.email = "eve@evilexample.com";
    assert_int_equal(decide(&get, &session, "domain-unauthorized"), AUTHZ_VERDICT_DENY);
    session.email = "eve@sub.example.com";
    assert_int_equal(decide(&get, &session, "domain-unauthorized"), AUTHZ_VERDICT_DENY);

    /* DESIGN.md §3: an email the IdP marked unverified satisfies no domain criterion */
    session.email = "alice@example.com";
    session.email_verified = false;
    json_object_set_new(session.claims, "email_verified", json_false());
    assert_int_equal(decide(&get, &session, "domain-unauthorized"), AUTHZ_VERDICT_DENY);
    json_object_del(session.claims, "email_verified");
    assert_int_equal(decide(&get, &session, "domain-ok"), AUTHZ_VERDICT_ALLOW);
}

static void test_legacy_groups_and_claims(void **state)
{
    groups_allowed[0] = "admins";
    route.allowed_groups.len = 1;
    assert_int_equal(decide(&get, &session, "groups-unauthorized"), AUTHZ_VERDICT_DENY);
    session_groups[0] = "admins";
    session.groups.len = 1;
    assert_int_equal(decide(&get, &session, "groups-ok"), AUTHZ_VERDICT_ALLOW);

    route.allowed_groups.len = 0;
    route.allowed_idp_claims = json_pack("{s:[s,i]}", "level", "high", 2);
    json_object_set_new(session.claims, "level", json_string("2"));
    assert_int_equal(decide(&get, &session, "claim-unauthorized"), AUTHZ_VERDICT_DENY);
    json_object_set_new(session.claims, "level", json_pack("[i,i]", 1, 2));
    assert_int_equal(decide(&get, &session, "claim-ok"), AUTHZ_VERDICT_ALLOW);
}

static void test_legacy_public_and_preflight(void **state)
{
    authz_policy_input_t preflight = get;
    authz_policy_t *p;

    preflight.method = h2o_iovec_init(H2O_STRLIT("OPTIONS"));
    preflight.has_origin = true;
    preflight.has_preflight_method = true;

    route.cors_allow_preflight = true;
    users[0] = "bob@example.com";
    route.allowed_users.len = 1;
    assert_int_equal(decide(&preflight, NULL, "cors-request"), AUTHZ_VERDICT_ALLOW);
    /* the real request still needs a user */
    assert_int_equal(decide(&get, NULL, "user-unauthenticated"), AUTHZ_VERDICT_UNAUTHENTICATED);

    route.allowed_users.len = 0;
    route.cors_allow_preflight = false;
    route.allow_public_unauthenticated_access = true;
    assert_int_equal(decide(&get, NULL, "accept"), AUTHZ_VERDICT_ALLOW);
    p = authz_policy_compile(&route, "cfg.yaml", &errors);
    assert_false(authz_policy_needs_session(p));
    authz_policy_destroy(p);
}

/* §2.3: legacy fields and `policy` widen each other */
static void test_legacy_or_policy(void **state)
{
    authz_policy_input_t post = get;

    post.method = h2o_iovec_init(H2O_STRLIT("POST"));
    users[0] = "bob@example.com";
    route.allowed_users.len = 1;
    set_policy("{\"allow\": {\"or\": [{\"http_method\": \"GET\"}]}}");
    assert_int_equal(decide(&get, NULL, "http-method-ok"), AUTHZ_VERDICT_ALLOW);
    assert_int_equal(decide(&post, NULL, "user-unauthenticated"), AUTHZ_VERDICT_UNAUTHENTICATED);
}

/* §2.6: user-unauthenticated anywhere wins, then a holding deny, then allow */
static void test_outcome_order(void **state)
{
    set_policy("{\"allow\": {\"or\": [{\"accept\": true}]},"
               " \"deny\": {\"or\": [{\"email\": \"alice@example.com\"}]}}");
    assert_int_equal(decide(&get, NULL, "user-unauthenticated"), AUTHZ_VERDICT_UNAUTHENTICATED);
    assert_int_equal(decide(&get, &session, "email-ok"), AUTHZ_VERDICT_DENY);
    session.email = "bob@example.com";
    assert_int_equal(decide(&get, &session, "accept"), AUTHZ_VERDICT_ALLOW);

    /* a deny-only policy denies everyone */
    set_policy("[{\"deny\": {\"or\": [{\"reject\": 1}]}}]");
    assert_int_equal(decide(&get, &session, NULL), AUTHZ_VERDICT_DENY);
}

static void test_needs_session(void **state)
{
    authz_policy_t *p;

    set_policy("{\"allow\": {\"or\": [{\"http_path\": {\"starts_with\": \"/pub\"}}]}}");
    p = authz_policy_compile(&route, "cfg.yaml", &errors);
    assert_non_null(p);
    assert_false(authz_policy_needs_session(p));
    authz_policy_destroy(p);

    set_policy("{\"deny\": {\"not\": [{\"claim/org/team\": \"x\"}]}}");
    p = authz_policy_compile(&route, "cfg.yaml", &errors);
    assert_non_null(p);
    assert_true(authz_policy_needs_session(p));
    authz_policy_destroy(p);
    assert_false(authz_policy_needs_session(NULL));
}

static bool has_error(const char *needle)
{
    for (size_t i = 0; i < errors.len; i++) {
        if (strstr(errors.items[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

/* every problem at once, each with file, line and route */
static void test_validation_messages(void **state)
{
    route.allow_public_unauthenticated_access = true;
    route.allow_any_authenticated_user = true;
    domains[0] = "example.com";
    route.allowed_domains.len = 1;
    set_policy("[{\"allow\": {\"and\": [{\"emial\": \"a@b\"}, {\"or\": [{\"accept\": 1}]}],"
               "             \"xor\": []}},"
               " {\"permit\": {}},"
               " {\"deny\": {\"or\": [{\"email\": {\"in\": \"x\"}},"
               "                     {\"groups\": {\"contains\": 1}},"
               "                     {\"source_ip\": [\"10.0.0.0/33\"]}, {\"claim\": 1},"
               "                     {\"time_of_day\": {\"after\": \"9:00\"}},"
               "                     {\"time_of_day\": {\"timezone\": \"Mars/Olympus\","
               "                                        \"after\": \"9:00\"}},"
               "                     {\"date\": {\"after\": \"yesterday\"}},"
               "                     {\"day_of_week\": \"funday\"}, {}, 3]}}]");

    assert_null(authz_policy_compile(&route, "cfg.yaml", &errors));
    for (size_t i = 0; i < errors.len; i++) {
        assert_true(strncmp(errors.items[i], "[cfg.yaml:7] routes[3]", 22) == 0);
    }
    assert_true(has_error("routes[3]: allow_public_unauthenticated_access cannot be combined "
                          "with allow_any_authenticated_user"));
    assert_true(has_error("allow_public_unauthenticated_access cannot be combined with "
                          "allowed_domains"));
    assert_true(has_error("allow_any_authenticated_user cannot be combined with "
                          "allowed_domains"));
    assert_true(has_error("routes[3].policy: unknown criterion \"emial\" (at [0].allow.and[0])"));
    assert_true(has_error("unknown criterion \"or\" (operators do not nest) (at "
                          "[0].allow.and[1])"));
    assert_true(has_error("unknown operator \"xor\""));
    assert_true(has_error("action must be allow or deny, not \"permit\""));
    assert_true(has_error("\"in\" needs a list (at [2].deny.or[0])"));
    assert_true(has_error("unknown list matcher \"contains\""));
    assert_true(has_error("\"10.0.0.0/33\" is neither an IP address nor a CIDR range"));
    assert_true(has_error("criterion \"claim\" needs a name: claim/NAME"));
    assert_true(has_error("time_of_day needs timezone"));
    assert_true(has_error("timezone \"Mars/Olympus\""));
    assert_true(has_error("date: after must be an ISO 8601 date"));
    assert_true(has_error("day_of_week needs"));
    assert_true(has_error("exactly one key, not 0 (at [2].deny.or[8])"));
    assert_true(has_error("a criterion must be an object with one key (at [2].deny.or[9])"));
    assert_int_equal(errors.len, 17);
}

static void test_policy_shapes(void **state)
{
    set_policy("\"allow everything\"");
    assert_null(authz_policy_compile(&route, "cfg.yaml", &errors));
    assert_true(has_error("a policy is a rule or a list of rules"));

    /* empty bodies and lists are valid and contribute nothing (P109, P122) */
    set_policy("[{\"allow\": {\"and\": [], \"or\": [], \"not\": [], \"action\": \"x\"}},"
               " {\"deny\": {}}]");
    assert_int_equal(decide(&get, &session, NULL), AUTHZ_VERDICT_DENY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_rule_denies_everyone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_users_are_ids_or_emails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_groups_and_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_public_and_preflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_or_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_shapes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
