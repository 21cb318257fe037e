"""wiki.auth: people signed in by a trusted proxy (WIKI_AUTH_HEADER) author their revisions;
browser writes without the header are refused; API, Slack and webhooks keep their own auth."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.test_editor_views import edit_form, html_of
from wiki.auth import author_from

HEADER = "X-Forwarded-Email"


@pytest.fixture
def app(content_dir, tmp_path):
    return make_app(content_dir, tmp_path / "data", AUTH_HEADER=HEADER, HISTORY="files")


def signed_in(email="ana@example.com"):
    return {HEADER: email}


@pytest.mark.parametrize("value, author", [
    ("ana@example.com", "ana <ana@example.com>"),
    ("  Ana   Lima ", "Ana Lima"),
    ("", None),
    (None, None),
    ("x" * 500, "x" * 200),
    ("Ana\x00Lima", "Ana Lima"),
])
def test_author_from_the_header(value, author):
    assert author_from(value) == author


def test_the_signed_in_person_authors_the_revision(app):
    client = app.test_client()
    page = html_of(client.get("/postmortems/PM-1/edit", headers=signed_in()))
    assert "Signed in as" in page and "ana &lt;ana@example.com&gt;" in page
    assert 'name="author"' not in page  # nobody is asked to type a name
    data = edit_form(client)
    data["title"] = "Checkout latency after a cache flush, revisited"
    data["message"] = "Retitled"
    data["author"] = "Someone Else"  # a forged form field does not count
    response = client.post("/postmortems/PM-1/edit", data=data, headers=signed_in())
    assert response.status_code == 303
    newest = app.extensions["history"].list("PM-1")[0]
    assert newest.author.startswith("ana")
    assert "ana@example.com" in newest.author
    assert "Someone Else" not in newest.author


def test_a_browser_write_without_the_header_is_refused_and_changes_nothing(app):
    client = app.test_client()
    before = app.extensions["wiki"].get("PM-1")
    data = edit_form(client)
    data["title"] = "Changed around the proxy"
    response = client.post("/postmortems/PM-1/edit", data=data)
    assert response.status_code == 401
    assert HEADER in html_of(response)
    assert app.extensions["wiki"].get("PM-1").revision == before.revision
    assert client.get("/postmortems/PM-1/edit").status_code == 200  # reading stays open


def test_api_writes_keep_their_own_authentication(app):
    client = app.test_client()
    response = client.post("/api/v1/documents", json={
        "kind": "postmortem", "front_matter": {"title": "Made by a bot"}, "body": ""})
    assert response.status_code == 201  # no token exists yet: API writes are open


def test_without_the_setting_people_type_their_name(content_dir, tmp_path):
    client = make_app(content_dir, tmp_path / "data").test_client()
    page = html_of(client.get("/postmortems/PM-1/edit", headers=signed_in()))
    assert 'name="author"' in page and "Signed in as" not in page


def test_a_new_postmortem_lists_the_signed_in_person_as_its_author(app):
    client = app.test_client()
    response = client.post("/new", data={"template": "postmortem-full", "title": "Queue stalls"},
                           headers=signed_in())
    assert response.status_code in (302, 303)
    ident = response.headers["Location"].split("/")[2]
    assert app.extensions["wiki"].get(ident).front_matter["authors"] == ["ana"]
