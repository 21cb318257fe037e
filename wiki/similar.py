"""Similar incidents: rank the wiki's documents against a text, and say why. No Flask.

Given a text (a draft postmortem, a pasted error, a whole document) :class:`SimilarIndex` ranks
existing postmortems and signatures by combining independent pieces of evidence, each a ranked
list of its own ("signals"):

``terms``
    Lexical similarity: the text's key terms (its stemmed words weighted by ``(1 + log tf) ×
    idf``, the top :attr:`Weights.key_terms` of them) as one weighted BM25F query over the search
    index's ``body`` (every word of a document), ``title`` and ``summary`` fields.
``cosine``
    The text's :attr:`Weights.cosine_terms` heaviest words, tf-idf cosine with each document.
    In both, the words of identifiers count as words (:func:`identifier_parts`: ``DFSClient``
    is also ``DFS`` and ``client``), on both sides.
``title``
    How much of a document's title the text says: the idf of its title's words found in the
    text over the idf of all of them (plus one rare word's worth of doubt).
``exact``
    The text's error tokens as the search index keeps them whole (``java.io.IOException``,
    ``blk_-160899``, ``sns-inbound``, ``Foo.java:12``), the top :attr:`Weights.exact_terms` by
    idf, as a BM25 query over the index's ``exact`` field.
``errors``
    Exception names, errno-like codes and HTTP errors found by
    :func:`wiki.signatures.error_tokens`, shared with a candidate, weighted by idf.
``lines``
    Lines of the text normalised into templates by :func:`wiki.signatures.normalise_line` (numbers,
    ids, paths, addresses become placeholders), shared with a candidate, weighted by idf: the same
    log line with other values in it.
``signatures``
    Bug signatures the text matches (:meth:`wiki.signatures.SignatureIndex.match`, confirmed only)
    or that it names: the signature itself and every document linked to it are candidates.
``services`` / ``tags``
    Services and tags the text names (given, or found in the text as words), shared with a
    candidate.

Each signal's scores are normalised to 0…1 (BM25 and cosine lists by their best score,
overlaps by the share of the text's own evidence a candidate has, ``title`` by the share of the
title) and fused with :class:`Weights`: a weighted sum, or weighted reciprocal-rank fusion. The
weights were chosen on a development set by ``bench/similar_eval.py`` (see
``docs/similar.md``); nothing here knows about any data set.

Every suggestion carries its **reasons**: the shared key terms (and the identifiers they are
words of), its title's words in the text, the shared error strings or log lines, the same
signature, the same service or tag.

Per-document evidence that the search index does not hold (error tokens, line templates,
identifier parts, title terms, signature links, services, tags, dates, dismissals) lives in
memory, kept current as a listener of :class:`wiki.core.Wiki` and cached in
``DATA_DIR/similar/features.json`` so a restart does not read every file again. Curating
(:func:`link`, :func:`dismiss`) writes ``related`` and ``not_related`` into the documents
themselves: the content stays the source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from . import documents as d
from . import search as wsearch
from . import signatures as sig

log = logging.getLogger(__name__)

__all__ = [
    "BadQuery", "DEFAULT_WEIGHTS", "Features", "Reason", "SimilarIndex", "SimilarResult",
    "Suggestion", "Weights", "dismiss", "document_query", "features_of", "link", "parse_before",
]

#: Texts longer than this are cut before they are analysed (a 5 MB paste still answers).
MAX_TEXT_CHARS = 100_000
#: Lines longer than this are cut before they become templates.
MAX_LINE_CHARS = 400
#: Templates and error tokens kept per document (the first ones).
MAX_ITEMS_PER_DOC = 400
#: Each ranked list is cut to this many candidates before fusion.
LIST_DEPTH = 60
#: Postings the ``cosine`` signal reads beyond the key terms', at most (its heaviest terms
#: first: what is cut is the most common words, which weigh least). Bounds the latency on a
#: big wiki; a 2,000-character text over 2,500 bug reports reads about 5,000.
MAX_COSINE_POSTINGS = 15_000
#: Results per request.
MAX_LIMIT = 50
#: Key terms and error strings named in a reason.
REASON_TERMS = 5
REASON_ERRORS = 3
#: BM25's term-frequency saturation and length normalisation (Whoosh's defaults).
BM25_K1 = 1.2
BM25_B = 0.75
#: The field that remembers dismissed suggestions ("not related"), an id list in front matter.
NOT_RELATED = "not_related"
#: Front-matter fields that link documents; a linked document is not suggested again.
LINKED_FIELDS = (*d.LINK_FIELDS, NOT_RELATED)
CACHE_VERSION = 3

SIGNALS = ("terms", "cosine", "title", "exact", "errors", "lines", "signatures", "services",
           "tags")


class BadQuery(ValueError):
    """A query that cannot be answered as given (the message says why, for the person)."""


# --------------------------------------------------------------------------------------------
# Weights


@dataclass(frozen=True)
class Weights:
    """How much each signal counts, and the knobs of the lexical signals.

    The lexical knobs were chosen on the development set by ``bench/similar_eval.py --tune``
    (grid search, judged by MRR over each setting and its grid neighbours); the weights of
    ``cosine``, ``title``, ``exact`` and ``errors`` by ``--fit``: a softmax model of "which
    candidate is the answer" over the signals' scores, fitted by maximum likelihood (L2, weights
    ≥ 0), rounded, ``terms`` the unit. Both are checked by 6-fold cross-validation (see
    ``docs/similar.md``). ``lines`` fits to 0 there (bug reports quote few logs; 0 and 0.1 rank
    the same) and is kept for postmortems, which do. The data set has no signatures, services
    or tags: those weights are set by design — a confirmed signature match outweighs all the
    lexical signals together (the signature's patterns were written to recognise that very
    bug), services and tags only break ties.
    """

    terms: float = 1.0
    cosine: float = 0.88
    title: float = 1.34
    exact: float = 0.11
    errors: float = 0.15
    lines: float = 0.1  #: fits to 0 on the development set (few log lines); kept for logs
    signatures: float = 4.0  #: more than terms + cosine + title + exact together (3.33)
    services: float = 0.15
    tags: float = 0.08
    key_terms: int = 15  #: key terms of the text in the ``terms`` query
    cosine_terms: int = 100  #: terms of the text in the ``cosine`` signal
    exact_terms: int = 10  #: error tokens in the ``exact`` query
    title_boost: float = 1.0  #: weight of the ``title`` field next to ``body`` (1.0)
    summary_boost: float = 0.25  #: weight of the ``summary`` field
    #: words of identifiers count as words (``DFSClient`` has ``dfs`` and ``client``)
    identifier_parts: bool = True
    fusion: str = "score"  #: "score" (weighted normalised scores) or "rrf"
    rrf_k: int = 60  #: the k of reciprocal-rank fusion

    def weight(self, signal: str) -> float:
        return float(getattr(self, signal))

    def replace(self, **changes) -> Weights:
        return Weights(**{**asdict(self), **changes})


DEFAULT_WEIGHTS = Weights()


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Reason:
    """Why a document was suggested: ``kind`` is one of :data:`SIGNALS`."""

    kind: str
    text: str  #: one line for a person: "Shared key terms: retries, worker, storage"
    values: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"kind": self.kind, "text": self.text, "values": list(self.values)}


@dataclass
class Suggestion:
    id: str
    kind: str
    title: str
    slug: str
    score: float  #: 0…1, the fused score
    reasons: list[Reason]
    signals: dict[str, float] = field(default_factory=dict)  #: each signal's normalised score
    date: str | None = None

    def to_json(self, url: str | None = None) -> dict:
        return {"id": self.id, "title": self.title, "url": url, "kind": self.kind,
                "score": self.score, "date": self.date,
                "reasons": [r.to_json() for r in self.reasons]}


@dataclass
class SimilarResult:
    suggestions: list[Suggestion] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  #: what was cut or left out
    elapsed_ms: float = 0.0
    #: the ranked lists before fusion, ``{signal: [(id, normalised score), …]}`` (for the bench)
    lists: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Evidence of one text


_WORD_RE = re.compile(r"[^\W_]+")
_LETTER_RE = re.compile(r"[^\W\d_]")
_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")
_TABLE_RULE_RE = re.compile(r"^[\s|:-]*$")
_PLACEHOLDER_RE = re.compile(r"<(?:\*|num|hex|uuid|ip|path|email|url)>")


def line_templates(text: str, limit: int = MAX_ITEMS_PER_DOC) -> dict[str, str]:
    """``{key: template}`` of the text's lines that are worth comparing.

    Lines that look like machine output (a digit, or one of ``= / \\ _ < > [ ] { } $ @ #``, or an
    exception name) are normalised (:func:`wiki.signatures.normalise_line`: prefix stripped,
    variable parts as placeholders); one is kept when what is left has at least three words of
    three letters or more, so bare values, headings and table rules do not count. Sentences of
    prose are left to the key terms. The key is a short hash,
    stable across processes (it is cached on disk).
    """
    out: dict[str, str] = {}
    for raw in text.split("\n"):
        raw = raw.strip().strip("|").strip()
        if len(raw) < 16 or not _MACHINE_RE.search(raw) or _FENCE_RE.match(raw) \
                or _TABLE_RULE_RE.match(raw):
            continue
        template = sig.normalise_line(raw[:MAX_LINE_CHARS])
        words = [w for w in _WORD_RE.findall(_PLACEHOLDER_RE.sub(" ", template)) if len(w) >= 3]
        if len(words) < 3:
            continue
        key = _key(template.lower())
        if key not in out:
            out[key] = template
            if len(out) >= limit:
                break
    return out


def error_keys(text: str, limit: int = MAX_ITEMS_PER_DOC) -> dict[str, str]:
    """``{key: token}`` of the exception names, codes and HTTP errors in a text."""
    out: dict[str, str] = {}
    for token in sig.error_tokens(text)[:limit]:
        out.setdefault(token.lower(), token)
        short = token.rsplit(".", 1)[-1]  # java.io.IOException also counts as IOException
        if short != token and len(short) >= 6:
            out.setdefault(short.lower(), short)
    return out


#: A word written as an identifier: a lower-case letter or digit before a capital (``getBlock``,
#: ``S3AFileSystem``), or an acronym before a capitalised word (``DFSClient``, ``IOException``).
_COMPOUND_RE = re.compile(r"[a-z0-9][A-Z]|[A-Z][A-Z][a-z]")
#: The words of an identifier: capitalised words, lower-case runs, acronyms; digits stay with
#: the letters before them (``S3``, ``log4j``, ``HTTP2`` are names, not a word and a number).
_PART_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")


def identifier_parts(word: str) -> list[str]:
    """The words an identifier is made of, as written: ``DFSClient`` → ``DFS``, ``Client``;
    ``getBlockLocations`` → ``get``, ``Block``, ``Locations``; ``S3AFileSystem`` → ``S3``,
    ``File``, ``System``. Parts of one character are left out. ``[]`` for a plain word
    (``timeout``, ``Timeout``, ``ABFS``, ``log4j``): camelCase only, since ``_ . - :`` already
    separate words in the search index."""
    if not _COMPOUND_RE.search(word):
        return []
    parts = [p for p in _PART_RE.findall(word) if len(p) > 1 and _LETTER_RE.search(p)]
    return parts if len(parts) > 1 or (parts and parts[0] != word) else []


#: A line that looks like machine output: a digit, or a character prose rarely has.
_MACHINE_RE = re.compile(r"[0-9=/\\_<>\[\]{}$@#]|[a-z](?:Exception|Error)\b")


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _fold(name: str) -> str:
    """How service and tag names compare: case-folded, ``-``/``_``/``.`` as spaces."""
    return " ".join(re.sub(r"[-_./]+", " ", str(name).casefold()).split())


# --------------------------------------------------------------------------------------------
# Evidence of one document


@dataclass
class Features:
    """What the similarity signals need of one document, besides the search index."""

    id: str
    kind: str
    title: str
    slug: str
    revision: str
    when: float | None  #: incident start (or its day) as a UTC timestamp; None when unknown
    day: str | None  #: ISO date shown with a suggestion
    services: list[str]
    tags: list[str]
    signatures: list[str]  #: signatures it is linked to (a signature: itself and its incidents)
    links: list[str]  #: every id in related / signatures / incidents
    not_related: list[str]
    errors: dict[str, str]
    lines: list[str]  #: template keys
    norm: float = 0.0  #: length of its tf-idf vector (``body`` terms), for the cosine signal
    #: the words of its identifiers (``DFSClient`` → ``dfs``, ``client``), stemmed, with their
    #: counts: the search index keeps ``DFSClient`` whole, these count beside its ``body`` terms
    parts: dict[str, int] = field(default_factory=dict)
    #: a part's identifier as written (``client`` → ``DFSClient``), to say so in a reason
    idents: dict[str, str] = field(default_factory=dict)
    title_terms: list[str] = field(default_factory=list)  #: its title's stems, parts included
    title_parts: list[str] = field(default_factory=list)  #: those only found as parts
    title_mass: float = 0.0  #: the idf of its title terms, summed (the ``title`` signal)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Features:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def document_text(doc: d.Document, title: bool = True) -> str:
    """Every word of a document that says what happened: title (unless ``title=False``),
    summary, body, trigger, customer impact, action items, a signature's patterns and
    examples."""
    fm = doc.front_matter
    parts = [doc.title] if title else []
    # the summary of the front matter; without one, ``doc.summary`` is the body's first
    # paragraph (on one line), which must not count twice
    summary = fm.get("summary")
    if isinstance(summary, str) and summary.strip() \
            and " ".join(summary.split()) not in " ".join(doc.body.split()):
        parts.append(summary)
    for key in ("customer_impact", "trigger"):
        if isinstance(fm.get(key), str):
            parts.append(fm[key])
    parts.append(doc.body)
    parts += [item.get("title", "") for item in fm.get("action_items") or []]
    for pattern in fm.get("patterns") or []:
        value = pattern.get("value") if pattern.get("kind") != "exception" else \
            " ".join(str(pattern.get(k) or "") for k in ("type", "value", "message"))
        parts.append("\n".join(value) if isinstance(value, list) else str(value or ""))
    parts += [str(e) for e in fm.get("examples") or []]
    return "\n\n".join(p for p in parts if p)


def _when(fm: dict) -> tuple[float | None, str | None]:
    started = fm.get("started_at")
    day = fm.get("date") or fm.get("first_seen") or fm.get("created")
    day = day if isinstance(day, date) else None
    if isinstance(started, datetime) and started.tzinfo is not None:
        return started.timestamp(), (day or started.astimezone(UTC).date()).isoformat()
    if day is not None:
        return datetime.combine(day, dtime(0), UTC).timestamp(), day.isoformat()
    return None, None


def _ids(values: Any) -> list[str]:
    """Ids of a front-matter list, normalised; anything else in it ignored."""
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, (list, tuple)):
        return []
    return list(dict.fromkeys(i for i in (d.normalise_id(v) for v in values) if i))


def features_of(doc: d.Document, lexical: Callable[[str, str], dict] | None = None
                ) -> Features:
    """The evidence of one document; ``lexical(text, title)`` gives what the lexical signals
    need beside the search index (``norm``, ``parts``, ``idents``, ``title_terms``,
    ``title_parts``: see :meth:`SimilarIndex.lexical_features`)."""
    fm = doc.front_matter
    text = document_text(doc)[:MAX_TEXT_CHARS]
    when, day = _when(fm)
    signatures = _ids(fm.get("signatures"))
    if doc.kind is d.SIGNATURE:
        signatures = [doc.id, *signatures]
    links = [i for name in d.LINK_FIELDS for i in _ids(fm.get(name)) if i != doc.id]
    return Features(
        id=doc.id, kind=doc.kind.name, title=doc.title, slug=doc.slug,
        revision=doc.revision or "", when=when, day=day,
        services=[s for s in doc.services if isinstance(s, str)],
        tags=[t for t in doc.tags if isinstance(t, str)],
        signatures=signatures,
        links=list(dict.fromkeys(i for i in links if i != doc.id)),
        not_related=_ids(fm.get(NOT_RELATED)),
        errors=error_keys(text),
        lines=list(line_templates(text)),
        **(lexical(text, doc.title) if lexical else {}),
    )


# --------------------------------------------------------------------------------------------
# Queries


def parse_before(value: Any) -> float | None:
    """``before`` as a UTC timestamp: an ISO date (the start of that day, UTC) or date-time
    (without a zone: UTC), a ``date``/``datetime``, or a timestamp. ``None``/``""`` → no limit.
    Raises :class:`BadQuery`."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise BadQuery("“before” must be a date, a date-time or a finite timestamp.")
        return float(value)  # already a timestamp
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, dtime(0))
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                parsed = datetime.combine(date.fromisoformat(text), dtime(0))
            else:
                parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadQuery(f"“before” must be an ISO 8601 date like 2023-06-14 or a date-time "
                           f"like 2023-06-14T09:12:00Z, not {text[:60]!r}.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class _Query:
    text: str
    title: str
    services: list[str]
    tags: list[str]
    signatures: list[str]
    exclude: set[str]
    before: float | None
    kind: str | None
    limit: int
    source: str | None  #: the document asked about: its links and dismissals are left out


@dataclass
class _Words:
    """The words of a query text, as the lexical signals see them."""

    counts: Counter = field(default_factory=Counter)  #: stem → count (title words thrice)
    surface: dict[str, str] = field(default_factory=dict)  #: stem → as first written, lowercased
    idents: dict[str, str] = field(default_factory=dict)  #: part stem → the text's identifier
    shown: dict[str, list[str]] = field(default_factory=dict)  #: id → identifiers for reasons
    df: dict[str, int] = field(default_factory=dict)  #: stem → documents with it (``body``)


def document_query(doc: d.Document) -> dict:
    """Keyword arguments of :meth:`SimilarIndex.similar` for documents like ``doc``."""
    fm = doc.front_matter
    signatures = _ids(fm.get("signatures")) + ([doc.id] if doc.kind is d.SIGNATURE else [])
    return dict(text=document_text(doc, title=False), title=doc.title, services=doc.services,
                tags=doc.tags, signatures=signatures, source=doc.id or None)


# --------------------------------------------------------------------------------------------
# The index


class SimilarIndex:
    """Similar documents for a text, with reasons; a listener of :class:`wiki.core.Wiki`.

    ``search`` is the search index (:class:`wiki.search.WhooshIndex`: only its ``searcher()``
    is used, and of the searcher the schema's analyzers, term statistics and ``search``);
    ``signatures`` a :class:`wiki.signatures.SignatureIndex`. Either may be ``None``: the other
    signals still work.
    """

    def __init__(self, search=None, signatures: sig.SignatureIndex | None = None,
                 cache_path: Path | str | None = None, weights: Weights = DEFAULT_WEIGHTS):
        self.search = search
        self.signatures = signatures
        self.cache_path = Path(cache_path) if cache_path else None
        self.weights = weights
        self.wiki = None
        self._lock = threading.RLock()
        self._features: dict[str, Features] = {}
        self._by_error: Postings = {}
        self._by_line: Postings = {}
        self._by_signature: Postings = {}
        self._by_service: Postings = {}
        self._by_tag: Postings = {}
        self._by_part: Postings = {}  #: identifier part → documents with it in their text
        self._by_title: Postings = {}  #: title stem (parts included) → documents
        self._by_title_part: Postings = {}  #: title stem only found as a part → documents
        self._stems: dict[str, str] = {}  #: identifier part → its stem
        self._names: tuple[re.Pattern | None, dict[str, str]] | None = None
        self._reconciled = False
        self._dirty = False
        self._length_cache: dict = {}
        self._id_cache: tuple = (None, [])
        self._docnum_cache: tuple = (None, {})
        self._panel_cache: dict = {}  #: document page panels, see similar_to_cached()
        self._panel_lock = threading.Lock()
        self._df_memo: tuple = (None, {})  #: (reader stamp, {(field, term): df}), see _field_df

    # -- keeping it current ------------------------------------------------------------------

    def attach(self, wiki) -> SimilarIndex:
        """Follow a wiki: hear its saves and syncs; load the rest on first use."""
        self.wiki = wiki
        wiki.listeners.append(self)
        return self

    def add(self, doc: d.Document) -> None:
        self.put(features_of(doc, self.lexical_features))

    def lexical_features(self, text: str, title: str = "") -> dict:
        """What the lexical signals need of a document beside the search index:

        * ``norm``: the length of its tf-idf vector over the ``body`` terms and identifier parts,
          weighted as :meth:`_prose` weighs them (``(1 + log tf) × idf``), with today's document
          frequencies (they drift as the wiki grows; a full sync computes them all again);
        * ``parts`` / ``idents``: the stemmed words of its identifiers and where they come from
          (:func:`identifier_parts`);
        * ``title_terms``: the stems of its title, parts included (the ``title`` signal), and
          ``title_parts``, those only found as parts, and ``title_mass``, the sum of their idf
          (of today, like ``norm``).
        """
        try:
            s = self._searcher()
            if s is None or "body" not in s.schema.names():
                return {}
            analyzer = _prose_analyzer(s.schema)
            counts = Counter(_words(analyzer, text))
            parts, idents = self._parts(analyzer, text)
            title_words = set(_words(analyzer, title)) if title else set()
            title_parts = self._parts(analyzer, title)[0] if title else Counter()
            reader = s.reader()
            n_docs = max(s.doc_count(), 1)
            both = counts + parts
            idf = {term: _idf(n_docs, self._df(reader, term) or 1) for term in both}
            total = sum(((1 + math.log(tf)) * idf[term]) ** 2 for term, tf in both.items())
            title_terms = sorted(title_words | set(title_parts))
            mass = sum(idf.get(t) or _idf(n_docs, self._df(reader, t) or 1) for t in title_terms)
            return {"norm": math.sqrt(total), "parts": dict(parts), "idents": idents,
                    "title_terms": title_terms,
                    "title_parts": sorted(set(title_parts) - title_words),
                    "title_mass": mass}
        except Exception:  # noqa: BLE001 - the lexical signals skip this document
            log.debug("similar: no lexical features", exc_info=True)
            return {}

    def _parts(self, analyzer, text: str) -> tuple[Counter, dict[str, str]]:
        """The stemmed words of the identifiers in ``text`` (as the index would analyse each
        one alone) with their counts, and ``{stem: the identifier}`` of the first of each."""
        parts: Counter = Counter()
        idents: dict[str, str] = {}
        stems = self._stems
        for m in _WORD_RE.finditer(text):
            word = m.group(0)
            for part in identifier_parts(word):
                stem = stems.get(part)
                if stem is None:
                    if len(stems) > 50_000:
                        stems.clear()
                    stem = stems[part] = next(
                        (t.text for t in analyzer(part, mode="query")), "")
                if stem:
                    parts[stem] += 1
                    if stem not in idents and len(idents) < MAX_ITEMS_PER_DOC:
                        idents[stem] = word
        return parts, idents

    def _df(self, reader, term: str, fieldname: str = "body") -> int:
        """Documents with ``term`` in the field, as a word or (``body``, ``title``) a part of an
        identifier. (One that has both counts twice: a rounding the idf hardly feels.)"""
        extra = {"body": self._by_part, "title": self._by_title_part}.get(fieldname)
        return self._field_df(reader, fieldname, term) + (len(_docs(extra, term)) if extra else 0)

    def _field_df(self, reader, fieldname: str, term: str) -> int:
        """``reader.doc_frequency``, remembered while the index does not change: a sync asks
        for the same words thousands of times (one lookup per word per document), and each
        Whoosh lookup walks every segment's term dictionary."""
        stamp = (id(reader), reader.generation())
        memo = self._df_memo
        if memo[0] != stamp:
            memo = self._df_memo = (stamp, {})
        cache = memo[1]
        key = (fieldname, term)
        df = cache.get(key)
        if df is None:
            if len(cache) > 1_000_000:
                cache.clear()
            df = cache[key] = reader.doc_frequency(fieldname, term)
        return df

    def _postings_of(self, f: Features) -> list[tuple[dict, Iterable[str]]]:
        """Each inverted index with the keys this document is posted under in it."""
        return [(self._by_error, f.errors), (self._by_line, f.lines),
                (self._by_part, f.parts), (self._by_title, f.title_terms),
                (self._by_title_part, f.title_parts),
                (self._by_signature, f.signatures),
                (self._by_service, [_fold(n) for n in f.services]),
                (self._by_tag, [_fold(n) for n in f.tags])]

    def put(self, features: Features) -> None:
        with self._lock:
            self._remove(features.id)
            self._features[features.id] = features
            for index, keys in self._postings_of(features):
                for key in keys:
                    _post(index, key, features.id)
            self._names = None
            self._dirty = True

    def remove(self, ident: str) -> None:
        with self._lock:
            self._remove(ident)
            self._names = None
            self._dirty = True

    def _remove(self, ident: str) -> None:
        old = self._features.pop(ident, None)
        if old is None:
            return
        for index, keys in self._postings_of(old):
            for key in keys:
                _unpost(index, key, ident)

    def on_save(self, doc: d.Document, wiki=None, **_) -> None:
        try:
            self.add(doc)
        except Exception:  # noqa: BLE001 - the save worked; the next reconcile catches up
            log.exception("similar: could not take in %s", getattr(doc, "id", "?"))
            self._reconciled = False

    def on_sync(self, report, wiki=None, full: bool = False) -> None:
        if wiki is not None:
            self.wiki = wiki
        try:
            for doc in report.changed:
                self.add(doc)
            for ident in report.removed:
                self.remove(ident)
            if len(report.changed) + len(report.removed) >= SAVE_AFTER_CHANGES:
                # a big sync (a first start, `wiki reindex --full`, a git pull): keep the work
                # for the next process, which may be the one serving pages
                self.save_cache()
        except Exception:  # noqa: BLE001
            log.exception("similar: could not apply a sync; reconciling on the next query")
            self._reconciled = False
        if full:
            self._reconciled = False

    def on_delete(self, doc, wiki=None, **_) -> None:
        self.remove(doc.id)

    def reconcile(self) -> tuple[int, int]:
        """Bring the features in line with the wiki's database: load the cache, read the files
        of documents it lacks or has at another revision, drop documents that are gone.
        Returns ``(read, removed)``."""
        if self.wiki is None:
            self._reconciled = True
            return 0, 0
        from sqlmodel import select

        from .models import DocumentRow

        with self._lock:
            started = time.perf_counter()
            if not self._features:
                self._load_cache()
            with self.wiki.session() as session:
                expected = {i: (rev, path) for i, rev, path in session.exec(
                    select(DocumentRow.id, DocumentRow.revision, DocumentRow.path))}
            stale = [i for i, (rev, _) in expected.items()
                     if i not in self._features or self._features[i].revision != rev]
            gone = [i for i in self._features if i not in expected]
            for ident in gone:
                self.remove(ident)
            read = 0
            for ident in stale:
                try:
                    doc = self.wiki.store.read(expected[ident][1])
                except Exception:  # noqa: BLE001 - changed or broken since; a sync catches it
                    continue
                if doc.id == ident:
                    self.add(doc)
                    read += 1
            self._reconciled = True
            if read or gone:
                log.info("similar: read %d document(s), dropped %d in %.1f s", read, len(gone),
                         time.perf_counter() - started)
            if self._dirty:
                self.save_cache()
            return read, len(gone)

    def _ensure(self) -> None:
        if not self._reconciled:
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - answer with what is there
                log.exception("similar: reconcile failed")
                self._reconciled = True

    # -- the cache ------------------------------------------------------------------------------

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            data = json.loads(self.cache_path.read_text("utf-8"))
            if data.get("version") != CACHE_VERSION:
                return
            for item in data.get("documents", []):
                self.put(Features.from_json(item))
            self._dirty = False
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt from the files
            log.warning("similar: ignoring the unreadable cache %s", self.cache_path)
            with self._lock:
                for ident in list(self._features):
                    self._remove(ident)

    def save_cache(self) -> None:
        """Write the features to :attr:`cache_path` (atomically)."""
        if self.cache_path is None:
            return
        with self._lock:
            data = {"version": CACHE_VERSION,
                    "documents": [f.to_json() for f in self._features.values()]}
            self._dirty = False
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_path.parent, prefix=".features-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.cache_path)
        except OSError:
            log.warning("similar: could not write %s", self.cache_path, exc_info=True)
            with contextlib.suppress(Exception):
                os.unlink(tmp)

    def __len__(self) -> int:
        return len(self._features)

    def get(self, ident: str) -> Features | None:
        return self._features.get(ident)

    # -- querying ------------------------------------------------------------------------------

    def similar_to(self, doc: d.Document, **kwargs) -> SimilarResult:
        """Documents similar to ``doc`` (not itself, nor those it links or dismissed)."""
        return self.similar(**{**document_query(doc), **kwargs})

    def generation(self) -> Any:
        """Changes whenever the search index does (every save); ``None`` when unknown."""
        try:
            s = self._searcher()
            return s.ixreader.generation() if s is not None else None
        except Exception:  # noqa: BLE001 - unknown: callers do not cache
            return None

    def similar_to_cached(self, doc: d.Document, limit: int) -> SimilarResult:
        """:meth:`similar_to` for a document page, remembered until the document or the index
        changes, so reading a page between saves does not rank the whole wiki again."""
        generation = self.generation()
        key = (doc.id, doc.revision, generation, limit)
        if generation is not None and doc.revision:
            with self._panel_lock:
                hit = self._panel_cache.get(key)
            if hit is not None:
                return hit
        result = self.similar_to(doc, limit=limit)
        if generation is not None and doc.revision:
            with self._panel_lock:
                if len(self._panel_cache) >= 512:
                    self._panel_cache.clear()
                self._panel_cache[key] = result
        return result

    def similar(self, text: str, *, title: str = "", services: Iterable[str] = (),
                tags: Iterable[str] = (), signatures: Iterable[str] = (),
                exclude: Iterable[str] = (), before: Any = None, kind: str | None = None,
                limit: int = 10, source: str | None = None,
                weights: Weights | None = None) -> SimilarResult:
        """The documents most like ``text``, best first, each with its reasons.

        ``exclude`` ids (unknown ones are ignored) and, with ``before``, documents that did not
        happen before it (see :func:`parse_before`) are left out, as are, with ``source``, that
        document, those it links to or dismissed and those that dismissed it. Raises
        :class:`BadQuery` for an empty text, an unknown ``kind`` or a malformed ``before``.
        """
        started = time.perf_counter()
        weights = weights or self.weights
        result = SimilarResult()
        text = sig.decode_paste(text if isinstance(text, (str, bytes)) else str(text or ""))
        title = str(title or "")
        if not (text.strip() or title.strip()):
            raise BadQuery("The text is empty: give the words of an incident, an error or a "
                           "log to compare with.")
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS]
            result.messages.append(f"Only the first {MAX_TEXT_CHARS:,} characters of the text "
                                   "were compared.")
        if kind is not None and kind not in d.KINDS:
            raise BadQuery(f"“kind” must be one of {', '.join(d.KINDS)}.")
        query = _Query(
            text=text, title=title[:d.MAX_TITLE * 2],
            services=[str(s) for s in services if str(s).strip()],
            tags=[str(t) for t in tags if str(t).strip()],
            signatures=_ids(list(signatures)),
            exclude={i for i in (d.normalise_id(x) for x in exclude) if i},
            before=parse_before(before), kind=kind,
            limit=max(1, min(int(limit), MAX_LIMIT)), source=d.normalise_id(source))
        self._ensure()
        with self._lock:
            result.suggestions, result.lists = self._rank(query, weights, result.messages)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    # -- ranking ----------------------------------------------------------------------------------

    def _allowed(self, q: _Query) -> Callable[[str], bool]:
        hidden = set(q.exclude)
        source = self._features.get(q.source) if q.source else None
        if q.source:
            hidden.add(q.source)
        if source is not None:
            hidden.update(source.links, source.not_related)

        def allowed(ident: str) -> bool:
            f = self._features.get(ident)
            if f is None or ident in hidden:
                return False
            if q.kind and f.kind != q.kind:
                return False
            if q.before is not None and (f.when is None or f.when >= q.before):
                return False
            if q.source and (q.source in f.not_related or q.source in f.links):
                return False
            return True

        return allowed

    def _rank(self, q: _Query, w: Weights, messages: list[str]):
        allowed = self._allowed(q)
        lists: dict[str, dict[str, float]] = {}
        detail: dict[str, dict[str, list[str]]] = {}  # signal → id → what it shares

        lexical = self._lexical(q, w, allowed, messages)
        for name, (scores, shared) in lexical.items():
            detail[name] = shared
            if name in SIGNALS:
                lists[name] = scores

        q_errors = error_keys(q.title + "\n" + q.text)
        lists["errors"], detail["errors"] = self._overlap(self._by_error, q_errors, allowed)
        q_lines = line_templates(q.text)
        lists["lines"], detail["lines"] = self._overlap(self._by_line, q_lines, allowed)

        q_sigs = list(q.signatures)
        if self.signatures is not None:
            try:
                matched = self.signatures.match(q.title + "\n" + q.text).confirmed
                q_sigs += [m.id for m in matched if m.id not in q_sigs]
            except Exception:  # noqa: BLE001 - signatures are one signal among several
                log.exception("similar: signature matching failed")
        lists["signatures"], detail["signatures"] = self._signatures(q_sigs, allowed)

        found_services, found_tags = self._named(q)
        lists["services"], detail["services"] = self._shared_names(
            self._by_service, found_services, allowed)
        lists["tags"], detail["tags"] = self._shared_names(self._by_tag, found_tags, allowed)

        fused = self._fuse(lists, w)
        top = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:q.limit]
        total = sum(w.weight(s) for s in SIGNALS) or 1.0
        suggestions = []
        for ident, score in top:
            f = self._features[ident]
            signals = {s: round(lists[s][ident], 4) for s in SIGNALS if ident in lists[s]}
            suggestions.append(Suggestion(
                id=ident, kind=f.kind, title=f.title, slug=f.slug,
                score=round(score / total if w.fusion == "score" else score, 3),
                reasons=self._reasons(ident, signals, detail, q_errors, q_lines),
                signals=signals, date=f.day))
        ranked = {s: sorted(v.items(), key=lambda kv: -kv[1]) for s, v in lists.items()}
        return suggestions, ranked

    def _fuse(self, lists: dict[str, dict[str, float]], w: Weights) -> dict[str, float]:
        fused: dict[str, float] = {}
        for name, scores in lists.items():
            weight = w.weight(name)
            if not weight or not scores:
                continue
            if w.fusion == "rrf":
                ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
                for rank, (ident, _) in enumerate(ranked, 1):
                    fused[ident] = fused.get(ident, 0.0) + weight / (w.rrf_k + rank)
            else:
                for ident, value in scores.items():
                    fused[ident] = fused.get(ident, 0.0) + weight * value
        return fused

    # -- signals ----------------------------------------------------------------------------------

    def _searcher(self):
        if self.search is None:
            return None
        index = getattr(self.search, "index", self.search)  # a wiki.search.Search or its index
        return index.searcher()

    def _lexical(self, q: _Query, w: Weights, allowed, messages: list[str]):
        """The signals read from the search index: ``terms``, ``cosine``, ``title``, ``exact``."""
        empty = {"terms": ({}, {}), "cosine": ({}, {}), "title": ({}, {}), "exact": ({}, {})}
        try:
            s = self._searcher()
        except Exception:  # noqa: BLE001 - e.g. the index is being rebuilt
            log.warning("similar: the search index is unavailable", exc_info=True)
            messages.append("The search index is unavailable for a moment: words were not "
                            "compared.")
            return empty
        if s is None:
            return empty
        try:
            out = dict(empty)
            words = self._query_words(s, q, w)
            if words is not None:
                out.update(self._prose(s, words, w, allowed))
                out["title"] = self._title_cover(s, words, w, allowed)
                out["identifiers"] = ({}, words.shown)
            out["exact"] = self._exact(s, q, w, allowed)
            return out
        except Exception:  # noqa: BLE001
            log.exception("similar: lexical search failed")
            messages.append("Words could not be compared this time.")
            return empty

    def _query_words(self, s, q: _Query, w: Weights) -> _Words | None:
        """The text's words as the ``body`` field analyses them, its title's counted thrice,
        plus (``Weights.identifier_parts``) the words of its identifiers."""
        if "body" not in s.schema.names():
            return None
        analyzer = _prose_analyzer(s.schema)
        words = _Words()
        for chunk, times in ((q.title, 3), (q.text, 1)):
            if not chunk:
                continue
            for token in analyzer(chunk, mode="query", chars=True):
                words.counts[token.text] += times
                if token.text not in words.surface:
                    words.surface[token.text] = chunk[token.startchar:token.endchar].lower()
            if w.identifier_parts:
                parts, idents = self._parts(analyzer, chunk)
                for stem, n in parts.items():
                    words.counts[stem] += n * times
                    if stem not in words.idents:
                        words.idents[stem] = idents[stem]
                    if stem not in words.surface:
                        found = next((p for p in identifier_parts(idents[stem])
                                      if self._stems.get(p) == stem), stem)
                        words.surface[stem] = found.lower()
        return words

    def _prose(self, s, words: _Words, w: Weights, allowed) -> dict:
        """``terms``: the text's :attr:`Weights.key_terms` heaviest words as BM25F over
        ``body`` (every word of a document), ``title`` and ``summary``; ``cosine``: its
        :attr:`Weights.cosine_terms` heaviest words as tf-idf cosine over ``body``
        (length-normalised: a long document does not win by its length). A word counts where
        the field has it and, with :attr:`Weights.identifier_parts`, where a document's
        identifier is made of it (``DFSClient`` has ``dfs`` and ``client``).

        Scored here from the posting lists rather than with ``Searcher.search``: a union of
        30–90 weighted terms is what Whoosh's matcher tree is slowest at (its block-quality
        replacement ran 5× longer than reading the postings).
        """
        names = set(s.schema.names())
        wanted = max(w.key_terms, w.cosine_terms if w.cosine else 0)
        empty = {"terms": ({}, {}), "cosine": ({}, {})}
        if wanted <= 0:
            return empty
        reader = s.reader()
        n_docs = max(s.doc_count(), 1)
        parts = w.identifier_parts
        weighted = []
        for term, tf in words.counts.items():
            df = self._df(reader, term) if parts else reader.doc_frequency("body", term)
            words.df[term] = df
            if not df or df > n_docs * 0.5 and n_docs > 20:
                continue
            weighted.append(((1 + math.log(tf)) * _idf(n_docs, df), term, df))
        weighted.sort(key=lambda x: (-x[0], x[1]))
        if not weighted:
            return empty
        key_terms = {term for _, term, _ in weighted[:w.key_terms]}
        fields = [(f, b) for f, b in (("title", w.title_boost), ("summary", w.summary_boost))
                  if b and f in names]
        top = weighted[0][0]
        bm25: dict[int, float] = {}
        cosine: dict[int, float] = {}
        matched: dict[int, list[str]] = {}
        via_parts: dict[int, list[str]] = {}
        budget = MAX_COSINE_POSTINGS
        for weight, term, df in weighted[:wanted]:
            qw = weight / top
            key = term in key_terms
            if not key:  # a cosine-only term: no BM25, and a bounded cost
                if df > budget:
                    continue
                budget -= df
            idf = _idf(n_docs, df)
            tfs, only_parts = self._field_tfs(s, "body", term, parts)
            for docnum in only_parts:
                via_parts.setdefault(docnum, []).append(term)
            for docnum, tf in tfs.items():
                matched.setdefault(docnum, []).append(term)  # heaviest first
                cosine[docnum] = cosine.get(docnum, 0.0) + qw * (1 + math.log(tf)) * idf
            if not key:
                continue
            self._add_bm25(s, bm25, "body", tfs, idf, qw)
            for name, boost in fields:
                field_tfs = self._field_tfs(s, name, term, parts)[0]
                if field_tfs:
                    field_df = self._df(reader, term, name) if parts else \
                        reader.doc_frequency(name, term)
                    self._add_bm25(s, bm25, name, field_tfs, _idf(n_docs, field_df), qw * boost)
        ids = self._ids_column(s)
        out = {}
        for signal, totals in (("terms", bm25), ("cosine", self._by_length(cosine, ids))):
            scores: dict[str, float] = {}
            shared: dict[str, list[str]] = {}
            for docnum, score in _best_first(totals):
                ident = ids(docnum)
                if not ident or not allowed(ident):
                    continue
                scores[ident] = score
                shared[ident] = [words.surface.get(t, t) for t in matched.get(docnum, [])]
                found = self._identifiers(ident, matched.get(docnum, []), words,
                                          via_parts.get(docnum, ()))
                if found:
                    words.shown[ident] = found
                if len(scores) >= LIST_DEPTH:
                    break
            best = max(scores.values(), default=0.0) or 1.0
            out[signal] = ({i: v / best for i, v in scores.items()}, shared)
        return out

    def _identifiers(self, ident: str, terms: list[str], words: _Words, via_parts) -> list[str]:
        """The identifiers whose words made ``terms`` match: the text's (``DFSClient`` found
        ``DFS client``) or the document's (matched only through its parts)."""
        found = []
        f = self._features.get(ident)
        for term in terms[:REASON_TERMS * 2]:
            name = words.idents.get(term)
            if name is None and term in via_parts and f is not None:
                name = f.idents.get(term)
            if name and name not in found:
                found.append(name)
        return found

    def _title_cover(self, s, words: _Words, w: Weights, allowed):
        """``title``: documents whose title's words the text has, scored by the share of the
        title's idf mass the text covers (plus one rare word's worth of doubt, so that a
        one-word title is not a full match): a past incident whose headline is all in the new
        text is about the same thing.

        The candidates are ranked first by what the text's less common words give them (cheap:
        the title postings), and the best :data:`LIST_DEPTH` × 3 allowed ones are scored
        exactly; a title whose common words would have lifted it from further down is missed,
        which is the price of not scoring thousands of titles per query."""
        if not w.title or not self._by_title:
            return {}, {}
        reader = s.reader()
        n_docs = max(s.doc_count(), 1)
        parts = w.identifier_parts
        q_terms = words.counts
        idf_of: dict[str, float] = {}

        def idf(term: str) -> float:
            value = idf_of.get(term)
            if value is None:
                df = words.df.get(term)
                if df is None:
                    df = self._df(reader, term) if parts else reader.doc_frequency("body", term)
                value = idf_of[term] = _idf(n_docs, max(df, 1))
            return value

        # 1. what the text's less common words give each title (a title sharing only common
        # words scores too little to matter), from the title postings
        cap = n_docs * 0.1 if n_docs > 20 else n_docs
        partial: dict[str, float] = {}
        for term in q_terms:
            found = _docs(self._by_title, term)
            if found and len(found) <= cap:
                weight = idf(term)
                for ident in found:
                    partial[ident] = partial.get(ident, 0.0) + weight
        doubt = _idf(n_docs, 1)
        features = self._features

        def mass(f: Features, terms) -> float:
            return f.title_mass if parts and f.title_mass else sum(idf(t) for t in terms)

        def title_terms(f: Features):
            return f.title_terms if parts else \
                [t for t in f.title_terms if t not in f.title_parts]

        order = []
        for ident, value in partial.items():
            f = features.get(ident)
            if f is not None:
                order.append((value / (mass(f, title_terms(f)) + doubt), ident))
        order.sort(reverse=True)
        # 2. the best of those that are allowed, scored exactly (every word counted)
        scores: dict[str, float] = {}
        common_of: dict[str, list[str]] = {}
        for _, ident in order:
            if not allowed(ident):
                continue
            f = features[ident]
            terms = title_terms(f)
            common = [t for t in terms if t in q_terms]
            if common:
                scores[ident] = sum(idf(t) for t in common) / (mass(f, terms) + doubt)
                common_of[ident] = common
            if len(scores) >= LIST_DEPTH * 3:
                break
        top = heapq.nlargest(LIST_DEPTH, scores.items(), key=_second)
        shared = {}
        for ident, _ in top:
            terms = sorted(common_of[ident], key=lambda t: (-idf(t), t))
            shared[ident] = [words.surface.get(t, t) for t in terms]
        return dict(top), shared

    def _add_bm25(self, s, totals: dict[int, float], fieldname: str, tfs: dict[int, float],
                  idf: float, weight: float) -> None:
        avg = s.avg_field_length(fieldname, 1.0) or 1.0
        lengths = self._lengths(s, fieldname)
        reader = s.reader()
        for docnum, tf in tfs.items():
            dl = lengths.get(docnum)
            if dl is None:
                dl = lengths[docnum] = reader.doc_field_length(docnum, fieldname, 1) or 1
            totals[docnum] = totals.get(docnum, 0.0) + weight * idf * tf * (BM25_K1 + 1) / (
                tf + BM25_K1 * (1 - BM25_B + BM25_B * dl / avg))

    def _field_tfs(self, s, fieldname: str, term: str, parts: bool
                   ) -> tuple[dict[int, float], list[int]]:
        """``{docnum: tf}`` of ``term`` in the field, identifier parts counted in (``body``,
        ``title``), and the documents that have it only as a part."""
        tfs = dict(self._tfs(s, fieldname, term))
        only_parts = []
        extra = {"body": self._by_part, "title": self._by_title_part}.get(fieldname)
        if parts and extra:
            found = _docs(extra, term)
            if found:
                docnums = self._docnums(s)
                for ident in found:
                    docnum = docnums.get(ident)
                    if docnum is None:
                        continue
                    add = self._features[ident].parts.get(term, 1) if fieldname == "body" else 1
                    if docnum not in tfs:
                        only_parts.append(docnum)
                    tfs[docnum] = tfs.get(docnum, 0) + add
        return tfs, only_parts

    def _exact(self, s, q: _Query, w: Weights, allowed):
        """``exact``: the text's error tokens as the index keeps them whole, the
        :attr:`Weights.exact_terms` rarest, as BM25 over the ``exact`` field."""
        if "exact" not in s.schema.names() or w.exact_terms <= 0:
            return {}, {}
        analyzer = s.schema["exact"].analyzer
        counts: Counter = Counter()
        surface: dict[str, str] = {}
        for chunk in (q.title, q.text):
            if not chunk:
                continue
            for token in analyzer(chunk, mode="query", chars=True):
                counts[token.text] += 1
                if token.text not in surface:
                    surface[token.text] = chunk[token.startchar:token.endchar]
        reader = s.reader()
        n_docs = max(s.doc_count(), 1)
        weighted = []
        for term, tf in counts.items():
            if len(term) < 3 or not _LETTER_RE.search(term):
                continue  # numbers, dates, addresses: values, not error strings
            df = reader.doc_frequency("exact", term)
            if not df or df > n_docs * 0.5 and n_docs > 20:
                continue
            weighted.append(((1 + math.log(tf)) * _idf(n_docs, df), term, df))
        weighted.sort(key=lambda x: (-x[0], x[1]))
        if not weighted:
            return {}, {}
        top = weighted[0][0]
        bm25: dict[int, float] = {}
        matched: dict[int, list[str]] = {}
        for weight, term, df in weighted[:w.exact_terms]:
            tfs = dict(self._tfs(s, "exact", term))
            for docnum in tfs:
                matched.setdefault(docnum, []).append(term)
            self._add_bm25(s, bm25, "exact", tfs, _idf(n_docs, df), weight / top)
        ids = self._ids_column(s)
        scores: dict[str, float] = {}
        shared: dict[str, list[str]] = {}
        for docnum, score in _best_first(bm25):
            ident = ids(docnum)
            if not ident or not allowed(ident):
                continue
            scores[ident] = score
            shared[ident] = [surface.get(t, t) for t in matched.get(docnum, [])]
            if len(scores) >= LIST_DEPTH:
                break
        best = max(scores.values(), default=0.0) or 1.0
        return {i: v / best for i, v in scores.items()}, shared

    def _by_length(self, totals: dict[int, float], ids) -> dict[int, float]:
        """Dot products divided by each document's tf-idf length (those without one skipped)."""
        out = {}
        for docnum, dot in totals.items():
            f = self._features.get(ids(docnum) or "")
            if f is not None and f.norm:
                out[docnum] = dot / f.norm
        return out

    def _tfs(self, s, fieldname: str, term: str):
        """``(docnum, tf)`` of every document of ``s`` with ``term`` in the field."""
        for leaf, offset in s.leaf_searchers():
            reader = leaf.reader()
            if reader.doc_frequency(fieldname, term):
                for sub, tf in reader.postings(fieldname, term).items_as("frequency"):
                    yield offset + sub, tf

    def _generation(self, s):
        try:
            return (id(s), s.ixreader.generation())
        except Exception:  # noqa: BLE001
            return (id(s), None)

    def _lengths(self, s, fieldname: str) -> dict[int, int]:
        """Field lengths by document number, kept while the searcher is current."""
        key = (self._generation(s), fieldname)
        cache = self._length_cache
        if cache.get("key_" + fieldname) != key:
            cache["key_" + fieldname] = key
            cache[fieldname] = {}
        return cache[fieldname]

    def _ids_column(self, s) -> Callable[[int], str | None]:
        """Document number → id for searcher ``s`` (read once per index generation)."""
        key = self._generation(s)
        if self._id_cache[0] != key:
            reader = s.reader()
            try:
                column = reader.column_reader("id")
                ids = [_text(column[n]) if column[n] else None
                       for n in range(reader.doc_count_all())]
            except Exception:  # noqa: BLE001 - no id column: stored fields (slower)
                ids = [None] * reader.doc_count_all()
                for n in reader.all_doc_ids():
                    ids[n] = s.stored_fields(n).get("id")
            self._id_cache = (key, ids)
        ids = self._id_cache[1]
        return lambda n: ids[n] if 0 <= n < len(ids) else None

    def _docnums(self, s) -> dict[str, int]:
        """Id → document number for searcher ``s`` (once per index generation)."""
        self._ids_column(s)
        key = self._id_cache[0]
        if self._docnum_cache[0] != key:
            self._docnum_cache = (key, {i: n for n, i in enumerate(self._id_cache[1]) if i})
        return self._docnum_cache[1]

    def _overlap(self, index: Postings, items: dict[str, str], allowed):
        """Candidates sharing items (error tokens, line templates) with the text, scored by the
        share of the text's idf mass they hold."""
        n_docs = max(len(self._features), 1)
        idf = {}
        for key in items:
            df = len(_docs(index, key))
            if df and (df <= n_docs * 0.2 or n_docs <= 20):
                idf[key] = math.log(1 + n_docs / df)
        if not idf:
            return {}, {}
        mass = sum(idf.values()) + math.log(1 + n_docs)  # one unseen item's worth of doubt
        scores: dict[str, float] = {}
        shared: dict[str, list[str]] = {}
        for key, weight in sorted(idf.items(), key=lambda kv: -kv[1]):
            for ident in _docs(index, key):
                if not allowed(ident):
                    continue
                scores[ident] = scores.get(ident, 0.0) + weight
                shared.setdefault(ident, []).append(items[key])
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:LIST_DEPTH]
        return ({i: s / mass for i, s in top}, {i: shared[i] for i, _ in top})

    def _signatures(self, q_sigs: list[str], allowed):
        scores: dict[str, float] = {}
        shared: dict[str, list[str]] = {}
        if not q_sigs:
            return scores, shared
        for ident in q_sigs:
            # documents naming the signature, the signature itself, and those it links to
            signature = self._features.get(ident)
            linked = signature.links if signature is not None else ()
            for other in {*_docs(self._by_signature, ident), *linked}:
                if allowed(other):
                    scores[other] = scores.get(other, 0.0) + 1.0
                    shared.setdefault(other, []).append(ident)
        # one confirmed signature is the whole story: the bug is known, this is where it was
        return {i: 1.0 for i in scores}, shared

    def _name_pattern(self) -> tuple[re.Pattern | None, dict[str, str]]:
        """One regex finding every known service and tag name in folded text."""
        if self._names is None:
            names = {}
            for index in (self._by_service, self._by_tag):
                for key in index:
                    if len(key) >= 4 and not key.isdigit():
                        names.setdefault(key, key)
            if names:
                alternatives = "|".join(re.escape(n).replace(r"\ ", r"\s+")
                                        for n in sorted(names, key=len, reverse=True))
                pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
            else:
                pattern = None
            self._names = (pattern, names)
        return self._names

    def _named(self, q: _Query) -> tuple[list[str], list[str]]:
        """Services and tags given with the query, plus known ones the text names."""
        services = [_fold(s) for s in q.services]
        tags = [_fold(t) for t in q.tags]
        pattern, _ = self._name_pattern()
        if pattern is not None:
            folded = _fold(q.title + " " + q.text[:20_000])
            for m in pattern.finditer(folded):
                name = " ".join(m.group(0).split())
                if name in self._by_service and name not in services:
                    services.append(name)
                if name in self._by_tag and name not in tags:
                    tags.append(name)
        return services, tags

    def _shared_names(self, index: Postings, names: list[str], allowed):
        scores: dict[str, float] = {}
        shared: dict[str, list[str]] = {}
        n_docs = max(len(self._features), 1)
        weights = {}
        for name in dict.fromkeys(names):
            df = len(_docs(index, name))
            if df and (df <= n_docs * 0.3 or n_docs <= 20):
                weights[name] = math.log(1 + n_docs / df)
        if not weights:
            return scores, shared
        mass = sum(weights.values())
        for name, weight in weights.items():
            for ident in _docs(index, name):
                if allowed(ident):
                    scores[ident] = scores.get(ident, 0.0) + weight / mass
                    shared.setdefault(ident, []).append(name)
        return scores, shared

    # -- reasons ------------------------------------------------------------------------------

    def _reasons(self, ident: str, signals: dict[str, float], detail, q_errors, q_lines
                 ) -> list[Reason]:
        f = self._features[ident]
        reasons = []
        if "signatures" in signals:
            sigs = detail["signatures"].get(ident, [])
            names = []
            for s in sigs:
                other = self._features.get(s)
                names.append(f"{s} ({other.title})" if other and s != ident else s)
            text = ("It is the signature this text matches" if ident in sigs
                    else f"Linked to the same signature: {', '.join(names)}")
            reasons.append(Reason("signatures", text, sigs))
        errors = detail["errors"].get(ident, [])[:REASON_ERRORS]
        if errors:
            reasons.append(Reason("errors", "Same error: " + ", ".join(errors), errors))
        seen = {e.lower() for e in errors}
        exact = [t for t in detail["exact"].get(ident, []) if t.lower() not in seen]
        exact = exact[:REASON_ERRORS]
        if exact:
            reasons.append(Reason("exact", "Shared error strings and identifiers: "
                                  + ", ".join(exact), exact))
        seen.update(t.lower() for t in exact)
        lines = detail["lines"].get(ident, [])
        if lines:
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            reasons.append(Reason("lines", f"Same log line: {lines[0][:160]}{more}", lines[:3]))
        title = [t for t in detail.get("title", {}).get(ident, []) if _LETTER_RE.search(t)]
        if title and "title" in signals:
            reasons.append(Reason("title", "Its title's words are in the text: "
                                  + ", ".join(title[:REASON_TERMS]), title[:REASON_TERMS]))
        terms = [t for t in detail["terms"].get(ident) or detail["cosine"].get(ident) or []
                 if _LETTER_RE.search(t) and t.lower() not in seen][:REASON_TERMS]
        if terms:
            names = detail.get("identifiers", {}).get(ident, [])[:REASON_ERRORS]
            text = "Shared key terms: " + ", ".join(terms)
            if names:
                text += f" (words of {', '.join(names)})"
            reasons.append(Reason("terms", text, terms))
        for name, label in (("services", "service"), ("tags", "tag")):
            values = detail[name].get(ident, [])
            if values:
                originals = {_fold(v): v for v in (f.services if name == "services" else f.tags)}
                shown = [originals.get(v, v) for v in values]
                plural = "s" if len(shown) > 1 else ""
                reasons.append(Reason(name, f"Same {label}{plural}: {', '.join(shown)}", shown))
        return reasons


# Inverted indexes: key → the ids of the documents that have it. Most keys (a log line's
# template) belong to one document: those hold the id itself, not a set of one, so that a big
# wiki's indexes are not a million small sets for the garbage collector to walk.
Postings = dict  # dict[str, str | set[str]]


def _post(index: Postings, key: str, ident: str) -> None:
    ids = index.get(key)
    if ids is None:
        index[key] = ident
    elif isinstance(ids, str):
        if ids != ident:
            index[key] = {ids, ident}
    else:
        ids.add(ident)


def _unpost(index: Postings, key: str, ident: str) -> None:
    ids = index.get(key)
    if ids is None:
        return
    if isinstance(ids, str):
        if ids == ident:
            del index[key]
        return
    ids.discard(ident)
    if len(ids) == 1:
        index[key] = next(iter(ids))
    elif not ids:
        del index[key]


def _docs(index: Postings, key: str) -> tuple[str, ...] | set[str]:
    ids = index.get(key)
    if ids is None:
        return ()
    return (ids,) if isinstance(ids, str) else ids


def _words(analyzer, text: str) -> list[str]:
    """The words ``analyzer`` gives for ``text``: by :func:`wiki.search.prose_words` when it is
    the search index's prose analyzer (the same words, about 4× faster)."""
    if _is_prose(analyzer):
        return wsearch.prose_words(text)
    return [t.text for t in analyzer(text, mode="query")]


def _is_prose(analyzer) -> bool:
    """Whether ``analyzer`` (a schema's, unpickled with the index) is the prose analyzer."""
    verdict = _PROSE_CHECKED.get(id(analyzer))
    if verdict is None or verdict[0] is not analyzer:
        verdict = _PROSE_CHECKED[id(analyzer)] = (analyzer, analyzer == wsearch.PROSE_ANALYZER)
    return verdict[1]


_PROSE_CHECKED: dict[int, tuple] = {}  #: id(analyzer) → (analyzer, is it the prose one)


def _prose_analyzer(schema):
    """How the index analyses prose: the ``title`` field's analyzer, which gives the same words
    as the ``body``'s (the index's prose fields share their filters) without whatever the body's
    may note for other fields while a document is indexed."""
    return schema["title" if "title" in schema.names() else "body"].analyzer


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _best_first(totals: dict[int, float]):
    """``(docnum, score)``, best first: the top few hundred by a heap (most callers stop
    there), the rest sorted only if asked for."""
    head = heapq.nlargest(LIST_DEPTH * 5, totals.items(), key=_second)
    yield from head
    if len(head) < len(totals):
        yield from sorted(totals.items(), key=_second, reverse=True)[len(head):]


def _second(item):
    return item[1]


#: A sync that changes at least this many documents writes the features cache at once.
SAVE_AFTER_CHANGES = 50


def _idf(n_docs: int, df: int) -> float:
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


# --------------------------------------------------------------------------------------------
# Curating: link, not related


class CurateError(Exception):
    """A link or dismissal that cannot be made (the message says why)."""


def _add_to(wiki, ident: str, fieldname: str, other: str, base_revision: str | None,
            author: str | None, message: str) -> d.Document:
    """Append ``other`` to the id list ``fieldname`` of ``ident`` (one revision), unless there.

    With ``base_revision`` a newer revision is refused (:class:`wiki.store.StaleRevision`);
    without it the current revision is used, re-read once if it changes meanwhile.
    """
    from .store import StaleRevision

    for attempt in range(2):
        doc = wiki.get(ident)
        values = _ids(doc.front_matter.get(fieldname))
        if other in values:
            return doc
        fm = dict(doc.front_matter)
        fm[fieldname] = [*values, other]
        try:
            return wiki.update(doc.id, fm, doc.body,
                               base_revision if base_revision else doc.revision,
                               author=author, message=message)
        except StaleRevision:
            if base_revision or attempt:
                raise
    raise AssertionError("unreachable")


def _pair(wiki, source: str, target: str) -> tuple[d.Document, d.Document]:
    a, b = d.normalise_id(source), d.normalise_id(target)
    if not a or not b:
        raise CurateError("Give two document ids, like PM-3 and SIG-2.")
    if a == b:
        raise CurateError("A document cannot be linked to itself.")
    return wiki.get(a), wiki.get(b)


def link(wiki, source: str, target: str, author: str | None = None,
         base_revision: str | None = None) -> tuple[d.Document, d.Document]:
    """Write each id into the other's ``related`` (a normal revision of each document).

    ``base_revision`` is the revision of ``source`` the caller started from (the editor's),
    refused when it is no longer current. Raises :class:`wiki.store.NotFound`,
    :class:`CurateError` or :class:`wiki.store.StaleRevision`.
    """
    a, b = _pair(wiki, source, target)
    first = _add_to(wiki, a.id, "related", b.id, base_revision, author,
                    f"Link {b.id} as related (similar incidents)")
    second = _add_to(wiki, b.id, "related", a.id, None, author,
                     f"Link {a.id} as related (similar incidents)")
    return first, second


def dismiss(wiki, source: str, target: str, author: str | None = None,
            base_revision: str | None = None) -> tuple[d.Document, d.Document]:
    """Remember that the two documents are not related: each id goes into the other's
    ``not_related``, so neither is suggested for the other again."""
    a, b = _pair(wiki, source, target)
    first = _add_to(wiki, a.id, NOT_RELATED, b.id, base_revision, author,
                    f"{b.id} is not related (similar incidents)")
    second = _add_to(wiki, b.id, NOT_RELATED, a.id, None, author,
                     f"{a.id} is not related (similar incidents)")
    return first, second


def coerce_ids(values: Sequence | None) -> list[str]:
    """Ids of a list from a request, unknown or malformed ones dropped."""
    return _ids(list(values or []))
