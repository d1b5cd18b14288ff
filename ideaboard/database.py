"""Database wiring: the default URL and per-connection settings."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db


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


def _first_write_transaction() -> bool:
    """True once per writing request: for the transaction that does its writes."""
    if not has_request_context() or request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    if g.get("_sqlite_immediate_taken"):
        return False  # reads after the request's commit need no write lock
    g._sqlite_immediate_taken = True
    return True


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is unreliable).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn) -> None:
    # A request that writes takes the write lock up front: a deferred transaction that
    # reads and then writes fails at once with "database is locked" when another writer
    # committed in between, while BEGIN IMMEDIATE waits its turn (busy_timeout).
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _first_write_transaction() else "BEGIN")


def configure_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    if not event.contains(engine, "connect", _sqlite_connect):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


def configure_database(app: Flask) -> None:
    """Attach per-connection settings to the app's engine (creating it does not connect)."""
    with app.app_context():
        configure_sqlite(db.engine)
