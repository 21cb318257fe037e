"""Writing in the browser: new documents from templates, the editor, previews, conflict views.

* ``GET /new`` — pick a kind, a template and a title; ``POST /new`` creates a postmortem as a
  ``draft`` (through :meth:`Wiki.create`) and opens its editor. Signatures open an unsaved editor.
* ``GET /new/<kind>`` — an editor for a document that does not exist yet, prefilled from the query
  (``/new/signature?patterns=…&examples=…``, linked by the signature matcher); ``POST`` creates it.
* ``GET|POST /<plural>/<id>/edit`` — the editor. ``POST`` saves (``action=save``), or re-renders
  the form for a preview (``action=preview``) or more blank rows (``action=add-…``). Every save
  carries the revision the form started from: a newer one gets the conflict view (409) with both
  texts and a merge; a rejected save re-renders what was typed (422); a deleted document shows the
  text to copy or save anew (410).
* ``POST /preview`` — the rendered body of an editor form, as an HTML fragment (for editor.js).

Views are thin: :mod:`wiki.editing` turns the form into front matter and back, :class:`Wiki`
validates and saves.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .. import db
from .. import doc_templates as templates
from .. import documents as d
from .. import history as history_module
from ..app_state import get_wiki
from ..editing import (
    INPUTS,
    MERGE_LABELS,
    ROW_FIELDS,
    EditorForm,
    document_text,
    has_conflict_markers,
    merge_fields,
    offsets_for,
)
from ..models import ServiceRow, TagRow
from ..render import mentioned_ids, render_markdown, resolver_from
from ..security import checks_csrf_itself, csrf_problem
from ..store import NotFound, StaleRevision
from . import document_url
from .pages import _PLURALS

bp = Blueprint("editor", __name__)

_DOC = f"/<any({_PLURALS}):plural>/<ident>"
_KIND_BY_PATH = {**{k.plural: k for k in d.KINDS.values()}, **{k.name: k for k in d.KINDS.values()}}

#: Review buttons: the action and the status it saves with.
REVIEW_ACTIONS = {"submit-review": "in-review", "publish": "published", "to-draft": "draft"}
#: "Add more rows" buttons: the action and the row editor it grows.
ADD_ROWS = {"add-ai": "action_items", "add-tl": "timeline", "add-pat": "patterns",
            "add-notpat": "not", "add-example": "examples", "add-not-example": "not_examples"}
MORE_ROWS = 3
MAX_AUTHOR = 200
MAX_MESSAGE = 500
#: What each template is for, shown on /new (templates a team adds show their name only).
TEMPLATE_NOTES = {
    "postmortem-full": "Every section: impact, timeline, causes, detection, response, what went "
                       "well and wrong, luck, action items, lessons.",
    "postmortem-short": "Summary, impact, timeline, root cause and action items — for small "
                        "incidents.",
    "postmortem-security": "Adds data exposure, containment, disclosure and notification.",
    "signature": "How to recognise it, why it happens, how to confirm, fix, seen in.",
}


@bp.before_app_request
def _remember_author() -> None:
    """Who is writing: the "Your name" of this browser session (until people sign in)."""
    if g.get("author") is None and session.get("author"):
        g.author = session["author"]


def _author() -> str | None:
    return g.get("author")


# --------------------------------------------------------------------------------------------
# Rendering the editor


def _datalists() -> dict[str, list[str]]:
    with get_wiki().session() as s:
        return {"services": [n for n, _ in db.named_values(s, ServiceRow)],
                "tags": [n for n, _ in db.named_values(s, TagRow)]}


def _preview_html(body: str):
    with get_wiki().session() as s:
        rows = db.titles(s, mentioned_ids(body))
    return render_markdown(body, resolver_from(rows, document_url)).html


def _field_errors(errors: list[d.FieldError], kind: d.Kind
                  ) -> tuple[dict[str, list[str]], list[str]]:
    """Errors by input name, and those that belong to no input (shown at the top)."""
    shown = {*INPUTS[kind.name], *ROW_FIELDS[kind.name], "body", "extra_yaml", "timeline",
             "base_revision"}
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for e in errors:
        if e.field in shown:
            by_field.setdefault(e.field, []).append(e.message)
        else:
            general.append(str(e))
    return by_field, general


def _draft_key(ident: str, revision: str) -> str:
    return f"wiki-draft:{ident}:{revision}"


def render_editor(form: EditorForm, *, doc: d.Document | None = None, status: int = 200,
                  errors: list[d.FieldError] | None = None, notice: str | None = None,
                  preview=None, more: str | None = None, conflict: dict | None = None,
                  draft_key: str | None = None, previous_draft_key: str = "",
                  action: str | None = None):
    kind = form.kind
    by_field, general = _field_errors(errors or [], kind)
    wiki = get_wiki()
    fields = form.fields
    context = dict(
        form=form, kind=kind, doc=doc, errors=by_field, general_errors=general, notice=notice,
        preview=preview, conflict=conflict,
        action=action or (url_for(".edit", plural=kind.plural, ident=doc.id) if doc
                          else url_for(".new_document", kind=kind.name)),
        draft_key=draft_key or (_draft_key(doc.id, form.base_revision) if doc else
                                f"wiki-draft:new-{kind.name}"),
        previous_draft_key=previous_draft_key,
        datalists=_datalists(), vocab=wiki.vocab, severities=d.SEVERITIES,
        statuses=kind.statuses, item_statuses=d.ACTION_ITEM_STATUSES,
        pattern_kinds=d.PATTERN_KINDS, match_modes=d.MATCH_MODES,
        offsets=offsets_for(*(fields.get(f"{t}_tz", "") for t in d.TIMESTAMPS)),
        blank={name: (MORE_ROWS + 2 if more == name else 2) for name in ADD_ROWS.values()},
        author=request.form.get("author", _author() or "") if request.method == "POST"
        else (_author() or ""),
        message=request.form.get("message", "") if request.method == "POST" else "",
        max_bytes=wiki.store.max_bytes,
        section=kind.plural,
    )
    return render_template("editor/edit.html", **context), status


# --------------------------------------------------------------------------------------------
# New documents


@bp.get("/new")
def new():
    return _new_page()


def _template_choices() -> dict[str, list[dict]]:
    content_dir = get_wiki().content_dir
    out = {}
    for kind in d.KINDS:
        out[kind] = [{"name": name, "label": name.removeprefix(f"{kind}-").replace("-", " "),
                      "note": TEMPLATE_NOTES.get(name, "")}
                     for name in templates.available(content_dir, kind)]
        default = templates.template_name(kind)
        out[kind].sort(key=lambda t: (t["name"] != default, t["name"]))
    return out


def _new_page(status: int = 200, errors: dict | None = None):
    args = request.form if request.method == "POST" else request.args
    kind = args.get("kind") if args.get("kind") in d.KINDS else "postmortem"
    return render_template("editor/new.html", choices=_template_choices(),
                           chosen=args.get("template") or templates.template_name(kind),
                           title=args.get("title", ""), errors=errors or {},
                           section="new"), status


def _kind_of_template(name: str) -> str | None:
    return next((k for k in d.KINDS if name == k or name.startswith(f"{k}-")), None)


@bp.post("/new")
def create():
    """Create a postmortem from a template as a draft and open its editor (a signature opens an
    unsaved editor)."""
    name = request.form.get("template") or templates.template_name(
        request.form.get("kind") or "postmortem")
    kind = _kind_of_template(name)
    if kind is None:
        return _new_page(422, {"template": "Choose one of the templates."})
    title = " ".join(request.form.get("title", "").split())
    if not title:
        return _new_page(422, {"title": "Give it a title: what happened, in a few words."})
    if kind == "signature":
        query = {"title": title, "template": name}
        return redirect(f"{url_for('.new_document', kind='signature')}?{urlencode(query)}", 303)
    wiki = get_wiki()
    try:
        template = templates.load_template(wiki.content_dir, name)
    except templates.TemplateNotFound as exc:
        return _new_page(422, {"template": str(exc)})
    except d.DocumentError as exc:
        return _new_page(422, {"template": f"The template {name} is broken: {exc}"})
    fm = {**template.front_matter, "title": title, "status": "draft"}
    if _author() and not fm.get("authors"):
        fm["authors"] = [_author().split(" <", 1)[0]]  # "ana <ana@example.com>" → "ana"
    try:
        doc = wiki.create(kind, fm, template.body, author=_author(),
                          message=f"Create from template {name}")
    except d.DocumentError as exc:
        return _new_page(422, {(e.field if e.field == "title" else "template"): e.message
                               for e in exc.errors})
    flash(f"Created {doc.id} as a draft from the {name} template. It is listed as a draft until "
          "it is reviewed and published.", "success")
    return redirect(url_for(".edit", plural=doc.kind.plural, ident=doc.id), 303)


def _prefilled(kind: d.Kind) -> EditorForm:
    """An unsaved document's form from the query: template, title, and for signatures the
    ``patterns`` (templates) and ``examples`` the matcher sends."""
    wiki = get_wiki()
    name = request.args.get("template") or templates.template_name(kind.name)
    if not (name == kind.name or name.startswith(f"{kind.name}-")):
        name = templates.template_name(kind.name)
    try:
        template = templates.load_template(wiki.content_dir, name)
    except (templates.TemplateNotFound, d.DocumentError):
        template = None
    fm = dict(template.front_matter) if template else {}
    fm["title"] = request.args.get("title", "")
    for key in ("services", "tags"):
        if request.args.get(key):
            fm[key] = request.args.get(key)
    try:
        fm = d.validate(kind, {**fm, "id": f"{kind.prefix}-1", "title": fm["title"] or "x"},
                        wiki.vocab)
        fm.pop("id")
        fm["title"] = request.args.get("title", "")
    except d.DocumentError:
        fm = {"title": fm["title"]}
    form = EditorForm.from_document(kind, fm, template.body if template else "")
    if kind is d.SIGNATURE:
        patterns = [p for p in request.args.getlist("patterns") if p.strip()]
        form.rows["patterns"] = [{"kind": "template", "value": p.strip(), "extra": ""}
                                 for p in patterns]
        form.examples["examples"] = [e.replace("\r\n", "\n") for e in
                                     request.args.getlist("examples") if e.strip()]
    return form


@bp.route("/new/<any(postmortem, signature):kind>", methods=["GET", "POST"])
@checks_csrf_itself
def new_document(kind: str):
    """An editor for a document that is created only when saved."""
    kind_ = d.KINDS[kind]
    query = request.query_string or b""
    draft_key = f"wiki-draft:new-{kind}:{hashlib.sha256(query).hexdigest()[:12]}"
    action = url_for(".new_document", kind=kind) + (f"?{query.decode()}" if query else "")
    if request.method == "GET":
        return render_editor(_prefilled(kind_), draft_key=draft_key, action=action)

    form = EditorForm.from_form(kind_, request.form)
    draft_key = request.form.get("draft_key") or draft_key
    common = dict(draft_key=draft_key, action=action)
    problem = csrf_problem()
    if problem:
        return render_editor(form, status=400, notice=problem + " Everything you typed is "
                             "below: save again.", **common)
    shown = _not_saving(form, None, common)
    if shown is not None:
        return shown
    wiki = get_wiki()
    try:
        fm, body = form.to_document({}, wiki.vocab)
        _check_size(form.kind, fm, body)
        doc = wiki.create(kind_, fm, body, author=_remember(), message=_message("Create"))
    except d.DocumentError as exc:
        return render_editor(form, status=422, errors=exc.errors, **common)
    return _saved(doc, [draft_key])


@bp.post("/new/from-text")
def recreate():
    """Save the text of a document that was deleted while being edited, as a new document."""
    kind = d.KINDS.get(request.form.get("kind", ""))
    text = request.form.get("text", "").replace("\r\n", "\n")
    if kind is None:
        abort(400, "Unknown kind of document.")
    try:
        fm_text, body = d.split_front_matter(text)
        fm, _lines = d.load_front_matter(fm_text)
        for key in ("id", "created", "updated"):
            fm.pop(key, None)
        doc = get_wiki().create(kind, fm, body, author=_author(),
                                message="Recreate a deleted document from its last edit")
    except d.DocumentError as exc:
        return render_template("editor/deleted.html", kind=kind, ident=None, text=text,
                               errors=[str(e) for e in exc.errors], section=kind.plural), 422
    flash(f"Saved as {doc.id}.", "success")
    return redirect(document_url(doc), 303)


# --------------------------------------------------------------------------------------------
# Editing


@bp.route(f"{_DOC}/edit", methods=["GET", "POST"])
@checks_csrf_itself
def edit(plural: str, ident: str):
    wiki = get_wiki()
    kind = _KIND_BY_PATH[plural]
    try:
        doc = wiki.get(ident)
    except NotFound:
        if request.method == "GET":
            abort(404, f"There is no document {ident}.")
        return _deleted(kind, ident, EditorForm.from_form(kind, request.form))
    if request.method == "GET":
        if plural != doc.kind.plural or ident != doc.id:
            return redirect(url_for(".edit", plural=doc.kind.plural, ident=doc.id), 301)
        return render_editor(EditorForm.from_document(doc.kind, doc.front_matter, doc.body,
                                                      doc.revision), doc=doc)

    form = EditorForm.from_form(doc.kind, request.form)
    previous = request.form.get("previous_draft_key", "")
    common = dict(doc=doc, previous_draft_key=previous,
                  draft_key=_draft_key(doc.id, form.base_revision))
    problem = csrf_problem()
    if problem:
        return render_editor(form, status=400, notice=problem + " Everything you typed is "
                             "below: save again.", **common)
    shown = _not_saving(form, doc, common)
    if shown is not None:
        return shown
    if not form.base_revision:
        return render_editor(form, status=400, notice="The form does not say which revision it "
                             "was started from, so it cannot be saved safely. Copy your text, "
                             "reload the editor and paste it back.", **common)
    try:
        fm, body = form.to_document(doc.front_matter, wiki.vocab)
        _check_size(doc.kind, fm, body)
        if request.form.get("merging") and has_conflict_markers(body):
            raise d.DocumentError([d.FieldError(
                "body", "still has conflict blocks (<<<<<<< yours … >>>>>>> current): keep what "
                        "should stay, delete the rest and the marker lines, then save")])
        saved = wiki.update(doc.id, fm, body, base_revision=form.base_revision,
                            author=_remember(), message=_message("Edit"))
    except d.DocumentError as exc:
        return render_editor(form, status=422, errors=exc.errors, **common)
    except StaleRevision:
        return _conflict(doc.kind, doc.id, form, fm, body)
    except NotFound:
        return _deleted(doc.kind, doc.id, form)
    return _saved(saved, [_draft_key(doc.id, form.base_revision), previous])


def _not_saving(form: EditorForm, doc: d.Document | None, common: dict):
    """The response to a Preview or "add more rows" press (``None`` when saving)."""
    action = request.form.get("action", "save")
    if action == "preview":
        return render_editor(form, preview=_preview_html(form.full_body()), **common)
    if action in ADD_ROWS:
        return render_editor(form, more=ADD_ROWS[action], **common)
    if action in REVIEW_ACTIONS and form.kind is d.POSTMORTEM:
        form.fields["status"] = REVIEW_ACTIONS[action]
    return None


def _check_size(kind: d.Kind, fm: dict, body: str) -> None:
    limit = get_wiki().store.max_bytes
    size = len(document_text(kind, fm, body).encode("utf-8"))
    if size > limit:
        raise d.DocumentError([d.FieldError(
            "body", f"makes the document {size:,} bytes; the limit is {limit:,} bytes "
                    f"(WIKI_MAX_FILE_BYTES). Nothing was saved: shorten it, or link big logs "
                    f"instead of pasting them.")])


def _remember() -> str | None:
    """The "Your name" field, remembered for this browser session (signed-in people are named
    by the sign-in proxy instead, see :mod:`wiki.auth`)."""
    if g.get("user"):
        return g.user
    name = " ".join(request.form.get("author", "").split())[:MAX_AUTHOR]
    if name:
        session["author"] = name
        g.author = name
    return _author()


def _message(default: str) -> str:
    text = " ".join(request.form.get("message", "").split())[:MAX_MESSAGE]
    action = request.form.get("action", "save")
    if action in REVIEW_ACTIONS:
        step = {"submit-review": "Submit for review", "publish": "Publish",
                "to-draft": "Back to draft"}[action]
        return f"{step}: {text}" if text else step
    return text or default


def _saved(doc: d.Document, draft_keys: list[str]):
    flash(f"Saved {doc.id} (revision {doc.revision[:8]}).", "success")
    if doc.kind is d.SIGNATURE:
        _flash_signature_checks(doc)
    for key in dict.fromkeys(k for k in draft_keys if k):
        flash(key, "clear-draft")
    if request.form.get("action") == "save-continue":
        return redirect(url_for(".edit", plural=doc.kind.plural, ident=doc.id), 303)
    return redirect(document_url(doc), 303)


def _flash_signature_checks(doc: d.Document) -> None:
    """Examples are tests: say which failed; and warn when the signature looks too broad."""
    from .. import signatures

    problems = signatures.check_examples(doc)
    for problem in problems:
        flash(f"Examples: {problem}.", "error")
    if doc.get("examples") and not problems:
        flash(f"All {len(doc.get('examples')) + len(doc.get('not_examples', []))} examples and "
              "look-alikes behave as written.", "success")
    texts = signatures.document_texts(get_wiki().store.scan()[0].values())
    for warning in signatures.breadth_warnings(doc, wiki_texts=texts):
        flash(f"Too broad? {warning}.", "info")


def _conflict(kind: d.Kind, ident: str, form: EditorForm, mine_fm: dict, mine_body: str):
    """Someone saved since this form was opened: both versions, a diff and a merge to edit."""
    wiki = get_wiki()
    history = current_app.extensions.get("history")
    current = wiki.get(ident)
    base = None
    if history is not None:
        try:
            base = d.parse(history.get(ident, form.base_revision).decode("utf-8", "replace"),
                           kind, current.path, wiki.vocab)
        except (history_module.HistoryError, NotFound, d.DocumentError, UnicodeError):
            base = None
    mine_valid = d.validate(kind, {**mine_fm, "id": current.id}, wiki.vocab)
    merged_fm, field_conflicts = merge_fields(base.front_matter if base else None, mine_valid,
                                              current.front_matter)
    merged_body, body_conflicts = history_module.merge3(
        base.body if base else "", mine_body, current.body, labels=MERGE_LABELS)
    mine_text = document_text(kind, mine_valid, mine_body)
    theirs_text = d.dumps(current)
    merged = EditorForm.from_document(kind, merged_fm, merged_body, current.revision)
    revisions = []
    if history is not None:
        try:
            revisions = [r for r in history.list(ident) if r.revision == current.revision]
        except NotFound:
            revisions = []
    conflict = dict(
        mine_text=mine_text, theirs_text=theirs_text,
        diff=SimpleNamespace(inline=history_module.inline_diff(theirs_text, mine_text),
                             old=SimpleNamespace(short="current"),
                             new=SimpleNamespace(short="yours")),
        field_conflicts={k: _shown(v) for k, v in field_conflicts.items()},
        body_conflicts=body_conflicts, base_known=base is not None,
        current=revisions[0] if revisions else None,
        current_author=history_module.split_author(revisions[0].author)[0] if revisions else None,
    )
    return render_editor(merged, doc=current, status=409, conflict=conflict,
                         previous_draft_key=_draft_key(ident, form.base_revision))


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(d.json_value(v)) for v in value) if all(
            not isinstance(v, (dict, list)) for v in value) else d.dump_yaml(d.json_value(value))
    return "" if value is None else str(d.json_value(value))


def _deleted(kind: d.Kind, ident: str, form: EditorForm):
    """The document is gone: show what was typed, to copy or to save as a new document."""
    try:
        fm, body = form.to_document({}, get_wiki().vocab)
        text = document_text(kind, fm, body)
    except d.DocumentError:
        text = document_text(kind, {"title": form.fields.get("title", "")}, form.full_body())
    history = current_app.extensions.get("history")
    status = 404
    if history is not None:
        try:
            history.list(ident)
            status = 410
        except NotFound:
            status = 404
    return render_template("editor/deleted.html", kind=kind, ident=d.normalise_id(ident) or ident,
                           text=text, errors=[], section=kind.plural), status


# --------------------------------------------------------------------------------------------
# Preview


@bp.post("/preview")
def preview():
    """The body of an editor form (``kind`` plus the editor's fields), rendered."""
    kind = d.KINDS.get(request.form.get("kind", "postmortem"))
    if kind is None:
        abort(400, "kind must be postmortem or signature.")
    body = EditorForm.from_form(kind, request.form).full_body()
    limit = get_wiki().store.max_bytes
    if len(body.encode("utf-8")) > limit:
        message = (f"The text is over {limit:,} bytes (WIKI_MAX_FILE_BYTES), too long to "
                   "preview or save.")
        return render_template("editor/_preview.html", html=None, message=message), 413
    return render_template("editor/_preview.html", html=_preview_html(body), message=None)
