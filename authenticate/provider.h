/* SPDX-License-Identifier: MIT */
/* The identity provider as authenticate knows it: discovery document and JWKS, cached. */
#ifndef AUTHN_PROVIDER_H
#define AUTHN_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "common/config.h"
#include "common/http_client.h"
#include "common/jose.h"

#define AUTHN_DISCOVERY_MAX_BYTES (64 * 1024)
#define AUTHN_DISCOVERY_MAX_ALGS 16
#define AUTHN_PROVIDER_MAX_WAITERS 1024
#define AUTHN_JWKS_REFETCH_MIN_S 30 /* at most one unknown-kid refetch per this many seconds */

extern const char authn_err_issuer_mismatch[];
extern const char authn_err_discovery_field[];
extern const char authn_err_provider_status[];

typedef struct st_authn_discovery_t {
    char *issuer;
    char *authorization_endpoint;
    char *token_endpoint;
    char *userinfo_endpoint; /* NULL when the provider has none */
    char *jwks_uri;
    char *end_session_endpoint; /* NULL when the provider has none */
    char **algs;             /* id_token_signing_alg_values_supported, NULL-terminated; or NULL */
    bool client_secret_post; /* token_endpoint_auth_methods_supported lists only that */
} authn_discovery_t;

typedef struct st_authn_provider_t authn_provider_t;

/* err NULL: the provider is ready (or the JWKS was refetched); else why not */
typedef void (*authn_provider_cb)(void *ctx, const char *err);

/** a provider for config's idp_provider_url; fetches nothing until authn_provider_start */
authn_provider_t *authn_provider_create(h2o_loop_t *loop, const cmn_config_t *config,
                                        cmn_http_client_t *http);
void authn_provider_destroy(authn_provider_t *p);

/** starts discovery; on failure keeps retrying with backoff (1 s, 5 s, then every 30 s) */
void authn_provider_start(authn_provider_t *p);

/** true once discovery and the JWKS are loaded (they stay loaded after later failures) */
bool authn_provider_ready(const authn_provider_t *p);

/** the cached documents (borrowed; NULL while not ready) */
const authn_discovery_t *authn_provider_discovery(const authn_provider_t *p);
const cmn_jwks_t *authn_provider_jwks(const authn_provider_t *p);

/**
 * Waits for readiness: when discovery is in flight (or can start now) queues `cb`, which is
 * called once, later, on the loop. Returns 0 when queued, -1 when the provider is not ready
 * and no attempt can be made right now (the caller answers 503). Call only when not ready.
 */
int authn_provider_wait(authn_provider_t *p, authn_provider_cb cb, void *ctx);

/**
 * After cmn_err_jwt_unknown_kid: refetches the JWKS (single flight) and calls `cb` later.
 * Returns -1 when a refetch already ran in the last AUTHN_JWKS_REFETCH_MIN_S seconds (then
 * cb is not called). A failed refetch keeps the last good key set.
 */
int authn_provider_refetch_jwks(authn_provider_t *p, authn_provider_cb cb, void *ctx);

/** true when the two issuers are equal, ignoring one trailing slash on either */
bool authn_issuer_matches(const char *a, const char *b);

/**
 * Parses a discovery document and checks that its issuer matches `expected_issuer`.
 * Returns 0 (free with authn_discovery_clear) or -1 with `*err` set.
 */
int authn_discovery_parse(const char *json, size_t len, const char *expected_issuer,
                          authn_discovery_t *out, const char **err);
void authn_discovery_clear(authn_discovery_t *d);

#endif
