"""Two servers, one port: a second `crmd serve` started on a port where a crmd
is already listening must refuse to start (exit non-zero, saying the address
is in use), not join the first one's listening sockets and take a share of
its connections with another database."""

import socket
import subprocess
import time

import pytest

from faultutil import Conn, DefectObserved, app_create, crmd_bin, free_port


def test_second_server_on_the_same_port_refuses_to_start(crmd, tmp_path):
    first = crmd("first", threads=2)
    key, token = app_create(first.db)
    first.start()
    err = tmp_path / "second.stderr"
    with open(err, "wb") as ef:
        p = subprocess.Popen([crmd_bin(), "serve", "--listen", f"127.0.0.1:{first.port}",
                              "--db", f"sqlite:{tmp_path / 'second.db'}", "--threads", "2",
                              "--quiet"], stdout=subprocess.DEVNULL, stderr=ef,
                             stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        if p.poll() is not None:
            msg = err.read_text(errors="replace")
            print(f"\nthe second crmd exited {p.returncode}: {msg.strip()}")
            assert p.returncode != 0
            assert "in use" in msg.lower() or "cannot listen" in msg.lower(), msg
            return
        answers = {}
        for _ in range(100):
            c = Conn(first.port, key, token, timeout=5)
            st = c.request("GET", "/leads/")[0]
            c.close()
            answers[st] = answers.get(st, 0) + 1
        print(f"\nboth crmd processes listen on port {first.port}; 100 requests with the first "
              f"one's credentials got {answers} (401: answered by the second, which has "
              f"another database)")
        raise DefectObserved(f"a second crmd started on port {first.port}, already in use; "
                             f"answers: {answers}")
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def test_a_server_starting_where_another_is_starting_refuses_to_start(tmp_path):
    """Two crmd processes started at the same moment on one free port could
    both find it free before either listens, then share it. Each first
    claims the address by name ("crmd-listen HOST PORT", an abstract Unix
    socket, dropped when its process ends): here the test holds the claim,
    as a crmd still starting would, on a port nobody listens on, and the
    new crmd must refuse to start, saying the address is in use; once the
    claim is given up it starts."""
    port = free_port()
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    claim.bind(f"\0crmd-listen 127.0.0.1 {port}")
    err = tmp_path / "second.stderr"
    argv = [crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:{tmp_path / 'c.db'}",
            "--threads", "2", "--quiet"]
    try:
        with open(err, "wb") as ef:
            p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL,
                               timeout=30)
        msg = err.read_text(errors="replace")
        assert p.returncode != 0, msg
        assert "in use" in msg.lower(), msg
    finally:
        claim.close()
    with open(err, "wb") as ef:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        answered = False
        while time.monotonic() < deadline and p.poll() is None and not answered:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answered = s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                time.sleep(0.05)
        assert answered, err.read_text(errors="replace")
    finally:
        p.terminate()
        p.wait(10)
