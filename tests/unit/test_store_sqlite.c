/*
 * test_store_sqlite.c: the SQLite store against a real database file.
 *
 * Each test gets its own file in /tmp (mkstemp), migrated, with two apps;
 * the file and its -wal and -shm companions are removed afterwards.
 * Records handed to callbacks are copied (strings included) before the
 * callback returns, since their strings live only that long.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* --- fixture -------------------------------------------------------------- */

static char path_[64];
static char url_[80];
static store_t *st;
static store_app_t app1, app2;

static store_t *open_store(void)
{
    char err[256] = "";
    store_t *s = store_open(url_, err, sizeof err);
    cr_assert_not_null(s, "store_open(%s): %s", url_, err);
    return s;
}

static void remove_db(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", path_, suffix[i]);
        unlink(p);
    }
}

static void make_temp_path(void)
{
    strcpy(path_, "/tmp/crmd-store-test-XXXXXX");
    int fd = mkstemp(path_);
    cr_assert_geq(fd, 0, "mkstemp");
    close(fd);
    snprintf(url_, sizeof url_, "sqlite:%s", path_);
}

static void setup(void)
{
    make_temp_path();
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
    remove_db();
}

TestSuite(store, .init = setup, .fini = teardown);

/* --- records and copies ---------------------------------------------------- */

/* Ids that sort as their number does. */
static const char *ID(int n)
{
    static char ids[64][UUID_BUFSZ];
    cr_assert(n >= 0 && n < 64);
    snprintf(ids[n], UUID_BUFSZ, "0190f3a2-0000-7000-8000-%012d", n);
    return ids[n];
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

static void on_lead(void *ctx, const lead_t *l)
{
    leads_t *c = ctx;
    cr_assert_lt(c->n, MAXREC);
    lead_copy_t *d = &c->r[c->n++];
    d->l = *l;
    copy_text(&d->l.name, d->name, sizeof d->name);
    copy_text(&d->l.source, d->source, sizeof d->source);
}

static void on_follow(void *ctx, const follow_t *f)
{
    follows_t *c = ctx;
    cr_assert_lt(c->n, MAXREC);
    follow_copy_t *d = &c->r[c->n++];
    d->f = *f;
    copy_text(&d->f.title, d->title, sizeof d->title);
    copy_text(&d->f.description, d->description, sizeof d->description);
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

/* Gets one lead of app into *out; returns the store_rc. */
static int get_lead(int64_t app, const char *id, lead_copy_t *out)
{
    leads_t c = {0};
    int rc = store_lead_get(st, app, id, on_lead, &c, NULL);
    cr_assert_leq(c.n, 1);
    if (rc == STORE_OK) {
        cr_assert_eq(c.n, 1, "STORE_OK without a record");
        *out = c.r[0];
        /* re-point the strings into *out */
        if (out->l.name.ptr) out->l.name.ptr = out->name;
        if (out->l.source.ptr) out->l.source.ptr = out->source;
    } else {
        cr_expect_eq(c.n, 0, "a record passed with rc %d", rc);
    }
    return rc;
}

static int get_follow(int64_t app, const char *lead, const char *id, follow_copy_t *out)
{
    follows_t c = {0};
    int rc = store_follow_get(st, app, lead, id, on_follow, &c, NULL);
    cr_assert_leq(c.n, 1);
    if (rc == STORE_OK) {
        cr_assert_eq(c.n, 1, "STORE_OK without a record");
        *out = c.r[0];
        if (out->f.title.ptr) out->f.title.ptr = out->title;
        if (out->f.description.ptr) out->f.description.ptr = out->description;
    } else {
        cr_expect_eq(c.n, 0, "a record passed with rc %d", rc);
    }
    return rc;
}

static int64_t lead_total(int64_t app)
{
    leads_t c = {0};
    int64_t total = -1;
    cr_assert_eq(store_lead_list(st, app, 0, 1, &total, on_lead, &c, NULL), STORE_OK);
    return total;
}

/* --- opening and schema --------------------------------------------------- */

Test(store, migrate_twice_keeps_data)
{
    cr_expect_eq(store_migrate(st), STORE_OK, "second migrate on an up-to-date database");
    cr_expect_eq(store_migrate(st), STORE_OK, "third");
    store_app_t a;
    cr_assert_eq(store_app_find(st, "pk_live_one", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app1.id);

    /* Another connection to the same file sees the schema and the data. */
    store_t *other = open_store();
    cr_expect_eq(store_migrate(other), STORE_OK);
    cr_expect_eq(store_app_find(other, "pk_live_two", &a, NULL), STORE_OK);
    cr_expect_eq(a.id, app2.id);
    store_close(other);
}

Test(store, bare_path_is_sqlite)
{
    char err[256] = "";
    store_t *s = store_open(path_, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    store_app_t a;
    cr_expect_eq(store_app_find(s, "pk_live_one", &a, NULL), STORE_OK);
    store_close(s);
}

Test(store_open, impossible_paths_fail_with_a_message)
{
    static const char *const urls[] = {
        "sqlite:/dev/null/x.db",
        "sqlite:/nonexistent-crmd-dir-4f1a/sub/x.db",
        "/dev/null/y.db",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char err[256] = "";
        store_t *s = store_open(urls[i], err, sizeof err);
        cr_expect_null(s, "%s opened", urls[i]);
        store_close(s);
        cr_expect_neq(err[0], '\0', "%s: no message", urls[i]);
        const char *file = strchr(urls[i], '/');
        cr_expect(strstr(err, file) != NULL, "%s: message does not name the file: %s", urls[i], err);
    }
}

Test(store_open, unsupported_urls)
{
    static const char *const urls[] = {"postgres://u@localhost/crm", "postgresql://localhost/crm",
                                       "mysql://localhost/crm"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char err[256] = "";
        store_t *s = store_open(urls[i], err, sizeof err);
        cr_expect_null(s, "%s opened", urls[i]);
        store_close(s);
        cr_expect_neq(err[0], '\0', "%s: no message", urls[i]);
    }
}

/* --- apps and the signing key --------------------------------------------- */

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

Test(store, signing_key)
{
    char *pem = (char *)"untouched";
    cr_expect_eq(store_signing_key(st, NULL, &pem), STORE_NOT_FOUND);
    cr_expect_null(pem);

    cr_assert_eq(store_signing_key(st, "PEM-FIRST", &pem), STORE_OK);
    cr_assert_not_null(pem);
    cr_expect_str_eq(pem, "PEM-FIRST");
    free(pem);

    /* A later first use (another thread or process) gets the stored key. */
    cr_assert_eq(store_signing_key(st, "PEM-SECOND", &pem), STORE_OK);
    cr_expect_str_eq(pem, "PEM-FIRST", "second pem_if_none must be ignored");
    free(pem);

    cr_assert_eq(store_signing_key(st, NULL, &pem), STORE_OK);
    cr_expect_str_eq(pem, "PEM-FIRST");
    free(pem);

    store_t *other = open_store();
    cr_assert_eq(store_signing_key(other, "PEM-THIRD", &pem), STORE_OK);
    cr_expect_str_eq(pem, "PEM-FIRST", "another connection agrees");
    free(pem);
    store_close(other);
}

/* Racing first uses, each thread on its own connection. */
#define RACERS 4
typedef struct racer {
    pthread_barrier_t *go;
    char pem_in[32];
    int rc;
    char *pem_out;
    char err[256];
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    store_t *s = store_open(url_, r->err, sizeof r->err);
    pthread_barrier_wait(r->go);
    r->rc = s ? (int)store_signing_key(s, r->pem_in, &r->pem_out) : -1;
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

    char *stored = NULL;
    cr_assert_eq(store_signing_key(st, NULL, &stored), STORE_OK);
    bool known = false;
    for (int i = 0; i < RACERS; i++) {
        cr_expect_eq(r[i].rc, STORE_OK, "racer %d: rc %d (%s)", i, r[i].rc, r[i].err);
        cr_assert_not_null(r[i].pem_out, "racer %d", i);
        cr_expect_str_eq(r[i].pem_out, stored, "racer %d got a key other than the stored one", i);
        known = known || strcmp(stored, r[i].pem_in) == 0;
        free(r[i].pem_out);
    }
    cr_expect(known, "stored key %s is none of the racers'", stored);
    free(stored);
}

/* --- leads ---------------------------------------------------------------- */

Test(store, lead_create_and_get)
{
    lead_t l = mk_lead(1, "Acme \xc3\xa9 \xf0\x9f\x98\x80", 5000);
    l.source = T("website");
    strcpy(l.account_id, ID(40));
    strcpy(l.contact_id, ID(41));
    l.has_value = true;
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
        lead_t l = mk_lead(rows[i].id, name, rows[i].created);
        cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
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

Test(store, lead_update_partial)
{
    lead_t l = mk_lead(1, "Acme", 1000);
    l.source = T("referral");
    strcpy(l.account_id, ID(40));
    strcpy(l.contact_id, ID(41));
    l.has_value = true;
    l.value_cents = 1234567;
    l.stage = STAGE_CONTACTED;
    l.probability = 40;
    l.status = LEAD_ACTIVE;
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
    cr_assert_eq(c.n, 1, "RETURNING passes the updated row");
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
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
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
    lead_t keep = mk_lead(2, "Keep", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &keep), STORE_OK);
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

/* --- follows -------------------------------------------------------------- */

Test(store, follow_create_and_get)
{
    follow_t orphan = mk_follow(10, 1, "No lead", false, 0, 1000);
    cr_expect_eq(store_follow_create(st, app1.id, &orphan), STORE_NOT_FOUND);

    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
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
    lead_t l2 = mk_lead(2, "Other", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l2), STORE_OK);
    cr_expect_eq(get_follow(app1.id, ID(2), ID(10), &got), STORE_NOT_FOUND);
    cr_expect_eq(get_follow(app1.id, ID(1), ID(19), &got), STORE_NOT_FOUND);
}

Test(store, follow_list_order_and_total)
{
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
    lead_t l2 = mk_lead(2, "Other", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l2), STORE_OK);

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
    cr_assert_eq(store_follow_list(st, app1.id, ID(1), n, 3, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(c.n, 0);
    cr_expect_eq(total, n);

    memset(&c, 0, sizeof c);
    cr_assert_eq(store_follow_list(st, app1.id, ID(2), 0, 100, &total, on_follow, &c, NULL), STORE_OK);
    cr_expect_eq(total, 1);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.r[0].f.id, ID(30));

    memset(&c, 0, sizeof c);
    cr_expect_eq(store_follow_list(st, app1.id, ID(3), 0, 100, &total, on_follow, &c, NULL), STORE_NOT_FOUND,
                 "missing lead");
    cr_expect_eq(c.n, 0);
}

Test(store, follow_update_partial)
{
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
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
    cr_assert_eq(c.n, 1, "RETURNING passes the updated row");
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
    lead_t l = mk_lead(1, "Acme", 1000);
    cr_assert_eq(store_lead_create(st, app1.id, &l), STORE_OK);
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
