"""docs/skill/SKILL.md is an agent skill in the reference's format. Every curl
command in it runs, as written, against a real server and answers the status
(and the JSON shape) that its section documents, in an answer that conforms to
openapi/openapi.json; every route that takes credentials has a section; the
pre-flight check refuses a shell without the three variables."""

import json
import os
import re
import subprocess

import pytest

from apiutil import CURL_ANSWER, REPO_ROOT, check_curl, run_crmd

SKILL = REPO_ROOT / "docs" / "skill" / "SKILL.md"
STATUS_MARK = "@@crmd-skill-answer="
END_MARK = "@@crmd-skill-end"

# The wrapper adds the status and header fields (apiutil.CURL_ANSWER) after
# each answer without changing what the documented command sends.
WRAPPER = ("curl() { command curl -sS -w '\\n" + STATUS_MARK + CURL_ANSWER + "\\n" + END_MARK +
           "\\n' \"$@\"; }\n")
ANSWER_RE = re.compile("\n" + re.escape(STATUS_MARK) + "(.*?)\n" + re.escape(END_MARK) + "\n", re.S)


def parse_skill():
    """[(heading, script, status or None, example JSON or None)] in file order."""
    lines = SKILL.read_text(encoding="utf-8").splitlines()
    out, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### ") or line.startswith("## "):
            heading = line.lstrip("#").strip()
        if line.strip() != "```bash":
            i += 1
            continue
        j = i + 1
        while lines[j].strip() != "```":
            j += 1
        script = "\n".join(lines[i + 1:j])
        status, example, k = None, None, j + 1
        while k < len(lines) and not lines[k].startswith("#") and lines[k].strip() != "```bash":
            m = re.match(r"\*\*Response (\d{3})", lines[k])
            if m and status is None:
                status = int(m[1])
                n = k + 1
                while n < len(lines) and not lines[n].strip():
                    n += 1
                if n < len(lines) and lines[n].strip() == "```json":
                    e = n + 1
                    while lines[e].strip() != "```":
                        e += 1
                    example = json.loads("\n".join(lines[n + 1:e]))
            k += 1
        out.append((heading, script, status, example))
        i = j + 1
    return out


BLOCKS = parse_skill()


def run_block(script, env):
    return subprocess.run(["bash", "-c", WRAPPER + script], env=env, capture_output=True,
                          text=True, timeout=30)


def answers(stdout):
    """[(status, body text)] of each curl call the block made, each answer
    checked against openapi/openapi.json."""
    out, start = [], 0
    for m in ANSWER_RE.finditer(stdout):
        body = stdout[start:m.start()]
        status, _ = check_curl(m[1], body.encode())
        out.append((status, body))
        start = m.end()
    return out


def shape(value):
    """What an example fixes: the object keys and resource types, recursively
    through the first element of lists."""
    if isinstance(value, dict):
        return {k: (v if k == "type" else shape(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def assert_shape(example, actual, where):
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for k, v in example.items():
            assert k in actual, f"{where}: the skill shows `{k}`, the server sends {list(actual)}"
            if k == "type":
                assert actual[k] == v, f"{where}.type: {actual[k]!r} != {v!r}"
            else:
                assert_shape(v, actual[k], f"{where}.{k}")
    elif isinstance(example, list) and example:
        assert isinstance(actual, list) and actual, f"{where}: expected a non-empty list"
        assert_shape(example[0], actual[0], f"{where}[0]")


@pytest.fixture
def skill_env(server, app):
    lead = app.create_lead(name="Enterprise Deal", source="website", value=50000,
                           stage="qualified", probability=40, status="active")
    lead_id = lead["id"]
    follow = app.create_follow(lead_id, title="Send proposal", due_date="2026-12-01T10:00:00Z")
    follow_id = follow["id"]
    # A paused webhook: the blocks that write send it nothing.
    r = app.post("/webhooks", {"webhook": {"url": "https://hooks.example.com/crmd",
                                           "events": ["*"], "active": False}})
    assert r.status_code == 201, r.text
    # A lead in the trash, for the trash's sections.
    trashed = app.create_lead(name="Old Deal")["id"]
    assert app.delete(f"/leads/{trashed}").status_code == 204
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKS_")}
    env.update(BLOCKS_API_URL=server.base_url, BLOCKS_API_KEY=app.key,
               BLOCKS_AUTH_TOKEN=app.token, LEAD_ID=lead_id, FOLLOW_ID=follow_id,
               WEBHOOK_ID=r.json()["data"]["id"], TRASHED_ID=trashed)
    return env


def test_skill_has_commands_to_run():
    assert len(BLOCKS) >= 15
    assert sum(1 for b in BLOCKS if b[2] is not None) >= 14
    assert sum(1 for b in BLOCKS if b[3] is not None) >= 5


@pytest.mark.parametrize("heading,script,status,example", BLOCKS,
                         ids=[f"{n}-{b[0][:40]}" for n, b in enumerate(BLOCKS)])
def test_skill_command_answers_as_documented(skill_env, heading, script, status, example):
    p = run_block(script, skill_env)
    got = answers(p.stdout)
    if status is None:
        # The pre-flight check: it passes, and the server answered.
        assert p.returncode == 0, p.stderr + p.stdout
        assert "All credentials configured" in p.stdout
        assert [code for code, _ in got] == [200], p.stdout
        return
    assert p.returncode == 0, p.stderr
    assert len(got) == 1, f"{heading}: expected one curl call, saw {got}"
    code, body = got[0]
    assert code == status, f"{heading}: documented {status}, server answered {code}: {body[:500]}"
    if example is not None:
        assert_shape(example, json.loads(body), heading)


def test_skill_answers_are_checked_against_the_openapi_document(skill_env, healthz_drift):
    health = [b[1] for b in BLOCKS if b[0].startswith("GET /healthz")]
    preflight = next(b[1] for b in BLOCKS if "Pre-flight" in b[1])
    assert len(health) == 1
    assert answers(run_block(health[0], skill_env).stdout) == [(200, '{"status":"ok"}')]
    healthz_drift("body")
    with pytest.raises(AssertionError, match="does not match openapi/openapi.json"):
        answers(run_block(health[0], skill_env).stdout)
    # The pre-flight check sends its answer's body to /dev/null: its headers are checked.
    assert [code for code, _ in answers(run_block(preflight, skill_env).stdout)] == [200]
    healthz_drift("header")
    with pytest.raises(AssertionError, match="does not match openapi/openapi.json"):
        answers(run_block(preflight, skill_env).stdout)


def test_preflight_refuses_missing_variables(skill_env):
    script = next(b[1] for b in BLOCKS if "Pre-flight" in b[1])
    env = dict(skill_env)
    del env["BLOCKS_AUTH_TOKEN"]
    p = run_block(script, env)
    assert p.returncode == 1 and "Missing required environment variables" in p.stdout
    env = dict(skill_env, BLOCKS_API_URL="http://127.0.0.1:9")
    p = run_block(script, env)
    assert p.returncode == 1 and "does not answer" in p.stdout


def documented_routes():
    out = set()
    for m in re.finditer(r"^### (GET|POST|PUT|DELETE) (/\S*) - ", SKILL.read_text(), re.M):
        out.add((m[1], m[2].rstrip("/") or "/"))
    return out


def test_every_route_with_credentials_has_a_section():
    rows = run_crmd("routes").stdout.splitlines()[2:]
    documented = documented_routes()
    missing, checked = [], 0
    for row in rows:
        m = re.fullmatch(r"\| (\w+) \| `([^`]*)` \| (yes|no) \| .* \|", row)
        assert m, row
        if m[3] == "yes":
            checked += 1
            if (m[1], m[2].rstrip("/")) not in documented:
                missing.append(f"{m[1]} {m[2]}")
    # The table lists the routes that take credentials (an empty one would check none).
    assert checked >= 10, rows
    assert not missing, "docs/skill/SKILL.md has no section for: " + ", ".join(missing)
