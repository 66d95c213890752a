"""Deployments at subscription scope through the official SDK (the 2020-09-01 profile and the current line; the
2018-03-01 profile has none): a template that creates a resource group and deploys a scale set into it through a
nested deployment with ``resourceGroup``, with validate, what-if, get, list, export, operations, cancel and delete.
Other scopes: test_deployment_scopes.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

pytestmark = pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
SET_ID = "[resourceId('Microsoft.Compute/virtualMachineScaleSets', 'web')]"
SCHEMA = "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("subdeploy")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def group_with_scale_set(capacity: int = 2) -> dict[str, Any]:
    """A subscription template: a group, then a nested deployment into it that makes a scale set."""
    scale_set = vmss_body(capacity)
    scale_set["properties"]["virtualMachineProfile"]["osProfile"]["adminPassword"] = "[parameters('password')]"
    inner = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"password": {"type": "securestring"}},
        "resources": [
            {"type": "Microsoft.Compute/virtualMachineScaleSets", "apiVersion": "2020-06-01", "name": "web",
             **scale_set}
        ],
        "outputs": {"setId": {"type": "string", "value": SET_ID}},
    }  # fmt: skip
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"groupName": {"type": "string"}, "password": {"type": "securestring"}},
        "resources": [
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2019-10-01",
                "name": "[parameters('groupName')]",
                "location": "[deployment().location]",
                "tags": {"made-by": "[deployment().name]"},
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2019-10-01",
                "name": "scaleSet",
                "resourceGroup": "[parameters('groupName')]",
                "dependsOn": ["[resourceId('Microsoft.Resources/resourceGroups', parameters('groupName'))]"],
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {"password": {"value": "[parameters('password')]"}},
                    "template": inner,
                },
            },
        ],
        "outputs": {
            "groupId": {
                "type": "string",
                "value": "[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('groupName'))]",
            }
        },
    }


def body(template: dict[str, Any], group: str, mode: str = "Incremental", **extra: Any) -> dict[str, Any]:
    return {
        "location": "local",
        "properties": {
            "mode": mode,
            "template": template,
            "parameters": {"groupName": {"value": group}, "password": {"value": "S3cret!pass"}},
            **extra,
        },
    }


def test_subscription_deployment_creates_a_group_with_a_scale_set(cloud: AltoServer, sdk: SdkLine) -> None:
    arm = sdk.arm(cloud, polling_interval=1)
    deployments, operations = arm.deployments, arm.deployment_operations
    cc = sdk.compute(cloud)
    sub = cloud.credentials["tenant"]["subscriptionId"]
    sdk.resource(cloud).providers.register("Microsoft.Compute")
    group, name = unique("subgrp"), unique("subdep")
    template = group_with_scale_set()

    validated = deployments.begin_validate_at_subscription_scope(name, body(template, group)).result()
    assert validated.error is None
    assert {r.id for r in validated.properties.validated_resources} == {
        f"/subscriptions/{sub}/resourceGroups/{group}",
        f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/scaleSet",
    }
    predicted = deployments.begin_what_if_at_subscription_scope(name, body(template, group)).result()
    changes = {c.resource_id: c.change_type for c in predicted.changes}
    group_id = f"/subscriptions/{sub}/resourceGroups/{group}"
    set_id = f"{group_id}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
    assert changes == {group_id: "Create", set_id: "Create"}
    assert not arm.resource_groups.check_existence(group), "validate and what-if deploy nothing"

    done = deployments.begin_create_or_update_at_subscription_scope(name, body(template, group)).result()
    assert done.properties.provisioning_state == "Succeeded"
    assert done.id == f"/subscriptions/{sub}/providers/Microsoft.Resources/deployments/{name}"
    assert done.location == "local"
    assert done.properties.outputs["groupId"]["value"].lower().endswith(f"/resourcegroups/{group}".lower())

    # The real effect: the group, tagged by the template, with a scale set of two instances in it.
    assert arm.resource_groups.get(group).tags == {"made-by": name}
    web = cc.virtual_machine_scale_sets.get(group, "web")
    assert web.sku.capacity == 2 and len(list(cc.virtual_machine_scale_set_vms.list(group, "web"))) == 2
    nested = deployments.get(group, "scaleSet")
    assert nested.properties.provisioning_state == "Succeeded"
    assert nested.properties.outputs["setId"]["value"] == web.id

    assert deployments.get_at_subscription_scope(name).properties.provisioning_state == "Succeeded"
    assert deployments.get_at_scope(f"subscriptions/{sub}", name).id == done.id
    assert deployments.check_existence_at_subscription_scope(name) is True
    listed = [d.name for d in deployments.list_at_subscription_scope()]
    assert name in listed and "scaleSet" not in listed, "a group's deployments are not the subscription's"
    assert name not in [d.name for d in deployments.list_by_resource_group(group)]
    assert deployments.export_template_at_subscription_scope(name).template == template
    ops = list(operations.list_at_subscription_scope(name))
    targets = {o.properties.target_resource.id for o in ops if o.properties.target_resource}
    assert f"/subscriptions/{sub}/resourceGroups/{group}" in targets
    first = operations.get_at_subscription_scope(name, ops[0].operation_id)
    assert first.operation_id == ops[0].operation_id and first.properties.provisioning_state == "Succeeded"

    deployments.begin_delete_at_subscription_scope(name).result()
    assert deployments.check_existence_at_subscription_scope(name) is False
    with pytest.raises(ResourceNotFoundError):
        deployments.get_at_subscription_scope(name)
    assert cc.virtual_machine_scale_sets.get(group, "web"), "deleting the history leaves the resources"
    arm.resource_groups.begin_delete(group).result()


def test_cancel_and_refusals_at_subscription_scope(cloud: AltoServer, sdk: SdkLine) -> None:
    arm = sdk.arm(cloud, polling_interval=1)
    deployments = arm.deployments
    sdk.resource(cloud).providers.register("Microsoft.Compute")
    group, name = unique("subcan"), unique("subcan")
    poller = deployments.begin_create_or_update_at_subscription_scope(name, body(group_with_scale_set(3), group))
    deployments.cancel_at_subscription_scope(name)  # the scale set takes seconds to converge: still running
    with pytest.raises(HttpResponseError) as exc:
        poller.result()
    assert exc.value.error.code == "DeploymentCanceled"
    assert deployments.get_at_subscription_scope(name).properties.provisioning_state == "Canceled"
    with pytest.raises(HttpResponseError) as exc:
        deployments.cancel_at_subscription_scope(name)
    assert exc.value.status_code == 409 and exc.value.error.code == "DeploymentCannotBeCancelled"

    no_location = body(group_with_scale_set(), group)
    no_location.pop("location")
    for wrong, code in (
        (no_location, "InvalidDeployment"),
        ({**body(group_with_scale_set(), group), "location": "westeurope"}, "LocationNotAvailableForDeployment"),
        (body(group_with_scale_set(), group, mode="Complete"), "InvalidDeploymentMode"),
    ):
        with pytest.raises(HttpResponseError) as exc:
            deployments.begin_create_or_update_at_subscription_scope(unique("bad"), wrong).result()
        assert exc.value.status_code == 400 and exc.value.error.code == code
    if arm.resource_groups.check_existence(group):  # the cancel may come before the group was made
        arm.resource_groups.begin_delete(group).result()


def test_subscription_and_group_deployments_share_names_on_both_databases(fresh_server: AltoServer) -> None:
    """A subscription deployment has no group: its name is unique among the subscription's own (a partial unique
    index), and a group's deployment of the same name is another one. Both databases, since NULL and partial
    indexes are where SQLite and PostgreSQL differ."""
    server = fresh_server.start()
    arm = SdkLine("2020-09-01-hybrid").arm(server, polling_interval=1)
    group = unique("both")
    nsg = {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2017-10-01", "name": "fw",
           "location": "local"}  # fmt: skip
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"groupName": {"type": "string"}, "password": {"type": "securestring"}},
        "resources": [
            {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2019-10-01",
             "name": "[parameters('groupName')]", "location": "local"},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2019-10-01", "name": "same",
             "resourceGroup": "[parameters('groupName')]", "dependsOn": ["[parameters('groupName')]"],
             "properties": {"mode": "Incremental", "template": {"$schema": SCHEMA, "contentVersion": "1.0.0.0",
                                                               "resources": [nsg]}}},
        ],
    }  # fmt: skip
    first = arm.deployments.begin_create_or_update_at_subscription_scope("same", body(template, group)).result()
    assert first.properties.provisioning_state == "Succeeded"
    again = arm.deployments.begin_create_or_update_at_subscription_scope("same", body(template, group)).result()
    assert again.properties.provisioning_state == "Succeeded"
    assert [d.name for d in arm.deployments.list_at_subscription_scope()] == ["same"], "a redeploy, not a second"
    assert arm.deployments.get(group, "same").properties.provisioning_state == "Succeeded", "the group's own"
    assert [r.name for r in arm.resources.list_by_resource_group(group)] == ["fw"]


def test_a_deleted_subscription_takes_its_deployments_along(cloud: AltoServer) -> None:
    from sqlalchemy import func, select

    from altostratus.deployments.models import Deployment
    from altostratus.store.db import Database
    from tests.support.arm import add_subscription

    other = add_subscription(cloud, cloud.credentials["tenant"]["clientId"])
    line = SdkLine("2020-09-01-hybrid")
    deployments = line.deployments(
        cloud, {**cloud.credentials["tenant"], "subscriptionId": other}, polling_interval=1
    ).deployments
    empty = {"location": "local", "properties": {"mode": "Incremental", "template": {
        "$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": []}}}  # fmt: skip
    deployments.begin_create_or_update_at_subscription_scope("kept", empty).result()
    admin = (
        f"/subscriptions/{cloud.credentials['operator']['subscriptionId']}/providers/Microsoft.Subscriptions.Admin"
        f"/subscriptions/{other}?api-version=2015-11-01"
    )
    with cloud.client("operator") as op:
        assert op.delete(admin).status_code == 200
    db = Database(f"sqlite:///{cloud.data_dir / 'altostratus.db'}")
    try:
        with db.session(readonly=True) as s:
            left = s.scalar(select(func.count()).select_from(Deployment).where(Deployment.subscription_id == other))
    finally:
        db.dispose()
    assert left == 0
