"""``alto admin user``: people of the local directory, who sign in to the portals (and ``az login -u``).

Passwords are read from standard input (``--password-stdin``), never from the command line, where other local
users could see them in the process list and the shell would keep them in its history.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, console, emit, fail
from altostratus.cli.confirm import YesOpt, confirm
from altostratus.cli.output import Col

IDENTITY_ADMIN_API = "2024-01-01"
user_app = typer.Typer(help="People who sign in to the portals (name and password).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (its first line).")
]


def _url(api: ApiClient, name: str = "") -> str:
    base = f"/subscriptions/{api.subscription_id}/providers/Altostratus.Identity.Admin/users"
    return f"{base}/{name}" if name else base


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        console.print("[red]Give the password on standard input with --password-stdin.[/red]")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        console.print("[red]No password on standard input.[/red]")
        raise typer.Exit(2)
    return password


def _put(data_dir: Any, name: str, props: dict[str, Any]) -> dict[str, Any]:
    api = client(data_dir, "operator")
    try:
        result: dict[str, Any] = api.request("PUT", _url(api, name), IDENTITY_ADMIN_API, {"properties": props}).json()
    except ApiError as exc:
        fail(exc)
    return result


COLUMNS: list[Col | tuple[str, str]] = [
    ("User", "properties.userName"),
    ("Role", "properties.role"),
    ("Enabled", "properties.enabled"),
    Col("Object id", "properties.objectId", ident=True),
]


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="Sign-in name (letters, digits, . _ - @).")],
    operator: Annotated[bool, typer.Option("--operator", help="An operator (default: a tenant user).")] = False,
    password_stdin: PasswordStdin = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a user. Own subscriptions with `alto admin subscription create --owner <object id>`."""
    password = _read_password(password_stdin)
    user = _put(data_dir, name, {"role": "operator" if operator else "tenant", "password": password})
    emit([user], Output.table, COLUMNS, None)


@user_app.command("set-password")
def user_set_password(
    name: Annotated[str, typer.Argument()], password_stdin: PasswordStdin = False, data_dir: DataDirOpt = None
) -> None:
    """Set a user's password (a reset: the old one is not needed)."""
    _put(data_dir, name, {"password": _read_password(password_stdin)})
    console.print(f"Password of {name} changed.")


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()], data_dir: DataDirOpt = None) -> None:
    """Stop a user's sign-ins and the tokens they hold (until enabled again)."""
    _put(data_dir, name, {"enabled": False})
    console.print(f"{name} is disabled.")


@user_app.command("enable")
def user_enable(name: Annotated[str, typer.Argument()], data_dir: DataDirOpt = None) -> None:
    """Let a disabled user sign in again."""
    _put(data_dir, name, {"enabled": True})
    console.print(f"{name} is enabled.")


@user_app.command("delete")
def user_delete(name: Annotated[str, typer.Argument()], yes: YesOpt = False, data_dir: DataDirOpt = None) -> None:
    """Delete a user (refused while they own subscriptions)."""
    confirm(f"Delete the user {name}?", yes)
    api = client(data_dir, "operator")
    try:
        api.request("DELETE", _url(api, name), IDENTITY_ADMIN_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"{name} deleted.")


@user_app.command("list")
def user_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """The people of the local directory."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(_url(api), IDENTITY_ADMIN_API)
    except ApiError as exc:
        fail(exc)
    emit(items, output, COLUMNS, query)
