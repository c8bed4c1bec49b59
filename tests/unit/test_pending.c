/*
 * test_pending.c: requests that wait for a store read (store.h's
 * STORE_PENDING), through the real request path: dispatch, auth, the lead
 * handler, the answer.
 *
 * The fake store's app_find, lead_get and revoked_since either complete at
 * once or, when told to, keep their callbacks and return STORE_PENDING; the
 * test completes them later, as a backend would from the event loop.
 * Requests come in two ways: over a real HTTP/1.1 connection (a socketpair
 * into an h2o context on the test's loop), to see the answer; or as a bare
 * h2o_req_t on its own pool, which the test clears as h2o does when it
 * disposes of a request (an HTTP/2 stream reset), to see that a read that
 * completes afterwards neither sends nor touches freed memory. Sending on
 * such a bare request would crash, so its tests pass only if nothing is
 * sent.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/dispatch.h"
#include "api/request.h"
#include "model/timestamp.h"

#define APP_KEY "pk_live_pending"
#define LEAD_ID "0190f3a2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"

/* --- the fake store ------------------------------------------------------------ */

enum { APP_FIND, LEAD_GET, POLL, KINDS };

typedef struct pending {
    store_async_t async;
    int64_t after; /* a poll's: revocations after this sequence number */
    store_app_t *app;
    store_lead_cb lead_cb;
    store_revoked_cb revoked_cb;
    void *ctx;
} pending_t;

static struct {
    store_t base;
    bool pend[KINDS]; /* this kind of read returns STORE_PENDING */
    int calls[KINDS];
    bool waiting[KINDS];
    store_rc_t rc[KINDS]; /* what a read that completes at once returns */
    pending_t p[KINDS];
    const char *revoke; /* the jti the next poll reports, as revocation 1 */
} F;

static const store_app_t APP = {.id = 7, .key = APP_KEY, .name = "Pending"};

static void fake_close(store_t *s)
{
    (void)s;
}

/* Completes a read of kind now (from the call) or keeps it for complete(). */
static int start(int kind, const pending_t *p)
{
    F.calls[kind]++;
    cr_assert(!F.waiting[kind], "two reads of one kind at once");
    F.p[kind] = *p;
    if (!F.pend[kind] || p->async.done == NULL) {
        if (kind == APP_FIND) *p->app = APP;
        return F.rc[kind]; /* no rows to pass: none of these tests reads them at once */
    }
    F.waiting[kind] = true;
    return STORE_PENDING;
}

static store_rc_t fake_app_find(store_t *s, const char *key, store_app_t *out, const store_async_t *async)
{
    (void)s;
    cr_expect_str_eq(key, APP_KEY);
    return start(APP_FIND, &(pending_t){.async = async ? *async : (store_async_t){0}, .app = out});
}

static store_rc_t fake_lead_get(store_t *s, int64_t app, const char *id, store_lead_cb cb, void *ctx,
                                const store_async_t *async)
{
    (void)s;
    cr_expect_eq(app, APP.id);
    cr_expect_str_eq(id, LEAD_ID);
    cr_assert(F.pend[LEAD_GET], "the lead read completes at once only in pending tests");
    return start(LEAD_GET,
                 &(pending_t){.async = async ? *async : (store_async_t){0}, .lead_cb = cb, .ctx = ctx});
}

static store_rc_t fake_revoked_since(store_t *s, int64_t after, store_revoked_cb cb, void *ctx,
                                     const store_async_t *async)
{
    (void)s;
    return start(POLL, &(pending_t){.async = async ? *async : (store_async_t){0},
                                    .after = after,
                                    .revoked_cb = cb,
                                    .ctx = ctx});
}

static const store_ops_t FAKE_OPS = {
    .close = fake_close,
    .app_find = fake_app_find,
    .lead_get = fake_lead_get,
    .revoked_since = fake_revoked_since,
};

/* Completes the waiting read of kind with rc, passing its row first (a
 * poll's even when it then fails: it failed part way). */
static void complete(int kind, store_rc_t rc)
{
    cr_assert(F.waiting[kind], "no read of kind %d waits", kind);
    F.waiting[kind] = false;
    pending_t *p = &F.p[kind];
    if (rc == STORE_OK && kind == APP_FIND) *p->app = APP;
    if (rc == STORE_OK && kind == LEAD_GET) {
        lead_t lead = {.id = LEAD_ID, .name = {"Pending lead", 12}, .probability = -1};
        lead.created_at = lead.updated_at = 1700000000000;
        p->lead_cb(p->ctx, &lead);
    }
    if (kind == POLL && F.revoke != NULL && p->after < 1) p->revoked_cb(p->ctx, 1, F.revoke);
    p->async.done(p->async.ctx, rc);
}

/* --- a server thread on the test's loop ------------------------------------------ */

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static h2o_evloop_t *loop;
static api_shared_t shared;
static jwt_key_t *key;
static api_thread_t *T;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    api_handle(req, T);
    return 0;
}

static char *token(const char *jti)
{
    jwt_claims_t c = {.iss = "crmd", .sub = "test", .app = APP_KEY};
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.iat = ts_now_ms() / 1000;
    c.exp = c.iat + 3600;
    char *tok = NULL;
    cr_assert_eq(jwt_sign(key, &c, &tok), JWT_OK);
    return tok;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the server: a client gone is a write error */
    char *pem = NULL;
    cr_assert_eq(jwt_key_generate(&pem), JWT_OK);
    key = jwt_key_load(pem, strlen(pem));
    free(pem);
    cr_assert_not_null(key);
    /* The keyring owns the key from here on; the test still signs with it. */
    shared = (api_shared_t){.db_url = "fake", .keys = keyring_of_key(key)};
    cr_assert_not_null(shared.keys);
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_handler_t *h = h2o_create_handler(h2o_config_register_path(host, "/", 0), sizeof *h);
    h->on_req = on_req;
    loop = h2o_evloop_create();
    h2o_context_init(&ctx, loop, &config);
    accept_ctx = (h2o_accept_ctx_t){.ctx = &ctx, .hosts = config.hosts};
    F.base.ops = &FAKE_OPS;
    T = api_thread_new(0, &shared, &ctx, &F.base);
    cr_assert_not_null(T);
}

static void teardown(void)
{
    api_thread_fini(T);
    keyring_free(shared.keys);
}

TestSuite(pending, .init = setup, .fini = teardown);

/* --- requests --------------------------------------------------------------------- */

/* Opens a connection to the thread and sends GET path with credentials. */
static int send_get(const char *path, const char *jti)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    h2o_accept(&accept_ctx, h2o_evloop_socket_create(loop, sv[0], H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION));
    char *tok = token(jti);
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "GET %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nAppId: %s\r\n\r\n", path, tok,
                     APP_KEY);
    free(tok);
    cr_assert_eq(write(sv[1], head, (size_t)n), n);
    return sv[1];
}

/* Turns the loop until cond holds (at most two seconds). */
#define TURN_UNTIL(cond)                                                                                     \
    do {                                                                                                     \
        time_t deadline_ = time(NULL) + 2;                                                                   \
        while (!(cond) && time(NULL) <= deadline_)                                                           \
            h2o_evloop_run(loop, 1);                                                                         \
        cr_assert(cond, "still not: %s", #cond);                                                             \
    } while (0)

static char got[8192];
static size_t got_len;

/* True once a whole response (head and Content-Length body) has come. */
static bool response_in(int fd)
{
    ssize_t n;
    while ((n = read(fd, got + got_len, sizeof got - 1 - got_len)) > 0)
        got_len += (size_t)n;
    got[got_len] = '\0';
    const char *end = strstr(got, "\r\n\r\n");
    const char *cl = strcasestr(got, "content-length:");
    return end != NULL && cl != NULL && got_len >= (size_t)(end + 4 - got) + strtoul(cl + 15, NULL, 10);
}

/* A bare request on its own pool, as api_handle sees one. */
static h2o_req_t *bare_get(const char *path)
{
    static h2o_req_t req;
    static char *tok;
    memset(&req, 0, sizeof req);
    h2o_mem_init_pool(&req.pool);
    req.method = h2o_iovec_init(H2O_STRLIT("GET"));
    req.path = h2o_iovec_init(path, strlen(path));
    req.query_at = SIZE_MAX;
    free(tok);
    tok = token("bare");
    char *authz = h2o_mem_alloc_pool(&req.pool, strlen(tok) + 8);
    int n = sprintf(authz, "Bearer %s", tok);
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_AUTHORIZATION, NULL, authz, (size_t)n);
    h2o_add_header_by_str(&req.pool, &req.headers, H2O_STRLIT("appid"), 0, NULL, H2O_STRLIT(APP_KEY));
    return &req;
}

/* --- tests ------------------------------------------------------------------------- */

Test(pending, reads_that_complete_later_are_answered_then)
{
    F.pend[APP_FIND] = F.pend[LEAD_GET] = true;
    int fd = send_get("/leads/" LEAD_ID, "later");
    TURN_UNTIL(F.waiting[APP_FIND]);
    cr_expect(api_thread_busy(T), "a thread waiting for a read is busy");
    complete(APP_FIND, STORE_OK);
    cr_expect(F.waiting[LEAD_GET], "authenticated, the handler started its read");
    h2o_evloop_run(loop, 10);
    cr_expect(!response_in(fd) && got_len == 0, "answered before the read completed: %s", got);
    cr_expect(api_thread_busy(T));
    complete(LEAD_GET, STORE_OK);
    TURN_UNTIL(response_in(fd));
    cr_expect(strncmp(got, "HTTP/1.1 200 ", 13) == 0, "%s", got);
    cr_expect_not_null(strstr(got, "{\"data\":{\"id\":\"" LEAD_ID "\""), "%s", got);
    cr_expect_not_null(strstr(got, "Pending lead"), "%s", got);
    cr_expect(!api_thread_busy(T));
    close(fd);
}

Test(pending, a_failed_read_that_completes_later_is_answered_with_its_error)
{
    F.pend[LEAD_GET] = true;
    int fd = send_get("/leads/" LEAD_ID, "missing");
    TURN_UNTIL(F.waiting[LEAD_GET]);
    complete(LEAD_GET, STORE_NOT_FOUND);
    TURN_UNTIL(response_in(fd));
    cr_expect(strncmp(got, "HTTP/1.1 404 ", 13) == 0, "%s", got);
    cr_expect_not_null(strstr(got, "Lead Not Found"), "%s", got);
    cr_expect(!api_thread_busy(T));
    close(fd);
}

Test(pending, an_app_lookup_completed_after_disposal_goes_no_further)
{
    F.pend[APP_FIND] = true;
    h2o_req_t *req = bare_get("/leads/" LEAD_ID);
    api_handle(req, T);
    cr_assert(F.waiting[APP_FIND]);
    cr_expect(api_thread_busy(T));
    h2o_mem_clear_pool(&req->pool); /* h2o lets go of the request */
    complete(APP_FIND, STORE_OK);
    cr_expect_eq(F.calls[LEAD_GET], 0, "the handler ran for a request h2o had disposed of");
    cr_expect(!api_thread_busy(T));
    cr_expect_not_null(T->spare, "the request did not end");
}

Test(pending, a_lead_read_completed_after_disposal_renders_but_does_not_send)
{
    F.pend[LEAD_GET] = true;
    h2o_req_t *req = bare_get("/leads/" LEAD_ID);
    api_handle(req, T);
    cr_assert(F.waiting[LEAD_GET]);
    h2o_mem_clear_pool(&req->pool);
    complete(LEAD_GET, STORE_OK); /* the row goes into the request's own buffer */
    cr_expect(!api_thread_busy(T));
    cr_assert_not_null(T->spare, "the request did not end");
    /* The ended request, kept for the next, rendered the row it waited for. */
    cr_expect(T->spare->out.len > 0 && memmem(T->spare->out.buf, T->spare->out.len, LEAD_ID, 36));
}

Test(pending, a_client_gone_while_its_read_waits)
{
    F.pend[LEAD_GET] = true;
    int fd = send_get("/leads/" LEAD_ID, "gone");
    TURN_UNTIL(F.waiting[LEAD_GET]);
    close(fd);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(loop, 1);
    complete(LEAD_GET, STORE_OK);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(loop, 1);
    cr_expect(!api_thread_busy(T));
}

/* A GET of the lead with a token whose jti is jti, its lead read completed
 * when it starts; returns the status line's code. */
static int get_lead(const char *jti)
{
    F.pend[LEAD_GET] = true;
    got_len = 0;
    int fd = send_get("/leads/" LEAD_ID, jti);
    TURN_UNTIL(F.waiting[LEAD_GET] || response_in(fd));
    if (F.waiting[LEAD_GET]) complete(LEAD_GET, STORE_OK);
    TURN_UNTIL(response_in(fd));
    close(fd);
    return atoi(got + 9);
}

/* Waits until the thread polls again (250 ms after its last poll), while
 * what it knows is still fresh enough to authenticate (a second). */
static void next_poll_due(void)
{
    usleep(400 * 1000);
}

/* Waits until what the thread knows of revocations is too old to trust. */
static void revocations_stale(void)
{
    usleep(1050 * 1000);
}

Test(pending, a_revocation_poll_that_waits_keeps_the_thread_busy_not_the_request)
{
    cr_expect_eq(get_lead("revoke-me"), 200); /* the first poll, at once */
    next_poll_due();
    F.pend[POLL] = true;
    cr_expect_eq(get_lead("revoke-me"), 200, "%s", got);
    cr_expect(F.waiting[POLL], "the poll is the thread's: the request went on without it");
    cr_expect(api_thread_busy(T), "the poll still waits");
    /* The poll reports the token's revocation: the token is refused from now on. */
    F.revoke = "revoke-me";
    complete(POLL, STORE_OK);
    cr_expect(!api_thread_busy(T));
    cr_expect_eq(get_lead("revoke-me"), 401, "%s", got);
    cr_expect_not_null(strstr(got, "revoked"), "%s", got);
}

/* Sends a GET with a token whose jti is jti, which must wait for the
 * thread's poll before its token is checked; the poll then reports jti
 * revoked, and the request is refused. */
static void expect_refused_by_the_poll_it_waited_for(const char *jti)
{
    F.pend[POLL] = true;
    got_len = 0;
    int finds = F.calls[APP_FIND];
    int fd = send_get("/leads/" LEAD_ID, jti);
    TURN_UNTIL(F.waiting[POLL]);
    h2o_evloop_run(loop, 10);
    cr_expect_eq(F.calls[APP_FIND], finds, "authenticated before the revocations were known");
    cr_expect(!response_in(fd) && got_len == 0, "answered before the poll: %s", got);
    cr_expect(api_thread_busy(T));
    F.revoke = jti;
    complete(POLL, STORE_OK);
    TURN_UNTIL(response_in(fd));
    cr_expect(strncmp(got, "HTTP/1.1 401 ", 13) == 0, "%s", got);
    cr_expect_not_null(strstr(got, "revoked"), "%s", got);
    close(fd);
    cr_expect(!api_thread_busy(T));
}

/* A revocation holds within a second even when polls complete later: a
 * request that finds the thread's last poll over a second old waits for
 * the next, and is refused by the revocation it brings. */
Test(pending, a_request_after_a_quiet_second_waits_for_the_poll)
{
    cr_expect_eq(get_lead("revoke-later"), 200); /* the first poll, at once */
    revocations_stale();
    expect_refused_by_the_poll_it_waited_for("revoke-later");
}

Test(pending, a_thread_that_has_not_polled_yet_authenticates_only_after_its_poll)
{
    expect_refused_by_the_poll_it_waited_for("first");
}

Test(pending, a_poll_that_fails_is_a_503_for_the_requests_waiting_for_it)
{
    F.pend[POLL] = true;
    int fds[2];
    for (int i = 0; i < 2; i++)
        fds[i] = send_get("/leads/" LEAD_ID, "waits");
    TURN_UNTIL(F.waiting[POLL]);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run(loop, 1);
    cr_expect_eq(F.calls[POLL], 1, "one poll for both");
    complete(POLL, STORE_UNAVAILABLE);
    for (int i = 0; i < 2; i++) {
        got_len = 0;
        TURN_UNTIL(response_in(fds[i]));
        cr_expect(strncmp(got, "HTTP/1.1 503 ", 13) == 0, "%s", got);
        close(fds[i]);
    }
    cr_expect_eq(F.calls[APP_FIND], 0);
    cr_expect(!api_thread_busy(T));
}

Test(pending, a_thread_that_cannot_poll_does_not_authenticate)
{
    F.rc[POLL] = STORE_UNAVAILABLE;
    int fd = send_get("/leads/" LEAD_ID, "unknown");
    TURN_UNTIL(response_in(fd));
    cr_expect(strncmp(got, "HTTP/1.1 503 ", 13) == 0, "%s", got);
    cr_expect_eq(F.calls[APP_FIND], 0);
    close(fd);
}

Test(pending, a_poll_that_fails_part_way_applies_what_it_read_and_reads_it_again)
{
    cr_expect_eq(get_lead("victim"), 200); /* verified and cached */
    next_poll_due();
    F.pend[POLL] = true;
    cr_expect_eq(get_lead("victim"), 200); /* from the cache, while the poll runs */
    F.revoke = "victim";
    complete(POLL, STORE_ERROR); /* the row came, then the poll failed */
    cr_expect_eq(get_lead("victim"), 401, "a revoked token stayed cached: %s", got);
    /* The next poll asks again from the last one that succeeded. */
    next_poll_due();
    F.pend[LEAD_GET] = true;
    got_len = 0;
    int fd = send_get("/leads/" LEAD_ID, "other");
    TURN_UNTIL(F.waiting[POLL]);
    cr_expect_eq(F.p[POLL].after, 0, "the failed poll moved the sequence number on");
    complete(POLL, STORE_OK);
    TURN_UNTIL(F.waiting[LEAD_GET]);
    complete(LEAD_GET, STORE_OK);
    TURN_UNTIL(response_in(fd));
    close(fd);
    cr_expect_eq(get_lead("victim"), 401);
    cr_expect(!api_thread_busy(T));
}
