"""Thin views: parse the request, call the domain (:mod:`wiki.core`), render."""

from __future__ import annotations

from flask import abort, url_for

from .. import documents as d
from ..app_state import get_wiki
from ..store import NotFound


def document_url(doc, _external: bool = False) -> str:
    """URL of a document page from a Document, a DocumentRow or anything with kind/id/slug."""
    kind = doc.kind.name if isinstance(doc.kind, d.Kind) else doc.kind
    return url_for("pages.document", plural=d.KINDS[kind].plural, ident=doc.id, slug=doc.slug,
                   _external=_external)


def short_url(ident: str, _external: bool = False) -> str:
    return url_for("pages.short_link", ident=ident, _external=_external)


def get_document_or_404(ident: str) -> d.Document:
    try:
        return get_wiki().get(ident)
    except NotFound:
        abort(404, f"There is no document {ident}.")
