"""Lists: page/records parameters, meta, order, stable paging."""

import math
import time

import pytest

from apiutil import assert_param_error, assert_status, body_json, check_follow, check_lead

N = 37


@pytest.fixture(scope="module")
def app37(server):
    app = server.new_app()
    ids = [app.create_lead(name=f"L{i:02d}")["id"] for i in range(N - 1)]
    time.sleep(0.01)
    ids.append(app.create_lead(name="Newest")["id"])
    app.ids = ids
    return app


def keys(data):
    return [(d["attributes"]["created_at"], d["id"]) for d in data]


def test_default_page_and_records(app37):
    r = app37.get("/leads/")
    assert_status(r, 200)
    body = body_json(r)
    assert len(body["data"]) == 15
    assert body["meta"]["totalRecords"] == N
    assert body["meta"]["totalPages"] == math.ceil(N / 15)
    assert body["data"][0]["attributes"]["name"] == "Newest"
    for d in body["data"]:
        check_lead(d)
    explicit = body_json(app37.get("/leads/", params={"page": 1, "records": 15}))
    assert explicit["data"] == body["data"]


def test_newest_first_stable_order(app37):
    data = body_json(app37.get("/leads/", params={"records": 100}))["data"]
    assert len(data) == N
    k = keys(data)
    assert k == sorted(k, reverse=True), "order must be created_at desc, then id desc"
    assert data[0]["id"] == app37.ids[-1]


@pytest.mark.parametrize("records", [10, 1, 7, 36, 37, 100])
def test_walking_pages_yields_each_once(app37, records):
    seen = []
    pages = math.ceil(N / records)
    for page in range(1, pages + 2):
        r = app37.get("/leads", params={"page": page, "records": records})
        assert_status(r, 200)
        body = body_json(r)
        assert body["meta"]["totalRecords"] == N
        assert body["meta"]["totalPages"] == pages
        expect = min(records, max(0, N - (page - 1) * records))
        assert len(body["data"]) == expect, (page, records)
        seen += [d["id"] for d in body["data"]]
    assert len(seen) == N and set(seen) == set(app37.ids)
    full = [d["id"] for d in body_json(app37.get("/leads/", params={"records": 100}))["data"]]
    assert seen == full


def test_page_past_the_end_is_empty(app37):
    for page in (5, 6, 1000):
        r = app37.get("/leads/", params={"page": page, "records": 10})
        assert_status(r, 200)
        body = body_json(r)
        assert body["data"] == []
        assert body["meta"]["totalRecords"] == N
        assert body["meta"]["totalPages"] == 4


def test_empty_list(app):
    r = app.get("/leads/")
    assert_status(r, 200)
    body = body_json(r)
    assert body["data"] == []
    assert body["meta"]["totalRecords"] == 0
    assert body["meta"]["totalPages"] == 0
    r = app.get("/leads/", params={"page": 2})
    assert_status(r, 200)
    assert body_json(r)["data"] == []


@pytest.mark.parametrize("value", ["0", "101", "-1", "abc", "1.5", "", "1e1", "10abc", " 5",
                                   "99999999999999999999"])
def test_bad_records(app37, value):
    assert_param_error(app37.get("/leads/", params={"records": value}), ["records"])


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", "2x"])
def test_bad_page(app37, value):
    assert_param_error(app37.get("/leads/", params={"page": value}), ["page"])


def test_bad_page_and_records_both_reported(app37):
    assert_param_error(app37.get("/leads/", params={"page": "0", "records": "0"}),
                       ["page", "records"])


def test_records_bounds_ok(app37):
    assert len(body_json(app37.get("/leads/", params={"records": 1}))["data"]) == 1
    body = body_json(app37.get("/leads/", params={"records": 100}))
    assert len(body["data"]) == N and body["meta"]["totalPages"] == 1


def test_total_pages_is_ceil(app):
    for _ in range(3):
        app.create_lead()
    for records, pages in ((1, 3), (2, 2), (3, 1), (4, 1), (100, 1)):
        meta = body_json(app.get("/leads/", params={"records": records}))["meta"]
        assert meta == {**meta, "totalRecords": 3, "totalPages": pages}, (records, meta)


# ------------------------------------------------------------------ follows

def test_follows_default_records_is_100(app):
    lead = app.create_lead()
    ids = [app.create_follow(lead["id"], title=f"F{i}")["id"] for i in range(101)]
    r = app.get(f"/leads/{lead['id']}/follows")
    assert_status(r, 200)
    body = body_json(r)
    assert len(body["data"]) == 100
    assert body["meta"]["totalRecords"] == 101
    assert body["meta"]["totalPages"] == 2
    p2 = body_json(app.get(f"/leads/{lead['id']}/follows", params={"page": 2}))
    assert len(p2["data"]) == 1
    seen = [d["id"] for d in body["data"]] + [d["id"] for d in p2["data"]]
    assert sorted(seen) == sorted(ids)
    # all without due_date: created_at ascending, then id ascending
    k = [(d["attributes"]["created_at"], d["id"]) for d in body["data"] + p2["data"]]
    assert k == sorted(k)


def test_follows_order_due_date_then_created(app):
    lead = app.create_lead()
    lid = lead["id"]
    a = app.create_follow(lid, title="A", due_date="2099-05-01T00:00:00Z")
    b = app.create_follow(lid, title="B")
    c = app.create_follow(lid, title="C", due_date="2099-04-01T00:00:00Z")
    time.sleep(0.005)
    d = app.create_follow(lid, title="D", due_date="2099-04-01T00:00:00Z")
    time.sleep(0.005)
    e = app.create_follow(lid, title="E")
    f = app.create_follow(lid, title="F", due_date="2020-01-01T00:00:00Z")  # overdue
    g = app.create_follow(lid, title="G", due_date="2099-04-01T00:00:00.001+00:00")
    data = body_json(app.get(f"/leads/{lid}/follows"))["data"]
    assert [x["attributes"]["title"] for x in data] == ["F", "C", "D", "G", "A", "B", "E"]
    for x in data:
        check_follow(x)
    del a, b, c, d, e, f, g


def test_follows_paging_and_params(app):
    lead = app.create_lead()
    lid = lead["id"]
    for i in range(5):
        app.create_follow(lid, title=f"F{i}", due_date=f"2099-01-0{i + 1}T00:00:00Z")
    body = body_json(app.get(f"/leads/{lid}/follows", params={"records": 2, "page": 3}))
    assert [x["attributes"]["title"] for x in body["data"]] == ["F4"]
    assert body["meta"]["totalRecords"] == 5 and body["meta"]["totalPages"] == 3
    body = body_json(app.get(f"/leads/{lid}/follows/", params={"records": 2, "page": 4}))
    assert body["data"] == []
    assert_param_error(app.get(f"/leads/{lid}/follows", params={"records": "101"}), ["records"])
    assert_param_error(app.get(f"/leads/{lid}/follows", params={"records": "0"}), ["records"])
    assert_param_error(app.get(f"/leads/{lid}/follows", params={"page": "0"}), ["page"])


def test_follows_empty_list(app):
    lead = app.create_lead()
    body = body_json(app.get(f"/leads/{lead['id']}/follows"))
    assert body["data"] == []
    assert body["meta"]["totalRecords"] == 0 and body["meta"]["totalPages"] == 0
