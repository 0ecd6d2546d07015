/* SPDX-License-Identifier: MIT */
/* The sign-in endpoint: checks the signed URL, reuses a live session or starts a login attempt. */
#include "authenticate/login.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "authenticate/handoff.h"
#include "authenticate/page.h"
#include "authenticate/provider.h"
#include "common/broker_client.h"
#include "common/cookie.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/handoff.h"
#include "common/log.h"
#include "common/signed_url.h"

const char authn_err_not_route_host[] = "target host is not a route host";

#define AUTH_PARAMS_MAX 48 /* our 8 parameters plus idp_request_params */
#define SCOPES_MAX_BYTES 2048

static const char *const own_params[] = {
    "response_type", "client_id",      "redirect_uri",          "scope", "state",
    "nonce",         "code_challenge", "code_challenge_method", NULL};

/* one sign-in request while it waits for the databroker or the provider */
typedef struct st_login_t {
    authn_app_t *app;
    cmn_req_guard_t *guard;
    h2o_iovec_t target;  /* pool */
    h2o_iovec_t binding; /* the _csrf value (pool) */
    bool new_binding;
    char state[CMN_ID_LEN + 1];
    char nonce[CMN_ID_LEN + 1];
    char challenge[AUTHN_HASH_B64_LEN + 1];
    char session_id[CMN_SESSION_ID_MAX + 1];
} login_t;

void authn_pkce_verifier(char out[AUTHN_PKCE_VERIFIER_LEN + 1])
{
    uint8_t raw[32];

    cmn_random_bytes(raw, sizeof(raw));
    cmn_base64url_encode(raw, sizeof(raw), out);
}

void authn_pkce_challenge(const char *verifier, char out[AUTHN_HASH_B64_LEN + 1])
{
    authn_binding_hash(verifier, strlen(verifier), out);
}

void authn_binding_hash(const char *value, size_t len, char out[AUTHN_HASH_B64_LEN + 1])
{
    uint8_t digest[32];

    cmn_sha256(value, len, digest);
    cmn_base64url_encode(digest, sizeof(digest), out);
}

bool authn_binding_well_formed(h2o_iovec_t value)
{
    size_t i;

    if (value.base == NULL || value.len != CMN_ID_LEN) {
        return false;
    }
    for (i = 0; i < value.len; i++) {
        char c = value.base[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static bool is_own_param(const char *name)
{
    size_t i;

    for (i = 0; own_params[i] != NULL; i++) {
        if (strcmp(own_params[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* appends "&name=value" with both percent-encoded */
static size_t add_param(h2o_mem_pool_t *pool, h2o_iovec_t *parts, size_t n, const char *name,
                        const char *value)
{
    parts[n++] = h2o_iovec_init(H2O_STRLIT("&"));
    parts[n++] = cmn_url_encode(pool, name, strlen(name));
    parts[n++] = h2o_iovec_init(H2O_STRLIT("="));
    parts[n++] = cmn_url_encode(pool, value, strlen(value));
    return n;
}

static const char *join_scopes(h2o_mem_pool_t *pool, const cmn_strlist_t *scopes)
{
    char *out = h2o_mem_alloc_pool(pool, SCOPES_MAX_BYTES);
    size_t len = 0, i;

    out[0] = '\0';
    for (i = 0; scopes != NULL && i < scopes->len; i++) {
        size_t l = strlen(scopes->items[i]);
        if (len + l + 2 > SCOPES_MAX_BYTES) {
            break;
        }
        if (len > 0) {
            out[len++] = ' ';
        }
        memcpy(out + len, scopes->items[i], l);
        len += l;
        out[len] = '\0';
    }
    return out;
}

h2o_iovec_t authn_authorize_url(h2o_mem_pool_t *pool, const authn_authorize_params_t *p)
{
    h2o_iovec_t *parts = h2o_mem_alloc_pool(pool, sizeof(*parts) * (1 + 4 * AUTH_PARAMS_MAX));
    size_t n = 0, count = 0;
    const char *name;
    json_t *value;
    bool has_query = strchr(p->endpoint, '?') != NULL;

    parts[n++] = h2o_iovec_init(p->endpoint, strlen(p->endpoint));
    n = add_param(pool, parts, n, "response_type", "code");
    if (!has_query) {
        parts[1] = h2o_iovec_init(H2O_STRLIT("?"));
    }
    n = add_param(pool, parts, n, "client_id", p->client_id);
    n = add_param(pool, parts, n, "redirect_uri", p->redirect_uri);
    n = add_param(pool, parts, n, "scope", join_scopes(pool, p->scopes));
    n = add_param(pool, parts, n, "state", p->state);
    n = add_param(pool, parts, n, "nonce", p->nonce);
    n = add_param(pool, parts, n, "code_challenge", p->code_challenge);
    n = add_param(pool, parts, n, "code_challenge_method", "S256");
    count = 8;

    if (json_is_object(p->extra)) {
        json_object_foreach((json_t *)p->extra, name, value)
        {
            if (count >= AUTH_PARAMS_MAX || !json_is_string(value) || is_own_param(name)) {
                continue;
            }
            n = add_param(pool, parts, n, name, json_string_value(value));
            count++;
        }
    }
    return h2o_concat_list(pool, parts, n);
}

int authn_target_parse(h2o_mem_pool_t *pool, const cmn_config_t *config, h2o_iovec_t raw,
                       h2o_iovec_t *target, cmn_url_t *url, const char **err)
{
    h2o_iovec_t decoded;

    if (raw.base == NULL || raw.len == 0) {
        *err = cmn_err_malformed;
        return -1;
    }
    if (raw.len > CMN_HANDOFF_TARGET_MAX) {
        *err = cmn_err_too_large;
        return -1;
    }
    decoded = cmn_url_decode(pool, raw.base, raw.len);
    if (decoded.base == NULL || decoded.len > CMN_HANDOFF_TARGET_MAX) {
        *err = cmn_err_malformed;
        return -1;
    }
    if (cmn_url_parse(decoded.base, decoded.len, url, err) != 0) {
        return -1;
    }
    if (!authn_is_route_target(config, cmn_host_lower(pool, url->host),
                               cmn_url_effective_port(url))) {
        *err = authn_err_not_route_host;
        return -1;
    }
    *target = decoded;
    return 0;
}

int authn_verify_signed_request(authn_app_t *app, h2o_req_t *req, const char **err)
{
    const char *base = app->config->authenticate_service_url.raw;
    h2o_iovec_t url;

    /* authorize signs "<authenticate_service_url as written>/.pomerium/sign_in?<query>"; the
     * path nginx forwards is the browser's raw request path, so the bytes are the same */
    if (req->input.path.len > CMN_SIGNED_URL_MAX) {
        *err = cmn_err_too_large;
        return -1;
    }
    url = h2o_concat(&req->pool, h2o_iovec_init(base, strlen(base)), req->input.path);
    return cmn_signed_url_verify(app->keys.signed_url, url.base, url.len, authn_now(), err);
}

static void login_free(login_t *login)
{
    cmn_req_guard_release(login->guard);
    free(login);
}

static void set_binding_cookie(login_t *login, h2o_req_t *req)
{
    cmn_cookie_attrs_t attrs = {
        .max_age = AUTHN_CSRF_COOKIE_MAX_AGE_S, .secure = 1, .http_only = 1, .same_site = "Lax"};

    if (!login->new_binding) {
        return;
    }
    cmn_add_header(req, "set-cookie",
                   cmn_cookie_build(&req->pool, login->app->cookie_csrf, login->binding, &attrs));
}

static void on_login_stored(void *ctx, const cmn_broker_result_t *res)
{
    login_t *login = ctx;
    h2o_req_t *req = login->guard->req;
    authn_app_t *app = login->app;
    const authn_discovery_t *disc = authn_provider_discovery(app->provider);
    const char *base = app->config->authenticate_service_url.raw;
    authn_authorize_params_t params = {0};

    if (req == NULL) {
        goto Exit;
    }
    if (res->err != NULL || disc == NULL) {
        authn_page_fail(req, 503, res->err != NULL ? res->err : cmn_err_unavailable,
                        "Sign-in is unavailable right now; please try again shortly.");
        goto Exit;
    }

    params.endpoint = disc->authorization_endpoint;
    params.client_id = app->config->idp_client_id;
    params.redirect_uri = h2o_concat(&req->pool, h2o_iovec_init(base, strlen(base)),
                                     h2o_iovec_init(H2O_STRLIT("/oauth2/callback")))
                              .base;
    params.scopes = &app->config->idp_scopes;
    params.state = login->state;
    params.nonce = login->nonce;
    params.code_challenge = login->challenge;
    params.extra = app->config->idp_request_params;

    set_binding_cookie(login, req);
    cmn_send_redirect(req, 302, authn_authorize_url(&req->pool, &params));

Exit:
    login_free(login);
}

/* a new login attempt: login/<state> holds what the callback needs to finish it */
static void start_attempt(login_t *login, h2o_req_t *req)
{
    char verifier[AUTHN_PKCE_VERIFIER_LEN + 1];
    char binding_hash[AUTHN_HASH_B64_LEN + 1];
    json_t *data = NULL;

    cmn_random_id(login->state);
    cmn_random_id(login->nonce);
    authn_pkce_verifier(verifier);
    authn_pkce_challenge(verifier, login->challenge);
    authn_binding_hash(login->binding.base, login->binding.len, binding_hash);

    data = json_pack("{s:s, s:s, s:s%, s:s, s:I}", "nonce", login->nonce, "verifier", verifier,
                     "target", login->target.base, login->target.len, "attempt", binding_hash,
                     "created", (json_int_t)authn_now());
    OPENSSL_cleanse(verifier, sizeof(verifier));
    if (data == NULL || cmn_broker_put(login->app->broker, "login", login->state, data,
                                       AUTHN_LOGIN_TTL_S, on_login_stored, login) != 0) {
        authn_page_fail(req, 503, cmn_err_unavailable,
                        "Sign-in is unavailable right now; please try again shortly.");
        login_free(login);
    }
    json_decref(data);
}

static void on_provider_ready(void *ctx, const char *err)
{
    login_t *login = ctx;
    h2o_req_t *req = login->guard->req;

    if (req == NULL) {
        login_free(login);
        return;
    }
    if (err != NULL || !authn_provider_ready(login->app->provider)) {
        authn_page_fail(req, 503, err != NULL ? err : cmn_err_unavailable,
                        "The identity provider is unavailable; please try again shortly.");
        login_free(login);
        return;
    }
    start_attempt(login, req);
}

static void attempt_when_ready(login_t *login, h2o_req_t *req)
{
    if (authn_provider_ready(login->app->provider)) {
        start_attempt(login, req);
        return;
    }
    if (authn_provider_wait(login->app->provider, on_provider_ready, login) != 0) {
        authn_page_fail(req, 503, "identity provider not ready",
                        "The identity provider is unavailable; please try again shortly.");
        login_free(login);
    }
}

static void on_session_checked(void *ctx, const cmn_broker_result_t *res)
{
    login_t *login = ctx;
    h2o_req_t *req = login->guard->req;
    const json_t *data;
    json_int_t expiry;

    if (req == NULL) {
        login_free(login);
        return;
    }
    if (res->err != NULL && res->err != cmn_err_not_found) {
        authn_page_fail(req, 503, res->err,
                        "Sign-in is unavailable right now; please try again shortly.");
        login_free(login);
        return;
    }

    data = json_object_get(res->record, "data");
    expiry = json_integer_value(json_object_get(data, "expiry"));
    if (res->err == NULL && json_is_object(data) && expiry > (json_int_t)authn_now()) {
        authn_handoff_start(login->app, req, login->session_id, (uint64_t)expiry,
                            login->target.base);
        login_free(login);
        return;
    }
    attempt_when_ready(login, req);
}

/* the binding for this browser: the _csrf cookie when it is ours, else a new one */
static void choose_binding(login_t *login, h2o_req_t *req)
{
    h2o_iovec_t v = cmn_cookie_from_req(req, login->app->cookie_csrf);
    char *fresh;

    if (authn_binding_well_formed(v)) {
        login->binding = h2o_strdup(&req->pool, v.base, v.len);
        return;
    }
    fresh = h2o_mem_alloc_pool(&req->pool, CMN_ID_LEN + 1);
    cmn_random_id(fresh);
    login->binding = h2o_iovec_init(fresh, CMN_ID_LEN);
    login->new_binding = true;
}

/* true when the _authenticate cookie opens; fills login->session_id */
static bool open_session_cookie(login_t *login, h2o_req_t *req)
{
    authn_app_t *app = login->app;
    h2o_iovec_t v = cmn_cookie_from_req(req, app->cookie_authn);
    cmn_session_ticket_t ticket;
    const char *err = NULL;

    if (v.base == NULL) {
        return false;
    }
    if (cmn_cookie_open(app->keys.cookie, app->cookie_authn, app->authn_host, v.base, v.len,
                        authn_now(), &ticket, &err) != 0) {
        cmn_log_debug(cmn_req_id(req), "authenticate cookie refused: %s", err);
        return false;
    }
    memcpy(login->session_id, ticket.session_id, sizeof(login->session_id));
    return true;
}

void authn_login_handle(authn_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t query = cmn_url_query_of_path(req->input.path);
    login_t *login = NULL;
    const char *err = NULL;
    cmn_url_t url;

    if (authn_verify_signed_request(app, req, &err) != 0) {
        authn_page_fail(req, 400, err, "This sign-in link is invalid or has expired.");
        return;
    }

    login = calloc(1, sizeof(*login));
    if (login == NULL) {
        authn_page_fail(req, 503, cmn_err_no_memory, "Please try again shortly.");
        return;
    }
    login->app = app;
    if (authn_target_parse(&req->pool, app->config,
                           cmn_url_query_get(query, "pomerium_redirect_uri"), &login->target, &url,
                           &err) != 0) {
        free(login);
        authn_page_fail(req, 400, err, "The address to return to is not allowed.");
        return;
    }
    login->guard = cmn_req_guard_create(req);
    choose_binding(login, req);

    if (open_session_cookie(login, req) &&
        cmn_broker_get(app->broker, "session", login->session_id, on_session_checked, login) == 0) {
        return;
    }
    attempt_when_ready(login, req);
}
