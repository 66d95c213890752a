"""Tokens and secrets of the local directory.

Tokens are RS256 JWTs signed with a key stored in the database, so every node sharing a database (the
PostgreSQL multi-node setup) issues and accepts the same tokens. Verified tokens are cached until they
expire: signature checks would otherwise dominate the cost of a small GET.

A token says who the caller is, never what the caller may do: its ``roles`` claim is issued for clients that
read it but ignored here. The role comes from the principal's row in the directory, looked up at request time
and remembered for a few seconds (:meth:`TokenService.check_principal_active`), so a token that claims more
than its principal has, even one signed with our key, gains nothing.

A token is accepted only for this cloud's audience (:func:`audience_of`): the ARM endpoint, as credentials.json
and ``/metadata/endpoints`` publish it. Tokens for any other resource are neither issued nor accepted.
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


UNRESOLVED_ROLE = ""
"""The role of a caller known only from its token: no rights until the pipeline looks the principal up."""


def audience_of(resource: str) -> str:
    """The audience a resource URI or a ``<resource>/.default`` scope names, in the one form we compare:
    ``https://host:port``, ``https://host:port/`` and the ``https://host:port//.default`` that real CLIs send
    (the resource with its trailing slash, then ``/.default``) are the same audience."""
    return resource.removesuffix(".default").rstrip("/").lower()


def cloud_audiences(arm_endpoint: str, base_url: str) -> frozenset[str]:
    """This cloud's audiences: the ARM endpoint as credentials.json names it and as the request addressed it
    (what ``/metadata/endpoints`` publishes to that client), in :func:`audience_of`'s form."""
    return frozenset((audience_of(arm_endpoint), audience_of(base_url)))


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
        self._cache: OrderedDict[str, tuple[Caller, float, str]] = OrderedDict()
        # client id -> (role in the directory, when it was looked up)
        self._principals: dict[str, tuple[str, float]] = {}
        # Bumped by every forget_client: a directory lookup that began before a forget must not be remembered.
        self.epoch = 0
        self._lock = threading.Lock()

    def issuer(self, base_url: str) -> str:
        return f"{base_url}/{self.tenant_id}/v2.0"

    def issue(
        self, client_id: str, role: str, audience: str, issuer: str, user_name: str | None = None
    ) -> tuple[str, int]:
        """A token for ``audience`` (one of :func:`audience_of`'s forms of this cloud's ARM endpoint: the
        token endpoint refuses any other). ``role`` goes into the ``roles`` claim for clients; we ignore it.
        A user's token (``user_name``) names the person as AAD's do (``upn``, ``unique_name``, ``name``); its
        ``oid`` is the principal the user acts as, like every token's."""
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
        if user_name is not None:
            claims.update(upn=user_name, unique_name=user_name, name=user_name)
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
        return token, self.lifetime

    def id_token(self, public_client_id: str, principal_id: str, user_name: str, issuer: str) -> str:
        """An OpenID Connect ID token for a person who signed in with a password: what MSAL (and so ``az login
        -u``) reads to know the account is a user's and whose: ``upn``/``preferred_username`` and ``tid``.
        Its audience is the public client that asked, as OpenID Connect says; it grants nothing at ARM."""
        now = int(time.time())
        claims = {
            "aud": public_client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "sub": principal_id,
            "oid": principal_id,
            "tid": self.tenant_id,
            "upn": user_name,
            "unique_name": user_name,
            "preferred_username": user_name,
            "name": user_name,
            "ver": "1.0",
        }
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})

    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def verify_header(self, authorization: str | None, audiences: frozenset[str]) -> Caller:
        if not authorization:
            raise _unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized(
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        return self.verify(token.strip(), audiences)

    def cached(self, token: str, audiences: frozenset[str]) -> Caller | None:
        """The caller of a token verified earlier, not expired yet and for one of ``audiences``; None otherwise
        (verify it then). Its role is :data:`UNRESOLVED_ROLE`: the directory decides it."""
        hit = self._cache.get(token)  # one dict read: atomic, no lock needed
        if hit is not None and hit[1] > time.time() and hit[2] in audiences:
            return hit[0]
        return None

    def verify(self, token: str, audiences: frozenset[str]) -> Caller:
        """The caller a token names (role unresolved), once its signature, lifetime, tenant and audience hold.
        ``audiences`` are this cloud's, in :func:`audience_of`'s form."""
        caller = self.cached(token, audiences)
        if caller is not None:
            return caller
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "appid", "tid", "aud"]},
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
        audience = claims["aud"]
        if not isinstance(audience, str) or audience_of(audience) not in audiences:
            allowed = ", ".join(f"'{a}', '{a}/'" for a in sorted(audiences))
            raise _unauthorized(
                "InvalidAuthenticationToken",
                f"The access token has been obtained for wrong audience or resource '{audience}'. It should "
                f"exactly match with one of the allowed audiences {allowed}.",
            )
        caller = Caller(
            client_id=claims["appid"], role=UNRESOLVED_ROLE, tenant_id=claims["tid"], user_name=claims.get("upn")
        )
        with self._lock:
            self._cache[token] = (caller, float(claims["exp"]), audience_of(audience))
            if len(self._cache) > 10_000:
                self._cache.popitem(last=False)
        return caller

    def recent_role(self, client_id: str) -> str | None:
        """The principal's role if it was found in the directory within the recheck window (no lookup is
        made); None when it must be looked up."""
        checked = self._principals.get(client_id)
        if checked is not None and time.monotonic() - checked[1] < PRINCIPAL_RECHECK_SECONDS:
            return checked[0]
        return None

    def principal_recently_active(self, client_id: str) -> bool:
        """Whether the principal was found in the directory within the recheck window (no lookup is made)."""
        return self.recent_role(client_id) is not None

    def check_principal_active(self, client_id: str, role_of: Callable[[str], str | None], epoch: int) -> str:
        """The principal's role in the directory; a token outlives nothing: a deleted principal's tokens stop
        working. ``role_of`` looks the principal up (None: no such principal). The lookup is remembered for a
        few seconds per process, so other nodes notice a deletion within that time.

        ``epoch`` is :attr:`epoch` as read before the caller's transaction took its snapshot: if a principal
        was forgotten since, the lookup may predate the deletion and is used for this request only."""
        role = self.recent_role(client_id)
        if role is not None:
            return role
        now = time.monotonic()
        role = role_of(client_id)
        if role is None:
            raise _unauthorized("InvalidAuthenticationToken", "The principal of the access token no longer exists.")
        with self._lock:
            if self.epoch == epoch:
                self._principals[client_id] = (role, now)
        return role

    def forget_client(self, client_id: str) -> None:
        """Drop cached tokens of a principal, once its deletion has committed."""
        with self._lock:
            self.epoch += 1
            for token in [t for t, (c, _, _) in self._cache.items() if c.client_id == client_id]:
                del self._cache[token]
            self._principals.pop(client_id, None)
