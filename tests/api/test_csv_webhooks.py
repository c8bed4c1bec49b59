"""CSV imports and webhooks (extensions.md, "CSV" and "Webhooks"): every lead
an import creates sends lead.created as a POST /leads does, recorded in the
import's transaction in the file's order; an import that creates nothing
sends nothing. The same holds for `crmd import` on a serving server's
database, whose sender delivers them. Receivers are on 127.0.0.1, so the
server runs with --webhook-allow-private."""

import subprocess

import pytest

from apiutil import assert_status, body_json, crmd_bin
from conftest import Server
from webhookutil import Receiver, check_delivery, create_webhook


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("csv-webhooks"), extra_args=["--webhook-allow-private"]).start()
    yield srv
    assert srv.stop() == 0, srv.stderr_text()[-2000:]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def import_csv(app, text, mode=None):
    return app.post("/leads/import", raw=text.encode(), content_type="text/csv",
                    params={"mode": mode} if mode else None)


def check_created(app, got, secret, names):
    """got are lead.created deliveries of the leads named names, in that
    order, each carrying the lead as the API renders it."""
    assert [d.type for d in got] == ["lead.created"] * len(names)
    assert [d.json["data"]["attributes"]["name"] for d in got] == names
    for d in got:
        check_delivery(d, secret)
        assert d.json["previous_attributes"] == {}
        assert d.json["data"] == body_json(app.get(f"/leads/{d.json['data']['id']}"))["data"]
    assert len({d.json["data"]["id"] for d in got}) == len(names)


def test_an_import_sends_lead_created_for_each_row_in_the_files_order(hook_server, receiver):
    happ = hook_server.new_app()
    w = create_webhook(happ, receiver.url())
    r = import_csv(happ, "name,value\r\nfirst,1\r\nsecond,2\r\nthird,3\r\n")
    assert_status(r, 200)
    check_created(happ, receiver.wait_for(3), w["attributes"]["secret"], ["first", "second", "third"])


def test_a_refused_import_sends_nothing_and_mode_valid_only_the_created_rows(hook_server, receiver):
    happ = hook_server.new_app()
    w = create_webhook(happ, receiver.url())
    r = import_csv(happ, "name,value\r\nfine,1\r\nbad,not money\r\n")
    assert_status(r, 422)
    r = import_csv(happ, "name,value\r\ngood one,1\r\nbad,not money\r\ngood two,2\r\n", mode="valid")
    assert_status(r, 200)
    assert body_json(r)["meta"]["created"] == 2
    # A lead created after both: events go out in order per webhook, so
    # anything the refused import had recorded would come before it.
    happ.create_lead(name="after")
    got = receiver.wait_for(3)
    check_created(happ, got, w["attributes"]["secret"], ["good one", "good two", "after"])


def test_crmd_import_records_the_events_a_serving_server_sends(hook_server, receiver, tmp_path):
    happ = hook_server.new_app()
    w = create_webhook(happ, receiver.url())
    f = tmp_path / "leads.csv"
    f.write_text("name,value\r\nshell one,1\r\nbad,x\r\nshell two,2\r\n")
    run = [crmd_bin(), "import", "--app", happ.key, "--db", hook_server.db_url]
    p = subprocess.run([*run, f], capture_output=True, timeout=60)
    assert p.returncode == 1, p.stderr  # mode all: nothing imported, nothing sent
    p = subprocess.run([*run, "--mode", "valid", f], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    happ.create_lead(name="served")
    got = receiver.wait_for(3)
    check_created(happ, got, w["attributes"]["secret"], ["shell one", "shell two", "served"])
