"""Webhooks with several crmd processes on one PostgreSQL database (collected
only in PostgreSQL runs, like test_postgres.py): the processes share the
deliveries without sending any event twice, keep each webhook's order, and a
process with --webhook-sender off records events that the others deliver."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from apiutil import App, assert_status
from conftest import pg_new_database, psql
from webhookutil import Receiver, check_delivery, create_webhook

FLAGS = ["--webhook-allow-private", "--webhook-retry", "1s"]
WEBHOOKS = 12
LEADS = 8
UPDATES = 15


def test_two_processes_share_the_deliveries_without_sending_twice(make_server):
    url = pg_new_database()
    a = make_server(threads=2, db_url=url, extra_args=FLAGS)
    b = make_server(threads=2, db_url=url, extra_args=FLAGS)
    app_a = a.new_app()
    app_b = App(b.base_url, app_a.key, app_a.token)
    rec = Receiver()
    owners, stop = set(), threading.Event()

    def watch_leases():
        while not stop.is_set():
            owners.update(x for x in psql(url, "SELECT lease_owner FROM webhooks WHERE lease_owner IS NOT NULL")
                          .split() if x)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_leases)
    try:
        hooks = [create_webhook(app_a, rec.url(f"/w{i}"), events=["lead.created", "lead.updated"])
                 for i in range(WEBHOOKS)]
        watcher.start()

        def work(i):
            client = app_a if i % 2 else app_b
            lead = client.create_lead(name=f"L{i}-0")
            for k in range(1, UPDATES + 1):
                assert_status(client.put(f"/leads/{lead['id']}", {"lead": {"name": f"L{i}-{k}"}}), 200)
            return lead["id"]

        with ThreadPoolExecutor(max_workers=LEADS) as ex:
            leads = list(ex.map(work, range(LEADS)))
        per_hook = LEADS * (UPDATES + 1)
        rec.wait_for(per_hook * WEBHOOKS, timeout=60)
        time.sleep(1)
        stop.set()
        watcher.join()
        for i, w in enumerate(hooks):
            got = rec.got(f"/w{i}")
            ids = [d.event_id for d in got]
            assert len(ids) == per_hook == len(set(ids)), f"webhook {i}: {len(ids)} deliveries, " \
                                                          f"{len(set(ids))} events, want {per_hook} once each"
            assert len({d.headers["crmd-delivery"] for d in got}) == per_hook, "an attempt sent twice"
            for lead in leads:
                names = [d.json["data"]["attributes"]["name"] for d in got if d.json["data"]["id"] == lead]
                assert names == sorted(names, key=lambda n: int(n.split("-")[1])), f"webhook {i}: {names}"
            check_delivery(got[0], w["attributes"]["secret"])
        pids = {o.split("/")[2] for o in owners}
        assert pids == {str(a.proc.pid), str(b.proc.pid)}, f"both processes send: lease owners {owners}"
        assert psql(url, "SELECT count(*) FROM webhook_events").strip() == "0"
        attempts = psql(url, "SELECT count(*), count(DISTINCT id) FROM webhook_attempts").strip()
        assert attempts == f"{per_hook * WEBHOOKS}|{per_hook * WEBHOOKS}", attempts
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        rec.close()


def test_a_process_with_the_sender_off_leaves_delivery_to_the_others(make_server):
    url = pg_new_database()
    quiet = make_server(db_url=url, extra_args=FLAGS + ["--webhook-sender", "off"])
    app = quiet.new_app()
    rec = Receiver()
    try:
        create_webhook(app, rec.url(), events=["lead.created"])
        for i in range(5):
            app.create_lead(name=f"Q{i}")
        time.sleep(1.5)
        assert rec.got() == [], "the process with --webhook-sender off sent nothing"
        assert psql(url, "SELECT count(*) FROM webhook_events").strip() == "5", "but it recorded the events"
        make_server(db_url=url, extra_args=FLAGS)
        got = rec.wait_for(5)
        assert [json.loads(d.body)["data"]["attributes"]["name"] for d in got] == [f"Q{i}" for i in range(5)]
    finally:
        rec.close()
