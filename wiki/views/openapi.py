"""``GET /api/v1/openapi.json``: the OpenAPI document of the JSON API (built by
:mod:`wiki.openapi` for the parts this app has)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .. import __version__, openapi
from ..chat import public_url

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_json():
    server = public_url("pages.home").rstrip("/")
    spec = openapi.build(server, frozenset(current_app.view_functions), __version__)
    response = jsonify(spec)
    response.headers["Access-Control-Allow-Origin"] = "*"  # API explorers on other origins
    return response
