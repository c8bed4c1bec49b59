"""Rate limits behind a proxy (issue 9): both limits are on by default on
every address, loopback included, and start-up says which are in force;
failed authentication is limited per client address, which behind a
--trusted-proxy is the forwarded client (X-Forwarded-For), over HTTP/1 and
HTTP/2 alike; over the limit, a 429 with Retry-After comes before any
signature is checked, while tokens already verified keep working."""

import base64
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

import apiutil
from apiutil import TIMEOUT, assert_error
from conftest import READY_TIMEOUT, free_port


def forged(app):
    """A token of the right shape with a signature that cannot verify,
    different each time (so never in a cache)."""
    head, payload, _ = app.token.split(".")
    sig = base64.urlsafe_b64encode(uuid.uuid4().bytes * 16).rstrip(b"=").decode()
    return f"{head}.{payload}.{sig}"


def pipelined_statuses(port, reqs, until):
    """Sends the HTTP/1.1 requests reqs (bytes) on one connection without
    waiting for answers (from a thread of their own, so that neither side's
    buffers stall the other) and returns the statuses of the answers in
    order, up to the first that is until, or until the connection ends."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

    def send():
        try:
            sock.sendall(b"".join(reqs))
        except OSError:
            pass  # the server closed the connection: the statuses read say where

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    statuses, buf = [], b""
    try:
        while len(statuses) < len(reqs) and until not in statuses:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            head = buf[:end].decode("latin1").split("\r\n")
            fields = dict(line.split(":", 1) for line in head[1:])
            length = int({k.lower(): v for k, v in fields.items()}["content-length"])
            while len(buf) < end + 4 + length:
                chunk = sock.recv(65536)
                assert chunk, f"the connection ended inside an answer: {buf[:200]!r}"
                buf += chunk
            statuses.append(int(head[0].split(" ")[1]))
            buf = buf[end + 4 + length:]
    finally:
        sock.close()
        sender.join(TIMEOUT)
    return statuses


def get(srv, key, token, client=None, path="/leads/"):
    headers = {"AppId": key, "Authorization": f"Bearer {token}"}
    if client is not None:
        headers["X-Forwarded-For"] = f"198.51.100.77, {client}"
    return requests.get(srv.base_url + path, headers=headers, timeout=TIMEOUT)


def test_limits_are_on_by_default_also_on_loopback_and_said_at_start(tmp_path):
    db = tmp_path / "crmd.db"
    key, token = apiutil.app_create(db)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMD_")}
    err = tmp_path / "stderr"
    with open(err, "wb") as f:
        proc = subprocess.Popen([apiutil.crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--db",
                                 f"sqlite:{db}", "--threads", "1"], stderr=f, stdin=subprocess.DEVNULL, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
            time.sleep(0.05)
        text = err.read_text()
        assert "requests per app 100/s (burst 200)" in text, text
        assert "failed authentications per client address 20/s (burst 40)" in text, text
        assert "client address: the connection's peer (no --trusted-proxy)" in text, text
        r = requests.get(base + "/leads/", headers={"AppId": key, "Authorization": f"Bearer {token}"},
                         timeout=TIMEOUT)
        assert r.status_code == 200 and r.headers["RateLimit-Limit"] == "200", r.headers
        # 40 failures at once are allowed; then the address must wait. The
        # bucket gains 20 a second, so 400 failures bring a 429 unless the
        # server took 45 ms or more over each. They are pipelined on one
        # connection, so that only the server's pace counts (well under a
        # millisecond each, a few under ASan), not the client's: one
        # request at a time, a loaded machine's client came within a few
        # times of it.
        app = apiutil.App(base, key, token)
        reqs = [(f"GET /leads/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAppId: {key}\r\n"
                 f"Authorization: Bearer {forged(app)}\r\n\r\n").encode() for _ in range(400)]
        codes = pipelined_statuses(port, reqs, until=429)
        assert codes[:39] == [401] * 39 and codes[-1] == 429 and set(codes) == {401, 429}, codes
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def proxied(make_server, monkeypatch):
    """A server behind a trusted proxy on loopback, whose failed-auth limit
    is a burst of 3 and one more every 5 s."""
    monkeypatch.setenv("CRMD_TRUSTED_PROXY", "127.0.0.1/32")
    monkeypatch.setenv("CRMD_AUTH_LIMIT", "0.2:3")
    monkeypatch.setenv("CRMD_HTTP2", "1")  # cleartext HTTP/2 is off by default
    return make_server(threads=1)


def test_failed_authentication_is_limited_per_forwarded_client(proxied):
    srv = proxied
    app = srv.new_app()
    assert "from X-Forwarded-For when the peer is a trusted proxy (127.0.0.1/32)" in srv.stderr_text()
    cached = get(srv, app.key, app.token, client="203.0.113.2")  # verified: in the cache now
    assert cached.status_code == 200
    for _ in range(3):
        assert get(srv, app.key, forged(app), client="203.0.113.1").status_code == 401
    r = get(srv, app.key, forged(app), client="203.0.113.1")
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    # Over the limit, even a good token is not verified (no RSA work)...
    fresh = apiutil.token_issue(srv.db, app.key)
    assert get(srv, app.key, fresh, client="203.0.113.1").status_code == 429
    # ...but one already verified is served from the cache, also once its
    # app is looked up again (a thread keeps an app for a second).
    assert get(srv, app.key, app.token, client="203.0.113.1").status_code == 200
    time.sleep(1.2)
    assert get(srv, app.key, app.token, client="203.0.113.1").status_code == 200
    # Over the limit, every failure is a 429: an unknown app key beside a
    # cached token (not even looked up), another app's key.
    other = srv.new_app()
    for key in ("pk_live_nosuchapp", other.key):
        r = get(srv, key, app.token, client="203.0.113.1")
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
    # Unknown app keys beside a good cached token count as failures too.
    for _ in range(3):
        assert get(srv, "pk_live_nosuchapp", app.token, client="203.0.113.7").status_code == 401
    assert get(srv, "pk_live_nosuchapp", app.token, client="203.0.113.7").status_code == 429
    # Another forwarded client has its own allowance; so has the proxy itself.
    assert get(srv, app.key, forged(app), client="203.0.113.9").status_code == 401
    assert get(srv, app.key, fresh, client="203.0.113.9").status_code == 200
    assert get(srv, app.key, forged(app)).status_code == 401
    # Over HTTP/2 the same address is just as limited.
    _, version, status, _, body, _ = apiutil.curl(
        "--http2-prior-knowledge", "-H", f"AppId: {app.key}", "-H", f"Authorization: Bearer {forged(app)}",
        "-H", "X-Forwarded-For: 203.0.113.1", srv.base_url + "/leads/", timeout=20)
    assert (version, status) == ("2", 429), body


def test_the_client_a_trusted_proxy_names_is_the_right_most_untrusted(proxied):
    srv = proxied
    app = srv.new_app()
    # The client may write anything on the left; the proxy appends what it saw.
    for spoofed in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        h = {"AppId": app.key, "Authorization": f"Bearer {forged(app)}",
             "X-Forwarded-For": f"{spoofed}, 203.0.113.50"}
        assert requests.get(srv.base_url + "/leads/", headers=h, timeout=TIMEOUT).status_code == 401
    assert get(srv, app.key, forged(app), client="203.0.113.50").status_code == 429


def test_without_a_trusted_proxy_forwarded_for_is_ignored(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_AUTH_LIMIT", "0.2:3")
    srv = make_server(threads=1)
    app = srv.new_app()
    for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert get(srv, app.key, forged(app), client=client).status_code == 401
    # All of them came from the peer, 127.0.0.1, whatever they claimed.
    assert get(srv, app.key, forged(app), client="203.0.113.4").status_code == 429


def test_conflicting_and_missing_credentials_count_as_failures(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_AUTH_LIMIT", "0.2:2")
    srv = make_server(threads=1)
    app = srv.new_app()
    assert requests.get(srv.base_url + "/leads/", timeout=TIMEOUT).status_code == 401
    assert requests.get(srv.base_url + "/leads/", headers={"AppId": app.key, "X-Api-Key": "other",
                                                           "Authorization": f"Bearer {app.token}"},
                        timeout=TIMEOUT).status_code == 400
    assert get(srv, app.key, forged(app)).status_code == 429


@pytest.mark.parametrize("args", [["--trusted-proxy", "10.0.0.0/33"], ["--trusted-proxy", "proxy.local"],
                                  ["--auth-limit", "0"], ["--auth-limit", "x:1"],
                                  ["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1/200"]])
def test_bad_limit_flags_exit_2(tmp_path, args):
    p = apiutil.run_crmd("serve", "--listen", "127.0.0.1:1", "--db", f"sqlite:{tmp_path}/x.db", *args,
                         timeout=10)
    assert p.returncode == 2, p
    assert args[-2].lstrip("-") in p.stderr
