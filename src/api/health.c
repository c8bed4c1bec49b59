/*
 * health.c: GET /healthz and GET /readyz, for load balancers and probes:
 * no credentials, no rate limit, query strings ignored.
 *
 * /healthz says the process serves (no database). /readyz says it can do
 * its work: a real round trip to the database on this thread's own
 * connection (a read like any other, completed later on the event loop
 * when the store can), an SQLite file still where it was opened (a file
 * removed or made unreadable under a running server is lost at the next
 * restart), and the writer thread running and not stuck in one batch.
 * Otherwise a 503 whose detail says why.
 */
#include <string.h>
#include <unistd.h>

#include "api/handlers.h"
#include "api/request.h"
#include "api/writer.h"
#include "model/timestamp.h"

void health_get(api_req_t *r)
{
    jw_lit(&r->out, "{\"status\":\"ok\"}");
    api_reply(r, 200);
}

/* A key no app has: the lookup is a real query whose answer is "none". */
#define PROBE_KEY "crmd-readiness-probe"

static store_rc_t start_probe(api_req_t *r, const store_async_t *async)
{
    return store_app_find(r->t->store, PROBE_KEY, &r->app, async);
}

static void not_ready(api_req_t *r, const char *detail)
{
    api_reply_error(r, 503, "Service Unavailable", detail);
}

static void probed(api_req_t *r, store_rc_t rc)
{
    memset(&r->app, 0, sizeof r->app); /* not a caller: the log says app=- */
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        not_ready(r, "The database is not reachable.");
        return;
    }
    const char *file = store_url_file(r->t->shared->db_url);
    if (file != NULL && access(file, R_OK | W_OK) != 0) {
        not_ready(r, "The database file is missing or not readable and writable.");
        return;
    }
    switch (api_writer_state(ts_now_ms())) {
    case API_WRITER_NOT_RUNNING:
        not_ready(r, "The writer is not running.");
        return;
    case API_WRITER_STUCK:
        not_ready(r, "The writer has been stuck in one commit for over 15 s.");
        return;
    case API_WRITER_OK:
        break;
    }
    jw_lit(&r->out, "{\"status\":\"ready\",\"checks\":{\"database\":\"ok\",\"writer\":\"ok\"}}");
    api_reply(r, 200);
}

void health_ready(api_req_t *r)
{
    api_req_read(r, start_probe, probed);
}
