"""The receiver code of docs/webhooks.md, run as it is printed there: the
Python and the Node.js verify() each guard a small receiver that answers 204
to a delivery whose signature checks and 401 otherwise. Real deliveries of
crmd must get 204s (the delivery log says so); forged, tampered and stale
requests must get 401s."""

import hashlib
import hmac
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from apiutil import assert_status
from webhookutil import create_webhook, deliveries, wait_until

REPO = Path(__file__).resolve().parents[2]
# Node.js as make openapi-lint finds it (PATH), else Debian's.
NODE = shutil.which("node") or "/usr/bin/node"

PY_SERVER = '''
import http.server, os, sys

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(os.environ["SECRET"], self.headers.get("Crmd-Signature", ""), body)
        self.send_response(204 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
'''

NODE_SERVER = '''
const http = require("http");
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const ok = verify(process.env.SECRET, req.headers["crmd-signature"] || "", Buffer.concat(chunks));
    res.writeHead(ok ? 204 : 401, {"Content-Length": "0"});
    res.end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
'''


def snippet(lang):
    doc = (REPO / "docs/webhooks.md").read_text()
    blocks = [b for b in re.findall(r"```" + lang + r"\n(.*?)```", doc, re.S) if "def verify" in b
              or "function verify" in b]
    assert len(blocks) == 1, f"docs/webhooks.md must hold one {lang} verify"
    lines = [line for line in blocks[0].strip().splitlines() if line.strip()]
    assert len(lines) <= 10, f"the {lang} verification is {len(lines)} lines, not ten at most"
    return blocks[0]


def start_receiver(argv, code, secret, tmp_path, name):
    script = tmp_path / name
    script.write_text(code)
    p = subprocess.Popen([*argv, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"SECRET": secret, "PATH": "/usr/bin:/bin"})
    port = int(p.stdout.readline())
    return p, f"http://127.0.0.1:{port}/hook"


def signed(secret, body, t=None):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@pytest.mark.parametrize("lang", ["python", "js"])
def test_the_documented_verification_accepts_deliveries_and_refuses_forgeries(make_server, tmp_path, lang):
    srv = make_server(extra_args=["--webhook-allow-private", "--webhook-retry", "1s"])
    app = srv.new_app()
    # The secret is known only once the webhook exists; the receiver starts
    # after it, and the webhook is pointed at it.
    w = create_webhook(app, "http://127.0.0.1:9/placeholder", events=["lead.created", "lead.updated"],
                       active=False)
    secret = w["attributes"]["secret"]
    if lang == "python":
        argv, code, name = ["/usr/bin/python3"], snippet("python") + PY_SERVER, "receiver.py"
    else:
        argv, code, name = [NODE], snippet("js") + NODE_SERVER, "receiver.js"
    proc, url = start_receiver(argv, code, secret, tmp_path, name)
    try:
        assert_status(app.put(f"/webhooks/{w['id']}", {"webhook": {"url": url, "active": True}}), 200)
        lead = app.create_lead(name="Verified élan ✓")
        assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"value": "12.30"}}), 200)
        log = wait_until(lambda: len(d := deliveries(app, w["id"])) >= 2 and d, what="two deliveries")
        assert [a["attributes"]["status_code"] for a in log[:2]] == [204, 204], log
        body = b'{"id":"x","type":"lead.created"}'
        assert requests.post(url, data=body, headers={"Crmd-Signature": signed(secret, body)}).status_code == 204
        forged = [signed("whsec_wrong", body), signed(secret, body + b" "), signed(secret, body, t=int(time.time()) - 3600),
                  "t=abc,v1=00", "", "v1=" + "0" * 64]
        # Crafted headers (sent as Latin-1 bytes) must be refused, never
        # crash the receiver: a digit that is not ASCII, a v1 whose bytes
        # outnumber its characters, a t past int()'s digit limit.
        now = int(time.time())
        forged += ["t=²,v1=00", f"t={now},v1=" + "é" * 64, f"t={now},v1=ü", "t=" + "1" * 5000 + ",v1=00",
                   f"t=²{now},v1=" + signed(secret, body).split("v1=")[1]]
        for sig in forged:
            r = requests.post(url, data=body, headers={"Crmd-Signature": sig})
            assert r.status_code == 401, (sig[:80], r.status_code)
        r = requests.post(url, data=body, headers={"Crmd-Signature": signed(secret, body)})
        assert r.status_code == 204, "the receiver still runs"
    finally:
        proc.kill()
        proc.wait(10)
