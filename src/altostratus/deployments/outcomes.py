"""What a provider's answer means for a deployment operation: done, failed, or still running and where to poll.

Providers answer a ``PUT`` or ``DELETE`` in every way ARM allows: at once (``200``/``201`` with a terminal
``provisioningState``), with ``Azure-AsyncOperation`` (a scale set, a nested deployment), with a ``202`` and only a
``Location``, or with a non-terminal ``provisioningState`` to be watched on the resource itself. These rules are
ARM's and independent of how the executor schedules its work, so they are kept apart from it and from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from altostratus.deployments.client import InternalClient, InternalResponse, status_name
from altostratus.deployments.history import OpState
from altostratus.templates.values import get_ci


@dataclass(frozen=True)
class Outcome:
    """A deployment operation's new state; the fields left None are not recorded."""

    state: str  # Succeeded | Failed | Running
    status_code: str | None = None
    status_message: dict[str, Any] | None = None
    tracking: dict[str, Any] | None = None  # Running: {"poll": url, "kind": async|location|resource, ...}
    request_id: str | None = None


def failure(status: str, error: Any) -> dict[str, Any]:
    """ARM's ``ResourceDeploymentFailure`` around a provider's asynchronous error."""
    out: dict[str, Any] = {
        "code": "ResourceDeploymentFailure",
        "message": f"The resource operation completed with terminal provisioning state '{status}'.",
    }
    if isinstance(error, dict) and error:
        out["details"] = [error]
    return out


def terminal_failure(state: str, error: Any) -> dict[str, Any]:
    return {"status": state, "error": failure(state, error)}


def settled(response: InternalResponse, resource_url: str, api_version: str) -> Outcome:
    """What a PUT/DELETE answered: done, failed, or in progress with the URL to poll."""
    code = status_name(response.status)
    if not response.ok:
        message = {"status": "Failed", "error": response.error()}
        return Outcome("Failed", code, message, request_id=response.request_id)
    async_url = response.headers.get("azure-asyncoperation")
    location = response.headers.get("location")
    tracking: dict[str, Any] | None = None
    if async_url:
        tracking = {"poll": async_url, "kind": "async"}
    elif response.status == 202 and location:
        tracking = {"poll": location, "kind": "location"}
    elif isinstance(response.body, dict):
        state = str(get_ci(get_ci(response.body, "properties") or {}, "provisioningState") or "Succeeded")
        if state.lower() not in ("succeeded", "failed", "canceled"):
            tracking = {"poll": resource_url, "kind": "resource", "apiVersion": api_version}
        elif state.lower() != "succeeded":
            return Outcome("Failed", code, terminal_failure(state, None))
    if tracking is not None:
        return Outcome("Running", code, tracking=tracking, request_id=response.request_id)
    return Outcome("Succeeded", code, {"status": "Succeeded"}, request_id=response.request_id)


def polled(client: InternalClient, op: OpState) -> Outcome | None:
    """Poll a running operation where its answer said; None while it is still running."""
    kind, url = op.tracking.get("kind"), op.tracking.get("poll")
    if not url:
        return None
    if kind == "resource":
        response = client.request("GET", str(url), api_version=op.tracking.get("apiVersion"))
    else:
        response = client.request("GET", str(url))
    done: tuple[str, dict[str, Any]] | None = None
    if kind == "async":
        if response.status == 404 or (response.status >= 400 and response.status != 429):
            done = ("Failed", {"status": "Failed", "error": response.error()})
        elif isinstance(response.body, dict):
            status = str(response.body.get("status", ""))
            if status.lower() == "succeeded":
                done = ("Succeeded", {"status": "Succeeded"})
            elif status.lower() in ("failed", "canceled"):
                error = response.body.get("error")
                # A nested deployment's own DeploymentFailed is the detail, not wrapped once more.
                nested = op.key.lower().startswith("create:") and "/microsoft.resources/deployments/" in op.key
                done = ("Failed", {"status": status, "error": error if nested else failure(status, error)})
    elif kind == "location":
        if response.status != 202:
            done = (
                ("Succeeded", {"status": "Succeeded"})
                if response.ok
                else ("Failed", {"status": "Failed", "error": response.error()})
            )
    else:
        if not response.ok:
            done = ("Failed", {"status": "Failed", "error": response.error()})
        else:
            state = str(get_ci(get_ci(response.body or {}, "properties") or {}, "provisioningState") or "Succeeded")
            if state.lower() == "succeeded":
                done = ("Succeeded", {"status": "Succeeded"})
            elif state.lower() in ("failed", "canceled"):
                done = ("Failed", terminal_failure(state, None))
    return Outcome(done[0], status_message=done[1]) if done is not None else None
