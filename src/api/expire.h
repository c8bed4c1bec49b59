/*
 * expire.h: the trash's purge after --trash-retention, on the writer
 * thread between its batches (writer.c): a few leads per transaction,
 * each sending lead.purged as a purge by hand does.
 */
#ifndef CRMD_API_EXPIRE_H
#define CRMD_API_EXPIRE_H

#include <stdint.h>

#include "store/store.h"

/* Purges at most limit leads trashed before before (ms), in one
 * transaction on s (the writer's), recording each one's lead.purged event
 * at now; returns how many, or -1 when it failed (nothing of it done). */
int api_trash_expire_due(store_t *s, int64_t before, int limit, int64_t now);

#endif
