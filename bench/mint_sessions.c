/* SPDX-License-Identifier: MIT */
/* Benchmark tool: creates N session records in the databroker and writes their cookies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <jansson.h>
#include <h2o.h>
#include "common/broker_client.h"
#include "common/config.h"
#include "common/cookie.h"
#include "common/crypto.h"

/*
 *   mint_sessions -c CONFIG -n N -o FILE [-w WINDOW] [-p PAD]
 *   mint_sessions -c CONFIG -u ID -o FILE
 *
 * Each session is what authenticate would store after a sign-in (common/session.h), PUT over
 * the databroker's mTLS API with the client certificate of CERTIFICATE_FILE and
 * CERTIFICATE_KEY_FILE (as the daemons get theirs). FILE receives one cookie value per line,
 * sealed for the config's cookie_name and cookie_domain with the key derived from its secrets,
 * so they are valid on every route host inside cookie_domain. WINDOW PUTs are in flight at once.
 * FILE holds live credentials for the benchmark's throwaway secrets: it is written 0600.
 * -p adds a claim "pad" of PAD bytes to each record (large sessions, for tests). -u writes one
 * cookie for session ID and stores nothing (ids the databroker refuses, for tests).
 */

#define MINT_MAX_SESSIONS 1000000
#define MINT_MAX_WINDOW 1024
#define MINT_DEFAULT_WINDOW 64
#define MINT_LIFETIME_S (12 * 3600)
#define MINT_DEADLINE_S 300
#define MINT_MAX_PAD 200000

typedef struct st_mint_t {
    cmn_broker_client_t *broker;
    const cmn_config_t *config;
    cmn_keys_t keys;
    size_t total;
    size_t next;
    size_t done;
    size_t in_flight;
    size_t window;
    const char *failure; /* the first error seen; the run stops there */
    int failure_status;
    uint64_t now;
    char *pad;               /* the "pad" claim's value, or NULL */
    const char *unstored_id; /* -u */
    char (*cookies)[CMN_COOKIE_VALUE_MAX];
} mint_t;

static void fill(mint_t *m);

static json_t *session_data(size_t i, const char *id, uint64_t now, const char *pad)
{
    json_t *data;
    char email[64], name[64], sub[64];

    snprintf(email, sizeof(email), "user%zu@example.com", i);
    snprintf(name, sizeof(name), "Bench User %zu", i);
    snprintf(sub, sizeof(sub), "u-bench-%zu", i);

    /* the claims authenticate merges from the dev IdP's ID token and userinfo */
    data = json_pack("{s:s, s:s, s:b, s:s, s:[s,s], s:{s:s, s:s, s:b, s:s, s:[s,s], s:s, s:s, "
                     "s:I, s:I, s:I, s:s}, s:I, s:I, s:I, s:s, s:s, s:I}",
                     "user_id", sub, "email", email, "email_verified", 1, "name", name, "groups",
                     "engineering", "bench", "claims", "sub", sub, "email", email,
                     "email_verified", 1, "name", name, "groups", "engineering", "bench", "iss",
                     "http://127.0.0.1/dev-idp", "aud", "portcullis-bench", "iat",
                     (json_int_t)now, "exp", (json_int_t)(now + 3600), "auth_time",
                     (json_int_t)now, "sid", id, "issued", (json_int_t)now, "expiry",
                     (json_int_t)(now + MINT_LIFETIME_S), "last_refresh", (json_int_t)now,
                     "id_token", "", "access_token", "", "access_expiry",
                     (json_int_t)(now + 3600));
    if (data != NULL && pad != NULL &&
        json_object_set_new(json_object_get(data, "claims"), "pad", json_string(pad)) != 0) {
        json_decref(data);
        data = NULL;
    }
    return data;
}

static void on_put(void *ctx, const cmn_broker_result_t *res)
{
    mint_t *m = ctx;

    m->in_flight--;
    m->done++;
    if (res->err != NULL && m->failure == NULL) {
        m->failure = res->err;
        m->failure_status = res->status;
    }
    fill(m);
}

static int start_one(mint_t *m, size_t i)
{
    cmn_session_ticket_t ticket = {.issued = m->now, .expiry = m->now + MINT_LIFETIME_S};
    json_t *data;
    int rc = -1;

    cmn_random_id(ticket.session_id);
    if (cmn_cookie_seal(m->keys.cookie, m->config->cookie_name, m->config->cookie_domain, &ticket,
                        m->cookies[i]) != 0) {
        return -1;
    }
    data = session_data(i, ticket.session_id, m->now, m->pad);
    if (data == NULL) {
        return -1;
    }
    rc = cmn_broker_put(m->broker, "session", ticket.session_id, data, MINT_LIFETIME_S, on_put,
                        m);
    json_decref(data);
    return rc;
}

/* keeps `window` PUTs in flight until every session was started or one failed */
static void fill(mint_t *m)
{
    while (m->failure == NULL && m->in_flight < m->window && m->next < m->total) {
        if (start_one(m, m->next) != 0) {
            m->failure = "could not start a PUT";
            return;
        }
        m->next++;
        m->in_flight++;
    }
}

static int write_cookies(const mint_t *m, const char *path)
{
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;

    if (fd == -1) {
        goto Exit;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        goto Exit;
    }
    for (size_t i = 0; i < m->total; i++) {
        if (fprintf(f, "%s\n", m->cookies[i]) < 0) {
            goto Exit;
        }
    }
    rc = 0;

Exit:
    if (f != NULL && fclose(f) != 0) {
        rc = -1;
    }
    return rc;
}

static int parse_args(int argc, char **argv, const char **config_path, size_t *n,
                      const char **out, size_t *window, size_t *pad, const char **unstored_id)
{
    int opt;
    char *end = NULL;
    unsigned long v;

    while ((opt = getopt(argc, argv, "c:n:o:w:p:u:")) != -1) {
        switch (opt) {
        case 'c':
            *config_path = optarg;
            break;
        case 'o':
            *out = optarg;
            break;
        case 'u':
            *unstored_id = optarg;
            *n = 1;
            break;
        case 'p':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 || v > MINT_MAX_PAD) {
                return -1;
            }
            *pad = v;
            break;
        case 'n':
        case 'w':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 ||
                v > (opt == 'n' ? MINT_MAX_SESSIONS : MINT_MAX_WINDOW)) {
                return -1;
            }
            *(opt == 'n' ? n : window) = v;
            break;
        default:
            return -1;
        }
    }
    return *config_path != NULL && *out != NULL && *n > 0 && optind == argc ? 0 : -1;
}

/* -u: one cookie for an id that is never stored */
static int seal_unstored(mint_t *m, const char *out)
{
    cmn_session_ticket_t ticket = {.issued = m->now, .expiry = m->now + MINT_LIFETIME_S};

    if (strlen(m->unstored_id) > CMN_SESSION_ID_MAX) {
        fprintf(stderr, "mint_sessions: -u: an id of at most %d bytes\n", CMN_SESSION_ID_MAX);
        return 2;
    }
    snprintf(ticket.session_id, sizeof(ticket.session_id), "%s", m->unstored_id);
    if (cmn_cookie_seal(m->keys.cookie, m->config->cookie_name, m->config->cookie_domain,
                        &ticket, m->cookies[0]) != 0 || write_cookies(m, out) != 0) {
        fprintf(stderr, "mint_sessions: cannot seal or write the cookie\n");
        return 1;
    }
    return 0;
}

static int run(mint_t *m, h2o_evloop_t *loop)
{
    time_t deadline = time(NULL) + MINT_DEADLINE_S;

    fill(m);
    while (m->in_flight > 0) {
        h2o_evloop_run(loop, 100);
        if (time(NULL) > deadline) {
            m->failure = "the databroker did not answer within the deadline";
            break;
        }
    }
    return m->failure == NULL && m->done == m->total ? 0 : -1;
}

int main(int argc, char **argv)
{
    static mint_t m;
    cmn_config_diag_t diag;
    cmn_config_t *config = NULL;
    h2o_evloop_t *loop = NULL;
    const char *config_path = NULL, *out = NULL;
    struct timespec t0, t1;
    int rc = 1;

    size_t pad = 0;

    m.window = MINT_DEFAULT_WINDOW;
    if (parse_args(argc, argv, &config_path, &m.total, &out, &m.window, &pad,
                   &m.unstored_id) != 0) {
        fprintf(stderr, "usage: %s -c CONFIG -n N (1..%d) -o FILE [-w WINDOW (1..%d)] "
                "[-p PAD (1..%d)]\n       %s -c CONFIG -u ID -o FILE\n", argv[0],
                MINT_MAX_SESSIONS, MINT_MAX_WINDOW, MINT_MAX_PAD, argv[0]);
        return 2;
    }
    if (pad > 0) {
        m.pad = malloc(pad + 1);
        if (m.pad == NULL) {
            return 2;
        }
        memset(m.pad, 'x', pad);
        m.pad[pad] = '\0';
    }

    config = cmn_config_load(config_path, &diag);
    cmn_config_diag_print(&diag);
    cmn_config_diag_clear(&diag);
    if (config == NULL) {
        return 2;
    }
    if (config->cookie_domain == NULL) {
        fprintf(stderr, "mint_sessions: the config needs a cookie_domain\n");
        goto Exit;
    }

    m.config = config;
    m.now = (uint64_t)time(NULL);
    m.cookies = calloc(m.total, sizeof(m.cookies[0]));
    loop = h2o_evloop_create();
    if (m.cookies == NULL ||
        cmn_keys_derive(config->cookie_secret, config->shared_secret, &m.keys) != 0) {
        fprintf(stderr, "mint_sessions: out of memory or key derivation failed\n");
        goto Exit;
    }
    if (m.unstored_id != NULL) {
        rc = seal_unstored(&m, out);
        goto Exit;
    }
    m.broker = cmn_broker_client_create(loop, config);
    if (m.broker == NULL) {
        fprintf(stderr, "mint_sessions: cannot create the databroker client\n");
        goto Exit;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (run(&m, loop) != 0) {
        fprintf(stderr, "mint_sessions: %zu of %zu done, failed: %s (status %d)\n", m.done,
                m.total, m.failure != NULL ? m.failure : "?", m.failure_status);
        goto Exit;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (write_cookies(&m, out) != 0) {
        fprintf(stderr, "mint_sessions: cannot write %s: %s\n", out, strerror(errno));
        goto Exit;
    }
    fprintf(stderr, "mint_sessions: %zu sessions in %.2f s\n", m.total,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = 0;

Exit:
    if (m.broker != NULL) {
        cmn_broker_client_destroy(m.broker);
    }
    cmn_keys_clear(&m.keys);
    free(m.cookies);
    free(m.pad);
    cmn_config_destroy(config);
    return rc;
}
