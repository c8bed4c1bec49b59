"""Attribute validation: 422 with one error per problem, all at once; exact
decimals; trimming; control characters; nulls; read-only attributes; follows'
due_date and status rules. A failed request changes nothing."""

import json
import uuid

import pytest

from apiutil import (assert_error, assert_status, assert_validation, body_json, check_follow,
                     check_lead, exact_json)

EMOJI = "\U0001F600"
PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-06-01T12:00:00Z"


def post_lead_raw(app, members):
    """POST /leads/ with the lead object's members given as raw JSON text."""
    return app.post("/leads/", raw='{"lead":{' + members + "}}")


def exact_attr(resp, name):
    return exact_json(resp.text)["data"]["attributes"][name]


# ------------------------------------------------------------------ name

@pytest.mark.parametrize("lead, pointer", [
    ({}, "/lead/name"),
    ({"source": "web"}, "/lead/name"),
    ({"name": ""}, "/lead/name"),
    ({"name": "   "}, "/lead/name"),
    ({"name": "\t\n \u00a0\u3000"}, "/lead/name"),
    ({"name": "x" * 256}, "/lead/name"),
    ({"name": EMOJI * 256}, "/lead/name"),
    ({"name": "e\u0301" * 128}, "/lead/name"),  # 256 code points, 128 graphemes
    ({"name": None}, "/lead/name"),
    ({"name": 123}, "/lead/name"),
    ({"name": ["x"]}, "/lead/name"),
    ({"name": "a\u0001b"}, "/lead/name"),
    ({"name": "a\u0000b"}, "/lead/name"),
    ({"name": "a\nb"}, "/lead/name"),
    ({"name": "a\tb"}, "/lead/name"),
    ({"name": "a\rb"}, "/lead/name"),
    ({"name": "a\u007fb"}, "/lead/name"),
    ({"name": "a\u0085b"}, "/lead/name"),
    ({"name": "a\u009fb"}, "/lead/name"),
    ({"name": "ok", "source": "x" * 65}, "/lead/source"),
    ({"name": "ok", "source": EMOJI * 65}, "/lead/source"),
    ({"name": "ok", "source": "a\u0002"}, "/lead/source"),
    ({"name": "ok", "source": 5}, "/lead/source"),
    ({"name": "ok", "account_id": "account-uuid-456"}, "/lead/account_id"),
    ({"name": "ok", "account_id": "abc"}, "/lead/account_id"),
    ({"name": "ok", "account_id": 12}, "/lead/account_id"),
    ({"name": "ok", "contact_id": "contact-uuid-789"}, "/lead/contact_id"),
    ({"name": "ok", "contact_id": "0f8fad5b-d9cb-469f-a165-70867728950"}, "/lead/contact_id"),
    ({"name": "ok", "stage": "won"}, "/lead/stage"),
    ({"name": "ok", "stage": ""}, "/lead/stage"),
    ({"name": "ok", "stage": 1}, "/lead/stage"),
    ({"name": "ok", "stage": None}, "/lead/stage"),
    ({"name": "ok", "status": "deleted"}, "/lead/status"),
    ({"name": "ok", "status": ""}, "/lead/status"),
    ({"name": "ok", "status": None}, "/lead/status"),
    ({"name": "ok", "probability": 101}, "/lead/probability"),
    ({"name": "ok", "probability": -1}, "/lead/probability"),
    ({"name": "ok", "probability": 40.5}, "/lead/probability"),
    ({"name": "ok", "probability": "abc"}, "/lead/probability"),
    ({"name": "ok", "probability": True}, "/lead/probability"),
])
def test_create_lead_invalid_attribute(mapp, lead, pointer):
    before = body_json(mapp.get("/leads/", params={"records": 1}))["meta"]["totalRecords"]
    r = mapp.post("/leads/", {"lead": lead})
    assert_validation(r, [pointer])
    after = body_json(mapp.get("/leads/", params={"records": 1}))["meta"]["totalRecords"]
    assert after == before, "a failed create must not create anything"


@pytest.mark.parametrize("members", [
    '"name":"ok","value":-1',
    '"name":"ok","value":-0.01',
    '"name":"ok","value":12.345',
    '"name":"ok","value":0.001',
    '"name":"ok","value":1e13',
    '"name":"ok","value":10000000000000',
    '"name":"ok","value":10000000000000.00',
    '"name":"ok","value":"abc"',
    '"name":"ok","value":"1e13"',
    '"name":"ok","value":"-5"',
    '"name":"ok","value":"12.345"',
    '"name":"ok","value":" 12"',
    '"name":"ok","value":"12 "',
    '"name":"ok","value":"+12"',
    '"name":"ok","value":"012"',
    '"name":"ok","value":"0x10"',
    '"name":"ok","value":"."',
    '"name":"ok","value":""',
    '"name":"ok","value":"NaN"',
    '"name":"ok","value":"Infinity"',
    '"name":"ok","value":"1.2.3"',
    '"name":"ok","value":true',
    '"name":"ok","value":[]',
    '"name":"ok","value":{}',
    # more than two fractional digits, even where a binary double would hide them
    '"name":"ok","value":0.10000000000000000000001',
    '"name":"ok","value":12.3400000000000001',
    '"name":"ok","value":0.1000000000000000055511151231257827',
    '"name":"ok","value":9999999999999.999',
    '"name":"ok","value":1.005',
])
def test_create_lead_invalid_value(mapp, members):
    assert_validation(post_lead_raw(mapp, members), ["/lead/value"])


@pytest.mark.parametrize("value_json, rendered", [
    ('"12.50"', "12.5"),
    ("12.300", "12.3"),
    ("1.5e2", "150"),
    ("1.5E+2", "150"),
    ('"1.5e2"', "150"),
    ("0.1", "0.1"),
    ('"0.1"', "0.1"),
    ("12345.67", "12345.67"),
    ("9999999999999.99", "9999999999999.99"),
    ('"9999999999999.99"', "9999999999999.99"),
    ("50000", "50000"),
    ("75000.00", "75000"),
    ("0", "0"),
    ("0.29", "0.29"),
    ("1e-1", "0.1"),
    ('"1234567890123.45"', "1234567890123.45"),
])
def test_value_is_exact(mapp, value_json, rendered):
    r = post_lead_raw(mapp, f'"name":"money","value":{value_json}')
    assert_status(r, 201)
    assert exact_attr(r, "value") == rendered, r.text
    lead_id = body_json(r)["data"]["id"]
    g = mapp.get(f"/leads/{lead_id}")
    assert exact_attr(g, "value") == rendered, g.text
    # and it survives a list
    lst = mapp.get("/leads/", params={"records": 100})
    found = [d for d in exact_json(lst.text)["data"] if d["id"] == lead_id]
    assert found and found[0]["attributes"]["value"] == rendered


@pytest.mark.parametrize("member", ["v\\u0061lue", "prob\\u0061bility"])
def test_an_escaped_key_gets_the_exact_number_check_too(mapp, member):
    # "v\u0061lue" is "value" once decoded: its number must be read from its
    # own digits, so the 18th decimal is seen and refused, not rounded away.
    number = "0.0100000000000000001" if member[0] == "v" else "40.0000000000000001"
    r = post_lead_raw(mapp, f'"name":"escaped","{member}":{number}')
    name = "value" if member[0] == "v" else "probability"
    assert_validation(r, [f"/lead/{name}"])


@pytest.mark.parametrize("prob_json, rendered", [("0", "0"), ("100", "100"), ("40.0", "40"),
                                                  ("60", "60")])
def test_probability_integer(mapp, prob_json, rendered):
    r = post_lead_raw(mapp, f'"name":"p","probability":{prob_json}')
    assert_status(r, 201)
    assert exact_attr(r, "probability") == rendered, r.text


@pytest.mark.parametrize("stage", ["new", "contacted", "qualified", "proposal", "negotiation"])
def test_every_stage_accepted(mapp, stage):
    check_lead(mapp.create_lead(stage=stage), stage=stage)


@pytest.mark.parametrize("status", ["active", "inactive", "converted", "lost"])
def test_every_lead_status_accepted_on_create_and_put(mapp, status):
    a = mapp.create_lead(status=status)
    check_lead(a, status=status)
    r = mapp.put(f"/leads/{a['id']}", {"lead": {"status": "active" if status != "active" else "lost"}})
    assert_status(r, 200)


@pytest.mark.parametrize("sent, stored", [
    ("  Deal  ", "Deal"),
    ("\tDeal\n", "Deal"),
    ("\u00a0\u3000Deal\u2003\u2028", "Deal"),
    ("Big  Deal", "Big  Deal"),
    ("x", "x"),
    ("x" * 255, "x" * 255),
    ("  " + "y" * 255 + "  ", "y" * 255),
    (EMOJI * 255, EMOJI * 255),
    ("e\u0301" * 127, "e\u0301" * 127),
    ("Caf\u00e9 \u65e5\u672c", "Caf\u00e9 \u65e5\u672c"),
])
def test_name_trimmed_and_counted_in_code_points(mapp, sent, stored):
    a = mapp.create_lead(name=sent)
    check_lead(a, name=stored)
    check_lead(mapp.get_lead(a["id"]), name=stored)


def test_escaped_surrogate_pair_is_one_character(mapp):
    r = post_lead_raw(mapp, '"name":"\\ud83d\\ude00 ok"')
    assert_status(r, 201)
    check_lead(body_json(r)["data"], name=EMOJI + " ok")


def test_source_limits(mapp):
    check_lead(mapp.create_lead(source="s" * 64), source="s" * 64)
    check_lead(mapp.create_lead(source=EMOJI * 64), source=EMOJI * 64)
    check_lead(mapp.create_lead(source="  cold_call "), source="cold_call")


def test_uuid_attributes_accept_any_uuid(mapp):
    acc, con = str(uuid.uuid4()), str(uuid.uuid1())
    check_lead(mapp.create_lead(account_id=acc, contact_id=con), account_id=acc, contact_id=con)


def test_all_problems_reported_at_once(app):
    r = app.post("/leads/", {"lead": {
        "name": "   ", "source": "x" * 65, "value": -1, "stage": "bogus", "probability": 101,
        "status": "nope", "account_id": "bad", "contact_id": "bad", "nmae": "typo"}})
    pointers = ["/lead/name", "/lead/source", "/lead/value", "/lead/stage", "/lead/probability",
                "/lead/status", "/lead/account_id", "/lead/contact_id", "/lead/nmae"]
    assert_validation(r, pointers, codes={"/lead/nmae": "unknown_attribute"})
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == 0


def test_unknown_attribute_create(mapp):
    r = mapp.post("/leads/", {"lead": {"name": "x", "nmae": "y"}})
    assert_validation(r, ["/lead/nmae"], codes={"/lead/nmae": "unknown_attribute"})


def test_unknown_attribute_pointer_is_escaped(mapp):
    r = mapp.post("/leads/", {"lead": {"name": "x", "a/b~c": 1}})
    assert_validation(r, ["/lead/a~1b~0c"], codes={"/lead/a~1b~0c": "unknown_attribute"})


def test_unknown_attribute_update(app):
    a = app.create_lead(name="Before")
    r = app.put(f"/leads/{a['id']}", {"lead": {"name": "After", "valeu": 5}})
    assert_validation(r, ["/lead/valeu"], codes={"/lead/valeu": "unknown_attribute"})
    check_lead(app.get_lead(a["id"]), name="Before", value=None)


def test_unknown_attribute_follow(app):
    lead = app.create_lead()
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "x", "due": FUTURE}})
    assert_validation(r, ["/follow/due"], codes={"/follow/due": "unknown_attribute"})
    assert body_json(app.get(f"/leads/{lead['id']}/follows"))["data"] == []


# ------------------------------------------------------------------ updates, nulls

@pytest.mark.parametrize("attr", ["name", "stage", "status"])
def test_put_null_on_required_is_422(app, attr):
    a = app.create_lead(name="Keep", stage="qualified", status="inactive")
    r = app.put(f"/leads/{a['id']}", {"lead": {attr: None}})
    assert_validation(r, [f"/lead/{attr}"])
    check_lead(app.get_lead(a["id"]), name="Keep", stage="qualified", status="inactive",
               updated_at=a["attributes"]["updated_at"])


@pytest.mark.parametrize("attr", ["source", "value", "account_id", "contact_id", "probability"])
def test_put_null_clears_optional(app, attr):
    a = app.create_lead(source="website", value=10, account_id=str(uuid.uuid4()),
                        contact_id=str(uuid.uuid4()), probability=30)
    r = app.put(f"/leads/{a['id']}", {"lead": {attr: None}})
    assert_status(r, 200)
    check_lead(body_json(r)["data"], **{attr: None})
    got = app.get_lead(a["id"])
    check_lead(got, **{attr: None})
    for other in ("source", "value", "account_id", "contact_id", "probability"):
        if other != attr:
            assert got["attributes"][other] == a["attributes"][other]


def test_create_with_nulls_for_optionals(mapp):
    a = mapp.create_lead(name="n", source=None, value=None, account_id=None, contact_id=None,
                         probability=None)
    check_lead(a, source=None, value=None, account_id=None, contact_id=None, probability=None)


def test_put_invalid_values_change_nothing(app):
    a = app.create_lead(name="Stable", value=100, stage="new", probability=10)
    r = app.put(f"/leads/{a['id']}", {"lead": {"name": "Changed", "value": 5,
                                               "stage": "bogus", "probability": 500}})
    assert_validation(r, ["/lead/stage", "/lead/probability"])
    assert app.get_lead(a["id"])["attributes"] == a["attributes"]


def test_put_blank_name_is_422(app):
    a = app.create_lead(name="Stable")
    assert_validation(app.put(f"/leads/{a['id']}", {"lead": {"name": "  "}}), ["/lead/name"])
    assert app.get_lead(a["id"])["attributes"]["name"] == "Stable"


def test_read_only_attributes_ignored_on_create(mapp):
    fake = str(uuid.uuid4())
    r = mapp.post("/leads/", {"lead": {"name": "ro", "unique_id": fake,
                                       "created_at": "2000-01-01T00:00:00.000Z",
                                       "updated_at": "2000-01-01T00:00:00.000Z"}})
    assert_status(r, 201)
    a = check_lead(body_json(r)["data"], name="ro")
    assert a["unique_id"] != fake
    assert not a["created_at"].startswith("2000") and not a["updated_at"].startswith("2000")
    assert_error(mapp.get(f"/leads/{fake}"), 404)


def test_round_trip_of_read_attributes(app):
    a = app.create_lead(name="Round", source="website", account_id=str(uuid.uuid4()),
                        contact_id=str(uuid.uuid4()), value="12345.67", stage="qualified",
                        probability=40)
    got = app.get_lead(a["id"])
    r = app.put(f"/leads/{a['id']}/", {"lead": got["attributes"]})
    assert_status(r, 200)
    back = check_lead(body_json(r)["data"])
    for k in got["attributes"]:
        if k != "updated_at":
            assert back[k] == got["attributes"][k], k
    assert back["updated_at"] > got["attributes"]["updated_at"]
    assert exact_attr(r, "value") == "12345.67"


def test_read_only_attributes_ignored_on_put(app):
    a = app.create_lead(name="ro")
    r = app.put(f"/leads/{a['id']}", {"lead": {"unique_id": str(uuid.uuid4()),
                                               "created_at": "2000-01-01T00:00:00.000Z",
                                               "updated_at": "2000-01-01T00:00:00.000Z",
                                               "name": "ro2"}})
    assert_status(r, 200)
    check_lead(body_json(r)["data"], unique_id=a["id"], name="ro2",
               created_at=a["attributes"]["created_at"])
    assert body_json(r)["data"]["attributes"]["updated_at"] > "2001"


# ------------------------------------------------------------------ wrappers

@pytest.mark.parametrize("body", [
    {"name": "x"},
    {"follow": {"title": "x"}},
    {"lead": "x"},
    {"lead": []},
    {"lead": None},
    {"lead": 1},
    {},
])
def test_missing_or_wrong_wrapper_is_422(mapp, body):
    before = body_json(mapp.get("/leads/", params={"records": 1}))["meta"]["totalRecords"]
    assert_error(mapp.post("/leads/", body), 422, {"validation_error", "unknown_attribute"})
    assert body_json(mapp.get("/leads/", params={"records": 1}))["meta"]["totalRecords"] == before


@pytest.mark.parametrize("raw", ["[]", '"x"', "1", "null", "true", '[{"lead":{"name":"x"}}]'])
def test_body_not_an_object(mapp, raw):
    # JSON, but not an object: the wrapper is missing (422 at ""), not a 400.
    assert_validation(mapp.post("/leads/", raw=raw), [""])


def test_wrong_wrapper_on_put_and_follows(app):
    a = app.create_lead(name="W")
    assert_error(app.put(f"/leads/{a['id']}", {"name": "x"}), 422,
                 {"validation_error", "unknown_attribute"})
    assert_error(app.put(f"/leads/{a['id']}", {"lead": "x"}), 422,
                 {"validation_error", "unknown_attribute"})
    assert_error(app.post(f"/leads/{a['id']}/follows", {"title": "x"}), 422,
                 {"validation_error", "unknown_attribute"})
    assert_error(app.post(f"/leads/{a['id']}/follows", {"lead": {"title": "x"}}), 422,
                 {"validation_error", "unknown_attribute"})
    f = app.create_follow(a["id"], title="F")
    assert_error(app.put(f"/leads/{a['id']}/follows/{f['id']}", {"follow": []}), 422,
                 {"validation_error", "unknown_attribute"})
    check_lead(app.get_lead(a["id"]), name="W")
    check_follow(app.get_follow(a["id"], f["id"]), title="F")


# ------------------------------------------------------------------ follows

@pytest.mark.parametrize("follow, pointer", [
    ({}, "/follow/title"),
    ({"description": "d"}, "/follow/title"),
    ({"title": ""}, "/follow/title"),
    ({"title": "   "}, "/follow/title"),
    ({"title": None}, "/follow/title"),
    ({"title": 5}, "/follow/title"),
    ({"title": "t" * 256}, "/follow/title"),
    ({"title": EMOJI * 256}, "/follow/title"),
    ({"title": "a\nb"}, "/follow/title"),
    ({"title": "a\u0007b"}, "/follow/title"),
    ({"title": "t", "description": "d" * 10001}, "/follow/description"),
    ({"title": "t", "description": "a\u0001b"}, "/follow/description"),
    ({"title": "t", "description": "a\u0000b"}, "/follow/description"),
    ({"title": "t", "description": "a\u007fb"}, "/follow/description"),
    ({"title": "t", "description": 3}, "/follow/description"),
    ({"title": "t", "due_date": "2026-02-30T10:00:00Z"}, "/follow/due_date"),
    ({"title": "t", "due_date": "2026-13-01T10:00:00Z"}, "/follow/due_date"),
    ({"title": "t", "due_date": "2026-03-05T24:00:00Z"}, "/follow/due_date"),
    ({"title": "t", "due_date": "2026-03-05T14:60:00Z"}, "/follow/due_date"),
    ({"title": "t", "due_date": "2026-03-05"}, "/follow/due_date"),
    ({"title": "t", "due_date": "2026-03-05T14:00:00"}, "/follow/due_date"),
    ({"title": "t", "due_date": "tomorrow"}, "/follow/due_date"),
    ({"title": "t", "due_date": ""}, "/follow/due_date"),
    ({"title": "t", "due_date": 1767225600}, "/follow/due_date"),
    ({"title": "t", "status": "done"}, "/follow/status"),
    ({"title": "t", "status": None}, "/follow/status"),
    ({"title": "t", "status": "overdue"}, "/follow/status"),
    ({"title": "t", "status": "overdue", "due_date": FUTURE}, "/follow/status"),
])
def test_create_follow_invalid(app, follow, pointer):
    lead = app.create_lead()
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": follow})
    assert_validation(r, [pointer])
    assert body_json(app.get(f"/leads/{lead['id']}/follows"))["meta"]["totalRecords"] == 0


def test_follow_all_problems_at_once(app):
    lead = app.create_lead()
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": {
        "title": " ", "description": "x" * 10001, "due_date": "2026-02-30T00:00:00Z",
        "status": "done", "extra": 1}})
    assert_validation(r, ["/follow/title", "/follow/description", "/follow/due_date",
                          "/follow/status", "/follow/extra"],
                      codes={"/follow/extra": "unknown_attribute"})


@pytest.mark.parametrize("sent, stored", [
    ("2026-03-05T14:00:00Z", "2026-03-05T14:00:00.000Z"),
    ("2026-03-05T16:00:00+02:00", "2026-03-05T14:00:00.000Z"),
    ("2026-03-05T09:30:00-04:30", "2026-03-05T14:00:00.000Z"),
    ("2026-03-05T14:00:00.123456Z", "2026-03-05T14:00:00.123Z"),
    ("2026-03-05T14:00:00.9999Z", "2026-03-05T14:00:00.999Z"),
    ("2026-03-05T14:00:00.5Z", "2026-03-05T14:00:00.500Z"),
    ("2099-12-31T23:59:59.5-05:00", "2100-01-01T04:59:59.500Z"),
    ("2028-02-29T00:00:00Z", "2028-02-29T00:00:00.000Z"),
])
def test_due_date_normalised_to_utc_millis(mapp, sent, stored):
    lead = mapp.create_lead()
    f = mapp.create_follow(lead["id"], title="d", due_date=sent)
    check_follow(f, due_date=stored)
    check_follow(mapp.get_follow(lead["id"], f["id"]), due_date=stored)


def test_follow_title_and_description_rules(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="  Call back  ",
                          description="  line1\nline2\r\nline3\tend  ")
    check_follow(f, title="Call back", description="line1\nline2\r\nline3\tend")
    f = app.create_follow(lead["id"], title="t" * 255, description="d" * 10000)
    check_follow(f, title="t" * 255, description="d" * 10000)
    f = app.create_follow(lead["id"], title=EMOJI * 255, description=EMOJI * 10000)
    check_follow(f, title=EMOJI * 255, description=EMOJI * 10000)


@pytest.mark.parametrize("attr", ["title", "status"])
def test_follow_put_null_on_required_is_422(app, attr):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="Keep", status="completed")
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": {attr: None}})
    assert_validation(r, [f"/follow/{attr}"])
    assert app.get_follow(lead["id"], f["id"])["attributes"] == f["attributes"]


@pytest.mark.parametrize("attr", ["description", "due_date"])
def test_follow_put_null_clears_optional(app, attr):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="Keep", description="d", due_date=FUTURE)
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": {attr: None}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], **{attr: None})
    check_follow(app.get_follow(lead["id"], f["id"]), **{attr: None}, title="Keep")


def test_follow_status_writable(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], status="completed", due_date=FUTURE)
    check_follow(f, status="completed")
    path = f"/leads/{lead['id']}/follows/{f['id']}"
    r = app.put(path, {"follow": {"status": "pending"}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="pending")
    r = app.put(path, {"follow": {"status": "completed"}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="completed")


def test_follow_round_trip(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="RT", description="d\nx", due_date=FUTURE)
    got = app.get_follow(lead["id"], f["id"])
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}/", {"follow": got["attributes"]})
    assert_status(r, 200)
    back = check_follow(body_json(r)["data"])
    for k in got["attributes"]:
        if k != "updated_at":
            assert back[k] == got["attributes"][k], k
    assert back["updated_at"] > got["attributes"]["updated_at"]


def test_follow_read_only_ignored(app):
    lead = app.create_lead()
    fake = str(uuid.uuid4())
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": {
        "title": "ro", "unique_id": fake, "created_at": "2000-01-01T00:00:00.000Z",
        "updated_at": "2000-01-01T00:00:00.000Z"}})
    assert_status(r, 201)
    a = check_follow(body_json(r)["data"], title="ro")
    assert a["unique_id"] != fake and not a["created_at"].startswith("2000")


# ------------------------------------------------------------------ overdue

def test_pending_past_due_reads_overdue(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="late", due_date=PAST)
    check_follow(f, status="overdue")
    check_follow(app.get_follow(lead["id"], f["id"]), status="overdue")
    listed = body_json(app.get(f"/leads/{lead['id']}/follows"))["data"]
    check_follow(listed[0], status="overdue")
    # completed ones stay completed
    c = app.create_follow(lead["id"], title="done", due_date=PAST, status="completed")
    check_follow(c, status="completed")


def test_overdue_written_back_to_overdue_follow_is_accepted(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="late", due_date=PAST)
    path = f"/leads/{lead['id']}/follows/{f['id']}"
    r = app.put(path, {"follow": {"status": "overdue", "title": "still late",
                                  "description": "rest applies"}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="overdue", title="still late",
                 description="rest applies", due_date="2020-01-01T00:00:00.000Z")
    check_follow(app.get_follow(lead["id"], f["id"]), status="overdue", title="still late")
    # the full round trip of an overdue follow works too
    got = app.get_follow(lead["id"], f["id"])
    assert_status(app.put(path, {"follow": got["attributes"]}), 200)
    check_follow(app.get_follow(lead["id"], f["id"]), status="overdue")


def test_overdue_written_back_with_future_due_date_reads_pending(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="late", due_date=PAST)
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}",
                {"follow": {"status": "overdue", "due_date": FUTURE}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="pending", due_date="2099-06-01T12:00:00.000Z")


def test_overdue_follow_can_be_completed_or_rescheduled(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="late", due_date=PAST)
    path = f"/leads/{lead['id']}/follows/{f['id']}"
    r = app.put(path, {"follow": {"due_date": FUTURE}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="pending")
    r = app.put(path, {"follow": {"due_date": PAST}})
    check_follow(body_json(r)["data"], status="overdue")
    r = app.put(path, {"follow": {"due_date": None}})
    check_follow(body_json(r)["data"], status="pending", due_date=None)
    r = app.put(path, {"follow": {"due_date": PAST}})
    check_follow(body_json(r)["data"], status="overdue")
    r = app.put(path, {"follow": {"status": "completed"}})
    assert_status(r, 200)
    check_follow(body_json(r)["data"], status="completed")
    check_follow(app.get_follow(lead["id"], f["id"]), status="completed")


@pytest.mark.parametrize("initial, update", [
    ({"due_date": FUTURE}, {"status": "overdue"}),
    ({"due_date": FUTURE}, {"status": "overdue", "due_date": PAST, "title": "no"}),
    ({}, {"status": "overdue"}),
    ({"due_date": PAST, "status": "completed"}, {"status": "overdue", "title": "no"}),
])
def test_overdue_written_to_non_overdue_is_422(app, initial, update):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="T", **initial)
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": update})
    assert_validation(r, ["/follow/status"])
    assert app.get_follow(lead["id"], f["id"])["attributes"] == f["attributes"]


def test_failed_follow_update_changes_nothing(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="T", description="D", due_date=FUTURE)
    r = app.put(f"/leads/{lead['id']}/follows/{f['id']}",
                {"follow": {"title": "New", "description": "New", "due_date": "2026-02-30T00:00:00Z"}})
    assert_validation(r, ["/follow/due_date"])
    assert app.get_follow(lead["id"], f["id"])["attributes"] == f["attributes"]


def test_json_escapes_round_trip(mapp):
    name = 'quote " backslash \\ slash / unicode \u00e9\u4e2d'
    raw = '{"lead":{"name":' + json.dumps(name) + "}}"
    r = mapp.post("/leads/", raw=raw)
    assert_status(r, 201)
    check_lead(body_json(r)["data"], name=name)
