"""Kill test: clients create, update and delete leads and follows on keep-alive
connections while crmd is SIGKILLed at random moments, 20 times, each time
restarted on the same database.

Every write whose 2xx response was received (with its body) is acknowledged.
After each kill: PRAGMA integrity_check (and foreign_key_check) on a copy of
the database files; after each restart, through the API:
  - every acknowledged create is there with exactly the acknowledged attributes;
  - every acknowledged update's resource (the 200 body) is what is stored,
    unless a later write of the same record had an unknown outcome; then the
    record is either exactly as before that write or exactly that write
    applied (all its fields, with a newer updated_at): never a mix;
  - an acknowledged delete is gone (a lead's follows with it);
  - a create whose outcome is unknown may be there or not, but if it is there
    it is complete (every attribute as sent);
  - no record that was never sent; totalRecords equals the number of records
    found by walking every page, for the leads and for each lead's follows;
  - a write refused with a 4xx/5xx changed nothing (and none is expected).
After the check the state read back becomes the new baseline, so outcomes that
were unknown are settled and each round starts from an exact model.

Note: a SIGKILL leaves the OS page cache intact, so this proves that crmd
acknowledges only committed writes and that a crash never leaves a partial
one; it cannot prove fsync durability against power loss."""

import random
import threading
import time
import uuid

from faultutil import Conn, TransportError, app_create, integrity_check

KILLS = 20
CLIENTS = 6
CRMD_THREADS = 2
# Random moment of each kill, in seconds after the clients start.
KILL_AFTER = (0.15, 1.1)
# A client's ops per round are bounded (and rounds end at the kill anyway).
MAX_OPS_PER_ROUND = 20000
ROUND_LIMIT_S = 15

STAGES = ["new", "contacted", "qualified", "proposal", "negotiation"]
LEAD_STATUSES = ["active", "inactive", "converted", "lost"]
SOURCES = ["website", "referral", "cold_call", "event", "partner"]
FOLLOW_STATUSES = ["pending", "completed"]
HOSTS = 3  # leads per client that collect follows


def rand_value(rng):
    return rng.choice([rng.randint(0, 10**6), rng.randint(0, 10**8) / 100, None])


def lead_fields(rng, name):
    return {
        "name": name,
        "source": rng.choice(SOURCES + [None]),
        "account_id": rng.choice([None, str(uuid.uuid4())]),
        "value": rand_value(rng),
        "stage": rng.choice(STAGES),
        "probability": rng.choice([None, rng.randint(0, 100)]),
        "status": rng.choice(LEAD_STATUSES),
    }


def follow_fields(rng, title):
    due = rng.choice([None, f"20{rng.randint(30, 60)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                            f"T1{rng.randint(0, 9)}:{rng.randint(10, 59)}:00.000Z"])
    return {
        "title": title,
        "description": rng.choice([None, "note " + uuid.uuid4().hex * rng.randint(1, 8)]),
        "due_date": due,
        "status": rng.choice(FOLLOW_STATUSES),
    }


def same_value(a, b):
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) < 1e-9 and round(float(a) * 100) == round(float(b) * 100)


def fields_match(attrs, fields):
    """Which of fields differ from the rendered attrs (empty list: all match)."""
    bad = []
    for k, v in fields.items():
        if k == "value":
            if not same_value(attrs.get(k), v):
                bad.append(k)
        elif attrs.get(k) != v:
            bad.append(k)
    return bad


class Rec:
    """What is known of one lead or follow: its last certain attributes, and
    at most one write after them whose outcome is unknown."""

    def __init__(self, attrs):
        self.attrs = attrs          # certain state (acked or read back)
        self.pending = None         # ("update", fields) or ("delete",)
        self.deleted = False        # an acknowledged delete

    def live(self):
        return not self.deleted


class Client:
    def __init__(self, n, key, token, seed):
        self.n = n
        self.key, self.token = key, token
        self.rng = random.Random(seed)
        self.seq = 0
        self.leads = {}               # id -> Rec
        self.follows = {}             # lead id -> {follow id -> Rec}
        self.hosts = []               # lead ids that collect follows
        self.dead_hosts = []          # deleted hosts: their follows must be gone too
        self.pending_lead_creates = []    # fields of creates with unknown outcome
        self.pending_follow_creates = []  # (lead id, fields)
        self.stats = {"acked": 0, "unknown": 0, "refused_connect": 0, "rejected": 0}
        self.acked_by_op = {}
        self.failures = []            # protocol-level problems seen by the client
        self.error_before_kill = []   # transport errors before the kill signal
        self.last_error_at = None

    def name(self, prefix):
        self.seq += 1
        return f"{prefix}-{self.n}-{self.seq}-{uuid.uuid4().hex[:6]}"

    # -- one round: runs until the first transport error (the kill) ---------
    def run_round(self, port, stop_at):
        conn = Conn(port, self.key, self.token, timeout=10)
        try:
            for _ in range(MAX_OPS_PER_ROUND):
                if time.monotonic() > stop_at:
                    return
                try:
                    self.one_op(conn)
                except TransportError as e:
                    self.last_error_at = time.monotonic()
                    self.last_error = e
                    return
        except Exception as e:  # noqa: BLE001 - an exception in a thread is no failure of the test
            self.failures.append(f"the client stopped: {e!r}")
        finally:
            conn.close()

    def live_leads(self):
        return [i for i, r in self.leads.items() if r.live() and r.pending is None]

    def one_op(self, conn):
        rng = self.rng
        self.hosts = [h for h in self.hosts if h in self.leads and self.leads[h].live()
                      and self.leads[h].pending is None]
        live = self.live_leads()
        while len(self.hosts) < HOSTS and len(live) > len(self.hosts):
            cand = [i for i in live if i not in self.hosts]
            self.hosts.append(rng.choice(cand))
        r = rng.random()
        if not live or r < 0.30:
            return self.create_lead(conn)
        if r < 0.58:
            return self.update_lead(conn, rng.choice(live))
        fl = [(h, fid) for h in self.hosts for fid, f in self.follows.get(h, {}).items()
              if f.live() and f.pending is None]
        if r < 0.75 and self.hosts:
            return self.create_follow(conn, rng.choice(self.hosts))
        if r < 0.88 and fl:
            return self.update_follow(conn, *rng.choice(fl))
        if r < 0.94 and fl:
            return self.delete_follow(conn, *rng.choice(fl))
        return self.delete_lead(conn, rng.choice(live))

    def send(self, conn, method, path, body, on_unknown):
        """Sends a write. Returns (status, json) for a response; on a transport
        error records the unknown outcome (unless the connection was refused,
        in which case nothing reached the server) and re-raises."""
        try:
            st, _h, js, raw = conn.request(method, path, body)
        except TransportError as e:
            if e.connect:
                self.stats["refused_connect"] += 1
            else:
                self.stats["unknown"] += 1
                on_unknown()
            raise
        if st >= 300:
            self.stats["rejected"] += 1
            self.failures.append(f"{method} {path} -> {st} {raw[:300]!r}")
        else:
            self.stats["acked"] += 1
            self.acked_by_op[method] = self.acked_by_op.get(method, 0) + 1
        return st, js

    def create_lead(self, conn):
        f = lead_fields(self.rng, self.name("L"))
        st, js = self.send(conn, "POST", "/leads/", {"lead": f},
                           lambda: self.pending_lead_creates.append(f))
        if st == 201:
            a = js["data"]["attributes"]
            bad = fields_match(a, f)
            if bad:
                self.failures.append(f"create lead: 201 body differs in {bad}: {a} vs {f}")
            self.leads[js["data"]["id"]] = Rec(a)

    def update_lead(self, conn, lid):
        rec = self.leads[lid]
        f = lead_fields(self.rng, self.name("U"))
        # a partial update sometimes: only some fields (the rest must stay)
        if self.rng.random() < 0.3:
            keys = self.rng.sample(sorted(f), self.rng.randint(1, len(f)))
            f = {k: f[k] for k in keys}
        st, js = self.send(conn, "PUT", f"/leads/{lid}", {"lead": f},
                           lambda: setattr(rec, "pending", ("update", f)))
        if st == 200:
            a = js["data"]["attributes"]
            bad = fields_match(a, f)
            if bad:
                self.failures.append(f"update lead: 200 body differs in {bad}")
            rec.attrs = a

    def delete_lead(self, conn, lid):
        rec = self.leads[lid]
        st, _ = self.send(conn, "DELETE", f"/leads/{lid}", None,
                          lambda: setattr(rec, "pending", ("delete",)))
        if st == 204:
            rec.deleted = True
            if self.follows.get(lid):
                self.dead_hosts.append(lid)

    def create_follow(self, conn, lid):
        f = follow_fields(self.rng, self.name("F"))
        st, js = self.send(conn, "POST", f"/leads/{lid}/follows", {"follow": f},
                           lambda: self.pending_follow_creates.append((lid, f)))
        if st == 201:
            a = js["data"]["attributes"]
            bad = fields_match(a, f)
            if bad:
                self.failures.append(f"create follow: 201 body differs in {bad}")
            self.follows.setdefault(lid, {})[js["data"]["id"]] = Rec(a)

    def update_follow(self, conn, lid, fid):
        rec = self.follows[lid][fid]
        f = follow_fields(self.rng, self.name("G"))
        if self.rng.random() < 0.3:
            keys = self.rng.sample(sorted(f), self.rng.randint(1, len(f)))
            f = {k: f[k] for k in keys}
        st, js = self.send(conn, "PUT", f"/leads/{lid}/follows/{fid}", {"follow": f},
                           lambda: setattr(rec, "pending", ("update", f)))
        if st == 200:
            a = js["data"]["attributes"]
            bad = fields_match(a, f)
            if bad:
                self.failures.append(f"update follow: 200 body differs in {bad}")
            rec.attrs = a

    def delete_follow(self, conn, lid, fid):
        rec = self.follows[lid][fid]
        st, _ = self.send(conn, "DELETE", f"/leads/{lid}/follows/{fid}", None,
                          lambda: setattr(rec, "pending", ("delete",)))
        if st == 204:
            rec.deleted = True


# How the writes whose outcome was unknown turned out (printed at the end).
SETTLED = {"applied": 0, "not applied": 0}


def check_rec(kind, rid, rec, found, problems):
    """Checks one known record against what was read back (found: attrs or
    None), then settles it to what was read. Returns False when the record is
    gone for good."""
    if rec.deleted:
        if found is not None:
            problems.append(f"{kind} {rid}: delete was acknowledged but it is still there")
        return False
    if found is None:
        if rec.pending == ("delete",):
            SETTLED["applied"] += 1
            return False
        problems.append(f"{kind} {rid}: acknowledged but missing"
                        f"{' (a later update had an unknown outcome)' if rec.pending else ''}")
        return False
    if found != rec.attrs:
        ok = False
        if rec.pending and rec.pending[0] == "update":
            patch = rec.pending[1]
            unchanged = {k: v for k, v in rec.attrs.items() if k not in patch and k != "updated_at"}
            if (not fields_match(found, patch) and not fields_match(found, unchanged)
                    and found["updated_at"] > rec.attrs["updated_at"]):
                ok = True  # the unknown update was applied, whole
        if ok:
            SETTLED["applied"] += 1
        else:
            diff = {k: (rec.attrs.get(k), found.get(k)) for k in set(rec.attrs) | set(found)
                    if rec.attrs.get(k) != found.get(k)}
            problems.append(f"{kind} {rid}: stored attributes differ from the acknowledged ones "
                            f"(pending: {rec.pending}): acknowledged vs stored {diff}")
    elif rec.pending:
        SETTLED["not applied"] += 1
    rec.attrs = found
    rec.pending = None
    return True


def settle_unknown_creates(kind, pending, unclaimed, problems):
    """Creates with an unknown outcome: each may exist (then complete) or not.
    unclaimed: name/title -> (id, attrs) of records found but not known.
    Returns [(id, attrs, fields)] of those found."""
    key = "name" if kind == "lead" else "title"
    adopted = []
    for f in pending:
        hit = unclaimed.pop(f[key], None)
        if hit is None:
            SETTLED["not applied"] += 1
            continue
        SETTLED["applied"] += 1
        bad = fields_match(hit[1], f)
        if bad:
            problems.append(f"{kind} {hit[0]}: an unacknowledged create is there but "
                            f"half-applied: {bad} differ ({hit[1]} vs sent {f})")
        adopted.append((hit[0], hit[1], f))
    return adopted


def verify(port, key, token, clients, problems):
    conn = Conn(port, key, token, timeout=30)
    try:
        items, total = conn.walk("/leads/")
        ids = [d["id"] for d in items]
        if len(ids) != len(set(ids)):
            problems.append(f"lead list repeats records: {len(ids) - len(set(ids))} duplicates")
        if total != len(items):
            problems.append(f"leads: totalRecords {total} but {len(items)} found by walking pages")
        found = {d["id"]: d["attributes"] for d in items}
        known = set()
        for c in clients:
            for lid, rec in list(c.leads.items()):
                known.add(lid)
                if not check_rec("lead", lid, rec, found.get(lid), problems):
                    del c.leads[lid]
        unclaimed = {a["name"]: (i, a) for i, a in found.items() if i not in known}
        for c in clients:
            for lid, attrs, _f in settle_unknown_creates("lead", c.pending_lead_creates,
                                                         unclaimed, problems):
                c.leads[lid] = Rec(attrs)
                known.add(lid)
            c.pending_lead_creates = []
        for name, (i, _a) in unclaimed.items():
            problems.append(f"lead {i} ({name!r}) is stored but was never created by a client")

        for c in clients:
            # follows of hosts that are gone must be gone too (404 for the list)
            for lid in c.dead_hosts:
                st, _h, _js, raw = conn.request("GET", f"/leads/{lid}/follows")
                if st != 404:
                    problems.append(f"deleted lead {lid}: follows list answers {st} {raw[:200]!r}")
            c.dead_hosts = [h for h in c.dead_hosts if h in found]
            lead_ids = set(c.follows) | {lid for lid, _f in c.pending_follow_creates}
            for lid in lead_ids:
                fmap = c.follows.get(lid, {})
                if lid not in found:
                    # the lead is gone (its delete acknowledged or settled): so are its follows
                    c.follows.pop(lid, None)
                    continue
                fitems, ftotal = conn.walk(f"/leads/{lid}/follows")
                if ftotal != len(fitems):
                    problems.append(f"follows of {lid}: totalRecords {ftotal} but {len(fitems)} "
                                    f"found by walking pages")
                ffound = {d["id"]: d["attributes"] for d in fitems}
                for fid, rec in list(fmap.items()):
                    if not check_rec("follow", fid, rec, ffound.get(fid), problems):
                        del fmap[fid]
                funclaimed = {a["title"]: (i, a) for i, a in ffound.items() if i not in fmap}
                mine = [f for (l2, f) in c.pending_follow_creates if l2 == lid]
                for fid, attrs, _f in settle_unknown_creates("follow", mine, funclaimed, problems):
                    fmap[fid] = Rec(attrs)
                for title, (i, _a) in funclaimed.items():
                    problems.append(f"follow {i} ({title!r}) of {lid} is stored but was never "
                                    f"created by a client")
                c.follows[lid] = fmap
            c.pending_follow_creates = []
        return len(found)
    finally:
        conn.close()


def test_sigkill_under_writes_loses_nothing_acknowledged(crmd, tmp_path):
    SETTLED.update({"applied": 0, "not applied": 0})
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    srv = crmd("kill", threads=CRMD_THREADS)
    key, token = app_create(srv.db)
    clients = [Client(i, key, token, seed + i) for i in range(CLIENTS)]
    problems = []
    rounds = []
    t_start = time.monotonic()
    srv.start()
    for rnd in range(KILLS + 1):
        if rnd > 0:
            srv.start()
        n_leads = verify(srv.port, key, token, clients, problems)
        assert not problems, (f"seed {seed}, after restart {rnd}:\n  " + "\n  ".join(problems[:40]))
        for c in clients:
            assert not c.failures, f"seed {seed}, client {c.n}: " + "\n".join(c.failures[:20])
        if rnd == KILLS:
            break
        before = {k: sum(c.stats[k] for c in clients) for k in clients[0].stats}
        stop_at = time.monotonic() + ROUND_LIMIT_S
        threads = [threading.Thread(target=c.run_round, args=(srv.port, stop_at), daemon=True)
                   for c in clients]
        for t in threads:
            t.start()
        delay = rng.uniform(*KILL_AFTER)
        time.sleep(delay)
        t_kill = time.monotonic()
        srv.kill()
        for t in threads:
            t.join(ROUND_LIMIT_S + 15)
            assert not t.is_alive(), "a client did not notice the kill within its time limit"
        early = [(c.n, repr(getattr(c, "last_error", None))) for c in clients
                 if c.last_error_at is not None and c.last_error_at < t_kill]
        assert not early, (f"connections failed before crmd was killed (round {rnd}): {early}; "
                           f"stderr:\n{srv.stderr_text()}")
        for c in clients:
            c.last_error_at = None
        after = {k: sum(c.stats[k] for c in clients) for k in clients[0].stats}
        rounds.append((rnd, round(delay, 2), n_leads,
                       {k: after[k] - before[k] for k in after}))
        bad = integrity_check(srv.db, tmp_path / "copies")
        assert not bad, f"seed {seed}, after kill {rnd + 1}: {bad}"
    srv.close()
    bad = integrity_check(srv.db, tmp_path / "copies")
    assert not bad, f"after the final clean stop: {bad}"

    total = {k: sum(c.stats[k] for c in clients) for k in clients[0].stats}
    by_op = {}
    for c in clients:
        for k, v in c.acked_by_op.items():
            by_op[k] = by_op.get(k, 0) + v
    print(f"\nkill test: seed {seed}, {KILLS} kills in {time.monotonic() - t_start:.1f}s; "
          f"totals {total}; acknowledged by method {by_op}; writes with an unknown outcome "
          f"turned out {SETTLED}")
    for r in rounds:
        print(f"  round {r[0]:2d}: killed after {r[1]:.2f}s, {r[2]} leads before; {r[3]}")
    assert total["rejected"] == 0
    assert total["acked"] > 20 * KILLS, "too few writes were acknowledged to mean anything"
    assert total["unknown"] > 0, "no kill ever hit a write in flight"
