"""Deep pages start from remembered keys (anchors) rather than skipping
every row; they must list exactly what a plain walk lists, and follow writes."""

import concurrent.futures as cf

from findref import lead_keeps, lead_sort_value, sort_leads


def _page_ids(app, page, records):
    r = app.get(f"/leads/?page={page}&records={records}")
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["data"]], r.json()["meta"]


def test_deep_pages_match_the_full_order_and_follow_writes(app):
    n = 1300  # beyond two anchor steps (512)
    with cf.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: app.create_lead(name=f"deep {i}")["id"], range(n)))
    assert len(set(ids)) == n
    # The reference order, 100 at a time (offsets below one anchor step
    # never use anchors... except pages past 512, which is the point).
    rows = []
    for page in range(1, 15):
        r = app.get(f"/leads/?page={page}&records=100")
        rows += [(d["attributes"]["created_at"], d["id"]) for d in r.json()["data"]]
        meta = r.json()["meta"]
    assert meta["totalRecords"] == n
    everything = [i for _, i in rows]
    assert len(everything) == n and set(everything) == set(ids)
    # The contract's order, computed here independently of the server.
    assert rows == sorted(rows, reverse=True)
    # The same order through small pages, from the end backwards (anchors
    # are built up to the deepest page first), then forwards.
    for order in (range(87, 0, -1), range(1, 88)):
        for page in order:
            got, _ = _page_ids(app, page, 15)
            assert got == everything[(page - 1) * 15:page * 15], page
    # A write invalidates the anchors: everything shifts by one.
    newest = app.create_lead(name="newest")["id"]
    got, meta = _page_ids(app, 60, 15)
    assert meta["totalRecords"] == n + 1
    assert got == ([newest] + everything)[59 * 15:60 * 15]
    # And a delete shifts it back.
    assert app.delete(f"/leads/{everything[10]}").status_code == 204
    remaining = [newest] + everything[:10] + everything[11:]
    got, _ = _page_ids(app, 70, 15)
    assert got == remaining[69 * 15:70 * 15]


def _all_pages(app, params, records):
    """Every page of a find read at records a page: the ids, and the
    totals each page gave (None with count=none)."""
    ids, totals = [], []
    for page in range(1, 1000):
        r = app.get("/leads/", params=dict(params, records=records, page=page))
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        totals.append(r.json()["meta"].get("totalRecords"))
        if not data:
            return ids, totals
        ids += [d["id"] for d in data]
    raise AssertionError("the pages did not end")


def test_find_pages_at_offsets_match_an_independent_sort(app):
    """A page at an offset skips its rows by their keys, then reads its
    records: every page, whatever its size, lists exactly the rows of the
    order computed here, through runs of equal keys and across the line
    between set and unset values of a nullable key."""
    probs, values, names = [None, 10, 50], [None, 100], ["Ada", "ada", "Bob", "Émile"]
    stages = ["new", "contacted", "qualified"]

    def attrs(i):
        a = {"name": names[i % 4], "stage": stages[i % 3]}
        if probs[(i // 2) % 3] is not None:
            a["probability"] = probs[(i // 2) % 3]
        if values[(i // 5) % 2] is not None:
            a["value"] = values[(i // 5) % 2]
        return a

    with cf.ThreadPoolExecutor(8) as pool:
        leads = list(pool.map(lambda i: app.create_lead(**attrs(i)), range(75)))
    for sort in ("probability", "-probability", "value", "-value,name", "name", "-stage,probability"):
        for params in ({"sort": sort}, {"sort": sort, "count": "none"},
                       {"sort": sort, "stage": "new,qualified"}):
            by_id = {lead["id"]: lead for lead in leads}
            keep = [lead for lead in leads if lead_keeps(lead["attributes"], params, {})]
            want = [lead["id"] for lead in sort_leads(keep, sort)]
            field = sort.split(",")[0].lstrip("-")
            unset = [lead["attributes"][field] is None for lead in sort_leads(keep, sort)]
            runs, crossed = [], []
            for records in (4, 7, 11):
                got, totals = _all_pages(app, params, records)
                assert got == want, (params, records)
                total = None if params.get("count") == "none" else len(want)
                assert set(totals) == {total}, (params, records)
                pages = [want[i:i + records] for i in range(0, len(want), records)]
                runs += [len({lead_sort_value(by_id[x]["attributes"], field) for x in p}) > 1 for p in pages]
                crossed += [len(set(unset[i:i + records])) > 1 for i in range(0, len(want), records)]
            # Some page both ends a run of equal first keys and starts the
            # next (the offsets are multiples of the page size), and some
            # holds set and unset values of a nullable key both.
            assert any(runs), params
            assert any(crossed) or field not in ("probability", "value"), params
