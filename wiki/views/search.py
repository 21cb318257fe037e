"""Search: the results page, the query-syntax help page and ``GET /api/v1/search``.

Thin: read the request, ask :class:`wiki.search.Search` (``app.extensions["search"]``), render.
Snippets come from the search module already HTML-escaped, with matches in ``<mark>``; they are
wrapped in :class:`~markupsafe.Markup` here and nowhere else.
"""

from __future__ import annotations

import math

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from markupsafe import Markup

from .. import search as s
from ..errors import WikiError
from . import document_url

bp = Blueprint("search", __name__)

PER_PAGE = 20
MAX_PAGE = s.MAX_OFFSET // PER_PAGE
FACET_LABELS = {"kind": "Kind", "severity": "Severity", "status": "Status", "service": "Service",
                "tag": "Tag", "year": "Year", "root_cause": "Root cause"}
SORTS = {"relevance": "Best match", "date": "Newest"}
FACET_SHOWN = 8  #: values listed per facet (plus any active one)
MORE_PAGES = {"service": "pages.services", "tag": "pages.tags"}


def get_search() -> s.Search:
    return current_app.extensions["search"]


def _filters() -> dict[str, list[str]]:
    """Filters from the URL: ``?severity=SEV1&tag=dns`` (the facet names)."""
    return {name: values for name in s.FACETS
            if (values := [v for v in request.args.getlist(name) if v.strip()])}


def _facet(name: str, values: list[tuple[str, int]]) -> dict:
    """One facet for ``_facets.html``: its most frequent values plus every active one."""
    active = {v.lower() for v in request.args.getlist(name)}
    shown = [(v, c) for n, (v, c) in enumerate(values)
             if n < FACET_SHOWN or str(v).lower() in active]
    more = MORE_PAGES.get(name)
    return {"name": name, "label": FACET_LABELS[name], "values": shown,
            "hidden": len(values) - len(shown), "more": url_for(more) if more else None}


def _int_arg(name: str, default: int, lo: int, hi: int, strict: bool) -> int:
    """An integer parameter; out of range or not a number is a 400 for the API, else ignored."""
    raw = request.args.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        if strict:
            raise WikiError(400, f"{name} must be a whole number, got {raw[:40]!r}") from None
        return default
    if not lo <= value <= hi:
        if strict:
            raise WikiError(400, f"{name} must be between {lo} and {hi}, got {value}")
        return min(max(value, lo), hi)
    return value


@bp.get("/search")
def search():
    q = request.args.get("q", "")
    sort = request.args.get("sort", "relevance")
    sort = sort if sort in SORTS else "relevance"
    page = _int_arg("page", 1, 1, MAX_PAGE, strict=False)
    result = get_search().query(q, filters=_filters(), sort=sort, limit=PER_PAGE,
                                offset=(page - 1) * PER_PAGE)
    pages = max(1, math.ceil(result.total / PER_PAGE))
    active = [(name, value) for name in s.FACETS
              for value in dict.fromkeys(request.args.getlist(name)) if value.strip()]
    facets = [_facet(name, result.facets.get(name, [])) for name in s.FACETS]
    hits = [(hit, Markup(hit.snippet), Markup(hit.title_html)) for hit in result.hits]
    status = 503 if result.mode == "unavailable" else 200
    return render_template(
        "search/results.html", q=result.query, search_query=result.query, result=result,
        hits=hits, facets=facets, active=active, facet_labels=FACET_LABELS, sort=sort,
        sorts=SORTS, page=page, pages=pages, total=result.total,
        suggestion_url=_suggestion_url(result),
    ), status


def _suggestion_url(result: s.SearchResult) -> str | None:
    if not result.suggestion:
        return None
    kept = {name: request.args.getlist(name) for name in (*s.FACETS, "sort")
            if request.args.getlist(name)}  # only known names: url_for reads "_scheme" & co.
    return url_for("search.search", q=result.suggestion, **kept)


@bp.get("/search/help")
def help_page():
    return render_template("search/help.html", search_query="", facet_labels=FACET_LABELS,
                           aliases=s.FILTER_ALIASES, limits={
                               "query": s.MAX_QUERY_CHARS, "clauses": s.MAX_CLAUSES,
                               "prefix": s.MIN_PREFIX_CHARS})


@bp.get("/api/v1/search")
def api_search():
    """``?q=&kind=&limit=&offset=&sort=&<facet>=…`` → ``{"total", "results", "facets",
    "suggestion"}``; each result ``{"id", "kind", "title", "url", "score", "snippet",
    "section"}`` (``snippet`` is HTML: escaped text, matches in ``<mark>``)."""
    q = request.args.get("q", "")
    kind = request.args.get("kind", "").strip() or None
    if kind is not None and s.normalise_filter("kind", kind) is None:
        raise WikiError(400, f"kind must be postmortem or signature, got {kind[:40]!r}")
    sort = request.args.get("sort", "relevance")
    if sort not in SORTS:
        raise WikiError(400, f"sort must be one of {', '.join(SORTS)}, got {sort[:40]!r}")
    for value in request.args.getlist("year"):
        if value.strip() and s.normalise_filter("year", value) is None:
            raise WikiError(400, f"year must be four digits, got {value[:40]!r}")
    limit = _int_arg("limit", PER_PAGE, 1, s.MAX_LIMIT, strict=True)
    offset = _int_arg("offset", 0, 0, s.MAX_OFFSET, strict=True)
    facets = request.args.get("facets", "1").lower() not in ("0", "false", "no", "off")
    result = get_search().query(q, kind=kind, filters=_filters(), sort=sort, limit=limit,
                                offset=offset, facets=facets)
    if result.mode == "unavailable":
        raise WikiError(503, result.messages[-1], headers={"Retry-After": "30"})
    return jsonify({
        "total": result.total,
        "results": [{
            "id": hit.id,
            "kind": hit.kind,
            "title": hit.title,
            "url": document_url(hit, _external=True),
            "score": hit.score,
            "snippet": hit.snippet,
            "section": hit.section,
        } for hit in result.hits],
        "facets": {name: [{"value": value, "count": count} for value, count in values]
                   for name, values in result.facets.items()},
        "suggestion": result.suggestion,
    })
