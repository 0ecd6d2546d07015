/* SPDX-License-Identifier: MIT */
/* The browser endpoints: the forward-auth host, route hosts' /.pomerium/, well-known, health. */
#include "authorize/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/cookie.h"
#include "common/log.h"
#include "common/server.h"
#include "common/signed_url.h"
#include "common/url.h"
#include "authorize/callback.h"
#include "authorize/verify.h"

static bool path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static h2o_iovec_t req_query(h2o_req_t *req)
{
    return cmn_url_query_of_path(req->path);
}

static bool iov_eq(h2o_iovec_t a, h2o_iovec_t b)
{
    return a.base != NULL && b.base != NULL && h2o_memis(a.base, a.len, b.base, b.len);
}

/* GET FA/?uri=T: T must be on a route host; then sign-in, or the T inside a used handoff */
static void fa_sign_in(h2o_req_t *req)
{
    authz_target_input_t in = {.query = req_query(req)};
    authz_target_t t;
    const char *err = NULL;
    h2o_iovec_t token, location;

    if (authz_target_derive(&req->pool, &in, &t, &err) != 0 ||
        !authz_is_route_target(t.host, t.port)) {
        cmn_log_info(cmn_req_id(req), "fa 400: target %s",
                     err != NULL ? err : "not a route target (host and port)");
        authz_send_status(req, 400);
        return;
    }

    token = t.url.has_query && strcmp(t.path.base, "/.pomerium/callback") == 0
                ? cmn_url_query_get(t.url.query, "pomerium_handoff")
                : h2o_iovec_init(NULL, 0);
    if (token.base != NULL) {
        /* the seed's @authredirect after a host-only handoff: the cookie is set, go to T */
        if (authz_handoff_peek(req, token, t.host, &location) != 0) {
            authz_send_status(req, 400);
            return;
        }
        authz_redirect(req, 302, location);
        return;
    }

    /* DESIGN.md §4: a non-browser client never gets sent to the IdP */
    if (!authz_is_browser(req)) {
        cmn_send_json(req, 401, "{\"error\":\"unauthenticated\"}");
        return;
    }
    location = authz_signin_url(req, t.raw);
    if (location.base == NULL) {
        authz_send_status(req, 503);
        return;
    }
    authz_redirect(req, 302, location);
}

static void fa_root(h2o_req_t *req)
{
    if (cmn_url_query_get(req_query(req), "uri").base != NULL) {
        fa_sign_in(req);
        return;
    }
    if (authz_proxy_header(req, "x-forwarded-host").base != NULL) {
        authz_verify(req, AUTHZ_VERIFY_FORWARDED);
        return;
    }
    authz_send_status(req, 400);
}

/* the scheme and authority the browser used for this host, behind nginx */
static h2o_iovec_t request_origin(h2o_req_t *req)
{
    h2o_iovec_t proto = authz_proxy_header(req, "x-forwarded-proto");

    if (proto.base == NULL || (!h2o_memis(proto.base, proto.len, H2O_STRLIT("http")) &&
                               !h2o_memis(proto.base, proto.len, H2O_STRLIT("https")))) {
        proto = h2o_iovec_init(H2O_STRLIT("https"));
    }
    return h2o_concat(&req->pool, proto, h2o_iovec_init(H2O_STRLIT("://")), req->authority);
}

/*
 * This host's root as the browser reached it, when this host is a route target; rebuilt from
 * the parsed scheme, host and port, so no byte of the Host header reaches a Location unchecked
 */
static h2o_iovec_t route_root(h2o_req_t *req)
{
    h2o_iovec_t origin = request_origin(req);
    cmn_url_t url;
    const char *err = NULL;
    h2o_iovec_t host;
    uint16_t port;
    char port_text[8] = "";

    if (cmn_url_parse(origin.base, origin.len, &url, &err) != 0 ||
        url.authority.base + url.authority.len != origin.base + origin.len) {
        return h2o_iovec_init(NULL, 0);
    }
    host = cmn_host_lower(&req->pool, url.host);
    port = cmn_url_effective_port(&url);
    if (!authz_is_route_target(host, port)) {
        return h2o_iovec_init(NULL, 0);
    }
    if (url.port != 0) {
        snprintf(port_text, sizeof(port_text), ":%u", (unsigned)port);
    }
    return h2o_concat(&req->pool, cmn_host_lower(&req->pool, url.scheme),
                      h2o_iovec_init(H2O_STRLIT("://")), host,
                      h2o_iovec_init(port_text, strlen(port_text)),
                      h2o_iovec_init(H2O_STRLIT("/")));
}

/* the sign-out return: the given target when it is a route target, else this host's root */
static h2o_iovec_t sign_out_return(h2o_req_t *req)
{
    h2o_iovec_t given = cmn_url_query_get(req_query(req), "pomerium_redirect_uri");
    authz_target_t t;
    const char *err = NULL;

    if (given.base != NULL) {
        h2o_iovec_t decoded = cmn_url_decode(&req->pool, given.base, given.len);
        if (decoded.base != NULL && authz_target_parse(&req->pool, decoded, &t, &err) == 0 &&
            authz_is_route_target(t.host, t.port)) {
            return t.raw;
        }
    }
    return route_root(req);
}

static void sign_out(h2o_req_t *req, h2o_iovec_t host)
{
    const cmn_config_t *config = authz_app->config;
    h2o_iovec_t back = sign_out_return(req);
    h2o_iovec_t url = h2o_concat(
        &req->pool, h2o_iovec_init(config->authenticate_service_url.raw,
                                   strlen(config->authenticate_service_url.raw)),
        h2o_iovec_init(H2O_STRLIT("/.pomerium/sign_out")));
    char *signed_url;

    if (back.base != NULL) {
        url = h2o_concat(&req->pool, url, h2o_iovec_init(H2O_STRLIT("?pomerium_redirect_uri=")),
                         cmn_url_encode(&req->pool, back.base, back.len));
    }
    signed_url = cmn_signed_url_sign(authz_app->keys.signed_url, url.base, (uint64_t)time(NULL));
    if (signed_url == NULL) {
        authz_send_status(req, 503);
        return;
    }

    authz_set_cookie(req, h2o_iovec_init(H2O_STRLIT("")), NULL, -1);
    if (config->cookie_domain != NULL && cmn_host_in_domain(host, config->cookie_domain)) {
        authz_set_cookie(req, h2o_iovec_init(H2O_STRLIT("")), config->cookie_domain, -1);
    }
    authz_redirect(req, 302, h2o_strdup(&req->pool, signed_url, SIZE_MAX));
    free(signed_url);
}

static void callback(h2o_req_t *req, h2o_iovec_t host)
{
    h2o_iovec_t token = cmn_url_query_get(req_query(req), "pomerium_handoff");

    if (token.base == NULL) {
        authz_send_status(req, 400);
        return;
    }
    authz_handoff_consume(req, token, host, AUTHZ_HANDOFF_REPLY_302);
}

static void well_known(h2o_req_t *req)
{
    const char *authn = authz_app->config->authenticate_service_url.raw;
    h2o_iovec_t origin = request_origin(req);
    json_t *doc = json_object();
    char *text;

    json_object_set_new(doc, "authentication_callback_endpoint",
                        json_sprintf("%s/oauth2/callback", authn));
    json_object_set_new(doc, "jwks_uri", json_sprintf("%.*s/.well-known/pomerium/jwks.json",
                                                      (int)origin.len, origin.base));
    json_object_set_new(doc, "frontchannel_logout_uri",
                        json_sprintf("%.*s/.pomerium/sign_out", (int)origin.len, origin.base));
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        authz_send_status(req, 503);
        return;
    }
    cmn_send_json(req, 200, text);
    free(text);
}

static bool pomerium_endpoint(h2o_req_t *req, h2o_iovec_t host)
{
    if (path_is(req, "/.pomerium/callback") || path_is(req, "/.pomerium/callback/")) {
        callback(req, host);
        return true;
    }
    if (path_is(req, "/.pomerium/sign_out") || path_is(req, "/.pomerium/sign_out/")) {
        sign_out(req, host);
        return true;
    }
    return false;
}

static bool service_endpoint(h2o_req_t *req)
{
    if (path_is(req, "/healthz")) {
        authz_send_status(req, 200);
    } else if (path_is(req, "/readyz")) {
        authz_send_status(req, authz_session_cache_connected(authz_app->sessions) ? 200 : 503);
    } else if (path_is(req, "/.well-known/pomerium")) {
        well_known(req);
    } else if (path_is(req, "/.well-known/pomerium/jwks.json")) {
        cmn_send_json(req, 200, authz_app->jwks_json);
    } else if (path_is(req, "/verify")) {
        authz_verify(req, AUTHZ_VERIFY_AUTH_REQUEST);
    } else {
        return false;
    }
    return true;
}

int authz_handle(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t host = cmn_req_host(req);

    /* nothing here accepts an Upgrade: answer it as a plain request and keep the connection */
    if (req->upgrade.base != NULL) {
        req->upgrade = h2o_iovec_init(NULL, 0);
        req->http1_is_persistent = 1;
    }
    if (service_endpoint(req)) {
        return 0;
    }
    if (iov_eq(host, authz_app->fa_host)) {
        if (path_is(req, "/")) {
            fa_root(req);
            return 0;
        }
        if (pomerium_endpoint(req, host)) {
            return 0;
        }
    } else if (authz_is_route_host(host) && pomerium_endpoint(req, host)) {
        return 0;
    }
    /* not 404: nginx's auth_request turns any status but 2xx, 401 and 403 into a 500 */
    cmn_log_info(cmn_req_id(req), "400: no endpoint for this host and path");
    authz_send_status(req, 400);
    return 0;
}
