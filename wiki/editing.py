"""The editor's form ↔ a document's front matter and body. No Flask.

The browser editor shows every front-matter field as its own input, action items and signature
patterns as rows, and the ``## Timeline`` table of the body as rows of (time, event). This module
turns a document into those strings (:meth:`EditorForm.from_document`), reads them back from a
submitted form (:meth:`EditorForm.from_form`, any mapping with ``get``/``getlist`` such as
werkzeug's ``MultiDict``) and builds the front matter and body to save
(:meth:`EditorForm.to_document`), reporting every problem as a
:class:`~wiki.documents.FieldError` named after its input.

Saving an unchanged form changes nothing: fields keep the order and the values they had in the
file, and unknown fields pass through the "Other fields (YAML)" box. It also has the 3-way merge
of front-matter fields used by the conflict view (:func:`merge_fields`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from . import documents as d

# --------------------------------------------------------------------------------------------
# Which input edits which field

#: Simple inputs (one value each) of each kind, in the order they are shown and written.
INPUTS: dict[str, tuple[str, ...]] = {
    "postmortem": (
        "title", "status", "severity", "date", *d.TIMESTAMPS, "services", "tags", "authors",
        "incident_commander", "customer_impact", "trigger", "root_cause_category", "detection",
        "chat_links", "tickets", "related", "signatures", "slug",
    ),
    "signature": (
        "title", "status", "match", "services", "tags", "first_seen", "last_seen", "incidents",
        "related", "slug",
    ),
}
#: Fields edited as rows or text areas of their own rather than one input.
ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "postmortem": ("action_items",),
    "signature": ("patterns", "not", "examples", "not_examples"),
}
#: Set by :class:`wiki.core.Wiki` on every save, never typed.
MANAGED = ("id", "created", "updated")

#: Comma-separated lists (a newline separates too).
COMMA_LISTS = frozenset({"services", "tags", "authors", "tickets", "related", "signatures",
                         "incidents"})
#: One item a line (URLs may contain commas).
LINE_LISTS = frozenset({"chat_links"})
DATES = frozenset({"date", "first_seen", "last_seen"})
DATETIMES = frozenset(d.TIMESTAMPS)

ACTION_ITEM_COLUMNS = ("title", "owner", "due", "status", "ticket")
PATTERN_COLUMNS = ("kind", "value")
#: Form names of the row editors: ``<prefix>_<column>``, one value per row.
ROW_PREFIX = {"action_items": "ai", "timeline": "tl", "patterns": "pat", "not": "notpat"}

#: UTC offsets offered next to each date-time (any other offset a file uses is added).
UTC_OFFSETS = (
    "-12:00", "-11:00", "-10:00", "-09:30", "-09:00", "-08:00", "-07:00", "-06:00", "-05:00",
    "-04:00", "-03:30", "-03:00", "-02:00", "-01:00", "+00:00", "+01:00", "+02:00", "+03:00",
    "+03:30", "+04:00", "+04:30", "+05:00", "+05:30", "+05:45", "+06:00", "+06:30", "+07:00",
    "+08:00", "+08:45", "+09:00", "+09:30", "+10:00", "+10:30", "+11:00", "+12:00", "+12:45",
    "+13:00", "+14:00",
)
DEFAULT_OFFSET = "+00:00"
TIMELINE_HEADER = ("Time (UTC)", "Event")
#: Labels of the two sides in a merged text's conflict blocks.
MERGE_LABELS = ("yours", "current")
#: Blank rows shown under the filled ones, and how many "add more rows" adds.
BLANK_ROWS = 2

_OFFSET_RE = re.compile(r"^[+-](?:[01]\d|2[0-3]):[0-5]\d$")
_LOCAL_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?$")


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list: ...


# --------------------------------------------------------------------------------------------
# Values ↔ strings


def offset_text(value: datetime) -> str:
    """``+05:30`` for a date-time's UTC offset."""
    delta = value.utcoffset() or timedelta(0)
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local_text(value: datetime) -> str:
    """The wall-clock part for ``<input type="datetime-local">`` (seconds only when set)."""
    fmt = "%Y-%m-%dT%H:%M:%S" if value.second or value.microsecond else "%Y-%m-%dT%H:%M"
    return value.strftime(fmt)


def offset_label(offset: str) -> str:
    return "UTC" if offset == "+00:00" else f"UTC{offset}"


def offsets_for(*values: str) -> list[str]:
    """The offered offsets plus any other well-formed one in ``values``, sorted by offset."""
    extra = {v for v in values if v and _OFFSET_RE.match(v) and v not in UTC_OFFSETS}
    return sorted({*UTC_OFFSETS, *extra}, key=lambda o: (1 if o[0] == "+" else -1) * (
        int(o[1:3]) * 60 + int(o[4:6])))


def _to_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in LINE_LISTS and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _split_list(name: str, text: str) -> list[str]:
    parts = text.split("\n") if name in LINE_LISTS else re.split(r"[,\n]", text)
    out = []
    for part in parts:
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


def _clean(text: Any) -> str:
    """Form text with browser newlines (``\\r\\n``) made ``\\n``."""
    return str(text or "").replace("\r\n", "\n").replace("\r", "\n")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --------------------------------------------------------------------------------------------
# The timeline table in the body


@dataclass
class Timeline:
    """The ``## Timeline`` table of a body, taken out so it can be edited as rows."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    header: tuple[str, str] = TIMELINE_HEADER
    at: str = "end"  #: where the table goes back: "start", "end" or a line number in the section
    editable: bool = True  #: False when the table cannot be rows (more columns, conflict markers)


_HEADING_RE = re.compile(r"^##[ \t]+(.+?)[ \t#]*$")
#: A table's delimiter row: ``|---|:---:|``.
_DELIMITER_RE = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_CONFLICT_RE = re.compile(r"^(<{7}|={7}|>{7})( |$)")


def _headings(lines: list[str]) -> list[tuple[int, str]]:
    """``(line index, title)`` of every level-2 heading outside code fences."""
    out = []
    for n, (line, prose) in enumerate(d.outside_fences(lines)):
        if prose:
            h = _HEADING_RE.match(line)
            if h:
                out.append((n, h.group(1).strip()))
    return out


def _section(lines: list[str], name: str) -> tuple[int, int] | None:
    """Content lines ``[start, end)`` of the section headed ``## name`` (case-insensitive)."""
    heads = _headings(lines)
    for i, (n, title) in enumerate(heads):
        if title.lower() == name.lower():
            end = heads[i + 1][0] if i + 1 < len(heads) else len(lines)
            return n + 1, end
    return None


def _cells(line: str) -> list[str]:
    """Cells of a table row, split on unescaped ``|``; ``\\|`` becomes ``|``."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == "|":
            current.append("|")
            i += 2
            continue
        if text[i] == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(text[i])
        i += 1
    cells.append("".join(current).strip())
    return cells


def _cell_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _strip_blank(lines: list[str], leading: bool = False, trailing: bool = False) -> list[str]:
    start, end = 0, len(lines)
    while leading and start < end and not lines[start].strip():
        start += 1
    while trailing and end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def extract_timeline(body: str) -> tuple[str, Timeline]:
    """Take the first table of the ``## Timeline`` section out of ``body`` as rows.

    A table of two columns becomes rows and leaves the body; anything else (no section, no table,
    other columns, merge conflict markers) leaves the body untouched. :func:`insert_timeline` puts
    the rows back where the table was.
    """
    lines = body.split("\n")
    span = _section(lines, "Timeline")
    if span is None:
        return body, Timeline()
    start, end = span
    content = lines[start:end]
    if any(_CONFLICT_RE.match(line) for line in content):
        return body, Timeline(editable=False)
    top = next((i for i in range(len(content) - 1)
                if content[i].lstrip().startswith("|") and _DELIMITER_RE.match(content[i + 1])),
               None)
    if top is None:
        return body, Timeline()
    bottom = top + 2
    while bottom < len(content) and content[bottom].lstrip().startswith("|"):
        bottom += 1
    header = _cells(content[top])
    rows = [_cells(line) for line in content[top + 2:bottom]]
    if len(header) != 2 or any(len(row) != 2 for row in rows):
        return body, Timeline(editable=False)

    before, after = content[:top], content[bottom:]
    if not any(line.strip() for line in after):
        at = "end"
    elif not any(line.strip() for line in before):
        at = "start"
    else:
        at = str(len(_strip_blank(before, trailing=True)))
    if at == "start":
        remaining = _strip_blank(after, leading=True)
    elif at == "end":
        remaining = _strip_blank(before, trailing=True) + after
    else:
        remaining = _strip_blank(before, trailing=True) + [""] + _strip_blank(after, leading=True)
    new_lines = lines[:start] + remaining + lines[end:]
    return "\n".join(new_lines), Timeline(
        rows=[(row[0], row[1]) for row in rows], header=(header[0], header[1]), at=at)


def timeline_table(rows: list[tuple[str, str]], header: tuple[str, str] = TIMELINE_HEADER
                   ) -> list[str]:
    time_head = _cell_text(header[0]) or TIMELINE_HEADER[0]
    event_head = _cell_text(header[1]) or TIMELINE_HEADER[1]
    out = [f"| {time_head} | {event_head} |", "|---|---|"]
    out += [f"| {_cell_text(time)} | {_cell_text(event)} |" for time, event in rows]
    return out


def insert_timeline(body: str, timeline: Timeline) -> str:
    """``body`` with ``timeline.rows`` as a table in its ``## Timeline`` section (added, for a
    postmortem, before the section that follows Timeline in the template, when there is none)."""
    if not timeline.rows:
        return body
    table = timeline_table(timeline.rows, timeline.header)
    lines = body.split("\n")
    span = _section(lines, "Timeline")
    if span is None:
        after_timeline = d.POSTMORTEM.sections[d.POSTMORTEM.sections.index("Timeline") + 1:]
        following = {name.lower() for name in after_timeline}
        heads = [n for n, title in _headings(lines) if title.lower() in following]
        block = ["## Timeline", ""] + table + [""]
        if heads:
            n = heads[0]
            return "\n".join(lines[:n] + block + lines[n:])
        core = _strip_blank(lines, trailing=True)
        return "\n".join(core + ([""] if core else []) + block)
    start, end = span
    content = lines[start:end]
    k = int(timeline.at) if timeline.at.isdigit() else 0
    if timeline.at == "start":
        rest = _strip_blank(content, leading=True)
        new = [""] + table + [""] + rest
    elif 0 < k <= len(_strip_blank(content, trailing=True)):
        head = _strip_blank(content[:k], trailing=True)
        rest = _strip_blank(content[k:], leading=True)
        new = head + [""] + table + [""] + rest
    else:
        core = _strip_blank(content, trailing=True)
        trailing = content[len(core):]
        is_last = end == len(lines)
        new = core + [""] + table + (trailing or ([] if is_last else [""]))
    return "\n".join(lines[:start] + new + lines[end:])


# --------------------------------------------------------------------------------------------
# The form


@dataclass
class EditorForm:
    """Everything the editor shows, as the strings its inputs hold."""

    kind: d.Kind
    fields: dict[str, str] = field(default_factory=dict)  #: simple inputs, incl. ``<ts>_tz``
    body: str = ""  #: without the timeline table (see ``timeline``)
    timeline: Timeline = field(default_factory=Timeline)
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)  #: action items, patterns
    examples: dict[str, list[str]] = field(default_factory=dict)  #: examples, not_examples
    extra_yaml: str = ""  #: fields the editor has no input for
    base_revision: str = ""

    # -- reading ------------------------------------------------------------------------------

    @classmethod
    def blank(cls, kind: d.Kind | str) -> EditorForm:
        kind = d.KINDS[kind] if isinstance(kind, str) else kind
        return cls.from_document(kind, dict(d.DEFAULTS[kind.name]), "")

    @classmethod
    def from_document(cls, kind: d.Kind | str, front_matter: dict, body: str,
                      revision: str | None = None) -> EditorForm:
        """The form showing a document (validated front matter, as :class:`Document` holds it)."""
        kind = d.KINDS[kind] if isinstance(kind, str) else kind
        fm = {**d.DEFAULTS[kind.name], **front_matter}
        inputs = INPUTS[kind.name]
        fields: dict[str, str] = {}
        offsets = [offset_text(fm[k]) for k in d.TIMESTAMPS if isinstance(fm.get(k), datetime)]
        for name in inputs:
            value = fm.get(name)
            if name in DATETIMES:
                if isinstance(value, datetime):
                    fields[name], fields[f"{name}_tz"] = local_text(value), offset_text(value)
                else:
                    fields[name] = _to_text(name, value)
                    fields[f"{name}_tz"] = offsets[0] if offsets else DEFAULT_OFFSET
            else:
                fields[name] = _to_text(name, value)
        form = cls(kind, fields, base_revision=revision or "")
        if kind is d.POSTMORTEM:
            form.body, form.timeline = extract_timeline(body)
            form.rows["action_items"] = [_item_row(item) for item in fm.get("action_items") or []]
        else:
            form.body = body
            for name in ("patterns", "not"):
                form.rows[name] = [_pattern_row(p) for p in fm.get(name) or []]
            for name in ("examples", "not_examples"):
                form.examples[name] = [str(e) for e in fm.get(name) or []]
        known = set(d.FIELDS[kind.name]) | set(MANAGED)
        unknown = {k: v for k, v in front_matter.items() if k not in known}
        form.extra_yaml = d.front_matter_text(unknown)
        return form

    @classmethod
    def from_form(cls, kind: d.Kind | str, data: FormData) -> EditorForm:
        """The form as submitted: every value kept as typed, nothing validated yet."""
        kind = d.KINDS[kind] if isinstance(kind, str) else kind
        fields = {}
        for name in INPUTS[kind.name]:
            fields[name] = _clean(data.get(name, ""))
            if name in DATETIMES:
                fields[f"{name}_tz"] = _clean(data.get(f"{name}_tz") or DEFAULT_OFFSET).strip()
        form = cls(kind, fields, body=_clean(data.get("body", "")),
                   extra_yaml=_clean(data.get("extra_yaml", "")),
                   base_revision=str(data.get("base_revision") or "").strip())
        if kind is d.POSTMORTEM:
            header = (_clean(data.get("tl_header_time") or TIMELINE_HEADER[0]).strip(),
                      _clean(data.get("tl_header_event") or TIMELINE_HEADER[1]).strip())
            rows = _rows(data, "tl", ("time", "event"))
            form.timeline = Timeline(
                rows=[(r["time"].strip(), r["event"].strip()) for r in rows
                      if r["time"].strip() or r["event"].strip()],
                header=header, at=str(data.get("tl_at") or "end"),
                editable=data.get("tl_editable", "1") != "0")
            form.rows["action_items"] = _rows(data, "ai", (*ACTION_ITEM_COLUMNS, "extra"))
        else:
            for name in ("patterns", "not"):
                form.rows[name] = _rows(data, ROW_PREFIX[name], (*PATTERN_COLUMNS, "extra"))
            for name, key in (("examples", "example"), ("not_examples", "not_example")):
                form.examples[name] = [_clean(v) for v in data.getlist(key)]
        return form

    # -- showing --------------------------------------------------------------------------------

    def shown_rows(self, name: str, blank: int = BLANK_ROWS) -> list[dict[str, str]]:
        """Filled rows (blank ones dropped) plus ``blank`` empty rows to type into."""
        columns = ACTION_ITEM_COLUMNS if name == "action_items" else PATTERN_COLUMNS
        filled = [r for r in self.rows.get(name, []) if not _blank_row(r)]
        empty = {c: "" for c in (*columns, "extra")}
        if name == "action_items":
            empty["status"] = "open"
        else:
            empty["kind"] = "template" if name == "patterns" else "literal"
        return filled + [dict(empty) for _ in range(blank)]

    def shown_timeline(self, blank: int = BLANK_ROWS) -> list[tuple[str, str]]:
        return list(self.timeline.rows) + [("", "")] * blank

    def shown_examples(self, name: str, blank: int = 1) -> list[str]:
        return [e for e in self.examples.get(name, []) if e.strip()] + [""] * blank

    def full_body(self) -> str:
        """The body to save: the text with the timeline rows put back as a table."""
        return insert_timeline(self.body, self.timeline)

    # -- saving ---------------------------------------------------------------------------------

    def to_document(self, original: dict | None = None, vocab: d.Vocabulary | None = None
                    ) -> tuple[dict, str]:
        """``(front matter, body)`` to save, in the original's field order, unknown fields kept.

        Raises :class:`~wiki.documents.DocumentError` naming the input of every problem: form
        problems (a date-time without a valid zone, YAML that does not parse) and the document's
        own validation (missing title, resolved before start, …).
        """
        original = dict(original or {})
        errors: list[d.FieldError] = []
        values: dict[str, Any] = {}
        for name in INPUTS[self.kind.name]:
            try:
                values[name] = self._value(name)
            except ValueError as exc:
                errors.append(d.FieldError(name, str(exc)))
        for name in ROW_FIELDS[self.kind.name]:
            try:
                values[name] = self._row_value(name)
            except ValueError as exc:
                errors.append(d.FieldError(name, str(exc)))
        extra = self._extra(errors)

        fm: dict[str, Any] = {}
        for key in original:  # the file's order first
            if key in MANAGED:
                fm[key] = original[key]
            elif key in values:
                fm[key] = _keep(key, original[key], values.pop(key), self.kind, vocab)
            elif key in extra:
                fm[key] = extra.pop(key)
        for key, value in values.items():  # then new fields in the form's order
            if _empty(value) or d.DEFAULTS[self.kind.name].get(key) == value:
                continue
            fm[key] = value
        fm.update(extra)
        fm = {k: v for k, v in fm.items() if v is not _DROP}

        try:
            d.validate(self.kind, {**fm, "id": fm.get("id") or f"{self.kind.prefix}-1"}, vocab)
        except d.DocumentError as exc:  # one message per input: the form's own goes first
            reported = {e.field for e in errors}
            errors += [e for e in exc.errors if e.field not in reported]
        if errors:
            raise d.DocumentError(errors)
        return fm, self.full_body()

    def _value(self, name: str) -> Any:
        text = self.fields.get(name, "")
        if name in DATETIMES:
            text = text.strip()
            if not text:
                return None
            offset = self.fields.get(f"{name}_tz", DEFAULT_OFFSET).strip() or DEFAULT_OFFSET
            if offset.upper() in ("Z", "UTC"):
                offset = "+00:00"
            if not _OFFSET_RE.match(offset):
                raise ValueError(f"{offset!r} is not a UTC offset like +02:00")
            if not _LOCAL_RE.match(text):
                raise ValueError(f"{text!r} is not a date and time like 2023-06-14T09:12")
            try:
                return datetime.fromisoformat(f"{text}{offset}")
            except ValueError:
                raise ValueError(f"{text!r} is not a valid date and time") from None
        if name in COMMA_LISTS or name in LINE_LISTS:
            return _split_list(name, text)
        if name in DATES:
            return text.strip() or None
        if name == "title":
            return " ".join(text.split())
        return text.strip()

    def _row_value(self, name: str) -> list:
        if name == "action_items":
            items = []
            for row in self.rows.get(name, []):
                if _blank_row(row):
                    continue
                item = {"title": row.get("title", "").strip()}
                for key in ("owner", "due"):
                    if row.get(key, "").strip():
                        item[key] = row[key].strip()
                item["status"] = (row.get("status") or "open").strip()
                if row.get("ticket", "").strip():
                    item["ticket"] = row["ticket"].strip()
                for key, value in _row_extra(row).items():
                    item.setdefault(key, value)
                items.append(item)
            return items
        if name in ("patterns", "not"):
            out = []
            for row in self.rows.get(name, []):
                if _blank_row(row):
                    continue
                kind = (row.get("kind") or "literal").strip().lower()
                extra = _row_extra(row)
                text = row.get("value", "")
                pattern: dict[str, Any] = {"kind": kind}
                if kind == "frames":
                    pattern["value"] = [line.strip() for line in text.split("\n") if line.strip()]
                elif kind == "exception":
                    extra.pop("value", None)
                    pattern["type"] = text.strip()
                else:
                    pattern["value"] = text.strip("\n") if "\n" in text.strip() else text.strip()
                for key, value in extra.items():
                    pattern.setdefault(key, value)
                out.append(pattern)
            return out
        texts = self.examples.get(name, [])
        return [t for t in texts if t.strip()]

    def _extra(self, errors: list[d.FieldError]) -> dict:
        text = self.extra_yaml
        if not text.strip():
            return {}
        try:
            loaded, _lines = d.load_front_matter("\n" + text)
        except d.DocumentError as exc:
            errors.extend(d.FieldError("extra_yaml", e.message, e.line and e.line - 1)
                          for e in exc.errors)
            return {}
        known = set(d.FIELDS[self.kind.name]) | set(MANAGED)
        clash = [k for k in loaded if k in known]
        if clash:
            many = len(clash) > 1
            errors.append(d.FieldError("extra_yaml", (
                f"{', '.join(clash)}: {'these fields have' if many else 'this field has'} an "
                "input of its own or is set by the wiki; remove it from Other fields")))
            return {k: v for k, v in loaded.items() if k not in known}
        return loaded


_DROP = object()  #: a field to leave out of the saved front matter


def _keep(key: str, old: Any, new: Any, kind: d.Kind, vocab: d.Vocabulary | None) -> Any:
    """The value to save for a field the file has: the file's own when the form did not change
    its meaning (so ``UTC`` stays ``UTC`` and ``[]`` stays ``[]``), ``_DROP`` when cleared."""
    if _empty(new):
        return old if _empty(old) else _DROP
    convert = d.FIELDS[kind.name].get(key)
    if convert is not None:
        try:
            converted = convert(new, vocab or d.Vocabulary())
            # Equal date-times in another zone are a change: the author picked that zone.
            if converted == old and type(converted) is type(old) and (
                    not isinstance(old, datetime) or converted.isoformat() == old.isoformat()):
                return old
        except ValueError:
            pass
    return new


def _blank_row(row: dict[str, str]) -> bool:
    keys = [k for k in row if k not in ("status", "kind", "extra")]
    return not any(str(row.get(k, "")).strip() for k in keys) and not _row_extra(row)


def _row_extra(row: dict[str, str]) -> dict:
    text = (row.get("extra") or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("a row's hidden extra fields are not valid JSON; reload the editor") \
            from None
    return value if isinstance(value, dict) else {}


def _rows(data: FormData, prefix: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a row editor: column ``c`` is ``<prefix>_<c>``, one value per row; rows whose
    index is in ``<prefix>_remove`` are dropped."""
    lists = {c: data.getlist(f"{prefix}_{c}") for c in columns}
    count = max((len(v) for v in lists.values()), default=0)
    removed = {str(v) for v in data.getlist(f"{prefix}_remove")}
    rows = []
    for n in range(count):
        if str(n) in removed:
            continue
        rows.append({c: _clean(lists[c][n]) if n < len(lists[c]) else "" for c in columns})
    return rows


def _item_row(item: dict) -> dict[str, str]:
    row = {c: _to_text(c, item.get(c)) for c in ACTION_ITEM_COLUMNS}
    row["status"] = row["status"] or "open"
    extra = {k: v for k, v in item.items() if k not in ACTION_ITEM_COLUMNS}
    row["extra"] = json.dumps(d.json_value(extra), ensure_ascii=False) if extra else ""
    return row


def _pattern_row(pattern: dict) -> dict[str, str]:
    kind = pattern.get("kind", "literal")
    value = pattern.get("type") or pattern.get("value") if kind == "exception" \
        else pattern.get("value")
    text = "\n".join(value) if isinstance(value, list) else ("" if value is None else str(value))
    skip = {"kind", "type", "value"} if kind == "exception" else {"kind", "value"}
    extra = {k: v for k, v in pattern.items() if k not in skip}
    if kind == "exception" and pattern.get("type") and pattern.get("value"):
        extra["value"] = pattern["value"]
    return {"kind": kind, "value": text,
            "extra": json.dumps(d.json_value(extra), ensure_ascii=False) if extra else ""}


# --------------------------------------------------------------------------------------------
# Conflicts


def merge_fields(base: dict | None, mine: dict, theirs: dict) -> tuple[dict, dict[str, Any]]:
    """3-way merge of front matter: ``(merged, {field: their value})`` for fields both sides
    changed differently (where the merge keeps mine). Without a base every difference is a
    conflict. Fields the wiki manages come from ``theirs``."""
    base = base or {}
    merged: dict[str, Any] = {}
    conflicts: dict[str, Any] = {}
    missing = object()
    for key in [*theirs, *(k for k in mine if k not in theirs)]:
        b, m, t = base.get(key, missing), mine.get(key, missing), theirs.get(key, missing)
        if key in MANAGED:
            value = t
        elif m == t:
            value = m
        elif m == b:
            value = t
        elif t == b:
            value = m
        else:
            value = m
            conflicts[key] = None if t is missing else t
        if value is not missing:
            merged[key] = value
    return merged, conflicts


def document_text(kind: d.Kind | str, front_matter: dict, body: str) -> str:
    """The file text of a front matter and body, as it would be saved."""
    kind = d.KINDS[kind] if isinstance(kind, str) else kind
    return d.dumps(d.Document(kind, front_matter, body))


def has_conflict_markers(text: str) -> bool:
    """Whether ``text`` still holds a conflict block written by the conflict view's merge."""
    mine, theirs = MERGE_LABELS
    lines = text.split("\n")
    return any(line == f"<<<<<<< {mine}" for line in lines) and any(
        line == f">>>>>>> {theirs}" for line in lines)


__all__ = [
    "EditorForm", "Timeline", "document_text", "extract_timeline", "has_conflict_markers",
    "insert_timeline", "merge_fields", "offsets_for", "timeline_table",
]

