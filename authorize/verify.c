/* SPDX-License-Identifier: MIT */
/* GET /verify: target, route, cookie, session (cache or databroker), policy, identity headers. */
#include "authorize/verify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/cookie.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "common/session.h"
#include "authorize/app.h"
#include "authorize/callback.h"
#include "authorize/policy.h"

#define LOG_VALUE_MAX 200
#define AUTHZ_COOKIE_TRIES_MAX 4 /* session cookies of the name tried per request */
#define AUTHZ_IDENTITY_TOO_LARGE 1 /* add_identity_headers: no assertion can carry this user */

#define REASONS_TEXT_MAX 256 /* the joined reasons of one decision (log and debug header) */

/*
 * Lives across the databroker call: malloc'd, touched only while guard->req is set. It holds
 * the route table the request started with until it is freed, so a reload never changes the
 * route or policy under a request.
 */
typedef struct st_verify_ctx_t {
    cmn_req_guard_t *guard;
    authz_verify_mode_t mode;
    authz_target_t target;
    authz_table_t *table;
    const authz_route_t *route;
    authz_policy_input_t pin;
    cmn_session_ticket_t ticket;
    uint64_t gen;
} verify_ctx_t;

static void ctx_free(verify_ctx_t *ctx)
{
    authz_table_release(ctx->table);
    free(ctx);
}

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static bool wants_json(h2o_req_t *req)
{
    h2o_iovec_t accept = cmn_req_header(req, "accept");

    if (cmn_req_header(req, "x-requested-with").base != NULL) {
        return true;
    }
    return accept.base != NULL &&
           h2o_strstr(accept.base, accept.len, H2O_STRLIT("application/json")) != SIZE_MAX;
}

/* "a,b,c" from the decision's reasons, then `extra` (why there was no session, ...) */
static const char *join_reasons(const authz_decision_t *d, const char *extra, char *buf,
                                size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i <= d->num_reasons && len < size; i++) {
        const char *r = i < d->num_reasons ? d->reasons[i] : extra;
        int n;
        if (r == NULL) {
            continue;
        }
        n = snprintf(buf + len, size - len, "%s%s", len == 0 ? "" : ",", r);
        len += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

/*
 * every refusal is logged with its reasons; an allowed request only at debug level, where
 * nginx's error log gets the reasons too (a line per allowed request would cost more than the
 * decision itself)
 */
static void log_decision(h2o_req_t *req, const verify_ctx_t *ctx, int status,
                         const authz_decision_t *d, const char *extra)
{
    char host[LOG_VALUE_MAX * 4 + 8], path[LOG_VALUE_MAX * 4 + 8], reasons[REASONS_TEXT_MAX];
    cmn_log_level_t level = status == 200 ? CMN_LOG_DEBUG : CMN_LOG_INFO;

    if (!cmn_log_enabled(level)) {
        return;
    }
    join_reasons(d, extra, reasons, sizeof(reasons));
    cmn_log_escape(ctx->target.host.base, ctx->target.host.len, LOG_VALUE_MAX, host,
                   sizeof(host));
    cmn_log_escape(ctx->target.path.base, ctx->target.path.len, LOG_VALUE_MAX, path,
                   sizeof(path));
    if (ctx->route != NULL) {
        cmn_log(level, cmn_req_id(req), "verify %d reasons=%s host=\"%s\" path=\"%s\" "
                "route=routes[%zu] line=%u generation=%llu", status, reasons, host, path,
                ctx->route->def->index, ctx->route->def->line,
                (unsigned long long)ctx->table->generation);
    } else {
        cmn_log(level, cmn_req_id(req), "verify %d reasons=%s host=\"%s\" path=\"%s\"", status,
                reasons, host, path);
    }
    if (cmn_log_enabled(CMN_LOG_DEBUG) && reasons[0] != '\0') {
        cmn_add_header(req, "x-portcullis-reason", h2o_strdup(&req->pool, reasons, SIZE_MAX));
    }
}

static authz_decision_t just(const char *reason)
{
    authz_decision_t d = {.verdict = AUTHZ_VERDICT_DENY, .num_reasons = reason != NULL};

    d.reasons[0] = reason;
    return d;
}

static void respond_unauthenticated(h2o_req_t *req, verify_ctx_t *ctx, const authz_decision_t *d,
                                    const char *extra)
{
    h2o_iovec_t location;

    log_decision(req, ctx, 401, d, extra);
    if (ctx->mode == AUTHZ_VERIFY_FORWARDED && authz_is_browser(req)) {
        location = authz_signin_url(req, ctx->target.raw);
        if (location.base != NULL) {
            authz_redirect(req, 302, location);
            return;
        }
    }

    location = authz_unauthenticated_location(req, ctx->target.raw);
    if (location.base == NULL) {
        authz_send_status(req, 503);
        return;
    }
    cmn_add_header(req, "location", location);
    if (wants_json(req)) {
        cmn_send_json(req, 401, "{\"error\":\"unauthenticated\"}");
        return;
    }
    authz_send_status(req, 401);
}

static void respond_status(h2o_req_t *req, verify_ctx_t *ctx, int status,
                           const authz_decision_t *d, const char *extra)
{
    log_decision(req, ctx, status, d, extra);
    authz_send_status(req, status);
}

static void respond_reason(h2o_req_t *req, verify_ctx_t *ctx, int status, const char *reason)
{
    authz_decision_t d = just(reason);

    respond_status(req, ctx, status, &d, NULL);
}

static size_t headers_cost(const authz_header_t *hdrs, size_t n)
{
    size_t cost = 0;

    for (size_t i = 0; i < n; i++) {
        cost += hdrs[i].name.len + hdrs[i].value.len + 4;
    }
    return cost;
}

/*
 * Logs why the assertion of `session` is missing (jwt NULL) or short; the return value is
 * add_identity_headers's. Apart so that the session's fingerprint, a digest, is only computed
 * for a line that is logged.
 */
static int report_assertion_problem(h2o_req_t *req, const cmn_session_t *session,
                                    const char *jwt, bool truncated)
{
    char fp[32];

    cmn_redact(session->id, strlen(session->id), fp, sizeof(fp));
    if (jwt == NULL && truncated) {
        cmn_log_warn(cmn_req_id(req), "identity of session %s does not fit the %d-byte header "
                     "block even without groups and name", fp, AUTHZ_HEADER_BLOCK_MAX);
        return AUTHZ_IDENTITY_TOO_LARGE;
    }
    if (jwt == NULL) {
        cmn_log_error(cmn_req_id(req), "signing the identity assertion for session %s failed",
                      fp);
        return -1;
    }
    cmn_log_warn(cmn_req_id(req), "groups (%zu) or name of session %s dropped from the "
                 "assertion: header block over %d bytes", session->groups.len, fp,
                 AUTHZ_HEADER_BLOCK_MAX);
    return 0;
}

/* DESIGN.md §6; the whole block stays under AUTHZ_HEADER_BLOCK_MAX (nginx proxy_buffer_size) */
static int add_identity_headers(h2o_req_t *req, verify_ctx_t *ctx, const cmn_session_t *session,
                                uint64_t version)
{
    static const char assertion_name[] = "x-pomerium-jwt-assertion";
    size_t budget = AUTHZ_HEADER_BLOCK_MAX - AUTHZ_HEADER_OVERHEAD;
    authz_header_t hdrs[AUTHZ_CLAIM_HEADERS_MAX];
    size_t n = authz_claim_headers(&req->pool, authz_app->config, session, budget / 2, hdrs);
    authz_assertion_params_t p = {
        .config = authz_app->config,
        .signer = authz_app->signer,
        .route = ctx->route->def,
        .session = session,
        .session_version = version,
        .table_generation = ctx->table->generation,
        .audience = ctx->target.host,
        .now = now_s(),
        .max_len = budget - headers_cost(hdrs, n) - (sizeof(assertion_name) + 3),
    };
    bool truncated = false;
    const char *jwt = authz_assertion_get(authz_thread()->assertions, &p, &truncated);

    if (jwt == NULL || truncated) {
        int problem = report_assertion_problem(req, session, jwt, truncated);
        if (problem != 0) {
            return problem;
        }
    }

    cmn_add_header(req, assertion_name, h2o_strdup(&req->pool, jwt, SIZE_MAX));
    for (size_t i = 0; i < n; i++) {
        cmn_add_header(req, hdrs[i].name.base, hdrs[i].value);
    }
    return 0;
}

/*
 * The decision for `session` (NULL: none, or not usable; `why` says why for the log). An
 * expired session counts as none (policy-cases.md §2.6), so policies that need no user still
 * decide.
 */
static void decide(h2o_req_t *req, verify_ctx_t *ctx, const cmn_session_t *session,
                   uint64_t version, const char *why)
{
    authz_decision_t d = {.verdict = AUTHZ_VERDICT_DENY};

    if (session != NULL && session->expiry <= now_s()) {
        session = NULL;
        why = "session-expired";
    }

    authz_policy_evaluate(ctx->route->policy, &ctx->pin, session, &d);
    switch (d.verdict) {
    case AUTHZ_VERDICT_ALLOW:
        if (session != NULL && ctx->route->def->pass_identity_headers) {
            int added = add_identity_headers(req, ctx, session, version);
            if (added == AUTHZ_IDENTITY_TOO_LARGE) {
                /* the same for every request of this user: a refusal, not an outage */
                respond_reason(req, ctx, 403, "identity-too-large");
                return;
            }
            if (added != 0) {
                respond_reason(req, ctx, 503, "assertion-failed");
                return;
            }
        }
        respond_status(req, ctx, 200, &d, NULL);
        return;
    case AUTHZ_VERDICT_UNAUTHENTICATED:
        respond_unauthenticated(req, ctx, &d, why);
        return;
    case AUTHZ_VERDICT_UNAVAILABLE:
        respond_status(req, ctx, 503, &d, NULL);
        return;
    case AUTHZ_VERDICT_DENY:
        break;
    }
    respond_status(req, ctx, 403, &d, NULL);
}

static void finish(verify_ctx_t *ctx)
{
    cmn_req_guard_release(ctx->guard);
    ctx_free(ctx);
}

/* a freshly read record: cache it unless a newer change or a resync overtook the read */
static void decide_fetched(h2o_req_t *req, verify_ctx_t *ctx, const json_t *record)
{
    const char *err = NULL;
    json_t *version = json_object_get(record, "version");
    cmn_session_t *session = cmn_session_from_json(ctx->ticket.session_id,
                                                   json_object_get(record, "data"), &err);
    authz_cached_session_t ref;
    char fp[32];

    if (session == NULL) {
        cmn_redact(ctx->ticket.session_id, strlen(ctx->ticket.session_id), fp, sizeof(fp));
        cmn_log_warn(cmn_req_id(req), "session record %s unusable: %s", fp, err);
        decide(req, ctx, NULL, 0, "session-malformed");
        return;
    }

    switch (authz_session_cache_insert(authz_app->sessions, session,
                                       (uint64_t)json_integer_value(version), ctx->gen, now_s(),
                                       &ref)) {
    case AUTHZ_CACHE_INSERTED:
        decide(req, ctx, ref.session, ref.version, NULL);
        authz_session_cache_release(authz_app->sessions, &ref);
        return;
    case AUTHZ_CACHE_STALE:
        decide(req, ctx, session, (uint64_t)json_integer_value(version), NULL);
        break;
    case AUTHZ_CACHE_DELETED:
        decide(req, ctx, NULL, 0, "session-deleted");
        break;
    }
    cmn_session_destroy(session);
}

static void on_session_fetched(void *arg, const cmn_broker_result_t *res, uint64_t gen)
{
    verify_ctx_t *ctx = arg;
    h2o_req_t *req = ctx->guard->req;

    ctx->gen = gen; /* the read's start, maybe before this request's own */
    if (req == NULL) {
        goto Exit;
    }
    if (res->err == NULL && res->record != NULL) {
        decide_fetched(req, ctx, res->record);
    } else if (res->err == cmn_err_not_found || res->status == 404) {
        decide(req, ctx, NULL, 0, "session-not-found");
    } else {
        /* debug only: the fetcher logs a failed batch once, not once per waiting request */
        cmn_log_debug(cmn_req_id(req), "session read failed: %s (status %d)",
                      res->err != NULL ? res->err : "no record", res->status);
        respond_reason(req, ctx, 503, "databroker-unavailable");
    }

Exit:
    finish(ctx);
}

static void fetch_session(h2o_req_t *req, verify_ctx_t *ctx)
{
    authz_thread_t *t = authz_thread();

    ctx->gen = authz_session_cache_generation(authz_app->sessions);
    ctx->guard = cmn_req_guard_create(req);
    if (t == NULL || t->fetcher == NULL ||
        authz_session_fetch(t->fetcher, ctx->ticket.session_id, ctx->gen, on_session_fetched,
                            ctx) != 0) {
        respond_reason(req, ctx, 503, "databroker-unavailable");
        finish(ctx);
    }
}

/*
 * The cookie, opened for the scope T's host gets: cookie_domain when inside it, else itself.
 * Several cookies of the name may come (a stale host-only one beside the domain one); the first
 * that opens wins, and at most AUTHZ_COOKIE_TRIES_MAX are tried so the work stays bounded. A
 * value this thread opened before comes from its ticket cache.
 */
static int read_ticket(h2o_req_t *req, verify_ctx_t *ctx, const char **reason)
{
    const cmn_config_t *config = authz_app->config;
    const char *scope = authz_cookie_scope(&req->pool, ctx->target.host);
    authz_ticket_cache_t *tickets = authz_thread() != NULL ? authz_thread()->tickets : NULL;
    cmn_cookie_cursor_t cursor = {0};
    const char *err = NULL;
    unsigned tries = 0;
    h2o_iovec_t value;

    *reason = "no-session-cookie";
    while (tries < AUTHZ_COOKIE_TRIES_MAX) {
        value = cmn_cookie_from_req_next(req, config->cookie_name, &cursor);
        if (value.base == NULL) {
            break;
        }
        if (value.len == 0) {
            continue;
        }
        tries++;
        if (tickets != NULL && authz_ticket_cache_get(tickets, scope, value, now_s(),
                                                      &ctx->ticket)) {
            return 0;
        }
        if (cmn_cookie_open(authz_app->keys.cookie, config->cookie_name, scope, value.base,
                            value.len, now_s(), &ctx->ticket, &err) == 0) {
            if (tickets != NULL) {
                authz_ticket_cache_put(tickets, scope, value, &ctx->ticket);
            }
            return 0;
        }
        *reason = err == cmn_err_expired ? "cookie-expired" : "cookie-invalid";
    }
    return -1;
}

static void verify_with_session(h2o_req_t *req, verify_ctx_t *ctx)
{
    const char *reason = NULL;
    authz_cached_session_t ref;

    if (read_ticket(req, ctx, &reason) != 0) {
        decide(req, ctx, NULL, 0, reason);
        ctx_free(ctx);
        return;
    }
    if (authz_session_cache_lookup(authz_app->sessions, ctx->ticket.session_id, &ref)) {
        decide(req, ctx, ref.session, ref.version, NULL);
        authz_session_cache_release(authz_app->sessions, &ref);
        ctx_free(ctx);
        return;
    }
    fetch_session(req, ctx);
}

static authz_target_input_t gather_input(h2o_req_t *req)
{
    authz_target_input_t in = {
        .query = cmn_url_query_of_path(req->path),
        .original_url = authz_proxy_header(req, "x-original-url"),
        .original_method = authz_proxy_header(req, "x-original-method"),
        .fwd_proto = authz_proxy_header(req, "x-forwarded-proto"),
        .fwd_host = authz_proxy_header(req, "x-forwarded-host"),
        .fwd_uri = authz_proxy_header(req, "x-forwarded-uri"),
        .fwd_method = authz_proxy_header(req, "x-forwarded-method"),
        .req_method = req->method,
    };
    return in;
}

/* T is a route host's /.pomerium/callback?pomerium_handoff=...: the host-only handoff */
static h2o_iovec_t handoff_token(const authz_routes_t *routes, const authz_target_t *t)
{
    if (!t->url.has_query || strcmp(t->path.base, "/.pomerium/callback") != 0 ||
        !authz_routes_is_route_host(routes, t->host)) {
        return h2o_iovec_init(NULL, 0);
    }
    return cmn_url_query_get(t->url.query, "pomerium_handoff");
}

static bool has_value(h2o_req_t *req, const char *name)
{
    return cmn_req_header(req, name).len > 0;
}

/* the client address for source_ip: nginx's X-Forwarded-For / X-Real-IP from a trusted peer */
static bool client_addr(h2o_req_t *req, struct sockaddr_storage *out)
{
    struct sockaddr_storage peer;

    if (req->conn == NULL || req->conn->callbacks->get_peername == NULL ||
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&peer) == 0) {
        return false;
    }
    return authz_client_addr(authz_app->trusted_proxies, (struct sockaddr *)&peer,
                             cmn_req_header(req, "x-forwarded-for"),
                             cmn_req_header(req, "x-real-ip"), out);
}

static void fill_policy_input(h2o_req_t *req, verify_ctx_t *ctx)
{
    ctx->pin = (authz_policy_input_t){
        .method = ctx->target.method,
        .path = ctx->target.path,
        .has_origin = has_value(req, "origin"),
        .has_preflight_method = has_value(req, "access-control-request-method"),
        .now = time(NULL),
    };
    ctx->pin.has_client_ip = client_addr(req, &ctx->pin.client_ip);
}

void authz_verify(h2o_req_t *req, authz_verify_mode_t mode)
{
    verify_ctx_t *ctx = h2o_mem_alloc(sizeof(*ctx));
    authz_target_input_t in = gather_input(req);
    const char *err = NULL;
    h2o_iovec_t token;

    *ctx = (verify_ctx_t){.mode = mode, .table = authz_table_acquire()};
    if (authz_target_derive(&req->pool, &in, &ctx->target, &err) != 0) {
        cmn_log_info(cmn_req_id(req), "verify 400: target: %s", err);
        if (cmn_log_enabled(CMN_LOG_DEBUG)) {
            cmn_add_header(req, "x-portcullis-reason", h2o_iovec_init(H2O_STRLIT("bad-target")));
        }
        authz_send_status(req, 400);
        goto Exit;
    }

    token = handoff_token(ctx->table->routes, &ctx->target);
    if (token.base != NULL) {
        authz_handoff_consume(req, token, ctx->target.host, AUTHZ_HANDOFF_REPLY_401);
        goto Exit;
    }

    ctx->route = authz_routes_match(ctx->table->routes, ctx->target.host, ctx->target.port,
                                    ctx->target.path.base);
    if (ctx->route == NULL) {
        respond_reason(req, ctx, 403, "route-not-found");
        goto Exit;
    }

    fill_policy_input(req, ctx);
    if (!authz_policy_needs_session(ctx->route->policy)) {
        decide(req, ctx, NULL, 0, NULL);
        goto Exit;
    }

    verify_with_session(req, ctx);
    return;

Exit:
    ctx_free(ctx);
}
