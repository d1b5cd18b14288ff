"""Declarative base with a constraint naming convention and shared column helpers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData
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


def page_content(shown: bool) -> dict:
    """The `__table_args__` entry every table must have (last in a tuple): whether its rows
    are shown on cached pages.

    A committed write to a content table moves the page cache's content version on, so
    every cached page renders anew (perf/freshness.py); a write to any other table (the
    mail outbox, tokens, read state, analytics) leaves cached pages alone. Declare a table
    not content only if no page, fragment or API answer ever shows anything from it, or
    from anything computed from it; tests/test_freshness.py fails for a table that says
    neither.
    """
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
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CreatedMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow, nullable=False)
