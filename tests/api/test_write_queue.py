"""The writer's queue (issue 9, findings 2 and 6): bounded, so that a write
that finds it full gets a quick 503 with Retry-After and nothing of it is
done; and a write whose client went away is either committed or not run,
never half done, and logged either way with client=gone.

The writer is held by a lock on the database that the test takes (SQLite:
BEGIN IMMEDIATE; PostgreSQL: LOCK TABLE leads), so that writes pile up
deterministically; the lock is let go well within crmd's 5 s busy timeout."""

import concurrent.futures
import re
import sqlite3
import subprocess
import time

import requests

from apiutil import TIMEOUT, assert_error, body_json


class DbLock:
    """Holds the write lock of a server's database until release()."""

    def __init__(self, server):
        url = server.db_url
        if url.startswith("sqlite:"):
            self.con = sqlite3.connect(url[len("sqlite:"):], isolation_level=None, timeout=10)
            self.con.execute("BEGIN IMMEDIATE")
            self.psql = None
        else:
            self.con = None
            self.psql = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.psql.stdin.write("BEGIN; LOCK TABLE leads IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
            self.psql.stdin.flush()
            assert self.psql.stdout.readline().strip() == "locked"

    def release(self):
        if self.con is not None:
            self.con.execute("COMMIT")
            self.con.close()
            self.con = None
        if self.psql is not None:
            self.psql.communicate("COMMIT;\n", timeout=10)
            self.psql = None


def post_lead(app, name):
    return requests.post(app.base_url + "/leads/", json={"lead": {"name": name}}, headers=app.headers,
                         timeout=TIMEOUT)


def total(app):
    return body_json(app.get("/leads/", params={"records": 1}))["meta"]["totalRecords"]


def wait_for_line(srv, pattern, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, srv.stderr_text())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"no log line matching {pattern!r}; stderr tail:\n{srv.stderr_text()[-2000:]}")


def test_a_full_write_queue_is_a_quick_503_and_changes_nothing(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_WRITE_QUEUE", "2")
    srv = make_server()
    app = srv.new_app()
    lock = DbLock(srv)
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(post_lead, app, f"q{i}") for i in range(3)]
            # Two writes fill the queue (one of them waiting for the lock);
            # the third is refused at once, while the lock is still held.
            done, _ = concurrent.futures.wait(futures, timeout=3,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            assert len(done) == 1, "no write was refused while the queue was full"
            first = done.pop()
            lock.release()
            refused = first.result()
            rest = [f.result() for f in futures if f is not first]
    finally:
        lock.release()
    assert_error(refused, 503, "service_unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    assert sorted(r.status_code for r in rest) == [201, 201]
    assert total(app) == 2
    wait_for_line(srv, "POST /leads/ 503 ")


def test_an_http2_write_whose_client_left_is_logged_and_never_half_done(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_HTTP2", "1")  # cleartext HTTP/2 is off by default
    srv = make_server()
    app = srv.new_app()
    lock = DbLock(srv)
    try:
        # curl gives up after a second and closes the connection: h2o lets
        # go of the stream's request while its write waits for the lock.
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-m", "1", "-X", "POST",
                            "-H", f"Authorization: Bearer {app.token}", "-H", f"AppId: {app.key}",
                            "-H", "Content-Type: application/json", "-H", "X-Request-Id: gone-write-1",
                            "-A", "gone-agent/1", "-d", '{"lead":{"name":"gone"}}',
                            srv.base_url + "/leads/"], capture_output=True, timeout=20)
        assert p.returncode == 28, p  # timed out: no answer came while the lock was held
    finally:
        lock.release()
    # The line keeps what the request said after h2o let go of it: the
    # client, the request id and the User-Agent.
    m = wait_for_line(srv, r"127\.0\.0\.1 POST /leads/ (\d+) \S+ app=" + re.escape(app.key) +
                      r" id=gone-write-1 (?:code=\S+ )?ua=\"gone-agent/1\" client=gone\n")
    status = int(m.group(1))
    # Not run (SQLite: the writer waited for the lock before reaching it),
    # or committed (PostgreSQL: it ran into the table lock); never between.
    assert status in (499, 201), m.group(0)
    assert total(app) == (1 if status == 201 else 0)
    if srv.db_url.startswith("sqlite:"):
        assert status == 499
