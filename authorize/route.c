/* SPDX-License-Identifier: MIT */
/* Compiles the config's routes once and answers "which route serves this host and path". */
#include "authorize/route.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/route_target.h"

/* the routes of one exact host, in config order */
typedef struct st_route_host_t {
    struct st_route_host_t *next;
    const char *host; /* borrowed from the config, lower-case */
    size_t host_len;
    size_t *indexes;
    size_t num_indexes, cap;
} route_host_t;

typedef struct st_compiled_route_t {
    authz_route_t pub;
    regex_t regex;
    bool has_regex;
    bool wildcard;     /* the host holds a '*' */
    uint16_t port;     /* 0: any port; else only this one */
} compiled_route_t;

struct st_authz_routes_t {
    compiled_route_t *routes;
    size_t num_routes;
    route_host_t **buckets;
    size_t num_buckets; /* a power of two */
    size_t *wildcards;  /* indexes of the wildcard routes, in config order */
    size_t num_wildcards;
};

static uint64_t hash_host(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the lower-case bytes */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tolower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

static route_host_t *find_host(const authz_routes_t *routes, const char *host, size_t len)
{
    route_host_t *entry = routes->buckets[hash_host(host, len) & (routes->num_buckets - 1)];

    for (; entry != NULL; entry = entry->next) {
        if (entry->host_len == len && strncasecmp(entry->host, host, len) == 0) {
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
    if (entry->num_indexes == entry->cap) {
        entry->cap = entry->cap == 0 ? 4 : entry->cap * 2;
        entry->indexes = h2o_mem_realloc(entry->indexes, entry->cap * sizeof(size_t));
    }
    entry->indexes[entry->num_indexes++] = index;
}

/* copies a bracket expression starting at src[*i] == '[' verbatim: RE2 escapes mean nothing
 * inside one, and "[:alpha:]" style classes may hold a ']' */
static void copy_bracket(const char *src, size_t *i, char *out, size_t *o)
{
    out[(*o)++] = src[(*i)++];
    if (src[*i] == '^') {
        out[(*o)++] = src[(*i)++];
    }
    if (src[*i] == ']') {
        out[(*o)++] = src[(*i)++];
    }
    while (src[*i] != '\0' && src[*i] != ']') {
        char kind = src[*i + 1];
        if (src[*i] == '[' && (kind == ':' || kind == '.' || kind == '=')) {
            const char *close = strchr(src + *i + 2, kind);
            while (close != NULL && close[1] != ']') {
                close = strchr(close + 1, kind);
            }
            if (close != NULL) {
                size_t n = (size_t)(close + 2 - (src + *i));
                memcpy(out + *o, src + *i, n);
                *o += n;
                *i += n;
                continue;
            }
        }
        out[(*o)++] = src[(*i)++];
    }
    if (src[*i] == ']') {
        out[(*o)++] = src[(*i)++];
    }
}

/* "^(" src ")$" with the RE2 forms Pomerium users write most (\d, \D, (?:) made POSIX;
 * the plain capture group keeps an alternation inside the anchors (REG_NOSUB) */
static char *anchored_regex(const char *src)
{
    size_t len = strlen(src), i = 0, o = 0;
    char *out = h2o_mem_alloc(len * 3 + 8);

    memcpy(out, "^(", 2);
    o = 2;
    while (src[i] != '\0') {
        if (src[i] == '\\' && (src[i + 1] == 'd' || src[i + 1] == 'D')) {
            const char *cls = src[i + 1] == 'd' ? "[0-9]" : "[^0-9]";
            memcpy(out + o, cls, strlen(cls));
            o += strlen(cls);
            i += 2;
        } else if (src[i] == '\\' && src[i + 1] != '\0') {
            out[o++] = src[i++];
            out[o++] = src[i++];
        } else if (src[i] == '(' && src[i + 1] == '?' && src[i + 2] == ':') {
            out[o++] = '(';
            i += 3;
        } else if (src[i] == '[') {
            copy_bracket(src, &i, out, &o);
        } else {
            out[o++] = src[i++];
        }
    }
    memcpy(out + o, ")$", 3);
    return out;
}

static const char *route_file(const cmn_config_t *config)
{
    return config->path != NULL ? config->path : "env";
}

static void route_error(cmn_strlist_t *errors, const cmn_config_t *config, const cmn_route_t *r,
                        const char *field, const char *reason, const char *detail)
{
    char name[64];

    snprintf(name, sizeof(name), "routes[%zu].%s", r->index, field);
    authz_policy_error_add(errors, route_file(config), r->line, name, "%s%s", reason, detail);
}

static void compile_regex(compiled_route_t *cr, const cmn_config_t *config, cmn_strlist_t *errors)
{
    const char *src = cr->pub.def->regex;
    char *anchored;
    int rc;

    if (strlen(src) > AUTHZ_ROUTE_REGEX_MAX) {
        route_error(errors, config, cr->pub.def, "regex",
                    "longer than AUTHZ_ROUTE_REGEX_MAX characters", "");
        return;
    }

    anchored = anchored_regex(src);
    rc = regcomp(&cr->regex, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        char msg[128];
        regerror(rc, NULL, msg, sizeof(msg));
        route_error(errors, config, cr->pub.def, "regex", "does not compile: ", msg);
        return;
    }
    cr->has_regex = true;
}

static size_t bucket_count(size_t num_routes)
{
    size_t n = 16;

    while (n < num_routes * 2) {
        n *= 2;
    }
    return n;
}

static void compile_route(authz_routes_t *routes, size_t i, const cmn_config_t *config,
                          cmn_strlist_t *errors)
{
    compiled_route_t *cr = &routes->routes[i];
    const cmn_route_t *def = &config->routes[i];

    cr->pub.def = def;
    cr->pub.policy = authz_policy_compile(def, route_file(config), errors);
    if (def->regex != NULL) {
        compile_regex(cr, config, errors);
    }
    if (def->from.host == NULL || def->from.host[0] == '\0') {
        route_error(errors, config, def, "from", "needs a host", "");
        return;
    }

    cr->port = cmn_route_port_rule(&def->from);
    cr->wildcard = strchr(def->from.host, '*') != NULL;
    if (cr->wildcard) {
        routes->wildcards[routes->num_wildcards++] = i;
    } else {
        add_host_index(routes, def->from.host, i);
    }
}

authz_routes_t *authz_routes_compile(const cmn_config_t *config, cmn_strlist_t *errors)
{
    authz_routes_t *routes = h2o_mem_alloc(sizeof(*routes));
    size_t errors_before = errors->len;

    *routes = (authz_routes_t){.num_buckets = bucket_count(config->num_routes)};
    routes->buckets = calloc(routes->num_buckets, sizeof(route_host_t *));
    routes->routes = calloc(config->num_routes + 1, sizeof(compiled_route_t));
    routes->wildcards = calloc(config->num_routes + 1, sizeof(size_t));
    if (routes->buckets == NULL || routes->routes == NULL || routes->wildcards == NULL) {
        h2o_fatal("no memory");
    }

    for (size_t i = 0; i < config->num_routes; i++) {
        routes->num_routes = i + 1;
        compile_route(routes, i, config, errors);
    }

    if (errors->len != errors_before) {
        authz_routes_destroy(routes);
        return NULL;
    }
    return routes;
}

void authz_routes_destroy(authz_routes_t *routes)
{
    if (routes == NULL) {
        return;
    }
    for (size_t i = 0; i < routes->num_routes; i++) {
        if (routes->routes[i].has_regex) {
            regfree(&routes->routes[i].regex);
        }
        authz_policy_destroy(routes->routes[i].pub.policy);
    }
    for (size_t b = 0; b < routes->num_buckets; b++) {
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
    free(routes->wildcards);
    free(routes);
}

/* one path specifier per route, regex > path > prefix (Envoy uses only one); none is "/" */
static bool path_matches(const compiled_route_t *cr, const char *path)
{
    const cmn_route_t *def = cr->pub.def;

    if (def->regex != NULL) {
        return cr->has_regex && regexec(&cr->regex, path, 0, NULL, 0) == 0;
    }
    if (def->path != NULL) {
        return strcmp(path, def->path) == 0;
    }
    if (def->prefix != NULL) {
        return strncmp(path, def->prefix, strlen(def->prefix)) == 0;
    }
    return true;
}

static bool port_matches(const compiled_route_t *cr, uint16_t port)
{
    return cr->port == 0 || cr->port == port;
}

static const authz_route_t *match_exact(const authz_routes_t *routes, const route_host_t *entry,
                                        uint16_t port, const char *path, bool *host_chosen)
{
    for (size_t i = 0; i < entry->num_indexes; i++) {
        const compiled_route_t *cr = &routes->routes[entry->indexes[i]];
        if (!port_matches(cr, port)) {
            continue;
        }
        *host_chosen = true;
        if (path_matches(cr, path)) {
            return &cr->pub;
        }
    }
    return NULL;
}

const authz_route_t *authz_routes_match(const authz_routes_t *routes, h2o_iovec_t host,
                                        uint16_t port, const char *path)
{
    const route_host_t *entry = find_host(routes, host.base, host.len);
    bool host_chosen = false;

    if (entry != NULL) {
        const authz_route_t *route = match_exact(routes, entry, port, path, &host_chosen);
        /* P147/P148: an exact host that admits the port never falls back to wildcards */
        if (route != NULL || host_chosen) {
            return route;
        }
    }

    for (size_t i = 0; i < routes->num_wildcards; i++) {
        const compiled_route_t *cr = &routes->routes[routes->wildcards[i]];
        if (port_matches(cr, port) &&
            cmn_route_host_matches(cr->pub.def->from.host, host.base, host.len) &&
            path_matches(cr, path)) {
            return &cr->pub;
        }
    }
    return NULL;
}

bool authz_routes_is_route_host(const authz_routes_t *routes, h2o_iovec_t host)
{
    if (host.base == NULL || host.len == 0) {
        return false;
    }
    if (find_host(routes, host.base, host.len) != NULL) {
        return true;
    }
    for (size_t i = 0; i < routes->num_wildcards; i++) {
        if (cmn_route_host_matches(routes->routes[routes->wildcards[i]].pub.def->from.host,
                                   host.base, host.len)) {
            return true;
        }
    }
    return false;
}

size_t authz_routes_count(const authz_routes_t *routes)
{
    return routes->num_routes;
}
