"""`make install` into a DESTDIR, the man page against the usage texts, the
systemd unit, and the readiness notification (sd_notify) it relies on."""

import os
import re
import signal
import socket
import stat
import subprocess
from pathlib import Path

import requests

from apiutil import crmd_bin, run_crmd
from conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def make_install(destdir, prefix):
    build = Path(crmd_bin()).parent
    p = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install", f"BUILD={build}",
                        "-o", f"{build}/crmd", f"DESTDIR={destdir}", f"PREFIX={prefix}"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_make_install_into_destdir(tmp_path):
    dest = tmp_path / "dest"
    make_install(dest, "/usr")
    binary = dest / "usr/bin/crmd"
    man = dest / "usr/share/man/man1/crmd.1"
    unit = dest / "lib/systemd/system/crmd.service"
    conf = dest / "etc/crmd/crmd.conf"
    for path, want in ((binary, 0o755), (man, 0o644), (unit, 0o644), (conf, 0o644)):
        assert path.is_file(), path
        assert mode(path) == want, (path, oct(mode(path)))
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.startswith("crmd ")
    text = unit.read_text()
    assert "ExecStart=/usr/bin/crmd serve --config /etc/crmd/crmd.conf" in text
    assert not re.search(r"@[A-Z]+@", text), "a placeholder was left"
    for setting in ("Type=notify", "DynamicUser=yes", "StateDirectory=crmd", "ProtectSystem=strict",
                    "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                    "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "Restart=on-failure"):
        assert setting in text, setting
    # The example config is valid for crmd, and kept on a second install.
    assert run_crmd("serve", "--help", "--config", str(conf)).returncode == 0
    conf.write_text("listen = 127.0.0.1:9\n")
    make_install(dest, "/usr")
    assert conf.read_text() == "listen = 127.0.0.1:9\n"
    # Another prefix puts everything under it.
    make_install(tmp_path / "local", "/usr/local")
    assert (tmp_path / "local/usr/local/lib/systemd/system/crmd.service").read_text().count(
        "/usr/local/etc/crmd/crmd.conf") >= 1


def usage_words(text):
    return set(re.findall(r"--([a-z][a-z0-9-]*)", text))


def test_the_man_page_names_every_command_and_option():
    man = (REPO / "docs/crmd.1").read_text().replace("\\-", "-").replace("\\fB", "").replace("\\fP", "") \
        .replace("\\fI", "").replace("\\fR", "")
    top = run_crmd("--help", check=True).stdout
    commands = {"serve", "app", "token", "key", "migrate", "copy", "backup", "export", "import", "routes",
                "version"}
    for c in commands:
        assert re.search(rf"^  {c}\b", top, re.M), f"{c} is not in crmd --help"
        assert re.search(rf"^\.SS {c}\b", man, re.M), f"the man page has no section for {c}"
    helps = [top] + [run_crmd(*c.split(), "--help", check=True).stdout
                     for c in ("serve", "app", "token", "key retire", "migrate", "copy", "backup", "export",
                               "import")]
    flags = set().union(*map(usage_words, helps))
    assert {"listen", "jwks-url", "force", "to", "append", "config"} <= flags, flags
    missing = sorted(f for f in flags if f"--{f}" not in man)
    assert not missing, f"options missing from docs/crmd.1: {missing}"


def test_unit_verify_passes():
    p = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "unit-verify",
                        f"BUILD={Path(crmd_bin()).parent}", "-o", f"{Path(crmd_bin()).parent}/crmd"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "verified" in p.stdout, p.stdout + p.stderr


def test_ready_and_stopping_are_notified(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([crmd_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--threads", "2",
                             "--db", f"sqlite:{tmp_path / 'n.db'}"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        msg = sock.recv(256)
        assert msg == b"READY=1", msg
        # Ready means serving (the connection closed after, so the drain is quick).
        with requests.Session() as s:
            assert s.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(256) == b"STOPPING=1"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()


def test_only_the_waiting_thread_takes_the_stop_signals(make_server):
    """SIGTERM must reach the thread that waits for it: every other thread
    (workers, the writer, the key poller) blocks SIGINT and SIGTERM, or one
    that arrives while that thread is between two waits kills crmd without
    its orderly stop (no drain, no STOPPING=1). The waiting thread shows them
    unblocked only while it waits."""
    srv = make_server(threads=2)
    stop = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    tasks = list(Path(f"/proc/{srv.proc.pid}/task").iterdir())
    assert len(tasks) >= 5, "main, two workers, the writer and the key poller"
    open_to_stop = []
    for t in tasks:
        status = (t / "status").read_text()
        blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
        if blocked & stop != stop:
            open_to_stop.append(t.name)
    assert len(open_to_stop) <= 1, f"threads {open_to_stop} would take a SIGTERM"


def test_make_run_installs_what_the_build_runs():
    """The build runs $(PYTHON), /usr/bin/python3, to generate C sources
    (scripts/gen-openapi-c.py, gen-board-c.py), but python3 was not among
    the packages `make run` installs, none of which pulls it in: on a
    minimal Debian 12 `make run` failed in the middle of the build."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    assert re.search(r"^PYTHON\s*:=\s*/usr/bin/python3$", text, re.M), "the build's Python moved"
    assert "$(PYTHON) scripts/gen-openapi-c.py" in text and "$(PYTHON) scripts/gen-board-c.py" in text
    debs = re.search(r"^DEBS_RUN\s*:=(.*)$", text, re.M).group(1).split()
    assert "python3" in debs, debs
