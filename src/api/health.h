/*
 * health.h: the health check's handler. Only the route table (routes.c)
 * includes the handler headers: a handler is reached through its entry.
 */
#ifndef CRMD_API_HEALTH_H
#define CRMD_API_HEALTH_H

#include "api/api_int.h"

void health_get(api_req_t *r);

#endif
