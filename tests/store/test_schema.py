"""The migrations and the models agree, on SQLite and PostgreSQL; migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from altostratus.schema import metadata
from altostratus.store.db import Database


def check_schema(url: str) -> None:
    db = Database(url)
    try:
        db.migrate()
        db.migrate()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        db.dispose()


def test_sqlite_schema(tmp_path: Path) -> None:
    check_schema(f"sqlite:///{tmp_path / 'a.db'}")


def test_postgres_schema(postgres_url: str) -> None:
    check_schema(postgres_url)
