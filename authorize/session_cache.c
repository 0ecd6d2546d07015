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
#include "authorize/reload.h"

#define FOLLOW_BACKOFF_MIN_MS 100
#define FOLLOW_BACKOFF_MAX_MS 5000
#define FOLLOW_PROBE_WAIT_S 0 /* long-poll wait while the stream is not known to work */
#define FOLLOW_EPOCH_MAX 128
#define FOLLOW_ID_MAX 256
#define CLAIM_NAMES_MAX 4096 /* names a policy or a claim header may read, over all reloads */
#define SECOND_CHANCES_MAX 8 /* recently used entries spared per eviction */

typedef struct st_cache_entry_t {
    struct st_cache_entry_t *next;   /* bucket chain */
    struct st_cache_entry_t *older;  /* insertion order, for eviction */
    struct st_cache_entry_t *newer;
    cmn_session_t *session;
    uint64_t version;
    atomic_uint refs;     /* one for the map, one per request holding it */
    atomic_bool touched;  /* looked up since it last reached the old end: spared once */
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

    /*
     * The top-level claims a compact session keeps: every name that a policy or a claim header
     * of any route table seen so far may read (a JSON object used as a set), once following
     * (the daemon); NULL keeps them all. It only grows, so a request still on an older table
     * finds what it reads; a growth flushes what was cached without the new names.
     */
    json_t *keep;
    atomic_uint_fast64_t keep_table; /* the route table generation `keep` covers; 0: none */
    atomic_bool filtering;
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

/* moves the oldest entry to the new end; caller holds the write lock */
static void requeue_oldest(authz_session_cache_t *cache)
{
    cache_entry_t *entry = cache->oldest;

    if (entry->newer == NULL) {
        return;
    }
    cache->oldest = entry->newer;
    cache->oldest->older = NULL;
    entry->older = cache->newest;
    entry->newer = NULL;
    cache->newest->newer = entry;
    cache->newest = entry;
}

static void evict_oldest(authz_session_cache_t *cache)
{
    remove_at(cache, find_slot(cache, cache->oldest->session->id));
}

/* the bound: the oldest entry goes unless it was used lately (a few are spared per call) */
static void evict_over_bound(authz_session_cache_t *cache)
{
    unsigned spared = 0;

    while (cache->count > cache->max) {
        cache_entry_t *entry = cache->oldest;
        if (spared < SECOND_CHANCES_MAX && atomic_load_explicit(&entry->touched,
                                                                 memory_order_relaxed)) {
            atomic_store_explicit(&entry->touched, false, memory_order_relaxed);
            requeue_oldest(cache);
            spared++;
            continue;
        }
        evict_oldest(cache);
    }
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
    /* a plain load first: a hot entry's line is not written on every hit */
    if (!atomic_load_explicit(&entry->touched, memory_order_relaxed)) {
        atomic_store_explicit(&entry->touched, true, memory_order_relaxed);
    }
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

/* a claim name and the top-level names it may be read by: cut at each '/' and '.' (ppl) */
static void keep_claim(json_t *set, const char *name)
{
    char buf[256];
    size_t len = strlen(name);

    if (len == 0 || json_object_size(set) >= CLAIM_NAMES_MAX) {
        return;
    }
    json_object_set_new(set, name, json_true());
    if (len >= sizeof(buf)) {
        len = sizeof(buf) - 1;
    }
    for (size_t i = 1; i < len; i++) {
        if (name[i] == '/' || name[i] == '.') {
            memcpy(buf, name, i);
            buf[i] = '\0';
            json_object_set_new(set, buf, json_true());
        }
    }
}

/* every "claim/NAME" key anywhere in a PPL block: more than is read is harmless */
static void keep_policy_claims(json_t *set, const json_t *v, unsigned depth)
{
    const char *key;
    json_t *member;
    size_t i;

    if (depth > 64) {
        return;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, member) {
            keep_policy_claims(set, member, depth + 1);
        }
        return;
    }
    if (!json_is_object(v)) {
        return;
    }
    json_object_foreach((json_t *)v, key, member) {
        if (strncmp(key, "claim/", 6) == 0) {
            keep_claim(set, key + 6);
        }
        keep_policy_claims(set, member, depth + 1);
    }
}

/*
 * A claim header named like one of the session's own fields (email, user, sub, name, groups)
 * is rendered from that field (authorize/assertion.c), so the claim itself need not be kept.
 */
static void keep_header_claim(json_t *set, const char *claim)
{
    static const char *const fields[] = {"email", "user", "sub", "name", "groups"};

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(claim, fields[i]) == 0) {
            return;
        }
    }
    keep_claim(set, claim);
}

/* adds what the routes and claim headers of `config` read */
static void keep_config_claims(json_t *set, const cmn_config_t *config)
{
    const char *key;
    json_t *member;

    for (size_t i = 0; i < config->jwt_claims_headers.len; i++) {
        keep_header_claim(set, config->jwt_claims_headers.items[i]);
    }
    if (json_is_object(config->jwt_claims_headers_map)) {
        json_object_foreach(config->jwt_claims_headers_map, key, member) {
            if (json_is_string(member)) {
                keep_header_claim(set, json_string_value(member));
            }
        }
    }
    for (size_t r = 0; r < config->num_routes; r++) {
        const cmn_route_t *route = &config->routes[r];
        if (json_is_object(route->allowed_idp_claims)) {
            json_object_foreach(route->allowed_idp_claims, key, member) {
                keep_claim(set, key);
            }
        }
        keep_policy_claims(set, route->policy, 0);
    }
}

/* empties the map; caller holds the write lock */
static void drop_all(authz_session_cache_t *cache)
{
    atomic_fetch_add(&cache->generation, 1);
    while (cache->oldest != NULL) {
        evict_oldest(cache);
    }
}

/*
 * Brings `keep` up to the route table in force (a reload may read new claims). Cheap when the
 * table did not change: one acquire and release of it.
 */
static void keep_up_to_date(authz_session_cache_t *cache)
{
    authz_table_t *table;
    const cmn_config_t *config;
    json_t *grown;

    if (!atomic_load_explicit(&cache->filtering, memory_order_acquire)) {
        return;
    }
    table = authz_table_acquire();
    if (table->generation == atomic_load_explicit(&cache->keep_table, memory_order_acquire)) {
        goto Exit;
    }

    config = table->config != NULL ? table->config : cache->config;
    if (config == NULL) {
        goto Exit;
    }
    pthread_rwlock_wrlock(&cache->lock);
    if (table->generation != atomic_load(&cache->keep_table)) {
        grown = json_deep_copy(cache->keep);
        if (grown == NULL) {
            cmn_unreachable("out of memory");
        }
        keep_config_claims(grown, config);
        if (json_object_size(grown) != json_object_size(cache->keep)) {
            drop_all(cache);
        }
        json_decref(cache->keep);
        cache->keep = grown;
        atomic_store_explicit(&cache->keep_table, table->generation, memory_order_release);
    }
    pthread_rwlock_unlock(&cache->lock);

Exit:
    authz_table_release(table);
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
    json_decref(cache->keep);
    free(cache->buckets);
    free(cache->tomb_buckets);
    pthread_rwlock_destroy(&cache->lock);
    free(cache);
}

bool authz_session_cache_lookup(authz_session_cache_t *cache, const char *id,
                                authz_cached_session_t *out)
{
    cache_entry_t *entry;

    keep_up_to_date(cache);
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
    cmn_session_t *compact;
    authz_cache_insert_t verdict;

    keep_up_to_date(cache);
    pthread_rwlock_wrlock(&cache->lock);
    verdict = check_insert(cache, session->id, version, gen);
    if (verdict != AUTHZ_CACHE_INSERTED) {
        goto Exit;
    }

    /* what the cache keeps: one allocation, only the claims something reads */
    compact = cmn_session_compact(session, cache->keep);
    cmn_session_destroy(session);
    session = compact;

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
    atomic_store_explicit(&entry->touched, false, memory_order_relaxed);
    evict_over_bound(cache);

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
    drop_all(cache);
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
        /* until a poll has succeeded (at start, after a failure) ask for an answer at once, so
         * readiness comes back as soon as the databroker does, not after a whole long poll */
        unsigned wait_s =
            atomic_load(&cache->connected) ? CMN_BROKER_WAIT_S : FOLLOW_PROBE_WAIT_S;
        json_t *body = cmn_broker_changes_blocking(cache->config, st.after,
                                                   st.epoch[0] != '\0' ? st.epoch : NULL,
                                                   wait_s, &err);
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
    authz_session_cache_keep_claims(cache, config);
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

void authz_session_cache_keep_claims(authz_session_cache_t *cache, const cmn_config_t *config)
{
    pthread_rwlock_wrlock(&cache->lock);
    cache->config = config;
    if (cache->keep == NULL) {
        cache->keep = json_object();
        if (cache->keep == NULL) {
            cmn_unreachable("out of memory");
        }
        drop_all(cache);
    }
    pthread_rwlock_unlock(&cache->lock);
    atomic_store_explicit(&cache->filtering, true, memory_order_release);
    keep_up_to_date(cache);
}
