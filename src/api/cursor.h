/*
 * cursor.h: list cursors (extensions.md, "Cursors"): where a page ends, as
 * an opaque string a client hands back for the next page.
 *
 * A cursor holds the sort values of the last row of its page (store.h's
 * store_pos_t), so the next page starts right after that row whatever was
 * created or deleted meanwhile, and a MAC that binds it to its app, its
 * route (and lead), and the digest of its filters and sort. A cursor used
 * with other filters, another sort, another app, or changed in any byte
 * does not verify, and is refused (a 422 on `cursor`). The MAC is keyed by
 * a secret derived from the token signing key (auth/jwt.h), which every
 * process on one database shares, so a cursor from one works on another;
 * api/find.c reads a cursor back with the secret of any of crmd's keys
 * the server still verifies with, so a key rotation breaks no walk.
 *
 * Form: base64url (no padding) of a version byte, each key's value (a
 * tag, then 8 bytes of integer, 16 of UUID, or a 2-byte length and text),
 * and the first 16 bytes of HMAC-SHA256 over the binding and all of that.
 */
#ifndef CRMD_API_CURSOR_H
#define CRMD_API_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A cursor is at most this many characters (a folded name of 255
 * characters fits, however many bytes each takes). */
#define API_CURSOR_MAX 2048
#define API_CURSOR_DIGEST 32

/* The lists a cursor may belong to. */
enum api_cursor_kind {
    CURSOR_LEADS = 1,
    CURSOR_LEAD_FOLLOWS,
    CURSOR_FOLLOWS,
    CURSOR_WEBHOOKS,   /* newest first: created_at, id (find.h's api_newest_...) */
    CURSOR_DELIVERIES, /* the same, of one webhook */
    CURSOR_TRASH,      /* deleted_at then id, descending: as LEAD_KEY_UPDATED and LEAD_KEY_ID */
    CURSOR_HISTORY     /* a lead's changes by number, descending: as LEAD_KEY_CREATED */
};

/* What a cursor is bound to. */
typedef struct api_cursor_bind {
    const unsigned char *secret; /* JWT_SECRET_BYTES */
    int64_t app;
    int kind;         /* enum api_cursor_kind */
    const char *lead; /* the lead of CURSOR_LEAD_FOLLOWS and CURSOR_HISTORY, the webhook of
                       * CURSOR_DELIVERIES, else "" */
    unsigned char digest[API_CURSOR_DIGEST]; /* of the filters and the sort */
} api_cursor_bind_t;

/* Writes the cursor of pos, in a list ordered by order[0..n), into out
 * (cap bytes, NUL-terminated); returns its length, or 0 when it does not
 * fit. */
size_t api_cursor_encode(const api_cursor_bind_t *b, const store_sort_t *order, int n, const store_pos_t *pos,
                         char *out, size_t cap);

/* Reads text[0..len) back into *pos (its texts in pos->text); false when it
 * is not a cursor of this binding and order. */
bool api_cursor_decode(const api_cursor_bind_t *b, const store_sort_t *order, int n, const char *text,
                       size_t len, store_pos_t *pos);

#endif
