/*
 * keyring.c: crmd's own keys and their states (see keyring.h): what the
 * command line signs with, and what a server's key set is built from
 * (keypoll.c).
 */
#include "api/keyring.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/timestamp.h"

/* What keyring_read gathers: the rows, and their PEM text while needed. */
typedef struct reading {
    keyring_list_t *out;
    size_t cap;
    char **pems;
    bool lost; /* out of memory */
} reading_t;

static void add_row(void *ctx, const store_key_t *k)
{
    reading_t *r = ctx;
    if (r->lost) return;
    if (r->out->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        keyring_entry_t *v = realloc(r->out->v, cap * sizeof *v);
        char **p = realloc(r->pems, cap * sizeof *p);
        if (v != NULL) r->out->v = v;
        if (p != NULL) r->pems = p;
        if (v == NULL || p == NULL) {
            r->lost = true;
            return;
        }
        r->cap = cap;
    }
    char *pem = strdup(k->pem);
    if (pem == NULL) {
        r->lost = true;
        return;
    }
    r->pems[r->out->n] = pem;
    r->out->v[r->out->n++] = (keyring_entry_t){.seq = k->seq,
                                               .created_at = k->created_at,
                                               .signed_until = k->signed_until,
                                               .retired_at = k->retired_at};
}

/* The state of every entry at now_s: the newest unretired key signs. */
static void set_states(keyring_list_t *l, int64_t now_s)
{
    bool signer = false;
    for (size_t i = l->n; i-- > 0;) {
        keyring_entry_t *e = &l->v[i];
        if (e->retired_at > 0)
            e->state = KEY_RETIRED;
        else if (!signer)
            e->state = KEY_SIGNING, signer = true;
        else if (e->signed_until == STORE_KEY_UNTRACKED || e->signed_until > now_s)
            e->state = KEY_VERIFYING;
        else
            e->state = KEY_EXPIRED;
    }
}

store_rc_t keyring_read(store_t *s, int64_t now_s, enum keyring_read_mode mode, keyring_list_t *out)
{
    memset(out, 0, sizeof *out);
    reading_t r = {.out = out};
    store_rc_t rc = store_keys(s, add_row, &r);
    if (rc == STORE_OK && r.lost) rc = STORE_ERROR;
    set_states(out, now_s);
    for (size_t i = 0; i < out->n; i++) {
        keyring_entry_t *e = &out->v[i];
        jwt_key_t *key = mode != KEYRING_STATES ? jwt_key_load(r.pems[i], strlen(r.pems[i])) : NULL;
        if (key != NULL) snprintf(e->kid, sizeof e->kid, "%s", jwt_key_id(key));
        if (mode == KEYRING_LOAD && (e->state == KEY_SIGNING || e->state == KEY_VERIFYING))
            e->key = key;
        else
            jwt_key_free(key);
        OPENSSL_cleanse(r.pems[i], strlen(r.pems[i])); /* a private key: not left in freed heap */
        free(r.pems[i]);
    }
    free(r.pems);
    if (rc != STORE_OK) keyring_list_free(out);
    return rc;
}

void keyring_list_free(keyring_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        jwt_key_free(l->v[i].key);
    free(l->v);
    memset(l, 0, sizeof *l);
}

const char *keyring_state_name(keyring_state_t state)
{
    static const char *const names[] = {"signing", "verifying", "expired", "retired"};
    return names[state];
}

/* Makes a new key and stores it; first: only into an empty table. */
static store_rc_t add_new_key(store_t *s, bool first, char *err, size_t errsz)
{
    char *pem = NULL;
    if (jwt_key_generate(&pem) != JWT_OK) {
        snprintf(err, errsz, "cannot generate a signing key");
        return STORE_ERROR;
    }
    store_key_t k = {.pem = pem, .created_at = ts_now_ms(), .signed_until = 0};
    store_rc_t rc = store_key_add(s, &k, first);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    if (rc != STORE_OK) snprintf(err, errsz, "cannot store a new signing key");
    return rc;
}

/* The signing entry of l, or NULL. */
static keyring_entry_t *signer_of(keyring_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].state == KEY_SIGNING) return &l->v[i];
    return NULL;
}

jwt_key_t *keyring_signing_key(store_t *s, int64_t *seq, char *err, size_t errsz)
{
    keyring_list_t l;
    err[0] = '\0';
    for (int attempt = 0; attempt < 2; attempt++) {
        if (keyring_read(s, ts_now_ms() / 1000, KEYRING_LOAD, &l) != STORE_OK) {
            snprintf(err, errsz, "cannot read the signing keys from the database");
            return NULL;
        }
        keyring_entry_t *e = signer_of(&l);
        if (e != NULL && e->key == NULL) {
            snprintf(err, errsz, "the signing key (seq %lld) is not a valid RSA key", (long long)e->seq);
            keyring_list_free(&l);
            return NULL;
        }
        if (e != NULL) {
            jwt_key_t *key = e->key;
            e->key = NULL;
            *seq = e->seq;
            keyring_list_free(&l);
            return key;
        }
        /* None yet (or all retired): concurrent first uses store one. */
        bool first = l.n == 0;
        keyring_list_free(&l);
        if (attempt > 0 || add_new_key(s, first, err, errsz) != STORE_OK) break;
    }
    if (err[0] == '\0') snprintf(err, errsz, "no signing key");
    return NULL;
}

store_rc_t keyring_rotate(store_t *s, char *kid, char *err, size_t errsz)
{
    store_rc_t rc = add_new_key(s, false, err, errsz);
    keyring_list_t l;
    if (rc == STORE_OK) rc = keyring_read(s, ts_now_ms() / 1000, KEYRING_KIDS, &l);
    if (rc != STORE_OK) return rc;
    const keyring_entry_t *e = signer_of(&l);
    snprintf(kid, JWT_KID_MAX, "%s", e != NULL ? e->kid : "");
    keyring_list_free(&l);
    return STORE_OK;
}
