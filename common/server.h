/* SPDX-License-Identifier: MIT */
/* The HTTP server side every daemon shares: listeners, TLS or mTLS, worker threads, responses. */
#ifndef CMN_SERVER_H
#define CMN_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <h2o.h>
#include "common/config.h"

typedef enum en_cmn_tls_mode_t {
    CMN_TLS_NONE = 0,   /* plain HTTP (insecure_server: nginx terminates TLS) */
    CMN_TLS_SERVER,     /* TLS with certificate_file */
    CMN_TLS_MUTUAL,     /* TLS that demands a client certificate chaining to the CA */
} cmn_tls_mode_t;

/* called for every request; returns 0 after it responded (or will respond later) */
typedef int (*cmn_server_handler_cb)(h2o_handler_t *self, h2o_req_t *req);

/* called once on each worker thread before its loop runs (per-thread state), may be NULL */
typedef void (*cmn_server_thread_init_cb)(h2o_context_t *ctx, unsigned thread_index, void *arg);

typedef struct st_cmn_server_t {
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    SSL_CTX *ssl_ctx; /* NULL for CMN_TLS_NONE */
    const cmn_config_t *config;
    cmn_server_handler_cb on_req;
    cmn_server_thread_init_cb on_thread_init;
    /* called on each worker after the stop drain, before its context goes; may be NULL. It
     * should dispose what on_thread_init made (h2o_timeout_dispose, clients) so the loop can go */
    cmn_server_thread_init_cb on_thread_dispose;
    void *thread_init_arg; /* passed to both */
    unsigned num_threads;
    char *address; /* the listen address */
    void *data;    /* the daemon's own state, for handlers (see cmn_server_from_handler) */

    /* private */
    struct sockaddr_storage _addr;
    socklen_t _addrlen;
    volatile sig_atomic_t _stop;
    struct st_cmn_server_thread_t *_threads;
    char _errbuf[512]; /* holds the text `*err` points at when it names a file */
} cmn_server_t;

/**
 * Prepares a server for `address` (":port" or "host:port"): the handler sees every request on
 * every host. Loads certificate_file, certificate_key_file and certificate_authority_file for
 * the TLS modes. Returns 0, or -1 with `*err` (a static or malloc'd-never, printable message).
 */
int cmn_server_init(cmn_server_t *server, const cmn_config_t *config, const char *address,
                    cmn_tls_mode_t tls, cmn_server_handler_cb on_req, const char **err);

/**
 * Runs `num_threads` event loops (each its own listening socket with SO_REUSEPORT) until the
 * process receives SIGTERM or SIGINT (or cmn_server_stop). Then it stops accepting and gives
 * open connections up to 2 s to finish. Thread 0 is the calling thread. Returns 0 on a clean
 * stop, -1 when it cannot listen (nothing was started then).
 */
int cmn_server_run(cmn_server_t *server, unsigned num_threads);

/**
 * Releases what cmn_server_init and cmn_server_run allocated, once cmn_server_run returned (or
 * was never called). When a worker still had connections after the drain at stop, nothing is
 * released (its context still uses the configuration); the process is expected to exit.
 */
void cmn_server_dispose(cmn_server_t *server);

/**
 * Asks a running server to stop, as SIGTERM would, from any thread (tests, embedders); the loops
 * notice within 100 ms and cmn_server_run returns 0.
 */
void cmn_server_stop(cmn_server_t *server);

/** the server a handler belongs to (`self` as passed to on_req) */
cmn_server_t *cmn_server_from_handler(h2o_handler_t *self);

/** the address the daemon listens on: `ADDRESS` env / `address` key, else the default */
const char *cmn_server_address(const cmn_config_t *config, const char *fallback);

/* responses */
/** the standard reason phrase for `status`, or "" for a status without one here */
const char *cmn_reason_phrase(int status);

void cmn_send_text(h2o_req_t *req, int status, const char *reason, const char *body);
void cmn_send_json(h2o_req_t *req, int status, const char *json); /* body copied into the pool */
void cmn_send_html(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body);
/* one JSON object per line; body copied into the pool */
void cmn_send_ndjson(h2o_req_t *req, int status, h2o_iovec_t body);
void cmn_send_redirect(h2o_req_t *req, int status, h2o_iovec_t location);
void cmn_add_header(h2o_req_t *req, const char *name, h2o_iovec_t value); /* copies nothing */

/** the value of request header `name` (case-insensitive), or {NULL, 0}; first match */
h2o_iovec_t cmn_req_header(h2o_req_t *req, const char *name);

/**
 * the request id: X-Request-Id when it is 1..64 characters of [A-Za-z0-9._-], else a random one
 * (16 hex digits, pool). A generated id is stored on the request as its X-Request-Id, so
 * later calls for the same request return the same id.
 */
const char *cmn_req_id(h2o_req_t *req);

/** the request's Host without port, lower-case, in the pool */
h2o_iovec_t cmn_req_host(h2o_req_t *req);

/**
 * A pending-work guard for handlers that answer later: it is told when the request goes away
 * (its pool is cleared because the connection closed) so a late callback can drop its answer.
 * The guard itself is malloc'd and outlives the request until both the pool and the callback
 * let go of it: create it in the handler, and in the late callback check `guard->req` (NULL:
 * drop the answer), then call cmn_req_guard_release exactly once. Loop thread only.
 */
typedef struct st_cmn_req_guard_t {
    h2o_req_t *req; /* NULL once the request is gone */
    unsigned _refs; /* the pool's and the callback's; loop thread only */
} cmn_req_guard_t;
cmn_req_guard_t *cmn_req_guard_create(h2o_req_t *req);
/** drops the guard's reference; call once the late callback ran */
void cmn_req_guard_release(cmn_req_guard_t *guard);

#endif
