"""The one poller the CLI uses for every long-running operation, following ARM's rules as the SDK applies them.

Why one: every command that starts an operation (scale sets, deployments, group deletion, downloads, what-if)
must agree with the official SDK on when an operation is over and what it returned, or the CLI and the SDK
would report the same operation differently. The rules (see the API contract, section 4):

* ``Azure-AsyncOperation`` wins over ``Location``: its status body's ``status`` decides, and ``Failed`` or
  ``Canceled`` end the operation with the ``error`` that body carries.
* With only ``Location``, ``202`` means still running (a new ``Location`` replaces the URL) and any other
  success is the result, ``204`` meaning "no body"; an error answer there is the operation's failure.
* A PUT or PATCH with neither header is followed on its own URL until ``properties.provisioningState`` ends.
* Between polls the poller waits what ``Retry-After`` asks (seconds or an HTTP date; ``0`` counts as absent,
  as in the SDK), else ``retry-after-ms``, else its own interval.
* When the status says ``Succeeded``: a PUT or PATCH reads the resource once more (``resourceLocation`` or the
  request's URL), a POST reads its ``Location`` unless the status body is the result, a DELETE reads nothing.

The poller sends its GETs through a callable so commands keep their own authentication, and tests use a fake
transport. Starting a request and waiting for it are separate steps, so ``--no-wait`` simply never waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from altostratus.cli.client import ApiClient, ApiError

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx

DEFAULT_INTERVAL = 1.0  # seconds between polls when the server suggests nothing
TERMINAL = ("succeeded", "failed", "canceled")

Get = Callable[[str], "httpx.Response"]
OnProgress = Callable[[dict[str, Any]], None]
FinalState = Literal["original-uri", "location", "azure-async-operation"]


def error_of(response: httpx.Response) -> dict[str, Any]:
    """ARM's whole error object from a failed response (``details`` and ``additionalInfo`` included)."""
    try:
        error = response.json()["error"]
        if isinstance(error, dict):
            return error
    except (ValueError, KeyError, TypeError):
        pass
    text = (response.text or response.reason_phrase)[:500]
    return {"code": "HttpError", "message": f"HTTP {response.status_code}: {text}"}


class LroError(ApiError):
    """Why waiting for an operation ended without a result; ``error`` is the ARM error object to show."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(status, str(error.get("code") or ""), str(error.get("message") or ""), error.get("target"))
        self.error = error


class OperationFailed(LroError):
    """The operation ended ``Failed`` or ``Canceled``; ``body`` is the last status body (or error answer)."""

    def __init__(self, state: str, error: dict[str, Any] | None, body: dict[str, Any], status: int = 200) -> None:
        error = dict(error or {})
        error.setdefault("code", state)
        error.setdefault("message", "The operation failed.")
        super().__init__(status, error)
        self.state, self.body = state, body


class PollError(LroError):
    """The status could not be read (an error answer, no JSON, no ``status``): not the operation's own failure."""


class PollTimeout(LroError):
    """The caller's time ran out; the operation goes on in the cloud."""


@dataclass
class Outcome:
    """A finished operation: the last status body and the result (the resource, the ``Location`` body, or None)."""

    status: dict[str, Any]
    result: dict[str, Any] | None


def retry_after(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """The delay the server asked for, in seconds, or None when it asked for nothing usable."""
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            when = _http_date(value)
            if when is not None:
                return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
            seconds = 0.0
        if seconds > 0:
            return seconds
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        try:
            millis = float(headers.get(name) or 0)
        except ValueError:
            continue
        if millis > 0:
            return millis / 1000
    return None


def _http_date(value: str) -> datetime | None:
    try:
        import email.utils  # here: only a Retry-After in HTTP-date form needs it

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        error = {"code": "InvalidResponse", "message": "The answer is not JSON."}
        raise PollError(response.status_code, error) from None
    return body if isinstance(body, dict) else {"value": body}


class Poller:
    """Follows one operation from the response that started it; :meth:`wait` blocks until it ends."""

    def __init__(
        self,
        get: Get,
        initial: httpx.Response,
        *,
        final_state_via: FinalState | None = None,
        interval: float = DEFAULT_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if initial.status_code not in (200, 201, 202, 204):
            raise PollError(initial.status_code, error_of(initial))
        self._get, self.initial, self.interval = get, initial, interval
        self._sleep, self._clock = sleep, clock
        self.method = initial.request.method.upper()
        self.request_url = str(initial.request.url)
        self.status_url = initial.headers.get("azure-asyncoperation")
        self.location = initial.headers.get("location")
        default: FinalState = "original-uri" if self.method in ("PUT", "PATCH") else "location"
        self.final_state_via = final_state_via or default
        self._deadline: float | None = None

    def wait(self, on_progress: OnProgress | None = None, timeout: float | None = None) -> Outcome:
        """Poll until the operation ends; ``on_progress`` sees every status body (``{"status": ...}`` at least)."""
        self._deadline = None if timeout is None else self._clock() + timeout
        report = on_progress or (lambda _status: None)
        if self.status_url:
            return self._follow_status(report)
        if self.location:
            return self._follow_location(report)
        if self.method in ("PUT", "PATCH"):
            return self._follow_resource(report)
        body = _json(self.initial)  # nothing to poll: the first answer is the result
        report({"status": "Succeeded"})
        return Outcome({"status": "Succeeded"}, body)

    # -- the three ways of polling ------------------------------------------------------------------------

    def _follow_status(self, report: OnProgress) -> Outcome:
        assert self.status_url is not None
        headers = self.initial.headers
        while True:
            response = self._poll(self.status_url, headers)
            headers = response.headers
            if response.status_code >= 400:
                raise PollError(response.status_code, error_of(response))
            body = _json(response) or {}
            state = body.get("status")
            if not isinstance(state, str) or not state:
                message = "The operation's status answer has no 'status'."
                raise PollError(response.status_code, {"code": "InvalidOperationStatus", "message": message})
            report(body)
            if state.lower() in TERMINAL:
                if state.lower() != "succeeded":
                    raise OperationFailed(state, body.get("error"), body)
                return Outcome(body, self._final(body))

    def _follow_location(self, report: OnProgress) -> Outcome:
        assert self.location is not None
        url, response = self.location, self.initial
        while True:
            response = self._poll(url, response.headers)
            if response.status_code >= 400:
                error = error_of(response)
                raise OperationFailed("Failed", error, {"status": "Failed", "error": error}, response.status_code)
            if response.status_code != 202:
                report({"status": "Succeeded"})
                return Outcome({"status": "Succeeded"}, _json(response))
            report({"status": "InProgress"})
            url = response.headers.get("location") or url

    def _follow_resource(self, report: OnProgress) -> Outcome:
        response = self.initial
        while True:
            body = _json(response)
            state = ((body or {}).get("properties") or {}).get("provisioningState")
            if not isinstance(state, str):  # the SDK's reading: 202 (or 201) without a state is still running
                state = "InProgress" if response.status_code in (201, 202) else "Succeeded"
            report({"status": state})
            if state.lower() in TERMINAL:
                if state.lower() != "succeeded":
                    error = ((body or {}).get("properties") or {}).get("error")
                    raise OperationFailed(state, error, {"status": state, "error": error})
                return Outcome({"status": state}, body)
            response = self._poll(self.request_url, response.headers)
            if response.status_code >= 400:
                raise PollError(response.status_code, error_of(response))
            if not response.content:
                message = "The resource read while its operation runs has no body."
                raise PollError(response.status_code, {"code": "InvalidResponse", "message": message})

    # -- helpers ------------------------------------------------------------------------------------------

    def _poll(self, url: str, headers: httpx.Headers) -> httpx.Response:
        """Wait what the last answer asked (within the caller's time), then GET ``url``."""
        delay = retry_after(headers)
        delay = self.interval if delay is None else delay
        if self._deadline is not None:
            left = self._deadline - self._clock()
            if left <= 0:
                message = f"Stopped waiting; the operation goes on ({self.status_url or self.location or url})."
                raise PollTimeout(0, {"code": "OperationTimeout", "message": message})
            delay = min(delay, left)
        self._sleep(delay)
        return self._get(url)

    def _final(self, status: dict[str, Any]) -> dict[str, Any] | None:
        """The result of a succeeded async operation, read where ARM says it is."""
        if self.method == "DELETE" or self.final_state_via == "azure-async-operation":
            return None
        if self.final_state_via == "location" and self.location:
            url = self.location
        elif self.method in ("PUT", "PATCH"):
            url = status.get("resourceLocation") or self.request_url
        else:
            return None
        response = self._get(url)
        if response.status_code >= 400:
            raise PollError(response.status_code, error_of(response))
        return _json(response)


def wait(
    api: ApiClient,
    response: httpx.Response,
    on_progress: OnProgress | None = None,
    *,
    timeout: float | None = None,
    final_state_via: FinalState | None = None,
) -> Outcome:
    """Follow an operation ``api`` started until it ends (raises :class:`LroError` when it did not succeed)."""
    return Poller(api.get_url, response, final_state_via=final_state_via).wait(on_progress, timeout)
