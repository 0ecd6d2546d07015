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

/* lives across the databroker call: malloc'd, touched only while guard->req is set */
typedef struct st_verify_ctx_t {
    cmn_req_guard_t *guard;
    authz_verify_mode_t mode;
    authz_target_t target;
    const cmn_route_t *route;
    authz_policy_input_t pin;
    cmn_session_ticket_t ticket;
    uint64_t gen;
} verify_ctx_t;

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

static void log_decision(h2o_req_t *req, const verify_ctx_t *ctx, int status, const char *reason)
{
    char host[LOG_VALUE_MAX * 4 + 8], path[LOG_VALUE_MAX * 4 + 8];

    cmn_log_escape(ctx->target.host.base, ctx->target.host.len, LOG_VALUE_MAX, host,
                   sizeof(host));
    cmn_log_escape(ctx->target.path.base, ctx->target.path.len, LOG_VALUE_MAX, path,
                   sizeof(path));
    if (status == 403 || status == 503) {
        cmn_log_info(cmn_req_id(req), "verify %d %s host=\"%s\" path=\"%s\" route_line=%u", status,
                     reason, host, path, ctx->route != NULL ? ctx->route->line : 0);
    } else {
        cmn_log_debug(cmn_req_id(req), "verify %d %s host=\"%s\" path=\"%s\"", status, reason,
                      host, path);
    }
}

static void respond_unauthenticated(h2o_req_t *req, verify_ctx_t *ctx, const char *reason)
{
    h2o_iovec_t location;

    log_decision(req, ctx, 401, reason);
    if (ctx->mode == AUTHZ_VERIFY_FORWARDED && authz_is_browser(req)) {
        location = authz_signin_url(req, ctx->target.raw);
        if (location.base != NULL) {
            cmn_send_redirect(req, 302, location);
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

static void respond_status(h2o_req_t *req, verify_ctx_t *ctx, int status, const char *reason)
{
    log_decision(req, ctx, status, reason);
    authz_send_status(req, status);
}

static size_t headers_cost(const authz_header_t *hdrs, size_t n)
{
    size_t cost = 0;

    for (size_t i = 0; i < n; i++) {
        cost += hdrs[i].name.len + hdrs[i].value.len + 4;
    }
    return cost;
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
        .route = ctx->route,
        .session = session,
        .session_version = version,
        .audience = ctx->target.host,
        .now = now_s(),
        .max_len = budget - headers_cost(hdrs, n) - (sizeof(assertion_name) + 3),
    };
    bool truncated = false;
    const char *jwt = authz_assertion_get(authz_thread()->assertions, &p, &truncated);

    char fp[32];

    cmn_redact(session->id, strlen(session->id), fp, sizeof(fp));
    if (jwt == NULL) {
        cmn_log_error(cmn_req_id(req), "identity assertion for session %s not signed", fp);
        return -1;
    }
    if (truncated) {
        cmn_log_warn(cmn_req_id(req), "groups of session %s (%zu) dropped from the assertion:"
                     " header block over %d bytes", fp, session->groups.len,
                     AUTHZ_HEADER_BLOCK_MAX);
    }

    cmn_add_header(req, assertion_name, h2o_strdup(&req->pool, jwt, SIZE_MAX));
    for (size_t i = 0; i < n; i++) {
        cmn_add_header(req, hdrs[i].name.base, hdrs[i].value);
    }
    return 0;
}

static void decide(h2o_req_t *req, verify_ctx_t *ctx, const cmn_session_t *session,
                   uint64_t version)
{
    const char *reason = NULL;
    authz_verdict_t verdict;

    if (session->expiry <= now_s()) {
        respond_unauthenticated(req, ctx, "session-expired");
        return;
    }

    verdict = authz_policy_evaluate(ctx->route, &ctx->pin, session, &reason);
    switch (verdict) {
    case AUTHZ_VERDICT_ALLOW:
        if (ctx->route->pass_identity_headers &&
            add_identity_headers(req, ctx, session, version) != 0) {
            respond_status(req, ctx, 503, "assertion-failed");
            return;
        }
        respond_status(req, ctx, 200, reason);
        return;
    case AUTHZ_VERDICT_UNAUTHENTICATED:
        respond_unauthenticated(req, ctx, reason);
        return;
    case AUTHZ_VERDICT_UNAVAILABLE:
        respond_status(req, ctx, 503, reason);
        return;
    case AUTHZ_VERDICT_DENY:
        break;
    }
    respond_status(req, ctx, 403, reason != NULL ? reason : "denied");
}

static void finish(verify_ctx_t *ctx)
{
    cmn_req_guard_release(ctx->guard);
    free(ctx);
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
        respond_unauthenticated(req, ctx, "session-malformed");
        return;
    }

    switch (authz_session_cache_insert(authz_app->sessions, session,
                                       (uint64_t)json_integer_value(version), ctx->gen, now_s(),
                                       &ref)) {
    case AUTHZ_CACHE_INSERTED:
        decide(req, ctx, ref.session, ref.version);
        authz_session_cache_release(authz_app->sessions, &ref);
        return;
    case AUTHZ_CACHE_STALE:
        decide(req, ctx, session, (uint64_t)json_integer_value(version));
        break;
    case AUTHZ_CACHE_DELETED:
        respond_unauthenticated(req, ctx, "session-deleted");
        break;
    }
    cmn_session_destroy(session);
}

static void on_session_fetched(void *arg, const cmn_broker_result_t *res)
{
    verify_ctx_t *ctx = arg;
    h2o_req_t *req = ctx->guard->req;

    if (req == NULL) {
        goto Exit;
    }
    if (res->err == NULL && res->record != NULL) {
        decide_fetched(req, ctx, res->record);
    } else if (res->err == cmn_err_not_found || res->status == 404) {
        respond_unauthenticated(req, ctx, "session-not-found");
    } else {
        cmn_log_warn(cmn_req_id(req), "session read failed: %s (status %d)",
                     res->err != NULL ? res->err : "no record", res->status);
        respond_status(req, ctx, 503, "databroker-unavailable");
    }

Exit:
    finish(ctx);
}

static void fetch_session(h2o_req_t *req, verify_ctx_t *ctx)
{
    authz_thread_t *t = authz_thread();

    ctx->gen = authz_session_cache_generation(authz_app->sessions);
    ctx->guard = cmn_req_guard_create(req);
    if (t == NULL || t->broker == NULL ||
        cmn_broker_get(t->broker, "session", ctx->ticket.session_id, on_session_fetched, ctx) !=
            0) {
        respond_status(req, ctx, 503, "databroker-unavailable");
        finish(ctx);
    }
}

/* the cookie, opened for the scope T's host gets: cookie_domain when inside it, else itself */
static int read_ticket(h2o_req_t *req, verify_ctx_t *ctx, const char **reason)
{
    const cmn_config_t *config = authz_app->config;
    h2o_iovec_t value = cmn_cookie_from_req(req, config->cookie_name);
    const char *scope = authz_cookie_scope(&req->pool, ctx->target.host);
    const char *err = NULL;

    if (value.base == NULL || value.len == 0) {
        *reason = "no-session-cookie";
        return -1;
    }
    if (cmn_cookie_open(authz_app->keys.cookie, config->cookie_name, scope, value.base, value.len,
                        now_s(), &ctx->ticket, &err) != 0) {
        *reason = err == cmn_err_expired ? "cookie-expired" : "cookie-invalid";
        return -1;
    }
    return 0;
}

static void verify_with_session(h2o_req_t *req, verify_ctx_t *ctx)
{
    const char *reason = NULL;
    authz_cached_session_t ref;

    if (read_ticket(req, ctx, &reason) != 0) {
        respond_unauthenticated(req, ctx, reason);
        free(ctx);
        return;
    }
    if (authz_session_cache_lookup(authz_app->sessions, ctx->ticket.session_id, &ref)) {
        decide(req, ctx, ref.session, ref.version);
        authz_session_cache_release(authz_app->sessions, &ref);
        free(ctx);
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
static h2o_iovec_t handoff_token(const authz_target_t *t)
{
    if (!t->url.has_query || strcmp(t->path.base, "/.pomerium/callback") != 0 ||
        !authz_routes_is_route_host(authz_app->routes, t->host)) {
        return h2o_iovec_init(NULL, 0);
    }
    return cmn_url_query_get(t->url.query, "pomerium_handoff");
}

static void fill_policy_input(h2o_req_t *req, verify_ctx_t *ctx)
{
    ctx->pin = (authz_policy_input_t){
        .method = ctx->target.method,
        .path = ctx->target.path,
        .has_origin = cmn_req_header(req, "origin").base != NULL,
        .has_preflight_method = cmn_req_header(req, "access-control-request-method").base != NULL,
    };
}

void authz_verify(h2o_req_t *req, authz_verify_mode_t mode)
{
    verify_ctx_t *ctx = h2o_mem_alloc(sizeof(*ctx));
    authz_target_input_t in = gather_input(req);
    const char *err = NULL, *reason = NULL;
    h2o_iovec_t token;

    *ctx = (verify_ctx_t){.mode = mode};
    if (authz_target_derive(&req->pool, &in, &ctx->target, &err) != 0) {
        cmn_log_info(cmn_req_id(req), "verify 400: target: %s", err);
        authz_send_status(req, 400);
        goto Exit;
    }

    token = handoff_token(&ctx->target);
    if (token.base != NULL) {
        authz_handoff_consume(req, token, ctx->target.host, AUTHZ_HANDOFF_REPLY_401);
        goto Exit;
    }

    ctx->route = authz_routes_match(authz_app->routes, ctx->target.host, ctx->target.port,
                                    ctx->target.path.base);
    if (ctx->route == NULL) {
        respond_status(req, ctx, 403, "route-not-found");
        goto Exit;
    }

    fill_policy_input(req, ctx);
    if (authz_policy_needs_no_session(ctx->route, &ctx->pin)) {
        authz_verdict_t verdict = authz_policy_evaluate(ctx->route, &ctx->pin, NULL, &reason);
        respond_status(req, ctx, verdict == AUTHZ_VERDICT_ALLOW ? 200 : 403, reason);
        goto Exit;
    }

    verify_with_session(req, ctx);
    return;

Exit:
    free(ctx);
}
