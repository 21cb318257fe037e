"""The metadata database: engine, sync from the content store, and the queries pages use.

No Flask here: ``wiki.app_state`` wires it into the app. Sync is incremental: a file whose
modification time and size are unchanged since the last sync is skipped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, func, insert, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine, delete, select

from . import documents as d
from .models import (
    SCHEMA_VERSION,
    ActionItemRow,
    DocumentRow,
    FileState,
    LinkRow,
    Meta,
    ProblemRow,
    ServiceRow,
    TagRow,
)
from .store import Problem, Store, file_lock

log = logging.getLogger(__name__)


def make_engine(url: str, lock_dir: Path | None = None) -> Engine:
    """Engine for ``url`` with the current schema (``lock_dir`` serialises schema changes)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ensure_schema(engine, lock_dir)
    return engine


def _ensure_schema(engine: Engine, lock_dir: Path | None) -> None:
    """Create the tables; drop and recreate them when they were made by another schema version.

    The database only holds what ``content/`` says, so rebuilding it loses nothing: the next sync
    sees every file as new.
    """
    from sqlalchemy import inspect

    lock = file_lock(lock_dir / "schema.lock") if lock_dir else contextlib.nullcontext()
    with lock:
        if inspect(engine).has_table(Meta.__tablename__):
            with Session(engine) as session:
                row = session.get(Meta, "schema_version")
                if row is not None and row.value == str(SCHEMA_VERSION):
                    return
        log.info("metadata database schema changed: rebuilding the tables from content/")
        SQLModel.metadata.drop_all(engine)
        SQLModel.metadata.create_all(engine)
        with Session(engine) as session:
            session.merge(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            session.commit()


# --------------------------------------------------------------------------------------------
# Sync


@dataclass
class SyncReport:
    changed: list[d.Document] = field(default_factory=list)  #: added or modified documents
    removed: list[str] = field(default_factory=list)  #: ids no longer in content/
    skipped: int = 0  #: unchanged files
    problems: list[Problem] = field(default_factory=list)  #: problems found in this run

    @property
    def changed_ids(self) -> list[str]:
        return [doc.id for doc in self.changed]


def name_key(name: str) -> str:
    """How tag and service names compare: case-insensitively, for every script."""
    return name.casefold()[:200]


def _seconds(delta) -> int | None:
    return int(delta.total_seconds()) if delta is not None else None


def document_values(doc: d.Document) -> dict:
    """The ``document`` table's columns for ``doc``, as a plain dict (for bulk inserts)."""
    fm = doc.front_matter
    day = fm.get("date") or fm.get("first_seen") or fm.get("created")
    started = fm.get("started_at")
    durations = doc.durations()
    return dict(
        id=doc.id,
        kind=doc.kind.name,
        title=doc.title,
        slug=doc.slug,
        status=doc.status,
        severity=fm.get("severity"),
        date=day,
        year=day.year if day else None,
        root_cause_category=fm.get("root_cause_category"),
        detection=fm.get("detection"),
        incident_commander=fm.get("incident_commander"),
        summary=doc.summary[:2000],
        started_at=started.astimezone(UTC) if started else None,
        time_to_detect=_seconds(durations["time_to_detect"]),
        time_to_mitigate=_seconds(durations["time_to_mitigate"]),
        time_to_resolve=_seconds(durations["time_to_resolve"]),
        created=fm.get("created"),
        updated=fm.get("updated"),
        path=doc.path,
        revision=doc.revision or "",
        front_matter=d.json_value(fm),
    )


def document_row(doc: d.Document) -> DocumentRow:
    return DocumentRow(**document_values(doc))


def _child_values(doc: d.Document) -> dict[type, list[dict]]:
    """The rows of the tag, service, action-item and link tables for ``doc``."""
    out: dict[type, list[dict]] = {TagRow: [], ServiceRow: [], ActionItemRow: [], LinkRow: []}
    for table, names in ((TagRow, doc.tags), (ServiceRow, doc.services)):
        for name in dict.fromkeys(n[:200] for n in names):
            out[table].append({"doc_id": doc.id, "name": name, "key": name_key(name)})
    for n, item in enumerate(doc.get("action_items", [])):
        out[ActionItemRow].append({
            "doc_id": doc.id, "position": n, "title": item["title"], "owner": item.get("owner"),
            "due": item.get("due"), "status": item.get("status", "open"),
            "ticket": item.get("ticket"),
        })
    for field_name, targets in doc.links().items():
        for target in targets:
            if target != doc.id:
                out[LinkRow].append({"source": doc.id, "target": target, "field": field_name})
    return out


#: Ids or paths per ``IN (…)`` clause: well below SQLite's and PostgreSQL's parameter limits.
CHUNK = 500
#: Rows per bulk ``INSERT`` (one ``executemany``).
INSERT_BATCH = 2000


def _chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _delete_documents(session: Session, doc_ids: Iterable[str]) -> None:
    """Delete the rows derived from these documents (children first: PostgreSQL checks keys)."""
    for chunk in _chunks(sorted(set(doc_ids))):
        for table in (TagRow, ServiceRow, ActionItemRow):
            session.exec(delete(table).where(col(table.doc_id).in_(chunk)))
        session.exec(delete(LinkRow).where(col(LinkRow.source).in_(chunk)))
        session.exec(delete(DocumentRow).where(col(DocumentRow.id).in_(chunk)))


def _insert(session: Session, table, rows: list[dict]) -> None:
    """One bulk ``INSERT`` (``executemany``) per batch, through the session's transaction."""
    for start in range(0, len(rows), INSERT_BATCH):
        session.connection().execute(insert(table.__table__), rows[start:start + INSERT_BATCH])


def _insert_documents(session: Session, docs: Iterable[d.Document]) -> None:
    """Insert every row derived from ``docs`` (whose old rows are gone): parents first."""
    docs = list(docs)
    _insert(session, DocumentRow, [document_values(doc) for doc in docs])
    children: dict[type, list[dict]] = {TagRow: [], ServiceRow: [], ActionItemRow: [], LinkRow: []}
    for doc in docs:
        for table, values in _child_values(doc).items():
            children[table].extend(values)
    for table, values in children.items():
        _insert(session, table, values)


def _delete_document(session: Session, doc_id: str) -> None:
    _delete_documents(session, [doc_id])


def upsert_document(session: Session, doc: d.Document) -> None:
    """Replace every row derived from ``doc``."""
    _delete_document(session, doc.id)
    _insert_documents(session, [doc])


def _record_problems(session: Session, path: str, problems: Iterable[Problem]) -> None:
    session.exec(delete(ProblemRow).where(ProblemRow.path == path))
    _insert(session, ProblemRow, [_problem_values(p) for p in problems])


def _problem_values(p: Problem) -> dict:
    return {"path": p.path, "line": p.line, "field": p.field, "message": p.message}


@dataclass
class _State:
    """What the database knows of one file (a plain copy of its :class:`FileState` row)."""

    path: str
    mtime_ns: int
    size: int
    revision: str | None
    doc_id: str | None
    ok: bool


def sync(
    engine: Engine,
    store: Store,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Bring the database in line with ``content/``; returns what changed.

    Reads what the database knows (file states, which file holds which id) once, decides file
    by file in memory, then writes every change in bulk in one transaction: a first start or a
    full reindex of 10,000 files is a handful of ``INSERT``s, not 100,000 statements.

    Runs under a file lock so several worker processes starting at once sync one at a time.
    """
    with file_lock(store.data_dir / "locks" / "sync.lock"), Session(engine) as session:
        report = SyncReport()
        files = store.files()
        if full:
            for table in (TagRow, ServiceRow, ActionItemRow, LinkRow, DocumentRow, FileState,
                          ProblemRow):
                session.exec(delete(table))
            states: dict[str, _State] = {}
            owners: dict[str, str] = {}  #: document id → path of the file holding it
        else:
            states = {row[0]: _State(*row) for row in session.exec(select(
                FileState.path, FileState.mtime_ns, FileState.size, FileState.revision,
                FileState.doc_id, FileState.ok))}
            owners = dict(session.exec(select(DocumentRow.id, DocumentRow.path)).all())
        on_disk = {f.path for f in files}
        stale_ids: set[str] = set()  #: documents whose rows go
        saved: dict[str, d.Document] = {}  #: documents whose rows are (re)written
        forget_paths: set[str] = set()  #: files whose state and problems go
        new_states: list[dict] = []
        new_problems: list[dict] = []

        def drop(doc_id: str) -> None:
            owners.pop(doc_id, None)
            saved.pop(doc_id, None)
            stale_ids.add(doc_id)

        # Removed files first, so a renamed file (delete + add) keeps its id.
        for path in sorted(set(states) - on_disk):
            state = states.pop(path)
            if state.ok and state.doc_id and owners.get(state.doc_id) == path:
                drop(state.doc_id)
                report.removed.append(state.doc_id)
            forget_paths.add(path)

        todo = [f for f in files
                if f.path not in states
                or (states[f.path].mtime_ns, states[f.path].size) != (f.mtime_ns, f.size)]
        # Files that lost a duplicate-id contest get another chance when the winner is gone.
        freed = {s.path for s in states.values()
                 if not s.ok and s.doc_id and s.doc_id not in owners}
        if freed:
            queued = {f.path for f in todo}
            todo += [f for f in files if f.path in freed and f.path not in queued]
        report.skipped = len(files) - len(todo)

        removed = set(report.removed)
        for n, info in enumerate(todo, 1):
            doc, problems = store.read_or_problems(info.path)
            state = states.get(info.path)
            previous_id = state.doc_id if state is not None and state.ok else None
            doc_ok = False
            if doc is not None:
                owner = owners.get(doc.id)
                if owner is not None and owner != info.path and (store.root / owner).exists():
                    problems = [Problem(info.path, f"duplicate id {doc.id}: also used by "
                                                   f"{owner}; this file is ignored", field="id")]
                else:
                    doc_ok = True
            if previous_id and (not doc_ok or previous_id != doc.id):
                if owners.get(previous_id) == info.path:
                    drop(previous_id)
                    report.removed.append(previous_id)
                    removed.add(previous_id)
            if doc_ok:
                stale_ids.add(doc.id)  # whatever rows it had (e.g. at a vanished path) go
                owners[doc.id] = info.path
                saved[doc.id] = doc
                report.changed.append(doc)
                if doc.id in removed:
                    removed.discard(doc.id)
                    report.removed.remove(doc.id)
            forget_paths.add(info.path)
            new_problems.extend(_problem_values(p) for p in problems)
            report.problems.extend(problems)
            new_states.append({"path": info.path, "mtime_ns": info.mtime_ns, "size": info.size,
                               "revision": doc.revision if doc else None,
                               "doc_id": doc.id if doc else None, "ok": doc_ok})
            if progress:
                progress(n, len(todo))

        # Write it all: deletions, then parents before children, in one transaction.
        if not full:
            _delete_documents(session, stale_ids)
            for chunk in _chunks(sorted(forget_paths)):
                session.exec(delete(FileState).where(col(FileState.path).in_(chunk)))
                session.exec(delete(ProblemRow).where(col(ProblemRow.path).in_(chunk)))
        _insert_documents(session, saved.values())
        _insert(session, FileState, new_states)
        _insert(session, ProblemRow, new_problems)
        session.commit()
        if todo or report.removed:
            log.info("synced %d changed, %d removed, %d unchanged, %d problem(s)",
                     len(report.changed), len(report.removed), report.skipped, len(report.problems))
        return report


def record_saved(engine: Engine, store: Store, doc: d.Document) -> None:
    """Update the rows of one document just written by the app (no full sync needed)."""
    st = store.absolute(doc.path).stat()
    with file_lock(store.data_dir / "locks" / "sync.lock"), Session(engine) as session:
        upsert_document(session, doc)
        state = session.get(FileState, doc.path) or FileState(path=doc.path, mtime_ns=0, size=0)
        state.mtime_ns, state.size, state.revision, state.doc_id, state.ok = (
            st.st_mtime_ns, st.st_size, doc.revision, doc.id, True)
        session.add(state)
        _record_problems(session, doc.path, [])
        session.commit()


# --------------------------------------------------------------------------------------------
# Queries


@dataclass
class Filters:
    kind: str | None = None
    severity: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)
    tag: list[str] = field(default_factory=list)
    year: list[int] = field(default_factory=list)
    root_cause: list[str] = field(default_factory=list)


SORTS = {
    "date": (col(DocumentRow.date).desc(), col(DocumentRow.id).desc()),
    "-date": (col(DocumentRow.date).asc(), col(DocumentRow.id).asc()),
    "severity": (col(DocumentRow.severity).asc(), col(DocumentRow.date).desc()),
    "title": (func.lower(DocumentRow.title).asc(),),
    "updated": (col(DocumentRow.updated).desc(), col(DocumentRow.id).desc()),
    "ttr": (col(DocumentRow.time_to_resolve).desc(),),
}


def _filtered(stmt, filters: Filters, skip: str | None = None):
    """Apply every active filter except ``skip`` (the facet being counted)."""
    if filters.kind:
        stmt = stmt.where(DocumentRow.kind == filters.kind)
    simple = {"severity": DocumentRow.severity, "status": DocumentRow.status,
              "year": DocumentRow.year, "root_cause": DocumentRow.root_cause_category}
    for name, column in simple.items():
        values = getattr(filters, name)
        if values and name != skip:
            stmt = stmt.where(col(column).in_(values))
    for name, table in (("service", ServiceRow), ("tag", TagRow)):
        if name == skip:
            continue
        for value in getattr(filters, name):
            stmt = stmt.where(col(DocumentRow.id).in_(
                select(table.doc_id).where(table.key == name_key(value))))
    return stmt


def list_documents(
    session: Session, filters: Filters, sort: str = "date", limit: int = 50, offset: int = 0
) -> tuple[list[DocumentRow], int]:
    stmt = _filtered(select(DocumentRow), filters)
    total = session.exec(_filtered(select(func.count()).select_from(DocumentRow), filters)).one()
    stmt = stmt.order_by(*SORTS.get(sort, SORTS["date"])).limit(limit).offset(offset)
    return list(session.exec(stmt)), total


def facet_values(session: Session, filters: Filters) -> dict[str, list[tuple[str, int]]]:
    """Counts per value of each filterable field.

    Each facet is counted within the results of every *other* active filter, so the counts say
    how many documents a click would show (values of one facet combine with "or", facets with
    "and").
    """
    out: dict[str, list[tuple[str, int]]] = {}
    simple = {"severity": DocumentRow.severity, "status": DocumentRow.status,
              "year": DocumentRow.year, "root_cause": DocumentRow.root_cause_category}
    for name, column in simple.items():
        ids = _filtered(select(DocumentRow.id), filters, skip=name)
        stmt = (select(column, func.count()).where(col(DocumentRow.id).in_(ids))
                .where(column.is_not(None)).group_by(column).order_by(column))
        rows = [(str(v), c) for v, c in session.exec(stmt)]
        if name == "year":
            rows.sort(reverse=True)
        out[name] = rows
    for name, table in (("service", ServiceRow), ("tag", TagRow)):
        ids = _filtered(select(DocumentRow.id), filters, skip=name)
        stmt = (select(table.name, func.count()).where(col(table.doc_id).in_(ids))
                .group_by(table.name).order_by(func.count().desc(), table.name))
        out[name] = [(v, c) for v, c in session.exec(stmt)]
    return out


def get_row(session: Session, doc_id: str) -> DocumentRow | None:
    ident = d.normalise_id(doc_id)
    return session.get(DocumentRow, ident) if ident else None


def titles(session: Session, ids: Iterable[str]) -> dict[str, DocumentRow]:
    ids = [i for i in dict.fromkeys(ids) if i]
    if not ids:
        return {}
    return {row.id: row
            for row in session.exec(select(DocumentRow).where(col(DocumentRow.id).in_(ids)))}


def backlinks(session: Session, doc_id: str) -> list[tuple[DocumentRow, list[str]]]:
    """Documents pointing at ``doc_id``, with the fields they point through."""
    stmt = (select(DocumentRow, LinkRow.field).join(LinkRow, LinkRow.source == DocumentRow.id)
            .where(LinkRow.target == doc_id).order_by(DocumentRow.id))
    out: dict[str, tuple[DocumentRow, list[str]]] = {}
    for row, field_name in session.exec(stmt):
        out.setdefault(row.id, (row, []))[1].append(field_name)
    return sorted(out.values(), key=lambda pair: (pair[0].kind, _id_number(pair[0].id)))


def _id_number(ident: str) -> int:
    parsed = d.parse_id(ident)
    return parsed[1] if parsed else 0


def recent(
    session: Session, kind: str, limit: int = 8, status: str | None = None
) -> list[DocumentRow]:
    stmt = select(DocumentRow).where(DocumentRow.kind == kind)
    if status:
        stmt = stmt.where(DocumentRow.status == status)
    stmt = stmt.order_by(col(DocumentRow.date).desc(), col(DocumentRow.id).desc()).limit(limit)
    return list(session.exec(stmt))


def open_action_items(
    session: Session, limit: int | None = None
) -> tuple[list[tuple[ActionItemRow, DocumentRow]], int]:
    base = (select(ActionItemRow, DocumentRow)
            .join(DocumentRow, DocumentRow.id == ActionItemRow.doc_id)
            .where(ActionItemRow.status == "open"))
    total = session.exec(select(func.count()).select_from(ActionItemRow)
                         .where(ActionItemRow.status == "open")).one()
    stmt = base.order_by(col(ActionItemRow.due).asc().nulls_last(), ActionItemRow.doc_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt)), total


def action_items_for(session: Session, doc_id: str) -> list[ActionItemRow]:
    return list(session.exec(select(ActionItemRow).where(ActionItemRow.doc_id == doc_id)
                             .order_by(ActionItemRow.position)))


def counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(DocumentRow.kind, func.count()).group_by(DocumentRow.kind))
    return dict(rows.all())


def named_values(session: Session, table, kind: str | None = None) -> list[tuple[str, int]]:
    """Every tag or service with the number of documents using it."""
    stmt = select(table.name, func.count()).group_by(table.name)
    if kind:
        stmt = (stmt.join(DocumentRow, DocumentRow.id == table.doc_id)
                .where(DocumentRow.kind == kind))
    return sorted(session.exec(stmt), key=lambda r: (-r[1], r[0].lower()))


def documents_with(session: Session, table, name: str) -> list[DocumentRow]:
    ids = select(table.doc_id).where(table.key == name_key(name))
    stmt = select(DocumentRow).where(col(DocumentRow.id).in_(ids)).order_by(
        DocumentRow.kind, col(DocumentRow.date).desc())
    return list(session.exec(stmt))


def canonical_name(session: Session, table, name: str) -> str | None:
    return session.exec(select(table.name).where(table.key == name_key(name))).first()


def problems(session: Session) -> list[ProblemRow]:
    return list(session.exec(select(ProblemRow).order_by(ProblemRow.path, ProblemRow.line)))


def all_ids(session: Session) -> set[str]:
    return set(session.exec(select(DocumentRow.id)))


def search_rows(session: Session, text: str, limit: int = 20) -> list[DocumentRow]:
    """A plain title/id lookup (used for autocomplete before the search index exists)."""
    like = f"%{text.lower()}%"
    stmt = select(DocumentRow).where(or_(func.lower(DocumentRow.title).like(like),
                                         func.lower(DocumentRow.id) == text.lower())).limit(limit)
    return list(session.exec(stmt))


def now_utc() -> datetime:
    return datetime.now(UTC)
