"""Safety of every form: CSRF tokens (Flask-WTF's ``CSRFProtect``) and a request size limit.

* Every POST/PUT/PATCH/DELETE is CSRF-checked, except under :data:`EXEMPT_PREFIXES`: the JSON API
  only accepts ``application/json`` bodies (which a cross-site HTML form cannot send) and chat
  webhooks are signed by the chat service. Views that would rather re-render their form than
  fail (the editor: nothing typed may be lost) are marked with :func:`checks_csrf_itself` and
  call :func:`csrf_problem`.
* Requests larger than ``MAX_REQUEST_BYTES`` (``WIKI_MAX_REQUEST_BYTES``) get a 413 saying so.

Tokens do not expire with time (``WTF_CSRF_TIME_LIMIT = None``): a postmortem can take an
afternoon to write. They last as long as the session, signed with ``SECRET_KEY``.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from .errors import WikiError, handle

csrf = CSRFProtect()

#: Paths whose writes are not CSRF-checked (see the module docstring).
EXEMPT_PREFIXES = ("/api/", "/slack/")
DEFAULT_MAX_REQUEST_BYTES = 25 * 1024 * 1024
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def checks_csrf_itself(view):
    """Mark a view that calls :func:`csrf_problem` itself instead of failing with a 400."""
    view.checks_csrf_itself = True
    return view


def csrf_enabled() -> bool:
    return bool(current_app.config.get("WTF_CSRF_ENABLED", True))


def csrf_problem() -> str | None:
    """Why this request's CSRF token is refused, in words for the person, or ``None``."""
    if not csrf_enabled():
        return None
    try:
        csrf.protect()
    except CSRFError as exc:
        return _explain(exc)
    return None


def _explain(exc: CSRFError) -> str:
    return (f"This form could not be accepted ({exc.description.rstrip('.')}): the page was "
            "probably opened before the wiki restarted, or in another browser session. Nothing "
            "was saved.")


def max_request_bytes(app: Flask) -> int:
    return int(app.config.get("MAX_REQUEST_BYTES") or DEFAULT_MAX_REQUEST_BYTES)


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes(app)
    app.config.setdefault("WTF_CSRF_ENABLED", not app.testing)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked by _protect, which knows the exemptions
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    if app.config["WTF_CSRF_ENABLED"]:
        # Also defines csrf_token() in templates, which render the token field only
        # `{% if csrf_token is defined %}`.
        csrf.init_app(app)

    @app.before_request
    def _protect():
        if request.method not in _UNSAFE or request.path.startswith(EXEMPT_PREFIXES):
            return
        view = app.view_functions.get(request.endpoint)
        if view is None or getattr(view, "checks_csrf_itself", False) or not csrf_enabled():
            return
        csrf.protect()

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError):
        return handle(WikiError(400, _explain(exc) + " Go back, reload the page and try again."))

    @app.errorhandler(413)
    def _too_large(exc):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return handle(WikiError(413, (
            f"The request is larger than the limit of {limit:,} bytes "
            f"({limit / 1024 / 1024:.3g} MB, WIKI_MAX_REQUEST_BYTES). Nothing was saved. In the "
            "editor your text is kept as a draft in this browser: go back to get it.")))
