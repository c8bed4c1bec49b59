"""A CSV export over HTTP reads one snapshot (docs/csv.md, "Export"): leads
changed, created or deleted while it streams are written as they were when
it began, each once; and the limits on running exports (how many per app
and in all, and for how long each may hold its snapshot)."""

import csv
import http.client
import io
import json
import socket
import sqlite3
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import requests

from apiutil import TIMEOUT, assert_status, body_json, check_answer, curl
from conftest import BACKEND, psql

# Rows of about 1 KB (names and sources of three-byte characters): 6,000
# of them make a file larger than the server's socket can hold ahead of its
# reader (up to 4 MiB on loopback), so an export whose client reads slowly
# is still reading the database.
LEADS = 6000
PAD = "漢" * 240
MID = LEADS // 2


class SlowReader(http.client.HTTPConnection):
    """A connection whose socket takes little at a time (a 4 KiB receive
    buffer), so the server can send only a little ahead of what is read."""

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = s


def start_export(app, params="sort=-value", first=4096):
    """Starts an export on a slow connection and reads its head and the
    first bytes of its body; returns (connection, response, bytes read)."""
    host, port = app.base_url.split("//")[1].split(":")
    conn = SlowReader(host, int(port), timeout=TIMEOUT)
    conn.request("GET", f"/leads/?format=csv&{params}", headers=app.headers)
    resp = conn.getresponse()
    head = resp.read(first) if resp.status == 200 else resp.read()
    # An export's body is read later, if at all: its status and headers are checked.
    check_answer(f"{host}:{port}", "GET", f"/leads/?format=csv&{params}", resp.status,
                 dict(resp.getheaders()), None if resp.status == 200 else head)
    return conn, resp, head


def export_once_allowed(app):
    """Asks for an export every 0.1 s until one runs (or TIMEOUT passes);
    returns what start_export returned for the last."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        conn, resp, body = start_export(app)
        if resp.status == 200 or time.monotonic() > deadline:
            return conn, resp, body
        conn.close()
        time.sleep(0.1)


def seed(app, n=LEADS):
    """n leads valued 1..n (the lowest last under sort=-value), with long
    names and sources."""
    lines = ["name,source,value"] + [f"Lead {i:05d} {PAD},{'字' * 60},{i}" for i in range(1, n + 1)]
    # Long names make many trigrams to index: more time than TIMEOUT on a
    # busy machine (the API's own client waits TIMEOUT).
    r = requests.post(app.base_url + "/leads/import", data=("\r\n".join(lines) + "\r\n").encode(),
                      headers=dict(app.headers, **{"Content-Type": "text/csv"}), timeout=120)
    assert_status(r, 200)
    assert body_json(r)["meta"]["created"] == n


def rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))[1:]


def full_export(app, params):
    r = app.get("/leads/", params=dict(params, format="csv"))
    assert_status(r, 200)
    return r.content


def test_an_export_is_one_snapshot_while_leads_change_under_its_sort(app):
    seed(app)
    before = full_export(app, {"sort": "-value"})
    by_value = {int(v): i for i, _, _, _, _, v, *_ in rows(before.decode())}
    conn, resp, head = start_export(app)
    assert resp.status == 200
    assert before.startswith(head)
    # While it streams: the lowest leads (its end, not read yet) move to the
    # top, which it has passed; the highest (written already) to the bottom;
    # some in between change value in place; the next lowest are deleted;
    # new leads join its end.
    for k in range(1, 11):
        r = app.put(f"/leads/{by_value[k]}", {"lead": {"value": LEADS + 100 + k}})
        assert_status(r, 200)
        r = app.put(f"/leads/{by_value[LEADS + 1 - k]}", {"lead": {"value": "0.5"}})
        assert_status(r, 200)
        r = app.put(f"/leads/{by_value[MID + k]}", {"lead": {"value": f"{MID + k}.25"}})
        assert_status(r, 200)
        assert_status(app.delete(f"/leads/{by_value[20 + k]}"), 204)
        app.create_lead(name=f"new {k}", value=f"{30 + k}.5")
    # Every other request of the app reads what is committed meanwhile.
    assert body_json(app.get(f"/leads/{by_value[1]}"))["data"]["attributes"]["value"] == LEADS + 101
    r = app.get("/leads/", params={"sort": "-value", "records": 3})
    assert [d["id"] for d in body_json(r)["data"]] == [by_value[k] for k in (10, 9, 8)]
    assert_status(app.get(f"/leads/{by_value[21]}"), 404)
    text = head + resp.read()
    conn.close()
    assert text == before  # every lead once, in order, as it was when the export began
    ids = [row[0] for row in rows(text.decode())]
    assert len(ids) == len(set(ids)) == LEADS
    # The changes are there for the next export.
    after = rows(full_export(app, {"sort": "-value"}).decode())
    assert len(after) == LEADS
    assert [row[0] for row in after[:10]] == [by_value[k] for k in range(10, 0, -1)]
    assert [row[5] for row in after[-10:]] == ["0.5"] * 10


# ---------------------------------------------------------------- limits

def assert_refused(resp, body, status, code):
    assert resp.status == status, (resp.status, body)
    assert int(resp.getheader("Retry-After")) >= 1
    errs = json.loads(body)["errors"]
    assert errs[0]["status"] == str(status) and errs[0]["code"] == code


def h2_export_status(app):
    rc, version, status, _, _, err = curl("--http2-prior-knowledge", "-H", f"AppId: {app.key}", "-H",
                                          f"Authorization: Bearer {app.token}",
                                          app.base_url + "/leads/?format=csv", timeout=TIMEOUT)
    assert rc == 0, err
    return f"{status} {version}"


def test_running_exports_are_capped_per_app_and_in_all(make_server):
    srv = make_server(extra_args=["--export-limit", "3:2", "--http2"])
    a, b, c = srv.new_app(), srv.new_app(), srv.new_app()
    seed(a)
    seed(b)
    c.create_lead(name="c")
    held = [start_export(a), start_export(a)]
    assert all(resp.status == 200 for _, resp, _ in held)
    conn, resp, body = start_export(a)
    assert_refused(resp, body, 429, "rate_limited")
    conn.close()
    assert h2_export_status(a) == "429 2"  # the same over HTTP/2
    assert_status(a.get("/leads/"), 200)  # the JSON list is not an export
    held.append(start_export(b))
    assert held[-1][1].status == 200
    conn, resp, body = start_export(c)
    assert_refused(resp, body, 503, "service_unavailable")
    conn.close()
    assert h2_export_status(c) == "503 2"
    # An export that ends gives its place back.
    held[0][0].close()
    conn, resp, body = export_once_allowed(c)
    assert resp.status == 200
    assert len(rows((body + resp.read()).decode())) == 1
    conn.close()
    for conn, _, _ in held[1:]:
        conn.close()


def snapshot_held_now(srv):
    """Whether a snapshot begun before the last write is open: on SQLite a
    checkpoint cannot copy that write back; on PostgreSQL a connection has
    been idle in a transaction for over a second (the export's waits for its
    client once the socket's buffers are full; another connection is so only
    for a moment, between a transaction's statements)."""
    if BACKEND == "sqlite":
        db = sqlite3.connect(srv.db, timeout=TIMEOUT)
        try:
            _busy, log, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            db.close()
        return done < log
    return int(psql(srv.db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND state LIKE 'idle in transaction%' "
                                "AND clock_timestamp() - state_change > interval '1 second'")) > 0


def snapshot_becomes(srv, held, timeout=5):
    """Whether snapshot_held_now(srv) is `held` within timeout seconds."""
    deadline = time.monotonic() + timeout
    while snapshot_held_now(srv) != held:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.waits
def test_an_export_holds_its_snapshot_no_longer_than_its_time(make_server):
    srv = make_server(extra_args=["--export-time", "6s", "--export-limit", "1"])
    app, other = srv.new_app(), srv.new_app()
    seed(app)
    other.create_lead(name="other")
    conn, resp, head = start_export(app)
    assert resp.status == 200
    app.create_lead(name="written after the export began", value=1)
    assert snapshot_becomes(srv, True)
    conn2, resp2, body2 = start_export(other)
    assert resp2.status == 503  # the one place is taken
    conn2.close()
    time.sleep(6)
    # Its time is up: the snapshot and the place are let go, though its
    # client has not read on...
    assert snapshot_becomes(srv, False)
    # ...and, as the process's exports held snapshots for --export-time, the
    # next begins after a pause of 2 s (the WAL's, see the two apps' test).
    time.sleep(2.1)
    assert len(rows(full_export(other, {}).decode())) == 1
    # ...and what it reads next ends without the last chunk, so it is never
    # taken for the whole file.
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()


def h2_start_export(app, port):
    """Starts an export on an HTTP/2 connection whose stream window is 1 KiB
    and never grows; returns (socket, status)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
    head = [(":method", "GET"), (":path", "/leads/?format=csv"), (":scheme", "http"), (":authority", "crmd")]
    head += [(k.lower(), v) for k, v in app.headers.items()]
    conn.send_headers(conn.get_next_available_stream_id(), head, end_stream=True)
    sock.sendall(conn.data_to_send())
    while True:
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                sock.sendall(conn.data_to_send())
                return sock, int(dict(ev.headers)[b":status"])
        sock.sendall(conn.data_to_send())


@pytest.mark.waits
@pytest.mark.parametrize("proto", ["http1", "http2"])
def test_an_export_whose_client_takes_nothing_lets_its_snapshot_go_after_the_idle_time(make_server, proto):
    """A client that stops taking its export holds the snapshot (and, on
    SQLite, every checkpoint) for --export-time's IDLE only, not for the
    whole --export-time: 60 s here, 10 minutes by default; HTTP/1's
    TCP_USER_TIMEOUT and HTTP/2's stall reset only come after 20 s."""
    srv = make_server(extra_args=["--export-time", "60s:4s", "--export-limit", "1", "--http2"])
    app, other = srv.new_app(), srv.new_app()
    seed(app)
    other.create_lead(name="other")
    if proto == "http1":
        conn, resp, _ = start_export(app)
        status = resp.status
    else:
        conn, status = h2_start_export(app, srv.port)
    assert status == 200
    began = time.monotonic()
    app.create_lead(name="written after the export began", value=1)
    assert snapshot_becomes(srv, True, timeout=3)  # PostgreSQL's shows after 1 s
    # Let go one to two idle times after the client's last taking (the
    # socket's buffers fill at once), far before 20 s.
    assert snapshot_becomes(srv, False, timeout=12)
    assert time.monotonic() - began < 15
    assert len(rows(full_export(other, {}).decode())) == 1  # its place too
    conn.close()


@pytest.mark.waits
def test_an_export_read_slowly_but_steadily_is_not_cut_off_by_the_idle_time(make_server):
    srv = make_server(extra_args=["--export-time", "60s:3s"])
    app = srv.new_app()
    seed(app)
    conn, resp, head = start_export(app)
    assert resp.status == 200
    body, until = [head], time.monotonic() + 8  # well past the idle time
    while time.monotonic() < until:
        body.append(resp.read(64 * 1024))  # 256 KiB a second: a page of these long rows a second
        time.sleep(0.25)
    body.append(resp.read())
    conn.close()
    assert len(rows(b"".join(body).decode())) == LEADS


@pytest.mark.waits
@pytest.mark.parametrize("two_apps", [False, True], ids=["one-app", "two-apps"])
def test_exports_hold_snapshots_without_a_break_no_longer_than_the_export_time(make_server, two_apps):
    """Exports begun one before the other ends (each within its own time)
    once kept a snapshot open for ever, and SQLite's WAL grew without end:
    an app whose exports have held one without a break for --export-time
    gets a 429 until they have all ended. The same for the process's
    exports of every app: two apps exporting in turn (neither app's own
    exports ever without a break for --export-time) grew the WAL to 1.26 GB
    in 30 s at --export-time 4s, under another app's imports (67 MB without
    the exports); once the process's exports have held snapshots without a
    break for --export-time, a new one is refused (503). Either way exports
    begin again once all have ended and none has run for 2 s."""
    limit = 6 if two_apps else 10
    srv = make_server(extra_args=["--export-time", f"{limit}s"])
    a = srv.new_app()
    b = srv.new_app() if two_apps else a
    seed(a)
    if two_apps:
        seed(b)
    first, resp, _ = start_export(a)
    assert resp.status == 200
    began = time.monotonic()
    time.sleep(3)
    second, resp, _ = start_export(b)
    assert resp.status == 200  # the first has held its snapshot for 3 s
    time.sleep(max(0.0, began + limit + 1.5 - time.monotonic()))
    # The first is cut off (at limit), the second runs until limit + 3: a
    # snapshot has been held without a break for over limit (with two
    # apps, a's own exports have had a break, the process's none).
    conn, resp, body = start_export(a)
    assert time.monotonic() - began < limit + 2.8
    if two_apps:
        assert_refused(resp, body, 503, "service_unavailable")
    else:
        assert_refused(resp, body, 429, "rate_limited")
    conn.close()
    # Once the second has ended too (limit + 3), and the WAL had its pause
    # of 2 s, a exports again.
    conn, resp, _ = export_once_allowed(a)
    assert resp.status == 200
    assert time.monotonic() - began >= limit + 4.9
    for c in (conn, first, second):
        c.close()


@pytest.mark.waits
def test_exports_begun_one_after_the_other_each_ended_in_its_time_make_no_break(make_server):
    """Exports each held under a second, then let go, the next begun at
    once: none ever reached its own --export-time, and the pause between
    two was too short for SQLite to start its WAL again, yet each began a
    new chain, so that the snapshot stayed held for ever (a review). A
    pause under 2 s is no break: once the chain has lasted --export-time,
    the next export is refused (503) until a pause of 2 s."""
    srv = make_server(extra_args=["--export-time", "3s"])
    app = srv.new_app()
    seed(app)
    began, statuses = time.monotonic(), []
    while time.monotonic() - began < 6:
        conn, resp, body = start_export(app)
        statuses.append(resp.status)
        if resp.status != 200:
            break
        time.sleep(0.8)
        conn.close()
    assert statuses[:3] == [200, 200, 200], statuses
    assert_refused(resp, body, 503, "service_unavailable")
    assert time.monotonic() - began < 5, statuses
    conn.close()
    time.sleep(2.5)
    conn, resp, _ = start_export(app)
    assert resp.status == 200
    conn.close()


def test_exports_whose_http2_streams_are_reset_give_their_places_back(make_server):
    """Twelve exports asked for on one HTTP/2 connection (fewer than the
    streams it may have open) that takes little (a 1 KiB window): two run,
    the rest are refused; the two running streams reset, the connection
    left open, both places come back at once."""
    srv = make_server(extra_args=["--export-limit", "4:2", "--http2"])
    a = srv.new_app()
    seed(a)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
    head = [(":method", "GET"), (":path", "/leads/?format=csv"), (":scheme", "http"), (":authority", "crmd")]
    head += [(k.lower(), v) for k, v in a.headers.items()]
    streams = []
    for _ in range(12):
        streams.append(conn.get_next_available_stream_id())
        conn.send_headers(streams[-1], head, end_stream=True)
    sock.sendall(conn.data_to_send())
    statuses = {}
    while len(statuses) < len(streams):
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses[ev.stream_id] = dict(ev.headers)[b":status"]
                fields = {k.decode(): v.decode() for k, v in ev.headers if not k.startswith(b":")}
                check_answer(f"127.0.0.1:{srv.port}", "GET", "/leads/?format=csv",
                             int(statuses[ev.stream_id]), fields, None)  # the body is not read
        sock.sendall(conn.data_to_send())
    assert sorted(statuses.values()) == [b"200"] * 2 + [b"429"] * 10
    # The two running exports cannot have ended: their files are far
    # larger than the window.
    for sid in (sid for sid, status in statuses.items() if status == b"200"):
        conn.reset_stream(sid)
    sock.sendall(conn.data_to_send())
    held, deadline = [], time.monotonic() + TIMEOUT
    while len(held) < 2:
        c, resp, _ = start_export(a)
        if resp.status == 200:
            held.append(c)
            continue
        c.close()
        assert time.monotonic() < deadline, resp.status
        time.sleep(0.1)
    for c in held:
        c.close()
    sock.close()
