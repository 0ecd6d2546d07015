/* SPDX-License-Identifier: MIT */
/* GET /verify: the forward-auth decision for nginx's auth_request (DESIGN.md §4). */
#ifndef AUTHZ_VERIFY_H
#define AUTHZ_VERIFY_H

#include <h2o.h>

typedef enum en_authz_verify_mode_t {
    AUTHZ_VERIFY_AUTH_REQUEST = 0, /* nginx auth_request: no session -> 401 */
    AUTHZ_VERIFY_FORWARDED,        /* Traefik/Caddy on the FA host: a browser gets 302 */
} authz_verify_mode_t;

/** answers the request (now or later): 200, 302 (forwarded mode), 400, 401, 403 or 503 */
void authz_verify(h2o_req_t *req, authz_verify_mode_t mode);

#endif
