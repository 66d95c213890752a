"""Tokens and secrets of the local directory.

Tokens are RS256 JWTs signed with a key stored in the database, so every node sharing a database (the
PostgreSQL multi-node setup) issues and accepts the same tokens. Verified tokens are cached until they
expire: signature checks would otherwise dominate the cost of a small GET.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from altostratus.arm.caller import Caller
from altostratus.arm.errors import ArmError

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
DEFAULT_TOKEN_LIFETIME = 3600
PRINCIPAL_RECHECK_SECONDS = 5.0


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt_b64), dklen=32, **SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_signing_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _unauthorized(code: str, message: str) -> ArmError:
    return ArmError(401, code, message)


class TokenService:
    def __init__(self, signing_key_pem: str, tenant_id: str, lifetime: int = DEFAULT_TOKEN_LIFETIME) -> None:
        private = serialization.load_pem_private_key(signing_key_pem.encode(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise TypeError("the signing key must be RSA")
        self._private = private
        self._public = private.public_key()
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        self.kid = hashlib.sha256(
            self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest()[:16]
        self._cache: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._principals: dict[str, float] = {}
        # Bumped by every forget_client: a directory lookup that began before a forget must not be remembered.
        self.epoch = 0
        self._lock = threading.Lock()

    def issuer(self, base_url: str) -> str:
        return f"{base_url}/{self.tenant_id}/v2.0"

    def issue(self, client_id: str, role: str, audience: str, issuer: str) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "appid": client_id,
            "oid": client_id,
            "sub": client_id,
            "tid": self.tenant_id,
            "roles": [role],
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
        return token, self.lifetime

    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def verify_header(self, authorization: str | None) -> Caller:
        if not authorization:
            raise _unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized(
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        return self.verify(token.strip())

    def cached(self, token: str) -> Caller | None:
        """The caller of a token verified earlier and not expired yet; None otherwise (verify it then)."""
        hit = self._cache.get(token)  # one dict read: atomic, no lock needed
        if hit is not None and hit[1] > time.time():
            return hit[0]
        return None

    def verify(self, token: str) -> Caller:
        caller = self.cached(token)
        if caller is not None:
            return caller
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "appid", "tid", "roles"]},
            )
        except jwt.ExpiredSignatureError:
            exp_claim = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            raise _unauthorized(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{datetime.fromtimestamp(exp_claim, UTC):%m/%d/%Y %H:%M:%S}' "
                f"is earlier than current UTC time '{datetime.now(UTC):%m/%d/%Y %H:%M:%S}'.",
            ) from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("InvalidAuthenticationToken", "The access token has an invalid signature.") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized("InvalidAuthenticationToken", f"The access token is invalid: {exc}.") from None
        if claims["tid"] != self.tenant_id:
            raise _unauthorized(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'.",
            )
        roles = claims["roles"]
        role = "operator" if "operator" in roles else "tenant"
        caller = Caller(client_id=claims["appid"], role=role, tenant_id=claims["tid"])
        with self._lock:
            self._cache[token] = (caller, float(claims["exp"]))
            if len(self._cache) > 10_000:
                self._cache.popitem(last=False)
        return caller

    def principal_recently_active(self, client_id: str) -> bool:
        """Whether the principal was found in the directory within the recheck window (no lookup is made)."""
        checked = self._principals.get(client_id)
        return checked is not None and time.monotonic() - checked < PRINCIPAL_RECHECK_SECONDS

    def check_principal_active(self, client_id: str, exists: Callable[[str], bool], epoch: int) -> None:
        """A token outlives nothing: a deleted principal's tokens stop working. The directory lookup is
        remembered for a few seconds per process, so other nodes notice a deletion within that time.

        ``epoch`` is :attr:`epoch` as read before the caller's transaction took its snapshot: if a principal
        was forgotten since, the lookup may predate the deletion and is used for this request only."""
        if self.principal_recently_active(client_id):
            return
        now = time.monotonic()
        if not exists(client_id):
            raise _unauthorized("InvalidAuthenticationToken", "The principal of the access token no longer exists.")
        with self._lock:
            if self.epoch == epoch:
                self._principals[client_id] = now

    def forget_client(self, client_id: str) -> None:
        """Drop cached tokens of a principal, once its deletion has committed."""
        with self._lock:
            self.epoch += 1
            for token in [t for t, (c, _) in self._cache.items() if c.client_id == client_id]:
                del self._cache[token]
            self._principals.pop(client_id, None)
