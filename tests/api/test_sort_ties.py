"""Sorts over ties of created_at (extensions.md, "Finding leads": "Ties
always end in created_at desc, then id desc"): a CSV import stamps all its
rows with one created_at, so leads of equal value, probability, stage or
(folded) name within an import tie on created_at too and fall to id desc,
while equal ones made at other times fall to created_at. Every sort, alone,
combined and under filters, by page and by cursor, equals the reference
(findref.py), unset values last in both directions."""

import random

import pytest

from apiutil import assert_status, body_json
from findref import lead_keeps, sort_leads

NO_FACTS = {"overdue": False, "open": False}
NAMES = ["beta", "Beta", "BETA", "alpha", "Ärger", "ärger", "zeta"]
STAGES = ["new", "qualified", "qualified", "proposal", "negotiation"]
VALUES = ["", "", "10", "10", "10", "250.5", "9000"]
PROBABILITIES = ["", "0", "50", "50", "50", "90"]
STATUSES = ["active", "active", "lost"]


def csv_rows(rnd, n):
    return [(rnd.choice(NAMES), rnd.choice(STAGES), rnd.choice(VALUES), rnd.choice(PROBABILITIES),
             rnd.choice(STATUSES)) for _ in range(n)]


def import_rows(app, rows):
    text = "name,stage,value,probability,status\r\n" + "".join(",".join(row) + "\r\n" for row in rows)
    r = app.post("/leads/import", raw=text.encode(), content_type="text/csv")
    assert_status(r, 200)
    assert body_json(r)["meta"] == {"created": len(rows), "failed": 0}


def create_row(app, row):
    attrs = dict(zip(("name", "stage", "value", "probability", "status"), row))
    attrs = {k: v for k, v in attrs.items() if v != ""}
    if "probability" in attrs:
        attrs["probability"] = int(attrs["probability"])
    app.create_lead(**attrs)


@pytest.fixture(scope="module")
def tied(server):
    """An app with a lead made alone, an import of 30, three leads made
    alone, an import of 20, and one more lead: the imports' rows tie on
    created_at (and on the sorted attribute, often), the others do not."""
    app = server.new_app()
    rnd = random.Random(3)
    create_row(app, ("beta", "qualified", "10", "50", "active"))
    import_rows(app, csv_rows(rnd, 30))
    for row in csv_rows(rnd, 3):
        create_row(app, row)
    import_rows(app, csv_rows(rnd, 20))
    create_row(app, ("Beta", "qualified", "10", "50", "lost"))
    app.leads = app.list_all()
    stamps = {}
    for lead in app.leads:
        stamps.setdefault(lead["attributes"]["created_at"], []).append(lead["id"])
    # (A lead made alone may share an import's millisecond: more ties.)
    assert max(len(v) for v in stamps.values()) >= 30, "an import's rows share one created_at"
    return app


def get_page(app, params):
    r = app.get("/leads/", params=params)
    assert_status(r, 200)
    return body_json(r)


SORTS = ["value", "-value", "probability", "-probability", "stage", "-stage", "name", "-name", "updated_at",
         "-updated_at", "created_at", "stage,-value", "-probability,name", "name,value", "-value,-stage,probability"]
# Filters beside the sorts: some stages or statuses in the value,
# probability and updated_at orders (SQLite walks those indexes' keys),
# and a range that keeps only tied values.
FILTERED = [{"stage": "qualified", "sort": "-value"}, {"stage": "new,qualified,negotiation", "sort": "probability"},
            {"status": "lost", "sort": "-probability"}, {"status": "active,lost", "sort": "value"},
            {"stage": "qualified,proposal", "sort": "-updated_at"}, {"status": "active", "sort": "name"},
            {"stage": "qualified", "status": "active", "sort": "-name"},
            {"value_min": "10", "value_max": "10", "sort": "-stage"},
            {"probability_min": "50", "probability_max": "50", "sort": "value,name"}]
CASES = [{"sort": s} for s in SORTS] + FILTERED


@pytest.mark.parametrize("params", CASES, ids=[str(c) for c in CASES])
def test_ties_of_one_import_fall_to_created_at_then_id(tied, params):
    sort = params["sort"]
    keep = [lead for lead in tied.leads if lead_keeps(lead["attributes"], params, NO_FACTS)]
    want = [lead["id"] for lead in sort_leads(keep, sort)]
    assert len(want) >= 6, "too few leads to page through"
    body = get_page(tied, dict(params, records=100))
    assert [d["id"] for d in body["data"]] == want
    assert body["meta"]["totalRecords"] == len(want)
    for records in (4, 7):
        paged = []
        for page in range(1, len(want) // records + 2):
            paged += [d["id"] for d in get_page(tied, dict(params, records=records, page=page))["data"]]
        assert paged == want, f"pages of {records}"
    ids, q = [], dict(params, records=4)
    for _ in range(40):
        body = get_page(tied, q)
        ids += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            break
        q = dict(params, records=4, cursor=body["meta"]["nextCursor"])
    assert ids == want, "the cursor walk"
