/* SPDX-License-Identifier: MIT */
/* Benchmark tool: the CPU cost of the two library steps every cold /verify must take. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <getopt.h>
#include <jansson.h>
#include "authorize/assertion.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/jose.h"
#include "common/session.h"

/*
 *   cold_floor -c CONFIG -r RECORD -a AUDIENCE [-n N]
 *
 * A session that is not in authorize's cache costs, on top of everything a cached one costs,
 * at least: parsing its record as the databroker serves it (jansson, then the session) and
 * signing a fresh assertion for it (cjose ES256 with the key authorize derives from CONFIG).
 * Neither can be cached for a session seen for the first time. This times both, N times each
 * on one thread, in CPU time of that thread, through the same functions authorize calls, and
 * prints one JSON line: {"parse_us": .., "sign_us": .., "n": N}. RECORD is one stored record
 * (the databroker's JSON, with "id" and "data"); AUDIENCE the route host of the assertion.
 * bench.py adds these to the costs it measures to bound what P3 can reach on the machine.
 */

#define FLOOR_DEFAULT_N 20000
#define FLOOR_MAX_N 10000000
#define FLOOR_RECORD_MAX (1024 * 1024)

typedef struct st_floor_args_t {
    const char *config_path;
    const char *record_path;
    const char *audience;
    unsigned long n;
} floor_args_t;

static double thread_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int parse_args(int argc, char **argv, floor_args_t *a)
{
    int opt;
    char *end = NULL;

    a->n = FLOOR_DEFAULT_N;
    while ((opt = getopt(argc, argv, "c:r:a:n:")) != -1) {
        switch (opt) {
        case 'c':
            a->config_path = optarg;
            break;
        case 'r':
            a->record_path = optarg;
            break;
        case 'a':
            a->audience = optarg;
            break;
        case 'n':
            errno = 0;
            a->n = strtoul(optarg, &end, 10);
            if (!isdigit((unsigned char)optarg[0]) || errno != 0 || *end != '\0' || a->n == 0 ||
                a->n > FLOOR_MAX_N) {
                fprintf(stderr, "cold_floor: -n %s: a whole number from 1 to %d\n", optarg,
                        FLOOR_MAX_N);
                return -1;
            }
            break;
        default:
            return -1;
        }
    }
    if (a->audience != NULL && a->audience[0] == '\0') {
        fprintf(stderr, "cold_floor: -a: the route host the assertion is for, not empty\n");
        return -1;
    }
    return a->config_path != NULL && a->record_path != NULL && a->audience != NULL && optind == argc
               ? 0
               : -1;
}

/* the whole file, NUL-terminated, in *len bytes; NULL with *why set */
static char *read_record(const char *path, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(FLOOR_RECORD_MAX + 1);
    bool failed;

    if (f == NULL || buf == NULL) {
        *why = strerror(errno);
        free(buf);
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    *len = fread(buf, 1, FLOOR_RECORD_MAX + 1, f);
    failed = ferror(f) != 0;
    *why = failed ? strerror(errno) : NULL; /* a directory: EISDIR */
    fclose(f);
    if (*why == NULL && *len == 0) {
        *why = "the file is empty";
    } else if (*why == NULL && *len > FLOOR_RECORD_MAX) {
        *why = "the file is over 1 MiB, larger than any record";
    }
    if (*why != NULL) {
        free(buf);
        return NULL;
    }
    while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r')) {
        (*len)--;
    }
    buf[*len] = '\0';
    return buf;
}

/* what authorize does with one line of a batch answer: the record, then its session */
static cmn_session_t *parse_once(const char *record, size_t len, const char **err)
{
    json_t *rec = json_loadb(record, len, JSON_REJECT_DUPLICATES, NULL);
    const char *id = json_string_value(json_object_get(rec, "id"));
    cmn_session_t *session = NULL;

    *err = "the record is not JSON with a string \"id\"";
    if (id != NULL) {
        session = cmn_session_from_json(id, json_object_get(rec, "data"), err);
    }
    json_decref(rec);
    return session;
}

static int time_parse(const char *record, size_t len, unsigned long n, double *us)
{
    const char *err = NULL;
    double t0 = thread_cpu_us();

    for (unsigned long i = 0; i < n; i++) {
        cmn_session_t *s = parse_once(record, len, &err);
        if (s == NULL) {
            fprintf(stderr, "cold_floor: record: %s\n", err);
            return -1;
        }
        cmn_session_destroy(s);
    }
    *us = (thread_cpu_us() - t0) / (double)n;
    return 0;
}

/* each round signs anew (a new jti and iat), as for a session never seen before */
static int time_sign(const authz_assertion_params_t *p, unsigned long n, double *us)
{
    double t0 = thread_cpu_us();

    for (unsigned long i = 0; i < n; i++) {
        bool truncated = false;
        char *jwt = authz_assertion_mint(p, &truncated);
        if (jwt == NULL) {
            fprintf(stderr, "cold_floor: signing failed%s\n", truncated ? " (too long)" : "");
            return -1;
        }
        free(jwt);
    }
    *us = (thread_cpu_us() - t0) / (double)n;
    return 0;
}

/* both timings for one session of the pool, then the JSON line */
static int time_both(const cmn_config_t *config, const cmn_signer_t *signer,
                     const cmn_session_t *session, const floor_args_t *a, const char *record,
                     size_t len)
{
    authz_assertion_params_t p = {
        .config = config,
        .signer = signer,
        .session = session,
        .audience = h2o_iovec_init(a->audience, strlen(a->audience)),
        .now = (uint64_t)time(NULL),
        .max_len = AUTHZ_HEADER_BLOCK_MAX - AUTHZ_HEADER_OVERHEAD,
    };
    double parse_us = 0, sign_us = 0;

    if (time_parse(record, len, a->n, &parse_us) != 0 || time_sign(&p, a->n, &sign_us) != 0) {
        return -1;
    }
    printf("{\"parse_us\": %.3f, \"sign_us\": %.3f, \"n\": %lu}\n", parse_us, sign_us, a->n);
    return 0;
}

/* the signer as authorize makes it, and the record's session to sign for */
static int measure(const cmn_config_t *config, const floor_args_t *a, const char *record,
                   size_t len)
{
    cmn_keys_t keys;
    cmn_signer_t *signer;
    cmn_session_t *session;
    const char *err = NULL;
    int rc;

    if (cmn_keys_derive(config->cookie_secret, config->shared_secret, &keys) != 0) {
        fprintf(stderr, "cold_floor: key derivation failed\n");
        return -1;
    }
    signer = cmn_signer_create(config->signing_key_pem, keys.signing_seed, &err);
    cmn_keys_clear(&keys);
    if (signer == NULL) {
        fprintf(stderr, "cold_floor: signing key: %s\n", err);
        return -1;
    }
    session = parse_once(record, len, &err);
    if (session == NULL) {
        fprintf(stderr, "cold_floor: record: %s\n", err);
        cmn_signer_destroy(signer);
        return -1;
    }

    rc = time_both(config, signer, session, a, record, len);
    cmn_session_destroy(session);
    cmn_signer_destroy(signer);
    return rc;
}

int main(int argc, char **argv)
{
    floor_args_t args = {NULL};
    cmn_config_diag_t diag;
    cmn_config_t *config;
    char *record;
    const char *why = NULL;
    size_t len = 0;
    int rc;

    if (parse_args(argc, argv, &args) != 0) {
        fprintf(stderr, "usage: %s -c CONFIG -r RECORD -a AUDIENCE [-n N (1..%d)]\n", argv[0],
                FLOOR_MAX_N);
        return 2;
    }
    record = read_record(args.record_path, &len, &why);
    if (record == NULL) {
        fprintf(stderr, "cold_floor: %s: %s\n", args.record_path, why);
        return 2;
    }
    config = cmn_config_load(args.config_path, &diag);
    cmn_config_diag_print(&diag);
    cmn_config_diag_clear(&diag);
    if (config == NULL) {
        free(record);
        return 2;
    }

    rc = measure(config, &args, record, len) == 0 ? 0 : 1;
    cmn_config_destroy(config);
    free(record);
    return rc;
}
