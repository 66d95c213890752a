"""People of the local directory: the first start's two users, the admin users API, the password grant, the CLI.

Every check goes over HTTPS against a running server, as the portal, MSAL's password flow and `alto` reach it."""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any

import httpx
import jwt

from tests.support.arm import error_of
from tests.support.server import ALTO, AltoServer

USERS_API = "api-version=2024-01-01"


def _users(server: AltoServer) -> str:
    op_sub = server.credentials["operator"]["subscriptionId"]
    return f"/subscriptions/{op_sub}/providers/Altostratus.Identity.Admin/users"


def password_token(server: AltoServer, name: str, password: str) -> httpx.Response:
    """The password grant as MSAL's resource-owner flow sends it (a public client id, v2 scope)."""
    return httpx.post(
        server.credentials["tokenEndpoint"],
        data={
            "grant_type": "password",
            "client_id": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "username": name,
            "password": password,
            "scope": f"{server.endpoint}/.default",
        },
        verify=server.tls,
    )


def _bearer(server: AltoServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.endpoint, verify=server.tls, headers={"Authorization": f"Bearer {token}"})


def test_first_start_writes_two_users_who_sign_in_as_the_operator_and_the_default_tenant(server: AltoServer) -> None:
    creds = server.credentials
    assert set(creds["users"]) == {"operator", "tenant"}
    r = password_token(server, creds["users"]["tenant"]["name"], creds["users"]["tenant"]["password"])
    assert r.status_code == 200, r.text
    claims: dict[str, Any] = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["upn"] == claims["unique_name"] == "tenant"
    assert claims["oid"] == creds["tenant"]["clientId"]
    with _bearer(server, r.json()["access_token"]) as c:
        subs = c.get("/subscriptions?api-version=2016-06-01").json()["value"]
        assert [s["subscriptionId"] for s in subs] == [creds["tenant"]["subscriptionId"]], "the subscriptions it owns"
        assert c.get(f"{_users(server)}?{USERS_API}").status_code == 403, "a tenant user is not an operator"
    r = password_token(server, "OPERATOR", creds["users"]["operator"]["password"])
    assert r.status_code == 200, "user names are case-insensitive"
    with _bearer(server, r.json()["access_token"]) as op:
        names = [u["name"] for u in op.get(f"{_users(server)}?{USERS_API}").json()["value"]]
        assert {"operator", "tenant"} <= set(names)


def test_wrong_or_unknown_password_is_invalid_grant(server: AltoServer) -> None:
    for name, password in (("tenant", "not-the-password"), (f"nobody-{uuid.uuid4().hex[:6]}", "whatever-it-is")):
        r = password_token(server, name, password)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_create_change_password_disable_and_delete_a_user(server: AltoServer) -> None:
    name = f"ana-{uuid.uuid4().hex[:6]}"
    url = f"{_users(server)}/{name}?{USERS_API}"
    with server.client("operator") as op:
        r = op.put(url, json={"properties": {"password": "short"}})
        assert r.status_code == 400 and error_of(r)["target"] == "properties.password"
        assert op.get(url).status_code == 404, "nothing created by a refused request"
        r = op.put(url, json={"properties": {"password": "correct horse battery", "role": "tenant"}})
        assert r.status_code == 201, r.text
        assert "password" not in r.json()["properties"] and r.json()["properties"]["enabled"] is True
        object_id = r.json()["properties"]["objectId"]
        assert op.put(url, json={"properties": {"role": "operator"}}).status_code == 409, "a role never changes"

        token = password_token(server, name, "correct horse battery").json()["access_token"]
        with _bearer(server, token) as c:
            assert c.get("/subscriptions?api-version=2016-06-01").json()["value"] == [], "owns nothing yet"
            assert op.put(url, json={"properties": {"password": "a new long passphrase"}}).status_code == 200
            assert password_token(server, name, "correct horse battery").status_code == 400, "old password gone"
            assert password_token(server, name, "a new long passphrase").status_code == 200
            assert op.put(url, json={"properties": {"enabled": False}}).json()["properties"]["enabled"] is False
            assert password_token(server, name, "a new long passphrase").status_code == 400, "disabled: no sign-in"
            r = c.get("/subscriptions?api-version=2016-06-01")
            assert r.status_code == 401, "the tokens a disabled user holds stop working"
        op.put(url, json={"properties": {"enabled": True}}).raise_for_status()
        sub = str(uuid.uuid4())
        admin_sub = (
            f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/"
            f"Microsoft.Subscriptions.Admin/subscriptions/{sub}?api-version=2015-11-01"
        )
        op.put(admin_sub, json={"properties": {"displayName": "Ana's", "owner": object_id}}).raise_for_status()
        token = password_token(server, name, "a new long passphrase").json()["access_token"]
        with _bearer(server, token) as c:
            subs = c.get("/subscriptions?api-version=2016-06-01").json()["value"]
            assert [s["subscriptionId"] for s in subs] == [sub]
        assert op.delete(url).status_code == 409, "owns a subscription"
        op.delete(admin_sub).raise_for_status()
        assert op.delete(url).status_code == 200
        assert op.get(url).status_code == 404
        assert password_token(server, name, "a new long passphrase").status_code == 400


def test_bad_user_names_are_a_400_naming_the_field(server: AltoServer) -> None:
    with server.client("operator") as op:
        r = op.put(f"{_users(server)}/-bad%20name?{USERS_API}", json={"properties": {"password": "long enough"}})
        assert r.status_code == 400 and error_of(r)["target"] == "userName", r.text


def test_alto_admin_user_commands(server: AltoServer) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "COLUMNS": "200"}

    def alto(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        cmd = [ALTO, *args, "--data-dir", str(server.data_dir)]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    r = alto("admin", "user", "create", name, "--operator", "--password-stdin", stdin="a long password\n")
    assert r.returncode == 0, r.stderr
    assert name in r.stdout and "operator" in r.stdout
    assert password_token(server, name, "a long password").status_code == 200
    r = alto("admin", "user", "set-password", name, "--password-stdin", stdin="another long one\n")
    assert r.returncode == 0, r.stderr
    assert password_token(server, name, "another long one").status_code == 200
    assert alto("admin", "user", "disable", name).returncode == 0
    assert password_token(server, name, "another long one").status_code == 400
    r = alto("admin", "user", "list", "--output", "json")
    assert r.returncode == 0 and name in r.stdout
    assert alto("admin", "user", "delete", name, "--yes").returncode == 0
    r = alto("admin", "user", "create", name, "--password-stdin", stdin="short\n")
    assert r.returncode != 0 and "8 to 256" in (r.stdout + r.stderr)
