"""``POST /hooks/chat`` (wiki/chat/webhook.py): Mattermost / Rocket.Chat sub-commands."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from wiki.chat import webhook

TOKEN = "mm-token-1"
BASE = "https://wiki.example.com"
PM1_URL = f"{BASE}/postmortems/PM-1/checkout-latency-after-cache-flush"


@pytest.fixture
def hook_app(content_dir, tmp_path):
    return make_app(content_dir, tmp_path / "data", WEBHOOK_TOKEN=f"other-token, {TOKEN}",
                    BASE_URL=BASE, WTF_CSRF_ENABLED=True)


@pytest.fixture
def hook(hook_app):
    return hook_app.test_client()


def slash(client, text: str, token: str | None = TOKEN, **extra):
    """A Mattermost slash command: a form."""
    form = {"channel_id": "ch1", "channel_name": "incident-42", "team_domain": "acme",
            "team_id": "t1", "user_id": "u1", "user_name": "ana", "command": "/pm",
            "response_url": "https://chat.example.com/hooks/commands/x", "text": text, **extra}
    if token is not None:
        form["token"] = token
    return client.post("/hooks/chat", data=form)


def test_not_configured_is_a_404_with_a_message(client):
    response = client.post("/hooks/chat", data={"token": "x", "text": "help"})
    assert response.status_code == 404
    assert b"WIKI_WEBHOOK_TOKEN" in response.data


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_refused(hook, hook_app, token):
    response = slash(hook, "new Must not be created", token=token)
    assert response.status_code == 401
    assert "token" in response.get_json()["error"]
    from wiki.store import NotFound

    with pytest.raises(NotFound):
        hook_app.extensions["wiki"].get("PM-2")


def test_the_token_may_come_in_the_authorization_header(hook):
    response = hook.post("/hooks/chat", data={"text": "help"},
                         headers={"Authorization": f"Token {TOKEN}"})
    assert response.status_code == 200
    response = hook.post("/hooks/chat", json={"text": "help"},
                         headers={"Authorization": "Bearer other-token"})
    assert response.status_code == 200


def test_no_csrf_token_is_needed(hook):
    # the app has CSRF on (WTF_CSRF_ENABLED) and the form carries none: the token is enough
    assert slash(hook, "help").status_code == 200


def test_help_is_ephemeral_markdown(hook):
    answer = slash(hook, "help").get_json()
    assert answer["response_type"] == "ephemeral"
    assert answer["username"] == "Postmortem Wiki"
    for usage in ("search", "seen", "new", "help"):
        assert f"`/pm {usage}" in answer["text"]


def test_an_unknown_sub_command_gets_the_help(hook):
    text = slash(hook, "frobnicate").get_json()["text"]
    assert "is not a sub-command" in text and "`/pm search" in text


def test_search(hook):
    answer = slash(hook, "search cache").get_json()
    assert f"[PM-1: Checkout latency after cache flush]({PM1_URL})" in answer["text"]
    assert "**cache**" in answer["text"]


def test_seen(hook):
    answer = slash(hook, "seen INFO ok\nWARN cache miss storm detected\nINFO ok").get_json()
    text = answer["text"]
    assert "SIG-1: Cache stampede after a flush" in text and "confirmed" in text
    assert "```\n    2: WARN cache miss storm detected\n```" in text
    assert "PM-1 Checkout latency after cache flush" in text


def test_new_creates_a_draft_linked_to_the_channel(content_dir, tmp_path):
    app = make_app(content_dir, tmp_path / "data", WEBHOOK_TOKEN=TOKEN, BASE_URL=BASE,
                   WEBHOOK_CHANNEL_URL="https://chat.example.com/{team}/channels/{channel}")
    answer = slash(app.test_client(), "new Queue backlog in billing").get_json()
    assert f"({BASE}/postmortems/PM-2/edit)" in answer["text"]
    doc = app.extensions["wiki"].get("PM-2")
    assert doc.status == "draft" and doc.title == "Queue backlog in billing"
    assert doc.get("chat_links") == ["https://chat.example.com/acme/channels/incident-42"]
    assert doc.get("authors") == ["ana"] and doc.get("incident_commander") == "ana"
    assert doc.get("started_at") is not None


def test_new_without_a_channel_url_names_the_channel(hook, hook_app):
    slash(hook, "new Something broke")
    assert hook_app.extensions["wiki"].get("PM-2").get("chat_links") == ["~incident-42"]


def test_an_id_answers_with_a_card_attachment(hook):
    answer = slash(hook, "pm-1").get_json()
    (attachment,) = answer["attachments"]
    assert attachment["title"] == "PM-1: Checkout latency after cache flush"
    assert attachment["title_link"] == PM1_URL
    assert {"title": "Severity", "value": "SEV2", "short": True} in attachment["fields"]
    assert f"{BASE}/PM-1" in attachment["footer"]


def test_an_unknown_id(hook):
    assert "There is no document PM-77." in slash(hook, "PM-77").get_json()["text"]


def test_rocket_chat_outgoing_webhook_json_posts_in_channel(hook):
    payload = {"token": TOKEN, "bot": False, "channel_id": "GENERAL", "channel_name": "general",
               "message_id": "m1", "timestamp": "2024-01-01T00:00:00Z", "user_id": "u1",
               "user_name": "ana", "text": "!pm PM-1", "trigger_word": "!pm"}
    answer = hook.post("/hooks/chat", json=payload).get_json()
    assert answer["response_type"] == "in_channel"
    assert answer["attachments"][0]["title"].startswith("PM-1:")


def test_mattermost_outgoing_webhook_strips_the_trigger_word(hook):
    answer = slash(hook, "wiki search cache", trigger_word="wiki", post_id="p1").get_json()
    assert "PM-1" in answer["text"] and answer["response_type"] == "in_channel"


def test_content_cannot_mention_or_inject_markdown(hook, hook_app):
    hook_app.extensions["wiki"].create(
        "postmortem", {"title": "@channel look [x](javascript:1) zebra"},
        "## Summary\nzebra @here\n")
    text = slash(hook, "search zebra").get_json()["text"]
    assert "@channel" not in text and "@here" not in text
    assert "[x](javascript" not in text


def test_json_that_is_not_an_object_is_a_400(hook):
    response = hook.post("/hooks/chat", data="[1]", content_type="application/json",
                         headers={"Authorization": f"Token {TOKEN}"})
    assert response.status_code == 400


def test_token_ok_compares_every_token():
    assert webhook.token_ok("b", ["a", "b"])
    assert not webhook.token_ok("", ["a", ""])
    assert not webhook.token_ok("c", ["a", "b"])
