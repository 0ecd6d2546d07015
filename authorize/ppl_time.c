/* SPDX-License-Identifier: MIT */
/* The date, day_of_week and time_of_day criteria, with time zones read from TZif files. */
#include "authorize/ppl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PPL_ZONEINFO_DIR "/usr/share/zoneinfo"
#define PPL_MAX_CLOCK_TEXT 32
#define SECS_PER_DAY 86400

/* calendar arithmetic (proleptic Gregorian, days since 1970-01-01) */

int64_t ppl_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_from_days(int64_t z)
{
    int64_t era, doe, yoe, doy, mp, y;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    return mp >= 10 ? y + 1 : y;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static unsigned weekday_of_days(int64_t days)
{
    /* 1970-01-01 was a Thursday (4); 0 = Sunday */
    return (unsigned)((days % 7 + 7 + 4) % 7);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* text parsing */

static const char *digits(const char *s, unsigned min, unsigned max, int64_t *out)
{
    unsigned n = 0;
    int64_t v = 0;

    while (n < max && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n < min) {
        return NULL;
    }
    *out = v;
    return s + n;
}

/* "[+-]hh[:mm[:ss]]" as signed seconds (TZ strings and ISO offsets) */
static const char *hms(const char *s, unsigned max_hours_digits, int64_t *out)
{
    int64_t h = 0, m = 0, sec = 0, sign = 1;

    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    s = digits(s, 1, max_hours_digits, &h);
    if (s != NULL && *s == ':') {
        s = digits(s + 1, 2, 2, &m);
        if (s != NULL && *s == ':') {
            s = digits(s + 1, 2, 2, &sec);
        }
    }
    if (s == NULL || h > 167 || m > 59 || sec > 59) {
        return NULL;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|(+|-)HH[:]MM]; no zone means UTC */
int ppl_parse_iso8601(const char *s, int64_t *out)
{
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, off = 0, frac;

    s = digits(s, 4, 4, &y);
    if (s == NULL || *s++ != '-' || (s = digits(s, 2, 2, &mo)) == NULL || *s++ != '-' ||
        (s = digits(s, 2, 2, &d)) == NULL) {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo)) {
        return -1;
    }
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s = digits(s + 1, 2, 2, &h);
        if (s == NULL || *s++ != ':' || (s = digits(s, 2, 2, &mi)) == NULL) {
            return -1;
        }
        if (*s == ':' && (s = digits(s + 1, 2, 2, &sec)) == NULL) {
            return -1;
        }
        if (*s == '.' && (s = digits(s + 1, 1, 9, &frac)) == NULL) {
            return -1;
        }
        if (h > 23 || mi > 59 || sec > 60) {
            return -1;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int64_t sign = *s == '-' ? -1 : 1, oh, om = 0;
        s = digits(s + 1, 2, 2, &oh);
        if (s != NULL && *s == ':') {
            s++;
        }
        if (s != NULL && *s >= '0' && *s <= '9') {
            s = digits(s, 2, 2, &om);
        }
        if (s == NULL || oh > 23 || om > 59) {
            return -1;
        }
        off = sign * (oh * 3600 + om * 60);
    }
    if (*s != '\0') {
        return -1;
    }
    *out = ppl_days_from_civil(y, (unsigned)mo, (unsigned)d) * SECS_PER_DAY + h * 3600 +
           mi * 60 + sec - off;
    return 0;
}

/* "9:00", "17:00", "17:00:30", "5:00PM", "9 AM", "12am": seconds after midnight */
int ppl_parse_clock(const char *s, int32_t *out)
{
    int64_t h, m = 0, sec = 0;
    bool am = false, pm = false;

    if (strlen(s) > PPL_MAX_CLOCK_TEXT) {
        return -1;
    }
    s = digits(s, 1, 2, &h);
    if (s != NULL && *s == ':') {
        s = digits(s + 1, 2, 2, &m);
        if (s != NULL && *s == ':') {
            s = digits(s + 1, 2, 2, &sec);
        }
    }
    if (s == NULL) {
        return -1;
    }
    while (*s == ' ') {
        s++;
    }
    if (strcasecmp(s, "am") == 0) {
        am = true;
    } else if (strcasecmp(s, "pm") == 0) {
        pm = true;
    } else if (*s != '\0') {
        return -1;
    }
    if ((am || pm) && (h < 1 || h > 12)) {
        return -1;
    }
    if (h > 23 || m > 59 || sec > 59) {
        return -1;
    }
    if (am && h == 12) {
        h = 0;
    } else if (pm && h != 12) {
        h += 12;
    }
    *out = (int32_t)(h * 3600 + m * 60 + sec);
    return 0;
}

/* POSIX TZ strings (the footer of a TZif file): "EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30" */

static const char *tz_name(const char *s)
{
    const char *start = s;

    if (*s == '<') {
        const char *end = strchr(s, '>');
        return end != NULL && end - s >= 4 ? end + 1 : NULL;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
        s++;
    }
    return s - start >= 3 ? s : NULL;
}

static const char *tz_rule(const char *s, ppl_tz_rule_t *r)
{
    int64_t a, b, c, t = 7200;

    if (*s == 'M') {
        s = digits(s + 1, 1, 2, &a);
        if (s == NULL || *s++ != '.' || (s = digits(s, 1, 1, &b)) == NULL || *s++ != '.' ||
            (s = digits(s, 1, 1, &c)) == NULL || a < 1 || a > 12 || b < 1 || b > 5 || c > 6) {
            return NULL;
        }
        r->kind = 'M';
        r->month = (int)a;
        r->week = (int)b;
        r->day = (int)c;
    } else if (*s == 'J') {
        s = digits(s + 1, 1, 3, &a);
        if (s == NULL || a < 1 || a > 365) {
            return NULL;
        }
        r->kind = 'J';
        r->day = (int)a;
    } else {
        s = digits(s, 1, 3, &a);
        if (s == NULL || a > 365) {
            return NULL;
        }
        r->kind = 'D';
        r->day = (int)a;
    }
    if (*s == '/') {
        s = hms(s + 1, 3, &t);
        if (s == NULL) {
            return NULL;
        }
    }
    r->time = (int32_t)t;
    return s;
}

int ppl_tz_parse_posix(const char *s, ppl_tz_t *out)
{
    int64_t off;

    out->has_footer = false;
    out->has_dst = false;
    if ((s = tz_name(s)) == NULL || (s = hms(s, 3, &off)) == NULL) {
        return -1;
    }
    out->std_off = (int32_t)-off;
    if (*s == '\0') {
        out->has_footer = true;
        return 0;
    }

    if ((s = tz_name(s)) == NULL) {
        return -1;
    }
    out->dst_off = out->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = hms(s, 3, &off)) == NULL) {
            return -1;
        }
        out->dst_off = (int32_t)-off;
    }
    if (*s == '\0') {
        /* no rule given: POSIX leaves it to the implementation; use the US rule */
        s = ",M3.2.0,M11.1.0";
    }
    if (*s++ != ',' || (s = tz_rule(s, &out->start)) == NULL || *s++ != ',' ||
        (s = tz_rule(s, &out->end)) == NULL || *s != '\0') {
        return -1;
    }
    out->has_dst = true;
    out->has_footer = true;
    return 0;
}

static int64_t rule_day(const ppl_tz_rule_t *r, int64_t year)
{
    int64_t jan1 = ppl_days_from_civil(year, 1, 1), first;
    int day;

    switch (r->kind) {
    case 'J':
        return jan1 + r->day - 1 + (is_leap(year) && r->day >= 60);
    case 'D':
        return jan1 + r->day;
    default:
        first = ppl_days_from_civil(year, (unsigned)r->month, 1);
        day = 1 + (r->day - (int)weekday_of_days(first) + 7) % 7 + (r->week - 1) * 7;
        while (day > (int)days_in_month(year, (unsigned)r->month)) {
            day -= 7;
        }
        return first + day - 1;
    }
}

static int32_t footer_offset(const ppl_tz_t *tz, int64_t t)
{
    int64_t year, start, end;
    bool dst;

    if (!tz->has_dst) {
        return tz->std_off;
    }
    year = year_from_days(floor_div(t + tz->std_off, SECS_PER_DAY));
    start = rule_day(&tz->start, year) * SECS_PER_DAY + tz->start.time - tz->std_off;
    end = rule_day(&tz->end, year) * SECS_PER_DAY + tz->end.time - tz->dst_off;
    if (start < end) {
        dst = t >= start && t < end;
    } else {
        dst = !(t >= end && t < start);
    }
    return dst ? tz->dst_off : tz->std_off;
}

int32_t ppl_tz_offset(const ppl_tz_t *tz, int64_t t)
{
    size_t lo = 0, hi = tz->num_times;

    if (tz->num_times == 0 || t < tz->times[0]) {
        if (tz->num_times == 0 && tz->has_footer) {
            return footer_offset(tz, t);
        }
        return tz->num_types > 0 ? tz->utoffs[0] : 0;
    }
    if (t >= tz->times[tz->num_times - 1] && tz->has_footer) {
        return footer_offset(tz, t);
    }
    /* the last transition at or before t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->utoffs[tz->type_of[lo]];
}

/* TZif (RFC 8536): the v1 block, or for version 2+ the 64-bit block and the footer */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct st_tzif_counts_t {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts_t;

static int tzif_header(const uint8_t *p, size_t len, char *version, tzif_counts_t *n)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        return -1;
    }
    *version = (char)p[4];
    n->isut = be32(p + 20);
    n->isstd = be32(p + 24);
    n->leap = be32(p + 28);
    n->time = be32(p + 32);
    n->type = be32(p + 36);
    n->chars = be32(p + 40);
    if (n->time > PPL_MAX_TZ_TRANSITIONS || n->type == 0 || n->type > PPL_MAX_TZ_TYPES ||
        n->leap > 1000 || n->chars > 1000 || n->isut > n->type || n->isstd > n->type) {
        return -1;
    }
    return 0;
}

static size_t tzif_block_len(const tzif_counts_t *n, size_t tsize)
{
    return n->time * tsize + n->time + n->type * 6 + n->chars + n->leap * (tsize + 4) +
           n->isstd + n->isut;
}

static int tzif_block(ppl_arena_t *arena, const uint8_t *p, const tzif_counts_t *n,
                      size_t tsize, ppl_tz_t *out)
{
    const uint8_t *idx = p + n->time * tsize, *types = idx + n->time;

    out->num_times = n->time;
    out->num_types = n->type;
    out->times = ppl_alloc(arena, (n->time + 1) * sizeof(out->times[0]));
    out->type_of = ppl_alloc(arena, n->time + 1);
    out->utoffs = ppl_alloc(arena, n->type * sizeof(out->utoffs[0]));
    for (uint32_t i = 0; i < n->time; i++) {
        out->times[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        out->type_of[i] = idx[i];
        if (idx[i] >= n->type || (i > 0 && out->times[i] <= out->times[i - 1])) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < n->type; i++) {
        int32_t off = (int32_t)be32(types + i * 6);
        if (off < -25 * 3600 || off > 26 * 3600) {
            return -1;
        }
        out->utoffs[i] = off;
    }
    return 0;
}

int ppl_tz_parse_tzif(ppl_arena_t *arena, const uint8_t *data, size_t len, ppl_tz_t *out)
{
    tzif_counts_t n;
    char version, footer[128];
    size_t v1len, v2len, flen;
    const uint8_t *p, *end;

    memset(out, 0, sizeof(*out));
    if (tzif_header(data, len, &version, &n) != 0) {
        return -1;
    }
    v1len = tzif_block_len(&n, 4);
    if (44 + v1len > len) {
        return -1;
    }
    if (version == '\0') {
        return tzif_block(arena, data + 44, &n, 4, out);
    }

    p = data + 44 + v1len;
    if (tzif_header(p, len - (size_t)(p - data), &version, &n) != 0) {
        return -1;
    }
    v2len = tzif_block_len(&n, 8);
    if ((size_t)(p - data) + 44 + v2len > len ||
        tzif_block(arena, p + 44, &n, 8, out) != 0) {
        return -1;
    }

    /* footer: "\n<POSIX TZ>\n"; empty means no rule for later instants */
    p += 44 + v2len;
    end = data + len;
    if (p >= end || *p != '\n') {
        return -1;
    }
    p++;
    for (flen = 0; p + flen < end && p[flen] != '\n'; flen++) {
    }
    if (p + flen >= end || flen >= sizeof(footer)) {
        return -1;
    }
    if (flen == 0) {
        return 0;
    }
    memcpy(footer, p, flen);
    footer[flen] = '\0';
    return ppl_tz_parse_posix(footer, out);
}

static bool tz_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > PPL_MAX_TZ_NAME || name[0] == '/' || strstr(name, "..") != NULL) {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' || *p == '-' || *p == '+';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static uint8_t *read_zone_file(const char *name, size_t *len, const char **why)
{
    char path[sizeof(PPL_ZONEINFO_DIR) + PPL_MAX_TZ_NAME + 2];
    uint8_t *buf = NULL;
    struct stat st;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", PPL_ZONEINFO_DIR, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > PPL_MAX_TZ_FILE) {
        *why = "not a time zone file";
        goto Exit;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        *why = "out of memory";
        goto Exit;
    }
    n = read(fd, buf, (size_t)st.st_size);
    if (n != st.st_size) {
        *why = "short read";
        free(buf);
        buf = NULL;
        goto Exit;
    }
    *len = (size_t)n;

Exit:
    close(fd);
    return buf;
}

int ppl_tz_load(ppl_compile_t *c, const char *name, ppl_tz_t *out)
{
    const char *why = NULL;
    uint8_t *data;
    size_t len = 0;
    int ret;

    if (!tz_name_ok(name)) {
        ppl_error(c, "timezone \"%.64s\" is not a time zone name", name);
        return -1;
    }
    data = read_zone_file(name, &len, &why);
    if (data == NULL) {
        ppl_error(c, "timezone \"%s\": %s", name, why);
        return -1;
    }
    ret = ppl_tz_parse_tzif(c->arena, data, len, out);
    free(data);
    if (ret != 0) {
        ppl_error(c, "timezone \"%s\": not a valid TZif file", name);
    }
    return ret;
}

/* criteria */

static int64_t local_seconds(const ppl_clock_t *k, time_t now)
{
    return (int64_t)now + (k->tz != NULL ? ppl_tz_offset(k->tz, (int64_t)now) : 0);
}

bool ppl_date_match(const ppl_date_t *d, time_t now)
{
    return (!d->has_after || (int64_t)now >= d->after) &&
           (!d->has_before || (int64_t)now < d->before);
}

bool ppl_day_of_week_match(const ppl_clock_t *k, time_t now)
{
    int64_t days = floor_div(local_seconds(k, now), SECS_PER_DAY);

    return (k->days & (1u << weekday_of_days(days))) != 0;
}

bool ppl_time_of_day_match(const ppl_clock_t *k, time_t now)
{
    int64_t local = local_seconds(k, now);
    int32_t secs = (int32_t)(local - floor_div(local, SECS_PER_DAY) * SECS_PER_DAY);

    /* an overnight window ("after 22:00, before 6:00") wraps around midnight */
    if (k->has_after && k->has_before && k->after > k->before) {
        return secs >= k->after || secs < k->before;
    }
    return (!k->has_after || secs >= k->after) && (!k->has_before || secs < k->before);
}

static int load_zone(ppl_compile_t *c, const json_t *zone, ppl_clock_t *out)
{
    ppl_tz_t *tz;

    if (!json_is_string(zone)) {
        ppl_error(c, "timezone must be a time zone name such as \"Europe/Berlin\"");
        return -1;
    }
    tz = ppl_alloc(c->arena, sizeof(*tz));
    if (ppl_tz_load(c, json_string_value(zone), tz) != 0) {
        return -1;
    }
    out->tz = tz;
    return 0;
}

int ppl_date_compile(ppl_compile_t *c, const json_t *spec, ppl_date_t *out)
{
    const char *key;
    json_t *v;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(spec) || json_object_size(spec) == 0) {
        ppl_error(c, "date needs after and/or before");
        return -1;
    }
    json_object_foreach((json_t *)spec, key, v) {
        bool after = strcmp(key, "after") == 0;
        int64_t t;
        if (!after && strcmp(key, "before") != 0) {
            ppl_error(c, "date: unknown key \"%.64s\" (after, before)", key);
            ret = -1;
            continue;
        }
        if (!json_is_string(v) || ppl_parse_iso8601(json_string_value(v), &t) != 0) {
            ppl_error(c, "date: %s must be an ISO 8601 date or time", key);
            ret = -1;
            continue;
        }
        if (after) {
            out->has_after = true;
            out->after = t;
        } else {
            out->has_before = true;
            out->before = t;
        }
    }
    return ret;
}

static int day_index(const char *s, size_t len)
{
    static const char *const names[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};

    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ') {
        len--;
    }
    for (int i = 0; i < 7; i++) {
        if ((len == 3 || len == strlen(names[i])) && strncasecmp(s, names[i], len) == 0) {
            return i;
        }
    }
    return -1;
}

/* "*", "mon", "monday", "mon-fri", "fri-mon" (wraps), comma lists of these */
static int parse_days(const char *s, uint8_t *out)
{
    uint8_t days = 0;

    while (*s != '\0') {
        const char *item = s, *dash, *end = strchr(s, ',');
        size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
        int from, to;

        while (len > 0 && *item == ' ') {
            item++;
            len--;
        }
        while (len > 0 && item[len - 1] == ' ') {
            len--;
        }
        dash = memchr(item, '-', len);
        if (len == 1 && item[0] == '*') {
            days = 0x7f;
        } else if (dash != NULL) {
            from = day_index(item, (size_t)(dash - item));
            to = day_index(dash + 1, len - (size_t)(dash - item) - 1);
            if (from < 0 || to < 0) {
                return -1;
            }
            for (int d = from;; d = (d + 1) % 7) {
                days |= (uint8_t)(1u << d);
                if (d == to) {
                    break;
                }
            }
        } else {
            from = day_index(item, len);
            if (from < 0) {
                return -1;
            }
            days |= (uint8_t)(1u << from);
        }
        s = end != NULL ? end + 1 : s + strlen(s);
    }
    if (days == 0) {
        return -1;
    }
    *out = days;
    return 0;
}

int ppl_day_of_week_compile(ppl_compile_t *c, const json_t *spec, ppl_clock_t *out)
{
    const json_t *days = spec, *zone = NULL;

    memset(out, 0, sizeof(*out));
    if (json_is_object(spec)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)spec, key, v) {
            if (strcmp(key, "days") != 0 && strcmp(key, "timezone") != 0) {
                ppl_error(c, "day_of_week: unknown key \"%.64s\" (days, timezone)", key);
                return -1;
            }
        }
        days = json_object_get(spec, "days");
        zone = json_object_get(spec, "timezone");
    }
    if (!json_is_string(days) || strlen(json_string_value(days)) > 128 ||
        parse_days(json_string_value(days), &out->days) != 0) {
        ppl_error(c, "day_of_week needs \"*\", a day (mon, monday), a range (mon-fri) or a "
                     "comma list of them");
        return -1;
    }
    return zone != NULL ? load_zone(c, zone, out) : 0;
}

int ppl_time_of_day_compile(ppl_compile_t *c, const json_t *spec, ppl_clock_t *out)
{
    const char *key;
    json_t *v;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(spec) || json_object_get(spec, "timezone") == NULL ||
        (json_object_get(spec, "after") == NULL && json_object_get(spec, "before") == NULL)) {
        ppl_error(c, "time_of_day needs timezone and after and/or before");
        return -1;
    }
    json_object_foreach((json_t *)spec, key, v) {
        int32_t secs;
        if (strcmp(key, "timezone") == 0) {
            ret |= load_zone(c, v, out);
            continue;
        }
        if (strcmp(key, "after") != 0 && strcmp(key, "before") != 0) {
            ppl_error(c, "time_of_day: unknown key \"%.64s\" (timezone, after, before)", key);
            ret = -1;
            continue;
        }
        if (!json_is_string(v) || ppl_parse_clock(json_string_value(v), &secs) != 0) {
            ppl_error(c, "time_of_day: %s must be a time of day such as \"9:00\", \"17:30\" or "
                         "\"5:00PM\"", key);
            ret = -1;
            continue;
        }
        if (key[0] == 'a') {
            out->has_after = true;
            out->after = secs;
        } else {
            out->has_before = true;
            out->before = secs;
        }
    }
    return ret;
}
