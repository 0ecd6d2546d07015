/* SPDX-License-Identifier: MIT */
/* The databroker's HTTP API: records, queries, the change long poll, health. */
#ifndef BROKER_API_H
#define BROKER_API_H

#include <h2o.h>
#include "databroker/store.h"

#define BROKER_BODY_MAX (256 * 1024)
#define BROKER_WAIT_MAX_S 20    /* longest long poll */
#define BROKER_POLLS_MAX 10000  /* long polls held at once */
#define BROKER_QUERY_STRING_MAX 1024

typedef struct st_broker_api_t broker_api_t;

/** the API state; attach a store on the loop thread before the first request */
broker_api_t *broker_api_create(void);
/** binds the API to the loop thread's store (borrowed: it must outlive the API) */
void broker_api_attach(broker_api_t *api, h2o_loop_t *loop, broker_store_t *store);
void broker_api_destroy(broker_api_t *api);

/** the request handler: `api` is the server's data (cmn_server_t.data) */
int broker_api_handle(broker_api_t *api, h2o_req_t *req);

#endif
