"""CORS (--cors-origin): off by default; preflights from listed origins are
204s naming the path's methods, answered before credentials; answers to a
listed origin carry Access-Control-Allow-Origin (errors too); other origins
get nothing CORS."""

import uuid

import pytest
import requests

from apiutil import MIB, assert_error, assert_status, raw_http, run_crmd

ORIGIN = "https://app.example.com"
LOCAL = "http://localhost:3000"
ALLOW_HEADERS = {"authorization", "appid", "x-api-key", "content-type", "if-match", "if-none-match",
                 "idempotency-key", "x-request-id"}
EXPOSED = {"location", "etag", "x-request-id", "ratelimit-limit", "ratelimit-remaining",
           "ratelimit-reset", "retry-after", "idempotent-replayed"}


def words(value):
    return {w.strip().lower() for w in (value or "").split(",") if w.strip()}


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory):
    import os
    from conftest import Server
    old = os.environ.get("CRMD_CORS_ORIGIN")
    os.environ["CRMD_CORS_ORIGIN"] = f"{ORIGIN}, {LOCAL.upper()}"
    try:
        srv = Server(tmp_path_factory.mktemp("cors")).start()
    finally:
        if old is None:
            del os.environ["CRMD_CORS_ORIGIN"]
        else:
            os.environ["CRMD_CORS_ORIGIN"] = old
    yield srv
    assert srv.stop() == 0


def preflight(srv, path, origin=ORIGIN, method="POST", **extra):
    h = {"Origin": origin, "Access-Control-Request-Method": method,
         "Access-Control-Request-Headers": "authorization,appid,content-type"}
    h.update(extra)
    return requests.options(srv.base_url + path, headers=h, timeout=10)


def test_preflight_from_a_listed_origin(cors_server):
    r = preflight(cors_server, "/leads/")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in r.headers["Vary"]
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, OPTIONS"
    assert words(r.headers["Access-Control-Allow-Headers"]) == ALLOW_HEADERS
    assert r.headers["Access-Control-Max-Age"] == "3600"
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert r.headers["X-Request-Id"]
    lead = preflight(cors_server, f"/leads/{uuid.uuid4()}", method="PUT")
    assert lead.status_code == 204
    assert lead.headers["Access-Control-Allow-Methods"] == "GET, HEAD, PUT, DELETE, OPTIONS"
    # The finding routes: their own entries, not those of /leads/{id}.
    for path in ("/leads/summary", "/follows/", "/openapi.json"):
        r = preflight(cors_server, path, method="GET")
        assert r.status_code == 204, path
        assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS", path
    # The origin is matched without regard to case; it is echoed as sent.
    local = preflight(cors_server, "/leads", origin=LOCAL)
    assert local.status_code == 204 and local.headers["Access-Control-Allow-Origin"] == LOCAL


def test_preflight_of_an_unknown_path_or_origin_is_not_cors(cors_server):
    assert_error(preflight(cors_server, "/nope"), 404)
    for origin in ("https://evil.example.com", "https://app.example.com.evil.com", "null",
                   "https://app.example.com:443"):
        r = preflight(cors_server, "/leads/", origin=origin)
        assert_error(r, 405)
        assert "Access-Control-Allow-Origin" not in r.headers
        assert words(r.headers["Allow"]) == {"get", "head", "post", "options"}
    # OPTIONS that is not a preflight
    r = requests.options(cors_server.base_url + "/leads/", headers={"Origin": ORIGIN}, timeout=10)
    assert_error(r, 405)


def test_answers_to_a_listed_origin_can_be_read(cors_server):
    app = cors_server.new_app()
    ok = app.get("/leads/", headers={"Origin": ORIGIN})
    assert_status(ok, 200)
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert words(ok.headers["Access-Control-Expose-Headers"]) == EXPOSED
    assert "Origin" in ok.headers["Vary"]
    # errors too: no credentials, an unknown route, a body over the limit
    denied = app.get("/leads/", auth=False, headers={"Origin": ORIGIN})
    assert_error(denied, 401)
    assert denied.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert app.get("/nope", headers={"Origin": ORIGIN}).headers["Access-Control-Allow-Origin"] == ORIGIN
    body = b" " * (MIB + 10)
    for creds, want in (("", 401), (f"Authorization: Bearer {app.token}\r\nAppId: {app.key}\r\n", 413)):
        head = (f"POST /leads/ HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n{creds}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
        status, headers, _ = raw_http(cors_server.host, cors_server.port, head, body)
        assert status == want and headers["access-control-allow-origin"] == ORIGIN
    # another origin: nothing CORS but Vary
    other = app.get("/leads/", headers={"Origin": "https://evil.example.com"})
    assert_status(other, 200)
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Expose-Headers" not in other.headers
    assert "Origin" in other.headers["Vary"]


def test_cors_is_off_by_default(server):
    r = preflight(server, "/leads/")
    assert_error(r, 405)
    assert words(r.headers["Allow"]) == {"get", "head", "post"}
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Vary" not in r.headers
    assert "Access-Control-Allow-Origin" not in requests.get(
        server.base_url + "/healthz", headers={"Origin": ORIGIN}, timeout=10).headers


def test_any_origin(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_CORS_ORIGIN", "*")
    srv = make_server()
    r = preflight(srv, "/leads/", origin="https://anyone.example")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "https://anyone.example"
    # still only origins: a malformed one is not echoed
    bad = preflight(srv, "/leads/", origin="https://x y")
    assert bad.status_code == 405 and "Access-Control-Allow-Origin" not in bad.headers
    # an IPv6 literal is one, and only hex digits, colons and dots make one
    # (any bytes up to the ']' were echoed, review rv102)
    v6 = preflight(srv, "/leads/", origin="http://[::1]:8080")
    assert v6.status_code == 204 and v6.headers["Access-Control-Allow-Origin"] == "http://[::1]:8080"
    for odd in ("http://[<b> x]", "http://[]", "http://[::1", "http://[::1]x", "http://[fe80::1%eth0]"):
        bad = preflight(srv, "/leads/", origin=odd)
        assert bad.status_code == 405 and "Access-Control-Allow-Origin" not in bad.headers, odd


@pytest.mark.parametrize("value", ["example.com", "https://x.com/", "https://x.com/path", "ftp://x.com",
                                   "https://", "https://x.com:99999999", ",", "https://a.com,,"])
def test_bad_origins_are_refused_at_start(tmp_path, value):
    p = run_crmd("serve", "--cors-origin", value, "--db", f"sqlite:{tmp_path}/x.db", timeout=10)
    assert p.returncode == 2, p.stderr
    assert "--cors-origin" in p.stderr
