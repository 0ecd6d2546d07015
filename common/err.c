/* SPDX-License-Identifier: MIT */
/* The shared error strings, and the abort for broken invariants. */
#include "common/err.h"

#include <stdlib.h>

#include "common/log.h"

const char cmn_err_no_memory[] = "out of memory";
const char cmn_err_too_large[] = "too large";
const char cmn_err_bad_base64[] = "bad base64";
const char cmn_err_bad_json[] = "bad json";
const char cmn_err_decrypt[] = "cannot decrypt";
const char cmn_err_expired[] = "expired";
const char cmn_err_bad_signature[] = "bad signature";
const char cmn_err_malformed[] = "malformed";
const char cmn_err_wrong_scope[] = "wrong scope";
const char cmn_err_not_found[] = "not found";
const char cmn_err_unavailable[] = "unavailable";
const char cmn_err_timeout[] = "timed out";
const char cmn_err_io[] = "i/o error";

const char cmn_err_jwt_malformed[] = "malformed token";
const char cmn_err_jwt_alg[] = "token algorithm not allowed";
const char cmn_err_jwt_unknown_kid[] = "unknown token key id";
const char cmn_err_jwt_signature[] = "bad token signature";
const char cmn_err_jwt_iss[] = "wrong token issuer";
const char cmn_err_jwt_aud[] = "wrong token audience";
const char cmn_err_jwt_azp[] = "wrong token authorized party";
const char cmn_err_jwt_expired[] = "token expired";
const char cmn_err_jwt_not_yet_valid[] = "token not yet valid";
const char cmn_err_jwt_iat[] = "token issued in the future";
const char cmn_err_jwt_nonce[] = "wrong token nonce";
const char cmn_err_jwt_missing_claim[] = "token claim missing";

void cmn_unreachable(const char *why)
{
    cmn_log_error(NULL, "unreachable: %s", why != NULL ? why : "(no reason)");
    abort();
}
