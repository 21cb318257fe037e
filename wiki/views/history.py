"""History pages: a document's revisions, a diff of any two, one revision's text, restoring.

Thin: the work is :class:`wiki.history.History`'s. Every page works without JavaScript: the
history list is a GET form of radio buttons posting to the diff page.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from .. import documents as d
from ..history import History, Revision, RevisionNotFound
from ..store import NotFound, StaleRevision
from . import document_url, get_document_or_404
from .pages import _PLURALS

bp = Blueprint("history", __name__)

# The document prefix must be spelt exactly as the document page's route, so that werkzeug's
# matcher shares it and the static ``history``/``diff``/``revisions`` parts win over its
# ``<slug>``.
_DOC = f"/<any({_PLURALS}):plural>/<ident>"
MODES = ("inline", "side")


def get_history() -> History:
    return current_app.extensions["history"]


def current_author() -> str | None:
    """Who is acting: set ``g.author`` (``"Name <email>"``) once people sign in; until then the
    configured default author is used."""
    return g.get("author")


def _document(plural: str, ident: str) -> tuple[d.Document, Response | None]:
    """The document, and a redirect when the URL is not its canonical spelling (GET only)."""
    doc = get_document_or_404(ident)
    if request.method == "GET" and (plural != doc.kind.plural or ident != doc.id):
        args = {**request.args.to_dict(), **request.view_args, "plural": doc.kind.plural,
                "ident": doc.id}
        return doc, redirect(url_for(request.endpoint, **args), 301)
    return doc, None


def _revisions(doc: d.Document) -> list[Revision]:
    try:
        return get_history().list(doc.id)
    except NotFound:
        abort(404, f"There is no document {doc.id}.")


def _find(doc: d.Document, revision: str, revisions: list[Revision] | None = None) -> Revision:
    try:
        return get_history().find(doc.id, revision, revisions)
    except RevisionNotFound:
        abort(404, f"{doc.id} has no revision {revision!r}.")


@bp.get(f"{_DOC}/history")
def history(plural: str, ident: str):
    doc, moved = _document(plural, ident)
    if moved:
        return moved
    revisions = _revisions(doc)
    comparable = [n for n, r in enumerate(revisions) if not r.deleted]
    return render_template(
        "history/index.html", doc=doc, revisions=revisions, section=doc.kind.plural,
        checked_to=comparable[0] if comparable else None,
        checked_from=comparable[1] if len(comparable) > 1 else None,
    )


@bp.get(f"{_DOC}/diff")
def diff(plural: str, ident: str):
    doc, moved = _document(plural, ident)
    if moved:
        return moved
    mode = request.args.get("mode") or "inline"
    if mode not in MODES:
        abort(400, f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    revisions = _revisions(doc)
    comparable = [r for r in revisions if not r.deleted]
    to_rev = request.args.get("to") or (comparable[0].revision if comparable else "")
    from_rev = request.args.get("from") or (
        comparable[1].revision if len(comparable) > 1 else to_rev)
    old, new = _find(doc, from_rev, revisions), _find(doc, to_rev, revisions)
    result = get_history().diff(doc.id, old.revision, new.revision, revisions=revisions)
    return render_template("history/diff.html", doc=doc, diff=result, mode=mode,
                           section=doc.kind.plural)


@bp.get(f"{_DOC}/revisions/<rev>")
def revision(plural: str, ident: str, rev: str):
    doc, moved = _document(plural, ident)
    if moved:
        return moved
    entry = _find(doc, rev)
    text = get_history().text(doc.id, entry)
    return render_template("history/revision.html", doc=doc, rev=entry, text=text,
                           section=doc.kind.plural)


@bp.get(f"{_DOC}/revisions/<rev>/raw")
def raw(plural: str, ident: str, rev: str):
    """The revision's file as plain text (never sniffed as HTML)."""
    doc, moved = _document(plural, ident)
    if moved:
        return moved
    entry = _find(doc, rev)
    data = get_history().read(doc.id, entry)
    response = Response(data, mimetype="text/plain")
    response.charset = "utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post(f"{_DOC}/revisions/<rev>/restore")
def restore(plural: str, ident: str, rev: str):
    """Save an old revision as a new one, conflict-checked against the revision the form saw."""
    doc, _ = _document(plural, ident)
    entry = _find(doc, rev)
    base = request.form.get("base_revision") or doc.revision
    try:
        restored = get_history().restore(doc.id, entry.revision, author=current_author(),
                                         base_revision=base)
    except StaleRevision:
        flash(f"{doc.id} changed since you opened it; nothing was restored. Review the "
              f"latest revisions and try again.", "error")
        return redirect(url_for(".history", plural=doc.kind.plural, ident=doc.id), 303)
    except d.DocumentError as exc:
        abort(422, f"Revision {entry.short} cannot be restored: it is not a valid "
                   f"{doc.kind.name} today ({exc}).")
    flash(f"Restored revision {entry.short} of {doc.id} as a new revision.", "success")
    return redirect(document_url(restored), 303)
