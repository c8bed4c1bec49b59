/*
 * history.h: recording a lead's history (extensions.md, "History"). Each
 * change a write makes goes through api_change_record (change.h), which
 * calls this in the write's batch, so an acknowledged change is always in
 * the history and a failed one never. The list is find.c's
 * (api_history_list).
 */
#ifndef CRMD_API_HISTORY_H
#define CRMD_API_HISTORY_H

#include "api/change.h"

/* Records change c of app's lead, made by actor (a token's subject; ""
 * for none) at now, in its history: for a create or an update, the
 * attributes that differ before and after it; nothing for an update that
 * changed no attribute, nor for a lead deleted for good (its history goes
 * with it). */
store_rc_t api_history_add(store_t *s, int64_t app, const char *actor, int64_t now, const api_change_t *c);

/* Copies the texts of refs (n of them; unset ones left) to at, one after
 * another, each NUL-terminated, pointing them at the copies; returns the
 * end of what it wrote. */
char *api_texts_copy(text_ref_t *refs[], int n, char *at);

#endif
