/* SPDX-License-Identifier: MIT */
/* portcullis-authenticate: arguments, config, keys, listener, one event loop. */
#include <stdio.h>
#include <stdlib.h>
#include "authenticate/app.h"
#include "common/config.h"
#include "common/log.h"
#include "common/server.h"

static const char usage[] =
    "usage: portcullis-authenticate [-c FILE] [--check] [--version] [--help]\n"
    "  the OpenID Connect relying party: sign-in, the provider callback, sessions, sign-out\n";

static void on_thread_init(h2o_context_t *ctx, unsigned thread_index, void *arg)
{
    authn_app_t *app = arg;
    const char *err = NULL;

    if (authn_app_attach_loop(app, ctx->loop, &err) != 0) {
        cmn_log_error(NULL, "cannot start: %s", err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    cmn_config_t *config = cmn_config_from_args(argc, argv, "authenticate", usage);
    static authn_app_t app;
    static cmn_server_t server;
    const char *err = NULL;
    cmn_tls_mode_t tls;
    const char *address;

    if (authn_app_init(&app, config, &err) != 0) {
        cmn_log_error(NULL, "cannot start: %s", err);
        return 1;
    }
    authn_app_set(&app);

    tls = config->insecure_server ? CMN_TLS_NONE : CMN_TLS_SERVER;
    address = cmn_server_address(config, config->insecure_server ? ":80" : ":8443");
    if (cmn_server_init(&server, config, address, tls, authn_on_req, &err) != 0) {
        cmn_log_error(NULL, "cannot listen on \"%s\": %s", address, err);
        return 1;
    }
    server.on_thread_init = on_thread_init;
    server.thread_init_arg = &app;

    cmn_log_info(NULL, "listening on %s (%s)", address, tls == CMN_TLS_NONE ? "http" : "https");
    /* one loop: the provider cache, the refresher and the clients live on it */
    if (cmn_server_run(&server, 1) != 0) {
        cmn_log_error(NULL, "cannot listen on \"%s\"", address);
        return 1;
    }
    cmn_keys_clear(&app.keys);
    return 0;
}
