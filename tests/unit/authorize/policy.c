/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/policy.c: each legacy field allowing and denying. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "authorize/policy.h"

static char *users[4], *domains[4], *groups_allowed[4], *session_groups[4];
static cmn_route_t route;
static cmn_session_t session;
static authz_policy_input_t get = {.method = {"GET", 3}, .path = {"/", 1}};

static int setup(void **state)
{
    memset(&route, 0, sizeof(route));
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
    return 0;
}

static int teardown(void **state)
{
    json_decref(session.claims);
    json_decref(route.allowed_idp_claims);
    return 0;
}

static authz_verdict_t eval(const cmn_session_t *s, const char **reason)
{
    return authz_policy_evaluate(&route, &get, s, reason);
}

static void test_no_rule_denies(void **state)
{
    const char *reason = NULL;

    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    assert_string_equal(reason, "no-allow-rule");
    /* the zero value of the enum is the denial */
    assert_int_equal(AUTHZ_VERDICT_DENY, 0);
}

static void test_allowed_users(void **state)
{
    const char *reason = NULL;

    users[0] = "alice@example.com";
    route.allowed_users.len = 1;
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);

    users[0] = "SUB-123"; /* the user id, case-insensitive */
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);

    users[0] = "bob@example.com";
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    assert_string_equal(reason, "user-unauthorized");
}

static void test_allowed_domains(void **state)
{
    const char *reason = NULL;

    domains[0] = "example.com";
    route.allowed_domains.len = 1;
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);
    assert_string_equal(reason, "allowed-domain");

    session.email = "eve@evilexample.com"; /* no suffix match without a dot boundary */
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    assert_string_equal(reason, "email-unauthorized");

    session.email = "eve@sub.example.com"; /* the whole domain, not a parent */
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);

    session.email = "eve@example.com.evil";
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);

    session.email = "noatsign";
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
}

static void test_email_verified_false(void **state)
{
    const char *reason = NULL;

    domains[0] = "example.com";
    route.allowed_domains.len = 1;
    users[0] = "alice@example.com";
    route.allowed_users.len = 1;
    session.email_verified = false;
    json_object_set_new(session.claims, "email_verified", json_false());
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);

    /* the IdP said nothing about verification: the email counts */
    json_object_del(session.claims, "email_verified");
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);
}

static void test_allowed_groups(void **state)
{
    const char *reason = NULL;

    groups_allowed[0] = "admins";
    groups_allowed[1] = "ops";
    route.allowed_groups.len = 2;
    session_groups[0] = "devs";
    session.groups.len = 1;
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    assert_string_equal(reason, "groups-unauthorized");

    session_groups[1] = "ops";
    session.groups.len = 2;
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);
}

static void test_allowed_idp_claims(void **state)
{
    const char *reason = NULL;

    route.allowed_idp_claims = json_pack("{s:[s,s]}", "department", "eng", "ops");
    json_object_set_new(session.claims, "department", json_string("sales"));
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    assert_string_equal(reason, "claims-unauthorized");

    json_object_set_new(session.claims, "department", json_string("ops"));
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);

    /* an array claim holds when any element is allowed */
    json_object_set_new(session.claims, "department", json_pack("[s,s]", "sales", "eng"));
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);
    json_object_set_new(session.claims, "department", json_pack("[s,s]", "sales", "hr"));
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);

    json_object_del(session.claims, "department");
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
}

static void test_public_and_any_authenticated(void **state)
{
    const char *reason = NULL;

    route.allow_public_unauthenticated_access = true;
    assert_true(authz_policy_needs_no_session(&route, &get));
    assert_int_equal(eval(NULL, &reason), AUTHZ_VERDICT_ALLOW);

    route.allow_public_unauthenticated_access = false;
    route.allow_any_authenticated_user = true;
    assert_false(authz_policy_needs_no_session(&route, &get));
    assert_int_equal(eval(NULL, &reason), AUTHZ_VERDICT_UNAUTHENTICATED);
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_ALLOW);
}

static void test_no_session_is_unauthenticated_not_denied(void **state)
{
    const char *reason = NULL;

    domains[0] = "example.com";
    route.allowed_domains.len = 1;
    assert_int_equal(eval(NULL, &reason), AUTHZ_VERDICT_UNAUTHENTICATED);
}

static void test_cors_preflight(void **state)
{
    const char *reason = NULL;
    authz_policy_input_t preflight = {.method = {"OPTIONS", 7}, .path = {"/", 1},
                                      .has_origin = true, .has_preflight_method = true};
    authz_policy_input_t bare_options = preflight;

    bare_options.has_preflight_method = false;
    assert_int_equal(authz_policy_evaluate(&route, &preflight, NULL, &reason),
                     AUTHZ_VERDICT_UNAUTHENTICATED);
    route.cors_allow_preflight = true;
    assert_true(authz_policy_needs_no_session(&route, &preflight));
    assert_int_equal(authz_policy_evaluate(&route, &preflight, NULL, &reason),
                     AUTHZ_VERDICT_ALLOW);
    assert_false(authz_policy_needs_no_session(&route, &bare_options));
    assert_int_equal(authz_policy_evaluate(&route, &bare_options, NULL, &reason),
                     AUTHZ_VERDICT_UNAUTHENTICATED);
}

static void test_ppl_fails_closed(void **state)
{
    const char *reason = NULL;

    route.allow_any_authenticated_user = true;
    route.policy = json_object();
    assert_int_equal(eval(&session, &reason), AUTHZ_VERDICT_DENY);
    json_decref(route.policy);
    route.policy = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_rule_denies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email_verified_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_idp_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_and_any_authenticated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_session_is_unauthenticated_not_denied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cors_preflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ppl_fails_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
