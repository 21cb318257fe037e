"""The Slack app (wiki/chat/slack.py) through the Flask app, with requests signed as Slack signs
them (``slack_sdk.signature.SignatureVerifier``) and a fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.conftest import make_app
from wiki import db
from wiki.chat import slack
from wiki.chat.commands import MAX_SEEN_CHARS
from wiki.store import NotFound

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"
BASE = "https://wiki.example.com"
PM1_URL = f"{BASE}/postmortems/PM-1/checkout-latency-after-cache-flush"


# --------------------------------------------------------------------------------------------
# A fake Slack Web API: a real HTTP server in a thread


class FakeSlack:
    """Records every request; answers ``{"ok": true}`` unless told otherwise per path."""

    def __init__(self):
        self.calls: list[dict] = []
        self.replies: dict[str, tuple[int, dict, dict]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw}
                fake.calls.append({"path": self.path, "headers": dict(self.headers),
                                   "body": body})
                status, reply, headers = fake.replies.get(self.path, (200, {"ok": True}, {}))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def calls_to(self, path: str) -> list[dict]:
        return [c for c in self.calls if c["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack_api():
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def slack_app(content_dir, tmp_path, slack_api):
    return make_app(content_dir, tmp_path / "data", SLACK_SIGNING_SECRET=SECRET,
                    SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=f"{slack_api.url}/api/",
                    BASE_URL=BASE)


@pytest.fixture
def slack_client(slack_app):
    return slack_app.test_client()


# --------------------------------------------------------------------------------------------
# Signed requests


def signed_headers(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


def command_body(text: str, **extra) -> str:
    return urlencode({
        "token": "legacy", "team_id": "T1", "team_domain": "acme", "channel_id": "C42",
        "channel_name": "incident-42", "user_id": "U1", "user_name": "ana", "command": "/pm",
        "text": text, "api_app_id": "A1", "response_url": "https://hooks.slack.invalid/x",
        "trigger_id": "1.2.3", **extra})


def run_command(client, text: str, **headers_kw):
    body = command_body(text)
    return client.post("/slack/commands", data=body,
                       content_type="application/x-www-form-urlencoded",
                       headers=signed_headers(body, **headers_kw))


def post_event(client, event: dict, event_id: str = "Ev1", headers: dict | None = None):
    body = json.dumps({"token": "legacy", "team_id": "T1", "api_app_id": "A1",
                       "type": "event_callback", "event_id": event_id, "event_time": 1,
                       "event": event})
    return client.post("/slack/events", data=body, content_type="application/json",
                       headers={**signed_headers(body), **(headers or {})})


def link_shared(*urls: str) -> dict:
    return {"type": "link_shared", "channel": "C42", "user": "U1", "message_ts": "123.456",
            "links": [{"domain": "wiki.example.com", "url": u} for u in urls]}


def texts(blocks) -> str:
    """All text of a Block Kit list, for assertions."""
    return json.dumps(blocks, ensure_ascii=False)


def share_value(answer: dict) -> str | None:
    for block in answer["blocks"]:
        if block["type"] == "actions":
            for element in block["elements"]:
                if element.get("action_id") == "share":
                    return element["value"]
    return None


# --------------------------------------------------------------------------------------------
# Off unless configured; signatures


def test_slack_urls_answer_404_with_a_message_when_not_configured(client):
    for path in ("/slack/commands", "/slack/events", "/slack/interactive"):
        response = client.post(path, data="x")
        assert response.status_code == 404
        assert b"SLACK_SIGNING_SECRET" in response.data


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "stale", "tampered", "future"])
def test_bad_signatures_get_401_and_nothing_happens(slack_app, slack_client, case):
    body = command_body("new Should never be created")
    headers = {
        "unsigned": {},
        "wrong-secret": signed_headers(body, secret="not-the-secret"),
        "stale": signed_headers(body, timestamp=int(time.time()) - 301),
        "future": signed_headers(body, timestamp=int(time.time()) + 301),
        "tampered": signed_headers(command_body("help")),
    }[case]
    response = slack_client.post("/slack/commands", data=body,
                                 content_type="application/x-www-form-urlencoded",
                                 headers=headers)
    assert response.status_code == 401
    with slack_app.extensions["wiki"].session() as session:
        _rows, total = db.list_documents(session, db.Filters(kind="postmortem"))
    assert total == 1  # only PM-1: no draft was created


def test_a_request_signed_within_the_window_is_accepted(slack_client):
    response = run_command(slack_client, "help", timestamp=int(time.time()) - 200)
    assert response.status_code == 200


def test_unsigned_events_and_interactions_get_401(slack_client, slack_api):
    body = json.dumps({"type": "url_verification", "challenge": "abc", "token": "x"})
    assert slack_client.post("/slack/events", data=body,
                             content_type="application/json").status_code == 401
    event = json.dumps({"type": "event_callback", "event_id": "E", "event": link_shared(PM1_URL)})
    assert slack_client.post("/slack/events", data=event, content_type="application/json",
                             headers=signed_headers(event, secret="wrong")).status_code == 401
    assert slack_client.post("/slack/interactive", data="payload=%7B%7D").status_code == 401
    assert slack_api.calls == []


def test_url_verification_challenge(slack_client):
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd",
                       "token": "x"})
    response = slack_client.post("/slack/events", data=body, content_type="application/json",
                                 headers=signed_headers(body))
    assert response.status_code == 200
    assert response.get_json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd"}


# --------------------------------------------------------------------------------------------
# Every sub-command


def test_help(slack_client):
    response = run_command(slack_client, "help")
    answer = response.get_json()
    assert response.status_code == 200
    assert answer["response_type"] == "ephemeral"
    text = texts(answer["blocks"])
    for usage in ("search", "seen", "new", "help"):
        assert f"/pm {usage}" in text
    assert share_value(answer) is None


@pytest.mark.parametrize("text", ["", "   ", "frobnicate the thing"])
def test_an_empty_or_unknown_sub_command_gets_the_help(slack_client, text):
    answer = run_command(slack_client, text).get_json()
    blocks = texts(answer["blocks"])
    assert "/pm search" in blocks
    if text.strip():
        assert "is not a sub-command" in blocks and "frobnicate" in blocks


def test_search(slack_client):
    response = run_command(slack_client, "search cache flush")
    answer = response.get_json()
    assert answer["response_type"] == "ephemeral"
    blocks = texts(answer["blocks"])
    assert f"<{PM1_URL}|PM-1: Checkout latency after cache flush>" in blocks
    assert "*cache*" in blocks or "*flush*" in blocks  # matches in bold
    assert share_value(answer) == "search\ncache flush"


def test_search_without_words_says_what_to_do(slack_client):
    answer = run_command(slack_client, "search").get_json()
    assert "Search for what?" in texts(answer["blocks"])


def test_search_results_are_escaped(slack_client, slack_app):
    wiki = slack_app.extensions["wiki"]
    wiki.create("postmortem", {"title": "Sneaky <!channel> & <https://evil.example|click> zebra"},
                "## Summary\nzebra <@U999> &amp; stuff\n")
    blocks = texts(run_command(slack_client, "search zebra").get_json()["blocks"])
    assert "<!channel>" not in blocks and "<@U999>" not in blocks
    assert "&lt;!channel&gt;" in blocks
    assert "<https://evil.example|" not in blocks


def test_seen_finds_the_signature_with_evidence(slack_client):
    paste = "INFO start\nWARN cache miss storm detected on node 7\nINFO done"
    answer = run_command(slack_client, f"seen {paste}").get_json()
    blocks = texts(answer["blocks"])
    assert "SIG-1: Cache stampede after a flush" in blocks
    assert "confirmed" in blocks
    assert "WARN cache miss storm detected on node 7" in blocks  # the evidence line
    assert "    2:" in blocks  # with its line number
    assert "PM-1 Checkout latency after cache flush" in blocks  # seen in
    assert share_value(answer).startswith("seen\nSIG-1 confirmed")


def test_seen_undoes_slack_escapes_before_matching(slack_client):
    answer = run_command(slack_client, "seen WARN cache miss storm detected &lt;x&gt; &amp; "
                                       "<https://a.example/b|a.example/b>").get_json()
    blocks = texts(answer["blocks"])
    assert "SIG-1" in blocks
    assert "&lt;x&gt; &amp; https://a.example/b" in blocks  # unescaped, then escaped again once


def test_seen_of_40000_characters_is_capped_with_a_note(slack_client):
    line = "INFO nothing to see here, just a long and boring line of log text\n"
    paste = "WARN cache miss storm detected\n" + line * (MAX_SEEN_CHARS // len(line) + 50)
    assert len(paste) > MAX_SEEN_CHARS
    started = time.perf_counter()
    answer = run_command(slack_client, f"seen {paste}").get_json()
    assert time.perf_counter() - started < 3
    blocks = texts(answer["blocks"])
    assert "SIG-1" in blocks
    assert "only the first" in blocks and "40,000" in blocks


def test_seen_without_a_paste(slack_client):
    assert "Paste something" in texts(run_command(slack_client, "seen").get_json()["blocks"])


def test_seen_with_no_match(slack_client):
    answer = run_command(slack_client, "seen everything is fine").get_json()
    assert "Have we seen this?" in texts(answer["blocks"])


def test_new_creates_a_prefilled_draft(slack_client, slack_app):
    before = datetime.now(UTC) - timedelta(seconds=2)
    answer = run_command(slack_client, "new Payments failing in eu-west-1").get_json()
    blocks = texts(answer["blocks"])
    assert "Started" in blocks and "PM-2" in blocks
    doc = slack_app.extensions["wiki"].get("PM-2")
    assert doc.title == "Payments failing in eu-west-1"
    assert doc.status == "draft"
    assert doc.get("chat_links") == ["https://acme.slack.com/archives/C42"]
    assert doc.get("authors") == ["ana"] and doc.get("incident_commander") == "ana"
    assert before <= doc.get("started_at") <= datetime.now(UTC)
    assert "## Timeline" in doc.body  # from the postmortem template
    edit = f"{BASE}/postmortems/PM-2/edit"
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert any(e.get("url") == edit for e in buttons)
    assert share_value(answer) == "card\nPM-2"


def test_new_without_a_title(slack_client, slack_app):
    answer = run_command(slack_client, "new   ").get_json()
    assert "needs a title" in texts(answer["blocks"])
    with pytest.raises(NotFound):
        slack_app.extensions["wiki"].get("PM-2")


@pytest.mark.parametrize("text", ["PM-1", "pm-1", "  Pm-1  "])
def test_an_id_shows_its_card(slack_client, text):
    answer = run_command(slack_client, text).get_json()
    blocks = texts(answer["blocks"])
    assert f"<{PM1_URL}|PM-1: Checkout latency after cache flush>" in blocks
    assert "SEV2" in blocks and "published" in blocks and "checkout, cache" in blocks
    assert f"<{BASE}/PM-1|{BASE}/PM-1>" in blocks  # the short link
    assert share_value(answer) == "card\nPM-1"


def test_a_signature_card_shows_what_it_looks_like(slack_client):
    blocks = texts(run_command(slack_client, "SIG-1").get_json()["blocks"])
    assert "Looks like" in blocks and "WARN cache miss storm detected" in blocks


def test_an_unknown_id(slack_client):
    answer = run_command(slack_client, "PM-999").get_json()
    assert "There is no document PM-999." in texts(answer["blocks"])
    assert share_value(answer) is None


def test_a_failing_command_still_answers(slack_client, slack_app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(slack_app.extensions["wiki"], "get", broken)
    response = run_command(slack_client, "PM-1")
    assert response.status_code == 200
    assert "Something went wrong" in texts(response.get_json()["blocks"])


def test_the_command_name_is_configurable(content_dir, tmp_path, slack_api):
    app = make_app(content_dir, tmp_path / "data", SLACK_SIGNING_SECRET=SECRET,
                   SLASH_COMMAND="/wiki", SLACK_API_URL=f"{slack_api.url}/api/")
    client = app.test_client()
    body = command_body("help", command="/wiki")
    answer = client.post("/slack/commands", data=body,
                         content_type="application/x-www-form-urlencoded",
                         headers=signed_headers(body)).get_json()
    assert "/wiki search" in texts(answer["blocks"])


# --------------------------------------------------------------------------------------------
# Share in channel


def test_the_share_button_posts_the_answer_to_the_channel(slack_client, slack_api):
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "acme"},
        "user": {"id": "U1", "username": "ana", "team_id": "T1"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": "1.2", "channel": {"id": "C42"},
        "container": {"type": "message", "is_ephemeral": True},
        "response_url": f"{slack_api.url}/response/abc",
        "actions": [{"type": "button", "action_id": "share", "block_id": "b",
                     "value": "card\nPM-1", "action_ts": "1"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    response = slack_client.post("/slack/interactive", data=body,
                                 content_type="application/x-www-form-urlencoded",
                                 headers=signed_headers(body))
    assert response.status_code == 200
    (call,) = slack_api.calls_to("/response/abc")
    assert call["body"]["response_type"] == "in_channel"
    assert call["body"]["replace_original"] is False
    blocks = texts(call["body"]["blocks"])
    assert "PM-1: Checkout latency after cache flush" in blocks
    assert "Shared by <@U1>" in blocks
    assert share_value(call["body"]) is None  # no button on the shared copy


def test_sharing_a_seen_answer_names_the_documents_without_the_paste(slack_client, slack_api):
    value = share_value(run_command(slack_client, "seen WARN cache miss storm detected "
                                                  "secret-customer-id-123").get_json())
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U2"},
               "api_app_id": "A1", "token": "t", "response_url": f"{slack_api.url}/r",
               "actions": [{"type": "button", "action_id": "share", "value": value}]}
    body = urlencode({"payload": json.dumps(payload)})
    slack_client.post("/slack/interactive", data=body,
                      content_type="application/x-www-form-urlencoded",
                      headers=signed_headers(body))
    (call,) = slack_api.calls_to("/r")
    blocks = texts(call["body"]["blocks"])
    assert "SIG-1: Cache stampede after a flush" in blocks
    assert "secret-customer-id-123" not in blocks


# --------------------------------------------------------------------------------------------
# Unfurls


def test_link_shared_unfurls_with_the_card(slack_client, slack_api):
    short = f"{BASE}/pm-1"
    response = post_event(slack_client, link_shared(PM1_URL, short, "https://elsewhere.example/x",
                                                    f"{BASE}/PM-404"))
    assert response.status_code == 200
    (call,) = slack_api.calls_to("/api/chat.unfurl")
    assert call["headers"]["Authorization"] == f"Bearer {BOT_TOKEN}"
    body = call["body"]
    assert body["channel"] == "C42" and body["ts"] == "123.456"
    assert set(body["unfurls"]) == {PM1_URL, short}
    blocks = body["unfurls"][PM1_URL]["blocks"]
    assert blocks[0]["type"] == "section"
    assert blocks[0]["text"]["text"].startswith(f"*<{PM1_URL}|PM-1: Checkout latency after "
                                                "cache flush>*")
    fields = {f["text"] for f in blocks[0]["fields"]}
    assert {"*Severity*\nSEV2", "*Status*\npublished", "*Services*\ncheckout, cache"} <= fields
    assert blocks[-1]["type"] == "context" and f"{BASE}/PM-1" in texts(blocks[-1])


def test_link_shared_from_the_composer_uses_unfurl_id(slack_client, slack_api):
    event = {**link_shared(PM1_URL), "unfurl_id": "U123", "source": "composer",
             "channel": "COMPOSER", "message_ts": "U123"}
    post_event(slack_client, event)
    (call,) = slack_api.calls_to("/api/chat.unfurl")
    assert call["body"]["unfurl_id"] == "U123" and call["body"]["source"] == "composer"
    assert "channel" not in call["body"]


def test_links_to_nothing_of_ours_make_no_call(slack_client, slack_api):
    post_event(slack_client, link_shared("https://elsewhere.example/PM-1", f"{BASE}/tags/"))
    assert slack_api.calls == []


@pytest.mark.parametrize("reply", [
    (200, {"ok": False, "error": "cannot_unfurl_url"}, {}),
    (500, {"ok": False, "error": "internal_error"}, {}),
    (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}),
])
def test_slack_api_errors_are_logged_not_retried(slack_client, slack_api, caplog, reply):
    slack_api.replies["/api/chat.unfurl"] = reply
    with caplog.at_level(logging.WARNING, logger="wiki.chat.slack"):
        response = post_event(slack_client, link_shared(PM1_URL))
    assert response.status_code == 200  # Slack gets its 200: no redelivery
    assert len(slack_api.calls_to("/api/chat.unfurl")) == 1  # and we do not retry
    assert any("chat.unfurl failed" in r.getMessage() for r in caplog.records)


def test_an_unreachable_slack_api_is_logged(content_dir, tmp_path, caplog):
    app = make_app(content_dir, tmp_path / "data", SLACK_SIGNING_SECRET=SECRET,
                   SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL="http://127.0.0.1:9/api/",
                   BASE_URL=BASE)
    with caplog.at_level(logging.WARNING, logger="wiki.chat.slack"):
        response = post_event(app.test_client(), link_shared(PM1_URL))
    assert response.status_code == 200
    assert any("chat.unfurl failed" in r.getMessage() for r in caplog.records)


def test_an_event_delivered_again_is_not_unfurled_twice(slack_client, slack_api):
    post_event(slack_client, link_shared(PM1_URL), event_id="Ev9")
    post_event(slack_client, link_shared(PM1_URL), event_id="Ev9",
               headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert len(slack_api.calls_to("/api/chat.unfurl")) == 1


def test_a_retry_reaching_another_worker_process_is_not_unfurled_again(
        content_dir, tmp_path, slack_api):
    # Two apps on the same data dir stand for two gunicorn workers.
    def worker():
        return make_app(content_dir, tmp_path / "data", SLACK_SIGNING_SECRET=SECRET,
                        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=f"{slack_api.url}/api/",
                        BASE_URL=BASE).test_client()

    first, second = worker(), worker()
    post_event(first, link_shared(PM1_URL), event_id="Ev10")
    response = post_event(second, link_shared(PM1_URL), event_id="Ev10",
                          headers={"X-Slack-Retry-Num": "1",
                                   "X-Slack-Retry-Reason": "http_timeout"})
    assert response.status_code == 200
    assert len(slack_api.calls_to("/api/chat.unfurl")) == 1
    post_event(second, link_shared(PM1_URL), event_id="Ev11")  # a new event is handled
    assert len(slack_api.calls_to("/api/chat.unfurl")) == 2


def test_without_a_bot_token_links_do_not_unfurl(content_dir, tmp_path, slack_api, caplog):
    app = make_app(content_dir, tmp_path / "data", SLACK_SIGNING_SECRET=SECRET,
                   SLACK_API_URL=f"{slack_api.url}/api/", BASE_URL=BASE)
    with caplog.at_level(logging.WARNING, logger="wiki.chat.slack"):
        assert post_event(app.test_client(), link_shared(PM1_URL)).status_code == 200
    assert slack_api.calls == []
    assert any("SLACK_BOT_TOKEN" in r.getMessage() for r in caplog.records)


def test_other_events_get_a_200(slack_client, slack_api):
    response = post_event(slack_client, {"type": "app_home_opened", "user": "U1"})
    assert response.status_code == 200
    assert slack_api.calls == []


# --------------------------------------------------------------------------------------------
# Units


def test_from_slack():
    assert slack.from_slack("a &lt;b&gt; &amp;lt; <https://x.example/a?b=1&amp;c=2|x.example/a>"
                            " <@U1|ana> <#C1|general>") == \
        "a <b> &lt; https://x.example/a?b=1&c=2 @ana #general"


def test_esc_and_link():
    assert slack.esc("<!here> & co") == "&lt;!here&gt; &amp; co"
    assert slack.link("https://w/x?a=1&b=2", "A|B <c>") == "<https://w/x?a=1&amp;b=2|A¦B &lt;c&gt;>"


def test_the_manifest_points_at_the_routes():
    import yaml

    from tests.conftest import ROOT

    manifest = yaml.safe_load((ROOT / "slack" / "manifest.yml").read_text("utf-8"))
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/pm" and command["should_escape"] is False
    assert command["url"] == f"{BASE}/slack/commands"
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["request_url"] == f"{BASE}/slack/events"
    assert settings["event_subscriptions"]["bot_events"] == ["link_shared"]
    assert settings["interactivity"] == {"is_enabled": True,
                                         "request_url": f"{BASE}/slack/interactive"}
    assert manifest["features"]["unfurl_domains"] == ["wiki.example.com"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {"commands", "links:read",
                                                              "links:write"}
