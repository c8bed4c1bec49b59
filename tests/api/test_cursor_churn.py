"""Cursor walks while records come and go (extensions.md, "Cursors": "A
walk by cursors never skips or repeats a record, even while other records
are created or deleted during the walk. The same holds for the follows
lists."): a lead's follows, the app's follows in other orders, and the
leads under filters and a sort. Between two pages, records are created
(some before the walk's place, some after it, some tied with records
already there), records not yet seen are deleted, and so is the last
record seen, the one the next cursor starts after; imports add ties of
created_at; leads go to the trash and come back. The walk must show
every record present throughout exactly once, never a record after its
delete (or while in the trash), only records that match, in the
reference's order (findref.py)."""

import datetime as dt
import random
import uuid

import pytest

from apiutil import assert_status, body_json
from findref import STAGES, STATUSES, lead_keeps, sort_follows, sort_leads

NOW = dt.datetime.now(dt.timezone.utc)
NO_FACTS = {"overdue": False, "open": False}


def when(days):
    return None if days is None else (NOW + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def walk_while_changing(app, path, params, change, records=3, gone=None):
    """Walks path by cursor; after each page but the last, change(seen,
    page_no) writes and returns the ids it deleted (seen: the records seen
    so far). Returns the records seen, in order, and gone: the page after
    which each deleted id went (a change that brings records back takes
    them out of gone, given here)."""
    seen, q = [], dict(params, records=records)
    gone = {} if gone is None else gone
    for page_no in range(100):
        r = app.get(path, params=q)
        assert_status(r, 200)
        body = body_json(r)
        for d in body["data"]:
            assert gone.get(d["id"], page_no) >= page_no, f"{d['id']} came after its delete"
        seen += body["data"]
        if body["meta"]["nextCursor"] is None:
            return seen, gone
        q = dict(params, records=records, cursor=body["meta"]["nextCursor"])
        gone.update((i, page_no) for i in change(seen, page_no))
    raise AssertionError("the walk did not end")


def check_walk(seen, gone, present, order):
    """present: the records there before the walk; order: the reference's
    sort of a list of resources."""
    ids = [d["id"] for d in seen]
    assert len(ids) == len(set(ids)), "a record came twice"
    missing = {d["id"] for d in present} - set(gone) - set(ids)
    assert not missing, f"{len(missing)} records present throughout were skipped"
    assert [d["id"] for d in order(seen)] == ids, "the walk is out of the reference's order"


def victims(rnd, present, seen, deleted, page_no, order):
    """One record present from the start that the walk has still to reach
    (after the last one seen, in the reference's order: a record the walk
    skipped is never deleted, so it is reported), and on every other page
    the last one seen (the next cursor's own record)."""
    last = seen[-1]
    line = order([d for d in present if d["id"] != last["id"]] + [last])
    at = [d["id"] for d in line].index(last["id"])
    ahead = [d["id"] for d in line[at + 1:] if d["id"] not in deleted]
    out = [rnd.choice(ahead)] if ahead else []
    if page_no % 2 == 1 and last["id"] not in deleted:
        out.append(last["id"])
    return out


DUES = [None, -9, -3, -3, 0.5, 2, 2, 7]


def follow_body(rnd, i):
    body = {"title": f"F{i}", "status": rnd.choice(["pending", "pending", "completed"])}
    due = rnd.choice(DUES)
    if due is not None:
        body["due_date"] = when(due)
    return body


@pytest.mark.parametrize("route, sort", [("lead", None), ("lead", "-due_date"), ("lead", "-created_at"),
                                         ("app", "-due_date"), ("app", "created_at"), ("app", "-created_at"),
                                         ("app", "updated_at")])
def test_a_follows_walk_while_follows_come_and_go(app, route, sort):
    rnd = random.Random(f"{route}{sort}")
    walked, beside = app.create_lead(name="Walked")["id"], app.create_lead(name="Beside")["id"]
    made = []
    for i in range(24):
        lead = walked if route == "lead" or i % 3 else beside
        made.append(app.create_follow(lead, **follow_body(rnd, i)))
    for i in range(6):  # another lead's, never in a lead's walk
        made.append(app.create_follow(beside, **follow_body(rnd, 100 + i)))
    path = f"/leads/{walked}/follows" if route == "lead" else "/follows/"
    present = [f for f in made if route == "app" or f["relationships"]["lead"]["data"]["id"] == walked]
    lead_of = {f["id"]: f["relationships"]["lead"]["data"]["id"] for f in made}
    deleted = set()

    def order(fs):
        return sort_follows(fs, sort)

    def change(seen, page_no):
        for lead in (walked, beside):
            lead_of[app.create_follow(lead, **follow_body(rnd, 1000 + page_no))["id"]] = lead
        out = victims(rnd, present, seen, deleted, page_no, order)
        for f in out:
            assert_status(app.delete(f"/leads/{lead_of[f]}/follows/{f}"), 204)
        deleted.update(out)
        return out

    seen, gone = walk_while_changing(app, path, {"sort": sort} if sort else {}, change)
    check_walk(seen, gone, present, order)
    assert route == "app" or all(d["relationships"]["lead"]["data"]["id"] == walked for d in seen)
    assert deleted, "the walk deleted nothing"


ACCOUNTS = [str(uuid.UUID(int=0x7200_0000_0000_8000_0000_0000_0000 + i)) for i in range(2)]


def lead_body(rnd, i):
    a = {"name": rnd.choice(["Alpha", "beta", "Gamma", "delta"]) + f" {i % 4}", "stage": rnd.choice(STAGES),
         "status": rnd.choice(STATUSES)}
    for key, choices in (("value", [None, 10, 10, 250.5, 9000]), ("probability", [None, 0, 50, 50, 90]),
                         ("account_id", ACCOUNTS + [None])):
        v = rnd.choice(choices)
        if v is not None:
            a[key] = v
    return a


LEAD_WALKS = [{"stage": "qualified,proposal", "sort": "-value"},
              {"status": "active,lost", "sort": "name"},
              {"value_min": "10", "value_max": "9000", "sort": "probability,-value"},
              {"account_id": f"{ACCOUNTS[0]},null", "stage": "new,contacted,negotiation", "sort": "-stage"},
              {"search": "a", "probability_min": "1", "sort": "created_at"},
              {"stage": "qualified,proposal,negotiation", "sort": "-updated_at"},
              {"status": "active", "sort": "probability"}]


@pytest.mark.parametrize("params", LEAD_WALKS, ids=[str(p) for p in LEAD_WALKS])
def test_a_filtered_lead_walk_while_leads_come_and_go(app, params):
    rnd = random.Random(str(params))
    made = [app.create_lead(**lead_body(rnd, i)) for i in range(45)]
    present = [lead for lead in made if lead_keeps(lead["attributes"], params, NO_FACTS)]
    assert len(present) >= 9, "too few leads match to walk"
    deleted = set()

    def order(leads):
        return sort_leads(leads, params["sort"])

    def change(seen, page_no):
        for i in range(2):  # matching or not, before or after the walk's place
            app.create_lead(**lead_body(rnd, 1000 + 2 * page_no + i))
        out = victims(rnd, present, seen, deleted, page_no, order)
        for lead in out:
            assert_status(app.delete(f"/leads/{lead}"), 204)
        deleted.update(out)
        return out

    seen, gone = walk_while_changing(app, "/leads/", params, change)
    assert all(lead_keeps(d["attributes"], params, NO_FACTS) for d in seen), "a lead that does not match"
    check_walk(seen, gone, present, order)
    assert deleted, "the walk deleted nothing"


def import_leads(app, rnd, n):
    rows = [lead_body(rnd, i) for i in range(n)]
    cols = ["name", "stage", "status", "value", "probability", "account_id"]
    text = ",".join(cols) + "\r\n" + "".join(",".join(str(r.get(c, "")) for c in cols) + "\r\n" for r in rows)
    r = app.post("/leads/import", raw=text.encode(), content_type="text/csv")
    assert_status(r, 200)
    assert body_json(r)["meta"] == {"created": n, "failed": 0}


TIED_WALKS = [{"sort": "-value"}, {"sort": "created_at"}, {"sort": "-created_at"},
              {"stage": "qualified,proposal", "sort": "name"}, {"status": "active,inactive", "sort": "probability"}]


@pytest.mark.parametrize("params", TIED_WALKS, ids=[str(p) for p in TIED_WALKS])
def test_a_walk_through_an_imports_ties_while_leads_come_and_go(app, params):
    """An import's rows share one created_at: the walk's place among them
    is held by the id alone, also when its record is deleted and other
    imports' ties land on both sides of it."""
    rnd = random.Random(str(params) + "tied")
    import_leads(app, rnd, 40)
    present = [lead for lead in app.list_all() if lead_keeps(lead["attributes"], params, NO_FACTS)]
    assert len({lead["attributes"]["created_at"] for lead in present}) == 1 and len(present) >= 9
    deleted = set()

    def order(leads):
        return sort_leads(leads, params["sort"])

    def change(seen, page_no):
        import_leads(app, rnd, 2)
        out = victims(rnd, present, seen, deleted, page_no, order)
        for lead in out:
            assert_status(app.delete(f"/leads/{lead}"), 204)
        deleted.update(out)
        return out

    seen, gone = walk_while_changing(app, "/leads/", params, change, records=5)
    assert all(lead_keeps(d["attributes"], params, NO_FACTS) for d in seen), "a lead that does not match"
    check_walk(seen, gone, present, order)
    assert deleted, "the walk deleted nothing"


@pytest.mark.parametrize("sort", [None, "-due_date", "created_at", "updated_at"])
def test_an_app_follows_walk_while_a_lead_goes_to_the_trash_and_back(app, sort):
    """Trashing a lead takes its follows out of the walk from the next page
    on; recovering it brings them back as they were, in their old places:
    none seen before comes again, and the other leads' follows all come."""
    rnd = random.Random(f"trash{sort}")
    kept, trashed = app.create_lead(name="Kept")["id"], app.create_lead(name="Trashed")["id"]
    made = [app.create_follow(kept if i % 2 else trashed, **follow_body(rnd, i)) for i in range(30)]
    present = [f for f in made if f["relationships"]["lead"]["data"]["id"] == kept]
    away, gone = [f["id"] for f in made if f not in present], {}

    def change(seen, page_no):
        if page_no == 1:
            assert_status(app.delete(f"/leads/{trashed}"), 204)
            return away
        if page_no == 4:
            assert_status(app.put(f"/leads/{trashed}/recover"), 200)
            for f in away:
                del gone[f]
        return []

    seen, _ = walk_while_changing(app, "/follows/", {"sort": sort} if sort else {}, change, gone=gone)
    check_walk(seen, {}, present, lambda fs: sort_follows(fs, sort))
    # From the trash to the recovery (pages 2 to 4), none of the lead's.
    assert not {d["id"] for d in seen[6:15]} & set(away), "a trashed lead's follow in the walk"


@pytest.mark.parametrize("params", [{"sort": "-created_at"}, {"sort": "created_at"},
                                    {"stage": "qualified,proposal,new", "sort": "-value"},
                                    {"status": "active,lost", "sort": "name"}], ids=str)
def test_a_lead_walk_while_leads_go_to_the_trash_and_back(app, params):
    """Leads trashed mid-walk, some seen already and some not, leave the
    walk until they are recovered; back in their old places (a recovery
    changes updated_at only), none seen before comes again."""
    rnd = random.Random(f"trash{params}")
    made = [app.create_lead(**lead_body(rnd, i)) for i in range(40)]
    present = [lead for lead in made if lead_keeps(lead["attributes"], params, NO_FACTS)]
    assert len(present) >= 12
    order = sort_leads(present, params["sort"])
    trashed, gone = [], {}

    def change(seen, page_no):
        if page_no == 1:  # two seen, two ahead
            ahead = [d["id"] for d in order if d["id"] not in {s["id"] for s in seen}]
            trashed.extend([seen[0]["id"], seen[-1]["id"], ahead[1], ahead[-1]])
            for lead in trashed:
                assert_status(app.delete(f"/leads/{lead}"), 204)
            return trashed
        if page_no == 3:
            for lead in trashed:
                assert_status(app.put(f"/leads/{lead}/recover"), 200)
                del gone[lead]
        return []

    seen, _ = walk_while_changing(app, "/leads/", params, change, gone=gone)
    # The next page's second lead was in the trash while the walk passed
    # its place: it may be missed; every other lead present at the start
    # comes, the last one too, recovered before the walk got there.
    check_walk(seen, {trashed[2]: 1}, present, lambda leads: sort_leads(leads, params["sort"]))
