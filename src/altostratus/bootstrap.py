"""First start: the directory tenant, the token signing key, the operator and a default tenant.

Runs on every start but only creates what is missing, so it is safe with an existing database (and with
several nodes sharing one). ``credentials.json`` is the only place the generated secrets are written.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from altostratus.arm.auth import new_signing_key
from altostratus.config import Settings
from altostratus.resources.directory import create_principal, create_subscription
from altostratus.store.db import Database
from altostratus.store.models import Setting


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
        # Only once the transaction has committed: the file must never hold secrets the database lacks.
        write_credentials(settings, credentials)
    else:
        path = settings.data_dir / "credentials.json"
        if path.exists():
            # Endpoints may change between starts (--port, --host); keep the file pointing at this server.
            write_credentials(settings, json.loads(path.read_text()))
    signing_key, provider_sub_id = _get(db, "signing_key"), _get(db, "provider_subscription_id")
    assert signing_key is not None and provider_sub_id is not None
    return {"tenantId": tenant_id, "signingKey": signing_key, "providerSubscriptionId": provider_sub_id}


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
