/*
 * summary.c: GET /leads/summary (extensions.md, "Pipeline summary"): the
 * count, value and weighted value of the leads the filters keep, per
 * stage and per status, and their overdue follows.
 *
 * The store gives every (stage, status) cell's sums as two parts each
 * (store.h), which are put together here in 128 bits: a total may pass
 * what 64 bits hold, and is rendered exactly, like value.
 */
#include "api/find.h"
#include "api/handlers.h"
#include "api/query.h"
#include "api/request.h"
#include "model/decimal.h"

typedef unsigned __int128 u128;

typedef struct sums {
    int64_t n;
    u128 value;    /* cents */
    u128 weighted; /* cents x percent: value x probability / 100, in 1/10^4 */
} sums_t;

static void add_cell(sums_t *s, const store_cell_t *c)
{
    s->n += c->n;
    s->value += ((u128)(uint64_t)c->v_hi << 32) + (u128)(uint64_t)c->v_lo;
    s->weighted += ((u128)(uint64_t)c->w_hi << 32) + (u128)(uint64_t)c->w_lo;
}

static void put_sums(jw_t *w, const sums_t *s, bool weighted)
{
    char num[DECIMAL_WIDE_BUFSZ];
    jw_lit(w, "\"count\":");
    jw_int(w, s->n);
    jw_lit(w, ",\"value\":");
    jw_raw(w, num, decimal_format_wide(s->value, 2, num));
    if (weighted) {
        jw_lit(w, ",\"weightedValue\":");
        jw_raw(w, num, decimal_format_wide(s->weighted, 4, num));
    }
}

/* The entries of "stages" or "statuses": {"<member>": name, sums...}. */
static void put_groups(jw_t *w, const char *member, const char *(*name)(int), const sums_t *sums, int n,
                       bool weighted)
{
    for (int i = 0; i < n; i++) {
        if (i > 0) jw_lit(w, ",");
        jw_lit(w, "{");
        jw_cstr(w, member);
        jw_lit(w, ":");
        jw_cstr(w, name(i));
        jw_lit(w, ",");
        put_sums(w, &sums[i], weighted);
        jw_lit(w, "}");
    }
}

static void render(jw_t *w, const store_summary_t *sum)
{
    sums_t stage[SCHEMA_STAGES] = {{0}}, status[SCHEMA_STATUSES] = {{0}}, all = {0};
    for (int s = 0; s < SCHEMA_STAGES; s++) {
        for (int t = 0; t < SCHEMA_STATUSES; t++) {
            add_cell(&stage[s], &sum->cell[s][t]);
            add_cell(&status[t], &sum->cell[s][t]);
            add_cell(&all, &sum->cell[s][t]);
        }
    }
    char num[DECIMAL_WIDE_BUFSZ];
    jw_lit(w, "{\"data\":{\"id\":\"summary\",\"type\":\"lead_summary\",\"attributes\":{\"totalRecords\":");
    jw_int(w, all.n);
    jw_lit(w, ",\"totalValue\":");
    jw_raw(w, num, decimal_format_wide(all.value, 2, num));
    jw_lit(w, ",\"weightedValue\":");
    jw_raw(w, num, decimal_format_wide(all.weighted, 4, num));
    jw_lit(w, ",\"stages\":[");
    put_groups(w, "stage", lead_stage_name, stage, SCHEMA_STAGES, true);
    jw_lit(w, "],\"statuses\":[");
    put_groups(w, "status", lead_status_name, status, SCHEMA_STATUSES, false);
    jw_lit(w, "],\"overdueFollows\":");
    jw_int(w, sum->overdue);
    jw_lit(w, "}}}");
}

static store_rc_t start(api_req_t *r, const store_async_t *async)
{
    return store_lead_summary(r->t->store, r->app.id, r->rd.query, r->now, &r->rd.summary, async);
}

static void done(api_req_t *r, store_rc_t rc)
{
    if (rc != STORE_OK) {
        api_reply_store_error(r, rc, "Not Found", "No such summary.");
        return;
    }
    render(&r->out, &r->rd.summary);
    api_reply(r, 200);
}

void summary_get(api_req_t *r)
{
    verrs_t errs = r->query->errs;
    store_lead_filter_t *f = h2o_mem_alloc_pool(&r->req->pool, sizeof *f);
    api_lead_filter_parse(r, f, &errs);
    if (errs.n > 0) {
        api_reply_errors(r, &errs);
        return;
    }
    r->rd.query = f;
    api_req_read(r, start, done);
}
