"""Full-text search: a Whoosh index of every document, kept in line with the wiki. No Flask.

Three layers, each usable on its own from a test or the CLI:

* :func:`parse_query` turns what a person typed into a :class:`ParsedQuery` — words, quoted
  phrases, ``time*`` prefixes, ``word~`` fuzzy words, ``-exclusions``, ``(a OR b)`` groups and
  ``field:value`` filters — plus messages about anything it had to ignore or repair. It never
  raises, whatever the input, and knows nothing about Whoosh.
* :class:`SearchIndex` is the interface a backend implements (``index_document``, ``remove``,
  ``query``, ``rebuild``, ``revisions``, ``suggest``); :class:`WhooshIndex` is the one we have.
  A PostgreSQL full-text backend for multi-host deployments would be a second subclass.
* :class:`Search` keeps a :class:`SearchIndex` in line with a :class:`wiki.core.Wiki`: it is one of
  the wiki's listeners (``on_save``, ``on_sync``), reconciles the index with the database at
  start-up, and rebuilds a missing or unreadable index instead of failing a request.

``init_app(app)`` wires a :class:`Search` into the Flask app as ``app.extensions["search"]``.

Whoosh traps this module avoids on purpose (``docs/dependencies.md``):

* ``Searcher.refresh()`` can return duplicate hits after a merge: each thread keeps its own
  searcher, checks :meth:`~whoosh.searching.Searcher.up_to_date` and opens a new one when stale.
* ``AsyncWriter`` can drop documents when its background replay fails: every write takes the index
  lock with ``writer(timeout=…)`` in a retry loop and is cancelled on any failure, so the lock is
  never left held. The multi-process writer used for big rebuilds can also lose a process's
  documents silently, so its result is counted and redone in one process on a mismatch.
* A commit that merges segments costs tens to hundreds of milliseconds: saves commit with
  ``merge=False``; a merge runs once the index has more than :data:`MAX_SEGMENTS` segments.
* Segments are written as separate files, not one compound file: opening a compound segment
  copies its term dictionary into memory (``BufferFile`` wraps the mmap in ``BytesIO``), which
  made every save and every new searcher 3–4× slower at 10,000 documents.
* Block-max top-N (``search(limit=n, optimize=True)``) loses documents with boosted
  sub-queries: ``WrappingMatcher.replace`` hands its child the score threshold without
  dividing it by the boost (``skip_to_quality`` does divide), so a ``Term(boost=1.5)`` is
  dropped as "cannot make the top N" while its boosted score would. And the two-sided
  ``skip_to_quality`` of unions, intersections and ``AndMaybe`` skip one side's blocks against
  the *current* block of the other side, while a later block of it may score higher; the
  ``AndMaybe`` one also leaves its optional side behind, so the next document misses that
  score. Patched below (:func:`_wrapping_replace`, :func:`_union_skip_to_quality`, …) to
  bound the other side by its whole list's best score; and ``Or(scale=…)`` (a coordination
  bonus that ``replace`` ignores too) is never ranked that way.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import heapq
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
from array import array
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from markupsafe import escape
from whoosh import fields as wf
from whoosh import formats as wformats
from whoosh import index as windex
from whoosh import query as wq
from whoosh import scoring
from whoosh.analysis import (
    STOP_WORDS,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
    Token,
    Tokenizer,
)
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.filedb.filestore import FileStorage
from whoosh.index import LockError
from whoosh.lang.porter import stem as porter_stem
from whoosh.matching import (
    AndMaybeMatcher,
    IntersectionMatcher,
    NullMatcher,
    ReadTooFar,
    UnionMatcher,
    WrappingMatcher,
)
from whoosh.matching import Matcher as WhooshMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.util import make_binary_tree
from whoosh.util.numeric import byte_to_length
from whoosh.writing import CLEAR, OPTIMIZE

from . import documents as d

log = logging.getLogger(__name__)

__all__ = [
    "FACETS", "FILTERS", "Hit", "IndexBusy", "IndexUnavailable", "ParsedQuery", "Search",
    "SearchError", "SearchIndex", "SearchResult", "WhooshIndex", "document_fields", "init_app",
    "parse_query",
]



def _wrapping_replace(self, minquality=0):
    """``WrappingMatcher.replace`` with the threshold scaled by the boost, as Whoosh's own
    ``skip_to_quality`` does (2.7.4 passes it unscaled: see the module's docstring)."""
    boost = getattr(self, "boost", 1.0)
    if minquality and boost and boost != 1.0:
        minquality = minquality / boost
    r = self.child.replace(minquality)
    return self if r is self.child else self._replacement(r)


def _union_skip_to_quality(self, minquality):
    """Skip blocks of either side that cannot reach ``minquality`` even with the other side's
    best score anywhere in its list (Whoosh 2.7 bounds it by the other's current block)."""
    self._id = None
    a, b = self.a, self.b
    if not (a.is_active() or b.is_active()):
        raise ReadTooFar
    if not a.is_active():
        return b.skip_to_quality(minquality)
    if not b.is_active():
        return a.skip_to_quality(minquality)
    skipped = a.skip_to_quality(minquality - b.max_quality())
    if a.is_active():
        skipped += b.skip_to_quality(minquality - a.max_quality())
    return skipped


def _intersection_skip_to_quality(self, minquality):
    """As :func:`_union_skip_to_quality`, then both sides brought to the same document."""
    a, b = self.a, self.b
    skipped = 0
    if a.is_active() and b.is_active():
        skipped = a.skip_to_quality(minquality - b.max_quality())
    if a.is_active() and b.is_active():
        skipped += b.skip_to_quality(minquality - a.max_quality())
    if a.is_active() and b.is_active() and a.id() != b.id():
        self._find_next()
    return skipped


def _andmaybe_skip_to_quality(self, minquality):
    """Skip the required side's blocks that cannot reach ``minquality`` even with the optional
    side's best score, then bring the optional side up to it (so its score counts)."""
    a, b = self.a, self.b
    if not a.is_active():
        raise ReadTooFar
    if not b.is_active():
        return a.skip_to_quality(minquality)
    skipped = a.skip_to_quality(minquality - b.max_quality())
    if a.is_active() and b.is_active() and b.id() < a.id():
        b.skip_to(a.id())
    return skipped


WrappingMatcher.replace = _wrapping_replace
UnionMatcher.skip_to_quality = _union_skip_to_quality
IntersectionMatcher.skip_to_quality = _intersection_skip_to_quality
AndMaybeMatcher.skip_to_quality = _andmaybe_skip_to_quality

# --------------------------------------------------------------------------------------------
# Limits


MAX_QUERY_CHARS = 1000  #: longer queries are cut here (with a message)
MAX_CLAUSES = 32  #: words, phrases and filters beyond this are ignored (with a message)
MAX_TOKEN_CHARS = 200  #: longer tokens are not indexed, and ignored in queries
MIN_PREFIX_CHARS = 2  #: ``ti*`` is the shortest prefix search
MAX_PREFIX_TERMS = 200  #: a ``prefix*`` matches at most this many words (the most frequent)
MAX_LIMIT = 100  #: results per request
MAX_OFFSET = 10_000
FACET_VALUES = 50  #: values listed per facet
SNIPPET_CHARS = 240
WRITE_LOCK_TIMEOUT = 30.0  #: seconds a save waits for the index lock before giving up
MAX_SEGMENTS = 12  #: commits skip merging until the index has more segments than this
RECONCILE_RETRY = 60.0  #: seconds before queries retry a reconcile that failed
CACHED_QUERIES = 64  #: recent queries' matches and ranking kept for paging and facet clicks…
CACHED_ITEMS = 1_000_000  #: …holding at most this many matches in all
#: Relevance ranking scores every match when there are at most this many (and keeps them all
#: for paging); above, Whoosh's block-max top-N scores only what can still make the page.
SCORE_ALL = 2000
POSTINGS_PER_BLOCK = 128  #: Whoosh's posting lists are read (decompressed, unpickled) in blocks
PARALLEL_MIN = 2000  #: rebuilds of at least this many documents use several processes
PARALLEL_PROCS = 2
INDEX_NAME = "MAIN"  #: Whoosh's default index name: files ``_MAIN_*``, lock ``MAIN_WRITELOCK``
SCHEMA_VERSION = "7"  #: bump when the schema or an analyzer changes: old indexes are rebuilt


class SearchError(Exception):
    """Base class for search errors."""


class IndexBusy(SearchError):
    """The index stayed locked by another writer for longer than the timeout."""


class IndexUnavailable(SearchError):
    """The index cannot be read (missing, truncated, from another version): rebuild it."""


# --------------------------------------------------------------------------------------------
# Fields


#: Prose fields (stemmed words) with their BM25F weight. A plain word is looked for in each of
#: them and in ``exact``. The whole body is one field: every section is also *stored* on its
#: own, which is how a hit names the section it matched in. (A field per section was measured:
#: 1.6× the index size, 1.4× the build time and twice the query time, because each field has
#: its own term dictionary and a word must be looked up in each; see docs/search.md, "Schema".)
PROSE_FIELDS = {"title": 3.0, "summary": 1.5, "body": 1.0, "patterns": 1.2}
#: Fields that add to the score of a document whose body matches. (Not the summary: its posting
#: lists are long, and boosting with it made common-word queries 40% slower.)
BOOST_FIELDS = ("title", "patterns")
EXACT_BOOST = 1.5  #: an error token found as typed counts more than a word's stem
ID_BOOST = 30.0  #: typing a document's id finds that document first

#: Filters (``field:value`` in a query, ``?field=value`` in a URL) → index field. Values of one
#: single-valued field combine with OR (``severity:sev1 severity:sev2``); values of a list field
#: (tags, services) with AND; different fields with AND.
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
#: What people may type before the colon, for each filter.
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
#: ``title:word`` searches one prose field only.
TEXT_FIELD_ALIASES = {"title": "title", "summary": "summary", "body": "body",
                      "pattern": "patterns", "patterns": "patterns", "example": "patterns",
                      "examples": "patterns"}
KIND_ALIASES = {"pm": "postmortem", "postmortem": "postmortem", "postmortems": "postmortem",
                "incident": "postmortem", "incidents": "postmortem", "sig": "signature",
                "signature": "signature", "signatures": "signature"}
_EXAMPLE_VALUES = {"kind": "signature", "severity": "SEV1", "status": "published",
                   "service": "payments", "tag": "dns", "year": "2022", "root_cause": "deploy",
                   "id": "PM-3"}


def normalise_filter(name: str, value: object) -> str | None:
    """The indexed form of a filter value (lowercase; ``PM-3`` for ids); ``None`` if impossible."""
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


#: English function words: too common to rank by, so left out of the prose fields (a smaller
#: index, faster to build). Each leaves a gap in the positions, so a quoted phrase still needs
#: its words as far apart as typed: ``"root cause of the outage"`` finds "root cause of an
#: outage", and ``"health check"`` does not find "health of the check".
STOP = frozenset(STOP_WORDS) | frozenset("""
about above after again against all also am any because been before being below between both
but cannot could did do does doing down during each few further had has having he her here hers
him his how i into its itself just me more most my no nor off once only other ought our ours out
over own same she should so some such than their theirs them then there these they those
through too under until up very was were what where which while who whom why would yours
""".split())

#: Prose: words of letters and digits (``_ . - :`` split them), lowercased, stop words dropped
#: (leaving gaps), Porter-stemmed. ``retries`` and ``retry`` meet at ``retri``. This is Whoosh's
#: ``StemmingAnalyzer`` with the stop filter's ``renumber`` off, as a chain of its parts…
PROSE_CHAIN = (RegexTokenizer(r"[^\W_]+") | LowercaseFilter()
               | StopFilter(stoplist=STOP, minsize=2, maxsize=MAX_TOKEN_CHARS, renumber=False)
               | StemFilter(cachesize=200_000))


class ProseAnalyzer(Tokenizer):
    """…and the same in one loop (:data:`PROSE_CHAIN`'s tokens, attribute for attribute, for
    any of Whoosh's arguments: tested): a chain costs four generator frames a token, and
    analysis was over a third of building the index."""

    def __init__(self, stoplist=STOP, minsize: int = 2, maxsize: int = MAX_TOKEN_CHARS):
        self.stoplist = frozenset(stoplist)
        self.minsize = minsize
        self.maxsize = maxsize

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True, mode="",
                 **kwargs):
        if not tokenize:  # (Whoosh's own rarely used path: the chain does it)
            yield from PROSE_CHAIN(value, positions=positions, chars=chars,
                                   keeporiginal=keeporiginal, removestops=removestops,
                                   start_pos=start_pos, start_char=start_char, tokenize=False,
                                   mode=mode, **kwargs)
            return
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        stoplist, smallest, longest, stem = self.stoplist, self.minsize, self.maxsize, _stem
        for pos, match in enumerate(_WORD_RE.finditer(value)):
            text = match.group(0)
            if keeporiginal:
                t.original = text
            text = text.lower()
            if len(text) < smallest or len(text) > longest or text in stoplist:
                if removestops:
                    continue
                t.text, t.stopped = text, True
            else:
                t.text, t.stopped = stem(text), False
            t.boost = 1.0
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + match.start()
                t.endchar = start_char + match.end()
            yield t


PROSE_ANALYZER = ProseAnalyzer()

#: Error tokens: a run of characters that starts and ends with a letter, digit or ``_`` and may
#: contain ``. - : / _ + @ # $ % & ~ ^`` inside — ``0x6C``, ``blk_-1608999687919862906``,
#: ``java.lang.NullPointerException``, ``sns-inbound``, ``Foo.java:12``. Quotes, brackets,
#: commas, semicolons, ``= | ! ? *`` and spaces end a token, so ``errno=EPIPE,`` gives ``errno``
#: and ``EPIPE``.
EXACT_TOKEN = r"\w(?:[^\s\"'`()\[\]{}<>,;=|!?*]*\w)?"


class ErrorTokens(Filter):
    """Keeps the tokens prose analysis would split, drop or stem: those with a digit or a
    character other than a letter (``0x6C``, ``sns-inbound``, ``java.lang.NullPointerException``)
    and single letters (``l``). Plain words (``ECONNRESET``, ``OOMKilled``, ``timeout``) are
    found through the prose fields, so keeping them here as well would only double the index.
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

_WORD_RE = re.compile(r"[^\W_]+")
_EXACT_RE = re.compile(EXACT_TOKEN)


def tokens(analyzer, text: str) -> list[str]:
    return [t.text for t in analyzer(text, mode="query")]


def prose_words(text: str) -> list[str]:
    """The words :data:`PROSE_ANALYZER` gives for ``text``, in order, without Whoosh's chain of
    generators (four Python frames a token; this is about 4× faster): for code that only needs
    the words, such as the similar-incidents features of a whole wiki."""
    stem, stop, longest = _stem, STOP, MAX_TOKEN_CHARS
    return [stem(word) for word in map(str.lower, _WORD_RE.findall(text))
            if 2 <= len(word) <= longest and word not in stop]


def placed_tokens(analyzer, text: str) -> tuple[list[str], tuple[int, ...]]:
    """The tokens of ``text`` and where each is from the first (stop words leave gaps)."""
    pairs = [(t.text, t.pos) for t in analyzer(text, mode="query", positions=True)]
    start = pairs[0][1] if pairs else 0
    return [word for word, _ in pairs], tuple(pos - start for _, pos in pairs)


@functools.lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    return porter_stem(word)


class PackedPositions(wformats.Positions):
    """Whoosh's ``Positions`` format with each posting's positions as an array of 4-byte
    unsigned integers instead of a pickled list of deltas: decoded in C (no ``pickle.loads``
    and running sum per posting), which is most of a phrase check's cost."""

    def encode(self, poslist) -> bytes:
        return array(_POSITION_TYPE, poslist).tobytes()

    def decode_positions(self, valuestring) -> list[int]:
        return array(_POSITION_TYPE, valuestring).tolist()

    def decode_frequency(self, valuestring) -> int:
        return len(valuestring) // _POSITION_SIZE


_POSITION_TYPE = "I" if array("I").itemsize == 4 else "L"
_POSITION_SIZE = array(_POSITION_TYPE).itemsize


def _text_field(analyzer, **kwargs) -> wf.TEXT:
    field = wf.TEXT(analyzer=analyzer, phrase=True, **kwargs)
    field.format = PackedPositions(field_boost=field.format.field_boost)
    return field


def make_schema() -> wf.Schema:
    prose = {name: _text_field(PROSE_ANALYZER, field_boost=boost)
             for name, boost in PROSE_FIELDS.items()}
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
        day=wf.NUMERIC(int, bits=32, signed=False, sortable=True),  # yyyymmdd; 0 if unknown
        exact=_text_field(EXACT_ANALYZER),
        meta=wf.STORED,  # what a hit shows: kind, title, slug, status, severity, date, …
        text=wf.STORED,  # zlib-compressed JSON [[heading, text], …]: snippets, "matched in"
        **prose,
    )


# --------------------------------------------------------------------------------------------
# From a document to index fields


def _join(values: Iterable) -> str:
    return "\n".join(str(v) for v in values if v not in (None, ""))


def document_fields(doc: d.Document) -> dict:
    """The values :class:`WhooshIndex` indexes and stores for ``doc``."""
    fm = doc.front_matter
    day = fm.get("date") or fm.get("first_seen") or fm.get("created")
    day = day if isinstance(day, date) else None
    sections = [[heading, text] for heading, text in doc.sections()]
    extra = {  # front-matter prose, searched with the body and shown as sections of its own
        "Trigger": fm.get("trigger"),
        "Customer impact": fm.get("customer_impact"),
        "Action items": _join(item.get("title") for item in fm.get("action_items") or []),
    }
    sections += [[heading, text] for heading, text in extra.items()
                 if isinstance(text, str) and text.strip()]
    summary = doc.summary
    patterns = []
    for pattern in fm.get("patterns") or []:
        value = pattern.get("value")
        if pattern.get("kind") == "exception":
            value = _join([pattern.get("type") or value, pattern.get("message")])
        patterns.append(_join(value) if isinstance(value, list) else str(value or ""))
    examples = [str(e) for e in fm.get("examples") or []]
    if patterns:
        sections.append(["Patterns", _join(patterns)])
    if examples:
        sections.append(["Examples", _join(examples)])
    # The body holds every word of the document, title and patterns included, so that a word's
    # query is driven by one posting list; title, summary and patterns only add to the score.
    parts = [doc.title] + [f"{heading}\n{text}" if heading else text for heading, text in sections]
    if summary and summary not in doc.body:
        parts.insert(1, summary)
    body = "\n\n".join(parts)
    services = [s.replace(",", " ") for s in doc.services]
    tags = [t.replace(",", " ") for t in doc.tags]
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
        "summary": summary or None,
        "body": body or None,
        "patterns": _join(patterns + examples) or None,
        "exact": _join([doc.id, body, *services, *tags]),
        "meta": {
            "kind": doc.kind.name, "title": doc.title, "slug": doc.slug, "status": doc.status,
            "severity": fm.get("severity"), "date": day.isoformat() if day else None,
            "services": doc.services, "tags": doc.tags, "summary": summary[:1000],
            "root_cause": fm.get("root_cause_category"), "path": doc.path,
        },
        "text": zlib.compress(json.dumps(sections).encode("utf-8"), 6),
    }
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
    any: bool = False  #: a group whose clauses are joined by OR
    distance: int = 0  #: a fuzzy word's edit distance (0: by its length)

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
    messages: list[str] = field(default_factory=list)  #: what was ignored or repaired
    text: str = ""  #: the cleaned query text

    @property
    def is_empty(self) -> bool:
        return not (self.clauses or self.excluded or self.filters or self.excluded_filters)

    def __str__(self) -> str:
        parts = [str(c) for c in self.clauses] + [str(c) for c in self.excluded]
        parts += [str(Clause("filter", v, name)) for name, vs in self.filters.items() for v in vs]
        parts += [str(Clause("filter", v, name, True))
                  for name, vs in self.excluded_filters.items() for v in vs]
        return " ".join(parts)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2064\ufeff\ud800-\udfff\ufff0-\uffff]")
_FIELD = re.compile(r"([A-Za-z][A-Za-z_]{0,30}):(.*)\Z", re.S)
_FUZZY = re.compile(r"(.+?)~([12])?\Z", re.S)


def clean_query(text: object, limit: int = MAX_QUERY_CHARS) -> tuple[str, list[str]]:
    """Drop control and invisible characters, normalise Unicode and spaces, cap the length."""
    messages = []
    text = str(text or "")[: limit * 4]  # don't normalise megabytes only to cut them
    text = _CONTROL.sub(" ", unicodedata.normalize("NFKC", _CONTROL.sub(" ", text)))
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut
        messages.append(f"Your search was cut to its first {limit:,} characters.")
    return text, messages


def parse_query(text: object) -> ParsedQuery:
    """Read a query as people type it. Never raises; problems become :attr:`ParsedQuery.messages`.

    Clauses separated by spaces must all match (``OR`` between two clauses makes either
    enough); ``"…"`` is a phrase; ``-`` before a clause excludes it; ``(…)`` groups; ``word*``
    is a prefix; ``word~`` tolerates a typo or two; ``name:value`` filters on a field (see
    :data:`FILTER_ALIASES`) or, for ``title:`` and the like, searches one field. Unbalanced
    quotes and parentheses are closed at the end; stray ones are ignored.
    """
    cleaned, messages = clean_query(text)
    parsed = ParsedQuery(text=cleaned, messages=messages)
    stack: list[Clause] = [Clause("group")]
    joined: set[int] = set()  # ids of groups made by OR, which further ORs extend
    pending_or = pending_not = False
    count = 0

    def note(message: str) -> None:
        if message not in parsed.messages:
            parsed.messages.append(message)

    def add(clause: Clause) -> None:
        """Append to the innermost open group, joined to the previous clause after ``OR``."""
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
            if id(last) in joined:
                last.items.append(clause)
            else:
                group = Clause("group", items=[last, clause], any=True)
                joined.add(id(group))
                items[-1] = group
        else:
            items.append(clause)
        pending_or = False

    i, n = 0, len(cleaned)
    while i < n:
        if cleaned[i] == " ":
            i += 1
            continue
        # A chunk runs to the next space or quote; a quote right after -, + or field: (or at
        # the start of a chunk) opens a phrase that belongs to it.
        j = i
        while j < n and cleaned[j] not in ' "':
            j += 1
        chunk, phrase, i = cleaned[i:j], None, j
        if j < n and cleaned[j] == '"' and (chunk in ("", "-", "+", "!") or chunk.endswith(":")):
            end = cleaned.find('"', j + 1)
            if end < 0:
                phrase, i = cleaned[j + 1:], n
                note("A closing quote was missing; it was added at the end.")
            else:
                phrase, i = cleaned[j + 1:end], end + 1
        negated, pending_not = pending_not, False
        if chunk.startswith(("-", "!")) and (len(chunk) > 1 or phrase is not None):
            negated, chunk = True, chunk[1:]
        elif chunk.startswith("+"):
            chunk = chunk[1:]

        if phrase is not None:
            name = chunk[:-1].lower() if chunk.endswith(":") else ""
            if name in FILTER_ALIASES:
                if phrase.strip():
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
            stack.append(Clause("group", negated=negated and k == 0))
        if opens:
            negated = False
        # Closing parentheses at the end of a chunk close groups, except those that balance
        # one inside it: "Foo.bar(Foo.java:12)" keeps its ")".
        trailing = len(chunk) - len(chunk.rstrip(")"))
        inner = chunk.count("(") - chunk[: len(chunk) - trailing].count(")")
        closes = max(0, trailing - max(0, inner))
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
        clause = _simplify(clause)
        if clause.kind == "filter":
            target = parsed.excluded_filters if clause.negated else parsed.filters
            values = target.setdefault(clause.fieldname, [])
            if clause.text not in values:
                values.append(clause.text)
        elif clause.negated:
            parsed.excluded.append(clause)
        else:
            parsed.clauses.append(clause)
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


def _chunk_clause(chunk: str, negated: bool, note: Callable[[str], None]) -> Clause | None:
    m = _FIELD.match(chunk)
    if m:
        name, value = m.group(1).lower(), m.group(2)
        if name in FILTER_ALIASES:
            if not value.strip():
                note(f"“{m.group(1)}:” needs a value, like {name}:"
                     f"{_EXAMPLE_VALUES[FILTER_ALIASES[name]]}.")
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
        if value and name.isalpha() and not value.startswith("/"):
            note(f"There is no field “{m.group(1)}:”, so it was searched as text. Fields: "
                 + ", ".join(sorted(set(FILTER_ALIASES.values()) | {"title"})) + ".")
    if not chunk.strip("-*~+!()"):
        note(f"A lone “{chunk[:10]}” was ignored: put - right before a word to exclude it, "
             "and * right after the start of a word to match its endings.")
        return None
    if chunk.endswith("*"):
        start = chunk.rstrip("*")
        if len(_WORD_RE.sub("", start)) == len(start) or len(start) < MIN_PREFIX_CHARS:
            note(f"“{chunk[:40]}” is too short for a prefix search; give at least "
                 f"{MIN_PREFIX_CHARS} letters before the *.")
            return Clause("word", start, negated=negated) if _WORD_RE.search(start) else None
        return Clause("prefix", start, negated=negated)
    m = _FUZZY.match(chunk)
    if m and m.group(1).strip("~"):
        return Clause("fuzzy", m.group(1), negated=negated, distance=int(m.group(2) or 0))
    return Clause("word", chunk, negated=negated)


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Hit:
    id: str
    kind: str
    title: str
    slug: str
    score: float | None  #: relevance (``None`` when sorted by date)
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
    suggestion: str | None = None  #: a "did you mean" query
    corrected: bool = False  #: the hits are for :attr:`suggestion` (the query found nothing)
    #: all | any (no document had every word) | corrected | filters (no words) | empty |
    #: unavailable (the index is being rebuilt)
    mode: str = "all"
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
    """What to mark in text: stems of prose words, error tokens, and word prefixes."""

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
        if len(lowered) != len(text):  # rare letters whose lowercase is longer: keep offsets
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
        prose, prefixes = self.prose, tuple(self.prefixes)
        if prose or prefixes:
            # a stem starts like its words (mostly): test that cheaply before stemming
            heads = frozenset(t[:3] for t in prose)
            if any(h in lowered for h in heads) or any(p in lowered for p in prefixes):
                for m in _WORD_RE.finditer(lowered):
                    word = m.group()
                    if ((word[:3] in heads or word[:2] in heads) and word not in STOP
                            and _stem(word) in prose):
                        found.append((m.start(), m.end(), _stem(word)))
                    elif prefixes and word.startswith(prefixes):
                        found.append((m.start(), m.end(), word))
                    else:
                        continue
                    if len(found) >= limit:
                        break
        odd = tuple(p for p in prefixes if not p.isalnum())
        if (self.exact and any(t in lowered for t in self.exact)) or (
                odd and any(p in lowered for p in odd)):
            for m in _EXACT_RE.finditer(lowered):
                word = m.group()
                if word in self.exact or (odd and word.startswith(odd)):
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

    def mark(self, text: str) -> str:
        """All of ``text``, HTML-escaped, with matches in ``<mark>``."""
        return _render(text, 0, len(text), self.spans(text) if self else [])

    def snippet(self, sections: list[list[str]], fallback: str,
                width: int = SNIPPET_CHARS) -> tuple[str | None, str]:
        """``(heading, html)`` of the passage with the most different matches, from the section
        with the most; the fallback text (the summary) when no section matches."""
        best = None
        if self:
            for heading, text in sections:
                spans = self.spans(text) if text.strip() else []
                if spans:
                    score = len({key for _, _, key in spans}) * 10 + min(len(spans), 10)
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


def _window(text: str, spans, width: int) -> tuple[int, int]:
    """The ``width``-character stretch of ``text`` holding the most different matches."""
    if len(text) <= width:
        return 0, len(text)
    best_start, best_score = 0, -1
    for i, (start, _, _) in enumerate(spans[:200]):
        keys = set()
        for _, end, key in spans[i:]:
            if end > start + width:
                break
            keys.add(key)
        if len(keys) > best_score:
            best_start, best_score = start, len(keys)
    if best_score > 0:
        best_start = max(0, best_start - width // 4)
        if best_start > 0:  # start at a word
            space = text.rfind(" ", max(0, best_start - 20), best_start)
            best_start = space + 1 if space >= 0 else best_start
    end = min(len(text), best_start + width)
    if end < len(text):  # end at a word
        space = text.find(" ", end, end + 20)
        end = space if space >= 0 else end
    return best_start, end


_NOISE = re.compile(r"`{3,}[\w+-]*|\*\*|^#+ |\s+", re.M)


def _tidy(text: str) -> str:
    """Markdown noise out of a snippet: code fences, bold markers, heading marks, newlines."""
    return _NOISE.sub(lambda m: "" if m.group(0) in ("**",) or m.group(0).startswith("#")
                      else " ", text)


def _render(text: str, start: int, end: int, spans) -> str:
    """``text[start:end]`` HTML-escaped, the spans in ``<mark>``, with … where it was cut."""
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
    return ("… " if start > 0 else "") + html + (" …" if end < len(text) else "")


# --------------------------------------------------------------------------------------------
# The interface


class SearchIndex:
    """What a search backend does. :class:`WhooshIndex` is one; views and :class:`Search` use
    nothing else, so another backend (PostgreSQL full-text) can replace it."""

    def index_document(self, doc: d.Document) -> None:
        """Add or replace one document; it is searchable when this returns."""
        self.index_documents([doc])

    def index_documents(self, docs: Iterable[d.Document], progress=None) -> int:
        raise NotImplementedError

    def remove(self, ident: str) -> None:
        self.remove_many([ident])

    def remove_many(self, idents: Iterable[str]) -> int:
        raise NotImplementedError

    def rebuild(self, docs: Iterable[d.Document], progress=None, total: int | None = None) -> int:
        """Replace everything with ``docs`` (readers see the old index until it is done)."""
        raise NotImplementedError

    def revisions(self) -> dict[str, str]:
        """``{id: revision}`` of every indexed document, to compare with the database."""
        raise NotImplementedError

    def query(self, text: str, kind: str | None = None,
              filters: dict[str, list[str]] | None = None, sort: str = "relevance",
              limit: int = 20, offset: int = 0, facets: bool = True) -> SearchResult:
        raise NotImplementedError

    def suggest(self, text: str) -> str | None:
        """A "did you mean" query for ``text``, or ``None``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Throw the index away and start an empty one (it was found unreadable)."""
        raise NotImplementedError

    def doc_count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# Whoosh


@dataclass
class _Compiled:
    """A parsed query as Whoosh queries, and what to highlight."""

    text: list  #: one query per positive clause
    excluded: object  #: a query for the excluded clauses, or None
    highlighter: Highlighter
    unknown: list[Clause]  #: plain words found nowhere in the index


@dataclass
class _Matches:
    """A query's matching documents (after filters and exclusions), facet counts, and as much of
    the relevance ranking as was needed so far (cached, so paging rarely scores again)."""

    docs: frozenset | None = frozenset()  #: top-level document numbers (None: not read yet)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    text_q: object = None  #: the query that scores them (None: no words, every score is 0)
    ranked: list[tuple[float, int]] = field(default_factory=list)  #: (score, docnum), best first
    complete: bool = False  #: ``ranked`` holds every document of ``docs``
    count: int = 0  #: the total when ``docs`` was not needed for it
    narrowed: bool = False  #: filters or exclusions left out some of ``text_q``'s documents

    @property
    def total(self) -> int:
        return len(self.docs) if self.docs is not None else self.count

    def documents(self, s) -> frozenset:
        if self.docs is None:
            self.docs = frozenset(_docset(s, self.text_q))
        return self.docs


class WhooshIndex(SearchIndex):
    """A Whoosh 2.7 index in a folder (``DATA_DIR/index``). Safe to share between threads, and
    between processes using the same folder (one writer at a time, through Whoosh's lock)."""

    def __init__(self, path: Path | str, lock_timeout: float | None = None, limitmb: int = 128):
        self.path = Path(path)
        self.lock_timeout = WRITE_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self.limitmb = limitmb
        self.schema = make_schema()
        self._ix = None
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer per process; Whoosh's lock across them
        self._local = threading.local()
        #: per (segment id, offset): per facet, [(value, frozenset of top-level doc numbers)];
        #: per ("day", segment id): the segment's day column
        self._facet_cache: dict[tuple, object] = {}
        #: set when this object created an empty index (it was missing or unreadable): whoever
        #: keeps it in line with the content should fill it (:class:`Search` does)
        self.created = False
        #: recent queries' matches and ranking (see :meth:`_match`)
        self._cache: OrderedDict[tuple, _Matches] = OrderedDict()
        self._cached_items = 0
        self._cache_lock = threading.Lock()

    # -- opening -------------------------------------------------------------------------

    @property
    def _version_file(self) -> Path:
        return self.path / ".wiki-schema-version"  # Whoosh leaves files starting with "." alone

    def _storage(self) -> FileStorage:
        self.path.mkdir(parents=True, exist_ok=True)
        return FileStorage(str(self.path))

    def open(self):
        """The Whoosh index, created when missing; :class:`IndexUnavailable` when unreadable."""
        if self._ix is not None:
            return self._ix
        with self._open_lock:
            if self._ix is None:
                storage = self._storage()
                if not self._exists(storage):
                    with self._lock(storage):
                        if not self._exists(storage):
                            log.info("search index not found in %s; creating an empty one",
                                     self.path)
                            self._create(storage)
                if self._version() != SCHEMA_VERSION:
                    raise IndexUnavailable(f"index schema version {self._version()!r}, "
                                           f"this version of the wiki uses {SCHEMA_VERSION!r}")
                try:
                    ix = windex.open_dir(str(self.path))
                    with ix.searcher() as s:  # reads the TOC and opens every segment
                        s.doc_count()
                except Exception as exc:  # noqa: BLE001 - whatever a broken file raises
                    raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc
                self._ix = ix
        return self._ix

    @staticmethod
    def _exists(storage: FileStorage) -> bool:
        """A table of contents is there (``whoosh.index.exists_in`` would read it, and raise
        whatever a damaged one makes it raise)."""
        return windex.TOC._latest_generation(storage, INDEX_NAME) >= 0

    def _version(self) -> str | None:
        try:
            return self._version_file.read_text("utf-8").strip()
        except OSError:
            return None

    def _create(self, storage: FileStorage) -> None:
        """An empty index (call under the lock). Its generation follows the previous one, so a
        searcher of the old index in another process never looks up to date."""
        generation = windex.TOC._latest_generation(storage, INDEX_NAME) + 1
        for name in list(storage):
            if name.startswith(f"_{INDEX_NAME}_"):
                storage.delete_file(name)
        windex.TOC(self.schema, [], max(generation, 0)).write(storage, INDEX_NAME)
        self._version_file.write_text(SCHEMA_VERSION + "\n", "utf-8")
        self._facet_cache.clear()
        self.created = True

    @contextlib.contextmanager
    def _lock(self, storage: FileStorage):
        """Whoosh's own write lock, taken without a writer (to create or reset the index)."""
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
        """Start an empty index in place, unless another process just repaired it."""
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
                    if child.is_dir() and child.name.endswith(".tmp"):
                        shutil.rmtree(child, ignore_errors=True)
                self._create(storage)

    def _readable(self) -> bool:
        if self._version() != SCHEMA_VERSION:
            return False
        try:
            ix = windex.open_dir(str(self.path))
            with ix.searcher() as s:
                if s.doc_count():
                    s.reader().column_reader("id")
            return True
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Close this thread's searcher and forget the index (the next call reopens it)."""
        searcher = getattr(self._local, "searcher", None)
        self._local.searcher = None
        if searcher is not None:
            with contextlib.suppress(Exception):
                searcher.close()
        self._ix = None

    def searcher(self):
        """This thread's searcher, replaced when the index changed (never ``refresh()``)."""
        ix = self.open()
        s = getattr(self._local, "searcher", None)
        if s is not None:
            try:
                if s._ix is ix and s.up_to_date():
                    return s
            except Exception:  # noqa: BLE001 - the TOC vanished: open a new one below
                pass
            with contextlib.suppress(Exception):
                s.close()
        s = ix.searcher()
        self._local.searcher = s
        return s

    def doc_count(self) -> int:
        return self.searcher().doc_count()

    def clear_cache(self) -> None:
        """Forget recent queries' matches (benchmarks measure queries without it)."""
        with self._cache_lock:
            self._cache.clear()
            self._cached_items = 0

    def segment_count(self) -> int:
        return len(self.searcher().leaf_searchers())

    # -- writing -------------------------------------------------------------------------

    def _writer(self, **kwargs):
        """A writer holding the index lock, retrying for up to :attr:`lock_timeout` seconds."""
        ix = self.open()
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return ix.writer(timeout=min(1.0, self.lock_timeout), delay=0.02,
                                 **{"limitmb": self.limitmb, "compound": False, **kwargs})
            except LockError:
                if time.monotonic() >= deadline:
                    raise IndexBusy(f"the search index in {self.path} stayed locked for "
                                    f"{self.lock_timeout:.0f} s") from None
                time.sleep(random.random() * 0.05)

    def _write(self, fill: Callable, merge: bool | None = None, mergetype=None, **kwargs) -> None:
        """Run ``fill(writer)`` and commit; on any failure cancel, so the lock is released."""
        with self._write_lock:
            writer = self._writer(**kwargs)
            try:
                fill(writer)
                if mergetype is not None:
                    writer.commit(mergetype=mergetype)
                else:
                    if merge is None:
                        merge = len(writer.segments) >= MAX_SEGMENTS
                    writer.commit(merge=merge)
            except BaseException:
                _abandon(writer)
                raise

    def index_documents(self, docs: Iterable[d.Document], progress=None) -> int:
        docs = list({doc.id: doc for doc in docs}.values())  # the last copy of an id wins
        if not docs:
            return 0
        if len(docs) >= PARALLEL_MIN and not self.doc_count():
            return self.rebuild(docs, progress, len(docs))

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
        """Replace the index with ``docs`` in one commit (readers see the old one until then).

        With ``total`` ≥ :data:`PARALLEL_MIN` documents, several cores, and no other thread that
        a fork could upset, Whoosh's multi-process writer analyses documents in
        :data:`PARALLEL_PROCS` processes and keeps their segments as they are. It can lose a
        process's documents without an error, so the result is counted, and built again in
        this process on a mismatch.
        """
        if total is None:
            docs = list(docs)
            total = len(docs)
        procs = min(PARALLEL_PROCS, os.cpu_count() or 1)
        if total >= PARALLEL_MIN and procs > 1 and threading.active_count() == 1:
            seen: list[d.Document] = []

            def keep(docs):  # reading goes on while the processes index
                for doc in docs:
                    seen.append(doc)
                    yield doc

            count = self._rebuild(keep(docs), progress, total, procs=procs, multisegment=True,
                                  batchsize=50)
            indexed = self.doc_count()
            if indexed == count:
                return count
            log.error("the parallel index build kept %d of %d documents; building it again "
                      "in one process", indexed, count)
            docs = seen
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
        """Merge every segment into one (``wiki reindex`` does this at the end)."""
        self._write(lambda writer: None, mergetype=OPTIMIZE)

    def revisions(self) -> dict[str, str]:
        s = self.searcher()
        if not s.doc_count():
            return {}
        reader = s.reader()
        ids = reader.column_reader("id")
        revisions = reader.column_reader("revision")
        return {_text(ids[n]): _text(revisions[n]) for n in reader.all_doc_ids()}

    # -- querying ------------------------------------------------------------------------

    def query(self, text: str, kind: str | None = None,
              filters: dict[str, list[str]] | None = None, sort: str = "relevance",
              limit: int = 20, offset: int = 0, facets: bool = True) -> SearchResult:
        started = time.perf_counter()
        parsed = parse_query(text)
        result = SearchResult(
            query=parsed.text, messages=list(parsed.messages),
            sort=sort if sort in ("relevance", "date") else "relevance",
            limit=max(1, min(int(limit), MAX_LIMIT)), offset=max(0, min(int(offset), MAX_OFFSET)))
        result.filters = _merge_filters(parsed.filters, filters, kind, result.messages)
        try:
            self._run(parsed, result, facets)
        except SearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken segment file shows up here
            raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _run(self, parsed: ParsedQuery, result: SearchResult, want_facets: bool) -> None:
        self._local.postings = {}  # posting lists read for this query (see _postings)
        self._local.probed = {}  # and parts of them (see _probe_postings)
        try:
            self._run_query(parsed, result, want_facets)
        finally:
            self._local.postings = self._local.probed = None

    def _run_query(self, parsed: ParsedQuery, result: SearchResult, want_facets: bool) -> None:
        s = self.searcher()
        compiled = self._compile(parsed, s)
        if parsed.clauses and not compiled.text:
            result.messages.append("Those words are too common to search for; add a more "
                                   "specific one.")
        mask = self._mask(s, compiled.excluded, parsed.excluded_filters)
        if not compiled.text and not result.filters and mask is None:
            result.mode = "empty"
            return
        matches = None
        for mode, text_q in _attempts(compiled.text):
            matches = self._match(s, text_q, mask, result.filters, want_facets)
            result.mode = mode if compiled.text else "filters"
            if matches.total:
                break
        if compiled.unknown or not matches.total:
            corrected = self._correct(parsed, compiled, s)
            if corrected is not None:
                result.suggestion = str(corrected)
                if not matches.total:
                    alt = self._compile(corrected, s)
                    for _, text_q in _attempts(alt.text):
                        alt_matches = self._match(s, text_q, mask, result.filters, want_facets)
                        if alt_matches.total:
                            matches, compiled = alt_matches, alt
                            result.mode, result.corrected = "corrected", True
                            break
        if result.mode == "any" and matches.total:
            result.messages.append("No document has all of those words; showing the ones "
                                   "with some of them.")
        result.total = matches.total
        result.facets = matches.facets
        by_date = result.sort == "date" or not compiled.text
        if by_date:
            page = self._by_date(s, matches, result.offset + result.limit)
        else:
            page = self._ranked(s, matches, result.offset + result.limit)
        for score, docnum in page[result.offset:result.offset + result.limit]:
            result.hits.append(self._hit(s, docnum, None if by_date else score,
                                         compiled.highlighter))

    def _hit(self, s, docnum: int, score: float | None, highlighter: Highlighter) -> Hit:
        stored = s.stored_fields(docnum)
        meta = stored.get("meta") or {}
        try:
            sections = json.loads(zlib.decompress(stored["text"]))
        except Exception:  # noqa: BLE001 - stored text unreadable: the summary will do
            sections = []
        section, snippet = highlighter.snippet(sections, meta.get("summary", ""))
        title = meta.get("title") or stored["id"]
        return Hit(
            id=stored["id"], kind=meta.get("kind", ""), title=title,
            slug=meta.get("slug") or d.slugify(title),
            score=round(score, 4) if score is not None else None,
            snippet=snippet, section=section, title_html=highlighter.mark(title),
            status=meta.get("status"), severity=meta.get("severity"), date=meta.get("date"),
            services=meta.get("services") or [], tags=meta.get("tags") or [],
            root_cause=meta.get("root_cause"),
        )

    # -- query compilation -----------------------------------------------------------------

    def _compile(self, parsed: ParsedQuery, s) -> _Compiled:
        hl = Highlighter()
        unknown: list[Clause] = []
        text = [q for q in (self._clause(c, s, hl, unknown) for c in parsed.clauses)
                if q is not None]
        excluded = [q for q in (self._clause(c, s, None, None) for c in parsed.excluded)
                    if q is not None]
        return _Compiled(text, wq.Or(excluded) if excluded else None, hl, unknown)

    def _clause(self, c: Clause, s, hl: Highlighter | None, unknown: list | None):
        if c.kind == "group":
            parts = [(self._clause(i, s, None if i.negated else hl, None), i.negated)
                     for i in c.items]
            pos = [q for q, negated in parts if q is not None and not negated]
            neg = [q for q, negated in parts if q is not None and negated]
            if not pos:
                return None
            q = wq.Or(pos) if c.any else wq.And(pos)
            return wq.AndNot(q, wq.Or(neg)) if neg else q
        if c.kind == "filter":
            value = normalise_filter(c.fieldname, c.text)
            if value is None:
                return wq.NullQuery
            return wq.ConstantScoreQuery(wq.Term(FILTERS[c.fieldname], value), 0.0)
        if c.kind == "phrase":
            return self._words(c.text, c.fieldname, hl)
        if c.kind == "prefix":
            return self._prefix(c.text, c.fieldname, s, hl)
        if c.kind == "fuzzy":
            return self._fuzzy(c, s, hl)
        q = self._words(c.text, c.fieldname, hl, single=True)
        if q is not None and unknown is not None and not c.fieldname and _unknown(s, c.text):
            unknown.append(c)
        return q

    def _words(self, text: str, field_name: str | None, hl: Highlighter | None,
               single: bool = False, boost: float = 1.0):
        """A word or phrase: its error tokens in ``exact`` and its stems in each prose field
        (or only in ``field_name``), each a term or a phrase."""
        exact = tokens(EXACT_ANALYZER, text)
        prose, offsets = placed_tokens(PROSE_ANALYZER, text)
        ident = d.normalise_id(text) if single and not field_name else None
        subs = []
        if ident:
            subs.append(wq.Term("id", ident, boost=ID_BOOST))
            subs.append(wq.Term("exact", ident.lower(), boost=EXACT_BOOST))
        elif field_name:
            if prose:
                subs.append(_sequence(field_name, prose, offsets))
        else:
            # Every word is in the body, so the body's posting list decides what matches and
            # the other fields only add to the score (a union over fields was twice as slow).
            if exact:
                subs.append(_exact(text, exact, single))
            if prose:
                subs.append(_sequence("body", prose, offsets))
        if not subs:
            return None
        if hl is not None:
            if not ident:
                hl.prose.update(prose)
            hl.exact.update(exact)
        q = subs[0] if len(subs) == 1 else wq.Or(subs)
        if prose and not field_name and not ident:
            for name in BOOST_FIELDS:
                q = wq.AndMaybe(q, _sequence(name, prose, offsets))
        return wq.Or([q], boost=boost) if boost != 1.0 else q

    def _prefix(self, text: str, field_name: str | None, s, hl: Highlighter | None):
        """``time*``: the most frequent indexed words starting with ``time`` (as typed, or its
        stem), in the prose fields and among the error tokens."""
        raw = text.lower()
        starts = {raw, _stem(raw)} if raw.isalpha() else {raw}
        reader = s.reader()
        candidates = []
        for name in [field_name] if field_name else ["exact", "body"]:
            for start in starts:
                for term in reader.expand_prefix(name, start):
                    candidates.append((reader.doc_frequency(name, term), name, _text(term)))
                    if len(candidates) > 20 * MAX_PREFIX_TERMS:
                        break
        if not candidates:
            return wq.NullQuery
        candidates.sort(reverse=True)
        if hl is not None:
            hl.prefixes.update(starts)
        return wq.Or([wq.Term(name, term) for _, name, term in candidates[:MAX_PREFIX_TERMS]])

    def _fuzzy(self, c: Clause, s, hl: Highlighter | None):
        word = c.text
        maxdist = c.distance or (1 if len(word) <= 5 else 2)
        subs = [self._words(word, c.fieldname, hl, single=True)]
        subs += [self._words(w, c.fieldname, hl, single=True, boost=0.8)
                 for w in _corrections(s, word, maxdist, limit=5)]
        subs = [q for q in subs if q is not None]
        return wq.Or(subs) if subs else None

    # -- matching, facets, suggestions -----------------------------------------------------

    def _mask(self, s, excluded, excluded_filters: dict[str, list[str]]) -> set | None:
        parts = [excluded] if excluded is not None else []
        for name, values in excluded_filters.items():
            for value in values:
                norm = normalise_filter(name, value)
                if norm is not None:
                    parts.append(wq.Term(FILTERS[name], norm))
        return _docset(s, wq.Or(parts)) if parts else None

    def _match(self, s, text_q, mask: set | None, active: dict[str, list[str]],
               want_facets: bool) -> _Matches:
        """The documents matching ``text_q`` (not ``mask``, within the ``active`` filters) and
        the facet counts: sets of document numbers from the posting lists, no scoring (that is
        :meth:`_ranked`, for the page shown). Cached per index generation, so paging, sorting
        and clicking a facet reuse it."""
        key = (s.ixreader.generation(), repr(text_q),
               hash(frozenset(mask)) if mask else None, len(mask) if mask else 0,
               repr(sorted(active.items())), want_facets)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if text_q is not None and not mask and not active and not want_facets:
            count = _count(s, text_q)  # a word's total is in the term index: no list to read
            if count is not None:
                return self._remember(key, _Matches(None, {}, text_q, count=count))
        if text_q is not None:
            base = _docset(s, text_q, self)
        else:
            base = set(s.reader().all_doc_ids())
        if mask:
            base -= mask
        counts: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        keep: set[int] = set()
        for leaf, offset in s.leaf_searchers():
            if not active and not want_facets:
                break
            cache = self._segment_facets(leaf, offset)
            allowed: dict[str, set] = {}
            for name, values in active.items():
                postings = dict(cache[name]) if name in cache else {
                    v: frozenset(n + offset for n in wq.Term(FILTERS[name], v).docs(leaf))
                    for v in values}
                sets = [postings.get(v, frozenset()) for v in values]
                if name in MULTI_VALUED:
                    allowed[name] = set(sets[0]).intersection(*sets[1:])
                else:
                    allowed[name] = set().union(*sets)
            docs = base
            for allow in allowed.values():
                docs = allow & docs
            if active:
                keep.update(docs)
            if not want_facets:
                continue
            for name in FACETS:
                scope = docs
                if name in allowed and name not in MULTI_VALUED:
                    # a single-valued facet counts as if its own filter were off, so its
                    # other values stay visible and can be added (they combine with OR)
                    scope = base
                    for other, allow in allowed.items():
                        if other != name:
                            scope = allow & scope
                if not scope:
                    continue
                tally = counts[name]
                for value, postings in cache.get(name, ()):
                    n = len(postings & scope)
                    if n:
                        tally[value] = tally.get(value, 0) + n
        facets = {name: _order_facet(name, tally) for name, tally in counts.items()} \
            if want_facets else {}
        matches = _Matches(frozenset(keep if active else base), facets, text_q,
                           narrowed=bool(active or mask))
        return self._remember(key, matches)

    def _remember(self, key: tuple, matches: _Matches) -> _Matches:
        with self._cache_lock:
            self._cache[key] = matches
            self._cached_items += len(matches.docs or ())
            while self._cache and (len(self._cache) > CACHED_QUERIES
                                   or self._cached_items > CACHED_ITEMS):
                _, dropped = self._cache.popitem(last=False)
                self._cached_items -= len(dropped.docs or ()) + len(dropped.ranked)
        return matches

    def _ranked(self, s, matches: _Matches, n: int) -> list[tuple[float, int]]:
        """At least the ``n`` best ``(score, docnum)`` of the matches (all of them when there
        are fewer), best first, ties by document number: the order scoring every match gives.

        A word, a phrase, or an *and* of two or three of them is scored from its posting
        lists, read block by block (:meth:`_word_ranking`, :meth:`_words_ranking`; only the
        blocks that can hold a match when the matches are few). Other queries: up to
        :data:`SCORE_ALL` matches are all scored, each found with ``skip_to``; above, Whoosh's
        top-N collector skips the blocks of the posting lists whose best possible score cannot
        make the top ``n`` (block-max), and only the allowed documents are scored.
        """
        if matches.complete or len(matches.ranked) >= n or not matches.total:
            return matches.ranked
        if matches.text_q is None:
            ranked = [(0.0, docnum) for docnum in sorted(matches.documents(s))]
            complete = True
        else:
            want = max(n, 2 * len(matches.ranked), 50)
            if matches.total <= SCORE_ALL:
                want = max(want, matches.total)  # (all of them scored: keep them for paging)
            ranked = self._word_ranking(s, matches, want)
            if ranked is None:
                ranked = self._words_ranking(s, matches, want)
            if ranked is not None:
                complete = len(ranked) >= matches.total
            elif matches.total <= max(SCORE_ALL, n) or _coordinated(matches.text_q):
                ranked = _score_docs(s, matches.text_q, matches.documents(s))
                ranked.sort(key=lambda item: (-item[0], item[1]))
                complete = True
            else:
                allow = set(matches.docs) if matches.narrowed else None
                results = s.search(matches.text_q, limit=want, filter=allow, optimize=True)
                ranked = list(results.top_n)
                complete = len(ranked) >= matches.total
        with self._cache_lock:
            self._cached_items += len(ranked) - len(matches.ranked)
            matches.ranked, matches.complete = ranked, complete
        return ranked

    def _word_ranking(self, s, matches: _Matches, n: int) -> list[tuple[float, int]] | None:
        """The ``n`` best of a one-word or one-phrase query (a term or a phrase, with terms or
        phrases that only add to its score: ``AndMaybe``), exactly as Whoosh scores them,
        without Whoosh's per-document matcher calls; ``None`` for any other query.

        A term's BM25 score in a document depends only on the term's weight there and the
        field's length: both are read a block at a time and each pair is scored once with
        Whoosh's own scorer. For a word, documents are grouped by the pair, so only the best
        groups are looked at; a phrase scores the sum of its words' scores, added as Whoosh's
        matcher tree adds them. The additions are added in the order Whoosh adds them.
        """
        q = matches.text_q
        extras = []
        while type(q) is wq.AndMaybe:
            extras.append(q.b)
            q = q.a
        if type(q) not in (wq.Term, _Phrase):
            return None
        allow = matches.docs if matches.narrowed else None
        out = []
        try:
            extra_scores = [self._unit_scores(s, extra) for extra in reversed(extras)]
            special = set().union(*extra_scores)

            def total(top, score):
                for scores in extra_scores:  # innermost AndMaybe first, as Whoosh adds
                    if top in scores:
                        score = score + scores[top]
                return score

            if type(q) is not wq.Term:
                for top, score in self._unit_scores(s, q).items():
                    if allow is None or top in allow:
                        out.append((total(top, score) if top in special else score, top))
                out.sort(key=lambda item: (-item[0], item[1]))
                return out[:n]
            groups: dict[tuple, list[int]] = {}
            memo: dict[tuple, float] = {}
            for top, key, score in self._term_scores(s, q, memo):
                if allow is not None and top not in allow:
                    continue
                if top in special:
                    out.append((total(top, score), top))
                    continue
                group = groups.get(key)
                if group is None:
                    groups[key] = group = []
                group.append(top)
        except _Unsupported:
            return None
        taken, last = 0, None
        for key in sorted(groups, key=memo.__getitem__, reverse=True):
            if taken >= n and memo[key] != last:
                break  # (documents with the same score as the last taken are kept: ties)
            last = memo[key]
            out.extend((last, docnum) for docnum in groups[key])
            taken += len(groups[key])
        out.sort(key=lambda item: (-item[0], item[1]))
        return out[:n]

    def _words_ranking(self, s, matches: _Matches, n: int) -> list[tuple[float, int]] | None:
        """The ``n`` best of an *and* of two or three words or phrases (each as in
        :meth:`_word_ranking`), exactly as Whoosh scores them; ``None`` for other queries.

        Whoosh adds the parts' scores in a tree it builds per segment from their estimated
        sizes (``make_weighted_tree``); the same tree is built here for each segment."""
        q = matches.text_q
        docs = matches.documents(s)
        if type(q) is not wq.And:  # one part, ranked by what _word_ranking does not take
            try:
                scores = self._part_scores(s, q, docs)
                out = [(scores[top], top) for top in docs]
            except (_Unsupported, KeyError):
                return None
            out.sort(key=lambda item: (-item[0], item[1]))
            return out[:n]
        if not 2 <= len(q.subqueries) <= 3 or q.boost != 1.0:
            return None
        try:
            parts = [self._part_scores(s, part, docs) for part in q.subqueries]
        except _Unsupported:
            return None
        out = []
        ordered = sorted(docs)
        i = 0
        for leaf, offset in s.leaf_searchers():
            end = offset + leaf.doc_count_all()
            j = bisect.bisect_left(ordered, end, i)
            if j == i:
                continue
            reader = leaf.reader()
            weights = [0 - part.estimate_size(reader) for part in q.subqueries]
            if len(set(weights)) < len(weights):
                return None  # (Whoosh would compare matchers to order equal sizes)
            try:
                tree = _weighted_tree(weights)
            except TypeError:  # equal sums: Whoosh would compare matchers there too
                return None
            for top in ordered[i:j]:
                out.append((_tree_score(tree, [scores[top] for scores in parts]), top))
            i = j
        out.sort(key=lambda item: (-item[0], item[1]))
        return out[:n]

    def _part_scores(self, s, q, docs) -> list:
        """``{top-level docnum: score}`` for ``docs`` of a word or a phrase with its additions
        (an ``AndMaybe`` chain), as Whoosh's matcher scores them; :class:`_Unsupported`
        otherwise."""
        extras = []
        while type(q) is wq.AndMaybe:
            extras.append(q.b)
            q = q.a
        if type(q) is wq.Or and 1 <= len(q.subqueries) <= 2 and not q.scale:
            # (a union of two adds their scores where both match: in either order, the same)
            main = self._unit_part_scores(s, q.subqueries[0], docs)
            if len(q.subqueries) == 2:
                for top, score in self._unit_part_scores(s, q.subqueries[1], docs).items():
                    main[top] = main[top] + score if top in main else score
            if q.boost != 1.0:
                main = {top: score * q.boost for top, score in main.items()}
        else:
            main = self._unit_part_scores(s, q, docs)
        for extra in reversed(extras):  # innermost AndMaybe first, as Whoosh adds
            scores = self._unit_scores(s, extra)
            for top in scores.keys() & main.keys():
                main[top] = main[top] + scores[top]
        return main

    def _unit_part_scores(self, s, q, docs) -> dict[int, float]:
        """``{top-level docnum: score}`` of a word for ``docs``, or of a body phrase."""
        if type(q) is wq.Term:
            return {top: score for top, _, score in self._term_scores(s, q, only=docs)}
        if type(q) is _Phrase:
            return self._unit_scores(s, q)
        raise _Unsupported

    def _unit_scores(self, s, q) -> dict[int, float]:
        """``{top-level docnum: score}`` of every live document a term or a phrase matches, as
        its matcher scores it."""
        if type(q) is wq.Term:
            return {top: score for top, _, score in self._term_scores(s, q)}
        if type(q) is _Phrase:
            pass
        elif type(q) is not wq.Phrase or q.slop != 1 or len(q.words) < 2:
            raise _Unsupported
        field = s.schema[q.fieldname] if q.fieldname in s.schema else None
        if field is None or not field.scorable or not isinstance(s.weighting, scoring.BM25F):
            raise _Unsupported
        out: dict[int, float] = {}
        for leaf, offset in s.leaf_searchers():
            if type(q) is _Phrase:
                docs, weights = q.leaf_matches(leaf)
            else:
                docs, weights = _phrase_leaf_matches(leaf, q.fieldname, q.words)
            if not docs:
                continue
            lengths = self._lengths(leaf, q.fieldname)
            if weights is None or lengths is None:
                raise _Unsupported
            scorers = {w: s.weighting.scorer(leaf, q.fieldname, w) for w in weights}
            memo: dict[tuple, float] = {}
            for docnum in docs:
                lbyte = lengths[docnum]
                parts = []
                for word in q.words:
                    weight = weights[word][docnum]
                    key = (word, weight, lbyte)
                    score = memo.get(key)
                    if score is None:
                        score = memo[key] = scorers[word]._score(weight, byte_to_length(lbyte))
                    parts.append(score)
                score = _tree_sum(parts)
                if q.boost != 1.0 or type(q) is _Phrase:
                    score = score * q.boost  # (as the wrapping matcher does)
                out[docnum + offset] = score
        return out

    def _term_scores(self, s, q, memo: dict | None = None, only: Container | None = None):
        """``(top-level docnum, (weight, length byte), score)`` of each live document with the
        term ``q`` (of those in ``only``, if given), its score as Whoosh's matcher gives it;
        :class:`_Unsupported` when the term's field or the weighting is not one this knows."""
        if only is None:
            entries, scorer = self._postings(s, q.fieldname, q.text)
        else:
            entries, scorer = self._probe_postings(s, q.fieldname, q.text, only)
        memo = {} if memo is None else memo
        boost = q.boost
        for top, weight, lbyte in entries:
            key = (weight, lbyte)
            score = memo.get(key)
            if score is None:  # idf and average length are the index's: any segment will do
                score = scorer._score(weight, byte_to_length(lbyte))
                if boost != 1.0:
                    score = score * boost  # as Whoosh's WrappingMatcher does
                memo[key] = score
            yield top, key, score

    def _postings(self, s, fieldname: str, text: str):
        """``([(top-level docnum, weight, length byte)], scorer)`` of a term's live documents,
        read block by block; kept for the rest of the query (matching and ranking both need
        them). :class:`_Unsupported` when the field or the weighting is not one this knows."""
        cache = getattr(self._local, "postings", None)
        if cache is not None and (fieldname, text) in cache:
            return cache[fieldname, text]
        btext = _scorable_term(s, fieldname, text)
        entries: list[tuple[int, float, int]] = []
        scorer = None
        for leaf, offset in s.leaf_searchers():
            found = self._leaf_postings(leaf, fieldname, btext)
            if found is None:
                continue
            m, deleted, lengths = found
            if scorer is None:
                scorer = s.weighting.scorer(leaf, fieldname, text)
            while m.is_active():
                if m._ids is None:
                    m._read_ids()
                if m._weights is None:
                    m._read_weights()
                entries.extend((docnum + offset, weight, lengths[docnum])
                               for docnum, weight in zip(m._ids, m._weights, strict=False)
                               if docnum not in deleted)
                m._next_block()
        if cache is not None:
            cache[fieldname, text] = (entries, scorer)
        return entries, scorer

    def _probe_postings(self, s, fieldname: str, text: str, docs: Container[int]):
        """Like :meth:`_postings`, for those of the top-level ``docs`` that have the term: only
        the blocks of its posting lists that can hold one of them are read (the others are
        stepped over by their largest document number, as ``skip_to`` does, without its Python
        call per document). The whole list is used when this query has already read it."""
        cache = getattr(self._local, "postings", None)
        if cache is not None and (fieldname, text) in cache:
            entries, scorer = cache[fieldname, text]
            return [entry for entry in entries if entry[0] in docs], scorer
        probed = getattr(self._local, "probed", None)
        known = probed.get((fieldname, text)) if probed is not None else None
        if known is not None and known[0].issuperset(docs):
            return [entry for entry in known[1] if entry[0] in docs], known[2]
        btext = _scorable_term(s, fieldname, text)
        wanted = sorted(docs)
        entries: list[tuple[int, float, int]] = []
        scorer = None
        i = 0
        for leaf, offset in s.leaf_searchers():
            reader = leaf.reader()
            end = offset + reader.doc_count_all()
            j = bisect.bisect_left(wanted, end, i)
            targets = [top - offset for top in wanted[i:j]]
            i = j
            found = self._leaf_postings(leaf, fieldname, btext) if targets else None
            if found is None:
                continue
            m, deleted, lengths = found
            if scorer is None:
                scorer = s.weighting.scorer(leaf, fieldname, text)
            k = 0
            while m.is_active() and k < len(targets):
                last = m._maxid
                if targets[k] <= last:
                    if m._ids is None:
                        m._read_ids()
                    if m._weights is None:
                        m._read_weights()
                    block = dict(zip(m._ids, m._weights, strict=False))
                    upto = bisect.bisect_right(targets, last, k)
                    for docnum in targets[k:upto]:
                        weight = block.get(docnum)
                        if weight is not None and docnum not in deleted:
                            entries.append((docnum + offset, weight, lengths[docnum]))
                    k = upto
                m._next_block()
        if scorer is None:  # (no wanted document is in a segment with the term)
            scorer = s.weighting.scorer(s, fieldname, text) if (fieldname, btext) in s.reader() \
                else None
        if probed is not None:
            probed[fieldname, text] = (frozenset(docs), entries, scorer)
        return entries, scorer

    def _leaf_postings(self, leaf, fieldname: str, btext: bytes):
        """``(block matcher, deleted docnums, length bytes)`` of a term in one segment, ``None``
        when the segment lacks it. The matcher is the raw one, deleted documents included (the
        filtered one steps over them one at a time); :class:`_Unsupported` for a codec or field
        this does not know."""
        reader = leaf.reader()
        if (fieldname, btext) not in reader:
            return None
        m = reader.postings(fieldname, btext)
        deleted = ()
        if isinstance(m, FilterMatcher):
            deleted = m._ids
            m = reader._terms.matcher(fieldname, btext, leaf.schema[fieldname].format)
        lengths = self._lengths(leaf, fieldname)
        if not isinstance(m, W3LeafMatcher) or lengths is None:
            raise _Unsupported
        return m, deleted, lengths

    def _lengths(self, leaf, fieldname: str):
        """The length bytes of ``fieldname`` for each document of a segment (cached)."""
        reader = leaf.reader()
        segment = reader.segment() if hasattr(reader, "segment") else None
        key = ("length", fieldname, segment.segment_id()) if segment is not None else None
        column = self._facet_cache.get(key) if key else None
        if column is None:
            perdoc = getattr(reader, "_perdoc", None)
            colreader = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN) \
                if perdoc is not None and hasattr(perdoc, "_cached_reader") else None
            if colreader is None:
                return None
            column = bytes(colreader[n] for n in range(reader.doc_count_all()))
            if key:
                self._facet_cache[key] = column
        return column

    def _by_date(self, s, matches: _Matches, n: int) -> list[tuple[float, int]]:
        """The ``n`` most recent matches (and any that share the day of the last), newest
        first; on the same day the better match first, then by document number."""
        if not matches.total:
            return []
        days = self._days(s)
        docs = matches.documents(s)
        if len(docs) > n:
            cutoff = heapq.nlargest(n, (days[i] for i in docs))[-1]
            docs = [i for i in docs if days[i] >= cutoff]
        if matches.text_q is not None:
            scored = dict((docnum, score) for score, docnum in
                          _score_docs(s, matches.text_q, docs))
        else:
            scored = {}
        return sorted(((scored.get(i, 0.0), i) for i in docs),
                      key=lambda item: (-days[item[1]], -item[0], item[1]))

    def _days(self, s) -> list[int]:
        """The ``day`` column of every document, indexed by top-level document number."""
        out: list[int] = []
        for leaf, offset in s.leaf_searchers():
            reader = leaf.reader()
            segment = reader.segment() if hasattr(reader, "segment") else None
            key = ("day", segment.segment_id()) if segment is not None else None
            column = self._facet_cache.get(key) if key else None
            if column is None:
                column = list(reader.column_reader("day")) if reader.doc_count_all() else []
                if key:
                    self._facet_cache[key] = column
            if len(out) < offset:
                out.extend([0] * (offset - len(out)))
            out[offset:offset + len(column)] = column
        return out

    def _segment_facets(self, leaf, offset: int) -> dict[str, list[tuple[str, frozenset]]]:
        """Per facet, ``[(value, top-level doc numbers)]`` of one segment; cached, segments
        never change (deleted documents are never in the sets they are intersected with)."""
        reader = leaf.reader()
        segment = reader.segment() if hasattr(reader, "segment") else None
        key = (segment.segment_id(), offset) if segment is not None else None
        cached = self._facet_cache.get(key) if key else None
        if cached is not None:
            return cached
        out = {}
        for name in FACETS:
            fieldname = FILTERS[name]
            out[name] = [(_text(term), frozenset(n + offset for n in
                                                 reader.postings(fieldname, term).all_ids()))
                         for term in reader.lexicon(fieldname)]
        if key:
            if len(self._facet_cache) > 8 * MAX_SEGMENTS:
                self._facet_cache.clear()
            self._facet_cache[key] = out
        return out

    def _correct(self, parsed: ParsedQuery, compiled: _Compiled, s) -> ParsedQuery | None:
        """The query with each unknown word replaced by the closest word of the index."""
        replaced = False
        clauses = []
        for clause in parsed.clauses:
            if any(clause is u for u in compiled.unknown):
                best = _corrections(s, clause.text, 1 if len(clause.text) <= 5 else 2, 1)
                if best:
                    clauses.append(Clause("word", best[0]))
                    replaced = True
                    continue
            clauses.append(clause)
        if not replaced:
            return None
        return ParsedQuery(clauses=clauses, excluded=parsed.excluded, filters=parsed.filters,
                           excluded_filters=parsed.excluded_filters)

    def suggest(self, text: str) -> str | None:
        parsed = parse_query(text)
        s = self.searcher()
        corrected = self._correct(parsed, self._compile(parsed, s), s)
        return str(corrected) if corrected is not None else None


def _attempts(text: list):
    """All clauses first; when that finds nothing, any of them (more matches rank higher)."""
    yield "all", (wq.And(text) if len(text) > 1 else text[0]) if text else None
    if len(text) > 1:
        yield "any", wq.Or(text, scale=0.9)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _sequence(fieldname: str, words: list[str], offsets: tuple[int, ...] | None = None,
              boost: float = 1.0):
    if len(words) == 1:
        return wq.Term(fieldname, words[0], boost=boost)
    return _Phrase(fieldname, words, boost=boost, offsets=offsets)


class _Phrase(wq.Phrase):
    """A phrase of a prose field: its words at these ``offsets`` from the first (consecutive
    unless stop words left gaps). Its documents are found once per segment (the position check,
    the costly part) and then only scored, as :class:`whoosh.query.Phrase` scores: the sum of
    its words' scores. (Whoosh's own phrase only knows consecutive words.)"""

    def __init__(self, fieldname, words, boost: float = 1.0,
                 offsets: tuple[int, ...] | None = None):
        super().__init__(fieldname, words, boost=boost)
        self.offsets = tuple(offsets) if offsets is not None else tuple(range(len(words)))
        if len(self.offsets) != len(self.words):
            raise ValueError("one offset per word")
        self._found: dict[int, tuple] = {}  #: id(leaf searcher) → (leaf searcher, sorted ids)

    def __repr__(self) -> str:  # (part of the matches cache's key)
        return f"_Phrase({self.fieldname!r}, {self.words!r}, offsets={self.offsets!r}, " \
               f"boost={self.boost:f})"

    def __eq__(self, other) -> bool:
        return super().__eq__(other) and self.offsets == getattr(other, "offsets", None)

    def __hash__(self) -> int:
        return hash((super().__hash__(), self.offsets))

    def copy(self):
        return _Phrase(self.fieldname, list(self.words), boost=self.boost, offsets=self.offsets)

    def normalize(self):
        return self

    def leaf_docs(self, leaf) -> list[int]:
        return self.leaf_matches(leaf)[0]

    def leaf_matches(self, leaf):
        """``(sorted docnums, {word: {docnum: weight}})`` of a segment (or weights None)."""
        found = self._found.get(id(leaf))
        if found is None or found[0] is not leaf:
            found = (leaf, _phrase_leaf_matches(leaf, self.fieldname, self.words,
                                                self.offsets))
            self._found[id(leaf)] = found
        return found[1]

    def docs(self, searcher):
        return iter(sorted(_leafwise(searcher, self.leaf_docs)))

    def matcher(self, searcher, context=None):
        if searcher.is_atomic():
            ids = self.leaf_docs(searcher)
        else:
            ids = sorted(_leafwise(searcher, self.leaf_docs))
        if not ids:
            return NullMatcher()
        terms = [wq.Term(self.fieldname, w).matcher(searcher, context) for w in self.words]
        return _ListedMatcher(make_binary_tree(IntersectionMatcher, terms), ids, self.boost)


def _phrase_leaf_matches(leaf, fieldname: str, words: list[str],
                         offsets: tuple[int, ...] | None = None):
    """``(sorted docnums, {word: {docnum: weight}})``: the segment's documents with ``words``
    at these ``offsets`` from the first (consecutive by default) in ``fieldname``, and the
    words' weights there. Each word's posting list is read once, block by block, and positions
    are decoded only for the documents that have every word (Whoosh's span matcher costs
    several times more per document)."""
    reader = leaf.reader()
    field = leaf.schema[fieldname] if fieldname in leaf.schema else None
    offsets = tuple(offsets) if offsets is not None else tuple(range(len(words)))
    if field is None or type(field.format) is not PackedPositions:
        if offsets != tuple(range(len(words))):
            raise _Unsupported  # (not an index this module writes)
        return sorted(wq.Phrase(fieldname, words).docs(leaf)), None
    values: dict[str, dict] = {}  # word → {docnum: encoded positions}
    weighed: dict[str, dict] = {}  # word → {docnum: weight}
    deleted = frozenset()
    for word in dict.fromkeys(words):
        try:
            text = field.to_bytes(word)
        except ValueError:
            return [], {}
        if (fieldname, text) not in reader:
            return [], {}
        m = reader.postings(fieldname, text)
        if isinstance(m, FilterMatcher):
            deleted, m = m._ids, reader._terms.matcher(fieldname, text, field.format)
        if not isinstance(m, W3LeafMatcher):
            if offsets != tuple(range(len(words))):
                raise _Unsupported
            return sorted(wq.Phrase(fieldname, words).docs(leaf)), None
        found, weights = {}, {}
        while m.is_active():
            if m._ids is None:
                m._read_ids()
            if m._values is None:
                m._read_values()
            if m._weights is None:
                m._read_weights()
            found.update(zip(m._ids, m._values, strict=False))
            weights.update(zip(m._ids, m._weights, strict=False))
            m._next_block()
        values[word] = found
        weighed[word] = weights
    lists = sorted(values.values(), key=len)
    candidates = set(lists[0]).intersection(*lists[1:])
    candidates.difference_update(deleted)
    out = []
    if len(words) == 2:  # the common case, with no Python call per position
        first, second = values[words[0]], values[words[1]]
        back = (offsets[0] - offsets[1]).__add__
        for docnum in sorted(candidates):
            # the second word's positions, less the gap, meet the first word's where the
            # words are that far apart
            if not set(array(_POSITION_TYPE, first[docnum])).isdisjoint(
                    map(back, array(_POSITION_TYPE, second[docnum]))):
                out.append(docnum)
    else:
        rest = [(k, offsets[k] - offsets[0]) for k in range(1, len(words))]
        for docnum in sorted(candidates):
            positions = {word: array(_POSITION_TYPE, found[docnum])
                         for word, found in values.items()}
            later = {k: set(positions[words[k]]) for k, _ in rest}
            if any(all(p + gap in later[k] for k, gap in rest) for p in positions[words[0]]):
                out.append(docnum)
    return out, {word: {d: found[d] for d in out} for word, found in weighed.items()}


def _leafwise(searcher, leaf_docs) -> set[int]:
    """Top-level numbers from each segment's ``leaf_docs(leaf searcher)``."""
    if searcher.is_atomic():
        return set(leaf_docs(searcher))
    out: set[int] = set()
    for leaf, offset in searcher.leaf_searchers():
        out.update(n + offset for n in leaf_docs(leaf))
    return out


class _Unsupported(Exception):
    """A query or index the fast ranking does not handle (Whoosh ranks it instead)."""


class _ListedMatcher(WhooshMatcher):
    """Matches exactly the sorted document numbers ``ids``, scored by ``child`` (which must
    match each of them), moving ``child`` only with ``skip_to``."""

    def __init__(self, child, ids: list[int], boost: float = 1.0, i: int = 0):
        self.child, self.ids, self.boost, self.i = child, ids, boost, i
        self._align()

    def _align(self) -> None:
        if self.i < len(self.ids):
            target = self.ids[self.i]
            if self.child.is_active() and self.child.id() < target:
                self.child.skip_to(target)

    def _here(self) -> bool:
        return self.child.is_active() and self.child.id() == self.ids[self.i]

    def is_active(self) -> bool:
        return self.i < len(self.ids)

    def id(self) -> int:
        return self.ids[self.i]

    def next(self) -> bool:
        if self.i >= len(self.ids):
            raise ReadTooFar
        self.i += 1
        self._align()
        return True  # (the child may be in a new block: have the collector check quality)

    def skip_to(self, id) -> bool:
        if self.i >= len(self.ids):
            raise ReadTooFar
        if id > self.ids[self.i]:
            self.i = bisect.bisect_left(self.ids, id, self.i)
            self._align()
        return False

    def all_ids(self):
        ids, self.i = self.ids[self.i:], len(self.ids)
        return iter(ids)

    def reset(self) -> None:
        self.i = 0
        self.child.reset()
        self._align()

    def copy(self):
        return _ListedMatcher(self.child.copy(), self.ids, self.boost, self.i)

    def replace(self, minquality=0):
        return self if self.is_active() else NullMatcher()

    def children(self):
        return [self.child]

    def depth(self) -> int:
        return 1 + self.child.depth()

    def supports(self, astype) -> bool:
        return self.child.supports(astype)

    def value(self):
        return self.child.value()

    def value_as(self, astype):
        return self.child.value_as(astype)

    def spans(self):
        return self.child.spans() if self._here() else []

    def weight(self) -> float:
        return self.child.weight() * self.boost if self._here() else 0.0

    def score(self) -> float:
        return self.child.score() * self.boost if self._here() else 0.0

    def supports_block_quality(self) -> bool:
        return self.child.supports_block_quality()

    def max_quality(self) -> float:
        return self.child.max_quality() * self.boost

    def block_quality(self) -> float:
        return self.child.block_quality() * self.boost

    def skip_to_quality(self, minquality) -> int:
        """Skip the child's blocks that cannot reach ``minquality`` (our documents are among
        the child's), then go on from our first document at or after where it stopped."""
        if self.i >= len(self.ids):
            raise ReadTooFar
        if not self.child.is_active():
            return 0
        skipped = self.child.skip_to_quality(minquality / self.boost if self.boost else 0)
        if not self.child.is_active():
            self.i = len(self.ids)
        elif self.child.id() > self.ids[self.i]:
            self.i = bisect.bisect_left(self.ids, self.child.id(), self.i)
            self._align()
        return skipped


def _docset(s, q, index: WhooshIndex | None = None) -> set[int]:
    """Top-level numbers of the documents matching ``q``, without scoring: posting lists read
    whole and combined as sets (Whoosh's matchers step through them one document at a time)."""
    if q is wq.NullQuery or q is None:
        return set()
    kind = type(q)
    if kind is wq.And:
        # the rarest first; a much longer one is only probed for those (see _read_whole)
        reader = s.reader()
        out = None
        for sub in sorted(q.subqueries, key=lambda sub: sub.estimate_size(reader)):
            if out is not None and sub.estimate_size(reader) > 8 * len(out) \
                    and not _read_whole(s, sub, out, index):
                out = _probe(s, _head(sub), out, index)
            else:
                docs = _docset(s, sub, index)
                out = docs if out is None else out & docs
            if not out:
                return set()
        return out if out is not None else set()
    if kind is wq.Or:
        out = set()
        for sub in q.subqueries:
            out |= _docset(s, sub, index)
        return out
    if kind is wq.AndMaybe:
        return _docset(s, q.a, index)
    if kind is wq.AndNot:
        docs = _docset(s, q.a, index)
        return docs - _docset(s, q.b, index) if docs else docs
    if kind is wq.ConstantScoreQuery:
        return _docset(s, q.child, index)
    if kind is _Phrase:
        return _leafwise(s, q.leaf_docs)
    if kind is wq.Term:
        if index is not None:
            try:  # read with the weights, kept for ranking
                return {top for top, _, _ in index._postings(s, q.fieldname, q.text)[0]}
            except _Unsupported:
                pass
        return _term_docs(s, q.fieldname, q.text)
    return set(q.docs(s))


def _scorable_term(s, fieldname: str, text: str) -> bytes:
    """The term as ``fieldname`` stores it; :class:`_Unsupported` when the field is not scored
    or the weighting is not the BM25F the fast ranking reproduces."""
    if fieldname not in s.schema or not isinstance(s.weighting, scoring.BM25F):
        raise _Unsupported
    field = s.schema[fieldname]
    if not field.scorable:
        raise _Unsupported
    try:
        return field.to_bytes(text)
    except ValueError:
        raise _Unsupported from None


def _head(q):
    """What decides whether ``q`` matches: ``q`` without the parts that only add to its score."""
    while type(q) in (wq.AndMaybe, wq.ConstantScoreQuery):
        q = q.a if type(q) is wq.AndMaybe else q.child
    return q


def _read_whole(s, q, docs: set[int], index: WhooshIndex | None) -> bool:
    """Whether to read the posting list of the word ``q`` stands for whole rather than probe it
    for ``docs``: when ranking will read it anyway (more than :data:`SCORE_ALL` matches are
    ranked from whole lists), or when the probes would touch most of its blocks."""
    head = _head(q)
    if index is None or type(head) is not wq.Term:
        return False
    if len(docs) > SCORE_ALL:
        return True
    blocks = head.estimate_size(s.reader()) / POSTINGS_PER_BLOCK
    return len(docs) > 2 * blocks


def _probe(s, q, docs: set[int], index: WhooshIndex | None = None) -> set[int]:
    """Those of ``docs`` that ``q`` matches: a word's blocks that may hold them read (their
    weights kept for ranking), anything else's documents each looked for with ``skip_to``."""
    if index is not None and type(q) is wq.Term:
        try:
            return {top for top, _, _ in index._probe_postings(s, q.fieldname, q.text, docs)[0]}
        except _Unsupported:
            pass
    return set(_reached(q.matcher(s, s.boolean_context()), sorted(docs)))


def _reached(m, targets: list[int]):
    """Those of the sorted ``targets`` that the matcher ``m`` matches, each found with
    ``skip_to``; ``m`` is left on each one as it is yielded (to read its score)."""
    for target in targets:
        if not m.is_active():
            return
        if m.id() < target:
            m.skip_to(target)
            if not m.is_active():
                return
        if m.id() == target:
            yield target


def _count(s, q) -> int | None:
    """How many live documents ``q`` matches, when that is known without reading its posting
    lists (a word, and what only adds to its score); ``None`` otherwise."""
    kind = type(q)
    if kind is wq.AndMaybe:
        return _count(s, q.a)
    if kind is wq.ConstantScoreQuery:
        return _count(s, q.child)
    if kind is not wq.Term or q.fieldname not in s.schema:
        return None
    try:
        text = s.schema[q.fieldname].to_bytes(q.text)
    except ValueError:
        return 0
    total = 0
    for leaf, _ in s.leaf_searchers():
        reader = leaf.reader()
        if (q.fieldname, text) not in reader:
            continue
        total += reader.doc_frequency(q.fieldname, text)
        if reader.has_deletions():
            # deleted documents stay in the posting lists until a merge: take off those there
            # (the filtered matcher has already stepped over the first ones: read it raw)
            deleted = sorted(reader._perdoc.deleted_docs())
            m = reader._terms.matcher(q.fieldname, text, s.schema[q.fieldname].format)
            for docnum in deleted:
                if not m.is_active():
                    break
                if m.id() < docnum:
                    m.skip_to(docnum)
                if m.is_active() and m.id() == docnum:
                    total -= 1
    return total


def _term_docs(s, fieldname: str, text) -> set[int]:
    """Top-level numbers of the live documents with a term: each segment's posting list read
    block by block (Whoosh's ``all_ids`` steps through it one posting at a time)."""
    out: set[int] = set()
    field = s.schema[fieldname] if fieldname in s.schema else None
    if field is None:
        return out
    try:
        text = field.to_bytes(text)
    except ValueError:
        return out
    for leaf, offset in s.leaf_searchers():
        reader = leaf.reader()
        if (fieldname, text) not in reader:
            continue
        m = reader.postings(fieldname, text)
        deleted = None
        if isinstance(m, FilterMatcher) and m._exclude:
            deleted, m = m._ids, m.child
        if isinstance(m, W3LeafMatcher):
            ids = []
            while m.is_active():
                if m._ids is None:
                    m._read_ids()
                ids.extend(m._ids[m._i:])
                m._next_block()
        else:
            ids = list(m.all_ids())
        if deleted:
            ids = [n for n in ids if n not in deleted]
        out.update(n + offset for n in ids) if offset else out.update(ids)
    return out


def _coordinated(q) -> bool:
    """Whether ``q`` has an ``Or(scale=…)``, whose bonus block-max skipping ignores."""
    if getattr(q, "scale", None):
        return True
    return any(_coordinated(sub) for sub in q.children())


def _score_docs(s, q, docs) -> list[tuple[float, int]]:
    """``(score, docnum)`` of each of the top-level ``docs`` that ``q`` matches, as Whoosh
    scores them in a search, each found with ``skip_to``. (A coordination bonus, ``Or(scale=…)``,
    depends on how Whoosh's collector steps through the matches, so such a query is run as a
    search restricted to ``docs``.)"""
    if not docs:
        return []  # (Whoosh reads an empty filter as no filter)
    if _coordinated(q):
        return list(s.search(q, limit=None, optimize=False, filter=set(docs)).top_n)
    docs = sorted(docs)
    out = []
    context = s.context()
    i = 0
    for leaf, offset in s.leaf_searchers():
        end = offset + leaf.doc_count_all()
        j = bisect.bisect_left(docs, end, i)
        if j > i:
            m = q.matcher(leaf, context)
            for local in _reached(m, [docnum - offset for docnum in docs[i:j]]):
                out.append((m.score(), local + offset))
        i = j
    return out


def _exact(text: str, words: list[str], single: bool):
    """The error tokens of a word or phrase. Plain words between them are not in ``exact``, so
    positions have gaps: one word's tokens are a phrase with that much slop; a quoted phrase
    only needs each of them (its prose part checks the order)."""
    if len(words) == 1:
        return wq.Term("exact", words[0], boost=EXACT_BOOST)
    if single:
        gaps = len(_EXACT_RE.findall(text)) - len(words)
        return wq.Phrase("exact", words, slop=1 + gaps, boost=EXACT_BOOST)
    return wq.And([wq.Term("exact", w) for w in words], boost=EXACT_BOOST)


def _unknown(s, word: str) -> bool:
    """True when neither the word's error tokens nor its stems are anywhere in the index."""
    reader = s.reader()
    exact = tokens(EXACT_ANALYZER, word)
    prose = tokens(PROSE_ANALYZER, word)
    if not exact and not prose:
        return False
    if any(reader.doc_frequency("exact", token) for token in exact):
        return False
    return not any(reader.doc_frequency("body", token) for token in prose)


#: Where spelling suggestions come from (their vocabulary is stems; see :func:`_corrections`).
SPELLING_FIELDS = ("body",)
_PLAIN_WORD = re.compile(r"[^\W\d_]{3,40}")


def _corrections(s, word: str, maxdist: int, limit: int) -> list[str]:
    """Words of the index within ``maxdist`` edits of ``word``, closest and most frequent first.

    The index holds stems, so the typed word's stem is corrected (``conect`` → ``connect``)
    and each stem is shown as its form closest to what was typed (``connection``).
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
                    if candidate != stem and candidate not in scores and len(candidate) > 1:
                        scores[candidate] = k - reader.doc_frequency(name, candidate) / 1e9
            if len(scores) >= limit:
                break
        out = []
        for candidate in sorted(scores, key=lambda c: (scores[c], c)):
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
    """The word, in a document that has ``stem``, that stems to it and is closest to ``typed``."""
    for name in SPELLING_FIELDS:
        forms = set()
        for docnum in list(wq.Term(name, stem).docs(s))[:3]:
            stored = s.stored_fields(docnum)
            try:
                sections = json.loads(zlib.decompress(stored["text"]))
            except Exception:  # noqa: BLE001
                sections = []
            text = " ".join([(stored.get("meta") or {}).get("title", "")]
                            + [t for _, t in sections]).lower()
            forms.update(w for w in _WORD_RE.findall(text)
                         if w.startswith(stem[:2]) and _stem(w) == stem)
        if forms:
            return min(forms, key=lambda f: (edit_distance(f, typed), len(f), f))
    return None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (for ranking a few short suggestions)."""
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
        items = [(value.upper(), count) for value, count in items]
    return items[:FACET_VALUES]


def _merge_filters(from_query: dict[str, list[str]], given: dict | None, kind: str | None,
                   messages: list[str]) -> dict[str, list[str]]:
    """Filters from the query text, the URL and ``kind=``, normalised; bad values reported."""
    pairs = [(name, value) for name, values in from_query.items() for value in values]
    for name, values in (given or {}).items():
        name = FILTER_ALIASES.get(str(name).lower(), str(name).lower())
        values = [values] if isinstance(values, str) else list(values or [])
        pairs += [(name, value) for value in values]
    if kind:
        pairs.append(("kind", kind))
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in FILTERS:
            messages.append(f"There is no filter “{name[:40]}”.")
            continue
        norm = normalise_filter(name, value)
        if norm is None:
            messages.append(f"“{str(value)[:60]}” is not a {name.replace('_', ' ')} we know; "
                            "that filter was ignored." if str(value).strip()
                            else f"The {name.replace('_', ' ')} filter was empty.")
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
            with contextlib.suppress(Exception):
                lock.release()


# --------------------------------------------------------------------------------------------
# Keeping the index in line with the wiki


class Search:
    """A :class:`SearchIndex` kept in line with a :class:`wiki.core.Wiki`.

    As one of the wiki's listeners it indexes each saved document before the save returns and
    applies every sync report (changed and removed documents). The first sync (at start-up)
    also *reconciles*: it compares the revision of every indexed document with the database and
    reindexes only the differences. That is how a deleted, truncated or outdated index gets
    rebuilt, and how a save that reached the database but not the index (a crash, a lock
    timeout) is caught up.
    """

    def __init__(self, index: SearchIndex, wiki=None):
        self.index = index
        self.wiki = wiki
        self.reconciled = False
        #: ``progress(n, total)`` for the indexing that syncs cause (``wiki reindex`` sets it
        #: to draw a progress bar)
        self.progress: Callable[[int, int], None] | None = None
        self._retry_after = 0.0  #: after a failed reconcile, queries wait this long to retry
        self._lock = threading.Lock()

    # -- listener --------------------------------------------------------------------------

    def on_save(self, doc: d.Document, wiki, author=None, message=None) -> None:
        self.wiki = wiki
        try:
            self.index.index_document(doc)
        except IndexUnavailable:
            self.recover()
        except Exception:  # noqa: BLE001 - the save itself worked; catch up at the next query
            log.exception("could not index %s; it will be at the next reconcile", doc.id)
            self.reconciled = False

    def on_sync(self, report, wiki, full: bool) -> None:
        self.wiki = wiki
        try:
            if full:
                count = self.index.rebuild(report.changed, self.progress,
                                           total=len(report.changed))
                log.info("search index rebuilt with %d documents", count)
                self.reconciled = True
                return
            if report.removed:
                self.index.remove_many(report.removed)
            if report.changed:
                self.index.index_documents(report.changed, self.progress)
        except IndexUnavailable:
            self.recover()
            return
        except Exception:  # noqa: BLE001
            log.exception("could not apply a sync to the search index; reconciling")
            self.reconciled = False
        if not self.reconciled:
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - e.g. another process holds the lock for long
                log.exception("could not reconcile the search index; will retry on a query")
                self.reconciled = False

    # -- reconciling and recovering --------------------------------------------------------

    def expected(self) -> dict[str, tuple[str, str]]:
        """``{id: (revision, path)}`` of every document in the database."""
        from sqlmodel import select

        from .models import DocumentRow

        with self.wiki.session() as session:
            rows = session.exec(select(DocumentRow.id, DocumentRow.revision, DocumentRow.path))
            return {ident: (revision, path) for ident, revision, path in rows}

    def _read(self, expected: dict[str, tuple[str, str]], idents: Iterable[str]):
        """The documents with these ids, read from their files (skipping any that changed)."""
        for ident in idents:
            try:
                doc = self.wiki.store.read(expected[ident][1])
            except Exception:  # noqa: BLE001 - changed since the sync; the next one catches it
                continue
            if doc.id == ident:
                yield doc

    def reconcile(self, progress=None, wait: bool = True) -> tuple[int, int]:
        """Reindex documents whose revision differs from the database's; drop those it lacks.

        Returns ``(indexed, removed)``. With ``wait=False`` it returns at once when another
        thread is already reconciling.
        """
        if self.wiki is None:
            return 0, 0
        if not self._lock.acquire(blocking=wait):
            return 0, 0
        try:
            return self._reconcile(progress or self.progress)
        except Exception:
            self._retry_after = time.monotonic() + RECONCILE_RETRY
            raise
        finally:
            self._lock.release()

    def _reconcile(self, progress) -> tuple[int, int]:
        self.index.created = False
        started = time.perf_counter()
        expected = self.expected()
        try:
            actual = self.index.revisions()
        except IndexUnavailable:
            self.index.reset()
            actual = {}
        stale = sorted(i for i, (revision, _) in expected.items() if actual.get(i) != revision)
        gone = [ident for ident in actual if ident not in expected]
        indexed = 0
        if stale and not actual:
            indexed = self.index.rebuild(self._read(expected, stale), progress,
                                         total=len(stale))
        elif stale:
            indexed = self.index.index_documents(self._read(expected, stale), progress)
        if gone:
            self.index.remove_many(gone)
        self.reconciled = True
        if stale or gone:
            log.info("search index %s: indexed %d document(s) and removed %d in %.1f s",
                     "was empty" if not actual else "was behind the content", indexed,
                     len(gone), time.perf_counter() - started)
        return indexed, len(gone)

    def recover(self) -> None:
        """The index could not be read: start a new one and fill it from the wiki."""
        log.warning("search index unreadable; rebuilding it from the content")
        self.index.reset()
        self.reconciled = False
        self.reconcile()

    def reindex(self, full: bool = False, progress=None) -> tuple[int, int]:
        """What ``wiki reindex`` does: sync the database, then catch the index up; with
        ``full``, rebuild it from every document. Returns ``(indexed, removed)``."""
        if not full:
            self.wiki.sync()
            return self.reconcile(progress)
        expected = self.expected()
        count = self.index.rebuild(self._read(expected, sorted(expected)), progress,
                                   total=len(expected))
        self.reconciled = True
        return count, 0

    # -- querying --------------------------------------------------------------------------

    def query(self, text: str, **kwargs) -> SearchResult:
        """:meth:`SearchIndex.query`; an unreadable index is rebuilt, never an error page."""
        result = self._query(text, **kwargs)
        if getattr(self.index, "created", False) and self.wiki is not None:
            # The index vanished while running and an empty one took its place: fill it.
            self.index.created = False
            self.reconciled = False
            result = self._query(text, **kwargs)
        return result

    def _query(self, text: str, **kwargs) -> SearchResult:
        if not self.reconciled and self.wiki is not None \
                and time.monotonic() >= self._retry_after:
            try:
                self.reconcile(wait=False)
            except Exception:  # noqa: BLE001
                log.exception("reconciling the search index failed")
        # An error may come from a segment another process merged away: try a new searcher
        # first, and only then rebuild the index.
        for attempt in ("as is", "with a new searcher", "after a rebuild"):
            try:
                if attempt == "with a new searcher":
                    self.index.close()
                elif attempt == "after a rebuild":
                    self.recover()
                return self.index.query(text, **kwargs)
            except SearchError as exc:
                log.warning("search failed %s: %s", attempt, exc)
            except Exception:  # noqa: BLE001 - e.g. the content vanished during a rebuild
                log.exception("search failed %s", attempt)
        result = SearchResult(query=clean_query(text)[0], mode="unavailable")
        result.messages.append("Search is unavailable for a moment while its index is rebuilt. "
                               "Please try again shortly.")
        return result

    def suggest(self, text: str) -> str | None:
        try:
            return self.index.suggest(text)
        except Exception:  # noqa: BLE001 - a nicety
            return None


def init_app(app) -> None:
    """Create the app's search index (``DATA_DIR/index``) and register it with the wiki; the
    start-up sync that follows brings the index in line with the content."""
    wiki = app.extensions["wiki"]
    index = WhooshIndex(Path(app.config["DATA_DIR"]) / "index")
    try:
        index.open()
    except IndexUnavailable as exc:
        log.warning("search index in %s is unreadable (%s); rebuilding it", index.path, exc)
        index.reset()
    except IndexBusy:
        log.warning("search index in %s is locked by another process", index.path)
    search = Search(index, wiki)
    wiki.listeners.append(search)
    app.extensions["search"] = search


def _tree_sum(parts: list[float]) -> float:
    """The sum of ``parts`` in the order a binary tree of Whoosh matchers
    (``make_binary_tree``) adds their scores."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return _tree_sum(parts[:half]) + _tree_sum(parts[half:])


def _weighted_tree(weights: list[int]):
    """The shape of Whoosh's ``make_weighted_tree`` over parts with these weights: nested
    pairs of part indexes (each pair's first is the matcher whose score comes first)."""
    items = sorted((weight, i) for i, weight in enumerate(weights))
    while len(items) > 1:
        a, b = items.pop(0), items.pop(0)
        bisect.insort(items, (a[0] + b[0], (a[1], b[1])))
    return items[0][1]


def _tree_score(tree, scores: list[float]) -> float:
    if isinstance(tree, int):
        return scores[tree]
    return _tree_score(tree[0], scores) + _tree_score(tree[1], scores)
