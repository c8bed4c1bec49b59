"""PostgreSQL only (collected when CRMD_TEST_BACKEND=postgres, see conftest):
connection strings, migrations racing, two crmd processes on one database, a
PostgreSQL outage under load, reads that wait at the database without
holding up their thread, and `crmd copy` round trips."""

import os
import re
import select
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import pytest
import requests

from apiutil import (App, assert_error, assert_status, body_json, check_follow, check_safe, crmd_bin, fill_safe,
                     parse_app_create, run_crmd)
from test_trash import copied_safe

PG_URL = os.environ.get("CRMD_TEST_PG_URL", "").rstrip("/")
PG_SOCKET = os.environ.get("CRMD_TEST_PG_SOCKET", "")
PG_DIR = os.environ.get("CRMD_TEST_PG_DIR", "")
PG_CTL = os.environ.get("CRMD_TEST_PG_CTL", "")
PASSWORD = urlsplit(PG_URL).password or "no-password-in-url"


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"psql {sql!r}: {p.stderr}"
    return p.stdout.strip()


def new_db():
    """A new empty database: (its name, its URL)."""
    name = f"crmd_pgt_{uuid.uuid4().hex[:12]}"
    psql(f"{PG_URL}/postgres", f'CREATE DATABASE "{name}"')
    return name, f"{PG_URL}/{name}"


def get(base_url, app, path, **kw):
    """A request that may fail (5xx included): returns the response."""
    return requests.get(base_url + path, headers=app.headers, timeout=10, **kw)


def snapshot(app):
    """Everything an app can read through the API, by path."""
    out = {}
    for page in (1, 2):
        out[f"/leads/?page={page}&records=3"] = body_json(app.get("/leads/", params={
            "page": page, "records": 3}))
    for lead in app.list_all("/leads/"):
        lid = lead["id"]
        out[f"/leads/{lid}"] = app.get_lead(lid)
        out[f"/leads/{lid}/follows"] = body_json(app.get(f"/leads/{lid}/follows",
                                                         params={"records": 100}))
        for f in out[f"/leads/{lid}/follows"]["data"]:
            out[f"/leads/{lid}/follows/{f['id']}"] = app.get_follow(lid, f["id"])
    return out


def fill(app, n_leads, tag):
    """Leads with every attribute set or unset, updated ones, follows of all
    kinds, and one deleted lead (so counts are more than inserts)."""
    leads = []
    for i in range(n_leads):
        attrs = {"name": f"{tag} lead {i}", "stage": ["new", "contacted", "qualified"][i % 3]}
        if i % 2 == 0:
            attrs.update(value=f"{1000 + i}.{i:02d}", probability=10 * i % 100, source="referral",
                         account_id=str(uuid.uuid4()), contact_id=str(uuid.uuid4()))
        leads.append(app.create_lead(**attrs))
    assert_status(app.put(f"/leads/{leads[0]['id']}", {"lead": {"status": "converted",
                                                                 "value": None}}), 200)
    for i, lead in enumerate(leads):
        for j in range(i % 3):
            f = app.create_follow(lead["id"], title=f"{tag} follow {i}.{j}",
                                  description="call back" if j else None,
                                  due_date="2030-01-0%dT10:00:00Z" % (j + 1) if j else None)
            if j == 2:
                assert_status(app.put(f"/leads/{lead['id']}/follows/{f['id']}",
                                      {"follow": {"status": "completed"}}), 200)
    gone = app.create_lead(name=f"{tag} deleted")
    assert_status(app.delete(f"/leads/{gone['id']}"), 204)
    return leads


# ----------------------------------------------------------- connection strings

def test_url_and_key_value_forms_and_no_password_in_output(make_server):
    name, url = new_db()
    pg_scheme = "postgres://" + url.split("://", 1)[1]
    keyvalue = f"{PG_SOCKET} dbname={name}"
    p = run_crmd("migrate", "--db", pg_scheme, check=True)
    assert PASSWORD not in p.stdout + p.stderr
    assert "***" in p.stderr, p.stderr
    run_crmd("migrate", "--db", keyvalue, check=True)
    key, token = parse_app_create(run_crmd("app", "create", "kv", "--db", keyvalue, check=True).stdout)
    tok2 = run_crmd("token", "issue", "--app", key, "--db", url, check=True).stdout.strip()
    srv = make_server(threads=2, db_url=keyvalue)
    for t in (token, tok2):
        assert_status(App(srv.base_url, key, t).get("/leads/"), 200)
    srv_url = make_server(threads=1, db_url=url)
    assert_status(App(srv_url.base_url, key, token).get("/leads/"), 200)
    assert PASSWORD not in srv_url.stderr_text()


def _hostile_role(name):
    """A role owning database name, whose password holds every character the
    review saw printed in clear ('#', '?') and more; returns it and the password."""
    role = f"crmd_h_{uuid.uuid4().hex[:8]}"
    password = "Hx#q?w:rd/x@y z"
    psql(f"{PG_URL}/postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    psql(f"{PG_URL}/postgres", f'ALTER DATABASE "{name}" OWNER TO {role}')
    return role, password


def _assert_hidden(text, password):
    for piece in (password, "Hx#q", "q?w", "w:rd", "rd/x", "x@y", "%2Fx", "%40y", "y z", "wr#ong"):
        assert piece not in text, f"{piece!r} printed: {text}"


def test_hostile_passwords_are_masked_in_every_message(make_server, tmp_path):
    name, _ = new_db()
    role, password = _hostile_role(name)
    host, port = urlsplit(PG_URL).hostname, urlsplit(PG_URL).port
    # In a URL, libpq reads the password up to the first '@' or '/': those two are encoded.
    url = f"postgresql://{role}:{quote(password, safe='#?:')}@{host}:{port}/{name}"
    kv = f"host={host} port={port} dbname={name} user={role} password='{password}'"
    for db in (url, kv):
        p = run_crmd("migrate", "--db", db, check=True)
        assert "***" in p.stderr, p.stderr
        _assert_hidden(p.stdout + p.stderr, password)
    p = run_crmd("copy", "--from", url, "--to", f"sqlite:{tmp_path}/copy.db", check=True)
    assert "from postgresql://" in p.stdout and "***" in p.stdout, p.stdout
    _assert_hidden(p.stdout + p.stderr, password)
    srv = make_server(threads=1, db_url=url)
    # The workers answer /healthz a moment before the main thread logs that
    # it is ready (http_serve waits for them all to start first).
    deadline = time.monotonic() + 10
    while "crmd: ready" not in srv.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "ready (database postgresql://" in srv.stderr_text()
    _assert_hidden(srv.stderr_text(), password)
    # Wrong passwords of the same shape, and strings libpq cannot read at all
    # (its own message would quote them, or the piece it could not decode).
    for db in (url.replace("Hx#q", "wr#ong"), kv.replace("Hx#q", "wr#ong"),
               f"postgresql://{role}:wr#ong%zz@{host}:{port}/{name}",
               f"postgresql://{role}:wr#ong@[::1/{name}",
               f"host={host} port={port} user={role} password=wr#ong y z"):
        p = run_crmd("migrate", "--db", db)
        assert p.returncode == 1, (db, p.stderr)
        assert "PostgreSQL" in p.stderr, p.stderr
        _assert_hidden(p.stdout + p.stderr, password)


def test_unreachable_database_fails_fast_without_printing_the_password():
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/nowhere"
    for args in (["migrate"], ["serve", "--listen", "127.0.0.1:1"], ["app", "create", "x"]):
        t = time.monotonic()
        p = run_crmd(*args, "--db", url, timeout=20)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert time.monotonic() - t < 5
        assert "connect" in p.stderr.lower(), p.stderr
        assert PASSWORD not in p.stdout + p.stderr


def test_processes_migrating_together_migrate_once_to_sqlites_version(tmp_path):
    name, url = new_db()
    procs = [subprocess.Popen([crmd_bin(), "migrate", "--db", url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert psql(url, "SELECT count(*) FROM crmd_schema") == "1"
    version = int(psql(url, "SELECT version FROM crmd_schema"))
    run_crmd("migrate", "--db", f"sqlite:{tmp_path / 'v.db'}", check=True)
    con = sqlite3.connect(tmp_path / "v.db")
    assert con.execute("PRAGMA user_version").fetchone()[0] == version
    con.close()
    tables = psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                       "WHERE schemaname = 'public'")
    for t in ("apps", "follows", "leads", "signing_keys"):
        assert t in tables.split(","), tables


# ------------------------------------------------------------- two processes

def test_two_processes_share_one_database(make_server):
    _, url = new_db()
    a = make_server(threads=2, db_url=url)
    b = make_server(threads=2, db_url=url)
    app_a = a.new_app()
    app_b = App(b.base_url, app_a.key, app_a.token)

    lead = app_a.create_lead(name="Shared", value="10.50", probability=20)
    assert app_b.get_lead(lead["id"]) == lead
    r = app_b.put(f"/leads/{lead['id']}", {"lead": {"stage": "proposal"}})
    assert_status(r, 200)
    assert app_a.get_lead(lead["id"]) == body_json(r)["data"]
    f = app_b.create_follow(lead["id"], title="From B")
    assert body_json(app_a.get(f"/leads/{lead['id']}/follows"))["data"] == [f]

    # Parallel updates of one lead through both processes: every one
    # succeeds, none is lost, updated_at strictly increases.
    def update(i):
        client = app_a if i % 2 else app_b
        r = client.put(f"/leads/{lead['id']}", {"lead": {"probability": i % 101, "name": f"v{i}"}})
        assert_status(r, 200)
        return body_json(r)["data"]
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(update, range(80)))
    stamps = [x["attributes"]["updated_at"] for x in results]
    assert len(set(stamps)) == len(stamps), "two successful updates share an updated_at"
    last = max(results, key=lambda x: x["attributes"]["updated_at"])
    assert app_a.get_lead(lead["id"]) == last == app_b.get_lead(lead["id"])

    # Creates, deletes, updates and follows racing through both: no 5xx
    # (Client asserts it), and both processes agree on every count.
    def mixed(i):
        client = app_a if i % 2 else app_b
        new = client.create_lead(name=f"M{i}")
        client.create_follow(lead["id"], title=f"F{i}")
        assert_status(client.put(f"/leads/{lead['id']}", {"lead": {"value": i}}), 200)
        if i % 3 == 0:
            assert_status(client.delete(f"/leads/{new['id']}"), 204)
            return 0
        return 1
    with ThreadPoolExecutor(max_workers=8) as ex:
        kept = sum(ex.map(mixed, range(60)))
    for client in (app_a, app_b):
        assert body_json(client.get("/leads/"))["meta"]["totalRecords"] == kept + 1
        assert len(client.list_all("/leads/")) == kept + 1
        assert body_json(client.get(f"/leads/{lead['id']}/follows"))["meta"]["totalRecords"] == 61
    assert psql(url, "SELECT bool_and(lead_count = (SELECT count(*) FROM leads l WHERE l.app_id = a.id)) "
                     "FROM apps a") == "t"

    # Follows created through one process while the other deletes their
    # lead: each is created (and then deleted with it) or finds no lead;
    # the writes batched with a failed one are not disturbed.
    victims = [app_a.create_lead(name=f"victim {i}") for i in range(6)]

    def race(i):
        victim = victims[i % len(victims)]
        if i % 8 == 7:
            r = app_b.delete(f"/leads/{victim['id']}")
            assert r.status_code in (204, 404), r.text
            return None
        r = app_a.post(f"/leads/{victim['id']}/follows", {"follow": {"title": f"R{i}"}})
        assert r.status_code in (201, 404), r.text
        return r.status_code
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(race, range(96)))
    assert psql(url, "SELECT count(*) FROM follows f WHERE NOT EXISTS (SELECT 1 FROM leads l "
                     "WHERE l.app_id = f.app_id AND l.id = f.lead_id)") == "0"
    for s in (a, b):
        # Deadlocks between the two writers are retried (and logged); any
        # other database complaint is a failure.
        problems = [ln for ln in s.stderr_text().splitlines()
                    if ln.startswith("crmd: postgres:") and "deadlock" not in ln]
        assert not problems, problems


class Holder:
    """A psql session of the test's own (application_name holder), fed
    statements as the test goes, to hold rows that crmd then waits for."""

    def __init__(self, url):
        self.url = url
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PGAPPNAME": "holder"})
        # Where the session closes a circle with crmd, crmd's transaction
        # must be the one PostgreSQL cancels: it checks for a deadlock after
        # a second of waiting, the session only after ten, however late the
        # session began to wait on a loaded machine.
        self.send("SET deadlock_timeout = '10s';")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()

    def send(self, sql):
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()

    def idle_in_transaction(self):
        return psql(self.url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holder' "
                              "AND state = 'idle in transaction'") == "1"

    def finish(self):
        """Ends the session once its statements ran; fails on any error."""
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read()


def wait_until(done, what, timeout=30):
    """Polls done() until it holds; fails after timeout seconds (generous: CI machines are slow)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def lock_waits(url):
    """Sessions of the database waiting for a lock."""
    return int(psql(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))


def deadlock_db():
    """new_db() whose sessions look for a deadlock after 4.5 s of waiting,
    not PostgreSQL's 1 s: PostgreSQL looks once per wait, so a circle the
    test closes later than that on a loaded machine was never found, and
    crmd's batch ended on its 5 s lock_timeout (a 503) instead of losing
    the deadlock (CI m36 under ASan at 1 s; once at 3 s on a machine a
    load test kept busy). 4.5 s still comes before that timeout, which
    the same backend times from the same start."""
    name, url = new_db()
    psql(f"{PG_URL}/postgres", f'ALTER DATABASE "{name}" SET deadlock_timeout = \'4500ms\'')
    return name, url


def test_a_batch_that_loses_a_deadlock_runs_again_whole(make_server):
    with_reruns(lambda: a_batch_that_loses_a_deadlock_runs_again_whole(make_server))


def a_batch_that_loses_a_deadlock_runs_again_whole(make_server):
    # A session of the test's own holds lead two, crmd's batch (rename one,
    # then two) takes one and waits for two, then the session asks for one:
    # a circle, which crmd's transaction, waiting longer, finds. crmd undoes
    # its whole batch, runs it again once the session is done, and answers
    # 200 as if nothing had happened: one history entry per rename, not a
    # half committed from the try that lost.
    _, url = deadlock_db()
    srv = make_server(db_url=url)
    app = srv.new_app()
    # crmd's batch locks its leads in the order of their ids: one first.
    one, two = sorted((app.create_lead(name="one"), app.create_lead(name="two")), key=lambda x: x["id"])
    with Holder(url) as holder:
        holder.send(f"BEGIN; UPDATE leads SET name = 'other' WHERE id = '{two['id']}';")
        wait_until(holder.idle_in_transaction, "the session to hold lead two")
        ops = [{"op": "update", "id": lead["id"], "lead": {"name": "batch"}} for lead in (one, two)]
        with ThreadPoolExecutor(max_workers=1) as ex:
            answer = ex.submit(app.post, "/leads/batch", {"operations": ops})
            wait_until(lambda: lock_waits(url) == 1, "crmd's batch to wait for lead two")
            holder.send(f"UPDATE leads SET name = 'other' WHERE id = '{one['id']}'; COMMIT;")
            holder.finish()
            r = answer.result(timeout=30)
    assert_status(r, 200)
    assert [d["attributes"]["name"] for d in body_json(r)["data"]] == ["batch", "batch"]
    for lead in (one, two):
        assert app.get_lead(lead["id"])["attributes"]["name"] == "batch"
        changes = body_json(app.get(f"/leads/{lead['id']}/history"))["data"]
        assert [c["attributes"]["action"] for c in changes] == ["updated", "created"]
        # The session's rename came first: the batch's, run again, follows it.
        assert changes[0]["attributes"]["changes"] == {"name": ["other", "batch"]}
    assert "deadlock: the batch is undone, to be run again" in srv.stderr_text()


def test_an_import_that_loses_a_deadlock_runs_again(make_server):
    """An import is a write alone in its batch; one that lost a deadlock to another process
    was answered 503 though the log said it would run again (a review): its failed batch
    ended without a commit, which looked like success to the writer's retry. A trigger
    takes two advisory locks in crossing orders for the two imports' first rows."""
    name, url = new_db()
    one, two = make_server(db_url=url), make_server(db_url=url)
    psql(url, "CREATE FUNCTION crossing() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
              "IF NEW.name = 'first A' THEN PERFORM pg_advisory_xact_lock(1); PERFORM pg_sleep(1); "
              "PERFORM pg_advisory_xact_lock(2); ELSIF NEW.name = 'first B' THEN "
              "PERFORM pg_advisory_xact_lock(2); PERFORM pg_sleep(1); PERFORM pg_advisory_xact_lock(1); "
              "END IF; RETURN NEW; END$$; "
              "CREATE TRIGGER crossing BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION crossing()")
    app = one.new_app()
    answers = {}

    def run(srv, first):
        csv = f"name,value\r\n{first},1\r\n" + "".join(f"{first} {i},{i}\r\n" for i in range(50))
        answers[first] = requests.post(srv.base_url + "/leads/import", data=csv.encode(), timeout=60,
                                       headers=dict(app.headers, **{"Content-Type": "text/csv"}))
    threads = [threading.Thread(target=run, args=(srv, f)) for srv, f in ((one, "first A"), (two, "first B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {k: r.status_code for k, r in answers.items()} == {"first A": 200, "first B": 200}, \
        {k: r.text[:200] for k, r in answers.items()}
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 102
    logs = one.stderr_text() + two.stderr_text()
    assert "deadlock: the batch is undone, to be run again" in logs, logs[-2000:]


def lost_the_race(err):
    """Whether err is a write answered 503 by crmd's 5 s lock_timeout: PostgreSQL looks for a
    deadlock once per wait, and on a slow run the test's session closed the circle only after
    crmd's session had looked. The run says nothing about crmd then, and is made again."""
    return isinstance(err, AssertionError) and "-> 503" in str(err) and "database cannot take" in str(err)


# How many times a deadlock test is made in all while it loses the race. Over
# about 40 CI runs the first try lost in about one of six, and twice (CI m36,
# m54) the second too, a red CI. The cause was crmd's, not the test's: a batch
# that lost the deadlock ran again at once and took lead one again before the
# session (woken by the rollback) did, so it lost the same circle three times
# and answered 503. It now waits 50 ms first (deadlock_pause in
# src/store/postgres/txn.c): 14 runs in a row then lost the deadlock once each,
# against two runs in eight losing it again before. The reruns stay for a
# machine so loaded that the circle closes only after crmd's check.
DEADLOCK_TRIES = 4


def with_reruns(run):
    """run(), made again (up to DEADLOCK_TRIES in all) while it lost the race
    (lost_the_race)."""
    for _ in range(DEADLOCK_TRIES - 1):
        try:
            return run()
        except AssertionError as err:
            if not lost_the_race(err):
                raise
    return run()


def second_batch_loses_a_deadlock(monkeypatch, make_server, prepare, writes, circle):
    """_second_batch_loses_a_deadlock, made again while it lost the race (with_reruns)."""
    return with_reruns(lambda: _second_batch_loses_a_deadlock(monkeypatch, make_server, prepare, writes, circle))


def _second_batch_loses_a_deadlock(monkeypatch, make_server, prepare, writes, circle):
    """Runs writes (functions of the app, sent in order) in one batch of
    crmd's that loses a deadlock and is run again. A session holds lead
    two, and lead three under a savepoint, so that crmd's first batch (a
    rename of three) waits while the writes queue whole behind it; then it
    lets three go, and once the second batch waits for lead two, runs
    circle (SQL taking a row the batch took: lead one, whose id comes
    before two's, so that the batch, locking its leads in id order, holds
    it) and commits. prepare(app, one, two) makes what the writes need
    first. Returns the app, what prepare returned and the writes' answers."""
    from conftest import free_port
    from prometheus_client.parser import text_string_to_metric_families
    admin = free_port()
    monkeypatch.setenv("CRMD_ADMIN_LISTEN", f"127.0.0.1:{admin}")
    _, url = deadlock_db()
    srv = make_server(db_url=url)
    app = srv.new_app()
    one, two = sorted((app.create_lead(name="one"), app.create_lead(name="two")), key=lambda x: x["id"])
    three = app.create_lead(name="three")
    made = prepare(app, one, two)

    def queued():
        text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=10).text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "crmd_writer_queue_writes")

    with Holder(url) as holder:
        holder.send(f"BEGIN; UPDATE leads SET name = 'other' WHERE id = '{two['id']}'; SAVEPOINT s; "
                    f"UPDATE leads SET name = 'other' WHERE id = '{three['id']}';")
        wait_until(holder.idle_in_transaction, "the session to hold leads two and three")
        with ThreadPoolExecutor(max_workers=1 + len(writes)) as ex:
            first = ex.submit(app.put, f"/leads/{three['id']}", {"lead": {"name": "first"}})
            wait_until(lambda: lock_waits(url) == 1, "crmd's first batch to wait for lead three")
            answers = []
            for i, write in enumerate(writes):
                answers.append(ex.submit(write, app, made))
                wait_until(lambda: queued() == 2 + i, "the second batch to queue behind the first")
            holder.send("ROLLBACK TO SAVEPOINT s;")
            assert_status(first.result(timeout=30), 200)
            wait_until(lambda: lock_waits(url) == 1, "crmd's second batch to wait for lead two")
            holder.send(circle(made) + " COMMIT;")
            holder.finish()
            answers = [a.result(timeout=30) for a in answers]
    assert "deadlock: the batch is undone, to be run again" in srv.stderr_text()
    return app, made, answers


def test_a_kept_answer_in_a_batch_run_again_is_still_sent(make_server, monkeypatch):
    # An answer made before the writer runs (a bad body under an
    # Idempotency-Key, kept for the key) shares a batch that is run again:
    # the answer is the same as on its first try.
    key = {"Idempotency-Key": "kept-" + uuid.uuid4().hex}
    ops = lambda one, two: [{"op": "update", "id": lead["id"], "lead": {"name": "batch"}}  # noqa: E731
                            for lead in (one, two)]
    app, _, (r, k) = second_batch_loses_a_deadlock(
        monkeypatch, make_server, lambda app, one, two: (one, two),
        [lambda app, m: app.post("/leads/batch", {"operations": ops(*m)}),
         lambda app, m: app.post("/leads", {"lead": {"name": 7}}, headers=key)],
        lambda m: f"UPDATE leads SET name = 'other' WHERE id = '{m[0]['id']}';")
    assert_status(r, 200)
    assert_status(k, 422)
    again = app.post("/leads", {"lead": {"name": 7}}, headers=key)
    assert_status(again, 422)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert body_json(again)["errors"] == body_json(k)["errors"]


def test_a_write_run_again_reads_afresh(make_server, monkeypatch):
    # "overdue" may be sent back only to a follow that reads overdue. The
    # session that wins the deadlock moves the follow's due date on; the
    # try that commits must then refuse the status (422). (Since a batch
    # locks its leads first, its first try loses the deadlock at that lock,
    # before it reads the follow: this no longer shows that a try made
    # again forgets what the first read.)
    def prepare(app, one, two):
        return one, app.create_follow(one["id"], title="late", due_date="2020-01-01T00:00:00.000Z"), two

    def follow_path(m):
        return f"/leads/{m[0]['id']}/follows/{m[1]['id']}"
    app, made, (f, r) = second_batch_loses_a_deadlock(
        monkeypatch, make_server, prepare,
        [lambda app, m: app.put(follow_path(m), {"follow": {"status": "overdue", "title": "still late"}}),
         lambda app, m: app.put(f"/leads/{m[2]['id']}", {"lead": {"name": "batch"}})],
        lambda m: f"UPDATE leads SET name = 'other' WHERE id = '{m[0]['id']}'; "
                  f"UPDATE follows SET due_at = 4102444800000 WHERE id = '{m[1]['id']}';")
    assert_status(r, 200)
    assert_error(f, 422)
    check_follow(app.get_follow(made[0]["id"], made[1]["id"]), status="pending", title="late")


def test_a_key_in_flight_in_another_process_is_a_409_at_once(make_server):
    """A POST whose Idempotency-Key another process's write holds, not committed yet,
    is a 409 idempotency_conflict at once, as in one process (extensions.md, "Safe
    writes"): its claim waited for the other's transaction on the key's row, up to
    lock_timeout (5 s), then answered 503, and held this process's writer, every
    write queued behind it, all that time (a review). A session holds the lead, so
    that process one's batch, its key claimed, waits; crmd gives up a lock after
    5 s, so the test's bounds (4 s each, where 2 s left a sanitized build on a
    loaded machine less room) stay under it, and a run in which process one gave
    up first (a machine too loaded to say anything) is made again."""
    with_reruns(lambda: a_key_in_flight_in_another_process_is_a_409_at_once(make_server))


def a_key_in_flight_in_another_process_is_a_409_at_once(make_server):
    _, url = new_db()
    one, two = make_server(db_url=url), make_server(db_url=url)
    app = one.new_app()
    app_two = App(two.base_url, app.key, app.token)
    lead = app.create_lead(name="held")
    key = {"Idempotency-Key": "in-flight-" + uuid.uuid4().hex}
    body = {"operations": [{"op": "update", "id": lead["id"], "lead": {"name": "batch"}}]}

    def timed(send):
        """send()'s answer and how long it took, or the exception it raised and that."""
        t0 = time.monotonic()
        try:
            return send(), time.monotonic() - t0
        except requests.RequestException as err:
            return err, time.monotonic() - t0

    def post_two(path, payload, headers):
        return requests.post(two.base_url + path, json=payload, timeout=4.5,
                             headers=dict(app.headers, **{"Content-Type": "application/json"}, **headers))

    with Holder(url) as holder:
        holder.send(f"BEGIN; UPDATE leads SET name = 'other' WHERE id = '{lead['id']}';")
        wait_until(holder.idle_in_transaction, "the session to hold the lead")
        with ThreadPoolExecutor(max_workers=1) as ex:
            first = ex.submit(app.post, "/leads/batch", body, headers=key)
            wait_until(lambda: lock_waits(url) == 1, "process one's batch to wait for the lead")
            again, again_s = timed(lambda: post_two("/leads/batch", body, key))
            # (Not after a wait: the session lets the lead go before process one gives up.)
            other, other_s = (None, 0) if isinstance(again, Exception) else \
                timed(lambda: post_two("/leads", {"lead": {"name": "meanwhile"}}, {}))
            holder.send("ROLLBACK;")
            holder.finish()
            first = first.result(timeout=30)
    # Process one gave up on the lead before process two asked: the run says nothing.
    assert_status(first, 200)
    assert not isinstance(again, Exception), f"process two waited {again_s:.1f} s for process one's key: {again!r}"
    assert_error(again, 409, "idempotency_conflict")
    assert again_s < 4, f"the 409 took {again_s:.1f} s"
    assert again.headers.get("Retry-After") == "1"
    # Process two's writer was not held up: another write goes through at once.
    assert not isinstance(other, Exception), f"process two's next write waited {other_s:.1f} s: {other!r}"
    assert_status(other, 201)
    assert other_s < 4, f"process two's next write took {other_s:.1f} s"
    # Once process one committed, the key replays its answer on process two.
    replay = app_two.post("/leads/batch", body, headers=key)
    assert_status(replay, 200)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert body_json(replay) == body_json(first)
    assert app_two.get_lead(lead["id"])["attributes"]["name"] == "batch"


def test_a_batch_locks_its_leads_in_order_before_it_waits(make_server):
    """A batch that changes several leads locks them all at once, in the order of
    their ids, before any of its writes runs: two processes' batches on the same
    leads then never each hold one the other waits for. Batches locked them in
    the order of their writes, and three processes writing four leads met 12 to
    16 deadlocks in 12 s, each costing a batch a second, some all three tries (a
    503). A session holds the lower lead; the batch (higher, then lower) waits
    for it without holding the higher one, which another session takes at once."""
    with_reruns(lambda: a_batch_locks_its_leads_in_order_before_it_waits(make_server))


def a_batch_locks_its_leads_in_order_before_it_waits(make_server):
    _, url = new_db()
    srv = make_server(db_url=url)
    app = srv.new_app()
    low, high = sorted((app.create_lead(name="one"), app.create_lead(name="two")), key=lambda x: x["id"])
    ops = [{"op": "update", "id": lead["id"], "lead": {"name": "batch"}} for lead in (high, low)]
    with Holder(url) as holder:
        holder.send(f"BEGIN; UPDATE leads SET name = 'other' WHERE id = '{low['id']}';")
        wait_until(holder.idle_in_transaction, "the session to hold the lower lead")
        with ThreadPoolExecutor(max_workers=1) as ex:
            answer = ex.submit(app.post, "/leads/batch", {"operations": ops})
            wait_until(lambda: lock_waits(url) == 1, "crmd's batch to wait for the lower lead")
            p = subprocess.run(["psql", "-X", "-q", "-A", "-t", url, "-c",
                                f"SELECT name FROM leads WHERE id = '{high['id']}' FOR UPDATE NOWAIT"],
                               capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
            holder.send("ROLLBACK;")
            holder.finish()
            r = answer.result(timeout=30)
    assert_status(r, 200)
    assert p.returncode == 0 and p.stdout.strip() == high["attributes"]["name"], \
        f"the higher lead was locked while the batch waited for the lower: {p.stderr.strip()}"
    assert [d["attributes"]["name"] for d in body_json(r)["data"]] == ["batch", "batch"]
    assert "deadlock" not in srv.stderr_text()


# ------------------------------------------------------------------- outage

def pg_ctl(action):
    assert PG_CTL and PG_DIR, "CRMD_TEST_PG_CTL and CRMD_TEST_PG_DIR come from scripts/pg-cluster.sh"
    subprocess.run([PG_CTL, action, PG_DIR], check=True, timeout=60)


def test_outage_gives_quick_503s_and_service_resumes_by_itself(make_server):
    srv = make_server(threads=2)
    app = srv.new_app()
    lead = app.create_lead(name="Before the outage")
    log = []  # (start, duration, status, retry-after)
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            t = time.monotonic()
            try:
                if i % 2:
                    r = requests.post(srv.base_url + "/leads/", json={"lead": {"name": f"L{i}"}},
                                      headers=app.headers, timeout=10)
                else:
                    r = get(srv.base_url, app, f"/leads/{lead['id']}")
                log.append((t, time.monotonic() - t, r.status_code, r.headers.get("Retry-After")))
            except requests.RequestException as e:
                log.append((t, time.monotonic() - t, repr(e), None))
            i += 1
            time.sleep(0.02)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.3)
        pg_ctl("stop")
        down_at = time.monotonic()
        time.sleep(1.0)
        up_at = time.monotonic()
        pg_ctl("start")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if log and log[-1][2] in (200, 201) and log[-2][2] in (200, 201):
                break
            time.sleep(0.05)
        # Each thread reconnects on its own, within its back-off (at most
        # a second), so all of them are back a second after the first.
        recovered_at = time.monotonic() + 1.0
        time.sleep(1.3)
    finally:
        stop.set()
        worker.join()
        # If the test failed while PostgreSQL was down, start it for the others
        # (this fails harmlessly when it is already up).
        subprocess.run([PG_CTL, "start", PG_DIR], capture_output=True, timeout=60)

    t0 = log[0][0]
    story = (f"stopped at {down_at - t0:.2f}s, started at {up_at - t0:.2f}s, recovered at "
             f"{recovered_at - t0:.2f}s; requests (start, duration, status):\n" +
             "\n".join(f"{x[0] - t0:7.3f} {x[1]:.3f} {x[2]}" for x in log))
    statuses = [x[2] for x in log]
    assert set(statuses) <= {200, 201, 503}, f"only 200, 201 and 503 allowed: {set(statuses)}\n{story}"
    # The requests begun and answered while PostgreSQL was down (1 s): five
    # or more, so the 503s come at once, none waits for the server to return
    # (a bound on their durations could not fail: each is under 1 s by this
    # choice, review rv103).
    during = [x for x in log if down_at <= x[0] and x[0] + x[1] <= up_at]
    assert len(during) >= 5, f"slow 503s\n{story}"
    assert all(x[2] == 503 for x in during), story
    assert all(x[3] is not None for x in during), "503 without Retry-After"
    assert recovered_at - up_at < 10, f"service did not resume within 10 s\n{story}"
    after = [x for x in log if x[0] > recovered_at]
    assert after and all(x[2] in (200, 201) for x in after), story
    assert srv.proc.poll() is None, "crmd exited"
    assert app.get_lead(lead["id"]) == lead
    created = sum(1 for x in log if x[2] == 201)
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == created + 1


def test_readyz_follows_the_database(make_server, monkeypatch):
    """/readyz is 503 with the reason while PostgreSQL is stopped (quickly:
    the probe is a real round trip on the thread's connection), and ready
    again by itself once it is back; /healthz stays 200 throughout. The
    metrics count the database's errors and the reconnections."""
    from conftest import free_port
    from prometheus_client.parser import text_string_to_metric_families
    admin = free_port()
    monkeypatch.setenv("CRMD_ADMIN_LISTEN", f"127.0.0.1:{admin}")
    srv = make_server(threads=1)

    def metric(name):
        text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=10).text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == name)
    ready = lambda: requests.get(srv.base_url + "/readyz", timeout=10)  # noqa: E731
    assert ready().status_code == 200
    try:
        pg_ctl("stop")
        t = time.monotonic()
        r = ready()
        assert time.monotonic() - t < 2.0
        assert r.status_code == 503, r.text
        err = r.json()
        assert err["errors"][0]["detail"] == "The database is not reachable."
        assert err["meta"]["requestId"] == r.headers["X-Request-Id"]
        assert requests.get(srv.base_url + "/healthz", timeout=10).status_code == 200
    finally:
        subprocess.run([PG_CTL, "start", PG_DIR], capture_output=True, timeout=60)
    deadline = time.monotonic() + 15
    while ready().status_code != 200:
        assert time.monotonic() < deadline, "not ready 15 s after PostgreSQL came back"
        time.sleep(0.2)
    assert metric("crmd_db_errors_total") >= 1
    assert metric("crmd_db_reconnects_total") >= 1


def test_killed_connections_and_a_read_only_database(make_server):
    """Sessions killed one by one: reads retry on a new connection at once.
    A database that turns read-only (like a primary demoted to a standby)
    answers writes 503 while reads go on; once writable again, writes
    succeed with no restart, since a refused write drops its connection."""
    name, url = new_db()
    srv = make_server(threads=2, db_url=url)
    app = srv.new_app()
    lead = app.create_lead(name="kept")
    kill = (f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    assert int(psql(f"{PG_URL}/postgres", kill)) >= 3
    for _ in range(4):
        assert app.get_lead(lead["id"]) == lead
    psql(f"{PG_URL}/postgres", f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    psql(f"{PG_URL}/postgres", kill)
    r = requests.post(srv.base_url + "/leads/", json={"lead": {"name": "refused"}}, headers=app.headers,
                      timeout=10)
    assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
    assert app.get_lead(lead["id"]) == lead
    psql(f"{PG_URL}/postgres", f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    statuses = []
    for i in range(20):
        r = requests.post(srv.base_url + "/leads/", json={"lead": {"name": f"after {i}"}},
                          headers=app.headers, timeout=10)
        statuses.append(r.status_code)
        if r.status_code == 201:
            break
        time.sleep(0.1)
    assert statuses[-1] == 201 and set(statuses) <= {201, 503}, statuses
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 2


# -------------------------------------------------- reads that do not block

class TableLock:
    """A psql session that holds `table` in ACCESS EXCLUSIVE mode (which
    even a SELECT waits for) until the with block ends. crmd's sessions
    give up on a lock after 5 s (lock_timeout): hold it for less."""

    def __init__(self, url, table):
        self.url, self.table = url, table

    def __enter__(self):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.p.stdin.write(f"BEGIN; LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], 10)
        assert ready and self.p.stdout.readline().strip() == "locked", self.p.stderr.read()
        return self

    def __exit__(self, *exc):
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        self.p.wait(timeout=10)


def crmd_lock_waits(db_name):
    """How many of crmd's sessions on db_name wait for a lock now."""
    return int(psql(f"{PG_URL}/postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                          f"'{db_name}' AND application_name = 'crmd' AND wait_event_type = 'Lock'"))


@pytest.mark.waits
def test_a_backend_that_stops_answering_reads_is_given_up(make_server):
    """A PostgreSQL backend that says nothing while its host still acknowledges (hung;
    here stopped with SIGSTOP): the keepalives and tcp_user_timeout never fire, and the
    reads sent on it waited for ever (a review). The thread's read connection is given up once the reads sent
    on it go unanswered for its tcp_user_timeout (at least 6 s), and they go again on a
    new one."""
    import signal
    name, url = new_db()
    srv = make_server(threads=1, db_url=url + "?tcp_user_timeout=3000")
    app = srv.new_app()
    lead = app.create_lead(name="Still there")
    assert get(srv.base_url, app, f"/leads/{lead['id']}").status_code == 200
    pids = [int(p) for p in psql(f"{PG_URL}/postgres", "SELECT pid FROM pg_stat_activity WHERE datname = "
                                                       f"'{name}' AND application_name = 'crmd'").split()]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = requests.get(srv.base_url + f"/leads/{lead['id']}", headers=app.headers, timeout=30)
        took = time.monotonic() - t0
        assert r.status_code == 200 and body_json(r)["data"]["id"] == lead["id"], r.text
        assert 5 < took < 15, took
        assert "no answer for 6000 ms" in srv.stderr_text()
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@pytest.mark.waits
def test_reads_queued_behind_one_that_timed_out_on_a_lock_fail_with_it(make_server):
    """A table locked for longer than lock_timeout (VACUUM FULL, ALTER TABLE): the
    first read waits 5 s and fails 503. The reads sent after it on the thread's
    connection, each in its own turn of the loop and so its own batch, would each
    wait out the lock in turn (a review saw 45 s); they fail with it, at once. A
    read sent after that failure is tried again, and once the lock goes, reads are
    answered, each with its own rows. --read-time is off: at its default (1 s) each
    read would be cancelled before lock_timeout (test_read_time has that)."""
    name, url = new_db()
    srv = make_server(threads=1, db_url=url, extra_args=["--read-time", "0"])
    app = srv.new_app()
    lead = app.create_lead(name="Locked away")
    other = app.create_lead(name="Also locked away")
    results = {}

    def fetch(key):
        t0 = time.monotonic()
        try:
            r = requests.get(srv.base_url + f"/leads/{lead['id']}", headers=app.headers, timeout=20)
            results[key] = (r.status_code, r.headers.get("Retry-After"), time.monotonic() - t0)
        except requests.RequestException as e:
            results[key] = (repr(e), None, time.monotonic() - t0)

    with TableLock(url, "leads"):
        t0 = time.monotonic()
        threads = []
        for i in range(6):
            # One at a time, so that each read goes in a batch of its own.
            threads.append(threading.Thread(target=fetch, args=(i,)))
            threads[-1].start()
            if i == 0:
                wait_until(lambda: crmd_lock_waits(name) == 1, "the first GET's query waits for the lock")
            time.sleep(0.3)
        for t in threads:
            t.join(25)
        took = time.monotonic() - t0
        assert sorted(results) == list(range(6)), results
        assert all(st == 503 and ra for st, ra, _ in results.values()), results
        # The first waits out lock_timeout; the rest fail with it, not 5 s after one another.
        assert took < 9, (took, results)
        # A read sent after the failure is tried: the lock is still there, and the
        # read waits at most for the one ahead of it to give up.
        fetch("after")
        assert results["after"][:1] == (503,) and results["after"][1], results["after"]
        assert results["after"][2] < 7, results["after"]
    wait_until(lambda: get(srv.base_url, app, f"/leads/{lead['id']}").status_code == 200, "reads work again")
    # The answers dropped kept their places: each read gets its own rows.
    for _ in range(3):
        assert app.get_lead(other["id"]) == other
        assert app.get_lead(lead["id"]) == lead
        assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 2
    assert srv.proc.poll() is None, "crmd exited"


def test_a_thread_whose_reads_wait_for_postgresql_serves_everyone_else(make_server):
    """One server thread, one connection: a GET whose query waits for a
    lock is parked while the loop goes on (/healthz answers at once), and
    reads of other requests queue up behind it on the same connection;
    once the lock goes, every one of them is answered."""
    name, url = new_db()
    srv = make_server(threads=1, db_url=url)
    app = srv.new_app()
    lead = app.create_lead(name="Behind a lock")
    answers = {}

    def fetch(key, path):
        answers[key] = get(srv.base_url, app, path)

    with TableLock(url, "leads"):
        first = threading.Thread(target=fetch, args=("lead", f"/leads/{lead['id']}"))
        first.start()
        wait_until(lambda: crmd_lock_waits(name) == 1, "the GET's query waits for the lock")
        # The thread blocked in that query would answer nothing until the
        # lock went (which is only after this), or 503 after 5 s.
        assert requests.get(srv.base_url + "/healthz", timeout=4).status_code == 200
        others = [threading.Thread(target=fetch, args=(k, p)) for k, p in
                  (("list", "/leads/"), ("again", f"/leads/{lead['id']}"),
                   ("follows", f"/leads/{lead['id']}/follows"))]
        for t in others:
            t.start()
        time.sleep(0.3)
        assert requests.get(srv.base_url + "/healthz", timeout=4).status_code == 200
        waiting = [k for k, t in zip(("lead", "list", "again", "follows"), [first] + others) if t.is_alive()]
        assert waiting == ["lead", "list", "again", "follows"], \
            f"answered while the lock was held: {set(answers) - set(waiting)}"
    for t in [first] + others:
        t.join(10)
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 200), \
        {k: r.text for k, r in answers.items()}
    assert body_json(answers["lead"])["data"] == body_json(answers["again"])["data"] == lead
    assert body_json(answers["list"])["meta"]["totalRecords"] == 1
    assert body_json(answers["follows"])["data"] == []


def test_clients_gone_while_their_reads_wait_leave_the_thread_healthy(make_server):
    """Requests whose clients hang up while their reads wait at the
    database: the reads complete for nobody, the thread serves on, and the
    server stops cleanly (the ASan run checks that nothing freed is
    touched)."""
    name, url = new_db()
    srv = make_server(threads=1, db_url=url)
    app = srv.new_app()
    lead = app.create_lead(name="Abandoned")
    head = (f"GET /leads/{lead['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {app.token}\r\n"
            f"AppId: {app.key}\r\n\r\n").encode()
    with TableLock(url, "leads"):
        clients = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
        for c in clients:
            c.sendall(head)
        wait_until(lambda: crmd_lock_waits(name) == 1, "the first GET's query waits for the lock")
        for c in clients:
            c.close()
        time.sleep(0.2)
        assert requests.get(srv.base_url + "/healthz", timeout=4).status_code == 200
    wait_until(lambda: crmd_lock_waits(name) == 0, "the reads ended once the lock went")
    assert app.get_lead(lead["id"]) == lead
    assert srv.proc.poll() is None, "crmd exited"
    assert srv.stop() == 0


def test_a_client_gone_while_its_idempotency_key_is_looked_up_lets_the_key_go(make_server):
    """A keyed POST whose client resets its HTTP/2 stream while the lookup
    of its Idempotency-Key waits at the database: once the lookup ends, the
    key is free again, and a retry under it creates the lead. Was (a
    review, rv95): the read's end for nobody dropped the request without
    giving the key back, so every retry under it was a 409 in that process
    until it stopped. --read-time is off, so that the lookup waits for the
    lock and not for the read's budget, however slowly the test goes."""
    import h2.config
    import h2.connection
    import h2.events
    name, url = new_db()
    srv = make_server(threads=1, db_url=url, extra_args=["--read-time", "0", "--http2"])
    app = srv.new_app()
    key = "gone-" + uuid.uuid4().hex
    body = b'{"lead":{"name":"Retried"}}'
    with TableLock(url, "idempotency_keys"):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":path", "/leads/"), (":scheme", "http"),
                                (":authority", "crmd"), ("authorization", f"Bearer {app.token}"),
                                ("appid", app.key), ("idempotency-key", key),
                                ("content-type", "application/json"), ("content-length", str(len(body)))])
        conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        wait_until(lambda: crmd_lock_waits(name) == 1, "the key's lookup waits for the lock")
        # The reset, then a PING: its ACK comes once the server has read the
        # reset (frames are read in order), which drops the request.
        conn.reset_stream(sid)
        conn.ping(b"rv95gone")
        sock.sendall(conn.data_to_send())
        acked = False
        while not acked:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            acked = any(isinstance(ev, h2.events.PingAckReceived) for ev in conn.receive_data(data))
            sock.sendall(conn.data_to_send())
    wait_until(lambda: crmd_lock_waits(name) == 0, "the lookup ended once the lock went")
    statuses = []

    def retried():
        r = app.post("/leads/", {"lead": {"name": "Retried"}}, headers={"Idempotency-Key": key})
        statuses.append(r.status_code)
        return r.status_code != 409
    wait_until(retried, "a retry under the key to be anything but a 409", timeout=10)
    sock.close()
    assert statuses[-1] == 201, statuses
    assert [lead["attributes"]["name"] for lead in app.list_all("/leads/")] == ["Retried"]
    # Now kept: a second retry replays the first answer.
    again = app.post("/leads/", {"lead": {"name": "Retried"}}, headers={"Idempotency-Key": key})
    assert_status(again, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert srv.stop() == 0


FINDS = (("find", "/leads/?search=lock&sort=-value&records=2"), ("count", "/leads/?stage=qualified"),
         ("summary", "/leads/summary?stage=qualified,new"), ("follows", "/follows/?status=pending"))


def test_finds_wait_behind_a_lock_like_every_read_and_survive_a_killed_connection(make_server):
    """The find reads (filters, search, the summary, follows across leads)
    go through the thread's one pipelined connection like every read: the
    loop answers /healthz while they wait behind a lock, each gets its own
    answer once it goes, and after the sessions are killed they are sent
    again on a new connection."""
    name, url = new_db()
    srv = make_server(threads=1, db_url=url)
    app = srv.new_app()
    for i, stage in enumerate(("qualified", "new", "qualified")):
        lead = app.create_lead(name=f"Behind a lock {i}", stage=stage, value=100 * (i + 1))
    app.create_follow(lead["id"], title="Call", due_date="2099-01-01T00:00:00Z")
    want = {k: body_json(get(srv.base_url, app, p)) for k, p in FINDS}
    assert [d["attributes"]["value"] for d in want["find"]["data"]] == [300, 200]
    assert want["count"]["meta"]["totalRecords"] == 2 and len(want["follows"]["data"]) == 1
    answers = {}
    with TableLock(url, "leads"):
        path = f"/leads/{lead['id']}"
        first = threading.Thread(target=lambda: answers.update(lead=get(srv.base_url, app, path)))
        first.start()
        wait_until(lambda: crmd_lock_waits(name) == 1, "the GET's query waits for the lock")
        others = [threading.Thread(target=lambda k=k, p=p: answers.update({k: get(srv.base_url, app, p)}))
                  for k, p in FINDS]
        for t in others:
            t.start()
        time.sleep(0.3)
        assert requests.get(srv.base_url + "/healthz", timeout=4).status_code == 200
        assert all(t.is_alive() for t in others), f"answered while the lock was held: {set(answers)}"
    for t in [first] + others:
        t.join(10)
    assert {k: body_json(answers[k]) for k, _ in FINDS} == want
    kill = (f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    assert int(psql(f"{PG_URL}/postgres", kill)) >= 2
    assert {k: body_json(get(srv.base_url, app, p)) for k, p in FINDS} == want


# --------------------------------------------------------------------- copy

def app_list(db):
    return run_crmd("app", "list", "--db", db, check=True).stdout


def test_copy_round_trip_sqlite_postgres_sqlite(make_server, tmp_path):
    src_db = f"sqlite:{tmp_path / 'src.db'}"
    src = make_server(threads=2, db_url=src_db)
    a1, a2 = src.new_app(), src.new_app()
    fill(a1, 7, "one")
    fill(a2, 4, "two")
    idle = src.new_app()
    run_crmd("app", "disable", idle.key, "--db", src_db, check=True)
    p = run_crmd("token", "issue", "--app", a1.key, "--db", src_db, check=True)
    revoked = p.stdout.strip()
    jti = re.search(r"jti=([0-9a-f-]{36})", p.stderr).group(1)
    run_crmd("token", "revoke", jti, "--db", src_db, check=True)
    before = {a.key: snapshot(a) for a in (a1, a2)}
    apps_before = app_list(src_db)
    assert src.stop() == 0

    _, pg = new_db()
    p = run_crmd("copy", "--from", src_db, "--to", pg, check=True)
    assert ("copied 3 apps, 11 leads, 9 follows, 4 issued tokens, 1 revoked tokens, 1 signing keys, "
            "0 webhooks, 0 undelivered events, 2 trashed leads with 0 follows, 26 history entries and "
            "0 idempotency keys" in p.stdout), p.stdout
    assert ("verified: the target now holds 3 apps, 11 leads, 9 follows, 4 issued tokens, 1 revoked tokens, "
            "1 signing keys" in p.stdout), p.stdout
    assert PASSWORD not in p.stdout + p.stderr

    dst = make_server(threads=2, db_url=pg)
    for a in (a1, a2):
        assert snapshot(App(dst.base_url, a.key, a.token)) == before[a.key]
    assert app_list(pg) == apps_before
    assert_status(App(dst.base_url, a1.key, revoked).get("/leads/"), 401)
    assert_status(App(dst.base_url, idle.key, idle.token).get("/leads/"), 401)

    # A target that holds data is refused and left alone.
    p = run_crmd("copy", "--from", src_db, "--to", pg)
    assert p.returncode == 1 and "--append" in p.stderr, p.stderr
    assert app_list(pg) == apps_before

    # And back to a new SQLite database.
    back_db = f"sqlite:{tmp_path / 'back.db'}"
    run_crmd("copy", "--from", pg, "--to", back_db, check=True)
    assert (tmp_path / "back.db").stat().st_mode & 0o777 == 0o600, "it holds the signing key"
    back = make_server(threads=1, db_url=back_db)
    for a in (a1, a2):
        assert snapshot(App(back.base_url, a.key, a.token)) == before[a.key]
    assert app_list(back_db) == apps_before

    # --append: another database's app joins; the target keeps its key, so
    # that app needs a token issued by the target.
    other_db = f"sqlite:{tmp_path / 'other.db'}"
    other = make_server(threads=1, db_url=other_db)
    a3 = other.new_app()
    fill(a3, 3, "three")
    want = snapshot(a3)
    assert other.stop() == 0
    p = run_crmd("copy", "--from", other_db, "--to", pg, "--append", check=True)
    assert ("copied 1 apps, 3 leads, 3 follows, 1 issued tokens, 0 revoked tokens, 0 signing keys, "
            "0 webhooks, 0 undelivered events, 1 trashed leads with" in p.stdout), p.stdout
    assert "(1 not copied: the target keeps its own keys" in p.stdout, p.stdout
    assert ("now holds 4 apps, 14 leads, 12 follows, 5 issued tokens, 1 revoked tokens, 1 signing keys"
            in p.stdout), p.stdout
    token = run_crmd("token", "issue", "--app", a3.key, "--db", pg, check=True).stdout.strip()
    assert snapshot(App(dst.base_url, a3.key, token)) == want
    assert snapshot(App(dst.base_url, a1.key, a1.token)) == before[a1.key]


def test_copy_moves_the_trash_history_and_idempotency_keys_both_ways(make_server, tmp_path):
    src_db = f"sqlite:{tmp_path / 'src.db'}"
    src = make_server(db_url=src_db)
    app = src.new_app()
    want = fill_safe(app)
    assert src.stop() == 0
    _, pg = new_db()
    p = run_crmd("copy", "--from", src_db, "--to", pg, check=True)
    assert copied_safe(p.stdout, want), p.stdout
    back_db = f"sqlite:{tmp_path / 'back.db'}"
    p = run_crmd("copy", "--from", pg, "--to", back_db, check=True)
    assert copied_safe(p.stdout, want), p.stdout
    for db in (pg, back_db):
        srv = make_server(db_url=db)
        check_safe(App(srv.base_url, app.key, app.token), want)
        assert srv.stop() == 0


def test_copy_append_of_the_same_data_fails_whole(tmp_path):
    src_db = f"sqlite:{tmp_path / 'a.db'}"
    key, _ = parse_app_create(run_crmd("app", "create", "a", "--db", src_db, check=True).stdout)
    _, pg = new_db()
    run_crmd("copy", "--from", src_db, "--to", pg, check=True)
    # Same app key: merged, but nothing else to add, so it succeeds and adds nothing.
    p = run_crmd("copy", "--from", src_db, "--to", pg, "--append", check=True)
    assert "copied 0 apps (and merged 1" in p.stdout, p.stdout
    # A lead that is already there fails the whole copy; nothing changes.
    _, pg2 = new_db()
    run_crmd("copy", "--from", pg, "--to", pg2, check=True)
    psql(pg, "INSERT INTO leads (app_id, id, name, stage, status, created_at, updated_at) "
             "VALUES (1, gen_random_uuid(), 'x', 0, 0, 1, 1)")
    p = run_crmd("copy", "--from", pg, "--to", pg2, "--append")
    assert p.returncode == 0, p.stderr  # the new lead is added, the app merged
    p = run_crmd("copy", "--from", pg, "--to", pg2, "--append")
    assert p.returncode == 1 and "already exists" in p.stderr, p.stderr
    assert psql(pg2, "SELECT count(*) FROM leads") == "1"
    assert psql(pg2, "SELECT lead_count FROM apps") == "1"
    assert run_crmd("copy", "--from", pg, "--to", pg).returncode == 1
    assert key in app_list(pg2)


def test_an_import_or_batch_failing_in_the_database_leaves_nothing_behind(make_server):
    # An import is one unit of work whose statements are sent in pipeline
    # mode (src/store/postgres/leads.c: pg_lead_create_many): a row the
    # database refuses, learned only when the answers come, must undo every
    # row, history entry, count and total of the import, and the writer must
    # go on working. A trigger of the test's own refuses a lead named boom.
    _, url = new_db()
    srv = make_server(db_url=url)
    app = srv.new_app()
    head = "name,source,value,probability,stage\r\n"

    def csv_rows(tag, n, boom_at=None):
        return head + "".join(("boom" if i == boom_at else f"{tag} {i}") + f",{tag}-{i},{i}.25,{i % 101},new\r\n"
                              for i in range(n))

    def post_import(text):
        return requests.post(srv.base_url + "/leads/import", params={"mode": "all"}, data=text.encode(),
                             headers={**app.headers, "Content-Type": "text/csv"}, timeout=60)

    def state():
        return psql(url, "SELECT (SELECT count(*) FROM leads) || ' ' || (SELECT count(*) FROM lead_history) "
                         "|| ' ' || (SELECT coalesce(sum(n), 0) || ' ' || coalesce(sum(v_lo), 0) FROM lead_totals) "
                         "|| ' ' || (SELECT count(*) FROM lead_totals WHERE n <> 0) "
                         "|| ' ' || (SELECT sum(lead_count) FROM apps)")

    r = post_import(csv_rows("a", 300))
    assert_status(r, 200)
    before = state()
    assert before.split()[:2] == ["300", "300"] and before.split()[-1] == "300", before
    psql(url, "CREATE FUNCTION crmd_test_boom() RETURNS trigger LANGUAGE plpgsql AS "
              "$$BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'check_violation'; END$$; "
              "CREATE TRIGGER crmd_test_boom BEFORE INSERT ON leads FOR EACH ROW "
              "WHEN (NEW.name = 'boom') EXECUTE FUNCTION crmd_test_boom()")
    # The last row, and one in the middle (past the first pipeline sync).
    for n, at in ((2500, 2499), (2500, 1234), (3, 0)):
        r = post_import(csv_rows("b", n, boom_at=at))
        assert 400 <= r.status_code < 600 and r.status_code != 422, (r.status_code, r.text)
        assert state() == before, (n, at)
    # A batch's creates, one refused: none of the batch happens.
    ops = [{"op": "create", "lead": {"name": "boom" if i == 7 else f"c {i}", "source": f"c-{i}"}}
           for i in range(10)]
    r = requests.post(srv.base_url + "/leads/batch", json={"operations": ops}, headers=app.headers, timeout=60)
    assert 400 <= r.status_code < 600, (r.status_code, r.text)
    assert state() == before
    # The writer goes on: the same files without the refused row go in whole.
    assert_status(post_import(csv_rows("b", 2500)), 200)
    ops[7]["lead"]["name"] = "c 7"
    assert_status(app.post("/leads/batch", {"operations": ops}), 200)
    after = state().split()
    assert after[:3] == ["2810", "2810", "2810"] and after[-2:] == ["2810", "2810"], after
    s = body_json(app.get("/leads/summary"))["data"]["attributes"]
    assert s["totalRecords"] == 2810
