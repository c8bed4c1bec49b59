"""Bulk creates (POST /leads/import, POST /leads/batch) keep what a single
create keeps: SQLite writes their leads into the search index and the totals
a thousand at a time, by one statement, rather than one lead at a time. An
import of more than a thousand rows, and a batch whose creates are split by
an update, must still be found by search, add up in the summary, and each
have its history, exactly as leads created one by one."""

from decimal import Decimal

from apiutil import assert_status, body_json

STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"]


def summary(app, params=None):
    r = app.get("/leads/summary", params=params or {})
    assert_status(r, 200)
    return body_json(r)["data"]["attributes"]


def search_ids(app, term):
    ids, page = set(), 1
    while True:
        r = app.get("/leads/", params={"search": term, "records": 100, "page": page})
        assert_status(r, 200)
        data = body_json(r)["data"]
        ids |= {d["id"] for d in data}
        if len(data) < 100:
            return ids
        page += 1


def expected_stages(rows):
    """Per stage: count, value and weighted value of rows (name, source, cents, stage, probability)."""
    out = {s: [0, Decimal(0), Decimal(0)] for s in STAGES}
    for _, _, cents, stage, prob in rows:
        out[stage][0] += 1
        out[stage][1] += Decimal(cents) / 100
        out[stage][2] += Decimal(cents) / 100 * prob / 100
    return out


def check_summary(app, rows, params=None):
    got = summary(app, params)
    want = expected_stages(rows)
    assert int(got["totalRecords"]) == len(rows)
    for s in got["stages"]:
        n, value, weighted = want[s["stage"]]
        assert (int(s["count"]), Decimal(str(s["value"])), Decimal(str(s["weightedValue"]))) == \
            (n, value, weighted), s


def rows_of(n, tag):
    return [(f"{tag} row {i:05d}", "fair" if i % 3 == 0 else "web", 1000 * i + 25, STAGES[i % 5], i % 101)
            for i in range(n)]


def test_an_import_over_several_thousand_rows_is_searchable_summed_and_in_history(app):
    rows = rows_of(2345, "Quokka")
    text = "name,source,value,stage,probability\r\n" + "".join(
        f"{name},{src},{Decimal(cents) / 100},{stage},{prob}\r\n" for name, src, cents, stage, prob in rows)
    r = app.post("/leads/import", raw=text.encode(), content_type="text/csv")
    assert_status(r, 200)
    assert body_json(r) == {"meta": {"created": len(rows), "failed": 0}}
    check_summary(app, rows)
    check_summary(app, [row for row in rows if row[1] == "fair"], {"source": "fair"})
    # every row, the first and the last of each thousand included, is found
    assert len(search_ids(app, "quokka row")) == len(rows)
    for i in (0, 999, 1000, 1999, 2000, 2344):
        ids = search_ids(app, f"row {i:05d}")
        assert len(ids) == 1, (i, ids)
        (lead_id,) = ids
        lead = app.get_lead(lead_id)["attributes"]
        assert (lead["name"], lead["stage"], lead["probability"]) == (rows[i][0], rows[i][3], rows[i][4])
        hist = body_json(app.get(f"/leads/{lead_id}/history"))["data"]
        assert [h["attributes"]["action"] for h in hist] == ["created"]
        assert hist[0]["attributes"]["changes"]["name"] == [None, rows[i][0]]
    # a renamed imported lead leaves the index under its old name
    assert_status(app.put(f"/leads/{lead_id}", {"lead": {"name": "Wombat"}}), 200)
    assert search_ids(app, f"row {2344:05d}") == set()
    assert search_ids(app, "wombat") == {lead_id}


def test_a_batchs_creates_around_an_update_are_searchable_summed_and_in_order(app):
    old = app.create_lead(name="Old lead", value=10, stage="new", probability=50)
    rows = rows_of(300, "Numbat")
    ops = [{"op": "create", "lead": {"name": n, "source": s, "value": float(Decimal(c) / 100), "stage": st,
                                     "probability": p}} for n, s, c, st, p in rows[:150]]
    ops.append({"op": "update", "id": old["id"], "lead": {"stage": "qualified"}})
    ops += [{"op": "create", "lead": {"name": n, "source": s, "value": float(Decimal(c) / 100), "stage": st,
                                      "probability": p}} for n, s, c, st, p in rows[150:]]
    r = app.post("/leads/batch", {"operations": ops})
    assert_status(r, 200)
    data = body_json(r)["data"]
    assert len(data) == len(ops)
    names = [d["attributes"]["name"] for d in data]
    assert names == [row[0] for row in rows[:150]] + ["Old lead"] + [row[0] for row in rows[150:]]
    assert data[150]["attributes"]["stage"] == "qualified"
    check_summary(app, rows + [("Old lead", None, 1000, "qualified", 50)])
    created = {d["id"] for i, d in enumerate(data) if i != 150}
    assert search_ids(app, "numbat row") == created
    for i in (0, 149, 151, 300):
        hist = body_json(app.get(f"/leads/{data[i]['id']}/history"))["data"]
        assert [h["attributes"]["action"] for h in hist] == ["created"], i
    assert app.get_lead(data[300]["id"])["attributes"]["name"] == rows[299][0]
