"""Engine, migrations and the unit of work.

SQLite (WAL, embedded) is the default; PostgreSQL is selected by URL. Alembic migrations are applied on
every start so an upgraded binary brings its schema with it.

Every unit of work also records which tables its statements wrote and, once it has committed, bumps those
tables' versions (:class:`TableVersions`); a unit of work can record the tables it read. That is what lets
the request pipeline reuse a read's answer until a commit of this process changes a table behind it
(arm/answer_cache.py): the writer's own commit is the invalidation, no polling of the database.

A SQLite database holds the token signing key unencrypted, so its file is created ``0600`` before SQLite opens
it (SQLite gives its ``-wal`` and ``-shm`` files the database file's mode): the process umask must not decide.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.util import find_tables

from altostratus.store.checkpointer import Checkpointer
from altostratus.store.writer_lane import WriterLane

MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value else None


_txn = threading.local()  # per thread: is the transaction being opened read-only? what did it write, read?

ALL_TABLES = "*"  # a statement whose tables are unknown (raw SQL): it may have touched any of them
_NOT_WRITES = ("select", "begin", "pragma", "savepoint", "release", "rollback", "commit", "with", "explain")


class TableVersions:
    """A counter per table, bumped after each commit that wrote the table (and ``*`` for unknown writes).

    Read :meth:`snapshot` *before* a transaction takes its snapshot: a commit in between only makes the
    recorded versions stale (the answer is recomputed), never an old answer look current."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def current(self) -> dict[str, int]:
        return self._versions.copy()

    def snapshot(self, tables: tuple[str, ...]) -> tuple[int, ...]:
        """The versions of ``tables`` (and of unknown writes, first)."""
        versions = self._versions
        return (versions.get(ALL_TABLES, 0), *[versions.get(t, 0) for t in tables])

    def bump(self, tables: set[str]) -> None:
        with self._lock:
            for table in tables:
                self._versions[table] = self._versions.get(table, 0) + 1


def _tables_of(statement: Any) -> set[str] | None:
    """The tables a statement names; None when it cannot be told (raw SQL text)."""
    if isinstance(statement, ClauseElement) and not isinstance(statement, TextClause):
        return {t.name for t in find_tables(statement, include_crud=True, include_joins=True, include_aliases=True)}
    return None


def _written_by(statement: Any) -> set[str]:
    """The table an INSERT, UPDATE or DELETE writes: its target, not the tables its subqueries read. Why not
    walk the whole statement: this runs for every statement of every write (an ORM flush is several), and
    the walk was ~2.5 % of the server's Python time under 20 clients."""
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    return {name} if isinstance(name, str) else (_tables_of(statement) or {ALL_TABLES})


def _record_statement(_conn: Any, statement: Any, *_args: Any) -> None:
    written: set[str] | None = getattr(_txn, "written", None)
    if written is not None and getattr(statement, "is_dml", False):
        written.update(_written_by(statement))
    elif written is not None and not getattr(statement, "is_select", False):
        text = statement if isinstance(statement, str) else str(getattr(statement, "text", ""))
        if not text.lstrip().lower().startswith(_NOT_WRITES):
            written.add(ALL_TABLES)
    read: set[str] | None = getattr(_txn, "read", None)
    if read is not None:
        read.update(_tables_of(statement) or {ALL_TABLES})


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_files(url: str) -> list[Path]:
    """The files of a SQLite database URL (the database, then its side files); none for other databases and
    in-memory SQLite."""
    if not url.startswith("sqlite"):
        return []
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return []
    path = Path(database)
    return [path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)]


def create_private_sqlite_file(url: str) -> None:
    """Creates a missing SQLite database file ``0600`` (an existing one keeps its mode: ``alto up`` refuses one
    that others can read rather than guess whether its key has been read)."""
    files = sqlite_files(url)
    if not files:
        return
    try:
        fd = os.open(files[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)  # whatever the umask
    os.close(fd)


def make_engine(url: str) -> Engine:
    engine = _make_engine(url)
    event.listen(engine, "before_execute", _record_statement)
    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        create_private_sqlite_file(url)
        # A connection for every thread that may read at once (request threads, runner, controller), so reads
        # never queue for one; writers take the writer lane before theirs (Database.session).
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16, max_overflow=48
        )

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
            cur.execute("PRAGMA wal_autocheckpoint=0")  # Database's checkpointer thread does it (checkpointer.py)
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Reads take a snapshot (WAL) without the write lock; writers serialize from their first statement,
            # in this process first in the writer lane of the unit of work that opens the transaction.
            # On the driver's connection, not through the engine's execution path (events, an execution context):
            # every transaction begins here, several hundred a second under load.
            driver = conn.connection.driver_connection
            if getattr(_txn, "readonly", False):
                driver.execute("BEGIN")
                return
            lane: WriterLane | None = getattr(_txn, "lane", None)
            if lane is not None and not _txn.in_lane:
                lane.acquire()
                _txn.in_lane = True
            driver.execute("BEGIN IMMEDIATE")

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
        # SQLite: this process's writers queue here rather than in SQLite's busy handler (store/writer_lane.py).
        self.lane = WriterLane() if self._serialized else None
        self.checkpointer = Checkpointer(self.engine) if sqlite_files(url) else None
        self.versions = TableVersions()

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
        if self.lane is not None and not readonly:
            # Before a connection is checked out of the pool: a writer waiting in the lane holding one would
            # leave the pool empty for the reads (twenty writers in line, and every GET waited for a connection).
            self.lane.acquire()
        self._local.depth = depth + 1
        _txn.readonly = readonly
        _txn.lane, _txn.in_lane = self.lane, self.lane is not None and not readonly
        outer_written = getattr(_txn, "written", None)
        written: set[str] = set()
        _txn.written = written
        session = self._sessions()
        committed = False
        try:
            yield session
            session.commit()
            committed = True
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()  # the connection is back in the pool, its transaction ended: the next writer's turn
            if _txn.in_lane:
                _txn.in_lane = False
                assert self.lane is not None
                self.lane.release()
                if committed and self.checkpointer is not None:
                    self.checkpointer.committed()
            _txn.lane = None
            self._local.depth = depth
            _txn.written = outer_written
            if outer_written is not None:
                outer_written.update(written)
        if written:
            self.versions.bump(written)

    @contextmanager
    def recording_reads(self) -> Iterator[set[str]]:
        """Collects the tables the statements of this thread name while the block runs (``*`` for raw SQL)."""
        outer = getattr(_txn, "read", None)
        read: set[str] = set()
        _txn.read = read
        try:
            yield read
        finally:
            _txn.read = outer
            if outer is not None:
                outer.update(read)

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()
