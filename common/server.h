/* SPDX-License-Identifier: MIT */
/* The HTTP server side every daemon shares: listeners, TLS or mTLS, worker threads, responses. */
#ifndef CMN_SERVER_H
#define CMN_SERVER_H

#include <stdbool.h>
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
    void *thread_init_arg;
    unsigned num_threads;
    char *address; /* the listen address */
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
 * process receives SIGTERM or SIGINT. Returns 0 on a clean stop, -1 when it cannot listen.
 */
int cmn_server_run(cmn_server_t *server, unsigned num_threads);

/** the address the daemon listens on: `ADDRESS` env / `address` key, else the default */
const char *cmn_server_address(const cmn_config_t *config, const char *fallback);

/* responses */
void cmn_send_text(h2o_req_t *req, int status, const char *reason, const char *body);
void cmn_send_json(h2o_req_t *req, int status, const char *json); /* body copied into the pool */
void cmn_send_html(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body);
void cmn_send_redirect(h2o_req_t *req, int status, h2o_iovec_t location);
void cmn_add_header(h2o_req_t *req, const char *name, h2o_iovec_t value); /* copies nothing */

/** the value of request header `name` (case-insensitive), or {NULL, 0}; first match */
h2o_iovec_t cmn_req_header(h2o_req_t *req, const char *name);

/** the request id: X-Request-Id when it is short and printable, else a random one (pool) */
const char *cmn_req_id(h2o_req_t *req);

/** the request's Host without port, lower-case, in the pool */
h2o_iovec_t cmn_req_host(h2o_req_t *req);

/**
 * A pending-work guard for handlers that answer later: allocated in the request pool, it is
 * told when the request goes away (connection closed) so a late callback can drop its answer.
 */
typedef struct st_cmn_req_guard_t {
    h2o_req_t *req; /* NULL once the request is gone */
} cmn_req_guard_t;
cmn_req_guard_t *cmn_req_guard_create(h2o_req_t *req);
/** drops the guard's reference; call once the late callback ran */
void cmn_req_guard_release(cmn_req_guard_t *guard);

#endif
