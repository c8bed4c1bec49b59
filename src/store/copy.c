/*
 * copy.c: `crmd copy` (see copy.h).
 *
 * The source is read in one snapshot (store_copy_export) and each record
 * is written into the target as it arrives, inside the target's import
 * transaction; nothing is held in memory but the map of app ids (an app's
 * id is the target's own when --append merges it into an existing app or
 * the target picks a new one; lead and follow ids never change) and the
 * list of trashed leads, which arrive as live leads (with their follows)
 * and are moved to the trash once the export is over.
 */
#include "store/copy.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "store/webhook.h"

/* Progress goes to err every this many records written. */
#define PROGRESS_EVERY 100000

typedef struct app_map {
    int64_t src, dst;
} app_map_t;

/* A trashed lead to move to the trash: its target app, id, and when it was
 * trashed. */
typedef struct trashed {
    int64_t app;
    char id[UUID_BUFSZ];
    int64_t deleted_at;
} trashed_t;

typedef struct copy {
    store_t *dst;
    bool append;
    bool created; /* the target is an SQLite file that was not there before the copy */
    FILE *err;
    app_map_t *apps; /* in source id order: the export passes apps by id */
    size_t napps, capapps;
    store_counts_t passed; /* what the export passed */
    store_counts_t added;  /* what the target gained */
    int64_t merged;        /* apps merged into the target's app with the same key */
    int64_t keys_kept;     /* source keys not copied: the target has them, or keeps its own */
    char **dst_keys;       /* the target's keys' PEM text when the import began */
    size_t ndst_keys, capdst_keys;
    bool dst_keys_lost; /* one could not be kept (out of memory) */
    trashed_t *trash;   /* the trashed leads passed, in the export's order */
    size_t ntrash, captrash;
    int64_t idem_kept; /* source idempotency keys not copied: the target's app has them */
    int64_t written;   /* records written, for the progress reports */
} copy_t;

static const char *rc_text(store_rc_t rc)
{
    static const char *const text[] = {
        [STORE_NOT_FOUND] = "not found",
        [STORE_CONFLICT] = "already exists",
        [STORE_UNAVAILABLE] = "database unavailable",
    };
    return (size_t)rc < sizeof text / sizeof text[0] && text[rc] != NULL ? text[rc] : "database error";
}

/* Keeps a copy of one of the target's keys (store_keys' callback). */
static void keep_dst_key(void *ctx, const store_key_t *key)
{
    copy_t *c = ctx;
    char **v = store_grow(c->dst_keys, &c->capdst_keys, c->ndst_keys, sizeof *v, 4);
    char *pem = v != NULL ? strdup(key->pem) : NULL;
    if (v != NULL) c->dst_keys = v;
    if (pem == NULL) {
        c->dst_keys_lost = true;
        return;
    }
    c->dst_keys[c->ndst_keys++] = pem;
}

/* A source key: added after the target's keys, so that the source's
 * tokens keep verifying there and its newest key signs. Not when the
 * target already holds it, nor when appending to a target with keys of its
 * own: those keys sign tokens its apps hold, and the source's tokens must
 * then be issued again. */
static store_rc_t on_key(void *ctx, const store_key_t *key)
{
    copy_t *c = ctx;
    c->passed.keys++;
    for (size_t i = 0; i < c->ndst_keys; i++)
        if (strcmp(c->dst_keys[i], key->pem) == 0) {
            c->keys_kept++;
            return STORE_OK;
        }
    if (c->ndst_keys > 0 && c->append) {
        c->keys_kept++;
        return STORE_OK;
    }
    store_rc_t rc = store_copy_import_key(c->dst, key);
    if (rc != STORE_OK) fprintf(c->err, "crmd: copy: cannot store a signing key: %s\n", rc_text(rc));
    c->added.keys += rc == STORE_OK;
    return rc;
}

static store_rc_t on_app(void *ctx, const store_app_t *app)
{
    copy_t *c = ctx;
    c->passed.apps++;
    if (c->napps > 0 && app->id <= c->apps[c->napps - 1].src) {
        fprintf(c->err, "crmd: copy: the source passed apps out of order\n");
        return STORE_ERROR;
    }
    app_map_t *m = store_grow(c->apps, &c->capapps, c->napps, sizeof *m, 64);
    if (m == NULL) return STORE_ERROR;
    c->apps = m;
    int64_t id = 0;
    store_rc_t rc = STORE_NOT_FOUND;
    if (c->append) {
        store_app_t found;
        rc = store_app_find(c->dst, app->key, &found, NULL);
        if (rc == STORE_OK) {
            id = found.id;
            c->merged++;
        }
    }
    if (rc == STORE_NOT_FOUND) {
        /* An empty target keeps the source's ids; one being appended to
         * picks its own. */
        rc = store_copy_import_app(c->dst, app, !c->append, &id);
        if (rc == STORE_OK) c->added.apps++;
    }
    if (rc != STORE_OK) {
        fprintf(c->err, "crmd: copy: app %s: %s\n", app->key, rc_text(rc));
        return rc;
    }
    c->apps[c->napps++] = (app_map_t){app->id, id};
    return STORE_OK;
}

/* The target's id for source app id src; 0 if the export never passed it. */
static int64_t map_app(const copy_t *c, int64_t src)
{
    size_t lo = 0, hi = c->napps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->apps[mid].src < src)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->napps && c->apps[lo].src == src ? c->apps[lo].dst : 0;
}

static store_rc_t on_issued(void *ctx, const store_token_t *token)
{
    copy_t *c = ctx;
    c->passed.issued++;
    store_token_t t = *token;
    t.app = map_app(c, token->app);
    if (t.app == 0) {
        fprintf(c->err, "crmd: copy: issued token %s: its app is not among the source's apps\n", token->jti);
        return STORE_NOT_FOUND;
    }
    int added = 0;
    store_rc_t rc = store_copy_import_issued(c->dst, &t, &added);
    if (rc != STORE_OK) fprintf(c->err, "crmd: copy: issued token %s: %s\n", token->jti, rc_text(rc));
    c->added.issued += added;
    return rc;
}

static store_rc_t on_revoked(void *ctx, const char *jti, int64_t revoked_at)
{
    copy_t *c = ctx;
    c->passed.revoked++;
    int added = 0;
    store_rc_t rc = store_copy_import_revoked(c->dst, jti, revoked_at, &added);
    if (rc != STORE_OK) fprintf(c->err, "crmd: copy: revoked token %s: %s\n", jti, rc_text(rc));
    c->added.revoked += added;
    return rc;
}

static void progress(copy_t *c)
{
    if (++c->written % PROGRESS_EVERY == 0)
        fprintf(c->err, "crmd: copy: %" PRId64 " leads, %" PRId64 " follows so far\n", c->passed.leads,
                c->passed.follows);
}

/* Counts record kind/id as passed (in *passed), and returns the target's
 * id for its app, or 0 when the export never passed that app (said on
 * err). */
static int64_t target_app(copy_t *c, int64_t app, const char *kind, const char *id, int64_t *passed)
{
    (*passed)++;
    int64_t dst = map_app(c, app);
    if (dst == 0) fprintf(c->err, "crmd: copy: %s %s: its app is not among the source's apps\n", kind, id);
    return dst;
}

/* After record kind/id was written (rc): counts it in *added, or says
 * where writing failed, why. A backend may report a row's failure a
 * little later (see store_copy_import_lead): the row is this one or one
 * before. */
static store_rc_t written(copy_t *c, store_rc_t rc, const char *kind, const char *id, const char *why,
                          int64_t *added)
{
    if (rc != STORE_OK) {
        fprintf(c->err, "crmd: copy: writing %ss failed at or before %s %s: %s\n", kind, kind, id, why);
        return rc;
    }
    (*added)++;
    progress(c);
    return STORE_OK;
}

/* Writes one record into the target's app; rec is the receiver's record. */
typedef store_rc_t (*put_fn)(store_t *dst, int64_t app, const void *rec);

static store_rc_t put_lead(store_t *dst, int64_t app, const void *rec)
{
    return store_copy_import_lead(dst, app, rec);
}

static store_rc_t put_follow(store_t *dst, int64_t app, const void *rec)
{
    return store_copy_import_follow(dst, app, rec);
}

static store_rc_t put_webhook(store_t *dst, int64_t app, const void *rec)
{
    return store_copy_import_webhook(dst, app, rec);
}

static store_rc_t put_change(store_t *dst, int64_t app, const void *rec)
{
    return store_history_add(dst, app, rec);
}

/* Record kind/id of the source's app: counted in *passed, written with
 * put into the target's app and counted in *added (see written). */
static store_rc_t import_record(copy_t *c, int64_t app, const char *kind, const char *id, int64_t *passed,
                                int64_t *added, put_fn put, const void *rec)
{
    int64_t dst = target_app(c, app, kind, id, passed);
    if (dst == 0) return STORE_NOT_FOUND;
    store_rc_t rc = put(c->dst, dst, rec);
    const char *why = rc == STORE_NOT_FOUND && put == put_follow ? "a follow's lead is missing" : rc_text(rc);
    return written(c, rc, kind, id, why, added);
}

static store_rc_t on_lead(void *ctx, int64_t app, const lead_t *lead)
{
    copy_t *c = ctx;
    return import_record(c, app, "lead", lead->id, &c->passed.leads, &c->added.leads, put_lead, lead);
}

static store_rc_t on_follow(void *ctx, int64_t app, const follow_t *f)
{
    copy_t *c = ctx;
    return import_record(c, app, "follow", f->id, &c->passed.follows, &c->added.follows, put_follow, f);
}

static store_rc_t on_webhook(void *ctx, int64_t app, const webhook_t *wh)
{
    copy_t *c = ctx;
    return import_record(c, app, "webhook", wh->id, &c->passed.webhooks, &c->added.webhooks, put_webhook, wh);
}

/* An undelivered event: its webhook was passed before it. */
static store_rc_t on_event(void *ctx, const char *webhook_id, const store_queued_t *e)
{
    copy_t *c = ctx;
    c->passed.events++;
    store_rc_t rc = store_copy_import_event(c->dst, webhook_id, e);
    return written(c, rc, "event", e->event_id, rc_text(rc), &c->added.events);
}

/* A trashed lead: written as a live lead (its follows follow), and moved
 * to the trash by move_trash when the export is over. */
static store_rc_t on_trashed(void *ctx, int64_t app, const lead_t *lead, int64_t deleted_at)
{
    copy_t *c = ctx;
    int64_t id = target_app(c, app, "trashed lead", lead->id, &c->passed.trash);
    if (id == 0) return STORE_NOT_FOUND;
    trashed_t *t = store_grow(c->trash, &c->captrash, c->ntrash, sizeof *t, 64);
    if (t == NULL) return STORE_ERROR;
    c->trash = t;
    t = &c->trash[c->ntrash++];
    *t = (trashed_t){.app = id, .deleted_at = deleted_at};
    memcpy(t->id, lead->id, sizeof t->id);
    store_rc_t rc = store_copy_import_lead(c->dst, id, lead);
    if (rc != STORE_OK) fprintf(c->err, "crmd: copy: trashed lead %s: %s\n", lead->id, rc_text(rc));
    return rc;
}

static store_rc_t on_trashed_follow(void *ctx, int64_t app, const follow_t *f)
{
    copy_t *c = ctx;
    return import_record(c, app, "trashed follow", f->id, &c->passed.trash_follows, &c->added.trash_follows,
                         put_follow, f);
}

/* Moves the trashed leads, with their follows, to the target's trash. */
static store_rc_t move_trash(copy_t *c)
{
    for (size_t i = 0; i < c->ntrash; i++) {
        const trashed_t *t = &c->trash[i];
        store_rc_t rc = store_lead_trash(c->dst, t->app, t->id, t->deleted_at);
        if (written(c, rc, "trashed lead", t->id, rc_text(rc), &c->added.trash) != STORE_OK) return rc;
    }
    return STORE_OK;
}

/* A history entry, written in the export's order, which is the order it
 * was recorded in. An empty target keeps its number (a cursor into the
 * history holds it); one being appended to has numbers of its own, so
 * there the entries are numbered after the target's, in the same order. */
static store_rc_t on_change(void *ctx, int64_t app, const store_change_t *change)
{
    copy_t *c = ctx;
    store_change_t h = *change;
    if (c->append) h.seq = 0;
    return import_record(c, app, "history entry", h.id, &c->passed.history, &c->added.history, put_change,
                         &h);
}

/* A kept idempotency answer. An app merged by --append may hold the same
 * key already: the target's answer stays, as it answered its own clients. */
static store_rc_t on_idem(void *ctx, int64_t app, const char *key, const store_idem_t *idem)
{
    copy_t *c = ctx;
    int64_t id = target_app(c, app, "idempotency key", key, &c->passed.idem);
    if (id == 0) return STORE_NOT_FOUND;
    store_rc_t rc = store_idem_claim(c->dst, id, key, idem->hash, idem->created_at, INT64_MIN, NULL);
    if (rc == STORE_CONFLICT && c->append) {
        c->idem_kept++;
        return STORE_OK;
    }
    if (rc == STORE_OK) rc = store_idem_finish(c->dst, id, key, idem->status, idem->location, idem->body);
    return written(c, rc, "idempotency key", key, rc_text(rc), &c->added.idem);
}

/* Opens and migrates url, the copy's source or target (what). The source
 * must be there already (store_open_existing): a mistyped path would
 * otherwise become an empty source, and the copy of nothing a success. */
static store_t *open_store(const char *url, const char *what, bool create, FILE *err)
{
    char msg[STORE_OPEN_ERR_MAX], shown[STORE_URL_SHOWN_MAX];
    store_url_redact(url, shown, sizeof shown);
    store_t *s = create ? store_open(url, msg, sizeof msg) : store_open_existing(url, msg, sizeof msg);
    if (s == NULL) {
        fprintf(err, "crmd: copy: %s: %s\n", what, msg);
        return NULL;
    }
    if (store_migrate(s) != STORE_OK) {
        fprintf(err, "crmd: copy: cannot migrate the %s %s\n", what, shown);
        store_close(s);
        return NULL;
    }
    return s;
}

static void print_counts(FILE *f, const store_counts_t *n)
{
    fprintf(f,
            "%" PRId64 " apps, %" PRId64 " leads, %" PRId64 " follows, %" PRId64 " issued tokens, %" PRId64
            " revoked tokens, %" PRId64 " signing keys, %" PRId64 " webhooks, %" PRId64
            " undelivered events, %" PRId64 " trashed leads, %" PRId64 " trashed follows, %" PRId64
            " history entries, %" PRId64 " idempotency keys",
            n->apps, n->leads, n->follows, n->issued, n->revoked, n->keys, n->webhooks, n->events, n->trash,
            n->trash_follows, n->history, n->idem);
}

static bool has_data(const store_counts_t *n)
{
    return n->apps > 0 || n->leads > 0 || n->follows > 0 || n->issued > 0 || n->revoked > 0 ||
           n->webhooks > 0 || n->trash > 0 || n->history > 0 || n->idem > 0;
}

/* The trash, the history and the idempotency keys: the source passed what
 * its snapshot counted, and the target gained exactly that. */
static bool safe_counts_agree(const copy_t *c, const store_counts_t *total, const store_counts_t *before,
                              const store_counts_t *after)
{
    const store_counts_t *p = &c->passed, *a = &c->added;
    return p->trash == total->trash && p->trash_follows == total->trash_follows &&
           p->history == total->history && p->idem == total->idem && a->trash == p->trash &&
           a->trash_follows == p->trash_follows && a->history == p->history &&
           a->idem + c->idem_kept == p->idem && after->trash == before->trash + a->trash &&
           after->trash_follows == before->trash_follows + a->trash_follows &&
           after->history == before->history + a->history && after->idem == before->idem + a->idem;
}

/* Checks, inside the import, that the source passed what its snapshot
 * counted and that the target gained exactly that. */
static bool verify(copy_t *c, const store_counts_t *total, const store_counts_t *before, FILE *err)
{
    store_counts_t after;
    store_rc_t rc = store_copy_count(c->dst, &after);
    if (rc != STORE_OK) {
        fprintf(err, "crmd: copy: cannot count the target: %s\n", rc_text(rc));
        return false;
    }
    bool ok = c->passed.apps == total->apps && c->passed.leads == total->leads &&
              c->passed.follows == total->follows && c->passed.revoked == total->revoked &&
              c->passed.issued == total->issued && after.issued == before->issued + c->added.issued &&
              c->added.leads == c->passed.leads && c->added.follows == c->passed.follows &&
              c->passed.keys == total->keys && c->added.keys + c->keys_kept == c->passed.keys &&
              after.keys == before->keys + c->added.keys && c->added.apps + c->merged == c->passed.apps &&
              after.apps == before->apps + c->added.apps && after.leads == before->leads + c->added.leads &&
              after.follows == before->follows + c->added.follows &&
              after.revoked == before->revoked + c->added.revoked && c->passed.webhooks == total->webhooks &&
              c->passed.events == total->events && c->added.webhooks == c->passed.webhooks &&
              c->added.events == c->passed.events && after.webhooks == before->webhooks + c->added.webhooks &&
              after.events == before->events + c->added.events && safe_counts_agree(c, total, before, &after);
    if (!ok) {
        fprintf(err, "crmd: copy: counts do not match: the source holds ");
        print_counts(err, total);
        fprintf(err, "; the export passed ");
        print_counts(err, &c->passed);
        fprintf(err, "; the target went from ");
        print_counts(err, before);
        fprintf(err, " to ");
        print_counts(err, &after);
        fprintf(err, "\n");
    }
    return ok;
}

/* Copies everything from src into c->dst inside the target's import
 * transaction, and commits only when the counts agree. */
static store_rc_t import_all(copy_t *c, store_t *src, const char *to_shown)
{
    store_counts_t before = {0}, total = {0};
    store_rc_t rc = store_copy_import_begin(c->dst, &before);
    if (rc != STORE_OK) {
        fprintf(c->err, "crmd: copy: cannot start writing to the target: %s\n", rc_text(rc));
        return rc;
    }
    if (has_data(&before) && !c->append) {
        fprintf(c->err, "crmd: copy: the target %s already holds ", to_shown);
        print_counts(c->err, &before);
        fprintf(c->err, "; nothing was copied (use --append to add to it)\n");
        store_copy_import_end(c->dst, 0);
        return STORE_CONFLICT;
    }
    rc = store_keys(c->dst, keep_dst_key, c);
    if (rc == STORE_OK && c->dst_keys_lost) rc = STORE_ERROR;
    static const store_export_t cb = {.key = on_key,
                                      .app = on_app,
                                      .issued = on_issued,
                                      .revoked = on_revoked,
                                      .lead = on_lead,
                                      .follow = on_follow,
                                      .trashed = on_trashed,
                                      .trashed_follow = on_trashed_follow,
                                      .change = on_change,
                                      .idem = on_idem,
                                      .webhook = on_webhook,
                                      .event = on_event};
    if (rc == STORE_OK) rc = store_copy_export(src, &cb, c, &total);
    if (rc == STORE_OK) rc = move_trash(c);
    if (rc == STORE_OK && !verify(c, &total, &before, c->err)) rc = STORE_ERROR;
    if (rc == STORE_OK)
        rc = store_copy_import_end(c->dst, 1);
    else
        store_copy_import_end(c->dst, 0);
    /* A target the copy made stays, empty (crmd removes no database: another
     * process may have opened it meanwhile); the message says so. */
    if (rc != STORE_OK && c->created)
        fprintf(c->err,
                "crmd: copy failed (%s); nothing was copied: the target %s, which did not exist, is left as "
                "an empty database (copy into it again, or remove it)\n",
                rc_text(rc), to_shown);
    else if (rc != STORE_OK)
        fprintf(c->err,
                "crmd: copy failed (%s); nothing was copied: the target %s holds what it held before\n",
                rc_text(rc), to_shown);
    return rc;
}

/* After the commit: checks that every app's lead count agrees with its
 * leads, and says what was copied. */
static store_rc_t report(const copy_t *c, FILE *out, const char *from_shown, const char *to_shown)
{
    store_counts_t now;
    store_rc_t rc = store_copy_count(c->dst, &now);
    if (rc == STORE_OK && now.lead_count_sum != now.leads) {
        fprintf(c->err,
                "crmd: copy: the target's lead counts (%" PRId64 ") do not add up to its leads (%" PRId64
                ")\n",
                now.lead_count_sum, now.leads);
        rc = STORE_ERROR;
    }
    fprintf(out, "copied %" PRId64 " apps", c->added.apps);
    if (c->merged > 0)
        fprintf(out, " (and merged %" PRId64 " into the target's apps with the same keys)", c->merged);
    fprintf(out,
            ", %" PRId64 " leads, %" PRId64 " follows, %" PRId64 " issued tokens, %" PRId64
            " revoked tokens, %" PRId64 " signing keys, %" PRId64 " webhooks, %" PRId64
            " undelivered events, %" PRId64 " trashed leads with %" PRId64 " follows, %" PRId64
            " history entries and %" PRId64 " idempotency keys",
            c->added.leads, c->added.follows, c->added.issued, c->added.revoked, c->added.keys,
            c->added.webhooks, c->added.events, c->added.trash, c->added.trash_follows, c->added.history,
            c->added.idem);
    if (c->idem_kept > 0)
        fprintf(out, " (%" PRId64 " idempotency keys not copied: the target's apps hold them)", c->idem_kept);
    if (c->keys_kept > 0)
        fprintf(out, " (%" PRId64 " not copied: %s)", c->keys_kept,
                c->append ? "the target keeps its own keys; issue new tokens for the copied apps"
                          : "the target already holds them");
    fprintf(out, "\n");
    fprintf(out, "from %s\nto   %s\n", from_shown, to_shown);
    if (rc == STORE_OK) {
        fprintf(out, "verified: the target now holds ");
        print_counts(out, &now);
        fprintf(out, "\n");
    }
    return rc;
}

store_rc_t store_copy(const char *from_url, const char *to_url, bool append, FILE *out, FILE *err)
{
    char from_shown[STORE_URL_SHOWN_MAX], to_shown[STORE_URL_SHOWN_MAX];
    store_url_redact(from_url, from_shown, sizeof from_shown);
    store_url_redact(to_url, to_shown, sizeof to_shown);
    if (strcmp(from_url, to_url) == 0) {
        fprintf(err, "crmd: copy: the source and the target are the same database\n");
        return STORE_CONFLICT;
    }
    store_t *src = open_store(from_url, "source", false, err);
    if (src == NULL) return STORE_UNAVAILABLE;
    /* Whether the copy makes the target: an SQLite file not there yet. */
    const char *to_file = store_url_file(to_url);
    bool created = to_file != NULL && access(to_file, F_OK) != 0;
    store_t *dst = open_store(to_url, "target", true, err);
    if (dst == NULL) {
        store_close(src);
        return STORE_UNAVAILABLE;
    }
    copy_t c = {.dst = dst, .append = append, .created = created, .err = err};
    store_rc_t rc = import_all(&c, src, to_shown);
    if (rc == STORE_OK) rc = report(&c, out, from_shown, to_shown);
    free(c.apps);
    free(c.trash);
    for (size_t i = 0; i < c.ndst_keys; i++) {
        OPENSSL_cleanse(c.dst_keys[i], strlen(c.dst_keys[i])); /* a private key: not left in freed heap */
        free(c.dst_keys[i]);
    }
    free(c.dst_keys);
    store_close(dst);
    store_close(src);
    return rc;
}
