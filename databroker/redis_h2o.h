/* SPDX-License-Identifier: MIT */
/* Drives a hiredis async context from a libh2o evloop. */
#ifndef BROKER_REDIS_H2O_H
#define BROKER_REDIS_H2O_H

#include <hiredis/async.h>
#include <h2o.h>

/**
 * Attaches `ac` to `loop`: readiness of its socket is reported by h2o (the socket is created
 * with H2O_SOCKET_FLAG_DONT_READ, so hiredis does all reading and writing itself). Call before
 * redisAsyncSetConnectCallback. hiredis calls the cleanup hook when it frees the context; the
 * adapter then closes only its own duplicate of the descriptor, hiredis closes the original.
 * Returns REDIS_OK or REDIS_ERR.
 */
int broker_redis_attach(redisAsyncContext *ac, h2o_loop_t *loop);

#endif
