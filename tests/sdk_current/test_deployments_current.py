"""Template deployments through the current SDK line: azure-mgmt-resource-deployments (api-version 2026-06-01)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from altostratus.templates import read_template
from tests.conftest import sdk_credential, sdk_kwargs, unique
from tests.marketplace_util import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.server import AltoServer

TEMPLATES = Path(__file__).parent.parent / "arm_templates"


def template(name: str) -> dict[str, Any]:
    return read_template((TEMPLATES / name).read_bytes())[0]


def deployment(tpl: dict[str, Any], mode: str = "Incremental", **parameters: Any) -> dict[str, Any]:
    values = {name: {"value": value} for name, value in parameters.items()}
    return {"properties": {"mode": mode, "template": tpl, "parameters": values}}


def test_deployments(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(make_catalog(tmp_path / "upstream")))).start()
    try:
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        op.http.close()
        sub = server.credentials["tenant"]["subscriptionId"]
        rc = ResourceManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
        group = unique("cur")
        rc.resource_groups.create_or_update(group, {"location": "local"})
        dc = DeploymentsMgmtClient(sdk_credential(server), sub, polling_interval=1, **sdk_kwargs(server))

        body = deployment(template("vmss_hybrid.json"), vmssName="web", instanceCount=1)
        result = dc.deployments.begin_create_or_update(group, "vmss", body).result()
        assert result.properties.provisioning_state == "Succeeded", result.properties.error
        outputs = result.properties.outputs
        assert outputs["vmssState"]["value"] == "Succeeded" and outputs["capacity"]["value"] == 1
        assert len(outputs["nsgIds"]["value"]) == 3
        assert result.properties.parameters["adminPassword"] == {"type": "SecureString"}
        ops = list(dc.deployment_operations.list(group, "vmss"))
        assert sorted(o.properties.target_resource.resource_name for o in ops) == [
            "web",
            "web-nsg1",
            "web-nsg2",
            "web-nsg3",
        ]
        assert {o.properties.provisioning_operation for o in ops} == {"Create"}
        scope = f"subscriptions/{sub}/resourceGroups/{group}"  # the path with the providers segment
        assert {o.operation_id for o in dc.deployment_operations.list_at_scope(scope, "vmss")} == {
            o.operation_id for o in ops
        }
        assert dc.deployments.check_existence(group, "vmss") is True
        assert [d.name for d in dc.deployments.list_by_resource_group(group)] == ["vmss"]
        assert dc.deployments.export_template(group, "vmss").template["apiProfile"] == "2018-03-01-hybrid"

        with pytest.raises(HttpResponseError) as exc:
            dc.deployments.begin_validate(group, "bad", deployment(template("malformed_expression.json"))).result()
        assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplate"
        ok = dc.deployments.begin_validate(group, "ok", deployment(template("nsg_list.json"), names=["a"])).result()
        assert ok.properties.provisioning_state == "Succeeded"

        pinned = deployment(template("vmss_hybrid.json"), vmssName="pin", imageVersion="9.9.9", nsgCount=1)
        with pytest.raises(HttpResponseError) as exc:
            dc.deployments.begin_create_or_update(group, "pinned", pinned)
        assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplateDeployment"
        assert [d.code for d in exc.value.error.details] == ["PlatformImageNotFound"]
        assert dc.deployments.check_existence(group, "pinned") is False

        bad_size = template("vmss_hybrid.json")
        bad_size["resources"][1]["sku"]["name"] = "Standard_Nope"
        failing = deployment(bad_size, vmssName="bad", nsgCount=1)
        with pytest.raises(HttpResponseError) as exc:
            dc.deployments.begin_create_or_update(group, "broken", failing).result()
        assert exc.value.error.code == "DeploymentFailed"
        assert [d.code for d in exc.value.error.details] == ["InvalidParameter"]

        plan = deployment(template("nsg_list.json"), "Complete", names=["web-nsg1", "fresh"])
        changes = dc.deployments.begin_what_if(group, "plan", plan).result().changes
        kinds = {c.resource_id.rsplit("/", 1)[1]: c.change_type for c in changes}
        assert kinds["web-nsg1"] == "NoChange" and kinds["fresh"] == "Create" and kinds["web"] == "Delete"

        complete = deployment(template("nsg_list.json"), "Complete", names=["web-nsg1"])
        done = dc.deployments.begin_create_or_update(group, "complete", complete).result()
        assert done.properties.provisioning_state == "Succeeded"
        left = sorted(r.name for r in rc.resources.list_by_resource_group(group))
        assert left == ["web-nsg1"], "Complete mode removed the scale sets and the other groups"
        dc.deployments.begin_delete(group, "broken").result()
        assert dc.deployments.check_existence(group, "broken") is False
    finally:
        server.close()
