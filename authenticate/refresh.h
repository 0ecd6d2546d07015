/* SPDX-License-Identifier: MIT */
/* Background refresh of IdP tokens before the access token lapses (DESIGN.md §7). */
#ifndef AUTHN_REFRESH_H
#define AUTHN_REFRESH_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "authenticate/app.h"

#define AUTHN_REFRESH_PERIOD_MS 30000
#define AUTHN_REFRESH_AHEAD_S 60 /* refresh when the access token lapses within this */
#define AUTHN_REFRESH_MAX_IN_FLIGHT 8
#define AUTHN_REFRESH_PAGE 100
#define AUTHN_REFRESH_MAX_PAGES 100 /* records looked at per round: PAGE * MAX_PAGES */

/** true when session data `data` has a refresh token and its access token lapses soon */
bool authn_refresh_due(const json_t *data, uint64_t now);

/** true when a refresh answer means the grant is gone for good: an RFC 6749 §5.2 error code
 *  other than the two transient ones (server_error, temporarily_unavailable) */
bool authn_refresh_permanent(int status, const char *error);

authn_refresher_t *authn_refresher_create(authn_app_t *app);
void authn_refresher_destroy(authn_refresher_t *r);

#endif
