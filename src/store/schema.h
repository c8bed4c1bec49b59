/*
 * schema.h: the facts about the database that both backends share.
 *
 * SQLite (store/sqlite/sql.c) and PostgreSQL (store/postgres/sql.c) write
 * their SQL in their own dialects, but the schema version, the tables'
 * columns in the order the row readers expect them, the bits of a partial
 * update and the ranges the CHECK constraints allow are the same, and are
 * written here once. The _Static_asserts tie the numbers that stand inside
 * SQL text to model/record.h: a change on one side fails to compile until
 * the other follows (and, for a range, until a migration changes the
 * constraint).
 *
 * Private to src/store/: the API never sees a column.
 */
#ifndef CRMD_STORE_SCHEMA_H
#define CRMD_STORE_SCHEMA_H

#include "model/record.h"
#include "model/uuid.h"
#include "store/store.h"

/* The number of migrations, hence the newest schema version. Each backend
 * checks that its list of migrations has exactly this many entries. */
#define SCHEMA_VERSION 19
/* The version that adds the folded copies of name and source (see
 * "finding leads" below): a backend that cannot fold in SQL fills them in
 * from C right after that step's SQL. */
#define SCHEMA_FOLD_VERSION 5
/* Room for the statement that records a version number. */
#define SCHEMA_VERSION_SQL_MAX 96

/* A macro's value as a string literal, for numbers inside SQL text. */
#define SCHEMA_STR_(x) #x
#define SCHEMA_STR(x) SCHEMA_STR_(x)

/* --- columns ---------------------------------------------------------------
 * Every statement that reads a record selects these lists, so the row
 * readers (each backend's params.c) read the columns by these positions. */

#define SCHEMA_LEAD_COLS                                                                                     \
    "id, name, source, account_id, contact_id, value_cents, stage, probability, status, created_at, "        \
    "updated_at"
/* The same, qualified with the alias l (for joins). */
#define SCHEMA_LEAD_COLS_L                                                                                   \
    "l.id, l.name, l.source, l.account_id, l.contact_id, l.value_cents, l.stage, l.probability, "            \
    "l.status, l.created_at, l.updated_at"
enum schema_lead_col {
    LEAD_COL_ID,
    LEAD_COL_NAME,
    LEAD_COL_SOURCE,
    LEAD_COL_ACCOUNT,
    LEAD_COL_CONTACT,
    LEAD_COL_VALUE,
    LEAD_COL_STAGE,
    LEAD_COL_PROBABILITY,
    LEAD_COL_STATUS,
    LEAD_COL_CREATED_AT,
    LEAD_COL_UPDATED_AT,
    LEAD_NCOLS
};

#define SCHEMA_FOLLOW_COLS "id, lead_id, title, description, due_at, status, created_at, updated_at"
/* The same, qualified with the alias f. */
#define SCHEMA_FOLLOW_COLS_F                                                                                 \
    "f.id, f.lead_id, f.title, f.description, f.due_at, f.status, f.created_at, f.updated_at"
enum schema_follow_col {
    FOLLOW_COL_ID,
    FOLLOW_COL_LEAD,
    FOLLOW_COL_TITLE,
    FOLLOW_COL_DESCRIPTION,
    FOLLOW_COL_DUE,
    FOLLOW_COL_STATUS,
    FOLLOW_COL_CREATED_AT,
    FOLLOW_COL_UPDATED_AT,
    FOLLOW_NCOLS
};

/* An app row; lists add lead_count after these. */
#define SCHEMA_APP_COLS "id, key, name, disabled, created_at"
enum schema_app_col {
    APP_COL_ID,
    APP_COL_KEY,
    APP_COL_NAME,
    APP_COL_DISABLED,
    APP_COL_CREATED_AT,
    APP_NCOLS
};

/* An issued token row (migration 3), as exports read it. */
#define SCHEMA_TOKEN_COLS "jti, app_id, subject, issued_at, expires_at"
enum schema_token_col {
    TOKEN_COL_JTI,
    TOKEN_COL_APP,
    TOKEN_COL_SUBJECT,
    TOKEN_COL_ISSUED_AT,
    TOKEN_COL_EXPIRES_AT,
    TOKEN_NCOLS
};

/* --- ranges the CHECK constraints allow (set by migration 1) ------------- */

_Static_assert(SCHEMA_STAGES == STAGE_NEGOTIATION + 1 && SCHEMA_STATUSES == LEAD_LOST + 1,
               "store.h's counts of stages and statuses must be record.h's");
#define SCHEMA_STAGE_MAX 4
#define SCHEMA_LEAD_STATUS_MAX 3
#define SCHEMA_FOLLOW_STATUS_MAX 1 /* FOLLOW_OVERDUE is derived, never stored */
#define SCHEMA_PROBABILITY_MAX 100

/* Migration 1's checked columns, written alike in both dialects. */
/* clang-format off */
#define SCHEMA_V1_LEAD_CHECKED                                                                               \
    "  stage INTEGER NOT NULL CHECK (stage BETWEEN 0 AND " SCHEMA_STR(SCHEMA_STAGE_MAX) "),"                  \
    "  probability INTEGER CHECK (probability BETWEEN 0 AND " SCHEMA_STR(SCHEMA_PROBABILITY_MAX) "),"        \
    "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND " SCHEMA_STR(SCHEMA_LEAD_STATUS_MAX) "),"
#define SCHEMA_V1_FOLLOW_CHECKED                                                                             \
    "  status INTEGER NOT NULL CHECK (status BETWEEN 0 AND " SCHEMA_STR(SCHEMA_FOLLOW_STATUS_MAX) "),"
/* clang-format on */

_Static_assert(STAGE_NEW == 0 && STAGE_NEGOTIATION == SCHEMA_STAGE_MAX,
               "lead stages changed: the leads table's CHECK needs a migration");
_Static_assert(LEAD_ACTIVE == 0 && LEAD_LOST == SCHEMA_LEAD_STATUS_MAX,
               "lead statuses changed: the leads table's CHECK needs a migration");
_Static_assert(FOLLOW_PENDING == 0 && FOLLOW_COMPLETED == SCHEMA_FOLLOW_STATUS_MAX &&
                   FOLLOW_OVERDUE == SCHEMA_FOLLOW_STATUS_MAX + 1,
               "follow statuses changed: the follows table's CHECK needs a migration");

/* --- partial updates ----------------------------------------------------------
 * One UPDATE serves every partial update: each attribute is replaced only
 * when its bit is set in the fields parameter, so no read-modify-write is
 * needed. The bits inside the SQL are these numbers. */

#define SQL_LEAD_F_NAME 1
#define SQL_LEAD_F_SOURCE 2
#define SQL_LEAD_F_ACCOUNT 4
#define SQL_LEAD_F_CONTACT 8
#define SQL_LEAD_F_VALUE 16
#define SQL_LEAD_F_STAGE 32
#define SQL_LEAD_F_PROBABILITY 64
#define SQL_LEAD_F_STATUS 128
_Static_assert(SQL_LEAD_F_NAME == LEAD_F_NAME && SQL_LEAD_F_SOURCE == LEAD_F_SOURCE &&
                   SQL_LEAD_F_ACCOUNT == LEAD_F_ACCOUNT && SQL_LEAD_F_CONTACT == LEAD_F_CONTACT &&
                   SQL_LEAD_F_VALUE == LEAD_F_VALUE && SQL_LEAD_F_STAGE == LEAD_F_STAGE &&
                   SQL_LEAD_F_PROBABILITY == LEAD_F_PROBABILITY && SQL_LEAD_F_STATUS == LEAD_F_STATUS,
               "the lead update's SQL bits must be model/record.h's LEAD_F_*");

#define SQL_FOLLOW_F_TITLE 1
#define SQL_FOLLOW_F_DESCRIPTION 2
#define SQL_FOLLOW_F_DUE 4
#define SQL_FOLLOW_F_STATUS 8
_Static_assert(SQL_FOLLOW_F_TITLE == FOLLOW_F_TITLE && SQL_FOLLOW_F_DESCRIPTION == FOLLOW_F_DESCRIPTION &&
                   SQL_FOLLOW_F_DUE == FOLLOW_F_DUE && SQL_FOLLOW_F_STATUS == FOLLOW_F_STATUS,
               "the follow update's SQL bits must be model/record.h's FOLLOW_F_*");

/* --- statements both dialects write alike ----------------------------------
 * Written once here, in a backend's dialect: P(n, type) names parameter n
 * (SQLite "?n"; PostgreSQL "$n::type", the cast fixing its type), and MAX
 * is the two-argument maximum (SQLite "max", PostgreSQL "GREATEST").
 * SCHEMA_SHARED_SQL(P, MAX) is the part of a backend's table of statements
 * that both share, indexed by the ids SCHEMA_SHARED_STMT_IDS puts first in
 * each backend's enum; each backend adds the statements it writes its own
 * way.
 */

/* The ids of the statements of SCHEMA_SHARED_SQL: each backend's enum of
 * statements begins with them. */
#define SCHEMA_SHARED_STMT_IDS                                                                               \
    Q_APP_INSERT, Q_APP_FIND, Q_APP_COUNT_ADD, Q_APP_LIST, Q_KEYS, Q_KEY_UPDATE, Q_LEAD_INSERT, Q_LEAD_GET,  \
        Q_LEAD_UPDATE, Q_LEAD_DELETE, Q_FOLLOW_GET, Q_FOLLOW_UPDATE, Q_FOLLOW_DELETE, Q_REVOKED_SINCE,       \
        Q_REVOKED_FIND, Q_TOKEN_INSERT

#define SCHEMA_LEAD_KEY(P) "app_id = " P(1, int8) " AND id = " P(2, uuid)
#define SCHEMA_FOLLOW_KEY(P) "app_id = " P(1, int8) " AND lead_id = " P(2, uuid) " AND id = " P(3, uuid)

/* The partial updates. Parameters: the key (as above), the fields bits,
 * the values in column order, and now (a lead's update then takes the
 * folded name and source, 13 and 14). updated_at becomes
 * MAX(now, updated_at + 1), so it strictly increases (as
 * record_next_updated_at). The updated row comes back in column order. */
#define SCHEMA_LEAD_UPDATE(P, MAX)                                                                           \
    "UPDATE leads SET " SCHEMA_LEAD_SETS(P)                                                                  \
        SCHEMA_UPDATED_AT(P(12, int8), MAX) "WHERE " SCHEMA_LEAD_KEY(P) " RETURNING " SCHEMA_LEAD_COLS
#define SCHEMA_FOLLOW_UPDATE(P, MAX)                                                                         \
    "UPDATE follows SET " SCHEMA_FOLLOW_SETS(P)                                                              \
        SCHEMA_UPDATED_AT(P(9, int8), MAX) "WHERE " SCHEMA_FOLLOW_KEY(P) " RETURNING " SCHEMA_FOLLOW_COLS
#define SCHEMA_UPDATED_AT(now, MAX) "updated_at = " MAX "(" now ", updated_at + 1) "

/* clang-format off */
#define SCHEMA_SHARED_SQL(P, MAX)                                                                            \
    [Q_APP_INSERT] = "INSERT INTO apps (key, name, created_at) "                                             \
                     "VALUES (" P(1, text) ", " P(2, text) ", " P(3, int8) ") RETURNING id",                 \
    [Q_APP_FIND] = "SELECT " SCHEMA_APP_COLS " FROM apps WHERE key = " P(1, text),                           \
    [Q_APP_COUNT_ADD] = "UPDATE apps SET lead_count = lead_count + " P(2, int8) " WHERE id = " P(1, int8),   \
    [Q_APP_LIST] = "SELECT " SCHEMA_APP_COLS ", lead_count FROM apps ORDER BY id",                           \
    [Q_KEYS] = "SELECT seq, pem, created_at, signed_until, retired_at FROM signing_keys ORDER BY seq",         \
    [Q_KEY_UPDATE] = "UPDATE signing_keys SET signed_until = CASE WHEN signed_until < 0 OR signed_until >= "   \
                     P(2, int8) " THEN signed_until ELSE " P(2, int8) " END, retired_at = CASE WHEN "           \
                     "retired_at = 0 THEN " P(3, int8) " ELSE retired_at END WHERE seq = " P(1, int8),         \
    [Q_LEAD_INSERT] = "INSERT INTO leads (app_id, " SCHEMA_LEAD_COLS ", name_fold, source_fold) VALUES ("    \
                      P(1, int8) ", " P(2, uuid) ", " P(3, text) ", " P(4, text) ", " P(5, uuid) ", "        \
                      P(6, uuid) ", " P(7, int8) ", " P(8, int4) ", " P(9, int4) ", " P(10, int4) ", "       \
                      P(11, int8) ", " P(12, int8) ", " P(13, text) ", " P(14, text) ")",                    \
    [Q_LEAD_GET] = "SELECT " SCHEMA_LEAD_COLS " FROM leads WHERE " SCHEMA_LEAD_KEY(P),                       \
    [Q_LEAD_UPDATE] = SCHEMA_LEAD_UPDATE(P, MAX),                                                            \
    [Q_LEAD_DELETE] = "DELETE FROM leads WHERE " SCHEMA_LEAD_KEY(P),                                         \
    [Q_FOLLOW_GET] = "SELECT " SCHEMA_FOLLOW_COLS " FROM follows WHERE " SCHEMA_FOLLOW_KEY(P),               \
    [Q_FOLLOW_UPDATE] = SCHEMA_FOLLOW_UPDATE(P, MAX),                                                        \
    [Q_FOLLOW_DELETE] = "DELETE FROM follows WHERE " SCHEMA_FOLLOW_KEY(P),                                   \
    [Q_REVOKED_SINCE] = "SELECT seq, jti FROM revoked_tokens WHERE seq > " P(1, int8) " ORDER BY seq",      \
    [Q_REVOKED_FIND] = "SELECT 1 FROM revoked_tokens WHERE jti = " P(1, text),                               \
    /* Recording a token (and importing one): a jti already there adds nothing. */                           \
    [Q_TOKEN_INSERT] = "INSERT INTO issued_tokens (" SCHEMA_TOKEN_COLS ") VALUES (" P(1, text) ", "         \
                       P(2, int8) ", " P(3, text) ", " P(4, int8) ", " P(5, int8) ") "                       \
                       "ON CONFLICT (jti) DO NOTHING"

/* "col = CASE WHEN (fields & bit) <> 0 THEN value ELSE col END, " */
#define SCHEMA_SET_IF(col, fields, bit, value)                                                               \
    col " = CASE WHEN (" fields " & " SCHEMA_STR(bit) ") <> 0 THEN " value " ELSE " col " END, "

/* What a partial update may set: every attribute, in column order. */
#define SCHEMA_LEAD_SETS(P)                                                                                  \
    SCHEMA_SET_IF("name", P(3, int4), SQL_LEAD_F_NAME, P(4, text))                                           \
    SCHEMA_SET_IF("source", P(3, int4), SQL_LEAD_F_SOURCE, P(5, text))                                       \
    SCHEMA_SET_IF("account_id", P(3, int4), SQL_LEAD_F_ACCOUNT, P(6, uuid))                                  \
    SCHEMA_SET_IF("contact_id", P(3, int4), SQL_LEAD_F_CONTACT, P(7, uuid))                                  \
    SCHEMA_SET_IF("value_cents", P(3, int4), SQL_LEAD_F_VALUE, P(8, int8))                                   \
    SCHEMA_SET_IF("stage", P(3, int4), SQL_LEAD_F_STAGE, P(9, int4))                                         \
    SCHEMA_SET_IF("probability", P(3, int4), SQL_LEAD_F_PROBABILITY, P(10, int4))                            \
    SCHEMA_SET_IF("status", P(3, int4), SQL_LEAD_F_STATUS, P(11, int4))                                       \
    SCHEMA_SET_IF("name_fold", P(3, int4), SQL_LEAD_F_NAME, P(13, text))                                     \
    SCHEMA_SET_IF("source_fold", P(3, int4), SQL_LEAD_F_SOURCE, P(14, text))
#define SCHEMA_FOLLOW_SETS(P)                                                                                \
    SCHEMA_SET_IF("title", P(4, int4), SQL_FOLLOW_F_TITLE, P(5, text))                                       \
    SCHEMA_SET_IF("description", P(4, int4), SQL_FOLLOW_F_DESCRIPTION, P(6, text))                           \
    SCHEMA_SET_IF("due_at", P(4, int4), SQL_FOLLOW_F_DUE, P(7, int8))                                        \
    SCHEMA_SET_IF("status", P(4, int4), SQL_FOLLOW_F_STATUS, P(8, int4))
/* clang-format on */

/* --- the trash (migration 8) ------------------------------------------------
 * A deleted lead moves, with its follows, out of leads and follows into
 * leads_trash and follows_trash, in the transaction of its DELETE. Every
 * read of leads (a get, the lists, finds, the summary and its totals,
 * search) then leaves it out without a condition of its own, and the
 * indexes of leads never hold a trashed row. A recovery moves the rows
 * back; a purge deletes them from the trash. The folded texts move with
 * the lead, so a recovery needs no folding. ID and INT are the dialect's
 * types of an id and of a 64-bit integer. */
#define SCHEMA_TRASH_COLS SCHEMA_LEAD_COLS ", name_fold, source_fold, deleted_at"
/* clang-format off */
#define SCHEMA_V8_TRASH(ID, INT)                                                                             \
    "CREATE TABLE leads_trash ("                                                                             \
    "  app_id " INT " NOT NULL REFERENCES apps(id),"                                                         \
    "  id " ID " NOT NULL,"                                                                                  \
    "  name TEXT NOT NULL, source TEXT, account_id " ID ", contact_id " ID ", value_cents " INT ","          \
    "  stage INTEGER NOT NULL, probability INTEGER, status INTEGER NOT NULL,"                                \
    "  created_at " INT " NOT NULL, updated_at " INT " NOT NULL,"                                            \
    "  name_fold TEXT, source_fold TEXT,"                                                                    \
    "  deleted_at " INT " NOT NULL,"                                                                         \
    "  PRIMARY KEY (app_id, id))"
#define SCHEMA_V8_TRASH_REST(ID, INT)                                                                        \
    "CREATE INDEX leads_trash_deleted ON leads_trash (app_id, deleted_at DESC, id DESC);"                    \
    "CREATE INDEX leads_trash_expiry ON leads_trash (deleted_at);"                                           \
    "CREATE TABLE follows_trash ("                                                                           \
    "  app_id " INT " NOT NULL,"                                                                             \
    "  lead_id " ID " NOT NULL,"                                                                             \
    "  id " ID " NOT NULL,"                                                                                  \
    "  title TEXT NOT NULL, description TEXT, due_at " INT ", status INTEGER NOT NULL,"                      \
    "  created_at " INT " NOT NULL, updated_at " INT " NOT NULL,"                                            \
    "  PRIMARY KEY (app_id, lead_id, id))"
/* clang-format on */

/* A lead's rows moving between the tables, keyed by SCHEMA_LEAD_KEY (the
 * follows by app ?1 and lead ?2). The recovered lead's updated_at
 * advances like an update's (P(3): now). */
#define SCHEMA_TRASH_LEAD_IN(P)                                                                              \
    "INSERT INTO leads_trash (app_id, " SCHEMA_TRASH_COLS ") SELECT app_id, " SCHEMA_LEAD_COLS               \
    ", name_fold, source_fold, " P(3, int8) " FROM leads WHERE " SCHEMA_LEAD_KEY(P)
#define SCHEMA_TRASH_FOLLOWS_IN(P)                                                                           \
    "INSERT INTO follows_trash (app_id, " SCHEMA_FOLLOW_COLS ") SELECT app_id, " SCHEMA_FOLLOW_COLS          \
    " FROM follows WHERE app_id = " P(1, int8) " AND lead_id = " P(2, uuid)
#define SCHEMA_RECOVER_LEAD_COLS(P, MAX)                                                                     \
    "app_id, id, name, source, account_id, contact_id, value_cents, stage, probability, status, "            \
    "created_at, " MAX "(" P(3, int8) ", updated_at + 1), name_fold, source_fold"
#define SCHEMA_TRASH_FOLLOWS_KEY(P) "app_id = " P(1, int8) " AND lead_id = " P(2, uuid)

/* --- history (migration 8) --------------------------------------------------
 * One row per change of a lead or its follows, numbered by seq in the
 * order recorded (the list's order, newest first). changes is the API's
 * rendering, kept as text. */
#define SCHEMA_V8_HISTORY(ID, INT, SEQ)                                                                      \
    "CREATE TABLE lead_history ("                                                                            \
    "  seq " SEQ ","                                                                                         \
    "  app_id " INT " NOT NULL REFERENCES apps(id),"                                                         \
    "  lead_id " ID " NOT NULL,"                                                                             \
    "  id " ID " NOT NULL,"                                                                                  \
    "  action INTEGER NOT NULL,"                                                                             \
    "  actor TEXT NOT NULL,"                                                                                 \
    "  at " INT " NOT NULL,"                                                                                 \
    "  follow_id " ID ","                                                                                    \
    "  changes TEXT NOT NULL);"                                                                              \
    "CREATE INDEX lead_history_lead ON lead_history (app_id, lead_id, seq DESC);"
#define SCHEMA_HISTORY_COLS "seq, id, action, actor, at, follow_id, changes"
enum schema_history_col {
    HISTORY_COL_SEQ,
    HISTORY_COL_ID,
    HISTORY_COL_ACTION,
    HISTORY_COL_ACTOR,
    HISTORY_COL_AT,
    HISTORY_COL_FOLLOW,
    HISTORY_COL_CHANGES,
    HISTORY_NCOLS
};
/* The lead exists, live or in the trash (for a history's 404). */
#define SCHEMA_LEAD_KNOWN(P)                                                                                 \
    "(EXISTS (SELECT 1 FROM leads WHERE " SCHEMA_LEAD_KEY(                                                   \
        P) ") OR EXISTS (SELECT 1 FROM leads_trash WHERE " SCHEMA_LEAD_KEY(P) "))"
/* clang-format off */
/* A new entry (PostgreSQL's; SQLite's follows its chain, sqlite/sql.c): at
 * no earlier than the lead's newest entry's, so that the history, newest
 * first by seq, never shows an earlier time above a later one (a clock
 * stepped back; a follow's change, timed by the follow's own updated_at). */
#define SCHEMA_HISTORY_ADD(P)                                                                                \
    "INSERT INTO lead_history (app_id, lead_id, id, action, actor, at, follow_id, changes) VALUES ("         \
    P(1, int8) ", " P(2, uuid) ", " P(3, uuid) ", " P(4, int4) ", " P(5, text) ", GREATEST(" P(6, int8) ", "  \
    "(SELECT h.at FROM lead_history AS h WHERE h.app_id = " P(1, int8) " AND h.lead_id = " P(2, uuid) " "     \
    "ORDER BY h.seq DESC LIMIT 1)), " P(7, uuid) ", " P(8, text) ")"
/* A copied entry keeps its seq, so that cursors into the history stay
 * valid in the copy (OVERRIDE: what the dialect needs to set an identity). */
#define SCHEMA_HISTORY_IMPORT(P, OVERRIDE)                                                                   \
    "INSERT INTO lead_history (seq, app_id, lead_id, id, action, actor, at, follow_id, changes) " OVERRIDE    \
    "VALUES (" P(9, int8) ", " P(1, int8) ", " P(2, uuid) ", " P(3, uuid) ", " P(4, int4) ", " P(5, text)    \
    ", " P(6, int8) ", " P(7, uuid) ", " P(8, text) ")"
/* clang-format on */
/* A page of a lead's history: its keys (seq) from lead_history_lead alone,
 * so that the entries OFFSET skips are never read from the table, then
 * its entries by key (BY_KEY: the dialect's join on p.ps as h). */
/* clang-format off */
#define SCHEMA_HISTORY_PAGE(P, BY_KEY)                                                                       \
    "SELECT " SCHEMA_HISTORY_COLS " FROM (SELECT seq AS ps FROM lead_history "                               \
    "WHERE app_id = " P(1, int8) " AND lead_id = " P(2, uuid) " AND seq < " P(5, int8) " "                   \
    "ORDER BY seq DESC LIMIT " P(3, int8) " OFFSET " P(4, int8) ") AS p "                                    \
    "CROSS JOIN " BY_KEY " ORDER BY h.seq DESC"
/* clang-format on */
#define SCHEMA_HISTORY_OF_LEAD(P) "app_id = " P(1, int8) " AND lead_id = " P(2, uuid)

/* --- idempotency keys (migration 8) -----------------------------------------
 * One row per app and key: the request's digest (hex), the answer's
 * status (0 while claimed inside a write's transaction), Location and
 * body, and when it was made (rows older than 24 hours are replaced by a
 * new claim and purged in the background). */
#define SCHEMA_V8_IDEM(INT)                                                                                  \
    "CREATE TABLE idempotency_keys ("                                                                        \
    "  app_id " INT " NOT NULL REFERENCES apps(id),"                                                         \
    "  key TEXT NOT NULL,"                                                                                   \
    "  hash TEXT NOT NULL,"                                                                                  \
    "  status INTEGER NOT NULL,"                                                                             \
    "  location TEXT NOT NULL,"                                                                              \
    "  body TEXT NOT NULL,"                                                                                  \
    "  created_at " INT " NOT NULL,"                                                                         \
    "  PRIMARY KEY (app_id, key))"
#define SCHEMA_V8_IDEM_INDEX "CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);"

/* clang-format off */
/* The kept answers that carry a lead, whose id (text) is lead_id and
 * creation time created_at, for its purge: nothing of a purged lead may
 * be replayed, so their body is blanked (SCHEMA_IDEM_FORGET); their
 * status stays, so that a retry is still not run twice, and so does a
 * 201's Location, the lead's path (contract-notes.md: a 201 has one). An
 * answer is made after the lead it carries; the day's margin covers
 * clocks of several processes that differ, and the bound lets the purge
 * of a lead older than the 24 hours answers are kept look at none. */
#define SCHEMA_IDEM_CARRIES(k, lead_id, created_at)                                                          \
    k "created_at >= " created_at " - 86400000 AND (" k "body LIKE '%' || " lead_id " || '%' OR " k           \
    "location LIKE '%' || " lead_id " || '%')"
#define SCHEMA_IDEM_FORGET "SET body = ''"
/* Those of lead P(2) of app P(1), found in table (leads or leads_trash):
 * run before the lead's row goes. */
#define SCHEMA_IDEM_FORGET_LEAD(P, table)                                                                    \
    "UPDATE idempotency_keys " SCHEMA_IDEM_FORGET " WHERE app_id = " P(1, int8) " AND " SCHEMA_IDEM_CARRIES( \
        "", "CAST(" P(2, uuid) " AS TEXT)",                                                                  \
        "(SELECT created_at FROM " table " WHERE " SCHEMA_LEAD_KEY(P) ")")
/* clang-format on */

/* clang-format off */
#define SCHEMA_IDEM_SQL(P)                                                                                   \
    [Q_IDEM_GET] = "SELECT hash, status, location, body, created_at FROM idempotency_keys "                  \
                   "WHERE app_id = " P(1, int8) " AND key = " P(2, text) " AND created_at >= " P(3, int8),   \
    [Q_IDEM_CLAIM] = "INSERT INTO idempotency_keys (app_id, key, hash, status, location, body, created_at) "  \
                     "VALUES (" P(1, int8) ", " P(2, text) ", " P(3, text) ", 0, '', '', " P(4, int8) ") "  \
                     "ON CONFLICT (app_id, key) DO UPDATE SET hash = excluded.hash, status = 0, "           \
                     "location = '', body = '', created_at = excluded.created_at "                          \
                     "WHERE idempotency_keys.created_at < " P(5, int8),                                     \
    [Q_IDEM_FINISH] = "UPDATE idempotency_keys SET status = " P(3, int4) ", location = " P(4, text)          \
                      ", body = " P(5, text) " WHERE app_id = " P(1, int8) " AND key = " P(2, text),        \
    [Q_IDEM_RELEASE] = "DELETE FROM idempotency_keys WHERE app_id = " P(1, int8) " AND key = " P(2, text)
/* clang-format on */

/* --- finding leads (migrations 5 and 6) ------------------------------------
 * name_fold and source_fold hold name and source after model/text.c's
 * case folding, computed in C on every write (a database's own lower()
 * follows its locale and is not case folding), so that search and the name
 * order are the same on both backends. Search looks for a substring of
 * them; the name order compares their bytes (PostgreSQL's column has
 * collation "C", like SQLite's BINARY).
 *
 * lead_totals keeps, per app, stage, status and source, the number of leads, the
 * sum of their value_cents and the sum of value_cents * probability (the
 * weighted value, in hundredths of a cent), in the same transaction as
 * each lead write, so that the pipeline summary never adds up the table.
 * Sums are kept in two parts, the high and the low 32 bits of each row's
 * figure: a row's value is below 10^15 and its weighted value below 10^17,
 * so each part's sum stays far inside 64 bits for billions of rows, where
 * a plain sum would overflow after ten thousand leads of 10^13 (or a
 * hundred weighted ones). Readers combine the parts in 128 bits. */

/* A lead row's figures, from its columns (prefix "" or "new." and the like). */
#define SCHEMA_VALUE_OF(p) "COALESCE(" p "value_cents, 0)"
#define SCHEMA_WEIGHT_OF(p) "COALESCE(" p "value_cents * " p "probability, 0)"
#define SCHEMA_HI(x) "((" x ") >> 32)"
#define SCHEMA_LO(x) "((" x ") & 4294967295)"
/* The four parts of a row, in lead_totals' column order. */
#define SCHEMA_PARTS_OF(p)                                                                                   \
    SCHEMA_HI(SCHEMA_VALUE_OF(p))                                                                            \
    ", " SCHEMA_LO(SCHEMA_VALUE_OF(p)) ", " SCHEMA_HI(SCHEMA_WEIGHT_OF(p)) ", " SCHEMA_LO(SCHEMA_WEIGHT_OF(p))
/* The sums of the parts over a set of rows. */
#define SCHEMA_PART_SUMS(p)                                                                                  \
    "sum(" SCHEMA_HI(SCHEMA_VALUE_OF(p)) "), sum(" SCHEMA_LO(SCHEMA_VALUE_OF(p)) "), sum(" SCHEMA_HI(        \
        SCHEMA_WEIGHT_OF(p)) "), sum(" SCHEMA_LO(SCHEMA_WEIGHT_OF(p)) ")"

/* A row's cell beside stage and status: its source ('' when unset), and
 * whether it has one (so that an unset source and an empty one differ). */
#define SCHEMA_SRC_OF(p) "COALESCE(" p "source, '')"
#define SCHEMA_HAS_SRC_OF(p) "(CASE WHEN " p "source IS NULL THEN 0 ELSE 1 END)"
#define SCHEMA_TOTALS_CELL "app_id, stage, status, has_src, src"
#define SCHEMA_TOTALS_COLS "app_id, stage, status, src, has_src, n, v_hi, v_lo, w_hi, w_lo"

/* The table, alike in both dialects, and its first contents: a cell per
 * app, stage, status and source (sources are few: a pipeline summary by
 * source, the most asked for breakdown, is read from here too). */
/* clang-format off */
#define SCHEMA_V6_TOTALS                                                                                     \
    "CREATE TABLE lead_totals ("                                                                             \
    "  app_id BIGINT NOT NULL REFERENCES apps(id),"                                                          \
    "  stage INTEGER NOT NULL,"                                                                              \
    "  status INTEGER NOT NULL,"                                                                             \
    "  src TEXT NOT NULL,"                                                                                   \
    "  has_src INTEGER NOT NULL,"                                                                            \
    "  n BIGINT NOT NULL,"                                                                                   \
    "  v_hi BIGINT NOT NULL, v_lo BIGINT NOT NULL, w_hi BIGINT NOT NULL, w_lo BIGINT NOT NULL,"              \
    "  PRIMARY KEY (" SCHEMA_TOTALS_CELL "));"                                                               \
    SCHEMA_TOTALS_REBUILD
/* Fills lead_totals from the leads (migration 6, crmd copy's import). */
#define SCHEMA_TOTALS_REBUILD                                                                                \
    "INSERT INTO lead_totals (" SCHEMA_TOTALS_COLS ") "                                                      \
    "SELECT app_id, stage, status, " SCHEMA_SRC_OF("") ", " SCHEMA_HAS_SRC_OF("") ", count(*), "             \
    SCHEMA_PART_SUMS("") " FROM leads GROUP BY app_id, stage, status, source;"
/* clang-format on */

/* What a summary adds up, at the end of the indexes of the filters a
 * summary is most often asked for (a source, an account, a contact), as
 * migration 6 made them; migration 9 takes it off again (see
 * SCHEMA_V9_INDEXES). */
#define SCHEMA_SUMMED ", stage, status, value_cents, probability"

/* The indexes both dialects write alike: every filter and every sort of
 * GET /leads/ and GET /follows/ starts from one (docs/architecture.md shows
 * the plans). Lead indexes end in the list's tie order (created_at, then
 * id, descending), so a filter's index also gives its rows in the default
 * order, and a keyset page starts right at its cursor. Each costs every
 * lead write about a page more to write, so there is one per key: the
 * other direction of a sort reads its index backwards and orders the rows
 * of equal value in memory (few, but for probability: a hundred values),
 * and the stage, of five values, is read as one range per stage. */
#define SCHEMA_V6_INDEXES                                                                                    \
    "CREATE INDEX leads_updated ON leads (app_id, updated_at DESC, created_at DESC, id DESC);"               \
    "CREATE INDEX leads_name ON leads (app_id, name_fold, created_at DESC, id DESC);"                        \
    "CREATE INDEX leads_value ON leads (app_id, value_cents DESC, created_at DESC, id DESC);"                \
    "CREATE INDEX leads_probability ON leads (app_id, probability DESC, created_at DESC, id DESC);"          \
    "CREATE INDEX leads_stage ON leads (app_id, stage, created_at DESC, id DESC);"                           \
    "CREATE INDEX leads_status ON leads (app_id, status, created_at DESC, id DESC);"                         \
    "CREATE INDEX leads_source ON leads (app_id, source, created_at DESC, id DESC" SCHEMA_SUMMED ");"        \
    "CREATE INDEX leads_account ON leads (app_id, account_id, created_at DESC, id DESC" SCHEMA_SUMMED ");"   \
    "CREATE INDEX leads_contact ON leads (app_id, contact_id, created_at DESC, id DESC" SCHEMA_SUMMED ");"   \
    "CREATE INDEX follows_app_due ON follows (app_id, due_at, created_at, id);"                              \
    "CREATE INDEX follows_app_state ON follows (app_id, status, due_at, created_at, id);"                    \
    "CREATE INDEX follows_app_created ON follows (app_id, created_at, id);"                                  \
    "CREATE INDEX follows_app_updated ON follows (app_id, updated_at, id);"

/* Migration 9: the source, account and contact indexes without the summed
 * columns. Carrying them made every update of a stage, status, value or
 * probability rewrite its entry in all three (11.1 WAL pages per such PUT
 * on SQLite, 8.4 without: bench/results.md), to spare the rare summary
 * filtered by an account or a contact (about ten leads each) their table
 * lookups; a summary by source alone reads lead_totals, never the leads. */
#define SCHEMA_V9_INDEXES                                                                                    \
    "DROP INDEX leads_source;"                                                                               \
    "DROP INDEX leads_account;"                                                                              \
    "DROP INDEX leads_contact;"                                                                              \
    "CREATE INDEX leads_source ON leads (app_id, source, created_at DESC, id DESC);"                         \
    "CREATE INDEX leads_account ON leads (app_id, account_id, created_at DESC, id DESC);"                    \
    "CREATE INDEX leads_contact ON leads (app_id, contact_id, created_at DESC, id DESC);"

#endif
