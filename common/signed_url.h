/* SPDX-License-Identifier: MIT */
/* URLs signed with HMAC-SHA256: pomerium_issued, pomerium_expiry, pomerium_signature. */
#ifndef CMN_SIGNED_URL_H
#define CMN_SIGNED_URL_H

#include <stddef.h>
#include <stdint.h>
#include "common/crypto.h"

#define CMN_SIGNED_URL_TTL_S 300
#define CMN_SIGNED_URL_LEEWAY_S 60
#define CMN_SIGNED_URL_MAX 8192

/**
 * Appends `pomerium_issued=now`, `pomerium_expiry=now+TTL` and `pomerium_signature` (base64url
 * HMAC over every byte before "&pomerium_signature=") to `url`, which may already have a query.
 * Returns a malloc'd string (caller frees) or NULL.
 */
char *cmn_signed_url_sign(const uint8_t key[CMN_KEY_LEN], const char *url, uint64_t now);

/**
 * Verifies a URL made by cmn_signed_url_sign (the signature must be the last parameter, the
 * times within TTL and leeway of `now`). Sets `*err` to cmn_err_malformed,
 * cmn_err_bad_signature or cmn_err_expired. Returns 0 or -1.
 */
int cmn_signed_url_verify(const uint8_t key[CMN_KEY_LEN], const char *url, size_t len,
                          uint64_t now, const char **err);

#endif
