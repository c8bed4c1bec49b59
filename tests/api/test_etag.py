"""Safe writes (extensions.md, "Safe writes"): every lead and follow answer
carries a strong ETag of its representation; If-None-Match on a GET is a 304;
If-Match on PUT and DELETE is a 412 that changes nothing when it does not name
the current ETag; two clients racing with the same If-Match: exactly one wins."""

import threading
import time
import uuid

from apiutil import assert_error, assert_status, body_json, describe, follow_due_soon

ETAG_RE = r'^"[0-9a-f]{32}"$'


def etag(r):
    tag = r.headers.get("ETag")
    assert tag is not None, f"no ETag on {r.request.method} {r.url}: {r.status_code}"
    import re
    assert re.match(ETAG_RE, tag), tag
    return tag


def test_every_lead_answer_carries_the_etag_of_its_representation(app):
    r = app.post("/leads/", {"lead": {"name": "Tagged", "value": 10}})
    assert_status(r, 201)
    created = etag(r)
    lead_id = body_json(r)["data"]["id"]
    got = app.get(f"/leads/{lead_id}")
    assert etag(got) == created, "the same representation, the same tag"
    assert etag(app.get(f"/leads/{lead_id}")) == created, "stable across reads"
    put = app.put(f"/leads/{lead_id}", {"lead": {"stage": "qualified"}})
    assert_status(put, 200)
    assert etag(put) != created
    assert etag(app.get(f"/leads/{lead_id}")) == etag(put)
    # even an update that changes no attribute moves updated_at, hence the tag
    again = app.put(f"/leads/{lead_id}", {"lead": {"stage": "qualified"}})
    assert etag(again) != etag(put)
    assert_status(app.delete(f"/leads/{lead_id}"), 204)
    rec = app.put(f"/leads/{lead_id}/recover")
    assert_status(rec, 200)
    assert etag(rec) == etag(app.get(f"/leads/{lead_id}"))


def test_every_follow_answer_carries_its_etag(app):
    lead = app.create_lead()
    r = app.post(f"/leads/{lead['id']}/follows", {"follow": {"title": "Call"}})
    assert_status(r, 201)
    fid = body_json(r)["data"]["id"]
    assert etag(app.get(f"/leads/{lead['id']}/follows/{fid}")) == etag(r)
    put = app.put(f"/leads/{lead['id']}/follows/{fid}", {"follow": {"status": "completed"}})
    assert etag(put) != etag(r)


def test_a_follow_turning_overdue_changes_its_etag(app):
    lead = app.create_lead()
    f, due, before = follow_due_soon(app, lead["id"], lambda f: app.get(f"/leads/{lead['id']}/follows/{f['id']}"))
    path = f"/leads/{lead['id']}/follows/{f['id']}"
    assert body_json(before)["data"]["attributes"]["status"] == "pending"
    time.sleep(max(0.0, due - time.time()) + 0.3)
    after = app.get(path)
    assert body_json(after)["data"]["attributes"]["status"] == "overdue"
    assert etag(after) != etag(before)
    assert_error(app.put(path, {"follow": {"title": "x"}}, headers={"If-Match": etag(before)}), 412)


def test_if_none_match_answers_304(app):
    lead = app.create_lead()
    path = f"/leads/{lead['id']}"
    tag = etag(app.get(path))
    for value in (tag, f'"nope", {tag}', f"W/{tag}", "*"):
        r = app.get(path, headers={"If-None-Match": value})
        assert r.status_code == 304, (value, r.status_code)
        assert r.content == b""
        assert r.headers["ETag"] == tag
    assert_status(app.get(path, headers={"If-None-Match": '"other"'}), 200)
    assert_status(app.get(path, headers={"If-None-Match": "garbage"}), 200)
    app.put(path, {"lead": {"name": "changed"}})
    assert_status(app.get(path, headers={"If-None-Match": tag}), 200)
    f = app.create_follow(lead["id"])
    fpath = f"{path}/follows/{f['id']}"
    ftag = etag(app.get(fpath))
    assert app.get(fpath, headers={"If-None-Match": ftag}).status_code == 304


def test_if_match_that_does_not_match_changes_nothing(app):
    lead = app.create_lead(name="Original")
    path = f"/leads/{lead['id']}"
    tag = etag(app.get(path))
    for value in ('"stale"', f"W/{tag}", "not-a-tag", f"{tag} junk", "", ","):
        r = app.put(path, {"lead": {"name": "Changed"}}, headers={"If-Match": value})
        errs = assert_error(r, 412, "precondition_failed")
        assert len(errs) == 1
        assert r.headers["ETag"] == tag, "a 412 says what the tag is now"
        assert_error(app.delete(path, headers={"If-Match": value}), 412)
    assert app.get_lead(lead["id"])["attributes"]["name"] == "Original"
    assert etag(app.get(path)) == tag
    r = app.put(path, {"lead": {"name": "Changed"}}, headers={"If-Match": f'"stale", {tag}'})
    assert_status(r, 200)
    new = etag(r)
    assert_error(app.put(path, {"lead": {"name": "Again"}}, headers={"If-Match": tag}), 412)
    assert_status(app.put(path, {"lead": {"name": "Star"}}, headers={"If-Match": "*"}), 200)
    assert new != etag(app.get(path))
    assert_status(app.delete(path, headers={"If-Match": etag(app.get(path))}), 204)


def test_an_if_match_too_long_to_read_is_no_match_and_says_so(app):
    """If-Match is read up to 1,024 bytes (the OpenAPI document's maxLength); one
    longer matches nothing, and its 412 says why rather than "has changed" (review
    rv102). One of exactly 1,024 bytes is read (it was refused as too long)."""
    lead = app.create_lead(name="Original")
    path = f"/leads/{lead['id']}"
    tag = etag(app.get(path))
    long = ", ".join([tag] + ['"x"'] * 300)
    assert len(long) > 1024
    for r in (app.put(path, {"lead": {"name": "Changed"}}, headers={"If-Match": long}),
              app.delete(path, headers={"If-Match": long})):
        errs = assert_error(r, 412, "precondition_failed")
        assert "longer than the 1,024 bytes" in errs[0]["detail"], errs
    assert app.get_lead(lead["id"])["attributes"]["name"] == "Original"
    fits = '"' + "x" * (1024 - 4 - len(tag)) + '", ' + tag
    assert len(fits) == 1024
    assert_status(app.put(path, {"lead": {"name": "Changed"}}, headers={"If-Match": fits}), 200)
    tag = etag(app.get(path))
    fits = '"' + "x" * (1024 - 4 - len(tag)) + '", ' + tag
    r = app.get(path, headers={"If-None-Match": fits})
    assert r.status_code == 304, r.status_code


def test_if_match_order_of_checks(app):
    lead = app.create_lead()
    path = f"/leads/{lead['id']}"
    tag = etag(app.get(path))
    missing = f"/leads/{uuid.uuid4()}"
    # the resource first, then If-Match, then the body
    assert_error(app.put(missing, {"lead": {"stage": "bogus"}}, headers={"If-Match": tag}), 404)
    assert_error(app.delete(missing, headers={"If-Match": "*"}), 404)
    assert_error(app.put(path, {"lead": {"stage": "bogus"}}, headers={"If-Match": '"stale"'}), 412)
    r = app.put(path, {"lead": {"stage": "bogus"}}, headers={"If-Match": tag})
    assert_error(r, 422)
    # a body that is not JSON, or not JSON at all, comes after If-Match too
    assert_error(app.put(path, raw="{nope", headers={"If-Match": '"stale"'}), 412)
    assert_error(app.put(path, raw="{nope", headers={"If-Match": tag}), 400)
    assert_error(app.put(path, raw="x", content_type="text/plain", headers={"If-Match": '"stale"'}), 412)
    assert_error(app.put(path, raw="x", content_type="text/plain", headers={"If-Match": tag}), 415)
    assert etag(app.get(path)) == tag


def test_if_match_on_follows(app):
    lead = app.create_lead()
    f = app.create_follow(lead["id"], title="T")
    path = f"/leads/{lead['id']}/follows/{f['id']}"
    tag = etag(app.get(path))
    assert_error(app.put(path, {"follow": {"title": "U"}}, headers={"If-Match": '"x"'}), 412)
    assert_error(app.delete(path, headers={"If-Match": '"x"'}), 412)
    assert app.get_follow(lead["id"], f["id"])["attributes"]["title"] == "T"
    assert_error(app.put(f"/leads/{lead['id']}/follows/{uuid.uuid4()}", {"follow": {"title": "U"}},
                         headers={"If-Match": tag}), 404)
    assert_status(app.put(path, {"follow": {"title": "U"}}, headers={"If-Match": tag}), 200)
    assert_status(app.delete(path, headers={"If-Match": etag(app.get(path))}), 204)


def test_recover_and_purge_ignore_if_match(app):
    lead = app.create_lead()
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert_status(app.put(f"/leads/{lead['id']}/recover", headers={"If-Match": '"x"'}), 200)
    assert_status(app.delete(f"/leads/{lead['id']}"), 204)
    assert_status(app.delete(f"/leads/trash/{lead['id']}", headers={"If-Match": '"x"'}), 204)


def race(clients, path, tag, rounds):
    """Each client PUTs path with If-Match tag at once; returns the statuses."""
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients))

    def one(client, i):
        barrier.wait()
        r = client.put(path, {"lead": {"name": f"winner {i}"}}, headers={"If-Match": tag})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=one, args=(c, i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(statuses)


def test_two_clients_with_the_same_if_match_exactly_one_wins(app):
    for _ in range(10):
        lead = app.create_lead()
        path = f"/leads/{lead['id']}"
        tag = etag(app.get(path))
        assert race([app, app], path, tag, 1) == [200, 412]


def test_two_processes_on_one_database_exactly_one_wins(make_server):
    # Without the response cache, which sees only its own process's writes
    # (PostgreSQL servers never use it).
    first = make_server(extra_args=["--cache-mb", "0"])
    other = make_server(db_url=first.db_url, extra_args=["--cache-mb", "0"])
    app = first.new_app()
    app_other = other.client(app.key, app.token)
    for _ in range(10):
        lead = app.create_lead()
        path = f"/leads/{lead['id']}"
        tag = etag(app.get(path))
        assert race([app, app_other], path, tag, 1) == [200, 412]
        name = app.get_lead(lead["id"])["attributes"]["name"]
        assert name in ("winner 0", "winner 1")


def test_answers_to_requests_with_credentials_are_never_cached(app, anon):
    """Every answer to a request that carries credentials holds one app's data:
    `Cache-Control: private, no-store`, the CSV export and errors included;
    an answer without credentials (liveness) says nothing of the kind."""
    lead = app.create_lead(name="Private")
    for r in (app.get(f"/leads/{lead['id']}"), app.get("/leads/"),
              app.get("/leads/", params={"format": "csv"}), app.get("/leads/summary"),
              app.get("/leads/00000000-0000-4000-8000-000000000000")):
        assert r.headers.get("Cache-Control") == "private, no-store", describe(r)
    # Only one of the two credential headers, in the reference's own spelling.
    r = anon.get("/leads/", headers={"AppId": app.key})
    assert r.status_code == 401 and r.headers.get("Cache-Control") == "private, no-store"
    r = anon.get("/healthz")
    assert r.status_code == 200 and "Cache-Control" not in r.headers
