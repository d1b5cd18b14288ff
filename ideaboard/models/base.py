"""Declarative base with a constraint naming convention and shared column helpers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, DateTime, ForeignKey, Index, MetaData, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The largest value of an Integer column on PostgreSQL: no id or version is larger, so a
#: bigger number from a URL or form is "not found", never a driver error.
MAX_INT = 2**31 - 1


def utcnow() -> datetime:
    """Naive UTC now: both SQLite and PostgreSQL store it the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


#: The `Table.info` key saying whether a table's rows are page content (see page_content()).
PAGE_CONTENT = "page_content"
#: The `Table.info` key naming a content table's freshness scope (see page_content()).
SCOPE = "freshness_scope"
#: The scope of community content: a write moves that community's `communities.stamp`
#: (and the directory's stamp), through database triggers, not the shared content version.
COMMUNITY = "community"


def page_content(shown: bool, scope: str | None = None) -> dict:
    """The `__table_args__` entry every table must have (last in a tuple): whether its rows
    are shown on cached pages.

    A committed write to a content table moves the page cache's content version on, so
    every cached page renders anew (perf/freshness.py); a write to any other table (the
    mail outbox, tokens, read state, analytics) leaves cached pages alone. Declare a table
    not content only if no page, fragment or API answer ever shows anything from it, or
    from anything computed from it; tests/test_freshness.py fails for a table that says
    neither.

    `scope=COMMUNITY` (content only): the table's rows belong to one community, and a
    write to it moves that community's stamp instead of the shared version, so a reply in
    one community leaves every other cached page served. The stamp is moved by database
    triggers the migration makes on the table (tests/test_community_freshness.py fails for
    a scoped table without them), and only pages keyed by that stamp (perf/scopes.py) may
    show its rows: any other page that reads a scoped table is not kept.
    """
    if scope is not None:
        assert shown and scope == COMMUNITY, "only page content has a scope"
        return {"info": {PAGE_CONTENT: shown, SCOPE: scope}}
    return {"info": {PAGE_CONTENT: shown}}


#: Tables the migrations make without a model, declared here as the models declare theirs.
TABLES_WITHOUT_MODEL = {
    "alembic_version": False,  # which migration the schema is at
    # SQLite's full-text index of ideas (the virtual table and its shadow tables), kept by
    # triggers on ideas: search results are pages.
    "ideas_fts": True,
    "ideas_fts_config": True,
    "ideas_fts_data": True,
    "ideas_fts_docsize": True,
    "ideas_fts_idx": True,
    # The same for community threads (issue 14): thread search results are pages.
    "threads_fts": True,
    "threads_fts_config": True,
    "threads_fts_data": True,
    "threads_fts_docsize": True,
    "threads_fts_idx": True,
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CreatedMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow, nullable=False)


#: What "live" (not deleted) means in SQL. Partial indexes over live rows use exactly this
#: text, and SoftDeleteMixin.live() compiles to the same `<table>.deleted_at IS NULL`, so
#: the planner matches a query's filter to those indexes.
LIVE_SQL = "deleted_at IS NULL"


def live_index(name: str, *columns: str) -> Index:
    """An index over live rows only: every public list filters on SoftDeleteMixin.live()."""
    return Index(name, *columns, sqlite_where=text(LIVE_SQL), postgresql_where=text(LIVE_SQL))


class SoftDeleteMixin:
    """Deleting hides a row from everyone but staff and keeps it: who, when and why.

    For ideas now, and for comments, threads and replies as they come (moderators hide,
    never delete: style.md rule 6). Every query for what the public sees filters on
    `Model.live()`; `soft_delete` and `restore` are the only writers of these columns.
    """

    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    deleted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    deleted_reason: Mapped[str | None] = mapped_column(Text, default=None)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @classmethod
    def live(cls) -> ColumnElement[bool]:
        """The SQL filter for rows that are not deleted (the partial indexes' condition)."""
        return cls.deleted_at.is_(None)

    def soft_delete(self, by_id: int, reason: str = "", at: datetime | None = None) -> None:
        """Hide the row, recording who, when and why."""
        self.deleted_at = at or utcnow()
        self.deleted_by_id = by_id
        self.deleted_reason = reason or None

    def restore(self) -> None:
        """Show the row again; the record of its deletion goes with it."""
        self.deleted_at = None
        self.deleted_by_id = None
        self.deleted_reason = None
