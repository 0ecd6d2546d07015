/* SPDX-License-Identifier: MIT */
/* PPL parser: rules, actions, operator blocks and criterion objects into the compiled form. */
#include "authorize/ppl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/err.h"

static const struct {
    const char *name;
    ppl_op_t op;
} operators[] = {
    {"and", PPL_OP_AND},
    {"or", PPL_OP_OR},
    {"not", PPL_OP_NOT},
    {"nor", PPL_OP_NOR},
};

#define NUM_OPERATORS (sizeof(operators) / sizeof(operators[0]))

static int operator_of(const char *name, ppl_op_t *op)
{
    for (size_t i = 0; i < NUM_OPERATORS; i++) {
        if (strcmp(operators[i].name, name) == 0) {
            *op = operators[i].op;
            return 0;
        }
    }
    return -1;
}

/* appends to the position shown in messages; returns the old length to restore */
static size_t where_push(ppl_compile_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t where_push(ppl_compile_t *c, const char *fmt, ...)
{
    size_t old = strlen(c->where);
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(c->where + old, sizeof(c->where) - old, fmt, ap);
    va_end(ap);
    return old;
}

static void where_pop(ppl_compile_t *c, size_t old)
{
    c->where[old] = '\0';
}

static void action_push(ppl_action_t *action, const ppl_block_t *block)
{
    if (action->num_blocks == action->cap) {
        size_t cap = action->cap == 0 ? 4 : action->cap * 2;
        ppl_block_t *blocks = realloc(action->blocks, cap * sizeof(blocks[0]));
        if (blocks == NULL) {
            cmn_unreachable("out of memory while compiling a policy");
        }
        action->blocks = blocks;
        action->cap = cap;
    }
    action->blocks[action->num_blocks++] = *block;
}

static int criterion_item(ppl_compile_t *c, const json_t *item, ppl_criterion_t *out)
{
    const char *key;
    json_t *value;
    ppl_op_t op;

    if (!json_is_object(item)) {
        ppl_error(c, "a criterion must be an object with one key");
        return -1;
    }
    if (json_object_size(item) != 1) {
        ppl_error(c, "a criterion object must have exactly one key, not %zu",
                  json_object_size(item));
        return -1;
    }
    json_object_foreach((json_t *)item, key, value) {
        if (operator_of(key, &op) == 0) {
            ppl_error(c, "unknown criterion \"%s\" (operators do not nest)", key);
            return -1;
        }
        return ppl_criterion_compile(c, key, value, out);
    }
    return -1;
}

static int block_compile(ppl_compile_t *c, const char *name, ppl_op_t op, const json_t *list,
                         ppl_action_t *action, bool *needs_session)
{
    ppl_block_t block = {op, NULL, 0};
    const json_t *item;
    size_t i, old;
    int ret = 0;

    if (!json_is_array(list)) {
        ppl_error(c, "\"%s\" takes a list of criteria", name);
        return -1;
    }
    /* an empty list contributes nothing, not an always-true "and" */
    if (json_array_size(list) == 0) {
        return 0;
    }
    block.criteria = ppl_alloc(c->arena, json_array_size(list) * sizeof(block.criteria[0]));
    json_array_foreach(list, i, item) {
        old = where_push(c, "[%zu]", i);
        if (criterion_item(c, item, &block.criteria[i]) != 0) {
            ret = -1;
        } else if (ppl_criterion_needs_session(&block.criteria[i])) {
            *needs_session = true;
        }
        where_pop(c, old);
    }
    block.num_criteria = json_array_size(list);
    if (ret == 0) {
        action_push(action, &block);
    }
    return ret;
}

static int body_compile(ppl_compile_t *c, const json_t *body, ppl_action_t *action,
                        bool *needs_session)
{
    const char *key;
    json_t *list;
    int ret = 0;

    if (!json_is_object(body)) {
        ppl_error(c, "an action takes a map of and, or, not, nor");
        return -1;
    }
    json_object_foreach((json_t *)body, key, list) {
        ppl_op_t op;
        size_t old;
        if (strcmp(key, "action") == 0) {
            continue; /* Pomerium ignores it too */
        }
        if (operator_of(key, &op) != 0) {
            ppl_error(c, "unknown operator \"%.64s\" (and, or, not, nor)", key);
            ret = -1;
            continue;
        }
        old = where_push(c, ".%s", key);
        if (block_compile(c, key, op, list, action, needs_session) != 0) {
            ret = -1;
        }
        where_pop(c, old);
    }
    return ret;
}

static int rule_compile(ppl_compile_t *c, const json_t *rule, authz_policy_t *policy)
{
    const char *key;
    json_t *body;
    int ret = 0;

    json_object_foreach((json_t *)rule, key, body) {
        ppl_action_t *action;
        size_t old;
        if (strcmp(key, "allow") == 0) {
            action = &policy->allow;
        } else if (strcmp(key, "deny") == 0) {
            action = &policy->deny;
        } else {
            ppl_error(c, "action must be allow or deny, not \"%.64s\"", key);
            ret = -1;
            continue;
        }
        old = where_push(c, "%s%s", c->where[0] != '\0' ? "." : "", key);
        if (body_compile(c, body, action, &policy->needs_session) != 0) {
            ret = -1;
        }
        where_pop(c, old);
    }
    return ret;
}

int ppl_compile_rules(ppl_compile_t *c, const json_t *ppl, authz_policy_t *policy)
{
    const json_t *rule;
    size_t i, old;
    int ret = 0;

    if (json_is_object(ppl)) {
        return rule_compile(c, ppl, policy);
    }
    if (!json_is_array(ppl)) {
        ppl_error(c, "a policy is a rule or a list of rules");
        return -1;
    }
    json_array_foreach(ppl, i, rule) {
        old = where_push(c, "[%zu]", i);
        if (!json_is_object(rule)) {
            ppl_error(c, "every element of a rule list must be a rule object");
            ret = -1;
        } else if (rule_compile(c, rule, policy) != 0) {
            ret = -1;
        }
        where_pop(c, old);
    }
    return ret;
}
