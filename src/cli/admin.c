/*
 * admin.c: crmd app, token, migrate and key: the commands that manage
 * apps (tenants), bearer tokens and their revocation, the schema, and the
 * signing keys, each against a database URL.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "api/keyring.h"
#include "auth/jwt.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "model/timestamp.h"
#include "model/uuid.h"
#include "store/store.h"

#define DEFAULT_TTL_S (30 * 86400)
#define ISSUER "crmd"

/* The key that signs, making and saving one on first use; its seq goes
 * into *seq. NULL (reason printed) on failure. */
static jwt_key_t *signing_key(store_t *s, int64_t *seq)
{
    char err[256];
    jwt_key_t *key = keyring_signing_key(s, seq, err, sizeof err);
    if (key == NULL) fprintf(stderr, "crmd: %s\n", err);
    return key;
}

/* Signs a token for the app (its key and id) with key, the signing key
 * of s whose seq is seq, and, before anyone can have it, records its
 * expiry with that key (so that the key is known to verify until then)
 * and the token itself (`crmd token revoke` knows only recorded tokens);
 * names its id on stderr. The caller frees *token. */
static int issue_token(store_t *s, const jwt_key_t *key, int64_t seq, const store_app_t *app,
                       const char *subject, int64_t ttl, char **token)
{
    jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.iss, sizeof c.iss, "%s", ISSUER);
    snprintf(c.sub, sizeof c.sub, "%s", subject);
    snprintf(c.app, sizeof c.app, "%s", app->key);
    char jti[UUID_BUFSZ];
    int64_t now_ms = ts_now_ms();
    if (uuid_v7(now_ms, jti) != 0) return -1;
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.iat = now_ms / 1000;
    c.exp = c.iat + ttl;
    if (jwt_sign(key, &c, token) != JWT_OK) {
        fprintf(stderr, "crmd: cannot sign a token\n");
        return -1;
    }
    store_token_t rec = {.jti = jti,
                         .app = app->id,
                         .subject = subject,
                         .issued_at = c.iat * 1000,
                         .expires_at = c.exp * 1000};
    const char *unsaved = store_key_update(s, seq, c.exp, 0) != STORE_OK ? "the token's expiry with its key"
                          : store_token_record(s, &rec) != STORE_OK      ? "the token in the database"
                                                                         : NULL;
    if (unsaved != NULL) {
        fprintf(stderr, "crmd: cannot record %s\n", unsaved);
        free(*token);
        *token = NULL;
        return -1;
    }
    /* The id is what `crmd token revoke` takes; stdout stays the token. */
    fprintf(stderr, "crmd: token jti=%s expires in %" PRId64 "s\n", jti, ttl);
    return 0;
}

/* Makes a new app key, "pk_live_" and 32 hex digits, into key (64 bytes). */
static int new_app_key(char key[64])
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return -1;
    int n = snprintf(key, 64, "pk_live_");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(key + n, 64 - (size_t)n, "%02x", rnd[i]);
    return 0;
}

static int app_create(store_t *s, const char *name)
{
    /* app list prints names in tab-separated lines: a control byte (a tab,
     * a newline) would break them, and no one names an app so. */
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++)
        if (*c < 0x20 || *c == 0x7f)
            return cli_usage_error("%s", "an app's NAME must hold no control character");
    int64_t seq;
    jwt_key_t *key = signing_key(s, &seq);
    char app_key[64];
    if (key == NULL || new_app_key(app_key) != 0) {
        jwt_key_free(key);
        return 1;
    }
    int rc = 1;
    store_app_t app;
    char *token = NULL;
    if (store_app_create(s, app_key, name, ts_now_ms(), &app) != STORE_OK) {
        fprintf(stderr, "crmd: cannot create the app\n");
    } else if (issue_token(s, key, seq, &app, "admin", DEFAULT_TTL_S, &token) != 0) {
        fprintf(stderr, "crmd: the app '%s' was created without a token: crmd token issue --app %s\n", name,
                app_key);
    } else {
        printf("export BLOCKS_API_KEY=%s\nexport BLOCKS_AUTH_TOKEN=%s\n", app_key, token);
        fprintf(stderr, "crmd: created app '%s'\n", name);
        rc = 0;
    }
    free(token);
    jwt_key_free(key);
    return rc;
}

static void print_app(void *ctx, const store_app_t *app, int64_t leads)
{
    (void)ctx;
    char when[TS_BUFSZ];
    ts_format(app->created_at, when);
    printf("%s\t%s\t%s\t%" PRId64 "\t%s\n", app->key, app->disabled ? "disabled" : "enabled", when, leads,
           app->name);
}

/* Lists the apps (key NULL), or disables or enables one (verb). */
static int app_admin(store_t *s, const char *db, const char *verb, const char *key)
{
    int rc;
    if (key == NULL) {
        printf("key\tstate\tcreated_at\tleads\tname\n");
        rc = store_app_list(s, print_app, NULL);
    } else {
        rc = store_app_set_disabled(s, key, strcmp(verb, "disable") == 0);
        if (rc == STORE_NOT_FOUND)
            fprintf(stderr, "crmd: no app with key '%s' in %s\n", key, cli_shown(db));
        else if (rc == STORE_OK)
            fprintf(stderr, "crmd: app %s %sd; running servers follow within a second\n", key, verb);
    }
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        fprintf(stderr, "crmd: cannot %s apps in %s\n", verb, cli_shown(db));
    return rc == STORE_OK ? 0 : 1;
}

/* app create, list, disable and enable (verb), after their options. */
static int app_run(store_t *s, const char *db, char **args, const char *verb)
{
    if (strcmp(verb, "create") == 0) return app_create(s, args[0]);
    return app_admin(s, db, verb, strcmp(verb, "list") == 0 ? NULL : args[0]);
}

int cli_app(int argc, char **argv)
{
    static const char help[] = "usage: crmd app create NAME [--db URL]\n"
                               "       crmd app list [--db URL]\n"
                               "       crmd app disable KEY [--db URL]\n"
                               "       crmd app enable KEY [--db URL]\n";
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "disable") != 0 &&
        strcmp(verb, "enable") != 0)
        return cli_verb_help(argc, argv, help);
    int npos = strcmp(verb, "list") == 0 ? 0 : 1;
    /* disable and enable name an app: a new database holds none. */
    bool create = strcmp(verb, "create") == 0 || strcmp(verb, "list") == 0;
    return cli_run_simple(argc - 1, argv + 1, help, npos, create, app_run, verb);
}

/* Revokes token jti in the database db; unrecorded also takes a token
 * this database has no record of (one issued before records were kept). */
static int token_revoke(const char *db, const char *jti, bool unrecorded)
{
    store_t *s = cli_open_db(db);
    if (s == NULL) return 1;
    store_rc_t rc = store_token_revoke(s, jti, ts_now_ms(), unrecorded);
    store_close(s);
    switch (rc) {
    case STORE_OK:
        fprintf(stderr, "crmd: token %s revoked; running servers refuse it within a second\n", jti);
        return 0;
    case STORE_CONFLICT:
        fprintf(stderr, "crmd: token %s was already revoked\n", jti);
        return 0;
    case STORE_NOT_FOUND:
        fprintf(stderr,
                "crmd: no token with jti %s was issued by %s; nothing was revoked (a token issued before "
                "crmd recorded the tokens it issues, or by an identity provider, is revoked with "
                "--unrecorded)\n",
                jti, cli_shown(db));
        return 1;
    default:
        fprintf(stderr, "crmd: cannot record the revocation in %s\n", cli_shown(db));
        return 1;
    }
}

static int cmd_token_revoke(int argc, char **argv)
{
    static const char help[] = "usage: crmd token revoke JTI [--unrecorded] [--db URL]\n";
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *unrecorded = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"unrecorded", &unrecorded, true}, {NULL}};
    int first, rc = cli_parse_opts(argc, argv, help, opts, 1, &first);
    if (rc >= 0 || (rc = cli_check_db("--db", db)) >= 0) return rc;
    return token_revoke(db, argv[first], unrecorded != NULL);
}

/* Prints a token for the app with key app in the database db. */
static int token_issue(const char *db, const char *app, const char *subject, int64_t ttl)
{
    store_t *s = cli_open_existing_db(db);
    if (s == NULL) return 1;
    int rc = 1;
    store_app_t found;
    int frc = store_app_find(s, app, &found, NULL);
    if (frc == STORE_NOT_FOUND) {
        fprintf(stderr, "crmd: no app with key '%s' in %s\n", app, cli_shown(db));
    } else if (frc != STORE_OK) {
        fprintf(stderr, "crmd: cannot read apps from %s\n", cli_shown(db));
    } else {
        char *token = NULL;
        int64_t seq;
        jwt_key_t *key = signing_key(s, &seq);
        if (key != NULL && issue_token(s, key, seq, &found, subject, ttl, &token) == 0) {
            printf("%s\n", token);
            rc = 0;
        }
        free(token);
        jwt_key_free(key);
    }
    store_close(s);
    return rc;
}

int cli_token(int argc, char **argv)
{
    static const char help[] = "usage: crmd token issue --app KEY [--subject S] [--ttl DURATION] [--db URL]\n"
                               "       crmd token revoke JTI [--unrecorded] [--db URL]\n";
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0) return cmd_token_revoke(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "issue") != 0) return cli_verb_help(argc, argv, help);
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *app = NULL, *subject = "cli", *ttl_s = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"app", &app}, {"subject", &subject}, {"ttl", &ttl_s}, {NULL}};
    int first, rc = cli_parse_opts(argc - 1, argv + 1, help, opts, 0, &first);
    if (rc >= 0) return rc;
    if (app == NULL) return cli_help_exit(help, false);
    if ((rc = cli_check_db("--db", db)) >= 0) return rc;
    int64_t ttl = DEFAULT_TTL_S;
    if (ttl_s != NULL && (ttl = cli_parse_ttl(ttl_s)) < 0)
        return cli_usage_error("--ttl wants a number with s, m, h or d (up to 3650d), not '%s'", ttl_s);
    if (strlen(subject) >= JWT_CLAIM_MAX) return cli_usage_error("--subject is too long: '%s'", subject);
    return token_issue(db, app, subject, ttl);
}

static int migrated(store_t *s, const char *db, char **args, const char *verb)
{
    (void)s;
    (void)args;
    (void)verb;
    /* Said after the migration ran (cli_open_db), whether it had work. */
    fprintf(stderr, "crmd: %s has the current schema\n", cli_shown(db));
    return 0;
}

int cli_migrate(int argc, char **argv)
{
    static const char help[] = "usage: crmd migrate [--db URL]\n";
    return cli_run_simple(argc, argv, help, 0, true, migrated, NULL);
}

/* --- key ------------------------------------------------------------------------ */

/* A time of a key for `key list`: ISO 8601, or what stands in for none. */
static const char *key_time(int64_t ms, const char *none, char buf[TS_BUFSZ])
{
    if (ms <= 0) return none;
    ts_format(ms, buf);
    return buf;
}

static int key_list(store_t *s, const char *db)
{
    keyring_list_t l;
    if (keyring_read(s, ts_now_ms() / 1000, KEYRING_KIDS, &l) != STORE_OK) {
        fprintf(stderr, "crmd: cannot read the signing keys from %s\n", cli_shown(db));
        return 1;
    }
    printf("kid\tstate\tcreated_at\tsigned_until\tretired_at\n");
    for (size_t i = 0; i < l.n; i++) {
        const keyring_entry_t *e = &l.v[i];
        char created[TS_BUFSZ], until[TS_BUFSZ], retired[TS_BUFSZ];
        const char *u = e->signed_until == STORE_KEY_UNTRACKED ? "untracked"
                                                               : key_time(e->signed_until * 1000, "-", until);
        printf("%s\t%s\t%s\t%s\t%s\n", e->kid[0] ? e->kid : "(invalid)", keyring_state_name(e->state),
               key_time(e->created_at, "-", created), u, key_time(e->retired_at, "-", retired));
    }
    keyring_list_free(&l);
    return 0;
}

/* Retires the key kid: refused for the signing key, and, without force,
 * for a key some token it signed may still be valid for. */
static int key_retire(store_t *s, const char *db, const char *kid, bool force)
{
    keyring_list_t l;
    if (keyring_read(s, ts_now_ms() / 1000, KEYRING_KIDS, &l) != STORE_OK) {
        fprintf(stderr, "crmd: cannot read the signing keys from %s\n", cli_shown(db));
        return 1;
    }
    const keyring_entry_t *e = NULL;
    for (size_t i = 0; i < l.n && e == NULL; i++)
        if (strcmp(l.v[i].kid, kid) == 0) e = &l.v[i];
    int rc = 1;
    if (e == NULL)
        fprintf(stderr, "crmd: no key with kid '%s' in %s (see crmd key list)\n", kid, cli_shown(db));
    else if (e->state == KEY_SIGNING)
        fprintf(stderr, "crmd: key %s signs new tokens: run crmd key rotate first\n", kid);
    else if (e->state == KEY_VERIFYING && !force)
        fprintf(stderr,
                "crmd: key %s still verifies tokens that have not expired (%s); retiring it refuses them "
                "at once: add --force to do so\n",
                kid,
                e->signed_until == STORE_KEY_UNTRACKED ? "it signed tokens before expiries were recorded"
                                                       : "see signed_until in crmd key list");
    else if (store_key_update(s, e->seq, 0, ts_now_ms()) != STORE_OK)
        fprintf(stderr, "crmd: cannot retire key %s in %s\n", kid, cli_shown(db));
    else
        rc = 0;
    if (rc == 0)
        fprintf(stderr, "crmd: key %s retired; running servers refuse its tokens within a second\n", kid);
    keyring_list_free(&l);
    return rc;
}

/* key rotate and list (verb), after their options. */
static int key_run(store_t *s, const char *db, char **args, const char *verb)
{
    (void)args;
    if (strcmp(verb, "list") == 0) return key_list(s, db);
    char kid[JWT_KID_MAX], err[256] = "";
    if (keyring_rotate(s, kid, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "crmd: %s\n", err[0] ? err : "cannot add a signing key");
        return 1;
    }
    printf("%s\n", kid);
    fprintf(stderr,
            "crmd: key %s signs new tokens from now on; older keys verify their tokens until they "
            "expire; running servers follow within a second\n",
            kid);
    return 0;
}

int cli_key(int argc, char **argv)
{
    static const char help[] = "usage: crmd key rotate [--db URL]\n"
                               "       crmd key list [--db URL]\n"
                               "       crmd key retire KID [--force] [--db URL]\n";
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "rotate") == 0 || strcmp(verb, "list") == 0)
        return cli_run_simple(argc - 1, argv + 1, help, 0, true, key_run, verb);
    if (strcmp(verb, "retire") != 0) return cli_verb_help(argc, argv, help);
    const char *db = cli_env_or("CRMD_DB", DEFAULT_DB), *force = NULL;
    const cli_opt_t opts[] = {{"db", &db}, {"force", &force, true}, {NULL}};
    int first, rc = cli_parse_opts(argc - 1, argv + 1, help, opts, 1, &first);
    if (rc >= 0 || (rc = cli_check_db("--db", db)) >= 0) return rc;
    store_t *s = cli_open_existing_db(db);
    if (s == NULL) return 1;
    rc = key_retire(s, db, argv[1 + first], force != NULL);
    store_close(s);
    return rc;
}
