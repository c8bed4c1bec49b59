/*
 * config.c: settings read from a file (see config.h).
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX 64
#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (64 * 1024)
#define CONFIG_NAME_MAX 64

static struct setting {
    char name[CONFIG_NAME_MAX];
    char *value;
} settings[CONFIG_MAX];
static size_t nsettings;

void config_clear(void)
{
    for (size_t i = 0; i < nsettings; i++)
        free(settings[i].value);
    nsettings = 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool listed(const char *const *list, const char *name)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, name) == 0) return true;
    return false;
}

static const char *lookup(const char *name)
{
    for (size_t i = 0; i < nsettings; i++)
        if (strcmp(settings[i].name, name) == 0) return settings[i].value;
    return NULL;
}

/* A boolean's value as the environment takes it: "1" or "0"; NULL when it
 * is none of the accepted words. */
static const char *boolean(const char *v)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL}, *const no[] = {"false", "no", "off",
                                                                                      "0", NULL};
    return listed(yes, v) ? "1" : listed(no, v) ? "0" : NULL;
}

/* Appends a problem to err (cut to fit). */
static void problem(char *err, size_t errsz, const char *path, int line, const char *what, const char *name)
{
    size_t used = strlen(err);
    if (used + 1 < errsz)
        snprintf(err + used, errsz - used, "%s%s:%d: %s%s%.64s%s", used ? "\n" : "", path, line, what,
                 name[0] ? " '" : "", name, name[0] ? "'" : "");
}

/* Reads one `name = value` line (already trimmed) into the settings. */
static void read_line(char *text, int line, const char *path, const char *const *names,
                      const char *const *booleans, char *err, size_t errsz)
{
    char *eq = strchr(text, '=');
    if (eq == NULL) return problem(err, errsz, path, line, "not a `name = value` line", "");
    *eq = '\0';
    char *name = trim(text), *value = trim(eq + 1);
    if (!listed(names, name)) return problem(err, errsz, path, line, "unknown setting", name);
    if (lookup(name) != NULL) return problem(err, errsz, path, line, "setting given twice:", name);
    if (value[0] == '\0') return problem(err, errsz, path, line, "no value for", name);
    /* A `#` first or after a blank would be a comment in many formats:
     * refused rather than kept in the value (`rate-limit = 100:200 # per
     * app`, `db=#`). */
    for (const char *h = strchr(value, '#'); h != NULL; h = strchr(h + 1, '#'))
        if (h == value || isspace((unsigned char)h[-1]))
            return problem(err, errsz, path, line, "a comment on the line of", name);
    if (listed(booleans, name) && (value = (char *)boolean(value)) == NULL)
        return problem(err, errsz, path, line, "wants true or false:", name);
    if (nsettings == CONFIG_MAX) return problem(err, errsz, path, line, "too many settings", "");
    char *copy = strdup(value);
    if (copy == NULL) return problem(err, errsz, path, line, "out of memory", "");
    snprintf(settings[nsettings].name, CONFIG_NAME_MAX, "%s", name);
    settings[nsettings++].value = copy;
}

int config_load(const char *path, const char *const *names, const char *const *booleans, char *err,
                size_t errsz)
{
    config_clear();
    err[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsz, "%s: cannot open it", path);
        return -1;
    }
    /* Read a byte at a time, so that a NUL cannot hide the rest of a line
     * (fgets would), and at most CONFIG_FILE_MAX bytes (/dev/zero is no
     * config file). */
    char buf[CONFIG_LINE_MAX];
    int line = 0, c = 0;
    size_t total = 0;
    while (c != EOF) {
        size_t n = 0;
        bool nul = false;
        while ((c = getc(f)) != EOF && ++total <= CONFIG_FILE_MAX && c != '\n') {
            nul = nul || c == '\0';
            if (n < sizeof buf) buf[n] = (char)c;
            n++;
        }
        if (c == EOF && n == 0) break;
        line++;
        const char *bad = total > CONFIG_FILE_MAX ? "the file is over 64 KiB"
                          : nul                   ? "a NUL byte"
                          : n >= sizeof buf       ? "line too long"
                                                  : NULL;
        if (bad != NULL) {
            problem(err, errsz, path, line, bad, "");
            break;
        }
        buf[n] = '\0';
        char *text = trim(buf);
        if (text[0] != '\0' && text[0] != '#') read_line(text, line, path, names, booleans, err, errsz);
    }
    if (ferror(f) && err[0] == '\0') snprintf(err, errsz, "%s: cannot read it", path);
    fclose(f);
    if (err[0] == '\0') return 0;
    config_clear();
    return -1;
}

const char *config_env_or(const char *env_name, const char *fallback)
{
    const char *v = getenv(env_name);
    if (v != NULL && v[0] != '\0') return v;
    /* CRMD_RATE_LIMIT is rate-limit's. */
    char name[CONFIG_NAME_MAX];
    size_t i = 0;
    const char *p = strncmp(env_name, "CRMD_", 5) == 0 ? env_name + 5 : env_name;
    for (; p[i] != '\0' && i + 1 < sizeof name; i++)
        name[i] = p[i] == '_' ? '-' : (char)tolower((unsigned char)p[i]);
    name[i] = '\0';
    v = lookup(name);
    return v != NULL ? v : fallback;
}
