"""A large POST /leads/import on either backend: every row's lead, its count
and its figures in the summary exactly, with many distinct sources (one
lead_totals cell each), and an import that fails leaving nothing behind.
On PostgreSQL an import is one unit of work whose statements are pipelined
(src/store/postgres/leads.c: pg_lead_create_many), so these check that
nothing of that is lost or kept twice."""

from decimal import Decimal

from apiutil import assert_error, assert_status, body_json, exact_json

STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"]
ROWS = 3000


def import_csv(app, text, mode="all"):
    return app.post("/leads/import", raw=text.encode("utf-8"), content_type="text/csv",
                    params={"mode": mode})


def summary(app, params=None):
    r = app.get("/leads/summary", params=params or {})
    assert_status(r, 200)
    return exact_json(r.text)["data"]["attributes"]


def lead_count(app):
    r = app.get("/leads", params={"records": 1})
    assert_status(r, 200)
    return body_json(r)["meta"]["totalRecords"]


def row(i, tag):
    """Row i of a file: its CSV line and the figures it adds (stage, cents, weighted cents * 100)."""
    cents = (i * 7919) % 10_000_000 if i % 5 else None
    probability = i % 101 if i % 3 else None
    stage = STAGES[i % len(STAGES)]
    value = f"{cents // 100}.{cents % 100:02d}" if cents is not None else ""
    prob = str(probability) if probability is not None else ""
    line = f"{tag} lead {i},{tag}-src-{i},{value},{prob},{stage}"
    weighted = cents * probability if cents is not None and probability is not None else 0
    return line, stage, cents or 0, weighted


def expected(rows):
    n = len(rows)
    value = sum(Decimal(c) for _, _, c, _ in rows) / 100
    weighted = sum(Decimal(w) for _, _, _, w in rows) / 10000
    stages = {s: [r for r in rows if r[1] == s] for s in STAGES}
    return n, value, weighted, stages


def check_summary(app, rows):
    n, value, weighted, stages = expected(rows)
    a = summary(app)
    assert int(a["totalRecords"]) == n
    assert Decimal(a["totalValue"]) == value, (a["totalValue"], value)
    assert Decimal(a["weightedValue"]) == weighted, (a["weightedValue"], weighted)
    got = {s["stage"]: s for s in a["stages"]}
    for stage, group in stages.items():
        assert int(got[stage]["count"]) == len(group), stage
        assert Decimal(got[stage]["value"]) == sum(Decimal(c) for _, _, c, _ in group) / 100, stage


def test_a_large_import_with_distinct_sources_counts_every_lead_exactly(app):
    text = "name,source,value,probability,stage\r\n"
    rows = [row(i, "a") for i in range(ROWS)]
    text += "".join(line + "\r\n" for line, *_ in rows)
    r = import_csv(app, text)
    assert_status(r, 200)
    assert body_json(r) == {"meta": {"created": ROWS, "failed": 0}}
    check_summary(app, rows)
    # The list's total is the app's lead count, kept apart from the totals.
    assert lead_count(app) == ROWS
    # A source's figures are its own cell's.
    for i in (0, 1, 2, ROWS // 2, ROWS - 1):
        _, stage, cents, _ = rows[i]
        a = summary(app, {"source": f"a-src-{i}"})
        assert int(a["totalRecords"]) == 1, i
        assert Decimal(a["totalValue"]) == Decimal(cents) / 100, i
    # Every lead has its history: its creation.
    lead = body_json(app.get("/leads", params={"records": 1}))["data"][0]
    changes = body_json(app.get(f"/leads/{lead['id']}/history"))["data"]
    assert [c["attributes"]["action"] for c in changes] == ["created"]

    # A second import adds to the same cells and to new ones.
    more = [row(i, "a") for i in range(ROWS - 10, ROWS)] + [row(i, "b") for i in range(500)]
    r = import_csv(app, "name,source,value,probability,stage\r\n" + "".join(line + "\r\n" for line, *_ in more))
    assert_status(r, 200)
    assert body_json(r)["meta"]["created"] == len(more)
    check_summary(app, rows + more)
    a = summary(app, {"source": f"a-src-{ROWS - 1}"})
    assert int(a["totalRecords"]) == 2


def test_a_failing_import_changes_nothing(app):
    rows = [row(i, "c") for i in range(200)]
    r = import_csv(app, "name,source,value,probability,stage\r\n" + "".join(line + "\r\n" for line, *_ in rows))
    assert_status(r, 200)
    before = summary(app)
    # mode=all with one bad row, the last: nothing is imported.
    bad = [row(i, "d") for i in range(ROWS)]
    text = "name,source,value,probability,stage\r\n" + "".join(line + "\r\n" for line, *_ in bad)
    text += "d last,d-src-last,1.234,5,new\r\n"
    errs = assert_error(import_csv(app, text), 422)
    assert [e["source"]["pointer"] for e in errs] == [f"/rows/{ROWS + 2}/value"]
    assert summary(app) == before
    assert lead_count(app) == 200
    # The same file without its bad row imports whole afterwards.
    text = "name,source,value,probability,stage\r\n" + "".join(line + "\r\n" for line, *_ in bad)
    assert_status(import_csv(app, text), 200)
    check_summary(app, rows + bad)
