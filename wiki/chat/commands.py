"""The chat sub-commands, shared by Slack and the outgoing webhook. No Flask.

``/pm search <query>``, ``/pm seen <pasted error or log>``, ``/pm new <title>``, ``/pm <id>`` and
``/pm help`` (anything else gets the help too) each become an :class:`Answer`: plain data that
:mod:`wiki.chat.slack` renders as Block Kit and :mod:`wiki.chat.webhook` as Mattermost JSON.
What a command needs (the wiki, its indexes, how to make URLs) comes in a :class:`Backend`,
built per request by :func:`wiki.chat.backend`.

Every answer that is worth showing to the channel carries a ``share`` value: a short text
(at most :data:`MAX_SHARE_CHARS`, the size of a Slack button's value) from which
:func:`shared_answer` rebuilds it — without the pasted log, which stays with whoever pasted it.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import db, doc_templates
from .. import documents as d
from .. import signatures as sig
from ..store import NotFound
from .cards import Card, make_card, shorten

log = logging.getLogger(__name__)

#: A ``seen`` paste is cut to this many characters (with a note saying so).
MAX_SEEN_CHARS = 40_000
#: Results listed per answer.
SEARCH_RESULTS = 5
MAX_MATCHES = 5
MAX_PARTIAL = 3
EVIDENCE_LINES = 3
SIMILAR_RESULTS = 5
#: Characters of an evidence line or a snippet shown in chat.
LINE_CHARS = 200
#: A Slack button's ``value`` holds at most 2,000 characters.
MAX_SHARE_CHARS = 2000

USAGE = (
    ("search <words>", "Search postmortems and signatures (same syntax as the wiki's search)."),
    ("seen <pasted error or log>", "Have we seen this? Known bug signatures with the matching "
                                   "lines, and similar incidents."),
    ("new <title>", "Start a draft postmortem for the incident in this channel."),
    ("<id>", "Show a document's card, e.g. PM-7 or SIG-3."),
    ("help", "This help."),
)


# --------------------------------------------------------------------------------------------
# What comes in


@dataclass
class Invocation:
    """Who ran which command where."""

    text: str
    command: str = "/pm"  #: how the command is called, for the help
    user_id: str | None = None
    user_name: str | None = None
    channel_link: str | None = None  #: a link to the channel it was run in, for ``new``


@dataclass
class Links:
    """How documents become absolute URLs (the Flask glue knows the routes and the base URL)."""

    document: Callable[[Any], str]  #: anything with kind, id and slug → its page
    short: Callable[[str], str]  #: an id → its short link
    edit: Callable[[Any], str]  #: a document → its editor
    search: Callable[[str], str]  #: a query → the search page
    seen: Callable[[], str]  #: the "Have we seen this?" page


@dataclass
class Backend:
    wiki: Any  #: :class:`wiki.core.Wiki`
    links: Links
    search: Any = None  #: :class:`wiki.search.Search`, or None
    signatures: Any = None  #: :class:`wiki.signatures.SignatureIndex`, or None
    similar: Any = None  #: :class:`wiki.similar.SimilarIndex`, or None

    def card(self, doc: d.Document) -> Card:
        return make_card(doc, self.links.document(doc), self.links.short(doc.id))


# --------------------------------------------------------------------------------------------
# What goes out


@dataclass
class Ref:
    """A document named in an answer."""

    id: str
    title: str
    url: str
    note: str = ""  #: e.g. "confirmed match", "similar incident"


@dataclass
class Answer:
    title: str
    notes: list[str] = field(default_factory=list)
    share: str | None = None  #: see :func:`shared_answer`; None: not worth sharing


@dataclass
class HelpAnswer(Answer):
    command: str = "/pm"
    unknown: str | None = None  #: the sub-command that was not understood
    usage: tuple[tuple[str, str], ...] = USAGE


@dataclass
class ProblemAnswer(Answer):
    """Nothing to show, and why (an unknown id, an empty query)."""


@dataclass
class CardAnswer(Answer):
    card: Card | None = None


@dataclass
class NewAnswer(Answer):
    card: Card | None = None
    edit_url: str = ""


@dataclass
class SearchItem:
    id: str
    kind: str
    title: str
    url: str
    snippet: list[tuple[str, bool]]  #: text segments, True where the query matched
    section: str | None = None
    status: str | None = None
    severity: str | None = None


@dataclass
class SearchAnswer(Answer):
    query: str = ""
    total: int = 0
    items: list[SearchItem] = field(default_factory=list)
    more_url: str = ""


@dataclass
class MatchItem:
    id: str
    title: str
    url: str
    confidence: str  #: confirmed | partial
    evidence: list[tuple[int, str]]  #: (line number, line), cut to LINE_CHARS
    matched: int = 0  #: patterns found
    total: int = 0  #: patterns in the signature
    incidents: list[Ref] = field(default_factory=list)


@dataclass
class SimilarItem:
    id: str
    title: str
    url: str
    score: float
    reasons: list[str]


@dataclass
class SeenAnswer(Answer):
    lines: int = 0
    matches: list[MatchItem] = field(default_factory=list)
    similar: list[SimilarItem] = field(default_factory=list)
    seen_url: str = ""

    @property
    def lines_matched(self) -> str:
        return f"{self.lines:,} line{'' if self.lines == 1 else 's'} matched"


@dataclass
class ListAnswer(Answer):
    """Documents named by a shared answer (e.g. what a ``seen`` found, without the paste)."""

    refs: list[Ref] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Running a command


_COMMAND_RE = re.compile(r"\s*(\S+)\s*(.*)", re.DOTALL)
SUBCOMMANDS = ("search", "seen", "new", "help")
ALIASES = {"find": "search", "s": "search", "match": "seen", "start": "new", "?": "help",
           "-h": "help", "--help": "help"}


def parse(text: str) -> tuple[str, str]:
    """``"search  dns  timeout"`` → ``("search", "dns  timeout")``; ``"pm-7"`` → ``("id",
    "PM-7")``; ``""`` → ``("help", "")``; anything else → ``("unknown", word)``. The rest
    keeps its line breaks (a ``seen`` paste)."""
    m = _COMMAND_RE.match(text or "")
    if not m:
        return "help", ""
    word, rest = m.group(1), m.group(2)
    name = ALIASES.get(word.lower(), word.lower())
    if name in SUBCOMMANDS:
        return name, rest
    ident = d.normalise_id(word.strip(".,;:!?()[]<>"))
    if ident:
        return "id", ident
    return "unknown", word


def run(inv: Invocation, backend: Backend) -> Answer:
    """The answer to one command. Raises only for failures of the wiki itself."""
    name, rest = parse(inv.text)
    if name == "search":
        return search(rest, backend)
    if name == "seen":
        return seen(rest, backend)
    if name == "new":
        return new(rest, inv, backend)
    if name == "id":
        return card(rest, backend)
    if name == "unknown":
        return HelpAnswer(f"“{shorten(rest, 40)}” is not a sub-command of {inv.command}.",
                          command=inv.command, unknown=shorten(rest, 40))
    return HelpAnswer(f"{inv.command}: the Postmortem Wiki in chat", command=inv.command)


def card(ident: str, backend: Backend) -> Answer:
    try:
        doc = backend.wiki.get(ident)
    except NotFound:
        return ProblemAnswer(f"There is no document {ident}.",
                             notes=["Search for it instead: `search <words>`."])
    c = backend.card(doc)
    return CardAnswer(c.label, card=c, share=f"card\n{c.id}")


def _segments(snippet_html: str) -> list[tuple[str, bool]]:
    """The search module's snippet (escaped HTML, matches in ``<mark>``) as plain segments."""
    out: list[tuple[str, bool]] = []
    for n, part in enumerate(re.split(r"<mark>(.*?)</mark>", snippet_html or "", flags=re.S)):
        text = html.unescape(re.sub(r"<[^>]*>", "", part))
        text = " ".join(text.split()) if n % 2 else re.sub(r"\s+", " ", text)
        if text:
            out.append((text, n % 2 == 1))
    return out


def search(query: str, backend: Backend, limit: int = SEARCH_RESULTS) -> Answer:
    query = " ".join(query.split())
    if not query:
        return ProblemAnswer("Search for what?", notes=["Give some words: `search checkout "
                                                        "latency`, `search \"connection reset\" "
                                                        "service:payments`."])
    if backend.search is None:
        return ProblemAnswer("Search is not available on this wiki.")
    try:
        result = backend.search.query(query, limit=limit, facets=False)
    except Exception:  # noqa: BLE001 - an index being rebuilt: say so instead of failing
        log.exception("chat search for %r failed", query[:100])
        return ProblemAnswer("Search is not available right now (the index may be rebuilding).",
                             notes=["Try again in a minute."])
    if result.mode == "unavailable":
        return ProblemAnswer("Search is not available right now.", notes=list(result.messages))
    notes = list(result.messages)
    if result.corrected and result.suggestion:
        notes.append(f"Nothing matched “{shorten(query, 80)}”; showing results for "
                     f"“{result.suggestion}”.")
    items = [SearchItem(
        id=hit.id, kind=hit.kind, title=hit.title, url=backend.links.document(hit),
        snippet=_cut_segments(_segments(hit.snippet), LINE_CHARS), section=hit.section,
        status=hit.status, severity=hit.severity) for hit in result.hits]
    title = (f"{result.total:,} result{'s' if result.total != 1 else ''} for “{shorten(query, 80)}”"
             if result.total else f"No results for “{shorten(query, 80)}”")
    return SearchAnswer(title, notes=notes, share=_clip(f"search\n{query}"), query=query,
                        total=result.total, items=items, more_url=backend.links.search(query))


def _cut_segments(segments: list[tuple[str, bool]], limit: int) -> list[tuple[str, bool]]:
    out, used = [], 0
    for text, marked in segments:
        if used >= limit:
            break
        if used + len(text) > limit:
            text = text[: limit - used].rstrip() + "…"
        out.append((text, marked))
        used += len(text)
    return out


def cap_paste(text: str, limit: int = MAX_SEEN_CHARS) -> tuple[str, str | None]:
    """A paste cut to ``limit`` characters (at a line break when one is near), and a note."""
    if len(text) <= limit:
        return text, None
    cut = text[:limit]
    newline = cut.rfind("\n")
    if newline > limit * 0.8:
        cut = cut[:newline]
    return cut, (f"The paste has {len(text):,} characters: only the first {len(cut):,} were "
                 f"matched (the limit in chat is {limit:,}). Paste the whole log on the wiki's "
                 "“Have we seen this?” page.")


def seen(text: str, backend: Backend) -> Answer:
    text = sig.decode_paste(text or "")
    if not text.strip():
        return ProblemAnswer("Paste something to match.", notes=[
            "Put an error message, log lines or a stack trace after `seen`."])
    text, note = cap_paste(text)
    notes = [note] if note else []
    paste = sig.Paste(text)
    matches: list[MatchItem] = []
    if backend.signatures is not None:
        result = backend.signatures.match(paste)
        chosen = result.confirmed[:MAX_MATCHES] + result.partial[:MAX_PARTIAL]
        incident_ids = [i for m in chosen for i in m.incidents]
        with backend.wiki.session() as session:
            rows = db.titles(session, incident_ids)
        for m in chosen:
            lines: dict[int, str] = {}
            for e in m.evidence:
                if e.line not in lines and len(lines) < EVIDENCE_LINES:
                    lines[e.line] = shorten(e.text, LINE_CHARS)
            matches.append(MatchItem(
                id=m.id, title=m.title, url=backend.links.document(m), confidence=m.confidence,
                evidence=sorted(lines.items()), matched=len(m.matched), total=m.total,
                incidents=[Ref(i, rows[i].title, backend.links.document(rows[i]))
                           for i in m.incidents if i in rows]))
        lines_count = result.lines
    else:
        notes.append("Signature matching is not available on this wiki.")
        lines_count = len(paste.lines)
    known = {m.id for m in matches} | {r.id for m in matches for r in m.incidents}
    similar = _similar(text, paste, known, backend, notes)
    confirmed = [m for m in matches if m.confidence == "confirmed"]
    if confirmed:
        title = "Yes: " + ", ".join(f"{m.id} {m.title}" for m in confirmed[:3])
    elif matches:
        title = "Maybe: partly like " + ", ".join(m.id for m in matches[:3])
    elif similar:
        title = "No known signature matches; similar incidents below"
    else:
        title = "Not that we know of: no signature or similar incident matches"
    refs = ([f"{m.id} {m.confidence}" for m in matches] + [f"{s.id} similar" for s in similar])
    share = _clip("seen\n" + "\n".join(refs)) if refs else None
    return SeenAnswer(shorten(title, 150), notes=notes, share=share, lines=lines_count,
                      matches=matches, similar=similar, seen_url=backend.links.seen())


def _similar(text: str, paste: sig.Paste, known: set[str], backend: Backend,
             notes: list[str]) -> list[SimilarItem]:
    """Similar incidents from the similar index, else from a search for the error strings."""
    try:
        if backend.similar is not None:
            result = backend.similar.similar(text=text, exclude=sorted(known),
                                             kind="postmortem", limit=SIMILAR_RESULTS)
            return [SimilarItem(s.id, s.title, backend.links.document(s), s.score,
                                [r.text for r in s.reasons[:2]]) for s in result.suggestions]
        if backend.search is not None:
            tokens = sig.error_tokens(paste)[:6]
            if not tokens:
                return []
            query = " OR ".join(f'"{t}"' if " " in t else t for t in tokens)
            result = backend.search.query(query, kind="postmortem",
                                          limit=SIMILAR_RESULTS + len(known), facets=False)
            return [SimilarItem(h.id, h.title, backend.links.document(h), h.score or 0.0,
                                ["Shares error strings with the paste"])
                    for h in result.hits if h.id not in known][:SIMILAR_RESULTS]
    except Exception:  # noqa: BLE001 - the matches are the answer; similar ones are a bonus
        log.exception("similar incidents for a chat paste failed")
        notes.append("Similar incidents could not be looked up right now.")
    return []


def new(title: str, inv: Invocation, backend: Backend) -> Answer:
    title = " ".join(title.split())
    if not title:
        return ProblemAnswer("The new postmortem needs a title.", notes=[
            f"Say what is happening in a few words: `{inv.command} new Checkout errors in "
            "eu-west-1`."])
    wiki = backend.wiki
    try:
        template = doc_templates.load_template(wiki.content_dir,
                                               doc_templates.template_name("postmortem"))
        fm, body = dict(template.front_matter), template.body
    except (doc_templates.TemplateNotFound, d.DocumentError):
        log.exception("the postmortem template could not be read; starting from the sections")
        fm, body = {}, d.template_body(d.POSTMORTEM)
    now = datetime.now(UTC).replace(microsecond=0)
    who = (inv.user_name or inv.user_id or "").strip()
    fm.update({"title": title, "status": "draft", "date": now.date(), "started_at": now})
    if who:
        fm["authors"] = [who]
        fm["incident_commander"] = who
    if inv.channel_link:
        fm["chat_links"] = [inv.channel_link]
    try:
        doc = wiki.create("postmortem", fm, body, author=who or None,
                          message=f"Create from chat ({inv.command} new)")
    except d.DocumentError as exc:
        return ProblemAnswer("The postmortem could not be created.",
                             notes=[str(e) for e in exc.errors] or [str(exc)])
    c = backend.card(doc)
    return NewAnswer(f"Started {c.id}: {c.title}", notes=[
        "It is a draft: fill in the timeline as you go, and the rest once the incident is over."],
        share=f"card\n{c.id}", card=c, edit_url=backend.links.edit(doc))


# --------------------------------------------------------------------------------------------
# Sharing


def _clip(value: str) -> str:
    return value if len(value) <= MAX_SHARE_CHARS else value[:MAX_SHARE_CHARS].rsplit("\n", 1)[0]


def shared_answer(value: str, backend: Backend) -> Answer | None:
    """Rebuild an answer from its ``share`` value (None for a value that is not one)."""
    kind, _, rest = (value or "").partition("\n")
    if kind == "card":
        ident = d.normalise_id(rest.strip())
        return card(ident, backend) if ident else None
    if kind == "search":
        return search(rest, backend)
    if kind == "seen":
        wanted = []
        for line in rest.splitlines()[:40]:
            ident, _, note = line.partition(" ")
            ident = d.normalise_id(ident)
            if ident:
                wanted.append((ident, note.strip()[:20]))
        with backend.wiki.session() as session:
            rows = db.titles(session, [i for i, _ in wanted])
        labels = {"confirmed": "known signature: confirmed", "partial": "known signature: "
                  "partly matches", "similar": "similar incident"}
        refs = [Ref(i, rows[i].title, backend.links.document(rows[i]), labels.get(note, note))
                for i, note in wanted if i in rows]
        return ListAnswer("Have we seen this?", refs=refs)
    return None
