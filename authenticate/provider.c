/* SPDX-License-Identifier: MIT */
/* Provider discovery and the JWKS cache: single flight, retries with backoff, bounded refetch. */
#include "authenticate/provider.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "common/err.h"
#include "common/log.h"

const char authn_err_issuer_mismatch[] = "discovery issuer does not match idp_provider_url";
const char authn_err_discovery_field[] = "discovery document lacks a required endpoint";
const char authn_err_provider_status[] = "identity provider answered with an unexpected status";

#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define NUM_BACKOFFS 3
#define MIN_RETRY_GAP_S 1 /* a waiting request may restart discovery at most this often */

static const uint64_t backoff_ms[NUM_BACKOFFS] = {1000, 5000, 30000};

typedef struct st_waiter_t {
    struct st_waiter_t *next;
    authn_provider_cb cb;
    void *ctx;
} waiter_t;

typedef enum en_fetch_state_t {
    FETCH_IDLE = 0,
    FETCH_DISCOVERY,
    FETCH_JWKS,
} fetch_state_t;

struct st_authn_provider_t {
    h2o_loop_t *loop;
    const cmn_config_t *config;
    cmn_http_client_t *http;

    /* the last good documents */
    authn_discovery_t discovery;
    bool have_discovery;
    cmn_jwks_t *jwks;

    /* the fetch in flight and who waits for it */
    fetch_state_t state;
    bool refetch;              /* the JWKS fetch in flight is an unknown-kid refetch */
    authn_discovery_t pending; /* discovery being loaded, until its JWKS arrives */
    waiter_t *waiters;
    size_t num_waiters;

    /* retry */
    h2o_timeout_t backoff[NUM_BACKOFFS];
    h2o_timeout_entry_t retry;
    unsigned failures;
    uint64_t last_attempt;
    uint64_t last_refetch;
};

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static char *dup_string_field(const json_t *doc, const char *name)
{
    const char *s = json_string_value(json_object_get(doc, name));

    if (s == NULL || s[0] == '\0') {
        return NULL;
    }
    return strdup(s);
}

static char **parse_algs(const json_t *doc)
{
    const json_t *arr = json_object_get(doc, "id_token_signing_alg_values_supported");
    size_t i, n = 0;
    char **algs;

    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return NULL;
    }
    algs = calloc(AUTHN_DISCOVERY_MAX_ALGS + 1, sizeof(*algs));
    if (algs == NULL) {
        return NULL;
    }
    for (i = 0; i < json_array_size(arr) && n < AUTHN_DISCOVERY_MAX_ALGS; i++) {
        const char *alg = json_string_value(json_array_get(arr, i));
        if (alg != NULL) {
            algs[n++] = strdup(alg);
        }
    }
    return algs;
}

/* client_secret_post only when the provider lists it and not client_secret_basic (which is
 * the default when the list is absent, OpenID Connect Discovery 1.0 §3) */
static bool wants_post(const json_t *doc)
{
    const json_t *arr = json_object_get(doc, "token_endpoint_auth_methods_supported");
    bool post = false, basic = false;
    size_t i;

    if (!json_is_array(arr)) {
        return false;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        const char *m = json_string_value(json_array_get(arr, i));
        if (m != NULL && strcmp(m, "client_secret_post") == 0) {
            post = true;
        } else if (m != NULL && strcmp(m, "client_secret_basic") == 0) {
            basic = true;
        }
    }
    return post && !basic;
}

bool authn_issuer_matches(const char *a, const char *b)
{
    size_t alen = strlen(a), blen = strlen(b);

    if (alen > 0 && a[alen - 1] == '/') {
        alen--;
    }
    if (blen > 0 && b[blen - 1] == '/') {
        blen--;
    }
    return alen == blen && memcmp(a, b, alen) == 0;
}

void authn_discovery_clear(authn_discovery_t *d)
{
    size_t i;

    free(d->issuer);
    free(d->authorization_endpoint);
    free(d->token_endpoint);
    free(d->userinfo_endpoint);
    free(d->jwks_uri);
    free(d->end_session_endpoint);
    if (d->algs != NULL) {
        for (i = 0; d->algs[i] != NULL; i++) {
            free(d->algs[i]);
        }
        free(d->algs);
    }
    memset(d, 0, sizeof(*d));
}

int authn_discovery_parse(const char *json, size_t len, const char *expected_issuer,
                          authn_discovery_t *out, const char **err)
{
    json_t *doc = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (len > AUTHN_DISCOVERY_MAX_BYTES) {
        *err = cmn_err_too_large;
        goto Exit;
    }
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        *err = cmn_err_bad_json;
        goto Exit;
    }

    out->issuer = dup_string_field(doc, "issuer");
    if (out->issuer == NULL || !authn_issuer_matches(out->issuer, expected_issuer)) {
        *err = authn_err_issuer_mismatch;
        goto Exit;
    }

    out->authorization_endpoint = dup_string_field(doc, "authorization_endpoint");
    out->token_endpoint = dup_string_field(doc, "token_endpoint");
    out->jwks_uri = dup_string_field(doc, "jwks_uri");
    if (out->authorization_endpoint == NULL || out->token_endpoint == NULL ||
        out->jwks_uri == NULL) {
        *err = authn_err_discovery_field;
        goto Exit;
    }
    out->userinfo_endpoint = dup_string_field(doc, "userinfo_endpoint");
    out->end_session_endpoint = dup_string_field(doc, "end_session_endpoint");
    out->algs = parse_algs(doc);
    out->client_secret_post = wants_post(doc);
    ret = 0;

Exit:
    if (ret != 0) {
        authn_discovery_clear(out);
    }
    json_decref(doc);
    return ret;
}

/* tells every waiter the outcome; a waiter's callback may queue a new waiter, so detach first */
static void notify_waiters(authn_provider_t *p, const char *err)
{
    waiter_t *w = p->waiters;

    p->waiters = NULL;
    p->num_waiters = 0;
    while (w != NULL) {
        waiter_t *next = w->next;
        w->cb(w->ctx, err);
        free(w);
        w = next;
    }
}

static int add_waiter(authn_provider_t *p, authn_provider_cb cb, void *ctx)
{
    waiter_t *w;

    if (p->num_waiters >= AUTHN_PROVIDER_MAX_WAITERS) {
        return -1;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        return -1;
    }
    w->cb = cb;
    w->ctx = ctx;
    w->next = p->waiters;
    p->waiters = w;
    p->num_waiters++;
    return 0;
}

static void schedule_retry(authn_provider_t *p)
{
    unsigned i = p->failures < NUM_BACKOFFS ? p->failures : NUM_BACKOFFS - 1;

    if (p->failures < UINT32_MAX) {
        p->failures++;
    }
    if (h2o_timeout_is_linked(&p->retry)) {
        h2o_timeout_unlink(&p->retry);
    }
    h2o_timeout_link(p->loop, &p->backoff[i], &p->retry);
    cmn_log_warn(NULL, "identity provider not ready; retry in %us",
                 (unsigned)(backoff_ms[i] / 1000));
}

static void fetch_failed(authn_provider_t *p, const char *what, const char *err, int status)
{
    bool refetch = p->refetch;

    cmn_log_warn(NULL, "%s fetch from the identity provider failed: %s (status %d)", what, err,
                 status);
    authn_discovery_clear(&p->pending);
    p->state = FETCH_IDLE;
    p->refetch = false;
    if (!refetch) {
        schedule_retry(p);
    }
    notify_waiters(p, err);
}

static void on_jwks(void *ctx, const cmn_http_response_t *res)
{
    authn_provider_t *p = ctx;
    const char *err = res->err;
    cmn_jwks_t *jwks = NULL;

    if (err == NULL && res->status != 200) {
        err = authn_err_provider_status;
    }
    if (err == NULL) {
        jwks = cmn_jwks_parse(res->body.base, res->body.len, &err);
    }
    if (jwks == NULL) {
        fetch_failed(p, "jwks", err != NULL ? err : cmn_err_malformed, res->status);
        return;
    }

    cmn_jwks_destroy(p->jwks);
    p->jwks = jwks;
    if (!p->refetch) {
        authn_discovery_clear(&p->discovery);
        p->discovery = p->pending;
        memset(&p->pending, 0, sizeof(p->pending));
        if (!p->have_discovery) {
            cmn_log_info(NULL, "identity provider ready: issuer \"%s\", %zu keys",
                         p->discovery.issuer, cmn_jwks_count(jwks));
        }
        p->have_discovery = true;
    } else {
        cmn_log_info(NULL, "jwks refetched: %zu keys", cmn_jwks_count(jwks));
    }
    p->failures = 0;
    p->state = FETCH_IDLE;
    p->refetch = false;
    notify_waiters(p, NULL);
}

static void start_jwks(authn_provider_t *p, const char *uri)
{
    cmn_http_request_t req = {.method = "GET", .url = uri, .headers = {"Accept: application/json"}};

    p->state = FETCH_JWKS;
    if (cmn_http_client_send(p->http, &req, on_jwks, p) != 0) {
        p->state = FETCH_IDLE;
        fetch_failed(p, "jwks", cmn_err_unavailable, 0);
    }
}

static void on_discovery(void *ctx, const cmn_http_response_t *res)
{
    authn_provider_t *p = ctx;
    const char *err = res->err;

    if (err == NULL && res->status != 200) {
        err = authn_err_provider_status;
    }
    if (err == NULL) {
        /* sets err on failure */
        authn_discovery_parse(res->body.base, res->body.len, p->config->idp_provider_url,
                              &p->pending, &err);
    }
    if (err != NULL) {
        fetch_failed(p, "discovery", err, res->status);
        return;
    }
    start_jwks(p, p->pending.jwks_uri);
}

static void start_discovery(authn_provider_t *p)
{
    const char *base = p->config->idp_provider_url;
    size_t blen = strlen(base);
    char url[2048];
    cmn_http_request_t req = {.method = "GET", .url = url, .headers = {"Accept: application/json"}};

    if (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    if (blen + sizeof(DISCOVERY_PATH) > sizeof(url)) {
        cmn_log_error(NULL, "idp_provider_url is too long");
        return;
    }
    memcpy(url, base, blen);
    memcpy(url + blen, DISCOVERY_PATH, sizeof(DISCOVERY_PATH));

    p->last_attempt = now_s();
    p->state = FETCH_DISCOVERY;
    p->refetch = false;
    if (cmn_http_client_send(p->http, &req, on_discovery, p) != 0) {
        p->state = FETCH_IDLE;
        fetch_failed(p, "discovery", cmn_err_unavailable, 0);
    }
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    authn_provider_t *p = H2O_STRUCT_FROM_MEMBER(authn_provider_t, retry, entry);

    if (p->state == FETCH_IDLE && !p->have_discovery) {
        start_discovery(p);
    }
}

authn_provider_t *authn_provider_create(h2o_loop_t *loop, const cmn_config_t *config,
                                        cmn_http_client_t *http)
{
    authn_provider_t *p = calloc(1, sizeof(*p));
    size_t i;

    if (p == NULL) {
        return NULL;
    }
    p->loop = loop;
    p->config = config;
    p->http = http;
    for (i = 0; i < NUM_BACKOFFS; i++) {
        h2o_timeout_init(loop, &p->backoff[i], backoff_ms[i]);
    }
    p->retry.cb = on_retry;
    return p;
}

void authn_provider_destroy(authn_provider_t *p)
{
    size_t i;

    if (p == NULL) {
        return;
    }
    if (h2o_timeout_is_linked(&p->retry)) {
        h2o_timeout_unlink(&p->retry);
    }
    for (i = 0; i < NUM_BACKOFFS; i++) {
        h2o_timeout_dispose(p->loop, &p->backoff[i]);
    }
    notify_waiters(p, cmn_err_unavailable);
    authn_discovery_clear(&p->discovery);
    authn_discovery_clear(&p->pending);
    cmn_jwks_destroy(p->jwks);
    free(p);
}

void authn_provider_start(authn_provider_t *p)
{
    if (p->state == FETCH_IDLE) {
        start_discovery(p);
    }
}

bool authn_provider_ready(const authn_provider_t *p)
{
    return p->have_discovery && p->jwks != NULL;
}

const authn_discovery_t *authn_provider_discovery(const authn_provider_t *p)
{
    return authn_provider_ready(p) ? &p->discovery : NULL;
}

const cmn_jwks_t *authn_provider_jwks(const authn_provider_t *p)
{
    return p->jwks;
}

int authn_provider_wait(authn_provider_t *p, authn_provider_cb cb, void *ctx)
{
    if (p->state == FETCH_IDLE) {
        if (now_s() < p->last_attempt + MIN_RETRY_GAP_S) {
            return -1;
        }
        if (h2o_timeout_is_linked(&p->retry)) {
            h2o_timeout_unlink(&p->retry);
        }
        /* start before queueing, so that a fetch that cannot even start calls nobody */
        start_discovery(p);
        if (p->state == FETCH_IDLE) {
            return -1;
        }
    }
    return add_waiter(p, cb, ctx);
}

int authn_provider_refetch_jwks(authn_provider_t *p, authn_provider_cb cb, void *ctx)
{
    if (p->state == FETCH_JWKS && p->refetch) {
        return add_waiter(p, cb, ctx);
    }
    if (p->state != FETCH_IDLE || !p->have_discovery) {
        return -1;
    }
    if (p->last_refetch != 0 && now_s() < p->last_refetch + AUTHN_JWKS_REFETCH_MIN_S) {
        return -1;
    }
    p->last_refetch = now_s();
    p->refetch = true;
    start_jwks(p, p->discovery.jwks_uri);
    if (p->state == FETCH_IDLE) {
        return -1;
    }
    return add_waiter(p, cb, ctx);
}
