/* SPDX-License-Identifier: MIT */
/* Route policy: a route's legacy fields and PPL compiled once, evaluated per request. */
#ifndef AUTHZ_POLICY_H
#define AUTHZ_POLICY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <h2o.h>
#include "common/config.h"
#include "common/session.h"

typedef enum en_authz_verdict_t {
    AUTHZ_VERDICT_DENY = 0,      /* the zero value denies, so a missed assignment fails closed */
    AUTHZ_VERDICT_ALLOW,
    AUTHZ_VERDICT_UNAUTHENTICATED, /* a session is needed and there is none: 401, not 403 */
    AUTHZ_VERDICT_UNAVAILABLE    /* a dependency is down: answer 503, never allow */
} authz_verdict_t;

/* a route's compiled policy (legacy fields OR-ed with its `policy` PPL) */
typedef struct st_authz_policy_t authz_policy_t;

/* what criteria may look at besides the session (all borrowed) */
typedef struct st_authz_policy_input_t {
    h2o_iovec_t method;               /* of the original request */
    h2o_iovec_t path;                 /* decoded, normalised, without the query */
    bool has_origin;                  /* Origin header present and non-empty */
    bool has_preflight_method;        /* Access-Control-Request-Method present and non-empty */
    bool has_client_ip;               /* false: every source_ip criterion fails */
    struct sockaddr_storage client_ip; /* AF_INET or AF_INET6, from proxy.c */
    time_t now;                       /* for date, day_of_week, time_of_day */
} authz_policy_input_t;

#define AUTHZ_MAX_REASONS 8

typedef struct st_authz_decision_t {
    authz_verdict_t verdict;
    const char *reasons[AUTHZ_MAX_REASONS]; /* static strings ("email-ok", "reject", ...) */
    size_t num_reasons;
} authz_decision_t;

/**
 * Compiles `route`'s legacy fields and its `policy` (JSON) into one policy. Appends every
 * problem to `errors` as "[<file>:<line>] routes[<i>].<field>: <reason>" (caller frees the
 * items and the array, as cmn_config_diag_clear does) and returns NULL when there is at least
 * one. The route is not borrowed: the policy owns copies of everything it needs.
 */
authz_policy_t *authz_policy_compile(const cmn_route_t *route, const char *file,
                                     cmn_strlist_t *errors);
void authz_policy_destroy(authz_policy_t *policy);

/**
 * Evaluates `policy` for the request `in` and `session` (NULL when there is none, or it has
 * expired). Thread-safe, never allocates. Outcome (policy-cases.md §2.6): "user-unauthenticated"
 * in either the allow or the deny result gives UNAUTHENTICATED; else a deny that holds gives
 * DENY with the deny reasons; else an allow that holds gives ALLOW with its reasons; else DENY
 * with the allow reasons. Reasons beyond AUTHZ_MAX_REASONS are dropped.
 */
void authz_policy_evaluate(const authz_policy_t *policy, const authz_policy_input_t *in,
                           const cmn_session_t *session, authz_decision_t *out);

/**
 * false when no criterion of `policy` looks at the session: evaluating with a NULL session then
 * gives the final answer and verify can skip the session lookup. (More generally, for any
 * policy, a verdict other than UNAUTHENTICATED obtained with a NULL session is the verdict
 * every session would get.)
 */
bool authz_policy_needs_session(const authz_policy_t *policy);

/** appends "[<file>:<line>] <name>: <reason>" to `errors` (the reason is printf-formatted) */
void authz_policy_error_add(cmn_strlist_t *errors, const char *file, unsigned line,
                            const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** true for a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method */
bool authz_policy_is_preflight(const authz_policy_input_t *in);

#endif
