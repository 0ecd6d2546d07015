/* SPDX-License-Identifier: MIT */
/* Tests for common/http_client.c without a server: URL policy, connect failures, form bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <h2o.h>
#include "common/err.h"
#include "common/http_client.h"

#define REFUSED_URL "http://127.0.0.1:24421/"
#define FULL_PORT 24422 /* below the ephemeral range, so no outgoing connection holds it */
#define FILLERS 4

/* see tests/unit/common/server.c: h2o's per-thread recycle caches are not our leaks */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *fetch_err(const cmn_http_client_config_t *cfg, const char *url,
                             bool *connect_failed)
{
    cmn_http_request_t req = {.url = url};
    cmn_http_response_t res;
    const char *err;

    assert_int_equal(cmn_http_fetch_blocking(cfg, &req, &res), -1);
    assert_int_equal(res.status, 0);
    err = res.err;
    if (connect_failed != NULL) {
        *connect_failed = res.connect_failed;
    }
    cmn_http_response_clear(&res);
    return err;
}

static void test_insecure_urls_are_refused(void **state)
{
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    cmn_http_client_config_t strict = {0};

    assert_ptr_equal(fetch_err(&cfg, "http://example.com/", NULL), cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&cfg, "http://127.0.0.1.example.com/", NULL),
                     cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&cfg, "http://10.0.0.1/", NULL), cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&cfg, "http://localhost.example/", NULL),
                     cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&cfg, "ftp://127.0.0.1/", NULL), cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&cfg, "not a url", NULL), cmn_err_malformed);

    /* loopback http without the flag */
    assert_ptr_equal(fetch_err(&strict, REFUSED_URL, NULL), cmn_http_err_insecure_url);
    assert_ptr_equal(fetch_err(&strict, "http://app.localhost:24421/", NULL),
                     cmn_http_err_insecure_url);
}

static void test_bad_requests_are_refused(void **state)
{
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    cmn_http_request_t req = {.url = REFUSED_URL, .headers = {"X-A: 1\r\nX-Injected: 2"}};
    cmn_http_response_t res;
    char *long_url = malloc(CMN_HTTP_URL_MAX + 100);

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), -1);
    assert_ptr_equal(res.err, cmn_err_malformed);
    cmn_http_response_clear(&res);

    memset(long_url, 'a', CMN_HTTP_URL_MAX + 99);
    memcpy(long_url, "http://localhost/", 17);
    long_url[CMN_HTTP_URL_MAX + 99] = '\0';
    assert_ptr_equal(fetch_err(&cfg, long_url, NULL), cmn_err_too_large);
    free(long_url);
}

static void test_connect_refused(void **state)
{
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    bool connect_failed = false;

    /* loopback http passes the policy check, then nobody listens */
    assert_ptr_equal(fetch_err(&cfg, REFUSED_URL, &connect_failed), cmn_err_unavailable);
    assert_true(connect_failed);
    assert_ptr_equal(fetch_err(&cfg, "http://[::1]:24421/", &connect_failed),
                     cmn_err_unavailable);
}

/* a listener whose accept queue is full: further SYNs are dropped, so connects hang */
static int full_listener(int fillers[FILLERS])
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(FULL_PORT)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 0), 0);
    for (int i = 0; i < FILLERS; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    usleep(50000);
    return fd;
}

static void test_connect_timeout(void **state)
{
    int fillers[FILLERS];
    int fd = full_listener(fillers);
    cmn_http_client_config_t cfg = {.allow_loopback_http = true, .connect_timeout_ms = 300};
    bool connect_failed = false;
    uint64_t start = now_ms();

    assert_ptr_equal(fetch_err(&cfg, "http://127.0.0.1:24422/", &connect_failed),
                     cmn_err_timeout);
    assert_true(connect_failed);
    assert_true(now_ms() - start >= 250);
    assert_true(now_ms() - start < 3000);

    for (int i = 0; i < FILLERS; i++) {
        close(fillers[i]);
    }
    close(fd);
}

typedef struct st_async_t {
    int calls;
    pthread_t thread;
    const char *err;
} async_t;

static void on_done(void *ctx, const cmn_http_response_t *res)
{
    async_t *a = ctx;

    a->calls++;
    a->thread = pthread_self();
    a->err = res->err;
}

static void run_until(h2o_evloop_t *loop, const int *calls, int n)
{
    for (int i = 0; i < 500 && *calls < n; i++) {
        h2o_evloop_run(loop, 10);
    }
}

static void test_async_failures_come_later_on_the_loop(void **state)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    cmn_http_client_t *client = cmn_http_client_create(loop, &cfg);
    async_t refused = {0}, insecure = {0};

    assert_non_null(client);
    assert_int_equal(cmn_http_client_send(client, &(cmn_http_request_t){.url = REFUSED_URL},
                                          on_done, &refused),
                     0);
    assert_int_equal(cmn_http_client_send(client,
                                          &(cmn_http_request_t){.url = "http://example.com/"},
                                          on_done, &insecure),
                     0);
    assert_int_equal(refused.calls, 0);
    assert_int_equal(insecure.calls, 0); /* refused before curl, still not from inside send */

    run_until(loop, &refused.calls, 1);
    run_until(loop, &insecure.calls, 1);
    assert_int_equal(refused.calls, 1);
    assert_ptr_equal(refused.err, cmn_err_unavailable);
    assert_true(pthread_equal(refused.thread, pthread_self()));
    assert_int_equal(insecure.calls, 1);
    assert_ptr_equal(insecure.err, cmn_http_err_insecure_url);

    cmn_http_client_destroy(client);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

/* curl's connect timeout runs on the loop's timers (h2o lists of fixed lengths, re-armed) */
static void test_async_connect_timeout(void **state)
{
    int fillers[FILLERS];
    int fd = full_listener(fillers);
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = {.allow_loopback_http = true, .connect_timeout_ms = 700};
    cmn_http_client_t *client = cmn_http_client_create(loop, &cfg);
    async_t a = {0};
    uint64_t start = now_ms();

    assert_int_equal(cmn_http_client_send(client,
                                          &(cmn_http_request_t){.url = "http://127.0.0.1:24422/"},
                                          on_done, &a),
                     0);
    run_until(loop, &a.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_ptr_equal(a.err, cmn_err_timeout);
    assert_true(now_ms() - start >= 650);
    assert_true(now_ms() - start < 3000);

    cmn_http_client_destroy(client);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    for (int i = 0; i < FILLERS; i++) {
        close(fillers[i]);
    }
    close(fd);
}

typedef struct st_chain_t {
    cmn_http_client_t *client;
    int calls;
    const char *errs[2];
} chain_t;

/* the first answer sends the second request from inside its callback */
static void on_chain(void *ctx, const cmn_http_response_t *res)
{
    chain_t *c = ctx;

    c->errs[c->calls++] = res->err;
    if (c->calls == 1) {
        assert_int_equal(cmn_http_client_send(c->client,
                                              &(cmn_http_request_t){.url = REFUSED_URL},
                                              on_chain, c),
                         0);
        assert_int_equal(c->calls, 1);
    }
}

static void test_async_send_from_callback(void **state)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    chain_t c = {.client = cmn_http_client_create(loop, &cfg)};

    assert_int_equal(cmn_http_client_send(c.client, &(cmn_http_request_t){.url = REFUSED_URL},
                                          on_chain, &c),
                     0);
    run_until(loop, &c.calls, 2);
    assert_int_equal(c.calls, 2);
    assert_ptr_equal(c.errs[0], cmn_err_unavailable);
    assert_ptr_equal(c.errs[1], cmn_err_unavailable);

    cmn_http_client_destroy(c.client);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

static void test_destroy_drops_pending_requests(void **state)
{
    int fillers[FILLERS];
    int fd = full_listener(fillers);
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = {.allow_loopback_http = true};
    cmn_http_client_t *client = cmn_http_client_create(loop, &cfg);
    async_t hanging = {0};

    assert_int_equal(cmn_http_client_send(client,
                                          &(cmn_http_request_t){.url = "http://127.0.0.1:24422/"},
                                          on_done, &hanging),
                     0);
    h2o_evloop_run(loop, 50);
    cmn_http_client_destroy(client); /* ASan checks nothing leaks */
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    assert_int_equal(hanging.calls, 0);

    for (int i = 0; i < FILLERS; i++) {
        close(fillers[i]);
    }
    close(fd);
}

static void test_form_encode(void **state)
{
    const char *pairs[] = {"grant_type", "authorization_code", "code", "a b&c=d/é", NULL};
    const char *odd[] = {"a", NULL};
    const char *none[] = {NULL};
    char *body = cmn_http_form_encode(pairs);

    assert_string_equal(body, "grant_type=authorization_code&code=a%20b%26c%3Dd%2F%C3%A9");
    free(body);
    assert_null(cmn_http_form_encode(odd));
    body = cmn_http_form_encode(none);
    assert_string_equal(body, "");
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insecure_urls_are_refused),
        cmocka_unit_test(test_bad_requests_are_refused),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_async_failures_come_later_on_the_loop),
        cmocka_unit_test(test_async_connect_timeout),
        cmocka_unit_test(test_async_send_from_callback),
        cmocka_unit_test(test_destroy_drops_pending_requests),
        cmocka_unit_test(test_form_encode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
