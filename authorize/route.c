/* SPDX-License-Identifier: MIT */
/* Compiles the config's routes once and answers "which route serves this host and path". */
#include "authorize/route.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_REGEX_MAX 4096

typedef struct st_route_host_t {
    struct st_route_host_t *next;
    const char *host; /* borrowed from the config */
    size_t host_len;
    size_t *indexes;  /* route indexes in config order */
    size_t num_indexes;
} route_host_t;

typedef struct st_compiled_route_t {
    const cmn_route_t *route;
    regex_t regex;
    bool has_regex;
} compiled_route_t;

struct st_authz_routes_t {
    compiled_route_t *routes;
    size_t num_routes;
    route_host_t **buckets;
    size_t num_buckets; /* a power of two */
};

static uint64_t hash_host(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static route_host_t *find_host(const authz_routes_t *routes, const char *host, size_t len)
{
    route_host_t *entry = routes->buckets[hash_host(host, len) & (routes->num_buckets - 1)];

    for (; entry != NULL; entry = entry->next) {
        if (entry->host_len == len && memcmp(entry->host, host, len) == 0) {
            return entry;
        }
    }
    return NULL;
}

static void add_host_index(authz_routes_t *routes, const char *host, size_t index)
{
    size_t len = strlen(host);
    route_host_t *entry = find_host(routes, host, len);

    if (entry == NULL) {
        size_t b = hash_host(host, len) & (routes->num_buckets - 1);
        entry = h2o_mem_alloc(sizeof(*entry));
        *entry = (route_host_t){.next = routes->buckets[b], .host = host, .host_len = len};
        routes->buckets[b] = entry;
    }
    entry->indexes = h2o_mem_realloc(entry->indexes, (entry->num_indexes + 1) * sizeof(size_t));
    entry->indexes[entry->num_indexes++] = index;
}

/* POSIX EREs have no (?:...), so the anchor groups with a plain capture group (REG_NOSUB) */
static int compile_regex(compiled_route_t *cr, char *errbuf, size_t errlen)
{
    const char *src = cr->route->regex;
    size_t len = strlen(src);
    char *anchored = NULL;
    int rc;

    if (len > ROUTE_REGEX_MAX) {
        snprintf(errbuf, errlen, "line %u: regex longer than ROUTE_REGEX_MAX (%d)",
                 cr->route->line, ROUTE_REGEX_MAX);
        return -1;
    }

    anchored = h2o_mem_alloc(len + 5);
    snprintf(anchored, len + 5, "^(%s)$", src);
    rc = regcomp(&cr->regex, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        char msg[128];
        regerror(rc, NULL, msg, sizeof(msg));
        snprintf(errbuf, errlen, "line %u: regex does not compile: %s", cr->route->line, msg);
        return -1;
    }
    cr->has_regex = true;
    return 0;
}

static size_t bucket_count(size_t num_routes)
{
    size_t n = 16;

    while (n < num_routes * 2) {
        n *= 2;
    }
    return n;
}

static bool path_matches(const compiled_route_t *cr, const char *path)
{
    const cmn_route_t *route = cr->route;

    if (route->prefix != NULL && strncmp(path, route->prefix, strlen(route->prefix)) != 0) {
        return false;
    }
    if (route->path != NULL && strcmp(path, route->path) != 0) {
        return false;
    }
    if (cr->has_regex && regexec(&cr->regex, path, 0, NULL, 0) != 0) {
        return false;
    }
    return true;
}

static bool port_matches(const cmn_route_t *route, uint16_t port)
{
    return route->from.port == 0 || route->from.port == port;
}

authz_routes_t *authz_routes_compile(const cmn_config_t *config, char *errbuf, size_t errlen)
{
    authz_routes_t *routes = h2o_mem_alloc(sizeof(*routes));
    authz_routes_t *ret = NULL;

    *routes = (authz_routes_t){.num_buckets = bucket_count(config->num_routes)};
    routes->buckets = calloc(routes->num_buckets, sizeof(route_host_t *));
    routes->routes = calloc(config->num_routes + 1, sizeof(compiled_route_t));
    if (routes->buckets == NULL || routes->routes == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto Exit;
    }

    for (size_t i = 0; i < config->num_routes; i++) {
        compiled_route_t *cr = &routes->routes[i];
        cr->route = &config->routes[i];
        routes->num_routes = i + 1;
        if (cr->route->regex != NULL && compile_regex(cr, errbuf, errlen) != 0) {
            goto Exit;
        }
        if (cr->route->from.host == NULL) {
            snprintf(errbuf, errlen, "line %u: route without a from host", cr->route->line);
            goto Exit;
        }
        add_host_index(routes, cr->route->from.host, i);
    }
    ret = routes;

Exit:
    if (ret == NULL) {
        authz_routes_destroy(routes);
    }
    return ret;
}

void authz_routes_destroy(authz_routes_t *routes)
{
    if (routes == NULL) {
        return;
    }
    for (size_t i = 0; routes->routes != NULL && i < routes->num_routes; i++) {
        if (routes->routes[i].has_regex) {
            regfree(&routes->routes[i].regex);
        }
    }
    for (size_t b = 0; routes->buckets != NULL && b < routes->num_buckets; b++) {
        route_host_t *entry = routes->buckets[b];
        while (entry != NULL) {
            route_host_t *next = entry->next;
            free(entry->indexes);
            free(entry);
            entry = next;
        }
    }
    free(routes->buckets);
    free(routes->routes);
    free(routes);
}

const cmn_route_t *authz_routes_match(const authz_routes_t *routes, h2o_iovec_t host,
                                      uint16_t port, const char *path)
{
    const route_host_t *entry = find_host(routes, host.base, host.len);

    if (entry == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < entry->num_indexes; i++) {
        const compiled_route_t *cr = &routes->routes[entry->indexes[i]];
        if (port_matches(cr->route, port) && path_matches(cr, path)) {
            return cr->route;
        }
    }
    return NULL;
}

bool authz_routes_is_route_host(const authz_routes_t *routes, h2o_iovec_t host)
{
    return host.base != NULL && find_host(routes, host.base, host.len) != NULL;
}
