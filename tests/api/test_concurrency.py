"""A little concurrency (bounded, loopback only): parallel creates and updates
keep ids unique, totals right and updated_at strictly increasing."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
import uuid

from apiutil import assert_status, body_json, parse_ts


def expect_listed(app, ids, n):
    """The n distinct ids are the app's leads, all on one listed page; returns the list's body."""
    assert len(set(ids)) == n
    body = body_json(app.get("/leads/", params={"records": 100}))
    assert body["meta"]["totalRecords"] == n
    assert {d["id"] for d in body["data"]} == set(ids)
    return body


def test_parallel_creates(app):
    def make(i):
        r = app.post("/leads/", {"lead": {"name": f"P{i}"}})
        assert_status(r, 201)
        return body_json(r)["data"]["id"]
    with ThreadPoolExecutor(max_workers=6) as ex:
        ids = list(ex.map(make, range(60)))
    body = expect_listed(app, ids, 60)
    k = [(d["attributes"]["created_at"], d["id"]) for d in body["data"]]
    assert k == sorted(k, reverse=True)


def test_parallel_updates_of_one_lead(app):
    lead = app.create_lead(name="race")

    def upd(i):
        r = app.put(f"/leads/{lead['id']}", {"lead": {"probability": i}})
        assert_status(r, 200)
        return body_json(r)["data"]["attributes"]["updated_at"]
    with ThreadPoolExecutor(max_workers=6) as ex:
        stamps = list(ex.map(upd, range(40)))
    assert len(set(stamps)) == 40, "two successful updates share an updated_at"
    final = app.get_lead(lead["id"])["attributes"]
    assert parse_ts(final["updated_at"]) == max(parse_ts(s) for s in stamps)


def test_parallel_follow_creates_and_lead_delete(app):
    lead = app.create_lead()

    def make(i):
        r = app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": f"F{i}"}})
        assert_status(r, 201)
        return body_json(r)["data"]["id"]
    with ThreadPoolExecutor(max_workers=4) as ex:
        ids = list(ex.map(make, range(30)))
    assert len(set(ids)) == 30
    assert body_json(app.get(f"/leads/{lead['id']}/follows"))["meta"]["totalRecords"] == 30
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)


def test_creates_sharing_a_group_commit_with_failing_writes_are_all_kept(app):
    """Creates that share a group commit with writes that fail (a trashing,
    a delete, a purge, a recovery or an update of an unknown id), with
    follows and trashings of the leads just made, and with keyed creates
    sent twice: every create answered 201 is there afterwards, once, in the
    list, the search, the summary and its history."""
    def unknown():
        return str(uuid.uuid4())
    failing = [lambda: app.delete(f"/leads/{unknown()}"),
               lambda: app.delete(f"/leads/trash/{unknown()}"),
               lambda: app.put(f"/leads/{unknown()}/recover"),
               lambda: app.put(f"/leads/{unknown()}", {"lead": {"name": "x"}})]

    def work(i):
        key = f"staged-{uuid.uuid4().hex}"
        r = app.post("/leads/", {"lead": {"name": f"Stagedterm {i}", "value": 1}},
                     headers={"Idempotency-Key": key} if i % 3 == 0 else {})
        assert_status(r, 201)
        lead = body_json(r)["data"]["id"]
        assert failing[i % 4]().status_code == 404
        if i % 3 == 0:
            again = app.post("/leads/", {"lead": {"name": f"Stagedterm {i}", "value": 1}},
                             headers={"Idempotency-Key": key})
            assert_status(again, 201)
            assert body_json(again)["data"]["id"] == lead, "a keyed create replayed"
        if i % 5 == 0:
            assert_status(app.post(f"/leads/{lead}/follows", {"follow": {"title": "Call"}}), 201)
        if i % 7 == 0:
            assert_status(app.delete(f"/leads/{lead}"), 204)
            assert_status(app.put(f"/leads/{lead}/recover"), 200)
        return lead
    with ThreadPoolExecutor(max_workers=8) as ex:
        ids = list(ex.map(work, range(90)))
    expect_listed(app, ids, 90)
    found = body_json(app.get("/leads/", params={"records": 100, "search": "stagedterm"}))
    assert {d["id"] for d in found["data"]} == set(ids), "every create is in the search index"
    s = body_json(app.get("/leads/summary"))["data"]["attributes"]
    assert int(s["totalRecords"]) == 90 and Decimal(s["totalValue"]) == 90
    for lead in ids[::11]:
        h = body_json(app.get(f"/leads/{lead}/history"))
        assert h["meta"]["totalRecords"] >= 1
