/*
 * webhook.h: webhook subscriptions and their delivery log, as the store and
 * the handlers see them, and their JSON (extensions.md, "Webhooks").
 *
 * Like record.h's records, a webhook_t or delivery_t never owns its
 * strings: they point into a request's tree, a write's own copy, or a
 * database row, and the producer says how long that lives.
 */
#ifndef CRMD_MODEL_WEBHOOK_H
#define CRMD_MODEL_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "model/codec.h"
#include "model/jsonw.h"
#include "model/record.h"

/* Limits of the attributes (openapi/DECISIONS.md). */
#define WEBHOOK_URL_MAX 2048        /* characters (bytes: a URL is ASCII) */
#define WEBHOOK_DESCRIPTION_MAX 255 /* characters */
#define WEBHOOK_MAX_PER_APP 100
/* "whsec_" and 32 letters and digits, with a NUL. */
#define WEBHOOK_SECRET_PREFIX "whsec_"
#define WEBHOOK_SECRET_CHARS 32
#define WEBHOOK_SECRET_BUFSZ (sizeof WEBHOOK_SECRET_PREFIX - 1 + WEBHOOK_SECRET_CHARS + 1)

typedef struct webhook {
    char id[UUID_BUFSZ];
    text_ref_t url;
    unsigned events; /* model/event.h: a bit per type, EVENT_ALL for `*` */
    text_ref_t description;
    bool active;
    text_ref_t secret; /* the HMAC key; never rendered but by the creation's 201 */
    int64_t created_at, updated_at;
} webhook_t;

/* Which attributes an update names (a PUT changes only those). */
enum webhook_field {
    WEBHOOK_F_URL = 1u << 0,
    WEBHOOK_F_EVENTS = 1u << 1,
    WEBHOOK_F_DESCRIPTION = 1u << 2,
    WEBHOOK_F_ACTIVE = 1u << 3
};

typedef struct webhook_patch {
    unsigned fields; /* enum webhook_field bits */
    webhook_t v;
} webhook_patch_t;

/* One delivery attempt, as the log keeps it. */
typedef struct delivery {
    char id[UUID_BUFSZ]; /* the attempt's id: the Crmd-Delivery header */
    char event_id[UUID_BUFSZ];
    int type;        /* model/event.h */
    int attempt;     /* 1 for the event's first */
    int status_code; /* the receiver's; 0 when no answer came */
    int64_t duration_ms;
    text_ref_t error;      /* why it failed; unset on success */
    int64_t next_retry_at; /* ms; 0 after a success or once the event is given up */
    int64_t created_at;
} delivery_t;

/* Decodes {"webhook": {...}} into a patch, every problem into errs (the
 * url is checked here for its type and length only: its form and address
 * are webhook/target.h's). With creating true, url and events are
 * required, description defaults to null and active to true, and every
 * field bit is set. Strings point into root. */
void webhook_decode(const json_t *root, bool creating, webhook_patch_t *out, verrs_t *errs);

/* Writes a webhook resource object; with_secret adds attributes.secret
 * (the creation's 201 only). */
void webhook_encode(jw_t *w, const webhook_t *wh, bool with_secret);

/* Writes a webhook_delivery resource object. */
void delivery_encode(jw_t *w, const delivery_t *d);

/* Makes a new secret ("whsec_" and WEBHOOK_SECRET_CHARS letters and
 * digits from OpenSSL's RAND_bytes) into out; -1 when no randomness is
 * available. */
int webhook_secret_new(char out[WEBHOOK_SECRET_BUFSZ]);

#endif
