/* SPDX-License-Identifier: MIT */
/* The handoff from authenticate: /.pomerium/callback?pomerium_handoff=TOKEN sets the cookie. */
#ifndef AUTHZ_CALLBACK_H
#define AUTHZ_CALLBACK_H

#include <h2o.h>

typedef enum en_authz_handoff_reply_t {
    AUTHZ_HANDOFF_REPLY_401 = 0, /* inside /verify: 401 + one Set-Cookie + Location: T */
    AUTHZ_HANDOFF_REPLY_302,     /* a normal request: 302 to T with the cookie */
} authz_handoff_reply_t;

/**
 * Consumes the handoff `token` (raw query value) for `audience` (the lower-case host it was
 * sent to): opens it, checks the audience, takes handoff/<id> from the databroker (a missing
 * record is a replay: 400) and answers with the session cookie. Answers later.
 */
void authz_handoff_consume(h2o_req_t *req, h2o_iovec_t token, h2o_iovec_t audience,
                           authz_handoff_reply_t reply);

/**
 * Opens `token` without consuming it; on success returns 0 and the target T inside it (pool).
 * -1 when it is invalid, expired or for another audience.
 */
int authz_handoff_peek(h2o_req_t *req, h2o_iovec_t token, h2o_iovec_t audience,
                       h2o_iovec_t *target);

#endif
