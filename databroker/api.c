/* SPDX-License-Identifier: MIT */
/* The databroker's HTTP API: records, queries, the change long poll, health. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/broker_client.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "common/url.h"
#include "databroker/api.h"

#define SEGMENTS_MAX 5
#define SEGMENT_MAX (BROKER_ID_MAX * 3) /* an id, percent-encoded */
#define PARAM_VALUE_MAX BROKER_CURSOR_MAX

struct st_broker_api_t {
    h2o_loop_t *loop;
    broker_store_t *store;
    h2o_timeout_t waits[BROKER_WAIT_MAX_S]; /* waits[i] lasts i + 1 seconds */
    size_t num_polls;
};

/* one record operation waiting for the store */
typedef struct st_rec_op_t {
    cmn_req_guard_t *guard;
    const char *reqid;
    const char *what; /* "get", "put", ... for the log */
    char type[BROKER_TYPE_MAX + 1];
    char id[BROKER_ID_MAX + 1];
} rec_op_t;

/* one long poll of /v1/changes */
typedef struct st_poll_t {
    broker_waiter_t waiter;
    h2o_timeout_entry_t timeout;
    broker_api_t *api;
    cmn_req_guard_t *guard;
    const char *reqid;
    uint64_t after;
    uint64_t wait; /* seconds, 0 = answer at once */
    bool has_epoch;
    char epoch[BROKER_EPOCH_MAX + 1];
} poll_t;

/* responses */

static void send_json_obj(h2o_req_t *req, int status, json_t *obj)
{
    char *text = obj == NULL ? NULL : json_dumps(obj, JSON_COMPACT);

    if (text == NULL) {
        cmn_send_json(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    cmn_send_json(req, status, text);
    free(text);
}

static void send_error(h2o_req_t *req, int status, const char *message)
{
    json_t *obj = json_pack("{s:s}", "error", message);

    send_json_obj(req, status, obj);
    json_decref(obj);
}

/* the status and message for a store error; logs the ones that are ours to worry about */
static void send_store_error(h2o_req_t *req, const char *reqid, const char *what, const char *err)
{
    if (err == cmn_err_not_found) {
        send_error(req, 404, "not found");
    } else if (err == cmn_err_malformed) {
        send_error(req, 400, "bad cursor");
    } else if (err == cmn_err_unavailable || err == cmn_err_timeout) {
        cmn_log_warn(reqid, "%s: store unavailable: %s", what, err);
        send_error(req, 503, "store unavailable");
    } else if (err == cmn_err_too_large) {
        cmn_log_warn(reqid, "%s: store full", what);
        send_error(req, 507, "store full");
    } else {
        cmn_log_error(reqid, "%s: store failed: %s", what, err);
        send_error(req, 500, "internal error");
    }
}

/* input checks */

static bool valid_type(const char *s)
{
    size_t len = strlen(s);
    size_t i;

    if (len == 0 || len > BROKER_TYPE_MAX) {
        return false;
    }
    for (i = 0; i != len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* percent-decodes s[0..len) into out (NUL-terminated); -1 when malformed, too long or has NUL */
static int pct_decode(const char *s, size_t len, char *out, size_t outsize)
{
    size_t o = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi;
            int lo;
            if (len - i < 3) {
                return -1;
            }
            hi = cmn_hex_value(s[i + 1]);
            lo = cmn_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= outsize) {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* strict decimal, at most 20 digits, no overflow */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (s[0] == '\0' || strlen(s) > 20) {
        return -1;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* the decoded value of query parameter `name`: 1 found, 0 absent, -1 malformed or too long */
static int query_param(h2o_req_t *req, const char *name, char *out, size_t outsize)
{
    const char *p;
    const char *end;
    size_t namelen = strlen(name);

    if (req->query_at == SIZE_MAX) {
        return 0;
    }
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp == NULL ? end : amp;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq == NULL ? stop : eq;
        if ((size_t)(kend - p) == namelen && memcmp(p, name, namelen) == 0) {
            const char *v = eq == NULL ? stop : eq + 1;
            return pct_decode(v, (size_t)(stop - v), out, outsize) == 0 ? 1 : -1;
        }
        p = stop + 1;
    }
    return 0;
}

/* splits the path (before '?') into decoded segments; returns their count or -1 */
static int split_path(h2o_req_t *req, char seg[SEGMENTS_MAX][SEGMENT_MAX + 1])
{
    size_t len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    const char *p = req->path.base;
    const char *end = p + len;
    int n = 0;

    if (len == 0 || *p != '/') {
        return -1;
    }
    p++;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash == NULL ? end : slash;
        if (n == SEGMENTS_MAX || (size_t)(stop - p) > SEGMENT_MAX ||
            pct_decode(p, (size_t)(stop - p), seg[n], SEGMENT_MAX + 1) != 0) {
            return -1;
        }
        n++;
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    return n;
}

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void send_405(h2o_req_t *req, const char *allow)
{
    cmn_add_header(req, "allow", h2o_iovec_init(allow, strlen(allow)));
    send_error(req, 405, "method not allowed");
}

/* record operations */

static rec_op_t *rec_op_new(h2o_req_t *req, const char *what, const char *type, const char *id)
{
    rec_op_t *op = h2o_mem_alloc(sizeof(*op));

    op->guard = cmn_req_guard_create(req);
    op->reqid = cmn_req_id(req);
    op->what = what;
    snprintf(op->type, sizeof(op->type), "%s", type);
    snprintf(op->id, sizeof(op->id), "%s", id == NULL ? "" : id);
    return op;
}

static void on_rec_done(void *ctx, const broker_result_t *res)
{
    rec_op_t *op = ctx;
    h2o_req_t *req = op->guard->req;
    char fp[32];

    if (req == NULL) {
        goto Exit; /* the client went away */
    }
    /* ids can be bearer-like (session and handoff ids): log a fingerprint only */
    cmn_log_debug(op->reqid, "%s %s/%s: %s", op->what, op->type,
                  cmn_redact(op->id, strlen(op->id), fp, sizeof(fp)),
                  res->err == NULL ? "ok" : res->err);

    if (res->err != NULL) {
        send_store_error(req, op->reqid, op->what, res->err);
    } else if (res->ndjson.base != NULL) {
        cmn_send_ndjson(req, 200, res->ndjson);
    } else if (res->records != NULL) {
        json_t *page = json_pack("{s:O, s:s?}", "records", res->records, "cursor", res->cursor);
        send_json_obj(req, 200, page);
        json_decref(page);
    } else if (res->record != NULL) {
        send_json_obj(req, 200, res->record);
    } else {
        json_t *obj = json_pack("{s:I}", "version", (json_int_t)res->version);
        send_json_obj(req, 200, obj);
        json_decref(obj);
    }

Exit:
    cmn_req_guard_release(op->guard);
    free(op);
}

/* {"data": object, "ttl": 1..BROKER_TTL_MAX (optional; 0 or null = no expiry)} */
static const char *parse_put_body(h2o_req_t *req, json_t **root, json_t **data, uint64_t *ttl)
{
    json_t *jttl;

    *ttl = 0;
    if (req->entity.base == NULL || req->entity.len == 0) {
        return "missing body";
    }
    *root = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    if (*root == NULL || !json_is_object(*root)) {
        return "body is not a JSON object";
    }
    *data = json_object_get(*root, "data");
    if (!json_is_object(*data)) {
        return "\"data\" must be an object";
    }
    jttl = json_object_get(*root, "ttl");
    if (jttl == NULL || json_is_null(jttl)) {
        return NULL;
    }
    if (!json_is_integer(jttl) || json_integer_value(jttl) < 0 ||
        json_integer_value(jttl) > BROKER_TTL_MAX) {
        return "\"ttl\" must be an integer number of seconds from 1 to 31536000";
    }
    *ttl = (uint64_t)json_integer_value(jttl);
    return NULL;
}

static void handle_put(broker_api_t *api, h2o_req_t *req, const char *type, const char *id)
{
    json_t *root = NULL;
    json_t *data = NULL;
    uint64_t ttl;
    const char *bad;

    if (req->entity.len > BROKER_BODY_MAX) {
        send_error(req, 413, "body larger than 256 KiB");
        return;
    }
    bad = parse_put_body(req, &root, &data, &ttl);
    if (bad != NULL) {
        send_error(req, 400, bad);
    } else {
        api->store->ops->put(api->store, type, id, data, ttl, on_rec_done,
                             rec_op_new(req, "put", type, id));
    }
    json_decref(root);
}

static void handle_query(broker_api_t *api, h2o_req_t *req, const char *type)
{
    char value[PARAM_VALUE_MAX + 1];
    char cursor[PARAM_VALUE_MAX + 1];
    uint64_t limit = BROKER_QUERY_LIMIT_DEFAULT;
    int rc;

    rc = query_param(req, "limit", value, sizeof(value));
    if (rc < 0 || (rc == 1 && (parse_u64(value, &limit) != 0 || limit == 0 ||
                               limit > BROKER_QUERY_LIMIT_MAX))) {
        send_error(req, 400, "limit must be an integer from 1 to 1000");
        return;
    }
    rc = query_param(req, "cursor", cursor, sizeof(cursor));
    if (rc < 0) {
        send_error(req, 400, "bad cursor");
        return;
    }
    api->store->ops->query(api->store, type, rc == 1 && cursor[0] != '\0' ? cursor : NULL,
                           (unsigned)limit, on_rec_done, rec_op_new(req, "query", type, NULL));
}

/*
 * POST /v1/records/{type} {"ids": [id, ...]}: the records of those that exist, one per line
 * (application/x-ndjson), one store round trip for up to BROKER_GET_MANY_MAX of them
 * (authorize's cold session reads)
 */
static void handle_get_many(broker_api_t *api, h2o_req_t *req, const char *type)
{
    const char *ids[BROKER_GET_MANY_MAX];
    json_t *root = NULL;
    json_t *list;
    const char *bad = NULL;
    size_t n = 0;

    if (req->entity.len > BROKER_BODY_MAX) {
        send_error(req, 413, "body larger than 256 KiB");
        return;
    }
    if (req->entity.base != NULL && req->entity.len > 0) {
        root = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    }
    list = json_object_get(root, "ids");
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > BROKER_GET_MANY_MAX) {
        bad = "body must be {\"ids\": [1 to 64 ids]}";
    }
    for (size_t i = 0; bad == NULL && i < json_array_size(list); i++) {
        const char *id = json_string_value(json_array_get(list, i));
        bool seen = false;
        if (id == NULL || !cmn_broker_valid_id(id)) {
            bad = "bad id in \"ids\": want [A-Za-z0-9._@:-]{1,128}";
            break;
        }
        /* an id asked twice is read and answered once */
        for (size_t j = 0; j < n && !seen; j++) {
            seen = strcmp(ids[j], id) == 0;
        }
        if (!seen) {
            ids[n++] = id;
        }
    }
    if (bad != NULL) {
        send_error(req, 400, bad);
    } else {
        api->store->ops->get_many(api->store, type, ids, n, on_rec_done,
                                  rec_op_new(req, "get-many", type, NULL));
    }
    json_decref(root);
}

/* /v1/records/{type}[/{id}[/take]] */
static void handle_records(broker_api_t *api, h2o_req_t *req, char seg[][SEGMENT_MAX + 1],
                           int n)
{
    const char *type = seg[2];
    const char *id = n >= 4 ? seg[3] : NULL;
    broker_store_t *s = api->store;

    if (!valid_type(type)) {
        send_error(req, 400, "bad type: want [a-z0-9_-]{1,32}");
        return;
    }
    if (id != NULL && !cmn_broker_valid_id(id)) {
        send_error(req, 400, "bad id: want [A-Za-z0-9._@:-]{1,128}");
        return;
    }
    if (n == 5 && strcmp(seg[4], "take") != 0) {
        send_error(req, 404, "not found");
        return;
    }
    if (!s->ops->ready(s)) {
        send_error(req, 503, "store unavailable");
        return;
    }

    if (n == 3) {
        if (method_is(req, "POST")) {
            handle_get_many(api, req, type);
            return;
        }
        if (!method_is(req, "GET")) {
            send_405(req, "GET, POST");
            return;
        }
        handle_query(api, req, type);
    } else if (n == 5) {
        if (!method_is(req, "POST")) {
            send_405(req, "POST");
            return;
        }
        s->ops->take(s, type, id, on_rec_done, rec_op_new(req, "take", type, id));
    } else if (method_is(req, "GET")) {
        s->ops->get(s, type, id, on_rec_done, rec_op_new(req, "get", type, id));
    } else if (method_is(req, "PUT")) {
        handle_put(api, req, type, id);
    } else if (method_is(req, "DELETE")) {
        s->ops->del(s, type, id, on_rec_done, rec_op_new(req, "delete", type, id));
    } else {
        send_405(req, "GET, PUT, DELETE");
    }
}

/* the change long poll */

static void poll_free(poll_t *p)
{
    broker_changes_unwait(&p->waiter);
    if (h2o_timeout_is_linked(&p->timeout)) {
        h2o_timeout_unlink(&p->timeout);
    }
    cmn_req_guard_release(p->guard);
    p->api->num_polls--;
    free(p);
}

static json_t *change_json(const broker_change_t *c)
{
    return json_pack("{s:s, s:s, s:I, s:b}", "type", c->type, "id", c->id, "version",
                     (json_int_t)c->version, "deleted", c->deleted);
}

/* the answer for a client at `after`; `latest` is where it should poll from next */
static json_t *changes_answer(broker_changes_t *ch, uint64_t after, bool resync)
{
    json_t *list = json_array();
    uint64_t latest = resync ? ch->latest : (after > ch->latest ? after : ch->latest);
    size_t first;
    size_t n = resync ? 0 : broker_changes_after(ch, after, BROKER_CHANGES_PAGE_MAX, &first);
    size_t i;

    if (list == NULL) {
        return NULL;
    }
    for (i = 0; i != n; i++) {
        const broker_change_t *c = broker_changes_at(ch, first + i);
        if (json_array_append_new(list, change_json(c)) != 0) {
            json_decref(list);
            return NULL;
        }
        latest = c->version;
    }
    return json_pack("{s:o, s:I, s:s, s:b}", "changes", list, "latest", (json_int_t)latest,
                     "epoch", ch->epoch, "resync", resync);
}

/* answers when there is something to say (or `final`); otherwise keeps waiting */
static void poll_evaluate(poll_t *p, bool final)
{
    broker_store_t *s = p->api->store;
    broker_changes_t *ch = &s->changes;
    h2o_req_t *req = p->guard->req;
    bool resync;
    size_t first;
    json_t *answer;

    if (req == NULL) {
        poll_free(p); /* the client went away */
        return;
    }
    if (!s->ops->ready(s)) {
        send_error(req, 503, "store unavailable");
        poll_free(p);
        return;
    }

    resync = broker_changes_need_resync(ch, p->after, p->has_epoch ? p->epoch : NULL);
    if (!resync && !final && broker_changes_after(ch, p->after, 1, &first) == 0) {
        if (!h2o_linklist_is_linked(&p->waiter.link)) {
            broker_changes_wait(ch, &p->waiter);
        }
        return;
    }

    answer = changes_answer(ch, p->after, resync);
    cmn_log_debug(p->reqid, "changes after %" PRIu64 ": latest %" PRIu64 "%s", p->after,
                  ch->latest, resync ? ", resync" : "");
    send_json_obj(req, 200, answer);
    json_decref(answer);
    poll_free(p);
}

static void on_poll_wake(broker_waiter_t *w)
{
    poll_evaluate(H2O_STRUCT_FROM_MEMBER(poll_t, waiter, w), false);
}

static void on_poll_timeout(h2o_timeout_entry_t *entry)
{
    poll_evaluate(H2O_STRUCT_FROM_MEMBER(poll_t, timeout, entry), true);
}

/* the wait starts once the store has been asked, so the timer never races the refresh */
static void poll_start(poll_t *p)
{
    if (p->wait != 0) {
        h2o_timeout_link(p->api->loop, &p->api->waits[p->wait - 1], &p->timeout);
    }
    poll_evaluate(p, p->wait == 0);
}

static void on_poll_refreshed(void *ctx)
{
    poll_start(ctx);
}

static const char *parse_changes_params(h2o_req_t *req, poll_t *p, uint64_t *wait)
{
    char value[PARAM_VALUE_MAX + 1];
    int rc;

    rc = query_param(req, "after", value, sizeof(value));
    if (rc < 0 || (rc == 1 && parse_u64(value, &p->after) != 0)) {
        return "after must be a version (unsigned integer)";
    }
    rc = query_param(req, "epoch", p->epoch, sizeof(p->epoch));
    if (rc < 0) {
        return "epoch too long";
    }
    p->has_epoch = rc == 1 && p->epoch[0] != '\0';
    *wait = BROKER_WAIT_MAX_S;
    rc = query_param(req, "wait", value, sizeof(value));
    if (rc < 0 || (rc == 1 && parse_u64(value, wait) != 0)) {
        return "wait must be a number of seconds";
    }
    if (*wait > BROKER_WAIT_MAX_S) {
        *wait = BROKER_WAIT_MAX_S;
    }
    return NULL;
}

static void handle_changes(broker_api_t *api, h2o_req_t *req)
{
    broker_store_t *s = api->store;
    poll_t *p;
    uint64_t wait;
    const char *bad;

    if (!method_is(req, "GET")) {
        send_405(req, "GET");
        return;
    }
    if (!s->ops->ready(s)) {
        send_error(req, 503, "store unavailable");
        return;
    }
    if (api->num_polls >= BROKER_POLLS_MAX) {
        cmn_log_warn(NULL, "changes: %d long polls held already", BROKER_POLLS_MAX);
        send_error(req, 503, "too many long polls");
        return;
    }

    p = h2o_mem_alloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    bad = parse_changes_params(req, p, &wait);
    if (bad != NULL) {
        send_error(req, 400, bad);
        free(p);
        return;
    }
    p->api = api;
    p->reqid = cmn_req_id(req);
    p->guard = cmn_req_guard_create(req);
    p->waiter.cb = on_poll_wake;
    p->timeout.cb = on_poll_timeout;
    p->wait = wait;
    api->num_polls++;

    /* a version ahead of what we know may be another instance's write: ask the store first */
    if (p->after > s->changes.known_latest && s->ops->refresh != NULL) {
        s->ops->refresh(s, on_poll_refreshed, p);
        return;
    }
    poll_start(p);
}

int broker_api_handle(broker_api_t *api, h2o_req_t *req)
{
    char seg[SEGMENTS_MAX][SEGMENT_MAX + 1];
    int n;

    if (req->query_at != SIZE_MAX && req->path.len - req->query_at > BROKER_QUERY_STRING_MAX) {
        send_error(req, 400, "query string too long");
        return 0;
    }
    n = split_path(req, seg);
    if (n < 0) {
        send_error(req, 404, "not found");
        return 0;
    }

    if (n == 1 && strcmp(seg[0], "healthz") == 0) {
        cmn_send_text(req, 200, NULL, "ok");
    } else if (n == 1 && strcmp(seg[0], "readyz") == 0) {
        bool ready = api->store != NULL && api->store->ops->ready(api->store);
        cmn_send_text(req, ready ? 200 : 503, NULL, ready ? "ok" : "store unavailable");
    } else if (api->store == NULL) {
        send_error(req, 503, "store unavailable");
    } else if (n == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "changes") == 0) {
        handle_changes(api, req);
    } else if (n >= 3 && n <= 5 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "records") == 0) {
        handle_records(api, req, seg, n);
    } else {
        send_error(req, 404, "not found");
    }
    return 0;
}

broker_api_t *broker_api_create(void)
{
    broker_api_t *api = h2o_mem_alloc(sizeof(*api));

    memset(api, 0, sizeof(*api));
    return api;
}

void broker_api_attach(broker_api_t *api, h2o_loop_t *loop, broker_store_t *store)
{
    size_t i;

    api->loop = loop;
    api->store = store;
    for (i = 0; i != BROKER_WAIT_MAX_S; i++) {
        h2o_timeout_init(loop, &api->waits[i], (i + 1) * 1000);
    }
}

void broker_api_destroy(broker_api_t *api)
{
    size_t i;

    if (api->loop != NULL) {
        for (i = 0; i != BROKER_WAIT_MAX_S; i++) {
            /* polls still held die with the loop; unlink them so dispose sees empty lists */
            while (!h2o_linklist_is_empty(&api->waits[i]._entries)) {
                h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link,
                                                          api->waits[i]._entries.next));
            }
            h2o_timeout_dispose(api->loop, &api->waits[i]);
        }
    }
    free(api);
}
