/*
 * test_store_sqlite.c: what only the SQLite store promises: its settings
 * (WAL, full sync, foreign keys, the busy timeout), private files, and
 * how it opens paths. The store's contract itself is test_store.c's, run
 * on both backends.
 *
 * Each test gets an empty directory in /tmp; the database file in it does
 * not exist until the store creates it. The directory is removed
 * afterwards.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sqlite_check.h"
#include "store/sqlite/sqlite_int.h"
#include "store/store.h"

static char dir_[64];
static char path_[128];
static char url_[160];

static void setup(void)
{
    strcpy(dir_, "/tmp/crmd-store-sqlite-XXXXXX");
    cr_assert_not_null(mkdtemp(dir_));
    snprintf(path_, sizeof path_, "%s/crmd.db", dir_);
    snprintf(url_, sizeof url_, "sqlite:%s", path_);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(sqlite, .init = setup, .fini = teardown);

static store_t *open_migrated(const char *url)
{
    char err[STORE_OPEN_ERR_MAX] = "";
    store_t *s = store_open(url, err, sizeof err);
    cr_assert_not_null(s, "store_open(%s): %s", url, err);
    cr_assert_eq(store_migrate(s), STORE_OK);
    return s;
}

/* A pragma's value on the store's own connection. */
static void expect_pragma(store_t *s, const char *pragma, const char *want)
{
    sqlite3_stmt *st = NULL;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db, sql, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), want, "PRAGMA %s", pragma);
    sqlite3_finalize(st);
}

static void create_app(store_t *s, const char *key)
{
    store_app_t app;
    cr_assert_eq(store_app_create(s, key, "App", 1000, &app), STORE_OK);
}

Test(sqlite, wal_full_sync_foreign_keys_and_a_busy_timeout)
{
    store_t *s = open_migrated(url_);
    expect_pragma(s, "journal_mode", "wal");
    expect_pragma(s, "synchronous", "2"); /* FULL: a commit is on disk before it returns */
    /* crmd's VFS relies on both (vfs.c). */
    expect_pragma(s, "locking_mode", "normal");
    expect_pragma(s, "foreign_keys", "1");
    expect_pragma(s, "busy_timeout", "5000");
    /* A connection that may write keeps 16 MiB of pages (conn.c); a
     * server thread's, which only reads, goes back to SQLite's 2 MiB. */
    expect_pragma(s, "cache_size", "-16384");
    store_loop_t loop = {0}; /* never used: nothing here reads through the store */
    store_set_loop(s, &loop);
    expect_pragma(s, "cache_size", "-2000");
    store_close(s);
}

static void expect_mode(const char *suffix, mode_t want)
{
    char p[160];
    snprintf(p, sizeof p, "%s%s", path_, suffix);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0, "%s", p);
    cr_expect_eq(sb.st_mode & 0777, want, "%s: mode %o", p, (unsigned)(sb.st_mode & 0777));
}

Test(sqlite, a_new_database_and_its_wal_are_private)
{
    umask(022);
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_one"); /* a write: the -wal and -shm files exist while s is open */
    expect_mode("", 0600);
    expect_mode("-wal", 0600);
    expect_mode("-shm", 0600);
    store_close(s);
}

/* store_open_existing makes nothing where there is no database, and opens
 * one that is there. */
Test(sqlite, opening_an_existing_database_never_creates_one)
{
    char err[STORE_OPEN_ERR_MAX] = "";
    store_t *s = store_open_existing(url_, err, sizeof err);
    cr_expect_null(s);
    store_close(s);
    cr_expect(strstr(err, "no database at ") != NULL, "%s", err);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir_);
    cr_expect_eq(system(cmd), 0, "files were left in %s", dir_);

    store_close(open_migrated(url_));
    s = store_open_existing(url_, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    create_app(s, "pk_live_one");
    store_close(s);
}

/* Whatever the umask, even one that takes the owner's own bits: the
 * database and every file SQLite makes beside it are exactly 0600. */
Test(sqlite, every_file_is_private_whatever_the_umask)
{
    static const mode_t umasks[] = {0, 022, 0277};
    for (size_t i = 0; i < sizeof umasks / sizeof umasks[0]; i++) {
        mode_t old = umask(umasks[i]);
        char url[200];
        snprintf(url, sizeof url, "sqlite:%s/u%zu.db", dir_, i);
        store_t *s = open_migrated(url);
        create_app(s, "pk_live_one");
        store_t *second = open_migrated(url); /* a second connection, as a server's threads */
        store_app_t a;
        cr_expect_eq(store_app_find(second, "pk_live_one", &a, NULL), STORE_OK);
        store_close(second);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -type f ! -perm 0600)\"", dir_);
        cr_expect_eq(system(cmd), 0, "umask %03o: a file in %s is not 0600", (unsigned)umasks[i], dir_);
        store_close(s);
        umask(old);
    }
}

/* Opens path (no store is expected) and returns the reason. */
static void expect_refused(const char *file, mode_t mode, const char *how)
{
    char err[STORE_OPEN_ERR_MAX] = "";
    store_t *s = store_open(url_, err, sizeof err);
    cr_expect_null(s, "%s (mode %04o) opened", file, (unsigned)mode);
    store_close(s);
    char want[STORE_OPEN_ERR_MAX];
    snprintf(want, sizeof want, "%s is %s by group or others (mode %04o); ", file, how, (unsigned)mode);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got: %s\nwant: %s...", err, want);
    snprintf(want, sizeof want, "the token signing key: chmod 600 %s", file);
    cr_expect(strstr(err, want) != NULL, "no fix in: %s", err);
}

/* As ssh with a private key: a database group or others can read or write
 * is refused, with the chmod that fixes it, and left as it was. */
Test(sqlite, a_database_others_can_read_or_write_is_refused)
{
    store_close(open_migrated(url_));
    static const struct {
        mode_t mode;
        const char *how;
    } cases[] = {{0644, "readable"},
                 {0640, "readable"},
                 {0604, "readable"},
                 {0620, "writable"},
                 {0666, "readable and writable"},
                 {0610, "usable"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(chmod(path_, cases[i].mode), 0);
        expect_refused(path_, cases[i].mode, cases[i].how);
        expect_mode("", cases[i].mode); /* refused, not changed */
    }
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path_);
    cr_expect_eq(access(wal, F_OK), -1, "a refused database got a -wal");
    cr_assert_eq(chmod(path_, 0600), 0);
    store_close(open_migrated(url_));
    expect_mode("", 0600);
}

/* The -wal and -shm files hold the database's pages too. */
Test(sqlite, a_wal_or_shm_others_can_read_is_refused)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_one");
    static const char *const suffixes[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        char file[160];
        snprintf(file, sizeof file, "%s%s", path_, suffixes[i]);
        cr_assert_eq(chmod(file, 0644), 0);
        expect_refused(file, 0644, "readable");
        cr_assert_eq(chmod(file, 0600), 0);
    }
    store_close(s);
}

/* A path a shell would split is quoted in the fix. */
Test(sqlite, the_fix_quotes_the_path)
{
    snprintf(path_, sizeof path_, "%s/it's a.db", dir_);
    snprintf(url_, sizeof url_, "sqlite:%s", path_);
    store_close(open_migrated(url_));
    cr_assert_eq(chmod(path_, 0644), 0);
    char err[STORE_OPEN_ERR_MAX] = "";
    cr_assert_null(store_open(url_, err, sizeof err));
    char want[200];
    snprintf(want, sizeof want, "chmod 600 '%s/it'\\''s a.db'", dir_);
    cr_expect(strstr(err, want) != NULL, "got: %s\nwant: %s", err, want);
}

/* A file that is not a database (a --db mistyped onto /etc/hosts) is said
 * to be none, not told to be made private with chmod; an empty file is a
 * new database, and is. Neither is changed. */
Test(sqlite, a_file_that_is_no_database_is_said_so_not_chmod)
{
    static const char text[] = "127.0.0.1\tlocalhost\n";
    FILE *f = fopen(path_, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path_, 0644), 0);
    char err[STORE_OPEN_ERR_MAX] = "";
    cr_assert_null(store_open(url_, err, sizeof err));
    char want[200];
    snprintf(want, sizeof want, "%s is not an SQLite database", path_);
    cr_expect(strstr(err, want) != NULL, "got: %s", err);
    cr_expect(strstr(err, "chmod") == NULL, "got: %s", err);
    struct stat sb;
    cr_assert_eq(stat(path_, &sb), 0);
    cr_expect_eq(sb.st_size, (off_t)sizeof text - 1);
    cr_expect_eq(sb.st_mode & 07777, 0644);
    cr_assert_eq(truncate(path_, 0), 0);
    expect_refused(path_, 0644, "readable");
}

/* Whether another process sees a read lock on the database file's shared
 * range (os_unix.c's SHARED_FIRST, 510 bytes), as the read lock a WAL
 * connection holds for as long as it is open. */
static bool read_lock_seen(const char *path)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000002, .l_len = 510};
        _exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_RDLCK ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A refusal that reads the file's header (above) leaves the locks the
 * process holds on it through its open connections: a close() of a
 * descriptor of its own would drop them all (POSIX), and a connection
 * closing next would take itself for the last and remove the -wal and
 * -shm under the others. */
Test(sqlite, a_refusal_that_reads_the_header_keeps_the_process_locks)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_one");
    cr_assert(read_lock_seen(path_), "no read lock held by the open connection to start with");
    cr_assert_eq(chmod(path_, 0644), 0);
    expect_refused(path_, 0644, "readable"); /* a database: the chmod, after a look at its header */
    cr_assert_eq(chmod(path_, 0600), 0);
    cr_expect(read_lock_seen(path_), "the refusal dropped the open connection's lock");
    store_close(s);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char logged[STORE_LOG_LINE_MAX];

static void keep_line(void *ctx, const char *line)
{
    (void)ctx;
    snprintf(logged, sizeof logged, "%s", line);
}

/* A write that cannot get the write lock gives up after the busy timeout
 * with STORE_UNAVAILABLE (503) instead of hanging, and says why. */
Test(sqlite, a_blocked_write_gives_up_after_the_busy_timeout, .timeout = 30)
{
    store_t *holder = open_migrated(url_);
    store_t *waiter = open_migrated(url_);
    cr_assert_eq(store_batch_begin(holder), STORE_OK); /* holds the write lock */
    store_set_log(keep_line, NULL);
    int64_t start = now_ms();
    store_app_t app;
    cr_expect_eq(store_app_create(waiter, "pk_live_blocked", "App", 1000, &app), STORE_UNAVAILABLE);
    int64_t waited = now_ms() - start;
    store_set_log(NULL, NULL);
    cr_expect_geq(waited, 4000, "gave up after %lld ms, before the busy timeout", (long long)waited);
    cr_expect(strncmp(logged, "crmd: sqlite: ", 14) == 0 && strstr(logged, "locked") != NULL, "logged: %s",
              logged);
    cr_assert_eq(store_batch_end(holder, 1), STORE_OK);
    cr_expect_eq(store_app_create(waiter, "pk_live_blocked", "App", 1000, &app), STORE_OK,
                 "the lock is free again");
    store_close(waiter);
    store_close(holder);
}

Test(sqlite, a_bare_path_is_sqlite)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_one");
    store_close(s);
    s = open_migrated(path_);
    store_app_t a;
    cr_expect_eq(store_app_find(s, "pk_live_one", &a, NULL), STORE_OK);
    store_close(s);
}

Test(sqlite, impossible_paths_fail_with_a_message)
{
    static const char *const urls[] = {
        "sqlite:/dev/null/x.db",
        "sqlite:/nonexistent-crmd-dir-4f1a/sub/x.db",
        "/dev/null/y.db",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char err[STORE_OPEN_ERR_MAX] = "";
        store_t *s = store_open(urls[i], err, sizeof err);
        cr_expect_null(s, "%s opened", urls[i]);
        store_close(s);
        cr_expect_neq(err[0], '\0', "%s: no message", urls[i]);
        const char *file = strchr(urls[i], '/');
        cr_expect(strstr(err, file) != NULL, "%s: message does not name the file: %s", urls[i], err);
    }
}

/* --- query plans of the find reads ---------------------------------------------
 * Every single filter and every sort starts from an index (docs/architecture.md
 * shows these plans): no plan scans leads or follows whole, and each uses
 * the index that serves its filter or sort. The planner's statistics are
 * fixed by migration 4, so the plans do not depend on the data. */

#include "store/find.h"

/* The plan of q's statement on s, one line per step. */
static void plan_of(store_t *s, const fq_t *q, char *out, size_t cap)
{
    char sql[FQ_SQL_MAX + 32];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", q->sql.s);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db, sql, -1, &st, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(((sqlite_store_t *)s)->db));
    for (int i = 0; i < q->np; i++) {
        if (q->p[i].type == FQ_INT8)
            sqlite3_bind_int64(st, i + 1, q->p[i].i);
        else
            sqlite3_bind_text(st, i + 1, q->p[i].t.ptr, (int)q->p[i].t.len, SQLITE_STATIC);
    }
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s\n", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

static store_lead_query_t plan_query(void)
{
    store_lead_query_t q = {.limit = 16, .now = 1000};
    store_lead_filter_init(&q.f);
    return q;
}

/* The plan of a lead find under plan must use index (and never scan a
 * table whole). */
static void expect_plan_of(store_t *s, const store_lead_query_t *lq, enum fq_plan plan, const char *index,
                           const char *what)
{
    static fq_t q;
    fq_init(&q, false);
    q.search = plan == FQ_PLAN_SORT ? FQ_SEARCH_SCAN : FQ_SEARCH_INDEX;
    q.plan = plan;
    cr_assert(fq_lead_find(&q, 1, lq), "%s", what);
    char steps[8192];
    plan_of(s, &q, steps, sizeof steps);
    cr_expect(strstr(steps, index) != NULL, "%s: %s is not used:\n%s", what, index, steps);
    cr_expect(strstr(steps, "SCAN l\n") == NULL && strstr(steps, "SCAN l ") == NULL,
              "%s: a scan of leads:\n%s", what, steps);
}

/* A filter's plan: its own index when what it keeps is small (and
 * sorted then), the sort's index (here the default, leads_newest) when
 * it is large, unless the filter keeps one value of an indexed column:
 * its index then lists them in the default order (sort_index). */
static void expect_lead_plan_sorted(store_t *s, const store_lead_query_t *lq, const char *index,
                                    const char *sort_index, const char *what)
{
    if (!fq_lead_filters_beyond_sort(lq)) {
        expect_plan_of(s, lq, FQ_PLAN_ANY, index, what); /* nothing to choose */
        return;
    }
    expect_plan_of(s, lq, FQ_PLAN_FILTER, index, what);
    if (lq->nsort == 0) expect_plan_of(s, lq, FQ_PLAN_SORT, sort_index, what);
}

static void expect_lead_plan(store_t *s, const store_lead_query_t *lq, const char *index, const char *what)
{
    expect_lead_plan_sorted(s, lq, index, "leads_newest", what);
}

/* A filter of one value, which its index serves in the default order. */
static void expect_one_value_plan(store_t *s, const store_lead_query_t *lq, const char *index,
                                  const char *what)
{
    expect_lead_plan_sorted(s, lq, index, index, what);
}

Test(sqlite, every_filter_and_sort_starts_from_its_index)
{
    store_t *s = open_migrated(url_);
    store_lead_query_t q = plan_query();
    expect_lead_plan(s, &q, "leads_newest", "the default order");
    q.f.stages = 1u << STAGE_QUALIFIED;
    expect_one_value_plan(s, &q, "leads_stage", "stage");
    q.f.stages |= 1u << STAGE_NEW;
    expect_lead_plan(s, &q, "leads_stage", "two stages");
    q = plan_query();
    q.f.statuses = 1u << LEAD_LOST;
    expect_one_value_plan(s, &q, "leads_status", "status");
    q = plan_query();
    q.f.nsources = 1;
    q.f.sources[0] = (text_ref_t){"web", 3};
    expect_one_value_plan(s, &q, "leads_source", "source");
    q = plan_query();
    q.f.naccounts = 1;
    strcpy(q.f.accounts[0], "0190f3a2-0000-7000-8000-000000000001");
    expect_one_value_plan(s, &q, "leads_account", "account_id");
    q.f.account_unset = true;
    expect_lead_plan(s, &q, "leads_account", "account_id or null");
    q = plan_query();
    q.f.ncontacts = 1;
    strcpy(q.f.contacts[0], "0190f3a2-0000-7000-8000-000000000001");
    expect_one_value_plan(s, &q, "leads_contact", "contact_id");
    q = plan_query();
    q.f.has_value_min = true;
    q.f.value_min = 100;
    expect_lead_plan(s, &q, "leads_value", "value_min");
    q = plan_query();
    q.f.probability_max = 30;
    expect_lead_plan(s, &q, "leads_probability", "probability_max");
    q = plan_query();
    q.f.has_created_from = true;
    expect_lead_plan(s, &q, "leads_newest", "created_from");
    q = plan_query();
    q.f.has_updated_to = true;
    expect_lead_plan(s, &q, "leads_updated", "updated_to");
    q = plan_query();
    q.f.search = (text_ref_t){"acme", 4};
    expect_lead_plan(s, &q, "lead_fts", "search");
    q = plan_query();
    q.f.has_overdue = 1;
    expect_lead_plan(s, &q, "follows_app_state", "has_overdue");
    static const struct {
        int key;
        bool desc;
        const char *index;
    } sorts[] = {{LEAD_KEY_CREATED, false, "leads_newest"},
                 {LEAD_KEY_UPDATED, false, "leads_updated"},
                 {LEAD_KEY_UPDATED, true, "leads_updated"},
                 {LEAD_KEY_NAME, false, "leads_name"},
                 {LEAD_KEY_NAME, true, "leads_name"},
                 {LEAD_KEY_VALUE, false, "leads_value"},
                 {LEAD_KEY_VALUE, true, "leads_value"},
                 {LEAD_KEY_PROBABILITY, false, "leads_probability"},
                 {LEAD_KEY_PROBABILITY, true, "leads_probability"},
                 {LEAD_KEY_STAGE, false, "leads_stage "},
                 {LEAD_KEY_STAGE, true, "leads_stage"}};
    for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
        q = plan_query();
        q.nsort = 1;
        q.sort[0] = (store_sort_t){sorts[i].key, sorts[i].desc};
        expect_lead_plan(s, &q, sorts[i].index, sorts[i].index);
    }
    /* The benchmark's page: a stage, by value descending. */
    q = plan_query();
    q.f.stages = 1u << STAGE_QUALIFIED;
    q.nsort = 1;
    q.sort[0] = (store_sort_t){LEAD_KEY_VALUE, true};
    expect_plan_of(s, &q, FQ_PLAN_SORT, "leads_value", "stage by value, many");
    expect_plan_of(s, &q, FQ_PLAN_FILTER, "leads_stage", "stage by value, few");
    store_close(s);
}

/* A sort and the index its page must name in its plan. */
typedef struct sort_index {
    int key;
    bool desc;
    const char *index;
} sort_index_t;

/* plan_query() sorted by si's key alone. */
static store_lead_query_t sorted_query(const sort_index_t *si)
{
    store_lead_query_t q = plan_query();
    q.nsort = 1;
    q.sort[0] = (store_sort_t){si->key, si->desc};
    return q;
}

/* The plan of lq's find under FQ_PLAN_SORT, into steps. */
static void sort_plan(store_t *s, const store_lead_query_t *lq, char *steps, size_t cap)
{
    static fq_t fq;
    fq_init(&fq, false);
    fq.search = FQ_SEARCH_SCAN;
    fq.plan = FQ_PLAN_SORT;
    cr_assert(fq_lead_find(&fq, 1, lq));
    plan_of(s, &fq, steps, cap);
}

/* lq's find under plan walks index (keys alone), then reads the page's
 * records by their primary key. */
static void expect_keys_then_records(store_t *s, const store_lead_query_t *lq, enum fq_plan plan,
                                     const char *index)
{
    expect_plan_of(s, lq, plan, index, index);
    expect_plan_of(s, lq, plan, "SEARCH l USING PRIMARY KEY (app_id=? AND id=?)", index);
}

/* Under FQ_PLAN_SORT, a page of some stages or statuses sorted by
 * updated_at, value or probability tests them in the sort's index, which
 * carries them (schema version 14): the walk reads keys alone (a covering
 * index) and only the page's records by their primary key. Other filters,
 * or another sort, still read each lead they pass from the table. */
Test(sqlite, a_stage_or_status_page_is_tested_in_its_sorts_index)
{
    store_t *s = open_migrated(url_);
    static const sort_index_t sorts[] = {{LEAD_KEY_VALUE, true, "COVERING INDEX leads_value"},
                                         {LEAD_KEY_VALUE, false, "COVERING INDEX leads_value"},
                                         {LEAD_KEY_PROBABILITY, true, "COVERING INDEX leads_probability"},
                                         {LEAD_KEY_UPDATED, false, "COVERING INDEX leads_updated"}};
    for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
        for (int count = 0; count < 2; count++) {
            store_lead_query_t q = sorted_query(&sorts[i]);
            q.f.stages = 1u << STAGE_QUALIFIED | 1u << STAGE_PROPOSAL;
            q.f.statuses = count ? 1u << LEAD_ACTIVE : 0;
            q.count = count;
            expect_keys_then_records(s, &q, FQ_PLAN_SORT, sorts[i].index);
        }
    }
    store_lead_query_t q = sorted_query(&sorts[0]);
    q.f.stages = 1u << STAGE_QUALIFIED;
    q.f.nsources = 1;
    q.f.sources[0] = (text_ref_t){"web", 3};
    char steps[8192];
    sort_plan(s, &q, steps, sizeof steps);
    cr_expect(strstr(steps, "USING INDEX leads_value") != NULL && strstr(steps, "COVERING") == NULL,
              "a source is not in the index: each lead is read\n%s", steps);
    q.f.nsources = 0;
    q.sort[0] = (store_sort_t){LEAD_KEY_NAME, false};
    sort_plan(s, &q, steps, sizeof steps);
    cr_expect(strstr(steps, "USING INDEX leads_name") != NULL && strstr(steps, "COVERING") == NULL,
              "the name's index carries no stage\n%s", steps);
    store_close(s);
}

/* A page at an offset skips its rows in the sort's index alone (a
 * covering index: keys, no table lookups), then reads the page's records
 * by their primary key. */
Test(sqlite, an_offset_page_skips_rows_in_the_index_only)
{
    store_t *s = open_migrated(url_);
    static const sort_index_t sorts[] = {{LEAD_KEY_CREATED, true, "COVERING INDEX leads_newest"},
                                         {LEAD_KEY_UPDATED, false, "COVERING INDEX leads_updated"},
                                         {LEAD_KEY_NAME, true, "COVERING INDEX leads_name"},
                                         {LEAD_KEY_VALUE, false, "COVERING INDEX leads_value"},
                                         {LEAD_KEY_PROBABILITY, true, "COVERING INDEX leads_probability"},
                                         {LEAD_KEY_PROBABILITY, false, "COVERING INDEX leads_probability"},
                                         {LEAD_KEY_STAGE, true, "COVERING INDEX leads_stage"}};
    for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
        for (int count = 0; count < 2; count++) {
            store_lead_query_t q = sorted_query(&sorts[i]);
            q.offset = 45000;
            q.count = count;
            expect_keys_then_records(s, &q, FQ_PLAN_ANY, sorts[i].index);
        }
    }
    /* Many leads of one stage, newest first: their index, keys alone. */
    store_lead_query_t q = plan_query();
    q.f.stages = 1u << STAGE_QUALIFIED;
    q.offset = 15000;
    expect_plan_of(s, &q, FQ_PLAN_SORT, "COVERING INDEX leads_stage (app_id=? AND stage=?)", "one stage");
    /* The app's follows by due date: the same, by the follows' key. */
    static fq_t f;
    fq_init(&f, false);
    store_follow_query_t fq = {.lead = "", .limit = 15, .offset = 4500, .now = 1000};
    cr_assert(fq_follow_find(&f, 1, &fq));
    char steps[8192];
    plan_of(s, &f, steps, sizeof steps);
    cr_expect(strstr(steps, "SEARCH f USING COVERING INDEX follows_app_due") != NULL, "%s", steps);
    cr_expect(strstr(steps, "SEARCH f USING PRIMARY KEY (app_id=? AND lead_id=? AND id=?)") != NULL, "%s",
              steps);
    store_close(s);
}

/* The key columns of index on s: their names, comma-separated, or with
 * dirs their directions, a letter each (a, d). */
static void index_keys(store_t *s, const char *index, bool dirs, char *out, size_t cap)
{
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA index_xinfo(%s)", index);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db, sql, -1, &st, NULL), SQLITE_OK);
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && n < cap) {
        if (!sqlite3_column_int(st, 5)) continue; /* not a key column */
        if (dirs)
            n += (size_t)snprintf(out + n, cap - n, "%c", sqlite3_column_int(st, 3) ? 'd' : 'a');
        else
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? "," : "",
                                  (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
}

/* Migration 9: the source, account and contact indexes no longer carry
 * the summed columns (a PUT of a stage or a value then leaves them alone),
 * their planner's figures match their columns, and a summary still reads
 * the kept totals by source and an account's leads through its index. */
Test(sqlite, the_filter_indexes_carry_no_summed_columns)
{
    store_t *s = open_migrated(url_);
    static const char *const names[] = {"leads_source", "leads_account", "leads_contact"};
    static const char *const firsts[] = {"source", "account_id", "contact_id"};
    for (int i = 0; i < 3; i++) {
        char cols[256], want[96];
        index_keys(s, names[i], false, cols, sizeof cols);
        snprintf(want, sizeof want, "app_id,%s,created_at,id", firsts[i]);
        cr_expect_str_eq(cols, want, "%s", names[i]);
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db,
                                        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'leads' AND idx = ?1", -1,
                                        &st, NULL),
                     SQLITE_OK);
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s has figures", names[i]);
        const char *stat = (const char *)sqlite3_column_text(st, 0);
        int words = 1;
        for (const char *p = stat; *p != '\0'; p++)
            words += *p == ' ';
        cr_expect_eq(words, 5, "%s: one figure for the rows and one per column: %s", names[i], stat);
        sqlite3_finalize(st);
    }
    store_lead_filter_t f;
    store_lead_filter_init(&f);
    f.nsources = 1;
    f.sources[0] = (text_ref_t){"web", 3};
    static fq_t q;
    fq_init(&q, false);
    cr_assert(fq_lead_summary(&q, 1, &f, 1000));
    char steps[8192];
    plan_of(s, &q, steps, sizeof steps);
    cr_expect(strstr(steps, "lead_totals") != NULL && strstr(steps, "leads_source") == NULL,
              "a summary by source reads the totals:\n%s", steps);
    store_lead_filter_init(&f);
    f.naccounts = 1;
    strcpy(f.accounts[0], "0190f3a2-0000-7000-8000-000000000001");
    fq_init(&q, false);
    cr_assert(fq_lead_summary(&q, 1, &f, 1000));
    plan_of(s, &q, steps, sizeof steps);
    cr_expect(strstr(steps, "USING INDEX leads_account") != NULL && strstr(steps, "SCAN l") == NULL,
              "a summary of an account reads its leads by its index:\n%s", steps);
    store_close(s);
}

/* A loop that only keeps the timer a held snapshot asks for: the test ends
 * the loop's turn by calling it. */
static store_timer_fn turn_end_fn;
static void *turn_end_arg;
static int timers_started;

static store_timer_t *keep_timer(void *ctx, uint32_t ms, store_timer_fn fn, void *arg)
{
    static char timer;
    (void)ctx;
    cr_expect_eq(ms, 0u, "the snapshot ends with the loop's turn");
    turn_end_fn = fn;
    turn_end_arg = arg;
    timers_started++;
    return (store_timer_t *)&timer;
}

static void drop_timer(store_timer_t *t)
{
    (void)t;
    turn_end_fn = NULL;
}

static void end_turn(void)
{
    cr_assert_not_null(turn_end_fn);
    store_timer_fn fn = turn_end_fn;
    turn_end_fn = NULL;
    fn(turn_end_arg);
}

static char seen_name[64];

static void keep_name(void *ctx, const lead_t *l)
{
    (void)ctx;
    snprintf(seen_name, sizeof seen_name, "%.*s", (int)l->name.len, l->name.ptr);
}

static lead_t new_lead(const char *id, const char *name)
{
    lead_t l = {0};
    snprintf(l.id, sizeof l.id, "%s", id);
    l.name = (text_ref_t){name, strlen(name)};
    l.stage = STAGE_NEW;
    l.status = LEAD_ACTIVE;
    l.probability = -1;
    l.created_at = l.updated_at = 1000;
    return l;
}

static bool held(store_t *s)
{
    return ((sqlite_store_t *)s)->held;
}

/* Batches of leads through s, every fourth rolled back, each checked by
 * counting the leads through other; k numbers the leads, want counts them. */
static void commit_rounds(store_t *s, sqlite3 *other, int64_t app, int *k, int64_t *want)
{
    for (int round = 0; round < 24; round++) {
        /* Every third batch is 400 leads: hundreds of frames. */
        int n = round % 3 == 0 ? 400 : round;
        bool commit = round % 4 != 3;
        cr_assert_eq(store_batch_begin(s), STORE_OK);
        for (int i = 0; i < n; i++) {
            char id[UUID_BUFSZ], name[96];
            snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", ++*k);
            snprintf(name, sizeof name, "Lead %d of round %d, named at some length to fill pages", *k, round);
            lead_t l = new_lead(id, name);
            l.value_cents = (int64_t)*k * 7919 % 100000;
            cr_assert_eq(store_lead_create(s, app, &l), STORE_OK);
        }
        cr_assert_eq(store_batch_end(s, commit), STORE_OK);
        if (commit) *want += n;
        cr_expect_eq(check_int(other, "SELECT count(*) FROM leads"), *want, "round %d (%d leads, %s)", round,
                     n, commit ? "committed" : "rolled back");
    }
}

/* crmd's VFS (vfs.c) holds a WAL's frames until the commit's sync: every
 * commit, of a few frames or of more than its buffer holds, is whole for a
 * connection that reads the files through the default VFS, and a batch
 * rolled back leaves nothing there. With synchronous=NORMAL (which crmd
 * does not use) a commit ends without a sync, and the frames go out as
 * SQLite publishes it or lets go of the write lock: other connections see
 * it whole, as long as no write fails (vfs.c's preconditions). */
Test(sqlite, commits_through_crmds_vfs_are_whole_for_other_connections)
{
    store_t *s = open_migrated(url_);
    sqlite3 *db = ((sqlite_store_t *)s)->db;
    sqlite3_vfs *vfs = NULL;
    cr_assert_eq(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs), SQLITE_OK);
    cr_expect_str_eq(vfs->zName, SQ_VFS_NAME);
    create_app(s, "pk_live_one");
    store_app_t app;
    cr_assert_eq(store_app_find(s, "pk_live_one", &app, NULL), STORE_OK);
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int64_t want = 0;
    int k = 0;
    commit_rounds(s, other, app.id, &k, &want);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL), SQLITE_OK);
    commit_rounds(s, other, app.id, &k, &want);
    check_intact(other);
    sqlite3_close(other);
    store_close(s);
}

/* The frames a cache spill wrote in a transaction that then rolled back
 * reach the WAL while the connection still holds its write lock (vfs.c:
 * before a read, and before the lock's release): held on, they would be
 * written later, over what another connection committed there meanwhile. */
Test(sqlite, a_rolled_back_spill_never_lands_on_another_connections_commit)
{
    store_t *a = open_migrated(url_), *b = open_migrated(url_);
    create_app(a, "pk_live_one");
    store_app_t app;
    cr_assert_eq(store_app_find(a, "pk_live_one", &app, NULL), STORE_OK);
    /* A cache of 16 pages spills as soon as staged leads move into leads,
     * which they do when SQ_STAGE_ROWS wait. */
    cr_assert_eq(sqlite3_exec(((sqlite_store_t *)a)->db, "PRAGMA cache_size = 16", NULL, NULL, NULL),
                 SQLITE_OK);
    int k = 0;
    for (int round = 0; round < 4; round++) {
        cr_assert_eq(store_batch_begin(a), STORE_OK);
        for (int i = 0; i < SQ_STAGE_ROWS + 100; i++) {
            char id[UUID_BUFSZ], name[96];
            snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", ++k);
            snprintf(name, sizeof name, "Spilled lead %d, named at some length to fill pages", k);
            lead_t l = new_lead(id, name);
            cr_assert_eq(store_lead_create(a, app.id, &l), STORE_OK);
        }
        cr_assert_eq(store_batch_end(a, 0), STORE_OK); /* rolled back */
        char id[UUID_BUFSZ];
        snprintf(id, sizeof id, "0190b000-0000-7000-8000-%012d", round);
        lead_t l = new_lead(id, "Committed by the other connection");
        cr_assert_eq(store_lead_create(b, app.id, &l), STORE_OK);
        seen_name[0] = '\0';
        cr_expect_eq(store_lead_get(a, app.id, id, keep_name, NULL, NULL), STORE_OK, "round %d", round);
        cr_expect_str_eq(seen_name, "Committed by the other connection", "round %d", round);
    }
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open_v2(path_, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_expect_eq(check_int(other, "SELECT count(*) FROM leads"), 4);
    check_intact(other);
    sqlite3_close(other);
    store_close(b);
    store_close(a);
}

/* A server thread's reads of one lead share a read transaction until its
 * loop's turn ends; a commit made through any connection of the process
 * ends it before the next read, and anything but such a read ends it
 * first. */
Test(sqlite, a_held_snapshot_never_hides_a_commit_of_this_process)
{
    static const char ID1[] = "0190a000-0000-7000-8000-000000000001";
    static const char ID2[] = "0190a000-0000-7000-8000-000000000002";
    store_t *server = open_migrated(url_), *writer = open_migrated(url_);
    create_app(writer, "pk_live_one");
    store_app_t app;
    cr_assert_eq(store_app_find(writer, "pk_live_one", &app, NULL), STORE_OK);
    store_loop_t loop = {.timer_start = keep_timer, .timer_stop = drop_timer};
    store_set_loop(server, &loop);

    cr_expect_eq(store_lead_get(server, app.id, ID1, keep_name, NULL, NULL), STORE_NOT_FOUND);
    cr_expect(held(server), "the read keeps its snapshot");
    lead_t l = new_lead(ID1, "First");
    cr_assert_eq(store_lead_create(writer, app.id, &l), STORE_OK);
    cr_expect_eq(store_lead_get(server, app.id, ID1, keep_name, NULL, NULL), STORE_OK,
                 "a commit of this process is seen at once");
    cr_expect_str_eq(seen_name, "First");

    /* Another process's write (a connection of its own, uncounted) shows
     * once the turn is over. */
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open(path_, &other), SQLITE_OK);
    sqlite3_busy_timeout(other, 5000);
    cr_assert_eq(sqlite3_exec(other, "UPDATE leads SET name = 'Renamed'", NULL, NULL, NULL), SQLITE_OK);
    cr_expect_eq(store_lead_get(server, app.id, ID1, keep_name, NULL, NULL), STORE_OK);
    cr_expect_str_eq(seen_name, "First", "the turn's snapshot");
    end_turn();
    cr_expect(!held(server));
    cr_expect_eq(store_lead_get(server, app.id, ID1, keep_name, NULL, NULL), STORE_OK);
    cr_expect_str_eq(seen_name, "Renamed");
    sqlite3_close(other);

    /* A write through the same connection ends the snapshot first. */
    lead_t l2 = new_lead(ID2, "Second");
    cr_expect_eq(store_lead_create(server, app.id, &l2), STORE_OK);
    cr_expect(!held(server));
    cr_expect_eq(store_lead_get(writer, app.id, ID2, keep_name, NULL, NULL), STORE_OK);
    cr_expect_eq(timers_started, 2);
    store_close(server);
    cr_expect_null(turn_end_fn, "closing stops the turn's timer");
    store_close(writer);
}

/* Runs sql on the store's own connection: SQLite's primary result code. */
static int exec_sql(store_t *s, const char *sql)
{
    return sqlite3_exec(((sqlite_store_t *)s)->db, sql, NULL, NULL, NULL) & 0xff;
}

/* The one integer sql answers on s. */
static int64_t int_of(store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Inserts lead n of app 1, created at c: SQLite's result code. */
static int insert_lead(store_t *s, int n, int64_t c)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO leads (app_id, id, name, stage, status, created_at, updated_at, name_fold) "
             "VALUES (1, '0190a000-0000-7000-8000-%012d', 'Lead %d', 0, 0, %lld, %lld, 'lead %d')",
             n, n, (long long)c, (long long)c, n);
    return exec_sql(s, sql);
}

static int64_t key_of(store_t *s, int n)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT rowid FROM lead_text WHERE app_id = 1 AND lead_id = '0190a000-0000-7000-8000-%012d'", n);
    return int_of(s, sql);
}

/* Migration 10: a lead's search key is its created_at's range, newest
 * first, then the next free slot of the range; a lead back from the trash
 * takes a slot in its range again; a created_at the keys cannot hold, or
 * a full range, refuses the write and changes nothing. */
Test(sqlite, search_keys_are_in_the_lists_order)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_keys");
    cr_assert_eq(insert_lead(s, 1, 10), SQLITE_OK);
    cr_assert_eq(insert_lead(s, 2, 10), SQLITE_OK);
    cr_assert_eq(insert_lead(s, 3, 20), SQLITE_OK);
    cr_expect_eq(key_of(s, 1), 10 * (int64_t)FQ_KEY_SLOTS);
    cr_expect_eq(key_of(s, 2), 10 * (int64_t)FQ_KEY_SLOTS + 1);
    cr_expect_eq(key_of(s, 3), 20 * (int64_t)FQ_KEY_SLOTS, "a newer lead has a larger key");
    cr_assert_eq(exec_sql(s, "DELETE FROM leads WHERE id = '0190a000-0000-7000-8000-000000000001'"),
                 SQLITE_OK);
    cr_assert_eq(insert_lead(s, 1, 10), SQLITE_OK);
    cr_expect_eq(key_of(s, 1), 10 * (int64_t)FQ_KEY_SLOTS + 2, "back in its range, after the others");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM lead_fts WHERE lead_fts MATCH '\"lead 1\"'"), 1);
    cr_assert_eq(insert_lead(s, 4, FQ_CREATED_MAX), SQLITE_OK);
    cr_expect_eq(key_of(s, 4), INT64_MAX - FQ_KEY_SLOT_MAX,
                 "the newest possible created_at has the last range");
    cr_assert_eq(insert_lead(s, 5, FQ_CREATED_MIN), SQLITE_OK);
    cr_expect_eq(key_of(s, 5), INT64_MIN, "the oldest the first key");
    cr_expect_eq(insert_lead(s, 6, FQ_CREATED_MAX + 1), SQLITE_CONSTRAINT);
    cr_expect_eq(insert_lead(s, 7, FQ_CREATED_MIN - 1), SQLITE_CONSTRAINT);
    char full[160];
    snprintf(full, sizeof full, "INSERT INTO lead_text (rowid, app_id, lead_id) VALUES (%lld, 2, 'x')",
             (long long)(30 * (int64_t)FQ_KEY_SLOTS + FQ_KEY_SLOT_MAX));
    cr_assert_eq(exec_sql(s, full), SQLITE_OK);
    cr_expect_eq(insert_lead(s, 8, 30), SQLITE_CONSTRAINT, "the range of 30 is full");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM leads"), 5, "no refused lead went in");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM lead_text"), 6);
    store_close(s);
}

/* The search index's segments (each has a row in lead_fts_idx per leaf
 * page, the first at least). */
static int64_t segments_of(store_t *s)
{
    return int_of(s, "SELECT count(DISTINCT segid) FROM lead_fts_idx");
}

/* The keys of the leads whose name holds "lead 1", newest first. */
static void matches_of(store_t *s, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(((sqlite_store_t *)s)->db,
                                    "SELECT group_concat(rowid) FROM (SELECT rowid FROM lead_fts "
                                    "WHERE lead_fts MATCH '\"lead 1\"' ORDER BY rowid DESC)",
                                    -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
    sqlite3_finalize(st);
}

/* Inserts leads first..last of app 1 in one transaction. */
static void insert_leads(store_t *s, int first, int last)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO leads (app_id, id, name, stage, status, created_at, updated_at, name_fold) "
             "SELECT 1, printf('0190a000-0000-7000-8000-%%012d', i), 'Lead ' || i, 0, 0, 1000 + i, 1000 + i, "
             "'lead ' || i FROM n",
             first, last);
    cr_assert_eq(exec_sql(s, sql), SQLITE_OK);
}

/* How many of the search index's segments are large (tidy.c's test). */
static int64_t large_segments(store_t *s)
{
    return int_of(s,
                  "WITH seg (pages) AS (SELECT max(pgno) FROM lead_fts_idx GROUP BY segid) "
                  "SELECT count(*) FROM seg WHERE pages >= 64 AND pages * 8 >= (SELECT max(pages) FROM seg)");
}

/* Small segments (a commit's leads each) are left to FTS5's automerge: a
 * tidy step finds nothing to do. Large ones (bulk inserts) are merged a
 * step at a time until no level holds two (FTS5's usermerge, kept in the
 * index's settings), and the step says when nothing is left. Searches find
 * the same leads in the same order. */
Test(sqlite, the_search_index_is_merged_a_step_at_a_time)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_tidy");
    for (int n = 1; n <= 100; n++)
        cr_assert_eq(insert_lead(s, n, 1000 + n), SQLITE_OK); /* a commit, a segment each */
    int64_t small = segments_of(s);
    cr_expect_geq(small, 6, "%lld segments after 100 commits", (long long)small);
    bool more = true;
    cr_assert_eq(store_search_tidy(s, 16, &more), STORE_OK);
    cr_expect(!more, "small segments start no merge");
    cr_expect_eq(segments_of(s), small);

    for (int k = 0; k < 4; k++) /* two segments each, merged by FTS5 in fours */
        insert_leads(s, 1001 + k * 20000, 20000 + k * 20000);
    int64_t before = segments_of(s), large = large_segments(s);
    cr_expect_geq(large, 2, "%lld large segments of %lld", (long long)large, (long long)before);
    char want[4096], got[4096];
    matches_of(s, want, sizeof want);
    int steps = 0;
    do {
        cr_assert_eq(store_search_tidy(s, 1, &more), STORE_OK);
        steps++;
    } while (more && steps < 100000);
    cr_expect(!more, "done after %d steps", steps);
    cr_expect_gt(steps, 10, "a step of a page merges a little at a time");
    cr_expect_lt(large_segments(s), 2);
    cr_expect_lt(segments_of(s), before);
    cr_expect_eq(int_of(s, "SELECT v FROM lead_fts_config WHERE k = 'usermerge'"), 2);
    matches_of(s, got, sizeof got);
    cr_expect_str_eq(got, want);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM lead_fts WHERE lead_fts MATCH '\"lead 1\"'"), 11011);
    cr_assert_eq(store_search_tidy(s, 16, &more), STORE_OK);
    cr_expect(!more, "nothing left to merge");
    store_close(s);
}

/* The plan of a search walk (search.c): by app (its index token), or of
 * every app's matches, in a span of keys. */
static void walk_plan(store_t *s, const store_lead_query_t *lq, bool by_app, char *steps, size_t cap)
{
    static fq_t q;
    fq_init(&q, false);
    int64_t span[2] = {-5, by_app ? 1000 : INT64_MAX};
    cr_assert(fq_lead_search_walk(&q, 1, lq, span, by_app));
    plan_of(s, &q, steps, cap);
}

/* A search in the list's order walks the trigram index by key, in order
 * (no sort), each match's lead_text row and (with other filters) lead
 * row read by its key; its count reads the matches' leads by key. */
Test(sqlite, a_search_walks_the_index_in_the_lists_order)
{
    store_t *s = open_migrated(url_);
    store_lead_query_t q = plan_query();
    q.f.search = (text_ref_t){"acme", 4};
    cr_assert(fq_lead_walks_search(&q));
    char steps[8192];
    for (int by_app = 0; by_app < 2; by_app++) {
        walk_plan(s, &q, by_app, steps, sizeof steps);
        /* FTS5 takes both ends of the span (> and <): it reads its
         * doclists from the span's first key and stops after its last. */
        cr_expect(strstr(steps, "SCAN f VIRTUAL TABLE INDEX 192:M3><\n") != NULL, "%s", steps);
        cr_expect(strstr(steps, "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)") != NULL, "%s", steps);
        cr_expect(strstr(steps, "TEMP B-TREE") == NULL, "no sort:\n%s", steps);
    }
    q.f.stages = 1u << STAGE_QUALIFIED;
    q.nsort = 1;
    q.sort[0] = (store_sort_t){LEAD_KEY_CREATED, false};
    store_pos_t pos = {.n = 2, .v = {{.i = 1000}, {.t = {"0190a000-0000-7000-8000-000000000001", 36}}}};
    q.after = &pos;
    walk_plan(s, &q, true, steps, sizeof steps);
    cr_expect(strstr(steps, "SCAN f VIRTUAL TABLE INDEX") != NULL, "%s", steps);
    cr_expect(strstr(steps, "SEARCH l USING PRIMARY KEY (app_id=? AND id=?)") != NULL, "%s", steps);
    cr_expect(strstr(steps, "TEMP B-TREE") == NULL, "no sort:\n%s", steps);
    static fq_t c;
    fq_init(&c, false);
    c.search = FQ_SEARCH_INDEX;
    cr_assert(fq_lead_probe(&c, 1, &q.f, 1000, INT32_MAX));
    plan_of(s, &c, steps, sizeof steps);
    cr_expect(strstr(steps, "SEARCH l USING PRIMARY KEY (app_id=? AND id=?)") != NULL, "%s", steps);
    cr_expect(strstr(steps, "SCAN l\n") == NULL && strstr(steps, "SCAN l ") == NULL, "%s", steps);
    /* Other orders, a short term, and a position no key can hold do not walk. */
    q.sort[0] = (store_sort_t){LEAD_KEY_NAME, false};
    cr_expect(!fq_lead_walks_search(&q));
    q.sort[0] = (store_sort_t){LEAD_KEY_CREATED, true};
    cr_expect(fq_lead_walks_search(&q));
    pos.v[0].i = FQ_CREATED_MAX + 1;
    cr_expect(!fq_lead_walks_search(&q));
    q.after = NULL;
    q.f.search = (text_ref_t){"ac", 2};
    cr_expect(!fq_lead_walks_search(&q));
    store_close(s);
}

/* What version 11 had: the lead indexes as migrations 6 and 9 made them,
 * descending after app_id. */
static const char v11_lead_indexes[] =
    "DROP INDEX leads_newest; DROP INDEX leads_updated; DROP INDEX leads_name; DROP INDEX leads_value;"
    "DROP INDEX leads_probability; DROP INDEX leads_stage; DROP INDEX leads_status; DROP INDEX leads_source;"
    "DROP INDEX leads_account; DROP INDEX leads_contact;"
    "CREATE INDEX leads_newest ON leads (app_id, created_at DESC, id DESC);"
    "CREATE INDEX leads_updated ON leads (app_id, updated_at DESC, created_at DESC, id DESC);"
    "CREATE INDEX leads_name ON leads (app_id, name_fold, created_at DESC, id DESC);"
    "CREATE INDEX leads_value ON leads (app_id, value_cents DESC, created_at DESC, id DESC);"
    "CREATE INDEX leads_probability ON leads (app_id, probability DESC, created_at DESC, id DESC);"
    "CREATE INDEX leads_stage ON leads (app_id, stage, created_at DESC, id DESC);"
    "CREATE INDEX leads_status ON leads (app_id, status, created_at DESC, id DESC);"
    "CREATE INDEX leads_source ON leads (app_id, source, created_at DESC, id DESC);"
    "CREATE INDEX leads_account ON leads (app_id, account_id, created_at DESC, id DESC);"
    "CREATE INDEX leads_contact ON leads (app_id, contact_id, created_at DESC, id DESC);"
    "PRAGMA user_version = 11;";

/* Migration 12: from version 11, every lead stays, the ten lead indexes
 * are stored in the opposite direction after app_id (so a new lead goes
 * last among its equals), each with its planner's figures, and a list
 * still reads the newest lead first. */
/* What migration 17 (the history's chain) changed, as it was before:
 * every older version had it so; and migration 19 (the webhooks' count of
 * their queue rows) undone before it. */
#define BEFORE_HISTORY_CHAIN                                                                                 \
    "DROP TRIGGER webhook_events_queued; DROP TRIGGER webhook_events_taken;"                                 \
    "ALTER TABLE webhooks DROP COLUMN queued;"                                                               \
    "ALTER TABLE leads DROP COLUMN history_head; ALTER TABLE leads DROP COLUMN history_count;"               \
    "ALTER TABLE leads_trash DROP COLUMN history_head; ALTER TABLE leads_trash DROP COLUMN history_count;"   \
    "ALTER TABLE lead_history DROP COLUMN prev;"                                                             \
    "CREATE INDEX lead_history_lead ON lead_history (app_id, lead_id, seq DESC);"

/* A database as an older version had it: the app key made, old's SQL
 * run, leads leads inserted, then's SQL run (unless NULL); opened again,
 * migrated to the newest version with every lead kept. The caller closes
 * it. */
static store_t *migrated_from(const char *key, const char *old, int leads, const char *then)
{
    store_t *s = open_migrated(url_);
    create_app(s, key);
    cr_assert_eq(exec_sql(s, BEFORE_HISTORY_CHAIN), SQLITE_OK);
    cr_assert_eq(exec_sql(s, old), SQLITE_OK);
    for (int n = 1; n <= leads; n++)
        cr_assert_eq(insert_lead(s, n, 1700000000000LL + n), SQLITE_OK);
    if (then != NULL) cr_assert_eq(exec_sql(s, then), SQLITE_OK);
    store_close(s);
    s = open_migrated(url_);
    cr_expect_eq(int_of(s, "PRAGMA user_version"), SCHEMA_VERSION);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM leads WHERE app_id = 1"), leads);
    return s;
}

Test(sqlite, version_11s_lead_indexes_are_stored_ascending_and_every_lead_kept)
{
    store_t *s = migrated_from("pk_live_v11", v11_lead_indexes, 50, NULL);
    static const struct {
        const char *index, *dirs;
    } want[] = {{"leads_newest", "aaa"},   {"leads_updated", "aaaaaa"},     {"leads_name", "adaa"},
                {"leads_value", "aaaaaa"}, {"leads_probability", "aaaaaa"}, {"leads_stage", "adaa"},
                {"leads_status", "adaa"},  {"leads_source", "adaa"},        {"leads_account", "adaa"},
                {"leads_contact", "adaa"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char dirs[16], sql[128];
        index_keys(s, want[i].index, true, dirs, sizeof dirs);
        cr_expect_str_eq(dirs, want[i].dirs, "%s", want[i].index);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'leads' AND idx = '%s'",
                 want[i].index);
        cr_expect_eq(int_of(s, sql), 1, "%s has its figures", want[i].index);
    }
    cr_expect_eq(int_of(s, "SELECT CAST(substr(id, 25) AS INTEGER) FROM leads INDEXED BY leads_newest "
                           "WHERE app_id = 1 ORDER BY created_at DESC, id DESC LIMIT 1"),
                 50, "the newest first, read backwards");
    store_close(s);
}

/* What version 12 had: the idempotency keys keyed by (app_id, key) without
 * a rowid, with 40 answers of two apps (one made while its key was still
 * claimed: status 0). */
static const char v12_idem[] =
    "DROP TABLE idempotency_keys;"
    "CREATE TABLE idempotency_keys (app_id INTEGER NOT NULL REFERENCES apps(id), key TEXT NOT NULL,"
    "  hash TEXT NOT NULL, status INTEGER NOT NULL, location TEXT NOT NULL, body TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, PRIMARY KEY (app_id, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);"
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) "
    "INSERT INTO idempotency_keys SELECT 1 + i % 2, 'key-' || (41 - i), printf('%064d', i),"
    "  CASE WHEN i = 7 THEN 0 ELSE 201 END, '/leads/' || i, '{\"n\":' || i || '}', 1000 + i FROM n;"
    "PRAGMA user_version = 12;";

typedef struct idem_seen {
    int status;
    char hash[STORE_IDEM_HASH_HEX + 1], location[32], body[32];
    int64_t created_at;
} idem_seen_t;

static void on_idem(void *ctx, const store_idem_t *k)
{
    idem_seen_t *seen = ctx;
    seen->status = k->status;
    snprintf(seen->hash, sizeof seen->hash, "%s", k->hash);
    snprintf(seen->location, sizeof seen->location, "%s", k->location);
    snprintf(seen->body, sizeof seen->body, "%.*s", (int)k->body.len, k->body.ptr);
    seen->created_at = k->created_at;
}

/* Migration 13: from version 12, every kept answer stays, whole, in a
 * rowid table in the order made, found through the unique index on
 * (app_id, key); a claim, a replay, a second answer and the expiry work
 * on it. */
Test(sqlite, version_12s_idempotency_keys_move_to_a_rowid_table_and_every_answer_is_kept)
{
    store_t *s = open_migrated(url_);
    create_app(s, "pk_live_v12a");
    create_app(s, "pk_live_v12b");
    cr_assert_eq(exec_sql(s, BEFORE_HISTORY_CHAIN), SQLITE_OK);
    cr_assert_eq(exec_sql(s, v12_idem), SQLITE_OK);
    store_close(s);
    s = open_migrated(url_);
    cr_expect_eq(int_of(s, "PRAGMA user_version"), SCHEMA_VERSION);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM idempotency_keys"), 40);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM sqlite_schema WHERE name = 'idempotency_keys' "
                           "AND sql NOT LIKE '%WITHOUT ROWID%'"),
                 1, "a rowid table");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM pragma_index_list('idempotency_keys') "
                           "WHERE name = 'idempotency_keys_key' AND \"unique\""),
                 1);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM pragma_index_list('idempotency_keys') "
                           "WHERE name = 'idempotency_keys_age'"),
                 1);
    cr_expect_eq(
        int_of(s, "SELECT count(*) FROM (SELECT created_at - lag(created_at) OVER (ORDER BY rowid) AS d "
                  "FROM idempotency_keys) WHERE d <= 0"),
        0, "in the order made");
    idem_seen_t seen = {0};
    cr_assert_eq(store_idem_get(s, 2, "key-16", 0, on_idem, &seen, NULL), STORE_OK);
    cr_expect_eq(seen.status, 201);
    cr_expect_str_eq(seen.hash, "0000000000000000000000000000000000000000000000000000000000000025");
    cr_expect_str_eq(seen.location, "/leads/25");
    cr_expect_str_eq(seen.body, "{\"n\":25}");
    cr_expect_eq(seen.created_at, 1025);
    cr_assert_eq(store_idem_get(s, 2, "key-34", 0, on_idem, &seen, NULL), STORE_OK);
    cr_expect_eq(seen.status, 0, "a claimed key stays claimed");
    cr_expect_eq(store_idem_get(s, 1, "key-16", 0, on_idem, &seen, NULL), STORE_NOT_FOUND, "per app");

    const char *h = "9999999999999999999999999999999999999999999999999999999999999999";
    cr_expect_eq(store_idem_claim(s, 2, "key-16", h, 5000, 0, NULL), STORE_CONFLICT,
                 "a live answer holds it");
    cr_assert_eq(store_batch_begin(s), STORE_OK);
    cr_expect_eq(store_idem_claim(s, 2, "key-16", h, 5000, 0, NULL), STORE_CONFLICT);
    cr_assert_eq(store_idem_claim(s, 1, "key-16", h, 5000, 0, NULL), STORE_OK);
    cr_assert_eq(store_idem_finish(s, 1, "key-16", 201, "/leads/new", (text_ref_t){"{}", 2}), STORE_OK);
    cr_expect_eq(store_idem_claim(s, 1, "key-16", h, 5001, 0, NULL), STORE_CONFLICT);
    cr_assert_eq(store_batch_end(s, 1), STORE_OK);
    cr_assert_eq(store_idem_get(s, 1, "key-16", 0, on_idem, &seen, NULL), STORE_OK);
    cr_expect_str_eq(seen.location, "/leads/new");
    int purged = -1;
    cr_assert_eq(store_idem_expire(s, 1021, 100, &purged), STORE_OK);
    cr_expect_eq(purged, 20, "made at 1001 to 1020");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM idempotency_keys"), 21);
    store_close(s);
}

/* What version 13 had: the indexes of the updated_at, value and
 * probability sorts without the stage and status. */
static const char v13_sort_indexes[] =
    "DROP INDEX leads_updated; DROP INDEX leads_value; DROP INDEX leads_probability;"
    "CREATE INDEX leads_updated ON leads (app_id, updated_at, created_at, id);"
    "CREATE INDEX leads_value ON leads (app_id, value_cents, created_at, id);"
    "CREATE INDEX leads_probability ON leads (app_id, probability, created_at, id);"
    "PRAGMA user_version = 13;";

/* Migration 14: from version 13, every lead stays, the three sort indexes
 * end in the stage and status, each with one planner's figure per column,
 * and a page of a stage by value reads the same leads as before. */
Test(sqlite, version_13s_sort_indexes_gain_the_stage_and_status_and_every_lead_is_kept)
{
    store_t *s = migrated_from("pk_live_v13", v13_sort_indexes, 60,
                               "UPDATE leads SET stage = id % 5, value_cents = (substr(id, 25) * 37) % 11");
    static const char *const names[] = {"leads_updated", "leads_value", "leads_probability"};
    static const char *const firsts[] = {"updated_at", "value_cents", "probability"};
    for (int i = 0; i < 3; i++) {
        char cols[256], want[96], sql[128];
        index_keys(s, names[i], false, cols, sizeof cols);
        snprintf(want, sizeof want, "app_id,%s,created_at,id,stage,status", firsts[i]);
        cr_expect_str_eq(cols, want, "%s", names[i]);
        snprintf(sql, sizeof sql,
                 "SELECT length(stat) - length(replace(stat, ' ', '')) FROM sqlite_stat1 "
                 "WHERE tbl = 'leads' AND idx = '%s'",
                 names[i]);
        cr_expect_eq(int_of(s, sql), 6, "%s: a figure for the rows and one per column", names[i]);
    }
    cr_expect_eq(int_of(s, "SELECT count(*) FROM leads INDEXED BY leads_value WHERE app_id = 1 AND stage = 2 "
                           "AND value_cents >= 0"),
                 int_of(s, "SELECT count(*) FROM leads WHERE app_id = 1 AND stage = 2"));
    store_close(s);
}

/* What version 15 had: lead_history's seq under AUTOINCREMENT. Leads 1 to
 * 3 have four entries each, seq 1 to 12 in turn; the newest two (11 and
 * 12) were deleted, so AUTOINCREMENT's mark (12) is above the largest seq
 * left (10). */
static const char v15_history[] =
    "DROP TABLE lead_history;"
    "CREATE TABLE lead_history (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  app_id INTEGER NOT NULL REFERENCES apps(id), lead_id TEXT NOT NULL, id TEXT NOT NULL,"
    "  action INTEGER NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL, follow_id TEXT,"
    "  changes TEXT NOT NULL);"
    "CREATE INDEX lead_history_lead ON lead_history (app_id, lead_id, seq DESC);"
    "PRAGMA user_version = 15;";
static const char v15_history_rows[] =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12) "
    "INSERT INTO lead_history (app_id, lead_id, id, action, actor, at, changes) "
    "SELECT 1, printf('0190a000-0000-7000-8000-%012d', 1 + (i - 1) % 3),"
    "  printf('0190b000-0000-7000-8000-%012d', i), 2, 'tester', 1000 + i, '{\"n\":' || i || '}' FROM n;"
    "DELETE FROM lead_history WHERE seq > 10;";

typedef struct seqs_seen {
    int n;
    int64_t seq[8];
} seqs_seen_t;

static void on_seq(void *ctx, const store_change_t *c, int64_t seq)
{
    (void)c;
    seqs_seen_t *seen = ctx;
    cr_assert_lt(seen->n, 8);
    seen->seq[seen->n++] = seq;
}

/* Migration 16: from version 15, every entry keeps its seq, in a table
 * whose seq has no AUTOINCREMENT (so no row in sqlite_sequence); a new
 * entry is numbered after the largest left, and a lead's history still
 * lists newest first, page after page. */
Test(sqlite, version_15s_history_loses_autoincrement_and_every_entry_keeps_its_seq)
{
    store_t *s = migrated_from("pk_live_v15", v15_history, 3, v15_history_rows);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM sqlite_schema WHERE name = 'lead_history' "
                           "AND sql NOT LIKE '%AUTOINCREMENT%'"),
                 1);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM sqlite_sequence WHERE name = 'lead_history'"), 0);
    cr_expect_eq(int_of(s, "SELECT count(*) FROM pragma_index_list('lead_history') "
                           "WHERE name = 'lead_history_lead'"),
                 0, "migration 17's chain took its place");
    cr_expect_eq(int_of(s, "SELECT count(*) FROM lead_history"), 10);
    /* Migration 17 linked each lead's entries (lead 2's are seq 2, 5 and 8)
     * and gave its row the newest and the count. */
    cr_expect_eq(int_of(s, "SELECT sum(seq * 100 + ifnull(prev, 0)) FROM lead_history "
                           "WHERE lead_id = '0190a000-0000-7000-8000-000000000002'"),
                 200 + 502 + 805);
    cr_expect_eq(int_of(s, "SELECT sum(history_head * 100 + history_count) FROM leads"), 1004 + 803 + 903);
    cr_expect_eq(int_of(s,
                        "SELECT sum(seq * (1000 + seq = at) * (id = printf('0190b000-0000-7000-8000-%012d', "
                        "seq))) FROM lead_history"),
                 55, "seq 1 to 10, each with its own entry");
    store_change_t c = {.id = "0190b000-0000-7000-8000-000000000099",
                        .lead_id = "0190a000-0000-7000-8000-000000000002",
                        .follow_id = "",
                        .action = 2,
                        .actor = "tester",
                        .at = 2000,
                        .changes = {"{}", 2}};
    cr_assert_eq(store_history_add(s, 1, &c), STORE_OK);
    cr_expect_eq(int_of(s, "SELECT seq FROM lead_history WHERE at = 2000"), 11, "after the largest left");
    cr_expect_eq(int_of(s, "SELECT prev FROM lead_history WHERE seq = 11"), 8);
    cr_expect_eq(int_of(s, "SELECT history_head * 100 + history_count FROM leads "
                           "WHERE id = '0190a000-0000-7000-8000-000000000002'"),
                 1104);
    seqs_seen_t seen = {0};
    int64_t total = -1;
    store_history_query_t q = {.limit = 3};
    cr_assert_eq(store_history_list(s, 1, c.lead_id, &q, &total, on_seq, &seen, NULL), STORE_OK);
    cr_expect_eq(total, 4);
    cr_assert_eq(seen.n, 3);
    cr_expect_eq(seen.seq[0], 11);
    cr_expect_eq(seen.seq[1], 8);
    cr_expect_eq(seen.seq[2], 5);
    q = (store_history_query_t){.limit = 3, .after = true, .after_seq = 5};
    seen = (seqs_seen_t){0};
    cr_assert_eq(store_history_list(s, 1, c.lead_id, &q, &total, on_seq, &seen, NULL), STORE_OK);
    cr_assert_eq(seen.n, 1);
    cr_expect_eq(seen.seq[0], 2);
    store_close(s);
}

static int64_t mono_ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void count_lead(void *ctx, const lead_t *l)
{
    (void)l;
    (*(int *)ctx)++;
}

/* A server thread's read past its deadline (store_read_deadline) stops
 * with STORE_TOO_SLOW, and the next read, given none, runs whole; a
 * connection without a loop (an export's reader, the writer, a command)
 * takes no deadline. */
Test(sqlite, a_read_past_its_deadline_stops_with_too_slow)
{
    store_t *server = open_migrated(url_), *writer = open_migrated(url_);
    create_app(writer, "pk_live_one");
    store_app_t app;
    cr_assert_eq(store_app_find(writer, "pk_live_one", &app, NULL), STORE_OK);
    for (int i = 0; i < 300; i++) {
        char id[UUID_BUFSZ];
        snprintf(id, sizeof id, "0190a000-0000-7000-8000-%012d", i);
        lead_t l = new_lead(id, "Lead");
        cr_assert_eq(store_lead_create(writer, app.id, &l), STORE_OK);
    }
    store_loop_t loop = {.timer_start = keep_timer, .timer_stop = drop_timer};
    store_set_loop(server, &loop);
    int64_t total = 0;
    int n = 0;
    /* A deadline already past: the read stops at its first look (1,000 steps). */
    store_read_deadline(server, mono_ns_now() - 1);
    cr_expect_eq(store_lead_list(server, app.id, 0, 100, &total, count_lead, &n, NULL), STORE_TOO_SLOW);
    cr_expect_lt(n, 100, "stopped before its page was whole (%d leads)", n);
    /* One far ahead, and none: the same read runs whole. */
    store_read_deadline(server, mono_ns_now() + 60LL * 1000000000);
    n = 0;
    cr_expect_eq(store_lead_list(server, app.id, 0, 100, &total, count_lead, &n, NULL), STORE_OK);
    cr_expect_eq(n, 100);
    cr_expect_eq(total, 300);
    store_read_deadline(server, 0);
    n = 0;
    cr_expect_eq(store_lead_list(server, app.id, 0, 100, &total, count_lead, &n, NULL), STORE_OK);
    cr_expect_eq(n, 100);
    /* The writer has no loop: a deadline is ignored. */
    store_read_deadline(writer, mono_ns_now() - 1);
    n = 0;
    cr_expect_eq(store_lead_list(writer, app.id, 0, 100, &total, count_lead, &n, NULL), STORE_OK);
    cr_expect_eq(n, 100);
    if (turn_end_fn != NULL) end_turn();
    store_close(server);
    store_close(writer);
}
