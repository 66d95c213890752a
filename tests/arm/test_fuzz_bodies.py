"""Property-based fuzzing of request bodies over HTTPS against one running server.

For the operations this cloud serves (resource groups, scale sets and their instance actions, deployments, the
admin subscriptions and principals APIs), bodies mutated from valid ones (tests/support/fuzz.py) must get success
or an ARM error - never a 5xx - and a refused write must leave nothing behind. CI runs a fixed, derandomised sample
(``ALTO_FUZZ_EXAMPLES``, 100 per operation); docs/security.md describes the long run before a release.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.arm import RG_API
from tests.support.fuzz import FUZZ, check_answer, dumps, mutated
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

JSON = {"Content-Type": "application/json"}
ADMIN_API = "api-version=2015-11-01"
IDENTITY_API = "api-version=2024-01-01"
VM_ACTIONS = ["restart", "start", "powerOff", "deallocate", "reimage", "redeploy", "manualupgrade", "delete"]
TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"prefix": {"type": "string", "defaultValue": "fz", "maxLength": 10}},
    "variables": {"name": "[concat(parameters('prefix'), 'nsg')]"},
    "resources": [
        {
            "type": "Microsoft.Network/networkSecurityGroups",
            "apiVersion": "2020-06-01",
            "name": "[variables('name')]",
            "location": "[resourceGroup().location]",
            "properties": {"securityRules": []},
        }
    ],
    "outputs": {"name": {"type": "string", "value": "[variables('name')]"}},
}
DEPLOYMENT = {"properties": {"mode": "Incremental", "template": TEMPLATE, "parameters": {"prefix": {"value": "ab"}}}}


class Cloud:
    """The one server of this module, with an image to build scale sets from and a group and a set to update."""

    def __init__(self, tmp: Path) -> None:
        upstream = make_catalog(tmp / "upstream")
        self.server = AltoServer(tmp / "data", extra_args=("--upstream", str(upstream))).start()
        operator = Operator(self.server)
        assert operator.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        operator.http.close()
        self.tenant = Tenant(self.server, unique("fuzz"))
        self.http = self.tenant.http
        self.operator = self.server.client("operator")
        self.sub = self.tenant.sub
        self.group_url = f"/subscriptions/{self.sub}/resourcegroups/{self.tenant.group}"
        for namespace in ("Microsoft.Network", "Microsoft.Resources"):
            self.http.post(f"/subscriptions/{self.sub}/providers/{namespace}/register?{RG_API}").raise_for_status()
        self.tenant.create("keep", vmss_body(1))
        op_sub = self.server.credentials["operator"]["subscriptionId"]
        self.admin_subs = f"/subscriptions/{op_sub}/providers/Microsoft.Subscriptions.Admin/subscriptions"
        self.principals = f"/subscriptions/{op_sub}/providers/Altostratus.Identity.Admin/principals"

    def close(self) -> None:
        self.http.close()
        self.operator.close()
        self.server.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = Cloud(tmp_path_factory.mktemp("fuzz"))
    yield c
    c.close()


def send(http: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    r = http.request(method, url, content=dumps(body), headers=JSON)
    check_answer(r, f"{method} {url} {dumps(body)[:300]!r}")
    return r


def refused(r: httpx.Response) -> bool:
    return 400 <= r.status_code < 500


def resource_ids(cloud: Cloud) -> set[str]:
    return {r["id"] for r in cloud.http.get(f"{cloud.group_url}/resources?{RG_API}").json()["value"]}


def state(http: httpx.Client, url: str) -> Any:
    """A resource as GET shows it, minus what changes on its own (a running operation's state)."""
    body = http.get(url).json()
    if isinstance(body.get("properties"), dict):
        body["properties"].pop("provisioningState", None)
    return body


@FUZZ
@given(body=mutated({"location": "local", "tags": {"env": "fuzz"}, "managedBy": "/subscriptions/x"}))
def test_resource_group_put(cloud: Cloud, body: Any) -> None:
    url = f"/subscriptions/{cloud.sub}/resourcegroups/{unique('fz')}?{RG_API}"
    if refused(send(cloud.http, "PUT", url, body)):
        assert cloud.http.get(url).status_code == 404


@FUZZ
@given(body=mutated({"tags": {"env": "fuzz"}, "managedBy": "/subscriptions/x"}))
def test_resource_group_patch(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.group_url}?{RG_API}"
    before = state(cloud.http, url)
    if refused(send(cloud.http, "PATCH", url, body)):
        assert state(cloud.http, url) == before


@FUZZ
@given(body=mutated(vmss_body(0)))
def test_scale_set_put(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.tenant.base}/{unique('fz')}?{COMPUTE}"
    resources = resource_ids(cloud)
    if refused(send(cloud.http, "PUT", url, body)):
        assert cloud.http.get(url).status_code == 404
        assert resource_ids(cloud) == resources


@FUZZ
@given(body=mutated({"sku": {"capacity": 1}, "tags": {"a": "b"}, "properties": {"upgradePolicy": {"mode": "Manual"}}}))
def test_scale_set_patch(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.tenant.base}/keep?{COMPUTE}"
    before = state(cloud.http, url)
    if refused(send(cloud.http, "PATCH", url, body)):
        assert state(cloud.http, url) == before


@FUZZ
@given(verb=st.sampled_from(VM_ACTIONS), body=mutated({"instanceIds": ["0", "1"]}))
def test_scale_set_instance_actions(cloud: Cloud, verb: str, body: Any) -> None:
    # Instance ids are mutated too, so most are refused; "delete" of a real instance is allowed to succeed.
    send(cloud.http, "POST", f"{cloud.tenant.base}/keep/{verb}?{COMPUTE}", body)


@FUZZ
@given(body=mutated(DEPLOYMENT), validate=st.booleans())
def test_deployment_put_and_validate(cloud: Cloud, body: Any, validate: bool) -> None:
    url = f"{cloud.group_url}/providers/Microsoft.Resources/deployments/{unique('fz')}"
    if validate:
        send(cloud.http, "POST", f"{url}/validate?{RG_API}", body)
    elif refused(send(cloud.http, "PUT", f"{url}?{RG_API}", body)):
        assert cloud.http.get(f"{url}?{RG_API}").status_code == 404


@FUZZ
@given(
    body=mutated(
        {"properties": {"displayName": "fuzz", "owner": "OWNER", "offerId": "default-offer", "state": "Enabled"}}
    )
)
def test_admin_subscription_put(cloud: Cloud, body: Any) -> None:
    owner = cloud.server.credentials["tenant"]["clientId"]
    body = _replace(body, "OWNER", owner)
    url = f"{cloud.admin_subs}/{uuid.uuid4()}?{ADMIN_API}"
    if refused(send(cloud.operator, "PUT", url, body)):
        assert cloud.operator.get(url).status_code == 404


@FUZZ
@given(body=mutated({"properties": {"displayName": "fuzz", "role": "tenant"}}))
def test_admin_principal_put(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.principals}/{uuid.uuid4()}?{IDENTITY_API}"
    if refused(send(cloud.operator, "PUT", url, body)):
        assert cloud.operator.get(url).status_code == 404


PLAN = {"properties": {"displayName": "fuzz", "description": "d", "quotaIds": [
    "/subscriptions/s/providers/Microsoft.Compute.Admin/locations/local/quotas/Default Quota",
    "/subscriptions/s/providers/Microsoft.Network.Admin/locations/local/quotas/Default Quota",
]}}  # fmt: skip
OFFER_BODY = {"properties": {"displayName": "fuzz", "state": "Public", "basePlanIds": ["default-plan"],
                             "addonPlans": [{"planId": "default-plan", "maxAcquisitionCount": 2}]}}  # fmt: skip


@FUZZ
@given(
    body=mutated(PLAN), offer=mutated(OFFER_BODY), link=mutated({"planName": "default-plan", "planLinkType": "Addon"})
)
def test_admin_plan_offer_and_link(cloud: Cloud, body: Any, offer: Any, link: Any) -> None:
    base = cloud.admin_subs.split("/providers/")[0] + "/resourceGroups/fuzz/providers/Microsoft.Subscriptions.Admin"
    plan_url = f"{base}/plans/{unique('p')}?{ADMIN_API}"
    if refused(send(cloud.operator, "PUT", plan_url, body)):
        assert cloud.operator.get(plan_url).status_code == 404
    offer_url = f"{base}/offers/{unique('o')}?{ADMIN_API}"
    if refused(send(cloud.operator, "PUT", offer_url, offer)):
        assert cloud.operator.get(offer_url).status_code == 404
    else:
        send(cloud.operator, "POST", offer_url.replace("?", "/link?"), link)


@FUZZ
@given(body=mutated({"displayName": "fuzz", "offerId": "/delegatedProviders/default/offers/default-offer"}))
def test_tenant_subscription_put(cloud: Cloud, body: Any) -> None:
    url = f"/subscriptions/{uuid.uuid4()}?{ADMIN_API}"
    if refused(send(cloud.http, "PUT", url, body)):
        assert cloud.http.get(url.replace(ADMIN_API, "api-version=2020-01-01")).status_code == 404


@FUZZ
@given(body=mutated({"properties": {"roleDefinitionId": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "principalId": "P"}}))
def test_role_assignment_put(cloud: Cloud, body: Any) -> None:
    body = _replace(body, "P", cloud.server.credentials["operator"]["clientId"])
    url = f"{cloud.group_url}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}?api-version=2022-04-01"
    if refused(send(cloud.http, "PUT", url, body)):
        assert cloud.http.get(url).status_code == 404


def _replace(value: Any, old: str, new: str) -> Any:
    """``value`` with every string ``old`` replaced by ``new`` (the owner is only known once the server runs)."""
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value
