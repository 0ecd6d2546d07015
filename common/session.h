/* SPDX-License-Identifier: MIT */
/* The session and user records that authenticate writes and authorize reads. */
#ifndef CMN_SESSION_H
#define CMN_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "common/config.h"

/*
 * Record "session/<id>", data:
 *   {"user_id": sub, "email": s, "email_verified": bool, "name": s, "groups": [s...],
 *    "claims": {...merged ID token and userinfo claims...},
 *    "issued": unix s, "expiry": unix s, "last_refresh": unix s,
 *    "id_token": s, "access_token": s, "access_expiry": unix s,
 *    "refresh_token": base64url(AEAD(keys.at_rest, token, ad="refresh_token|<id>")) or absent}
 * Record "user/<sub>", data: {"email": s, "name": s, "claims": {...}}.
 * Record "login/<state>", data: {"nonce","verifier","target","attempt"} (short TTL, taken once).
 * Record "handoff/<id>", data: {"session_id"} (60 s TTL, taken once by the audience host).
 * The TTL of a session record is its remaining lifetime.
 */

#define CMN_SESSION_MAX_GROUPS 1024

/* what authorize needs of a session, parsed once and kept in its cache */
typedef struct st_cmn_session_t {
    char *id;
    char *user_id;
    char *email;
    bool email_verified;
    char *name;
    cmn_strlist_t groups;
    json_t *claims; /* owned reference */
    uint64_t issued;
    uint64_t expiry;
} cmn_session_t;

/** parses a session record's "data" object; returns NULL with `*err` set (caller destroys) */
cmn_session_t *cmn_session_from_json(const char *id, const json_t *data, const char **err);
void cmn_session_destroy(cmn_session_t *session);

#endif
