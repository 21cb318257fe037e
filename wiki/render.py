"""Markdown → safe HTML, with a table of contents and links between documents.

:func:`render_markdown` runs python-markdown (fenced code with Pygments highlighting, tables,
heading anchors + table of contents, sane lists, task lists) and then :func:`clean_html`, an
explicit nh3 allowlist. Document ids become links: ``[[PM-7]]``, ``[[PM-7|a label]]`` and bare
ids in running text (``PM-7``, ``SIG-3``), never inside code spans or code blocks.

No Flask here except in :func:`init_app`, which registers the Jinja filters the templates use.
"""

from __future__ import annotations

import functools
import html
import re
import threading
import xml.etree.ElementTree as etree
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

import markdown
import nh3
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString
from markupsafe import Markup

from . import documents as d

#: ``resolve("PM-7")`` → ``(url, title)`` of the document, or ``None`` when there is none.
Resolver = Callable[[str], "tuple[str, str] | None"]


class TocEntry(NamedTuple):
    level: int
    id: str
    title: str  #: plain text; templates escape it


@dataclass(frozen=True)
class Rendered:
    html: Markup
    toc: tuple[TocEntry, ...] = ()
    links: tuple[str, ...] = ()  #: ids that were linked to documents, each once


# --------------------------------------------------------------------------------------------
# Sanitising

ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "div", "span", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "b", "em", "i", "del", "s", "ins", "mark", "sub", "sup", "small", "kbd", "abbr",
    "ul", "ol", "li", "dl", "dt", "dd", "details", "summary",
    "pre", "code", "a", "img", "input",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
})
#: Attributes allowed per tag. ``id`` only on headings (anchors for the table of contents),
#: ``class`` where our Markdown output puts it (highlighting, task lists, wiki links).
ALLOWED_ATTRIBUTES = {
    **{h: {"id"} for h in ("h1", "h2", "h3", "h4", "h5", "h6")},
    "a": {"href", "title", "class"},
    "img": {"src", "alt", "title"},
    "abbr": {"title"},
    "input": {"checked"},
    "div": {"class"},
    "span": {"class", "title"},
    "code": {"class"},
    "pre": {"class"},
    "ul": {"class"},
    "ol": {"class", "start"},
    "li": {"class"},
    "th": {"align"},
    "td": {"align"},
}
#: Tags removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "noscript", "template",
    "textarea", "select", "svg", "math",
})
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _make_cleaner():
    options = dict(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        # A task-list checkbox is the only input: always a checkbox, always disabled.
        tag_attribute_values={"input": {"type": {"checkbox"}}},
        set_tag_attribute_values={"input": {"disabled": "disabled"}},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
        url_relative=_relative_url,
    )
    if not hasattr(nh3, "Cleaner"):  # nh3 < 0.2.18: no reusable cleaner, no url_relative hook
        options.pop("url_relative")
        return lambda text: nh3.clean(text, **options)
    try:
        return nh3.Cleaner(**options).clean
    except TypeError:  # nh3 without url_relative
        options.pop("url_relative")
        return nh3.Cleaner(**options).clean


#: Control characters, which no real relative URL contains (``java\x01script:`` tricks).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _relative_url(url: str) -> str | None:
    return None if _CONTROL_RE.search(url) else url


_clean = _make_cleaner()


def clean_html(text: str) -> str:
    r"""Keep only the allowlisted tags and attributes of rendered Markdown.

    Threats this blocks:

    * ``<script>``, ``<style>``, ``<iframe>``, ``<object>``/``<embed>``, ``<svg>``/``<math>``
      (script-capable islands) are dropped with their content; ``<form>``, ``<input>`` (other
      than a disabled checkbox), ``<button>``, ``<meta>``, ``<link>``, ``<base>`` and any tag
      not listed in :data:`ALLOWED_TAGS` are stripped, keeping only their text;
    * event handlers (``onerror=``, ``onclick=``, every ``on*`` attribute) and any attribute not
      listed in :data:`ALLOWED_ATTRIBUTES` are removed;
    * ``javascript:``, ``vbscript:`` and ``data:`` URLs: only http, https, mailto and relative
      URLs survive in ``href``/``src``, and relative URLs with control characters (which old
      browsers read past, e.g. ``java\x01script:``) are dropped;
    * style injection: no ``style`` attribute and no ``<style>`` element survive;
    * reverse tabnabbing: every link gets ``rel="noopener noreferrer"``;
    * HTML comments (which can hide conditional-comment tricks) are removed.

    ``id`` and ``class`` are allowed explicitly (nh3 strips them by default) so heading anchors and
    code highlighting keep working.
    """
    return _clean(text)


# --------------------------------------------------------------------------------------------
# Links between documents

#: ``[[PM-7]]`` or ``[[PM-7|label]]``: a target without brackets, pipes or newlines.
WIKI_LINK_RE = r"\[\[([^\[\]|\n]{1,100})(?:\|([^\[\]\n]{1,300}))?\]\]"
_WIKI_LINK_SCAN = re.compile(WIKI_LINK_RE)
_SKIP_TAGS = {"a", "code", "pre", "kbd", "script", "style"}


def mentioned_ids(text: str) -> list[str]:
    """Every id the renderer may try to link in ``text`` (bare and ``[[…]]``), normalised."""
    found = [f"{m.group(1)}-{m.group(2)}" for m in d.ID_IN_TEXT_RE.finditer(text)]
    found += [d.normalise_id(m.group(1)) for m in _WIKI_LINK_SCAN.finditer(text)]
    return [i for i in dict.fromkeys(found) if i]


class _WikiLinkProcessor(InlineProcessor):
    def __init__(self, pattern: str, ext: _LinkExtension):
        super().__init__(pattern)
        self.ext = ext

    def handleMatch(self, m, data):  # noqa: N802 - python-markdown's API
        target, label = m.group(1).strip(), (m.group(2) or "").strip()
        ident = d.normalise_id(target)
        found = self.ext.lookup(ident) if ident else None
        if found:
            url, title = found
            el = etree.Element("a", {"href": url, "class": "wikilink", "title": title})
            el.text = AtomicString(label or ident)
        else:
            el = etree.Element("span", {"class": "missing-link",
                                        "title": f"No document {ident or target}"})
            el.text = AtomicString(label or target)
        return el, m.start(0), m.end(0)


class _BareIdProcessor(Treeprocessor):
    """Turn bare ids in text into links, leaving code, links and pre-formatted text alone."""

    def __init__(self, md, ext: _LinkExtension):
        super().__init__(md)
        self.ext = ext

    def run(self, root):
        self._walk(root)

    def _walk(self, parent):
        if parent.tag in _SKIP_TAGS or "missing-link" in (parent.get("class") or ""):
            return
        if parent.text and not isinstance(parent.text, AtomicString):
            parent.text, nodes = self._split(parent.text)
            for n, node in enumerate(nodes):
                parent.insert(n, node)
        for child in list(parent):
            self._walk(child)
            if child.tail and not isinstance(child.tail, AtomicString):
                child.tail, nodes = self._split(child.tail)
                index = list(parent).index(child) + 1
                for n, node in enumerate(nodes):
                    parent.insert(index + n, node)

    def _split(self, text: str):
        """``text`` → (text before the first link, [link elements with the text after as tail])."""
        nodes: list[etree.Element] = []
        head, pos = None, 0
        for m in d.ID_IN_TEXT_RE.finditer(text):
            ident = f"{m.group(1)}-{m.group(2)}"
            found = self.ext.lookup(ident)
            if not found:
                continue
            before = text[pos:m.start()]
            if nodes:
                nodes[-1].tail = (nodes[-1].tail or "") + before
            else:
                head = before
            el = etree.Element("a", {"href": found[0], "class": "wikilink", "title": found[1]})
            el.text = AtomicString(m.group(0))
            el.tail = ""
            nodes.append(el)
            pos = m.end()
        if not nodes:
            return text, []
        nodes[-1].tail = (nodes[-1].tail or "") + text[pos:]
        return head, nodes


class _LinkExtension(Extension):
    """Wiki links; ``resolve`` is swapped per conversion (one Markdown instance per thread)."""

    def __init__(self):
        super().__init__()
        self.resolve: Resolver | None = None
        self.linked: list[str] = []

    def lookup(self, ident: str):
        if self.resolve is None:
            return None
        found = self.resolve(ident)
        if found and ident not in self.linked:
            self.linked.append(ident)
        return found

    def extendMarkdown(self, md):  # noqa: N802 - python-markdown's API
        # Above "reference" (170) so "[[PM-7]]" is not read as a reference link, below "escape".
        md.inlinePatterns.register(_WikiLinkProcessor(WIKI_LINK_RE, self), "wikilink", 175)
        # After inline patterns (20), before the table of contents is collected (5).
        md.treeprocessors.register(_BareIdProcessor(md, self), "bare_ids", 15)


EXTENSIONS = ["fenced_code", "codehilite", "tables", "toc", "sane_lists", "pymdownx.tasklist"]
EXTENSION_CONFIGS = {
    "codehilite": {"css_class": "highlight", "guess_lang": False},
    "toc": {"permalink": "#", "permalink_title": "Link to this section", "toc_depth": "2-4"},
    "tables": {"use_align_attribute": True},  # align="…" instead of style="…" (styles are stripped)
    "pymdownx.tasklist": {"custom_checkbox": False},
}

_local = threading.local()


def _markdown() -> tuple[markdown.Markdown, _LinkExtension]:
    """One configured Markdown instance per thread (building one costs more than a render)."""
    pair = getattr(_local, "md", None)
    if pair is None:
        links = _LinkExtension()
        md = markdown.Markdown(extensions=[*EXTENSIONS, links], extension_configs=EXTENSION_CONFIGS,
                               output_format="html")
        pair = _local.md = (md, links)
    return pair


def _flatten(tokens: Iterable[dict]) -> list[TocEntry]:
    out: list[TocEntry] = []
    for token in tokens:
        out.append(TocEntry(token["level"], token["id"], html.unescape(token["name"])))
        out.extend(_flatten(token.get("children", ())))
    return out


def render_markdown(text: str, resolve: Resolver | None = None) -> Rendered:
    """Render Markdown to sanitised HTML plus its table of contents.

    ``resolve(id)`` returns ``(url, title)`` for a document id or ``None``; without it no id
    becomes a link and every ``[[…]]`` is shown as missing. Results are cached on the text and
    on what its ids resolve to, so a page whose links changed is rendered again.
    """
    text = text or ""
    if resolve is None:
        resolved: tuple = ()
    else:
        resolved = tuple((ident, _hashable(resolve(ident))) for ident in mentioned_ids(text))
    return _render_cached(text, resolved)


def _hashable(found) -> tuple[str, str] | None:
    return (str(found[0]), str(found[1])) if found else None


@functools.lru_cache(maxsize=256)
def _render_cached(text: str, resolved: tuple) -> Rendered:
    table = {ident: found for ident, found in resolved if found}
    md, links = _markdown()
    md.reset()
    links.resolve, links.linked = table.get, []
    try:
        body = md.convert(text)
        toc = tuple(_flatten(getattr(md, "toc_tokens", [])))
        linked = tuple(links.linked)
    finally:
        links.resolve = None
    return Rendered(Markup(clean_html(body)), toc, linked)


def resolver_from(rows: dict, url_of: Callable) -> Resolver:
    """A resolver over ``{id: row}`` (e.g. :func:`wiki.db.titles`), ``url_of(row)`` giving URLs."""

    def resolve(ident: str):
        row = rows.get(ident)
        return (url_of(row), row.title) if row is not None else None

    return resolve


# --------------------------------------------------------------------------------------------
# Formatting helpers (plain functions, registered as Jinja filters by init_app)


def format_duration(value: timedelta | int | float | None) -> str:
    """``timedelta`` or seconds → ``"1 h 23 min"``, ``"7 min"``, ``"45 s"``, ``"2 d 3 h"``."""
    if value is None or value == "":
        return ""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else float(value))
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days} d", f"{hours} h" if hours else ""]
    elif hours:
        parts = [f"{hours} h", f"{minutes} min" if minutes else ""]
    elif minutes:
        parts = [f"{minutes} min"]
    else:
        parts = [f"{secs} s"]
    return sign + " ".join(p for p in parts if p)


def _as_date_or_datetime(value):
    if isinstance(value, (date, datetime)):
        return value
    text = str(value).strip()
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def format_date(value, style: str = "date") -> str:
    """A date or date-time (or its ISO text) for people: ``2 May 2023``, ``2 May 2023 10:07 UTC``.

    ``style="datetime"`` adds the time of a date-time, with its UTC offset; ``style="time"`` gives
    only ``10:07``; ``style="iso"`` the ISO form. Text that is not a date is returned unchanged.
    """
    if value is None or value == "":
        return ""
    parsed = _as_date_or_datetime(value)
    if parsed is None:
        return str(value)
    if style == "iso":
        return parsed.isoformat()
    day = f"{parsed.day} {parsed.strftime('%b %Y')}"
    if not isinstance(parsed, datetime) or style == "date":
        return day
    clock = parsed.strftime("%H:%M")
    if style == "time":
        return clock
    offset = parsed.utcoffset()
    if offset is None:
        zone = ""
    elif offset == timedelta(0):
        zone = " UTC"
    else:
        zone = " UTC" + parsed.strftime("%z")[:3] + ":" + parsed.strftime("%z")[3:]
    return f"{day} {clock}{zone}"


def plain_text(text: str, limit: int | None = None) -> str:
    """Markdown as one line of plain text (for excerpts), cut at a word boundary near ``limit``."""
    flat = " ".join(render_markdown(text or "").html.striptags().split())
    if limit and len(flat) > limit:
        flat = flat[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"
    return flat


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text) -> Markup:
    """A one-line text (a title) with its `backtick` spans as ``<code>``, everything else
    escaped. Already-escaped HTML (a search title with ``<mark>``) is taken as it is."""
    if text is None:
        return Markup("")
    escaped = text if isinstance(text, Markup) else Markup.escape(str(text))
    return Markup(_CODE_SPAN.sub(r'<code class="title-code">\1</code>', str(escaped)))


def init_app(app) -> None:
    """Register the Jinja filters ``markdown``, ``excerpt``, ``duration``, ``dateformat`` and
    ``code_spans``."""
    from .app_state import get_wiki
    from .db import titles
    from .views import document_url

    def markdown_filter(text) -> Markup:
        """Render a Markdown string from content, linking ids to the documents that exist."""
        text = "" if text is None else str(text)
        ids = mentioned_ids(text)
        rows = {}
        if ids:
            with get_wiki().session() as session:
                rows = titles(session, ids)
        return render_markdown(text, resolver_from(rows, document_url)).html

    app.add_template_filter(markdown_filter, "markdown")
    app.add_template_filter(plain_text, "excerpt")
    app.add_template_filter(format_duration, "duration")
    app.add_template_filter(format_date, "dateformat")
    app.add_template_filter(code_spans, "code_spans")
