"""Engine, migrations and the unit of work.

SQLite (WAL, embedded) is the default; PostgreSQL is selected by URL. Alembic migrations are applied on
every start so an upgraded binary brings its schema with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value else None


_txn = threading.local()  # per thread: is the transaction being opened read-only?


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite would run SELECTs outside any transaction (each sees newer commits); we begin every
            # transaction ourselves, IMMEDIATE, so a unit of work is serializable like it reads.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Reads take a snapshot (WAL) without the write lock; writers serialize from their first statement.
            conn.exec_driver_sql("BEGIN" if getattr(_txn, "readonly", False) else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """Owns the engine and hands out units of work (one transaction each)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()
        self._serialized = url.startswith("sqlite")

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction that commits when the block ends normally and rolls back otherwise. ``readonly``
        sessions (GET requests) read a consistent snapshot without taking SQLite's write lock."""
        depth = getattr(self._local, "depth", 0)
        if depth and self._serialized:
            # SQLite transactions begin IMMEDIATE: a second one on this thread would wait on the first forever.
            raise RuntimeError("nested database session on one thread (finish the outer transaction first)")
        self._local.depth = depth + 1
        _txn.readonly = readonly
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            self._local.depth = depth

    def dispose(self) -> None:
        self.engine.dispose()
