/* SPDX-License-Identifier: MIT */
/* The HTTP server side every daemon shares: listeners, TLS or mTLS, worker threads, responses. */
#include "common/server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/rand.h>
#include <h2o.h>
#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"

#define SERVER_MAX_THREADS 256
#define SERVER_ADDRESS_MAX 256
#define SERVER_LISTEN_BACKLOG 1024
#define SERVER_ACCEPT_BATCH 64
#define SERVER_REQ_ID_MAX 64
#define SERVER_LOG_PATH_MAX 128
#define SERVER_DRAIN_MS 2000

/* one worker: its loop, h2o context and listening socket */
typedef struct st_cmn_server_thread_t {
    cmn_server_t *server;
    unsigned index;
    pthread_t tid;
    int fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_timeout_entry_t accept_resume; /* linked while accepting is paused (out of fds) */
} server_thread_t;

/* the handler registered at "/": it remembers its server for cmn_server_from_handler */
typedef struct st_server_handler_t {
    h2o_handler_t super;
    cmn_server_t *server;
} server_handler_t;

static const char err_address[] = "listen address must be \":port\" or \"host:port\"";
static const char err_resolve[] = "listen address does not resolve to an IPv4 or IPv6 address";

/* workers whose context or loop could not be freed at stop: kept reachable on purpose, so
 * leak checkers do not report what the process exit releases anyway */
static server_thread_t *retained[SERVER_MAX_THREADS];
static size_t num_retained;
static pthread_mutex_t retained_mutex = PTHREAD_MUTEX_INITIALIZER;

/* set by SIGTERM or SIGINT; a signal means the whole process is going down */
static volatile sig_atomic_t signal_stop;

static void on_stop_signal(int signo)
{
    signal_stop = 1;
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        return -1;
    }

    /* a peer closing early must not kill the process while we write */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* splits "host:port", ":port" or "[v6]:port" and resolves it numerically into the server */
static int parse_address(cmn_server_t *server, const char *address, const char **err)
{
    char host[SERVER_ADDRESS_MAX];
    const char *colon = strrchr(address, ':');
    struct addrinfo hints, *res = NULL;
    size_t host_len;

    if (colon == NULL || colon[1] == '\0' || strlen(address) >= sizeof(host)) {
        *err = err_address;
        return -1;
    }
    host_len = (size_t)(colon - address);
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG;
    /* ":port" binds every IPv4 address, like the Go servers this replaces */
    hints.ai_family = host[0] == '\0' ? AF_INET : AF_UNSPEC;
    if (getaddrinfo(host[0] == '\0' ? NULL : host, colon + 1, &hints, &res) != 0) {
        *err = err_resolve;
        return -1;
    }
    memcpy(&server->_addr, res->ai_addr, res->ai_addrlen);
    server->_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_listener(const cmn_server_t *server)
{
    int fd = socket(server->_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;

    if (fd == -1) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (const struct sockaddr *)&server->_addr, server->_addrlen) != 0 ||
        listen(fd, SERVER_LISTEN_BACKLOG) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
    server_thread_t *thread = H2O_STRUCT_FROM_MEMBER(server_thread_t, accept_resume, entry);

    if (thread->listener != NULL) {
        h2o_socket_read_start(thread->listener, on_accept);
    }
}

/*
 * Out of descriptors or memory the backlog stays readable, so a loop that kept polling it would
 * spin: stop accepting for a second (connections already open keep being served) and say why.
 */
static void pause_accepting(server_thread_t *thread, int error)
{
    cmn_log_warn(NULL, "worker %u cannot accept connections: %s; pausing accept for 1s",
                 thread->index, strerror(error));
    h2o_socket_read_stop(thread->listener);
    h2o_timeout_link(thread->loop, &thread->ctx.one_sec_timeout, &thread->accept_resume);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    server_thread_t *thread = listener->data;

    if (err != NULL) {
        return;
    }

    /* drain the backlog a batch at a time so one busy listener cannot starve the loop */
    for (int i = 0; i < SERVER_ACCEPT_BATCH; i++) {
        errno = 0;
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause_accepting(thread, errno);
            }
            break;
        }
        h2o_accept(&thread->accept_ctx, sock);
    }
}

static int server_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    server_handler_t *handler = (server_handler_t *)self;

    if (cmn_log_enabled(CMN_LOG_DEBUG)) {
        char path[SERVER_LOG_PATH_MAX * 4 + 8];
        char host[SERVER_LOG_PATH_MAX * 4 + 8];
        /* the query is never logged: it carries codes, states, handoff tokens and signatures */
        size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
        cmn_log_escape(req->path.base, path_len, SERVER_LOG_PATH_MAX, path, sizeof(path));
        cmn_log_escape(req->authority.base, req->authority.len, SERVER_LOG_PATH_MAX, host,
                       sizeof(host));
        cmn_log(CMN_LOG_DEBUG, NULL, "request %.*s \"%s\" \"%s\"", (int)req->method.len,
                req->method.base, host, path);
    }
    return handler->server->on_req(self, req);
}

static void thread_setup(server_thread_t *thread)
{
    cmn_server_t *server = thread->server;

    thread->loop = h2o_evloop_create();
    h2o_context_init(&thread->ctx, thread->loop, &server->globalconf);
    thread->accept_ctx.ctx = &thread->ctx;
    thread->accept_ctx.hosts = server->globalconf.hosts;
    thread->accept_ctx.ssl_ctx = server->ssl_ctx;

    thread->listener = h2o_evloop_socket_create(thread->loop, thread->fd,
                                                H2O_SOCKET_FLAG_DONT_READ);
    thread->listener->data = thread;
    thread->accept_resume = (h2o_timeout_entry_t){.cb = on_accept_resume};
    h2o_socket_read_start(thread->listener, on_accept);

    if (server->on_thread_init != NULL) {
        server->on_thread_init(&thread->ctx, thread->index, server->thread_init_arg);
    }
}

static void retain(server_thread_t *thread)
{
    pthread_mutex_lock(&retained_mutex);
    if (num_retained < SERVER_MAX_THREADS) {
        retained[num_retained++] = thread;
    }
    pthread_mutex_unlock(&retained_mutex);
}

static bool has_connections(h2o_context_t *ctx)
{
    return !h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns);
}

/* h2o_context_dispose asserts that its timeouts are empty; true when it is safe to call */
static bool can_dispose(h2o_context_t *ctx)
{
    h2o_timeout_t *timeouts[] = {&ctx->zero_timeout,        &ctx->one_sec_timeout,
                                 &ctx->hundred_ms_timeout,  &ctx->handshake_timeout,
                                 &ctx->http1.req_timeout,   &ctx->http2.idle_timeout,
                                 &ctx->http2.graceful_shutdown_timeout, &ctx->proxy.io_timeout};

    if (h2o_timeout_is_linked(&ctx->http2._graceful_shutdown_timeout)) {
        h2o_timeout_unlink(&ctx->http2._graceful_shutdown_timeout);
    }
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        if (!h2o_linklist_is_empty(&timeouts[i]->_entries)) {
            return false;
        }
    }
    return !has_connections(ctx);
}

/*
 * Stops accepting, asks HTTP/2 peers to go away, and gives open connections up to
 * SERVER_DRAIN_MS to finish. Returns true when none is left, so the context can go.
 */
static bool drain(server_thread_t *thread)
{
    uint64_t deadline;

    if (h2o_timeout_is_linked(&thread->accept_resume)) {
        h2o_timeout_unlink(&thread->accept_resume);
    }
    h2o_socket_read_stop(thread->listener);
    h2o_socket_close(thread->listener); /* also closes fd */
    thread->listener = NULL;
    thread->fd = -1;

    h2o_context_request_shutdown(&thread->ctx);
    deadline = h2o_now(thread->loop) + SERVER_DRAIN_MS;
    do {
        h2o_evloop_run(thread->loop, 10);
    } while (has_connections(&thread->ctx) && h2o_now(thread->loop) < deadline);
    return !has_connections(&thread->ctx);
}

/*
 * Runs one worker until a stop is asked for. When connections outlive the drain, the context
 * and loop stay allocated (h2o 2.2 cannot dispose a context with live connections); the
 * process is about to exit anyway.
 */
static void *thread_main(void *arg)
{
    server_thread_t *thread = arg;
    cmn_server_t *server = thread->server;

    thread_setup(thread);
    while (!signal_stop && !server->_stop) {
        h2o_evloop_run(thread->loop, 100);
    }

    bool drained = drain(thread);
    if (server->on_thread_dispose != NULL) {
        server->on_thread_dispose(&thread->ctx, thread->index, server->thread_init_arg);
    }
    if (!drained) {
        cmn_log_warn(NULL, "worker %u stopped with connections still open", thread->index);
    }
    if (drained && can_dispose(&thread->ctx)) {
        h2o_multithread_queue_t *queue = thread->ctx.queue;
        h2o_context_dispose(&thread->ctx);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR == 2
        /* h2o 2.2's evloop variant destroys the context's queue without freeing it */
        free(queue);
#else
        (void)queue;
#endif
        h2o_evloop_run(thread->loop, 0); /* completes the closes dispose started */
        if (h2o_linklist_is_empty(&thread->loop->_timeouts)) {
            h2o_evloop_destroy(thread->loop);
            thread->loop = NULL;
            return NULL;
        }
    }
    retain(thread);
    return NULL;
}

/*
 * libh2o 2.2 has one HTTP/1 timer, from when a connection starts waiting for a request until
 * the request's headers are in: it bounds a slow request (timeout_read) and an idle keep-alive
 * connection (timeout_idle) alike, so it takes the shorter of the two. HTTP/2 has its own idle
 * timer. There is no write timer to give timeout_write to (KNOWN_LIMITATIONS.md).
 */
static void apply_timeouts(h2o_globalconf_t *conf, const cmn_config_t *config)
{
    uint64_t read_ms = config->timeout_read_ms, idle_ms = config->timeout_idle_ms;
    uint64_t shorter = read_ms != 0 && (idle_ms == 0 || read_ms < idle_ms) ? read_ms : idle_ms;

    if (shorter != 0) {
        conf->http1.req_timeout = shorter;
    }
    if (idle_ms != 0) {
        conf->http2.idle_timeout = idle_ms;
    }
}

static void setup_globalconf(cmn_server_t *server, const cmn_config_t *config)
{
    h2o_pathconf_t *pathconf;
    server_handler_t *handler;

    h2o_config_init(&server->globalconf);
    server->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("portcullis"));
    if (config != NULL) {
        apply_timeouts(&server->globalconf, config);
    }

    server->hostconf = h2o_config_register_host(&server->globalconf,
                                                h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(server->hostconf, "/", 0);
    handler = (server_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = server_on_req;
    handler->server = server;
}

int cmn_server_init(cmn_server_t *server, const cmn_config_t *config, const char *address,
                    cmn_tls_mode_t tls, cmn_server_handler_cb on_req, const char **err)
{
    memset(server, 0, sizeof(*server));
    server->config = config;
    server->on_req = on_req;
    server->num_threads = 1;

    if (address == NULL || parse_address(server, address, err) != 0) {
        if (address == NULL) {
            *err = err_address;
        }
        return -1;
    }
    server->address = h2o_mem_alloc(strlen(address) + 1);
    memcpy(server->address, address, strlen(address) + 1);

    if (tls != CMN_TLS_NONE) {
        server->ssl_ctx = cmn_tls_server_ctx(config, tls, server->_errbuf,
                                             sizeof(server->_errbuf));
        if (server->ssl_ctx == NULL) {
            *err = server->_errbuf;
            free(server->address);
            server->address = NULL;
            return -1;
        }
    }

    setup_globalconf(server, config);
    return 0;
}

static void close_listeners(server_thread_t *threads, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (threads[i].fd != -1) {
            close(threads[i].fd);
            threads[i].fd = -1;
        }
    }
}

int cmn_server_run(cmn_server_t *server, unsigned num_threads)
{
    server_thread_t *threads;

    if (num_threads == 0 || num_threads > SERVER_MAX_THREADS || install_signals() != 0) {
        return -1;
    }
    server->num_threads = num_threads;
    threads = h2o_mem_alloc(sizeof(*threads) * num_threads);
    memset(threads, 0, sizeof(*threads) * num_threads);
    server->_threads = threads;

    /* open every socket first, so a port in use fails before any thread starts */
    for (unsigned i = 0; i < num_threads; i++) {
        threads[i].server = server;
        threads[i].index = i;
        threads[i].fd = open_listener(server);
        if (threads[i].fd == -1) {
            cmn_log_error(NULL, "cannot listen on \"%s\": %s", server->address, strerror(errno));
            close_listeners(threads, i);
            return -1;
        }
    }

    /* thread 0 is the calling thread */
    for (unsigned i = 1; i < num_threads; i++) {
        pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
    }
    thread_main(&threads[0]);
    for (unsigned i = 1; i < num_threads; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    return 0;
}

void cmn_server_dispose(cmn_server_t *server)
{
    /* a worker whose connections outlived the drain still uses the globalconf: keep it all */
    for (unsigned i = 0; server->_threads != NULL && i < server->num_threads; i++) {
        if (server->_threads[i].loop != NULL) {
            return;
        }
    }
    h2o_config_dispose(&server->globalconf);
    SSL_CTX_free(server->ssl_ctx); /* NULL-safe */
    free(server->address);
    free(server->_threads);
    memset(server, 0, sizeof(*server));
}

void cmn_server_stop(cmn_server_t *server)
{
    server->_stop = 1;
}

cmn_server_t *cmn_server_from_handler(h2o_handler_t *self)
{
    return ((server_handler_t *)self)->server;
}

const char *cmn_server_address(const cmn_config_t *config, const char *fallback)
{
    const char *env = getenv("ADDRESS");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    if (config != NULL && config->address != NULL && config->address[0] != '\0') {
        return config->address;
    }
    return fallback;
}

const char *cmn_reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

static void start_inline(h2o_req_t *req, int status, const char *reason, const char *type)
{
    req->res.status = status;
    req->res.reason = reason != NULL ? reason : cmn_reason_phrase(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
                   strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
}

void cmn_send_text(h2o_req_t *req, int status, const char *reason, const char *body)
{
    size_t len = strlen(body);

    start_inline(req, status, reason, "text/plain; charset=utf-8");
    req->res.content_length = len;
    h2o_send_inline(req, body, len); /* copies the body into the pool */
}

void cmn_send_json(h2o_req_t *req, int status, const char *json)
{
    size_t len = strlen(json);

    start_inline(req, status, NULL, "application/json");
    req->res.content_length = len;
    h2o_send_inline(req, json, len);
}

void cmn_send_ndjson(h2o_req_t *req, int status, h2o_iovec_t body)
{
    start_inline(req, status, NULL, "application/x-ndjson");
    req->res.content_length = body.len;
    h2o_send_inline(req, body.base, body.len);
}

void cmn_send_html(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body)
{
    start_inline(req, status, reason, "text/html; charset=utf-8");
    req->res.content_length = body.len;
    h2o_send_inline(req, body.base, body.len);
}

/*
 * Not h2o_send_redirect: it resets res.headers, which would drop the Set-Cookie headers the
 * daemons add before redirecting.
 */
void cmn_send_redirect(h2o_req_t *req, int status, h2o_iovec_t location)
{
    h2o_iovec_t copy = h2o_strdup(&req->pool, location.base, location.len);

    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, copy.base, copy.len);
    start_inline(req, status, NULL, "text/plain; charset=utf-8");
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}

void cmn_add_header(h2o_req_t *req, const char *name, h2o_iovec_t value)
{
    size_t len = strlen(name);
    char *lower = (char *)name;

    /* HTTP/2 wants lower-case names; copy only when the caller's is not */
    for (size_t i = 0; i < len; i++) {
        if (isupper((unsigned char)name[i])) {
            lower = h2o_strdup(&req->pool, name, len).base;
            h2o_strtolower(lower, len);
            break;
        }
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, lower, len, 1, NULL, value.base,
                          value.len);
}

h2o_iovec_t cmn_req_header(h2o_req_t *req, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name->len == len && strncasecmp(h->name->base, name, len) == 0) {
            return h->value;
        }
    }
    return h2o_iovec_init(NULL, 0);
}

static bool is_valid_req_id(h2o_iovec_t id)
{
    if (id.len == 0 || id.len > SERVER_REQ_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.base[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

const char *cmn_req_id(h2o_req_t *req)
{
    static const char hex[] = "0123456789abcdef";
    h2o_iovec_t given = cmn_req_header(req, "x-request-id");
    unsigned char raw[8];
    char *id;

    if (is_valid_req_id(given)) {
        return h2o_strdup(&req->pool, given.base, given.len).base;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        /* an id only correlates log lines; a weak one is better than none */
        for (size_t i = 0; i < sizeof(raw); i++) {
            raw[i] = (unsigned char)random();
        }
    }
    id = h2o_mem_alloc_pool(&req->pool, sizeof(raw) * 2 + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[i * 2] = hex[raw[i] >> 4];
        id[i * 2 + 1] = hex[raw[i] & 0xf];
    }
    id[sizeof(raw) * 2] = '\0';

    /* remembered on the request, so every log line of this request carries the same id */
    h2o_set_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-request-id"), 0, id,
                          sizeof(raw) * 2, 1);
    return id;
}

h2o_iovec_t cmn_req_host(h2o_req_t *req)
{
    h2o_iovec_t authority = req->authority;
    size_t len = authority.len;
    h2o_iovec_t host;

    if (len != 0 && authority.base[0] == '[') {
        /* an IPv6 literal keeps its brackets, loses the port after them */
        const char *end = memchr(authority.base, ']', len);
        if (end != NULL) {
            len = (size_t)(end - authority.base) + 1;
        }
    } else {
        const char *colon = memchr(authority.base, ':', len);
        if (colon != NULL) {
            len = (size_t)(colon - authority.base);
        }
    }

    host = h2o_strdup(&req->pool, authority.base, len);
    h2o_strtolower(host.base, host.len);
    return host;
}

static void guard_unref(cmn_req_guard_t *guard)
{
    if (--guard->_refs == 0) {
        free(guard);
    }
}

/* runs when the request's pool is cleared: the request is gone from now on */
static void on_guard_pool_dispose(void *p)
{
    cmn_req_guard_t *guard = *(cmn_req_guard_t **)p;

    guard->req = NULL;
    guard_unref(guard);
}

cmn_req_guard_t *cmn_req_guard_create(h2o_req_t *req)
{
    cmn_req_guard_t *guard = h2o_mem_alloc(sizeof(*guard));
    cmn_req_guard_t **marker;

    guard->req = req;
    guard->_refs = 2;
    marker = h2o_mem_alloc_shared(&req->pool, sizeof(*marker), on_guard_pool_dispose);
    *marker = guard;
    return guard;
}

void cmn_req_guard_release(cmn_req_guard_t *guard)
{
    if (guard != NULL) {
        guard_unref(guard);
    }
}
