"""wiki/views/similar.py: the API, the panel on pages and in the editor, link and not related."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import make_app

from wiki import documents as d

RELAY_DRAFT = "retries from the notification service kept every worker busy waiting on storage"


def results(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["results"]


def found(response) -> list[str]:
    return [r["id"] for r in results(response)]


# --------------------------------------------------------------------------------------------
# POST /api/v1/similar


def test_similar_api_answers_with_ids_titles_urls_scores_and_reasons(demo_client):
    items = results(demo_client.post("/api/v1/similar", json={"text": RELAY_DRAFT}))
    assert items[0]["id"] == "PM-3"
    assert len(items) <= 10
    for item in items:
        assert {"id", "title", "url", "score", "reasons"} <= set(item)
        assert item["url"].startswith("http://localhost/")
        assert 0 < item["score"] <= 1
        assert item["reasons"] and all(r["text"] and r["kind"] for r in item["reasons"])
    assert items[0]["url"].endswith("/postmortems/PM-3/email-relay-restart-loop-after-object-"
                                    "store-slowdown")


def test_similar_api_filters(demo_client):
    post = lambda **body: demo_client.post("/api/v1/similar", json={"text": RELAY_DRAFT, **body})  # noqa: E731
    assert "PM-3" not in found(post(exclude=["PM-3", "PM-404", "bogus", 7]))
    assert all(i.startswith("SIG-") for i in found(post(kind="signature")))
    assert all(i.startswith("PM-") for i in found(post(kind="postmortem")))
    assert len(found(post(limit=2))) == 2
    assert len(found(post(limit=500))) <= 50  # capped
    assert "PM-3" not in found(post(before="2023-06-14"))
    assert "PM-3" in found(post(before="2023-06-15"))
    assert found(post(before="1999-01-01")) == []


@pytest.mark.parametrize("body, status, words", [
    ({"text": ""}, 400, "empty"),
    ({"text": "   "}, 400, "empty"),
    ({}, 400, "text"),
    ({"text": 42}, 400, "string"),
    ({"text": RELAY_DRAFT, "before": "next friday"}, 400, "ISO 8601"),
    ({"text": RELAY_DRAFT, "before": 20230614}, 400, "ISO 8601"),
    ({"text": RELAY_DRAFT, "kind": "incident"}, 400, "kind"),
    ({"text": RELAY_DRAFT, "limit": "ten"}, 400, "limit"),
    ({"text": RELAY_DRAFT, "exclude": "PM-3"}, 200, None),
    ({"text": RELAY_DRAFT, "exclude": {"a": 1}}, 400, "exclude"),
    ([1, 2], 400, "object"),
])
def test_similar_api_bad_input(demo_client, body, status, words):
    response = demo_client.post("/api/v1/similar", json=body)
    assert response.status_code == status
    if words:
        assert words in response.get_json()["error"]


def test_similar_api_wants_json(demo_client):
    response = demo_client.post("/api/v1/similar", data={"text": RELAY_DRAFT})
    assert response.status_code == 415
    response = demo_client.post("/api/v1/similar", data="{nope",
                                content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.get_json()["error"]


def test_similar_api_caps_a_5_mb_text(demo_client):
    text = (RELAY_DRAFT + "\n") * 66_000
    assert len(text) > 5_000_000
    response = demo_client.post("/api/v1/similar", json={"text": text, "limit": 3})
    assert found(response)[0] == "PM-3"
    assert response.get_json()["messages"]


def test_similar_api_never_fails_on_odd_text(demo_client, naughty_strings):
    for text in naughty_strings[:300]:
        response = demo_client.post("/api/v1/similar", json={"text": text})
        assert response.status_code in (200, 400), text


# --------------------------------------------------------------------------------------------
# GET /api/v1/documents/<id>/similar


def test_document_similar_api(demo_client):
    items = results(demo_client.get("/api/v1/documents/pm-3/similar?limit=4"))
    assert 0 < len(items) <= 4
    assert "PM-3" not in [i["id"] for i in items]
    assert all(i["reasons"] for i in items)
    sigs = found(demo_client.get("/api/v1/documents/PM-3/similar?kind=signature"))
    assert sigs and all(i.startswith("SIG-") for i in sigs)
    assert found(demo_client.get("/api/v1/documents/PM-3/similar?before=1999-01-01")) == []


def test_document_similar_api_errors(demo_client):
    response = demo_client.get("/api/v1/documents/PM-404/similar")
    assert response.status_code == 404 and "error" in response.get_json()
    response = demo_client.get("/api/v1/documents/PM-3/similar?before=soon")
    assert response.status_code == 400 and "before" in response.get_json()["error"]
    response = demo_client.get("/api/v1/documents/PM-3/similar?limit=-x")
    assert response.status_code == 400


# --------------------------------------------------------------------------------------------
# The panel


def panel(html: str) -> str:
    start = html.index('id="similar-panel"')
    return html[start:html.index("</section>", start)]


@pytest.mark.parametrize("url", ["/postmortems/PM-3", "/signatures/SIG-1", "/postmortems/PM-11"])
def test_every_document_page_has_the_panel(demo_client, url):
    html = demo_client.get(url, follow_redirects=True).get_data(as_text=True)
    part = panel(html)
    assert "Similar incidents" in part
    items = re.findall(r'class="similar__item" data-id="([A-Z]+-\d+)"', part)
    assert 1 <= len(items) <= 5
    assert "similar__score" in part and "similar__reasons" in part
    assert "/similar/link" in part and "/similar/dismiss" in part


def test_the_panel_of_a_lonely_document(client):
    html = client.get("/postmortems/PM-1", follow_redirects=True).get_data(as_text=True)
    assert "Nothing similar found" in panel(html)  # its one neighbour is linked already


def test_the_editor_has_the_panel_and_its_script(demo_client):
    html = demo_client.get("/postmortems/PM-3/edit").get_data(as_text=True)
    assert 'id="similar-panel"' in html and "js/similar.js" in html
    part = panel(html)
    assert "data-draft-url" in part
    assert "<form" not in part  # it sits inside the editor's form: buttons only
    assert 'type="button" data-action="link"' in part


def test_the_draft_fragment_follows_the_text(demo_client):
    response = demo_client.post("/similar/draft", data={
        "kind": "postmortem", "title": "Mail stuck", "body": f"## Summary\n\n{RELAY_DRAFT}\n",
        "tl_time": ["09:18"], "tl_event": ["notification-service logs ReadTimeout"],
        "services": "mail-relay", "doc_id": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.findall(r'data-id="([A-Z]+-\d+)"', html)[0] == "PM-3"
    assert "Save the document to link" in html
    empty = demo_client.post("/similar/draft", data={"kind": "postmortem", "body": ""})
    assert "show up here as you type" in empty.get_data(as_text=True)


def test_the_draft_fragment_of_a_saved_document_leaves_it_out(demo_client):
    html = demo_client.post("/similar/draft", data={
        "kind": "postmortem", "title": "x", "body": RELAY_DRAFT, "related": "PM-9",
        "doc_id": "PM-3"}).get_data(as_text=True)
    shown = re.findall(r'data-id="([A-Z]+-\d+)"', html)
    assert shown and "PM-3" not in shown and "PM-9" not in shown
    assert 'data-url="/postmortems/PM-3/similar/link"' in html


# --------------------------------------------------------------------------------------------
# Link and not related


def _fm(app, ident: str) -> dict:
    content = Path(app.config["CONTENT_DIR"])
    path = next(content.glob(f"*/{ident}-*.md"))
    return d.parse(path.read_bytes(), path=str(path.relative_to(content))).front_matter


@pytest.fixture
def csrf_app(tmp_path, demo_copy):
    import shutil

    content = tmp_path / "content"
    shutil.copytree(demo_copy, content)
    return make_app(content, tmp_path / "data", WTF_CSRF_ENABLED=True)


def _token(client, url: str) -> str:
    html = client.get(url, follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', panel(html)).group(1)


def test_link_from_a_page_writes_both_files_and_shows_as_related(csrf_app):
    client = csrf_app.test_client()
    target = re.findall(r'data-id="([A-Z]+-\d+)"', panel(client.get(
        "/postmortems/PM-3", follow_redirects=True).get_data(as_text=True)))[0]
    refused = client.post("/postmortems/PM-3/similar/link", data={"target": target})
    assert refused.status_code == 400
    token = _token(client, "/postmortems/PM-3")
    response = client.post("/postmortems/PM-3/similar/link",
                           data={"target": target, "csrf_token": token,
                                 "next": "/postmortems/PM-3"})
    assert response.status_code == 303 and response.headers["Location"] == "/postmortems/PM-3"
    assert target in _fm(csrf_app, "PM-3")["related"]
    assert "PM-3" in _fm(csrf_app, target)["related"]
    html = client.get("/postmortems/PM-3", follow_redirects=True).get_data(as_text=True)
    assert f'data-id="{target}"' not in panel(html)  # a link now, not a suggestion
    assert "linked to" in html  # the flash
    other = client.get(f"/{target}", follow_redirects=True).get_data(as_text=True)
    assert "Backlinks" in other and "PM-3" in other


def test_link_refuses_an_outside_next(demo_client):
    response = demo_client.post("/postmortems/PM-3/similar/link",
                                data={"target": "PM-4", "next": "https://evil.example/"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/postmortems/PM-3")


def test_dismiss_hides_the_suggestion_for_good(demo_app, demo_client):
    target = found(demo_client.get("/api/v1/documents/PM-3/similar"))[0]
    response = demo_client.post("/postmortems/PM-3/similar/dismiss", data={"target": target})
    assert response.status_code == 303
    assert _fm(demo_app, "PM-3")["not_related"] == [target]
    assert target not in found(demo_client.get("/api/v1/documents/PM-3/similar?limit=50"))
    html = demo_client.get("/postmortems/PM-3", follow_redirects=True).get_data(as_text=True)
    assert f'data-id="{target}"' not in panel(html)
    assert "not_related" in html  # shown with the other fields
    restarted = make_app(Path(demo_app.config["CONTENT_DIR"]), Path(demo_app.config["DATA_DIR"]))
    again = restarted.test_client().get("/api/v1/documents/PM-3/similar?limit=50")
    assert target not in found(again)


def test_curating_answers_json_and_one_sided_for_the_editor(demo_app, demo_client):
    response = demo_client.post("/postmortems/PM-3/similar/link",
                                data={"target": "PM-4", "both": "0"},
                                headers={"Accept": "application/json"})
    body = response.get_json()
    assert response.status_code == 200 and body["ok"] and body["target"] == "PM-4"
    assert "PM-3" in _fm(demo_app, "PM-4")["related"]
    assert "PM-4" not in _fm(demo_app, "PM-3")["related"]  # the editor's form carries it


@pytest.mark.parametrize("target, status", [("PM-3", 400), ("PM-404", 404), ("", 400),
                                            ("nonsense", 400)])
def test_curating_bad_targets(demo_client, target, status):
    response = demo_client.post("/postmortems/PM-3/similar/link", data={"target": target},
                                headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.get_json()["error"]


def test_curating_an_unknown_document(demo_client):
    response = demo_client.post("/postmortems/PM-404/similar/dismiss", data={"target": "PM-3"})
    assert response.status_code == 404


def test_curating_with_a_stale_revision(demo_client):
    response = demo_client.post("/postmortems/PM-3/similar/link",
                                data={"target": "PM-4", "base_revision": "0" * 20},
                                headers={"Accept": "application/json"})
    assert response.status_code == 409


def test_page_panel_is_remembered_until_something_changes(demo_app, monkeypatch):
    index = demo_app.extensions["similar"]
    calls = []
    original = index.similar_to
    monkeypatch.setattr(index, "similar_to",
                        lambda doc, **kw: calls.append(doc.id) or original(doc, **kw))
    client = demo_app.test_client()
    first = client.get("/PM-3", follow_redirects=True).get_data(as_text=True)
    second = client.get("/PM-3", follow_redirects=True).get_data(as_text=True)
    assert calls == ["PM-3"] and panel(first) == panel(second)
    demo_app.extensions["wiki"].create("postmortem", {"title": "Relay retries again"},
                                       "## Summary\nRetries from the notification service.")
    client.get("/PM-3", follow_redirects=True)
    assert calls == ["PM-3", "PM-3"]  # a save anywhere changes the index: ranked again
