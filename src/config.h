/*
 * config.h: `crmd --config FILE`, settings read from a file.
 *
 * The file holds `name = value` lines, the names being the long options'
 * (db, listen, rate-limit, ...); blank lines and lines whose first
 * non-blank character is '#' are skipped. A setting stands in for the
 * option's environment variable (CRMD_ and the name in capitals, '-' as
 * '_'), so the order of precedence is: option > environment > file >
 * default. Boolean options (quiet, http2) take true/false, yes/no, on/off
 * or 1/0.
 */
#ifndef CRMD_CONFIG_H
#define CRMD_CONFIG_H

#include <stddef.h>

/* Reads the file path, replacing what an earlier call read. Every name
 * must be one of names (a NULL-terminated list); an unknown name, a
 * repeated one, a line without '=' or an empty value is refused. Returns
 * 0, or -1 with every problem (each unknown name named) in err (errsz
 * bytes). Not thread-safe: call at start. */
int config_load(const char *path, const char *const *names, const char *const *booleans, char *err,
                size_t errsz);

/* The value of the environment variable env_name (CRMD_RATE_LIMIT) when
 * set and not empty, else the file's setting of the same option
 * (rate-limit), else fallback. */
const char *config_env_or(const char *env_name, const char *fallback);

/* Forgets what config_load read. */
void config_clear(void);

#endif
