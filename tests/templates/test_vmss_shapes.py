"""A template written in the shape of the Azure Stack VMSS quickstarts (BOM, comments, apiProfile, String/Int/
SecureString parameters with expression defaults, a storage copy loop, ``vhdContainers`` read through ``reference()``
+ ``providers()``, NAT pools, ``customData``), evaluated resource by resource the way the deployment engine will."""

from __future__ import annotations

import base64
from typing import Any

from altostratus.templates import EvaluationContext, evaluate, evaluate_outputs, prepare, read_template
from altostratus.templates.hashing import unique_string

SUB = "6b5dc0b4-8d9f-4a55-a3b4-5e6f0a0b1c2d"

TEMPLATE = """\ufeff{
  "$schema": "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",
  "contentVersion": "1.0.0.0",
  "apiProfile": "2018-03-01-hybrid",
  "parameters": {
    "vmssName": {
      "type": "String",
      "defaultValue": "[substring(concat('vmss', uniquestring(replace(resourceGroup().Id,'-',''))), 0, 8)]"
    },
    "instanceCount": { "type": "Int", "defaultValue": 2, "maxValue": 100 },
    "adminPassword": { "type": "SecureString", "defaultValue": "[concat('Subscription#', subscription().subscriptionId)]" },
    "osImageSku": { "type": "String", "defaultValue": "16.04-LTS", "allowedValues": ["14.04.3-LTS", "16.04-LTS"] }
  },
  "variables": {
    "saCount": 3,
    "storageAccountSuffix": "[toLower(concat(parameters('vmssName'), 'sa'))]",
    "uniqueStringArray": [
      "[concat(variables('storageAccountSuffix'), '0')]",
      "[concat(variables('storageAccountSuffix'), '1')]",
      "[concat(variables('storageAccountSuffix'), '2')]"
    ],
    "lbName": "[concat(parameters('vmssName'), 'lb')]",
    "lbID": "[resourceId('Microsoft.Network/loadBalancers', variables('lbName'))]",
    "natPoolName": "[concat(parameters('vmssName'), 'natpool')]",
    "frontEndIPConfigID": "[concat(variables('lbID'), '/frontendIPConfigurations/loadBalancerFrontEnd')]",
    // the quickstarts embed cloud-config in an expression, newlines and all
    "customData": "[base64(concat('#cloud-config\\npackages:\\n  - nginx\\n', 'hostname: ', parameters('vmssName')))]"
  },
  "resources": [
    {
      "type": "Microsoft.Storage/storageAccounts",
      "name": "[variables('uniqueStringArray')[copyIndex()]]",
      "location": "[resourceGroup().location]",
      "copy": { "name": "storageLoop", "count": "[variables('saCount')]" },
      "properties": { "accountType": "Standard_LRS" }
    },
    {
      "type": "Microsoft.Compute/virtualMachineScaleSets",
      "name": "[parameters('vmssName')]",
      "location": "[resourceGroup().location]",
      "dependsOn": [
        "storageLoop",
        "[concat('Microsoft.Network/loadBalancers/', variables('lbName'))]"
      ],
      "sku": { "name": "Standard_A1", "tier": "Standard", "capacity": "[parameters('instanceCount')]" },
      "properties": {
        "overprovision": "true",
        "upgradePolicy": { "mode": "Manual" },
        "virtualMachineProfile": {
          "storageProfile": {
            "osDisk": {
              "vhdContainers": [
                "[concat(reference(concat('Microsoft.Storage/storageAccounts/', variables('uniqueStringArray')[0]), providers('Microsoft.Storage', 'storageAccounts').apiVersions[0]).primaryEndpoints.blob, 'vhds')]",
                "[concat(reference(concat('Microsoft.Storage/storageAccounts/', variables('uniqueStringArray')[1]), providers('Microsoft.Storage', 'storageAccounts').apiVersions[0]).primaryEndpoints.blob, 'vhds')]"
              ],
              "name": "vmssosdisk", "caching": "ReadOnly", "createOption": "FromImage"
            },
            "imageReference": { "publisher": "Canonical", "offer": "UbuntuServer", "sku": "[parameters('osImageSku')]",
                                "version": "latest" }
          },
          "osProfile": {
            "computerNamePrefix": "[parameters('vmssName')]",
            "adminUsername": "azureuser",
            "adminPassword": "[parameters('adminPassword')]",
            "customData": "[variables('customData')]",
            "linuxConfiguration": "[if(equals(parameters('osImageSku'), '16.04-LTS'), json('null'), json('{}'))]"
          },
          "networkProfile": {
            "networkInterfaceConfigurations": [{
              "name": "nic",
              "properties": {
                "primary": "true",
                "ipConfigurations": [{
                  "name": "ipconfig",
                  "properties": {
                    "subnet": { "id": "[concat('/subscriptions/', subscription().subscriptionId,'/resourceGroups/', resourceGroup().name, '/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default')]" },
                    "loadBalancerInboundNatPools": [{ "id": "[concat(variables('lbID'), '/inboundNatPools/', variables('natPoolName'))]" }]
                  }
                }]
              }
            }]
          }
        }
      }
    }
  ],
  "outputs": {
    "vmssName": { "type": "string", "value": "[parameters('vmssName')]" },
    "firstBlob": { "type": "string", "value": "[reference(concat('Microsoft.Storage/storageAccounts/',
        variables('uniqueStringArray')[0])).primaryEndpoints.blob]" }
  }
}
"""  # noqa: E501 - real templates have long expressions


def _context() -> EvaluationContext:
    def reference(name: str, api_version: str | None, full: bool) -> Any:
        account = name.rsplit("/", 1)[-1]
        return {"primaryEndpoints": {"blob": f"https://{account}.blob.local.azurestack.external/"}}

    return EvaluationContext(
        subscription_id=SUB,
        resource_group="vmss-rg",
        resource_group_location="local",
        reference=reference,
        providers=lambda ns, rtype: {"resourceType": rtype, "locations": ["local"], "apiVersions": ["2016-01-01"]},
    )


def test_vmss_shaped_template() -> None:
    doc, source = read_template(TEMPLATE.encode("utf-8"))
    ctx = prepare(doc, {"instanceCount": "3"}, _context(), source=source)
    name = ("vmss" + unique_string(f"/subscriptions/{SUB}/resourceGroups/vmss-rg".replace("-", "")))[:8]

    storage, vmss = doc["resources"]
    accounts = [
        evaluate(storage["name"], ctx.with_copy_index("storageLoop", i, current=True), "resources[0].name")
        for i in range(evaluate(storage["copy"]["count"], ctx))
    ]
    assert accounts == [f"{name}sa0", f"{name}sa1", f"{name}sa2"]

    body = evaluate(vmss, ctx, "resources[1]", drop_nulls=True)
    assert body["name"] == name
    assert body["dependsOn"] == ["storageLoop", f"Microsoft.Network/loadBalancers/{name}lb"]
    assert body["sku"]["capacity"] == 3
    profile = body["properties"]["virtualMachineProfile"]
    assert profile["storageProfile"]["osDisk"]["vhdContainers"] == [
        f"https://{name}sa0.blob.local.azurestack.external/vhds",
        f"https://{name}sa1.blob.local.azurestack.external/vhds",
    ]
    os_profile = profile["osProfile"]
    assert os_profile["adminPassword"] == f"Subscription#{SUB}"
    assert "linuxConfiguration" not in os_profile  # json('null') means "absent"
    assert base64.b64decode(os_profile["customData"]).decode() == (
        f"#cloud-config\npackages:\n  - nginx\nhostname: {name}"
    )
    ip_config = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]
    assert ip_config["properties"]["loadBalancerInboundNatPools"][0]["id"] == (
        f"/subscriptions/{SUB}/resourceGroups/vmss-rg/providers/Microsoft.Network/loadBalancers/{name}lb/"
        f"inboundNatPools/{name}natpool"
    )
    assert ip_config["properties"]["subnet"]["id"].startswith(f"/subscriptions/{SUB}/resourceGroups/vmss-rg/")

    assert evaluate_outputs(doc["outputs"], ctx) == {
        "vmssName": {"type": "String", "value": name},
        "firstBlob": {"type": "String", "value": f"https://{name}sa0.blob.local.azurestack.external/"},
    }
