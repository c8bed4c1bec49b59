/*
 * postgres.c: the PostgreSQL backend as store.c sees it: its table of
 * operations and store_postgres_open (pg_close is async.c's, which may have
 * to wait for a loop's callback to end first).
 *
 * The shared store: many crmd processes on one database through libpq
 * (see pg_int.h for the files that do the work). This file only wires them
 * to the store interface and makes the first connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_int.h"

static const store_ops_t postgres_ops = STORE_OPS_INIT(pg);

/* True when the n bytes at word name one of libpq's connection options. */
static bool is_option_name(const char *word, size_t n)
{
    PQconninfoOption *opts = PQconndefaults();
    bool found = false;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL && !found; o++)
        found = strlen(o->keyword) == n && memcmp(o->keyword, word, n) == 0;
    PQconninfoFree(opts);
    return found;
}

/* Appends n bytes of s to out (outsz bytes, terminated, cut to fit). */
static void append(char *out, size_t outsz, const char *s, size_t n)
{
    size_t len = strlen(out);
    snprintf(out + len, outsz - len, "%.*s", (int)n, s);
}

/* Writes why, libpq's reason for a connection string it cannot read, into
 * out. The reason quotes the string, or a piece of it that may well be a
 * password ('invalid percent-encoded token: "se%zzcret"', 'missing "="
 * after "word"'): a quoted URL is shown redacted (up to the reason's last
 * '"': a password may hold one), a quoted option name or "=" as it is,
 * anything else as "***". */
static void unreadable(const char *why, char *out, size_t outsz)
{
    out[0] = '\0';
    const char *p = why, *open;
    while ((open = strchr(p, '"')) != NULL) {
        append(out, outsz, p, (size_t)(open + 1 - p));
        const char *close = strstr(open + 1, "://") != NULL ? strrchr(why, '"') : strchr(open + 1, '"');
        if (close == open) close = NULL;
        size_t n = close != NULL ? (size_t)(close - open - 1) : strlen(open + 1);
        char piece[PG_MSG_MAX], shown[PG_MSG_MAX];
        snprintf(piece, sizeof piece, "%.*s", (int)n, open + 1);
        if (strstr(piece, "://") != NULL)
            store_url_redact(piece, shown, sizeof shown);
        else if (strcmp(piece, "=") == 0 || is_option_name(piece, strlen(piece)))
            snprintf(shown, sizeof shown, "%s", piece);
        else
            snprintf(shown, sizeof shown, "***");
        append(out, outsz, shown, strlen(shown));
        if (close == NULL) return;
        append(out, outsz, "\"", 1);
        p = close + 1;
    }
    append(out, outsz, p, strlen(p));
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
}

/* Fails with a reason, never a password, when libpq cannot read conninfo
 * at all: its own message would quote the string. */
static bool readable(const char *conninfo, char *err, size_t errsz)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    PQconninfoFree(opts);
    if (opts != NULL) return true;
    char shown[PG_MSG_MAX];
    unreadable(why != NULL ? why : "out of memory", shown, sizeof shown);
    PQfreemem(why);
    snprintf(err, errsz, "cannot read the PostgreSQL connection string: %s", shown);
    return false;
}

/* A store for conninfo, not connected yet; NULL when out of memory. */
static pg_store_t *store_new(const char *conninfo, char *err, size_t errsz)
{
    pg_store_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->conninfo = strdup(conninfo)) == NULL) {
        free(s);
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->base.super.ops = &postgres_ops;
    s->base.tx = &pg_batch_tx;
    return s;
}

/* With a loop, the reader's connection is made by its first read, without
 * blocking (async.c); pg_set_loop on a store without one leaves it so. */
store_t *pg_reader_open(store_t *base, char *err, size_t errsz)
{
    const pg_store_t *s = pg_of(base);
    if (!s->aio.on) return store_postgres_open(s->conninfo, err, errsz);
    pg_store_t *r = store_new(s->conninfo, err, errsz);
    if (r == NULL) return NULL;
    pg_set_loop(&r->base.super, &s->aio.loop);
    return &r->base.super;
}

/* PostgreSQL checkpoints on its own, apart from every connection. */
void pg_set_writer(store_t *base)
{
    (void)base;
}

store_t *store_postgres_open(const char *conninfo, char *err, size_t errsz)
{
    if (!readable(conninfo, err, errsz)) return NULL;
    pg_store_t *s = store_new(conninfo, err, errsz);
    if (s == NULL) return NULL;
    if (!pg_connect(s, err, errsz)) {
        free(s->conninfo);
        free(s);
        return NULL;
    }
    return &s->base.super;
}
