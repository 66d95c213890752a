"""ARM error bodies ("CloudError").

Every failure a client can see is an :class:`ArmError`; the HTTP layer turns it into
``{"error": {"code", "message", "target"?, "details"?}}`` with the matching status. Handlers raise these
instead of building responses so that no code path can answer with anything else (and never a 500 for
caller mistakes).
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error with an ARM code, an HTTP status and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_parameter(message: str, target: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target)


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(resource_type: str, name: str, group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found.",
    )


def authorization_failed(client_id: str, action: str, scope: str) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{client_id}' does not have authorization to perform action '{action}' "
        f"over scope '{scope}' or the scope is invalid.",
    )


def conflict(message: str, code: str = "Conflict", target: str | None = None) -> ArmError:
    return ArmError(409, code, message, target)
