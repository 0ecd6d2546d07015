/* SPDX-License-Identifier: MIT */
/* The Redis store: hiredis async on the loop, Lua scripts for writes, a stream follower. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include "common/err.h"
#include "common/log.h"
#include "databroker/redis_h2o.h"
#include "databroker/store.h"
#include "databroker/store_redis_scripts.h"

#define REDIS_URL_MAX 1024
#define REDIS_CMD_TIMEOUT_MS 2000
#define REDIS_FOLLOW_TIMEOUT_MS 5000 /* XREAD BLOCK 1000 plus the command timeout */
#define REDIS_FOLLOW_BLOCK "1000"
#define REDIS_FOLLOW_COUNT "1000"
#define REDIS_RECORD_MAX (1024 * 1024) /* one stored record, as Redis returns it */
#define REDIS_ARGS_MAX (BROKER_GET_MANY_MAX + 1) /* MGET and its keys */
#define REDIS_REC_PREFIX "portcullis:rec:" /* + type ":" id: one record (DESIGN.md §7) */
#define REDIS_KEY_MAX (sizeof(REDIS_REC_PREFIX) + BROKER_TYPE_MAX + 1 + BROKER_ID_MAX + 1)
#define REDIS_STREAM_ID_MAX 48

#define KEY_VERSION "portcullis:version"
#define KEY_EPOCH "portcullis:epoch"
#define KEY_CHANGES "portcullis:changes"

static const char err_bad_url[] = "bad redis connection string (redis://[user:pass@]host:port/db "
                                  "or unix:///path)";

enum { SCRIPT_PUT, SCRIPT_REMOVE, SCRIPT_QUERY, SCRIPT_STATUS, NUM_SCRIPTS };
static const char *const scripts[NUM_SCRIPTS] = {BROKER_LUA_PUT, BROKER_LUA_REMOVE,
                                                 BROKER_LUA_QUERY, BROKER_LUA_STATUS};

static const unsigned backoff_ms[] = {250, 1000, 5000};
#define NUM_BACKOFFS (sizeof(backoff_ms) / sizeof(backoff_ms[0]))

typedef struct st_redis_url_t {
    char *host;      /* NULL for a unix socket */
    int port;
    char *unix_path; /* NULL for TCP */
    char *user;      /* NULL: AUTH with the password only */
    char *pass;      /* NULL: no AUTH */
    unsigned db;
} redis_url_t;

typedef struct st_redis_store_t redis_store_t;

typedef struct st_redis_conn_t {
    redis_store_t *store;
    const char *name; /* "main" or "follower", for logs */
    redisAsyncContext *ac;
    unsigned init_pending; /* handshake replies still expected */
    bool up;               /* handshake done */
    h2o_timeout_entry_t timeout; /* the handshake, or the follower's current command */
} redis_conn_t;

struct st_redis_store_t {
    broker_store_t super;
    h2o_loop_t *loop;
    redis_url_t url;
    redis_conn_t main;
    redis_conn_t follow;
    bool follow_synced; /* the follower has read the store's epoch and version */
    h2o_timeout_t cmd_timeout;
    h2o_timeout_t follow_timeout;
    h2o_timeout_t backoff[NUM_BACKOFFS];
    h2o_timeout_entry_t retry;
    unsigned failures;
    char candidate_epoch[BROKER_EPOCH_MAX + 1];
    char sha[NUM_SCRIPTS][41];
    char last_id[REDIS_STREAM_ID_MAX];
    bool destroying;
};

typedef enum en_op_kind_t {
    OP_GET,
    OP_GET_MANY,
    OP_PUT,
    OP_DEL,
    OP_TAKE,
    OP_QUERY,
    OP_REFRESH
} op_kind_t;

/* one command in flight on the main connection; freed only by its hiredis callback */
typedef struct st_redis_op_t {
    redis_store_t *store;
    op_kind_t kind;
    int script; /* -1 for a plain command */
    bool answered;
    bool retried_eval;
    h2o_timeout_entry_t timeout;
    broker_store_cb cb;
    void (*refresh_cb)(void *ctx);
    void *ctx;
    int argc;
    const char *argv[REDIS_ARGS_MAX];
    size_t argvlen[REDIS_ARGS_MAX];
    char key_rec[REDIS_KEY_MAX];
    char key_idx[REDIS_KEY_MAX];
    char prefix[REDIS_KEY_MAX];
    char num1[24];
    char num2[24];
    char num3[24];
    char cursor_score[24];
    char cursor_id[BROKER_ID_MAX + 1];
    char *data_json;
    char *keys; /* get_many: the record keys, REDIS_KEY_MAX apart */
    size_t id_offset; /* get_many: where the id starts in each key */
} redis_op_t;

static void conn_start(redis_store_t *r, redis_conn_t *c);
static void follow_next(redis_store_t *r);

/* connection string */

static char *dup_range(const char *s, size_t len)
{
    char *out = malloc(len + 1);

    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

static void url_clear(redis_url_t *u)
{
    free(u->host);
    free(u->unix_path);
    free(u->user);
    if (u->pass != NULL) {
        OPENSSL_cleanse(u->pass, strlen(u->pass));
    }
    free(u->pass);
    memset(u, 0, sizeof(*u));
}

static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 10) {
        return -1;
    }
    for (i = 0; i != len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_userinfo(redis_url_t *u, const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);

    if (colon == NULL) {
        u->pass = dup_range(s, len); /* redis://password@host */
        return u->pass == NULL ? -1 : 0;
    }
    if (colon != s) {
        u->user = dup_range(s, (size_t)(colon - s));
        if (u->user == NULL) {
            return -1;
        }
    }
    u->pass = dup_range(colon + 1, len - (size_t)(colon + 1 - s));
    return u->pass == NULL ? -1 : 0;
}

static int parse_hostport(redis_url_t *u, const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    unsigned long port = 6379;
    size_t hostlen = colon == NULL ? len : (size_t)(colon - s);

    if (hostlen == 0) {
        return -1;
    }
    if (colon != NULL &&
        parse_uint(colon + 1, len - hostlen - 1, 65535, &port) != 0) {
        return -1;
    }
    u->host = dup_range(s, hostlen);
    u->port = (int)port;
    return u->host == NULL || port == 0 ? -1 : 0;
}

static int url_parse(const char *url, redis_url_t *u)
{
    const char *p;
    const char *at;
    const char *slash;
    const char *end;
    unsigned long db = 0;

    memset(u, 0, sizeof(*u));
    if (url == NULL || strlen(url) > REDIS_URL_MAX) {
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        if (url[7] != '/' || url[8] == '\0') {
            return -1;
        }
        u->unix_path = strdup(url + 7);
        return u->unix_path == NULL ? -1 : 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        return -1;
    }

    p = url + 8;
    end = p + strlen(p);
    slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL) {
        slash = end;
    }
    at = memrchr(p, '@', (size_t)(slash - p));
    if (at != NULL) {
        if (parse_userinfo(u, p, (size_t)(at - p)) != 0) {
            goto Error;
        }
        p = at + 1;
    }
    if (parse_hostport(u, p, (size_t)(slash - p)) != 0) {
        goto Error;
    }
    if (slash != end && slash + 1 != end &&
        parse_uint(slash + 1, (size_t)(end - slash - 1), 1000000, &db) != 0) {
        goto Error;
    }
    u->db = (unsigned)db;
    return 0;

Error:
    url_clear(u);
    return -1;
}

int broker_store_redis_check_url(const char *url, const char **err)
{
    redis_url_t u;

    if (url_parse(url, &u) != 0) {
        *err = err_bad_url;
        return -1;
    }
    url_clear(&u);
    return 0;
}

/* reply helpers: every reply type is checked before use */

static bool reply_is_string(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING;
}

static int reply_uint64(const redisReply *r, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *out = (uint64_t)r->integer;
        return 0;
    }
    if (!reply_is_string(r) || r->len == 0 || r->len > 20 || r->str[0] < '0' || r->str[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(r->str, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static json_t *reply_record(const redisReply *r)
{
    json_t *rec;

    if (!reply_is_string(r) || r->len > REDIS_RECORD_MAX) {
        return NULL;
    }
    rec = json_loadb(r->str, r->len, 0, NULL);
    if (rec != NULL && !json_is_object(rec)) {
        json_decref(rec);
        rec = NULL;
    }
    return rec;
}

static bool reply_is_error(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);

    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

/* connection lifecycle */

static void conn_close(redis_conn_t *c)
{
    redisAsyncContext *ac = c->ac;

    if (h2o_timeout_is_linked(&c->timeout)) {
        h2o_timeout_unlink(&c->timeout);
    }
    c->up = false;
    c->init_pending = 0;
    if (ac == NULL) {
        return;
    }
    /* forget it first: the callbacks redisAsyncFree runs must not find it again */
    c->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void schedule_retry(redis_store_t *r)
{
    unsigned i = r->failures < NUM_BACKOFFS ? r->failures : NUM_BACKOFFS - 1;

    if (r->destroying || h2o_timeout_is_linked(&r->retry)) {
        return;
    }
    r->failures++;
    h2o_timeout_link(r->loop, &r->backoff[i], &r->retry);
}

/* drops both connections and tries again later; `why` is a fixed text, never a secret */
static void teardown(redis_store_t *r, const char *why)
{
    unsigned i = r->failures < NUM_BACKOFFS ? r->failures : NUM_BACKOFFS - 1;

    if (!h2o_timeout_is_linked(&r->retry) && !r->destroying) {
        cmn_log_warn(NULL, "redis: %s; reconnecting in %u ms", why, backoff_ms[i]);
    }
    r->follow_synced = false;
    conn_close(&r->main);
    conn_close(&r->follow);
    schedule_retry(r);
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    redis_store_t *r = H2O_STRUCT_FROM_MEMBER(redis_store_t, retry, entry);

    conn_start(r, &r->main);
    conn_start(r, &r->follow);
}

static void check_all_up(redis_store_t *r)
{
    if (r->main.up && r->follow.up && r->follow_synced && r->failures != 0) {
        cmn_log_info(NULL, "redis: connected");
        r->failures = 0;
    }
}

static void on_conn_timeout(h2o_timeout_entry_t *entry)
{
    redis_conn_t *c = H2O_STRUCT_FROM_MEMBER(redis_conn_t, timeout, entry);

    teardown(c->store, c->up ? "follower command timed out" : "connect or handshake timed out");
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_conn_t *c = privdata;
    redisReply *rep = reply;
    redis_store_t *r = c->store;

    if (ac->data != c || c->ac != ac) {
        return; /* the connection was dropped; its replies come back NULL */
    }
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        /* the error text of AUTH never holds the password, but keep logs fixed anyway */
        teardown(r, "handshake refused (AUTH, SELECT or SCRIPT LOAD)");
        return;
    }
    if (--c->init_pending != 0) {
        return;
    }

    h2o_timeout_unlink(&c->timeout);
    c->up = true;
    if (c == &r->follow) {
        follow_next(r);
    }
    check_all_up(r);
}

static int send_handshake_cmd(redis_conn_t *c, int argc, const char **argv)
{
    if (redisAsyncCommandArgv(c->ac, on_handshake_reply, c, argc, argv, NULL) != REDIS_OK) {
        return -1;
    }
    c->init_pending++;
    return 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    redis_conn_t *c = ac->data;
    redis_store_t *r;
    char db[16];
    int i;

    if (c == NULL || c->ac != ac) {
        return;
    }
    r = c->store;
    if (status != REDIS_OK) {
        /* hiredis frees this context right after we return */
        c->ac = NULL;
        ac->data = NULL;
        teardown(r, "cannot connect");
        return;
    }

    if (r->url.pass != NULL) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.pass};
        if (r->url.user == NULL) {
            argv[1] = r->url.pass;
        }
        if (send_handshake_cmd(c, r->url.user == NULL ? 2 : 3, argv) != 0) {
            goto Error;
        }
    }
    if (r->url.db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%u", r->url.db);
        if (send_handshake_cmd(c, 2, argv) != 0) {
            goto Error;
        }
    }
    if (c == &r->main) {
        for (i = 0; i != NUM_SCRIPTS; i++) {
            const char *argv[3] = {"SCRIPT", "LOAD", scripts[i]};
            if (send_handshake_cmd(c, 3, argv) != 0) {
                goto Error;
            }
        }
    } else {
        const char *argv[1] = {"PING"};
        if (send_handshake_cmd(c, 1, argv) != 0) {
            goto Error;
        }
    }
    return;

Error:
    teardown(r, "cannot send the handshake");
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    redis_conn_t *c = ac->data;

    if (c == NULL || c->ac != ac) {
        return; /* we dropped it ourselves */
    }
    c->ac = NULL; /* hiredis is freeing it */
    ac->data = NULL;
    teardown(c->store, "connection lost");
}

static void conn_start(redis_store_t *r, redis_conn_t *c)
{
    redisAsyncContext *ac;

    if (c->ac != NULL) {
        return;
    }
    if (r->url.unix_path != NULL) {
        ac = redisAsyncConnectUnix(r->url.unix_path);
    } else {
        ac = redisAsyncConnect(r->url.host, r->url.port);
    }
    if (ac == NULL) {
        teardown(r, "cannot allocate a connection");
        return;
    }
    if (ac->err != 0 || broker_redis_attach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        teardown(r, "cannot connect");
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->up = false;
    c->init_pending = 0;
    if (redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
        teardown(r, "cannot set up the connection");
        return;
    }
    /* covers connect and handshake: hiredis 0.14 has no timeouts of its own */
    h2o_timeout_link(r->loop, &r->cmd_timeout, &c->timeout);
}

/* the follower: status, then XREAD BLOCK, again and again */

static void follow_link_timeout(redis_store_t *r)
{
    if (h2o_timeout_is_linked(&r->follow.timeout)) {
        h2o_timeout_unlink(&r->follow.timeout);
    }
    h2o_timeout_link(r->loop, &r->follow_timeout, &r->follow.timeout);
}

static bool follow_reply_ok(redisAsyncContext *ac, redis_store_t *r)
{
    if (ac->data != &r->follow || r->follow.ac != ac) {
        return false;
    }
    h2o_timeout_unlink(&r->follow.timeout);
    return true;
}

/* fields of one stream entry: type, id, version, deleted */
static int follow_entry(redis_store_t *r, const redisReply *entry, bool *appended)
{
    const redisReply *fields;
    const char *type = NULL;
    const char *id = NULL;
    uint64_t version = 0;
    bool have_version = false;
    bool deleted = false;
    size_t i;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        !reply_is_string(entry->element[0]) || entry->element[0]->len >= REDIS_STREAM_ID_MAX ||
        entry->element[1]->type != REDIS_REPLY_ARRAY) {
        return -1;
    }
    fields = entry->element[1];
    for (i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        if (!reply_is_string(k) || !reply_is_string(v)) {
            return -1;
        }
        if (strcmp(k->str, "type") == 0 && v->len <= BROKER_TYPE_MAX) {
            type = v->str;
        } else if (strcmp(k->str, "id") == 0 && v->len <= BROKER_ID_MAX) {
            id = v->str;
        } else if (strcmp(k->str, "version") == 0) {
            have_version = reply_uint64(v, &version) == 0;
        } else if (strcmp(k->str, "deleted") == 0) {
            deleted = strcmp(v->str, "1") == 0;
        }
    }
    if (type == NULL || id == NULL || !have_version) {
        return -1;
    }

    memcpy(r->last_id, entry->element[0]->str, entry->element[0]->len + 1);
    if (broker_changes_append(&r->super.changes, type, id, version, deleted) == 0) {
        *appended = true;
    }
    return 0;
}

static void on_follow_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_store_t *r = privdata;
    redisReply *rep = reply;
    const redisReply *stream;
    bool appended = false;
    size_t i;

    if (!follow_reply_ok(ac, r)) {
        return;
    }
    if (rep == NULL || (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_ARRAY)) {
        teardown(r, "XREAD failed");
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY) {
        if (rep->elements != 1 || rep->element[0]->type != REDIS_REPLY_ARRAY ||
            rep->element[0]->elements != 2 ||
            rep->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
            teardown(r, "XREAD answered something unexpected");
            return;
        }
        stream = rep->element[0]->element[1];
        for (i = 0; i != stream->elements; i++) {
            if (follow_entry(r, stream->element[i], &appended) != 0) {
                cmn_log_warn(NULL, "redis: skipping a malformed entry of %s", KEY_CHANGES);
            }
        }
        if (appended) {
            broker_changes_notify(&r->super.changes);
        }
    }
    follow_next(r);
}

static void follow_read(redis_store_t *r)
{
    const char *argv[] = {"XREAD", "COUNT", REDIS_FOLLOW_COUNT, "BLOCK", REDIS_FOLLOW_BLOCK,
                          "STREAMS", KEY_CHANGES, r->last_id};

    if (redisAsyncCommandArgv(r->follow.ac, on_follow_read, r, 8, argv, NULL) != REDIS_OK) {
        teardown(r, "cannot send XREAD");
        return;
    }
    follow_link_timeout(r);
}

/*
 * once Redis adopted our candidate epoch, pick another: should the store be emptied later,
 * the next epoch must differ from every one clients have seen
 */
static void renew_candidate(redis_store_t *r, const char *epoch)
{
    if (strcmp(epoch, r->candidate_epoch) == 0 &&
        broker_epoch_random(r->candidate_epoch, sizeof(r->candidate_epoch)) != 0) {
        cmn_unreachable("the random source failed");
    }
}

/* the store's epoch and version: a new epoch or a version gone back means it was reset */
static void on_follow_status(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_store_t *r = privdata;
    redisReply *rep = reply;
    broker_changes_t *ch = &r->super.changes;
    const char *epoch;
    uint64_t version;

    if (!follow_reply_ok(ac, r)) {
        return;
    }
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        !reply_is_string(rep->element[0]) || rep->element[0]->len > BROKER_EPOCH_MAX ||
        reply_uint64(rep->element[1], &version) != 0) {
        teardown(r, "status script failed");
        return;
    }

    epoch = rep->element[0]->str;
    renew_candidate(r, epoch);
    if (ch->epoch[0] == '\0' || strcmp(epoch, ch->epoch) != 0 || version < ch->latest) {
        if (ch->epoch[0] != '\0') {
            cmn_log_warn(NULL, "redis: the store was reset (new epoch or version went back); "
                               "clients will resync");
        }
        broker_changes_reset(ch, epoch, version);
        snprintf(r->last_id, sizeof(r->last_id), "%" PRIu64 "-1", version);
    }
    /* else the same store after a reconnect: carry on from where the ring stands */
    if (!r->follow_synced) {
        r->follow_synced = true;
        check_all_up(r);
    }
    broker_changes_note_version(ch, version);
    follow_read(r);
}

static void follow_next(redis_store_t *r)
{
    const char *argv[] = {"EVAL", scripts[SCRIPT_STATUS], "2", KEY_EPOCH, KEY_VERSION,
                          r->candidate_epoch};

    if (redisAsyncCommandArgv(r->follow.ac, on_follow_status, r, 6, argv, NULL) != REDIS_OK) {
        teardown(r, "cannot send the status script");
        return;
    }
    follow_link_timeout(r);
}

/* operations on the main connection */

static redis_op_t *op_new(redis_store_t *r, op_kind_t kind, broker_store_cb cb, void *ctx)
{
    redis_op_t *op = calloc(1, sizeof(*op));

    if (op != NULL) {
        op->store = r;
        op->kind = kind;
        op->script = -1;
        op->cb = cb;
        op->ctx = ctx;
    }
    return op;
}

/* the Redis key of record (type, id) into out, REDIS_KEY_MAX bytes */
static void record_key(char *out, const char *type, const char *id)
{
    snprintf(out, REDIS_KEY_MAX, REDIS_REC_PREFIX "%s:%s", type, id);
}

static void op_free(redis_op_t *op)
{
    if (h2o_timeout_is_linked(&op->timeout)) {
        h2o_timeout_unlink(&op->timeout);
    }
    free(op->data_json);
    free(op->keys);
    free(op);
}

static void op_arg(redis_op_t *op, const char *s, size_t len)
{
    if (op->argc >= REDIS_ARGS_MAX) {
        cmn_unreachable("redis op has more arguments than REDIS_ARGS_MAX");
    }
    op->argv[op->argc] = s;
    op->argvlen[op->argc] = len;
    op->argc++;
}

static void op_arg_str(redis_op_t *op, const char *s)
{
    op_arg(op, s, strlen(s));
}

static void op_answer(redis_op_t *op, const broker_result_t *res)
{
    if (op->answered) {
        return;
    }
    op->answered = true;
    if (op->kind == OP_REFRESH) {
        op->refresh_cb(op->ctx);
    } else {
        op->cb(op->ctx, res);
    }
}

static void op_fail(redis_op_t *op, const char *err)
{
    broker_result_t res = {0};

    res.err = err;
    op_answer(op, &res);
}

/* the script's epoch: a write counts towards known_latest only within the ring's epoch */
static void op_note_version(redis_op_t *op, const redisReply *epoch, uint64_t version)
{
    broker_changes_t *ch = &op->store->super.changes;

    if (!reply_is_string(epoch)) {
        return;
    }
    renew_candidate(op->store, epoch->str);
    if (strcmp(epoch->str, ch->epoch) == 0) {
        broker_changes_note_version(ch, version);
    }
}

static const char *handle_record_reply(redis_op_t *op, const redisReply *rep)
{
    broker_result_t res = {0};

    if (rep->type == REDIS_REPLY_NIL) {
        res.err = cmn_err_not_found;
        op_answer(op, &res);
        return NULL;
    }
    res.record = reply_record(rep);
    if (res.record == NULL) {
        return cmn_err_malformed;
    }
    op_answer(op, &res);
    json_decref(res.record);
    return NULL;
}

/*
 * One MGET element as a line of the answer: the stored text when it is one line of object (the
 * put script writes compact JSON), else the record re-written compact, else an error line for
 * its id, so that one unreadable record fails only its own read.
 */
static int append_many_line(h2o_buffer_t **buf, const redisReply *e, const char *id)
{
    json_t *line = NULL;
    char *text = NULL;
    const char *out = e->str;
    size_t len = e->len;

    if (e->len < 2 || e->str[0] != '{' || e->str[e->len - 1] != '}' ||
        memchr(e->str, '\n', e->len) != NULL) {
        line = reply_record(e);
        if (line == NULL) {
            char fp[32];
            /* ids can be bearer-like (session ids): a fingerprint only */
            cmn_log_error(NULL, "redis: record %s is not JSON; its reads fail",
                          cmn_redact(id, strlen(id), fp, sizeof(fp)));
            line = json_pack("{s:s, s:s}", "id", id, "error", "unreadable record");
        }
        text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        if (text == NULL) {
            return -1;
        }
        out = text;
        len = strlen(text);
    }
    broker_ndjson_append(buf, out, len);
    free(text);
    return 0;
}

/* MGET: one string or nil per key, the absent ones left out */
static const char *handle_many_reply(redis_op_t *op, const redisReply *rep)
{
    broker_result_t res = {0};
    h2o_buffer_t *buf;
    const char *err = NULL;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)op->argc - 1) {
        return cmn_err_malformed;
    }
    h2o_buffer_init(&buf, &h2o_socket_buffer_prototype);
    for (size_t i = 0; i != rep->elements && err == NULL; i++) {
        const redisReply *e = rep->element[i];
        const char *id = op->argv[i + 1] + op->id_offset;
        if (e->type == REDIS_REPLY_NIL) {
            continue;
        }
        if (!reply_is_string(e) || e->len > REDIS_RECORD_MAX) {
            err = cmn_err_malformed;
        } else if (append_many_line(&buf, e, id) != 0) {
            err = cmn_err_no_memory;
        }
    }
    if (err == NULL) {
        res.ndjson = h2o_iovec_init(buf->size != 0 ? buf->bytes : "", buf->size);
        op_answer(op, &res);
    }
    h2o_buffer_dispose(&buf);
    return err;
}

/* {version, epoch[, record]}; version "0" = the record was absent */
static const char *handle_write_reply(redis_op_t *op, const redisReply *rep)
{
    broker_result_t res = {0};
    uint64_t version;
    bool with_record = op->kind != OP_DEL;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        reply_uint64(rep->element[0], &version) != 0) {
        return cmn_err_malformed;
    }
    if (version == 0 && op->kind != OP_PUT) {
        res.err = cmn_err_not_found;
        op_answer(op, &res);
        return NULL;
    }
    op_note_version(op, rep->element[1], version);
    if (with_record) {
        if (rep->elements != 3) {
            return cmn_err_malformed;
        }
        res.record = reply_record(rep->element[2]);
        if (res.record == NULL) {
            return cmn_err_malformed;
        }
    }
    res.version = version;
    op_answer(op, &res);
    json_decref(res.record);
    return NULL;
}

/* {full, last score, last id, record...} */
static const char *handle_query_reply(redis_op_t *op, const redisReply *rep)
{
    broker_result_t res = {0};
    char cursor[BROKER_CURSOR_MAX];
    size_t i;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER || !reply_is_string(rep->element[1]) ||
        !reply_is_string(rep->element[2])) {
        return cmn_err_malformed;
    }
    res.records = json_array();
    if (res.records == NULL) {
        return cmn_err_no_memory;
    }
    for (i = 3; i != rep->elements; i++) {
        json_t *rec = reply_record(rep->element[i]);
        if (rec == NULL || json_array_append_new(res.records, rec) != 0) {
            json_decref(res.records);
            return cmn_err_malformed;
        }
    }
    if (rep->element[0]->integer == 1) {
        snprintf(cursor, sizeof(cursor), "%s:%s", rep->element[1]->str, rep->element[2]->str);
        res.cursor = cursor;
    }
    op_answer(op, &res);
    json_decref(res.records);
    return NULL;
}

static const char *handle_refresh_reply(redis_op_t *op, const redisReply *rep)
{
    uint64_t version;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        reply_uint64(rep->element[1], &version) != 0) {
        return cmn_err_malformed;
    }
    op_note_version(op, rep->element[0], version);
    op_answer(op, NULL);
    return NULL;
}

static int op_send(redis_op_t *op, bool eval);

static void on_op_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_op_t *op = privdata;
    redisReply *rep = reply;
    const char *err = NULL;

    if (op->answered || rep == NULL) {
        /* timed out already, or the connection went away: answered here or by the timeout */
        op_fail(op, cmn_err_unavailable);
        op_free(op);
        return;
    }
    if (op->script >= 0 && !op->retried_eval && reply_is_error(rep, "NOSCRIPT")) {
        /* the script cache was flushed since we connected: send the body once */
        op->retried_eval = true;
        if (op_send(op, true) == 0) {
            return;
        }
        err = cmn_err_unavailable;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        cmn_log_error(NULL, "redis: command failed: %.*s", rep->len > 200 ? 200 : (int)rep->len,
                      rep->str);
        err = cmn_err_unavailable;
    } else if (op->kind == OP_GET) {
        err = handle_record_reply(op, rep);
    } else if (op->kind == OP_GET_MANY) {
        err = handle_many_reply(op, rep);
    } else if (op->kind == OP_QUERY) {
        err = handle_query_reply(op, rep);
    } else if (op->kind == OP_REFRESH) {
        err = handle_refresh_reply(op, rep);
    } else {
        err = handle_write_reply(op, rep);
    }
    if (err == cmn_err_malformed) {
        cmn_log_error(NULL, "redis: unexpected reply (type %d)", rep->type);
        err = cmn_err_unavailable;
    }
    if (err != NULL) {
        op_fail(op, err);
    }
    op_free(op);
}

static void on_op_timeout(h2o_timeout_entry_t *entry)
{
    redis_op_t *op = H2O_STRUCT_FROM_MEMBER(redis_op_t, timeout, entry);
    redis_store_t *r = op->store;

    /* answer now; the op itself is freed when hiredis hands its callback the NULL reply */
    op_fail(op, cmn_err_timeout);
    teardown(r, "command timed out");
}

static int op_send(redis_op_t *op, bool eval)
{
    redis_store_t *r = op->store;
    int rc;

    if (r->main.ac == NULL || !r->main.up) {
        return -1;
    }
    if (op->script >= 0) {
        op->argv[0] = eval ? "EVAL" : "EVALSHA";
        op->argvlen[0] = strlen(op->argv[0]);
        op->argv[1] = eval ? scripts[op->script] : r->sha[op->script];
        op->argvlen[1] = strlen(op->argv[1]);
    }
    rc = redisAsyncCommandArgv(r->main.ac, on_op_reply, op, op->argc, op->argv, op->argvlen);
    if (rc != REDIS_OK) {
        return -1;
    }
    if (!h2o_timeout_is_linked(&op->timeout)) {
        op->timeout.cb = on_op_timeout;
        h2o_timeout_link(r->loop, &r->cmd_timeout, &op->timeout);
    }
    return 0;
}

/* sends `op` or answers it unavailable and frees it */
static void op_start(redis_op_t *op)
{
    if (op_send(op, false) != 0) {
        op_fail(op, cmn_err_unavailable);
        op_free(op);
    }
}

static void fail_now(broker_store_cb cb, void *ctx, const char *err)
{
    broker_result_t res = {0};

    res.err = err;
    cb(ctx, &res);
}

static bool redis_ready(broker_store_t *s)
{
    redis_store_t *r = (redis_store_t *)s;

    return r->main.up && r->follow.up && r->follow_synced;
}

/* a new op for one store call, or NULL once `cb` has been told why (storage down, no memory) */
static redis_op_t *begin_op(broker_store_t *s, op_kind_t kind, broker_store_cb cb, void *ctx)
{
    redis_op_t *op;

    if (!redis_ready(s)) {
        fail_now(cb, ctx, cmn_err_unavailable);
        return NULL;
    }
    op = op_new((redis_store_t *)s, kind, cb, ctx);
    if (op == NULL) {
        fail_now(cb, ctx, cmn_err_no_memory);
    }
    return op;
}

static redis_op_t *script_op(broker_store_t *s, op_kind_t kind, int script, const char *type,
                             const char *id, broker_store_cb cb, void *ctx)
{
    redis_op_t *op = begin_op(s, kind, cb, ctx);

    if (op == NULL) {
        return NULL;
    }
    op->script = script;
    op_arg_str(op, "EVALSHA");
    op_arg_str(op, "");
    op_arg_str(op, "5");
    record_key(op->key_rec, type, id);
    snprintf(op->key_idx, sizeof(op->key_idx), "portcullis:idx:%s", type);
    op_arg_str(op, op->key_rec);
    op_arg_str(op, op->key_idx);
    op_arg_str(op, KEY_VERSION);
    op_arg_str(op, KEY_CHANGES);
    op_arg_str(op, KEY_EPOCH);
    op_arg_str(op, type);
    op_arg_str(op, id);
    return op;
}

static void redis_get(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                      void *ctx)
{
    redis_op_t *op = begin_op(s, OP_GET, cb, ctx);

    if (op == NULL) {
        return;
    }
    record_key(op->key_rec, type, id);
    op_arg_str(op, "GET");
    op_arg_str(op, op->key_rec);
    op_start(op);
}

static void redis_get_many(broker_store_t *s, const char *type, const char *const *ids, size_t n,
                           broker_store_cb cb, void *ctx)
{
    redis_op_t *op;

    if (n == 0 || n > BROKER_GET_MANY_MAX) {
        fail_now(cb, ctx, cmn_err_malformed);
        return;
    }
    op = begin_op(s, OP_GET_MANY, cb, ctx);
    if (op == NULL) {
        return;
    }
    op->keys = malloc(n * REDIS_KEY_MAX);
    if (op->keys == NULL) {
        op_free(op);
        fail_now(cb, ctx, cmn_err_no_memory);
        return;
    }
    op_arg_str(op, "MGET");
    op->id_offset = strlen(REDIS_REC_PREFIX) + strlen(type) + 1;
    for (size_t i = 0; i < n; i++) {
        char *key = op->keys + i * REDIS_KEY_MAX;
        record_key(key, type, ids[i]);
        op_arg_str(op, key);
    }
    op_start(op);
}

static void redis_put(broker_store_t *s, const char *type, const char *id, json_t *data,
                      uint64_t ttl_s, broker_store_cb cb, void *ctx)
{
    redis_store_t *r = (redis_store_t *)s;
    redis_op_t *op = script_op(s, OP_PUT, SCRIPT_PUT, type, id, cb, ctx);

    if (op == NULL) {
        return;
    }
    op->data_json = json_dumps(data, JSON_COMPACT);
    if (op->data_json == NULL) {
        op_free(op);
        fail_now(cb, ctx, cmn_err_no_memory);
        return;
    }
    snprintf(op->num1, sizeof(op->num1), "%" PRIu64, ttl_s);
    snprintf(op->num2, sizeof(op->num2), "%lld", (long long)time(NULL));
    op_arg_str(op, op->data_json);
    op_arg_str(op, op->num1);
    op_arg_str(op, op->num2);
    op_arg_str(op, r->candidate_epoch);
    op_start(op);
}

static void remove_op(broker_store_t *s, op_kind_t kind, const char *type, const char *id,
                      broker_store_cb cb, void *ctx)
{
    redis_store_t *r = (redis_store_t *)s;
    redis_op_t *op = script_op(s, kind, SCRIPT_REMOVE, type, id, cb, ctx);

    if (op == NULL) {
        return;
    }
    op_arg_str(op, kind == OP_TAKE ? "1" : "0");
    op_arg_str(op, r->candidate_epoch);
    op_start(op);
}

static void redis_del(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                      void *ctx)
{
    remove_op(s, OP_DEL, type, id, cb, ctx);
}

static void redis_take(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                       void *ctx)
{
    remove_op(s, OP_TAKE, type, id, cb, ctx);
}

/* a cursor is "<score>:<id>", score = digits or "inf", as the query script returned it */
static int parse_cursor(redis_op_t *op, const char *cursor)
{
    const char *colon = strchr(cursor, ':');
    size_t slen;
    size_t i;

    if (colon == NULL || strlen(colon + 1) == 0 || strlen(colon + 1) > BROKER_ID_MAX) {
        return -1;
    }
    slen = (size_t)(colon - cursor);
    if (slen == 0 || slen >= sizeof(op->cursor_score)) {
        return -1;
    }
    if (!(slen == 3 && memcmp(cursor, "inf", 3) == 0)) {
        for (i = 0; i != slen; i++) {
            if (cursor[i] < '0' || cursor[i] > '9') {
                return -1;
            }
        }
    }
    memcpy(op->cursor_score, cursor, slen);
    op->cursor_score[slen] = '\0';
    snprintf(op->cursor_id, sizeof(op->cursor_id), "%s", colon + 1);
    return 0;
}

static void redis_query(broker_store_t *s, const char *type, const char *cursor, unsigned limit,
                        broker_store_cb cb, void *ctx)
{
    redis_op_t *op = begin_op(s, OP_QUERY, cb, ctx);

    if (op == NULL) {
        return;
    }
    if (cursor != NULL && parse_cursor(op, cursor) != 0) {
        op_free(op);
        fail_now(cb, ctx, cmn_err_malformed);
        return;
    }
    op->script = SCRIPT_QUERY;
    op_arg_str(op, "EVALSHA");
    op_arg_str(op, "");
    op_arg_str(op, "1");
    snprintf(op->key_idx, sizeof(op->key_idx), "portcullis:idx:%s", type);
    snprintf(op->prefix, sizeof(op->prefix), REDIS_REC_PREFIX "%s:", type);
    snprintf(op->num1, sizeof(op->num1), "%lld", (long long)time(NULL));
    snprintf(op->num2, sizeof(op->num2), "%u", limit);
    op_arg_str(op, op->key_idx);
    op_arg_str(op, op->num1);
    op_arg_str(op, op->cursor_score);
    op_arg_str(op, op->cursor_id);
    op_arg_str(op, op->num2);
    op_arg_str(op, op->prefix);
    op_start(op);
}

static void redis_refresh(broker_store_t *s, void (*cb)(void *ctx), void *ctx)
{
    redis_store_t *r = (redis_store_t *)s;
    redis_op_t *op;

    if (!redis_ready(s)) {
        cb(ctx);
        return;
    }
    op = op_new(r, OP_REFRESH, NULL, ctx);
    if (op == NULL) {
        cb(ctx);
        return;
    }
    op->refresh_cb = cb;
    op->script = SCRIPT_STATUS;
    op_arg_str(op, "EVALSHA");
    op_arg_str(op, "");
    op_arg_str(op, "2");
    op_arg_str(op, KEY_EPOCH);
    op_arg_str(op, KEY_VERSION);
    op_arg_str(op, r->candidate_epoch);
    op_start(op);
}

static void redis_destroy(broker_store_t *s)
{
    redis_store_t *r = (redis_store_t *)s;
    size_t i;

    r->destroying = true;
    conn_close(&r->main);
    conn_close(&r->follow);
    if (h2o_timeout_is_linked(&r->retry)) {
        h2o_timeout_unlink(&r->retry);
    }
    h2o_timeout_dispose(r->loop, &r->cmd_timeout);
    h2o_timeout_dispose(r->loop, &r->follow_timeout);
    for (i = 0; i != NUM_BACKOFFS; i++) {
        h2o_timeout_dispose(r->loop, &r->backoff[i]);
    }
    broker_changes_dispose(&r->super.changes);
    url_clear(&r->url);
    free(r);
}

static const broker_store_ops_t redis_ops = {
    .get = redis_get,
    .get_many = redis_get_many,
    .put = redis_put,
    .del = redis_del,
    .take = redis_take,
    .query = redis_query,
    .ready = redis_ready,
    .refresh = redis_refresh,
    .destroy = redis_destroy,
};

static int sha1_hex(const char *s, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    unsigned int i;

    if (EVP_Digest(s, strlen(s), md, &len, EVP_sha1(), NULL) != 1 || len != 20) {
        return -1;
    }
    for (i = 0; i != len; i++) {
        out[i * 2] = hex[md[i] >> 4];
        out[i * 2 + 1] = hex[md[i] & 0xf];
    }
    out[40] = '\0';
    return 0;
}

broker_store_t *broker_store_redis_create(h2o_loop_t *loop, const char *url, const char **err)
{
    redis_store_t *r = calloc(1, sizeof(*r));
    size_t i;

    *err = cmn_err_no_memory;
    if (r == NULL) {
        return NULL;
    }
    if (url_parse(url, &r->url) != 0) {
        *err = err_bad_url;
        free(r);
        return NULL;
    }
    for (i = 0; i != NUM_SCRIPTS; i++) {
        if (sha1_hex(scripts[i], r->sha[i]) != 0) {
            goto Error;
        }
    }
    if (broker_epoch_random(r->candidate_epoch, sizeof(r->candidate_epoch)) != 0 ||
        broker_changes_init(&r->super.changes, BROKER_CHANGES_MAX) != 0) {
        goto Error;
    }

    r->super.ops = &redis_ops;
    r->loop = loop;
    r->main.store = r;
    r->main.name = "main";
    r->main.timeout.cb = on_conn_timeout;
    r->follow.store = r;
    r->follow.name = "follower";
    r->follow.timeout.cb = on_conn_timeout;
    r->retry.cb = on_retry;
    h2o_timeout_init(loop, &r->cmd_timeout, REDIS_CMD_TIMEOUT_MS);
    h2o_timeout_init(loop, &r->follow_timeout, REDIS_FOLLOW_TIMEOUT_MS);
    for (i = 0; i != NUM_BACKOFFS; i++) {
        h2o_timeout_init(loop, &r->backoff[i], backoff_ms[i]);
    }
    r->failures = 1; /* so the first success is logged */
    conn_start(r, &r->main);
    conn_start(r, &r->follow);
    return &r->super;

Error:
    url_clear(&r->url);
    free(r->super.changes.ring);
    free(r);
    return NULL;
}
