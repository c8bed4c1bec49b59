"""A webhook whose name never resolves must not hold up the others: crmd
delivers every webhook from one sender thread (libcurl's multi interface),
and a delivery that times out (10 s) while libcurl's threaded resolver is
still stuck in getaddrinfo() used to make libcurl join that resolver thread
on the sender thread, so no other webhook of any app was sent until the
lookup gave up (about 30 s with three silent name servers).

crmd serves in a private mount namespace (unshare -m) whose /etc/resolv.conf
names three black-hole name servers on 127.0.0.2-4 (UDP sockets of this test
that read every query and never answer; with `options timeout:5 attempts:2`
glibc waits 5, 3 and 6 s on them in each of two rounds: it gives up at
+28 s). App A's webhook names a host under a reserved test domain, looked up
through those servers; app B's goes to a receiver on 127.0.0.1
(--webhook-allow-private). A lead is made in A at +0 s (its delivery times
out at +10 s, still resolving), then leads in B at +2 s, +12 s and +16 s:
each of B's events must arrive within LATE_S of its making. Before the fix
(CURLOPT_QUICK_EXIT) the +12 s and +16 s ones arrived at +28 s, when the
lookup gave up (the +2 s one, made before the timeout, came at once). The
test also checks that crmd's lookup did reach the black-hole servers (else
it would prove nothing).

Root only (a mount namespace, port 53 on loopback); SQLite only (the sender
and libcurl are the same on PostgreSQL). Everything binds 127.0.0.x."""

import contextlib
import http.server
import json
import os
import select
import shutil
import socket
import threading
import time

import pytest

from faultutil import Conn, app_create

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: crmd gets a resolv.conf of its own in a private mount namespace "
           "(unshare -m, mount --bind), and the black-hole name servers listen on port 53")

NAME_SERVERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
RESOLV_CONF = "".join(f"nameserver {ns}\n" for ns in NAME_SERVERS) + "options timeout:5 attempts:2\n"
SLOW_HOST = "slow.invalid-dns.test"   # RFC 2606 reserved; in no /etc/hosts
VICTIM_AT = (2.0, 12.0, 16.0)         # when B's leads are made, seconds after A's
LATE_S = 6.0    # measured: under 0.1 s with the fix, 12 and 16 s without it
REPORT_UNTIL = 36.0   # a late event is waited for until then, to say when it came

# Runs crmd with the resolv.conf given as $1 bound over /etc/resolv.conf, in a
# mount namespace of its own (private propagation: the host's file is left
# alone). unshare and sh exec, so the process started is crmd itself.
IN_NAMESPACE = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"', "sh"]


class BlackHoleDns:
    """UDP sockets on port 53 of each of NAME_SERVERS: every query is read
    (its time and name kept) and never answered."""

    def __init__(self):
        self.queries = []
        self.socks = []
        self.stop = threading.Event()
        try:
            for ip in NAME_SERVERS:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.socks.append(s)
                s.bind((ip, 53))
        except OSError as e:
            self.close()
            pytest.fail(f"cannot listen on udp {ip}:53 for the black-hole name servers: {e!r}",
                        pytrace=False)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop.is_set():
            ready, _, _ = select.select(self.socks, [], [], 0.2)
            for s in ready:
                data, _ = s.recvfrom(4096)
                self.queries.append((time.monotonic(), s.getsockname()[0], qname(data)))

    def close(self):
        self.stop.set()
        if getattr(self, "thread", None) is not None:
            self.thread.join(5)
        for s in self.socks:
            s.close()


def qname(query):
    """The name asked for in a DNS query."""
    labels, i = [], 12
    while i < len(query) and query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode(errors="replace"))
        i += 1 + query[i]
    return ".".join(labels)


class Receiver:
    """Takes webhook deliveries on 127.0.0.1, keeping each one's arrival."""

    def __init__(self):
        self.got = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                rec.got.append((time.monotonic(), self.path, json.loads(body)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def arrival(self, name):
        """When the first event of the lead called name arrived, or None."""
        for t, _, e in list(self.got):
            if e["data"]["attributes"]["name"] == name:
                return t
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_a_stuck_dns_lookup_does_not_hold_up_other_webhooks(crmd, tmp_path):
    if shutil.which("unshare") is None:
        pytest.fail("unshare is not installed (Debian package util-linux)", pytrace=False)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(RESOLV_CONF)
    host_resolv = open("/etc/resolv.conf").read()
    with contextlib.ExitStack() as cleanup:
        dns = BlackHoleDns()
        cleanup.callback(dns.close)
        rec = Receiver()
        cleanup.callback(rec.close)
        srv = crmd(wrap=[*IN_NAMESPACE, str(resolv)], extra_args=["--webhook-allow-private"])
        cleanup.callback(srv.close)   # before the receiver and the name servers
        srv.start()
        # /proc/PID/root is seen through crmd's own mount namespace
        assert open(f"/proc/{srv.pid}/root/etc/resolv.conf").read() == RESOLV_CONF
        assert open("/etc/resolv.conf").read() == host_resolv, "the host's resolv.conf changed"
        a = Conn(srv.port, *app_create(srv.db_url), timeout=10)
        cleanup.callback(a.close)
        b = Conn(srv.port, *app_create(srv.db_url), timeout=10)
        cleanup.callback(b.close)
        a.ok("POST", "/webhooks", {"webhook": {"url": f"http://{SLOW_HOST}:{rec.port}/slow",
                                               "events": ["lead.created"]}})
        b.ok("POST", "/webhooks", {"webhook": {"url": f"http://127.0.0.1:{rec.port}/fast",
                                               "events": ["lead.created"]}})
        t0 = time.monotonic()
        a.ok("POST", "/leads", {"lead": {"name": "stuck"}})
        made = {}
        for at in VICTIM_AT:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            name = f"victim+{at:g}s"
            made[name] = time.monotonic()
            b.ok("POST", "/leads", {"lead": {"name": name}})
        # Each must come within LATE_S; one that does not is waited for
        # (until REPORT_UNTIL) only to tell when it came.
        deadline = max(made.values()) + LATE_S
        while time.monotonic() < deadline and any(rec.arrival(n) is None for n in made):
            time.sleep(0.05)
        late = [n for n in made if (rec.arrival(n) or time.monotonic()) - made[n] > LATE_S]
        while late and time.monotonic() < t0 + REPORT_UNTIL and any(rec.arrival(n) is None for n in late):
            time.sleep(0.1)

        def when(n):
            t = rec.arrival(n)
            return (f"made +{made[n] - t0:.1f}s, " +
                    (f"arrived +{t - t0:.1f}s ({t - made[n]:.1f}s later)" if t is not None
                     else f"not arrived by +{time.monotonic() - t0:.1f}s"))

        lookups = [(round(t - t0, 1), ns) for t, ns, q in dns.queries if q == SLOW_HOST]
        print(f"\nqueries for {SLOW_HOST} (seconds after A's lead, name server): {lookups}")
        for n in made:
            print(f"{n}: {when(n)}")
        assert lookups, (f"crmd's lookup of {SLOW_HOST} never reached the black-hole name servers "
                         f"(queries seen: {dns.queries[:10]}), so the test proves nothing")
        assert all(p == "/fast" for _, p, _ in rec.got), "the unresolvable webhook got a delivery"
        assert not late, ("events of app B were held up while app A's lookup hung: " +
                          "; ".join(f"{n}: {when(n)}" for n in late))
