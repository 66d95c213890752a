"""Role-based access inside a subscription: Azure's built-in Owner, Contributor and Reader, checked on every request.

A subscription's owner (``subscriptions.owner_client_id``) is its Owner everywhere in it, with no assignment row:
the common request never reaches this module. Anyone else needs a role assignment (``role_assignments``) at a
scope that covers the request's path: the subscription, a resource group or a resource. Reader reads; Contributor
also writes, except role assignments; Owner does everything. A principal with no role anywhere in a subscription
is told it does not exist (as before); one with a role that does not cover the request gets ARM's 403
``AuthorizationFailed`` naming the action and the scope.

Reads a delegated principal needs whatever its scope (the subscription itself, its providers and locations, the
status of an operation it started) are allowed to any role holder in the subscription.

Assignments are looked up per (principal, subscription) and kept for a few seconds (:class:`AccessCache`), like
principals and subscriptions; a write to role assignments forgets them all on this node once it commits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.caller import Caller
from altostratus.arm.errors import authorization_failed, subscription_not_found
from altostratus.arm.subscription_cache import visible
from altostratus.store.models import RoleAssignment, Subscription

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
# Azure's built-in role ids, their names and what each may do (in this order of rank).
ROLES = {READER: ("Reader", 1), CONTRIBUTOR: ("Contributor", 2), OWNER: ("Owner", 3)}
RANK_READ, RANK_WRITE, RANK_AUTHORIZATION_WRITE = 1, 2, 3
AUTHORIZATION_NS = "microsoft.authorization"


class AccessCache:
    """Each principal's role assignments in a subscription, as ``(scope_key, rank)``, kept ``ttl`` seconds."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, tuple[tuple[str, int], ...]]] = {}
        self.epoch = 0  # bumped by every forget: a lookup from an older snapshot is not remembered
        self._lock = threading.Lock()

    def grants(self, db: Session, principal: str, subscription_id: str, epoch: int) -> tuple[tuple[str, int], ...]:
        key = (principal, subscription_id)
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        rows = db.execute(
            select(RoleAssignment.scope_key, RoleAssignment.role_definition).where(
                RoleAssignment.principal_id == principal, RoleAssignment.subscription_id == subscription_id
            )
        ).all()
        found = tuple((scope, ROLES[role][1]) for scope, role in rows if role in ROLES)
        with self._lock:
            if self.epoch == epoch:
                self._entries[key] = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.clear()


def required_rank(method: str, lowered: list[str]) -> int:
    if method in ("GET", "HEAD"):
        return RANK_READ
    providers = [i for i, s in enumerate(lowered) if s == "providers"]
    if providers and providers[-1] + 1 < len(lowered) and lowered[providers[-1] + 1] == AUTHORIZATION_NS:
        return RANK_AUTHORIZATION_WRITE
    return RANK_WRITE


def subscription_wide_read(lowered: list[str]) -> bool:
    """``/subscriptions/{s}``, its providers and locations, and operation statuses: what any role holder reads."""
    rest = lowered[2:]
    if len(rest) <= 2 and (not rest or rest[0] in ("providers", "locations")):
        return True
    if rest == ["resourcegroups"]:  # the list answers only the groups the caller may read (readable_paths)
        return True
    # /providers/{ns}/locations/{l}/operations|operationResults/{id}
    return (
        len(rest) == 6
        and rest[0] == "providers"
        and rest[2] == "locations"
        and rest[4]
        in (
            "operations",
            "operationresults",
        )
    )


def action_of(method: str, lowered: list[str]) -> str:
    """ARM's action name for the 403 message, e.g. ``Microsoft.Compute/virtualMachineScaleSets/write``."""
    verb = {"GET": "read", "HEAD": "read", "DELETE": "delete", "POST": "action"}.get(method, "write")
    providers = [i for i, s in enumerate(lowered) if s == "providers"]
    if providers and providers[-1] + 2 < len(lowered):
        i = providers[-1]
        return "/".join([lowered[i + 1], *lowered[i + 2 :: 2], verb])
    if len(lowered) > 2 and lowered[2] == "resourcegroups":
        return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}"
    return f"Microsoft.Resources/subscriptions/{verb}"


def covered(grants: tuple[tuple[str, int], ...], path: str, need: int = RANK_READ) -> bool:
    """Whether a grant of rank ``need`` or more has a scope at or above ``path``."""
    low = path.lower()
    return any(rank >= need and (low == scope or low.startswith(scope + "/")) for scope, rank in grants)


def readable_paths(db: Session, access: AccessCache, caller: Caller, sub: Subscription) -> Callable[[str], bool] | None:
    """For a subscription-wide list: a test of which items' paths the caller may read, or None when it may read
    them all (the operator, the owner)."""
    if visible(caller, sub):
        return None
    grants = access.grants(db, caller.client_id, sub.subscription_id, access.epoch)
    return lambda path: covered(grants, path)


def authorize(
    db: Session, access: AccessCache, caller: Caller, sub: Subscription, method: str, segments: list[str], epoch: int
) -> None:
    """For a tenant that does not own ``sub``: passes, or raises SubscriptionNotFound (no role in it, or it is
    Deleted) or AuthorizationFailed (no role covering this request)."""
    grants = access.grants(db, caller.client_id, sub.subscription_id, epoch)
    if not grants or sub.state == "Deleted":
        raise subscription_not_found(sub.subscription_id)
    lowered = [s.lower() for s in segments]
    path = "/" + "/".join(lowered)
    need = required_rank(method, lowered)
    if covered(grants, path, need) or (need == RANK_READ and subscription_wide_read(lowered)):
        return
    raise authorization_failed(caller.client_id, action_of(method, lowered), "/" + "/".join(segments))
