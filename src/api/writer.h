/*
 * writer.h: group commit (see writer.c for why).
 *
 * Handlers never write to the store themselves: they make an api_write_t
 * (api_int.h) whose run function does the store calls, and submit it. The
 * writer thread runs everything queued in one transaction, commits once,
 * bumps the response cache's tags for what was acknowledged, and posts
 * each write back to its worker's t->done receiver, where
 * api_writes_done answers its request.
 */
#ifndef CRMD_API_WRITER_H
#define CRMD_API_WRITER_H

#include <stdbool.h>

#include "api/api_int.h"

/* Makes a write for request r that will run fn, with extra bytes at
 * w->text for its patch's text. It copies what run needs from r (app, ids,
 * time) and what the route makes stale. NULL when out of memory. */
api_write_t *api_write_new(api_req_t *r, api_write_fn fn, size_t extra);

/* Hands w to the writer thread (or, with none running, runs it here) to
 * answer its request after the commit; from here on the write owns r. On
 * allocation failure (w NULL), or when the queue is full (w is then
 * freed), answers r with a 503 at once. */
void api_write_submit(api_req_t *r, api_write_t *w);

/* Sets w's answer from the store's rc: ok_status with what run rendered
 * into w->out on STORE_OK, else the error (404 with the given title and
 * detail). */
void api_write_answer(api_write_t *w, store_rc_t rc, int ok_status, const char *not_found_title,
                      const char *not_found_detail);

/* The worker's receiver callback for t->done: answers the writes that came
 * back and frees them. */
void api_writes_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* How the writer is doing, for readiness: it runs, and no batch has been
 * running for over API_WRITER_STUCK_MS (a batch waits for locks about
 * five seconds at most, then fails). */
#define API_WRITER_STUCK_MS 15000
enum api_writer_state { API_WRITER_OK, API_WRITER_NOT_RUNNING, API_WRITER_STUCK };
enum api_writer_state api_writer_state(int64_t now_ms);

/* How long a trashed lead is kept (ms; 0: a delete is for good), as
 * api_writer_configure_trash set it. */
int64_t api_trash_retention_ms(void);

/* The writes at the writer (queued or running) and their bytes. */
void api_writer_depth(size_t *writes, size_t *bytes);

/* Starts the writer thread on store s, which it then owns (closed by
 * api_writer_stop). -1 if the thread cannot start (s is then closed). */
int api_writer_start_store(store_t *s);

#endif
