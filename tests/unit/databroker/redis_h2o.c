/* SPDX-License-Identifier: MIT */
/* Tests of the hiredis-on-h2o adapter against a real redis-server started on 127.0.0.1. */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "databroker/redis_h2o.h"

#define BIG_VALUE_LEN (4 * 1024 * 1024) /* far past a socket buffer: partial writes */
#define PIPELINE 200

static pid_t redis_pid = -1;
static int redis_port;

typedef struct st_state_t {
    h2o_loop_t *loop;
    int connected;
    int disconnected;
    int replies;
    int errors;
    size_t got_len;
} state_t;

/* open sockets of this process (h2o 2.2's evloop_destroy leaves its epoll fd open: not ours) */
static int count_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300];
    char target[64];
    int n = 0;

    assert_non_null(d);
    for (e = readdir(d); e != NULL; e = readdir(d)) {
        ssize_t len;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strncmp(target, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* a free 127.0.0.1 port in 30000-30999, below the kernel's ephemeral range */
static int pick_port(void)
{
    int i;

    for (i = 0; i != 1000; i++) {
        int port = 30000 + (int)((getpid() + i * 7) % 1000);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        if (fd >= 0) {
            close(fd);
        }
        if (ok) {
            return port;
        }
    }
    return -1;
}

static int start_redis(void **unused)
{
    char port[16];
    int i;

    redis_port = pick_port();
    if (redis_port < 0) {
        return -1;
    }
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
               (char *)NULL);
        _exit(127);
    }
    for (i = 0; i != 100; i++) {
        redisContext *c = redisConnect("127.0.0.1", redis_port);
        if (c != NULL && c->err == 0) {
            redisFree(c);
            return 0;
        }
        redisFree(c);
        usleep(50000);
    }
    return -1;
}

static int stop_redis(void **unused)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
    }
    return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    state_t *st = ac->data;

    st->connected = status == REDIS_OK ? 1 : -1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    state_t *st = ac->data;

    st->disconnected++;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    state_t *st = privdata;
    redisReply *r = reply;

    if (r == NULL) {
        return;
    }
    st->replies++;
    if (r->type == REDIS_REPLY_ERROR) {
        st->errors++;
    } else if (r->type == REDIS_REPLY_STRING) {
        st->got_len = r->len;
    }
}

static redisAsyncContext *connect_async(state_t *st)
{
    redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", redis_port);

    assert_non_null(ac);
    assert_int_equal(ac->err, 0);
    ac->data = st;
    assert_int_equal(broker_redis_attach(ac, st->loop), REDIS_OK);
    assert_int_equal(broker_redis_attach(ac, st->loop), REDIS_ERR); /* only once */
    assert_int_equal(redisAsyncSetConnectCallback(ac, on_connect), REDIS_OK);
    assert_int_equal(redisAsyncSetDisconnectCallback(ac, on_disconnect), REDIS_OK);
    return ac;
}

static void run_until(state_t *st, int *flag, int want)
{
    int i;

    for (i = 0; i != 500 && *flag < want; i++) {
        h2o_evloop_run(st->loop, 10);
    }
}

static void test_big_pipeline_then_free(void **unused)
{
    state_t st = {0};
    int fds_before = count_sockets();
    char *big = malloc(BIG_VALUE_LEN);
    redisAsyncContext *ac;
    int i;

    assert_non_null(big);
    memset(big, 'x', BIG_VALUE_LEN);
    st.loop = h2o_evloop_create();
    ac = connect_async(&st);

    /* queued before the connection is up: the first write event finishes the connect */
    redisAsyncCommand(ac, on_reply, &st, "SET big %b", big, (size_t)BIG_VALUE_LEN);
    for (i = 0; i != PIPELINE; i++) {
        redisAsyncCommand(ac, on_reply, &st, "INCR counter");
    }
    redisAsyncCommand(ac, on_reply, &st, "GET big");
    run_until(&st, &st.replies, PIPELINE + 2);

    assert_int_equal(st.connected, 1);
    assert_int_equal(st.replies, PIPELINE + 2);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.got_len, BIG_VALUE_LEN);

    /* freeing closes hiredis's fd and the adapter's duplicate, each exactly once */
    redisAsyncFree(ac);
    h2o_evloop_run(st.loop, 0);
    assert_int_equal(st.disconnected, 1);
    assert_int_equal(count_sockets(), fds_before);
    h2o_evloop_destroy(st.loop);
    free(big);
}

static void test_server_closes_connection(void **unused)
{
    state_t st = {0};
    int fds_before = count_sockets();
    redisAsyncContext *ac;

    st.loop = h2o_evloop_create();
    ac = connect_async(&st);
    redisAsyncCommand(ac, on_reply, &st, "CLIENT SETNAME victim");
    run_until(&st, &st.replies, 1);
    assert_int_equal(st.replies, 1);

    /* another connection kills this one: hiredis sees EOF through the adapter's read event */
    redisContext *killer = redisConnect("127.0.0.1", redis_port);
    assert_non_null(killer);
    redisReply *r = redisCommand(killer, "CLIENT KILL SKIPME yes");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(killer);

    run_until(&st, &st.disconnected, 1);
    assert_int_equal(st.disconnected, 1); /* hiredis freed the context itself */
    h2o_evloop_run(st.loop, 0);
    assert_int_equal(count_sockets(), fds_before);
    h2o_evloop_destroy(st.loop);
}

static void test_connect_refused(void **unused)
{
    state_t st = {0};
    redisAsyncContext *ac;

    st.loop = h2o_evloop_create();
    ac = redisAsyncConnect("127.0.0.1", 1); /* nothing listens on port 1 */
    assert_non_null(ac);
    if (ac->err == 0) {
        ac->data = &st;
        assert_int_equal(broker_redis_attach(ac, st.loop), REDIS_OK);
        assert_int_equal(redisAsyncSetConnectCallback(ac, on_connect), REDIS_OK);
        run_until(&st, &st.connected, 1);
        assert_int_equal(st.connected, -1); /* reported through the write event */
    } else {
        redisAsyncFree(ac);
    }
    h2o_evloop_run(st.loop, 0);
    h2o_evloop_destroy(st.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_pipeline_then_free),
        cmocka_unit_test(test_server_closes_connection),
        cmocka_unit_test(test_connect_refused),
    };

    return cmocka_run_group_tests(tests, start_redis, stop_redis);
}
