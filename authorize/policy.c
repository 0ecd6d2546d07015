/* SPDX-License-Identifier: MIT */
/* Route policy: compiles legacy fields and PPL once per route, decides a request (no malloc). */
#include "authorize/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "authorize/ppl.h"
#include "common/err.h"

#define PPL_MAX_ERROR_LEN 1024

void authz_policy_error_add(cmn_strlist_t *errors, const char *file, unsigned line,
                            const char *name, const char *fmt, ...)
{
    char reason[PPL_MAX_ERROR_LEN], where[32] = "";
    char **items;
    char *msg;
    va_list ap;
    int n;

    va_start(ap, fmt);
    if (vsnprintf(reason, sizeof(reason), fmt, ap) < 0) {
        reason[0] = '\0';
    }
    va_end(ap);
    if (line != 0) {
        snprintf(where, sizeof(where), ":%u", line);
    }

    n = snprintf(NULL, 0, "[%s%s] %s: %s", file != NULL ? file : "config", where, name, reason);
    msg = n < 0 ? NULL : malloc((size_t)n + 1);
    items = realloc(errors->items, (errors->len + 2) * sizeof(items[0]));
    if (msg == NULL || items == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    snprintf(msg, (size_t)n + 1, "[%s%s] %s: %s", file != NULL ? file : "config", where, name,
             reason);
    errors->items = items;
    errors->items[errors->len++] = msg;
    errors->items[errors->len] = NULL;
}

bool authz_policy_is_preflight(const authz_policy_input_t *in)
{
    return h2o_memis(in->method.base, in->method.len, H2O_STRLIT("OPTIONS")) && in->has_origin &&
           in->has_preflight_method;
}

/* legacy fields */

/* policy-cases.md §2.3: the combinations Pomerium's Policy.Validate refuses */
static void check_conflicts(ppl_compile_t *c, const cmn_route_t *r)
{
    static const char public_key[] = "allow_public_unauthenticated_access";
    static const char any_key[] = "allow_any_authenticated_user";

    if (r->allow_public_unauthenticated_access && r->allow_any_authenticated_user) {
        ppl_error(c, "%s cannot be combined with %s", public_key, any_key);
    }
    if (r->allow_public_unauthenticated_access && r->allowed_domains.len > 0) {
        ppl_error(c, "%s cannot be combined with allowed_domains", public_key);
    }
    if (r->allow_public_unauthenticated_access && r->allowed_users.len > 0) {
        ppl_error(c, "%s cannot be combined with allowed_users", public_key);
    }
    if (r->allow_any_authenticated_user && r->allowed_domains.len > 0) {
        ppl_error(c, "%s cannot be combined with allowed_domains", any_key);
    }
    if (r->allow_any_authenticated_user && r->allowed_users.len > 0) {
        ppl_error(c, "%s cannot be combined with allowed_users", any_key);
    }
}

static void push(json_t *list, json_t *criterion)
{
    if (criterion == NULL || json_array_append_new(list, criterion) != 0) {
        cmn_unreachable("out of memory while compiling a policy");
    }
}

static json_t *matcher(const char *criterion, const char *op, const char *value)
{
    return json_pack("{s:{s:s}}", criterion, op, value);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* allowed_idp_claims: one `claim/K: V` per key (sorted) and value */
static void push_claims(json_t *list, const json_t *claims)
{
    size_t n = json_object_size(claims), i = 0, j;
    const char **keys;
    const char *key;
    json_t *values, *v;
    char name[PPL_MAX_VALUE_LEN + 8];

    if (n == 0) {
        return;
    }
    keys = calloc(n, sizeof(keys[0]));
    if (keys == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    json_object_foreach((json_t *)claims, key, values) {
        keys[i++] = key;
    }
    qsort(keys, n, sizeof(keys[0]), cmp_str);
    for (i = 0; i < n; i++) {
        values = json_object_get(claims, keys[i]);
        snprintf(name, sizeof(name), "claim/%s", keys[i]);
        if (!json_is_array(values)) {
            push(list, json_pack("{s:O}", name, values));
            continue;
        }
        json_array_foreach(values, j, v) {
            push(list, json_pack("{s:O}", name, v));
        }
    }
    free(keys);
}

/* the legacy fields as one `allow: {or: [...]}` rule, in Pomerium's order; NULL when empty */
static json_t *legacy_rule(const cmn_route_t *r)
{
    json_t *list = json_array();

    if (list == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    if (r->allow_public_unauthenticated_access) {
        push(list, json_pack("{s:b}", "accept", 1));
    }
    if (r->cors_allow_preflight) {
        push(list, json_pack("{s:b}", "cors_preflight", 1));
    }
    if (r->allow_any_authenticated_user) {
        push(list, json_pack("{s:b}", "authenticated_user", 1));
    }
    for (size_t i = 0; i < r->allowed_domains.len; i++) {
        push(list, matcher("domain", "is", r->allowed_domains.items[i]));
    }
    if (json_is_object(r->allowed_idp_claims)) {
        push_claims(list, r->allowed_idp_claims);
    }
    for (size_t i = 0; i < r->allowed_groups.len; i++) {
        push(list, matcher("groups", "has", r->allowed_groups.items[i]));
    }
    for (size_t i = 0; i < r->allowed_users.len; i++) {
        push(list, matcher("user", "is", r->allowed_users.items[i]));
        push(list, matcher("email", "is", r->allowed_users.items[i]));
    }

    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return json_pack("{s:{s:o}}", "allow", "or", list);
}

/* compile and evaluate */

authz_policy_t *authz_policy_compile(const cmn_route_t *route, const char *file,
                                     cmn_strlist_t *errors)
{
    authz_policy_t *policy = calloc(1, sizeof(*policy));
    char name[64], policy_name[80];
    ppl_compile_t c;
    json_t *legacy;

    if (policy == NULL) {
        cmn_unreachable("out of memory while compiling a policy");
    }
    snprintf(name, sizeof(name), "routes[%zu]", route->index);
    snprintf(policy_name, sizeof(policy_name), "%s.policy", name);
    c = (ppl_compile_t){.arena = &policy->arena, .errors = errors, .file = file,
                        .line = route->line, .name = name};

    check_conflicts(&c, route);

    /* the legacy rule comes first, the route's own rules after it; all allows OR together */
    legacy = legacy_rule(route);
    if (legacy != NULL) {
        (void)ppl_compile_rules(&c, legacy, policy);
        json_decref(legacy);
    }
    if (route->policy != NULL) {
        c.name = policy_name;
        (void)ppl_compile_rules(&c, route->policy, policy);
    }

    if (c.num_errors > 0) {
        authz_policy_destroy(policy);
        return NULL;
    }
    return policy;
}

void authz_policy_destroy(authz_policy_t *policy)
{
    if (policy == NULL) {
        return;
    }
    ppl_arena_clear(&policy->arena);
    free(policy->allow.blocks);
    free(policy->deny.blocks);
    free(policy);
}

static void set_reasons(authz_decision_t *out, ppl_reasons_t reasons)
{
    for (unsigned r = 0; r < PPL_R_COUNT && out->num_reasons < AUTHZ_MAX_REASONS; r++) {
        if ((reasons & PPL_BIT(r)) != 0) {
            out->reasons[out->num_reasons++] = ppl_reason_names[r];
        }
    }
}

/* policy-cases.md §2.6 */
void authz_policy_evaluate(const authz_policy_t *policy, const authz_policy_input_t *in,
                           const cmn_session_t *session, authz_decision_t *out)
{
    ppl_env_t env = {in, session};
    ppl_result_t allow, deny;

    memset(out, 0, sizeof(*out));
    out->verdict = AUTHZ_VERDICT_DENY;
    if (policy == NULL) {
        return;
    }
    allow = ppl_action_eval(&policy->allow, &env);
    deny = ppl_action_eval(&policy->deny, &env);

    if (((allow.reasons | deny.reasons) & PPL_BIT(PPL_R_USER_UNAUTHENTICATED)) != 0) {
        out->verdict = AUTHZ_VERDICT_UNAUTHENTICATED;
        set_reasons(out, PPL_BIT(PPL_R_USER_UNAUTHENTICATED));
    } else if (deny.value) {
        set_reasons(out, deny.reasons);
    } else if (allow.value) {
        out->verdict = AUTHZ_VERDICT_ALLOW;
        set_reasons(out, allow.reasons);
    } else {
        set_reasons(out, allow.reasons);
    }
}

bool authz_policy_needs_session(const authz_policy_t *policy)
{
    return policy != NULL && policy->needs_session;
}
