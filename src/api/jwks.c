/*
 * jwks.c: GET /.well-known/jwks.json: crmd's public token keys (the one
 * that signs and older ones that still verify), for services that check
 * crmd's tokens themselves. No credentials, no database: the keyring's
 * newest snapshot holds the text.
 */
#include "api/handlers.h"
#include "api/keyring.h"
#include "api/request.h"

void jwks_get(api_req_t *r)
{
    keyring_snap_t *snap = keyring_acquire(r->t->shared->keys);
    jw_raw(&r->out, snap->jwks, snap->jwks_len);
    keyring_release(snap);
    api_reply(r, 200);
}
