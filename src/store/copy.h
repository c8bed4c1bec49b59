/*
 * copy.h: `crmd copy`, moving a whole database from one store to another
 * (SQLite to PostgreSQL, PostgreSQL to SQLite, or between two of a kind)
 * through the store interface's bulk copy functions.
 */
#ifndef CRMD_STORE_COPY_H
#define CRMD_STORE_COPY_H

#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"

/* Copies every app, signing key, issued and revoked token, lead, follow,
 * webhook (its secret included), undelivered event, trashed lead and follow, history entry and kept
 * idempotency answer from the database at from_url to the one at to_url,
 * keeping ids and timestamps, in one transaction on the target; both are migrated first. Without append, a
 * target that already holds apps, leads, follows or tokens is refused (STORE_CONFLICT) and left as it was;
 * with append, apps whose key the target already has receive the copied leads. Counts are checked in the
 * transaction before it commits (any mismatch undoes the copy) and again after. What was moved goes to out,
 * problems to err. */
store_rc_t store_copy(const char *from_url, const char *to_url, bool append, FILE *out, FILE *err);

#endif
