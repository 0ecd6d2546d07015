/* SPDX-License-Identifier: MIT */
/* Builds and sends the daemon's HTML pages; every error answer goes through here. */
#include "authenticate/page.h"

#include <string.h>
#include "common/log.h"
#include "common/server.h"
#include "common/url.h"

#define PAGE_HEAD                                                                                  \
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"                                          \
    "<meta name=\"viewport\" content=\"width=device-width\"><title>"

const char *authn_page_reason(int status)
{
    const char *reason = cmn_reason_phrase(status);

    /* a page needs a title, even for a status without a standard phrase */
    return reason[0] != '\0' ? reason : "Error";
}

void authn_page_send(h2o_req_t *req, int status, const char *title, const char *text,
                     const char *extra_html)
{
    h2o_iovec_t t = cmn_html_escape(&req->pool, title, strlen(title));
    h2o_iovec_t x = cmn_html_escape(&req->pool, text, strlen(text));
    const char *extra = extra_html != NULL ? extra_html : "";

    h2o_iovec_t body = h2o_concat(
        &req->pool, h2o_iovec_init(H2O_STRLIT(PAGE_HEAD)), t,
        h2o_iovec_init(H2O_STRLIT("</title></head><body><h1>")), t,
        h2o_iovec_init(H2O_STRLIT("</h1><p>")), x, h2o_iovec_init(H2O_STRLIT("</p>")),
        h2o_iovec_init(extra, strlen(extra)), h2o_iovec_init(H2O_STRLIT("</body></html>\n")));
    cmn_send_html(req, status, authn_page_reason(status), body);
}

void authn_page_fail(h2o_req_t *req, int status, const char *why, const char *text)
{
    cmn_log_level_t level = status >= 500 ? CMN_LOG_ERROR : CMN_LOG_WARN;
    char path[96];

    /* the path without its query: a query may hold a code, state or token */
    cmn_log_escape(req->path_normalized.base, req->path_normalized.len, 64, path, sizeof(path));
    cmn_log(level, cmn_req_id(req), "%d %s: %s", status, path, why);
    authn_page_send(req, status, authn_page_reason(status), text, NULL);
}
