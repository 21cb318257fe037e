"""Full-text search: a Whoosh index of every document, kept in line with the wiki. No Flask.

Three layers, each usable on its own from a test or the CLI:

* :func:`parse_query` turns what a person typed into a :class:`ParsedQuery` — words, quoted
  phrases, ``time*`` prefixes, ``word~`` fuzzy words, ``-exclusions``, ``(a OR b)`` groups and
  ``field:value`` filters — plus messages about anything it had to ignore or repair. It never
  raises, whatever the input; it knows nothing about Whoosh.
* :class:`SearchIndex` is the interface a backend implements (``index_document``, ``remove``,
  ``query``, ``rebuild``, ``revisions``, ``suggest``); :class:`WhooshIndex` is the one we have.
  A PostgreSQL full-text backend for multi-host deployments would be a second subclass.
* :class:`Search` keeps a :class:`SearchIndex` in line with a :class:`wiki.core.Wiki`: it is one of
  the wiki's listeners (``on_save``, ``on_sync``), reconciles the index with the database at
  start-up, and rebuilds a missing or unreadable index instead of failing a request.

``init_app(app)`` wires a :class:`Search` into the Flask app (``app.extensions["search"]``).

Whoosh traps this module avoids on purpose (see ``docs/dependencies.md``):

* ``Searcher.refresh()`` can return duplicate hits after a merge: each thread keeps its own
  searcher, checks :meth:`~whoosh.searching.Searcher.up_to_date` and opens a new one when stale.
* ``AsyncWriter`` can drop documents when its background replay fails: every write takes the index
  lock with ``writer(timeout=…)`` in a retry loop, and is cancelled on any failure so the lock is
  never left held.
* A commit that merges segments costs tens to hundreds of milliseconds: saves commit with
  ``merge=False`` and a merge runs only once the index has more than :data:`MAX_SEGMENTS`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import re
import shutil
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from markupsafe import escape
from whoosh import fields as wf
from whoosh import index as windex
from whoosh import query as wq
from whoosh.analysis import (
    STOP_WORDS,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemmingAnalyzer,
    StopFilter,
)
from whoosh.filedb.filestore import FileStorage
from whoosh.index import LockError
from whoosh.lang.porter import stem as porter_stem
from whoosh.writing import CLEAR, OPTIMIZE

from . import documents as d

log = logging.getLogger(__name__)

__all__ = [
    "FILTERS", "Hit", "IndexBusy", "ParsedQuery", "Search", "SearchError", "SearchIndex",
    "SearchResult", "WhooshIndex", "init_app", "parse_query",
]

# --------------------------------------------------------------------------------------------
# Limits


MAX_QUERY_CHARS = 1000  #: longer queries are cut here (with a message)
MAX_CLAUSES = 32  #: words, phrases and filters beyond this are ignored (with a message)
MAX_TOKEN_CHARS = 200  #: longer tokens are not indexed, and ignored in queries
MAX_PREFIX_TERMS = 512  #: a ``prefix*`` matches at most this many different words
MAX_LIMIT = 100  #: results per request
FACET_VALUES = 20  #: values listed per facet
SNIPPET_CHARS = 240
WRITE_LOCK_TIMEOUT = 30.0  #: seconds a save waits for the index lock before giving up
PARALLEL_MIN = 2000  #: rebuilds of at least this many documents use several processes
PARALLEL_PROCS = 2
MAX_SEGMENTS = 12  #: commits skip merging until the index has more segments than this
INDEX_NAME = "MAIN"  #: Whoosh's default index name: files ``_MAIN_*``, lock ``MAIN_WRITELOCK``
SCHEMA_VERSION = "2"  #: bump when the schema or an analyzer changes: old indexes are rebuilt


class SearchError(Exception):
    """Base class for search errors."""


class IndexBusy(SearchError):
    """The index stayed locked by another writer for longer than the timeout."""


class IndexUnavailable(SearchError):
    """The index cannot be read (missing, truncated, from another version) — rebuild it."""


# --------------------------------------------------------------------------------------------
# Fields: which part of a document goes where


#: Body sections → stable keys. Every section of both kinds has one (``root_cause``), and so do
#: the headings people write instead of the template's; other headings have none.
SECTION_KEYS: dict[str, str] = {
    "summary": "summary",
    "impact": "impact",
    "timeline": "timeline",
    "root cause and contributing factors": "root_cause",
    "trigger": "trigger",
    "detection": "detection",
    "response and recovery": "response",
    "what went well": "went_well",
    "what went wrong": "went_wrong",
    "where we got lucky": "lucky",
    "action items": "action_items",
    "lessons learned": "lessons",
    "how to recognise it": "recognise",
    "why it happens": "why",
    "how to confirm": "confirm",
    "fix or workaround": "fix",
    "seen in": "seen_in",
    # Headings people write instead of the template's
    "root cause": "root_cause",
    "root causes": "root_cause",
    "contributing factors": "root_cause",
    "how to recognize it": "recognise",
    "response": "response",
    "recovery": "response",
    "lessons": "lessons",
    "follow-up": "action_items",
    "follow-ups": "action_items",
    "fix": "fix",
    "workaround": "fix",
}
#: Sections indexed in a field of their own (``sec_<key>``), weighted by :data:`FIELD_BOOSTS`;
#: the text of every other section is indexed in ``body``. Every section is *stored* on its own,
#: which is how a hit names the section it matched in. Why not a field for every section: each
#: indexed field has its own term dictionary, and one per section made the index 1.6× larger
#: and building it 1.4× slower (``docs/search.md``, "Schema").
SEPARATE_SECTIONS = ("summary", "root_cause", "recognise", "why")

#: BM25F weight of each prose field (1.0 when not listed).
FIELD_BOOSTS = {
    "title": 3.0,
    "summary": 1.5,
    "sec_summary": 1.2,
    "sec_root_cause": 1.3,
    "sec_recognise": 1.3,
    "sec_why": 1.2,
    "patterns": 1.2,
}
SECTION_FIELD_NAMES = tuple(f"sec_{key}" for key in SEPARATE_SECTIONS)
#: Fields analysed as prose (stemmed words); a plain word is looked for in all of them.
PROSE_FIELDS = ("title", "summary", *SECTION_FIELD_NAMES, "body", "patterns", "examples")
EXACT_BOOST = 1.5  #: an error token found as typed counts more than a word's stem
ID_BOOST = 30.0  #: typing a document's id finds that document first


def section_key(heading: str) -> str | None:
    """The stable key of a section heading: ``"Root cause"`` → ``root_cause``; else ``None``."""
    key = " ".join(heading.lower().replace("’", "'").split()).strip(" :.")
    return SECTION_KEYS.get(key)


def section_field(heading: str) -> str:
    """The index field holding a section's text: ``sec_root_cause`` or ``body``."""
    key = section_key(heading)
    return f"sec_{key}" if key in SEPARATE_SECTIONS else "body"


#: Filters (``field:value`` in a query, ``?field=value`` in a URL) → index field. Filters on the
#: same single-valued field combine with OR (``severity:sev1 severity:sev2``), on a list field
#: (tags, services) with AND, and different fields with AND.
FILTERS = {
    "kind": "kind",
    "severity": "severity",
    "status": "status",
    "service": "services",
    "tag": "tags",
    "year": "year",
    "root_cause": "root_cause",
    "id": "id",
}
#: Facets counted for every result, in display order.
FACETS = ("kind", "severity", "status", "service", "tag", "year", "root_cause")
MULTI_VALUED = frozenset({"service", "tag"})
#: What people may type before the colon.
FILTER_ALIASES = {
    "kind": "kind", "type": "kind",
    "severity": "severity", "sev": "severity",
    "status": "status",
    "service": "service", "services": "service",
    "tag": "tag", "tags": "tag",
    "year": "year",
    "cause": "root_cause", "root_cause": "root_cause", "rootcause": "root_cause",
    "root_cause_category": "root_cause", "category": "root_cause",
    "id": "id",
}
#: ``title:word`` searches one prose field.
TEXT_FIELD_ALIASES = {"title": "title", "summary": "summary", "pattern": "patterns",
                      "patterns": "patterns", "example": "examples", "examples": "examples"}
KIND_ALIASES = {"pm": "postmortem", "postmortem": "postmortem", "postmortems": "postmortem",
                "incident": "postmortem", "incidents": "postmortem", "sig": "signature",
                "signature": "signature", "signatures": "signature"}


def normalise_filter(name: str, value: str) -> str | None:
    """The indexed form of a filter value (lowercase; ``PM-3`` for ids); ``None`` when impossible."""
    value = " ".join(str(value).replace(",", " ").split()).lower()
    if not value or len(value) > MAX_TOKEN_CHARS:
        return None
    if name == "kind":
        return KIND_ALIASES.get(value)
    if name == "id":
        return d.normalise_id(value)
    if name == "year":
        return value if value.isdigit() and len(value) == 4 else None
    return value


# --------------------------------------------------------------------------------------------
# Analyzers


#: English function words: too common to rank by, left out of the prose fields (which makes the
#: index smaller and faster to build). Phrases still match across them.
STOP = frozenset(STOP_WORDS) | frozenset("""
about above after again against all also am any because been before being below between both
but cannot could did do does doing down during each few further had has having he her here hers
him his how i into its itself just me more most my no nor off once only other ought our ours out
over own same she should so some such than their theirs them then there these they those
through too under until up very was were what where which while who whom why would yours
""".split())

#: Prose: words of letters and digits (``_ . - :`` split them), lowercased, stop words dropped,
#: Porter-stemmed. ``retries`` and ``retry`` meet at ``retri``.
PROSE_ANALYZER = StemmingAnalyzer(expression=r"[^\W_]+", stoplist=STOP, minsize=2,
                                  maxsize=MAX_TOKEN_CHARS, cachesize=200_000)

#: Error tokens: a run of characters that starts and ends with a letter, digit or ``_`` and may
#: contain ``. - : / _ + @ # $ % & ~ ^`` inside — ``0x6C``, ``blk_-1608999687919862906``,
#: ``java.lang.NullPointerException``, ``sns-inbound``, ``Foo.java:12``. Quotes, brackets,
#: commas, semicolons, ``= | ! ? *`` and spaces end a token, so ``errno=ECONNRESET,`` gives
#: ``errno`` and ``econnreset``.
EXACT_TOKEN = r"\w(?:[^\s\"'`()\[\]{}<>,;=|!?*]*\w)?"


class ErrorTokens(Filter):
    """Keeps the tokens prose analysis would split, drop or stem: those with a digit or a
    character other than a letter (``0x6C``, ``sns-inbound``, ``java.lang.NullPointerException``)
    and single characters (``l``). Plain words (``ECONNRESET``, ``OOMKilled``, ``timeout``) are
    found through the prose fields, so keeping them here too would only double the index.
    Positions are kept, with gaps where words were left out."""

    def __call__(self, tokens):
        for t in tokens:
            text = t.text
            if not text.isalpha() or (len(text) == 1 and text.lower() not in STOP):
                yield t


#: The ``exact`` field: error tokens kept whole and lowercased.
EXACT_ANALYZER = (RegexTokenizer(EXACT_TOKEN) | ErrorTokens() | LowercaseFilter()
                  | StopFilter(stoplist=frozenset(), minsize=1, maxsize=MAX_TOKEN_CHARS,
                               renumber=False))


def tokens(analyzer, text: str) -> list[str]:
    return [t.text for t in analyzer(text, mode="query")]


def make_schema() -> wf.Schema:
    prose = {name: wf.TEXT(analyzer=PROSE_ANALYZER, field_boost=FIELD_BOOSTS.get(name, 1.0))
             for name in PROSE_FIELDS}
    return wf.Schema(
        id=wf.ID(stored=True, unique=True, sortable=True),
        revision=wf.ID(sortable=True),
        kind=wf.ID,
        status=wf.ID,
        severity=wf.ID,
        root_cause=wf.ID,
        year=wf.ID,
        services=wf.KEYWORD(commas=True, lowercase=True, scorable=False),
        tags=wf.KEYWORD(commas=True, lowercase=True, scorable=False),
        day=wf.NUMERIC(int, bits=32, sortable=True, signed=False),  # yyyymmdd, 0 when unknown
        exact=wf.TEXT(analyzer=EXACT_ANALYZER, phrase=True),
        meta=wf.STORED,  # what a hit shows: kind, title, slug, status, severity, date, …
        text=wf.STORED,  # zlib-compressed JSON [[heading, text], …] for snippets
        **prose,
    )


# --------------------------------------------------------------------------------------------
# From a document to index fields


def _join(values: Iterable) -> str:
    return "\n".join(str(v) for v in values if v not in (None, ""))


def document_fields(doc: d.Document) -> dict:
    """The fields :class:`WhooshIndex` stores for ``doc`` (plain data, also handy in tests)."""
    fm = doc.front_matter
    day = fm.get("date") or fm.get("first_seen") or fm.get("created")
    day = day if isinstance(day, date) else None
    by_field: dict[str, list[str]] = {}
    sections: list[list[str]] = []
    for heading, text in doc.sections():
        custom = heading and section_key(heading) is None  # its heading says what it is about
        by_field.setdefault(section_field(heading), []).append(
            f"{heading}\n{text}" if custom else text)
        sections.append([heading, text])
    extra = {  # front-matter prose: indexed with the body, stored as sections of their own
        "Trigger": fm.get("trigger"),
        "Customer impact": fm.get("customer_impact"),
        "Action items": _join(item.get("title") for item in fm.get("action_items") or []),
    }
    for heading, text in extra.items():
        if isinstance(text, str) and text.strip():
            by_field.setdefault("body", []).append(text)
            sections.append([heading, text])
    patterns = []
    for pattern in fm.get("patterns") or []:
        value = pattern.get("value") if pattern.get("kind") != "exception" else (
            pattern.get("type") or pattern.get("value"))
        value = _join(value) if isinstance(value, list) else value
        patterns.append(_join([value, pattern.get("message")]))
    examples = [str(e) for e in fm.get("examples") or []]
    if patterns:
        sections.append(["Patterns", _join(patterns)])
    if examples:
        sections.append(["Examples", _join(examples)])
    services = [s.replace(",", " ") for s in doc.services]
    tags = [t.replace(",", " ") for t in doc.tags]
    summary = doc.summary
    out = {
        "id": doc.id,
        "revision": doc.revision or "",
        "kind": doc.kind.name,
        "status": doc.status.lower(),
        "severity": (fm.get("severity") or "").lower() or None,
        "root_cause": (fm.get("root_cause_category") or "").lower() or None,
        "year": str(day.year) if day else None,
        "services": ",".join(services) or None,
        "tags": ",".join(tags) or None,
        "day": day.year * 10000 + day.month * 100 + day.day if day else 0,
        "title": doc.title,
        "summary": summary,
        "patterns": _join(patterns) or None,
        "examples": _join(examples) or None,
        "exact": _join([doc.id, doc.title, doc.body, *extra.values(), *patterns, *examples,
                        *services, *tags]),
        "meta": {
            "kind": doc.kind.name, "title": doc.title, "slug": doc.slug, "status": doc.status,
            "severity": fm.get("severity"), "date": day.isoformat() if day else None,
            "services": doc.services, "tags": doc.tags, "summary": summary[:1000],
            "root_cause": fm.get("root_cause_category"), "path": doc.path,
        },
        "text": zlib.compress(json.dumps(sections).encode("utf-8"), 6),
    }
    for name, parts in by_field.items():
        out[name] = "\n\n".join(parts)
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Query parsing (backend-neutral)


@dataclass
class Clause:
    """One thing to look for. ``kind`` is word | phrase | prefix | fuzzy | filter | group."""

    kind: str
    text: str = ""
    fieldname: str | None = None  #: a filter's name; or the one prose field to search
    negated: bool = False
    items: list[Clause] = field(default_factory=list)  #: a group's clauses
    any: bool = False  #: a group joined by OR
    distance: int = 0  #: a fuzzy word's edit distance (0: by length)

    def __str__(self) -> str:
        sign = "-" if self.negated else ""
        if self.kind == "group":
            joiner = " OR " if self.any else " "
            return f"{sign}({joiner.join(str(i) for i in self.items)})"
        if self.kind == "filter":
            value = f'"{self.text}"' if " " in self.text else self.text
            return f"{sign}{self.fieldname}:{value}"
        text = f'"{self.text}"' if self.kind == "phrase" else self.text
        text += "*" if self.kind == "prefix" else "~" if self.kind == "fuzzy" else ""
        return f"{sign}{self.fieldname}:{text}" if self.fieldname else f"{sign}{text}"


@dataclass
class ParsedQuery:
    """What to look for: text clauses (all of them, or any as a fallback), exclusions, filters."""

    clauses: list[Clause] = field(default_factory=list)  #: positive text clauses, ANDed
    excluded: list[Clause] = field(default_factory=list)  #: ``-word``, ``-"phrase"``, ``-(…)``
    filters: dict[str, list[str]] = field(default_factory=dict)  #: top-level ``field:value``
    excluded_filters: dict[str, list[str]] = field(default_factory=dict)  #: ``-field:value``
    messages: list[str] = field(default_factory=list)  #: what was ignored or repaired, for people
    text: str = ""  #: the cleaned query text

    @property
    def is_empty(self) -> bool:
        return not (self.clauses or self.excluded or self.filters or self.excluded_filters)

    def words(self) -> list[Clause]:
        """Top-level plain words (what spelling suggestions may replace)."""
        return [c for c in self.clauses if c.kind == "word" and not c.fieldname]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064"
                      r"\ufeff\ud800-\udfff\ufff0-\uffff]")
_FIELD = re.compile(r"([A-Za-z][A-Za-z_]{0,30}):(.*)\Z", re.S)
_FUZZY = re.compile(r"(.+?)~([12])?\Z", re.S)


def clean_query(text: str, limit: int = MAX_QUERY_CHARS) -> tuple[str, list[str]]:
    """Drop control and invisible characters, normalise Unicode and spaces, cap the length."""
    messages = []
    text = str(text or "")
    if len(text) > limit * 4:  # don't normalise megabytes just to cut them
        text = text[: limit * 4]
    text = unicodedata.normalize("NFKC", _CONTROL.sub(" ", text))
    text = _CONTROL.sub(" ", text)  # NFKC can produce some again
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut
        messages.append(f"Your search was cut to its first {limit:,} characters.")
    return text, messages


def parse_query(text: str) -> ParsedQuery:
    """Read a query as people type it. Never raises; problems become :attr:`ParsedQuery.messages`.

    Grammar (informal): clauses separated by spaces must all match (``OR`` between two clauses
    makes either enough); ``"…"`` is a phrase; ``-`` before a clause excludes it; ``(…)``
    groups; ``word*`` is a prefix; ``word~`` tolerates a typo or two; ``name:value`` filters on
    a field (see :data:`FILTER_ALIASES`) or, for ``title:`` etc., searches one field.
    Unbalanced quotes and parentheses are closed at the end; stray ones are ignored.
    """
    cleaned, messages = clean_query(text)
    parsed = ParsedQuery(text=cleaned, messages=messages)
    stack: list[Clause] = [Clause("group")]
    pending_or = False
    pending_not = False
    count = 0
    notes: set[str] = set()

    def note(message: str) -> None:
        if message not in notes:
            notes.add(message)
            parsed.messages.append(message)

    def add(clause: Clause) -> None:
        """Append to the innermost open group, joining it to the previous clause after OR."""
        nonlocal pending_or, count
        if clause.kind != "group":
            count += 1
            if count > MAX_CLAUSES:
                note(f"Only the first {MAX_CLAUSES} words and filters were used.")
                return
        elif not clause.items:
            return
        items = stack[-1].items
        if pending_or and items and not clause.negated and not items[-1].negated:
            last = items[-1]
            if last.kind == "group" and last.any and getattr(last, "_from_or", False):
                last.items.append(clause)
            else:
                group = Clause("group", items=[last, clause], any=True)
                group._from_or = True  # type: ignore[attr-defined]
                items[-1] = group
        else:
            items.append(clause)
        pending_or = False

    i, n = 0, len(cleaned)
    while i < n:
        ch = cleaned[i]
        if ch == " ":
            i += 1
            continue
        # A chunk runs to the next space, or into a quoted phrase right after - or field:
        j = i
        while j < n and cleaned[j] not in ' "':
            j += 1
        chunk = cleaned[i:j]
        phrase = None
        if j < n and cleaned[j] == '"' and (chunk == "" or chunk in ("-", "+")
                                             or chunk.endswith(":")):
            end = cleaned.find('"', j + 1)
            if end < 0:
                phrase, i = cleaned[j + 1:], n
                note("A closing quote was missing; it was added at the end.")
            else:
                phrase, i = cleaned[j + 1:end], end + 1
        elif j < n and cleaned[j] == '"':
            i = j  # a quote glued to the end of a word starts the next chunk
        else:
            i = j
        negated = pending_not
        pending_not = False
        if chunk.startswith(("-", "!")) and (len(chunk) > 1 or phrase is not None):
            negated, chunk = True, chunk[1:]
        elif chunk.startswith("+"):
            chunk = chunk[1:]

        if phrase is not None:
            name = chunk[:-1].lower() if chunk.endswith(":") else ""
            if name and name in FILTER_ALIASES:
                add(Clause("filter", phrase.strip(), FILTER_ALIASES[name], negated))
            elif phrase.strip():
                add(Clause("phrase", " ".join(phrase.split()), TEXT_FIELD_ALIASES.get(name),
                           negated))
            continue

        if chunk in ("OR", "|", "||"):
            pending_or = True
            continue
        if chunk in ("AND", "&&", "&"):
            continue
        if chunk == "NOT":
            pending_not = True
            continue
        opens = len(chunk) - len(chunk.lstrip("("))
        chunk = chunk[opens:]
        for k in range(opens):
            group = Clause("group", negated=negated and k == 0)
            stack.append(group)
        if opens:
            negated = False
        trailing = len(chunk) - len(chunk.rstrip(")"))
        inner_open = chunk.count("(") - chunk[: len(chunk) - trailing].count(")")
        closes = max(0, trailing - max(0, inner_open))
        if closes:
            chunk = chunk[: len(chunk) - closes]
        if chunk:
            clause = _chunk_clause(chunk, negated, note)
            if clause is not None:
                add(clause)
        for _ in range(closes):
            if len(stack) > 1:
                add(stack.pop())
            else:
                note("An unmatched “)” was ignored.")
    if pending_or:
        note("“OR” needs a clause on each side; it was ignored.")
    if len(stack) > 1:
        note("A closing parenthesis was missing; it was added at the end.")
        while len(stack) > 1:
            add(stack.pop())

    for clause in stack[0].items:
        _place(parsed, _simplify(clause))
    return parsed


def _simplify(clause: Clause) -> Clause:
    """``((word))`` → ``word``: a group of one clause is that clause (keeping negation)."""
    if clause.kind != "group":
        return clause
    clause.items = [_simplify(c) for c in clause.items]
    if len(clause.items) == 1:
        only = clause.items[0]
        only.negated = only.negated != clause.negated
        return only
    return clause


def _place(parsed: ParsedQuery, clause: Clause) -> None:
    if clause.kind == "filter":
        target = parsed.excluded_filters if clause.negated else parsed.filters
        values = target.setdefault(clause.fieldname, [])
        if clause.text not in values:
            values.append(clause.text)
    elif clause.negated:
        parsed.excluded.append(clause)
    else:
        parsed.clauses.append(clause)


def _chunk_clause(chunk: str, negated: bool, note: Callable[[str], None]) -> Clause | None:
    m = _FIELD.match(chunk)
    if m:
        name, value = m.group(1).lower(), m.group(2)
        if name in FILTER_ALIASES:
            if not value.strip():
                note(f"“{m.group(1)}:” needs a value, like {name}:"
                     f"{_EXAMPLE_VALUES.get(FILTER_ALIASES[name], 'something')}.")
                return None
            return Clause("filter", value, FILTER_ALIASES[name], negated)
        if name in TEXT_FIELD_ALIASES:
            if not value.strip():
                note(f"“{m.group(1)}:” needs a word after it, like {name}:timeout.")
                return None
            clause = _chunk_clause(value, negated, note)
            if clause is not None and clause.kind in ("word", "prefix", "fuzzy"):
                clause.fieldname = TEXT_FIELD_ALIASES[name]
            return clause
        if value and not value.startswith("/") and name.isalpha():
            note(f"There is no field “{m.group(1)}:”, so it was searched as text. Fields: "
                 + ", ".join(sorted(set(FILTER_ALIASES.values()) | {"title"})) + ".")
    if chunk in ("-", "*", "~", "+", "!") or not chunk.strip("-*~+!()"):
        note(f"A lone “{chunk[:10]}” was ignored: put - before a word to exclude it, * after "
             "the start of a word to match its endings.")
        return None
    if chunk.endswith("*"):
        stem = chunk.rstrip("*")
        if len(re.sub(r"\W", "", stem)) < 2:
            note(f"“{chunk[:40]}” is too short for a prefix search; give at least 2 letters.")
            return Clause("word", stem, negated=negated) if stem.strip("*") else None
        return Clause("prefix", stem, negated=negated)
    m = _FUZZY.match(chunk)
    if m and m.group(1).strip("~"):
        return Clause("fuzzy", m.group(1), negated=negated, distance=int(m.group(2) or 0))
    return Clause("word", chunk, negated=negated)


_EXAMPLE_VALUES = {"kind": "signature", "severity": "SEV1", "status": "published",
                   "service": "payments", "tag": "dns", "year": "2022", "root_cause": "deploy",
                   "id": "PM-3"}


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Hit:
    id: str
    kind: str
    title: str
    slug: str
    score: float | None
    snippet: str  #: HTML: document text escaped, matches in ``<mark>``
    section: str | None  #: heading of the section the snippet comes from
    title_html: str = ""  #: the title escaped, matches in ``<mark>``
    status: str | None = None
    severity: str | None = None
    date: str | None = None
    services: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    root_cause: str | None = None


@dataclass
class SearchResult:
    query: str  #: the cleaned query text
    total: int = 0
    hits: list[Hit] = field(default_factory=list)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    suggestion: str | None = None  #: "did you mean" query text
    corrected: bool = False  #: the hits are for :attr:`suggestion`, the query found nothing
    mode: str = "all"  #: all | any (fallback: some words missing) | corrected | filters | empty
    messages: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)  #: active filters, normalised
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    elapsed_ms: float = 0.0


# --------------------------------------------------------------------------------------------
# Snippets and highlighting


@dataclass
class Highlighter:
    """What to mark in text: stemmed prose words, error tokens, and word prefixes."""

    prose: set[str] = field(default_factory=set)
    exact: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.prose or self.exact or self.prefixes)

    def spans(self, text: str, limit: int = 400) -> list[tuple[int, int, str]]:
        """``(start, end, key)`` of each match in ``text``, sorted and not overlapping.

        Tokenises like the analyzers but without their generator chains (this runs on every
        section of every hit shown), and skips text that cannot contain a match.
        """
        found = []
        lowered = text.lower()
        prose = self.prose
        prefixes = tuple(self.prefixes)
        if prose or prefixes:
            heads = frozenset(t[:3] for t in prose)
            if any(h in lowered for h in heads) or any(p in lowered for p in prefixes):
                for m in _WORD_RE.finditer(lowered):
                    word = m.group()
                    if word[:3] in heads and _stem(word) in prose:
                        found.append((m.start(), m.end(), _stem(word)))
                    elif prefixes and word.startswith(prefixes):
                        found.append((m.start(), m.end(), word))
                    else:
                        continue
                    if len(found) >= limit:
                        break
        odd_prefixes = tuple(p for p in prefixes if not p.isalnum())
        if (self.exact and any(t in lowered for t in self.exact)) or (
                odd_prefixes and any(p in lowered for p in odd_prefixes)):
            for m in _EXACT_RE.finditer(lowered):
                word = m.group()
                if word in self.exact or (odd_prefixes and word.startswith(odd_prefixes)):
                    found.append((m.start(), m.end(), word))
                    if len(found) >= 2 * limit:
                        break
        found.sort()
        merged: list[tuple[int, int, str]] = []
        for start, end, key in found:
            if merged and start < merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end, merged[-1][2])
                continue
            merged.append((start, end, key))
        return merged

    def mark(self, text: str, spans=None) -> str:
        """The whole of ``text``, escaped, with matches in ``<mark>``."""
        spans = self.spans(text) if spans is None else spans
        return _render(text, 0, len(text), spans)

    def snippet(self, sections: list[list[str]], fallback: str,
                width: int = SNIPPET_CHARS) -> tuple[str | None, str]:
        """``(heading, html)`` of the best-matching passage; the fallback text if nothing matches."""
        best = None
        for heading, text in sections:
            if not text.strip():
                continue
            spans = self.spans(text) if self else []
            if not spans:
                continue
            distinct = len({key for _, _, key in spans})
            score = distinct * 10 + min(len(spans), 10)
            if best is None or score > best[0]:
                best = (score, heading, text, spans)
        if best is None:
            text = fallback or next((t for _, t in sections if t.strip()), "")
            spans = self.spans(text) if self else []
            start, end = _window(text, spans, width)
            return None, _render(text, start, end, spans)
        _, heading, text, spans = best
        start, end = _window(text, spans, width)
        return heading or None, _render(text, start, end, spans)


_WORD_RE = re.compile(r"[^\W_]+")
_EXACT_RE = re.compile(EXACT_TOKEN)


@functools.lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    return porter_stem(word)


def _window(text: str, spans, width: int) -> tuple[int, int]:
    """The ``width``-character stretch of ``text`` holding the most different matches."""
    if len(text) <= width:
        return 0, len(text)
    best_start, best_score = 0, -1
    for i, (start, _, _) in enumerate(spans[:200]):
        keys = set()
        for s, e, key in spans[i:]:
            if e > start + width:
                break
            keys.add(key)
        if len(keys) > best_score:
            best_start, best_score = start, len(keys)
    if best_score < 0:
        best_start = 0
    else:
        best_start = max(0, best_start - width // 4)
    # Begin and end at word boundaries.
    if best_start > 0:
        space = text.rfind(" ", max(0, best_start - 20), best_start)
        best_start = space + 1 if space >= 0 else best_start
    end = min(len(text), best_start + width)
    if end < len(text):
        space = text.find(" ", end, end + 20)
        end = space if space >= 0 else end
    return best_start, end


_NOISE = re.compile(r"`{3,}[\w+-]*|\*\*|^#+ |\s+", re.M)


def _tidy(text: str) -> str:
    """Markdown noise out of a snippet piece: code fences, bold markers, heading marks, newlines."""
    return _NOISE.sub(lambda m: " " if m.group(0).isspace() or m.group(0).startswith("`") else "",
                      text)


def _render(text: str, start: int, end: int, spans) -> str:
    out = []
    pos = start
    for s, e, _ in spans:
        if e <= start or s < pos:
            continue
        if s >= end:
            break
        out.append(str(escape(_tidy(text[pos:s]))))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        pos = e
    out.append(str(escape(_tidy(text[pos:end]))))
    html = " ".join("".join(out).split())
    if start > 0:
        html = "… " + html
    if end < len(text):
        html += " …"
    return html


# --------------------------------------------------------------------------------------------
# The interface


class SearchIndex:
    """What a search backend does. :class:`WhooshIndex` is one; views and :class:`Search` only
    use these methods."""

    def index_document(self, doc: d.Document) -> None:
        """Add or replace one document; it is searchable when this returns."""
        self.index_documents([doc])

    def index_documents(self, docs: Iterable[d.Document], progress=None) -> int:
        raise NotImplementedError

    def remove(self, ident: str) -> None:
        self.remove_many([ident])

    def remove_many(self, idents: Iterable[str]) -> int:
        raise NotImplementedError

    def rebuild(self, docs: Iterable[d.Document], progress=None) -> int:
        """Replace the whole index with ``docs`` (readers keep the old one until it is done)."""
        raise NotImplementedError

    def revisions(self) -> dict[str, str]:
        """``{id: revision}`` of every indexed document, to reconcile with the database."""
        raise NotImplementedError

    def query(self, text: str, kind: str | None = None,
              filters: dict[str, list[str]] | None = None, sort: str = "relevance",
              limit: int = 20, offset: int = 0, facets: bool = True) -> SearchResult:
        raise NotImplementedError

    def suggest(self, text: str) -> str | None:
        """A "did you mean" query for ``text``, or ``None``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Throw the index away and start an empty one (after it was found unreadable)."""
        raise NotImplementedError

    def doc_count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# Whoosh


@dataclass
class _Compiled:
    """A parsed query turned into Whoosh queries, and what to highlight."""

    text: list[wq.Query]  #: one per positive clause
    excluded: wq.Query | None
    highlighter: Highlighter
    unknown: list[Clause]  #: plain words found nowhere in the index


class WhooshIndex(SearchIndex):
    """A Whoosh 2.7 index in a folder (``DATA_DIR/index``). Safe to share between threads, and
    between processes writing the same folder (one writer at a time, through Whoosh's lock)."""

    def __init__(self, path: Path | str, lock_timeout: float = WRITE_LOCK_TIMEOUT,
                 limitmb: int = 128):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.limitmb = limitmb
        self.schema = make_schema()
        self._ix = None
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer per process; Whoosh's lock across them
        self._local = threading.local()
        self._facet_cache: dict[str, dict[str, list[tuple[str, frozenset]]]] = {}
        self.created = False  #: this object created the index (it was missing or unreadable)

    # -- opening -------------------------------------------------------------------------

    @property
    def _version_file(self) -> Path:
        return self.path / ".wiki-schema-version"

    def _storage(self) -> FileStorage:
        self.path.mkdir(parents=True, exist_ok=True)
        return FileStorage(str(self.path))

    def open(self):
        """The Whoosh index, created when missing; :class:`IndexUnavailable` when unreadable."""
        ix = self._ix
        if ix is not None:
            return ix
        with self._open_lock:
            if self._ix is None:
                storage = self._storage()
                if not windex.exists_in(str(self.path)):
                    with self._lock(storage):
                        if not windex.exists_in(str(self.path)):
                            log.info("search index not found in %s; creating an empty one",
                                     self.path)
                            self._create(storage)
                try:
                    version = self._version_file.read_text("utf-8").strip()
                except OSError:
                    version = None
                if version != SCHEMA_VERSION:
                    raise IndexUnavailable(f"index schema version {version!r}, "
                                           f"expected {SCHEMA_VERSION!r}")
                try:
                    ix = windex.open_dir(str(self.path))
                    with ix.searcher() as s:  # reading the TOC and every segment's header
                        s.doc_count()
                except Exception as exc:  # noqa: BLE001 - whatever a broken file raises
                    raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc
                self._ix = ix
        return self._ix

    def _create(self, storage: FileStorage) -> None:
        """An empty index (under the lock). Its generation follows any previous one, so another
        process's searcher of the old index never looks up to date."""
        generation = windex.TOC._latest_generation(storage, INDEX_NAME) + 1
        for name in list(storage):
            if name.startswith(f"_{INDEX_NAME}_"):
                storage.delete_file(name)
        windex.TOC(self.schema, [], max(generation, 0)).write(storage, INDEX_NAME)
        self._version_file.write_text(SCHEMA_VERSION + "\n", "utf-8")
        self.created = True
        self._facet_cache.clear()

    @contextlib.contextmanager
    def _lock(self, storage: FileStorage):
        """Whoosh's own write lock, taken outside a writer (to create or reset the index)."""
        lock = storage.lock(f"{INDEX_NAME}_WRITELOCK")
        deadline = time.monotonic() + self.lock_timeout
        while not lock.acquire(blocking=False):
            if time.monotonic() > deadline:
                raise IndexBusy(f"the search index in {self.path} stayed locked")
            time.sleep(0.02 + random.random() * 0.03)
        try:
            yield
        finally:
            lock.release()

    def reset(self) -> None:
        """Start an empty index in place, unless another process just did (then use theirs)."""
        self.close()
        with self._open_lock:
            self._ix = None
            storage = self._storage()
            with self._lock(storage):
                if self._readable():
                    log.info("search index in %s was repaired by another process", self.path)
                    return
                log.warning("search index in %s is unreadable; starting a new one", self.path)
                for child in self.path.iterdir():
                    if child.name.endswith(".tmp") and child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)
                self._create(storage)

    def _readable(self) -> bool:
        try:
            if self._version_file.read_text("utf-8").strip() != SCHEMA_VERSION:
                return False
            ix = windex.open_dir(str(self.path))
            with ix.searcher() as s:
                s.doc_count()
                if s.doc_count():
                    s.reader().column_reader("id")
            return True
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        searcher = getattr(self._local, "searcher", None)
        if searcher is not None:
            self._local.searcher = None
            try:
                searcher.close()
            except Exception:  # noqa: BLE001
                pass
        self._ix = None

    def searcher(self):
        """This thread's searcher, replaced when the index changed (never ``refresh()``)."""
        ix = self.open()
        s = getattr(self._local, "searcher", None)
        if s is not None and s._ix is ix:
            try:
                if s.up_to_date():
                    return s
            except Exception:  # noqa: BLE001 - the TOC vanished: reopen below
                pass
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass
        s = ix.searcher()
        self._local.searcher = s
        return s

    def doc_count(self) -> int:
        return self.searcher().doc_count()

    # -- writing -------------------------------------------------------------------------

    def _writer(self, **kwargs):
        """A writer holding the index lock, waiting up to :attr:`lock_timeout` for it."""
        ix = self.open()
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return ix.writer(timeout=min(1.0, self.lock_timeout), delay=0.02,
                                 **{"limitmb": self.limitmb, **kwargs})
            except LockError:
                if time.monotonic() >= deadline:
                    raise IndexBusy(f"the search index in {self.path} stayed locked for "
                                    f"{self.lock_timeout:.0f} s") from None
                time.sleep(random.random() * 0.05)

    def _write(self, fill: Callable, merge: bool | None = None, mergetype=None, **kwargs) -> None:
        """Run ``fill(writer)`` and commit; on any failure cancel so the lock is released."""
        with self._write_lock:
            writer = self._writer(**kwargs)
            try:
                fill(writer)
                if mergetype is not None:
                    writer.commit(mergetype=mergetype)
                else:
                    if merge is None:
                        merge = len(writer.segments) > MAX_SEGMENTS
                    writer.commit(merge=merge)
            except BaseException:
                _abandon(writer)
                raise

    def index_documents(self, docs: Iterable[d.Document], progress=None) -> int:
        docs = list({doc.id: doc for doc in docs}.values())  # the last copy of an id wins
        if not docs:
            return 0

        def fill(writer):
            if writer.segments:
                with writer.searcher() as s:
                    for doc in docs:
                        writer.delete_by_term("id", doc.id, searcher=s)
            for n, doc in enumerate(docs, 1):
                writer.add_document(**document_fields(doc))
                if progress:
                    progress(n, len(docs))

        self._write(fill, merge=None if len(docs) < 100 else True)
        return len(docs)

    def remove_many(self, idents: Iterable[str]) -> int:
        idents = [i for i in dict.fromkeys(idents) if i]
        if not idents:
            return 0
        removed = 0

        def fill(writer):
            nonlocal removed
            if writer.segments:
                with writer.searcher() as s:
                    for ident in idents:
                        removed += writer.delete_by_term("id", ident, searcher=s)

        self._write(fill)
        return removed

    def rebuild(self, docs: Iterable[d.Document], progress=None, total: int | None = None) -> int:
        """Replace the index with ``docs`` in one commit (readers see the old index until then).

        With ``total`` ≥ :data:`PARALLEL_MIN` documents on a machine with several cores (and no
        other thread that a fork could upset), Whoosh's multi-process writer analyses documents
        in :data:`PARALLEL_PROCS` processes and keeps their segments as they are. It can lose a
        process's documents without an error, so the count is checked and, on a mismatch, the
        index is built again in this process.
        """
        docs = docs if isinstance(docs, list) else list(docs)
        total = len(docs)
        procs = min(PARALLEL_PROCS, os.cpu_count() or 1)
        if total >= PARALLEL_MIN and procs > 1 and threading.active_count() == 1:
            count = self._rebuild(docs, progress, total, procs=procs, multisegment=True,
                                  batchsize=50)
            indexed = self.doc_count()
            if indexed == count:
                return count
            log.error("parallel index build kept %d of %d documents; building it again in "
                      "one process", indexed, count)
        return self._rebuild(docs, progress, total)

    def _rebuild(self, docs, progress, total, **kwargs) -> int:
        count = 0

        def fill(writer):
            nonlocal count
            seen = set()
            for doc in docs:
                if doc.id in seen:
                    continue
                seen.add(doc.id)
                writer.add_document(**document_fields(doc))
                count += 1
                if progress:
                    progress(count, total)

        self._write(fill, mergetype=CLEAR, limitmb=max(self.limitmb, 256), **kwargs)
        self._facet_cache.clear()
        return count

    def optimize(self) -> None:
        """Merge every segment into one (what ``wiki reindex`` does at the end)."""
        self._write(lambda writer: None, mergetype=OPTIMIZE)

    def revisions(self) -> dict[str, str]:
        s = self.searcher()
        if not s.doc_count():
            return {}
        reader = s.reader()
        ids = reader.column_reader("id")
        revs = reader.column_reader("revision")
        out = {}
        for docnum in reader.all_doc_ids():
            out[_text(ids[docnum])] = _text(revs[docnum])
        return out

    # -- querying ------------------------------------------------------------------------

    def query(self, text: str, kind: str | None = None,
              filters: dict[str, list[str]] | None = None, sort: str = "relevance",
              limit: int = 20, offset: int = 0, facets: bool = True) -> SearchResult:
        started = time.perf_counter()
        parsed = parse_query(text)
        limit = max(1, min(int(limit), MAX_LIMIT))
        offset = max(0, min(int(offset), 10_000))
        sort = sort if sort in ("relevance", "date") else "relevance"
        result = SearchResult(query=parsed.text, messages=list(parsed.messages), sort=sort,
                              offset=offset, limit=limit)
        active = _merge_filters(parsed.filters, filters, kind, result.messages)
        result.filters = active
        try:
            self._run(parsed, active, result, facets)
        except (IndexBusy, IndexUnavailable):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken segment file shows up here
            raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _run(self, parsed: ParsedQuery, active: dict[str, list[str]], result: SearchResult,
             want_facets: bool) -> None:
        s = self.searcher()
        compiled = self._compile(parsed, s)
        if not compiled.text and parsed.clauses and not compiled.excluded:
            result.messages.append("Those words are too common to search for; add a more "
                                   "specific one.")
        if parsed.is_empty and not active:
            result.mode = "empty"
            return
        if not compiled.text and not active and not parsed.excluded_filters \
                and compiled.excluded is None:
            result.mode = "empty"
            return

        attempts = [("all", wq.And(compiled.text) if compiled.text else None)]
        if len(compiled.text) > 1:
            attempts.append(("any", wq.Or(compiled.text, scale=0.9)))
        sets = None
        for mode, text_q in attempts:
            sets = self._match(s, text_q, compiled.excluded, active, parsed.excluded_filters)
            result.mode = mode if compiled.text else "filters"
            if sets.total:
                break
        if sets.total == 0 or compiled.unknown:
            suggestion = self._suggestion(parsed, compiled, s)
            if suggestion is not None:
                corrected_text, corrected = suggestion
                result.suggestion = corrected_text
                if sets.total == 0:
                    alt = self._compile(corrected, s)
                    attempts = [("corrected", wq.And(alt.text) if alt.text else None)]
                    if len(alt.text) > 1:
                        attempts.append(("corrected", wq.Or(alt.text, scale=0.9)))
                    for mode, text_q in attempts:
                        alt_sets = self._match(s, text_q, alt.excluded, active,
                                               parsed.excluded_filters)
                        if alt_sets.total:
                            sets, compiled, result.mode = alt_sets, alt, mode
                            result.corrected = True
                            break
        if result.mode == "any" and sets.total:
            result.messages.append("No document has all of those words; showing documents "
                                   "with some of them.")
        result.total = sets.total
        if want_facets:
            result.facets = sets.facets
        if not sets.total:
            return
        text_q = sets.text_query
        sortedby = None
        if result.sort == "date" or text_q is None:
            sortedby = "day"
        q = text_q if text_q is not None else wq.Every()
        hits = s.search(q, filter=sets.docs, limit=result.offset + result.limit,
                        sortedby=sortedby, reverse=bool(sortedby))
        highlighter = compiled.highlighter
        for hit in hits[result.offset:]:
            meta = hit.get("meta") or {}
            try:
                sections = json.loads(zlib.decompress(hit["text"]))
            except Exception:  # noqa: BLE001 - stored text unreadable: show the summary
                sections = []
            section, snippet = highlighter.snippet(sections, meta.get("summary", ""))
            title = meta.get("title", hit["id"])
            result.hits.append(Hit(
                id=hit["id"], kind=meta.get("kind", ""), title=title,
                slug=meta.get("slug") or d.slugify(title),
                score=round(hit.score, 4) if hit.score is not None and not sortedby else None,
                snippet=snippet, section=section, title_html=highlighter.mark(title),
                status=meta.get("status"), severity=meta.get("severity"), date=meta.get("date"),
                services=meta.get("services") or [], tags=meta.get("tags") or [],
                root_cause=meta.get("root_cause"),
            ))

    # -- query compilation -----------------------------------------------------------------

    def _compile(self, parsed: ParsedQuery, s) -> _Compiled:
        hl = Highlighter()
        unknown: list[Clause] = []
        text = []
        for clause in parsed.clauses:
            q = self._clause(clause, s, hl, unknown)
            if q is not None:
                text.append(q)
        excluded = [q for q in (self._clause(c, s, None, None) for c in parsed.excluded) if q]
        return _Compiled(text, wq.Or(excluded) if excluded else None, hl, unknown)

    def _clause(self, c: Clause, s, hl: Highlighter | None, unknown: list | None):
        if c.kind == "group":
            parts = [(self._clause(i, s, hl if not i.negated else None, None), i.negated)
                     for i in c.items]
            pos = [q for q, neg in parts if q is not None and not neg]
            neg = [q for q, negated in parts if q is not None and negated]
            if not pos:
                return None
            q = wq.Or(pos) if c.any else wq.And(pos)
            return wq.AndNot(q, wq.Or(neg)) if neg else q
        if c.kind == "filter":
            name = c.fieldname
            value = normalise_filter(name, c.text)
            if value is None:
                return wq.NullQuery
            return wq.ConstantScoreQuery(wq.Term(FILTERS[name], value), 0.0)
        if c.kind == "phrase":
            return self._words(c.text, c.fieldname, hl)
        if c.kind == "prefix":
            return self._prefix(c.text, s, hl)
        if c.kind == "fuzzy":
            return self._fuzzy(c, s, hl)
        q = self._words(c.text, c.fieldname, hl, single=True)
        if q is not None and unknown is not None and not c.fieldname and _unknown(s, c.text):
            unknown.append(c)
        return q

    def _words(self, text: str, field_name: str | None, hl: Highlighter | None,
               single: bool = False, boost: float = 1.0):
        """A word or phrase: its error tokens in ``exact`` and its stems in every prose field
        (or in ``field_name``), each a term or a phrase."""
        exact = tokens(EXACT_ANALYZER, text)
        prose = tokens(PROSE_ANALYZER, text)
        ident = d.normalise_id(text) if single and not field_name else None
        subs = []
        if ident:
            subs.append(wq.Term("id", ident, boost=ID_BOOST))
            subs.append(wq.Term("exact", ident.lower(), boost=EXACT_BOOST))
        elif field_name:
            if prose:
                subs.append(_sequence(field_name, prose))
        else:
            if exact:
                subs.append(_all(text, exact, single, EXACT_BOOST))
            if prose:
                subs.extend(_sequence(name, prose) for name in PROSE_FIELDS)
        if not subs:
            return None
        if hl is not None:
            if not ident:
                hl.prose.update(prose)
            hl.exact.update(exact)
        q = subs[0] if len(subs) == 1 else wq.Or(subs)
        if boost != 1.0:
            q = wq.Or([q], boost=boost)
        return q

    def _prefix(self, text: str, s, hl: Highlighter | None):
        """``time*``: every indexed word starting with ``time`` (as typed or stemmed), in any
        prose field or among the error tokens; at most :data:`MAX_PREFIX_TERMS` words."""
        raw = text.lower()
        starts = {raw}
        if raw.isalpha():
            starts.add(_stem(raw))
        reader = s.reader()
        subs = []
        for name in ("exact", *PROSE_FIELDS):
            for start in starts:
                for term in reader.expand_prefix(name, start):
                    subs.append(wq.Term(name, _text(term)))
                    if len(subs) >= MAX_PREFIX_TERMS:
                        break
        if not subs:
            return wq.NullQuery
        if hl is not None:
            hl.prefixes.update(starts)
        return wq.Or(subs)

    def _fuzzy(self, c: Clause, s, hl: Highlighter | None):
        word = c.text
        maxdist = c.distance or (1 if len(word) <= 4 else 2)
        alternatives = [word] + _corrections(s, word.lower(), maxdist, limit=6)
        subs = [q for q in (self._words(w, None, hl, single=True, boost=1.0 if w == word else 0.8)
                            for w in alternatives) if q is not None]
        return wq.Or(subs) if subs else None

    # -- matching, facets, suggestions -----------------------------------------------------

    def _match(self, s, text_q, excluded, active, excluded_filters) -> _Sets:
        """Every matching document, and facet counts, computed segment by segment."""
        out = _Sets(text_query=text_q)
        mask_parts = [excluded] if excluded is not None else []
        for name, values in excluded_filters.items():
            for value in values:
                norm = normalise_filter(name, value)
                if norm is not None:
                    mask_parts.append(wq.Term(FILTERS[name], norm))
        mask = wq.Or(mask_parts) if mask_parts else None
        counts: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        for leaf, offset in s.leaf_searchers():
            reader = leaf.reader()
            if not reader.doc_count_all():
                continue
            base = set(text_q.docs(leaf)) if text_q is not None else set(reader.all_doc_ids())
            if mask is not None and base:
                base.difference_update(mask.docs(leaf))
            cache = self._segment_facets(reader)
            allowed: dict[str, set] = {}
            for name, values in active.items():
                postings = dict(cache.get(name) or ())
                if name not in cache:
                    postings = {v: frozenset(wq.Term(FILTERS[name], v).docs(leaf)) for v in values}
                sets = [postings.get(v, frozenset()) for v in values]
                if name in MULTI_VALUED:
                    allowed[name] = set.intersection(*map(set, sets)) if sets else set()
                else:
                    allowed[name] = set().union(*sets)
            docs = base
            for allow in allowed.values():
                docs = docs & allow
            out.total += len(docs)
            out.docs.update(offset + n for n in docs)
            for name in FACETS:
                if name in allowed and name not in MULTI_VALUED:
                    scope = base  # a single-valued facet counts as if its own filter were off
                    for other, allow in allowed.items():
                        if other != name:
                            scope = scope & allow
                else:
                    scope = docs
                if not scope:
                    continue
                tally = counts[name]
                for value, postings in cache.get(name, ()):
                    n = len(postings & scope)
                    if n:
                        tally[value] = tally.get(value, 0) + n
        out.facets = {name: _order_facet(name, tally) for name, tally in counts.items()}
        return out

    def _segment_facets(self, reader) -> dict[str, list[tuple[str, frozenset]]]:
        """Per facet, ``[(value, local doc numbers)]`` of one segment (segments never change)."""
        segment = reader.segment() if hasattr(reader, "segment") else None
        key = segment.segment_id() if segment is not None else None
        cached = self._facet_cache.get(key) if key else None
        if cached is not None:
            return cached
        out = {}
        for name in FACETS:
            fieldname = FILTERS[name]
            values = []
            for term in reader.lexicon(fieldname):
                value = _text(term)
                values.append((value, frozenset(reader.postings(fieldname, value).all_ids())))
            out[name] = values
        if key:
            if len(self._facet_cache) > 4 * MAX_SEGMENTS:
                self._facet_cache.clear()
            self._facet_cache[key] = out
        return out

    def _suggestion(self, parsed: ParsedQuery, compiled: _Compiled, s):
        """``(text, ParsedQuery)`` with unknown words replaced by their closest index word."""
        replaced = False
        new_clauses = []
        for clause in parsed.clauses:
            if clause in compiled.unknown:
                best = _corrections(s, clause.text.lower(), 1 if len(clause.text) <= 4 else 2, 1)
                if best:
                    new_clauses.append(Clause("word", best[0]))
                    replaced = True
                    continue
            new_clauses.append(clause)
        if not replaced:
            return None
        corrected = ParsedQuery(clauses=new_clauses, excluded=parsed.excluded,
                                filters=parsed.filters, excluded_filters=parsed.excluded_filters)
        parts = [str(c) for c in new_clauses] + [str(c) for c in parsed.excluded]
        parts += [str(Clause("filter", v, name)) for name, vs in parsed.filters.items() for v in vs]
        parts += [str(Clause("filter", v, name, True))
                  for name, vs in parsed.excluded_filters.items() for v in vs]
        corrected.text = " ".join(parts)
        return corrected.text, corrected

    def suggest(self, text: str) -> str | None:
        parsed = parse_query(text)
        s = self.searcher()
        compiled = self._compile(parsed, s)
        suggestion = self._suggestion(parsed, compiled, s)
        return suggestion[0] if suggestion else None


@dataclass
class _Sets:
    text_query: object = None
    total: int = 0
    docs: set = field(default_factory=set)  #: global document numbers of every match
    facets: dict = field(default_factory=dict)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _all(text: str, words: list[str], single: bool, boost: float = 1.0):
    """The error tokens of a word or phrase. Plain words between them are not in the ``exact``
    field, so their positions have gaps: one word's tokens are a phrase with that much slop; a
    quoted phrase only needs each of them (its prose part checks the order)."""
    if len(words) == 1:
        return wq.Term("exact", words[0], boost=boost)
    if single:
        gaps = len(_EXACT_RE.findall(text)) - len(words)
        return wq.Phrase("exact", words, slop=1 + gaps, boost=boost)
    return wq.And([wq.Term("exact", w) for w in words], boost=boost)


def _sequence(fieldname: str, words: list[str], boost: float = 1.0):
    if len(words) == 1:
        return wq.Term(fieldname, words[0], boost=boost)
    return wq.Phrase(fieldname, words, boost=boost)


def _unknown(s, word: str) -> bool:
    """True when neither the word's error tokens nor its stems are anywhere in the index."""
    reader = s.reader()
    exact = tokens(EXACT_ANALYZER, word)
    prose = tokens(PROSE_ANALYZER, word)
    if not exact and not prose:
        return False
    if any(reader.doc_frequency("exact", token) for token in exact):
        return False
    return not any(reader.doc_frequency(name, token) for name in PROSE_FIELDS for token in prose)


#: Where spelling suggestions come from: the prose fields' vocabulary (stems).
SPELLING_FIELDS = ("title", "summary", "body", *SECTION_FIELD_NAMES)
_PLAIN_WORD = re.compile(r"[^\W\d_]{3,40}")


def _corrections(s, word: str, maxdist: int, limit: int) -> list[str]:
    """Words of the index within ``maxdist`` edits of ``word``, most frequent first.

    The index holds stems, so the typed word's stem is corrected (``conect`` → ``connect``)
    and each stem is shown as the form of it closest to what was typed (``connection``).
    """
    if not _PLAIN_WORD.fullmatch(word):
        return []
    word = word.lower()
    stem = _stem(word)
    try:
        reader = s.reader()
        scores: dict[str, float] = {}
        for k in range(1, maxdist + 1):
            for name in SPELLING_FIELDS:
                for candidate in reader.terms_within(name, stem, k, prefix=1):
                    if candidate != stem and candidate not in scores:
                        scores[candidate] = k - reader.doc_frequency(name, candidate) / 1e9
            if len(scores) >= limit:
                break
        ranked = sorted(scores, key=lambda c: (scores[c], c))
        out = []
        for candidate in ranked:
            surface = _surface(s, candidate, word)
            if surface and surface != word and surface not in out:
                out.append(surface)
            if len(out) >= limit:
                break
        return out
    except Exception:  # noqa: BLE001 - suggestions are a nicety
        log.debug("no suggestions for %r", word, exc_info=True)
        return []


def _surface(s, stem: str, typed: str) -> str | None:
    """A word in the text of a document that stems to ``stem``, the closest to ``typed``."""
    for name in SPELLING_FIELDS:
        docnums = list(wq.Term(name, stem).docs(s))[:3]
        if not docnums:
            continue
        forms = set()
        for docnum in docnums:
            stored = s.stored_fields(docnum)
            try:
                sections = json.loads(zlib.decompress(stored["text"]))
            except Exception:  # noqa: BLE001
                sections = []
            text = " ".join([(stored.get("meta") or {}).get("title", "")]
                            + [t for _, t in sections]).lower()
            heads = stem[:3]
            forms.update(w for w in _WORD_RE.findall(text)
                         if w.startswith(heads) and _stem(w) == stem)
        if forms:
            return min(forms, key=lambda f: (edit_distance(f, typed), len(f), f))
    return None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (small words only; for ranking suggestions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _order_facet(name: str, tally: dict[str, int]) -> list[tuple[str, int]]:
    if name == "year":
        items = sorted(tally.items(), reverse=True)
    elif name in ("severity", "kind"):
        items = sorted(tally.items())
    else:
        items = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
    if name == "severity":
        items = [(v.upper(), c) for v, c in items]
    return items[:FACET_VALUES]


def _merge_filters(from_query: dict[str, list[str]], given: dict | None, kind: str | None,
                   messages: list[str]) -> dict[str, list[str]]:
    """Filters from the query text, the URL and ``kind=``, normalised; bad values reported."""
    out: dict[str, list[str]] = {}
    pairs = [(name, v) for name, values in from_query.items() for v in values]
    for name, values in (given or {}).items():
        name = FILTER_ALIASES.get(str(name).lower(), str(name).lower())
        values = [values] if isinstance(values, str) else list(values or [])
        pairs += [(name, v) for v in values]
    if kind:
        pairs.append(("kind", kind))
    for name, value in pairs:
        if name not in FILTERS:
            messages.append(f"There is no filter “{name}”.")
            continue
        norm = normalise_filter(name, value)
        if norm is None:
            messages.append(f"“{str(value)[:60]}” is not a valid {name}; the filter was ignored."
                            if str(value).strip() else f"The {name} filter was empty.")
            continue
        values = out.setdefault(name, [])
        if norm not in values:
            values.append(norm)
    return out


def _abandon(writer) -> None:
    """Cancel a writer after a failure; whatever happens, release the index lock."""
    try:
        if not writer.is_closed:
            writer.cancel()
    except Exception:  # noqa: BLE001
        log.exception("cancelling a search index writer failed")
    finally:
        lock = getattr(writer, "writelock", None)
        if lock is not None and getattr(lock, "fd", None) is not None:
            try:
                lock.release()
            except Exception:  # noqa: BLE001
                pass


# --------------------------------------------------------------------------------------------
# Keeping the index in line with the wiki


class Search:
    """A :class:`SearchIndex` kept in line with a :class:`wiki.core.Wiki`.

    As one of the wiki's listeners it indexes each saved document before the save returns and
    applies every sync report (changed and removed documents). The first sync also *reconciles*:
    it compares the revision of every indexed document with the database and reindexes only
    the differences — which is how a missing, deleted or unreadable index gets rebuilt, and how
    a save that reached the database but not the index (a crash, a lock timeout) is caught up.
    """

    def __init__(self, index: SearchIndex, wiki=None):
        self.index = index
        self.wiki = wiki
        self.reconciled = False
        self._lock = threading.Lock()

    # -- listener --------------------------------------------------------------------------

    def on_save(self, doc: d.Document, wiki, author=None, message=None) -> None:
        self.wiki = wiki
        try:
            self.index.index_document(doc)
        except IndexUnavailable:
            self.recover()
        except Exception:  # noqa: BLE001 - the save itself succeeded; catch up later
            log.exception("could not index %s; it will be indexed at the next reconcile", doc.id)
            self.reconciled = False

    def on_sync(self, report, wiki, full: bool) -> None:
        self.wiki = wiki
        try:
            if full:
                count = self.index.rebuild(report.changed)
                log.info("search index rebuilt with %d documents", count)
                self.reconciled = True
                return
            if report.removed:
                self.index.remove_many(report.removed)
            if report.changed:
                self.index.index_documents(report.changed)
        except IndexUnavailable:
            self.recover()
            return
        except Exception:  # noqa: BLE001
            log.exception("could not apply a sync to the search index; reconciling")
            self.reconciled = False
        if not self.reconciled:
            self.reconcile()

    # -- reconciling and recovering --------------------------------------------------------

    def expected(self) -> dict[str, tuple[str, str]]:
        """``{id: (revision, path)}`` of every document in the database."""
        from sqlmodel import select

        from .models import DocumentRow

        with self.wiki.session() as session:
            rows = session.exec(select(DocumentRow.id, DocumentRow.revision, DocumentRow.path))
            return {ident: (rev, path) for ident, rev, path in rows}

    def reconcile(self, progress=None) -> tuple[int, int]:
        """Reindex documents whose revision differs from the database; drop those it lacks.

        Returns ``(indexed, removed)``.
        """
        if self.wiki is None:
            return 0, 0
        with self._lock:
            started = time.perf_counter()
            try:
                expected = self.expected()
                actual = self.index.revisions()
            except IndexUnavailable:
                self.index.reset()
                expected, actual = self.expected(), {}
            stale = [ident for ident, (rev, _) in expected.items() if actual.get(ident) != rev]
            gone = [ident for ident in actual if ident not in expected]
            docs = []
            for ident in stale:
                try:
                    doc = self.wiki.store.read(expected[ident][1])
                except Exception:  # noqa: BLE001 - changed since the sync; next sync fixes it
                    continue
                if doc.id == ident:
                    docs.append(doc)
            if docs:
                if not actual and len(docs) > 1:
                    self.index.rebuild(docs, progress, total=len(docs))
                else:
                    self.index.index_documents(docs, progress)
            if gone:
                self.index.remove_many(gone)
            self.reconciled = True
            if docs or gone:
                why = "was empty" if not actual else "was behind the database"
                log.info("search index %s: indexed %d document(s), removed %d in %.1f s",
                         why, len(docs), len(gone), time.perf_counter() - started)
            return len(docs), len(gone)

    def recover(self) -> None:
        """The index could not be read: start a new one and fill it from the wiki."""
        log.warning("search index unreadable; rebuilding it from the content", exc_info=True)
        self.index.reset()
        self.reconciled = False
        self.reconcile()

    def reindex(self, full: bool = False, progress=None) -> tuple[int, int]:
        """What ``wiki reindex`` does: sync the database, then catch the index up (or rebuild)."""
        if full:
            docs = self._all_documents()
            count = self.index.rebuild(docs, progress, total=len(docs))
            self.reconciled = True
            return count, 0
        self.wiki.sync()
        return self.reconcile(progress)

    def _all_documents(self) -> list[d.Document]:
        docs = []
        for ident, (_, path) in sorted(self.expected().items()):
            try:
                doc = self.wiki.store.read(path)
            except Exception:  # noqa: BLE001
                continue
            if doc.id == ident:
                docs.append(doc)
        return docs

    # -- querying --------------------------------------------------------------------------

    def query(self, text: str, **kwargs) -> SearchResult:
        """:meth:`SearchIndex.query`, recovering from an unreadable index (never raises for it)."""
        if not self.reconciled and self.wiki is not None:
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001
                log.exception("reconciling the search index failed")
        try:
            return self.index.query(text, **kwargs)
        except IndexUnavailable:
            pass
        # First try a fresh searcher (another process may have merged segments away), then
        # rebuild from the content.
        self.index.close()
        try:
            return self.index.query(text, **kwargs)
        except IndexUnavailable:
            try:
                self.recover()
                return self.index.query(text, **kwargs)
            except Exception:  # noqa: BLE001
                log.exception("search failed even after rebuilding the index")
        result = SearchResult(query=clean_query(text)[0])
        result.messages.append("Search is unavailable right now; the index is being rebuilt. "
                               "Try again in a minute.")
        result.mode = "unavailable"
        return result

    def suggest(self, text: str) -> str | None:
        try:
            return self.index.suggest(text)
        except Exception:  # noqa: BLE001
            return None


def init_app(app) -> None:
    """Create the app's search index (``DATA_DIR/index``) and register it with the wiki."""
    wiki = app.extensions["wiki"]
    index = WhooshIndex(Path(app.config["DATA_DIR"]) / "index")
    search = Search(index, wiki)
    try:
        index.open()
    except IndexUnavailable:
        log.warning("search index in %s is unreadable; it will be rebuilt", index.path)
        index.reset()
    wiki.listeners.append(search)
    app.extensions["search"] = search

