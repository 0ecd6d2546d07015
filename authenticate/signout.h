/* SPDX-License-Identifier: MIT */
/* /.pomerium/sign_out (signed GET, confirmation page, POST) and /.pomerium/signed_out. */
#ifndef AUTHN_SIGNOUT_H
#define AUTHN_SIGNOUT_H

#include <h2o.h>
#include "authenticate/app.h"
#include "common/crypto.h"

#define AUTHN_SIGNOUT_BODY_MAX 4096
#define AUTHN_SIGNOUT_CSRF_LEN 43 /* base64url of an HMAC-SHA256 */

/**
 * The confirmation form's CSRF token: base64url(HMAC-SHA256(key, "sign_out|" + cookie value)),
 * so only a page that saw this browser's cookie can post the form.
 */
int authn_signout_csrf(const uint8_t key[CMN_KEY_LEN], h2o_iovec_t cookie,
                       char out[AUTHN_SIGNOUT_CSRF_LEN + 1]);

/**
 * The provider's end-session URL (OpenID Connect RP-Initiated Logout 1.0 §2) in the pool;
 * `id_token_hint` may be NULL.
 */
h2o_iovec_t authn_end_session_url(h2o_mem_pool_t *pool, const char *endpoint,
                                  const char *id_token_hint, const char *post_logout_uri,
                                  const char *client_id);

void authn_signout_handle(authn_app_t *app, h2o_req_t *req);
void authn_signed_out_handle(authn_app_t *app, h2o_req_t *req);

#endif
