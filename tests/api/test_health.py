"""GET /healthz and GET /readyz: no credentials, never rate limited, query
strings ignored; /readyz answers 503 with the reason while the database is
not there (PostgreSQL stopped: test_postgres.py)."""

import os

import requests

import conftest
from apiutil import assert_error, assert_status, body_json


def test_healthz_and_readyz_need_no_credentials(anon):
    r = anon.get("/healthz?x=1")
    assert_status(r, 200)
    assert body_json(r) == {"status": "ok"}
    r = anon.get("/readyz?verbose=1&x")
    assert_status(r, 200)
    assert body_json(r) == {"status": "ready", "checks": {"database": "ok", "writer": "ok"}}
    assert r.headers["X-Request-Id"]
    r = anon.request("HEAD", "/readyz", auth=False)
    assert r.status_code == 200 and r.content == b""


def test_probes_are_never_rate_limited(make_server, monkeypatch):
    monkeypatch.setenv("CRMD_RATE_LIMIT", "1:1")
    monkeypatch.setenv("CRMD_AUTH_LIMIT", "0.1:1")
    srv = make_server(threads=1)
    app = srv.new_app()
    # The failed-authentication allowance of this address is used up...
    forged = app.with_creds(token=app.token[:-4] + "AAAA")
    for _ in range(3):
        forged.get("/leads/")
    assert forged.get("/leads/").status_code == 429
    # ... and the app's too.
    app.get("/leads/")
    assert app.get("/leads/").status_code == 429
    with requests.Session() as s:
        for path in ("/healthz", "/readyz") * 30:
            assert s.get(srv.base_url + path, headers=app.headers).status_code == 200, path


def test_readyz_says_when_the_sqlite_file_is_gone(make_server, tmp_path):
    path = tmp_path / "ready.db"
    srv = make_server(threads=1, db_url=f"sqlite:{path}")
    anon = srv.client()
    assert_status(anon.get("/readyz"), 200)
    moved = tmp_path / "elsewhere.db"
    os.rename(path, moved)
    try:
        r = requests.get(srv.base_url + "/readyz", timeout=10)
        assert_error(r, 503, "service_unavailable")
        err = body_json(r)
        assert "database file" in err["errors"][0]["detail"]
        assert err["meta"]["requestId"] == r.headers["X-Request-Id"]
        assert int(r.headers["Retry-After"]) >= 1
        assert_status(anon.get("/healthz"), 200)  # alive all the same
    finally:
        os.rename(moved, path)
    assert_status(anon.get("/readyz"), 200)
    if os.geteuid() != 0:  # root reads any file whatever its mode
        os.chmod(path, 0)
        try:
            assert_error(requests.get(srv.base_url + "/readyz", timeout=10), 503, "service_unavailable")
        finally:
            os.chmod(path, 0o600)


def test_a_server_is_taken_as_started_only_once_it_listens_on_its_own_port(make_server, monkeypatch):
    """The suite's servers (in two xdist workers at once) each take a port
    free_port found free; another worker's crmd may take it first. The new
    one then cannot listen and exits, and the answer on that port comes
    from the other: the suite must try another port, never talk to that
    one as its own."""
    first = make_server()
    real = conftest.free_port
    ports = iter([first.port])
    monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or real())
    second = make_server()
    assert second.port != first.port
    assert second.proc.poll() is None
    assert conftest.listens_on(second.proc.pid, second.port)
    assert "in use" in second.stderr_text().lower(), "its first try met the other's port"
