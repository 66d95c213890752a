"""First start: the directory tenant, the token signing key, the operator and a default tenant, and the two
people who sign in to the portals as them (users ``operator`` and ``tenant``, with generated passwords).

Runs on every start but only creates what is missing, so it is safe with an existing database (and with
several nodes sharing one). ``credentials.json`` is the only place the generated secrets are written.

The data dir holds the token signing key (in the SQLite database), the CA and server keys and the generated
secrets: :func:`make_data_dir_private` makes every one of them ``0600`` whatever it was before, and stops
``alto up`` before it reads or writes any of them when another local user can list the directory or could
already open one of those files. ``o+x`` alone on the directory is allowed (it lists nothing): data dirs made
when the libvirt driver let QEMU read blobs in place have it.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from altostratus.arm.auth import new_signing_key
from altostratus.arm.user_auth import hash_password, new_password
from altostratus.config import Settings
from altostratus.join import JoinError, fetch, fingerprint, parse_token
from altostratus.resources.directory import create_principal, create_subscription, create_user
from altostratus.store.db import Database, sqlite_files
from altostratus.store.models import Setting, User

SECRET_FILES = ("credentials.json", "ca-key.pem", "server-key.pem", "joined.json")


log = logging.getLogger("altostratus.bootstrap")


class SharedDataDir(Exception):
    """The data dir or a secret in it can be read (or changed) by other local users: ``alto up`` will not start."""


def _mode(path: Path) -> int:
    """The permission bits of ``path`` (0 when it is missing)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0


def make_data_dir_private(settings: Settings) -> None:
    """Makes each secret ``0600`` (the SQLite database and its side files included, wherever the URL puts them),
    or raises :class:`SharedDataDir`, naming each offending path and the ``chmod`` that fixes it, when others can
    list or write the data dir, or when a secret others can read sits in a directory they can traverse (it may
    have been read already: that is the operator's to judge, not ours to paper over)."""
    problems = []
    data_dir = settings.data_dir
    if (mode := _mode(data_dir)) & 0o066:
        problems.append(f"the data dir {data_dir} is mode {mode:o}: run  chmod 700 {data_dir}")
    secrets = [data_dir / name for name in SECRET_FILES] + sqlite_files(settings.resolved_database_url)
    exposed = [path for path in secrets if _mode(path) & 0o077]
    for path in exposed:
        if _mode(path.parent) & 0o011:
            problems.append(f"{path} is mode {_mode(path):o}: run  chmod 600 {path}")
    if problems:
        raise SharedDataDir(
            "Refusing to start: other local users can read the data dir or its secrets (the token signing key, "
            "the CA and server keys, the operator's credentials). Fix the permissions, and if others may already "
            "have read them, treat the keys and secrets as leaked.\n  " + "\n  ".join(problems)
        )
    for path in exposed:  # in a directory nobody else can enter: nobody else has read them
        log.warning("%s was mode %o: made it 600", path, _mode(path))
        path.chmod(0o600)


def _get(db: Database, key: str) -> str | None:
    with db.session() as s:
        row = s.get(Setting, key)
        return row.value if row else None


def ensure_installation(db: Database, settings: Settings) -> dict[str, str]:
    """Returns the installation settings (tenantId, signingKey), creating them and the default principals
    on the first start."""
    tenant_id = _get(db, "tenant_id")
    if tenant_id is None:
        with db.session() as s:
            tenant_id = str(uuid.uuid4())
            s.add(Setting(key="tenant_id", value=tenant_id))
            s.add(Setting(key="signing_key", value=new_signing_key()))
            operator, operator_secret = create_principal(s, "Operator", "operator")
            provider_sub = create_subscription(s, operator.client_id, "Default Provider Subscription")
            tenant, tenant_secret = create_principal(s, "Default tenant", "tenant")
            tenant_sub = create_subscription(s, tenant.client_id, "Default Tenant Subscription", "default-offer")
            s.add(Setting(key="provider_subscription_id", value=provider_sub.subscription_id))
            credentials = {
                "tenantId": tenant_id,
                "operator": {
                    "clientId": operator.client_id,
                    "clientSecret": operator_secret,
                    "subscriptionId": provider_sub.subscription_id,
                },
                "tenant": {
                    "clientId": tenant.client_id,
                    "clientSecret": tenant_secret,
                    "subscriptionId": tenant_sub.subscription_id,
                },
            }
            credentials["users"] = _first_users(s, operator.client_id, tenant.client_id)
        # Only once the transaction has committed: the file must never hold secrets the database lacks.
        write_credentials(settings, credentials)
    else:
        path = settings.data_dir / "credentials.json"
        if path.exists():
            # Endpoints may change between starts (--port, --host); keep the file pointing at this server.
            credentials = json.loads(path.read_text())
            if "users" not in credentials:  # an installation from before users existed: give it its two people
                with db.session() as s:
                    if s.query(User).first() is None:
                        ids = (credentials["operator"]["clientId"], credentials["tenant"]["clientId"])
                        credentials["users"] = _first_users(s, *ids)
            write_credentials(settings, credentials)
    signing_key, provider_sub_id = _get(db, "signing_key"), _get(db, "provider_subscription_id")
    assert signing_key is not None and provider_sub_id is not None
    return {"tenantId": tenant_id, "signingKey": signing_key, "providerSubscriptionId": provider_sub_id}


FIRST_USERS = {"operator": "operator", "tenant": "tenant"}  # credentials.json key -> user name


def _first_users(s: Any, operator_id: str, tenant_id: str) -> dict[str, dict[str, str]]:
    """The portal's first two people, signing in as the first operator and the default tenant (who owns the
    default tenant subscription): their names and generated passwords, for credentials.json."""
    users = {}
    for key, client_id in (("operator", operator_id), ("tenant", tenant_id)):
        password = new_password()
        create_user(s, FIRST_USERS[key], hash_password(password), key, client_id)
        users[key] = {"name": FIRST_USERS[key], "password": password}
    return users


def write_credentials(settings: Settings, data: dict[str, Any]) -> Path:
    arm = settings.arm_endpoint
    data = {
        **data,
        "armEndpoint": arm,
        "tokenEndpoint": f"{arm}/{data['tenantId']}/oauth2/v2.0/token",
        "authority": arm,
        "caFile": str((settings.data_dir / "ca.pem").resolve()),
        "location": settings.location,
    }
    path = settings.data_dir / "credentials.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


JOINED_FILE = "joined.json"  # a joined node's database URL, so a restart needs no token and no --database-url


def join_cloud(settings: Settings) -> str | None:
    """A further node's first start (`alto up --join-token`): fetch the cloud's CA, its key, the database URL and
    the operator's credentials from the running node the token names (altostratus/join.py), and keep them in
    this data dir; later starts find the database URL there. Returns a line for the operator, or None when there
    is nothing to do. Raises JoinError with a message that says what to do."""
    joined = settings.data_dir / JOINED_FILE
    ca_path, key_path = settings.data_dir / "ca.pem", settings.data_dir / "ca-key.pem"
    if settings.join_token is None:
        if settings.database_url is None and joined.exists():
            settings.database_url = json.loads(joined.read_text())["databaseUrl"]
        return None
    token = parse_token(settings.join_token, settings.join_url)
    if ca_path.exists() and fingerprint(ca_path.read_bytes()) != token.fingerprint:
        raise JoinError(
            f"{settings.data_dir} already belongs to another cloud (its CA is not the token's): "
            "join with an empty --data-dir."
        )
    if joined.exists() and ca_path.exists():  # joined before: the token was used then
        if settings.database_url is None:
            settings.database_url = json.loads(joined.read_text())["databaseUrl"]
        return f"already joined to the cloud of {token.url} (this data dir); the join token was not needed"
    answer = fetch(token)
    _write_private_file(ca_path, answer["caCertificate"].encode(), 0o644)
    _write_private_file(key_path, answer["caKey"].encode(), 0o600)
    if settings.database_url is None:
        settings.database_url = str(answer["databaseUrl"])
    _write_private_file(
        joined, json.dumps({"databaseUrl": settings.database_url, "joinedVia": token.url}).encode(), 0o600
    )
    if answer.get("credentials"):
        write_credentials(settings, answer["credentials"])
    return f"joined the cloud of {token.url}"


def _write_private_file(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
