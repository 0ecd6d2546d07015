/* SPDX-License-Identifier: MIT */
/* One line per event on stderr, written with a single write(2), plus redaction and escaping. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "common/crypto.h"

/* room kept at the end of a line for "..." and the newline */
#define LOG_TAIL_RESERVE 5

static const char *log_daemon = "-";
static int log_min_level = CMN_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static const char hex_digits[] = "0123456789abcdef";

void cmn_log_init(const char *daemon)
{
    if (daemon != NULL && daemon[0] != '\0') {
        log_daemon = daemon;
    }
}

void cmn_log_set_level(cmn_log_level_t level)
{
    __atomic_store_n(&log_min_level, (int)level, __ATOMIC_RELAXED);
}

int cmn_log_level_parse(const char *s, cmn_log_level_t *out)
{
    size_t i;

    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (cmn_log_level_t)i;
            return 0;
        }
    }

    /* Pomerium spells it both ways */
    if (strcasecmp(s, "warning") == 0) {
        *out = CMN_LOG_WARN;
        return 0;
    }
    return -1;
}

int cmn_log_enabled(cmn_log_level_t level)
{
    return (int)level >= __atomic_load_n(&log_min_level, __ATOMIC_RELAXED);
}

const char *cmn_log_level_name(cmn_log_level_t level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0])) {
        return "error";
    }
    return level_names[level];
}

void cmn_log_set_fd(int fd)
{
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

/* the "2026-12-03T17:45:42" part, formatted once per second and thread */
typedef struct st_log_clock_t {
    time_t sec;
    size_t len;
    char text[32];
} log_clock_t;

static __thread log_clock_t log_clock = {.sec = -1};

/* "2026-12-03T17:45:42.123Z" into buf (at least 32 bytes); returns its length */
static size_t format_time(char *buf)
{
    static const char fallback[] = "0000-00-00T00:00:00.000Z";
    struct timespec ts;
    struct tm tm;
    unsigned ms;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        memcpy(buf, fallback, sizeof(fallback) - 1);
        return sizeof(fallback) - 1;
    }
    if (ts.tv_sec != log_clock.sec) {
        if (gmtime_r(&ts.tv_sec, &tm) == NULL) {
            memcpy(buf, fallback, sizeof(fallback) - 1);
            return sizeof(fallback) - 1;
        }
        log_clock.len = strftime(log_clock.text, sizeof(log_clock.text), "%Y-%m-%dT%H:%M:%S",
                                 &tm);
        log_clock.sec = ts.tv_sec;
    }

    n = log_clock.len;
    memcpy(buf, log_clock.text, n);
    ms = (unsigned)(ts.tv_nsec / 1000000) % 1000;
    buf[n++] = '.';
    buf[n++] = (char)('0' + ms / 100);
    buf[n++] = (char)('0' + ms / 10 % 10);
    buf[n++] = (char)('0' + ms % 10);
    buf[n++] = 'Z';
    return n;
}

/* appends a NUL-terminated string, never past `cap`; returns the new position */
static size_t append_str(char *line, size_t pos, size_t cap, const char *s)
{
    size_t len = strlen(s);

    if (len > cap - pos) {
        len = cap - pos;
    }
    memcpy(line + pos, s, len);
    return pos + len;
}

/* appends the message, escaping control bytes so that one event stays one line */
static size_t append_message(char *line, size_t pos, size_t cap, const char *msg, bool cut)
{
    const unsigned char *p = (const unsigned char *)msg;

    for (; *p != '\0'; p++) {
        bool plain = *p >= 0x20 && *p != 0x7f;
        size_t need = plain ? 1 : 4;

        if (pos + need + LOG_TAIL_RESERVE > cap) {
            cut = true;
            break;
        }
        if (plain) {
            line[pos++] = (char)*p;
        } else {
            line[pos++] = '\\';
            line[pos++] = 'x';
            line[pos++] = hex_digits[*p >> 4];
            line[pos++] = hex_digits[*p & 0xf];
        }
    }

    if (cut) {
        memcpy(line + pos, "...", 3);
        pos += 3;
    }
    line[pos++] = '\n';
    return pos;
}

/* one write(2) per line; a short write (a full pipe) is finished rather than dropped */
static void write_line(const char *line, size_t len)
{
    int fd = __atomic_load_n(&log_fd, __ATOMIC_RELAXED);

    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        line += n;
        len -= (size_t)n;
    }
}

void cmn_log(cmn_log_level_t level, const char *reqid, const char *fmt, ...)
{
    char msg[CMN_LOG_LINE_MAX];
    char line[CMN_LOG_LINE_MAX];
    char reqbuf[CMN_LOG_REQID_MAX * 4 + 4];
    va_list ap;
    size_t pos;
    int n;

    if (!cmn_log_enabled(level)) {
        return;
    }

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
    }

    pos = format_time(line);
    line[pos++] = ' ';
    pos = append_str(line, pos, sizeof(line), cmn_log_level_name(level));
    pos = append_str(line, pos, sizeof(line), " ");
    pos = append_str(line, pos, sizeof(line), log_daemon);
    if (reqid != NULL) {
        cmn_log_escape(reqid, strlen(reqid), CMN_LOG_REQID_MAX, reqbuf, sizeof(reqbuf));
        pos = append_str(line, pos, sizeof(line), " req=");
        pos = append_str(line, pos, sizeof(line), reqbuf);
    }
    pos = append_str(line, pos, sizeof(line), " ");
    if (pos + LOG_TAIL_RESERVE > sizeof(line)) {
        pos = sizeof(line) - LOG_TAIL_RESERVE;
    }

    pos = append_message(line, pos, sizeof(line), msg, n >= (int)sizeof(msg));
    write_line(line, pos);
}

const char *cmn_redact(const void *secret, size_t len, char *buf, size_t bufsize)
{
    uint8_t md[32];
    static const unsigned char empty = 0;

    if (bufsize == 0) {
        return buf;
    }

    if (secret == NULL) {
        secret = &empty;
        len = 0;
    }
    cmn_sha256(secret, len, md);
    snprintf(buf, bufsize, "sha256:%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
    return buf;
}

const char *cmn_log_escape(const char *s, size_t len, size_t max, char *buf, size_t bufsize)
{
    const unsigned char *p = (const unsigned char *)s;
    bool cut = len > max;
    size_t n = cut ? max : len;
    size_t o = 0;
    size_t i;

    if (bufsize == 0) {
        return buf;
    }
    if (s == NULL) {
        n = 0;
        cut = false;
    }

    /* keep room for "..." and the NUL in case the buffer, not `max`, cuts the text */
    for (i = 0; i < n; i++) {
        bool plain = p[i] >= 0x20 && p[i] <= 0x7e && p[i] != '\\' && p[i] != '"';
        size_t need = plain ? 1 : 4;

        if (o + need + 4 > bufsize) {
            cut = true;
            break;
        }
        if (plain) {
            buf[o++] = (char)p[i];
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex_digits[p[i] >> 4];
            buf[o++] = hex_digits[p[i] & 0xf];
        }
    }

    if (cut && o + 4 <= bufsize) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}
