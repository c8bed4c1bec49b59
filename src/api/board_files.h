/*
 * board_files.h: the board's files as compiled into the binary
 * (scripts/gen-board-c.py makes build/.../gen/board_files.c from web/).
 * Static data: every pointer lives as long as the process.
 */
#ifndef CRMD_API_BOARD_FILES_H
#define CRMD_API_BOARD_FILES_H

#include <stddef.h>

typedef struct board_file {
    const char *name;    /* "" for index.html (served at /), else the hashed name under /board/ */
    const char *type;    /* its Content-Type */
    const char *body;    /* its bytes */
    size_t len;          /* their length */
    const char *etag;    /* strong ETag of body, quoted */
    const char *gz;      /* the same gzip-compressed, or NULL when that is not smaller */
    const char *gz_etag; /* strong ETag of gz, quoted (NULL with gz) */
    size_t gz_len;       /* length of gz */
} board_file_t;

/* The files, index.html first. */
extern const board_file_t BOARD_FILES[];
extern const size_t BOARD_NFILES;

#endif
