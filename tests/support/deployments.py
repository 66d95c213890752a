"""Deployment bodies built from the template files, and a tenant's Microsoft.Resources clients with a new group."""

from __future__ import annotations

from typing import Any

from altostratus.templates import read_template
from tests.support.names import unique
from tests.support.sdk import ResourcesView, SdkLine
from tests.support.server import AltoServer
from tests.support.templates import ARM_TEMPLATES

TEMPLATES = ARM_TEMPLATES


def client(server: AltoServer, line: SdkLine) -> tuple[ResourcesView, str]:
    """Groups, resources and deployments through that SDK line (polling each second), and a fresh group."""
    rc = line.arm(server, polling_interval=1)
    group = unique("dep")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    return rc, group


def template(name: str) -> dict[str, Any]:
    return read_template((TEMPLATES / name).read_bytes())[0]


def deployment(tpl: dict[str, Any], mode: str = "Incremental", **parameters: Any) -> dict[str, Any]:
    return {
        "properties": {
            "mode": mode,
            "template": tpl,
            "parameters": {name: {"value": value} for name, value in parameters.items()},
        }
    }


def group_path(server: AltoServer, group: str) -> str:
    return f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourcegroups/{group}"
