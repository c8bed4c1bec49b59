#!/usr/bin/python3
"""scripts/gen-board-c.py DIR OUT: compiles the board's files (web/: index.html
and the files it names) into the C source OUT, for the board's routes
(src/api/board.c). The Makefile runs it at build time.

Every file but index.html is served under a name that carries its content's
hash (/board/app.1a2b3c4d.js), so a browser may keep it for a year: a new
build names a new file. index.html names them by placeholders (@@app.js@@)
that are replaced here, and it is the one file a browser revalidates (its
ETag). Each file is kept as it is and, when that is smaller, gzip-compressed
as well; each form has its own strong ETag (the first 128 bits of the
SHA-256 of its bytes)."""
import gzip
import hashlib
import json
import os
import re
import sys

from genc import c_bytes, write_whole

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def digest(data):
    return hashlib.sha256(data).hexdigest()


def main():
    src, dst = sys.argv[1], sys.argv[2]
    index = open(os.path.join(src, "index.html"), "rb").read().decode("utf-8")
    files = []  # (served name, type, bytes)
    for asset in sorted(set(re.findall(r"@@([A-Za-z0-9_.-]+)@@", index))):
        data = open(os.path.join(src, asset), "rb").read()
        stem, ext = os.path.splitext(asset)
        if ext not in TYPES:
            sys.exit(f"{src}/{asset}: no content type for {ext}")
        served = f"{stem}.{digest(data)[:12]}{ext}"
        index = index.replace(f"@@{asset}@@", f"/board/{served}")
        files.append((served, TYPES[ext], data))
    files.insert(0, ("", TYPES[".html"], index.encode("utf-8")))
    lines = [f"/* Generated from {src} by scripts/gen-board-c.py: do not edit. */",
             '#include "api/board_files.h"']
    rows = []
    for i, (served, ctype, data) in enumerate(files):
        lines += c_bytes(f"static const char F{i}[]", data)
        gz = gzip.compress(data, 9, mtime=0)
        has_gz = len(gz) < len(data)
        if has_gz:
            lines += c_bytes(f"static const char G{i}[]", gz)
        etag = json.dumps('"' + digest(data)[:32] + '"')
        gz_etag = json.dumps('"' + digest(gz)[:32] + '"')
        rows.append("    {%s, %s, F%d, %d, %s, %s, %s, %d}," % (
            json.dumps(served), json.dumps(ctype), i, len(data), etag,
            f"G{i}" if has_gz else "NULL", gz_etag if has_gz else "NULL",
            len(gz) if has_gz else 0))
    lines.append("const board_file_t BOARD_FILES[] = {")
    lines += rows
    lines.append("};")
    lines.append("const size_t BOARD_NFILES = %d;" % len(files))
    write_whole(dst, lines)


if __name__ == "__main__":
    main()
