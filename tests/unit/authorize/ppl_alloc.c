/* SPDX-License-Identifier: MIT */
/* Checks that evaluating a compiled policy never allocates, with malloc itself interposed. */
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

/*
 * Without sanitizers the binary defines malloc, calloc and realloc and counts calls while
 * `counting` is set. ASan owns those symbols, so under it only jansson's allocator is counted
 * (json_set_alloc_funcs); ASan itself then checks the evaluator's memory accesses.
 */
static volatile size_t allocations;
static volatile int counting;

#if defined(__SANITIZE_ADDRESS__)
#define INTERPOSED 0
#else
#define INTERPOSED 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size)
{
    allocations += counting;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    allocations += counting;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    allocations += counting;
    return __libc_realloc(p, size);
}
#endif

static void *json_counting_malloc(size_t size)
{
    allocations += counting;
    return malloc(size);
}

/* every criterion kind, under every operator, with a deny rule too */
static const char policy_json[] =
    "[{\"allow\": {"
    "  \"and\": [{\"accept\": 1}, {\"authenticated_user\": 1}, {\"user\": {\"in\": [\"u\"]}},"
    "           {\"email\": {\"contains\": \"EXAMPLE\"}}, {\"domain\": {\"ends_with\": \"com\"}},"
    "           {\"groups\": {\"has\": \"g\", \"exclude\": \"x\"}},"
    "           {\"claim/org/team\": {\"has\": \"eng\"}}, {\"claim/n\": [1, 2]}],"
    "  \"or\": [{\"http_method\": \"GET\"}, {\"http_path\": {\"starts_with\": \"/a\"}},"
    "          {\"cors_preflight\": 1}, {\"source_ip\": [\"10.0.0.0/8\", \"::1\"]}],"
    "  \"not\": [{\"reject\": 1}, {\"date\": {\"before\": \"2000-01-01\"}}],"
    "  \"nor\": [{\"day_of_week\": \"mon-fri\"}, {\"time_of_day\": {\"timezone\":"
    "           \"Europe/Berlin\", \"after\": \"9:00\", \"before\": \"5 PM\"}}]}},"
    " {\"deny\": {\"or\": [{\"email\": {\"is\": \"bad@example.com\"}}]}}]";

static void test_evaluate_allocates_nothing(void **state)
{
    cmn_route_t route;
    cmn_strlist_t errors = {NULL, 0};
    char *groups[] = {"g"};
    cmn_session_t s = {.id = "sid", .user_id = "u", .email = "a@example.com",
                       .email_verified = true, .groups = {groups, 1}};
    authz_policy_input_t in = {.method = {"GET", 3}, .path = {"/a/b", 4}, .now = 1772625600};
    struct sockaddr_in *sin = (struct sockaddr_in *)&in.client_ip;
    authz_policy_t *p;
    authz_decision_t d;

    json_set_alloc_funcs(json_counting_malloc, free);
    memset(&route, 0, sizeof(route));
    route.policy = json_loads(policy_json, 0, NULL);
    assert_non_null(route.policy);
    route.allowed_domains.items = (char *[]){"example.com"};
    route.allowed_domains.len = 1;
    p = authz_policy_compile(&route, "t.yaml", &errors);
    if (p == NULL) {
        fail_msg("%s", errors.len > 0 ? errors.items[0] : "?");
    }
    s.claims = json_pack("{s:{s:[s]}, s:i}", "org", "team", "eng", "n", 1);
    in.has_client_ip = true;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, "10.1.2.3", &sin->sin_addr);

    /* the counter must see allocations at all, or the check below would prove nothing */
    counting = 1;
    free(json_dumps(s.claims, 0));
    counting = 0;
    assert_true(allocations > 0);

    allocations = 0;
    counting = 1;
    for (int i = 0; i < 100; i++) {
        authz_policy_evaluate(p, &in, &s, &d);
        authz_policy_evaluate(p, &in, NULL, &d);
    }
    counting = 0;
    assert_int_equal(allocations, 0);
    assert_int_equal(d.verdict, AUTHZ_VERDICT_UNAUTHENTICATED);
    authz_policy_evaluate(p, &in, &s, &d);
    assert_int_equal(d.verdict, AUTHZ_VERDICT_ALLOW);
    printf("interposed malloc: %s\n", INTERPOSED ? "yes" : "no (ASan: jansson only)");

    authz_policy_destroy(p);
    json_decref(s.claims);
    json_decref(route.policy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate_allocates_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
