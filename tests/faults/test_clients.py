"""Slow, idle and too many clients.

- Connections that never send, that send a request header a byte a second,
  that send a body a byte a second, and keep-alive connections left idle after
  a request: crmd closes each of them (h2o 2.2's defaults: the HTTP/1 request
  timeout, 10 s from the start of a request, and the same 10 s for an idle
  keep-alive connection; measured and printed), and while 200 of them are
  open, ordinary requests are answered as fast as ever.
- 5,000 concurrent connections (default settings): every one is answered
  (or refused at once), none hangs, the server keeps serving others, and its
  descriptors come back when they close.
- A connection cap (--max-connections): the connections over it are answered
  503 (JSON error) or refused at once, never left hanging; once connections
  close, new ones are served again. Marked xfail (strict) when the binary has
  no such option, so it flips when one is added."""

import errno
import selectors
import socket
import statistics
import threading
import time

import pytest

from faultutil import Conn, DefectObserved, app_create, raise_nofile, serve_help

HEADER = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 300 + b"\r\n\r\n")
BODY_HEAD = (b"POST /leads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 200\r\n\r\n")
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Watched:
    """A socket whose closing by the server is timed."""

    def __init__(self, kind, sock, t_open):
        self.kind = kind
        self.sock = sock
        self.t_open = t_open       # when its timeout clock started
        self.sent = 0
        self.closed_at = None
        self.how = None            # "eof", "reset"
        self.data = b""


def connect_many(port, n, timeout=15.0):
    """Opens n connections (non-blocking connects, bounded by timeout).
    Returns (connected sockets, number that failed)."""
    sel = selectors.DefaultSelector()
    pending, done, failed = {}, [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            failed += 1
            continue
        sel.register(s, selectors.EVENT_WRITE)
        pending[s.fileno()] = s
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ev in sel.select(0.5):
            s = key.fileobj
            sel.unregister(s)
            del pending[s.fileno()]
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(s)
            else:
                s.close()
                failed += 1
    for s in pending.values():
        sel.unregister(s)
        s.close()
        failed += 1
    sel.close()
    return done, failed


def exchange_all(socks, request, timeout=15.0):
    """Sends request on every socket and reads until each has a full response,
    EOF or reset, or timeout. Returns {outcome: count}, per-socket outcome list
    and the seconds each took. Outcomes: a status code (int), "reset", "eof",
    "hang"."""
    sel = selectors.DefaultSelector()
    state = {}
    t0 = time.monotonic()
    for s in socks:
        try:
            s.send(request)
        except OSError:
            pass  # a reset shows when reading
        state[s.fileno()] = [s, b"", None, None]
        sel.register(s, selectors.EVENT_READ)
    left = len(state)
    deadline = t0 + timeout
    while left and time.monotonic() < deadline:
        for key, _ev in sel.select(0.5):
            st = state[key.fileobj.fileno()]
            s = st[0]
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = None
            except BlockingIOError:
                continue
            if chunk:
                st[1] += chunk
                head, sep, body = st[1].partition(b"\r\n\r\n")
                if not sep:
                    continue
                clen = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        clen = int(v)
                if len(body) < clen:
                    continue
                st[2] = int(head.split()[1])
            else:
                st[2] = "reset" if chunk is None else ("eof" if not st[1] else "partial")
            st[3] = time.monotonic() - t0
            sel.unregister(s)
            left -= 1
    sel.close()
    counts, times, bodies = {}, [], {}
    for st in state.values():
        out = st[2] if st[2] is not None else "hang"
        counts[out] = counts.get(out, 0) + 1
        if st[3] is not None:
            times.append(st[3])
        if isinstance(out, int) and out != 200:
            bodies.setdefault(out, st[1][:600])
    return counts, times, bodies


def test_idle_and_slow_connections_time_out_and_do_not_block_others(crmd):
    srv = crmd("slow", threads=2)
    key, token = app_create(srv.db)
    srv.start()
    conn = Conn(srv.port, key, token)
    lid = conn.ok("POST", "/leads/", {"lead": {"name": "served"}})["data"]["id"]

    watched = []
    now = time.monotonic
    for kind, n in (("idle", 100), ("slow header", 80), ("slow body", 10),
                    ("idle keep-alive", 10)):
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            w = Watched(kind, s, now())
            if kind == "slow body":
                s.sendall(BODY_HEAD)
            elif kind == "idle keep-alive":
                s.sendall(HEALTHZ)
                got = b""
                while b"\r\n\r\n" not in got:
                    got += s.recv(4096)
                w.t_open = now()  # the idle clock starts after the response
            s.setblocking(False)
            watched.append(w)
    assert len(watched) == 200

    stop = threading.Event()

    def drive():
        """Sends a byte a second on the slow ones; notes when each is closed."""
        sel = selectors.DefaultSelector()
        for w in watched:
            sel.register(w.sock, selectors.EVENT_READ, w)
        next_tick = now()
        deadline = now() + 30
        open_n = len(watched)
        while open_n and now() < deadline and not stop.is_set():
            if now() >= next_tick:
                next_tick += 1.0
                for w in watched:
                    if w.closed_at is None and w.kind.startswith("slow"):
                        src = HEADER if w.kind == "slow header" else b"{" + b" " * 400
                        try:
                            w.sock.send(src[w.sent:w.sent + 1])
                            w.sent += 1
                        except OSError:
                            pass
            for key, _ev in sel.select(max(0.0, min(0.2, next_tick - now()))):
                w = key.data
                try:
                    chunk = w.sock.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk, w.how = b"", "reset"
                if chunk:
                    w.data += chunk
                    continue
                w.closed_at = now()
                w.how = w.how or "eof"
                sel.unregister(w.sock)
                open_n -= 1
        sel.close()

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()

    # Ordinary clients while the 200 are open: a keep-alive one and fresh connections.
    lat = []
    t_end = now() + 7
    i = 0
    while now() < t_end and i < 2000:
        i += 1
        c = conn if i % 2 else Conn(srv.port, key, token, timeout=5)
        t0 = now()
        st, _h, _js, raw = c.request("GET", f"/leads/{lid}" if i % 3 else "/leads/")
        lat.append(now() - t0)
        assert st == 200, f"ordinary request while slow clients are open: {st} {raw[:200]!r}"
        if c is not conn:
            c.close()
        time.sleep(0.02)
    driver.join(35)
    stop.set()
    conn.close()

    lat.sort()
    p50, p99, mx = lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]
    print(f"\n{len(lat)} ordinary requests while 200 idle/slow connections were open: "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {mx * 1000:.1f} ms")
    by_kind = {}
    for w in watched:
        by_kind.setdefault(w.kind, []).append(w)
    for kind, ws in by_kind.items():
        closed = [w.closed_at - w.t_open for w in ws if w.closed_at is not None]
        hows = {w.how for w in ws if w.how}
        answered = sum(1 for w in ws if w.data and w.kind != "idle keep-alive")
        if closed:
            print(f"  {kind:16s}: {len(closed)}/{len(ws)} closed by crmd after "
                  f"min {min(closed):.2f}s, median {statistics.median(closed):.2f}s, "
                  f"max {max(closed):.2f}s ({', '.join(sorted(hows))}); "
                  f"{answered} got response bytes first; bytes sent by the slow ones: "
                  f"{max(w.sent for w in ws)}")
        else:
            print(f"  {kind:16s}: none of {len(ws)} closed")
    for w in watched:
        w.sock.close()

    # Blocked behind them, an ordinary request would wait for their 10 s
    # timeout; the bounds leave room for a loaded 2-core machine.
    assert p99 < 1.0 and mx < 3.0, "ordinary requests slowed down by idle/slow connections"
    open_left = [w.kind for w in watched if w.closed_at is None]
    assert not open_left, f"{len(open_left)} connections never timed out: {set(open_left)}"
    for w in watched:
        took = w.closed_at - w.t_open
        assert took < 15, f"{w.kind} connection closed only after {took:.1f}s"
        assert took > 1, f"{w.kind} connection closed after {took:.1f}s: too eager"
    assert srv.alive()


def fd_settle(srv, target, timeout=10.0):
    deadline = time.monotonic() + timeout
    n = srv.fd_count()
    while n > target and time.monotonic() < deadline:
        time.sleep(0.1)
        n = srv.fd_count()
    return n


def fd_stable(srv, quiet=0.5, timeout=10.0):
    """The descriptors srv holds once the count has not changed for quiet
    seconds: crmd answers /healthz before every thread has opened its
    database connection, so a count taken at once can miss a few."""
    deadline = time.monotonic() + timeout
    n, since = srv.fd_count(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.05)
        m = srv.fd_count()
        if m != n:
            n, since = m, time.monotonic()
    return n


def test_5000_concurrent_connections(crmd):
    n = 5000
    limit = raise_nofile(n + 500)
    assert limit >= n + 100, f"cannot raise this process's open file limit to {n + 500}"
    srv = crmd("many", threads=2)
    key, token = app_create(srv.db)
    srv.start()
    base_fds = fd_stable(srv)
    t0 = time.monotonic()
    socks, failed = connect_many(srv.port, n)
    t_conn = time.monotonic() - t0
    try:
        conn = Conn(srv.port, key, token, timeout=5)
        t1 = time.monotonic()
        st, _h, _js, raw = conn.request("GET", "/leads/")
        fresh = time.monotonic() - t1
        conn.close()
        assert st == 200, f"a fresh client with {len(socks)} connections open: {st} {raw[:200]!r}"
        counts, times, bodies = exchange_all(socks, HEALTHZ, timeout=15)
        times.sort()
        print(f"\n{n} connections: {len(socks)} connected in {t_conn:.2f}s, {failed} failed to "
              f"connect; crmd holds {srv.fd_count()} descriptors (was {base_fds}); a fresh "
              f"client's request took {fresh * 1000:.1f} ms; /healthz on every one: {counts}, "
              f"all done within {times[-1] if times else 0:.2f}s")
        for code, b in bodies.items():
            print(f"  a {code} answer: {b[:300]!r}")
        assert counts.get("hang", 0) == 0, f"connections left without an answer: {counts}"
        assert fresh < 3.0, f"a fresh client waited {fresh:.2f}s"
        for code in counts:
            assert code in (200, 503, "reset", "eof"), f"unexpected outcome {code}: {counts}"
        assert srv.alive()
    finally:
        for s in socks:
            s.close()
    left = fd_settle(srv, base_fds + 2)
    assert left <= base_fds + 2, f"crmd still holds {left} descriptors (was {base_fds})"


HAS_CAP = "--max-connections" in serve_help()


@pytest.mark.xfail(not HAS_CAP, strict=True,
                   reason="crmd serve has no connection cap (--max-connections): excess "
                          "connections are neither answered nor refused")
def test_connection_cap_answers_excess_quickly(crmd):
    cap, n = 200, 600
    raise_nofile(n + 500)
    srv = crmd("cap", threads=2, extra_args=["--max-connections", str(cap)])
    key, token = app_create(srv.db)
    srv.start()
    base_fds = fd_stable(srv)
    socks, failed = connect_many(srv.port, n)
    try:
        counts, times, bodies = exchange_all(socks, HEALTHZ, timeout=10)
        times.sort()
        print(f"\ncap {cap}, {n} connections ({failed} failed to connect): {counts}; answers "
              f"within {times[-1] if times else 0:.2f}s")
        for code, b in bodies.items():
            print(f"  a {code} answer: {b[:300]!r}")
        assert counts.get("hang", 0) == 0, f"connections over the cap left hanging: {counts}"
        served = counts.get(200, 0)
        assert served <= cap, f"{served} connections served with a cap of {cap}"
        refused = counts.get(503, 0) + counts.get("reset", 0) + counts.get("eof", 0) + failed
        assert refused >= n - cap, f"only {refused} of {n} connections refused: {counts}"
        assert counts.get(503, 0) > 0, "no excess connection got the 503 answer"
        assert times[-1] < 3.0, f"the slowest answer took {times[-1]:.2f}s"
        if 503 in bodies:
            b = bodies[503]
            assert b"application/json" in b and b'"service_unavailable"' in b, b
    finally:
        for s in socks:
            s.close()
    # The slots come back: once crmd has closed its side of them (waited
    # for, bounded), new connections are served.
    fd_settle(srv, base_fds)
    socks, failed = connect_many(srv.port, cap // 2)
    try:
        counts, _t, _b = exchange_all(socks, HEALTHZ, timeout=10)
        assert counts == {200: cap // 2} and failed == 0, (
            f"after the excess connections closed, {cap // 2} new ones got {counts}")
    finally:
        for s in socks:
            s.close()
    assert srv.alive()


def test_slow_reader_is_timed_out(crmd):
    """10 connections each pipeline 300 list requests (some 13 MB of answers,
    more than the socket buffers hold) with a 4 KiB receive buffer, then read
    a byte a second. crmd must close them within 25 s (its own request timeout
    is 10 s), and serve other clients meanwhile."""
    srv = crmd("slowread", threads=2)
    key, token = app_create(srv.db)
    srv.start()
    conn = Conn(srv.port, key, token)
    for i in range(100):
        conn.ok("POST", "/leads/", {"lead": {"name": f"lead {i} " + "x" * 200,
                                             "source": "website"}})
    base = srv.fd_count()
    req = (f"GET /leads/?records=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {token}\r\nAppId: {key}\r\n\r\n").encode()
    socks = []
    try:
        for _ in range(10):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(req * 300)
            s.setblocking(False)
            socks.append(s)
        t0 = time.monotonic()
        closed_at, fds = None, None
        while time.monotonic() - t0 < 25:
            for s in socks:
                try:
                    s.recv(1)
                except (BlockingIOError, ConnectionResetError):
                    pass
            st, _h, _js, raw = conn.request("GET", "/leads/?records=1")
            assert st == 200, f"another client while slow readers are open: {st} {raw[:200]!r}"
            fds = srv.fd_count()
            if fds <= base:
                closed_at = time.monotonic() - t0
                break
            time.sleep(1)
        print(f"\n10 slow readers: crmd holds {fds} descriptors (was {base}) "
              f"{'after 25 s' if closed_at is None else f'and closed them after {closed_at:.1f}s'}")
        if closed_at is None:
            raise DefectObserved(f"slow readers still connected after 25 s ({fds - base} open)")
    finally:
        for s in socks:
            s.close()
        conn.close()


def test_connection_cap_counts_all_threads_together(crmd):
    """--max-connections 1000 with 2 threads and 990 connections (below the
    cap), 8 times over: every connection is served, none refused."""
    if not HAS_CAP:
        raise DefectObserved("no --max-connections option")
    raise_nofile(2000)
    srv = crmd("capsum", threads=2, extra_args=["--max-connections", "1000"])
    srv.start()
    base_fds = fd_stable(srv)
    trials = []
    for _ in range(8):
        socks, failed = connect_many(srv.port, 990)
        try:
            counts, _t, _b = exchange_all(socks, HEALTHZ, timeout=10)
        finally:
            for s in socks:
                s.close()
        assert counts.get("hang", 0) == 0, counts
        trials.append((counts, failed))
        # The next trial starts once crmd has let these go (bounded):
        # leftovers would count against the cap.
        fd_settle(srv, base_fds)
    print(f"\n990 connections with a cap of 1000, 8 times: {trials}")
    refused = [t for t in trials if t[0].get(200, 0) != 990]
    if refused:
        raise DefectObserved(f"connections refused below the cap in {len(refused)} of 8 "
                             f"trials: {refused}")
