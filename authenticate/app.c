/* SPDX-License-Identifier: MIT */
/* The daemon's state and request router: host check, endpoints, health and discovery docs. */
#include "authenticate/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "authenticate/callback.h"
#include "authenticate/login.h"
#include "authenticate/page.h"
#include "authenticate/provider.h"
#include "authenticate/refresh.h"
#include "authenticate/signout.h"
#include "common/err.h"
#include "common/log.h"
#include "common/route_target.h"
#include "common/url.h"

static const char authn_err_provider_url[] = "idp_provider_url is not an absolute http(s) URL";

static authn_app_t *the_app;

uint64_t authn_now(void)
{
    return (uint64_t)time(NULL);
}

bool authn_is_route_target(const cmn_config_t *config, h2o_iovec_t host, uint16_t port)
{
    /* one rule for every daemon: exact and wildcard route hosts, ports as route matching */
    return cmn_route_target_allowed(config, host, port);
}

void authn_app_set(authn_app_t *app)
{
    the_app = app;
}

authn_app_t *authn_app_get(void)
{
    return the_app;
}

static char *join(const char *a, const char *b)
{
    char *out = NULL;

    if (asprintf(&out, "%s%s", a, b) < 0) {
        return NULL;
    }
    return out;
}

int authn_app_init(authn_app_t *app, const cmn_config_t *config, const char **err)
{
    memset(app, 0, sizeof(*app));
    app->config = config;
    if (cmn_keys_derive(config->cookie_secret, config->shared_secret, &app->keys) != 0) {
        *err = "deriving keys failed";
        return -1;
    }
    app->signer = cmn_signer_create(config->signing_key_pem, app->keys.signing_seed, err);
    if (app->signer == NULL) {
        return -1;
    }
    app->authn_host = strdup(config->authenticate_service_url.host);
    app->cookie_authn = join(config->cookie_name, "_authenticate");
    app->cookie_csrf = join(config->cookie_name, "_csrf");
    if (app->authn_host == NULL || app->cookie_authn == NULL || app->cookie_csrf == NULL) {
        *err = cmn_err_no_memory;
        return -1;
    }
    return 0;
}

/* loopback hosts may be reached over plain http (a local dev provider) */
static bool is_loopback(h2o_iovec_t host)
{
    static const char suffix[] = ".localhost";

    if (h2o_memis(host.base, host.len, H2O_STRLIT("localhost")) ||
        h2o_memis(host.base, host.len, H2O_STRLIT("[::1]"))) {
        return true;
    }
    if (host.len > sizeof(suffix) - 1 &&
        strncasecmp(host.base + host.len - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1) == 0) {
        return true;
    }
    return host.len >= 4 && memcmp(host.base, "127.", 4) == 0;
}

static int provider_client_config(const cmn_config_t *config, cmn_http_client_config_t *out,
                                  const char **err)
{
    const char *url = config->idp_provider_url;
    cmn_url_t parsed;

    memset(out, 0, sizeof(*out));
    out->ca_file = config->idp_ca_file;
    if (url == NULL || cmn_url_parse(url, strlen(url), &parsed, err) != 0) {
        *err = authn_err_provider_url;
        return -1;
    }
    if (parsed.scheme.len == 4 && strncasecmp(parsed.scheme.base, "http", 4) == 0) {
        if (!is_loopback(parsed.host)) {
            *err = "idp_provider_url uses http:// for a host that is not loopback";
            return -1;
        }
        out->allow_loopback_http = true;
        cmn_log_warn(NULL, "the identity provider is reached over plain http (loopback only)");
    }
    return 0;
}

int authn_app_attach_loop(authn_app_t *app, h2o_loop_t *loop, const char **err)
{
    cmn_http_client_config_t hc;

    app->loop = loop;
    if (provider_client_config(app->config, &hc, err) != 0) {
        return -1;
    }
    app->http = cmn_http_client_create(loop, &hc);
    if (app->http == NULL) {
        *err = "cannot create the http client";
        return -1;
    }
    app->broker = cmn_broker_client_create(loop, app->config);
    if (app->broker == NULL) {
        *err = "cannot create the databroker client";
        return -1;
    }
    app->provider = authn_provider_create(loop, app->config, app->http);
    if (app->provider == NULL) {
        *err = cmn_err_no_memory;
        return -1;
    }
    app->refresher = authn_refresher_create(app);
    if (app->refresher == NULL) {
        *err = cmn_err_no_memory;
        return -1;
    }
    authn_provider_start(app->provider);
    return 0;
}

static void send_well_known(authn_app_t *app, h2o_req_t *req)
{
    const char *base = app->config->authenticate_service_url.raw;
    json_t *doc = json_pack("{s:s+, s:s+, s:s+}", "authentication_callback_endpoint", base,
                            "/oauth2/callback", "jwks_uri", base, "/.well-known/pomerium/jwks.json",
                            "frontchannel_logout_uri", base, "/.pomerium/sign_out");
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

    if (text == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
    } else {
        cmn_send_json(req, 200, text);
    }
    free(text);
    json_decref(doc);
}

static void send_jwks(authn_app_t *app, h2o_req_t *req)
{
    char *jwks = cmn_signer_jwks_json(app->signer);

    if (jwks == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
        return;
    }
    cmn_send_json(req, 200, jwks);
    free(jwks);
}

/* the databroker answered the readiness probe: 404 (no such record) means it and its store work */
static void on_readyz_probe(void *ctx, const cmn_broker_result_t *res)
{
    cmn_req_guard_t *guard = ctx;

    if (guard->req != NULL) {
        if (res->err == NULL || res->err == cmn_err_not_found) {
            cmn_send_text(guard->req, 200, "OK", "ok\n");
        } else {
            cmn_send_text(guard->req, 503, "Service Unavailable", "databroker unavailable\n");
        }
    }
    cmn_req_guard_release(guard);
}

/* ready when the provider is loaded and the databroker (and so its store) answers */
static void send_readyz(authn_app_t *app, h2o_req_t *req)
{
    cmn_req_guard_t *guard;

    if (app->provider == NULL || !authn_provider_ready(app->provider)) {
        cmn_send_text(req, 503, "Service Unavailable", "identity provider not ready\n");
        return;
    }
    if (app->broker == NULL) {
        cmn_send_text(req, 503, "Service Unavailable", "databroker client not ready\n");
        return;
    }
    guard = cmn_req_guard_create(req);
    if (cmn_broker_get(app->broker, "readyz", "probe", on_readyz_probe, guard) != 0) {
        cmn_req_guard_release(guard);
        cmn_send_text(req, 503, "Service Unavailable", "databroker unavailable\n");
    }
}

static bool path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static bool is_get(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

int authn_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    authn_app_t *app = the_app;
    h2o_iovec_t host = cmn_req_host(req);

    /* health checks come from anywhere (an IP address, a load balancer) */
    if (path_is(req, "/healthz")) {
        cmn_send_text(req, 200, "OK", "ok\n");
        return 0;
    }
    if (path_is(req, "/readyz")) {
        send_readyz(app, req);
        return 0;
    }
    if (!h2o_memis(host.base, host.len, app->authn_host, strlen(app->authn_host))) {
        cmn_log_debug(cmn_req_id(req), "request for another host: 404");
        authn_page_send(req, 404, "Not found", "There is nothing here.", NULL);
        return 0;
    }

    if (path_is(req, "/.pomerium/sign_out")) {
        authn_signout_handle(app, req);
        return 0;
    }
    if (!is_get(req)) {
        authn_page_send(req, 405, "Method not allowed", "Use GET.", NULL);
        return 0;
    }
    if (path_is(req, "/.pomerium/sign_in")) {
        authn_login_handle(app, req);
    } else if (path_is(req, "/oauth2/callback")) {
        authn_callback_handle(app, req);
    } else if (path_is(req, "/.pomerium/signed_out")) {
        authn_signed_out_handle(app, req);
    } else if (path_is(req, "/.well-known/pomerium") || path_is(req, "/.well-known/pomerium/")) {
        send_well_known(app, req);
    } else if (path_is(req, "/.well-known/pomerium/jwks.json")) {
        send_jwks(app, req);
    } else {
        authn_page_send(req, 404, "Not found", "There is nothing here.", NULL);
    }
    return 0;
}
