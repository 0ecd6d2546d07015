/* SPDX-License-Identifier: MIT */
/* PPL string and string-list matchers, the compile arena and compile error messages. */
#include "authorize/ppl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/err.h"

/* arena */

static void arena_push(void ***items, size_t *len, size_t *cap, void *p)
{
    if (*len == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        void **n = realloc(*items, ncap * sizeof(n[0]));
        if (n == NULL) {
            cmn_unreachable("out of memory while compiling a policy");
        }
        *items = n;
        *cap = ncap;
    }
    (*items)[(*len)++] = p;
}

void *ppl_alloc(ppl_arena_t *arena, size_t size)
{
    void *p = calloc(1, size == 0 ? 1 : size);

    if (p == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    arena_push(&arena->ptrs, &arena->len, &arena->cap, p);
    return p;
}

char *ppl_strndup(ppl_arena_t *arena, const char *s, size_t len)
{
    char *p = ppl_alloc(arena, len + 1);

    memcpy(p, s, len);
    return p;
}

json_t *ppl_keep_json(ppl_arena_t *arena, const json_t *value)
{
    json_t *copy = json_deep_copy(value);

    if (copy == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    arena_push((void ***)&arena->jsons, &arena->num_jsons, &arena->jsons_cap, copy);
    return copy;
}

void ppl_arena_clear(ppl_arena_t *arena)
{
    for (size_t i = 0; i < arena->len; i++) {
        free(arena->ptrs[i]);
    }
    for (size_t i = 0; i < arena->num_jsons; i++) {
        json_decref(arena->jsons[i]);
    }
    free(arena->ptrs);
    free(arena->jsons);
    memset(arena, 0, sizeof(*arena));
}

void ppl_error(ppl_compile_t *c, const char *fmt, ...)
{
    char reason[768];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(reason, sizeof(reason), fmt, ap) < 0) {
        reason[0] = '\0';
    }
    va_end(ap);

    c->num_errors++;
    if (c->where[0] != '\0') {
        authz_policy_error_add(c->errors, c->file, c->line, c->name, "%s (at %s)", reason,
                               c->where);
    } else {
        authz_policy_error_add(c->errors, c->file, c->line, c->name, "%s", reason);
    }
}

/* values */

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool bytes_eq(const char *a, const char *b, size_t len, bool fold_case)
{
    if (!fold_case) {
        return memcmp(a, b, len) == 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

static int value_compile(ppl_compile_t *c, const json_t *j, bool fold_case, ppl_value_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = json_typeof(j);

    switch (out->type) {
    case JSON_STRING: {
        size_t len = json_string_length(j);
        char *s;
        if (len > PPL_MAX_VALUE_LEN) {
            ppl_error(c, "a value is longer than %d bytes (PPL_MAX_VALUE_LEN)",
                      PPL_MAX_VALUE_LEN);
            return -1;
        }
        s = ppl_strndup(c->arena, json_string_value(j), len);
        for (size_t i = 0; fold_case && i < len; i++) {
            s[i] = ascii_lower(s[i]);
        }
        out->str = s;
        out->len = len;
        return 0;
    }
    case JSON_INTEGER:
    case JSON_REAL:
        out->number = json_number_value(j);
        return 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        out->json = ppl_keep_json(c->arena, j);
        return 0;
    default:
        return 0;
    }
}

static bool value_eq_str(const ppl_value_t *v, const char *s, size_t len, bool fold_case)
{
    return v->type == JSON_STRING && v->len == len && bytes_eq(v->str, s, len, fold_case);
}

/* JSON-typed equality: 1 is not "1", true is not "true" */
static bool value_eq_json(const ppl_value_t *v, const json_t *j)
{
    switch (v->type) {
    case JSON_STRING:
        return json_is_string(j) && value_eq_str(v, json_string_value(j), json_string_length(j),
                                                 false);
    case JSON_INTEGER:
    case JSON_REAL:
        return json_is_number(j) && json_number_value(j) == v->number;
    case JSON_ARRAY:
    case JSON_OBJECT:
        return json_equal(v->json, (json_t *)j);
    default:
        return json_typeof(j) == v->type;
    }
}

/* string matcher */

static const struct {
    const char *name;
    ppl_string_op_t op;
} string_ops[] = {
    {"is", PPL_SM_IS},
    {"not", PPL_SM_NOT},
    {"contains", PPL_SM_CONTAINS},
    {"starts_with", PPL_SM_STARTS_WITH},
    {"ends_with", PPL_SM_ENDS_WITH},
    {"in", PPL_SM_IN},
    {"not_in", PPL_SM_NOT_IN},
};

static int string_cond_compile(ppl_compile_t *c, const char *name, const json_t *arg,
                               bool fold_case, ppl_string_cond_t *out)
{
    size_t i, n = sizeof(string_ops) / sizeof(string_ops[0]);
    const json_t *item;

    for (i = 0; i < n && strcmp(string_ops[i].name, name) != 0; i++) {
    }
    if (i == n) {
        ppl_error(c, "unknown string matcher \"%.64s\" (is, not, contains, starts_with, "
                     "ends_with, in, not_in)", name);
        return -1;
    }
    out->op = string_ops[i].op;

    if (out->op == PPL_SM_IN || out->op == PPL_SM_NOT_IN) {
        if (!json_is_array(arg)) {
            ppl_error(c, "\"%s\" needs a list", name);
            return -1;
        }
        out->list_len = json_array_size(arg);
        out->list = ppl_alloc(c->arena, out->list_len * sizeof(out->list[0]));
        json_array_foreach(arg, i, item) {
            if (value_compile(c, item, fold_case, &out->list[i]) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (out->op != PPL_SM_IS && out->op != PPL_SM_NOT && !json_is_string(arg)) {
        ppl_error(c, "\"%s\" needs a string", name);
        return -1;
    }
    return value_compile(c, arg, fold_case, &out->value);
}

int ppl_string_matcher_compile(ppl_compile_t *c, const json_t *spec, bool fold_case,
                               ppl_string_matcher_t *out)
{
    const char *name;
    json_t *arg;
    size_t i = 0;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    out->fold_case = fold_case;

    /* a bare value, even a list, means {is: value} */
    if (!json_is_object(spec)) {
        out->conds = ppl_alloc(c->arena, sizeof(out->conds[0]));
        out->num_conds = 1;
        out->conds[0].op = PPL_SM_IS;
        return value_compile(c, spec, fold_case, &out->conds[0].value);
    }
    if (json_object_size(spec) == 0) {
        ppl_error(c, "a string matcher needs at least one of is, not, contains, starts_with, "
                     "ends_with, in, not_in");
        return -1;
    }
    out->conds = ppl_alloc(c->arena, json_object_size(spec) * sizeof(out->conds[0]));
    json_object_foreach((json_t *)spec, name, arg) {
        if (string_cond_compile(c, name, arg, fold_case, &out->conds[i++]) != 0) {
            ret = -1;
        }
    }
    out->num_conds = i;
    return ret;
}

static bool contains(const char *hay, size_t hay_len, const char *needle, size_t len,
                     bool fold_case)
{
    if (len > hay_len) {
        return false;
    }
    for (size_t i = 0; i + len <= hay_len; i++) {
        if (bytes_eq(hay + i, needle, len, fold_case)) {
            return true;
        }
    }
    return false;
}

static bool in_list(const ppl_string_cond_t *cond, const char *s, size_t len, bool fold_case)
{
    for (size_t i = 0; i < cond->list_len; i++) {
        if (value_eq_str(&cond->list[i], s, len, fold_case)) {
            return true;
        }
    }
    return false;
}

static bool string_cond_match(const ppl_string_cond_t *cond, const char *s, size_t len,
                              bool fold_case)
{
    const ppl_value_t *v = &cond->value;

    switch (cond->op) {
    case PPL_SM_IS:
        return value_eq_str(v, s, len, fold_case);
    case PPL_SM_NOT:
        return !value_eq_str(v, s, len, fold_case);
    case PPL_SM_CONTAINS:
        return contains(s, len, v->str, v->len, fold_case);
    case PPL_SM_STARTS_WITH:
        return v->len <= len && bytes_eq(s, v->str, v->len, fold_case);
    case PPL_SM_ENDS_WITH:
        return v->len <= len && bytes_eq(s + len - v->len, v->str, v->len, fold_case);
    case PPL_SM_IN:
        return in_list(cond, s, len, fold_case);
    case PPL_SM_NOT_IN:
        return !in_list(cond, s, len, fold_case);
    }
    return false;
}

bool ppl_string_matcher_match(const ppl_string_matcher_t *m, const char *s, size_t len)
{
    for (size_t i = 0; i < m->num_conds; i++) {
        if (!string_cond_match(&m->conds[i], s, len, m->fold_case)) {
            return false;
        }
    }
    return m->num_conds > 0;
}

/* string-list matcher */

int ppl_list_matcher_compile(ppl_compile_t *c, const json_t *spec, ppl_list_matcher_t *out)
{
    const char *name;
    json_t *arg;
    size_t i = 0;
    int ret = 0;

    memset(out, 0, sizeof(*out));

    /* a bare value means {has: value}; a bare list is one value and so matches nothing */
    if (!json_is_object(spec)) {
        out->conds = ppl_alloc(c->arena, sizeof(out->conds[0]));
        out->num_conds = 1;
        out->conds[0].op = PPL_LM_HAS;
        return value_compile(c, spec, false, &out->conds[0].value);
    }
    if (json_object_size(spec) == 0) {
        ppl_error(c, "a list matcher needs at least one of has, is, exclude");
        return -1;
    }
    out->conds = ppl_alloc(c->arena, json_object_size(spec) * sizeof(out->conds[0]));
    json_object_foreach((json_t *)spec, name, arg) {
        ppl_list_cond_t *cond = &out->conds[i++];
        if (strcmp(name, "has") == 0) {
            cond->op = PPL_LM_HAS;
        } else if (strcmp(name, "is") == 0) {
            cond->op = PPL_LM_IS;
        } else if (strcmp(name, "exclude") == 0) {
            cond->op = PPL_LM_EXCLUDE;
        } else {
            ppl_error(c, "unknown list matcher \"%.64s\" (has, is, exclude)", name);
            ret = -1;
            continue;
        }
        if (value_compile(c, arg, false, &cond->value) != 0) {
            ret = -1;
        }
    }
    out->num_conds = i;
    return ret;
}

static size_t subject_len(const ppl_list_subject_t *subject)
{
    if (subject->strings != NULL) {
        return subject->strings->len;
    }
    if (subject->json == NULL || json_is_null(subject->json)) {
        return 0;
    }
    return json_is_array(subject->json) ? json_array_size(subject->json) : 1;
}

static bool subject_eq(const ppl_list_subject_t *subject, size_t i, const ppl_value_t *v)
{
    if (subject->strings != NULL) {
        const char *s = subject->strings->items[i];
        return value_eq_str(v, s, strlen(s), false);
    }
    if (json_is_array(subject->json)) {
        return value_eq_json(v, json_array_get(subject->json, i));
    }
    return value_eq_json(v, subject->json);
}

static bool subject_has(const ppl_list_subject_t *subject, size_t n, const ppl_value_t *v)
{
    for (size_t i = 0; i < n; i++) {
        if (subject_eq(subject, i, v)) {
            return true;
        }
    }
    return false;
}

bool ppl_list_matcher_match(const ppl_list_matcher_t *m, const ppl_list_subject_t *subject)
{
    size_t n = subject_len(subject);

    for (size_t i = 0; i < m->num_conds; i++) {
        const ppl_list_cond_t *cond = &m->conds[i];
        bool ok = false;
        switch (cond->op) {
        case PPL_LM_HAS:
            ok = subject_has(subject, n, &cond->value);
            break;
        case PPL_LM_IS:
            ok = n == 1 && subject_eq(subject, 0, &cond->value);
            break;
        case PPL_LM_EXCLUDE:
            ok = !subject_has(subject, n, &cond->value);
            break;
        }
        if (!ok) {
            return false;
        }
    }
    return m->num_conds > 0;
}
