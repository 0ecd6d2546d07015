/* SPDX-License-Identifier: MIT */
/* Sign-out on the authenticate host: deletes the session, clears the cookie, leaves via the IdP. */
#include "authenticate/signout.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "authenticate/login.h"
#include "authenticate/page.h"
#include "authenticate/provider.h"
#include "common/broker_client.h"
#include "common/cookie.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "common/url.h"

#define CSRF_LABEL "sign_out|"

typedef struct st_signout_t {
    authn_app_t *app;
    cmn_req_guard_t *guard;
    h2o_iovec_t target; /* pool; base NULL when none */
    char session_id[CMN_SESSION_ID_MAX + 1];
    char *id_token;
} signout_t;

int authn_signout_csrf(const uint8_t key[CMN_KEY_LEN], h2o_iovec_t cookie,
                       char out[AUTHN_SIGNOUT_CSRF_LEN + 1])
{
    uint8_t mac[CMN_HMAC_LEN];
    char *msg = malloc(sizeof(CSRF_LABEL) + cookie.len);
    int ret = -1;

    if (msg == NULL) {
        return -1;
    }
    memcpy(msg, CSRF_LABEL, sizeof(CSRF_LABEL) - 1);
    if (cookie.len > 0) {
        memcpy(msg + sizeof(CSRF_LABEL) - 1, cookie.base, cookie.len);
    }
    if (cmn_hmac_sha256(key, CMN_KEY_LEN, msg, sizeof(CSRF_LABEL) - 1 + cookie.len, mac) == 0) {
        cmn_base64url_encode(mac, sizeof(mac), out);
        ret = 0;
    }
    free(msg);
    return ret;
}

h2o_iovec_t authn_end_session_url(h2o_mem_pool_t *pool, const char *endpoint,
                                  const char *id_token_hint, const char *post_logout_uri,
                                  const char *client_id)
{
    h2o_iovec_t hint = h2o_iovec_init(H2O_STRLIT(""));
    h2o_iovec_t sep = h2o_iovec_init(strchr(endpoint, '?') != NULL ? "&" : "?", 1);

    if (id_token_hint != NULL && id_token_hint[0] != '\0') {
        hint = h2o_concat(pool, h2o_iovec_init(H2O_STRLIT("id_token_hint=")),
                          cmn_url_encode(pool, id_token_hint, strlen(id_token_hint)),
                          h2o_iovec_init(H2O_STRLIT("&")));
    }
    return h2o_concat(pool, h2o_iovec_init(endpoint, strlen(endpoint)), sep, hint,
                      h2o_iovec_init(H2O_STRLIT("post_logout_redirect_uri=")),
                      cmn_url_encode(pool, post_logout_uri, strlen(post_logout_uri)),
                      h2o_iovec_init(H2O_STRLIT("&client_id=")),
                      cmn_url_encode(pool, client_id, strlen(client_id)));
}

static void signout_free(signout_t *s)
{
    cmn_req_guard_release(s->guard);
    if (s->id_token != NULL) {
        OPENSSL_cleanse(s->id_token, strlen(s->id_token));
        free(s->id_token);
    }
    free(s);
}

static h2o_iovec_t signed_out_url(authn_app_t *app, h2o_mem_pool_t *pool)
{
    const char *base = app->config->authenticate_service_url.raw;

    return h2o_concat(pool, h2o_iovec_init(base, strlen(base)),
                      h2o_iovec_init(H2O_STRLIT("/.pomerium/signed_out")));
}

/* clears the cookie and sends the browser on: the IdP's end_session_endpoint, or the target */
static void finish(signout_t *s, h2o_req_t *req)
{
    authn_app_t *app = s->app;
    const authn_discovery_t *disc = authn_provider_discovery(app->provider);
    cmn_cookie_attrs_t attrs = {.max_age = -1,
                                .secure = app->config->cookie_secure,
                                .http_only = app->config->cookie_http_only};
    h2o_iovec_t location;

    cmn_add_header(
        req, "set-cookie",
        cmn_cookie_build(&req->pool, app->cookie_authn, h2o_iovec_init(H2O_STRLIT("")), &attrs));

    if (disc != NULL && disc->end_session_endpoint != NULL) {
        const char *post = app->config->signout_redirect_url != NULL
                               ? app->config->signout_redirect_url
                               : signed_out_url(app, &req->pool).base;
        location = authn_end_session_url(&req->pool, disc->end_session_endpoint, s->id_token, post,
                                         app->config->idp_client_id);
    } else if (s->target.base != NULL) {
        location = s->target;
    } else if (app->config->signout_redirect_url != NULL) {
        location = h2o_strdup(&req->pool, app->config->signout_redirect_url, SIZE_MAX);
    } else {
        location = signed_out_url(app, &req->pool);
    }
    cmn_send_redirect(req, 302, location);
}

static void on_deleted(void *ctx, const cmn_broker_result_t *res)
{
    signout_t *s = ctx;
    h2o_req_t *req = s->guard->req;

    if (req == NULL) {
        goto Exit;
    }
    if (res->err != NULL && res->err != cmn_err_not_found) {
        /* the session would outlive the sign-out: say so rather than pretend */
        authn_page_fail(req, 503, res->err, "Sign-out could not complete; please try again.");
        goto Exit;
    }
    cmn_log_info(cmn_req_id(req), "sign-out: session deleted");
    finish(s, req);

Exit:
    signout_free(s);
}

static void on_fetched(void *ctx, const cmn_broker_result_t *res)
{
    signout_t *s = ctx;
    h2o_req_t *req = s->guard->req;
    const char *idt;

    if (req == NULL) {
        signout_free(s);
        return;
    }
    if (res->err == cmn_err_not_found) {
        finish(s, req);
        signout_free(s);
        return;
    }
    idt = json_string_value(json_object_get(json_object_get(res->record, "data"), "id_token"));
    if (res->err == NULL && idt != NULL) {
        s->id_token = strdup(idt);
    }
    if (cmn_broker_delete(s->app->broker, "session", s->session_id, on_deleted, s) != 0) {
        authn_page_fail(req, 503, cmn_err_unavailable, "Sign-out could not complete.");
        signout_free(s);
    }
}

/* the session of this browser's _authenticate cookie is fetched (for its ID token), then gone */
static void sign_out(authn_app_t *app, h2o_req_t *req, h2o_iovec_t target)
{
    signout_t *s = calloc(1, sizeof(*s));
    h2o_iovec_t v = cmn_cookie_from_req(req, app->cookie_authn);
    cmn_session_ticket_t ticket;
    const char *err = NULL;

    if (s == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
        return;
    }
    s->app = app;
    s->target = target;
    s->guard = cmn_req_guard_create(req);

    /* an expired ticket still names a session to delete, so ignore the expiry here */
    if (v.base == NULL || cmn_cookie_open(app->keys.cookie, app->cookie_authn, app->authn_host,
                                          v.base, v.len, 0, &ticket, &err) != 0) {
        finish(s, req);
        signout_free(s);
        return;
    }
    memcpy(s->session_id, ticket.session_id, sizeof(s->session_id));
    if (cmn_broker_get(app->broker, "session", s->session_id, on_fetched, s) != 0) {
        authn_page_fail(req, 503, cmn_err_unavailable, "Sign-out could not complete.");
        signout_free(s);
    }
}

static void confirmation_page(authn_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t v = cmn_cookie_from_req(req, app->cookie_authn);
    char csrf[AUTHN_SIGNOUT_CSRF_LEN + 1];
    h2o_iovec_t form;

    if (authn_signout_csrf(app->keys.signed_url, v.base != NULL ? v : h2o_iovec_init("", 0),
                           csrf) != 0) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
        return;
    }
    form = h2o_concat(&req->pool,
                      h2o_iovec_init(H2O_STRLIT("<form method=\"post\" action=\"/.pomerium/"
                                                "sign_out\"><input type=\"hidden\" name=\"csrf\" "
                                                "value=\"")),
                      h2o_iovec_init(csrf, strlen(csrf)),
                      h2o_iovec_init(H2O_STRLIT("\"><button type=\"submit\">Sign out</button>"
                                                "</form>")));
    authn_page_send(req, 200, "Sign out", "Do you want to sign out?", form.base);
}

static void handle_post(authn_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t v = cmn_cookie_from_req(req, app->cookie_authn);
    char want[AUTHN_SIGNOUT_CSRF_LEN + 1];
    h2o_iovec_t got;

    if (req->entity.base == NULL || req->entity.len > AUTHN_SIGNOUT_BODY_MAX) {
        authn_page_fail(req, 400, cmn_err_too_large, "This sign-out form is invalid.");
        return;
    }
    got = cmn_url_query_get(req->entity, "csrf");
    if (authn_signout_csrf(app->keys.signed_url, v.base != NULL ? v : h2o_iovec_init("", 0),
                           want) != 0 ||
        got.base == NULL || !cmn_consttime_eq(got.base, got.len, want, strlen(want))) {
        authn_page_fail(req, 400, "sign-out form token mismatch",
                        "This sign-out form is invalid or has expired; please try again.");
        return;
    }
    sign_out(app, req, h2o_iovec_init(NULL, 0));
}

static void handle_signed_get(authn_app_t *app, h2o_req_t *req, h2o_iovec_t query)
{
    h2o_iovec_t raw = cmn_url_query_get(query, "pomerium_redirect_uri");
    h2o_iovec_t target = h2o_iovec_init(NULL, 0);
    const char *err = NULL;
    cmn_url_t url;

    if (authn_verify_signed_request(app, req, &err) != 0) {
        authn_page_fail(req, 400, err, "This sign-out link is invalid or has expired.");
        return;
    }
    if (raw.base != NULL && raw.len > 0 &&
        authn_target_parse(&req->pool, app->config, raw, &target, &url, &err) != 0) {
        authn_page_fail(req, 400, err, "The address to return to is not allowed.");
        return;
    }
    sign_out(app, req, target);
}

void authn_signout_handle(authn_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t query = cmn_url_query_of_path(req->input.path);

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        handle_post(app, req);
        return;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        authn_page_send(req, 405, "Method not allowed", "Use GET or POST.", NULL);
        return;
    }
    if (cmn_url_query_get(query, "pomerium_signature").base != NULL) {
        handle_signed_get(app, req, query);
        return;
    }
    confirmation_page(app, req);
}

void authn_signed_out_handle(authn_app_t *app, h2o_req_t *req)
{
    authn_page_send(req, 200, "Signed out", "You are signed out.", NULL);
}
