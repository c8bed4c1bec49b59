"""A little concurrency (bounded, loopback only): parallel creates and updates
keep ids unique, totals right and updated_at strictly increasing."""

from concurrent.futures import ThreadPoolExecutor

from apiutil import assert_status, body_json, parse_ts


def test_parallel_creates(app):
    def make(i):
        r = app.post("/leads/", {"lead": {"name": f"P{i}"}})
        assert_status(r, 201)
        return body_json(r)["data"]["id"]
    with ThreadPoolExecutor(max_workers=6) as ex:
        ids = list(ex.map(make, range(60)))
    assert len(set(ids)) == 60
    body = body_json(app.get("/leads/", params={"records": 100}))
    assert body["meta"]["totalRecords"] == 60
    assert {d["id"] for d in body["data"]} == set(ids)
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
