"""Disk full and read-only database, on a small ext4 file system the test makes
itself (an image file, loop-mounted in a temporary directory; root needed).

Disk full: a filler file takes every free block; then writes must answer 503
with a JSON error (code service_unavailable) quickly (not 500, not a hang),
reads keep answering 200, a write that was refused changed nothing, the
database passes integrity_check; once the filler is removed, writes succeed
again on the same crmd process.

Read-only: the kernel refuses `mount -o remount,ro` while a process holds a
file of the file system open for writing (EBUSY), and SQLite always holds the
database open read-write, so a live crmd's file system cannot be remounted
read-only from user space. The test tries the remount first (and uses it if
the kernel ever allows it); otherwise it makes the database and its WAL
immutable (chattr +i: ext4 then refuses every write to them with EPERM, even
through descriptors already open, as a read-only medium does). Writes must
answer 503, reads 200; after remount rw (or chattr -i), writes succeed again.
A crmd started on a file system that is already read-only must not hang: it
either serves (reads 200, writes 503) or exits at once, non-zero, saying why."""

import errno
import os
import subprocess
import time
import uuid
from pathlib import Path

from faultutil import (FS_MB, Conn, TransportError, app_create, assert_json_error, crmd_bin,
                       free_port, healthz, integrity_check, live_integrity_check, run,
                       small_ext4)

WRITE_TIMEOUT = 10     # a write that takes longer than this counts as a hang
FAST = 3.0             # a refused write must come back within this many seconds


def fill(mnt):
    """Fills the file system with a filler file until ENOSPC; returns its path."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 10):
            buf = b"\0" * chunk
            for _ in range(FS_MB * 1024 * 1024 // chunk + 8):
                try:
                    os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    finally:
        os.close(fd)
    st = os.statvfs(mnt)
    return filler, st.f_bavail * st.f_frsize


def timed(conn, method, path, body=None):
    t0 = time.monotonic()
    try:
        st, _h, js, raw = conn.request(method, path, body)
    except TransportError as e:
        raise AssertionError(f"{method} {path}: no response within {WRITE_TIMEOUT}s or the "
                             f"connection failed ({e}) after {time.monotonic() - t0:.1f}s")
    return st, js, raw, time.monotonic() - t0


def big_follow(tag):
    return {"follow": {"title": f"full-{tag}", "description": "d" * 9000}}


def check_refused_write(st, js, raw, dt, what):
    assert st != 500, f"{what}: 500 instead of 503: {raw[:400]!r}"
    assert_json_error(st, js, raw, 503, "service_unavailable")
    assert dt < FAST, f"{what}: the 503 took {dt:.1f}s"


def test_disk_full_503_reads_work_and_writes_resume(crmd, tmp_path):
    with small_ext4(tmp_path) as mnt:
        srv = crmd("full", db=mnt / "crmd.db", threads=2)
        key, token = app_create(srv.db)
        srv.start()
        conn = Conn(srv.port, key, token, timeout=WRITE_TIMEOUT)
        lead = conn.ok("POST", "/leads/", {"lead": {"name": "before the disk filled"}})["data"]
        lid = lead["id"]
        fid = conn.ok("POST", f"/leads/{lid}/follows", big_follow("before"))["data"]["id"]

        filler, left = fill(mnt)
        print(f"\nfilled: {filler.stat().st_size} bytes of filler, {left} bytes left")

        # Writes until they are refused (bounded): creates of leads and of big follows.
        acked, refused, refused_names, statuses = [], 0, [], {}
        for i in range(400):
            name = f"during-{i}-{uuid.uuid4().hex[:6]}"
            if i % 2:
                st, js, raw, dt = timed(conn, "POST", "/leads/", {"lead": {"name": name}})
            else:
                st, js, raw, dt = timed(conn, "POST", f"/leads/{lid}/follows", big_follow(name))
            statuses[st] = statuses.get(st, 0) + 1
            if st in (200, 201):
                acked.append(name)
                continue
            check_refused_write(st, js, raw, dt, f"write {i} on a full disk")
            refused_names.append(name)
            refused += 1
            if refused >= 10:
                break
        print(f"writes on the full disk: {statuses}")
        assert refused >= 10, (f"400 writes on a full file system and fewer than 10 refused "
                               f"({statuses}): is the database really on {mnt}?")

        # An update and a delete are refused the same way, or done (where
        # the full disk still had room for them) and kept: checked below.
        st, js, raw, dt = timed(conn, "PUT", f"/leads/{lid}", {"lead": {"name": "x" * 200}})
        updated = st == 200
        if not updated:
            check_refused_write(st, js, raw, dt, "update on a full disk")
        st, js, raw, dt = timed(conn, "DELETE", f"/leads/{lid}/follows/{fid}")
        deleted = st == 204
        if not deleted:
            check_refused_write(st, js, raw, dt, "delete on a full disk")
        print(f"on the full disk: update {'done' if updated else 'refused'}, "
              f"delete {'done' if deleted else 'refused'}")

        # Reads keep working.
        for path in ("/leads/", f"/leads/{lid}", f"/leads/{lid}/follows", "/healthz"):
            st, js, raw, dt = timed(conn, "GET", path)
            assert st == 200, f"GET {path} on a full disk: {st} {raw[:300]!r}"
        assert not live_integrity_check(srv.db, tmp_path / "snap")

        # Space comes back: writes succeed again, without a restart.
        filler.unlink()
        t0 = time.monotonic()
        for attempt in range(100):
            st, js, raw, dt = timed(conn, "POST", "/leads/", {"lead": {"name": f"after-{attempt}"}})
            if st == 201:
                break
            check_refused_write(st, js, raw, dt, "write after space came back")
            time.sleep(0.1)
        assert st == 201, f"writes did not resume within 10s after the filler was removed: {raw!r}"
        print(f"writes resumed {time.monotonic() - t0:.2f}s after the filler was removed "
              f"({attempt} refused before)")
        conn.ok("POST", f"/leads/{lid}/follows", big_follow("after"))
        assert srv.alive()

        # Acknowledged writes are there; refused ones changed nothing.
        leads, total = conn.walk("/leads/")
        follows, ftotal = conn.walk(f"/leads/{lid}/follows")
        assert total == len(leads) and ftotal == len(follows)
        stored = ({d["attributes"]["name"] for d in leads}
                  | {d["attributes"]["title"].removeprefix("full-") for d in follows})
        missing = [n for n in acked if n not in stored]
        assert not missing, f"acknowledged during the full disk but missing: {missing[:10]}"
        ghosts = [n for n in refused_names if n in stored]
        assert not ghosts, f"refused with 503 but stored anyway: {ghosts}"
        name = conn.ok("GET", f"/leads/{lid}")["data"]["attributes"]["name"]
        assert name == ("x" * 200 if updated else "before the disk filled"), \
            f"the update {'done' if updated else 'refused'} on the full disk left the name {name!r}"
        kept = fid in {d["id"] for d in follows}
        assert kept != deleted, (f"the delete {'done' if deleted else 'refused'} on the full disk "
                                 f"left the follow {'there' if kept else 'gone'}")
        conn.close()
        rc, secs = srv.term()
        assert rc == 0, f"crmd exited {rc} after SIGTERM; stderr:\n{srv.stderr_text()}"
        assert not integrity_check(srv.db, tmp_path / "copies")
        err = srv.stderr_text(20000)
        assert "database or disk is full" in err or "full" in err.lower(), (
            f"crmd logged nothing about the full disk; stderr:\n{err[-2000:]}")


def make_read_only(mnt, db):
    """Makes the database unwritable; returns (how, undo)."""
    p = run("mount", "-o", "remount,ro", mnt, check=False)
    if p.returncode == 0:
        return "remount,ro", lambda: run("mount", "-o", "remount,rw", mnt)
    note = p.stderr.strip()
    files = [f for f in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if f.exists()]
    for f in files:
        run("chattr", "+i", f)

    def undo():
        for f in files:
            run("chattr", "-i", f)
    return f"chattr +i (remount,ro refused: {note})", undo


def test_read_only_database_503_reads_work_and_writes_resume(crmd, tmp_path):
    with small_ext4(tmp_path) as mnt:
        srv = crmd("ro", db=mnt / "crmd.db", threads=2)
        key, token = app_create(srv.db)
        srv.start()
        conn = Conn(srv.port, key, token, timeout=WRITE_TIMEOUT)
        lid = conn.ok("POST", "/leads/", {"lead": {"name": "before read-only"}})["data"]["id"]
        fid = conn.ok("POST", f"/leads/{lid}/follows", {"follow": {"title": "t"}})["data"]["id"]
        how, undo = make_read_only(mnt, srv.db)
        print(f"\nread-only by: {how}")
        try:
            writes = [("POST", "/leads/", {"lead": {"name": "ro-create"}}),
                      ("PUT", f"/leads/{lid}", {"lead": {"name": "ro-update"}}),
                      ("POST", f"/leads/{lid}/follows", {"follow": {"title": "ro-follow"}}),
                      ("PUT", f"/leads/{lid}/follows/{fid}", {"follow": {"title": "ro-fupdate"}}),
                      ("DELETE", f"/leads/{lid}/follows/{fid}", None)]
            for method, path, body in writes * 2:
                st, js, raw, dt = timed(conn, method, path, body)
                check_refused_write(st, js, raw, dt, f"{method} {path} on a read-only database")
            for path in ("/leads/", f"/leads/{lid}", f"/leads/{lid}/follows",
                         f"/leads/{lid}/follows/{fid}"):
                st, js, raw, dt = timed(conn, "GET", path)
                assert st == 200, f"GET {path} on a read-only database: {st} {raw[:300]!r}"
        finally:
            undo()
        t0 = time.monotonic()
        for attempt in range(50):
            st, js, raw, dt = timed(conn, "POST", "/leads/", {"lead": {"name": "after-ro"}})
            if st == 201:
                break
            check_refused_write(st, js, raw, dt, "write after the database became writable")
            time.sleep(0.1)
        assert st == 201, "writes did not resume within 5s of the database becoming writable"
        print(f"writes resumed after {time.monotonic() - t0:.2f}s ({attempt} refused before)")
        a = conn.ok("GET", f"/leads/{lid}")["data"]["attributes"]
        assert a["name"] == "before read-only", "a refused update changed the lead"
        follows, total = conn.walk(f"/leads/{lid}/follows")
        assert [f["attributes"]["title"] for f in follows] == ["t"] and total == 1
        names = {d["attributes"]["name"] for d in conn.walk("/leads/")[0]}
        assert names == {"before read-only", "after-ro"}, names
        conn.close()
        rc, _ = srv.term()
        assert rc == 0, f"crmd exited {rc} after SIGTERM; stderr:\n{srv.stderr_text()}"
        assert not integrity_check(srv.db, tmp_path / "copies")


def test_start_on_read_only_file_system_does_not_hang(crmd, tmp_path):
    with small_ext4(tmp_path) as mnt:
        db = mnt / "crmd.db"
        key, token = app_create(db)
        run("mount", "-o", "remount,ro", mnt)
        port = free_port()
        err = tmp_path / "ro-start.stderr"
        with open(err, "wb") as ef:
            p = subprocess.Popen([crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--db",
                                  f"sqlite:{db}", "--threads", "1", "--quiet"],
                                 stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and p.poll() is None \
                        and healthz(port, 0.5) != 200:
                    time.sleep(0.05)
                if p.poll() is not None:
                    msg = err.read_text(errors="replace")
                    print(f"\ncrmd on a read-only file system exited {p.returncode}: {msg.strip()}")
                    assert p.returncode != 0, "exited 0 without serving"
                    assert str(db) in msg or "database" in msg.lower(), (
                        f"the message does not say which database: {msg!r}")
                    # SQLite says only "unable to open database file" (outside review).
                    assert "its file system is read-only" in msg, msg
                    return
                assert healthz(port, 1) == 200, "crmd neither served nor exited within 5s"
                conn = Conn(port, key, token, timeout=WRITE_TIMEOUT)
                st, js, raw, dt = timed(conn, "GET", "/leads/")
                assert st == 200, f"reads on a read-only start: {st} {raw[:300]!r}"
                st, js, raw, dt = timed(conn, "POST", "/leads/", {"lead": {"name": "x"}})
                check_refused_write(st, js, raw, dt, "write on a read-only start")
                conn.close()
                print("\ncrmd on a read-only file system serves reads and refuses writes")
            finally:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(10)


def test_disk_fills_under_concurrent_writes(crmd, tmp_path):
    """The disk fills while 6 clients write at once (so the writer batches
    several writes per transaction): every write is acknowledged or refused
    with a 503, never a 500 or a hang; each acknowledged write is stored and
    each refused one is not; writes resume once space returns."""
    import threading

    with small_ext4(tmp_path) as mnt:
        srv = crmd("fullc", db=mnt / "crmd.db", threads=2)
        key, token = app_create(srv.db)
        srv.start()
        seedc = Conn(srv.port, key, token, timeout=WRITE_TIMEOUT)
        lid = seedc.ok("POST", "/leads/", {"lead": {"name": "host"}})["data"]["id"]
        # Leave about 1.5 MiB free, then let the clients use it up.
        filler = mnt / "filler"
        st = os.statvfs(mnt)
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 1536 * 1024))
            f.flush()
            os.fsync(f.fileno())
        results, problems = [], []
        lock = threading.Lock()
        stop = threading.Event()

        def client(n):
            conn = Conn(srv.port, key, token, timeout=WRITE_TIMEOUT)
            try:
                for i in range(2000):
                    if stop.is_set():
                        return
                    tag = f"c{n}-{i}-{uuid.uuid4().hex[:6]}"
                    if i % 2:
                        method, path, body = "POST", "/leads/", {"lead": {"name": tag}}
                    else:
                        method, path, body = "POST", f"/leads/{lid}/follows", big_follow(tag)
                    t0 = time.monotonic()
                    try:
                        code, _h, js, raw = conn.request(method, path, body)
                    except TransportError as e:
                        with lock:
                            problems.append(f"{method} {path}: no response ({e})")
                        return
                    dt = time.monotonic() - t0
                    with lock:
                        results.append((tag, code, dt))
                        if code not in (201, 503):
                            problems.append(f"{method} {path} -> {code} {raw[:300]!r}")
                        elif code == 503:
                            try:
                                assert_json_error(code, js, raw, 503, "service_unavailable")
                            except AssertionError as e:
                                problems.append(str(e))
                        refused = sum(1 for r in results if r[1] == 503)
                    if refused >= 60:
                        stop.set()
            except Exception as e:  # noqa: BLE001 - an exception in a thread is no failure of the test
                with lock:
                    problems.append(f"client {n} failed: {e!r}")
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        assert not any(t.is_alive() for t in threads), "a client hung"
        codes = {}
        for _tag, code, _dt in results:
            codes[code] = codes.get(code, 0) + 1
        slowest = max((r[2] for r in results), default=0)
        print(f"\nconcurrent writes while the disk filled: {codes}, slowest {slowest:.2f}s")
        assert not problems, problems[:10]
        assert codes.get(503, 0) > 0, f"the disk never filled: {codes}"
        assert slowest < WRITE_TIMEOUT
        filler.unlink()
        for attempt in range(100):
            code, _h, js, raw = seedc.request("POST", "/leads/", {"lead": {"name": "after"}})
            if code == 201:
                break
            time.sleep(0.1)
        assert code == 201, f"writes did not resume: {code} {raw[:300]!r}"
        leads, total = seedc.walk("/leads/")
        follows, ftotal = seedc.walk(f"/leads/{lid}/follows")
        assert total == len(leads) and ftotal == len(follows)
        stored = ({d["attributes"]["name"] for d in leads}
                  | {d["attributes"]["title"].removeprefix("full-") for d in follows})
        lost = [t for t, c, _ in results if c == 201 and t not in stored]
        ghosts = [t for t, c, _ in results if c == 503 and t in stored]
        assert not lost, f"{len(lost)} acknowledged writes missing: {lost[:5]}"
        assert not ghosts, f"{len(ghosts)} writes refused with 503 but stored: {ghosts[:5]}"
        seedc.close()
        rc, _ = srv.term()
        assert rc == 0
        assert not integrity_check(srv.db, tmp_path / "copies")
