/* SPDX-License-Identifier: MIT */
/* The databroker's records API as seen by authorize and authenticate (HTTPS with mTLS). */
#ifndef CMN_BROKER_CLIENT_H
#define CMN_BROKER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <h2o.h>
#include "common/config.h"
#include "common/http_client.h"

/*
 * Wire format (DESIGN.md §7), all bodies JSON:
 *   GET    /v1/records/{type}/{id}        -> 200 {"type","id","version","data":{...},"expires_at"}
 *                                            404 when absent
 *   PUT    /v1/records/{type}/{id}        <- {"data":{...},"ttl":seconds}   -> 200 record
 *   DELETE /v1/records/{type}/{id}        -> 200 {"version"} (404 when absent)
 *   POST   /v1/records/{type}/{id}/take   -> 200 record and the record is gone; 404 when absent
 *   POST   /v1/records/{type}          <- {"ids":[id, ...]} (1 .. 64)
 *                                         -> 200 application/x-ndjson: a record per line for
 *                                            those that exist, in any order
 *   GET    /v1/records/{type}?limit=N&cursor=C -> 200 {"records":[...],"cursor":C|null}
 *   GET    /v1/changes?after=V&epoch=E&wait=S -> 200 {"changes":[{type,id,version,deleted}],
 *                                                   "latest":V, "epoch":E, "resync":bool}
 *                                            long poll: answers at once when there are
 *                                            changes after V, else after at most S seconds.
 *                                            "resync": true when V is older than the history
 *                                            kept, newer than the store (it was reset), or E
 *                                            is not the store's epoch.
 *   503 from any of them while the store is unreachable.
 */

#define CMN_BROKER_TIMEOUT_MS 3000
#define CMN_BROKER_WAIT_S 20
#define CMN_BROKER_GET_MANY_MAX 64 /* the databroker's BROKER_GET_MANY_MAX */
/* one record as the databroker answers it: a put body is at most 256 KiB, plus its own fields */
#define CMN_BROKER_RECORD_MAX (300 * 1024)
/* a batch answer can hold that many of the largest records (19 MiB, only while they come) */
#define CMN_BROKER_GET_MANY_BODY_MAX (CMN_BROKER_GET_MANY_MAX * CMN_BROKER_RECORD_MAX)
/* a query page: `limit` such records, at most 32 MiB (a page of 100, authenticate's, fits) */
#define CMN_BROKER_QUERY_BODY_MAX (32 * 1024 * 1024)

typedef struct st_cmn_broker_client_t cmn_broker_client_t;

typedef struct st_cmn_broker_result_t {
    const char *err;  /* NULL on success; cmn_err_not_found, cmn_err_unavailable, ... */
    int status;       /* HTTP status, 0 when no answer */
    json_t *record;   /* the whole record object on success (borrowed; valid in the callback) */
    h2o_iovec_t lines; /* get_many: the NDJSON body (borrowed; valid in the callback) */
    const char *cause; /* with err and no answer: curl's words for what went wrong, for logs
                          (borrowed; valid in the callback) */
} cmn_broker_result_t;

typedef void (*cmn_broker_cb)(void *ctx, const cmn_broker_result_t *res);

#define CMN_BROKER_ID_MAX 128

/** a record id the databroker takes: [A-Za-z0-9._@:-]{1,128} */
bool cmn_broker_valid_id(const char *id);

/** a client for `loop` from the config's databroker_service_url and mTLS files; NULL on error */
cmn_broker_client_t *cmn_broker_client_create(h2o_loop_t *loop, const cmn_config_t *config);
void cmn_broker_client_destroy(cmn_broker_client_t *client);

/* each calls cb exactly once, later, on the loop's thread (see cmn_http_client_send) */
int cmn_broker_get(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                   void *ctx);
int cmn_broker_put(cmn_broker_client_t *c, const char *type, const char *id, const json_t *data,
                   uint64_t ttl_s, cmn_broker_cb cb, void *ctx);
int cmn_broker_delete(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                      void *ctx);
int cmn_broker_take(cmn_broker_client_t *c, const char *type, const char *id, cmn_broker_cb cb,
                    void *ctx);
/* many reads in one request: the result's `lines` hold a record per line, `record` is NULL */
int cmn_broker_get_many(cmn_broker_client_t *c, const char *type, const char *const *ids,
                        size_t n, cmn_broker_cb cb, void *ctx);
/* query: `record` in the result is the whole {"records":[...],"cursor":...} object */
int cmn_broker_query(cmn_broker_client_t *c, const char *type, const char *cursor, unsigned limit,
                     cmn_broker_cb cb, void *ctx);

/** the client TLS settings for the databroker, from the config (for blocking calls) */
void cmn_broker_tls_config(const cmn_config_t *config, cmn_http_client_config_t *out);

/**
 * Blocking long poll of /v1/changes for a thread without a loop. Returns the parsed body
 * (caller decrefs) or NULL with `*err` set.
 */
json_t *cmn_broker_changes_blocking(const cmn_config_t *config, uint64_t after,
                                    const char *epoch, unsigned wait_s, const char **err);

#endif
