"""updated_at strictly increases on every successful update; created_at never moves."""

from apiutil import assert_status, body_json, check_follow, check_lead, parse_ts


def test_lead_updated_at_strictly_increases(app):
    a = app.create_lead(name="t0")
    created = a["attributes"]["created_at"]
    stamps = [a["attributes"]["updated_at"]]
    for i in range(1, 6):
        r = app.put(f"/leads/{a['id']}", {"lead": {"name": f"t{i}"}})
        assert_status(r, 200)
        attrs = check_lead(body_json(r)["data"], name=f"t{i}", created_at=created)
        stamps.append(attrs["updated_at"])
    times = [parse_ts(s) for s in stamps]
    assert all(x < y for x, y in zip(times, times[1:])), stamps
    check_lead(app.get_lead(a["id"]), created_at=created, updated_at=stamps[-1])


def test_identical_put_still_bumps_updated_at(app):
    a = app.create_lead(name="same")
    r1 = app.put(f"/leads/{a['id']}", {"lead": {"name": "same"}})
    r2 = app.put(f"/leads/{a['id']}", {"lead": {"name": "same"}})
    u0 = a["attributes"]["updated_at"]
    u1 = body_json(r1)["data"]["attributes"]["updated_at"]
    u2 = body_json(r2)["data"]["attributes"]["updated_at"]
    assert parse_ts(u0) < parse_ts(u1) < parse_ts(u2), (u0, u1, u2)


def test_follow_updated_at_strictly_increases(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="f0")
    created = f["attributes"]["created_at"]
    stamps = [f["attributes"]["updated_at"]]
    for i in range(1, 5):
        r = app.put(f"/leads/{lead['id']}/follows/{f['id']}", {"follow": {"title": f"f{i}"}})
        assert_status(r, 200)
        stamps.append(check_follow(body_json(r)["data"], created_at=created)["updated_at"])
    times = [parse_ts(s) for s in stamps]
    assert all(x < y for x, y in zip(times, times[1:])), stamps


def test_updated_at_not_before_created_at(app):
    a = app.create_lead()
    assert parse_ts(a["attributes"]["updated_at"]) >= parse_ts(a["attributes"]["created_at"])
