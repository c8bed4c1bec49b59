/*
 * expire.c: see expire.h.
 */
#include "api/expire.h"

#include <string.h>

#include "api/outbox.h"

#define EXPIRE_MAX 100

/* The leads due, as store_trash_due passed them. */
typedef struct due {
    int n;
    int64_t app[EXPIRE_MAX];
    char id[EXPIRE_MAX][UUID_BUFSZ];
} due_t;

static void on_due(void *ctx, int64_t app, const char *id)
{
    due_t *d = ctx;
    if (d->n == EXPIRE_MAX) return;
    d->app[d->n] = app;
    strncpy(d->id[d->n], id, UUID_BUFSZ - 1);
    d->id[d->n][UUID_BUFSZ - 1] = '\0';
    d->n++;
}

/* A trashed lead as it was, with its own copy of its texts (a stored
 * name is at most 1020 bytes, a source 256). */
typedef struct kept {
    bool found;
    lead_t lead;
    int64_t deleted_at;
    char name[1024], source[1024];
} kept_t;

static void keep_text(text_ref_t *t, char *buf, size_t cap)
{
    if (t->ptr == NULL) return;
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    memcpy(buf, t->ptr, n);
    buf[n] = '\0';
    *t = (text_ref_t){buf, n};
}

static void keep(void *ctx, const lead_t *lead, int64_t deleted_at)
{
    kept_t *k = ctx;
    k->lead = *lead;
    k->deleted_at = deleted_at;
    keep_text(&k->lead.name, k->name, sizeof k->name);
    keep_text(&k->lead.source, k->source, sizeof k->source);
    k->found = true;
}

/* Purges one due lead, read again inside the batch that holds it, and
 * records its event. */
static store_rc_t purge_one(store_t *s, int64_t app, const char *id, int64_t now)
{
    kept_t k = {0};
    store_rc_t rc = store_trash_get(s, app, id, keep, &k);
    if (rc == STORE_NOT_FOUND) return STORE_OK;
    if (rc == STORE_OK) rc = store_trash_purge(s, app, id);
    const api_change_t c = {
        .kind = CHANGE_LEAD, .action = CHANGE_PURGED, .lead_before = &k.lead, .deleted_at = k.deleted_at};
    int recorded = 0;
    if (rc == STORE_OK) rc = api_outbox_record(s, app, now, &c, &recorded);
    return rc;
}

int api_trash_expire_due(store_t *s, int64_t before, int limit, int64_t now)
{
    /* Whether any lead is due is looked at before the batch, which only
     * begins when one is (a check every minute takes no write lock for
     * nothing). What is purged is read again inside it, where its rows
     * hold still until the batch ends (SQLite's write lock, PostgreSQL's
     * FOR UPDATE): another process may have recovered a lead in between,
     * or recovered and trashed it again, and it is then no longer due. */
    if (limit > EXPIRE_MAX) limit = EXPIRE_MAX;
    due_t d = {0};
    store_rc_t rc = store_trash_due(s, before, 1, on_due, &d);
    if (rc != STORE_OK) return -1;
    if (d.n == 0) return 0;
    if (store_batch_begin(s) != STORE_OK) return -1;
    d.n = 0;
    rc = store_trash_due(s, before, limit, on_due, &d);
    for (int i = 0; i < d.n && rc == STORE_OK; i++)
        rc = purge_one(s, d.app[i], d.id[i], now);
    rc = store_batch_end(s, rc == STORE_OK) == STORE_OK ? rc : STORE_UNAVAILABLE;
    return rc == STORE_OK ? d.n : -1;
}
