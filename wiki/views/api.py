"""JSON API v1: documents. Errors are ``{"error": …}`` with the right status (see wiki.errors)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import db
from .. import documents as d
from ..app_state import get_wiki
from ..errors import WikiError
from . import document_url, get_document_or_404

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_LIMIT = 200


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
    """``?kind=postmortem|signature&limit=&offset=`` → ``{"total", "limit", "offset", "documents"}``."""
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
    """One document: id, kind, title, url, front_matter (unknown fields included), body, revision."""
    doc = get_document_or_404(ident)
    response = jsonify(document_json(doc))
    response.set_etag(doc.revision)
    return response.make_conditional(request)
