"""The Slack app: one slash command, link unfurls and a "Share in channel" button.

Built on Bolt for Python behind its Flask adapter (``slack_bolt.adapter.flask``); the setup is
in ``docs/slack.md`` and the app's manifest in ``slack/manifest.yml``.

* ``POST /slack/commands`` — the slash command (``WIKI_SLASH_COMMAND``, default ``/pm``) with the
  sub-commands of :mod:`wiki.chat.commands`. The answer is the HTTP response itself
  (``ack(...)`` with Block Kit), so it arrives within Slack's 3 seconds without a second call;
  it is ephemeral, with a *Share in channel* button.
* ``POST /slack/interactive`` — the button: the answer is rebuilt from the button's value and
  posted to the channel through the interaction's ``response_url``.
* ``POST /slack/events`` — the Events API: ``url_verification`` (answered by Bolt) and
  ``link_shared`` → ``chat.unfurl`` with the document's card, because Slack cannot fetch a wiki
  on an internal network itself. The call goes to ``SLACK_API_URL`` with ``SLACK_BOT_TOKEN``.

Bolt checks every request's signature with ``SLACK_SIGNING_SECRET`` and refuses with 401 what is
unsigned, mis-signed or more than five minutes old, before anything else runs. Without the
secret these URLs answer 404 and say how to set the app up.

``process_before_response=True``: listeners run inside the request (no threads left behind by a
WSGI worker). Slack Web API failures (an error answer, a timeout, a refused connection) are
logged and swallowed: the event still gets its 200, so Slack does not send it again, and the
client makes no retries of its own; events Slack re-sends anyway are recognised by their id.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

from flask import Blueprint, Flask, current_app, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from ..errors import WikiError
from . import backend, card_for, commands, document_for_url
from .cards import Card
from .commands import (
    Answer,
    CardAnswer,
    HelpAnswer,
    Invocation,
    ListAnswer,
    NewAnswer,
    ProblemAnswer,
    SearchAnswer,
    SeenAnswer,
)

log = logging.getLogger(__name__)

bp = Blueprint("slack", __name__, url_prefix="/slack")

#: Seconds a call to the Slack Web API (``chat.unfurl``, a ``response_url``) may take.
API_TIMEOUT = 5
#: Links unfurled per message (Slack sends at most a handful anyway).
MAX_UNFURLS = 5
#: Event ids remembered, so an event Slack sends again is not handled twice.
SEEN_EVENTS = 1000
#: How long a handled event id is remembered on disk (Slack retries within minutes).
EVENT_MARKER_SECONDS = 3600
SHARE_ACTION = "share"
#: Slack's limits: characters in a section's text and in a field.
SECTION_CHARS = 3000
FIELD_CHARS = 2000
NOT_CONFIGURED = ("Slack is not set up on this wiki: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN "
                  "(see docs/slack.md).")


def init_app(app: Flask) -> None:
    """Build the Bolt app when ``SLACK_SIGNING_SECRET`` is set; register the URLs either way."""
    secret = app.config.get("SLACK_SIGNING_SECRET")
    app.extensions["slack"] = SlackApp(app.config) if secret else None
    app.register_blueprint(bp)


# --------------------------------------------------------------------------------------------
# Routes


def _dispatch():
    slack = current_app.extensions.get("slack")
    if slack is None:
        raise WikiError(404, NOT_CONFIGURED)
    return slack.handler.handle(request)


@bp.post("/commands")
def command():
    """Slash commands."""
    return _dispatch()


@bp.post("/events")
def events():
    """Events API: ``url_verification`` and ``link_shared``."""
    return _dispatch()


@bp.post("/interactive")
def interactive():
    """Interactivity: the "Share in channel" button (and acks of link buttons)."""
    return _dispatch()


# --------------------------------------------------------------------------------------------
# The Bolt app


class _RecentIds:
    """Event ids already handled, to drop events Slack delivers again (it retries when an
    answer is slow). Kept in memory (the last :data:`SEEN_EVENTS`) and, with ``directory``, as
    empty marker files there, so that a retry reaching *another* worker process is dropped too:
    creating a file with ``O_EXCL`` succeeds for exactly one process. Markers older than
    :data:`EVENT_MARKER_SECONDS` (Slack stops retrying long before) are swept now and then."""

    def __init__(self, size: int = SEEN_EVENTS, directory: Path | None = None):
        self.size, self._ids, self._lock = size, OrderedDict(), threading.Lock()
        self.directory = directory
        self._added = 0

    def add(self, ident: str | None) -> bool:
        """True the first time ``ident`` is seen (by any process sharing ``directory``)."""
        if not ident:
            return True
        with self._lock:
            if ident in self._ids:
                return False
            self._ids[ident] = True
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)
            self._added += 1
            sweep = self._added % 200 == 1
        return self._claim(ident, sweep)

    def _claim(self, ident: str, sweep: bool) -> bool:
        if self.directory is None:
            return True
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", ident)[:120]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if sweep:
                self._sweep()
            fd = os.open(self.directory / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        except OSError:  # the data dir is not writable: handle it (at worst twice)
            log.warning("cannot record Slack event %s in %s", ident, self.directory,
                        exc_info=True)
            return True
        os.close(fd)
        return True

    def _sweep(self) -> None:
        cutoff = time.time() - EVENT_MARKER_SECONDS
        for marker in self.directory.iterdir():
            try:
                if marker.stat().st_mtime < cutoff:
                    marker.unlink()
            except OSError:
                pass


class SlackApp:
    def __init__(self, config: dict):
        self.command_name = config.get("SLASH_COMMAND") or "/pm"
        self.bot_token = config.get("SLACK_BOT_TOKEN") or None
        base_url = str(config.get("SLACK_API_URL") or "https://slack.com/api/")
        self.api_url = base_url if base_url.endswith("/") else base_url + "/"
        data_dir = config.get("DATA_DIR")
        self.events = _RecentIds(directory=Path(data_dir) / "slack-events" if data_dir else None)
        self._warned_no_token = False
        bot_token = self.bot_token

        def authorize(enterprise_id, team_id, user_id):
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id,
                                   user_id=user_id, bot_token=bot_token)

        # No retry handlers: a failed call is logged, never repeated (no retry storm).
        client = WebClient(base_url=self.api_url, timeout=API_TIMEOUT, retry_handlers=[])
        self.bolt = App(
            name="postmortem-wiki",
            signing_secret=config["SLACK_SIGNING_SECRET"],
            client=client,
            # One workspace, one bot token from the settings: no auth.test round trip, which
            # would spend part of a slash command's 3 seconds on the first request.
            authorize=authorize,
            process_before_response=True,
            logger=logging.getLogger("wiki.chat.slack.bolt"),
        )
        # Bolt passes listeners the arguments their parameters name, so they are plain
        # functions here (a bound method's ``self`` would confuse it).
        self.bolt.command(self.command_name)(
            lambda ack, command: self._on_command(ack, command))
        self.bolt.action(SHARE_ACTION)(
            lambda ack, body, action: self._on_share(ack, body, action))
        self.bolt.action(re.compile(".*"))(lambda ack: ack())  # link buttons: just ack
        self.bolt.event("link_shared")(
            lambda event, body, client: self._on_link_shared(event, body, client))
        self.bolt.event(re.compile(".*"))(  # nothing to do, but a 200 (no redelivery)
            lambda event: log.debug("ignored Slack event %s", event.get("type")))
        self.handler = SlackRequestHandler(self.bolt)

    # -- the slash command ----------------------------------------------------------------------

    def _on_command(self, ack, command):
        inv = Invocation(text=from_slack(command.get("text", "")),
                         command=command.get("command") or self.command_name,
                         user_id=command.get("user_id"), user_name=command.get("user_name"),
                         channel_link=channel_link(command))
        try:
            answer = commands.run(inv, backend())
        except Exception:  # noqa: BLE001 - answer something rather than Slack's "failed"
            log.exception("the chat command %r failed", inv.text[:100])
            answer = ProblemAnswer("Something went wrong on the wiki; the error is in its log.")
        ack(**message(answer, ephemeral=True))

    # -- the share button -----------------------------------------------------------------------

    def _on_share(self, ack, body, action):
        ack()
        url = body.get("response_url")
        user = (body.get("user") or {}).get("id")
        try:
            answer = commands.shared_answer(action.get("value", ""), backend())
        except Exception:  # noqa: BLE001
            log.exception("rebuilding a shared answer failed")
            answer = None
        if answer is None or not url:
            return
        payload = message(answer, ephemeral=False, shared_by=user)
        try:
            response = WebhookClient(url, timeout=API_TIMEOUT, retry_handlers=[]).send(
                replace_original=False, **payload)
            if response.status_code != 200:
                log.warning("sharing in the channel failed: HTTP %s %s", response.status_code,
                            response.body[:200])
        except Exception as exc:  # noqa: BLE001 - a Slack outage is not the wiki's error
            log.warning("sharing in the channel failed: %s", exc)

    # -- link unfurls ---------------------------------------------------------------------------

    def _on_link_shared(self, event, body, client):
        if not self.events.add(body.get("event_id")):
            log.info("event %s was delivered again; already handled", body.get("event_id"))
            return
        if not self.bot_token:
            if not self._warned_no_token:
                log.warning("link_shared: SLACK_BOT_TOKEN is not set, so links cannot unfurl")
                self._warned_no_token = True
            return
        unfurls = {}
        for link in (event.get("links") or [])[:MAX_UNFURLS]:
            url = link.get("url") if isinstance(link, dict) else None
            doc = document_for_url(url) if url else None
            if doc is not None:
                unfurls[url] = {"blocks": card_blocks(card_for(doc))}
        if not unfurls:
            return
        if event.get("unfurl_id") and event.get("source"):
            where = {"unfurl_id": event["unfurl_id"], "source": event["source"]}
        else:
            where = {"channel": event.get("channel"), "ts": event.get("message_ts")}
        try:
            client.chat_unfurl(unfurls=unfurls, **where)
        except SlackApiError as exc:
            log.warning("chat.unfurl failed: %s (HTTP %s)", exc.response.get("error"),
                        exc.response.status_code)
        except Exception as exc:  # noqa: BLE001 - timeouts, refused connections: log, go on
            log.warning("chat.unfurl failed: %s: %s", type(exc).__name__, exc)


# --------------------------------------------------------------------------------------------
# Reading what Slack sends


_SLACK_LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|[^>]*)?>")
_SLACK_NAME_RE = re.compile(r"<([@#])[A-Z0-9]+\|([^>]*)>")


def from_slack(text: str) -> str:
    """A command's text as typed: Slack's ``<url|label>`` links back to the URL, ``<@U1|ana>``
    to ``@ana``, and its ``&amp; &lt; &gt;`` escapes undone."""
    text = _SLACK_LINK_RE.sub(lambda m: m.group(1), text or "")
    text = _SLACK_NAME_RE.sub(lambda m: m.group(1) + m.group(2), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def channel_link(payload: dict) -> str | None:
    """A link to the channel a command was run in."""
    channel, team = payload.get("channel_id"), payload.get("team_id")
    if not channel:
        return None
    domain = payload.get("team_domain")
    if domain and re.fullmatch(r"[A-Za-z0-9-]+", domain):
        return f"https://{domain}.slack.com/archives/{channel}"
    return f"https://app.slack.com/client/{team}/{channel}" if team else None


# --------------------------------------------------------------------------------------------
# Block Kit


def esc(text) -> str:
    """Text for mrkdwn: Slack's three escapes (so content cannot make links or mentions)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    return f"<{esc(url)}|{esc(label).replace('|', '¦')}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_CHARS)},
            **extra}


def context(*texts: str) -> dict:
    return {"type": "context",
            "elements": [{"type": "mrkdwn", "text": _cut(t, FIELD_CHARS)} for t in texts[:10]]}


def _code(text: str) -> str:
    return "```" + esc(text.replace("```", "`\u200b``")) + "```"


def card_blocks(card: Card) -> list[dict]:
    """A document's card: title and summary, its facts as fields, and its short link."""
    text = f"*{link(card.url, card.label)}*"
    if card.summary:
        text += f"\n{esc(card.summary)}"
    blocks = [section(text, fields=[
        {"type": "mrkdwn", "text": _cut(f"*{esc(label)}*\n{esc(value)}", FIELD_CHARS)}
        for label, value in card.facts[:10]])]
    if card.looks_like:
        blocks.append(section("*Looks like*\n" + _code(card.looks_like)))
    blocks.append(context(f"{card.kind_label} · {link(card.short_url, card.short_url)}"))
    return blocks


def _share_button(value: str) -> dict:
    return {"type": "button", "action_id": SHARE_ACTION, "value": value,
            "text": {"type": "plain_text", "text": "Share in channel"}}


def _blocks(answer: Answer) -> list[dict]:
    if isinstance(answer, HelpAnswer):
        head = (f"*{esc(answer.title)}*\n" if answer.unknown else "") + \
            "*Postmortem Wiki* answers these:"
        rows = "\n".join(f"`{esc(answer.command)} {esc(usage)}` — {esc(what)}"
                         for usage, what in answer.usage)
        return [section(head), section(rows)]
    if isinstance(answer, (CardAnswer, NewAnswer)) and answer.card:
        blocks = []
        if isinstance(answer, NewAnswer):
            blocks.append(section(f"*Started {link(answer.card.url, answer.card.label)}* "
                                  "as a draft postmortem."))
        blocks += card_blocks(answer.card)
        return blocks
    if isinstance(answer, SearchAnswer):
        blocks = [section(f"*{esc(answer.title)}*")]
        for item in answer.items:
            label = " · ".join(x for x in (item.severity, item.status) if x)
            snippet = "".join(f"*{esc(t)}*" if marked and t.strip() else esc(t)
                              for t, marked in item.snippet)
            text = f"*{link(item.url, f'{item.id}: {item.title}')}*"
            text += f"  _{esc(label)}_" if label else ""
            if snippet.strip():
                text += f"\n{snippet}"
            blocks.append(section(text))
        if answer.total > len(answer.items):
            blocks.append(context(link(answer.more_url, f"All {answer.total:,} results on the "
                                                        "wiki")))
        return blocks
    if isinstance(answer, SeenAnswer):
        blocks = [section(f"*Have we seen this?* {esc(answer.title)}")]
        for m in answer.matches:
            mark = "✅" if m.confidence == "confirmed" else "◐"
            what = "confirmed" if m.confidence == "confirmed" else "partly matches"
            text = (f"{mark} *{link(m.url, f'{m.id}: {m.title}')}* — {what} "
                    f"({m.matched}/{m.total} patterns)")
            if m.evidence:
                text += "\n" + _code("\n".join(f"{n:>5}: {line}" for n, line in m.evidence))
            if m.incidents:
                text += "\nSeen in: " + ", ".join(link(r.url, f"{r.id} {r.title}")
                                                   for r in m.incidents[:5])
            blocks.append(section(text))
        if answer.similar:
            rows = [f"• {link(s.url, f'{s.id}: {s.title}')}"
                    + (f" — {esc(s.reasons[0])}" if s.reasons else "") for s in answer.similar]
            blocks.append(section("*Similar incidents*\n" + "\n".join(rows)))
        blocks.append(context(f"{answer.lines_matched} · "
                              + link(answer.seen_url, "paste a whole log on the wiki")))
        return blocks
    if isinstance(answer, ListAnswer):
        rows = [f"• {link(r.url, f'{r.id}: {r.title}')}" + (f" — {esc(r.note)}" if r.note else "")
                for r in answer.refs] or ["Nothing found."]
        return [section(f"*{esc(answer.title)}*\n" + "\n".join(rows))]
    return [section(f"*{esc(answer.title)}*")]


def message(answer: Answer, ephemeral: bool = True, shared_by: str | None = None) -> dict:
    """An answer as a Slack message: ``text`` (notifications), ``blocks``, ``response_type``."""
    blocks = _blocks(answer)
    if answer.notes:
        blocks.append(context(*(esc(n) for n in answer.notes)))
    if shared_by:
        blocks.append(context(f"Shared by <@{esc(shared_by)}>"))
    buttons = []
    if isinstance(answer, NewAnswer) and answer.edit_url:
        buttons.append({"type": "button", "action_id": "edit", "url": answer.edit_url,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Edit the draft"}})
    if ephemeral and answer.share:
        buttons.append(_share_button(answer.share))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": _cut(answer.title, 300), "blocks": blocks[:50],
            "response_type": "ephemeral" if ephemeral else "in_channel"}
