"""HTTP for `alto deployment group`: requests that keep ARM's whole error, paging, and waiting with a spinner.

``ApiClient.request`` sends JSON and reduces an error to code and message. Deployments need more: the body goes as
text (the template keeps its line numbers, see :mod:`deployment_input`), and an error's ``details`` and
``additionalInfo`` are what tell a template author which resource failed and on which line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from altostratus.cli import lro
from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import err_console, fail
from altostratus.cli.lazy import lazy_module
from altostratus.cli.lro import error_of

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx or rich
    import httpx
    from rich.progress import Progress

    from altostratus.cli import deployment_view as view
else:  # loaded when an error is first printed
    view = lazy_module("altostratus.cli.deployment_view")

API = "2019-10-01"


class CallError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status, self.error = status, error


def call(
    api: ApiClient, method: str, path: str, content: str | None = None, params: dict[str, str] | None = None
) -> httpx.Response:
    """A request with the tenant's token; raises :class:`CallError` with ARM's whole error on 4xx/5xx.

    An absolute URL (a status URL, a ``nextLink``) is used as given; a path gets the api-version and ``params``.
    """
    absolute = path.startswith(("https://", "http://"))
    headers = {"Content-Type": "application/json"} if content is not None else None
    r = api.send(
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
        view.print_error(err_console, exc.error, title)
        raise typer.Exit(1) from None
    except lro.LroError as exc:
        view.print_error(err_console, exc.error, title)
        raise typer.Exit(1) from None
    except ApiError as exc:  # the poller's errors are ApiErrors too, but they were shown above
        fail(exc)


def deployments_path(api: ApiClient, group: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourcegroups/{group}/providers/Microsoft.Resources/deployments"


def operations_path(api: ApiClient, group: str, name: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourcegroups/{group}/deployments/{name}/operations"


def spinner() -> Progress:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal)


def wait_spinning(api: ApiClient, r: httpx.Response, label: str, **options: Any) -> lro.Outcome:
    """Follow an operation (:func:`lro.wait`, which takes ``options``) with a spinner that shows its status."""
    with spinner() as progress:
        task = progress.add_task(label, total=None)

        def show(status: dict[str, Any]) -> None:
            progress.update(task, description=f"{label}: {status.get('status')}")

        return lro.wait(api, r, show, **options)
