/* SPDX-License-Identifier: MIT */
/* Mints the single-use handoff token and redirects the browser to its audience host. */
#include "authenticate/handoff.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "authenticate/page.h"
#include "common/broker_client.h"
#include "common/err.h"
#include "common/handoff.h"
#include "common/log.h"

typedef struct st_handoff_ctx_t {
    authn_app_t *app;
    cmn_req_guard_t *guard;
    cmn_handoff_t handoff;
    h2o_iovec_t base; /* pool */
} handoff_ctx_t;

void authn_handoff_route(h2o_mem_pool_t *pool, const cmn_config_t *config, const cmn_url_t *t,
                         h2o_iovec_t *audience, h2o_iovec_t *base)
{
    h2o_iovec_t thost = cmn_host_lower(pool, t->host);
    const cmn_config_url_t *fa = &config->forward_auth_url;

    if (config->cookie_domain != NULL && fa->raw != NULL && fa->host != NULL &&
        cmn_host_in_domain(h2o_iovec_init(fa->host, strlen(fa->host)), config->cookie_domain) &&
        cmn_host_in_domain(thost, config->cookie_domain)) {
        *audience = h2o_strdup(pool, fa->host, strlen(fa->host));
        *base = h2o_strdup(pool, fa->raw, strlen(fa->raw));
        return;
    }
    *audience = thost;
    *base = h2o_concat(pool, t->scheme, h2o_iovec_init(H2O_STRLIT("://")), t->authority);
}

static void handoff_free(handoff_ctx_t *h)
{
    cmn_req_guard_release(h->guard);
    OPENSSL_cleanse(&h->handoff, sizeof(h->handoff));
    free(h);
}

static void on_handoff_stored(void *ctx, const cmn_broker_result_t *res)
{
    handoff_ctx_t *h = ctx;
    h2o_req_t *req = h->guard->req;
    char *token = NULL;
    h2o_iovec_t location;

    if (req == NULL) {
        goto Exit;
    }
    if (res->err != NULL) {
        authn_page_fail(req, 503, res->err, "Sign-in is unavailable right now; please try again.");
        goto Exit;
    }
    token = cmn_handoff_seal(h->app->keys.handoff, &h->handoff);
    if (token == NULL) {
        authn_page_fail(req, 503, "handoff seal failed", "Please try again.");
        goto Exit;
    }

    location = h2o_concat(&req->pool, h->base,
                          h2o_iovec_init(H2O_STRLIT("/.pomerium/callback?pomerium_handoff=")),
                          h2o_iovec_init(token, strlen(token)));
    cmn_log_info(cmn_req_id(req), "handoff for session to audience \"%s\"", h->handoff.audience);
    cmn_send_redirect(req, 302, location);

Exit:
    free(token);
    handoff_free(h);
}

void authn_handoff_start(authn_app_t *app, h2o_req_t *req, const char *session_id,
                         uint64_t session_expiry, const char *target)
{
    handoff_ctx_t *h = NULL;
    json_t *data = NULL;
    h2o_iovec_t audience;
    cmn_url_t url;
    const char *err = NULL;
    size_t tlen = strlen(target);

    if (tlen > CMN_HANDOFF_TARGET_MAX || strlen(session_id) > CMN_SESSION_ID_MAX ||
        cmn_url_parse(target, tlen, &url, &err) != 0) {
        authn_page_fail(req, 400, err != NULL ? err : cmn_err_too_large,
                        "The address to return to is not allowed.");
        return;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
        return;
    }
    h->app = app;
    authn_handoff_route(&req->pool, app->config, &url, &audience, &h->base);
    if (audience.len >= sizeof(h->handoff.audience)) {
        free(h);
        authn_page_fail(req, 400, cmn_err_too_large, "The address to return to is not allowed.");
        return;
    }

    cmn_random_id(h->handoff.id);
    memcpy(h->handoff.session_id, session_id, strlen(session_id) + 1);
    memcpy(h->handoff.audience, audience.base, audience.len);
    memcpy(h->handoff.target, target, tlen + 1);
    h->handoff.session_expiry = session_expiry;
    h->handoff.expiry = authn_now() + CMN_HANDOFF_TTL_S;
    h->guard = cmn_req_guard_create(req);

    data = json_pack("{s:s}", "session_id", session_id);
    if (data == NULL || cmn_broker_put(app->broker, "handoff", h->handoff.id, data,
                                       CMN_HANDOFF_TTL_S, on_handoff_stored, h) != 0) {
        authn_page_fail(req, 503, cmn_err_unavailable, "Please try again.");
        handoff_free(h);
    }
    json_decref(data);
}
