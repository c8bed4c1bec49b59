"""Webhook subscriptions (extensions.md, "Webhooks"): the routes, their
validation, the secret shown once, other apps' webhooks, private targets.
Deliveries are tests/api/test_webhook_delivery.py's.

The suite's shared server runs without --webhook-allow-private, so every
private target here is refused; the webhooks it accepts point at public
addresses (documentation and example ranges) and are never delivered to:
nothing there answers, and these tests make no lead changes."""

import ipaddress
import json
import re
import socket
import uuid

import pytest

from apiutil import assert_error, assert_status, assert_validation, body_json, location_path
from webhookutil import create_webhook

PUBLIC = "https://93.184.216.34/hooks"  # an IP literal: accepted without resolving


def test_create_shows_the_secret_once_and_reads_never(app):
    r = app.post("/webhooks", {"webhook": {"url": PUBLIC, "events": ["lead.created", "lead.stage_changed"],
                                           "description": "  Billing sync  "}})
    assert_status(r, 201)
    assert r.headers.get("Cache-Control") == "no-store", "no cache may keep the secret"
    data = body_json(r)["data"]
    assert location_path(r) == f"/webhooks/{data['id']}"
    a = data["attributes"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{32,}", a["secret"]), a["secret"]
    assert a["url"] == PUBLIC and a["active"] is True and a["description"] == "Billing sync"
    assert a["events"] == ["lead.created", "lead.stage_changed"]
    assert a["created_at"] == a["updated_at"]
    got = body_json(app.get(f"/webhooks/{data['id']}"))["data"]
    assert "secret" not in got["attributes"]
    assert {k: v for k, v in a.items() if k != "secret"} == got["attributes"]
    listed = body_json(app.get("/webhooks/"))["data"]
    assert [w["id"] for w in listed] == [data["id"]] and "secret" not in listed[0]["attributes"]
    r = app.put(f"/webhooks/{data['id']}", {"webhook": {"active": False}})
    assert_status(r, 200)
    assert "secret" not in body_json(r)["data"]["attributes"]
    second = create_webhook(app, PUBLIC)
    assert second["attributes"]["secret"] != a["secret"], "every webhook has its own secret"


def test_update_changes_only_what_is_sent(app):
    w = create_webhook(app, PUBLIC, events=["*"], description="first")
    r = app.put(f"/webhooks/{w['id']}", {"webhook": {"events": ["follow.completed", "lead.deleted"]}})
    assert_status(r, 200)
    a = body_json(r)["data"]["attributes"]
    assert a["events"] == ["lead.deleted", "follow.completed"], "listed in the document's order"
    assert a["description"] == "first" and a["url"] == PUBLIC and a["active"] is True
    assert a["updated_at"] > w["attributes"]["updated_at"]
    r = app.put(f"/webhooks/{w['id']}", {"webhook": {"description": None, "url": "http://93.184.216.35:8080/x"}})
    assert_status(r, 200)
    a = body_json(r)["data"]["attributes"]
    assert a["description"] is None and a["url"] == "http://93.184.216.35:8080/x"


def test_list_is_newest_first_and_paged(app):
    ids = [create_webhook(app, PUBLIC)["id"] for _ in range(4)]
    body = body_json(app.get("/webhooks/", params={"records": 3}))
    assert [w["id"] for w in body["data"]] == ids[::-1][:3]
    cursor = body["meta"].pop("nextCursor")
    assert body["meta"] == {"totalPages": 2, "totalRecords": 4, "page": 1, "records": 3}
    assert isinstance(cursor, str) and cursor
    body = body_json(app.get("/webhooks", params={"records": 3, "page": 2}))
    assert [w["id"] for w in body["data"]] == [ids[0]]
    assert body["meta"]["nextCursor"] is None
    body = body_json(app.get("/webhooks", params={"page": 9}))
    assert body["data"] == [] and body["meta"]["totalRecords"] == 4 and body["meta"]["records"] == 15
    assert body["meta"]["nextCursor"] is None


def tampered(cursor):
    """cursor with one character in its middle changed."""
    i = len(cursor) // 2
    return cursor[:i] + ("B" if cursor[i] != "B" else "C") + cursor[i + 1:]


def test_list_walks_by_cursor_without_skipping_or_repeating(app):
    ids = [create_webhook(app, PUBLIC)["id"] for _ in range(5)]
    body = body_json(app.get("/webhooks/", params={"records": 2}))
    seen = [w["id"] for w in body["data"]]
    create_webhook(app, PUBLIC)  # newer than the walk's start: never on a later page
    while body["meta"]["nextCursor"] is not None:
        body = body_json(app.get("/webhooks/", params={"records": 2, "cursor": body["meta"]["nextCursor"]}))
        assert body["meta"]["page"] is None
        seen += [w["id"] for w in body["data"]]
    assert seen == ids[::-1]
    first = body_json(app.get("/webhooks/", params={"records": 2}))["meta"]["nextCursor"]
    for params, name in (({"cursor": first, "page": 2}, "cursor"), ({"cursor": tampered(first)}, "cursor"),
                         ({"cursor": "nope"}, "cursor")):
        errs = assert_error(app.get("/webhooks/", params=params), 422)
        assert errs[0]["source"] == {"parameter": name}
    # A cursor of the webhooks is not one of a webhook's deliveries.
    errs = assert_error(app.get(f"/webhooks/{ids[0]}/deliveries", params={"cursor": first}), 422)
    assert errs[0]["source"] == {"parameter": "cursor"}


def test_delete_removes_it_and_its_log(app):
    w = create_webhook(app, PUBLIC)
    assert_status(app.delete(f"/webhooks/{w['id']}"), 204)
    for r in (app.get(f"/webhooks/{w['id']}"), app.delete(f"/webhooks/{w['id']}"),
              app.get(f"/webhooks/{w['id']}/deliveries"), app.put(f"/webhooks/{w['id']}", {"webhook": {}})):
        errs = assert_error(r, 404)
        assert errs[0]["title"] == "Webhook Not Found"
    assert body_json(app.get("/webhooks/"))["data"] == []


def test_a_new_webhook_has_an_empty_log(app):
    w = create_webhook(app, PUBLIC)
    body = body_json(app.get(f"/webhooks/{w['id']}/deliveries"))
    assert body["data"] == [] and body["meta"]["totalRecords"] == 0 and body["meta"]["records"] == 100


def test_another_apps_webhook_is_not_found(app, app2):
    w = create_webhook(app, PUBLIC)
    for r in (app2.get(f"/webhooks/{w['id']}"), app2.put(f"/webhooks/{w['id']}", {"webhook": {"active": False}}),
              app2.delete(f"/webhooks/{w['id']}"), app2.get(f"/webhooks/{w['id']}/deliveries")):
        assert_error(r, 404)
    assert body_json(app2.get("/webhooks"))["data"] == []
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["active"] is True


def test_a_missing_webhook_is_404_before_its_bodys_problems(app):
    """extensions.md's order of checks: the resource (404) before the body (400/415/422), on a
    webhook deleted, one never made and another app's; the same bodies on a webhook that is there
    get their own answers, and change nothing."""
    gone = create_webhook(app, PUBLIC)
    assert_status(app.delete(f"/webhooks/{gone['id']}"), 204)
    kept = create_webhook(app, PUBLIC, description="kept")
    bad = [dict(body={"webhook": {"url": "ftp://x", "events": ["nope"]}}),
           dict(raw=b'{"webhook": '), dict(raw=b"url=x", content_type="text/plain")]
    for wid in (gone["id"], str(uuid.uuid4())):
        for kw in bad:
            errs = assert_error(app.put(f"/webhooks/{wid}", **kw), 404)
            assert errs[0]["title"] == "Webhook Not Found", (kw, errs)
    for kw, status in zip(bad, (422, 400, 415)):
        assert_error(app.put(f"/webhooks/{kept['id']}", **kw), status)
    # An Idempotency-Key (a POST's header) on a PUT changes none of it.
    key = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):
        assert_error(app.put(f"/webhooks/{gone['id']}", headers=key, **bad[0]), 404)
        assert_error(app.put(f"/webhooks/{kept['id']}", headers=key, **bad[0]), 422)
    assert body_json(app.get(f"/webhooks/{kept['id']}"))["data"]["attributes"]["description"] == "kept"


def test_another_apps_webhook_is_404_before_its_bodys_problems(app, app2):
    w = create_webhook(app, PUBLIC)
    errs = assert_error(app2.put(f"/webhooks/{w['id']}", {"webhook": {"url": "ftp://x"}}), 404)
    assert errs[0]["title"] == "Webhook Not Found"
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["url"] == PUBLIC


@pytest.mark.parametrize("path", ["/webhooks/not-a-uuid", "/webhooks/9b2f3c1e-4d5a-4e6f-8a7b-0c1d2e3f4a5b"])
def test_unknown_ids_are_404(app, path):
    assert_error(app.get(path), 404)
    assert_error(app.get(path + "/deliveries"), 404)


def test_credentials_are_needed(anon):
    assert_error(anon.get("/webhooks/"), 401)
    assert_error(anon.post("/webhooks", {"webhook": {"url": PUBLIC, "events": ["*"]}}), 401)


def test_methods_not_served_are_405(app):
    r = app.request("PATCH", "/webhooks/")
    assert_error(r, 405)
    assert r.headers["Allow"] == "GET, HEAD, POST"
    assert app.request("POST", f"/webhooks/{uuid.uuid4()}").headers["Allow"] == "GET, HEAD, PUT, DELETE"
    assert app.request("DELETE", f"/webhooks/{uuid.uuid4()}/deliveries").headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("body, pointers", [
    ({"webhook": {}}, ["/webhook/url", "/webhook/events"]),
    ({"webhook": {"url": PUBLIC, "events": []}}, ["/webhook/events"]),
    ({"webhook": {"url": PUBLIC, "events": "lead.created"}}, ["/webhook/events"]),
    ({"webhook": {"url": PUBLIC, "events": ["lead.created", "lead.made", 7]}}, ["/webhook/events/1",
                                                                               "/webhook/events/2"]),
    ({"webhook": {"url": PUBLIC, "events": ["lead.created", "lead.created"]}}, ["/webhook/events/1"]),
    ({"webhook": {"url": 5, "events": ["*"], "active": "yes"}}, ["/webhook/url", "/webhook/active"]),
    ({"webhook": {"url": PUBLIC, "events": ["*"], "description": "x" * 256}}, ["/webhook/description"]),
    ({"webhook": {"url": "https://93.184.216.34/" + "a" * 2030, "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "ftp://93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "https://user:pw@93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "https://exa mple.com/", "events": ["*"]}}, ["/webhook/url"]),
    # libcurl's parser takes these as URLs; they are not written as one
    ({"webhook": {"url": "http:/93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "http:///93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
    ({"webhook": {"url": "https:93.184.216.34/x", "events": ["*"]}}, ["/webhook/url"]),
])
def test_bad_bodies_name_every_problem(app, body, pointers):
    assert_validation(app.post("/webhooks", body), pointers)
    assert body_json(app.get("/webhooks"))["data"] == []


def test_unknown_and_secret_attributes_are_refused(app):
    r = app.post("/webhooks", {"webhook": {"url": PUBLIC, "events": ["*"], "secret": "whsec_mine"}})
    assert_validation(r, ["/webhook/secret"], {"/webhook/secret": "unknown_attribute"})
    w = create_webhook(app, PUBLIC)
    r = app.put(f"/webhooks/{w['id']}", {"webhook": {"secret": "x"}, "extra": 1})
    assert_validation(r, ["/webhook/secret", "/extra"],
                      {"/webhook/secret": "unknown_attribute", "/extra": "unknown_attribute"})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x", "http://127.1/", "http://2130706433/", "http://0.0.0.0/", "http://10.1.2.3/",
    "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://255.255.255.255/", "http://[::1]:8080/",
    "http://[::]/", "http://[fe80::1]/", "http://[fd00::1]/", "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::808:808]/", "http://[::ffff:0:808:808]/", "http://[2002:7f00:1::1]/",
    "http://[2002:808:808::1]/", "http://[2001:0:4136:e378::1]/", "http://[100::1]/",
    "http://192.0.2.10/", "http://198.51.100.7/", "http://203.0.113.9/",
    # extensions.md: "localhost included"; RFC 6761 names, known without a resolver
    "http://localhost/", "http://LocalHost:8080/x", "http://localhost./", "http://api.localhost/",
    # trailing dots, which resolvers ignore (helper-79)
    "http://127.0.0.1./", "http://127.1./", "http://169.254.169.254./",
    "http://0.0.0.0./", "http://127.0.0.1.:8080/", "http://0x7f.1./",
    "http://2130706433./", "http://0177.0.0.1./",
])
def test_private_targets_are_refused(app, url):
    r = app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}})
    errs = assert_validation(r, ["/webhook/url"])
    assert errs[0]["detail"] == "the target's address is not allowed", errs[0]
    w = create_webhook(app, PUBLIC)
    assert_validation(app.put(f"/webhooks/{w['id']}", {"webhook": {"url": url}}), ["/webhook/url"])
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["url"] == PUBLIC


@pytest.mark.parametrize("url", [
    "https://.../", "https://-/", "https://a..b/", "https://_/", "https://-a-.com/", "https://a-.example/",
    "https://a_b.example/", "https://x.-y.example/", "https://./", "https://" + "a" * 64 + ".example/",
    # Two trailing dots are an empty label, a literal's or localhost's too (helper-79's cases).
    "http://10.0.0.1../", "http://LoCaLhOsT..:1024/", "https://hooks.example../",
])
def test_a_host_that_is_no_name_a_resolver_reads_is_refused(app, url):
    """Labels of 1 to 63 letters, digits and hyphens, none first or last, one
    trailing dot at most: the sender could never reach another host."""
    errs = assert_validation(app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}}), ["/webhook/url"])
    assert "host" in errs[0]["detail"], errs[0]
    w = create_webhook(app, PUBLIC)
    assert_validation(app.put(f"/webhooks/{w['id']}", {"webhook": {"url": url}}), ["/webhook/url"])
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["url"] == PUBLIC


@pytest.mark.parametrize("url", [
    "https://" + "a" * 63 + ".crmd-test.invalid/", "https://1-2.crmd-test.invalid./x", "https://[2606:4700::1111]/",
    "https://93.184.216.34./", "https://XN--BCHER-KVA.crmd-test.invalid/",
])
def test_a_host_of_good_labels_or_an_address_is_taken(app, url):
    assert create_webhook(app, url)["attributes"]["url"] == url


def test_a_host_over_253_bytes_is_refused_not_cut(app):
    # Cut to fit, a long name under localhost lost its ".localhost" before
    # the check, and was taken (helper-79).
    for host in ("a" * 250 + ".localhost", "b" * 254 + ".example.com"):
        errs = assert_validation(app.post("/webhooks", {"webhook": {"url": f"http://{host}/", "events": ["*"]}}),
                                 ["/webhook/url"])
        assert errs[0]["detail"] == "URL's host must be at most 253 bytes", errs[0]
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 56]) + ".test"  # 253 bytes
    assert len(name) == 253
    assert_status(app.post("/webhooks", {"webhook": {"url": f"http://{name}/", "events": ["*"]}}), 201)


def test_a_name_is_refused_as_localhost_only_when_it_is_under_localhost(app):
    for url in ("http://localhost.example.com/", "http://mylocalhost/", "http://localhost-x.test/"):
        assert_status(app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}}), 201)


@pytest.mark.parametrize("url", ["http://8.8.8.8:22/", "https://8.8.8.8:1023/", "http://hooks.crmd-test.invalid:25/"])
def test_ports_under_1024_other_than_80_and_443_are_refused(app, url):
    r = app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}})
    errs = assert_validation(r, ["/webhook/url"])
    assert "port" in errs[0]["detail"], errs[0]
    for ok in ("http://8.8.8.8:443/", "https://8.8.8.8:80/", "https://8.8.8.8:1024/", "https://8.8.8.8/"):
        assert_status(app.post("/webhooks", {"webhook": {"url": ok, "events": ["*"]}}), 201)


def test_a_webhook_body_is_at_most_16_kib(app):
    body = json.dumps({"webhook": {"url": PUBLIC, "events": ["*"]}})
    fits = body + " " * (16 * 1024 - len(body))
    assert_status(app.post("/webhooks", raw=fits), 201)
    w = create_webhook(app, PUBLIC)
    for r in (app.post("/webhooks", raw=fits + " "), app.put(f"/webhooks/{w['id']}", raw=fits + " ")):
        assert_error(r, 413, "payload_too_large")
        assert body_json(r)["errors"][0]["detail"] == "The request body is larger than 16 KiB."
    assert_status(app.put(f"/webhooks/{w['id']}", raw=fits), 200)
    # Over 1 MiB the body is judged from its head, never read: the 413 names the same limit.
    r = app.post("/webhooks", raw=fits + " " * (1024 * 1024))
    assert_error(r, 413, "payload_too_large")
    assert body_json(r)["errors"][0]["detail"] == "The request body is larger than 16 KiB."


def test_a_name_that_does_not_resolve_is_accepted(app):
    w = create_webhook(app, "https://hooks.crmd-test.invalid/x")
    assert w["attributes"]["url"] == "https://hooks.crmd-test.invalid/x"
    # RFC 6761: .invalid never resolves; nor does it when a webhook is changed.
    r = app.put(f"/webhooks/{w['id']}", {"webhook": {"url": "https://nonexistent.invalid/y"}})
    assert_status(r, 200)
    assert body_json(r)["data"]["attributes"]["url"] == "https://nonexistent.invalid/y"


@pytest.mark.parametrize("url", ["http://hooks.example:8080/", "http://HOOKS.EXAMPLE/x",
                                 "https://nonexistent.invalid./"])
def test_a_name_that_does_not_resolve_now_is_taken(app, url):
    """extensions.md: "a name that does not resolve is accepted and retried";
    the sender checks every address on every connection (where a name that
    resolves to loopback later is refused: test_webhook_delivery.py)."""
    assert create_webhook(app, url)["attributes"]["url"] == url


def loopback_names():
    """Names this machine's /etc/hosts resolves to loopback only, as the
    server's resolver sees them (localhost and the names under it are refused
    by name already: test_private_targets_are_refused)."""
    names = []
    try:
        lines = open("/etc/hosts").read().splitlines()
    except OSError:
        return names
    for line in lines:
        fields = line.split("#")[0].split()
        if len(fields) < 2:
            continue
        try:
            if not ipaddress.ip_address(fields[0].split("%")[0]).is_loopback:
                continue
        except ValueError:
            continue
        for name in fields[1:]:
            bare = name.lower().rstrip(".")
            if bare == "localhost" or bare.endswith(".localhost") or name in names:
                continue
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
                                name):
                continue
            try:
                got = {a[4][0] for a in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)}
            except OSError:
                continue
            if got and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in got):
                names.append(name)
    return names


LOOPBACK_NAMES = loopback_names()
needs_loopback_name = pytest.mark.skipif(not LOOPBACK_NAMES, reason="/etc/hosts names no loopback host here")


@needs_loopback_name
def test_a_name_resolving_to_loopback_is_refused_when_created_or_changed(app):
    """extensions.md: a host name that resolves to a refused address then is a
    422 on /webhook/url, as an IP literal is (a review found /etc/hosts names
    such as the machine's own taken with 201)."""
    w = create_webhook(app, PUBLIC)
    for name in LOOPBACK_NAMES:
        for url in (f"http://{name}/", f"https://{name.upper()}:8443/x", f"http://{name}./"):
            errs = assert_validation(app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}}),
                                     ["/webhook/url"])
            assert errs[0]["detail"] == "the target's address is not allowed", (url, errs[0])
            errs = assert_validation(app.put(f"/webhooks/{w['id']}", {"webhook": {"url": url}}), ["/webhook/url"])
            assert errs[0]["detail"] == "the target's address is not allowed", (url, errs[0])
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["url"] == PUBLIC
    assert body_json(app.get("/webhooks"))["meta"]["totalRecords"] == 1


@needs_loopback_name
def test_a_missing_webhook_is_a_404_before_its_target_is_refused(app):
    r = app.put(f"/webhooks/{uuid.uuid4()}", {"webhook": {"url": f"http://{LOOPBACK_NAMES[0]}/"}})
    assert_error(r, 404, "not_found")


@needs_loopback_name
def test_a_name_resolving_to_loopback_is_taken_with_private_targets_allowed(make_server):
    app = make_server(extra_args=["--webhook-allow-private"]).new_app()
    for name in LOOPBACK_NAMES:
        w = create_webhook(app, f"http://{name}:8080/x")
        assert w["attributes"]["url"] == f"http://{name}:8080/x"
        r = app.put(f"/webhooks/{w['id']}", {"webhook": {"url": f"https://{name}/y"}})
        assert_status(r, 200)


@needs_loopback_name
def test_many_names_resolved_at_once_are_each_answered(server, app):
    """Lookups run off the event loop, many at a time: each request gets its
    own answer, and the server goes on answering others meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    name = LOOPBACK_NAMES[0]
    urls = [f"http://{name}:{1024 + i}/" if i % 2 == 0 else f"https://n{i}.crmd-test.invalid/" for i in range(40)]

    def create(url):
        return app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(create, urls))
    assert codes == [422 if i % 2 == 0 else 201 for i in range(40)], codes
    assert body_json(app.get("/webhooks"))["meta"]["totalRecords"] == 20


def test_a_private_target_and_other_problems_are_reported_together(app):
    r = app.post("/webhooks", {"webhook": {"url": "http://10.0.0.1/", "events": ["nope"]}})
    assert_validation(r, ["/webhook/url", "/webhook/events/0"])


def test_at_most_100_webhooks_per_app(app):
    for _ in range(100):
        create_webhook(app, PUBLIC)
    r = app.post("/webhooks", {"webhook": {"url": PUBLIC, "events": ["*"]}})
    assert_validation(r, ["/webhook"])
    assert body_json(app.get("/webhooks"))["meta"]["totalRecords"] == 100
    first = body_json(app.get("/webhooks", params={"page": 7}))["data"][-1]
    assert_status(app.delete(f"/webhooks/{first['id']}"), 204)
    create_webhook(app, PUBLIC)


@pytest.mark.parametrize("url", ["https://b\u00fccher.crmd-test.invalid/x",
                                 "https://b%C3%BCcher.crmd-test.invalid/x"])
def test_a_host_in_unicode_is_refused_for_its_xn_form(app, url):
    """The sender could never reach it (every attempt failed with "bad/illegal
    format"), so it is a 422 when created or changed, nothing stored."""
    assert_validation(app.post("/webhooks", {"webhook": {"url": url, "events": ["*"]}}), ["/webhook/url"])
    w = create_webhook(app, "https://xn--bcher-kva.crmd-test.invalid/x")
    assert_validation(app.put(f"/webhooks/{w['id']}", {"webhook": {"url": url}}), ["/webhook/url"])
    assert body_json(app.get(f"/webhooks/{w['id']}"))["data"]["attributes"]["url"] == \
        "https://xn--bcher-kva.crmd-test.invalid/x"
    assert body_json(app.get("/webhooks"))["meta"]["totalRecords"] == 1
