/*
 * fuzz_request.c: the whole request path, in-process.
 *
 * The input is the raw bytes a client sends on one connection (request
 * line, headers, body; several pipelined requests, or garbage). They go
 * through a socketpair into a real h2o context (libh2o-evloop), so h2o
 * parses them exactly as it does in production, then through crmd's own
 * glue (src/http/server.c: the configuration, request handler and
 * error-body filter http_serve uses, reached through http/server_int.h),
 * api_handle, the route table, auth, the
 * codec and the SQLite store on a temporary database, and back out as
 * bytes. The writer thread is not started, so writes run inline
 * (api_write_submit's no-writer path).
 *
 * Every response is then read back as HTTP/1.x and checked: a final status
 * other than 101 has a Content-Length, its body (when there is one) is
 * application/json holding one JSON object (but the board's files, under
 * their Content-Security-Policy), errors carry their status,
 * 401s say WWW-Authenticate, 405s say Allow, and nothing is a 500 or 503
 * (with one thread and no contention, either means a validation gap or a
 * store failure) but GET /readyz's 503: without a writer thread the
 * server is rightly not ready.
 *
 * Set-up, once per process: a temporary SQLite database (migrated), the
 * fixed test key as the signing key, two apps (FUZZ_APP_KEY and
 * FUZZ_APP2_KEY), and a lead and a follow with fixed ids, re-created before
 * each input if an input deleted them. The response cache is on, as crmd
 * serve has it on SQLite, and so is rate limiting, with limits no input
 * reaches. The seed corpus carries valid tokens
 * for both apps (tests/fuzz/make_seeds.py).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/cache.h"
#include "api/ratelimit.h"
#include "common.h"
#include "http/server_int.h"
#include "model/timestamp.h"
#include "store/store.h"

static http_worker_t W0;
static h2o_globalconf_t globalconf;
static http_config_t cfg;
static api_shared_t shared;
static store_t *fixture; /* a second connection, for the fixtures */
static store_app_t app1, app2;
static char dburl[PATH_MAX + 16];

/* The requests h2o handed to the handler, in order: a HEAD response has
 * no body, so the response parser must know which ones were HEADs. */
#define SEEN_MAX 256
static struct {
    bool head;
    bool app2;    /* the request names the second app's key */
    bool fixture; /* its path names the first app's fixture lead */
    bool readyz;  /* its path is /readyz's (with or without the slash, a query) */
    bool board;   /* its path is the board's page ("/", a query) or under /board/ */
} seen[SEEN_MAX];
static int nseen;

static h2o_iovec_t req_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* The request handler: notes what the request is, then serves it. */
static void record_req(h2o_req_t *req, void *state)
{
    if (nseen < SEEN_MAX) {
        seen[nseen].head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
        /* As auth.c reads it: AppId, else X-Api-Key. */
        h2o_iovec_t key = req_header(req, "appid");
        if (key.base == NULL) key = req_header(req, "x-api-key");
        seen[nseen].app2 = h2o_memis(key.base, key.len, H2O_STRLIT(FUZZ_APP2_KEY));
        /* Ids are matched in any case (uuid_parse), in the path alone: one
         * in the query string names nothing (GET /?page=leads/ID is the
         * board's page, a 200 for anyone). */
        bool fx = false;
        size_t plen = req->query_at < req->path.len ? req->query_at : req->path.len;
        for (size_t i = 0; !fx && i + UUID_STRLEN <= plen; i++)
            fx = strncasecmp(req->path.base + i, FUZZ_LEAD_ID, UUID_STRLEN) == 0;
        seen[nseen].fixture = fx;
        size_t n = sizeof "/readyz" - 1;
        seen[nseen].readyz = req->path.len >= n && memcmp(req->path.base, "/readyz", n) == 0 &&
                             (req->path.len == n || strchr("/?", req->path.base[n]) != NULL);
        seen[nseen].board = (req->path.len >= 1 && req->path.base[0] == '/' &&
                             (req->path.len == 1 || req->path.base[1] == '?')) ||
                            (req->path.len > 7 && memcmp(req->path.base, "/board/", 7) == 0);
    }
    nseen++;
    api_handle(req, state);
}

/* Tenant isolation: the second app never sees the first app's records. */
static void check_no_fixture_ids(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *data = json_object_get(root, "data");
    json_t *one = data;
    size_t i = 0;
    do {
        if (json_is_array(data)) one = json_array_get(data, i);
        const char *id = json_string_value(json_object_get(one, "id"));
        FUZZ_CHECK(id == NULL || (strcmp(id, FUZZ_LEAD_ID) != 0 && strcmp(id, FUZZ_FOLLOW_ID) != 0),
                   "app 2 was shown app 1's record %s", id);
        i++;
    } while (json_is_array(data) && i < json_array_size(data));
    json_decref(root);
}

static void cleanup(void)
{
    if (W0.state != NULL) api_thread_fini(W0.state);
    W0.state = NULL;
    store_close(fixture);
    fixture = NULL;
}

static void ensure_fixtures(void)
{
    /* An input may have moved the fixture lead to the trash: purged here, so
     * that the lead made again below is the only one of its id (the server
     * never makes a live lead with a trashed one's id; this file alone
     * reuses ids). Nothing there (STORE_NOT_FOUND) is the usual case. */
    int prc = store_trash_purge(fixture, app1.id, FUZZ_LEAD_ID);
    if (prc != STORE_OK && prc != STORE_NOT_FOUND) {
        fprintf(stderr, "fuzz: cannot purge the fixture lead (%d)\n", prc);
        abort();
    }
    lead_t l;
    memset(&l, 0, sizeof l);
    memcpy(l.id, FUZZ_LEAD_ID, sizeof l.id);
    l.name = (text_ref_t){"Fixture lead", 12};
    l.probability = -1;
    l.created_at = l.updated_at = FUZZ_NOW_S * 1000;
    int rc = store_lead_create(fixture, app1.id, &l);
    bool made = rc == STORE_OK;
    if (rc != STORE_OK && rc != STORE_CONFLICT) {
        fprintf(stderr, "fuzz: cannot create the fixture lead (%d)\n", rc);
        abort();
    }
    follow_t f;
    memset(&f, 0, sizeof f);
    memcpy(f.id, FUZZ_FOLLOW_ID, sizeof f.id);
    memcpy(f.lead_id, FUZZ_LEAD_ID, sizeof f.lead_id);
    f.title = (text_ref_t){"Fixture follow", 14};
    f.has_due = true;
    f.due_at = (FUZZ_NOW_S + 86400) * 1000;
    f.created_at = f.updated_at = FUZZ_NOW_S * 1000;
    rc = store_follow_create(fixture, app1.id, &f);
    made |= rc == STORE_OK;
    if (rc != STORE_OK && rc != STORE_CONFLICT) {
        fprintf(stderr, "fuzz: cannot create the fixture follow (%d)\n", rc);
        abort();
    }
    /* Written behind the API's back: tell the response cache, as the
     * writer does after its commits. */
    if (made) {
        cache_touch_lead(app1.id, FUZZ_LEAD_ID);
        cache_touch_app(app1.id);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_maybe_print_tokens();
    signal(SIGPIPE, SIG_IGN);

    snprintf(dburl, sizeof dburl, "sqlite:%s/fuzz.db", fuzz_tmpdir());
    char err[256];
    fixture = store_open(dburl, err, sizeof err);
    if (fixture == NULL || store_migrate(fixture) != STORE_OK) {
        fprintf(stderr, "fuzz: cannot open %s: %s\n", dburl, fixture ? "migration failed" : err);
        abort();
    }
    store_key_t sk = {.pem = fuzz_key_pem(), .created_at = ts_now_ms(), .signed_until = STORE_KEY_UNTRACKED};
    if (store_key_add(fixture, &sk, 1) != STORE_OK) {
        fprintf(stderr, "fuzz: cannot store the signing key\n");
        abort();
    }
    int64_t now = ts_now_ms();
    if (store_app_create(fixture, FUZZ_APP_KEY, "fuzz", now, &app1) != STORE_OK ||
        store_app_create(fixture, FUZZ_APP2_KEY, "fuzz2", now, &app2) != STORE_OK) {
        fprintf(stderr, "fuzz: cannot create the apps\n");
        abort();
    }
    /* As crmd serve runs on SQLite: the response cache on (its default
     * size), and rate limiting on with limits no input reaches, so its
     * bookkeeping and headers are exercised. */
    cache_configure((size_t)16 << 20);
    ratelimit_configure(RATELIMIT_APP, 1e9, 1e9);
    ratelimit_configure(RATELIMIT_AUTH, 1e9, 1e9);
    ensure_fixtures();

    /* The same configuration http_serve builds (server.c), with the
     * handler wrapped to note HEAD requests, and one worker whose loop
     * this thread turns. */
    /* The keyring owns its copy of the test key (loaded again from the PEM). */
    const char *key_pem = fuzz_key_pem();
    keyring_t *keys = keyring_of_key(jwt_key_load(key_pem, strlen(key_pem)));
    if (keys == NULL) {
        fprintf(stderr, "fuzz: cannot make the keyring\n");
        abort();
    }
    shared = (api_shared_t){.db_url = dburl, .keys = keys, .log_requests = 1};
    cfg = (http_config_t){.host = "127.0.0.1",
                          .port = 0,
                          .threads = 1,
                          .max_body = API_MAX_BODY,
                          .thread_init = api_thread_init,
                          .thread_fini = api_thread_fini,
                          .handle = record_req,
                          .error_body = api_error_body,
                          .arg = &shared};
    http_config_setup(&globalconf, &cfg);
    W0.cfg = &cfg;
    W0.index = 0;
    W0.fd = -1;
    if (http_worker_init(&W0, &globalconf) != 0) {
        fprintf(stderr, "fuzz: api_thread_init failed\n");
        abort();
    }
    atexit(cleanup);
    return 0;
}

/* --- the response side ------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static buf_t out;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL) abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Reads what the server sent; returns true at end of stream. */
static bool drain(int fd)
{
    char tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n > 0) {
            buf_add(&out, tmp, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool lcequal(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

typedef struct header {
    const char *name, *value;
    size_t nlen, vlen;
} header_t;

#define HEADERS_MAX 64

/* Parses one response head at p[0..n): returns its length (through the
 * blank line), 0 if incomplete, and fails the run if it is not HTTP. */
static size_t parse_head(const char *p, size_t n, int *status, header_t *h, int *nh)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (end == NULL) {
        FUZZ_CHECK(n < 65536, "a response head over 64 KiB");
        return 0;
    }
    size_t hlen = (size_t)(end - p) + 4;
    FUZZ_CHECK(hlen > 13 && (memcmp(p, "HTTP/1.1 ", 9) == 0 || memcmp(p, "HTTP/1.0 ", 9) == 0) &&
                   p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
                   p[11] <= '9' && p[12] == ' ',
               "not an HTTP/1.x status line: %.*s", (int)(hlen > 80 ? 80 : hlen), p);
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *line = memmem(p, hlen, "\r\n", 2) + 2;
    *nh = 0;
    while (line < end + 2) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        FUZZ_CHECK(colon != NULL && colon > line, "a response header line without a name: %.*s",
                   (int)(eol - line), line);
        FUZZ_CHECK(*nh < HEADERS_MAX, "over %d response headers", HEADERS_MAX);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        h[*nh] = (header_t){line, v, (size_t)(colon - line), (size_t)(eol - v)};
        (*nh)++;
        line = eol + 2;
    }
    return hlen;
}

static const header_t *find(const header_t *h, int nh, const char *name)
{
    const header_t *found = NULL;
    for (int i = 0; i < nh; i++) {
        if (lcequal(h[i].name, h[i].nlen, name)) {
            FUZZ_CHECK(found == NULL, "two %s headers", name);
            found = &h[i];
        }
    }
    return found;
}

/* h2o 2.2 answers a request head it cannot parse (a bad request line or
 * header, folded headers, a head over its size limit) with this response,
 * written straight to the socket: no filter sees it, so crmd cannot give it
 * its JSON error form. It is allowed only as the last thing on the
 * connection, and only when no handler answered it. */
#define CANNED_400_HEAD                                                                                      \
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"           \
    "Content-Length: 11\r\n\r\n"
#define CANNED_400_BODY "Bad Request"

static void check_responses(bool eof)
{
    const char *p = out.p;
    size_t left = out.len;
    int i = 0; /* final responses seen */
    while (left > 0) {
        int status, nh;
        header_t h[HEADERS_MAX];
        size_t hlen = parse_head(p, left, &status, h, &nh);
        if (hlen == 0) {
            FUZZ_CHECK(!eof, "the server closed in the middle of a response head");
            return;
        }
        p += hlen;
        left -= hlen;
        if (status == 101) /* upgraded (h2c): HTTP/2 frames follow */
            return;
        if (status < 200) /* 100 Continue: interim */
            continue;
        /* A response the handler made, or (past those) one h2o made itself
         * (400 for a malformed request, 413 for a body over the limit). */
        bool by_handler = i < nseen;
        bool head = by_handler && i < SEEN_MAX && seen[i].head;
        i++;
        if (!by_handler && left == sizeof CANNED_400_BODY - 1 && memcmp(p, CANNED_400_BODY, left) == 0 &&
            hlen == sizeof CANNED_400_HEAD - 1 && memcmp(p - hlen, CANNED_400_HEAD, hlen) == 0)
            return; /* see CANNED_400_HEAD */
        bool readyz = by_handler && i - 1 < SEEN_MAX && seen[i - 1].readyz;
        /* The board's files are HTML, script, style and an image, each under its CSP. */
        bool board_file = by_handler && i - 1 < SEEN_MAX && seen[i - 1].board && status == 200;
        if (board_file)
            FUZZ_CHECK(find(h, nh, "content-security-policy") != NULL, "a board file without its CSP");
        FUZZ_CHECK(status != 500 && (status != 503 || readyz), "status %d: %.*s", status,
                   (int)(left > 600 ? 600 : left), p);
        if (status == 401)
            FUZZ_CHECK(find(h, nh, "www-authenticate") != NULL, "a 401 without WWW-Authenticate");
        if (status == 405) FUZZ_CHECK(find(h, nh, "allow") != NULL, "a 405 without Allow");
        const header_t *cl = find(h, nh, "content-length");
        const header_t *ct = find(h, nh, "content-type");
        FUZZ_CHECK(find(h, nh, "transfer-encoding") == NULL, "status %d sent chunked", status);
        size_t blen = 0;
        if (status == 204 || status == 304) {
            FUZZ_CHECK(cl == NULL || lcequal(cl->value, cl->vlen, "0"), "a %d with a body", status);
        } else {
            FUZZ_CHECK(cl != NULL, "status %d without Content-Length", status);
            char num[24];
            FUZZ_CHECK(cl->vlen > 0 && cl->vlen < sizeof num, "a bad Content-Length");
            memcpy(num, cl->value, cl->vlen);
            num[cl->vlen] = '\0';
            char *e;
            unsigned long long v = strtoull(num, &e, 10);
            FUZZ_CHECK(*e == '\0', "a bad Content-Length: %s", num);
            blen = (size_t)v;
            FUZZ_CHECK(blen > 0, "status %d with an empty body", status);
            FUZZ_CHECK(ct != NULL && (board_file || lcequal(ct->value, ct->vlen, "application/json")),
                       "status %d: Content-Type is %.*s", status, ct ? (int)ct->vlen : 6,
                       ct ? ct->value : "(none)");
        }
        /* Tenant isolation: app 2 never reaches app 1's lead. */
        bool as_app2 = by_handler && i - 1 < SEEN_MAX && seen[i - 1].app2;
        FUZZ_CHECK(!(as_app2 && seen[i - 1].fixture && status < 300),
                   "app 2 got %d on a path naming app 1's lead", status);
        if (head) continue;
        if (blen > left) {
            /* h2o's own error to a HEAD sends no body either. */
            FUZZ_CHECK(!eof || (!by_handler && left == 0), "the server closed in the middle of a body");
            return;
        }
        if (blen > 0 && !board_file) fuzz_check_json_body(status, p, blen);
        if (as_app2 && blen > 0 && status < 300) check_no_fixture_ids(p, blen);
        p += blen;
        left -= blen;
    }
}

/* --- one input ------------------------------------------------------------------ */

#define BUDGET_MS 5000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ensure_fixtures();
    nseen = 0;
    out.len = 0;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("fuzz: socketpair");
        abort();
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(W0.loop, sv[0], H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    /* Served under the memory guard, as crmd serve's connections are. */
    http_worker_admit(INT_MAX);
    http_worker_accept(&W0, sock);

    /* Send everything, then end the stream; keep turning the loop until h2o
     * has answered and closed the connection. */
    size_t sent = 0;
    bool shut = false, eof = false;
    int64_t deadline = mono_ms() + BUDGET_MS;
    for (int iter = 0;; iter++) {
        if (sent < size) {
            ssize_t n = write(sv[1], data + sent, size - sent);
            if (n > 0) sent += (size_t)n;
        }
        if (sent == size && !shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        h2o_evloop_run(W0.loop, iter < 1000 ? 0 : 1);
        if (!eof) eof = drain(sv[1]);
        if (eof && !http_conns_open(&W0.ctx)) break;
        FUZZ_CHECK(mono_ms() < deadline,
                   "the connection is still open %d ms after the client's end of stream", BUDGET_MS);
    }
    close(sv[1]);
    check_responses(true);
    return 0;
}
