"""API tokens (wiki/tokens.py), ``wiki token …`` and their enforcement on API writes."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from wiki.tokens import TokenError, TokenStore, bearer

NEW_PM = {"kind": "postmortem", "front_matter": {"title": "Made by a bot"}, "body": "## Summary\n"}


# --------------------------------------------------------------------------------------------
# The store


def test_a_token_is_kept_only_as_its_hash(tmp_path):
    store = TokenStore(tmp_path)
    record, secret = store.create("slack-bot")
    assert secret.startswith("pmw_") and len(secret) >= 40
    text = (tmp_path / "tokens.json").read_text()
    assert secret not in text
    assert hashlib.sha256(secret.encode()).hexdigest() in text
    assert record.start == secret[:10]
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600


def test_verify(tmp_path):
    store = TokenStore(tmp_path)
    _, one = store.create("one")
    _, two = store.create("two")
    assert store.verify(one).name == "one"
    assert store.verify(two).name == "two"
    assert store.verify(one + "x") is None
    assert store.verify("") is None and store.verify(None) is None


def test_tokens_are_random(tmp_path):
    store = TokenStore(tmp_path)
    assert store.create("a")[1] != store.create("b")[1]


@pytest.mark.parametrize("name", ["", " ", "has space", "-dash-first", "x" * 65, "ünï"])
def test_bad_names(tmp_path, name):
    with pytest.raises(TokenError):
        TokenStore(tmp_path).create(name)


def test_names_are_unique_and_revoke(tmp_path):
    store = TokenStore(tmp_path)
    _, secret = store.create("bot")
    with pytest.raises(TokenError, match="already"):
        store.create("bot")
    store.revoke("bot")
    assert store.verify(secret) is None and not store.enabled()
    with pytest.raises(TokenError, match="no token"):
        store.revoke("bot")


def test_another_process_creating_a_token_is_seen(tmp_path):
    server, cli = TokenStore(tmp_path), TokenStore(tmp_path)
    assert not server.enabled()
    _, secret = cli.create("bot")
    assert server.enabled() and server.verify(secret)


def test_a_broken_file_fails_closed(tmp_path):
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(TokenError):
        TokenStore(tmp_path).enabled()


def test_bearer():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("") is None and bearer(None) is None
    assert bearer("Bearer") is None


# --------------------------------------------------------------------------------------------
# The CLI


def test_cli_create_list_revoke(runner, app):
    result = runner.invoke(args=["token", "create", "ci-bot"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[0]
    assert secret.startswith("pmw_")
    assert app.extensions["tokens"].verify(secret).name == "ci-bot"

    listed = runner.invoke(args=["token", "list"])
    assert "ci-bot" in listed.stdout and secret[:10] in listed.stdout
    assert secret not in listed.stdout

    again = runner.invoke(args=["token", "create", "ci-bot"])
    assert again.exit_code != 0 and "already" in again.output

    revoked = runner.invoke(args=["token", "revoke", "ci-bot"])
    assert revoked.exit_code == 0 and "open again" in revoked.output
    assert not app.extensions["tokens"].enabled()
    assert runner.invoke(args=["token", "revoke", "ci-bot"]).exit_code != 0


def test_the_wiki_command_has_token(tmp_path):
    from click.testing import CliRunner

    from wiki.cli import cli

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "token", "create", "x"])
    assert result.exit_code == 0
    assert json.loads((tmp_path / "tokens.json").read_text())["tokens"][0]["name"] == "x"


# --------------------------------------------------------------------------------------------
# The API


def test_writes_are_open_while_no_token_exists(client):
    assert client.post("/api/v1/documents", json=NEW_PM).status_code == 201


def test_once_a_token_exists_writes_need_it(app, client):
    _, secret = app.extensions["tokens"].create("bot")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {secret}"},
                    {"Authorization": f"Bearer {secret}x"}):
        response = client.post("/api/v1/documents", json=NEW_PM, headers=headers)
        assert response.status_code == 401
        assert "token" in response.get_json()["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    current = client.get("/api/v1/documents/PM-1")
    refused = client.put("/api/v1/documents/PM-1", json={"front_matter": {"title": "x"}},
                         headers={"If-Match": current.headers["ETag"]})
    assert refused.status_code == 401
    assert client.get("/api/v1/documents/PM-2").status_code == 404  # nothing was created

    ok = client.post("/api/v1/documents", json=NEW_PM,
                     headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 201
    doc = ok.get_json()
    assert client.get(f"/api/v1/documents/{doc['id']}").status_code == 200


def test_reads_stay_open(app, client):
    app.extensions["tokens"].create("bot")
    assert client.get("/api/v1/documents").status_code == 200
    assert client.get("/api/v1/documents/PM-1").status_code == 200
    assert client.get("/api/v1/search?q=cache").status_code == 200
    assert client.post("/api/v1/match", json={"text": "cache miss storm"}).status_code == 200


def test_revisions_name_the_token(app, client):
    _, secret = app.extensions["tokens"].create("deploy-bot")
    client.post("/api/v1/documents", json=NEW_PM, headers={"Authorization": f"Bearer {secret}"})
    revisions = app.extensions["history"].list("PM-2")
    assert "deploy-bot" in revisions[0].author
