"""One request log line per request on the server's stderr: method, path,
status; never the token."""

import json
import re
import time
import uuid

import pytest
import requests

from apiutil import assert_status, token_issue


def wait_for_lines(server, marker, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in server.stderr_text().splitlines() if marker in ln]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_one_line_per_request_with_method_path_status(server, app):
    missing = str(uuid.uuid4())
    for _ in range(3):
        r = app.get(f"/leads/{missing}")
        assert r.status_code == 404
    lines = wait_for_lines(server, missing, 3)
    time.sleep(0.2)
    lines = [ln for ln in server.stderr_text().splitlines() if missing in ln]
    assert len(lines) == 3, lines
    for ln in lines:
        assert re.search(r"\bGET\b", ln), ln
        assert f"/leads/{missing}" in ln, ln
        assert re.search(r"\b404\b", ln), ln


def test_log_lines_for_create_update_delete(server, app):
    a = app.create_lead(name="logged")
    lid = a["id"]
    assert_status(app.put(f"/leads/{lid}", {"lead": {"name": "x"}}), 200)
    assert_status(app.delete(f"/leads/{lid}"), 204)
    lines = wait_for_lines(server, lid, 2)
    text = "\n".join(lines)
    assert any(re.search(r"\bPUT\b", ln) and re.search(r"\b200\b", ln) for ln in lines), text
    assert any(re.search(r"\bDELETE\b", ln) and re.search(r"\b204\b", ln) for ln in lines), text


def test_log_line_for_unauthenticated_and_unknown(server, anon):
    marker = "nope-" + uuid.uuid4().hex
    assert anon.get(f"/{marker}").status_code == 404
    assert anon.get(f"/leads/{marker}").status_code == 401
    lines = wait_for_lines(server, marker, 2)
    assert len(lines) == 2, lines
    assert any(re.search(r"\b404\b", ln) for ln in lines), lines
    assert any(re.search(r"\b401\b", ln) for ln in lines), lines


def test_token_never_logged(server, app):
    marker = str(uuid.uuid4())
    secret_tok = token_issue(server.db, app.key, subject="log-check")
    app.with_creds(token=secret_tok).get(f"/leads/{marker}")
    bogus = "Zm9vYmFy" + uuid.uuid4().hex + ".eyJhIjoxfQ.c2ln" + uuid.uuid4().hex
    app.get(f"/leads/{marker}", headers={"Authorization": f"Bearer {bogus}"})
    wait_for_lines(server, marker, 2)
    text = server.stderr_text()
    for tok in (secret_tok, app.token, bogus):
        for part in tok.split("."):
            if len(part) > 12:
                assert part not in text, "a token (or part of one) was logged"


def test_rejected_oversized_request_is_logged(server, app):
    from apiutil import MIB, raw_http
    marker = str(uuid.uuid4())
    path = f"/leads/{marker}/follows"
    body = b'{"follow":{"title":"x"}' + b" " * (MIB + 10) + b"}"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {app.token}\r\nAppId: {app.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    status, _, _ = raw_http(server.host, server.port, head, body)
    assert status == 413
    lines = wait_for_lines(server, marker, 1)
    assert len(lines) == 1, "no request log line for a 413"
    assert re.search(r"\bPOST\b", lines[0]) and re.search(r"\b413\b", lines[0]), lines[0]


# ---------------------------------------------------------------- request ids and line fields

ID_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")


def line_with(server, marker, timeout=3.0):
    lines = wait_for_lines(server, marker, 1, timeout)
    assert len(lines) == 1, lines
    return lines[0]


def test_a_valid_request_id_is_kept_everywhere(server, app, anon):
    rid = "req-" + uuid.uuid4().hex + ":a.b~c_d"
    missing = str(uuid.uuid4())
    r = app.get(f"/leads/{missing}", headers={"X-Request-Id": rid})
    assert r.status_code == 404
    assert r.headers["X-Request-Id"] == rid
    assert r.json()["meta"] == {"requestId": rid}
    ok = anon.get("/healthz", headers={"X-Request-Id": rid + "2"})
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == rid + "2"
    line = line_with(server, missing)
    assert f" id={rid} " in line, line
    assert " code=not_found " in line, line
    assert f" app={app.key} " in line, line
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 GET ", line), line


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "semi;colon", "é", "quote\"", "tab\tid"])
def test_an_invalid_request_id_is_replaced_never_refused(anon, bad):
    r = anon.get("/healthz", headers={"X-Request-Id": bad.encode("utf-8")})
    assert r.status_code == 200
    got = r.headers["X-Request-Id"]
    assert got != bad and ID_RE.match(got), got


def test_generated_request_ids_are_unique_and_in_every_error(server, anon):
    ids = set()
    with requests.Session() as s:
        for i in range(100):
            r = s.get(server.base_url + ("/healthz" if i % 2 else f"/nope{i}"))
            rid = r.headers["X-Request-Id"]
            assert ID_RE.match(rid), rid
            if r.status_code == 404:
                assert r.json()["meta"]["requestId"] == rid
            ids.add(rid)
    assert len(ids) == 100
    # 128 characters is the longest kept
    longest = "L" * 128
    assert anon.get("/healthz", headers={"X-Request-Id": longest}).headers["X-Request-Id"] == longest


def test_h2o_own_errors_carry_the_request_id(server, app):
    from apiutil import MIB, raw_http
    marker = str(uuid.uuid4())
    body = b" " * (MIB + 10)
    # with credentials that hold: the route and the credentials come first (a 401 without them)
    head = (f"POST /leads/{marker}/follows HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {app.token}\r\nAppId: {app.key}\r\n"
            f"X-Request-Id: big-{marker}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    status, headers, rest = raw_http(server.host, server.port, head, body)
    assert status == 413
    assert headers["x-request-id"] == f"big-{marker}"
    assert json.loads(rest)["meta"]["requestId"] == f"big-{marker}"
    line = line_with(server, marker)
    assert f"id=big-{marker} code=payload_too_large" in line, line


def test_user_agent_is_escaped_and_cut(server, anon):
    from apiutil import raw_http
    marker = "ua-" + uuid.uuid4().hex
    agent = b'evil "agent" \\ \t\xff ' + b"A" * 400
    head = (b"GET /" + marker.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + agent +
            b"\r\nConnection: close\r\n\r\n")
    status, _, _ = raw_http(server.host, server.port, head)
    assert status == 404
    line = line_with(server, marker)
    m = re.search(r' ua="(.*)"$', line)
    assert m, line
    ua = m.group(1)
    assert ua.startswith(r'evil \"agent\" \\ \x09\xff AAA'), ua
    assert ua.endswith("...") and len(ua) < 260, ua
    assert "\n" not in ua


def test_client_address_honours_trusted_proxies(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_TRUSTED_PROXY", "127.0.0.1/32")
    srv = make_server()
    marker = "xff-" + uuid.uuid4().hex
    r = requests.get(f"{srv.base_url}/{marker}", headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
    assert r.status_code == 404
    line = line_with(srv, marker)
    assert " 203.0.113.9 GET " in line, line


def test_json_log_format(make_server, monkeypatch, tmp_path):
    monkeypatch.setenv("CRMD_LOG_FORMAT", "json")
    srv = make_server()
    app = srv.new_app()
    marker = "json-" + uuid.uuid4().hex
    r = app.get(f"/leads/{marker}", headers={"X-Request-Id": "j-1", "User-Agent": 'a"b\\c'})
    assert r.status_code == 404
    from apiutil import raw_http
    raw_http(srv.host, srv.port, b"GET /" + marker.encode() + b"?\xfe HTTP/1.1\r\nHost: x\r\n"
             b"User-Agent: \t\xc3\xa9\r\nConnection: close\r\n\r\n")
    lines = wait_for_lines(srv, marker, 2)
    assert len(lines) == 2, lines
    # Threads write their lines out on their own: sort them by path.
    first, second = sorted((json.loads(ln) for ln in lines), key=lambda e: not e["path"].startswith("/leads"))
    assert first["method"] == "GET" and first["path"] == f"/leads/{marker}"
    assert first["status"] == 404 and first["code"] == "not_found"
    assert first["request_id"] == "j-1" and first["app"] == app.key
    assert first["user_agent"] == 'a"b\\c' and first["client"] == "127.0.0.1"
    assert isinstance(first["duration_ms"], (int, float)) and first["duration_ms"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first["time"])
    assert second["app"] is None and second["user_agent"] == "\u00c3\u00a9"
    assert second["path"].endswith("?\u00fe") and ID_RE.match(second["request_id"])
    # Every line of the log is JSON but the few start-up and shutdown lines
    # ("crmd: ...").
    text = srv.stderr_text()
    assert app.token.split(".")[2] not in text
    for ln in text.splitlines():
        if ln.startswith("{"):
            json.loads(ln)
        else:
            assert ln.startswith("crmd: "), f"a line of the log that is neither JSON nor crmd's own: {ln!r}"


def test_log_format_is_checked(tmp_path):
    from apiutil import run_crmd
    p = run_crmd("serve", "--log-format", "yaml", "--db", f"sqlite:{tmp_path}/x.db")
    assert p.returncode == 2 and "--log-format wants text or json" in p.stderr
