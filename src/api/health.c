/*
 * health.c: GET /healthz, for load balancers and probes: no credentials,
 * no database.
 */
#include "api/handlers.h"
#include "api/request.h"

void health_get(api_req_t *r)
{
    jw_lit(&r->out, "{\"status\":\"ok\"}");
    api_reply(r, 200);
}
