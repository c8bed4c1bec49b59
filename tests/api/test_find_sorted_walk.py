"""Pages of many leads of a stage or status in the order of updated_at,
value or probability (extensions.md, "Finding leads", "Cursors"). With more
than a thousand leads kept, a server walks the sort's index rather than
sorting the filtered set, and SQLite tests the stage and status in that
index (schema version 14); the pages, by number and by cursor, with and
without their count, must be exactly the contract's (findref.py): ties of
value and of updated_at broken by created_at and id, unset values last
(first in ascending order of a value, as the contract says), leads moved
by an update, and deleted ones gone."""

import random

import pytest

from apiutil import assert_status, body_json
from findref import lead_keeps, sort_leads

NO_FACTS = {"overdue": False, "open": False}
STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"]
STATUSES = ["active", "inactive", "converted", "lost"]


@pytest.fixture(scope="module")
def many(server):
    """An app of 3,000 leads, most of them qualified or active, with few
    distinct values and probabilities (ties) and some unset; then 40 moved
    by updates and 20 deleted. .leads: the leads as they stand."""
    app = server.new_app()
    rnd = random.Random(1414)
    ops = []
    for i in range(3000):
        lead = {"name": f"Walker {i}", "stage": rnd.choice(STAGES[2:3] * 3 + STAGES),
                "status": rnd.choice(STATUSES[:1] * 5 + STATUSES)}
        if rnd.random() < 0.9:
            lead["value"] = rnd.choice([0, 10, 250.5, 1000, 99999.99])
        if rnd.random() < 0.9:
            lead["probability"] = rnd.choice([0, 10, 50, 90])
        ops.append({"op": "create", "lead": lead})
    for i in range(0, len(ops), 500):
        r = app.post("/leads/batch", {"operations": ops[i:i + 500]})
        assert_status(r, 200)
    leads = app.list_all(records=100)
    assert len(leads) == 3000
    for lead in rnd.sample(leads, 40):
        r = app.put(f"/leads/{lead['id']}/", {"lead": {"stage": "qualified", "value": rnd.choice([10, 1000]),
                                                        "status": "lost"}})
        assert_status(r, 200)
    for lead in rnd.sample(leads, 20):
        r = app.delete(f"/leads/{lead['id']}/")
        assert_status(r, 204)
    app.leads = app.list_all(records=100)
    assert len(app.leads) == 2980
    return app


def expected(app, params):
    keep = [lead for lead in app.leads if lead_keeps(lead["attributes"], params, NO_FACTS)]
    return [lead["id"] for lead in sort_leads(keep, params.get("sort"))]


def page(app, params):
    r = app.get("/leads/", params=params)
    assert_status(r, 200)
    return body_json(r)


CASES = [
    {"stage": "qualified", "sort": "-value"},
    {"stage": "qualified", "sort": "value"},
    {"stage": "qualified,proposal", "status": "active", "sort": "-probability"},
    {"status": "active", "sort": "probability"},
    {"status": "active", "sort": "-updated_at"},
    {"status": "lost", "sort": "-updated_at"},
    {"stage": "qualified", "sort": "updated_at"},
    {"stage": "qualified", "sort": "-value", "value_min": "250.5"},
]


@pytest.mark.parametrize("params", CASES, ids=[str(c) for c in CASES])
def test_a_big_stages_page_in_a_sorts_order_is_the_contracts(many, params):
    want = expected(many, params)
    assert len(want) > 100
    body = page(many, dict(params, records=100))
    assert [d["id"] for d in body["data"]] == want[:100]
    assert body["meta"]["totalRecords"] == len(want)
    body = page(many, dict(params, records=100, count="none"))
    assert [d["id"] for d in body["data"]] == want[:100]
    body = page(many, dict(params, records=30, page=4, count="none"))
    assert [d["id"] for d in body["data"]] == want[90:120]
    ids, q = [], dict(params, records=97, count="none")
    for _ in range(60):
        body = page(many, q)
        ids += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            break
        q = dict(params, records=97, count="none", cursor=body["meta"]["nextCursor"])
    assert ids == want
