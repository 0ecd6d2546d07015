/* SPDX-License-Identifier: MIT */
/* The `policy:` and `routes:` entries: one cmn_route_t per YAML map, validated field by field. */
#include "common/config_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static int set_path(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = cfg_src_of_node(ctx, val->node);
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (s[0] != '/') {
        cfg_error(ctx, &src, name, "must start with \"/\" (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    return cfg_set_string(ctx, name, val, field);
}

static int set_regex(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = cfg_src_of_node(ctx, val->node);
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (s[0] == '\0') {
        cfg_error(ctx, &src, name, "must not be empty");
        return -1;
    }
    return cfg_set_string(ctx, name, val, field);
}

/* `to` may be one URL or a list of them (load balancing in Pomerium); kept comma-joined */
static int set_to(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cmn_strlist_t list = {NULL, 0};
    size_t i, len = 0, pos = 0;
    char *joined;

    if (cfg_val_list(ctx, name, val, &list) != 0) {
        cfg_strlist_clear(&list);
        return -1;
    }
    for (i = 0; i < list.len; i++) {
        len += strlen(list.items[i]) + 1;
    }
    joined = cfg_alloc(len + 1);
    for (i = 0; i < list.len; i++) {
        size_t n = strlen(list.items[i]);
        if (i != 0) {
            joined[pos++] = ',';
        }
        memcpy(joined + pos, list.items[i], n);
        pos += n;
    }
    cfg_strlist_clear(&list);

    free(*(char **)field);
    *(char **)field = joined;
    return 0;
}

/* a PPL block: a rule (map) or a list of rules, kept as JSON for authorize to compile */
static int set_ppl(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = cfg_src_of_node(ctx, val->node);
    json_t *j;

    if (val->node->type == YAML_SCALAR_NODE) {
        cfg_error(ctx, &src, name, "must be a rule or a list of rules");
        return -1;
    }
    j = cfg_yaml_to_json(ctx, name, val->node);
    if (j == NULL) {
        return -1;
    }
    json_decref(*(json_t **)field);
    *(json_t **)field = j;
    return 0;
}

/* claim -> list of values; a single value becomes a list of one */
static json_t *claim_values(cfg_ctx_t *ctx, const char *name, yaml_node_t *v)
{
    cfg_src_t src = cfg_src_of_node(ctx, v);
    json_t *one, *arr;

    if (v->type == YAML_MAPPING_NODE) {
        cfg_error(ctx, &src, name, "must be a value or a list of values");
        return NULL;
    }
    if (v->type == YAML_SEQUENCE_NODE) {
        return cfg_yaml_to_json(ctx, name, v);
    }

    one = cfg_yaml_to_json(ctx, name, v);
    arr = json_array();
    if (one == NULL || arr == NULL || json_array_append_new(arr, one) != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int set_idp_claims(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = cfg_src_of_node(ctx, val->node);
    yaml_node_pair_t *pair;
    char cname[256];
    json_t *obj;

    if (val->node->type != YAML_MAPPING_NODE) {
        cfg_error(ctx, &src, name, "must be a map of claim names to values");
        return -1;
    }

    obj = json_object();
    for (pair = val->node->data.mapping.pairs.start; pair < val->node->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, pair->value);
        json_t *values;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            cfg_error(ctx, &src, name, "claim names must be strings");
            json_decref(obj);
            return -1;
        }
        snprintf(cname, sizeof(cname), "%s.%.64s", name, k->data.scalar.value);
        values = claim_values(ctx, cname, v);
        if (values == NULL ||
            json_object_set_new(obj, (const char *)k->data.scalar.value, values) != 0) {
            json_decref(obj);
            return -1;
        }
    }

    json_decref(*(json_t **)field);
    *(json_t **)field = obj;
    return 0;
}

static int set_from(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    return cfg_set_url(ctx, name, val, field);
}

/* "from" must stay first: route_load checks seen[0] */
static const cfg_key_t route_keys[] = {
    {"from", set_from, offsetof(cmn_route_t, from), 0},
    {"to", set_to, offsetof(cmn_route_t, to), 0},
    {"prefix", set_path, offsetof(cmn_route_t, prefix), 0},
    {"path", set_path, offsetof(cmn_route_t, path), 0},
    {"regex", set_regex, offsetof(cmn_route_t, regex), 0},
    {"allowed_users", cfg_set_list, offsetof(cmn_route_t, allowed_users), 0},
    {"allowed_domains", cfg_set_list, offsetof(cmn_route_t, allowed_domains), 0},
    {"allowed_groups", cfg_set_list, offsetof(cmn_route_t, allowed_groups), 0},
    {"allowed_idp_claims", set_idp_claims, offsetof(cmn_route_t, allowed_idp_claims), 0},
    {"allow_public_unauthenticated_access", cfg_set_bool,
     offsetof(cmn_route_t, allow_public_unauthenticated_access), 0},
    {"allow_any_authenticated_user", cfg_set_bool,
     offsetof(cmn_route_t, allow_any_authenticated_user), 0},
    {"cors_allow_preflight", cfg_set_bool, offsetof(cmn_route_t, cors_allow_preflight), 0},
    {"pass_identity_headers", cfg_set_bool, offsetof(cmn_route_t, pass_identity_headers), 0},
    {"policy", set_ppl, offsetof(cmn_route_t, policy), 0},
    {"jwt_groups_filter", cfg_set_list, offsetof(cmn_route_t, jwt_groups_filter), 0},
};

#define NUM_ROUTE_KEYS (sizeof(route_keys) / sizeof(route_keys[0]))

static const cfg_key_t *route_key(const char *name)
{
    size_t i;

    for (i = 0; i < NUM_ROUTE_KEYS; i++) {
        if (strcmp(route_keys[i].name, name) == 0) {
            return &route_keys[i];
        }
    }
    return NULL;
}

/* checks that need the whole route: a `from`, and at most one path matcher */
static void route_check(cfg_ctx_t *ctx, const char *rname, const cfg_src_t *src,
                        const cmn_route_t *r, bool from_seen)
{
    int matchers = (r->prefix != NULL) + (r->path != NULL) + (r->regex != NULL);
    char name[300];

    /* a bad `from` was reported already */
    if (!from_seen) {
        snprintf(name, sizeof(name), "%s.from", rname);
        cfg_error(ctx, src, name, "required");
    }
    if (matchers > 1) {
        cfg_error(ctx, src, rname, "at most one of prefix, path and regex");
    }
}

static void route_load(cfg_ctx_t *ctx, const char *rname, yaml_node_t *map, cmn_route_t *r)
{
    cfg_src_t src = cfg_src_of_node(ctx, map);
    bool seen[NUM_ROUTE_KEYS] = {false};
    yaml_node_pair_t *pair;
    char name[300];

    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, pair->value);
        cfg_src_t ksrc = cfg_src_of_node(ctx, k);
        cfg_val_t val = {ksrc, v, NULL};
        const cfg_key_t *key;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            cfg_error(ctx, &ksrc, rname, "keys must be strings");
            continue;
        }
        snprintf(name, sizeof(name), "%s.%.64s", rname, k->data.scalar.value);
        key = route_key((const char *)k->data.scalar.value);
        if (key == NULL) {
            cfg_warning(ctx, &ksrc, name, "unknown key, ignored");
            continue;
        }
        if (seen[key - route_keys]) {
            cfg_error(ctx, &ksrc, name, "duplicate key");
            continue;
        }
        seen[key - route_keys] = true;
        if (cfg_node_is_null(v)) {
            continue;
        }
        (void)key->set(ctx, name, &val, (char *)r + key->offset);
    }

    route_check(ctx, rname, &src, r, seen[0]);
}

void cfg_routes_load(cfg_ctx_t *ctx, const char *key, yaml_node_t *seq)
{
    cmn_config_t *c = ctx->config;
    cfg_src_t src = cfg_src_of_node(ctx, seq);
    yaml_node_item_t *item;
    char rname[64];
    size_t i = 0;

    if (cfg_node_is_null(seq)) {
        return;
    }
    if (seq->type != YAML_SEQUENCE_NODE) {
        cfg_error(ctx, &src, key, "must be a list of routes");
        return;
    }

    for (item = seq->data.sequence.items.start; item < seq->data.sequence.items.top; item++, i++) {
        yaml_node_t *map = yaml_document_get_node(&ctx->doc, *item);
        cmn_route_t *r;

        snprintf(rname, sizeof(rname), "%s[%zu]", key, i);
        if (c->num_routes >= CMN_CONFIG_MAX_ROUTES) {
            cfg_error(ctx, &src, key, "more than %d routes (CMN_CONFIG_MAX_ROUTES)",
                      CMN_CONFIG_MAX_ROUTES);
            return;
        }
        if (map == NULL || map->type != YAML_MAPPING_NODE) {
            cfg_src_t isrc = cfg_src_of_node(ctx, map);
            cfg_error(ctx, &isrc, rname, "must be a map");
            continue;
        }

        if (c->num_routes == ctx->routes_cap) {
            size_t cap = ctx->routes_cap == 0 ? 8 : ctx->routes_cap * 2;
            cmn_route_t *routes = realloc(c->routes, cap * sizeof(routes[0]));
            if (routes == NULL) {
                cmn_unreachable("out of memory while loading the config");
            }
            c->routes = routes;
            ctx->routes_cap = cap;
        }
        r = &c->routes[c->num_routes++];
        memset(r, 0, sizeof(*r));
        r->line = (unsigned)map->start_mark.line + 1;
        r->index = c->num_routes - 1;
        route_load(ctx, rname, map, r);
    }
}

void cfg_route_clear(cmn_route_t *r)
{
    cmn_config_url_clear(&r->from);
    free(r->to);
    free(r->prefix);
    free(r->path);
    free(r->regex);
    cfg_strlist_clear(&r->allowed_users);
    cfg_strlist_clear(&r->allowed_domains);
    cfg_strlist_clear(&r->allowed_groups);
    json_decref(r->allowed_idp_claims);
    json_decref(r->policy);
    cfg_strlist_clear(&r->jwt_groups_filter);
    memset(r, 0, sizeof(*r));
}
