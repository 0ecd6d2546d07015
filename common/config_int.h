/* SPDX-License-Identifier: MIT */
/* Private to common/config*.c: the loading context, value helpers and field setters. */
#ifndef CMN_CONFIG_INT_H
#define CMN_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "common/config.h"

#define CFG_MAX_DIAG 1000    /* messages kept per list; more become one "too many" line */
#define CFG_MAX_URL_LEN 2048 /* characters in a URL value */
#define CFG_ECHO_MAX 64      /* bytes of a bad (non-secret) value quoted back in a message */

/* where a value came from, for messages */
typedef struct st_cfg_src_t {
    const char *file; /* the config file; NULL when from the environment */
    unsigned line;    /* 1-based; 0 when there is no line (a default, a missing key) */
    const char *env;  /* the variable's name when from the environment */
} cfg_src_t;

/* one value to apply: a YAML node, or a string from the environment or a secret file */
typedef struct st_cfg_val_t {
    cfg_src_t src;
    yaml_node_t *node; /* NULL for a string value */
    const char *str;   /* the string value when node is NULL */
} cfg_val_t;

typedef struct st_cfg_ctx_t {
    cmn_config_t *config;
    cmn_config_diag_t *diag;
    const char *path;
    yaml_document_t doc;
    bool have_doc;
    size_t json_budget; /* values left before CMN_CONFIG_MAX_JSON_NODES */
    size_t routes_cap;
    size_t dropped_errors, dropped_warnings;
} cfg_ctx_t;

/* parses `val` for the key printed as `name` into `field`; reports its own errors, returns 0/-1 */
typedef int (*cfg_setter_t)(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);

typedef struct st_cfg_key_t {
    const char *name;
    cfg_setter_t set;
    size_t offset; /* of the field in cmn_config_t or cmn_route_t */
    unsigned flags;
} cfg_key_t;

#define CFG_KEY_SECRET 0x1 /* may come from <key>_file / <KEY>_FILE; never echoed */

/* the top-level keys (config_keys.c) */
extern const cfg_key_t cfg_top_keys[];
extern const size_t cfg_num_top_keys;

/* diagnostics (config_values.c) */
void cfg_error(cfg_ctx_t *ctx, const cfg_src_t *src, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cfg_warning(cfg_ctx_t *ctx, const cfg_src_t *src, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** a bad value quoted for a message: escaped, cut to CFG_ECHO_MAX; returns buf */
const char *cfg_echo(const char *s, char *buf, size_t bufsize);
cfg_src_t cfg_src_of_node(const cfg_ctx_t *ctx, const yaml_node_t *node);

/* allocation that aborts on OOM, and string lists */
void *cfg_alloc(size_t size);
char *cfg_strdup(const char *s);
char *cfg_strndup(const char *s, size_t len);
void cfg_strlist_push(cmn_strlist_t *list, char *item);
void cfg_strlist_clear(cmn_strlist_t *list);

/* value access */
/** true for a plain null scalar (`key:`, `~`, `null`): treated as if the key were absent */
bool cfg_node_is_null(const yaml_node_t *node);
/** the value as one string (borrowed); -1 with an error when it is a list or a map */
int cfg_val_scalar(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, const char **out);
/** a sequence of strings, one string, or (from the environment) a comma-separated list */
int cfg_val_list(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, cmn_strlist_t *out);
/** parses yes/no booleans the YAML 1.1 way: true/false, yes/no, on/off, any case */
int cfg_parse_bool(const char *s, bool *out);
/** standard base64 with optional padding; malloc'd bytes (caller cleanses) or NULL */
uint8_t *cfg_base64_decode(const char *s, size_t len, size_t *outlen);
/** cmn_config_url_parse, with any path allowed (kept in raw) when `allow_path` */
int cfg_url_parse(const char *s, cmn_config_url_t *out, bool allow_path, const char **err);

/* generic setters; `field` points at the type named */
int cfg_set_string(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_bool(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_duration_ms(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_duration_s(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_list(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_url(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);
int cfg_set_url_string(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field);

/* YAML (config_yaml.c) */
/** reads and parses ctx->path into ctx->doc; reports problems; returns 0/-1 */
int cfg_yaml_load(cfg_ctx_t *ctx);
/** converts a node to JSON (scalars: plain true/false -> bool, plain ints -> int, else string) */
json_t *cfg_yaml_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node);
/** wipes a scalar's bytes (secrets) before the document is freed */
void cfg_yaml_cleanse(yaml_node_t *node);

/* routes (config_routes.c) */
/** appends the routes of a `policy:` or `routes:` sequence to ctx->config */
void cfg_routes_load(cfg_ctx_t *ctx, const char *key, yaml_node_t *seq);
void cfg_route_clear(cmn_route_t *route);

#endif
