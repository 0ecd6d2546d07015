/* SPDX-License-Identifier: MIT */
/* GET /oauth2/callback: the provider's answer to an authorization request. */
#ifndef AUTHN_CALLBACK_H
#define AUTHN_CALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <h2o.h>
#include "authenticate/app.h"

#define AUTHN_CODE_MAX 4096 /* authorization code length ceiling */

extern const char authn_err_bad_state[];
extern const char authn_err_unknown_state[];
extern const char authn_err_binding[];
extern const char authn_err_no_binding[];
extern const char authn_err_no_id_token[];

/** true when a raw query value is present, at most `max` bytes, and printable ASCII */
bool authn_callback_param_ok(h2o_iovec_t v, size_t max);

/** the handler: never answers 500 (400, 403, 502 or 503 with a short page) */
void authn_callback_handle(authn_app_t *app, h2o_req_t *req);

#endif
