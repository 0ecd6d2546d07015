/* SPDX-License-Identifier: MIT */
/* The top-level config keys: one table entry and, where needed, one setter per key. */
#include "common/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/log.h"

#define MAX_WORKERS 256
#define MAX_COOKIE_NAME 128

static cfg_src_t val_src(const cfg_ctx_t *ctx, const cfg_val_t *val)
{
    return val->node != NULL ? cfg_src_of_node(ctx, val->node) : val->src;
}

/* "host:port" or ":port" */
static int set_address(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s, *colon;
    unsigned long port = 0;
    const char *p = "?"; /* stays non-empty, so a missing port fails the check below */

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    colon = strrchr(s, ':');
    if (colon != NULL && colon[1] != '\0' && strlen(colon + 1) <= 5) {
        for (p = colon + 1; *p >= '0' && *p <= '9'; p++) {
            port = port * 10 + (unsigned long)(*p - '0');
        }
    }
    if (colon == NULL || *p != '\0' || port == 0 || port > 65535 || strpbrk(s, " \t/") != NULL) {
        cfg_error(ctx, &src, name, "must be host:port or :port (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    return cfg_set_string(ctx, name, val, field);
}

static int set_log_level(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    cmn_log_level_t level;
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (cmn_log_level_parse(s, &level) != 0) {
        cfg_error(ctx, &src, name, "must be debug, info, warn or error (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    free(*(char **)field);
    *(char **)field = cfg_strdup(cmn_log_level_name(level));
    return 0;
}

static int set_workers(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    unsigned long n = 0;
    const char *s, *p;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    for (p = s; *p >= '0' && *p <= '9' && n <= MAX_WORKERS; p++) {
        n = n * 10 + (unsigned long)(*p - '0');
    }
    if (p == s || *p != '\0' || n > MAX_WORKERS) {
        cfg_error(ctx, &src, name, "must be an integer from 0 to %d", MAX_WORKERS);
        return -1;
    }
    *(unsigned *)field = (unsigned)n;
    return 0;
}

static int cidr_valid(const char *s)
{
    unsigned char addr[16];
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    int v6, max, bits = 0;
    const char *p;

    if (hlen == 0 || hlen >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    v6 = strchr(host, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) {
        return -1;
    }
    if (slash == NULL) {
        return 0;
    }

    max = v6 ? 128 : 32;
    for (p = slash + 1; *p >= '0' && *p <= '9' && bits <= max; p++) {
        bits = bits * 10 + (*p - '0');
    }
    return p == slash + 1 || *p != '\0' || bits > max ? -1 : 0;
}

static int set_cidr_list(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    cmn_strlist_t *list = field;
    size_t i;
    int ret = 0;

    if (cfg_set_list(ctx, name, val, field) != 0) {
        return -1;
    }
    for (i = 0; i < list->len; i++) {
        if (cidr_valid(list->items[i]) != 0) {
            cfg_error(ctx, &src, name, "not an address or CIDR: \"%s\"",
                      cfg_echo(list->items[i], echo, sizeof(echo)));
            ret = -1;
        }
    }
    return ret;
}

/* the databroker always serves mutual TLS, so only https makes sense */
static int set_broker_urls(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    cmn_strlist_t *list = field;
    cmn_config_url_t url;
    const char *err = NULL;
    size_t i;
    int ret = 0;

    if (cfg_set_list(ctx, name, val, field) != 0) {
        return -1;
    }
    for (i = 0; i < list->len; i++) {
        if (cmn_config_url_parse(list->items[i], &url, &err) != 0) {
            cfg_error(ctx, &src, name, "%s", err);
            ret = -1;
            continue;
        }
        if (strcmp(url.scheme, "https") != 0) {
            cfg_error(ctx, &src, name, "must be an https URL (the databroker serves mutual TLS)");
            ret = -1;
        }
        cmn_config_url_clear(&url);
    }
    return ret;
}

/* one of `choices` (NULL-terminated), any case, stored lower-case */
static int set_choice(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field,
                      const char *const *choices, const char *expected)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s;
    size_t i;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    for (i = 0; choices[i] != NULL; i++) {
        if (strcasecmp(s, choices[i]) == 0) {
            free(*(char **)field);
            *(char **)field = cfg_strdup(choices[i]);
            return 0;
        }
    }
    cfg_error(ctx, &src, name, "must be %s (got \"%s\")", expected,
              cfg_echo(s, echo, sizeof(echo)));
    return -1;
}

static int set_storage_type(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    static const char *const choices[] = {"redis", "memory", NULL};

    return set_choice(ctx, name, val, field, choices, "redis or memory");
}

static int set_same_site(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    static const char *const choices[] = {"lax", "strict", "none", NULL};

    return set_choice(ctx, name, val, field, choices, "lax, strict or none");
}

static int set_idp_provider(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    static const char *const choices[] = {"oidc", "google", NULL};

    return set_choice(ctx, name, val, field, choices, "oidc or google");
}

/* a secret: the value itself is never quoted back */
static bool all_digits(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/*
 * redis://[user:pass@]host[:port][/db] or unix:///path; returns why it is not, or NULL. The
 * value holds a password, so the reason names the part that is wrong, never the text.
 */
static const char *conn_string_problem(const char *s)
{
    const char *rest, *at, *slash, *colon, *host_end;

    if (strncasecmp(s, "unix://", 7) == 0) {
        return s[7] == '/' && s[8] != '\0' ? NULL : "unix:// needs an absolute socket path";
    }
    rest = s + (strncasecmp(s, "rediss://", 9) == 0 ? 9 : 8);
    at = strrchr(rest, '@');
    if (at != NULL) {
        rest = at + 1;
    }
    slash = strchr(rest, '/');
    host_end = slash != NULL ? slash : rest + strlen(rest);
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', (size_t)(host_end - rest));
        colon = close != NULL && close + 1 < host_end && close[1] == ':' ? close + 1 : NULL;
        if (close == NULL || close == rest + 1) {
            return "has no valid host";
        }
    } else {
        colon = memchr(rest, ':', (size_t)(host_end - rest));
    }
    if ((colon != NULL ? colon : host_end) == rest) {
        return "has no host";
    }
    if (colon != NULL) {
        size_t len = (size_t)(host_end - colon - 1);
        if (!all_digits(colon + 1, len) || len > 5 || atol(colon + 1) < 1 ||
            atol(colon + 1) > 65535) {
            return "has a port that is not 1..65535";
        }
    }
    if (slash != NULL && (!all_digits(slash + 1, strlen(slash + 1)) || strlen(slash + 1) > 6)) {
        return "has a database that is not a number";
    }
    return NULL;
}

static int set_conn_string(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (strncasecmp(s, "redis://", 8) != 0 && strncasecmp(s, "rediss://", 9) != 0 &&
        strncasecmp(s, "unix://", 7) != 0) {
        cfg_error(ctx, &src, name, "must start with redis://, rediss:// or unix://");
        return -1;
    }
    const char *problem = conn_string_problem(s);
    if (problem != NULL) {
        cfg_error(ctx, &src, name, "%s (the value is not shown: it may hold a password)",
                  problem);
        return -1;
    }
    if (*(char **)field != NULL) {
        OPENSSL_cleanse(*(char **)field, strlen(*(char **)field));
        free(*(char **)field);
    }
    *(char **)field = cfg_strdup(s);
    return 0;
}

/* RFC 6265 §4.1.1: a cookie name is an RFC 2616 token */
static int set_cookie_name(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s, *p;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    for (p = s; *p > 0x20 && *p < 0x7f && strchr("()<>@,;:\\\"/[]?={}", *p) == NULL; p++) {
    }
    if (p == s || *p != '\0' || p - s > MAX_COOKIE_NAME) {
        cfg_error(ctx, &src, name, "must be a cookie token of at most %d characters (got \"%s\")",
                  MAX_COOKIE_NAME, cfg_echo(s, echo, sizeof(echo)));
        return -1;
    }
    return cfg_set_string(ctx, name, val, field);
}

/* ".Example.com" -> "example.com" */
static int set_cookie_domain(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char echo[CFG_ECHO_MAX * 4 + 8];
    const char *s;
    char *d;
    size_t i;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    d = cfg_strdup(s[0] == '.' ? s + 1 : s);
    for (i = 0; d[i] != '\0'; i++) {
        if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '.')) {
            break;
        }
        d[i] = (char)tolower((unsigned char)d[i]);
    }
    if (i == 0 || d[i] != '\0' || d[0] == '.' || d[i - 1] == '.' || i > 253) {
        cfg_error(ctx, &src, name, "must be a domain name (got \"%s\")",
                  cfg_echo(s, echo, sizeof(echo)));
        free(d);
        return -1;
    }
    free(*(char **)field);
    *(char **)field = d;
    return 0;
}

static int set_secret32(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    uint8_t *bytes;
    size_t len = 0;
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    bytes = cfg_base64_decode(s, strlen(s), &len);
    if (bytes == NULL) {
        cfg_error(ctx, &src, name, "must be base64 of exactly %d bytes (not valid base64)",
                  CMN_SECRET_LEN);
        return -1;
    }
    if (len != CMN_SECRET_LEN) {
        cfg_error(ctx, &src, name, "must be base64 of exactly %d bytes (got %zu bytes)",
                  CMN_SECRET_LEN, len);
    } else {
        memcpy(field, bytes, CMN_SECRET_LEN);
    }
    OPENSSL_cleanse(bytes, len);
    free(bytes);
    return len == CMN_SECRET_LEN ? 0 : -1;
}

/* the key must load, and be what the assertion can be signed with: EC P-256 or RSA */
static const char *check_signing_key(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = NULL;
    const char *reason = NULL;
    char curve[64];
    size_t clen = 0;

    if (bio == NULL) {
        return "cannot be read";
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (pkey == NULL) {
        reason = "is not a PEM private key";
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        if (EVP_PKEY_get_utf8_string_param(pkey, "group", curve, sizeof(curve), &clen) != 1 ||
            strcmp(curve, "prime256v1") != 0) {
            reason = "must be an EC P-256 or an RSA key";
        }
    } else if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        reason = "must be an EC P-256 or an RSA key";
    } else if (EVP_PKEY_get_bits(pkey) < 2048) {
        reason = "RSA keys must have at least 2048 bits";
    }
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return reason;
}

static int set_signing_key(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cfg_src_t src = val_src(ctx, val);
    char *pem = NULL;
    size_t len = 0;
    const char *s, *reason;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (strncmp(s, "-----BEGIN", 10) == 0) {
        len = strlen(s);
        pem = cfg_strndup(s, len);
    } else {
        pem = (char *)cfg_base64_decode(s, strlen(s), &len);
        if (pem == NULL) {
            cfg_error(ctx, &src, name, "must be a PEM key or base64 of one (not valid base64)");
            return -1;
        }
        pem[len] = '\0';
    }

    reason = check_signing_key(pem, len);
    if (reason != NULL) {
        cfg_error(ctx, &src, name, "%s", reason);
        OPENSSL_cleanse(pem, len);
        free(pem);
        return -1;
    }
    if (*(char **)field != NULL) {
        OPENSSL_cleanse(*(char **)field, strlen(*(char **)field));
        free(*(char **)field);
    }
    *(char **)field = pem;
    return 0;
}

static int set_idp_secret(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    const char *s;

    if (cfg_val_scalar(ctx, name, val, &s) != 0) {
        return -1;
    }
    if (*(char **)field != NULL) {
        OPENSSL_cleanse(*(char **)field, strlen(*(char **)field));
        free(*(char **)field);
    }
    *(char **)field = cfg_strdup(s);
    return 0;
}

/* from the environment a map is JSON ({"prompt":"login"}) or k=v pairs (prompt=login,a=b) */
static json_t *env_string_map(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val)
{
    cmn_strlist_t pairs = {NULL, 0};
    json_t *obj = NULL;
    json_t *ret = NULL;
    size_t i;

    if (val->str[0] == '{') {
        return json_loads(val->str, JSON_REJECT_DUPLICATES, NULL);
    }

    obj = json_object();
    if (obj == NULL || cfg_val_list(ctx, name, val, &pairs) != 0) {
        goto Exit;
    }
    for (i = 0; i < pairs.len; i++) {
        char *eq = strchr(pairs.items[i], '=');
        if (eq == NULL || eq == pairs.items[i]) {
            goto Exit;
        }
        *eq = '\0';
        if (json_object_set_new(obj, pairs.items[i], json_string(eq + 1)) != 0) {
            goto Exit;
        }
    }
    ret = obj;
    obj = NULL;

Exit:
    cfg_strlist_clear(&pairs);
    json_decref(obj);
    return ret;
}

/* a map of names to single values, as a JSON object of strings */
static json_t *node_string_map(cfg_ctx_t *ctx, const char *name, yaml_node_t *node)
{
    cfg_src_t src = cfg_src_of_node(ctx, node);
    yaml_node_pair_t *pair;
    json_t *obj = json_object();

    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, pair->value);

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            cfg_error(ctx, &src, name, "must be a map of names to single values");
            json_decref(obj);
            return NULL;
        }
        if (json_object_set_new(obj, (const char *)k->data.scalar.value,
                                json_stringn((const char *)v->data.scalar.value,
                                             v->data.scalar.length)) != 0) {
            cfg_error(ctx, &src, name, "names and values must be valid UTF-8");
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static int string_map(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, json_t **out)
{
    cfg_src_t src = val_src(ctx, val);
    const char *k;
    json_t *v;

    if (val->node == NULL) {
        *out = env_string_map(ctx, name, val);
    } else if (val->node->type == YAML_MAPPING_NODE) {
        *out = node_string_map(ctx, name, val->node);
        if (*out == NULL) {
            return -1;
        }
    } else {
        cfg_error(ctx, &src, name, "must be a map of names to values");
        return -1;
    }

    if (*out == NULL || !json_is_object(*out)) {
        cfg_error(ctx, &src, name, "must be a JSON object or name=value pairs");
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    json_object_foreach(*out, k, v) {
        if (!json_is_string(v)) {
            cfg_error(ctx, &src, name, "values must be strings");
            json_decref(*out);
            *out = NULL;
            return -1;
        }
    }
    return 0;
}

static int set_string_map(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    json_t *obj = NULL;

    if (string_map(ctx, name, val, &obj) != 0) {
        return -1;
    }
    json_decref(*(json_t **)field);
    *(json_t **)field = obj;
    return 0;
}

/* a list of claim names, or a map of header names to claim names */
static int set_claims_headers(cfg_ctx_t *ctx, const char *name, const cfg_val_t *val, void *field)
{
    cmn_config_t *c = ctx->config;
    const char *k;
    json_t *v;

    json_decref(c->jwt_claims_headers_map);
    c->jwt_claims_headers_map = NULL;
    if (val->node == NULL || val->node->type != YAML_MAPPING_NODE) {
        return cfg_set_list(ctx, name, val, field);
    }

    if (string_map(ctx, name, val, &c->jwt_claims_headers_map) != 0) {
        return -1;
    }
    cfg_strlist_clear(&c->jwt_claims_headers);
    json_object_foreach(c->jwt_claims_headers_map, k, v) {
        cfg_strlist_push(&c->jwt_claims_headers, cfg_strdup(json_string_value(v)));
    }
    return 0;
}

#define KEY(name, set, field, flags) {name, set, offsetof(cmn_config_t, field), flags}

const cfg_key_t cfg_top_keys[] = {
    KEY("address", set_address, address, 0),
    KEY("metrics_address", set_address, metrics_address, 0),
    KEY("log_level", set_log_level, log_level, 0),
    KEY("pomerium_debug", cfg_set_bool, debug, 0),
    KEY("insecure_server", cfg_set_bool, insecure_server, 0),
    KEY("authorize_workers", set_workers, authorize_workers, 0),
    KEY("timeout_read", cfg_set_duration_ms, timeout_read_ms, 0),
    KEY("timeout_write", cfg_set_duration_ms, timeout_write_ms, 0),
    KEY("timeout_idle", cfg_set_duration_ms, timeout_idle_ms, 0),
    KEY("trusted_proxies", set_cidr_list, trusted_proxies, 0),
    KEY("authenticate_service_url", cfg_set_url, authenticate_service_url, 0),
    KEY("forward_auth_url", cfg_set_url, forward_auth_url, 0),
    KEY("databroker_service_url", set_broker_urls, databroker_service_urls, 0),
    KEY("databroker_service_urls", set_broker_urls, databroker_service_urls, 0),
    KEY("signout_redirect_url", cfg_set_url_string, signout_redirect_url, 0),
    KEY("certificate_authority_file", cfg_set_string, certificate_authority_file, 0),
    KEY("certificate_file", cfg_set_string, certificate_file, 0),
    KEY("certificate_key_file", cfg_set_string, certificate_key_file, 0),
    KEY("databroker_storage_type", set_storage_type, databroker_storage_type, 0),
    KEY("databroker_storage_connection_string", set_conn_string,
        databroker_storage_connection_string, CFG_KEY_SECRET),
    KEY("cookie_name", set_cookie_name, cookie_name, 0),
    KEY("cookie_domain", set_cookie_domain, cookie_domain, 0),
    KEY("cookie_secure", cfg_set_bool, cookie_secure, 0),
    KEY("cookie_http_only", cfg_set_bool, cookie_http_only, 0),
    KEY("cookie_same_site", set_same_site, cookie_same_site, 0),
    KEY("cookie_expire", cfg_set_duration_s, cookie_expire_s, 0),
    KEY("cookie_secret", set_secret32, cookie_secret, CFG_KEY_SECRET),
    KEY("shared_secret", set_secret32, shared_secret, CFG_KEY_SECRET),
    KEY("signing_key", set_signing_key, signing_key_pem, CFG_KEY_SECRET),
    KEY("idp_provider", set_idp_provider, idp_provider, 0),
    KEY("idp_provider_url", cfg_set_url_string, idp_provider_url, 0),
    KEY("idp_client_id", cfg_set_string, idp_client_id, 0),
    KEY("idp_client_secret", set_idp_secret, idp_client_secret, CFG_KEY_SECRET),
    KEY("idp_scopes", cfg_set_list, idp_scopes, 0),
    KEY("idp_request_params", set_string_map, idp_request_params, 0),
    KEY("idp_ca_file", cfg_set_string, idp_ca_file, 0),
    KEY("jwt_claims_headers", set_claims_headers, jwt_claims_headers, 0),
    KEY("jwt_groups_filter", cfg_set_list, jwt_groups_filter, 0),
};

const size_t cfg_num_top_keys = sizeof(cfg_top_keys) / sizeof(cfg_top_keys[0]);
