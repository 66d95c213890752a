"""One owner per scale set (compute/leases.py): controller nodes on one PostgreSQL database share the sets out,
each converges only the sets it holds, a dead node's sets are taken over by compare-and-set on the epoch, and a
stale owner's late writes change nothing.

The nodes here are controllers in this process - each with its own node identity, liveness and leases - on one
simulated host they share (as real nodes share libvirt hosts), beside an API-only server on the same database:
so which node called the hypervisor for which instance can be counted exactly, and an owner can be paused in
the middle of a driver call. tests/compute/test_node_kill.py SIGKILLs real `alto up` nodes.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import psycopg
import pytest
from sqlalchemy import select, update

from altostratus.arm.operations import OperationRunner
from altostratus.blobs.store import BlobStore
from altostratus.compute import lifecycle, scalesets
from altostratus.compute.controller import ScaleSetController
from altostratus.compute.models import ScaleSet, ScaleSetLease, ScaleSetVm
from altostratus.hypervisors.base import HypervisorDriver, InstanceSpec, InstanceState
from altostratus.hypervisors.sim import SimDriver
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Node
from altostratus.store.nodes import DEAD_AFTER_SECONDS, NodeLiveness
from tests.conftest import postgres_admin_url
from tests.support.marketplace import api_only_node
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

pytestmark = pytest.mark.postgres


class Via:
    """One node's view of the shared host: records the instances this node created, and can hold a create."""

    def __init__(self, host: SimDriver) -> None:
        self.host = host
        self.created: list[str] = []
        self.hold: threading.Event | None = None  # set: the next create waits for it (a paused owner)
        self.holding = threading.Event()

    def create(self, spec: InstanceSpec, host: str | None = None) -> InstanceState:
        if self.hold is not None:
            self.holding.set()
            self.hold.wait(30)
            self.hold = None
        self.created.append(spec.key)
        return self.host.create(spec, host)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.host, name)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AltoServer, str]]:
    """An API-only server on a PostgreSQL database of its own, with the image downloaded."""
    admin = postgres_admin_url()
    name = f"alto_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    root = tmp_path_factory.mktemp("leases")
    server = api_only_node(root, url)
    try:
        yield server, url
    finally:
        server.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Nodes:
    """Controller nodes in this process on one database and one shared simulated host."""

    def __init__(self, server: AltoServer, url: str, count: int) -> None:
        self.db = Database(url)
        self.host = SimDriver()
        self.via = [Via(self.host) for _ in range(count)]
        self.controllers = [
            ScaleSetController(
                self.db,
                cast(HypervisorDriver, via),
                BlobStore(server.data_dir),
                installation_id="leases-test",
                liveness=NodeLiveness(self.db),
            )  # fmt: skip
            for via in self.via
        ]
        self.runner = OperationRunner(self.db)
        self.runner.register(scalesets.CONVERGE, lifecycle.converge_handler, at_claim=lifecycle.converge_at_claim)

    def beat(self) -> None:
        for c in self.controllers:
            c.leases.liveness.beat()

    def passes(self, n: int, nodes: list[int] | None = None) -> None:
        for _ in range(n):
            for i in nodes if nodes is not None else range(len(self.controllers)):
                self.controllers[i].reconcile_all()
            for _ in range(10):
                self.runner.run_once()

    def owners(self, set_ids: list[int]) -> dict[int, tuple[str | None, int]]:
        with self.db.session(readonly=True) as s:
            rows = s.scalars(select(ScaleSetLease).where(ScaleSetLease.scale_set_id.in_(set_ids)))
            return {r.scale_set_id: (r.owner, r.epoch) for r in rows}

    def rows(self, set_id: int) -> list[tuple[str, str, str | None, str | None]]:
        with self.db.session(readonly=True) as s:
            found = s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == set_id).order_by(ScaleSetVm.key))
            return [(r.key, r.state, r.power_state, r.host) for r in found]

    def close(self) -> None:
        for c in self.controllers:
            c.pool.shutdown()
        self.db.dispose()


def _set_ids(db: Database, names: list[str]) -> dict[str, int]:
    with db.session(readonly=True) as s:
        return {n: i for n, i in s.execute(select(ScaleSet.name, ScaleSet.id).where(ScaleSet.name.in_(names)))}


def test_two_nodes_split_the_sets_and_each_converges_only_its_own(cloud: tuple[AltoServer, str]) -> None:
    server, url = cloud
    t = Tenant(server, unique("split"))
    names = [f"s{i}" for i in range(4)]
    puts = [t.http.put(f"{t.base}/{n}?{COMPUTE}", json=vmss_body(3, prefix=n)) for n in names]
    assert all(r.status_code == 201 for r in puts)
    nodes = Nodes(server, url, 2)
    try:
        nodes.beat()
        for c in nodes.controllers:
            c.leases.balance()
        nodes.passes(8)
        for r in puts:
            assert t.wait(r, timeout=10)["status"] == "Succeeded"
        ids = _set_ids(nodes.db, names)
        owners = nodes.owners(list(ids.values()))
        a, b = (c.leases.node for c in nodes.controllers)
        assert Counter(owner for owner, _ in owners.values()) == {a: 2, b: 2}, owners  # split evenly
        assert all(epoch == 1 for _, epoch in owners.values())
        # Each instance was created once, by its set's owner, and exists once on the host.
        created = nodes.via[0].created + nodes.via[1].created
        assert len(created) == len(set(created)) == 12
        for name, set_id in ids.items():
            keys = {key for key, *_ in nodes.rows(set_id)}
            owner_via = nodes.via[0] if owners[set_id][0] == a else nodes.via[1]
            assert keys <= set(owner_via.created), name
        assert len(nodes.host.list_instances({})) == 12
    finally:
        nodes.close()


def test_a_paused_owner_is_taken_over_and_its_late_writes_change_nothing(cloud: tuple[AltoServer, str]) -> None:
    server, url = cloud
    t = Tenant(server, unique("fence"))
    put = t.http.put(f"{t.base}/web?{COMPUTE}", json=vmss_body(4))
    assert put.status_code == 201
    nodes = Nodes(server, url, 2)
    first, second = nodes.controllers
    try:
        nodes.beat()
        first.leases.balance()
        set_id = _set_ids(nodes.db, ["web"])["web"]
        assert nodes.owners([set_id])[set_id] == (first.leases.node, 1)

        # The owner pauses inside its first create (a stopped process, a long GC, a network partition) ...
        hold = threading.Event()
        nodes.via[0].hold = hold
        paused = threading.Thread(target=first.reconcile_all)
        paused.start()
        assert nodes.via[0].holding.wait(10)
        # ... long enough to look dead to the others: the second node takes the set over and converges it.
        with nodes.db.session() as s:
            s.execute(
                update(Node)
                .where(Node.node == first.leases.node)
                .values(last_beat=utcnow() - timedelta(seconds=DEAD_AFTER_SECONDS + 1))
            )
        second.leases.liveness.beat()
        second.leases.balance()
        assert nodes.owners([set_id])[set_id] == (second.leases.node, 2), "taken over: the epoch moved on"
        nodes.passes(6, nodes=[1])
        assert t.wait(put, timeout=10)["status"] == "Succeeded"
        converged = nodes.rows(set_id)
        assert [state for _, state, *_ in converged] == ["Running"] * 4

        # The first node resumes: its create ends, then it checks its lease before the next batch and stops,
        # and everything it had queued for the set is dropped by the fence.
        hold.set()
        paused.join(30)
        assert not paused.is_alive()
        assert len(nodes.via[0].created) == 1, "no driver batch after losing the lease"
        first._set(first._read_set(set_id, allocate=False)[1][0], state="Failed", error={"code": "Late"})
        first._flush()
        assert nodes.rows(set_id) == converged, "a stale owner's writes changed nothing"
        nodes.passes(3, nodes=[0])  # and it no longer converges the set at all
        assert nodes.rows(set_id) == converged and len(nodes.via[0].created) == 1
        keys = [key for key, *_ in converged]
        assert len(set(keys)) == 4 and sorted(i.key for i in nodes.host.list_instances({})) == sorted(keys)
    finally:
        hold.set()
        nodes.close()


def test_a_node_that_joins_gets_its_share_as_sets_go_idle(cloud: tuple[AltoServer, str]) -> None:
    server, url = cloud
    t = Tenant(server, unique("share"))
    puts = [t.http.put(f"{t.base}/j{i}?{COMPUTE}", json=vmss_body(1, prefix=f"j{i}")) for i in range(4)]
    assert all(r.status_code == 201 for r in puts)
    nodes = Nodes(server, url, 2)
    first, second = nodes.controllers
    try:
        with nodes.db.session() as s:  # the earlier tests' nodes are gone: their sets are free for the taking
            s.execute(update(Node).values(last_beat=utcnow() - timedelta(seconds=DEAD_AFTER_SECONDS + 1)))
        first.leases.liveness.beat()
        first.leases.balance()
        nodes.passes(6, nodes=[0])
        for r in puts:
            assert t.wait(r, timeout=10)["status"] == "Succeeded"
        with nodes.db.session(readonly=True) as s:
            every = list(s.scalars(select(ScaleSet.id)))
        assert {owner for owner, _ in nodes.owners(every).values()} == {first.leases.node}
        assert len(first.leases.held()) == len(every), "alone, it holds every set"

        # A second node starts: the first gives back idle sets above its share, the second takes them.
        second.leases.liveness.beat()
        first.leases.balance()
        second.leases.balance()
        owners = Counter(owner for owner, _ in nodes.owners(every).values())
        share = -(-len(every) // 2)
        assert owners[first.leases.node] <= share and owners[second.leases.node] >= len(every) - share, owners
        assert owners[first.leases.node] + owners[second.leases.node] == len(every)
        assert set(second.leases.held()) & set(first.leases.held()) == set()
    finally:
        nodes.close()
