/* SPDX-License-Identifier: MIT */
/* trusted_proxies: only these peers may tell us the original URL, method and client address. */
#ifndef AUTHZ_PROXY_H
#define AUTHZ_PROXY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <h2o.h>
#include "common/config.h"

#define AUTHZ_CIDRS_MAX 1024
#define AUTHZ_FORWARDED_HOPS_MAX 32 /* X-Forwarded-For entries looked at, from the right */
#define AUTHZ_ADDR_TEXT_MAX 64      /* characters in one address of those headers */

typedef struct st_authz_cidrs_t authz_cidrs_t;

/**
 * Parses a CIDR list ("10.0.0.0/8", "::1/128", or a bare address). Returns NULL and writes the
 * offending entry into `errbuf` when one does not parse.
 */
authz_cidrs_t *authz_cidrs_parse(const cmn_strlist_t *list, char *errbuf, size_t errlen);
void authz_cidrs_destroy(authz_cidrs_t *cidrs);

/** true when `sa` lies in one of the ranges (IPv4-mapped IPv6 counts as IPv4) */
bool authz_cidrs_contain(const authz_cidrs_t *cidrs, const struct sockaddr *sa);

/**
 * The client address for `source_ip`. It is the direct peer `peer`, unless the peer lies in
 * `trusted`: then the rightmost X-Forwarded-For hop (`xff`, comma-separated) that is not a
 * trusted proxy (all of them trusted: the leftmost), else X-Real-IP (`real_ip`), else the peer.
 * IPv4-mapped IPv6 becomes IPv4; "1.2.3.4:80" and "[::1]:80" lose the port. Returns false (and
 * no address) when a hop that must be read does not parse, or the peer is no IP socket.
 */
bool authz_client_addr(const authz_cidrs_t *trusted, const struct sockaddr *peer, h2o_iovec_t xff,
                       h2o_iovec_t real_ip, struct sockaddr_storage *out);

#endif
