/* SPDX-License-Identifier: MIT */
/* A shared session id -> session map with tombstones, kept fresh by a change-stream thread. */
#include "authorize/session_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <h2o.h>
#include "common/broker_client.h"
#include "common/err.h"
#include "common/log.h"

#define FOLLOW_BACKOFF_MIN_MS 100
#define FOLLOW_BACKOFF_MAX_MS 5000
#define FOLLOW_EPOCH_MAX 128
#define FOLLOW_ID_MAX 256

typedef struct st_cache_entry_t {
    struct st_cache_entry_t *next;   /* bucket chain */
    struct st_cache_entry_t *older;  /* insertion order, for eviction */
    struct st_cache_entry_t *newer;
    cmn_session_t *session;
    uint64_t version;
    atomic_uint refs; /* one for the map, one per request holding it */
} cache_entry_t;

typedef struct st_tombstone_t {
    struct st_tombstone_t *next;
    struct st_tombstone_t *newer;
    char *id;
    uint64_t version;
    uint64_t at;
    bool deleted;
} tombstone_t;

struct st_authz_session_cache_t {
    pthread_rwlock_t lock;
    size_t max;
    cache_entry_t **buckets;
    size_t num_buckets;
    size_t count;
    cache_entry_t *oldest, *newest;
    tombstone_t **tomb_buckets;
    size_t num_tomb_buckets;
    size_t tomb_count;
    tombstone_t *tomb_oldest, *tomb_newest;
    atomic_uint_fast64_t generation;
    atomic_bool connected;
    const cmn_config_t *config;
    pthread_t follower;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;

    while (p < n) {
        p *= 2;
    }
    return p;
}

static void entry_unref(cache_entry_t *entry)
{
    if (atomic_fetch_sub(&entry->refs, 1) == 1) {
        cmn_session_destroy(entry->session);
        free(entry);
    }
}

static cache_entry_t **find_slot(authz_session_cache_t *cache, const char *id)
{
    cache_entry_t **slot = &cache->buckets[hash_id(id) & (cache->num_buckets - 1)];

    while (*slot != NULL && strcmp((*slot)->session->id, id) != 0) {
        slot = &(*slot)->next;
    }
    return slot;
}

/* unlinks the entry at `slot` from the map and the order list; caller holds the write lock */
static void remove_at(authz_session_cache_t *cache, cache_entry_t **slot)
{
    cache_entry_t *entry = *slot;

    *slot = entry->next;
    if (entry->older != NULL) {
        entry->older->newer = entry->newer;
    } else {
        cache->oldest = entry->newer;
    }
    if (entry->newer != NULL) {
        entry->newer->older = entry->older;
    } else {
        cache->newest = entry->older;
    }
    cache->count--;
    entry_unref(entry);
}

static void evict_oldest(authz_session_cache_t *cache)
{
    remove_at(cache, find_slot(cache, cache->oldest->session->id));
}

static tombstone_t **find_tomb_slot(authz_session_cache_t *cache, const char *id)
{
    tombstone_t **slot = &cache->tomb_buckets[hash_id(id) & (cache->num_tomb_buckets - 1)];

    while (*slot != NULL && strcmp((*slot)->id, id) != 0) {
        slot = &(*slot)->next;
    }
    return slot;
}

/* tombstones die oldest first; the list is in creation order */
static void drop_oldest_tombstone(authz_session_cache_t *cache)
{
    tombstone_t *tomb = cache->tomb_oldest;
    tombstone_t **slot = find_tomb_slot(cache, tomb->id);

    *slot = tomb->next;
    cache->tomb_oldest = tomb->newer;
    if (cache->tomb_oldest == NULL) {
        cache->tomb_newest = NULL;
    }
    cache->tomb_count--;
    free(tomb->id);
    free(tomb);
}

static void prune_tombstones(authz_session_cache_t *cache, uint64_t now)
{
    while (cache->tomb_oldest != NULL &&
           (cache->tomb_count > AUTHZ_TOMBSTONE_MAX ||
            cache->tomb_oldest->at + AUTHZ_TOMBSTONE_TTL_S < now)) {
        drop_oldest_tombstone(cache);
    }
}

/* a tombstone keeps only the newest version; re-adding moves nothing (ordering is by age) */
static void add_tombstone(authz_session_cache_t *cache, const char *id, uint64_t version,
                          bool deleted, uint64_t now)
{
    tombstone_t **slot = find_tomb_slot(cache, id);
    tombstone_t *tomb = *slot;

    if (tomb != NULL) {
        if (version >= tomb->version) {
            tomb->version = version;
            tomb->deleted = deleted;
        }
        return;
    }

    tomb = h2o_mem_alloc(sizeof(*tomb));
    *tomb = (tombstone_t){.id = h2o_strdup(NULL, id, SIZE_MAX).base, .version = version,
                          .at = now, .deleted = deleted};
    *slot = tomb;
    if (cache->tomb_newest != NULL) {
        cache->tomb_newest->newer = tomb;
    } else {
        cache->tomb_oldest = tomb;
    }
    cache->tomb_newest = tomb;
    cache->tomb_count++;
    prune_tombstones(cache, now);
}

static void fill_ref(cache_entry_t *entry, authz_cached_session_t *out)
{
    atomic_fetch_add(&entry->refs, 1);
    *out = (authz_cached_session_t){
        .session = entry->session, .version = entry->version, ._entry = entry};
}

static authz_cache_insert_t check_insert(authz_session_cache_t *cache, const char *id,
                                         uint64_t version, uint64_t gen)
{
    tombstone_t *tomb;

    if (gen != atomic_load(&cache->generation)) {
        return AUTHZ_CACHE_STALE;
    }
    tomb = *find_tomb_slot(cache, id);
    if (tomb != NULL && tomb->version > version) {
        return tomb->deleted ? AUTHZ_CACHE_DELETED : AUTHZ_CACHE_STALE;
    }
    return AUTHZ_CACHE_INSERTED;
}

static void link_newest(authz_session_cache_t *cache, cache_entry_t **slot, cache_entry_t *entry)
{
    *slot = entry;
    entry->older = cache->newest;
    if (cache->newest != NULL) {
        cache->newest->newer = entry;
    } else {
        cache->oldest = entry;
    }
    cache->newest = entry;
    cache->count++;
}

authz_session_cache_t *authz_session_cache_create(size_t max)
{
    authz_session_cache_t *cache = h2o_mem_alloc(sizeof(*cache));

    *cache = (authz_session_cache_t){.max = max == 0 ? AUTHZ_SESSION_CACHE_MAX : max};
    if (pthread_rwlock_init(&cache->lock, NULL) != 0) {
        cmn_unreachable("pthread_rwlock_init failed");
    }
    cache->num_buckets = pow2_at_least(cache->max);
    cache->buckets = calloc(cache->num_buckets, sizeof(cache_entry_t *));
    cache->num_tomb_buckets = pow2_at_least(1024);
    cache->tomb_buckets = calloc(cache->num_tomb_buckets, sizeof(tombstone_t *));
    if (cache->buckets == NULL || cache->tomb_buckets == NULL) {
        cmn_unreachable("out of memory creating the session cache");
    }
    atomic_init(&cache->generation, 1);
    atomic_init(&cache->connected, false);
    return cache;
}

void authz_session_cache_destroy(authz_session_cache_t *cache)
{
    if (cache == NULL) {
        return;
    }
    authz_session_cache_flush(cache);
    while (cache->tomb_oldest != NULL) {
        drop_oldest_tombstone(cache);
    }
    free(cache->buckets);
    free(cache->tomb_buckets);
    pthread_rwlock_destroy(&cache->lock);
    free(cache);
}

bool authz_session_cache_lookup(authz_session_cache_t *cache, const char *id,
                                authz_cached_session_t *out)
{
    cache_entry_t *entry;

    pthread_rwlock_rdlock(&cache->lock);
    entry = *find_slot(cache, id);
    if (entry != NULL) {
        fill_ref(entry, out);
    }
    pthread_rwlock_unlock(&cache->lock);
    return entry != NULL;
}

void authz_session_cache_release(authz_session_cache_t *cache, const authz_cached_session_t *ref)
{
    if (ref != NULL && ref->_entry != NULL) {
        entry_unref(ref->_entry);
    }
}

uint64_t authz_session_cache_generation(authz_session_cache_t *cache)
{
    return atomic_load(&cache->generation);
}

authz_cache_insert_t authz_session_cache_insert(authz_session_cache_t *cache,
                                                cmn_session_t *session, uint64_t version,
                                                uint64_t gen, uint64_t now,
                                                authz_cached_session_t *out)
{
    cache_entry_t **slot;
    cache_entry_t *entry;
    authz_cache_insert_t verdict;

    pthread_rwlock_wrlock(&cache->lock);
    verdict = check_insert(cache, session->id, version, gen);
    if (verdict != AUTHZ_CACHE_INSERTED) {
        goto Exit;
    }

    slot = find_slot(cache, session->id);
    if (*slot != NULL) {
        remove_at(cache, slot);
        slot = find_slot(cache, session->id);
    }
    entry = h2o_mem_alloc(sizeof(*entry));
    *entry = (cache_entry_t){.session = session, .version = version};
    atomic_init(&entry->refs, 1);
    link_newest(cache, slot, entry);
    fill_ref(entry, out);

    while (cache->count > cache->max) {
        evict_oldest(cache);
    }

Exit:
    pthread_rwlock_unlock(&cache->lock);
    return verdict;
}

void authz_session_cache_evict(authz_session_cache_t *cache, const char *id, uint64_t version,
                               bool deleted, uint64_t now)
{
    cache_entry_t **slot;

    pthread_rwlock_wrlock(&cache->lock);
    slot = find_slot(cache, id);
    if (*slot != NULL) {
        remove_at(cache, slot);
    }
    add_tombstone(cache, id, version, deleted, now);
    pthread_rwlock_unlock(&cache->lock);
}

void authz_session_cache_flush(authz_session_cache_t *cache)
{
    pthread_rwlock_wrlock(&cache->lock);
    atomic_fetch_add(&cache->generation, 1);
    while (cache->oldest != NULL) {
        evict_oldest(cache);
    }
    pthread_rwlock_unlock(&cache->lock);
}

size_t authz_session_cache_size(authz_session_cache_t *cache)
{
    size_t n;

    pthread_rwlock_rdlock(&cache->lock);
    n = cache->count;
    pthread_rwlock_unlock(&cache->lock);
    return n;
}

/* the follower: one long poll at a time, on its own thread, with no event loop */

typedef struct st_follow_state_t {
    uint64_t after;
    char epoch[FOLLOW_EPOCH_MAX + 1];
} follow_state_t;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void apply_change(authz_session_cache_t *cache, const json_t *change, uint64_t now)
{
    const char *type = json_string_value(json_object_get(change, "type"));
    const char *id = json_string_value(json_object_get(change, "id"));
    json_t *version = json_object_get(change, "version");

    if (type == NULL || id == NULL || strcmp(type, "session") != 0) {
        return;
    }
    if (strlen(id) > FOLLOW_ID_MAX) {
        return;
    }
    authz_session_cache_evict(cache, id, (uint64_t)json_integer_value(version),
                              json_is_true(json_object_get(change, "deleted")), now);
}

static int apply_changes(authz_session_cache_t *cache, follow_state_t *st, const json_t *body)
{
    json_t *changes = json_object_get(body, "changes");
    json_t *latest = json_object_get(body, "latest");
    const char *epoch = json_string_value(json_object_get(body, "epoch"));
    uint64_t now = (uint64_t)time(NULL);
    size_t i;
    json_t *change;

    if (!json_is_integer(latest) || epoch == NULL || strlen(epoch) > FOLLOW_EPOCH_MAX) {
        return -1;
    }

    if (json_is_true(json_object_get(body, "resync"))) {
        cmn_log_info(NULL, "change stream resync (epoch \"%s\", version %lld): cache flushed",
                     epoch, (long long)json_integer_value(latest));
        authz_session_cache_flush(cache);
    } else {
        json_array_foreach(changes, i, change) {
            apply_change(cache, change, now);
        }
    }

    st->after = (uint64_t)json_integer_value(latest);
    memcpy(st->epoch, epoch, strlen(epoch) + 1);
    return 0;
}

static void *follow_main(void *arg)
{
    authz_session_cache_t *cache = arg;
    follow_state_t st = {0};
    unsigned backoff = FOLLOW_BACKOFF_MIN_MS;
    bool failing = false;

    for (;;) {
        const char *err = NULL;
        json_t *body = cmn_broker_changes_blocking(cache->config, st.after,
                                                   st.epoch[0] != '\0' ? st.epoch : NULL,
                                                   CMN_BROKER_WAIT_S, &err);
        if (body != NULL && apply_changes(cache, &st, body) == 0) {
            json_decref(body);
            if (failing) {
                cmn_log_info(NULL, "change stream reconnected at version %llu",
                             (unsigned long long)st.after);
            }
            atomic_store(&cache->connected, true);
            failing = false;
            backoff = FOLLOW_BACKOFF_MIN_MS;
            continue;
        }
        json_decref(body);

        /* the cache keeps serving what it holds while the databroker is away */
        if (!failing) {
            cmn_log_warn(NULL, "change stream failed: %s; retrying with backoff",
                         err != NULL ? err : cmn_err_malformed);
        }
        failing = true;
        atomic_store(&cache->connected, false);
        sleep_ms(backoff);
        backoff = backoff * 2 > FOLLOW_BACKOFF_MAX_MS ? FOLLOW_BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

int authz_session_cache_follow(authz_session_cache_t *cache, const cmn_config_t *config)
{
    cache->config = config;
    if (pthread_create(&cache->follower, NULL, follow_main, cache) != 0) {
        return -1;
    }
    pthread_detach(cache->follower);
    return 0;
}

bool authz_session_cache_connected(authz_session_cache_t *cache)
{
    return atomic_load(&cache->connected);
}
