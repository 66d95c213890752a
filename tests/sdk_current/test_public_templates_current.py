"""Issue 6's acceptance set through the current SDK line: azure-mgmt-resource-deployments (DeploymentsMgmtClient).

The same cases as tests/test_public_templates.py (the public VMSS templates and our own two, each checked for the
scale set, its instances on the sim driver, the resources, outputs and redeploys), with the client a tenant gets
from today's SDK release instead of an Azure Stack Hub API profile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.conftest import sdk_credential, sdk_kwargs
from tests.server import AltoServer
from tests.test_public_templates import CASES, DEPLOY_TIMEOUT, REGION, Ctx, serve_templates, start_cloud


class CurrentDeployer:
    """DeploymentsMgmtClient for deployments, the resources client for groups (both current releases)."""

    def __init__(self, server: AltoServer) -> None:
        sub = server.credentials["tenant"]["subscriptionId"]
        self.rc = ResourceManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
        self.dc = DeploymentsMgmtClient(sdk_credential(server), sub, polling_interval=1, **sdk_kwargs(server))

    def create_group(self, name: str) -> str:
        return str(self.rc.resource_groups.create_or_update(name, {"location": REGION}).id)

    def deploy(self, group: str, name: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        poller = self.dc.deployments.begin_create_or_update(group, name, body)
        result = poller.result(timeout=DEPLOY_TIMEOUT)
        assert poller.done(), f"deployment {name} still running after {DEPLOY_TIMEOUT}s: {poller.status()}"
        return dict(result.as_dict())

    def validate(self, group: str, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            self.dc.deployments.begin_validate(group, name, body).result()
        except HttpResponseError as exc:
            assert exc.response is not None
            return dict(json.loads(exc.response.text())["error"])
        return None

    def exists(self, group: str, name: str) -> bool:
        return bool(self.dc.deployments.check_existence(group, name))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    server = start_cloud(tmp_path_factory.mktemp("public-templates-current"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, stop = serve_templates(tmp_path_factory.mktemp("web"))
    yield url
    stop()


@pytest.mark.parametrize("case", list(CASES))
def test_public_template_current_sdk(cloud: AltoServer, web: str, case: str) -> None:
    ctx = Ctx(cloud, CurrentDeployer(cloud), web)
    try:
        CASES[case](ctx)
    finally:
        ctx.close()
