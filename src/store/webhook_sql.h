/*
 * webhook_sql.h: the webhooks' schema facts and statements that both
 * backends share (store/webhook.h), as schema.h holds the leads': the
 * column lists the row readers read by position, the bits of a partial
 * update, and the statements written alike in both dialects (P(n, type)
 * and MAX as in schema.h). Each backend adds the few it writes its own
 * way (the claim, the delete) and its migration.
 *
 * Private to src/store/.
 */
#ifndef CRMD_STORE_WEBHOOK_SQL_H
#define CRMD_STORE_WEBHOOK_SQL_H

#include "model/webhook.h"
#include "store/schema.h"

/* A webhook as every statement that reads one selects it. */
#define SCHEMA_WEBHOOK_COLS "id, url, events, description, active, secret, created_at, updated_at"
enum schema_webhook_col {
    WEBHOOK_COL_ID,
    WEBHOOK_COL_URL,
    WEBHOOK_COL_EVENTS,
    WEBHOOK_COL_DESCRIPTION,
    WEBHOOK_COL_ACTIVE,
    WEBHOOK_COL_SECRET,
    WEBHOOK_COL_CREATED_AT,
    WEBHOOK_COL_UPDATED_AT,
    WEBHOOK_NCOLS
};

/* A delivery attempt of the log. */
#define SCHEMA_DELIVERY_COLS                                                                                 \
    "id, event_id, type, attempt, status_code, duration_ms, error, next_retry_at, created_at"
enum schema_delivery_col {
    DELIVERY_COL_ID,
    DELIVERY_COL_EVENT,
    DELIVERY_COL_TYPE,
    DELIVERY_COL_ATTEMPT,
    DELIVERY_COL_STATUS,
    DELIVERY_COL_DURATION,
    DELIVERY_COL_ERROR,
    DELIVERY_COL_NEXT_RETRY,
    DELIVERY_COL_CREATED_AT,
    DELIVERY_NCOLS
};

/* An undelivered event of the outbox: its row in the queue of one webhook
 * (webhook_events e) and the payload all its webhooks share
 * (webhook_payloads p, stored once per event since schema version 11). */
#define SCHEMA_QUEUED_FROM "webhook_events e JOIN webhook_payloads p ON p.event_id = e.event_id"
#define SCHEMA_QUEUED_COLS                                                                                   \
    "e.seq, e.event_id, p.type, p.created_at, p.payload, e.attempts, e.first_at, e.next_at"
enum schema_queued_col {
    QUEUED_COL_SEQ,
    QUEUED_COL_EVENT,
    QUEUED_COL_TYPE,
    QUEUED_COL_CREATED_AT,
    QUEUED_COL_PAYLOAD,
    QUEUED_COL_ATTEMPTS,
    QUEUED_COL_FIRST_AT,
    QUEUED_COL_NEXT_AT,
    QUEUED_NCOLS
};

/* The same, and the webhook's url and state after them (the sender's
 * reads of a queue). */
#define SCHEMA_QUEUED_COLS_E SCHEMA_QUEUED_COLS ", w.url, w.active"
enum schema_queued_extra_col { QUEUED_COL_URL = QUEUED_NCOLS, QUEUED_COL_ACTIVE };

/* What a lease hands the sender. */
#define SCHEMA_LANE_COLS "id, app_id, url, secret"

/* The bits of a webhook's partial update, inside its SQL. */
#define SQL_WEBHOOK_F_URL 1
#define SQL_WEBHOOK_F_EVENTS 2
#define SQL_WEBHOOK_F_DESCRIPTION 4
#define SQL_WEBHOOK_F_ACTIVE 8
_Static_assert(SQL_WEBHOOK_F_URL == WEBHOOK_F_URL && SQL_WEBHOOK_F_EVENTS == WEBHOOK_F_EVENTS &&
                   SQL_WEBHOOK_F_DESCRIPTION == WEBHOOK_F_DESCRIPTION &&
                   SQL_WEBHOOK_F_ACTIVE == WEBHOOK_F_ACTIVE,
               "the webhook update's SQL bits must be model/webhook.h's WEBHOOK_F_*");

/* The ids of SCHEMA_WEBHOOK_SQL's statements: each backend's enum of
 * statements holds them. */
#define SCHEMA_WEBHOOK_STMT_IDS                                                                              \
    Q_WH_INSERT, Q_WH_GET, Q_WH_LIST, Q_WH_UPDATE, Q_WH_DELIVERIES, Q_EV_RECORD, Q_EV_NEAR_FULL,             \
        Q_EV_FULL_LOG, Q_EV_FULL_OFF, Q_OUT_QUEUE, Q_OUT_ATTEMPT, Q_OUT_DONE, Q_OUT_RETRY, Q_OUT_OK,         \
        Q_OUT_FAILED, Q_OUT_RELEASE, Q_OUT_RENEW, Q_OUT_DROP, Q_WH_IMPORT, Q_EV_IMPORT_PAYLOAD, Q_EV_IMPORT, \
        Q_WH_COUNTS, Q_WH_EXPORT, Q_EV_EXPORT, Q_OUT_OWNERS, Q_OUT_FREE, Q_OUT_PRUNE

/* clang-format off */
#define SCHEMA_WEBHOOK_KEY(P) "app_id = " P(1, int8) " AND id = " P(2, uuid)

#define SCHEMA_WEBHOOK_SETS(P)                                                                               \
    SCHEMA_SET_IF("url", P(3, int4), SQL_WEBHOOK_F_URL, P(4, text))                                          \
    SCHEMA_SET_IF("events", P(3, int4), SQL_WEBHOOK_F_EVENTS, P(5, int4))                                    \
    SCHEMA_SET_IF("description", P(3, int4), SQL_WEBHOOK_F_DESCRIPTION, P(6, text))                         \
    SCHEMA_SET_IF("active", P(3, int4), SQL_WEBHOOK_F_ACTIVE, "(" P(7, int4) " <> 0)")                      \
    /* Made active again: its failures so far no longer count. */                                         \
    "failing_since = CASE WHEN (" P(3, int4) " & " SCHEMA_STR(SQL_WEBHOOK_F_ACTIVE) ") <> 0 AND "            \
    P(7, int4) " <> 0 THEN 0 ELSE failing_since END, "

/* A page and its total in one statement (one snapshot): the first column
 * is the total, the rest the item's; an empty page is one row of NULLs.
 * The page holds the rows before the position AT, ID in the order (a
 * cursor's; the end of the order for a page by offset), so that an index
 * of (..., created_at, id) reads each page from where it starts. */
#define SCHEMA_WEBHOOK_PAGE(P, TABLE, COLS, WHERE, AT, ID, LIMIT)                                            \
    "SELECT c.n, p.* FROM (SELECT count(*) AS n FROM " TABLE " WHERE " WHERE ") c "                          \
    "LEFT JOIN (SELECT " COLS " FROM " TABLE " WHERE " WHERE " AND (created_at, id) < (" AT ", " ID ") "     \
    "ORDER BY created_at DESC, id DESC LIMIT " LIMIT ") p ON true "

/* What the delivery log says of an event dropped for a full backlog. */
#define WEBHOOK_FULL_TEXT "too many undelivered events are waiting; the webhook was made inactive"

/* The active webhooks of app P(1) that want a type whose bits are P(2)
 * and whose backlog holds more than P(3) (the cap less one) events, FULL
 * being the backend's test of the last (SCHEMA_BACKLOG_SCAN, or SQLite's
 * count kept on the row: store/sqlite/sql.c, migration 19). */
#define SCHEMA_BACKLOG_FULL(P, FULL)                                                                         \
    "app_id = " P(1, int8) " AND active AND (events & " P(2, int4) ") <> 0 AND " FULL

/* The backlog counted in the queue's index: up to P(3) + 1 entries of it
 * read, for each webhook, at each event (PostgreSQL's test). */
#define SCHEMA_BACKLOG_SCAN(P)                                                                               \
    "EXISTS (SELECT 1 FROM webhook_events q WHERE q.webhook_id = webhooks.id ORDER BY q.seq LIMIT 1 OFFSET " \
    P(3, int8) ")"

/* The webhooks an event of app P(1) whose type's bits are P(2) goes to:
 * a queue row for each, all naming the event's one payload (each backend
 * writes its Q_EV_RECORD, which stores both when any webhook wants it). */
#define SCHEMA_EV_WANTED(P) "webhooks WHERE app_id = " P(1, int8) " AND active AND (events & " P(2, int4) ") <> 0"

/* IN_ORDER(WHERE) is the condition of an UPDATE of several webhooks
 * (those WHERE holds), SKIP_LOCKED what the log's prune adds to its choice
 * of rows: PostgreSQL's lock the webhooks in the order of their ids and
 * skip the log rows another transaction holds (store/postgres/sql.c says
 * why); SQLite's, whose writers never wait for each other, are WHERE
 * itself and nothing. FULL is the backend's test of a full backlog
 * (SCHEMA_BACKLOG_FULL). */
#define SCHEMA_WEBHOOK_SQL(P, MAX, IN_ORDER, SKIP_LOCKED, FULL)                                              \
    [Q_WH_INSERT] = "INSERT INTO webhooks (app_id, " SCHEMA_WEBHOOK_COLS ") SELECT " P(1, int8) ", "         \
                    P(2, uuid) ", " P(3, text) ", " P(4, int4) ", " P(5, text) ", " P(6, int4) " <> 0, "     \
                    P(7, text) ", " P(8, int8) ", " P(9, int8) " WHERE (SELECT count(*) FROM webhooks "      \
                    "WHERE app_id = " P(1, int8) ") < " P(10, int4),                                         \
    [Q_WH_GET] = "SELECT " SCHEMA_WEBHOOK_COLS " FROM webhooks WHERE " SCHEMA_WEBHOOK_KEY(P),                \
    [Q_WH_LIST] = SCHEMA_WEBHOOK_PAGE(P, "webhooks", SCHEMA_WEBHOOK_COLS, "app_id = " P(1, int8),            \
                                      P(4, int8), P(5, uuid), P(2, int8) " OFFSET " P(3, int8))              \
                  "ORDER BY p.created_at DESC, p.id DESC",                                                   \
    [Q_WH_UPDATE] = "UPDATE webhooks SET " SCHEMA_WEBHOOK_SETS(P) SCHEMA_UPDATED_AT(P(8, int8), MAX)        \
                    "WHERE " SCHEMA_WEBHOOK_KEY(P) " RETURNING " SCHEMA_WEBHOOK_COLS,                        \
    /* No row at all when the app has no such webhook. */                                                  \
    [Q_WH_DELIVERIES] = SCHEMA_WEBHOOK_PAGE(P, "webhook_attempts", SCHEMA_DELIVERY_COLS,                     \
                                            "webhook_id = " P(2, uuid), P(5, int8), P(6, uuid),              \
                                            P(3, int8) " OFFSET " P(4, int8))                                \
                        "WHERE EXISTS (SELECT 1 FROM webhooks WHERE " SCHEMA_WEBHOOK_KEY(P) ") "             \
                        "ORDER BY p.created_at DESC, p.id DESC",                                             \
    /* The active webhooks of the app that want the type and whose backlog \
     * holds more than P(3) (the backlog's cap less one) events: the     \
     * log says the event was dropped, then they are made inactive.        */ \
    [Q_EV_FULL_LOG] = "INSERT INTO webhook_attempts (webhook_id, " SCHEMA_DELIVERY_COLS ") SELECT id, "      \
                      P(4, uuid) ", " P(5, uuid) ", " P(6, int4) ", 1, NULL, 0, 'dropped: " WEBHOOK_FULL_TEXT \
                      "', NULL, " P(7, int8) " FROM webhooks WHERE " SCHEMA_BACKLOG_FULL(P, FULL),           \
    [Q_EV_FULL_OFF] = "UPDATE webhooks SET active = false WHERE " IN_ORDER(SCHEMA_BACKLOG_FULL(P, FULL)),    \
    /* The least room left in the backlogs (of cap P(3)) of the app's     \
     * active webhooks of any of the types P(2), each counted up to the   \
     * cap; no row for none (PostgreSQL's look ahead).                   */ \
    [Q_EV_NEAR_FULL] = "SELECT min(" P(3, int8) " - (SELECT count(*) FROM (SELECT 1 FROM webhook_events q "   \
                       "WHERE q.webhook_id = webhooks.id LIMIT " P(3, int8) ") AS c)) FROM webhooks WHERE "   \
                       "app_id = " P(1, int8) " AND active AND (events & " P(2, int4) ") <> 0 "              \
                       "HAVING count(*) > 0",                                                                \
    [Q_OUT_QUEUE] = "SELECT " SCHEMA_QUEUED_COLS_E " FROM " SCHEMA_QUEUED_FROM " JOIN webhooks w ON "         \
                    "w.id = e.webhook_id WHERE e.webhook_id = " P(1, uuid) " ORDER BY e.seq LIMIT " P(2, int8), \
    /* Not for a webhook deleted meanwhile (its log went with it). */                                      \
    [Q_OUT_ATTEMPT] = "INSERT INTO webhook_attempts (webhook_id, " SCHEMA_DELIVERY_COLS ") SELECT "          \
                      P(1, uuid) ", " P(2, uuid) ", " P(3, uuid) ", " P(4, int4) ", " P(5, int4) ", "        \
                      P(6, int4) ", " P(7, int8) ", " P(8, text) ", " P(9, int8) ", " P(10, int8) " "        \
                      "WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = " P(1, uuid) ")",                     \
    [Q_OUT_DONE] = "DELETE FROM webhook_events WHERE seq = " P(1, int8),                                    \
    [Q_OUT_RETRY] = "UPDATE webhook_events SET attempts = " P(2, int4) ", first_at = " P(3, int8) ", "       \
                    "next_at = " P(4, int8) " WHERE seq = " P(1, int8),                                      \
    [Q_OUT_OK] = "UPDATE webhooks SET failing_since = 0 WHERE id = " P(1, uuid) " AND failing_since <> 0",  \
    /* Failing since the first failure after a success; inactive once that  \
     * is disable_after ago. The row comes back when it was active. */      \
    [Q_OUT_FAILED] = "UPDATE webhooks SET failing_since = CASE WHEN failing_since = 0 THEN " P(2, int8)      \
                     " ELSE failing_since END, active = CASE WHEN failing_since <> 0 AND " P(2, int8)        \
                     " - failing_since >= " P(3, int8) " THEN false ELSE active END "                        \
                     "WHERE id = " P(1, uuid) " AND active RETURNING active",                                \
    [Q_OUT_RELEASE] = "UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE id = " P(1, uuid)       \
                      " AND lease_owner = " P(2, text),                                                      \
    [Q_OUT_RENEW] = "UPDATE webhooks SET lease_until = " P(2, int8) " WHERE "                              \
                    IN_ORDER("lease_owner = " P(1, text) " AND active") " RETURNING " SCHEMA_LANE_COLS,      \
    [Q_OUT_OWNERS] = "SELECT DISTINCT lease_owner FROM webhooks WHERE lease_owner IS NOT NULL",            \
    [Q_OUT_FREE] = "UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE "                        \
                   IN_ORDER("lease_owner = " P(1, text)),                                                    \
    /* Webhook by webhook, so that each reads its part of the log's key   \
     * (webhook_id, created_at, id) from its start.                         */ \
    [Q_OUT_PRUNE] = "DELETE FROM webhook_attempts WHERE (webhook_id, created_at, id) IN (SELECT a.webhook_id, " \
                    "a.created_at, a.id FROM webhooks w JOIN webhook_attempts a ON a.webhook_id = w.id AND "   \
                    "a.created_at < " P(1, int8) " LIMIT " P(2, int8) SKIP_LOCKED ")",                         \
    [Q_OUT_DROP] = "UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE "                        \
                   IN_ORDER("lease_owner = " P(1, text) " AND NOT active"),                                  \
    [Q_WH_IMPORT] = "INSERT INTO webhooks (app_id, " SCHEMA_WEBHOOK_COLS ") VALUES (" P(1, int8) ", "        \
                    P(2, uuid) ", " P(3, text) ", " P(4, int4) ", " P(5, text) ", " P(6, int4) " <> 0, "     \
                    P(7, text) ", " P(8, int8) ", " P(9, int8) ")",                                          \
    /* The payload of an event that several queues hold comes once per   \
     * queue row: the first stores it. */                                  \
    [Q_EV_IMPORT_PAYLOAD] = "INSERT INTO webhook_payloads (event_id, type, created_at, payload) VALUES ("    \
                            P(1, uuid) ", " P(2, int4) ", " P(3, int8) ", " P(4, text) ") "                 \
                            "ON CONFLICT (event_id) DO NOTHING",                                             \
    [Q_EV_IMPORT] = "INSERT INTO webhook_events (webhook_id, event_id, attempts, first_at, next_at) VALUES (" \
                    P(1, uuid) ", " P(2, uuid) ", " P(3, int4) ", " P(4, int8) ", " P(5, int8) ")",          \
    /* The undelivered events are the queue rows with their payload. */   \
    [Q_WH_COUNTS] = "SELECT (SELECT count(*) FROM webhooks), (SELECT count(*) FROM " SCHEMA_QUEUED_FROM ")", \
    /* Bulk copy's exports: the owner's id first, the rest from column 1. */                               \
    [Q_WH_EXPORT] = "SELECT app_id, " SCHEMA_WEBHOOK_COLS " FROM webhooks ORDER BY app_id, created_at, id",  \
    [Q_EV_EXPORT] = "SELECT e.webhook_id, " SCHEMA_QUEUED_COLS " FROM " SCHEMA_QUEUED_FROM " ORDER BY e.seq"
/* clang-format on */

#endif
