"""Kill test for Idempotency-Key: clients create leads, each with a key of its
own, while crmd is SIGKILLed at random moments, 10 times, each time restarted
on the same database. After each restart every key of the round is sent again
with the same request:
  - an acknowledged create is replayed (Idempotent-Replayed: true) with the
    same lead, never created a second time;
  - a create whose outcome was unknown is either replayed (it was committed)
    or made now, once;
and every key ends with exactly one lead (named after the key), no more."""

import http.client
import json
import random
import threading
import time
import uuid

from faultutil import app_create

KILLS = 10
CLIENTS = 4
KILL_AFTER = (0.1, 0.8)


def post(port, key, token, ikey, timeout=10.0):
    """(status, headers, body) of a keyed create, or None when no complete
    answer came back."""
    body = json.dumps({"lead": {"name": ikey, "value": 10}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/leads/", body=body,
                  headers={"Authorization": f"Bearer {token}", "AppId": key,
                           "Content-Type": "application/json", "Idempotency-Key": ikey})
        r = c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(raw) if raw else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        c.close()


def client_round(port, key, token, out, stop, problems):
    """Creates leads with fresh keys until the server goes away; out gets
    (key, acknowledged lead id or None). An answer other than 201 goes to
    problems (an assert here would end this thread alone, unseen)."""
    while not stop.is_set():
        ikey = "kill-" + uuid.uuid4().hex
        r = post(port, key, token, ikey, timeout=5.0)
        if r is None:
            out.append((ikey, None))
            return
        st, _, js = r
        if st != 201:
            problems.append((ikey, st, js))
            return
        out.append((ikey, js["data"]["id"]))


def leads_by_name(port, key, token):
    names, page = {}, 1
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", f"/leads/?page={page}&records=100",
                  headers={"Authorization": f"Bearer {token}", "AppId": key})
        js = json.loads(c.getresponse().read())
        c.close()
        if not js["data"]:
            return names
        for d in js["data"]:
            names.setdefault(d["attributes"]["name"], []).append(d["id"])
        page += 1


def test_sigkill_never_doubles_an_idempotent_create(crmd):
    rng = random.Random()
    srv = crmd("idem", threads=2)
    key, token = app_create(srv.db)
    srv.start()
    sent = {}  # key -> the lead it made
    problems = []  # answers other than 201 before the kill
    acked = unknown = replayed_unknown = 0
    for rnd in range(KILLS):
        outs = [[] for _ in range(CLIENTS)]
        stop = threading.Event()
        threads = [threading.Thread(target=client_round, args=(srv.port, key, token, o, stop, problems),
                                    daemon=True)
                   for o in outs]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(*KILL_AFTER))
        srv.kill()
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert not problems, f"round {rnd}: keyed creates answered other than 201: {problems[:3]}"
        srv.start()
        for ikey, lead_id in (x for o in outs for x in o):
            r = post(srv.port, key, token, ikey)
            assert r is not None, f"round {rnd}: no answer to a retry"
            st, hdrs, js = r
            assert st == 201, (st, js)
            if lead_id is not None:
                acked += 1
                assert hdrs.get("idempotent-replayed") == "true", f"round {rnd}: {ikey} ran twice"
                assert js["data"]["id"] == lead_id, f"round {rnd}: {ikey} replayed another lead"
            else:
                unknown += 1
                replayed_unknown += hdrs.get("idempotent-replayed") == "true"
            sent[ikey] = js["data"]["id"]
    names = leads_by_name(srv.port, key, token)
    doubled = {k: v for k, v in names.items() if len(v) != 1}
    assert not doubled, f"keys with more than one lead: {list(doubled.items())[:5]}"
    assert set(names) == set(sent), "every key made exactly one lead, and nothing else was made"
    assert all(names[k] == [v] for k, v in sent.items())
    print(f"\nidempotent kill test: {KILLS} kills, {acked} acknowledged creates replayed, "
          f"{unknown} unknown outcomes ({replayed_unknown} had been committed)")
    assert acked > 10 * KILLS, "too few creates were acknowledged to mean anything"
