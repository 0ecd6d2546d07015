/* SPDX-License-Identifier: MIT */
/* Evaluates a route's legacy fields (allowed_users, _domains, _groups, _idp_claims, ...). */
#include "authorize/policy.h"

#include <string.h>
#include <strings.h>

/*
 * The legacy fields compile, as in Pomerium, to one "allow: or: [...]" rule whose criteria are
 * the functions below; the PPL evaluator (issue #3) will reuse them as its criteria.
 */
typedef bool (*criterion_fn)(const cmn_route_t *route, const cmn_session_t *session);

typedef struct st_criterion_t {
    criterion_fn configured; /* does the route use this criterion at all */
    criterion_fn holds;
    const char *allow_reason;
    const char *deny_reason;
} criterion_t;

static bool ieq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* DESIGN.md §3: an email the IdP marked unverified satisfies no email or domain criterion */
static bool email_usable(const cmn_session_t *session)
{
    json_t *stated = NULL;

    if (session->email == NULL || session->email[0] == '\0') {
        return false;
    }
    if (session->email_verified) {
        return true;
    }
    if (json_is_object(session->claims)) {
        stated = json_object_get(session->claims, "email_verified");
    }
    return stated == NULL || json_is_null(stated);
}

static bool users_configured(const cmn_route_t *route, const cmn_session_t *session)
{
    return route->allowed_users.len > 0;
}

static bool users_hold(const cmn_route_t *route, const cmn_session_t *session)
{
    bool email_ok = email_usable(session);

    for (size_t i = 0; i < route->allowed_users.len; i++) {
        const char *want = route->allowed_users.items[i];
        if (ieq(want, session->user_id)) {
            return true;
        }
        if (email_ok && ieq(want, session->email)) {
            return true;
        }
    }
    return false;
}

static bool domains_configured(const cmn_route_t *route, const cmn_session_t *session)
{
    return route->allowed_domains.len > 0;
}

static bool domains_hold(const cmn_route_t *route, const cmn_session_t *session)
{
    const char *at;

    if (!email_usable(session)) {
        return false;
    }
    at = strrchr(session->email, '@');
    if (at == NULL || at[1] == '\0') {
        return false;
    }
    for (size_t i = 0; i < route->allowed_domains.len; i++) {
        /* the whole domain after '@': "evilexample.com" and "sub.example.com" are not
         * "example.com" */
        if (ieq(route->allowed_domains.items[i], at + 1)) {
            return true;
        }
    }
    return false;
}

static bool groups_configured(const cmn_route_t *route, const cmn_session_t *session)
{
    return route->allowed_groups.len > 0;
}

static bool groups_hold(const cmn_route_t *route, const cmn_session_t *session)
{
    for (size_t i = 0; i < route->allowed_groups.len; i++) {
        for (size_t j = 0; j < session->groups.len; j++) {
            if (strcmp(route->allowed_groups.items[i], session->groups.items[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

static bool claims_configured(const cmn_route_t *route, const cmn_session_t *session)
{
    return json_is_object(route->allowed_idp_claims) &&
           json_object_size(route->allowed_idp_claims) > 0;
}

static bool value_in(const json_t *value, const json_t *allowed)
{
    size_t i;
    json_t *candidate;

    if (json_is_array(allowed)) {
        json_array_foreach(allowed, i, candidate) {
            if (json_equal((json_t *)value, candidate)) {
                return true;
            }
        }
        return false;
    }
    return json_equal((json_t *)value, (json_t *)allowed);
}

/* one claim: a scalar must be in the list; an array claim holds when any element is */
static bool claim_holds(const json_t *have, const json_t *allowed)
{
    size_t i;
    json_t *element;

    if (have == NULL || json_is_null(have)) {
        return false;
    }
    if (!json_is_array(have)) {
        return value_in(have, allowed);
    }
    json_array_foreach(have, i, element) {
        if (value_in(element, allowed)) {
            return true;
        }
    }
    return false;
}

static bool claims_hold(const cmn_route_t *route, const cmn_session_t *session)
{
    const char *name;
    json_t *allowed;

    if (!json_is_object(session->claims)) {
        return false;
    }
    json_object_foreach(route->allowed_idp_claims, name, allowed) {
        if (claim_holds(json_object_get(session->claims, name), allowed)) {
            return true;
        }
    }
    return false;
}

static const criterion_t legacy_criteria[] = {
    {users_configured, users_hold, "allowed-user", "user-unauthorized"},
    {domains_configured, domains_hold, "allowed-domain", "email-unauthorized"},
    {groups_configured, groups_hold, "allowed-group", "groups-unauthorized"},
    {claims_configured, claims_hold, "allowed-claim", "claims-unauthorized"},
};

static authz_verdict_t evaluate_legacy(const cmn_route_t *route, const cmn_session_t *session,
                                       const char **reason)
{
    const char *deny = "no-allow-rule";

    for (size_t i = 0; i < sizeof(legacy_criteria) / sizeof(legacy_criteria[0]); i++) {
        const criterion_t *c = &legacy_criteria[i];
        if (!c->configured(route, session)) {
            continue;
        }
        if (c->holds(route, session)) {
            *reason = c->allow_reason;
            return AUTHZ_VERDICT_ALLOW;
        }
        if (strcmp(deny, "no-allow-rule") == 0) {
            deny = c->deny_reason;
        }
    }
    *reason = deny;
    return AUTHZ_VERDICT_DENY;
}

bool authz_policy_is_preflight(const authz_policy_input_t *in)
{
    return h2o_memis(in->method.base, in->method.len, H2O_STRLIT("OPTIONS")) && in->has_origin &&
           in->has_preflight_method;
}

bool authz_policy_needs_no_session(const cmn_route_t *route, const authz_policy_input_t *in)
{
    if (route->allow_public_unauthenticated_access) {
        return true;
    }
    return route->cors_allow_preflight && authz_policy_is_preflight(in);
}

authz_verdict_t authz_policy_evaluate(const cmn_route_t *route, const authz_policy_input_t *in,
                                      const cmn_session_t *session, const char **reason)
{
    if (route->cors_allow_preflight && authz_policy_is_preflight(in)) {
        *reason = "cors-preflight";
        return AUTHZ_VERDICT_ALLOW;
    }
    if (route->allow_public_unauthenticated_access) {
        *reason = "public-access";
        return AUTHZ_VERDICT_ALLOW;
    }
    if (session == NULL) {
        *reason = "unauthenticated";
        return AUTHZ_VERDICT_UNAUTHENTICATED;
    }

    /* TODO(#3): a PPL block is not evaluated yet; refusing beats ignoring a deny rule in it */
    if (route->policy != NULL) {
        *reason = "ppl-not-supported";
        return AUTHZ_VERDICT_DENY;
    }
    if (route->allow_any_authenticated_user) {
        *reason = "any-authenticated-user";
        return AUTHZ_VERDICT_ALLOW;
    }
    return evaluate_legacy(route, session, reason);
}
