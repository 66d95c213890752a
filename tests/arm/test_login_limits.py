"""The token endpoint under a wrong-secret flood (issue 12, finding 4): the flood is throttled with 429 and
Retry-After, authenticated requests keep their latency, honest sign-ins still succeed, and the verified-secret
cache never accepts a secret that was rotated or whose principal was deleted.

The flood comes from 127.0.0.2 (any 127/8 address reaches a loopback listener) and the honest traffic from
127.0.0.1, so the per-address limits can be seen to separate them. Each test runs its own server: the
flood must not spend the shared server's limits for other tests.
"""

from __future__ import annotations

import json
import math
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from altostratus.arm.auth import hash_secret
from altostratus.arm.login_limits import LoginLimits, LoginLimitSettings
from tests.support.server import AltoServer

FLOOD_SOURCE = "127.0.0.2"
FLOOD_THREADS = 16
SAMPLES = 200
API = "api-version=2021-04-01"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[AltoServer]:
    srv = AltoServer(tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.close()


class Flood:
    """``FLOOD_THREADS`` clients posting wrong secrets from ``FLOOD_SOURCE``, in a process of their own
    (tests/support/login_flood.py), stopped on leaving the block and bounded in time regardless."""

    def __init__(self, server: AltoServer, client_ids: list[str], seconds: float = 30.0) -> None:
        self.cmd = [sys.executable, "-m", "tests.support.login_flood", server.credentials["tokenEndpoint"]]
        self.cmd += ["--ca", server.ca, "--source", FLOOD_SOURCE, "--threads", str(FLOOD_THREADS)]
        self.cmd += ["--seconds", str(seconds)] + [arg for cid in client_ids for arg in ("--client-id", cid)]
        self.started = time.monotonic()
        self.statuses: dict[int, int] = {}
        self.retry_after: list[str] = []
        self.first_429: float | None = None

    def __enter__(self) -> Flood:
        # Unbuffered: a buffered reader could read the "throttled" line ahead, where select() cannot see it.
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, bufsize=0, cwd=ROOT)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == b"started"
        self.started = time.monotonic()
        return self

    def wait_throttled(self, timeout: float = 30.0) -> None:
        """Until the flood has had its first 429: its connections are up and its burst is being refused."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready and self.proc.stdout.readline().strip() == b"throttled", "the flood was never throttled"

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        self.statuses = {int(k): v for k, v in summary["statuses"].items()}
        self.retry_after = summary["retry_after"]
        self.first_429 = summary["first_429"]


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def authenticated_latencies(client: httpx.Client, server: AltoServer, n: int) -> list[float]:
    """Alternating GETs of the subscription and PUTs of a resource group, as a tenant's tooling would."""
    sub = server.credentials["tenant"]["subscriptionId"]
    out = []
    for i in range(n):
        start = time.perf_counter()
        if i % 2:
            r = client.put(f"/subscriptions/{sub}/resourcegroups/flood-rg?{API}", json={"location": "local"})
        else:
            r = client.get(f"/subscriptions/{sub}?api-version=2016-06-01")
        out.append(time.perf_counter() - start)
        assert r.status_code in (200, 201), r.text
    return out


def token_request(server: AltoServer, client_id: str, secret: str, source: str | None = None) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source, verify=server.tls) if source else None
    with httpx.Client(transport=transport, verify=server.tls, timeout=30) as client:
        return client.post(
            server.credentials["tokenEndpoint"],
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )


def create_principal(server: AltoServer, client_id: str) -> str:
    with server.client("operator") as op:
        r = op.put(principal_path(server, client_id), json={"properties": {"role": "tenant"}})
        assert r.status_code == 201, r.text
        return str(r.json()["properties"]["clientSecret"])


def principal_path(server: AltoServer, client_id: str) -> str:
    sub = server.credentials["operator"]["subscriptionId"]
    return f"/subscriptions/{sub}/providers/Altostratus.Identity.Admin/principals/{client_id}?api-version=2024-01-01"


def test_flood_is_throttled_and_authenticated_latency_holds(own_server: AltoServer) -> None:
    """The bound is p99 under flood <= max(2 x idle p99, idle p99 + 250 ms), measured from the flood's first
    429 on (its sixteen TLS handshakes are behind it then; connection set-up is not what the issue measured)
    for as long as the samples take, while the flood keeps sending.

    Why the absolute floor: the suite runs on two workers of a 2-core machine, so while this test measures, the
    other worker's servers and this flood's process share the cores; an idle p99 of ~10 ms then moves by tens of
    milliseconds from scheduling alone (a CI run saw 9.7 ms idle and 117 ms under flood with the fix in place),
    and 2 x 10 ms would fail on noise rather than on the defect. Run alone, the issue's 2x holds (p99 within
    idle + 50 ms in four runs). The defect this guards against took p99 from 8 ms to 9.25 s (issue 12), and
    without the limits this test sees p99 in the seconds, so a 250 ms floor still separates the two by an order
    of magnitude.
    """
    server = own_server
    tenant = server.credentials["tenant"]
    with server.client("tenant") as client:
        authenticated_latencies(client, server, 20)  # warm up: connection, caches, the resource group
        idle = p99(authenticated_latencies(client, server, SAMPLES))
        targets = [tenant["clientId"], server.credentials["operator"]["clientId"], str(uuid.uuid4())]
        with Flood(server, targets) as flood:
            flood.wait_throttled()
            loaded = p99(authenticated_latencies(client, server, SAMPLES))
    assert flood.statuses.get(429, 0) > 0, flood.statuses
    assert set(flood.statuses) <= {401, 429}, flood.statuses
    for seen in flood.retry_after:
        retry_after, error = seen.split()
        assert retry_after.isdigit() and int(retry_after) >= 1 and error == "temporarily_unavailable", seen
    bound = max(2 * idle, idle + 0.250)
    assert loaded <= bound, f"p99 idle {idle * 1000:.1f} ms, under flood {loaded * 1000:.1f} ms"


def test_honest_sign_ins_succeed_during_flood(own_server: AltoServer) -> None:
    """A principal nobody attacks signs in from another address; the attacked principal, whose secret was
    verified before the flood, still signs in (from the cache, without a hash or a rate limit)."""
    server = own_server
    tenant = server.credentials["tenant"]
    assert token_request(server, tenant["clientId"], tenant["clientSecret"]).status_code == 200
    fresh_id = str(uuid.uuid4())
    fresh_secret = create_principal(server, fresh_id)
    with Flood(server, [tenant["clientId"]]) as flood:
        flood.wait_throttled()
        attacked = token_request(server, tenant["clientId"], tenant["clientSecret"], source=FLOOD_SOURCE)
        assert attacked.status_code == 200, attacked.text
        for _ in range(5):  # as azure-identity does: a 429 is retried after its Retry-After
            fresh = token_request(server, fresh_id, fresh_secret)
            if fresh.status_code != 429:
                break
            time.sleep(int(fresh.headers["retry-after"]))
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["access_token"]


def test_rotated_or_deleted_secret_is_never_accepted_from_cache(own_server: AltoServer) -> None:
    server = own_server
    client_id = str(uuid.uuid4())
    old_secret = create_principal(server, client_id)
    for _ in range(2):  # the second answer comes from the verified-secret cache
        assert token_request(server, client_id, old_secret).status_code == 200
    with server.client("operator") as op:
        assert op.delete(principal_path(server, client_id)).status_code == 200
    assert token_request(server, client_id, old_secret).status_code == 401
    new_secret = create_principal(server, client_id)  # the same client id again: a rotated secret
    assert token_request(server, client_id, old_secret).status_code == 401
    assert token_request(server, client_id, new_secret).status_code == 200


def test_cache_is_keyed_by_the_stored_hash() -> None:
    """A secret verified against one stored hash is hashed again, and refused, once the stored hash changes."""
    limits = LoginLimits(LoginLimitSettings(per_source_burst=100, per_client_burst=100))
    try:
        old = hash_secret("old")
        assert limits.check_secret("127.0.0.1", "c", old, "old")
        assert limits.verified.known("c", old, "old")
        rotated = hash_secret("new")
        assert not limits.check_secret("127.0.0.1", "c", rotated, "old")
        assert limits.check_secret("127.0.0.1", "c", rotated, "new")
        assert not limits.check_secret("127.0.0.1", "c", None, "new")  # deleted principal
    finally:
        limits.close()
