"""HTTP for `alto deployment group`: requests that keep ARM's whole error, paging, and the two polling styles.

``ApiClient.request`` sends JSON and reduces an error to code and message. Deployments need more: the body goes as
text (the template keeps its line numbers, see :mod:`deployment_input`), and an error's ``details`` and
``additionalInfo`` are what tell a template author which resource failed and on which line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import err_console, fail
from altostratus.cli.deployment_view import TERMINAL, print_error

API = "2019-10-01"
POLL_SECONDS = 0.5


class CallError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status, self.error = status, error


def error_of(r: httpx.Response) -> dict[str, Any]:
    try:
        error = r.json()["error"]
        if isinstance(error, dict):
            return error
    except (ValueError, KeyError, TypeError):
        pass
    return {"code": "HttpError", "message": f"HTTP {r.status_code}: {(r.text or r.reason_phrase)[:500]}"}


def call(
    api: ApiClient, method: str, path: str, content: str | None = None, params: dict[str, str] | None = None
) -> httpx.Response:
    """A request with the tenant's token; raises :class:`CallError` with ARM's whole error on 4xx/5xx.

    An absolute URL (a status URL, a ``nextLink``) is used as given; a path gets the api-version and ``params``.
    """
    absolute = path.startswith(("https://", "http://"))
    headers = {"Authorization": f"Bearer {api.token()}"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    r = api.http.request(
        method,
        path if absolute else api.endpoint + path,
        params=None if absolute else {"api-version": API, **(params or {})},
        content=content.encode() if content is not None else None,
        headers=headers,
    )
    if r.status_code >= 400:
        raise CallError(r.status_code, error_of(r))
    return r


def list_all(api: ApiClient, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    body = call(api, "GET", path, params=params).json()
    while True:
        items.extend(body.get("value") or [])
        if not body.get("nextLink"):
            return items
        body = call(api, "GET", body["nextLink"]).json()


@contextmanager
def handled(title: str | None = None) -> Iterator[None]:
    """Any failure of the API as a readable message and exit code 1."""
    try:
        yield
    except CallError as exc:
        print_error(err_console, exc.error, title)
        raise typer.Exit(1) from None
    except ApiError as exc:
        fail(exc)
    except httpx.TransportError as exc:
        err_console.print(f"[red]Cannot reach the server[/red]: {exc}. Is `alto up` running?")
        raise typer.Exit(1) from None


def deployments_path(api: ApiClient, group: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourcegroups/{group}/providers/Microsoft.Resources/deployments"


def operations_path(api: ApiClient, group: str, name: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourcegroups/{group}/deployments/{name}/operations"


def spinner() -> Progress:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal)


def wait_status(api: ApiClient, response: httpx.Response, label: str) -> dict[str, Any]:
    """Follow an ``Azure-AsyncOperation`` URL with a spinner until the operation ends."""
    url = response.headers.get("azure-asyncoperation")
    if not url:
        return {"status": "Succeeded"}
    with spinner() as progress:
        task = progress.add_task(label, total=None)
        while True:
            status = call(api, "GET", url).json()
            progress.update(task, description=f"{label}: {status.get('status')}")
            if status.get("status") in TERMINAL:
                return dict(status)
            time.sleep(POLL_SECONDS)


def poll_location(api: ApiClient, r: httpx.Response, label: str) -> dict[str, Any]:
    """A ``final-state-via: location`` operation: ``202`` on the Location URL while it runs, then the result."""
    location = r.headers.get("location")
    with spinner() as progress:
        progress.add_task(label, total=None)
        while r.status_code == 202:
            if not location:
                raise CallError(r.status_code, {"code": "HttpError", "message": "202 without a Location header."})
            time.sleep(min(float(r.headers.get("retry-after") or 1), POLL_SECONDS))
            r = call(api, "GET", location)
            location = r.headers.get("location") or location
    return dict(r.json()) if r.content else {}
