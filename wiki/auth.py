"""Sign-in through a trusted reverse proxy (oauth2-proxy, an SSO gateway, nginx ``auth_request``).

The wiki keeps no passwords. With ``WIKI_AUTH_HEADER`` set (e.g. ``X-Forwarded-Email`` or
``X-Auth-Request-User``), the proxy in front of the wiki signs people in and names them in that
header:

* the name becomes the author of every revision (``g.author``; an e-mail address becomes
  ``local-part <address>``), the editor shows "Signed in as …" instead of asking for a name;
* a browser write (a POST outside the API, Slack and webhook endpoints, which have their own
  tokens and signatures) without the header is refused with 401 — the wiki was reached around
  the proxy, or the proxy is misconfigured.

The header is only trustworthy if nothing but the proxy can reach the wiki and the proxy
replaces any value a client sends. Without the setting, writes are open and people type a name.
"""

from __future__ import annotations

import re

from flask import Flask, g, request

from .errors import WikiError

#: Paths with their own authentication: API tokens, Slack request signatures, webhook tokens.
OWN_AUTH_PREFIXES = ("/api/", "/slack/", "/hooks/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_NAME = 200
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def author_from(value: str | None) -> str | None:
    """The header's value as a revision author: trimmed, one line, at most :data:`MAX_NAME`
    characters; ``ana@example.com`` → ``ana <ana@example.com>``. ``None`` when empty."""
    name = " ".join(str(value or "").replace("\x00", " ").split())[:MAX_NAME]
    if not name:
        return None
    if _EMAIL.match(name):
        return f"{name.split('@', 1)[0]} <{name}>"
    return name


def init_app(app: Flask) -> None:
    header = (app.config.get("AUTH_HEADER") or "").strip()
    if not header:
        return

    @app.before_request
    def _signed_in():
        user = author_from(request.headers.get(header))
        if user:
            g.user = g.author = user
            return
        if request.method in SAFE_METHODS or request.path.startswith(OWN_AUTH_PREFIXES):
            return
        raise WikiError(401, f"Sign in first: this wiki takes who you are from the {header} "
                             "header set by its sign-in proxy, and this request came without "
                             "it. Nothing was saved; reload the page through the proxy and "
                             "try again (an editor keeps your text as a draft in this browser).")
