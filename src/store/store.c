/*
 * store.c: reading database URLs: which kind of database one names, and
 * the URL with its password hidden, for messages. store_open (open.c)
 * picks the backend by these rules.
 *
 * The forms, in the order they are tried:
 *   sqlite:PATH                        SQLite
 *   postgres://... or postgresql://... PostgreSQL (a libpq connection URL)
 *   KEYWORD=VALUE ...                  PostgreSQL (a libpq key=value string:
 *                                      it starts with a keyword and '=')
 *   anything else without "://"        a path to an SQLite file
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

/* True when s starts like a libpq key=value string: optional blanks, a
 * keyword made of letters and '_', optional blanks, then '='. A path such
 * as "var/a=b.db" has a '/' before its '=', so it stays a path. */
static bool is_keyvalue(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    const char *start = s;
    while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')
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

bool store_url_is_shared(const char *url)
{
    return strncmp(url, "sqlite:", 7) != 0 &&
           (is_postgres_url(url) || (strstr(url, "://") == NULL && is_keyvalue(url)));
}

const char *store_url_file(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0) return url + 7;
    if (store_url_is_shared(url) || strstr(url, "://") != NULL) return NULL;
    return url;
}

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
