/* SPDX-License-Identifier: MIT */
/* Handoff tokens: authenticate tells a route host or the forward-auth host which session to set. */
#ifndef CMN_HANDOFF_H
#define CMN_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include "common/crypto.h"
#include "common/cookie.h"

#define CMN_HANDOFF_TTL_S 60
#define CMN_HANDOFF_MAX 4096 /* encoded token length ceiling */
#define CMN_HANDOFF_TARGET_MAX 2048

typedef struct st_cmn_handoff_t {
    char id[CMN_ID_LEN + 1];  /* single-use id: the record "handoff/<id>" in the databroker */
    char session_id[CMN_SESSION_ID_MAX + 1];
    char audience[256];       /* the host that may consume it, lower-case, without port */
    char target[CMN_HANDOFF_TARGET_MAX + 1]; /* T, the URL to land on */
    uint64_t session_expiry;  /* unix seconds: the cookie to set must not outlive this */
    uint64_t expiry;          /* unix seconds */
} cmn_handoff_t;

/**
 * Seals a handoff into a base64url token (NUL-terminated, malloc'd; caller frees).
 * Returns NULL on failure.
 */
char *cmn_handoff_seal(const uint8_t key[CMN_KEY_LEN], const cmn_handoff_t *handoff);

/**
 * Opens a token. Sets `*err` to cmn_err_too_large, cmn_err_malformed, cmn_err_decrypt or
 * cmn_err_expired (against `now`). Does not check single use or the audience.
 */
int cmn_handoff_open(const uint8_t key[CMN_KEY_LEN], const char *token, size_t len, uint64_t now,
                     cmn_handoff_t *out, const char **err);

#endif
