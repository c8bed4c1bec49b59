"""Soak: mixed load (80% reads: get, list, follows; 20% writes: update, create
lead, create follow) from wrk at 64 keep-alive connections for SOAK_SECONDS
(default 60; `make soak` runs 600). Zero 5xx (and zero 4xx, zero socket errors
or timeouts); crmd's resident memory (VmRSS) and open descriptors
(/proc/PID/fd), sampled every few seconds, grow by less than 10% after the
warm-up (the first 20% of the run): the largest sample after it against the
sample that ends it. The samples are printed."""

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from faultutil import Conn, app_create

HERE = Path(__file__).resolve().parent
CONNECTIONS = 64
# A working set larger than crmd's bounded caches (SQLite's page caches, the
# response cache), so that the warm-up fills them and growth after it means a
# leak, not a cache filling up.
SEED_LEADS = 20000
SEED_CLIENTS = 8
GROWTH_LIMIT = 0.10


def soak_seconds():
    v = os.environ.get("SOAK_SECONDS", "60")
    try:
        s = int(v)
    except ValueError:
        pytest.fail(f"SOAK_SECONDS must be a whole number of seconds, not {v!r}", pytrace=False)
    assert 10 <= s <= 24 * 3600, f"SOAK_SECONDS={s} is out of range (10..86400)"
    return s


def seed(port, key, token):
    """Creates SEED_LEADS leads (two follows on every tenth) from SEED_CLIENTS
    keep-alive clients, then reads each once; returns their ids."""
    out, errors = [], []

    def work(n):
        conn = Conn(port, key, token, timeout=30)
        try:
            for i in range(n, SEED_LEADS, SEED_CLIENTS):
                lid = conn.ok("POST", "/leads/", {"lead": {
                    "name": f"seed {i}", "value": i * 10, "stage": "qualified",
                    "source": "website"}})["data"]["id"]
                out.append(lid)
                if i % 10 == 0:
                    for j in range(2):
                        conn.ok("POST", f"/leads/{lid}/follows",
                                {"follow": {"title": f"seed {i}.{j}",
                                            "due_date": "2040-01-01T00:00:00Z"}})
        except Exception as e:  # reported below
            errors.append(repr(e))
        finally:
            conn.close()

    def read_all(n):
        """One read of every lead and every list page, so that the bounded
        caches start the soak as a long-running server has them: full."""
        conn = Conn(port, key, token, timeout=30)
        try:
            for lid in out[n::SEED_CLIENTS]:
                conn.ok("GET", f"/leads/{lid}", want=(200,))
            for rec in (15, 50):
                for page in range(1 + n, SEED_LEADS // rec + 1, SEED_CLIENTS):
                    conn.ok("GET", f"/leads/?page={page}&records={rec}", want=(200,))
        except Exception as e:  # reported below
            errors.append(repr(e))
        finally:
            conn.close()

    for fn in (work, read_all):
        threads = [threading.Thread(target=fn, args=(n,), daemon=True)
                   for n in range(SEED_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, f"seeding failed: {errors[:3]}"
    assert len(out) == SEED_LEADS
    return out


def test_soak_mixed_load(crmd, tmp_path):
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.fail("wrk is not installed (Debian package wrk; `make deps` installs it)",
                    pytrace=False)
    secs = soak_seconds()
    srv = crmd("soak", threads=2)
    key, token = app_create(srv.db)
    srv.start()

    t_seed = time.monotonic()
    ids = seed(srv.port, key, token)
    t_seed = time.monotonic() - t_seed
    ids_file = tmp_path / "ids"
    ids_file.write_text("\n".join(ids) + "\n")

    env = dict(os.environ, SOAK_KEY=key, SOAK_TOKEN=token, SOAK_IDS=str(ids_file))
    out_path = tmp_path / "wrk.out"
    every = max(2.0, secs / 40)
    warmup = 0.2 * secs
    samples = []
    with open(out_path, "w") as out:
        t0 = time.monotonic()
        p = subprocess.Popen([wrk, "-t1", f"-c{CONNECTIONS}", f"-d{secs}s", "--timeout", "5s",
                              "-s", str(HERE / "soak.lua"), f"http://127.0.0.1:{srv.port}"],
                             stdout=out, stderr=subprocess.STDOUT, env=env,
                             stdin=subprocess.DEVNULL)
        try:
            next_at = t0
            while p.poll() is None and time.monotonic() < t0 + secs + 30:
                if time.monotonic() >= next_at:
                    assert srv.alive(), f"crmd died under load; stderr:\n{srv.stderr_text()}"
                    m = srv.mem_kb()
                    samples.append((time.monotonic() - t0, m["VmRSS"], srv.fd_count(),
                                    m.get("RssAnon", 0)))
                    next_at += every
                time.sleep(0.05)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait(10)
    text = out_path.read_text(errors="replace")
    print(f"\nsoak: {SEED_LEADS} leads seeded in {t_seed:.1f}s; {secs}s of wrk -t1 "
          f"-c{CONNECTIONS}, crmd --threads 2; samples (seconds, VmRSS, open fds; RssAnon):")
    for t, rss, fds, anon in samples:
        print(f"  {t:7.1f}s  {rss:8d} kB  {fds:5d} fds   (anon {anon:6d} kB)"
              f"{'   warm-up' if t < warmup else ''}")
    print(text.strip())
    assert p.returncode == 0, f"wrk exited {p.returncode}:\n{text}"
    m = re.search(r"^SOAK requests=(\d+) duration_us=(\d+) s2xx=(\d+) s3xx=(\d+) s4xx=(\d+) "
                  r"s5xx=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+)", text, re.M)
    assert m, f"no SOAK line in wrk's output:\n{text}"
    req, dur, s2, s3, s4, s5, e_conn, e_read, e_write, e_to = map(int, m.groups())
    print(f"soak: {req} requests, {req / (dur / 1e6):.0f}/s")
    assert srv.alive(), f"crmd died; stderr:\n{srv.stderr_text()}"
    assert req > 0 and s2 > 0
    assert s5 == 0, f"{s5} 5xx responses under the soak; stderr:\n{srv.stderr_text()}"
    assert s4 == 0 and s3 == 0, f"{s4} 4xx and {s3} 3xx responses to valid requests"
    assert e_conn == 0 and e_read == 0 and e_write == 0 and e_to == 0, (
        f"socket errors: connect {e_conn}, read {e_read}, write {e_write}, timeout {e_to}")

    after = [s for s in samples if s[0] >= warmup]
    assert len(after) >= 3, f"too few samples after the warm-up: {samples}"
    base = after[0]
    for idx, what in ((1, "VmRSS"), (2, "open descriptors")):
        top = max(s[idx] for s in after)
        growth = (top - base[idx]) / base[idx]
        print(f"{what}: {base[idx]} at {base[0]:.0f}s (end of warm-up), at most {top} after: "
              f"{growth * 100:+.1f}%")
        assert growth < GROWTH_LIMIT, (f"{what} grew {growth * 100:.1f}% after the warm-up "
                                       f"({base[idx]} -> {top})")
    rc, _ = srv.term()
    assert rc == 0
