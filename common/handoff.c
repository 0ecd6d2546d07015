/* SPDX-License-Identifier: MIT */
/* Handoff tokens: a small JSON document sealed with AES-256-GCM and carried as base64url. */
#include "common/handoff.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "common/err.h"

#define HANDOFF_VERSION 1
#define HANDOFF_AD "portcullis handoff"
/* the sealed bytes behind the longest token CMN_HANDOFF_MAX allows */
#define SEALED_MAX (CMN_HANDOFF_MAX / 4 * 3)
#define PAYLOAD_MAX (SEALED_MAX - CMN_AEAD_OVERHEAD)

/* copies a string field of at most `cap - 1` bytes without NUL inside; false otherwise */
static bool copy_field(json_t *doc, const char *key, char *out, size_t cap, bool required)
{
    json_t *v = json_object_get(doc, key);
    size_t len = 0;

    if (v == NULL && !required) {
        out[0] = '\0';
        return true;
    }
    if (!json_is_string(v)) {
        return false;
    }
    len = json_string_length(v);
    if (len >= cap || (required && len == 0) || memchr(json_string_value(v), '\0', len) != NULL) {
        return false;
    }
    memcpy(out, json_string_value(v), len);
    out[len] = '\0';
    return true;
}

static bool get_time(json_t *doc, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(doc, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* reads the opened payload into `out`; every field has the ceiling of its buffer */
static int from_json(const uint8_t *payload, size_t len, cmn_handoff_t *out)
{
    json_t *doc = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *version = json_object_get(doc, "v");
    int ret = -1;

    if (!json_is_object(doc) || !json_is_integer(version) ||
        json_integer_value(version) != HANDOFF_VERSION) {
        goto Exit;
    }
    if (!copy_field(doc, "id", out->id, sizeof(out->id), true) ||
        !copy_field(doc, "sid", out->session_id, sizeof(out->session_id), true) ||
        !copy_field(doc, "aud", out->audience, sizeof(out->audience), true) ||
        !copy_field(doc, "t", out->target, sizeof(out->target), true)) {
        goto Exit;
    }
    if (!get_time(doc, "sexp", &out->session_expiry) || !get_time(doc, "exp", &out->expiry)) {
        goto Exit;
    }
    ret = 0;

Exit:
    json_decref(doc);
    return ret;
}

/* a field to seal must be non-empty and NUL-terminated within its buffer */
static bool field_ok(const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);

    return len > 0 && len < cap;
}

/* the JSON text of a handoff, or NULL when a field is empty, unterminated or out of range */
static char *to_json(const cmn_handoff_t *h)
{
    json_t *doc = NULL;
    char *text = NULL;

    if (!field_ok(h->id, sizeof(h->id)) || !field_ok(h->session_id, sizeof(h->session_id)) ||
        !field_ok(h->audience, sizeof(h->audience)) || !field_ok(h->target, sizeof(h->target))) {
        goto Exit;
    }
    /* json integers are signed 64-bit */
    if (h->expiry > INT64_MAX || h->session_expiry > INT64_MAX) {
        goto Exit;
    }

    doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I}", "v", HANDOFF_VERSION, "id", h->id, "sid",
                    h->session_id, "aud", h->audience, "t", h->target, "sexp",
                    (json_int_t)h->session_expiry, "exp", (json_int_t)h->expiry);
    if (doc == NULL) {
        goto Exit;
    }
    text = json_dumps(doc, JSON_COMPACT);

Exit:
    json_decref(doc);
    return text;
}

char *cmn_handoff_seal(const uint8_t key[CMN_KEY_LEN], const cmn_handoff_t *handoff)
{
    char *payload = NULL;
    uint8_t *sealed = NULL;
    char *token = NULL;
    char *ret = NULL;
    size_t payload_len = 0;
    size_t sealed_len = 0;

    payload = to_json(handoff);
    if (payload == NULL) {
        goto Exit;
    }
    payload_len = strlen(payload);
    if (payload_len > PAYLOAD_MAX) {
        goto Exit;
    }
    sealed_len = payload_len + CMN_AEAD_OVERHEAD;

    sealed = malloc(sealed_len);
    token = malloc(cmn_base64_encoded_len(sealed_len) + 1);
    if (sealed == NULL || token == NULL) {
        goto Exit;
    }
    if (cmn_aead_seal(key, HANDOFF_AD, strlen(HANDOFF_AD), payload, payload_len, sealed) != 0) {
        goto Exit;
    }
    cmn_base64url_encode(sealed, sealed_len, token);
    ret = token;
    token = NULL;

Exit:
    if (payload != NULL) {
        OPENSSL_cleanse(payload, payload_len);
    }
    free(payload);
    free(sealed);
    free(token);
    return ret;
}

int cmn_handoff_open(const uint8_t key[CMN_KEY_LEN], const char *token, size_t len, uint64_t now,
                     cmn_handoff_t *out, const char **err)
{
    uint8_t *sealed = NULL;
    uint8_t *payload = NULL;
    cmn_handoff_t parsed;
    long sealed_len = -1;
    int ret = -1;

    *err = cmn_err_too_large;
    if (len > CMN_HANDOFF_MAX) {
        goto Exit;
    }

    *err = cmn_err_no_memory;
    sealed = malloc(SEALED_MAX);
    payload = malloc(PAYLOAD_MAX);
    if (sealed == NULL || payload == NULL) {
        goto Exit;
    }

    *err = cmn_err_malformed;
    sealed_len = cmn_base64url_decode(token, len, sealed, SEALED_MAX);
    if (sealed_len < CMN_AEAD_OVERHEAD) {
        goto Exit;
    }
    if (cmn_aead_open(key, HANDOFF_AD, strlen(HANDOFF_AD), sealed, (size_t)sealed_len, payload) !=
        0) {
        *err = cmn_err_decrypt;
        goto Exit;
    }
    if (from_json(payload, (size_t)sealed_len - CMN_AEAD_OVERHEAD, &parsed) != 0) {
        goto Exit;
    }

    if (now >= parsed.expiry) {
        *err = cmn_err_expired;
        goto Exit;
    }
    *out = parsed;
    *err = NULL;
    ret = 0;

Exit:
    OPENSSL_cleanse(&parsed, sizeof(parsed));
    if (payload != NULL) {
        OPENSSL_cleanse(payload, PAYLOAD_MAX);
    }
    free(payload);
    free(sealed);
    return ret;
}
