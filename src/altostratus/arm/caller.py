"""Who is calling: the authenticated principal behind a request.

A module of its own because the token service, the subscription check and the request context all need it, and
none of them should have to import another to get it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The authenticated principal behind a request: who, from the bearer token; what they may do, from the
    directory (the pipeline fills ``role`` from the principal's row, never from a token's claims)."""

    client_id: str
    role: str  # "operator" | "tenant"; "" (no rights) until the pipeline has looked the principal up
    tenant_id: str
    # A person's sign-in name (a user token's ``upn``); None for a service principal. The activity log names a
    # person by it, as Azure's does, and a client by its id.
    user_name: str | None = None

    @property
    def display_name(self) -> str:
        return self.user_name or self.client_id

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"
