/* SPDX-License-Identifier: MIT */
/* GET /.pomerium/sign_in: the signed entry point that starts an OpenID Connect login. */
#ifndef AUTHN_LOGIN_H
#define AUTHN_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <h2o.h>
#include "authenticate/app.h"
#include "common/config.h"
#include "common/url.h"

#define AUTHN_PKCE_VERIFIER_LEN 43 /* base64url of 32 random bytes (RFC 7636 §4.1) */
#define AUTHN_HASH_B64_LEN 43      /* base64url of a SHA-256 */

extern const char authn_err_not_route_host[];

/** a fresh PKCE code verifier */
void authn_pkce_verifier(char out[AUTHN_PKCE_VERIFIER_LEN + 1]);

/** the S256 code challenge of `verifier`: base64url(SHA-256(verifier)) (RFC 7636 §4.2) */
void authn_pkce_challenge(const char *verifier, char out[AUTHN_HASH_B64_LEN + 1]);

/** base64url(SHA-256(value)): what the login record keeps of the browser binding */
void authn_binding_hash(const char *value, size_t len, char out[AUTHN_HASH_B64_LEN + 1]);

/** true when a _csrf cookie value is one we could have minted (a random id) */
bool authn_binding_well_formed(h2o_iovec_t value);

typedef struct st_authn_authorize_params_t {
    const char *endpoint; /* authorization_endpoint, may already carry a query */
    const char *client_id;
    const char *redirect_uri;
    const cmn_strlist_t *scopes;
    const char *state;
    const char *nonce;
    const char *code_challenge;
    const json_t *extra; /* idp_request_params: object of strings, or NULL */
} authn_authorize_params_t;

/** the authorization request URL (OpenID Connect Core 1.0 §3.1.2.1), in the pool */
h2o_iovec_t authn_authorize_url(h2o_mem_pool_t *pool, const authn_authorize_params_t *p);

/**
 * Decodes a raw `pomerium_redirect_uri` value and checks that it is an absolute URL whose
 * host is a route host. On success `*target` is the decoded URL (pool, NUL-terminated) and
 * `*url` its parts. Returns 0, or -1 with `*err` set.
 */
int authn_target_parse(h2o_mem_pool_t *pool, const cmn_config_t *config, h2o_iovec_t raw,
                       h2o_iovec_t *target, cmn_url_t *url, const char **err);

/**
 * Verifies a signed URL on this host: the canonical URL is the authenticate_service_url as
 * written plus the raw request path with its query, exactly the string authorize signs.
 */
int authn_verify_signed_request(authn_app_t *app, h2o_req_t *req, const char **err);

/** the handler */
void authn_login_handle(authn_app_t *app, h2o_req_t *req);

#endif
