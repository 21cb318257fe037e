"""The wiki in incident chat: link previews, the Slack app and a webhook for other chats.

* :mod:`.cards` — a document as a card (no Flask): the data every preview shows.
* :mod:`.commands` — the sub-commands (``search``, ``seen``, ``new``, ``<id>``, ``help``) as
  plain answers (no Flask).
* :mod:`.previews` — Open Graph / Twitter meta for document pages and ``GET /oembed``.
* :mod:`.slack` — the Slack app (Bolt for Python behind its Flask adapter): ``/slack/commands``,
  ``/slack/events`` (``link_shared`` → ``chat.unfurl``), ``/slack/interactive``.
* :mod:`.webhook` — ``POST /hooks/chat``: the same sub-commands for Mattermost and Rocket.Chat.

This module is the Flask glue they share: absolute URLs (``WIKI_BASE_URL`` when set, else the
request's host), the :class:`~.commands.Backend` of the current app, and which URLs are this
wiki's documents.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from .. import documents as d
from ..store import NotFound
from .cards import Card
from .commands import Backend, Links


def init_app(app: Flask) -> None:
    """Register the previews, the Slack app (when ``SLACK_SIGNING_SECRET`` is set, else its
    URLs answer 404 saying so) and the webhook (when ``WIKI_WEBHOOK_TOKEN`` is set)."""
    from . import previews, slack, webhook

    previews.init_app(app)
    slack.init_app(app)
    webhook.init_app(app)


# --------------------------------------------------------------------------------------------
# Absolute URLs


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of a route, on ``WIKI_BASE_URL`` when it is set (chat services and
    link previews need the wiki's public address, not the one a proxy forwarded to)."""
    base = current_app.config.get("BASE_URL") or ""
    if not base:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)
    root = request.script_root if has_request_context() else ""
    if root and path.startswith(root):
        path = path[len(root):]
    return base + path


def document_link(doc) -> str:
    """Absolute URL of a document page (a Document, a DocumentRow, a search hit…)."""
    kind = doc.kind.name if isinstance(doc.kind, d.Kind) else doc.kind
    return public_url("pages.document", plural=d.KINDS[kind].plural, ident=doc.id, slug=doc.slug)


def short_link(ident: str) -> str:
    """Absolute short link of a document: ``https://wiki.example.com/PM-7``."""
    return public_url("pages.short_link", ident=ident)


def links() -> Links:
    return Links(
        document=document_link,
        short=short_link,
        edit=lambda doc: public_url("editor.edit", plural=doc.kind.plural, ident=doc.id),
        search=lambda q: public_url("search.search", q=q),
        seen=lambda: public_url("match.seen"),
    )


def backend() -> Backend:
    """What the chat commands need, from the current app."""
    ext = current_app.extensions
    return Backend(wiki=ext["wiki"], links=links(), search=ext.get("search"),
                   signatures=ext.get("signatures"), similar=ext.get("similar"))


def card_for(doc: d.Document) -> Card:
    return backend().card(doc)


# --------------------------------------------------------------------------------------------
# Which URLs are ours


def own_hosts() -> set[str]:
    """Host names whose links are this wiki's: ``WIKI_BASE_URL``'s, ``WIKI_LINK_DOMAINS`` and
    the current request's."""
    hosts = {h.strip().lower() for h in current_app.config.get("LINK_DOMAINS", ()) if h.strip()}
    base = current_app.config.get("BASE_URL") or ""
    if base:
        hosts.add((urlsplit(base).hostname or "").lower())
    if has_request_context():
        hosts.add((urlsplit(request.host_url).hostname or "").lower())
    hosts.discard("")
    return hosts


def document_for_url(url: str) -> d.Document | None:
    """The document a URL of this wiki shows (its page, any slug, or its short link), or None."""
    try:
        parts = urlsplit(str(url).strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or host not in own_hosts():
        return None
    path = parts.path or "/"
    prefix = urlsplit(current_app.config.get("BASE_URL") or "").path.rstrip("/")
    if not prefix and has_request_context():
        prefix = request.script_root
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix):] or "/"
    try:
        endpoint, args = current_app.url_map.bind(host or "localhost").match(path, method="GET")
    except (HTTPException, RequestRedirect):
        return None
    if endpoint not in ("pages.document", "pages.short_link"):
        return None
    try:
        return current_app.extensions["wiki"].get(args["ident"])
    except NotFound:
        return None
