"""`alto login` and `alto account`: named profiles (see profiles.py), shaped like `az login` / `az account`.

Why: a tenant created with `alto admin subscription create` must be usable from `alto` without editing files by
hand; `alto account show` answers "as whom, on which subscription, against which server am I working?".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, emit, err_console, fail, read_credentials
from altostratus.cli.output import Col
from altostratus.cli.profiles import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    active_name,
    all_profiles,
    check_name,
    load,
    profiles_path,
    resolve,
    save,
)
from altostratus.config import DEFAULT_DATA_DIR

SUBSCRIPTIONS_API = "2016-06-01"

account_app = typer.Typer(
    help="Profiles: which principal and subscription `alto` acts as (like `az account`).", no_args_is_help=True
)

ProfileOpt = Annotated[str, typer.Option("--profile", help="Name of the profile to save (not 'default').")]


def _refuse(message: str) -> NoReturn:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _read_principal_file(source: str) -> dict[str, Any]:
    """The JSON `alto admin subscription create` prints: clientId, clientSecret, subscriptionId."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).expanduser().read_text()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        _refuse(f"Cannot read credentials from {'stdin' if source == '-' else source}: {exc}.")
    return data


def save_profile(
    name: str,
    credentials: dict[str, Any],
    credentials_file: Path,
    client_id: str,
    client_secret: str,
    subscription: str | None,
) -> dict[str, Any]:
    """Check the secret with a real sign-in, pick the subscription, store the profile 0600; returns it."""
    try:
        check_name(name)
    except ProfileError as exc:
        _refuse(str(exc))
    principal: dict[str, Any] = {"clientId": client_id, "clientSecret": client_secret}
    api = ApiClient({**credentials, "tenant": principal}, "tenant", source=credentials_file)
    try:
        subscriptions = api.list_all("/subscriptions", SUBSCRIPTIONS_API)
    except ApiError as exc:
        fail(exc)
    if not subscriptions:
        _refuse(f"The principal {client_id} signed in but can see no subscription: nothing to save.")
    chosen = next((s for s in subscriptions if subscription in (None, s.get("subscriptionId"))), None)
    if chosen is None:
        seen = ", ".join(str(s.get("subscriptionId")) for s in subscriptions)
        _refuse(f"The principal {client_id} cannot see subscription {subscription}; it sees {seen}.")
    principal |= {"subscriptionId": chosen["subscriptionId"], "subscriptionName": chosen.get("displayName")}
    path = profiles_path(credentials_file)
    data = load(path)
    data["profiles"][name] = principal
    save(path, data)
    return principal


def login_command(name: str, principal: dict[str, Any], data_dir: Path | None) -> str:
    """The exact `alto login` line that saves this principal as profile ``name``."""
    import shlex

    argv = ["alto", "login", "--profile", name, "--client-id", principal["clientId"]]
    argv += ["--client-secret", principal["clientSecret"], "--subscription", principal["subscriptionId"]]
    if data_dir and data_dir.expanduser().resolve() != DEFAULT_DATA_DIR:
        argv += ["--data-dir", str(data_dir)]
    return shlex.join(argv)


def login(
    profile: ProfileOpt,
    client_id: Annotated[str | None, typer.Option("--client-id", "-u", help="Service principal's client id.")] = None,
    client_secret: Annotated[
        str | None, typer.Option("--client-secret", "-p", help="Its secret (default: asked for, not echoed).")
    ] = None,
    subscription: Annotated[
        str | None, typer.Option("--subscription", "-s", help="Subscription id (default: the first it can see).")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Directory tenant id; must be this cloud's (checked).")
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option("--from-file", help="JSON printed by `alto admin subscription create` (a file, or - for stdin)."),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Save a tenant principal as a named profile, after checking it can sign in (like `az login
    --service-principal`). Use it with `alto --profile NAME ...`, ALTO_PROFILE=NAME or `alto account set`."""
    credentials, path = read_credentials(data_dir)
    if tenant and tenant != credentials.get("tenantId"):
        _refuse(f"This cloud's directory tenant is {credentials.get('tenantId')}, not {tenant} ({path}).")
    given = _read_principal_file(from_file) if from_file else {}
    client_id = client_id or given.get("clientId")
    client_secret = client_secret or given.get("clientSecret")
    subscription = subscription or given.get("subscriptionId")
    if not client_id:
        _refuse("Give the principal: --client-id ID (and --client-secret), or --from-file with their JSON.")
    if not client_secret:
        if not sys.stdin.isatty():
            _refuse("No --client-secret, and stdin is not a terminal to ask on: add --client-secret SECRET.")
        client_secret = str(typer.prompt("Client secret", hide_input=True, err=True))
    saved = save_profile(profile, credentials, path, client_id, client_secret, subscription)
    err_console.print(
        f"Saved profile '{profile}' in {profiles_path(path)}: {client_id} on subscription {saved['subscriptionId']}"
        f"{' (' + saved['subscriptionName'] + ')' if saved.get('subscriptionName') else ''}. "
        f"Use it with `alto --profile {profile} ...` or ALTO_PROFILE={profile}.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _describe(profile: Profile, active: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """What `az account show` says, for a profile; never the secret."""
    p = profile.principal
    return {
        "profile": profile.name,
        "isActive": profile.name == active,
        "user": {"name": p.get("clientId"), "type": "servicePrincipal"},
        "id": p.get("subscriptionId"),
        "name": p.get("subscriptionName"),
        "tenantId": credentials.get("tenantId"),
        "armEndpoint": credentials.get("armEndpoint"),
        "source": str(profile.source),
    }


COLUMNS: list[Col | tuple[str, str]] = [
    Col("Profile", "profile", ident=True),
    ("Active", "isActive"),
    Col("Principal", "user.name", ident=True),
    Col("Subscription", "id", ident=True),
    ("Subscription name", "name"),
    ("Endpoint", "armEndpoint"),
]


@account_app.command("show")
def account_show(
    profile: Annotated[str | None, typer.Option("--profile", help="This profile (default: the one in use).")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
    query: QueryOpt = None,
) -> None:
    """The profile in use: principal, subscription, endpoint, and why it is the one in use."""
    credentials, path = read_credentials(data_dir)
    try:
        active, why = active_name(load(profiles_path(path)))
        shown = resolve(credentials, path, profile or active)
    except ProfileError as exc:
        _refuse(str(exc))
    item = _describe(shown, active, credentials) | ({"selectedBy": why} if shown.name == active else {})
    emit(item, output, COLUMNS, query)


@account_app.command("list")
def account_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Every profile of this data dir; `default` is credentials.json's tenant."""
    credentials, path = read_credentials(data_dir)
    try:
        active, _ = active_name(load(profiles_path(path)))
        items = [_describe(p, active, credentials) for p in all_profiles(credentials, path)]
    except ProfileError as exc:
        _refuse(str(exc))
    emit(items, output, COLUMNS, query)


@account_app.command("set")
def account_set(
    profile: Annotated[str, typer.Option("--profile", help="The profile later commands use by default.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Make a profile the one in use when neither --profile nor ALTO_PROFILE says otherwise (like `az account
    set`); `--profile default` goes back to credentials.json's tenant."""
    credentials, path = read_credentials(data_dir)
    try:
        resolve(credentials, path, profile)
        data = load(profiles_path(path))
    except ProfileError as exc:
        _refuse(str(exc))
    data["active"] = None if profile == DEFAULT_PROFILE else profile
    save(profiles_path(path), data)
    err_console.print(f"Profile '{profile}' is now the one in use.", markup=False, highlight=False)


@account_app.command("remove")
def account_remove(
    profile: Annotated[str, typer.Option("--profile", help="The profile to forget (its secret is deleted).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Forget a saved profile (like `az logout`); the principal itself stays in the directory."""
    _, path = read_credentials(data_dir)
    try:
        check_name(profile)
        data = load(profiles_path(path))
    except ProfileError as exc:
        _refuse(str(exc))
    if data["profiles"].pop(profile, None) is None:
        _refuse(f"No profile '{profile}' in {profiles_path(path)}.")
    if data.get("active") == profile:
        data["active"] = None
    save(profiles_path(path), data)
    err_console.print(f"Removed profile '{profile}'.", markup=False, highlight=False)
