/* SPDX-License-Identifier: MIT */
/* Tests for common/server.c and the HTTP client against it: plain HTTP, mutual TLS, helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <h2o.h>
#include "common/broker_client.h"
#include "common/err.h"
#include "common/http_client.h"
#include "common/server.h"

#define PLAIN_PORT "24411"
#define MTLS_PORT "24412"
#define BUSY_PORT "24413"
#define LATE_MS 100
#define READ_TIMEOUT_MS 800 /* timeout_read, shorter than timeout_idle (5 s) */

static char tmpdir[] = "/tmp/portcullis-server-test-XXXXXX";
static char ca_crt[256], server_crt[256], server_key[256], client_crt[256], client_key[256];
static cmn_config_t config;
static cmn_server_t plain_server, mtls_server;
static pthread_t plain_tid, mtls_tid;

/*
 * h2o 2.2 keeps freed buffers in per-thread (__thread) recycle caches; when a server thread
 * exits at stop those caches become unreachable. They are h2o's, not leaks of ours, so only
 * allocations made through h2o_mem_alloc_recycle are suppressed.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

/* a response that comes later, from a timer, through a guard */
typedef struct st_late_t {
    h2o_timeout_entry_t entry;
    cmn_req_guard_t *guard;
} late_t;

static void on_late(h2o_timeout_entry_t *entry)
{
    late_t *late = H2O_STRUCT_FROM_MEMBER(late_t, entry, entry);

    if (late->guard->req != NULL) {
        cmn_send_text(late->guard->req, 200, "OK", "late");
    }
    cmn_req_guard_release(late->guard);
    free(late);
}

static h2o_timeout_t *late_timeout_of(h2o_context_t *ctx);

static int answer_late(h2o_req_t *req)
{
    late_t *late = calloc(1, sizeof(*late));

    late->guard = cmn_req_guard_create(req);
    late->entry.cb = on_late;
    h2o_timeout_link(req->conn->ctx->loop, late_timeout_of(req->conn->ctx), &late->entry);
    return 0;
}

/* per-thread timers, set up by on_thread_init (one thread per test server) */
static struct {
    h2o_context_t *ctx;
    h2o_timeout_t timeout;
} late_timers[2];
static pthread_mutex_t late_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned thread_inits;

static h2o_timeout_t *late_timeout_of(h2o_context_t *ctx)
{
    for (size_t i = 0; i < 2; i++) {
        if (late_timers[i].ctx == ctx) {
            return &late_timers[i].timeout;
        }
    }
    cmn_unreachable("no late timer for this context");
}

static void on_thread_init(h2o_context_t *ctx, unsigned index, void *arg)
{
    pthread_mutex_lock(&late_mutex);
    size_t slot = thread_inits++;
    late_timers[slot].ctx = ctx;
    h2o_timeout_init(ctx->loop, &late_timers[slot].timeout, LATE_MS);
    pthread_mutex_unlock(&late_mutex);
    assert_int_equal(index, 0);
    assert_ptr_equal(arg, &config);
}

static void on_thread_dispose(h2o_context_t *ctx, unsigned index, void *arg)
{
    h2o_timeout_dispose(ctx->loop, late_timeout_of(ctx));
}

static int path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static int path_raw_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path.base, req->path.len, path, strlen(path));
}

/* a stand-in databroker on the mTLS server */
static int on_broker_req(h2o_req_t *req)
{
    char buf[1024];

    if (path_raw_is(req, "/v1/records/session/abc%2Fd%20f")) {
        cmn_send_json(req, 200, "{\"type\":\"session\",\"id\":\"abc/d f\",\"version\":3,"
                                "\"data\":{\"x\":1}}");
    } else if (path_raw_is(req, "/v1/records/session/down")) {
        cmn_send_json(req, 503, "{\"error\":\"store unavailable\"}");
    } else if (path_raw_is(req, "/v1/records/session/garbage")) {
        cmn_send_json(req, 200, "[not json");
    } else if (path_raw_is(req, "/v1/records/session/abc") &&
               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"))) {
        snprintf(buf, sizeof(buf), "{\"echo\":%.*s}", (int)req->entity.len, req->entity.base);
        cmn_send_json(req, 200, buf);
    } else if (path_raw_is(req, "/v1/records/login/s1/take") &&
               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        cmn_send_json(req, 200, "{\"type\":\"login\",\"id\":\"s1\",\"version\":9}");
    } else if (path_raw_is(req, "/v1/records/session?limit=10&cursor=c%201")) {
        cmn_send_json(req, 200, "{\"records\":[],\"cursor\":null}");
    } else if (path_raw_is(req, "/v1/changes?after=5&epoch=e1&wait=1")) {
        cmn_send_json(req, 200, "{\"changes\":[],\"latest\":5,\"epoch\":\"e1\",\"resync\":false}");
    } else {
        cmn_send_json(req, 404, "{\"error\":\"not found\"}");
    }
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    cmn_server_t *server = cmn_server_from_handler(self);
    char buf[512];

    assert_true(server == &plain_server || server == &mtls_server);
    if (server == &mtls_server && h2o_memis(req->path.base, 4, H2O_STRLIT("/v1/"))) {
        return on_broker_req(req);
    }
    if (path_is(req, "/hello")) {
        cmn_send_text(req, 200, "OK", "hello world");
    } else if (path_is(req, "/echo")) {
        snprintf(buf, sizeof(buf), "%.*s %.*s", (int)req->method.len, req->method.base,
                 (int)req->entity.len, req->entity.base);
        cmn_send_text(req, 200, "OK", buf);
    } else if (path_is(req, "/helpers")) {
        h2o_iovec_t x = cmn_req_header(req, "X-Test");
        h2o_iovec_t host = cmn_req_host(req);
        /* one request keeps one id, generated or given */
        assert_string_equal(cmn_req_id(req), cmn_req_id(req));
        snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"host\":\"%.*s\",\"x\":\"%.*s\"}",
                 cmn_req_id(req), (int)host.len, host.base, (int)x.len, x.base);
        cmn_send_json(req, 200, buf);
    } else if (path_is(req, "/redirect")) {
        cmn_add_header(req, "Set-Cookie", h2o_iovec_init(H2O_STRLIT("a=b")));
        cmn_send_redirect(req, 302, h2o_iovec_init(H2O_STRLIT("https://example.com/next")));
    } else if (path_is(req, "/big") || path_is(req, "/max")) {
        size_t len = path_is(req, "/big") ? CMN_HTTP_BODY_MAX + CMN_HTTP_BODY_MAX / 2
                                          : CMN_HTTP_BODY_MAX;
        h2o_iovec_t body = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, len), len);
        memset(body.base, 'x', len);
        cmn_send_html(req, 200, "OK", body);
    } else if (path_is(req, "/late")) {
        return answer_late(req);
    } else {
        cmn_send_text(req, 404, "Not Found", "not found");
    }
    return 0;
}

static void *run_server(void *arg)
{
    cmn_server_t *server = arg;

    assert_int_equal(cmn_server_run(server, 1), 0);
    return NULL;
}

static int run(const char *cmd)
{
    char line[2048];

    snprintf(line, sizeof(line), "cd %s && ( %s ) >/dev/null 2>&1", tmpdir, cmd);
    return system(line);
}

/* a throw-away CA, a server certificate for 127.0.0.1 and localhost, and a client cert */
static int make_certificates(void)
{
    static const char *const cmds[] = {
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.crt -days 2 -subj /CN=portcullis-test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
        "> server.ext",
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
        "-out server.csr -subj /CN=localhost",
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.crt",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key "
        "-out client.csr -subj /CN=portcullis-test-client",
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile client.ext -out client.crt",
    };

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (run(cmds[i]) != 0) {
            return -1;
        }
    }
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", tmpdir);
    snprintf(server_crt, sizeof(server_crt), "%s/server.crt", tmpdir);
    snprintf(server_key, sizeof(server_key), "%s/server.key", tmpdir);
    snprintf(client_crt, sizeof(client_crt), "%s/client.crt", tmpdir);
    snprintf(client_key, sizeof(client_key), "%s/client.key", tmpdir);
    return 0;
}

static int wait_listening(const char *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        close(fd);
        if (rc == 0) {
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

static int start_server(cmn_server_t *server, pthread_t *tid, const char *address,
                        cmn_tls_mode_t tls, const char *port)
{
    const char *err = NULL;

    if (cmn_server_init(server, &config, address, tls, on_req, &err) != 0) {
        fprintf(stderr, "cmn_server_init: %s\n", err);
        return -1;
    }
    server->on_thread_init = on_thread_init;
    server->on_thread_dispose = on_thread_dispose;
    server->thread_init_arg = &config;
    pthread_create(tid, NULL, run_server, server);
    return wait_listening(port);
}

static int setup(void **state)
{
    if (mkdtemp(tmpdir) == NULL || make_certificates() != 0) {
        return -1;
    }
    config.certificate_file = server_crt;
    config.certificate_key_file = server_key;
    config.certificate_authority_file = ca_crt;
    config.timeout_idle_ms = 5000;
    config.timeout_read_ms = READ_TIMEOUT_MS;

    if (start_server(&plain_server, &plain_tid, "127.0.0.1:" PLAIN_PORT, CMN_TLS_NONE,
                     PLAIN_PORT) != 0 ||
        start_server(&mtls_server, &mtls_tid, ":" MTLS_PORT, CMN_TLS_MUTUAL, MTLS_PORT) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    cmn_server_stop(&plain_server);
    cmn_server_stop(&mtls_server);
    pthread_join(plain_tid, NULL);
    pthread_join(mtls_tid, NULL);
    cmn_server_dispose(&plain_server);
    cmn_server_dispose(&mtls_server);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static cmn_http_client_config_t plain_cfg(void)
{
    return (cmn_http_client_config_t){.allow_loopback_http = true, .connect_timeout_ms = 2000,
                                      .total_timeout_ms = 5000};
}

static cmn_http_client_config_t mtls_cfg(bool with_cert)
{
    cmn_http_client_config_t cfg = {.ca_file = ca_crt, .ca_file_only = true};

    if (with_cert) {
        cfg.client_cert_file = client_crt;
        cfg.client_key_file = client_key;
    }
    return cfg;
}

static void fetch(const cmn_http_client_config_t *cfg, const char *url, cmn_http_response_t *res)
{
    cmn_http_request_t req = {.url = url};

    if (cmn_http_fetch_blocking(cfg, &req, res) != 0) {
        fprintf(stderr, "# %s: %s (%s)\n", url, res->err, res->errbuf);
    }
}

static void test_plain_round_trip(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_response_t res;

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &(cmn_http_request_t){
                                                       .url = "http://127.0.0.1:" PLAIN_PORT
                                                              "/hello"},
                                             &res),
                     0);
    assert_null(res.err);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.base, "hello world");
    assert_int_equal(res.body.len, 11);
    assert_string_equal(res.content_type.base, "text/plain; charset=utf-8");
    cmn_http_response_clear(&res);

    fetch(&cfg, "http://127.0.0.1:" PLAIN_PORT "/nowhere", &res);
    assert_null(res.err);
    assert_int_equal(res.status, 404);
    cmn_http_response_clear(&res);
}

/* reads from fd until `want` status lines arrived or the peer closed; returns the bytes read */
static size_t read_responses(int fd, char *buf, size_t cap, int want)
{
    size_t len = 0;

    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
        int seen = 0;
        for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++) {
            seen++;
        }
        if (seen >= want && strstr(buf, "\r\n\r\nhello world") != NULL) {
            break;
        }
    }
    buf[len] = '\0';
    return len;
}

/* every answer, not only 200, has a length, so HTTP/1.1 keep-alive survives a 404 or a 401 */
static void test_error_answers_keep_the_connection(void **state)
{
    static const char reqs[] = "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(PLAIN_PORT))};
    struct timeval tv = {5, 0};
    char buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(write(fd, reqs, sizeof(reqs) - 1), sizeof(reqs) - 1);
    read_responses(fd, buf, sizeof(buf), 2);
    close(fd);

    assert_non_null(strstr(buf, "HTTP/1.1 404"));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_null(strcasestr(buf, "connection: close"));
}

/* a request whose headers never end is closed after timeout_read, not after timeout_idle */
static void test_slow_request_closed_after_read_timeout(void **state)
{
    static const char partial[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(PLAIN_PORT))};
    struct timeval tv = {10, 0};
    struct timespec t0, t1;
    char buf[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;
    long ms;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(write(fd, partial, sizeof(partial) - 1), sizeof(partial) - 1);
    do {
        n = read(fd, buf, sizeof(buf));
    } while (n > 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);

    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_int_equal(n, 0); /* closed by the server, not the 10 s receive timeout */
    assert_true(ms >= READ_TIMEOUT_MS - 100);
    assert_true(ms < 3000);
}

static void test_post_body_round_trip(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_request_t req = {.method = "POST",
                              .url = "http://127.0.0.1:" PLAIN_PORT "/echo",
                              .headers = {"Content-Type: text/plain"},
                              .body = h2o_iovec_init(H2O_STRLIT("a=1&b=2"))};
    cmn_http_response_t res;

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.base, "POST a=1&b=2");
    cmn_http_response_clear(&res);

    req.method = "PUT";
    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), 0);
    assert_string_equal(res.body.base, "PUT a=1&b=2");
    cmn_http_response_clear(&res);
}

static void test_request_helpers(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_request_t req = {.url = "http://127.0.0.1:" PLAIN_PORT "/helpers",
                              .headers = {"x-TEST: v1", "X-Request-Id: abc.DEF_1-2",
                                          "Host: App.Example.COM:8443"}};
    cmn_http_response_t res;

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), 0);
    assert_string_equal(res.content_type.base, "application/json");
    assert_string_equal(res.body.base,
                        "{\"id\":\"abc.DEF_1-2\",\"host\":\"app.example.com\",\"x\":\"v1\"}");
    cmn_http_response_clear(&res);

    /* an id with a space in it is replaced by 16 random hex digits */
    req.headers[1] = "X-Request-Id: evil id";
    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), 0);
    const char *id = strstr(res.body.base, "\"id\":\"") + 6;
    assert_int_equal(strspn(id, "0123456789abcdef"), 16);
    assert_int_equal(id[16], '"');
    cmn_http_response_clear(&res);
}

static void test_redirect_is_not_followed(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_response_t res;

    fetch(&cfg, "http://127.0.0.1:" PLAIN_PORT "/redirect", &res);
    assert_null(res.err);
    assert_int_equal(res.status, 302);
    assert_int_equal(res.body.len, 0);
    cmn_http_response_clear(&res);
}

static void test_body_limit(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_response_t res;

    fetch(&cfg, "http://127.0.0.1:" PLAIN_PORT "/max", &res);
    assert_null(res.err);
    assert_int_equal(res.body.len, CMN_HTTP_BODY_MAX);
    cmn_http_response_clear(&res);

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &(cmn_http_request_t){
                                                       .url = "http://127.0.0.1:" PLAIN_PORT
                                                              "/big"},
                                             &res),
                     -1);
    assert_ptr_equal(res.err, cmn_err_too_large);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.body.len, 0);
    cmn_http_response_clear(&res);
}

static void test_late_answer_and_timeout(void **state)
{
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_request_t req = {.url = "http://127.0.0.1:" PLAIN_PORT "/late"};
    cmn_http_response_t res;

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), 0);
    assert_string_equal(res.body.base, "late");
    cmn_http_response_clear(&res);

    /* the client gives up first; the server's late answer must not crash anything */
    req.total_timeout_ms = 20;
    assert_int_equal(cmn_http_fetch_blocking(&cfg, &req, &res), -1);
    assert_ptr_equal(res.err, cmn_err_timeout);
    assert_false(res.connect_failed);
    cmn_http_response_clear(&res);
    usleep(LATE_MS * 3 * 1000);

    fetch(&cfg, "http://127.0.0.1:" PLAIN_PORT "/hello", &res);
    assert_int_equal(res.status, 200);
    cmn_http_response_clear(&res);
}

static void test_mtls_refuses_client_without_certificate(void **state)
{
    cmn_http_client_config_t cfg = mtls_cfg(false);
    cmn_http_response_t res;

    assert_int_equal(cmn_http_fetch_blocking(&cfg, &(cmn_http_request_t){
                                                       .url = "https://127.0.0.1:" MTLS_PORT
                                                              "/hello"},
                                             &res),
                     -1);
    assert_non_null(res.err);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.body.len, 0);
    cmn_http_response_clear(&res);
}

static void test_mtls_accepts_client_with_certificate(void **state)
{
    cmn_http_client_config_t cfg = mtls_cfg(true);
    cmn_http_response_t res;

    fetch(&cfg, "https://127.0.0.1:" MTLS_PORT "/hello", &res);
    assert_null(res.err);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.base, "hello world");
    cmn_http_response_clear(&res);

    /* by name (DNS SAN), and trusting the system store plus ca_file */
    cfg.ca_file_only = false;
    fetch(&cfg, "https://localhost:" MTLS_PORT "/hello", &res);
    assert_null(res.err);
    assert_int_equal(res.status, 200);
    cmn_http_response_clear(&res);
}

static void test_tls_verifies_server(void **state)
{
    cmn_http_client_config_t cfg = mtls_cfg(true);
    cmn_http_response_t res;

    /* the system store alone does not know the test CA */
    cfg.ca_file = NULL;
    cfg.ca_file_only = false;
    fetch(&cfg, "https://127.0.0.1:" MTLS_PORT "/hello", &res);
    assert_non_null(res.err);
    assert_true(res.connect_failed);
    cmn_http_response_clear(&res);

    /* trusted CA but a name the certificate does not carry */
    cfg = mtls_cfg(true);
    fetch(&cfg, "https://127.0.0.2:" MTLS_PORT "/hello", &res);
    assert_non_null(res.err);
    cmn_http_response_clear(&res);

    /* plain http to the TLS port is refused by scheme when loopback http is off */
    fetch(&cfg, "http://127.0.0.1:" MTLS_PORT "/hello", &res);
    assert_ptr_equal(res.err, cmn_http_err_insecure_url);
    cmn_http_response_clear(&res);
}

/* async client: callback state */
typedef struct st_async_t {
    int calls;
    pthread_t thread;
    int status;
    const char *err;
    char body[64];
} async_t;

static void on_async(void *ctx, const cmn_http_response_t *res)
{
    async_t *a = ctx;

    a->calls++;
    a->thread = pthread_self();
    a->status = res->status;
    a->err = res->err;
    snprintf(a->body, sizeof(a->body), "%.*s", (int)res->body.len, res->body.base);
}

static void run_until(h2o_evloop_t *loop, const int *calls, int n)
{
    for (int i = 0; i < 500 && *calls < n; i++) {
        h2o_evloop_run(loop, 10);
    }
}

static void test_async_client_answers_on_loop_thread(void **state)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = mtls_cfg(true);
    cmn_http_client_t *client = cmn_http_client_create(loop, &cfg);
    cmn_http_request_t req = {.url = "https://127.0.0.1:" MTLS_PORT "/hello"};
    async_t a = {0}, b = {0};

    assert_non_null(client);
    assert_int_equal(cmn_http_client_send(client, &req, on_async, &a), 0);
    req.url = "https://127.0.0.1:" MTLS_PORT "/big";
    assert_int_equal(cmn_http_client_send(client, &req, on_async, &b), 0);
    assert_int_equal(a.calls, 0); /* never from inside send */
    assert_int_equal(b.calls, 0);

    run_until(loop, &a.calls, 1);
    run_until(loop, &b.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_true(pthread_equal(a.thread, pthread_self()));
    assert_null(a.err);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "hello world");
    assert_int_equal(b.calls, 1);
    assert_true(pthread_equal(b.thread, pthread_self()));
    assert_ptr_equal(b.err, cmn_err_too_large);

    /* exactly once: more loop turns call nothing again */
    for (int i = 0; i < 5; i++) {
        h2o_evloop_run(loop, 10);
    }
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);

    cmn_http_client_destroy(client);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

static void test_async_late_answer_and_redirect(void **state)
{
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_http_client_config_t cfg = plain_cfg();
    cmn_http_client_t *client = cmn_http_client_create(loop, &cfg);
    async_t a = {0}, b = {0};

    cmn_http_request_t late = {.url = "http://localhost:" PLAIN_PORT "/late"};
    cmn_http_request_t redirect = {.url = "http://127.0.0.1:" PLAIN_PORT "/redirect"};

    assert_int_equal(cmn_http_client_send(client, &late, on_async, &a), 0);
    assert_int_equal(cmn_http_client_send(client, &redirect, on_async, &b), 0);
    run_until(loop, &a.calls, 1);
    run_until(loop, &b.calls, 1);
    assert_string_equal(a.body, "late");
    assert_int_equal(b.status, 302);

    cmn_http_client_destroy(client);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

static void test_guard_follows_the_pool(void **state)
{
    h2o_req_t *req = calloc(1, sizeof(*req));
    cmn_req_guard_t *guard;

    /* the pool goes first (connection closed): the late callback sees NULL */
    h2o_mem_init_pool(&req->pool);
    guard = cmn_req_guard_create(req);
    assert_ptr_equal(guard->req, req);
    h2o_mem_clear_pool(&req->pool);
    assert_null(guard->req);
    cmn_req_guard_release(guard);

    /* the callback goes first: the pool's dispose must not touch freed memory (ASan) */
    h2o_mem_init_pool(&req->pool);
    guard = cmn_req_guard_create(req);
    cmn_req_guard_release(guard);
    h2o_mem_clear_pool(&req->pool);
    free(req);
}

static void test_server_address(void **state)
{
    cmn_config_t c = {0};

    unsetenv("ADDRESS");
    assert_string_equal(cmn_server_address(&c, ":8080"), ":8080");
    c.address = "127.0.0.1:9000";
    assert_string_equal(cmn_server_address(&c, ":8080"), "127.0.0.1:9000");
    setenv("ADDRESS", ":7000", 1);
    assert_string_equal(cmn_server_address(&c, ":8080"), ":7000");
    unsetenv("ADDRESS");
}

static void test_init_errors(void **state)
{
    cmn_server_t server;
    cmn_config_t c = config;
    const char *err = NULL;

    assert_int_equal(cmn_server_init(&server, &c, "nonsense", CMN_TLS_NONE, on_req, &err), -1);
    assert_non_null(err);
    err = NULL;
    assert_int_equal(cmn_server_init(&server, &c, "999.1.1.1:80", CMN_TLS_NONE, on_req, &err),
                     -1);
    assert_non_null(err);

    /* a missing certificate names its file */
    c.certificate_file = "/nonexistent/cert.pem";
    err = NULL;
    assert_int_equal(cmn_server_init(&server, &c, ":24419", CMN_TLS_SERVER, on_req, &err), -1);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));

    /* a key that does not match */
    c = config;
    c.certificate_key_file = client_key;
    err = NULL;
    assert_int_equal(cmn_server_init(&server, &c, ":24419", CMN_TLS_MUTUAL, on_req, &err), -1);
    assert_non_null(strstr(err, client_key));
}

static void test_run_fails_when_port_taken(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(atoi(BUSY_PORT))};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cmn_server_t server;
    const char *err = NULL;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);

    assert_int_equal(cmn_server_init(&server, &config, "127.0.0.1:" BUSY_PORT, CMN_TLS_NONE,
                                     on_req, &err),
                     0);
    assert_int_equal(cmn_server_run(&server, 2), -1);
    cmn_server_dispose(&server);
    close(fd);
}

/* broker client: callback state */
typedef struct st_broker_res_t {
    int calls;
    const char *err;
    int status;
    char *dump;
} broker_res_t;

static void on_broker(void *ctx, const cmn_broker_result_t *res)
{
    broker_res_t *r = ctx;

    r->calls++;
    r->err = res->err;
    r->status = res->status;
    free(r->dump);
    r->dump = res->record != NULL ? json_dumps(res->record, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static void broker_run(h2o_evloop_t *loop, broker_res_t *r)
{
    assert_int_equal(r->calls, 0);
    run_until(loop, &r->calls, 1);
    assert_int_equal(r->calls, 1);
}

static void test_broker_client(void **state)
{
    char *urls[] = {"https://127.0.0.1:24414", "https://127.0.0.1:" MTLS_PORT "/"};
    cmn_config_t c = config;
    h2o_evloop_t *loop = h2o_evloop_create();
    cmn_broker_client_t *broker;
    broker_res_t r = {0};
    json_t *data = json_pack("{s:s}", "k", "v");

    /* the first URL refuses connections: every operation falls back to the second */
    c.certificate_file = client_crt;
    c.certificate_key_file = client_key;
    c.databroker_service_urls = (cmn_strlist_t){urls, 2};
    broker = cmn_broker_client_create(loop, &c);
    assert_non_null(broker);

    assert_int_equal(cmn_broker_get(broker, "session", "abc/d f", on_broker, &r), 0);
    broker_run(loop, &r);
    assert_null(r.err);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.dump, "{\"data\":{\"x\":1},\"id\":\"abc/d f\",\"type\":\"session\","
                                "\"version\":3}");

    r.calls = 0;
    assert_int_equal(cmn_broker_get(broker, "session", "missing", on_broker, &r), 0);
    broker_run(loop, &r);
    assert_ptr_equal(r.err, cmn_err_not_found);
    assert_null(r.dump);

    r.calls = 0;
    assert_int_equal(cmn_broker_delete(broker, "session", "down", on_broker, &r), 0);
    broker_run(loop, &r);
    assert_ptr_equal(r.err, cmn_err_unavailable);
    assert_int_equal(r.status, 503);

    r.calls = 0;
    assert_int_equal(cmn_broker_get(broker, "session", "garbage", on_broker, &r), 0);
    broker_run(loop, &r);
    assert_ptr_equal(r.err, cmn_err_bad_json);

    r.calls = 0;
    assert_int_equal(cmn_broker_put(broker, "session", "abc", data, 60, on_broker, &r), 0);
    broker_run(loop, &r);
    assert_null(r.err);
    assert_string_equal(r.dump, "{\"echo\":{\"data\":{\"k\":\"v\"},\"ttl\":60}}");

    r.calls = 0;
    assert_int_equal(cmn_broker_take(broker, "login", "s1", on_broker, &r), 0);
    broker_run(loop, &r);
    assert_null(r.err);
    assert_string_equal(r.dump, "{\"id\":\"s1\",\"type\":\"login\",\"version\":9}");

    r.calls = 0;
    assert_int_equal(cmn_broker_query(broker, "session", "c 1", 10, on_broker, &r), 0);
    broker_run(loop, &r);
    assert_null(r.err);
    assert_string_equal(r.dump, "{\"cursor\":null,\"records\":[]}");

    /* bad input never reaches the wire, and no callback comes */
    assert_int_equal(cmn_broker_get(broker, "", "x", on_broker, &r), -1);
    assert_int_equal(cmn_broker_query(broker, "session", NULL, 0, on_broker, &r), -1);

    cmn_broker_client_destroy(broker);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    json_decref(data);
    free(r.dump);
}

static void test_broker_changes_blocking(void **state)
{
    char *urls[] = {"https://127.0.0.1:24414", "https://127.0.0.1:" MTLS_PORT};
    cmn_config_t c = config;
    const char *err = NULL;
    json_t *doc;

    c.certificate_file = client_crt;
    c.certificate_key_file = client_key;
    c.databroker_service_urls = (cmn_strlist_t){urls, 2};
    doc = cmn_broker_changes_blocking(&c, 5, "e1", 1, &err);
    assert_non_null(doc);
    assert_null(err);
    assert_int_equal(json_integer_value(json_object_get(doc, "latest")), 5);
    assert_string_equal(json_string_value(json_object_get(doc, "epoch")), "e1");
    json_decref(doc);

    /* without a client certificate the databroker refuses: unavailable, not a crash */
    c.certificate_file = NULL;
    c.certificate_key_file = NULL;
    c.databroker_service_urls = (cmn_strlist_t){urls + 1, 1};
    assert_null(cmn_broker_changes_blocking(&c, 5, "e1", 1, &err));
    assert_ptr_equal(err, cmn_err_unavailable);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_round_trip),
        cmocka_unit_test(test_slow_request_closed_after_read_timeout),
        cmocka_unit_test(test_post_body_round_trip),
        cmocka_unit_test(test_error_answers_keep_the_connection),
        cmocka_unit_test(test_request_helpers),
        cmocka_unit_test(test_redirect_is_not_followed),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_late_answer_and_timeout),
        cmocka_unit_test(test_mtls_refuses_client_without_certificate),
        cmocka_unit_test(test_mtls_accepts_client_with_certificate),
        cmocka_unit_test(test_tls_verifies_server),
        cmocka_unit_test(test_async_client_answers_on_loop_thread),
        cmocka_unit_test(test_async_late_answer_and_redirect),
        cmocka_unit_test(test_broker_client),
        cmocka_unit_test(test_broker_changes_blocking),
        cmocka_unit_test(test_guard_follows_the_pool),
        cmocka_unit_test(test_server_address),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_run_fails_when_port_taken),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
