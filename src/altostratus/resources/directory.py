"""The local directory: principals and the subscriptions they own (used by bootstrap and admin APIs).

A new subscription is registered to the services of its offer's base plans (``resources/tenancy.py``)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from altostratus.arm.auth import hash_secret, new_secret
from altostratus.resources.tenancy import DEFAULT_OFFER, register_plan_services
from altostratus.store.db import utcnow
from altostratus.store.models import Principal, Subscription, User


def create_principal(db: Session, display_name: str, role: str, client_id: str | None = None) -> tuple[Principal, str]:
    """Returns the principal and its secret (the only time the secret exists in clear)."""
    secret = new_secret()
    principal = Principal(
        client_id=(client_id or str(uuid.uuid4())).lower(),
        display_name=display_name,
        role=role,
        secret_hash=hash_secret(secret),
        created_at=utcnow(),
    )
    db.add(principal)
    db.flush()
    return principal, secret


def create_subscription(
    db: Session,
    owner_client_id: str,
    display_name: str,
    offer_id: str | None = None,
    subscription_id: str | None = None,
) -> Subscription:
    sub = Subscription(
        subscription_id=(subscription_id or str(uuid.uuid4())).lower(),
        display_name=display_name,
        state="Enabled",
        owner_client_id=owner_client_id,
        offer_id=offer_id or DEFAULT_OFFER,
        created_at=utcnow(),
    )
    db.add(sub)
    db.flush()
    register_plan_services(db, sub.subscription_id)
    return sub


def create_user(
    db: Session, name: str, password_hash: str, role: str, client_id: str | None = None
) -> tuple[User, Principal]:
    """A person of the directory; ``client_id`` links an existing principal (the first start's operator and
    tenant), else a new principal is made for them, whose client secret nobody ever learns (people sign in with
    their password, not as a client)."""
    principal = db.get(Principal, client_id) if client_id else None
    if principal is None:
        principal, _ = create_principal(db, name, role, client_id)
    now = utcnow()
    user = User(
        client_id=principal.client_id,
        name=name,
        name_key=name.lower(),
        password_hash=password_hash,
        enabled=True,
        created_at=now,
        password_changed_at=now,
    )
    db.add(user)
    db.flush()
    return user, principal
