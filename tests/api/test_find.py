"""Finding leads (extensions.md, "Finding leads", "Cursors"): every filter
of GET /leads/, OR within a parameter and AND across, every sort with ties
and unset values, count, and paging by page and by cursor, each compared
with a reference computed from the contract's rules (findref.py)."""

import datetime as dt
import random
import uuid

import pytest

from apiutil import assert_error, assert_status, body_json
from findref import fold, lead_keeps, sort_leads

ACCOUNTS = [str(uuid.UUID(int=0x7000_0000_0000_8000_0000_0000_0000 + i)) for i in range(3)]
CONTACTS = [str(uuid.UUID(int=0x7100_0000_0000_8000_0000_0000_0000 + i)) for i in range(2)]
NAMES = ["Acme Corp renewal", "ACME corp RENEWAL", "Ärger GmbH", "ärger gmbh", "Σοφία Deal", "σοφία deal",
         "Москва", "МОСКВА", "beta", "Beta", "zeta", "Éclair", "İstanbul", "Straße"]
SOURCES = [None, "website", "referral", "Cold Call", "cold call", "ΣΟΦΊΑ"]
VALUES = [None, 0, 100, 1500.5, 99999.99, "9999999999999.99"]
PROBABILITIES = [None, 0, 25, 50, 100]
PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"


def lead_attrs(rnd):
    a = {"name": rnd.choice(NAMES), "stage": rnd.choice(["new", "contacted", "qualified", "proposal",
                                                         "negotiation"]),
         "status": rnd.choice(["active", "inactive", "converted", "lost"])}
    for key, choices in (("source", SOURCES), ("account_id", ACCOUNTS + [None]),
                         ("contact_id", CONTACTS + [None]), ("value", VALUES),
                         ("probability", PROBABILITIES)):
        v = rnd.choice(choices)
        if v is not None:
            a[key] = v
    return a


@pytest.fixture(scope="module")
def seeded(server):
    """An app with 40 leads of every kind, some with follows (overdue,
    pending, completed); .leads: the leads as created, .facts by id."""
    app = server.new_app()
    rnd = random.Random(1010)
    app.leads, app.facts = [], {}
    for _ in range(40):
        lead = app.create_lead(**lead_attrs(rnd))
        kind = rnd.randrange(5)
        facts = {"overdue": False, "open": False}
        for due, status in {1: [(PAST, "pending")], 2: [(FUTURE, "pending")], 3: [(None, "completed")],
                            4: [(PAST, "pending"), (PAST, "completed")]}.get(kind, []):
            body = {"title": "Call", "status": status}
            if due:
                body["due_date"] = due
            app.create_follow(lead["id"], **body)
            facts["overdue"] |= status == "pending" and due == PAST
            facts["open"] |= status == "pending"
        app.facts[lead["id"]] = facts
        app.leads.append(lead)
    # A lead changed after it was made: updated_at differs from created_at.
    for lead in app.leads[::7]:
        r = app.put(f"/leads/{lead['id']}", {"lead": {"probability": 75}})
        assert_status(r, 200)
        lead.update(body_json(r)["data"])
    other = server.new_app()
    other.create_lead(name="Acme Corp renewal", stage="qualified", source="website")
    return app


def expected(app, params):
    keep = [lead for lead in app.leads if lead_keeps(lead["attributes"], params, app.facts[lead["id"]])]
    return [lead["id"] for lead in sort_leads(keep, params.get("sort"))]


def get_page(app, params):
    r = app.get("/leads/", params=params)
    assert_status(r, 200)
    return body_json(r)


def walk_by_cursor(app, params, records=7):
    """Every page by cursor; the ids, and the metas."""
    ids, metas = [], []
    q = dict(params, records=records)
    for _ in range(100):
        body = get_page(app, q)
        ids += [d["id"] for d in body["data"]]
        metas.append(body["meta"])
        if body["meta"]["nextCursor"] is None:
            return ids, metas
        q = dict(params, records=records, cursor=body["meta"]["nextCursor"])
    raise AssertionError("the walk did not end")


def check_find(app, params):
    want = expected(app, params)
    body = get_page(app, dict(params, records=100))
    got = [d["id"] for d in body["data"]]
    assert got == want, f"{params}: {len(got)} leads, want {len(want)}"
    assert body["meta"]["totalRecords"] == len(want)
    assert body["meta"]["nextCursor"] is None
    ids, metas = walk_by_cursor(app, params)
    assert ids == want, f"{params}: the cursor walk differs"
    assert all(m["page"] is None for m in metas[1:]), "a page chosen by cursor has page null"
    assert metas[0]["page"] == 1
    paged = []
    for page in range(1, len(want) // 5 + 2):
        paged += [d["id"] for d in get_page(app, dict(params, records=5, page=page))["data"]]
    assert paged == want, f"{params}: the page walk differs"


FILTERS = [
    {"stage": "qualified"},
    {"stage": "new,qualified"},
    {"stage": ["new", "proposal"]},
    {"stage[]": ["contacted", "negotiation"]},
    {"status": "lost"},
    {"status": "active,inactive", "stage": "new,contacted,qualified"},
    {"source": "website"},
    {"source": "Cold Call,cold call"},
    {"account_id": ACCOUNTS[0]},
    {"account_id": ACCOUNTS[1].upper()},
    {"account_id": f"{ACCOUNTS[0]},null"},
    {"account_id": "null"},
    {"contact_id": ",".join(CONTACTS)},
    {"contact_id": "null", "account_id": "null"},
    {"value_min": "100"},
    {"value_max": "1500.5"},
    {"value_min": "0", "value_max": "99999.99"},
    {"value_min": "1e2"},
    {"value_min": "9999999999999.99"},
    {"probability_min": "25"},
    {"probability_min": "25", "probability_max": "50"},
    {"probability_max": "0"},
    {"search": "acme"},
    {"search": "CORP REN"},
    {"search": "ärger"},
    {"search": "ÄRGER GMBH"},
    {"search": "σοφία"},
    {"search": "ΣΟΦΊΑ"},
    {"search": "москва"},
    {"search": "мо"},
    {"search": "e"},
    {"search": "  cold call  "},
    {"search": "nothing like this"},
    {"search": "%"},
    {"search": "_"},
    {"has_overdue": "true"},
    {"has_overdue": "false"},
    {"has_open_follows": "true"},
    {"has_open_follows": "false"},
    {"has_overdue": "false", "has_open_follows": "true", "stage": "new,contacted,proposal"},
    {"stage": "qualified,proposal,negotiation", "status": "active,lost", "value_min": "1",
     "probability_min": "1", "has_open_follows": "false"},
]


@pytest.mark.parametrize("params", FILTERS, ids=[str(f) for f in FILTERS])
def test_every_filter_or_within_and_across(seeded, params):
    query = {}
    ref = {}
    for k, v in params.items():
        name = k[:-2] if k.endswith("[]") else k
        query[k] = v
        ref[name] = v if not isinstance(v, list) else v
    check_find(seeded, ref if not any(k.endswith("[]") or isinstance(v, list) for k, v in params.items())
               else _ref_of(params))
    # The query as given (brackets, repeats) finds what the reference does.
    body = get_page(seeded, dict(query, records=100))
    assert [d["id"] for d in body["data"]] == expected(seeded, _ref_of(params))


def _ref_of(params):
    ref = {}
    for k, v in params.items():
        name = k[:-2] if k.endswith("[]") else k
        ref[name] = ",".join(v) if isinstance(v, list) else v
    return ref


def test_time_ranges(seeded):
    stamps = sorted(lead["attributes"]["created_at"] for lead in seeded.leads)
    lo, hi = stamps[5], stamps[30]
    check_find(seeded, {"created_from": lo, "created_to": hi})
    check_find(seeded, {"created_to": lo})
    ups = sorted(lead["attributes"]["updated_at"] for lead in seeded.leads)
    check_find(seeded, {"updated_from": ups[20]})
    check_find(seeded, {"updated_from": ups[2], "updated_to": ups[-3], "stage": "new,qualified"})
    # Any offset, read in UTC; _to exclusive, _from inclusive.
    at = dt.datetime.strptime(lo, "%Y-%m-%dT%H:%M:%S.%fZ")
    plus2 = (at + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
    a = [d["id"] for d in get_page(seeded, {"created_from": lo, "records": 100})["data"]]
    b = [d["id"] for d in get_page(seeded, {"created_from": plus2, "records": 100})["data"]]
    assert a == b


SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "name", "-name", "value", "-value",
         "probability", "-probability", "stage", "-stage", "stage,-value", "-probability,name",
         "value,-stage,name", "-name,created_at", "-updated_at,probability"]


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_with_ties_and_unset_values(seeded, sort):
    check_find(seeded, {"sort": sort})
    check_find(seeded, {"sort": sort, "stage": "new,qualified,negotiation"})


def test_name_sorts_by_folding_and_unset_values_come_last(seeded):
    data = get_page(seeded, {"sort": "name", "records": 100})["data"]
    folded = [fold(d["attributes"]["name"]) for d in data]
    assert folded == sorted(folded)
    for sort in ("value", "-value", "probability", "-probability"):
        data = get_page(seeded, {"sort": sort, "records": 100})["data"]
        field = sort.lstrip("-")
        values = [d["attributes"][field] for d in data]
        first_unset = values.index(None)
        assert all(v is None for v in values[first_unset:]), f"{sort}: unset values last"


def test_count_none_leaves_the_totals_out(seeded):
    body = get_page(seeded, {"stage": "qualified", "count": "none", "records": 3})
    assert "totalRecords" not in body["meta"] and "totalPages" not in body["meta"]
    assert body["meta"]["records"] == 3 and body["meta"]["page"] == 1
    exact = get_page(seeded, {"stage": "qualified", "count": "exact", "records": 3})
    assert exact["meta"]["totalRecords"] == len(expected(seeded, {"stage": "qualified"}))
    assert exact["data"] == body["data"]
    # The plain list too.
    plain = get_page(seeded, {"count": "none"})
    assert "totalRecords" not in plain["meta"] and len(plain["data"]) == 15


def test_every_list_has_a_next_cursor_and_the_last_page_null(seeded):
    plain = get_page(seeded, {"records": 15})
    assert isinstance(plain["meta"]["nextCursor"], str)
    ids, metas = walk_by_cursor(seeded, {}, records=15)
    assert ids == expected(seeded, {})
    assert metas[-1]["nextCursor"] is None
    last = get_page(seeded, {"page": 3, "records": 15})
    assert last["meta"]["nextCursor"] is None and len(last["data"]) == 10
    assert get_page(seeded, {"page": 9, "records": 15})["meta"]["nextCursor"] is None
    # From a page chosen by number, the cursor goes on from there.
    p2 = get_page(seeded, {"page": 2, "records": 10, "sort": "-value"})
    nxt = get_page(seeded, {"cursor": p2["meta"]["nextCursor"], "records": 10, "sort": "-value"})
    want = expected(seeded, {"sort": "-value"})
    assert [d["id"] for d in nxt["data"]] == want[20:30]


def cursor_of(app, params):
    body = get_page(app, dict(params, records=3))
    assert body["meta"]["nextCursor"]
    return body["meta"]["nextCursor"]


def test_a_cursor_is_bound_to_its_filters_sort_and_app(seeded, server):
    cur = cursor_of(seeded, {"stage": "new,qualified", "sort": "-value"})
    ok = seeded.get("/leads/", params={"stage": "qualified,new", "sort": "-value", "cursor": cur})
    assert_status(ok, 200)  # the same filter, written in another order
    for params in ({"stage": "new", "sort": "-value"}, {"stage": "new,qualified", "sort": "value"},
                   {"stage": "new,qualified"}, {"stage": "new,qualified", "sort": "-value", "search": "a"},
                   {"stage": "new,qualified", "sort": "-value", "page": 2}):
        r = seeded.get("/leads/", params=dict(params, cursor=cur))
        errs = assert_error(r, 422, "validation_error")
        assert [e["source"] for e in errs] == [{"parameter": "cursor"}], params
    # records and count may change between pages.
    assert_status(seeded.get("/leads/", params={"stage": "new,qualified", "sort": "-value", "cursor": cur,
                                                "records": 50, "count": "none"}), 200)
    other = server.new_app()
    errs = assert_error(other.get("/leads/", params={"stage": "new,qualified", "sort": "-value", "cursor": cur}),
                        422, "validation_error")
    assert errs[0]["source"] == {"parameter": "cursor"}
    # A cursor of the follows is not one of the leads.
    lead = seeded.leads[0]["id"]
    for _ in range(3):
        seeded.create_follow(lead)
    fcur = body_json(seeded.get(f"/leads/{lead}/follows", params={"records": 1}))["meta"]["nextCursor"]
    assert_error(seeded.get("/leads/", params={"cursor": fcur}), 422, "validation_error")


@pytest.mark.parametrize("change", ["flip", "cut", "extend", "garbage", "empty-ish", "long"])
def test_a_tampered_cursor_is_a_422_on_cursor(seeded, change):
    cur = cursor_of(seeded, {"sort": "name"})
    bad = {"flip": cur[:10] + ("A" if cur[10] != "A" else "B") + cur[11:], "cut": cur[:-1], "extend": cur + "A",
           "garbage": "not a cursor at all!", "empty-ish": "A", "long": "A" * 3000}[change]
    errs = assert_error(seeded.get("/leads/", params={"sort": "name", "cursor": bad}), 422, "validation_error")
    assert [e["source"] for e in errs] == [{"parameter": "cursor"}]


def test_cursor_and_page_together_is_a_422_on_cursor(seeded):
    cur = cursor_of(seeded, {})
    errs = assert_error(seeded.get("/leads/", params={"cursor": cur, "page": 1}), 422, "validation_error")
    assert [e["source"] for e in errs] == [{"parameter": "cursor"}]


@pytest.mark.parametrize("sort", ["-created_at", "value", "-stage", "name", "-probability,name"])
def test_a_cursor_walk_never_skips_or_repeats_while_leads_come_and_go(app, sort):
    rnd = random.Random(sort)
    for _ in range(30):
        app.create_lead(**lead_attrs(rnd))
    before = {d["id"] for d in app.list_all()}
    seen, deleted = [], set()
    params = {"sort": sort, "records": 4}
    for _ in range(60):
        body = get_page(app, params)
        seen += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            break
        params = {"sort": sort, "records": 4, "cursor": body["meta"]["nextCursor"]}
        # A new lead, and a lead not seen yet deleted, between the pages.
        app.create_lead(**lead_attrs(rnd))
        victim = next((i for i in sorted(before - set(seen) - deleted)), None)
        if victim:
            assert_status(app.delete(f"/leads/{victim}"), 204)
            deleted.add(victim)
    assert len(seen) == len(set(seen)), "a lead came twice"
    missing = before - deleted - set(seen)
    assert not missing, f"{len(missing)} leads skipped"


@pytest.mark.parametrize("params, names", [
    ({"stage": "won"}, ["stage"]),
    ({"stage": "new,"}, ["stage"]),
    ({"stage": ""}, ["stage"]),
    ({"status": "open"}, ["status"]),
    ({"account_id": "not-a-uuid"}, ["account_id"]),
    ({"contact_id": "NULL"}, ["contact_id"]),
    ({"value_min": "12.345"}, ["value_min"]),
    ({"value_max": "-1"}, ["value_max"]),
    ({"value_min": "1e13"}, ["value_min"]),
    ({"value_min": " 5"}, ["value_min"]),
    ({"probability_min": "101"}, ["probability_min"]),
    ({"probability_max": "40.5"}, ["probability_max"]),
    ({"created_from": "2026-02-30T00:00:00Z"}, ["created_from"]),
    ({"updated_to": "yesterday"}, ["updated_to"]),
    ({"search": "   "}, ["search"]),
    ({"search": "x" * 101}, ["search"]),
    ({"has_overdue": "yes"}, ["has_overdue"]),
    ({"has_open_follows": "1"}, ["has_open_follows"]),
    ({"sort": "price"}, ["sort"]),
    ({"sort": "name,-name"}, ["sort"]),
    ({"sort": "+name"}, ["sort"]),
    ({"sort": "name,"}, ["sort"]),
    ({"count": "some"}, ["count"]),
    ({"stage": "won", "value_min": "x", "records": "0", "sort": "nope"}, ["stage", "value_min", "records", "sort"]),
])
def test_bad_values_are_422s_naming_every_parameter(seeded, params, names):
    errs = assert_error(seeded.get("/leads/", params=params), 422, "validation_error")
    assert sorted(e["source"]["parameter"] for e in errs) == sorted(names)


def test_source_values_are_trimmed_and_exact(seeded):
    a = [d["id"] for d in get_page(seeded, {"source": "  website ", "records": 100})["data"]]
    assert a == expected(seeded, {"source": "website"})
    assert get_page(seeded, {"source": "WEBSITE"})["data"] == []


def test_a_kept_filtered_page_never_outlives_a_write(app):
    """Filtered pages are kept in the response cache (SQLite): every lead
    write of the app makes them stale before it is acknowledged."""
    first = app.create_lead(name="Kept", stage="qualified", value=10)
    params = {"stage": "qualified", "sort": "-value", "count": "none"}
    assert [d["id"] for d in get_page(app, params)["data"]] == [first["id"]]
    assert [d["id"] for d in get_page(app, params)["data"]] == [first["id"]]  # now from the cache
    second = app.create_lead(name="Newer", stage="qualified", value=20)
    assert [d["id"] for d in get_page(app, params)["data"]] == [second["id"], first["id"]]
    assert_status(app.put(f"/leads/{first['id']}", {"lead": {"value": 30}}), 200)
    assert [d["id"] for d in get_page(app, params)["data"]] == [first["id"], second["id"]]
    assert_status(app.put(f"/leads/{second['id']}", {"lead": {"stage": "new"}}), 200)
    assert [d["id"] for d in get_page(app, params)["data"]] == [first["id"]]
    assert_status(app.delete(f"/leads/{first['id']}"), 204)
    assert get_page(app, params)["data"] == []
    # Another filter, count or sort is another page, not the kept one.
    assert [d["id"] for d in get_page(app, dict(params, stage="new"))["data"]] == [second["id"]]


ONE_AT_A_TIME = [  # (attribute, its new value, the filters that must now find it, those that must not)
    ("name", "Zephyr renewal", {"search": "zephyr", "sort": "name"}, {"search": "first name"}),
    ("source", "Trade Show", {"source": "Trade Show", "search": "trade sh"}, {"source": "website"}),
    ("account_id", ACCOUNTS[1], {"account_id": ACCOUNTS[1]}, {"account_id": ACCOUNTS[0]}),
    ("contact_id", CONTACTS[1], {"contact_id": CONTACTS[1]}, {"contact_id": CONTACTS[0]}),
    ("value", "777.5", {"value_min": "777", "value_max": "778", "sort": "-value"}, {"value_max": "101"}),
    ("stage", "proposal", {"stage": "proposal", "sort": "stage"}, {"stage": "new"}),
    ("probability", 90, {"probability_min": "90", "sort": "probability"}, {"probability_max": "10"}),
    ("status", "converted", {"status": "converted"}, {"status": "active"}),
]


def test_a_put_of_one_attribute_moves_the_lead_in_every_index(app):
    """A PUT writes only the attributes it names: each one, changed alone,
    is found by its new value and not by its old one, through the filters,
    the sorts and search, and the others keep theirs."""
    lead = app.create_lead(name="First name", source="website", account_id=ACCOUNTS[0],
                           contact_id=CONTACTS[0], value=100, stage="new", probability=5, status="active")
    attrs = dict(lead["attributes"])
    for key, value, finds, misses in ONE_AT_A_TIME:
        r = app.put(f"/leads/{lead['id']}", {"lead": {key: value}})
        assert_status(r, 200)
        now = body_json(r)["data"]["attributes"]
        assert {k: v for k, v in now.items() if k not in (key, "updated_at")} == \
            {k: v for k, v in attrs.items() if k not in (key, "updated_at")}
        attrs = now
        for params, found in ((finds, True), (misses, False)):
            ids = [d["id"] for d in get_page(app, dict(params, records=100))["data"]]
            assert (lead["id"] in ids) == found, f"after {key}: {params}"
        ids = [d["id"] for d in get_page(app, {"updated_from": now["updated_at"]})["data"]]
        assert ids == [lead["id"]]
