/* SPDX-License-Identifier: MIT */
/* The session and user records authenticate writes (layout in common/session.h). */
#ifndef AUTHN_RECORD_H
#define AUTHN_RECORD_H

#include <stdint.h>
#include <jansson.h>
#include "common/crypto.h"

#define AUTHN_REFRESH_TOKEN_MAX 8192

typedef struct st_authn_session_fields_t {
    const char *session_id;
    const json_t *claims; /* merged ID token and userinfo claims; must hold "sub" */
    uint64_t issued, expiry, last_refresh, access_expiry;
    const char *id_token;      /* may be NULL */
    const char *access_token;  /* may be NULL */
    const char *refresh_token; /* plain; sealed here; NULL = none */
} authn_session_fields_t;

/**
 * Builds the "data" of session/<id>: identity fields taken from the claims (groups: the
 * "groups" claim's strings, at most CMN_SESSION_MAX_GROUPS), the refresh token sealed with
 * `at_rest`. Returns a new object or NULL.
 */
json_t *authn_session_data(const authn_session_fields_t *f, const uint8_t at_rest[CMN_KEY_LEN]);

/** the "data" of user/<sub>: {"email", "name", "claims"}; NULL on failure */
json_t *authn_user_data(const json_t *claims);

/**
 * Seals and opens a refresh token: base64url(AEAD(at_rest, token, ad = "refresh_token|<id>")).
 * Both return a malloc'd NUL-terminated string (caller frees) or NULL.
 */
char *authn_refresh_token_seal(const uint8_t key[CMN_KEY_LEN], const char *session_id,
                               const char *token);
char *authn_refresh_token_open(const uint8_t key[CMN_KEY_LEN], const char *session_id,
                               const char *sealed);

#endif
