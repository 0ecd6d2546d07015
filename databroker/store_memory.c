/* SPDX-License-Identifier: MIT */
/* The memory store: records in hash maps with expiry, for a single databroker host. */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "common/err.h"
#include "common/log.h"
#include "databroker/store.h"

#define MEMORY_RECORDS_MAX 1000000
#define MEMORY_SWEEP_MS 10000

typedef struct st_memory_store_t {
    broker_store_t super;
    json_t *types; /* type -> object (id -> record) */
    size_t num_records;
    time_t (*now)(void);
    h2o_loop_t *loop;
    h2o_timeout_t sweep_timeout;
    h2o_timeout_entry_t sweep_entry;
} memory_store_t;

static time_t clock_real(void)
{
    return time(NULL);
}

int broker_epoch_random(char *buf, size_t bufsize)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    size_t i;

    if (bufsize < sizeof(raw) * 2 + 1 || RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }
    for (i = 0; i != sizeof(raw); i++) {
        buf[i * 2] = hex[raw[i] >> 4];
        buf[i * 2 + 1] = hex[raw[i] & 0xf];
    }
    buf[sizeof(raw) * 2] = '\0';
    return 0;
}

static bool record_expired(memory_store_t *m, json_t *record)
{
    json_t *exp = json_object_get(record, "expires_at");

    return json_is_integer(exp) && (json_int_t)m->now() >= json_integer_value(exp);
}

/* the next version and its change; the caller notifies the waiters */
static uint64_t record_change(memory_store_t *m, const char *type, const char *id, bool deleted)
{
    uint64_t version = m->super.changes.latest + 1;

    broker_changes_append(&m->super.changes, type, id, version, deleted);
    return version;
}

static void remove_record(memory_store_t *m, json_t *bucket, const char *type, const char *id)
{
    json_object_del(bucket, id);
    m->num_records--;
    if (json_object_size(bucket) == 0) {
        json_object_del(m->types, type);
    }
}

/* the live record, or NULL; an expired one is removed on the way (with its change) */
static json_t *lookup(memory_store_t *m, const char *type, const char *id)
{
    json_t *bucket = json_object_get(m->types, type);
    json_t *record = bucket == NULL ? NULL : json_object_get(bucket, id);

    if (record == NULL || !record_expired(m, record)) {
        return record;
    }

    remove_record(m, bucket, type, id);
    record_change(m, type, id, true);
    broker_changes_notify(&m->super.changes);
    return NULL;
}

static void mem_get(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                    void *ctx)
{
    memory_store_t *m = (memory_store_t *)s;
    broker_result_t res = {0};

    res.record = lookup(m, type, id);
    if (res.record == NULL) {
        res.err = cmn_err_not_found;
    }
    cb(ctx, &res);
}

static void mem_get_many(broker_store_t *s, const char *type, const char *const *ids, size_t n,
                         broker_store_cb cb, void *ctx)
{
    memory_store_t *m = (memory_store_t *)s;
    broker_result_t res = {0};
    h2o_buffer_t *buf;

    h2o_buffer_init(&buf, &h2o_socket_buffer_prototype);
    for (size_t i = 0; i < n && res.err == NULL; i++) {
        json_t *record = lookup(m, type, ids[i]);
        char *text = record != NULL ? json_dumps(record, JSON_COMPACT) : NULL;
        size_t len = text != NULL ? strlen(text) : 0;
        if (record != NULL && text == NULL) {
            res.err = cmn_err_no_memory;
        } else if (text != NULL) {
            broker_ndjson_append(&buf, text, len);
        }
        free(text);
    }
    if (res.err == NULL) {
        res.ndjson = h2o_iovec_init(buf->bytes != NULL ? buf->bytes : "", buf->size);
    }
    cb(ctx, &res);
    h2o_buffer_dispose(&buf);
}

static json_t *record_new(const char *type, const char *id, uint64_t version, json_t *data,
                          json_t *expires_at)
{
    return json_pack("{s:s, s:s, s:I, s:O, s:o}", "type", type, "id", id, "version",
                     (json_int_t)version, "data", data, "expires_at", expires_at);
}

static void mem_put(broker_store_t *s, const char *type, const char *id, json_t *data,
                    uint64_t ttl_s, broker_store_cb cb, void *ctx)
{
    memory_store_t *m = (memory_store_t *)s;
    broker_result_t res = {0};
    json_t *bucket;
    json_t *record = NULL;
    json_t *exp;
    bool exists = lookup(m, type, id) != NULL;

    if (!exists && m->num_records >= MEMORY_RECORDS_MAX) {
        res.err = cmn_err_too_large;
        goto Exit;
    }

    bucket = json_object_get(m->types, type);
    if (bucket == NULL) {
        bucket = json_object();
        if (bucket == NULL || json_object_set_new(m->types, type, bucket) != 0) {
            res.err = cmn_err_no_memory;
            goto Exit;
        }
    }

    exp = ttl_s == 0 ? json_null() : json_integer((json_int_t)(m->now() + (time_t)ttl_s));
    record = record_new(type, id, m->super.changes.latest + 1, data, exp);
    if (record == NULL || json_object_set(bucket, id, record) != 0) {
        res.err = cmn_err_no_memory;
        goto Exit;
    }
    if (!exists) {
        m->num_records++;
    }

    record_change(m, type, id, false);
    res.record = record;
    cb(ctx, &res);
    json_decref(record);
    broker_changes_notify(&m->super.changes);
    return;

Exit:
    json_decref(record);
    cb(ctx, &res);
}

/* removes the record; `take` hands it to the callback first */
static void remove_op(memory_store_t *m, const char *type, const char *id, bool take,
                      broker_store_cb cb, void *ctx)
{
    broker_result_t res = {0};
    json_t *record = lookup(m, type, id);

    if (record == NULL) {
        res.err = cmn_err_not_found;
        cb(ctx, &res);
        return;
    }

    json_incref(record);
    remove_record(m, json_object_get(m->types, type), type, id);
    res.version = record_change(m, type, id, true);
    if (take) {
        res.record = record;
    }
    cb(ctx, &res);
    json_decref(record);
    broker_changes_notify(&m->super.changes);
}

static void mem_del(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                    void *ctx)
{
    remove_op((memory_store_t *)s, type, id, false, cb, ctx);
}

static void mem_take(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                     void *ctx)
{
    remove_op((memory_store_t *)s, type, id, true, cb, ctx);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* the live ids of `bucket` after `cursor`, sorted; caller frees the array (not the strings) */
static const char **ids_after(memory_store_t *m, json_t *bucket, const char *cursor, size_t *n)
{
    const char **ids = malloc(sizeof(*ids) * (json_object_size(bucket) + 1));
    const char *key;
    json_t *record;

    *n = 0;
    if (ids == NULL) {
        return NULL;
    }
    json_object_foreach (bucket, key, record) {
        if ((cursor == NULL || strcmp(key, cursor) > 0) && !record_expired(m, record)) {
            ids[(*n)++] = key;
        }
    }
    qsort(ids, *n, sizeof(*ids), compare_ids);
    return ids;
}

/* ordered by id; the cursor is the last id returned */
static void mem_query(broker_store_t *s, const char *type, const char *cursor, unsigned limit,
                      broker_store_cb cb, void *ctx)
{
    memory_store_t *m = (memory_store_t *)s;
    broker_result_t res = {0};
    json_t *bucket = json_object_get(m->types, type);
    const char **ids = NULL;
    char next[BROKER_ID_MAX + 1];
    size_t n = 0;
    size_t i;

    res.records = json_array();
    if (res.records == NULL) {
        res.err = cmn_err_no_memory;
        goto Exit;
    }
    if (bucket != NULL) {
        ids = ids_after(m, bucket, cursor, &n);
        if (ids == NULL) {
            res.err = cmn_err_no_memory;
            goto Exit;
        }
    }

    for (i = 0; i != n && i != limit; i++) {
        if (json_array_append(res.records, json_object_get(bucket, ids[i])) != 0) {
            res.err = cmn_err_no_memory;
            goto Exit;
        }
    }
    if (n > limit) {
        snprintf(next, sizeof(next), "%s", ids[limit - 1]);
        res.cursor = next;
    }

Exit:
    free(ids);
    if (res.err != NULL) {
        json_decref(res.records);
        res.records = NULL;
    }
    cb(ctx, &res);
    json_decref(res.records);
}

void broker_store_memory_sweep(broker_store_t *s)
{
    memory_store_t *m = (memory_store_t *)s;
    const char *type;
    const char *id;
    json_t *bucket;
    json_t *record;
    void *tmp1;
    void *tmp2;
    size_t removed = 0;

    json_object_foreach_safe (m->types, tmp1, type, bucket) {
        json_object_foreach_safe (bucket, tmp2, id, record) {
            if (record_expired(m, record)) {
                record_change(m, type, id, true);
                json_object_del(bucket, id);
                m->num_records--;
                removed++;
            }
        }
        if (json_object_size(bucket) == 0) {
            json_object_del(m->types, type);
        }
    }
    if (removed != 0) {
        cmn_log_debug(NULL, "memory store: %zu expired records removed", removed);
        broker_changes_notify(&m->super.changes);
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    memory_store_t *m = H2O_STRUCT_FROM_MEMBER(memory_store_t, sweep_entry, entry);

    broker_store_memory_sweep(&m->super);
    h2o_timeout_link(m->loop, &m->sweep_timeout, &m->sweep_entry);
}

static bool mem_ready(broker_store_t *s)
{
    return true;
}

static void mem_destroy(broker_store_t *s)
{
    memory_store_t *m = (memory_store_t *)s;

    if (m->loop != NULL) {
        if (h2o_timeout_is_linked(&m->sweep_entry)) {
            h2o_timeout_unlink(&m->sweep_entry);
        }
        h2o_timeout_dispose(m->loop, &m->sweep_timeout);
    }
    json_decref(m->types);
    broker_changes_dispose(&m->super.changes);
    free(m);
}

static const broker_store_ops_t memory_ops = {
    .get = mem_get,
    .get_many = mem_get_many,
    .put = mem_put,
    .del = mem_del,
    .take = mem_take,
    .query = mem_query,
    .ready = mem_ready,
    .refresh = NULL,
    .destroy = mem_destroy,
};

void broker_store_memory_set_clock(broker_store_t *s, time_t (*now)(void))
{
    ((memory_store_t *)s)->now = now;
}

broker_store_t *broker_store_memory_create(h2o_loop_t *loop)
{
    memory_store_t *m = calloc(1, sizeof(*m));
    char epoch[BROKER_EPOCH_MAX + 1];

    if (m == NULL) {
        return NULL;
    }
    m->super.ops = &memory_ops;
    m->now = clock_real;
    m->types = json_object();
    if (m->types == NULL || broker_changes_init(&m->super.changes, BROKER_CHANGES_MAX) != 0 ||
        broker_epoch_random(epoch, sizeof(epoch)) != 0) {
        json_decref(m->types);
        free(m->super.changes.ring);
        free(m);
        return NULL;
    }
    broker_changes_reset(&m->super.changes, epoch, 0);

    if (loop != NULL) {
        m->loop = loop;
        h2o_timeout_init(loop, &m->sweep_timeout, MEMORY_SWEEP_MS);
        m->sweep_entry.cb = on_sweep;
        h2o_timeout_link(loop, &m->sweep_timeout, &m->sweep_entry);
    }
    return &m->super;
}
