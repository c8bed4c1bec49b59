"""A lead's history (extensions.md, "History"): every create, update, delete and
recover of a lead and of its follows, recorded with the change itself, newest
first, paged like the lists; on a trashed lead too, and gone when it is purged."""

import uuid

from apiutil import assert_error, assert_param_error, assert_status, body_json, parse_ts


def history(app, lead_id, **params):
    r = app.get(f"/leads/{lead_id}/history", params=params or None)
    assert_status(r, 200)
    return body_json(r)


def actions(app, lead_id):
    return [c["attributes"]["action"] for c in history(app, lead_id)["data"]]


def test_create_and_update_record_what_changed(app):
    lead = app.create_lead(name="Deal", value=50000, stage="qualified", probability=40)
    body = history(app, lead["id"])
    assert body["meta"]["totalRecords"] == 1
    created = body["data"][0]
    assert created["type"] == "lead_change"
    uuid.UUID(created["id"])
    attrs = created["attributes"]
    assert attrs["action"] == "created"
    assert attrs["changes"] == {"name": [None, "Deal"], "value": [None, 50000], "stage": [None, "qualified"],
                                "probability": [None, 40], "status": [None, "active"]}
    assert attrs["actor"] is not None and attrs["actor"] != ""
    assert attrs["follow_id"] is None
    assert parse_ts(attrs["at"]) == parse_ts(lead["attributes"]["created_at"])

    assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"stage": "proposal", "value": 65000.5,
                                                          "name": "Deal"}}), 200)
    newest = history(app, lead["id"])["data"][0]["attributes"]
    assert newest["action"] == "updated"
    assert newest["changes"] == {"value": [50000, 65000.5], "stage": ["qualified", "proposal"]}


def test_an_update_that_changes_nothing_records_nothing(app):
    lead = app.create_lead(name="Same")
    assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"name": "Same"}}), 200)
    assert actions(app, lead["id"]) == ["created"]


def test_follows_delete_and_recover_are_recorded_newest_first(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="Call")
    assert_status(app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": {"status": "completed"}}), 200)
    assert_status(app.delete(f"/leads/{lead['id']}/follows/{f['id']}"), 204)
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    # the trashed lead's history reads too
    assert actions(app, lead["id"]) == ["deleted", "follow_deleted", "follow_updated", "follow_created",
                                        "created"]
    assert_status(app.put(f"/leads/{lead['id']}/recover"), 200)
    data = history(app, lead["id"])["data"]
    assert [c["attributes"]["action"] for c in data][:2] == ["recovered", "deleted"]
    by_action = {c["attributes"]["action"]: c["attributes"] for c in data}
    assert by_action["recovered"]["changes"] == {} and by_action["deleted"]["changes"] == {}
    assert by_action["follow_deleted"]["changes"] == {}
    assert by_action["follow_created"]["changes"] == {"title": [None, "Call"], "status": [None, "pending"]}
    assert by_action["follow_updated"]["changes"] == {"status": ["pending", "completed"]}
    for a in ("follow_created", "follow_updated", "follow_deleted"):
        assert by_action[a]["follow_id"] == f["id"]


def test_history_pages_by_page_and_cursor(app):
    lead = app.create_lead(name="v0")
    for i in range(1, 6):
        assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"name": f"v{i}"}}), 200)
    all_ids = [c["id"] for c in history(app, lead["id"])["data"]]
    assert len(all_ids) == 6
    assert [c["id"] for c in history(app, lead["id"], page=2, records=2)["data"]] == all_ids[2:4]
    assert [c["id"] for c in history(app, lead["id"], page=2, records=4)["data"]] == all_ids[4:6]
    for page in (3, 4, 10**9):  # past the last entry: empty, with the same total
        past = history(app, lead["id"], page=page, records=3)
        assert past["data"] == [] and past["meta"]["totalRecords"] == 6, page
    walked, cursor, first_cursor = [], None, None
    while True:
        body = history(app, lead["id"], records=4, **({"cursor": cursor} if cursor else {}))
        walked += [c["id"] for c in body["data"]]
        cursor = body["meta"]["nextCursor"]
        if cursor is None:
            break
        first_cursor = first_cursor or cursor
        assert_status(app.put(f"/leads/{lead['id']}", {"lead": {"name": "during"}}), 200)
    assert walked == all_ids
    # A cursor into this lead's history is refused on another lead's (the walk
    # ends with no cursor: the one its first page gave is taken).
    assert first_cursor
    other = app.create_lead()
    assert_param_error(app.get(f"/leads/{other['id']}/history", params={"cursor": first_cursor}), ["cursor"])


def test_history_of_what_is_not_there(app, app2):
    lead = app.create_lead()
    assert_error(app.get(f"/leads/{uuid.uuid4()}/history"), 404)
    assert_error(app.get("/leads/nope/history"), 404)
    assert_error(app2.get(f"/leads/{lead['id']}/history"), 404)
    errs = assert_error(app.get(f"/leads/{lead['id']}/history", params={"stage": "new"}), 422,
                        "unknown_parameter")
    assert errs[0]["source"]["parameter"] == "stage"
    assert_error(app.post(f"/leads/{lead['id']}/history", {}), 405)
    # purged: gone with the lead
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert_status(app.delete(f"/leads/trash/{lead['id']}"), 204)
    assert_error(app.get(f"/leads/{lead['id']}/history"), 404)


def test_a_failed_write_records_nothing(app):
    lead = app.create_lead()
    assert_error(app.put(f"/leads/{lead['id']}", {"lead": {"stage": "bogus"}}), 422)
    assert_error(app.put(f"/leads/{lead['id']}", {"lead": {"name": "x"}}, headers={"If-Match": '"x"'}), 412)
    assert actions(app, lead["id"]) == ["created"]


def test_the_actor_is_the_token_subject(server):
    from apiutil import app_create, token_issue, App
    key, _ = app_create(server.db)
    token = token_issue(server.db, key, subject="user-1842")
    app = App(server.base_url, key, token)
    lead = app.create_lead()
    assert history(app, lead["id"])["data"][0]["attributes"]["actor"] == "user-1842"


def test_an_imported_lead_has_its_creation_in_its_history(app):
    r = app.post("/leads/import", raw="name,value\r\nImported,12.5\r\n", content_type="text/csv")
    assert_status(r, 200)
    lead = body_json(app.get("/leads/"))["data"][0]
    created = history(app, lead["id"])["data"]
    assert [c["attributes"]["action"] for c in created] == ["created"]
    assert created[0]["attributes"]["changes"]["name"] == [None, "Imported"]
    assert created[0]["attributes"]["changes"]["value"] == [None, 12.5]


def _recorded(app, lead):
    """A lead's history without what differs between two leads made alike
    (the change's own id, and when: checked to be the lead's creation)."""
    out = []
    for c in history(app, lead["id"])["data"]:
        attrs = dict(c["attributes"])
        assert parse_ts(attrs.pop("at")) == parse_ts(lead["attributes"]["created_at"])
        out.append(attrs)
    return out


def test_a_batchs_creates_are_recorded_as_one_by_one_creates(app):
    leads = [{"name": "Batch A", "value": 1250.5, "stage": "proposal", "probability": 30, "source": "web"},
             {"name": "Batch B", "status": "converted", "account_id": str(uuid.uuid4())},
             {"name": "Batch C"}]
    single = [app.create_lead(**lead) for lead in leads]
    earlier = app.create_lead(name="Earlier")
    r = app.post("/leads/batch", {"operations": [
        {"op": "create", "lead": leads[0]},
        {"op": "update", "id": earlier["id"], "lead": {"stage": "contacted"}},
        {"op": "create", "lead": leads[1]},
        {"op": "create", "lead": leads[2]},
    ]})
    assert_status(r, 200)
    data = body_json(r)["data"]
    batched = [data[0], data[2], data[3]]
    for one, many in zip(single, batched):
        assert _recorded(app, many) == _recorded(app, one)
        assert [c["attributes"]["action"] for c in history(app, many["id"])["data"]] == ["created"]
    assert actions(app, earlier["id"]) == ["updated", "created"]


def test_each_change_is_at_the_time_its_record_shows(app):
    # Two updates of one lead (and of one follow) in one batch often fall in
    # the same millisecond; the second's updated_at is then a millisecond
    # later, and its history entry's at must be that time too (helper-81:
    # it was the write's clock, the first's time twice).
    lead = app.create_lead(name="Twice")
    for _ in range(5):
        r = app.post("/leads/batch", {"operations": [
            {"op": "update", "id": lead["id"], "lead": {"stage": "contacted"}},
            {"op": "update", "id": lead["id"], "lead": {"stage": "qualified"}},
            {"op": "update", "id": lead["id"], "lead": {"stage": "new"}}]})
        assert_status(r, 200)
        shown = [parse_ts(d["attributes"]["updated_at"]) for d in body_json(r)["data"]]
        assert shown == sorted(set(shown)), shown  # strictly increasing
        entries = history(app, lead["id"], records=3)["data"]
        assert [parse_ts(e["attributes"]["at"]) for e in reversed(entries)] == shown
    follow = app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "Call"}})
    assert_status(follow, 201)
    f = body_json(follow)["data"]
    entry = history(app, lead["id"], records=1)["data"][0]["attributes"]
    assert entry["action"] == "follow_created"
    assert parse_ts(entry["at"]) == parse_ts(f["attributes"]["updated_at"])
    # A delete right behind updates bumped past the clock is no earlier than
    # they are: a lead's times never go back down its history (helper-86).
    for _ in range(5):
        other = app.create_lead(name="Then gone")
        r = app.post("/leads/batch", {"operations": [
            {"op": "update", "id": other["id"], "lead": {"stage": s}} for s in ("contacted", "qualified", "new")]
            + [{"op": "delete", "id": other["id"]}]})
        assert_status(r, 200)
        ats = [parse_ts(e["attributes"]["at"]) for e in history(app, other["id"])["data"]]
        assert ats == sorted(ats, reverse=True), ats
