/* SPDX-License-Identifier: MIT */
/* The handoff from authenticate to the host that sets the session cookie (ARCHITECTURE step 5). */
#ifndef AUTHN_HANDOFF_H
#define AUTHN_HANDOFF_H

#include <stdint.h>
#include <h2o.h>
#include "authenticate/app.h"
#include "common/config.h"
#include "common/url.h"

/**
 * Where the handoff goes for target `t`: with cookie_domain covering both the forward-auth
 * host and T's host, audience = FA host and `*base` = forward_auth_url; otherwise audience =
 * T's host and `*base` = T's scheme and authority. Both in the pool, audience lower-case.
 */
void authn_handoff_route(h2o_mem_pool_t *pool, const cmn_config_t *config, const cmn_url_t *t,
                         h2o_iovec_t *audience, h2o_iovec_t *base);

/**
 * Stores handoff/<id>, mints the token and answers the request with a 302 to
 * <base>/.pomerium/callback?pomerium_handoff=TOKEN; or an error page (503) on failure.
 * Headers already added to the response (Set-Cookie) stay.
 */
void authn_handoff_start(authn_app_t *app, h2o_req_t *req, const char *session_id,
                         uint64_t session_expiry, const char *target);

#endif
