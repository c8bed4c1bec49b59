/*
 * handlers.h: the route handlers. Only the route table (routes.c) and the
 * handlers' own files include this: a handler is reached through its entry,
 * which has matched the path, and authenticated the caller when it says
 * so. Each handler answers its request, now or later (request.h).
 */
#ifndef CRMD_API_HANDLERS_H
#define CRMD_API_HANDLERS_H

#include "api/api_int.h"

/* health.c: GET /healthz, GET /readyz */
void health_get(api_req_t *r);
void health_ready(api_req_t *r);

/* jwks.c: GET /.well-known/jwks.json */
void jwks_get(api_req_t *r);

/* openapi.c: GET /openapi.json */
void openapi_get(api_req_t *r);

/* board.c: GET / and GET /board/{file} */
void board_index(api_req_t *r);
void board_file(api_req_t *r);
/* The board's compiled-in bodies (and their gzip forms), at most max into
 * out; returns how many. Static: they live as long as the process. */
size_t board_static_bodies(h2o_iovec_t *out, size_t max);

/* summary.c: GET /leads/summary */
void summary_get(api_req_t *r);

/* leads.c: /leads and /leads/{id} */
void leads_list(api_req_t *r);
void leads_create(api_req_t *r);
void leads_get(api_req_t *r);
void leads_update(api_req_t *r);
void leads_delete(api_req_t *r);
/* leads.c: GET /leads/trash/show, PUT /leads/{id}/recover, DELETE /leads/trash/{id} */
void leads_trash_list(api_req_t *r);
void leads_recover(api_req_t *r);
void leads_trash_purge(api_req_t *r);
/* batch.c: POST /leads/batch */
void leads_batch(api_req_t *r);
/* leads.c: GET /leads/{id}/history */
void leads_history(api_req_t *r);

/* import.c: POST /leads/import */
void leads_import(api_req_t *r);

/* follows.c: /leads/{id}/follows and /leads/{id}/follows/{follow_id} */
void follows_list(api_req_t *r);
void follows_create(api_req_t *r);
void follows_get(api_req_t *r);
void follows_update(api_req_t *r);
void follows_delete(api_req_t *r);
/* follows.c: /follows */
void follows_all(api_req_t *r);

/* webhooks.c: /webhooks, /webhooks/{id}, /webhooks/{id}/deliveries */
void webhooks_list(api_req_t *r);
void webhooks_create(api_req_t *r);
void webhooks_get(api_req_t *r);
void webhooks_update(api_req_t *r);
void webhooks_delete(api_req_t *r);
void webhooks_deliveries(api_req_t *r);

#endif
