/* SPDX-License-Identifier: MIT */
/* Route policy: the legacy allow fields evaluated against a request and its session. */
#ifndef AUTHZ_POLICY_H
#define AUTHZ_POLICY_H

#include <stdbool.h>
#include <h2o.h>
#include "common/config.h"
#include "common/session.h"

typedef enum en_authz_verdict_t {
    AUTHZ_VERDICT_DENY = 0,      /* the zero value denies, so a missed assignment fails closed */
    AUTHZ_VERDICT_ALLOW,
    AUTHZ_VERDICT_UNAUTHENTICATED, /* a session is needed and there is none: 401, not 403 */
    AUTHZ_VERDICT_UNAVAILABLE    /* a dependency is down: answer 503, never allow */
} authz_verdict_t;

/* what policy may look at besides the session (all borrowed) */
typedef struct st_authz_policy_input_t {
    h2o_iovec_t method;               /* of the original request */
    h2o_iovec_t path;                 /* decoded, normalised */
    bool has_origin;                  /* Origin header present */
    bool has_preflight_method;        /* Access-Control-Request-Method present */
} authz_policy_input_t;

/** true for a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method */
bool authz_policy_is_preflight(const authz_policy_input_t *in);

/**
 * true when `route` can be decided without a session for this request (public access, or a
 * preflight on a route with cors_allow_preflight): the caller may skip reading the cookie.
 */
bool authz_policy_needs_no_session(const cmn_route_t *route, const authz_policy_input_t *in);

/**
 * Evaluates `route` for the request `in` and the session `session` (NULL when there is none).
 * `*reason` receives a short static string for the log ("allowed-domain",
 * "email-unauthorized", ...). The caller has already checked the session's expiry.
 */
authz_verdict_t authz_policy_evaluate(const cmn_route_t *route, const authz_policy_input_t *in,
                                      const cmn_session_t *session, const char **reason);

#endif
