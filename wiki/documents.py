"""Documents: the two kinds, their front-matter schema, parsing, validation and dumping.

A document is a Markdown file with YAML front matter. This module turns the bytes of such a file
into a :class:`Document` (validated, per-field coerced front matter plus the Markdown body) and
back, without touching the disk and without Flask.

Every front-matter field has one converter in a table (``POSTMORTEM_FIELDS`` /
``SIGNATURE_FIELDS``, after Pelican's ``METADATA_PROCESSORS``). Fields the table does not know are
kept as loaded and written back unchanged, so a team can add its own.

YAML is loaded with :class:`_Loader`, a safe loader that does *not* coerce ``NO``/``on`` into
booleans, ``2022-02-28`` into dates or ``1.10`` into the float ``1.1``: plain scalars stay strings
unless they are ``null``, ``true``/``false`` or a decimal integer. Each field's converter then
decides what a string means.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import frontmatter
import yaml

# --------------------------------------------------------------------------------------------
# Kinds


@dataclass(frozen=True)
class Kind:
    name: str  #: "postmortem" | "signature"
    prefix: str  #: id prefix, "PM" | "SIG"
    folder: str  #: folder under content/
    plural: str
    statuses: tuple[str, ...]
    sections: tuple[str, ...]  #: body template sections, in order


POSTMORTEM = Kind(
    name="postmortem",
    prefix="PM",
    folder="postmortems",
    plural="postmortems",
    statuses=("draft", "in-review", "published"),
    sections=(
        "Summary",
        "Impact",
        "Timeline",
        "Root cause and contributing factors",
        "Trigger",
        "Detection",
        "Response and recovery",
        "What went well",
        "What went wrong",
        "Where we got lucky",
        "Action items",
        "Lessons learned",
    ),
)
SIGNATURE = Kind(
    name="signature",
    prefix="SIG",
    folder="signatures",
    plural="signatures",
    statuses=("active", "retired"),
    sections=("How to recognise it", "Why it happens", "How to confirm", "Fix or workaround",
              "Seen in"),
)
KINDS: dict[str, Kind] = {POSTMORTEM.name: POSTMORTEM, SIGNATURE.name: SIGNATURE}
KIND_BY_PREFIX: dict[str, Kind] = {k.prefix: k for k in KINDS.values()}
KIND_BY_FOLDER: dict[str, Kind] = {k.folder: k for k in KINDS.values()}

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
ACTION_ITEM_STATUSES = ("open", "done", "wontfix")
PATTERN_KINDS = ("literal", "regex", "template", "exception", "frames")
MATCH_MODES = ("all", "any")
DEFAULT_ROOT_CAUSES = (
    "config-change", "deploy", "capacity", "dependency", "hardware", "data-corruption", "time",
    "security", "unknown",
)
DEFAULT_DETECTIONS = ("alert", "customer-report", "engineer-noticed", "automated-test", "other")

#: ``PM-7``, ``sig-3``: a kind prefix, a dash and a positive number.
ID_RE = re.compile(r"^(PM|SIG)-([1-9][0-9]{0,8})$", re.IGNORECASE)
#: An id inside running text, not glued to other word characters or dashes.
ID_IN_TEXT_RE = re.compile(r"(?<![\w/-])(PM|SIG)-([1-9][0-9]{0,8})(?![\w-])")
#: :data:`ID_IN_TEXT_RE` without its look-behind, which made the regex engine stop at every
#: character; :func:`ids_in_text` checks the character before each candidate instead.
_ID_CANDIDATE_RE = re.compile(r"(PM|SIG)-([1-9][0-9]{0,8})(?![\w-])")
_ID_GLUE_RE = re.compile(r"[\w/-]")

MAX_TITLE = 300


def parse_id(value: object) -> tuple[Kind, int] | None:
    """``"pm-7"`` → ``(POSTMORTEM, 7)``; ``None`` when ``value`` is not an id."""
    m = ID_RE.match(str(value).strip()) if value is not None else None
    if not m:
        return None
    return KIND_BY_PREFIX[m.group(1).upper()], int(m.group(2))


def ids_in_text(text: str) -> Iterator[str]:
    """The ids :data:`ID_IN_TEXT_RE` finds in ``text``, in order (≈ 4× faster on long text).

    The same matches: a candidate is ``PM-``/``SIG-`` and digits, and no other match can start
    inside a candidate (``P`` and ``S`` only begin one), so dropping the candidates glued to a
    word character, ``/`` or ``-`` before them leaves exactly the look-behind's matches."""
    for m in _ID_CANDIDATE_RE.finditer(text):
        start = m.start()
        if start and _ID_GLUE_RE.match(text, start - 1):
            continue
        yield f"{m.group(1)}-{m.group(2)}"


def normalise_id(value: object) -> str | None:
    parsed = parse_id(value)
    return f"{parsed[0].prefix}-{parsed[1]}" if parsed else None


#: Slugs that would collide with the pages under a document's URL (``/postmortems/PM-7/history``).
RESERVED_SLUGS = frozenset({"history", "diff", "revisions", "edit", "similar", "raw", "link"})


def slugify(text: str, max_length: int = 80) -> str:
    """The one rule for slugs: ASCII lowercase words joined by ``-``; ``untitled`` when empty."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    slug = slug.strip("-") or "untitled"
    return f"{slug}-page" if slug in RESERVED_SLUGS else slug


# --------------------------------------------------------------------------------------------
# Errors


@dataclass
class FieldError:
    field: str | None
    message: str
    line: int | None = None  #: 1-based line in the file

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        name = f"{self.field}: " if self.field else ""
        return f"{where}{name}{self.message}"


class DocumentError(Exception):
    """A document that cannot be read or does not validate; ``errors`` names each problem."""

    def __init__(self, errors: list[FieldError], path: str | None = None):
        self.errors = errors
        self.path = path
        super().__init__("; ".join(str(e) for e in errors))


# --------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """Safe loader with YAML 1.2-like scalars: no yes/no/on/off booleans, no dates, no floats."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float",
                       "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*))$"), list("-+0123456789")
)


#: The same loader on libyaml's C parser, when PyYAML was built with it: it composes the YAML
#: in C (front matter loads ≈ 5× faster). It goes first; whatever it refuses is loaded again by
#: :class:`_Loader`, so every error message and line is the pure loader's. Both agree on every
#: file of the demo content, the test fixtures and the generated corpus (tests/test_documents.py).
_CLoader: type | None = None

#: ``{first character of a plain scalar: [(tag, regexp), …]}``: :class:`_Loader`'s implicit
#: resolvers for that character followed by the wildcard ones, as ``Resolver.resolve`` tries them.
_RESOLVERS_BY_FIRST = {
    first: resolvers + _Loader.yaml_implicit_resolvers.get(None, [])
    for first, resolvers in _Loader.yaml_implicit_resolvers.items() if first is not None
}
_WILDCARD_RESOLVERS = _Loader.yaml_implicit_resolvers.get(None, [])

if getattr(yaml, "__with_libyaml__", False) and hasattr(yaml, "CSafeLoader"):
    class _CLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """:class:`_Loader`'s scalar rules on the C parser."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

        def resolve(self, kind, value, implicit):
            """``Resolver.resolve`` for a loader without path resolvers, with the resolvers of
            each first character listed once (the C parser calls it for every node)."""
            if kind is yaml.ScalarNode:
                if implicit[0]:
                    for tag, regexp in _RESOLVERS_BY_FIRST.get(value[:1], _WILDCARD_RESOLVERS):
                        if regexp.match(value):
                            return tag
                return self.DEFAULT_SCALAR_TAG
            if kind is yaml.SequenceNode:
                return self.DEFAULT_SEQUENCE_TAG
            return self.DEFAULT_MAPPING_TAG


class _Slow(Exception):
    """A node :func:`_construct_plain` leaves to PyYAML's constructor."""


_STR, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_BOOL, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"
_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_KEY_TAGS = frozenset({_STR, _NULL, _BOOL, _INT})
_DECIMAL_RE = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_BOOLS = {"true": True, "false": False}


def _construct_plain(node, seen: set[int]) -> Any:
    """What ``SafeConstructor`` makes of a tree of plain nodes — strings, nulls, ``true``/
    ``false``, decimal integers, lists, and mappings with scalar keys — without its per-node
    bookkeeping. Anything else (another tag, a merge key, a node reached twice through an
    alias, an integer or boolean spelled another way) raises :class:`_Slow`, and the whole
    document goes to the real constructor."""
    if id(node) in seen:
        raise _Slow
    seen.add(id(node))
    tag, cls = node.tag, node.__class__
    if cls is yaml.ScalarNode:
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _INT and _DECIMAL_RE.match(node.value):
            return int(node.value)
        if tag == _BOOL and node.value.lower() in _BOOLS:
            return _BOOLS[node.value.lower()]
        raise _Slow
    if cls is yaml.SequenceNode and tag == _SEQ:
        return [_construct_plain(item, seen) for item in node.value]
    if cls is yaml.MappingNode and tag == _MAP:
        out = {}
        for key, value in node.value:
            if key.__class__ is not yaml.ScalarNode or key.tag not in _KEY_TAGS:
                raise _Slow
            out[_construct_plain(key, seen)] = _construct_plain(value, seen)
        return out
    raise _Slow


class _Dumper(yaml.SafeDumper):
    """Readable front matter: short scalar lists inline, multi-line strings as ``|`` blocks."""

    def increase_indent(self, flow=False, indentless=False):  # indent list items under their key
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_list(dumper: yaml.SafeDumper, value: list):
    flow = bool(value) and all(
        isinstance(v, (str, int)) and "\n" not in str(v) for v in value
    ) and sum(len(str(v)) + 2 for v in value) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_datetime(dumper: yaml.SafeDumper, value: datetime):
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


_Dumper.ignore_aliases = lambda self, data: True  # never write &id001 anchors for shared values
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)
_Dumper.add_representer(datetime, _represent_datetime)


def dump_yaml(data: dict) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096,  # never re-wrap
        default_flow_style=False,
    )


# --------------------------------------------------------------------------------------------
# Field converters. Each takes the loaded value and the validation context and returns the
# coerced value or raises ValueError with a message meant for the person who wrote the file.


@dataclass
class Vocabulary:
    root_causes: tuple[str, ...] = DEFAULT_ROOT_CAUSES
    detections: tuple[str, ...] = DEFAULT_DETECTIONS


Converter = Callable[[Any, Vocabulary], Any]


def _text(value, vocab=None) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got a {'mapping' if isinstance(value, dict) else 'list'}")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _title(value, vocab=None) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_TITLE:
        raise ValueError(f"is {len(text)} characters long; the limit is {MAX_TITLE}")
    if "\n" in text:
        raise ValueError("must be a single line")
    return text


def _slug(value, vocab=None) -> str:
    return slugify(_text(value))


def _text_list(value, vocab=None) -> list[str]:
    """A list of strings; a single string is split on commas."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    out = []
    for item in items:
        text = _text(item)
        if text and text not in out:
            out.append(text)
    return out


def _id_list(value, vocab=None) -> list[str]:
    out = []
    for item in _text_list(value):
        ident = normalise_id(item)
        if ident is None:
            raise ValueError(f"{item!r} is not a document id (like PM-7 or SIG-3)")
        if ident not in out:
            out.append(ident)
    return out


def _choice(choices_of: Callable[[Vocabulary], tuple[str, ...]], fold=str.lower) -> Converter:
    def convert(value, vocab):
        text = fold(_text(value))
        choices = choices_of(vocab)
        if text not in choices:
            raise ValueError(f"{_text(value)!r} is not one of: {', '.join(choices)}")
        return text

    return convert


def _date(value, vocab=None) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            raise ValueError(f"{text!r} is not a date like 2023-06-14") from None


def _datetime_tz(value, vocab=None) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        text = _text(value)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an ISO 8601 date-time like 2023-06-14T09:12:00+00:00"
            ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a time zone, e.g. 2023-06-14T09:12:00+00:00 or …Z")
    return parsed


def _action_items(value, vocab=None) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("must be a list of {title, owner, due, status, ticket}")
    items = []
    for n, raw in enumerate(value, 1):
        if isinstance(raw, str):
            raw = {"title": raw}
        if not isinstance(raw, dict):
            raise ValueError(f"item {n} must be a mapping with a title")
        item = dict(raw)
        try:
            item["title"] = _title(raw.get("title"))
        except ValueError as exc:
            raise ValueError(f"item {n}: title {exc}") from None
        for key in ("owner", "ticket"):
            if raw.get(key) is not None:
                item[key] = _text(raw[key])
        if raw.get("due") not in (None, ""):
            try:
                item["due"] = _date(raw["due"])
            except ValueError as exc:
                raise ValueError(f"item {n}: due {exc}") from None
        status = _text(raw.get("status") or "open").lower()
        if status not in ACTION_ITEM_STATUSES:
            raise ValueError(f"item {n}: status {status!r} is not one of open, done, wontfix")
        item["status"] = status
        items.append(item)
    return items


def _strings(value, vocab=None) -> list[str]:
    """A list of (possibly multi-line) snippets, kept verbatim."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError("must be a list of text snippets")
    out = []
    for item in value:
        if isinstance(item, (dict, list)):
            raise ValueError("each snippet must be text")
        out.append(str(item))
    return out


def _patterns(value, vocab=None) -> list[dict]:
    """Signature patterns: ``{kind, value, …}``. Deeper checks (RE2 compile) live in signatures."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("must be a list of {kind, value} mappings")
    out = []
    for n, raw in enumerate(value, 1):
        if isinstance(raw, str):
            raw = {"kind": "literal", "value": raw}
        if not isinstance(raw, dict):
            raise ValueError(f"pattern {n} must be a mapping with kind and value")
        item = dict(raw)
        kind = _text(raw.get("kind") or "literal").lower()
        if kind not in PATTERN_KINDS:
            raise ValueError(f"pattern {n}: kind {kind!r} is not one of {', '.join(PATTERN_KINDS)}")
        item["kind"] = kind
        if kind == "exception":
            if not _text(raw.get("type") or raw.get("value") or ""):
                raise ValueError(f"pattern {n}: an exception pattern needs a type")
        elif kind == "frames":
            frames = raw.get("value")
            if isinstance(frames, str):
                frames = [f for f in frames.splitlines() if f.strip()]
            if not isinstance(frames, list) or not frames:
                raise ValueError(f"pattern {n}: a frames pattern needs a list of frame globs")
            item["value"] = [_text(f) for f in frames]
        else:
            if raw.get("value") is None or _text(raw.get("value")) == "":
                raise ValueError(f"pattern {n}: value must not be empty")
            item["value"] = str(raw["value"])
        out.append(item)
    return out


COMMON_FIELDS: dict[str, Converter] = {
    "id": lambda v, vocab: _text(v),  # checked against the kind in validate()
    "title": _title,
    "slug": _slug,
}
DATES: dict[str, Converter] = {"created": _date, "updated": _date}

POSTMORTEM_FIELDS: dict[str, Converter] = {
    **COMMON_FIELDS,
    "status": _choice(lambda vocab: POSTMORTEM.statuses),
    "severity": _choice(lambda vocab: SEVERITIES, fold=str.upper),
    "date": _date,
    "started_at": _datetime_tz,
    "detected_at": _datetime_tz,
    "mitigated_at": _datetime_tz,
    "resolved_at": _datetime_tz,
    "services": _text_list,
    "tags": _text_list,
    "authors": _text_list,
    "incident_commander": _text,
    "customer_impact": _text,
    "trigger": _text,
    "root_cause_category": _choice(lambda vocab: vocab.root_causes),
    "detection": _choice(lambda vocab: vocab.detections),
    "chat_links": _text_list,
    "tickets": _text_list,
    "related": _id_list,
    "signatures": _id_list,
    "action_items": _action_items,
    **DATES,
}
SIGNATURE_FIELDS: dict[str, Converter] = {
    **COMMON_FIELDS,
    "status": _choice(lambda vocab: SIGNATURE.statuses),
    "services": _text_list,
    "tags": _text_list,
    "first_seen": _date,
    "last_seen": _date,
    "incidents": _id_list,
    "related": _id_list,
    "match": _choice(lambda vocab: MATCH_MODES),
    "patterns": _patterns,
    "not": _patterns,
    "examples": _strings,
    "not_examples": _strings,
    **DATES,
}
FIELDS: dict[str, dict[str, Converter]] = {
    "postmortem": POSTMORTEM_FIELDS,
    "signature": SIGNATURE_FIELDS,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "postmortem": {"status": "draft"},
    "signature": {"status": "active", "match": "all"},
}
#: Fields holding lists of ids: the document graph.
LINK_FIELDS = ("related", "signatures", "incidents")
TIMESTAMPS = ("started_at", "detected_at", "mitigated_at", "resolved_at")


# --------------------------------------------------------------------------------------------
# The document


@dataclass
class Document:
    kind: Kind
    front_matter: dict[str, Any]  #: validated values; unknown fields as loaded, in file order
    body: str
    path: str | None = None  #: relative to the content dir, with forward slashes
    revision: str | None = None  #: content hash of the file this was read from
    bom: bool = False
    newline: str = "\n"

    @property
    def id(self) -> str:
        return self.front_matter.get("id", "")

    @property
    def title(self) -> str:
        return self.front_matter.get("title", "")

    @property
    def slug(self) -> str:
        return self.front_matter.get("slug") or slugify(self.title)

    @property
    def status(self) -> str:
        return self.front_matter.get("status") or DEFAULTS[self.kind.name]["status"]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.front_matter.get(key)
        return default if value is None else value

    @property
    def tags(self) -> list[str]:
        return self.get("tags", [])

    @property
    def services(self) -> list[str]:
        return self.get("services", [])

    #: ``(body, sections)``: the last split, reused while ``body`` is the same string
    _sections: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def sections(self) -> list[tuple[str, str]]:
        cached = self._sections
        if cached is None or cached[0] is not self.body:
            cached = self._sections = (self.body, split_sections(self.body))
        return list(cached[1])

    def section(self, name: str) -> str:
        for title, text in self.sections():
            if title.lower() == name.lower():
                return text
        return ""

    @property
    def summary(self) -> str:
        """One paragraph describing the document: the Summary section, its first paragraph."""
        text = self.get("summary") if isinstance(self.get("summary"), str) else None
        if not text:
            first = "Summary" if self.kind is POSTMORTEM else "How to recognise it"
            text = self.section(first) or (self.sections()[0][1] if self.sections() else self.body)
        text = _COMMENT_RE.sub("", text)  # template hints are HTML comments
        paragraph = next((p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()), "")
        return " ".join(paragraph.split())

    def durations(self) -> dict[str, timedelta | None]:
        """Time to detect, mitigate and resolve, counted from ``started_at``."""
        start = self.front_matter.get("started_at")
        out = {}
        for key, field_name in (
            ("time_to_detect", "detected_at"),
            ("time_to_mitigate", "mitigated_at"),
            ("time_to_resolve", "resolved_at"),
        ):
            end = self.front_matter.get(field_name)
            out[key] = (end - start) if start and end else None
        return out

    def links(self) -> dict[str, list[str]]:
        """Ids this document points to: front-matter link fields plus ids in the body."""
        out = {name: list(self.get(name, [])) for name in LINK_FIELDS if self.get(name)}
        mentioned = list(dict.fromkeys(i for i in ids_in_text(self.body) if i != self.id))
        if mentioned:
            out["mentions"] = mentioned
        return out

    def dumps(self) -> str:
        return dumps(self)


def content_hash(data: bytes) -> str:
    """The revision of a file: the first 20 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:20]


#: An HTML comment, possibly spanning lines (templates use them as hints).
_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
#: A level-2 heading (``## Title``) at the start of a line.
_SECTION_RE = re.compile(r"^##[ \t]+(.+?)[ \t#]*$")
#: The opening or closing line of a fenced code block (``` or ~~~).
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def outside_fences(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Each line with ``True`` when it is Markdown prose: not inside a fenced code block and
    not a fence line itself (a fence closes on the same character, at least as long)."""
    fence = None
    for line in lines:
        m = _FENCE_RE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            yield line, False
        else:
            yield line, fence is None


def split_sections(body: str) -> list[tuple[str, str]]:
    """Split Markdown into ``(heading, text)`` by level-2 headings, ignoring code fences.

    Text before the first heading, if any, becomes a section with the heading ``""``.
    """
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line, prose in outside_fences(body.split("\n")):
        if prose:
            h = _SECTION_RE.match(line)
            if h:
                sections.append((h.group(1).strip(), []))
                continue
        sections[-1][1].append(line)
    out = [(title, "\n".join(lines).strip("\n")) for title, lines in sections]
    if out and out[0][0] == "" and not out[0][1].strip():
        out = out[1:]
    return out


def template_body(kind: Kind, sections: tuple[str, ...] | None = None) -> str:
    return "\n\n".join(f"## {name}\n" for name in (sections or kind.sections))


# --------------------------------------------------------------------------------------------
# Parsing


def _front_matter_handler() -> frontmatter.YAMLHandler:
    return frontmatter.YAMLHandler()


def decode(data: bytes, max_bytes: int | None = None) -> tuple[str, bool, str]:
    """Bytes → (text with ``\\n`` newlines, had a BOM, original newline)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentError([FieldError(
            None, f"file is {len(data):,} bytes; the limit is {max_bytes:,} (WIKI_MAX_FILE_BYTES)"
        )])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DocumentError([FieldError(
            None, f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}", line
        )]) from None
    bom = text.startswith("\ufeff")
    if bom:
        text = text[1:]
    newline = "\r\n" if "\r\n" in text else "\n"
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DocumentError([FieldError(None, "contains a NUL byte; is this a binary file?", line)])
    return text.replace("\r\n", "\n"), bom, newline


def split_front_matter(text: str) -> tuple[str, str]:
    """Split text into (YAML, body) using python-frontmatter's boundary rules."""
    handler = _front_matter_handler()
    if not handler.detect(text):
        raise DocumentError([FieldError(
            None, "no front matter: the file must start with a '---' line, YAML, and '---'", 1
        )])
    try:
        fm, body = handler.split(text)
    except ValueError:
        raise DocumentError(
            [FieldError(None, "front matter is not closed by a '---' line", 1)]) from None
    return fm, body.lstrip("\n")


def load_front_matter(fm: str) -> tuple[dict, dict[str, int]]:
    """YAML text → (mapping, line of each top-level key). Lines count the opening ``---`` as 1.

    ``fm`` is the text after the opening ``---``, starting with that line's newline, so a mark's
    0-based line plus one is the file's 1-based line.

    The C loader (libyaml) goes first when there is one; whatever it refuses is loaded again by
    the pure-Python loader, which then reports the error (or, should the two ever disagree,
    loads it), so documents and error messages are the same with or without libyaml.
    """
    if _CLoader is not None:
        try:
            return _load_front_matter(fm, _CLoader)
        except DocumentError:
            pass
    return _load_front_matter(fm, _Loader)


def _load_front_matter(fm: str, loader_class: type) -> tuple[dict, dict[str, int]]:
    loader = None
    try:
        loader = loader_class(fm)  # the pure reader refuses control characters right here
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise DocumentError(
                [FieldError(None, "front matter must be a mapping of field: value", 2)])
        data = None
        if loader_class is _CLoader:
            try:
                data = _construct_plain(node, set())
            except (_Slow, RecursionError):
                data = None
        if data is None:
            data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        line = fm[:exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        what = (f"unacceptable character #x{exc.character:04x}" if isinstance(exc.character, int)
                else "unacceptable byte")
        raise DocumentError(
            [FieldError(None, f"invalid YAML: {what}: {exc.reason}", line)]) from None
    except yaml.YAMLError as exc:
        # YAML notices an unclosed bracket or quote where the text ends; the line where the
        # construct started (the context mark) is the one to show the author.
        problem_mark = getattr(exc, "problem_mark", None)
        context_mark = getattr(exc, "context_mark", None)
        mark = context_mark or problem_mark
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        if context_mark and problem_mark and problem_mark.line != context_mark.line:
            message += f"; noticed on line {problem_mark.line + 1}"
        raise DocumentError([FieldError(None, message, line)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            lines[str(key_node.value)] = key_node.start_mark.line + 1
    if not isinstance(data, dict):
        raise DocumentError([FieldError(None, "front matter must be a mapping of field: value", 2)])
    return {str(k): v for k, v in data.items()}, lines


def kind_for_path(path: str) -> Kind | None:
    folder = path.replace("\\", "/").split("/")[0]
    return KIND_BY_FOLDER.get(folder)


def parse(
    data: bytes | str,
    kind: Kind | str | None = None,
    path: str | None = None,
    vocab: Vocabulary | None = None,
    max_bytes: int | None = None,
) -> Document:
    """Read a document from file bytes. Raises :class:`DocumentError` listing every problem."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        text, bom, newline = decode(raw, max_bytes)
        fm, body = split_front_matter(text)
        loaded, lines = load_front_matter(fm)
        if kind is None and path:
            kind = kind_for_path(path)
        if kind is None and parse_id(loaded.get("id")):
            kind = parse_id(loaded.get("id"))[0]
        if kind is None:
            raise DocumentError(
                [FieldError("id", "cannot tell the kind of this document", lines.get("id"))])
        kind = KINDS[kind] if isinstance(kind, str) else kind
        front_matter = validate(kind, loaded, vocab, lines)
    except DocumentError as exc:
        exc.path = path
        raise
    return Document(kind, front_matter, body, path=path, revision=content_hash(raw), bom=bom,
                    newline=newline)


def validate(
    kind: Kind, loaded: dict, vocab: Vocabulary | None = None, lines: dict[str, int] | None = None
) -> dict:
    """Coerce and check every known field; keep unknown ones. Raises DocumentError."""
    vocab = vocab or Vocabulary()
    lines = lines or {}
    errors: list[FieldError] = []
    table = FIELDS[kind.name]
    out: dict[str, Any] = {}
    for key, value in loaded.items():
        convert = table.get(key)
        if convert is None:
            out[key] = value  # unknown field: kept exactly as loaded
            continue
        if value is None or value == "" or value == []:
            out[key] = ([] if convert in (_text_list, _id_list, _strings, _patterns, _action_items)
                        else None)
            continue
        try:
            out[key] = convert(value, vocab)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc), lines.get(key)))
            out[key] = value

    ident = out.get("id")
    if not ident:
        errors.append(FieldError("id", f"missing: every document needs an id like {kind.prefix}-1"))
    else:
        parsed = parse_id(ident)
        if parsed is None:
            errors.append(FieldError("id", f"{ident!r} is not an id like {kind.prefix}-7",
                                     lines.get("id")))
        elif parsed[0] is not kind:
            errors.append(FieldError(
                "id", f"{ident!r} is a {parsed[0].name} id but this is a {kind.name}",
                lines.get("id"),
            ))
        else:
            out["id"] = f"{parsed[0].prefix}-{parsed[1]}"
    if not out.get("title") and "title" not in {e.field for e in errors}:
        errors.append(FieldError("title", "missing: every document needs a title",
                                 lines.get("title")))
    if out.get("title") and not out.get("slug"):
        out["slug"] = slugify(out["title"])

    if kind is POSTMORTEM:
        stamps = [(k, out.get(k)) for k in TIMESTAMPS if isinstance(out.get(k), datetime)]
        for (a, ta), (b, tb) in zip(stamps, stamps[1:], strict=False):
            if tb < ta:
                errors.append(FieldError(b, f"is before {a} ({tb.isoformat()} < {ta.isoformat()})",
                                         lines.get(b)))
    if errors:
        raise DocumentError(errors)
    return out


# --------------------------------------------------------------------------------------------
# Dumping


def _plain(value: Any) -> Any:
    """Values as they should appear in YAML: dates as ISO dates, nested structures recursed."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def front_matter_text(front_matter: dict) -> str:
    return dump_yaml(_plain(front_matter)) if front_matter else ""


def dumps(doc: Document) -> str:
    """The file text of a document (``\\n`` newlines; see :func:`to_bytes` for the file's own)."""
    body = doc.body.lstrip("\n")
    text = f"---\n{front_matter_text(doc.front_matter)}---\n"
    if body:
        text += "\n" + body
        if not text.endswith("\n"):
            text += "\n"
    return text


def to_bytes(doc: Document) -> bytes:
    text = dumps(doc)
    if doc.newline != "\n":
        text = text.replace("\n", doc.newline)
    return (("\ufeff" if doc.bom else "") + text).encode("utf-8")


def new_document(
    kind: Kind | str,
    front_matter: dict,
    body: str = "",
    vocab: Vocabulary | None = None,
) -> Document:
    """Build and validate a document from user input (form, API, CLI)."""
    kind = KINDS[kind] if isinstance(kind, str) else kind
    loaded = dict(front_matter)  # keep the author's field order; defaults only fill gaps
    for key, value in DEFAULTS[kind.name].items():
        if loaded.get(key) in (None, ""):
            loaded[key] = value
    fm = validate(kind, loaded, vocab)
    if kind is SIGNATURE:
        # Patterns RE2 cannot run, unknown template placeholders…: refused with the reason.
        from .signatures import pattern_errors  # needs re2; nothing else here does

        errors = [FieldError(name, message) for name, message in pattern_errors(fm)]
        if errors:
            raise DocumentError(errors)
    return Document(kind, fm, body.replace("\r\n", "\n"))


def json_value(value: Any) -> Any:
    """Front-matter values made JSON-serialisable (dates as ISO strings)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


__all__ = [
    "Document", "DocumentError", "FieldError", "Kind", "KINDS", "POSTMORTEM", "SIGNATURE",
    "Vocabulary", "content_hash", "dumps", "field", "new_document", "normalise_id", "parse",
    "parse_id", "slugify", "split_sections", "template_body", "to_bytes", "validate",
]
