"""The subscription check every subscription-scoped request makes, with a short cache."""

from __future__ import annotations

import re
import threading
import time

from sqlalchemy.orm import Session

from altostratus.arm.caller import Caller
from altostratus.arm.errors import ArmError, subscription_not_found
from altostratus.store.models import Subscription

SUB_ID = re.compile(r"^[0-9a-fA-F-]{36}\Z")


def visible(caller: Caller, sub: Subscription) -> bool:
    """Tenants see only subscriptions they own and that are not Deleted; the operator sees every one."""
    return caller.is_operator or (sub.owner_client_id == caller.client_id and sub.state != "Deleted")


class SubscriptionCache:
    """Subscription owner and state, remembered for a few seconds: looked up on every request otherwise.

    Admin writes to a subscription forget it on this node once they commit; other nodes see the change
    within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Subscription]] = {}
        # Bumped by every forget: a lookup from a snapshot older than a forget must not be remembered.
        self.epoch = 0
        self._lock = threading.Lock()

    def check(self, db: Session, caller: Caller, subscription_id: str, epoch: int) -> Subscription:
        """Tenants see only subscriptions they own; anything else looks like it does not exist.

        ``epoch`` is :attr:`epoch` as read before ``db``'s transaction took its snapshot."""
        sub = self.lookup(db, subscription_id, epoch)
        if not visible(caller, sub):
            raise subscription_not_found(subscription_id)
        return sub

    def lookup(self, db: Session, subscription_id: str, epoch: int) -> Subscription:
        """The subscription, whoever asks (its owner, or someone with a role in it: arm/access.py decides)."""
        if not SUB_ID.match(subscription_id):
            raise ArmError(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
            )
        key = subscription_id.lower()
        sub = self.cached(key)
        if sub is None:
            sub = db.get(Subscription, key)
            if sub is not None:
                db.expunge(sub)
                with self._lock:
                    if self.epoch == epoch:
                        self._entries[key] = (time.monotonic(), sub)
        if sub is None:
            raise subscription_not_found(subscription_id)
        return sub

    def cached(self, subscription_id: str) -> Subscription | None:
        """The subscription if it was looked up within ``ttl`` seconds; None means "look it up"."""
        hit = self._entries.get(subscription_id.lower())  # one dict read: atomic, no lock needed
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def forget(self, subscription_id: str) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.pop(subscription_id.lower(), None)
