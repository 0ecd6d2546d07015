/* SPDX-License-Identifier: MIT */
/* Baseline B1 of the benchmark: a bare libh2o server that answers every request 200, no work. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <h2o.h>

/*
 * The same shape as common/server.c (one evloop and one SO_REUSEPORT listener per thread,
 * HTTP/1.1 in plain text), without anything on top, so that it is the limit of the HTTP stack
 * the daemons build on. Used both as the always-yes auth server and as the static upstream.
 *
 *   b1_server PORT [THREADS]     THREADS defaults to the number of cores, like authorize
 */

#define B1_MAX_THREADS 64
#define B1_BACKLOG 1024
#define B1_ACCEPT_BATCH 64

typedef struct st_b1_thread_t {
    pthread_t tid;
    int fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
} b1_thread_t;

static h2o_globalconf_t globalconf;
static volatile sig_atomic_t stop_asked;

static void on_signal(int signo)
{
    stop_asked = 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT("ok\n"));

    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain"));
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    b1_thread_t *thread = listener->data;

    if (err != NULL) {
        return;
    }
    for (int i = 0; i < B1_ACCEPT_BATCH; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            break;
        }
        h2o_accept(&thread->accept_ctx, sock);
    }
}

static int open_listener(uint16_t port)
{
    struct sockaddr_in addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;

    if (fd == -1) {
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, B1_BACKLOG) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *thread_main(void *arg)
{
    b1_thread_t *thread = arg;
    h2o_socket_t *listener;

    thread->loop = h2o_evloop_create();
    h2o_context_init(&thread->ctx, thread->loop, &globalconf);
    thread->accept_ctx.ctx = &thread->ctx;
    thread->accept_ctx.hosts = globalconf.hosts;

    listener = h2o_evloop_socket_create(thread->loop, thread->fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = thread;
    h2o_socket_read_start(listener, on_accept);

    /* the process exits when asked; nothing needs tearing down for a benchmark baseline */
    while (!stop_asked) {
        h2o_evloop_run(thread->loop, 100);
    }
    return NULL;
}

static int parse_args(int argc, char **argv, uint16_t *port, unsigned *threads)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char *end = NULL;
    long v;

    if (argc < 2 || argc > 3) {
        return -1;
    }
    v = strtol(argv[1], &end, 10);
    if (*end != '\0' || v < 1 || v > 65535) {
        return -1;
    }
    *port = (uint16_t)v;

    *threads = cores > 0 ? (unsigned)cores : 1;
    if (argc == 3) {
        v = strtol(argv[2], &end, 10);
        if (*end != '\0' || v < 1 || v > B1_MAX_THREADS) {
            return -1;
        }
        *threads = (unsigned)v;
    }
    if (*threads > B1_MAX_THREADS) {
        *threads = B1_MAX_THREADS;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static b1_thread_t threads[B1_MAX_THREADS];
    struct sigaction sa;
    h2o_hostconf_t *hostconf;
    h2o_handler_t *handler;
    uint16_t port = 0;
    unsigned n = 0;

    if (parse_args(argc, argv, &port, &n) != 0) {
        fprintf(stderr, "usage: %s PORT [THREADS (1..%d)]\n", argv[0], B1_MAX_THREADS);
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("b1"));
    hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    handler = h2o_create_handler(h2o_config_register_path(hostconf, "/", 0), sizeof(*handler));
    handler->on_req = on_req;

    for (unsigned i = 0; i < n; i++) {
        threads[i].fd = open_listener(port);
        if (threads[i].fd == -1) {
            fprintf(stderr, "b1_server: cannot listen on 127.0.0.1:%u: %s\n", port,
                    strerror(errno));
            return 1;
        }
    }
    for (unsigned i = 1; i < n; i++) {
        if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0) {
            fprintf(stderr, "b1_server: cannot start a thread\n");
            return 1;
        }
    }
    fprintf(stderr, "b1_server listening on 127.0.0.1:%u with %u threads\n", port, n);
    thread_main(&threads[0]);
    for (unsigned i = 1; i < n; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    return 0;
}
