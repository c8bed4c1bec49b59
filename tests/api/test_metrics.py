"""/metrics on the admin listener (--admin-listen): Prometheus text format,
read with a real parser (python3-prometheus-client), whose values move as
the requests made here say; bounded labels; nothing of the API on the admin
address and no /metrics on the API's."""

import socket
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from apiutil import answer_complete, assert_status, check_raw, recv_answer, token_issue
from conftest import BACKEND, Server, environ, free_port


class AdminServer(Server):
    """A crmd with an admin listener (and the given extra environment)."""

    def __init__(self, workdir, env):
        super().__init__(workdir, threads=2)
        self.admin_port = free_port()
        self.env = dict(env, CRMD_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}")

    def start(self):
        with environ(self.env):
            return super().start()

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"


@pytest.fixture(scope="module")
def msrv(tmp_path_factory):
    srv = AdminServer(tmp_path_factory.mktemp("metrics"),
                      {"CRMD_RATE_LIMIT": "1:5", "CRMD_AUTH_LIMIT": "0.1:2"}).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def msrv_unlimited(tmp_path_factory):
    """The same without a rate limit, for the tests that count answers: at
    msrv's 5 requests a second a read slower than 10 ms (a sanitized build
    on a loaded machine) costs its app more (--read-time's charge), and a
    request meant to be counted was a 429."""
    srv = AdminServer(tmp_path_factory.mktemp("metrics-unlimited"), {"CRMD_RATE_LIMIT": "off"}).start()
    yield srv
    assert srv.stop() == 0


def scrape(srv):
    r = requests.get(srv.admin_url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, r.text


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_counters_move_as_requests_say(msrv_unlimited):
    before, _ = scrape(msrv_unlimited)
    app = msrv_unlimited.new_app()
    with requests.Session() as s:
        for _ in range(3):
            assert s.get(msrv_unlimited.base_url + "/healthz").status_code == 200
        for i in range(2):
            assert s.get(msrv_unlimited.base_url + f"/nope-{uuid.uuid4()}").status_code == 404
        lead = app.create_lead(name="Counted")
        assert_status(app.get(f"/leads/{lead['id']}"), 200)
        assert_status(app.get(f"/leads/{lead['id']}"), 200)
        assert s.get(msrv_unlimited.base_url + "/readyz").status_code == 200
        # the open keep-alive connection of this session is counted
        after, text = scrape(msrv_unlimited)
    req = "crmd_http_requests_total"
    delta = lambda name, **lb: value(after, name, **lb) - value(before, name, **lb)  # noqa: E731
    assert delta(req, route="/healthz", method="GET", status="200") == 3
    assert delta(req, route="unmatched", method="GET", status="404") == 2
    assert delta(req, route="/leads", method="POST", status="201") == 1
    assert delta(req, route="/leads/{id}", method="GET", status="200") == 2
    assert delta(req, route="/readyz", method="GET", status="200") == 1
    # the histogram counts the same requests, with every bucket
    hist = "crmd_http_request_duration_seconds"
    assert delta(hist + "_count", route="/leads/{id}", method="GET") == 2
    assert value(after, hist + "_bucket", route="/healthz", method="GET", le="+Inf") == \
        value(after, req, route="/healthz", method="GET", status="200")
    assert delta(hist + "_sum", route="/leads/{id}", method="GET") > 0
    # one commit at least, for the create
    assert delta("crmd_writer_batch_writes_count") >= 1
    assert delta("crmd_writer_batch_writes_sum") >= 1
    assert delta("crmd_writer_batch_duration_seconds_count") >= 1
    # value() reads an absent sample as 0: the gauges and counters checked
    # to be 0 must be there.
    zeros = [("crmd_writer_queue_writes", ()), ("crmd_cache_hits_total", ()), ("crmd_cache_misses_total", ())]
    assert all(k in after for k in zeros), [k[0] for k in zeros if k not in after]
    assert value(after, "crmd_writer_queue_writes") == 0
    # the response cache (SQLite only: always off on PostgreSQL)
    looked = delta("crmd_cache_hits_total") + delta("crmd_cache_misses_total")
    if BACKEND == "sqlite":
        assert delta("crmd_cache_hits_total") >= 1 and looked >= 2
    else:
        assert looked == 0
    assert value(after, "crmd_http_open_connections") >= 1
    assert value(after, "crmd_start_time_seconds") > 1.7e9
    # raw paths never become labels
    assert "nope-" not in text and lead["id"] not in text


def test_the_finding_routes_are_counted_by_their_patterns(msrv_unlimited):
    before, _ = scrape(msrv_unlimited)
    app = msrv_unlimited.new_app()
    lead = app.create_lead(name="Found", stage="qualified")
    assert_status(app.get("/leads/summary?stage=qualified"), 200)
    assert_status(app.get("/follows/?status=pending"), 200)
    assert app.get(f"/leads/{lead['id']}/follows?nope=1").status_code == 422
    assert requests.get(msrv_unlimited.base_url + "/openapi.json", timeout=10).status_code == 200
    after, text = scrape(msrv_unlimited)
    for route, status in (("/leads/summary", "200"), ("/follows", "200"), ("/leads/{id}/follows", "422"),
                          ("/openapi.json", "200")):
        labels = {"route": route, "method": "GET", "status": status}
        req = "crmd_http_requests_total"
        assert value(after, req, **labels) - value(before, req, **labels) == 1, labels
    assert lead["id"] not in text


def test_rate_limited_requests_by_limit(msrv):
    before, _ = scrape(msrv)
    app = msrv.new_app()
    statuses = [app.get("/leads/").status_code for _ in range(8)]
    assert 429 in statuses
    forged = app.with_creds(token=token_issue(msrv.db, app.key)[:-4] + "AAAA")
    auth = [forged.get("/leads/").status_code for _ in range(4)]
    assert 429 in auth
    after, _ = scrape(msrv)
    rl = "crmd_rate_limited_total"
    assert value(after, rl, limit="app") - value(before, rl, limit="app") == statuses.count(429)
    assert value(after, rl, limit="auth") - value(before, rl, limit="auth") == auth.count(429)


def test_labels_stay_bounded(msrv):
    """Requests are labelled by route table entry, or "unmatched" by method:
    whatever paths clients send, no series is made from them."""
    from apiutil import run_crmd
    table = run_crmd("routes", check=True).stdout
    patterns = {ln.split("`")[1] for ln in table.splitlines() if ln.startswith("| ") and "`" in ln}
    req = "crmd_http_requests_total"
    before, _ = scrape(msrv)
    paths = [f"/x{i}/{uuid.uuid4()}" for i in range(40)]
    with requests.Session() as s:
        for p in paths:
            assert s.get(msrv.base_url + p).status_code == 404
            assert s.request("PATCH", msrv.base_url + "/leads" + p).status_code in (404, 405)
    after, text = scrape(msrv)
    routes = {dict(labels)["route"] for (name, labels) in after if name == req}
    assert routes <= patterns | {"unmatched"}, routes
    got = value(after, req, route="unmatched", method="GET", status="404") - \
        value(before, req, route="unmatched", method="GET", status="404")
    assert got == 40
    assert not any(p in text for p in paths)


def test_admin_listener_serves_only_metrics(msrv):
    for path in ("/leads/", "/readyz", "/openapi.json", "/metrics/x"):
        assert requests.get(msrv.admin_url + path, timeout=10).status_code == 404, path
    assert requests.get(msrv.admin_url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.post(msrv.admin_url + "/metrics", timeout=10).status_code == 404
    # ... and the API's address has no /metrics
    assert requests.get(msrv.base_url + "/metrics", timeout=10).status_code == 404


def test_admin_listener_reads_no_large_body(msrv):
    # h2o's default limit, 1 GiB, held whole bodies of POSTs to /metrics in
    # memory, with no memory guard on this listener (helper-83): a body over
    # 4 KiB is refused as it arrives, declared or chunked.
    host, port = msrv.admin_url.split("//")[1].rsplit(":", 1)
    for head in (b"Content-Length: 300000000\r\n", b"Transfer-Encoding: chunked\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
            if b"chunked" in head:
                try:
                    s.sendall(b"2000\r\n" + b"x" * 0x2000 + b"\r\n")
                except OSError:
                    pass
            else:
                try:
                    s.sendall(b"x" * 65536)
                except OSError:
                    pass
            got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 413"), (head, got[:80])
    assert requests.get(msrv.admin_url + "/healthz", timeout=10).json() == {"status": "ok"}


def test_admin_listener_speaks_no_http2(msrv):
    """The API's listeners take HTTP/2 only through the guard (--http2); the admin listener
    not at all: the HTTP/2 preface is a malformed HTTP/1 request there, not a connection
    without the guard's limits."""
    host, port = msrv.admin_url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 400"), got[:80]


def test_no_admin_listener_by_default(server):
    assert requests.get(server.base_url + "/metrics", timeout=10).status_code == 404
    assert "admin listener" not in server.stderr_text()


def test_refusals_are_counted(tmp_path):
    srv = AdminServer(tmp_path / "small", {"CRMD_MAX_CONNECTIONS": "3", "CRMD_REQUEST_MEMORY_MB": "1"})
    srv.workdir.mkdir()
    srv.start()
    try:
        app = srv.new_app()
        socks = []
        # Two uploads of 700 KB each, unfinished, with credentials (a body
        # without them is refused from its head, and never held): one
        # declaring 1,000,000 bytes is over the app's share of the request
        # memory (half of 1 MiB), refused from its head.
        head = (b"POST /leads/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + app.token.encode() + b"\r\nAppId: " + app.key.encode() +
                b"\r\nContent-Length: 1000000\r\n\r\n")
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            socks.append(c)
            try:
                c.sendall(head + b" " * 700000)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the refused upload may be cut off while it is sent
        time.sleep(0.5)
        # Over the cap of 3 connections (the two above may be closed by now).
        for _ in range(4):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        # Counted once crmd has read them: waited for (bounded), not slept on.
        deadline = time.monotonic() + 10
        while True:
            samples, _ = scrape(srv)
            guard = value(samples, "crmd_memory_guard_refusals_total", kind="request_memory")
            refused = value(samples, "crmd_http_connections_refused_total")
            if (guard >= 1 and refused >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert guard >= 1
        assert refused >= 1
        for c in socks:
            c.close()
    finally:
        assert srv.stop() == 0


def test_admin_listen_is_checked(tmp_path):
    from apiutil import run_crmd
    for bad in ("nowhere", "example.invalid:9090", "999.1.1.1:9090"):
        p = run_crmd("serve", "--admin-listen", bad, "--db", f"sqlite:{tmp_path}/x.db")
        assert p.returncode == 2 and "--admin-listen wants ADDRESS:PORT" in p.stderr, (bad, p.stderr)
    # The API's --listen too: a name failed only after "listening on", without a reason (helper-84).
    for bad in ("example.invalid:8080", "999.1.1.1:8080", "[::1]:0"):
        p = run_crmd("serve", "--listen", bad, "--db", f"sqlite:{tmp_path}/x.db")
        assert p.returncode == 2 and "--listen wants ADDRESS:PORT" in p.stderr, (bad, p.stderr)
        assert "listening on" not in p.stderr


def healthz_on(sock):
    """One GET /healthz on an open keep-alive socket; its status."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sock.sendall(request)
    data = recv_answer(sock)
    assert answer_complete(data), f"connection closed before a whole answer: {data[:200]!r}"
    host, port = sock.getpeername()
    return check_raw(f"{host}:{port}", request, data)[0]


def thread_connections(srv, threads):
    samples, _ = scrape(srv)
    return [value(samples, "crmd_http_thread_connections", thread=str(i)) for i in range(threads)]


def wait_thread_connections(srv, threads, total):
    deadline = time.monotonic() + 10
    while sum(per := thread_connections(srv, threads)) != total:
        assert time.monotonic() < deadline, f"connections per thread {per}, not {total} in all"
        time.sleep(0.05)
    return per


def test_connections_are_spread_evenly_over_the_threads(tmp_path):
    """The kernel hashes each new connection onto one of the threads'
    listeners, so a few long-lived ones often land unevenly (20 of 32 on one
    of two threads happens). crmd hands a new connection to the thread
    serving the fewest: 32 opened one after the other end 16 and 16, and
    every one handed over is served."""
    srv = AdminServer(tmp_path, {}).start()
    conns = []
    try:
        wait_thread_connections(srv, 2, 0)  # the start-up check's connection is gone
        for _ in range(32):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            conns.append(sock)
            assert healthz_on(sock) == 200
        assert sorted(wait_thread_connections(srv, 2, 32)) == [16, 16]
        for sock in conns:
            assert healthz_on(sock) == 200
        for sock in conns[:10]:
            sock.close()
        wait_thread_connections(srv, 2, 22)
    finally:
        for sock in conns:
            sock.close()
        assert srv.stop() == 0
