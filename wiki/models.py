"""SQLModel tables: metadata derived from ``content/`` for lists, filters and links.

Nothing here is the source of truth: every row can be rebuilt from the files
(``wiki reindex --full``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field, SQLModel

#: Bump when a table changes: the database is derived, so a mismatch drops and rebuilds it.
SCHEMA_VERSION = 2


class Meta(SQLModel, table=True):
    __tablename__ = "wiki_meta"

    key: str = Field(primary_key=True, max_length=50)
    value: str = Field(max_length=200)


class DocumentRow(SQLModel, table=True):
    __tablename__ = "document"

    id: str = Field(primary_key=True, max_length=20)
    kind: str = Field(index=True, max_length=20)
    title: str = Field(sa_column=Column(Text, nullable=False))
    slug: str = Field(index=True, max_length=100)
    status: str = Field(index=True, max_length=20)
    severity: str | None = Field(default=None, index=True, max_length=10)
    date: dt.date | None = Field(default=None, index=True)
    year: int | None = Field(default=None, index=True)
    root_cause_category: str | None = Field(default=None, index=True, max_length=100)
    detection: str | None = Field(default=None, max_length=100)
    incident_commander: str | None = Field(default=None, sa_column=Column(Text))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    started_at: dt.datetime | None = None
    time_to_detect: int | None = None  #: seconds
    time_to_mitigate: int | None = None
    time_to_resolve: int | None = None
    created: dt.date | None = Field(default=None, index=True)
    updated: dt.date | None = Field(default=None, index=True)
    path: str = Field(index=True, sa_column_kwargs={"unique": True}, max_length=500)
    revision: str = Field(max_length=40)
    front_matter: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TagRow(SQLModel, table=True):
    __tablename__ = "tag"

    doc_id: str = Field(primary_key=True, foreign_key="document.id", max_length=20)
    name: str = Field(primary_key=True, index=True, max_length=200)
    #: ``name.casefold()``: SQLite's lower() only folds ASCII, so matching uses this column.
    key: str = Field(index=True, max_length=200)


class ServiceRow(SQLModel, table=True):
    __tablename__ = "service"

    doc_id: str = Field(primary_key=True, foreign_key="document.id", max_length=20)
    name: str = Field(primary_key=True, index=True, max_length=200)
    key: str = Field(index=True, max_length=200)  #: ``name.casefold()``


class ActionItemRow(SQLModel, table=True):
    __tablename__ = "action_item"

    doc_id: str = Field(primary_key=True, foreign_key="document.id", max_length=20)
    position: int = Field(primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    owner: str | None = Field(default=None, max_length=200)
    due: dt.date | None = None
    status: str = Field(default="open", index=True, max_length=20)
    ticket: str | None = Field(default=None, max_length=200)


class LinkRow(SQLModel, table=True):
    """``source`` points at ``target`` through a front-matter field or a mention in the body."""

    __tablename__ = "link"

    source: str = Field(primary_key=True, foreign_key="document.id", max_length=20)
    target: str = Field(primary_key=True, index=True, max_length=20)
    #: related | signatures | incidents | mentions
    field: str = Field(primary_key=True, max_length=20)


class FileState(SQLModel, table=True):
    """What the last sync saw of each content file, so unchanged files are skipped."""

    __tablename__ = "file_state"

    path: str = Field(primary_key=True, max_length=500)
    mtime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    revision: str | None = Field(default=None, max_length=40)
    doc_id: str | None = Field(default=None, max_length=20)  #: the id it holds (or claims)
    ok: bool = True


class ProblemRow(SQLModel, table=True):
    """A content file that could not be used, and why."""

    __tablename__ = "problem"

    pk: int | None = Field(default=None, primary_key=True)
    path: str = Field(index=True, max_length=500)
    line: int | None = None
    field: str | None = Field(default=None, max_length=100)
    message: str = Field(sa_column=Column(Text, nullable=False))
