"""``alto admin node``: the cloud's control-plane nodes (with their liveness) and the token that joins another.

A join token is printed on standard output alone, so it can be captured (``TOKEN=$(alto admin node join-token)``)
and handed to ``alto up --join-token`` on the new machine; what it is and how long it lasts go to standard error.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, emit, err_console, fail
from altostratus.cli.output import Col

COMPUTE_ADMIN_API = "2015-12-01-preview"
node_app = typer.Typer(help="Control-plane nodes of this cloud, and joining another one.", no_args_is_help=True)


def _url(api: ApiClient) -> str:
    location = api.credentials.get("location", "local")
    return f"/subscriptions/{api.subscription_id}/providers/Microsoft.Compute.Admin/locations/{location}/nodes"


@node_app.command("join-token")
def join_token(
    expires_in: Annotated[
        int, typer.Option("--expires-in", help="Minutes the token may be used in (it is used once).")
    ] = 15,
    url: Annotated[
        str | None,
        typer.Option(help="The https:// URL the new node reaches this one at (default: the URL alto talks to)."),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """A single-use, short-lived token that lets a new machine join: `alto up --join-token <token>` there."""
    api = client(data_dir, "operator")
    body: dict[str, Any] = {"expiresInMinutes": expires_in}
    if url:
        body["url"] = url
    try:
        answer = api.request("POST", f"{_url(api)}/joinToken", COMPUTE_ADMIN_API, body).json()
    except ApiError as exc:
        fail(exc)
    typer.echo(answer["token"])
    err_console.print(
        f"Join token for {answer['url']}, valid once until {answer['expiresOn']} "
        f"(CA {answer['caFingerprint'][:16]}...)."
        "\nIt unlocks the cloud's database and CA: hand it over as you would a password. On the new machine:"
        "\n  alto up --data-dir <empty dir> --join-token <token>",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@node_app.command("list")
def node_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Every node that beat recently or not long ago: alive or dead, where it runs, whether it runs controllers."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(_url(api), COMPUTE_ADMIN_API)
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [
            Col("Node", "name", ident=True),
            ("Host", "properties.hostname"),
            ("Alive", "properties.alive"),
            ("Controllers", "properties.controllers"),
            ("Last seen", "properties.lastSeen"),
        ],
        query,
    )
