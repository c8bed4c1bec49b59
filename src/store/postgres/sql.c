/*
 * sql.c: the PostgreSQL backend's SQL text, and nothing else.
 *
 * Kept apart from the code that runs it so that the whole schema and every
 * statement can be read in one place, and compared with SQLite's
 * (store/sqlite/sql.c): the tables and versions are the same, the dialects
 * differ. Column lists, update bits and CHECK ranges come from
 * store/schema.h. Every parameter carries a cast, so its type never
 * depends on inference.
 */
#include "store/postgres/pg_int.h"

/* PostgreSQL's parameter n, of the given type. */
#define P(n, type) "$" #n "::" #type

/* Advisory lock keys: 'crmd' in the high half. That half is crmd's own
 * for these fixed keys: an Idempotency-Key's lock (idem.c: lock_key), the
 * only other one-key lock, never has it. */
#define MIGRATE_LOCK "7166449152688848897" /* 0x63726d6400000001 */
#define REVOKE_LOCK "7166449152688848898"  /* 0x63726d6400000002 */
/* An app's webhook creates, one at a time across processes (webhooks.c):
 * the two-key lock space, ("crmd", the app id), apart from the one-key
 * locks above. Apps whose ids agree modulo 2^31 - 1 share it, harmlessly. */
#define WEBHOOKS_LOCK "1668443492" /* 0x63726d64 */

/* Rows per FETCH when exporting. */
#define EXPORT_BATCH "1000"

/* The webhooks (store/webhook.h), as SQLite's (store/sqlite/sql.c), with
 * uuid ids and a boolean active. */
#define PG_MIGRATION_WEBHOOKS                                                                                \
    "CREATE TABLE webhooks ("                                                                                \
    "  id UUID PRIMARY KEY,"                                                                                 \
    "  app_id BIGINT NOT NULL REFERENCES apps(id),"                                                          \
    "  url TEXT NOT NULL,"                                                                                   \
    "  events INTEGER NOT NULL,"                                                                             \
    "  description TEXT,"                                                                                    \
    "  active BOOLEAN NOT NULL,"                                                                             \
    "  secret TEXT NOT NULL,"                                                                                \
    "  created_at BIGINT NOT NULL,"                                                                          \
    "  updated_at BIGINT NOT NULL,"                                                                          \
    "  failing_since BIGINT NOT NULL DEFAULT 0,"                                                             \
    "  lease_owner TEXT,"                                                                                    \
    "  lease_until BIGINT NOT NULL DEFAULT 0);"                                                              \
    "CREATE INDEX webhooks_newest ON webhooks (app_id, created_at DESC, id DESC);"                           \
    "CREATE TABLE webhook_events ("                                                                          \
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"                                                 \
    "  webhook_id UUID NOT NULL,"                                                                            \
    "  event_id UUID NOT NULL,"                                                                              \
    "  type INTEGER NOT NULL,"                                                                               \
    "  created_at BIGINT NOT NULL,"                                                                          \
    "  payload TEXT NOT NULL,"                                                                               \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                                 \
    "  first_at BIGINT NOT NULL DEFAULT 0,"                                                                  \
    "  next_at BIGINT NOT NULL DEFAULT 0);"                                                                  \
    "CREATE INDEX webhook_events_queue ON webhook_events (webhook_id, seq);"                                 \
    "CREATE TABLE webhook_attempts ("                                                                        \
    "  webhook_id UUID NOT NULL,"                                                                            \
    "  id UUID NOT NULL,"                                                                                    \
    "  event_id UUID NOT NULL,"                                                                              \
    "  type INTEGER NOT NULL,"                                                                               \
    "  attempt INTEGER NOT NULL,"                                                                            \
    "  status_code INTEGER,"                                                                                 \
    "  duration_ms BIGINT NOT NULL,"                                                                         \
    "  error TEXT,"                                                                                          \
    "  next_retry_at BIGINT,"                                                                                \
    "  created_at BIGINT NOT NULL,"                                                                          \
    "  PRIMARY KEY (webhook_id, created_at, id));"

/* Migration 11, as SQLite's (store/sqlite/sql.c): each event's payload
 * once, in webhook_payloads; the undelivered events of version 10 keep
 * their rows, numbers and state, each event's payload taken from its first
 * row. Dropping the columns rewrites nothing; the space of the old copies
 * comes back as their rows are delivered. */
#define PG_V11_PAYLOADS                                                                                      \
    "CREATE TABLE webhook_payloads ("                                                                        \
    "  event_id UUID PRIMARY KEY,"                                                                           \
    "  type INTEGER NOT NULL,"                                                                               \
    "  created_at BIGINT NOT NULL,"                                                                          \
    "  payload TEXT NOT NULL);"                                                                              \
    "INSERT INTO webhook_payloads (event_id, type, created_at, payload) "                                    \
    "  SELECT DISTINCT ON (event_id) event_id, type, created_at, payload FROM webhook_events "               \
    "  ORDER BY event_id, seq;"                                                                              \
    "ALTER TABLE webhook_events DROP COLUMN type, DROP COLUMN created_at, DROP COLUMN payload;"              \
    "CREATE INDEX webhook_events_event ON webhook_events (event_id);"

/* Every statement that locks several webhooks locks them in the order of
 * their ids, and a transaction takes all it will lock in its first such
 * statement (a sender's report, Q_OUT_LOCK), so that no two transactions
 * (the writer's batches, the senders' reports and lease releases, of one
 * process or several) ever hold one webhook each while waiting for the
 * other's: PostgreSQL would cancel one of them after deadlock_timeout (a
 * second). One circle is left: a writer's batch in which the backlogs of
 * two webhooks fill locks them write by write, so a report can still meet
 * it (docs/scaling.md); PostgreSQL cancels one side, and the writer runs
 * its batch again or the sender reports again. An UPDATE locks the rows
 * it changes in the order it finds them,
 * hence the ordered, locking choice of its rows (ORDER BY is applied
 * before the lock). The prune of the log never waits: it skips the rows a
 * webhook's delete is taking (the delete takes them in its own order). */
#define PG_IN_ID_ORDER(where) "id IN (SELECT id FROM webhooks WHERE " where " ORDER BY id FOR NO KEY UPDATE)"

/* The webhooks' statements PostgreSQL writes its own way: the delete, in
 * two statements, the webhook's row, then its events and log (returning
 * the ids of the events it took: their payloads may be unused now); the
 * claim, which skips the rows another sender is claiming (SKIP LOCKED) and
 * re-checks each lease it locks, so no two senders lease one webhook; an
 * event's record, its payload and its queue rows in one statement.
 *
 * The record locks the webhooks it queues the event for (FOR KEY SHARE,
 * which only a delete waits for): a delete that comes first makes it skip
 * the webhook, and one that comes while the writer's transaction is open
 * waits for its commit, and its second statement (a new snapshot) then
 * takes the rows that writer queued. Without it, those rows, and their
 * payload, would be left behind for a webhook that no longer exists. The
 * claim's lock (FOR NO KEY UPDATE, which is what its UPDATE takes anyway)
 * does not wait for it, nor skip a webhook a writer is queueing for.
 *
 * A payload goes when no queue row names it any more. Two transactions
 * that each take one of an event's last two rows would each still see the
 * other's (neither has committed), and keep it: so whoever takes queue
 * rows then locks their payloads (Q_PAYLOAD_LOCK, in the order of their
 * ids, so that two such transactions never wait for each other in a
 * circle) and only then, in a later statement (a new snapshot, in which
 * the other's commit shows), drops those no row names (Q_PAYLOAD_DROP).
 * The last of them to get the lock sees all the others' rows gone. $1 is
 * an array of event ids. */
/* clang-format off */
#define PG_WEBHOOK_SQL                                                                                       \
    [Q_WH_APP_LOCK] = "SELECT pg_advisory_xact_lock(" WEBHOOKS_LOCK ", ($1::int8 % 2147483647)::int4)",       \
    [Q_WH_DELETE] = "DELETE FROM webhooks WHERE " SCHEMA_WEBHOOK_KEY(P),                                     \
    [Q_WH_DELETE_QUEUE] = "WITH e AS (DELETE FROM webhook_events WHERE webhook_id = $1::uuid "               \
                          "RETURNING event_id), "                                                            \
                          "a AS (DELETE FROM webhook_attempts WHERE webhook_id = $1::uuid) "                 \
                          "SELECT DISTINCT event_id FROM e",                                                 \
    [Q_OUT_CLAIM] = "UPDATE webhooks w SET lease_owner = $1::text, lease_until = $2::int8 FROM ("            \
                    "SELECT c.id FROM webhooks c WHERE c.active AND c.lease_until <= $3::int8 AND (SELECT "  \
                    "e.next_at FROM webhook_events e WHERE e.webhook_id = c.id ORDER BY e.seq LIMIT 1) "     \
                    "<= $3::int8 LIMIT $4::int8 FOR NO KEY UPDATE SKIP LOCKED) c WHERE w.id = c.id "         \
                    "RETURNING w.id, w.app_id, w.url, w.secret",                                             \
    /* The payload only when some webhook wants the event. */              \
    [Q_EV_RECORD] = "WITH w AS (SELECT id FROM " SCHEMA_EV_WANTED(P) " ORDER BY id FOR KEY SHARE), "         \
                    "p AS (INSERT INTO webhook_payloads (event_id, type, created_at, payload) SELECT "       \
                    "$3::uuid, $4::int4, $5::int8, $6::text WHERE EXISTS (SELECT 1 FROM w)) "                \
                    "INSERT INTO webhook_events (webhook_id, event_id) SELECT id, $3::uuid FROM w",          \
    /* Every webhook a report changes, before their queue rows (a delete's \
     * order): those of its outcomes, and those its owner leases.         */ \
    [Q_OUT_LOCK] = "SELECT 1 FROM webhooks WHERE id = ANY($1::uuid[]) OR lease_owner = $2::text ORDER BY id " \
                   "FOR NO KEY UPDATE",                                                                      \
    [Q_PAYLOAD_LOCK] = "SELECT 1 FROM webhook_payloads WHERE event_id = ANY($1::uuid[]) ORDER BY event_id "  \
                       "FOR UPDATE",                                                                         \
    [Q_PAYLOAD_DROP] = "DELETE FROM webhook_payloads p WHERE p.event_id = ANY($1::uuid[]) AND NOT EXISTS ("  \
                       "SELECT 1 FROM webhook_events e WHERE e.event_id = p.event_id)"
/* clang-format on */

/* One migration per entry, applied in order; entry i brings the database
 * to version i + 1 (kept in crmd_schema). Never edit an entry that has
 * shipped: append a new one. Ids are uuid rather than text: indexes a
 * third smaller (see docs/scaling.md), and they order by bytes like
 * SQLite's text ids whatever the database's collation. */
/* clang-format off */
/* Migration 15's two statements (see its entry). */
#define PG_V15_FOLLOWS_STATE                                                                                 \
    "DROP INDEX follows_app_state;"                                                                          \
    "CREATE INDEX follows_app_state ON follows (app_id, status, due_at, created_at, id) INCLUDE (lead_id);"

const char *const pg_migrations[SCHEMA_VERSION] = {
    /* 1: apps, signing keys, leads and follows. */
    "CREATE TABLE apps ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  disabled BOOLEAN NOT NULL DEFAULT false,"
    "  created_at BIGINT NOT NULL,"
    "  lead_count BIGINT NOT NULL DEFAULT 0 CHECK (lead_count >= 0));"
    "CREATE TABLE signing_keys ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  pem TEXT NOT NULL);"
    "CREATE TABLE leads ("
    "  app_id BIGINT NOT NULL REFERENCES apps(id),"
    "  id UUID NOT NULL,"
    "  name TEXT NOT NULL,"
    "  source TEXT,"
    "  account_id UUID,"
    "  contact_id UUID,"
    "  value_cents BIGINT CHECK (value_cents >= 0),"
    SCHEMA_V1_LEAD_CHECKED
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  PRIMARY KEY (app_id, id));"
    "CREATE INDEX leads_newest ON leads (app_id, created_at DESC, id DESC);"
    "CREATE TABLE follows ("
    "  app_id BIGINT NOT NULL,"
    "  lead_id UUID NOT NULL,"
    "  id UUID NOT NULL,"
    "  title TEXT NOT NULL,"
    "  description TEXT,"
    "  due_at BIGINT,"
    SCHEMA_V1_FOLLOW_CHECKED
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  PRIMARY KEY (app_id, lead_id, id),"
    "  FOREIGN KEY (app_id, lead_id) REFERENCES leads (app_id, id) ON DELETE CASCADE);"
    "CREATE INDEX follows_due ON follows (app_id, lead_id, due_at ASC NULLS LAST, created_at, id);",
    /* 2: revoked tokens, polled by every server thread by sequence number. */
    "CREATE TABLE revoked_tokens ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  jti TEXT NOT NULL UNIQUE,"
    "  revoked_at BIGINT NOT NULL);",
    /* 3: the tokens this database issued, so that revoking an id it never
     * issued (a typo) is an error instead of a silent success. */
    "CREATE TABLE issued_tokens ("
    "  jti TEXT PRIMARY KEY,"
    "  app_id BIGINT NOT NULL REFERENCES apps(id),"
    "  subject TEXT NOT NULL,"
    "  issued_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL);",
    /* 4: several signing keys (crmd key rotate), as SQLite's version 4:
     * the key of version 3 becomes seq 1 (others count from 2), untracked
     * (signed_until -1). */
    "CREATE TABLE signing_keys_v4 ("
    "  seq BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 2) PRIMARY KEY,"
    "  pem TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  signed_until BIGINT NOT NULL,"
    "  retired_at BIGINT NOT NULL DEFAULT 0);"
    "INSERT INTO signing_keys_v4 (seq, pem, created_at, signed_until) "
    "  SELECT 1, pem, (extract(epoch FROM now()) * 1000)::int8, -1 FROM signing_keys;"
    "DROP TABLE signing_keys;"
    "ALTER TABLE signing_keys_v4 RENAME TO signing_keys;",
    /* 5: the folded name and source (schema.h), compared byte by byte
     * like SQLite's; migrate.c fills them in from C (fold.c) right after. */
    "ALTER TABLE leads ADD COLUMN name_fold TEXT COLLATE \"C\", ADD COLUMN source_fold TEXT COLLATE \"C\";",
    /* 6: what finding leads needs: the indexes, the totals, and substring
     * search by trigrams (pg_trgm, from PostgreSQL's contrib; a trusted
     * extension, so any role that may create in the database may add it). */
    SCHEMA_V6_INDEXES
    SCHEMA_V6_TOTALS
    "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
    "CREATE INDEX leads_name_trgm ON leads USING gin (name_fold gin_trgm_ops);"
    "CREATE INDEX leads_source_trgm ON leads USING gin (source_fold gin_trgm_ops);",
    /* Webhooks. */
    PG_MIGRATION_WEBHOOKS,
    /* 8: the trash, idempotency keys and the history (schema.h). */
    SCHEMA_V8_TRASH("UUID", "BIGINT") ";" SCHEMA_V8_TRASH_REST("UUID", "BIGINT") ";"
    SCHEMA_V8_IDEM("BIGINT") ";" SCHEMA_V8_IDEM_INDEX
    SCHEMA_V8_HISTORY("UUID", "BIGINT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    /* 9: the source, account and contact indexes without the summed
     * columns (schema.h): smaller indexes, and PostgreSQL reads the few
     * leads of an account or a contact from the table as cheaply. */
    SCHEMA_V9_INDEXES,
    /* 10: SQLite's search index takes keys in the list's order; pg_trgm's
     * index has no keys of its own, so nothing changes here. */
    "SELECT 1",
    /* 11: each event's payload once, whatever the number of its webhooks. */
    PG_V11_PAYLOADS,
    /* 12: SQLite's lead indexes stored ascending (measured on SQLite
     * only); nothing changes here. */
    "SELECT 1",
    /* 13: SQLite's idempotency keys in a rowid table beside a unique
     * index; here the table is a heap beside its primary key's index
     * already, so nothing changes. */
    "SELECT 1",
    /* 14: SQLite's sort indexes carry the stage and status so that its
     * walk tests them in the index; here such a page is read as before
     * (measured on SQLite only), so nothing changes. */
    "SELECT 1",
    /* 15: follows_app_state carries each follow's lead, so that the
     * overdue and open follows of some leads (a filtered summary, the
     * has_overdue and has_open_follows filters) are read from the index
     * alone; without it each overdue follow's row was read for its lead,
     * and with many overdue follows PostgreSQL scanned follows whole
     * instead (docs/architecture.md). SQLite's index carries it already
     * (the primary key of a WITHOUT ROWID table). */
    PG_V15_FOLLOWS_STATE,
    /* 16: SQLite's history seq without AUTOINCREMENT, which cost it a page
     * per commit; here seq is an identity column, whose sequence is not
     * written in the transaction's pages, so nothing changes. */
    "SELECT 1",
    /* 17: SQLite's history as a chain from each lead's row instead of an
     * index (measured on SQLite only); here the index stays. */
    "SELECT 1",
    /* 18: SQLite's webhook_attempts with its key's columns first, for
     * SQLite 3.40's integrity_check; nothing here. */
    "SELECT 1",
    /* 19: SQLite's count of each webhook's queue rows, for its backlog's
     * test; here the test still reads the queue's index (webhook_sql.h's
     * SCHEMA_BACKLOG_SCAN): a count on the webhook's row would have every
     * writer's batch lock the rows of the webhooks it queues for (FOR NO
     * KEY UPDATE, where it takes FOR KEY SHARE), which the senders' reports
     * and the other processes' writers would wait for. */
    "SELECT 1",
};

#define FOLLOW_ORDER "due_at ASC NULLS LAST, created_at, id"

const char *const pg_stmt_sql[Q__COUNT] = {
    SCHEMA_SHARED_SQL(P, "GREATEST"),
    /* The first key is seq 1, stored only into an empty table: two first
     * uses at once both try seq 1, and the second finds it taken. */
    [Q_KEY_FIRST] = "INSERT INTO signing_keys (seq, pem, created_at, signed_until, retired_at) "
                    "SELECT 1, $1::text, $2::int8, $3::int8, $4::int8 "
                    "WHERE NOT EXISTS (SELECT 1 FROM signing_keys) ON CONFLICT (seq) DO NOTHING",
    [Q_KEY_ADD] = "INSERT INTO signing_keys (pem, created_at, signed_until, retired_at) "
                  "VALUES ($1::text, $2::int8, $3::int8, $4::int8)",
    /* Inside a batch a read may precede a write that depends on it: the
     * row lock keeps it true until the batch ends (store.h promises it). */
    [Q_LEAD_GET_LOCK] = "SELECT " SCHEMA_LEAD_COLS " FROM leads WHERE " SCHEMA_LEAD_KEY(P) " FOR UPDATE",
    [Q_FOLLOW_GET_LOCK] = "SELECT " SCHEMA_FOLLOW_COLS " FROM follows WHERE " SCHEMA_FOLLOW_KEY(P) " FOR UPDATE",
    /* The count and the page in one statement, hence one snapshot: they
     * always agree. The app row always comes back (with NULL lead columns
     * when the page is empty), and a page past the end is not scanned.
     * The page's keys come from leads_newest alone (an index-only scan, so
     * the rows OFFSET skips are never read from the table; 27 ms instead
     * of 580 ms at offset 199,000 here); only the page's rows are read,
     * each by its key (the OFFSET 0 keeps that lookup a nested loop: a
     * server thread's connection runs generic plans, see async.c, and a
     * plan made without knowing LIMIT would rather hash-join the app's
     * whole table, 17 ms instead of 0.06 ms for a page of 15). */
    [Q_LEAD_LIST] = "SELECT a.lead_count, l.* FROM apps a LEFT JOIN LATERAL ("
                    "  SELECT l.* FROM (SELECT id FROM leads"
                    "    WHERE app_id = $1::int8 AND $3::int8 < a.lead_count"
                    "    ORDER BY created_at DESC, id DESC LIMIT $2::int8 OFFSET $3::int8) p"
                    "  CROSS JOIN LATERAL (SELECT " SCHEMA_LEAD_COLS_L " FROM leads l"
                    "    WHERE l.app_id = $1::int8 AND l.id = p.id OFFSET 0) l"
                    "  ORDER BY l.created_at DESC, l.id DESC) l ON true "
                    "WHERE a.id = $1::int8",
    /* The same for a page near the start (leads.c says how near): one
     * ordered scan of leads_newest reads the page's rows themselves, a
     * third of the cost of the statement above for the first page. */
    [Q_LEAD_LIST_NEAR] = "SELECT a.lead_count, l.* FROM apps a LEFT JOIN LATERAL ("
                         "  SELECT " SCHEMA_LEAD_COLS " FROM leads"
                         "    WHERE app_id = $1::int8 AND $3::int8 < a.lead_count"
                         "    ORDER BY created_at DESC, id DESC LIMIT $2::int8 OFFSET $3::int8) l ON true "
                         "WHERE a.id = $1::int8",
    /* Inserts nothing when the lead is missing; a lead deleted meanwhile
     * by another connection fails the foreign key instead (also 404). */
    [Q_FOLLOW_INSERT] = "INSERT INTO follows (app_id, " SCHEMA_FOLLOW_COLS ") "
                        "SELECT $1::int8, $2::uuid, $3::uuid, $4::text, $5::text, $6::int8, $7::int4, $8::int8, "
                        "$9::int8 WHERE EXISTS (SELECT 1 FROM leads WHERE app_id = $1::int8 AND id = $3::uuid)",
    /* One row per follow of the page, or one with NULL follow columns;
     * none at all when the lead does not exist. */
    [Q_FOLLOW_LIST] = "SELECT c.n, f.* FROM leads l "
                      "CROSS JOIN LATERAL (SELECT count(*) AS n FROM follows "
                      "  WHERE app_id = $1::int8 AND lead_id = $2::uuid) c "
                      "LEFT JOIN LATERAL (SELECT " SCHEMA_FOLLOW_COLS " FROM follows "
                      "  WHERE app_id = $1::int8 AND lead_id = $2::uuid AND $4::int8 < c.n "
                      "  ORDER BY " FOLLOW_ORDER " LIMIT $3::int8 OFFSET $4::int8) f ON true "
                      "WHERE l.app_id = $1::int8 AND l.id = $2::uuid",
    [Q_APP_DISABLE] = "UPDATE apps SET disabled = ($2::int4 <> 0) WHERE key = $1::text",
    /* Servers poll revocations by "seq greater than the last one seen", so
     * sequence numbers must become visible in order. Sequences hand them
     * out in order but transactions may commit out of order; the lock,
     * held to commit, makes revocations one at a time. */
    [Q_REVOKE] = "WITH l AS (SELECT pg_advisory_xact_lock(" REVOKE_LOCK ")) "
                 "INSERT INTO revoked_tokens (jti, revoked_at) SELECT $1::text, $2::int8 FROM l "
                 "WHERE $3::int4 <> 0 OR EXISTS (SELECT 1 FROM issued_tokens WHERE jti = $1::text) "
                 "ON CONFLICT (jti) DO NOTHING",
    [Q_COPY_COUNT] = "SELECT (SELECT count(*) FROM apps), (SELECT count(*) FROM leads), "
                     "(SELECT count(*) FROM follows), (SELECT count(*) FROM revoked_tokens), "
                     "(SELECT COALESCE(sum(lead_count), 0)::int8 FROM apps), (SELECT count(*) FROM signing_keys), "
                     "(SELECT count(*) FROM issued_tokens), (SELECT count(*) FROM leads_trash), "
                     "(SELECT count(*) FROM follows_trash), (SELECT count(*) FROM lead_history), "
                     "(SELECT count(*) FROM idempotency_keys)",
    [Q_COPY_ISSUED] = "SELECT " SCHEMA_TOKEN_COLS " FROM issued_tokens ORDER BY issued_at, jti",
    [Q_COPY_REVOKED] = "SELECT jti, revoked_at FROM revoked_tokens ORDER BY seq",
    [Q_COPY_KEY] = "INSERT INTO signing_keys (pem, created_at, signed_until, retired_at) "
                   "VALUES ($1::text, $2::int8, $3::int8, $4::int8)",
    [Q_COPY_APP] = "INSERT INTO apps (key, name, disabled, created_at) "
                   "VALUES ($1::text, $2::text, $3::int4 <> 0, $4::int8) RETURNING id",
    [Q_COPY_APP_ID] = "INSERT INTO apps (id, key, name, disabled, created_at) "
                      "VALUES ($5::int8, $1::text, $2::text, $3::int4 <> 0, $4::int8) RETURNING id",
    /* A lead's update and delete give back the figures lead_totals needs
     * (totals.c). The update locks the row before reading its old figures,
     * so they are those of the version it then changes. */
    [Q_LEAD_UPDATE_OLD] = "WITH o AS (SELECT stage AS o_stage, status AS o_status, value_cents AS o_value, "
                          "probability AS o_probability, source AS o_source FROM leads WHERE " SCHEMA_LEAD_KEY(P)
                          " FOR UPDATE) UPDATE leads SET " SCHEMA_LEAD_SETS(P) SCHEMA_UPDATED_AT("$12::int8", "GREATEST")
                          "FROM o WHERE " SCHEMA_LEAD_KEY(P) " RETURNING " SCHEMA_LEAD_COLS ", o_stage, o_status, "
                          "o_value, o_probability, o_source",
    [Q_LEAD_DELETE_OLD] = "WITH h AS (DELETE FROM lead_history WHERE " SCHEMA_HISTORY_OF_LEAD(P) "), "
                          "k AS (" SCHEMA_IDEM_FORGET_LEAD(P, "leads") ") "
                          "DELETE FROM leads WHERE " SCHEMA_LEAD_KEY(P) " RETURNING stage, status, value_cents, "
                          "probability, source",
    [Q_TOTALS_ADD] = "INSERT INTO lead_totals (" SCHEMA_TOTALS_COLS ") VALUES ($1::int8, $2::int4, $3::int4, "
                     "$4::text, $5::int4, $6::int8, $7::int8, $8::int8, $9::int8, $10::int8) "
                     "ON CONFLICT (" SCHEMA_TOTALS_CELL ") DO UPDATE SET n = lead_totals.n + EXCLUDED.n, "
                     "v_hi = lead_totals.v_hi + EXCLUDED.v_hi, v_lo = lead_totals.v_lo + EXCLUDED.v_lo, "
                     "w_hi = lead_totals.w_hi + EXCLUDED.w_hi, w_lo = lead_totals.w_lo + EXCLUDED.w_lo",
    SCHEMA_WEBHOOK_SQL(P, "GREATEST", PG_IN_ID_ORDER, " FOR UPDATE OF a SKIP LOCKED", SCHEMA_BACKLOG_SCAN(P)),
    PG_WEBHOOK_SQL,
    /* The trash (trash.c), each move one statement. The follows are moved
     * by the statement itself, so the foreign key's cascade, run at its
     * end, finds none left. The outer statement is the lead's, so its
     * rows affected say whether there was one; a move to the trash gives
     * back the figures lead_totals loses, a recovery the row it gains. */
    [Q_LEAD_TRASH] = "WITH f AS (DELETE FROM follows WHERE " SCHEMA_TRASH_FOLLOWS_KEY(P) " RETURNING app_id, "
                     SCHEMA_FOLLOW_COLS "), ft AS (INSERT INTO follows_trash (app_id, " SCHEMA_FOLLOW_COLS ") "
                     "SELECT * FROM f), l AS (DELETE FROM leads WHERE " SCHEMA_LEAD_KEY(P) " RETURNING app_id, "
                     SCHEMA_LEAD_COLS ", name_fold, source_fold) INSERT INTO leads_trash (app_id, "
                     SCHEMA_TRASH_COLS ") SELECT l.*, $3::int8 FROM l RETURNING stage, status, value_cents, "
                     "probability, source",
    [Q_LEAD_RECOVER] = "WITH l AS (DELETE FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P) " RETURNING *), "
                       "f AS (DELETE FROM follows_trash WHERE " SCHEMA_TRASH_FOLLOWS_KEY(P) " RETURNING app_id, "
                       SCHEMA_FOLLOW_COLS "), fi AS (INSERT INTO follows (app_id, " SCHEMA_FOLLOW_COLS ") "
                       "SELECT * FROM f) INSERT INTO leads (app_id, " SCHEMA_LEAD_COLS ", name_fold, "
                       "source_fold) SELECT " SCHEMA_RECOVER_LEAD_COLS(P, "GREATEST") " FROM l RETURNING "
                       SCHEMA_LEAD_COLS,
    [Q_TRASH_PURGE] = "WITH f AS (DELETE FROM follows_trash WHERE " SCHEMA_TRASH_FOLLOWS_KEY(P) "), "
                      "h AS (DELETE FROM lead_history WHERE " SCHEMA_HISTORY_OF_LEAD(P) "), "
                      "k AS (" SCHEMA_IDEM_FORGET_LEAD(P, "leads_trash") ") "
                      "DELETE FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P),
    /* The count and the page in one statement (one snapshot); the count's
     * row comes back alone (NULL lead columns) when the page is empty. */
    [Q_TRASH_GET] = "SELECT " SCHEMA_LEAD_COLS ", deleted_at FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P) " FOR UPDATE",
    [Q_TRASH_DUE] = "SELECT app_id, id FROM leads_trash WHERE deleted_at < $1::int8 ORDER BY deleted_at "
                    "LIMIT $2::int8 FOR UPDATE SKIP LOCKED",
    [Q_TRASH_LIST] = "SELECT c.n, t.* FROM (SELECT count(*) AS n FROM leads_trash WHERE app_id = $1::int8) c "
                     "LEFT JOIN LATERAL (SELECT t.* FROM (SELECT id AS pid FROM leads_trash "
                     "WHERE app_id = $1::int8 AND (deleted_at, id) < ($4::int8, $5::uuid) "
                     "ORDER BY deleted_at DESC, id DESC LIMIT $2::int8 OFFSET $3::int8) p "
                     "CROSS JOIN LATERAL (SELECT " SCHEMA_LEAD_COLS ", deleted_at FROM leads_trash "
                     "WHERE app_id = $1::int8 AND id = p.pid OFFSET 0) t "
                     "ORDER BY t.deleted_at DESC, t.id DESC) t ON true",
    SCHEMA_IDEM_SQL(P),
    [Q_HISTORY_ADD] = SCHEMA_HISTORY_ADD(P),
    [Q_HISTORY_IMPORT] = SCHEMA_HISTORY_IMPORT(P, "OVERRIDING SYSTEM VALUE "),
    /* The count and the page in one statement; no row: no such lead. */
    [Q_HISTORY_LIST] = "SELECT c.n, h.* FROM (SELECT count(*) AS n FROM lead_history WHERE "
                       SCHEMA_HISTORY_OF_LEAD(P) ") c LEFT JOIN LATERAL (" SCHEMA_HISTORY_PAGE(
                           P, "LATERAL (SELECT * FROM lead_history WHERE seq = p.ps OFFSET 0) AS h") ") h ON true "
                       "WHERE " SCHEMA_LEAD_KNOWN(P),
    /* An Idempotency-Key's claim, taken before its row's (idem.c); 1 when
     * granted. */
    [Q_IDEM_TRY_LOCK] = "SELECT pg_try_advisory_xact_lock($1::int8)::int4",
    /* A batch's leads, all at once in (app, id) order (leads.c:
     * pg_leads_lock); ORDER BY is applied before the lock. */
    [Q_LEADS_LOCK] = "SELECT 1 FROM leads WHERE (app_id, id) IN (SELECT a, i FROM unnest($1::int8[], "
                     "$2::uuid[]) AS v(a, i)) ORDER BY app_id, id FOR UPDATE",
    [Q_IDEM_EXPIRE] = "WITH v AS (SELECT app_id, key FROM idempotency_keys WHERE created_at < $1::int8 "
                      "ORDER BY created_at LIMIT $2::int8 FOR UPDATE SKIP LOCKED) "
                      "DELETE FROM idempotency_keys t USING v WHERE t.app_id = v.app_id AND t.key = v.key",
    /* The oldest trashed leads, a few at a time; rows another process is
     * purging are skipped, not waited for. */
    [Q_TRASH_EXPIRE] = "WITH v AS (SELECT app_id, id, created_at FROM leads_trash WHERE deleted_at < $1::int8 "
                       "ORDER BY deleted_at LIMIT $2::int8 FOR UPDATE SKIP LOCKED), "
                       "f AS (DELETE FROM follows_trash t USING v WHERE t.app_id = v.app_id AND t.lead_id = v.id), "
                       "h AS (DELETE FROM lead_history t USING v WHERE t.app_id = v.app_id AND t.lead_id = v.id), "
                       "k AS (UPDATE idempotency_keys t " SCHEMA_IDEM_FORGET " FROM v WHERE t.app_id = v.app_id AND "
                       SCHEMA_IDEM_CARRIES("t.", "v.id::text", "v.created_at") ") "
                       "DELETE FROM leads_trash t USING v WHERE t.app_id = v.app_id AND t.id = v.id",
};
/* clang-format on */

const char *const pg_schema_lock_sql =
    "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ");"
    "CREATE TABLE IF NOT EXISTS crmd_schema ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
    "INSERT INTO crmd_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING";
const char *const pg_schema_exists_sql = "SELECT to_regclass('crmd_schema') IS NOT NULL";
const char *const pg_schema_get_sql = "SELECT version FROM crmd_schema WHERE id = 1";
const char *const pg_schema_set_fmt = "UPDATE crmd_schema SET version = %d WHERE id = 1";

/* Like SQLite's write lock: no other writer until the import ends, so the
 * counts before and after are exact. Readers go on. */
const char *const pg_import_lock_sql =
    "LOCK TABLE apps, signing_keys, leads, follows, revoked_tokens, issued_tokens, webhooks, webhook_events, "
    "webhook_payloads, leads_trash, follows_trash, idempotency_keys, lead_history IN SHARE ROW EXCLUSIVE "
    "MODE";
const char *const pg_import_counts_sql =
    "UPDATE apps SET lead_count = (SELECT count(*) FROM leads WHERE leads.app_id = apps.id);"
    "DELETE FROM lead_totals;" SCHEMA_TOTALS_REBUILD;
/* Apps inserted with their ids, and history entries with their numbers,
 * leave the identity sequences behind. */
const char *const pg_import_sequence_sql = "SELECT setval(pg_get_serial_sequence('apps', 'id'), "
                                           "(SELECT COALESCE(max(id), 0) + 1 FROM apps), false);"
                                           "SELECT setval(pg_get_serial_sequence('lead_history', 'seq'), "
                                           "(SELECT COALESCE(max(seq), 0) + 1 FROM lead_history), false)";

/* app_id comes first: the record readers start at column 1. */
const char *const pg_export_declare_sql[PG_EXPORT_CURSORS] = {
    "DECLARE crmd_leads NO SCROLL CURSOR FOR SELECT app_id, " SCHEMA_LEAD_COLS
    " FROM leads ORDER BY app_id, created_at, id",
    "DECLARE crmd_follows NO SCROLL CURSOR FOR SELECT app_id, " SCHEMA_FOLLOW_COLS
    " FROM follows ORDER BY app_id, lead_id, created_at, id",
    "DECLARE crmd_trash NO SCROLL CURSOR FOR SELECT app_id, " SCHEMA_LEAD_COLS
    ", deleted_at FROM leads_trash ORDER BY app_id, deleted_at, id",
    "DECLARE crmd_trash_follows NO SCROLL CURSOR FOR SELECT app_id, " SCHEMA_FOLLOW_COLS
    " FROM follows_trash ORDER BY app_id, lead_id, created_at, id",
    "DECLARE crmd_history NO SCROLL CURSOR FOR SELECT app_id, lead_id, " SCHEMA_HISTORY_COLS
    " FROM lead_history ORDER BY seq",
    "DECLARE crmd_idem NO SCROLL CURSOR FOR SELECT app_id, key, hash, status, location, body, created_at "
    "FROM "
    "idempotency_keys ORDER BY app_id, key",
};
const char *const pg_export_fetch_sql[PG_EXPORT_CURSORS] = {
    "FETCH " EXPORT_BATCH " FROM crmd_leads",   "FETCH " EXPORT_BATCH " FROM crmd_follows",
    "FETCH " EXPORT_BATCH " FROM crmd_trash",   "FETCH " EXPORT_BATCH " FROM crmd_trash_follows",
    "FETCH " EXPORT_BATCH " FROM crmd_history", "FETCH " EXPORT_BATCH " FROM crmd_idem",
};

/* Migration 5's backfill (fold.c): every lead, a batch at a time, in text. */
const char *const pg_fold_declare_sql =
    "DECLARE crmd_fold NO SCROLL CURSOR FOR SELECT app_id, id, name, source FROM leads";
const char *const pg_fold_fetch_sql = "FETCH 1000 FROM crmd_fold";
const char *const pg_fold_update_sql =
    "UPDATE leads l SET name_fold = v.n, source_fold = v.s "
    "FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::text[]) AS v(a, i, n, s) "
    "WHERE l.app_id = v.a AND l.id = v.i";
