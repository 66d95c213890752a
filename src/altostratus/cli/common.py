"""Helpers every command group shares: the client from credentials.json, output, errors, LRO progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from altostratus.cli import lro
from altostratus.cli.client import ApiClient, ApiError, credentials_path
from altostratus.cli.failures import show_traceback
from altostratus.cli.output import Output, OutputOpt, QueryOpt, console, emit, err_console
from altostratus.cli.profiles import ProfileError, resolve
from altostratus.config import DEFAULT_DATA_DIR

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx

__all__ = ["Output", "OutputOpt", "QueryOpt", "console", "emit", "err_console"]  # every command imports them here

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data dir whose credentials.json to use.")]


def client(data_dir: Path | None, principal: str = "tenant") -> ApiClient:
    """A client as the operator, or (``"tenant"``) as the profile in use: credentials.json's tenant by default."""
    credentials, path = read_credentials(data_dir)
    if principal != "tenant":
        return ApiClient(credentials, principal, source=path)
    try:
        profile = resolve(credentials, path)
    except ProfileError as exc:
        err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return ApiClient({**credentials, "tenant": profile.principal}, "tenant", source=profile.source)


def read_credentials(data_dir: Path | None) -> tuple[dict[str, Any], Path]:
    """credentials.json and its path, or exit 2 with a line that says how to get a usable one."""
    path = credentials_path(data_dir)
    if not path.exists():
        err_console.print(f"[red]No credentials at {path}.[/red] Start the server with `{_up_command(path)}` first.")
        raise typer.Exit(2)
    try:
        credentials = json.loads(path.read_text())
        ca_file = Path(credentials["caFile"])
        if ca_file.is_file():
            return dict(credentials), path
        why = f"the CA certificate it names, {ca_file}, is missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        show_traceback(exc)
        why = f"it names no {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    err_console.print(
        f"Cannot use {path}: {why}. Start the server with `alto up` to write it again, "
        "or pass the data dir of the server you mean with --data-dir.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(2)


def _up_command(credentials: Path) -> str:
    """The `alto up` that writes these credentials: a plain `alto up` writes ~/.altostratus, not a --data-dir or
    ALTO_DATA_DIR somewhere else."""
    if credentials.name != "credentials.json" or credentials.parent == DEFAULT_DATA_DIR:
        return "alto up"
    return f"alto up --data-dir {credentials.parent}"


def fail(exc: ApiError) -> None:
    """The error in one line and exit code 1 (``--debug`` adds the traceback)."""
    show_traceback(exc)
    if not exc.code:  # a sentence of its own (server unreachable, credentials refused)
        err_console.print(exc.message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err_console.print(f"[red]{exc.code}[/red]: {exc.message}" + (f" (target: {exc.target})" if exc.target else ""))
    raise typer.Exit(1)


def wait_with_progress(api: ApiClient, response: httpx.Response, label: str) -> dict[str, Any]:
    """Follow a long-running operation, drawing a byte progress bar when the operation reports bytes."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task(label, total=None)

        def show(status: dict[str, Any]) -> None:
            detail = (status.get("properties") or {}).get("progress") or {}
            total, done = detail.get("totalBytes"), detail.get("bytesDone")
            progress.update(task, total=total, completed=done or 0, description=f"{label}: {status.get('status')}")

        return lro.wait(api, response, show).status


def wait_group_deletion(api: ApiClient, response: httpx.Response, group: str) -> None:
    """Follow a resource group's deletion, counting the resources deleted so far."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        label = f"Deleting resource group '{group}'"
        task = progress.add_task(label, total=None)

        def show(status: dict[str, Any]) -> None:
            detail = (status.get("properties") or {}).get("progress") or {}
            suffix = f" ({detail['resourcesDeleted']}/{detail['resourcesTotal']} resources)" if detail else ""
            progress.update(task, description=f"{label}: {status.get('status')}{suffix}")

        lro.wait(api, response, show)
