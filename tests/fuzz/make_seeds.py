#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (run from anywhere).

    tests/fuzz/make_seeds.py build/fuzz/fuzz_request

The binary is any fuzz target: run with FUZZ_PRINT_TOKENS=1 it prints the
tokens of the two fuzz apps, signed with the fixed test key (testkey.h), so
the request and JWT seeds hold tokens that verify. Seeds are named by what
they hold; files written here are overwritten, others are left alone (so
minimised crash reproducers added by hand stay)."""

import base64
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

LEAD = "0190a000-0000-7000-8000-000000000001"
FOLLOW = "0190a000-0000-7000-8000-000000000002"
MISSING = "0190a000-0000-7000-8000-0000000000ff"


def tokens(binary):
    env = dict(os.environ, FUZZ_PRINT_TOKENS="1")
    out = subprocess.run([binary], env=env, capture_output=True, text=True, check=True).stdout
    pairs = [line.split() for line in out.splitlines() if line.strip()]
    return {k: v for k, v in pairs}


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def request_seeds(app1, tok1, app2, tok2):
    def req(method, path, body=None, headers=None, auth=True, key=app1, tok=tok1, version="1.1"):
        h = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
        if auth:
            h += [f"Authorization: Bearer {tok}", f"AppId: {key}"]
        h += headers or []
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            body = body.encode() if isinstance(body, str) else body
            if not any(x.lower().startswith("content-type:") for x in headers or []):
                h.append("Content-Type: application/json")
            if not any(x.lower().startswith(("content-length:", "transfer-encoding:"))
                       for x in headers or []):
                h.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(h) + "\r\n\r\n").encode() + (body or b"")

    spec_lead = {"lead": {"name": "New Enterprise Deal", "source": "referral",
                          "account_id": "0190a000-0000-7000-8000-00000000a001",
                          "contact_id": "0190a000-0000-7000-8000-00000000c001",
                          "value": 75000, "stage": "new", "probability": 20}}
    spec_follow = {"follow": {"title": "Schedule demo call",
                              "description": "Set up product demo with technical team",
                              "due_date": "2026-03-05T14:00:00Z"}}
    s = {
        "healthz": req("GET", "/healthz", auth=False),
        "head_healthz": req("HEAD", "/healthz", auth=False),
        "readyz": req("GET", "/readyz?page=0", auth=False),
        "list": req("GET", "/leads/?page=1&records=20"),
        "list_bad_paging": req("GET", "/leads?page=-1&records=1000&page=99999999999999999999"),
        "list_far_page": req("GET", "/leads/?page=999999999999999999&records=100"),
        "head_list": req("HEAD", "/leads/"),
        "create": req("POST", "/leads/", spec_lead),
        "create_minimal": req("POST", "/leads", {"lead": {"name": "x"}}),
        "create_strings": req("POST", "/leads/", {"lead": {"name": "  Ünïcödé \u2028 ",
                                                           "value": "12.30", "stage": "proposal",
                                                           "status": "converted",
                                                           "probability": 100}}),
        "create_invalid": req("POST", "/leads/", {"lead": {"name": "", "value": -1, "stage": "won",
                                                           "probability": 1.5, "account_id": "x",
                                                           "bogus": 1, "unique_id": "y"}}),
        "create_nul": req("POST", "/leads/", '{"lead":{"name":"a\\u0000b","source":"\\u001f"}}'),
        "create_bad_utf8": req("POST", "/leads/", b'{"lead":{"name":"\xff\xfe"}}'),
        "create_dup_keys": req("POST", "/leads/", '{"lead":{"name":"a","name":"b"}}'),
        "create_400_digits": req("POST", "/leads/", '{"lead":{"name":"n","value":1' + "0" * 400 + "}}"),
        "create_exp_value": req("POST", "/leads/", '{"lead":{"name":"n","value":1.5e2}}'),
        "create_deep": req("POST", "/leads/", "[" * 3000 + "]" * 3000),
        "create_not_object": req("POST", "/leads/", '"lead"'),
        "create_empty_body": req("POST", "/leads/", ""),
        "create_sql": req("POST", "/leads/", {"lead": {"name": "'; DROP TABLE leads; --",
                                                       "source": "\" OR 1=1 --"}}),
        "create_vnd": req("POST", "/leads/", {"lead": {"name": "v"}},
                          headers=["Content-Type: application/vnd.api+json; charset=\"UTF-8\""]),
        "create_wrong_type": req("POST", "/leads/", {"lead": {"name": "v"}},
                                 headers=["Content-Type: text/plain"]),
        "create_latin1": req("POST", "/leads/", {"lead": {"name": "v"}},
                             headers=["Content-Type: application/json; charset=latin1"]),
        "create_chunked": req("POST", "/leads/", b"0a\r\n{\"lead\":{\"\r\n0c\r\nname\":\"ch\"}}\r\n0\r\n\r\n",
                              headers=["Transfer-Encoding: chunked"]),
        "create_expect": req("POST", "/leads/", {"lead": {"name": "e"}}, headers=["Expect: 100-continue"]),
        "create_413": req("POST", "/leads/", "{}", headers=["Content-Length: 2000000"]),
        "get": req("GET", f"/leads/{LEAD}"),
        "get_upper": req("GET", f"/leads/{LEAD.upper()}/"),
        "get_missing": req("GET", f"/leads/{MISSING}"),
        "get_not_uuid": req("GET", "/leads/lead-uuid-123"),
        "get_dotdot": req("GET", "/leads/%2e%2e/"),
        "get_encoded_slash": req("GET", f"/leads%2F{LEAD}"),
        "get_other_app": req("GET", f"/leads/{LEAD}", key=app2, tok=tok2),
        "get_cross_token": req("GET", f"/leads/{LEAD}", key=app2, tok=tok1),
        "get_x_api_key": req("GET", f"/leads/{LEAD}", auth=False,
                             headers=[f"Authorization: bearer   {tok1}", f"X-Api-Key: {app1}"]),
        "get_no_auth": req("GET", "/leads/", auth=False),
        "get_bad_token": req("GET", "/leads/", auth=False,
                             headers=["Authorization: Bearer a.b.c", f"AppId: {app1}"]),
        "get_unknown_app": req("GET", "/leads/", key="pk_live_nobody"),
        "update": req("PUT", f"/leads/{LEAD}/", {"lead": {"stage": "proposal", "probability": 60,
                                                          "value": 65000}}),
        "update_clear": req("PUT", f"/leads/{LEAD}", {"lead": {"source": None, "value": None,
                                                               "account_id": None, "probability": None}}),
        "update_null_name": req("PUT", f"/leads/{LEAD}", {"lead": {"name": None}}),
        "delete": req("DELETE", f"/leads/{LEAD}/"),
        "delete_missing": req("DELETE", f"/leads/{MISSING}"),
        "options": req("OPTIONS", "/leads/"),
        "patch": req("PATCH", f"/leads/{LEAD}", {"lead": {}}),
        "unknown_route": req("GET", "/leads/a/b/c/d/e"),
        "follows_list": req("GET", f"/leads/{LEAD}/follows?records=2&page=1"),
        # Finding: filters, sort, cursors, the summary, follows across leads, the document.
        "find": req("GET", "/leads/?stage=new,qualified&status[]=active&source=web&value_min=1.5"
                           "&probability_max=90&search=%C3%84rger+corp&sort=-value,name&count=none"),
        "find_bad": req("GET", "/leads/?stag=x&stage=&stage=won,&page[]=1&sort=name,name&value_min=1e99"
                               "&created_from=2026-02-30T00:00:00Z&search=%zz&cursor=AAAA&page=2"),
        "find_ids": req("GET", f"/leads/?account_id={LEAD},null&contact_id=null&has_overdue=true"
                               "&has_open_follows=false&updated_from=2026-01-01T00:00:00%2B01:00"),
        "find_cursor": req("GET", "/leads/?sort=-stage&records=1&cursor=AQEAAAGiKT5uCgNrDJrvAABwAIAAAAAAAThyOT9p"),
        "summary": req("GET", "/leads/summary?stage=qualified&source=web,mail"),
        "summary_filtered": req("GET", "/leads/summary?value_min=10&search=ab"),
        "follows_all": req("GET", f"/follows/?status=overdue,pending&due_to=2030-01-01T00:00:00Z"
                                  f"&lead_id={LEAD}&sort=-due_date&records=3"),
        "follows_find": req("GET", f"/leads/{LEAD}/follows?status=completed&sort=updated_at,-created_at"),
        "openapi": req("GET", "/openapi.json", auth=False, headers=["If-None-Match: *"]),
        "board": req("GET", "/?view=myday&stage=new", auth=False, headers=["Accept-Encoding: gzip;q=0.5"]),
        "board_file": req("GET", "/board/app.000000000000.js", auth=False, headers=["If-None-Match: *"]),
        "board_head": req("HEAD", "/", auth=False, headers=["If-None-Match: W/\"x\", *"]),
        # App 2 naming app 1's lead in the board page's query: a 200 that reaches nothing.
        "board_query_names_a_lead": req("GET", f"/?page=leads/{LEAD}", key=app2, tok=tok2),
        "follows_missing_lead": req("GET", f"/leads/{MISSING}/follows"),
        "follow_get": req("GET", f"/leads/{LEAD}/follows/{FOLLOW}"),
        "follow_create": req("POST", f"/leads/{LEAD}/follows", spec_follow),
        "follow_create_bad": req("POST", f"/leads/{LEAD}/follows/",
                                 {"follow": {"title": "t", "due_date": "2026-02-30T25:00:00+24:00",
                                             "status": "overdue", "description": "a\r\n\tb"}}),
        "follow_update": req("PUT", f"/leads/{LEAD}/follows/{FOLLOW}",
                             {"follow": {"status": "completed",
                                         "description": "Proposal sent and received"}}),
        "follow_update_overdue": req("PUT", f"/leads/{LEAD}/follows/{FOLLOW}",
                                     {"follow": {"status": "overdue",
                                                 "due_date": "2000-01-01T00:00:00.123456-05:30"}}),
        "follow_delete": req("DELETE", f"/leads/{LEAD}/follows/{FOLLOW}"),
        "http10": req("GET", "/leads/", version="1.0"),
        "garbage": b"\x00\xff GET / HTTP/9.9\r\n\r\n",
        "bad_header": b"GET /leads/ HTTP/1.1\r\nHost: a\r\n folded: x\r\nX\r\n\r\n",
        "long_path": req("GET", "/leads/" + "a" * 3000),
    }
    s["pipeline"] = (req("POST", "/leads/", {"lead": {"name": "p"}}) + req("GET", "/leads/?records=1")
                     + req("HEAD", f"/leads/{LEAD}") + req("PUT", f"/leads/{LEAD}", {"lead": {"name": "q"}})
                     + req("GET", "/healthz", auth=False, headers=["Connection: close"]))
    for name, data in s.items():
        write("fuzz_request", name, data)


def body_seeds():
    bodies = {
        "lead_spec": {"lead": {"name": "New Enterprise Deal", "source": "referral",
                               "account_id": "0190a000-0000-7000-8000-00000000a001",
                               "contact_id": "0190A000-0000-7000-8000-00000000C001",
                               "value": 75000, "stage": "new", "probability": 20}},
        "lead_update": {"lead": {"stage": "proposal", "probability": 60, "value": 65000}},
        "lead_nulls": {"lead": {"name": None, "source": None, "account_id": None, "contact_id": None,
                                "value": None, "stage": None, "probability": None, "status": None}},
        "lead_strings": {"lead": {"name": "\u00a0 x \u3000", "value": "1.50", "status": "lost",
                                  "created_at": "x", "updated_at": 1, "unique_id": None}},
        "lead_wrong_types": {"lead": {"name": 1, "source": [], "value": {}, "stage": 2,
                                      "probability": "5", "status": True}},
        "lead_unknown": {"lead": {"nombre": "x", "a/b~c": 1, "": 2}},
        "follow_spec": {"follow": {"title": "Schedule demo call",
                                   "description": "Set up product demo with technical team",
                                   "due_date": "2026-03-05T14:00:00Z"}},
        "follow_update": {"follow": {"status": "completed", "description": "Proposal sent\nand received"}},
        "follow_overdue": {"follow": {"title": "t", "status": "overdue",
                                      "due_date": "2024-02-29t23:59:59.999999z"}},
        "follow_bad": {"follow": {"title": "", "due_date": "2026-13-01T00:00:00Z", "status": "done"}},
        "both": {"lead": {"name": "n"}, "follow": {"title": "t"}},
        "empty": {},
        "array": [1, 2],
    }
    for name, obj in bodies.items():
        write("fuzz_body", name, json.dumps(obj, ensure_ascii=False))
    raw = {
        "value_exact": '{"lead":{"name":"n","value":0.10000000000000000001}}',
        "value_exp": '{"lead":{"name":"n","value":1.5E+2}}',
        "value_huge": '{"lead":{"name":"n","value":1e999999999999}}',
        "value_neg_zero": '{"lead":{"value":-0.000e5}}',
        "value_precision": '{"lead":{"value":12.345}}',
        "value_400_digits": '{"lead":{"value":' + "9" * 400 + "}}",
        "value_escaped_key": '{"lead":{"valu\\u0065":1.25,"name":"n"}}',
        "value_nested_decoy": '{"x":{"lead":{"value":5}},"lead":{"a":[{"value":1}],"value":7.7}}',
        "nul_key": '{"lead":{"na\\u0000me":"x","name":"a\\u0000"}}',
        "control": '{"follow":{"title":"\\u0007","description":"\\u0085 \\u009f"}}',
        "surrogates": '{"lead":{"name":"\\ud83d\\ude00 \\ud800"}}',
        "deep": '{"lead":' + "[" * 2000 + "]" * 2000 + "}",
        "dup": '{"lead":{"name":"a","name":"b"}}',
        "long_key": '{"lead":{"' + "\u00e9" * 200 + '":1}}',
    }
    for name, text in raw.items():
        write("fuzz_body", name, text)
    write("fuzz_body", "bad_utf8", b'{"lead":{"name":"\xc0\xaf"}}')


def jwt_seeds(tok1, tok2):
    write("fuzz_jwt", "valid_app1", tok1)
    write("fuzz_jwt", "valid_app2", tok2)
    h, p, sig = tok1.split(".")
    write("fuzz_jwt", "alg_none", f"{b64({'alg': 'none', 'typ': 'JWT'})}.{p}.")
    write("fuzz_jwt", "alg_hs256", f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{p}.{sig[:43]}")
    write("fuzz_jwt", "changed_payload", f"{h}.{b64({'app': 'pk_live_other', 'exp': 4102444800})}.{sig}")
    write("fuzz_jwt", "padded", f"{h}=.{p}.{sig}")
    write("fuzz_jwt", "two_parts", f"{h}.{p}")
    write("fuzz_jwt", "four_parts", f"{h}.{p}.{sig}.{sig}")
    # Signed mode: the harness signs "header JSON\npayload JSON" itself.
    signed = {
        "signed_ok": ({"alg": "RS256", "typ": "JWT", "kid": "k"},
                      {"iss": "crmd", "sub": "s", "app": "pk_live_x", "iat": 1700000000,
                       "exp": 4102444800, "jti": "j"}),
        "signed_expired": ({"alg": "RS256"}, {"app": "a", "exp": 1000}),
        "signed_nbf": ({"alg": "RS256"}, {"app": "a", "exp": 4102444800, "nbf": 4102444000}),
        "signed_iat_future": ({"alg": "RS256"}, {"app": "a", "exp": 4102444800, "iat": 4102444000}),
        "signed_real_exp": ({"alg": "RS256"}, {"app": "a", "exp": 4.1e9}),
        "signed_no_exp": ({"alg": "RS256"}, {"app": "a"}),
        "signed_no_app": ({"alg": "RS256"}, {"exp": 4102444800, "app": ""}),
        "signed_long_app": ({"alg": "RS256"}, {"exp": 4102444800, "app": "x" * 200}),
        "signed_crit": ({"alg": "RS256", "crit": ["b64"]}, {"exp": 4102444800, "app": "a"}),
        "signed_typ": ({"alg": "RS256", "typ": "jwt"}, {"exp": 4102444800, "app": "a"}),
        "signed_huge_exp": ({"alg": "RS256"}, {"exp": 9223372036854775807, "app": "a",
                                               "iat": -9223372036854775808}),
    }
    for name, (hdr, pay) in signed.items():
        write("fuzz_jwt", name, json.dumps(hdr) + "\n" + json.dumps(pay))
    write("fuzz_jwt", "signed_dup", '{"alg":"RS256"}\n{"app":"a","app":"b","exp":4102444800}')


def parser_seeds():
    seeds = {
        "decimal_int": "0" + "75000",
        "decimal_frac": "0" + "12345.67",
        "decimal_exp": "0" + "1.5e2",
        "decimal_neg": "0" + "-0.00",
        "decimal_precise": "0" + "0.001",
        "decimal_range": "0" + "10000000000000",
        "decimal_long": "0" + "1" + "0" * 400 + "e-400",
        "decimal_bad": "0" + "01.",
        "double_text": "1" + "0.1",
        "ts_z": "2" + "2026-03-05T14:00:00Z",
        "ts_offset": "2" + "2026-03-05T16:00:00.123456+02:00",
        "ts_leap": "2" + "2024-02-29t00:00:00z",
        "ts_edge": "2" + "0001-01-01T00:00:00+23:59",
        "ts_bad": "2" + "2026-02-30T24:00:60Z",
        "ts_max": "2" + "9999-12-31T23:59:59.999-00:00",
        "text_ws": "4" + " \u00a0\u2028 x\u3000 ",
        "text_ctl": "4" + "a\x7fb",
        "text_nl": "5" + "line\r\n\tnext",
        "uuid_ok": "6" + "0190A000-0000-7000-8000-000000000001",
        "uuid_bad": "6" + "0190a000-0000-7000-8000-00000000000g",
        "jsonlex": "7" + '{"lead":{"name":"n","value":-12.5e-1}}',
        "jsonlex_decoy": "7" + '{"a":"lead","lead":{"v\\"alue":1,"value":[1],"x":{"value":2}}}',
        "jsonlex_overflow": "7" + '{"lead":{"value":1e999,"p":[-2e308,"1e999",%s]}}' % ("9" * 400),
        "jsonlex_overflow_bad": "7" + '{"lead":{"value":1e999},"x":1e400.}',
    }
    for name, text in seeds.items():
        write("fuzz_parsers", name, text)
    write("fuzz_parsers", "double_bits", b"1" + struct.pack("<d", 0.1))
    write("fuzz_parsers", "ts_format_bits", b"3" + (1767225600000).to_bytes(8, "little"))
    write("fuzz_parsers", "text_bad_utf8", b"4" + b"\xed\xa0\x80 \xf4\x90\x80\x80 \xc1\xbf")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    t = tokens(sys.argv[1])
    app1, app2 = sorted(t)
    request_seeds(app1, t[app1], app2, t[app2])
    body_seeds()
    jwt_seeds(t[app1], t[app2])
    parser_seeds()


if __name__ == "__main__":
    main()
