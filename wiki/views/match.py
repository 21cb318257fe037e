""""Have we seen this?": match a paste against every active bug signature.

* ``GET /seen`` — the paste form (works without JavaScript); ``POST /seen`` — the results:
  confirmed matches with their evidence lines highlighted and linked postmortems, partial
  matches apart, similar postmortems from search, and for a paste nothing confirms, a form to
  turn selected lines into a new signature.
* ``GET /seen/new-signature?line=…&line=…`` — templates of the selected lines, then a redirect
  to the signature editor: ``/new/signature?patterns=<template>&…&examples=<lines>``.
* ``POST /api/v1/match`` with ``{"text": …}`` (``application/json``, like the whole API: see
  :mod:`wiki.security`) → ``{"matches": [{"id", "title", "url", "confidence", "evidence":
  [{"line", "text", "pattern"}]}], "lines": n}``, confirmed matches first, then partial ones.

Views are thin: the matching is :class:`wiki.signatures.SignatureIndex`, kept current by
:func:`init_app` as a listener of the app's :class:`wiki.core.Wiki`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request

from .. import db
from .. import signatures as sig
from ..app_state import get_wiki
from ..errors import WikiError
from ..security import checks_csrf_itself, csrf_problem
from . import document_url

log = logging.getLogger(__name__)

bp = Blueprint("match", __name__)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: The signature editor (issue 4) reads ``patterns`` (repeated) and ``examples`` from the query.
NEW_SIGNATURE_URL = "/new/signature"
#: Lines offered for "create a signature from this" (distinct templates, first occurrence).
MAX_SELECTABLE_LINES = 200
#: Lines that may be sent to the editor at once, and their length.
MAX_SELECTED_LINES = 20
MAX_SELECTED_LINE_LENGTH = 2000
#: A paste up to this many lines is shown whole, evidence lines highlighted.
MAX_SHOWN_PASTE_LINES = 500
#: Words that make a line a good candidate for a new signature.
_SUGGEST_WORDS = ("error", "exception", "fail", "fatal", "panic", "timed out", "timeout",
                  "refused", "denied", "invalid", "traceback", "caused by", "warn")


def init_app(app: Flask) -> None:
    """Create the app's :class:`~wiki.signatures.SignatureIndex` and make it follow the wiki.

    Call it after ``app_state.init_app``. The index loads every signature from the database on
    first use, then follows saves and syncs.
    """
    app.extensions["signatures"] = sig.SignatureIndex().attach(app.extensions["wiki"])


def get_index() -> sig.SignatureIndex:
    index = current_app.extensions.get("signatures")
    if index is None:  # init_app not called: wire one in now
        index = current_app.extensions["signatures"] = sig.SignatureIndex().attach(get_wiki())
    return index


def max_bytes() -> int:
    return int(current_app.config.get("MATCH_MAX_BYTES") or DEFAULT_MAX_BYTES)


class PasteProblem(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


def _too_large(limit: int, size: int | None = None) -> PasteProblem:
    what = f"The paste is {size:,} bytes" if size is not None else "The paste is too large"
    return PasteProblem(413, f"{what}; the limit is {limit:,} bytes ({limit / 1024 / 1024:.3g} "
                             f"MB, MATCH_MAX_BYTES). Paste the part around the error instead.")


def _check_request_size() -> None:
    """Refuse a body far over the limit before reading it (JSON or form encoding may double a
    paste's size, so the exact check is on the decoded text)."""
    limit = max_bytes()
    if request.content_length is not None and request.content_length > 2 * limit + 65536:
        raise _too_large(limit)


def _checked(text: str) -> str:
    text = sig.decode_paste(text)
    size = len(text.encode("utf-8"))
    if size > max_bytes():
        raise _too_large(max_bytes(), size)
    if not text.strip():
        raise PasteProblem(400, "The paste is empty: paste log lines, an error message or a "
                                "stack trace to match.")
    return text


def read_api_paste() -> str:
    """The paste of an API request: ``{"text": …}`` as JSON; bytes that are not UTF-8 are
    replaced (``\ufffd``) rather than refused."""
    _check_request_size()
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise PasteProblem(415, 'Send the paste as JSON (Content-Type: application/json): '
                                '{"text": "…"}.')
    data = request.get_data(cache=False)
    try:
        body = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        raise PasteProblem(400, 'The body is not valid JSON; send {"text": "…"}.') from None
    text = body.get("text") if isinstance(body, dict) else None
    if text is None:
        raise PasteProblem(400, 'Send {"text": "…"} with the log lines, error or stack '
                                'trace to match.')
    if not isinstance(text, str):
        raise PasteProblem(400, '"text" must be a string.')
    return _checked(text)


def read_form_paste() -> str:
    """The paste of the form: the uploaded file if one was chosen, else the text box."""
    _check_request_size()
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.stream.read(max_bytes() + 1)
        if len(data) > max_bytes():
            raise _too_large(max_bytes())
        if data.strip():
            return _checked(sig.decode_paste(data))
    return _checked(request.form.get("text", ""))


# --------------------------------------------------------------------------------------------
# API


@bp.post("/api/v1/match")
def api_match():
    """Match a paste: ``{"matches": […], "lines": n}`` (confirmed first, then partial)."""
    try:
        text = read_api_paste()
    except PasteProblem as exc:
        raise WikiError(exc.status, exc.message) from None
    result = get_index().match(text)
    return jsonify({
        "matches": [m.to_json(document_url(m, _external=True)) for m in result.matches],
        "lines": result.lines,
    })


# --------------------------------------------------------------------------------------------
# Page


@dataclass
class Segment:
    text: str
    marked: bool


@dataclass
class EvidenceRow:
    line: int
    segments: list[Segment]
    patterns: list[str]


def _segments(text: str, spans: list[tuple[int, int]]) -> list[Segment]:
    """``text`` split into plain and marked parts (overlapping spans merged)."""
    merged: list[list[int]] = []
    for start, end in sorted(s for s in spans if s and s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        if start > pos:
            out.append(Segment(text[pos:start], False))
        out.append(Segment(text[start:end], True))
        pos = end
    if pos < len(text) or not out:
        out.append(Segment(text[pos:], False))
    return out


def evidence_rows(match: sig.SignatureMatch) -> list[EvidenceRow]:
    """One row per evidence line, with the matched parts marked and the patterns named."""
    by_line: dict[int, list[sig.Evidence]] = {}
    for item in match.evidence:
        by_line.setdefault(item.line, []).append(item)
    rows = []
    for line, items in sorted(by_line.items()):
        text = items[0].text
        spans = [e.span for e in items if e.span and e.text == text]
        rows.append(EvidenceRow(line, _segments(text, spans),
                                list(dict.fromkeys(e.pattern for e in items))))
    return rows


def _linked_postmortems(matches: list[sig.SignatureMatch]) -> dict[str, list]:
    ids = [i for m in matches for i in m.incidents]
    if not ids:
        return {}
    with get_wiki().session() as session:
        rows = db.titles(session, ids)
    return {m.id: [rows[i] for i in m.incidents if i in rows] for m in matches}


def _search_terms(paste: sig.Paste) -> str:
    """A search query for the paste's error tokens: ``(a OR "b c" OR Short)``, or ``""``."""
    terms: list[str] = []
    for token in sig.error_tokens(paste.lines)[:8]:
        short = token.rsplit(".", 1)[-1]
        for term in (token, short):
            term = f'"{term}"' if " " in term else term
            if term not in terms:
                terms.append(term)
    if len(terms) > 1:
        return "(" + " OR ".join(terms) + ")"
    return terms[0] if terms else ""


@dataclass
class SimilarPostmortems:
    """The "Similar postmortems" part of the page: from the similar-incident engine (with its
    reasons), or, when that is unavailable, from a search for the paste's error strings."""

    items: list  #: :class:`wiki.similar.Suggestion` or :class:`wiki.search.Hit`
    terms: str = ""  #: the search query, when found by search
    engine: bool = True  #: ranked by the similar-incident engine (items have reasons)


def _similar(paste: sig.Paste, exclude: set[str]) -> SimilarPostmortems | None:
    """Postmortems most like the paste (the same ranking as ``/pm seen`` in chat and
    ``POST /api/v1/similar``), leaving out those the confirmed signatures already name."""
    if paste.text.strip():
        try:
            from .similar import get_index as similar_index

            result = similar_index().similar(paste.text, exclude=sorted(exclude),
                                             kind="postmortem", limit=5)
            return SimilarPostmortems(list(result.suggestions))
        except Exception:  # noqa: BLE001 - fall back to a plain search below
            log.exception("similar postmortems for a paste failed; searching instead")
    return _searched(paste, exclude)


def _searched(paste: sig.Paste, exclude: set[str]) -> SimilarPostmortems | None:
    """Top postmortems from search for the paste's error tokens; None without search."""
    search = current_app.extensions.get("search")
    if search is None:
        return None
    terms = _search_terms(paste)
    if not terms:
        return SimilarPostmortems([], terms, engine=False)
    try:
        result = search.query(terms, kind="postmortem", limit=5 + len(exclude), facets=False)
    except Exception:  # noqa: BLE001 - search is a bonus here: never fail the match page
        log.exception("search for similar postmortems failed")
        return None
    hits = getattr(result, "hits", result) or []
    return SimilarPostmortems([h for h in hits if getattr(h, "id", None) not in exclude][:5],
                              terms, engine=False)


@dataclass
class Candidate:
    line: int
    text: str
    template: str
    count: int
    suggested: bool


def _candidates(paste: sig.Paste) -> list[Candidate]:
    """Distinct lines (by template) a new signature could be made from."""
    seen: dict[str, Candidate] = {}
    for n, line in enumerate(paste.lines, 1):
        if not line.strip():
            continue
        template = sig.normalise_line(line)
        if not template:
            continue
        if template in seen:
            seen[template].count += 1
            continue
        if len(seen) >= MAX_SELECTABLE_LINES:
            continue
        lowered = line.lower()
        seen[template] = Candidate(n, line[:MAX_SELECTED_LINE_LENGTH], template, 1,
                                   any(word in lowered for word in _SUGGEST_WORDS))
    candidates = list(seen.values())
    suggested = [c for c in candidates if c.suggested][:3]
    for c in candidates:
        c.suggested = c in suggested
    return candidates


def new_signature_url(lines: list[str]) -> str:
    """The editor prefilled with the templates of ``lines`` and the lines as one example."""
    lines = [line[:MAX_SELECTED_LINE_LENGTH] for line in lines[:MAX_SELECTED_LINES]]
    query = [("patterns", t) for t in sig.template_from_lines(lines)]
    query.append(("examples", "\n".join(lines)))
    return f"{NEW_SIGNATURE_URL}?{urlencode(query)}"


def _render(status: int = 200, **context):
    context.setdefault("text", "")
    context.setdefault("max_bytes", max_bytes())
    return render_template("match/seen.html", section="seen", **context), status


@bp.get("/seen")
def seen():
    """The paste form."""
    return _render()


@bp.post("/seen")
@checks_csrf_itself
def seen_results():
    """Matches for the pasted text (or uploaded file)."""
    try:
        text = read_form_paste()
    except PasteProblem as exc:
        shown = request.form.get("text", "") if exc.status != 413 else ""
        return _render(exc.status, error=exc.message, text=shown)
    problem = csrf_problem()
    if problem:  # a page opened before a restart: keep the paste, ask to send it again
        return _render(400, error=problem.replace("Nothing was saved.", "Press the button "
                                                  "again to match the paste below."),
                       text=text if len(text) <= 200_000 else "")
    paste = sig.Paste(text)
    result = get_index().match(paste)
    confirmed, partial = result.confirmed, result.partial
    evidence_lines = {e.line for m in confirmed for e in m.evidence}
    candidates = _candidates(paste) if not confirmed else []
    return _render(
        text=text if len(text) <= 200_000 else "",
        result=result,
        confirmed=confirmed,
        partial=partial,
        rows={m.id: evidence_rows(m) for m in result.matches},
        postmortems=_linked_postmortems(result.matches),
        similar=_similar(paste, {i for m in confirmed for i in m.incidents}),
        paste=paste if len(paste.lines) <= MAX_SHOWN_PASTE_LINES else None,
        evidence_lines=evidence_lines,
        candidates=candidates,
        suggested_url=new_signature_url([c.text for c in candidates if c.suggested])
        if any(c.suggested for c in candidates) else None,
    )


@bp.get("/seen/new-signature")
def new_signature():
    """Selected lines → the signature editor, prefilled (works without JavaScript)."""
    lines = [line for line in request.args.getlist("line") if line.strip()]
    if not lines:
        return _render(400, error="Select at least one line to make a signature from.")
    return redirect(new_signature_url(lines), code=303)
