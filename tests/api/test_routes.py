"""Every route of the reference, with and without a trailing slash, no redirects."""

import uuid

import pytest

from apiutil import (assert_error, assert_status, body_json, check_exchange, check_follow,
                     check_lead, location_path)


@pytest.mark.parametrize("path", ["/leads", "/leads/"])
def test_list_leads(app, path):
    a = app.create_lead(name="Listed")
    r = app.get(path)
    assert_status(r, 200)
    body = body_json(r)
    assert [d["id"] for d in body["data"]] == [a["id"]]
    check_lead(body["data"][0], name="Listed")
    assert body["meta"]["totalRecords"] == 1
    assert body["meta"]["totalPages"] == 1


def test_list_same_with_and_without_slash(app):
    for _ in range(3):
        app.create_lead()
    r1, r2 = app.get("/leads"), app.get("/leads/")
    assert_status(r1, 200)
    assert_status(r2, 200)
    assert body_json(r1) == body_json(r2)


@pytest.mark.parametrize("path", ["/leads", "/leads/"])
def test_create_lead(app, path):
    r = app.post(path, {"lead": {"name": "Created", "stage": "contacted"}})
    assert_status(r, 201)
    data = body_json(r)["data"]
    check_lead(data, name="Created", stage="contacted", status="active")
    assert location_path(r) == f"/leads/{data['id']}"
    # Location leads to the same resource
    g = app.get(location_path(r))
    assert_status(g, 200)
    assert body_json(g)["data"]["attributes"] == data["attributes"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_get_lead(app, suffix):
    a = app.create_lead(name="Got", source="website")
    r = app.get(f"/leads/{a['id']}{suffix}")
    assert_status(r, 200)
    data = body_json(r)["data"]
    check_lead(data, name="Got", source="website")
    assert data["attributes"] == a["attributes"]


def test_get_lead_same_with_and_without_slash(app):
    a = app.create_lead(account_id=str(uuid.uuid4()))
    r1, r2 = app.get(f"/leads/{a['id']}"), app.get(f"/leads/{a['id']}/")
    assert_status(r1, 200)
    assert_status(r2, 200)
    assert body_json(r1) == body_json(r2)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_put_lead_partial_returns_full_resource(app, suffix):
    acc, con = str(uuid.uuid4()), str(uuid.uuid4())
    a = app.create_lead(name="Full", source="referral", account_id=acc, contact_id=con,
                        value=75000, stage="new", probability=20)
    r = app.put(f"/leads/{a['id']}{suffix}", {"lead": {"stage": "proposal"}})
    assert_status(r, 200)
    data = body_json(r)["data"]
    check_lead(data, unique_id=a["id"], name="Full", source="referral", account_id=acc,
               contact_id=con, value=75000, stage="proposal", probability=20, status="active",
               created_at=a["attributes"]["created_at"])
    assert app.get_lead(a["id"])["attributes"] == data["attributes"]


def test_put_lead_minimal_has_nulls(app):
    a = app.create_lead(name="Minimal")
    r = app.put(f"/leads/{a['id']}", {"lead": {"probability": 10}})
    assert_status(r, 200)
    check_lead(body_json(r)["data"], name="Minimal", probability=10, source=None,
               account_id=None, contact_id=None, value=None, stage="new", status="active")


@pytest.mark.parametrize("suffix", ["", "/"])
def test_delete_lead(app, suffix):
    a = app.create_lead()
    keep = app.create_lead()
    r = app.delete(f"/leads/{a['id']}{suffix}")
    assert_status(r, 204)
    assert r.content == b""
    assert_error(app.get(f"/leads/{a['id']}"), 404)
    assert_error(app.get(f"/leads/{a['id']}/"), 404)
    assert_error(app.delete(f"/leads/{a['id']}{suffix}"), 404)
    assert app.get_lead(keep["id"])["id"] == keep["id"]
    body = body_json(app.get("/leads/"))
    assert [d["id"] for d in body["data"]] == [keep["id"]]
    assert body["meta"]["totalRecords"] == 1


def test_delete_lead_deletes_its_follows(app):
    a = app.create_lead()
    other = app.create_lead()
    f1 = app.create_follow(a["id"])
    f2 = app.create_follow(a["id"])
    fo = app.create_follow(other["id"])
    assert_status(app.delete(f"/leads/{a['id']}"), 204)
    for f in (f1, f2):
        assert_error(app.get(f"/leads/{a['id']}/follows/{f['id']}"), 404)
    assert_error(app.get(f"/leads/{a['id']}/follows"), 404)
    assert_error(app.post(f"/leads/{a['id']}/follows", {"follow": {"title": "x"}}), 404)
    # the other lead's follow is untouched
    assert app.get_follow(other["id"], fo["id"])["id"] == fo["id"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_list_follows(app, suffix):
    a = app.create_lead()
    f = app.create_follow(a["id"], title="T1", due_date="2099-01-01T00:00:00Z")
    app.create_follow(app.create_lead()["id"])  # another lead's follow is not listed
    r = app.get(f"/leads/{a['id']}/follows{suffix}")
    assert_status(r, 200)
    body = body_json(r)
    assert [d["id"] for d in body["data"]] == [f["id"]]
    check_follow(body["data"][0], title="T1", status="pending",
                 due_date="2099-01-01T00:00:00.000Z")
    assert body["meta"]["totalRecords"] == 1
    assert body["meta"]["totalPages"] == 1


def test_list_follows_same_with_and_without_slash(app):
    a = app.create_lead()
    for i in range(3):
        app.create_follow(a["id"], title=f"F{i}")
    r1 = app.get(f"/leads/{a['id']}/follows")
    r2 = app.get(f"/leads/{a['id']}/follows/")
    assert_status(r1, 200)
    assert_status(r2, 200)
    assert body_json(r1) == body_json(r2)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_create_follow(app, suffix):
    a = app.create_lead()
    r = app.post(f"/leads/{a['id']}/follows{suffix}",
                 {"follow": {"title": "Schedule demo call", "description": "Demo",
                             "due_date": "2099-03-05T14:00:00Z"}})
    assert_status(r, 201)
    data = body_json(r)["data"]
    check_follow(data, title="Schedule demo call", description="Demo",
                 due_date="2099-03-05T14:00:00.000Z", status="pending")
    assert location_path(r) == f"/leads/{a['id']}/follows/{data['id']}"
    g = app.get(location_path(r))
    assert_status(g, 200)
    assert body_json(g)["data"]["attributes"] == data["attributes"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_get_follow(app, suffix):
    a = app.create_lead()
    f = app.create_follow(a["id"], title="Get me")
    r = app.get(f"/leads/{a['id']}/follows/{f['id']}{suffix}")
    assert_status(r, 200)
    data = body_json(r)["data"]
    check_follow(data, title="Get me", description=None, due_date=None, status="pending")
    assert data["attributes"] == f["attributes"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_put_follow_partial_returns_full_resource(app, suffix):
    a = app.create_lead()
    f = app.create_follow(a["id"], title="Keep", description="Old",
                          due_date="2099-02-28T17:00:00Z")
    r = app.put(f"/leads/{a['id']}/follows/{f['id']}{suffix}",
                {"follow": {"status": "completed", "description": "Proposal sent and received"}})
    assert_status(r, 200)
    data = body_json(r)["data"]
    check_follow(data, unique_id=f["id"], title="Keep", description="Proposal sent and received",
                 due_date="2099-02-28T17:00:00.000Z", status="completed",
                 created_at=f["attributes"]["created_at"])
    assert app.get_follow(a["id"], f["id"])["attributes"] == data["attributes"]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_delete_follow(app, suffix):
    a = app.create_lead()
    f = app.create_follow(a["id"])
    keep = app.create_follow(a["id"])
    r = app.delete(f"/leads/{a['id']}/follows/{f['id']}{suffix}")
    assert_status(r, 204)
    assert r.content == b""
    assert_error(app.get(f"/leads/{a['id']}/follows/{f['id']}"), 404)
    assert_error(app.delete(f"/leads/{a['id']}/follows/{f['id']}"), 404)
    body = body_json(app.get(f"/leads/{a['id']}/follows"))
    assert [d["id"] for d in body["data"]] == [keep["id"]]
    # the lead itself remains
    assert app.get_lead(a["id"])["id"] == a["id"]


def test_unknown_lead_ids_are_404(app):
    missing = str(uuid.uuid4())
    assert_error(app.get(f"/leads/{missing}"), 404)
    assert_error(app.put(f"/leads/{missing}", {"lead": {"name": "x"}}), 404)
    assert_error(app.delete(f"/leads/{missing}"), 404)
    assert_error(app.get(f"/leads/{missing}/follows"), 404)
    assert_error(app.post(f"/leads/{missing}/follows", {"follow": {"title": "x"}}), 404)


def test_unknown_follow_ids_are_404(app):
    a = app.create_lead()
    missing = str(uuid.uuid4())
    assert_error(app.get(f"/leads/{a['id']}/follows/{missing}"), 404)
    assert_error(app.put(f"/leads/{a['id']}/follows/{missing}", {"follow": {"title": "x"}}), 404)
    assert_error(app.delete(f"/leads/{a['id']}/follows/{missing}"), 404)


def test_follow_under_the_wrong_lead_is_404(app):
    a, b = app.create_lead(), app.create_lead()
    f = app.create_follow(a["id"], title="Mine")
    assert_error(app.get(f"/leads/{b['id']}/follows/{f['id']}"), 404)
    assert_error(app.put(f"/leads/{b['id']}/follows/{f['id']}", {"follow": {"title": "x"}}), 404)
    assert_error(app.delete(f"/leads/{b['id']}/follows/{f['id']}"), 404)
    assert app.get_follow(a["id"], f["id"])["attributes"]["title"] == "Mine"


def test_a_follow_id_is_not_a_lead_id(app):
    a = app.create_lead()
    f = app.create_follow(a["id"])
    assert_error(app.get(f"/leads/{f['id']}"), 404)


def test_keep_alive_connection_serves_several_requests(server, app):
    import http.client
    c = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for path, headers in [("/leads/", app.headers)] * 3 + [("/healthz", {})]:
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            check_exchange("GET", path, r.status, dict(r.getheaders()), r.read())
            assert r.status == 200
    finally:
        c.close()
