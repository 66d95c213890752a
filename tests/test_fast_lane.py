"""The fast lane (arm/fastlane.py) against a live server: the same answers as the general pipeline, always fresh,
and never an answer of its own when a check fails.

Which lane answered a request is read from the access log (``"lane"``), so each test proves the lane it means
to exercise actually answered.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from altostratus.arm.auth import TokenService, new_signing_key
from altostratus.arm.context import Caller
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.subscription_cache import SubscriptionCache
from altostratus.store.sqlite_changes import ChangeStamp
from tests.support.arm import error_of, make_tenant, server_signing_key, signed_token
from tests.support.names import unique
from tests.support.server import AltoServer

API = "api-version=2019-10-01"
PER_REQUEST = {"date", "x-ms-request-id", "x-ms-correlation-request-id"}


def lanes(server: AltoServer) -> dict[str, str]:
    """requestId -> lane, from the structured access log."""
    out = {}
    for line in server.log_path.read_text().splitlines():
        if "altostratus.access " in line:
            entry = json.loads(line.split("altostratus.access ", 1)[1])
            out[entry["requestId"]] = entry.get("lane", "")
    return out


def lane_of(server: AltoServer, r: httpx.Response) -> str:
    for _ in range(100):  # access-log lines are written in batches, at most 0.1 s late
        lane = lanes(server).get(r.headers["x-ms-request-id"])
        if lane:
            return lane
        time.sleep(0.02)
    raise AssertionError(f"request {r.headers['x-ms-request-id']} is not in the access log")


def group_path(server: AltoServer, name: str, sub: str | None = None) -> str:
    return f"/subscriptions/{sub or server.credentials['tenant']['subscriptionId']}/resourcegroups/{name}"


def warm_get(c: httpx.Client, server: AltoServer, url: str, **kw: Any) -> httpx.Response:
    """GET until the fast lane answers (the first request of a token or after a cache expiry goes the long way)."""
    for _ in range(5):
        r = c.get(url, **kw)
        if r.status_code == 200 and lane_of(server, r) == "fast":
            return r
    raise AssertionError(f"the fast lane never answered {url}: {r.status_code} {r.text}")


def comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    return r.status_code, r.content, [(k, v) for k, v in r.headers.multi_items() if k not in PER_REQUEST]


def test_same_answer_as_the_general_pipeline(server: AltoServer) -> None:
    name = unique("Fast.Lane(1)")
    path = group_path(server, name)
    with server.client() as c:
        body = {"location": "local", "tags": {"env": "prod", "ünï": "cödé"}, "managedBy": "/subscriptions/x/y"}
        c.put(f"{path}?{API}", json=body).raise_for_status()
        ids = {"x-ms-client-request-id": "client-1", "x-ms-correlation-request-id": "corr-1"}
        fast = warm_get(c, server, f"{path}?{API}", headers=ids)
        # An extra query parameter the handler ignores sends the same request the long way.
        general = c.get(f"{path}?{API}&unused=1", headers=ids)
        assert lane_of(server, general) == "general"
        assert comparable(fast) == comparable(general)
        assert fast.json()["tags"] == body["tags"] and fast.json()["managedBy"] == body["managedBy"]
        assert fast.headers["x-ms-client-request-id"] == "client-1"
        assert fast.headers["x-ms-correlation-request-id"] == "corr-1"
        assert uuid.UUID(fast.headers["x-ms-request-id"]).version == 4

        # Other casings of the path and the api-version name answer with the canonical id, like the long way.
        odd = f"/SUBSCRIPTIONS/{server.credentials['tenant']['subscriptionId'].upper()}/resourceGroups/{name.upper()}"
        fast = warm_get(c, server, f"{odd}?API-VERSION=2019-10-01")
        general = c.get(f"{odd}?api-version=2019-10-01&unused=1")
        assert comparable(fast) == comparable(general) and fast.json()["name"] == name
        # Without a correlation id, the request id stands in for it, as on the long way.
        fast = warm_get(c, server, f"{path}?{API}")
        assert fast.headers["x-ms-correlation-request-id"] == fast.headers["x-ms-request-id"]
        assert "x-ms-client-request-id" not in fast.headers


def test_every_commit_is_seen_at_once(server: AltoServer) -> None:
    path = group_path(server, unique("fresh"))
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, server, f"{path}?{API}")
        for i in range(30):
            patched = c.patch(f"{path}?{API}", json={"tags": {"i": str(i)}})
            patched.raise_for_status()
            r = c.get(f"{path}?{API}")
            assert r.status_code == 200 and r.json()["tags"] == {"i": str(i)}, (i, r.text)
            assert r.headers["etag"] == patched.headers["etag"]
        assert lane_of(server, r) == "fast"
        assert c.delete(f"{path}?{API}").status_code in (200, 202)
        deadline = time.time() + 30
        while (r := c.get(f"{path}?{API}")).status_code == 200 and time.time() < deadline:
            time.sleep(0.1)
        assert r.status_code == 404 and error_of(r)["code"] == "ResourceGroupNotFound"


def test_commits_of_another_process_are_seen(server: AltoServer) -> None:
    """The change stamp covers every writer of the file, not only this server's own sessions."""
    name = unique("outside")
    path = group_path(server, name)
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, server, f"{path}?{API}")
        conn = sqlite3.connect(server.data_dir / "altostratus.db", timeout=30)
        try:
            for i in range(5):
                with conn:
                    tags = json.dumps({"k": str(i)})
                    conn.execute("UPDATE resource_groups SET tags = ? WHERE name_key = ?", (tags, name.lower()))
                r = c.get(f"{path}?{API}")
                assert r.json()["tags"] == {"k": str(i)} and lane_of(server, r) == "fast"
        finally:
            conn.close()


def shm_locks(pid: int, shm: Path) -> list[str]:
    inode = os.stat(shm).st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return [line for line in lines if f" {pid} " in line and line.split()[5].endswith(f":{inode}")]


def test_sqlite_keeps_its_shm_lock_and_other_processes_are_harmless(server: AltoServer) -> None:
    """The change stamp must not drop SQLite's lock on the shm file (a closed descriptor drops all of a
    process's POSIX locks on a file); without that lock, any other process opening the database rebuilds the
    WAL index under the live server (it died of SIGBUS when this was broken)."""
    assert server.proc is not None
    shm = server.data_dir / "altostratus.db-shm"
    path = group_path(server, unique("locks"))
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, server, f"{path}?{API}")
        assert shm_locks(server.proc.pid, shm), "the server holds no lock on the shm file"

        stop = threading.Event()

        def outsider() -> None:  # opens and closes the database from this (another) process, over and over
            while not stop.is_set():
                conn = sqlite3.connect(server.data_dir / "altostratus.db", timeout=5)
                try:
                    conn.execute("SELECT count(*) FROM resource_groups").fetchone()
                finally:
                    conn.close()

        thread = threading.Thread(target=outsider)
        thread.start()
        try:
            deadline = time.time() + 3
            i = 0
            while time.time() < deadline:
                i += 1
                c.patch(f"{path}?{API}", json={"tags": {"i": str(i)}}).raise_for_status()
                r = c.get(f"{path}?{API}")
                assert r.status_code == 200 and r.json()["tags"] == {"i": str(i)}, r.text
        finally:
            stop.set()
            thread.join()
        assert server.proc.poll() is None, "the server died"
        assert lane_of(server, r) == "fast" and shm_locks(server.proc.pid, shm)


def test_a_lookup_older_than_a_forget_is_not_remembered() -> None:
    """A deletion's forget, after its commit, wins over a concurrent lookup that read an older snapshot."""
    tokens = TokenService(new_signing_key(), "tenant")
    epoch = tokens.epoch
    tokens.forget_client("c1")  # the deletion commits and forgets while a request is between snapshot and store
    tokens.check_principal_active("c1", lambda _cid: True, epoch)  # that request's (old) lookup
    assert not tokens.principal_recently_active("c1")
    tokens.check_principal_active("c1", lambda _cid: True, tokens.epoch)
    assert tokens.principal_recently_active("c1")

    class Sub:
        owner_client_id = "old-owner"

    class Db:
        def get(self, _model: object, _key: str) -> Sub:
            return Sub()

        def expunge(self, _obj: object) -> None:
            pass

    subs = SubscriptionCache()
    sub_id = str(uuid.uuid4())
    epoch = subs.epoch
    subs.forget(sub_id)
    caller = Caller("old-owner", "tenant", "t")
    subs.check(Db(), caller, sub_id, epoch)  # type: ignore[arg-type]
    assert subs.cached(sub_id) is None
    subs.check(Db(), caller, sub_id, subs.epoch)  # type: ignore[arg-type]
    assert subs.cached(sub_id) is not None


def test_checks_that_fail_are_answered_by_the_general_pipeline(server: AltoServer) -> None:
    path = group_path(server, unique("guarded"))
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, server, f"{path}?{API}")
        r = c.get(f"{path}?api-version=1999-01-01")
        assert r.status_code == 400 and error_of(r)["code"] == "InvalidApiVersionParameter"
        r = c.get(path)
        assert r.status_code == 400 and error_of(r)["code"] == "MissingApiVersionParameter"
        r = c.get(f"{group_path(server, unique('missing'))}?{API}")
        assert r.status_code == 404 and error_of(r)["code"] == "ResourceGroupNotFound"

    # Another tenant's valid, warmed-up token on this subscription.
    other = make_tenant(server)
    with server.client(creds=other) as b:
        warm = f"{group_path(server, 'b-group', other['subscriptionId'])}?{API}"
        b.put(warm, json={"location": "local"}).raise_for_status()
        warm_get(b, server, warm)
        r = b.get(f"{path}?{API}")
        assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound"
        assert lane_of(server, r) == "general"

    # A token that the lane has seen, after it expires.
    token = signed_token(server_signing_key(server), server, exp=int(time.time()) + 3)
    with httpx.Client(base_url=server.endpoint, verify=server.tls, headers={"Authorization": f"Bearer {token}"}) as t:
        warm_get(t, server, f"{path}?{API}")
        time.sleep(max(0.0, 3.5 - (time.time() % 1)))
        deadline = time.time() + 10
        while (r := t.get(f"{path}?{API}")).status_code == 200 and time.time() < deadline:
            time.sleep(0.2)
        assert r.status_code == 401 and error_of(r)["code"] == "ExpiredAuthenticationToken"


def test_no_fast_lane_flag(tmp_path: Path) -> None:
    srv = AltoServer(tmp_path / "data", extra_args=("--no-fast-lane",)).start()
    try:
        path = group_path(srv, "plain")
        with srv.client() as c:
            c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
            for _ in range(3):
                r = c.get(f"{path}?{API}")
                assert r.status_code == 200 and lane_of(srv, r) == "general"
    finally:
        srv.close()


def test_change_stamp_moves_with_every_commit(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    watcher = sqlite3.connect(db)
    watcher.execute("PRAGMA journal_mode=WAL")
    watcher.execute("CREATE TABLE t (v INTEGER)")
    watcher.commit()
    changes = ChangeStamp(db)
    assert changes.available
    writer = sqlite3.connect(db, isolation_level=None)
    seen = {changes.stamp()}
    try:
        for i in range(200):
            before = changes.stamp()
            watcher.execute("SELECT count(*) FROM t").fetchone()
            assert changes.stamp() == before, "a read is not a change"
            writer.execute("INSERT INTO t VALUES (?)", (i,))
            assert changes.stamp() != before, i
            seen.add(changes.stamp())
            if i % 50 == 49:  # the WAL restarts from its beginning: the stamp must still differ
                writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                seen.add(changes.stamp())
        assert len(seen) >= 201
    finally:
        writer.close()
        watcher.close()


def test_change_stamp_without_wal(tmp_path: Path) -> None:
    assert not ChangeStamp(tmp_path / "none.db").available
    assert ChangeStamp(tmp_path / "none.db").stamp() is None


def test_request_ids_are_version_4_guids() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in list(ids)[:500]:
        u = uuid.UUID(value)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == value


def test_sdk_reads_through_the_lane(server: AltoServer) -> None:
    """The official SDK's get() after create_or_update() is answered by the lane with what the SDK expects."""
    from azure.mgmt.resource import ResourceManagementClient
    from azure.profiles import KnownProfiles

    from tests.support.sdk import sdk_credential, sdk_kwargs

    sub = server.credentials["tenant"]["subscriptionId"]
    client = ResourceManagementClient(
        sdk_credential(server), sub, profile=KnownProfiles.v2020_09_01_hybrid, **sdk_kwargs(server)
    )
    name = unique("sdk")
    client.resource_groups.create_or_update(name, {"location": "local", "tags": {"a": "b"}})
    request_ids = []

    def hook(response: Any) -> None:
        request_ids.append(response.http_response.headers["x-ms-request-id"])

    for _ in range(4):
        got = client.resource_groups.get(name, raw_response_hook=hook)
        assert got.name == name and got.tags == {"a": "b"} and got.properties.provisioning_state == "Succeeded"
    deadline = time.time() + 2  # access-log lines are written in batches, at most 0.1 s late
    while not all(i in lanes(server) for i in request_ids) and time.time() < deadline:
        time.sleep(0.02)
    log = lanes(server)
    assert "fast" in {log.get(i) for i in request_ids}
