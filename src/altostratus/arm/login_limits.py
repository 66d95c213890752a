"""Limits on the token endpoint, so password guessing cannot stall the server.

Checking a client secret costs one scrypt (tens to hundreds of milliseconds of CPU, by design). Unbounded,
a few clients sending wrong secrets kept every core and every request thread busy and took authenticated
latency from milliseconds to seconds (issue 12). Three bounds, in the order the token endpoint applies them:

* a verified-secret cache: a client that presents the secret it presented before gets its token without a
  hash and without touching the rate limits, so honest clients never queue behind guessers. The key binds
  the presented secret to the principal's *stored* hash, read from the database on every request, so a
  rotated secret (a new stored hash) or a deleted principal (no row) is never answered from the cache;
* token buckets per client id and per source address, charged for every attempt that needs a hash; an
  empty bucket is a ``429`` with ``Retry-After``, decided before any hashing;
* a small executor of its own for the hashes, with a bounded queue: hashing uses at most ``hash_workers``
  cores whatever the request pool does, and an attempt that would wait behind a full queue is a ``429``
  rather than a request thread parked on it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from altostratus.arm.auth import verify_secret

# Buckets and cached secrets are bounded so that random client ids and addresses cannot grow memory.
MAX_TRACKED = 4096


@dataclass(frozen=True)
class LoginLimitSettings:
    per_source_rate: float = 2.0  # hashed attempts per second, refilled continuously
    per_source_burst: int = 20
    per_client_rate: float = 1.0
    per_client_burst: int = 5
    hash_workers: int = 1
    hash_queue: int = 4  # attempts waiting for a hash worker beyond those hashing


class Throttled(Exception):
    """The attempt was refused before hashing; ``retry_after`` is in whole seconds, as the header wants."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class TokenBuckets:
    """One token bucket per key (an address, a client id), least recently used dropped past ``MAX_TRACKED``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Takes one token; returns 0 when taken, else the seconds until one will be there (nothing taken)."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 3600.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
            return wait

    def wait(self, key: str) -> float:
        """What :meth:`take` would answer, without taking: 0 when a token is there."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                return 0.0
            return (1.0 - tokens) / self.rate if self.rate > 0 else 3600.0

    def give_back(self, key: str) -> None:
        """Returns a token taken for an attempt that was then refused for another reason (so it cost nothing)."""
        with self._lock:
            if key in self._buckets:
                tokens, at = self._buckets[key]
                self._buckets[key] = (min(self.burst, tokens + 1.0), at)


class VerifiedSecrets:
    """Secrets already checked against a stored hash, kept as keyed digests (never the secret itself)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)  # per process: the digests are useless outside it
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        # Without the stored hash (which needs the database): only a hint that lets a request past the
        # event-loop precheck; the handler still decides with the stored hash.
        self._hints: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, client_id: str, stored_hash: str, secret: str) -> bytes:
        message = "\0".join((client_id, stored_hash, secret)).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, client_id: str, stored_hash: str, secret: str) -> bool:
        digest = self._digest(client_id, stored_hash, secret)
        with self._lock:
            if digest in self._seen:
                self._seen.move_to_end(digest)
                return True
            return False

    def maybe_known(self, client_id: str, secret: str) -> bool:
        with self._lock:
            return self._digest(client_id, "", secret) in self._hints

    def remember(self, client_id: str, stored_hash: str, secret: str) -> None:
        digest, hint = self._digest(client_id, stored_hash, secret), self._digest(client_id, "", secret)
        with self._lock:
            self._seen[digest] = None
            self._hints[hint] = None
            for kept in (self._seen, self._hints):
                while len(kept) > MAX_TRACKED:
                    kept.popitem(last=False)


class LoginLimits:
    """The token endpoint's gate: :meth:`check_secret` answers, throttles (:class:`Throttled`) or hashes."""

    def __init__(self, settings: LoginLimitSettings | None = None) -> None:
        self.settings = settings = settings or LoginLimitSettings()
        self.sources = TokenBuckets(settings.per_source_rate, settings.per_source_burst)
        self.clients = TokenBuckets(settings.per_client_rate, settings.per_client_burst)
        self.verified = VerifiedSecrets()
        self._hashers = ThreadPoolExecutor(max(1, settings.hash_workers), thread_name_prefix="secret-hash")
        self._slots = threading.BoundedSemaphore(max(1, settings.hash_workers) + max(0, settings.hash_queue))

    def precheck(self, source: str | None, client_id: str, secret: str) -> int | None:
        """Seconds to wait when this attempt would be throttled, decided without a thread or the database
        (the event loop answers a flood's 429s); None lets it on to :meth:`check_secret`, which decides."""
        if self.verified.maybe_known(client_id, secret):
            return None
        wait = max(self.sources.wait(source or "unknown"), self.clients.wait(client_id))
        return math.ceil(wait) if wait else None

    def check_secret(
        self,
        source: str | None,
        client_id: str,
        stored_hash: str | None,
        secret: str,
        verify: Callable[[str, str], bool] = verify_secret,
    ) -> bool:
        """Whether ``secret`` is the secret of ``client_id`` (``stored_hash`` None: no such principal).

        Unknown client ids are charged like known ones, so guessing ids is throttled the same way. ``verify``
        checks a secret against its stored hash (users' passwords have their own, arm/user_auth.py).
        """
        if stored_hash is not None and self.verified.known(client_id, stored_hash, secret):
            return True
        self._charge(source or "unknown", client_id)
        if stored_hash is None:
            return False
        if not self._slots.acquire(blocking=False):
            raise Throttled(1)
        try:
            ok = self._hashers.submit(verify, secret, stored_hash).result()
        finally:
            self._slots.release()
        if ok:
            self.verified.remember(client_id, stored_hash, secret)
        return ok

    def hash_off_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs a hash (a new password's) on the hash workers, so it never takes more cores than sign-ins may."""
        return self._hashers.submit(fn, *args).result()

    def _charge(self, source: str, client_id: str) -> None:
        wait = self.sources.take(source)
        if wait:
            raise Throttled(math.ceil(wait))
        wait = self.clients.take(client_id)
        if wait:
            self.sources.give_back(source)
            raise Throttled(math.ceil(wait))

    def close(self) -> None:
        self._hashers.shutdown(wait=False, cancel_futures=True)
