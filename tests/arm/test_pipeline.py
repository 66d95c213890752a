"""The one request pipeline (arm/pipeline.py) against a live server: hot reads stay fresh and keep every check,
whatever the pipeline decides from its caches, and its security rules are code that ``python -O`` keeps."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from altostratus.arm.auth import TokenService, new_signing_key
from altostratus.arm.caller import Caller
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.subscription_cache import SubscriptionCache
from tests.support.arm import error_of, make_tenant, server_signing_key, signed_token
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

API = "api-version=2019-10-01"


def logged(server: AltoServer) -> dict[str, dict[str, Any]]:
    """requestId -> access-log entry."""
    out = {}
    for line in server.log_path.read_text().splitlines():
        if "altostratus.access " in line:
            entry = json.loads(line.split("altostratus.access ", 1)[1])
            out[entry["requestId"]] = entry
    return out


def group_path(server: AltoServer, name: str, sub: str | None = None) -> str:
    return f"/subscriptions/{sub or server.credentials['tenant']['subscriptionId']}/resourcegroups/{name}"


def warm_get(c: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    """A few GETs, so that the token, principal and subscription are in the pipeline's caches."""
    for _ in range(3):
        r = c.get(url, **kw)
        assert r.status_code == 200, r.text
    return r


def test_request_and_correlation_ids(server: AltoServer) -> None:
    name = unique("Ids(1)")
    path = group_path(server, name)
    with server.client() as c:
        body = {"location": "local", "tags": {"env": "prod", "ünï": "cödé"}, "managedBy": "/subscriptions/x/y"}
        c.put(f"{path}?{API}", json=body).raise_for_status()
        ids = {"x-ms-client-request-id": "client-1", "x-ms-correlation-request-id": "corr-1"}
        r = warm_get(c, f"{path}?{API}", headers=ids)
        assert r.json()["tags"] == body["tags"] and r.json()["managedBy"] == body["managedBy"]
        assert r.headers["x-ms-client-request-id"] == "client-1"
        assert r.headers["x-ms-correlation-request-id"] == "corr-1"
        assert uuid.UUID(r.headers["x-ms-request-id"]).version == 4
        # Without a correlation id, the request id stands in for it.
        r = c.get(f"{path}?{API}")
        assert r.headers["x-ms-correlation-request-id"] == r.headers["x-ms-request-id"]
        assert "x-ms-client-request-id" not in r.headers

        # Other casings of the path and of the api-version name answer with the canonical id.
        odd = f"/SUBSCRIPTIONS/{server.credentials['tenant']['subscriptionId'].upper()}/resourceGroups/{name.upper()}"
        r = c.get(f"{odd}?API-VERSION=2019-10-01")
        assert r.status_code == 200 and r.json()["name"] == name
        assert (
            r.json()["id"] == f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourceGroups/{name}"
        )


def test_every_commit_is_seen_at_once(server: AltoServer) -> None:
    path = group_path(server, unique("fresh"))
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, f"{path}?{API}")
        for i in range(30):
            patched = c.patch(f"{path}?{API}", json={"tags": {"i": str(i)}})
            patched.raise_for_status()
            r = c.get(f"{path}?{API}")
            assert r.status_code == 200 and r.json()["tags"] == {"i": str(i)}, (i, r.text)
            assert r.headers["etag"] == patched.headers["etag"]
            listed = c.get(f"{group_path(server, '')}?{API}&$top=1000").json()["value"]
            assert [g["tags"] for g in listed if g["name"] == r.json()["name"]] == [{"i": str(i)}]
        assert c.delete(f"{path}?{API}").status_code in (200, 202)
        deadline = time.time() + 30
        while (r := c.get(f"{path}?{API}")).status_code == 200 and time.time() < deadline:
            time.sleep(0.1)
        assert r.status_code == 404 and error_of(r)["code"] == "ResourceGroupNotFound"


def test_a_lookup_older_than_a_forget_is_not_remembered() -> None:
    """A deletion's forget, after its commit, wins over a concurrent lookup that read an older snapshot."""
    tokens = TokenService(new_signing_key(), "tenant")
    epoch = tokens.epoch
    tokens.forget_client("c1")  # the deletion commits and forgets while a request is between snapshot and store
    tokens.check_principal_active("c1", lambda _cid: "tenant", epoch)  # that request's (old) lookup
    assert not tokens.principal_recently_active("c1")
    tokens.check_principal_active("c1", lambda _cid: "tenant", tokens.epoch)
    assert tokens.principal_recently_active("c1")

    class Sub:
        owner_client_id = "old-owner"
        state = "Enabled"

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


def test_checks_decided_from_caches_still_refuse(server: AltoServer) -> None:
    path = group_path(server, unique("guarded"))
    with server.client() as c:
        c.put(f"{path}?{API}", json={"location": "local"}).raise_for_status()
        warm_get(c, f"{path}?{API}")
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
        warm_get(b, warm)
        r = b.get(f"{path}?{API}")
        assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound"

    # A token the pipeline has cached, after it expires.
    token = signed_token(server_signing_key(server), server, exp=int(time.time()) + 3)
    with httpx.Client(base_url=server.endpoint, verify=server.tls, headers={"Authorization": f"Bearer {token}"}) as t:
        warm_get(t, f"{path}?{API}")
        time.sleep(max(0.0, 3.5 - (time.time() % 1)))
        deadline = time.time() + 10
        while (r := t.get(f"{path}?{API}")).status_code == 200 and time.time() < deadline:
            time.sleep(0.2)
        assert r.status_code == 401 and error_of(r)["code"] == "ExpiredAuthenticationToken"


def test_request_ids_are_version_4_guids() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in list(ids)[:500]:
        u = uuid.UUID(value)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == value


def test_sdk_reads_through_the_pipeline(server: AltoServer, sdk: SdkLine) -> None:
    """The official SDK's get() after create_or_update(): what the SDK expects, each read in the access log."""
    client = sdk.resource(server)
    name = unique("sdk")
    client.resource_groups.create_or_update(name, {"location": "local", "tags": {"a": "b"}})
    request_ids = []

    def hook(response: Any) -> None:
        request_ids.append(response.http_response.headers["x-ms-request-id"])

    for _ in range(4):
        got = client.resource_groups.get(name, raw_response_hook=hook)
        assert got.name == name and got.tags == {"a": "b"} and got.properties.provisioning_state == "Succeeded"
    deadline = time.time() + 2  # access-log lines are written in batches, at most 0.1 s late
    while not all(i in logged(server) for i in request_ids) and time.time() < deadline:
        time.sleep(0.02)
    log = logged(server)
    client_id = server.credentials["tenant"]["clientId"]
    assert [(log[i]["status"], log[i]["method"], log[i]["client"]) for i in request_ids] == [
        (200, "GET", client_id)
    ] * 4


def test_security_rules_survive_python_optimize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``python -O`` (asserts stripped) tenants are still refused admin APIs and others' subscriptions."""
    monkeypatch.setenv("PYTHONOPTIMIZE", "1")
    srv = AltoServer(tmp_path / "data").start()
    try:
        operator_sub = srv.credentials["operator"]["subscriptionId"]
        with srv.client() as c:
            r = c.get(
                f"/subscriptions/{operator_sub}/providers/Altostratus.Identity.Admin/principals?api-version=2024-01-01"
            )
            assert r.status_code == 403 and error_of(r)["code"] == "AuthorizationFailed"
            for _ in range(3):  # also once the caller is in every cache
                r = c.get(f"{group_path(srv, 'any', operator_sub)}?{API}")
                assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound"
                c.get(f"{group_path(srv, 'any')}?{API}")
    finally:
        srv.close()


def test_commits_bump_the_versions_of_the_tables_they_wrote(tmp_path: Path) -> None:
    """What the answer cache relies on: a unit of work's writes bump their tables only once committed, and the
    tables a read names are recorded (raw SQL counts as every table)."""
    from sqlalchemy import select, text, update

    from altostratus.store.db import ALL_TABLES, Database
    from altostratus.store.models import ResourceGroup, Subscription

    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    db.migrate()
    try:
        groups, subs = ("resource_groups",), ("subscriptions",)
        before = db.versions.snapshot(groups), db.versions.snapshot(subs)
        with db.session() as s:
            s.execute(update(ResourceGroup).where(ResourceGroup.name_key == "none").values(managed_by="x"))
            assert db.versions.snapshot(groups) == before[0], "not before the commit"
        assert db.versions.snapshot(groups) != before[0] and db.versions.snapshot(subs) == before[1]

        with pytest.raises(RuntimeError), db.session() as s:
            s.execute(update(Subscription).values(state="Warned"))
            raise RuntimeError("rolled back")
        assert db.versions.snapshot(subs) == before[1], "a rollback changes nothing"

        with db.recording_reads() as read, db.session(readonly=True) as s:
            s.scalars(select(ResourceGroup).where(ResourceGroup.name_key == "x")).all()
        assert read == {"resource_groups"}
        with db.recording_reads() as read, db.session(readonly=True) as s:
            s.execute(text("SELECT count(*) FROM subscriptions")).one()
        assert read == {ALL_TABLES}
    finally:
        db.dispose()


def test_reused_answers_follow_every_kind_of_write(server: AltoServer) -> None:
    """A group list and GET stay current through PUT, PATCH and an operation's deletion (another thread)."""
    base = group_path(server, "")
    name = unique("reuse")
    with server.client() as c:

        def names() -> list[str]:
            r = c.get(f"{base}?{API}&$top=1000")
            assert r.status_code == 200
            return [g["name"] for g in r.json()["value"]]

        for _ in range(3):
            assert name not in names()
        c.put(f"{group_path(server, name)}?{API}", json={"location": "local"}).raise_for_status()
        assert name in names()
        r = c.delete(f"{group_path(server, name)}?{API}")
        assert r.status_code == 202
        status = r.headers["azure-asyncoperation"]
        seen = set()
        deadline = time.time() + 30
        while time.time() < deadline:
            s = c.get(status).json()["status"]
            seen.add(s)
            if s != "InProgress":
                break
        assert s == "Succeeded", seen
        assert name not in names()
        assert c.get(f"{group_path(server, name)}?{API}").status_code == 404
