"""Server-side portal sessions: the browser holds only a random id in an HttpOnly, Secure, SameSite cookie.

The session keeps the person's access token (never sent to the browser), their CSRF token and when they were
last seen. A session ends when it has been idle too long or a minute before its token expires, whichever is
first: the person signs in again and comes back to the page they were on. Sessions live in this process's
memory (bounded): a restart signs everyone out, which is the safe failure.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

COOKIE = "alto_session"
MAX_SESSIONS = 10_000
TOKEN_MARGIN_SECONDS = 60  # a token this close to expiry is not used for another page


@dataclass
class PortalSession:
    id: str
    user: str
    role: str  # what the token says; the API decides every request anyway
    token: str
    token_expires: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: list[str] = field(default_factory=list)
    home_subscription: str | None = None  # an operator's: the admin APIs are addressed through it

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


class SessionStore:
    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: OrderedDict[str, PortalSession] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, user: str, role: str, token: str, expires_in: float) -> PortalSession:
        now = time.time()
        session = PortalSession(secrets.token_urlsafe(32), user, role, token, now + expires_in, now)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> PortalSession | None:
        """The live session of that id (touched), or None when there is none or it has expired (then dropped)."""
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_seconds or now > session.token_expires - TOKEN_MARGIN_SECONDS:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            self._sessions.move_to_end(session_id)
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
