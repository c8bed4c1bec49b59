"""Follow-ups across leads (extensions.md): GET /leads/{id}/follows and
GET /follows/ with status (overdue as derived), due_from, due_to, sort,
lead_id, page, records and cursor; and every follow naming its lead."""

import datetime as dt
import random
import re
import uuid

import pytest

from apiutil import assert_error, assert_status, body_json
from findref import follow_status, sort_follows

NOW = dt.datetime.now(dt.timezone.utc)


def when(days):
    return (NOW + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def seeded(server):
    """An app with three leads and 36 follows: overdue, pending (due later
    or never), completed, due dates shared, unset."""
    app = server.new_app()
    rnd = random.Random(77)
    app.leads = [app.create_lead(name=f"Lead {i}") for i in range(3)]
    app.follows = []
    for i in range(36):
        lead = rnd.choice(app.leads)
        body = {"title": f"Follow {i}", "status": rnd.choice(["pending", "pending", "completed"])}
        if rnd.random() < 0.75:
            body["due_date"] = when(rnd.choice([-30, -2, -2, 3, 3, 10]))
        f = app.create_follow(lead["id"], **body)
        app.follows.append(f)
    for f in app.follows[::5]:
        lid = f["relationships"]["lead"]["data"]["id"]
        r = app.put(f"/leads/{lid}/follows/{f['id']}", {"follow": {"title": f["attributes"]["title"] + "!"}})
        assert_status(r, 200)
        f.update(body_json(r)["data"])
    other = server.new_app()
    olead = other.create_lead(name="Other")
    other.create_follow(olead["id"], title="Not yours", due_date=when(-1))
    app.other_lead = olead
    return app


def keeps(f, params, lead=None):
    a = f["attributes"]
    if lead and f["relationships"]["lead"]["data"]["id"] != lead:
        return False
    if "lead_id" in params and f["relationships"]["lead"]["data"]["id"] not in params["lead_id"].split(","):
        return False
    if "status" in params and follow_status(a, dt.datetime.now(dt.timezone.utc)) not in params["status"].split(","):
        return False
    for name, incl in (("due_from", True), ("due_to", False)):
        if name in params:
            if a["due_date"] is None:
                return False
            if (a["due_date"] < params[name]) if incl else (a["due_date"] >= params[name]):
                return False
    return True


def expected(app, params, lead=None):
    return [f["id"] for f in sort_follows([f for f in app.follows if keeps(f, params, lead)], params.get("sort"))]


def walk(app, path, params, records):
    ids, q = [], dict(params, records=records)
    for _ in range(60):
        r = app.get(path, params=q)
        assert_status(r, 200)
        body = body_json(r)
        ids += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            return ids, body
        q = dict(params, records=records, cursor=body["meta"]["nextCursor"])
    raise AssertionError("no end")


def check(app, params, lead=None):
    path = f"/leads/{lead}/follows" if lead else "/follows/"
    want = expected(app, params, lead)
    r = app.get(path, params=dict(params, records=100))
    assert_status(r, 200)
    body = body_json(r)
    assert [d["id"] for d in body["data"]] == want, (path, params)
    assert body["meta"]["totalRecords"] == len(want)
    ids, _ = walk(app, path, params, 4)
    assert ids == want, (path, params, "cursor walk")
    # Pages by number: each one at an offset, through runs of equal due
    # dates and across the line between set and unset ones.
    for records in (3, 5):
        paged = []
        for page in range(1, len(want) // records + 2):
            r = app.get(path, params=dict(params, records=records, page=page))
            assert_status(r, 200)
            assert body_json(r)["meta"]["totalRecords"] == len(want)
            paged += [d["id"] for d in body_json(r)["data"]]
        assert paged == want, (path, params, "page walk", records)


PARAMS = [{}, {"status": "overdue"}, {"status": "pending"}, {"status": "completed"}, {"status": "overdue,pending"},
          {"status": "pending,completed"}, {"status": "overdue,completed"}, {"due_from": when(0)},
          {"due_to": when(0)}, {"due_from": when(-3), "due_to": when(4)},
          {"status": "overdue,pending", "due_to": when(5)}, {"sort": "due_date"}, {"sort": "-due_date"},
          {"sort": "created_at"}, {"sort": "-created_at"}, {"sort": "updated_at"}, {"sort": "-updated_at"},
          {"sort": "-updated_at,due_date"}, {"sort": "-due_date", "status": "pending,overdue"}]


# Test ids leave the times out: they must be the same at every collection (pytest-xdist's
# workers each collect the suite and compare).
def _ids(params):
    return [re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "t", str(p)) for p in params]


@pytest.mark.parametrize("params", PARAMS, ids=_ids(PARAMS))
def test_app_follows_every_parameter(seeded, params):
    check(seeded, params)


@pytest.mark.parametrize("params", PARAMS, ids=_ids(PARAMS))
def test_a_leads_follows_every_parameter(seeded, params):
    for lead in seeded.leads:
        check(seeded, params, lead["id"])


def test_lead_id_filter(seeded):
    a, b, c = (lead["id"] for lead in seeded.leads)
    check(seeded, {"lead_id": a})
    check(seeded, {"lead_id": f"{a},{c}", "status": "pending"})
    r = seeded.get("/follows/", params={"lead_id": [b.upper(), c]})
    assert_status(r, 200)
    assert [d["id"] for d in body_json(r)["data"]] == expected(seeded, {"lead_id": f"{b},{c}"})
    # Another app's lead, or one that does not exist: nothing.
    for other in (seeded.other_lead["id"], str(uuid.uuid4())):
        r = seeded.get("/follows/", params={"lead_id": other})
        assert_status(r, 200)
        assert body_json(r)["data"] == []


def test_the_salespersons_day(seeded):
    end_of_today = when(0)[:10] + "T23:59:59.999Z"
    r = seeded.get("/follows/", params={"status": "overdue,pending", "due_to": end_of_today})
    assert_status(r, 200)
    data = body_json(r)["data"]
    assert data and all(d["attributes"]["status"] == "overdue" for d in data)
    dues = [d["attributes"]["due_date"] for d in data]
    assert dues == sorted(dues)


def test_pending_leaves_overdue_out(seeded):
    r = seeded.get("/follows/", params={"status": "pending", "records": 100})
    statuses = {d["attributes"]["status"] for d in body_json(r)["data"]}
    assert statuses == {"pending"}


def test_every_follow_names_its_lead(seeded):
    lead = seeded.leads[0]["id"]
    for path in (f"/leads/{lead}/follows", "/follows/"):
        for d in body_json(seeded.get(path))["data"]:
            rel = d["relationships"]["lead"]["data"]
            assert rel["type"] == "lead" and set(rel) == {"id", "type"}
            assert path == "/follows/" or rel["id"] == lead
    f = seeded.create_follow(lead, title="New")
    assert f["relationships"] == {"lead": {"data": {"id": lead, "type": "lead"}}}
    got = body_json(seeded.get(f"/leads/{lead}/follows/{f['id']}"))["data"]
    assert got["relationships"]["lead"]["data"]["id"] == lead
    seeded.delete(f"/leads/{lead}/follows/{f['id']}")


@pytest.mark.parametrize("params, names", [
    ({"status": "late"}, ["status"]), ({"status": ""}, ["status"]), ({"due_from": "tomorrow"}, ["due_from"]),
    ({"due_to": "2026-13-01T00:00:00Z"}, ["due_to"]), ({"sort": "title"}, ["sort"]),
    ({"sort": "due_date,-due_date"}, ["sort"]), ({"lead_id": "x"}, ["lead_id"]), ({"lead_id": "null"}, ["lead_id"]),
    ({"records": "101", "status": "nope"}, ["records", "status"]),
])
def test_bad_values(seeded, params, names):
    errs = assert_error(seeded.get("/follows/", params=params), 422, "validation_error")
    assert sorted(e["source"]["parameter"] for e in errs) == sorted(names)


def test_route_specific_parameters(seeded):
    lead = seeded.leads[0]["id"]
    # lead_id is /follows/'s; count is /leads/'s.
    for path, params in ((f"/leads/{lead}/follows", {"lead_id": lead}), ("/follows/", {"count": "none"})):
        errs = assert_error(seeded.get(path, params=params), 422, "unknown_parameter")
        assert errs[0]["source"]["parameter"] == next(iter(params))
    assert_error(seeded.get(f"/leads/{uuid.uuid4()}/follows", params={"status": "pending"}), 404, "not_found")
    assert_error(seeded.get(f"/leads/{seeded.other_lead['id']}/follows", params={"sort": "-due_date"}), 404,
                 "not_found")


def test_cursors_are_bound_to_their_lead_and_route(seeded):
    a, b = seeded.leads[0]["id"], seeded.leads[1]["id"]
    body = body_json(seeded.get(f"/leads/{a}/follows", params={"records": 1}))
    cur = body["meta"]["nextCursor"]
    assert cur
    assert_status(seeded.get(f"/leads/{a}/follows", params={"records": 1, "cursor": cur}), 200)
    for path, params in ((f"/leads/{b}/follows", {}), ("/follows/", {}), (f"/leads/{a}/follows", {"status": "pending"})):
        errs = assert_error(seeded.get(path, params=dict(params, cursor=cur)), 422, "validation_error")
        assert errs[0]["source"] == {"parameter": "cursor"}


def test_a_walk_survives_follows_coming_and_going(app):
    lead = app.create_lead(name="Busy")["id"]
    made = [app.create_follow(lead, title=f"F{i}", due_date=when(i % 7 - 3))["id"] for i in range(20)]
    seen, gone = [], set()
    q = {"records": 3}
    while True:
        body = body_json(app.get("/follows/", params=q))
        seen += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            break
        q = {"records": 3, "cursor": body["meta"]["nextCursor"]}
        app.create_follow(lead, title="late", due_date=when(-5))
        victim = next((f for f in made if f not in seen and f not in gone), None)
        if victim:
            assert_status(app.delete(f"/leads/{lead}/follows/{victim}"), 204)
            gone.add(victim)
    assert len(seen) == len(set(seen))
    assert not set(made) - gone - set(seen)


def test_a_put_of_one_attribute_moves_the_follow_in_every_index(app):
    """A follow's PUT writes only what it names: its status alone, then its
    due date alone, each found by the new value and not the old one."""
    lead = app.create_lead(name="One at a time")
    f = app.create_follow(lead["id"], title="Call", status="pending", due_date=when(-2))
    path = f"/leads/{lead['id']}/follows/{f['id']}"

    def found(params):
        r = app.get("/follows/", params=dict(params, records=100))
        assert_status(r, 200)
        return f["id"] in [d["id"] for d in body_json(r)["data"]]

    assert found({"status": "overdue"}) and not found({"status": "completed"})
    assert_status(app.put(path, {"follow": {"status": "completed"}}), 200)
    assert found({"status": "completed", "due_to": when(-1)}) and not found({"status": "overdue"})
    assert_status(app.put(path, {"follow": {"due_date": when(10)}}), 200)
    assert found({"status": "completed", "due_from": when(9)}) and not found({"due_to": when(-1)})
    r = app.get(path)
    assert body_json(r)["data"]["attributes"]["title"] == "Call"


def follows_path(seeded, route):
    return f"/leads/{seeded.leads[0]['id']}/follows" if route == "lead" else "/follows/"


def follows_cursor(seeded, path, params):
    """The next cursor of the first page of two; it must work as given."""
    body = body_json(seeded.get(path, params=dict(params, records=2)))
    cur = body["meta"]["nextCursor"]
    assert cur
    assert_status(seeded.get(path, params=dict(params, records=2, cursor=cur)), 200)
    return cur


def assert_cursor_error(r):
    errs = assert_error(r, 422, "validation_error")
    assert [e["source"] for e in errs] == [{"parameter": "cursor"}]


def flip(cur, at):
    return cur[:at] + ("A" if cur[at] != "A" else "B") + cur[at + 1:]


@pytest.mark.parametrize("route", ["lead", "app"])
@pytest.mark.parametrize("change", ["flip-first", "flip-middle", "flip-late", "cut", "extend", "garbage", "empty-ish",
                                    "long"])
def test_a_tampered_follows_cursor_is_a_422_on_cursor(seeded, route, change):
    path, params = follows_path(seeded, route), {"sort": "-due_date"}
    cur = follows_cursor(seeded, path, params)
    # The last character of unpadded base64 may carry unused bits only: the
    # flips change the second to last one at the latest.
    bad = {"flip-first": flip(cur, 0), "flip-middle": flip(cur, len(cur) // 2), "flip-late": flip(cur, len(cur) - 2),
           "cut": cur[:-1], "extend": cur + "A", "garbage": "not a cursor at all!", "empty-ish": "A",
           "long": "A" * 3000}[change]
    assert_cursor_error(seeded.get(path, params=dict(params, records=2, cursor=bad)))


@pytest.mark.parametrize("route", ["lead", "app"])
def test_follows_cursor_and_page_together_is_a_422_on_cursor(seeded, route):
    path = follows_path(seeded, route)
    cur = follows_cursor(seeded, path, {})
    for page in ("1", "2"):
        assert_cursor_error(seeded.get(path, params={"records": 2, "cursor": cur, "page": page}))


@pytest.mark.parametrize("route", ["lead", "app"])
def test_a_follows_cursor_is_bound_to_its_sort_and_filters(seeded, route):
    path = follows_path(seeded, route)
    cur = follows_cursor(seeded, path, {"sort": "-due_date"})
    for sort in (None, "due_date", "created_at", "-updated_at", "-due_date,created_at"):
        params = {"records": 2, "cursor": cur}
        if sort:
            params["sort"] = sort
        assert_cursor_error(seeded.get(path, params=params))
    # Nor of other filters.
    cur = follows_cursor(seeded, path, {"status": "pending,overdue", "due_to": when(5)})
    for params in ({"status": "pending", "due_to": when(5)}, {"status": "pending,overdue"},
                   {"status": "pending,overdue", "due_to": when(6)},
                   {"status": "pending,overdue", "due_to": when(5), "due_from": when(-40)}):
        assert_cursor_error(seeded.get(path, params=dict(params, records=2, cursor=cur)))
    # A cursor of the default order is not one of its explicit sorts either way.
    cur = follows_cursor(seeded, path, {})
    assert_cursor_error(seeded.get(path, params={"records": 2, "cursor": cur, "sort": "-due_date"}))


def test_an_app_follows_cursor_is_bound_to_its_lead_ids(seeded):
    a, b, c = (lead["id"] for lead in seeded.leads)
    cur = follows_cursor(seeded, "/follows/", {"lead_id": f"{a},{b}"})
    # The same set of leads, written in another order or case: the same walk.
    for same in (f"{b},{a}", [a, b], f"{a.upper()},{b}"):
        assert_status(seeded.get("/follows/", params={"lead_id": same, "records": 2, "cursor": cur}), 200)
    for other in (a, f"{a},{b},{c}", f"{a},{c}", None):
        params = {"records": 2, "cursor": cur}
        if other:
            params["lead_id"] = other
        assert_cursor_error(seeded.get("/follows/", params=params))
    # A cursor of every lead's follows is not one of some leads'.
    cur = follows_cursor(seeded, "/follows/", {})
    assert_cursor_error(seeded.get("/follows/", params={"lead_id": a, "records": 2, "cursor": cur}))
    # Nor is a lead's own cursor one of /follows/?lead_id= that lead.
    cur = follows_cursor(seeded, f"/leads/{a}/follows", {})
    assert_cursor_error(seeded.get("/follows/", params={"lead_id": a, "records": 2, "cursor": cur}))


def test_a_follows_cursor_is_bound_to_its_app_but_not_its_page_size(seeded, server):
    cur = follows_cursor(seeded, "/follows/", {"sort": "-due_date"})
    r = seeded.get("/follows/", params={"sort": "-due_date", "records": 50, "cursor": cur})
    assert_status(r, 200)
    want = expected(seeded, {"sort": "-due_date"})
    assert [d["id"] for d in body_json(r)["data"]] == want[2:52]
    other = server.new_app()
    lead = other.create_lead(name="Other's")["id"]
    for _ in range(3):
        other.create_follow(lead, title="Theirs")
    assert_cursor_error(other.get("/follows/", params={"sort": "-due_date", "records": 2, "cursor": cur}))
