/* SPDX-License-Identifier: MIT */
/* The in-memory ring of recent changes and the long polls waiting for the next one. */
#ifndef BROKER_CHANGES_H
#define BROKER_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o/linklist.h>

#define BROKER_TYPE_MAX 32
#define BROKER_ID_MAX 128
#define BROKER_EPOCH_MAX 64
#define BROKER_CHANGES_MAX 100000  /* changes kept in the ring */
#define BROKER_CHANGES_PAGE_MAX 1000 /* changes in one /v1/changes answer */

typedef struct st_broker_change_t {
    uint64_t version;
    bool deleted;
    char type[BROKER_TYPE_MAX + 1];
    char id[BROKER_ID_MAX + 1];
} broker_change_t;

typedef struct st_broker_waiter_t broker_waiter_t;
typedef void (*broker_waiter_cb)(broker_waiter_t *waiter);

/* embed in a long poll; linked while it waits for the next change */
struct st_broker_waiter_t {
    h2o_linklist_t link;
    broker_waiter_cb cb;
};

/*
 * Versions in the ring are contiguous: entry i has version oldest + i. `latest` is the newest
 * version the ring covers (the base when it is empty); `known_latest` may run ahead of it when
 * this instance learned of its own write before the stream delivered it.
 */
typedef struct st_broker_changes_t {
    broker_change_t *ring;
    size_t cap;
    size_t start; /* index of the oldest entry */
    size_t count;
    uint64_t latest;
    uint64_t known_latest;
    char epoch[BROKER_EPOCH_MAX + 1];
    h2o_linklist_t waiters;
} broker_changes_t;

/** allocates a ring of `cap` entries (BROKER_CHANGES_MAX in production); -1 on no memory */
int broker_changes_init(broker_changes_t *c, size_t cap);
void broker_changes_dispose(broker_changes_t *c);

/** empties the ring: the store is at `version` in `epoch` now; wakes every waiter */
void broker_changes_reset(broker_changes_t *c, const char *epoch, uint64_t version);

/**
 * appends the change of `version`. A version that skips ahead empties the ring first (the
 * history in between is lost, so older clients must resync). Returns -1 and keeps nothing for
 * a version at or below `latest`. Does not wake waiters: call broker_changes_notify after a
 * batch.
 */
int broker_changes_append(broker_changes_t *c, const char *type, const char *id,
                          uint64_t version, bool deleted);

/** records that the store has reached `version` (an own write the stream has not shown yet) */
void broker_changes_note_version(broker_changes_t *c, uint64_t version);

/** the oldest version kept; latest + 1 when the ring is empty */
uint64_t broker_changes_oldest(const broker_changes_t *c);

/** true when a client that has seen `after` in `epoch` (NULL: not given) cannot catch up */
bool broker_changes_need_resync(const broker_changes_t *c, uint64_t after, const char *epoch);

/**
 * the changes after `after`, at most `max`: returns how many and sets `*first` to the index
 * to pass to broker_changes_at (0 .. count-1)
 */
size_t broker_changes_after(const broker_changes_t *c, uint64_t after, size_t max, size_t *first);
const broker_change_t *broker_changes_at(const broker_changes_t *c, size_t i);

void broker_changes_wait(broker_changes_t *c, broker_waiter_t *w);
void broker_changes_unwait(broker_waiter_t *w);
/** calls every waiter once (each is unlinked first; it may wait again) */
void broker_changes_notify(broker_changes_t *c);

#endif
