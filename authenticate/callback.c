/* SPDX-License-Identifier: MIT */
/* GET /oauth2/callback: finishes a login attempt and creates the session (ARCHITECTURE step 4). */
#include "authenticate/callback.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <jansson.h>
#include "authenticate/handoff.h"
#include "authenticate/identity.h"
#include "authenticate/login.h"
#include "authenticate/page.h"
#include "authenticate/provider.h"
#include "authenticate/record.h"
#include "authenticate/token.h"
#include "common/broker_client.h"
#include "common/cookie.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "common/url.h"

const char authn_err_bad_state[] = "missing or malformed state or code";
const char authn_err_unknown_state[] = "unknown or reused login attempt";
const char authn_err_binding[] = "login-attempt cookie does not match";
const char authn_err_no_binding[] = "login-attempt cookie missing";
const char authn_err_no_id_token[] = "token response holds no ID token";

#define ERROR_PARAM_MAX 256 /* error / error_description shown to the user are cut here */

typedef struct st_callback_t {
    authn_app_t *app;
    cmn_req_guard_t *guard;
    char state[CMN_ID_LEN + 1];
    h2o_iovec_t code; /* pool, decoded */
    json_t *login;    /* the login record's data */
    char *access_token, *id_token, *refresh_token;
    int64_t expires_in;
    json_t *claims;
    char session_id[CMN_ID_LEN + 1];
    uint64_t issued, expiry;
} callback_t;

bool authn_callback_param_ok(h2o_iovec_t v, size_t max)
{
    size_t i;

    if (v.base == NULL || v.len == 0 || v.len > max) {
        return false;
    }
    for (i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if (c < 0x21 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void callback_free(callback_t *cb)
{
    cmn_req_guard_release(cb->guard);
    json_decref(cb->login);
    json_decref(cb->claims);
    free_secret(cb->access_token);
    free_secret(cb->id_token);
    free_secret(cb->refresh_token);
    free(cb);
}

/* a refused login clears the login-attempt cookie (DESIGN.md §3, provider rules) */
static void clear_binding_cookie(authn_app_t *app, h2o_req_t *req)
{
    cmn_cookie_attrs_t attrs = {.max_age = -1, .secure = 1, .http_only = 1, .same_site = "Lax"};

    cmn_add_header(
        req, "set-cookie",
        cmn_cookie_build(&req->pool, app->cookie_csrf, h2o_iovec_init(H2O_STRLIT("")), &attrs));
}

static void refuse(callback_t *cb, h2o_req_t *req, int status, const char *why, const char *text)
{
    clear_binding_cookie(cb->app, req);
    authn_page_fail(req, status, why, text);
}

/* the target of the attempt, as a link back to it: visiting it again starts a new sign-in;
 * without an attempt (no or unknown state) the first route's root does the same */
static const char *retry_link(authn_app_t *app, h2o_req_t *req, const json_t *login)
{
    const char *target = json_string_value(json_object_get(login, "target"));
    h2o_iovec_t t;

    if (target == NULL && app->config->num_routes > 0 &&
        app->config->routes[0].from.raw != NULL) {
        target = h2o_concat(&req->pool,
                            h2o_iovec_init(app->config->routes[0].from.raw,
                                           strlen(app->config->routes[0].from.raw)),
                            h2o_iovec_init(H2O_STRLIT("/")))
                     .base;
    }
    if (target == NULL) {
        return NULL;
    }
    t = cmn_html_escape(&req->pool, target, strlen(target));
    return h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("<p><a href=\"")), t,
                      h2o_iovec_init(H2O_STRLIT("\">Try again</a></p>")))
        .base;
}

/* RFC 6749 §4.1.2.1 or §5.2: the provider refused; show its words, escaped */
static void provider_refused(callback_t *cb, h2o_req_t *req, const char *error,
                             const char *description)
{
    h2o_iovec_t e = h2o_strdup(&req->pool, error, strnlen(error, ERROR_PARAM_MAX));
    h2o_iovec_t d = description != NULL
                        ? h2o_strdup(&req->pool, description, strnlen(description, ERROR_PARAM_MAX))
                        : h2o_iovec_init(H2O_STRLIT(""));
    char logged[ERROR_PARAM_MAX + 8];
    h2o_iovec_t text = h2o_concat(&req->pool,
                                  h2o_iovec_init(H2O_STRLIT("The identity provider refused the "
                                                            "sign-in: ")),
                                  e, h2o_iovec_init(d.len > 0 ? " (" : "", d.len > 0 ? 2 : 0), d,
                                  h2o_iovec_init(d.len > 0 ? ")" : "", d.len > 0 ? 1 : 0));

    cmn_log_escape(e.base, e.len, 64, logged, sizeof(logged));
    cmn_log_warn(cmn_req_id(req), "403 login refused by the provider: error \"%s\"", logged);
    clear_binding_cookie(cb->app, req);
    authn_page_send(req, 403, "Sign-in refused", text.base, retry_link(cb->app, req, cb->login));
}

static void set_session_cookie(callback_t *cb, h2o_req_t *req)
{
    const cmn_config_t *config = cb->app->config;
    cmn_session_ticket_t ticket = {.issued = cb->issued, .expiry = cb->expiry};
    char value[CMN_COOKIE_VALUE_MAX];
    const char *ss = config->cookie_same_site;
    cmn_cookie_attrs_t attrs = {.max_age = (int64_t)config->cookie_expire_s,
                                .secure = config->cookie_secure,
                                .http_only = config->cookie_http_only};

    attrs.same_site = ss == NULL                      ? NULL
                      : strcasecmp(ss, "strict") == 0 ? "Strict"
                      : strcasecmp(ss, "none") == 0   ? "None"
                                                      : "Lax";
    memcpy(ticket.session_id, cb->session_id, sizeof(cb->session_id));
    if (cmn_cookie_seal(cb->app->keys.cookie, cb->app->cookie_authn, cb->app->authn_host, &ticket,
                        value) != 0) {
        /* the session exists; without the cookie the next sign-in simply starts over */
        cmn_log_error(cmn_req_id(req), "sealing the authenticate cookie failed");
        return;
    }
    cmn_add_header(req, "set-cookie",
                   cmn_cookie_build(&req->pool, cb->app->cookie_authn,
                                    h2o_strdup(&req->pool, value, strlen(value)), &attrs));
}

static void on_session_stored(void *ctx, const cmn_broker_result_t *res)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;
    const char *target = json_string_value(json_object_get(cb->login, "target"));

    if (req == NULL) {
        goto Exit;
    }
    if (res->err != NULL) {
        refuse(cb, req, 503, res->err, "Sign-in is unavailable right now; please try again.");
        goto Exit;
    }

    cmn_log_info(cmn_req_id(req), "login: user \"%s\" signed in",
                 json_string_value(json_object_get(cb->claims, "sub")));
    set_session_cookie(cb, req);
    authn_handoff_start(cb->app, req, cb->session_id, cb->expiry, target != NULL ? target : "");

Exit:
    callback_free(cb);
}

static void store_session(callback_t *cb, h2o_req_t *req)
{
    authn_session_fields_t f = {0};
    json_t *data = NULL;

    f.session_id = cb->session_id;
    f.claims = cb->claims;
    f.issued = cb->issued;
    f.expiry = cb->expiry;
    f.last_refresh = cb->issued;
    f.access_expiry = cb->expires_in >= 0 ? cb->issued + (uint64_t)cb->expires_in : cb->expiry;
    f.id_token = cb->id_token;
    f.access_token = cb->access_token;
    f.refresh_token = cb->refresh_token;
    data = authn_session_data(&f, cb->app->keys.at_rest);
    if (data == NULL || cmn_broker_put(cb->app->broker, "session", cb->session_id, data,
                                       cb->expiry - cb->issued, on_session_stored, cb) != 0) {
        refuse(cb, req, 503, cmn_err_unavailable, "Sign-in is unavailable; please try again.");
        callback_free(cb);
    }
    json_decref(data);
}

static void on_user_stored(void *ctx, const cmn_broker_result_t *res)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;

    if (req == NULL) {
        callback_free(cb);
        return;
    }
    if (res->err != NULL) {
        refuse(cb, req, 503, res->err, "Sign-in is unavailable right now; please try again.");
        callback_free(cb);
        return;
    }
    store_session(cb, req);
}

static void on_identity(void *ctx, int status, const char *why, json_t *claims)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;
    json_t *user = NULL;
    const char *sub;

    cb->claims = claims;
    if (req == NULL) {
        callback_free(cb);
        return;
    }
    if (status != 0) {
        refuse(cb, req, status, why,
               status == 403 ? "The identity provider's answer could not be verified."
                             : "The identity provider did not answer; please try again.");
        callback_free(cb);
        return;
    }

    cmn_random_id(cb->session_id);
    cb->issued = authn_now();
    cb->expiry = cb->issued + cb->app->config->cookie_expire_s;
    sub = json_string_value(json_object_get(claims, "sub"));
    user = authn_user_data(claims);
    if (user == NULL || cmn_broker_put(cb->app->broker, "user", sub, user,
                                       cb->app->config->cookie_expire_s, on_user_stored, cb) != 0) {
        refuse(cb, req, 503, cmn_err_unavailable, "Sign-in is unavailable; please try again.");
        callback_free(cb);
    }
    json_decref(user);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void on_token(void *ctx, const authn_token_result_t *res)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;
    authn_identity_req_t in = {0};

    if (req == NULL) {
        callback_free(cb);
        return;
    }
    if (res->outcome == AUTHN_TOKEN_PROVIDER_ERR) {
        provider_refused(cb, req, res->error, res->error_description);
        callback_free(cb);
        return;
    }
    if (res->outcome != AUTHN_TOKEN_OK || res->id_token == NULL) {
        cmn_log_debug(cmn_req_id(req), "token endpoint status %d", res->status);
        refuse(cb, req, 502, res->outcome != AUTHN_TOKEN_OK ? res->err : authn_err_no_id_token,
               "The identity provider did not answer; please try again.");
        callback_free(cb);
        return;
    }

    cb->access_token = dup_or_null(res->access_token);
    cb->id_token = dup_or_null(res->id_token);
    cb->refresh_token = dup_or_null(res->refresh_token);
    cb->expires_in = res->expires_in;

    in.id_token = cb->id_token;
    in.nonce = json_string_value(json_object_get(cb->login, "nonce"));
    in.access_token = cb->access_token;
    authn_identity_resolve(cb->app, &in, on_identity, cb);
}

static void exchange_code(callback_t *cb, h2o_req_t *req)
{
    const char *base = cb->app->config->authenticate_service_url.raw;
    const char *verifier = json_string_value(json_object_get(cb->login, "verifier"));
    h2o_iovec_t redirect_uri = h2o_concat(&req->pool, h2o_iovec_init(base, strlen(base)),
                                          h2o_iovec_init(H2O_STRLIT("/oauth2/callback")));
    const char *pairs[] = {"grant_type",
                           "authorization_code",
                           "code",
                           cb->code.base,
                           "redirect_uri",
                           redirect_uri.base,
                           "code_verifier",
                           verifier != NULL ? verifier : "",
                           NULL};

    if (!authn_provider_ready(cb->app->provider)) {
        refuse(cb, req, 503, "identity provider not ready",
               "The identity provider is unavailable; please try again shortly.");
        callback_free(cb);
        return;
    }
    if (authn_token_request(cb->app, pairs, on_token, cb) != 0) {
        refuse(cb, req, 502, cmn_err_unavailable,
               "The identity provider did not answer; please try again.");
        callback_free(cb);
    }
}

/* the login record's binding must be the hash of this browser's _csrf cookie */
static const char *check_binding(callback_t *cb, h2o_req_t *req)
{
    h2o_iovec_t v = cmn_cookie_from_req(req, cb->app->cookie_csrf);
    const char *want = json_string_value(json_object_get(cb->login, "attempt"));
    char got[AUTHN_HASH_B64_LEN + 1];

    if (v.base == NULL || v.len == 0) {
        return authn_err_no_binding;
    }
    if (want == NULL || !authn_binding_well_formed(v)) {
        return authn_err_binding;
    }
    authn_binding_hash(v.base, v.len, got);
    if (!cmn_consttime_eq(got, strlen(got), want, strlen(want))) {
        return authn_err_binding;
    }
    return NULL;
}

static void on_login_taken(void *ctx, const cmn_broker_result_t *res)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;
    const char *err;

    if (req == NULL) {
        callback_free(cb);
        return;
    }
    if (res->err == cmn_err_not_found) {
        refuse(cb, req, 400, authn_err_unknown_state,
               "This sign-in attempt is unknown or was already used; please start again.");
        callback_free(cb);
        return;
    }
    if (res->err != NULL || !json_is_object(json_object_get(res->record, "data"))) {
        refuse(cb, req, 503, res->err != NULL ? res->err : cmn_err_malformed,
               "Sign-in is unavailable right now; please try again.");
        callback_free(cb);
        return;
    }
    cb->login = json_incref(json_object_get(res->record, "data"));

    err = check_binding(cb, req);
    if (err != NULL) {
        refuse(cb, req, 400, err,
               err == authn_err_no_binding
                   ? "The login-attempt cookie is missing: cookies must be enabled for sign-in."
                   : "This sign-in attempt belongs to another browser; please start again.");
        callback_free(cb);
        return;
    }
    exchange_code(cb, req);
}

/* a query value as the provider form-encoded it ('+' is a space); {NULL, 0} when absent or
 * badly escaped */
static h2o_iovec_t form_value(h2o_mem_pool_t *pool, h2o_iovec_t raw)
{
    h2o_iovec_t copy;
    size_t i;

    if (raw.base == NULL) {
        return raw;
    }
    /* literal '+' first, so that a decoded "%2B" stays a '+' */
    copy = h2o_strdup(pool, raw.base, raw.len);
    for (i = 0; i < copy.len; i++) {
        if (copy.base[i] == '+') {
            copy.base[i] = ' ';
        }
    }
    return cmn_url_decode(pool, copy.base, copy.len);
}

/* ?error=...: take the attempt (it is dead either way) for its target, then show the error */
static void on_error_taken(void *ctx, const cmn_broker_result_t *res)
{
    callback_t *cb = ctx;
    h2o_req_t *req = cb->guard->req;
    h2o_iovec_t query;

    if (req != NULL) {
        if (res->err == NULL) {
            cb->login = json_incref(json_object_get(res->record, "data"));
        }
        query = cmn_url_query_of_path(req->input.path);
        h2o_iovec_t e = form_value(&req->pool, cmn_url_query_get(query, "error"));
        h2o_iovec_t d = form_value(&req->pool, cmn_url_query_get(query, "error_description"));
        provider_refused(cb, req, e.base != NULL ? e.base : "invalid_request", d.base);
    }
    callback_free(cb);
}

static void handle_error_param(callback_t *cb, h2o_req_t *req, h2o_iovec_t state)
{
    if (state.len == CMN_ID_LEN && authn_binding_well_formed(state)) {
        memcpy(cb->state, state.base, CMN_ID_LEN);
        if (cmn_broker_take(cb->app->broker, "login", cb->state, on_error_taken, cb) == 0) {
            return;
        }
    }
    on_error_taken(cb, &(cmn_broker_result_t){.err = cmn_err_not_found});
}

void authn_callback_handle(authn_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t query = cmn_url_query_of_path(req->input.path);
    h2o_iovec_t state = cmn_url_query_get(query, "state");
    h2o_iovec_t code = cmn_url_query_get(query, "code");
    callback_t *cb = calloc(1, sizeof(*cb));

    if (cb == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again.");
        return;
    }
    cb->app = app;
    cb->guard = cmn_req_guard_create(req);

    if (cmn_url_query_get(query, "error").base != NULL) {
        handle_error_param(cb, req, state);
        return;
    }

    /* our states are random ids; anything else cannot name an attempt */
    if (!authn_binding_well_formed(state) || !authn_callback_param_ok(code, AUTHN_CODE_MAX)) {
        refuse(cb, req, 400, authn_err_bad_state, "This sign-in answer is incomplete.");
        callback_free(cb);
        return;
    }
    cb->code = cmn_url_decode(&req->pool, code.base, code.len);
    if (cb->code.base == NULL) {
        refuse(cb, req, 400, authn_err_bad_state, "This sign-in answer is incomplete.");
        callback_free(cb);
        return;
    }
    memcpy(cb->state, state.base, CMN_ID_LEN);

    if (cmn_broker_take(app->broker, "login", cb->state, on_login_taken, cb) != 0) {
        refuse(cb, req, 503, cmn_err_unavailable, "Sign-in is unavailable; please try again.");
        callback_free(cb);
    }
}
