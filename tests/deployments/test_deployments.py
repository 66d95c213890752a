"""Template deployments through the official SDK, against a real server: the tests taking ``sdk`` on each SDK line the
venv has (hybrid profiles, current releases), the others with the 2020-09-01-hybrid profile.

The templates (``tests/arm_templates``) use only resource types this cloud has today: scale sets, network security
groups (a plain type) and nested deployments. The operator adds the platform image first, as on Azure Stack Hub.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from altostratus.compute.versions import COMPUTE
from tests.support.deployments import TEMPLATES, client, deployment, group_path, template
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

HYBRID = SdkLine("2020-09-01-hybrid")  # for the tests that exercise the server, not the SDK lines
RES_API = "api-version=2019-10-01"


def test_vmss_template_with_api_profile(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)  # Microsoft.Compute and Microsoft.Network are not registered: the engine does it
    body = deployment(template("vmss_hybrid.json"), vmssName="web", adminPassword="S3cret!pass")
    result = rc.deployments.begin_create_or_update(group, "vmss", body).result()
    props = result.properties
    assert props.provisioning_state == "Succeeded", props.error
    assert props.mode == "Incremental" and props.correlation_id
    out = {name: value["value"] for name, value in props.outputs.items()}
    prefix = f"/subscriptions/{cloud.credentials['tenant']['subscriptionId']}/resourceGroups/{group}/providers"
    assert out["vmssId"] == f"{prefix}/Microsoft.Compute/virtualMachineScaleSets/web"
    assert out["vmssState"] == "Succeeded"
    assert out["capacity"] == 2
    assert out["computeApiVersion"] == COMPUTE[0]
    assert out["nsgIds"] == [f"{prefix}/Microsoft.Network/networkSecurityGroups/web-nsg{i}" for i in (1, 2, 3)]
    assert props.outputs["nsgIds"]["type"] == "Array"
    assert props.parameters["adminPassword"] == {"type": "SecureString"}, "secure values are never returned"
    assert props.parameters["instanceCount"] == {"type": "Int", "value": 2}

    # The scale set is the compute provider's own: instances run, uniqueId matches the 'Full' reference.
    http = cloud.client()
    vmss = http.get(f"{out['vmssId']}?api-version=2017-03-30").json()
    assert vmss["properties"]["uniqueId"] == out["vmssUniqueId"]
    assert vmss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] == "latest"
    vms = http.get(f"{out['vmssId']}/virtualMachines?api-version=2017-03-30").json()["value"]
    assert len(vms) == 2 and all(v["properties"]["provisioningState"] == "Succeeded" for v in vms)
    nsg = http.get(f"{out['nsgIds'][2]}?api-version=2017-10-01").json()
    assert nsg["tags"] == {"index": "2"} and nsg["properties"]["securityRules"][0]["name"] == "ssh"
    assert rc.providers.get("Microsoft.Compute").registration_state == "Registered"

    # The graph: the serial batch of two makes web-nsg3 wait for web-nsg1/2; the scale set waits for the loop.
    deps = {d.resource_name: sorted(x.resource_name for x in d.depends_on) for d in props.dependencies}
    assert deps == {"web-nsg3": ["web-nsg1", "web-nsg2"], "web": ["web-nsg1", "web-nsg2", "web-nsg3"]}
    assert {p.namespace for p in props.providers} == {"Microsoft.Compute", "Microsoft.Network"}

    ops = list(rc.deployment_operations.list(group, "vmss"))
    assert sorted(op.properties.target_resource.resource_name for op in ops) == [
        "web",
        "web-nsg1",
        "web-nsg2",
        "web-nsg3",
    ]
    assert all(op.properties.provisioning_state == "Succeeded" for op in ops)
    assert all(op.properties.status_code == "Created" for op in ops)
    one = rc.deployment_operations.get(group, "vmss", ops[-1].operation_id)
    assert one.properties.target_resource.resource_type == "Microsoft.Compute/virtualMachineScaleSets"
    if sdk.speaks("deployments", "2019-10-01"):  # operations at any scope exist from 2019-10-01 on
        scope = f"subscriptions/{cloud.credentials['tenant']['subscriptionId']}/resourceGroups/{group}"
        at_scope = rc.deployment_operations.list_at_scope(scope, "vmss")
        assert {o.operation_id for o in at_scope} == {o.operation_id for o in ops}

    assert rc.deployments.check_existence(group, "vmss") is True
    assert rc.deployments.check_existence(group, "nope") is False
    assert [d.name for d in rc.deployments.list_by_resource_group(group)] == ["vmss"]
    assert [d.name for d in rc.deployments.list_by_resource_group(group, filter="provisioningState eq 'Failed'")] == []
    assert rc.deployments.export_template(group, "vmss").template["apiProfile"] == "2018-03-01-hybrid"

    # Redeploying the same template is idempotent: same scale set, same instances.
    again = rc.deployments.begin_create_or_update(group, "vmss", body).result()
    assert again.properties.provisioning_state == "Succeeded"
    assert again.properties.outputs["vmssUniqueId"]["value"] == out["vmssUniqueId"]
    assert len(http.get(f"{out['vmssId']}/virtualMachines?api-version=2017-03-30").json()["value"]) == 2

    # Deleting the deployment removes the history entry, never the resources.
    rc.deployments.begin_delete(group, "vmss").result()
    with pytest.raises(ResourceNotFoundError):
        rc.deployments.get(group, "vmss")
    assert http.get(f"{out['vmssId']}?api-version=2017-03-30").status_code == 200


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_failing_deployment_reports_the_provider_error(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    tpl = template("vmss_hybrid.json")
    # Only the provider's own validation knows the upgrade modes: fails at run time, after the NSGs. (An unknown
    # size is refused by the preflight below, before anything is created.)
    tpl["resources"][1]["properties"]["upgradePolicy"]["mode"] = "Sometimes"
    body = deployment(tpl, vmssName="bad", nsgCount=1)
    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_create_or_update(group, "broken", body).result()
    assert exc.value.error.code == "DeploymentFailed"
    assert [d.code for d in exc.value.error.details] == ["InvalidParameter"]

    failed = rc.deployments.get(group, "broken").properties
    assert failed.provisioning_state == "Failed"
    assert failed.error.code == "DeploymentFailed" and failed.error.details[0].code == "InvalidParameter"
    ops = {
        op.properties.target_resource.resource_name: op.properties
        for op in rc.deployment_operations.list(group, "broken")
    }
    assert ops["bad-nsg1"].provisioning_state == "Succeeded"
    assert ops["bad"].provisioning_state == "Failed" and ops["bad"].status_code == "BadRequest"
    assert ops["bad"].status_message["error"]["target"] == "upgradePolicy.mode"
    listed = rc.deployments.list_by_resource_group(group, filter="provisioningState eq 'Failed'")
    assert [d.name for d in listed] == ["broken"]

    http = cloud.client()
    r = http.post(f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments/broken/cancel?{RES_API}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "DeploymentCannotBeCancelled"


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
@pytest.mark.parametrize("version", ["9.9.9", "latest"])
def test_missing_platform_image_fails_preflight_and_deploys_nothing(
    cloud: AltoServer, version: str, sdk: SdkLine
) -> None:
    """As on Azure Stack Hub: the image must be downloaded first; otherwise not even the NSGs are created."""
    rc, group = client(cloud, sdk)
    params = {"vmssName": "pin", "imageVersion": version, "nsgCount": 2}
    if version == "latest":
        params["imageSku"] = "large"  # allowed by the template, never downloaded by the operator
    body = deployment(template("vmss_hybrid.json"), **params)
    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_validate(group, "pinned", body).result()
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplateDeployment"
    (detail,) = exc.value.error.details
    assert detail.code == "PlatformImageNotFound" and detail.target == "imageReference"
    assert "Contoso:TinyLinux" in detail.message

    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_create_or_update(group, "pinned", body)
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplateDeployment"
    assert rc.deployments.check_existence(group, "pinned") is False
    assert list(rc.resources.list_by_resource_group(group)) == [], "nothing is half-deployed"


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_unoffered_size_and_flexible_mode_fail_preflight_and_deploy_nothing(cloud: AltoServer, sdk: SdkLine) -> None:
    """az vmss create's template creates its network first: a size this cloud does not offer (the current az's
    Standard_D2s_v5) or a Flexible scale set must be refused before any of it exists."""
    rc, group = client(cloud, sdk)
    for change, target, words in (
        ({"sku": "Standard_D2s_v5"}, "sku.name", "Standard_DS1_v2"),
        ({"orchestrationMode": "Flexible"}, "orchestrationMode", "--orchestration-mode Uniform"),
    ):
        tpl = template("vmss_hybrid.json")
        if "sku" in change:
            tpl["resources"][1]["sku"]["name"] = change["sku"]
        else:
            tpl["resources"][1]["properties"]["orchestrationMode"] = change["orchestrationMode"]
        body = deployment(tpl, vmssName="refused", nsgCount=1)
        with pytest.raises(HttpResponseError) as exc:
            rc.deployments.begin_create_or_update(group, "refused", body)
        assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplateDeployment"
        (detail,) = exc.value.error.details
        assert detail.code == "InvalidParameter" and detail.target == target and words in detail.message
    assert list(rc.resources.list_by_resource_group(group)) == [], "nothing is half-deployed"


def test_nested_linked_bom_and_comments(cloud: AltoServer, web: str) -> None:
    rc, group = client(cloud, HYBRID)
    text = (TEMPLATES / "nested_bom_comments.json").read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    # Sent as the file is, inside the request (BOM first, comments and trailing commas kept).
    params = json.dumps({"linkedTemplateUri": {"value": f"{web}/linked_nsg.json"}}).encode()
    raw = b'\xef\xbb\xbf{"properties": {"mode": "Incremental", "parameters": ' + params + b', "template": '
    raw += text[3:] + b"}}"
    result = rc.deployments.begin_create_or_update(group, "nested", raw).result()
    props = result.properties
    assert props.provisioning_state == "Succeeded", props.error
    out = {name: value["value"] for name, value in props.outputs.items()}
    assert out["innerScope"] == "from nested template"
    assert out["outerScope"] == "from parent"
    assert out["innerNsgId"].endswith("/networkSecurityGroups/app-inner")
    assert out["linkedNsg"].endswith("/networkSecurityGroups/app-linked")
    assert len(out["innerGuid"]) == 36
    assert sorted(r.id.rsplit("/", 1)[1] for r in props.output_resources) == ["app-inner", "app-linked", "app-outer"]

    names = {d.name: d for d in rc.deployments.list_by_resource_group(group)}
    assert set(names) == {"nested", "innerDeployment", "outerDeployment", "linkedDeployment"}
    assert names["linkedDeployment"].properties.template_link.uri == f"{web}/linked_nsg.json"
    ops = list(rc.deployment_operations.list(group, "nested"))
    assert {op.properties.target_resource.resource_type for op in ops} == {"Microsoft.Resources/deployments"}
    # The same operations without the providers segment (what the SDK calls) and with it.
    http = cloud.client()
    with_provider = http.get(
        f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments/nested/operations?{RES_API}"
    ).json()["value"]
    assert sorted(o["operationId"] for o in with_provider) == sorted(op.operation_id for op in ops)


def test_linked_templates_by_relative_path(cloud: AltoServer, web: str) -> None:
    """``relativePath`` resolves against the parent's URI at every level (``../`` and sub-folders included)."""
    rc, group = client(cloud, HYBRID)
    link = {"properties": {"mode": "Incremental", "templateLink": {"uri": f"{web}/relative/main.json?sig=abc"}}}
    props = rc.deployments.begin_create_or_update(group, "rel", link).result().properties
    assert props.provisioning_state == "Succeeded", props.error
    assert props.outputs["sibling"]["value"].endswith("/networkSecurityGroups/rel-up")
    assert props.outputs["grandchild"]["value"].endswith("/networkSecurityGroups/rel-child")
    links = {d.name: d.properties.template_link for d in rc.deployments.list_by_resource_group(group)}
    assert links["sibling"].uri == f"{web}/linked_nsg.json?sig=abc", "the parent's query (a SAS token) is reused"
    assert links["grandchild"].uri == f"{web}/relative/nested/grandchild.json?sig=abc"

    inline = deployment(template("relative/main.json"), prefix="inl")
    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_create_or_update(group, "inline", inline)
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidContentLink"
    assert "relativePath" in exc.value.error.message
    assert not [r for r in rc.resources.list_by_resource_group(group) if r.name.startswith("inl")]


def test_validate_reports_template_errors(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    bad = template("malformed_expression.json")
    good = template("nsg_list.json")
    if sdk.speaks("deployments", "2019-10-01"):  # from 2019-10-01 on, validate is a long-running operation
        with pytest.raises(HttpResponseError) as exc:
            rc.deployments.begin_validate(group, "check", deployment(bad)).result()
        assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplate"
        ok = rc.deployments.begin_validate(group, "check", deployment(good, names=["a", "b"])).result()
        assert [r.id.rsplit("/", 1)[1] for r in ok.properties.validated_resources] == ["a", "b"]
    else:
        result = rc.deployments.validate(group, "check", deployment(bad))
        assert result.error.code == "InvalidTemplate"
        ok = rc.deployments.validate(group, "check", deployment(good, names=["a"]))
        assert ok.error is None and ok.properties.provisioning_state == "Succeeded"
    assert rc.deployments.check_existence(group, "check") is False, "validation leaves no history"


def test_template_errors_carry_positions_and_codes(cloud: AltoServer) -> None:
    rc, group = client(cloud, HYBRID)
    http = cloud.client()
    base = f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments"
    text = (TEMPLATES / "malformed_expression.json").read_text()
    raw = '{\n  "properties": {\n    "mode": "Incremental",\n    "template": ' + text + "  }\n}\n"
    line = next(i for i, t in enumerate(raw.splitlines(), 1) if '"name": "[concat(' in t)
    for method, url in (("POST", f"{base}/v/validate?{RES_API}"), ("PUT", f"{base}/v?{RES_API}")):
        r = http.request(method, url, content=raw.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "InvalidTemplate"
        assert error["message"].startswith("Deployment template validation failed:")
        info = error["additionalInfo"][0]
        assert info["type"] == "TemplateViolation"
        assert info["info"]["lineNumber"] == line and info["info"]["linePosition"] > 1
        assert info["info"]["path"] == "resources[0].name"
    assert http.head(f"{base}/v?{RES_API}").status_code == 404, "a template error leaves nothing behind"

    r = http.put(f"{base}/{'x' * 65}?{RES_API}", json=deployment(template("nsg_list.json"), names=["a"]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "DeploymentNameLengthLimitExceeded"


NSG = {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "location": "local"}
SHAPE = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
         "contentVersion": "1.0.0.0"}  # fmt: skip
TYPED = {**SHAPE, "parameters": {"count": {"type": "int"}, "flag": {"type": "bool", "defaultValue": False}}}
BROKEN: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    # name: (template, parameters, error code, a fragment of the message)
    "syntax": (
        {**SHAPE, "resources": [{**NSG, "name": "[concat('a', 'b']"}]},
        {},
        "InvalidTemplate",
        "resources[0].name",
    ),
    "unknown function": (
        {**SHAPE, "resources": [{**NSG, "name": "[frobnicate('a')]"}]},
        {},
        "InvalidTemplate",
        "frobnicate",
    ),
    "missing parameter": ({**TYPED, "resources": []}, {}, "InvalidTemplate", "'count'"),
    "extra parameter": ({**TYPED, "resources": []}, {"count": 1, "colour": "red"}, "InvalidTemplate", "'colour'"),
    "mistyped parameter": ({**TYPED, "resources": []}, {"count": "many"}, "InvalidTemplate", "'count'"),
    "allowedValues": (
        template("nsg_rules.json"),
        {"names": ["a"], "access": "Maybe"},
        "InvalidTemplate",
        "allowed value(s): 'Allow,Deny'",
    ),
    "dependsOn cycle": (
        {**SHAPE, "resources": [{**NSG, "name": "a", "dependsOn": ["b"]}, {**NSG, "name": "b", "dependsOn": ["a"]}]},
        {},
        "InvalidTemplateCircularDependency",
        "circular",
    ),
    "undefined dependsOn": (
        {**SHAPE, "resources": [{**NSG, "name": "a", "dependsOn": ["ghost"]}]},
        {},
        "InvalidTemplate",
        "'ghost' is not defined",
    ),
    "unknown namespace": (
        {**SHAPE, "resources": [{"type": "Contoso.Widgets/widgets", "apiVersion": "2024-01-01", "name": "w"}]},
        {},
        "InvalidResourceNamespace",
        "Contoso.Widgets",
    ),
    "unknown type": (
        {**SHAPE, "resources": [{**NSG, "name": "n"}, {**NSG, "type": "Microsoft.Network/flux", "name": "w"}]},
        {},
        "InvalidResourceType",
        "'flux'",
    ),
    "old api-version": (
        {**SHAPE, "resources": [{**NSG, "apiVersion": "2001-01-01", "name": "n"}]},
        {},
        "NoRegisteredProviderFound",
        "2001-01-01",
    ),
    "failing function in a later resource's body": (
        {
            **SHAPE,
            "resources": [{**NSG, "name": "a"}, {**NSG, "name": "b", "tags": {"x": "[substring('abc', 1, 10)]"}}],
        },
        {},
        "InvalidTemplate",
        "substring",
    ),
    "undefined variable in a body": (
        {**SHAPE, "resources": [{**NSG, "name": "a"}, {**NSG, "name": "b", "tags": {"x": "[variables('nope')]"}}]},
        {},
        "InvalidTemplate",
        "'nope'",
    ),
    "copyIndex outside a loop": (
        {**SHAPE, "resources": [{**NSG, "name": "a"}, {**NSG, "name": "b", "tags": {"x": "[string(copyIndex())]"}}]},
        {},
        "InvalidTemplate",
        "copyIndex",
    ),
    "unknown function in an output": (
        {**SHAPE, "resources": [{**NSG, "name": "a"}], "outputs": {"o": {"type": "string", "value": "[nosuch(1)]"}}},
        {},
        "InvalidTemplate",
        "nosuch",
    ),
    "reference() in a name": (
        {**SHAPE, "resources": [{**NSG, "name": "a"}, {**NSG, "name": "[reference('a').resourceGuid]"}]},
        {},
        "InvalidTemplate",
        "'reference' is not expected",
    ),
    "location not offered": (
        {**SHAPE, "resources": [{**NSG, "name": "a"}, {**NSG, "name": "b", "location": "westus"}]},
        {},
        "LocationNotAvailableForResourceType",
        "westus",
    ),
    "nested deployment in Complete mode": (
        {
            **SHAPE,
            "resources": [
                {**NSG, "name": "a"},
                {
                    "type": "Microsoft.Resources/deployments",
                    "apiVersion": "2019-10-01",
                    "name": "inner",
                    "properties": {"mode": "Complete", "template": {**SHAPE, "resources": []}},
                },
            ],
        },
        {},
        "InvalidTemplate",
        "only use 'Incremental'",
    ),
    "nested template with a mistyped parameter": (
        {
            **SHAPE,
            "resources": [
                {**NSG, "name": "a"},
                {
                    "type": "Microsoft.Resources/deployments",
                    "apiVersion": "2019-10-01",
                    "name": "inner",
                    "properties": {
                        "mode": "Incremental",
                        "expressionEvaluationOptions": {"scope": "inner"},
                        "template": {**TYPED, "resources": []},
                        "parameters": {"count": {"value": "many"}},
                    },
                },
            ],
        },
        {},
        "InvalidTemplate",
        "'count'",
    ),
    "pinned image missing": (
        template("vmss_hybrid.json"),
        {"vmssName": "pin", "imageVersion": "3.2.1", "nsgCount": 1},
        "InvalidTemplateDeployment",
        "Contoso:TinyLinux:base:3.2.1",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_templates_fail_validate_and_deploy_and_deploy_nothing(cloud: AltoServer, case: str) -> None:
    tpl, params, code, fragment = BROKEN[case]
    rc, group = client(cloud, HYBRID)
    http = cloud.client()
    base = f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments"
    for method, url in (("POST", f"{base}/broken/validate?{RES_API}"), ("PUT", f"{base}/broken?{RES_API}")):
        r = http.request(method, url, json=deployment(tpl, **params))
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == code, error
        assert fragment.lower() in json.dumps(error).lower(), error
    assert http.head(f"{base}/broken?{RES_API}").status_code == 404, "no deployment history"
    assert list(rc.resources.list_by_resource_group(group)) == [], "nothing deployed"


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_complete_mode_removes_resources_not_in_the_template(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    tpl = template("nsg_list.json")
    first = rc.deployments.begin_create_or_update(group, "nsgs", deployment(tpl, names=["keep", "extra"])).result()
    assert first.properties.provisioning_state == "Succeeded"
    http = cloud.client()
    nsgs = f"{group_path(cloud, group)}/providers/Microsoft.Network/networkSecurityGroups"
    assert sorted(n["name"] for n in http.get(f"{nsgs}?api-version=2018-11-01").json()["value"]) == ["extra", "keep"]

    second = rc.deployments.begin_create_or_update(group, "nsgs", deployment(tpl, "Complete", names=["keep"])).result()
    assert second.properties.provisioning_state == "Succeeded" and second.properties.mode == "Complete"
    assert [n["name"] for n in http.get(f"{nsgs}?api-version=2018-11-01").json()["value"]] == ["keep"]
    ops = {
        (op.properties.provisioning_operation, op.properties.target_resource.resource_name)
        for op in rc.deployment_operations.list(group, "nsgs")
    }
    assert ops == {("Create", "keep"), ("Delete", "extra")}


def wait(http: Any, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = dict(http.get(url).json())
        if body["status"] not in ("Accepted", "Running"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"deployment still running after {timeout}s")


def test_runtime_evaluation_errors_fail_the_deployment(cloud: AltoServer) -> None:
    _, group = client(cloud, HYBRID)
    http = cloud.client()
    base = f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments"
    nsg = {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "location": "local"}
    tpl = {
        "$schema": "x",
        "contentVersion": "1.0.0.0",
        "resources": [
            {**nsg, "name": "a", "properties": {}},
            {**nsg, "name": "b", "properties": {"k": "[listKeys('a', '2018-11-01').keys[0].value]"}},
            {**nsg, "name": "c", "dependsOn": ["b"], "properties": {}},
        ],
        "outputs": {"never": {"type": "string", "value": "[reference('c').resourceGuid]"}},
    }
    r = http.put(f"{base}/runtime?{RES_API}", json=deployment(tpl))
    assert r.status_code == 201 and r.json()["properties"]["provisioningState"] == "Accepted"
    status = wait(http, r.headers["azure-asyncoperation"])
    assert status["status"] == "Failed" and status["error"]["code"] == "DeploymentFailed"
    (detail,) = status["error"]["details"]
    assert "does not support the action 'listKeys'" in detail["message"]
    assert detail["additionalInfo"][0]["info"]["path"] == "resources[1].properties.k"
    ops = http.get(f"{group_path(cloud, group)}/deployments/runtime/operations?{RES_API}").json()["value"]
    states = {o["properties"]["targetResource"]["resourceName"]: o["properties"]["provisioningState"] for o in ops}
    assert states == {"a": "Succeeded", "b": "Failed"}, "c depends on the failed b and never starts"


BODIES: list[bytes] = [
    b"",
    b"{}",
    b"[]",
    b"null",
    b'{"properties": []}',
    b'{"properties": {"mode": 5}}',
    b'{"properties": {"mode": "Incremental"}}',
    b'{"properties": {"mode": "Incremental", "template": []}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": "x"}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": [5, null]}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": [{"type": 5, "name": ["x"]}]}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": [{"type": "a/b", "name": "n", '
    b'"copy": {"name": "l", "count": "abc"}}]}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": [{"type": "a/b", "name": "n", '
    b'"dependsOn": 5, "condition": "maybe"}]}}}',
    b'{"properties": {"mode": "Incremental", "template": {"parameters": [], "resources": []}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": []}, "parameters": []}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": []}, "parameters": {"x": 5}}}',
    b'{"properties": {"mode": "Incremental", "templateLink": 5}}',
    b'{"properties": {"mode": "Incremental", "templateLink": {"uri": "file:///etc/passwd"}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": [], "outputs": {"o": 5}}}}',
    b'{"properties": {"mode": "Incremental", "template": {"resources": []}}, "tags": []}',
    b'{"properties": {"mode": "Incremental", "template": {"apiProfile": "nope", "resources": []}}}',
]


def test_odd_requests_never_answer_500(cloud: AltoServer) -> None:
    _, group = client(cloud, HYBRID)
    http = cloud.client()
    base = f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments"
    paths = [f"{base}/odd", f"{base}/odd/validate", f"{base}/odd/cancel", f"{base}/odd/exportTemplate",
             f"{group_path(cloud, group)}/deployments/odd/operations/ABC", f"{base}/bad name"]  # fmt: skip
    for path in paths:
        for method in ("GET", "PUT", "POST", "DELETE", "HEAD"):
            for body in BODIES if method in ("PUT", "POST") else [b""]:
                r = http.request(method, f"{path}?{RES_API}&$top=2", content=body)
                assert r.status_code < 500, (method, path, body, r.text)
    r = http.put(f"{base}/odd?{RES_API}", json=deployment({"resources": [], "outputs": {"o": 5}}))
    assert r.status_code == 400 and r.json()["error"]["additionalInfo"][0]["info"]["path"] == "outputs.o"


def test_symbolic_names_existing_and_conditions(cloud: AltoServer) -> None:
    rc, group = client(cloud, HYBRID)
    nsg = {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2018-11-01", "location": "local"}
    first = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": [{**nsg, "name": "base", "properties": {}}]}
    rc.deployments.begin_create_or_update(group, "base", deployment(first)).result()
    tpl = {
        "$schema": "x",
        "contentVersion": "1.0.0.0",
        "languageVersion": "2.0",
        "resources": {
            "base": {**nsg, "name": "base", "existing": True},
            "loop": {**nsg, "name": "[format('n{0}', copyIndex())]", "copy": {"name": "loop", "count": 2}},
            "skipped": {**nsg, "name": "skipped", "condition": False},
            "last": {
                **nsg,
                "name": "last",
                "dependsOn": ["loop", "skipped"],
                "tags": {"guid": "[reference('base').resourceGuid]"},
            },
        },
        "outputs": {
            "count": {"type": "int", "value": "[length(references('loop'))]"},
            "lastId": {"type": "string", "value": "[resourceInfo('last').id]"},
            "second": {"type": "string", "value": "[reference('loop[1]', '2018-11-01', 'Full').name]"},
        },
    }
    result = rc.deployments.begin_create_or_update(group, "symbolic", deployment(tpl)).result()
    props = result.properties
    assert props.provisioning_state == "Succeeded", props.error
    assert props.outputs["count"]["value"] == 2 and props.outputs["second"]["value"] == "n1"
    assert props.outputs["lastId"]["value"].endswith("/networkSecurityGroups/last")
    names = sorted(
        op.properties.target_resource.resource_name for op in rc.deployment_operations.list(group, "symbolic")
    )
    assert names == ["last", "n0", "n1"], "existing and condition-false resources are not deployed"
    http = cloud.client()
    last = http.get(f"{props.outputs['lastId']['value']}?api-version=2018-11-01").json()
    base = http.get(last["id"].replace("/last", "/base") + "?api-version=2018-11-01").json()
    assert last["tags"]["guid"] == base["properties"]["resourceGuid"]


def test_template_hash_and_content_version(cloud: AltoServer, web: str) -> None:
    rc, group = client(cloud, HYBRID)
    tpl = template("nsg_list.json")
    hashed = rc.deployments.calculate_template_hash(tpl)
    assert json.loads(hashed.minified_template) == tpl
    done = rc.deployments.begin_create_or_update(group, "hashed", deployment(tpl, names=["h"])).result()
    assert done.properties.template_hash == hashed.template_hash, "the hash a deployment of it records"

    link = {"uri": f"{web}/nsg_list.json", "contentVersion": "9.9.9.9"}
    body = {"properties": {"mode": "Incremental", "templateLink": link, "parameters": {"names": {"value": ["v"]}}}}
    with pytest.raises(HttpResponseError) as exc:
        rc.deployments.begin_create_or_update(group, "versioned", body)
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidContentLink"
    assert "'9.9.9.9'" in exc.value.error.message and "'1.0.0.0'" in exc.value.error.message
    link["contentVersion"] = "1.0.0.0"
    assert rc.deployments.begin_create_or_update(group, "versioned", body).result().properties.provisioning_state == (
        "Succeeded"
    )
