/* SPDX-License-Identifier: MIT */
/* Runs every case of tests/data/policy-cases.json through config, routes, target and policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "authorize/policy.h"
#include "authorize/ppl.h"
#include "authorize/route.h"
#include "authorize/target.h"

#define CASES_FILE PORTCULLIS_SOURCE_DIR "/tests/data/policy-cases.json"
#define MAX_REASONS_TEXT 512

/* the global settings any config needs; the case's routes are appended as JSON (which is YAML) */
static const char config_head[] =
    "cookie_secret: YVFTMIfW8yBJw+a6sYwdW8rHbU+IAAV/SUkCTg9Jtpo=\n"
    "shared_secret: 80ldlrU2d7w+wVpKNfevk6fmb8otEx6CqOfshj2LwhQ=\n"
    "idp_provider: oidc\n"
    "idp_provider_url: https://idp.example.com/realms/main\n"
    "idp_client_id: portcullis\n"
    "idp_client_secret: s3cret\n"
    "authenticate_service_url: https://authenticate.example.com\n";

/* what one case came to: an HTTP status, or -1 when the config was refused */
typedef struct st_outcome_t {
    int status;
    const char *reasons[AUTHZ_MAX_REASONS];
    size_t num_reasons;
    char detail[1024]; /* the first config error, for the failure line */
} outcome_t;

#define STATUS_CONFIG_ERROR (-1)

typedef struct st_loaded_t {
    char path[64];
    cmn_config_t *config;
    authz_routes_t *routes;
} loaded_t;

static void loaded_clear(loaded_t *l)
{
    authz_routes_destroy(l->routes);
    cmn_config_destroy(l->config);
    if (l->path[0] != '\0') {
        unlink(l->path);
    }
}

static void write_config(loaded_t *l, const json_t *routes)
{
    char *text = json_dumps(routes, JSON_ENCODE_ANY);
    FILE *fp;
    int fd;

    snprintf(l->path, sizeof(l->path), "/tmp/portcullis-cases-XXXXXX");
    fd = mkstemp(l->path);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_non_null(text);
    fprintf(fp, "%sroutes: %s\n", config_head, text);
    assert_int_equal(fclose(fp), 0);
    free(text);
}

/* every message must say where: "[<file>:<line>] <key>: ..." */
static void check_error_location(const char *path, const char *msg)
{
    char prefix[80];

    snprintf(prefix, sizeof(prefix), "[%s:", path);
    if (strncmp(msg, prefix, strlen(prefix)) != 0) {
        fail_msg("config error without file and line: %s", msg);
    }
}

/* loads the config as the daemon does, then compiles the route table and its policies */
static int load(loaded_t *l, const json_t *routes, outcome_t *out)
{
    cmn_config_diag_t diag;
    cmn_strlist_t errors = {NULL, 0};

    write_config(l, routes);
    l->config = cmn_config_load(l->path, &diag);
    if (l->config == NULL) {
        snprintf(out->detail, sizeof(out->detail), "%s",
                 diag.errors.len > 0 ? diag.errors.items[0] : "?");
        for (size_t i = 0; i < diag.errors.len; i++) {
            check_error_location(l->path, diag.errors.items[i]);
        }
        cmn_config_diag_clear(&diag);
        return -1;
    }
    cmn_config_diag_clear(&diag);

    /* the route table compiles every route's policy too */
    l->routes = authz_routes_compile(l->config, &errors);
    if (l->routes == NULL) {
        snprintf(out->detail, sizeof(out->detail), "%s", errors.len > 0 ? errors.items[0] : "?");
        for (size_t i = 0; i < errors.len; i++) {
            check_error_location(l->path, errors.items[i]);
            assert_non_null(strstr(errors.items[i], "] routes["));
        }
    }
    for (size_t i = 0; i < errors.len; i++) {
        free(errors.items[i]);
    }
    free(errors.items);
    return l->routes != NULL ? 0 : -1;
}

static int64_t parse_time(const json_t *v)
{
    int64_t t = 0;

    assert_true(json_is_string(v));
    assert_int_equal(ppl_parse_iso8601(json_string_value(v), &t), 0);
    return t;
}

/* a request header, by case-insensitive name; NULL when absent */
static const char *header(const json_t *request, const char *name)
{
    const json_t *headers = json_object_get(request, "headers");
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)headers, key, v) {
        if (strcasecmp(key, name) == 0 && json_is_string(v)) {
            return json_string_value(v);
        }
    }
    return NULL;
}

static bool has_header(const json_t *request, const char *name)
{
    const char *v = header(request, name);

    return v != NULL && v[0] != '\0';
}

static void client_ip(const json_t *request, authz_policy_input_t *in)
{
    const json_t *ip = json_object_get(request, "client_ip");
    struct sockaddr_in *sin = (struct sockaddr_in *)&in->client_ip;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&in->client_ip;

    if (!json_is_string(ip)) {
        return;
    }
    in->has_client_ip = true;
    if (inet_pton(AF_INET, json_string_value(ip), &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, json_string_value(ip), &sin6->sin6_addr), 1);
    sin6->sin6_family = AF_INET6;
}

/*
 * The case's flattened claims ("org.team": [...]) as the claims object of a session record.
 * `nested` false keeps the literal keys; true rebuilds the nesting the IdP sent
 * ({"org": {"team": [...]}}). Claim lookup tries the literal key first and then the name split
 * on '.' and '/', so both shapes must decide the same; every case runs with both.
 */
static json_t *claims_object(const json_t *flat, bool nested)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)flat, key, v) {
        json_t *cur = out;
        const char *p = key, *dot;
        char seg[256];
        while (nested && (dot = strchr(p, '.')) != NULL && (size_t)(dot - p) < sizeof(seg)) {
            json_t *next;
            snprintf(seg, sizeof(seg), "%.*s", (int)(dot - p), p);
            next = json_object_get(cur, seg);
            if (next == NULL) {
                next = json_object();
                json_object_set_new(cur, seg, next);
            }
            if (!json_is_object(next)) {
                break;
            }
            cur = next;
            p = dot + 1;
        }
        json_object_set(cur, p, v);
    }
    return out;
}

/* the session record authenticate would have written, parsed the way authorize reads it */
static cmn_session_t *make_session(const json_t *spec, int64_t now, bool nested)
{
    json_t *data;
    const char *err = NULL;
    cmn_session_t *s;
    int64_t expiry = now + 3600;

    if (!json_is_object(spec)) {
        return NULL;
    }
    if (json_is_string(json_object_get(spec, "expires_at"))) {
        expiry = parse_time(json_object_get(spec, "expires_at"));
    }
    data = json_pack("{s:O, s:O, s:b, s:O, s:o, s:I, s:I}", "user_id",
                     json_object_get(spec, "user_id"), "email", json_object_get(spec, "email"),
                     "email_verified", 1, "groups", json_object_get(spec, "groups"), "claims",
                     claims_object(json_object_get(spec, "claims"), nested), "issued",
                     (json_int_t)(now - 60 < expiry ? now - 60 : expiry), "expiry",
                     (json_int_t)expiry);
    assert_non_null(data);
    s = cmn_session_from_json("case-session", data, &err);
    json_decref(data);
    assert_non_null(s);

    /* verify treats an expired session as none */
    if ((int64_t)s->expiry <= now) {
        cmn_session_destroy(s);
        return NULL;
    }
    return s;
}

static int status_of(authz_verdict_t v)
{
    switch (v) {
    case AUTHZ_VERDICT_ALLOW:
        return 200;
    case AUTHZ_VERDICT_UNAUTHENTICATED:
        return 401;
    case AUTHZ_VERDICT_UNAVAILABLE:
        return 503;
    default:
        return 403;
    }
}

static void run_case(const json_t *c, bool nested, outcome_t *out)
{
    const json_t *request = json_object_get(c, "request");
    const json_t *routes = json_object_get(c, "routes");
    const char *url = json_string_value(json_object_get(request, "url"));
    const char *method = json_string_value(json_object_get(request, "method"));
    json_t *one = NULL;
    loaded_t l;
    h2o_mem_pool_t pool;
    authz_target_t target;
    const char *err = NULL;
    const authz_route_t *route;
    cmn_session_t *session;
    authz_policy_input_t in;
    authz_decision_t d;
    int64_t now = json_is_string(json_object_get(c, "now"))
                      ? parse_time(json_object_get(c, "now"))
                      : (int64_t)time(NULL);

    memset(out, 0, sizeof(*out));
    memset(&l, 0, sizeof(l));
    if (routes == NULL) {
        one = json_pack("[O]", json_object_get(c, "route"));
        routes = one;
    }
    h2o_mem_init_pool(&pool);

    if (load(&l, routes, out) != 0) {
        out->status = STATUS_CONFIG_ERROR;
        goto Exit;
    }
    if (authz_target_parse(&pool, h2o_iovec_init(url, strlen(url)), &target, &err) != 0) {
        out->status = 400;
        snprintf(out->detail, sizeof(out->detail), "%s", err);
        goto Exit;
    }
    route = authz_routes_match(l.routes, target.host, target.port, target.path.base);
    if (route == NULL) {
        out->status = 403;
        out->reasons[out->num_reasons++] = "route-not-found";
        goto Exit;
    }

    memset(&in, 0, sizeof(in));
    in.method = h2o_iovec_init(method, strlen(method));
    in.path = target.path;
    in.has_origin = has_header(request, "Origin");
    in.has_preflight_method = has_header(request, "Access-Control-Request-Method");
    client_ip(request, &in);
    in.now = (time_t)now;

    session = make_session(json_object_get(c, "session"), now, nested);
    authz_policy_evaluate(route->policy, &in, session, &d);
    cmn_session_destroy(session);
    out->status = status_of(d.verdict);
    memcpy(out->reasons, d.reasons, sizeof(d.reasons));
    out->num_reasons = d.num_reasons;

Exit:
    h2o_mem_clear_pool(&pool);
    loaded_clear(&l);
    json_decref(one);
}

static int expected_status(const json_t *c)
{
    const json_t *v = json_object_get(c, "portcullis_status");

    if (json_is_string(v) && strcmp(json_string_value(v), "config_error") == 0) {
        return STATUS_CONFIG_ERROR;
    }
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

static bool reasons_match(const json_t *want, const outcome_t *got)
{
    size_t i, j;
    const json_t *w;

    if (!json_is_array(want)) {
        return true; /* the case gives none */
    }
    if (json_array_size(want) != got->num_reasons) {
        return false;
    }
    json_array_foreach(want, i, w) {
        for (j = 0; j < got->num_reasons && strcmp(got->reasons[j], json_string_value(w)) != 0;
             j++) {
        }
        if (j == got->num_reasons) {
            return false;
        }
    }
    return true;
}

static void reasons_text(const outcome_t *got, char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < got->num_reasons && pos < len; i++) {
        int n = snprintf(buf + pos, len - pos, "%s%s", i > 0 ? "," : "", got->reasons[i]);
        pos += n > 0 ? (size_t)n : 0;
    }
}

static void test_all_cases(void **state)
{
    json_error_t jerr;
    json_t *cases = json_load_file(CASES_FILE, 0, &jerr);
    const json_t *c;
    size_t i, passed = 0, failed = 0;

    if (cases == NULL) {
        fail_msg("cannot read %s: %s", CASES_FILE, jerr.text);
    }
    assert_true(json_is_array(cases));
    assert_true(json_array_size(cases) > 100);

    json_array_foreach(cases, i, c) {
        const json_t *expect = json_object_get(c, "expect");
        int want = expected_status(c);
        bool ok = true;
        outcome_t got[2];
        char *wanted_reasons;
        char text[MAX_REASONS_TEXT];

        for (int nested = 0; nested < 2; nested++) {
            run_case(c, nested == 1, &got[nested]);
            ok = ok && got[nested].status == want &&
                 (want == STATUS_CONFIG_ERROR ||
                  reasons_match(json_object_get(expect, "reasons"), &got[nested]));
        }
        ok = ok && got[0].status == got[1].status;
        if (ok && getenv("POLICY_CASES_VERBOSE") != NULL) {
            reasons_text(&got[0], text, sizeof(text));
            printf("ok   %s: %d [%s] %s\n", json_string_value(json_object_get(c, "id")),
                   got[0].status, text, got[0].detail);
        }
        if (ok) {
            passed++;
            continue;
        }
        failed++;
        reasons_text(&got[0], text, sizeof(text));
        wanted_reasons = json_dumps(json_object_get(expect, "reasons"), JSON_ENCODE_ANY);
        printf("FAIL %s: expected %d %s, got %d [%s] (nested claims: %d) %s\n",
               json_string_value(json_object_get(c, "id")), want,
               wanted_reasons != NULL ? wanted_reasons : "", got[0].status, text, got[1].status,
               got[0].detail);
        free(wanted_reasons);
    }
    printf("policy cases: %zu passed, %zu failed, %zu in all\n", passed, failed,
           json_array_size(cases));
    json_decref(cases);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_cases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
