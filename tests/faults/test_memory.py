"""A memory budget no client can exceed (issue 9, finding 1).

Each test attacks a real crmd on 127.0.0.1 while a thread samples its VmRSS
from /proc/PID/status (and the kernel's own high-water mark, VmHWM) and an
honest client keeps asking for /healthz and a lead over fresh HTTP/1
connections. The memory threshold is the assertion (RSS < 256 MiB), never a
speed; every wait is bounded and each test takes under ~30 s.

- Cleartext HTTP/2 is off unless `--http2`: the prior-knowledge preface gets
  no SETTINGS and `Upgrade: h2c` is answered over HTTP/1.1.
- With `--http2`: six connections each opening 100 POST streams with
  1,000,000-byte bodies never finished, pinging every 4 s (an honest HTTP/2
  client is served meanwhile); one connection with a closed receive window
  asking 100 times for a 4 MB follows list; and one that pings every 2 s
  without ever opening a stream.
- HTTP/1: 500 connections each sending all but the last byte of a
  1,000,000-byte body at once; 400 sending theirs in 8 parts a second apart
  (each request within the 10 s limit); and 80 connections asking for the
  4 MB follows list without reading it."""

import json
import socket
import threading
import time

import pytest

from faultutil import Conn, app_create, make_tls, raise_nofile, serve_help
from h2client import PREFACE, H2Client, frame, raw_preface

MIB = 1024 * 1024
RSS_LIMIT_KB = 256 * 1024
HAS_H2_FLAG = "--http2" in serve_help()
# Before the flag existed, h2c was on by default: the attacks ran as they do now.
H2_ON = ["--http2"] if HAS_H2_FLAG else []
# The harness says which limits it relies on (none here: no rate limit).
BASE_ARGS = ["--rate-limit", "off"]


class RssWatch:
    """Samples crmd's VmRSS every 50 ms until stopped."""

    def __init__(self, srv):
        self.srv = srv
        self.base = srv.rss_kb()
        self.peak = self.base
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                kb = self.srv.rss_kb()
            except (FileNotFoundError, ProcessLookupError):
                return
            self.peak = max(self.peak, kb)
            self.samples.append((time.monotonic() - t0, kb))
            time.sleep(0.05)

    def hwm_kb(self):
        with open(f"/proc/{self.srv.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self

    def report(self, what):
        hwm = self.hwm_kb()
        now = self.samples[-1][1] if self.samples else self.base
        print(f"\n{what}: crmd VmRSS {self.base / 1024:.1f} MiB before, peak sampled "
              f"{self.peak / 1024:.1f} MiB, VmHWM {hwm / 1024:.1f} MiB, at the end "
              f"{now / 1024:.1f} MiB ({len(self.samples)} samples)")
        return max(self.peak, hwm)


class Honest:
    """An honest client: a fresh HTTP/1 connection every 0.3 s asking for
    /healthz, then for a lead; records how long each took and what failed."""

    def __init__(self, port, key, token, path):
        self.port, self.key, self.token, self.path = port, key, token, path
        self.lat = []
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            i += 1
            path = "/healthz" if i % 2 else self.path
            c = Conn(self.port, self.key, self.token, timeout=10)
            t0 = time.monotonic()
            try:
                st, _h, _js, raw = c.request("GET", path)
                if st != 200:
                    self.failures.append(f"{path} -> {st} {raw[:200]!r}")
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                self.failures.append(f"{path}: {e!r}")
            finally:
                c.close()
            self.lat.append(time.monotonic() - t0)
            self._stop.wait(0.3)

    def stop(self):
        self._stop.set()
        self._t.join(15)
        lat = sorted(self.lat)
        print(f"  honest client: {len(lat)} requests, max {lat[-1] * 1000:.0f} ms, "
              f"{len(self.failures)} failed" if lat else "  honest client: no requests")
        return self

    def check(self, max_s=5.0):
        # An honest request blocked behind an attack waits for it to end
        # (6 s and more); one served meanwhile on a loaded 2-core machine has
        # been seen to take 2.6 s (80 readers of a 4 MB list rendering).
        assert len(self.lat) >= 5, f"the honest client made only {len(self.lat)} requests"
        assert not self.failures, f"honest requests failed: {self.failures[:5]}"
        assert max(self.lat) < max_s, f"an honest request took {max(self.lat):.1f}s"


def started(crmd, name, extra=(), transport="h2c"):
    """A crmd with an app and a lead; transport "tls": HTTPS, and HTTP/2
    (with --http2) chosen by ALPN."""
    srv = crmd(name, threads=2, extra_args=BASE_ARGS + list(extra))
    if transport == "tls":
        args, srv.tls = make_tls(srv.workdir)
        srv.extra_args += args
    key, token = app_create(srv.db)
    srv.start()
    conn = Conn(srv.port, key, token)
    lid = conn.ok("POST", "/leads/", {"lead": {"name": "honest"}})["data"]["id"]
    conn.close()
    return srv, key, token, lid


def big_follows(port, key, token, n=100):
    """A lead with n follows of 10,000-emoji descriptions: a follows page of
    records=100 is about 4 MB."""
    conn = Conn(port, key, token, timeout=30)
    lid = conn.ok("POST", "/leads/", {"lead": {"name": "big"}})["data"]["id"]
    desc = "\U0001F600" * 10000
    for i in range(n):
        conn.ok("POST", f"/leads/{lid}/follows", {"follow": {"title": f"f{i}", "description": desc}})
    st, _h, _js, raw = conn.request("GET", f"/leads/{lid}/follows?records=100")
    conn.close()
    assert st == 200
    return lid, len(raw)


def auth_headers(key, token):
    return [("authorization", f"Bearer {token}"), ("appid", key)]


# --- cleartext HTTP/2 is off by default -----------------------------------------------


def test_h2c_is_off_by_default_and_on_with_the_flag(crmd):
    srv, key, token, lid = started(crmd, "h2off")
    got = raw_preface(srv.port)
    print(f"\nprior-knowledge preface, default settings: server answered {got[:40]!r}")
    assert not (len(got) >= 9 and got[3] == 4), "the server answered the HTTP/2 preface with SETTINGS"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    status_line = head.split(b"\r\n")[0]
    print(f"Upgrade: h2c, default settings: {status_line!r}")
    assert head.startswith(b"HTTP/1.1 200"), f"Upgrade: h2c was not answered over HTTP/1.1: {head[:200]!r}"
    assert HAS_H2_FLAG, "crmd serve has no --http2 option"
    srv2 = crmd("h2on", threads=1, extra_args=BASE_ARGS + ["--http2"])
    srv2.start()
    got = raw_preface(srv2.port)
    assert len(got) >= 9 and got[3] == 4, f"with --http2 the preface got no SETTINGS: {got[:40]!r}"


# --- HTTP/2 attacks (with --http2) -------------------------------------------------------


def h2_honest(port, key, token):
    """An honest HTTP/2 client on a fresh connection: a lead created and read
    back. Returns what went wrong, or None."""
    c = H2Client(port)
    try:
        if not c.wait_settings():
            return f"no HTTP/2 connection: {c.closed}"
        body = json.dumps({"lead": {"name": "over h2"}}).encode()
        st, raw = c.exchange("POST", "/leads/", auth_headers(key, token)
                             + [("content-type", "application/json")], body)
        if st != 201:
            return f"POST over HTTP/2: {st} {raw[:200]!r}"
        lid = json.loads(raw)["data"]["id"]
        st, raw = c.exchange("GET", f"/leads/{lid}", auth_headers(key, token))
        if st != 200 or json.loads(raw)["data"]["id"] != lid:
            return f"GET over HTTP/2: {st} {raw[:200]!r}"
        return None
    finally:
        c.close()


# The HTTP/2 attacks run over cleartext HTTP/2 (prior knowledge) and over
# TLS (ALPN h2), where the guard starts the protocol after the handshake.
TRANSPORTS = pytest.mark.parametrize("transport", ["h2c", "tls"])


@TRANSPORTS
def test_h2_unfinished_uploads_with_pings(crmd, transport):
    """6 connections x 100 POST streams, each with 999,999 of 1,000,000 body
    bytes sent, and a PING every 4 s (the review: 3 such connections took
    crmd from 12 to 325 MB and held it indefinitely)."""
    srv, key, token, lid = started(crmd, "h2up", H2_ON, transport)
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    clients, opened, sent = [], 0, 0
    stop = threading.Event()

    def pinger():
        while not stop.wait(4.0):
            for c in clients:
                c.ping()

    pt = threading.Thread(target=pinger, daemon=True)
    try:
        t_start = time.monotonic()
        for _ in range(6):
            c = H2Client(srv.port)
            assert c.wait_settings(), f"no HTTP/2 connection: {c.closed}"
            clients.append(c)
        pt.start()
        hdrs = [("content-type", "application/json"), ("content-length", "1000000")]
        for c in clients:
            c.sids = []
            for _ in range(100):
                sid = c.request("POST", "/leads/", hdrs + auth_headers(key, token), end_stream=False)
                if sid is None:
                    break
                c.sids.append(sid)
                c.sent_at = time.monotonic()
            opened += len(c.sids)
            for sid in c.sids:
                sent += c.send_body(sid, 999_999, timeout=2.0)
        t_sent = time.monotonic() - t_start
        during = h2_honest(srv.port, key, token)

        def settled(c):
            return c.closed is not None or c.goaway is not None or all(s in c.resets for s in c.sids)

        # The documented limit: a request must arrive whole within 10 s, so
        # each connection's streams are reset within 13 s of the last one
        # it opened (counted from then: a loaded machine may take seconds
        # to open and fill them all).
        for c in clients:
            last_open = getattr(c, "sent_at", t_start)
            c.wait(lambda c=c: settled(c), max(0.5, last_open + 13.0 - time.monotonic()))
        left = {i: sum(1 for s in c.sids if s not in c.resets)
                for i, c in enumerate(clients) if not settled(c)}
        time.sleep(max(0.0, 14.0 - (time.monotonic() - t_start)))
    finally:
        stop.set()
        watch.stop()
        honest.stop()
    peak = watch.report("6 HTTP/2 connections x 100 unfinished 1 MB uploads, PING every 4 s")
    codes = {}
    for c in clients:
        for code in c.resets.values():
            codes[code] = codes.get(code, 0) + 1
    cancelled = [c.reset_at[s] - t_start for c in clients for s, code in c.resets.items() if code == 8]
    print(f"  {opened} streams opened, {sent / MIB:.0f} MiB of body sent in {t_sent:.1f}s; "
          f"RST_STREAM codes {codes} (7 refused: over 16 streams or the budget; 8 cancelled: "
          f"not whole after 10 s"
          + (f", {min(cancelled):.1f}-{max(cancelled):.1f}s after the start)" if cancelled else ")")
          + f"; GOAWAYs {[c.goaway for c in clients]}, pings acked {[c.pings_acked for c in clients]}")
    print(f"  an honest HTTP/2 client during the attack: {during or 'lead created and read back'}")
    for c in clients:
        c.close()
    honest.check()
    assert during is None, during
    assert peak < RSS_LIMIT_KB, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert not left, (f"streams still open 13 s after their connection opened its last (the "
                      f"10 s limit does not hold), per connection: {left}")
    assert srv.alive()


@TRANSPORTS
def test_h2_idle_connection_with_pings_is_closed(crmd, transport):
    """An HTTP/2 connection that opens no stream but pings every 2 s is
    closed like an idle HTTP/1 one, after 10 s (h2o's own idle timer starts
    again at every frame)."""
    srv, key, token, lid = started(crmd, "h2idle", H2_ON, transport)
    c = H2Client(srv.port)
    try:
        assert c.wait_settings(), f"no HTTP/2 connection: {c.closed}"
        t0 = time.monotonic()
        while c.alive() and c.goaway is None and time.monotonic() - t0 < 16:
            c.ping()
            c.wait(lambda: c.closed is not None or c.goaway is not None, 2.0)
        took = time.monotonic() - t0
        print(f"\nan HTTP/2 connection pinging every 2 s without a stream: goaway {c.goaway}, "
              f"closed: {c.closed}, after {took:.1f}s ({c.pings_acked} pings acked)")
        assert c.goaway is not None or c.closed is not None, "still open after 16 s of PINGs"
        assert 9 <= took <= 13, f"closed after {took:.1f}s"
    finally:
        c.close()


@TRANSPORTS
def test_h2_closed_window_readers_of_a_big_list(crmd, transport):
    """One connection with a zero receive window asks 100 times for a 4 MB
    follows list and pings every 4 s. Was: about 280 MB held for over 30 s."""
    srv, key, token, lid = started(crmd, "h2win", H2_ON, transport)
    big, size = big_follows(srv.port, key, token)
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    stop = threading.Event()
    c = H2Client(srv.port, window=0)

    def pinger():
        while not stop.wait(4.0):
            c.ping()

    pt = threading.Thread(target=pinger, daemon=True)
    pt.start()
    opened = 0
    try:
        t_start = time.monotonic()
        assert c.wait_settings(), f"no HTTP/2 connection: {c.closed}"
        for _ in range(100):
            if c.request("GET", f"/leads/{big}/follows?records=100", auth_headers(key, token)) is None:
                break
            opened += 1
        # An honest HTTP/2 reader of the same list, once the held answers
        # are old enough (5 s) to make room for it.
        time.sleep(max(0.0, 6.0 - (time.monotonic() - t_start)))
        tries = []
        for _ in range(3):
            h = H2Client(srv.port)
            try:
                st, raw = h.exchange("GET", f"/leads/{big}/follows?records=100",
                                     auth_headers(key, token), timeout=15)
            finally:
                h.close()
            tries.append(st)
            if st != 503:
                break
            time.sleep(1.0)  # as its Retry-After says
        # A reader that takes nothing for 20 s loses its answers.
        done = c.wait(lambda: c.closed is not None or c.goaway is not None
                      or len(c.resets) + len(c.ended) >= opened, 24.0)
        took = time.monotonic() - t_start
    finally:
        stop.set()
        watch.stop()
        honest.stop()
    peak = watch.report(f"1 HTTP/2 connection, zero window, {opened} requests for a "
                        f"{size / MIB:.1f} MiB follows list, PING every 4 s")
    print(f"  after {took:.1f}s: {len(c.status)} answers started, {len(c.resets)} streams reset "
          f"({sorted(set(c.resets.values()))}), {len(c.ended)} ended, goaway {c.goaway}, "
          f"closed: {c.closed}")
    print(f"  an honest HTTP/2 reader of the list 6 s in: {tries}, {len(raw)} bytes")
    c.close()
    honest.check()
    assert st == 200 and len(raw) == size, f"the honest HTTP/2 reader got {st} {raw[:200]!r}"
    assert peak < RSS_LIMIT_KB, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert done, f"{opened - len(c.resets) - len(c.ended)} stalled streams still held after {took:.0f}s"
    assert srv.alive()


def test_h2_closed_window_readers_of_the_openapi_document(crmd):
    """Without credentials, 15 connections with a zero receive window ask
    16 times each for /openapi.json (315 KB, compiled in). Was: each
    answer counted at its full size, so 240 of them filled the 64 MiB
    response memory with bytes crmd does not hold, and an authenticated
    reader of a list over 64 KiB got 503 until they were 5 s old."""
    srv, key, token, _lid = started(crmd, "h2static", H2_ON)
    big, size = big_follows(srv.port, key, token, n=5)
    readers = []
    try:
        for _ in range(15):
            c = H2Client(srv.port, window=0)
            readers.append(c)
            assert c.wait_settings(), f"no HTTP/2 connection: {c.closed}"
            for _ in range(16):
                c.request("GET", "/openapi.json")
        for c in readers:
            assert c.wait(lambda c=c: len(c.status) + len(c.resets) >= 16, 10.0), \
                f"{len(c.status)} answers started, {len(c.resets)} resets"
        started_answers = sum(len(c.status) for c in readers)
        h = H2Client(srv.port)
        try:
            st, raw = h.exchange("GET", f"/leads/{big}/follows?records=100", auth_headers(key, token))
        finally:
            h.close()
    finally:
        for c in readers:
            c.close()
    print(f"  {started_answers} answers of /openapi.json started; the honest reader: {st}, {len(raw)} bytes")
    assert started_answers == 240
    assert st == 200 and len(raw) == size, f"the honest HTTP/2 reader got {st} {raw[:200]!r}"
    assert srv.alive()


# --- HTTP/1 attacks ------------------------------------------------------------------------


def test_http1_many_unfinished_uploads(crmd):
    """500 connections each send all but the last byte of a 1,000,000-byte
    body, then wait. Each is within the 1 MiB body limit; together they are
    half a gigabyte."""
    n = 500
    raise_nofile(n + 200)
    srv, key, token, lid = started(crmd, "h1up")
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    head = (b"POST /leads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nAppId: " + key.encode() + b"\r\n"
            b"Content-Length: 1000000\r\n\r\n")
    body = b" " * 999_999
    socks, refused, answers = [], 0, {}
    try:
        t_start = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            socks.append(s)
            try:
                s.sendall(head + body)
            except OSError:
                refused += 1
        t_sent = time.monotonic() - t_start
        # Each is closed once its request is 10 s old (or sooner, refused).
        closed = 0
        deadline = t_start + 14
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                got = s.recv(4096)
                if got:
                    code = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/1.1 ") else "?"
                    answers[code] = answers.get(code, 0) + 1
                    while s.recv(4096):
                        pass
                closed += 1
            except ConnectionResetError:
                closed += 1
            except (socket.timeout, OSError):
                pass
        took = time.monotonic() - t_start
    finally:
        watch.stop()
        honest.stop()
        for s in socks:
            s.close()
    peak = watch.report(f"{n} HTTP/1 connections x 999,999 of 1,000,000 body bytes")
    print(f"  sent in {t_sent:.1f}s ({refused} cut off while sending); {closed} closed by crmd "
          f"within {took:.1f}s; answers before closing: {answers}")
    honest.check()
    assert peak < RSS_LIMIT_KB, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert closed == n, f"{n - closed} unfinished uploads still open after {took:.0f}s"
    assert srv.alive()


def test_http1_slow_uploads_finishing_within_10_s(crmd):
    """400 connections each send a 1,000,000-byte body in 8 parts a second
    apart (all but its last byte), so each request stays within the 10 s
    limit while memory grows on all of them together."""
    n, parts = 400, 8
    raise_nofile(n + 200)
    srv, key, token, lid = started(crmd, "h1slow")
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    head = (b"POST /leads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nAppId: " + key.encode() + b"\r\n"
            b"Content-Length: 1000000\r\n\r\n")
    part = 1_000_000 // parts
    socks, cut = [], set()
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(head)
            socks.append(s)
        for k in range(parts):
            t_round = time.monotonic()
            size = part - 1 if k == parts - 1 else part
            for i, s in enumerate(socks):
                if i in cut:
                    continue
                try:
                    s.sendall(b" " * size)
                except OSError:
                    cut.add(i)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t_round)))
    finally:
        watch.stop()
        honest.stop()
        for s in socks:
            s.close()
    peak = watch.report(f"{n} HTTP/1 connections each sending a 1,000,000-byte body in {parts} parts, "
                        f"a second apart")
    print(f"  {len(cut)} connections cut off by crmd while sending")
    honest.check()
    assert peak < RSS_LIMIT_KB, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert srv.alive()


def test_http1_readers_that_never_read_a_big_list(crmd):
    """80 connections with a 4 KiB receive buffer each ask for a 4 MB follows
    list and read nothing."""
    n = 80
    srv, key, token, lid = started(crmd, "h1read")
    big, size = big_follows(srv.port, key, token)
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    req = (f"GET /leads/{big}/follows?records=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {token}\r\nAppId: {key}\r\n\r\n").encode()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(req)
            socks.append(s)
        # An honest reader of the same list, once the held answers are old
        # enough (5 s) to make room for it.
        time.sleep(6)
        tries = []
        for _ in range(3):
            conn = Conn(srv.port, key, token, timeout=15)
            st, _h, _js, raw = conn.request("GET", f"/leads/{big}/follows?records=100")
            conn.close()
            tries.append(st)
            if st != 503:
                break
            time.sleep(1.0)  # as its Retry-After says
    finally:
        watch.stop()
        honest.stop()
        for s in socks:
            s.close()
    peak = watch.report(f"{n} HTTP/1 connections asking for a {size / MIB:.1f} MiB follows list, "
                        f"reading nothing")
    print(f"  an honest reader of the list 6 s in: {tries}, {len(raw)} bytes")
    honest.check()
    assert st == 200 and len(raw) == size, f"the honest reader got {st} {raw[:200]!r}"
    assert peak < RSS_LIMIT_KB, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert srv.alive()


def _hpack_bomb(port, streams=16, size=400_000, ended=False, pause=0.0):
    """One cleartext HTTP/2 connection whose streams each send a header
    block of size bytes that adds one 4,000-byte field to HPACK's table and
    then names it again with every other byte (about size fields once
    decoded), without ever ending the stream; or (ended) ending it, with
    the client's windows closed so that no answer can be sent, a stream
    every pause seconds. Returns the socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    settings = b"\x00\x04\x00\x00\x00\x00" if ended else b""  # SETTINGS_INITIAL_WINDOW_SIZE 0
    sock.sendall(PREFACE + frame(4, 0, 0, settings))
    head = b"\x83\x86\x04\x07/leads/\x01\x01x"  # POST, http, :path /leads/, :authority x
    for k in range(streams):
        name = b"x-b%d" % k
        # A field added to the table (its value 4,000 bytes: 127 + 3,873 in HPACK's integer).
        entry = b"\x40" + bytes([len(name)]) + name + b"\x7f" + bytes([3873 & 127 | 128, 3873 >> 7]) + b"A" * 4000
        block = head + entry + b"\xbe" * (size - len(head) - len(entry))
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        # END_HEADERS on the last frame; END_STREAM (ended) is HEADERS' own flag.
        flags = [(4 if i == len(chunks) - 1 else 0) | (1 if ended and i == 0 else 0) for i in range(len(chunks))]
        try:
            sock.sendall(b"".join(frame(1 if i == 0 else 9, flags[i], 1 + 2 * k, c) for i, c in enumerate(chunks)))
        except OSError:
            break
        time.sleep(pause)
    return sock


def test_h2_header_blocks_that_decode_to_many_fields(crmd):
    """HPACK names a table entry again in one byte: a 400 KB header block h2o 2.2 takes decodes
    to about 400,000 fields (47 MB of h2o's memory, counted nowhere), and streams never ended
    kept them until their deadline, and so did ended streams whose answers a closed window held.
    Was: the first 8 connections took crmd to 3 GiB, the 3 of ended streams alone to 327 MiB.
    Now a read that brings more than 256 KiB of header blocks closes its connection before h2o
    decodes them, and a stream whose fields number over 100 is reset as soon as the read that
    brought them ends (54 MiB at most here)."""
    srv, key, token, lid = started(crmd, "h2bomb", H2_ON)
    watch = RssWatch(srv)
    honest = Honest(srv.port, key, token, f"/leads/{lid}")
    socks = []
    try:
        socks = [_hpack_bomb(srv.port) for _ in range(4)]
        socks += [_hpack_bomb(srv.port, streams=4, size=100_000) for _ in range(4)]
        # Ended streams the handler answers at once, whose answers the closed
        # windows hold: one 120 KB block per read (review of stop 30).
        socks += [_hpack_bomb(srv.port, streams=8, size=120_000, ended=True, pause=0.15) for _ in range(3)]
        time.sleep(2.0)
    finally:
        watch.stop()
        honest.stop()
        for s in socks:
            s.close()
    peak = watch.report("11 HTTP/2 connections of header blocks that decode to 100,000 to 400,000 fields")
    honest.check()
    assert peak < 128 * 1024, f"crmd's RSS reached {peak / 1024:.0f} MiB"
    assert srv.alive()
