/*
 * postgres.c: the PostgreSQL backend as store.c sees it: its table of
 * operations and store_postgres_open.
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

store_t *store_postgres_open(const char *conninfo, char *err, size_t errsz)
{
    pg_store_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->conninfo = strdup(conninfo)) == NULL) {
        free(s);
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->base.super.ops = &postgres_ops;
    s->base.tx = &pg_batch_tx;
    if (!pg_connect(s, err, errsz)) {
        free(s->conninfo);
        free(s);
        return NULL;
    }
    return &s->base.super;
}
