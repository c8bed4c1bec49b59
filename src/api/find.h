/*
 * find.h: the list reads of leads and follows and the lead filters
 * (extensions.md, "Finding leads", "Cursors", "Follow-ups across leads"),
 * shared by the handlers (leads.c, follows.c, summary.c).
 *
 * A list reads its query (query.h) into a store query (store.h): filters,
 * sort, count, page or cursor, reporting every problem at once with those
 * query.c found. A list with no parameter but page and records is the
 * plain list of the reference, read as before (deep-page anchors, the
 * response cache); every other one is a find read (store_lead_find,
 * store_follow_find), never cached. Every list's meta carries nextCursor:
 * the position of its last row (cursor.h), or null on the last page.
 */
#ifndef CRMD_API_FIND_H
#define CRMD_API_FIND_H

#include "api/api_int.h"
#include "store/webhook.h"

/* GET /leads/ */
void api_leads_list(api_req_t *r);
/* GET /leads/{id}/follows, once r->id holds the lead */
void api_follows_list(api_req_t *r);
/* GET /follows/ */
void api_follows_all(api_req_t *r);
/* GET /leads/trash/show: the app's trash, newest deletion first, paged by
 * page and records or by cursor like the lead list. */
void api_trash_list(api_req_t *r);
/* GET /leads/{id}/history, once r->id holds the lead: its changes, newest
 * first, paged like the lists. */
void api_history_list(api_req_t *r);

/* Lists ordered newest first (created_at, then id, descending) that take
 * no filters: the webhooks and their deliveries (kind: CURSOR_WEBHOOKS, or
 * CURSOR_DELIVERIES with the webhook in r->id). Reads page and records, or
 * a cursor, into *pg (one row more than the page: whether one follows);
 * false when r has been answered (a 422). */
bool api_newest_paging_or_reply(api_req_t *r, int kind, int default_records, store_newest_page_t *pg);
/* For each row a read of such a list passes (ctx: its render context):
 * false for the row past the page, which is not rendered; else notes the
 * row as the page's last and writes the comma before it (after the first). */
bool api_newest_row(void *ctx, int64_t created_at, const char *id);
/* Such a list's meta, nextCursor included (its read spec's meta). */
void api_newest_meta(api_req_t *r);

/* The lead filters of r's query into *f (zeroed first), the problems into
 * errs; r->now is "now" for has_overdue. The parts of *f live in r's pool. */
void api_lead_filter_parse(api_req_t *r, store_lead_filter_t *f, verrs_t *errs);

/* The lead filters and the sort of r's query into *q (zeroed first; no
 * paging), the problems into errs: what GET /leads/ (and crmd export,
 * csvcmd.c) keeps and in which order. The parts of *q live in r's pool. */
void api_lead_query_parse(api_req_t *r, store_lead_query_t *q, verrs_t *errs);

/* A rendered follow that is pending with a due date reads "overdue" once
 * the date passes: notes when the body c renders stops being true. */
void api_render_follow_expiry(api_render_t *c, const follow_t *f);

#endif
