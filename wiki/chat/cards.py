"""A document as a card: what a link preview, an unfurl or a chat answer shows of it. No Flask.

One :class:`Card` feeds every place a document is shown outside its own page: the Open Graph
and Twitter meta of the page (``templates/_meta.html``), the oEmbed answer, Slack unfurls and
answers (Block Kit, :mod:`wiki.chat.slack`) and Mattermost answers (:mod:`wiki.chat.webhook`).
Every value is plain text taken from content: each renderer escapes it for its own format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from .. import documents as d

#: Length of the one-line summary (Open Graph descriptions are cut around 200 by most chats).
SUMMARY_CHARS = 200
#: Length of "what it looks like" for a signature.
LOOKS_LIKE_CHARS = 160

_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url), ![alt](src)
_WIKI_LINK_RE = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]*))?\]\]")  # [[PM-7]], [[PM-7|text]]
#: ``**bold**``, ``_it_``, ``~~gone~~``, `` `code` `` — not the ``*`` of ``7*7`` or ``snake_case``.
_EMPHASIS_RE = re.compile(r"(?<![\w*_~`])(\*\*|__|\*|_|~~|`)(?=\S)(.+?)(?<=\S)\1(?![\w*_~`])")
_HTML_TAG_RE = re.compile(r"<[^>\n]{1,200}>")


@dataclass(frozen=True)
class Card:
    id: str
    kind: str  #: postmortem | signature
    title: str
    url: str  #: the document's page, absolute
    short_url: str  #: ``…/PM-7``, absolute
    status: str
    summary: str  #: one line of plain text, may be ""
    severity: str | None = None
    when: str | None = None  #: ISO date: a postmortem's date, a signature's last sighting
    services: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    looks_like: str | None = None  #: a signature's first example line (or first pattern)
    #: ``(label, value)`` pairs worth showing beside the title, in order.
    facts: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """``PM-7: Checkout latency after cache flush``."""
        return f"{self.id}: {self.title}"

    @property
    def kind_label(self) -> str:
        return "Postmortem" if self.kind == "postmortem" else "Bug signature"

    def description(self, limit: int = 300) -> str:
        """One line for a link preview: severity · status · services — summary."""
        head = " · ".join(x for x in (self.severity, self.status,
                                      ", ".join(self.services[:4])) if x)
        parts = [head] if head else []
        if self.looks_like:
            parts.append(f"Looks like: {self.looks_like}")
        if self.summary:
            parts.append(self.summary)
        return shorten(" — ".join(parts), limit)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters (with …)."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:—-") + "…"


def plain(markdown: str) -> str:
    """Markdown of a summary paragraph as plain text: links, ``[[ids]]``, emphasis and tags go."""
    text = _WIKI_LINK_RE.sub(lambda m: m.group(2) or m.group(1), markdown or "")
    text = _LINK_RE.sub(lambda m: m.group(1), text)
    text = _HTML_TAG_RE.sub("", text)
    for _ in range(2):  # nested emphasis: **_word_**
        text = _EMPHASIS_RE.sub(lambda m: m.group(2), text)
    return " ".join(text.split())


def _iso(value) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def pattern_label(pattern: dict) -> str:
    """A signature pattern as a person reads it: the literal, ``/regex/``, the exception type."""
    kind, value = pattern.get("kind", "literal"), pattern.get("value")
    if kind == "exception":
        value = pattern.get("type") or value
    if isinstance(value, list):
        value = " → ".join(str(v) for v in value)
    value = " ".join(str(value or "").split())
    return f"/{value}/" if kind == "regex" else value


def looks_like(doc: d.Document) -> str | None:
    """What a signature looks like in a log: its first example's first line, else its first
    pattern."""
    for example in doc.get("examples", []):
        line = next((ln.strip() for ln in str(example).splitlines() if ln.strip()), "")
        if line:
            return shorten(line, LOOKS_LIKE_CHARS)
    patterns = doc.get("patterns", [])
    if patterns and isinstance(patterns[0], dict):
        return shorten(pattern_label(patterns[0]), LOOKS_LIKE_CHARS) or None
    return None


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def make_card(doc: d.Document, url: str, short_url: str) -> Card:
    """The card of a document whose page is at ``url`` (absolute) and short link ``short_url``."""
    is_pm = doc.kind is d.POSTMORTEM
    severity = doc.get("severity") if is_pm else None
    services = tuple(str(s) for s in doc.services)
    when = _iso(doc.get("date") or doc.get("started_at")) if is_pm else _iso(doc.get("last_seen"))
    facts: list[tuple[str, str]] = []
    if is_pm:
        if severity:
            facts.append(("Severity", str(severity)))
        facts.append(("Status", doc.status))
        if when:
            facts.append(("Date", when))
        resolve = doc.durations().get("time_to_resolve")
        if resolve is not None and resolve.total_seconds() >= 0:
            facts.append(("Time to resolve", _duration(resolve.total_seconds())))
        if doc.get("root_cause_category"):
            facts.append(("Root cause", str(doc.get("root_cause_category"))))
    else:
        facts.append(("Status", doc.status))
        incidents = doc.get("incidents", [])
        facts.append(("Incidents", ", ".join(incidents[:6]) + (" …" if len(incidents) > 6 else "")
                      if incidents else "none linked"))
        if when:
            facts.append(("Last seen", when))
    if services:
        facts.append(("Services", ", ".join(services[:8]) + (" …" if len(services) > 8 else "")))
    return Card(
        id=doc.id, kind=doc.kind.name, title=doc.title, url=url, short_url=short_url,
        status=doc.status, summary=shorten(plain(doc.summary), SUMMARY_CHARS),
        severity=str(severity) if severity else None, when=when, services=services,
        tags=tuple(str(t) for t in doc.tags), looks_like=None if is_pm else looks_like(doc),
        facts=tuple(facts),
    )
