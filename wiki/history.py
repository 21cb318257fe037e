"""Revisions of documents: recording, listing, reading, diffing, restoring and 3-way merging.

Every save through :class:`wiki.core.Wiki` reaches :meth:`History.on_save` (the wiki's listener
hook) and becomes a revision with an author, a time and a message. Two places keep them:

* **git** — when ``content/`` is inside a git repository, each save is a commit of that one file.
  The commit is built with plumbing (``hash-object``, a temporary index, ``commit-tree``,
  ``update-ref``) so it holds exactly the bytes of that save, runs no hooks, asks for no GPG
  passphrase, and leaves the user's staged work alone (only the saved path's index entry is
  reset to the new commit). Nothing touches git's configuration: identities go in environment
  variables. Commits are made under ``DATA_DIR/locks/git.lock``.
* **the data dir** — otherwise (and whenever git fails, so a save is never lost from history),
  ``DATA_DIR/revisions/<ID>/`` holds the bytes of each revision, named by their hash, and
  ``log.jsonl``: one JSON object a line (``revision``, ``time``, ``author``, ``message``,
  ``path``).

A revision is named by :func:`wiki.documents.content_hash` of the file's bytes — the same value
the editor keeps as its base revision — whichever place holds it. A document whose current file
is in neither place (hand-written content, edits made on disk, files git does not hold as they
are) gets it recorded in the data dir as ``(imported from disk)`` at sync time and, lazily, when
its history is listed, so the original of a hand-written document survives its first edit in
the browser. Deletions are revisions too (:meth:`History.on_delete`).

Diffs are structures (lines and rows of ``(text, changed)`` segments) for templates to escape;
nothing here produces HTML. :func:`merge3` is a line-based 3-way merge with git-style conflict
markers, for the editor's conflict view.

No Flask here except :func:`init_app`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import documents as d
from .store import IDS_FILE, NotFound, atomic_write, file_lock

log = logging.getLogger(__name__)

DEFAULT_AUTHOR = "Postmortem Wiki <wiki@localhost>"
IMPORTED = "(imported from disk)"
#: At most this many commits are listed for one document.
MAX_REVISIONS = 1000
#: Shortest revision prefix accepted in URLs and by :meth:`History.get`.
MIN_PREFIX = 6
BACKENDS = ("auto", "git", "files")

__all__ = [
    "History", "HistoryError", "RevisionNotFound", "GitError", "Revision", "Diff", "DiffLine",
    "SideBySideRow", "unified_diff", "inline_diff", "side_by_side", "merge3", "init_app",
]


class HistoryError(Exception):
    """Base class for history errors."""


class RevisionNotFound(HistoryError):
    def __init__(self, ident: str, revision: str):
        self.ident, self.revision = ident, revision
        super().__init__(f"{ident} has no revision {revision}")


class GitError(HistoryError):
    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr
        super().__init__(f"git {' '.join(args[:2])} failed ({returncode}): {stderr.strip()}")


@dataclass(frozen=True)
class Revision:
    """One saved state of a document's file."""

    revision: str | None  #: content hash of the file bytes; ``None`` for a deletion
    time: datetime  #: UTC
    author: str
    message: str
    path: str  #: relative to the content dir
    commit: str | None = None  #: git commit id, when git holds this revision
    blob: str | None = field(default=None, repr=False, compare=False)  #: git blob id
    repo_path: str | None = field(default=None, repr=False, compare=False)

    @property
    def short(self) -> str:
        return (self.revision or "deleted")[:8]

    @property
    def deleted(self) -> bool:
        return self.revision is None

    @property
    def source(self) -> str:
        return "git" if self.commit else "files"


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def split_author(author: str | None, default: str = DEFAULT_AUTHOR) -> tuple[str, str]:
    """``"Ana <ana@example.com>"`` → ``("Ana", "ana@example.com")``; a bare name gets the
    default's email. Characters git refuses in identities (``<>`` and control characters) go."""

    def clean(text: str) -> str:
        return " ".join("".join(c for c in text if c not in "<>" and c.isprintable()).split())

    def split(text: str) -> tuple[str, str]:
        text = " ".join(text.split())
        if text.endswith(">") and "<" in text:
            name, _, email = text[:-1].rpartition("<")
            return clean(name), clean(email)
        return clean(text), ""

    default_name, default_email = split(default)
    name, email = split(author or "")
    if not name and not email:
        return default_name or "Postmortem Wiki", default_email or "wiki@localhost"
    return name or email, email or default_email or "wiki@localhost"


def format_author(author: str | None, default: str = DEFAULT_AUTHOR) -> str:
    name, email = split_author(author, default)
    return f"{name} <{email}>"


def _decode(data: bytes) -> str:
    """File bytes as text for display and diffs: ``\\n`` newlines, no BOM, never an error."""
    text = data.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


# --------------------------------------------------------------------------------------------
# The data dir: revisions/<ID>/log.jsonl and revisions/<ID>/<hash>


class RevisionLog:
    """Revisions kept in the data dir, one folder per document id."""

    def __init__(self, data_dir: Path):
        self.root = data_dir / "revisions"
        self.lock_path = data_dir / "locks" / "revisions.lock"

    def _folder(self, ident: str) -> Path:
        norm = d.normalise_id(ident)
        if norm is None:
            raise NotFound(ident)
        return self.root / norm

    def entries(self, ident: str) -> list[Revision]:
        """The logged revisions of a document, oldest first."""
        path = self._folder(ident) / "log.jsonl"
        try:
            lines = path.read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                out.append(Revision(
                    revision=raw.get("revision"), time=_parse_time(raw["time"]),
                    author=str(raw.get("author") or ""), message=str(raw.get("message") or ""),
                    path=str(raw.get("path") or ""),
                ))
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("%s:%d: unreadable revision log line skipped", path, number)
        return out

    def blob(self, ident: str, revision: str) -> bytes | None:
        if not revision.isalnum():
            return None
        try:
            return (self._folder(ident) / revision).read_bytes()
        except FileNotFoundError:
            return None

    def record(self, ident: str, data: bytes | None, author: str, message: str, path: str,
               time: datetime | None = None, unless_logged: bool = False) -> Revision | None:
        """Append a revision (``data=None``: a deletion).

        With ``unless_logged`` (an import of a file that is on disk anyway) nothing happens when
        a revision with these bytes is logged already, and nothing is fsynced: importing a whole
        wiki at its first start stays cheap."""
        revision = d.content_hash(data) if data is not None else None
        entry = Revision(revision, (time or _now()).astimezone(UTC), author, message, path)
        folder = self._folder(ident)
        with file_lock(self.lock_path):
            if unless_logged and any(e.revision == revision for e in self.entries(ident)):
                return None
            folder.mkdir(parents=True, exist_ok=True)
            if data is not None and not (folder / revision).exists():
                if unless_logged:
                    tmp = folder / f".{revision}.tmp"
                    tmp.write_bytes(data)
                    os.replace(tmp, folder / revision)
                else:
                    atomic_write(folder / revision, data)
            line = json.dumps({
                "revision": entry.revision, "time": entry.time.isoformat(),
                "author": entry.author, "message": entry.message, "path": entry.path,
            }, ensure_ascii=False)
            with open(folder / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                if not unless_logged:
                    os.fsync(fh.fileno())
        return entry


    def import_many(self, docs: Iterable[d.Document], root: Path) -> int:
        """Log the files of these documents as they are on disk now, ``(imported from disk)``,
        skipping revisions logged already (what :meth:`record` does with ``unless_logged``, for a
        whole sync under one lock: a first start imports 10,000 files in a few seconds).

        Never raises; returns how many revisions were logged."""
        logged = 0
        with file_lock(self.lock_path):
            for doc in docs:
                try:
                    logged += self._import_one(doc, root)
                except Exception:
                    log.exception("history: could not import %s", doc.id)
        return logged

    def _import_one(self, doc: d.Document, root: Path) -> bool:
        folder = self._folder(doc.id)
        try:
            folder.mkdir(parents=True)
        except FileExistsError:  # revisions exist: is this one among them?
            if doc.revision and any(e.revision == doc.revision for e in self.entries(doc.id)):
                return False
        path = root / doc.path
        try:
            data = path.read_bytes()
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
        except FileNotFoundError:
            return False
        revision = d.content_hash(data)
        if revision != doc.revision and any(e.revision == revision
                                            for e in self.entries(doc.id)):
            return False  # changed again since the sync read it, to a logged revision
        blob = folder / revision
        if not blob.exists():
            tmp = folder / f".{revision}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, blob)
        line = json.dumps({
            "revision": revision, "time": mtime.isoformat(), "author": "",
            "message": IMPORTED, "path": doc.path,
        }, ensure_ascii=False)
        with open(folder / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return True


# --------------------------------------------------------------------------------------------
# Git, through its command line


class GitRepo:
    """The git repository holding the content dir; commands run at its top level."""

    TIMEOUT = 60

    def __init__(self, toplevel: Path, prefix: str):
        self.toplevel = toplevel
        self.prefix = prefix  #: the content dir relative to the top level, ``""`` or ``"x/y/"``
        self._hashes: dict[tuple[str, str], str] = {}  #: (blob, path) → content hash

    @classmethod
    def discover(cls, content_dir: Path) -> GitRepo | None:
        """The repository ``content_dir`` is in, or ``None`` (no repository, no git)."""
        try:
            result = subprocess.run(
                ["git", "rev-parse", "--show-toplevel", "--show-prefix"], cwd=content_dir,
                capture_output=True, stdin=subprocess.DEVNULL, timeout=cls.TIMEOUT,
                env=cls._env(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("history: git not usable (%s); revisions go to the data dir", exc)
            return None
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", "replace").strip()
            if "dubious ownership" in stderr:
                log.warning("history: git refuses %s (%s); revisions go to the data dir",
                            content_dir, stderr.splitlines()[0])
            return None
        lines = result.stdout.decode("utf-8").split("\n")
        return cls(Path(lines[0]), lines[1] if len(lines) > 1 else "")

    @staticmethod
    def _env(extra: dict | None = None) -> dict:
        env = dict(os.environ)
        env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C",
                    "GIT_OPTIONAL_LOCKS": "0"})
        env.update(extra or {})
        return env

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(
                ["git", *args], cwd=self.toplevel, input=input, capture_output=True,
                stdin=None if input is not None else subprocess.DEVNULL,
                timeout=self.TIMEOUT, env=self._env(env),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise GitError(args, -1, str(exc)) from exc
        if check and result.returncode != 0:
            raise GitError(args, result.returncode, result.stderr.decode("utf-8", "replace"))
        return result

    def out(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.decode("utf-8", "replace").strip()

    def repo_path(self, rel: str) -> str:
        return self.prefix + rel

    def is_ignored(self, rel: str) -> bool:
        # check-ignore takes paths, not pathspecs, and refuses the literal magic
        result = self.run("check-ignore", "-q", "--", self.repo_path(rel), check=False,
                          env={"GIT_LITERAL_PATHSPECS": "0"})
        if result.returncode not in (0, 1):
            raise GitError(("check-ignore",), result.returncode,
                           result.stderr.decode("utf-8", "replace"))
        return result.returncode == 0

    def head(self) -> str | None:
        result = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        if result.returncode != 0:
            return None  # an unborn branch: no commit yet
        return result.stdout.decode().strip() or None

    # -- reading -----------------------------------------------------------------------------

    def log(self, rel: str, limit: int = MAX_REVISIONS) -> list[Revision]:
        """Commits touching the file (following renames), newest first."""
        if self.head() is None:
            return []
        out = self.run(
            "log", "--follow", "--raw", "--no-abbrev", "-z", "--diff-merges=first-parent",
            f"-n{limit}", "--format=%x1e%H%x1f%aN <%aE>%x1f%aI%x1f%B%x1f", "--",
            self.repo_path(rel),
        ).stdout
        entries = []
        for chunk in out.split(b"\x1e")[1:]:
            parts = chunk.split(b"\x1f")
            if len(parts) < 5:
                continue
            commit, author, when, message = (p.decode("utf-8", "replace") for p in parts[:4])
            raw = [t for t in parts[4].split(b"\0") if t.strip()]
            # raw: ":<mode> <mode> <old blob> <new blob> <status>", path (, new path)
            if not raw or not raw[0].lstrip().startswith(b":"):
                continue  # e.g. a merge identical to its first parent
            meta = raw[0].lstrip().decode().split()
            blob, status = meta[3], meta[4]
            path = raw[-1].decode("utf-8", "surrogateescape")
            deleted = status.startswith("D")
            rel_path = path[len(self.prefix):] if path.startswith(self.prefix) else path
            entries.append(Revision(
                revision=None if deleted else "", time=_parse_time(when), author=author,
                message=message.strip(), path=rel_path, commit=commit,
                blob=None if deleted else blob, repo_path=path,
            ))
            if status.startswith("C"):
                break  # --follow finds copies too: older commits are another file's history
        self._hash_blobs([(e.blob, e.repo_path) for e in entries if e.blob])
        return [
            e if e.blob is None else Revision(
                self._hashes.get((e.blob, e.repo_path)), e.time, e.author, e.message, e.path,
                e.commit, e.blob, e.repo_path)
            for e in entries
            if e.blob is None or (e.blob, e.repo_path) in self._hashes
        ]

    def _hash_blobs(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Fill the (blob, path) → content-hash cache, reading blobs as checked out (filters)."""
        missing = list(dict.fromkeys(w for w in wanted if w not in self._hashes))
        if not missing:
            return
        request = "".join(f"{blob} {path}\n" for blob, path in missing).encode(
            "utf-8", "surrogateescape")
        out = self.run("cat-file", "--batch", "--filters", input=request).stdout
        pos = 0
        for key in missing:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[1] != b"blob":
                continue
            size = int(header[2])
            self._hashes[key] = d.content_hash(out[pos:pos + size])
            pos += size + 1

    def read(self, revision: Revision) -> bytes:
        return self.run("cat-file", "--filters", f"--path={revision.repo_path}",
                        revision.blob).stdout

    # -- writing -----------------------------------------------------------------------------

    def commit_files(self, changes: dict[str, bytes | None], author: tuple[str, str],
                     committer: tuple[str, str], message: str, tmp_dir: Path) -> str | None:
        """Commit ``changes`` (content-dir path → bytes, or ``None`` for a removal) as the only
        changes on top of HEAD.

        Returns the new commit id, or ``None`` when HEAD already has exactly this. The user's
        index keeps everything staged for other paths; the committed paths' entries are reset to
        the new commit, as ``git commit -- <path>`` would leave them.
        """
        paths = {self.repo_path(rel): data for rel, data in changes.items()}
        head = self.head()
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, index = tempfile.mkstemp(prefix="git-index.", dir=tmp_dir)
        os.close(fd)
        os.unlink(index)  # git creates it
        env = {"GIT_INDEX_FILE": index}
        try:
            if head:
                self.run("read-tree", head, env=env)
            for path, data in paths.items():
                if data is None:
                    self.run("update-index", "--force-remove", "--", path, env=env)
                    continue
                blob = self.out("hash-object", "-w", "--stdin", f"--path={path}", input=data)
                mode = "100644"
                if head and self.out("ls-tree", head, "--", path).startswith("100755"):
                    mode = "100755"
                self.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}",
                         env=env)
            tree = self.out("write-tree", env=env)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index)
        if head and tree == self.out("rev-parse", f"{head}^{{tree}}"):
            return None
        ident = {
            "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1],
        }
        parents = ["-p", head] if head else []
        commit = self.out("commit-tree", "--no-gpg-sign", tree, *parents, input=message.encode(),
                          env=ident)
        self.run("update-ref", "-m", f"wiki: {message.splitlines()[0]}", "HEAD", commit,
                 head or "0" * 40)
        # The user's index: only the committed paths follow the new commit.
        reset = self.run("reset", "-q", commit, "--", *paths, check=False)
        if reset.returncode not in (0, 1):
            log.warning("history: committed %s but could not update the index: %s",
                        commit[:10], reset.stderr.decode("utf-8", "replace").strip())
        return commit

    def dirty(self) -> set[str]:
        """Content-dir paths that HEAD does not hold as they are: modified, untracked, ignored."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all",
                       "--ignored=traditional", "--", self.prefix or ".").stdout
        tokens = out.split(b"\0")
        paths, n = set(), 0
        while n < len(tokens):
            token = tokens[n]
            n += 1
            if len(token) < 4:
                continue
            if token[:1] in b"RC":
                n += 1  # a rename or copy: the next token is the original path
            path = token[3:].decode("utf-8", "surrogateescape")
            if path.startswith(self.prefix):
                paths.add(path[len(self.prefix):])
        return paths

    def committed_blob_matches(self, rel: str) -> bool:
        """Whether HEAD already holds the file exactly as it is on disk."""
        path = self.repo_path(rel)
        on_disk = self.run("hash-object", f"--path={path}", "--", path, check=False)
        in_head = self.run("rev-parse", "-q", "--verify", f"HEAD:{path}", check=False)
        return (on_disk.returncode == 0 and in_head.returncode == 0
                and on_disk.stdout.strip() == in_head.stdout.strip())


# --------------------------------------------------------------------------------------------
# History


class History:
    """Revisions of every document, listening to the :class:`~wiki.core.Wiki`'s saves."""

    def __init__(self, wiki, author: str | None = None, backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"HISTORY must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.wiki = wiki
        self.default_author = format_author(author or DEFAULT_AUTHOR, DEFAULT_AUTHOR)
        self.files = RevisionLog(wiki.data_dir)
        self.git = None if backend == "files" else GitRepo.discover(wiki.content_dir)
        if backend == "git" and self.git is None:
            log.warning("history: %s is not in a git repository; revisions go to the data dir",
                        wiki.content_dir)
        self.git_lock = wiki.data_dir / "locks" / "git.lock"

    @property
    def backend(self) -> str:
        return "git" if self.git else "files"

    # -- listener hooks ----------------------------------------------------------------------

    def on_save(self, doc: d.Document, wiki=None, author: str | None = None,
                message: str | None = None) -> None:
        """Record a save. Never raises: the file is written already, whatever happens here."""
        try:
            data = d.to_bytes(doc)
            if d.content_hash(data) != doc.revision:  # not what the store wrote: use the file
                data = self.wiki.store.absolute(doc.path).read_bytes()
            self._record(doc.id, doc.path, data, author, message or "Edit")
        except Exception:
            log.exception("history: could not record the save of %s", doc.id)

    def on_delete(self, doc: d.Document, wiki=None, author: str | None = None,
                  message: str | None = None) -> None:
        """Record a deletion (a commit in git mode). Never raises."""
        try:
            self._record(doc.id, doc.path, None, author, message or "Delete")
        except Exception:
            log.exception("history: could not record the deletion of %s", doc.id)

    def on_sync(self, report, wiki=None, full: bool = False) -> None:
        """Keep the on-disk state of documents that changed outside the app (in git mode: only
        those git does not hold as they are), so that the first browser edit of a hand-written
        document does not lose its original."""
        changed = list(report.changed)
        if changed and self.git is not None:
            try:
                dirty = self.git.dirty()
            except GitError as exc:
                log.error("history: git status failed: %s", exc)
                return
            changed = [doc for doc in changed if doc.path in dirty]
        if changed:
            self.files.import_many(changed, self.wiki.store.root)

    def _record(self, ident: str, rel: str, data: bytes | None, author: str | None,
                message: str) -> None:
        time = _now()
        who = format_author(author, self.default_author)
        if self.git is not None:
            try:
                if self._commit(ident, rel, data, who, message):
                    return
            except (GitError, OSError) as exc:
                log.error("history: git commit of %s failed, revision kept in the data dir: %s",
                          rel, exc)
        self.files.record(ident, data, who, message, rel, time)

    def _commit(self, ident: str, rel: str, data: bytes | None, who: str, message: str) -> bool:
        """Commit one save; ``False`` when it belongs in the data dir instead."""
        if self.git.is_ignored(rel):
            return False
        with file_lock(self.git_lock):
            if data is not None and self._superseded(rel, data):
                # A later save is committed already; committing this one on top would make
                # HEAD older than the file. Keep it in the data dir instead.
                log.info("history: %s changed again before its commit; the earlier revision "
                         "goes to the data dir", ident)
                return False
            commit = self.git.commit_files(
                {rel: data, **self._ids_file()}, split_author(who),
                split_author(self.default_author), f"{ident}: {message}",
                self.wiki.data_dir / "tmp")
        # No commit: a save identical to HEAD (nothing to record), or the removal of a file git
        # never had (its revisions are in the data dir, and so goes the removal).
        return commit is not None or data is not None

    def record_asset(self, rel: str, data: bytes, author: str | None = None) -> None:
        """Commit a newly uploaded asset (git mode; in files mode the file itself is the record,
        as assets never change in place). Never raises."""
        if self.git is None:
            return
        try:
            if self.git.is_ignored(rel):
                return
            who = format_author(author, self.default_author)
            with file_lock(self.git_lock):
                self.git.commit_files({rel: data}, split_author(who),
                                      split_author(self.default_author), f"Add {rel}",
                                      self.wiki.data_dir / "tmp")
        except Exception:
            log.exception("history: could not commit the asset %s", rel)

    def _ids_file(self) -> dict[str, bytes]:
        """The id counters, committed along with each save so that ids stay never-reused in
        every clone (unless the repository ignores the file)."""
        path = self.wiki.store.absolute(IDS_FILE)
        if not path.is_file() or self.git.is_ignored(IDS_FILE):
            return {}
        return {IDS_FILE: path.read_bytes()}

    def _superseded(self, rel: str, data: bytes) -> bool:
        path = self.wiki.store.absolute(rel)
        try:
            on_disk = path.read_bytes()
        except FileNotFoundError:
            return False
        return on_disk != data and self.git.committed_blob_matches(rel)

    def _import(self, ident: str, rel: str) -> Revision | None:
        """Log the file as it is on disk now, unless that revision is logged already."""
        path = self.wiki.store.absolute(rel)
        try:
            data = path.read_bytes()
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            return None
        return self.files.record(ident, data, "", IMPORTED, rel, mtime, unless_logged=True)

    # -- reading -----------------------------------------------------------------------------

    def _current(self, ident: str) -> d.Document | None:
        try:
            return self.wiki.get(ident)
        except NotFound:
            return None

    def list(self, ident: str) -> list[Revision]:
        """Every revision of a document, newest first. Raises :class:`NotFound`."""
        norm = d.normalise_id(ident)
        if norm is None:
            raise NotFound(ident)
        current = self._current(norm)
        logged = self.files.entries(norm)
        path = current.path if current else (logged[-1].path if logged else None)
        if path is None:
            raise NotFound(norm)
        revisions = self._git_log(norm, path)
        if current and current.revision not in {r.revision for r in revisions + logged}:
            imported = self._import(norm, current.path)
            logged = self.files.entries(norm) if imported else logged
        if not revisions:
            return logged[::-1]
        return _merge(revisions, logged[::-1], current.revision if current else None)

    def _git_log(self, ident: str, rel: str) -> list[Revision]:
        """Commits of the file; their ``<ID>: `` subject prefix (see :meth:`_record`) dropped."""
        if self.git is None:
            return []
        try:
            revisions = self.git.log(rel)
        except GitError as exc:
            log.error("history: git log of %s failed: %s", rel, exc)
            return []
        prefix = f"{ident}: "
        return [dataclasses.replace(r, message=r.message.removeprefix(prefix))
                for r in revisions]

    def find(self, ident: str, revision: str,
             revisions: list[Revision] | None = None) -> Revision:
        """The newest revision whose hash is or starts with ``revision`` (at least
        :data:`MIN_PREFIX` characters), from ``revisions`` when given, else :meth:`list`."""
        revision = (revision or "").strip().lower()
        if len(revision) >= MIN_PREFIX and revision.isalnum():
            for entry in self.list(ident) if revisions is None else revisions:
                if entry.revision and entry.revision.startswith(revision):
                    return entry
        raise RevisionNotFound(d.normalise_id(ident) or ident, revision)

    def get(self, ident: str, revision: str) -> bytes:
        """The file bytes of a revision. Raises :class:`RevisionNotFound` / :class:`NotFound`."""
        norm = d.normalise_id(ident) or ident
        if revision and len(revision) == 20:  # a full hash: try the data dir without listing
            data = self.files.blob(norm, revision)
            if data is not None:
                return data
        return self.read(norm, self.find(norm, revision))

    def read(self, ident: str, entry: Revision) -> bytes:
        """The file bytes of a listed revision."""
        norm = d.normalise_id(ident) or ident
        data = None
        if entry.commit is None:
            data = self.files.blob(norm, entry.revision or "")
        else:
            try:
                data = self.git.read(entry)
            except GitError as exc:
                log.error("history: reading %s of %s from git failed: %s", entry.short, norm, exc)
        if data is None or d.content_hash(data) != entry.revision:
            raise RevisionNotFound(norm, entry.revision or "deleted")
        return data

    def text(self, ident: str, revision: str | Revision) -> str:
        """A revision as text (``\\n`` newlines, no BOM; undecodable bytes replaced)."""
        if isinstance(revision, Revision):
            return _decode(self.read(ident, revision))
        return _decode(self.get(ident, revision))

    def diff(self, ident: str, a: str, b: str, context: int = 3,
             revisions: list[Revision] | None = None) -> Diff:
        """What changed from revision ``a`` to revision ``b`` (hashes or prefixes)."""
        revisions = self.list(ident) if revisions is None else revisions
        old, new = self.find(ident, a, revisions), self.find(ident, b, revisions)
        old_text, new_text = self.text(ident, old), self.text(ident, new)
        norm = d.normalise_id(ident)
        return Diff(
            old=old, new=new,
            unified=unified_diff(old_text, new_text, f"{norm}@{old.short}", f"{norm}@{new.short}",
                                 context),
            inline=inline_diff(old_text, new_text, context),
            rows=side_by_side(old_text, new_text, context),
        )

    # -- restoring ---------------------------------------------------------------------------

    def restore(self, ident: str, revision: str, author: str | None = None,
                base_revision: str | None = None, message: str | None = None) -> d.Document:
        """Save an old revision's content as a new revision (through ``wiki.update``, so it is
        validated, conflict-checked against ``base_revision`` — default: the current revision —
        indexed and recorded). Raises :class:`RevisionNotFound`, :class:`NotFound`,
        :class:`wiki.store.StaleRevision` or :class:`wiki.documents.DocumentError`."""
        current = self.wiki.get(ident)
        entry = self.find(current.id, revision)
        old = d.parse(self.read(current.id, entry), current.kind, current.path, self.wiki.vocab)
        return self.wiki.update(
            current.id, old.front_matter, old.body,
            base_revision=base_revision or current.revision, author=author,
            message=message or f"Restore revision {entry.short}",
        )


def _merge(commits: list[Revision], logged: list[Revision], current: str | None):
    """Merge two newest-first lists, keeping each one's order. Git times are whole seconds, so
    times are compared at that resolution; within a second the current revision is the newer,
    otherwise the commit."""
    out: list[Revision] = []
    i = j = 0
    while i < len(commits) and j < len(logged):
        commit, entry = commits[i], logged[j]
        commit_time = commit.time.replace(microsecond=0)
        entry_time = entry.time.replace(microsecond=0)
        if entry_time > commit_time or (entry_time == commit_time and entry.revision == current
                                        and commit.revision != current):
            out.append(entry)
            j += 1
        else:
            out.append(commit)
            i += 1
    return out + commits[i:] + logged[j:]


# --------------------------------------------------------------------------------------------
# Diffs: structures for templates (which escape), never HTML


Segments = tuple[tuple[str, bool], ...]  #: ``(text, changed)`` pieces of one line


@dataclass(frozen=True)
class DiffLine:
    """A line of an inline (unified) diff."""

    kind: str  #: "hunk" | "context" | "delete" | "insert"
    old_no: int | None
    new_no: int | None
    segments: Segments

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.segments)


@dataclass(frozen=True)
class SideBySideRow:
    """A row of a side-by-side diff; ``kind == "skip"`` stands for unchanged lines left out."""

    kind: str  #: "equal" | "replace" | "delete" | "insert" | "skip"
    old_no: int | None
    old: Segments | None
    new_no: int | None
    new: Segments | None


@dataclass(frozen=True)
class Diff:
    old: Revision
    new: Revision
    unified: list[str]  #: ``diff -u`` lines without line ends
    inline: list[DiffLine]
    rows: list[SideBySideRow]

    @property
    def changed(self) -> bool:
        return bool(self.unified)

    @property
    def counts(self) -> tuple[int, int]:
        """(lines added, lines removed)."""
        return (sum(1 for line in self.inline if line.kind == "insert"),
                sum(1 for line in self.inline if line.kind == "delete"))


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def _matcher(a, b) -> difflib.SequenceMatcher:
    return difflib.SequenceMatcher(None, a, b, autojunk=False)


def unified_diff(old: str, new: str, old_label: str = "a", new_label: str = "b",
                 context: int = 3) -> list[str]:
    return list(difflib.unified_diff(_lines(old), _lines(new), old_label, new_label,
                                     n=context, lineterm=""))


def intraline(old: str, new: str) -> tuple[Segments, Segments]:
    """Mark the changed characters of two versions of a line; a line changed beyond recognition
    is marked whole."""
    matcher = _matcher(old, new)
    if matcher.ratio() < 0.5:
        return ((old, True),) if old else (), ((new, True),) if new else ()
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if old[i1:i2]:
            left.append((old[i1:i2], tag != "equal"))
        if new[j1:j2]:
            right.append((new[j1:j2], tag != "equal"))
    return tuple(left), tuple(right)


def _plain(text: str) -> Segments:
    return ((text, False),) if text else ()


def _grouped(old_lines, new_lines, context):
    if old_lines == new_lines:
        return []
    return list(_matcher(old_lines, new_lines).get_grouped_opcodes(context))


def inline_diff(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """A unified diff as lines with numbers, changed characters marked in paired lines."""
    a, b = _lines(old), _lines(new)
    out: list[DiffLine] = []
    for group in _grouped(a, b, context):
        first, last = group[0], group[-1]
        header = (f"@@ -{first[1] + 1},{last[2] - first[1]} "
                  f"+{first[3] + 1},{last[4] - first[3]} @@")
        out.append(DiffLine("hunk", None, None, _plain(header)))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(DiffLine("context", i + 1, j1 + k + 1, _plain(a[i]))
                           for k, i in enumerate(range(i1, i2)))
                continue
            pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            marked = [intraline(a[i1 + k], b[j1 + k]) for k in range(pairs)]
            out.extend(DiffLine("delete", i + 1, None, marked[k][0] if k < pairs else _plain(a[i]))
                       for k, i in enumerate(range(i1, i2)))
            out.extend(DiffLine("insert", None, j + 1, marked[k][1] if k < pairs else _plain(b[j]))
                       for k, j in enumerate(range(j1, j2)))
    return out


def side_by_side(old: str, new: str, context: int = 3) -> list[SideBySideRow]:
    """Rows pairing old and new lines; unchanged stretches beyond ``context`` become a skip."""
    a, b = _lines(old), _lines(new)
    rows: list[SideBySideRow] = []
    groups = _grouped(a, b, context)
    for n, group in enumerate(groups):
        if n > 0 or group[0][1] > 0:
            rows.append(SideBySideRow("skip", None, None, None, None))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(SideBySideRow("equal", i + 1, _plain(a[i]), j + 1, _plain(b[j]))
                            for i, j in zip(range(i1, i2), range(j1, j2), strict=True))
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + k, j1 + k
                if i < i2 and j < j2:
                    left, right = intraline(a[i], b[j])
                    rows.append(SideBySideRow("replace", i + 1, left, j + 1, right))
                elif i < i2:
                    rows.append(SideBySideRow("delete", i + 1, ((a[i], True),) if a[i] else (),
                                              None, None))
                else:
                    rows.append(SideBySideRow("insert", None, None, j + 1,
                                              ((b[j], True),) if b[j] else ()))
    if groups and (groups[-1][-1][2] < len(a) or groups[-1][-1][4] < len(b)):
        rows.append(SideBySideRow("skip", None, None, None, None))
    return rows


# --------------------------------------------------------------------------------------------
# 3-way merge


def _sync_regions(base: list[str], mine: list[str], theirs: list[str]):
    """Stretches of ``base`` that both sides kept unchanged, as
    ``(base_start, base_end, mine_start, mine_end, theirs_start, theirs_end)``, ending with an
    empty sentinel at the end of all three."""
    ours = _matcher(base, mine).get_matching_blocks()
    other = _matcher(base, theirs).get_matching_blocks()
    regions = []
    i = j = 0
    while i < len(ours) and j < len(other):
        a_base, a_at, a_len = ours[i]
        b_base, b_at, b_len = other[j]
        start, end = max(a_base, b_base), min(a_base + a_len, b_base + b_len)
        if start < end:
            regions.append((start, end, a_at + start - a_base, a_at + end - a_base,
                            b_at + start - b_base, b_at + end - b_base))
        if a_base + a_len < b_base + b_len:
            i += 1
        else:
            j += 1
    regions.append((len(base), len(base), len(mine), len(mine), len(theirs), len(theirs)))
    return regions


def merge_regions(base: list[str], mine: list[str], theirs: list[str]):
    """Yield ``("same", lines)`` or ``("conflict", base_lines, mine_lines, theirs_lines)``."""
    z = a = b = 0
    for z_start, z_end, a_start, a_end, b_start, b_end in _sync_regions(base, mine, theirs):
        old, ours, other = base[z:z_start], mine[a:a_start], theirs[b:b_start]
        if ours == other:
            yield "same", ours
        elif ours == old:
            yield "same", other
        elif other == old:
            yield "same", ours
        else:
            yield "conflict", old, ours, other
        yield "same", base[z_start:z_end]
        z, a, b = z_end, a_end, b_end


def merge3(base: str, mine: str, theirs: str,
           labels: tuple[str, str] = ("mine", "theirs")) -> tuple[str, bool]:
    """Line-based 3-way merge: ``(merged text, has conflicts)``.

    Changes made on one side only are taken; the same change on both sides is taken once; lines
    both sides changed differently become a git-style conflict::

        <<<<<<< mine
        …mine…
        =======
        …theirs…
        >>>>>>> theirs

    Lines at the start or end of a conflict that both sides agree on are kept outside it.
    """
    split = [text.splitlines(keepends=True) for text in (base, mine, theirs)]
    out: list[str] = []
    conflicts = False

    def emit(lines: Iterable[str]) -> None:
        for line in lines:
            out.append(line)

    def end_line() -> None:
        if out and not out[-1].endswith(("\n", "\r")):
            out[-1] += "\n"

    for region in merge_regions(*split):
        if region[0] == "same":
            emit(region[1])
            continue
        _, _, ours, other = region
        head = 0
        while head < min(len(ours), len(other)) and ours[head] == other[head]:
            head += 1
        tail = 0
        while (tail < min(len(ours), len(other)) - head
               and ours[len(ours) - 1 - tail] == other[len(other) - 1 - tail]):
            tail += 1
        emit(ours[:head])
        conflicts = True
        end_line()
        out.append(f"<<<<<<< {labels[0]}\n")
        emit(ours[head:len(ours) - tail])
        end_line()
        out.append("=======\n")
        emit(other[head:len(other) - tail])
        end_line()
        out.append(f">>>>>>> {labels[1]}\n")
        emit(ours[len(ours) - tail:])
    return "".join(out), conflicts


# --------------------------------------------------------------------------------------------


def init_app(app) -> None:
    """Create the app's :class:`History` and make it listen to the wiki's saves.

    Call it after ``app_state.init_app`` and before ``app_state.start``, so the first sync
    reaches it.
    """
    wiki = app.extensions["wiki"]
    history = History(wiki, author=app.config.get("GIT_AUTHOR") or None,
                      backend=str(app.config.get("HISTORY") or "auto"))
    app.extensions["history"] = history
    wiki.listeners.append(history)
