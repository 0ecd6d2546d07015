/* SPDX-License-Identifier: MIT */
/* The databroker's records API as seen by authorize and authenticate (HTTPS with mTLS). */
#include "common/broker_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <jansson.h>
#include "common/err.h"

#define BROKER_TYPE_MAX 64
#define BROKER_ID_MAX 1024
#define BROKER_CURSOR_MAX 1024
#define BROKER_EPOCH_MAX 128
#define BROKER_QUERY_LIMIT_MAX 1000
#define BROKER_WAIT_MAX_S 60
#define BROKER_CONNECT_TIMEOUT_MS 1000
#define BROKER_PATH_MAX (BROKER_TYPE_MAX * 3 + BROKER_ID_MAX * 3 + BROKER_CURSOR_MAX * 3 + 64)

struct st_cmn_broker_client_t {
    cmn_http_client_t *http;
    char **urls; /* databroker_service_urls without a trailing slash */
    size_t num_urls;
    size_t current; /* the URL that answered last; loop thread only */
};

/* one operation; tries the URLs in turn while a request never reaches a databroker */
typedef struct st_broker_op_t {
    cmn_broker_client_t *client;
    const char *method;
    char *path;
    char *body; /* JSON, or NULL */
    bool lines; /* the answer is NDJSON, handed over unparsed */
    size_t body_max; /* the longest answer taken (0: the HTTP client's default) */
    size_t tries;
    cmn_broker_cb cb;
    void *ctx;
} broker_op_t;

/* percent-encodes every byte but RFC 3986 unreserved ones; caller frees with curl_free */
static char *escape(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len == 0 || len > max) {
        return NULL;
    }
    return curl_easy_escape(NULL, s, (int)len);
}

/* "/v1/records/<type>/<id><suffix>" into a malloc'd string, or NULL on bad input */
static char *record_path(const char *type, const char *id, const char *suffix)
{
    char *t = escape(type, BROKER_TYPE_MAX);
    char *i = escape(id, BROKER_ID_MAX);
    char *path = NULL;

    if (t != NULL && i != NULL) {
        path = h2o_mem_alloc(BROKER_PATH_MAX);
        snprintf(path, BROKER_PATH_MAX, "/v1/records/%s/%s%s", t, i, suffix);
    }
    curl_free(t); /* NULL-safe */
    curl_free(i);
    return path;
}

static char *join_url(const char *base, const char *path)
{
    size_t len = strlen(base) + strlen(path) + 1;
    char *url = h2o_mem_alloc(len);

    snprintf(url, len, "%s%s", base, path);
    return url;
}

/* maps an HTTP outcome to the result contract's error, NULL for a 2xx */
static const char *answer_error(int status, const char *transport_err)
{
    if (transport_err != NULL) {
        return transport_err == cmn_err_too_large ? cmn_err_too_large : cmn_err_unavailable;
    }
    if (status == 404) {
        return cmn_err_not_found;
    }
    if (status >= 500 || status == 0) {
        return cmn_err_unavailable;
    }
    if (status < 200 || status >= 300) {
        return cmn_err_malformed;
    }
    return NULL;
}

/* the answer's JSON object: a 2xx body must be one */
static json_t *parse_answer(int status, const char *transport_err, h2o_iovec_t body,
                            const char **err)
{
    json_t *doc;

    *err = answer_error(status, transport_err);
    if (*err != NULL) {
        return NULL;
    }
    doc = json_loadb(body.base, body.len, JSON_REJECT_DUPLICATES, NULL);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        *err = cmn_err_bad_json;
        return NULL;
    }
    *err = NULL;
    return doc;
}

static void op_free(broker_op_t *op)
{
    free(op->path);
    free(op->body);
    free(op);
}

static int op_send(broker_op_t *op);

static void on_http_done(void *ctx, const cmn_http_response_t *res)
{
    broker_op_t *op = ctx;
    cmn_broker_client_t *client = op->client;
    cmn_broker_result_t result = {.status = res->status,
                                  .cause = res->err != NULL ? res->errbuf : NULL};

    /* nothing reached that databroker: the next URL may still answer */
    if (res->err != NULL && res->connect_failed && op->tries < client->num_urls) {
        client->current = (client->current + 1) % client->num_urls;
        if (op_send(op) == 0) {
            return;
        }
    }

    if (op->lines) {
        result.err = answer_error(res->status, res->err);
        result.lines = result.err == NULL ? res->body : h2o_iovec_init(NULL, 0);
    } else {
        result.record = parse_answer(res->status, res->err, res->body, &result.err);
    }
    op->cb(op->ctx, &result);
    json_decref(result.record); /* NULL-safe */
    op_free(op);
}

static int op_send(broker_op_t *op)
{
    cmn_broker_client_t *client = op->client;
    char *url = join_url(client->urls[client->current], op->path);
    cmn_http_request_t req = {.method = op->method, .url = url,
                              .body_max = op->body_max};
    int ret;

    req.headers[0] = "Accept: application/json";
    if (op->body != NULL) {
        req.headers[1] = "Content-Type: application/json";
        req.body = h2o_iovec_init(op->body, strlen(op->body));
    }
    op->tries++;
    ret = cmn_http_client_send(client->http, &req, on_http_done, op);
    free(url);
    return ret;
}

/* takes ownership of path and body; on -1 they are freed and cb is not called */
static int start_op(cmn_broker_client_t *c, const char *method, char *path, char *body,
                    bool lines, size_t body_max, cmn_broker_cb cb, void *ctx)
{
    broker_op_t *op;

    if (c == NULL || path == NULL || cb == NULL) {
        free(path);
        free(body);
        return -1;
    }
    op = h2o_mem_alloc(sizeof(*op));
    *op = (broker_op_t){.client = c, .method = method, .path = path, .body = body,
                        .lines = lines, .body_max = body_max, .cb = cb, .ctx = ctx};
    if (op_send(op) != 0) {
        op_free(op);
        return -1;
    }
    return 0;
}

static int start(cmn_broker_client_t *c, const char *method, char *path, char *body,
                 cmn_broker_cb cb, void *ctx)
{
    return start_op(c, method, path, body, false, 0, cb, ctx);
}

static char *strip_slash(const char *url)
{
    size_t len = strlen(url);

    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    return h2o_strdup(NULL, url, len).base;
}

void cmn_broker_tls_config(const cmn_config_t *config, cmn_http_client_config_t *out)
{
    *out = (cmn_http_client_config_t){
        .ca_file = config->certificate_authority_file,
        .ca_file_only = true,
        .client_cert_file = config->certificate_file,
        .client_key_file = config->certificate_key_file,
        /* a broker on loopback may run without TLS (tests, insecure local setups) */
        .allow_loopback_http = true,
        .connect_timeout_ms = BROKER_CONNECT_TIMEOUT_MS,
        .total_timeout_ms = CMN_BROKER_TIMEOUT_MS,
    };
}

cmn_broker_client_t *cmn_broker_client_create(h2o_loop_t *loop, const cmn_config_t *config)
{
    cmn_http_client_config_t tls;
    cmn_broker_client_t *c;

    if (config->databroker_service_urls.len == 0) {
        return NULL;
    }
    cmn_broker_tls_config(config, &tls);
    c = h2o_mem_alloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->http = cmn_http_client_create(loop, &tls);
    if (c->http == NULL) {
        free(c);
        return NULL;
    }
    c->num_urls = config->databroker_service_urls.len;
    c->urls = h2o_mem_alloc(sizeof(*c->urls) * c->num_urls);
    for (size_t i = 0; i < c->num_urls; i++) {
        c->urls[i] = strip_slash(config->databroker_service_urls.items[i]);
    }
    return c;
}

void cmn_broker_client_destroy(cmn_broker_client_t *client)
{
    if (client == NULL) {
        return;
    }
    /* pending operations are dropped with their transfers; free what they own */
    cmn_http_client_destroy(client->http);
    for (size_t i = 0; i < client->num_urls; i++) {
        free(client->urls[i]);
    }
    free(client->urls);
    free(client);
}

int cmn_broker_get(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                   void *ctx)
{
    return start(c, "GET", record_path(type, id, ""), NULL, cb, ctx);
}

bool cmn_broker_valid_id(const char *id)
{
    size_t len = strlen(id);

    if (len == 0 || len > CMN_BROKER_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i != len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._@:-", c) != NULL)) {
            return false;
        }
    }
    return true;
}

int cmn_broker_get_many(cmn_broker_client_t *c, const char *type, const char *const *ids,
                        size_t n, cmn_broker_cb cb, void *ctx)
{
    char *t = escape(type, BROKER_TYPE_MAX);
    json_t *doc = json_pack("{s:[]}", "ids");
    json_t *list = json_object_get(doc, "ids");
    char *path = NULL;
    char *body = NULL;
    bool ok = t != NULL && list != NULL && n > 0 && n <= CMN_BROKER_GET_MANY_MAX;

    for (size_t i = 0; ok && i < n; i++) {
        ok = json_array_append_new(list, json_string(ids[i])) == 0;
    }
    if (ok) {
        path = h2o_mem_alloc(BROKER_PATH_MAX);
        snprintf(path, BROKER_PATH_MAX, "/v1/records/%s", t);
        body = json_dumps(doc, JSON_COMPACT);
    }
    curl_free(t);
    json_decref(doc);
    if (body == NULL) {
        free(path);
        path = NULL;
    }
    return start_op(c, "POST", path, body, true, CMN_BROKER_GET_MANY_BODY_MAX, cb, ctx);
}

int cmn_broker_put(cmn_broker_client_t *c, const char *type, const char *id, const json_t *data,
                   uint64_t ttl_s, cmn_broker_cb cb, void *ctx)
{
    json_t *doc;
    char *body;

    if (data == NULL || ttl_s > INT64_MAX) {
        return -1;
    }
    doc = json_pack("{s:O,s:I}", "data", (json_t *)data, "ttl", (json_int_t)ttl_s);
    if (doc == NULL) {
        return -1;
    }
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (body == NULL) {
        return -1;
    }
    return start(c, "PUT", record_path(type, id, ""), body, cb, ctx);
}

int cmn_broker_delete(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                      void *ctx)
{
    return start(c, "DELETE", record_path(type, id, ""), NULL, cb, ctx);
}

int cmn_broker_take(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                    void *ctx)
{
    return start(c, "POST", record_path(type, id, "/take"), h2o_strdup(NULL, "{}", 2).base, cb,
                 ctx);
}

static size_t query_body_max(unsigned limit)
{
    size_t max = (size_t)limit * CMN_BROKER_RECORD_MAX;

    return max < CMN_BROKER_QUERY_BODY_MAX ? max : CMN_BROKER_QUERY_BODY_MAX;
}

int cmn_broker_query(cmn_broker_client_t *c, const char *type, const char *cursor, unsigned limit,
                     cmn_broker_cb cb, void *ctx)
{
    char *t = escape(type, BROKER_TYPE_MAX);
    char *cur = cursor != NULL && cursor[0] != '\0' ? escape(cursor, BROKER_CURSOR_MAX) : NULL;
    char *path = NULL;

    if (t != NULL && (cursor == NULL || cursor[0] == '\0' || cur != NULL) && limit != 0 &&
        limit <= BROKER_QUERY_LIMIT_MAX) {
        path = h2o_mem_alloc(BROKER_PATH_MAX);
        snprintf(path, BROKER_PATH_MAX, "/v1/records/%s?limit=%u%s%s", t, limit,
                 cur != NULL ? "&cursor=" : "", cur != NULL ? cur : "");
    }
    curl_free(t);
    curl_free(cur);
    /* a page holds up to `limit` records of up to CMN_BROKER_RECORD_MAX each */
    return start_op(c, "GET", path, NULL, false, query_body_max(limit), cb, ctx);
}

static char *changes_path(uint64_t after, const char *epoch, unsigned wait_s)
{
    char *e = epoch != NULL && epoch[0] != '\0' ? escape(epoch, BROKER_EPOCH_MAX) : NULL;
    char *path = NULL;

    if (epoch == NULL || epoch[0] == '\0' || e != NULL) {
        path = h2o_mem_alloc(BROKER_PATH_MAX);
        snprintf(path, BROKER_PATH_MAX, "/v1/changes?after=%" PRIu64 "%s%s&wait=%u", after,
                 e != NULL ? "&epoch=" : "", e != NULL ? e : "", wait_s);
    }
    curl_free(e);
    return path;
}

json_t *cmn_broker_changes_blocking(const cmn_config_t *config, uint64_t after,
                                    const char *epoch, unsigned wait_s, const char **err)
{
    cmn_http_client_config_t tls;
    cmn_http_response_t res = {0};
    char *path;
    json_t *doc = NULL;

    if (wait_s > BROKER_WAIT_MAX_S) {
        wait_s = BROKER_WAIT_MAX_S;
    }
    path = changes_path(after, epoch, wait_s);
    if (path == NULL || config->databroker_service_urls.len == 0) {
        free(path);
        *err = cmn_err_malformed;
        return NULL;
    }
    cmn_broker_tls_config(config, &tls);

    /* each URL in turn until one is reached */
    for (size_t i = 0; i < config->databroker_service_urls.len; i++) {
        char *base = strip_slash(config->databroker_service_urls.items[i]);
        char *url = join_url(base, path);
        cmn_http_request_t req = {.url = url, .total_timeout_ms = (wait_s + 5) * 1000,
                                  .headers = {"Accept: application/json"}};
        cmn_http_response_clear(&res);
        cmn_http_fetch_blocking(&tls, &req, &res);
        free(url);
        free(base);
        if (res.err == NULL || !res.connect_failed) {
            break;
        }
    }

    doc = parse_answer(res.status, res.err, res.body, err);
    cmn_http_response_clear(&res);
    free(path);
    return doc;
}
