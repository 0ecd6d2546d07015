/* SPDX-License-Identifier: MIT */
/* ID token verification with one JWKS refetch, then the userinfo call and the claims merge. */
#include "authenticate/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "authenticate/provider.h"
#include "common/err.h"
#include "common/jose.h"
#include "common/log.h"

const char authn_err_userinfo_sub[] = "userinfo subject differs from the ID token's";
const char authn_err_userinfo[] = "userinfo answer is not a JSON object";

typedef struct st_identity_t {
    authn_app_t *app;
    authn_identity_cb cb;
    void *ctx;
    char *id_token, *nonce, *access_token, *expect_sub;
    json_t *claims;
    int refetched;
} identity_t;

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* calls back and frees; on success hands the claims over */
static void finish(identity_t *id, int status, const char *why)
{
    json_t *claims = status == 0 ? id->claims : NULL;

    if (status != 0) {
        json_decref(id->claims);
    }
    id->cb(id->ctx, status, why, claims);
    free_secret(id->id_token);
    free_secret(id->access_token);
    free(id->nonce);
    free(id->expect_sub);
    free(id);
}

int authn_identity_merge_userinfo(json_t *claims, const json_t *userinfo, const char **err)
{
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *usub = json_string_value(json_object_get(userinfo, "sub"));

    if (!json_is_object(userinfo)) {
        *err = authn_err_userinfo;
        return -1;
    }
    if (sub == NULL || usub == NULL || strcmp(sub, usub) != 0) {
        *err = authn_err_userinfo_sub;
        return -1;
    }
    if (json_object_update(claims, (json_t *)userinfo) != 0) {
        *err = cmn_err_no_memory;
        return -1;
    }
    return 0;
}

static void on_userinfo(void *ctx, const cmn_http_response_t *res)
{
    identity_t *id = ctx;
    json_t *doc = NULL;
    const char *err = res->err;

    if (err == NULL && res->status != 200) {
        err = authn_err_provider_status;
    }
    if (err == NULL && res->body.len > AUTHN_USERINFO_MAX_BYTES) {
        err = cmn_err_too_large;
    }
    if (err == NULL) {
        doc = json_loadb(res->body.base, res->body.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(doc)) {
            err = authn_err_userinfo;
        }
    }
    if (err != NULL) {
        json_decref(doc);
        finish(id, 502, err);
        return;
    }

    if (authn_identity_merge_userinfo(id->claims, doc, &err) != 0) {
        json_decref(doc);
        finish(id, err == authn_err_userinfo_sub ? 403 : 502, err);
        return;
    }
    json_decref(doc);
    finish(id, 0, NULL);
}

static void fetch_userinfo(identity_t *id)
{
    const authn_discovery_t *disc = authn_provider_discovery(id->app->provider);
    cmn_http_request_t req = {.method = "GET"};
    char *bearer = NULL;

    if (disc == NULL || disc->userinfo_endpoint == NULL || id->access_token == NULL) {
        finish(id, 0, NULL);
        return;
    }
    if (asprintf(&bearer, "Authorization: Bearer %s", id->access_token) < 0) {
        finish(id, 502, cmn_err_no_memory);
        return;
    }
    req.url = disc->userinfo_endpoint;
    req.headers[0] = "Accept: application/json";
    req.headers[1] = bearer;
    if (cmn_http_client_send(id->app->http, &req, on_userinfo, id) != 0) {
        free_secret(bearer);
        finish(id, 502, cmn_err_unavailable);
        return;
    }
    free_secret(bearer);
}

static const char *check_subject(identity_t *id)
{
    const char *sub = json_string_value(json_object_get(id->claims, "sub"));

    if (sub == NULL || sub[0] == '\0') {
        return cmn_err_jwt_missing_claim;
    }
    if (id->expect_sub != NULL && strcmp(sub, id->expect_sub) != 0) {
        return authn_err_userinfo_sub;
    }
    return NULL;
}

static void on_refetched(void *ctx, const char *err);

/* verifies the ID token; on an unknown kid asks for one refetch and comes back here */
static void verify_id_token(identity_t *id)
{
    const authn_discovery_t *disc = authn_provider_discovery(id->app->provider);
    const char *err = NULL;
    cmn_jwt_expect_t expect = {0};

    if (disc == NULL) {
        finish(id, 502, cmn_err_unavailable);
        return;
    }
    expect.issuer = disc->issuer;
    expect.audience = id->app->config->idp_client_id;
    expect.nonce = id->nonce;
    expect.allowed_algs = (const char *const *)disc->algs;
    expect.now = authn_now();

    if (cmn_jwt_verify(id->id_token, strlen(id->id_token), authn_provider_jwks(id->app->provider),
                       &expect, &id->claims, &err) != 0) {
        id->claims = NULL;
        if (err == cmn_err_jwt_unknown_kid && !id->refetched &&
            authn_provider_refetch_jwks(id->app->provider, on_refetched, id) == 0) {
            id->refetched = 1;
            return;
        }
        finish(id, 403, err != NULL ? err : cmn_err_jwt_malformed);
        return;
    }

    err = check_subject(id);
    if (err != NULL) {
        finish(id, 403, err);
        return;
    }
    fetch_userinfo(id);
}

static void on_refetched(void *ctx, const char *err)
{
    identity_t *id = ctx;

    /* a failed refetch keeps the old keys: verifying again gives the precise error */
    (void)err;
    verify_id_token(id);
}

void authn_identity_resolve(authn_app_t *app, const authn_identity_req_t *in, authn_identity_cb cb,
                            void *ctx)
{
    identity_t *id = calloc(1, sizeof(*id));

    if (id == NULL) {
        cb(ctx, 502, cmn_err_no_memory, NULL);
        return;
    }
    id->app = app;
    id->cb = cb;
    id->ctx = ctx;
    id->id_token = dup_or_null(in->id_token);
    id->nonce = dup_or_null(in->nonce);
    id->access_token = dup_or_null(in->access_token);
    id->expect_sub = dup_or_null(in->expect_sub);

    if (id->id_token != NULL) {
        verify_id_token(id);
        return;
    }
    id->claims = in->base_claims != NULL ? json_deep_copy(in->base_claims) : json_object();
    if (id->claims == NULL || check_subject(id) != NULL) {
        finish(id, 403, cmn_err_jwt_missing_claim);
        return;
    }
    fetch_userinfo(id);
}
