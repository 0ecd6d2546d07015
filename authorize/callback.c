/* SPDX-License-Identifier: MIT */
/* Consumes handoff tokens on their audience host and sets the session cookie there. */
#include "authorize/callback.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/cookie.h"
#include "common/err.h"
#include "common/handoff.h"
#include "common/log.h"
#include "common/server.h"
#include "authorize/app.h"

typedef struct st_handoff_ctx_t {
    cmn_req_guard_t *guard;
    authz_handoff_reply_t reply;
    h2o_iovec_t audience; /* pool */
    cmn_handoff_t handoff;
} handoff_ctx_t;

static void reject(h2o_req_t *req, const char *why)
{
    cmn_log_info(cmn_req_id(req), "handoff refused: %s", why);
    authz_send_status(req, 400);
}

/* opens and checks a token: audience, expiry, and a target on a route host */
static int open_token(h2o_req_t *req, h2o_iovec_t token, h2o_iovec_t audience,
                      cmn_handoff_t *out, const char **why)
{
    h2o_iovec_t decoded;
    authz_target_t target;
    const char *err = NULL;
    uint64_t now = (uint64_t)time(NULL);

    if (token.len == 0 || token.len > CMN_HANDOFF_MAX) {
        *why = "token missing or too long";
        return -1;
    }
    decoded = cmn_url_decode(&req->pool, token.base, token.len);
    if (decoded.base == NULL ||
        cmn_handoff_open(authz_app->keys.handoff, decoded.base, decoded.len, now, out, &err) != 0) {
        *why = err != NULL ? err : cmn_err_malformed;
        return -1;
    }
    if (strlen(out->audience) != audience.len ||
        memcmp(out->audience, audience.base, audience.len) != 0) {
        *why = "audience is another host";
        return -1;
    }
    if (out->session_expiry <= now) {
        *why = cmn_err_expired;
        return -1;
    }
    if (authz_target_parse(&req->pool, h2o_iovec_init(out->target, strlen(out->target)), &target,
                           &err) != 0 ||
        !authz_is_route_target(target.host, target.port)) {
        *why = "target is not a route target (host and port)";
        return -1;
    }
    return 0;
}

static void set_session_cookie(h2o_req_t *req, const handoff_ctx_t *ctx, uint64_t now)
{
    const char *scope = authz_cookie_scope(&req->pool, ctx->audience);
    const char *domain = authz_app->config->cookie_domain;
    cmn_session_ticket_t ticket = {.issued = now, .expiry = ctx->handoff.session_expiry};
    char value[CMN_COOKIE_VALUE_MAX];

    memcpy(ticket.session_id, ctx->handoff.session_id, sizeof(ticket.session_id));
    if (cmn_cookie_seal(authz_app->keys.cookie, authz_app->config->cookie_name, scope, &ticket,
                        value) != 0) {
        cmn_unreachable("sealing a session cookie failed");
    }
    /* the scope says which cookie this is: the shared domain one, or host-only */
    if (domain == NULL || strcmp(scope, domain) != 0) {
        domain = NULL;
    }
    authz_set_cookie(req, h2o_strdup(&req->pool, value, SIZE_MAX), domain,
                     (int64_t)(ctx->handoff.session_expiry - now));
}

static void answer(h2o_req_t *req, handoff_ctx_t *ctx, const json_t *record)
{
    const char *sid = json_string_value(json_object_get(json_object_get(record, "data"),
                                                        "session_id"));
    uint64_t now = (uint64_t)time(NULL);
    h2o_iovec_t target = h2o_strdup(&req->pool, ctx->handoff.target, SIZE_MAX);

    if (sid == NULL || strcmp(sid, ctx->handoff.session_id) != 0) {
        reject(req, "handoff record names another session");
        return;
    }
    if (ctx->handoff.session_expiry <= now) {
        reject(req, cmn_err_expired);
        return;
    }

    if (!authz_location_is_safe(target)) {
        reject(req, "target holds a control byte");
        return;
    }
    set_session_cookie(req, ctx, now);
    if (ctx->reply == AUTHZ_HANDOFF_REPLY_302) {
        cmn_send_redirect(req, 302, target);
        return;
    }
    cmn_add_header(req, "location", target);
    authz_send_status(req, 401);
}

static void on_handoff_taken(void *arg, const cmn_broker_result_t *res)
{
    handoff_ctx_t *ctx = arg;
    h2o_req_t *req = ctx->guard->req;

    if (req == NULL) {
        goto Exit;
    }
    if (res->err == NULL && res->record != NULL) {
        answer(req, ctx, res->record);
    } else if (res->err == cmn_err_not_found || res->status == 404) {
        reject(req, "already used (replay) or expired");
    } else {
        cmn_log_warn(cmn_req_id(req), "handoff take failed: %s (status %d)",
                     res->err != NULL ? res->err : "no record", res->status);
        authz_send_status(req, 503);
    }

Exit:
    cmn_req_guard_release(ctx->guard);
    free(ctx);
}

void authz_handoff_consume(h2o_req_t *req, h2o_iovec_t token, h2o_iovec_t audience,
                           authz_handoff_reply_t reply)
{
    handoff_ctx_t *ctx = h2o_mem_alloc(sizeof(*ctx));
    authz_thread_t *t = authz_thread();
    const char *why = NULL;

    *ctx = (handoff_ctx_t){.reply = reply, .audience = h2o_strdup(&req->pool, audience.base,
                                                                  audience.len)};
    if (open_token(req, token, audience, &ctx->handoff, &why) != 0) {
        reject(req, why);
        free(ctx);
        return;
    }

    ctx->guard = cmn_req_guard_create(req);
    if (t == NULL || t->broker == NULL ||
        cmn_broker_take(t->broker, "handoff", ctx->handoff.id, on_handoff_taken, ctx) != 0) {
        authz_send_status(req, 503);
        cmn_req_guard_release(ctx->guard);
        free(ctx);
    }
}

int authz_handoff_peek(h2o_req_t *req, h2o_iovec_t token, h2o_iovec_t audience,
                       h2o_iovec_t *target)
{
    cmn_handoff_t handoff;
    const char *why = NULL;

    if (open_token(req, token, audience, &handoff, &why) != 0) {
        cmn_log_info(cmn_req_id(req), "handoff peek refused: %s", why);
        return -1;
    }
    *target = h2o_strdup(&req->pool, handoff.target, SIZE_MAX);
    return 0;
}
