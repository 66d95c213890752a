"""Deployment, scope and resource functions (docs: template-functions-deployment, -scope, -resource): documented
examples, plus the callbacks the deployment engine supplies for reference(), list*(), providers() and friends."""

from __future__ import annotations

from typing import Any

import pytest

from altostratus.templates import EvaluationContext, TemplateError
from altostratus.templates.context import AZURE_CLOUD_ENVIRONMENT
from tests.support.templates import RG, SUB, context, ev, outputs, template

OTHER_SUB = "11111111-1111-1111-1111-111111111111"


def test_deployment_documented_example() -> None:
    doc = template(outputs={"deploymentOutput": {"type": "Object", "value": "[deployment()]"}})
    del doc["parameters"], doc["variables"]
    result = outputs(doc)["deploymentOutput"]
    assert result["name"] == "deployment"
    assert result["properties"]["template"] == doc
    assert result["properties"]["parameters"] == {}
    assert result["properties"]["mode"] == "Incremental"
    assert result["properties"]["provisioningState"] == "Accepted"
    assert result["properties"]["templateHash"].isdigit()
    assert "templateLink" not in result["properties"]  # a local file: no templateLink, like ARM


def test_deployment_template_link_and_location() -> None:
    ctx = context(template_link={"uri": "https://example.com/t/azuredeploy.json"})
    assert ev("[uri(deployment().properties.templateLink.uri, 'nested/x.json')]", ctx=ctx) == (
        "https://example.com/t/nested/x.json"
    )
    sub_scope = context(resource_group=None, deployment_location="westus")
    assert ev("[deployment().location]", ctx=sub_scope) == "westus"
    with pytest.raises(TemplateError, match="property 'templateLink' doesn't exist"):
        ev("[deployment().properties.templateLink.uri]")


def test_environment_documented_example() -> None:
    assert ev("[environment()]") == AZURE_CLOUD_ENVIRONMENT
    assert ev("[environment().suffixes.storage]") == "core.windows.net"
    stamp = context(environment={"name": "AzureStack", "suffixes": {"storage": "local.azurestack.external"}})
    assert ev("[environment().suffixes.storage]", ctx=stamp) == "local.azurestack.external"


def test_parameters_documented_example() -> None:
    doc = template(
        parameters={
            "stringParameter": {"type": "string", "defaultValue": "option 1"},
            "intParameter": {"type": "int", "defaultValue": 1},
            "objectParameter": {"type": "object", "defaultValue": {"one": "a", "two": "b"}},
            "arrayParameter": {"type": "array", "defaultValue": [1, 2, 3]},
            "crossParameter": {"type": "string", "defaultValue": "[parameters('stringParameter')]"},
        },
        outputs={
            "stringOutput": {"type": "string", "value": "[parameters('stringParameter')]"},
            "intOutput": {"type": "int", "value": "[parameters('intParameter')]"},
            "objectOutput": {"type": "object", "value": "[parameters('objectParameter')]"},
            "arrayOutput": {"type": "array", "value": "[parameters('arrayParameter')]"},
            "crossOutput": {"type": "string", "value": "[parameters('crossParameter')]"},
        },
    )
    assert outputs(doc) == {
        "stringOutput": "option 1",
        "intOutput": 1,
        "objectOutput": {"one": "a", "two": "b"},
        "arrayOutput": [1, 2, 3],
        "crossOutput": "option 1",
    }


def test_variables_documented_example() -> None:
    doc = template(
        variables={
            "var1": "myVariable",
            "var2": [1, 2, 3, 4],
            "var3": "[variables('var1')]",
            "var4": {"property1": "value1", "property2": "value2"},
        },
        outputs={
            "exampleOutput1": {"type": "string", "value": "[variables('var1')]"},
            "exampleOutput2": {"type": "array", "value": "[variables('var2')]"},
            "exampleOutput3": {"type": "string", "value": "[variables('var3')]"},
            "exampleOutput4": {"type": "object", "value": "[variables('var4')]"},
        },
    )
    assert outputs(doc) == {
        "exampleOutput1": "myVariable",
        "exampleOutput2": [1, 2, 3, 4],
        "exampleOutput3": "myVariable",
        "exampleOutput4": {"property1": "value1", "property2": "value2"},
    }


def test_scope_functions_documented_shapes() -> None:
    assert ev("[resourceGroup()]") == {
        "id": f"/subscriptions/{SUB}/resourceGroups/{RG}",
        "name": RG,
        "type": "Microsoft.Resources/resourceGroups",
        "location": "southcentralus",
        "properties": {"provisioningState": "Succeeded"},
    }
    tagged = context(resource_group_tags={"env": "test"}, resource_group_managed_by="/subscriptions/x")
    assert ev("[resourceGroup().tags.env]", ctx=tagged) == "test"
    assert ev("[resourceGroup().managedBy]", ctx=tagged) == "/subscriptions/x"
    assert ev("[subscription()]") == {
        "id": f"/subscriptions/{SUB}",
        "subscriptionId": SUB,
        "tenantId": SUB,
        "displayName": "Default Provider Subscription",
    }
    assert ev("[tenant()]") == {
        "countryCode": "US",
        "displayName": "Default Directory",
        "id": f"/tenants/{SUB}",
        "tenantId": SUB,
    }
    mg = context(
        resource_group=None,
        management_group="examplemg1",
        management_group_display_name="Example MG 1",
        management_group_parent={"displayName": "Tenant Root Group", "id": "/providers/x/root", "name": "root"},
    )
    assert ev("[managementGroup()]", ctx=mg) == {
        "id": "/providers/Microsoft.Management/managementGroups/examplemg1",
        "name": "examplemg1",
        "type": "/providers/Microsoft.Management/managementGroups",
        "properties": {
            "details": {"parent": {"displayName": "Tenant Root Group", "id": "/providers/x/root", "name": "root"}},
            "displayName": "Example MG 1",
        },
    }


def test_scope_functions_out_of_scope() -> None:
    with pytest.raises(TemplateError, match="'resourceGroup' is not expected"):
        ev("[resourceGroup()]", ctx=context(resource_group=None))
    with pytest.raises(TemplateError, match="'managementGroup' is not expected"):
        ev("[managementGroup()]")


def test_case_insensitive_property_access() -> None:
    """Azure Stack templates write ``resourceGroup().Id``; lookups ignore case, results keep it."""
    assert ev("[resourceGroup().Id]") == f"/subscriptions/{SUB}/resourceGroups/{RG}"
    assert ev("[resourceGroup()['LOCATION']]") == "southcentralus"


RESOURCE_ID_EXAMPLES: list[tuple[str, str]] = [
    # resourceid.json
    (
        "[resourceId('Microsoft.Storage/storageAccounts','examplestorage')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Storage/storageAccounts/examplestorage",
    ),
    (
        "[resourceId('otherResourceGroup', 'Microsoft.Storage/storageAccounts','examplestorage')]",
        f"/subscriptions/{SUB}/resourceGroups/otherResourceGroup/providers/Microsoft.Storage/storageAccounts/"
        "examplestorage",
    ),
    (
        f"[resourceId('{OTHER_SUB}', 'otherResourceGroup', 'Microsoft.Storage/storageAccounts','examplestorage')]",
        f"/subscriptions/{OTHER_SUB}/resourceGroups/otherResourceGroup/providers/Microsoft.Storage/storageAccounts/"
        "examplestorage",
    ),
    (
        "[resourceId('Microsoft.SQL/servers/databases', 'serverName', 'databaseName')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.SQL/servers/serverName/databases/"
        "databaseName",
    ),
    # remarks: namespace with a child type and three names
    (
        "[resourceId('Microsoft.ServiceBus/namespaces/queues/authorizationRules', 'namespace1', 'queue1', 'auth1')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.ServiceBus/namespaces/namespace1/queues/"
        "queue1/authorizationRules/auth1",
    ),
    # real templates: trailing slash on the type (vmss-public-ip-linux), whitespace (vmss-ubuntu-web-ssl)
    (
        "[resourceId('Microsoft.Network/loadBalancers/backendAddressPools/', 'lb', 'bepool')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Network/loadBalancers/lb/"
        "backendAddressPools/bepool",
    ),
    (
        "[resourceId( 'Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default' )]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Network/virtualNetworks/vnet/subnets/"
        "default",
    ),
    (
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet/default')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Network/virtualNetworks/vnet/subnets/"
        "default",
    ),
    # extensionresourceid.json (resource group lock)
    (
        "[extensionResourceId(resourceGroup().Id , 'Microsoft.Authorization/locks', 'lockName')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Authorization/locks/lockName",
    ),
    (
        "[extensionResourceId(resourceId('Microsoft.Web/sites', 'site'), 'Microsoft.Authorization/locks', 'l')]",
        f"/subscriptions/{SUB}/resourceGroups/examplegroup/providers/Microsoft.Web/sites/site/providers/"
        "Microsoft.Authorization/locks/l",
    ),
    # subscriptionresourceid.json (built-in role definition)
    (
        "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]",
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
    ),
    (
        f"[subscriptionResourceId('{OTHER_SUB}', 'Microsoft.Resources/resourceGroups', 'rg2')]",
        f"/subscriptions/{OTHER_SUB}/providers/Microsoft.Resources/resourceGroups/rg2",
    ),
    # tenantresourceid.json (built-in policy definition)
    (
        "[tenantResourceId('Microsoft.Authorization/policyDefinitions', '0a914e76-4921-4c19-b460-a2d36003525a')]",
        "/providers/Microsoft.Authorization/policyDefinitions/0a914e76-4921-4c19-b460-a2d36003525a",
    ),
    (
        "[tenantResourceId('Microsoft.Management/managementGroups', 'targetMG')]",
        "/providers/Microsoft.Management/managementGroups/targetMG",
    ),
    # managementGroupResourceId with an explicit management group
    (
        "[managementGroupResourceId('targetMG', 'Microsoft.Authorization/policyDefinitions', 'LocationRestriction')]",
        "/providers/Microsoft.Management/managementGroups/targetMG/providers/Microsoft.Authorization/"
        "policyDefinitions/LocationRestriction",
    ),
]


@pytest.mark.parametrize(
    ("expression", "expected"), RESOURCE_ID_EXAMPLES, ids=[r[0][:60] for r in RESOURCE_ID_EXAMPLES]
)
def test_resource_id_documented_example(expression: str, expected: str) -> None:
    assert ev(expression) == expected


def test_resource_id_with_a_child_name_folded_into_the_type() -> None:
    """Azure quickstart multi-vmss-linux-lb-zones: the probe's name is part of the type argument."""
    assert ev("[resourceId('Microsoft.Network/loadBalancers/probes/tcpProbe', 'lb')]") == (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/loadBalancers/lb/probes/tcpProbe"
    )
    assert ev("[resourceId('Microsoft.Network/loadBalancers', 'lb', 'probes', 'p')]").endswith("/lb/probes/p")


def test_resource_id_at_other_scopes() -> None:
    sub_scope = context(resource_group=None)
    assert ev("[resourceId('Microsoft.Resources/resourceGroups', 'rg1')]", ctx=sub_scope) == (
        f"/subscriptions/{SUB}/providers/Microsoft.Resources/resourceGroups/rg1"
    )
    assert ev("[resourceId('rg1', 'Microsoft.Storage/storageAccounts', 's')]", ctx=sub_scope) == (
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/s"
    )
    mg = context(resource_group=None, management_group="targetMG")
    assert ev("[resourceId('Microsoft.Authorization/policyDefinitions', 'p')]", ctx=mg) == (
        "/providers/Microsoft.Authorization/policyDefinitions/p"
    )
    assert ev("[managementGroupResourceId('Microsoft.Authorization/policyDefinitions', 'p')]", ctx=mg) == (
        "/providers/Microsoft.Management/managementGroups/targetMG/providers/Microsoft.Authorization/"
        "policyDefinitions/p"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet')]", "requires '2' resource name argument(s)"),
        ("[resourceId('storageAccounts', 'x')]", "not fully qualified"),
        ("[resourceId('a', 'b', 'c', 'Microsoft.Storage/storageAccounts', 'x')]", "not fully qualified"),
        ("[resourceId('Microsoft.Storage/storageAccounts', 1)]", "of type 'String'"),
        ("[extensionResourceId('rg', 'Microsoft.Authorization/locks', 'l')]", "not a fully qualified id"),
        ("[managementGroupResourceId('Microsoft.Authorization/policyDefinitions', 'p')]", "not at management group"),
    ],
)
def test_resource_id_errors(expression: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        ev(expression)
    assert message in err.value.message


def _storage_state(name: str, api_version: str | None, full: bool) -> Any:
    properties = {"primaryEndpoints": {"blob": f"https://{name.rsplit('/', 1)[-1]}.blob.core.windows.net/"}}
    if full:
        return {"apiVersion": api_version, "location": "southcentralus", "properties": properties}
    return properties


def test_reference_through_callback() -> None:
    calls: list[tuple[str, str | None, bool]] = []

    def reference(name: str, api_version: str | None, full: bool) -> Any:
        calls.append((name, api_version, full))
        return _storage_state(name, api_version, full)

    ctx = context(reference=reference, phase="resources")
    # The Azure Stack VMSS pattern: type/name + providers() api version, then .primaryEndpoints.blob
    ctx.providers = lambda ns, rtype: {"resourceType": rtype, "locations": ["local"], "apiVersions": ["2016-01-01"]}
    value = ev(
        "[reference(concat('Microsoft.Storage/storageAccounts/', 'sa1'), "
        "providers('Microsoft.Storage', 'storageAccounts').apiVersions[0]).primaryEndpoints.blob]",
        ctx=ctx,
    )
    assert value == "https://sa1.blob.core.windows.net/"
    assert ev("[reference('sa2', '2022-09-01', 'Full').location]", ctx=ctx) == "southcentralus"
    assert calls == [("Microsoft.Storage/storageAccounts/sa1", "2016-01-01", False), ("sa2", "2022-09-01", True)]


def test_runtime_state_functions_are_rejected_where_arm_rejects_them() -> None:
    def reference(name: str, api_version: str | None, full: bool) -> Any:
        return {}

    for phase in ("parameters", "variables", "function", "resource-header"):
        with pytest.raises(TemplateError, match="'reference' is not expected at this location"):
            ev("[reference('x')]", ctx=context(reference=reference, phase=phase))
        with pytest.raises(TemplateError, match="'listKeys' is not expected at this location"):
            ev("[listKeys('x', '2019-06-01')]", ctx=context(phase=phase))
    with pytest.raises(TemplateError, match="'reference' is not expected"):
        ev("[reference('x')]", ctx=context(phase="resources"))  # no callback: not available here


def test_list_functions_through_callback() -> None:
    seen: list[tuple[str, str, str | None, Any]] = []

    def list_action(function: str, target: str, api_version: str | None, values: Any) -> Any:
        seen.append((function, target, api_version, values))
        return {"keys": [{"value": "key1"}], "accountSasToken": "sv=1"}

    ctx = context(list_action=list_action, phase="resources")
    assert (
        ev("[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa'), '2019-06-01').keys[0].value]", ctx=ctx)
        == "key1"
    )
    sas = ev(
        "[listAccountSas('sa', '2018-02-01', createObject('signedExpiry', '2020-08-20T11:00:00Z')).accountSasToken]",
        ctx=ctx,
    )
    assert sas == "sv=1"
    assert ev("[LISTSECRETS('sa', '2019-01-01').keys[0].value]", ctx=ctx) == "key1"
    assert [s[0] for s in seen] == ["listKeys", "listAccountSas", "LISTSECRETS"]
    assert seen[1][3] == {"signedExpiry": "2020-08-20T11:00:00Z"}
    with pytest.raises(TemplateError, match="between 2 and 3 argument"):
        ev("[listKeys('sa')]", ctx=ctx)


def test_providers_references_resource_info_through_callbacks() -> None:
    ctx = context(
        phase="resources",
        providers=lambda ns, rtype: {"resourceType": rtype, "locations": ["local"], "apiVersions": ["2017-10-01"]},
        references=lambda name, full: [{"name": f"{name}[0]", "full": full}],
        resource_info=lambda name: {
            "apiVersion": "2023-01-01",
            "id": "/x",
            "name": name,
            "type": "A/b",
            "resourceGroup": RG,
        },
    )
    assert ev("[providers('Microsoft.Network', 'virtualNetworks').apiVersions[0]]", ctx=ctx) == "2017-10-01"
    assert ev("[references('workers', 'Full')]", ctx=ctx) == [{"name": "workers[0]", "full": True}]
    assert ev("[references('workers')]", ctx=ctx) == [{"name": "workers[0]", "full": False}]
    assert ev("[resourceInfo('vnet').name]", ctx=ctx) == "vnet"
    for expression in ("[providers('Microsoft.Network')]", "[references('w')]", "[resourceInfo('v')]"):
        with pytest.raises(TemplateError, match="is not expected at this location"):
            ev(expression, ctx=context(phase="resources"))


def test_pick_zones_documented_example() -> None:
    """pickzones.json: westus2 supports zones for VMs, northcentralus does not, Cdn profiles are not zonal."""

    def zones(ns: str, rtype: str, location: str) -> list[str]:
        zonal = ns.casefold() == "microsoft.compute" and location.casefold() == "westus2"
        return ["1", "2", "3"] if zonal else []

    ctx = context(zones=zones)
    assert ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2')]", ctx=ctx) == ["1"]
    assert ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'northcentralus')]", ctx=ctx) == []
    assert ev("[pickZones('Microsoft.Cdn', 'profiles', 'westus2')]", ctx=ctx) == []
    assert ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2', 3)]", ctx=ctx) == ["1", "2", "3"]
    assert ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2', 2, 1)]", ctx=ctx) == ["2", "3"]
    assert ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'local')]") == []  # Azure Stack Hub: no zones
    with pytest.raises(TemplateError, match="exceeds"):
        ev("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2', 3, 1)]", ctx=ctx)


def test_reference_full_flag_validation() -> None:
    ctx = EvaluationContext(reference=lambda n, v, f: {}, phase="resources")
    with pytest.raises(TemplateError, match="must be 'Full'"):
        ev("[reference('x', '2020-01-01', 'Everything')]", ctx=ctx)
