"""One request log line per request on the server's stderr: method, path,
status; never the token."""

import re
import time
import uuid

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
