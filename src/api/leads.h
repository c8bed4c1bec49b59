/*
 * leads.h: the handlers of /leads and /leads/{id}. Only the route table
 * (routes.c) includes this: a handler is reached through its entry, which
 * has matched the path and authenticated the caller. Each handler answers
 * its request, now or later (request.h).
 */
#ifndef CRMD_API_LEADS_H
#define CRMD_API_LEADS_H

#include "api/api_int.h"

void leads_list(api_req_t *r);
void leads_create(api_req_t *r);
void leads_get(api_req_t *r);
void leads_update(api_req_t *r);
void leads_delete(api_req_t *r);

#endif
