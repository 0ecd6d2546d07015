/* SPDX-License-Identifier: MIT */
/* Error strings shared by every module: compared by pointer, printed as they are. */
#ifndef CMN_ERR_H
#define CMN_ERR_H

/* each is a static string; a function that fails sets `*err` to one of these (or to a module's
 * own static string) so the caller can branch on identity and the deciding layer can log it */
extern const char cmn_err_no_memory[];
extern const char cmn_err_too_large[];
extern const char cmn_err_bad_base64[];
extern const char cmn_err_bad_json[];
extern const char cmn_err_decrypt[];
extern const char cmn_err_expired[];
extern const char cmn_err_bad_signature[];
extern const char cmn_err_malformed[];
extern const char cmn_err_wrong_scope[];
extern const char cmn_err_not_found[];
extern const char cmn_err_unavailable[];
extern const char cmn_err_timeout[];
extern const char cmn_err_io[];

/* JWT verification */
extern const char cmn_err_jwt_malformed[];
extern const char cmn_err_jwt_alg[];
extern const char cmn_err_jwt_unknown_kid[];
extern const char cmn_err_jwt_signature[];
extern const char cmn_err_jwt_iss[];
extern const char cmn_err_jwt_aud[];
extern const char cmn_err_jwt_azp[];
extern const char cmn_err_jwt_expired[];
extern const char cmn_err_jwt_not_yet_valid[];
extern const char cmn_err_jwt_iat[];
extern const char cmn_err_jwt_nonce[];
extern const char cmn_err_jwt_missing_claim[];

/* logs the reason and aborts: for branches that cannot happen unless an invariant broke */
__attribute__((noreturn)) void cmn_unreachable(const char *why);

#endif
