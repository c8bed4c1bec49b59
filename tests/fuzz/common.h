/*
 * common.h: what the fuzz targets share: the fixed test key and tokens, the
 * fixture ids, a failure macro and response checks.
 *
 * Every target is a libFuzzer entry point (LLVMFuzzerTestOneInput) built
 * with clang -fsanitize=fuzzer,address,undefined; see tests/fuzz/README.md.
 */
#ifndef CRMD_FUZZ_COMMON_H
#define CRMD_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"

/* The apps the request target creates, and the app its token names. */
#define FUZZ_APP_KEY "pk_live_f0220000000000000000000000000001"
#define FUZZ_APP2_KEY "pk_live_f0220000000000000000000000000002"

/* Token claims: issued 2023-11-14, valid until 2100-01-01. */
#define FUZZ_TOKEN_IAT 1700000000LL
#define FUZZ_TOKEN_EXP 4102444800LL

/* The instant the JWT target verifies at (2026-01-01T00:00:00Z). */
#define FUZZ_NOW_S 1767225600LL

/* A lead and a follow that exist before every input of the request target
 * (re-created when an input deleted them), so seeds can reach get, update
 * and delete with real ids. */
#define FUZZ_LEAD_ID "0190a000-0000-7000-8000-000000000001"
#define FUZZ_FOLLOW_ID "0190a000-0000-7000-8000-000000000002"

/* The fixed test key (loaded once, never freed). */
const jwt_key_t *fuzz_key(void);
/* Its PEM text. */
const char *fuzz_key_pem(void);

/* Signs the fixed claims for app (sub "fuzz", jti "fuzz-<app>") with the
 * test key: deterministic, so the same token every run. Caller frees. */
char *fuzz_token(const char *app);

/* If FUZZ_PRINT_TOKENS is set, prints the tokens of both apps on stdout
 * (for tests/fuzz/make_seeds.py) and exits 0. */
void fuzz_maybe_print_tokens(void);

/* Reports a broken invariant with the input's size and aborts, so libFuzzer
 * saves the input as a crash artifact. */
#define FUZZ_CHECK(cond, ...)                                                                                \
    do {                                                                                                     \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                      \
    } while (0)
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Checks that body[0..len) is one JSON object (valid UTF-8, no NUL escape)
 * and, for status >= 400, the contract's error document whose every error
 * carries that status. */
void fuzz_check_json_body(int status, const char *body, size_t len);

/* A temporary directory for the target's files: $FUZZ_DB_DIR if set, else
 * one made under /dev/shm (or $TMPDIR, or /tmp) and removed at exit. */
const char *fuzz_tmpdir(void);

#endif
