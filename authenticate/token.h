/* SPDX-License-Identifier: MIT */
/* The provider's token endpoint: client authentication, code exchange, refresh. */
#ifndef AUTHN_TOKEN_H
#define AUTHN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "authenticate/app.h"

#define AUTHN_TOKEN_MAX_BYTES (64 * 1024) /* one access, refresh and ID token each */
#define AUTHN_BASIC_AUTH_MAX 2048

extern const char authn_err_token_response[];
extern const char authn_err_provider_error[];

/* how a token-endpoint call ended */
typedef enum en_authn_token_outcome_t {
    AUTHN_TOKEN_FAILED = 0,   /* transport error, timeout, bad status or malformed body: 502 */
    AUTHN_TOKEN_OK,           /* 2xx with an access token */
    AUTHN_TOKEN_PROVIDER_ERR, /* the provider answered an OAuth error object: 403 */
} authn_token_outcome_t;

typedef struct st_authn_token_result_t {
    authn_token_outcome_t outcome;
    int status;        /* HTTP status, 0 when none */
    const char *err;   /* why, for the log */
    json_t *body;      /* the parsed JSON object (borrowed; valid in the callback) or NULL */
    const char *error; /* the OAuth "error" code (borrowed from body) or NULL */
    const char *error_description;
    const char *access_token, *id_token, *refresh_token; /* borrowed; id/refresh may be NULL */
    int64_t expires_in;                                  /* seconds, or -1 when absent */
} authn_token_result_t;

typedef void (*authn_token_cb)(void *ctx, const authn_token_result_t *res);

/**
 * Escapes one value as application/x-www-form-urlencoded (space as '+', every byte outside
 * ALPHA / DIGIT / "-._~" as %XX). Returns the length written, or -1 when `cap` is too small.
 */
long authn_form_escape(const char *s, char *out, size_t cap);

/**
 * The "Authorization" header value for client_secret_basic: "Basic " + base64(form(id) ":"
 * form(secret)) as RFC 6749 §2.3.1 requires. Returns 0, or -1 when it would not fit.
 */
int authn_client_basic_auth(const char *id, const char *secret, char *out, size_t cap);

/**
 * Classifies a token endpoint answer (pure; for the callback and tests). `res` borrows from
 * the `*body_out` object, which the caller decrefs.
 */
void authn_token_classify(int status, const char *err, const char *body, size_t len,
                          authn_token_result_t *res, json_t **body_out);

/**
 * POSTs `pairs` (NULL-terminated name, value, ...) to the token endpoint with the configured
 * client authentication. `cb` is called once, later, on the loop. Returns 0 or -1 (then cb is
 * not called).
 */
int authn_token_request(authn_app_t *app, const char *const *pairs, authn_token_cb cb, void *ctx);

#endif
