/*
 * conn.c: the PostgreSQL connection: the settings each one starts with
 * (waiting for it, or not: async.c), reconnection with back-off,
 * PostgreSQL's errors as store_rc_t, the statements prepared on it.
 *
 * A database that goes away must neither hang the server nor make every
 * request wait on a connection attempt: a lost connection is answered 503
 * at once, a new one is tried at most once per back-off interval (100 ms
 * doubling to 1 s), and as soon as any thread of the process gets through
 * the others try again at once.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/postgres/pg_int.h"

/* What the server is told at each connection; the user's URL overrides
 * all but client_encoding (see start). The lock timeout is the "about
 * five seconds" of store.h. The connect timeout is 5 s: libpq 15 counts a
 * blocking connect's timeout in whole seconds of time(), so its 2 (the
 * least it takes) gave up after as little as one second, which a loaded
 * host's connect outlasted (`crmd copy` in CI: "timeout expired"). */
#define CONNECT_TIMEOUT_S "5"
const char pg_session_sql[] = "SET lock_timeout = '5s'";
/* A server thread's read connection also plans each statement once, for
 * any parameters: left to choose (plan_cache_mode auto), PostgreSQL plans a
 * list's LIMIT and OFFSET anew at every execution, which costs twice the
 * execution itself (0.25 ms against 0.12 ms for a page of 15). Every read
 * statement's generic plan is the one a custom plan would pick. */
const char pg_reader_session_sql[] = "SELECT set_config('lock_timeout', '5s', false), "
                                     "set_config('plan_cache_mode', 'force_generic_plan', false)";
const char pg_custom_plans_sql[] = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";
const char pg_generic_plans_sql[] = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";
/* libpq's rule for connect_timeout: under 2 seconds means 2. */
#define CONNECT_TIMEOUT_MIN_S 2
/* Reconnection back-off: the first retry after RECONNECT_MIN_MS, doubling
 * up to RECONNECT_MAX_MS, so service resumes within a second of the
 * database coming back. */
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 1000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_message(const char *msg, char *out, size_t outsz)
{
    /* libpq's messages may quote the connection string: never a password. */
    char raw[PG_MSG_MAX];
    snprintf(raw, sizeof raw, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    store_url_redact(raw, out, outsz);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

/* Passes warnings on to the log; notices (such as "already exists,
 * skipping" during migrations) are routine and dropped. */
static void on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev != NULL && strcmp(sev, "WARNING") == 0) {
        char msg[PG_MSG_MAX];
        pg_message(PQresultErrorMessage(r), msg, sizeof msg);
        store_log("crmd: postgres: %s", msg);
    }
}

/* Gives up a new connection c: the reason (what, then libpq's message)
 * into err. */
static bool refuse(PGconn *c, const char *libpq_msg, const char *what, char *err, size_t errsz)
{
    char msg[PG_MSG_MAX];
    pg_message(libpq_msg, msg, sizeof msg);
    store_text_hide(msg, sizeof msg, PQpass(c));
    snprintf(err, errsz, "%s: %s", what, msg);
    PQfinish(c);
    return false;
}

/* Connects with crmd's settings, waiting for it (PQconnectdbParams) or
 * not (PQconnectStartParams). */
static PGconn *start(const pg_store_t *s, bool wait)
{
    /* Defaults first: the expanded URL that follows overrides them. The
     * keepalives bound how long a vanished server (no RST, no FIN) can
     * hold a call. The encoding comes last, so it always holds: texts
     * travel as UTF-8 bytes. */
    static const char *const keys[] = {"connect_timeout",
                                       "application_name",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       "client_encoding",
                                       NULL};
    const char *vals[] = {CONNECT_TIMEOUT_S, "crmd", "30", "10", "3", "30000", s->conninfo, "UTF8", NULL};
    PGconn *c = wait ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
    if (c != NULL) PQsetNoticeReceiver(c, on_notice, NULL);
    return c;
}

/* The number c's option key was given (the URL's, else crmd's); 0 when
 * none, or not a number. */
static int option_int(PGconn *c, const char *key)
{
    int n = 0;
    PQconninfoOption *opts = PQconninfo(c);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0 && o->val != NULL) n = atoi(o->val);
    PQconninfoFree(opts);
    return n;
}

/* The connect_timeout c was given (the URL's, else crmd's), in ms. */
static int connect_timeout_ms(PGconn *c)
{
    int seconds = option_int(c, "connect_timeout");
    if (seconds <= 0) return 0;
    return (seconds < CONNECT_TIMEOUT_MIN_S ? CONNECT_TIMEOUT_MIN_S : seconds) * 1000;
}

int pg_silence_ms(PGconn *c)
{
    int ms = option_int(c, "tcp_user_timeout");
    if (ms <= 0) return 0;
    return ms < PG_SILENCE_MIN_MS ? PG_SILENCE_MIN_MS : ms;
}

PGconn *pg_connect_start(pg_store_t *s, int *timeout_ms)
{
    PGconn *c = start(s, false);
    *timeout_ms = c != NULL ? connect_timeout_ms(c) : 0;
    return c;
}

bool pg_connect(pg_store_t *s, char *err, size_t errsz)
{
    PGconn *c = start(s, true);
    if (c == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    if (PQstatus(c) != CONNECTION_OK)
        return refuse(c, PQerrorMessage(c), "cannot connect to PostgreSQL", err, errsz);
    PGresult *r = PQexec(c, pg_session_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        bool ok = refuse(c, PQresultErrorMessage(r), "cannot set up the PostgreSQL session", err, errsz);
        PQclear(r);
        return ok;
    }
    PQclear(r);
    s->conn = c;
    memset(s->prepared, 0, sizeof s->prepared);
    pg_dyn_reconnected(s);
    return true;
}

/* When any connection of this process last succeeded (monotonic ms): once
 * one thread gets through after an outage, the others try again at once
 * instead of waiting out their back-off. */
static _Atomic int64_t connected_at_ms;

bool pg_conn_ok(const pg_store_t *s)
{
    return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

static void drop_conn(pg_store_t *s)
{
    if (s->conn != NULL) PQfinish(s->conn);
    s->conn = NULL;
}

bool pg_may_connect(const pg_store_t *s)
{
    return mono_ms() >= s->retry_at_ms || atomic_load(&connected_at_ms) > s->failed_at_ms;
}

void pg_connect_failed(pg_store_t *s, const char *err)
{
    if (!s->down_logged) store_log("crmd: postgres: %s (will retry)", err);
    s->down_logged = true;
    s->backoff_ms = s->backoff_ms == 0 ? RECONNECT_MIN_MS : s->backoff_ms * 2;
    if (s->backoff_ms > RECONNECT_MAX_MS) s->backoff_ms = RECONNECT_MAX_MS;
    s->failed_at_ms = mono_ms();
    s->retry_at_ms = s->failed_at_ms + s->backoff_ms;
}

void pg_connect_succeeded(pg_store_t *s)
{
    atomic_store(&connected_at_ms, mono_ms());
    if (s->down_logged) store_log("crmd: postgres: reconnected");
    s->down_logged = false;
    s->backoff_ms = 0;
}

bool pg_ensure_conn(pg_store_t *s, bool now)
{
    assert(!s->aio.on); /* a store with a loop never blocks (store.h) */
    if (s->reset && !s->in_tx) {
        /* A primary that became a standby (failover) keeps the connection
         * up but refuses writes: a new connection finds the new primary
         * when the URL names several hosts with
         * target_session_attrs=read-write. */
        s->reset = false;
        drop_conn(s);
        now = true;
    }
    if (pg_conn_ok(s)) return true;
    if (s->in_tx) return false;
    if (!now && !pg_may_connect(s)) return false;
    drop_conn(s);
    char err[PG_MSG_MAX];
    if (pg_connect(s, err, sizeof err)) {
        pg_connect_succeeded(s);
        return true;
    }
    pg_connect_failed(s, err);
    return false;
}

/* The SQLSTATE classes and codes that mean "not now" rather than "never":
 * connection (08), resources (53), shutdown (57), system (58), lock
 * timeout (55P03), read-only transaction (25006). */
static bool is_unavailable(const char *state)
{
    static const char *const classes[] = {"08", "53", "57", "58"};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strncmp(state, classes[i], 2) == 0) return true;
    return strcmp(state, "55P03") == 0 || strcmp(state, "25006") == 0;
}

void pg_lost(pg_store_t *s, const char *msg)
{
    if (!s->down_logged) store_log("crmd: postgres: connection lost: %s", msg);
    s->down_logged = true;
}

store_rc_t pg_map_error(pg_store_t *s, const PGresult *r)
{
    char msg[PG_MSG_MAX];
    pg_message(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), msg, sizeof msg);
    if (!pg_conn_ok(s)) {
        pg_lost(s, msg);
        return STORE_UNAVAILABLE;
    }
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL) {
        store_log("crmd: postgres: %s", msg);
        return STORE_UNAVAILABLE;
    }
    if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0) {
        s->retry = true; /* a deadlock or serialization failure: the write tries again */
        return STORE_UNAVAILABLE;
    }
    if (strcmp(state, "23503") == 0) return STORE_NOT_FOUND;
    if (strncmp(state, "23", 2) == 0) return STORE_CONFLICT;
    if (strcmp(state, "25006") == 0) s->reset = true;
    store_log("crmd: postgres: %s (%s)", msg, state);
    return is_unavailable(state) ? STORE_UNAVAILABLE : STORE_ERROR;
}

void pg_stmt_name(enum pg_stmt_id id, char name[PG_STMT_NAME_MAX])
{
    snprintf(name, PG_STMT_NAME_MAX, "q%d", (int)id);
}

PGresult *pg_prepare(pg_store_t *s, enum pg_stmt_id id, char name[PG_STMT_NAME_MAX])
{
    pg_stmt_name(id, name);
    if (s->prepared[id]) return NULL;
    pg_dyn_before_prepare(s, (int)id, name);
    PGresult *r = PQprepare(s->conn, name, pg_stmt_text(s, (int)id), 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) return r;
    PQclear(r);
    s->prepared[id] = true;
    return NULL;
}
