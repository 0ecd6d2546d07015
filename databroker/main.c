/* SPDX-License-Identifier: MIT */
/* portcullis-databroker: the records API over mutual TLS, on Redis or in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/log.h"
#include "common/server.h"
#include "databroker/api.h"
#include "databroker/store.h"

#define BROKER_DEFAULT_ADDRESS ":5443"

static const char usage[] =
    "usage: portcullis-databroker [-c FILE] [--check] [--version] [--help]\n"
    "  Serves the records API (DESIGN.md section 7) over mutual TLS: clients must present a\n"
    "  certificate that chains to certificate_authority_file. The store is\n"
    "  databroker_storage_type: memory (this process only) or redis\n"
    "  (databroker_storage_connection_string).\n";

typedef struct st_broker_app_t {
    const cmn_config_t *config;
    broker_api_t *api;
    broker_store_t *store;
} broker_app_t;

static bool use_redis(const cmn_config_t *config)
{
    return config->databroker_storage_type != NULL &&
           strcmp(config->databroker_storage_type, "redis") == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    broker_app_t *app = cmn_server_from_handler(self)->data;

    return broker_api_handle(app->api, req);
}

/* the store lives on the one loop thread, so it is created there */
static void on_thread_init(h2o_context_t *ctx, unsigned thread_index, void *arg)
{
    broker_app_t *app = arg;
    const char *err = NULL;

    if (use_redis(app->config)) {
        app->store = broker_store_redis_create(
            ctx->loop, app->config->databroker_storage_connection_string, &err);
    } else {
        app->store = broker_store_memory_create(ctx->loop);
        err = "out of memory";
    }
    if (app->store == NULL) {
        cmn_log_error(NULL, "cannot create the %s store: %s",
                      use_redis(app->config) ? "redis" : "memory", err);
        exit(1);
    }
    broker_api_attach(app->api, ctx->loop, app->store);
}

int main(int argc, char **argv)
{
    cmn_config_t *config = cmn_config_from_args(argc, argv, "databroker", usage);
    static broker_app_t app; /* static: reachable until exit, see below */
    static cmn_server_t server; /* a loop that outlived the drain still uses it */
    const char *address;
    const char *err = NULL;
    int rc;

    if (use_redis(config) &&
        broker_store_redis_check_url(config->databroker_storage_connection_string, &err) != 0) {
        cmn_log_error(NULL, "databroker_storage_connection_string: %s", err);
        return 1;
    }

    address = cmn_server_address(config, BROKER_DEFAULT_ADDRESS);
    if (cmn_server_init(&server, config, address, CMN_TLS_MUTUAL, on_req, &err) != 0) {
        cmn_log_error(NULL, "cannot set up the server: %s", err);
        return 1;
    }
    /*
     * h2o buffers whole bodies before the handler runs: it refuses (413, connection closed)
     * anything past four times our limit, so a client between the two still gets our JSON 413
     */
    server.globalconf.max_request_entity_size = BROKER_BODY_MAX * 4;

    app.config = config;
    app.api = broker_api_create();
    server.data = &app;
    server.on_thread_init = on_thread_init;
    server.thread_init_arg = &app;

    cmn_log_info(NULL, "listening on %s (mutual TLS), store %s", address,
                 use_redis(config) ? "redis" : "memory");
    /* one loop thread: the store and the change ring are not shared between threads */
    rc = cmn_server_run(&server, 1);

    /*
     * the store and the API hold sockets and timers of the loop, which cmn_server_run has
     * destroyed by now when its drain succeeded: they are left to the process exit
     */
    cmn_server_dispose(&server);
    cmn_config_destroy(config);
    return rc == 0 ? 0 : 1;
}
