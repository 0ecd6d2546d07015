/* SPDX-License-Identifier: MIT */
/* The authenticate daemon's state shared by its handlers, and its request router. */
#ifndef AUTHN_APP_H
#define AUTHN_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include "common/broker_client.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/http_client.h"
#include "common/jose.h"
#include "common/server.h"

#define AUTHN_CSRF_COOKIE_MAX_AGE_S 600
#define AUTHN_LOGIN_TTL_S 600

typedef struct st_authn_provider_t authn_provider_t;
typedef struct st_authn_refresher_t authn_refresher_t;

/* one per process: authenticate runs a single event-loop thread */
typedef struct st_authn_app_t {
    const cmn_config_t *config;
    cmn_keys_t keys;
    cmn_signer_t *signer;
    char *authn_host; /* authenticate_service_url's host, lower-case */

    /* loop-bound parts, created by the thread init */
    h2o_loop_t *loop;
    cmn_http_client_t *http; /* calls to the identity provider */
    cmn_broker_client_t *broker;
    authn_provider_t *provider;
    authn_refresher_t *refresher;

    /* cookie names, built once */
    char *cookie_authn; /* <cookie_name>_authenticate */
    char *cookie_csrf;  /* <cookie_name>_csrf */
} authn_app_t;

/** fills the config-derived parts of `app` (keys, signer, names); -1 with `*err` set */
int authn_app_init(authn_app_t *app, const cmn_config_t *config, const char **err);

/** creates the loop-bound parts on the loop's thread; -1 with `*err` set */
int authn_app_attach_loop(authn_app_t *app, h2o_loop_t *loop, const char **err);

/** the instance the router serves (borrowed; set once by main before the loop runs) */
void authn_app_set(authn_app_t *app);
authn_app_t *authn_app_get(void);

/** the server's request handler: host check, then dispatch by path */
int authn_on_req(h2o_handler_t *self, h2o_req_t *req);

/**
 * true when a return target at `host` (lower-case, no port) reached on `port` (its effective
 * port) may be sent to: the host of some route's `from`, exact or under a wildcard, on a port
 * that route admits (the rule of common/route_target.h, which authorize matches routes with)
 */
bool authn_is_route_target(const cmn_config_t *config, h2o_iovec_t host, uint16_t port);

/** the wall clock in unix seconds */
uint64_t authn_now(void);

#endif
