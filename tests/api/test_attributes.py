"""Full attribute sets, ids, timestamps, relationships, content type."""

import datetime as dt
import uuid

from apiutil import (FOLLOW_ATTRS, LEAD_ATTRS, TS_RE, UUID_RE, assert_status, body_json,
                     check_follow, check_lead, media_type, parse_ts)


def near_now(ts, slack=120):
    t = parse_ts(ts)
    now = dt.datetime.now(dt.timezone.utc)
    return abs((now - t).total_seconds()) < slack


def test_created_lead_has_every_attribute(app):
    acc, con = str(uuid.uuid4()), str(uuid.uuid4())
    r = app.post("/leads/", {"lead": {"name": "New Enterprise Deal", "source": "referral",
                                      "account_id": acc, "contact_id": con, "value": 75000,
                                      "stage": "new", "probability": 20}})
    assert_status(r, 201)
    assert media_type(r) == "application/json"
    body = body_json(r)
    data = body["data"]
    a = check_lead(data, name="New Enterprise Deal", source="referral", account_id=acc,
                   contact_id=con, value=75000, stage="new", probability=20, status="active")
    assert set(LEAD_ATTRS) <= set(a)
    assert UUID_RE.match(data["id"]) and data["id"] == a["unique_id"]
    assert TS_RE.match(a["created_at"]) and TS_RE.match(a["updated_at"])
    assert near_now(a["created_at"]), a["created_at"]
    assert a["updated_at"] >= a["created_at"]


def test_minimal_lead_defaults_and_nulls(app):
    data = app.create_lead(name="Only a name")
    check_lead(data, name="Only a name", source=None, account_id=None, contact_id=None,
               value=None, stage="new", probability=None, status="active")


def test_get_lead_relationships(app):
    acc, con = str(uuid.uuid4()), str(uuid.uuid4())
    a = app.create_lead(account_id=acc, contact_id=con)
    data = app.get_lead(a["id"])
    check_lead(data, account_id=acc, contact_id=con)
    rel = data["relationships"]
    assert rel["account"]["data"] == {"id": acc, "type": "account"}
    assert rel["contact"]["data"] == {"id": con, "type": "contact"}


def test_get_lead_relationships_null_when_unset(app):
    a = app.create_lead()
    data = app.get_lead(a["id"])
    assert data["relationships"]["account"]["data"] is None
    assert data["relationships"]["contact"]["data"] is None


def test_relationship_follows_a_cleared_account(app):
    acc, con = str(uuid.uuid4()), str(uuid.uuid4())
    a = app.create_lead(account_id=acc, contact_id=con)
    assert_status(app.put(f"/leads/{a['id']}", {"lead": {"account_id": None}}), 200)
    data = app.get_lead(a["id"])
    check_lead(data, account_id=None, contact_id=con)
    assert data["relationships"]["account"]["data"] is None
    assert data["relationships"]["contact"]["data"] == {"id": con, "type": "contact"}


def test_list_items_have_every_attribute(app):
    app.create_lead(name="one")
    app.create_lead(name="two", value=1, probability=5, source="website")
    r = app.get("/leads/")
    assert_status(r, 200)
    assert media_type(r) == "application/json"
    data = body_json(r)["data"]
    assert len(data) == 2
    for d in data:
        check_lead(d)


def test_created_follow_has_every_attribute(app):
    lead = app.create_lead()
    r = app.post(f"/leads/{lead['id']}/follows",
                 {"follow": {"title": "Schedule demo call",
                             "description": "Set up product demo with technical team",
                             "due_date": "2099-03-05T14:00:00Z"}})
    assert_status(r, 201)
    assert media_type(r) == "application/json"
    data = body_json(r)["data"]
    a = check_follow(data, title="Schedule demo call",
                     description="Set up product demo with technical team",
                     due_date="2099-03-05T14:00:00.000Z", status="pending")
    assert set(FOLLOW_ATTRS) <= set(a)
    assert near_now(a["created_at"])
    assert data["id"] != lead["id"]


def test_minimal_follow_defaults_and_nulls(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="Call")
    check_follow(f, title="Call", description=None, due_date=None, status="pending")
    listed = body_json(app.get(f"/leads/{lead['id']}/follows"))["data"]
    check_follow(listed[0], title="Call", description=None, due_date=None, status="pending")


def test_ids_are_unique_v7_with_the_creation_time(app):
    import time
    ids = [app.create_lead()["id"] for _ in range(5)]
    assert len(set(ids)) == 5
    now_ms = time.time() * 1000
    for i in ids:
        assert UUID_RE.match(i), i
        ms = int(i[:8] + i[9:13], 16)  # the v7 48-bit unix_ts_ms field
        assert abs(now_ms - ms) < 120_000, (i, ms, now_ms)
    # ids from different milliseconds sort by time
    stamps = [int(i[:8] + i[9:13], 16) for i in ids]
    assert stamps == sorted(stamps)


def test_json_content_type_on_every_kind_of_response(app, anon):
    lead = app.create_lead()
    f = app.create_follow(lead["id"])
    for r in (app.get("/leads/"), app.get(f"/leads/{lead['id']}"),
              app.put(f"/leads/{lead['id']}", {"lead": {"name": "y"}}),
              app.get(f"/leads/{lead['id']}/follows"),
              app.get(f"/leads/{lead['id']}/follows/{f['id']}"),
              app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": {"title": "t"}}),
              app.get(f"/leads/{uuid.uuid4()}"),
              anon.get("/leads/"),
              app.post("/leads/", {"lead": {}})):
        assert media_type(r) == "application/json", (r.request.method, r.request.url,
                                                     r.headers.get("Content-Type"))
        body_json(r)
