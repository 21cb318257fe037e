"""The content store: ``content/`` on disk, the source of truth. No Flask.

* reads documents (and reports broken files as :class:`Problem` instead of failing),
* writes them atomically (temp file in the same folder, fsync, rename, fsync of the folder),
* assigns ids that are never reused (counters in ``content/.wiki-ids.yml``, under a file lock),
* refuses to overwrite a newer revision (:class:`StaleRevision`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import documents as d

IDS_FILE = ".wiki-ids.yml"


class StoreError(Exception):
    """Base class for content-store errors."""


class NotFound(StoreError):
    pass


class StaleRevision(StoreError):
    """A save based on a revision that is no longer the current one."""

    def __init__(self, ident: str, expected: str | None, current: str | None):
        self.ident, self.expected, self.current = ident, expected, current
        super().__init__(f"{ident} changed since revision {expected} (now {current})")


@dataclass
class Problem:
    """Why a content file could not be used."""

    path: str
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        name = f" {self.field}:" if self.field else ""
        return f"{where}:{name} {self.message}"


@dataclass
class FileInfo:
    path: str  #: relative, forward slashes
    mtime_ns: int
    size: int


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads, each opening its own descriptor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Store:
    def __init__(
        self,
        content_dir: Path | str,
        data_dir: Path | str,
        vocab: d.Vocabulary | None = None,
        max_bytes: int = 2_000_000,
    ):
        self.root = Path(content_dir)
        self.data_dir = Path(data_dir)
        self.vocab = vocab or d.Vocabulary()
        self.max_bytes = max_bytes

    # -- reading ---------------------------------------------------------------------------

    def files(self) -> list[FileInfo]:
        """Every ``*.md`` file of every kind folder, with its stat, sorted by path."""
        out = []
        for kind in d.KINDS.values():
            folder = self.root / kind.folder
            if not folder.is_dir():
                continue
            for path in folder.rglob("*.md"):
                if any(part.startswith(".") for part in path.relative_to(self.root).parts):
                    continue
                try:
                    st = path.stat()
                except OSError:
                    continue
                if path.is_file():
                    out.append(FileInfo(self.relative(path), st.st_mtime_ns, st.st_size))
        return sorted(out, key=lambda f: f.path)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> d.Document:
        """Parse one file. Raises :class:`documents.DocumentError` (with ``path``) when broken."""
        path = self.absolute(rel)
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise d.DocumentError(
                    [d.FieldError(None, f"file is {size:,} bytes; the limit is "
                                        f"{self.max_bytes:,} (WIKI_MAX_FILE_BYTES)")], rel)
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(rel) from None
        except OSError as exc:
            raise d.DocumentError(
                [d.FieldError(None, f"cannot read: {exc.strerror}")], rel) from None
        return d.parse(data, d.kind_for_path(rel), rel, self.vocab, self.max_bytes)

    def read_or_problems(self, rel: str) -> tuple[d.Document | None, list[Problem]]:
        try:
            return self.read(rel), []
        except d.DocumentError as exc:
            return None, problems_from(exc, rel)

    def scan(self) -> tuple[dict[str, d.Document], list[Problem]]:
        """Read everything: ``{id: Document}`` and problems; the first path wins a duplicate id."""
        docs: dict[str, d.Document] = {}
        problems: list[Problem] = []
        for info in self.files():
            doc, errs = self.read_or_problems(info.path)
            problems.extend(errs)
            if doc is None:
                continue
            if doc.id in docs:
                problems.append(Problem(info.path, f"duplicate id {doc.id}: also used by "
                                                   f"{docs[doc.id].path}; this file is ignored",
                                        field="id"))
                continue
            docs[doc.id] = doc
        return docs, problems

    # -- ids -------------------------------------------------------------------------------

    @property
    def _ids_path(self) -> Path:
        return self.root / IDS_FILE

    def _read_counters(self) -> dict[str, int]:
        try:
            data = yaml.safe_load(self._ids_path.read_text("utf-8")) or {}
        except (FileNotFoundError, yaml.YAMLError, UnicodeDecodeError):
            data = {}
        return {str(k): int(v) for k, v in data.items() if str(v).isdigit()}

    def allocate_id(self, kind: d.Kind, taken: set[str] | None = None) -> str:
        """The next id of a kind: above the counter and every id on disk; then bump the counter."""
        with file_lock(self.data_dir / "locks" / "ids.lock"):
            counters = self._read_counters()
            highest = counters.get(kind.prefix, 1) - 1
            if kind.prefix not in counters:
                # No counter yet (a new content repository): file names tell the ids in use.
                # With a counter, ``taken`` (the database's ids) covers hand-written files, and
                # listing every file on every create would cost ~250 ms at 10,000 documents.
                for info in self.files():
                    stem = Path(info.path).name.split("-")
                    if len(stem) > 1 and stem[0].upper() == kind.prefix and stem[1].isdigit():
                        highest = max(highest, int(stem[1]))
            for ident in taken or ():
                parsed = d.parse_id(ident)
                if parsed and parsed[0] is kind:
                    highest = max(highest, parsed[1])
            number = highest + 1
            counters[kind.prefix] = number + 1
            self._write_counters(counters)
            return f"{kind.prefix}-{number}"

    def _write_counters(self, counters: dict[str, int]) -> None:
        body = "# Next id of each kind. Ids are never reused, even after a document is deleted.\n"
        body += "".join(f"{k}: {v}\n" for k, v in sorted(counters.items()))
        atomic_write(self._ids_path, body.encode())

    # -- writing ---------------------------------------------------------------------------

    def path_for(self, doc: d.Document) -> str:
        return f"{doc.kind.folder}/{doc.id}-{doc.slug[:60].strip('-')}.md"

    def write(self, doc: d.Document, expected_revision: str | None = None) -> d.Document:
        """Write ``doc`` (new or existing) atomically and return it with its new revision.

        When ``expected_revision`` is given and the file on disk has another revision, nothing is
        written and :class:`StaleRevision` is raised. Files keep their path (and so their git
        history) when the title changes; new documents get ``<folder>/<ID>-<slug>.md``.
        """
        rel = doc.path or self.path_for(doc)
        path = self.absolute(rel)
        with file_lock(self.data_dir / "locks" / "write.lock"):
            if expected_revision is not None:
                current = d.content_hash(path.read_bytes()) if path.exists() else None
                if current != expected_revision:
                    raise StaleRevision(doc.id, expected_revision, current)
            data = d.to_bytes(doc)
            atomic_write(path, data)
        doc.path = rel
        doc.revision = d.content_hash(data)
        return doc

    def delete(self, doc: d.Document, expected_revision: str | None = None) -> None:
        path = self.absolute(doc.path)
        with file_lock(self.data_dir / "locks" / "write.lock"):
            if not path.exists():
                raise NotFound(doc.path)
            if expected_revision is not None:
                current = d.content_hash(path.read_bytes())
                if current != expected_revision:
                    raise StaleRevision(doc.id, expected_revision, current)
            path.unlink()
        self.retire_id(doc.id)

    def retire_id(self, ident: str) -> None:
        """Make sure ``ident`` is never handed out again (the counter moves past it)."""
        parsed = d.parse_id(ident)
        if parsed is None:
            return
        kind, number = parsed
        with file_lock(self.data_dir / "locks" / "ids.lock"):
            counters = self._read_counters()
            if counters.get(kind.prefix, 1) > number:
                return
            counters[kind.prefix] = number + 1
            self._write_counters(counters)


def problems_from(exc: d.DocumentError, rel: str) -> list[Problem]:
    return ([Problem(rel, e.message, e.line, e.field) for e in exc.errors]
            or [Problem(rel, str(exc))])
