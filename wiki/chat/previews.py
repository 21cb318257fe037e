"""Link previews for any chat: Open Graph / Twitter-card meta on document pages, and oEmbed.

Slack, Teams, Mattermost and Discord fetch a pasted link and read its ``og:*`` and
``twitter:*`` meta (``templates/_meta.html``, filled from :func:`doc_card`); some also follow the
page's ``<link rel="alternate" type="application/json+oembed">`` to ``GET /oembed``:

* ``/oembed?url=<a document URL of this wiki>&format=json`` → an oEmbed 1.0 ``link`` answer
  (title, provider, and the card's one-line ``description``);
* any other URL → 404; ``format=xml`` (or anything but json) → 501, as the oEmbed spec says.

A wiki that chat services cannot reach gets the same cards through the Slack app's unfurls
(:mod:`wiki.chat.slack`).
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from . import card_for, document_for_url, public_url

bp = Blueprint("previews", __name__)

#: Seconds a consumer may cache an oEmbed answer.
CACHE_AGE = 300
PROVIDER = "Postmortem Wiki"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.app_template_global()
def doc_card(doc):
    """The card of a document page (for ``_meta.html``)."""
    return card_for(doc)


@bp.app_template_global()
def oembed_url(url: str) -> str:
    return public_url("previews.oembed", url=url, format="json")


@bp.app_template_global()
def public_short_url(ident: str) -> str:
    """The absolute short link of a document (the "Copy link" button)."""
    from . import short_link

    return short_link(ident)


def _error(status: int, message: str):
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.get("/oembed")
def oembed():
    """oEmbed for this wiki's document URLs (JSON only)."""
    fmt = request.args.get("format", "json").strip().lower()
    if fmt != "json":
        return _error(501, "Only format=json is supported.")
    url = request.args.get("url", "").strip()
    if not url:
        return _error(400, "Give the URL of a document: /oembed?url=…&format=json.")
    doc = document_for_url(url)
    if doc is None:
        return _error(404, "That URL is not a document of this wiki.")
    card = card_for(doc)
    response = jsonify({
        "version": "1.0",
        "type": "link",
        "title": card.label,
        "provider_name": PROVIDER,
        "provider_url": public_url("pages.home"),
        "cache_age": CACHE_AGE,
        "url": card.url,
        "description": card.description(),
    })
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_AGE
    return response
