/*
 * guard.c: see guard.h.
 *
 * How it sees what h2o holds. h2o 2.2 has no hook for memory, but every
 * byte a client sends arrives through the read callback of its socket, and
 * HTTP/1 starts reading again only from a write callback (the end of an
 * answer, a 100 Continue). So each accepted socket gets a record (its
 * on_close data), and its read and write callbacks are wrapped: whenever
 * h2o installs one (at accept, inside a wrapped callback, or when a
 * response is sent, which this file's filter sees), the wrapper replaces it
 * and calls it. After each callback the connection's holding is measured
 * from h2o's own buffers (the socket's input; for HTTP/2 the streams'
 * bodies and the pending header block) and its share of the total
 * updated. An HTTP/2 connection installs its read callback at accept and
 * again only when it starts reading after a pause (its limit of running
 * requests reached); its writes start inside its callbacks or from its
 * write timer, whose callback is wrapped too (h2_emit), and each periodic
 * sweep wraps what is left (h2_alive says whether the connection a socket
 * carries is still there).
 *
 * The HTTP/2 structures come from h2o's installed <h2o/http2_internal.h>
 * (with src/khash.h standing in for klib's header). The version check
 * below stops a build against another h2o, whose structures may differ.
 *
 * Acting on h2o's connections uses h2o's own exported functions the way
 * h2o does: an RST_STREAM frame queued and the stream reset
 * (h2o_http2_stream_reset, as for a client's RST_STREAM); a GOAWAY queued
 * and the connection half-closed, so h2o closes it once written (as its
 * idle timeout does). A connection to drop is shut down (SO_LINGER 0): h2o
 * sees the error on its next read or write and closes it itself.
 */
#include "http/guard.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "h2o/http1.h"
#include "h2o/http2.h"
#include "h2o/http2_internal.h"
#include "h2o/version.h"

#include "http/h2scan.h"
#include "http/listen.h"
#include "http/metrics.h"
#include "http/tls.h"

#if H2O_VERSION_MAJOR != 2 || H2O_VERSION_MINOR != 2
#error "guard.c reads h2o 2.2's HTTP/2 connection and stream structures: check them against this h2o"
#endif

/* Open streams per HTTP/2 connection (h2o 2.2 announces 100 and that
 * constant cannot be changed; streams past this one are refused). */
#define H2_MAX_STREAMS 16
/* HTTP/2 frames waiting to be written: h2o aims at 80 KiB; far more means
 * a peer that sends (PINGs, SETTINGS) without reading the answers. */
#define H2_WRITE_MAX ((size_t)1 << 20)
/* Header blocks (HEADERS and CONTINUATION payloads) h2o may decode after
 * one read, with the block it holds unfinished from before: HPACK can make
 * each byte a field (about 120 bytes of h2o's memory), so 256 KiB is at
 * most about 31 MB before h2_cap_headers resets the streams. An honest
 * client's blocks are a few KiB (a repeated field is one byte), but a
 * field over 4 KiB (a long token) does not fit HPACK's table and is sent
 * whole each time: 256 KiB lets 40 requests with a 6 KB token come at
 * once (the review found 30 refused at 128 KiB). */
#define H2_READ_HEADERS_MAX ((size_t)256 << 10)
/* What an HTTP/2 connection's socket may buffer, asked of the kernel
 * (which keeps twice the smaller of this and net.core.rmem_max). See
 * input_buffer. */
#define H2_RCVBUF (512 << 10)
/* The same while a large body allowed on the connection is arriving. */
#define H2_RCVBUF_ALLOWED (4 << 20)
/* A reader that takes nothing of an answer for this long loses it (the
 * same 20 s as HTTP/1's TCP_USER_TIMEOUT in server.c). */
#define STALL_MS 20000
/* An HTTP/2 error answer (4xx: most are refusals before authentication,
 * a few hundred bytes that any open window takes at once) whose reader
 * takes nothing of it for this long loses it; and the connection goes
 * (GOAWAY) when it has taken nothing of any answer for as long. */
#define ERROR_STALL_MS 2000
/* What an HTTP/2 stream whose answer is held costs besides its request's
 * pool (counted as it is, pool_bytes) and the answer's own bytes: h2o's
 * stream (880 bytes), its buffers and vectors, and malloc's rounding.
 * Measured: 3,000 connections each opening 16 streams GET /leads without
 * credentials, their windows shut, grew crmd's RSS by 5,459 bytes a
 * stream (4.5 MiB of it the connections alone), of which the request's
 * pool was 4,104. */
#define H2_STREAM_COST 1360
/* Error answers (above) held at once, all threads together, may count at
 * most this share of the response memory; past it, those a shut window
 * holds go, oldest first. */
#define ERROR_SHARE(budget) ((budget) / 4)
/* A connection with at least this many answers, every one of them held
 * by a shut window and as many of them error answers, is sent GOAWAY: no
 * new streams (a client that asks again without reading is the attack). */
#define H2_STALLED_MIN 4
/* Held answers evict_unread looks at, at most, per call. */
#define UNREAD_WALK 1024
/* An answer held this long may be given up to make room for a new one:
 * an honest reader takes even a 4 MB list well within it. */
#define EVICT_MS 5000
/* How often each thread looks for deadlines passed. */
#define SWEEP_MS 250
/* Input every connection may hold without counting: h2o's first input
 * buffer (twice H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE), which a request
 * head or a small body fits in. */
#define INPUT_FREE (2 * H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE)
/* Answers up to this size are always sent (counted, never refused): most
 * fit in the kernel's socket buffer and are not held at all. */
#define SMALL_RESPONSE 65536
/* Streams of one HTTP/2 connection whose large body may be arriving at
 * once, allowed or refused (twice the streams it may have open). */
#define H2_JUDGED_MAX (2 * H2_MAX_STREAMS)
/* What a judged body of no declared length takes of its app's share,
 * but on a route taking body_large (see judge). */
#define UNKNOWN_GRANT ((size_t)64 << 10)
/* Owners (apps) with judged bodies arriving, at most. */
#define OWNERS_MAX 256
/* A refused HTTP/1 request's answer, at most (a JSON error). */
#define H1_ANSWER_MAX 4096
/* After that answer, what the client still sends is read and dropped for
 * this long (or up to the largest body), so that it reads the answer
 * rather than a reset; then the connection is closed. */
#define DRAIN_MS 2000

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof PREFACE - 1)

#define BUSY_DETAIL "The server holds too much data for other clients; retry shortly."
#define BUSY_BODY                                                                                            \
    "{\"errors\":[{\"status\":\"503\",\"code\":\"service_unavailable\",\"title\":\"Service Unavailable\","   \
    "\"detail\":\"" BUSY_DETAIL "\"}]}"

static atomic_size_t input_held, output_held;
/* Of output_held, what HTTP/2 error answers count (held_t.error). */
static atomic_size_t errors_held;
/* Of input_held, what HTTP/1 connections hold of requests pipelined behind
 * one being answered (guard_conn_t.hoard), and when a body allowed in last
 * needed them gone to fit (every thread's sweep then drops its own). */
static atomic_size_t hoarded;
static _Atomic uint64_t hoards_wanted_at;
/* Response bytes a thread could not find room for, and when (the sweeps
 * give up old answers to make it, for a second: the client's retry after
 * Retry-After: 1 asks again if need be). */
static atomic_size_t room_wanted;
static _Atomic uint64_t room_wanted_at;
static atomic_int open_conns;
static size_t input_budget = HTTP_MEMORY_DEFAULT, output_budget = HTTP_MEMORY_DEFAULT;
static uint64_t request_ms;
static bool http2_on;
/* The large-body check (server.h's body_check), and its limits. */
static int (*body_check)(h2o_req_t *req, size_t declared, void *state, uint64_t *owner, size_t *limit,
                         h2o_iovec_t *answer);
static h2o_iovec_t (*body_busy)(h2o_req_t *req, void *state);
static size_t body_small, body_large;
/* cfg->static_bodies, sorted by address for the binary search. */
static h2o_iovec_t statics[HTTP_STATIC_MAX];
static size_t nstatics;
/* Large bodies arriving, per owner: each may have at most half the
 * request memory coming at once. */
static struct owner {
    uint64_t id;
    size_t bytes;
} owners[OWNERS_MAX];
static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;

/* A large body's part of its owner's allowance (bytes 0: none). */
typedef struct grant {
    uint64_t owner;
    size_t bytes;
} grant_t;

/* An HTTP/2 stream whose large body was judged. */
typedef struct h2_judged {
    uint32_t id;
    bool refused; /* answered: what it still sends is dropped */
    /* Allowed without a declared length: the most it was allowed (0: not
     * watched; a longer one is judged again, at its size). */
    size_t limit;
} h2_judged_t;

/* picohttpparser, which h2o 2.2 is built with and exports (its header is
 * not installed): the declarations of its version 1.x. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

/* An HTTP/1 head parsed by picohttpparser, on the caller's stack: the
 * framing walk (h1_framing_bad) parses the input's first head into it
 * when the head's end arrives, and h1_check, later in the same read,
 * judges it from there instead of parsing it again. Its fields point into
 * the socket's input, valid until h2o next reads or takes from it. */
typedef struct {
    int len; /* the head's length; 0: no whole first head parsed on this read */
    const char *method, *path;
    size_t method_len, path_len, nh;
    int minor;
    struct phr_header hs[H2O_MAX_HEADERS];
} h1_head_t;

/* One accepted connection. Freed when its socket closes, or, if that
 * happens inside a callback the guard called (depth > 0), when it returns. */
typedef struct guard_conn {
    http_worker_t *w;
    h2o_socket_t *sock;
    h2o_linklist_t link;                   /* in w->guard_conns until its socket closes */
    h2o_socket_cb inner_read, inner_write; /* h2o's callbacks the wrappers call */
    h2o_timeout_entry_t detect;            /* waiting for the first bytes (cfg->http2) */
    struct timeval connected_at;
    size_t charged; /* this connection's part of input_held */
    /* HTTP/1: what it holds of input_held (charged, when it last looked)
     * while it holds requests pipelined behind the one being answered (0:
     * none; counted in hoarded). */
    size_t hoard;
    bool hoard_dropped; /* dropped for the room (hoard still counted until it closes) */
    /* HTTP/1: the request arriving has had its head looked at (its body
     * is small, or was allowed: h1_grant), until h2o stops reading it. */
    bool h1_seen;
    grant_t h1_grant;
    /* HTTP/1, until h1_seen: the bytes of a head h1_check found unfinished
     * (picohttpparser then looks for its end in what came after them).
     * After it, for an allowed chunked body watched against the limit it
     * was allowed (h1_limit, 0: none watched): its head's length. */
    size_t h1_head_partial, h1_head_len, h1_limit;
    /* HTTP/1: the input's size when h2o last returned from a read: what a
     * read brings is after it (h1_framing_bad looks at a head once, when
     * its end arrives). h1_next: where the next head not looked at yet
     * starts, as an offset from the input's end at h1_left (positive while
     * the body before it is still to come); h2o takes whole requests from
     * the input's front, so the distance holds until the next read.
     * h1_lost: where it starts is not known (h1_framing_bad), until the
     * input is empty again. */
    size_t h1_left;
    int64_t h1_next;
    bool h1_lost;
    /* HTTP/1: reading the raw bytes of a chunked body (h1_chunks) to find
     * where it ends: the state (CH_NONE: not in one), the hex digits of
     * the size being read, and the chunk's size or what is left of it. */
    uint8_t h1_chunk_state, h1_chunk_digits;
    uint64_t h1_chunk_left;
    /* HTTP/1: refused from its head; the answer being written (malloc'd),
     * and what arrives dropped until drain_until. */
    char *answer;
    bool draining;
    uint64_t drain_until;
    size_t drained;
    /* HTTP/2: the streams whose large body was judged. */
    h2_judged_t h2_judged[H2_JUDGED_MAX];
    size_t h2_njudged;
    bool raised; /* HTTP/2: its receive buffer is H2_RCVBUF_ALLOWED */
    /* HTTP/2: its unjudged bodies once passed body_small together; from
     * then on every body of it is judged, however small (see
     * h2_check_bodies). */
    bool h2_crowded;
    uint64_t idle_since; /* HTTP/2: since when it has had no stream (0: it has) */
    uint64_t taken_at;   /* HTTP/2: when its reader last took some of a held answer (or it started) */
    h2_scan_t scan;      /* HTTP/2: the frames looked at before h2o reads them */
    int depth;
    bool closed, h2;
} guard_conn_t;

/* An answer held in a request's pool until its reader has taken it. Lives
 * in that pool and counts until the pool goes; linked in its thread's
 * guard_held list (oldest first) until then or until given up. */
typedef struct held {
    h2o_linklist_t link;
    h2o_req_t *req;
    size_t bytes;
    uint64_t since;    /* when it was sent */
    size_t pending;    /* HTTP/2: bytes not yet framed when last looked at */
    uint64_t progress; /* HTTP/2: when pending last went down */
    /* HTTP/2: what its stream costs besides the answer's bytes (counted in
     * bytes: H2_STREAM_COST and its request's pool when it started). */
    size_t cost;
    /* HTTP/2: a 4xx answer, counted in errors_held too and linked in its
     * thread's error_held list (oldest first). */
    bool error;
    h2o_linklist_t error_link;
} held_t;

static void wrapped_read(h2o_socket_t *sock, const char *err);
static void wrapped_write(h2o_socket_t *sock, const char *err);
static void h2_wrapped_write(h2o_socket_t *sock, const char *err);
static void on_close(void *data);
static bool h1_check(guard_conn_t *c, h1_head_t *head, bool now);
static bool h1_over_limit(guard_conn_t *c, h1_head_t *head);
static bool h1_drained(guard_conn_t *c);
static void drop_input(guard_conn_t *c);
static void h1_request_done(guard_conn_t *c);
static void h2_check_bodies(guard_conn_t *c, h2o_http2_conn_t *conn);
static void input_buffer(guard_conn_t *c, int bytes);
static void h2_lower_input(guard_conn_t *c, h2o_http2_conn_t *conn);
static bool hoards_make_room(guard_conn_t *c);

static size_t buf_bytes(const h2o_buffer_t *b)
{
    return b != NULL && b->bytes != NULL ? b->capacity : 0;
}

static guard_conn_t *conn_of(h2o_socket_t *sock)
{
    return sock != NULL && sock->on_close.cb == on_close ? sock->on_close.data : NULL;
}

static void enter(guard_conn_t *c)
{
    c->depth++;
}

/* After a callback of h2o's that enter() preceded: false if it closed the
 * connection (c is gone then, or will be when the outer call returns). */
static bool leave(guard_conn_t *c)
{
    if (--c->depth == 0 && c->closed) {
        free(c);
        return false;
    }
    return !c->closed;
}

/* h2o's HTTP/2 write callbacks: on_write_complete (a write of the
 * connection's frames) and on_notify_write (waiting to write again), the
 * only two an HTTP/2 connection installs. Each thread records them as it
 * first sees them on a connection known to be alive (h2_learn). */
static _Atomic(h2o_socket_cb) h2_write_cbs[2];

static bool h2_write_cb_known(h2o_socket_cb cb)
{
    return cb != NULL && (cb == atomic_load(&h2_write_cbs[0]) || cb == atomic_load(&h2_write_cbs[1]));
}

static void h2_learn(h2o_socket_cb cb)
{
    for (size_t i = 0; i < 2 && !h2_write_cb_known(cb); i++) {
        h2o_socket_cb none = NULL;
        if (atomic_compare_exchange_strong(&h2_write_cbs[i], &none, cb)) return;
    }
}

/* Whether c's HTTP/2 connection (sock->data) is still h2o's. h2o frees it
 * when it closes the socket: without TLS the socket is closed at once
 * (c->closed); a TLS socket lives on while h2o sends its close_notify,
 * with callbacks of h2o's socket layer, never the connection's read
 * callback (wrapped or not) or one of its write callbacks. A live
 * connection may stop reading, while it has as many requests running as
 * h2o allows, or once it is closing. */
static bool h2_alive(const guard_conn_t *c)
{
    if (c->closed) return false;
    const h2o_socket_t *s = c->sock;
    return s->ssl == NULL || s->_cb.read == wrapped_read ||
           (s->_cb.read != NULL && s->_cb.read == c->inner_read) || h2_write_cb_known(s->_cb.write) ||
           s->_cb.write == h2_wrapped_write;
}

/* Puts the wrappers in front of whatever callbacks h2o installed since on
 * c, whose HTTP/2 connection, if it has one, is known to be alive. */
static void rewrap_alive(guard_conn_t *c)
{
    h2o_socket_t *s = c->sock;
    if (s->_cb.read != NULL && s->_cb.read != wrapped_read) {
        c->inner_read = s->_cb.read;
        s->_cb.read = wrapped_read;
    }
    h2o_socket_cb write = c->h2 ? h2_wrapped_write : wrapped_write;
    if (s->_cb.write != NULL && s->_cb.write != write) {
        if (c->h2) h2_learn(s->_cb.write);
        c->inner_write = s->_cb.write;
        s->_cb.write = write;
    }
}

/* The same, on an HTTP/2 connection only while it lives (h2_alive). */
static void rewrap(guard_conn_t *c)
{
    if (!c->h2 || h2_alive(c)) rewrap_alive(c);
}

/* Drops a connection: no lingering, no more reads or writes; h2o finds
 * out on its next attempt and closes it. */
static void kill_socket(h2o_socket_t *sock)
{
    int fd = h2o_socket_get_fd(sock);
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    shutdown(fd, SHUT_RDWR);
}

/* --- HTTP/2 connections -------------------------------------------------------- */

/* The stream in bucket i of conn's stream table, or NULL. The guard walks
 * h2o's table bucket by bucket and reads each stream afresh; it keeps no
 * list of stream pointers across a reset. Resetting a stream runs the
 * requests waiting for its slot, and a handler's answer may make room by
 * giving up another answer of the same connection (evict), which frees
 * that stream at once: a list made before the reset then names freed
 * memory (the review of stop 31 showed it under ASan). A stream leaves
 * the table (its bucket marked deleted) before it is freed, and the table
 * is rebuilt only when a stream is added, which a read alone does. */
static h2o_http2_stream_t *h2_stream_at(h2o_http2_conn_t *conn, khiter_t i)
{
    return kh_exist(conn->streams, i) ? kh_val(conn->streams, i) : NULL;
}

typedef bool (*h2_match_fn)(const h2o_http2_stream_t *s);
typedef bool (*h2_before_fn)(const h2o_http2_stream_t *a, const h2o_http2_stream_t *b);

/* The stream of conn to reset next: of those match takes, the first by
 * before; NULL when none is left. The caller resets it, which takes it out
 * of the table, and asks again: at most once per bucket of the table (so
 * that a stream a reset would leave in it cannot hold the loop). */
static h2o_http2_stream_t *h2_victim(h2o_http2_conn_t *conn, h2_match_fn match, h2_before_fn before)
{
    h2o_http2_stream_t *best = NULL;
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s != NULL && match(s) && (best == NULL || before(s, best))) best = s;
    }
    return best;
}

static bool receiving(const h2o_http2_stream_t *s)
{
    return s->state == H2O_HTTP2_STREAM_STATE_RECV_HEADERS || s->state == H2O_HTTP2_STREAM_STATE_RECV_BODY;
}

/* Not yet given to the handler: refusing it loses nothing. */
static bool unprocessed(const h2o_http2_stream_t *s)
{
    return receiving(s) || s->state == H2O_HTTP2_STREAM_STATE_REQ_PENDING;
}

/* Resets a stream and tells the client why (err: an H2O_HTTP2_ERROR_*). */
static void h2_reset(h2o_http2_conn_t *conn, h2o_http2_stream_t *s, int err)
{
    assert(conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING);
    h2o_http2__encode_rst_stream_frame(&conn->_write.buf, s->stream_id, -err);
    h2o_http2_conn_request_write(conn);
    h2o_http2_stream_reset(conn, s);
}

/* No new streams; h2o closes the connection once the GOAWAY is written
 * and the streams it answers are done. */
static void h2_goaway(h2o_http2_conn_t *conn, const char *why)
{
    if (conn->state != H2O_HTTP2_CONN_STATE_OPEN) return;
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, H2O_HTTP2_ERROR_NONE,
                                  h2o_iovec_init(why, strlen(why)));
    h2o_http2_conn_request_write(conn);
    conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
}

static size_t h2_input(h2o_http2_conn_t *conn)
{
    size_t bytes = buf_bytes(conn->_headers_unparsed);
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s != NULL) bytes += buf_bytes(s->_req_body);
    }
    return bytes;
}

static bool newer(const h2o_http2_stream_t *a, const h2o_http2_stream_t *b)
{
    return a->stream_id > b->stream_id;
}

static bool larger_body(const h2o_http2_stream_t *a, const h2o_http2_stream_t *b)
{
    return buf_bytes(a->_req_body) > buf_bytes(b->_req_body);
}

static bool unprocessed_request(const h2o_http2_stream_t *s)
{
    return !h2o_http2_stream_is_push(s->stream_id) && unprocessed(s);
}

/* Refuses the newest streams the handler has not seen while more than
 * H2_MAX_STREAMS are open. */
static void h2_cap_streams(h2o_http2_conn_t *conn)
{
    h2o_http2_stream_t *s;
    for (khint_t left = kh_end(conn->streams); left > 0 && conn->num_streams.pull.open > H2_MAX_STREAMS &&
                                               conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING &&
                                               (s = h2_victim(conn, unprocessed_request, newer)) != NULL;
         left--) {
        metrics_count(METRIC_GUARD_STREAMS);
        h2_reset(conn, s, H2O_HTTP2_ERROR_REFUSED_STREAM);
    }
}

/* --- request memory ------------------------------------------------------------- */

/* What c holds of what its client sent, beyond the INPUT_FREE every
 * connection may hold. */
static size_t conn_input(guard_conn_t *c)
{
    size_t bytes = buf_bytes(c->sock->input);
    if (c->h2) bytes += h2_input(c->sock->data);
    return bytes > INPUT_FREE ? bytes - INPUT_FREE : 0;
}

/* Brings c's part of the total up to date. True if it grew and the total
 * is now over the budget: c is the one to refuse. */
static bool charge(guard_conn_t *c)
{
    size_t now = conn_input(c), before = c->charged;
    c->charged = now;
    if (now < before) {
        atomic_fetch_sub(&input_held, before - now);
        return false;
    }
    size_t total = atomic_fetch_add(&input_held, now - before) + (now - before);
    return now > before && total > input_budget;
}

static bool receiving_a_body(const h2o_http2_stream_t *s)
{
    return receiving(s) && buf_bytes(s->_req_body) > 0;
}

/* The budget is exceeded and this HTTP/2 connection grew: its streams
 * still receiving go, largest body first, until the total fits. If it
 * still does not, what is over is the connection's own input: frames h2o
 * has not parsed (it stops while its limit of running requests is
 * reached, a flood of requests reset as they come keeps it there) or the
 * room its input buffer kept. The connection goes then, as an HTTP/1 one
 * over the budget does. */
static void h2_refuse(guard_conn_t *c, h2o_http2_conn_t *conn)
{
    h2o_http2_stream_t *s;
    for (khint_t left = kh_end(conn->streams); left > 0 && atomic_load(&input_held) > input_budget &&
                                               conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING &&
                                               (s = h2_victim(conn, receiving_a_body, larger_body)) != NULL;
         left--) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        h2_reset(conn, s, H2O_HTTP2_ERROR_REFUSED_STREAM);
        charge(c);
    }
    if (atomic_load(&input_held) > input_budget && buf_bytes(c->sock->input) > INPUT_FREE) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        kill_socket(c->sock);
    }
}

/* Resets the streams whose header block decoded to more than
 * H2O_MAX_HEADERS fields, HTTP/1's limit. HPACK lets one byte name an
 * entry of the connection's table again: a 400 KB block that h2o 2.2
 * takes decoded to 400,000 fields, about 47 MB of h2o's request memory
 * (counted nowhere), and a stream left open kept them until its deadline
 * (the attack review: 2 connections held 1.5 GiB). So did one the handler
 * had answered whose answer the client's closed window held. They go as
 * soon as the read that brought them ends, answered or not (as a
 * client's RST_STREAM would have them go); what a single read decodes is
 * the most they cost. A stream reset is out of the table, or ended. The
 * API has refused such a request before its handler (dispatch.c), so one
 * it took is reset with CANCEL: REFUSED_STREAM, kept for one it has not
 * seen, would tell the client it may send it again. */
static void h2_cap_headers(h2o_http2_conn_t *conn)
{
    for (khiter_t i = kh_begin(conn->streams);
         i != kh_end(conn->streams) && conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING; i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s != NULL && !h2o_http2_stream_is_push(s->stream_id) &&
            s->state != H2O_HTTP2_STREAM_STATE_END_STREAM && s->req.headers.size > H2O_MAX_HEADERS) {
            metrics_count(METRIC_GUARD_REQUEST_MEMORY);
            h2_reset(conn, s, unprocessed(s) ? H2O_HTTP2_ERROR_REFUSED_STREAM : H2O_HTTP2_ERROR_CANCEL);
        }
    }
}

/* Whether some stream of c has a large body it was allowed arriving. */
static bool h2_allowed_bodies(const guard_conn_t *c)
{
    for (size_t i = 0; i < c->h2_njudged; i++)
        if (!c->h2_judged[i].refused) return true;
    return false;
}

/* Whether the answer of conn's stream s has bytes to send that the peer's
 * windows (the stream's, or the connection's) leave no room for. */
static bool h2_window_shut(h2o_http2_conn_t *conn, h2o_http2_stream_t *s)
{
    return h2o_http2_stream_has_pending_data(s) && (h2o_http2_window_get_window(&s->output_window) <= 0 ||
                                                    h2o_http2_window_get_window(&conn->_write.window) <= 0);
}

static bool error_status(int status)
{
    return status >= 400 && status < 500;
}

/* How many answers conn is sending: *errors of them error answers (4xx),
 * *shut of them held by a shut window. */
static size_t h2_sending(h2o_http2_conn_t *conn, size_t *errors, size_t *shut)
{
    size_t n = 0;
    *errors = *shut = 0;
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s == NULL || h2o_http2_stream_is_push(s->stream_id) ||
            (s->state != H2O_HTTP2_STREAM_STATE_SEND_BODY &&
             s->state != H2O_HTTP2_STREAM_STATE_SEND_BODY_IS_FINAL))
            continue;
        n++;
        *errors += error_status(s->req.res.status);
        *shut += h2_window_shut(conn, s);
    }
    return n;
}

/* Whether conn sends error answers only (4xx: most are refusals before
 * authentication): none to a reader it let in, whose large answer a slow
 * reader may leave at a shut window for a while. */
static bool h2_errors_only(h2o_http2_conn_t *conn)
{
    size_t errors, shut, n = h2_sending(conn, &errors, &shut);
    return errors == n;
}

/* Whether conn sends error answers only, at least H2_STALLED_MIN of them,
 * every one held by a shut window: a client asking for refusals it does
 * not take. h2o decodes and answers a whole read of requests at once, so
 * new streams are refused by GOAWAY (h2o ignores those opened after it). */
static bool h2_all_stalled(h2o_http2_conn_t *conn)
{
    size_t errors, shut, n = h2_sending(conn, &errors, &shut);
    return n >= H2_STALLED_MIN && errors == n && shut == n;
}

/* After h2o read from an HTTP/2 connection: the stream and header caps,
 * the request budget, the write backlog, and whether it is idle. */
static void h2_police(guard_conn_t *c)
{
    h2o_http2_conn_t *conn = c->sock->data;
    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING) return;
    h2_cap_headers(conn);
    h2_cap_streams(conn);
    h2_check_bodies(c, conn);
    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING) return;
    if (charge(c) && !(h2_allowed_bodies(c) && hoards_make_room(c))) {
        h2_refuse(c, conn);
        h2_lower_input(c, conn);
    }
    if (buf_bytes(conn->_write.buf) + buf_bytes(conn->_write.buf_in_flight) > H2_WRITE_MAX)
        kill_socket(c->sock);
    if (conn->state == H2O_HTTP2_CONN_STATE_OPEN && h2_all_stalled(conn)) {
        metrics_count(METRIC_GUARD_STREAMS);
        h2_goaway(conn, "answers stalled on flow control");
    }
    if (conn->num_streams.pull.open != 0)
        c->idle_since = 0;
    else if (c->idle_since == 0)
        c->idle_since = h2o_now(c->w->loop);
}

/* --- HTTP/1 framing ---------------------------------------------------------------- */

#define FRAMING_DETAIL                                                                                       \
    "The request has two Content-Length headers that differ, one beside Transfer-Encoding, a header "        \
    "line folded onto the one before, or a chunked body line that RFC 9112 does not allow."
#define MALFORMED_DETAIL                                                                                     \
    "The request's head is not valid HTTP/1.1 (a malformed request line or header line, a control "          \
    "character in a header), or has over 100 headers or 400 KiB."

/* A header field's value without the white space after it (picohttpparser
 * takes off the white space before it). */
static h2o_iovec_t field_value(const struct phr_header *h)
{
    size_t len = h->value_len;
    while (len > 0 && (h->value[len - 1] == ' ' || h->value[len - 1] == '\t'))
        len--;
    return h2o_iovec_init(h->value, len);
}

/* The body h2o will read after a parsed head, as h2o 2.2 reads it: a
 * Transfer-Encoding makes it chunked, else the first Content-Length
 * declares it. False for a request without a body. *ambiguous: whether
 * another HTTP/1 reader may take its length another way (RFC 9112, 6.3):
 * two Content-Lengths that differ, one beside Transfer-Encoding, or a
 * folded line. */
static bool h1_body(const struct phr_header *hs, size_t nh, bool *chunked, size_t *declared, bool *ambiguous)
{
    h2o_iovec_t length = {NULL, 0};
    bool conflict = false;
    *chunked = false;
    *declared = SIZE_MAX;
    for (size_t i = 0; i < nh; i++) {
        /* A line folded onto the one before (obs-fold: picohttpparser gives
         * it without a name) is refused too (RFC 9112, 5.2): h2o drops it,
         * where a proxy that unfolds it reads "Content-Length: 25 3". */
        if (hs[i].name_len == 0) {
            conflict = true;
        } else if (h2o_lcstris(hs[i].name, hs[i].name_len, H2O_STRLIT("transfer-encoding"))) {
            *chunked = true;
        } else if (h2o_lcstris(hs[i].name, hs[i].name_len, H2O_STRLIT("content-length"))) {
            h2o_iovec_t v = field_value(&hs[i]);
            if (length.base == NULL)
                *declared = h2o_strtosize(hs[i].value, hs[i].value_len);
            else if (!h2o_memis(length.base, length.len, v.base, v.len))
                conflict = true;
            length = v;
        }
    }
    *ambiguous = conflict || (*chunked && length.base != NULL);
    return *chunked || length.base != NULL;
}

/* Where the raw bytes of a chunked body are in its framing (RFC 9112,
 * 7.1): the chunk size's digits, its extensions, the LF of the size
 * line's CRLF, the chunk's data, the CR and LF after it, the trailer
 * section's lines (a line's first byte, its rest, its LF) and the LF of
 * the blank line that ends the body. */
enum {
    CH_NONE,
    CH_SIZE,
    CH_EXT,
    CH_EXT_LF,
    CH_DATA,
    CH_CRLF,
    CH_DATA_LF,
    CH_TRAILER_HEAD,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_END_LF
};

/* h1_chunks' answers besides a count of bytes. */
#define CH_BROKEN (-1)    /* h2o answers it with a 400 and closes */
#define CH_AMBIGUOUS (-2) /* h2o would take it; RFC 9112 does not allow it */

static int hex_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Whether ch may be in a chunk extension (RFC 9112, 7.1.1: tokens, quoted
 * strings and the blanks around them): no control byte but HTAB. */
static bool ext_byte(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* Reads the raw chunked-body bytes p[0..n) on from c's state: how many of
 * them come before the body's end (its state then CH_NONE), n when the
 * end is still to come, CH_BROKEN when they break the framing, or
 * CH_AMBIGUOUS when they hold a line RFC 9112 does not allow and h2o's
 * parser takes (picohttpparser's phr_decode_chunked): a line ended by a
 * bare LF or by CRs before it, a size followed by anything but ';', a
 * blank or CR ("0x3b" is 0 to it, 59 to a strtoul reader), a control byte
 * in an extension. A proxy in front of crmd that reads such a line its
 * own way would find another end to the body, and pass what crmd reads as
 * the body on as a request of its own (request smuggling), so the guard
 * refuses them as it refuses two lengths. */
static ssize_t h1_chunks(guard_conn_t *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        switch (c->h1_chunk_state) {
        case CH_SIZE: {
            int v = hex_digit(ch);
            if (v < 0) {
                if (c->h1_chunk_digits == 0) return CH_BROKEN;
                if (ch != ';' && ch != ' ' && ch != '\t' && ch != '\r') return CH_AMBIGUOUS;
                c->h1_chunk_digits = 0;
                c->h1_chunk_state = ch == '\r' ? CH_EXT_LF : CH_EXT;
                i++;
                break;
            }
            if (c->h1_chunk_digits == sizeof(size_t) * 2) return CH_BROKEN;
            c->h1_chunk_left = c->h1_chunk_left * 16 + (uint64_t)v;
            c->h1_chunk_digits++;
            i++;
            break;
        }
        case CH_EXT:
            i++;
            if (ch == '\r')
                c->h1_chunk_state = CH_EXT_LF;
            else if (!ext_byte(ch))
                return CH_AMBIGUOUS;
            break;
        case CH_EXT_LF:
            i++;
            if (ch != '\n') return CH_AMBIGUOUS;
            c->h1_chunk_state = c->h1_chunk_left == 0 ? CH_TRAILER_HEAD : CH_DATA;
            break;
        case CH_DATA: {
            size_t take = n - i < c->h1_chunk_left ? n - i : (size_t)c->h1_chunk_left;
            i += take;
            c->h1_chunk_left -= take;
            if (c->h1_chunk_left == 0) c->h1_chunk_state = CH_CRLF;
            break;
        }
        case CH_CRLF:
            i++;
            if (ch == '\n') return CH_AMBIGUOUS;
            if (ch != '\r') return CH_BROKEN;
            c->h1_chunk_state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            i++;
            if (ch != '\n') return CH_AMBIGUOUS;
            c->h1_chunk_state = CH_SIZE;
            break;
        case CH_TRAILER_HEAD:
            i++;
            if (ch == '\n') return CH_AMBIGUOUS;
            c->h1_chunk_state = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            i++;
            if (ch == '\n') return CH_AMBIGUOUS;
            if (ch == '\r') c->h1_chunk_state = CH_TRAILER_LF;
            break;
        case CH_TRAILER_LF:
            i++;
            if (ch != '\n') return CH_AMBIGUOUS;
            c->h1_chunk_state = CH_TRAILER_HEAD;
            break;
        default: /* CH_END_LF */
            assert(c->h1_chunk_state == CH_END_LF);
            i++;
            if (ch != '\n') return CH_AMBIGUOUS;
            c->h1_chunk_state = CH_NONE;
            return (ssize_t)i;
        }
    }
    return (ssize_t)n;
}

/* Starts reading a chunked body whose raw bytes are p[0..n): as
 * h1_chunks. */
static ssize_t h1_chunks_start(guard_conn_t *c, const char *p, size_t n)
{
    c->h1_chunk_state = CH_SIZE;
    c->h1_chunk_digits = 0;
    c->h1_chunk_left = 0;
    return h1_chunks(c, p, n);
}

/* Whether a head in c's input (the request h2o is at keeps its head at
 * the front until it is done; pipelined ones follow it) has ambiguous
 * framing (h1_body). h2o 2.2 takes the first length, or the chunks, and
 * drops the fields before a handler sees them; a proxy in front of crmd
 * that read the other would pass what follows on as a request of its own
 * (request smuggling). left: the input's size before the read that
 * brought the rest. Each head is parsed once, on the read that brings its
 * end (picohttpparser, given the bytes of a head it had before, looks for
 * the end in the new ones alone), so a head trickling in costs a look at
 * each read's bytes. h2o parses pipelined heads from its buffer without a
 * read, so the walk goes on from head to head past each body: a
 * Content-Length one skipped, a chunked one read through its framing
 * (h1_chunks), each read's new bytes once, as they come and before h2o
 * decodes them in place (which moves what follows the body, at the same
 * distance from the input's end). It leaves c->h1_next at the next head
 * not looked at. After a head h2o cannot parse (it answers that) or a
 * length it refuses, where the next head starts is not known: nothing is
 * looked at until the input has been emptied (h1_input_taken). *front:
 * whether the head refused is the input's first, the request h2o is to
 * answer next. head: storage for each head parsed; it keeps the input's
 * first head when that is the one parsed last (head->len > 0). */
static bool h1_framing_bad(guard_conn_t *c, size_t left, bool *front, const char **why, h1_head_t *head)
{
    head->len = 0;
    *why = FRAMING_DETAIL;
    if (c->h1_lost) return false;
    const h2o_buffer_t *in = c->sock->input;
    int64_t size = (int64_t)in->size, pos = (int64_t)left + c->h1_next;
    if (c->h1_chunk_state != CH_NONE) {
        /* In a chunked body: what h2o has of it is before left (decoded),
         * the read's bytes are raw. */
        ssize_t n = left <= in->size ? h1_chunks(c, in->bytes + left, in->size - left) : CH_BROKEN;
        if (n == CH_AMBIGUOUS) {
            /* Whether the body's request is the input's first is not
             * known here: closed without a 400. */
            *front = false;
            return true;
        }
        if (n < 0) {
            c->h1_lost = true;
            return false;
        }
        if (c->h1_chunk_state != CH_NONE) return false;
        pos = (int64_t)left + n;
    }
    /* h2o takes whole requests, so the walk's place stays in the input;
     * if it ever took more, the place is lost rather than guessed. */
    if (pos < 0) {
        c->h1_lost = true;
        return false;
    }
    while (pos < size) {
        size_t avail = (size_t)(size - pos), cap = avail < H2O_MAX_REQLEN ? avail : H2O_MAX_REQLEN;
        size_t seen = (int64_t)left > pos ? (size_t)((int64_t)left - pos) : 0, declared;
        head->nh = H2O_MAX_HEADERS;
        int len =
            phr_parse_request(in->bytes + pos, cap, &head->method, &head->method_len, &head->path,
                              &head->path_len, &head->minor, head->hs, &head->nh, seen < cap ? seen : cap);
        head->len = pos == 0 && len > 0 ? len : 0;
        /* A head past h2o's limit without its end is refused as h2o
         * would, below. */
        if (len == -2 && cap == H2O_MAX_REQLEN) len = -1;
        if (len == -2) break; /* its end is still to come */
        bool chunked = false, ambiguous = false;
        bool body = len > 0 && h1_body(head->hs, head->nh, &chunked, &declared, &ambiguous);
        if (ambiguous) {
            *front = pos == 0;
            return true;
        }
        if (len == -1 && pos == 0 && c->sock->ssl == NULL) {
            /* A head h2o cannot parse, first in the input: h2o would
             * answer a plain-text 400; the API's errors are JSON (over
             * TLS, h2o's answer stays: the guard writes nothing there). */
            *front = true;
            *why = MALFORMED_DETAIL;
            return true;
        }
        if (len < 0 || (body && !chunked && declared > (size_t)INT32_MAX)) {
            c->h1_lost = true;
            return false;
        }
        if (body && chunked) {
            size_t from = (size_t)pos + (size_t)len;
            ssize_t n = h1_chunks_start(c, in->bytes + from, in->size - from);
            if (n == CH_AMBIGUOUS) {
                *front = pos == 0;
                return true;
            }
            if (n < 0) {
                c->h1_lost = true;
                return false;
            }
            if (c->h1_chunk_state != CH_NONE) return false; /* the body goes on in later reads */
            pos = (int64_t)from + n;
            continue;
        }
        pos += len + (body ? (int64_t)declared : 0);
    }
    c->h1_next = pos - size;
    return false;
}

/* Notes the input's size once h2o has taken what it would of it: what the
 * next read brings comes after it. An empty input has no head in it, so
 * the next one to come starts the next read's bytes. */
static void h1_input_taken(guard_conn_t *c)
{
    c->h1_left = c->sock->input->size;
    if (c->h1_left == 0) {
        c->h1_next = 0;
        c->h1_lost = false;
        c->h1_chunk_state = CH_NONE;
    }
}

/* --- HTTP/1 requests pipelined behind an answer ------------------------------------- */

/* Sets c's part of hoarded. */
static void hoard_set(guard_conn_t *c, size_t bytes)
{
    if (bytes >= c->hoard)
        atomic_fetch_add(&hoarded, bytes - c->hoard);
    else
        atomic_fetch_sub(&hoarded, c->hoard - bytes);
    c->hoard = bytes;
}

/* HTTP/1: the most c's request in flight was allowed to send, read
 * before h1_request_done forgets it: its route's limit for a chunked body
 * being watched, else its grant (h1_note_hoard). */
static size_t h1_allowed(const guard_conn_t *c)
{
    return c->h1_limit > c->h1_grant.bytes ? c->h1_limit : c->h1_grant.bytes;
}

/* HTTP/1, once h2o has returned and c's input is counted (charge): while a
 * request is being answered (h2o does not read), the bytes of the input
 * past it (its head, and its body, which h2o keeps in place until the
 * request is done: a declared length, or a chunked one's most, the limit
 * it was allowed, read before h1_request_done forgot it: its grant may be
 * less, UNKNOWN_GRANT, and an honest 400 KB chunked create in flight was
 * taken for a hoarder and dropped, a review found) are requests pipelined
 * behind it. They wait until its answer is taken, so a client that sends
 * many and reads none holds them until the connection's 20 s write
 * timeout: 256 connections so held all the request memory, and an honest
 * import got 503 (a known limit until stop 36). Such a connection is
 * noted as hoarding, and goes first when a body allowed in needs the room
 * (hoards_make_room). */
static void h1_note_hoard(guard_conn_t *c, size_t allowed)
{
    if (c->h2 || c->hoard_dropped) return;
    const h2o_buffer_t *in = c->sock->input;
    size_t pipelined = 0;
    if (!h2o_socket_is_reading(c->sock) && c->charged > 0 && in->size > INPUT_FREE) {
        h1_head_t head;
        head.nh = H2O_MAX_HEADERS;
        size_t cap = in->size < H2O_MAX_REQLEN ? in->size : H2O_MAX_REQLEN, declared = 0;
        int len = phr_parse_request(in->bytes, cap, &head.method, &head.method_len, &head.path,
                                    &head.path_len, &head.minor, head.hs, &head.nh, 0);
        bool chunked = false, ambiguous = false;
        bool body = len > 0 && h1_body(head.hs, head.nh, &chunked, &declared, &ambiguous);
        if (body && chunked) declared = allowed > body_small ? allowed : body_small;
        size_t used = len > 0 ? (size_t)len + (body ? declared : 0) : SIZE_MAX;
        if (!ambiguous && in->size > used) pipelined = in->size - used;
    }
    /* Any pipelined byte: an honest client that pipelines is dropped only
     * when the memory is short, and a hoarder holding no more than
     * INPUT_FREE of requests in a larger buffer is noted too. */
    hoard_set(c, pipelined > 0 ? c->charged : 0);
}

/* Drops w's connections that hoard pipelined requests: their memory comes
 * back as h2o closes them, on their next event. */
static void drop_hoards(http_worker_t *w)
{
    for (h2o_linklist_t *l = w->guard_conns.next; l != &w->guard_conns; l = l->next) {
        guard_conn_t *h = H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, l);
        if (h->hoard == 0 || h->hoard_dropped || h->closed) continue;
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        h->hoard_dropped = true;
        kill_socket(h->sock);
    }
}

/* c, receiving a body it was allowed, took the request memory over its
 * budget. When the connections hoarding pipelined requests hold at least
 * as much as it is over, they go (this thread's now, the other threads'
 * at their next sweep, SWEEP_MS) and c reads on: true. The memory is then
 * over the budget by at most what they hold, until they close. Otherwise
 * false: c is refused, as any connection over the budget is. */
static bool hoards_make_room(guard_conn_t *c)
{
    size_t held = atomic_load(&input_held);
    if (held <= input_budget || atomic_load(&hoarded) < held - input_budget) return false;
    atomic_store(&hoards_wanted_at, h2o_now(c->w->loop));
    drop_hoards(c->w);
    return true;
}

/* Whether sock's input holds a head h1_framing_bad refuses (left and head
 * as there); then the caller closes the connection. When it is the first,
 * a 400 answers it, written straight to the socket (not over TLS, where
 * the connection is only closed). One behind another request gets none: a
 * client would take it for the answer to the request before it. */
static bool h1_framing_refused(guard_conn_t *c, size_t left, h1_head_t *head)
{
    h2o_socket_t *sock = c->sock;
    bool front = false;
    const char *why;
    if (!h1_framing_bad(c, left, &front, &why, head)) return false;
    if (front && !h2o_socket_is_writing(sock) && sock->ssl == NULL) {
        char bad[HTTP_BUSY_MAX];
        size_t n = http_canned_error(bad, sizeof bad, 400, "bad_request", "Bad Request", why);
        (void)send(h2o_socket_get_fd(sock), bad, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    return true;
}

/* --- HTTP/2 header blocks ------------------------------------------------------------ */

/* Whether the HTTP/2 frames in in (whole ones, from offset from, where a
 * frame starts), with the unfinished header block h2o holds (unparsed),
 * bring more header block bytes than H2_READ_HEADERS_MAX, or make a header
 * block of more than H2_CONTINUATIONS_MAX CONTINUATION frames (st: the
 * count carried from earlier reads; NULL: none). h2o decodes all the
 * frames of a read at once, so this is looked at before it does. *why:
 * what the GOAWAY says. */
static bool h2_headers_flood(const h2o_buffer_t *in, size_t from, const h2o_buffer_t *unparsed, h2_scan_t *st,
                             const char **why)
{
    h2_scan_result_t r =
        h2_scan((const uint8_t *)in->bytes, in->size, from, unparsed != NULL ? unparsed->size : 0,
                unparsed != NULL, H2_READ_HEADERS_MAX, st);
    *why = r == H2_SCAN_CONTINUATIONS ? "over 32 CONTINUATION frames in a header block"
                                      : "header blocks over 256 KiB in one read";
    return r != H2_SCAN_OK;
}

/* Tells the client of an HTTP/2 connection about to be closed for a read
 * of header blocks over H2_READ_HEADERS_MAX why (GOAWAY, ENHANCE_YOUR_CALM,
 * the last stream h2o took): an honest client that sent that many
 * requests at once learns which of them to send again, and to send fewer.
 * The frame is written straight to the socket, as h2o's own writes are
 * whole frames, only when none is under way, and not over TLS. preface:
 * h2o has not taken the connection yet, so the server's preface (an empty
 * SETTINGS frame) goes first. */
static void h2_calm(guard_conn_t *c, uint32_t last_stream, bool preface, const char *why)
{
    static const uint8_t settings[9] = {0, 0, 0, 4};
    h2o_socket_t *sock = c->sock;
    if (h2o_socket_is_writing(sock) || sock->ssl != NULL) return;
    h2o_buffer_t *frame;
    h2o_buffer_init(&frame, &h2o_socket_buffer_prototype);
    if (preface) {
        h2o_iovec_t dst = h2o_buffer_reserve(&frame, sizeof settings);
        memcpy(dst.base, settings, sizeof settings);
        frame->size += sizeof settings;
    }
    h2o_http2_encode_goaway_frame(&frame, last_stream, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                                  h2o_iovec_init(why, strlen(why)));
    (void)send(h2o_socket_get_fd(sock), frame->bytes, frame->size, MSG_DONTWAIT | MSG_NOSIGNAL);
    h2o_buffer_dispose(&frame);
}

/* Where the first frame of an HTTP/2 connection's input starts: after the
 * client's preface while h2o has not taken it (over TLS it comes in a
 * read of its own, after start_http2). */
static size_t h2_frames_from(const h2o_buffer_t *in)
{
    return in->size >= PREFACE_LEN && memcmp(in->bytes, PREFACE, PREFACE_LEN) == 0 ? PREFACE_LEN : 0;
}

/* --- the wrappers ---------------------------------------------------------------- */

static void wrapped_read(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    h2o_socket_cb cb = c->inner_read;
    if (err == NULL && c->draining) {
        if (!h1_drained(c)) return;
        err = h2o_socket_error_closed;
    }
    /* A head whose body's length two proxies may read two ways: refused,
     * and the connection closed, before h2o reads the body its way. */
    h1_head_t head;
    head.len = 0;
    if (err == NULL && !c->h2 && h1_framing_refused(c, c->h1_left, &head)) err = h2o_socket_error_closed;
    /* A read of header blocks that could decode to more than any request
     * holds, or a header block of endless CONTINUATION frames: the
     * connection goes before h2o decodes them. */
    const char *why;
    if (err == NULL && c->h2 && h2_alive(c) &&
        h2_headers_flood(sock->input, h2_frames_from(sock->input),
                         ((h2o_http2_conn_t *)sock->data)->_headers_unparsed, &c->scan, &why)) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        h2_calm(c, ((h2o_http2_conn_t *)sock->data)->pull_stream_ids.max_open, false, why);
        err = h2o_socket_error_closed;
    }
    size_t before = sock->input->size;
    /* A large body is judged from its head before h2o reads it. */
    if (err == NULL && !c->h2 && h1_check(c, &head, false)) return;
    /* HTTP/1 holds at most one request: over the budget, it goes before
     * h2o parses it. A client still reading gets the reason. */
    if (err == NULL && !c->h2 && charge(c) && !(c->h1_grant.bytes > 0 && hoards_make_room(c))) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        if (!h2o_socket_is_writing(sock) && sock->ssl == NULL) {
            char busy[HTTP_BUSY_MAX];
            size_t n = http_busy_response(busy, sizeof busy, BUSY_DETAIL);
            (void)send(h2o_socket_get_fd(sock), busy, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        err = h2o_socket_error_closed;
    }
    enter(c);
    cb(sock, err);
    if (!leave(c) || (c->h2 && !h2_alive(c))) return;
    /* h2_police calls none of the socket's callbacks, so the callbacks
     * h2o installed during the read are wrapped once, after it. */
    if (c->h2) {
        h2_scan_taken(&c->scan, before > sock->input->size ? before - sock->input->size : 0);
        h2_police(c);
        rewrap(c);
        return;
    }
    rewrap(c);
    size_t allowed = h1_allowed(c);
    if (!h2o_socket_is_reading(sock))
        h1_request_done(c);
    else if (c->h1_limit != 0 && h1_over_limit(c, &head))
        return;
    charge(c);
    h1_note_hoard(c, allowed);
    h1_input_taken(c);
}

/* HTTP/1, after h2o took input without a read the wrapper saw (the
 * connection's first bytes, or a request pipelined behind one answered):
 * a request done is forgotten; a head h2o now reads the body of is judged
 * at once when judge_now, whatever its size. Then the input is counted. */
static void h1_settle(guard_conn_t *c, bool judge_now)
{
    h1_head_t head;
    head.len = 0;
    size_t allowed = h1_allowed(c);
    if (!h2o_socket_is_reading(c->sock))
        h1_request_done(c);
    else if (judge_now && h1_check(c, &head, true))
        return;
    charge(c);
    h1_note_hoard(c, allowed);
    h1_input_taken(c);
}

static void wrapped_write(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    h2o_socket_cb cb = c->inner_write;
    c->inner_write = NULL;
    enter(c);
    cb(sock, err);
    if (!leave(c)) return;
    rewrap(c);
    /* A request pipelined behind the one answered: h2o takes its head
     * from the input here, without a read, and waits for its body. */
    h1_settle(c, err == NULL && !c->draining);
}

static void on_close(void *data)
{
    guard_conn_t *c = data;
    c->closed = true;
    h2o_linklist_unlink(&c->link);
    h1_request_done(c);
    free(c->answer);
    c->answer = NULL;
    atomic_fetch_sub(&input_held, c->charged);
    c->charged = 0;
    hoard_set(c, 0);
    if (h2o_timeout_is_linked(&c->detect)) h2o_timeout_unlink(&c->detect);
    atomic_fetch_sub(&open_conns, 1);
    atomic_fetch_sub(&c->w->conns, 1);
    if (c->depth == 0) free(c);
}

/* --- accepting ------------------------------------------------------------------- */

int http_open_connections(void)
{
    return atomic_load(&open_conns);
}

void http_memory_held(size_t *request, size_t *response)
{
    *request = atomic_load(&input_held);
    *response = atomic_load(&output_held);
}

bool http_worker_admit(int max)
{
    if (atomic_fetch_add(&open_conns, 1) < max) return true;
    atomic_fetch_sub(&open_conns, 1);
    return false;
}

static void start_http1(guard_conn_t *c)
{
    /* What came before h2o takes the connection (with the preface check,
     * or with the TLS handshake) h2o parses at once, without a read the
     * wrapper sees: its head is looked at here. */
    h1_head_t head;
    if (h1_framing_refused(c, 0, &head)) {
        h2o_socket_close(c->sock);
        return;
    }
    enter(c);
    h2o_http1_accept(&c->w->accept_ctx, c->sock, c->connected_at);
    if (!leave(c)) return;
    rewrap(c);
    /* h2o waits for the rest of a body that came with its head: the head
     * is judged now, since no further read may come (a client that sent
     * all its body but a byte would have it held). */
    h1_settle(c, true);
}

/* HTTP/2 writes. h2o 2.2.5 aborts the process when a write fails while
 * another is scheduled: on_write_complete's error path closes the
 * connection at once, and close_connection_now asserts that the scheduled
 * write (_write.timeout_entry) is not linked. A client that reset its
 * connection while a large answer was being written, with more answers
 * queued behind it, took every connection of the server down with it.
 * h2o fixed it after 2.2.5 (h2o PR #1859) by unlinking the scheduled
 * write first, as this wrapper does before h2o's callback runs: the
 * connection is being closed, so nothing is lost. */
static void h2_wrapped_write(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    h2o_socket_cb cb = c->inner_write;
    c->inner_write = NULL;
    h2o_http2_conn_t *conn = sock->data;
    if (err != NULL && h2o_timeout_is_linked(&conn->_write.timeout_entry))
        h2o_timeout_unlink(&conn->_write.timeout_entry);
    enter(c);
    cb(sock, err);
    if (leave(c)) rewrap(c);
}

/* h2o's emit_writereq, the timer that starts an HTTP/2 connection's
 * writes (the same function for every connection; each thread stores it
 * as it wraps its first connection's). */
static _Atomic(h2o_timeout_cb) h2_emit_inner;

/* Starts the writes h2o scheduled, then wraps the write callback it
 * installed: outside any callback of the socket's, no other wrapper would
 * see it before the write ends. */
static void h2_emit(h2o_timeout_entry_t *entry)
{
    h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _write.timeout_entry, entry);
    h2o_timeout_cb inner = atomic_load(&h2_emit_inner);
    guard_conn_t *c = conn_of(conn->sock);
    if (c == NULL) {
        inner(entry);
        return;
    }
    enter(c);
    inner(entry);
    if (leave(c)) rewrap(c);
}

static void start_http2(guard_conn_t *c)
{
    /* h2o parses what came with the preface at once, without a read. */
    const char *why;
    if (h2_headers_flood(c->sock->input, PREFACE_LEN, NULL, &c->scan, &why)) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        h2_calm(c, 0, true, why);
        h2o_socket_close(c->sock);
        return;
    }
    c->h2 = true;
    c->taken_at = h2o_now(c->w->loop);
    input_buffer(c, H2_RCVBUF);
    size_t before = c->sock->input->size;
    enter(c);
    h2o_http2_accept(&c->w->accept_ctx, c->sock, c->connected_at);
    if (!leave(c)) return;
    h2_scan_taken(&c->scan, before > c->sock->input->size ? before - c->sock->input->size : 0);
    /* h2o may have read what came with the handshake and closed the new
     * connection already: a live one is the newest of the thread's list
     * (the address is compared, never read). */
    h2o_http2_conn_t *conn = c->sock->data;
    if (c->w->ctx.http2._conns.prev != &conn->_conns) return;
    if (conn->_write.timeout_entry.cb != h2_emit) {
        atomic_store(&h2_emit_inner, conn->_write.timeout_entry.cb);
        conn->_write.timeout_entry.cb = h2_emit;
    }
    rewrap_alive(c);
    h2_police(c);
    rewrap(c);
}

/* With cfg->http2: the first bytes say which protocol (h2o 2.2 would only
 * recognise the preface inside its HTTP/1 parser, from where no hook
 * reaches the new HTTP/2 connection). */
static void on_first_read(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    size_t n = sock->input->size, m = n < PREFACE_LEN ? n : PREFACE_LEN;
    bool h2 = memcmp(sock->input->bytes, PREFACE, m) == 0;
    if (h2 && n < PREFACE_LEN) return; /* so far a prefix of the preface */
    h2o_timeout_unlink(&c->detect);
    h2o_socket_read_stop(sock);
    if (h2)
        start_http2(c);
    else
        start_http1(c);
}

static void on_detect_timeout(h2o_timeout_entry_t *entry)
{
    guard_conn_t *c = H2O_STRUCT_FROM_MEMBER(guard_conn_t, detect, entry);
    if (c->sock->ssl != NULL) metrics_count(METRIC_TLS_HANDSHAKE_FAILURES);
    h2o_socket_close(c->sock);
}

/* Over TLS the handshake chooses the protocol (ALPN), and it is started
 * here, as after the cleartext preface, where the guard watches it. */
static void on_handshake(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    h2o_timeout_unlink(&c->detect);
    if (err != NULL) {
        metrics_count(METRIC_TLS_HANDSHAKE_FAILURES);
        h2o_socket_close(sock);
        return;
    }
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (http2_on && h2o_memis(proto.base, proto.len, H2O_STRLIT("h2")))
        start_http2(c);
    else
        start_http1(c);
}

void http_worker_accept(http_worker_t *w, h2o_socket_t *sock)
{
    guard_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        atomic_fetch_sub(&open_conns, 1);
        h2o_socket_close(sock);
        return;
    }
    c->w = w;
    atomic_fetch_add(&w->conns, 1);
    c->sock = sock;
    h2o_linklist_insert(&w->guard_conns, &c->link);
    c->connected_at = *h2o_get_timestamp(&w->ctx, NULL, NULL);
    sock->on_close.cb = on_close;
    sock->on_close.data = c;
    SSL_CTX *tls = http_tls_context();
    if (!http2_on && tls == NULL) {
        start_http1(c);
        return;
    }
    /* The handshake, or the first bytes, must come within the request
     * timeout. */
    c->detect.cb = on_detect_timeout;
    h2o_timeout_link(w->loop, &w->guard_detect, &c->detect);
    if (tls != NULL) {
        h2o_socket_ssl_handshake(sock, tls, NULL, on_handshake);
        SSL_CTX_free(tls); /* the connection's SSL object holds its own reference */
        return;
    }
    h2o_socket_read_start(sock, on_first_read);
}

/* --- response memory ------------------------------------------------------------- */

static http_worker_t *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(http_worker_t, ctx, req->conn->ctx);
}

/* An answer stops counting when its pool goes: its reader has it, or it
 * was given up and h2o has let go of it. */
static void on_held_dispose(void *p)
{
    held_t *h = p;
    if (h2o_linklist_is_linked(&h->link)) h2o_linklist_unlink(&h->link);
    if (h2o_linklist_is_linked(&h->error_link)) h2o_linklist_unlink(&h->error_link);
    atomic_fetch_sub(&output_held, h->bytes);
    if (h->error) atomic_fetch_sub(&errors_held, h->bytes);
}

/* Answers this thread has given up (evict), counted so that a walk of
 * the held answers can tell whether one it called gave up others. */
static __thread uint64_t evictions;
/* This thread's held HTTP/2 error answers (held_t.error), oldest first. */
static __thread h2o_linklist_t error_held;

/* A block of h2o's request pool: chunks and large allocations are each
 * one malloc'd block whose first field links the next (h2o 2.2's
 * memory.c). */
struct pool_block {
    struct pool_block *next;
};

/* What block b of a request's pool holds (what malloc gave it) but the
 * answer's bytes in it (bufs[0..bufcnt), counted as the answer's). */
static size_t block_bytes(struct pool_block *b, const h2o_iovec_t *bufs, size_t bufcnt)
{
    size_t size = malloc_usable_size(b), in = 0;
    uintptr_t lo = (uintptr_t)b, hi = lo + size;
    for (size_t i = 0; i < bufcnt; i++)
        if ((uintptr_t)bufs[i].base >= lo && (uintptr_t)bufs[i].base + bufs[i].len <= hi) in += bufs[i].len;
    return in < size ? size - in : 0;
}

/* The memory a request's pool holds, but the answer's bytes (bufs) that
 * lie in it: an answer made in the pool (most JSON) is not counted twice. */
static size_t pool_bytes(const h2o_mem_pool_t *pool, const h2o_iovec_t *bufs, size_t bufcnt)
{
    size_t bytes = 0;
    for (struct pool_block *b = (struct pool_block *)pool->chunks; b != NULL; b = b->next)
        bytes += block_bytes(b, bufs, bufcnt);
    for (struct pool_block *b = (struct pool_block *)pool->directs; b != NULL; b = b->next)
        bytes += block_bytes(b, bufs, bufcnt);
    return bytes;
}

/* Whether s is still in conn's stream table. h2o takes a stream out of it
 * when it starts closing the stream, then runs the requests waiting for
 * its slot, and frees the stream (and its answer's pool) only after them:
 * one of those requests may want room (room_for) while the answer is
 * still held. Walked bucket by bucket: the shim has no key lookup
 * (src/khash.h), and this is only asked when an answer is given up. */
static bool h2_in_table(h2o_http2_conn_t *conn, const h2o_http2_stream_t *s)
{
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++)
        if (h2_stream_at(conn, i) == s) return true;
    return false;
}

/* Gives up an answer its reader has not taken: the HTTP/2 stream is reset
 * (its pool goes at once, or when h2o's write of it ends), the HTTP/1
 * connection dropped (its pool goes when h2o sees that, on its next turn).
 * It counts until then. The reset says CANCEL, not REFUSED_STREAM: the
 * request was handled, and a client may send a refused one again on its
 * own (a POST made twice). An HTTP/2 stream h2o is already closing is left
 * to it, and false returned (nothing more goes than was going): resetting
 * it again closed it twice (h2o aborts on that), without credentials, by a
 * client resetting a stream whose answer was held while a request waited
 * for its slot (the attack review of stop 31). */
static bool evict(held_t *h)
{
    h2o_req_t *req = h->req;
    h2o_linklist_unlink(&h->link);
    if (h2o_linklist_is_linked(&h->error_link)) h2o_linklist_unlink(&h->error_link);
    evictions++;
    if (req->version >= 0x200) {
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
        h2o_http2_stream_t *s = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
        if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING || !h2_in_table(conn, s)) return false;
        h2_reset(conn, s, H2O_HTTP2_ERROR_CANCEL);
    } else {
        kill_socket(req->conn->callbacks->get_socket(req->conn));
    }
    metrics_count(METRIC_GUARD_EVICTED);
    return true;
}

/* Gives up this thread's answers held longer than EVICT_MS, oldest first,
 * until need bytes are on their way out (or none is that old). Returns the
 * bytes given up. */
static size_t evict_old(http_worker_t *w, size_t need)
{
    uint64_t now = h2o_now(w->loop);
    size_t freed = 0;
    while (freed < need && !h2o_linklist_is_empty(&w->guard_held)) {
        held_t *h = H2O_STRUCT_FROM_MEMBER(held_t, link, w->guard_held.next);
        if (now - h->since < EVICT_MS) break;
        size_t bytes = h->bytes;
        if (evict(h)) freed += bytes;
    }
    return freed;
}

/* Gives up this thread's error answers (held_t.error) that a shut window
 * holds, oldest first, until need bytes are on their way out (or none is
 * left): they cost a stream and its request each (H2_STREAM_COST and the
 * pool), and their readers are refusing them. Returns the bytes given up. */
static size_t evict_errors(size_t need)
{
    size_t freed = 0;
    h2o_linklist_t *node, *next;
    for (node = error_held.next; freed < need && node != &error_held; node = next) {
        next = node->next;
        held_t *h = H2O_STRUCT_FROM_MEMBER(held_t, error_link, node);
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)h->req->conn;
        if (!h2_window_shut(conn, H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, h->req))) continue;
        size_t bytes = h->bytes;
        uint64_t before = evictions;
        if (evict(h)) freed += bytes;
        /* As in sweep_held: a reset that ran a request whose answer gave
         * up others starts the walk over. */
        if (evictions != before + 1) next = error_held.next;
    }
    return freed;
}

static size_t h2_pending(h2o_req_t *req);

/* Whether h, an HTTP/2 answer, has had nothing taken (no byte framed since
 * it was sent) and a shut window holds it. */
static bool h2_unread(held_t *h)
{
    if (h->req->version < 0x200 || h->progress != h->since || h2_pending(h->req) < h->pending) return false;
    return h2_window_shut((h2o_http2_conn_t *)h->req->conn,
                          H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, h->req));
}

/* Gives up this thread's HTTP/2 answers that a shut window has held from
 * the start (h2_unread), of any age, oldest first, until need bytes are
 * on their way out; at most UNREAD_WALK of the held answers are looked at.
 * The response memory is over: a reader that took nothing of an answer
 * loses it before one that is reading, however slowly (evict_old). */
static size_t evict_unread(http_worker_t *w, size_t need)
{
    size_t freed = 0, looked = 0;
    h2o_linklist_t *node, *next;
    for (node = w->guard_held.next; freed < need && node != &w->guard_held && looked++ < UNREAD_WALK;
         node = next) {
        next = node->next;
        held_t *h = H2O_STRUCT_FROM_MEMBER(held_t, link, node);
        if (!h2_unread(h)) continue;
        size_t bytes = h->bytes;
        uint64_t before = evictions;
        if (evict(h)) freed += bytes;
        if (evictions != before + 1) next = w->guard_held.next;
    }
    return freed;
}

/* The error answers are over their share of the response memory (all
 * threads together): this thread gives up those a shut window holds. */
static void errors_over_share(void)
{
    size_t held = atomic_load(&errors_held), share = ERROR_SHARE(output_budget);
    if (held > share) evict_errors(held - share);
}

/* Whether an answer of bytes fits the budget now, after giving up old
 * answers if need be. Small ones always fit. When this thread cannot make
 * the room, the other threads are asked to (their sweep gives up their
 * old answers), so that the client's retry finds it. */
static bool room_for(http_worker_t *w, size_t bytes)
{
    if (bytes <= SMALL_RESPONSE) return true;
    size_t held = atomic_load(&output_held);
    if (held + bytes > output_budget) evict_unread(w, held + bytes - output_budget);
    held = atomic_load(&output_held);
    if (held + bytes > output_budget) evict_old(w, held + bytes - output_budget);
    held = atomic_load(&output_held);
    if (held + bytes <= output_budget) return true;
    size_t want = held + bytes - output_budget, cur = atomic_load(&room_wanted);
    while (cur < want && !atomic_compare_exchange_weak(&room_wanted, &cur, want))
        ;
    atomic_store(&room_wanted_at, h2o_now(w->loop));
    return false;
}

/* Counts bytes of an answer of total bytes about to be sent for req; NULL
 * if it does not fit the budget. */
static held_t *hold(http_worker_t *w, h2o_req_t *req, size_t bytes, size_t total, const h2o_iovec_t *bufs,
                    size_t bufcnt)
{
    /* An HTTP/2 answer keeps its stream and request until taken: they
     * count with it, at what they cost. */
    size_t cost = req->version >= 0x200 ? H2_STREAM_COST + pool_bytes(&req->pool, bufs, bufcnt) : 0;
    bool error = req->version >= 0x200 && error_status(req->res.status);
    if (!room_for(w, bytes + cost)) return NULL;
    held_t *h = h2o_mem_alloc_shared(&req->pool, sizeof *h, on_held_dispose);
    memset(h, 0, sizeof *h);
    h->req = req;
    h->cost = cost;
    h->bytes = bytes + cost;
    h->pending = total;
    h->since = h->progress = h2o_now(w->loop);
    atomic_fetch_add(&output_held, h->bytes);
    if (error) {
        /* The others first: this one is being sent. */
        atomic_fetch_add(&errors_held, h->bytes);
        errors_over_share();
        h->error = true;
        h2o_linklist_insert(&error_held, &h->error_link);
    }
    /* Over the budget (small answers always fit): the others a shut
     * window has held from the start go first. */
    size_t held = atomic_load(&output_held);
    if (held > output_budget && cost > 0) evict_unread(w, held - output_budget);
    h2o_linklist_insert(&w->guard_held, &h->link);
    return h;
}

/* The next chunk of a streamed answer (api/export.c): h2o asks for one
 * only once it has sent the last, so the answer holds this chunk alone,
 * from now (it moves to the end of the oldest-first list). */
static void rehold(http_worker_t *w, held_t *h, size_t bytes, size_t total)
{
    bytes += h->cost;
    atomic_fetch_add(&output_held, bytes);
    atomic_fetch_sub(&output_held, h->bytes);
    if (h->error) {
        atomic_fetch_add(&errors_held, bytes);
        atomic_fetch_sub(&errors_held, h->bytes);
    }
    h->bytes = bytes;
    h->pending = total;
    h->since = h->progress = h2o_now(w->loop);
    if (!h2o_linklist_is_linked(&h->link)) return; /* given up: it ends soon */
    h2o_linklist_unlink(&h->link);
    h2o_linklist_insert(&w->guard_held, &h->link);
}

void http_guard_json_type(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i >= 0)
        req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
}

/* The answer that replaces one the budget has no room for. An answer that
 * already carries an X-Request-Id (the API sets it first) names it in the
 * body's meta, as every error body of the API does. */
static h2o_iovec_t busy_body(h2o_req_t *req)
{
    req->res.status = 503;
    req->res.reason = "Service Unavailable";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    http_guard_json_type(req);
    h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT(BUSY_BODY));
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t id = req->res.headers.entries[i].value;
        /* The body less its last brace, the meta, the brace. */
        body = h2o_concat(&req->pool, h2o_iovec_init(BUSY_BODY, sizeof BUSY_BODY - 2),
                          h2o_iovec_init(H2O_STRLIT(",\"meta\":{\"requestId\":\"")), id,
                          h2o_iovec_init(H2O_STRLIT("\"}}")));
    }
    req->res.content_length = body.len;
    return body;
}

static h2o_iovec_t busy_answer(h2o_req_t *req)
{
    metrics_count(METRIC_GUARD_RESPONSE_MEMORY);
    return busy_body(req);
}

int http_response_admit(h2o_req_t *req, size_t len)
{
    if (room_for(worker_of(req), len)) return 0;
    h2o_iovec_t body = busy_answer(req);
    h2o_send_inline(req, body.base, body.len);
    return -1;
}

/* Whether b lies within one of the program's own bodies (cfg->static_bodies). */
static bool static_bytes(h2o_iovec_t b)
{
    size_t lo = 0, hi = nstatics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)statics[mid].base + statics[mid].len <= (uintptr_t)b.base)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nstatics && (uintptr_t)statics[lo].base <= (uintptr_t)b.base &&
           (uintptr_t)b.base + b.len <= (uintptr_t)statics[lo].base + statics[lo].len;
}

/* The bytes of an answer that hold memory until its reader takes them:
 * the program's own bytes do not, but over HTTP/1 with TLS, where h2o
 * encrypts the whole answer into its output buffer at once. (Over
 * HTTP/2, h2o frames what the peer's windows take into the connection's
 * write buffer: at most about 64 KiB a connection, uncounted, as for
 * every answer's frames.) *total: all its bytes. */
static size_t held_bytes(h2o_req_t *req, const h2o_iovec_t *bufs, size_t bufcnt, size_t *total)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    bool copied = req->version < 0x200 && sock != NULL && sock->ssl != NULL;
    size_t bytes = 0;
    *total = 0;
    for (size_t i = 0; i < bufcnt; i++) {
        *total += bufs[i].len;
        if (copied || !static_bytes(bufs[i])) bytes += bufs[i].len;
    }
    return bytes;
}

/* The guard's output stream: the answer's count, once it has one. */
typedef struct guard_ostream {
    h2o_ostream_t super;
    held_t *held;
    bool started;
} guard_ostream_t;

/* An HTTP/2 request's body once its answer starts: the handler is done
 * with it, but h2o keeps it until the stream closes, which a reader that
 * takes nothing of the answer (a closed window) puts off until the 20 s
 * stall: 16 streams of whole bodies sent at once, without credentials,
 * held a megabyte a connection that way. */
static void h2_body_done(h2o_req_t *req)
{
    h2o_http2_stream_t *s = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    if (s->_req_body == NULL || (s->_req_body->size == 0 && s->_req_body->capacity <= INPUT_FREE)) return;
    req->entity = h2o_iovec_init("", 0);
    h2o_buffer_dispose(&s->_req_body);
    h2o_buffer_init(&s->_req_body, &h2o_socket_buffer_prototype);
}

static void guard_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                          h2o_send_state_t state)
{
    guard_ostream_t *o = (guard_ostream_t *)self;
    if (!o->started && req->version >= 0x200) h2_body_done(req);
    o->started = true;
    size_t total, bytes = held_bytes(req, bufs, bufcnt, &total);
    h2o_iovec_t busy;
    /* An answer of the program's own bytes is held at 0 bytes: still
     * watched, so that an HTTP/2 reader that takes nothing of it for 20 s
     * loses it as any other (sweep_held). */
    if (total > 0 && o->held != NULL) {
        rehold(worker_of(req), o->held, bytes, total);
    } else if (total > 0 && (o->held = hold(worker_of(req), req, bytes, total, bufs, bufcnt)) == NULL) {
        /* A first send this large is a whole answer (a stream's first
         * chunk was admitted by http_response_admit). */
        busy = busy_answer(req);
        bufs = &busy;
        bufcnt = 1;
    }
    /* Sending may install h2o's write callback (HTTP/1), to be wrapped. */
    guard_conn_t *c = conn_of(req->conn->callbacks->get_socket(req->conn));
    if (c != NULL) enter(c);
    h2o_ostream_send_next(self, req, bufs, bufcnt, state);
    if (c != NULL && leave(c)) rewrap(c);
}

static void guard_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    guard_ostream_t *o = (guard_ostream_t *)h2o_add_ostream(req, sizeof *o, slot);
    o->held = NULL;
    o->started = false;
    o->super.do_send = guard_do_send;
    h2o_setup_next_ostream(req, &o->super.next);
}

void http_guard_filter(h2o_pathconf_t *path)
{
    h2o_filter_t *filter = h2o_create_filter(path, sizeof *filter);
    filter->on_setup_ostream = guard_on_setup_ostream;
}

/* --- large bodies ------------------------------------------------------------------ */

/* Takes bytes of owner's allowance into g; false when it has not that much
 * left (or no slot is free). */
static bool grant_take(grant_t *g, uint64_t owner, size_t bytes)
{
    size_t cap = input_budget / 2;
    struct owner *o = NULL, *spare = NULL;
    bool ok = false;
    pthread_mutex_lock(&owners_lock);
    for (size_t i = 0; i < OWNERS_MAX && o == NULL; i++) {
        if (owners[i].bytes > 0 && owners[i].id == owner)
            o = &owners[i];
        else if (owners[i].bytes == 0 && spare == NULL)
            spare = &owners[i];
    }
    if (o == NULL) o = spare;
    if (o != NULL && bytes <= cap && o->bytes <= cap - bytes) {
        o->id = owner;
        o->bytes += bytes;
        g->owner = owner;
        g->bytes = bytes;
        ok = true;
    }
    pthread_mutex_unlock(&owners_lock);
    return ok;
}

static void grant_give(grant_t *g)
{
    if (g->bytes == 0) return;
    pthread_mutex_lock(&owners_lock);
    for (size_t i = 0; i < OWNERS_MAX; i++)
        if (owners[i].bytes > 0 && owners[i].id == g->owner) {
            owners[i].bytes -= g->bytes < owners[i].bytes ? g->bytes : owners[i].bytes;
            break;
        }
    pthread_mutex_unlock(&owners_lock);
    g->bytes = 0;
}

/* An HTTP/2 stream's grant lives in its request's pool. */
static void on_grant_dispose(void *p)
{
    grant_give(p);
}

/* Whether req's large body may come (0, its grant in g); otherwise the
 * status of the answer in req->res and *answer. req's method and path are
 * its input's, as h2o has not set them yet. */
static int judge(guard_conn_t *c, h2o_req_t *req, size_t declared, grant_t *g, size_t *limit,
                 h2o_iovec_t *answer)
{
    h2o_iovec_t method = req->method, path = req->path;
    size_t query_at = req->query_at;
    req->method = req->input.method;
    req->path = req->input.path;
    const char *q = req->path.len > 0 ? memchr(req->path.base, '?', req->path.len) : NULL;
    req->query_at = q != NULL ? (size_t)(q - req->path.base) : SIZE_MAX;
    uint64_t owner = 0;
    *limit = body_large;
    int status = body_check(req, declared, c->w->state, &owner, limit, answer);
    /* A body of no declared length takes its whole limit from its app's
     * share on the import alone; elsewhere UNKNOWN_GRANT (its limit is
     * still held to, by the judgement past it): many small HTTP/2 bodies
     * without content-length, each taking 1 MiB, had an app's third
     * connection of 16 refused. */
    size_t want = *limit;
    if (declared == SIZE_MAX && want < body_large && want > UNKNOWN_GRANT) want = UNKNOWN_GRANT;
    bool no_room = status == 0 && !grant_take(g, owner, want);
    if (no_room || status < 0) {
        metrics_count(METRIC_GUARD_REQUEST_MEMORY);
        *answer = no_room && body_busy != NULL ? body_busy(req, c->w->state) : busy_body(req);
        if (answer->base == NULL) *answer = busy_body(req);
        status = 503;
    }
    req->method = method;
    req->path = path;
    req->query_at = query_at;
    return status;
}

/* Appends what fmt says to buf (n bytes so far, of H1_ANSWER_MAX); SIZE_MAX
 * once it no longer fits. */
static size_t append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static size_t append(char *buf, size_t n, const char *fmt, ...)
{
    if (n == SIZE_MAX) return n;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + n, H1_ANSWER_MAX - n, fmt, ap);
    va_end(ap);
    return k < 0 || (size_t)k >= H1_ANSWER_MAX - n ? SIZE_MAX : n + (size_t)k;
}

static void on_answer_written(h2o_socket_t *sock, const char *err)
{
    guard_conn_t *c = sock->on_close.data;
    free(c->answer);
    c->answer = NULL;
    if (err == NULL) shutdown(h2o_socket_get_fd(sock), SHUT_WR);
}

/* Answers c's HTTP/1 request with req->res and body, closing the
 * connection; what arrives meanwhile is dropped (h1_drained). */
static void h1_answer(guard_conn_t *c, h2o_req_t *req, h2o_iovec_t body)
{
    c->draining = true;
    c->drain_until = h2o_now(c->w->loop) + DRAIN_MS;
    if (h2o_socket_is_writing(c->sock) || (c->answer = malloc(H1_ANSWER_MAX)) == NULL) {
        kill_socket(c->sock);
        return;
    }
    char *buf = c->answer;
    /* The Date and Server fields h2o puts on each of its own answers. */
    h2o_timestamp_t ts;
    h2o_get_timestamp(&c->w->ctx, &req->pool, &ts);
    const h2o_iovec_t *server = &c->w->ctx.globalconf->server_name;
    size_t n =
        append(buf, 0, "HTTP/1.1 %d %s\r\ndate: %s\r\n", req->res.status, req->res.reason, ts.str->rfc1123);
    if (server->len != 0) n = append(buf, n, "server: %.*s\r\n", (int)server->len, server->base);
    for (size_t i = 0; i < req->res.headers.size; i++) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        n = append(buf, n, "%.*s: %.*s\r\n", (int)h->name->len, h->name->base, (int)h->value.len,
                   h->value.base);
    }
    n = append(buf, n, "content-length: %zu\r\nconnection: close\r\n\r\n%.*s", body.len, (int)body.len,
               body.base);
    if (n == SIZE_MAX) {
        kill_socket(c->sock);
        return;
    }
    /* Only now: req's headers may point into the input. */
    drop_input(c);
    h2o_iovec_t v = h2o_iovec_init(buf, n);
    h2o_socket_write(c->sock, &v, 1, on_answer_written);
    rewrap(c);
}

/* Frees c's input buffer, whose room would otherwise stay counted (and
 * held) after its bytes are dropped; reading starts again with a small one. */
static void drop_input(guard_conn_t *c)
{
    h2o_buffer_dispose(&c->sock->input);
    h2o_buffer_init(&c->sock->input, &h2o_socket_buffer_prototype);
    charge(c);
}

/* Drops what a refused HTTP/1 request still sends; true once it is time
 * to close the connection. */
static bool h1_drained(guard_conn_t *c)
{
    c->drained += c->sock->input->size;
    drop_input(c);
    return c->drained > body_large || h2o_now(c->w->loop) >= c->drain_until;
}

static void h1_request_done(guard_conn_t *c)
{
    c->h1_seen = false;
    c->h1_head_partial = c->h1_head_len = c->h1_limit = 0;
    grant_give(&c->h1_grant);
}

/* Judges the HTTP/1 request whose head is parsed: its method, path and
 * headers in a request of the guard's own (h2o's is not reachable). True
 * when it was refused (answered). */
static bool h1_judge(guard_conn_t *c, h2o_iovec_t method, h2o_iovec_t path, const struct phr_header *hs,
                     size_t nh, size_t declared, grant_t *g, size_t *limit)
{
    /* h2o_dispose_request walks the output streams down to one without
     * a next: this request has none but that one. */
    static h2o_ostream_t no_output;
    h2o_req_t *req = calloc(1, sizeof *req);
    if (req == NULL) {
        kill_socket(c->sock);
        return true;
    }
    h2o_init_request(req, c->sock->data, NULL);
    req->_ostr_top = &no_output;
    req->version = 0x101;
    req->input.method = h2o_strdup(&req->pool, method.base, method.len);
    req->input.path = h2o_strdup(&req->pool, path.base, path.len);
    for (size_t i = 0; i < nh; i++) {
        h2o_iovec_t name = h2o_strdup(&req->pool, hs[i].name, hs[i].name_len);
        h2o_strtolower(name.base, name.len);
        const h2o_token_t *token = h2o_lookup_token(name.base, name.len);
        if (token != NULL)
            h2o_add_header(&req->pool, &req->headers, token, NULL, hs[i].value, hs[i].value_len);
        else
            h2o_add_header_by_str(&req->pool, &req->headers, name.base, name.len, 0, NULL, hs[i].value,
                                  hs[i].value_len);
    }
    h2o_iovec_t answer;
    int status = judge(c, req, declared, g, limit, &answer);
    if (status != 0) h1_answer(c, req, answer);
    h2o_dispose_request(req);
    free(req);
    return status != 0;
}

/* HTTP/1, an allowed chunked body being watched (c->h1_limit), after h2o
 * read: once what has come of it (h2o decodes it in place, after the
 * head: its framing is gone) is over the limit it was allowed, it is
 * judged again at that size, which the route refuses (413). True when it
 * was. */
static bool h1_over_limit(guard_conn_t *c, h1_head_t *head)
{
    h2o_buffer_t *in = c->sock->input;
    if (in->size < c->h1_head_len) return false;
    size_t body = in->size - c->h1_head_len;
    if (body <= c->h1_limit) return false;
    c->h1_limit = 0;
    head->nh = H2O_MAX_HEADERS;
    int len = phr_parse_request(in->bytes, c->h1_head_len, &head->method, &head->method_len, &head->path,
                                &head->path_len, &head->minor, head->hs, &head->nh, 0);
    assert(len == (int)c->h1_head_len); /* the head parsed before, still in place */
    if (len != (int)c->h1_head_len) return false;
    grant_t spare = {0};
    size_t limit;
    bool refused =
        h1_judge(c, h2o_iovec_init(head->method, head->method_len),
                 h2o_iovec_init(head->path, head->path_len), head->hs, head->nh, body, &spare, &limit);
    grant_give(&spare);
    return refused;
}

/* HTTP/1, before h2o reads more of a request: a body over body_small
 * (declared, or chunked, whose length is not known) is judged from the
 * request's head before h2o reads any of it: on the read that brings the
 * head's end when the framing walk parsed it there, at the latest once the
 * input outgrows what every connection may hold (h2o keeps the request's
 * head at the start of the input until the request is done). So no body
 * that does not fit the free input is read before its credentials hold.
 * An allowed chunked body is then watched against the limit it was
 * allowed. True when the request was refused. head: the input's first
 * head if the framing walk parsed it on this read (head->len > 0), or
 * storage to parse it into. now: parse the input's head whatever its
 * size (h2o took it without a read the wrapper saw). */
static bool h1_check(guard_conn_t *c, h1_head_t *head, bool now)
{
    h2o_buffer_t *in = c->sock->input;
    if (body_check == NULL) return false;
    if (c->h1_seen) return false;
    int len = head->len;
    if (len <= 0 && in->size <= INPUT_FREE && !(now && in->size > 0)) return false;
    if (len <= 0) {
        /* Each read is one look at its own bytes, not at the whole head
         * again: a head trickling in would otherwise cost a parse of up to
         * h2o's 400 KiB head per read. */
        size_t seen = c->h1_head_partial < in->size ? c->h1_head_partial : 0;
        head->nh = H2O_MAX_HEADERS;
        len = phr_parse_request(in->bytes, in->size, &head->method, &head->method_len, &head->path,
                                &head->path_len, &head->minor, head->hs, &head->nh, seen);
    }
    if (len == -2) { /* the head is still arriving */
        c->h1_head_partial = in->size;
        return false;
    }
    c->h1_head_partial = 0;
    c->h1_seen = true;
    size_t declared, limit = 0;
    bool chunked, ambiguous;
    if (len < 0 || !h1_body(head->hs, head->nh, &chunked, &declared, &ambiguous) ||
        (!chunked && declared <= body_small))
        return false; /* h2o answers what it cannot parse */
    if (h1_judge(c, h2o_iovec_init(head->method, head->method_len),
                 h2o_iovec_init(head->path, head->path_len), head->hs, head->nh,
                 chunked ? SIZE_MAX : declared, &c->h1_grant, &limit))
        return true;
    if (chunked && limit < body_large) {
        c->h1_head_len = (size_t)len;
        c->h1_limit = limit;
    }
    return false;
}

/* Answers an HTTP/2 stream still receiving its body: the answer's HEADERS
 * and DATA (END_STREAM). True when it was sent; false when the peer's
 * windows cannot take it (the stream is then reset, REFUSED_STREAM). */
static bool h2_answer(guard_conn_t *c, h2o_http2_conn_t *conn, h2o_http2_stream_t *s, h2o_iovec_t body)
{
    ssize_t room = h2o_http2_window_get_window(&conn->_write.window);
    ssize_t stream_room = h2o_http2_window_get_window(&s->output_window);
    if (stream_room < room) room = stream_room;
    if (room < (ssize_t)body.len || body.len > conn->peer_settings.max_frame_size) {
        h2_reset(conn, s, H2O_HTTP2_ERROR_REFUSED_STREAM);
        return false;
    }
    h2o_timestamp_t ts;
    h2o_get_timestamp(&c->w->ctx, &s->req.pool, &ts);
    h2o_hpack_flatten_response(&conn->_write.buf, &conn->_output_header_table, s->stream_id,
                               conn->peer_settings.max_frame_size, &s->req.res, &ts,
                               &c->w->ctx.globalconf->server_name, body.len);
    h2o_iovec_t dst = h2o_buffer_reserve(&conn->_write.buf, H2O_HTTP2_FRAME_HEADER_SIZE + body.len);
    uint8_t *p = h2o_http2_encode_frame_header((uint8_t *)dst.base, body.len, H2O_HTTP2_FRAME_TYPE_DATA,
                                               H2O_HTTP2_FRAME_FLAG_END_STREAM, (int32_t)s->stream_id);
    memcpy(p, body.base, body.len);
    conn->_write.buf->size += H2O_HTTP2_FRAME_HEADER_SIZE + body.len;
    h2o_http2_window_consume_window(&conn->_write.window, body.len);
    h2o_http2_conn_request_write(conn);
    return true;
}

/* A refused stream stays open on h2o's side until its client ends or
 * resets it (or the 10 s request deadline does): closing it would have h2o
 * answer each DATA frame still coming with RST_STREAM STREAM_CLOSED, which
 * curl (7.88) reports as an error instead of the answer it was sent. What
 * it still sends is dropped after each read, and its expected length can
 * never be met, so that h2o resets it (PROTOCOL_ERROR) rather than hand it
 * to a handler if it ends. */
static void h2_drop_body(h2o_http2_stream_t *s)
{
    s->_expected_content_length = SIZE_MAX - 1;
    if (s->_req_body->size == 0 && s->_req_body->capacity <= INPUT_FREE) return;
    h2o_buffer_dispose(&s->_req_body);
    h2o_buffer_init(&s->_req_body, &h2o_socket_buffer_prototype);
}

/* Forgets the judged streams (c->h2_judged) that no longer receive a body:
 * those not among conn's streams still receiving. */
static void h2_forget_judged(guard_conn_t *c, h2o_http2_conn_t *conn)
{
    if (c->h2_njudged == 0) return;
    bool receives[H2_JUDGED_MAX] = {false};
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s == NULL || !receiving(s)) continue;
        for (size_t j = 0; j < c->h2_njudged; j++)
            if (c->h2_judged[j].id == s->stream_id) receives[j] = true;
    }
    size_t kept = 0;
    for (size_t j = 0; j < c->h2_njudged; j++)
        if (receives[j]) c->h2_judged[kept++] = c->h2_judged[j];
    c->h2_njudged = kept;
}

/* Whether a large body allowed on c is still arriving (after
 * h2_forget_judged). */
static bool h2_allowed_arriving(const guard_conn_t *c)
{
    for (size_t i = 0; i < c->h2_njudged; i++)
        if (!c->h2_judged[i].refused) return true;
    return false;
}

/* Forgets the judged streams no longer receiving, then puts c's receive
 * buffer back to H2_RCVBUF once no large body allowed on it is arriving:
 * after a read, and after the guard reset streams itself (the budget, the
 * deadline), so that the next read is a small one again. */
static void h2_lower_input(guard_conn_t *c, h2o_http2_conn_t *conn)
{
    h2_forget_judged(c, conn);
    if (!c->raised || h2_allowed_arriving(c)) return;
    input_buffer(c, H2_RCVBUF);
    c->raised = false;
}

static h2_judged_t *h2_judged(guard_conn_t *c, uint32_t id)
{
    for (size_t i = 0; i < c->h2_njudged; i++)
        if (c->h2_judged[i].id == id) return &c->h2_judged[i];
    return NULL;
}

/* Fixes the receive buffer of HTTP/2 connection c at bytes. One read is
 * everything the kernel buffered for the socket (h2o reads until it has
 * none), and h2o copies each DATA frame of it into its stream's buffer
 * before the guard drops what refused streams sent: held twice, per thread.
 * h2o 2.2 does not hold a client to its receive windows, so with the
 * kernel's autotuning one read could bring tcp_rmem's maximum and what
 * arrived while h2o read it (a review saw 49 MiB in one read, with a
 * maximum of 32 MiB). Fixed at H2_RCVBUF from the start, a read brings a
 * few MiB at most. A connection that has a large body allowed (its client
 * authenticated, the body counted against its app's share) gets
 * H2_RCVBUF_ALLOWED while that body is arriving, so that a 16 MiB upload
 * from far away can arrive within the request deadline (where
 * net.core.rmem_max allows it); H2_RCVBUF again once none is (a review:
 * kept raised, one allowed stream reset at once would have let the same
 * connection bring 8 MiB reads of refused bodies). */
static void input_buffer(guard_conn_t *c, int bytes)
{
    (void)setsockopt(h2o_socket_get_fd(c->sock), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

static void h2_judge(guard_conn_t *c, h2o_http2_conn_t *conn, h2o_http2_stream_t *s)
{
    grant_t g = {0};
    h2o_iovec_t answer;
    size_t declared = s->_expected_content_length, limit = 0;
    int status = c->h2_njudged < H2_JUDGED_MAX ? judge(c, &s->req, declared, &g, &limit, &answer) : -1;
    if (status == 0) {
        grant_t *kept = h2o_mem_alloc_shared(&s->req.pool, sizeof *kept, on_grant_dispose);
        *kept = g;
        c->h2_judged[c->h2_njudged++] =
            (h2_judged_t){s->stream_id, false, declared == SIZE_MAX && limit < body_large ? limit : 0};
        if (!c->raised) input_buffer(c, H2_RCVBUF_ALLOWED);
        c->raised = true;
    } else if (status < 0) {
        h2_reset(conn, s, H2O_HTTP2_ERROR_REFUSED_STREAM);
    } else if (h2_answer(c, conn, s, answer)) {
        c->h2_judged[c->h2_njudged++] = (h2_judged_t){s->stream_id, true, 0};
        h2_drop_body(s);
    }
}

/* A stream allowed without a declared length (j) whose body is now over
 * the limit it was allowed: judged again at its size, which its route
 * refuses (413), answered as a refused stream is. */
static void h2_over_limit(guard_conn_t *c, h2o_http2_conn_t *conn, h2o_http2_stream_t *s, h2_judged_t *j)
{
    grant_t spare = {0};
    size_t limit;
    h2o_iovec_t answer;
    j->limit = 0;
    int status = judge(c, &s->req, s->_req_body->size, &spare, &limit, &answer);
    grant_give(&spare);
    if (status < 0) {
        h2_reset(conn, s, H2O_HTTP2_ERROR_REFUSED_STREAM);
    } else if (status > 0 && h2_answer(c, conn, s, answer)) {
        j->refused = true;
        h2_drop_body(s);
    }
}

/* The body bytes conn's streams hold that were not judged. */
static size_t h2_unjudged(guard_conn_t *c, h2o_http2_conn_t *conn)
{
    size_t bytes = 0;
    for (khiter_t i = kh_begin(conn->streams); i != kh_end(conn->streams); i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s != NULL && receiving(s) && s->_req_body != NULL && h2_judged(c, s->stream_id) == NULL)
            bytes += s->_req_body->size;
    }
    return bytes;
}

/* After h2o read from an HTTP/2 connection: each stream whose body is to
 * be over body_small (declared, or so far) and was not judged yet is
 * judged, and every stream with a body once the connection's unjudged
 * bodies together are (16 streams of 4 KiB each held 56 KiB counted
 * before any credentials); a body past its declared length is reset
 * (malformed, RFC 9113 8.1.1: h2o would refuse it only at its end, and
 * a grant was of the length declared); an allowed one of no declared
 * length past its limit is judged again; what refused streams still send
 * is dropped. (h2o has read the whole read by now: a body that one read
 * completed is in the handler's hands, which refuses it in the same
 * way.) */
static void h2_check_bodies(guard_conn_t *c, h2o_http2_conn_t *conn)
{
    if (body_check == NULL) return;
    h2_lower_input(c, conn);
    /* Sticky: the last of many small bodies, arriving in a read of its
     * own once the others were judged and answered, was left alone
     * under body_small, unanswered until its deadline (seen under load). */
    c->h2_crowded |= h2_unjudged(c, conn) > body_small;
    bool crowded = c->h2_crowded;
    for (khiter_t i = kh_begin(conn->streams);
         i != kh_end(conn->streams) && conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING; i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s == NULL || s->state != H2O_HTTP2_STREAM_STATE_RECV_BODY || s->_req_body == NULL) continue;
        h2_judged_t *j = h2_judged(c, s->stream_id);
        size_t declared = s->_expected_content_length, size = s->_req_body->size;
        bool large =
            (declared != SIZE_MAX && declared > body_small) || size > body_small || (crowded && size > 0);
        if (j != NULL && j->refused)
            h2_drop_body(s);
        else if (declared != SIZE_MAX && size > declared)
            h2_reset(conn, s, H2O_HTTP2_ERROR_PROTOCOL);
        else if (j != NULL && j->limit != 0 && size > j->limit)
            h2_over_limit(c, conn, s, j);
        else if (j == NULL && large)
            h2_judge(c, conn, s);
    }
}

/* --- deadlines --------------------------------------------------------------------- */

static uint64_t age_ms(const struct timeval *now, const struct timeval *then)
{
    int64_t ms = (int64_t)(now->tv_sec - then->tv_sec) * 1000 + (now->tv_usec - then->tv_usec) / 1000;
    return ms > 0 ? (uint64_t)ms : 0;
}

/* One HTTP/2 connection: requests not whole within request_ms are reset,
 * a connection without streams for request_ms goes. */
static void sweep_h2_conn(http_worker_t *w, h2o_http2_conn_t *conn, uint64_t now)
{
    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING) return;
    const struct timeval *tv = h2o_get_timestamp(&w->ctx, NULL, NULL);
    for (khiter_t i = kh_begin(conn->streams);
         i != kh_end(conn->streams) && conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING; i++) {
        h2o_http2_stream_t *s = h2_stream_at(conn, i);
        if (s != NULL && receiving(s) && age_ms(tv, &s->req.timestamps.request_begin_at) >= request_ms) {
            metrics_count(METRIC_GUARD_DEADLINE);
            h2_reset(conn, s, H2O_HTTP2_ERROR_CANCEL);
        }
    }
    guard_conn_t *c = conn_of(conn->sock);
    if (c == NULL) return;
    h2_lower_input(c, conn);
    /* Callbacks h2o installed outside any of the socket's (a read started
     * again as a stream closed) are wrapped here at the latest. */
    rewrap_alive(c);
    if (c->charged > 0) charge(c);
    if (conn->num_streams.pull.open != 0) {
        c->idle_since = 0;
    } else if (c->idle_since == 0) {
        c->idle_since = now;
    } else if (now - c->idle_since >= request_ms && conn->state == H2O_HTTP2_CONN_STATE_OPEN) {
        metrics_count(METRIC_GUARD_DEADLINE);
        h2_goaway(conn, "idle");
    }
}

static size_t h2_pending(h2o_req_t *req)
{
    h2o_http2_stream_t *s = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    size_t bytes = 0;
    for (size_t i = 0; i < s->_data.size; i++)
        bytes += s->_data.entries[i].len;
    return bytes;
}

/* Held answers: an HTTP/2 one whose reader took nothing for STALL_MS is
 * reset; while the total is over the budget (the race between threads),
 * or another thread found no room, this thread gives up its old ones. */
static void sweep_held(http_worker_t *w, uint64_t now)
{
    h2o_linklist_t *node, *next;
    for (node = w->guard_held.next; node != &w->guard_held; node = next) {
        next = node->next;
        held_t *h = H2O_STRUCT_FROM_MEMBER(held_t, link, node);
        if (h->req->version < 0x200) continue;
        size_t pending = h2_pending(h->req);
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)h->req->conn;
        guard_conn_t *c = conn_of(conn->sock);
        if (pending < h->pending) {
            h->pending = pending;
            h->progress = now;
            if (c != NULL) c->taken_at = now;
        } else if (pending > 0 && now - h->progress >= ERROR_STALL_MS && h->error && h2_errors_only(conn)) {
            /* An error answer on a connection that sends nothing else: a
             * connection that took nothing of any answer since
             * ERROR_STALL_MS gets no new streams, and closes once those it
             * has are given up. */
            uint64_t before = evictions;
            if (c != NULL && now - c->taken_at >= ERROR_STALL_MS &&
                conn->state == H2O_HTTP2_CONN_STATE_OPEN) {
                metrics_count(METRIC_GUARD_DEADLINE);
                h2_goaway(conn, "answers stalled on flow control");
            }
            evict(h);
            if (evictions != before + 1) next = w->guard_held.next;
        } else if (pending > 0 && now - h->progress >= STALL_MS) {
            uint64_t before = evictions;
            evict(h);
            /* The reset may have run a waiting request whose answer gave
             * up others (room_for), next among them: then the walk starts
             * over (what it did to the answers before is done again as a
             * no-op). Only then: a walk that started over after every
             * answer it gave up would be quadratic. */
            if (evictions != before + 1) next = w->guard_held.next;
        }
    }
    errors_over_share();
    size_t held = atomic_load(&output_held);
    if (held > output_budget) {
        size_t freed = evict_errors(held - output_budget);
        held = freed < held ? held - freed : 0;
    }
    if (held > output_budget) {
        size_t freed = evict_unread(w, held - output_budget);
        held = freed < held ? held - freed : 0;
    }
    if (held > output_budget) evict_old(w, held - output_budget);
    size_t want = atomic_load(&room_wanted);
    if (want == 0) return;
    uint64_t at = atomic_load(&room_wanted_at);
    if (now > at && now - at > 1000) {
        atomic_compare_exchange_strong(&room_wanted, &want, 0);
        return;
    }
    size_t freed = evict_old(w, want);
    while (freed > 0 && !atomic_compare_exchange_weak(&room_wanted, &want, want > freed ? want - freed : 0))
        ;
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    http_worker_t *w = H2O_STRUCT_FROM_MEMBER(http_worker_t, guard_sweep, entry);
    uint64_t now = h2o_now(w->loop);
    for (h2o_linklist_t *node = w->ctx.http2._conns.next; node != &w->ctx.http2._conns; node = node->next)
        sweep_h2_conn(w, H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node), now);
    sweep_held(w, now);
    if (now < atomic_load(&hoards_wanted_at) + 1000) drop_hoards(w);
    h2o_timeout_link(w->loop, &w->guard_tick, &w->guard_sweep);
}

/* --- set-up ------------------------------------------------------------------------ */

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const h2o_iovec_t *)a)->base, y = (uintptr_t)((const h2o_iovec_t *)b)->base;
    return x < y ? -1 : x > y;
}

void http_guard_configure(h2o_globalconf_t *gc, const http_config_t *cfg)
{
    input_budget = cfg->request_memory != 0 ? cfg->request_memory : HTTP_MEMORY_DEFAULT;
    output_budget = cfg->response_memory != 0 ? cfg->response_memory : HTTP_MEMORY_DEFAULT;
    http2_on = cfg->http2;
    body_check = cfg->body_check;
    body_busy = cfg->body_busy;
    body_small = cfg->body_small;
    body_large = cfg->max_body;
    nstatics = 0;
    for (size_t i = 0; i < cfg->nstatic && nstatics < HTTP_STATIC_MAX; i++)
        if (cfg->static_bodies[i].len > 0) statics[nstatics++] = cfg->static_bodies[i];
    qsort(statics, nstatics, sizeof statics[0], by_address);
    request_ms = gc->http1.req_timeout;
    /* h2o would take the HTTP/2 preface (and Upgrade: h2c) inside its
     * HTTP/1 parser; with this off, only the guard recognises the preface,
     * and only when asked to. */
    gc->http1.upgrade_to_http2 = 0;
    gc->http2.max_concurrent_requests_per_connection = H2_MAX_STREAMS;
}

void http_guard_thread_init(http_worker_t *w)
{
    h2o_linklist_init_anchor(&w->guard_held);
    h2o_linklist_init_anchor(&w->guard_conns);
    h2o_linklist_init_anchor(&error_held);
    h2o_timeout_init(w->loop, &w->guard_detect, request_ms);
    h2o_timeout_init(w->loop, &w->guard_tick, SWEEP_MS);
    w->guard_sweep.cb = on_sweep;
    h2o_timeout_link(w->loop, &w->guard_tick, &w->guard_sweep);
}

bool http_guard_conns_open(http_worker_t *w)
{
    return !h2o_linklist_is_empty(&w->guard_conns);
}

int http_guard_cut_all(http_worker_t *w)
{
    int n = 0;
    for (h2o_linklist_t *l = w->guard_conns.next; l != &w->guard_conns; l = l->next, n++)
        kill_socket(H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, l)->sock);
    return n;
}

void http_guard_thread_fini(http_worker_t *w)
{
    if (h2o_timeout_is_linked(&w->guard_sweep)) h2o_timeout_unlink(&w->guard_sweep);
}
