/*
 * history.h: recording a lead's history (extensions.md, "History") on the
 * writer thread, in the batch of the change it records, so that an
 * acknowledged change is always in the history and a failed one never.
 * The list is find.c's (api_history_list).
 */
#ifndef CRMD_API_HISTORY_H
#define CRMD_API_HISTORY_H

#include <stdbool.h>

#include "api/api_int.h"

/* A record read inside a write, with its own copy of its texts (a store
 * callback's strings live only during the call): a version before or
 * after a change. */
typedef struct api_copy {
    bool found;
    lead_t lead;
    follow_t follow;
    char *text; /* the texts' copies; api_copy_free frees them */
} api_copy_t;
/* Store callbacks keeping the record they are given in the api_copy_t ctx
 * (found false when out of memory). */
void api_copy_lead(void *ctx, const lead_t *lead);
void api_copy_follow(void *ctx, const follow_t *follow);
void api_copy_free(api_copy_t *c);
/* Copies the texts of refs (n of them; unset ones left) to at, one after
 * another, each NUL-terminated, pointing them at the copies; returns the
 * end of what it wrote. */
char *api_texts_copy(text_ref_t *refs[], int n, char *at);

/* Records change action (enum store_change_action) of lead lead_id made
 * by w: for a create or update, the attributes that differ between
 * before (NULL for a create) and after, lead_t or follow_t as the action
 * says; nothing for an update that changed no attribute. false when it
 * could not be recorded: w is then answered 503 and its batch undone. */
bool api_history_record(store_t *s, api_write_t *w, int action, const char *lead_id, const void *before,
                        const void *after);

#endif
