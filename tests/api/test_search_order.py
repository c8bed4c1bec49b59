"""Search in the list's order (extensions.md, "Finding leads", "Cursors"):
the edges of a search read from the index in created_at order, compared
with the contract's rules (findref.py): leads that share a created_at (an
import stamps all its rows with one) across page boundaries, by page and
by cursor, a recovered lead back in its old place, matches of other apps
in between (more of them than a walk passes over before it asks the
index for its app's matches only, and other apps holding the newest
leads, where SQLite asks for the app's matches from the start), rare
terms (read whole before the walk) and common ones, other filters beside
the search, and an import larger than the ties a walk sorts itself
(SQLite then takes another plan)."""

import time

from apiutil import assert_status, body_json
from findref import lead_keeps, sort_leads

NO_FACTS = {"overdue": False, "open": False}


def import_names(app, names, stage="new"):
    text = "name,stage\r\n" + "".join(f"{n},{stage}\r\n" for n in names)
    r = app.post("/leads/import", raw=text.encode(), content_type="text/csv")
    assert_status(r, 200)
    assert body_json(r)["meta"] == {"created": len(names), "failed": 0}


def all_leads(app):
    return app.list_all(records=100)


def get_page(app, params):
    r = app.get("/leads/", params=params)
    assert_status(r, 200)
    return body_json(r)


def expected(leads, params):
    keep = [lead for lead in leads if lead_keeps(lead["attributes"], params, NO_FACTS)]
    return [lead["id"] for lead in sort_leads(keep, params.get("sort"))]


def walk(app, params, records, limit=1000):
    """The ids of every page by cursor (at most limit pages)."""
    ids, q = [], dict(params, records=records)
    for _ in range(limit):
        body = get_page(app, q)
        ids += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            return ids
        q = dict(params, records=records, cursor=body["meta"]["nextCursor"])
    return ids


def check(app, leads, params):
    want = expected(leads, params)
    body = get_page(app, dict(params, records=100))
    assert [d["id"] for d in body["data"]] == want[:100], params
    assert body["meta"]["totalRecords"] == len(want), params
    assert walk(app, params, 7) == want, f"{params}: the cursor walk differs"
    paged = []
    for page in range(1, len(want) // 5 + 2):
        paged += [d["id"] for d in get_page(app, dict(params, records=5, page=page, count="none"))["data"]]
    assert paged == want, f"{params}: the page walk differs"
    return want


def test_ties_recoveries_and_other_apps_keep_the_lists_order(server):
    app, other = server.new_app(), server.new_app()
    old = app.create_lead(name="Quartz first", stage="qualified")
    other.create_lead(name="Quartz elsewhere")
    app.create_lead(name="Granite, no match")
    time.sleep(0.01)
    # Two imports: every row of each shares its created_at, more of them
    # than a page, so ties cross the page boundaries.
    import_names(app, [f"Quartz batch {i}" for i in range(23)])
    import_names(other, [f"Quartz other {i}" for i in range(9)])
    import_names(app, [f"QUARTZ second {i}" for i in range(12)], stage="qualified")
    for i in range(3):
        app.create_lead(name=f"quartz late {i}", stage="qualified" if i % 2 else "new")
        other.create_lead(name=f"quartz other late {i}")
    for i in range(8):
        app.create_lead(name=f"Jasper single {i}")
        other.create_lead(name=f"Jasper single {i}")
    # Newer than all of app's: more of other's matches than a walk passes
    # over before it asks the index for its app's only.
    import_names(other, [f"Quartz flood {i}" for i in range(40)])
    assert_status(app.delete(f"/leads/{old['id']}"), 204)
    assert_status(app.put(f"/leads/{old['id']}/recover"), 200)
    leads = all_leads(app)
    want = check(app, leads, {"search": "quartz"})
    assert len(want) == 39 and want[-1] == old["id"], "the recovered lead is back in its old place"
    assert leads[-1]["id"] == old["id"], "and in the plain list"
    # Terms of five characters or more held by few leads (of every app):
    # SQLite reads all their matches first, then walks them.
    check(app, leads, {"search": "QUARTZ B"})
    check(app, leads, {"search": "quartz b", "sort": "created_at"})
    check(app, leads, {"search": "tz second", "stage": "qualified"})
    check(other, all_leads(other), {"search": "z flood"})
    check(app, leads, {"search": "JASPER S"})
    check(app, leads, {"search": "jasper s", "sort": "created_at"})
    check(other, all_leads(other), {"search": "per single"})
    check(app, leads, {"search": "artz", "stage": "qualified"})
    check(app, leads, {"search": "quartz", "sort": "created_at"})
    check(app, leads, {"search": "quartz", "sort": "-created_at"})
    check(other, all_leads(other), {"search": "quartz"})


def test_an_import_of_many_ties_gives_the_same_pages(app):
    """More leads of one created_at than the walk sorts itself (4,096)."""
    app.create_lead(name="Zircon before")
    time.sleep(0.01)
    import_names(app, [f"Zircon {i}" for i in range(4200)])
    time.sleep(0.01)
    app.create_lead(name="Zircon after")
    leads = all_leads(app)
    want = expected(leads, {"search": "zircon"})
    assert len(want) == 4202 and want[-1] != want[0]
    body = get_page(app, {"search": "zircon", "records": 100})
    assert [d["id"] for d in body["data"]] == want[:100]
    assert body["meta"]["totalRecords"] == 4202
    body = get_page(app, {"search": "zircon", "records": 100, "page": 43, "count": "none"})
    assert [d["id"] for d in body["data"]] == want[4200:]
    assert walk(app, {"search": "ZIRC"}, 100, limit=3) == want[:300]


def test_a_search_reads_only_its_apps_span_of_keys(server):
    """SQLite walks the keys between the app's oldest and newest leads only:
    another app's matches older and newer than all of the app's (more of
    them than a page, and than a walk passes over), the app's own matches
    at both ends of its span (an import's ties at the newest), fewer of
    them than a page, and the span shrunk by a deleted newest lead."""
    app, other, empty = server.new_app(), server.new_app(), server.new_app()
    import_names(other, [f"Basalt old {i}" for i in range(40)])
    time.sleep(0.01)
    first = app.create_lead(name="Basalt first of app")
    for i in range(3):
        app.create_lead(name=f"Pumice {i}")
        other.create_lead(name=f"Basalt between {i}")
    import_names(app, [f"Basalt last {i}" for i in range(6)])
    newest = app.create_lead(name="Basalt newest of app")
    time.sleep(0.01)
    import_names(other, [f"Basalt new {i}" for i in range(40)])
    leads = all_leads(app)
    want = check(app, leads, {"search": "basalt"})
    assert len(want) == 8 and want[0] == newest["id"] and want[-1] == first["id"]
    check(app, leads, {"search": "basalt", "sort": "created_at"})
    check(app, leads, {"search": "BASALT L"})
    check(app, leads, {"search": "basalt l", "sort": "created_at"})
    check(app, leads, {"search": "salt", "stage": "new"})
    check(other, all_leads(other), {"search": "basalt"})
    check(other, all_leads(other), {"search": "basalt", "sort": "created_at"})
    assert_status(app.delete(f"/leads/{newest['id']}"), 204)
    want = check(app, all_leads(app), {"search": "basalt"})
    assert len(want) == 7 and newest["id"] not in want
    # An app without leads has no span: nothing to walk.
    for params in ({"search": "basalt"}, {"search": "basalt new"}, {"search": "basalt", "sort": "created_at"}):
        body = get_page(empty, params)
        assert body["data"] == [] and body["meta"]["totalRecords"] == 0, params
