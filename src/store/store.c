/*
 * store.c: reading database URLs: which kind of database one names,
 * whether crmd accepts it at all, and a URL (or a database's message that
 * quotes one) with its passwords hidden, for messages. store_open
 * (open.c) picks the backend by these rules.
 *
 * The accepted forms, and nothing else:
 *   sqlite:PATH                        SQLite (PATH not empty, and not an
 *                                      SQLite "file:" URI)
 *   postgres://... or postgresql://... PostgreSQL (a libpq connection URL)
 *   KEYWORD=VALUE ...                  PostgreSQL (a libpq key=value string:
 *                                      it starts with a keyword and '=')
 *   PATH                               SQLite, for a path that does not
 *                                      begin like a URL scheme ("word:")
 * Anything else ("postgres:localhost", "mysql://x", "postgresql:/x") is
 * refused: a mistyped URL must never become a new SQLite file named after
 * it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The characters of a URL scheme after its first letter (RFC 3986). */
static bool is_scheme_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

/* The length of the URL scheme and its ':' that s starts with
 * ("postgres:" gives 9), or 0. */
static size_t scheme_len(const char *s)
{
    if (!is_alpha(s[0])) return 0;
    size_t n = 1;
    while (is_scheme_char(s[n]))
        n++;
    return s[n] == ':' ? n + 1 : 0;
}

/* True when s starts like a libpq key=value string: optional blanks, a
 * keyword made of letters and '_', optional blanks, then '='. A path such
 * as "var/a=b.db" has a '/' before its '=', so it stays a path. */
static bool is_keyvalue(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    const char *start = s;
    while (is_alpha(*s) || *s == '_')
        s++;
    if (s == start) return false;
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '=';
}

static bool is_postgres_url(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

store_url_kind_t store_url_kind(const char *url, const char **path)
{
    *path = NULL;
    if (strncmp(url, "sqlite:", 7) == 0) {
        *path = url + 7;
        return url[7] != '\0' && strncmp(url + 7, "file:", 5) != 0 ? STORE_URL_SQLITE : STORE_URL_BAD;
    }
    if (is_postgres_url(url) || is_keyvalue(url)) return STORE_URL_POSTGRES;
    if (url[0] == '\0' || scheme_len(url) > 0) return STORE_URL_BAD;
    *path = url;
    return STORE_URL_SQLITE;
}

bool store_url_is_shared(const char *url)
{
    const char *path;
    return store_url_kind(url, &path) == STORE_URL_POSTGRES;
}

bool store_url_check(const char *url, char *err, size_t errsz)
{
    const char *path;
    if (store_url_kind(url, &path) != STORE_URL_BAD) return true;
    /* Only the part before the first ':' is shown: the rest of a string
     * crmd cannot read may hold a password in any shape. */
    char what[STORE_URL_SHOWN_MAX];
    size_t n = scheme_len(url);
    if (url[0] == '\0')
        snprintf(what, sizeof what, "the database URL is empty");
    else if (path != NULL && path[0] == '\0')
        snprintf(what, sizeof what, "'sqlite:' names no file");
    else if (path != NULL)
        snprintf(what, sizeof what, "SQLite URI filenames ('sqlite:file:...') are not taken");
    else
        snprintf(what, sizeof what, "unrecognised database URL '%.*s%s'", (int)n, url,
                 url[n] != '\0' ? "..." : "");
    snprintf(err, errsz,
             "%s; crmd takes sqlite:PATH, a path that does not begin like a URL scheme (write ./NAME:... for "
             "a file whose name has a ':'), postgres://... or postgresql://..., or a libpq key=value string "
             "such as 'host=/run/postgresql dbname=crmd'",
             what);
    return false;
}

/* --- redaction --------------------------------------------------------------- */

/* Appends n bytes of s to out at *len, keeping room for the NUL. */
static void put(char *out, size_t outsz, size_t *len, const char *s, size_t n)
{
    if (*len + 1 >= outsz) return;
    if (n > outsz - 1 - *len) n = outsz - 1 - *len;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

void store_url_redact(const char *url, char *out, size_t outsz)
{
    if (outsz == 0) return;
    out[0] = '\0';
    size_t len = 0;
    const char *p = url;
    /* A URL's password sits between the user's ':' and the '@' that ends
     * the authority. */
    const char *scheme_end = strstr(url, "://");
    if (scheme_end != NULL) {
        const char *auth = scheme_end + 3;
        const char *auth_end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *q = auth; q < auth_end; q++)
            if (*q == '@') at = q;
        const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            put(out, outsz, &len, url, (size_t)(colon + 1 - url));
            put(out, outsz, &len, "***", 3);
            p = at;
        }
    }
    /* "password=" in a key=value string or a URL's query: hide the value,
     * quoted or up to the next blank or '&'. */
    for (;;) {
        const char *kw = strstr(p, "password");
        if (kw == NULL) break;
        const char *eq = kw + 8;
        while (*eq == ' ')
            eq++;
        if (*eq != '=') {
            put(out, outsz, &len, p, (size_t)(kw + 8 - p));
            p = kw + 8;
            continue;
        }
        eq++;
        while (*eq == ' ')
            eq++;
        put(out, outsz, &len, p, (size_t)(eq - p));
        put(out, outsz, &len, "***", 3);
        if (*eq == '\'') {
            const char *q = eq + 1;
            while (*q != '\0' && *q != '\'')
                q += (*q == '\\' && q[1] != '\0') ? 2 : 1;
            p = *q == '\'' ? q + 1 : q;
        } else {
            p = eq + strcspn(eq, " \t&");
        }
    }
    put(out, outsz, &len, p, strlen(p));
}
