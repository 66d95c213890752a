"""Node liveness (store/nodes.py) and what the operation runner does with it: every server process is a node with
an id unique across restarts and hosts, beats about every second with one small UPDATE, and is dead after ~3 s of
silence; the leases its operations held are then released at once, whatever host it ran on (before: only a dead
process of the same hostname, else a 60 s expiry)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from altostratus.arm.operations import OperationRunner
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Node, Operation
from altostratus.store.nodes import (
    BEAT_SECONDS,
    DEAD_AFTER_SECONDS,
    NodeLiveness,
    alive_nodes,
    dead_owners,
    new_node_id,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def _age(db: Database, node: str, seconds: float) -> None:
    """As if ``node`` had not beaten for ``seconds`` (a paused or killed process on another host)."""
    with db.session() as s:
        s.execute(update(Node).where(Node.node == node).values(last_beat=utcnow() - timedelta(seconds=seconds)))


def test_node_ids_are_unique_and_say_where_they_run() -> None:
    ids = {new_node_id() for _ in range(100)}
    assert len(ids) == 100
    host, pid, rand = next(iter(ids)).split(":")
    assert pid.isdigit() and len(rand) == 8 and host


def test_a_node_beats_every_second_and_is_dead_after_three_silent_seconds(db: Database) -> None:
    node = NodeLiveness(db)
    node.start()
    try:
        with db.session(readonly=True) as s:
            first = s.get(Node, node.node)
            assert first is not None and first.controllers and node.node in alive_nodes(s)
            first_beat = first.last_beat
        time.sleep(BEAT_SECONDS * 2.5)  # the beat thread writes on its own, a second apart
        with db.session(readonly=True) as s:
            row = s.get(Node, node.node)
            assert row is not None and row.last_beat > first_beat
        assert node.fresh()
        _age(db, node.node, DEAD_AFTER_SECONDS + 0.5)
        with db.session(readonly=True) as s:
            assert node.node not in alive_nodes(s) and dead_owners(s, [node.node]) == {node.node}
    finally:
        node.stop()
    with db.session(readonly=True) as s:  # a clean stop is dead at once: no one waits for it
        assert node.node not in alive_nodes(s)


def test_who_is_dead(db: Database) -> None:
    alive, dead = NodeLiveness(db), NodeLiveness(db)
    alive.beat()
    dead.beat()
    _age(db, dead.node, 10)
    with db.session(readonly=True) as s:
        forgotten = "elsewhere:4242:0badf00d"  # no row: forgotten long ago, or never beat
        old_style_here_gone = f"{alive.node.split(':')[0]}:999999999"  # an older hostname:pid owner, its pid gone
        old_style_elsewhere = "another-host:1234"  # cannot be judged from here: left to its expiry
        owners = [alive.node, dead.node, forgotten, old_style_here_gone, old_style_elsewhere]
        assert dead_owners(s, owners) == {dead.node, forgotten, old_style_here_gone}


def _leased_operation(db: Database, op_id: str, owner: str) -> None:
    now = utcnow()
    with db.session() as s:
        s.add(
            Operation(
                id=op_id, subscription_id="00000000-0000-0000-0000-000000000000", namespace="Microsoft.Compute",
                location="local", kind="test/kind", target="/x", params={}, status="InProgress", attempts=1,
                lease_owner=owner, lease_expires=now + timedelta(seconds=60), start_time=now,
            )
        )  # fmt: skip


def test_a_dead_nodes_operations_are_released_on_any_host(db: Database) -> None:
    """The other node ran on another host (its id says so): its leases go as soon as it is dead by liveness,
    not 60 s later; a live node's lease is left alone."""
    other, live = NodeLiveness(db, node_id="other-host:77:deadbeef"), NodeLiveness(db)
    other.beat()
    live.beat()
    _leased_operation(db, "op-of-the-dead", other.node)
    _leased_operation(db, "op-of-the-living", live.node)
    runner = OperationRunner(db, owner=NodeLiveness(db).node)

    runner.release_dead_leases()
    with db.session(readonly=True) as s:
        assert s.get(Operation, "op-of-the-dead").lease_owner == other.node, "alive: its lease holds"

    _age(db, other.node, DEAD_AFTER_SECONDS + 1)
    runner.release_dead_leases()
    with db.session(readonly=True) as s:
        released, kept = s.get(Operation, "op-of-the-dead"), s.get(Operation, "op-of-the-living")
        assert released is not None and released.lease_owner is None and released.lease_expires is None
        assert kept is not None and kept.lease_owner == live.node


def test_the_runner_looks_for_dead_nodes_while_it_runs(db: Database) -> None:
    """Not only at start: a node that dies while this one runs has its operations picked up within seconds."""
    other = NodeLiveness(db, node_id="other-host:78:cafebabe")
    other.beat()
    _leased_operation(db, "op-1", other.node)
    ran: list[str] = []
    runner = OperationRunner(db, workers=1, poll_seconds=0.1, owner=NodeLiveness(db).node)
    runner.register("test/kind", lambda _db, task, _progress: ran.append(task.id) or {"ok": True})
    runner.start()
    try:
        time.sleep(0.5)
        assert ran == [], "its owner is alive"
        _age(db, other.node, DEAD_AFTER_SECONDS + 1)
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ran == ["op-1"]
    finally:
        runner.stop()
    with db.session(readonly=True) as s:
        op = s.get(Operation, "op-1")
        assert op is not None and op.status == "Succeeded"


def test_a_node_whose_beat_fell_behind_does_not_act_until_it_beats_again(db: Database) -> None:
    """A paused process resumes: its controller thread may run before its beat thread. The others may be taking
    its sets over right then, so it must not act as an owner (compute/leases.py) until the thread has beaten."""
    from altostratus.compute.leases import SetLeases

    node = NodeLiveness(db)
    node.start()
    try:
        leases = SetLeases(db, node)
        assert leases.ready()
        node._last_ok -= DEAD_AFTER_SECONDS  # as if no beat had reached the database for 3 s
        assert not node.fresh() and not leases.ready(), "its own beat thread runs: wait for it, do not beat here"
        assert node.beat() and leases.ready()
    finally:
        node.stop()
    tool = SetLeases(db, NodeLiveness(db))  # no beat thread (tests, tools): the caller's look beats
    assert tool.ready() and tool.liveness.fresh()
