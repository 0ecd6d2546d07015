/* SPDX-License-Identifier: MIT */
/* Unit tests for the date, day_of_week and time_of_day criteria and the TZif time zone code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "authorize/ppl.h"

static int64_t at(const char *iso)
{
    int64_t t = 0;

    assert_int_equal(ppl_parse_iso8601(iso, &t), 0);
    return t;
}

static void test_iso8601(void **state)
{
    int64_t t;

    assert_int_equal(at("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(at("2026-03-04T12:00:00Z"), 1772625600);
    assert_int_equal(at("2026-03-04T12:00:00"), 1772625600); /* no zone: UTC */
    assert_int_equal(at("2026-03-04T13:30:00+01:30"), 1772625600);
    assert_int_equal(at("2026-03-04 07:00:00.250-05:00"), 1772625600);
    assert_int_equal(at("2026-03-04"), 1772582400);
    assert_int_equal(at("2024-02-29T00:00Z"), 1709164800);
    assert_int_equal(ppl_parse_iso8601("2023-02-29", &t), -1);
    assert_int_equal(ppl_parse_iso8601("2026-13-01", &t), -1);
    assert_int_equal(ppl_parse_iso8601("2026-03-04T25:00", &t), -1);
    assert_int_equal(ppl_parse_iso8601("2026-03-04Tnoon", &t), -1);
    assert_int_equal(ppl_parse_iso8601("yesterday", &t), -1);
}

static void test_clock(void **state)
{
    int32_t s;

    assert_int_equal(ppl_parse_clock("9:00", &s), 0);
    assert_int_equal(s, 9 * 3600);
    assert_int_equal(ppl_parse_clock("17:30:15", &s), 0);
    assert_int_equal(s, 17 * 3600 + 30 * 60 + 15);
    assert_int_equal(ppl_parse_clock("5:00PM", &s), 0);
    assert_int_equal(s, 17 * 3600);
    assert_int_equal(ppl_parse_clock("9 AM", &s), 0);
    assert_int_equal(s, 9 * 3600);
    assert_int_equal(ppl_parse_clock("12am", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(ppl_parse_clock("12:30 pm", &s), 0);
    assert_int_equal(s, 12 * 3600 + 1800);
    assert_int_equal(ppl_parse_clock("13 PM", &s), -1);
    assert_int_equal(ppl_parse_clock("24:00", &s), -1);
    assert_int_equal(ppl_parse_clock("9:5", &s), -1);
    assert_int_equal(ppl_parse_clock("nine", &s), -1);
}

static void load(const char *name, ppl_arena_t *arena, ppl_tz_t *tz)
{
    cmn_strlist_t errors = {NULL, 0};
    ppl_compile_t c = {.arena = arena, .errors = &errors, .file = "t", .line = 1, .name = "z"};

    if (ppl_tz_load(&c, name, tz) != 0) {
        fail_msg("%s: %s", name, errors.len > 0 ? errors.items[0] : "?");
    }
}

static void test_zones(void **state)
{
    ppl_arena_t arena = {0};
    ppl_tz_t ny, syd, kol, utc;

    load("America/New_York", &arena, &ny);
    load("Australia/Sydney", &arena, &syd);
    load("Asia/Kolkata", &arena, &kol);
    load("UTC", &arena, &utc);

    assert_int_equal(ppl_tz_offset(&ny, at("2026-03-04T15:00:00Z")), -5 * 3600);
    assert_int_equal(ppl_tz_offset(&ny, at("2026-07-01T15:00:00Z")), -4 * 3600);
    /* DST starts 2026-03-08 at 2:00 EST = 07:00 UTC */
    assert_int_equal(ppl_tz_offset(&ny, at("2026-03-08T06:59:59Z")), -5 * 3600);
    assert_int_equal(ppl_tz_offset(&ny, at("2026-03-08T07:00:00Z")), -4 * 3600);
    /* past the table: the POSIX rule of the footer */
    assert_int_equal(ppl_tz_offset(&ny, at("2100-07-01T12:00:00Z")), -4 * 3600);
    assert_int_equal(ppl_tz_offset(&ny, at("2100-12-01T12:00:00Z")), -5 * 3600);
    /* southern hemisphere: summer time across the new year */
    assert_int_equal(ppl_tz_offset(&syd, at("2026-01-15T00:00:00Z")), 11 * 3600);
    assert_int_equal(ppl_tz_offset(&syd, at("2026-07-15T00:00:00Z")), 10 * 3600);
    assert_int_equal(ppl_tz_offset(&syd, at("2150-01-15T00:00:00Z")), 11 * 3600);
    assert_int_equal(ppl_tz_offset(&syd, at("2150-07-15T00:00:00Z")), 10 * 3600);
    assert_int_equal(ppl_tz_offset(&kol, at("2026-03-04T00:00:00Z")), 5 * 3600 + 1800);
    assert_int_equal(ppl_tz_offset(&utc, at("2026-03-04T00:00:00Z")), 0);
    ppl_arena_clear(&arena);
}

static void test_posix_rules(void **state)
{
    ppl_tz_t tz;

    memset(&tz, 0, sizeof(tz));
    assert_int_equal(ppl_tz_parse_posix("CET-1CEST,M3.5.0,M10.5.0/3", &tz), 0);
    assert_int_equal(ppl_tz_offset(&tz, at("2030-03-31T00:59:59Z")), 3600);
    assert_int_equal(ppl_tz_offset(&tz, at("2030-03-31T01:00:00Z")), 7200);
    assert_int_equal(ppl_tz_offset(&tz, at("2030-10-27T00:59:59Z")), 7200);
    assert_int_equal(ppl_tz_offset(&tz, at("2030-10-27T01:00:00Z")), 3600);
    assert_int_equal(ppl_tz_parse_posix("<+0330>-3:30", &tz), 0);
    assert_int_equal(ppl_tz_offset(&tz, 0), 3 * 3600 + 1800);
    assert_int_equal(ppl_tz_parse_posix("EST", &tz), -1);
    assert_int_equal(ppl_tz_parse_posix("EST5EDT,M13.1.0,M11.1.0", &tz), -1);
}

static authz_verdict_t run(const char *ppl, const char *now)
{
    cmn_route_t route;
    cmn_strlist_t errors = {NULL, 0};
    authz_policy_input_t in = {.method = {"GET", 3}, .path = {"/", 1}};
    json_error_t jerr;
    authz_policy_t *p;
    authz_decision_t d;

    memset(&route, 0, sizeof(route));
    route.policy = json_loads(ppl, 0, &jerr);
    assert_non_null(route.policy);
    p = authz_policy_compile(&route, "t.yaml", &errors);
    if (p == NULL) {
        fail_msg("%s: %s", ppl, errors.len > 0 ? errors.items[0] : "?");
    }
    in.now = (time_t)at(now);
    authz_policy_evaluate(p, &in, NULL, &d);
    authz_policy_destroy(p);
    json_decref(route.policy);
    free(errors.items);
    assert_int_equal(d.num_reasons, 1);
    return d.verdict;
}

#define ALLOW AUTHZ_VERDICT_ALLOW
#define DENY AUTHZ_VERDICT_DENY

static void test_criteria(void **state)
{
    static const char ny[] = "{\"allow\": {\"and\": [{\"time_of_day\": {\"timezone\": "
                             "\"America/New_York\", \"after\": \"9 AM\","
                             " \"before\": \"17:00\"}}]}}";
    static const char night[] = "{\"allow\": {\"and\": [{\"time_of_day\": {\"timezone\": \"UTC\","
                                " \"after\": \"22:00\", \"before\": \"6:00\"}}]}}";
    static const char weekdays[] = "{\"allow\": {\"and\": [{\"day_of_week\": \"mon-fri\"}]}}";
    static const char wrap[] =
        "{\"allow\": {\"and\": [{\"day_of_week\": \"Friday - mon, wed\"}]}}";
    static const char tokyo[] = "{\"allow\": {\"and\": [{\"day_of_week\": {\"days\": \"sat\","
                                " \"timezone\": \"Asia/Tokyo\"}}]}}";
    static const char date[] = "{\"allow\": {\"and\": [{\"date\": {\"after\": \"2026-01-01\","
                               " \"before\": \"2026-02-01T00:00:00Z\"}}]}}";

    assert_int_equal(run(ny, "2026-03-04T15:00:00Z"), ALLOW); /* 10:00 EST */
    assert_int_equal(run(ny, "2026-03-04T22:30:00Z"), DENY);  /* 17:30 EST */
    assert_int_equal(run(ny, "2026-07-04T13:30:00Z"), ALLOW); /* 9:30 EDT */
    assert_int_equal(run(ny, "2026-01-04T13:30:00Z"), DENY);  /* 8:30 EST */
    assert_int_equal(run(night, "2026-03-04T23:00:00Z"), ALLOW);
    assert_int_equal(run(night, "2026-03-04T05:59:59Z"), ALLOW);
    assert_int_equal(run(night, "2026-03-04T12:00:00Z"), DENY);
    assert_int_equal(run(weekdays, "2026-03-04T12:00:00Z"), ALLOW); /* Wednesday */
    assert_int_equal(run(weekdays, "2026-03-07T12:00:00Z"), DENY);  /* Saturday */
    assert_int_equal(run(wrap, "2026-03-08T12:00:00Z"), ALLOW);     /* Sunday */
    assert_int_equal(run(wrap, "2026-03-10T12:00:00Z"), DENY);      /* Tuesday */
    assert_int_equal(run(wrap, "2026-03-11T12:00:00Z"), ALLOW);     /* Wednesday */
    assert_int_equal(run(tokyo, "2026-03-06T16:00:00Z"), ALLOW);    /* Saturday 01:00 JST */
    assert_int_equal(run(tokyo, "2026-03-06T14:00:00Z"), DENY);     /* Friday 23:00 JST */
    assert_int_equal(run(date, "2026-01-15T00:00:00Z"), ALLOW);
    assert_int_equal(run(date, "2026-02-01T00:00:00Z"), DENY);
    assert_int_equal(run(date, "2025-12-31T23:59:59Z"), DENY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso8601),  cmocka_unit_test(test_clock),
        cmocka_unit_test(test_zones),    cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_criteria),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
