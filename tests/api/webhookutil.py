"""Webhook receivers for the tests: HTTP (or HTTPS) servers on 127.0.0.1 that
record every delivery and answer as a test tells them, and the checks every
delivery must pass (its signature, its headers, its payload against the
OpenAPI document's webhooks section)."""

import hashlib
from decimal import Decimal
import hmac
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import apiutil


class Delivery:
    """One request a receiver got."""

    def __init__(self, path, headers, body, at):
        self.path = path
        self.headers = headers  # lower-cased names
        self.body = body  # bytes
        self.at = at  # time.monotonic() on arrival
        self.json = json.loads(body) if body else None

    @property
    def event_id(self):
        return self.json["id"]

    @property
    def type(self):
        return self.json["type"]


class Receiver:
    """A threaded HTTP/1.1 server (keep-alive) on 127.0.0.1. answer(delivery, n)
    decides the answer to the n-th request on a path (from 0): a status, or a
    tuple (status, headers dict, body bytes, delay seconds); by default 204."""

    def __init__(self, answer=None, tls=None):
        self.answer = answer or (lambda d, n: 204)
        self.deliveries = []
        self.lock = threading.Lock()
        self.counts = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                d = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                             time.monotonic())
                with receiver.lock:
                    k = receiver.counts.get(self.path, 0)
                    receiver.counts[self.path] = k + 1
                    receiver.deliveries.append(d)
                a = receiver.answer(d, k)
                status, headers, rbody, delay = (a, {}, b"", 0) if isinstance(a, int) else a
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for h, v in headers.items():
                        self.send_header(h, v)
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    def got(self, path=None):
        with self.lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def wait_for(self, n, path=None, timeout=20):
        """Waits until at least n deliveries arrived (on path); returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.got(path)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        got = self.got(path)
        raise AssertionError(f"{len(got)} deliveries on {path or 'any path'} within {timeout}s, want {n}: "
                             f"{[d.type for d in got]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signature_ok(delivery, secret, tolerance=300):
    """Checks Crmd-Signature as docs/webhooks.md tells receivers to."""
    sig = delivery.headers["crmd-signature"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) <= tolerance


def check_delivery(delivery, secret):
    """Every delivery: signed with the secret, its headers, its payload valid
    against the document's webhooks section for its type."""
    assert signature_ok(delivery, secret), delivery.headers
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["crmd-event"] == delivery.type
    assert str(uuid.UUID(delivery.headers["crmd-delivery"])) == delivery.headers["crmd-delivery"]
    api = apiutil.openapi()
    op = api.doc["webhooks"][delivery.type]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    errors = api.schema_errors(schema, json.loads(delivery.body.decode(), parse_float=Decimal))
    assert not errors, (delivery.type, errors, delivery.body[:500])


def create_webhook(app, url, events=("*",), **attrs):
    """Creates a webhook; returns its resource with attributes.secret."""
    r = app.post("/webhooks", {"webhook": {"url": url, "events": list(events), **attrs}})
    apiutil.assert_status(r, 201)
    data = apiutil.body_json(r)["data"]
    assert apiutil.location_path(r) == f"/webhooks/{data['id']}"
    return data


def deliveries(app, webhook_id, records=100):
    r = app.get(f"/webhooks/{webhook_id}/deliveries", params={"records": records})
    apiutil.assert_status(r, 200)
    return apiutil.body_json(r)["data"]


def wait_until(check, timeout=20, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"{what} did not hold within {timeout}s")


def throwaway_ca(directory):
    """A CA made with the openssl CLI, and a server certificate it signed for
    127.0.0.1 and localhost. Returns (ca.pem, server ssl.SSLContext)."""
    d = Path(directory)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=crmd test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "srv.key", "-out", "srv.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext.cnf", "-out", "srv.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    return d / "ca.pem", ctx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
