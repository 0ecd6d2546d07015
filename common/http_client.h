/* SPDX-License-Identifier: MIT */
/* Outbound HTTP(S) on libcurl that never blocks an event loop: the loop that asks drives the
 * transfers itself (one curl multi handle per client, its sockets and timers on the loop). */
#ifndef CMN_HTTP_CLIENT_H
#define CMN_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <h2o.h>

#define CMN_HTTP_BODY_MAX (1024 * 1024)
#define CMN_HTTP_MAX_HEADERS 16
#define CMN_HTTP_URL_MAX 8192
#define CMN_HTTP_HEADER_MAX 8192 /* one request header line */

/* res->err when the URL is refused before anything is sent: not http(s), or http:// to a host
 * that is not loopback (or allow_loopback_http is off) */
extern const char cmn_http_err_insecure_url[];

/* TLS and policy of one client; strings are copied at create time */
typedef struct st_cmn_http_client_config_t {
    const char *ca_file;          /* extra CA bundle, or NULL for the system store only */
    bool ca_file_only;            /* true: trust only ca_file (internal mTLS), not the system */
    const char *client_cert_file; /* client certificate for mTLS, or NULL */
    const char *client_key_file;
    bool allow_loopback_http;     /* permit http:// to 127.0.0.0/8, ::1 and localhost */
    unsigned connect_timeout_ms;  /* default 5000 */
    unsigned total_timeout_ms;    /* default 10000 */
} cmn_http_client_config_t;

typedef struct st_cmn_http_request_t {
    const char *method;  /* "GET" when NULL */
    const char *url;
    const char *headers[CMN_HTTP_MAX_HEADERS]; /* "Name: value", NULL-terminated */
    h2o_iovec_t body;
    unsigned total_timeout_ms; /* 0 = the client's default; for long polls */
    size_t body_max;           /* longest answer taken; 0 = CMN_HTTP_BODY_MAX */
} cmn_http_request_t;

typedef struct st_cmn_http_response_t {
    const char *err; /* NULL on a complete HTTP exchange; else cmn_err_timeout, cmn_err_io, ... */
    char errbuf[256]; /* curl's text for err, for logs (never holds request secrets) */
    int status;
    bool connect_failed; /* with err: the request never reached the server (safe to retry) */
    h2o_iovec_t body;         /* NUL-terminated; owned by the client, valid during the callback */
    h2o_iovec_t content_type; /* likewise */
} cmn_http_response_t;

typedef void (*cmn_http_cb)(void *ctx, const cmn_http_response_t *res);

typedef struct st_cmn_http_client_t cmn_http_client_t;

/**
 * Creates a client that runs on `loop`. NULL on failure. Create, use and destroy it from the
 * loop's thread, and destroy it outside its own callbacks.
 */
cmn_http_client_t *cmn_http_client_create(h2o_loop_t *loop, const cmn_http_client_config_t *cfg);
void cmn_http_client_destroy(cmn_http_client_t *client);

/**
 * Starts a request; everything in `req` is copied. `cb` is called exactly once, later, on the
 * loop's thread, also on failure (never from inside this call; it may send again). Returns 0,
 * or -1 on bad arguments (then cb is not called). A refused or malformed URL is reported
 * through cb (cmn_http_err_insecure_url, cmn_err_malformed), a body over CMN_HTTP_BODY_MAX (or
 * req->body_max) as cmn_err_too_large, a timeout as cmn_err_timeout, a failed connection as
 * cmn_err_unavailable and other transport failures as cmn_err_io.
 * Requests still in flight when the client is destroyed are dropped without a callback.
 */
int cmn_http_client_send(cmn_http_client_t *client, const cmn_http_request_t *req, cmn_http_cb cb,
                         void *ctx);

/**
 * Blocking variant for threads that run no event loop (start-up, the change-stream thread).
 * Fills `res`; free its body with cmn_http_response_clear. Returns 0 when an HTTP answer came
 * back (any status), -1 otherwise (res->err set).
 */
int cmn_http_fetch_blocking(const cmn_http_client_config_t *cfg, const cmn_http_request_t *req,
                            cmn_http_response_t *res);
void cmn_http_response_clear(cmn_http_response_t *res);

/**
 * builds an application/x-www-form-urlencoded body ("a=1&b=2") from NULL-terminated pairs
 * {"a", "1", "b", "2", NULL}; caller frees with free(). NULL when it would pass
 * CMN_HTTP_BODY_MAX or the pairs are odd.
 */
char *cmn_http_form_encode(const char *const *pairs);

#endif
