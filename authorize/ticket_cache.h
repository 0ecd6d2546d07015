/* SPDX-License-Identifier: MIT */
/* Per worker thread: session cookies this thread has already opened, by their exact value. */
#ifndef AUTHZ_TICKET_CACHE_H
#define AUTHZ_TICKET_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <h2o.h>
#include "common/cookie.h"

#define AUTHZ_TICKET_CACHE_SLOTS 1024
#define AUTHZ_TICKET_SCOPE_MAX 128 /* a longer cookie scope is opened every time, not cached */

/*
 * A cookie value is authenticated ciphertext: the same bytes under the same name, scope and key
 * always open to the same ticket, so a value seen before skips the base64 decode and the
 * AES-GCM open, the largest cost of a cached /verify after the kernel's. Only values that
 * opened are kept; the expiry is checked on every hit. One cache per thread, no locks.
 */
typedef struct st_authz_ticket_cache_t authz_ticket_cache_t;

authz_ticket_cache_t *authz_ticket_cache_create(void);
/** wipes the cookie values it held */
void authz_ticket_cache_destroy(authz_ticket_cache_t *cache);

/** true, with *out, when `value` under `scope` opened here before and expires after `now` */
bool authz_ticket_cache_get(authz_ticket_cache_t *cache, const char *scope, h2o_iovec_t value,
                            uint64_t now, cmn_session_ticket_t *out);

/** remembers that `value` under `scope` opened to `ticket` (replacing what shared its slot) */
void authz_ticket_cache_put(authz_ticket_cache_t *cache, const char *scope, h2o_iovec_t value,
                            const cmn_session_ticket_t *ticket);

#endif
