"""Deployments through the SDK's ``*_at_scope`` calls (a scope path: a resource group's or the subscription's), a
running group deployment canceled, and every tenant- and management-group-scope call answered as Azure answers a
caller without rights there (``403 AuthorizationFailed`` naming the caller and the scope)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.deployments import client, deployment
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

pytestmark = pytest.mark.sdk_lines("2020-09-01-hybrid", "current")  # the 2018-03-01 profile has no scoped calls
EMPTY = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
         "contentVersion": "1.0.0.0", "resources": [], "outputs": {"answer": {"type": "int", "value": 42}}}  # fmt: skip
NSGS = {**EMPTY, "parameters": {"n": {"type": "int"}}, "resources": [
    {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2017-10-01",
     "name": "[concat('fw', copyIndex())]", "location": "local", "copy": {"name": "fws", "count": "[parameters('n')]"}}
]}  # fmt: skip


def test_deployments_at_a_scope_path(server: AltoServer, sdk: SdkLine) -> None:
    arm, group = client(server, sdk)
    sub = server.credentials["tenant"]["subscriptionId"]
    scope = f"subscriptions/{sub}/resourceGroups/{group}"
    deployments, operations = arm.deployments, arm.deployment_operations
    validated = deployments.begin_validate_at_scope(scope, "scoped", deployment(NSGS, n=1)).result()
    assert validated.error is None
    done = deployments.begin_create_or_update_at_scope(scope, "scoped", deployment(NSGS, n=1)).result()
    assert done.properties.provisioning_state == "Succeeded" and done.properties.outputs["answer"]["value"] == 42
    assert done.id == f"/{scope}/providers/Microsoft.Resources/deployments/scoped"
    assert deployments.check_existence_at_scope(scope, "scoped") is True
    assert [d.name for d in deployments.list_at_scope(scope)] == ["scoped"]
    assert deployments.export_template_at_scope(scope, "scoped").template == NSGS
    ops = list(operations.list_at_scope(scope, "scoped"))
    assert [o.properties.target_resource.resource_name for o in ops] == ["fw0"]
    assert operations.get_at_scope(scope, "scoped", ops[0].operation_id).operation_id == ops[0].operation_id
    with pytest.raises(HttpResponseError) as exc:
        deployments.cancel_at_scope(scope, "scoped")
    assert exc.value.status_code == 409 and exc.value.error.code == "DeploymentCannotBeCancelled"
    deployments.begin_delete_at_scope(scope, "scoped").result()
    assert deployments.check_existence_at_scope(scope, "scoped") is False

    # The subscription as a scope path: the subscription's own deployments.
    at_sub = f"subscriptions/{sub}"
    request = {**deployment(EMPTY), "location": "local"}
    assert deployments.begin_create_or_update_at_scope(at_sub, "subscoped", request).result().location == "local"
    assert "subscoped" in [d.name for d in deployments.list_at_subscription_scope()]
    deployments.begin_delete_at_scope(at_sub, "subscoped").result()
    arm.resource_groups.begin_delete(group).result()


def test_cancel_a_running_group_deployment(server: AltoServer, sdk: SdkLine) -> None:
    arm, group = client(server, sdk)
    sdk.resource(server).providers.register("Microsoft.Network")
    poller = arm.deployments.begin_create_or_update(group, "many", deployment(NSGS, n=400))
    arm.deployments.cancel(group, "many")  # four hundred resources take longer than one request
    with pytest.raises(HttpResponseError) as exc:
        poller.result()
    assert exc.value.error.code == "DeploymentCanceled"
    canceled = arm.deployments.get(group, "many")
    assert canceled.properties.provisioning_state == "Canceled"
    assert len(list(arm.resources.list_by_resource_group(group))) < 400, "the rest was never deployed"
    arm.resource_groups.begin_delete(group).result()


def scoped_calls(deployments: Any, operations: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Every tenant- and management-group-scope call of the SDK, with plausible arguments."""
    body = {"location": "local", "properties": {"mode": "Incremental", "template": EMPTY}}
    mg = "/providers/Microsoft.Management/managementGroups/mg"
    return [
        ("/", lambda: deployments.begin_create_or_update_at_tenant_scope("d", body).result()),
        ("/", lambda: deployments.begin_validate_at_tenant_scope("d", body).result()),
        ("/", lambda: deployments.begin_what_if_at_tenant_scope("d", body).result()),
        ("/", lambda: deployments.get_at_tenant_scope("d")),
        ("/", lambda: deployments.check_existence_at_tenant_scope("d")),
        ("/", lambda: list(deployments.list_at_tenant_scope())),
        ("/", lambda: deployments.cancel_at_tenant_scope("d")),
        ("/", lambda: deployments.export_template_at_tenant_scope("d")),
        ("/", lambda: deployments.begin_delete_at_tenant_scope("d").result()),
        ("/", lambda: list(operations.list_at_tenant_scope("d"))),
        ("/", lambda: operations.get_at_tenant_scope("d", "op")),
        (mg, lambda: deployments.begin_create_or_update_at_management_group_scope("mg", "d", body).result()),
        (mg, lambda: deployments.begin_validate_at_management_group_scope("mg", "d", body).result()),
        (mg, lambda: deployments.begin_what_if_at_management_group_scope("mg", "d", body).result()),
        (mg, lambda: deployments.get_at_management_group_scope("mg", "d")),
        (mg, lambda: deployments.check_existence_at_management_group_scope("mg", "d")),
        (mg, lambda: list(deployments.list_at_management_group_scope("mg"))),
        (mg, lambda: deployments.cancel_at_management_group_scope("mg", "d")),
        (mg, lambda: deployments.export_template_at_management_group_scope("mg", "d")),
        (mg, lambda: deployments.begin_delete_at_management_group_scope("mg", "d").result()),
        (mg, lambda: list(operations.list_at_management_group_scope("mg", "d"))),
        (mg, lambda: operations.get_at_management_group_scope("mg", "d", "op")),
    ]


def test_tenant_and_management_group_scopes_are_not_the_tenants(server: AltoServer, sdk: SdkLine) -> None:
    arm = sdk.arm(server)
    client_id = server.credentials["tenant"]["clientId"]
    for scope, call in scoped_calls(arm.deployments, arm.deployment_operations):
        with pytest.raises(HttpResponseError) as exc:
            call()
        assert exc.value.status_code == 403, (scope, exc.value)
        if exc.value.error is not None:  # HEAD (check_existence) has no body to carry the error
            assert exc.value.error.code == "AuthorizationFailed"
            assert client_id in exc.value.error.message and f"scope '{scope}'" in exc.value.error.message
