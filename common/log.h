/* SPDX-License-Identifier: MIT */
/* One logging API: one line per event on stderr, with level, daemon and request id. */
#ifndef CMN_LOG_H
#define CMN_LOG_H

#include <stddef.h>

#define CMN_LOG_LINE_MAX 4096 /* a longer line is cut and ends with "..." */
#define CMN_LOG_REQID_MAX 64  /* request ids are cut to this many bytes */
#define CMN_REDACT_BUF_LEN 16 /* "sha256:" + 8 hex digits + NUL */

typedef enum en_cmn_log_level_t {
    CMN_LOG_DEBUG = 0,
    CMN_LOG_INFO,
    CMN_LOG_WARN,
    CMN_LOG_ERROR,
} cmn_log_level_t;

/** sets the daemon name printed on every line (borrowed: must outlive the process) */
void cmn_log_init(const char *daemon);
/** sets the lowest level that is printed; "debug" also switches to human-readable lines */
void cmn_log_set_level(cmn_log_level_t level);
/** parses "debug|info|warn|error"; returns -1 on anything else */
int cmn_log_level_parse(const char *s, cmn_log_level_t *out);
int cmn_log_enabled(cmn_log_level_t level);
/** the name of a level ("debug", "info", "warn", "error") */
const char *cmn_log_level_name(cmn_log_level_t level);
/** sends log lines to `fd` instead of stderr (tests); the fd is borrowed */
void cmn_log_set_fd(int fd);

/**
 * prints one line: `<time> <level> <daemon> [req=<id>] <message>`. `reqid` may be NULL.
 * Example: `2026-12-03T17:45:42.123Z info authorize req=abc message`. Control bytes in the
 * message are escaped as \xNN so an event is always one line; a line is at most
 * CMN_LOG_LINE_MAX bytes. Never pass a secret, token or cookie value; use cmn_redact() for a
 * fingerprint instead. Thread-safe: each line is written with one write(2).
 */
void cmn_log(cmn_log_level_t level, const char *reqid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* the level is checked first, so arguments (a request id, an escaped value) cost nothing when
 * the line is not printed */
#define CMN_LOG_AT(level, reqid, ...)                                                              \
    do {                                                                                           \
        if (cmn_log_enabled(level)) {                                                              \
            cmn_log((level), (reqid), __VA_ARGS__);                                                \
        }                                                                                          \
    } while (0)
#define cmn_log_debug(reqid, ...) CMN_LOG_AT(CMN_LOG_DEBUG, (reqid), __VA_ARGS__)
#define cmn_log_info(reqid, ...) CMN_LOG_AT(CMN_LOG_INFO, (reqid), __VA_ARGS__)
#define cmn_log_warn(reqid, ...) CMN_LOG_AT(CMN_LOG_WARN, (reqid), __VA_ARGS__)
#define cmn_log_error(reqid, ...) CMN_LOG_AT(CMN_LOG_ERROR, (reqid), __VA_ARGS__)

/**
 * writes a short fingerprint of a secret value into `buf` ("sha256:1a2b3c4d": the first 8 hex
 * digits of its SHA-256), never the value. `bufsize` should be at least CMN_REDACT_BUF_LEN;
 * a smaller buffer gets a cut fingerprint. Returns buf.
 */
const char *cmn_redact(const void *secret, size_t len, char *buf, size_t bufsize);

/**
 * copies untrusted text for a log line: at most `max` bytes, bytes outside 0x20..0x7e escaped as
 * \xNN (and so are '\\' and '"', so quoting stays unambiguous), and "..." appended when cut,
 * either by `max` or because `buf` is full. Always NUL-terminated when bufsize > 0. Returns buf.
 */
const char *cmn_log_escape(const char *s, size_t len, size_t max, char *buf, size_t bufsize);

#endif
