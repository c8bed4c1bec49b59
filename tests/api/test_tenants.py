"""Tenant isolation: nothing of one app is visible to or changeable by another."""

from apiutil import assert_error, assert_status, body_json, check_follow, check_lead


def test_other_app_cannot_see_or_touch_leads(app, app2):
    a = app.create_lead(name="A secret", value=10)
    f = app.create_follow(a["id"], title="A task")
    b = app2.create_lead(name="B own")

    assert_error(app2.get(f"/leads/{a['id']}"), 404, "not_found")
    assert_error(app2.get(f"/leads/{a['id']}/"), 404, "not_found")
    assert_error(app2.put(f"/leads/{a['id']}", {"lead": {"name": "pwned"}}), 404, "not_found")
    assert_error(app2.delete(f"/leads/{a['id']}"), 404, "not_found")
    assert_error(app2.get(f"/leads/{a['id']}/follows"), 404, "not_found")
    assert_error(app2.post(f"/leads/{a['id']}/follows", {"follow": {"title": "x"}}), 404,
                 "not_found")
    assert_error(app2.get(f"/leads/{a['id']}/follows/{f['id']}"), 404, "not_found")
    assert_error(app2.put(f"/leads/{a['id']}/follows/{f['id']}", {"follow": {"title": "x"}}),
                 404, "not_found")
    assert_error(app2.delete(f"/leads/{a['id']}/follows/{f['id']}"), 404, "not_found")
    # B's own lead path with A's follow id
    assert_error(app2.get(f"/leads/{b['id']}/follows/{f['id']}"), 404, "not_found")

    # A's data is intact
    check_lead(app.get_lead(a["id"]), name="A secret", value=10,
               updated_at=a["attributes"]["updated_at"])
    check_follow(app.get_follow(a["id"], f["id"]), title="A task",
                 updated_at=f["attributes"]["updated_at"])
    lst = body_json(app.get(f"/leads/{a['id']}/follows"))
    assert [x["id"] for x in lst["data"]] == [f["id"]]

    # and A cannot see B's either
    assert_error(app.get(f"/leads/{b['id']}"), 404, "not_found")


def test_lists_and_totals_are_per_app(app, app2):
    mine = {app.create_lead()["id"] for _ in range(3)}
    theirs = {app2.create_lead()["id"] for _ in range(2)}
    r1, r2 = body_json(app.get("/leads/")), body_json(app2.get("/leads/"))
    assert {d["id"] for d in r1["data"]} == mine
    assert {d["id"] for d in r2["data"]} == theirs
    assert r1["meta"]["totalRecords"] == 3 and r1["meta"]["totalPages"] == 1
    assert r2["meta"]["totalRecords"] == 2 and r2["meta"]["totalPages"] == 1


def test_a_second_token_of_the_same_app_sees_the_same_data(server, app):
    from apiutil import token_issue
    a = app.create_lead(name="shared")
    other = app.with_creds(token=token_issue(server.db, app.key, subject="second-user"))
    assert_status(other.get(f"/leads/{a['id']}"), 200)
    assert body_json(other.get("/leads/"))["meta"]["totalRecords"] == 1
