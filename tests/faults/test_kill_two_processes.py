"""Two crmd processes on one PostgreSQL database, one of them SIGKILLed under
load (collected only in PostgreSQL runs: make faults-postgres).

Clients make the mixed kill test's writes (keyed creates, updates, deletes
to the trash, recoveries, keyed batches; test_kill_mixed.Client), half of
them through each process (which half goes where changes every round),
while both processes deliver every change to three webhooks. Each round,
at a random moment, the process that holds a webhook's lease (chosen then,
among the holders) is SIGKILLed; the other keeps serving:
  - every write its clients make, before and after the kill, is answered
    (no transport error, nothing refused), AFTER_KILL_OPS of them after it;
  - it takes the killed process's leases over (it says so, "took over the
    webhooks of process PID", and no webhook names the dead process any
    more), well before they would run out, and alone delivers every event
    the outbox holds, the killed process's included.
Then the killed process is started again on the same database and port,
the round's unknown outcomes are settled and everything is checked as in
the mixed kill test (nothing acknowledged by either process missing from
the data or the history, no keyed create doubled). At the end, for each
webhook and each lead, the first arrivals of its events are exactly its
committed changes in order: nothing acknowledged missing, nothing out of
order, nothing that did not happen.

Every wait is for a condition and bounded; nothing is timed."""

import functools
import random
import threading
import time

from faultutil import Conn, app_create, kill_during, psql
from test_kill_mixed import Client, acked_by_op, settle_and_check
from test_webhook_kill import Receiver, first_arrivals

ROUNDS = 3
CLIENTS = 4
CRMD_THREADS = 2
KILL_AFTER = (0.3, 0.9)
AFTER_KILL_OPS = 25  # writes each of the survivor's clients makes after the kill
WEBHOOKS = 3
EVENTS = ["lead.created", "lead.updated", "lead.deleted", "lead.recovered"]
LEASE_WAIT_S = 20  # for a process to hold a lease under load: at once, normally
TAKEOVER_WAIT_S = 25  # leases run 30 s; a dead process's are looked for every 5 s
DELIVERY_WAIT_S = 60
FLAGS = ["--webhook-allow-private", "--webhook-retry", "1s", "--webhook-backlog-max", "10000000"]


def lease_pids(url):
    """The pids named by the webhooks' leases (owners are BOOT/PIDNS/PID/RANDOM)."""
    owners = psql(url, "SELECT lease_owner FROM webhooks WHERE lease_owner IS NOT NULL").split()
    return [int(o.split("/")[2]) for o in owners]


def wait_for(what, pred, timeout):
    """Waits (bounded) until pred() is true; fails naming what otherwise."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def client_round(c, srv, stop):
    """c's writes through srv until the kill; then, if srv is the survivor,
    AFTER_KILL_OPS more (c.after_kill counts those acknowledged)."""
    c.after_kill = 0
    c.run_round(srv.port, stop)
    stop.wait(60)
    if srv.alive() and c.pending is None:
        before = c.stats["acked"]
        c.run_round(srv.port, threading.Event(), AFTER_KILL_OPS)
        c.after_kill = c.stats["acked"] - before


def webhook_events(arrivals):
    """Per lead, its events in the order of their first arrival, as the
    mixed kill test's model writes its changes."""
    out = {}
    for e in arrivals:
        kind = e["type"].split(".")[1]
        out.setdefault(e["data"]["id"], []).append(
            (kind, e["data"]["attributes"]["name"]) if kind in ("created", "updated") else (kind,))
    return out


class Pair:
    """The two processes, the shared database, and the round's take-over."""

    def __init__(self, crmd):
        first = crmd("a", threads=CRMD_THREADS, extra_args=FLAGS)
        self.url = first.db_url
        self.srvs = [first, crmd("b", threads=CRMD_THREADS, extra_args=FLAGS, db_url=self.url)]
        for s in self.srvs:
            s.start()
        self.takeovers = []  # seconds from a kill to the survivor's take-over

    def victim(self, rng):
        """A process that holds a webhook's lease now (waiting for one)."""
        held = []

        def holders():
            pids = lease_pids(self.url)
            held[:] = [s for s in self.srvs if s.pid in pids]
            return held

        wait_for("a process holds a webhook's lease under load", holders, LEASE_WAIT_S)
        self.killed_at = time.monotonic()
        return rng.choice(held)

    def take_over(self, victim):
        """The survivor takes the dead process's leases over and delivers
        everything waiting, before the victim starts again."""
        survivor = next(s for s in self.srvs if s is not victim)
        pid = victim.pid
        # Said only of an owner of a lease, and only by the release of its
        # leases (never when they run out): the victim held one at its death.
        said = f"took over the webhooks of process {pid}"
        wait_for(f"the survivor says it {said}", lambda: said in survivor.stderr_text(tail=1 << 24),
                 TAKEOVER_WAIT_S)
        self.takeovers.append(round(time.monotonic() - self.killed_at, 1))
        assert pid not in lease_pids(self.url), "a webhook still names the dead process"
        wait_for("the survivor delivered every event the outbox holds",
                 lambda: psql(self.url, "SELECT count(*) FROM webhook_events").strip() == "0",
                 DELIVERY_WAIT_S)


def check_deliveries(receivers, clients):
    """For each webhook and lead: the first arrivals are the lead's changes."""
    want = {lid: m.events for c in clients for lid, m in c.leads.items()}
    for rec, secret in receivers:
        got = {}

        def complete():
            got.clear()
            got.update(webhook_events(first_arrivals(rec.events(), secret)))
            return got == want

        deadline = time.monotonic() + DELIVERY_WAIT_S
        while not complete() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not set(got) - set(want), f"events of leads nobody made: {sorted(set(got) - set(want))[:3]}"
        for lid, events in want.items():
            assert got.get(lid) == events, f"lead {lid}: webhook events {got.get(lid)} but changes {events}"


def test_one_of_two_processes_killed_loses_nothing_and_its_leases_are_taken_over(crmd):
    rng = random.Random()
    pair = Pair(crmd)
    a = pair.srvs[0]
    key, token = app_create(pair.url)
    receivers = []
    conn = Conn(a.port, key, token, timeout=30)
    try:
        for _ in range(WEBHOOKS):
            rec = Receiver()
            hook = conn.ok("POST", "/webhooks", {"webhook": {"url": f"http://127.0.0.1:{rec.port}/in",
                                                             "events": EVENTS}})
            receivers.append((rec, hook["data"]["attributes"]["secret"]))
        conn.close()
        clients = [Client(i, key, token, rng.random()) for i in range(CLIENTS)]
        settled, served_after_kill = {}, 0
        for rnd in range(ROUNDS):
            placed = [(c, pair.srvs[(c.n + rnd) % 2]) for c in clients]
            errors = [c.stats["unknown"] + c.stats["refused"] for c in clients]
            victim = kill_during(functools.partial(pair.victim, rng),
                                 [functools.partial(client_round, c, s) for c, s in placed],
                                 rng.uniform(*KILL_AFTER), before_restart=pair.take_over)
            for (c, s), n in zip(placed, errors):
                if s is not victim:
                    assert c.stats["unknown"] + c.stats["refused"] == n and c.pending is None, (
                        f"round {rnd}: a write to the surviving process went unanswered")
                    assert c.after_kill == AFTER_KILL_OPS, f"round {rnd}: the survivor stopped serving"
                    served_after_kill += c.after_kill
            after = Conn(pair.srvs[rnd % 2].port, key, token, timeout=30)
            try:
                n_live, n_trash = settle_and_check(after, clients, rnd, settled)
            finally:
                after.close()
        check_deliveries(receivers, clients)
        deliveries = sum(len(r.events()) for r, _ in receivers)
        print(f"\ntwo processes, {ROUNDS} kills of one: acknowledged {acked_by_op(clients, ROUNDS)}, "
              f"{served_after_kill} by the survivor after the kill; unknown outcomes settled {settled}; "
              f"leases taken over {pair.takeovers} s after the kills; {deliveries} deliveries to "
              f"{WEBHOOKS} webhooks; {n_live} live and {n_trash} trashed leads at the end")
    finally:
        conn.close()
        for rec, _ in receivers:
            rec.close()
