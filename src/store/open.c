/*
 * open.c: store_open, which picks a backend from a database URL (by the
 * rules of store.c) and opens it.
 *
 * The one place outside a backend that knows the backends: kept apart
 * from store.c, which everything uses, so that the interface never calls
 * up into what implements it.
 */
#include "store/store_int.h"

static store_t *open_url(const char *url, bool create, char *err, size_t errsz)
{
    const char *path;
    switch (store_url_kind(url, &path)) {
    case STORE_URL_SQLITE:
        return store_sqlite_open(path, create, err, errsz);
    case STORE_URL_POSTGRES:
        return store_postgres_open(url, err, errsz);
    case STORE_URL_BAD:
        break;
    }
    store_url_check(url, err, errsz);
    return NULL;
}

store_t *store_open(const char *url, char *err, size_t errsz)
{
    return open_url(url, true, err, errsz);
}

store_t *store_open_existing(const char *url, char *err, size_t errsz)
{
    return open_url(url, false, err, errsz);
}
