"""Similar incidents: the panel on every document page and in the editor, curating, the API.

* ``POST /api/v1/similar`` with ``{"text": …, "limit": 10, "exclude": [ids], "before": "ISO date",
  "kind": "postmortem|signature"}`` (``application/json``) → ``{"results": [{"id", "title",
  "url", "score", "reasons": [{"kind", "text", "values"}]}]}``. Optional ``title``,
  ``services`` and ``tags`` add what the text's structure says.
* ``GET /api/v1/documents/<id>/similar?limit=&kind=&before=`` → the same, for a document (not
  itself, nor what it links to or dismissed).
* ``POST /<plural>/<id>/similar/link`` and ``…/similar/dismiss`` (form: ``target``) — "link"
  writes each id into the other's ``related``, "not related" into ``not_related``: normal
  revisions of both documents. ``both=0`` writes only the target (the editor does that, and
  puts the id into its own form instead). Answers JSON to a request that asks for it.
* ``POST /similar/draft`` — the panel as an HTML fragment for an editor form (``kind``, the
  editor's fields and ``doc_id``): ``static/js/similar.js`` posts the draft as it changes.

Views are thin: the ranking is :class:`wiki.similar.SimilarIndex` (``app.extensions["similar"]``),
created by :func:`init_app` and kept current as a listener of the app's wiki.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)

from .. import documents as d
from .. import similar as sim
from ..app_state import get_wiki
from ..errors import WikiError
from ..store import NotFound, StaleRevision
from . import document_url, get_document_or_404
from .pages import _PLURALS

log = logging.getLogger(__name__)

bp = Blueprint("similar", __name__)

#: Suggestions shown in the panel.
PANEL_LIMIT = 5
DEFAULT_LIMIT = 10
_DOC = f"/<any({_PLURALS}):plural>/<ident>"


def init_app(app: Flask) -> None:
    """Create the app's :class:`~wiki.similar.SimilarIndex` and make it follow the wiki.

    Call it after ``search.init_app`` and ``match.init_app`` (it uses their indexes) and before
    ``app_state.start`` (whose sync feeds it).
    """
    search = app.extensions.get("search")
    app.extensions["similar"] = sim.SimilarIndex(
        search=getattr(search, "index", search),
        signatures=app.extensions.get("signatures"),
        cache_path=Path(app.config["DATA_DIR"]) / "similar" / "features.json",
    ).attach(app.extensions["wiki"])


def get_index() -> sim.SimilarIndex:
    index = current_app.extensions.get("similar")
    if index is None:  # init_app not called: wire one in now
        init_app(current_app)
        index = current_app.extensions["similar"]
    return index


def results_json(result: sim.SimilarResult) -> dict:
    return {"results": [s.to_json(document_url(s, _external=True)) for s in result.suggestions],
            "messages": result.messages}


# --------------------------------------------------------------------------------------------
# The panel (included by document pages and the editor)


@bp.app_template_global()
def similar_for(doc, limit: int = PANEL_LIMIT) -> sim.SimilarResult | None:
    """Similar documents for a document page; ``None`` when they cannot be had right now."""
    try:
        return get_index().similar_to_cached(doc, limit=limit)
    except Exception:  # noqa: BLE001 - the page shows without its panel rather than failing
        log.exception("similar documents for %s failed", getattr(doc, "id", "?"))
        return None


# --------------------------------------------------------------------------------------------
# API


def _json_request() -> dict:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise WikiError(415, 'Send JSON (Content-Type: application/json): {"text": "…"}.')
    try:
        data = json.loads(request.get_data(cache=False).decode("utf-8", "replace"))
    except ValueError:
        raise WikiError(400, 'The body is not valid JSON; send {"text": "…"}.') from None
    if not isinstance(data, dict):
        raise WikiError(400, 'Send a JSON object: {"text": "…", "limit": 10}.')
    return data


def _limit(value, default: int = DEFAULT_LIMIT) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError):
        raise WikiError(400, f"“limit” must be a whole number from 1 to {sim.MAX_LIMIT}, "
                             f"not {str(value)[:40]!r}.") from None
    return max(1, min(number, sim.MAX_LIMIT))


def _kind(value) -> str | None:
    if value is None or value == "":
        return None
    kind = str(value).strip().lower()
    kind = {"pm": "postmortem", "postmortems": "postmortem", "sig": "signature",
            "signatures": "signature"}.get(kind, kind)
    if kind not in d.KINDS:
        raise WikiError(400, f"“kind” must be “postmortem” or “signature”, not "
                             f"{str(value)[:40]!r}.")
    return kind


def _strings(data: dict, name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise WikiError(400, f"“{name}” must be a list of strings, like [\"PM-3\", \"SIG-2\"].")
    return [str(v).strip() for v in value if str(v).strip()]


def _run(**kwargs) -> sim.SimilarResult:
    try:
        return get_index().similar(**kwargs)
    except sim.BadQuery as exc:
        raise WikiError(400, str(exc)) from None


@bp.post("/api/v1/similar")
def api_similar():
    """Documents similar to a text, best first, each with a score and its reasons."""
    data = _json_request()
    text = data.get("text")
    if text is None:
        raise WikiError(400, 'Send {"text": "…"}: the words of an incident, an error or a log.')
    if not isinstance(text, str):
        raise WikiError(400, "“text” must be a string.")
    title = data.get("title") or ""
    if not isinstance(title, str):
        raise WikiError(400, "“title” must be a string.")
    result = _run(text=text, title=title, services=_strings(data, "services"),
                  tags=_strings(data, "tags"), exclude=_strings(data, "exclude"),
                  before=_before(data.get("before")), kind=_kind(data.get("kind")),
                  limit=_limit(data.get("limit")))
    return jsonify(results_json(result))


def _before(value):
    if value is not None and not isinstance(value, str):
        raise WikiError(400, "“before” must be an ISO 8601 date or date-time string, like "
                             "2023-06-14 or 2023-06-14T09:12:00Z.")
    try:
        return sim.parse_before(value)
    except sim.BadQuery as exc:
        raise WikiError(400, str(exc)) from None


@bp.get("/api/v1/documents/<ident>/similar")
def api_document_similar(ident: str):
    """Documents similar to one document (not itself, nor those it links to or dismissed)."""
    doc = get_document_or_404(ident)
    result = _run(**{**sim.document_query(doc), "limit": _limit(request.args.get("limit")),
                     "kind": _kind(request.args.get("kind")),
                     "before": _before(request.args.get("before")),
                     "exclude": [i for v in request.args.getlist("exclude")
                                 for i in v.split(",")]})
    return jsonify(results_json(result))


# --------------------------------------------------------------------------------------------
# Curating


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _author() -> str | None:
    return g.get("author") or session.get("author") or None


def _back(doc: d.Document) -> str:
    """Where to go after a form: the ``next`` field when it is a path of this site."""
    target = request.form.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc \
            and "\\" not in target:
        return target
    return document_url(doc)


def _curate(plural: str, ident: str, action):
    doc = get_document_or_404(ident)
    target = request.form.get("target", "")
    both = request.form.get("both", "1") != "0"
    base = request.form.get("base_revision") or None
    verb = "linked to" if action is sim.link else "marked not related to"
    try:
        if both:
            first, second = action(get_wiki(), doc.id, target, author=_author(),
                                   base_revision=base)
        else:
            first, second = None, _one_side(action, doc, target)
    except sim.CurateError as exc:
        raise WikiError(400, str(exc)) from None
    except NotFound:
        raise WikiError(404, f"There is no document {str(target)[:40]}.") from None
    except StaleRevision:
        raise WikiError(409, f"{doc.id} changed since this page was opened; nothing was saved. "
                             "Reload the page and try again.") from None
    except d.DocumentError as exc:
        raise WikiError(422, f"Could not save: {exc}") from None
    message = f"{doc.id} {verb} {second.id}."
    if _wants_json():
        return jsonify({"ok": True, "message": message, "source": doc.id, "target": second.id,
                        "revisions": {x.id: x.revision for x in (first, second) if x}})
    flash(message, "success")
    return redirect(_back(doc), 303)


def _one_side(action, doc: d.Document, target: str) -> d.Document:
    """Only the target gets the source's id (the editor keeps its own side in its form)."""
    other = d.normalise_id(target)
    if not other:
        raise sim.CurateError("Give the id of the suggested document, like PM-3.")
    if other == doc.id:
        raise sim.CurateError("A document cannot be linked to itself.")
    fieldname = "related" if action is sim.link else sim.NOT_RELATED
    verb = "Link" if action is sim.link else "Not related:"
    return sim._add_to(get_wiki(), other, fieldname, doc.id, None, _author(),
                       f"{verb} {doc.id} (similar incidents)")


@bp.post(f"{_DOC}/similar/link")
def link(plural: str, ident: str):
    """Link a suggested document: each id into the other's ``related``."""
    return _curate(plural, ident, sim.link)


@bp.post(f"{_DOC}/similar/dismiss")
def dismiss(plural: str, ident: str):
    """"Not related": each id into the other's ``not_related``; never suggested again."""
    return _curate(plural, ident, sim.dismiss)


# --------------------------------------------------------------------------------------------
# While writing


def _draft_query() -> dict:
    """What to compare an editor form with: its title, text, timeline, services and tags."""
    from ..editing import EditorForm

    kind = d.KINDS.get(request.form.get("kind", "postmortem"))
    if kind is None:
        abort(400, "kind must be postmortem or signature.")
    form = EditorForm.from_form(kind, request.form)
    fields = form.fields
    parts = [fields.get("customer_impact", ""), fields.get("trigger", ""), form.full_body()]
    if kind is d.SIGNATURE:
        parts += [r.get("value", "") for r in form.rows.get("patterns", [])]
        parts += form.examples.get("examples", [])

    def split(name: str) -> list[str]:
        return [v.strip() for v in fields.get(name, "").replace("\n", ",").split(",")
                if v.strip()]

    source = d.normalise_id(request.form.get("doc_id", ""))
    return dict(text="\n\n".join(p for p in parts if p and p.strip()),
                title=fields.get("title", ""), services=split("services"), tags=split("tags"),
                signatures=split("signatures"), exclude=split("related"), source=source,
                limit=PANEL_LIMIT), source


@bp.post("/similar/draft")
def draft():
    """The panel for an editor form, as an HTML fragment (see static/js/similar.js)."""
    query, source = _draft_query()
    result, empty = None, False
    try:
        result = get_index().similar(**query)
    except sim.BadQuery:
        empty = True
    except Exception:  # noqa: BLE001 - a panel that fails says so; the editor goes on
        log.exception("similar documents for a draft failed")
    return render_template("similar/_panel.html", similar=result, similar_empty=empty,
                           source=source, editing=True)
