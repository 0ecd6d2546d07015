/* SPDX-License-Identifier: MIT */
/* Regression: a server out of file descriptors must not spin on its listener, and recovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <h2o.h>
#include "common/server.h"

#define FDS_PORT 24431
#define FDS_LIMIT 48    /* descriptors the server child may hold */
#define FDS_CLIENTS 120 /* idle connections: more than the child can accept */

static pid_t child = -1;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    cmn_send_text(req, 200, "OK", "ok");
    return 0;
}

/* the server runs in a child whose descriptor limit is tiny */
static pid_t start_child(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        static cmn_config_t config;
        static cmn_server_t server;
        struct rlimit lim = {FDS_LIMIT, FDS_LIMIT};
        const char *err = NULL;
        setrlimit(RLIMIT_NOFILE, &lim);
        config.timeout_idle_ms = 60000;
        if (cmn_server_init(&server, &config, "127.0.0.1:24431", CMN_TLS_NONE, on_req, &err) != 0) {
            _exit(3);
        }
        _exit(cmn_server_run(&server, 1) == 0 ? 0 : 4);
    }
    return pid;
}

static int connect_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(FDS_PORT)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* utime + stime of a process, in clock ticks */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long utime = 0, stime = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    /* fields 14 and 15, counted after the ")" that closes the command name */
    char *p = strrchr(buf, ')');
    assert_non_null(p);
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                            &stime),
                     2);
    return (long)(utime + stime);
}

/* one GET on a fresh connection; true when "200" came back within the socket timeout */
static int get_ok(void)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct timeval tv = {2, 0};
    char buf[256] = {0};
    int fd = connect_port();

    if (fd == -1) {
        return 0;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    return n > 12 && strncmp(buf + 9, "200", 3) == 0;
}

static void test_out_of_descriptors_does_not_spin(void **state)
{
    pid_t pid = child = start_child();
    int clients[FDS_CLIENTS];
    long ticks_per_s = sysconf(_SC_CLK_TCK);
    int ready = 0;

    for (int i = 0; i < 100 && !ready; i++) {
        usleep(20000);
        ready = get_ok();
    }
    assert_true(ready);

    /* the backlog still takes these connections, the child cannot accept them all */
    for (int i = 0; i < FDS_CLIENTS; i++) {
        clients[i] = connect_port();
    }
    usleep(200000);
    long before = cpu_ticks(pid);
    sleep(2);
    long used = cpu_ticks(pid) - before;

    /* a spinning loop burns the whole 2 s; a paused listener next to nothing */
    assert_true(used < ticks_per_s / 2);

    for (int i = 0; i < FDS_CLIENTS; i++) {
        if (clients[i] != -1) {
            close(clients[i]);
        }
    }

    /* once descriptors are free again, it serves: within its 1 s pause and the idle reaping */
    ready = 0;
    for (int i = 0; i < 40 && !ready; i++) {
        usleep(100000);
        ready = get_ok();
    }
    assert_true(ready);
}

/* runs also when an assertion failed, so no server child outlives the test */
static int stop_child(void **state)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_out_of_descriptors_does_not_spin, stop_child),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
