"""POST /leads/batch (extensions.md, "Safe writes"): 1..500 operations, all or
nothing, one result per operation in order; every problem reported with its
pointer and nothing changed."""

import uuid

import pytest

from apiutil import assert_error, assert_status, body_json


def batch(app, ops, **kw):
    return app.post("/leads/batch", {"operations": ops}, **kw)


def total(app):
    return body_json(app.get("/leads/"))["meta"]["totalRecords"]


def test_create_update_delete_in_one_batch(app):
    keep = app.create_lead(name="Keep", value=10)
    gone = app.create_lead(name="Gone")
    r = batch(app, [
        {"op": "create", "lead": {"name": "New one", "value": 75000.25, "stage": "qualified"}},
        {"op": "update", "id": keep["id"], "lead": {"stage": "proposal"}},
        {"op": "delete", "id": gone["id"]},
    ])
    assert_status(r, 200)
    data = body_json(r)["data"]
    assert len(data) == 3
    assert data[0]["type"] == "lead" and data[0]["attributes"]["name"] == "New one"
    assert data[0]["attributes"]["value"] == 75000.25
    assert data[1]["id"] == keep["id"] and data[1]["attributes"]["stage"] == "proposal"
    assert data[1]["attributes"]["value"] == 10
    assert data[2] is None
    assert app.get_lead(data[0]["id"])["attributes"]["stage"] == "qualified"
    assert app.get_lead(keep["id"])["attributes"]["stage"] == "proposal"
    assert_error(app.get(f"/leads/{gone['id']}"), 404)
    trash = body_json(app.get("/leads/trash/show"))["data"]
    assert [d["id"] for d in trash] == [gone["id"]]
    assert total(app) == 2
    # each change is in its lead's history
    hist = body_json(app.get(f"/leads/{keep['id']}/history"))["data"]
    assert hist[0]["attributes"]["changes"] == {"stage": ["new", "proposal"]}


def test_every_problem_is_reported_and_nothing_changes(app):
    live = app.create_lead(name="Live")
    trashed = app.create_lead(name="Trashed")
    assert_status(app.delete(f"/leads/{trashed['id']}"), 204)
    before = total(app)
    r = batch(app, [
        {"op": "create", "lead": {"name": "Fine"}},
        {"op": "create", "lead": {"value": -1}},
        {"op": "update", "id": live["id"], "lead": {"stage": "won"}},
        {"op": "explode"},
        {"op": "delete", "id": "not-a-uuid"},
        {"op": "delete", "id": live["id"], "extra": 1},
    ])
    errs = assert_error(r, 422, {"validation_error", "unknown_attribute"})
    pointers = {e["source"]["pointer"] for e in errs}
    assert {"/operations/1/lead/name", "/operations/1/lead/value", "/operations/2/lead/stage",
            "/operations/3/op", "/operations/4/id", "/operations/5/extra"} <= pointers, pointers
    assert total(app) == before
    # ids are checked against the data: unknown, trashed, or deleted earlier in the batch
    r = batch(app, [
        {"op": "create", "lead": {"name": "Would be created"}},
        {"op": "update", "id": live["id"], "lead": {"name": "Changed"}},
        {"op": "delete", "id": live["id"]},
        {"op": "update", "id": live["id"], "lead": {"name": "After delete"}},
        {"op": "delete", "id": trashed["id"]},
        {"op": "delete", "id": str(uuid.uuid4())},
    ])
    errs = assert_error(r, 422)
    assert [e["source"]["pointer"] for e in errs] == ["/operations/3/id", "/operations/4/id", "/operations/5/id"]
    assert total(app) == before
    assert app.get_lead(live["id"])["attributes"]["name"] == "Live"
    assert [c["attributes"]["action"] for c in body_json(app.get(f"/leads/{live['id']}/history"))["data"]] == [
        "created"]


def test_the_ids_problems_are_reported_with_the_bodys(app):
    """extensions.md: any invalid operation, an unknown or trashed id included, is in the one
    422 with every problem's pointer, also when other operations are badly formed."""
    live = app.create_lead(name="Live")
    trashed = app.create_lead(name="Trashed")
    assert_status(app.delete(f"/leads/{trashed['id']}"), 204)
    before = total(app)
    for key in (None, str(uuid.uuid4())):
        r = batch(app, [
            {"op": "delete", "id": str(uuid.uuid4())},
            {"op": "create", "lead": {}},
            {"op": "update", "id": live["id"], "lead": {"stage": "won"}},
            {"op": "delete", "id": live["id"]},
            {"op": "update", "id": live["id"], "lead": {"name": "After delete"}},
            {"op": "delete", "id": "not-a-uuid"},
            {"op": "delete", "id": trashed["id"]},
        ], headers={"Idempotency-Key": key} if key else None)
        errs = assert_error(r, 422)
        assert [e["source"]["pointer"] for e in errs] == [
            "/operations/0/id", "/operations/1/lead/name", "/operations/2/lead/stage", "/operations/4/id",
            "/operations/5/id", "/operations/6/id"]
    assert total(app) == before
    assert app.get_lead(live["id"])["attributes"]["name"] == "Live"
    # a body whose problems name no id is answered as before
    errs = assert_error(batch(app, [{"op": "create", "lead": {"value": -1}}]), 422)
    assert {e["source"]["pointer"] for e in errs} == {"/operations/0/lead/name", "/operations/0/lead/value"}


def test_an_invalid_delete_deletes_nothing_for_the_operations_after_it(app):
    """A delete with a problem of its own is reported, and a later operation on its lead,
    which exists, is judged on the lead: no "No such lead" for it."""
    lead = app.create_lead(name="Still here")
    for bad in ({"op": "delete", "id": lead["id"], "lead": {}}, {"op": "delete", "id": lead["id"], "bogus": 1}):
        errs = assert_error(batch(app, [bad, {"op": "update", "id": lead["id"], "lead": {"name": "q"}}]), 422)
        assert [e["source"]["pointer"] for e in errs] == ["/operations/0/" + next(k for k in bad if k not in ("op", "id"))]
    # a valid delete still counts: the update after it names a lead gone
    errs = assert_error(batch(app, [{"op": "delete", "id": lead["id"]},
                                    {"op": "update", "id": lead["id"], "lead": {"name": "q"}, "x": 1}]), 422)
    assert [e["source"]["pointer"] for e in errs] == ["/operations/1/x", "/operations/1/id"]
    assert app.get_lead(lead["id"])["attributes"]["name"] == "Still here"


@pytest.mark.parametrize("body", [{}, {"operations": []}, {"operations": "x"},
                                  {"operations": [{"op": "create", "lead": {"name": "x"}}] * 501},
                                  {"operations": [], "more": 1}])
def test_the_shape_of_the_body(app, body):
    assert_error(app.post("/leads/batch", body), 422, {"validation_error", "unknown_attribute"})
    assert total(app) == 0


def test_500_creates_at_once(app):
    ops = [{"op": "create", "lead": {"name": f"Lead {i}", "value": i}} for i in range(500)]
    r = batch(app, ops)
    assert_status(r, 200)
    data = body_json(r)["data"]
    assert [d["attributes"]["name"] for d in data] == [f"Lead {i}" for i in range(500)]
    assert len({d["id"] for d in data}) == 500
    assert total(app) == 500


def test_a_batch_with_an_idempotency_key_runs_once(app):
    ops = [{"op": "create", "lead": {"name": "Once"}}]
    first = batch(app, ops, headers={"Idempotency-Key": "batch-1"})
    assert_status(first, 200)
    again = batch(app, ops, headers={"Idempotency-Key": "batch-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    assert total(app) == 1


def test_other_methods_are_405(app):
    r = app.get("/leads/batch")
    assert_error(r, 405)
    assert r.headers["Allow"] == "POST"


@pytest.mark.parametrize("key", ["\u20ac" * 30, "a" + "\u00e9" * 40, "\U0001F600" * 20])
def test_a_long_unknown_key_gives_a_pointer_of_valid_utf8(app, key):
    """A pointer longer than the room for it is cut at a character: the
    answer stays UTF-8 (and, kept for its Idempotency-Key, PostgreSQL takes
    it: it refused the kept answer with a 500)."""
    for member in ({"op": "create", "lead": {"name": "x", key: 1}},
                   {"op": "delete", "id": str(uuid.uuid4()), key: 1}):
        headers = {"Idempotency-Key": f"utf8-{uuid.uuid4()}"}
        for attempt in range(2):
            r = batch(app, [member], headers=headers)
            # the delete's unknown id is a problem of its own (validation_error)
            errs = assert_error(r, 422, {"unknown_attribute", "validation_error"})
            assert errs[0]["code"] == "unknown_attribute"
            r.content.decode("utf-8")  # raises on a character cut short
            assert r.headers.get("Idempotent-Replayed") == ("true" if attempt else None)
    assert total(app) == 0


def test_an_unknown_key_of_an_operation_is_pointed_at_with_rfc_6901_escapes(app):
    """"a/b" is one member, not two levels: its pointer is /operations/0/a~1b, as
    the lead's own members' are (/operations/1/lead/c~0d)."""
    r = batch(app, [{"op": "delete", "id": str(uuid.uuid4()), "a/b": 1},
                    {"op": "create", "lead": {"name": "x", "c~d": 1}}])
    errs = assert_error(r, 422, {"unknown_attribute", "validation_error"})
    assert [e["source"]["pointer"] for e in errs] == ["/operations/0/a~1b", "/operations/0/id",
                                                      "/operations/1/lead/c~0d"]
    assert total(app) == 0


@pytest.mark.parametrize("attr,text", [("value", "0.1000000000000000000001"), ("value", "1e-2000"),
                                       ("value", "1.0000000000000000001"),
                                       ("probability", "50.0000000000000000001"),
                                       ("probability", "1e-2000")])
def test_numbers_are_read_from_their_digits_as_in_a_single_write(app, attr, text):
    """A batch read numbers from jansson's doubles: 1e-2000 became 0 and
    0.1000000000000000000001 became 0.1 where POST /leads/ refuses both."""
    lead = app.create_lead(name="Kept", value=5)
    single = app.post("/leads/", raw=f'{{"lead": {{"name": "x", "{attr}": {text}}}}}')
    assert_error(single, 422, "validation_error")
    before = total(app)
    escaped = attr.replace("a", "\\u0061", 1)  # the same key, spelled with an escape
    body = (f'{{"operations": [{{"op": "create", "lead": {{"name": "x", "{attr}": {text}}}}},'
            f' {{"op": "update", "id": "{lead["id"]}", "lead": {{"name": "y", "{escaped}": {text}}}}}]}}')
    errs = assert_error(app.post("/leads/batch", raw=body), 422, "validation_error")
    assert [e["source"]["pointer"] for e in errs] == [f"/operations/0/lead/{attr}",
                                                      f"/operations/1/lead/{attr}"]
    assert total(app) == before
    assert app.get_lead(lead["id"])["attributes"]["value"] == 5


def test_exact_numbers_in_a_batch(app):
    body = ('{"operations": [{"op": "create", "lead": {"name": "a", "value": 9999999999999.99,'
            ' "probability": 100}}, {"op": "create", "lead": {"name": "b", "value": 0.1e1}}]}')
    r = app.post("/leads/batch", raw=body)
    assert_status(r, 200)
    assert [d["attributes"]["value"] for d in body_json(r)["data"]] == [9999999999999.99, 1]
    assert '"value":9999999999999.99' in r.text


def test_a_member_beside_operations_is_pointed_at_by_its_name(app):
    """extensions.md ("Safe writes"): a batch's 422 names every problem's
    pointer. A member beside "operations" is one, at /{member} (RFC 6901
    escapes), as beside a single write's "lead"; it was at "" (the whole
    body), which names no member."""
    ops = [{"op": "create", "lead": {"name": "x"}}]
    errs = assert_error(app.post("/leads/batch", {"operations": ops, "extra": 1, "a/b~": 2}), 422,
                        {"unknown_attribute"})
    assert sorted(e["source"]["pointer"] for e in errs) == ["/a~1b~0", "/extra"]
    single = assert_error(app.post("/leads/", {"lead": {"name": "x"}, "extra": 1}), 422, {"unknown_attribute"})
    assert [e["source"]["pointer"] for e in single] == ["/extra"]
    assert total(app) == 0


@pytest.mark.parametrize("op", [
    {"op": "create\u0000delete", "lead": {"name": "x"}},
    {"op": "delete\u0000", "id": "{id}"},
    {"op": "delete", "id": "{id}\u0000junk"},
    {"op": "update", "id": "{id}\u0000", "lead": {"name": "y"}},
])
def test_a_nul_inside_op_or_id_is_refused(app, op):
    """op and id are their whole strings (a body's strings may hold a JSON
    \\u0000): the C string up to the NUL ("create", the id) was read, and the
    operation was done with the rest dropped without a word, where a single
    write's texts and ids are refused so."""
    lead = app.create_lead(name="Kept")
    op = {k: (v.replace("{id}", lead["id"]) if isinstance(v, str) else v) for k, v in op.items()}
    before = total(app)
    errs = assert_error(batch(app, [op]), 422, "validation_error")
    assert [e["source"]["pointer"] for e in errs] == ["/operations/0/" + ("id" if "id" in op and
                                                                          "\u0000" in op["id"] else "op")]
    assert total(app) == before
    assert app.get_lead(lead["id"])["attributes"]["name"] == "Kept"
