/*
 * store.c: picks a backend from a database URL.
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"

store_t *store_open(const char *url, char *err, size_t errsz)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        return store_sqlite_open(url + 7, err, errsz);
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        snprintf(err, errsz, "this build of crmd has no PostgreSQL backend");
        return NULL;
    }
    if (strstr(url, "://") != NULL) {
        snprintf(err, errsz, "unknown database URL scheme in '%s' (use sqlite:PATH)", url);
        return NULL;
    }
    return store_sqlite_open(url, err, errsz);
}
