/* SPDX-License-Identifier: MIT */
/* PPL criteria: compiling each one's value and evaluating it against the request and session. */
#include "authorize/ppl.h"

#include <string.h>
#include <strings.h>

typedef struct st_criterion_def_t {
    const char *name;
    ppl_kind_t kind;
    bool session;          /* fails as "user-unauthenticated" without a session */
    bool has_subpath;      /* claim/NAME */
    ppl_reason_t ok, fail; /* PPL_R_COUNT: no reason */
} criterion_def_t;

static const criterion_def_t defs[] = {
    {"accept", PPL_C_ACCEPT, false, false, PPL_R_ACCEPT, PPL_R_COUNT},
    {"reject", PPL_C_REJECT, false, false, PPL_R_COUNT, PPL_R_REJECT},
    {"authenticated_user", PPL_C_AUTHENTICATED_USER, true, false, PPL_R_USER_OK,
     PPL_R_USER_UNAUTHORIZED},
    {"user", PPL_C_USER, true, false, PPL_R_USER_OK, PPL_R_USER_UNAUTHORIZED},
    {"email", PPL_C_EMAIL, true, false, PPL_R_EMAIL_OK, PPL_R_EMAIL_UNAUTHORIZED},
    {"domain", PPL_C_DOMAIN, true, false, PPL_R_DOMAIN_OK, PPL_R_DOMAIN_UNAUTHORIZED},
    {"groups", PPL_C_GROUPS, true, false, PPL_R_GROUPS_OK, PPL_R_GROUPS_UNAUTHORIZED},
    {"claim", PPL_C_CLAIM, true, true, PPL_R_CLAIM_OK, PPL_R_CLAIM_UNAUTHORIZED},
    {"http_method", PPL_C_HTTP_METHOD, false, false, PPL_R_HTTP_METHOD_OK,
     PPL_R_HTTP_METHOD_UNAUTHORIZED},
    {"http_path", PPL_C_HTTP_PATH, false, false, PPL_R_HTTP_PATH_OK,
     PPL_R_HTTP_PATH_UNAUTHORIZED},
    {"cors_preflight", PPL_C_CORS_PREFLIGHT, false, false, PPL_R_CORS_REQUEST,
     PPL_R_NON_CORS_REQUEST},
    {"source_ip", PPL_C_SOURCE_IP, false, false, PPL_R_SOURCE_IP_OK,
     PPL_R_SOURCE_IP_UNAUTHORIZED},
    {"date", PPL_C_DATE, false, false, PPL_R_DATE_OK, PPL_R_DATE_UNAUTHORIZED},
    {"day_of_week", PPL_C_DAY_OF_WEEK, false, false, PPL_R_DAY_OF_WEEK_OK,
     PPL_R_DAY_OF_WEEK_UNAUTHORIZED},
    {"time_of_day", PPL_C_TIME_OF_DAY, false, false, PPL_R_TIME_OF_DAY_OK,
     PPL_R_TIME_OF_DAY_UNAUTHORIZED},
};

#define NUM_DEFS (sizeof(defs) / sizeof(defs[0]))

const char *const ppl_reason_names[PPL_R_COUNT] = {
    [PPL_R_ACCEPT] = "accept",
    [PPL_R_REJECT] = "reject",
    [PPL_R_USER_UNAUTHENTICATED] = "user-unauthenticated",
    [PPL_R_USER_OK] = "user-ok",
    [PPL_R_USER_UNAUTHORIZED] = "user-unauthorized",
    [PPL_R_EMAIL_OK] = "email-ok",
    [PPL_R_EMAIL_UNAUTHORIZED] = "email-unauthorized",
    [PPL_R_DOMAIN_OK] = "domain-ok",
    [PPL_R_DOMAIN_UNAUTHORIZED] = "domain-unauthorized",
    [PPL_R_GROUPS_OK] = "groups-ok",
    [PPL_R_GROUPS_UNAUTHORIZED] = "groups-unauthorized",
    [PPL_R_CLAIM_OK] = "claim-ok",
    [PPL_R_CLAIM_UNAUTHORIZED] = "claim-unauthorized",
    [PPL_R_HTTP_METHOD_OK] = "http-method-ok",
    [PPL_R_HTTP_METHOD_UNAUTHORIZED] = "http-method-unauthorized",
    [PPL_R_HTTP_PATH_OK] = "http-path-ok",
    [PPL_R_HTTP_PATH_UNAUTHORIZED] = "http-path-unauthorized",
    [PPL_R_CORS_REQUEST] = "cors-request",
    [PPL_R_NON_CORS_REQUEST] = "non-cors-request",
    [PPL_R_SOURCE_IP_OK] = "source-ip-ok",
    [PPL_R_SOURCE_IP_UNAUTHORIZED] = "source-ip-unauthorized",
    [PPL_R_DATE_OK] = "date-ok",
    [PPL_R_DATE_UNAUTHORIZED] = "date-unauthorized",
    [PPL_R_DAY_OF_WEEK_OK] = "day-of-week-ok",
    [PPL_R_DAY_OF_WEEK_UNAUTHORIZED] = "day-of-week-unauthorized",
    [PPL_R_TIME_OF_DAY_OK] = "time-of-day-ok",
    [PPL_R_TIME_OF_DAY_UNAUTHORIZED] = "time-of-day-unauthorized",
};

static const criterion_def_t *def_of(ppl_kind_t kind)
{
    for (size_t i = 0; i < NUM_DEFS; i++) {
        if (defs[i].kind == kind) {
            return &defs[i];
        }
    }
    return NULL;
}

/* one candidate path: `name` split at every separator in `seps`, the last level keeping the rest */
static void claim_path_add(ppl_compile_t *c, ppl_criterion_t *out, const char *name,
                           const char *seps)
{
    ppl_claim_path_t *path = &out->claim_paths[out->num_claim_paths];
    const char *p = name;

    memset(path, 0, sizeof(*path));
    while (path->num_segs + 1 < PPL_MAX_CLAIM_DEPTH) {
        size_t len = seps[0] != '\0' ? strcspn(p, seps) : strlen(p);
        if (p[len] == '\0') {
            break;
        }
        path->segs[path->num_segs++] = ppl_strndup(c->arena, p, len);
        p += len + 1;
    }
    path->segs[path->num_segs++] = ppl_strndup(c->arena, p, strlen(p));
    out->num_claim_paths++;
}

/* the literal key first, then the name split on '/', on '.', and on both (policy-cases §2.7) */
static int claim_compile(ppl_compile_t *c, const char *name, const json_t *value,
                         ppl_criterion_t *out)
{
    bool slash = strchr(name, '/') != NULL, dot = strchr(name, '.') != NULL;

    if (name[0] == '\0' || strlen(name) > PPL_MAX_VALUE_LEN) {
        ppl_error(c, "claim needs a name: claim/NAME");
        return -1;
    }
    claim_path_add(c, out, name, "");
    if (slash) {
        claim_path_add(c, out, name, "/");
    }
    if (dot) {
        claim_path_add(c, out, name, ".");
    }
    if (slash && dot) {
        claim_path_add(c, out, name, "/.");
    }
    return ppl_list_matcher_compile(c, value, &out->list);
}

int ppl_criterion_compile(ppl_compile_t *c, const char *key, const json_t *value,
                          ppl_criterion_t *out)
{
    const char *slash = strchr(key, '/');
    size_t name_len = slash != NULL ? (size_t)(slash - key) : strlen(key);
    const criterion_def_t *def = NULL;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < NUM_DEFS; i++) {
        if (strlen(defs[i].name) == name_len && strncmp(defs[i].name, key, name_len) == 0) {
            def = &defs[i];
        }
    }
    if (def == NULL || def->has_subpath != (slash != NULL)) {
        if (def != NULL && def->has_subpath) {
            ppl_error(c, "criterion \"%s\" needs a name: %s/NAME", def->name, def->name);
        } else {
            ppl_error(c, "unknown criterion \"%.64s\"", key);
        }
        return -1;
    }
    out->kind = def->kind;

    switch (def->kind) {
    case PPL_C_ACCEPT:
    case PPL_C_REJECT:
    case PPL_C_AUTHENTICATED_USER:
    case PPL_C_CORS_PREFLIGHT:
        /* the value is never read: `accept: false` accepts, as in Pomerium */
        return 0;
    case PPL_C_USER:
    case PPL_C_HTTP_METHOD:
    case PPL_C_HTTP_PATH:
        return ppl_string_matcher_compile(c, value, false, &out->string);
    case PPL_C_EMAIL:
    case PPL_C_DOMAIN:
        return ppl_string_matcher_compile(c, value, true, &out->string);
    case PPL_C_GROUPS:
        return ppl_list_matcher_compile(c, value, &out->list);
    case PPL_C_CLAIM:
        return claim_compile(c, slash + 1, value, out);
    case PPL_C_SOURCE_IP:
        return ppl_cidrs_compile(c, value, &out->cidrs);
    case PPL_C_DATE:
        return ppl_date_compile(c, value, &out->date);
    case PPL_C_DAY_OF_WEEK:
        return ppl_day_of_week_compile(c, value, &out->clock);
    case PPL_C_TIME_OF_DAY:
        return ppl_time_of_day_compile(c, value, &out->clock);
    }
    return -1;
}

bool ppl_criterion_needs_session(const ppl_criterion_t *crit)
{
    const criterion_def_t *def = def_of(crit->kind);

    return def != NULL && def->session;
}

/* evaluation */

/* DESIGN.md §3: an email the IdP marked unverified satisfies no email or domain criterion */
static bool email_usable(const cmn_session_t *session)
{
    const json_t *stated;

    if (session->email == NULL || session->email[0] == '\0') {
        return false;
    }
    if (session->email_verified || !json_is_object(session->claims)) {
        return true;
    }
    stated = json_object_get(session->claims, "email_verified");
    if (json_is_false(stated)) {
        return false;
    }
    return !(json_is_string(stated) && strcasecmp(json_string_value(stated), "false") == 0);
}

/* the part after the first '@', up to any second '@' */
static bool email_domain(const char *email, const char **domain, size_t *len)
{
    const char *at = strchr(email, '@'), *end;

    if (at == NULL) {
        return false;
    }
    end = strchr(at + 1, '@');
    *domain = at + 1;
    *len = end != NULL ? (size_t)(end - at - 1) : strlen(at + 1);
    return true;
}

static const json_t *claim_lookup(const ppl_criterion_t *crit, const json_t *claims)
{
    for (size_t i = 0; i < crit->num_claim_paths; i++) {
        const ppl_claim_path_t *path = &crit->claim_paths[i];
        const json_t *cur = claims;
        for (size_t j = 0; j < path->num_segs && cur != NULL; j++) {
            cur = json_is_object(cur) ? json_object_get(cur, path->segs[j]) : NULL;
        }
        if (cur != NULL) {
            return cur;
        }
    }
    return NULL;
}

static bool session_holds(const ppl_criterion_t *crit, const cmn_session_t *s)
{
    const char *domain;
    size_t len;
    ppl_list_subject_t subject = {NULL, NULL};

    switch (crit->kind) {
    case PPL_C_AUTHENTICATED_USER:
        return s->user_id != NULL && s->user_id[0] != '\0';
    case PPL_C_USER:
        return s->user_id != NULL &&
               ppl_string_matcher_match(&crit->string, s->user_id, strlen(s->user_id));
    case PPL_C_EMAIL:
        return email_usable(s) &&
               ppl_string_matcher_match(&crit->string, s->email, strlen(s->email));
    case PPL_C_DOMAIN:
        return email_usable(s) && email_domain(s->email, &domain, &len) &&
               ppl_string_matcher_match(&crit->string, domain, len);
    case PPL_C_GROUPS:
        subject.strings = &s->groups;
        return ppl_list_matcher_match(&crit->list, &subject);
    case PPL_C_CLAIM:
        subject.json = json_is_object(s->claims) ? claim_lookup(crit, s->claims) : NULL;
        return ppl_list_matcher_match(&crit->list, &subject);
    default:
        return false;
    }
}

static bool request_holds(const ppl_criterion_t *crit, const authz_policy_input_t *in)
{
    switch (crit->kind) {
    case PPL_C_ACCEPT:
        return true;
    case PPL_C_HTTP_METHOD:
        return ppl_string_matcher_match(&crit->string, in->method.base, in->method.len);
    case PPL_C_HTTP_PATH:
        return ppl_string_matcher_match(&crit->string, in->path.base, in->path.len);
    case PPL_C_CORS_PREFLIGHT:
        return authz_policy_is_preflight(in);
    case PPL_C_SOURCE_IP:
        return in->has_client_ip && ppl_cidrs_match(&crit->cidrs, &in->client_ip);
    case PPL_C_DATE:
        return ppl_date_match(&crit->date, in->now);
    case PPL_C_DAY_OF_WEEK:
        return ppl_day_of_week_match(&crit->clock, in->now);
    case PPL_C_TIME_OF_DAY:
        return ppl_time_of_day_match(&crit->clock, in->now);
    default:
        return false;
    }
}

ppl_result_t ppl_criterion_eval(const ppl_criterion_t *crit, const ppl_env_t *env)
{
    const criterion_def_t *def = def_of(crit->kind);
    ppl_result_t r = {false, 0};
    ppl_reason_t reason;

    if (def == NULL) {
        return r;
    }
    if (def->session && env->session == NULL) {
        r.reasons = PPL_BIT(PPL_R_USER_UNAUTHENTICATED);
        return r;
    }
    r.value = def->session ? session_holds(crit, env->session) : request_holds(crit, env->in);
    reason = r.value ? def->ok : def->fail;
    if (reason != PPL_R_COUNT) {
        r.reasons = PPL_BIT(reason);
    }
    return r;
}
