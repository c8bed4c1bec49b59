/*
 * common.c: see common.h.
 */
#include "common.h"

#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testkey.h"

const char *fuzz_key_pem(void)
{
    return fuzz_test_key_pem;
}

const jwt_key_t *fuzz_key(void)
{
    static jwt_key_t *key;
    if (key == NULL) {
        key = jwt_key_load(fuzz_test_key_pem, strlen(fuzz_test_key_pem));
        if (key == NULL) {
            fprintf(stderr, "fuzz: cannot load the test key\n");
            abort();
        }
    }
    return key;
}

char *fuzz_token(const char *app)
{
    jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.iss, sizeof c.iss, "crmd");
    snprintf(c.sub, sizeof c.sub, "fuzz");
    snprintf(c.app, sizeof c.app, "%s", app);
    snprintf(c.jti, sizeof c.jti, "fuzz-%s", app);
    c.iat = FUZZ_TOKEN_IAT;
    c.exp = FUZZ_TOKEN_EXP;
    char *tok = NULL;
    if (jwt_sign(fuzz_key(), &c, &tok) != JWT_OK) {
        fprintf(stderr, "fuzz: cannot sign a token\n");
        abort();
    }
    return tok;
}

void fuzz_maybe_print_tokens(void)
{
    if (getenv("FUZZ_PRINT_TOKENS") == NULL) return;
    char *a = fuzz_token(FUZZ_APP_KEY), *b = fuzz_token(FUZZ_APP2_KEY);
    printf("%s %s\n%s %s\n", FUZZ_APP_KEY, a, FUZZ_APP2_KEY, b);
    free(a);
    free(b);
    exit(0);
}

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "\n==fuzz== invariant broken at %s:%d: %s\n==fuzz== ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fuzz_check_json_body(int status, const char *body, size_t len)
{
    json_error_t err;
    /* No flags: invalid UTF-8 and "\u0000" are refused, as a strict client
     * would refuse them. */
    json_t *root = json_loadb(body, len, 0, &err);
    FUZZ_CHECK(root != NULL, "status %d: body is not JSON (%s at %d): %.*s", status, err.text, err.position,
               (int)(len > 600 ? 600 : len), body);
    FUZZ_CHECK(json_is_object(root), "status %d: body is not an object", status);
    if (status >= 400) {
        json_t *errors = json_object_get(root, "errors");
        FUZZ_CHECK(json_is_array(errors) && json_array_size(errors) > 0, "status %d: no errors array: %.*s",
                   status, (int)(len > 600 ? 600 : len), body);
        char want[8];
        snprintf(want, sizeof want, "%d", status);
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            json_t *st = json_object_get(e, "status");
            FUZZ_CHECK(json_is_string(st) && strcmp(json_string_value(st), want) == 0,
                       "status %d: an error says status %s", status,
                       json_is_string(st) ? json_string_value(st) : "(none)");
            FUZZ_CHECK(json_is_string(json_object_get(e, "code")) &&
                           json_is_string(json_object_get(e, "title")) &&
                           json_is_string(json_object_get(e, "detail")),
                       "status %d: an error lacks code, title or detail", status);
        }
    }
    json_decref(root);
}

static char tmpdir[PATH_MAX];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tmpdir(void)
{
    if (tmpdir[0] != '\0') nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (tmpdir[0] != '\0') return tmpdir;
    const char *base = getenv("FUZZ_DB_DIR");
    if (base == NULL || base[0] == '\0') {
        /* tmpfs: SQLite's syncs (synchronous=FULL) then cost nothing. */
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        if (base == NULL || base[0] == '\0') base = "/tmp";
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/crmd-fuzz.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(rm_tmpdir);
    return tmpdir;
}
