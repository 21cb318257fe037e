"""Import a folder of Markdown files written for another tool (``wiki import PATH``). No Flask.

Postmortem collections kept elsewhere — Etsy's Morgue, a static-site collection, a folder of
exported pages — are Markdown files with front matter in their own schema, e.g.::

    ---
    uuid: 5b1f…            # identifies the original; used to recognise a re-import
    title: API outage
    start_time: 2016-05-31 14:02:00
    end_time: 2016-05-31T15:30:00Z
    keywords: [Database, failover]
    product: api
    company: Example Corp
    summary: The primary database failed over…
    ---

:func:`import_folder` maps what has a meaning here (see ``FIELD_MAP`` and the converters below),
keeps every other field as an unknown front-matter field (preserved on every later write), and
creates documents through :meth:`wiki.core.Wiki.create`, so ids are allocated as for any new
document. The original is recorded in the ``imported_from`` field::

    imported_from:
      source: uuid:5b1f…        # uuid, else url, else the path inside the import folder
      file: 2016/api-outage.md
      hash: 3c9a…               # content hash of the source file
      fingerprint: 81d0…        # hash of what was imported, to notice edits made in the wiki

so importing the same folder again changes nothing ("unchanged"), a source file that changed
since updates its document ("updated") unless the document was edited in the wiki since
(then it is skipped, never overwritten). The source folder is only read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import documents as d
from .store import StoreError

if TYPE_CHECKING:  # pragma: no cover
    from .core import Wiki

__all__ = ["ImportItem", "ImportReport", "ImporterError", "convert", "import_folder"]

#: File names read from the import folder.
SUFFIXES = (".md", ".markdown", ".mdown")
#: The front-matter field recording where a document was imported from.
ORIGIN_FIELD = "imported_from"
#: Foreign fields that identify the original, in order of preference.
ORIGIN_KEYS = ("uuid", "url")

IMPORTED, UPDATED, UNCHANGED, SKIPPED = "imported", "updated", "unchanged", "skipped"
_DRY_RUN_WORDS = {IMPORTED: "would import", UPDATED: "would update", UNCHANGED: "unchanged",
                  SKIPPED: "would skip"}

#: Foreign field name → our field. Names that are ours already are listed when several foreign
#: names mean the same thing. Every name not listed here and not one of ours is kept as is.
FIELD_MAP: dict[str, str] = {
    "title": "title",
    "tags": "tags", "keywords": "tags", "categories": "tags", "category": "tags",
    "labels": "tags",
    "services": "services", "service": "services", "product": "services",
    "products": "services", "components": "services", "component": "services",
    "authors": "authors", "author": "authors",
    "date": "date",
    "start_time": "started_at", "starttime": "started_at", "started_at": "started_at",
    "detect_time": "detected_at", "detecttime": "detected_at", "detected_at": "detected_at",
    "mitigate_time": "mitigated_at", "mitigated_at": "mitigated_at",
    "end_time": "resolved_at", "endtime": "resolved_at", "resolved_at": "resolved_at",
    "severity": "severity",
    "summary": "summary",
}
#: For signatures, incident times only tell when the bug was seen.
SIGNATURE_TIMES = {"date": "first_seen", "started_at": "first_seen", "detected_at": "first_seen",
                   "mitigated_at": "last_seen", "resolved_at": "last_seen"}

#: ``1``, ``sev1``, ``SEV-2``, ``Sev 3``, ``S4``, ``P2`` → ``SEV1``…``SEV4``.
_SEVERITY_RE = re.compile(r"^(?:sev|s|p)?[\s_-]*([1-4])$", re.IGNORECASE)
#: An ATX level-1 heading, ``# Title``, at the start of a line.
_H1_RE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
#: Zone names some tools append to times: ``2016-05-31 14:00 UTC``.
_UTC_SUFFIX_RE = re.compile(r"\s*(?:UTC|GMT|Z)$", re.IGNORECASE)


class ImporterError(Exception):
    """The import as a whole cannot run (e.g. the folder is inside the content folder)."""


class Skip(Exception):
    """One source file cannot be imported; the message says why."""


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class ImportItem:
    source: str  #: path inside the import folder, forward slashes
    status: str  #: imported | updated | unchanged | skipped
    id: str | None = None
    path: str | None = None  #: the document's file, relative to the content dir
    reason: str | None = None  #: why it was skipped
    notes: list[str] = field(default_factory=list)  #: what the mapping assumed or set aside


@dataclass
class ImportReport:
    root: Path
    kind: str
    dry_run: bool = False
    items: list[ImportItem] = field(default_factory=list)

    def with_status(self, status: str) -> list[ImportItem]:
        return [item for item in self.items if item.status == status]

    @property
    def imported(self) -> list[ImportItem]:
        return self.with_status(IMPORTED)

    @property
    def updated(self) -> list[ImportItem]:
        return self.with_status(UPDATED)

    @property
    def unchanged(self) -> list[ImportItem]:
        return self.with_status(UNCHANGED)

    @property
    def skipped(self) -> list[ImportItem]:
        return self.with_status(SKIPPED)

    def summary(self) -> str:
        counts = ", ".join(f"{len(self.with_status(s))} {self._word(s)}"
                           for s in (IMPORTED, UPDATED, UNCHANGED, SKIPPED))
        tail = " (dry run: nothing written)" if self.dry_run else ""
        return f"{self.root}: {len(self.items)} file(s): {counts}{tail}"

    def lines(self) -> list[str]:
        """The report as text: one line per file, notes indented under it, then the summary."""
        out = []
        width = max((len(self._word(i.status)) for i in self.items), default=0)
        for item in self.items:
            word = self._word(item.status).ljust(width)
            if item.status == SKIPPED:
                out.append(f"{word}  {item.source}: {item.reason}")
            elif item.id:
                out.append(f"{word}  {item.source} → {item.id} ({item.path})")
            else:
                out.append(f"{word}  {item.source} → new {self.kind}")
            out.extend(f"{'':{width}}    · {note}" for note in item.notes)
        out.append(self.summary())
        return out

    def _word(self, status: str) -> str:
        return _DRY_RUN_WORDS[status] if self.dry_run else status


# --------------------------------------------------------------------------------------------
# Mapping one file


@dataclass
class Converted:
    """A source file turned into our front matter and body, ready for :meth:`Wiki.create`."""

    front_matter: dict[str, Any]
    body: str
    source_key: str
    notes: list[str]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _items(value: Any) -> list[str]:
    """A list, or a comma-separated string, as a list of non-empty strings."""
    if value is None:
        return []
    values = value.split(",") if isinstance(value, str) else value
    if not isinstance(values, list):
        values = [values]
    return [_text(v) for v in values if not isinstance(v, (dict, list)) and _text(v)]


def _tag(text: str) -> str:
    slug = d.slugify(text)
    if slug == "untitled":  # nothing ASCII in it: keep the words, lowercased
        slug = "-".join(text.lower().split())
    return slug


def _timestamp(value: Any) -> tuple[datetime, bool]:
    """A foreign time → (aware datetime, whether a zone had to be assumed). Raises ValueError.

    Accepts ISO 8601 (``T`` or a space, ``Z``), a trailing ``UTC``/``GMT``, a bare date (midnight)
    and Unix epoch seconds (Morgue stores those).
    """
    if isinstance(value, bool):
        raise ValueError("is not a time")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()
                                           and len(value.strip()) >= 9):
        return datetime.fromtimestamp(int(value), tz=UTC), False
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = _text(value)
        utc = bool(_UTC_SUFFIX_RE.search(text)) and not text.endswith(("z", "Z"))
        if utc:
            text = _UTC_SUFFIX_RE.sub("", text)
        parsed = datetime.fromisoformat(text)  # ValueError when it is not ISO 8601
        if utc:
            parsed = parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=UTC), True
    return parsed, False


def _day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = _text(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return _timestamp(value)[0].date()


def _severity(value: Any) -> Any:
    m = _SEVERITY_RE.match(_text(value))
    return f"SEV{m.group(1)}" if m else value


def _first_heading(body: str) -> str:
    m = _H1_RE.search(body)
    return m.group(1).strip() if m else ""


def _title_from_file(rel: str) -> str:
    words = re.sub(r"[_\s-]+", " ", Path(rel).stem).strip()
    return words[:1].upper() + words[1:] if words else ""


def _with_summary(body: str, summary: str) -> str:
    """Put ``summary`` in a ``## Summary`` section at the top (after a leading ``# Title``)."""
    section = f"## Summary\n\n{summary.strip()}\n"
    lines = body.lstrip("\n").split("\n")
    if lines and _H1_RE.match(lines[0]):
        rest = "\n".join(lines[1:]).lstrip("\n")
        return f"{lines[0]}\n\n{section}" + (f"\n{rest}" if rest else "")
    rest = "\n".join(lines).strip("\n")
    return section + (f"\n{rest}\n" if rest else "")


def source_key(loaded: dict, rel: str) -> str:
    """What identifies the original across imports: its uuid, else its url, else its path."""
    for name in ORIGIN_KEYS:
        text = _text(loaded.get(name))
        if text and not isinstance(loaded.get(name), (dict, list)):
            return f"{name}:{text}"
    return f"file:{rel}"


def fingerprint(front_matter: dict, body: str) -> str:
    """A hash of a document's content, ignoring its id, dates of edit and import record."""
    fm = {k: v for k, v in front_matter.items()
          if k not in ("id", "created", "updated", ORIGIN_FIELD)}
    data = json.dumps(d.json_value(fm), sort_keys=True, ensure_ascii=False, default=str)
    return d.content_hash((data + "\n" + body.strip()).encode("utf-8"))


def convert(raw: bytes, rel: str, kind: d.Kind, vocab: d.Vocabulary | None = None) -> Converted:
    """Map one foreign file to our schema. Raises :class:`Skip` saying why it cannot be imported."""
    try:
        text, _bom, _newline = d.decode(raw)
        yaml_text, body = d.split_front_matter(text)
        loaded, _lines = d.load_front_matter(yaml_text)
    except d.DocumentError as exc:
        raise Skip(str(exc)) from None

    notes: list[str] = []
    fm: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    origin: dict[str, Any] = {}
    assumed_utc: list[str] = []
    ours = d.FIELDS[kind.name]

    def keep(name: str, value: Any, why: str | None = None) -> None:
        # A field of ours holding something we cannot use is set aside under another name,
        # so that validation does not reject the whole file and nothing is lost.
        target = f"source_{name}" if (name in ours or name == ORIGIN_FIELD) else name
        kept[target] = value
        if why:
            notes.append(f"{name}: {why}; kept as {target}")

    for name, value in loaded.items():
        key = name.lower()
        target = FIELD_MAP.get(key)
        if kind is d.SIGNATURE and target in SIGNATURE_TIMES:
            target = SIGNATURE_TIMES[target]
        if key in ORIGIN_KEYS or key == "id":
            origin[key] = value
        elif target == "title":
            fm["title"] = value
        elif target == "tags":
            fm.setdefault("tags", [])
            fm["tags"] += [t for t in map(_tag, _items(value)) if t not in fm["tags"]]
        elif target in ("services", "authors"):
            fm.setdefault(target, [])
            fm[target] += [t for t in _items(value) if t not in fm[target]]
        elif target in d.TIMESTAMPS:
            if value in (None, ""):
                continue
            try:
                fm[target], naive = _timestamp(value)
            except ValueError:
                keep(name, value, f"{value!r} is not a date-time")
                continue
            if naive:
                assumed_utc.append(name)
        elif target in ("date", "first_seen", "last_seen"):
            if value in (None, ""):
                continue
            try:
                day = _day(value)
            except ValueError:
                keep(name, value, f"{value!r} is not a date")
                continue
            if target == "first_seen" and fm.get(target):
                day = min(day, fm[target])
            if target == "last_seen" and fm.get(target):
                day = max(day, fm[target])
            fm[target] = day
        elif target == "severity" and kind is d.POSTMORTEM:
            fm["severity"] = _severity(value)
        elif target == "summary" and isinstance(value, str) and value.strip():
            fm["summary"] = value
        elif key == "status":
            if _text(value).lower() in kind.statuses:
                fm["status"] = _text(value).lower()
            else:
                keep(name, value, f"{_text(value)!r} is not one of: {', '.join(kind.statuses)}")
        elif name in ours and name not in ("slug",):
            fm[name] = value  # validated below; set aside if it does not validate
        else:
            keep(name, value)

    if assumed_utc:
        notes.append(f"times without a zone read as UTC: {', '.join(assumed_utc)}")
    if kind is d.POSTMORTEM and not fm.get("date") and isinstance(fm.get("started_at"), datetime):
        fm["date"] = fm["started_at"].astimezone(UTC).date()

    if not _text(fm.get("title")) and not isinstance(fm.get("title"), (list, dict)):
        title = _first_heading(body)
        where = "the first heading"
        if not title:
            title, where = _title_from_file(rel), "the file name"
        fm["title"] = title
        notes.append(f"title: missing; taken from {where}")

    summary = fm.get("summary")
    if kind is d.POSTMORTEM and summary is not None:
        if not any(t.lower() == "summary" for t, _ in d.split_sections(body)):
            body = _with_summary(body, summary)
            del fm["summary"]
            notes.append("summary: moved into the body's Summary section")

    # Postmortems written in another tool are finished reports, not drafts.
    fm.setdefault("status", "published" if kind is d.POSTMORTEM else "active")
    fm = _validated(kind, fm, kept, notes, vocab)
    fm.update(kept)
    origin = {"source": source_key({**origin}, rel), "file": rel,
              **{k: origin[k] for k in ("uuid", "url", "id") if k in origin}}
    fm[ORIGIN_FIELD] = origin
    return Converted(fm, body, origin["source"], notes)


def _validated(kind: d.Kind, fm: dict, kept: dict, notes: list[str],
               vocab: d.Vocabulary | None) -> dict:
    """Check ``fm`` as :meth:`Wiki.create` will; set aside optional fields that do not validate.

    Only a bad title (or an error that names no field) makes the file impossible to import.
    """
    fm = dict(fm)
    while True:
        try:
            d.validate(kind, {**d.DEFAULTS[kind.name], **fm, "id": f"{kind.prefix}-1"}, vocab)
            return fm
        except d.DocumentError as exc:
            fatal = [e for e in exc.errors if e.field not in fm or e.field in ("title", "id")]
            if fatal:
                raise Skip("; ".join(str(e) for e in fatal)) from None
            for error in exc.errors:
                if error.field not in fm:  # two errors about one field
                    continue
                kept[f"source_{error.field}"] = d.json_value(fm.pop(error.field))
                notes.append(f"{error.field}: {error.message}; kept as source_{error.field}")


# --------------------------------------------------------------------------------------------
# The folder


def _source_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = [p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _imported_documents(wiki: Wiki) -> dict[str, d.Document]:
    """Documents in content/ that came from an import, by source key."""
    out: dict[str, d.Document] = {}
    for info in wiki.store.files():
        doc, _problems = wiki.store.read_or_problems(info.path)
        origin = doc.get(ORIGIN_FIELD) if doc else None
        if isinstance(origin, dict) and origin.get("source"):
            out.setdefault(str(origin["source"]), doc)
    return out


def import_folder(wiki: Wiki, path: Path | str, kind: str | d.Kind = "postmortem",
                  dry_run: bool = False) -> ImportReport:
    """Import every Markdown file under ``path`` as documents of ``kind``; see the module doc.

    With ``dry_run`` nothing is written (not even the database): the report says what would be.
    Raises :class:`ImporterError` when ``path`` does not exist or lies inside the content folder.
    """
    kind = d.KINDS[kind] if isinstance(kind, str) else kind
    root = Path(path).resolve()
    if not root.exists():
        raise ImporterError(f"{path} does not exist")
    content = wiki.content_dir.resolve()
    if root == content or content in root.parents:
        raise ImporterError(f"{path} is inside the content folder {content}; "
                            "import from a copy outside it")
    base = root.parent if root.is_file() else root
    report = ImportReport(root, kind.name, dry_run)
    if not dry_run:
        wiki.sync()  # Wiki.update looks documents up in the database
    existing = _imported_documents(wiki)
    seen: dict[str, str] = {}

    for file in _source_files(root):
        rel = file.relative_to(base).as_posix()
        item = ImportItem(rel, SKIPPED)
        report.items.append(item)
        try:
            _import_file(wiki, file, rel, kind, item, existing, seen, dry_run)
        except Skip as exc:
            item.status, item.reason = SKIPPED, str(exc)
    return report


def _import_file(wiki: Wiki, file: Path, rel: str, kind: d.Kind, item: ImportItem,
                 existing: dict[str, d.Document], seen: dict[str, str], dry_run: bool) -> None:
    try:
        size = file.stat().st_size
        if size > wiki.store.max_bytes:
            raise Skip(f"file is {size:,} bytes; the limit is {wiki.store.max_bytes:,}")
        raw = file.read_bytes()
    except OSError as exc:
        raise Skip(f"cannot read: {exc.strerror}") from None

    converted = convert(raw, rel, kind, wiki.vocab)
    item.notes = converted.notes
    key = converted.source_key
    if key in seen:
        raise Skip(f"same {key.split(':', 1)[0]} as {seen[key]}, imported just before")
    seen[key] = rel
    fm, body = converted.front_matter, converted.body
    fm[ORIGIN_FIELD]["hash"] = d.content_hash(raw)

    current = existing.get(key)
    if current is not None:
        item.id, item.path = current.id, current.path
        if current.kind is not kind:
            raise Skip(f"already imported as {current.id}, a {current.kind.name}")
        origin = current.get(ORIGIN_FIELD)
        if origin.get("hash") == fm[ORIGIN_FIELD]["hash"]:
            item.status, item.notes = UNCHANGED, []
            return
        if origin.get("fingerprint") != fingerprint(current.front_matter, current.body):
            raise Skip(f"{current.id} was edited in the wiki since it was imported; "
                       "not overwritten")

    # What Wiki.create/update will write, to recognise later edits made in the wiki.
    valid = d.validate(kind, {**d.DEFAULTS[kind.name], **fm, "id": f"{kind.prefix}-1"}, wiki.vocab)
    fm[ORIGIN_FIELD]["fingerprint"] = fingerprint(valid, body)
    if dry_run:
        item.status = UPDATED if current is not None else IMPORTED
        return
    try:
        if current is None:
            doc = wiki.create(kind, fm, body, message=f"Import {rel}")
            item.status = IMPORTED
        else:
            fm.setdefault("created", current.get("created"))
            doc = wiki.update(current.id, fm, body, current.revision, message=f"Re-import {rel}")
            item.status = UPDATED
    except (d.DocumentError, StoreError) as exc:
        raise Skip(str(exc)) from None
    item.id, item.path = doc.id, doc.path
