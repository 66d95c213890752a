"""What a handler gets: the parsed request, the caller, the database session and URL helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from altostratus.arm.caller import Caller
from altostratus.arm.errors import ArmError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from altostratus.arm.access import AccessCache
    from altostratus.arm.auth import TokenService
    from altostratus.arm.login_limits import LoginLimits
    from altostratus.arm.operations import OperationRunner
    from altostratus.arm.registry import ProviderRegistry
    from altostratus.arm.subscription_cache import SubscriptionCache
    from altostratus.config import Settings
    from altostratus.store.db import Database


class Platform(Protocol):
    """What the pipeline and every handler may use of the running server, and nothing provider-specific.

    The request context depends on this narrow protocol rather than on the server's container of services, so
    ``arm/`` knows no provider: a provider that needs more (compute: the driver, the blob store, its controller)
    declares a protocol of its own that extends this one, and the container assembled in ``app.py`` satisfies all.
    The router is not in it: the pipeline is given the router it dispatches with, and deployments, which ask it
    whether a resource type has a route, declare it in their own protocol (so routes, whose handlers take a
    context, and the context do not name each other).
    """

    settings: Settings
    db: Database
    tokens: TokenService
    registry: ProviderRegistry
    operations: OperationRunner
    subscriptions: SubscriptionCache
    access: AccessCache
    logins: LoginLimits


def obj(value: Any, target: str) -> dict[str, Any]:
    """A JSON object field of a request ({} when absent or null): clients get a 400, never a 500, for a list."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArmError(400, "InvalidParameter", f"'{target}' must be a JSON object.", target)
    return value


def _no_constant(name: str) -> Any:
    """``NaN``/``Infinity`` are not JSON (Python accepts them; PostgreSQL's JSON type and the SDKs do not)."""
    raise ValueError(f"'{name}' is not a JSON value")


@dataclass
class RequestContext:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]  # keys lower-cased
    headers: dict[str, str]  # keys lower-cased
    raw_body: bytes
    base_url: str  # scheme://host[:port] as the client addressed us
    api_version: str | None
    caller: Caller | None
    db: Session
    services: Platform
    request_id: str
    source: str | None = None  # the client's address (the token endpoint's rate limits key on it)
    extra: dict[str, Any] = field(default_factory=dict)
    # Work to do once the handler's transaction has committed (e.g. deleting files it made unreferenced).
    after_commit: list[Callable[[], object]] = field(default_factory=list)

    def json(self, *, required: bool = True) -> dict[str, Any]:
        """The request body as a JSON object; malformed input is a 400, never a 500."""
        if not self.raw_body.strip():
            if required:
                raise ArmError(400, "InvalidRequestContent", "The request content was invalid: body is empty.")
            return {}
        try:
            text = self.raw_body.decode("utf-8-sig")
            value = json.loads(text, parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: {exc}.",
            ) from exc
        if not isinstance(value, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return value

    def properties(self) -> dict[str, Any]:
        """The body's ``properties`` object ({} when absent); anything else is a 400 naming the field."""
        return obj(self.json().get("properties"), "properties")

    def url(self, path: str, **query: str | None) -> str:
        """An absolute URL on this server (ARM returns absolute nextLink / polling URLs)."""
        q = {k: v for k, v in query.items() if v is not None}
        if "api_version" in q:
            q["api-version"] = q.pop("api_version") or ""
        return f"{self.base_url}{path}" + (f"?{urlencode(q)}" if q else "")

    @property
    def require_caller(self) -> Caller:
        """The authenticated caller; a handler of a PUBLIC route that asks for one is a bug, refused as code
        (not an ``assert``, which ``python -O`` strips) so it can never act for nobody."""
        if self.caller is None:
            raise RuntimeError(f"{self.method} {self.path}: the route is PUBLIC but its handler needs a caller")
        return self.caller
