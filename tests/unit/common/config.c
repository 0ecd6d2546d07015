/* SPDX-License-Identifier: MIT */
/* Unit tests for common/config*.c: the seed config, overrides, secrets, validation, routes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/config.h"

#ifndef PORTCULLIS_SOURCE_DIR
#define PORTCULLIS_SOURCE_DIR "."
#endif

#define FIXTURES PORTCULLIS_SOURCE_DIR "/tests/data/config/"

/* a complete, valid config that tests extend with one more line */
#define BASE                                                                                       \
    "cookie_secret: YVFTMIfW8yBJw+a6sYwdW8rHbU+IAAV/SUkCTg9Jtpo=\n"                                \
    "shared_secret: 80ldlrU2d7w+wVpKNfevk6fmb8otEx6CqOfshj2LwhQ=\n"                                \
    "idp_provider: google\n"                                                                       \
    "idp_client_id: id\n"                                                                          \
    "idp_client_secret: secret\n"                                                                  \
    "authenticate_service_url: https://authn.example.com\n"
#define BASE_LINES 6

static const char seed_cookie_b64[] = "YVFTMIfW8yBJw+a6sYwdW8rHbU+IAAV/SUkCTg9Jtpo=";
static const char seed_shared_b64[] = "80ldlrU2d7w+wVpKNfevk6fmb8otEx6CqOfshj2LwhQ=";
/* another valid secret, for overrides */
static const char other_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static char temp_paths[32][64];
static int num_temps;

static const char *const touched_env[] = {
    "COOKIE_SECRET", "COOKIE_SECRET_FILE", "SHARED_SECRET_FILE", "ADDRESS",
    "IDP_SCOPES",    "COOKIE_EXPIRE",      "SIGNING_KEY",        "COOKIE_DOMAIN",
    "POLICY",        "INSECURE_SERVER",    "TRUSTED_PROXIES",    "IDP_REQUEST_PARAMS",
};

static int teardown(void **state)
{
    size_t i;
    int j;

    for (i = 0; i < sizeof(touched_env) / sizeof(touched_env[0]); i++) {
        unsetenv(touched_env[i]);
    }
    for (j = 0; j < num_temps; j++) {
        unlink(temp_paths[j]);
    }
    num_temps = 0;
    return 0;
}

static const char *write_temp(const char *content)
{
    assert_true(num_temps < (int)(sizeof(temp_paths) / sizeof(temp_paths[0])));
    char *path = temp_paths[num_temps++];
    FILE *fp;
    int fd;

    snprintf(path, sizeof(temp_paths[0]), "/tmp/portcullis-cfg-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(content, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static void dump(const cmn_config_diag_t *d)
{
    size_t i;

    for (i = 0; i < d->errors.len; i++) {
        fprintf(stderr, "  error: %s\n", d->errors.items[i]);
    }
    for (i = 0; i < d->warnings.len; i++) {
        fprintf(stderr, "  warning: %s\n", d->warnings.items[i]);
    }
}

static int has_msg(const cmn_strlist_t *list, const char *needle)
{
    size_t i;

    for (i = 0; i < list->len; i++) {
        if (strstr(list->items[i], needle) != NULL) {
            return 1;
        }
    }
    return 0;
}

static int any_contains(const cmn_config_diag_t *d, const char *needle)
{
    return has_msg(&d->errors, needle) || has_msg(&d->warnings, needle);
}

static cmn_config_t *load_ok(const char *path, cmn_config_diag_t *d)
{
    cmn_config_t *c = cmn_config_load(path, d);

    if (c == NULL) {
        dump(d);
    }
    assert_non_null(c);
    return c;
}

static void assert_secret(const uint8_t *bytes, const char *b64)
{
    uint8_t expect[48];

    assert_int_equal(EVP_DecodeBlock(expect, (const unsigned char *)b64, (int)strlen(b64)), 33);
    assert_memory_equal(bytes, expect, CMN_SECRET_LEN);
}

static void test_seed_loads(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c = load_ok(FIXTURES "seed.yaml", &d);

    assert_int_equal(d.errors.len, 0);
    if (d.warnings.len != 0) {
        dump(&d);
    }
    assert_int_equal(d.warnings.len, 0);

    assert_true(c->debug);
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->address, ":80");
    assert_true(c->address_set);
    assert_true(c->insecure_server);
    assert_secret(c->cookie_secret, seed_cookie_b64);
    assert_secret(c->shared_secret, seed_shared_b64);
    assert_string_equal(c->idp_provider, "google");
    assert_string_equal(c->idp_provider_url, "https://accounts.google.com");
    assert_string_equal(c->idp_client_id, "REPLACEME");
    assert_string_equal(c->idp_client_secret, "REPLACEME");
    assert_string_equal(c->forward_auth_url.host, "fwdauth.localhost.pomerium.io");
    assert_string_equal(c->authenticate_service_url.raw,
                        "https://authenticate.localhost.pomerium.io");
    assert_string_equal(c->authenticate_service_url.scheme, "https");
    assert_int_equal(c->authenticate_service_url.port, 0);

    /* defaults */
    assert_string_equal(c->cookie_name, "_pomerium");
    assert_true(c->cookie_secure);
    assert_true(c->cookie_http_only);
    assert_string_equal(c->cookie_same_site, "lax");
    assert_int_equal(c->cookie_expire_s, 14 * 3600);
    assert_null(c->cookie_domain);
    assert_int_equal(c->idp_scopes.len, 4);
    assert_string_equal(c->idp_scopes.items[3], "offline_access");
    assert_string_equal(c->databroker_storage_type, "memory");
    assert_int_equal(c->databroker_service_urls.len, 1);
    assert_string_equal(c->databroker_service_urls.items[0], "https://127.0.0.1:5443");
    assert_int_equal(c->timeout_read_ms, 30000);
    assert_int_equal(c->timeout_write_ms, 0);
    assert_int_equal(c->timeout_idle_ms, 300000);
    assert_true(c->trusted_proxies.len >= 4);
    assert_null(c->signing_key_pem);

    assert_int_equal(c->num_routes, 1);
    assert_string_equal(c->routes[0].from.host, "verify.localhost.pomerium.io");
    assert_string_equal(c->routes[0].to, "https://httpbin");
    assert_int_equal(c->routes[0].allowed_domains.len, 1);
    assert_string_equal(c->routes[0].allowed_domains.items[0], "pomerium.io");
    assert_true(c->routes[0].pass_identity_headers);
    assert_int_equal(c->routes[0].line, 17);

    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_default_address(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c = load_ok(write_temp(BASE), &d);

    /* unset: the daemon's own fallback applies */
    assert_null(c->address);
    assert_false(c->address_set);
    assert_string_equal(c->log_level, "info");
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    c = load_ok(write_temp(BASE "insecure_server: yes\naddress: 0.0.0.0:39002\n"), &d);
    assert_string_equal(c->address, "0.0.0.0:39002");
    assert_true(c->address_set);
    assert_true(c->insecure_server);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_env_beats_file(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c;

    setenv("ADDRESS", "127.0.0.1:39001", 1);
    setenv("COOKIE_SECRET", other_b64, 1);
    setenv("IDP_SCOPES", "openid, email,,groups", 1);
    setenv("COOKIE_DOMAIN", ".Portcullis.LOCALHOST", 1);
    setenv("INSECURE_SERVER", "off", 1);
    c = load_ok(FIXTURES "seed.yaml", &d);

    assert_string_equal(c->address, "127.0.0.1:39001");
    assert_secret(c->cookie_secret, other_b64);
    assert_int_equal(c->idp_scopes.len, 3);
    assert_string_equal(c->idp_scopes.items[0], "openid");
    assert_string_equal(c->idp_scopes.items[1], "email");
    assert_string_equal(c->idp_scopes.items[2], "groups");
    assert_string_equal(c->cookie_domain, "portcullis.localhost");
    assert_false(c->insecure_server);

    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_env_file_precedence(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c;

    /* KEY_FILE beats the YAML value */
    setenv("COOKIE_SECRET_FILE", FIXTURES "shared_secret.txt", 1);
    c = load_ok(FIXTURES "seed.yaml", &d);
    assert_secret(c->cookie_secret, seed_shared_b64);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    /* KEY beats KEY_FILE */
    setenv("COOKIE_SECRET", other_b64, 1);
    c = load_ok(FIXTURES "seed.yaml", &d);
    assert_secret(c->cookie_secret, other_b64);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_yaml_secret_file(void **state)
{
    char yaml[1024];
    cmn_config_diag_t d;
    cmn_config_t *c;

    /* the file holds the secret with a trailing newline, which is not part of it */
    snprintf(
        yaml, sizeof(yaml),
        "cookie_secret_file: %scookie_secret.txt\n"
        "shared_secret_file: %scookie_secret.txt\n"
        "shared_secret: %s\n"
        "idp_provider: google\nidp_client_id: id\nidp_client_secret_file: %sshared_secret.txt\n"
        "authenticate_service_url: https://authn.example.com\n",
        FIXTURES, FIXTURES, seed_shared_b64, FIXTURES);
    c = load_ok(write_temp(yaml), &d);

    assert_secret(c->cookie_secret, seed_cookie_b64);
    /* the YAML value beats the YAML _file */
    assert_secret(c->shared_secret, seed_shared_b64);
    assert_string_equal(c->idp_client_secret, seed_shared_b64);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    snprintf(yaml, sizeof(yaml), BASE "signing_key_file: %sdoes-not-exist\n", FIXTURES);
    assert_null(cmn_config_load(write_temp(yaml), &d));
    assert_true(has_msg(&d.errors, "signing_key_file: cannot read"));
    cmn_config_diag_clear(&d);
}

static void test_short_secret(void **state)
{
    /* 31 bytes */
    static const char b64_31[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";
    char yaml[1024], expect[256];
    const char *path;
    cmn_config_diag_t d;
    size_t i;

    snprintf(yaml, sizeof(yaml), BASE "shared_secret: %s\n", b64_31);
    path = write_temp(yaml);
    assert_null(cmn_config_load(path, &d));

    /* the later shared_secret line is a duplicate key: the first value is the one reported */
    assert_true(has_msg(&d.errors, "shared_secret: duplicate key"));
    cmn_config_diag_clear(&d);

    snprintf(yaml, sizeof(yaml),
             "cookie_secret: %s\nshared_secret: %s\nidp_provider: google\nidp_client_id: i\n"
             "idp_client_secret: s\nauthenticate_service_url: https://a.example.com\n",
             b64_31, seed_shared_b64);
    path = write_temp(yaml);
    assert_null(cmn_config_load(path, &d));
    snprintf(expect, sizeof(expect),
             "[%s:1] cookie_secret: must be base64 of exactly 32 bytes (got 31 bytes)", path);
    if (!has_msg(&d.errors, expect)) {
        dump(&d);
    }
    assert_true(has_msg(&d.errors, expect));
    for (i = 0; i < d.errors.len; i++) {
        assert_null(strstr(d.errors.items[i], b64_31));
        assert_null(strstr(d.errors.items[i], "AAECAwQF"));
    }
    cmn_config_diag_clear(&d);

    /* from the environment: the message names the variable */
    setenv("COOKIE_SECRET", "not*base64", 1);
    assert_null(cmn_config_load(FIXTURES "seed.yaml", &d));
    assert_true(has_msg(&d.errors, "[env COOKIE_SECRET] cookie_secret: must be base64 of exactly "
                                   "32 bytes (not valid base64)"));
    assert_false(any_contains(&d, "not*base64"));
    cmn_config_diag_clear(&d);
}

static void test_bad_duration(void **state)
{
    char expect[256];
    const char *path = write_temp(BASE "timeout_read: 10s\ncookie_expire: 14x\n");
    cmn_config_diag_t d;

    assert_null(cmn_config_load(path, &d));
    snprintf(expect, sizeof(expect), "[%s:%d] cookie_expire: not a duration", path, BASE_LINES + 2);
    assert_true(has_msg(&d.errors, expect));
    assert_true(has_msg(&d.errors, "\"14x\""));
    assert_int_equal(d.errors.len, 1);
    cmn_config_diag_clear(&d);

    setenv("COOKIE_EXPIRE", "forever", 1);
    assert_null(cmn_config_load(FIXTURES "seed.yaml", &d));
    assert_true(has_msg(&d.errors, "[env COOKIE_EXPIRE] cookie_expire: not a duration"));
    cmn_config_diag_clear(&d);
}

/* the same check `--check` runs: every problem of the broken fixture, at once */
static void test_many_errors(void **state)
{
    static const char *const expected[] = {
        "broken.yaml:2] address: must be host:port or :port",
        "broken.yaml:3] cookie_secret: must be base64 of exactly 32 bytes (got 5 bytes)",
        "broken.yaml:4] shared_secret: must be base64 of exactly 32 bytes (not valid base64)",
        "broken.yaml:5] cookie_expire: not a duration",
        "broken.yaml:6] cookie_same_site: must be lax, strict or none",
        "broken.yaml:7] insecure_server: must be true or false",
        "broken.yaml:8] authenticate_service_url: must be an http or https URL",
        "broken.yaml:12] authorize_workers: must be an integer from 0 to 256",
        "broken.yaml:13] databroker_storage_type: must be redis or memory",
        "broken.yaml] idp_provider_url: required when idp_provider is oidc",
        "broken.yaml:16] policy[0].from: must not have a path",
        "broken.yaml:18] policy[1].from: required",
    };
    cmn_config_diag_t d;
    size_t i;

    assert_null(cmn_config_load(FIXTURES "broken.yaml", &d));
    for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (!has_msg(&d.errors, expected[i])) {
            fprintf(stderr, "missing: %s\n", expected[i]);
            dump(&d);
        }
        assert_true(has_msg(&d.errors, expected[i]));
    }
    assert_int_equal(d.errors.len, sizeof(expected) / sizeof(expected[0]));
    assert_true(has_msg(&d.warnings, "broken.yaml:14] a_key_we_do_not_know: unknown key"));
    assert_false(any_contains(&d, "c2hvcnQ="));
    assert_false(any_contains(&d, "secret\""));
    cmn_config_diag_clear(&d);
}

static void test_unknown_key_is_warning(void **state)
{
    char expect[256];
    const char *path = write_temp(BASE "grpc_address: :5443\nservices: all\n");
    cmn_config_diag_t d;
    cmn_config_t *c = load_ok(path, &d);

    snprintf(expect, sizeof(expect), "[%s:%d] grpc_address: unknown key, ignored", path,
             BASE_LINES + 1);
    assert_true(has_msg(&d.warnings, expect));
    assert_true(has_msg(&d.warnings, "services: unknown key"));
    assert_int_equal(d.warnings.len, 2);
    assert_int_equal(d.errors.len, 0);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void assert_json(const json_t *got, const char *expect)
{
    json_t *e = json_loads(expect, 0, NULL);

    assert_non_null(e);
    if (!json_equal(got, e)) {
        char *s = json_dumps(got, JSON_SORT_KEYS);
        fprintf(stderr, "got %s\nexpected %s\n", s != NULL ? s : "(null)", expect);
        free(s);
    }
    assert_true(json_equal(got, e));
    json_decref(e);
}

static void test_routes(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c = load_ok(FIXTURES "routes.yaml", &d);
    const cmn_route_t *r;

    assert_int_equal(c->num_routes, 3);
    assert_true(has_msg(&d.warnings, "routes.yaml:52] routes[0].preserve_host_header: unknown"));

    r = &c->routes[0];
    assert_int_equal(r->index, 0);
    assert_int_equal(r->line, 20);
    assert_string_equal(r->from.host, "verify.example.com");
    assert_string_equal(r->from.scheme, "https");
    assert_int_equal(r->from.port, 8443);
    assert_string_equal(r->to, "http://a,http://b");
    assert_string_equal(r->prefix, "/docs");
    assert_null(r->path);
    assert_null(r->regex);
    assert_int_equal(r->allowed_users.len, 1);
    assert_string_equal(r->allowed_users.items[0], "alice@example.com");
    assert_int_equal(r->allowed_domains.len, 2);
    assert_string_equal(r->allowed_domains.items[1], "example.org");
    assert_int_equal(r->allowed_groups.len, 2);
    assert_string_equal(r->allowed_groups.items[1], "ops");
    assert_json(r->allowed_idp_claims, "{\"department\": [\"engineering\"], \"level\": [1, 2]}");
    assert_true(r->cors_allow_preflight);
    assert_false(r->allow_any_authenticated_user);
    assert_null(r->policy);
    assert_int_equal(r->jwt_groups_filter.len, 1);

    r = &c->routes[1];
    assert_string_equal(r->from.host, "admin.example.com");
    assert_string_equal(r->from.raw, "http://admin.example.com");
    assert_int_equal(r->from.port, 0);
    assert_string_equal(r->path, "/exact");
    assert_true(r->allow_any_authenticated_user);
    assert_null(r->allowed_idp_claims);
    assert_json(r->policy, "[{\"allow\": {\"or\": [{\"email\": {\"is\": \"bob@example.com\"}},"
                           " {\"claim/level\": 3}, {\"groups\": {\"has\": \"true\"}}]}},"
                           " {\"deny\": {\"and\": [{\"http_method\": \"POST\"},"
                           " {\"authenticated_user\": true}]}}]");

    /* routes: come after policy: */
    r = &c->routes[2];
    assert_int_equal(r->index, 2);
    assert_string_equal(r->from.host, "public.example.com");
    assert_string_equal(r->regex, "^/api/[0-9]+$");
    assert_true(r->allow_public_unauthenticated_access);

    /* the other keys of this fixture */
    assert_string_equal(c->authenticate_service_url.raw, "https://Authenticate.Example.com");
    assert_string_equal(c->authenticate_service_url.host, "authenticate.example.com");
    assert_string_equal(c->cookie_domain, "example.com");
    assert_string_equal(c->cookie_same_site, "strict");
    assert_int_equal(c->cookie_expire_s, 5400);
    assert_int_equal(c->timeout_idle_ms, 90000);
    assert_string_equal(c->databroker_storage_type, "redis");
    assert_string_equal(c->databroker_storage_connection_string, "redis://:pw@127.0.0.1:6379/0");
    assert_int_equal(c->databroker_service_urls.len, 2);
    assert_string_equal(c->databroker_service_urls.items[1], "https://broker-b:5443");
    assert_string_equal(c->idp_provider_url, "https://idp.example.com/realms/main");
    assert_json(c->jwt_claims_headers_map, "{\"X-Email\": \"email\", \"X-Groups\": \"groups\"}");
    assert_int_equal(c->jwt_claims_headers.len, 2);
    assert_json(c->idp_request_params, "{\"prompt\": \"login\"}");

    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_route_errors(void **state)
{
    const char *path = write_temp(BASE "policy:\n"
                                       "  - from: https://a.example.com\n"
                                       "    prefix: docs\n"
                                       "  - from: https://b.example.com:0\n"
                                       "  - from: https://c.example.com\n"
                                       "    path: /x\n"
                                       "    regex: ^/y\n"
                                       "    allowed_idp_claims: [a]\n"
                                       "    policy: allow\n"
                                       "  - just a string\n");
    cmn_config_diag_t d;
    char expect[256];

    assert_null(cmn_config_load(path, &d));
    snprintf(expect, sizeof(expect), "[%s:%d] policy[0].prefix: must start with \"/\"", path,
             BASE_LINES + 3);
    assert_true(has_msg(&d.errors, expect));
    assert_true(has_msg(&d.errors, "policy[1].from: has a bad port"));
    assert_true(has_msg(&d.errors, "policy[2]: at most one of prefix, path and regex"));
    assert_true(has_msg(&d.errors, "policy[2].allowed_idp_claims: must be a map"));
    assert_true(has_msg(&d.errors, "policy[2].policy: must be a rule or a list of rules"));
    assert_true(has_msg(&d.errors, "policy[3]: must be a map"));
    assert_int_equal(d.errors.len, 6);
    cmn_config_diag_clear(&d);
}

/* a billion-laughs policy is refused by the value budget, not by running out of memory */
static void test_alias_bomb(void **state)
{
    const char *path = write_temp(BASE "policy:\n"
                                       "  - from: https://a.example.com\n"
                                       "    policy:\n"
                                       "      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                                       "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                       "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                       "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                       "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                                       "      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                                       "      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n");
    cmn_config_diag_t d;

    assert_null(cmn_config_load(path, &d));
    assert_true(has_msg(&d.errors, "CMN_CONFIG_MAX_JSON_NODES"));
    cmn_config_diag_clear(&d);
}

static void test_durations(void **state)
{
    static const struct {
        const char *in;
        int ok;
        uint64_t ms;
    } cases[] = {
        {"0", 1, 0},
        {"90s", 1, 90000},
        {"14h", 1, 50400000},
        {"1h30m", 1, 5400000},
        {"500ms", 1, 500},
        {"1.5h", 1, 5400000},
        {"2m3s4ms", 1, 123004},
        {".5s", 1, 500},
        {"1h0m0s", 1, 3600000},
        {"0s", 1, 0},
        {"", 0, 0},
        {"10", 0, 0},
        {"10ns", 0, 0},
        {"10us", 0, 0},
        {"-5s", 0, 0},
        {"5 s", 0, 0},
        {"s", 0, 0},
        {"1.s", 1, 1000},
        {"1d", 0, 0},
        {"99999999999999999999h", 0, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ms = 12345;
        int rc = cmn_config_parse_duration(cases[i].in, &ms);

        if ((rc == 0) != cases[i].ok || (cases[i].ok && ms != cases[i].ms)) {
            fprintf(stderr, "duration \"%s\": rc %d ms %llu\n", cases[i].in, rc,
                    (unsigned long long)ms);
        }
        assert_int_equal(rc == 0, cases[i].ok);
        if (cases[i].ok) {
            assert_int_equal(ms, cases[i].ms);
        }
    }
}

static void test_urls(void **state)
{
    static const struct {
        const char *in;
        const char *host; /* NULL: refused */
        uint16_t port;
        const char *raw;
    } cases[] = {
        {"https://Example.COM", "example.com", 0, "https://Example.COM"},
        {"https://example.com/", "example.com", 0, "https://example.com"},
        {"HTTP://example.com:8080", "example.com", 8080, "HTTP://example.com:8080"},
        {"https://[::1]:443", "[::1]", 443, "https://[::1]:443"},
        {"https://*.example.com", "*.example.com", 0, "https://*.example.com"},
        {"https://*.Internal.*.example.com:1234", "*.internal.*.example.com", 1234,
         "https://*.Internal.*.example.com:1234"},
        {"https://a*.example.com", NULL, 0, NULL},
        {"https://example.*", NULL, 0, NULL},
        {"https://*", NULL, 0, NULL},
        {"https://**.example.com", NULL, 0, NULL},
        {"https://a..example.com", NULL, 0, NULL},
        {"https://example.com.", NULL, 0, NULL},
        {"https://example.com/path", NULL, 0, NULL},
        {"https://example.com?x=1", NULL, 0, NULL},
        {"https://example.com#f", NULL, 0, NULL},
        {"ftp://example.com", NULL, 0, NULL},
        {"example.com", NULL, 0, NULL},
        {"https://", NULL, 0, NULL},
        {"https://:443", NULL, 0, NULL},
        {"https://user@example.com", NULL, 0, NULL},
        {"https://example.com:0", NULL, 0, NULL},
        {"https://example.com:65536", NULL, 0, NULL},
        {"https://example.com:", NULL, 0, NULL},
        {"https://exa mple.com", NULL, 0, NULL},
        {"https://ex%41mple.com", NULL, 0, NULL},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cmn_config_url_t url;
        const char *err = NULL;
        int rc = cmn_config_url_parse(cases[i].in, &url, &err);

        if ((rc == 0) != (cases[i].host != NULL)) {
            fprintf(stderr, "url \"%s\": rc %d err %s\n", cases[i].in, rc, err);
        }
        assert_int_equal(rc == 0, cases[i].host != NULL);
        if (rc != 0) {
            assert_non_null(err);
            continue;
        }
        assert_string_equal(url.host, cases[i].host);
        assert_int_equal(url.port, cases[i].port);
        assert_string_equal(url.raw, cases[i].raw);
        cmn_config_url_clear(&url);
    }
}

static void test_values(void **state)
{
    cmn_config_diag_t d;
    cmn_config_t *c;

    c = load_ok(write_temp(BASE "cookie_secure: off\ncookie_http_only: No\nauthorize_workers: 8\n"
                                "log_level: WARN\ntrusted_proxies: [10.0.0.0/8, \"::1\"]\n"
                                "idp_provider_url: http://127.0.0.1:39900\n"
                                "idp_request_params: {}\n"),
                &d);
    assert_false(c->cookie_secure);
    assert_false(c->cookie_http_only);
    assert_int_equal(c->authorize_workers, 8);
    assert_string_equal(c->log_level, "warn");
    assert_int_equal(c->trusted_proxies.len, 2);
    assert_true(has_msg(&d.warnings, "idp_provider_url: plain http accepted"));
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    setenv("TRUSTED_PROXIES", "10.0.0.0/33", 1);
    assert_null(cmn_config_load(write_temp(BASE "idp_provider_url: http://idp.example.com\n"
                                                "cookie_name: \"bad;name\"\n"
                                                "log_level: chatty\n"
                                                "databroker_storage_type: redis\n"),
                                &d));
    assert_true(has_msg(&d.errors, "idp_provider_url: must be https"));
    assert_true(has_msg(&d.errors, "cookie_name: must be a cookie token"));
    assert_true(has_msg(&d.errors, "log_level: must be debug, info, warn or error"));
    assert_true(has_msg(&d.errors, "[env TRUSTED_PROXIES] trusted_proxies: not an address"));
    assert_true(has_msg(&d.errors, "databroker_storage_connection_string: required when"));
    assert_int_equal(d.errors.len, 5);
    cmn_config_diag_clear(&d);

    /* an environment map is JSON or name=value pairs */
    setenv("IDP_REQUEST_PARAMS", "prompt=login, hd=example.com", 1);
    unsetenv("TRUSTED_PROXIES");
    c = load_ok(write_temp(BASE), &d);
    assert_json(c->idp_request_params, "{\"prompt\": \"login\", \"hd\": \"example.com\"}");
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);
}

static void test_required(void **state)
{
    cmn_config_diag_t d;
    char expect[256];
    const char *path = write_temp("pomerium_debug: false\n");

    assert_null(cmn_config_load(path, &d));
    snprintf(expect, sizeof(expect), "[%s] cookie_secret: required", path);
    assert_true(has_msg(&d.errors, expect));
    assert_true(has_msg(&d.errors, "shared_secret: required"));
    assert_true(has_msg(&d.errors, "authenticate_service_url: required"));
    assert_true(has_msg(&d.errors, "idp_client_id: required"));
    cmn_config_diag_clear(&d);

    assert_null(cmn_config_load(FIXTURES "no-such-file.yaml", &d));
    assert_true(has_msg(&d.errors, "no-such-file.yaml] config: cannot open"));
    cmn_config_diag_clear(&d);

    assert_null(cmn_config_load(write_temp(BASE "policy:\n  - from: [\n"), &d));
    assert_true(has_msg(&d.errors, "] yaml: "));
    cmn_config_diag_clear(&d);

    assert_null(cmn_config_load(write_temp("- a\n- b\n"), &d));
    assert_true(has_msg(&d.errors, ":1] config: must be a map"));
    cmn_config_diag_clear(&d);

    setenv("POLICY", "W10=", 1);
    cmn_config_destroy(load_ok(write_temp(BASE), &d));
    assert_true(has_msg(&d.warnings, "[env POLICY] policy: routes come only from the file"));
    cmn_config_diag_clear(&d);
}

static void test_too_large(void **state)
{
    const char *path = write_temp("");
    cmn_config_diag_t d;
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fseek(fp, CMN_CONFIG_MAX_BYTES, SEEK_SET), 0);
    assert_int_equal(fputc('\n', fp), '\n');
    assert_int_equal(fclose(fp), 0);

    assert_null(cmn_config_load(path, &d));
    assert_true(has_msg(&d.errors, "CMN_CONFIG_MAX_BYTES"));
    cmn_config_diag_clear(&d);
}

static char *make_ec_pem(void)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem;
    long len;

    assert_non_null(pkey);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return pem;
}

static void test_signing_key(void **state)
{
    char *pem = make_ec_pem();
    unsigned char b64[4096];
    cmn_config_diag_t d;
    cmn_config_t *c;

    assert_true(EVP_EncodeBlock(b64, (const unsigned char *)pem, (int)strlen(pem)) > 0);
    setenv("SIGNING_KEY", (const char *)b64, 1);
    c = load_ok(FIXTURES "seed.yaml", &d);
    assert_string_equal(c->signing_key_pem, pem);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    setenv("SIGNING_KEY", pem, 1);
    c = load_ok(FIXTURES "seed.yaml", &d);
    assert_string_equal(c->signing_key_pem, pem);
    cmn_config_destroy(c);
    cmn_config_diag_clear(&d);

    /* base64 of something that is not a key */
    setenv("SIGNING_KEY", "aGVsbG8gd29ybGQ=", 1);
    assert_null(cmn_config_load(FIXTURES "seed.yaml", &d));
    assert_true(has_msg(&d.errors, "[env SIGNING_KEY] signing_key: is not a PEM private key"));
    assert_false(any_contains(&d, "aGVsbG8"));
    cmn_config_diag_clear(&d);
    free(pem);
}

/* --check and friends exit the process, so they run in a child */
static int run_from_args(const char *const *args, char *out, size_t outsize)
{
    int fds[2], status = -1;
    ssize_t n, total = 0;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[8];
        int argc = 0;

        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        for (argc = 0; args[argc] != NULL; argc++) {
            argv[argc] = (char *)args[argc];
        }
        argv[argc] = NULL;
        cmn_config_destroy(cmn_config_from_args(argc, argv, "authorize", NULL));
        _exit(42);
    }
    close(fds[1]);
    while ((size_t)total + 1 < outsize) {
        n = read(fds[0], out + total, outsize - 1 - (size_t)total);
        if (n <= 0) {
            break;
        }
        total += n;
    }
    out[total] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_from_args(void **state)
{
    static const char *const check_ok[] = {"x", "--check", "-c", FIXTURES "seed.yaml", NULL};
    static const char *const check_bad[] = {"x", "--config", FIXTURES "broken.yaml", "--check",
                                            NULL};
    static const char *const run_bad[] = {"x", "-c", FIXTURES "broken.yaml", NULL};
    static const char *const run_ok[] = {"x", "-c", FIXTURES "seed.yaml", NULL};
    static const char *const version[] = {"x", "--version", NULL};
    static const char *const unknown[] = {"x", "--frobnicate", NULL};
    static const char *const help[] = {"x", "--help", NULL};
    char out[16384];

    assert_int_equal(run_from_args(check_ok, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "config ok"));

    assert_int_equal(run_from_args(check_bad, out, sizeof(out)), 1);
    assert_null(strstr(out, "config ok"));
    assert_non_null(strstr(out, "error: ["));
    assert_non_null(strstr(out, "policy[1].from: required"));
    assert_non_null(strstr(out, "warning: ["));

    assert_int_equal(run_from_args(run_bad, out, sizeof(out)), 2);
    assert_int_equal(run_from_args(run_ok, out, sizeof(out)), 42);

    assert_int_equal(run_from_args(version, out, sizeof(out)), 0);
    assert_string_equal(out, "portcullis-authorize 0.1.0\n");

    assert_int_equal(run_from_args(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--check"));

    assert_int_equal(run_from_args(unknown, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage: portcullis-authorize"));
}

/* redis connection strings are checked at load; the message never shows the value (the
 * password is longer than the temp file suffix, so a random path cannot contain it) */
static void test_connection_strings(void **state)
{
    static const char *const good[] = {
        "redis://127.0.0.1:6379/0",  "redis://:Pw0rdSecret@127.0.0.1:6379/3",
        "redis://u:Pw0rdSecret@db.internal", "rediss://db.internal:6380",
        "redis://[::1]:6379",        "unix:///run/redis/redis.sock",
    };
    static const char *const bad[] = {
        "redis://:Pw0rdSecret@127.0.0.1:99999/0", "redis://u:Pw0rdSecret@host/abc",
        "redis://u:Pw0rdSecret@",                 "unix://",
        "redis://u:Pw0rdSecret@host:/0",          "redis://u:Pw0rdSecret@:6379",
    };
    char text[512];
    cmn_config_diag_t d = {0};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), BASE "databroker_storage_connection_string: \"%s\"\n",
                 good[i]);
        cmn_config_destroy(load_ok(write_temp(text), &d));
        cmn_config_diag_clear(&d);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), BASE "databroker_storage_connection_string: \"%s\"\n",
                 bad[i]);
        assert_null(cmn_config_load(write_temp(text), &d));
        assert_true(has_msg(&d.errors, "databroker_storage_connection_string"));
        assert_false(any_contains(&d, "Pw0rdSecret"));
        cmn_config_diag_clear(&d);
    }
}

/* a FIFO as the config file is refused at once instead of blocking the open */
static void test_fifo_config_refused(void **state)
{
    char path[] = "/tmp/portcullis-cfg-fifo-XXXXXX";
    cmn_config_diag_t d = {0};

    assert_non_null(mkdtemp(path));
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "%s/config.yaml", path);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10); /* a regression would block forever; let it fail instead */
    assert_null(cmn_config_load(fifo, &d));
    alarm(0);
    assert_true(has_msg(&d.errors, "not a regular file"));
    cmn_config_diag_clear(&d);
    unlink(fifo);
    rmdir(path);
}

/* deep nesting is refused in one cheap pass, with the line, before libyaml builds it */
static void test_deep_nesting_refused(void **state)
{
    size_t depth = 200000;
    char *text = malloc(sizeof(BASE) + 2 * depth + 64);
    cmn_config_diag_t d = {0};
    struct timespec t0, t1;

    assert_non_null(text);
    strcpy(text, BASE "jwt_claims_headers: ");
    size_t len = strlen(text);
    memset(text + len, '[', depth);
    memset(text + len + depth, ']', depth);
    strcpy(text + len + 2 * depth, "\n");
    const char *path = write_temp(text);
    free(text);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_null(cmn_config_load(path, &d));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(has_msg(&d.errors, "nested deeper than"));
    assert_true(has_msg(&d.errors, ":7]"));
    /* the whole 400 KB file, not quadratic: generous so a loaded CI machine still passes */
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    cmn_config_diag_clear(&d);
}

/* certificate files must be readable, and a certificate needs its key */
static void test_certificate_files_checked(void **state)
{
    cmn_config_diag_t d = {0};
    const char *key = write_temp("not really a key\n");
    char text[1024];

    assert_null(cmn_config_load(
        write_temp(BASE "certificate_authority_file: /nonexistent/ca.pem\n"), &d));
    assert_true(
        has_msg(&d.errors, "certificate_authority_file: cannot read \"/nonexistent/ca.pem\""));
    cmn_config_diag_clear(&d);

    snprintf(text, sizeof(text), BASE "certificate_key_file: %s\n", key);
    assert_null(cmn_config_load(write_temp(text), &d));
    assert_true(has_msg(&d.errors, "certificate_file and certificate_key_file go together"));
    cmn_config_diag_clear(&d);

    snprintf(text, sizeof(text), BASE "certificate_file: %s\ncertificate_key_file: %s\n", key,
             key);
    cmn_config_destroy(load_ok(write_temp(text), &d));
    cmn_config_diag_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_seed_loads, teardown),
        cmocka_unit_test_teardown(test_default_address, teardown),
        cmocka_unit_test_teardown(test_env_beats_file, teardown),
        cmocka_unit_test_teardown(test_env_file_precedence, teardown),
        cmocka_unit_test_teardown(test_yaml_secret_file, teardown),
        cmocka_unit_test_teardown(test_short_secret, teardown),
        cmocka_unit_test_teardown(test_bad_duration, teardown),
        cmocka_unit_test_teardown(test_many_errors, teardown),
        cmocka_unit_test_teardown(test_unknown_key_is_warning, teardown),
        cmocka_unit_test_teardown(test_routes, teardown),
        cmocka_unit_test_teardown(test_route_errors, teardown),
        cmocka_unit_test_teardown(test_alias_bomb, teardown),
        cmocka_unit_test_teardown(test_durations, teardown),
        cmocka_unit_test_teardown(test_urls, teardown),
        cmocka_unit_test_teardown(test_values, teardown),
        cmocka_unit_test_teardown(test_required, teardown),
        cmocka_unit_test_teardown(test_too_large, teardown),
        cmocka_unit_test_teardown(test_signing_key, teardown),
        cmocka_unit_test_teardown(test_from_args, teardown),
        cmocka_unit_test_teardown(test_connection_strings, teardown),
        cmocka_unit_test_teardown(test_fifo_config_refused, teardown),
        cmocka_unit_test_teardown(test_deep_nesting_refused, teardown),
        cmocka_unit_test_teardown(test_certificate_files_checked, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
