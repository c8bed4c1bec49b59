"""A request line in absolute form (RFC 7230 5.3.2: "GET http://host/leads/
HTTP/1.1", which a server must accept) is routed like its path, query
included; the authority chooses nothing (issue 9)."""

import http.client
import json

import pytest

from apiutil import TIMEOUT, check_answer


def send(server, app, method, target, body=None):
    """Sends target verbatim on the request line; returns (status, parsed body)."""
    c = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {app.token}", "AppId": app.key}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        c.request(method, target, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        check_answer(f"{server.host}:{server.port}", method, target, r.status, dict(r.getheaders()), data)
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


@pytest.mark.parametrize("prefix", ["http://crmd.example", "HTTP://localhost:8080", "https://x"])
def test_absolute_form_is_routed_like_its_path(server, app, prefix):
    status, body = send(server, app, "POST", prefix + "/leads/", {"lead": {"name": "abs"}})
    assert status == 201, body
    lead_id = body["data"]["id"]
    status, body = send(server, app, "GET", f"{prefix}/leads/{lead_id}")
    assert status == 200 and body["data"]["attributes"]["name"] == "abs", body
    status, body = send(server, app, "GET", prefix + "/leads?records=1&page=1")
    assert status == 200 and body["meta"]["records"] == 1, body
    status, body = send(server, app, "GET", prefix + "/leads?page=0")
    assert status == 422 and body["errors"][0]["source"]["parameter"] == "page", body


def test_absolute_form_without_a_path_is_the_root(server, app):
    # The root is the board's page (tests/api/test_board.py), a route of its own.
    for target in ("http://host", "http://host?x=1"):
        status, body = send(server, app, "POST", target, {})
        assert status == 405 and body["errors"][0]["code"] == "method_not_allowed", body


def test_a_path_that_only_looks_like_a_scheme_is_not_cut(server, app):
    status, body = send(server, app, "GET", "/http://host/leads")
    assert status == 404, body
