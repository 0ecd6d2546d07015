/* SPDX-License-Identifier: MIT */
/* Short HTML pages for the browser: errors, the sign-out confirmation, the signed-out page. */
#ifndef AUTHN_PAGE_H
#define AUTHN_PAGE_H

#include <h2o.h>

/**
 * Sends a small HTML page. `title` and `text` are plain text (escaped here); `extra_html` is
 * trusted markup appended after the text (NULL for none).
 */
void authn_page_send(h2o_req_t *req, int status, const char *title, const char *text,
                     const char *extra_html);

/**
 * Logs `why` once at warn (error for status >= 500) with the request id, then sends an error
 * page with `status` and the user-facing `text`. `why` must never hold a secret.
 */
void authn_page_fail(h2o_req_t *req, int status, const char *why, const char *text);

/** the standard reason phrase for the statuses we send */
const char *authn_page_reason(int status);

#endif
