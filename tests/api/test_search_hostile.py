"""Hostile searches (extensions.md, "Finding leads", "Cursors"): terms that
carry the index's own syntax (quotes, stars, carets, NEAR, AND/OR, column
filters), characters whose folding changes their length, characters of the
planes the index uses for its app tokens, and bytes that are not text; each
is a 422 or exactly the leads a plain substring filter keeps (findref.py),
never another app's. A search's cursor is refused (422) once any character
of it changes, for another app, another term or a list without the
search. Trashed and purged leads never match; recovered and renamed ones
match as they are now."""

import pytest

from apiutil import assert_status, body_json
from findref import lead_keeps, sort_leads

NO_FACTS = {"overdue": False, "open": False}

NAMES = ['abc def', 'abc AND def', '"quoted" name', 'a"b c', 'Straße', 'STRASSE', 'İİİ tr', 'iii x',
         'e\u0301e', 'ée', 'x' * 100, 'ΣΣΣ', 'σςσ', 'ǅǅǅ', 'ﬃﬃ', 'ffiffi', '%%% ___', "'''", '\\\\\\',
         'name_f:abc', 'NEAR(abc def)', '\ufffd\ufffd\ufffd']

TERMS = ['"', '""x', 'a"b', 'abc*', '*ab', '^abc', 'NEAR(abc def)', 'abc AND def', 'abc OR def', '(abc)',
         'name_f:abc', 'app_f:abc', '-abc', '{name_f}:abc', 'ßßß', 'SSS', 'İİİ', 'iii', 'i̇i̇', 'e\u0301e',
         'ée', 'x' * 100, 'ab\u00e9', '\U00010000\U00010000\U00010001', '\U00010000\U00010000',
         '\U0010ffff' * 3, '\ufffd\ufffd\ufffd', '   abc  ', '\\\\\\', '%%%', '___', "'''", 'NOT', 'AND',
         '\u00e9\u00e9', 'ﬃ', 'ﬃﬃ', 'Straße', 'ΣΣΣ', 'σςσ', 'ǅǅǅ']


def import_names(app, names):
    text = "name,stage,source\r\n" + "".join('"' + n.replace('"', '""') + '",new,src\r\n' for n in names)
    r = app.post("/leads/import", raw=text.encode(), content_type="text/csv")
    assert_status(r, 200)


def by_cursor(app, params, records):
    ids, q = [], dict(params, records=records)
    for _ in range(100):
        body = body_json(app.get("/leads/", params=q))
        ids += [d["id"] for d in body["data"]]
        if body["meta"]["nextCursor"] is None:
            return ids
        q = dict(params, records=records, cursor=body["meta"]["nextCursor"])
    return ids


def expected(app, params):
    leads = app.list_all(records=100)
    keep = [lead for lead in leads if lead_keeps(lead["attributes"], params, NO_FACTS)]
    return [lead["id"] for lead in sort_leads(keep, params.get("sort"))]


def test_terms_with_the_index_syntax_match_as_plain_text_and_only_the_apps(app, app2):
    import_names(app, NAMES)
    # The other app holds the same names, and one of the characters its token is made of.
    import_names(app2, NAMES + ['\U00010000\U00010000\U00010001 other'])
    for term in TERMS:
        want = expected(app, {"search": term})
        r = app.get("/leads/", params={"search": term, "records": 100})
        assert_status(r, 200)
        body = body_json(r)
        assert [d["id"] for d in body["data"]] == want, repr(term)
        assert body["meta"]["totalRecords"] == len(want), repr(term)
    for term in ['x' * 101, 'abc\x00']:
        assert_status(app.get("/leads/", params={"search": term}), 422)


@pytest.mark.parametrize("raw", ['%ff%fe%fd', '%00%00%00', 'abc%00', '%c3%9f%c3', '%e2%82', '%f4%90%80%80abc',
                                 '%ed%a0%80aa'])
def test_bytes_that_are_not_text_are_refused(app, raw):
    assert_status(app.get("/leads/?search=" + raw), 422)


def test_a_search_cursor_changed_or_moved_is_refused(app, app2):
    import_names(app, [f"abcname {i}" for i in range(30)])
    import_names(app2, [f"abcname {i}" for i in range(30)])
    cursor = body_json(app.get("/leads/", params={"search": "abcname", "records": 5}))["meta"]["nextCursor"]
    plain = body_json(app.get("/leads/", params={"records": 5}))["meta"]["nextCursor"]
    assert cursor and plain
    assert_status(app2.get("/leads/", params={"search": "abcname", "records": 5, "cursor": cursor}), 422)
    assert_status(app.get("/leads/", params={"search": "abcname", "records": 5, "cursor": plain}), 422)
    assert_status(app.get("/leads/", params={"records": 5, "cursor": cursor}), 422)
    assert_status(app.get("/leads/", params={"search": "abcnam", "records": 5, "cursor": cursor}), 422)
    for i in range(len(cursor)):
        for c in "A_9":
            changed = cursor[:i] + c + cursor[i + 1:]
            if changed != cursor:
                r = app.get("/leads/", params={"search": "abcname", "records": 5, "cursor": changed})
                assert r.status_code == 422, (i, c, r.status_code)


def test_trashed_purged_recovered_and_renamed_leads_in_a_search(app, app2):
    import_names(app, [f"trashterm {i}" for i in range(20)])
    import_names(app2, [f"trashterm {i}" for i in range(20)])
    ids = [lead["id"] for lead in app.list_all(records=100)]
    for i in ids[:6]:
        assert app.delete(f"/leads/{i}").status_code in (200, 204)
    assert_status(app.put(f"/leads/{ids[0]}/recover"), 200)
    assert_status(app.put(f"/leads/{ids[1]}/recover"), 200)
    assert app.delete(f"/leads/trash/{ids[2]}").status_code in (200, 204)
    assert_status(app.put(f"/leads/{ids[10]}", {"lead": {"name": "renamed away"}}), 200)
    assert_status(app.put(f"/leads/{ids[11]}", {"lead": {"source": "trashterm src"}}), 200)
    for params in ({"search": "trashterm"}, {"search": "trashterm", "sort": "created_at"},
                   {"search": "renamed"}):
        want = expected(app, params)
        assert by_cursor(app, params, 3) == want, params
        assert body_json(app.get("/leads/", params=dict(params, records=100)))["meta"]["totalRecords"] == len(want)
    got = by_cursor(app, {"search": "trashterm"}, 100)
    assert ids[0] in got and ids[1] in got and not set(ids[2:6]) & set(got) and ids[10] not in got
