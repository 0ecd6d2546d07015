/* SPDX-License-Identifier: MIT */
/* The route table in force, swapped atomically on SIGHUP or when the config file changes. */
#ifndef AUTHZ_RELOAD_H
#define AUTHZ_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/config.h"
#include "authorize/route.h"

#define AUTHZ_RELOAD_POLL_MS 500  /* the file is also checked this often, inotify or not */
#define AUTHZ_RELOAD_SETTLE_MS 50 /* a changed file must look the same this long before a load */

/* one generation of routes and policies; readers hold a reference for a whole request */
typedef struct st_authz_table_t {
    authz_routes_t *routes;
    cmn_config_t *config; /* the config `routes` borrows; NULL when it is the start-up config */
    uint64_t generation;  /* 1 for the start-up table, then one more per successful reload */
    atomic_size_t refs;
} authz_table_t;

/**
 * Installs the start-up table. `routes` borrows the start-up config, which outlives the
 * process; the table takes `routes`. Call once, before the worker threads start.
 */
void authz_tables_init(authz_routes_t *routes);

/**
 * The table in force, with a reference the caller gives back with authz_table_release. Never
 * NULL after authz_tables_init. Lock-free: a few atomic operations; safe on any thread.
 */
authz_table_t *authz_table_acquire(void);
void authz_table_release(authz_table_t *table);

/**
 * Makes `routes` (borrowing `config`; both owned by the table from now on) the table in force.
 * Requests that already hold the old table finish with it; it is freed with the last of them.
 * Returns the new generation.
 */
uint64_t authz_table_install(authz_routes_t *routes, cmn_config_t *config);

/** true when `host` is a route host in the table in force (authz_routes_is_route_host) */
bool authz_is_route_host(h2o_iovec_t host);

/**
 * Loads `running->path` again, compiles its routes and policies and installs them. A config
 * that does not load or compile leaves the table in force and logs every error; keys other
 * than the routes keep their start-up value, with a warning naming those that changed.
 * Returns 0 when a new table is in force, -1 otherwise.
 */
int authz_reload(const cmn_config_t *running);

/**
 * Blocks SIGHUP in the calling thread, so that threads started afterwards inherit the mask and
 * only the reload thread takes it. Call from main before any thread starts.
 */
int authz_reload_block_sighup(void);

/**
 * Starts the reload thread: SIGHUP, and a change of `running->path` (inotify on its directory,
 * and a stat every AUTHZ_RELOAD_POLL_MS), call authz_reload. `running` must outlive the
 * process. Returns -1 when the thread or its signal descriptor cannot be created.
 */
int authz_reload_start(const cmn_config_t *running);

#endif
