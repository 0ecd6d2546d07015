/* SPDX-License-Identifier: MIT */
/* Opened session cookies by exact value: a direct-mapped table per worker thread. */
#include "authorize/ticket_cache.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#define SLOT_HASH_TAIL 16 /* bytes of the value hashed: its end lies in the AEAD tag */

typedef struct st_ticket_slot_t {
    uint8_t value_len; /* 0: empty */
    uint8_t scope_len;
    char value[CMN_COOKIE_VALUE_MAX];
    char scope[AUTHZ_TICKET_SCOPE_MAX];
    cmn_session_ticket_t ticket;
} ticket_slot_t;

struct st_authz_ticket_cache_t {
    ticket_slot_t slots[AUTHZ_TICKET_CACHE_SLOTS];
};

authz_ticket_cache_t *authz_ticket_cache_create(void)
{
    return calloc(1, sizeof(authz_ticket_cache_t));
}

void authz_ticket_cache_destroy(authz_ticket_cache_t *cache)
{
    if (cache == NULL) {
        return;
    }
    OPENSSL_cleanse(cache, sizeof(*cache));
    free(cache);
}

/*
 * FNV-1a over the length and the value's last bytes: those are the tag's, random for a genuine
 * cookie. A crafted value can only evict a slot, and evicting costs one open.
 */
static size_t slot_index(h2o_iovec_t value)
{
    size_t from = value.len > SLOT_HASH_TAIL ? value.len - SLOT_HASH_TAIL : 0;
    uint32_t h = 2166136261u ^ (uint32_t)value.len;

    for (size_t i = from; i < value.len; i++) {
        h = (h ^ (unsigned char)value.base[i]) * 16777619u;
    }
    return h % AUTHZ_TICKET_CACHE_SLOTS;
}

static bool cacheable(size_t scope_len, h2o_iovec_t value)
{
    return value.len > 0 && value.len < CMN_COOKIE_VALUE_MAX && scope_len < AUTHZ_TICKET_SCOPE_MAX;
}

bool authz_ticket_cache_get(authz_ticket_cache_t *cache, const char *scope, h2o_iovec_t value,
                            uint64_t now, cmn_session_ticket_t *out)
{
    size_t scope_len = strlen(scope);
    ticket_slot_t *slot;

    if (!cacheable(scope_len, value)) {
        return false;
    }
    slot = &cache->slots[slot_index(value)];

    /* the value is a credential: compared in constant time, so timing shows no prefix of it */
    if (slot->value_len != value.len || CRYPTO_memcmp(slot->value, value.base, value.len) != 0 ||
        slot->scope_len != scope_len || memcmp(slot->scope, scope, scope_len) != 0) {
        return false;
    }
    if (now >= slot->ticket.expiry) {
        /* expired: forgotten, and the caller's open reports why */
        OPENSSL_cleanse(slot, sizeof(*slot));
        return false;
    }
    *out = slot->ticket;
    return true;
}

void authz_ticket_cache_put(authz_ticket_cache_t *cache, const char *scope, h2o_iovec_t value,
                            const cmn_session_ticket_t *ticket)
{
    size_t scope_len = strlen(scope);
    ticket_slot_t *slot;

    if (!cacheable(scope_len, value)) {
        return;
    }
    slot = &cache->slots[slot_index(value)];
    slot->value_len = (uint8_t)value.len;
    memcpy(slot->value, value.base, value.len);
    slot->scope_len = (uint8_t)scope_len;
    memcpy(slot->scope, scope, scope_len);
    slot->ticket = *ticket;
}
