"""The trash (extensions.md, "Trash, recovery, purge"): DELETE moves a lead and
its follows to the trash, where every read leaves it out; GET /leads/trash/show
lists it, PUT /leads/{id}/recover brings it back as it was, DELETE
/leads/trash/{id} purges it, and --trash-retention purges it by itself."""

import time
import uuid

import pytest

from apiutil import (SAFE_BODY, App, assert_error, assert_param_error, assert_status, body_json, check_safe,
                     describe, fill_safe, parse_ts, run_crmd)


def trash_ids(app, **params):
    r = app.get("/leads/trash/show", params=params or None)
    assert_status(r, 200)
    return [d["id"] for d in body_json(r)["data"]]


def test_deleted_lead_reads_as_gone_everywhere(app):
    lead = app.create_lead(name="Zebra trash deal", source="trashsrc", value=500, stage="qualified",
                           probability=50)
    keep = app.create_lead(name="Kept deal", value=100)
    follow = app.create_follow(lead["id"], title="call", due_date="2000-01-01T00:00:00Z")
    before = body_json(app.get("/leads/summary"))["data"]["attributes"]
    assert before["totalRecords"] == 2 and before["overdueFollows"] == 1
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)

    assert_error(app.get(f"/leads/{lead['id']}"), 404)
    assert_error(app.put(f"/leads/{lead['id']}", {"lead": {"name": "x"}}), 404)
    assert_error(app.delete(f"/leads/{lead['id']}"), 404)
    assert_error(app.get(f"/leads/{lead['id']}/follows"), 404)
    assert_error(app.get(f"/leads/{lead['id']}/follows/{follow['id']}"), 404)
    assert_error(app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "x"}}), 404)
    listed = body_json(app.get("/leads/"))
    assert [d["id"] for d in listed["data"]] == [keep["id"]]
    assert listed["meta"]["totalRecords"] == 1
    assert body_json(app.get("/leads/", params={"search": "zebra"}))["data"] == []
    assert body_json(app.get("/leads/", params={"source": "trashsrc"}))["data"] == []
    assert body_json(app.get("/follows/"))["data"] == []
    summary = body_json(app.get("/leads/summary"))["data"]["attributes"]
    assert summary["totalRecords"] == 1
    assert summary["totalValue"] == 100
    assert summary["weightedValue"] == 0
    assert summary["overdueFollows"] == 0
    by_source = body_json(app.get("/leads/summary", params={"source": "trashsrc"}))["data"]["attributes"]
    assert by_source["totalRecords"] == 0


def test_trash_lists_deleted_leads_newest_deletion_first(app):
    a, b, c = (app.create_lead(name=n) for n in ("A", "B", "C"))
    assert trash_ids(app) == []
    for lead in (b, a, c):
        assert_status(app.delete(f"/leads/{lead['id']}"), 204)
        time.sleep(0.01)
    r = app.get("/leads/trash/show")
    assert_status(r, 200)
    body = body_json(r)
    assert [d["id"] for d in body["data"]] == [c["id"], a["id"], b["id"]]
    assert body["meta"]["totalRecords"] == 3
    assert body["meta"]["nextCursor"] is None
    first = body["data"][0]
    assert first["type"] == "lead"
    assert first["attributes"]["name"] == "C"
    assert first["attributes"]["updated_at"] == c["attributes"]["updated_at"]
    deleted = parse_ts(first["attributes"]["deleted_at"])
    assert abs(deleted.timestamp() - time.time()) < 60


def test_trash_pages_by_page_and_by_cursor(app):
    leads = [app.create_lead(name=f"L{i}") for i in range(5)]
    for lead in leads:
        assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    newest_first = trash_ids(app)
    assert sorted(newest_first) == sorted(lead["id"] for lead in leads)
    assert trash_ids(app, page=2, records=2) == newest_first[2:4]
    walked, cursor = [], None
    while True:
        params = {"records": 2} | ({"cursor": cursor} if cursor else {})
        body = body_json(app.get("/leads/trash/show", params=params))
        walked += [d["id"] for d in body["data"]]
        cursor = body["meta"]["nextCursor"]
        if cursor is None:
            break
        # a lead deleted during the walk is newer than the cursor: not repeated
        assert_status(app.delete(f"/leads/{app.create_lead()['id']}"), 204)
    assert walked == newest_first


def test_trash_query_rules(app):
    errs = assert_error(app.get("/leads/trash/show", params={"stage": "new"}), 422, "unknown_parameter")
    assert [e["source"]["parameter"] for e in errs] == ["stage"]
    assert_param_error(app.get("/leads/trash/show", params={"cursor": "nope"}), ["cursor"])
    assert_param_error(app.get("/leads/trash/show", params={"records": 0}), ["records"])
    assert_param_error(app.get("/leads/trash/show", params={"page": 1, "cursor": "x"}), ["cursor"])


def test_trash_cursor_of_another_list_is_refused(app):
    for _ in range(2):
        app.create_lead()
    cursor = body_json(app.get("/leads/", params={"records": 1, "count": "none"}))["meta"]["nextCursor"]
    assert cursor
    assert_param_error(app.get("/leads/trash/show", params={"cursor": cursor}), ["cursor"])


def test_recover_brings_back_the_lead_and_its_follows(app):
    lead = app.create_lead(name="Come back", source="web", value=250, stage="proposal", probability=40)
    f1 = app.create_follow(lead["id"], title="one", due_date="2000-01-01T00:00:00Z")
    f2 = app.create_follow(lead["id"], title="two", status="completed")
    before = body_json(app.get("/leads/summary"))["data"]["attributes"]
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    r = app.put(f"/leads/{lead['id']}/recover")
    assert_status(r, 200)
    back = body_json(r)["data"]
    assert back["id"] == lead["id"]
    for k, v in lead["attributes"].items():
        if k != "updated_at":
            assert back["attributes"][k] == v, k
    assert parse_ts(back["attributes"]["updated_at"]) > parse_ts(lead["attributes"]["updated_at"])
    assert app.get_lead(lead["id"]) == back
    assert app.get_follow(lead["id"], f1["id"]) == f1
    assert app.get_follow(lead["id"], f2["id"]) == f2
    assert trash_ids(app) == []
    assert body_json(app.get("/leads/", params={"search": "come back"}))["data"][0]["id"] == lead["id"]
    assert body_json(app.get("/leads/summary"))["data"]["attributes"] == before
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 1
    # the lead lives again: it can be changed and deleted again
    assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"stage": "won"}}), 422)
    assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"stage": "negotiation"}}), 200)
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert trash_ids(app) == [lead["id"]]


def test_recover_and_purge_of_what_is_not_in_the_trash(app, app2):
    live = app.create_lead()
    for path in (f"/leads/{live['id']}/recover", f"/leads/{uuid.uuid4()}/recover"):
        r = app.put(path)
        assert_error(r, 404)
        assert "not in the trash" in body_json(r)["errors"][0]["detail"]
    assert_error(app.delete(f"/leads/trash/{live['id']}"), 404)
    assert_error(app.delete(f"/leads/trash/{uuid.uuid4()}"), 404)
    assert_error(app.delete("/leads/trash/not-a-uuid"), 404)
    assert_error(app.put("/leads/not-a-uuid/recover"), 404)
    assert app.get_lead(live["id"])["id"] == live["id"]
    # another app's trashed lead is not there either
    assert_status(app.delete(f"/leads/{live['id']}"), 204)
    assert trash_ids(app2) == []
    assert_error(app2.put(f"/leads/{live['id']}/recover"), 404)
    assert_error(app2.delete(f"/leads/trash/{live['id']}"), 404)
    assert trash_ids(app) == [live["id"]]


def test_purge_deletes_for_good(app):
    lead = app.create_lead()
    follow = app.create_follow(lead["id"])
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert_status(app.delete(f"/leads/trash/{lead['id']}"), 204)
    assert trash_ids(app) == []
    assert_error(app.put(f"/leads/{lead['id']}/recover"), 404)
    assert_error(app.delete(f"/leads/trash/{lead['id']}"), 404)
    assert_error(app.get(f"/leads/{lead['id']}/follows/{follow['id']}"), 404)


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/leads/trash/show", "GET"),
    ("DELETE", "/leads/trash/show", "GET"),
    ("GET", "/leads/{id}/recover", "PUT"),
    ("POST", "/leads/{id}/recover", "PUT"),
    ("GET", "/leads/trash/{id}", "DELETE"),
    ("PUT", "/leads/trash/{id}", "DELETE"),
])
def test_trash_routes_answer_other_methods_with_405(app, method, path, allow):
    r = app.request(method, path.format(id=uuid.uuid4()))
    assert_error(r, 405)
    assert allow in r.headers["Allow"]


def test_trash_routes_need_credentials(app, anon):
    lead = app.create_lead()
    assert_error(anon.get("/leads/trash/show"), 401)
    assert_error(anon.put(f"/leads/{lead['id']}/recover"), 401)
    assert_error(anon.delete(f"/leads/trash/{lead['id']}"), 401)


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def trashed_at(app, lead_id):
    """The lead's deleted_at in the trash, in seconds since the epoch."""
    r = app.get("/leads/trash/show")
    assert_status(r, 200)
    at = [d["attributes"]["deleted_at"] for d in body_json(r)["data"] if d["id"] == lead_id]
    assert len(at) == 1, f"{lead_id} is not in the trash once: {describe(r)}"
    return parse_ts(at[0]).timestamp()


@pytest.mark.waits
def test_retention_purges_old_trash(make_server):
    """Each trashed lead is purged once its own --trash-retention (6 s) has
    passed, and not before: the young lead, deleted 6 s after the old one,
    is still in the trash after the old one's purge (a check every second,
    extensions.md: at least once a minute; docs/architecture.md: every second
    under a minute of retention) and goes once its own retention has passed.
    The trash is read every 0.1 s; a read answered before a lead's retention
    ended must list it (this crmd's clock is the test's)."""
    retention = 6.0
    srv = make_server(extra_args=["--trash-retention", "6s"])
    app = srv.new_app()
    old, young = app.create_lead(name="old"), app.create_lead(name="young")
    follows = {old["id"]: app.create_follow(old["id"]), young["id"]: app.create_follow(young["id"])}
    assert_status(app.delete(f"/leads/{old['id']}"), 204)
    due = {old["id"]: trashed_at(app, old["id"]) + retention}
    # 6 s apart: the old lead's purge, checked for every second, has 6 s to
    # come while the young one waits, room for a loaded machine.
    while time.time() < due[old["id"]] - retention + 6:
        time.sleep(0.05)
    assert_status(app.delete(f"/leads/{young['id']}"), 204)
    due[young["id"]] = trashed_at(app, young["id"]) + retention
    assert due[young["id"]] >= due[old["id"]] + 6

    seen = []  # (when the read was answered, the trash's ids)
    deadline = due[young["id"]] + 30
    while True:
        ids = trash_ids(app)
        at = time.time()
        seen.append((at, ids))
        for lead, lead_due in due.items():
            if at < lead_due:
                assert lead in ids, f"{lead} purged {lead_due - at:.2f} s before its retention ended"
        if not ids:
            break
        assert at < deadline, f"the trash still holds {ids} 30 s after the last retention ended"
        time.sleep(0.1)
    assert any(ids == [young["id"]] and at < due[young["id"]] for at, ids in seen), \
        "the old lead was never seen purged while the young one waited for its retention"
    for gone in (old, young):
        assert_error(app.put(f"/leads/{gone['id']}/recover"), 404)
        assert_error(app.get(f"/leads/{gone['id']}/history"), 404)
        assert_error(app.get(f"/leads/{gone['id']}/follows/{follows[gone['id']]['id']}"), 404)
    assert body_json(app.get("/leads/"))["data"] == []


def test_retention_zero_deletes_at_once(make_server):
    srv = make_server(extra_args=["--trash-retention", "0"])
    app = srv.new_app()
    lead, other = app.create_lead(), app.create_lead()
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    # A batch's delete too (it went to a trash never emptied).
    assert_status(app.post("/leads/batch", {"operations": [{"op": "delete", "id": other["id"]}]}), 200)
    assert trash_ids(app) == []
    for gone in (lead, other):
        assert_error(app.put(f"/leads/{gone['id']}/recover"), 404)
        assert_error(app.get(f"/leads/{gone['id']}"), 404)
        assert_error(app.get(f"/leads/{gone['id']}/history"), 404)


def test_retention_zero_purges_what_an_earlier_retention_left_in_the_trash(make_server):
    srv = make_server()
    app = srv.new_app()
    lead = app.create_lead(name="trashed before")
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert trash_ids(app) == [lead["id"]]
    assert srv.stop() == 0
    srv = make_server(db_url=srv.db_url, extra_args=["--trash-retention", "0"])
    app = App(srv.base_url, app.key, app.token)
    assert wait_for(lambda: trash_ids(app) == []), "the trash was kept"
    assert_error(app.get(f"/leads/{lead['id']}/history"), 404)


@pytest.mark.parametrize("value", ["-1s", "3x", "", "1.5d", "4000d"])
def test_bad_retention_is_refused(tmp_path, value):
    from apiutil import run_crmd
    p = run_crmd("serve", "--listen", "127.0.0.1:1", "--db", f"sqlite:{tmp_path / 'x.db'}",
                 "--trash-retention", value)
    assert p.returncode == 2, p.stderr
    assert "--trash-retention" in p.stderr


def copied_safe(stdout, want):
    """What crmd copy says it moved of fill_safe's records, and that the
    target holds them."""
    n = sum(len(v) for v in want["history"].values())
    moved = f"1 trashed leads with 2 follows, {n} history entries and 1 idempotency keys"
    held = f"1 trashed leads, 2 trashed follows, {n} history entries, 1 idempotency keys"
    return moved in stdout and held in stdout.split("now holds")[1]


def test_copy_moves_the_trash_the_history_and_idempotency_keys(make_server, tmp_path):
    src = make_server()
    app = src.new_app()
    want = fill_safe(app)
    assert src.stop() == 0
    dst = f"sqlite:{tmp_path / 'copy.db'}"
    p = run_crmd("copy", "--from", src.db_url, "--to", dst, check=True)
    assert copied_safe(p.stdout, want), p.stdout
    copy = make_server(db_url=dst)
    check_safe(App(copy.base_url, app.key, app.token), want)


def test_copy_append_keeps_the_targets_answer_for_a_key_it_holds(make_server, tmp_path):
    src = make_server()
    app = src.new_app()
    assert src.stop() == 0
    dst = f"sqlite:{tmp_path / 'dst.db'}"
    other = f"sqlite:{tmp_path / 'other.db'}"
    run_crmd("copy", "--from", src.db_url, "--to", other, check=True)
    # The source and the other copy each answer the shared key their own
    # way; the other copy answers a new key too.
    src = make_server(db_url=src.db_url)
    first = App(src.base_url, app.key, app.token).post("/leads/", SAFE_BODY, headers={"Idempotency-Key": "k-shared"})
    assert_status(first, 201)
    assert src.stop() == 0
    run_crmd("copy", "--from", src.db_url, "--to", dst, check=True)
    srv = make_server(db_url=other)
    o = App(srv.base_url, app.key, app.token)
    anew = o.post("/leads/", {"lead": {"name": "Other"}}, headers={"Idempotency-Key": "k-shared"})
    assert_status(anew, 201)
    assert "Idempotent-Replayed" not in anew.headers
    second = o.post("/leads/", {"lead": {"name": "Second"}}, headers={"Idempotency-Key": "k-new"})
    assert_status(second, 201)
    assert srv.stop() == 0
    p = run_crmd("copy", "--from", other, "--to", dst, "--append", check=True)
    assert "1 idempotency keys (1 idempotency keys not copied: the target's apps hold them)" in p.stdout, \
        p.stdout
    copy = App(make_server(db_url=dst).base_url, app.key, app.token)
    assert copy.post("/leads/", SAFE_BODY, headers={"Idempotency-Key": "k-shared"}).content == first.content
    again = copy.post("/leads/", {"lead": {"name": "Second"}}, headers={"Idempotency-Key": "k-new"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.content == second.content
    assert body_json(copy.get("/leads/"))["meta"]["totalRecords"] == 3


# ------------------------------------- a purge leaves no answer, and no rerun

def keyed(app, path, body, key):
    return app.post(path, body, headers={"Idempotency-Key": key})


def assert_replayed_without(r, status, gone):
    """r replays a kept answer of status whose body named the purged lead
    gone: the status (and a 201's Location), with a note in place of the
    body."""
    assert_status(r, status)
    assert r.headers.get("Idempotent-Replayed") == "true", r.text
    assert gone not in r.text, r.text
    js = body_json(r)
    assert js["meta"]["replayed"] is True and js["meta"]["answerKept"] is False, js
    assert "purged" in js["meta"]["note"], js


def test_purge_blanks_the_kept_answers_that_carry_the_lead(app):
    k = uuid.uuid4().hex
    made = keyed(app, "/leads/", {"lead": {"name": "Purge me"}}, f"{k}-lead")
    assert_status(made, 201)
    gone = body_json(made)["data"]["id"]
    follow = keyed(app, f"/leads/{gone}/follows", {"follow": {"title": "call"}}, f"{k}-follow")
    assert_status(follow, 201)
    batch = {"operations": [{"op": "update", "id": gone, "lead": {"status": "lost"}}]}
    assert_status(keyed(app, "/leads/batch", batch, f"{k}-batch"), 200)
    other = keyed(app, "/leads/", {"lead": {"name": "Stays"}}, f"{k}-other")
    assert_status(other, 201)
    assert_status(app.delete(f"/leads/{gone}"), 204)
    # Trashed, the lead can come back: its answers stay.
    assert keyed(app, "/leads/", {"lead": {"name": "Purge me"}}, f"{k}-lead").content == made.content
    before = body_json(app.get("/leads/"))["meta"]["totalRecords"]
    assert_status(app.delete(f"/leads/trash/{gone}"), 204)

    # Nothing of the purged lead is replayed, and nothing is run twice.
    assert_replayed_without(keyed(app, "/leads/", {"lead": {"name": "Purge me"}}, f"{k}-lead"), 201, gone)
    assert_replayed_without(keyed(app, f"/leads/{gone}/follows", {"follow": {"title": "call"}}, f"{k}-follow"),
                            201, gone)
    assert_replayed_without(keyed(app, "/leads/batch", batch, f"{k}-batch"), 200, gone)
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == before
    # The key is still taken for its request.
    r = keyed(app, "/leads/", {"lead": {"name": "Another"}}, f"{k}-lead")
    assert_error(r, 422)
    assert r.json()["errors"][0]["code"] == "idempotency_key_reused"
    # An answer that carries another lead stays.
    r = keyed(app, "/leads/", {"lead": {"name": "Stays"}}, f"{k}-other")
    assert r.headers.get("Idempotent-Replayed") == "true" and r.content == other.content


def test_a_batch_retried_after_one_of_its_leads_is_purged_creates_nothing(app):
    ops = {"operations": [{"op": "create", "lead": {"name": "X"}}, {"op": "create", "lead": {"name": "Y"}}]}
    first = keyed(app, "/leads/batch", ops, "k-two")
    assert_status(first, 200)
    x, y = (d["id"] for d in body_json(first)["data"])
    assert_status(app.delete(f"/leads/{x}"), 204)
    assert_status(app.delete(f"/leads/trash/{x}"), 204)
    assert_replayed_without(keyed(app, "/leads/batch", ops, "k-two"), 200, x)
    names = [d["attributes"]["name"] for d in body_json(app.get("/leads/?records=100"))["data"]]
    assert names.count("Y") == 1 and "X" not in names, names
    assert_status(app.get(f"/leads/{y}"), 200)


def test_retention_purge_blanks_the_leads_answers(make_server):
    srv = make_server(extra_args=["--trash-retention", "2s"])
    app = srv.new_app()
    made = keyed(app, "/leads/", {"lead": {"name": "Old"}}, "k-old")
    kept = keyed(app, "/leads/", {"lead": {"name": "Kept"}}, "k-kept")
    gone = body_json(made)["data"]["id"]
    assert_status(app.delete(f"/leads/{gone}"), 204)
    assert wait_for(lambda: trash_ids(app) == [])
    assert_replayed_without(keyed(app, "/leads/", {"lead": {"name": "Old"}}, "k-old"), 201, gone)
    r = keyed(app, "/leads/", {"lead": {"name": "Kept"}}, "k-kept")
    assert r.headers.get("Idempotent-Replayed") == "true" and r.content == kept.content


def test_delete_without_trash_blanks_the_leads_answers(make_server):
    srv = make_server(extra_args=["--trash-retention", "0"])
    app = srv.new_app()
    made = keyed(app, "/leads/", {"lead": {"name": "Brief"}}, "k-brief")
    gone = body_json(made)["data"]["id"]
    assert_status(app.delete(f"/leads/{gone}"), 204)
    assert_replayed_without(keyed(app, "/leads/", {"lead": {"name": "Brief"}}, "k-brief"), 201, gone)
