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
