/* SPDX-License-Identifier: MIT */
/* Unit tests for authorize/reload.c: reloads that succeed or are refused, and swaps under load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include "authorize/reload.h"

#define BASE                                                                                       \
    "cookie_secret: YVFTMIfW8yBJw+a6sYwdW8rHbU+IAAV/SUkCTg9Jtpo=\n"                                \
    "shared_secret: 80ldlrU2d7w+wVpKNfevk6fmb8otEx6CqOfshj2LwhQ=\n"                                \
    "idp_provider: google\n"                                                                       \
    "idp_client_id: id\n"                                                                          \
    "idp_client_secret: secret\n"                                                                  \
    "authenticate_service_url: https://authn.example.com\n"                                        \
    "databroker_storage_type: memory\n"

#define V1 "routes:\n  - from: https://v1.example\n    allow_public_unauthenticated_access: true\n"
#define V2 "routes:\n  - from: https://v2.example\n    allow_public_unauthenticated_access: true\n"

#define READERS 2
#define SWAPS 300

static char path[64];
static cmn_config_t *running;

static void write_config(const char *routes)
{
    char tmp[80];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%s%s", BASE, routes);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static int setup(void **state)
{
    cmn_config_diag_t diag;
    cmn_strlist_t errors = {NULL, 0};
    authz_routes_t *routes;
    int fd;

    snprintf(path, sizeof(path), "/tmp/portcullis-reload-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    write_config(V1);
    running = cmn_config_load(path, &diag);
    cmn_config_diag_clear(&diag);
    if (running == NULL) {
        return -1;
    }
    routes = authz_routes_compile(running, &errors);
    if (routes == NULL) {
        return -1;
    }
    authz_tables_init(routes);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static bool served(const char *host)
{
    authz_table_t *t = authz_table_acquire();
    bool yes = authz_routes_match(t->routes, h2o_iovec_init(host, strlen(host)), 443, "/") != NULL;

    authz_table_release(t);
    return yes;
}

static uint64_t generation(void)
{
    authz_table_t *t = authz_table_acquire();
    uint64_t g = t->generation;

    authz_table_release(t);
    return g;
}

static void test_reload_swaps_routes(void **state)
{
    uint64_t g = generation();

    assert_true(served("v1.example"));
    write_config(V2);
    assert_int_equal(authz_reload(running), 0);
    assert_int_equal(generation(), g + 1);
    assert_false(served("v1.example"));
    assert_true(served("v2.example"));
}

/* a refused config leaves the table in force untouched */
static void test_broken_configs_keep_the_policy(void **state)
{
    static const char *const broken[] = {
        "routes: [ {from: \n",
        "routes:\n  - from: https://v3.example\n    policy:\n      allow:\n        and:\n"
        "          - emial: {is: a@example.com}\n",
        "routes:\n  - from: https://v3.example\n    allow_public_unauthenticated_access: true\n"
        "    allowed_users: [a@example.com]\n",
        "routes:\n  - from: https://v3.example\n    regex: \"/(\"\n",
    };
    uint64_t g;

    write_config(V2);
    assert_int_equal(authz_reload(running), 0);
    g = generation();
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        write_config(broken[i]);
        assert_int_equal(authz_reload(running), -1);
        assert_int_equal(generation(), g);
        assert_true(served("v2.example"));
        assert_false(served("v3.example"));
    }
}

static volatile int stop_readers;

/* holds each table across a little work, as a request does across its session read */
static void *reader(void *arg)
{
    size_t *count = arg;

    while (!stop_readers) {
        authz_table_t *t = authz_table_acquire();
        const authz_route_t *r =
            authz_routes_match(t->routes, h2o_iovec_init(H2O_STRLIT("v2.example")), 443, "/");
        assert_non_null(r);
        assert_string_equal(r->def->from.host, "v2.example");
        authz_table_release(t);
        (*count)++;
    }
    return NULL;
}

/* readers never see a freed table (ASan would say so) while tables are swapped in a loop */
static void test_swaps_under_load(void **state)
{
    pthread_t threads[READERS];
    size_t counts[READERS] = {0};
    cmn_config_diag_t diag;
    uint64_t g;

    write_config(V2);
    stop_readers = 0;
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &counts[i]), 0);
    }
    g = generation();
    for (int i = 0; i < SWAPS; i++) {
        cmn_strlist_t errors = {NULL, 0};
        cmn_config_t *c = cmn_config_load(path, &diag);
        assert_non_null(c);
        cmn_config_diag_clear(&diag);
        authz_routes_t *routes = authz_routes_compile(c, &errors);
        assert_non_null(routes);
        authz_table_install(routes, c);
    }
    stop_readers = 1;
    for (int i = 0; i < READERS; i++) {
        pthread_join(threads[i], NULL);
        assert_true(counts[i] > 0);
    }
    assert_int_equal(generation(), g + SWAPS);
    printf("%d swaps while readers made %zu and %zu lookups\n", SWAPS, counts[0], counts[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_swaps_routes),
        cmocka_unit_test(test_broken_configs_keep_the_policy),
        cmocka_unit_test(test_swaps_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
