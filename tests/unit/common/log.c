/* SPDX-License-Identifier: MIT */
/* Unit tests for common/log.c: line format, levels, redaction and escaping. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"

static int pipe_fds[2];

static int setup(void **state)
{
    assert_int_equal(pipe(pipe_fds), 0);
    cmn_log_set_fd(pipe_fds[1]);
    cmn_log_init("test");
    cmn_log_set_level(CMN_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    cmn_log_set_fd(STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* what the logger wrote since the last call (the pipe holds far more than one line) */
static size_t drain(char *buf, size_t size)
{
    ssize_t n;

    cmn_log(CMN_LOG_ERROR, NULL, "%s", "END");
    n = read(pipe_fds[0], buf, size - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;

    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, s, 0, NULL, 0) != 0) {
        fprintf(stderr, "\"%s\" does not match /%s/\n", s, pattern);
        fail();
    }
    regfree(&re);
}

static void test_line_format(void **state)
{
    char buf[2 * CMN_LOG_LINE_MAX];

    cmn_log_info("abc", "user \"%s\" signed in", "alice");
    cmn_log_warn(NULL, "no request id");
    drain(buf, sizeof(buf));
    assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "info test req=abc user \"alice\" signed in\n"
                        "[0-9T:.-]+Z warn test no request id\n"
                        "[0-9T:.-]+Z error test END\n$");
}

static void test_levels(void **state)
{
    char buf[4096];
    cmn_log_level_t level;

    cmn_log_debug(NULL, "hidden");
    cmn_log_set_level(CMN_LOG_DEBUG);
    cmn_log_debug(NULL, "shown");
    cmn_log_set_level(CMN_LOG_ERROR);
    cmn_log_warn(NULL, "hidden too");
    drain(buf, sizeof(buf));
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, " debug test shown\n"));

    assert_int_equal(cmn_log_level_parse("debug", &level), 0);
    assert_int_equal(level, CMN_LOG_DEBUG);
    assert_int_equal(cmn_log_level_parse("WARN", &level), 0);
    assert_int_equal(level, CMN_LOG_WARN);
    assert_int_equal(cmn_log_level_parse("error", &level), 0);
    assert_int_equal(level, CMN_LOG_ERROR);
    assert_int_equal(cmn_log_level_parse("verbose", &level), -1);
    assert_int_equal(cmn_log_level_parse(NULL, &level), -1);
    assert_string_equal(cmn_log_level_name(CMN_LOG_INFO), "info");
}

static int evaluated;

static const char *counted(void)
{
    evaluated++;
    return "id";
}

/* a line below the level costs nothing: not even its arguments are computed */
static void test_arguments_skipped(void **state)
{
    char buf[4096];

    cmn_log_set_level(CMN_LOG_WARN);
    evaluated = 0;
    cmn_log_info(counted(), "hidden %s", counted());
    cmn_log_debug(counted(), "hidden");
    assert_int_equal(evaluated, 0);
    cmn_log_warn(counted(), "shown %s", counted());
    assert_int_equal(evaluated, 2);

    /* the cached second of the timestamp is the clock's: two lines agree to the second */
    cmn_log_error(NULL, "again");
    drain(buf, sizeof(buf));
    assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "warn test req=id shown id\n"
                        "[0-9T:.-]+Z error test again\n");
}

/* one event is one line, however hostile or long the message */
static void test_one_line(void **state)
{
    char big[3 * CMN_LOG_LINE_MAX];
    char buf[4 * CMN_LOG_LINE_MAX];
    char *nl;

    cmn_log_info("r\nq", "evil\nline\r\x1b[31m");
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, " req=r\\x0aq evil\\x0aline\\x0d\\x1b[31m\n"));

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cmn_log_info(NULL, "%s", big);
    drain(buf, sizeof(buf));
    nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_true((size_t)(nl - buf) + 1 <= CMN_LOG_LINE_MAX);
    assert_memory_equal(nl - 3, "...", 3);
}

static void test_redact(void **state)
{
    static const char secret[] = "abc";
    char buf[CMN_REDACT_BUF_LEN];
    char small[10];

    /* SHA-256("abc") = ba7816bf 8f01cfea ... */
    assert_ptr_equal(cmn_redact(secret, 3, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "sha256:ba7816bf");
    assert_null(strstr(buf, secret));

    cmn_redact("correct horse battery staple", 28, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 15);
    assert_null(strstr(buf, "correct"));
    assert_memory_equal(buf, "sha256:", 7);

    cmn_redact(secret, 3, small, sizeof(small));
    assert_string_equal(small, "sha256:ba");
}

static void test_escape(void **state)
{
    char buf[64];
    char tiny[8];

    cmn_log_escape("plain text", 10, 100, buf, sizeof(buf));
    assert_string_equal(buf, "plain text");

    cmn_log_escape("a\nb\x7f\"\\\xff", 7, 100, buf, sizeof(buf));
    assert_string_equal(buf, "a\\x0ab\\x7f\\x22\\x5c\\xff");

    /* cut by max */
    cmn_log_escape("0123456789", 10, 4, buf, sizeof(buf));
    assert_string_equal(buf, "0123...");

    /* an embedded NUL is data, not the end */
    cmn_log_escape("a\0b", 3, 100, buf, sizeof(buf));
    assert_string_equal(buf, "a\\x00b");

    /* cut by the buffer: never overflows, still says it was cut */
    cmn_log_escape("0123456789", 10, 100, tiny, sizeof(tiny));
    assert_string_equal(tiny, "0123...");
    cmn_log_escape("\n\n\n", 3, 100, tiny, sizeof(tiny));
    assert_string_equal(tiny, "\\x0a...");

    cmn_log_escape("abc", 3, 100, buf, 1);
    assert_string_equal(buf, "");
}

static void test_err_strings(void **state)
{
    assert_string_equal(cmn_err_jwt_expired, "token expired");
    assert_true(strlen(cmn_err_malformed) > 0);
    assert_string_not_equal(cmn_err_malformed, cmn_err_jwt_malformed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments_skipped, setup, teardown),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_err_strings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
