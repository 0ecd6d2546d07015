/* SPDX-License-Identifier: MIT */
/* Parses the session record's data object into what authorize keeps in its cache. */
#include "common/session.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static char *dup_or_die(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        cmn_unreachable("out of memory");
    }
    return p;
}

/* an optional string member: absent or null leaves NULL, any other type is an error */
static int get_opt_string(const json_t *data, const char *name, char **out)
{
    const json_t *v = json_object_get(data, name);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    *out = dup_or_die(json_string_value(v));
    return 0;
}

/* a required unix time in seconds */
static int get_time(const json_t *data, const char *name, uint64_t *out)
{
    const json_t *v = json_object_get(data, name);

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_groups(const json_t *data, cmn_strlist_t *out, const char **err)
{
    const json_t *v = json_object_get(data, "groups");
    size_t i;

    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_array(v)) {
        *err = cmn_err_malformed;
        return -1;
    }
    if (json_array_size(v) > CMN_SESSION_MAX_GROUPS) {
        *err = cmn_err_too_large;
        return -1;
    }

    out->items = calloc(json_array_size(v) + 1, sizeof(out->items[0]));
    if (out->items == NULL) {
        cmn_unreachable("out of memory");
    }
    for (i = 0; i < json_array_size(v); i++) {
        const json_t *g = json_array_get(v, i);
        if (!json_is_string(g)) {
            *err = cmn_err_malformed;
            return -1;
        }
        out->items[out->len++] = dup_or_die(json_string_value(g));
    }
    return 0;
}

static int get_claims(const json_t *data, json_t **out)
{
    json_t *v = json_object_get(data, "claims");

    if (v == NULL || json_is_null(v)) {
        *out = json_object();
        return *out == NULL ? -1 : 0;
    }
    if (!json_is_object(v)) {
        return -1;
    }
    *out = json_incref(v);
    return 0;
}

cmn_session_t *cmn_session_from_json(const char *id, const json_t *data, const char **err)
{
    cmn_session_t *s = NULL;
    cmn_session_t *ret = NULL;
    const json_t *verified;

    if (id == NULL || id[0] == '\0' || !json_is_object(data)) {
        *err = cmn_err_malformed;
        return NULL;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        cmn_unreachable("out of memory");
    }
    s->id = dup_or_die(id);
    *err = cmn_err_malformed;

    if (get_opt_string(data, "user_id", &s->user_id) != 0 || s->user_id == NULL) {
        goto Exit;
    }
    if (get_opt_string(data, "email", &s->email) != 0 ||
        get_opt_string(data, "name", &s->name) != 0) {
        goto Exit;
    }

    verified = json_object_get(data, "email_verified");
    if (verified != NULL && !json_is_null(verified) && !json_is_boolean(verified)) {
        goto Exit;
    }
    s->email_verified = json_is_true(verified);

    if (get_groups(data, &s->groups, err) != 0) {
        goto Exit;
    }
    *err = cmn_err_malformed;
    if (get_claims(data, &s->claims) != 0) {
        goto Exit;
    }

    /* a record without a lifetime would live for ever in the cache */
    if (get_time(data, "issued", &s->issued) != 0 || get_time(data, "expiry", &s->expiry) != 0 ||
        s->expiry < s->issued) {
        goto Exit;
    }

    ret = s;
    s = NULL;

Exit:
    cmn_session_destroy(s);
    return ret;
}

void cmn_session_destroy(cmn_session_t *session)
{
    size_t i;

    if (session == NULL) {
        return;
    }
    if (session->compact) {
        json_decref(session->claims);
        free(session);
        return;
    }
    free(session->id);
    free(session->user_id);
    free(session->email);
    free(session->name);
    for (i = 0; i < session->groups.len; i++) {
        free(session->groups.items[i]);
    }
    free(session->groups.items);
    json_decref(session->claims);
    free(session);
}

/* the claims a compact copy keeps; NULL when none */
static json_t *kept_claims(const cmn_session_t *s, const json_t *keep)
{
    json_t *out = NULL;
    const char *name;
    json_t *value;

    if (!json_is_object(s->claims)) {
        return NULL;
    }
    if (keep == NULL) {
        return json_object_size(s->claims) > 0 ? json_incref(s->claims) : NULL;
    }
    json_object_foreach(s->claims, name, value) {
        bool wanted = json_object_get(keep, name) != NULL ||
                      (!s->email_verified && strcmp(name, "email_verified") == 0);
        if (!wanted) {
            continue;
        }
        if (out == NULL) {
            out = json_object();
        }
        if (out == NULL || json_object_set(out, name, value) != 0) {
            cmn_unreachable("out of memory");
        }
    }
    return out;
}

static size_t size_of(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

/* copies `s` (or NULL) to *pos and moves it on */
static char *put_string(char **pos, const char *s)
{
    char *at = *pos;
    size_t n = size_of(s);

    if (s == NULL) {
        return NULL;
    }
    memcpy(at, s, n);
    *pos += n;
    return at;
}

cmn_session_t *cmn_session_compact(const cmn_session_t *s, const json_t *keep)
{
    size_t items = s->groups.len > 0 ? (s->groups.len + 1) * sizeof(char *) : 0;
    size_t size = sizeof(cmn_session_t) + items + size_of(s->id) + size_of(s->user_id) +
                  size_of(s->email) + size_of(s->name);
    cmn_session_t *c;
    char *pos;

    for (size_t i = 0; i < s->groups.len; i++) {
        size += size_of(s->groups.items[i]);
    }
    c = malloc(size);
    if (c == NULL) {
        cmn_unreachable("out of memory");
    }

    *c = (cmn_session_t){.email_verified = s->email_verified, .issued = s->issued,
                         .expiry = s->expiry, .compact = true};
    pos = (char *)(c + 1) + items;
    if (items > 0) {
        c->groups.items = (char **)(c + 1);
        for (size_t i = 0; i < s->groups.len; i++) {
            c->groups.items[i] = put_string(&pos, s->groups.items[i]);
        }
        c->groups.items[s->groups.len] = NULL;
        c->groups.len = s->groups.len;
    }
    c->id = put_string(&pos, s->id);
    c->user_id = put_string(&pos, s->user_id);
    c->email = put_string(&pos, s->email);
    c->name = put_string(&pos, s->name);
    c->claims = kept_claims(s, keep);
    return c;
}
