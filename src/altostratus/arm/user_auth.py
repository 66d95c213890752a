"""People's passwords and the password grant's one decision: is this the user's password?

Why here (in the pipeline's package) and not next to the directory's admin API: the token endpoint
(arm/oauth.py, and the AD FS-style endpoints the real ``az login -u`` talks to) must call it, and ``arm/``
imports no provider. :func:`authenticate_user` is the one function every sign-in goes through.

Passwords are hashed with scrypt at twice the memory and work of client secrets (N=2**15, r=8, p=1: 32 MiB,
about 0.1 s of one core): people choose guessable passwords, machines get 256 random bits. Checks run on the
login limits' own hash workers behind the same token buckets as client secrets (arm/login_limits.py), keyed by
the lower-cased user name, so guessing passwords cannot starve the request threads either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.login_limits import LoginLimits
from altostratus.store.models import Principal, User

PASSWORD_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024  # scrypt needs 128 * N * r bytes (32 MiB); OpenSSL's default cap is exactly that
PASSWORD_MIN, PASSWORD_MAX = 8, 256


def hash_password(password: str) -> str:
    """``scrypt-pw$N$r$p$salt$digest``: the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    p = PASSWORD_SCRYPT
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=_MAXMEM, **p)
    b64 = base64.b64encode
    return f"scrypt-pw${p['n']}${p['r']}${p['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt-pw":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM)
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


def new_password() -> str:
    """A generated password (first start): 24 characters, 144 random bits, no characters shells or forms mangle."""
    return secrets.token_urlsafe(18)


def password_problem(password: object) -> str | None:
    """Why a new password is refused, or None (length only: long passphrases beat composition rules)."""
    if not isinstance(password, str):
        return "The password must be a string."
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"The password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    return None


@dataclass(frozen=True)
class SignedInUser:
    """Who a password sign-in names: the user's name for the token's ``upn`` and the principal it acts as."""

    name: str
    client_id: str
    role: str


def user_limit_key(name: str) -> str:
    """The login limits' key of a user name (apart from client ids, which are GUIDs)."""
    return "user:" + name.lower()


def authenticate_user(
    db: Session, logins: LoginLimits, source: str | None, name: str, password: str
) -> SignedInUser | None:
    """The user ``name`` when ``password`` is theirs and they are enabled; None otherwise (unknown names are
    charged like known ones). Raises :class:`~altostratus.arm.login_limits.Throttled` past the limits."""
    user = db.scalar(select(User).where(User.name_key == name.lower()))
    stored = user.password_hash if user is not None else None
    ok = logins.check_secret(source, user_limit_key(name), stored, password, verify=verify_password)
    if user is None or not ok or not user.enabled:
        return None
    principal = db.get(Principal, user.client_id)
    if principal is None:
        return None
    return SignedInUser(user.name, principal.client_id, principal.role)
