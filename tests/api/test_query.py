"""The query string on every JSON API route (extensions.md, "Common
rules"): unknown names are a 422 unknown_parameter naming them, checked
after the route and the credentials; values are percent-decoded with '+'
a space; empty values and a single-valued parameter given twice are 422s;
list parameters take commas, repeats and the [] form; every problem of a
request is reported at once."""

import uuid

import pytest
import requests

from apiutil import assert_error, assert_status, body_json, raw_http


class Raw:
    """An answer to a request sent byte for byte (requests would re-encode
    its path), shaped enough like a requests.Response for assert_error."""

    def __init__(self, status, headers, body):
        self.status_code, self.content = status, body
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.text = body.decode("utf-8", "replace")
        self.request = type("R", (), {"method": "GET", "path_url": "(raw)", "url": "(raw)"})()

    def json(self):
        import json
        return json.loads(self.content)


def raw_get(server, app, target):
    head = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer {app.token}\r\nAppId: {app.key}\r\n\r\n").encode()
    return Raw(*raw_http(server.host, server.port, head))


def params_of(errs):
    return sorted((e["code"], e["source"]["parameter"]) for e in errs)


@pytest.fixture(scope="module")
def lead(mapp):
    lead = mapp.create_lead(name="Query target", stage="qualified")
    mapp.follow = mapp.create_follow(lead["id"], title="Call")
    return lead


def routes(lead, follow):
    lid, fid = lead["id"], follow["id"]
    return [("GET", "/leads/"), ("POST", "/leads/"), ("GET", f"/leads/{lid}"), ("PUT", f"/leads/{lid}"),
            ("DELETE", f"/leads/{lid}"), ("GET", f"/leads/{lid}/follows"), ("POST", f"/leads/{lid}/follows"),
            ("GET", f"/leads/{lid}/follows/{fid}"), ("PUT", f"/leads/{lid}/follows/{fid}"),
            ("DELETE", f"/leads/{lid}/follows/{fid}"), ("GET", "/follows/"), ("GET", "/leads/summary")]


def test_an_unknown_parameter_on_every_json_route_is_a_422_that_changes_nothing(mapp, lead):
    before = body_json(mapp.get("/leads/"))["meta"]["totalRecords"]
    for method, path in routes(lead, mapp.follow):
        body = {"lead": {"name": "x"}} if path.endswith("leads/") else {"follow": {"title": "x"}}
        r = mapp.request(method, path + "?stag=qualified", body if method in ("POST", "PUT") else None)
        errs = assert_error(r, 422, "unknown_parameter")
        assert params_of(errs) == [("unknown_parameter", "stag")], (method, path)
        assert errs[0]["title"] and "stag" in errs[0]["detail"]
        assert r.json()["meta"]["requestId"] == r.headers["X-Request-Id"], (method, path)
    assert body_json(mapp.get("/leads/"))["meta"]["totalRecords"] == before
    assert_status(mapp.get(f"/leads/{lead['id']}"), 200)


def test_the_route_and_the_credentials_come_first(mapp, app2, anon, lead):
    assert_error(anon.get("/nope?stag=x"), 404, "not_found")
    assert_error(mapp.request("PATCH", "/leads/?stag=x"), 405, "method_not_allowed")
    assert_error(mapp.request("POST", "/leads/summary?stag=x", {"lead": {}}), 405, "method_not_allowed")
    assert_error(mapp.request("POST", "/follows/?x=1", {}), 405, "method_not_allowed")
    assert_error(anon.get("/leads/?stag=x"), 401, "unauthorized")
    other = mapp.with_creds(token=app2.token)
    assert_error(other.get("/leads/?stag=x"), 403, "forbidden")
    # ... and the path's ids after: an unknown parameter on a missing lead.
    assert_error(mapp.get(f"/leads/{uuid.uuid4()}?stag=x"), 422, "unknown_parameter")
    # Routes without credentials take no part in it.
    for path in ("/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json"):
        assert_status(anon.get(path + "?stag=x&page=0"), 200)


def test_every_problem_at_once(mapp):
    r = mapp.get("/leads/?stag=x&stage=won&records=0&page=0&sort=nope&value_min=1.234&foo=1&count=all",
                 headers={"X-Request-Id": "every-problem"})
    errs = assert_error(r, 422, {"validation_error", "unknown_parameter"})
    assert r.json()["meta"]["requestId"] == "every-problem"
    assert params_of(errs) == [("unknown_parameter", "foo"), ("unknown_parameter", "stag"),
                               ("validation_error", "count"), ("validation_error", "page"),
                               ("validation_error", "records"), ("validation_error", "sort"),
                               ("validation_error", "stage"), ("validation_error", "value_min")]


def test_names_and_values_are_percent_decoded_and_plus_is_a_space(server, mapp, lead):
    a = raw_get(server, mapp, "/leads/?stage=qualified&search=query+target&records=100").json()["data"]
    b = raw_get(server, mapp, "/leads/?st%61ge=qualifi%65d&search=query%20TARGET&records=100").json()["data"]
    assert a == b and lead["id"] in [d["id"] for d in a]
    # %2C is a comma too: it separates values.
    c = raw_get(server, mapp, "/leads/?stage=new%2Cqualified&records=100").json()["data"]
    assert lead["id"] in [d["id"] for d in c]


@pytest.mark.parametrize("query, name", [
    ("stage=", "stage"), ("stage=new,", "stage"), ("stage=,new", "stage"), ("stage=new,,qualified", "stage"),
    ("search=", "search"), ("page=", "page"), ("page", "page"), ("records=", "records"),
    ("search=a&search=b", "search"), ("page=1&page=1", "page"), ("page[]=1", "page"), ("sort=name&sort=name", "sort"),
    ("search=%zz", "search"), ("search=%E2%82", "search"), ("search=a%00b", "search"), ("search=%C3%28", "search"),
])
def test_empty_repeated_and_undecodable_values_are_422s(server, mapp, query, name):
    errs = assert_error(raw_get(server, mapp, "/leads/?" + query), 422, "validation_error")
    assert params_of(errs) == [("validation_error", name)], query


def test_a_name_that_cannot_be_decoded_is_unknown(server, mapp):
    errs = assert_error(raw_get(server, mapp, "/leads/?%zz=1"), 422, "unknown_parameter")
    assert errs[0]["source"]["parameter"] == "%zz"
    errs = assert_error(raw_get(server, mapp, "/leads/?=qualified"), 422, "unknown_parameter")
    assert errs[0]["source"]["parameter"] == ""
    # Empty pairs are nothing at all.
    assert raw_get(server, mapp, "/leads/?&&page=1&").status_code == 200


def test_list_parameters_take_commas_repeats_and_brackets(server, app):
    # A lead of each stage named, and one of another: each form must take
    # both values (the module's app holds only a qualified lead, which a
    # filter that kept one value, or none, listed as well).
    want = {app.create_lead(name=f"Listed {s}", stage=s)["id"] for s in ("new", "qualified")}
    app.create_lead(name="Not listed", stage="contacted")
    forms = ["stage=new,qualified", "stage=new&stage=qualified", "stage[]=new&stage[]=qualified",
             "stage%5B%5D=new,qualified", "stage=new&stage[]=qualified"]
    for q in forms:
        got = {d["id"] for d in raw_get(server, app, "/leads/?records=100&" + q).json()["data"]}
        assert got == want, q


def test_too_many_values_are_a_422(mapp):
    q = "&".join(f"account_id={uuid.uuid4()}" for _ in range(51))
    errs = assert_error(mapp.get("/leads/?" + q), 422, "validation_error")
    assert errs[0]["source"]["parameter"] == "account_id"
    huge = "&".join(["stage=new"] * 200)
    assert_error(mapp.get("/leads/?" + huge), 422, "validation_error")


def test_http2_and_raw_queries_follow_the_same_rules(server, mapp):
    # The raw bytes as a client might send them (no client-side encoding).
    r = requests.get(server.base_url + "/leads/?stage=new,qualified&stag", headers=mapp.headers, timeout=10)
    errs = assert_error(r, 422, "unknown_parameter")
    assert errs[0]["source"]["parameter"] == "stag"
