/*
 * open.c: store_open, which picks a backend from a database URL (by the
 * rules of store.c) and opens it.
 *
 * The one place outside a backend that knows the backends: kept apart
 * from store.c, which everything uses, so that the interface never calls
 * up into what implements it.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

store_t *store_open(const char *url, char *err, size_t errsz)
{
    if (strncmp(url, "sqlite:", 7) == 0) return store_sqlite_open(url + 7, err, errsz);
    if (store_url_is_shared(url)) return store_postgres_open(url, err, errsz);
    if (strstr(url, "://") != NULL) {
        char shown[STORE_URL_SHOWN_MAX];
        store_url_redact(url, shown, sizeof shown);
        snprintf(err, errsz, "unknown database URL scheme in '%s' (use sqlite:PATH or postgres://...)",
                 shown);
        return NULL;
    }
    return store_sqlite_open(url, err, errsz);
}
