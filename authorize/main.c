/* SPDX-License-Identifier: MIT */
/* portcullis-authorize: loads the config, builds the shared state and runs the worker loops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/config.h"
#include "common/crypto.h"
#include "common/jose.h"
#include "common/log.h"
#include "common/server.h"
#include "authorize/app.h"

#define AUTHZ_DEFAULT_ADDRESS ":5443"
#define AUTHZ_ERRBUF_MAX 512 /* one trusted_proxies message */

static const char usage[] =
    "usage: portcullis-authorize [-c FILE] [--check] [--version] [--help]\n"
    "  forward-auth decision point: /verify for nginx auth_request, the forward-auth host\n";

static void free_errors(cmn_strlist_t *errors)
{
    for (size_t i = 0; i < errors->len; i++) {
        free(errors->items[i]);
    }
    free(errors->items);
}

/* --check and start-up: the routes and policies must compile, every error is reported */
static void validate_routes(const cmn_config_t *config, cmn_config_diag_t *diag, void *arg)
{
    authz_routes_destroy(authz_routes_compile(config, &diag->errors));
}

static int build_app(authz_app_t *app, const cmn_config_t *config)
{
    char errbuf[AUTHZ_ERRBUF_MAX];
    cmn_strlist_t errors = {NULL, 0};
    authz_routes_t *routes;
    const char *err = NULL;

    *app = (authz_app_t){.config = config};
    if (cmn_keys_derive(config->cookie_secret, config->shared_secret, &app->keys) != 0) {
        cmn_log_error(NULL, "deriving keys failed");
        return -1;
    }

    app->signer = cmn_signer_create(config->signing_key_pem, app->keys.signing_seed, &err);
    if (app->signer == NULL) {
        cmn_log_error(NULL, "signing key: %s", err);
        return -1;
    }
    app->jwks_json = cmn_signer_jwks_json(app->signer);

    routes = authz_routes_compile(config, &errors);
    if (routes == NULL) {
        for (size_t i = 0; i < errors.len; i++) {
            cmn_log_error(NULL, "%s", errors.items[i]);
        }
        free_errors(&errors);
        return -1;
    }
    authz_tables_init(routes);

    app->trusted_proxies = authz_cidrs_parse(&config->trusted_proxies, errbuf, sizeof(errbuf));
    if (app->trusted_proxies == NULL || app->jwks_json == NULL) {
        cmn_log_error(NULL, "[%s] %s", config->path, app->jwks_json == NULL ? "jwks" : errbuf);
        return -1;
    }

    if (config->forward_auth_url.host != NULL) {
        app->fa_host = h2o_iovec_init(config->forward_auth_url.host,
                                      strlen(config->forward_auth_url.host));
    }
    app->sessions = authz_session_cache_create(0);
    return 0;
}

static unsigned worker_count(const cmn_config_t *config)
{
    long cores;

    if (config->authorize_workers != 0) {
        return config->authorize_workers;
    }
    cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (unsigned)cores : 1;
}

int main(int argc, char **argv)
{
    static authz_app_t app;
    static cmn_server_t server;
    cmn_config_t *config =
        cmn_config_from_args_ex(argc, argv, "authorize", usage, validate_routes, NULL);
    const char *err = NULL;
    unsigned workers;

    /* before any thread starts, so that only the reload thread takes SIGHUP */
    if (authz_reload_block_sighup() != 0 || build_app(&app, config) != 0) {
        return 1;
    }
    authz_app = &app;
    if (authz_reload_start(config) != 0) {
        return 1;
    }

    if (cmn_server_init(&server, config, cmn_server_address(config, AUTHZ_DEFAULT_ADDRESS),
                        config->insecure_server ? CMN_TLS_NONE : CMN_TLS_SERVER, authz_handle,
                        &err) != 0) {
        cmn_log_error(NULL, "server: %s", err);
        return 1;
    }
    server.on_thread_init = authz_thread_init;

    if (authz_session_cache_follow(app.sessions, config) != 0) {
        cmn_log_error(NULL, "cannot start the change-stream follower");
        return 1;
    }

    workers = worker_count(config);
    cmn_log_info(NULL, "authorize listening on %s with %u workers, %zu routes", server.address,
                 workers, config->num_routes);
    if (cmn_server_run(&server, workers) != 0) {
        return 1;
    }

    /* the follower thread may sit in a long poll: exit without tearing shared state down */
    cmn_keys_clear(&app.keys);
    return 0;
}
