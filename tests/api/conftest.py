"""Fixtures for the crmd black-box suite.

One server (session scope) on a temp SQLite database serves most tests; each
test that needs isolation gets a fresh app (tenant) instead of a fresh server."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import apiutil  # noqa: E402
from apiutil import App, crmd_bin  # noqa: E402

# never send loopback traffic through a proxy (requests and curl honour these)
for _k in [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
    del os.environ[_k]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

READY_TIMEOUT = 10
STOP_TIMEOUT = 10


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `crmd serve`, its database and its log files."""

    def __init__(self, workdir, threads=None):
        self.workdir = Path(workdir)
        self.db = self.workdir / "crmd.db"
        self.stderr_path = self.workdir / "server.stderr"
        self.stdout_path = self.workdir / "server.stdout"
        self.threads = threads
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
            args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--db",
                    f"sqlite:{self.db}"]
            if self.threads:
                args += ["--threads", str(self.threads)]
            self._out = open(self.stdout_path, "ab")
            self._err = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err,
                                         stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = requests.get(self.base_url + "/healthz", timeout=1)
                    if r.status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.05)
            last = self.stderr_text()
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"crmd serve did not answer 200 on /healthz within "
                            f"{READY_TIMEOUT}s; stderr:\n{last}", pytrace=False)
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
        key, token = apiutil.app_create(self.db, name)
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
def make_server(tmp_path):
    """Starts extra servers (for lifecycle tests); stops leftovers at the end."""
    started = []

    def make(threads=None):
        srv = Server(tmp_path / f"srv{len(started)}", threads=threads)
        srv.workdir.mkdir()
        started.append(srv)
        return srv.start()

    yield make
    for s in started:
        if s.proc and s.proc.poll() is None:
            s.stop()
