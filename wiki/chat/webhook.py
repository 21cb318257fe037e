"""``POST /hooks/chat``: the chat sub-commands for Mattermost, Rocket.Chat and other chats.

Point a Mattermost slash command or outgoing webhook, or a Rocket.Chat outgoing webhook, at
``https://<wiki>/hooks/chat`` (setup in ``docs/chat-webhooks.md``). The request is a form
(``application/x-www-form-urlencoded``) or JSON with at least ``token`` and ``text``
(``user_name``, ``user_id``, ``channel_name``, ``channel_id``, ``team_domain``,
``trigger_word`` when sent). The token — the ``token`` field, or ``Authorization: Token …`` /
``Bearer …`` — must be one of ``WIKI_WEBHOOK_TOKEN`` (compared in constant time); without that
setting the URL answers 404.

The answer is the JSON Mattermost expects from a slash command or outgoing webhook, which
Rocket.Chat also reads: ``{"response_type": "ephemeral" | "in_channel", "text": <Markdown>,
"username", "attachments"?}``. A slash command's answer is ephemeral; a trigger word's is posted
to the channel (an outgoing webhook cannot answer privately).
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, Flask, current_app, jsonify, request

from ..errors import WikiError
from ..security import checks_csrf_itself
from . import backend, commands
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

bp = Blueprint("webhook", __name__)

USERNAME = "Postmortem Wiki"
#: A Mattermost post holds 16,383 characters; answers stay far below.
MAX_TEXT = 12_000
NOT_CONFIGURED = ("The chat webhook is not set up on this wiki: set WIKI_WEBHOOK_TOKEN (see "
                  "docs/chat-webhooks.md).")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def tokens() -> list[str]:
    value = current_app.config.get("WEBHOOK_TOKEN") or ()
    if isinstance(value, str):
        value = value.split(",")
    return [t.strip() for t in value if t and t.strip()]


def _payload() -> dict:
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise WikiError(400, "The body is not a JSON object.")
        return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool))}
    return request.form.to_dict()


def _presented_token(data: dict) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return str(data.get("token") or "")


def token_ok(presented: str, allowed: list[str]) -> bool:
    """Whether ``presented`` is one of ``allowed``, comparing every one in constant time."""
    given = presented.encode("utf-8")
    ok = False
    for token in allowed:
        ok |= hmac.compare_digest(given, token.encode("utf-8"))
    return ok and bool(presented)


@bp.post("/hooks/chat")
@checks_csrf_itself  # no CSRF token: the shared secret token authenticates the request instead
def hook():
    allowed = tokens()
    if not allowed:
        raise WikiError(404, NOT_CONFIGURED)
    data = _payload()
    if not token_ok(_presented_token(data), allowed):
        return _json_error(401, "Invalid or missing token: use the token of WIKI_WEBHOOK_TOKEN.")
    text = str(data.get("text") or "")
    trigger = str(data.get("trigger_word") or "")
    outgoing = bool(trigger) or "post_id" in data or "message_id" in data
    if trigger and text.lower().startswith(trigger.lower()):
        text = text[len(trigger):]
    inv = Invocation(text=text, command=str(data.get("command") or trigger or "/pm"),
                     user_id=str(data.get("user_id") or "") or None,
                     user_name=str(data.get("user_name") or "") or None,
                     channel_link=channel_link(data))
    try:
        answer = commands.run(inv, backend())
    except Exception:  # noqa: BLE001 - answer the chat rather than a bare 500
        log.exception("the chat command %r failed", text[:100])
        answer = ProblemAnswer("Something went wrong on the wiki; the error is in its log.")
    return jsonify(response(answer, ephemeral=not outgoing))


def _json_error(status: int, message: str):
    out = jsonify({"error": message, "response_type": "ephemeral", "text": message})
    out.status_code = status
    return out


def channel_link(data: dict) -> str | None:
    """``WIKI_WEBHOOK_CHANNEL_URL`` filled in for the channel, else ``~channel-name``."""
    channel = str(data.get("channel_name") or "")
    channel_id = str(data.get("channel_id") or "")
    if not (channel or channel_id):
        return None
    template = current_app.config.get("WEBHOOK_CHANNEL_URL") or ""
    if template:
        from urllib.parse import quote

        values = {"team": quote(str(data.get("team_domain") or ""), safe=""),
                  "channel": quote(channel, safe=""), "channel_id": quote(channel_id, safe="")}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            log.warning("WIKI_WEBHOOK_CHANNEL_URL %r has an unknown placeholder", template)
    return f"~{channel or channel_id}"


# --------------------------------------------------------------------------------------------
# Markdown


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~])")  # what makes emphasis, code, links or HTML


def md(text) -> str:
    """Text for Markdown: its special characters escaped, and ``@`` kept from mentioning."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("@", "@\u2060")


def md_link(url: str, label: str) -> str:
    return f"[{md(label)}]({url.replace(' ', '%20').replace(')', '%29')})"


def _fence(lines: list[str]) -> str:
    body = "\n".join(line.replace("```", "`\u200b``") for line in lines)
    return f"```\n{body}\n```"


def card_attachment(card: Card) -> dict:
    """A card as a message attachment (Mattermost and Rocket.Chat read Slack's old format)."""
    text = card.summary
    if card.looks_like:
        text += f"\n\nLooks like: `{card.looks_like.replace('`', '')}`"
    return {
        "fallback": f"{card.label} — {card.url}",
        "color": {"SEV1": "#b3261e", "SEV2": "#d9730d", "SEV3": "#c9a227"}.get(card.severity or "",
                                                                          "#5b6b7f"),
        "title": card.label,
        "title_link": card.url,
        "text": text,
        "fields": [{"title": label, "value": value, "short": True} for label, value in card.facts],
        "footer": f"{card.kind_label} · {card.short_url}",
    }


def _text(answer: Answer) -> str:
    if isinstance(answer, HelpAnswer):
        head = f"**{md(answer.title)}**\n" if answer.unknown else ""
        rows = "\n".join(f"* `{answer.command} {usage}` — {md(what)}"
                         for usage, what in answer.usage)
        return head + "**Postmortem Wiki** answers these:\n" + rows
    if isinstance(answer, NewAnswer) and answer.card:
        return (f"**Started {md_link(answer.card.url, answer.card.label)}** as a draft "
                f"postmortem. {md_link(answer.edit_url, 'Edit the draft')}")
    if isinstance(answer, CardAnswer) and answer.card:
        return f"**{md_link(answer.card.url, answer.card.label)}**"
    if isinstance(answer, SearchAnswer):
        rows = [f"**{md(answer.title)}**"]
        for item in answer.items:
            label = " · ".join(x for x in (item.severity, item.status) if x)
            snippet = "".join(f"**{md(t)}**" if marked and t.strip() else md(t)
                              for t, marked in item.snippet)
            rows.append(f"* {md_link(item.url, f'{item.id}: {item.title}')}"
                        + (f" _{md(label)}_" if label else "")
                        + (f"  \n  {snippet}" if snippet.strip() else ""))
        if answer.total > len(answer.items):
            rows.append(md_link(answer.more_url, f"All {answer.total:,} results on the wiki"))
        return "\n".join(rows)
    if isinstance(answer, SeenAnswer):
        rows = [f"**Have we seen this?** {md(answer.title)}"]
        for m in answer.matches:
            what = "confirmed" if m.confidence == "confirmed" else "partly matches"
            rows.append(f"* {md_link(m.url, f'{m.id}: {m.title}')} — {what} "
                        f"({m.matched}/{m.total} patterns)")
            if m.evidence:
                rows.append(_fence([f"{n:>5}: {line}" for n, line in m.evidence]))
            if m.incidents:
                rows.append("  Seen in: " + ", ".join(md_link(r.url, f"{r.id} {r.title}")
                                                      for r in m.incidents[:5]))
        if answer.similar:
            rows.append("**Similar incidents**")
            rows += [f"* {md_link(s.url, f'{s.id}: {s.title}')}"
                     + (f" — {md(s.reasons[0])}" if s.reasons else "") for s in answer.similar]
        rows.append(f"_{answer.lines_matched} · "
                    f"{md_link(answer.seen_url, 'paste a whole log on the wiki')}_")
        return "\n".join(rows)
    if isinstance(answer, ListAnswer):
        rows = [f"**{md(answer.title)}**"]
        rows += [f"* {md_link(r.url, f'{r.id}: {r.title}')}" + (f" — {md(r.note)}" if r.note
                                                               else "") for r in answer.refs]
        return "\n".join(rows)
    return f"**{md(answer.title)}**"


def response(answer: Answer, ephemeral: bool = True) -> dict:
    """An answer as Mattermost slash-command / outgoing-webhook JSON."""
    text = _text(answer)
    if answer.notes:
        text += "\n\n" + "\n".join(f"_{md(n)}_" for n in answer.notes)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "…"
    out = {"response_type": "ephemeral" if ephemeral else "in_channel", "text": text,
           "username": USERNAME}
    card = getattr(answer, "card", None)
    if card is not None:
        out["attachments"] = [card_attachment(card)]
    return out

