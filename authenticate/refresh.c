/* SPDX-License-Identifier: MIT */
/* A periodic sweep over session records that refreshes tokens and claims, a few at a time. */
#include "authenticate/refresh.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "authenticate/identity.h"
#include "authenticate/provider.h"
#include "authenticate/record.h"
#include "authenticate/token.h"
#include "common/broker_client.h"
#include "common/cookie.h"
#include "common/err.h"
#include "common/log.h"

struct st_authn_refresher_t {
    authn_app_t *app;
    h2o_timeout_t period;
    h2o_timeout_entry_t tick;
    bool round_running;
    unsigned pages;
    unsigned in_flight;
};

/* one session being refreshed */
typedef struct st_refresh_job_t {
    authn_refresher_t *r;
    char *session_id;
    json_t *data; /* the record's data when we started */
    char *refresh_token;
    char *access_token, *id_token, *new_refresh_token;
    int64_t expires_in;
    json_t *claims;
} refresh_job_t;

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

bool authn_refresh_due(const json_t *data, uint64_t now)
{
    const json_t *exp = json_object_get(data, "access_expiry");
    const char *rt = json_string_value(json_object_get(data, "refresh_token"));
    json_int_t expiry = json_integer_value(json_object_get(data, "expiry"));

    if (rt == NULL || rt[0] == '\0' || !json_is_integer(exp) || expiry <= (json_int_t)now) {
        return false;
    }
    return json_integer_value(exp) <= (json_int_t)(now + AUTHN_REFRESH_AHEAD_S);
}

bool authn_refresh_permanent(int status, const char *error)
{
    /* RFC 6749 §5.2: every error code it defines says the grant, the client or the request
     * will not work again; providers differ on 400 versus 401 for them. A 5xx, a timeout or
     * one of the two transient codes is worth a retry in the next round. */
    return status >= 400 && status < 500 && error != NULL &&
           strcmp(error, "temporarily_unavailable") != 0 && strcmp(error, "server_error") != 0;
}

static void job_done(refresh_job_t *job)
{
    job->r->in_flight--;
    free(job->session_id);
    json_decref(job->data);
    json_decref(job->claims);
    free_secret(job->refresh_token);
    free_secret(job->access_token);
    free_secret(job->id_token);
    free_secret(job->new_refresh_token);
    free(job);
}

static void on_job_broker_done(void *ctx, const cmn_broker_result_t *res)
{
    refresh_job_t *job = ctx;

    if (res->err != NULL && res->err != cmn_err_not_found) {
        cmn_log_warn(NULL, "refresh: storing session failed: %s", res->err);
    }
    job_done(job);
}

static void store_refreshed(refresh_job_t *job)
{
    uint64_t now = authn_now();
    authn_session_fields_t f = {0};
    json_t *data = NULL;
    const char *old_idt = json_string_value(json_object_get(job->data, "id_token"));

    f.session_id = job->session_id;
    f.claims = job->claims;
    f.issued = (uint64_t)json_integer_value(json_object_get(job->data, "issued"));
    f.expiry = (uint64_t)json_integer_value(json_object_get(job->data, "expiry"));
    f.last_refresh = now;
    f.access_expiry = job->expires_in >= 0 ? now + (uint64_t)job->expires_in : f.expiry;
    f.id_token = job->id_token != NULL ? job->id_token : old_idt;
    f.access_token = job->access_token;
    f.refresh_token = job->new_refresh_token != NULL ? job->new_refresh_token : job->refresh_token;
    if (f.expiry <= now) {
        job_done(job);
        return;
    }
    data = authn_session_data(&f, job->r->app->keys.at_rest);
    if (data == NULL || cmn_broker_put(job->r->app->broker, "session", job->session_id, data,
                                       f.expiry - now, on_job_broker_done, job) != 0) {
        cmn_log_warn(NULL, "refresh: cannot store the refreshed session");
        job_done(job);
    }
    json_decref(data);
}

/* a sign-out may have deleted the session while we refreshed: never bring it back */
static void on_still_there(void *ctx, const cmn_broker_result_t *res)
{
    refresh_job_t *job = ctx;

    if (res->err != NULL) {
        job_done(job);
        return;
    }
    store_refreshed(job);
}

static void on_job_identity(void *ctx, int status, const char *why, json_t *claims)
{
    refresh_job_t *job = ctx;

    job->claims = claims;
    if (status != 0) {
        cmn_log_warn(NULL, "refresh: identity check failed (%d): %s; retry next round", status,
                     why);
        job_done(job);
        return;
    }
    if (cmn_broker_get(job->r->app->broker, "session", job->session_id, on_still_there, job) != 0) {
        job_done(job);
    }
}

static void on_job_token(void *ctx, const authn_token_result_t *res)
{
    refresh_job_t *job = ctx;
    authn_identity_req_t in = {0};

    if (res->outcome == AUTHN_TOKEN_PROVIDER_ERR &&
        authn_refresh_permanent(res->status, res->error)) {
        cmn_log_info(NULL, "refresh: the provider refused the grant for good (\"%s\"); "
                           "deleting the session",
                     res->error);
        if (cmn_broker_delete(job->r->app->broker, "session", job->session_id, on_job_broker_done,
                              job) != 0) {
            job_done(job);
        }
        return;
    }
    if (res->outcome != AUTHN_TOKEN_OK) {
        cmn_log_warn(NULL, "refresh: token endpoint failed (status %d): %s; retry next round",
                     res->status, res->err);
        job_done(job);
        return;
    }

    job->access_token = dup_or_null(res->access_token);
    job->id_token = dup_or_null(res->id_token);
    job->new_refresh_token = dup_or_null(res->refresh_token);
    job->expires_in = res->expires_in;

    in.id_token = job->id_token;
    in.access_token = job->access_token;
    in.expect_sub = json_string_value(json_object_get(job->data, "user_id"));
    in.base_claims = json_object_get(job->data, "claims");
    authn_identity_resolve(job->r->app, &in, on_job_identity, job);
}

static void start_job(authn_refresher_t *r, const char *id, const json_t *data)
{
    refresh_job_t *job = calloc(1, sizeof(*job));
    const char *sealed = json_string_value(json_object_get(data, "refresh_token"));
    const char *pairs[] = {"grant_type", "refresh_token", "refresh_token", NULL, NULL};

    if (job == NULL) {
        return;
    }
    r->in_flight++;
    job->r = r;
    job->session_id = strdup(id);
    job->data = json_deep_copy(data);
    job->refresh_token = authn_refresh_token_open(r->app->keys.at_rest, id, sealed);
    if (job->session_id == NULL || job->data == NULL || job->refresh_token == NULL) {
        cmn_log_warn(NULL, "refresh: cannot open the refresh token of a session");
        job_done(job);
        return;
    }
    pairs[3] = job->refresh_token;
    if (authn_token_request(r->app, pairs, on_job_token, job) != 0) {
        job_done(job);
    }
}

static void query_page(authn_refresher_t *r, const char *cursor);

static void on_page(void *ctx, const cmn_broker_result_t *res)
{
    authn_refresher_t *r = ctx;
    const json_t *records = json_object_get(res->record, "records");
    const char *cursor = json_string_value(json_object_get(res->record, "cursor"));
    uint64_t now = authn_now();
    size_t i;

    if (res->err != NULL || !json_is_array(records)) {
        cmn_log_warn(NULL, "refresh: reading the sessions failed: %s (status %d); this round "
                     "stops, the next starts in %d s", res->err != NULL ? res->err : "no records",
                     res->status, AUTHN_REFRESH_PERIOD_MS / 1000);
        r->round_running = false;
        return;
    }
    for (i = 0; i < json_array_size(records) && r->in_flight < AUTHN_REFRESH_MAX_IN_FLIGHT; i++) {
        const json_t *rec = json_array_get(records, i);
        const char *id = json_string_value(json_object_get(rec, "id"));
        const json_t *data = json_object_get(rec, "data");
        if (id != NULL && strlen(id) <= CMN_SESSION_ID_MAX && authn_refresh_due(data, now)) {
            start_job(r, id, data);
        }
    }

    r->pages++;
    if (cursor == NULL || r->pages >= AUTHN_REFRESH_MAX_PAGES ||
        r->in_flight >= AUTHN_REFRESH_MAX_IN_FLIGHT) {
        r->round_running = false;
        return;
    }
    query_page(r, cursor);
}

static void query_page(authn_refresher_t *r, const char *cursor)
{
    if (cmn_broker_query(r->app->broker, "session", cursor, AUTHN_REFRESH_PAGE, on_page, r) != 0) {
        r->round_running = false;
    }
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    authn_refresher_t *r = H2O_STRUCT_FROM_MEMBER(authn_refresher_t, tick, entry);

    h2o_timeout_link(r->app->loop, &r->period, &r->tick);
    if (r->round_running || r->in_flight > 0 || !authn_provider_ready(r->app->provider)) {
        return;
    }
    r->round_running = true;
    r->pages = 0;
    query_page(r, NULL);
}

authn_refresher_t *authn_refresher_create(authn_app_t *app)
{
    authn_refresher_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->app = app;
    h2o_timeout_init(app->loop, &r->period, AUTHN_REFRESH_PERIOD_MS);
    r->tick.cb = on_tick;
    h2o_timeout_link(app->loop, &r->period, &r->tick);
    return r;
}

void authn_refresher_destroy(authn_refresher_t *r)
{
    if (r == NULL) {
        return;
    }
    if (h2o_timeout_is_linked(&r->tick)) {
        h2o_timeout_unlink(&r->tick);
    }
    h2o_timeout_dispose(r->app->loop, &r->period);
    free(r);
}
