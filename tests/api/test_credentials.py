"""Credentials that say two things at once (issue 9): different app keys in
AppId and X-Api-Key, or in two AppId (or X-Api-Key) headers, or two
different Authorization headers, are a 400; the same value twice is fine.
No one of them is picked, and nothing is written."""

import http.client
import json

import pytest

from apiutil import TIMEOUT, body_json, check_answer


def send(server, headers, method="GET", path="/leads/", body=None):
    """Sends headers (a list of (name, value), repeats kept) verbatim;
    returns (status, parsed body)."""
    c = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        c.putrequest(method, path)
        for name, value in headers:
            c.putheader(name, value)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        raw = r.read()
        check_answer(f"{server.host}:{server.port}", method, path, r.status, dict(r.getheaders()), raw)
        return r.status, (json.loads(raw) if raw else None)
    finally:
        c.close()


def bearer(app):
    return ("Authorization", f"Bearer {app.token}")


@pytest.mark.parametrize("names", [("AppId", "X-Api-Key"), ("X-Api-Key", "AppId"), ("AppId", "AppId"),
                                   ("X-Api-Key", "X-Api-Key"), ("appid", "APPID")])
def test_two_different_app_keys_are_a_400(server, app, app2, names):
    for first, second in ((app, app2), (app2, app)):
        status, body = send(server, [bearer(app), (names[0], first.key), (names[1], second.key)])
        assert status == 400, body
        assert body["errors"][0]["code"] == "bad_request"
        assert "app key" in body["errors"][0]["detail"]


@pytest.mark.parametrize("names", [("AppId", "X-Api-Key"), ("AppId", "AppId"), ("X-Api-Key", "X-Api-Key")])
def test_the_same_app_key_twice_is_fine(server, app, names):
    status, body = send(server, [bearer(app), (names[0], app.key), (names[1], app.key)])
    assert status == 200, body


def test_an_empty_second_app_key_is_a_different_one(server, app):
    status, body = send(server, [bearer(app), ("AppId", app.key), ("X-Api-Key", "")])
    assert status == 400, body


def test_two_different_authorization_headers_are_a_400(server, app, app2):
    status, body = send(server, [bearer(app), ("Authorization", f"Bearer {app2.token}"), ("AppId", app.key)])
    assert status == 400 and body["errors"][0]["code"] == "bad_request", body
    status, body = send(server, [bearer(app), bearer(app), ("AppId", app.key)])
    assert status == 200, body


def test_conflicting_credentials_write_nothing(server, app, app2):
    status, body = send(server, [bearer(app), ("AppId", app.key), ("X-Api-Key", app2.key)], method="POST",
                        body={"lead": {"name": "x"}})
    assert status == 400, body
    for a in (app, app2):
        assert body_json(a.get("/leads/"))["meta"]["totalRecords"] == 0


@pytest.mark.parametrize("pad", [" ", "\t", "  \t "])
def test_white_space_around_a_credentials_value_is_no_part_of_it(server, app, app2, pad):
    """RFC 9112 5.1: optional white space before and after a field's value is
    not part of it. An AppId, X-Api-Key or Authorization sent with a space
    after its value was a 401 ("Unknown app key", "malformed token"); other
    headers (If-Match, Content-Type) were read without it already."""
    for name in ("AppId", "X-Api-Key"):
        status, body = send(server, [bearer(app), (name, app.key + pad)])
        assert status == 200, body
    status, body = send(server, [("Authorization", f"Bearer {app.token}{pad}"), ("AppId", app.key)])
    assert status == 200, body
    # the same key with and without the white space is one key, not two
    status, body = send(server, [bearer(app), ("AppId", app.key + pad), ("X-Api-Key", app.key)])
    assert status == 200, body
    # and two different keys are still a 400, the white space aside
    status, body = send(server, [bearer(app), ("AppId", app.key + pad), ("X-Api-Key", app2.key + pad)])
    assert status == 400, body
