/* SPDX-License-Identifier: MIT */
/* Outbound HTTP(S) on libcurl: one multi handle per loop, driven by that loop (curl's sockets in
 * an epoll set the loop watches, its timers on h2o timeouts); the same hardened easy-handle setup
 * serves blocking fetches. */
#include "common/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <curl/curl.h>
#include <h2o.h>
#include "common/err.h"
#include "common/log.h"

#define HTTP_DEFAULT_CONNECT_MS 5000
#define HTTP_DEFAULT_TOTAL_MS 10000
#define HTTP_CA_BUNDLE_MAX (16 * 1024 * 1024)
#define HTTP_METHOD_MAX 16
#define HTTP_EVENTS_PER_TURN 64
#define HTTP_TIMER_LISTS 6
#define HTTP_MAX_IDLE_CONNS 128 /* keep-alive connections a client keeps for reuse */
/* a pooled connection idle longer than this is not reused: servers close idle connections
 * (ours after timeout_read, 30 s by default; Node's, as the dev IdP's, after 5 s) and a request
 * sent just as the server closes is lost, which for a POST cannot safely be retried */
#define HTTP_MAX_IDLE_AGE_S 4

/* h2o 2.2's timeout lists, of fixed durations; curl's timeouts use the longest that fits */
static const uint64_t http_timer_ms[HTTP_TIMER_LISTS] = {0, 1, 8, 64, 512, 4096};

const char cmn_http_err_insecure_url[] = "URL refused: only https, or http to loopback if allowed";

/* a client config with its strings copied and the trust store resolved */
typedef struct st_http_opts_t {
    char *ca_file;
    bool ca_file_only;
    char *client_cert_file;
    char *client_key_file;
    bool allow_loopback_http;
    unsigned connect_timeout_ms;
    unsigned total_timeout_ms;
    char *ca_blob; /* system bundle + ca_file, when ca_file is set and not the only trust */
    size_t ca_blob_len;
} http_opts_t;

/* one easy handle and everything it points at while it runs */
typedef struct st_http_transfer_t {
    CURL *easy;
    CURLU *url;
    struct curl_slist *headers;
    char *buf; /* response body, NUL-terminated */
    size_t len, cap;
    size_t body_max; /* longest answer taken */
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
    cmn_http_response_t res;
} http_transfer_t;

/* an async request: in the client's active list while curl runs it, then in done */
typedef struct st_http_job_t {
    h2o_linklist_t link;
    http_transfer_t t;
    cmn_http_cb cb;
    void *ctx;
} http_job_t;

struct st_cmn_http_client_t {
    h2o_loop_t *loop;
    http_opts_t opts;
    CURLM *multi;
    int epfd;                 /* curl's sockets, each with the events curl waits for */
    h2o_socket_t *epoll_sock; /* epfd on the loop: readable when one of them is ready */
    h2o_timeout_t timers[HTTP_TIMER_LISTS];
    h2o_timeout_entry_t curl_entry;    /* curl's next timeout */
    h2o_timeout_entry_t deliver_entry; /* in timers[0]: failures found inside send */
    h2o_linklist_t active;             /* jobs inside the multi handle */
    h2o_linklist_t done;               /* finished jobs whose callback has not run yet */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int ensure_curl(void)
{
    pthread_once(&curl_once, curl_init);
    return curl_init_result == CURLE_OK ? 0 : -1;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? h2o_strdup(NULL, s, SIZE_MAX).base : NULL;
}

/* appends a whole file to buf; -1 when it cannot be read or passes the ceiling */
static int append_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char chunk[8192];
    size_t n;
    int ret = -1;

    if (f == NULL) {
        return -1;
    }
    for (n = fread(chunk, 1, sizeof(chunk), f); n > 0; n = fread(chunk, 1, sizeof(chunk), f)) {
        if (*len + n > HTTP_CA_BUNDLE_MAX) {
            goto Exit;
        }
        *buf = h2o_mem_realloc(*buf, *len + n + 2);
        memcpy(*buf + *len, chunk, n);
        *len += n;
    }
    if (ferror(f)) {
        goto Exit;
    }

    /* PEM blocks of the next file must start on their own line */
    (*buf)[(*len)++] = '\n';
    ret = 0;

Exit:
    fclose(f);
    return ret;
}

/* the system bundle (when readable) followed by ca_file, so both are trusted */
static int build_ca_blob(http_opts_t *opts)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

    if (info->cainfo != NULL && append_file(info->cainfo, &opts->ca_blob, &opts->ca_blob_len)) {
        /* no readable system bundle: ca_file alone (CAPATH still points at the system store) */
        free(opts->ca_blob);
        opts->ca_blob = NULL;
        opts->ca_blob_len = 0;
    }
    return append_file(opts->ca_file, &opts->ca_blob, &opts->ca_blob_len);
}

static void opts_clear(http_opts_t *opts)
{
    free(opts->ca_file);
    free(opts->client_cert_file);
    free(opts->client_key_file);
    free(opts->ca_blob);
    memset(opts, 0, sizeof(*opts));
}

static int opts_init(http_opts_t *opts, const cmn_http_client_config_t *cfg)
{
    memset(opts, 0, sizeof(*opts));
    opts->ca_file = dup_or_null(cfg->ca_file);
    opts->ca_file_only = cfg->ca_file_only;
    opts->client_cert_file = dup_or_null(cfg->client_cert_file);
    opts->client_key_file = dup_or_null(cfg->client_key_file);
    opts->allow_loopback_http = cfg->allow_loopback_http;
    opts->connect_timeout_ms =
        cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS;
    opts->total_timeout_ms =
        cfg->total_timeout_ms != 0 ? cfg->total_timeout_ms : HTTP_DEFAULT_TOTAL_MS;

    if (opts->ca_file != NULL && !opts->ca_file_only && build_ca_blob(opts) != 0) {
        opts_clear(opts);
        return -1;
    }
    return 0;
}

/* 127.0.0.0/8, ::1, localhost and *.localhost (RFC 6761: always loopback) */
static bool is_loopback_host(const char *host)
{
    size_t len = strlen(host);
    struct in_addr v4;

    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "[::1]") == 0) {
        return true;
    }
    if (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0) {
        return true;
    }
    if (inet_pton(AF_INET, host, &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    return false;
}

/* parses the URL once (curl then uses this very parse) and checks scheme and host */
static const char *parse_url(http_transfer_t *t, const http_opts_t *opts, const char *url,
                             bool *plain_http)
{
    char *scheme = NULL;
    char *host = NULL;
    const char *err = cmn_err_malformed;

    if (url == NULL || strlen(url) > CMN_HTTP_URL_MAX) {
        return url == NULL ? cmn_err_malformed : cmn_err_too_large;
    }
    t->url = curl_url();
    if (t->url == NULL) {
        return cmn_err_no_memory;
    }
    if (curl_url_set(t->url, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(t->url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(t->url, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        goto Exit;
    }

    err = cmn_http_err_insecure_url;
    *plain_http = strcmp(scheme, "http") == 0;
    if (strcmp(scheme, "https") != 0 &&
        !(*plain_http && opts->allow_loopback_http && is_loopback_host(host))) {
        goto Exit;
    }
    err = NULL;

Exit:
    curl_free(scheme); /* NULL-safe */
    curl_free(host);
    return err;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    http_transfer_t *t = arg;
    size_t n = size * nmemb;

    if (n > t->body_max - t->len) {
        t->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap * 2;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        t->buf = h2o_mem_realloc(t->buf, cap);
        t->cap = cap;
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return n;
}

/* request headers: at most CMN_HTTP_MAX_HEADERS lines, no CR or LF (no header injection) */
static const char *set_headers(http_transfer_t *t, const cmn_http_request_t *req)
{
    struct curl_slist *added;

    for (size_t i = 0; i < CMN_HTTP_MAX_HEADERS && req->headers[i] != NULL; i++) {
        const char *h = req->headers[i];
        if (strlen(h) > CMN_HTTP_HEADER_MAX) {
            return cmn_err_too_large;
        }
        if (strpbrk(h, "\r\n") != NULL) {
            return cmn_err_malformed;
        }
        added = curl_slist_append(t->headers, h);
        if (added == NULL) {
            return cmn_err_no_memory;
        }
        t->headers = added;
    }

    /* no 100-continue round trip for the bodies we send */
    added = curl_slist_append(t->headers, "Expect:");
    if (added == NULL) {
        return cmn_err_no_memory;
    }
    t->headers = added;
    return NULL;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(t->easy, (opt), (val)) != CURLE_OK) {                                 \
            return cmn_err_io;                                                                     \
        }                                                                                          \
    } while (0)

static const char *set_method(http_transfer_t *t, const cmn_http_request_t *req)
{
    const char *method = req->method != NULL ? req->method : "GET";

    if (strlen(method) > HTTP_METHOD_MAX || req->body.len > CMN_HTTP_BODY_MAX) {
        return cmn_err_too_large;
    }
    if (req->body.base != NULL) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
        SETOPT(CURLOPT_COPYPOSTFIELDS, req->body.base);
    }
    if (strcmp(method, "GET") == 0 && req->body.base == NULL) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") != 0 || req->body.base == NULL) {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
    return NULL;
}

static const char *set_trust(http_transfer_t *t, const http_opts_t *opts)
{
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);

    if (opts->ca_file_only) {
        /* only ca_file: turn off the built-in CA path as well */
        SETOPT(CURLOPT_CAINFO, opts->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    } else if (opts->ca_blob != NULL) {
        struct curl_blob blob = {opts->ca_blob, opts->ca_blob_len, CURL_BLOB_NOCOPY};
        SETOPT(CURLOPT_CAINFO_BLOB, &blob);
    }

    if (opts->client_cert_file != NULL) {
        SETOPT(CURLOPT_SSLCERT, opts->client_cert_file);
        SETOPT(CURLOPT_SSLKEY, opts->client_key_file);
    }
    return NULL;
}

static const char *transfer_setup(http_transfer_t *t, const http_opts_t *opts,
                                  const cmn_http_request_t *req, void *priv)
{
    unsigned total_ms = req->total_timeout_ms != 0 ? req->total_timeout_ms : opts->total_timeout_ms;
    bool plain_http = false;
    const char *err;

    t->cap = 1024;
    t->buf = h2o_mem_alloc(t->cap);
    t->body_max = req->body_max != 0 ? req->body_max : CMN_HTTP_BODY_MAX;
    t->buf[0] = '\0';

    err = parse_url(t, opts, req->url, &plain_http);
    if (err != NULL) {
        return err;
    }
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        return cmn_err_no_memory;
    }

    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_CURLU, t->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, plain_http ? "http" : "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* HTTP/1.1 on pooled connections: with curl 7.88's HTTP/2 multiplexing, data already read
     * for one stream could wait for the next poll timeout (1 s stalls under load) */
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_MAXAGE_CONN, (long)HTTP_MAX_IDLE_AGE_S);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)opts->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)total_ms);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->body_max);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_USERAGENT, "portcullis");
    SETOPT(CURLOPT_PRIVATE, priv);

    err = set_trust(t, opts);
    if (err == NULL) {
        err = set_headers(t, req);
    }
    if (err == NULL) {
        err = set_method(t, req);
    }
    if (err == NULL) {
        SETOPT(CURLOPT_HTTPHEADER, t->headers);
    }
    return err;
}

#undef SETOPT

static const char *map_curl_error(const http_transfer_t *t, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return NULL;
    case CURLE_FILESIZE_EXCEEDED:
        return cmn_err_too_large;
    case CURLE_WRITE_ERROR:
        return t->too_large ? cmn_err_too_large : cmn_err_io;
    case CURLE_OPERATION_TIMEDOUT:
        return cmn_err_timeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return cmn_err_unavailable;
    default:
        return cmn_err_io;
    }
}

/* true when the request cannot have reached the server: a retry elsewhere is safe */
static bool never_sent(http_transfer_t *t, CURLcode rc)
{
    curl_off_t pretransfer = 0;

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return true;
    case CURLE_OPERATION_TIMEDOUT:
        if (curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK) {
            return false;
        }
        return pretransfer == 0;
    default:
        return false;
    }
}

/* fills t->res from curl's outcome; body and content type stay malloc'd in the response */
static void transfer_finish(http_transfer_t *t, CURLcode rc)
{
    long status = 0;
    char *type = NULL;

    t->res.err = map_curl_error(t, rc);
    if (t->res.err != NULL) {
        snprintf(t->res.errbuf, sizeof(t->res.errbuf), "%s",
                 t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc));
        t->res.connect_failed = never_sent(t, rc);
    } else if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK) {
        t->res.status = (int)status;
    }

    if (t->res.err == NULL &&
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != NULL) {
        t->res.content_type = h2o_strdup(NULL, type, SIZE_MAX);
    } else {
        t->res.content_type = h2o_strdup(NULL, "", 0);
    }

    t->res.body = h2o_iovec_init(t->buf, t->res.err == NULL ? t->len : 0);
    t->buf[t->res.body.len] = '\0';
    t->buf = NULL;
}

/* a failure found before curl ran */
static void transfer_fail(http_transfer_t *t, const char *err)
{
    t->res.err = err;
    snprintf(t->res.errbuf, sizeof(t->res.errbuf), "%s", err);
    t->res.connect_failed = true;
    t->res.body = h2o_strdup(NULL, "", 0);
    t->res.content_type = h2o_strdup(NULL, "", 0);
}

static void transfer_clear(http_transfer_t *t)
{
    if (t->easy != NULL) {
        curl_easy_cleanup(t->easy);
    }
    curl_url_cleanup(t->url); /* NULL-safe */
    curl_slist_free_all(t->headers);
    free(t->buf);
    cmn_http_response_clear(&t->res);
    memset(t, 0, sizeof(*t));
}

static void job_free(http_job_t *job)
{
    transfer_clear(&job->t);
    free(job);
}

/* the callbacks of the finished jobs; each job leaves the list before its callback runs, so a
 * callback may send new requests (their failures join the list and are delivered here too) */
static void deliver(cmn_http_client_t *client)
{
    if (h2o_timeout_is_linked(&client->deliver_entry)) {
        h2o_timeout_unlink(&client->deliver_entry);
    }
    while (!h2o_linklist_is_empty(&client->done)) {
        http_job_t *job = H2O_STRUCT_FROM_MEMBER(http_job_t, link, client->done.next);
        h2o_linklist_unlink(&job->link);
        job->cb(job->ctx, &job->t.res);
        job_free(job);
    }
}

/* a job that ends before curl ran: answered when this loop turn ends, never inside send */
static void finish_later(cmn_http_client_t *client, http_job_t *job)
{
    h2o_linklist_insert(&client->done, &job->link);
    if (!h2o_timeout_is_linked(&client->deliver_entry)) {
        h2o_timeout_link(client->loop, &client->timers[0], &client->deliver_entry);
    }
}

static void collect_done(cmn_http_client_t *client)
{
    for (;;) {
        int left;
        CURLMsg *msg = curl_multi_info_read(client->multi, &left);
        http_job_t *job = NULL;

        if (msg == NULL) {
            break;
        }
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURLcode rc = msg->data.result;
        CURL *easy = msg->easy_handle;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&job) != CURLE_OK || job == NULL) {
            /* every handle of this client carries its job: nothing to answer for one without */
            curl_multi_remove_handle(client->multi, easy);
            continue;
        }
        /* cannot fail for a handle this multi just reported done; answered either way */
        (void)curl_multi_remove_handle(client->multi, easy);
        h2o_linklist_unlink(&job->link);
        transfer_finish(&job->t, rc);
        h2o_linklist_insert(&client->done, &job->link);
    }
}

/* one step of curl for `fd` (or its timers, with CURL_SOCKET_TIMEOUT), then the answers */
static void drive(cmn_http_client_t *client, curl_socket_t fd, int events)
{
    int running;
    CURLMcode rc = curl_multi_socket_action(client->multi, fd, events, &running);

    /* a socket curl closed after the loop saw it ready is not an error; anything else leaves
     * the transfers to their own timeouts, and the operator should know */
    if (rc != CURLM_OK && rc != CURLM_BAD_SOCKET) {
        cmn_log_warn(NULL, "http client: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    }
    collect_done(client);
    deliver(client);
}

/* the loop says the private epoll set has ready sockets: hand each to curl */
static void on_sockets_ready(h2o_socket_t *sock, const char *err)
{
    cmn_http_client_t *client = sock->data;
    struct epoll_event ev[HTTP_EVENTS_PER_TURN];
    int n = epoll_wait(client->epfd, ev, HTTP_EVENTS_PER_TURN, 0);

    for (int i = 0; i < n; i++) {
        int events = 0;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            events |= CURL_CSELECT_IN;
        }
        if (ev[i].events & EPOLLOUT) {
            events |= CURL_CSELECT_OUT;
        }
        if (ev[i].events & EPOLLERR) {
            events |= CURL_CSELECT_ERR;
        }
        drive(client, ev[i].data.fd, events);
    }
}

static void on_curl_timeout(h2o_timeout_entry_t *entry)
{
    cmn_http_client_t *client = H2O_STRUCT_FROM_MEMBER(cmn_http_client_t, curl_entry, entry);

    drive(client, CURL_SOCKET_TIMEOUT, 0);
}

static void on_deliver_timeout(h2o_timeout_entry_t *entry)
{
    deliver(H2O_STRUCT_FROM_MEMBER(cmn_http_client_t, deliver_entry, entry));
}

/* CURLMOPT_SOCKETFUNCTION: which of its sockets curl waits on, and for what */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    cmn_http_client_t *client = arg;
    struct epoll_event ev = {.data.fd = fd};

    if (what == CURL_POLL_REMOVE) {
        /* curl may already have closed it, which took it out of the set */
        epoll_ctl(client->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (epoll_ctl(client->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
        (errno != ENOENT || epoll_ctl(client->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)) {
        return -1; /* curl then fails the transfers in progress */
    }
    return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: when curl wants to be called next. h2o's timeout lists have fixed
 * durations, so the entry goes to the longest list that does not pass the deadline; firing early
 * is harmless, curl then asks again for what is left. 0 means at the end of this loop turn.
 */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    cmn_http_client_t *client = arg;
    size_t i = HTTP_TIMER_LISTS - 1;

    if (h2o_timeout_is_linked(&client->curl_entry)) {
        h2o_timeout_unlink(&client->curl_entry);
    }
    if (timeout_ms < 0) {
        return 0;
    }
    while (i > 0 && http_timer_ms[i] > (uint64_t)timeout_ms) {
        i--;
    }
    h2o_timeout_link(client->loop, &client->timers[i], &client->curl_entry);
    return 0;
}

static void drop_list(h2o_linklist_t *list, CURLM *multi)
{
    while (!h2o_linklist_is_empty(list)) {
        http_job_t *job = H2O_STRUCT_FROM_MEMBER(http_job_t, link, list->next);
        h2o_linklist_unlink(&job->link);
        if (multi != NULL) {
            curl_multi_remove_handle(multi, job->t.easy);
        }
        job_free(job);
    }
}

static int multi_setup(cmn_http_client_t *client)
{
    CURLM *m = client->multi;

    return curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)HTTP_MAX_IDLE_CONNS) == CURLM_OK &&
                   curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket) == CURLM_OK &&
                   curl_multi_setopt(m, CURLMOPT_SOCKETDATA, client) == CURLM_OK &&
                   curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer) == CURLM_OK &&
                   curl_multi_setopt(m, CURLMOPT_TIMERDATA, client) == CURLM_OK
               ? 0
               : -1;
}

/* the epoll set of curl's sockets, watched by the loop as one readable descriptor */
static int watch_sockets(cmn_http_client_t *client)
{
    client->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (client->epfd < 0) {
        return -1;
    }
    client->epoll_sock =
        h2o_evloop_socket_create(client->loop, client->epfd, H2O_SOCKET_FLAG_DONT_READ);
    client->epoll_sock->data = client;
    h2o_socket_read_start(client->epoll_sock, on_sockets_ready);
    return 0;
}

/* releases what create set up; the multi handle goes first, as it still reports its sockets */
static void client_free(cmn_http_client_t *client)
{
    if (client->multi != NULL) {
        curl_multi_cleanup(client->multi);
    }
    if (client->epoll_sock != NULL) {
        h2o_socket_read_stop(client->epoll_sock);
        h2o_socket_close(client->epoll_sock); /* closes epfd */
    } else if (client->epfd >= 0) {
        close(client->epfd);
    }
    for (size_t i = 0; i < HTTP_TIMER_LISTS; i++) {
        h2o_timeout_dispose(client->loop, &client->timers[i]);
    }
    opts_clear(&client->opts);
    free(client);
}

cmn_http_client_t *cmn_http_client_create(h2o_loop_t *loop, const cmn_http_client_config_t *cfg)
{
    cmn_http_client_t *client;

    if (ensure_curl() != 0) {
        return NULL;
    }
    client = h2o_mem_alloc(sizeof(*client));
    memset(client, 0, sizeof(*client));
    client->loop = loop;
    client->epfd = -1;
    h2o_linklist_init_anchor(&client->active);
    h2o_linklist_init_anchor(&client->done);
    for (size_t i = 0; i < HTTP_TIMER_LISTS; i++) {
        h2o_timeout_init(loop, &client->timers[i], http_timer_ms[i]);
    }
    client->curl_entry.cb = on_curl_timeout;
    client->deliver_entry.cb = on_deliver_timeout;

    if (opts_init(&client->opts, cfg) != 0) {
        client_free(client);
        return NULL;
    }
    client->multi = curl_multi_init();
    if (client->multi == NULL || multi_setup(client) != 0 || watch_sockets(client) != 0) {
        client_free(client);
        return NULL;
    }
    return client;
}

void cmn_http_client_destroy(cmn_http_client_t *client)
{
    if (client == NULL) {
        return;
    }
    drop_list(&client->active, client->multi);
    drop_list(&client->done, NULL);
    if (h2o_timeout_is_linked(&client->curl_entry)) {
        h2o_timeout_unlink(&client->curl_entry);
    }
    if (h2o_timeout_is_linked(&client->deliver_entry)) {
        h2o_timeout_unlink(&client->deliver_entry);
    }
    client_free(client);
}

int cmn_http_client_send(cmn_http_client_t *client, const cmn_http_request_t *req, cmn_http_cb cb,
                         void *ctx)
{
    http_job_t *job;
    const char *err;

    if (client == NULL || req == NULL || cb == NULL) {
        return -1;
    }
    job = h2o_mem_alloc(sizeof(*job));
    memset(job, 0, sizeof(*job));
    job->cb = cb;
    job->ctx = ctx;

    err = transfer_setup(&job->t, &client->opts, req, job);
    if (err == NULL && curl_multi_add_handle(client->multi, job->t.easy) != CURLM_OK) {
        err = cmn_err_no_memory;
    }
    if (err != NULL) {
        /* reported like any failure, so cb still runs, later */
        transfer_fail(&job->t, err);
        finish_later(client, job);
        return 0;
    }
    h2o_linklist_insert(&client->active, &job->link);
    return 0;
}

int cmn_http_fetch_blocking(const cmn_http_client_config_t *cfg, const cmn_http_request_t *req,
                            cmn_http_response_t *res)
{
    http_opts_t opts;
    http_transfer_t t;
    const char *err;

    memset(&t, 0, sizeof(t));
    memset(res, 0, sizeof(*res));
    if (ensure_curl() != 0 || opts_init(&opts, cfg) != 0) {
        transfer_fail(&t, cmn_err_io);
        *res = t.res;
        return -1;
    }

    err = transfer_setup(&t, &opts, req, NULL);
    if (err != NULL) {
        transfer_fail(&t, err);
    } else {
        transfer_finish(&t, curl_easy_perform(t.easy));
    }

    /* the response keeps body and content type; the rest goes */
    *res = t.res;
    memset(&t.res, 0, sizeof(t.res));
    transfer_clear(&t);
    opts_clear(&opts);
    return res->err == NULL ? 0 : -1;
}

void cmn_http_response_clear(cmn_http_response_t *res)
{
    free(res->body.base);
    free(res->content_type.base);
    res->body = h2o_iovec_init(NULL, 0);
    res->content_type = h2o_iovec_init(NULL, 0);
}

char *cmn_http_form_encode(const char *const *pairs)
{
    char *out = h2o_mem_alloc(1);
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; pairs[i] != NULL; i += 2) {
        if (pairs[i + 1] == NULL || strlen(pairs[i]) > CMN_HTTP_BODY_MAX ||
            strlen(pairs[i + 1]) > CMN_HTTP_BODY_MAX) {
            goto Fail;
        }
        char *k = curl_easy_escape(NULL, pairs[i], (int)strlen(pairs[i]));
        char *v = curl_easy_escape(NULL, pairs[i + 1], (int)strlen(pairs[i + 1]));
        size_t need = (k != NULL ? strlen(k) : 0) + (v != NULL ? strlen(v) : 0) + 2;
        if (k == NULL || v == NULL || len + need > CMN_HTTP_BODY_MAX) {
            curl_free(k);
            curl_free(v);
            goto Fail;
        }
        out = h2o_mem_realloc(out, len + need + 1);
        len += (size_t)snprintf(out + len, need + 1, "%s%s=%s", len == 0 ? "" : "&", k, v);
        curl_free(k);
        curl_free(v);
    }
    return out;

Fail:
    free(out);
    return NULL;
}
