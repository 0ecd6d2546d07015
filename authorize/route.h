/* SPDX-License-Identifier: MIT */
/* The route table: config routes and their policies compiled once, matched by host, port, path. */
#ifndef AUTHZ_ROUTE_H
#define AUTHZ_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "common/config.h"
#include "authorize/policy.h"

#define AUTHZ_ROUTE_REGEX_MAX 4096 /* characters in a route's regex */

/* one compiled route */
typedef struct st_authz_route_t {
    const cmn_route_t *def;  /* the config's route (borrowed from the table's config) */
    authz_policy_t *policy;  /* its legacy fields and PPL, compiled */
} authz_route_t;

typedef struct st_authz_routes_t authz_routes_t;

/**
 * Compiles the routes of `config` (borrowed: it must outlive the table) and their policies.
 * Appends every problem to `errors` ("[<file>:<line>] routes[<i>].<field>: <reason>"; caller
 * frees the items and the array) and returns NULL when there is at least one. Regexes are
 * anchored (^...$) POSIX EREs; `\d`, `\D` and `(?:` are accepted as in RE2.
 */
authz_routes_t *authz_routes_compile(const cmn_config_t *config, cmn_strlist_t *errors);
void authz_routes_destroy(authz_routes_t *routes);

/**
 * The route for a request, as Envoy picks it for Pomerium (policy-cases.md §2.1): the exact
 * host `host` (any case, no port) when one of its routes admits `port`, and then the first of
 * those routes in config order whose path specifier (regex > path > prefix) matches `path`
 * (decoded, normalised, NUL-terminated, no query), with no fall-back to wildcard routes;
 * otherwise the first wildcard route in config order that matches host, port and path. NULL
 * when none does. Exact hosts are found by hash. Thread-safe, no allocation.
 */
const authz_route_t *authz_routes_match(const authz_routes_t *routes, h2o_iovec_t host,
                                        uint16_t port, const char *path);

/**
 * true when `host` (any case, no port) is the host of a route or matches a wildcard route's
 * host (`*.example.com` admits `a.example.com`, never `example.com` or `evilexample.com`)
 */
bool authz_routes_is_route_host(const authz_routes_t *routes, h2o_iovec_t host);

/** the number of compiled routes */
size_t authz_routes_count(const authz_routes_t *routes);

#endif
