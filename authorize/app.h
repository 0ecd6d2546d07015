/* SPDX-License-Identifier: MIT */
/* The authorize daemon's process-wide state, per-thread state and shared response helpers. */
#ifndef AUTHZ_APP_H
#define AUTHZ_APP_H

#include <stdbool.h>
#include <h2o.h>
#include "common/broker_client.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/jose.h"
#include "authorize/assertion.h"
#include "authorize/proxy.h"
#include "authorize/reload.h"
#include "authorize/route.h"
#include "authorize/session_cache.h"
#include "authorize/session_fetch.h"
#include "authorize/target.h"
#include "authorize/ticket_cache.h"

typedef struct st_authz_app_t {
    const cmn_config_t *config;
    cmn_keys_t keys;
    cmn_signer_t *signer;
    authz_session_cache_t *sessions;
    authz_cidrs_t *trusted_proxies;
    h2o_iovec_t fa_host; /* forward_auth_url's host, lower-case; {NULL, 0} without one */
    char *jwks_json;     /* the signer's public JWKS, built once */
} authz_app_t;

typedef struct st_authz_thread_t {
    cmn_broker_client_t *broker; /* NULL when it could not be created: requests needing it 503 */
    authz_assertion_cache_t *assertions;
    authz_ticket_cache_t *tickets; /* NULL when it could not be allocated: every cookie opened */
    authz_session_fetcher_t *fetcher; /* cold session reads over `broker`; NULL without it */
} authz_thread_t;

/* set once by main before the worker threads start; read-only afterwards */
extern authz_app_t *authz_app;

/** per-thread init for cmn_server_t.on_thread_init: a broker client for this loop */
void authz_thread_init(h2o_context_t *ctx, unsigned thread_index, void *arg);
/** this worker thread's state (never NULL after authz_thread_init) */
authz_thread_t *authz_thread(void);

/** the request handler for every host and path */
int authz_handle(h2o_handler_t *self, h2o_req_t *req);

/* shared by verify.c, callback.c and fa.c */

/** a request header when the peer is a trusted proxy, else {NULL, 0} */
h2o_iovec_t authz_proxy_header(h2o_req_t *req, const char *name);

/** true for a browser: no X-Requested-With, and Accept is absent or names text/html */
bool authz_is_browser(h2o_req_t *req);

/** the cookie scope for a host: cookie_domain when the host lies inside it, else the host */
const char *authz_cookie_scope(h2o_mem_pool_t *pool, h2o_iovec_t host);

/** `<authenticate_service_url>/.pomerium/sign_in?pomerium_redirect_uri=<T>` signed, in pool */
h2o_iovec_t authz_signin_url(h2o_req_t *req, h2o_iovec_t target);

/** where a 401 points: `<forward_auth_url>/?uri=<T>`, else the signed sign-in URL */
h2o_iovec_t authz_unauthenticated_location(h2o_req_t *req, h2o_iovec_t target);

/** adds a Set-Cookie for the session cookie (`max_age` < 0 deletes it) */
void authz_set_cookie(h2o_req_t *req, h2o_iovec_t value, const char *domain, int64_t max_age);

/**
 * Answers 200, 400, 401 or 403 with a short text body; any other status becomes 503, so no
 * handler can answer nginx's auth_request with a status it turns into a 500 (a 404) or follows
 * (a 3xx)
 */
void authz_send_status(h2o_req_t *req, int status);

/**
 * true when (host, port) is a route target of the table in force (cmn_route_target_allowed):
 * the one check before authorize sends a browser to a URL it was given
 */
bool authz_is_route_target(h2o_iovec_t host, uint16_t port);

/**
 * true when `location` may go into a Location header as it is: not empty, and no byte below
 * 0x21 and no 0x7f (no header splitting, no whitespace a browser would strip)
 */
bool authz_location_is_safe(h2o_iovec_t location);

/** `status` (3xx) to `location` when authz_location_is_safe, else a logged 400 */
void authz_redirect(h2o_req_t *req, int status, h2o_iovec_t location);

#endif
