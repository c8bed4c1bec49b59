/*
 * test_store_url.c: how store_open reads a database URL, and that
 * store_url_redact never lets a password through.
 *
 * No database server is needed: PostgreSQL strings are pointed at a socket
 * directory that does not exist, so they fail at once, and the message
 * tells which backend tried.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"

static void expect_redacted(const char *url, const char *want)
{
    char out[256];
    store_url_redact(url, out, sizeof out);
    cr_assert_str_eq(out, want, "%s", url);
    cr_assert_null(strstr(out, "secret"), "%s", out);
}

Test(store_url, redacts_url_passwords)
{
    expect_redacted("postgresql://crmd:secret@db:5432/crmd", "postgresql://crmd:***@db:5432/crmd");
    expect_redacted("postgres://crmd:secret@db/crmd?sslmode=require",
                    "postgres://crmd:***@db/crmd?sslmode=require");
    /* An unencoded '@' in the password: the authority ends at the last one. */
    expect_redacted("postgresql://u:se@cret@h/db", "postgresql://u:***@h/db");
    expect_redacted("postgresql://h/db?user=u&password=secret&sslmode=disable",
                    "postgresql://h/db?user=u&password=***&sslmode=disable");
}

/* Passwords of every shape: the review found '#' and '?' printed in clear.
 * The userinfo ends at the last '@', whatever comes before it. */
Test(store_url, redacts_hostile_url_passwords)
{
    expect_redacted("postgresql://crmd:se#cret@db/crmd", "postgresql://crmd:***@db/crmd");
    expect_redacted("postgresql://crmd:se?cret@db/crmd", "postgresql://crmd:***@db/crmd");
    expect_redacted("postgresql://crmd:se/cret@db/crmd", "postgresql://crmd:***@db/crmd");
    expect_redacted("postgresql://crmd:se:cret@db:5432/crmd", "postgresql://crmd:***@db:5432/crmd");
    expect_redacted("postgres://crmd:s#e?c/r@e:t@db/crmd?sslmode=require",
                    "postgres://crmd:***@db/crmd?sslmode=require");
    expect_redacted("postgresql://crmd:secret@[::1]:5432,db2:5433/crmd",
                    "postgresql://crmd:***@[::1]:5432,db2:5433/crmd");
    expect_redacted("postgresql://:secret@/crmd?host=/run/postgresql",
                    "postgresql://:***@/crmd?host=/run/postgresql");
    /* Query parameters: any value up to the next '&', the keyword
     * percent-encoded or not, sslpassword too. */
    expect_redacted("postgresql://db/crmd?password=se#c re?t&sslmode=disable",
                    "postgresql://db/crmd?password=***&sslmode=disable");
    expect_redacted("postgresql://db/crmd?pass%77ord=secret", "postgresql://db/crmd?pass%77ord=***");
    expect_redacted("postgresql://db/crmd?PASSWORD=secret", "postgresql://db/crmd?PASSWORD=***");
    expect_redacted("postgresql://db/crmd?sslmode=require&sslpassword=secret",
                    "postgresql://db/crmd?sslmode=require&sslpassword=***");
    /* A mistyped URL, quoted in a message, keeps its password hidden too. */
    expect_redacted("postgres:crmd:secret@localhost/crmd", "postgres:crmd:***@localhost/crmd");
    /* libpq's own message quotes the whole URL when it cannot read it. */
    expect_redacted("end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
                    "\"postgresql://u:se\"cr@et@[::1/db\"",
                    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
                    "\"postgresql://u:***@[::1/db\"");
}

Test(store_url, redacts_keyvalue_passwords)
{
    expect_redacted("host=/tmp port=5433 password=secret dbname=crmd",
                    "host=/tmp port=5433 password=*** dbname=crmd");
    expect_redacted("password = 'sec ret\\' secret' dbname=crmd", "password = *** dbname=crmd");
    expect_redacted("dbname=crmd password=secret", "dbname=crmd password=***");
    expect_redacted("host=db password='with secret spaces' dbname=crmd", "host=db password=*** dbname=crmd");
    expect_redacted("host=db password = secret", "host=db password = ***");
    expect_redacted("host=db password=se\\ cret dbname=crmd", "host=db password=*** dbname=crmd");
    expect_redacted("host=db password=se#c?r/e@t:x&y dbname=crmd", "host=db password=*** dbname=crmd");
    expect_redacted("host=db sslpassword=secret", "host=db sslpassword=***");
    /* libpq reads "password= x" as the password "x". */
    expect_redacted("host=db password= secret", "host=db password= ***");
}

Test(store_url, hides_a_known_password_anywhere)
{
    char text[128] = "FATAL: role \"secret\" said secret twice";
    store_text_hide(text, sizeof text, "secret");
    cr_assert_str_eq(text, "FATAL: role \"***\" said *** twice");
    store_text_hide(text, sizeof text, NULL);
    store_text_hide(text, sizeof text, "");
    cr_assert_str_eq(text, "FATAL: role \"***\" said *** twice");
}

Test(store_url, leaves_everything_else_alone)
{
    expect_redacted("postgresql://crmd@db/crmd", "postgresql://crmd@db/crmd");
    expect_redacted("postgresql://db:5432/crmd", "postgresql://db:5432/crmd");
    expect_redacted("sqlite:var/crmd.db", "sqlite:var/crmd.db");
    expect_redacted("host=db passwordless=1", "host=db passwordless=1");
}

Test(store_url, redaction_fits_any_buffer)
{
    char out[12];
    store_url_redact("postgresql://crmd:secret@db/crmd", out, sizeof out);
    cr_assert_eq(strlen(out), sizeof out - 1);
    cr_assert_null(strstr(out, "secret"));
    char one[1] = {'x'};
    store_url_redact("password=secret", one, sizeof one);
    cr_assert_eq(one[0], '\0');
}

/* Opens url and returns the error message (empty when it opened). */
static void open_error(const char *url, char *err, size_t errsz)
{
    err[0] = '\0';
    store_t *s = store_open(url, err, errsz);
    if (s != NULL) {
        err[0] = '\0';
        store_close(s);
    }
}

Test(store_url, picks_the_backend)
{
    char err[512];
    open_error("postgresql://u:secret@/crmd?host=/nonexistent-crmd-dir", err, sizeof err);
    cr_assert(strstr(err, "PostgreSQL") != NULL, "%s", err);
    cr_assert_null(strstr(err, "secret"), "%s", err);
    open_error("postgres://u@/crmd?host=/nonexistent-crmd-dir", err, sizeof err);
    cr_assert(strstr(err, "PostgreSQL") != NULL, "%s", err);
    open_error("host=/nonexistent-crmd-dir dbname=crmd", err, sizeof err);
    cr_assert(strstr(err, "PostgreSQL") != NULL, "%s", err);
    open_error("  dbname = crmd host=/nonexistent-crmd-dir", err, sizeof err);
    cr_assert(strstr(err, "PostgreSQL") != NULL, "%s", err);
    open_error("mysql://u:secret@db/crmd", err, sizeof err);
    cr_assert(strstr(err, "unrecognised database URL 'mysql:...'") != NULL, "%s", err);
    cr_assert_null(strstr(err, "secret"), "%s", err);

    /* A path with '=' after a '/' is still a path to an SQLite file. */
    char dir[] = "/tmp/crmd-store-url-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a=b.db", dir);
    open_error(path, err, sizeof err);
    cr_assert_str_eq(err, "", "%s", err);
    cr_assert_eq(access(path, F_OK), 0);
    char url[300];
    snprintf(url, sizeof url, "sqlite:%s/c.db", dir);
    open_error(url, err, sizeof err);
    cr_assert_str_eq(err, "", "%s", err);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* What store_url_check (and so store_open) takes: exactly the documented
 * forms; a mistyped URL is refused, never taken for an SQLite path. */
Test(store_url, accepts_exactly_the_documented_forms)
{
    static const char *const good[] = {
        "sqlite:var/crmd.db",
        "sqlite:/abs/crmd.db",
        "sqlite:./file:x.db",
        "var/crmd.db",
        "/abs/crmd.db",
        "./postgres:localhost",
        "crmd.db",
        "var/a=b.db",
        "postgres://db/crmd",
        "postgresql://u@db/crmd",
        "host=/run/postgresql dbname=crmd",
        "  dbname = crmd",
        "host=db password='a b'",
        ":memory:",
    };
    static const char *const bad[] = {
        "postgres:localhost",
        "mysql://x",
        "postgresql:/x",
        "postgresql:x",
        "Postgres://db/crmd",
        "file:crmd.db",
        "sqlite:",
        "sqlite:file:crmd.db?mode=rwc",
        "",
        "c:crmd.db",
        "my.db:1",
        "s3+http://bucket/db",
        /* blanks or quotes around a URL (a .env file, --config, a paste),
         * or "://" in a path: a URL taken for a file (helper-84) */
        " postgresql://u:s3cret@db/crmd",
        "\"postgresql://u:s3cret@db/crmd\"",
        "'crmd.db'",
        "crmd.db ",
        "sqlite:postgresql://u:s3cret@db/crmd",
        "./x://y",
    };
    char err[STORE_OPEN_ERR_MAX];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect(store_url_check(good[i], err, sizeof err), "%s refused: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_expect(!store_url_check(bad[i], err, sizeof err), "%s accepted", bad[i]);
        cr_expect(strstr(err, "sqlite:PATH") != NULL && strstr(err, "postgresql://") != NULL &&
                      strstr(err, "key=value") != NULL,
                  "%s: the message does not name the accepted forms: %s", bad[i], err);
        cr_expect_null(strstr(err, "s3cret"), "%s: the message shows the password: %s", bad[i], err);
    }
    cr_expect(!store_url_is_shared("postgres:localhost"));
    cr_expect(store_url_is_shared("postgres://db/crmd") && store_url_is_shared("host=db"));
    cr_expect(!store_url_is_shared("var/crmd.db") && !store_url_is_shared("sqlite:host=db"));
}

/* The message about a string crmd cannot read shows nothing past its
 * scheme: the rest may hold a password in any shape. */
Test(store_url, refusal_shows_only_the_scheme)
{
    char err[STORE_OPEN_ERR_MAX];
    cr_assert(!store_url_check("postgres:crmd:secret@db", err, sizeof err));
    cr_expect(strstr(err, "'postgres:...'") != NULL, "%s", err);
    cr_expect_null(strstr(err, "secret"), "%s", err);
    cr_expect_null(strstr(err, "crmd:"), "%s", err);
}

/* A refused form creates nothing: before, "postgres:localhost" became a
 * new SQLite file of that name. */
Test(store_url, a_refused_form_creates_no_file)
{
    char dir[] = "/tmp/crmd-store-url-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    char err[STORE_OPEN_ERR_MAX];
    static const char *const bad[] = {"postgres:localhost", "postgresql:/x", "sqlite:file:x.db"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        open_error(bad[i], err, sizeof err);
        cr_expect(strstr(err, "crmd takes sqlite:PATH") != NULL, "%s: %s", bad[i], err);
    }
    cr_expect_eq(access("postgres:localhost", F_OK), -1);
    cr_expect_eq(access("x.db", F_OK), -1);
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rmdir(dir), 0, "the refused forms left files in %s", dir);
}

/* libpq's reason for a string it cannot read quotes the string or a piece
 * of it: the piece may be a password. */
Test(store_url, unreadable_connection_strings_show_no_password)
{
    static const char *const urls[] = {
        "postgresql://u:se%zzcret@/crmd?host=/nonexistent-crmd-dir",
        "postgresql://u:se#cret@[::1/crmd",
        "host=/nonexistent-crmd-dir password=sec ret",
        "postgresql://u@/crmd?host=/nonexistent-crmd-dir&secret",
    };
    char err[STORE_OPEN_ERR_MAX];
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        open_error(urls[i], err, sizeof err);
        cr_expect(strstr(err, "PostgreSQL") != NULL, "%s: %s", urls[i], err);
        cr_expect_null(strstr(err, "cret"), "%s: %s", urls[i], err);
        cr_expect_null(strstr(err, "ret"), "%s: %s", urls[i], err);
    }
}
