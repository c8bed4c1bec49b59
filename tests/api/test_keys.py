"""Signing keys: kids, `crmd key rotate/list/retire`, GET /.well-known/jwks.json,
copying keys, and tokens of an external identity provider (--jwks-file,
--jwks-url) pinned to RS256 or ES256 by their key."""

import functools
import http.server
import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from apiutil import (App, RsaKey, app_create, b64u, b64u_dec, find_server_key, hs256_signer,
                     jwt_compact, jwt_parts, now_s, openssl, run_crmd, token_issue)

# A rotation reaches running servers within a second or two (crmd reads the
# keys every second); a loaded 2-core CI machine, a sanitized build
# above all, can delay that poll and the twelve connections every_thread makes,
# so eventually() waits this long before it fails (as test_admin's
# PROPAGATION_S + LOAD_SLACK_S). It returns at the first success: no slower
# when it passes, and still under the 10 s a hanging fetch of the provider's
# keys would hold a poll that waited for it.
PICKUP_S = 6


def get_leads(base_url, key, token):
    return requests.get(f"{base_url}/leads/", timeout=10,
                        headers={"Authorization": f"Bearer {token}", "AppId": key})


def key_list(db):
    p = run_crmd("key", "list", "--db", f"sqlite:{db}", check=True)
    lines = p.stdout.splitlines()
    assert lines[0].split("\t") == ["kid", "state", "created_at", "signed_until", "retired_at"]
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def rotate(db):
    p = run_crmd("key", "rotate", "--db", f"sqlite:{db}", check=True)
    kid = p.stdout.strip()
    assert len(kid) == 16 and all(c in "0123456789abcdef" for c in kid), p.stdout
    return kid


def eventually(check, timeout=PICKUP_S):
    """Calls check() until it returns true or timeout passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        ok = check()
        if ok or time.monotonic() > deadline:
            return ok
        time.sleep(0.1)


def every_thread(srv, key, token, want, tries=12):
    """The status of `tries` requests, each on its own connection (so that
    both server threads answer some): all must be want."""
    return all(get_leads(srv.base_url, key, token).status_code == want for _ in range(tries))


def modulus_b64u(key):
    text = openssl("rsa", "-in", key.path, "-noout", "-modulus").decode().strip()
    return b64u(bytes.fromhex(text.split("=", 1)[1]))


# ---------------------------------------------------------------- crmd's own keys

def test_rotation_reaches_running_servers_and_old_tokens_still_verify(make_server):
    srv = make_server(threads=2)
    key, t1 = app_create(srv.db)
    kid1 = jwt_parts(t1)[0]["kid"]
    assert [k["kid"] for k in key_list(srv.db)] == [kid1]
    assert key_list(srv.db)[0]["state"] == "signing"

    kid2 = rotate(srv.db)
    assert kid2 != kid1
    t2 = token_issue(srv.db, key)
    assert jwt_parts(t2)[0]["kid"] == kid2
    assert eventually(lambda: every_thread(srv, key, t2, 200)), "the new key never verified"
    assert every_thread(srv, key, t1, 200), "a token of the older key stopped verifying"

    keys = {k["kid"]: k for k in key_list(srv.db)}
    assert keys[kid1]["state"] == "verifying" and keys[kid2]["state"] == "signing", keys
    jwks = requests.get(f"{srv.base_url}/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200
    assert jwks.headers["Content-Type"].startswith("application/json")
    published = {k["kid"]: k for k in jwks.json()["keys"]}
    assert set(published) == {kid1, kid2}
    for k in published.values():
        assert (k["kty"], k["alg"], k["use"], k["e"]) == ("RSA", "RS256", "sig", "AQAB"), k
    server_key = find_server_key(srv.db, t2, srv.workdir)
    if server_key is not None:
        assert published[kid2]["n"] == modulus_b64u(server_key)


def test_jwks_needs_no_credentials_and_ignores_the_query(anon):
    r = anon.get("/.well-known/jwks.json?x=1", auth=False)
    assert r.status_code == 200
    assert len(r.json()["keys"]) >= 1


def test_tokens_name_their_key(app, server, tmp_path):
    """Verification picks the key by kid: no kid, or an unknown one, is a 401."""
    key = find_server_key(server.db, app.token, tmp_path)
    if key is None:
        pytest.skip("the server's key is not readable from the test's database")
    hdr, claims, _ = jwt_parts(app.token)
    assert get_leads(server.base_url, app.key, jwt_compact(hdr, claims, key.sign)).status_code == 200
    for bad in ({"alg": "RS256", "typ": "JWT"}, dict(hdr, kid="0000000000000000"), dict(hdr, kid="")):
        r = get_leads(server.base_url, app.key, jwt_compact(bad, claims, key.sign))
        assert r.status_code == 401, (bad, r.status_code)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_retire_refuses_the_signing_key_and_live_tokens_without_force(make_server):
    srv = make_server(threads=2)
    key, t1 = app_create(srv.db)
    kid1 = jwt_parts(t1)[0]["kid"]
    p = run_crmd("key", "retire", kid1, "--db", f"sqlite:{srv.db}")
    assert p.returncode == 1 and "rotate" in p.stderr, p.stderr
    kid2 = rotate(srv.db)
    p = run_crmd("key", "retire", kid1, "--db", f"sqlite:{srv.db}")
    assert p.returncode == 1 and "--force" in p.stderr, p.stderr
    assert get_leads(srv.base_url, key, t1).status_code == 200
    run_crmd("key", "retire", kid1, "--force", "--db", f"sqlite:{srv.db}", check=True)
    assert eventually(lambda: every_thread(srv, key, t1, 401)), "a retired key's token still verifies"
    keys = {k["kid"]: k for k in key_list(srv.db)}
    assert keys[kid1]["state"] == "retired" and keys[kid1]["retired_at"] != "-"
    kids = [k["kid"] for k in requests.get(f"{srv.base_url}/.well-known/jwks.json", timeout=10).json()["keys"]]
    assert kids == [kid2]
    assert run_crmd("key", "retire", "nosuchkid", "--db", f"sqlite:{srv.db}").returncode == 1


def test_cursors_outlive_a_rotation_but_not_their_keys_retirement(make_server):
    """A cursor's MAC is keyed by a secret of the signing key: one given
    before `crmd key rotate` still reads afterwards (its key still
    verifies), new ones are made with the new key, and retiring the old key
    retires its cursors too."""
    srv = make_server(threads=1)
    key, t1 = app_create(srv.db)
    h = {"Authorization": f"Bearer {t1}", "AppId": key}
    for name in ("a", "b", "c"):
        r = requests.post(f"{srv.base_url}/leads/", json={"lead": {"name": name}}, headers=h, timeout=10)
        assert r.status_code == 201, r.text

    def page(cursor=None, token=t1):
        q = {"sort": "name", "records": 1} | ({"cursor": cursor} if cursor else {})
        return requests.get(f"{srv.base_url}/leads/", params=q, timeout=10,
                            headers={"Authorization": f"Bearer {token}", "AppId": key})

    old = page().json()["meta"]["nextCursor"]
    kid1 = jwt_parts(t1)[0]["kid"]
    rotate(srv.db)
    t2 = token_issue(srv.db, key)
    assert eventually(lambda: get_leads(srv.base_url, key, t2).status_code == 200), "no new key"
    r = page(old)
    assert r.status_code == 200 and [d["attributes"]["name"] for d in r.json()["data"]] == ["b"], r.text
    new = r.json()["meta"]["nextCursor"]
    assert [d["attributes"]["name"] for d in page(new, t2).json()["data"]] == ["c"]
    first = page().json()["meta"]["nextCursor"]
    assert first != old, "a cursor made after the rotation is keyed by the new key"
    run_crmd("key", "retire", kid1, "--force", "--db", f"sqlite:{srv.db}", check=True)
    assert eventually(lambda: page(old, t2).status_code == 422), "the retired key's cursor still reads"
    assert page(first, t2).status_code == 200


def test_a_key_whose_tokens_expired_stops_verifying(tmp_path):
    db = tmp_path / "k.db"
    key, _ = app_create(db)
    short = token_issue(db, key, ttl="1s")
    # The first key's tokens last 30 days (app create), so rotate twice: the
    # middle key signed only the 1-second token.
    rotate(db)
    mid = token_issue(db, key, ttl="1s")
    mid_kid = jwt_parts(mid)[0]["kid"]
    rotate(db)
    time.sleep(2.1)
    states = {k["kid"]: k["state"] for k in key_list(db)}
    assert states[mid_kid] == "expired", states
    assert states[jwt_parts(short)[0]["kid"]] == "verifying", states


def test_copy_moves_every_key(tmp_path, server):
    src = tmp_path / "src.db"
    key, t1 = app_create(src)
    rotate(src)
    rotate(src)
    before = key_list(src)
    dst = tmp_path / "dst.db"
    p = run_crmd("copy", "--from", f"sqlite:{src}", "--to", f"sqlite:{dst}", check=True)
    # The report names both the issued tokens (app create's) and the keys.
    assert "1 issued tokens, 0 revoked tokens, 3 signing keys" in p.stdout, p.stdout
    assert "now holds 1 apps, 0 leads, 0 follows, 1 issued tokens, 0 revoked tokens, 3 signing keys" \
        in p.stdout, p.stdout
    after = key_list(dst)
    assert [(k["kid"], k["state"], k["signed_until"]) for k in after] == \
        [(k["kid"], k["state"], k["signed_until"]) for k in before]
    # The copy knows the token it holds the record of.
    run_crmd("token", "revoke", jwt_parts(t1)[1]["jti"], "--db", f"sqlite:{dst}", check=True)


# ---------------------------------------------------------------- an identity provider

def der_to_raw(der):
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JWS's r || s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class EcKey:
    def __init__(self, directory):
        self.path = str(Path(directory) / f"ec-{uuid.uuid4().hex[:8]}.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.path)

    def sign_der(self, data):
        return openssl("dgst", "-sha256", "-sign", self.path, input=data)

    def sign(self, data):
        return der_to_raw(self.sign_der(data))

    def jwk(self, kid):
        point = openssl("pkey", "-in", self.path, "-pubout", "-outform", "DER")[-65:]
        assert point[0] == 4
        return {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": b64u(point[1:33]), "y": b64u(point[33:])}


def rsa_jwk(key, kid, **extra):
    return dict({"kty": "RSA", "kid": kid, "n": modulus_b64u(key), "e": "AQAB"}, **extra)


ISS, AUD = "https://idp.example", "crmd-api"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    d = tmp_path_factory.mktemp("idp")
    rsa, ec, small = RsaKey.generate(d), EcKey(d), d / "small.pem"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(small))
    keys = [rsa_jwk(rsa, "idp-rsa", use="sig", alg="RS256"), ec.jwk("idp-ec"),
            {"kty": "oct", "kid": "idp-hmac", "k": b64u(b"secret")},
            rsa_jwk(RsaKey(small), "idp-small")]
    path = d / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return {"rsa": rsa, "ec": ec, "path": path, "dir": d}


def idp_claims(app_, **over):
    c = {"iss": ISS, "aud": [AUD, "other"], "sub": "user-1", "tenant": app_.key,
         "iat": now_s(), "exp": now_s() + 600, "jti": f"idp-{uuid.uuid4().hex}"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


@pytest.fixture(scope="module")
def idp_server(idp, tmp_path_factory):
    from conftest import Server
    srv = Server(tmp_path_factory.mktemp("idp-srv"), threads=2, extra_args=[
        "--jwks-file", str(idp["path"]), "--app-claim", "tenant",
        "--jwt-issuer", ISS, "--jwt-audience", AUD])
    srv.start()
    yield srv
    srv.stop()


def test_idp_tokens_rs256_and_es256_are_accepted(idp, idp_server):
    app = idp_server.new_app()
    for kid, alg, key in (("idp-rsa", "RS256", idp["rsa"]), ("idp-ec", "ES256", idp["ec"])):
        tok = jwt_compact({"alg": alg, "typ": "JWT", "kid": kid}, idp_claims(app), key.sign)
        r = get_leads(idp_server.base_url, app.key, tok)
        assert r.status_code == 200, (kid, r.status_code, r.text)
    # crmd's own tokens still work, with their "app" claim.
    assert get_leads(idp_server.base_url, app.key, app.token).status_code == 200
    assert "2 of the identity provider's" in idp_server.stderr_text()
    assert "idp-hmac" in idp_server.stderr_text() and "idp-small" in idp_server.stderr_text()


def test_idp_forgeries_are_refused(idp, idp_server):
    app = idp_server.new_app()
    rsa, ec = idp["rsa"], idp["ec"]
    other = RsaKey.generate(idp["dir"])
    claims = idp_claims(app)
    forged = {
        "alg none": jwt_compact({"alg": "none", "kid": "idp-rsa"}, claims, None),
        "HS256 with the RSA key's public text": jwt_compact(
            {"alg": "HS256", "kid": "idp-rsa"}, claims, hs256_signer(rsa.public_pem())),
        "HS256 on the HMAC JWK": jwt_compact({"alg": "HS256", "kid": "idp-hmac"}, claims,
                                             hs256_signer(b"secret")),
        "RS256 header on the EC key": jwt_compact({"alg": "RS256", "kid": "idp-ec"}, claims, rsa.sign),
        "ES256 header on the RSA key": jwt_compact({"alg": "ES256", "kid": "idp-rsa"}, claims, ec.sign),
        "RS512 header": jwt_compact({"alg": "RS512", "kid": "idp-rsa"}, claims, rsa.sign),
        "another key's signature": jwt_compact({"alg": "RS256", "kid": "idp-rsa"}, claims, other.sign),
        "ES256 as DER, not r||s": jwt_compact({"alg": "ES256", "kid": "idp-ec"}, claims, ec.sign_der),
        "a key under 2048 bits": jwt_compact({"alg": "RS256", "kid": "idp-small"}, claims, rsa.sign),
        "no kid": jwt_compact({"alg": "RS256"}, claims, rsa.sign),
        "wrong issuer": jwt_compact({"alg": "RS256", "kid": "idp-rsa"},
                                    idp_claims(app, iss="https://evil.example"), rsa.sign),
        "wrong audience": jwt_compact({"alg": "RS256", "kid": "idp-rsa"},
                                      idp_claims(app, aud="someone-else"), rsa.sign),
        "no app claim": jwt_compact({"alg": "RS256", "kid": "idp-rsa"},
                                    idp_claims(app, tenant=None, app=app.key), rsa.sign),
        "expired": jwt_compact({"alg": "RS256", "kid": "idp-rsa"},
                               idp_claims(app, exp=now_s() - 5), rsa.sign),
    }
    for what, tok in forged.items():
        r = get_leads(idp_server.base_url, app.key, tok)
        assert r.status_code == 401, (what, r.status_code, r.text)
    # A flipped bit in a good ES256 signature.
    good = jwt_compact({"alg": "ES256", "kid": "idp-ec"}, claims, ec.sign)
    h, p, s = good.split(".")
    sig = bytearray(b64u_dec(s))
    sig[5] ^= 1
    assert get_leads(idp_server.base_url, app.key, f"{h}.{p}.{b64u(bytes(sig))}").status_code == 401
    # Another app's key with a valid token: 403, as for crmd's own tokens.
    app2 = idp_server.new_app()
    assert get_leads(idp_server.base_url, app2.key, good).status_code == 403


def test_idp_tokens_can_be_revoked(idp, idp_server):
    app = idp_server.new_app()
    claims = idp_claims(app)
    tok = jwt_compact({"alg": "ES256", "kid": "idp-ec"}, claims, idp["ec"].sign)
    assert get_leads(idp_server.base_url, app.key, tok).status_code == 200
    db = f"sqlite:{idp_server.db}"
    # crmd never issued it, so it has no record of its id: refused without
    # --unrecorded (exit 1, nothing revoked), taken with it.
    p = run_crmd("token", "revoke", claims["jti"], "--db", db)
    assert p.returncode == 1 and "--unrecorded" in p.stderr and "identity provider" in p.stderr, p.stderr
    p = run_crmd("token", "revoke", claims["jti"], "--unrecorded", "--db", db, check=True)
    assert "revoked; running servers refuse it" in p.stderr, "the refused revocation recorded it: " + p.stderr
    assert eventually(lambda: every_thread(idp_server, app.key, tok, 401))


@pytest.mark.parametrize("text", ["not json", '{"keys": []}', '{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}'])
def test_an_unusable_jwks_file_stops_the_start(tmp_path, text):
    f = tmp_path / "jwks.json"
    f.write_text(text)
    p = run_crmd("serve", "--listen", "127.0.0.1:1", "--db", f"sqlite:{tmp_path / 'x.db'}",
                 "--jwks-file", str(f), timeout=30)
    assert p.returncode == 1 and "identity provider" in p.stderr, p.stderr


def test_jwks_url_is_fetched_and_refreshed(idp, make_server, tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    (served / "jwks.json").write_text(json.dumps({"keys": [rsa_jwk(idp["rsa"], "idp-rsa")]}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
        srv = make_server(threads=2, extra_args=["--jwks-url", url, "--jwks-refresh", "1",
                                                 "--app-claim", "tenant"])
        app = srv.new_app()
        claims = idp_claims(app)
        rs = jwt_compact({"alg": "RS256", "kid": "idp-rsa"}, claims, idp["rsa"].sign)
        es = jwt_compact({"alg": "ES256", "kid": "idp-ec"}, claims, idp["ec"].sign)
        assert get_leads(srv.base_url, app.key, rs).status_code == 200
        assert get_leads(srv.base_url, app.key, es).status_code == 401
        # The provider adds its EC key: picked up at the next refresh.
        (served / "jwks.json").write_text(json.dumps({"keys": [rsa_jwk(idp["rsa"], "idp-rsa"),
                                                               idp["ec"].jwk("idp-ec")]}))
        assert eventually(lambda: every_thread(srv, app.key, es, 200), timeout=5)
        # The provider goes away: the keys it gave stay.
        httpd.shutdown()
        time.sleep(1.5)
        assert every_thread(srv, app.key, rs, 200)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_jwks_url_is_https_or_this_machine_and_its_password_is_never_shown(tmp_path):
    # The provider's keys sign tokens for every app: fetched in the clear
    # only from this machine (the tests' providers), never across a network.
    db = f"sqlite:{tmp_path / 'x.db'}"
    for url in ("http://10.0.0.1/jwks.json", "http://idp.example/jwks.json", "ftp://127.0.0.1/jwks.json",
                "http://user:s3cret@192.0.2.1/jwks.json", "file:///etc/passwd", "jwks.json"):
        p = run_crmd("serve", "--listen", "127.0.0.1:1", "--db", db, "--jwks-url", url, timeout=30)
        assert p.returncode == 2, (url, p.returncode, p.stderr)
        assert "--jwks-url wants an https:// URL" in p.stderr, p.stderr
        assert "s3cret" not in p.stderr, p.stderr
    # Accepted, unreachable here: the start fails naming the URL, its
    # password masked.
    for url, shown in (("https://user:s3cret@127.0.0.1:9/jwks.json", "https://user:***@127.0.0.1:9/jwks.json"),
                       ("http://user:s3cret@127.0.0.1:9/jwks.json", "http://user:***@127.0.0.1:9/jwks.json"),
                       ("http://[::1]:9/jwks.json", "http://[::1]:9/jwks.json")):
        p = run_crmd("serve", "--listen", "127.0.0.1:1", "--db", db, "--jwks-url", url, timeout=30)
        assert p.returncode == 1, (url, p.returncode, p.stderr)
        assert f"cannot read the identity provider's keys from {shown}:" in p.stderr, p.stderr
        assert "s3cret" not in p.stderr, p.stderr


class ScriptedProvider:
    """An identity provider on 127.0.0.1 whose answer to each GET of its key
    set is answer(n), n counting from 1: the status to send (after whatever
    waiting answer does)."""

    def __init__(self, keys, answer):
        body = json.dumps({"keys": keys}).encode()
        count = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                count.append(1)
                self.send_response(answer(len(count)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.fetches = count
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_hanging_identity_provider_delays_neither_a_retirement_nor_the_stop(idp, make_server):
    """The provider's URL answers the first fetch, then holds every later
    one open (longer than a fetch's 10 s): the database's keys are still
    read every second, so a key retired while a fetch hangs stops verifying
    within the usual pickup, and SIGTERM ends the hanging fetch at once."""
    held, release = threading.Event(), threading.Event()

    def answer(n):
        if n > 1:
            held.set()
            release.wait(15)
        return 200

    idp_ = ScriptedProvider([rsa_jwk(idp["rsa"], "idp-rsa")], answer)
    try:
        srv = make_server(threads=2, extra_args=["--jwks-url", idp_.url, "--jwks-refresh", "1",
                                                 "--app-claim", "tenant"])
        key, t1 = app_create(srv.db)
        kid1 = jwt_parts(t1)[0]["kid"]
        rotate(srv.db)
        assert held.wait(10), "the provider was not fetched again"
        hung_at = time.monotonic()
        run_crmd("key", "retire", kid1, "--force", "--db", f"sqlite:{srv.db}", check=True)
        assert eventually(lambda: every_thread(srv, key, t1, 401)), \
            "a key retired while the provider hangs still verifies"
        assert len(idp_.fetches) >= 2, "the provider was fetched again"
        # A stop that waited for the hanging fetch would end when the fetch
        # does, 10 s after it began: the bound stays short of that, and is
        # 3 s at least (a sanitized build's exit is slower).
        started = time.monotonic()
        assert srv.stop() == 0
        bound = max(3.0, hung_at + 9.5 - started)
        assert time.monotonic() - started < bound, "the stop waited for the hanging fetch"
    finally:
        release.set()
        idp_.close()


@pytest.mark.waits
def test_a_failing_identity_provider_is_said_once_and_its_end_only_once_it_ends(idp, make_server):
    """The provider answers 500 after the first fetch: crmd says so once and
    keeps the keys it has; it says the keys are read again only after the
    provider answers again, not at the next second's poll, which has no
    fetch of its own (one every 2 s)."""
    failing = threading.Event()
    idp_ = ScriptedProvider([rsa_jwk(idp["rsa"], "idp-rsa")], lambda n: 500 if failing.is_set() else 200)
    try:
        srv = make_server(threads=2, extra_args=["--jwks-url", idp_.url, "--jwks-refresh", "2",
                                                 "--app-claim", "tenant"])
        failing.set()
        assert eventually(lambda: "cannot read the identity provider's keys" in srv.stderr_text(), timeout=6)
        time.sleep(3)  # another failed fetch, three more polls
        err = srv.stderr_text()
        assert err.count("cannot read the identity provider's keys") == 1, err
        assert "read again" not in err, err
        app = srv.new_app()
        tok = jwt_compact({"alg": "RS256", "kid": "idp-rsa"}, idp_claims(app), idp["rsa"].sign)
        assert get_leads(srv.base_url, app.key, tok).status_code == 200, "the last keys are kept"
        failing.clear()
        assert eventually(lambda: "identity provider's keys are read again" in srv.stderr_text(), timeout=6)
    finally:
        idp_.close()


def test_a_jwks_file_that_blocks_delays_neither_a_retirement_nor_the_stop(idp, make_server, tmp_path):
    """The provider's file becomes a FIFO (whose open waits for a writer):
    it is refused as no regular file, the last keys stay, the database's
    keys are still followed, and SIGTERM stops crmd at once."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk(idp["rsa"], "idp-rsa")]}))
    srv = make_server(threads=2, extra_args=["--jwks-file", str(jwks), "--app-claim", "tenant"])
    key, t1 = app_create(srv.db)
    kid1 = jwt_parts(t1)[0]["kid"]
    jwks.unlink()
    os.mkfifo(jwks)
    assert eventually(lambda: "cannot read the identity provider's keys" in srv.stderr_text()), srv.stderr_text()
    rotate(srv.db)
    run_crmd("key", "retire", kid1, "--force", "--db", f"sqlite:{srv.db}", check=True)
    assert eventually(lambda: every_thread(srv, key, t1, 401)), "a key retired while the file blocks still verifies"
    app = App(srv.base_url, key, t1)
    tok = jwt_compact({"alg": "RS256", "kid": "idp-rsa"}, idp_claims(app), idp["rsa"].sign)
    assert get_leads(srv.base_url, key, tok).status_code == 200, "the provider's last keys are kept"
    # A stop that waited for the FIFO's open would never end (srv.stop kills
    # it after 10 s: not 0); 8 s leaves a sanitized build's exit room.
    started = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - started < 8
