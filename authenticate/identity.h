/* SPDX-License-Identifier: MIT */
/* Who logged in: the verified ID token's claims, merged with the provider's userinfo. */
#ifndef AUTHN_IDENTITY_H
#define AUTHN_IDENTITY_H

#include <jansson.h>
#include "authenticate/app.h"

#define AUTHN_USERINFO_MAX_BYTES (64 * 1024)

extern const char authn_err_userinfo_sub[];
extern const char authn_err_userinfo[];

/*
 * status 0: `claims` is the merged claims object (a new reference the callee now owns);
 * 403: the ID token or the userinfo subject fails a rule; 502: the userinfo call failed.
 * `why` is for the log.
 */
typedef void (*authn_identity_cb)(void *ctx, int status, const char *why, json_t *claims);

typedef struct st_authn_identity_req_t {
    const char *id_token;      /* verified when not NULL */
    const char *nonce;         /* required in the ID token when not NULL */
    const char *access_token;  /* for userinfo */
    const char *expect_sub;    /* when not NULL, the subject must be this one (refresh) */
    const json_t *base_claims; /* used when there is no ID token (borrowed); may be NULL */
} authn_identity_req_t;

/**
 * Verifies the ID token (with one JWKS refetch on an unknown kid), then fetches userinfo when
 * the provider has the endpoint, whose claims win. Everything in `in` is copied. `cb` is
 * called exactly once, possibly before this function returns.
 */
void authn_identity_resolve(authn_app_t *app, const authn_identity_req_t *in, authn_identity_cb cb,
                            void *ctx);

/**
 * Merges userinfo into `claims` after checking that its "sub" equals the claims' "sub"
 * (OpenID Connect Core 1.0 §5.3.2). Returns 0, or -1 with `*err` set.
 */
int authn_identity_merge_userinfo(json_t *claims, const json_t *userinfo, const char **err);

#endif
