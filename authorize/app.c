/* SPDX-License-Identifier: MIT */
/* Process and thread state of authorize, and the response pieces its handlers share. */
#include "authorize/app.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "common/cookie.h"
#include "common/log.h"
#include "common/route_target.h"
#include "common/server.h"
#include "common/signed_url.h"
#include "common/url.h"

authz_app_t *authz_app;

static __thread authz_thread_t *current_thread;

void authz_thread_init(h2o_context_t *ctx, unsigned thread_index, void *arg)
{
    authz_thread_t *t = h2o_mem_alloc(sizeof(*t));

    t->broker = cmn_broker_client_create(ctx->loop, authz_app->config);
    if (t->broker == NULL) {
        cmn_log_error(NULL, "thread %u: no databroker client; session reads will answer 503",
                      thread_index);
    }
    t->assertions = authz_assertion_cache_create();
    t->tickets = authz_ticket_cache_create();
    t->fetcher = t->broker != NULL ? authz_session_fetcher_create(ctx->loop, t->broker) : NULL;
    current_thread = t;
}

authz_thread_t *authz_thread(void)
{
    return current_thread;
}

h2o_iovec_t authz_proxy_header(h2o_req_t *req, const char *name)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (req->conn == NULL || req->conn->callbacks->get_peername == NULL) {
        return h2o_iovec_init(NULL, 0);
    }
    len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len == 0 || authz_app->trusted_proxies == NULL ||
        !authz_cidrs_contain(authz_app->trusted_proxies, (struct sockaddr *)&ss)) {
        return h2o_iovec_init(NULL, 0);
    }
    return cmn_req_header(req, name);
}

bool authz_is_browser(h2o_req_t *req)
{
    h2o_iovec_t accept = cmn_req_header(req, "accept");

    /* DESIGN.md §4: an Accept without text/html, or X-Requested-With, is not a browser */
    if (cmn_req_header(req, "x-requested-with").base != NULL) {
        return false;
    }
    if (accept.base == NULL) {
        return true;
    }
    return h2o_strstr(accept.base, accept.len, H2O_STRLIT("text/html")) != SIZE_MAX;
}

const char *authz_cookie_scope(h2o_mem_pool_t *pool, h2o_iovec_t host)
{
    const char *domain = authz_app->config->cookie_domain;

    if (domain != NULL && cmn_host_in_domain(host, domain)) {
        return domain;
    }
    return h2o_strdup(pool, host.base, host.len).base;
}

h2o_iovec_t authz_signin_url(h2o_req_t *req, h2o_iovec_t target)
{
    const cmn_config_t *config = authz_app->config;
    h2o_iovec_t encoded = cmn_url_encode(&req->pool, target.base, target.len);
    h2o_iovec_t url;
    char *signed_url;

    /* authenticate verifies over authenticate_service_url.raw + its request path: keep it so */
    url = h2o_concat(&req->pool, h2o_iovec_init(config->authenticate_service_url.raw,
                                                strlen(config->authenticate_service_url.raw)),
                     h2o_iovec_init(H2O_STRLIT("/.pomerium/sign_in?pomerium_redirect_uri=")),
                     encoded);
    signed_url = cmn_signed_url_sign(authz_app->keys.signed_url, url.base, (uint64_t)time(NULL));
    if (signed_url == NULL) {
        return h2o_iovec_init(NULL, 0);
    }
    url = h2o_strdup(&req->pool, signed_url, SIZE_MAX);
    free(signed_url);
    return url;
}

h2o_iovec_t authz_unauthenticated_location(h2o_req_t *req, h2o_iovec_t target)
{
    const cmn_config_url_t *fa = &authz_app->config->forward_auth_url;

    if (fa->raw == NULL) {
        return authz_signin_url(req, target);
    }
    return h2o_concat(&req->pool, h2o_iovec_init(fa->raw, strlen(fa->raw)),
                      h2o_iovec_init(H2O_STRLIT("/?uri=")),
                      cmn_url_encode(&req->pool, target.base, target.len));
}

static const char *same_site_attr(const char *configured)
{
    if (configured == NULL) {
        return NULL;
    }
    if (strcasecmp(configured, "strict") == 0) {
        return "Strict";
    }
    if (strcasecmp(configured, "none") == 0) {
        return "None";
    }
    return "Lax";
}

void authz_set_cookie(h2o_req_t *req, h2o_iovec_t value, const char *domain, int64_t max_age)
{
    const cmn_config_t *config = authz_app->config;
    cmn_cookie_attrs_t attrs = {
        .domain = domain,
        .path = "/",
        .max_age = max_age,
        .secure = config->cookie_secure,
        .http_only = config->cookie_http_only,
        .same_site = same_site_attr(config->cookie_same_site),
    };

    cmn_add_header(req, "set-cookie",
                   cmn_cookie_build(&req->pool, config->cookie_name, value, &attrs));
}

void authz_send_status(h2o_req_t *req, int status)
{
    const char *body;

    switch (status) {
    case 200:
        body = "OK\n";
        break;
    case 400:
        body = "Bad Request\n";
        break;
    case 401:
        body = "Unauthorized\n";
        break;
    case 403:
        body = "Forbidden\n";
        break;
    default:
        status = 503;
        body = "Service Unavailable\n";
        break;
    }
    cmn_send_text(req, status, NULL, body);
}

bool authz_is_route_target(h2o_iovec_t host, uint16_t port)
{
    authz_table_t *table = authz_table_acquire();
    /* the start-up table borrows the start-up config; a reloaded one brings its own */
    const cmn_config_t *config = table->config != NULL ? table->config : authz_app->config;
    bool yes = cmn_route_target_allowed(config, host, port);

    authz_table_release(table);
    return yes;
}

bool authz_location_is_safe(h2o_iovec_t location)
{
    if (location.base == NULL || location.len == 0) {
        return false;
    }
    for (size_t i = 0; i < location.len; i++) {
        unsigned char c = (unsigned char)location.base[i];
        if (c < 0x21 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

void authz_redirect(h2o_req_t *req, int status, h2o_iovec_t location)
{
    if (!authz_location_is_safe(location)) {
        cmn_log_warn(cmn_req_id(req), "redirect refused: its location holds a control byte");
        authz_send_status(req, 400);
        return;
    }
    cmn_send_redirect(req, status, location);
}
