"""SIGKILL the node that owns a scale set in the middle of its scale-out: the other node takes the set over and
finishes it within 10 s, with the exact capacity and unique instance keys - five times in a row.

Two real `alto up` nodes with controllers on one PostgreSQL database, the sim hypervisor. On a shared database the
embedded simulated host (``local``) lives in the database, as a hypervisor host is reached by every node: the
check that nothing is lost, left over or made twice is that the host holds exactly the set's instances after the
survivor finished what the dead node started (tests/compute/test_leases.py shows one owner at a time). The node
killed is replaced by a fresh node, joined with a join token through the survivor (`alto up --join-token`), so
that two nodes run in every trial.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from altostratus.blobs.models import BlobCopy
from altostratus.compute.hosts import DEFAULT_HOST
from altostratus.compute.models import ScaleSet, ScaleSetLease, ScaleSetVm, SimInstance
from altostratus.store.db import Database
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

CAPACITY = 8  # five sets within the default plan's 50 instances
TRIALS = 5
ARGS = ("--sim-boot-seconds", "1.0", "--no-portal")
ADMIN = "api-version=2015-12-01-preview"


def _host_keys(db: Database) -> list[str]:
    """The instances on the cloud's simulated host (every node drives the same one, in the database)."""
    with db.session(readonly=True) as s:
        return list(s.scalars(select(SimInstance.key).where(SimInstance.host == DEFAULT_HOST)))


def _copies(db: Database) -> int:
    """How many nodes' blob stores hold a durable copy of the one image (dead nodes' included)."""
    with db.session(readonly=True) as s:
        return len(list(s.scalars(select(BlobCopy.store_id).where(BlobCopy.durable.is_(True)))))


def _client(node: AltoServer) -> httpx.Client:
    """The tenant, signed in at this node (a token's audience is the node's endpoint; the key is the cloud's)."""
    creds = node.credentials
    token_url = node.endpoint + "/" + creds["tokenEndpoint"].split("/", 3)[3]
    r = httpx.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": creds["tenant"]["clientId"],
            "client_secret": creds["tenant"]["clientSecret"],
            "scope": f"{node.endpoint}/.default",
        },
        verify=node.tls,
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return httpx.Client(base_url=node.endpoint, verify=node.tls, headers=headers, timeout=30)


@pytest.mark.postgres
def test_sigkill_the_owner_mid_scale_out(tmp_path: Path, postgres_url: str) -> None:
    counter = itertools.count()
    created: list[AltoServer] = []  # every node, closed at the end whatever happens
    starters: list[threading.Thread] = []

    def node(via: AltoServer) -> AltoServer:
        """A further node, joined through ``via`` with a join token (its data dir starts empty)."""
        with via.client("operator") as http:
            sub = via.credentials["operator"]["subscriptionId"]
            r = http.post(
                f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/local/nodes/joinToken?{ADMIN}"
            )
        assert r.status_code == 200, r.text
        created.append(
            AltoServer(tmp_path / f"node{next(counter)}", extra_args=(*ARGS, "--join-token", r.json()["token"]))
        )
        return created[-1]

    first = AltoServer(
        tmp_path / "node-first", postgres_url, extra_args=(*ARGS, "--upstream", str(make_catalog(tmp_path / "up")))
    )
    nodes = [first.start()]
    db = Database(postgres_url)
    try:
        op = Operator(first)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        op.http.close()
        nodes.append(node(first).start())
        group = Tenant(first, unique("kill")).base
        for trial in range(TRIALS):
            # Every node holds the image before one is killed (each node copies every image within seconds of
            # joining: marketplace/blob_replication.py); a node killed before that would take the only copy along.
            deadline = time.monotonic() + 20
            while _copies(db) < 1 + len(created):
                assert time.monotonic() < deadline, f"trial {trial}: the image did not reach every node"
                time.sleep(0.1)
            began = time.monotonic()
            name = f"k{trial}"
            with _client(nodes[trial % 2]) as http:  # through either node: both serve the API
                put = http.put(f"{group}/{name}?{COMPUTE}", json=vmss_body(CAPACITY, prefix=name))
            assert put.status_code == 201, put.text
            with db.session(readonly=True) as s:
                set_id, unique_id = s.execute(
                    select(ScaleSet.id, ScaleSet.unique_id).where(ScaleSet.name == name)
                ).one()

            # The owner starts the scale-out on the host (the only node that drives the set).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with db.session(readonly=True) as s:
                    owner = s.scalar(select(ScaleSetLease.owner).where(ScaleSetLease.scale_set_id == set_id))
                by_pid = {n.proc.pid: n for n in nodes if n.proc is not None}
                holder = by_pid.get(int(owner.split(":")[1])) if owner else None
                if holder is not None and any(k.startswith(unique_id) for k in _host_keys(db)):
                    break
                time.sleep(0.02)
            else:
                pytest.fail(f"trial {trial}: no node started the scale-out")
            survivor = next(n for n in nodes if n is not holder)
            with db.session(readonly=True) as s:
                converged = s.scalar(
                    select(ScaleSet.observed_generation >= ScaleSet.generation).where(ScaleSet.id == set_id)
                )
            assert not converged, f"trial {trial}: killed too late (the set had converged)"

            holder.kill()  # SIGKILL, mid scale-out
            killed_at = time.monotonic()
            nodes.remove(holder)
            replacement = node(survivor) if trial < TRIALS - 1 else None
            # The next trial's second node, started meanwhile.
            starter = threading.Thread(target=replacement.start if replacement else lambda: None)
            starter.start()
            starters.append(starter)

            while time.monotonic() - killed_at < 10:
                with db.session(readonly=True) as s:
                    ss = s.get(ScaleSet, set_id)
                    rows = list(s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == set_id)))
                    if ss is not None and ss.observed_generation >= ss.generation:
                        break
                time.sleep(0.1)
            took = time.monotonic() - killed_at
            assert took < 10, f"trial {trial}: not finished {took:.1f} s after the kill"
            assert ss is not None and ss.provisioning_state == "Succeeded"
            keys = [r.key for r in rows]
            assert len(keys) == CAPACITY and len(set(keys)) == CAPACITY
            assert {r.state for r in rows} == {"Running"}
            on_host = [k for k in _host_keys(db) if k.startswith(unique_id)]
            assert sorted(on_host) == sorted(keys), f"trial {trial}: duplicates or orphans on the host"
            starter.join(60)
            if replacement is not None:
                assert replacement.proc is not None, "the replacement node came up"
                nodes.append(replacement)
            print(f"trial {trial}: finished {took:.1f} s after the kill; trial {time.monotonic() - began:.1f} s")  # noqa: T201 - the figure in -s runs
    finally:
        for starter in starters:  # a node still starting is closed once it has a process
            starter.join(60)
        for n in [first, *created]:
            n.close()
        db.dispose()
