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

Test(store_url, redacts_keyvalue_passwords)
{
    expect_redacted("host=/tmp port=5433 password=secret dbname=crmd",
                    "host=/tmp port=5433 password=*** dbname=crmd");
    expect_redacted("password = 'sec ret\\' secret' dbname=crmd", "password = *** dbname=crmd");
    expect_redacted("dbname=crmd password=secret", "dbname=crmd password=***");
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
    cr_assert(strstr(err, "unknown database URL scheme") != NULL, "%s", err);
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
