"""Header blocks of endless CONTINUATION frames (the attack review of stop
40, finding 6).

A header block of one HEADERS frame and endless empty CONTINUATION frames:
h2o 2.2 takes any number (each costs it a parse and never ends the block:
about half a core for 10 s per connection). Now a block may have 32 (over
512 KiB of fields at the least frame size, more than h2o takes in a head);
a 33rd closes the connection before h2o reads it, with GOAWAY
ENHANCE_YOUR_CALM."""

import socket
import time

import pytest

from faultutil import app_create, serve_help
from h2client import PREFACE, frame, frames_until_closed, get_block

HAS_H2_FLAG = "--http2" in serve_help()
GOAWAY, HEADERS, CONTINUATION = 7, 1, 9
ENHANCE_YOUR_CALM = 11

pytestmark = pytest.mark.skipif(not HAS_H2_FLAG, reason="this crmd has no --http2")


def continuation_flood(port, count, payload=b""):
    """One connection: a GET /leads header block split into HEADERS and
    count CONTINUATION frames of payload each (the last ends the block).
    Returns the frames received and whether the server closed."""
    block = get_block()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conts = [frame(CONTINUATION, 4 if i == count - 1 else 0, 1, payload) for i in range(count)]
        s.sendall(PREFACE + frame(4, 0, 0) + frame(HEADERS, 1 if count else 5, 1, block))
        for i in range(0, len(conts), 500):
            try:
                s.sendall(b"".join(conts[i:i + 500]))
            except OSError:
                break
        return frames_until_closed(s, 3.0)
    finally:
        s.close()


def test_h2_continuation_frames_per_header_block(crmd):
    srv = crmd("h2cont", threads=2, extra_args=["--rate-limit", "off", "--http2"])
    app_create(srv.db)
    srv.start()
    # 32 CONTINUATION frames (one byte of the block each): answered.
    block = get_block()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        head, rest = block[:len(block) - 32], block[len(block) - 32:]
        s.sendall(PREFACE + frame(4, 0, 0) + frame(HEADERS, 1, 1, head) +
                  b"".join(frame(CONTINUATION, 4 if i == 31 else 0, 1, rest[i:i + 1]) for i in range(32)))
        s.settimeout(3.0)
        got, deadline = b"", time.monotonic() + 3.0
        while b"\x01\x04\x00\x00\x00\x01" not in got and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    answered = b"\x01\x04\x00\x00\x00\x01" in got  # a HEADERS frame (END_HEADERS) on stream 1
    # 20,000 empty ones: the connection goes at the 33rd.
    t0 = time.monotonic()
    frames, closed = continuation_flood(srv.port, 20000)
    took = time.monotonic() - t0
    calm = [f for f in frames if f[0] == GOAWAY and int.from_bytes(f[3][4:8], "big") == ENHANCE_YOUR_CALM]
    print(f"\n32 CONTINUATION frames: answered {answered}; 20,000 empty ones: GOAWAY ENHANCE_YOUR_CALM "
          f"{bool(calm)} ({calm[0][3][8:] if calm else b''!r}), closed {closed} after {took:.1f} s")
    assert answered, f"a header block of 32 CONTINUATION frames was not answered: {got[:200]!r}"
    assert calm and closed
    assert srv.alive()
