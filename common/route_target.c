/* SPDX-License-Identifier: MIT */
/* Route-target checks shared by authorize and authenticate: host patterns and port rules. */
#include "common/route_target.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool cmn_route_host_matches(const char *pattern, const char *host, size_t len)
{
    const char *star = NULL;
    size_t i = 0, resume = 0;

    if (pattern == NULL || host == NULL || len == 0) {
        return false;
    }
    if (host[len - 1] == '.') {
        len--;
    }

    /* a glob with backtracking to the last '*': linear enough for host-sized input */
    while (i < len) {
        if (*pattern == '*') {
            star = pattern++;
            resume = i;
        } else if (*pattern != '\0' && lower(host[i]) == *pattern) {
            pattern++;
            i++;
        } else if (star != NULL) {
            pattern = star + 1;
            i = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == '\0';
}

uint16_t cmn_route_port_rule(const cmn_config_url_t *from)
{
    uint16_t default_port = from->scheme != NULL && strcmp(from->scheme, "http") == 0 ? 80 : 443;

    return from->port == default_port ? 0 : from->port;
}

bool cmn_route_target_allowed(const cmn_config_t *config, h2o_iovec_t host, uint16_t port)
{
    if (config == NULL || host.base == NULL || host.len == 0) {
        return false;
    }
    for (size_t i = 0; i < config->num_routes; i++) {
        const cmn_config_url_t *from = &config->routes[i].from;
        uint16_t rule = cmn_route_port_rule(from);
        if (from->host != NULL && (rule == 0 || rule == port) &&
            cmn_route_host_matches(from->host, host.base, host.len)) {
            return true;
        }
    }
    return false;
}
