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

static void keep(void *ctx, const lead_t *lead)
{
    kept_t *k = ctx;
    k->lead = *lead;
    keep_text(&k->lead.name, k->name, sizeof k->name);
    keep_text(&k->lead.source, k->source, sizeof k->source);
    k->found = true;
}

/* Purges one due lead and records its event; a lead recovered meanwhile
 * is left alone. */
static store_rc_t purge_one(store_t *s, int64_t app, const char *id, int64_t now)
{
    kept_t k = {0};
    store_rc_t rc = store_trash_get(s, app, id, keep, &k);
    if (rc == STORE_NOT_FOUND) return STORE_OK;
    if (rc == STORE_OK) rc = store_trash_purge(s, app, id);
    const api_change_t c = {.kind = CHANGE_LEAD, .action = CHANGE_PURGED, .lead_before = &k.lead};
    int recorded = 0;
    if (rc == STORE_OK) rc = api_outbox_record(s, app, now, &c, &recorded);
    return rc;
}

int api_trash_expire_due(store_t *s, int64_t before, int limit, int64_t now)
{
    /* What is due is read before the batch, which only begins when there
     * is some (a check every minute takes no write lock for nothing):
     * purge_one reads each lead again inside it. */
    due_t d = {0};
    store_rc_t rc = store_trash_due(s, before, limit < EXPIRE_MAX ? limit : EXPIRE_MAX, on_due, &d);
    if (rc != STORE_OK) return -1;
    if (d.n == 0) return 0;
    if (store_batch_begin(s) != STORE_OK) return -1;
    for (int i = 0; i < d.n && rc == STORE_OK; i++)
        rc = purge_one(s, d.app[i], d.id[i], now);
    rc = store_batch_end(s, rc == STORE_OK) == STORE_OK ? rc : STORE_UNAVAILABLE;
    return rc == STORE_OK ? d.n : -1;
}
