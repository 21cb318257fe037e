"""Read-only pages: home, lists with filters, documents, tags, services and content problems.

Views are thin: read the request, ask :mod:`wiki.db` or :class:`wiki.core.Wiki`, render a template
from the folder of their area (``home/``, ``postmortems/``, ``signatures/``, ``tags/``,
``services/``, ``problems/``).
"""

from __future__ import annotations

import math
from datetime import date
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.routing import BaseConverter, PathConverter

from .. import db
from .. import documents as d
from ..app_state import get_wiki
from ..models import ServiceRow, TagRow
from ..render import mentioned_ids, render_markdown, resolver_from
from . import document_url, get_document_or_404, short_url

bp = Blueprint("pages", __name__)

PER_PAGE = 25
#: Values shown per facet, most used first (tags and services have pages listing them all).
FACET_LIMIT = 8

#: Query parameters each list understands, in the order the facets are shown.
LIST_FILTERS = {
    "postmortem": ("severity", "status", "service", "tag", "year", "root_cause"),
    "signature": ("status", "service", "tag"),
}
SORT_LABELS = {
    "postmortem": {"date": "Newest", "-date": "Oldest", "severity": "Severity", "title": "Title",
                   "ttr": "Time to resolve"},
    "signature": {"date": "Newest", "-date": "Oldest", "title": "Title",
                  "updated": "Recently updated"},
}
FACET_LABELS = {"severity": "Severity", "status": "Status", "service": "Service", "tag": "Tag",
                "year": "Year", "root_cause": "Root cause"}

_KIND_BY_PATH = {**{k.plural: k for k in d.KINDS.values()}, **{k.name: k for k in d.KINDS.values()}}
_PLURALS = ", ".join(_KIND_BY_PATH)


class DocIdConverter(BaseConverter):
    """Matches document ids only (``PM-7``, ``sig-3``), so ``/<id>`` shadows no other route."""

    regex = r"(?i:pm|sig)-[0-9]{1,9}"


class NameConverter(PathConverter):
    """A tag or service name: anything, slashes included (even leading or doubled ones)."""

    regex = r"/*[^/].*?"  # PathConverter's "[^/].*?", plus leading slashes


def _register_converters(state) -> None:
    state.app.url_map.converters.setdefault("docid", DocIdConverter)
    state.app.url_map.converters.setdefault("name", NameConverter)


# Registered before the routes below are added to the app's URL map.
bp.record_once(_register_converters)
bp.add_app_template_global(document_url)
bp.add_app_template_global(short_url)


# --------------------------------------------------------------------------------------------
# Template helpers: URLs that keep the current query, tests on values from content


def _current_url(pairs: list[tuple[str, str]]) -> str:
    base = url_for(request.endpoint, **(request.view_args or {}))
    query = urlencode(pairs)
    return f"{base}?{query}" if query else base


@bp.app_template_global()
def url_with(**changes) -> str:
    """The current URL with query parameters replaced (``None`` removes one); resets ``page``."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k not in changes and k != "page"]
    pairs += [(k, str(v)) for k, v in changes.items() if v is not None]
    return _current_url(pairs)


@bp.app_template_global()
def url_toggle(name: str, value) -> str:
    """The current URL with filter ``name=value`` added, or removed when already active."""
    value = str(value)
    active = is_filtered(name, value)
    pairs = [(k, v) for k, v in request.args.items(multi=True)
             if k != "page" and not (k == name and v.lower() == value.lower())]
    if not active:
        pairs.append((name, value))
    return _current_url(pairs)


@bp.app_template_global()
def is_filtered(name: str, value) -> bool:
    return str(value).lower() in (v.lower() for v in request.args.getlist(name))


@bp.app_template_test("http_url")
def is_http_url(value) -> bool:
    """Only these values from content become ``href``s outside Markdown (no ``javascript:``)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


@bp.app_template_filter("hostname")
def hostname(url: str) -> str:
    """``https://chat.example.com/archives/…`` → ``chat.example.com`` (link labels)."""
    try:
        return urlsplit(str(url)).hostname or str(url)
    except ValueError:  # e.g. "https://[not-an-ipv6"
        return str(url)


# --------------------------------------------------------------------------------------------
# Home


@bp.get("/")
def home():
    with get_wiki().session() as session:
        actions, open_count = db.open_action_items(session, limit=8)
        context = dict(
            recent=db.recent(session, "postmortem", limit=8),
            signatures=db.recent(session, "signature", limit=8, status="active"),
            in_review=db.recent(session, "postmortem", limit=10, status="in-review"),
            due_items=[(item, row) for item, row in actions if item.due][:5],
            open_count=open_count,
            counts=db.counts(session),
            problem_count=len(db.problems(session)),
        )
    return render_template("home/index.html", today=date.today(), **context)


# --------------------------------------------------------------------------------------------
# Lists


def _filters(kind: d.Kind) -> db.Filters:
    filters = db.Filters(kind=kind.name)
    for name in LIST_FILTERS[kind.name]:
        values = [v.strip() for v in request.args.getlist(name) if v.strip()]
        if name == "year":
            values = [int(v) for v in values if v.isdigit() and len(v) <= 4]
        elif name == "severity":
            values = [v.upper() for v in values]
        elif name in ("status", "root_cause"):
            values = [v.lower() for v in values]
        setattr(filters, name, list(dict.fromkeys(values)))
    return filters


def _facet(name: str, values: list[tuple[str, int]]) -> dict:
    """One facet for the template: its most used values plus every active one."""
    active = {v.lower() for v in request.args.getlist(name)}
    shown = [(v, c) for n, (v, c) in enumerate(values)
             if n < FACET_LIMIT or str(v).lower() in active]
    more = {"service": "pages.services", "tag": "pages.tags"}.get(name)
    return {"name": name, "label": FACET_LABELS[name], "values": shown,
            "hidden": len(values) - len(shown), "more": url_for(more) if more else None}


def _listing(kind: d.Kind):
    filters = _filters(kind)
    sorts = SORT_LABELS[kind.name]
    sort = request.args.get("sort", "date")
    sort = sort if sort in sorts else "date"
    page = max(request.args.get("page", 1, type=int), 1)
    with get_wiki().session() as session:
        rows, total = db.list_documents(session, filters, sort, PER_PAGE, (page - 1) * PER_PAGE)
        facets = db.facet_values(session, filters)
    active = [(name, value) for name in LIST_FILTERS[kind.name]
              for value in dict.fromkeys(request.args.getlist(name)) if value.strip()]
    return render_template(
        f"{kind.plural}/list.html",
        kind=kind, rows=rows, total=total, page=page,
        pages=max(1, math.ceil(total / PER_PAGE)), per_page=PER_PAGE,
        facets=[_facet(name, facets.get(name, [])) for name in LIST_FILTERS[kind.name]],
        active=active, facet_labels=FACET_LABELS, sort=sort, sorts=sorts,
    )


@bp.get("/postmortems/")
def postmortems():
    return _listing(d.POSTMORTEM)


@bp.get("/signatures/")
def signatures():
    return _listing(d.SIGNATURE)


# --------------------------------------------------------------------------------------------
# Documents


@bp.get(f"/<any({_PLURALS}):plural>/<ident>", defaults={"slug": None})
@bp.get(f"/<any({_PLURALS}):plural>/<ident>/<slug>")
def document(plural: str, ident: str, slug: str | None):
    doc = get_document_or_404(ident)
    canonical = document_url(doc)
    if request.script_root + request.path != canonical:
        return redirect(canonical, 301)

    with get_wiki().session() as session:
        linked_ids = [i for name in d.LINK_FIELDS for i in doc.get(name, [])]
        rows = db.titles(session, [*linked_ids, *mentioned_ids(doc.body)])
        backlinks = db.backlinks(session, doc.id)
    rendered = render_markdown(doc.body, resolver_from(rows, document_url))
    known = d.FIELDS[doc.kind.name]
    context = dict(
        doc=doc, fm=doc.front_matter, rendered=rendered, titles=rows, backlinks=backlinks,
        other_fields=[(k, _display(v)) for k, v in doc.front_matter.items() if k not in known],
        today=date.today(),
        history_url=(url_for("history.history", plural=doc.kind.plural, ident=doc.id)
                     if "history.history" in current_app.view_functions else None),
    )
    if doc.kind is d.POSTMORTEM:
        context["durations"] = doc.durations()
        context["action_items"] = [
            {**item, "overdue": item.get("status") == "open" and item.get("due") is not None
             and item["due"] < date.today()}
            for item in doc.get("action_items", [])
        ]
    return render_template(f"{doc.kind.plural}/page.html", **context)


@bp.get(f"/<any({_PLURALS}):plural>/<ident>/raw")
def source(plural: str, ident: str):
    """The document's Markdown file as it is on disk (plain text, never sniffed as HTML)."""
    doc = get_document_or_404(ident)
    if plural != doc.kind.plural or ident != doc.id:
        return redirect(url_for(".source", plural=doc.kind.plural, ident=doc.id), 301)
    data = get_wiki().store.absolute(doc.path).read_bytes()
    response = Response(data, mimetype="text/plain")
    response.charset = "utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    name = doc.path.replace("\\", "/").rsplit("/", 1)[-1]
    response.headers.set("Content-Disposition", "inline", filename=name)
    response.set_etag(doc.revision)
    return response


def _display(value) -> str:
    """An unknown front-matter value as text: scalars as they are, structures as YAML."""
    if isinstance(value, (dict, list, tuple)):
        if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(str(d.json_value(v)) for v in value)
        return d.dump_yaml(d.json_value(value)).strip()
    return "" if value is None else str(d.json_value(value))


@bp.get("/<docid:ident>")
def short_link(ident: str):
    norm = d.normalise_id(ident)
    with get_wiki().session() as session:
        row = db.get_row(session, norm)
    if row is None:
        abort(404, f"There is no document {norm}.")
    return redirect(document_url(row), 302)


# --------------------------------------------------------------------------------------------
# Tags and services


def _names(table) -> list[dict]:
    """Every tag or service with its number of postmortems and signatures."""
    with get_wiki().session() as session:
        total = db.named_values(session, table)
        per_kind = {kind: dict(db.named_values(session, table, kind)) for kind in d.KINDS}
    return [{"name": name, "count": count,
             "postmortems": per_kind["postmortem"].get(name, 0),
             "signatures": per_kind["signature"].get(name, 0)} for name, count in total]


def _named(table, name: str, what: str):
    """The stored spelling of a tag or service and the documents using it, or a 404."""
    with get_wiki().session() as session:
        canonical = db.canonical_name(session, table, name)
        if canonical is None:
            abort(404, f"No document uses the {what} “{name}”.")
        rows = db.documents_with(session, table, name)
    return (canonical, [r for r in rows if r.kind == "postmortem"],
            [r for r in rows if r.kind == "signature"])


@bp.get("/tags/")
def tags():
    return render_template("tags/index.html", names=_names(TagRow))


@bp.get("/tags/<name:name>", merge_slashes=False)
def tag(name: str):
    canonical, postmortem_rows, signature_rows = _named(TagRow, name, "tag")
    return render_template("tags/tag.html", name=canonical, postmortems=postmortem_rows,
                           signatures=signature_rows)


@bp.get("/services/")
def services():
    return render_template("services/index.html", names=_names(ServiceRow))


@bp.get("/services/<name:name>", merge_slashes=False)
def service(name: str):
    canonical, postmortem_rows, signature_rows = _named(ServiceRow, name, "service")
    severities = {sev: sum(1 for r in postmortem_rows if r.severity == sev) for sev in d.SEVERITIES}
    return render_template("services/service.html", name=canonical, postmortems=postmortem_rows,
                           signatures=signature_rows, severities=severities)


# --------------------------------------------------------------------------------------------
# Content problems


@bp.get("/problems")
def problems():
    with get_wiki().session() as session:
        rows = db.problems(session)
    return render_template("problems/index.html", problems=rows)
