"""The board's files (GET / and GET /board/{file}): compiled into the
binary, served without credentials under a strict Content-Security-Policy,
with ETags, long-lived caching for the hashed files, and gzip for clients
that take it. The app itself is tested in a browser (tests/board)."""

import gzip
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from apiutil import REPO_ROOT, assert_error, assert_status, check_raw, crmd_bin, recv_answer, run_sh_lines
from conftest import READY_TIMEOUT, free_port

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PLAIN = {"Accept-Encoding": "identity"}


def files(anon):
    page = anon.get("/", headers=PLAIN).text
    names = re.findall(r'(?:src|href)="/board/([^"]+)"', page)
    assert sorted(n.rsplit(".", 1)[1] for n in names) == ["css", "js", "svg"], names
    return names


def test_the_page_is_html_under_a_strict_policy(anon):
    r = anon.get("/", headers=PLAIN)
    assert_status(r, 200)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Content-Encoding" not in r.headers
    assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["ETag"])
    # No inline script, handler or style: the policy would refuse them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert not re.search(r"\s(style|on[a-z]+)=", r.text)
    # The query string is the app's (its view and filters), not the server's.
    assert anon.get("/?view=myday&stage=new&bogus=1", headers=PLAIN).content == r.content


def test_the_page_and_files_revalidate_by_etag(anon):
    for path in ["/"] + [f"/board/{n}" for n in files(anon)]:
        r = anon.get(path, headers=PLAIN)
        assert_status(r, 200)
        # The suite's client takes any 3xx for a redirect: requests itself, then.
        again = requests.get(anon.base_url + path, timeout=10,
                             headers={**PLAIN, "If-None-Match": f'W/"x", {r.headers["ETag"]}'})
        assert_status(again, 304)
        assert again.content == b""
        assert again.headers["ETag"] == r.headers["ETag"]
        assert again.headers["Content-Security-Policy"] == CSP
        assert_status(anon.get(path, headers={**PLAIN, "If-None-Match": '"0123"'}), 200)


def test_files_are_named_by_content_and_kept_for_a_year(anon):
    types = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
             "svg": "image/svg+xml"}
    for name in files(anon):
        assert re.fullmatch(r"[a-z]+\.[0-9a-f]{12}\.(js|css|svg)", name), name
        r = anon.get(f"/board/{name}", headers=PLAIN)
        assert_status(r, 200)
        assert r.headers["Content-Type"] == types[name.rsplit(".", 1)[1]]
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["Content-Security-Policy"] == CSP
        assert len(r.content) == int(r.headers["Content-Length"])


@pytest.mark.parametrize("accept,compressed", [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("GZIP", True),
    ("gzip;q=0", False), ("gzip; q=0.000", False), ("br", False), ("identity", False)])
def test_gzip_when_the_client_takes_it(anon, accept, compressed):
    plain = anon.get("/", headers=PLAIN)
    r = anon.get("/", headers={"Accept-Encoding": accept})
    assert_status(r, 200)
    assert r.headers["Vary"] == "Accept-Encoding"
    assert (r.headers.get("Content-Encoding") == "gzip") == compressed
    # requests undoes the gzip: the same page either way, under its own tag.
    assert r.content == plain.content
    assert (r.headers["ETag"] != plain.headers["ETag"]) == compressed


def test_the_gzip_form_is_gzip_of_the_page(server):
    request = b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        status, headers, body = check_raw(f"127.0.0.1:{server.port}", request, recv_answer(s))
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"<!doctype html>")


def test_unknown_files_and_methods(anon, app):
    for c in (anon, app):
        assert_error(c.get("/board/app.js"), 404, "not_found")
        assert_error(c.get("/board/../index.html"), 404, "not_found")
        assert_error(c.get("/board"), 404, "not_found")
        assert_error(c.get("/board/x/y"), 404, "not_found")
        r = c.post("/", {"x": 1})
        assert_error(r, 405, "method_not_allowed")
        assert r.headers["Allow"] == "GET, HEAD"
        assert_error(c.get("//"), 404, "not_found")


def test_head_sends_headers_only(anon):
    r = anon.request("HEAD", "/", headers=PLAIN)
    assert_status(r, 200)
    assert r.content == b""
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_make_run_prints_a_link_that_signs_in(tmp_path):
    """scripts/run.sh (make run): below the three exports, the board's link
    carrying the key and a token in its fragment; both work on the API."""
    port = free_port()
    env = dict(os.environ, CRMD_LISTEN=f"127.0.0.1:{port}", CRMD_DB=f"sqlite:{tmp_path}/crmd.db")
    p = subprocess.Popen([str(REPO_ROOT / "scripts" / "run.sh"), crmd_bin()], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = run_sh_lines(p)
        exports = dict(x[len("export "):].split("=", 1) for x in lines if x.startswith("export "))
        m = re.fullmatch(rf"http://127\.0\.0\.1:{port}/#app=(pk_live_\w+)&token=([\w.-]+)", lines[-1])
        assert m, lines[-1]
        assert m.group(1) == exports["BLOCKS_API_KEY"] and m.group(2) == exports["BLOCKS_AUTH_TOKEN"]
        deadline = time.monotonic() + READY_TIMEOUT  # crmd serve starts after the lines are printed
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/leads/summary", timeout=5,
                                 headers={"Authorization": f"Bearer {m.group(2)}", "AppId": m.group(1)})
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and p.poll() is None, "crmd serve did not start"
                time.sleep(0.05)
        assert_status(r, 200)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
