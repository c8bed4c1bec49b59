/*
 * export.h: GET /leads/ as CSV (extensions.md, "CSV"), streamed.
 *
 * Every lead the filters keep, in the list's order, read from the store a
 * page at a time by keyset (the position after the last row sent), each
 * page rendered and handed to h2o, the next read only when h2o asks for
 * more (its generator's proceed): whatever the number of leads, a thread
 * holds one page of an export, never the whole answer.
 */
#ifndef CRMD_API_EXPORT_H
#define CRMD_API_EXPORT_H

#include "api/api_int.h"

/* Answers r with the CSV of the leads q keeps, in q's order. q lives in
 * r's request pool (its texts too), and must have no paging set. */
void api_leads_export(api_req_t *r, store_lead_query_t *q);

/* Lets go of the readers (and their snapshots, timers and places) of the
 * exports t still runs: its loop has stopped, with no read in flight, and
 * the requests they answer will never be disposed of. Before t's store
 * and loop go. */
void api_export_thread_fini(api_thread_t *t);

#endif
