"""The reference's own curl commands, run verbatim (placeholders replaced by real
UUIDs, output flags added after `curl`), each against its documented status and
response shape. The reference is <repo>/../shared/spec/ when that exists, else
the repository's own copy in spec/; if neither holds it these tests fail."""

import datetime as dt
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from apiutil import REPO_SPEC_DIR, SHARED_SPEC_DIR, SPEC_DIR, TS_RE, UUID_RE, assert_error, check_exchange, parse_ts

REFERENCE = SPEC_DIR / "crm-leads-api.md"

# The documented GET examples, used to seed the records the commands refer to.
SEED_LEAD = {"name": "Enterprise Deal", "source": "website", "value": 50000,
             "stage": "qualified", "probability": 40}
SEED_FOLLOW = {"title": "Send proposal document",
               "description": "Prepare and send the Q2 proposal",
               "due_date": "2026-02-28T17:00:00Z"}
VALUE_CHECKED = {"name", "source", "account_id", "contact_id", "value", "stage", "probability",
                 "title", "description"}


def load_reference():
    if not REFERENCE.is_file():
        pytest.fail(f"the API reference is missing: {REFERENCE} (expected shared/spec beside "
                    f"the repo, or spec/ in it)", pytrace=False)
    return REFERENCE.read_text()


def parse_blocks(text):
    """Returns [(kind, code, heading, status, json_text)] for every ```bash block:
    status/json from the first '**Response NNN' (and its ```json block) between this
    block and the next ```bash block."""
    fences = list(re.finditer(r"```(\w*)\n(.*?)```", text, re.S))
    out = []
    bash = [m for m in fences if m.group(1) == "bash"]
    for i, m in enumerate(bash):
        end = bash[i + 1].start() if i + 1 < len(bash) else len(text)
        between = text[m.end():end]
        heading = (re.findall(r"^#{2,3} (.+)$", text[:m.start()], re.M) or ["?"])[-1]
        st = re.search(r"\*\*Response (\d{3})", between)
        js = None
        if st:
            jm = re.search(r"```json\n(.*?)```", between[st.end():], re.S)
            js = jm.group(1) if jm else None
        out.append((m.group(2), heading, int(st.group(1)) if st else None, js))
    return out


def parse_head(text):
    """The header fields of a response head as curl -D writes it."""
    headers = {}
    for line in text.splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def curl_method(code):
    m = re.search(r"curl\s+-X\s+(\w+)", code)
    return m.group(1) if m else ("POST" if " -d " in code else "GET")


def substitute(s, ids):
    for placeholder, real in ids.items():
        s = s.replace(placeholder, real)
    return s


def compare(expected, actual, path, ids, now):
    """actual must be a superset of expected's shape; stable values must match."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}: member {k!r} missing in {sorted(actual)}"
            compare(v, actual[k], f"{path}.{k}", ids, now)
        if "attributes" in expected and isinstance(expected["attributes"], dict):
            exp_a, act_a = expected["attributes"], actual["attributes"]
            if exp_a.get("status") == "pending" and act_a.get("due_date"):
                due = parse_ts(act_a["due_date"])
                want = "overdue" if due < now else "pending"
                assert act_a["status"] == want, f"{path}.attributes.status {act_a['status']!r}"
        return
    if isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        if expected:
            assert actual, f"{path}: empty array, the reference shows items"
            ref_id = expected[0].get("id") if isinstance(expected[0], dict) else None
            match = [a for a in actual if isinstance(a, dict) and a.get("id") == ref_id]
            compare(expected[0], match[0] if match else actual[0], f"{path}[0]", ids, now)
        return
    key = path.rsplit(".", 1)[-1]
    if isinstance(expected, bool):
        assert isinstance(actual, bool), f"{path}: {actual!r}"
    elif isinstance(expected, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r}"
        if ".attributes." in path:
            assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, str):
        assert isinstance(actual, str), f"{path}: expected a string, got {actual!r}"
        if key in ("id", "unique_id"):
            if expected in ids.values():
                assert actual == expected, f"{path}: {actual!r} != {expected!r}"
            else:
                assert UUID_RE.match(actual), f"{path}: {actual!r} is not a v7 UUID"
        elif key in ("created_at", "updated_at"):
            assert TS_RE.match(actual), f"{path}: {actual!r}"
        elif key == "due_date":
            assert TS_RE.match(actual), f"{path}: {actual!r}"
            want = dt.datetime.fromisoformat(expected.replace("Z", "+00:00"))
            assert parse_ts(actual) == want, f"{path}: {actual!r} != {expected!r}"
        elif key in VALUE_CHECKED or key == "type" or (".attributes.status" in path
                                                       and expected != "pending"):
            assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.fixture
def reference_env(server, app):
    acc, con = str(uuid.uuid4()), str(uuid.uuid4())
    lead = app.create_lead(**SEED_LEAD, account_id=acc, contact_id=con)
    follow = app.create_follow(lead["id"], **SEED_FOLLOW)
    ids = {"lead-uuid-123": lead["id"], "account-uuid-456": acc, "contact-uuid-789": con,
           "follow-uuid-123": follow["id"]}
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(BLOCKS_API_URL=server.base_url, BLOCKS_API_KEY=app.key,
               BLOCKS_AUTH_TOKEN=app.token, NO_PROXY="*", no_proxy="*")
    return ids, env


def test_reference_is_present_and_has_every_route():
    blocks = parse_blocks(load_reference())
    curls = [(curl_method(c), c) for c, _, _, _ in blocks if "curl" in c]
    assert len(curls) == 11, f"expected 11 curl examples, found {len(curls)}"
    methods = sorted(m for m, _ in curls)
    assert methods == sorted(["GET"] * 5 + ["POST"] * 2 + ["PUT"] * 2 + ["DELETE"] * 2)


def test_preflight_block(server, reference_env):
    _, env = reference_env
    blocks = [c for c, _, _, _ in parse_blocks(load_reference()) if "Pre-flight" in c]
    assert len(blocks) == 1, "pre-flight block not found in the reference"
    p = subprocess.run(["bash", "-c", blocks[0]], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "All credentials configured" in p.stdout
    bare = {k: v for k, v in env.items() if not k.startswith("BLOCKS_")}
    p = subprocess.run(["bash", "-c", blocks[0]], env=bare, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "ERROR" in p.stdout


def test_reference_curl_commands_verbatim(server, app, reference_env, tmp_path):
    ids, env = reference_env
    now = dt.datetime.now(dt.timezone.utc)
    blocks = [b for b in parse_blocks(load_reference()) if "curl" in b[0]]
    assert len(blocks) == 11

    def kind(b):
        code = b[0]
        if curl_method(code) != "DELETE":
            return 0
        return 1 if "/follows/" in code else 2  # follow DELETE, then the lead DELETE last
    ordered = sorted(blocks, key=kind)  # stable: document order within each group

    for n, (code, heading, status, js) in enumerate(ordered):
        method = curl_method(code)
        if status is None:
            status = {"GET": 200, "POST": 201, "PUT": 200, "DELETE": 204}[method]
        out = tmp_path / f"resp{n}.json"
        head = tmp_path / f"resp{n}.head"
        cmd = substitute(code, ids)
        assert "uuid-" not in cmd, f"unreplaced placeholder in {cmd}"
        flags = f"-s -o '{out}' -D '{head}' -w '%{{http_code}} %{{url_effective}}'"
        cmd = re.sub(r"\bcurl\b", f"curl {flags}", cmd, count=1)
        p = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True,
                           timeout=30)
        where = f"[{heading}] {cmd}"
        assert p.returncode == 0, f"{where}\ncurl exit {p.returncode}: {p.stderr}"
        body = out.read_bytes() if out.exists() else b""
        got, _, url = p.stdout.strip().partition(" ")
        assert got == str(status), (
            f"{where}\nHTTP {got}, documented {status}; body {body[:500]!r}")
        # The answer conforms to the OpenAPI document too.
        check_exchange(method, url, int(got), parse_head(head.read_text("latin1")), body)
        if status == 204:
            assert body == b"", f"{where}: 204 with a body {body[:200]!r}"
            continue
        actual = json.loads(body)
        if js is not None:
            expected = json.loads(substitute(js, ids))
            compare(expected, actual, "$", ids, now)
        else:  # the Authentication example: a list
            assert isinstance(actual.get("data"), list) and "meta" in actual, where

    # the two DELETEs did what they say
    c = app
    assert_error(c.get(f"/leads/{ids['lead-uuid-123']}/follows/{ids['follow-uuid-123']}"), 404)
    assert_error(c.get(f"/leads/{ids['lead-uuid-123']}"), 404)


def test_spec_dir_location_rule():
    # <repo root>/../shared/spec when it exists, else <repo root>/spec; the repo
    # root is two levels above tests/api.
    root = Path(__file__).resolve().parents[2]
    shared = root.parent / "shared" / "spec"
    assert SHARED_SPEC_DIR == shared and REPO_SPEC_DIR == root / "spec"
    assert SPEC_DIR == (shared if shared.is_dir() else root / "spec")


def test_repo_spec_copy_matches_shared():
    # The copy in spec/ must be the shared spec, word for word, wherever both
    # exist: a clone without the shared folder tests against exactly the same text.
    names = ("crm-leads-api.md", "contract-notes.md", "extensions.md")
    for name in names:
        assert (REPO_SPEC_DIR / name).is_file(), f"spec/{name} is missing from the repository"
    if not SHARED_SPEC_DIR.is_dir():
        pytest.skip("no shared spec beside the repository to compare with")
    for name in names:
        assert (REPO_SPEC_DIR / name).read_bytes() == (SHARED_SPEC_DIR / name).read_bytes(), \
            f"spec/{name} differs from {SHARED_SPEC_DIR / name}: copy it again"
