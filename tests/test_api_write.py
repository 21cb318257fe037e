"""Write API: POST /api/v1/documents and PUT /api/v1/documents/<id>."""

from __future__ import annotations

import pytest

from tests.conftest import make_app


@pytest.fixture
def wiki(app):
    return app.extensions["wiki"]


def create(client, **overrides):
    payload = {"kind": "postmortem",
               "front_matter": {"title": "Search outage", "severity": "SEV2",
                                "services": ["search"]},
               "body": "## Summary\nThe quokka index went read-only.\n"}
    payload.update(overrides)
    return client.post("/api/v1/documents", json=payload)


def test_create_assigns_the_id_and_answers_with_url_and_revision(client, wiki, app):
    response = create(client, front_matter={"id": "PM-77", "title": "Search outage",
                                            "created": "1999-01-01"})
    assert response.status_code == 201
    data = response.get_json()
    assert data["id"] == "PM-2"  # the id in front_matter is ignored
    assert data["url"] == "http://localhost/postmortems/PM-2/search-outage"
    assert data["revision"] and response.headers["ETag"] == f'"{data["revision"]}"'
    assert response.headers["Location"] == "http://localhost/api/v1/documents/PM-2"
    assert data["front_matter"]["status"] == "draft"
    assert data["front_matter"]["created"] != "1999-01-01"
    doc = wiki.get("PM-2")
    assert doc.revision == data["revision"]
    # a revision, and searchable as soon as the response is back
    assert app.extensions["history"].list("PM-2")[0].revision == data["revision"]
    assert "PM-2" in client.get("/search?q=quokka").get_data(as_text=True)
    assert client.get("/api/v1/documents/PM-2").get_json()["body"] == doc.body


def test_create_a_signature_with_author_and_message(client, app):
    response = create(client, kind="signature", author="Ana <ana@example.com>",
                      message="From the matcher",
                      front_matter={"title": "Disk full", "patterns": [
                          {"kind": "literal", "value": "No space left on device"}]})
    assert response.status_code == 201
    ident = response.get_json()["id"]
    assert ident == "SIG-2"
    newest = app.extensions["history"].list(ident)[0]
    assert newest.author == "Ana <ana@example.com>" and newest.message == "From the matcher"


def test_update_with_if_match(client, wiki):
    current = client.get("/api/v1/documents/PM-1")
    etag = current.headers["ETag"]
    data = current.get_json()
    fm = {**data["front_matter"], "title": "Checkout latency, revisited"}
    response = client.put("/api/v1/documents/PM-1", json={"front_matter": fm,
                                                          "body": data["body"] + "\nMore.\n"},
                          headers={"If-Match": etag})
    assert response.status_code == 200
    new = response.get_json()
    assert new["revision"] != data["revision"]
    assert response.headers["ETag"] == f'"{new["revision"]}"'
    assert wiki.get("PM-1").title == "Checkout latency, revisited"
    # a bare revision (no quotes) works as well
    again = client.put("/api/v1/documents/PM-1", json={"front_matter": fm, "body": "x\n"},
                       headers={"If-Match": new["revision"]})
    assert again.status_code == 200


def test_stale_revision_is_412_with_the_current_one(client, wiki):
    old = client.get("/api/v1/documents/PM-1").get_json()
    body = {"front_matter": old["front_matter"], "body": "first\n"}
    first = client.put("/api/v1/documents/PM-1", json=body,
                       headers={"If-Match": old["revision"]})
    assert first.status_code == 200
    response = client.put("/api/v1/documents/PM-1", json={**body, "body": "second\n"},
                          headers={"If-Match": f'"{old["revision"]}"'})
    assert response.status_code == 412
    data = response.get_json()
    assert data["current_revision"] == first.get_json()["revision"]
    assert "changed since" in data["error"]
    assert wiki.get("PM-1").body == "first\n"


def test_missing_if_match_is_428(client):
    response = client.put("/api/v1/documents/PM-1", json={"front_matter": {"title": "x"}})
    assert response.status_code == 428
    assert "If-Match" in response.get_json()["error"]
    assert response.get_json()["current_revision"]


def test_validation_errors_are_422_listing_each_field(client, wiki):
    response = create(client, front_matter={"severity": "SEV9",
                                            "started_at": "2023-05-02T10:00:00+00:00",
                                            "resolved_at": "2023-05-01T10:00:00+00:00"})
    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {"title", "severity", "resolved_at"}
    assert "SEV9" in fields["severity"]

    current = wiki.get("PM-1")
    response = client.put("/api/v1/documents/PM-1", json={"front_matter": {"title": ""},
                                                          "body": ""},
                          headers={"If-Match": current.revision})
    assert response.status_code == 422
    assert "title" in response.get_json()["fields"]
    assert wiki.get("PM-1").revision == current.revision


def test_unknown_kind_and_changed_kind_are_422(client, wiki):
    assert create(client, kind="runbook").get_json()["fields"]["kind"]
    rev = wiki.get("PM-1").revision
    response = client.put("/api/v1/documents/PM-1", json={"kind": "signature",
                                                          "front_matter": {"title": "x"}},
                          headers={"If-Match": rev})
    assert response.status_code == 422 and "kind" in response.get_json()["fields"]


def test_unknown_id_is_404(client):
    response = client.put("/api/v1/documents/PM-404", json={"front_matter": {"title": "x"}},
                          headers={"If-Match": "abc"})
    assert response.status_code == 404
    assert client.put("/api/v1/documents/nonsense", json={},
                      headers={"If-Match": "abc"}).status_code == 404


@pytest.mark.parametrize("kwargs", [
    {"data": "title: x", "content_type": "text/plain"},
    {"data": "{not json", "content_type": "application/json"},
    {"data": "[1, 2]", "content_type": "application/json"},
    {"json": {"kind": "postmortem", "front_matter": ["title", "x"]}},
    {"json": {"kind": "postmortem", "front_matter": {"title": "x"}, "body": 42}},
    {"json": {"kind": "postmortem", "front_matter": {"title": "x"}, "author": ["a"]}},
])
def test_non_json_or_malformed_is_400(client, wiki, kwargs):
    response = client.post("/api/v1/documents", **kwargs)
    assert response.status_code == 400
    assert response.get_json()["error"]
    rev = wiki.get("PM-1").revision
    response = client.put("/api/v1/documents/PM-1", headers={"If-Match": rev}, **kwargs)
    assert response.status_code == 400


def test_a_20_mb_body_is_refused(client):
    response = create(client, body="x" * (20 * 1024 * 1024))
    assert response.status_code == 422
    assert "WIKI_MAX_FILE_BYTES" in response.get_json()["fields"]["body"]


def test_a_request_over_the_limit_is_413_json(content_dir, tmp_path):
    client = make_app(content_dir, tmp_path / "data", MAX_REQUEST_BYTES=1000).test_client()
    response = create(client, body="x" * 5000)
    assert response.status_code == 413
    assert "WIKI_MAX_REQUEST_BYTES" in response.get_json()["error"]


def test_read_routes_still_work(client):
    assert client.get("/api/v1/documents").get_json()["total"] == 2
    response = client.get("/api/v1/documents/PM-1")
    assert client.get("/api/v1/documents/PM-1",
                      headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
