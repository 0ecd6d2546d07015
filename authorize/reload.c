/* SPDX-License-Identifier: MIT */
/* Hot reload: a thread that recompiles routes and policies and swaps them in without a lock. */
#include "authorize/reload.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"

#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB)
#define SETTLE_ROUNDS_MAX 20 /* a file that keeps changing is loaded anyway after this many */

/*
 * Readers count themselves in one of two slots while they load `current` and take a
 * reference. A writer swaps `current`, flips `epoch`, then waits until the slot readers used
 * before the flip is empty: every reader that saw the old table has its reference by then, so
 * dropping the table's own reference can free it only after the last request let go. New
 * readers use the other slot, so the writer never waits for more than a few instructions.
 */
static _Atomic(authz_table_t *) current;
static atomic_uint epoch;
static atomic_size_t readers[2];
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_generation;

static void table_free(authz_table_t *table)
{
    authz_routes_destroy(table->routes);
    cmn_config_destroy(table->config);
    free(table);
}

static authz_table_t *table_new(authz_routes_t *routes, cmn_config_t *config)
{
    authz_table_t *table = h2o_mem_alloc(sizeof(*table));

    table->routes = routes;
    table->config = config;
    table->generation = 0;
    atomic_init(&table->refs, 1); /* the reference `current` holds */
    return table;
}

void authz_tables_init(authz_routes_t *routes)
{
    authz_table_t *table = table_new(routes, NULL);

    table->generation = last_generation = 1;
    atomic_store(&current, table);
}

authz_table_t *authz_table_acquire(void)
{
    unsigned slot = atomic_load(&epoch) & 1;
    authz_table_t *table;

    atomic_fetch_add(&readers[slot], 1);
    table = atomic_load(&current);
    atomic_fetch_add(&table->refs, 1);
    atomic_fetch_sub(&readers[slot], 1);
    return table;
}

void authz_table_release(authz_table_t *table)
{
    if (table != NULL && atomic_fetch_sub(&table->refs, 1) == 1) {
        table_free(table);
    }
}

uint64_t authz_table_install(authz_routes_t *routes, cmn_config_t *config)
{
    authz_table_t *table = table_new(routes, config), *old;
    unsigned old_slot;
    uint64_t generation;

    pthread_mutex_lock(&install_lock);
    generation = table->generation = ++last_generation;
    old = atomic_exchange(&current, table);
    old_slot = atomic_fetch_add(&epoch, 1) & 1;
    while (atomic_load(&readers[old_slot]) != 0) {
        sched_yield();
    }
    pthread_mutex_unlock(&install_lock);

    authz_table_release(old);
    return generation;
}

bool authz_is_route_host(h2o_iovec_t host)
{
    authz_table_t *table = authz_table_acquire();
    bool yes = authz_routes_is_route_host(table->routes, host);

    authz_table_release(table);
    return yes;
}

/* keys that a reload does not change */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool list_eq(const cmn_strlist_t *a, const cmn_strlist_t *b)
{
    if (a->len != b->len) {
        return false;
    }
    for (size_t i = 0; i < a->len; i++) {
        if (!str_eq(a->items[i], b->items[i])) {
            return false;
        }
    }
    return true;
}

static bool json_eq(const json_t *a, const json_t *b)
{
    return a == b || (a != NULL && b != NULL && json_equal(a, b));
}

static void note_changed(char *buf, size_t size, size_t *len, bool same, const char *key)
{
    int n;

    if (same || *len >= size) {
        return;
    }
    n = snprintf(buf + *len, size - *len, "%s%s", *len == 0 ? "" : ", ", key);
    if (n > 0) {
        *len += (size_t)n;
    }
}

/* names the process-wide keys that differ; their values are never printed (secrets) */
static void warn_restart_keys(const cmn_config_t *a, const cmn_config_t *b)
{
    char keys[1024] = "";
    size_t len = 0;

#define NOTE(same, key) note_changed(keys, sizeof(keys), &len, (same), (key))
    NOTE(str_eq(a->address, b->address), "address");
    NOTE(str_eq(a->metrics_address, b->metrics_address), "metrics_address");
    NOTE(str_eq(a->log_level, b->log_level) && a->debug == b->debug, "log_level");
    NOTE(a->insecure_server == b->insecure_server, "insecure_server");
    NOTE(a->authorize_workers == b->authorize_workers, "authorize_workers");
    NOTE(a->timeout_read_ms == b->timeout_read_ms && a->timeout_write_ms == b->timeout_write_ms &&
             a->timeout_idle_ms == b->timeout_idle_ms,
         "timeouts");
    NOTE(list_eq(&a->trusted_proxies, &b->trusted_proxies), "trusted_proxies");
    NOTE(str_eq(a->authenticate_service_url.raw, b->authenticate_service_url.raw),
         "authenticate_service_url");
    NOTE(str_eq(a->forward_auth_url.raw, b->forward_auth_url.raw), "forward_auth_url");
    NOTE(list_eq(&a->databroker_service_urls, &b->databroker_service_urls),
         "databroker_service_urls");
    NOTE(str_eq(a->signout_redirect_url, b->signout_redirect_url), "signout_redirect_url");
    NOTE(str_eq(a->certificate_authority_file, b->certificate_authority_file) &&
             str_eq(a->certificate_file, b->certificate_file) &&
             str_eq(a->certificate_key_file, b->certificate_key_file),
         "certificates");
    NOTE(str_eq(a->databroker_storage_type, b->databroker_storage_type) &&
             str_eq(a->databroker_storage_connection_string,
                    b->databroker_storage_connection_string),
         "databroker_storage");
    NOTE(str_eq(a->cookie_name, b->cookie_name) && str_eq(a->cookie_domain, b->cookie_domain) &&
             a->cookie_secure == b->cookie_secure && a->cookie_http_only == b->cookie_http_only &&
             str_eq(a->cookie_same_site, b->cookie_same_site) &&
             a->cookie_expire_s == b->cookie_expire_s,
         "cookie settings");
    NOTE(memcmp(a->cookie_secret, b->cookie_secret, CMN_SECRET_LEN) == 0, "cookie_secret");
    NOTE(memcmp(a->shared_secret, b->shared_secret, CMN_SECRET_LEN) == 0, "shared_secret");
    NOTE(str_eq(a->signing_key_pem, b->signing_key_pem), "signing_key");
    NOTE(str_eq(a->idp_provider, b->idp_provider) &&
             str_eq(a->idp_provider_url, b->idp_provider_url) &&
             str_eq(a->idp_client_id, b->idp_client_id) &&
             str_eq(a->idp_client_secret, b->idp_client_secret) &&
             list_eq(&a->idp_scopes, &b->idp_scopes) &&
             json_eq(a->idp_request_params, b->idp_request_params) &&
             str_eq(a->idp_ca_file, b->idp_ca_file),
         "idp settings");
    NOTE(list_eq(&a->jwt_claims_headers, &b->jwt_claims_headers) &&
             json_eq(a->jwt_claims_headers_map, b->jwt_claims_headers_map) &&
             list_eq(&a->jwt_groups_filter, &b->jwt_groups_filter),
         "jwt_claims_headers/jwt_groups_filter");
#undef NOTE

    if (len != 0) {
        cmn_log_warn(NULL, "reload: changed keys keep their start-up value until a restart: %s",
                     keys);
    }
}

static void log_list(const char *what, const cmn_strlist_t *list)
{
    for (size_t i = 0; i < list->len; i++) {
        cmn_log_error(NULL, "reload refused, %s: %s", what, list->items[i]);
    }
}

static void strlist_free(cmn_strlist_t *list)
{
    for (size_t i = 0; i < list->len; i++) {
        free(list->items[i]);
    }
    free(list->items);
    *list = (cmn_strlist_t){NULL, 0};
}

static const char *source_name(const cmn_config_t *config)
{
    return config->path != NULL ? config->path : "the environment";
}

int authz_reload(const cmn_config_t *running)
{
    cmn_config_diag_t diag;
    cmn_strlist_t errors = {NULL, 0};
    cmn_config_t *next = cmn_config_load(running->path, &diag);
    authz_routes_t *routes = NULL;
    uint64_t generation;

    if (next == NULL) {
        log_list("config", &diag.errors);
        cmn_log_error(NULL, "reload refused: %s does not load (%zu errors); the running policy "
                      "stays", source_name(running), diag.errors.len);
        cmn_config_diag_clear(&diag);
        return -1;
    }
    for (size_t i = 0; i < diag.warnings.len; i++) {
        cmn_log_warn(NULL, "reload: config: %s", diag.warnings.items[i]);
    }
    cmn_config_diag_clear(&diag);

    routes = authz_routes_compile(next, &errors);
    if (routes == NULL) {
        log_list("policy", &errors);
        cmn_log_error(NULL, "reload refused: %s has %zu route or policy errors; the running "
                      "policy stays", source_name(running), errors.len);
        strlist_free(&errors);
        cmn_config_destroy(next);
        return -1;
    }

    warn_restart_keys(running, next);
    generation = authz_table_install(routes, next);
    cmn_log_info(NULL, "reload: generation %llu in force, %zu routes from %s",
                 (unsigned long long)generation, authz_routes_count(routes), source_name(running));
    return 0;
}

/* the watcher thread */

typedef struct st_file_id_t {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id_t;

static file_id_t file_id(const char *path)
{
    struct stat st;
    file_id_t id = {.exists = false};

    if (stat(path, &st) == 0) {
        id = (file_id_t){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
    }
    return id;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool file_id_eq(const file_id_t *a, const file_id_t *b)
{
    if (a->exists != b->exists) {
        return false;
    }
    return !a->exists || (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                          ts_eq(a->mtime, b->mtime) && ts_eq(a->ctime, b->ctime));
}

/* waits until the file looks the same for AUTHZ_RELOAD_SETTLE_MS: an editor may be writing */
static file_id_t settled_id(const char *path)
{
    file_id_t id = file_id(path), again;
    struct timespec pause = {0, AUTHZ_RELOAD_SETTLE_MS * 1000000L};

    for (int i = 0; i < SETTLE_ROUNDS_MAX; i++) {
        nanosleep(&pause, NULL);
        again = file_id(path);
        if (file_id_eq(&id, &again)) {
            break;
        }
        id = again;
    }
    return id;
}

typedef struct st_watcher_t {
    const cmn_config_t *running;
    int sig_fd, inotify_fd;
    file_id_t seen;
} watcher_t;

static void drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

static bool took_sighup(int fd)
{
    struct signalfd_siginfo info;
    bool got = false;

    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        got = got || info.ssi_signo == SIGHUP;
    }
    return got;
}

static void watch_once(watcher_t *w)
{
    struct pollfd fds[2] = {{w->sig_fd, POLLIN, 0}, {w->inotify_fd, POLLIN, 0}};
    bool forced = false;
    file_id_t now;

    if (poll(fds, w->inotify_fd >= 0 ? 2 : 1, AUTHZ_RELOAD_POLL_MS) < 0) {
        return;
    }
    if ((fds[0].revents & POLLIN) != 0 && took_sighup(w->sig_fd)) {
        cmn_log_info(NULL, "reload: SIGHUP");
        forced = true;
    }
    if (w->inotify_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
        drain(w->inotify_fd);
    }
    if (w->running->path == NULL) {
        /* environment only: nothing to watch, SIGHUP still reloads */
        if (forced) {
            (void)authz_reload(w->running);
        }
        return;
    }

    now = file_id(w->running->path);
    if (!forced && file_id_eq(&now, &w->seen)) {
        return;
    }
    w->seen = settled_id(w->running->path);
    if (!w->seen.exists) {
        cmn_log_warn(NULL, "reload: %s is gone; the running policy stays", w->running->path);
        return;
    }
    (void)authz_reload(w->running);
}

static void *watch_main(void *arg)
{
    watcher_t *w = arg;

    for (;;) {
        watch_once(w);
    }
    return NULL;
}

static int watch_dir(int fd, const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    }
    return inotify_add_watch(fd, dir, WATCH_EVENTS) < 0 ? -1 : 0;
}

int authz_reload_block_sighup(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int authz_reload_start(const cmn_config_t *running)
{
    watcher_t *w = h2o_mem_alloc(sizeof(*w));
    sigset_t set;
    pthread_t tid;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    *w = (watcher_t){.running = running, .inotify_fd = -1};
    w->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sig_fd < 0) {
        cmn_log_error(NULL, "reload: signalfd: %s", strerror(errno));
        free(w);
        return -1;
    }

    if (running->path != NULL) {
        w->seen = file_id(running->path);
        w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->inotify_fd < 0 || watch_dir(w->inotify_fd, running->path) != 0) {
            cmn_log_warn(NULL, "reload: no inotify (%s); checking %s every %d ms",
                         strerror(errno), running->path, AUTHZ_RELOAD_POLL_MS);
            if (w->inotify_fd >= 0) {
                close(w->inotify_fd);
            }
            w->inotify_fd = -1;
        }
    }

    if (pthread_create(&tid, NULL, watch_main, w) != 0) {
        cmn_log_error(NULL, "reload: cannot start the reload thread");
        return -1;
    }
    pthread_detach(tid);
    return 0;
}
