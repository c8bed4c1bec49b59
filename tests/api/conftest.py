"""Fixtures for the crmd black-box suite.

One server (session scope) on a temp SQLite database serves most tests; each
test that needs isolation gets a fresh app (tenant) instead of a fresh server.

CRMD_TEST_BACKEND=postgres runs the same suite on PostgreSQL (make check does
both; scripts/pg-cluster.sh run provides the cluster and CRMD_TEST_PG_URL).
Each server then gets a fresh database of its own; tests still name a
server's database as f"sqlite:{server.db}", and run_crmd maps that name to
the server's real database URL (server.db_url)."""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import apiutil  # noqa: E402
import sigterm  # noqa: E402
from pgutil import PG_URL, pg_drop_database, pg_new_database, psql  # noqa: E402,F401 (tests import them from here)
from apiutil import App, crmd_bin  # noqa: E402

BACKEND = os.environ.get("CRMD_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise pytest.UsageError(f"CRMD_TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")
if BACKEND == "postgres" and not PG_URL:
    # A PostgreSQL run without PostgreSQL is a failure, never a skip.
    raise pytest.UsageError("CRMD_TEST_BACKEND=postgres needs CRMD_TEST_PG_URL "
                            "(run the suite through scripts/pg-cluster.sh run)")
if os.environ.get("CRMD_OPENAPI_VALIDATE", "1") not in ("0", "1"):
    raise pytest.UsageError("CRMD_OPENAPI_VALIDATE must be 1 (validate every answer, the "
                            "default) or 0 (validate none)")
# PostgreSQL-only tests are not collected at all in a SQLite run.
collect_ignore = [] if BACKEND == "postgres" else ["test_postgres.py", "test_postgres_webhooks.py"]

# "sqlite:{server.db}" -> the server's real database URL (PostgreSQL runs).
DB_ALIASES = {}


_run_crmd = apiutil.run_crmd
_find_server_key = apiutil.find_server_key


def _run_crmd_aliased(*args, **kw):
    return _run_crmd(*[DB_ALIASES.get(str(a), a) for a in args], **kw)


def _find_server_key_aliased(db_path, token, workdir):
    url = DB_ALIASES.get(f"sqlite:{db_path}")
    if url is None:
        return _find_server_key(db_path, token, workdir)
    # The same schema-agnostic search, over a SQLite copy of the key table.
    copy = Path(workdir) / f"pg-keys-{uuid.uuid4().hex[:6]}.db"
    apiutil.create_private(copy)
    con = sqlite3.connect(copy)
    with con:
        con.execute("CREATE TABLE k (pem TEXT)")
        pem = psql(url, "SELECT pem FROM signing_keys")
        con.execute("INSERT INTO k VALUES (?)", (pem.strip() + "\n",))
    con.close()
    return _find_server_key(copy, token, workdir)


apiutil.run_crmd = _run_crmd_aliased
apiutil.find_server_key = _find_server_key_aliased

# Every answer a crmd of this suite gives through requests (the Client, and
# any requests.get/post/Session of a test) is validated against
# openapi/openapi.json (apiutil.check_response; answers read by other means go
# through apiutil.check_answer too). A streamed response (stream=True) has its
# status and headers checked at once, and its body once the test has read it
# all and closed the response. CRMD_OPENAPI_VALIDATE=0 turns the checks off,
# and the run's report says so.
_requests_send = requests.Session.send


def _validating_send(self, request, **kw):
    resp = _requests_send(self, request, **kw)
    if kw.get("stream"):
        apiutil.check_streamed(resp)
    else:
        apiutil.check_response(resp)
    return resp


requests.Session.send = _validating_send


VALIDATION_OFF = ("CRMD_OPENAPI_VALIDATE=0: the answers of crmd are NOT validated against "
                  "openapi/openapi.json in this run")


def pytest_report_header(config):
    if apiutil.openapi_validation_enabled():
        return "openapi: every answer of crmd is validated against openapi/openapi.json"
    return "openapi: " + VALIDATION_OFF


def pytest_configure(config):
    sigterm.stop_as_on_ctrl_c(config)
    # make api-asan leaves these out: they spend seconds waiting for the
    # server's timers (webhook timeouts and retries, export and retention
    # times) on paths the release build's runs cover, and the sanitized run
    # is the suite's longest step.
    config.addinivalue_line("markers", "waits: mostly waits for the server's timers; not run under ASan")
    if not apiutil.openapi_validation_enabled():
        config.issue_config_time_warning(pytest.PytestWarning(VALIDATION_OFF), stacklevel=2)


def pytest_terminal_summary(terminalreporter):
    if not apiutil.openapi_validation_enabled():
        terminalreporter.write_sep("!", VALIDATION_OFF, red=True, bold=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when == "call" and call.excinfo is not None:
        item.crmd_call_failed = True  # it failed (or xfailed) on its own


@pytest.fixture(autouse=True)
def _openapi_conformance(request):
    """Fails a test whose answers broke the document even when the test did
    not see the AssertionError (raised in a thread it does not join, or
    caught by a broad except)."""
    first = len(apiutil.OPENAPI_FAILURES)
    yield
    found = apiutil.OPENAPI_FAILURES[first:]
    if found and not getattr(request.node, "crmd_call_failed", False):
        pytest.fail(f"{len(found)} answer(s) did not match openapi/openapi.json:\n"
                    + "\n".join(found[:3]), pytrace=False)

@pytest.fixture
def healthz_drift(monkeypatch):
    """Makes the suite's validator read a drifted document for the test:
    set("body") makes GET /healthz's 200 promise a status crmd never sends,
    set("header") a header it never sends. The failures recorded meanwhile
    are the test's to expect, and are forgotten at its end."""
    import copy
    if not apiutil.openapi_validation_enabled():
        pytest.skip(VALIDATION_OFF)
    first = len(apiutil.OPENAPI_FAILURES)

    def drift(what):
        doc = copy.deepcopy(apiutil.openapi().doc)
        if what == "body":
            doc["components"]["schemas"]["Health"]["properties"]["status"] = {"const": "drifted"}
        else:
            doc["paths"]["/healthz"]["get"]["responses"]["200"]["headers"]["X-Drift"] = {
                "required": True, "schema": {"type": "string"}}
        monkeypatch.setattr(apiutil, "_OPENAPI", apiutil.OpenApi(doc, enforce_pending=False))

    yield drift
    del apiutil.OPENAPI_FAILURES[first:]


# never send loopback traffic through a proxy (requests and curl honour these)
for _k in [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
    del os.environ[_k]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

READY_TIMEOUT = 30  # returns at the first 200; a loaded CI machine can stall a start for seconds
STOP_TIMEOUT = 10


@contextlib.contextmanager
def environ(values):
    """Sets environment variables (a server started meanwhile reads them),
    and puts back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens_on(pid, port):
    """Whether process pid holds the listening socket on 127.0.0.1:port. A
    port free_port found free may be taken by another test's crmd (another
    xdist worker's) before ours binds it: ours then exits, but an answer on
    the port would come from that other one."""
    want = f"0100007F:{port:04X}"
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == want and cols[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            pass
    return False


class Server:
    """A running `crmd serve`, its database and its log files."""

    def __init__(self, workdir, threads=None, db_url=None, extra_args=()):
        self.workdir = Path(workdir)
        self.db = self.workdir / "crmd.db"
        # db_url: a database to use (e.g. one shared with another server);
        # by default a new one of the suite's backend.
        self.own_pg_db = db_url is None and BACKEND == "postgres"
        if self.own_pg_db:
            db_url = pg_new_database()
        self.db_url = db_url or f"sqlite:{self.db}"
        if self.db_url != f"sqlite:{self.db}":
            DB_ALIASES[f"sqlite:{self.db}"] = self.db_url
        self.stderr_path = self.workdir / "server.stderr"
        self.stdout_path = self.workdir / "server.stdout"
        self.threads = threads
        self.extra_args = list(extra_args)  # more `crmd serve` options
        self.proc = None
        self.port = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self):
        return "127.0.0.1"

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self):
        binary = crmd_bin()
        if not os.access(binary, os.X_OK):
            pytest.fail(f"crmd binary not found or not executable: {binary} "
                        f"(set CRMD_BIN or run make)", pytrace=False)
        last = ""
        for _attempt in range(3):
            self.port = free_port()
            args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--db", self.db_url,
                    "--rate-limit", os.environ.get("CRMD_RATE_LIMIT", "off"),
                    "--auth-limit", os.environ.get("CRMD_AUTH_LIMIT", "off")]
            if self.threads:
                args += ["--threads", str(self.threads)]
            args += self.extra_args
            self._out = open(self.stdout_path, "ab")
            self._err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err,
                                         stdin=subprocess.DEVNULL)
            apiutil.CRMD_ORIGINS.add(f"127.0.0.1:{self.port}")
            deadline = time.monotonic() + READY_TIMEOUT
            answer = None
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = requests.get(self.base_url + "/healthz", timeout=1)
                    answer = r.status_code
                    if r.status_code == 200 and listens_on(self.proc.pid, self.port):
                        return self
                except requests.RequestException as e:
                    answer = repr(e)
                time.sleep(0.05)
            last = self.stderr_text()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"crmd serve did not answer 200 on {self.base_url}/healthz within "
                            f"{READY_TIMEOUT}s (the last try got {answer}); stderr:\n{last}",
                            pytrace=False)
            self._out.close()
            self._err.close()
            if "in use" not in last.lower():
                break
        pytest.fail(f"crmd serve exited {self.proc.returncode} before becoming ready; "
                    f"stderr:\n{last}", pytrace=False)

    def stop(self):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        finally:
            self._out.close()
            self._err.close()
        return rc

    def new_app(self, name=None):
        key, token = apiutil.app_create(self.db, name, setup=True)
        return App(self.base_url, key, token)

    def client(self, key=None, token=None):
        return apiutil.Client(self.base_url, key, token)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("crmd")).start()
    yield srv
    rc = srv.stop()
    assert rc == 0, (f"crmd serve must exit 0 within {STOP_TIMEOUT}s of SIGTERM, got "
                     f"{'no exit (killed)' if rc is None else rc}; stderr tail:\n"
                     f"{srv.stderr_text()[-3000:]}")


@pytest.fixture
def app(server):
    """A fresh app (tenant) on the shared server: .key, .token, and the client
    methods (.get/.post/.put/.delete, .headers, .base_url). Unpacks as (key, token)."""
    return server.new_app()


@pytest.fixture
def app2(server):
    return server.new_app()


@pytest.fixture(scope="module")
def mapp(server):
    """An app shared by a whole module, for tests that need no isolation."""
    return server.new_app()


@pytest.fixture
def anon(server):
    """A client that sends no credentials."""
    return server.client()


@pytest.fixture
def forget_issued_token():
    """forget(server, jti) deletes a token's record from a server's database, as
    if the token had been issued before crmd recorded the tokens it issues."""
    def forget(server, jti):
        if server.db_url.startswith("sqlite:"):
            con = sqlite3.connect(server.db, timeout=10)
            with con:
                n = con.execute("DELETE FROM issued_tokens WHERE jti = ?", (jti,)).rowcount
            con.close()
            assert n == 1, jti
        else:
            assert uuid.UUID(jti)  # safe to put in the statement
            assert psql(server.db_url, f"DELETE FROM issued_tokens WHERE jti = '{jti}' RETURNING 1").strip() == "1"
    return forget


@pytest.fixture
def make_server(tmp_path):
    """Starts extra servers (for lifecycle tests); stops leftovers at the end."""
    started = []

    def make(threads=None, db_url=None, extra_args=()):
        srv = Server(tmp_path / f"srv{len(started)}", threads=threads, db_url=db_url,
                     extra_args=extra_args)
        srv.workdir.mkdir()
        started.append(srv)
        return srv.start()

    yield make
    for s in started:
        if s.proc and s.proc.poll() is None:
            s.stop()
    # Their databases go now rather than with the cluster: a PostgreSQL run
    # makes hundreds of them, and the cluster lives in memory.
    for s in started:
        if s.own_pg_db:
            pg_drop_database(s.db_url)
