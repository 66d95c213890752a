"""The writer lane and the checkpointer (store/writer_lane.py, store/checkpointer.py): this process's SQLite
writers take turns in arrival order, reads never queue, a failed unit of work hands the lane on, and WAL
checkpoints run on their own thread instead of inside a writer's commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from altostratus.store.db import Database
from altostratus.store.writer_lane import WriterLane


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


def test_writers_take_turns_in_arrival_order() -> None:
    lane = WriterLane(starving_seconds=0)  # every waiter is handed the lane in turn
    lane.acquire()
    order: list[int] = []

    def writer(i: int) -> None:
        lane.acquire()
        order.append(i)
        lane.release()

    threads = []
    for i in range(6):
        t = threading.Thread(target=writer, args=(i,))
        t.start()
        threads.append(t)
        wait_until(lambda n=i + 1: lane.waiting == n, f"writer {i} in line")
    lane.release()
    for t in threads:
        t.join(20)
    assert order == list(range(6))
    assert lane.waiting == 0


def test_a_waiter_that_waited_long_enough_is_handed_the_lane_before_newcomers() -> None:
    lane = WriterLane(starving_seconds=0.05)
    lane.acquire()
    order: list[str] = []

    def writer(name: str) -> None:
        lane.acquire()
        order.append(name)
        lane.release()

    first = threading.Thread(target=writer, args=("waited",))
    first.start()
    wait_until(lambda: lane.waiting == 1, "the first writer in line")
    time.sleep(0.1)  # past starving_seconds: the next release hands it the lane
    lane.release()
    lane.acquire()  # a newcomer: behind the one handed the lane
    order.append("newcomer")
    lane.release()
    first.join(20)
    assert order == ["waited", "newcomer"]


def test_a_writer_gives_up_like_sqlites_busy_timeout() -> None:
    lane = WriterLane()
    lane.acquire()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        lane.acquire(timeout=0.05)
    assert lane.waiting == 0  # it left the line
    lane.release()
    lane.acquire(timeout=0.05)  # free again: the one who gave up never took it


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'lane.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    database.dispose()


def test_units_of_work_queue_in_the_lane_and_reads_do_not(db: Database) -> None:
    assert db.lane is not None
    db.lane.acquire()  # as if another unit of work were writing
    wrote = threading.Event()
    read: list[int] = []

    def write() -> None:
        with db.session() as s:
            s.execute(text("INSERT INTO t (v) VALUES ('x')"))
        wrote.set()

    def look() -> None:
        with db.session(readonly=True) as s:
            read.append(int(s.scalar(text("SELECT count(*) FROM t")) or 0))

    writer = threading.Thread(target=write)
    writer.start()
    wait_until(lambda: db.lane is not None and db.lane.waiting == 1, "the writer queued in the lane")
    reader = threading.Thread(target=look)
    reader.start()
    reader.join(20)
    assert read == [0]  # answered while the writer waits, from the snapshot before its insert
    assert not wrote.is_set()
    db.lane.release()
    writer.join(20)
    assert wrote.is_set()


def test_a_failed_unit_of_work_hands_the_lane_on(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        s.execute(text("INSERT INTO t (v) VALUES ('rolled back')"))
        raise RuntimeError("handler failed")
    assert db.lane is not None
    db.lane.acquire(timeout=1)  # free
    db.lane.release()
    with db.session(readonly=True) as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 0


def test_many_concurrent_writers_all_commit(db: Database) -> None:
    def writer(i: int) -> None:
        for j in range(25):
            with db.session() as s:
                s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{i}-{j}"})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with db.session(readonly=True) as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 200


def test_checkpoints_run_on_their_own_thread(db: Database) -> None:
    with db.session() as s:
        assert s.scalar(text("PRAGMA wal_autocheckpoint")) == 0  # never inside a writer's commit
        s.execute(text("INSERT INTO t (v) VALUES ('y')"))
    assert db.checkpointer is not None
    wait_until(lambda: db.checkpointer is not None and db.checkpointer.runs > 0, "a checkpoint after the commit")
    assert any(t.name == "wal-checkpoint" for t in threading.enumerate())


def test_one_writer_at_a_time_whoever_goes_next() -> None:
    lane = WriterLane(starving_seconds=0.001)  # both ways of going next: taken while free, and handed over
    inside: list[int] = []
    overlaps: list[int] = []

    def writer(i: int) -> None:
        for _ in range(200):
            lane.acquire()
            if inside:
                overlaps.append(i)
            inside.append(i)
            time.sleep(0)  # let the others run while the lane is held
            inside.pop()
            lane.release()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not overlaps
    assert lane.waiting == 0
    lane.acquire(timeout=1)  # and it is free at the end
