/* SPDX-License-Identifier: MIT */
/* Unit tests of the memory store through the store interface: records, versions, changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common/err.h"
#include "databroker/store.h"

static time_t fake_now = 1700000000;

static time_t fake_clock(void)
{
    return fake_now;
}

/* what the last callback saw (copied: results are borrowed) */
typedef struct st_seen_t {
    int calls;
    const char *err;
    json_t *record;
    json_t *records;
    json_t *lines; /* get_many: its ndjson, one array entry per line */
    uint64_t version;
    char cursor[BROKER_CURSOR_MAX];
    bool has_cursor;
} seen_t;

static void on_result(void *ctx, const broker_result_t *res)
{
    seen_t *seen = ctx;

    seen->calls++;
    seen->err = res->err;
    json_decref(seen->record);
    json_decref(seen->records);
    seen->record = res->record == NULL ? NULL : json_deep_copy(res->record);
    seen->records = res->records == NULL ? NULL : json_deep_copy(res->records);
    json_decref(seen->lines);
    seen->lines = NULL;
    if (res->ndjson.base != NULL) {
        const char *p = res->ndjson.base, *end = p + res->ndjson.len;
        seen->lines = json_array();
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            assert_non_null(nl); /* every line ends with a newline */
            json_array_append_new(seen->lines, json_loadb(p, (size_t)(nl - p), 0, NULL));
            p = nl + 1;
        }
    }
    seen->version = res->version;
    seen->has_cursor = res->cursor != NULL;
    if (res->cursor != NULL) {
        snprintf(seen->cursor, sizeof(seen->cursor), "%s", res->cursor);
    }
}

static void seen_clear(seen_t *seen)
{
    json_decref(seen->record);
    json_decref(seen->records);
    json_decref(seen->lines);
    memset(seen, 0, sizeof(*seen));
}

static int setup(void **state)
{
    broker_store_t *s = broker_store_memory_create(NULL);

    if (s == NULL) {
        return -1;
    }
    fake_now = 1700000000;
    broker_store_memory_set_clock(s, fake_clock);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    broker_store_destroy(*state);
    return 0;
}

static uint64_t record_version(const json_t *record)
{
    return (uint64_t)json_integer_value(json_object_get(record, "version"));
}

/* put with data {"n": n}; returns the new version */
static uint64_t put_n(broker_store_t *s, const char *type, const char *id, int n, uint64_t ttl)
{
    seen_t seen = {0};
    json_t *data = json_pack("{s:i}", "n", n);
    uint64_t v;

    s->ops->put(s, type, id, data, ttl, on_result, &seen);
    json_decref(data);
    assert_int_equal(seen.calls, 1);
    assert_null(seen.err);
    v = record_version(seen.record);
    seen_clear(&seen);
    return v;
}

static void test_put_then_get(void **state)
{
    broker_store_t *s = *state;
    seen_t seen = {0};
    json_t *data = json_pack("{s:s, s:[]}", "user", "alice", "groups");

    assert_true(s->ops->ready(s));
    s->ops->put(s, "session", "s1", data, 60, on_result, &seen);
    assert_int_equal(seen.calls, 1);
    assert_null(seen.err);
    assert_string_equal(json_string_value(json_object_get(seen.record, "type")), "session");
    assert_string_equal(json_string_value(json_object_get(seen.record, "id")), "s1");
    assert_int_equal(record_version(seen.record), 1);
    assert_true(json_equal(json_object_get(seen.record, "data"), data));
    assert_int_equal(json_integer_value(json_object_get(seen.record, "expires_at")),
                     fake_now + 60);
    seen_clear(&seen);

    s->ops->get(s, "session", "s1", on_result, &seen);
    assert_null(seen.err);
    assert_true(json_equal(json_object_get(seen.record, "data"), data));
    seen_clear(&seen);

    /* same id, other type: a different record */
    s->ops->get(s, "user", "s1", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    assert_null(seen.record);
    seen_clear(&seen);

    /* no ttl: expires_at null */
    s->ops->put(s, "user", "u1", data, 0, on_result, &seen);
    assert_true(json_is_null(json_object_get(seen.record, "expires_at")));
    seen_clear(&seen);
    json_decref(data);
}

static void test_versions_only_go_up(void **state)
{
    broker_store_t *s = *state;
    seen_t seen = {0};
    uint64_t v1 = put_n(s, "t", "a", 1, 0);
    uint64_t v2 = put_n(s, "t", "a", 2, 0);
    uint64_t v3 = put_n(s, "t", "b", 3, 0);

    assert_true(v1 < v2 && v2 < v3);
    s->ops->del(s, "t", "a", on_result, &seen);
    assert_null(seen.err);
    assert_int_equal(seen.version, v3 + 1);
    seen_clear(&seen);

    /* deleting what is absent changes nothing */
    s->ops->del(s, "t", "a", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    seen_clear(&seen);
    assert_int_equal(put_n(s, "t", "a", 4, 0), v3 + 2);
    assert_int_equal(s->changes.latest, v3 + 2);
}

static void test_take_once(void **state)
{
    broker_store_t *s = *state;
    seen_t seen = {0};
    uint64_t v = put_n(s, "handoff", "h1", 7, 60);

    s->ops->take(s, "handoff", "h1", on_result, &seen);
    assert_null(seen.err);
    assert_int_equal(record_version(seen.record), v);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(seen.record, "data"),
                                                        "n")), 7);
    seen_clear(&seen);

    s->ops->get(s, "handoff", "h1", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    seen_clear(&seen);
    s->ops->take(s, "handoff", "h1", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    assert_null(seen.record);
    seen_clear(&seen);
    assert_int_equal(s->changes.latest, v + 1); /* the take bumped it once, the miss not */
}

static void test_changes_recorded(void **state)
{
    broker_store_t *s = *state;
    broker_changes_t *ch = &s->changes;
    seen_t seen = {0};
    size_t first;
    size_t n;

    put_n(s, "a", "x", 1, 0);
    put_n(s, "b", "y", 2, 0);
    s->ops->take(s, "a", "x", on_result, &seen);
    seen_clear(&seen);

    n = broker_changes_after(ch, 0, BROKER_CHANGES_PAGE_MAX, &first);
    assert_int_equal(n, 3);
    assert_string_equal(broker_changes_at(ch, first)->type, "a");
    assert_false(broker_changes_at(ch, first)->deleted);
    assert_string_equal(broker_changes_at(ch, first + 1)->id, "y");
    assert_int_equal(broker_changes_at(ch, first + 2)->version, 3);
    assert_true(broker_changes_at(ch, first + 2)->deleted);

    n = broker_changes_after(ch, 2, BROKER_CHANGES_PAGE_MAX, &first);
    assert_int_equal(n, 1);
    assert_int_equal(broker_changes_at(ch, first)->version, 3);
    assert_int_equal(broker_changes_after(ch, 3, BROKER_CHANGES_PAGE_MAX, &first), 0);

    assert_false(broker_changes_need_resync(ch, 0, NULL));
    assert_false(broker_changes_need_resync(ch, 3, ch->epoch));
    assert_true(broker_changes_need_resync(ch, 4, NULL));     /* newer than the store */
    assert_true(broker_changes_need_resync(ch, 3, "other")); /* another epoch */
    assert_int_equal(strlen(ch->epoch), 32);
}

/* get_many: the records of the ids that exist and have not expired, nothing for the rest */
static void test_get_many(void **state)
{
    broker_store_t *s = *state;
    const char *ids[] = {"m3", "absent", "m1", "m-short"};
    seen_t seen = {0};
    bool got1 = false, got3 = false;
    size_t i;
    json_t *rec;

    put_n(s, "session", "m1", 1, 0);
    put_n(s, "session", "m3", 3, 100);
    put_n(s, "session", "m-short", 5, 10);
    put_n(s, "user", "m2", 2, 0);
    fake_now += 10;

    s->ops->get_many(s, "session", ids, 4, on_result, &seen);
    assert_int_equal(seen.calls, 1);
    assert_null(seen.err);
    assert_int_equal(json_array_size(seen.lines), 2);
    json_array_foreach(seen.lines, i, rec) {
        const char *id = json_string_value(json_object_get(rec, "id"));
        json_int_t n = json_integer_value(json_object_get(json_object_get(rec, "data"), "n"));
        got1 |= strcmp(id, "m1") == 0 && n == 1;
        got3 |= strcmp(id, "m3") == 0 && n == 3;
    }
    assert_true(got1 && got3);
    seen_clear(&seen);

    /* another type's id is not found under this one */
    s->ops->get_many(s, "session", (const char *[]){"m2"}, 1, on_result, &seen);
    assert_null(seen.err);
    assert_int_equal(json_array_size(seen.lines), 0);
    seen_clear(&seen);
}

static void test_expiry(void **state)
{
    broker_store_t *s = *state;
    seen_t seen = {0};
    size_t first;
    uint64_t v = put_n(s, "login", "l1", 1, 10);

    put_n(s, "login", "l2", 2, 100);
    fake_now += 9;
    s->ops->get(s, "login", "l1", on_result, &seen);
    assert_null(seen.err);
    seen_clear(&seen);

    /* expired on read: gone, and the removal is a change */
    fake_now += 1;
    s->ops->get(s, "login", "l1", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    seen_clear(&seen);
    s->ops->take(s, "login", "l1", on_result, &seen);
    assert_ptr_equal(seen.err, cmn_err_not_found);
    seen_clear(&seen);
    assert_int_equal(broker_changes_after(&s->changes, v + 1, 10, &first), 1);
    assert_true(broker_changes_at(&s->changes, first)->deleted);
    assert_string_equal(broker_changes_at(&s->changes, first)->id, "l1");

    /* the sweep removes what nobody reads */
    fake_now += 100;
    broker_store_memory_sweep(s);
    assert_int_equal(broker_changes_after(&s->changes, v + 2, 10, &first), 1);
    assert_string_equal(broker_changes_at(&s->changes, first)->id, "l2");
    s->ops->query(s, "login", NULL, 10, on_result, &seen);
    assert_null(seen.err);
    assert_int_equal(json_array_size(seen.records), 0);
    seen_clear(&seen);
}

static void test_query_pages(void **state)
{
    broker_store_t *s = *state;
    seen_t seen = {0};
    char id[16];
    char cursor[BROKER_CURSOR_MAX] = "";
    int found[10] = {0};
    int pages = 0;
    int i;

    for (i = 9; i >= 0; i--) {
        snprintf(id, sizeof(id), "q%d", i);
        put_n(s, "qt", id, i, i == 5 ? 1 : 0);
    }
    put_n(s, "other", "q1", 100, 0);
    fake_now += 5; /* q5 expired: not listed */

    do {
        s->ops->query(s, "qt", cursor[0] == '\0' ? NULL : cursor, 3, on_result, &seen);
        assert_null(seen.err);
        assert_true(json_array_size(seen.records) <= 3);
        for (i = 0; i != (int)json_array_size(seen.records); i++) {
            json_t *rec = json_array_get(seen.records, (size_t)i);
            int n = (int)json_integer_value(json_object_get(json_object_get(rec, "data"), "n"));
            assert_string_equal(json_string_value(json_object_get(rec, "type")), "qt");
            assert_true(n >= 0 && n < 10);
            found[n]++;
        }
        snprintf(cursor, sizeof(cursor), "%s", seen.has_cursor ? seen.cursor : "");
        seen_clear(&seen);
        pages++;
    } while (cursor[0] != '\0' && pages < 10);

    assert_int_equal(pages, 3); /* 9 live records, 3 per page */
    for (i = 0; i != 10; i++) {
        assert_int_equal(found[i], i == 5 ? 0 : 1);
    }

    s->ops->query(s, "none", NULL, 3, on_result, &seen);
    assert_null(seen.err);
    assert_int_equal(json_array_size(seen.records), 0);
    assert_false(seen.has_cursor);
    seen_clear(&seen);
}

typedef struct st_test_waiter_t {
    broker_waiter_t super;
    int woken;
} test_waiter_t;

static void on_wake(broker_waiter_t *w)
{
    ((test_waiter_t *)w)->woken++;
}

static void test_waiters_woken_by_writes(void **state)
{
    broker_store_t *s = *state;
    test_waiter_t w1 = {{{NULL, NULL}, on_wake}, 0};
    test_waiter_t w2 = {{{NULL, NULL}, on_wake}, 0};

    broker_changes_wait(&s->changes, &w1.super);
    broker_changes_wait(&s->changes, &w2.super);
    broker_changes_unwait(&w2.super);
    put_n(s, "t", "x", 1, 0);
    assert_int_equal(w1.woken, 1);
    assert_int_equal(w2.woken, 0);
    put_n(s, "t", "x", 2, 0); /* woken once per wait: w1 is no longer linked */
    assert_int_equal(w1.woken, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_only_go_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiters_woken_by_writes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
