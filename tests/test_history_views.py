"""History pages through the Flask test client: list, diff (inline and side by side), revision,
restore."""

from __future__ import annotations

import re

import pytest

from wiki import history as history_module
from wiki.views import history as history_views

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def app(app):
    """The app with history attached (a no-op once ``create_app`` does it itself)."""
    if "history" not in app.extensions:
        history_module.init_app(app)
        app.extensions["wiki"].sync(full=True)  # the start-up sync history would have seen
    if "history" not in app.blueprints:
        app.register_blueprint(history_views.bp)
    return app


@pytest.fixture
def wiki(app):
    return app.extensions["wiki"]


def edit(wiki, body: str, author: str | None = "Ana <ana@example.com>", message: str = "Edit"):
    doc = wiki.get("PM-1")
    return wiki.update("PM-1", doc.front_matter, body, doc.revision, author=author,
                       message=message)


@pytest.fixture
def saves(wiki):
    """Three saves of PM-1; the second puts a script tag in the body."""
    original = wiki.get("PM-1")
    return [
        original,
        edit(wiki, original.body + "\nFirst.\n", message="Add first"),
        edit(wiki, original.body + f"\nFirst.\n{SCRIPT}\n", author="Bo <bo@example.com>",
             message="Add script"),
        edit(wiki, original.body + f"\nFirst, reworded.\n{SCRIPT}\n", message="Reword"),
    ]


def test_history_page_lists_revisions_with_a_compare_form(client, saves):
    response = client.get("/postmortems/PM-1/history")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for message in ("Add first", "Add script", "Reword", "(imported from disk)"):
        assert message in html
    assert "Bo &lt;bo@example.com&gt;" in html
    for doc in saves:
        assert doc.revision[:8] in html
    assert '<form method="get" action="/postmortems/PM-1/diff">' in html
    assert len(re.findall(r'name="from"', html)) == 4
    assert len(re.findall(r'name="to"', html)) == 4
    checked_to = re.search(r'name="to" value="(\w+)"[^>]*checked', html)
    checked_from = re.search(r'name="from" value="(\w+)"[^>]*checked', html)
    assert checked_to.group(1) == saves[-1].revision
    assert checked_from.group(1) == saves[-2].revision


def test_history_urls_are_canonical(client, saves):
    response = client.get("/postmortem/pm-1/history")
    assert response.status_code == 301
    assert response.headers["Location"] == "/postmortems/PM-1/history"
    response = client.get("/postmortem/pm-1/diff?mode=side")
    assert response.headers["Location"] == "/postmortems/PM-1/diff?mode=side"


@pytest.mark.parametrize("mode", ["inline", "side"])
def test_diff_page_escapes_content(client, saves, mode):
    first, last = saves[1], saves[-1]
    response = client.get(f"/postmortems/PM-1/diff?from={first.revision}&to={last.revision}"
                          f"&mode={mode}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert f"diff--{mode}" in html
    assert "reworded" in html
    assert "<ins>, reworded</ins>" in html


def test_diff_defaults_to_the_latest_change(client, saves):
    html = client.get("/postmortems/PM-1/diff").get_data(as_text=True)
    assert saves[-1].revision[:8] in html and saves[-2].revision[:8] in html
    assert "<ins>, reworded</ins>" in html


def test_diff_of_a_revision_with_itself(client, saves):
    rev = saves[1].revision
    html = client.get(f"/postmortems/PM-1/diff?from={rev}&to={rev}").get_data(as_text=True)
    assert "No differences" in html


def test_diff_rejects_unknown_modes_and_revisions(client, saves):
    assert client.get("/postmortems/PM-1/diff?mode=html").status_code == 400
    response = client.get(f"/postmortems/PM-1/diff?from={'0' * 20}&to={saves[1].revision}")
    assert response.status_code == 404
    assert "has no revision" in response.get_data(as_text=True)
    assert client.get("/postmortems/PM-9/history").status_code == 404
    assert client.get("/postmortems/PM-1/revisions/nothere").status_code == 404
    assert client.get("/postmortems/PM-1/revisions/abc").status_code == 404


def test_revision_page_shows_the_raw_text_escaped(client, saves):
    rev = saves[2].revision
    response = client.get(f"/postmortems/PM-1/revisions/{rev}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;" in html
    assert "id: PM-1" in html
    assert "Restore revision" in html
    assert f'name="base_revision" value="{saves[-1].revision}"' in html
    assert 'name="csrf_token"' not in html

    current = client.get(f"/postmortems/PM-1/revisions/{saves[-1].revision[:10]}")
    assert "This is the current revision" in current.get_data(as_text=True)


def test_raw_revision_is_plain_text(client, saves):
    response = client.get(f"/postmortems/PM-1/revisions/{saves[2].revision}/raw")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert SCRIPT.encode() in response.data


def test_restore_form_carries_a_csrf_token_when_the_app_has_one(app, client, saves):
    app.jinja_env.globals["csrf_token"] = lambda: "token-123"
    html = client.get(f"/postmortems/PM-1/revisions/{saves[1].revision}").get_data(as_text=True)
    assert '<input type="hidden" name="csrf_token" value="token-123">' in html


def test_restore_saves_the_old_revision_as_a_new_one(client, wiki, saves):
    first = saves[1]
    response = client.post(f"/postmortems/PM-1/revisions/{first.revision}/restore",
                           data={"base_revision": saves[-1].revision})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/postmortems/PM-1")
    with client.session_transaction() as session:
        assert session["_flashes"] == [
            ("success", f"Restored revision {first.revision[:8]} of PM-1 as a new revision.")]
    current = wiki.get("PM-1")
    assert current.body == first.body
    assert current.revision == first.revision
    html = client.get("/postmortems/PM-1/history").get_data(as_text=True)
    assert f"Restore revision {first.revision[:8]}" in html


def test_restore_refuses_a_stale_page(client, wiki, saves):
    response = client.post(f"/postmortems/PM-1/revisions/{saves[1].revision}/restore",
                           data={"base_revision": saves[2].revision})
    assert response.status_code == 303
    assert response.headers["Location"] == "/postmortems/PM-1/history"
    with client.session_transaction() as session:
        category, message = session["_flashes"][0]
    assert category == "error" and "nothing was restored" in message
    assert wiki.get("PM-1").revision == saves[-1].revision


def test_restore_of_an_unknown_revision_is_404(client, saves):
    response = client.post(f"/postmortems/PM-1/revisions/{'f' * 20}/restore")
    assert response.status_code == 404
    assert client.get(f"/postmortems/PM-1/revisions/{saves[1].revision}/restore").status_code \
        == 405


def test_authors_and_messages_are_escaped(client, wiki):
    edit(wiki, "Body\n", author='<img src=x onerror="alert(1)">', message="<b>bold</b>")
    html = client.get("/postmortems/PM-1/history").get_data(as_text=True)
    assert "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_signature_history(client, wiki):
    response = client.get("/signatures/SIG-1/history")
    assert response.status_code == 200
    assert "(imported from disk)" in response.get_data(as_text=True)
