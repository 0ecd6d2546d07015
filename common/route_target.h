/* SPDX-License-Identifier: MIT */
/* The one rule for "may the browser be sent to this (host, port)": a route's target. */
#ifndef CMN_ROUTE_TARGET_H
#define CMN_ROUTE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "common/config.h"

/**
 * true when `host` (`len` bytes, any case, one trailing dot ignored, no port) matches a route's
 * `from` host `pattern` (lower-case, as the config holds it). Without a `*` that is equality
 * ignoring case. A `*` stands for any run of characters, dots included (Pomerium's
 * WildcardToRegex), so `*.example.com` admits `a.example.com` and `a.b.example.com` but never
 * `example.com` or `evilexample.com`: the literal ".example.com" puts the match on a dot
 * boundary. No allocation.
 */
bool cmn_route_host_matches(const char *pattern, const char *host, size_t len);

/**
 * The port a route's `from` admits: 0 for any port (none written, or the scheme's default
 * port: policy-cases.md §2.1), else exactly that one.
 */
uint16_t cmn_route_port_rule(const cmn_config_url_t *from);

/**
 * true when (host, port) is where one of `config`'s routes is reached: `host` matches the
 * route's host (exact or wildcard, cmn_route_host_matches) and `port` (the effective port of
 * the URL, cmn_url_effective_port) is admitted by cmn_route_port_rule. The check every return
 * target, sign-in target, handoff target and sign-out target passes before the browser is sent
 * there. Linear in the number of routes; no allocation; `config` is borrowed.
 */
bool cmn_route_target_allowed(const cmn_config_t *config, h2o_iovec_t host, uint16_t port);

#endif
