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
    json_t *claims; /* owned reference; NULL in a compact copy that keeps no claims */
    uint64_t issued;
    uint64_t expiry;
    bool compact; /* made by cmn_session_compact: one allocation */
} cmn_session_t;

/** parses a session record's "data" object; returns NULL with `*err` set (caller destroys) */
cmn_session_t *cmn_session_from_json(const char *id, const json_t *data, const char **err);
void cmn_session_destroy(cmn_session_t *session);

/**
 * A copy of `s` in one allocation, for a cache: every field, and of the claims only those whose
 * name is a key of `keep` (a JSON object used as a set; NULL keeps them all). An email_verified
 * claim that says false is kept whenever `s->email_verified` is false, since a policy reads it
 * then. Claim values are shared with `s`, not copied, so `s` is destroyed on this thread.
 * Destroy the copy with cmn_session_destroy. Aborts on OOM.
 */
cmn_session_t *cmn_session_compact(const cmn_session_t *s, const json_t *keep);

#endif
