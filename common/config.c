/* SPDX-License-Identifier: MIT */
/* Loads the shared config: YAML, environment overrides, defaults and cross-key checks. */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "common/config_int.h"
#include "common/err.h"
#include "common/log.h"

#define CFG_MAX_KEYS 64
#define ENV_NAME_MAX 96

/* what the file and the environment hold for each top-level key */
typedef struct st_cfg_found_t {
    yaml_node_t *value[CFG_MAX_KEYS]; /* the YAML value of the key */
    yaml_node_t *file[CFG_MAX_KEYS];  /* the YAML value of <key>_file (secrets) */
    yaml_node_t *policy, *routes;
    bool seen[CFG_MAX_KEYS];     /* a value was found (it may still have been bad) */
    cfg_src_t src[CFG_MAX_KEYS]; /* where that value came from */
    cfg_src_t file_src;          /* the file as a whole, for keys that are absent */
    char env[CFG_MAX_KEYS][ENV_NAME_MAX];
} cfg_found_t;

static const char *const default_scopes[] = {"openid", "profile", "email", "offline_access"};
static const char *const default_proxies[] = {"127.0.0.0/8",   "::1/128",        "10.0.0.0/8",
                                              "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"};
static const char default_broker_url[] = "https://127.0.0.1:5443";
static const char google_url[] = "https://accounts.google.com";

static int key_index(const char *name)
{
    size_t i;

    for (i = 0; i < cfg_num_top_keys; i++) {
        if (strcmp(cfg_top_keys[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* "cookie_secret_file" -> index of cookie_secret, for secret keys only */
static int file_key_index(const char *name)
{
    size_t len = strlen(name);
    char base[ENV_NAME_MAX];
    int i;

    if (len <= 5 || len - 5 >= sizeof(base) || strcmp(name + len - 5, "_file") != 0) {
        return -1;
    }
    memcpy(base, name, len - 5);
    base[len - 5] = '\0';
    i = key_index(base);
    return i >= 0 && (cfg_top_keys[i].flags & CFG_KEY_SECRET) != 0 ? i : -1;
}

/* records one top-level pair of the file, refusing duplicates */
static void scan_pair(cfg_ctx_t *ctx, cfg_found_t *f, yaml_node_t *k, yaml_node_t *v)
{
    cfg_src_t src = cfg_src_of_node(ctx, k);
    const char *name = (const char *)k->data.scalar.value;
    yaml_node_t **slot = NULL;
    int i = key_index(name);
    int fi = file_key_index(name);

    if (strcmp(name, "policy") == 0) {
        slot = &f->policy;
    } else if (strcmp(name, "routes") == 0) {
        slot = &f->routes;
    } else if (i >= 0) {
        slot = &f->value[i];
    } else if (fi >= 0) {
        slot = &f->file[fi];
    } else {
        cfg_warning(ctx, &src, name, "unknown key, ignored");
        return;
    }

    if (*slot != NULL) {
        cfg_error(ctx, &src, name, "duplicate key");
        return;
    }
    *slot = v;
}

static void scan_root(cfg_ctx_t *ctx, cfg_found_t *f)
{
    yaml_node_t *root = yaml_document_get_root_node(&ctx->doc);
    cfg_src_t src = cfg_src_of_node(ctx, root);
    yaml_node_pair_t *pair;

    if (root == NULL || cfg_node_is_null(root)) {
        return;
    }
    if (root->type != YAML_MAPPING_NODE) {
        cfg_error(ctx, &src, "config", "must be a map of keys to values");
        return;
    }

    for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, pair->value);

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            src = cfg_src_of_node(ctx, k);
            cfg_error(ctx, &src, "config", "keys must be strings");
            continue;
        }
        scan_pair(ctx, f, k, v);
    }
}

/* reads a secret from a file; one trailing newline is not part of it */
static char *read_secret_file(cfg_ctx_t *ctx, const cfg_src_t *src, const char *name,
                              const char *path)
{
    char echo[CFG_ECHO_MAX * 4 + 8];
    char *buf = NULL;
    struct stat st;
    ssize_t n = -1;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0 || fstat(fd, &st) != 0) {
        cfg_error(ctx, src, name, "cannot read \"%s\": %s", cfg_echo(path, echo, sizeof(echo)),
                  strerror(errno));
        goto Exit;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CMN_CONFIG_MAX_SECRET_FILE) {
        cfg_error(ctx, src, name, "\"%s\" is not a regular file of at most %d bytes",
                  cfg_echo(path, echo, sizeof(echo)), CMN_CONFIG_MAX_SECRET_FILE);
        goto Exit;
    }

    buf = cfg_alloc(CMN_CONFIG_MAX_SECRET_FILE + 1);
    do {
        n = read(fd, buf, CMN_CONFIG_MAX_SECRET_FILE);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || memchr(buf, '\0', (size_t)n) != NULL) {
        cfg_error(ctx, src, name, "cannot read \"%s\": %s", cfg_echo(path, echo, sizeof(echo)),
                  n < 0 ? strerror(errno) : "it contains a NUL byte");
        OPENSSL_cleanse(buf, CMN_CONFIG_MAX_SECRET_FILE);
        free(buf);
        buf = NULL;
        goto Exit;
    }

    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }
    buf[n] = '\0';

Exit:
    if (fd >= 0) {
        close(fd);
    }
    return buf;
}

static void env_name(char *out, const char *name, const char *suffix)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i + 6 < ENV_NAME_MAX; i++) {
        out[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    }
    /* the loop left room for the longest suffix, "_FILE" */
    memcpy(out + i, suffix, strlen(suffix) + 1);
}

static const char *getenv_set(const char *name)
{
    const char *v = getenv(name);

    /* an empty variable counts as unset, as in Pomerium */
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/*
 * Finds the value of key i by precedence: KEY, then KEY_FILE, then the YAML value, then the
 * YAML <key>_file. Returns 1 with *val set, 0 when absent, -1 when a secret file failed.
 */
static int find_value(cfg_ctx_t *ctx, cfg_found_t *f, size_t i, cfg_val_t *val, char **content)
{
    const cfg_key_t *key = &cfg_top_keys[i];
    bool secret = (key->flags & CFG_KEY_SECRET) != 0;
    char fname[ENV_NAME_MAX + 8];
    const char *ev;

    snprintf(fname, sizeof(fname), "%s_file", key->name);
    memset(val, 0, sizeof(*val));

    env_name(f->env[i], key->name, "");
    ev = getenv_set(f->env[i]);
    if (ev != NULL) {
        val->src.env = f->env[i];
        val->str = ev;
        return 1;
    }

    env_name(f->env[i], key->name, "_FILE");
    ev = secret ? getenv_set(f->env[i]) : NULL;
    if (ev != NULL) {
        val->src.env = f->env[i];
        *content = read_secret_file(ctx, &val->src, fname, ev);
        val->str = *content;
        return *content != NULL ? 1 : -1;
    }

    if (f->value[i] != NULL && !cfg_node_is_null(f->value[i])) {
        val->src = cfg_src_of_node(ctx, f->value[i]);
        val->node = f->value[i];
        return 1;
    }

    if (secret && f->file[i] != NULL && !cfg_node_is_null(f->file[i])) {
        cfg_val_t pathval = {cfg_src_of_node(ctx, f->file[i]), f->file[i], NULL};
        const char *path;

        val->src = pathval.src;
        if (cfg_val_scalar(ctx, fname, &pathval, &path) != 0) {
            return -1;
        }
        *content = read_secret_file(ctx, &val->src, fname, path);
        val->str = *content;
        return *content != NULL ? 1 : -1;
    }
    return 0;
}

static void apply_keys(cfg_ctx_t *ctx, cfg_found_t *f)
{
    size_t i;

    for (i = 0; i < cfg_num_top_keys; i++) {
        const cfg_key_t *key = &cfg_top_keys[i];
        char *content = NULL;
        cfg_val_t val;
        int found = find_value(ctx, f, i, &val, &content);

        f->seen[i] = found != 0;
        f->src[i] = val.src;
        if (found == 1) {
            (void)key->set(ctx, key->name, &val, (char *)ctx->config + key->offset);
        }
        if (content != NULL) {
            OPENSSL_cleanse(content, strlen(content));
            free(content);
        }
    }
}

static void set_defaults(cmn_config_t *c)
{
    c->cookie_secure = true;
    c->cookie_http_only = true;
    c->cookie_expire_s = 14 * 3600;
    c->timeout_read_ms = 30 * 1000;
    c->timeout_write_ms = 0;
    c->timeout_idle_ms = 5 * 60 * 1000;
}

static void default_list(cmn_strlist_t *list, const char *const *items, size_t n)
{
    size_t i;

    if (list->len != 0) {
        return;
    }
    for (i = 0; i < n; i++) {
        cfg_strlist_push(list, cfg_strdup(items[i]));
    }
}

static void default_string(char **field, const char *value)
{
    if (*field == NULL) {
        *field = cfg_strdup(value);
    }
}

static void fill_defaults(cfg_ctx_t *ctx, cfg_found_t *f)
{
    cmn_config_t *c = ctx->config;

    /* address stays NULL when unset: each daemon has its own fallback (cmn_server_address) */
    c->address_set = c->address != NULL;
    default_string(&c->log_level, c->debug ? "debug" : "info");
    default_string(&c->cookie_name, "_pomerium");
    default_string(&c->cookie_same_site, "lax");
    default_string(&c->databroker_storage_type,
                   c->databroker_storage_connection_string != NULL ? "redis" : "memory");
    default_list(&c->idp_scopes, default_scopes,
                 sizeof(default_scopes) / sizeof(default_scopes[0]));
    default_list(&c->trusted_proxies, default_proxies,
                 sizeof(default_proxies) / sizeof(default_proxies[0]));
    default_list(&c->databroker_service_urls, (const char *const[]){default_broker_url}, 1);
    if (c->idp_provider != NULL && strcmp(c->idp_provider, "google") == 0) {
        default_string(&c->idp_provider_url, google_url);
    }
}

/* where key `name` came from, or the file when it was absent */
static const cfg_src_t *key_src(cfg_ctx_t *ctx, cfg_found_t *f, const char *name)
{
    int i = key_index(name);

    if (i < 0 || !f->seen[i]) {
        f->file_src = (cfg_src_t){ctx->path, 0, NULL};
        return &f->file_src;
    }
    return &f->src[i];
}

static void require(cfg_ctx_t *ctx, cfg_found_t *f, const char *name)
{
    char env[ENV_NAME_MAX];
    int i = key_index(name);

    if (i >= 0 && !f->seen[i]) {
        env_name(env, name, "");
        cfg_error(ctx, key_src(ctx, f, name), name, "required (in the file or as %s)", env);
    }
}

static bool host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
           strncmp(host, "127.", 4) == 0;
}

/* DESIGN §2: an http:// provider is accepted only on a loopback host, with a warning */
static void check_idp(cfg_ctx_t *ctx, cfg_found_t *f)
{
    cmn_config_t *c = ctx->config;
    cmn_config_url_t url;
    const char *err = NULL;

    if (c->idp_provider != NULL && c->idp_provider_url == NULL) {
        cfg_error(ctx, key_src(ctx, f, "idp_provider_url"), "idp_provider_url",
                  "required when idp_provider is %s", c->idp_provider);
    }
    if (c->idp_provider_url == NULL || cfg_url_parse(c->idp_provider_url, &url, true, &err) != 0) {
        return;
    }
    if (strcmp(url.scheme, "http") == 0 && host_is_loopback(url.host)) {
        cfg_warning(ctx, key_src(ctx, f, "idp_provider_url"), "idp_provider_url",
                    "plain http accepted only because the host is loopback");
    } else if (strcmp(url.scheme, "http") == 0) {
        cfg_error(ctx, key_src(ctx, f, "idp_provider_url"), "idp_provider_url",
                  "must be https (http only for a loopback host)");
    }
    cmn_config_url_clear(&url);
}

/* a file named in the config must be readable here, so a typo fails at --check, not later */
static void check_readable(cfg_ctx_t *ctx, cfg_found_t *f, const char *key, const char *path)
{
    char echo[CFG_ECHO_MAX * 4 + 8];
    struct stat st;
    int fd;

    if (path == NULL) {
        return;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cfg_error(ctx, key_src(ctx, f, key), key, "cannot read \"%s\": %s",
                  cfg_echo(path, echo, sizeof(echo)), strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cfg_error(ctx, key_src(ctx, f, key), key, "\"%s\" is not a regular file",
                  cfg_echo(path, echo, sizeof(echo)));
    }
    close(fd);
}

static void check_files(cfg_ctx_t *ctx, cfg_found_t *f)
{
    cmn_config_t *c = ctx->config;

    check_readable(ctx, f, "certificate_authority_file", c->certificate_authority_file);
    check_readable(ctx, f, "certificate_file", c->certificate_file);
    check_readable(ctx, f, "certificate_key_file", c->certificate_key_file);
    check_readable(ctx, f, "idp_ca_file", c->idp_ca_file);
    if ((c->certificate_file == NULL) != (c->certificate_key_file == NULL)) {
        const char *missing = c->certificate_file == NULL ? "certificate_file"
                                                          : "certificate_key_file";
        cfg_error(ctx, key_src(ctx, f, missing), missing,
                  "certificate_file and certificate_key_file go together");
    }
}

static void check_all(cfg_ctx_t *ctx, cfg_found_t *f)
{
    cmn_config_t *c = ctx->config;

    require(ctx, f, "cookie_secret");
    require(ctx, f, "shared_secret");
    require(ctx, f, "authenticate_service_url");
    require(ctx, f, "idp_provider");
    require(ctx, f, "idp_client_id");
    require(ctx, f, "idp_client_secret");
    check_idp(ctx, f);
    check_files(ctx, f);

    if (strcmp(c->databroker_storage_type, "redis") == 0 &&
        c->databroker_storage_connection_string == NULL) {
        cfg_error(ctx, key_src(ctx, f, "databroker_storage_type"),
                  "databroker_storage_connection_string",
                  "required when databroker_storage_type is redis");
    }
    if (strcmp(c->databroker_storage_type, "memory") == 0 &&
        c->databroker_storage_connection_string != NULL) {
        cfg_warning(ctx, key_src(ctx, f, "databroker_storage_connection_string"),
                    "databroker_storage_connection_string",
                    "ignored with databroker_storage_type memory");
    }
    if (strcmp(c->cookie_same_site, "none") == 0 && !c->cookie_secure) {
        cfg_warning(ctx, key_src(ctx, f, "cookie_same_site"), "cookie_same_site",
                    "browsers drop SameSite=None cookies unless cookie_secure is true");
    }
    if (c->cookie_expire_s == 0) {
        cfg_error(ctx, key_src(ctx, f, "cookie_expire"), "cookie_expire",
                  "must be at least one second");
    }
}

static void load_routes(cfg_ctx_t *ctx, cfg_found_t *f)
{
    static const char *const env_keys[] = {"POLICY", "ROUTES"};
    size_t i;

    for (i = 0; i < 2; i++) {
        if (getenv_set(env_keys[i]) != NULL) {
            cfg_src_t src = {NULL, 0, env_keys[i]};
            cfg_warning(ctx, &src, i == 0 ? "policy" : "routes",
                        "routes come only from the file; ignored");
        }
    }

    /* policy first, then routes, so `routes:` entries come after `policy:` ones */
    if (f->policy != NULL) {
        cfg_routes_load(ctx, "policy", f->policy);
    }
    if (f->routes != NULL) {
        cfg_routes_load(ctx, "routes", f->routes);
    }
}

static void note_dropped(cfg_ctx_t *ctx)
{
    char msg[96];

    if (ctx->dropped_errors != 0) {
        snprintf(msg, sizeof(msg), "... and %zu more errors", ctx->dropped_errors);
        cfg_strlist_push(&ctx->diag->errors, cfg_strdup(msg));
    }
    if (ctx->dropped_warnings != 0) {
        snprintf(msg, sizeof(msg), "... and %zu more warnings", ctx->dropped_warnings);
        cfg_strlist_push(&ctx->diag->warnings, cfg_strdup(msg));
    }
}

/* the file's copies of the secrets are wiped before libyaml frees them */
static void cleanse_secrets(cfg_found_t *f)
{
    size_t i;

    for (i = 0; i < cfg_num_top_keys; i++) {
        if ((cfg_top_keys[i].flags & CFG_KEY_SECRET) != 0) {
            cfg_yaml_cleanse(f->value[i]);
        }
    }
}

cmn_config_t *cmn_config_load(const char *path, cmn_config_diag_t *diag)
{
    cfg_ctx_t ctx;
    cfg_found_t *f = cfg_alloc(sizeof(*f));
    cmn_config_t *ret = NULL;

    if (cfg_num_top_keys >= CFG_MAX_KEYS) {
        cmn_unreachable("CFG_MAX_KEYS is smaller than the key table");
    }
    memset(diag, 0, sizeof(*diag));
    memset(&ctx, 0, sizeof(ctx));
    ctx.diag = diag;
    ctx.path = path;
    ctx.json_budget = CMN_CONFIG_MAX_JSON_NODES;
    ctx.config = cfg_alloc(sizeof(*ctx.config));
    ctx.config->path = path != NULL ? cfg_strdup(path) : NULL;
    set_defaults(ctx.config);

    if (path != NULL && cfg_yaml_load(&ctx) != 0) {
        goto Exit;
    }
    if (ctx.have_doc) {
        scan_root(&ctx, f);
    }
    apply_keys(&ctx, f);
    load_routes(&ctx, f);
    fill_defaults(&ctx, f);
    check_all(&ctx, f);

    if (diag->errors.len == 0) {
        ret = ctx.config;
        ctx.config = NULL;
    }

Exit:
    note_dropped(&ctx);
    cleanse_secrets(f);
    if (ctx.have_doc) {
        yaml_document_delete(&ctx.doc);
    }
    free(f);
    cmn_config_destroy(ctx.config);
    return ret;
}

static void free_secret_string(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void cmn_config_destroy(cmn_config_t *c)
{
    size_t i;

    if (c == NULL) {
        return;
    }
    free(c->path);
    free(c->address);
    free(c->metrics_address);
    free(c->log_level);
    cfg_strlist_clear(&c->trusted_proxies);
    cmn_config_url_clear(&c->authenticate_service_url);
    cmn_config_url_clear(&c->forward_auth_url);
    cfg_strlist_clear(&c->databroker_service_urls);
    free(c->signout_redirect_url);
    free(c->certificate_authority_file);
    free(c->certificate_file);
    free(c->certificate_key_file);
    free(c->databroker_storage_type);
    free_secret_string(c->databroker_storage_connection_string);
    free(c->cookie_name);
    free(c->cookie_domain);
    free(c->cookie_same_site);
    OPENSSL_cleanse(c->cookie_secret, sizeof(c->cookie_secret));
    OPENSSL_cleanse(c->shared_secret, sizeof(c->shared_secret));
    free_secret_string(c->signing_key_pem);
    free(c->idp_provider);
    free(c->idp_provider_url);
    free(c->idp_client_id);
    free_secret_string(c->idp_client_secret);
    cfg_strlist_clear(&c->idp_scopes);
    json_decref(c->idp_request_params);
    free(c->idp_ca_file);
    cfg_strlist_clear(&c->jwt_claims_headers);
    json_decref(c->jwt_claims_headers_map);
    cfg_strlist_clear(&c->jwt_groups_filter);
    for (i = 0; i < c->num_routes; i++) {
        cfg_route_clear(&c->routes[i]);
    }
    free(c->routes);
    free(c);
}

void cmn_config_diag_clear(cmn_config_diag_t *diag)
{
    cfg_strlist_clear(&diag->errors);
    cfg_strlist_clear(&diag->warnings);
}

void cmn_config_diag_print(const cmn_config_diag_t *diag)
{
    size_t i;

    for (i = 0; i < diag->warnings.len; i++) {
        fprintf(stderr, "warning: %s\n", diag->warnings.items[i]);
    }
    for (i = 0; i < diag->errors.len; i++) {
        fprintf(stderr, "error: %s\n", diag->errors.items[i]);
    }
}

static void print_usage(FILE *out, const char *daemon, const char *usage)
{
    if (usage != NULL) {
        fputs(usage, out);
        return;
    }
    fprintf(out,
            "usage: portcullis-%s [-c FILE] [--check] [--version] [--help]\n"
            "  -c, --config FILE  the YAML config (default ./config.yaml)\n"
            "  --check            validate the config, print every problem, exit 0 when valid\n"
            "  --version          print the version\n"
            "  --help             print this help\n",
            daemon);
}

cmn_config_t *cmn_config_from_args(int argc, char **argv, const char *daemon, const char *usage)
{
    return cmn_config_from_args_ex(argc, argv, daemon, usage, NULL, NULL);
}

/* the daemon's checks; a config they refuse is no config */
static cmn_config_t *run_validate(cmn_config_t *config, cmn_config_diag_t *diag,
                                  cmn_config_validate_cb validate, void *arg)
{
    size_t before = diag->errors.len;

    if (config == NULL || validate == NULL) {
        return config;
    }
    validate(config, diag, arg);
    if (diag->errors.len != before) {
        cmn_config_destroy(config);
        return NULL;
    }
    return config;
}

cmn_config_t *cmn_config_from_args_ex(int argc, char **argv, const char *daemon,
                                      const char *usage, cmn_config_validate_cb validate,
                                      void *arg)
{
    const char *path = "./config.yaml";
    cmn_config_diag_t diag;
    cmn_config_t *config;
    cmn_log_level_t level = CMN_LOG_INFO;
    bool check = false;
    int i;

    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("portcullis-%s %s\n", daemon, CMN_CONFIG_VERSION);
            exit(0);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(stdout, daemon, usage);
            exit(0);
        } else {
            print_usage(stderr, daemon, usage);
            exit(2);
        }
    }

    config = run_validate(cmn_config_load(path, &diag), &diag, validate, arg);
    if (check) {
        int status = config != NULL ? 0 : 1;

        cmn_config_diag_print(&diag);
        if (status == 0) {
            printf("config ok\n");
        }
        cmn_config_diag_clear(&diag);
        cmn_config_destroy(config);
        exit(status);
    }
    if (config == NULL) {
        cmn_config_diag_print(&diag);
        cmn_config_diag_clear(&diag);
        exit(2);
    }

    cmn_log_init(daemon);
    if (cmn_log_level_parse(config->log_level, &level) != 0) {
        cmn_unreachable("log_level was validated while loading");
    }
    cmn_log_set_level(level);
    for (i = 0; i < (int)diag.warnings.len; i++) {
        cmn_log_warn(NULL, "config: %s", diag.warnings.items[i]);
    }
    cmn_config_diag_clear(&diag);
    return config;
}
