/* SPDX-License-Identifier: MIT */
/* Drives a hiredis async context from a libh2o evloop. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "databroker/redis_h2o.h"

/*
 * h2o owns a dup() of hiredis's descriptor. Both refer to the same socket, so readiness is the
 * same, and each side closes only its own descriptor: h2o_socket_close never closes the fd
 * hiredis is about to close. (h2o_socket_export would also detach the socket, but in h2o 2.2
 * it asserts that no write notification is pending, which hiredis cannot promise.)
 */
typedef struct st_redis_h2o_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    bool reading;
    bool want_write;
} redis_h2o_t;

static void on_readable(h2o_socket_t *sock, const char *err)
{
    redis_h2o_t *p = sock->data;

    /* with DONT_READ, h2o reads nothing; hiredis reads and sees EOF or errors itself */
    redisAsyncHandleRead(p->ac);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    redis_h2o_t *p = sock->data;

    /* h2o's write notification is one-shot; hiredis asks again while it has bytes left */
    if (p->want_write) {
        p->want_write = false;
        redisAsyncHandleWrite(p->ac);
    }
}

static void add_read(void *privdata)
{
    redis_h2o_t *p = privdata;

    if (!p->reading) {
        p->reading = true;
        h2o_socket_read_start(p->sock, on_readable);
    }
}

static void del_read(void *privdata)
{
    redis_h2o_t *p = privdata;

    if (p->reading) {
        p->reading = false;
        h2o_socket_read_stop(p->sock);
    }
}

static void add_write(void *privdata)
{
    redis_h2o_t *p = privdata;

    p->want_write = true;
    if (!h2o_socket_is_writing(p->sock)) {
        h2o_socket_notify_write(p->sock, on_writable);
    }
}

static void del_write(void *privdata)
{
    redis_h2o_t *p = privdata;

    /* a notification already scheduled cannot be withdrawn; on_writable then ignores it */
    p->want_write = false;
}

static void cleanup(void *privdata)
{
    redis_h2o_t *p = privdata;

    p->ac->ev.data = NULL;
    h2o_socket_close(p->sock); /* closes our duplicate only */
    free(p);
}

int broker_redis_attach(redisAsyncContext *ac, h2o_loop_t *loop)
{
    redis_h2o_t *p;
    int fd;

    if (ac->ev.data != NULL || ac->c.fd < 0) {
        return REDIS_ERR;
    }

    fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return REDIS_ERR;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        close(fd);
        return REDIS_ERR;
    }
    p->ac = ac;
    p->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    p->sock->data = p;

    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return REDIS_OK;
}
