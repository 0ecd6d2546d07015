/* SPDX-License-Identifier: MIT */
/* Cold session reads, batched per loop turn, with duplicate ids sharing one read. */
#include "authorize/session_fetch.h"

#include <stdlib.h>
#include <string.h>
#include "common/cookie.h"
#include "common/err.h"
#include "common/log.h"

typedef struct st_fetch_waiter_t {
    h2o_linklist_t link;
    authz_session_fetch_cb cb;
    void *ctx;
} fetch_waiter_t;

/* one id: waiting in `pending`, or inside a batch in flight */
typedef struct st_fetch_entry_t {
    h2o_linklist_t link;
    bool absent; /* an id the databroker would refuse: no such record can exist */
    uint64_t gen; /* of the first ask: the read counts as started then */
    size_t id_len;
    char id[CMN_SESSION_ID_MAX + 1];
    h2o_linklist_t waiters;
} fetch_entry_t;

typedef struct st_fetch_batch_t {
    authz_session_fetcher_t *fetcher;
    h2o_linklist_t link; /* in the fetcher's in_flight */
    h2o_linklist_t entries;
} fetch_batch_t;

struct st_authz_session_fetcher_t {
    h2o_loop_t *loop;
    cmn_broker_client_t *broker;
    h2o_linklist_t pending;   /* fetch_entry_t not sent yet */
    size_t num_pending;
    h2o_linklist_t in_flight; /* fetch_batch_t */
    size_t num_in_flight;
    h2o_timeout_t turn_end;   /* zero-length: fires once this turn's I/O is handled */
    h2o_timeout_entry_t flush_entry;
};

static void flush(authz_session_fetcher_t *f);

static fetch_entry_t *find_in(h2o_linklist_t *list, const char *id, size_t len)
{
    for (h2o_linklist_t *l = list->next; l != list; l = l->next) {
        fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, l);
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            return e;
        }
    }
    return NULL;
}

/* the entry already asked for `id`, waiting or in flight, else NULL */
static fetch_entry_t *find_entry(authz_session_fetcher_t *f, const char *id, size_t len)
{
    fetch_entry_t *e = find_in(&f->pending, id, len);

    for (h2o_linklist_t *l = f->in_flight.next; e == NULL && l != &f->in_flight; l = l->next) {
        e = find_in(&H2O_STRUCT_FROM_MEMBER(fetch_batch_t, link, l)->entries, id, len);
    }
    return e;
}

/* calls every waiter of `e` with `res`, then frees it (already unlinked) */
static void answer_entry(fetch_entry_t *e, const cmn_broker_result_t *res)
{
    while (!h2o_linklist_is_empty(&e->waiters)) {
        fetch_waiter_t *w = H2O_STRUCT_FROM_MEMBER(fetch_waiter_t, link, e->waiters.next);
        h2o_linklist_unlink(&w->link);
        w->cb(w->ctx, res, e->gen);
        free(w);
    }
    free(e);
}

/* `e` failed before any answer came: `err` says why */
static void answer_failed(fetch_entry_t *e, const char *err)
{
    cmn_broker_result_t res = {.err = err};

    answer_entry(e, &res);
}

/* one line of the answer: the record goes to the entry of its id (an unknown id is ignored) */
static int answer_line(fetch_batch_t *b, const char *line, size_t len)
{
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    const char *id = json_string_value(json_object_get(rec, "id"));
    fetch_entry_t *e = id != NULL ? find_in(&b->entries, id, strlen(id)) : NULL;

    if (!json_is_object(rec)) {
        json_decref(rec);
        return -1;
    }
    if (e != NULL) {
        /* {"id", "error"}: the databroker could not read that one record */
        cmn_broker_result_t one = {.status = 200, .record = rec};
        if (json_object_get(rec, "error") != NULL) {
            one = (cmn_broker_result_t){.err = cmn_err_bad_json, .status = 200};
        }
        h2o_linklist_unlink(&e->link);
        answer_entry(e, &one);
    }
    json_decref(rec);
    return 0;
}

static void on_solo_done(void *ctx, const cmn_broker_result_t *res)
{
    answer_entry(ctx, res);
}

/*
 * The ids of a batch whose answer could not come as one, each read on its own: a databroker from
 * before batch reads (405, while a cluster is upgraded), or an answer over even
 * CMN_BROKER_GET_MANY_BODY_MAX. Rare, so these reads are not joinable.
 */
static void read_one_by_one(fetch_batch_t *b)
{
    while (!h2o_linklist_is_empty(&b->entries)) {
        fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, b->entries.next);
        h2o_linklist_unlink(&e->link);
        if (cmn_broker_get(b->fetcher->broker, "session", e->id, on_solo_done, e) != 0) {
            answer_failed(e, cmn_err_unavailable);
        }
    }
}

static size_t count_entries(const h2o_linklist_t *list)
{
    size_t n = 0;

    for (const h2o_linklist_t *l = list->next; l != list; l = l->next) {
        n++;
    }
    return n;
}

/*
 * The batch's answer, a record per line: each is parsed on its own and freed before the next,
 * then the ids left over are not found. A line that is not a record fails what is left.
 */
static void on_batch_done(void *ctx, const cmn_broker_result_t *res)
{
    fetch_batch_t *b = ctx;
    authz_session_fetcher_t *f = b->fetcher;
    cmn_broker_result_t left = {.err = cmn_err_not_found, .status = 404};
    const char *p = res->lines.base, *end = p + res->lines.len;

    h2o_linklist_unlink(&b->link);
    f->num_in_flight--;

    if (res->status == 405) {
        cmn_log_info(NULL, "session batch read refused (405: a databroker without batch reads?); "
                     "reading its %zu session(s) one by one", count_entries(&b->entries));
        read_one_by_one(b);
    } else if (res->err == cmn_err_too_large) {
        cmn_log_info(NULL, "session batch answer over %d KiB; reading its %zu session(s) one by "
                     "one", CMN_BROKER_GET_MANY_BODY_MAX / 1024, count_entries(&b->entries));
        read_one_by_one(b);
    } else if (res->err != NULL) {
        /* one line for the batch, not one per waiting request (an outage would flood) */
        cmn_log_warn(NULL, "session batch read of %zu session(s) failed: %s (%s%sstatus %d)",
                     count_entries(&b->entries), res->err,
                     res->cause != NULL ? res->cause : "", res->cause != NULL ? ", " : "",
                     res->status);
        left = (cmn_broker_result_t){.err = res->err, .status = res->status};
    }
    while (res->err == NULL && p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;
        if (stop > p && answer_line(b, p, (size_t)(stop - p)) != 0) {
            left = (cmn_broker_result_t){.err = cmn_err_bad_json, .status = res->status};
            break;
        }
        p = stop + 1;
    }
    while (!h2o_linklist_is_empty(&b->entries)) {
        fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, b->entries.next);
        h2o_linklist_unlink(&e->link);
        answer_entry(e, &left);
    }
    free(b);

    /* ids that waited for a free batch go now */
    flush(f);
}

/* sends up to CMN_BROKER_GET_MANY_MAX pending ids in one request; -1 when out of memory */
static int send_batch(authz_session_fetcher_t *f)
{
    fetch_batch_t *b = malloc(sizeof(*b));
    const char *ids[CMN_BROKER_GET_MANY_MAX];
    size_t n = 0;

    if (b == NULL) {
        return -1;
    }
    *b = (fetch_batch_t){.fetcher = f};
    h2o_linklist_init_anchor(&b->entries);
    while (n < CMN_BROKER_GET_MANY_MAX && !h2o_linklist_is_empty(&f->pending)) {
        fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, f->pending.next);
        h2o_linklist_unlink(&e->link);
        h2o_linklist_insert(&b->entries, &e->link);
        ids[n++] = e->id;
    }
    f->num_pending -= n;

    h2o_linklist_insert(&f->in_flight, &b->link);
    f->num_in_flight++;
    if (cmn_broker_get_many(f->broker, "session", ids, n, on_batch_done, b) != 0) {
        /* refused before anything was sent: these ids fail now (flush runs only from the loop,
         * never inside authz_session_fetch, so no caller is re-entered) */
        cmn_broker_result_t res = {.err = cmn_err_unavailable};
        on_batch_done(b, &res);
    }
    return 0;
}

/* answers the pending ids that cannot name a record, so they never fail a whole batch */
static void answer_absent(authz_session_fetcher_t *f)
{
    cmn_broker_result_t missing = {.err = cmn_err_not_found, .status = 404};
    h2o_linklist_t *l = f->pending.next;

    while (l != &f->pending) {
        fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, l);
        l = l->next;
        if (e->absent) {
            h2o_linklist_unlink(&e->link);
            f->num_pending--;
            answer_entry(e, &missing);
        }
    }
}

static void flush(authz_session_fetcher_t *f)
{
    answer_absent(f);
    while (f->num_pending > 0 && f->num_in_flight < AUTHZ_FETCH_BATCHES_MAX) {
        if (send_batch(f) != 0) {
            /* out of memory: what waits fails rather than waiting for a batch that never goes */
            while (!h2o_linklist_is_empty(&f->pending)) {
                fetch_entry_t *e = H2O_STRUCT_FROM_MEMBER(fetch_entry_t, link, f->pending.next);
                h2o_linklist_unlink(&e->link);
                f->num_pending--;
                answer_failed(e, cmn_err_no_memory);
            }
        }
    }
}

static void on_turn_end(h2o_timeout_entry_t *entry)
{
    authz_session_fetcher_t *f = H2O_STRUCT_FROM_MEMBER(authz_session_fetcher_t, flush_entry,
                                                        entry);

    flush(f);
}

authz_session_fetcher_t *authz_session_fetcher_create(h2o_loop_t *loop,
                                                      cmn_broker_client_t *broker)
{
    authz_session_fetcher_t *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return NULL;
    }
    f->loop = loop;
    f->broker = broker;
    h2o_linklist_init_anchor(&f->pending);
    h2o_linklist_init_anchor(&f->in_flight);
    h2o_timeout_init(loop, &f->turn_end, 0);
    f->flush_entry.cb = on_turn_end;
    return f;
}

int authz_session_fetch(authz_session_fetcher_t *f, const char *id, uint64_t gen,
                        authz_session_fetch_cb cb, void *ctx)
{
    size_t len = strlen(id);
    fetch_entry_t *e;
    fetch_waiter_t *w;

    if (len == 0 || len > CMN_SESSION_ID_MAX || f->broker == NULL) {
        return -1;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        return -1;
    }
    *w = (fetch_waiter_t){.cb = cb, .ctx = ctx};

    e = find_entry(f, id, len);
    if (e == NULL) {
        e = calloc(1, sizeof(*e)); /* h2o_linklist_insert wants an unlinked (zeroed) link */
        if (e == NULL) {
            free(w);
            return -1;
        }
        e->absent = !cmn_broker_valid_id(id);
        e->gen = gen;
        e->id_len = len;
        memcpy(e->id, id, len + 1);
        h2o_linklist_init_anchor(&e->waiters);
        h2o_linklist_insert(&f->pending, &e->link);
        f->num_pending++;
    }
    h2o_linklist_insert(&e->waiters, &w->link);

    if (!h2o_timeout_is_linked(&f->flush_entry)) {
        h2o_timeout_link(f->loop, &f->turn_end, &f->flush_entry);
    }
    return 0;
}
