/* SPDX-License-Identifier: MIT */
/* Calls to the provider's token endpoint and the classification of what comes back. */
#include "authenticate/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "authenticate/provider.h"
#include "common/err.h"
#include "common/log.h"

const char authn_err_token_response[] = "token endpoint answered without a usable token";
const char authn_err_provider_error[] = "token endpoint answered an OAuth error";

#define FORM_MAX (32 * 1024)
#define FORM_PAIRS_MAX 16

typedef struct st_token_call_t {
    authn_token_cb cb;
    void *ctx;
} token_call_t;

long authn_form_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == ' ') {
            if (n + 1 >= cap) {
                return -1;
            }
            out[n++] = c == ' ' ? '+' : (char)c;
        } else {
            if (n + 3 >= cap) {
                return -1;
            }
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    if (n >= cap) {
        return -1;
    }
    out[n] = '\0';
    return (long)n;
}

int authn_client_basic_auth(const char *id, const char *secret, char *out, size_t cap)
{
    char creds[AUTHN_BASIC_AUTH_MAX];
    long idlen, seclen;
    size_t len;
    int ret = -1;

    idlen = authn_form_escape(id, creds, sizeof(creds));
    if (idlen < 0 || (size_t)idlen + 2 >= sizeof(creds)) {
        goto Exit;
    }
    creds[idlen] = ':';
    seclen = authn_form_escape(secret, creds + idlen + 1, sizeof(creds) - (size_t)idlen - 1);
    if (seclen < 0) {
        goto Exit;
    }
    len = (size_t)idlen + 1 + (size_t)seclen;

    /* standard base64 with padding (RFC 7617), which our helpers do not emit */
    if (6 + 4 * ((len + 2) / 3) + 1 > cap) {
        goto Exit;
    }
    memcpy(out, "Basic ", 6);
    if (EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)creds, (int)len) <= 0) {
        goto Exit;
    }
    ret = 0;

Exit:
    OPENSSL_cleanse(creds, sizeof(creds));
    return ret;
}

static const char *string_member(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));

    return s != NULL && s[0] != '\0' ? s : NULL;
}

void authn_token_classify(int status, const char *err, const char *body, size_t len,
                          authn_token_result_t *res, json_t **body_out)
{
    json_t *doc = NULL;
    const json_t *exp;

    memset(res, 0, sizeof(*res));
    res->status = status;
    res->expires_in = -1;
    *body_out = NULL;
    if (err != NULL) {
        res->err = err;
        return;
    }
    if (len > AUTHN_TOKEN_MAX_BYTES) {
        res->err = cmn_err_too_large;
        return;
    }
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        res->err = status >= 200 && status < 300 ? cmn_err_bad_json : authn_err_provider_status;
        return;
    }
    *body_out = doc;
    res->body = doc;

    /* RFC 6749 §5.2: an error object (normally with 400 or 401) */
    res->error = string_member(doc, "error");
    if (res->error != NULL) {
        res->error_description = string_member(doc, "error_description");
        res->outcome = AUTHN_TOKEN_PROVIDER_ERR;
        res->err = authn_err_provider_error;
        return;
    }
    if (status < 200 || status >= 300) {
        res->err = authn_err_provider_status;
        return;
    }

    res->access_token = string_member(doc, "access_token");
    res->id_token = string_member(doc, "id_token");
    res->refresh_token = string_member(doc, "refresh_token");
    exp = json_object_get(doc, "expires_in");
    if (json_is_integer(exp) && json_integer_value(exp) >= 0) {
        res->expires_in = json_integer_value(exp);
    } else if (json_is_string(exp)) {
        /* some providers send it as a string */
        char *end = NULL;
        long long v = strtoll(json_string_value(exp), &end, 10);
        if (end != NULL && *end == '\0' && v >= 0) {
            res->expires_in = v;
        }
    }
    if (res->access_token == NULL) {
        res->err = authn_err_token_response;
        return;
    }
    res->outcome = AUTHN_TOKEN_OK;
}

static void on_token_response(void *ctx, const cmn_http_response_t *http)
{
    token_call_t *call = ctx;
    authn_token_result_t res;
    json_t *body = NULL;

    authn_token_classify(http->status, http->err, http->body.base, http->body.len, &res, &body);
    call->cb(call->ctx, &res);
    json_decref(body);
    free(call);
}

/* appends "&name=value" (without '&' first) to buf; -1 when over FORM_MAX */
static int form_append(char *buf, size_t *len, const char *name, const char *value)
{
    long n;

    if (*len > 0) {
        if (*len + 1 >= FORM_MAX) {
            return -1;
        }
        buf[(*len)++] = '&';
    }
    n = authn_form_escape(name, buf + *len, FORM_MAX - *len);
    if (n < 0 || *len + (size_t)n + 1 >= FORM_MAX) {
        return -1;
    }
    *len += (size_t)n;
    buf[(*len)++] = '=';
    n = authn_form_escape(value, buf + *len, FORM_MAX - *len);
    if (n < 0) {
        return -1;
    }
    *len += (size_t)n;
    return 0;
}

int authn_token_request(authn_app_t *app, const char *const *pairs, authn_token_cb cb, void *ctx)
{
    const authn_discovery_t *disc = authn_provider_discovery(app->provider);
    const cmn_config_t *config = app->config;
    char *form = NULL;
    char auth[AUTHN_BASIC_AUTH_MAX + 32];
    char auth_header[sizeof(auth) + 32];
    size_t len = 0, i;
    token_call_t *call = NULL;
    cmn_http_request_t req = {.method = "POST"};
    int ret = -1;

    if (disc == NULL) {
        goto Exit;
    }
    form = malloc(FORM_MAX);
    if (form == NULL) {
        goto Exit;
    }
    for (i = 0; pairs[i] != NULL && pairs[i + 1] != NULL && i < 2 * FORM_PAIRS_MAX; i += 2) {
        if (form_append(form, &len, pairs[i], pairs[i + 1]) != 0) {
            goto Exit;
        }
    }

    req.url = disc->token_endpoint;
    req.headers[0] = "Content-Type: application/x-www-form-urlencoded";
    req.headers[1] = "Accept: application/json";
    if (disc->client_secret_post) {
        if (form_append(form, &len, "client_id", config->idp_client_id) != 0 ||
            form_append(form, &len, "client_secret", config->idp_client_secret) != 0) {
            goto Exit;
        }
    } else {
        if (authn_client_basic_auth(config->idp_client_id, config->idp_client_secret, auth,
                                    sizeof(auth)) != 0) {
            goto Exit;
        }
        snprintf(auth_header, sizeof(auth_header), "Authorization: %s", auth);
        req.headers[2] = auth_header;
    }
    req.body = h2o_iovec_init(form, len);

    call = malloc(sizeof(*call));
    if (call == NULL) {
        goto Exit;
    }
    call->cb = cb;
    call->ctx = ctx;
    if (cmn_http_client_send(app->http, &req, on_token_response, call) != 0) {
        goto Exit;
    }
    call = NULL;
    ret = 0;

Exit:
    free(call);
    if (form != NULL) {
        OPENSSL_cleanse(form, FORM_MAX);
        free(form);
    }
    OPENSSL_cleanse(auth, sizeof(auth));
    OPENSSL_cleanse(auth_header, sizeof(auth_header));
    return ret;
}
