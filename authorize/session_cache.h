/* SPDX-License-Identifier: MIT */
/* The sessions authorize has read, shared by its worker threads and kept fresh by the change
 * stream. */
#ifndef AUTHZ_SESSION_CACHE_H
#define AUTHZ_SESSION_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/config.h"
#include "common/session.h"

#define AUTHZ_SESSION_CACHE_MAX 100000
#define AUTHZ_TOMBSTONE_MAX 65536
#define AUTHZ_TOMBSTONE_TTL_S 60

typedef struct st_authz_session_cache_t authz_session_cache_t;

/* a cached session handed to a request; hold it until done, then release it */
typedef struct st_authz_cached_session_t {
    const cmn_session_t *session;
    uint64_t version; /* the record version it was read at */
    void *_entry;
} authz_cached_session_t;

typedef enum en_authz_cache_insert_t {
    AUTHZ_CACHE_INSERTED = 0,
    AUTHZ_CACHE_STALE,   /* a newer change or a resync arrived meanwhile: use once, don't keep */
    AUTHZ_CACHE_DELETED, /* the session was deleted after this read: treat it as absent */
} authz_cache_insert_t;

/** a cache holding at most `max` sessions (0 = AUTHZ_SESSION_CACHE_MAX); aborts on OOM */
authz_session_cache_t *authz_session_cache_create(size_t max);
void authz_session_cache_destroy(authz_session_cache_t *cache);

/**
 * Looks `id` up. On a hit fills `out`, takes a reference (release it with
 * authz_session_cache_release) and returns true. Never allocates; takes a read lock.
 */
bool authz_session_cache_lookup(authz_session_cache_t *cache, const char *id,
                                authz_cached_session_t *out);
void authz_session_cache_release(authz_session_cache_t *cache, const authz_cached_session_t *ref);

/** the generation to pass to insert: read it before starting a fetch */
uint64_t authz_session_cache_generation(authz_session_cache_t *cache);

/**
 * Offers a session read at `version` by a fetch that started at generation `gen`. The cache
 * takes ownership of `session` when it returns AUTHZ_CACHE_INSERTED and fills `out` with a
 * reference (release it); otherwise the caller keeps `session` and `out` is untouched.
 */
authz_cache_insert_t authz_session_cache_insert(authz_session_cache_t *cache,
                                                cmn_session_t *session, uint64_t version,
                                                uint64_t gen, uint64_t now,
                                                authz_cached_session_t *out);

/**
 * A change to session `id` at `version`: drops the cached copy and remembers a tombstone so a
 * fetch of an older version is not inserted later.
 */
void authz_session_cache_evict(authz_session_cache_t *cache, const char *id, uint64_t version,
                               bool deleted, uint64_t now);

/** drops every session (a resync: the change history was lost) */
void authz_session_cache_flush(authz_session_cache_t *cache);

size_t authz_session_cache_size(authz_session_cache_t *cache);

/**
 * Starts the change-stream follower thread: long polls of /v1/changes that evict changed
 * sessions and flush on resync, retrying with backoff while the databroker is away.
 * `config` is borrowed. Returns 0 or -1.
 */
int authz_session_cache_follow(authz_session_cache_t *cache, const cmn_config_t *config);

/**
 * From now on a cached session keeps, of its claims, only those that a policy or a claim header
 * of a route table in force since may read (found in the routes' JSON), and a reload that reads
 * more flushes the cache. `config` (borrowed) is the start-up one, the route table's when it has
 * none. Needs authz_tables_init; authz_session_cache_follow calls it. Without it (tests) every
 * claim is kept.
 */
void authz_session_cache_keep_claims(authz_session_cache_t *cache, const cmn_config_t *config);

/** true while the change stream answers: false before its first answer and after a failure */
bool authz_session_cache_connected(authz_session_cache_t *cache);

#endif
