"""Database wiring: the default URL and per-connection settings."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from .extensions import db
from .perf.writergate import configure_sqlite, engine_options

__all__ = ["configure_database", "database_url", "engine_options", "ping_when_idle"]


def database_url(app: Flask) -> str:
    """DATABASE_URL, or a SQLite file under instance/."""
    url = app.config.get("DATABASE_URL")
    if url:
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(app.instance_path) / 'ideaboard.db'}"


def _checked_in(_dbapi_connection, record) -> None:
    record.info["idle_since"] = time.monotonic()


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pool pre-ping, for connections that have been idle: a dropped connection is found
    and replaced before a request uses it, without a round trip on every checkout.

    SQLAlchemy's pool_pre_ping pings on every checkout: one more round trip per request, a
    measurable share of a vote toggle on PostgreSQL (docs/performance.md). A connection checked
    in less than `idle_seconds` (DB_PING_AFTER_IDLE) ago was just working; if the server
    went away since, the request's statement fails with a disconnect (a 503, nothing
    written), and SQLAlchemy then discards every connection of the pool older than the
    failure, so the next request starts on a new one. 0 pings on every checkout.
    """
    if event.contains(engine, "checkin", _checked_in):
        return
    dialect = engine.dialect

    def checkout(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is not None and time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError() from error  # the pool connects afresh
            raise

    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", checkout)


def configure_database(app: Flask) -> None:
    """Attach per-connection settings to the app's engine (creating it does not connect)."""
    with app.app_context():
        configure_sqlite(db.engine)
        ping_when_idle(db.engine, app.config["DB_PING_AFTER_IDLE"])
