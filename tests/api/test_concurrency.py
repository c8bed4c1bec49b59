"""A little concurrency (bounded, loopback only): parallel creates and updates
keep ids unique, totals right and updated_at strictly increasing."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
import threading
import time
import uuid

from apiutil import assert_error, assert_status, body_json, check_follow, describe, parse_ts


def expect_listed(app, ids, n):
    """The n distinct ids are the app's leads, all on one listed page; returns the list's body."""
    assert len(set(ids)) == n
    body = body_json(app.get("/leads/", params={"records": 100}))
    assert body["meta"]["totalRecords"] == n
    assert {d["id"] for d in body["data"]} == set(ids)
    return body


def trash_ids(app):
    r = app.get("/leads/trash/show")
    assert_status(r, 200)
    return [d["id"] for d in body_json(r)["data"]]


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
    """Follow creates race the DELETE of their lead (extensions.md, "Trash"):
    four clients create follows without pause until one is refused, and the
    DELETE goes while they do. Whatever the interleaving, each create is a
    201 or a 404 (never a 5xx), a 404 only once the DELETE was sent and a 201
    never once it was answered; afterwards no follow of the lead is seen
    anywhere, and the recovery brings back every follow answered 201, as it
    was, and nothing else (one answered 201 after the lead left went to the
    trash with it, or it was not a 201)."""
    lead = app.create_lead()
    lid = lead["id"]
    deleting, deleted, stop = threading.Event(), threading.Event(), threading.Event()
    lock = threading.Lock()
    made = {}  # id -> title of the follows answered 201

    def creator(w):
        for i in range(500):
            if stop.is_set():
                return "stopped"
            title = f"F{w}-{i}"
            after_delete = deleted.is_set()
            r = app.post(f"/leads/{lid}/follows", {"follow": {"title": title}})
            if r.status_code == 404:
                assert deleting.is_set(), f"a create refused before the lead's DELETE was sent: {describe(r)}"
                assert_error(r, 404)
                return "refused"
            assert_status(r, 201)
            assert not after_delete, "a create sent after the lead's DELETE was answered is a 201"
            data = body_json(r)["data"]
            check_follow(data, title=title)
            with lock:
                assert data["id"] not in made
                made[data["id"]] = title
        return "never refused"

    with ThreadPoolExecutor(max_workers=4) as ex:
        workers = [ex.submit(creator, w) for w in range(4)]
        try:
            # The DELETE goes once a dozen creates are in, with all four
            # clients still sending.
            deadline = time.monotonic() + 60
            while len(made) < 12:
                assert time.monotonic() < deadline, f"only {len(made)} creates in 60 s"
                assert not any(f.done() for f in workers), [f.result() for f in workers if f.done()]
                time.sleep(0.005)
            deleting.set()
            assert_status(app.delete(f"/leads/{lid}"), 204)
            deleted.set()
        except BaseException:
            stop.set()
            raise
        ends = [f.result() for f in workers]
    assert ends == ["refused"] * 4, "every client goes on creating until the lead is gone"

    assert_error(app.get(f"/leads/{lid}"), 404)
    assert_error(app.get(f"/leads/{lid}/follows"), 404)
    for fid in made:
        assert_error(app.get(f"/leads/{lid}/follows/{fid}"), 404)
    everywhere = body_json(app.get("/follows/", params={"records": 100}))
    assert everywhere["data"] == [] and everywhere["meta"]["totalRecords"] == 0
    assert trash_ids(app) == [lid]

    assert_status(app.put(f"/leads/{lid}/recover"), 200)
    back = app.list_all(f"/leads/{lid}/follows")
    assert {d["id"]: d["attributes"]["title"] for d in back} == made, \
        "the recovery brings back the follows answered 201, and only them"
    assert len(back) == len(made)
    assert {d["id"] for d in app.list_all("/follows/")} == set(made)


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
