"""Operating crmd: --version, --config FILE, and `crmd backup` (an online
SQLite copy under write load, restored and served)."""

import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import threading
import time

import pytest
import requests

from apiutil import crmd_bin, run_crmd
from conftest import BACKEND, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_version_is_the_makefiles():
    for args in (["--version"], ["version"]):
        p = run_crmd(*args, check=True)
        assert re.fullmatch(r"crmd \d+\.\d+\.\d+(\+g[0-9a-f]{7,}(\.dirty)?)?\n", p.stdout), p.stdout
    base = re.search(r"^VERSION_BASE := (\S+)", open(os.path.join(REPO, "Makefile")).read(), re.M)
    assert p.stdout.startswith(f"crmd {base.group(1)}"), (p.stdout, base.group(1))


# ---------------------------------------------------------------- --config

def serve_flags():
    text = run_crmd("serve", "--help", check=True).stdout
    flags = set(re.findall(r"--([a-z][a-z0-9-]+)", text)) - {"help"}
    assert {"listen", "db", "rate-limit", "jwks-file"} <= flags, flags
    return sorted(flags)


def test_every_serve_option_can_be_set_in_the_config_file(tmp_path):
    conf = tmp_path / "crmd.conf"
    conf.write_text("# every option of serve\n\n" +
                    "".join(f"{name} = {'true' if name in ('quiet', 'http2', 'webhook-allow-private') else 'x'}\n"
                            for name in serve_flags()))
    p = run_crmd("serve", "--help", "--config", str(conf))
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("text,words", [
    ("lisen = 127.0.0.1:1\nthreds = 2\n", ["lisen", "threds", ":1:", ":2:"]),
    ("db = a\ndb = b\n", ["twice", "'db'"]),
    ("listen\n", ["name = value"]),
    ("listen =\n", ["no value", "'listen'"]),
    ("quiet = perhaps\n", ["true or false", "'quiet'"]),
    ("rate-limit = 100:200 # per app\n", ["a comment on the line of", "'rate-limit'", ":1:"]),
    ("threads = 2\t#x\ndb = sqlite:/tmp/x#1.db\n", ["a comment on the line of", "'threads'", ":1:"]),
    ("quiet = true\ndb=#x\n", ["a comment on the line of", "'db'", ":2:"]),
    # A NUL byte does not cut a line short, nor hide the tail of a long one.
    ("threads = 2\0x\n", ["a NUL byte", ":1:"]),
    pytest.param("quiet = true\n# " + "x" * 4100 + "\0\ndb = sqlite:/tmp/y.db\n", ["a NUL byte", ":2:"],
                 id="nul-in-a-long-line"),
    pytest.param("quiet = true\n# " + "x" * 5000 + "\n", ["line too long", ":2:"], id="long-line"),
    pytest.param("# x\n" * 20000, ["over 64 KiB"], id="big-file"),
])
def test_a_bad_config_file_is_refused_naming_the_problem(tmp_path, text, words):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    p = run_crmd("app", "list", "--config", str(conf))
    assert p.returncode == 2, p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)
    assert run_crmd("migrate", "--config", str(tmp_path / "missing.conf")).returncode == 2
    # A folder is no config file, and /dev/zero is not read for ever.
    p = run_crmd("app", "list", "--config", str(tmp_path))
    assert p.returncode == 2 and "cannot read it" in p.stderr, p.stderr
    p = run_crmd("app", "list", "--config", "/dev/zero", timeout=20)
    assert p.returncode == 2 and "over 64 KiB" in p.stderr, p.stderr


def listening_port(conf, env_listen=None, flag_listen=None):
    """Starts serve with the config file (and CRMD_LISTEN / --listen), and
    returns the port its start-up line names."""
    env = dict(os.environ)
    env.pop("CRMD_LISTEN", None)
    if env_listen:
        env["CRMD_LISTEN"] = env_listen
    args = [crmd_bin(), "serve", f"--config={conf}", "--threads", "1"]
    if flag_listen:
        args += ["--listen", flag_listen]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=env, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                return int(m.group(1))
            assert line or proc.poll() is None, "serve exited before listening"
        raise AssertionError("serve never said where it listens")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stderr.close()


def test_precedence_option_environment_file_default(tmp_path):
    ports = [free_port() for _ in range(3)]
    conf = tmp_path / "crmd.conf"
    conf.write_text(f"listen = 127.0.0.1:{ports[0]}\ndb = sqlite:{tmp_path / 'c.db'}\n"
                    "quiet = yes\nrate-limit = off\n")
    assert listening_port(conf) == ports[0]
    assert listening_port(conf, env_listen=f"127.0.0.1:{ports[1]}") == ports[1]
    assert listening_port(conf, env_listen=f"127.0.0.1:{ports[1]}",
                          flag_listen=f"127.0.0.1:{ports[2]}") == ports[2]
    # Every command reads it: db from the file.
    p = run_crmd("app", "create", "from-config", "--config", str(conf), check=True)
    assert "BLOCKS_API_KEY" in p.stdout
    assert (tmp_path / "c.db").exists()


# ---------------------------------------------------------------- backup

def test_backup_of_postgres_explains_pg_dump(server):
    if BACKEND != "postgres":
        pytest.skip("the PostgreSQL explanation needs a PostgreSQL database")
    p = run_crmd("backup", "--db", server.db_url, "--to", "/tmp/never-written.dump")
    assert p.returncode == 1 and "pg_dump" in p.stderr and "pg_restore" in p.stderr, p.stderr
    assert not os.path.exists("/tmp/never-written.dump")


def test_backup_refuses_an_existing_file_and_an_empty_source(tmp_path):
    target = tmp_path / "exists.db"
    target.write_text("keep me")
    run_crmd("migrate", "--db", f"sqlite:{tmp_path / 'a.db'}", check=True)
    p = run_crmd("backup", "--db", f"sqlite:{tmp_path / 'a.db'}", "--to", str(target))
    assert p.returncode == 1 and "exists" in p.stderr
    assert target.read_text() == "keep me"
    assert run_crmd("backup", "--db", f"sqlite:{tmp_path / 'a.db'}").returncode == 2


@pytest.mark.skipif(BACKEND == "postgres", reason="crmd backup copies SQLite databases")
def test_backup_removes_what_an_interrupted_backup_left_and_writes_no_journal(tmp_path):
    """A backup killed (or stopped by a signal) left FILE.partial-PID and its -journal beside
    FILE, which no later backup removed or mentioned; a failed one left the -journal (outside
    review). The copy is written without a journal now, and a backup removes the files of
    earlier backups to the same FILE whose process is gone (never those of a live one)."""
    db = tmp_path / "a.db"
    run_crmd("migrate", "--db", f"sqlite:{db}", check=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "b.db"
    stale = [tmp_path / f"b.db.partial-{dead.pid}", tmp_path / f"b.db.partial-{dead.pid}-journal"]
    # Kept: a live process's, names crmd never writes, another target's, and a dead process's
    # written in the last minute (perhaps by a backup in another PID namespace).
    live = [tmp_path / f"b.db.partial-{os.getpid()}", tmp_path / "b.db.partial-x", tmp_path / "c.db.partial-1",
            tmp_path / f"b.db.partial-0{dead.pid}", tmp_path / f"b.db.partial-+{dead.pid}",
            tmp_path / f"b.db.partial- {dead.pid}"]
    for f in stale + live:
        f.write_bytes(b"partial")
        os.utime(f, (time.time() - 120, time.time() - 120))
    recent = tmp_path / f"b.db.partial-{dead.pid + 1 if dead.pid < 4000000 else dead.pid - 1}"
    recent.write_bytes(b"partial")
    live.append(recent)
    seen = []

    def watch():  # what the backup writes beside the copy while it runs
        while p_box == []:
            seen.extend(f.name for f in tmp_path.iterdir() if f.name.endswith("-journal") and f not in stale)
            time.sleep(0.001)

    p_box = []
    t = threading.Thread(target=watch)
    t.start()
    try:
        p = run_crmd("backup", "--db", f"sqlite:{db}", "--to", str(target))
    finally:
        p_box.append(1)
        t.join()
    assert p.returncode == 0, p.stderr
    assert "interrupted backup to it removed" in p.stderr, p.stderr
    assert not any(f.exists() for f in stale), sorted(x.name for x in tmp_path.iterdir())
    assert all(f.exists() for f in live)
    assert seen == [], f"the copy was written with a journal: {seen}"
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_backup_of_a_missing_sqlite_database_creates_nothing(tmp_path):
    """A mistyped --db must not leave an empty database (or its -wal and
    -shm) where none was, nor a backup."""
    before = sorted(tmp_path.iterdir())
    for db in (f"sqlite:{tmp_path / 'none.db'}", str(tmp_path / "bare.db")):
        p = run_crmd("backup", "--db", db, "--to", str(tmp_path / "b.db"))
        assert p.returncode == 1 and "no database at" in p.stderr, p.stderr
        assert sorted(tmp_path.iterdir()) == before, "the failed backup left files behind"
    # A --db of no accepted form is a usage error, as for every command.
    assert run_crmd("backup", "--db", "mysql://h/db", "--to", str(tmp_path / "b.db")).returncode == 2


def test_online_backup_under_write_load_restores(make_server, tmp_path):
    if BACKEND == "postgres":
        pytest.skip("crmd backup copies SQLite databases (PostgreSQL: pg_dump)")
    srv = make_server(threads=2)
    app = srv.new_app()
    acked, failed, stop = [], [], threading.Event()

    def writer():
        # A write refused while the backup runs is this test's failure: the
        # thread records it (an assert here would end the thread alone).
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(f"{srv.base_url}/leads/", json={"lead": {"name": f"n{len(acked)}"}},
                           headers=app.headers, timeout=15)
            except requests.RequestException as e:
                failed.append(repr(e))
                return
            if r.status_code != 201:
                failed.append(f"{r.status_code} {r.text[:300]}")
                return
            acked.append(r.json()["data"]["id"])

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        while len(acked) < 200:
            assert not failed, f"a write failed before the backup: {failed}"
            time.sleep(0.05)
        before = list(acked)  # acknowledged before the backup starts
        out = tmp_path / "backup.db"
        p = run_crmd("backup", "--db", f"sqlite:{srv.db}", "--to", str(out), timeout=60)
        assert p.returncode == 0, p.stderr
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failed, f"writes failed while the backup ran: {failed}"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("backup.db.partial-*"))
    con = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        have = {r[0] for r in con.execute("SELECT id FROM leads")}
    finally:
        con.close()
    missing = set(before) - have
    assert not missing, f"{len(missing)} acknowledged writes are not in the backup"

    # Restore: stop, copy back (here: a new place) keeping the mode, as cp
    # does (crmd refuses a database group or others can read), start; the
    # data serves.
    restored = tmp_path / "restored" / "crmd.db"
    restored.parent.mkdir()
    shutil.copy(out, restored)
    srv2 = make_server(db_url=f"sqlite:{restored}")
    r = requests.get(f"{srv2.base_url}/leads/{before[-1]}", headers=app.headers, timeout=10)
    assert r.status_code == 200, r.text
    total = requests.get(f"{srv2.base_url}/leads/", headers=app.headers, timeout=10).json()
    assert total["meta"]["totalRecords"] == len(have)


OLD_ATTEMPTS = ("CREATE TABLE webhook_attempts (webhook_id TEXT NOT NULL, id TEXT NOT NULL, "
                "event_id TEXT NOT NULL, type INTEGER NOT NULL, attempt INTEGER NOT NULL, status_code INTEGER, "
                "duration_ms INTEGER NOT NULL, error TEXT, next_retry_at INTEGER, created_at INTEGER NOT NULL, "
                "PRIMARY KEY (webhook_id, created_at, id)) WITHOUT ROWID")
ATTEMPT_COLS = "webhook_id, id, event_id, type, attempt, status_code, duration_ms, error, next_retry_at, created_at"


def _as_schema_17(path, rows):
    """Turns the crmd database at path back into schema 17's webhook_attempts (its key's columns
    not first), with rows attempts, as a database not yet migrated is."""
    con = sqlite3.connect(path)
    with con:
        have = con.execute(f"SELECT {ATTEMPT_COLS} FROM webhook_attempts").fetchall()
        con.execute("DROP TABLE webhook_attempts")
        con.execute(OLD_ATTEMPTS)
        w, _, e, t, a, sc, d, er, nr, at = have[0]
        for i in range(rows):
            con.execute(f"INSERT INTO webhook_attempts ({ATTEMPT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (w, f"00000000-0000-7000-8000-{i:012d}", e, t, a, sc, d, er, nr, at + i))
        # Migration 19 (the webhooks' count of their queue rows) undone too.
        con.executescript("DROP TRIGGER webhook_events_queued; DROP TRIGGER webhook_events_taken; "
                          "ALTER TABLE webhooks DROP COLUMN queued;")
        con.execute("PRAGMA user_version = 17")
    con.close()


def _backup(src, dst):
    return run_crmd("backup", "--db", f"sqlite:{src}", "--to", str(dst), timeout=60)


def test_backup_of_a_database_with_webhook_attempts(make_server, tmp_path):
    # Schema 17's webhook_attempts, a WITHOUT ROWID table whose key's columns
    # were not its first ones, made SQLite 3.40 (Debian 12's) report "NULL
    # value in webhook_attempts.<column>" from integrity_check whatever its
    # rows held: the backup refused every database that had ever tried a
    # delivery. Migration 18 puts the key first; a backup (which copies its
    # source unmigrated) checks such a report against the rows, with room
    # for every one of them, so that a real problem after them is still
    # found (helper-86: 25 attempts filled integrity_check's 100 lines and
    # hid a broken index); a real NULL still fails it.
    if BACKEND == "postgres":
        pytest.skip("crmd backup copies SQLite databases (PostgreSQL: pg_dump)")
    from webhookutil import Receiver, create_webhook, deliveries, wait_until
    receiver = Receiver(answer=lambda d, n: 500)
    try:
        srv = make_server(extra_args=["--webhook-allow-private", "--webhook-retry", "1h"])
        app = srv.new_app()
        hook = create_webhook(app, receiver.url())
        for i in range(3):
            app.create_lead(name=f"hooked {i}", value=1000 + i, probability=10 * i)
        wait_until(lambda: deliveries(app, hook["id"]), what="a delivery attempt to be recorded")
    finally:
        receiver.close()
    assert srv.stop() == 0
    con = sqlite3.connect(srv.db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]  # migrated: no false NULLs
        assert con.execute("SELECT count(*) FROM webhook_attempts").fetchone()[0] >= 1
    finally:
        con.close()
    out = tmp_path / "backup.db"
    p = _backup(srv.db, out)
    assert p.returncode == 0 and "integrity ok" in p.stderr + p.stdout, p.stderr

    # Schema 17, 40 attempts (280 false NULLs): still a backup.
    old = tmp_path / "old.db"
    shutil.copy(srv.db, old)
    _as_schema_17(old, 40)
    con = sqlite3.connect(old)
    assert len(con.execute("PRAGMA integrity_check").fetchall()) == 100  # all false, the report full
    con.close()
    p = _backup(old, tmp_path / "old-copy.db")
    assert p.returncode == 0 and "integrity ok" in p.stderr + p.stdout, p.stderr

    # ... and a broken index behind those 280 lines is found: leads_value
    # declared on probability, while its entries hold value_cents.
    broken = tmp_path / "broken.db"
    shutil.copy(old, broken)
    con = sqlite3.connect(broken)
    with con:
        sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'leads_value'").fetchone()[0]
        con.execute("PRAGMA writable_schema = ON")
        con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'leads_value'",
                    (sql.replace("value_cents", "probability"),))
    con.close()
    p = _backup(broken, tmp_path / "broken-copy.db")
    assert p.returncode != 0 and "leads_value" in p.stderr, p.stderr
    assert not (tmp_path / "broken-copy.db").exists()

    # A NULL that is there still fails the check: one written into
    # webhook_attempts.event_id past its NOT NULL (the column declared
    # nullable for the write, then NOT NULL again).
    bad = tmp_path / "bad.db"
    shutil.copy(old, bad)
    con = sqlite3.connect(bad)
    try:
        sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'webhook_attempts'").fetchone()[0]
        assert "event_id TEXT NOT NULL" in sql, sql
        con.execute("PRAGMA writable_schema = ON")
        con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'webhook_attempts'",
                    (sql.replace("event_id TEXT NOT NULL", "event_id TEXT"),))
        con.commit()
    finally:
        con.close()
    con = sqlite3.connect(bad)
    try:
        con.execute("UPDATE webhook_attempts SET event_id = NULL WHERE id LIKE '%000000000007'")
        con.execute("PRAGMA writable_schema = ON")
        con.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'webhook_attempts'", (sql,))
        con.commit()
    finally:
        con.close()
    p = _backup(bad, tmp_path / "bad-copy.db")
    assert p.returncode != 0
    assert "NULL value in webhook_attempts.event_id" in p.stderr, p.stderr
    assert not (tmp_path / "bad-copy.db").exists()

    # The migration takes schema 17's table to 18's, every attempt kept.
    p = run_crmd("migrate", "--db", f"sqlite:{old}", timeout=60)
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(old)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] >= 18
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("SELECT count(*) FROM webhook_attempts").fetchone()[0] == 40
        cols = [r[1] for r in con.execute("PRAGMA table_info(webhook_attempts)")]
        assert cols[:3] == ["webhook_id", "created_at", "id"], cols
    finally:
        con.close()