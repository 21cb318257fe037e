"""The wiki as one object: store + database (+ search index, history) behind a few verbs.

Views, the CLI and the API all go through :class:`Wiki`, so every write takes the same path:
validate → write the file atomically → update the database → (index, revision log).
No Flask in here.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from sqlmodel import Session

from . import db
from . import documents as d
from .store import NotFound, StaleRevision, Store

log = logging.getLogger(__name__)

__all__ = ["Wiki", "NotFound", "StaleRevision"]


def make_store(config: dict) -> Store:
    """The content store for a configuration (usable without a database, e.g. by ``wiki check``)."""
    vocab = d.Vocabulary(
        root_causes=tuple(config.get("ROOT_CAUSE_CATEGORIES") or d.DEFAULT_ROOT_CAUSES),
        detections=tuple(config.get("DETECTION_METHODS") or d.DEFAULT_DETECTIONS),
    )
    return Store(config["CONTENT_DIR"], config["DATA_DIR"], vocab,
                 int(config.get("MAX_FILE_BYTES", 2_000_000)))


class Wiki:
    def __init__(self, config: dict):
        self.config = config
        self.content_dir = Path(config["CONTENT_DIR"])
        self.data_dir = Path(config["DATA_DIR"])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = make_store(config)
        self.vocab = self.store.vocab
        self.engine = db.make_engine(config["DATABASE_URL"], self.data_dir / "locks")
        #: objects with on_sync(report, wiki, full) / on_save(doc, wiki, …)
        self.listeners: list = []

    # -- sessions and sync -----------------------------------------------------------------

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def sync(self, full: bool = False, progress=None) -> db.SyncReport:
        report = db.sync(self.engine, self.store, full=full, progress=progress)
        for listener in self.listeners:
            if hasattr(listener, "on_sync"):
                listener.on_sync(report, self, full)
        return report

    # -- reading ---------------------------------------------------------------------------

    def get(self, ident: str) -> d.Document:
        """The current document with this id, read from its file. Raises :class:`NotFound`."""
        norm = d.normalise_id(ident)
        if norm is None:
            raise NotFound(ident)
        with self.session() as session:
            row = session.get(db.DocumentRow, norm)
        if row is None:
            raise NotFound(norm)
        try:
            doc = self.store.read(row.path)
        except (NotFound, d.DocumentError):
            # The file vanished or broke since the last sync: resync and report it missing.
            self.sync()
            raise NotFound(norm) from None
        if doc.id != norm:
            self.sync()
            raise NotFound(norm)
        return doc

    # -- writing ---------------------------------------------------------------------------

    def create(self, kind: str | d.Kind, front_matter: dict, body: str = "",
               author: str | None = None, message: str | None = None) -> d.Document:
        """Validate and write a new document; the id is assigned here, never by the caller."""
        kind = d.KINDS[kind] if isinstance(kind, str) else kind
        today = date.today()
        # id, title and status first, as a person would write them; the rest in the given order.
        fm = {"id": f"{kind.prefix}-1",  # placeholder so validation runs before allocation
              "title": front_matter.get("title"),
              "status": front_matter.get("status") or d.DEFAULTS[kind.name]["status"]}
        fm.update((k, v) for k, v in front_matter.items() if k not in fm)
        fm.setdefault("created", today)
        fm.setdefault("updated", today)
        doc = d.new_document(kind, fm, body, self.vocab)
        with self.session() as session:
            taken = db.all_ids(session)
        doc.front_matter["id"] = self.store.allocate_id(kind, taken)
        return self._write(doc, None, author, message or "Create")

    def update(self, ident: str, front_matter: dict, body: str, base_revision: str | None,
               author: str | None = None, message: str | None = None) -> d.Document:
        """Replace a document's front matter and body, refusing a stale ``base_revision``."""
        current = self.get(ident)
        fm = dict(front_matter)
        fm["id"] = current.id
        fm.setdefault("created", current.get("created") or date.today())
        fm["updated"] = date.today()
        doc = d.new_document(current.kind, fm, body, self.vocab)
        doc.path, doc.bom, doc.newline = current.path, current.bom, current.newline
        return self._write(doc, base_revision, author, message or "Edit")

    def _write(self, doc: d.Document, base_revision: str | None, author, message) -> d.Document:
        doc = self.store.write(doc, expected_revision=base_revision)
        db.record_saved(self.engine, self.store, doc)
        for listener in self.listeners:
            if hasattr(listener, "on_save"):
                listener.on_save(doc, self, author=author, message=message)
        return doc

    def delete(self, ident: str, base_revision: str | None = None,
               author: str | None = None, message: str | None = None) -> None:
        """Remove a document's file, refusing a stale ``base_revision``."""
        doc = self.get(ident)
        self.store.delete(doc, base_revision)
        for listener in self.listeners:
            if hasattr(listener, "on_delete"):
                listener.on_delete(doc, self, author=author, message=message or "Delete")
        self.sync()  # the database and the index learn about the removal from the sync report
