"""JSON API v1: documents. Errors are ``{"error": …}`` with the right status (see wiki.errors).

Writes (``POST /documents``, ``PUT /documents/<id>``) take ``application/json`` only (so a
cross-site HTML form cannot make one) and go through :class:`wiki.core.Wiki`, so each is a
validated revision, in the database and the search index when the response returns. They are
open to anyone who can reach the wiki until an API token exists (``wiki token create NAME``);
from then on they need ``Authorization: Bearer <token>`` (401 without a valid one). Reads stay
open. The whole API is described by ``GET /api/v1/openapi.json`` (:mod:`wiki.openapi`).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for

from .. import db
from .. import documents as d
from ..app_state import get_wiki
from ..errors import WikiError
from ..store import NotFound, StaleRevision
from ..tokens import TokenError, bearer
from . import document_url, get_document_or_404

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_LIMIT = 200


# -- API tokens (issue 7): writes need a bearer token once one exists ------------------------
@bp.before_request
def _require_token_for_writes():
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    require_write_token()


def require_write_token() -> None:
    """401 unless the request carries a valid ``Authorization: Bearer`` token, once any token
    exists (also used by ``POST /api/v1/assets`` for uploads that come without a session)."""
    store = current_app.extensions.get("tokens")
    try:
        if store is None or not store.enabled():
            return
        token = store.verify(bearer(request.headers.get("Authorization")))
    except TokenError as exc:
        raise WikiError(503, f"API tokens cannot be checked: {exc}") from None
    if token is None:
        raise WikiError(401, "This wiki's API needs a token to write: send Authorization: "
                             "Bearer <token> (made with `wiki token create NAME`).",
                        headers={"WWW-Authenticate": 'Bearer realm="wiki"'})
    g.api_token = token.name
    if not g.get("author"):  # revisions name the token when the request names no author
        g.author = f"{token.name} (API token)"
# -- end API tokens ---------------------------------------------------------------------------


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WikiError(400, f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise WikiError(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


def document_json(doc: d.Document, include_body: bool = True) -> dict:
    out = {
        "id": doc.id,
        "kind": doc.kind.name,
        "title": doc.title,
        "url": document_url(doc, _external=True),
        "front_matter": d.json_value(doc.front_matter),
    }
    if include_body:
        out["body"] = doc.body
    out["revision"] = doc.revision
    return out


@bp.get("/documents")
def list_documents():
    """``?kind=postmortem|signature&limit=&offset=`` →
    ``{"total", "limit", "offset", "documents"}``."""
    kind = request.args.get("kind") or None
    if kind is not None and kind not in d.KINDS:
        raise WikiError(400, f"kind must be one of {', '.join(d.KINDS)}, got {kind!r}")
    limit = _int_arg("limit", 50, 1, MAX_LIMIT)
    offset = _int_arg("offset", 0, 0, 10**9)
    with get_wiki().session() as session:
        rows, total = db.list_documents(session, db.Filters(kind=kind), sort="-date",
                                        limit=limit, offset=offset)
    documents = [{
        "id": row.id,
        "kind": row.kind,
        "title": row.title,
        "url": document_url(row, _external=True),
        "status": row.status,
        "severity": row.severity,
        "date": row.date.isoformat() if row.date else None,
        "summary": row.summary,
        "revision": row.revision,
    } for row in rows]
    return jsonify({"total": total, "limit": limit, "offset": offset, "documents": documents})


@bp.get("/documents/<ident>")
def get_document(ident: str):
    """One document: id, kind, title, url, front_matter (unknown fields too), body, revision."""
    doc = get_document_or_404(ident)
    response = jsonify(document_json(doc))
    response.set_etag(doc.revision)
    return response.make_conditional(request)


# --------------------------------------------------------------------------------------------
# Writing


def _json_body() -> dict:
    """The request's JSON object, or a 400 saying what is wrong with it."""
    if not request.is_json:
        raise WikiError(400, "Send a JSON object with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WikiError(400, "The body is not a JSON object: send "
                             '{"kind", "front_matter", "body"}.')
    front_matter = data.get("front_matter", {})
    if not isinstance(front_matter, dict):
        raise WikiError(400, "front_matter must be a JSON object of field: value.")
    data["front_matter"] = front_matter  # absent: {} (found by Schemathesis, issue 7)
    if not isinstance(data.get("body", ""), str):
        raise WikiError(400, "body must be a string of Markdown.")
    for key in ("author", "message"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise WikiError(400, f"{key} must be a string.")
    return data


def _invalid(errors: list[d.FieldError]) -> WikiError:
    fields: dict[str, str] = {}
    for e in errors:
        name = e.field or "document"
        fields[name] = f"{fields[name]}; {e.message}" if name in fields else e.message
    return WikiError(422, "The document is not valid: " + "; ".join(
        f"{k}: {v}" for k, v in fields.items()), {"fields": fields})


def _check_size(kind: d.Kind, front_matter: dict, body: str) -> None:
    limit = get_wiki().store.max_bytes
    size = len(body.encode("utf-8"))
    if size > limit:
        raise _invalid([d.FieldError("body", f"is {size:,} bytes; a document can be at most "
                                             f"{limit:,} bytes (WIKI_MAX_FILE_BYTES)")])


def _written(doc: d.Document, status: int):
    response = jsonify(document_json(doc))
    response.status_code = status
    response.set_etag(doc.revision)
    if status == 201:
        response.headers["Location"] = url_for(".get_document", ident=doc.id, _external=True)
    return response


def _author(data: dict) -> str | None:
    return (data.get("author") or "").strip() or g.get("author")


@bp.post("/documents")
def create_document():
    """``{"kind", "front_matter", "body"}`` → 201 with the new document (its id is assigned
    here; an id in ``front_matter`` is ignored). Optional ``author`` and ``message``."""
    data = _json_body()
    kind = data.get("kind")
    if kind not in d.KINDS:
        raise _invalid([d.FieldError("kind", f"must be one of {', '.join(d.KINDS)}, got "
                                             f"{kind!r}")])
    front_matter = {k: v for k, v in data["front_matter"].items() if k not in ("id", "created",
                                                                               "updated")}
    body = data.get("body", "")
    _check_size(d.KINDS[kind], front_matter, body)
    try:
        doc = get_wiki().create(kind, front_matter, body, author=_author(data),
                                message=data.get("message") or "Create (API)")
    except d.DocumentError as exc:
        raise _invalid(exc.errors) from None
    return _written(doc, 201)


def _if_match() -> str | None:
    """The revision in ``If-Match`` (``"abc"``, ``W/"abc"`` or bare ``abc``); ``"*"`` for any."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw:
        return None
    if raw == "*":
        return "*"
    first = raw.split(",")[0].strip()
    if first.startswith("W/"):
        first = first[2:]
    return first.strip('"') or None


@bp.put("/documents/<ident>")
def replace_document(ident: str):
    """Replace a document's front matter and body. ``If-Match: <revision>`` is required (428
    without it); a revision that is no longer current gets 412 with ``current_revision``."""
    current = get_document_or_404(ident)
    expected = _if_match()
    if expected is None:
        raise WikiError(428, "Send If-Match: <revision> (the revision your change is based on, "
                             "from GET or the last write's ETag).",
                        {"current_revision": current.revision})
    data = _json_body()
    if data.get("kind") not in (None, current.kind.name):
        raise _invalid([d.FieldError("kind", f"{current.id} is a {current.kind.name}; the kind "
                                             "of a document cannot change")])
    front_matter = {k: v for k, v in data["front_matter"].items() if k not in ("id", "updated")}
    body = data.get("body", "")
    _check_size(current.kind, front_matter, body)
    base = current.revision if expected == "*" else expected
    try:
        doc = get_wiki().update(current.id, front_matter, body, base_revision=base,
                                author=_author(data), message=data.get("message") or "Edit (API)")
    except d.DocumentError as exc:
        raise _invalid(exc.errors) from None
    except StaleRevision as exc:
        raise WikiError(412, f"{current.id} changed since revision {expected}: get it again, "
                             f"apply your change and send If-Match: {exc.current}.",
                        {"current_revision": exc.current},
                        headers={"ETag": f'"{exc.current}"'} if exc.current else None) from None
    except NotFound:
        raise WikiError(404, f"There is no document {ident}.") from None
    return _written(doc, 200)
