"""Migrations: the only way the schema is made; they upgrade, downgrade, and match the models."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from ideaboard import create_app
from ideaboard.extensions import db
from ideaboard.models import Base

from .conftest import PG_URL, _config, drop_pg_database, make_pg_database


def _roundtrip(url: str) -> None:
    app = create_app(_config(url))
    with app.app_context():
        upgrade()
        names = set(sa.inspect(db.engine).get_table_names())
        assert {"users", "boards", "ideas", "votes", "comments", "status_changes"} <= names
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT slug FROM boards").scalars().all() == ["general"]
            diff = compare_metadata(
                MigrationContext.configure(
                    conn, opts={"include_object": _include, "compare_type": True}
                ),
                Base.metadata,
            )
        assert diff == [], f"models and migrations drifted: {diff}"
        downgrade(revision="base")
        left = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        upgrade()
        db.engine.dispose()


def _include(obj, name, type_, reflected, compare_to):
    return not (name or "").startswith(
        ("ideas_fts", "ix_ideas_search", "threads_fts", "ix_threads_search", "search_vector")
    )


def test_sqlite_upgrade_downgrade_and_no_drift(tmp_path):
    """An empty SQLite file migrates up (with the general board), down to nothing, and up."""
    _roundtrip(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_postgres_upgrade_downgrade_and_no_drift():
    """An empty PostgreSQL database migrates up, down to nothing, and up again."""
    if not PG_URL:
        pytest.skip("set TEST_DATABASE_URL=postgresql://... to run PostgreSQL tests")
    url = make_pg_database(PG_URL)
    try:
        _roundtrip(url)
    finally:
        drop_pg_database(PG_URL, url)
