"""Helpers for the crmd black-box API suite: a tiny HTTP client, response
assertions, the crmd command line, and JWT forging (stdlib + openssl only)."""

import base64
import datetime as _dt
import gzip
import hashlib
import hmac
import json
import os
import re
import select
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The product spec: the team's shared copy beside the repository when there is
# one (the authority), else the copy in spec/ that travels with the repository, so
# that a clone anywhere runs the whole suite. test_reference checks the two agree.
SHARED_SPEC_DIR = REPO_ROOT.parent / "shared" / "spec"
REPO_SPEC_DIR = REPO_ROOT / "spec"
SPEC_DIR = SHARED_SPEC_DIR if SHARED_SPEC_DIR.is_dir() else REPO_SPEC_DIR

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY_RE = re.compile(r"^pk_live_[A-Za-z0-9_]+$")
JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

LEAD_ATTRS = ("unique_id", "name", "source", "account_id", "contact_id", "value", "stage",
              "probability", "status", "created_at", "updated_at")
FOLLOW_ATTRS = ("unique_id", "title", "description", "due_date", "status", "created_at",
                "updated_at")

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type", 429: "rate_limited", 500: "internal_error",
               503: "service_unavailable"}

MIB = 1024 * 1024
TIMEOUT = 15


def crmd_bin():
    return os.environ.get("CRMD_BIN") or str(REPO_ROOT / "build" / "crmd")


def run_crmd(*args, timeout=30, check=False, setup=False):
    """Runs the crmd binary; returns the CompletedProcess (text mode). setup: the command
    is a fixture's set-up (the app a test gets), not what a test checks; CRMD_SETUP_BIN
    runs it when set. The ASan run sets the release build there: a sanitized start costs
    about 0.2 s more, and the suite makes some 700 apps (the tests that check `app
    create` itself still run CRMD_BIN)."""
    binary = (os.environ.get("CRMD_SETUP_BIN") if setup else None) or crmd_bin()
    p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, (
            f"crmd {' '.join(map(str, args))} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def parse_app_create(stdout):
    lines = stdout.splitlines()
    assert len(lines) == 2, f"app create must print exactly two lines, got {stdout!r}"
    m1 = re.fullmatch(r"export BLOCKS_API_KEY=(\S+)", lines[0])
    m2 = re.fullmatch(r"export BLOCKS_AUTH_TOKEN=(\S+)", lines[1])
    assert m1 and m2, f"unexpected app create output: {stdout!r}"
    key, token = m1.group(1), m2.group(1)
    assert KEY_RE.match(key), key
    assert JWT_RE.match(token), token
    return key, token


def app_create(db, name=None, setup=False):
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    p = run_crmd("app", "create", name, "--db", f"sqlite:{db}", check=True, setup=setup)
    return parse_app_create(p.stdout)


def token_issue(db, key, ttl=None, subject=None):
    args = ["token", "issue", "--app", key]
    if subject is not None:
        args += ["--subject", subject]
    if ttl is not None:
        args += ["--ttl", ttl]
    args += ["--db", f"sqlite:{db}"]
    p = run_crmd(*args, check=True)
    tok = p.stdout.strip()
    assert len(p.stdout.strip().splitlines()) == 1, f"token issue must print one token: {p.stdout!r}"
    assert JWT_RE.match(tok), tok
    return tok


# ---------------------------------------------------------------- JSON helpers

class RawNum(str):
    """A JSON number kept as its exact source text."""


def exact_json(text):
    """Parses JSON keeping numbers as RawNum (their exact text)."""
    return json.loads(text, parse_float=RawNum, parse_int=RawNum)


def media_type(resp):
    ct = resp.headers.get("Content-Type", "")
    return ct.split(";")[0].strip().lower()


def body_json(resp):
    assert media_type(resp) == "application/json", (
        f"{resp.request.method} {resp.request.url}: Content-Type "
        f"{resp.headers.get('Content-Type')!r}, body {resp.text[:300]!r}")
    try:
        return resp.json()
    except ValueError as e:  # pragma: no cover - message only
        raise AssertionError(f"body is not JSON: {resp.text[:300]!r}") from e


def describe(resp):
    return (f"{resp.request.method} {resp.request.path_url} -> {resp.status_code} "
            f"{resp.text[:600]!r}")


def assert_status(resp, status):
    assert resp.status_code == status, f"expected {status}: {describe(resp)}"


def assert_error(resp, status, code=None, n=None):
    """Asserts a JSON error response; returns the list of error objects.
    code: a code, or a set of allowed codes (every error must have one of them);
    default: the contract's code for status."""
    assert resp.status_code == status, f"expected {status}: {describe(resp)}"
    body = body_json(resp)
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), describe(resp)
    errs = body["errors"]
    assert errs, describe(resp)
    if code is None:
        code = ERROR_CODES.get(status)
    allowed = code if isinstance(code, (set, frozenset, tuple, list)) else {code}
    for e in errs:
        assert isinstance(e, dict), describe(resp)
        assert e.get("status") == str(status), f"error status must be {str(status)!r}: {e}"
        if code is not None:
            assert e.get("code") in allowed, f"code {e.get('code')!r} not in {allowed}: {e}"
        assert isinstance(e.get("title"), str) and e["title"].strip(), f"no title: {e}"
        assert isinstance(e.get("detail"), str) and e["detail"].strip(), f"no detail: {e}"
    if n is not None:
        assert len(errs) == n, f"expected {n} error objects: {describe(resp)}"
    return errs


def assert_validation(resp, pointers, codes=None):
    """422 with exactly one error per pointer (order free). codes maps pointer to
    its code (default validation_error)."""
    errs = assert_error(resp, 422, {"validation_error", "unknown_attribute"})
    got = []
    for e in errs:
        src = e.get("source")
        assert isinstance(src, dict) and isinstance(src.get("pointer"), str), (
            f"422 error without source.pointer: {e}")
        got.append(src["pointer"])
        want_code = (codes or {}).get(src["pointer"], "validation_error")
        assert e["code"] == want_code, f"{src['pointer']}: code {e['code']!r}, want {want_code!r}"
    assert sorted(got) == sorted(pointers), f"pointers {sorted(got)} != {sorted(pointers)}: {describe(resp)}"
    return errs


def assert_param_error(resp, params):
    errs = assert_error(resp, 422, "validation_error")
    got = []
    for e in errs:
        src = e.get("source")
        assert isinstance(src, dict) and "parameter" in src, f"no source.parameter: {e}"
        got.append(src["parameter"])
    assert sorted(got) == sorted(params), f"parameters {got} != {params}: {describe(resp)}"
    return errs


def posts_until_429(url, headers, body, refused=422, tries=6):
    """POSTs body to url until a 429, at most tries times, each answer
    before it being refused (its status); returns (statuses, last response)."""
    statuses = []
    for _ in range(tries):
        r = requests.post(url, headers=headers, data=body, timeout=60)
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
        assert_status(r, refused)
    return statuses, r


def follow_due_soon(app, lead_id, read, aheads=(1.5, 5, 15)):
    """Creates a follow of lead_id due a moment ahead and returns (follow, due
    as a Unix time, read(follow)). A read that ended after the due date proves
    nothing about pending (a loaded machine, a sanitized build): the follow is
    then made again further ahead, at each of aheads (seconds) in turn."""
    for ahead in aheads:
        due = time.time() + ahead
        stamp = _dt.datetime.fromtimestamp(due, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        follow = app.create_follow(lead_id, title="due soon", due_date=stamp)
        got = read(follow)
        if time.time() < due - 0.01:  # (the date sent is cut to the millisecond)
            break
    return follow, due, got


def check_resource(obj, rtype, attrs):
    assert isinstance(obj, dict), obj
    assert obj.get("type") == rtype, obj
    a = obj.get("attributes")
    assert isinstance(a, dict), obj
    missing = [k for k in attrs if k not in a]
    assert not missing, f"{rtype} lacks attributes {missing}: {a}"
    assert isinstance(obj.get("id"), str) and UUID_RE.match(obj["id"]), f"bad id: {obj.get('id')!r}"
    assert obj["id"] == a["unique_id"], obj
    for k in ("created_at", "updated_at"):
        assert isinstance(a[k], str) and TS_RE.match(a[k]), f"{k}: {a[k]!r}"
    return a


def check_lead(obj, **expected):
    a = check_resource(obj, "lead", LEAD_ATTRS)
    assert a["stage"] in ("new", "contacted", "qualified", "proposal", "negotiation"), a
    assert a["status"] in ("active", "inactive", "converted", "lost"), a
    assert a["probability"] is None or (type(a["probability"]) is int), a
    assert a["value"] is None or isinstance(a["value"], (int, float)) and not isinstance(a["value"], bool), a
    for k, v in expected.items():
        assert a[k] == v, f"lead.{k} = {a[k]!r}, expected {v!r}"
    return a


def check_follow(obj, **expected):
    a = check_resource(obj, "follow", FOLLOW_ATTRS)
    assert a["status"] in ("pending", "completed", "overdue"), a
    assert a["due_date"] is None or TS_RE.match(a["due_date"]), a
    for k, v in expected.items():
        assert a[k] == v, f"follow.{k} = {a[k]!r}, expected {v!r}"
    return a


def parse_ts(s):
    return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)


def location_path(resp):
    loc = resp.headers.get("Location")
    assert loc, f"201 without Location: {describe(resp)}"
    return urlsplit(loc).path


# ---------------------------------------------------------------- HTTP client

class Client:
    """Requests against one server with one set of credentials. Never follows
    redirects; a fresh connection per request."""

    def __init__(self, base_url, key=None, token=None):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.token = token

    @property
    def headers(self):
        h = {}
        if self.token is not None:
            h["Authorization"] = f"Bearer {self.token}"
        if self.key is not None:
            h["AppId"] = self.key
        return h

    def with_creds(self, key=None, token=None):
        return Client(self.base_url, key if key is not None else self.key,
                      token if token is not None else self.token)

    def request(self, method, path, body=None, *, raw=None, headers=None, auth=True,
                params=None, content_type="application/json"):
        """body: a JSON-able value, sent as JSON; raw: bytes/str sent verbatim.
        headers: extra headers (a None value removes one). auth=False: no credentials."""
        h = dict(self.headers) if auth else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        if data is not None and content_type is not None:
            h["Content-Type"] = content_type
        if headers:
            # case-insensitive override
            for k, v in headers.items():
                for old in [x for x in h if x.lower() == k.lower()]:
                    del h[old]
                h[k] = v
        h = {k: v for k, v in h.items() if v is not None}
        r = requests.request(method, self.base_url + path, data=data, headers=h, params=params,
                             allow_redirects=False, timeout=TIMEOUT)
        assert not (300 <= r.status_code < 400 and r.status_code != 304), f"redirect: {describe(r)}"
        assert r.status_code < 500, f"server error: {describe(r)}"
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # conveniences --------------------------------------------------------
    def create_lead(self, **attrs):
        attrs.setdefault("name", "Lead " + uuid.uuid4().hex[:6])
        r = self.post("/leads/", {"lead": attrs})
        assert_status(r, 201)
        return body_json(r)["data"]

    def create_follow(self, lead_id, **attrs):
        attrs.setdefault("title", "Follow " + uuid.uuid4().hex[:6])
        r = self.post(f"/leads/{lead_id}/follows", {"follow": attrs})
        assert_status(r, 201)
        return body_json(r)["data"]

    def get_lead(self, lead_id):
        r = self.get(f"/leads/{lead_id}")
        assert_status(r, 200)
        return body_json(r)["data"]

    def get_follow(self, lead_id, follow_id):
        r = self.get(f"/leads/{lead_id}/follows/{follow_id}")
        assert_status(r, 200)
        return body_json(r)["data"]

    def list_all(self, path="/leads/", records=100):
        out, page = [], 1
        while True:
            r = self.get(path, params={"page": page, "records": records})
            assert_status(r, 200)
            data = body_json(r)["data"]
            if not data:
                return out
            out += data
            page += 1
            assert page < 1000


class App(Client):
    """An app (tenant): its key, its token, and a client using them."""

    def __iter__(self):
        return iter((self.key, self.token))

    @property
    def client(self):
        return self


# ---------------------------------------------------------------- raw HTTP

def raw_http(host, port, head, body=b"", timeout=10, wait_before_body=0.3):
    """Sends head (bytes, ends with CRLFCRLF) then body; returns (status, headers
    dict lower-cased, body bytes). If the server answers before the body is sent
    (e.g. a 413 decided on Content-Length), the early answer is read."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(head)
        early = False
        if body:
            r, _, _ = select.select([s], [], [], wait_before_body)
            if r:
                early = True
            else:
                try:
                    view = memoryview(body)
                    while view:
                        n = s.send(view[:65536])
                        view = view[n:]
                        r, _, _ = select.select([s], [], [], 0)
                        if r:
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass
        data = recv_answer(s)
        assert data, "no response at all" + (" (answered early)" if early else "")
        answer = check_raw(f"{host}:{port}", head, data)
        assert answer, f"not an HTTP/1 answer: {data[:200]!r}"
        return answer
    finally:
        s.close()


# ---------------------------------------------------------------- JWT

def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64u_dec(h)), json.loads(b64u_dec(p)), s


def jwt_compact(header, payload, signer):
    """signer: bytes -> bytes (signature) or None for an empty signature."""
    signing_input = f"{b64u(json.dumps(header, separators=(',', ':')))}." \
                    f"{b64u(json.dumps(payload, separators=(',', ':')))}"
    sig = signer(signing_input.encode()) if signer else b""
    return f"{signing_input}.{b64u(sig)}"


def hs256_signer(secret):
    if isinstance(secret, str):
        secret = secret.encode()
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def openssl(*args, input=None):
    p = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    assert p.returncode == 0, f"openssl {args}: {p.stderr.decode(errors='replace')}"
    return p.stdout


class RsaKey:
    """An RSA private key in a PEM file, signing with `openssl dgst`."""

    def __init__(self, pem_path):
        self.path = str(pem_path)

    @classmethod
    def generate(cls, directory):
        path = Path(directory) / f"other-{uuid.uuid4().hex[:8]}.pem"
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", str(path))
        return cls(path)

    def sign(self, data):
        return openssl("dgst", "-sha256", "-sign", self.path, input=data)

    def public_pem(self):
        return openssl("pkey", "-in", self.path, "-pubout")

    def public_der(self):
        return openssl("pkey", "-in", self.path, "-pubout", "-outform", "DER")

    def kid(self):
        return hashlib.sha256(self.public_der()).hexdigest()[:16]

    def verify(self, data, sig):
        with tempfile.TemporaryDirectory() as d:
            pub = Path(d) / "pub.pem"
            pub.write_bytes(self.public_pem())
            sigf = Path(d) / "sig"
            sigf.write_bytes(sig)
            p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub),
                                "-signature", str(sigf)], input=data, capture_output=True)
            return p.returncode == 0


def create_private(path):
    """Creates path, empty, with mode 0600 whatever the umask, for a copy of a
    database or a key: it holds a signing key, like the database itself."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, 0o600)


def find_server_key(db_path, token, workdir):
    """Looks, schema-agnostically, through every text/blob cell of the test's own
    SQLite database for an unencrypted PEM private key whose public half verifies
    token. Returns an RsaKey or None (e.g. keys kept elsewhere or encrypted)."""
    h, p, s = token.split(".")
    signing_input = f"{h}.{p}".encode()
    sig = b64u_dec(s)
    pems = []
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            for t in tables:
                try:
                    for row in con.execute(f'SELECT * FROM "{t}"'):
                        for cell in row:
                            if isinstance(cell, bytes):
                                try:
                                    cell = cell.decode()
                                except UnicodeDecodeError:
                                    continue
                            if isinstance(cell, str) and "PRIVATE KEY-----" in cell:
                                pems.append(cell)
                except sqlite3.Error:
                    continue
        finally:
            con.close()
    except sqlite3.Error:
        return None
    for i, pem in enumerate(pems):
        path = Path(workdir) / f"server-key-{i}-{uuid.uuid4().hex[:6]}.pem"
        create_private(path)
        path.write_text(pem)
        k = RsaKey(path)
        try:
            if k.verify(signing_input, sig):
                return k
        except Exception:
            continue
    return None


def now_s():
    return int(time.time())


# ---------------------------------------------------------------- OpenAPI validation
#
# Every response the suite receives from crmd is checked against
# openapi/openapi.json: the operation is found by method and path template,
# the response by status code (a status the operation does not document is a
# failure), then its required headers, its Content-Type and its JSON body
# (python3-jsonschema, Draft 2020-12, $refs resolved in the document).
# Requests that match no operation are checked against the document's
# x-crmd-unmatched answers (404 for an unknown path, 405 with an exact Allow
# for a known path and another method); x-crmd-any-request holds what any
# request may get before routing (unreadable HTTP, a body over the limit, a
# connection over the cap). CRMD_OPENAPI_VALIDATE=0 turns the
# checks off; CRMD_OPENAPI_PENDING=enforce also requires what x-crmd-pending
# marks as not served yet.

OPENAPI_PATH = REPO_ROOT / "openapi" / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Failures found so far (the conftest hook fails a test that swallowed one).
OPENAPI_FAILURES = []
# "host:port" of the crmd servers the suite started: only their answers are checked.
CRMD_ORIGINS = set()


def openapi_validation_enabled():
    return os.environ.get("CRMD_OPENAPI_VALIDATE", "1") != "0"


def load_openapi(path=OPENAPI_PATH):
    """The document, with every JSON number that has a fraction or exponent
    as an exact Decimal (so decimal places are checked exactly)."""
    from decimal import Decimal
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def _walk(node, visit, where="#"):
    """Calls visit(node, pointer) on every object of a JSON tree."""
    if isinstance(node, dict):
        visit(node, where)
        for k, v in node.items():
            _walk(v, visit, f"{where}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, visit, f"{where}/{i}")


def _enforce_pending(doc):
    """Applies x-crmd-pending: members it names become required, and a header
    it marks becomes required."""
    def visit(node, _where):
        pending = node.get("x-crmd-pending")
        if not isinstance(pending, dict):
            return
        req = pending.get("required")
        if req is True:
            node["required"] = True
        elif isinstance(req, list):
            have = list(node.get("required", []))
            node["required"] = have + [r for r in req if r not in have]
    _walk(doc, visit)


def _decimal_places(validator, places, instance, schema):
    """x-crmd-decimal-places: a number with a fraction has at most `places`
    fractional digits, in shortest form (no trailing zero, no exponent)."""
    from decimal import Decimal
    from jsonschema.exceptions import ValidationError
    if not isinstance(instance, Decimal):
        return  # an integer, or not a number (other keywords judge it)
    sign, digits, exp = instance.as_tuple()
    if not isinstance(exp, int):
        yield ValidationError(f"{instance} is not a finite number")
    elif exp >= 0 or digits[-1] == 0:
        yield ValidationError(f"{instance} is not in its shortest exact form")
    elif -exp > places:
        yield ValidationError(f"{instance} has more than {places} fractional digits")


class OpenApi:
    """The document, indexed for looking up operations and validating."""

    def __init__(self, doc=None, enforce_pending=None):
        from jsonschema import Draft202012Validator, RefResolver, validators
        self.doc = doc if doc is not None else load_openapi()
        if enforce_pending is None:
            enforce_pending = os.environ.get("CRMD_OPENAPI_PENDING") == "enforce"
        if enforce_pending:
            _enforce_pending(self.doc)
        self.resolver = RefResolver.from_schema(self.doc)
        self.Validator = validators.extend(Draft202012Validator,
                                           {"x-crmd-decimal-places": _decimal_places})
        self.format_checker = Draft202012Validator.FORMAT_CHECKER
        self._validators = {}
        # Where each schema object stands in the document, to name it in failures.
        self._pointers = {}
        _walk(self.doc, lambda node, where: self._pointers.setdefault(id(node), where))
        self.templates = []
        for template, item in self.doc["paths"].items():
            segs = self._segments(template)
            literal = tuple(not (s.startswith("{") and s.endswith("}")) for s in segs)
            self.templates.append((template, segs, literal, item))
        # Fixed segments win over parameters, leftmost first (the contract's
        # fixed words: /leads/trash/x is the purge route).
        self.templates.sort(key=lambda t: t[2], reverse=True)
        # And a parameter never takes a fixed word: a literal of another
        # template after the same segments (/leads/trash is no lead id).
        self.fixed = {}
        for _, segs, literal, _ in self.templates:
            for i, lit in enumerate(literal):
                if lit:
                    shape = tuple(s if l else None for s, l in zip(segs[:i], literal[:i]))
                    self.fixed.setdefault((len(shape), shape), set()).add(segs[i])

    @staticmethod
    def _segments(path):
        if path == "/":
            return []  # the board's page; "//" is one empty segment, matching nothing
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        return path.split("/")[1:]

    def resolve(self, node):
        """Follows a $ref (one object, possibly several hops)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            _, node = self.resolver.resolve(node["$ref"])
            seen += 1
            assert seen < 20, "a $ref cycle"
        return node

    def match(self, path):
        """(template, path item) of a request path, or (None, None)."""
        # A request target "//x" is a path, which urlsplit would read as a host.
        path = path.split("?", 1)[0] if path.startswith("/") else urlsplit(path).path
        segs = self._segments(path)
        for template, tsegs, literal, item in self.templates:
            if len(tsegs) != len(segs):
                continue
            if all(s == t if lit else s != "" and s not in self._fixed_at(tsegs, literal, i)
                   for i, (s, t, lit) in enumerate(zip(segs, tsegs, literal))):
                return template, item
        return None, None

    def _fixed_at(self, tsegs, literal, i):
        shape = tuple(s if l else None for s, l in zip(tsegs[:i], literal[:i]))
        return self.fixed.get((len(shape), shape), ())

    def validator(self, schema):
        entry = self._validators.get(id(schema))
        if entry is None:
            v = self.Validator(schema, resolver=self.resolver, format_checker=self.format_checker)
            entry = self._validators[id(schema)] = (v, schema)  # schema kept alive for its id
        return entry[0]

    def schema_errors(self, schema, instance):
        """A list of readable problems of instance against schema."""
        from jsonschema.exceptions import best_match
        errors = list(self.validator(schema).iter_errors(instance))
        out = []
        for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])[:5]:
            leaf = best_match([e])
            why = leaf.message[:300]
            if leaf.context:  # oneOf/anyOf: say why each branch failed
                why += " [" + " | ".join(
                    f"{'/'.join(str(p) for p in c.relative_schema_path)}: {c.message[:120]}"
                    for c in leaf.context[:4]) + "]"
            where = self._pointers.get(id(leaf.schema))
            where = f"{where}/{leaf.validator}" if where else \
                "/".join(str(p) for p in leaf.absolute_schema_path)
            out.append(f"at {leaf.json_path}: {why} (schema {where})")
        if len(errors) > 5:
            out.append(f"... and {len(errors) - 5} more")
        return out

    def operation(self, method, path):
        """Returns (label, responses) for a request: responses maps status
        keys to response objects; label names the operation. method None:
        an answer given before any request was read, which only
        x-crmd-any-request describes."""
        if method is None:
            return "(before any request)", {}, None
        method = method.lower()
        template, item = self.match(path)
        unmatched = self.doc.get("x-crmd-unmatched", {}).get("responses", {})
        if template is None:
            label = f"{method.upper()} {urlsplit(path).path} (no route)"
            return label, {"404": unmatched["404"]}, None
        op = item.get(method)
        if op is None and method == "head":
            op = item.get("get")
        if op is None:
            allowed = {m.upper() for m in HTTP_METHODS if m in item}
            if "GET" in allowed:
                allowed.add("HEAD")
            responses = {"405": unmatched["405"]}
            if method == "options" and "204" in unmatched:
                responses["204"] = unmatched["204"]  # a CORS preflight
            return (f"{method.upper()} {template} (no such method)", responses, allowed)
        return f"{method.upper()} {template} ({op.get('operationId')})", op["responses"], None

    def check(self, method, path, status, headers, body):
        """Problems of one exchange (an empty list when it conforms).
        headers: a mapping with case-insensitive or lower-cased keys; body:
        bytes, or None when the client did not see it (a body written
        elsewhere, or one not read to its end): then only the status and the
        headers are checked."""
        from decimal import Decimal
        label, responses, allowed = self.operation(method, path)
        hget = _header_getter(headers)
        anywhere = self.doc.get("x-crmd-any-request", {}).get("responses", {})
        resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") \
            or responses.get("default") or anywhere.get(str(status))
        if resp is None:
            return label, [f"status {status} is not documented (documented: "
                           f"{', '.join(sorted(responses))}; any request: "
                           f"{', '.join(sorted(anywhere))})"]
        if (str(status) not in responses and str(status) in anywhere) or status == 204:
            allowed = None  # an answer given before routing (or a preflight) has no Allow
        resp = self.resolve(resp)
        problems = []
        for name, h in (resp.get("headers") or {}).items():
            if name.lower() == "content-type":
                continue
            h = self.resolve(h)
            value = hget(name)
            if value is None:
                if h.get("required"):
                    problems.append(f"required header {name} is missing")
                continue
            problems += [f"header {name}: {p}"
                         for p in self._header_errors(h.get("schema", {}), value)]
        if allowed is not None:
            got = {m.strip().upper() for m in (hget("Allow") or "").split(",") if m.strip()}
            if not (allowed <= got <= allowed | {"OPTIONS"}):
                problems.append(f"Allow {sorted(got)} must list exactly {sorted(allowed)}")
        content = resp.get("content")
        no_body = status in (204, 304) or 100 <= status < 200 or (method or "").upper() == "HEAD"
        if not content or no_body:
            if body:  # (None: not seen)
                problems.append(f"a body where the document has none: {body[:120]!r}")
            if not content:
                return label, problems
        ctype = (hget("Content-Type") or "").split(";")[0].strip().lower()
        media = {k.lower(): v for k, v in content.items()}.get(ctype)
        if media is None:
            problems.append(f"Content-Type {hget('Content-Type')!r} is not one of "
                            f"{sorted(content)}")
            return label, problems
        if no_body or body is None:
            return label, problems
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                instance = json.loads(body.decode("utf-8"), parse_float=Decimal)
            except (UnicodeDecodeError, ValueError) as e:
                problems.append(f"body is not JSON ({e}): {body[:200]!r}")
                return label, problems
        else:
            try:
                instance = body.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{ctype} body is not UTF-8")
                return label, problems
        if "schema" in media:
            problems += self.schema_errors(media["schema"], instance)
        return label, problems

    def _header_errors(self, schema, value):
        schema = self.resolve(schema)
        types = schema.get("type")
        types = types if isinstance(types, list) else [types]
        instance = value
        if "integer" in types:
            if not re.fullmatch(r"-?[0-9]+", value):
                return [f"{value!r} is not an integer"]
            instance = int(value)
        return self.schema_errors(schema, instance)


def _header_getter(headers):
    lower = {str(k).lower(): v for k, v in dict(headers).items()}
    return lambda name: lower.get(name.lower())


_OPENAPI = None


def openapi():
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = OpenApi()
    return _OPENAPI


def check_exchange(method, url, status, headers, body):
    """Validates one answer of crmd against the document; raises AssertionError
    (and records it) when it does not conform. url: the request's URL, or its
    target as sent (a path with its query, or the absolute form); body: bytes,
    or None when it was not seen (see OpenApi.check). method and url None:
    an answer given before any request was read."""
    if not openapi_validation_enabled():
        return
    if url is None:
        path = ""
    elif url.startswith("/"):
        path = url  # a target as sent ("//x" is a path, not a host)
    else:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    label, problems = openapi().check(method, path, status, headers, body)
    if problems:
        shown = "(not seen)" if body is None else repr(body[:400])
        msg = (f"OpenAPI: {label} -> {status} does not match openapi/openapi.json "
               f"(request {method or '(none)'} {path[:200]}):\n  " + "\n  ".join(problems) +
               f"\n  body: {shown}")
        OPENAPI_FAILURES.append(msg)
        raise AssertionError(msg)


def is_crmd(netloc, server_header):
    """Whether an answer from netloc came from a crmd the suite started: its
    address is one of theirs and it says it is crmd (a test's own receiver may
    get a port that an earlier crmd had)."""
    return netloc in CRMD_ORIGINS and server_header == "crmd"


def check_answer(origin, method, url, status, headers, body, known=False):
    """check_exchange for an answer from origin ("host:port") however the
    suite received it (requests, http.client, curl, a raw socket): only the
    answers of a crmd the suite started are checked. known: the caller knows
    the answer came from that crmd, even without its Server field (h2o's
    canned 400 has none)."""
    server = _header_getter(headers)("Server")
    if is_crmd(origin, server) or (known and origin in CRMD_ORIGINS):
        check_exchange(method, url, status, headers, body)


def check_response(resp, body=b"", read=True):
    """check_answer for a requests.Response: with its content, or when read
    is False with body (bytes, or None for its status and headers alone)."""
    check_answer(urlsplit(resp.request.url).netloc, resp.request.method, resp.request.url,
                 resp.status_code, resp.headers, resp.content if read else body)


def check_streamed(resp):
    """check_response for a response whose body the test reads itself
    (requests' stream=True): its status and headers at once, and its body too
    when the response is closed after the test read all of it (the bytes the
    test reads are kept as it reads them)."""
    check_response(resp, None, read=False)
    raw, seen, ended = resp.raw, [], []
    read, read_chunked, close = raw.read, raw.read_chunked, resp.close

    def tee_read(*args, **kw):
        data = read(*args, **kw)
        seen.append(data or b"")
        if raw.isclosed():
            ended.append(True)  # http.client closes its end at the body's end
        return data

    def tee_read_chunked(*args, **kw):
        for data in read_chunked(*args, **kw):
            seen.append(data)
            yield data
        ended.append(True)

    def close_and_check():
        close()
        if ended:
            ended.clear()  # once, however often it is closed
            check_response(resp, b"".join(seen), read=False)

    raw.read, raw.read_chunked, resp.close = tee_read, tee_read_chunked, close_and_check


def _http1_parts(data):
    """(status, headers lower-cased, body, whole) of the first final answer in
    bytes read off an HTTP/1 connection (interim 1xx answers skipped); body is
    cut at its Content-Length or its last chunk, and whole says whether all of
    it is there (None for a body that ends with the connection: it may be).
    None when data holds no complete head."""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if not sep or not m:
            return None
        if not 100 <= int(m[1]) < 200:
            break
        data = rest
    headers = {}
    for line in head.decode("latin1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, whole = b"", False
        while True:
            size, sep, rest = rest.partition(b"\r\n")
            if not sep or not re.fullmatch(rb"[0-9A-Fa-f]+(;.*)?", size):
                break
            n = int(size.split(b";")[0], 16)
            if n == 0:
                whole = True
                break
            body, rest = body + rest[:n], rest[n + 2:]
        return int(m[1]), headers, body, whole
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return int(m[1]), headers, rest[:int(length)], len(rest) >= int(length)
    return int(m[1]), headers, rest, None


def answer_complete(data):
    """Whether bytes read off an HTTP/1 connection hold a whole answer."""
    parts = _http1_parts(data)
    return parts is not None and parts[3] is True


def recv_answer(sock):
    """Reads one HTTP/1 answer off sock: until it is whole, or the
    connection ends, is reset or times out. Returns the bytes read."""
    data = b""
    try:
        while not answer_complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def check_raw(origin, request, answer, known=False):
    """check_answer for an HTTP/1 exchange on a raw socket to origin
    ("host:port"): request is what was sent (from its request line), or None
    for an answer given before any request (to a connection over the cap);
    answer is what was read. Returns (status, headers lower-cased, body) of
    the answer, or None when it holds no HTTP answer; a body that did not
    arrive whole is not checked (status and headers are). known: as for
    check_answer."""
    parts = _http1_parts(answer)
    if parts is None:
        return None
    status, headers, body, whole = parts
    method = target = None
    if request is not None:
        line = re.match(rb"([A-Z]+) (\S+) HTTP/1\.[01]\r\n", request)
        if not line:
            return status, headers, body
        method, target = line[1].decode(), line[2].decode("latin1")
    seen = b"" if method == "HEAD" else (None if whole is False else body)
    if seen and headers.get("content-encoding") == "gzip":
        seen = gzip.decompress(seen)  # what the document describes (requests does the same)
    check_answer(origin, method, target, status, headers, seen, known)
    return status, headers, body


# What curl -w writes for check_curl: the request's method and URL, then the
# answer's status, the size of its body and its header fields
# (%{header_json} needs curl 7.83 or later).
CURL_ANSWER = "%{method} %{url_effective} %{http_code} %{size_download} %{header_json}"


def check_curl(written, body):
    """check_answer for one curl call: written is what its -w CURL_ANSWER
    wrote, body the bytes it received; an empty body of a non-empty answer
    went elsewhere (-o /dev/null) and is not checked. Returns (status,
    headers lower-cased); status 0 when curl got no answer."""
    method, url, status, size, fields = written.strip().split(" ", 4)
    headers = {k.lower(): ", ".join(v) for k, v in json.loads(fields).items()}
    if int(status) == 0:
        return 0, headers
    seen = None if not body and int(size) > 0 else body
    check_answer(urlsplit(url).netloc, method, url, int(status), headers, seen)
    return int(status), headers


def curl(*args, timeout=60):
    """Runs curl -sS with args (options and URL), its answer checked with
    check_curl. Returns (returncode, HTTP version, status, headers, body
    bytes, stderr); curl writes its report even when the transfer fails."""
    mark = "\n@@crmd-curl "
    p = subprocess.run(["curl", "-sS", "-w", mark.replace("\n", "\\n") + "%{http_version} " + CURL_ANSWER,
                        *map(str, args)], capture_output=True, timeout=timeout)
    body, sep, written = p.stdout.rpartition(mark.encode())
    assert sep, f"curl exit {p.returncode}, no report: {p.stderr[-500:]!r}"
    version, _, written = written.decode(errors="replace").partition(" ")
    status, headers = check_curl(written, body)
    return p.returncode, version, status, headers, body, p.stderr.decode(errors="replace")


# --- crmd copy of the trash, the history and the idempotency keys ----------

SAFE_KEY = "copy-safe-key-1"
SAFE_BODY = {"lead": {"name": "Idempotent deal", "value": 42}}


def fill_safe(app):
    """A trashed lead with two follows, history on it and on a live lead, and
    a kept Idempotency-Key answer, and a cursor into the live lead's history
    whose number lies past a gap (a purged lead's entries). Returns what a
    copy must show."""
    purged = app.create_lead(name="Purged deal")
    assert_status(app.put(f"/leads/{purged['id']}", {"lead": {"status": "lost"}}), 200)
    assert_status(app.delete(f"/leads/{purged['id']}"), 204)
    assert_status(app.delete(f"/leads/trash/{purged['id']}"), 204)
    gone = app.create_lead(name="Trashed deal", stage="contacted")
    follows = [app.create_follow(gone["id"], title=f"call {i}") for i in range(2)]
    assert_status(app.put(f"/leads/{gone['id']}", {"lead": {"stage": "qualified"}}), 200)
    assert_status(app.delete(f"/leads/{gone['id']}"), 204)
    first = app.post("/leads/", SAFE_BODY, headers={"Idempotency-Key": SAFE_KEY})
    assert_status(first, 201)
    live = body_json(first)["data"]
    for stage in ("contacted", "proposal"):
        assert_status(app.put(f"/leads/{live['id']}", {"lead": {"stage": stage}}), 200)
    cursor = body_json(app.get(f"/leads/{live['id']}/history", params={"records": 1}))["meta"]["nextCursor"]
    after = body_json(app.get(f"/leads/{live['id']}/history", params={"records": 1, "cursor": cursor}))
    return {
        "live": live["id"],
        "cursor": cursor,
        "after": after,
        "gone": gone["id"],
        "follows": sorted(f["id"] for f in follows),
        "trash": body_json(app.get("/leads/trash/show"))["data"],
        "history": {lid: body_json(app.get(f"/leads/{lid}/history", params={"records": 100}))["data"]
                    for lid in (gone["id"], live["id"])},
        "first": first,
        "total": body_json(app.get("/leads/"))["meta"]["totalRecords"],
    }


def check_safe(app, want):
    """The copy of fill_safe's app: same trash, same history in the same
    order, the key's first answer replayed, and the trashed lead
    recoverable with its follows."""
    assert body_json(app.get("/leads/trash/show"))["data"] == want["trash"]
    for lid, entries in want["history"].items():
        got = body_json(app.get(f"/leads/{lid}/history", params={"records": 100}))["data"]
        assert got == entries, lid
    # A cursor of the source's walks on in the copy: the entries kept their numbers.
    after = app.get(f"/leads/{want['live']}/history", params={"records": 1, "cursor": want["cursor"]})
    assert_status(after, 200)
    assert body_json(after) == want["after"]
    again = app.post("/leads/", SAFE_BODY, headers={"Idempotency-Key": SAFE_KEY})
    assert_status(again, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == want["first"].content
    assert again.headers["Location"] == want["first"].headers["Location"]
    assert body_json(app.get("/leads/"))["meta"]["totalRecords"] == want["total"]
    assert_status(app.put(f"/leads/{want['gone']}/recover"), 200)
    got = body_json(app.get(f"/leads/{want['gone']}/follows", params={"records": 100}))["data"]
    assert sorted(f["id"] for f in got) == want["follows"]


def run_sh_lines(p):
    """The lines scripts/run.sh (make run), started as p with its output
    piped as text, printed up to the board's link, the last before it
    serves."""
    lines = []
    while not (lines and lines[-1].startswith("http://")):
        line = p.stdout.readline()
        assert line, f"run.sh ended before its link: {lines}"
        lines.append(line.rstrip("\n"))
    return lines
