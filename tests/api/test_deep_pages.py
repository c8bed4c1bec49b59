"""Deep pages start from remembered keys (anchors) rather than skipping
every row; they must list exactly what a plain walk lists, and follow writes."""

import concurrent.futures as cf


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
