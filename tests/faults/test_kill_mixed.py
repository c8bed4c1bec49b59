"""Kill test of the safe writes (issue 11): clients make keyed creates,
updates, deletes (to the trash), recoveries and keyed batches on leads of
their own while crmd is SIGKILLed at random moments, 20 times (10 on
PostgreSQL), each time restarted on the same database.

A write whose 2xx answer (with its body) came back is acknowledged; the one
write a client had in flight at the kill has an unknown outcome. After each
restart the unknown outcomes are settled (a keyed create or batch is sent
again with its key and must be replayed or run now, once; an update, delete
or recovery is read back: applied whole or not at all), and then, through
the API:
  - the last acknowledged keyed creates and batches, sent again, are
    replayed (Idempotent-Replayed) with the leads they made;
  - the app's leads, live and in the trash, are exactly the ones the clients
    made (no create doubled, nothing else), each where its last change put
    it (an acknowledged delete: gone, in the trash; a recovery: back), with
    the name, value and updated_at of its last change;
  - the history of every lead changed in the round lists exactly its
    committed changes, in order: one `created`, then every update (by the
    unique name it set), delete and recovery; no acknowledged change missing
    and none that did not happen.

Every wait is bounded and nothing is timed: the kill comes at a random
moment and a round ends at the kill or after a bounded number of writes.
Note: a SIGKILL leaves the OS page cache intact; this proves that crmd
answers only committed writes, not fsync durability against power loss."""

import functools
import random
import uuid

from faultutil import BACKEND, Conn, TransportError, app_create, kill_during, on_postgres

# PostgreSQL (make faults-postgres) takes fewer rounds: each still checks
# everything, and CI's time is short.
KILLS = 10 if on_postgres() else 20
CLIENTS = 4
CRMD_THREADS = 2
KILL_AFTER = (0.2, 0.9)
MAX_OPS_PER_ROUND = 150  # per client: bounds a round on a fast machine
REPLAYS = 5  # acknowledged keyed writes per client and round sent again after the restart


class Lead:
    """One lead as the model knows it: its place, its last attributes, and
    its committed changes in order, as the history must list them."""

    def __init__(self, lead_id, attrs):
        self.id = lead_id
        self.trashed = False
        self.attrs = attrs
        self.events = [("created", attrs["name"])]


def summary(attrs):
    return attrs["name"], attrs["value"], attrs["updated_at"]


class Client:
    def __init__(self, n, key, token, seed):
        self.n, self.key, self.token = n, key, token
        self.rng, self.seq = random.Random(seed), 0
        self.leads = {}      # id -> Lead
        self.pending = None  # the write in flight at the kill: (kind, ...)
        self.keyed = []      # acknowledged keyed writes of the round: (path, key, body, ids)
        self.touched = set()
        self.stats = {"acked": 0, "unknown": 0, "refused": 0}
        self.acked_by_op = {}
        self.failures = []

    def name(self, prefix):
        self.seq += 1
        return f"{prefix}-{self.n}-{self.seq}-{uuid.uuid4().hex[:6]}"

    def value(self):
        return self.rng.randint(0, 10**6)

    def run_round(self, port, stop, max_ops=MAX_OPS_PER_ROUND):
        conn = Conn(port, self.key, self.token, timeout=10)
        try:
            for _ in range(max_ops):
                if stop.is_set():
                    return
                try:
                    self.one_op(conn)
                except TransportError as e:
                    if e.connect:
                        self.pending = None  # nothing reached the server
                        self.stats["refused"] += 1
                    else:
                        self.stats["unknown"] += 1
                    return
        finally:
            conn.close()

    def one_op(self, conn):
        live = [lid for lid, m in self.leads.items() if not m.trashed]
        trash = [lid for lid, m in self.leads.items() if m.trashed]
        r = self.rng.random()
        if not live or r < 0.2:
            return self.create(conn)
        if r < 0.3:
            return self.batch(conn, self.rng.choice(live))
        if r < 0.65:
            return self.update(conn, self.rng.choice(live))
        if r < 0.82 or not trash:
            return self.delete(conn, self.rng.choice(live))
        return self.recover(conn, self.rng.choice(trash))

    def send(self, conn, op, method, path, body=None, headers=None, want=200):
        """A write: (acknowledged, its answer's body). A transport error
        propagates with self.pending set (unknown outcome); any answer but
        the one wanted is a failure of the test."""
        st, _h, js, raw = conn.request(method, path, body, headers)
        self.pending = None
        if st != want:
            self.failures.append(f"{method} {path} -> {st} {raw[:300]!r}")
            return False, None
        self.stats["acked"] += 1
        self.acked_by_op[op] = self.acked_by_op.get(op, 0) + 1
        return True, js

    def create(self, conn):
        body = {"lead": {"name": self.name("c"), "value": self.value()}}
        ikey = "k-" + uuid.uuid4().hex
        self.pending = ("create", ikey, body)
        ok, js = self.send(conn, "create", "POST", "/leads/", body, {"Idempotency-Key": ikey}, 201)
        if ok:
            self.made(js["data"])
            self.keyed.append(("/leads/", ikey, body, [js["data"]["id"]]))

    def made(self, data):
        lead = Lead(data["id"], data["attributes"])
        if lead.id in self.leads:
            self.failures.append(f"a create answered with a lead made before: {lead.id}")
            return
        self.leads[lead.id] = lead
        self.touched.add(lead.id)

    def batch(self, conn, target):
        ops = [{"op": "create", "lead": {"name": self.name("b"), "value": self.value()}} for _ in range(2)]
        ops.append({"op": "update", "id": target, "lead": {"name": self.name("bu"), "value": self.value()}})
        body = {"operations": ops}
        ikey = "b-" + uuid.uuid4().hex
        self.pending = ("batch", ikey, body)
        ok, js = self.send(conn, "batch", "POST", "/leads/batch", body, {"Idempotency-Key": ikey})
        if ok:
            self.batched(body, js)
            self.keyed.append(("/leads/batch", ikey, body, [d["id"] for d in js["data"]]))

    def batched(self, body, js):
        for op, res in zip(body["operations"], js["data"]):
            if op["op"] == "create":
                self.made(res)
            else:
                self.updated(op["id"], res["attributes"])

    def updated(self, lead_id, attrs):
        m = self.leads[lead_id]
        m.attrs = attrs
        m.events.append(("updated", attrs["name"]))
        self.touched.add(lead_id)

    def update(self, conn, lead_id):
        fields = {"name": self.name("u"), "value": self.value()}
        self.pending = ("update", lead_id, fields)
        ok, js = self.send(conn, "update", "PUT", f"/leads/{lead_id}", {"lead": fields})
        if ok:
            self.updated(lead_id, js["data"]["attributes"])

    def moved(self, lead_id, trashed, attrs=None):
        m = self.leads[lead_id]
        m.trashed = trashed
        m.events.append(("deleted",) if trashed else ("recovered",))
        if attrs is not None:
            m.attrs = attrs
        self.touched.add(lead_id)

    def delete(self, conn, lead_id):
        self.pending = ("delete", lead_id)
        if self.send(conn, "delete", "DELETE", f"/leads/{lead_id}", want=204)[0]:
            self.moved(lead_id, True)

    def recover(self, conn, lead_id):
        self.pending = ("recover", lead_id)
        ok, js = self.send(conn, "recover", "PUT", f"/leads/{lead_id}/recover")
        if ok:
            self.moved(lead_id, False, js["data"]["attributes"])

    # -- after the restart ---------------------------------------------------
    def replay_keyed(self, conn, rnd):
        """The round's last acknowledged keyed writes, sent again: each is
        replayed with the leads it made, never run a second time."""
        for path, ikey, body, ids in self.keyed[-REPLAYS:]:
            st, h, js, raw = conn.request("POST", path, body, {"Idempotency-Key": ikey})
            assert st in (200, 201) and h.get("idempotent-replayed") == "true", (
                f"round {rnd}: an acknowledged keyed write to {path} ran again after the kill: {st} {raw[:200]!r}")
            got = [js["data"]["id"]] if path == "/leads/" else [d["id"] for d in js["data"]]
            assert got == ids, f"round {rnd}: {ikey} replayed other leads: {got} vs {ids}"
        self.keyed.clear()

    def settle(self, conn, lead_state):
        """Settles the unknown outcome of the write in flight at the kill;
        lead_state(id) is ("live" | "trash" | None, attributes)."""
        if self.pending is None:
            return None
        p, self.pending = self.pending, None
        kind = p[0]
        if kind in ("create", "batch"):
            path, want = ("/leads/", 201) if kind == "create" else ("/leads/batch", 200)
            st, h, js, raw = conn.request("POST", path, p[2], {"Idempotency-Key": p[1]})
            assert st == want, f"retry of a keyed {kind}: {st} {raw[:300]!r}"
            if kind == "create":
                self.made(js["data"])
            else:
                self.batched(p[2], js)
            return kind, h.get("idempotent-replayed") == "true"
        lead_id = p[1]
        where, attrs = lead_state(lead_id)
        m = self.leads[lead_id]
        self.touched.add(lead_id)
        if kind == "update":
            assert where == "live", f"lead {lead_id} under an update is {where}"
            if attrs["name"] == p[2]["name"]:
                assert float(attrs["value"]) == p[2]["value"], f"update applied in part: {attrs} vs {p[2]}"
                self.updated(lead_id, attrs)
                return kind, True
            assert summary(attrs) == summary(m.attrs), f"lead {lead_id}: neither before nor after an update"
            return kind, False
        applied = where == ("trash" if kind == "delete" else "live")
        assert where in ("live", "trash"), f"lead {lead_id} under a {kind} is gone"
        if applied:
            self.moved(lead_id, kind == "delete", attrs if kind == "recover" else None)
        return kind, applied


def walk(conn, path):
    """Every item of a list, by cursors."""
    items, cursor = [], None
    for _ in range(100000):
        q = f"{path}?records=100" + (f"&cursor={cursor}" if cursor else "")
        js = conn.ok("GET", q, want=(200,))
        items += js["data"]
        cursor = js["meta"].get("nextCursor")
        if not cursor:
            return items
    raise AssertionError(f"{path}: no end")


def history_events(conn, lead_id):
    """The lead's history, oldest first, as the model's events."""
    out = []
    for e in reversed(walk(conn, f"/leads/{lead_id}/history")):
        a = e["attributes"]
        if a["action"] in ("created", "updated"):
            out.append((a["action"], a["changes"]["name"][1]))
        else:
            out.append((a["action"],))
    return out


def check(conn, clients, rnd):
    live = {d["id"]: d["attributes"] for d in walk(conn, "/leads/")}
    trash = {d["id"]: d["attributes"] for d in walk(conn, "/leads/trash/show")}
    model = {lid: m for c in clients for lid, m in c.leads.items()}
    extra = (set(live) | set(trash)) - set(model)
    assert not extra, f"round {rnd}: leads nobody made (a create doubled?): {sorted(extra)[:5]}"
    for lid, m in model.items():
        where = trash if m.trashed else live
        assert lid in where, (f"round {rnd}: lead {lid} is not {'in the trash' if m.trashed else 'live'}"
                              f" (events {m.events[-3:]})")
        assert summary(where[lid]) == summary(m.attrs), (
            f"round {rnd}: lead {lid}: {summary(where[lid])} stored, {summary(m.attrs)} acknowledged")
    for c in clients:
        for lid in sorted(c.touched):
            got = history_events(conn, lid)
            want = c.leads[lid].events
            assert got == want, f"round {rnd}: lead {lid}: history {got} but changes {want}"
        c.touched.clear()
    return len(live), len(trash)


def settle_and_check(conn, clients, rnd, settled):
    """After a round's restart: replays the round's acknowledged keyed
    writes, settles the writes in flight at the kill (counted in settled,
    by (kind, applied)) and checks everything (check). Returns the numbers
    of live and trashed leads."""
    lists = {}

    def lead_state(lead_id):
        if not lists:
            lists["live"] = {d["id"]: d["attributes"] for d in walk(conn, "/leads/")}
            lists["trash"] = {d["id"]: d["attributes"] for d in walk(conn, "/leads/trash/show")}
        for where in ("live", "trash"):
            if lead_id in lists[where]:
                return where, lists[where][lead_id]
        return None, None

    for c in clients:
        c.replay_keyed(conn, rnd)
        out = c.settle(conn, lead_state)
        if out is not None:
            settled[out] = settled.get(out, 0) + 1
    for c in clients:
        assert not c.failures, f"round {rnd}: refused writes: {c.failures[:3]}"
    return check(conn, clients, rnd)


def acked_by_op(clients, rounds):
    """The acknowledged writes of every kind, which must each be at least
    one a round for the test to mean something."""
    acked = {}
    for c in clients:
        for op, n in c.acked_by_op.items():
            acked[op] = acked.get(op, 0) + n
    for op in ("create", "batch", "update", "delete", "recover"):
        assert acked.get(op, 0) >= rounds, f"too few acknowledged {op}s to mean anything: {acked}"
    return acked


def test_sigkill_loses_no_acknowledged_change_nor_doubles_a_create(crmd):
    rng = random.Random()
    srv = crmd("mixed", threads=CRMD_THREADS)
    key, token = app_create(srv.db_url)
    srv.start()
    clients = [Client(i, key, token, rng.random()) for i in range(CLIENTS)]
    settled = {}
    try:
        for rnd in range(KILLS):
            kill_during(srv, [functools.partial(c.run_round, srv.port) for c in clients],
                        rng.uniform(*KILL_AFTER))
            conn = Conn(srv.port, key, token, timeout=30)
            try:
                n_live, n_trash = settle_and_check(conn, clients, rnd, settled)
            finally:
                conn.close()
        acked = acked_by_op(clients, KILLS)
        print(f"\nmixed kill test ({BACKEND}): {KILLS} kills, acknowledged {acked}, unknown outcomes settled "
              f"(kind, applied): {settled}; {n_live} live and {n_trash} trashed leads at the end")
    finally:
        srv.close()
