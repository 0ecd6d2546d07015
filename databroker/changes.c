/* SPDX-License-Identifier: MIT */
/* The in-memory ring of recent changes and the long polls waiting for the next one. */
#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include "databroker/changes.h"

int broker_changes_init(broker_changes_t *c, size_t cap)
{
    memset(c, 0, sizeof(*c));
    h2o_linklist_init_anchor(&c->waiters);
    c->ring = calloc(cap, sizeof(*c->ring));
    if (c->ring == NULL) {
        return -1;
    }
    c->cap = cap;
    return 0;
}

void broker_changes_dispose(broker_changes_t *c)
{
    while (!h2o_linklist_is_empty(&c->waiters)) {
        h2o_linklist_unlink(c->waiters.next);
    }
    free(c->ring);
    c->ring = NULL;
}

static void copy_bounded(char *dst, size_t dstsize, const char *src)
{
    size_t len = strlen(src);

    if (len >= dstsize) {
        len = dstsize - 1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void broker_changes_reset(broker_changes_t *c, const char *epoch, uint64_t version)
{
    c->start = 0;
    c->count = 0;
    c->latest = version;
    c->known_latest = version;
    copy_bounded(c->epoch, sizeof(c->epoch), epoch);
    broker_changes_notify(c);
}

int broker_changes_append(broker_changes_t *c, const char *type, const char *id,
                          uint64_t version, bool deleted)
{
    broker_change_t *slot;

    if (version <= c->latest) {
        return -1;
    }

    /* a gap means history was lost (stream trimmed while we were away): start over there */
    if (version != c->latest + 1) {
        c->start = 0;
        c->count = 0;
    }

    if (c->count == c->cap) {
        slot = &c->ring[c->start];
        c->start = (c->start + 1) % c->cap;
    } else {
        slot = &c->ring[(c->start + c->count) % c->cap];
        c->count++;
    }
    slot->version = version;
    slot->deleted = deleted;
    copy_bounded(slot->type, sizeof(slot->type), type);
    copy_bounded(slot->id, sizeof(slot->id), id);

    c->latest = version;
    if (c->known_latest < version) {
        c->known_latest = version;
    }
    return 0;
}

void broker_changes_note_version(broker_changes_t *c, uint64_t version)
{
    if (c->known_latest < version) {
        c->known_latest = version;
    }
}

uint64_t broker_changes_oldest(const broker_changes_t *c)
{
    return c->latest - c->count + 1;
}

bool broker_changes_need_resync(const broker_changes_t *c, uint64_t after, const char *epoch)
{
    if (epoch != NULL && strcmp(epoch, c->epoch) != 0) {
        return true;
    }
    if (after + 1 < broker_changes_oldest(c)) {
        return true;
    }
    return after > c->known_latest;
}

size_t broker_changes_after(const broker_changes_t *c, uint64_t after, size_t max, size_t *first)
{
    uint64_t oldest = broker_changes_oldest(c);
    uint64_t skip;
    size_t n;

    *first = 0;
    if (after >= c->latest || c->count == 0) {
        return 0;
    }
    skip = after < oldest ? 0 : after - oldest + 1;
    n = c->count - (size_t)skip;
    *first = (size_t)skip;
    return n < max ? n : max;
}

const broker_change_t *broker_changes_at(const broker_changes_t *c, size_t i)
{
    return &c->ring[(c->start + i) % c->cap];
}

void broker_changes_wait(broker_changes_t *c, broker_waiter_t *w)
{
    h2o_linklist_insert(&c->waiters, &w->link);
}

void broker_changes_unwait(broker_waiter_t *w)
{
    if (h2o_linklist_is_linked(&w->link)) {
        h2o_linklist_unlink(&w->link);
    }
}

void broker_changes_notify(broker_changes_t *c)
{
    h2o_linklist_t woken;

    /* move the waiters aside first: a callback may wait again and must not be called twice */
    h2o_linklist_init_anchor(&woken);
    h2o_linklist_insert_list(&woken, &c->waiters);
    while (!h2o_linklist_is_empty(&woken)) {
        broker_waiter_t *w = H2O_STRUCT_FROM_MEMBER(broker_waiter_t, link, woken.next);
        h2o_linklist_unlink(&w->link);
        w->cb(w);
    }
}
