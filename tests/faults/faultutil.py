"""Helpers for the crmd fault-injection and load tests (stdlib + requests only).

Everything talks to 127.0.0.1 only. Every wait and loop here is bounded."""

import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pgutil import PG_URL, pg_new_database, psql  # noqa: E402,F401 (the tests import them from here)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# Time for a started crmd to answer /healthz: it takes well under a second,
# but a loaded 2-core CI machine can stall a process for seconds; the wait
# ends at the first 200, so a long one costs nothing when all is well.
READY_TIMEOUT = 30.0
FS_MB = 16

# never send loopback traffic through a proxy
for _k in [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
    del os.environ[_k]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


# CRMD_TEST_BACKEND=postgres runs the tests that support it on PostgreSQL
# (make faults-postgres: scripts/pg-cluster.sh run provides the cluster and
# CRMD_TEST_PG_URL); each server then gets a new database of its own.
BACKEND = os.environ.get("CRMD_TEST_BACKEND", "sqlite")


def on_postgres():
    return BACKEND == "postgres"


def crmd_bin():
    return os.environ.get("CRMD_BIN") or str(REPO_ROOT / "build" / "crmd")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_crmd(*args, timeout=30):
    p = subprocess.run([crmd_bin(), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (f"crmd {' '.join(map(str, args))} exited {p.returncode}\n"
                               f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def db_arg(db):
    """The --db argument for db: a database URL as it is, a path as SQLite's."""
    return db if str(db).startswith(("sqlite:", "postgresql:")) else f"sqlite:{db}"


def app_create(db, name=None):
    """Creates an app on db (a SQLite file or a database URL); returns (key, token)."""
    name = name or f"f-{uuid.uuid4().hex[:10]}"
    out = run_crmd("app", "create", name, "--db", db_arg(db)).stdout
    m1 = re.search(r"^export BLOCKS_API_KEY=(\S+)$", out, re.M)
    m2 = re.search(r"^export BLOCKS_AUTH_TOKEN=(\S+)$", out, re.M)
    assert m1 and m2, f"unexpected app create output: {out!r}"
    return m1.group(1), m2.group(1)


def serve_help():
    p = subprocess.run([crmd_bin(), "serve", "--help"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    return p.stdout + p.stderr


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE towards want (up to the hard
    limit, or raising the hard limit too when root). Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    new_hard = hard
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            new_hard = hard
    target = want if new_hard == resource.RLIM_INFINITY else min(want, new_hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, new_hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# Ports of servers started with --tls-cert: port -> the certificate file
# to trust. Conn, healthz and the HTTP/2 client speak TLS to them. Every
# start sets or clears its port's entry: the kernel hands a port out again
# once its server is gone, and a stale entry would make every client speak
# TLS to a cleartext server that took the port later.
TLS_PORTS = {}


def make_tls(directory):
    """A throwaway certificate for 127.0.0.1 (openssl req): returns the serve
    arguments that use it and the certificate file to trust."""
    cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=crmd",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return ["--tls-cert", str(cert), "--tls-key", str(key)], str(cert)


def connection(port, timeout):
    """An http.client connection to port, over TLS when its server has it."""
    cafile = TLS_PORTS.get(port)
    if cafile is not None:
        import ssl
        ctx = ssl.create_default_context(cafile=cafile)
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


class Crmd:
    """A `crmd serve` on a database of its own (or a given one); can be
    SIGKILLed, SIGTERMed and restarted on the same database and port."""

    def __init__(self, workdir, db=None, threads=2, quiet=True, extra_args=(), tls=None, db_url=None,
                 wrap=()):
        """tls: the certificate to trust (make_tls) when extra_args serve TLS;
        db_url: a database to serve (one another server shares, say); by
        default a new one of the run's backend (SQLite: db, else workdir's);
        wrap: a command that runs crmd serve (given as its last arguments)
        and must exec it, so that the process started is crmd's: unshare,
        say."""
        self.tls = tls
        self.wrap = list(wrap)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = Path(db) if db else self.workdir / "crmd.db"
        if db_url is None:
            db_url = pg_new_database("crmd_faults") if on_postgres() and db is None else f"sqlite:{self.db}"
        self.db_url = db_url
        self.threads = threads
        self.quiet = quiet
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.stderr_path = self.workdir / "crmd.stderr"
        self._err = None
        self.starts = 0

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self, tail=4000):
        try:
            return self.stderr_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def start(self, port=None, timeout=READY_TIMEOUT):
        """Starts crmd (on port, else the previous port, else a free one) and
        waits for 200 from /healthz. Returns the seconds it took."""
        assert not self.alive()
        last = ""
        for attempt in range(5):
            if port is None:
                port = self.port or free_port()
            if attempt > 0:
                port = free_port()
            self.port = port
            if self.tls is not None:
                TLS_PORTS[port] = self.tls
            else:
                TLS_PORTS.pop(port, None)
            args = [*self.wrap, crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--db",
                    self.db_url, "--threads", str(self.threads),
                    "--rate-limit", "off", "--auth-limit", "off"]
            if self.quiet:
                args.append("--quiet")
            args += self.extra_args
            if self._err:
                self._err.close()
            self._err = open(self.stderr_path, "ab")
            t0 = time.monotonic()
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._err,
                                         stdin=subprocess.DEVNULL)
            self.starts += 1
            deadline = t0 + timeout
            answer, tries = None, 0
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                answer = healthz_answer(port, timeout=1.0)
                tries += 1
                if answer == 200:
                    return time.monotonic() - t0
                time.sleep(0.01)
            last = self.stderr_text()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
                scheme = "https" if port in TLS_PORTS else "http"
                raise AssertionError(f"crmd did not answer 200 on {scheme}://127.0.0.1:{port}/healthz "
                                     f"within {timeout}s ({tries} tries; the last got {answer}); "
                                     f"stderr:\n{last}")
            if "in use" not in last.lower() and "cannot listen" not in last.lower():
                break
        raise AssertionError(f"crmd exited {self.proc.returncode} before becoming ready; "
                             f"stderr:\n{last}")

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def term(self, timeout=10.0):
        """SIGTERM; returns (exit code or None if it had to be killed, seconds)."""
        if not self.alive():
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            rc = None
        return rc, time.monotonic() - t0

    def close(self):
        if self.alive():
            rc, _ = self.term()
            if rc is None:
                self.kill()
        if self._err:
            self._err.close()
            self._err = None

    def mem_kb(self):
        """VmRSS, RssAnon and RssFile (kB) from /proc/PID/status."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("VmRSS", "RssAnon", "RssFile"):
                    out[k] = int(line.split()[1])
        return out

    def rss_kb(self):
        return self.mem_kb()["VmRSS"]

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def kill_during(srv, targets, delay, join_s=30, before_restart=None):
    """One round of a kill test: runs each of targets (callables taking a
    threading.Event that is set at the kill) in a thread of its own,
    SIGKILLs srv after delay seconds, waits for them (bounded) and starts
    srv again on the same database. srv may be a callable that names the
    server to kill once the delay is over; before_restart(srv), if given,
    runs between the clients' end and the restart. A target that raises
    fails the round (an exception in a thread is no failure of the test).
    Returns srv."""
    import threading
    stop = threading.Event()
    raised = []

    def run(target):
        try:
            target(stop)
        except BaseException as e:  # noqa: BLE001 - reported below, once the clients are done
            raised.append(f"{target!r}: {e!r}")

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    time.sleep(delay)
    if callable(srv):
        srv = srv()
    srv.kill()
    stop.set()
    for t in threads:
        t.join(join_s)
        assert not t.is_alive(), "a client hung"
    assert not raised, f"a client failed: {raised[:3]}"
    if before_restart is not None:
        before_restart(srv)
    srv.start()
    return srv


def healthz_answer(port, timeout=2.0):
    """The status of GET /healthz, or what went wrong instead (a string)."""
    c = connection(port, timeout)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException) as e:
        return repr(e)
    finally:
        c.close()


def healthz(port, timeout=2.0):
    """The status of GET /healthz, or None when there was no answer."""
    answer = healthz_answer(port, timeout)
    return answer if isinstance(answer, int) else None


def metric(admin_port, name, timeout=2.0):
    """The value of an unlabelled metric on crmd's admin listener
    (--admin-listen), or None when it could not be read."""
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=timeout)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_metric(admin_port, name, pred, timeout=10.0):
    """Waits (bounded) until pred(value of the metric) holds; returns the
    last value read (None if none could be)."""
    deadline = time.monotonic() + timeout
    while True:
        value = metric(admin_port, name)
        if (value is not None and pred(value)) or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


class DefectObserved(AssertionError):
    """The known server defect a strict xfail test is waiting to see fixed
    (xfail(raises=DefectObserved): any other failure still fails the test)."""


class TransportError(Exception):
    """No (complete) response. .sent_all tells whether the request was sent
    in full; .connect tells that the connection could not even be opened (so
    the request certainly never reached the server)."""

    def __init__(self, msg, connect=False, sent_all=False):
        super().__init__(msg)
        self.connect = connect
        self.sent_all = sent_all


class Conn:
    """A keep-alive HTTP/1.1 connection with an app's credentials."""

    def __init__(self, port, key=None, token=None, timeout=10.0):
        self.port = port
        self.key = key
        self.token = token
        self.timeout = timeout
        self.c = None

    def headers(self, body):
        h = {"Host": "127.0.0.1"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.key:
            h["AppId"] = self.key
        if body is not None:
            h["Content-Type"] = "application/json"
        return h

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None

    def request(self, method, path, body=None, headers=None, on_sent=None):
        """Returns (status, headers, parsed JSON or None, raw bytes); raises
        TransportError when no complete response came back. headers: more
        request headers; on_sent: called once the request is sent in full."""
        data = json.dumps(body).encode() if body is not None else None
        if self.c is None:
            self.c = connection(self.port, self.timeout)
            try:
                self.c.connect()
            except OSError as e:
                self.close()
                raise TransportError(f"connect: {e!r}", connect=True)
        sent = False
        try:
            self.c.request(method, path, body=data, headers={**self.headers(data), **(headers or {})})
            sent = True
            if on_sent is not None:
                on_sent()
            r = self.c.getresponse()
            raw = r.read()
            status, hdrs = r.status, {k.lower(): v for k, v in r.getheaders()}
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise TransportError(f"{method} {path}: {e!r}", sent_all=sent)
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        parsed = None
        if raw and hdrs.get("content-type", "").split(";")[0].strip() == "application/json":
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise AssertionError(f"{method} {path} -> {status}: body is not JSON: {raw[:300]!r}")
        return status, hdrs, parsed, raw

    def ok(self, method, path, body=None, want=(200, 201, 204)):
        st, h, js, raw = self.request(method, path, body)
        assert st in want, f"{method} {path} -> {st} {raw[:500]!r}"
        return js

    def walk(self, path, records=100, max_pages=10000):
        """Walks every page of a list; returns (items, totalRecords of page 1)."""
        items, page, total = [], 1, None
        sep = "&" if "?" in path else "?"
        while page <= max_pages:
            js = self.ok("GET", f"{path}{sep}page={page}&records={records}", want=(200,))
            if total is None:
                total = js["meta"]["totalRecords"]
            if not js["data"]:
                return items, total
            items += js["data"]
            page += 1
        raise AssertionError(f"{path}: more than {max_pages} pages")


def assert_json_error(status, js, raw, want_status, want_code):
    assert status == want_status, f"expected {want_status}, got {status}: {raw[:400]!r}"
    assert isinstance(js, dict) and isinstance(js.get("errors"), list) and js["errors"], (
        f"{status} without a JSON error body: {raw[:400]!r}")
    for e in js["errors"]:
        assert e.get("status") == str(want_status), e
        assert e.get("code") == want_code, e


def copy_private(src, dst):
    """Copies src to a new file dst of mode 0600 whatever the umask (src=None:
    an empty one): a copy of a database holds its signing key."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out:
        if src is not None:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out)


def integrity_check(db, workdir):
    """Copies db (and its -wal, if any) to workdir and runs PRAGMA
    integrity_check and foreign_key_check on the copy, so crmd's own recovery
    of the original is left untouched. Returns a list of problems (empty: ok)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dst = workdir / f"check-{uuid.uuid4().hex[:8]}.db"
    copy_private(db, dst)
    wal = Path(str(db) + "-wal")
    if wal.exists():
        copy_private(wal, str(dst) + "-wal")
    try:
        con = sqlite3.connect(str(dst), timeout=5)
        try:
            ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
            fk = list(con.execute("PRAGMA foreign_key_check"))
        finally:
            con.close()
    finally:
        for p in (dst, Path(str(dst) + "-wal"), Path(str(dst) + "-shm")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    problems = [] if ic == ["ok"] else [f"integrity_check: {ic[:20]}"]
    if fk:
        problems.append(f"foreign_key_check: {fk[:20]}")
    return problems


def live_integrity_check(db, workdir):
    """integrity_check of a consistent snapshot of a database crmd has open
    (SQLite's online backup, read-only on the source)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dst = workdir / f"snap-{uuid.uuid4().hex[:8]}.db"
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    copy_private(None, dst)
    out = sqlite3.connect(str(dst))
    try:
        src.backup(out)
        ic = [r[0] for r in out.execute("PRAGMA integrity_check")]
    finally:
        src.close()
        out.close()
        dst.unlink()
    return [] if ic == ["ok"] else [f"integrity_check: {ic[:20]}"]


def run(*cmd, check=True, timeout=60):
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}: "
                           f"{p.stderr.strip()} {p.stdout.strip()}")
    return p


@contextlib.contextmanager
def small_ext4(tmp_path, mb=FS_MB):
    """A fresh ext4 file system of mb MiB, loop-mounted at tmp_path/mnt.
    Fails (never skips) when this machine does not allow mounting."""
    for tool in ("mkfs.ext4", "mount", "umount", "chattr"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists() \
                and not Path(f"/sbin/{tool}").exists():
            pytest.fail(f"{tool} is not installed (Debian packages e2fsprogs and mount)",
                        pytrace=False)
    img = tmp_path / "disk.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(mb * 1024 * 1024)
    # Inode tables and journal written now, not by the kernel in the
    # background while a test fills, freezes or times the file system.
    run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", img)
    try:
        # Inside the try: a run stopped (SIGTERM, Ctrl-C) while mount runs
        # may leave the image mounted, which the cleanup must then undo.
        p = run("mount", "-o", "loop", img, mnt, check=False)
        if p.returncode != 0:
            pytest.fail(f"cannot loop-mount an ext4 image here (root and loop devices are needed "
                        f"for the disk-full and read-only tests): mount exited {p.returncode}: "
                        f"{p.stderr.strip()}", pytrace=False)
        yield mnt
    finally:
        if os.path.ismount(mnt):
            run("fsfreeze", "-u", mnt, check=False)
            for path in mnt.iterdir():
                run("chattr", "-i", path, check=False)
            run("mount", "-o", "remount,rw", mnt, check=False)
            for _ in range(50):
                if run("umount", mnt, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                run("umount", "-l", mnt, check=False)
