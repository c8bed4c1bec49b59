"""The pipeline summary (extensions.md, "Pipeline summary"): its shape,
every sum checked against an independent computation over random data
with Python's decimal (exact to the cent), under filters, after updates
and deletes, and beyond what 64 bits hold."""

import random
import uuid
from decimal import Decimal

import pytest
import requests

from apiutil import assert_error, assert_status, exact_json
from findref import STAGES, STATUSES, lead_keeps

PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"


def summary(app, params=None):
    r = app.get("/leads/summary", params=params or {})
    assert_status(r, 200)
    return exact_json(r.text)["data"]


def num(raw):
    """A JSON number kept as its text, as an exact Decimal."""
    return Decimal(raw)


def reference(leads, facts, params=None):
    keep = [lead for lead in leads if lead_keeps(lead["attributes"], params or {}, facts[lead["id"]])]

    def sums(group):
        value = sum((Decimal(str(a["value"])) for a in group if a["value"] is not None), Decimal(0))
        weighted = sum((Decimal(str(a["value"])) * a["probability"] / 100 for a in group
                        if a["value"] is not None and a["probability"] is not None), Decimal(0))
        return len(group), value, weighted
    attrs = [lead["attributes"] for lead in keep]
    return {"all": sums(attrs), "overdue": sum(facts[lead["id"]]["overdue_n"] for lead in keep),
            "stages": {s: sums([a for a in attrs if a["stage"] == s]) for s in STAGES},
            "statuses": {s: sums([a for a in attrs if a["status"] == s]) for s in STATUSES}}


def expect_summary(got, ref):
    a = got["attributes"]
    assert got["id"] == "summary" and got["type"] == "lead_summary"
    n, value, weighted = ref["all"]
    assert int(a["totalRecords"]) == n
    assert num(a["totalValue"]) == value, (a["totalValue"], value)
    assert num(a["weightedValue"]) == weighted, (a["weightedValue"], weighted)
    assert [s["stage"] for s in a["stages"]] == STAGES
    assert [s["status"] for s in a["statuses"]] == STATUSES
    for s in a["stages"]:
        n, value, weighted = ref["stages"][s["stage"]]
        assert (int(s["count"]), num(s["value"]), num(s["weightedValue"])) == (n, value, weighted), s
    for s in a["statuses"]:
        n, value, _ = ref["statuses"][s["status"]]
        assert (int(s["count"]), num(s["value"])) == (n, value), s
        assert "weightedValue" not in s
    assert int(a["overdueFollows"]) == ref["overdue"]


def random_value(rnd):
    if rnd.random() < 0.2:
        return None
    cents = rnd.choice([0, 1, 5, 99, rnd.randrange(10**6), rnd.randrange(10**15)])
    return f"{cents // 100}.{cents % 100:02d}"


ACCOUNTS = [str(uuid.UUID(int=0x7300_0000_0000_8000_0000_0000_0000 + i)) for i in range(3)]
CONTACTS = [str(uuid.UUID(int=0x7400_0000_0000_8000_0000_0000_0000 + i)) for i in range(2)]


@pytest.fixture(scope="module")
def seeded(server):
    app = server.new_app()
    rnd = random.Random(2024)
    more = random.Random(4048)  # accounts, contacts, next steps and updates
    app.leads, app.facts = [], {}
    for i in range(60):
        attrs = {"name": f"Deal {i}", "stage": rnd.choice(STAGES), "status": rnd.choice(STATUSES),
                 "source": rnd.choice(["website", "referral", None]),
                 "account_id": more.choice(ACCOUNTS + [None]), "contact_id": more.choice(CONTACTS + [None])}
        v = random_value(rnd)
        if v is not None:
            attrs["value"] = v
        if rnd.random() < 0.8:
            attrs["probability"] = rnd.randrange(101)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        lead = app.create_lead(**attrs)
        overdue = rnd.choice([0, 0, 1, 2])
        for _ in range(overdue):
            app.create_follow(lead["id"], title="Late", due_date=PAST)
        if rnd.random() < 0.3:
            app.create_follow(lead["id"], title="Done", due_date=PAST, status="completed")
        # A next step planned, not overdue: open without overdue.
        planned = more.random() < 0.3
        if planned:
            app.create_follow(lead["id"], title="Next", due_date=FUTURE if more.random() < 0.5 else None)
        app.facts[lead["id"]] = {"overdue": overdue > 0, "open": overdue > 0 or planned, "overdue_n": overdue}
        app.leads.append(lead)
    # Leads changed after they were made: updated_at apart from created_at.
    for lead in app.leads[3::4]:
        r = app.put(f"/leads/{lead['id']}", {"lead": {"value": random_value(more), "probability": more.randrange(101)}})
        assert_status(r, 200)
        lead.update(r.json()["data"])
    return app


@pytest.mark.parametrize("params", [None, {"stage": "qualified"}, {"stage": "new,proposal", "status": "active"},
                                    {"status": "lost,converted"}, {"source": "website"},
                                    {"value_min": "100", "probability_min": "50"}, {"search": "deal 1"},
                                    {"has_overdue": "true"}, {"has_overdue": "false", "stage": "negotiation"}])
def test_sums_match_an_independent_computation(seeded, params):
    expect_summary(summary(seeded, params), reference(seeded.leads, seeded.facts, params))


MORE_FILTERS = [
    {"account_id": ACCOUNTS[0]}, {"account_id": f"{ACCOUNTS[1]},null"}, {"account_id": "null"},
    {"account_id": ACCOUNTS[2].upper(), "stage": "new,qualified,negotiation"},
    {"contact_id": CONTACTS[0]}, {"contact_id": "null"}, {"contact_id": ",".join(CONTACTS), "account_id": ACCOUNTS[0]},
    {"value_max": "5000.00"}, {"value_max": "0.99"}, {"value_min": "1", "value_max": "9999999"},
    {"probability_max": "30"}, {"probability_max": "0"}, {"probability_min": "20", "probability_max": "80"},
    {"value_max": "100000", "probability_max": "60", "status": "active,lost"},
    {"has_open_follows": "true"}, {"has_open_follows": "false"},
    {"has_open_follows": "true", "has_overdue": "false"}, {"has_open_follows": "false", "stage": "new,contacted"},
]


@pytest.mark.parametrize("params", MORE_FILTERS, ids=[str(p) for p in MORE_FILTERS])
def test_sums_under_every_other_filter(seeded, params):
    ref = reference(seeded.leads, seeded.facts, params)
    assert 0 < ref["all"][0] < len(seeded.leads) or params in ({"value_max": "0.99"}, {"probability_max": "0"}), \
        "a filter that keeps all or nothing proves little"
    expect_summary(summary(seeded, params), ref)


def test_sums_under_time_ranges(seeded):
    created = sorted(lead["attributes"]["created_at"] for lead in seeded.leads)
    updated = sorted(lead["attributes"]["updated_at"] for lead in seeded.leads)
    assert updated != created, "some leads were changed after they were made"
    # Bounds that are a lead's own stamps: _from keeps it, _to leaves it out.
    for params in ({"created_from": created[10], "created_to": created[40]}, {"created_to": created[25]},
                   {"created_from": created[-7]}, {"updated_from": updated[45]},
                   {"updated_from": updated[5], "updated_to": updated[50], "stage": "new,qualified,proposal"},
                   {"created_to": created[30], "updated_from": updated[30]}):
        ref = reference(seeded.leads, seeded.facts, params)
        assert 0 < ref["all"][0] < len(seeded.leads), params
        expect_summary(summary(seeded, params), ref)


def test_totals_follow_updates_and_deletes(app):
    rnd = random.Random(7)
    leads, facts = [], {}
    for i in range(25):
        lead = app.create_lead(name=f"L{i}", stage=rnd.choice(STAGES), value=random_value(rnd) or "1",
                               probability=rnd.randrange(101))
        leads.append(lead)
        facts[lead["id"]] = {"overdue": False, "open": False, "overdue_n": 0}
    for lead in leads[:10]:
        change = {"stage": rnd.choice(STAGES), "status": rnd.choice(STATUSES), "value": random_value(rnd),
                  "probability": rnd.choice([None, rnd.randrange(101)])}
        r = app.put(f"/leads/{lead['id']}", {"lead": change})
        assert_status(r, 200)
        lead.update(r.json()["data"])
    for lead in leads[10:15]:
        assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    alive = leads[:10] + leads[15:]
    expect_summary(summary(app), reference(alive, facts))
    expect_summary(summary(app, {"stage": "qualified,new"}), reference(alive, facts, {"stage": "qualified,new"}))


def test_an_empty_app_lists_every_stage_and_status_with_zeros(app):
    a = summary(app)["attributes"]
    assert a["totalRecords"] == "0" and a["totalValue"] == "0" and a["weightedValue"] == "0"
    assert [s["stage"] for s in a["stages"]] == STAGES
    assert all(s["count"] == "0" and s["value"] == "0" and s["weightedValue"] == "0" for s in a["stages"])
    assert [s["status"] for s in a["statuses"]] == STATUSES


def test_sums_beyond_64_bits_stay_exact(app):
    # 100 leads of the largest value at 100%: their weighted value, in the
    # store's hundredths of a cent, is 10^19, past a signed 64-bit sum.
    top = "9999999999999.99"
    for i in range(100):
        app.create_lead(name=f"Whale {i}", value=top, probability=100, stage="negotiation", source="whale")
    app.create_lead(name="Odd", value="0.01", probability=33, stage="negotiation")
    for params in (None, {"source": "whale"}, {"stage": "negotiation"}):
        a = summary(app, params)["attributes"]
        whales = Decimal(top) * 100
        odd = Decimal("0.01") if params != {"source": "whale"} else 0
        assert num(a["totalValue"]) == whales + odd
        assert num(a["weightedValue"]) == whales + (Decimal("0.0033") if odd else 0)
        assert a["totalValue"] == ("999999999999999.01" if odd else "999999999999999")
    assert summary(app)["attributes"]["weightedValue"] == "999999999999999.0033"


def test_weighted_values_keep_four_decimals(app):
    app.create_lead(name="a", value="0.01", probability=1)
    app.create_lead(name="b", value="10.05", probability=33)
    a = summary(app)["attributes"]
    assert a["weightedValue"] == "3.3166"  # 0.0001 + 3.3165
    assert a["totalValue"] == "10.06"


@pytest.mark.parametrize("name", ["sort", "page", "records", "cursor", "count", "format"])
def test_the_summary_takes_no_paging_or_sort(seeded, name):
    errs = assert_error(seeded.get("/leads/summary", params={name: "1"}), 422, "unknown_parameter")
    assert errs[0]["source"] == {"parameter": name}


def test_bad_filters_are_reported_together(seeded):
    errs = assert_error(seeded.get("/leads/summary", params={"stage": "won", "value_min": "-1", "x": "1"}), 422,
                        {"validation_error", "unknown_parameter"})
    assert sorted(e["source"]["parameter"] for e in errs) == ["stage", "value_min", "x"]


def test_summary_is_a_fixed_word_not_an_id(seeded, server):
    r = requests.put(server.base_url + "/leads/summary", headers=seeded.headers, json={"lead": {}}, timeout=10)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, HEAD"
    assert_status(seeded.get("/leads/summary/"), 200)
    assert_error(seeded.get("/leads/summary/follows"), 404, "not_found")


def listed_state(app):
    """The app's leads and their follow facts, as the lists show them."""
    leads = app.list_all()
    facts = {lead["id"]: {"overdue": False, "open": False, "overdue_n": 0} for lead in leads}
    for f in app.list_all("/follows/"):
        fact = facts[f["relationships"]["lead"]["data"]["id"]]
        status = f["attributes"]["status"]
        fact["overdue_n"] += status == "overdue"
        fact["overdue"] |= status == "overdue"
        fact["open"] |= status != "completed"
    return leads, facts


def import_rows(app, rows, mode=None):
    text = "name,stage,value,probability\r\n" + "".join(",".join(map(str, row)) + "\r\n" for row in rows)
    return app.post("/leads/import", raw=text.encode(), content_type="text/csv",
                    params={"mode": mode} if mode else None)


def test_the_summary_equals_the_lists_after_every_kind_of_write(app):
    """The unfiltered sums are kept as writes happen: after each kind of
    write (create, import, batch, update, trash, recovery, purge, follows
    made, completed, moved and deleted, and writes refused whole) they
    equal the independent computation over what the lists hold."""
    rnd = random.Random(99)
    checks = [None, {"stage": "qualified,new"}, {"has_overdue": "true"}, {"has_open_follows": "false"}]

    def expect_all(step):
        leads, facts = listed_state(app)
        for params in checks:
            got = summary(app, params)
            try:
                expect_summary(got, reference(leads, facts, params))
            except AssertionError as e:
                raise AssertionError(f"after {step}, {params}: {e}") from e
        return leads

    def lead_attrs():
        a = {"name": f"Deal {rnd.randrange(1000)}", "stage": rnd.choice(STAGES), "status": rnd.choice(STATUSES),
             "value": random_value(rnd), "probability": rnd.choice([None, 0, rnd.randrange(101)])}
        return {k: v for k, v in a.items() if v is not None}

    made = [app.create_lead(**lead_attrs()) for _ in range(6)]
    expect_all("creates")
    rows = [(f"Row {i}", rnd.choice(STAGES), random_value(rnd) or "", rnd.choice(["", 10, 75])) for i in range(8)]
    assert_status(import_rows(app, rows), 200)
    expect_all("an import")
    assert import_rows(app, rows[:2] + [("Bad", "won", "1", "1")]).status_code == 422
    assert_status(app.post("/leads/batch", {"operations": [{"op": "create", "lead": lead_attrs()},
                                                           {"op": "delete", "id": made[0]["id"]},
                                                           {"op": "update", "id": made[1]["id"],
                                                            "lead": {"stage": "won"}}]}), 422)
    expect_all("an import and a batch refused whole")
    r = app.post("/leads/batch", {"operations": [
        {"op": "create", "lead": lead_attrs()}, {"op": "create", "lead": lead_attrs()},
        {"op": "update", "id": made[1]["id"], "lead": {"value": "123.45", "probability": 33, "stage": "proposal"}},
        {"op": "update", "id": made[2]["id"], "lead": {"value": None}},
        {"op": "delete", "id": made[3]["id"]}]})
    assert_status(r, 200)
    expect_all("a batch")
    for lead, change in ((made[4], {"probability": None}), (made[5], {"value": "0.07", "probability": 99}),
                         (made[2], {"stage": "qualified", "status": "lost", "value": "5000"})):
        assert_status(app.put(f"/leads/{lead['id']}", {"lead": change}), 200)
    expect_all("updates")
    late = [app.create_follow(made[i]["id"], title="Late", due_date=PAST) for i in (1, 1, 2, 4)]
    app.create_follow(made[5]["id"], title="Next", due_date=FUTURE)
    expect_all("follows made")
    assert_status(app.put(f"/leads/{made[1]['id']}/follows/{late[0]['id']}", {"follow": {"status": "completed"}}), 200)
    assert_status(app.put(f"/leads/{made[2]['id']}/follows/{late[2]['id']}", {"follow": {"due_date": FUTURE}}), 200)
    assert_status(app.delete(f"/leads/{made[4]['id']}/follows/{late[3]['id']}"), 204)
    expect_all("follows completed, moved and deleted")
    for lead in (made[1], made[5]):
        assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    expect_all("leads with follows trashed")
    assert_status(app.put(f"/leads/{made[1]['id']}/recover"), 200)
    expect_all("a recovery")
    assert_status(app.delete(f"/leads/trash/{made[5]['id']}"), 204)
    assert_status(app.delete(f"/leads/trash/{made[3]['id']}"), 204)
    leads = expect_all("purges")
    assert len(leads) == 6 - 2 + 8 + 2, "every write above took effect"
