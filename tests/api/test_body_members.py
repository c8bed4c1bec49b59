"""What a body may hold beside the attributes (issue 9, finding 2): read-only
attributes are ignored only when they hold a value they could (a short
string as the server sends, or null or a number as a client's model holds
before the server gave one), members beside the wrapper are unknown attributes, and a body
that is JSON but not an object is a missing wrapper. Nothing is written."""

import pytest

from apiutil import MIB, assert_status, assert_validation, body_json, check_lead, parse_ts


def total(app):
    return body_json(app.get("/leads/", params={"records": 1}))["meta"]["totalRecords"]


def test_a_mebibyte_of_created_at_is_a_422_not_a_201(app):
    # The review's body: a 1 MiB array where a timestamp goes.
    head, tail = '{"lead":{"name":"x","created_at":[', "0]}}"
    raw = head + "0," * ((MIB - len(head) - len(tail) - 16) // 2) + tail
    assert len(raw) < MIB
    r = app.post("/leads/", raw=raw)
    assert_validation(r, ["/lead/created_at"])
    assert total(app) == 0


@pytest.mark.parametrize("attr", ["unique_id", "created_at", "updated_at"])
@pytest.mark.parametrize("value", [True, [], {}, "x" * 65, {"a": "b" * 1000}])
def test_read_only_attributes_of_another_shape_are_a_422(app, attr, value):
    r = app.post("/leads/", {"lead": {"name": "ro", attr: value}})
    assert_validation(r, [f"/lead/{attr}"])
    assert total(app) == 0


@pytest.mark.parametrize("attr", ["unique_id", "created_at", "updated_at"])
@pytest.mark.parametrize("value", [None, 5, 1.5e9])
def test_read_only_attributes_a_client_model_holds_before_the_server_gave_them_are_ignored(app, attr, value):
    """contract-notes.md: read-only attributes sent back are ignored; a client's model
    holds null (or a number of seconds) there before the server gave the value."""
    # A lead made just before: the server's own clock, for the times to be
    # checked against (a number taken as seconds since 1970 would be long
    # before it).
    before = app.create_lead(name="before")["attributes"]["created_at"]
    r = app.post("/leads/", {"lead": {"name": "ro", attr: value}})
    assert_status(r, 201)
    lead = body_json(r)["data"]
    assert lead["id"] == lead["attributes"]["unique_id"] != value
    created, updated = (parse_ts(lead["attributes"][k]) for k in ("created_at", "updated_at"))
    assert parse_ts(before) <= created <= updated, lead["attributes"]
    assert app.get_lead(lead["id"])["attributes"] == lead["attributes"]
    assert total(app) == 2


def test_read_only_attributes_on_put_and_follows(app):
    lead = app.create_lead(name="L")
    assert_validation(app.put(f"/leads/{lead['id']}", {"lead": {"updated_at": True}}), ["/lead/updated_at"])
    assert_validation(app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "t", "unique_id": []}}),
                      ["/follow/unique_id"])
    f = app.create_follow(lead["id"], title="F")
    assert_validation(app.put(f"/leads/{lead['id']}/follows/{f['id']}",
                              {"follow": {"created_at": "y" * 100}}), ["/follow/created_at"])
    assert app.get_lead(lead["id"])["attributes"] == lead["attributes"]
    assert app.get_follow(lead["id"], f["id"])["attributes"]["title"] == "F"


def test_read_only_strings_as_sent_are_still_ignored(app):
    lead = app.create_lead(name="L")
    a = dict(lead["attributes"], unique_id="u" * 64)
    r = app.put(f"/leads/{lead['id']}", {"lead": a})
    assert_status(r, 200)
    check_lead(body_json(r)["data"], unique_id=lead["id"], created_at=a["created_at"])


@pytest.mark.parametrize("extra, pointer", [
    ({"created_at": "2026-01-01T00:00:00.000Z"}, "/created_at"),
    ({"data": {}}, "/data"),
    ({"follow": {"title": "x"}}, "/follow"),
    ({"a/b~c": 1}, "/a~1b~0c"),
])
def test_members_beside_the_wrapper_are_unknown(app, extra, pointer):
    body = {"lead": {"name": "x"}, **extra}
    assert_validation(app.post("/leads/", body), [pointer], {pointer: "unknown_attribute"})
    lead = app.create_lead(name="L")
    assert_validation(app.put(f"/leads/{lead['id']}", {"lead": {"name": "y"}, **extra}), [pointer],
                      {pointer: "unknown_attribute"})
    assert app.get_lead(lead["id"])["attributes"]["name"] == "L"
    assert total(app) == 1


def test_members_beside_the_follow_wrapper_are_unknown(app):
    lead = app.create_lead(name="L")
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "t"}, "lead": {"name": "x"}})
    assert_validation(r, ["/lead"], {"/lead": "unknown_attribute"})
    assert body_json(app.get(f"/leads/{lead['id']}/follows"))["data"] == []


@pytest.mark.parametrize("raw", ['"lead"', "42", "null", "true", "[]", '[{"lead":{"name":"x"}}]',
                                 ' "x" '])
def test_json_that_is_not_an_object_is_a_missing_wrapper(app, raw):
    assert_validation(app.post("/leads/", raw=raw), [""])
    lead = app.create_lead(name="L")
    assert_validation(app.put(f"/leads/{lead['id']}", raw=raw), [""])
    assert_validation(app.post(f"/leads/{lead['id']}/follows", raw=raw), [""])
    assert total(app) == 1
