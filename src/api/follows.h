/*
 * follows.h: the handlers of /leads/{id}/follows and
 * /leads/{id}/follows/{follow_id}; as leads.h, included only by the route
 * table (routes.c).
 */
#ifndef CRMD_API_FOLLOWS_H
#define CRMD_API_FOLLOWS_H

#include "api/api_int.h"

void follows_list(api_req_t *r);
void follows_create(api_req_t *r);
void follows_get(api_req_t *r);
void follows_update(api_req_t *r);
void follows_delete(api_req_t *r);

#endif
