/* SPDX-License-Identifier: MIT */
/* Cold session reads, batched: one databroker request per event-loop turn for many sessions. */
#ifndef AUTHZ_SESSION_FETCH_H
#define AUTHZ_SESSION_FETCH_H

#include <h2o.h>
#include "common/broker_client.h"

#define AUTHZ_FETCH_BATCHES_MAX 8 /* batch requests in flight per thread; more ids wait */

/*
 * One per worker thread. The session ids asked for during one turn of the loop are sent
 * together when the turn ends (POST /v1/records/session, up to CMN_BROKER_GET_MANY_MAX ids per
 * request), and asks for an id already waiting or in flight join that read. While
 * AUTHZ_FETCH_BATCHES_MAX requests are out, new ids wait for one to come back, so batches grow
 * with the load instead of the number of requests.
 */
typedef struct st_authz_session_fetcher_t authz_session_fetcher_t;

/*
 * The outcome for one id, as cmn_broker_get gives it: `record` set on success, err
 * cmn_err_not_found (status 404) when the session does not exist, another err when the
 * databroker could not answer. `gen` is the session cache generation of the first ask of the
 * read, which may be older than the caller's own: a read joined late can predate a change the
 * joiner already saw, so the cache must judge it by when it started.
 */
typedef void (*authz_session_fetch_cb)(void *ctx, const cmn_broker_result_t *res, uint64_t gen);

/** for the worker thread of `loop`, which keeps it as long as it runs; NULL without memory */
authz_session_fetcher_t *authz_session_fetcher_create(h2o_loop_t *loop,
                                                      cmn_broker_client_t *broker);

/**
 * Asks for session `id`, `gen` being the cache generation read just before; `cb` runs exactly
 * once, later, on the loop. 0, or -1 (and no callback) on a bad id or no memory.
 */
int authz_session_fetch(authz_session_fetcher_t *f, const char *id, uint64_t gen,
                        authz_session_fetch_cb cb, void *ctx);

#endif
