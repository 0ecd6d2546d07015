/* SPDX-License-Identifier: MIT */
/* Unit tests of the change ring: wrap-around, gaps, resets and the resync rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "databroker/changes.h"

static int setup(void **state)
{
    static broker_changes_t c;

    if (broker_changes_init(&c, 4) != 0) {
        return -1;
    }
    broker_changes_reset(&c, "e1", 10);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    broker_changes_dispose(*state);
    return 0;
}

static void test_empty_after_reset(void **state)
{
    broker_changes_t *c = *state;
    size_t first;

    assert_int_equal(c->latest, 10);
    assert_int_equal(broker_changes_oldest(c), 11);
    assert_int_equal(broker_changes_after(c, 10, 100, &first), 0);
    assert_false(broker_changes_need_resync(c, 10, "e1"));
    assert_true(broker_changes_need_resync(c, 9, "e1")); /* history before the reset is gone */
    assert_true(broker_changes_need_resync(c, 11, NULL));
}

static void test_wraps_and_forgets_oldest(void **state)
{
    broker_changes_t *c = *state;
    size_t first;
    size_t n;
    uint64_t v;

    for (v = 11; v <= 16; v++) {
        assert_int_equal(broker_changes_append(c, "t", "id", v, v % 2 == 0), 0);
    }
    assert_int_equal(c->count, 4);
    assert_int_equal(broker_changes_oldest(c), 13);
    assert_true(broker_changes_need_resync(c, 11, NULL));
    assert_false(broker_changes_need_resync(c, 12, NULL));

    n = broker_changes_after(c, 12, 100, &first);
    assert_int_equal(n, 4);
    assert_int_equal(broker_changes_at(c, first)->version, 13);
    assert_int_equal(broker_changes_at(c, first + 3)->version, 16);
    assert_true(broker_changes_at(c, first + 3)->deleted);

    n = broker_changes_after(c, 14, 1, &first); /* page limit */
    assert_int_equal(n, 1);
    assert_int_equal(broker_changes_at(c, first)->version, 15);

    /* duplicates and old versions are refused */
    assert_int_equal(broker_changes_append(c, "t", "id", 16, false), -1);
    assert_int_equal(broker_changes_append(c, "t", "id", 3, false), -1);
    assert_int_equal(c->latest, 16);
}

static void test_gap_starts_over(void **state)
{
    broker_changes_t *c = *state;
    size_t first;

    assert_int_equal(broker_changes_append(c, "t", "a", 11, false), 0);
    assert_int_equal(broker_changes_append(c, "t", "b", 20, false), 0);
    assert_int_equal(c->count, 1);
    assert_int_equal(broker_changes_oldest(c), 20);
    assert_true(broker_changes_need_resync(c, 11, NULL));
    assert_false(broker_changes_need_resync(c, 19, NULL));
    assert_int_equal(broker_changes_after(c, 19, 100, &first), 1);
    assert_string_equal(broker_changes_at(c, first)->id, "b");
}

static void test_known_latest_ahead_of_ring(void **state)
{
    broker_changes_t *c = *state;
    size_t first;

    broker_changes_note_version(c, 12); /* an own write the stream has not delivered yet */
    assert_false(broker_changes_need_resync(c, 12, NULL));
    assert_true(broker_changes_need_resync(c, 13, NULL));
    assert_int_equal(broker_changes_after(c, 12, 100, &first), 0);
    broker_changes_reset(c, "e2", 0);
    assert_true(broker_changes_need_resync(c, 12, NULL));
    assert_true(broker_changes_need_resync(c, 0, "e1"));
    assert_false(broker_changes_need_resync(c, 0, "e2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_after_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraps_and_forgets_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_latest_ahead_of_ring, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
