/* SPDX-License-Identifier: MIT */
/* Config values: messages, strings and lists, booleans, durations, URLs, base64, setters. */
#include "common/config_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/err.h"
#include "common/log.h"

static const char err_url_scheme[] = "must be an http or https URL";
static const char err_url_chars[] = "must not contain spaces or control characters";
static const char err_url_userinfo[] = "must not contain user info";
static const char err_url_query[] = "must not have a query or fragment";
static const char err_url_path[] = "must not have a path";
static const char err_url_host[] = "has no valid host";
static const char err_url_port[] = "has a bad port (1..65535)";
static const char err_url_long[] = "is too long";

/* diagnostics */

static void add_message(cmn_strlist_t *list, size_t *dropped, const cfg_src_t *src,
                        const char *name, const char *fmt, va_list ap)
{
    char reason[1024];
    char where[64] = "";
    char *msg;
    int n;

    if (list->len >= CFG_MAX_DIAG) {
        (*dropped)++;
        return;
    }
    if (vsnprintf(reason, sizeof(reason), fmt, ap) < 0) {
        reason[0] = '\0';
    }

    if (src != NULL && src->env != NULL) {
        n = snprintf(NULL, 0, "[env %s] %s: %s", src->env, name, reason);
    } else if (src != NULL && src->file != NULL && src->line != 0) {
        snprintf(where, sizeof(where), ":%u", src->line);
        n = snprintf(NULL, 0, "[%s%s] %s: %s", src->file, where, name, reason);
    } else {
        n = snprintf(NULL, 0, "[%s] %s: %s", src != NULL && src->file != NULL ? src->file : "env",
                     name, reason);
    }
    if (n < 0) {
        return;
    }

    msg = cfg_alloc((size_t)n + 1);
    if (src != NULL && src->env != NULL) {
        snprintf(msg, (size_t)n + 1, "[env %s] %s: %s", src->env, name, reason);
    } else {
        snprintf(msg, (size_t)n + 1, "[%s%s] %s: %s",
                 src != NULL && src->file != NULL ? src->file : "env", where, name, reason);
    }
    cfg_strlist_push(list, msg);
}

void cfg_error(cfg_ctx_t *ctx, const cfg_src_t *src, const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    add_message(&ctx->diag->errors, &ctx->dropped_errors, src, name, fmt, ap);
    va_end(ap);
}

void cfg_warning(cfg_ctx_t *ctx, const cfg_src_t *src, const char *name, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    add_message(&ctx->diag->warnings, &ctx->dropped_warnings, src, name, fmt, ap);
    va_end(ap);
}

const char *cfg_echo(const char *s, char *buf, size_t bufsize)
{
    return cmn_log_escape(s, strlen(s), CFG_ECHO_MAX, buf, bufsize);
}

cfg_src_t cfg_src_of_node(const cfg_ctx_t *ctx, const yaml_node_t *node)
{
    cfg_src_t src = {ctx->path, 0, NULL};

    if (node != NULL) {
        /* libyaml marks are 0-based */
        src.line = (unsigned)node->start_mark.line + 1;
    }
    return src;
}

/* allocation and lists */

void *cfg_alloc(size_t size)
{
    void *p = calloc(1, size == 0 ? 1 : size);

    if (p == NULL) {
        cmn_unreachable("out of memory while loading the config");
    }
    return p;
}

char *cfg_strndup(const char *s, size_t len)
{
    char *p = cfg_alloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *cfg_strdup(const char *s)
{
    return cfg_strndup(s, strlen(s));
}

void cfg_strlist_push(cmn_strlist_t *list, char *item)
{
    /* grow by doubling; the array keeps a NULL after the last item */
    if ((list->len & (list->len + 1)) == 0 || list->items == NULL) {
        size_t cap = (list->len + 1) * 2;
        char **items = realloc(list->items, cap * sizeof(items[0]));
        if (items == NULL) {
            cmn_unreachable("out of memory while loading the config");
        }
        list->items = items;
    }
    list->items[list->len++] = item;
    list->items[list->len] = NULL;
}

void cfg_strlist_clear(cmn_strlist_t *list)
{
    size_t i;

    for (i = 0; i < list->len; i++) {
        free(list->items[i]);
    }
    free(list->items);
    list->items = NULL;
    list->len = 0;
}

/* value access */

bool cfg_node_is_null(const yaml_node_t *node)
{
    const char *v;

    if (node == NULL || node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    v = (const char *)node->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

static int node_scalar(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, yaml_node_t *node,
                       const char **out)
{
    cfg_src_t src = cfg_src_of_node(ctx, node);

    if (node->type != YAML_SCALAR_NODE) {
        cfg_error(ctx, &src, name, "must be a single value, not a %s",
                  node->type == YAML_MAPPING_NODE ? "map" : "list");
        return -1;
    }
    if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
        cfg_error(ctx, &src, name, "must not contain a NUL byte");
        return -1;
    }
    *out = (const char *)node->data.scalar.value;
    return 0;
}

int cfg_val_scalar(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, const char **out)
{
    if (val->node == NULL) {
        *out = val->str;
        return 0;
    }
    return node_scalar(ctx, name, val, val->node, out);
}

/* "a, b,,c" -> [a, b, c] */
static int split_commas(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, cmn_strlist_t *out)
{
    const char *p = val->str;

    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *stop = end != NULL ? end : p + strlen(p);
        const char *b = p;
        const char *e = stop;

        while (b < e && (*b == ' ' || *b == '\t')) {
            b++;
        }
        while (e > b && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e > b) {
            if (out->len >= CMN_CONFIG_MAX_LIST) {
                cfg_error(ctx, &val->src, name, "more than %d items (CMN_CONFIG_MAX_LIST)",
                          CMN_CONFIG_MAX_LIST);
                return -1;
            }
            cfg_strlist_push(out, cfg_strndup(b, (size_t)(e - b)));
        }
        p = end != NULL ? end + 1 : stop;
    }
    return 0;
}

int cfg_val_list(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, cmn_strlist_t *out)
{
    cfg_src_t src = cfg_src_of_node(ctx, val->node);
    yaml_node_item_t *item;
    const char *s;
    char iname[256];
    size_t i = 0;
    int ret = 0;

    if (val->node == NULL) {
        return split_commas(ctx, name, val, out);
    }
    if (val->node->type == YAML_SCALAR_NODE) {
        if (node_scalar(ctx, name, val, val->node, &s) != 0) {
            return -1;
        }
        cfg_strlist_push(out, cfg_strdup(s));
        return 0;
    }
    if (val->node->type != YAML_SEQUENCE_NODE) {
        cfg_error(ctx, &src, name, "must be a list of strings, not a map");
        return -1;
    }

    for (item = val->node->data.sequence.items.start; item < val->node->data.sequence.items.top;
         item++, i++) {
        yaml_node_t *n = yaml_document_get_node(&ctx->doc, *item);

        if (out->len >= CMN_CONFIG_MAX_LIST) {
            cfg_error(ctx, &src, name, "more than %d items (CMN_CONFIG_MAX_LIST)",
                      CMN_CONFIG_MAX_LIST);
            return -1;
        }
        snprintf(iname, sizeof(iname), "%s[%zu]", name, i);
        if (n == NULL || node_scalar(ctx, iname, val, n, &s) != 0) {
            ret = -1;
            continue;
        }
        cfg_strlist_push(out, cfg_strdup(s));
    }
    return ret;
}

int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "y"};
    static const char *const no[] = {"false", "no", "off", "n"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* base64 */

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

uint8_t *cfg_base64_decode(const char *s, size_t len, size_t *outlen)
{
    size_t data = 0;
    size_t pad = 0;
    size_t padded_len;
    char *padded = NULL;
    uint8_t *out = NULL;
    int n;

    while (data < len && b64_char((unsigned char)s[data])) {
        data++;
    }
    while (data + pad < len && s[data + pad] == '=' && pad < 2) {
        pad++;
    }

    /* padding, when present, must complete the last group; one spare character never decodes */
    if (data + pad != len || data == 0 || data % 4 == 1 || (pad != 0 && (data + pad) % 4 != 0) ||
        len > INT32_MAX / 2) {
        return NULL;
    }

    padded_len = (data + 3) / 4 * 4;
    padded = cfg_alloc(padded_len + 1);
    memcpy(padded, s, data);
    memset(padded + data, '=', padded_len - data);
    out = cfg_alloc(padded_len / 4 * 3 + 1);

    n = EVP_DecodeBlock(out, (const unsigned char *)padded, (int)padded_len);
    OPENSSL_cleanse(padded, padded_len);
    free(padded);
    if (n < 0) {
        free(out);
        return NULL;
    }

    /* EVP_DecodeBlock counts the bytes of the padding too */
    *outlen = (size_t)n - (padded_len - data);
    return out;
}

/* durations */

static int mul_add(uint64_t *acc, uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a) {
        return -1;
    }
    if (*acc > UINT64_MAX - a * b) {
        return -1;
    }
    *acc += a * b;
    return 0;
}

/* one "<number>[.<fraction>]<unit>" element; advances *p */
static int duration_element(const char **p, uint64_t *total)
{
    const char *s = *p;
    uint64_t whole = 0, frac = 0, frac_scale = 1, unit;
    int digits = 0;

    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (whole > (UINT64_MAX - 9) / 10) {
            return -1;
        }
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            /* digits past a nanosecond's worth cannot change a millisecond total */
            if (frac_scale < 1000000000) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                frac_scale *= 10;
            }
        }
    }
    if (digits == 0) {
        return -1;
    }

    if (strncmp(s, "ms", 2) == 0) {
        unit = 1, s += 2;
    } else if (*s == 's') {
        unit = 1000, s++;
    } else if (*s == 'm') {
        unit = 60 * 1000, s++;
    } else if (*s == 'h') {
        unit = 3600 * 1000, s++;
    } else {
        return -1;
    }

    if (mul_add(total, whole, unit) != 0 || mul_add(total, frac * unit / frac_scale, 1) != 0) {
        return -1;
    }
    *p = s;
    return 0;
}

int cmn_config_parse_duration(const char *s, uint64_t *out_ms)
{
    uint64_t total = 0;

    if (s == NULL || s[0] == '\0' || strlen(s) > CMN_CONFIG_MAX_DURATION_LEN) {
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }

    while (*s != '\0') {
        if (duration_element(&s, &total) != 0) {
            return -1;
        }
    }
    *out_ms = total;
    return 0;
}

/* URLs */

static int host_valid(char *host, size_t len)
{
    size_t i;

    if (len == 0 || len > 253) {
        return -1;
    }
    if (host[0] == '[') {
        /* an IPv6 literal keeps its brackets, as in common/url.h */
        for (i = 1; i + 1 < len; i++) {
            if (!(isxdigit((unsigned char)host[i]) || host[i] == ':' || host[i] == '.')) {
                return -1;
            }
        }
        return len > 2 && host[len - 1] == ']' ? 0 : -1;
    }

    /* a wildcard is a whole label ("*.example.com", "*.internal.*.example.com"), never the
     * last one, so a pattern always names at least its registrable suffix */
    if (host[0] == '.' || host[0] == '-' || host[len - 1] == '.' || host[len - 1] == '*') {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (host[i] == '*') {
            bool whole_label = (i == 0 || host[i - 1] == '.') && host[i + 1] == '.';
            if (!whole_label) {
                return -1;
            }
            continue;
        }
        if (!(isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '.' ||
              host[i] == '_')) {
            return -1;
        }
        if (host[i] == '.' && host[i + 1] == '.') {
            return -1;
        }
        host[i] = (char)tolower((unsigned char)host[i]);
    }
    return 0;
}

static int port_parse(const char *s, size_t len, uint16_t *out)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 5) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

/* splits "host[:port]" (host may be "[v6]"); fills out->host and out->port */
static int authority_parse(const char *a, size_t len, cmn_config_url_t *out, const char **err)
{
    const char *colon = NULL;
    const char *close;
    size_t hostlen;

    if (memchr(a, '@', len) != NULL) {
        *err = err_url_userinfo;
        return -1;
    }
    if (len > 0 && a[0] == '[') {
        close = memchr(a, ']', len);
        if (close == NULL) {
            *err = err_url_host;
            return -1;
        }
        if (close + 1 < a + len) {
            colon = close + 1;
            if (*colon != ':') {
                *err = err_url_host;
                return -1;
            }
        }
    } else {
        colon = memrchr(a, ':', len);
    }

    hostlen = colon != NULL ? (size_t)(colon - a) : len;
    if (colon != NULL && port_parse(colon + 1, len - hostlen - 1, &out->port) != 0) {
        *err = err_url_port;
        return -1;
    }
    out->host = cfg_strndup(a, hostlen);
    if (host_valid(out->host, hostlen) != 0) {
        *err = err_url_host;
        return -1;
    }
    return 0;
}

int cfg_url_parse(const char *s, cmn_config_url_t *out, bool allow_path, const char **err)
{
    size_t len = strlen(s);
    size_t skip, alen, i;
    const char *auth, *rest;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (len > CFG_MAX_URL_LEN) {
        *err = err_url_long;
        return -1;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            *err = err_url_chars;
            return -1;
        }
    }

    if (strncasecmp(s, "https://", 8) == 0) {
        out->scheme = cfg_strdup("https");
        skip = 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        out->scheme = cfg_strdup("http");
        skip = 7;
    } else {
        *err = err_url_scheme;
        return -1;
    }

    auth = s + skip;
    alen = strcspn(auth, "/?#");
    if (authority_parse(auth, alen, out, err) != 0) {
        goto Exit;
    }

    rest = auth + alen;
    if (strpbrk(rest, "?#") != NULL) {
        *err = err_url_query;
        goto Exit;
    }
    if (!allow_path && rest[0] != '\0' && strcmp(rest, "/") != 0) {
        *err = err_url_path;
        goto Exit;
    }

    /* the raw form drops one trailing slash, so "https://a.example/" joins paths cleanly */
    out->raw = cfg_strndup(s, rest[0] != '\0' && s[len - 1] == '/' ? len - 1 : len);
    ret = 0;

Exit:
    if (ret != 0) {
        cmn_config_url_clear(out);
    }
    return ret;
}

int cmn_config_url_parse(const char *s, cmn_config_url_t *out, const char **err)
{
    return cfg_url_parse(s, out, false, err);
}

void cmn_config_url_clear(cmn_config_url_t *url)
{
    free(url->raw);
    free(url->scheme);
    free(url->host);
    memset(url, 0, sizeof(*url));
}

/* generic setters */

int cfg_set_string(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    char **dst = field;
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    free(*dst);
    *dst = cfg_strdup(s);
    return 0;
}

int cfg_set_bool(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val->node != NULL ? cfg_src_of_node(ctx, val->node) : val->src;
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (cfg_parse_bool(s, field) != 0) {
        cfg_error(ctx, &src, name, "must be true or false (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    return 0;
}

static int set_duration(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, uint64_t *ms)
{
    cfg_src_t src = val->node != NULL ? cfg_src_of_node(ctx, val->node) : val->src;
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (cmn_config_parse_duration(s, ms) != 0) {
        cfg_error(ctx, &src, name, "not a duration like 90s, 14h or 1h30m (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    return 0;
}

int cfg_set_duration_ms(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    return set_duration(ctx, name, val, field);
}

int cfg_set_duration_s(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    uint64_t ms;

    if (set_duration(ctx, name, val, &ms) != 0) {
        return -1;
    }
    *(uint64_t *)field = ms / 1000;
    return 0;
}

int cfg_set_list(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cmn_strlist_t *list = field;

    cfg_strlist_clear(list);
    return cfg_val_list(ctx, name, val, list);
}

int cfg_set_url(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val->node != NULL ? cfg_src_of_node(ctx, val->node) : val->src;
    cmn_config_url_t *url = field;
    const char *s;
    const char *err = NULL;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    cmn_config_url_clear(url);
    if (cmn_config_url_parse(s, url, &err) != 0) {
        cfg_error(ctx, &src, name, "%s", err);
        return -1;
    }
    return 0;
}

int cfg_set_url_string(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val->node != NULL ? cfg_src_of_node(ctx, val->node) : val->src;
    cmn_config_url_t url;
    const char *s;
    const char *err = NULL;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (cfg_url_parse(s, &url, true, &err) != 0) {
        cfg_error(ctx, &src, name, "%s", err);
        return -1;
    }
    cmn_config_url_clear(&url);
    free(*(char **)field);
    *(char **)field = cfg_strdup(s);
    return 0;
}
