/* SPDX-License-Identifier: MIT */
/* Builds session and user record data from claims; seals refresh tokens for storage at rest. */
#include "authenticate/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "common/session.h"

#define AD_MAX 128

static json_t *groups_of(const json_t *claims)
{
    const json_t *g = json_object_get(claims, "groups");
    json_t *out = json_array();
    size_t i;

    if (out == NULL || !json_is_array(g)) {
        return out;
    }
    for (i = 0; i < json_array_size(g) && json_array_size(out) < CMN_SESSION_MAX_GROUPS; i++) {
        const json_t *v = json_array_get(g, i);
        if (json_is_string(v)) {
            json_array_append_new(out, json_string(json_string_value(v)));
        }
    }
    return out;
}

/* email_verified is a boolean in the spec; some providers send the string "true" */
static bool email_verified_of(const json_t *claims)
{
    const json_t *v = json_object_get(claims, "email_verified");

    if (json_is_boolean(v)) {
        return json_is_true(v);
    }
    return json_is_string(v) && strcmp(json_string_value(v), "true") == 0;
}

static const char *string_or_empty(const json_t *claims, const char *name)
{
    const char *s = json_string_value(json_object_get(claims, name));

    return s != NULL ? s : "";
}

json_t *authn_session_data(const authn_session_fields_t *f, const uint8_t at_rest[CMN_KEY_LEN])
{
    const char *sub = json_string_value(json_object_get(f->claims, "sub"));
    json_t *data = NULL;
    char *sealed = NULL;

    if (sub == NULL) {
        return NULL;
    }
    data = json_pack(
        "{s:s, s:s, s:b, s:s, s:o, s:O, s:I, s:I, s:I, s:s, s:s, s:I}", "user_id", sub, "email",
        string_or_empty(f->claims, "email"), "email_verified", email_verified_of(f->claims), "name",
        string_or_empty(f->claims, "name"), "groups", groups_of(f->claims), "claims", f->claims,
        "issued", (json_int_t)f->issued, "expiry", (json_int_t)f->expiry, "last_refresh",
        (json_int_t)f->last_refresh, "id_token", f->id_token != NULL ? f->id_token : "",
        "access_token", f->access_token != NULL ? f->access_token : "", "access_expiry",
        (json_int_t)f->access_expiry);
    if (data == NULL || f->refresh_token == NULL) {
        return data;
    }

    sealed = authn_refresh_token_seal(at_rest, f->session_id, f->refresh_token);
    if (sealed == NULL || json_object_set_new(data, "refresh_token", json_string(sealed)) != 0) {
        json_decref(data);
        data = NULL;
    }
    free(sealed);
    return data;
}

json_t *authn_user_data(const json_t *claims)
{
    return json_pack("{s:s, s:s, s:O}", "email", string_or_empty(claims, "email"), "name",
                     string_or_empty(claims, "name"), "claims", claims);
}

static int refresh_ad(const char *session_id, char ad[AD_MAX])
{
    int n = snprintf(ad, AD_MAX, "refresh_token|%s", session_id);

    return n > 0 && n < AD_MAX ? n : -1;
}

char *authn_refresh_token_seal(const uint8_t key[CMN_KEY_LEN], const char *session_id,
                               const char *token)
{
    size_t len = strlen(token);
    uint8_t *box = NULL;
    char *out = NULL;
    char ad[AD_MAX];
    int adlen = refresh_ad(session_id, ad);

    if (adlen < 0 || len > AUTHN_REFRESH_TOKEN_MAX) {
        return NULL;
    }
    box = malloc(len + CMN_AEAD_OVERHEAD);
    out = malloc(cmn_base64_encoded_len(len + CMN_AEAD_OVERHEAD) + 1);
    if (box == NULL || out == NULL || cmn_aead_seal(key, ad, (size_t)adlen, token, len, box) != 0) {
        free(out);
        out = NULL;
    } else {
        cmn_base64url_encode(box, len + CMN_AEAD_OVERHEAD, out);
    }
    free(box);
    return out;
}

char *authn_refresh_token_open(const uint8_t key[CMN_KEY_LEN], const char *session_id,
                               const char *sealed)
{
    size_t slen = strlen(sealed);
    size_t cap = slen; /* decoded is shorter than its base64 */
    uint8_t *box = NULL;
    char *out = NULL;
    long n;
    char ad[AD_MAX];
    int adlen = refresh_ad(session_id, ad);

    if (adlen < 0 || slen > cmn_base64_encoded_len(AUTHN_REFRESH_TOKEN_MAX + CMN_AEAD_OVERHEAD)) {
        return NULL;
    }
    box = malloc(cap + 1);
    if (box == NULL) {
        return NULL;
    }
    n = cmn_base64url_decode(sealed, slen, box, cap);
    if (n < CMN_AEAD_OVERHEAD) {
        goto Exit;
    }
    out = malloc((size_t)n - CMN_AEAD_OVERHEAD + 1);
    if (out == NULL) {
        goto Exit;
    }
    if (cmn_aead_open(key, ad, (size_t)adlen, box, (size_t)n, (uint8_t *)out) != 0) {
        free(out);
        out = NULL;
        goto Exit;
    }
    out[n - CMN_AEAD_OVERHEAD] = '\0';

Exit:
    free(box);
    return out;
}
