/* SPDX-License-Identifier: MIT */
/* The record store behind the API: one interface, a memory and a Redis implementation. */
#ifndef BROKER_STORE_H
#define BROKER_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <h2o.h>
#include "databroker/changes.h"

#define BROKER_TTL_MAX 31536000      /* one year, in seconds */
#define BROKER_QUERY_LIMIT_MAX 1000
#define BROKER_QUERY_LIMIT_DEFAULT 100
#define BROKER_CURSOR_MAX 256
#define BROKER_GET_MANY_MAX 64 /* ids in one batch read */

/*
 * What an operation hands its callback. Everything is borrowed and valid only during the
 * callback. `err` is NULL on success, cmn_err_not_found when the record is absent,
 * cmn_err_unavailable or cmn_err_timeout when the store cannot answer, cmn_err_malformed when
 * it answered something we cannot read.
 */
typedef struct st_broker_result_t {
    const char *err;
    json_t *record;    /* get, put, take: {"type","id","version","data","expires_at"} */
    uint64_t version;  /* delete: the version of the change */
    json_t *records;   /* query: array of records */
    h2o_iovec_t ndjson; /* get_many: the records found, one compact JSON object per line */
    const char *cursor; /* query: where the next page starts, NULL when this was the last */
} broker_result_t;

typedef void (*broker_store_cb)(void *ctx, const broker_result_t *res);

typedef struct st_broker_store_t broker_store_t;

/* every operation calls cb exactly once, maybe before it returns (the memory store does) */
/* appends `len` bytes of one compact JSON object and a newline: a line of a get_many answer */
static inline void broker_ndjson_append(h2o_buffer_t **buf, const char *json, size_t len)
{
    h2o_iovec_t room = h2o_buffer_reserve(buf, len + 1);

    memcpy(room.base, json, len);
    room.base[len] = '\n';
    (*buf)->size += len + 1;
}

typedef struct st_broker_store_ops_t {
    void (*get)(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                void *ctx);
    /* ttl_s 0 = no expiry; `data` is borrowed */
    void (*put)(broker_store_t *s, const char *type, const char *id, json_t *data,
                uint64_t ttl_s, broker_store_cb cb, void *ctx);
    void (*del)(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                void *ctx);
    void (*take)(broker_store_t *s, const char *type, const char *id, broker_store_cb cb,
                 void *ctx);
    /*
     * the records of those of `ids` (1 .. BROKER_GET_MANY_MAX) that exist, as `ndjson`, in no
     * particular order; absent ids are left out (one round trip for many reads, and records
     * go out as the store holds them, never parsed)
     */
    void (*get_many)(broker_store_t *s, const char *type, const char *const *ids, size_t n,
                     broker_store_cb cb, void *ctx);
    /* cursor NULL = from the start; limit 1 .. BROKER_QUERY_LIMIT_MAX */
    void (*query)(broker_store_t *s, const char *type, const char *cursor, unsigned limit,
                  broker_store_cb cb, void *ctx);
    /* the store can serve requests now */
    bool (*ready)(broker_store_t *s);
    /*
     * the store may know a newer version than the ring shows: refresh changes->known_latest,
     * then call cb (NULL: no such step, the ring is authoritative)
     */
    void (*refresh)(broker_store_t *s, void (*cb)(void *ctx), void *ctx);
    void (*destroy)(broker_store_t *s);
} broker_store_ops_t;

struct st_broker_store_t {
    const broker_store_ops_t *ops;
    broker_changes_t changes; /* recent changes and the long polls waiting on them */
};

/** the memory store; `loop` drives the expiry sweep (NULL: no sweep, for tests); NULL on error */
broker_store_t *broker_store_memory_create(h2o_loop_t *loop);
/** replaces the clock (unix seconds) of a memory store, for tests */
void broker_store_memory_set_clock(broker_store_t *s, time_t (*now)(void));
/** removes every expired record now (the sweep timer calls this) */
void broker_store_memory_sweep(broker_store_t *s);

/**
 * the Redis store on `loop` for `url` (redis://[user:pass@]host:port/db or unix:///path); it
 * connects in the background and reconnects with backoff. NULL with `*err` set on a bad URL.
 */
broker_store_t *broker_store_redis_create(h2o_loop_t *loop, const char *url, const char **err);
/** checks a connection string without connecting; 0 or -1 with `*err` */
int broker_store_redis_check_url(const char *url, const char **err);

/** a fresh random epoch: 32 hex digits; -1 when the random source fails */
int broker_epoch_random(char *buf, size_t bufsize);

static inline void broker_store_destroy(broker_store_t *s)
{
    s->ops->destroy(s);
}

#endif
