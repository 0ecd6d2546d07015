/* SPDX-License-Identifier: MIT */
/* The shared config: one YAML file plus environment overrides, parsed once, validated, frozen. */
#ifndef CMN_CONFIG_H
#define CMN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CMN_SECRET_LEN 32
#define CMN_CONFIG_MAX_BYTES (4 * 1024 * 1024)
#define CMN_CONFIG_MAX_ROUTES 100000
#define CMN_CONFIG_MAX_LIST 10000         /* items in one list value */
#define CMN_CONFIG_MAX_DEPTH 64           /* nesting of a policy block */
#define CMN_CONFIG_MAX_JSON_NODES 1000000 /* values in all policy blocks together (aliases) */
#define CMN_CONFIG_MAX_SECRET_FILE 65536  /* bytes in a <key>_file */
#define CMN_CONFIG_MAX_DURATION_LEN 64    /* characters in a duration */
#define CMN_CONFIG_VERSION "0.1.0"

typedef struct st_cmn_strlist_t {
    char **items;
    size_t len;
} cmn_strlist_t;

/* a parsed absolute URL as it appears in the config (scheme and host lower-cased) */
typedef struct st_cmn_config_url_t {
    char *raw;    /* as written, without a trailing slash */
    char *scheme; /* "http" or "https" */
    char *host;   /* lower-case, no port */
    uint16_t port; /* explicit port, or 0 when none was written */
} cmn_config_url_t;

typedef struct st_cmn_route_t {
    unsigned line;          /* line of the route in the file, for messages */
    size_t index;           /* position in policy/routes */
    cmn_config_url_t from;  /* scheme and host; port 0 = any port */
    char *to;               /* upstream, informational for forward auth; may be NULL */
    char *prefix;           /* NULL when absent */
    char *path;             /* NULL when absent */
    char *regex;            /* NULL when absent; compiled by authorize */
    cmn_strlist_t allowed_users;
    cmn_strlist_t allowed_domains;
    cmn_strlist_t allowed_groups;
    json_t *allowed_idp_claims; /* object: claim name -> array of values; NULL when absent */
    bool allow_public_unauthenticated_access;
    bool allow_any_authenticated_user;
    bool cors_allow_preflight;
    bool pass_identity_headers;
    json_t *policy;         /* the PPL block as JSON (issue #3); NULL when absent */
    cmn_strlist_t jwt_groups_filter;
} cmn_route_t;

typedef struct st_cmn_config_t {
    char *path; /* the file it was loaded from */

    /* process */
    char *address;              /* "host:port" or ":port"; NULL when unset (daemon fallback) */
    bool address_set;           /* address is not NULL: the file or ADDRESS set it */
    char *metrics_address;      /* NULL when absent */
    char *log_level;            /* debug|info|warn|error */
    bool debug;                 /* pomerium_debug */
    bool insecure_server;
    unsigned authorize_workers; /* 0 = number of cores */
    uint64_t timeout_read_ms, timeout_write_ms, timeout_idle_ms;
    cmn_strlist_t trusted_proxies; /* CIDRs */

    /* hosts */
    cmn_config_url_t authenticate_service_url;
    cmn_config_url_t forward_auth_url; /* raw NULL when absent */
    cmn_strlist_t databroker_service_urls;
    char *signout_redirect_url;

    /* internal mTLS */
    char *certificate_authority_file;
    char *certificate_file;
    char *certificate_key_file;

    /* databroker */
    char *databroker_storage_type; /* "redis" or "memory" */
    char *databroker_storage_connection_string;

    /* cookies */
    char *cookie_name; /* "_pomerium" */
    char *cookie_domain; /* NULL = host-only cookies; stored without a leading dot */
    bool cookie_secure, cookie_http_only;
    char *cookie_same_site; /* "lax", "strict" or "none" */
    uint64_t cookie_expire_s;

    /* secrets: decoded bytes; the base64 text is never kept */
    uint8_t cookie_secret[CMN_SECRET_LEN];
    uint8_t shared_secret[CMN_SECRET_LEN];
    char *signing_key_pem; /* decoded PEM, or NULL to derive from shared_secret */

    /* identity provider */
    char *idp_provider; /* "oidc" or "google" */
    char *idp_provider_url;
    char *idp_client_id;
    char *idp_client_secret;
    cmn_strlist_t idp_scopes;
    json_t *idp_request_params; /* object of string values, or NULL */
    char *idp_ca_file;

    /* identity headers */
    cmn_strlist_t jwt_claims_headers; /* claim names */
    json_t *jwt_claims_headers_map;   /* header name -> claim name when given as a map; or NULL */
    cmn_strlist_t jwt_groups_filter;

    cmn_route_t *routes;
    size_t num_routes;
} cmn_config_t;

/* problems found while loading; every message already names the file, line and key */
typedef struct st_cmn_config_diag_t {
    cmn_strlist_t errors;
    cmn_strlist_t warnings;
} cmn_config_diag_t;

/**
 * Loads `path` (NULL: environment only), applies environment overrides (KEY, and KEY_FILE /
 * key_file for secrets; environment beats file), fills defaults and validates everything.
 * Collects every problem in `diag` (overwritten; caller frees with cmn_config_diag_clear)
 * rather than stopping at the first one. Returns the frozen config (caller frees with
 * cmn_config_destroy), or NULL when there is at least one error. Secret values never appear in
 * messages.
 * Defaults: trusted_proxies is loopback plus the private ranges; databroker_service_urls is
 * https://127.0.0.1:5443; address stays NULL so that each daemon's own fallback applies
 * through cmn_server_address (Pomerium's would be ":443", or ":80" with insecure_server).
 */
cmn_config_t *cmn_config_load(const char *path, cmn_config_diag_t *diag);
void cmn_config_destroy(cmn_config_t *config);
void cmn_config_diag_clear(cmn_config_diag_t *diag);

/** prints warnings and errors to stderr, one per line */
void cmn_config_diag_print(const cmn_config_diag_t *diag);

/**
 * Parses a Go-style duration ("90s", "14h", "1h30m", "500ms"); returns -1 when malformed.
 */
int cmn_config_parse_duration(const char *s, uint64_t *out_ms);

/**
 * Parses an absolute http(s) URL for the config; returns -1 with `*err` set on failure.
 * Caller frees the fields with cmn_config_url_clear.
 */
int cmn_config_url_parse(const char *s, cmn_config_url_t *out, const char **err);
void cmn_config_url_clear(cmn_config_url_t *url);

/**
 * Common command line for the three daemons: -c FILE (or --config FILE, default ./config.yaml),
 * --check, --version, --help. Loads and validates the config, prints diagnostics, sets up
 * logging. Exits the process for --check (0 when no error, else 1), --version, --help and on a
 * config error (2) or an unknown argument (2); otherwise returns the config. `daemon` is
 * "authorize" etc. (borrowed for the process lifetime); `usage` is the whole text --help
 * prints (NULL: a default option list).
 */
cmn_config_t *cmn_config_from_args(int argc, char **argv, const char *daemon, const char *usage);

/**
 * A daemon's own checks of a loaded config (authorize: routes and policies). Appends every
 * problem to `diag->errors` as a malloc'd "[<file>:<line>] <name>: <reason>" string (freed by
 * cmn_config_diag_clear).
 */
typedef void (*cmn_config_validate_cb)(const cmn_config_t *config, cmn_config_diag_t *diag,
                                       void *arg);

/**
 * cmn_config_from_args, and `validate` (when not NULL) runs on a config that loaded: its errors
 * are printed with the loader's, make --check exit 1 and a normal start exit 2.
 */
cmn_config_t *cmn_config_from_args_ex(int argc, char **argv, const char *daemon,
                                      const char *usage, cmn_config_validate_cb validate,
                                      void *arg);

#endif
