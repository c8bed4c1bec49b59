"""The sync of the database's log, left to a thread of its own, and its failure.

The writer commits each batch of writes and the syncer thread syncs the log
while the writer runs the next batch (api/writer.c); a write is answered only
once its commit's sync has succeeded. When a sync fails, what was committed
may not be on disk although other connections may already have read it, so
crmd must stop at once without acknowledging any write of that sync, saying
why, and a restart serves every write acknowledged before.

A commit is visible before its sync is done, but no webhook event may leave
before its change is on disk: the sender waits for the syncs its read saw.

Failures and slowness are injected by a small library preloaded into crmd
(built here with cc): once the flag file exists, fdatasync and fsync of any
file whose name ends in -wal fail with EIO, or, with CRMD_TEST_SLOW_SYNC_MS
set, take that much longer. SQLite only."""

import json
import subprocess
import threading
import time
import uuid

import pytest

from faultutil import Conn, Crmd, TransportError, app_create, on_postgres
from test_webhook_kill import Receiver

pytestmark = pytest.mark.skipif(on_postgres(), reason="the log and its syncs are SQLite's")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd)
{
    const char *flag = getenv("CRMD_TEST_FAIL_SYNC");
    if (flag == NULL || access(flag, F_OK) != 0) return 0;
    char p[64], t[4096];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n < 4) return 0;
    t[n] = '\0';
    return strcmp(t + n - 4, "-wal") == 0;
}

static int slowed(int fd)
{
    const char *ms = getenv("CRMD_TEST_SLOW_SYNC_MS");
    if (ms == NULL || !failing(fd)) return 0;
    usleep((useconds_t)atoi(ms) * 1000);
    return 1;
}

int fdatasync(int fd)
{
    if (!slowed(fd) && failing(fd)) { errno = EIO; return -1; }
    return ((int (*)(int))dlsym(RTLD_NEXT, "fdatasync"))(fd);
}

int fsync(int fd)
{
    if (!slowed(fd) && failing(fd)) { errno = EIO; return -1; }
    return ((int (*)(int))dlsym(RTLD_NEXT, "fsync"))(fd);
}
"""

WRITERS = 4
SLOW_SYNC_S = 0.8


def lead(name):
    return {"lead": {"name": name, "stage": "new", "status": "active"}}


def shim(tmp_path):
    src = tmp_path / "failsync.c"
    src.write_text(SHIM)
    so = tmp_path / "failsync.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(src), "-ldl"], check=True,
                   timeout=60)
    return so


def test_an_event_leaves_only_once_its_change_is_synced(tmp_path):
    so = shim(tmp_path)
    flag = tmp_path / "slow-now"
    db = tmp_path / "crmd.db"
    srv = Crmd(tmp_path / "srv", db=db, extra_args=["--webhook-allow-private"],
               wrap=["env", f"LD_PRELOAD={so}", f"CRMD_TEST_FAIL_SYNC={flag}",
                     f"CRMD_TEST_SLOW_SYNC_MS={int(SLOW_SYNC_S * 1000)}"])
    key, token = app_create(db)
    rec = Receiver()
    srv.start()
    try:
        c = Conn(srv.port, key, token, timeout=30)
        c.ok("POST", "/webhooks", {"webhook": {"url": f"http://127.0.0.1:{rec.port}/in",
                                               "events": ["lead.created"]}}, want=(201,))
        flag.write_text("1")
        arrived = {}
        for i in range(3):
            name = f"slow-{i}-{uuid.uuid4().hex[:6]}"
            sent = time.monotonic()
            c.ok("POST", "/leads/", lead(name), want=(201,))
            answered = time.monotonic()
            # The answer waited for the sync.
            assert answered - sent >= SLOW_SYNC_S * 0.9, f"answered after {answered - sent:.3f}s"
            deadline = time.monotonic() + 30
            while name not in arrived and time.monotonic() < deadline:
                with rec.lock:
                    got = list(zip(rec.at, rec.got))
                for at, (_sig, body) in got:
                    ev = json.loads(body)
                    arrived.setdefault(ev["data"]["attributes"]["name"], at)
                time.sleep(0.01)
            assert name in arrived, f"{name}: no event within 30 s"
            # Committed (and readable) at once, but sent only once synced.
            assert arrived[name] - sent >= SLOW_SYNC_S * 0.9, \
                f"{name}: its event left {arrived[name] - sent:.3f}s after the create was sent"
    finally:
        srv.close()
        rec.close()


def test_failed_sync_acknowledges_nothing_and_stops(tmp_path):
    so = shim(tmp_path)
    flag = tmp_path / "fail-now"
    db = tmp_path / "crmd.db"
    srv = Crmd(tmp_path / "srv", db=db,
               wrap=["env", f"LD_PRELOAD={so}", f"CRMD_TEST_FAIL_SYNC={flag}"])
    key, token = app_create(db)
    srv.start()
    acked = {}
    try:
        c = Conn(srv.port, key, token)
        for i in range(20):
            js = c.ok("POST", "/leads/", lead(f"before-{i}"), want=(201,))
            acked[js["data"]["id"]] = f"before-{i}"

        # Writers keep creating while the log's syncs start to fail.
        stop = threading.Event()
        answers = []  # (name, status or None, id, sent after the failure began)
        failing_since = []

        failed = []

        def writer(k):
            try:
                writes(k)
            except Exception as e:  # noqa: BLE001 - an exception in a thread is no failure of the test
                failed.append(f"writer {k}: {e!r}")

        def writes(k):
            wc = Conn(srv.port, key, token, timeout=15)
            n = 0
            while not stop.is_set():
                name = f"w{k}-{n}-{uuid.uuid4().hex[:6]}"
                n += 1
                began = time.monotonic()
                try:
                    st, _h, js, _raw = wc.request("POST", "/leads/", lead(name))
                except TransportError:
                    answers.append((name, None, None, began))
                    if not srv.alive():
                        return
                    continue
                answers.append((name, st, js["data"]["id"] if st == 201 else None, began))

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        flag.write_text("1")
        failing_since.append(time.monotonic())
        srv.proc.wait(20)
        stop.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert not failed, failed[:3]

        # It stopped, non-zero, and said why.
        assert srv.proc.returncode not in (0, None), srv.proc.returncode
        err = srv.stderr_text()
        assert "could not be synced" in err, err

        # A create is answered 201 or not at all (no 503 of a failed sync
        # while the process goes on). None sent after the flag existed can
        # have been synced, as every sync of the log fails from then on.
        for name, st, lid, _began in answers:
            assert st in (201, None), f"{name}: {st}"
            if st == 201:
                acked[lid] = name
        late = [a for a in answers if a[1] == 201 and a[3] > failing_since[0]]
        assert not late, f"creates sent after the syncs began to fail were acknowledged: {late[:3]}"
        assert any(a[1] is None for a in answers), "no create was left unanswered"
    finally:
        srv.close()

    # A restart on the same files (no failing syncs) serves every
    # acknowledged create.
    flag.unlink()
    srv2 = Crmd(tmp_path / "srv2", db=db)
    srv2.start()
    try:
        c = Conn(srv2.port, key, token)
        for lid, name in acked.items():
            js = c.ok("GET", f"/leads/{lid}", want=(200,))
            assert js["data"]["attributes"]["name"] == name
    finally:
        srv2.close()


def test_servers_that_may_share_the_file_sync_each_commit_themselves(tmp_path):
    """With --cache-mb 0 other servers may serve the same file, and would
    read (and send as events) commits not yet on disk: the commits sync
    themselves before they are published, so a failed sync is the commit's
    failure, a 503 that changes nothing, and the server goes on."""
    so = shim(tmp_path)
    flag = tmp_path / "fail-now"
    db = tmp_path / "crmd.db"
    srv = Crmd(tmp_path / "srv", db=db, extra_args=["--cache-mb", "0"],
               wrap=["env", f"LD_PRELOAD={so}", f"CRMD_TEST_FAIL_SYNC={flag}"])
    key, token = app_create(db)
    srv.start()
    try:
        c = Conn(srv.port, key, token)
        c.ok("POST", "/leads/", lead("before"), want=(201,))
        flag.write_text("1")
        st, _h, js, raw = c.request("POST", "/leads/", lead("refused"))
        assert st == 503, raw[:300]
        flag.unlink()
        c.ok("POST", "/leads/", lead("after"), want=(201,))
        names = sorted(item["attributes"]["name"] for item in c.walk("/leads/")[0])
        assert names == ["after", "before"], names
        assert srv.alive()
    finally:
        srv.close()
