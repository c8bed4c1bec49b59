/*
 * test_store.c: the contract of store/store.h, on whichever backend
 * CRMD_TEST_DB names, so that SQLite and PostgreSQL are held to the same
 * promises.
 *
 *   CRMD_TEST_DB unset (or "sqlite")  each test gets a fresh SQLite file in
 *                                     /tmp, removed afterwards (make unit)
 *   CRMD_TEST_DB=<PostgreSQL URL or   each test gets a fresh database on
 *   libpq key=value string, without   that server (created and dropped
 *   a database name>                  through libpq, as psql would)
 *                                     (make unit-postgres)
 *
 * Each test's database is migrated and holds two apps. Records handed to
 * callbacks are copied (strings included) before the callback returns,
 * since their strings live only that long. Criterion runs every test in a
 * process of its own.
 *
 * Sections:
 *   fixture                  fresh databases, raw SQL beside the store
 *   records and copies       building records, keeping what callbacks saw
 *   schema                   migrations
 *   apps and the signing keys (and the migrations from one key)
 *   leads                    CRUD, lists, paging, totals, updated_at
 *   follows
 *   tenants
 *   group commit             savepoints, rollback, a lost batch, row locks
 *   administration           app list, disabling, revocations
 *   bulk copy                counts, export, import
 *   reads that complete later  a stand-in loop, pipelining, lost connections
 *   webhooks                 subscriptions, the outbox, leases, reports
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "api/expire.h"
#include "model/decimal.h"
#include "model/text.h"
#include "store/copy.h"
#include "store/find.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"
#include "model/event.h"
#include "store/webhook.h"

/* --- fixture ---------------------------------------------------------------- */

#define URL_MAX 1024
#define SERVER_MAX 512
#define DB_MAX 64
#define MAX_DBS 3

static bool on_postgres;
static char server_[SERVER_MAX]; /* PostgreSQL: the server, without a database */
static int ndbs;
static char dbs_[MAX_DBS][DB_MAX]; /* every database this test made: SQLite paths, PG names */
static char url_[URL_MAX];         /* the test's own database */
static store_t *st;
static store_app_t app1, app2;

/* Runs sql on a raw libpq connection to conninfo; fails the test unless
 * it succeeds. */
/* The number in the first column of the first row of sql's answer. */
static int64_t pg_number(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql, PQerrorMessage(c));
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

static void pg_run(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    cr_assert(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The conninfo of database name on the server. */
static void pg_url(char *out, size_t outsz, const char *name)
{
    if (strstr(server_, "://") != NULL)
        snprintf(out, outsz, "%s/%s", server_, name);
    else
        snprintf(out, outsz, "%s dbname=%s", server_, name);
}

/* Makes a fresh, empty database and writes its URL into out. */
static void fresh_db(char *out, size_t outsz)
{
    cr_assert_lt(ndbs, MAX_DBS);
    char *db = dbs_[ndbs++];
    if (on_postgres) {
        static int seq;
        snprintf(db, DB_MAX, "crmd_test_%ld_%d", (long)getpid(), seq++);
        char sql[4 * DB_MAX];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
        pg_run(server_, sql);
        pg_url(out, outsz, db);
        return;
    }
    strcpy(db, "/tmp/crmd-store-test-XXXXXX");
    int fd = mkstemp(db);
    cr_assert_geq(fd, 0, "mkstemp");
    close(fd);
    snprintf(out, outsz, "sqlite:%s", db);
}

static void drop_dbs(void)
{
    for (int i = 0; i < ndbs; i++) {
        if (on_postgres) {
            char sql[4 * DB_MAX];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbs_[i]);
            pg_run(server_, sql);
            continue;
        }
        static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
        for (size_t k = 0; k < sizeof suffix / sizeof suffix[0]; k++) {
            char p[4 * DB_MAX];
            snprintf(p, sizeof p, "%s%s", dbs_[i], suffix[k]);
            unlink(p);
        }
    }
    ndbs = 0;
}

/* Runs sql on the test's database beside the store (to set up what the
 * store itself would never write). */
static void raw_sql(const char *sql)
{
    if (on_postgres) {
        pg_run(url_, sql);
        return;
    }
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(url_ + strlen("sqlite:"), &db), SQLITE_OK);
    cr_assert_not_null(db);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* The number sql answers on the database at url (a count). */
static int64_t raw_number_on(const char *url, const char *sql)
{
    if (on_postgres) return pg_number(url, sql);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(url + strlen("sqlite:"), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s", sql);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static store_t *open_url(const char *url)
{
    char err[STORE_OPEN_ERR_MAX] = "";
    store_t *s = store_open(url, err, sizeof err);
    cr_assert_not_null(s, "store_open: %s", err);
    return s;
}

static store_t *open_store(void)
{
    return open_url(url_);
}

/* A log hook that keeps expected complaints (a lost connection, a refused
 * row) out of the test's output. */
static void quiet(void *ctx, const char *line)
{
    (void)ctx, (void)line;
}

static void setup(void)
{
    const char *db = getenv("CRMD_TEST_DB");
    on_postgres = db != NULL && db[0] != '\0' && strcmp(db, "sqlite") != 0;
    if (on_postgres) {
        cr_assert(store_url_is_shared(db), "CRMD_TEST_DB is neither sqlite nor a PostgreSQL URL: %s", db);
        cr_assert_lt(strlen(db), sizeof server_);
        snprintf(server_, sizeof server_, "%s", db);
    }
    fresh_db(url_, sizeof url_);
    st = open_store();
    cr_assert_eq(store_migrate(st), STORE_OK);
    cr_assert_eq(store_app_create(st, "pk_live_one", "App One", 1000, &app1), STORE_OK);
    cr_assert_eq(store_app_create(st, "pk_live_two", "App Two", 1000, &app2), STORE_OK);
    cr_assert_neq(app1.id, app2.id);
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    drop_dbs();
}

TestSuite(store, .init = setup, .fini = teardown);

/* Criterion runs no .fini for a skipped test, so a skip would leave the
 * test's SQLite file and its -wal and -shm in /tmp; this one drops them
 * first. */
#define SKIP_TEST(...)                                                                                       \
    do {                                                                                                     \
        teardown();                                                                                          \
        cr_skip_test(__VA_ARGS__);                                                                           \
    } while (0)

/* --- records and copies ------------------------------------------------------ */

/* Ids that sort as their number does. */
static const char *ID(int n)
{
    static char ids[64][UUID_BUFSZ];
    cr_assert(n >= 0 && n < 64);
    snprintf(ids[n], UUID_BUFSZ, "0190f3a2-0000-7000-8000-%012d", n);
    return ids[n];
}

/* Ids for many leads: n sorts as its number does. */
static void big_id(int n, char out[UUID_BUFSZ])
{
    snprintf(out, UUID_BUFSZ, "0190f3a2-0001-7000-8000-%012d", n);
}

static text_ref_t T(const char *s)
{
    return (text_ref_t){s, s ? strlen(s) : 0};
}

static lead_t mk_lead(int id, const char *name, int64_t created)
{
    lead_t l = {0};
    strcpy(l.id, ID(id));
    l.name = T(name);
    l.stage = STAGE_NEW;
    l.status = LEAD_ACTIVE;
    l.probability = -1;
    l.created_at = l.updated_at = created;
    return l;
}

/* A lead with every attribute set. */
static lead_t mk_full_lead(int id, const char *name, int64_t created)
{
    lead_t l = mk_lead(id, name, created);
    l.source = T("website");
    strcpy(l.account_id, ID(40));
    strcpy(l.contact_id, ID(41));
    l.has_value = true;
    l.value_cents = 1234567;
    l.stage = STAGE_CONTACTED;
    l.probability = 40;
    return l;
}

static follow_t mk_follow(int id, int lead, const char *title, bool has_due, int64_t due, int64_t created)
{
    follow_t f = {0};
    strcpy(f.id, ID(id));
    strcpy(f.lead_id, ID(lead));
    f.title = T(title);
    f.has_due = has_due;
    f.due_at = due;
    f.status = FOLLOW_PENDING;
    f.created_at = f.updated_at = created;
    return f;
}

/* A lead as a callback saw it, with its own copies of the strings. */
typedef struct lead_copy {
    lead_t l;
    char name[1024];
    char source[1024];
} lead_copy_t;

typedef struct follow_copy {
    follow_t f;
    char title[1024];
    char description[1024];
} follow_copy_t;

#define MAXREC 16
typedef struct leads {
    int n;
    lead_copy_t r[MAXREC];
} leads_t;

typedef struct follows {
    int n;
    follow_copy_t r[MAXREC];
} follows_t;

static void copy_text(text_ref_t *t, char *buf, size_t cap)
{
    if (t->ptr == NULL) return;
    cr_assert_lt(t->len, cap);
    memcpy(buf, t->ptr, t->len);
    buf[t->len] = '\0';
    t->ptr = buf;
}

static void keep_lead(lead_copy_t *d, const lead_t *l)
{
    d->l = *l;
    copy_text(&d->l.name, d->name, sizeof d->name);
    copy_text(&d->l.source, d->source, sizeof d->source);
}

static void keep_follow(follow_copy_t *d, const follow_t *f)
{
    d->f = *f;
    copy_text(&d->f.title, d->title, sizeof d->title);
    copy_text(&d->f.description, d->description, sizeof d->description);
}

static void on_lead(void *ctx, const lead_t *l)
{
    leads_t *c = ctx;
    cr_assert_lt(c->n, MAXREC);
    keep_lead(&c->r[c->n++], l);
}

static void on_follow(void *ctx, const follow_t *f)
{
    follows_t *c = ctx;
    cr_assert_lt(c->n, MAXREC);
    keep_follow(&c->r[c->n++], f);
}

static void expect_text(text_ref_t t, const char *want, const char *what)
{
    if (want == NULL) {
        cr_expect_null(t.ptr, "%s: \"%.*s\", want null", what, (int)t.len, t.ptr ? t.ptr : "");
        return;
    }
    cr_assert_not_null(t.ptr, "%s: null, want \"%s\"", what, want);
    cr_expect(t.len == strlen(want) && memcmp(t.ptr, want, t.len) == 0, "%s: \"%.*s\", want \"%s\"", what,
              (int)t.len, t.ptr, want);
}

static void expect_same_lead(const lead_t *got, const lead_t *want)
{
    cr_expect_str_eq(got->id, want->id);
    expect_text(got->name, want->name.ptr, "name");
    expect_text(got->source, want->source.ptr, "source");
    cr_expect_str_eq(got->account_id, want->account_id);
    cr_expect_str_eq(got->contact_id, want->contact_id);
    cr_expect_eq(got->has_value, want->has_value);
    if (want->has_value) cr_expect_eq(got->value_cents, want->value_cents);
    cr_expect_eq(got->stage, want->stage);
    cr_expect_eq(got->probability, want->probability);
    cr_expect_eq(got->status, want->status);
    cr_expect_eq(got->created_at, want->created_at);
    cr_expect_eq(got->updated_at, want->updated_at);
}

/* The one record a get passes, copied into *out, and how many came. */
typedef struct one {
    lead_copy_t *lead;
    follow_copy_t *follow;
    int n;
} one_t;

static void on_one_lead(void *ctx, const lead_t *l)
{
    one_t *o = ctx;
    if (o->n++ == 0) keep_lead(o->lead, l);
}

static void on_one_follow(void *ctx, const follow_t *f)
{
    one_t *o = ctx;
    if (o->n++ == 0) keep_follow(o->follow, f);
}

/* A get passes its record exactly when it returns STORE_OK. */
static store_rc_t got_one(store_rc_t rc, const one_t *o)
{
    cr_expect_eq(o->n, rc == STORE_OK ? 1 : 0, "%d records passed with rc %d", o->n, rc);
    return rc;
}

/* Gets one lead of app through s into *out; returns the store_rc_t. */
static store_rc_t get_lead_in(store_t *s, int64_t app, const char *id, lead_copy_t *out)
{
    one_t o = {.lead = out};
    return got_one(store_lead_get(s, app, id, on_one_lead, &o, NULL), &o);
}

static store_rc_t get_lead(int64_t app, const char *id, lead_copy_t *out)
{
    return get_lead_in(st, app, id, out);
}

static store_rc_t get_follow(int64_t app, const char *lead, const char *id, follow_copy_t *out)
{
    one_t o = {.follow = out};
    return got_one(store_follow_get(st, app, lead, id, on_one_follow, &o, NULL), &o);
}

static int64_t lead_total_in(store_t *s, int64_t app)
{
    leads_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(s, app, 0, 1, &total, on_lead, &c, NULL), STORE_OK);
    return total;
}

static int64_t lead_total(int64_t app)
{
    return lead_total_in(st, app);
}

static void create_lead(int id, const char *name, int64_t created)
{
    lead_t l = mk_lead(id, name, created);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK, "lead %d", id);
}

/* --- schema ------------------------------------------------------------------ */

Test(store, migrate_twice_keeps_data)
{
    cr_expect_eq(store_migrate(st), STORE_OK, "second migrate on an up-to-date database");
    cr_expect_eq(store_migrate(st), STORE_OK, "third");
    store_app_t a;
    cr_assert_eq(store_app_find(st, "pk_live_one", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app1.id);

    /* Another connection to the same database sees the schema and data. */
    store_t *other = open_store();
    cr_expect_eq(store_migrate(other), STORE_OK);
    cr_expect_eq(store_app_find(other, "pk_live_two", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app2.id);
    store_close(other);
}

/* What the log hook received. */
static char logged[4][STORE_LOG_LINE_MAX];
static int nlogged;

static void keep_line(void *ctx, const char *line)
{
    cr_assert_eq(ctx, (void *)logged);
    if (nlogged < 4) snprintf(logged[nlogged], sizeof logged[0], "%s", line);
    nlogged++;
}

Test(store, a_newer_schema_is_refused_and_said_through_the_log_hook)
{
    raw_sql(on_postgres ? "UPDATE crmd_schema SET version = 99 WHERE id = 1" : "PRAGMA user_version = 99");
    store_set_log(keep_line, logged);
    store_t *s = open_store();
    cr_expect_eq(store_migrate(s), STORE_ERROR);
    store_close(s);
    store_set_log(NULL, NULL);
    cr_assert_eq(nlogged, 1, "one message, one call");
    char want[STORE_LOG_LINE_MAX];
    snprintf(want, sizeof want, "crmd: database schema version 99 is newer than this crmd (%d)",
             SCHEMA_VERSION);
    cr_expect_str_eq(logged[0], want);
}

/* --- apps and the signing keys ---------------------------------------------------- */

Test(store, apps)
{
    cr_expect_str_eq(app1.key, "pk_live_one");
    cr_expect_str_eq(app1.name, "App One");
    cr_expect_eq(app1.created_at, 1000);

    store_app_t a;
    memset(&a, 0x5a, sizeof a);
    cr_assert_eq(store_app_find(st, "pk_live_one", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app1.id);
    cr_expect_str_eq(a.key, "pk_live_one");
    cr_expect_str_eq(a.name, "App One");
    cr_expect_eq(a.disabled, 0);
    cr_expect_eq(a.created_at, 1000);

    cr_expect_eq(store_app_find(st, "pk_live_nope", &a, NULL), STORE_NOT_FOUND);
    cr_expect_eq(store_app_find(st, "PK_LIVE_ONE", &a, NULL), STORE_NOT_FOUND, "keys are exact");
    cr_expect_eq(store_app_find(st, "", &a, NULL), STORE_NOT_FOUND);

    store_app_t dup;
    cr_expect_eq(store_app_create(st, "pk_live_one", "Another", 2000, &dup), STORE_CONFLICT);
    cr_assert_eq(store_app_find(st, "pk_live_one", &a, NULL), STORE_OK);
    cr_expect_str_eq(a.name, "App One", "the failed create changed nothing");

    store_app_t three;
    cr_expect_eq(store_app_create(st, "pk_live_three", "Three", 3000, &three), STORE_OK);
    cr_expect(three.id != app1.id && three.id != app2.id);
}

/* The stored keys, for the tests: their pem texts joined with ',', and
 * the last one's fields. */
typedef struct keys_seen {
    char pems[256];
    size_t n;
    store_key_t last;
} keys_seen_t;

static void see_key(void *ctx, const store_key_t *k)
{
    keys_seen_t *ks = ctx;
    size_t used = strlen(ks->pems);
    snprintf(ks->pems + used, sizeof ks->pems - used, "%s%s", used ? "," : "", k->pem);
    if (ks->n > 0) cr_expect_gt(k->seq, ks->last.seq, "keys by seq");
    ks->n++;
    ks->last = *k;
    ks->last.pem = NULL;
}

static keys_seen_t keys_of(store_t *s)
{
    keys_seen_t ks;
    memset(&ks, 0, sizeof ks);
    cr_assert_eq(store_keys(s, see_key, &ks), STORE_OK);
    return ks;
}

static store_rc_t add_key(store_t *s, const char *pem, int first)
{
    store_key_t k = {.pem = pem, .created_at = 1000, .signed_until = 0};
    return store_key_add(s, &k, first);
}

Test(store, signing_keys)
{
    cr_expect_eq(keys_of(st).n, 0);
    cr_assert_eq(add_key(st, "PEM-FIRST", 1), STORE_OK);
    /* A later first use (another thread or process) stores nothing. */
    cr_assert_eq(add_key(st, "PEM-SECOND", 1), STORE_OK);
    store_t *other = open_store();
    cr_assert_eq(add_key(other, "PEM-THIRD", 1), STORE_OK);
    keys_seen_t ks = keys_of(other);
    cr_expect_str_eq(ks.pems, "PEM-FIRST", "another connection agrees");
    store_close(other);

    /* Rotation appends; the newest comes last. */
    cr_assert_eq(add_key(st, "PEM-NEXT", 0), STORE_OK);
    ks = keys_of(st);
    cr_expect_str_eq(ks.pems, "PEM-FIRST,PEM-NEXT");
    int64_t seq = ks.last.seq;
    cr_expect_eq(ks.last.created_at, 1000);
    cr_expect_eq(ks.last.signed_until, 0);
    cr_expect_eq(ks.last.retired_at, 0);

    /* signed_until only grows; a retirement keeps its first time. */
    cr_assert_eq(store_key_update(st, seq, 5000, 0), STORE_OK);
    cr_assert_eq(store_key_update(st, seq, 4000, 0), STORE_OK);
    cr_expect_eq(keys_of(st).last.signed_until, 5000);
    cr_assert_eq(store_key_update(st, seq, 0, 7000), STORE_OK);
    cr_assert_eq(store_key_update(st, seq, 0, 8000), STORE_OK);
    ks = keys_of(st);
    cr_expect_eq(ks.last.signed_until, 5000);
    cr_expect_eq(ks.last.retired_at, 7000);
    cr_expect_eq(store_key_update(st, seq + 100, 1, 0), STORE_NOT_FOUND);

    /* An untracked key stays untracked. */
    store_key_t old = {.pem = "PEM-OLD", .created_at = 1, .signed_until = STORE_KEY_UNTRACKED};
    cr_assert_eq(store_key_add(st, &old, 0), STORE_OK);
    seq = keys_of(st).last.seq;
    cr_assert_eq(store_key_update(st, seq, 9000, 0), STORE_OK);
    cr_expect_eq(keys_of(st).last.signed_until, STORE_KEY_UNTRACKED);
}

/* What migrations 5 and 6 (finding leads) added, taken out again. */
#define FIND_INDEXES                                                                                         \
    "leads_updated, leads_name, leads_value, leads_probability, leads_stage, leads_status, leads_source, "   \
    "leads_account, leads_contact, follows_app_due, follows_app_state, follows_app_created, "                \
    "follows_app_updated"
static void undo_finding(void)
{
    /* Migration 7's trash and keys first: their tables refer to the apps only. */
    raw_sql("DROP TABLE follows_trash; DROP TABLE leads_trash; DROP TABLE idempotency_keys; DROP TABLE "
            "lead_history;");
    if (on_postgres) {
        raw_sql("DROP INDEX " FIND_INDEXES ", leads_name_trgm, leads_source_trgm;"
                "DROP TABLE lead_totals;"
                "ALTER TABLE leads DROP COLUMN name_fold, DROP COLUMN source_fold;");
        return;
    }
    raw_sql("DROP TRIGGER leads_insert; DROP TRIGGER leads_delete; DROP TRIGGER leads_text;"
            "DROP TRIGGER leads_totals; DROP TABLE lead_fts; DROP TABLE lead_text; DROP TABLE lead_totals;"
            "DELETE FROM sqlite_stat1;");
    const char *names = FIND_INDEXES;
    while (*names != '\0') {
        size_t n = strcspn(names, ",");
        char sql[64];
        snprintf(sql, sizeof sql, "DROP INDEX %.*s", (int)n, names);
        raw_sql(sql);
        names += n + strspn(names + n, ", ");
    }
    raw_sql("ALTER TABLE leads DROP COLUMN name_fold; ALTER TABLE leads DROP COLUMN source_fold;"
            "ALTER TABLE leads DROP COLUMN history_head; ALTER TABLE leads DROP COLUMN history_count;");
}

/* Migration 19 undone: what a database older than it lacks. */
#define SQ_BEFORE_QUEUED                                                                                     \
    "DROP TRIGGER webhook_events_queued; DROP TRIGGER webhook_events_taken;"                                 \
    "ALTER TABLE webhooks DROP COLUMN queued;"

/* What SQLite's migration 17 (the history's chain) changed, as every
 * older version had it, and migration 19 undone before it. */
#define SQ_BEFORE_HISTORY_CHAIN                                                                              \
    SQ_BEFORE_QUEUED                                                                                         \
    "ALTER TABLE leads DROP COLUMN history_head; ALTER TABLE leads DROP COLUMN history_count;"               \
    "ALTER TABLE leads_trash DROP COLUMN history_head; ALTER TABLE leads_trash DROP COLUMN history_count;"   \
    "ALTER TABLE lead_history DROP COLUMN prev;"                                                             \
    "CREATE INDEX lead_history_lead ON lead_history (app_id, lead_id, seq DESC);"

/* Turns the fixture's database back into one of schema version `version`
 * (2 or 3) with one key, "PEM-OLD", in the single-key table of versions 1
 * to 3; at version 2 there are no issued tokens either. */
static void downgrade_to(int version)
{
    /* What later versions added goes first. */
    raw_sql("DROP TABLE webhook_attempts; DROP TABLE webhook_events; DROP TABLE webhook_payloads; "
            "DROP TABLE webhooks;");
    undo_finding();
    if (version < 3) raw_sql("DROP TABLE issued_tokens;");
    raw_sql("DROP TABLE signing_keys;"
            "CREATE TABLE signing_keys (id INTEGER PRIMARY KEY CHECK (id = 1), pem TEXT NOT NULL);"
            "INSERT INTO signing_keys (id, pem) VALUES (1, 'PEM-OLD');");
    char sql[96];
    snprintf(sql, sizeof sql,
             on_postgres ? "UPDATE crmd_schema SET version = %d WHERE id = 1" : "PRAGMA user_version = %d",
             version);
    raw_sql(sql);
}

/* What version 4 made of the one key of version 3: seq 1 with its
 * expiries untracked; keys added later come after it. */
static void expect_the_old_key_kept(store_t *s)
{
    keys_seen_t ks = keys_of(s);
    cr_expect_str_eq(ks.pems, "PEM-OLD");
    cr_expect_eq(ks.last.seq, 1);
    cr_expect_eq(ks.last.signed_until, STORE_KEY_UNTRACKED);
    cr_expect_eq(ks.last.retired_at, 0);
    cr_expect_gt(ks.last.created_at, 1700000000000LL, "the migration's time");
    cr_assert_eq(add_key(s, "PEM-NEW", 0), STORE_OK);
    cr_assert_eq(add_key(s, "PEM-IGNORED", 1), STORE_OK);
    ks = keys_of(s);
    cr_expect_str_eq(ks.pems, "PEM-OLD,PEM-NEW");
    cr_expect_gt(ks.last.seq, 1);
}

/* A database at version 3 (issued tokens, one key) upgrades to version 4
 * (and on): the key is kept and so are the tokens it recorded. */
Test(store, version_3_upgrades_to_4_keeping_the_key_and_the_issued_tokens)
{
    store_token_t t = {
        .jti = "jti-v3", .app = app1.id, .subject = "cli", .issued_at = 1000, .expires_at = 9000};
    cr_assert_eq(store_token_record(st, &t), STORE_OK);
    downgrade_to(3);
    store_t *s = open_store();
    cr_assert_eq(store_migrate(s), STORE_OK);
    cr_assert_eq(store_migrate(s), STORE_OK, "a second run finds the newest version and changes nothing");
    expect_the_old_key_kept(s);
    cr_expect_eq(store_token_record(s, &t), STORE_CONFLICT, "the issued token's record survived");
    cr_expect_eq(store_token_revoke(s, "jti-v3", 2000, false), STORE_OK);
    cr_expect_eq(store_token_revoke(s, "jti-never", 2000, false), STORE_NOT_FOUND);
    store_close(s);
}

/* A database at version 2 takes migrations 3 to the newest, in that order. */
Test(store, version_2_upgrades_through_3_to_the_newest)
{
    downgrade_to(2);
    store_t *s = open_store();
    cr_assert_eq(store_migrate(s), STORE_OK);
    cr_assert_eq(store_migrate(s), STORE_OK, "a second run finds the newest version and changes nothing");
    expect_the_old_key_kept(s);
    store_token_t t = {
        .jti = "jti-v4", .app = app1.id, .subject = "cli", .issued_at = 1000, .expires_at = 9000};
    cr_assert_eq(store_token_record(s, &t), STORE_OK, "migration 3 made the issued tokens' table");
    cr_expect_eq(store_token_revoke(s, "jti-v4", 2000, false), STORE_OK);
    store_close(s);
}

/* Migration 15: from version 14, the index of follows by app, status and
 * due date carries each follow's lead (PostgreSQL: INCLUDE; SQLite: the
 * primary key of a WITHOUT ROWID table, in the index already), and every
 * follow stays. */
Test(store, version_14s_follows_by_state_carry_their_lead_and_every_follow_is_kept)
{
    create_lead(1, "Acme", 1000);
    for (int i = 0; i < 3; i++) {
        follow_t f = mk_follow(10 + i, 1, "Call", false, 500 + i, 1000);
        cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    }
    raw_sql(on_postgres
                ? "DROP INDEX follows_app_state;"
                  "CREATE INDEX follows_app_state ON follows (app_id, status, due_at, created_at, id);"
                  "UPDATE crmd_schema SET version = 14 WHERE id = 1"
                : SQ_BEFORE_HISTORY_CHAIN "PRAGMA user_version = 14");
    store_t *s = open_store();
    cr_assert_eq(store_migrate(s), STORE_OK);
    store_close(s);
    const char *carries = on_postgres
                              ? "SELECT count(*) FROM pg_indexes WHERE indexname = 'follows_app_state' "
                                "AND indexdef LIKE '%INCLUDE (lead_id)'"
                              : "SELECT count(*) FROM pragma_index_xinfo('follows_app_state') "
                                "WHERE name = 'lead_id'";
    cr_expect_eq(raw_number_on(url_, carries), 1);
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM follows"), 3);
}

/* Racing first uses, each thread on its own connection. */
#define RACERS 4
typedef struct racer {
    pthread_barrier_t *go;
    char pem_in[32];
    store_rc_t rc;
    char err[STORE_OPEN_ERR_MAX];
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    store_t *s = store_open(url_, r->err, sizeof r->err);
    pthread_barrier_wait(r->go);
    r->rc = s != NULL ? add_key(s, r->pem_in, 1) : STORE_ERROR;
    store_close(s);
    return NULL;
}

Test(store, signing_key_concurrent_first_use)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    racer_t r[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].go = &go;
        snprintf(r[i].pem_in, sizeof r[i].pem_in, "PEM-%d", i);
        cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);

    keys_seen_t ks = keys_of(st);
    cr_expect_eq(ks.n, 1, "one key stored, not %zu: %s", ks.n, ks.pems);
    bool known = false;
    for (int i = 0; i < RACERS; i++) {
        cr_expect_eq(r[i].rc, STORE_OK, "racer %d: rc %d (%s)", i, r[i].rc, r[i].err);
        known = known || strcmp(ks.pems, r[i].pem_in) == 0;
    }
    cr_expect(known, "stored key %s is none of the racers'", ks.pems);
}

/* --- leads ---------------------------------------------------------------------- */

Test(store, lead_create_and_get)
{
    lead_t l = mk_full_lead(1, "Acme \xc3\xa9 \xf0\x9f\x98\x80", 5000);
    l.value_cents = 999999999999999LL;
    l.stage = STAGE_NEGOTIATION;
    l.probability = 100;
    l.status = LEAD_LOST;
    l.updated_at = 6000;
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);

    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_same_lead(&got.l, &l);

    /* A minimal lead reads back with its unset attributes unset. */
    lead_t m = mk_lead(2, "Min", 5000);
    m.probability = 0;
    m.has_value = true;
    m.value_cents = 0;
    cr_assert_eq(store_lead_create(st, app1.id, &m), STORE_OK);
    cr_assert_eq(get_lead(app1.id, ID(2), &got), STORE_OK);
    expect_same_lead(&got.l, &m);
    cr_expect(got.l.has_value, "value 0 is not unset");
    cr_expect_eq(got.l.probability, 0, "probability 0 is not unset");

    lead_t u = mk_lead(3, "Unset", 5000);
    cr_assert_eq(store_lead_create(st, app1.id, &u), STORE_OK);
    cr_assert_eq(get_lead(app1.id, ID(3), &got), STORE_OK);
    expect_same_lead(&got.l, &u);
    cr_expect_not(got.l.has_value);
    cr_expect_eq(got.l.probability, -1);

    cr_expect_eq(get_lead(app1.id, ID(9), &got), STORE_NOT_FOUND);
    cr_expect_eq(lead_total(app1.id), 3);
}

/* Gives leads 1..n of a many-insert, then none. */
typedef struct many {
    int next, n, dup; /* dup: the position that repeats lead 1 (0: none) */
} many_t;

static bool next_many(void *ctx, lead_t *out)
{
    many_t *m = ctx;
    if (m->next == m->n) return false;
    m->next++;
    *out = mk_lead(m->next == m->dup ? 1 : m->next, "Many", 1000 + m->next);
    return true;
}

Test(store, lead_create_many_inserts_and_counts_them_inside_a_batch_only)
{
    int64_t created = -1;
    many_t m = {.n = 3};
    cr_expect_eq(store_lead_create_many(st, app1.id, next_many, &m, &created), STORE_ERROR,
                 "outside a batch");
    cr_expect_eq(lead_total(app1.id), 0);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    m = (many_t){.n = 60};
    cr_expect_eq(store_lead_create_many(st, app1.id, next_many, &m, &created), STORE_OK);
    cr_expect_eq(created, 60);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(lead_total(app1.id), 60);
    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(60), &got), STORE_OK);
    expect_text(got.l.name, "Many", "name");

    /* A failure stops it; the batch ended without a commit keeps nothing.
     * PostgreSQL undoes the whole call at once (its one savepoint). */
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    m = (many_t){.n = 5, .dup = 3};
    cr_expect_eq(store_lead_create_many(st, app2.id, next_many, &m, &created), STORE_CONFLICT);
    cr_expect_eq(created, on_postgres ? 0 : 2);
    cr_assert_eq(store_batch_end(st, 0), STORE_OK);
    cr_expect_eq(lead_total(app2.id), 0);
    cr_expect_eq(get_lead(app2.id, ID(1), &got), STORE_NOT_FOUND);
}

Test(store, lead_duplicate_id_conflicts_and_changes_nothing)
{
    lead_t l = mk_lead(1, "First", 100);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    lead_t again = mk_lead(1, "Second", 200);
    cr_expect_eq(store_lead_create(st, app1.id, &again), STORE_CONFLICT);
    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_text(got.l.name, "First", "name");
    cr_expect_eq(lead_total(app1.id), 1, "the failed insert was not counted");

    /* The same id in another app is another record. */
    cr_expect_eq(store_lead_create(st, app2.id, &again), STORE_OK);
    cr_assert_eq(get_lead(app2.id, ID(1), &got), STORE_OK);
    expect_text(got.l.name, "Second", "name in app 2");
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_text(got.l.name, "First", "name in app 1");
}

Test(store, ids_that_are_not_uuids_name_nothing)
{
    create_lead(1, "Acme", 1000);
    follow_t f = mk_follow(10, 1, "Call", false, 0, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    static const char *const bad[] = {"", "nope", "0190F3A2-0000-7000-8000-00000000000", "0190f3a2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lead_copy_t got;
        follow_copy_t fc;
        cr_expect_eq(get_lead(app1.id, bad[i], &got), STORE_NOT_FOUND, "\"%s\"", bad[i]);
        cr_expect_eq(store_lead_delete(st, app1.id, bad[i]), STORE_NOT_FOUND, "\"%s\"", bad[i]);
        cr_expect_eq(get_follow(app1.id, bad[i], ID(10), &fc), STORE_NOT_FOUND, "\"%s\"", bad[i]);
        cr_expect_eq(get_follow(app1.id, ID(1), bad[i], &fc), STORE_NOT_FOUND, "\"%s\"", bad[i]);
        follows_t c = {0};
        int64_t total = -1;
        cr_expect_eq(store_follow_list(st, app1.id, bad[i], 0, 10, &total, on_follow, &c, NULL),
                     STORE_NOT_FOUND, "\"%s\"", bad[i]);
        cr_expect_eq(store_follow_delete(st, app1.id, ID(1), bad[i]), STORE_NOT_FOUND, "\"%s\"", bad[i]);
    }
    cr_expect_eq(lead_total(app1.id), 1);
}

Test(store, lead_list_order_paging_total)
{
    /* created_at descending, then id descending; inserted out of order. */
    static const struct {
        int id;
        int64_t created;
    } rows[] = {{2, 200}, {5, 50}, {4, 300}, {1, 100}, {3, 200}};
    for (size_t i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "L%d", rows[i].id);
        create_lead(rows[i].id, name, rows[i].created);
    }
    lead_t other = mk_lead(9, "other app", 999);
    cr_assert_eq(store_lead_create(st, app2.id, &other), STORE_OK);

    static const int order[] = {4, 3, 2, 1, 5};
    leads_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(st, app1.id, 0, 100, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(total, 5);
    cr_assert_eq(c.n, 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_str_eq(c.r[i].l.id, ID(order[i]), "position %d", i);
        char name[16];
        snprintf(name, sizeof name, "L%d", order[i]);
        expect_text(c.r[i].l.name, name, "name copied in the callback");
    }

    /* Pages of 2 walk the same order without repeats or gaps. */
    for (int page = 0; page < 3; page++) {
        memset(&c, 0, sizeof c);
        total = -1;
        cr_assert_eq(store_lead_list(st, app1.id, page * 2, 2, &total, on_lead, &c, NULL), STORE_OK);
        cr_expect_eq(total, 5);
        int want = page < 2 ? 2 : 1;
        cr_assert_eq(c.n, want, "page %d", page);
        for (int i = 0; i < want; i++)
            cr_expect_str_eq(c.r[i].l.id, ID(order[page * 2 + i]), "page %d item %d", page, i);
    }

    /* Past the end: nothing, and still the total. */
    memset(&c, 0, sizeof c);
    total = -1;
    cr_assert_eq(store_lead_list(st, app1.id, 5, 2, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(total, 5);

    memset(&c, 0, sizeof c);
    cr_assert_eq(store_lead_list(st, app2.id, 0, 100, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(total, 1);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.r[0].l.id, ID(9));

    /* An app without leads. */
    store_app_t empty;
    cr_assert_eq(store_app_create(st, "pk_live_empty", "Empty", 1, &empty), STORE_OK);
    memset(&c, 0, sizeof c);
    total = -1;
    cr_assert_eq(store_lead_list(st, empty.id, 0, 15, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(total, 0);
    cr_expect_eq(c.n, 0);
}

/* Checks one page of the many leads of deep_pages: position p holds big
 * lead DEEP_N - 1 - p (created_at and id both grow with n). */
#define DEEP_N 1300
static void expect_deep_page(store_t *s, int64_t offset, int limit, int64_t want_total, int gap)
{
    leads_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(s, app1.id, offset, limit, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(total, want_total, "offset %lld", (long long)offset);
    for (int i = 0; i < c.n; i++) {
        int64_t p = offset + i;
        int n = (int)(DEEP_N - 1 - p);
        if (gap >= 0 && n <= gap) n--; /* lead `gap` was deleted: the rest move up one */
        char want[UUID_BUFSZ];
        big_id(n, want);
        cr_expect_str_eq(c.r[i].l.id, want, "offset %lld item %d", (long long)offset, i);
    }
}

/* Deep pages are as right as shallow ones, also after writes between
 * them (SQLite keeps anchors into the list that writes must invalidate). */
Test(store, lead_list_deep_pages)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int n = 0; n < DEEP_N; n++) {
        lead_t l = mk_lead(0, "Deep", 10000 + n);
        big_id(n, l.id);
        cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK, "lead %d", n);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    static const int64_t offsets[] = {0, 511, 512, 513, 1024, 1100, 1290, 1299, 1300};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        expect_deep_page(st, offsets[i], 10, DEEP_N, -1);

    /* A delete through this connection, then one through another. */
    char id[UUID_BUFSZ];
    big_id(700, id);
    cr_assert_eq(store_lead_delete(st, app1.id, id), STORE_OK);
    expect_deep_page(st, 1100, 10, DEEP_N - 1, 700);
    store_t *other = open_store();
    big_id(200, id);
    cr_assert_eq(store_lead_delete(other, app1.id, id), STORE_OK);
    store_close(other);
    leads_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(st, app1.id, 1097, 3, &total, on_lead, &c, NULL), STORE_OK);
    cr_expect_eq(total, DEEP_N - 2);
    static const int want[] = {201, 199, 198}; /* positions 1097.. skip 700 and 200 */
    cr_assert_eq(c.n, 3);
    for (int i = 0; i < 3; i++) {
        big_id(want[i], id);
        cr_expect_str_eq(c.r[i].l.id, id, "item %d", i);
    }
}

Test(store, lead_update_partial)
{
    lead_t l = mk_full_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);

    /* Name only; the unnamed members of the patch hold values that must
     * not leak into the row. */
    lead_patch_t p = {0};
    p.fields = LEAD_F_NAME;
    p.v.name = T("Acme Inc");
    p.v.source = T(NULL);
    p.v.has_value = false;
    p.v.stage = STAGE_NEGOTIATION;
    p.v.probability = -1;
    p.v.status = LEAD_LOST;
    leads_t c = {0};
    cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 2000, on_lead, &c), STORE_OK);
    cr_assert_eq(c.n, 1, "the updated row is passed");
    lead_t want = l;
    want.name = T("Acme Inc");
    want.updated_at = 2000;
    expect_same_lead(&c.r[0].l, &want);
    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_same_lead(&got.l, &want);

    /* Clearing: named and unset. */
    memset(&p, 0, sizeof p);
    p.fields = LEAD_F_SOURCE | LEAD_F_ACCOUNT | LEAD_F_VALUE | LEAD_F_PROBABILITY | LEAD_F_STAGE;
    p.v.source = T(NULL);
    p.v.account_id[0] = '\0';
    p.v.has_value = false;
    p.v.probability = -1;
    p.v.stage = STAGE_PROPOSAL;
    memset(&c, 0, sizeof c);
    cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 3000, on_lead, &c), STORE_OK);
    cr_assert_eq(c.n, 1);
    want.source = T(NULL);
    want.account_id[0] = '\0';
    want.has_value = false;
    want.probability = -1;
    want.stage = STAGE_PROPOSAL;
    want.updated_at = 3000;
    expect_same_lead(&c.r[0].l, &want);
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_same_lead(&got.l, &want);
    cr_expect_str_eq(got.l.contact_id, ID(41), "contact untouched");

    /* An empty patch still counts as an update. */
    memset(&p, 0, sizeof p);
    memset(&c, 0, sizeof c);
    cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 4000, on_lead, &c), STORE_OK);
    cr_assert_eq(c.n, 1);
    want.updated_at = 4000;
    expect_same_lead(&c.r[0].l, &want);

    /* A full patch, as create builds it (every bit set). */
    memset(&p, 0, sizeof p);
    p.fields = ~0u;
    p.v = mk_lead(1, "Whole", 0);
    p.v.has_value = true;
    p.v.value_cents = 5;
    p.v.status = LEAD_CONVERTED;
    memset(&c, 0, sizeof c);
    cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 5000, on_lead, &c), STORE_OK);
    cr_assert_eq(c.n, 1);
    expect_text(c.r[0].l.name, "Whole", "name");
    cr_expect_null(c.r[0].l.source.ptr);
    cr_expect_str_eq(c.r[0].l.account_id, "");
    cr_expect_str_eq(c.r[0].l.contact_id, "");
    cr_expect_eq(c.r[0].l.value_cents, 5);
    cr_expect_eq(c.r[0].l.status, LEAD_CONVERTED);
    cr_expect_eq(c.r[0].l.created_at, 1000, "created_at never changes");

    memset(&c, 0, sizeof c);
    cr_expect_eq(store_lead_update(st, app1.id, ID(7), &p, 5000, on_lead, &c), STORE_NOT_FOUND);
    cr_expect_eq(c.n, 0);
}

Test(store, lead_updated_at_strictly_increases)
{
    create_lead(1, "Acme", 1000);
    lead_patch_t p = {0};
    p.fields = LEAD_F_STAGE;
    p.v.stage = STAGE_QUALIFIED;
    static const int64_t now[] = {1000, 1000, 1000, 999, 5000, 5000};
    static const int64_t want[] = {1001, 1002, 1003, 1004, 5000, 5001};
    for (size_t i = 0; i < sizeof now / sizeof now[0]; i++) {
        leads_t c = {0};
        cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, now[i], on_lead, &c), STORE_OK);
        cr_assert_eq(c.n, 1);
        cr_expect_eq(c.r[0].l.updated_at, want[i], "update %zu: updated_at %lld, want %lld", i,
                     (long long)c.r[0].l.updated_at, (long long)want[i]);
    }
    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    cr_expect_eq(got.l.updated_at, 5001);
    cr_expect_eq(got.l.created_at, 1000);
}

Test(store, lead_delete_removes_it_and_its_follows)
{
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    create_lead(2, "Keep", 1000);
    follow_t f1 = mk_follow(10, 1, "Call", true, 5000, 1000);
    follow_t f2 = mk_follow(11, 1, "Mail", false, 0, 1000);
    follow_t f3 = mk_follow(12, 2, "Other lead's", false, 0, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f1), STORE_OK);
    cr_assert_eq(store_follow_create(st, app1.id, &f2), STORE_OK);
    cr_assert_eq(store_follow_create(st, app1.id, &f3), STORE_OK);
    cr_assert_eq(lead_total(app1.id), 2);

    cr_assert_eq(store_lead_delete(st, app1.id, ID(1)), STORE_OK);
    lead_copy_t got;
    cr_expect_eq(get_lead(app1.id, ID(1), &got), STORE_NOT_FOUND);
    cr_expect_eq(store_lead_delete(st, app1.id, ID(1)), STORE_NOT_FOUND, "second delete");
    cr_expect_eq(lead_total(app1.id), 1);
    follow_copy_t fc;
    cr_expect_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_NOT_FOUND);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(11), &fc), STORE_NOT_FOUND);
    cr_expect_eq(get_follow(app1.id, ID(2), ID(12), &fc), STORE_OK, "another lead's follow stays");

    /* The follows are gone, not only hidden: a new lead with the same id
     * starts without any. */
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    follows_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, 0);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_NOT_FOUND);

    cr_expect_eq(store_lead_delete(st, app1.id, ID(33)), STORE_NOT_FOUND);
    cr_expect_eq(lead_total(app1.id), 2);
}

/* --- the trash ------------------------------------------------------------ */

/* What a trash page passed: ids in order, and each deleted_at. */
typedef struct trashed {
    int n;
    char ids[8][UUID_BUFSZ];
    int64_t deleted_at[8];
} trashed_t;

static void on_trashed(void *ctx, const lead_t *l, int64_t deleted_at)
{
    trashed_t *t = ctx;
    if (t->n == 8) return;
    memcpy(t->ids[t->n], l->id, UUID_BUFSZ);
    t->deleted_at[t->n++] = deleted_at;
}

static void on_lead_copy(void *ctx, const lead_t *l)
{
    keep_lead(ctx, l);
}

/* store_trash_due's rows, the app where trash_page keeps deleted_at. */
static void on_due(void *ctx, int64_t app, const char *id)
{
    trashed_t *t = ctx;
    if (t->n == 8) return;
    snprintf(t->ids[t->n], UUID_BUFSZ, "%s", id);
    t->deleted_at[t->n++] = app;
}

static trashed_t trash_page(int64_t app, const store_trash_query_t *q, int64_t *total)
{
    trashed_t t = {0};
    cr_assert_eq(store_trash_list(st, app, q, total, on_trashed, &t, NULL), STORE_OK);
    return t;
}

Test(store, trash_moves_a_lead_with_its_follows_and_back)
{
    create_lead(1, "Acme", 1000);
    create_lead(2, "Keep", 1000);
    follow_t f1 = mk_follow(10, 1, "Call", true, 5000, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f1), STORE_OK);
    cr_assert_eq(store_lead_trash(st, app1.id, ID(1), 7000), STORE_OK);
    lead_copy_t got;
    follow_copy_t fc;
    cr_expect_eq(get_lead(app1.id, ID(1), &got), STORE_NOT_FOUND);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_NOT_FOUND);
    cr_expect_eq(lead_total(app1.id), 1);
    cr_expect_eq(store_lead_trash(st, app1.id, ID(1), 7000), STORE_NOT_FOUND, "already in the trash");
    cr_expect_eq(store_lead_trash(st, app1.id, "nope", 7000), STORE_NOT_FOUND);
    int64_t total = -1;
    store_trash_query_t q = {.limit = 10};
    trashed_t t = trash_page(app1.id, &q, &total);
    cr_expect_eq(total, 1);
    cr_assert_eq(t.n, 1);
    cr_expect_str_eq(t.ids[0], ID(1));
    cr_expect_eq(t.deleted_at[0], 7000);
    t = trash_page(app2.id, &q, &total);
    cr_expect_eq(t.n, 0, "another app's trash is its own");
    cr_expect_eq(total, 0);
    cr_expect_eq(store_lead_recover(st, app2.id, ID(1), 8000, on_lead_copy, &got), STORE_NOT_FOUND);

    cr_assert_eq(store_lead_recover(st, app1.id, ID(1), 8000, on_lead_copy, &got), STORE_OK);
    cr_expect_str_eq(got.name, "Acme");
    cr_expect_eq(got.l.created_at, 1000);
    cr_expect_eq(got.l.updated_at, 8000, "a recovery is a change");
    cr_expect_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_OK);
    cr_expect_eq(fc.f.due_at, 5000);
    cr_expect_eq(lead_total(app1.id), 2);
    cr_expect_eq(store_lead_recover(st, app1.id, ID(1), 8000, on_lead_copy, &got), STORE_NOT_FOUND);
    t = trash_page(app1.id, &q, &total);
    cr_expect_eq(total, 0);
}

Test(store, trash_pages_purges_and_expires)
{
    for (int i = 1; i <= 4; i++) {
        create_lead(i, "L", 1000);
        follow_t f = mk_follow(10 + i, i, "F", false, 0, 1000);
        cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
        cr_assert_eq(store_lead_trash(st, app1.id, ID(i), 1000 * i), STORE_OK);
    }
    int64_t total = -1;
    store_trash_query_t q = {.limit = 2, .offset = 1};
    trashed_t t = trash_page(app1.id, &q, &total);
    cr_expect_eq(total, 4);
    cr_assert_eq(t.n, 2);
    cr_expect_str_eq(t.ids[0], ID(3), "newest deletion first");
    cr_expect_str_eq(t.ids[1], ID(2));
    q = (store_trash_query_t){.limit = 10, .after = true, .after_deleted_at = 3000};
    memcpy(q.after_id, ID(3), UUID_BUFSZ);
    t = trash_page(app1.id, &q, &total);
    cr_assert_eq(t.n, 2, "the rows after the position");
    cr_expect_str_eq(t.ids[0], ID(2));

    cr_assert_eq(store_trash_purge(st, app1.id, ID(4)), STORE_OK);
    cr_expect_eq(store_trash_purge(st, app1.id, ID(4)), STORE_NOT_FOUND);
    cr_expect_eq(store_trash_purge(st, app2.id, ID(3)), STORE_NOT_FOUND);
    lead_copy_t got;
    cr_expect_eq(store_lead_recover(st, app1.id, ID(4), 9000, on_lead_copy, &got), STORE_NOT_FOUND);

    trashed_t due = {0};
    cr_assert_eq(store_trash_due(st, 2500, 100, on_due, &due), STORE_OK);
    cr_assert_eq(due.n, 2, "the two trashed before 2500, oldest first");
    cr_expect_str_eq(due.ids[0], ID(1));
    cr_expect_str_eq(due.ids[1], ID(2));
    cr_expect_eq(due.deleted_at[0], app1.id, "with its app");
    int purged = -1;
    cr_assert_eq(store_trash_expire(st, 2500, 100, &purged), STORE_OK);
    cr_expect_eq(purged, 2, "those trashed before 2500");
    cr_assert_eq(store_trash_expire(st, 2500, 100, &purged), STORE_OK);
    cr_expect_eq(purged, 0);
    q = (store_trash_query_t){.limit = 10};
    t = trash_page(app1.id, &q, &total);
    cr_expect_eq(total, 1);
    cr_assert_eq(store_lead_recover(st, app1.id, ID(3), 9000, on_lead_copy, &got), STORE_OK);
    follow_copy_t fc;
    cr_expect_eq(get_follow(app1.id, ID(3), ID(13), &fc), STORE_OK, "its follow came back");
    cr_expect_eq(store_lead_recover(st, app1.id, ID(1), 9000, on_lead_copy, &got), STORE_NOT_FOUND);
}

/* The background purge (api/expire.c) with another writer between its
 * look for leads due and its batch: store_trash_due, the first time, lets
 * the real one pass its rows, then recovers lead 1 (it stays live) and
 * recovers lead 2 and trashes it again at 9000 (its retention starts
 * again), as another process on the same database could. */
static store_ops_t racing_ops;
static const store_ops_t *real_ops;
static int racing_dues;

static store_rc_t racing_due(store_t *s, int64_t before, int limit, store_trash_due_cb cb, void *ctx)
{
    store_rc_t rc = real_ops->trash_due(s, before, limit, cb, ctx);
    if (racing_dues++ > 0) return rc;
    s->ops = real_ops;
    lead_copy_t got;
    cr_assert_eq(store_lead_recover(st, app1.id, ID(1), 8000, on_lead_copy, &got), STORE_OK);
    cr_assert_eq(store_lead_recover(st, app1.id, ID(2), 8000, on_lead_copy, &got), STORE_OK);
    cr_assert_eq(store_lead_trash(st, app1.id, ID(2), 9000), STORE_OK);
    s->ops = &racing_ops;
    return rc;
}

Test(store, expire_leaves_a_lead_recovered_or_trashed_again_since_it_was_due)
{
    for (int i = 1; i <= 3; i++) {
        create_lead(i, "Due", 1000);
        cr_assert_eq(store_lead_trash(st, app1.id, ID(i), 1000 + i), STORE_OK);
    }
    real_ops = st->ops;
    racing_ops = *st->ops;
    racing_ops.trash_due = racing_due;
    st->ops = &racing_ops;
    int purged = api_trash_expire_due(st, 5000, 10, 9500);
    st->ops = real_ops;
    cr_expect_eq(purged, 1, "only lead 3 was still due when purged");
    lead_copy_t got;
    cr_expect_eq(get_lead(app1.id, ID(1), &got), STORE_OK, "the recovered lead is live");
    int64_t total = -1;
    store_trash_query_t q = {.limit = 10};
    trashed_t t = trash_page(app1.id, &q, &total);
    cr_assert_eq(t.n, 1, "lead 2, trashed again, waits out its new retention");
    cr_expect_str_eq(t.ids[0], ID(2));
    cr_expect_eq(t.deleted_at[0], 9000);
}

/* --- idempotency keys ------------------------------------------------------- */

typedef struct kept {
    int n, status;
    char hash[STORE_IDEM_HASH_HEX + 1], location[64], body[64];
} kept_t;

static void on_kept(void *ctx, const store_idem_t *k)
{
    kept_t *c = ctx;
    c->n++;
    c->status = k->status;
    snprintf(c->hash, sizeof c->hash, "%s", k->hash);
    snprintf(c->location, sizeof c->location, "%s", k->location);
    snprintf(c->body, sizeof c->body, "%.*s", (int)k->body.len, k->body.ptr != NULL ? k->body.ptr : "");
}

/* That app's key holds the answer (status, hash, location, body). */
static void expect_kept(int64_t app, const char *key, int status, const char *hash, const char *location,
                        const char *body)
{
    kept_t k = {0};
    cr_assert_eq(store_idem_get(st, app, key, 0, on_kept, &k, NULL), STORE_OK, "%s", key);
    cr_expect_eq(k.status, status, "%s", key);
    cr_expect_str_eq(k.hash, hash, "%s", key);
    cr_expect_str_eq(k.location, location, "%s", key);
    cr_expect_str_eq(k.body, body, "%s", key);
}

Test(store, idempotency_keys_are_claimed_kept_and_expired)
{
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    kept_t k = {0};
    cr_expect_eq(store_idem_get(st, app1.id, "k1", 0, on_kept, &k, NULL), STORE_NOT_FOUND);
    cr_assert_eq(store_idem_claim(st, app1.id, "k1", h1, 1000, 0, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(st, app1.id, "k1", 201, "/leads/x", (text_ref_t){"{\"a\":1}", 7}),
                 STORE_OK);
    cr_expect_eq(store_idem_claim(st, app1.id, "k1", h2, 2000, 0, NULL), STORE_CONFLICT,
                 "a live answer holds it");
    expect_kept(app1.id, "k1", 201, h1, "/leads/x", "{\"a\":1}");
    cr_expect_eq(store_idem_get(st, app1.id, "k1", 1001, on_kept, &k, NULL), STORE_NOT_FOUND, "too old");
    cr_expect_eq(store_idem_get(st, app2.id, "k1", 0, on_kept, &k, NULL), STORE_NOT_FOUND, "per app");
    cr_expect_eq(store_idem_claim(st, app2.id, "k1", h2, 2000, 0, NULL), STORE_OK);
    cr_expect_eq(store_idem_release(st, app2.id, "k1"), STORE_OK);
    cr_expect_eq(store_idem_claim(st, app2.id, "k1", h2, 2000, 0, NULL), STORE_OK, "released: free again");
    /* An answer older than fresh_after is replaced by a new claim. */
    cr_expect_eq(store_idem_claim(st, app1.id, "k1", h2, 3000, 1500, NULL), STORE_OK);
    cr_assert_eq(store_idem_get(st, app1.id, "k1", 0, on_kept, &k, NULL), STORE_OK);
    cr_expect_eq(k.status, 0, "claimed, not answered yet");
    int purged = -1;
    cr_assert_eq(store_idem_expire(st, 2500, 100, &purged), STORE_OK);
    cr_expect_eq(purged, 1, "app2's, made at 2000");
    cr_expect_eq(store_idem_get(st, app2.id, "k1", 0, on_kept, &k, NULL), STORE_NOT_FOUND);
    cr_expect_eq(store_idem_get(st, app1.id, "k1", 0, on_kept, &k, NULL), STORE_OK);
}

/* Inside a batch, as the writer runs them: a claim, then its answer or its
 * release; a later claim of the batch finds the answer, a stale answer is
 * replaced, and a batch ended without a commit keeps nothing. */
Test(store, idempotency_keys_inside_a_batch_are_claimed_kept_and_released)
{
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    kept_t k = {0};
    cr_assert_eq(store_idem_claim(st, app1.id, "old", h1, 1000, 0, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(st, app1.id, "old", 200, "", (text_ref_t){"{\"old\":1}", 9}), STORE_OK);

    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_expect_eq(store_idem_finish(st, app1.id, "k1", 201, "", (text_ref_t){"{}", 2}), STORE_NOT_FOUND,
                 "never claimed");
    cr_assert_eq(store_idem_claim(st, app1.id, "k1", h1, 5000, 4000, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(st, app1.id, "k1", 201, "/leads/a", (text_ref_t){"{\"a\":1}", 7}),
                 STORE_OK);
    cr_expect_eq(store_idem_claim(st, app1.id, "k1", h2, 5001, 4001, NULL), STORE_CONFLICT,
                 "kept in this batch");
    cr_assert_eq(store_idem_claim(st, app2.id, "k1", h2, 5002, 4002, NULL), STORE_OK, "per app");
    cr_assert_eq(store_idem_release(st, app2.id, "k1"), STORE_OK);
    cr_expect_eq(store_idem_finish(st, app2.id, "k1", 201, "", (text_ref_t){"{}", 2}), STORE_NOT_FOUND,
                 "released");
    cr_expect_eq(store_idem_claim(st, app1.id, "old", h2, 5003, 1000, NULL), STORE_CONFLICT, "still live");
    cr_assert_eq(store_idem_claim(st, app1.id, "old", h2, 5004, 4004, NULL), STORE_OK, "stale: replaced");
    cr_assert_eq(store_idem_finish(st, app1.id, "old", 201, "/leads/b", (text_ref_t){"{\"b\":2}", 7}),
                 STORE_OK);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);

    expect_kept(app1.id, "k1", 201, h1, "/leads/a", "{\"a\":1}");
    cr_expect_eq(store_idem_get(st, app1.id, "k1", 5000, on_kept, &k, NULL), STORE_OK, "made at 5000");
    cr_expect_eq(store_idem_get(st, app1.id, "k1", 5001, on_kept, &k, NULL), STORE_NOT_FOUND);
    cr_expect_eq(store_idem_get(st, app2.id, "k1", 0, on_kept, &k, NULL), STORE_NOT_FOUND);
    cr_assert_eq(store_idem_get(st, app1.id, "old", 0, on_kept, &k, NULL), STORE_OK);
    cr_expect_str_eq(k.hash, h2);
    cr_expect_str_eq(k.body, "{\"b\":2}");
    cr_expect_eq(store_idem_get(st, app1.id, "old", 5004, on_kept, &k, NULL), STORE_OK, "made at 5004");

    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(store_idem_claim(st, app2.id, "undone", h1, 6000, 5000, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(st, app2.id, "undone", 201, "", (text_ref_t){"{}", 2}), STORE_OK);
    cr_assert_eq(store_batch_end(st, 0), STORE_OK);
    cr_expect_eq(store_idem_get(st, app2.id, "undone", 0, on_kept, &k, NULL), STORE_NOT_FOUND);
}

/* Keeps a 201 made at 1000 for key, whose Location and body hold text. */
static void keep_answer(const char *key, const char *text)
{
    const char *h = "3333333333333333333333333333333333333333333333333333333333333333";
    char body[128], location[64];
    int n = snprintf(body, sizeof body, "{\"data\":{\"id\":\"%s\"}}", text);
    snprintf(location, sizeof location, "/leads/%s", text);
    cr_assert_eq(store_idem_claim(st, app1.id, key, h, 1000, 0, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(st, app1.id, key, 201, location, (text_ref_t){body, (size_t)n}), STORE_OK);
}

/* Whether key's answer is kept whole (1), kept with its body blanked by a
 * purge (0: its status and Location stay), or lost (-1). */
static int answer_kept(const char *key)
{
    kept_t k = {0};
    if (store_idem_get(st, app1.id, key, 0, on_kept, &k, NULL) != STORE_OK) return -1;
    cr_expect_eq(k.status, 201, "%s keeps its status", key);
    cr_expect(strncmp(k.location, "/leads/", 7) == 0, "%s keeps its Location", key);
    return k.body[0] != '\0';
}

Test(store, a_purge_blanks_the_answers_that_carry_the_lead)
{
    for (int i = 1; i <= 4; i++) {
        create_lead(i, "L", 1000);
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        keep_answer(key, ID(i));
    }
    keep_answer("other", ID(9));
    for (int i = 1; i <= 2; i++)
        cr_assert_eq(store_lead_trash(st, app1.id, ID(i), 2000 * i), STORE_OK);
    cr_expect_eq(answer_kept("k1"), 1, "a trashed lead's answer stays: it can be recovered");
    cr_assert_eq(store_trash_purge(st, app1.id, ID(1)), STORE_OK);
    cr_expect_eq(answer_kept("k1"), 0, "blanked with the purged lead");
    cr_expect_eq(answer_kept("k2"), 1);
    int purged = -1;
    cr_assert_eq(store_trash_expire(st, 5000, 100, &purged), STORE_OK);
    cr_expect_eq(purged, 1);
    cr_expect_eq(answer_kept("k2"), 0, "blanked with the expired lead");
    cr_assert_eq(store_lead_delete(st, app1.id, ID(3)), STORE_OK);
    cr_expect_eq(answer_kept("k3"), 0, "blanked with the lead deleted for good");
    cr_expect(answer_kept("k4") == 1 && answer_kept("other") == 1, "others' answers stay");
}

/* --- follows ---------------------------------------------------------------- */

Test(store, follow_create_and_get)
{
    follow_t orphan = mk_follow(10, 1, "No lead", false, 0, 1000);
    cr_expect_eq(store_follow_create(st, app1.id, &orphan), STORE_NOT_FOUND);

    create_lead(1, "Acme", 1000);
    follow_t f = mk_follow(10, 1, "Call John \xf0\x9f\x93\x9e", true, 1772719200123LL, 1500);
    f.description = T("line 1\nline 2\r\n\ttab");
    f.status = FOLLOW_COMPLETED;
    f.updated_at = 1600;
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    cr_expect_eq(store_follow_create(st, app1.id, &f), STORE_CONFLICT, "same id twice");

    follow_copy_t got;
    cr_assert_eq(get_follow(app1.id, ID(1), ID(10), &got), STORE_OK);
    cr_expect_str_eq(got.f.id, ID(10));
    cr_expect_str_eq(got.f.lead_id, ID(1));
    expect_text(got.f.title, "Call John \xf0\x9f\x93\x9e", "title");
    expect_text(got.f.description, "line 1\nline 2\r\n\ttab", "description");
    cr_expect(got.f.has_due);
    cr_expect_eq(got.f.due_at, 1772719200123LL);
    cr_expect_eq(got.f.status, FOLLOW_COMPLETED);
    cr_expect_eq(got.f.created_at, 1500);
    cr_expect_eq(got.f.updated_at, 1600);

    follow_t g = mk_follow(11, 1, "Bare", false, 0, 1500);
    cr_assert_eq(store_follow_create(st, app1.id, &g), STORE_OK);
    cr_assert_eq(get_follow(app1.id, ID(1), ID(11), &got), STORE_OK);
    cr_expect_not(got.f.has_due);
    cr_expect_null(got.f.description.ptr);
    cr_expect_eq(got.f.status, FOLLOW_PENDING);

    /* A follow is found only under its own lead. */
    create_lead(2, "Other", 1000);
    cr_expect_eq(get_follow(app1.id, ID(2), ID(10), &got), STORE_NOT_FOUND);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(19), &got), STORE_NOT_FOUND);
}

Test(store, follow_list_order_and_total)
{
    create_lead(1, "Acme", 1000);
    create_lead(2, "Other", 1000);

    /* due ascending, unset last, then created_at ascending, then id. */
    static const struct {
        int id;
        bool has_due;
        int64_t due, created;
    } rows[] = {
        {15, true, 500, 10}, {11, false, 0, 1},  {13, true, 500, 10},  {17, true, 100, 99},
        {19, false, 0, 0},   {18, true, 500, 5}, {12, true, -100, 50},
    };
    static const int order[] = {12, 17, 18, 13, 15, 19, 11};
    const int n = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < n; i++) {
        char title[16];
        snprintf(title, sizeof title, "F%d", rows[i].id);
        follow_t f = mk_follow(rows[i].id, 1, title, rows[i].has_due, rows[i].due, rows[i].created);
        cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    }
    follow_t elsewhere = mk_follow(30, 2, "Elsewhere", true, 1, 1);
    cr_assert_eq(store_follow_create(st, app1.id, &elsewhere), STORE_OK);

    follows_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, n);
    cr_assert_eq(c.n, n);
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(c.r[i].f.id, ID(order[i]), "position %d", i);
        char title[16];
        snprintf(title, sizeof title, "F%d", order[i]);
        expect_text(c.r[i].f.title, title, "title copied in the callback");
    }

    memset(&c, 0, sizeof c);
    total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), 3, 3, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, n);
    cr_assert_eq(c.n, 3);
    for (int i = 0; i < 3; i++)
        cr_expect_str_eq(c.r[i].f.id, ID(order[3 + i]), "page item %d", i);

    memset(&c, 0, sizeof c);
    total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), n, 3, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(total, n, "past the end: still the total");

    memset(&c, 0, sizeof c);
    cr_assert_eq(store_follow_list(st, app1.id, ID(2), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, 1);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.r[0].f.id, ID(30));

    memset(&c, 0, sizeof c);
    cr_expect_eq(store_follow_list(st, app1.id, ID(3), 0, 100, &total, on_follow, &c, NULL), STORE_NOT_FOUND,
                 "missing lead");
    cr_expect_eq(c.n, 0);

    /* A lead without follows: an empty page with total 0, not 404. */
    create_lead(4, "Alone", 1000);
    total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(4), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, 0);
}

/* The ids of the follows a list emits, in order. */
typedef struct follow_ids {
    int n;
    char id[128][UUID_BUFSZ];
} follow_ids_t;

static void on_follow_id(void *ctx, const follow_t *f)
{
    follow_ids_t *c = ctx;
    cr_assert_lt(c->n, 128);
    strcpy(c->id[c->n++], f->id);
}

typedef struct many_follow {
    bool has_due;
    int64_t due, created;
    int n; /* its big_id */
} many_follow_t;

/* The follows order: due ascending, unset last, then created_at, then id. */
static int cmp_many_follow(const void *pa, const void *pb)
{
    const many_follow_t *a = pa, *b = pb;
    if (a->has_due != b->has_due) return a->has_due ? -1 : 1;
    if (a->has_due && a->due != b->due) return a->due < b->due ? -1 : 1;
    if (a->created != b->created) return a->created < b->created ? -1 : 1;
    return (a->n > b->n) - (a->n < b->n);
}

/* A lead with more follows than SQLite's list sorts whole (follows.c:
 * 1,000) is paged through a LIMIT: the same order and total. */
Test(store, follow_list_of_many_follows)
{
    enum { N = 1003 };
    static many_follow_t want[N];
    create_lead(1, "Acme", 1000);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int i = 0; i < N; i++) {
        want[i] = (many_follow_t){.has_due = i % 3 != 0, .due = (i * 7919) % 500, .created = i % 7, .n = i};
        follow_t f = mk_follow(0, 1, "F", want[i].has_due, want[i].due, want[i].created);
        big_id(i, f.id);
        cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    qsort(want, N, sizeof want[0], cmp_many_follow);
    static const int64_t offsets[] = {0, 100, 950, 1000, N};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        static follow_ids_t c;
        memset(&c, 0, sizeof c);
        int64_t total = -1, off = offsets[k];
        cr_assert_eq(store_follow_list(st, app1.id, ID(1), off, 100, &total, on_follow_id, &c, NULL),
                     STORE_OK);
        cr_expect_eq(total, N);
        cr_assert_eq(c.n, off + 100 <= N ? 100 : (int)(N - off), "offset %lld", (long long)off);
        for (int i = 0; i < c.n; i++) {
            char id[UUID_BUFSZ];
            big_id(want[off + i].n, id);
            cr_expect_str_eq(c.id[i], id, "offset %lld, item %d", (long long)off, i);
        }
    }
}

Test(store, follow_update_partial)
{
    create_lead(1, "Acme", 1000);
    follow_t f = mk_follow(10, 1, "Call", true, 9000, 1000);
    f.description = T("notes");
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);

    follow_patch_t p = {0};
    p.fields = FOLLOW_F_STATUS;
    p.v.status = FOLLOW_COMPLETED;
    p.v.title = T("must not be used");
    p.v.has_due = false;
    follows_t c = {0};
    cr_assert_eq(store_follow_update(st, app1.id, ID(1), ID(10), &p, 1000, on_follow, &c), STORE_OK);
    cr_assert_eq(c.n, 1, "the updated row is passed");
    expect_text(c.r[0].f.title, "Call", "title");
    expect_text(c.r[0].f.description, "notes", "description");
    cr_expect(c.r[0].f.has_due);
    cr_expect_eq(c.r[0].f.due_at, 9000);
    cr_expect_eq(c.r[0].f.status, FOLLOW_COMPLETED);
    cr_expect_eq(c.r[0].f.updated_at, 1001, "same now: still later");
    cr_expect_str_eq(c.r[0].f.lead_id, ID(1));

    memset(&p, 0, sizeof p);
    p.fields = FOLLOW_F_DESCRIPTION | FOLLOW_F_DUE | FOLLOW_F_TITLE;
    p.v.title = T("Call again");
    p.v.description = T(NULL);
    p.v.has_due = false;
    p.v.status = FOLLOW_PENDING; /* not named: stays completed */
    memset(&c, 0, sizeof c);
    cr_assert_eq(store_follow_update(st, app1.id, ID(1), ID(10), &p, 1000, on_follow, &c), STORE_OK);
    cr_assert_eq(c.n, 1);
    expect_text(c.r[0].f.title, "Call again", "title");
    cr_expect_null(c.r[0].f.description.ptr);
    cr_expect_not(c.r[0].f.has_due);
    cr_expect_eq(c.r[0].f.status, FOLLOW_COMPLETED);
    cr_expect_eq(c.r[0].f.updated_at, 1002);

    follow_copy_t got;
    cr_assert_eq(get_follow(app1.id, ID(1), ID(10), &got), STORE_OK);
    expect_text(got.f.title, "Call again", "title");
    cr_expect_eq(got.f.updated_at, 1002);
    cr_expect_eq(got.f.created_at, 1000);

    memset(&c, 0, sizeof c);
    cr_expect_eq(store_follow_update(st, app1.id, ID(1), ID(11), &p, 3000, on_follow, &c), STORE_NOT_FOUND);
    cr_expect_eq(store_follow_update(st, app1.id, ID(2), ID(10), &p, 3000, on_follow, &c), STORE_NOT_FOUND,
                 "wrong lead");
    cr_expect_eq(c.n, 0);
}

Test(store, follow_delete)
{
    create_lead(1, "Acme", 1000);
    follow_t f = mk_follow(10, 1, "Call", false, 0, 1000);
    follow_t g = mk_follow(11, 1, "Mail", false, 0, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    cr_assert_eq(store_follow_create(st, app1.id, &g), STORE_OK);

    cr_expect_eq(store_follow_delete(st, app1.id, ID(2), ID(10)), STORE_NOT_FOUND, "wrong lead");
    cr_assert_eq(store_follow_delete(st, app1.id, ID(1), ID(10)), STORE_OK);
    follow_copy_t got;
    cr_expect_eq(get_follow(app1.id, ID(1), ID(10), &got), STORE_NOT_FOUND);
    cr_expect_eq(store_follow_delete(st, app1.id, ID(1), ID(10)), STORE_NOT_FOUND, "second delete");
    cr_expect_eq(get_follow(app1.id, ID(1), ID(11), &got), STORE_OK, "the other follow stays");

    follows_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, 1);
    lead_copy_t lc;
    cr_expect_eq(get_lead(app1.id, ID(1), &lc), STORE_OK, "the lead stays");
}

/* --- tenants ------------------------------------------------------------------ */

Test(store, tenant_isolation)
{
    lead_t l = mk_lead(1, "App one's", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    follow_t f = mk_follow(10, 1, "App one's follow", true, 5000, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);

    lead_copy_t got;
    cr_expect_eq(get_lead(app2.id, ID(1), &got), STORE_NOT_FOUND);

    lead_patch_t p = {0};
    p.fields = LEAD_F_NAME;
    p.v.name = T("Stolen");
    leads_t c = {0};
    cr_expect_eq(store_lead_update(st, app2.id, ID(1), &p, 2000, on_lead, &c), STORE_NOT_FOUND);
    cr_expect_eq(c.n, 0, "no row passed to the other app");
    cr_expect_eq(store_lead_delete(st, app2.id, ID(1)), STORE_NOT_FOUND);

    leads_t lc = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(st, app2.id, 0, 100, &total, on_lead, &lc, NULL), STORE_OK);
    cr_expect_eq(total, 0);
    cr_expect_eq(lc.n, 0);

    /* Follows under app one's lead, through app two. */
    follow_t f2 = mk_follow(11, 1, "Planted", false, 0, 1000);
    cr_expect_eq(store_follow_create(st, app2.id, &f2), STORE_NOT_FOUND);
    follow_copy_t fc;
    cr_expect_eq(get_follow(app2.id, ID(1), ID(10), &fc), STORE_NOT_FOUND);
    follows_t flc = {0};
    cr_expect_eq(store_follow_list(st, app2.id, ID(1), 0, 100, &total, on_follow, &flc, NULL),
                 STORE_NOT_FOUND);
    cr_expect_eq(flc.n, 0);
    follow_patch_t fp = {0};
    fp.fields = FOLLOW_F_TITLE;
    fp.v.title = T("Stolen");
    follows_t fuc = {0};
    cr_expect_eq(store_follow_update(st, app2.id, ID(1), ID(10), &fp, 2000, on_follow, &fuc),
                 STORE_NOT_FOUND);
    cr_expect_eq(fuc.n, 0);
    cr_expect_eq(store_follow_delete(st, app2.id, ID(1), ID(10)), STORE_NOT_FOUND);

    /* Nothing of app one changed. */
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_same_lead(&got.l, &l);
    cr_assert_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_OK);
    expect_text(fc.f.title, "App one's follow", "title");
    cr_expect_eq(fc.f.updated_at, 1000);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(11), &fc), STORE_NOT_FOUND, "planted follow absent");
    cr_expect_eq(lead_total(app1.id), 1);
    cr_expect_eq(lead_total(app2.id), 0);
}

/* --- group commit ----------------------------------------------------------- */

Test(store, batch_commits_its_writes_together)
{
    create_lead(1, "Before", 1000);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(2, "In the batch", 2000);
    follow_t f = mk_follow(10, 2, "Call", false, 0, 2000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    cr_assert_eq(store_lead_delete(st, app1.id, ID(1)), STORE_OK);
    lead_copy_t got;
    cr_expect_eq(get_lead(app1.id, ID(2), &got), STORE_OK, "the batch sees its own writes");

    /* Another connection sees none of it until the commit. */
    store_t *other = open_store();
    cr_expect_eq(get_lead_in(other, app1.id, ID(2), &got), STORE_NOT_FOUND);
    cr_expect_eq(get_lead_in(other, app1.id, ID(1), &got), STORE_OK);
    cr_expect_eq(lead_total_in(other, app1.id), 1);

    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(get_lead_in(other, app1.id, ID(2), &got), STORE_OK);
    cr_expect_eq(get_lead_in(other, app1.id, ID(1), &got), STORE_NOT_FOUND);
    cr_expect_eq(lead_total_in(other, app1.id), 1, "one created, one deleted");
    store_close(other);
    follow_copy_t fc;
    cr_expect_eq(get_follow(app1.id, ID(2), ID(10), &fc), STORE_OK);
}

Test(store, batch_undoes_a_failed_write_alone)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(1, "First", 1000);
    lead_t dup = mk_lead(1, "Again", 1000);
    cr_expect_eq(store_lead_create(st, app1.id, &dup), STORE_CONFLICT);
    follow_t orphan = mk_follow(10, 9, "No lead", false, 0, 1000);
    cr_expect_eq(store_follow_create(st, app1.id, &orphan), STORE_NOT_FOUND);
    follow_t dupf = mk_follow(11, 1, "Call", false, 0, 1000);
    cr_expect_eq(store_follow_create(st, app1.id, &dupf), STORE_OK);
    cr_expect_eq(store_follow_create(st, app1.id, &dupf), STORE_CONFLICT);
    lead_patch_t p = {.fields = LEAD_F_NAME};
    p.v.name = T("Nobody");
    leads_t c = {0};
    cr_expect_eq(store_lead_update(st, app1.id, ID(7), &p, 2000, on_lead, &c), STORE_NOT_FOUND);
    cr_expect_eq(store_lead_delete(st, app1.id, ID(7)), STORE_NOT_FOUND);
    create_lead(2, "Second", 1000);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);

    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    expect_text(got.l.name, "First", "the conflicting insert changed nothing");
    cr_expect_eq(get_lead(app1.id, ID(2), &got), STORE_OK, "a write after the failures stayed");
    cr_expect_eq(lead_total(app1.id), 2, "failed writes left the lead count alone");
    follows_t fl = {0};
    int64_t total = -1;
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), 0, 10, &total, on_follow, &fl, NULL), STORE_OK);
    cr_expect_eq(total, 1);
}

Test(store, batch_ended_without_commit_leaves_nothing)
{
    create_lead(1, "Kept", 1000);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(2, "Undone", 1000);
    cr_assert_eq(store_lead_delete(st, app1.id, ID(1)), STORE_OK);
    cr_expect_eq(store_batch_end(st, 0), STORE_OK);
    lead_copy_t got;
    cr_expect_eq(get_lead(app1.id, ID(1), &got), STORE_OK);
    cr_expect_eq(get_lead(app1.id, ID(2), &got), STORE_NOT_FOUND);
    cr_expect_eq(lead_total(app1.id), 1);
}

/* Makes the database end the batch's transaction by itself, as a lost
 * connection (PostgreSQL) or a full disk (SQLite, which then rolls the
 * whole transaction back) would. */
static void lose_the_batch_transaction(void)
{
    if (on_postgres) {
        /* The store's connection is the only one named crmd on this
         * database; the call returns once it is gone. */
        pg_run(url_, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND application_name = 'crmd'");
        return;
    }
    cr_assert_eq(sqlite3_exec(((sqlite_store_t *)st)->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
}

Test(store, batch_whose_transaction_is_lost_cannot_commit)
{
    store_set_log(quiet, NULL);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(1, "Acknowledged too early?", 1000);
    lose_the_batch_transaction();
    lead_t l = mk_lead(2, "After the loss", 1000);
    cr_expect_eq(store_lead_create(st, app1.id, &l), STORE_UNAVAILABLE, "writes are refused");
    cr_expect_eq(store_batch_end(st, 1), STORE_UNAVAILABLE, "the commit fails");

    /* None of the batch happened, and the store goes on (reconnecting). */
    lead_copy_t got;
    cr_expect_eq(get_lead(app1.id, ID(1), &got), STORE_NOT_FOUND);
    cr_expect_eq(get_lead(app1.id, ID(2), &got), STORE_NOT_FOUND);
    cr_expect_eq(lead_total(app1.id), 0);
    create_lead(3, "Later", 1000);
    cr_expect_eq(lead_total(app1.id), 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool lock_waited(void);

/* The other connection of the locking tests: it changes the record the
 * batch read, and says when it is done (and, on SQLite, when it waited
 * for a lock). */
typedef struct rival {
    char url[URL_MAX];
    int64_t app;
    bool follow;
    store_rc_t rc;
    char title[64];     /* the title it saw after its update */
    atomic_bool waited; /* SQLite: its busy handler ran */
    atomic_bool done;
} rival_t;

/* The rival's busy handler on SQLite, in place of the store's busy
 * timeout: it says that the rival waited for a lock, and waits up to 60 s
 * (the test waits 30 s at most for that). */
static int rival_busy(void *ctx, int tries)
{
    rival_t *r = ctx;
    atomic_store(&r->waited, true);
    if (tries >= 60000) return 0;
    sleep_ms(1);
    return 1;
}

/* Whether the rival is seen waiting for a lock: on PostgreSQL, a session
 * of the test's database waits for one (the rival's is the only other). */
static bool rival_waits(rival_t *r)
{
    return on_postgres ? lock_waited() : atomic_load(&r->waited);
}

static void keep_title(void *ctx, const follow_t *f)
{
    rival_t *r = ctx;
    snprintf(r->title, sizeof r->title, "%.*s", (int)f->title.len, f->title.ptr);
}

static void keep_name(void *ctx, const lead_t *l)
{
    rival_t *r = ctx;
    snprintf(r->title, sizeof r->title, "%.*s", (int)l->name.len, l->name.ptr);
}

static void *rival_update(void *arg)
{
    rival_t *r = arg;
    char err[STORE_OPEN_ERR_MAX];
    store_t *s = store_open(r->url, err, sizeof err);
    r->rc = STORE_ERROR;
    if (s != NULL && !on_postgres) sqlite3_busy_handler(((sqlite_store_t *)s)->db, rival_busy, r);
    if (s != NULL && r->follow) {
        follow_patch_t p = {.fields = FOLLOW_F_STATUS, .v.status = FOLLOW_COMPLETED};
        r->rc = store_follow_update(s, r->app, ID(1), ID(10), &p, 9000, keep_title, r);
    } else if (s != NULL) {
        lead_patch_t p = {.fields = LEAD_F_STAGE, .v.stage = STAGE_QUALIFIED};
        r->rc = store_lead_update(s, r->app, ID(1), &p, 9000, keep_name, r);
    }
    store_close(s);
    atomic_store(&r->done, true);
    return NULL;
}

/* A read inside a batch holds its row until the batch ends: another
 * connection's update of it waits, then applies on top of the batch's. */
static void expect_read_locks_row(bool follow)
{
    create_lead(1, "Read", 1000);
    follow_t f = mk_follow(10, 1, "Read", true, 5000, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);

    cr_assert_eq(store_batch_begin(st), STORE_OK);
    lead_copy_t lc;
    follow_copy_t fc;
    if (follow)
        cr_assert_eq(get_follow(app1.id, ID(1), ID(10), &fc), STORE_OK);
    else
        cr_assert_eq(get_lead(app1.id, ID(1), &lc), STORE_OK);

    rival_t r = {.app = app1.id, .follow = follow};
    snprintf(r.url, sizeof r.url, "%s", url_);
    atomic_init(&r.waited, false);
    atomic_init(&r.done, false);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, rival_update, &r), 0);
    /* The rival must be seen waiting for the lock (not only not done yet,
     * which a rival slow to start would pass), and not done: polled up to
     * 30 s for its start. The batch ends as soon as the wait is seen, well
     * inside the rival's wait (60 s on SQLite, PostgreSQL's lock_timeout
     * of 5 s). */
    bool waited = false;
    for (int i = 0; i < 3000 && !atomic_load(&r.done) && !(waited = rival_waits(&r)); i++)
        sleep_ms(10);
    cr_expect_not(atomic_load(&r.done), "the rival changed the row the batch had read");
    cr_expect(waited, "the rival was never seen waiting for the row the batch had read");

    /* The batch writes what depended on its read, and commits. */
    leads_t lu = {0};
    follows_t fu = {0};
    if (follow) {
        follow_patch_t p = {.fields = FOLLOW_F_TITLE, .v.title = T("Batch")};
        cr_assert_eq(store_follow_update(st, app1.id, ID(1), ID(10), &p, 2000, on_follow, &fu), STORE_OK);
    } else {
        lead_patch_t p = {.fields = LEAD_F_NAME, .v.name = T("Batch")};
        cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 2000, on_lead, &lu), STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    pthread_join(t, NULL);
    cr_expect_eq(r.rc, STORE_OK);
    cr_expect_str_eq(r.title, "Batch", "the rival's update applied on top of the batch's");
}

Test(store, a_follow_read_in_a_batch_locks_its_row)
{
    expect_read_locks_row(true);
}

Test(store, a_lead_read_in_a_batch_locks_its_row)
{
    expect_read_locks_row(false);
}

/* --- administration ------------------------------------------------------------ */

typedef struct app_seen {
    int n;
    store_app_t app[4];
    int64_t leads[4];
} app_seen_t;

static void keep_app(void *ctx, const store_app_t *app, int64_t leads)
{
    app_seen_t *a = ctx;
    cr_assert_lt(a->n, 4);
    a->app[a->n] = *app;
    a->leads[a->n++] = leads;
}

Test(store, app_list_and_disabling)
{
    create_lead(1, "One", 1000);
    create_lead(2, "Two", 1000);
    app_seen_t a = {0};
    cr_assert_eq(store_app_list(st, keep_app, &a), STORE_OK);
    cr_assert_eq(a.n, 2);
    cr_expect_eq(a.app[0].id, app1.id, "oldest first");
    cr_expect_str_eq(a.app[0].key, "pk_live_one");
    cr_expect_str_eq(a.app[0].name, "App One");
    cr_expect_eq(a.leads[0], 2);
    cr_expect_eq(a.app[1].id, app2.id);
    cr_expect_eq(a.leads[1], 0);

    cr_assert_eq(store_app_set_disabled(st, "pk_live_two", 1), STORE_OK);
    store_app_t found;
    cr_assert_eq(store_app_find(st, "pk_live_two", &found, NULL), STORE_OK, "disabled apps are found");
    cr_expect_eq(found.disabled, 1);
    cr_assert_eq(store_app_find(st, "pk_live_one", &found, NULL), STORE_OK);
    cr_expect_eq(found.disabled, 0, "only that app");
    cr_assert_eq(store_app_set_disabled(st, "pk_live_two", 0), STORE_OK);
    cr_assert_eq(store_app_find(st, "pk_live_two", &found, NULL), STORE_OK);
    cr_expect_eq(found.disabled, 0);
    cr_expect_eq(store_app_set_disabled(st, "pk_live_nope", 1), STORE_NOT_FOUND);
}

typedef struct revoked_seen {
    int n;
    int64_t seq[8];
    char jti[8][64];
} revoked_seen_t;

static void keep_revoked(void *ctx, int64_t seq, const char *jti)
{
    revoked_seen_t *r = ctx;
    cr_assert_lt(r->n, 8);
    r->seq[r->n] = seq;
    snprintf(r->jti[r->n++], sizeof r->jti[0], "%s", jti);
}

/* Records a token of app issued by this database. */
static void record_token(store_t *s, const char *jti, int64_t app)
{
    store_token_t t = {.jti = jti, .app = app, .subject = "cli", .issued_at = 1000, .expires_at = 9000};
    cr_assert_eq(store_token_record(s, &t), STORE_OK, "%s", jti);
}

Test(store, revocations_come_back_in_order)
{
    revoked_seen_t r = {0};
    cr_assert_eq(store_revoked_since(st, 0, keep_revoked, &r, NULL), STORE_OK);
    cr_expect_eq(r.n, 0);
    record_token(st, "jti-a", app1.id);
    record_token(st, "jti-b", app2.id);
    record_token(st, "jti-c", app1.id);
    cr_assert_eq(store_token_revoke(st, "jti-a", 1000, false), STORE_OK);
    cr_assert_eq(store_token_revoke(st, "jti-b", 1001, false), STORE_OK);
    cr_assert_eq(store_token_revoke(st, "jti-a", 1002, false), STORE_CONFLICT, "revoked already");
    store_t *other = open_store();
    cr_assert_eq(store_token_revoke(other, "jti-c", 1003, false), STORE_OK);
    store_close(other);

    cr_assert_eq(store_revoked_since(st, 0, keep_revoked, &r, NULL), STORE_OK);
    cr_assert_eq(r.n, 3, "jti-a once");
    cr_expect_str_eq(r.jti[0], "jti-a");
    cr_expect_str_eq(r.jti[1], "jti-b");
    cr_expect_str_eq(r.jti[2], "jti-c");
    cr_expect(r.seq[0] > 0 && r.seq[0] < r.seq[1] && r.seq[1] < r.seq[2], "sequence numbers increase");

    /* A poller that saw up to the second asks for what came after it. */
    revoked_seen_t after = {0};
    cr_assert_eq(store_revoked_since(st, r.seq[1], keep_revoked, &after, NULL), STORE_OK);
    cr_assert_eq(after.n, 1);
    cr_expect_str_eq(after.jti[0], "jti-c");
}

/* Revoking an id this database never issued (a typo) is STORE_NOT_FOUND
 * and records nothing, unless the caller says the token predates the
 * records; a token recorded twice is a conflict. */
Test(store, only_recorded_tokens_are_revoked_unless_asked)
{
    cr_expect_eq(store_token_revoke(st, "jti-typo", 1000, false), STORE_NOT_FOUND);
    revoked_seen_t r = {0};
    cr_assert_eq(store_revoked_since(st, 0, keep_revoked, &r, NULL), STORE_OK);
    cr_expect_eq(r.n, 0, "a refused revocation records nothing");

    record_token(st, "jti-a", app1.id);
    store_token_t again = {.jti = "jti-a", .app = app2.id, .subject = "x", .issued_at = 1, .expires_at = 2};
    cr_expect_eq(store_token_record(st, &again), STORE_CONFLICT);
    cr_expect_eq(store_token_revoke(st, "jti-a", 1001, false), STORE_OK);
    cr_expect_eq(store_token_revoke(st, "jti-a", 1002, true), STORE_CONFLICT);
    cr_expect_eq(store_token_revoke(st, "jti-old", 1003, true), STORE_OK, "a token from before the records");
    cr_expect_eq(store_token_revoke(st, "jti-old", 1004, false), STORE_CONFLICT, "revoked already");
    cr_assert_eq(store_revoked_since(st, 0, keep_revoked, &r, NULL), STORE_OK);
    cr_assert_eq(r.n, 2);
    cr_expect_str_eq(r.jti[0], "jti-a");
    cr_expect_str_eq(r.jti[1], "jti-old");
}

/* --- bulk copy --------------------------------------------------------------- */

/* Fills the test's database with something of everything. */
static void populate(void)
{
    cr_assert_eq(add_key(st, "PEM-SOURCE", 1), STORE_OK);
    lead_t l = mk_lead(1, "Acme", 1000);
    l.source = T("web");
    l.has_value = true;
    l.value_cents = 250;
    strcpy(l.account_id, ID(40));
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    create_lead(2, "Beta", 2000);
    lead_t other = mk_lead(3, "Other app", 1500);
    cr_assert_eq(store_lead_create(st, app2.id, &other), STORE_OK);
    follow_t f = mk_follow(10, 1, "Call", true, 5000, 1100);
    f.description = T("notes");
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    follow_t g = mk_follow(11, 3, "Mail", false, 0, 1600);
    cr_assert_eq(store_follow_create(st, app2.id, &g), STORE_OK);
    record_token(st, "jti-a", app1.id);
    record_token(st, "jti-b", app2.id);
    cr_assert_eq(store_token_revoke(st, "jti-a", 1000, false), STORE_OK);
    cr_assert_eq(store_app_set_disabled(st, "pk_live_two", 1), STORE_OK);
}

static void expect_counts(const store_counts_t *n, int64_t apps, int64_t leads, int64_t follows,
                          int64_t issued, int64_t revoked, int key, const char *what)
{
    cr_expect_eq(n->issued, issued, "%s: issued", what);
    cr_expect_eq(n->apps, apps, "%s: apps", what);
    cr_expect_eq(n->leads, leads, "%s: leads", what);
    cr_expect_eq(n->follows, follows, "%s: follows", what);
    cr_expect_eq(n->revoked, revoked, "%s: revoked", what);
    cr_expect_eq(n->lead_count_sum, leads, "%s: the apps' lead counts add up", what);
    cr_expect_eq(n->keys, key, "%s: signing keys", what);
}

/* What an export passed, in order. */
typedef struct exported {
    char order[64]; /* K, A, I, R, L, F: one letter a record */
    size_t n;
    int64_t last_app;
    store_counts_t count;
} exported_t;

/* Notes one record of kind k (a letter) in the export's order. */
static store_rc_t seen(exported_t *x, char k, int64_t *count)
{
    cr_assert_lt(x->n, sizeof x->order - 1);
    x->order[x->n++] = k;
    (*count)++;
    return STORE_OK;
}

static store_rc_t x_key(void *ctx, const store_key_t *key)
{
    exported_t *x = ctx;
    cr_expect_str_eq(key->pem, "PEM-SOURCE");
    return seen(x, 'K', &x->count.keys);
}

static store_rc_t x_app(void *ctx, const store_app_t *app)
{
    exported_t *x = ctx;
    cr_expect_gt(app->id, x->last_app, "apps by id");
    x->last_app = app->id;
    return seen(x, 'A', &x->count.apps);
}

static store_rc_t x_issued(void *ctx, const store_token_t *t)
{
    exported_t *x = ctx;
    bool a = strcmp(t->jti, "jti-a") == 0;
    cr_expect(a || strcmp(t->jti, "jti-b") == 0, "%s", t->jti);
    cr_expect_eq(t->app, a ? app1.id : app2.id);
    cr_expect_str_eq(t->subject, "cli");
    cr_expect(t->issued_at == 1000 && t->expires_at == 9000);
    return seen(x, 'I', &x->count.issued);
}

static store_rc_t x_revoked(void *ctx, const char *jti, int64_t at)
{
    cr_expect_str_eq(jti, "jti-a");
    cr_expect_eq(at, 1000);
    exported_t *x = ctx;
    return seen(x, 'R', &x->count.revoked);
}

static store_rc_t x_lead(void *ctx, int64_t app, const lead_t *l)
{
    cr_expect(app == app1.id || app == app2.id);
    if (strcmp(l->id, ID(1)) == 0) {
        expect_text(l->source, "web", "exported source");
        cr_expect_eq(l->value_cents, 250);
        cr_expect_str_eq(l->account_id, ID(40));
    }
    exported_t *x = ctx;
    return seen(x, 'L', &x->count.leads);
}

static store_rc_t x_follow(void *ctx, int64_t app, const follow_t *f)
{
    cr_expect(app == app1.id || app == app2.id);
    cr_expect_str_eq(f->lead_id, strcmp(f->id, ID(10)) == 0 ? ID(1) : ID(3), "follow %s's lead", f->id);
    exported_t *x = ctx;
    return seen(x, 'F', &x->count.follows);
}

Test(store, copy_count_and_export)
{
    populate();
    store_counts_t n;
    cr_assert_eq(store_copy_count(st, &n), STORE_OK);
    expect_counts(&n, 2, 3, 2, 2, 1, 1, "count");

    /* Every receiver, in the order of the export. */
    store_export_t cb = {.key = x_key, .app = x_app, .issued = x_issued};
    cb.revoked = x_revoked;
    cb.lead = x_lead;
    cb.follow = x_follow;
    exported_t x = {0};
    store_counts_t total;
    cr_assert_eq(store_copy_export(st, &cb, &x, &total), STORE_OK);
    expect_counts(&total, 2, 3, 2, 2, 1, 1, "the export's total");
    cr_expect_str_eq(x.order, "KAAIIRLLLFF", "key, apps, issued tokens, revocations, leads, follows");
    cr_expect_eq(x.count.leads, total.leads);
    cr_expect_eq(x.count.follows, total.follows);
}

/* Copies the fixture's database into a new one, named into target; what
 * the copy said goes into out. */
static void copy_to_fresh(char target[URL_MAX], char out[4096])
{
    fresh_db(target, URL_MAX);
    char err[4096] = "";
    out[0] = '\0';
    FILE *o = fmemopen(out, 4096, "w"), *e = fmemopen(err, sizeof err, "w");
    store_rc_t rc = store_copy(url_, target, false, o, e);
    fclose(o);
    fclose(e);
    cr_assert_eq(rc, STORE_OK, "store_copy: %s", err);
}

Test(store, copy_to_an_empty_database_keeps_everything)
{
    populate();
    char target[URL_MAX], out[4096];
    copy_to_fresh(target, out);
    cr_expect(strstr(out,
                     "verified: the target now holds 2 apps, 3 leads, 2 follows, 2 issued tokens, 1 revoked "
                     "tokens") != NULL,
              "%s", out);

    store_t *t = open_url(target);
    store_counts_t n;
    cr_assert_eq(store_copy_count(t, &n), STORE_OK);
    expect_counts(&n, 2, 3, 2, 2, 1, 1, "target");
    /* The records came along: the copy knows which tokens it issued. */
    cr_expect_eq(store_token_revoke(t, "jti-b", 2000, false), STORE_OK);
    cr_expect_eq(store_token_revoke(t, "jti-a", 2000, false), STORE_CONFLICT);
    cr_expect_eq(store_token_revoke(t, "jti-typo", 2000, false), STORE_NOT_FOUND);
    store_app_t a;
    cr_assert_eq(store_app_find(t, "pk_live_two", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app2.id, "ids are kept");
    cr_expect_eq(a.disabled, 1);
    lead_copy_t got;
    cr_assert_eq(get_lead_in(t, app1.id, ID(1), &got), STORE_OK);
    expect_text(got.l.source, "web", "source");
    cr_expect_eq(got.l.value_cents, 250);
    cr_expect_eq(got.l.created_at, 1000);
    cr_expect_eq(lead_total_in(t, app1.id), 2, "lead counts set by the import");
    cr_expect_str_eq(keys_of(t).pems, "PEM-SOURCE");
    /* New apps after the copy get ids past the copied ones. */
    store_app_t fresh;
    cr_assert_eq(store_app_create(t, "pk_live_new", "New", 5000, &fresh), STORE_OK);
    cr_expect_gt(fresh.id, app2.id);
    store_close(t);
}

Test(store, a_failed_import_leaves_the_target_as_it_was)
{
    store_set_log(quiet, NULL);
    char target[URL_MAX];
    fresh_db(target, sizeof target);
    store_t *t = open_url(target);
    cr_assert_eq(store_migrate(t), STORE_OK);
    store_counts_t before;
    cr_assert_eq(store_copy_import_begin(t, &before), STORE_OK);
    expect_counts(&before, 0, 0, 0, 0, 0, 0, "empty target");
    int64_t id = 0;
    cr_assert_eq(store_copy_import_app(t, &app1, 1, &id), STORE_OK);
    cr_expect_eq(id, app1.id);
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_copy_import_lead(t, id, &l), STORE_OK);
    /* A second lead with the same id: the import fails, now or (a backend
     * that sends ahead) at the latest when it is to commit. */
    store_rc_t rc = store_copy_import_lead(t, id, &l);
    if (rc == STORE_OK) {
        rc = store_copy_import_end(t, 1);
        cr_expect_neq(rc, STORE_OK, "the import committed over a failed row");
    } else {
        cr_expect_eq(rc, STORE_CONFLICT);
        cr_expect_eq(store_copy_import_end(t, 0), STORE_OK);
    }
    store_counts_t after;
    cr_assert_eq(store_copy_count(t, &after), STORE_OK);
    expect_counts(&after, 0, 0, 0, 0, 0, 0, "after the failed import");
    store_close(t);
}

/* --- finding: filters, sorts, keyset pages, the summary ------------------------
 * A set of leads with ties and unset values everywhere is made once per
 * test; every read is compared with a reference computed here, in C, from
 * the contract's rules (independent of store/find.c). */

#define NF 64           /* leads of the finding tests */
#define FIND_NOW 500000 /* "now" of their reads: dues before it are overdue */

typedef struct fl {
    lead_t l;
    char id[UUID_BUFSZ];
    char name[64], source[64];
    bool overdue, open; /* has a follow reading overdue; one not completed */
    bool gone;          /* deleted */
} fl_t;

static fl_t fls[NF + 128];
static int nfl;

static uint64_t rnd_state;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005u + 1442695040888963407u;
    return (unsigned)(rnd_state >> 33) % n;
}

static const char *const NAMES[] = {"Acme Corp renewal",
                                    "ACME corp RENEWAL",
                                    "Ärger GmbH",
                                    "ärger gmbh",
                                    "Σοφία Deal",
                                    "σοφία deal",
                                    "Москва",
                                    "МОСКВА",
                                    "beta",
                                    "Beta",
                                    "zeta",
                                    "Éclair"};
static const char *const SOURCES[] = {"website", "referral", "Cold Call", "cold call", "ΣΟΦΊΑ"};

static void fl_id(int n, char out[UUID_BUFSZ])
{
    snprintf(out, UUID_BUFSZ, "0190f3a2-00f1-7000-8000-%012d", n);
}

/* Lead n of the set, pseudo-random but the same every run; created_at
 * values repeat (ties), so do names after folding, values, probabilities. */
static fl_t *make_fl(int n)
{
    cr_assert_lt(nfl, (int)(sizeof fls / sizeof fls[0]));
    fl_t *x = &fls[nfl++];
    memset(x, 0, sizeof *x);
    fl_id(n, x->id);
    snprintf(x->name, sizeof x->name, "%s", NAMES[rnd(12)]);
    lead_t *l = &x->l;
    strcpy(l->id, x->id);
    l->name = T(x->name);
    if (rnd(4) > 0) {
        snprintf(x->source, sizeof x->source, "%s", SOURCES[rnd(5)]);
        l->source = T(x->source);
    }
    if (rnd(3) > 0) strcpy(l->account_id, ID(40 + (int)rnd(3)));
    if (rnd(3) > 0) strcpy(l->contact_id, ID(50 + (int)rnd(2)));
    l->has_value = rnd(4) > 0;
    l->value_cents = l->has_value ? (int64_t)rnd(5) * 1000 + (rnd(2) ? 99999999999999 : 0) : 0;
    l->stage = (int)rnd(5);
    l->probability = rnd(4) > 0 ? (int)rnd(4) * 25 : -1;
    l->status = (int)rnd(4);
    l->created_at = 1000 + (int64_t)rnd(20) * 10; /* ties */
    l->updated_at = l->created_at + (int64_t)rnd(3);
    return x;
}

/* Makes the set in app1 (with follows: overdue, pending, completed, none),
 * and a few leads of app2 that no read of app1 may return. */
static void seed_find(void)
{
    rnd_state = 42;
    nfl = 0;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int i = 0; i < NF; i++) {
        fl_t *x = make_fl(i);
        cr_assert_eq(store_lead_create(st, app1.id, &x->l), STORE_OK);
        int kind = (int)rnd(5); /* 0: none, 1: overdue, 2: pending, 3: completed, 4: overdue + completed */
        for (int k = 0; kind > 0 && k < (kind == 4 ? 2 : 1); k++) {
            follow_t f = {0};
            snprintf(f.id, sizeof f.id, "0190f3a2-00f2-7000-8000-%010d%02d", i, k);
            strcpy(f.lead_id, x->id);
            f.title = T("Call");
            bool overdue = kind == 1 || (kind == 4 && k == 0);
            f.status = kind == 3 || (kind == 4 && k == 1) ? FOLLOW_COMPLETED : FOLLOW_PENDING;
            f.has_due = overdue || rnd(2);
            f.due_at = overdue ? FIND_NOW - 1000 : FIND_NOW + 1000;
            f.created_at = f.updated_at = 2000 + i;
            cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
            x->overdue |= overdue;
            x->open |= f.status == FOLLOW_PENDING;
        }
    }
    for (int i = 0; i < 3; i++) {
        lead_t o = mk_full_lead(i, "Acme Corp renewal", 1000 + i);
        o.stage = STAGE_QUALIFIED;
        cr_assert_eq(store_lead_create(st, app2.id, &o), STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
}

/* The folding of t into out (NUL-terminated). */
static void fold_into(text_ref_t t, char *out, size_t cap)
{
    size_t n = t.ptr ? text_fold(t.ptr, t.len, out, cap - 1) : 0;
    cr_assert_neq(n, (size_t)-1);
    out[n] = '\0';
}

static bool has_id(const char (*ids)[UUID_BUFSZ], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) return true;
    return false;
}

static bool has_text(const text_ref_t *t, int n, text_ref_t v)
{
    for (int i = 0; i < n; i++)
        if (v.ptr != NULL && t[i].len == v.len && memcmp(t[i].ptr, v.ptr, v.len) == 0) return true;
    return false;
}

/* The contract's filter, in C. */
static bool ref_keeps(const fl_t *x, const store_lead_filter_t *f)
{
    const lead_t *l = &x->l;
    if (x->gone) return false;
    if (f->stages && !(f->stages & (1u << l->stage))) return false;
    if (f->statuses && !(f->statuses & (1u << l->status))) return false;
    if (f->nsources && !has_text(f->sources, f->nsources, l->source)) return false;
    if ((f->naccounts || f->account_unset) &&
        !(l->account_id[0] ? has_id(f->accounts, f->naccounts, l->account_id) : f->account_unset))
        return false;
    if ((f->ncontacts || f->contact_unset) &&
        !(l->contact_id[0] ? has_id(f->contacts, f->ncontacts, l->contact_id) : f->contact_unset))
        return false;
    if ((f->has_value_min || f->has_value_max) && !l->has_value) return false;
    if (f->has_value_min && l->value_cents < f->value_min) return false;
    if (f->has_value_max && l->value_cents > f->value_max) return false;
    if ((f->probability_min >= 0 || f->probability_max >= 0) && l->probability < 0) return false;
    if (f->probability_min >= 0 && l->probability < f->probability_min) return false;
    if (f->probability_max >= 0 && l->probability > f->probability_max) return false;
    if (f->has_created_from && l->created_at < f->created_from) return false;
    if (f->has_created_to && l->created_at >= f->created_to) return false;
    if (f->has_updated_from && l->updated_at < f->updated_from) return false;
    if (f->has_updated_to && l->updated_at >= f->updated_to) return false;
    if (f->search.ptr != NULL) {
        char term[256], name[256], source[256];
        fold_into(f->search, term, sizeof term);
        fold_into(l->name, name, sizeof name);
        fold_into(l->source, source, sizeof source);
        if (strstr(name, term) == NULL && (l->source.ptr == NULL || strstr(source, term) == NULL))
            return false;
    }
    if (f->has_overdue >= 0 && x->overdue != (f->has_overdue == 1)) return false;
    if (f->has_open >= 0 && x->open != (f->has_open == 1)) return false;
    return true;
}

/* Compares two values of a key, unset last whatever the direction. */
static int cmp_key(bool an, int64_t a, bool bn, int64_t b, bool desc)
{
    if (an || bn) return an && bn ? 0 : an ? 1 : -1;
    int c = (a > b) - (a < b);
    return desc ? -c : c;
}

static const store_sort_t *ref_order;
static int ref_norder;

/* An integer key of a lead, *null when unset. */
static int64_t lead_int(const lead_t *l, int key, bool *null)
{
    *null = (key == LEAD_KEY_VALUE && !l->has_value) || (key == LEAD_KEY_PROBABILITY && l->probability < 0);
    const int64_t v[] = {[LEAD_KEY_CREATED] = l->created_at,
                         [LEAD_KEY_UPDATED] = l->updated_at,
                         [LEAD_KEY_VALUE] = l->value_cents,
                         [LEAD_KEY_PROBABILITY] = l->probability,
                         [LEAD_KEY_STAGE] = l->stage};
    return v[key];
}

static int ref_cmp(const void *pa, const void *pb)
{
    const lead_t *a = &(*(const fl_t *const *)pa)->l, *b = &(*(const fl_t *const *)pb)->l;
    for (int i = 0; i < ref_norder; i++) {
        int key = ref_order[i].key, c;
        if (key == LEAD_KEY_NAME || key == LEAD_KEY_ID) {
            char x[256], y[256];
            fold_into(key == LEAD_KEY_ID ? T(a->id) : a->name, x, sizeof x);
            fold_into(key == LEAD_KEY_ID ? T(b->id) : b->name, y, sizeof y);
            c = strcmp(x, y);
            c = ref_order[i].desc ? (c < 0) - (c > 0) : (c > 0) - (c < 0);
        } else {
            bool an, bn;
            int64_t x = lead_int(a, key, &an), y = lead_int(b, key, &bn);
            c = cmp_key(an, x, bn, y, ref_order[i].desc);
        }
        if (c != 0) return c;
    }
    return 0;
}

#define MAXFIND (NF + 128)
/* What a find passed: the ids in order, and the last record. */
typedef struct found {
    int n;
    char ids[MAXFIND][UUID_BUFSZ];
    lead_copy_t last;
    follow_copy_t flast;
} found_t;

static void on_found(void *ctx, const lead_t *l)
{
    found_t *c = ctx;
    cr_assert_lt(c->n, MAXFIND);
    strcpy(c->ids[c->n++], l->id);
    keep_lead(&c->last, l);
}

/* A find passed exactly want[0..n), in order. */
static void expect_ids(const found_t *got, const char (*want)[UUID_BUFSZ], int n, const char *what)
{
    cr_expect_eq(got->n, n, "%s: %d records, want %d", what, got->n, n);
    for (int i = 0; i < got->n && i < n; i++)
        cr_expect_str_eq(got->ids[i], want[i], "%s: position %d", what, i);
}

/* The reference: the ids q keeps, in q's order. */
static int ref_find(const store_lead_query_t *q, char (*out)[UUID_BUFSZ])
{
    store_sort_t order[STORE_SORT_MAX];
    ref_norder = store_lead_order(q->sort, q->nsort, order);
    ref_order = order;
    const fl_t *keep[MAXFIND];
    int n = 0;
    for (int i = 0; i < nfl; i++)
        if (ref_keeps(&fls[i], &q->f)) keep[n++] = &fls[i];
    qsort(keep, (size_t)n, sizeof keep[0], ref_cmp);
    for (int i = 0; i < n; i++)
        strcpy(out[i], keep[i]->id);
    return n;
}

static store_lead_query_t base_query(void)
{
    store_lead_query_t q = {.limit = 100};
    store_lead_filter_init(&q.f);
    q.count = true;
    q.now = FIND_NOW;
    return q;
}

/* Reads all of q in one page, and by keyset pages of 7, and by offset
 * pages of 5; each must be the reference, and every count its size. */
static void expect_find(store_lead_query_t q, const char *what)
{
    static char want[MAXFIND][UUID_BUFSZ];
    int nwant = ref_find(&q, want);
    found_t got = {0};
    int64_t total = -2;
    cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &got, NULL), STORE_OK, "%s", what);
    cr_expect_eq(total, nwant, "%s: count %lld, want %d", what, (long long)total, nwant);
    expect_ids(&got, want, nwant, what);
    /* Keyset pages. */
    store_sort_t order[STORE_SORT_MAX];
    int norder = store_lead_order(q.sort, q.nsort, order);
    store_pos_t pos;
    q.limit = 7;
    q.count = false;
    int seen = 0;
    for (int page = 0; page < 30; page++) {
        found_t pg = {0};
        total = -2;
        cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &pg, NULL), STORE_OK);
        cr_expect_eq(total, -1, "%s: a count that was not asked for", what);
        for (int i = 0; i < pg.n; i++, seen++)
            cr_expect(seen < nwant && strcmp(pg.ids[i], want[seen]) == 0, "%s: keyset page %d row %d", what,
                      page, i);
        if (pg.n < 7) break;
        store_lead_pos(&pg.last.l, order, norder, &pos);
        q.after = &pos;
    }
    cr_expect_eq(seen, nwant, "%s: keyset walk saw %d of %d", what, seen, nwant);
    /* Offset pages (they cross the set and unset phases). */
    q.after = NULL;
    q.limit = 5;
    seen = 0;
    for (q.offset = 0; q.offset <= nwant; q.offset += 5) {
        found_t pg = {0};
        cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &pg, NULL), STORE_OK);
        for (int i = 0; i < pg.n; i++, seen++)
            cr_expect(seen < nwant && strcmp(pg.ids[i], want[seen]) == 0, "%s: offset %lld row %d", what,
                      (long long)q.offset, i);
    }
    cr_expect_eq(seen, nwant, "%s: offset walk saw %d of %d", what, seen, nwant);
}

Test(store, find_each_filter_and_combinations)
{
    seed_find();
    store_lead_query_t q = base_query();
    expect_find(q, "no filter");
    q.f.stages = 1u << STAGE_QUALIFIED;
    expect_find(q, "stage");
    q.f.stages |= 1u << STAGE_NEW;
    expect_find(q, "two stages");
    q.f.statuses = 1u << LEAD_ACTIVE | 1u << LEAD_LOST;
    expect_find(q, "stages and statuses");
    q = base_query();
    q.f.statuses = 1u << LEAD_CONVERTED;
    expect_find(q, "status");
    q = base_query();
    q.f.nsources = 1;
    q.f.sources[0] = T("website");
    expect_find(q, "source");
    q.f.sources[q.f.nsources++] = T("cold call");
    expect_find(q, "two sources, exact case");
    q = base_query();
    q.f.naccounts = 1;
    strcpy(q.f.accounts[0], ID(40));
    expect_find(q, "account");
    q.f.account_unset = true;
    expect_find(q, "account or unset");
    q.f.naccounts = 0;
    expect_find(q, "account unset");
    q = base_query();
    q.f.ncontacts = 2;
    strcpy(q.f.contacts[0], ID(50));
    strcpy(q.f.contacts[1], ID(51));
    expect_find(q, "two contacts");
    q = base_query();
    q.f.has_value_min = true;
    q.f.value_min = 2000;
    expect_find(q, "value_min");
    q.f.has_value_max = true;
    q.f.value_max = 99999999999999;
    expect_find(q, "value range");
    q = base_query();
    q.f.probability_min = 25;
    expect_find(q, "probability_min");
    q.f.probability_max = 50;
    expect_find(q, "probability range");
    q = base_query();
    q.f.has_created_from = q.f.has_created_to = true;
    q.f.created_from = 1050;
    q.f.created_to = 1120;
    expect_find(q, "created range");
    static const int64_t updated[][2] = {{1101, INT64_MAX}, {1101, 1150}, {0, 1150}};
    for (size_t i = 0; i < 3; i++) {
        q = base_query();
        q.f.has_updated_from = updated[i][0] > 0;
        q.f.has_updated_to = updated[i][1] < INT64_MAX;
        q.f.updated_from = updated[i][0];
        q.f.updated_to = updated[i][1];
        expect_find(q, "updated range");
    }
    for (int v = 0; v < 2; v++) {
        q = base_query();
        q.f.has_overdue = v;
        expect_find(q, v ? "has overdue" : "has no overdue");
        q = base_query();
        q.f.has_open = v;
        expect_find(q, v ? "has open follows" : "has no open follows");
    }
    q = base_query();
    q.f.stages = 1u << STAGE_NEW | 1u << STAGE_PROPOSAL;
    q.f.nsources = 1;
    q.f.sources[0] = T("referral");
    q.f.has_value_min = true;
    q.f.value_min = 1;
    q.f.has_overdue = 0;
    expect_find(q, "four filters together");
}

Test(store, find_search_is_a_folded_substring_of_name_or_source)
{
    seed_find();
    static const char *const terms[] = {
        "acme", "ACME CORP", "corp ren", "ärger",     "ÄRGER GMBH", "σοφία", "ΣΟΦΙΑ", "москва",
        "мос",  "e",         "ta",       "cold call", "\"",         "%",     "_",     "nothing like it"};
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        store_lead_query_t q = base_query();
        char folded[256];
        fold_into(T(terms[i]), folded, sizeof folded);
        q.f.search = T(folded);
        expect_find(q, terms[i]);
        q.nsort = 1;
        q.sort[0] = (store_sort_t){LEAD_KEY_NAME, false};
        expect_find(q, terms[i]);
    }
}

Test(store, find_every_sort_with_ties_and_unset_values)
{
    seed_find();
    static const int keys[] = {LEAD_KEY_CREATED, LEAD_KEY_UPDATED,     LEAD_KEY_NAME,
                               LEAD_KEY_VALUE,   LEAD_KEY_PROBABILITY, LEAD_KEY_STAGE};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (int d = 0; d < 2; d++) {
            store_lead_query_t q = base_query();
            q.nsort = 1;
            q.sort[0] = (store_sort_t){keys[k], d == 1};
            char what[64];
            snprintf(what, sizeof what, "sort %d %s", keys[k], d ? "desc" : "asc");
            expect_find(q, what);
            q.f.stages = 1u << STAGE_CONTACTED | 1u << STAGE_NEGOTIATION;
            expect_find(q, what);
        }
    }
    /* Several keys, unset values in the middle of the order. */
    static const store_sort_t multi[][3] = {
        {{LEAD_KEY_STAGE, false}, {LEAD_KEY_VALUE, true}, {LEAD_KEY_NAME, false}},
        {{LEAD_KEY_PROBABILITY, true}, {LEAD_KEY_VALUE, false}, {LEAD_KEY_CREATED, false}},
        {{LEAD_KEY_VALUE, true}, {LEAD_KEY_PROBABILITY, false}, {LEAD_KEY_UPDATED, true}},
        {{LEAD_KEY_NAME, true}, {LEAD_KEY_STAGE, true}, {LEAD_KEY_PROBABILITY, true}},
    };
    for (size_t m = 0; m < sizeof multi / sizeof multi[0]; m++) {
        store_lead_query_t q = base_query();
        q.nsort = 3;
        memcpy(q.sort, multi[m], sizeof multi[m]);
        expect_find(q, "several keys");
    }
}

/* A keyset walk while leads are created and deleted: every lead that was
 * there all along is seen exactly once, and none twice. */
Test(store, find_keyset_walk_survives_writes)
{
    seed_find();
    static const store_sort_t sorts[][1] = {{{LEAD_KEY_CREATED, true}},
                                            {{LEAD_KEY_VALUE, false}},
                                            {{LEAD_KEY_STAGE, true}},
                                            {{LEAD_KEY_NAME, false}},
                                            {{LEAD_KEY_PROBABILITY, true}}};
    int extra = 0;
    for (size_t s = 0; s < sizeof sorts / sizeof sorts[0]; s++) {
        store_lead_query_t q = base_query();
        q.nsort = 1;
        q.sort[0] = sorts[s][0];
        q.limit = 6;
        q.count = false;
        store_sort_t order[STORE_SORT_MAX];
        int norder = store_lead_order(q.sort, q.nsort, order);
        static char seen[200][UUID_BUFSZ];
        int nseen = 0;
        store_pos_t pos;
        for (int page = 0; page < 60; page++) {
            found_t pg = {0};
            cr_assert_eq(store_lead_find(st, app1.id, &q, &(int64_t){0}, on_found, &pg, NULL), STORE_OK);
            for (int i = 0; i < pg.n; i++) {
                cr_expect(!has_id((const char(*)[UUID_BUFSZ])seen, nseen, pg.ids[i]), "sort %zu: %s twice", s,
                          pg.ids[i]);
                cr_assert_lt(nseen, 200);
                strcpy(seen[nseen++], pg.ids[i]);
            }
            if (pg.n < q.limit) break;
            store_lead_pos(&pg.last.l, order, norder, &pos);
            q.after = &pos;
            /* A new lead (sorting anywhere), and a lead not seen yet deleted. */
            fl_t *x = make_fl(1000 + extra++);
            cr_assert_eq(store_lead_create(st, app1.id, &x->l), STORE_OK);
            for (int i = 0; i < nfl; i++) {
                if (fls[i].gone || has_id((const char(*)[UUID_BUFSZ])seen, nseen, fls[i].id)) continue;
                cr_assert_eq(store_lead_delete(st, app1.id, fls[i].id), STORE_OK);
                fls[i].gone = true;
                break;
            }
        }
        /* Every lead there from the start to the end was seen. */
        for (int i = 0; i < NF; i++)
            if (!fls[i].gone)
                cr_expect(has_id((const char(*)[UUID_BUFSZ])seen, nseen, fls[i].id), "sort %zu: %s skipped",
                          s, fls[i].id);
    }
}

/* Follows across three leads of app1 (and one of app2), with every status
 * (overdue derived at FIND_NOW), unset due dates and ties. */
#define NFF 40
static follow_t fws[NFF];
static char ff_ids[NFF][UUID_BUFSZ], ff_leads[4][UUID_BUFSZ];

static void seed_follows(void)
{
    rnd_state = 7;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int k = 0; k < 4; k++) {
        fl_id(900 + k, ff_leads[k]);
        lead_t l = mk_lead(0, "Lead", 1000 + k);
        strcpy(l.id, ff_leads[k]);
        cr_assert_eq(store_lead_create(st, k == 3 ? app2.id : app1.id, &l), STORE_OK);
    }
    for (int i = 0; i < NFF; i++) {
        follow_t *f = &fws[i];
        memset(f, 0, sizeof *f);
        snprintf(ff_ids[i], UUID_BUFSZ, "0190f3a2-00f3-7000-8000-%012d", i);
        strcpy(f->id, ff_ids[i]);
        strcpy(f->lead_id, ff_leads[rnd(4)]);
        f->title = T("Call");
        f->status = rnd(3) == 0 ? FOLLOW_COMPLETED : FOLLOW_PENDING;
        f->has_due = rnd(4) > 0;
        f->due_at = f->has_due ? FIND_NOW + ((int64_t)rnd(5) - 2) * 1000 : 0; /* before, at and after now */
        f->created_at = 3000 + (int64_t)rnd(8) * 10;
        f->updated_at = f->created_at + (int64_t)rnd(3);
        cr_assert_eq(store_follow_create(st, strcmp(f->lead_id, ff_leads[3]) == 0 ? app2.id : app1.id, f),
                     STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
}

static bool ref_keeps_follow(const follow_t *f, const store_follow_query_t *q)
{
    if (strcmp(f->lead_id, ff_leads[3]) == 0) return false; /* another app's */
    if (q->lead[0] != '\0' && strcmp(f->lead_id, q->lead) != 0) return false;
    if (q->nleads > 0 && !has_id(q->leads, q->nleads, f->lead_id)) return false;
    if (q->statuses && !(q->statuses & (1u << follow_effective_status(f, FIND_NOW)))) return false;
    if ((q->has_due_from || q->has_due_to) && !f->has_due) return false;
    if (q->has_due_from && f->due_at < q->due_from) return false;
    if (q->has_due_to && f->due_at >= q->due_to) return false;
    return true;
}

static int ref_cmp_follow(const void *pa, const void *pb)
{
    const follow_t *a = *(const follow_t *const *)pa, *b = *(const follow_t *const *)pb;
    int c = 0;
    for (int i = 0; i < ref_norder && c == 0; i++) {
        bool d = ref_order[i].desc;
        if (ref_order[i].key == FOLLOW_KEY_ID)
            c = d ? strcmp(b->id, a->id) : strcmp(a->id, b->id);
        else if (ref_order[i].key == FOLLOW_KEY_DUE)
            c = cmp_key(!a->has_due, a->due_at, !b->has_due, b->due_at, d);
        else if (ref_order[i].key == FOLLOW_KEY_CREATED)
            c = cmp_key(false, a->created_at, false, b->created_at, d);
        else
            c = cmp_key(false, a->updated_at, false, b->updated_at, d);
    }
    return c;
}

static void on_ffound(void *ctx, const follow_t *f)
{
    found_t *c = ctx;
    cr_assert_lt(c->n, NFF);
    strcpy(c->ids[c->n++], f->id);
    keep_follow(&c->flast, f);
}

static void expect_follow_find(store_follow_query_t q, const char *what)
{
    store_sort_t order[STORE_SORT_MAX];
    ref_norder = store_follow_order(q.sort, q.nsort, order);
    ref_order = order;
    const follow_t *keep[NFF];
    int nwant = 0;
    for (int i = 0; i < NFF; i++)
        if (ref_keeps_follow(&fws[i], &q)) keep[nwant++] = &fws[i];
    qsort(keep, (size_t)nwant, sizeof keep[0], ref_cmp_follow);
    found_t got = {0};
    int64_t total = -2;
    cr_assert_eq(store_follow_find(st, app1.id, &q, &total, on_ffound, &got, NULL), STORE_OK, "%s", what);
    cr_expect_eq(total, nwant, "%s: count", what);
    static char want[NFF][UUID_BUFSZ];
    for (int i = 0; i < nwant; i++)
        strcpy(want[i], keep[i]->id);
    expect_ids(&got, want, nwant, what);
    q.limit = 4, q.count = false;
    store_pos_t pos;
    int seen = 0;
    for (int page = 0; page < 20; page++) {
        found_t pg = {0};
        cr_assert_eq(store_follow_find(st, app1.id, &q, &total, on_ffound, &pg, NULL), STORE_OK);
        for (int i = 0; i < pg.n; i++, seen++)
            cr_expect(seen < nwant && strcmp(pg.ids[i], keep[seen]->id) == 0, "%s: keyset page %d row %d",
                      what, page, i);
        if (pg.n < 4) break;
        store_follow_pos(&pg.flast.f, order, ref_norder, &pos);
        q.after = &pos;
    }
    cr_expect_eq(seen, nwant, "%s: keyset walk", what);
}

static store_follow_query_t base_follow_query(const char *lead)
{
    store_follow_query_t q;
    memset(&q, 0, sizeof q);
    q.lead = lead;
    q.limit = 100;
    q.count = true;
    q.now = FIND_NOW;
    return q;
}

Test(store, follow_find_filters_sorts_and_pages)
{
    seed_follows();
    for (int scope = 0; scope < 2; scope++) {
        const char *lead = scope == 0 ? "" : ff_leads[1];
        store_follow_query_t q = base_follow_query(lead);
        expect_follow_find(q, "default order");
        for (unsigned mask = 1; mask < 8; mask++) {
            q = base_follow_query(lead);
            q.statuses = mask;
            expect_follow_find(q, "statuses");
        }
        q = base_follow_query(lead);
        q.has_due_from = q.has_due_to = true;
        q.due_from = FIND_NOW - 1000;
        q.due_to = FIND_NOW + 1000;
        expect_follow_find(q, "due range");
        q.statuses = 1u << FOLLOW_PENDING | 1u << FOLLOW_OVERDUE;
        expect_follow_find(q, "the salesperson's day");
        static const int keys[] = {FOLLOW_KEY_DUE, FOLLOW_KEY_CREATED, FOLLOW_KEY_UPDATED};
        for (int k = 0; k < 3; k++) {
            for (int d = 0; d < 2; d++) {
                q = base_follow_query(lead);
                q.nsort = 1;
                q.sort[0] = (store_sort_t){keys[k], d == 1};
                expect_follow_find(q, "sort");
            }
        }
        q = base_follow_query(lead);
        q.nsort = 2;
        q.sort[0] = (store_sort_t){FOLLOW_KEY_UPDATED, true};
        q.sort[1] = (store_sort_t){FOLLOW_KEY_DUE, true};
        expect_follow_find(q, "two keys");
    }
    store_follow_query_t q = base_follow_query("");
    q.nleads = 2;
    strcpy(q.leads[0], ff_leads[0]);
    strcpy(q.leads[1], ff_leads[2]);
    expect_follow_find(q, "two leads");
    q.nleads = 1;
    strcpy(q.leads[0], ff_leads[3]);
    expect_follow_find(q, "another app's lead: none");
    /* One lead's follows: a lead that does not exist (or is another app's)
     * is STORE_NOT_FOUND; one without follows an empty page. */
    found_t got = {0};
    int64_t total = -2;
    q = base_follow_query(ff_leads[3]);
    cr_expect_eq(store_follow_find(st, app1.id, &q, &total, on_ffound, &got, NULL), STORE_NOT_FOUND);
    q = base_follow_query(ID(63));
    cr_expect_eq(store_follow_find(st, app1.id, &q, &total, on_ffound, &got, NULL), STORE_NOT_FOUND);
    create_lead(63, "No follows", 5000);
    cr_expect_eq(store_follow_find(st, app1.id, &q, &total, on_ffound, &got, NULL), STORE_OK);
    cr_expect(got.n == 0 && total == 0);
}

/* --- the summary -------------------------------------------------------------- */

typedef unsigned __int128 u128;

/* The exact sums of a cell, from its parts. */
static u128 cell_value(const store_cell_t *c)
{
    return ((u128)c->v_hi << 32) + (u128)c->v_lo;
}

static u128 cell_weight(const store_cell_t *c)
{
    return ((u128)c->w_hi << 32) + (u128)c->w_lo;
}

/* Compares store_lead_summary of f with sums over the reference set. */
static void expect_summary(const store_lead_filter_t *f, const char *what)
{
    store_summary_t got;
    cr_assert_eq(store_lead_summary(st, app1.id, f, FIND_NOW, &got, NULL), STORE_OK, "%s", what);
    int64_t n[SCHEMA_STAGES][SCHEMA_STATUSES] = {{0}};
    u128 v[SCHEMA_STAGES][SCHEMA_STATUSES] = {{0}}, w[SCHEMA_STAGES][SCHEMA_STATUSES] = {{0}};
    int64_t overdue = 0;
    for (int i = 0; i < nfl; i++) {
        const lead_t *l = &fls[i].l;
        if (!ref_keeps(&fls[i], f)) continue;
        n[l->stage][l->status]++;
        if (l->has_value) v[l->stage][l->status] += (u128)l->value_cents;
        if (l->has_value && l->probability >= 0)
            w[l->stage][l->status] += (u128)l->value_cents * (u128)l->probability;
        overdue += fls[i].overdue;
    }
    for (int s = 0; s < SCHEMA_STAGES; s++) {
        for (int t = 0; t < SCHEMA_STATUSES; t++) {
            const store_cell_t *c = &got.cell[s][t];
            cr_expect_eq(c->n, n[s][t], "%s: cell %d %d count", what, s, t);
            cr_expect(cell_value(c) == v[s][t], "%s: cell %d %d value", what, s, t);
            cr_expect(cell_weight(c) == w[s][t], "%s: cell %d %d weighted value", what, s, t);
        }
    }
    /* The seeded leads have at most one overdue follow each. */
    cr_expect_eq(got.overdue, overdue, "%s: overdue %lld, want %lld", what, (long long)got.overdue,
                 (long long)overdue);
}

static store_lead_filter_t no_filter(void)
{
    store_lead_filter_t f;
    store_lead_filter_init(&f);
    return f;
}

Test(store, summary_matches_the_leads_under_every_kind_of_filter)
{
    seed_find();
    store_lead_filter_t f = no_filter();
    expect_summary(&f, "no filter (the kept totals)");
    f.stages = 1u << STAGE_NEW | 1u << STAGE_QUALIFIED;
    expect_summary(&f, "stages (the kept totals)");
    f.statuses = 1u << LEAD_ACTIVE;
    expect_summary(&f, "stages and status (the kept totals)");
    f = no_filter();
    f.nsources = 1;
    f.sources[0] = T("website");
    expect_summary(&f, "source (the leads)");
    f.has_value_min = true;
    f.value_min = 1000;
    expect_summary(&f, "source and value");
    f = no_filter();
    char term[32];
    fold_into(T("ACME"), term, sizeof term);
    f.search = T(term);
    expect_summary(&f, "search");
    f = no_filter();
    f.has_overdue = 1;
    expect_summary(&f, "has overdue");
    /* The kept totals follow updates and deletes. */
    for (int i = 0; i < 10; i++) {
        fl_t *x = &fls[i * 3];
        lead_patch_t p = {.fields = LEAD_F_VALUE | LEAD_F_PROBABILITY | LEAD_F_STAGE | LEAD_F_STATUS |
                                    LEAD_F_SOURCE};
        p.v = x->l;
        /* The source moves too: a cell of the kept totals per source. */
        snprintf(x->source, sizeof x->source, "%s", i % 3 == 1 ? "referral" : "website");
        p.v.source = i % 3 == 2 ? (text_ref_t){NULL, 0} : T(x->source);
        x->l.source = p.v.source;
        p.v.has_value = i % 3 != 0;
        p.v.value_cents = 99999999999999 - i;
        p.v.probability = i % 4 == 0 ? -1 : 100 - i;
        p.v.stage = i % 5;
        p.v.status = (i + 1) % 4;
        lead_copy_t updated;
        one_t o = {.lead = &updated};
        cr_assert_eq(store_lead_update(st, app1.id, x->id, &p, 9000, on_one_lead, &o), STORE_OK);
        x->l.has_value = p.v.has_value;
        x->l.value_cents = p.v.value_cents;
        x->l.probability = p.v.probability;
        x->l.stage = p.v.stage;
        x->l.status = p.v.status;
        if (i % 2 == 0) {
            cr_assert_eq(store_lead_delete(st, app1.id, fls[i * 3 + 1].id), STORE_OK);
            fls[i * 3 + 1].gone = true;
        }
    }
    f = no_filter();
    expect_summary(&f, "after updates and deletes (the kept totals)");
    f.nsources = 2;
    f.sources[0] = T("referral");
    f.sources[1] = T("website");
    expect_summary(&f, "after updates and deletes, by source (the kept totals)");
    f.has_value_min = true;
    expect_summary(&f, "after updates and deletes (the leads)");
    /* An empty app has every cell zero. */
    store_summary_t empty;
    f = no_filter();
    cr_assert_eq(store_lead_summary(st, app2.id + 1000, &f, FIND_NOW, &empty, NULL), STORE_OK);
    cr_expect_eq(empty.cell[0][0].n, 0);
}

/* Sums beyond 64 bits: 10,000 leads of the largest value (each at 100%)
 * sum to 10^19 - 10^4 cents, past INT64_MAX, and their weighted values
 * to 10^21; kept totals and sums over the leads must both stay exact. */
Test(store, summary_sums_of_maximal_values_do_not_overflow)
{
    const int n = 10000;
    const int64_t max = DECIMAL_LIMIT_CENTS - 1;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int i = 0; i < n; i++) {
        lead_t l = mk_lead(0, "Big", 1000 + i);
        big_id(i, l.id);
        l.has_value = true;
        l.value_cents = max;
        l.probability = 100;
        l.stage = STAGE_NEGOTIATION;
        l.source = T("whale");
        cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    u128 want_v = (u128)max * (u128)n, want_w = want_v * 100;
    cr_assert(want_v > (u128)INT64_MAX);
    for (int pass = 0; pass < 2; pass++) {
        store_lead_filter_t f = no_filter();
        if (pass == 1) {
            f.nsources = 1;
            f.sources[0] = T("whale"); /* sums over the leads, not the kept totals */
        }
        store_summary_t got;
        cr_assert_eq(store_lead_summary(st, app1.id, &f, FIND_NOW, &got, NULL), STORE_OK);
        const store_cell_t *c = &got.cell[STAGE_NEGOTIATION][LEAD_ACTIVE];
        cr_expect_eq(c->n, n);
        cr_expect(cell_value(c) == want_v, "pass %d: value", pass);
        cr_expect(cell_weight(c) == want_w, "pass %d: weighted value", pass);
    }
}

/* --- webhooks: helpers --------------------------------------------------------- */

/* A page of a newest-first list by offset. */
#define PAGE(offset, limit) ((store_newest_page_t){(offset), (limit), 0, NULL})

static webhook_t mk_webhook(int id, unsigned events, int64_t created)
{
    webhook_t wh = {.events = events, .active = true, .created_at = created, .updated_at = created};
    strcpy(wh.id, ID(id));
    wh.url = T("http://127.0.0.1:9/hook");
    wh.secret = T("whsec_0123456789abcdefghijABCDEFGHIJ12");
    return wh;
}

typedef struct hooks_seen {
    int n;
    char ids[8][UUID_BUFSZ];
    bool active[8];
    char secret[64], url[128];
} hooks_seen_t;

static void on_hook(void *ctx, const webhook_t *wh)
{
    hooks_seen_t *h = ctx;
    cr_assert_lt(h->n, 8);
    strcpy(h->ids[h->n], wh->id);
    h->active[h->n++] = wh->active;
    store_text_copy(h->secret, sizeof h->secret, wh->secret);
    store_text_copy(h->url, sizeof h->url, wh->url);
}

/* PostgreSQL's migrations (store/postgres/pg_int.h, whose statement ids
 * clash with SQLite's, which this file includes). */
extern const char *const pg_migrations[SCHEMA_VERSION];

/* Runs sql on the database at url (raw, beside any store). */
static void raw_sql_on(const char *url, const char *sql)
{
    char saved[URL_MAX];
    snprintf(saved, sizeof saved, "%s", url_);
    snprintf(url_, sizeof url_, "%s", url);
    raw_sql(sql);
    snprintf(url_, sizeof url_, "%s", saved);
}

/* A database of schema version 4 (before finding existed: made by the
 * real migrations 1 to 4) with leads in it: migrations 5 and 6 fold their
 * names and sources, count them into the totals and index them for
 * search, 7 adds the webhooks, and what version 4 held is kept. */
Test(store, migrating_from_version_4_folds_counts_and_indexes_existing_leads)
{
    char old[URL_MAX];
    fresh_db(old, sizeof old);
    for (int v = 0; v < 4; v++)
        raw_sql_on(old, on_postgres ? pg_migrations[v] : sq_migrations[v]);
    if (on_postgres)
        raw_sql_on(
            old, "CREATE TABLE crmd_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
                 "INSERT INTO crmd_schema VALUES (1, 4)");
    else
        raw_sql_on(old, "PRAGMA user_version = 4");
    raw_sql_on(
        old,
        "INSERT INTO signing_keys (pem, created_at, signed_until) VALUES ('PEM-V4', 1, -1);"
        "INSERT INTO apps (key, name, created_at, lead_count) VALUES ('pk_live_old', 'Old', 1, 2);"
        "INSERT INTO issued_tokens (jti, app_id, subject, issued_at, expires_at) "
        "VALUES ('jti-v4', 1, 'cli', 1, 9);"
        "INSERT INTO leads (app_id, id, name, source, value_cents, stage, probability, status, "
        "created_at, updated_at) VALUES "
        "(1, '0190f3a2-0000-7000-8000-000000000001', 'ÄRGER Σοφία', 'Web', 99999999999999, 2, 50, 0, 10, 10),"
        "(1, '0190f3a2-0000-7000-8000-000000000002', 'Zeta', NULL, NULL, 2, NULL, 0, 20, 20)");
    store_t *s = open_url(old);
    cr_assert_eq(store_migrate(s), STORE_OK);
    cr_assert_eq(store_migrate(s), STORE_OK, "a second run finds the newest version and changes nothing");
    cr_expect_str_eq(keys_of(s).pems, "PEM-V4", "version 4's key is kept");
    cr_expect_eq(store_token_revoke(s, "jti-v4", 2000, false), STORE_OK, "so are its issued tokens");
    store_lead_query_t q = base_query();
    q.f.search = T("ärger σοφ");
    found_t got = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_find(s, 1, &q, &total, on_found, &got, NULL), STORE_OK);
    cr_expect(total == 1 && got.n == 1 && strcmp(got.ids[0], "0190f3a2-0000-7000-8000-000000000001") == 0);
    q = base_query();
    q.nsort = 1;
    q.sort[0] = (store_sort_t){LEAD_KEY_NAME, true};
    got.n = 0;
    cr_assert_eq(store_lead_find(s, 1, &q, &total, on_found, &got, NULL), STORE_OK);
    /* Folded names compare by code point: "ärger" after "zeta". */
    cr_expect(got.n == 2 && strcmp(got.ids[0], "0190f3a2-0000-7000-8000-000000000001") == 0, "ärger first");
    store_lead_filter_t f = no_filter();
    store_summary_t sum;
    cr_assert_eq(store_lead_summary(s, 1, &f, FIND_NOW, &sum, NULL), STORE_OK);
    const store_cell_t *c = &sum.cell[STAGE_QUALIFIED][LEAD_ACTIVE];
    cr_expect_eq(c->n, 2);
    cr_expect(cell_value(c) == 99999999999999 && cell_weight(c) == (u128)99999999999999 * 50);
    /* Writes after the upgrade keep the totals and the search index. */
    lead_t l = mk_lead(5, "ärger zwei", 30);
    l.stage = STAGE_QUALIFIED;
    cr_assert_eq(store_lead_create(s, 1, &l), STORE_OK);
    cr_assert_eq(store_lead_summary(s, 1, &f, FIND_NOW, &sum, NULL), STORE_OK);
    cr_expect_eq(sum.cell[STAGE_QUALIFIED][LEAD_ACTIVE].n, 3);
    q = base_query();
    q.f.search = T("ärger");
    got.n = 0;
    cr_assert_eq(store_lead_find(s, 1, &q, &total, on_found, &got, NULL), STORE_OK);
    cr_expect(total == 2 && got.n == 2, "both ärger leads: %lld", (long long)total);
    /* Version 7's webhooks, on the upgraded database. */
    webhook_t wh = mk_webhook(20, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(s, 1, &wh, 100), STORE_OK);
    hooks_seen_t h = {0};
    cr_assert_eq(store_webhook_list(s, 1, &PAGE(0, 10), &total, on_hook, &h, NULL), STORE_OK);
    cr_expect(total == 1 && h.n == 1 && strcmp(h.ids[0], ID(20)) == 0, "the webhook is kept");
    store_close(s);
}

/* crmd copy moves the leads, not what finding derives from them: the
 * target folds their names and sources and adds up its totals itself, so
 * search and the summary read the same there as on the source. */
Test(store, a_copy_rebuilds_the_folded_texts_and_the_totals)
{
    populate();
    char target[URL_MAX], out[4096];
    copy_to_fresh(target, out);
    store_t *t = open_url(target);
    store_lead_filter_t f = no_filter();
    store_summary_t want, got;
    cr_assert_eq(store_lead_summary(st, app1.id, &f, FIND_NOW, &want, NULL), STORE_OK);
    cr_assert_eq(store_lead_summary(t, app1.id, &f, FIND_NOW, &got, NULL), STORE_OK);
    cr_expect_eq(got.cell[STAGE_NEW][LEAD_ACTIVE].n, 2);
    cr_expect(cell_value(&got.cell[STAGE_NEW][LEAD_ACTIVE]) == 250);
    cr_expect(memcmp(&got, &want, sizeof got) == 0, "the target's summary is the source's");
    store_lead_query_t q = base_query();
    q.f.search = T("acm");
    found_t found = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_find(t, app1.id, &q, &total, on_found, &found, NULL), STORE_OK);
    cr_expect(total == 1 && found.n == 1 && strcmp(found.ids[0], ID(1)) == 0, "\"Acme\" found by \"acm\"");
    store_close(t);
}

/* Large sets take the other plan (store/find.h, fq_plan): a term or a
 * filter that keeps more than FQ_SMALL leads is found by walking the
 * sort's index; one that keeps few through its own index. Either way the
 * answer is the same. */
Test(store, find_plans_for_small_and_large_sets_agree)
{
    const int n = FQ_SMALL + 100;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int i = 0; i < n; i++) {
        lead_t l = mk_lead(0, NULL, 1000 + i);
        char name[64];
        snprintf(name, sizeof name, "Common Lead %d", i);
        l.name = T(name);
        big_id(i, l.id);
        l.has_value = true;
        l.value_cents = i;
        l.stage = i % 2 ? STAGE_QUALIFIED : STAGE_NEGOTIATION;
        if (i == 7) l.stage = STAGE_PROPOSAL;
        cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    }
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    char last[UUID_BUFSZ], seventh[UUID_BUFSZ];
    big_id(n - 1, last);
    big_id(7, seventh);
    struct {
        const char *search;
        int stage, value_min, sort;
        int64_t total;
        const char *first;
    } cases[] = {
        {"common", -1, -1, -1, n, last},                              /* a term every lead holds: walk */
        {"lead 1099", -1, -1, -1, 1, NULL},                           /* one lead: the index */
        {NULL, -1, 0, -1, n, last},                                   /* a range keeping all: walk */
        {NULL, -1, n - 5, -1, 5, last},                               /* a range keeping five: the index */
        {NULL, STAGE_QUALIFIED, -1, LEAD_KEY_VALUE, n / 2 - 1, last}, /* odd ones but the seventh */
        {NULL, STAGE_PROPOSAL, -1, LEAD_KEY_VALUE, 1, seventh}, /* a rare stage: the kept totals say so */
        {"common", STAGE_PROPOSAL, -1, -1, 1, seventh}, /* a common term, a rare stage: the stage's index */
        {"common", STAGE_QUALIFIED, -1, LEAD_KEY_VALUE, n / 2 - 1, last}, /* a common term, a large stage */
        {"lead 10", -1, -1, -1, 111, last}, /* 10, 100-109, 1000-1099: the index's matches */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        store_lead_query_t q = base_query();
        q.limit = 3;
        char folded[64];
        if (cases[c].search != NULL) {
            fold_into(T(cases[c].search), folded, sizeof folded);
            q.f.search = T(folded);
        }
        if (cases[c].stage >= 0) q.f.stages = 1u << cases[c].stage;
        q.f.has_value_min = cases[c].value_min >= 0;
        q.f.value_min = cases[c].value_min;
        if (cases[c].sort >= 0) q.nsort = 1, q.sort[0] = (store_sort_t){cases[c].sort, true};
        found_t got = {0};
        int64_t total = -1;
        cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &got, NULL), STORE_OK);
        cr_expect_eq(total, cases[c].total, "case %zu: total %lld", c, (long long)total);
        cr_expect_eq(got.n, cases[c].total < 3 ? (int)cases[c].total : 3, "case %zu", c);
        if (cases[c].first != NULL && got.n > 0) cr_expect_str_eq(got.ids[0], cases[c].first, "case %zu", c);
        /* Without its count, the statement is another (the page alone):
         * the same page. */
        q.count = false;
        found_t bare = {0};
        cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &bare, NULL), STORE_OK);
        cr_expect_eq(total, -1, "case %zu: no count asked", c);
        expect_ids(&bare, got.ids, got.n, "the page without its count");
    }
}

/* --- reads that complete later ----------------------------------------------- */

/* A stand-in for a server thread's event loop (store_loop_t) made of
 * poll(2), which the test turns itself. A watch holds a duplicate of the
 * descriptor, as the server's does, since libpq may close its own; each
 * watch has a generation, so a readiness seen for one watch is never
 * reported to a later one in the same slot. */
#define LOOP_SLOTS 8
struct store_watch {
    bool used, read, write;
    int fd;
    unsigned gen;
    store_io_fn fn;
    void *arg;
};
struct store_timer {
    bool used;
    int64_t at_ms;
    store_timer_fn fn;
    void *arg;
};
static struct store_watch watches[LOOP_SLOTS];
static struct store_timer timers[LOOP_SLOTS];
static unsigned watch_gen;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static store_watch_t *fake_watch(void *ctx, int fd, store_io_fn fn, void *arg)
{
    (void)ctx;
    for (int i = 0; i < LOOP_SLOTS; i++) {
        if (watches[i].used) continue;
        int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        cr_assert_geq(dup, 0, "dup of the store's descriptor %d", fd);
        watches[i] = (struct store_watch){.used = true, .fd = dup, .gen = ++watch_gen, .fn = fn, .arg = arg};
        return &watches[i];
    }
    cr_assert_fail("the store holds more watches than it should");
    return NULL;
}

static void fake_read(store_watch_t *w, bool on)
{
    w->read = on;
}

static void fake_write(store_watch_t *w)
{
    w->write = true;
}

static void fake_unwatch(store_watch_t *w)
{
    close(w->fd);
    w->used = false;
}

static store_timer_t *fake_timer_start(void *ctx, uint32_t ms, store_timer_fn fn, void *arg)
{
    (void)ctx;
    for (int i = 0; i < LOOP_SLOTS; i++) {
        if (timers[i].used) continue;
        timers[i] = (struct store_timer){.used = true, .at_ms = now_ms() + ms, .fn = fn, .arg = arg};
        return &timers[i];
    }
    cr_assert_fail("the store holds more timers than it should");
    return NULL;
}

static void fake_timer_stop(store_timer_t *t)
{
    cr_assert(t->used, "a timer stopped twice, or after it fired");
    t->used = false;
}

/* Reports what is ready among the watched descriptors (waiting at most ms
 * for it), then fires the timers that are due. */
static void turn(int ms)
{
    struct pollfd pfd[LOOP_SLOTS];
    struct store_watch *of[LOOP_SLOTS];
    unsigned gen[LOOP_SLOTS];
    int n = 0;
    for (int i = 0; i < LOOP_SLOTS; i++) {
        struct store_watch *w = &watches[i];
        if (!w->used || (!w->read && !w->write)) continue;
        pfd[n] = (struct pollfd){.fd = w->fd,
                                 .events = (short)((w->read ? POLLIN : 0) | (w->write ? POLLOUT : 0))};
        gen[n] = w->gen;
        of[n++] = w;
    }
    cr_assert_geq(poll(pfd, (nfds_t)n, ms), 0);
    for (int i = 0; i < n; i++) {
        struct store_watch *w = of[i];
        short ev = pfd[i].revents;
        if (w->used && w->gen == gen[i] && w->write && (ev & (POLLOUT | POLLERR | POLLHUP))) {
            w->write = false;
            w->fn(w->arg, STORE_IO_WRITE);
        }
        if (w->used && w->gen == gen[i] && w->read && (ev & (POLLIN | POLLERR | POLLHUP)))
            w->fn(w->arg, STORE_IO_READ);
    }
    for (int i = 0; i < LOOP_SLOTS; i++) {
        if (!timers[i].used || timers[i].at_ms > now_ms()) continue;
        timers[i].used = false;
        timers[i].fn(timers[i].arg);
    }
}

#define TURN_UNTIL(cond)                                                                                     \
    do {                                                                                                     \
        int64_t end_ = now_ms() + 10000;                                                                     \
        while (!(cond) && now_ms() < end_)                                                                   \
            turn(20);                                                                                        \
        cr_assert(cond, "still not: %s", #cond);                                                             \
    } while (0)

/* One read as the caller of a store function sees it: what it got, and
 * when it ended among the others. */
typedef struct waited {
    bool done;
    store_rc_t rc;
    int order;
    leads_t leads;
    follows_t follows;
    store_app_t app;
    int64_t total;
} waited_t;
static int nended;
static bool in_call; /* a store function is running */

static void end_read(waited_t *w, store_rc_t rc)
{
    cr_assert(!w->done, "a read ended twice");
    w->done = true;
    w->rc = rc;
    w->order = nended++;
}

static void on_done(void *ctx, store_rc_t rc)
{
    cr_assert(!in_call, "a read completed inside the call that started it");
    end_read(ctx, rc);
}

/* The async of a read about to start: counts the call as running. */
#define ASYNC(w) (in_call = true, &(store_async_t){.done = on_done, .ctx = (w)})

/* What the store function returned: a result other than STORE_PENDING
 * is the read's end. */
static void started(waited_t *w, store_rc_t rc)
{
    in_call = false;
    if (rc != STORE_PENDING) end_read(w, rc);
}

static store_t *open_with_loop(void)
{
    store_t *s = open_store();
    store_loop_t loop = {.watch = fake_watch, .read = fake_read, .write = fake_write};
    loop.unwatch = fake_unwatch;
    loop.timer_start = fake_timer_start;
    loop.timer_stop = fake_timer_stop;
    store_set_loop(s, &loop); /* the store keeps a copy */
    return s;
}

/* The one read of the tests below that runs on another table than
 * leads: the app. */
static void start_app_find(store_t *s, waited_t *w)
{
    started(w, store_app_find(s, "pk_live_one", &w->app, ASYNC(w)));
}

static void expect_app_found(const waited_t *w)
{
    cr_expect_eq(w->rc, STORE_OK);
    cr_expect_eq(w->app.id, app1.id);
    cr_expect_str_eq(w->app.key, "pk_live_one");
}

/* Starts read kind k % 6 of the mix below into w. */
static void start_mixed(store_t *s, int k, waited_t *w)
{
    switch (k % 6) {
    case 0:
        started(w, store_lead_get(s, app1.id, ID(1 + k % 3), on_lead, &w->leads, ASYNC(w)));
        break;
    case 1:
        started(w, store_lead_list(s, app1.id, 0, 10, &w->total, on_lead, &w->leads, ASYNC(w)));
        break;
    case 2:
        started(w, store_follow_list(s, app1.id, ID(2), 0, 10, &w->total, on_follow, &w->follows, ASYNC(w)));
        break;
    case 3:
        start_app_find(s, w);
        break;
    case 4:
        started(w, store_lead_get(s, app1.id, ID(9), on_lead, &w->leads, ASYNC(w)));
        break;
    default:
        started(w, store_revoked_since(s, 0, NULL, NULL, ASYNC(w)));
        break;
    }
}

static void expect_mixed(int k, const waited_t *w)
{
    cr_expect_eq(w->order, k, "read %d ended as number %d", k, w->order);
    switch (k % 6) {
    case 0:
        cr_expect_eq(w->rc, STORE_OK);
        cr_assert_eq(w->leads.n, 1, "read %d", k);
        cr_expect_str_eq(w->leads.r[0].l.id, ID(1 + k % 3));
        break;
    case 1:
        cr_expect_eq(w->rc, STORE_OK);
        cr_expect_eq(w->total, 3);
        cr_assert_eq(w->leads.n, 3);
        cr_expect_str_eq(w->leads.r[0].l.id, ID(3), "newest first");
        break;
    case 2:
        cr_expect_eq(w->rc, STORE_OK);
        cr_expect_eq(w->total, 1);
        cr_assert_eq(w->follows.n, 1);
        cr_expect_str_eq(w->follows.r[0].f.id, ID(20));
        break;
    case 3:
        expect_app_found(w);
        break;
    case 4:
        cr_expect_eq(w->rc, STORE_NOT_FOUND);
        cr_expect_eq(w->leads.n, 0);
        break;
    default:
        cr_expect_eq(w->rc, STORE_OK);
        break;
    }
}

/* Many reads of every kind at once: on PostgreSQL they are all sent before
 * any answer is taken, and end in the order they were started, each with
 * its own rows; on SQLite each ends before its call returns. */
Test(store, reads_given_a_loop_end_in_the_order_they_were_started)
{
    for (int i = 1; i <= 3; i++)
        create_lead(i, "Mixed", 1000 + i);
    follow_t f = mk_follow(20, 2, "Call", false, 0, 1000);
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    store_t *s = open_with_loop();
    enum { N = 24 };
    static waited_t w[N];
    for (int k = 0; k < N; k++)
        start_mixed(s, k, &w[k]);
    for (int k = 0; k < N; k++)
        cr_expect_eq(w[k].done, !on_postgres, "read %d ended before the loop turned", k);
    TURN_UNTIL(nended == N);
    for (int k = 0; k < N; k++)
        expect_mixed(k, &w[k]);
    store_close(s);
}

/* Another connection, in a transaction that holds the leads table:
 * PostgreSQL's lock that even readers wait for, or SQLite's write lock
 * (which its readers never wait for, in WAL mode). */
typedef struct locker {
    PGconn *pg;
    sqlite3 *sq;
} locker_t;

static locker_t lock_leads(void)
{
    locker_t l = {0};
    if (!on_postgres) {
        cr_assert_eq(sqlite3_open(url_ + strlen("sqlite:"), &l.sq), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(l.sq, "BEGIN IMMEDIATE; UPDATE leads SET name = name", NULL, NULL, NULL),
                     SQLITE_OK);
        return l;
    }
    l.pg = PQconnectdb(url_);
    cr_assert_eq(PQstatus(l.pg), CONNECTION_OK, "connect: %s", PQerrorMessage(l.pg));
    PGresult *r = PQexec(l.pg, "BEGIN; LOCK TABLE leads IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(l.pg));
    PQclear(r);
    return l;
}

static void unlock_leads(locker_t l)
{
    if (l.sq != NULL) {
        sqlite3_exec(l.sq, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(l.sq);
        return;
    }
    PQclear(PQexec(l.pg, "COMMIT"));
    PQfinish(l.pg);
}

/* Ends this test's crmd sessions (the fixture's store and the test's), as
 * an administrator or a restart would. */
static void kill_crmd_sessions(void)
{
    char sql[256 + DB_MAX];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
             "WHERE datname = '%s' AND application_name = 'crmd'",
             dbs_[0]);
    pg_run(server_, sql);
}

/* A read that waits for a lock holds up neither its caller nor the loop:
 * the call returns, and later reads are sent behind it on the same
 * connection (so they end after it). SQLite's readers never wait for a
 * writer (WAL): there the reads end at once. */
Test(store, a_read_that_waits_for_a_lock_holds_up_neither_its_caller_nor_the_reads_after_it)
{
    create_lead(1, "Locked", 1000);
    store_t *s = open_with_loop();
    locker_t locker = lock_leads();
    static waited_t a, b;
    started(&a, store_lead_get(s, app1.id, ID(1), on_lead, &a.leads, ASYNC(&a)));
    start_app_find(s, &b);
    for (int i = 0; i < 10; i++)
        turn(20);
    cr_expect_eq(a.done, !on_postgres, "the read ended while the table was locked");
    cr_expect_eq(b.done, !on_postgres, "a read sent behind it overtook it");
    unlock_leads(locker);
    TURN_UNTIL(a.done && b.done);
    cr_expect_eq(a.rc, STORE_OK);
    cr_assert_eq(a.leads.n, 1);
    cr_expect_str_eq(a.leads.r[0].l.id, ID(1));
    expect_app_found(&b);
    cr_expect_lt(a.order, b.order);
    store_close(s);
}

/* A read in flight when its connection dies is sent again on a new one,
 * and its caller sees only the answer. */
Test(store, a_read_whose_connection_dies_is_sent_again_on_a_new_one)
{
    if (!on_postgres) SKIP_TEST("SQLite has no connection to lose");
    store_set_log(quiet, NULL);
    create_lead(1, "Survivor", 1000);
    store_t *s = open_with_loop();
    locker_t locker = lock_leads();
    static waited_t a;
    started(&a, store_lead_get(s, app1.id, ID(1), on_lead, &a.leads, ASYNC(&a)));
    for (int i = 0; i < 5; i++)
        turn(20);
    kill_crmd_sessions(); /* while the read waits for the lock */
    for (int i = 0; i < 10; i++)
        turn(20);
    cr_expect(!a.done, "the read ended (with %d) instead of waiting again on a new connection", a.rc);
    unlock_leads(locker);
    TURN_UNTIL(a.done);
    cr_expect_eq(a.rc, STORE_OK);
    cr_assert_eq(a.leads.n, 1);
    cr_expect_str_eq(a.leads.r[0].l.id, ID(1));
    store_close(s);
}

static void allow_connections(bool allow)
{
    char sql[4 * DB_MAX];
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS %s", dbs_[0], allow ? "true" : "false");
    pg_run(server_, sql);
}

/* During an outage a read fails with STORE_UNAVAILABLE once its new
 * connection cannot be made; the next ones are refused at once (no
 * round trip) until the back-off has passed; then service resumes. */
Test(store, reads_during_an_outage_fail_then_are_refused_at_once_until_the_back_off_ends)
{
    if (!on_postgres) SKIP_TEST("SQLite has no connection to lose");
    store_set_log(quiet, NULL);
    store_t *s = open_with_loop();
    static waited_t before, during, refused, after;
    start_app_find(s, &before);
    TURN_UNTIL(before.done);
    expect_app_found(&before);

    allow_connections(false);
    kill_crmd_sessions();
    start_app_find(s, &during);
    TURN_UNTIL(during.done);
    cr_expect_eq(during.rc, STORE_UNAVAILABLE);
    start_app_find(s, &refused);
    cr_expect(refused.done, "a read during the back-off waited instead of being refused");
    cr_expect_eq(refused.rc, STORE_UNAVAILABLE);

    allow_connections(true);
    sleep_ms(250); /* the first back-off is 100 ms */
    start_app_find(s, &after);
    TURN_UNTIL(after.done);
    expect_app_found(&after);
    store_close(s);
}

/* A read that fails makes no other read fail: not those sent with it (on
 * PostgreSQL the server skips the rest of its batch, which is sent again),
 * nor one sent later whose statement's preparation was among those
 * skipped. The revocations' table, renamed away, makes a read fail; the
 * lock on leads holds the first batch until the second has been sent. */
Test(store, a_failed_read_makes_no_other_read_fail)
{
    store_set_log(quiet, NULL);
    create_lead(1, "Unharmed", 1000);
    store_t *s = open_with_loop();
    raw_sql("ALTER TABLE revoked_tokens RENAME TO revoked_tokens_away");
    locker_t locker = lock_leads();
    static waited_t first, failing, skipped, later;
    started(&first, store_lead_get(s, app1.id, ID(1), on_lead, &first.leads, ASYNC(&first)));
    started(&failing, store_revoked_since(s, 0, NULL, NULL, ASYNC(&failing)));
    start_app_find(s, &skipped);
    for (int i = 0; i < 5; i++)
        turn(20); /* the first batch has gone, and waits for the lock */
    start_app_find(s, &later);
    for (int i = 0; i < 5; i++)
        turn(20);
    unlock_leads(locker);
    TURN_UNTIL(first.done && failing.done && skipped.done && later.done);
    cr_expect_eq(first.rc, STORE_OK);
    cr_expect_eq(first.leads.n, 1);
    cr_expect_eq(failing.rc, STORE_ERROR);
    expect_app_found(&skipped);
    expect_app_found(&later);

    raw_sql("ALTER TABLE revoked_tokens_away RENAME TO revoked_tokens");
    static waited_t again;
    started(&again, store_revoked_since(s, 0, NULL, NULL, ASYNC(&again)));
    TURN_UNTIL(again.done);
    cr_expect_eq(again.rc, STORE_OK);
    store_close(s);
}

/* --- webhooks (helpers above) ------------------------------------------------ */

static int record_in(store_t *s, int64_t app, int id, int type)
{
    store_event_t ev = {
        .type = type, .created_at = 5000, .payload = "{\"x\":1}", .len = 7, .backlog_max = 10000};
    strcpy(ev.id, ID(id));
    snprintf(ev.drop_id, sizeof ev.drop_id, "0190f3a2-0002-7000-8000-%012d", id);
    int n = -1;
    cr_assert_eq(store_event_record(s, app, &ev, &n), STORE_OK);
    return n;
}

static int record(int64_t app, int id, int type)
{
    return record_in(st, app, id, type);
}

typedef struct lanes_seen {
    int n;
    char ids[8][UUID_BUFSZ];
} lanes_seen_t;

static void on_lane(void *ctx, const store_lane_t *l)
{
    lanes_seen_t *ls = ctx;
    cr_assert_lt(ls->n, 8);
    strcpy(ls->ids[ls->n++], l->id);
    cr_expect_str_eq(l->secret, "whsec_0123456789abcdefghijABCDEFGHIJ12");
}

typedef struct queue_seen {
    int n;
    int64_t seq[16];
    char events[16][UUID_BUFSZ];
    int attempts[16];
    int64_t next_at[16];
    bool active;
} queue_seen_t;

static void on_queued_event(void *ctx, const store_queued_t *e)
{
    queue_seen_t *q = ctx;
    cr_assert_lt(q->n, 16);
    q->seq[q->n] = e->seq;
    strcpy(q->events[q->n], e->event_id);
    q->attempts[q->n] = e->attempts;
    q->next_at[q->n++] = e->next_at;
    q->active = e->active;
    cr_expect_eq(e->len, 7u);
    cr_expect_eq(memcmp(e->payload, "{\"x\":1}", 7), 0);
}

static queue_seen_t queue_in(store_t *s, int id)
{
    queue_seen_t q = {0};
    cr_assert_eq(store_outbox_queue(s, ID(id), 16, on_queued_event, &q), STORE_OK);
    return q;
}

static queue_seen_t queue_of(int id)
{
    return queue_in(st, id);
}

Test(store, webhooks_are_kept_per_app_with_their_secret)
{
    for (int i = 0; i < 3; i++) {
        webhook_t wh = mk_webhook(20 + i, EVENT_ALL, 1000 + i);
        cr_assert_eq(store_webhook_create(st, app1.id, &wh, 3), STORE_OK);
    }
    webhook_t extra = mk_webhook(23, EVENT_ALL, 2000);
    cr_expect_eq(store_webhook_create(st, app1.id, &extra, 3), STORE_CONFLICT, "the app's maximum");
    cr_expect_eq(store_webhook_create(st, app2.id, &extra, 3), STORE_OK, "another app has its own");
    hooks_seen_t h = {0};
    int64_t total = 0;
    cr_assert_eq(store_webhook_list(st, app1.id, &PAGE(0, 2), &total, on_hook, &h, NULL), STORE_OK);
    cr_expect_eq(total, 3);
    cr_assert_eq(h.n, 2);
    cr_expect_str_eq(h.ids[0], ID(22), "newest first");
    cr_expect_str_eq(h.ids[1], ID(21));
    h = (hooks_seen_t){0};
    cr_assert_eq(store_webhook_list(st, app1.id, &PAGE(5, 2), &total, on_hook, &h, NULL), STORE_OK);
    cr_expect_eq(h.n, 0);
    cr_expect_eq(total, 3, "a page past the end still counts");
    /* By position: the rows after the second's, whatever the offset. */
    h = (hooks_seen_t){0};
    store_newest_page_t after = {.offset = 7, .limit = 2, .after_at = 1001, .after_id = ID(21)};
    cr_assert_eq(store_webhook_list(st, app1.id, &after, &total, on_hook, &h, NULL), STORE_OK);
    cr_expect_eq(total, 3);
    cr_assert_eq(h.n, 1);
    cr_expect_str_eq(h.ids[0], ID(20));
    h = (hooks_seen_t){0};
    cr_assert_eq(store_webhook_get(st, app1.id, ID(20), on_hook, &h, NULL), STORE_OK);
    cr_expect_str_eq(h.secret, "whsec_0123456789abcdefghijABCDEFGHIJ12");
    cr_expect_eq(store_webhook_get(st, app2.id, ID(20), on_hook, &h, NULL), STORE_NOT_FOUND);
    webhook_patch_t p = {.fields = WEBHOOK_F_ACTIVE | WEBHOOK_F_URL};
    p.v.url = T("https://93.184.216.34/new");
    h = (hooks_seen_t){0};
    cr_assert_eq(store_webhook_update(st, app1.id, ID(20), &p, 500, on_hook, &h), STORE_OK);
    cr_expect_eq(h.active[0], false);
    cr_expect_str_eq(h.url, "https://93.184.216.34/new");
    cr_expect_eq(store_webhook_update(st, app2.id, ID(20), &p, 500, on_hook, &h), STORE_NOT_FOUND);
    cr_expect_eq(store_webhook_delete(st, app2.id, ID(20)), STORE_NOT_FOUND);
    cr_expect_eq(store_webhook_delete(st, app1.id, ID(20)), STORE_OK);
    cr_expect_eq(store_webhook_delete(st, app1.id, ID(20)), STORE_NOT_FOUND);
    cr_expect_eq(store_webhook_deliveries(st, app1.id, ID(20), &PAGE(0, 10), &total, NULL, NULL, NULL),
                 STORE_NOT_FOUND);
}

Test(store, an_event_goes_to_the_apps_active_webhooks_that_want_it)
{
    webhook_t all = mk_webhook(20, EVENT_ALL, 1000),
              stages = mk_webhook(21, EVENT_BIT(EVENT_LEAD_STAGE_CHANGED), 1001);
    webhook_t off = mk_webhook(22, EVENT_ALL, 1002), other = mk_webhook(23, EVENT_ALL, 1003);
    off.active = false;
    cr_assert_eq(store_webhook_create(st, app1.id, &all, 100), STORE_OK);
    cr_assert_eq(store_webhook_create(st, app1.id, &stages, 100), STORE_OK);
    cr_assert_eq(store_webhook_create(st, app1.id, &off, 100), STORE_OK);
    cr_assert_eq(store_webhook_create(st, app2.id, &other, 100), STORE_OK);
    cr_expect_eq(record(app1.id, 1, EVENT_LEAD_CREATED), 1);
    cr_expect_eq(record(app1.id, 2, EVENT_LEAD_STAGE_CHANGED), 2);
    cr_expect_eq(queue_of(20).n, 2);
    queue_seen_t q = queue_of(21);
    cr_assert_eq(q.n, 1);
    cr_expect_str_eq(q.events[0], ID(2));
    cr_expect(q.active);
    cr_expect_eq(queue_of(22).n, 0, "an inactive webhook gets nothing");
    cr_expect_eq(queue_of(23).n, 0, "another app's neither");
    /* Recorded in a batch that is undone: nothing. */
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_expect_eq(record(app1.id, 3, EVENT_LEAD_CREATED), 1);
    cr_assert_eq(store_batch_end(st, 0), STORE_OK);
    cr_expect_eq(queue_of(20).n, 2);
    /* Deleting a webhook drops its events. */
    cr_assert_eq(store_webhook_delete(st, app1.id, ID(21)), STORE_OK);
    cr_expect_eq(queue_of(21).n, 0);
}

typedef struct log_seen {
    int n;
    int attempt[8], status[8];
    int64_t next_retry_at[8];
    char error[8][64];
} log_seen_t;

static void on_delivery(void *ctx, const delivery_t *d)
{
    log_seen_t *l = ctx;
    cr_assert_lt(l->n, 8);
    l->attempt[l->n] = d->attempt;
    l->status[l->n] = d->status_code;
    l->next_retry_at[l->n] = d->next_retry_at;
    store_text_copy(l->error[l->n++], sizeof l->error[0], d->error);
}

/* A failed attempt of event seq of webhook 20, retried at next_at (0:
 * given up), or a success. */
static store_rc_t report_one(store_t *s, int64_t seq, int attempt, bool ok, int64_t at, int64_t next_at,
                             const char *release, store_report_t *r)
{
    static delivery_t d;
    d = (delivery_t){.type = EVENT_LEAD_CREATED,
                     .attempt = attempt,
                     .status_code = ok ? 200 : 500,
                     .duration_ms = 3,
                     .next_retry_at = next_at,
                     .created_at = at};
    snprintf(d.id, sizeof d.id, "0190f3a2-0002-7000-8000-%012lld", (long long)(at * 10 + attempt));
    strcpy(d.event_id, ID(1));
    if (!ok) d.error = T("the receiver answered 500");
    static store_outcome_t o;
    o = (store_outcome_t){.webhook_id = ID(20), .seq = seq, .attempt = &d, .first_at = at, .ok = ok};
    static const char *rel[1];
    rel[0] = release;
    r->outcomes = &o;
    r->n = 1;
    r->release = rel;
    r->nrelease = release != NULL;
    r->now = at;
    r->lease_until = at + 30000;
    return store_outbox_report(s, r);
}

Test(store, leases_claims_and_reports)
{
    webhook_t wh = mk_webhook(20, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    lanes_seen_t a = {0}, b = {0};
    cr_assert_eq(store_outbox_claim(st, "A", 10000, 40000, 8, on_lane, &a), STORE_OK);
    cr_expect_eq(a.n, 0, "nothing to send: nothing leased");
    record(app1.id, 1, EVENT_LEAD_CREATED);
    record(app1.id, 2, EVENT_LEAD_CREATED);
    cr_assert_eq(store_outbox_claim(st, "A", 10000, 40000, 8, on_lane, &a), STORE_OK);
    cr_assert_eq(a.n, 1);
    cr_expect_str_eq(a.ids[0], ID(20));
    store_t *other = open_store();
    cr_assert_eq(store_outbox_claim(other, "B", 10001, 40001, 8, on_lane, &b), STORE_OK);
    cr_expect_eq(b.n, 0, "leased to A");
    queue_seen_t q = queue_of(20);
    cr_assert_eq(q.n, 2);
    cr_expect_lt(q.seq[0], q.seq[1]);
    /* A fails the first event; it is retried at 12000, and A lets go. */
    store_report_t r = {.owner = "A", .disable_after_ms = 3000};
    cr_assert_eq(report_one(st, q.seq[0], 1, false, 10005, 12000, ID(20), &r), STORE_OK);
    queue_seen_t q2 = queue_of(20);
    cr_expect_eq(q2.attempts[0], 1);
    cr_expect_eq(q2.next_at[0], 12000);
    cr_assert_eq(store_outbox_claim(other, "B", 11000, 41000, 8, on_lane, &b), STORE_OK);
    cr_expect_eq(b.n, 0, "not due before 12000");
    cr_assert_eq(store_outbox_claim(other, "B", 12000, 42000, 8, on_lane, &b), STORE_OK);
    cr_expect_eq(b.n, 1, "due: B takes it");
    /* B succeeds: the event is gone, the log holds both attempts. */
    store_report_t rb = {.owner = "B", .disable_after_ms = 3000};
    cr_assert_eq(report_one(other, q.seq[0], 2, true, 12001, 0, NULL, &rb), STORE_OK);
    cr_expect_eq(queue_of(20).n, 1);
    int64_t total = 0;
    log_seen_t log = {0};
    cr_assert_eq(store_webhook_deliveries(st, app1.id, ID(20), &PAGE(0, 10), &total, on_delivery, &log, NULL),
                 STORE_OK);
    cr_expect_eq(total, 2);
    cr_assert_eq(log.n, 2);
    cr_expect_eq(log.attempt[0], 2, "newest first");
    cr_expect_eq(log.status[0], 200);
    cr_expect_eq(log.attempt[1], 1);
    cr_expect_eq(log.next_retry_at[1], 12000);
    cr_expect_str_eq(log.error[1], "the receiver answered 500");
    /* After the newest attempt (12001, its id as report_one makes it): the first. */
    log = (log_seen_t){0};
    store_newest_page_t after = {
        .limit = 10, .after_at = 12001, .after_id = "0190f3a2-0002-7000-8000-000000120012"};
    cr_assert_eq(store_webhook_deliveries(st, app1.id, ID(20), &after, &total, on_delivery, &log, NULL),
                 STORE_OK);
    cr_expect_eq(total, 2);
    cr_assert_eq(log.n, 1);
    cr_expect_eq(log.attempt[0], 1);
    store_close(other);
}

static void on_disabled(void *ctx, const char *id)
{
    strcpy(ctx, id);
}

Test(store, a_webhook_failing_for_long_enough_is_set_inactive)
{
    webhook_t wh = mk_webhook(20, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    record(app1.id, 1, EVENT_LEAD_CREATED);
    queue_seen_t q = queue_of(20);
    char disabled[UUID_BUFSZ] = "";
    store_report_t r = {.owner = "A", .disable_after_ms = 3000, .disabled = on_disabled, .ctx = disabled};
    cr_assert_eq(report_one(st, q.seq[0], 1, false, 10000, 11000, NULL, &r), STORE_OK);
    cr_assert_eq(report_one(st, q.seq[0], 2, false, 12999, 14000, NULL, &r), STORE_OK);
    cr_expect_str_eq(disabled, "", "failing for 2999 ms: not yet");
    cr_assert_eq(report_one(st, q.seq[0], 3, false, 13000, 15000, NULL, &r), STORE_OK);
    cr_expect_str_eq(disabled, ID(20));
    hooks_seen_t h = {0};
    cr_assert_eq(store_webhook_get(st, app1.id, ID(20), on_hook, &h, NULL), STORE_OK);
    cr_expect_eq(h.active[0], false);
    cr_expect_eq(queue_of(20).n, 1, "its event is kept");
    cr_expect_eq(record(app1.id, 2, EVENT_LEAD_CREATED), 0, "events made while inactive are not");
    /* Active again, it starts afresh: one more failure does not disable it. */
    webhook_patch_t p = {.fields = WEBHOOK_F_ACTIVE, .v = {.active = true}};
    cr_assert_eq(store_webhook_update(st, app1.id, ID(20), &p, 20000, on_hook, &h), STORE_OK);
    disabled[0] = '\0';
    cr_assert_eq(report_one(st, q.seq[0], 4, false, 20001, 21000, NULL, &r), STORE_OK);
    cr_expect_str_eq(disabled, "");
}

static void on_owner(void *ctx, const char *owner)
{
    strcpy(ctx, owner);
}

Test(store, a_dead_owners_leases_can_be_ended)
{
    webhook_t wh = mk_webhook(20, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    record(app1.id, 1, EVENT_LEAD_CREATED);
    lanes_seen_t a = {0};
    cr_assert_eq(store_outbox_claim(st, "dead", 10000, 40000, 8, on_lane, &a), STORE_OK);
    char owner[64] = "";
    cr_assert_eq(store_outbox_owners(st, on_owner, owner), STORE_OK);
    cr_expect_str_eq(owner, "dead");
    cr_assert_eq(store_outbox_release_owner(st, "dead"), STORE_OK);
    a = (lanes_seen_t){0};
    cr_assert_eq(store_outbox_claim(st, "alive", 10001, 40001, 8, on_lane, &a), STORE_OK);
    cr_expect_eq(a.n, 1, "taken over before the lease ran out");
}

/* The outcome of an attempt of event (its row seq) to webhook hook: ended
 * (delivered, or given up when not ok) when next_at is 0, else retried. */
static store_rc_t report_in(store_t *s, int hook, int64_t seq, int event, bool ok, int64_t next_at)
{
    delivery_t d = {.type = EVENT_LEAD_CREATED,
                    .attempt = 1,
                    .status_code = ok ? 200 : 500,
                    .next_retry_at = next_at,
                    .created_at = 10000 + seq};
    snprintf(d.id, sizeof d.id, "0190f3a2-0003-7000-8000-%012d", (int)(seq % 1000000) * 100 + hook);
    strcpy(d.event_id, ID(event));
    store_outcome_t o = {.webhook_id = ID(hook), .seq = seq, .attempt = &d, .first_at = 10000, .ok = ok};
    store_report_t r = {.outcomes = &o,
                        .n = 1,
                        .owner = "A",
                        .now = 10000,
                        .lease_until = 40000,
                        .disable_after_ms = 3600000};
    return store_outbox_report(s, &r);
}

static int64_t payloads_on(const char *url)
{
    return raw_number_on(url, "SELECT count(*) FROM webhook_payloads");
}

/* An event wanted by several webhooks is stored once; its payload stays
 * while any of their queue rows needs it, whether the others were
 * delivered, given up or deleted with their webhook, and goes with the
 * last. */
Test(store, an_events_payload_is_stored_once_and_goes_with_the_last_row_that_needs_it)
{
    for (int i = 0; i < 3; i++) {
        webhook_t wh = mk_webhook(20 + i, EVENT_ALL, 1000 + i);
        cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    }
    webhook_t stages = mk_webhook(23, EVENT_BIT(EVENT_LEAD_STAGE_CHANGED), 1003);
    cr_assert_eq(store_webhook_create(st, app1.id, &stages, 100), STORE_OK);
    cr_expect_eq(record(app1.id, 1, EVENT_LEAD_CREATED), 3);
    cr_expect_eq(record(app1.id, 2, EVENT_LEAD_STAGE_CHANGED), 4);
    cr_expect_eq(payloads_on(url_), 2, "one payload per event, not per webhook");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_events"), 7);
    cr_expect_eq(record(app2.id, 3, EVENT_LEAD_CREATED), 0);
    cr_expect_eq(payloads_on(url_), 2, "none for an event no webhook wants");
    queue_seen_t q20 = queue_of(20), q21 = queue_of(21), q22 = queue_of(22);
    cr_assert(q20.n == 2 && q21.n == 2 && q22.n == 2);
    cr_assert_eq(report_in(st, 20, q20.seq[0], 1, true, 0), STORE_OK);
    cr_assert_eq(report_in(st, 21, q21.seq[0], 1, false, 20000), STORE_OK);
    cr_expect_eq(payloads_on(url_), 2, "delivered to one, retried for another: kept");
    q21 = queue_of(21);
    cr_expect(q21.n == 2 && q21.attempts[0] == 1 && strcmp(q21.events[0], ID(1)) == 0);
    cr_assert_eq(store_webhook_delete(st, app1.id, ID(21)), STORE_OK);
    cr_expect_eq(payloads_on(url_), 2, "webhook 22 still needs both");
    cr_assert_eq(report_in(st, 22, q22.seq[0], 1, false, 0), STORE_OK);
    cr_expect_eq(payloads_on(url_), 1, "given up by the last webhook that had it: gone");
    q20 = queue_of(20);
    cr_assert(q20.n == 1 && strcmp(q20.events[0], ID(2)) == 0);
    cr_assert_eq(report_in(st, 20, q20.seq[0], 2, true, 0), STORE_OK);
    cr_assert_eq(store_webhook_delete(st, app1.id, ID(22)), STORE_OK);
    cr_expect_eq(payloads_on(url_), 1, "webhook 23 still needs event 2");
    cr_assert_eq(store_webhook_delete(st, app1.id, ID(23)), STORE_OK);
    cr_expect_eq(payloads_on(url_), 0, "deleted with the last webhook that had it");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_events"), 0);
}

/* Records event id of app1 for webhooks whose backlog holds at most max
 * events; returns how many queued it. */
static int record_max_in(store_t *s, int id, int64_t max)
{
    store_event_t ev = {
        .type = EVENT_LEAD_CREATED, .created_at = 5000, .payload = "{\"x\":1}", .len = 7, .backlog_max = max};
    strcpy(ev.id, ID(id));
    snprintf(ev.drop_id, sizeof ev.drop_id, "0190f3a2-0004-7000-8000-%012d", id);
    int n = -1;
    cr_assert_eq(store_event_record(s, app1.id, &ev, &n), STORE_OK);
    return n;
}

static int record_max(int id, int64_t max)
{
    return record_max_in(st, id, max);
}

/* SQLite keeps each webhook's count of its queue rows (migration 19): it
 * must be the rows' count after every change. PostgreSQL counts the rows. */
static void expect_counts_exact_on(const char *url, const char *when)
{
    if (on_postgres) return;
    cr_expect_eq(raw_number_on(url, "SELECT count(*) FROM webhooks w WHERE queued <> (SELECT count(*) FROM "
                                    "webhook_events e WHERE e.webhook_id = w.id)"),
                 0, "webhooks.queued is its queue's count %s", when);
}

static void expect_counts_exact(const char *when)
{
    expect_counts_exact_on(url_, when);
}

/* A full backlog is one of exactly backlog_max undelivered events,
 * however the queue got there: events queued, delivered, given up, and
 * another webhook's queue deleted with it (SQLite reads a count kept with
 * the queue, which must follow each of these). */
Test(store, a_backlog_is_full_at_exactly_its_max_through_deliveries_give_ups_and_deletes)
{
    for (int i = 0; i < 2; i++) {
        webhook_t wh = mk_webhook(50 + i, EVENT_ALL, 1000 + i);
        cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    }
    cr_expect_eq(record_max(1, 3), 2);
    cr_expect_eq(record_max(2, 3), 2);
    expect_counts_exact("after two events");
    /* One delivered to 50, one given up by 51: one waits on each. */
    cr_assert_eq(report_in(st, 50, queue_of(50).seq[0], 1, true, 0), STORE_OK);
    cr_assert_eq(report_in(st, 51, queue_of(51).seq[0], 1, false, 0), STORE_OK);
    /* A retry leaves the event queued. */
    cr_assert_eq(report_in(st, 51, queue_of(51).seq[0], 2, false, 20000), STORE_OK);
    expect_counts_exact("after a delivery, a give-up and a retry");
    cr_expect_eq(record_max(3, 3), 2);
    cr_expect_eq(record_max(4, 3), 2, "three waiting on each: full only now");
    cr_expect(queue_of(50).n == 3 && queue_of(51).n == 3);
    expect_counts_exact("at the max");
    cr_expect_eq(record_max(5, 3), 0, "the fourth is dropped for both");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhooks WHERE active"), 0, "both made inactive");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_attempts WHERE error LIKE 'dropped: %'"),
                 2);
    /* 51 deleted with its queue, whose events 50 has too: 50's is whole. */
    cr_assert_eq(store_webhook_delete(st, app1.id, ID(51)), STORE_OK);
    expect_counts_exact("after a webhook's delete");
    webhook_patch_t p = {.fields = WEBHOOK_F_ACTIVE, .v = {.active = true}};
    hooks_seen_t h = {0};
    cr_assert_eq(store_webhook_update(st, app1.id, ID(50), &p, 20000, on_hook, &h), STORE_OK);
    cr_expect_eq(record_max(6, 3), 0, "still three waiting: still full");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhooks WHERE active"), 0);
    cr_assert_eq(store_webhook_update(st, app1.id, ID(50), &p, 20001, on_hook, &h), STORE_OK);
    cr_assert_eq(report_in(st, 50, queue_of(50).seq[0], 2, true, 0), STORE_OK);
    cr_expect_eq(record_max(7, 3), 1, "one delivered: room for one");
    cr_expect_eq(record_max(8, 3), 0, "and no more");
    expect_counts_exact("at the end");
    /* A new webhook starts from nothing, whatever went before it. */
    webhook_t again = mk_webhook(52, EVENT_ALL, 1002);
    cr_assert_eq(store_webhook_create(st, app1.id, &again, 100), STORE_OK);
    cr_expect_eq(record_max(9, 1), 1);
    cr_expect_eq(record_max(10, 1), 0);
    expect_counts_exact("with a new webhook");
    /* A copy's webhooks count the events it copies: three wait on 50,
     * one on 52. */
    char target[URL_MAX], out[4096];
    copy_to_fresh(target, out);
    expect_counts_exact_on(target, "in a copy");
    store_t *t = open_url(target);
    cr_assert_eq(store_webhook_update(t, app1.id, ID(50), &p, 20002, on_hook, &h), STORE_OK);
    cr_assert_eq(store_webhook_update(t, app1.id, ID(52), &p, 20002, on_hook, &h), STORE_OK);
    cr_expect_eq(record_max_in(t, 11, 3), 1, "50 is full, 52 is not");
    cr_expect_eq(raw_number_on(target, "SELECT count(*) FROM webhooks WHERE active"), 1);
    store_close(t);
}

/* A database of schema version 10 (webhook_events holding a copy of the
 * payload per webhook) with undelivered events: migration 11 keeps every
 * row, its order and its state, and stores each event's payload once;
 * they are then sent and removed as any other, and new events come after
 * them. */
Test(store, version_10s_undelivered_events_are_kept_in_order_with_one_payload_each)
{
    char old[URL_MAX];
    fresh_db(old, sizeof old);
    store_t *s = open_url(old);
    cr_assert_eq(store_migrate(s), STORE_OK);
    store_close(s);
    if (!on_postgres) raw_sql_on(old, SQ_BEFORE_HISTORY_CHAIN);
    raw_sql_on(old, "DROP TABLE webhook_attempts; DROP TABLE webhook_events; DROP TABLE webhook_payloads; "
                    "DROP TABLE webhooks;");
    raw_sql_on(old, on_postgres ? pg_migrations[6] : sq_migrations[6]); /* version 7's webhooks */
    raw_sql_on(old,
               on_postgres ? "UPDATE crmd_schema SET version = 10 WHERE id = 1" : "PRAGMA user_version = 10");
    char sql[2048];
    const char *p = "'{\"x\":1}'";
    snprintf(
        sql, sizeof sql,
        "INSERT INTO apps (key, name, created_at) VALUES ('pk_live_old', 'Old', 1);"
        "INSERT INTO webhooks (id, app_id, url, events, description, active, secret, created_at, updated_at) "
        "VALUES ('%s', 1, 'http://127.0.0.1:9/hook', %u, NULL, true, "
        "'whsec_0123456789abcdefghijABCDEFGHIJ12', 1000, 1000),"
        "('%s', 1, 'http://127.0.0.1:9/hook', %u, NULL, true, "
        "'whsec_0123456789abcdefghijABCDEFGHIJ12', 1001, 1001);"
        "INSERT INTO webhook_events (webhook_id, event_id, type, created_at, payload, attempts, first_at, "
        "next_at) VALUES ('%s', '%s', 0, 5000, %s, 2, 6000, 7000);"
        "INSERT INTO webhook_events (webhook_id, event_id, type, created_at, payload) VALUES "
        "('%s', '%s', 0, 5000, %s);"
        "INSERT INTO webhook_events (webhook_id, event_id, type, created_at, payload) VALUES "
        "('%s', '%s', 0, 5001, %s);"
        "INSERT INTO webhook_events (webhook_id, event_id, type, created_at, payload) VALUES "
        "('%s', '%s', 0, 5002, %s);"
        "DELETE FROM webhook_events WHERE event_id = '%s';",
        ID(20), EVENT_ALL, ID(21), EVENT_ALL, ID(20), ID(1), p, ID(21), ID(1), p, ID(20), ID(2), p, ID(21),
        ID(3), p, ID(3));
    raw_sql_on(old, sql);
    s = open_url(old);
    cr_assert_eq(store_migrate(s), STORE_OK);
    expect_counts_exact_on(old, "after the migrations");
    cr_expect_eq(payloads_on(old), 2, "one per undelivered event");
    queue_seen_t q20 = queue_in(s, 20), q21 = queue_in(s, 21);
    cr_assert_eq(q20.n, 2);
    cr_expect(strcmp(q20.events[0], ID(1)) == 0 && strcmp(q20.events[1], ID(2)) == 0, "in their order");
    cr_expect(q20.attempts[0] == 2 && q20.next_at[0] == 7000, "with their state");
    cr_assert_eq(q21.n, 1);
    cr_expect_str_eq(q21.events[0], ID(1));
    cr_expect_eq(record_in(s, 1, 4, EVENT_LEAD_CREATED), 2);
    queue_seen_t after = queue_in(s, 21);
    cr_assert_eq(after.n, 2);
    cr_expect_gt(after.seq[1], 4, "numbers are not used again, not even a deleted row's");
    cr_assert_eq(report_in(s, 20, q20.seq[0], 1, true, 0), STORE_OK);
    cr_expect_eq(payloads_on(old), 3);
    cr_assert_eq(report_in(s, 21, q21.seq[0], 1, true, 0), STORE_OK);
    cr_expect_eq(payloads_on(old), 2, "event 1 delivered to both: its payload is gone");
    store_close(s);
}

/* A write to a webhook's outbox run on a thread of its own: a report of
 * hook's row seq on st, a delete of hook on a store of its own (url), or
 * a prune of the log (deleted: how many rows it took). */
typedef struct hook_run {
    char url[URL_MAX];
    int hook;
    int64_t seq;
    int deleted;
    store_rc_t rc;
    atomic_bool done;
} hook_run_t;

static void *report_thread(void *arg)
{
    hook_run_t *r = arg;
    r->rc = report_in(st, r->hook, r->seq, 1, true, 0);
    atomic_store(&r->done, true);
    return NULL;
}

/* Whether a session of the test's PostgreSQL database waits for a lock. */
static bool lock_waited(void)
{
    return pg_number(url_, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'") > 0;
}

/* Waits (up to 30 s: plenty on a loaded machine) until a session of the
 * test's database waits for a lock; fails the test if none does. */
static void await_lock_wait(void)
{
    for (int i = 0; i < 3000; i++) {
        if (lock_waited()) return;
        sleep_ms(10);
    }
    cr_assert_fail("no session waited for a lock");
}

/* Runs then on the raw session d (a thread t waits for a lock d holds),
 * wanting the status want; then commits, closes d and joins t. */
static void end_session(PGconn *d, const char *then, ExecStatusType want, pthread_t t)
{
    PGresult *res = PQexec(d, then);
    cr_expect_eq(PQresultStatus(res), want, "the session's next statement: %s", PQerrorMessage(d));
    PQclear(res);
    res = PQexec(d, "COMMIT");
    PQclear(res);
    PQfinish(d);
    pthread_join(t, NULL);
}

/* Webhooks 30 and on (nhooks of them) leased by A, and event 1 queued for
 * each; a raw session runs first (a delete's first statements, left open),
 * then webhook 30's row of event 1 is reported as delivered on a thread,
 * which waits for a lock that session holds; then the session runs then
 * (the delete's next statement, which must succeed: no deadlock) and
 * commits. Returns the report's rc. */
static store_rc_t report_during_delete(int nhooks, const char *first, const char *then, ExecStatusType want)
{
    for (int i = 0; i < nhooks; i++) {
        webhook_t wh = mk_webhook(30 + i, EVENT_ALL, 1000 + i);
        cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    }
    cr_assert_eq(record(app1.id, 1, EVENT_LEAD_CREATED), nhooks);
    lanes_seen_t a = {0};
    cr_assert_eq(store_outbox_claim(st, "A", 10000, 40000, 8, on_lane, &a), STORE_OK);
    cr_assert_eq(a.n, nhooks, "every webhook leased by A");
    queue_seen_t q30 = queue_of(30);
    cr_assert_eq(q30.n, 1);
    PGconn *d = PQconnectdb(url_);
    cr_assert_eq(PQstatus(d), CONNECTION_OK);
    PGresult *res = PQexec(d, first);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(d));
    PQclear(res);
    hook_run_t r = {.hook = 30, .seq = q30.seq[0]};
    atomic_init(&r.done, false);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, report_thread, &r), 0);
    await_lock_wait();
    end_session(d, then, want, t);
    return r.rc;
}

/* A sender's report and a webhook's delete on PostgreSQL: the delete holds
 * its webhook's row and its queue rows, then locks the payloads they
 * named; the report renews its leases (the deleted webhook's among them,
 * so it waits for the delete) and must not hold any payload's lock while
 * it waits, or the two wait for each other until one is cancelled as a
 * deadlock (after a second: the delete is retried, the report's
 * deliveries are recorded a second later). */
Test(store, a_report_takes_payload_locks_after_its_leases_so_a_delete_does_not_deadlock)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    char first[256], then[256];
    snprintf(
        first, sizeof first,
        "BEGIN; DELETE FROM webhooks WHERE id = '%s'; DELETE FROM webhook_events WHERE webhook_id = '%s'",
        ID(31), ID(31));
    snprintf(then, sizeof then, "SELECT 1 FROM webhook_payloads WHERE event_id = '%s' FOR UPDATE", ID(1));
    cr_expect_eq(report_during_delete(2, first, then, PGRES_TUPLES_OK), STORE_OK, "the report");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_events"), 0);
    cr_expect_eq(payloads_on(url_), 0, "the last row that needed it is gone, and so is the payload");
}

/* The same with the delete of the webhook whose event the report ends: the
 * delete holds the webhook's row, then takes its queue; the report must
 * not hold that queue's row while it waits for the webhook's row. */
Test(store, a_report_and_a_delete_of_its_webhook_do_not_deadlock)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    char first[256], then[256];
    snprintf(first, sizeof first, "BEGIN; DELETE FROM webhooks WHERE id = '%s'", ID(30));
    snprintf(then, sizeof then, "DELETE FROM webhook_events WHERE webhook_id = '%s'", ID(30));
    cr_expect_eq(report_during_delete(1, first, then, PGRES_COMMAND_OK), STORE_OK, "the report");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_events"), 0);
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_attempts"), 0,
                 "no log of a deleted webhook");
    cr_expect_eq(payloads_on(url_), 0);
}

/* Whether webhook hook's row is locked against an update, seen from a
 * connection of its own (which skips, never waits for, a locked row). */
static bool webhook_locked(int hook)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT 1 FROM webhooks WHERE id = '%s' FOR NO KEY UPDATE SKIP LOCKED) x",
             ID(hook));
    return raw_number_on(url_, sql) == 0;
}

/* Webhooks high, then low (so that both a scan of the table and one of
 * the newest first meet high first), each with event 1 queued. */
static void two_webhooks(int low, int high)
{
    webhook_t wh = mk_webhook(high, EVENT_ALL, 2000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    wh = mk_webhook(low, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    cr_assert_eq(record(app1.id, 1, EVENT_LEAD_CREATED), 2);
}

/* The same, both leased by owner until 20000. */
static void two_leased_webhooks(int low, int high, const char *owner)
{
    two_webhooks(low, high);
    lanes_seen_t a = {0};
    cr_assert_eq(store_outbox_claim(st, owner, 10000, 20000, 8, on_lane, &a), STORE_OK);
    cr_assert_eq(a.n, 2);
}

/* Runs fn(arg) on a thread while a raw session holds webhook low's row:
 * once fn waits for that row, webhook high's must be free. A statement
 * that took high first and then waited for low would close a circle with
 * any transaction that holds low and wants high (PostgreSQL cancels one
 * after a second); in the order of the ids, it never can. Then the
 * session commits and fn ends. */
static void expect_lowest_id_locked_first(int low, int high, void *(*fn)(void *), void *arg)
{
    PGconn *d = PQconnectdb(url_);
    cr_assert_eq(PQstatus(d), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SET deadlock_timeout = '10s'; BEGIN; SELECT 1 FROM webhooks WHERE id = '%s' FOR NO KEY UPDATE",
             ID(low));
    PGresult *res = PQexec(d, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(d));
    PQclear(res);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, arg), 0);
    await_lock_wait();
    cr_expect(!webhook_locked(high), "waiting for the lowest id, it holds no other webhook");
    end_session(d, "SELECT 1", PGRES_TUPLES_OK, t);
}

typedef struct full_run {
    int recorded;
    store_rc_t rc;
} full_run_t;

/* Records event 2 for app1 with a backlog of one: every webhook of app1
 * with an event waiting is full. */
static void *full_thread(void *arg)
{
    full_run_t *f = arg;
    store_event_t ev = {
        .type = EVENT_LEAD_CREATED, .created_at = 6000, .payload = "{\"x\":1}", .len = 7, .backlog_max = 1};
    strcpy(ev.id, ID(2));
    snprintf(ev.drop_id, sizeof ev.drop_id, "0190f3a2-0002-7000-8000-%012d", 2);
    f->rc = store_event_record(st, app1.id, &ev, &f->recorded);
    return NULL;
}

/* The webhooks an event finds full are made inactive in one statement,
 * which locks them in the order of their ids. */
Test(store, webhooks_made_inactive_for_a_full_backlog_are_locked_in_the_order_of_their_ids)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    two_webhooks(40, 41);
    full_run_t f = {.recorded = -1};
    expect_lowest_id_locked_first(40, 41, full_thread, &f);
    cr_expect_eq(f.rc, STORE_OK);
    cr_expect_eq(f.recorded, 0, "both full: the event goes to neither");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhooks WHERE active"), 0, "both made inactive");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_attempts WHERE error LIKE 'dropped: %'"),
                 2, "and each log says so");
}

/* A report locks every webhook it will change, those of its outcomes and
 * those whose leases it renews, in one statement, in the order of their
 * ids: here its outcome is the higher id's, and the lower is its owner's
 * too. */
Test(store, a_report_locks_its_outcomes_and_leases_webhooks_in_the_order_of_their_ids)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    two_leased_webhooks(42, 43, "A");
    hook_run_t r = {.hook = 43, .seq = queue_of(43).seq[0]};
    atomic_init(&r.done, false);
    expect_lowest_id_locked_first(42, 43, report_thread, &r);
    cr_expect_eq(r.rc, STORE_OK);
    cr_expect_eq(queue_of(43).n, 0, "delivered");
    cr_expect_eq(queue_of(42).n, 1);
    cr_expect_eq(
        raw_number_on(url_, "SELECT count(*) FROM webhooks WHERE lease_owner = 'A' AND lease_until = 40000"),
        2, "both leases renewed");
}

static void *release_thread(void *arg)
{
    *(store_rc_t *)arg = store_outbox_release_owner(st, "dead");
    return NULL;
}

/* The end of a dead owner's leases locks its webhooks in the order of their
 * ids. */
Test(store, a_dead_owners_leases_end_in_the_order_of_their_ids)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    two_leased_webhooks(44, 45, "dead");
    store_rc_t rc = STORE_ERROR;
    expect_lowest_id_locked_first(44, 45, release_thread, &rc);
    cr_expect_eq(rc, STORE_OK);
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhooks WHERE lease_owner IS NOT NULL"), 0);
}

static void *prune_thread(void *arg)
{
    hook_run_t *p = arg;
    p->rc = store_outbox_prune(st, 1000, 10, &p->deleted);
    atomic_store(&p->done, true);
    return NULL;
}

/* The prune of the log never waits: the rows a webhook's delete is taking
 * (in its own order) are skipped, and the others go. */
Test(store, the_logs_prune_skips_the_rows_another_transaction_holds)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    two_webhooks(46, 47);
    char sql[1024];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO webhook_attempts (webhook_id, id, event_id, type, attempt, duration_ms, created_at) "
        "SELECT w, gen_random_uuid(), '%s', 0, 1, 0, 100 FROM (VALUES ('%s'::uuid), ('%s'::uuid)) v(w), "
        "generate_series(1, 2)",
        ID(1), ID(46), ID(47));
    raw_sql(sql);
    PGconn *d = PQconnectdb(url_);
    cr_assert_eq(PQstatus(d), CONNECTION_OK);
    snprintf(sql, sizeof sql, "BEGIN; DELETE FROM webhook_attempts WHERE webhook_id = '%s'", ID(46));
    PGresult *res = PQexec(d, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(d));
    PQclear(res);
    hook_run_t p = {.deleted = -1};
    atomic_init(&p.done, false);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, prune_thread, &p), 0);
    bool waited = false;
    for (int i = 0; i < 3000 && !atomic_load(&p.done) && !(waited = lock_waited()); i++)
        sleep_ms(10);
    cr_expect(atomic_load(&p.done) && !waited, "the prune ended without waiting for the delete");
    end_session(d, "SELECT 1", PGRES_TUPLES_OK, t);
    cr_expect_eq(p.rc, STORE_OK);
    cr_expect_eq(p.deleted, 2, "the other webhook's rows");
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_attempts"), 0);
}

/* Renames lead id in app1 inside the open batch. */
static store_rc_t rename_in_batch(int id, const char *name)
{
    lead_patch_t p = {0};
    p.fields = LEAD_F_NAME;
    p.v.name = T(name);
    p.v.source = T(NULL);
    p.v.probability = -1;
    leads_t c = {0};
    return store_lead_update(st, app1.id, ID(id), &p, 5000, on_lead, &c);
}

/* A batch of two renames (leads 1 then 2) on a thread, and how it ended. */
typedef struct rename_run {
    store_rc_t first, second, end;
    bool redo;
    atomic_bool first_done;
} rename_run_t;

static void *rename_thread(void *arg)
{
    rename_run_t *r = arg;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    r->first = rename_in_batch(1, "batch");
    atomic_store(&r->first_done, true);
    r->second = rename_in_batch(2, "batch");
    r->end = store_batch_end(st, 1);
    r->redo = store_batch_redo(st);
    return NULL;
}

/* Whether lead id of app1 is named name, read on a connection of its own. */
static bool named(int id, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM leads WHERE id = '%s' AND name = '%s'", ID(id), name);
    return raw_number_on(url_, sql) == 1;
}

/* A batch on PostgreSQL that loses a deadlock after one of its writes is
 * undone whole, that write included, and says it may be run again
 * (store_batch_redo): had it committed what it had done so far to go on
 * in a new transaction, the first part of an API write could stay without
 * the rest (its event, its history) should the rest then fail. Then run
 * again, it commits. */
Test(store, a_batch_that_loses_a_deadlock_is_undone_whole_and_may_be_run_again)
{
    if (!on_postgres) SKIP_TEST("SQLite's writes never wait for each other");
    create_lead(1, "one", 1000);
    create_lead(2, "two", 1000);
    PGconn *d = PQconnectdb(url_);
    cr_assert_eq(PQstatus(d), CONNECTION_OK);
    char sql[256];
    /* The session checks for a deadlock only after 10 s: the batch, after
     * 1 s, is the one cancelled, however late the session begins to wait. */
    snprintf(sql, sizeof sql,
             "SET deadlock_timeout = '10s'; BEGIN; UPDATE leads SET name = 'other' WHERE id = '%s'", ID(2));
    PGresult *res = PQexec(d, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(d));
    PQclear(res);
    rename_run_t r = {0};
    atomic_init(&r.first_done, false);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, rename_thread, &r), 0);
    /* The batch holds lead 1 and waits for lead 2; the session then waits
     * for lead 1: a circle, which the batch, waiting longer, finds first. */
    await_lock_wait();
    cr_assert(atomic_load(&r.first_done));
    snprintf(sql, sizeof sql, "UPDATE leads SET name = 'other' WHERE id = '%s'", ID(1));
    end_session(d, sql, PGRES_COMMAND_OK, t);
    cr_expect_eq(r.first, STORE_OK);
    cr_expect_eq(r.second, STORE_UNAVAILABLE, "the write that lost the deadlock");
    cr_expect_eq(r.end, STORE_UNAVAILABLE, "the batch cannot commit");
    cr_expect(r.redo, "the batch may be run again");
    cr_expect(named(1, "other") && named(2, "other"),
              "nothing of the batch happened, its first write neither");
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_expect(!store_batch_redo(st), "a new batch starts clean");
    cr_expect_eq(rename_in_batch(1, "batch"), STORE_OK);
    cr_expect_eq(rename_in_batch(2, "batch"), STORE_OK);
    cr_expect_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect(named(1, "batch") && named(2, "batch"), "run again, the batch commits");
}

static void *delete_thread(void *arg)
{
    hook_run_t *d = arg;
    store_t *s = open_url(d->url);
    d->rc = store_webhook_delete(s, app1.id, ID(d->hook));
    store_close(s);
    atomic_store(&d->done, true);
    return NULL;
}

/* A webhook deleted on PostgreSQL while a writer's batch that recorded an
 * event for it is still open: the delete must not miss the queue row the
 * batch then commits, or that row (never sent: its webhook is gone) and
 * its payload stay in the outbox for good. */
Test(store, a_webhook_deleted_while_a_batch_records_its_event_leaves_nothing_behind)
{
    webhook_t wh = mk_webhook(30, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(record(app1.id, 1, EVENT_LEAD_CREATED), 1);
    hook_run_t d = {.hook = 30};
    snprintf(d.url, sizeof d.url, "%s", url_);
    atomic_init(&d.done, false);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, delete_thread, &d), 0);
    /* SQLite's delete waits for the batch's write lock. PostgreSQL's must
     * wait for the batch's lock on the webhook's row: until it ends (it
     * must not) or waits. */
    if (on_postgres)
        for (int i = 0; i < 1000 && !atomic_load(&d.done) && !lock_waited(); i++)
            sleep_ms(10);
    else
        sleep_ms(300);
    cr_expect_not(atomic_load(&d.done), "the delete ended while the batch that queued an event was open");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    pthread_join(t, NULL);
    cr_expect_eq(d.rc, STORE_OK);
    cr_expect_eq(raw_number_on(url_, "SELECT count(*) FROM webhook_events"), 0,
                 "no queue row of a deleted webhook");
    cr_expect_eq(payloads_on(url_), 0, "nor its payload");
}

/* A writer's batch that queued an event for a webhook (and so holds a lock
 * on its row on PostgreSQL) does not keep a sender from leasing it for the
 * events before. */
Test(store, a_writers_open_batch_does_not_keep_a_sender_from_the_webhook)
{
    webhook_t wh = mk_webhook(30, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &wh, 100), STORE_OK);
    cr_assert_eq(record(app1.id, 1, EVENT_LEAD_CREATED), 1);
    store_t *other = open_url(url_);
    if (on_postgres) cr_assert_eq(store_batch_begin(st), STORE_OK);
    if (on_postgres) cr_assert_eq(record(app1.id, 2, EVENT_LEAD_CREATED), 1);
    lanes_seen_t a = {0};
    cr_assert_eq(store_outbox_claim(other, "A", 10000, 40000, 8, on_lane, &a), STORE_OK);
    cr_expect_eq(a.n, 1, "the webhook was skipped while a writer queued for it");
    if (on_postgres) cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    store_close(other);
}

/* The find reads through the loop: each ends from it, in the order the
 * reads were started (record reads between them), with what the same read
 * returns at once. On PostgreSQL a find is sent with its own statement and
 * list parameters (array literals) and planned for its values; the reads
 * after it in its batch are planned as before. */
Test(store, find_reads_given_a_loop_end_from_it_as_they_read_at_once)
{
    seed_find();
    store_lead_query_t lq = base_query();
    lq.f.nsources = 2;
    lq.f.sources[0] = T("website");
    lq.f.sources[1] = T("Cold Call");
    lq.nsort = 1;
    lq.sort[0] = (store_sort_t){LEAD_KEY_VALUE, true};
    lq.limit = 5;
    found_t want_leads = {0};
    int64_t want_total = -2;
    cr_assert_eq(store_lead_find(st, app1.id, &lq, &want_total, on_found, &want_leads, NULL), STORE_OK);
    cr_assert_gt(want_leads.n, 1, "the filter keeps some leads");
    store_follow_query_t fq = base_follow_query("");
    fq.statuses = 1u << FOLLOW_PENDING | 1u << FOLLOW_OVERDUE;
    found_t want_follows = {0};
    int64_t want_ftotal = -2;
    cr_assert_eq(store_follow_find(st, app1.id, &fq, &want_ftotal, on_ffound, &want_follows, NULL), STORE_OK);
    store_follow_query_t nq = base_follow_query(ID(63)); /* no such lead */
    store_lead_filter_t f = no_filter();
    f.stages = 1u << STAGE_QUALIFIED | 1u << STAGE_NEGOTIATION;
    store_summary_t want_sum, sum;
    cr_assert_eq(store_lead_summary(st, app1.id, &f, FIND_NOW, &want_sum, NULL), STORE_OK);

    store_t *s = open_with_loop();
    static waited_t w[5];
    static found_t leads, follows, none;
    started(&w[0], store_lead_find(s, app1.id, &lq, &w[0].total, on_found, &leads, ASYNC(&w[0])));
    started(&w[1], store_lead_get(s, app1.id, fls[0].id, on_lead, &w[1].leads, ASYNC(&w[1])));
    started(&w[2], store_follow_find(s, app1.id, &fq, &w[2].total, on_ffound, &follows, ASYNC(&w[2])));
    started(&w[3], store_follow_find(s, app1.id, &nq, &w[3].total, on_ffound, &none, ASYNC(&w[3])));
    started(&w[4], store_lead_summary(s, app1.id, &f, FIND_NOW, &sum, ASYNC(&w[4])));
    for (int k = 0; k < 5; k++)
        cr_expect_eq(w[k].done, !on_postgres, "read %d ended before the loop turned", k);
    TURN_UNTIL(w[0].done && w[1].done && w[2].done && w[3].done && w[4].done);
    for (int k = 0; k < 5; k++)
        cr_expect_eq(w[k].order - w[0].order, k, "read %d ended in its turn", k);
    cr_expect_eq(w[0].rc, STORE_OK);
    cr_expect_eq(w[0].total, want_total);
    expect_ids(&leads, (const char(*)[UUID_BUFSZ])want_leads.ids, want_leads.n, "the lead find");
    cr_expect(w[1].rc == STORE_OK && w[1].leads.n == 1, "the record read between the finds");
    cr_expect_eq(w[2].rc, STORE_OK);
    cr_expect_eq(w[2].total, want_ftotal);
    expect_ids(&follows, (const char(*)[UUID_BUFSZ])want_follows.ids, want_follows.n, "the follow find");
    cr_expect_eq(w[3].rc, STORE_NOT_FOUND, "the follows of a lead that does not exist");
    cr_expect_eq(w[4].rc, STORE_OK);
    cr_expect(memcmp(&sum, &want_sum, sizeof sum) == 0, "the summary");

    /* The next page, by its position: a find of other parameters. */
    store_sort_t order[STORE_SORT_MAX];
    int norder = store_lead_order(lq.sort, lq.nsort, order);
    store_pos_t pos;
    store_lead_pos(&want_leads.last.l, order, norder, &pos);
    lq.after = &pos;
    found_t want_next = {0}, next = {0};
    cr_assert_eq(store_lead_find(st, app1.id, &lq, &want_total, on_found, &want_next, NULL), STORE_OK);
    static waited_t again;
    started(&again, store_lead_find(s, app1.id, &lq, &again.total, on_found, &next, ASYNC(&again)));
    TURN_UNTIL(again.done);
    cr_expect_eq(again.rc, STORE_OK);
    expect_ids(&next, (const char(*)[UUID_BUFSZ])want_next.ids, want_next.n, "the next page");
    store_close(s);
}

/* store_event_wanted: on SQLite, whether an active webhook of the app is
 * subscribed to the type (or to *); on PostgreSQL always (another process
 * may add one meanwhile). */
Test(store, an_event_is_wanted_only_by_an_active_subscribed_webhook_of_the_app)
{
    bool wanted = false;
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(store_event_wanted(st, app1.id, EVENT_LEAD_CREATED, &wanted), STORE_OK);
    cr_expect_eq(wanted, on_postgres, "no webhook at all");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    webhook_t other = mk_webhook(20, EVENT_BIT(EVENT_LEAD_UPDATED), 1000);
    cr_assert_eq(store_webhook_create(st, app1.id, &other, 100), STORE_OK);
    webhook_t all = mk_webhook(21, EVENT_ALL, 1000);
    cr_assert_eq(store_webhook_create(st, app2.id, &all, 100), STORE_OK);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(store_event_wanted(st, app1.id, EVENT_LEAD_CREATED, &wanted), STORE_OK);
    cr_expect_eq(wanted, on_postgres, "another type, and another app's webhook");
    cr_assert_eq(store_event_wanted(st, app1.id, EVENT_LEAD_UPDATED, &wanted), STORE_OK);
    cr_expect(wanted, "its type");
    cr_assert_eq(store_event_wanted(st, app2.id, EVENT_LEAD_CREATED, &wanted), STORE_OK);
    cr_expect(wanted, "subscribed to *");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    webhook_patch_t p = {.fields = WEBHOOK_F_ACTIVE};
    hooks_seen_t h = {0};
    cr_assert_eq(store_webhook_update(st, app2.id, ID(21), &p, 500, on_hook, &h), STORE_OK);
    cr_assert_eq(h.active[0], false);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(store_event_wanted(st, app2.id, EVENT_LEAD_CREATED, &wanted), STORE_OK);
    cr_expect_eq(wanted, on_postgres, "an inactive webhook");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
}

/* How many leads of app1 a search for "staged" finds (their count). */
static int64_t staged_found(void)
{
    store_lead_query_t q = base_query();
    q.f.search = T("staged");
    found_t found = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &found, NULL), STORE_OK);
    return total;
}

/* Creates inside a batch (SQLite stages them, sqlite_int.h): a repeated
 * id or a broken constraint is refused at once, alone; the batch's own
 * reads and follows see its creates; after the commit search and
 * the summary hold every one, and a batch undone leaves none. */
Test(store, creates_inside_a_batch_are_refused_read_and_kept_as_single_ones)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    lead_t a = mk_lead(1, "Staged Alpha", 100), b = mk_lead(2, "Staged Beta", 200);
    a.stage = b.stage = STAGE_QUALIFIED;
    a.has_value = b.has_value = true;
    a.value_cents = 1000;
    b.value_cents = 2000;
    cr_assert_eq(store_lead_create(st, app1.id, &a), STORE_OK);
    cr_expect_eq(store_lead_create(st, app1.id, &a), STORE_CONFLICT, "a staged id is taken");
    lead_t bad = mk_lead(3, "Bad", 300);
    bad.probability = 101;
    cr_expect_eq(store_lead_create(st, app1.id, &bad), STORE_CONFLICT, "the probability's CHECK");
    lead_t stray = mk_lead(6, "Stray", 300);
    cr_expect_neq(store_lead_create(st, app1.id + app2.id + 100, &stray), STORE_OK, "an unknown app");
    cr_assert_eq(store_lead_create(st, app1.id, &b), STORE_OK);
    lead_copy_t got;
    cr_assert_eq(get_lead(app1.id, ID(2), &got), STORE_OK, "the batch reads its own create");
    follow_t f = {.title = T("Call"), .status = FOLLOW_PENDING, .created_at = 400, .updated_at = 400};
    strcpy(f.id, ID(10));
    strcpy(f.lead_id, ID(1));
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK, "a follow of a staged lead");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(store_lead_create(st, app1.id, &a), STORE_CONFLICT, "a committed id is taken");
    cr_expect_eq(lead_total(app1.id), 2);
    store_lead_filter_t fl = no_filter();
    store_summary_t sum;
    cr_assert_eq(store_lead_summary(st, app1.id, &fl, FIND_NOW, &sum, NULL), STORE_OK);
    cr_expect_eq(sum.cell[STAGE_QUALIFIED][LEAD_ACTIVE].n, 2);
    cr_expect(cell_value(&sum.cell[STAGE_QUALIFIED][LEAD_ACTIVE]) == 3000);
    cr_expect_eq(staged_found(), 2, "both staged leads are in the search index");
    /* A write that fails after the staged creates went into leads within
     * its savepoint (a trashing of an unknown id) undoes only itself: the
     * creates before it are committed all the same. */
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    lead_t d = mk_lead(5, "Staged Delta", 600);
    cr_assert_eq(store_lead_create(st, app1.id, &d), STORE_OK);
    cr_expect_eq(store_lead_trash(st, app1.id, ID(63), 700), STORE_NOT_FOUND);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(get_lead(app1.id, ID(5), &got), STORE_OK, "the create before a failed write is kept");
    cr_expect_eq(lead_total(app1.id), 3);
    cr_expect_eq(staged_found(), 3, "and in the search index");
    /* Undone: nothing of it stays, in leads or in the staging table. */
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    lead_t c = mk_lead(4, "Staged Gamma", 500);
    cr_assert_eq(store_lead_create(st, app1.id, &c), STORE_OK);
    cr_assert_eq(store_batch_end(st, 0), STORE_OK);
    cr_expect_eq(get_lead(app1.id, ID(4), &got), STORE_NOT_FOUND);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    cr_assert_eq(store_lead_create(st, app1.id, &b), STORE_CONFLICT);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(get_lead(app1.id, ID(4), &got), STORE_NOT_FOUND, "no undone create comes back");
    cr_expect_eq(lead_total(app1.id), 3);
}

/* A find passed exactly the leads numbered want[0..n) (ID), in order. */
static void expect_numbered(const found_t *got, const int *want, int n, const char *what)
{
    char ids[4][UUID_BUFSZ];
    cr_assert_leq(n, 4);
    for (int i = 0; i < n; i++)
        strcpy(ids[i], ID(want[i]));
    expect_ids(got, (const char(*)[UUID_BUFSZ])ids, n, what);
}

/* Pages of two leads by value, ascending, without counts. */
static store_lead_query_t value_pages(void)
{
    store_lead_query_t q = base_query();
    q.sort[0] = (store_sort_t){LEAD_KEY_VALUE, false};
    q.nsort = 1;
    q.limit = 2;
    q.count = false;
    return q;
}

/* Leads 1, 2 and 3 of app1, "Snap", worth 1, 2 and 3 (hundreds of cents),
 * created at 1001 to 1003: the snapshot tests' data. */
static void create_valued_leads(void)
{
    for (int i = 1; i <= 3; i++) {
        lead_t l = mk_lead(i, "Snap", 1000 + i);
        l.has_value = true;
        l.value_cents = i * 100;
        cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    }
}

/* A snapshot (store_snapshot_begin: crmd export's pages) reads the leads
 * as they were at its first read: a lead another connection moves past
 * the page's end meanwhile (a sort by value) is neither read twice nor
 * missed; after the snapshot the change is seen. */
Test(store, a_snapshot_reads_its_pages_from_one_state)
{
    create_valued_leads();
    store_lead_query_t q = value_pages();
    store_sort_t order[STORE_SORT_MAX];
    int norder = store_lead_order(q.sort, q.nsort, order);
    cr_assert_eq(store_snapshot_begin(st), STORE_OK);
    found_t first = {0};
    int64_t total;
    cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &first, NULL), STORE_OK);
    expect_numbered(&first, (const int[]){1, 2}, 2, "the first page");
    char err[STORE_OPEN_ERR_MAX];
    store_t *other = store_open(url_, err, sizeof err);
    cr_assert_not_null(other, "%s", err);
    lead_patch_t p = {.fields = LEAD_F_VALUE};
    p.v.has_value = true;
    p.v.value_cents = 1000;
    leads_t changed = {0};
    cr_assert_eq(store_lead_update(other, app1.id, ID(1), &p, 5000, on_lead, &changed), STORE_OK);
    store_close(other);
    store_pos_t pos;
    store_lead_pos(&first.last.l, order, norder, &pos);
    q.after = &pos;
    found_t next = {0};
    cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &next, NULL), STORE_OK);
    store_snapshot_end(st);
    expect_numbered(&next, (const int[]){3}, 1, "the next page, as of the snapshot");
    found_t after = {0};
    cr_assert_eq(store_lead_find(st, app1.id, &q, &total, on_found, &after, NULL), STORE_OK);
    expect_numbered(&after, (const int[]){3, 1}, 2, "the same page after it");
}

/* Reads page q of the reader r through the loop into *got. */
static void reader_page(store_t *r, const store_lead_query_t *q, found_t *got, store_rc_t want)
{
    static waited_t w;
    w = (waited_t){0};
    started(&w, store_lead_find(r, app1.id, q, &w.total, on_found, got, ASYNC(&w)));
    TURN_UNTIL(w.done);
    cr_assert_eq(w.rc, want);
}

/* An export over HTTP: a reader (store_reader_open) of a thread's store,
 * given a loop, reads its pages from one snapshot, begun by the first,
 * while another connection moves a lead past the page's end, deletes and
 * creates; the thread's store reads what is committed meanwhile. Ended
 * and begun again, the reader's next snapshot sees the changes. */
Test(store, a_readers_snapshot_holds_beside_its_threads_fresh_reads)
{
    create_valued_leads();
    store_t *s = open_with_loop();
    char err[STORE_OPEN_ERR_MAX];
    store_t *r = store_reader_open(s, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(store_snapshot_begin(r), STORE_OK);
    store_lead_query_t q = value_pages();
    store_sort_t order[STORE_SORT_MAX];
    int norder = store_lead_order(q.sort, q.nsort, order);
    found_t first = {0};
    reader_page(r, &q, &first, STORE_OK);
    expect_numbered(&first, (const int[]){1, 2}, 2, "the first page");
    lead_patch_t p = {.fields = LEAD_F_VALUE};
    p.v.has_value = true;
    p.v.value_cents = 1000;
    leads_t changed = {0};
    cr_assert_eq(store_lead_update(st, app1.id, ID(1), &p, 5000, on_lead, &changed), STORE_OK);
    cr_assert_eq(store_lead_delete(st, app1.id, ID(3)), STORE_OK);
    lead_t added = mk_lead(4, "Snap", 2000);
    cr_assert_eq(store_lead_create(st, app1.id, &added), STORE_OK);
    found_t fresh = {0};
    reader_page(s, &q, &fresh, STORE_OK);
    expect_numbered(&fresh, (const int[]){2, 1}, 2, "the thread's store reads what is committed");
    store_pos_t pos;
    store_lead_pos(&first.last.l, order, norder, &pos);
    q.after = &pos;
    found_t next = {0};
    reader_page(r, &q, &next, STORE_OK);
    expect_numbered(&next, (const int[]){3}, 1, "the next page, as of the snapshot");
    store_snapshot_end(r);
    cr_assert_eq(store_snapshot_begin(r), STORE_OK);
    q.after = NULL;
    found_t again = {0};
    reader_page(r, &q, &again, STORE_OK);
    expect_numbered(&again, (const int[]){2, 1}, 2, "a new snapshot");
    store_close(r);
    store_close(s);
}

/* The leads waiting in SQLite's staging table (sqlite_int.h: staged
 * creates), read by the store's own connection. */
static int staged_rows(void)
{
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)st)->db, "SELECT count(*) FROM temp.leads_incoming",
                                    -1, &q, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    int n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return n;
}

/* A write of a batch that failed after moving the staged creates into
 * leads (a trashing of an unknown id) undoes the move with itself; the
 * creates are then moved again at once, outside any write, so that the
 * next failed write does not move them all again and undo it again (a
 * client's batches of 500 creates between such writes made each of them
 * move every create of the batch so far: quadratic work under the write
 * lock). */
Test(store, staged_creates_a_failed_write_moved_are_moved_for_good)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    for (int i = 1; i <= 5; i++)
        create_lead(i, "Staged", 1000 + i);
    /* PostgreSQL stages nothing: there the rest must hold all the same. */
    if (!on_postgres) cr_assert_eq(staged_rows(), 5);
    cr_expect_eq(store_lead_trash(st, app1.id, ID(60), 7000), STORE_NOT_FOUND);
    if (!on_postgres)
        cr_expect_eq(staged_rows(), 0, "the creates the failed write had moved are not left to wait again");
    cr_expect_eq(store_lead_trash(st, app1.id, ID(61), 7000), STORE_NOT_FOUND);
    create_lead(6, "Staged", 1006);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_expect_eq(lead_total(app1.id), 6);
    cr_expect_eq(staged_found(), 6, "every create is in the search index");
}

/* A lead's history as store_history_list passes it: each entry's seq and
 * changes, newest first. */
typedef struct history_seen {
    int n;
    int64_t seq[4], at[4];
    char changes[4][16];
} history_seen_t;

static void on_change(void *ctx, const store_change_t *c, int64_t seq)
{
    history_seen_t *h = ctx;
    cr_assert_lt(h->n, 4);
    h->seq[h->n] = seq;
    h->at[h->n] = c->at;
    snprintf(h->changes[h->n], sizeof h->changes[0], "%.*s", (int)c->changes.len, c->changes.ptr);
    h->n++;
}

/* Records the change changes (a short text) of lead number lead, with
 * change id number k, at at (ms). */
static void record_change_at(int lead, int k, int action, const char *changes, int64_t at)
{
    char id[UUID_BUFSZ], lead_id[UUID_BUFSZ];
    strcpy(id, ID(k));
    strcpy(lead_id, ID(lead));
    store_change_t c = {.id = id,
                        .lead_id = lead_id,
                        .follow_id = "",
                        .action = action,
                        .actor = "tester",
                        .at = at,
                        .changes = T(changes)};
    cr_assert_eq(store_history_add(st, app1.id, &c), STORE_OK, "change %d", k);
}

/* As record_change_at, at 1000 + k. */
static void record_change(int lead, int k, int action, const char *changes)
{
    record_change_at(lead, k, action, changes, 1000 + k);
}

static history_seen_t history_of(int lead)
{
    history_seen_t h = {0};
    store_history_query_t q = {.limit = 4};
    int64_t total = -1;
    cr_assert_eq(store_history_list(st, app1.id, ID(lead), &q, &total, on_change, &h, NULL), STORE_OK,
                 "lead %d", lead);
    cr_expect_eq(total, h.n, "lead %d", lead);
    return h;
}

/* A lead's history, listed newest first, never shows an earlier time
 * above a later one: an entry is recorded no earlier than the lead's
 * entry before it (the clock stepped back, or a follow's change whose
 * own updated_at is behind the lead's), in a batch (where SQLite's
 * creation entry waits staged) and out of one; another lead's entries
 * do not count. */
Test(store, a_history_entry_is_never_earlier_than_the_one_before_it)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(1, "Clock", 100);
    record_change_at(1, 31, STORE_CHANGE_CREATED, "c1", 5000);
    record_change_at(1, 32, STORE_CHANGE_UPDATED, "u1", 3000);
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    record_change_at(1, 33, STORE_CHANGE_FOLLOW_CREATED, "f1", 4000);
    create_lead(2, "Other", 100);
    record_change_at(2, 34, STORE_CHANGE_CREATED, "c2", 2000);
    record_change_at(1, 35, STORE_CHANGE_UPDATED, "u1b", 6000);
    history_seen_t one = history_of(1), two = history_of(2);
    cr_assert_eq(one.n, 4);
    cr_expect_str_eq(one.changes[0], "u1b");
    cr_expect_eq(one.at[0], 6000, "a later time is kept");
    cr_expect_eq(one.at[1], 5000, "the follow's change, recorded at 4000, after an entry at 5000");
    cr_expect_eq(one.at[2], 5000, "the update, recorded at 3000, after the creation at 5000");
    cr_expect_eq(one.at[3], 5000);
    cr_assert_eq(two.n, 1);
    cr_expect_eq(two.at[0], 2000, "lead 1's entries are not lead 2's");
}

/* An entry recorded as a creation while creates wait, but for a lead that
 * does not wait (SQLite stages an entry only beside its lead), is recorded
 * at once and joins its lead's history like any other. */
Test(store, a_creation_entry_for_a_lead_not_waiting_joins_its_history)
{
    create_lead(7, "Made before", 100);
    record_change(7, 50, STORE_CHANGE_CREATED, "c7");
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(8, "Waiting", 110);
    record_change(8, 51, STORE_CHANGE_CREATED, "c8");
    record_change(7, 52, STORE_CHANGE_CREATED, "again");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    record_change(7, 53, STORE_CHANGE_UPDATED, "u7");
    history_seen_t seven = history_of(7), eight = history_of(8);
    cr_assert_eq(seven.n, 3);
    cr_expect_str_eq(seven.changes[0], "u7");
    cr_expect_str_eq(seven.changes[1], "again");
    cr_expect_str_eq(seven.changes[2], "c7");
    cr_assert_eq(eight.n, 1);
    cr_expect_str_eq(eight.changes[0], "c8");
    cr_expect_lt(eight.seq[0], seven.seq[1], "numbered in the order recorded");
}

/* The history recorded while creates wait in SQLite's staging table
 * (history.c: it waits beside them) is numbered in the order recorded,
 * as one by one: the creates', another change recorded between them, a
 * follow's (which moves what waits), those around a failed write; a
 * batch undone leaves none of its entries behind for the next. */
Test(store, history_of_staged_creates_is_numbered_in_the_order_recorded)
{
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(1, "Hist One", 100);
    record_change(1, 41, STORE_CHANGE_CREATED, "c1");
    create_lead(2, "Hist Two", 110);
    record_change(2, 42, STORE_CHANGE_CREATED, "c2");
    record_change(1, 43, STORE_CHANGE_UPDATED, "u1");
    follow_t f = {.title = T("Call"), .status = FOLLOW_PENDING, .created_at = 400, .updated_at = 400};
    strcpy(f.id, ID(10));
    strcpy(f.lead_id, ID(1));
    cr_assert_eq(store_follow_create(st, app1.id, &f), STORE_OK);
    record_change(1, 44, STORE_CHANGE_FOLLOW_CREATED, "f1");
    create_lead(3, "Hist Three", 120);
    record_change(3, 45, STORE_CHANGE_CREATED, "c3");
    cr_expect_eq(store_lead_trash(st, app1.id, ID(60), 7000), STORE_NOT_FOUND);
    create_lead(4, "Hist Four", 130);
    record_change(4, 46, STORE_CHANGE_CREATED, "c4");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(5, "Hist Five", 140);
    record_change(5, 47, STORE_CHANGE_CREATED, "c5");
    cr_assert_eq(store_batch_end(st, 0), STORE_OK);
    cr_assert_eq(store_batch_begin(st), STORE_OK);
    create_lead(6, "Hist Six", 150);
    record_change(6, 48, STORE_CHANGE_CREATED, "c6");
    cr_assert_eq(store_batch_end(st, 1), STORE_OK);
    /* After the batch, a lead's next entry follows its staged one. */
    record_change(2, 49, STORE_CHANGE_UPDATED, "u2");

    history_seen_t one = history_of(1), two = history_of(2), three = history_of(3), four = history_of(4),
                   six = history_of(6);
    cr_assert_eq(one.n, 3, "lead 1: created, updated, its follow");
    cr_expect_str_eq(one.changes[0], "f1");
    cr_expect_str_eq(one.changes[1], "u1");
    cr_expect_str_eq(one.changes[2], "c1");
    cr_assert_eq(two.n, 2, "lead 2: created in the batch, updated after it");
    cr_expect_str_eq(two.changes[0], "u2");
    cr_expect_str_eq(two.changes[1], "c2");
    cr_assert_eq(three.n, 1, "recorded once, though its write's rows were moved twice");
    cr_assert_eq(four.n, 1);
    cr_assert_eq(six.n, 1, "nothing of the undone batch is left to be moved with it");
    cr_expect_str_eq(six.changes[0], "c6");
    const int64_t order[] = {one.seq[2],   two.seq[1],  one.seq[1], one.seq[0],
                             three.seq[0], four.seq[0], six.seq[0], two.seq[0]};
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++)
        cr_expect_lt(order[i - 1], order[i], "entry %zu is numbered after the one recorded before it", i);
    history_seen_t five = {0};
    store_history_query_t q = {.limit = 4};
    int64_t total = -1;
    cr_expect_eq(store_history_list(st, app1.id, ID(5), &q, &total, on_change, &five, NULL), STORE_NOT_FOUND,
                 "the undone create");
}
