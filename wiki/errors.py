"""One error type, one handler: HTML pages from ``errors/<status>.html``, JSON under ``/api/``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from jinja2 import TemplateNotFound
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class WikiError(HTTPException):
    """An error meant for the user: a status code, a message and optional details (e.g. fields)."""

    def __init__(self, status: int, message: str, details: dict | None = None,
                 headers: dict | None = None):
        super().__init__(description=message)
        self.code = status
        self.details = details or {}
        self.extra_headers = headers or {}


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def handle(error: Exception):
    if not isinstance(error, HTTPException):
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = InternalServerError()
    status = error.code or 500
    message = error.description or error.name
    details = getattr(error, "details", {}) or {}
    headers = dict(getattr(error, "extra_headers", {}) or {})
    if wants_json():
        response = jsonify({"error": message, **details})
    else:
        try:
            body = render_template(f"errors/{status}.html", error=error, message=message,
                                   details=details)
        except TemplateNotFound:
            body = render_template("errors/error.html", error=error, message=message,
                                   details=details, status=status)
        response = body
        response = (response, status)
        from flask import make_response

        response = make_response(*response)
    response.status_code = status
    if isinstance(error, HTTPException) and hasattr(error, "get_headers"):
        for key, value in error.get_headers():
            if key.lower() not in ("content-type",):
                response.headers[key] = value
    response.headers.update(headers)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)
