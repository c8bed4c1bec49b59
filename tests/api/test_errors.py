"""Routing errors (404/405, decided before credentials) and the error body shape."""

import uuid

import pytest
import requests

from apiutil import assert_error, assert_status, body_json


def allow_set(resp):
    allow = resp.headers.get("Allow")
    assert allow, f"405 without Allow header: {resp.headers}"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


def test_healthz_needs_no_credentials(anon):
    r = anon.get("/healthz")
    assert_status(r, 200)


@pytest.mark.parametrize("path", ["/nope", "/lead", "/leadsx", "/leads-x/",
                                  "/healthz/x", "/api/leads", "/LEADS",
                                  # The fixed words are no lead ids (contract-notes.md):
                                  "/leads/trash", "/leads/trash/", "/leads/summary/follows",
                                  "/leads/import/history", "/leads/batch/follows/x",
                                  "/leads/trash/follows/x"])
@pytest.mark.parametrize("with_creds", [False, True])
def test_unknown_path_is_404(server, app, path, with_creds):
    c = app if with_creds else server.client()
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        r = c.request(method, path)
        assert_error(r, 404, "not_found")
        assert "Allow" not in r.headers


@pytest.mark.parametrize("with_creds", [False, True])
def test_too_deep_paths_are_404(server, app, with_creds):
    c = app if with_creds else server.client()
    lead_id, follow_id = str(uuid.uuid4()), str(uuid.uuid4())
    for path in (f"/leads/{lead_id}/follows/{follow_id}/x",
                 f"/leads/{lead_id}/other",
                 f"/leads/{lead_id}/follows/{follow_id}/follows",
                 f"/leads/{lead_id}/x/y"):
        assert_error(c.get(path), 404, "not_found")


@pytest.mark.parametrize("with_creds", [False, True])
def test_post_healthz_is_405(server, app, with_creds):
    c = app if with_creds else server.client()
    r = c.post("/healthz", {"x": 1})
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in allow_set(r)


@pytest.mark.parametrize("with_creds", [False, True])
def test_405_with_allow_on_every_route(server, app, with_creds):
    c = app if with_creds else server.client()
    lid, fid = str(uuid.uuid4()), str(uuid.uuid4())
    cases = [
        ("DELETE", "/leads/", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("DELETE", "/leads", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("PUT", "/leads/", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("PATCH", "/leads/", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("PATCH", f"/leads/{lid}", {"GET", "PUT", "DELETE"}, {"POST"}),
        ("PATCH", f"/leads/{lid}/", {"GET", "PUT", "DELETE"}, {"POST"}),
        ("POST", f"/leads/{lid}", {"GET", "PUT", "DELETE"}, {"POST"}),
        ("DELETE", f"/leads/{lid}/follows", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("PUT", f"/leads/{lid}/follows/", {"GET", "POST"}, {"DELETE", "PUT"}),
        ("PATCH", f"/leads/{lid}/follows/{fid}", {"GET", "PUT", "DELETE"}, {"POST"}),
        ("POST", f"/leads/{lid}/follows/{fid}/", {"GET", "PUT", "DELETE"}, {"POST"}),
        ("DELETE", "/healthz", {"GET"}, {"POST"}),
    ]
    for method, path, must, must_not in cases:
        r = c.request(method, path, {"lead": {"name": "x"}} if method in ("POST", "PUT",
                                                                         "PATCH") else None)
        assert_error(r, 405, "method_not_allowed")
        allowed = allow_set(r)
        assert must <= allowed, (method, path, allowed)
        assert not (must_not & allowed), (method, path, allowed)


def test_405_changes_nothing(app):
    a = app.create_lead(name="Same")
    r = app.request("PATCH", f"/leads/{a['id']}", {"lead": {"name": "Changed"}})
    assert_error(r, 405, "method_not_allowed")
    assert app.get_lead(a["id"])["attributes"]["name"] == "Same"
    assert_error(app.delete("/leads/"), 405, "method_not_allowed")
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 1


def test_not_a_uuid_id(anon, app):
    for path in ("/leads/not-a-uuid", "/leads/not-a-uuid/", "/leads/lead-uuid-123/follows",
                 f"/leads/{uuid.uuid4()}/follows/not-a-uuid"):
        assert_error(anon.get(path), 401, "unauthorized")
        assert_error(app.get(path), 404, "not_found")
    assert_error(app.put("/leads/not-a-uuid", {"lead": {"name": "x"}}), 404, "not_found")
    assert_error(app.delete("/leads/not-a-uuid"), 404, "not_found")
    assert_error(app.post("/leads/not-a-uuid/follows", {"follow": {"title": "x"}}), 404,
                 "not_found")


def test_uppercase_uuid_finds_the_lead_and_renders_it_lowercase(app):
    # RFC 4122: a UUID's hex digits are read in either case, so an uppercase
    # spelling names the same lead; the id rendered stays the canonical one.
    a = app.create_lead(name="Upper")
    assert a["id"] == a["id"].lower()
    r = app.get(f"/leads/{a['id'].upper()}")
    assert_status(r, 200)
    body = body_json(r)
    assert body["data"]["id"] == a["id"]
    assert body["data"]["attributes"]["unique_id"] == a["id"]
    assert body["data"]["attributes"]["name"] == "Upper"


def test_not_found_error_shape(app):
    r = app.get(f"/leads/{uuid.uuid4()}")
    errs = assert_error(r, 404, "not_found", n=1)
    assert set(errs[0]) >= {"status", "code", "title", "detail"}
    assert errs[0]["status"] == "404"


def test_huge_and_odd_paths_do_not_break_the_server(server, app):
    for path in ("/leads/" + "a" * 5000, "/leads/%00", "/leads/%2e%2e/healthz",
                 "/leads/" + str(uuid.uuid4()) + "%2F", "//leads//"):
        r = requests.get(server.base_url + path, headers=app.headers, timeout=10,
                         allow_redirects=False)
        assert r.status_code < 500 and not (300 <= r.status_code < 400), (path, r.status_code)
    assert_status(app.get("/leads/"), 200)


def test_query_string_does_not_change_routing(anon, app):
    assert_status(anon.get("/healthz?x=1"), 200)
    assert_error(anon.get("/nope?x=1"), 404, "not_found")
    assert_status(app.get("/leads?page=1"), 200)
    assert_status(app.get("/leads/?page=1&records=20"), 200)


# extensions.md, "Order of checks on a write": route, credentials, the resource
# the path names (404), If-Match (412), then the body (400/413/415/422). A body
# with problems sent to a lead or follow that is not there is a 404, with or
# without If-Match, and the same body sent to one that is there is its 4xx.
BAD_BODIES = [
    ("{", "application/json", 400),
    ('{"lead":{"stage":"x"},"follow":{"title":""}}', "application/json", 422),
    ("x", "text/plain", 415),
]


@pytest.mark.parametrize("raw, ctype, status", BAD_BODIES)
def test_a_missing_resource_is_404_before_the_body_is_judged(app, raw, ctype, status):
    lead = app.create_lead(name="Here")
    follow = app.create_follow(lead["id"])
    missing = str(uuid.uuid4())
    gone = app.create_lead(name="Trashed")
    assert_status(app.delete(f"/leads/{gone['id']}"), 204)
    writes = [
        ("PUT", f"/leads/{missing}/", f"/leads/{lead['id']}/"),
        ("PUT", f"/leads/{gone['id']}", f"/leads/{lead['id']}"),
        ("POST", f"/leads/{missing}/follows", f"/leads/{lead['id']}/follows"),
        ("PUT", f"/leads/{lead['id']}/follows/{missing}", f"/leads/{lead['id']}/follows/{follow['id']}"),
        ("PUT", f"/leads/{missing}/follows/{follow['id']}", f"/leads/{lead['id']}/follows/{follow['id']}"),
    ]
    for method, nowhere, there in writes:
        for headers in (None, {"If-Match": '"stale"'}):
            if method == "POST" and headers:
                continue
            r = app.request(method, nowhere, raw=raw, content_type=ctype, headers=headers)
            assert_error(r, 404, "not_found")
        r = app.request(method, there, raw=raw, content_type=ctype)
        assert_error(r, status)
        r = app.request(method, there, raw=raw, content_type=ctype, headers={"If-Match": '"stale"'})
        assert_error(r, 412 if method == "PUT" else status)
    assert app.get_lead(lead["id"])["attributes"]["name"] == "Here"
    assert_status(app.get(f"/leads/{gone['id']}"), 404)
