/*
 * guard.h: the memory guard. h2o 2.2 holds what clients send and what they
 * do not read with few limits of its own (a whole HTTP/2 connection may
 * hold 100 unfinished 1 MiB bodies, kept alive by PINGs, and any number of
 * answers to a reader whose window is shut). The guard bounds it, over
 * HTTP/1 and HTTP/2 alike:
 *
 * - request memory: bytes received and not yet answered (bodies, heads
 *   over one 8 KiB input buffer) count against cfg->request_memory, all
 *   threads together. A connection whose holding grows while the total is
 *   over it is refused: HTTP/1 closes (after a 503 if the client still
 *   reads), HTTP/2 resets its streams still receiving (REFUSED_STREAM).
 *   The count is taken after every read h2o makes, so the total exceeds
 *   the budget by at most one read per thread.
 * - response memory: answers not yet taken by their readers count against
 *   cfg->response_memory until h2o frees them. An answer over 64 KiB that
 *   does not fit first has the thread's answers held over 5 s given up,
 *   oldest first (HTTP/1: the connection is closed; HTTP/2: the stream is
 *   reset), and is answered 503 if there is still no room. A streamed
 *   answer counts its latest chunk only (h2o asks for a chunk once it has
 *   sent the last).
 * - HTTP/2 (cleartext only with cfg->http2): at most 16 open streams per
 *   connection (newer ones REFUSED_STREAM); a request must arrive whole
 *   within the HTTP/1 request timeout (10 s) whatever else the connection
 *   sends; a connection without streams is closed (GOAWAY) after 10 s
 *   whatever PINGs it sends; a stream whose answer makes no progress for
 *   20 s is reset (CANCEL); a connection with over 1 MiB of frames waiting
 *   to be written is closed. A held HTTP/2 answer counts what its stream
 *   and request cost too (their pool, and a measured constant for the
 *   rest); error answers (4xx, most of them refusals before
 *   authentication) may count a quarter of the response memory, past
 *   which those a shut window holds are given up, oldest first. A
 *   connection that sends error answers only, and takes nothing of them,
 *   gets GOAWAY (no new streams) once 4 of them are held by a shut window,
 *   or once one has taken nothing for 2 s (then given up): it closes when
 *   they are. A header block may have 32 CONTINUATION frames; a 33rd
 *   closes the connection (GOAWAY ENHANCE_YOUR_CALM).
 *
 * - large bodies: a body to be over cfg->body_small (declared, or so far)
 *   is judged from its request's head by cfg->body_check before more of it
 *   is read (HTTP/1: the head parsed again from the input, before h2o's
 *   read callback; HTTP/2: the stream's parsed headers, after each read).
 *   Refused, it is answered at once (HTTP/1: Connection: close, what still
 *   comes read and dropped for 2 s; HTTP/2: the answer on the stream, what
 *   still comes on it dropped). Allowed, it counts against its owner's
 *   share (half the request memory) until it has arrived.
 *
 * HTTP/1's own limits stay h2o's: a request must arrive within 10 s, and a
 * reader taking nothing for 20 s loses its connection (TCP_USER_TIMEOUT,
 * set by server.c).
 *
 * Everything here runs on the thread of the connection concerned, but the
 * two totals, which all threads share.
 */
#ifndef CRMD_HTTP_GUARD_H
#define CRMD_HTTP_GUARD_H

#include "http/server_int.h"

/* Takes cfg's limits (process-wide) and applies them to gc: h2o's own
 * recognition of cleartext HTTP/2 off (the guard recognises the preface
 * itself when cfg->http2), 16 concurrent requests per HTTP/2 connection. */
void http_guard_configure(h2o_globalconf_t *gc, const http_config_t *cfg);

/* Adds the response accounting to path's filters (register it last, so it
 * sees the bodies as sent). */
void http_guard_filter(h2o_pathconf_t *path);

/* Sets req's Content-Type to application/json (replacing one already set). */
void http_guard_json_type(h2o_req_t *req);

/* Whether w has a connection open (accepted, and its socket not yet
 * closed), whatever its protocol or state. */
bool http_guard_conns_open(http_worker_t *w);

/* Cuts every connection of w (a reset, as for a connection the guard
 * drops): h2o sees the error at its next turn of w's loop and closes each
 * itself, which frees it. Returns how many it cut. */
int http_guard_cut_all(http_worker_t *w);

/* Starts (and stops) the guard's timers on w's loop. */
void http_guard_thread_init(http_worker_t *w);
void http_guard_thread_fini(http_worker_t *w);

#endif
