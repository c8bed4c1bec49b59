"""Two servers, one port: a second `crmd serve` started on a port where a crmd
is already listening must refuse to start (exit non-zero, saying the address
is in use), not join the first one's listening sockets and take a share of
its connections with another database."""

import socket
import subprocess
import time


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


def _started(argv, port, err):
    """Starts crmd; True once it answers /healthz on port (10 s at most),
    False if it exits first. It is stopped either way."""
    with open(err, "wb") as ef:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


def test_a_server_starting_where_another_is_starting_refuses_to_start(tmp_path):
    """Two crmd processes started at the same moment on one free port could
    both find it free before either listens, then share it. Each first
    claims the address by name ("crmd-listen ADDRESS PORT", an abstract
    Unix socket that listens, dropped when its process stops or ends): here
    the test holds such a claim, as a crmd still starting would, on a port
    nobody listens on, and the new crmd must refuse to start, saying the
    address is in use. A name bound by a socket that does not listen is no
    crmd's claim (anyone could bind it to keep crmd away): crmd starts, as
    it does once the claim is given up."""
    port = free_port()
    name = f"\0crmd-listen 127.0.0.1 {port}"
    err = tmp_path / "second.stderr"
    argv = [crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:{tmp_path / 'c.db'}",
            "--threads", "2", "--quiet"]
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    claim.bind(name)
    claim.listen(4)
    try:
        assert not _started(argv, port, err), "crmd started on a port another crmd claimed"
        msg = err.read_text(errors="replace")
        assert "in use" in msg.lower(), msg
    finally:
        claim.close()
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    squatter.bind(name)
    try:
        assert _started(argv, port, err), err.read_text(errors="replace")
        assert "not a crmd" in err.read_text(errors="replace")
    finally:
        squatter.close()
    assert _started(argv, port, err), err.read_text(errors="replace")
