"""Two servers, one port: a second `crmd serve` started on a port where a crmd
is already listening must refuse to start (exit non-zero, saying the address
is in use), not join the first one's listening sockets and take a share of
its connections with another database."""

import subprocess
import time

import pytest

from faultutil import Conn, DefectObserved, app_create, crmd_bin


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
