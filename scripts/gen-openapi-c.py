#!/usr/bin/python3
"""scripts/gen-openapi-c.py IN OUT: compiles the OpenAPI document IN
(openapi/openapi.json) into the C source OUT, for GET /openapi.json
(src/api/openapi.c). The Makefile runs it at build time; it fails, and so
does the build, when IN is not valid JSON. OUT holds the document's exact
bytes, their length, and a strong ETag: the first 128 bits of their
SHA-256, in hex."""
import hashlib
import json
import sys

from genc import c_bytes, write_whole


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        sys.exit(f"{src}: not valid JSON: {e}")
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    lines = ["/* Generated from %s by scripts/gen-openapi-c.py: do not edit. */" % src,
             "#include <stddef.h>",
             "extern const char API_OPENAPI_JSON[];",
             "extern const size_t API_OPENAPI_JSON_LEN;",
             "extern const char API_OPENAPI_ETAG[];",
             *c_bytes("const char API_OPENAPI_JSON[]", data)]
    lines.append("const size_t API_OPENAPI_JSON_LEN = %d;" % len(data))
    lines.append("const char API_OPENAPI_ETAG[] = %s;" % json.dumps(etag))
    write_whole(dst, lines)


if __name__ == "__main__":
    main()
