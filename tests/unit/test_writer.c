/*
 * test_writer.c: group commit (src/api/writer.c) against a fake store.
 *
 * The fake's batch_begin, batch_end, lead_create and lead_update count
 * their calls, note which batch each write ran in, and fail on demand; its
 * first batch_begin can be held, so that the test queues writes while the
 * writer is busy and knows they reach it together. Writes come back to a
 * worker-side receiver on the test's own event loop, as they would to a
 * server thread. Their requests stand on a bare h2o pool that is cleared
 * (h2o's disposal) when the answer comes back, before it is sent, so
 * answering them sends nothing and the test reads each answer from the
 * write itself (and its log line, which says the client was gone). A test
 * can dispose of a request earlier: before it is submitted, or while it
 * waits in the queue.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/cache.h"
#include "api/change.h"
#include "api/request.h"
#include "api/resource.h"
#include "api/respond.h"
#include "api/writer.h"

#define APP 7
#define LEAD_A "0190f3a2-7c1e-7b3a-9d4e-00000000000a"
#define LEAD_B "0190f3a2-7c1e-7b3a-9d4e-00000000000b"
#define MISSING "0190f3a2-7c1e-7b3a-9d4e-0000000000ff"
#define MAX_WRITES 16

/* --- the fake store ---------------------------------------------------------- */

static struct {
    store_t base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int begins, ends, closes;
    bool hold_first, released; /* the first batch_begin waits for release */
    store_rc_t begin_rc, end_rc;
    int commits[MAX_WRITES];  /* each batch_end's commit argument, in order */
    int runs;                 /* lead writes run, in order */
    int batch_of[MAX_WRITES]; /* the batch each of them ran in */
    int tidies, tidy_more;    /* search_tidy's calls, and how many of them find work */
    int tidies_in_batch;      /* calls made while a batch was open */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void fake_close(store_t *s)
{
    (void)s;
    F.closes++;
}

static store_rc_t fake_batch_begin(store_t *s)
{
    (void)s;
    pthread_mutex_lock(&F.mu);
    F.begins++;
    pthread_cond_broadcast(&F.cv);
    while (F.hold_first && F.begins == 1 && !F.released)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
    return F.begin_rc;
}

static store_rc_t fake_batch_end(store_t *s, int commit)
{
    (void)s;
    cr_assert_lt(F.ends, MAX_WRITES);
    F.commits[F.ends++] = commit;
    if (!commit) return STORE_OK;
    return F.end_rc;
}

static void note_run(void)
{
    cr_assert_lt(F.runs, MAX_WRITES);
    F.batch_of[F.runs++] = F.begins;
}

static store_rc_t fake_lead_create(store_t *s, int64_t app, const lead_t *lead)
{
    cr_expect(s == &F.base && app == APP && lead != NULL);
    note_run();
    return STORE_OK;
}

static store_rc_t fake_lead_update(store_t *s, int64_t app, const char *id, const lead_patch_t *patch,
                                   int64_t now, store_lead_cb cb, void *ctx)
{
    cr_expect(s == &F.base && app == APP && patch != NULL && now >= 0 && cb == NULL && ctx == NULL);
    note_run();
    return strcmp(id, MISSING) == 0 ? STORE_NOT_FOUND : STORE_OK;
}

/* Only what the writer calls: any other call is a NULL function, a crash. */
/* The writer purges expired idempotency keys between batches: none here. */
static store_rc_t fake_idem_expire(store_t *s, int64_t before, int limit, int *purged)
{
    (void)s, (void)before, (void)limit;
    *purged = 0;
    return STORE_OK;
}

/* And the trash's leads past their retention (setup's --trash-retention 0:
 * what an earlier run left there): none here. */
static store_rc_t fake_trash_due(store_t *s, int64_t before, int limit, store_trash_due_cb cb, void *ctx)
{
    (void)s, (void)before, (void)limit, (void)cb, (void)ctx;
    return STORE_OK;
}

/* The search index's merge steps: the first F.tidy_more find work. */
static store_rc_t fake_search_tidy(store_t *s, int pages, bool *more)
{
    cr_expect(s == &F.base && pages > 0);
    pthread_mutex_lock(&F.mu);
    if (F.begins != F.ends) F.tidies_in_batch++;
    *more = F.tidies++ < F.tidy_more;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    return STORE_OK;
}

static const store_ops_t FAKE_OPS = {.close = fake_close,
                                     .idem_expire = fake_idem_expire,
                                     .trash_due = fake_trash_due,
                                     .search_tidy = fake_search_tidy,
                                     .batch_begin = fake_batch_begin,
                                     .batch_end = fake_batch_end,
                                     .lead_create = fake_lead_create,
                                     .lead_update = fake_lead_update};

/* --- writes, and the worker they come back to ------------------------------------ */

static void run_create(store_t *s, api_write_t *w)
{
    store_rc_t rc = store_lead_create(s, w->app, &w->p.lead.v);
    if (rc == STORE_OK) jw_lit(&w->out, "{\"created\":true}");
    api_write_answer(w, rc, 201, "Lead Not Found", "No such lead.");
}

static void run_update(store_t *s, api_write_t *w)
{
    store_rc_t rc = store_lead_update(s, w->app, w->id, &w->p.lead, w->now, NULL, NULL);
    if (rc == STORE_OK) jw_lit(&w->out, "{\"updated\":true}");
    api_write_answer(w, rc, 200, "Lead Not Found", "No such lead.");
}

/* A create whose change is made, but what follows from it cannot be
 * recorded (change.h): its whole batch must be undone. */
static void run_create_unrecorded(store_t *s, api_write_t *w)
{
    store_rc_t rc = store_lead_create(s, w->app, &w->p.lead.v);
    cr_assert_eq(rc, STORE_OK);
    jw_lit(&w->out, "{\"created\":true}");
    api_change_fail(w, STORE_UNAVAILABLE);
}

static const api_route_t CREATE = {METHOD_POST, "/leads", NULL, .stale = API_STALE_APP};
static const api_route_t UPDATE = {METHOD_PUT, "/leads/{id}", NULL, .stale = API_STALE_LEAD | API_STALE_APP};

static api_shared_t shared = {.log_requests = 1};
static api_thread_t T;
static h2o_evloop_t *loop;
static h2o_multithread_queue_t *queue;
static h2o_context_t ctx; /* only what the request log uses: the loop, a timeout */
static h2o_req_t reqs[MAX_WRITES];
static bool disposed[MAX_WRITES];
static api_req_t *req_of[MAX_WRITES]; /* each write's request (all live until answered) */
static int submitted, answered;
static bool next_alone; /* the writes submitted now run alone (api_write_t.alone) */
static struct {
    int status;
    char body[256];
} answers[MAX_WRITES];

/* h2o lets go of request i (once). */
static void dispose(int i)
{
    if (disposed[i]) return;
    disposed[i] = true;
    h2o_mem_clear_pool(&reqs[i].pool);
}

/* The worker's receiver: notes each answer, then lets the writer answer
 * and free it as a server thread would. */
static void on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    for (h2o_linklist_t *l = messages->next; l != messages; l = l->next) {
        api_write_t *w = H2O_STRUCT_FROM_MEMBER(api_write_t, msg.link, l);
        /* The latest write of that request: an ended request's state is
         * reused by the next one. */
        int i = submitted - 1;
        while (i >= 0 && req_of[i] != w->r)
            i--;
        cr_assert_geq(i, 0, "an answer for a write never submitted");
        answers[i].status = w->status;
        snprintf(answers[i].body, sizeof answers[i].body, "%.*s", (int)w->out.len, w->out.buf);
        answered++;
        dispose(i);
    }
    api_writes_done(receiver, messages);
}

static void setup(void)
{
    memset(&F.base, 0, sizeof F.base);
    F.base.ops = &FAKE_OPS;
    F.begin_rc = F.end_rc = STORE_OK;
    F.tidies = F.tidy_more = F.tidies_in_batch = 0;
    cache_configure(1 << 20);
    loop = h2o_evloop_create();
    queue = h2o_multithread_create_queue(loop);
    T.shared = &shared;
    h2o_multithread_register_receiver(queue, &T.done, on_done);
    /* The log's flush timer never fires during a test: the lines stay in
     * T.log.buf to be read. */
    ctx.loop = loop;
    h2o_timeout_init(loop, &ctx.hundred_ms_timeout, 3600 * 1000);
    api_log_init(&T.log, &ctx);
    api_writer_configure(API_WRITE_QUEUE_DEFAULT, API_WRITE_QUEUE_BYTES);
    api_writer_configure_trash(0);
}

static void teardown(void)
{
    if (h2o_timeout_is_linked(&T.log.flush)) h2o_timeout_unlink(&T.log.flush);
    api_writer_stop();
    h2o_multithread_unregister_receiver(queue, &T.done);
    api_req_thread_fini(&T);
}

TestSuite(writer, .init = setup, .fini = teardown);

/* When h2o lets go of a write's request: when its answer comes back (the
 * client stayed), before it is submitted, or right after. */
enum gone { GONE_AT_ANSWER, GONE_BEFORE, GONE_AFTER };

/* Submits a write of route for lead id (NULL for none) with extra bytes of
 * text, its request disposed of at gone. Returns its index in answers[]. */
static int submit_full(const api_route_t *route, const char *id, api_write_fn fn, enum gone gone,
                       size_t extra)
{
    int i = submitted++;
    cr_assert_lt(i, MAX_WRITES);
    h2o_mem_init_pool(&reqs[i].pool);
    disposed[i] = false;
    reqs[i].method = h2o_iovec_init(H2O_STRLIT("POST"));
    reqs[i].path = h2o_iovec_init(H2O_STRLIT("/leads"));
    api_req_t *r = api_req_new(&T, &reqs[i]);
    cr_assert_not_null(r);
    r->route = route;
    r->app.id = APP;
    snprintf(r->app.key, sizeof r->app.key, "pk_test_%d", i);
    req_of[i] = r;
    if (id != NULL) snprintf(r->id, sizeof r->id, "%s", id);
    api_write_t *w = api_write_new(r, fn, extra);
    cr_assert_not_null(w);
    w->alone = next_alone;
    cr_expect_eq(w->stale, route->stale);
    if (gone == GONE_BEFORE) dispose(i);
    api_write_submit(r, w);
    if (gone == GONE_AFTER) dispose(i);
    return i;
}

static int submit_at(const api_route_t *route, const char *id, api_write_fn fn, bool early)
{
    return submit_full(route, id, fn, early ? GONE_BEFORE : GONE_AT_ANSWER, 0);
}

static int submit(const api_route_t *route, const char *id, api_write_fn fn)
{
    return submit_at(route, id, fn, false);
}

/* The request log's line of write i (its app key is pk_test_i), or NULL. */
static const char *log_line(int i)
{
    static char line[512];
    char tag[32];
    snprintf(tag, sizeof tag, "app=pk_test_%d", i);
    T.log.buf[T.log.len < sizeof T.log.buf ? T.log.len : sizeof T.log.buf - 1] = '\0';
    const char *at = strstr(T.log.buf, tag);
    if (at == NULL) return NULL;
    const char *start = at, *end = strchr(at, '\n');
    while (start > T.log.buf && start[-1] != '\n')
        start--;
    snprintf(line, sizeof line, "%.*s", (int)((end ? end : at + strlen(at)) - start), start);
    return line;
}

/* Expects write i's log line to hold want (a status and what follows it). */
static void expect_logged(int i, const char *want)
{
    const char *line = log_line(i);
    cr_expect(line != NULL && strstr(line, want) != NULL, "write %d: log line %s lacks '%s'", i,
              line ? line : "(none)", want);
}

static void wait_answers(int n)
{
    time_t deadline = time(NULL) + 5;
    while (answered < n && time(NULL) < deadline)
        h2o_evloop_run(loop, 10);
    cr_assert_eq(answered, n, "%d of %d writes answered", answered, n);
    cr_expect_eq(T.writes_in_flight, 0);
}

/* Holds the writer in its first batch, until release(). */
static void hold_first_batch(void)
{
    F.hold_first = true;
    submit(&CREATE, NULL, run_create);
    pthread_mutex_lock(&F.mu);
    while (F.begins == 0)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
}

static void release(void)
{
    pthread_mutex_lock(&F.mu);
    F.released = true;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

static uint64_t lead_gen(const char *id)
{
    cache_key_t k = {.kind = CACHE_LEAD, .app = APP};
    snprintf(k.id, sizeof k.id, "%s", id);
    return cache_generation(&k);
}

static uint64_t lists_gen(void)
{
    return cache_generation(&(cache_key_t){.kind = CACHE_LEADS, .app = APP});
}

/* --- tests ----------------------------------------------------------------------- */

Test(writer, writes_queued_together_share_one_batch)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    for (int i = 0; i < 3; i++)
        submit(&CREATE, NULL, run_create);
    cr_expect_eq(T.writes_in_flight, 4);
    release();
    wait_answers(4);
    cr_expect_eq(F.begins, 2, "one batch for the held write, one for the three queued meanwhile");
    cr_expect_eq(F.ends, 2);
    cr_expect(F.commits[0] == 1 && F.commits[1] == 1, "both batches committed");
    cr_expect_eq(F.runs, 4);
    cr_expect_eq(F.batch_of[0], 1);
    for (int i = 1; i < 4; i++) {
        cr_expect_eq(F.batch_of[i], 2, "write %d ran in batch %d", i, F.batch_of[i]);
        cr_expect_eq(answers[i].status, 201);
        cr_expect_str_eq(answers[i].body, "{\"created\":true}");
    }
}

Test(writer, a_failed_write_is_answered_alone)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    uint64_t a = lead_gen(LEAD_A), missing = lead_gen(MISSING), lists = lists_gen();
    int ok = submit(&UPDATE, LEAD_A, run_update);
    int bad = submit(&UPDATE, MISSING, run_update);
    int created = submit(&CREATE, NULL, run_create);
    release();
    wait_answers(4);
    cr_expect_eq(F.begins, 2);
    cr_expect_eq(F.batch_of[ok], 2);
    cr_expect_eq(F.batch_of[bad], 2);
    cr_expect_eq(F.batch_of[created], 2);
    cr_expect_eq(answers[ok].status, 200);
    cr_expect_str_eq(answers[ok].body, "{\"updated\":true}");
    cr_expect_eq(answers[bad].status, 404);
    cr_expect(strstr(answers[bad].body, "\"code\":\"not_found\"") &&
                  strstr(answers[bad].body, "No such lead."),
              "%s", answers[bad].body);
    cr_expect_eq(answers[created].status, 201);
    /* Only what was acknowledged is stale: lead A and the app's lists. */
    cr_expect_neq(lead_gen(LEAD_A), a);
    cr_expect_eq(lead_gen(MISSING), missing, "a failed write made its lead stale");
    cr_expect_neq(lists_gen(), lists);
}

Test(writer, a_write_that_runs_alone_has_a_batch_of_its_own_undone_when_it_fails)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    int before = submit(&CREATE, NULL, run_create);
    next_alone = true;
    int lone = submit(&UPDATE, MISSING, run_update);
    int good = submit(&UPDATE, LEAD_A, run_update);
    next_alone = false;
    int after[2] = {submit(&CREATE, NULL, run_create), submit(&CREATE, NULL, run_create)};
    release();
    wait_answers(6);
    cr_expect_eq(F.begins, 5, "the held batch, one before, one for each write alone, one after");
    cr_expect_eq(F.batch_of[before], 2);
    cr_expect_eq(F.batch_of[lone], 3);
    cr_expect_eq(F.batch_of[good], 4);
    cr_expect_eq(F.batch_of[after[0]], 5);
    cr_expect_eq(F.batch_of[after[1]], 5);
    const int commits[] = {1, 1, 0, 1, 1};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(F.commits[i], commits[i], "batch %d: commit %d", i + 1, F.commits[i]);
    cr_expect_eq(answers[lone].status, 404);
    cr_expect_eq(answers[good].status, 200);
    cr_expect_eq(answers[after[1]].status, 201);
}

Test(writer, a_failed_commit_acknowledges_nothing)
{
    static const char *const ids[] = {LEAD_A, LEAD_B, MISSING};
    uint64_t gens[3], lists = lists_gen();
    F.end_rc = STORE_ERROR;
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    for (int i = 0; i < 3; i++) {
        gens[i] = lead_gen(ids[i]);
        submit(&UPDATE, ids[i], run_update);
    }
    release();
    wait_answers(4);
    cr_expect_eq(F.ends, 2);
    /* Every write that had succeeded is a 503 (retry); the one that
     * failed by itself (its lead is missing) keeps its own answer. */
    for (int i = 0; i < 4; i++) {
        int want = i == 3 ? 404 : 503;
        cr_expect_eq(answers[i].status, want, "write %d: %d", i, answers[i].status);
        if (want == 503)
            cr_expect(strstr(answers[i].body, "\"code\":\"service_unavailable\""), "%s", answers[i].body);
    }
    for (int i = 0; i < 3; i++)
        cr_expect_eq(lead_gen(ids[i]), gens[i], "a write that was not acknowledged made %s stale", ids[i]);
    cr_expect_eq(lists_gen(), lists);
}

Test(writer, a_change_that_cannot_be_recorded_undoes_its_whole_batch)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    uint64_t a = lead_gen(LEAD_A);
    int fine = submit(&UPDATE, LEAD_A, run_update);
    int unrecorded = submit(&CREATE, NULL, run_create_unrecorded);
    release();
    wait_answers(3);
    cr_expect_eq(F.ends, 2);
    cr_expect(F.commits[0] == 1 && F.commits[1] == 0, "the first batch only committed");
    cr_expect_eq(F.batch_of[fine], 2);
    cr_expect_eq(F.batch_of[unrecorded], 2);
    for (int i = 1; i < 3; i++) {
        cr_expect_eq(answers[i].status, 503, "write %d: %d", i, answers[i].status);
        cr_expect(strstr(answers[i].body, "\"code\":\"service_unavailable\""), "%s", answers[i].body);
    }
    cr_expect_eq(lead_gen(LEAD_A), a, "nothing of the undone batch is stale");
}

Test(writer, a_failed_begin_runs_nothing)
{
    F.begin_rc = STORE_UNAVAILABLE;
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    uint64_t a = lead_gen(LEAD_A);
    int w = submit(&UPDATE, LEAD_A, run_update);
    wait_answers(1);
    cr_expect_eq(F.runs, 0);
    cr_expect_eq(F.ends, 0, "no transaction to end");
    cr_expect_eq(answers[w].status, 503);
    cr_expect_eq(lead_gen(LEAD_A), a);
}

Test(writer, stopping_finishes_what_is_queued_then_closes_the_store)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    for (int i = 0; i < 5; i++)
        submit(&UPDATE, LEAD_A, run_update);
    release();
    api_writer_stop(); /* returns once the queue is empty and the thread has ended */
    cr_expect_eq(F.runs, 6);
    cr_expect_eq(F.ends, F.begins);
    cr_expect_eq(F.closes, 1);
    wait_answers(6);
    for (int i = 1; i < 6; i++)
        cr_expect_eq(answers[i].status, 200);
    api_writer_stop(); /* a second stop is harmless */
    cr_expect_eq(F.closes, 1);
}

Test(writer, without_a_writer_thread_a_write_runs_in_place)
{
    T.store = &F.base;
    /* The request is gone before it is answered: answering it sends nothing. */
    submit_at(&CREATE, NULL, run_create, true);
    /* Answered before submit returned: nothing went through the queue. */
    cr_expect_eq(answered, 0, "the receiver saw a write that never left the thread");
    cr_expect_eq(F.begins, 1);
    cr_expect_eq(F.ends, 1);
    cr_expect_eq(F.runs, 1);
    cr_expect_eq(T.writes_in_flight, 0);
    cr_expect_not_null(T.spare, "the request ended");
}

Test(writer, every_answered_write_is_logged_also_when_its_client_left)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    int ok = submit(&CREATE, NULL, run_create);
    wait_answers(1);
    cr_expect_eq(answers[ok].status, 201);
    /* The client went away before the answer: committed, and logged so. */
    expect_logged(ok, "POST /leads 201 ");
    expect_logged(ok, " client=gone");
}

Test(writer, a_write_whose_client_left_before_it_ran_is_not_run)
{
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    uint64_t lists = lists_gen();
    int gone = submit_full(&CREATE, NULL, run_create, GONE_AFTER, 0);
    int early = submit_full(&CREATE, NULL, run_create, GONE_BEFORE, 0);
    int stays = submit(&CREATE, NULL, run_create);
    release();
    wait_answers(4);
    cr_expect_eq(F.runs, 2, "the held write and the one whose client stayed");
    cr_expect_eq(answers[gone].status, API_STATUS_CLIENT_GONE);
    cr_expect_eq(answers[early].status, API_STATUS_CLIENT_GONE);
    cr_expect_eq(answers[stays].status, 201);
    expect_logged(gone, "POST /leads 499 ");
    expect_logged(gone, " client=gone");
    expect_logged(early, "POST /leads 499 ");
    /* Only what ran and was acknowledged made the lists stale. */
    cr_expect_neq(lists_gen(), lists);
}

Test(writer, a_full_queue_answers_503_at_once_and_runs_nothing_of_it)
{
    api_writer_configure(3, API_WRITE_QUEUE_BYTES);
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch(); /* the writer holds one, running */
    submit(&CREATE, NULL, run_create);
    submit(&CREATE, NULL, run_create);
    cr_expect_eq(T.writes_in_flight, 3);
    /* Disposed of before, so that its answer, sent at once, is only logged. */
    int refused = submit_full(&CREATE, NULL, run_create, GONE_BEFORE, 0);
    cr_expect_eq(T.writes_in_flight, 3, "the refused write went nowhere");
    expect_logged(refused, "POST /leads 503 ");
    release();
    wait_answers(3);
    cr_expect_eq(F.runs, 3);
    /* Room again once the batch is done. */
    int later = submit(&CREATE, NULL, run_create);
    wait_answers(4);
    cr_expect_eq(answers[later].status, 201);
}

Test(writer, the_queue_is_bounded_in_bytes_too)
{
    api_writer_configure(API_WRITE_QUEUE_DEFAULT, 3 * sizeof(api_write_t) + 1000);
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    submit_full(&CREATE, NULL, run_create, GONE_AT_ANSWER, 900);
    int refused = submit_full(&CREATE, NULL, run_create, GONE_BEFORE, 200);
    expect_logged(refused, "POST /leads 503 ");
    int fits = submit_full(&CREATE, NULL, run_create, GONE_AT_ANSWER, 50);
    release();
    wait_answers(3);
    cr_expect_eq(F.runs, 3);
    cr_expect_eq(answers[fits].status, 201);
}

Test(writer, writes_that_run_alone_leave_room_for_the_others)
{
    /* Review rv86: two imports near 16 MiB (one running, one waiting)
     * left less of the 32 MiB than any write takes, and every other app's
     * write was a 503 while they lasted. */
    const size_t max = 64 * sizeof(api_write_t);
    api_writer_configure(API_WRITE_QUEUE_DEFAULT, max);
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    hold_first_batch();
    size_t each = (max - 3 * sizeof(api_write_t) - 100) / 2;
    next_alone = true;
    int first = submit_full(&CREATE, NULL, run_create, GONE_AT_ANSWER, each);
    /* Disposed of before, so that an answer sent at once is only logged;
     * a write that was queued is then not run, and logged 499. */
    int second = submit_full(&CREATE, NULL, run_create, GONE_BEFORE, each);
    next_alone = false;
    int other = submit_full(&CREATE, NULL, run_create, GONE_BEFORE, 0);
    expect_logged(second, "POST /leads 503 ");
    release();
    wait_answers(3);
    cr_expect_eq(answers[first].status, 201);
    expect_logged(other, "POST /leads 499 "); /* queued (a 503 before) */
}

static void decode_lead(const json_t *root, h2o_iovec_t body, bool creating, api_patch_t *p,
                        text_ref_t *texts[API_PATCH_TEXTS], verrs_t *errs)
{
    lead_decode_body(root, body.base, body.len, creating, &p->lead, errs);
    texts[0] = &p->lead.v.name;
    texts[1] = &p->lead.v.source;
}

/* Whether t lies in w's own allocation. */
static bool owned(const api_write_t *w, text_ref_t t)
{
    return t.ptr >= w->text && t.ptr + t.len <= (const char *)w + w->size;
}

Test(writer, a_decoded_write_holds_its_own_text_and_not_the_body)
{
    static const api_route_t CREATE_BODY = {METHOD_POST, "/leads", NULL, .body_max = 1 << 20};
    static const char body[] = "{\"lead\":{\"name\":\"  Acme  \",\"source\":\"web\",\"value\":5}}";
    T.store = &F.base;
    int i = submitted++;
    h2o_mem_init_pool(&reqs[i].pool);
    reqs[i].entity = h2o_iovec_init(body, sizeof body - 1);
    api_req_t *r = api_req_new(&T, &reqs[i]);
    cr_assert_not_null(r);
    r->route = &CREATE_BODY;
    r->app.id = APP;
    api_write_t *w = api_decode_or_reply(r, true, decode_lead, run_create);
    cr_assert_not_null(w);
    const lead_t *l = &w->p.lead.v;
    cr_expect(owned(w, l->name) && owned(w, l->source), "the patch points outside its write");
    cr_expect(l->name.len == 4 && memcmp(l->name.ptr, "Acme", 4) == 0);
    cr_expect(l->source.len == 3 && memcmp(l->source.ptr, "web", 3) == 0);
    cr_expect_eq(w->size, sizeof *w + 5 + 4, "each text and its NUL, nothing more");
    dispose(i);
    api_write_submit(r, w); /* no writer: runs here and frees it */
    cr_expect_eq(F.runs, 1);
}

/* Waits (5 s at most) until the writer has made n merge steps. */
static void wait_tidies(int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&F.mu);
    while (F.tidies < n && pthread_cond_timedwait(&F.cv, &F.mu, &deadline) == 0)
        ;
    int tidies = F.tidies;
    pthread_mutex_unlock(&F.mu);
    cr_assert_geq(tidies, n, "%d of %d merge steps", tidies, n);
}

static int tidies_now(void)
{
    pthread_mutex_lock(&F.mu);
    int n = F.tidies;
    pthread_mutex_unlock(&F.mu);
    return n;
}

/* The search index is merged at start (an import may have left it in
 * pieces) while steps find work, then again only after a batch has
 * committed, and never while a batch is open. */
Test(writer, the_search_index_is_merged_between_batches_while_it_needs_it)
{
    F.tidy_more = 3;
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    wait_tidies(4); /* three that found work, one that found none */
    struct timespec idle = {0, 300 * 1000 * 1000};
    nanosleep(&idle, NULL);
    cr_expect_eq(tidies_now(), 4, "no step without a batch since the last found nothing");
    F.tidy_more = 6; /* the next two steps find work */
    submit(&CREATE, NULL, run_create);
    wait_answers(1);
    /* A batch committed: a step within TIDY_RECHECK_MS, and more while
     * they find work. */
    wait_tidies(7);
    nanosleep(&idle, NULL);
    cr_expect_eq(tidies_now(), 7);
    cr_expect_eq(F.tidies_in_batch, 0);
}

/* A write that arrives while merge steps keep finding work runs after
 * the step in progress: the steps never hold the queue up. */
Test(writer, merge_steps_never_hold_up_a_write)
{
    F.tidy_more = 1 << 30;
    cr_assert_eq(api_writer_start_store(&F.base), 0);
    wait_tidies(10);
    submit(&CREATE, NULL, run_create);
    submit(&CREATE, NULL, run_create);
    wait_answers(2);
    cr_expect_eq(F.runs, 2);
    cr_expect_eq(F.tidies_in_batch, 0);
}
