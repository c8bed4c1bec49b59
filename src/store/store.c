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

/* Whether c is a blank or a quote: what a .env file, a --config value
 * or a paste may leave around a URL. */
static bool wrapping(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'';
}

/* Whether the URL begins or ends with a blank or a quote, or the path
 * (NULL: none) holds "://": a URL crmd would otherwise take for a file's
 * path (and print, password and all, in a message about that file). */
static bool garbled(const char *url, const char *path)
{
    size_t n = strlen(url);
    return (n > 0 && (wrapping(url[0]) || wrapping(url[n - 1]))) ||
           (path != NULL && strstr(path, "://") != NULL);
}

store_url_kind_t store_url_kind(const char *url, const char **path)
{
    *path = NULL;
    if (strncmp(url, "sqlite:", 7) == 0) {
        *path = url + 7;
        return url[7] != '\0' && strncmp(url + 7, "file:", 5) != 0 && !garbled(url, *path) ? STORE_URL_SQLITE
                                                                                           : STORE_URL_BAD;
    }
    /* A key=value string may end with a quoted value: taken as it is. */
    if (is_keyvalue(url)) return STORE_URL_POSTGRES;
    if (garbled(url, NULL)) return STORE_URL_BAD;
    if (is_postgres_url(url)) return STORE_URL_POSTGRES;
    if (url[0] == '\0' || scheme_len(url) > 0 || garbled(url, url)) return STORE_URL_BAD;
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
    else if (garbled(url, path) || (n == 0 && strstr(url, "://") != NULL))
        snprintf(what, sizeof what,
                 "the database URL has a blank or a quote at an end, or a path holds '://' (quotes a .env "
                 "file or --config kept?)");
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

const char *store_url_file(const char *url)
{
    const char *path;
    return store_url_kind(url, &path) == STORE_URL_SQLITE ? path : NULL;
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

static bool is_keyword_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '%';
}

static int hex_value(char c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The length of the keyword and '=' that s starts with when the keyword,
 * percent-decoded and in any case, ends in "password" (password,
 * sslpassword, pass%77ord), with blanks before the '=' too; else 0. */
static size_t password_key_len(const char *s)
{
    char key[64];
    size_t n = 0, k = 0;
    for (; is_keyword_char(s[n]); n++) {
        char c = s[n];
        if (c == '%' && hex_value(s[n + 1]) >= 0 && hex_value(s[n + 2]) >= 0) {
            c = (char)(hex_value(s[n + 1]) * 16 + hex_value(s[n + 2]));
            n += 2;
        }
        if (k + 1 >= sizeof key) return 0; /* no keyword of libpq's is this long */
        key[k++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    key[k] = '\0';
    if (k < 8 || strcmp(key + k - 8, "password") != 0) return 0;
    while (s[n] == ' ' || s[n] == '\t')
        n++;
    return s[n] == '=' ? n + 1 : 0;
}

/* The end of the value that starts at v. Inside a URL it runs to the next
 * '&' (blanks or quotes do not end it there); in a key=value string it
 * is libpq's: quoted with '...', or up to a blank, a backslash escaping
 * the next character in both. */
static const char *value_end(const char *v, bool in_url)
{
    if (in_url) return v + strcspn(v, "&");
    bool quoted = *v == '\'';
    const char *q = quoted ? v + 1 : v;
    while (*q != '\0' && (quoted ? *q != '\'' : *q != ' ' && *q != '\t' && *q != '\n')) {
        if (*q == '\\' && q[1] != '\0') q++;
        q++;
    }
    return quoted && *q == '\'' ? q + 1 : q;
}

/* At s, where a URL's authority starts: the length of what to copy before
 * "***" when it holds a password, else 0; *at gets where copying goes on.
 * The userinfo ends at the last '@' of the text: a password may hold any
 * character ('@', '/', '?', '#' and ':' included), so hiding too much is
 * the only safe mistake. The password follows the first ':' before it. */
static size_t userinfo_password(const char *s, const char **at)
{
    *at = strrchr(s, '@');
    if (*at == NULL) return 0;
    const char *colon = memchr(s, ':', (size_t)(*at - s));
    return colon != NULL ? (size_t)(colon + 1 - s) : 0;
}

/* Where a URL's authority starts when one begins at p (a scheme and "://",
 * or at the very start of the text a scheme and ':' with any slashes:
 * "postgres:user:pw@host" is what a mistyped URL looks like); else NULL.
 * start is the text's start. */
static const char *authority_at(const char *start, const char *p)
{
    if (p > start && is_scheme_char(p[-1])) return NULL;
    size_t n = scheme_len(p);
    if (n == 0) return NULL;
    if (strncmp(p + n, "//", 2) == 0) return p + n + 2;
    if (p != start) return NULL;
    p += n;
    while (*p == '/')
        p++;
    return p;
}

void store_url_redact(const char *url, char *out, size_t outsz)
{
    if (outsz == 0) return;
    out[0] = '\0';
    size_t len = 0;
    bool in_url = false;
    const char *p = url;
    while (*p != '\0') {
        const char *auth = authority_at(url, p), *at;
        size_t n;
        if (auth != NULL) {
            in_url = true;
            put(out, outsz, &len, p, (size_t)(auth - p));
            p = auth;
            if ((n = userinfo_password(auth, &at)) > 0) {
                put(out, outsz, &len, p, n);
                put(out, outsz, &len, "***", 3);
                p = at;
            }
            continue;
        }
        if ((p == url || !is_keyword_char(p[-1])) && (n = password_key_len(p)) > 0) {
            put(out, outsz, &len, p, n);
            p += n;
            while (!in_url && (*p == ' ' || *p == '\t'))
                put(out, outsz, &len, p++, 1);
            put(out, outsz, &len, "***", 3);
            p = value_end(p, in_url);
            continue;
        }
        put(out, outsz, &len, p++, 1);
    }
}

void store_text_hide(char *text, size_t textsz, const char *secret)
{
    if (secret == NULL || secret[0] == '\0' || textsz == 0) return;
    char out[STORE_LOG_LINE_MAX];
    size_t len = 0, n = strlen(secret);
    out[0] = '\0';
    const char *p = text, *q;
    while ((q = strstr(p, secret)) != NULL) {
        put(out, sizeof out, &len, p, (size_t)(q - p));
        put(out, sizeof out, &len, "***", 3);
        p = q + n;
    }
    put(out, sizeof out, &len, p, strlen(p));
    snprintf(text, textsz, "%s", out);
}
