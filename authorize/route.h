/* SPDX-License-Identifier: MIT */
/* The route table: config routes compiled once, matched by host, port and decoded path. */
#ifndef AUTHZ_ROUTE_H
#define AUTHZ_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "common/config.h"

#define AUTHZ_ROUTE_ERR_MAX 512

typedef struct st_authz_routes_t authz_routes_t;

/**
 * Compiles the routes of `config` (borrowed: must outlive the table). Regexes are anchored and
 * compiled with REG_EXTENDED|REG_NOSUB. Returns NULL and writes a message naming the route's
 * line into `errbuf` when a regex does not compile.
 */
authz_routes_t *authz_routes_compile(const cmn_config_t *config, char *errbuf, size_t errlen);
void authz_routes_destroy(authz_routes_t *routes);

/**
 * The first route, in config order, whose host equals `host` (lower-case, no port), whose port
 * rule admits `port` (the effective port of T) and whose prefix, path or regex matches `path`
 * (decoded and normalised, NUL-terminated). NULL when none does. Thread-safe, no allocation.
 */
const cmn_route_t *authz_routes_match(const authz_routes_t *routes, h2o_iovec_t host,
                                      uint16_t port, const char *path);

/** true when `host` (lower-case, no port) is the host of at least one route */
bool authz_routes_is_route_host(const authz_routes_t *routes, h2o_iovec_t host);

#endif
