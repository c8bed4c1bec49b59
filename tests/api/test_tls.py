"""HTTPS (--tls-cert, --tls-key) with a throwaway certificate made here by
openssl: modern protocol versions and AEAD ciphers only, ALPN h2 only with
--http2, the key's mode checked like ssh does, and the certificate re-read
on SIGHUP (a failed reload keeps the old one)."""

import hashlib
import os
import shlex
import signal
import socket
import ssl
import subprocess
import time
import warnings

from pathlib import Path

import pytest
import requests

from apiutil import assert_status, crmd_bin, curl, run_crmd
from conftest import Server, environ, free_port


def make_cert(directory, name):
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


class TlsServer(Server):
    def __init__(self, workdir, cert, key, env=None):
        super().__init__(workdir, threads=2)
        self.cert, self.key = cert, key
        self.env = dict(env or {}, CRMD_TLS_CERT=str(cert), CRMD_TLS_KEY=str(key))
        self.ca = workdir / "ca.pem"

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.port}"

    def trust(self, *certs):
        self.ca.write_bytes(b"".join(c.read_bytes() for c in certs))
        os.environ["REQUESTS_CA_BUNDLE"] = str(self.ca)

    def start(self):
        self.trust(self.cert)
        with environ(self.env):
            return super().start()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return d, make_cert(d, "one"), make_cert(d, "two")


@pytest.fixture
def tls(tmp_path, certs):
    d, (cert, key), _ = certs
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    os.chmod(live_key, 0o600)
    started = []

    def make(**env):
        work = tmp_path / f"srv{len(started)}"
        work.mkdir()
        srv = TlsServer(work, live_cert, live_key, env)
        started.append(srv)
        return srv.start()
    yield make
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    for s in started:
        s.stop()


def handshake(port, cafile, alpn=None, **ctxopts):
    """Connects with TLS; returns (version, cipher, alpn, certificate DER)."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    for k, v in ctxopts.items():
        if k == "ciphers":
            ctx.set_ciphers(v)
        else:
            with warnings.catch_warnings():  # TLS 1.0 and 1.1 are asked for on purpose
                warnings.simplefilter("ignore", DeprecationWarning)
                setattr(ctx, k, v)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.cipher()[0], s.selected_alpn_protocol(), s.getpeercert(binary_form=True)


def fingerprint(cert_path):
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    return hashlib.sha256(der).hexdigest()


def test_https_serves_the_api(tls):
    srv = tls()
    r = requests.get(srv.base_url + "/healthz", timeout=10)
    assert_status(r, 200)
    assert r.headers["X-Request-Id"]
    app = srv.new_app()
    lead = app.create_lead(name="Over TLS")
    assert app.get_lead(lead["id"])["id"] == lead["id"]
    assert "listening on https://" in srv.stderr_text()
    # plain HTTP on the TLS port gets no HTTP answer
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=5)


def test_modern_versions_and_aead_ciphers_only(tls):
    srv = tls()
    version, cipher, _, _ = handshake(srv.port, srv.cert)
    assert version == "TLSv1.3"
    version, cipher, _, _ = handshake(srv.port, srv.cert, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    for opts in ({"maximum_version": ssl.TLSVersion.TLSv1_2, "ciphers": "ECDHE-ECDSA-AES128-SHA"},
                 {"maximum_version": ssl.TLSVersion.TLSv1_2, "ciphers": "AES128-GCM-SHA256"},
                 {"minimum_version": ssl.TLSVersion.TLSv1, "maximum_version": ssl.TLSVersion.TLSv1_1,
                  "ciphers": "ALL:@SECLEVEL=0"}):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(srv.port, srv.cert, **opts)
    assert requests.get(srv.base_url + "/healthz", timeout=10).status_code == 200


def test_alpn_offers_h2_only_with_http2(tls):
    srv = tls()
    assert handshake(srv.port, srv.cert, alpn=["h2", "http/1.1"])[2] == "http/1.1"
    assert handshake(srv.port, srv.cert, alpn=["h2"])[2] is None
    h2 = tls(CRMD_HTTP2="1")
    assert handshake(h2.port, h2.cert, alpn=["h2", "http/1.1"])[2] == "h2"
    _, version, status, _, body, err = curl("--cacert", h2.cert, "--http2", h2.base_url + "/readyz", timeout=20)
    assert (version, status) == ("2", 200), (version, status, body, err)


def wait_for_text(srv, text, n, timeout=10.0):
    """Waits (bounded) until srv's stderr holds text n times."""
    deadline = time.monotonic() + timeout
    while srv.stderr_text().count(text) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sighup_reloads_the_certificate(tls, certs):
    d, (cert1, _), (cert2, key2) = certs
    admin = free_port()
    srv = tls(CRMD_ADMIN_LISTEN=f"127.0.0.1:{admin}")
    srv.trust(cert1, cert2)
    assert handshake(srv.port, srv.ca)[3] == ssl.PEM_cert_to_DER_cert(cert1.read_text())
    kept = requests.Session()
    assert kept.get(srv.base_url + "/healthz", timeout=10).status_code == 200
    # new files, then SIGHUP: new connections get the new certificate
    srv.cert.write_bytes(cert2.read_bytes())
    srv.key.write_bytes(key2.read_bytes())
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while handshake(srv.port, srv.ca)[3] != ssl.PEM_cert_to_DER_cert(cert2.read_text()):
        assert time.monotonic() < deadline, "the new certificate was not served"
        time.sleep(0.1)
    assert "TLS certificate and key reloaded" in srv.stderr_text()
    # the connection opened before goes on
    assert kept.get(srv.base_url + "/healthz", timeout=10).status_code == 200
    # a reload that fails keeps what it had: a broken certificate, a key open to others
    # Each SIGHUP's outcome is waited for before the next (two signals
    # sent before crmd takes the first would be one).
    failed = "TLS reload failed, the old certificate stays"
    srv.cert.write_text("not a certificate\n")
    srv.proc.send_signal(signal.SIGHUP)
    wait_for_text(srv, failed, 1)
    srv.cert.write_bytes(cert1.read_bytes())
    os.chmod(srv.key, 0o640)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for_text(srv, failed, 2)
    assert srv.stderr_text().count(failed) == 2
    assert "chmod 600" in srv.stderr_text()
    assert handshake(srv.port, srv.ca)[3] == ssl.PEM_cert_to_DER_cert(cert2.read_text())
    assert srv.proc.poll() is None
    text = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=10).text
    assert 'crmd_tls_reloads_total{result="ok"} 1' in text
    assert 'crmd_tls_reloads_total{result="failed"} 2' in text
    kept.close()


def test_key_open_to_others_is_refused(tmp_path, certs):
    _, (cert, key), _ = certs
    loose = tmp_path / "loose.key"
    loose.write_bytes(key.read_bytes())
    os.chmod(loose, 0o644)
    p = run_crmd("serve", "--listen", f"127.0.0.1:{free_port()}", "--db", f"sqlite:{tmp_path}/x.db",
                 "--tls-cert", cert, "--tls-key", loose, timeout=20)
    assert p.returncode != 0
    assert "open to group or others (mode 0644): chmod 600 it" in p.stderr
    p = run_crmd("serve", "--tls-cert", cert, "--db", f"sqlite:{tmp_path}/x.db", timeout=20)
    assert p.returncode == 2 and "--tls-cert and --tls-key go together" in p.stderr
    wrong = tmp_path / "other.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(wrong)], check=True, capture_output=True, timeout=60)
    os.chmod(wrong, 0o600)
    p = run_crmd("serve", "--listen", f"127.0.0.1:{free_port()}", "--db", f"sqlite:{tmp_path}/x.db",
                 "--tls-cert", cert, "--tls-key", wrong, timeout=20)
    assert p.returncode != 0 and "does not match the certificate" in p.stderr


def test_a_key_or_certificate_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, certs):
    """A FIFO (or a device, or a hung mount) named as the key or the certificate held the open
    forever, in the thread that waits for the stop signals: only SIGKILL stopped crmd (outside
    review). Only a regular file is taken now, opened without waiting."""
    _, (cert, key), _ = certs
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo, 0o600)
    for c, k, what in ((cert, fifo, "the key"), (fifo, key, "the certificate"), (cert, tmp_path, "the key")):
        p = run_crmd("serve", "--listen", f"127.0.0.1:{free_port()}", "--db", f"sqlite:{tmp_path}/x.db",
                     "--tls-cert", c, "--tls-key", k, timeout=20)
        assert p.returncode == 1, p.stderr
        assert f"{what} " in p.stderr and "is not a regular file" in p.stderr, p.stderr


def on_a_terminal(*args):
    """Runs crmd with args on a terminal (script(1) gives it one); returns
    (exit code, what the terminal showed)."""
    cmd = " ".join(shlex.quote(str(a)) for a in (crmd_bin(),) + args)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout


def test_encrypted_pem_files_are_refused_without_asking_the_terminal(tmp_path, certs):
    """OpenSSL's default asks the terminal for an encrypted PEM's pass
    phrase, which would block the start (or a SIGHUP's reload): crmd stops
    instead, for the key, the certificate and the webhooks' CA file."""
    _, (cert, key), _ = certs
    locked = tmp_path / "locked.key"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret", "-out", str(locked)],
                   check=True, capture_output=True, timeout=60)
    os.chmod(locked, 0o600)
    serve = ("serve", "--listen", f"127.0.0.1:{free_port()}", "--db", f"sqlite:{tmp_path}/x.db")
    rc, shown = on_a_terminal(*serve, "--tls-cert", cert, "--tls-key", locked)
    assert rc != 0 and "pass phrase" in shown and "Enter PEM" not in shown, shown
    # A PEM whose headers say it is encrypted is asked for too, whatever it holds.
    lines = Path(cert).read_text().strip().splitlines()
    sealed = tmp_path / "sealed.crt"
    sealed.write_text("\n".join([lines[0], "Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-256-CBC," + "00" * 16, ""]
                                + lines[1:]) + "\n")
    rc, shown = on_a_terminal(*serve, "--tls-cert", sealed, "--tls-key", key)
    assert rc != 0 and "Enter PEM" not in shown, shown
    rc, shown = on_a_terminal(*serve, "--webhook-ca-file", sealed)
    assert rc != 0 and "Enter PEM" not in shown, shown


def make_chain(d):
    """A root, an intermediate it signs, and a leaf the intermediate signs; returns
    (root cert, leaf+intermediate chain file, leaf key)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (d / "ca.ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    (d / "leaf.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("req", "-x509", *ec, "-keyout", "root.key", "-out", "root.crt", "-days", "2", "-subj", "/CN=root",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "mid.key", "-out", "mid.csr", "-subj", "/CN=mid")
    run("x509", "-req", "-in", "mid.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial",
        "-out", "mid.crt", "-days", "2", "-extfile", "ca.ext")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "mid.crt", "-CAkey", "mid.key", "-CAcreateserial",
        "-out", "leaf.crt", "-days", "2", "-extfile", "leaf.ext")
    chain = d / "chain.crt"
    chain.write_bytes((d / "leaf.crt").read_bytes() + (d / "mid.crt").read_bytes())
    os.chmod(d / "leaf.key", 0o600)
    return d / "root.crt", chain, d / "leaf.key"


def test_the_certificate_file_s_chain_is_sent(tmp_path):
    """The certificates after the server's own in --tls-cert go with it, so a client
    that trusts only the root verifies the server; a file whose chain does not parse
    is refused at start."""
    root, chain, key = make_chain(tmp_path)
    srv = TlsServer(tmp_path, chain, key)
    srv.trust = lambda *certs: TlsServer.trust(srv, root)  # the root alone, at start too
    srv.start()
    try:
        assert requests.get(srv.base_url + "/healthz", timeout=10).status_code == 200
        assert handshake(srv.port, root)[0] == "TLSv1.3"
    finally:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        srv.stop()
    bad = tmp_path / "bad.crt"
    bad.write_bytes((tmp_path / "leaf.crt").read_bytes() + b"-----BEGIN CERTIFICATE-----\nnot base64!\n"
                    b"-----END CERTIFICATE-----\n")
    p = run_crmd("serve", "--listen", f"127.0.0.1:{free_port()}", "--db", f"sqlite:{tmp_path}/x.db",
                 "--tls-cert", bad, "--tls-key", key, timeout=20)
    assert p.returncode != 0 and "cannot read the certificate" in p.stderr, p.stderr
