/* SPDX-License-Identifier: MIT */
/* trusted_proxies: only these peers may tell us the original URL, method and client address. */
#ifndef AUTHZ_PROXY_H
#define AUTHZ_PROXY_H

#include <stdbool.h>
#include <sys/socket.h>
#include "common/config.h"

#define AUTHZ_CIDRS_MAX 1024

typedef struct st_authz_cidrs_t authz_cidrs_t;

/**
 * Parses a CIDR list ("10.0.0.0/8", "::1/128", or a bare address). Returns NULL and writes the
 * offending entry into `errbuf` when one does not parse.
 */
authz_cidrs_t *authz_cidrs_parse(const cmn_strlist_t *list, char *errbuf, size_t errlen);
void authz_cidrs_destroy(authz_cidrs_t *cidrs);

/** true when `sa` lies in one of the ranges (IPv4-mapped IPv6 counts as IPv4) */
bool authz_cidrs_contain(const authz_cidrs_t *cidrs, const struct sockaddr *sa);

#endif
