"""Property-based fuzzing of request bodies over HTTPS against one running server per database.

For the operations this cloud serves (resource groups, scale sets, their instances and instance actions,
deployments with validate and what-if, the admin subscriptions, principals, compute quotas and platform-image
APIs), bodies mutated from valid ones (tests/support/fuzz.py) must get success or an ARM error - never a 5xx - and
a refused write must leave nothing behind. Every test runs against SQLite and against PostgreSQL
(ALTO_TEST_POSTGRES_URL): a column type or a text rule one database has and the other lacks is a 500 on only one
of them. CI runs a fixed, derandomised sample (``ALTO_FUZZ_EXAMPLES``, 100 per operation); docs/api-conventions.md
("Fuzzing") describes the long run before a release and records the last one.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.arm import RG_API
from tests.support.fuzz import FUZZ, check_answer, dumps, mutated, path_names
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

JSON = {"Content-Type": "application/json"}
ADMIN_API = "api-version=2015-11-01"
IDENTITY_API = "api-version=2024-01-01"
QUOTA_API = "api-version=2018-02-09"
IMAGE_API = "api-version=2015-12-01-preview"
IMAGE_VERSIONS = itertools.count(1)
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

    def __init__(self, tmp: Path, database_url: str | None) -> None:
        upstream = make_catalog(tmp / "upstream")
        self.server = AltoServer(tmp / "data", database_url, extra_args=("--upstream", str(upstream))).start()
        operator = Operator(self.server)
        assert operator.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        operator.http.close()
        self.tenant = Tenant(self.server, unique("fuzz"))
        self.http = self.tenant.http
        self.operator = self.server.client("operator")
        self.sub = self.tenant.sub
        self.group_url = f"/subscriptions/{self.sub}/resourcegroups/{self.tenant.group}"
        # validate and what-if run here: no deployment is ever PUT into it, so its resource list stays still
        self.quiet_url = f"/subscriptions/{self.sub}/resourcegroups/{unique('quiet')}"
        self.http.put(f"{self.quiet_url}?{RG_API}", json={"location": "local"}).raise_for_status()
        for namespace in ("Microsoft.Network", "Microsoft.Resources"):
            self.http.post(f"/subscriptions/{self.sub}/providers/{namespace}/register?{RG_API}").raise_for_status()
        self.tenant.create("keep", vmss_body(1))
        self.tenant.create("steady", vmss_body(1))  # its instance is PUT, never acted on
        self.steady_vm = f"{self.tenant.base}/steady/virtualMachines/{self.tenant.vms('steady')[0]['instanceId']}"
        op_sub = self.server.credentials["operator"]["subscriptionId"]
        self.admin_subs = f"/subscriptions/{op_sub}/providers/Microsoft.Subscriptions.Admin/subscriptions"
        self.principals = f"/subscriptions/{op_sub}/providers/Altostratus.Identity.Admin/principals"
        self.quotas = f"/subscriptions/{op_sub}/providers/Microsoft.Compute.Admin/locations/local/quotas"
        self.images = (
            f"/subscriptions/{op_sub}/providers/Microsoft.Compute.Admin/locations/local/artifactTypes/platformImage"
            "/publishers/{publisher}/offers/FuzzOffer/skus/fuzz/versions"
        )

    def close(self) -> None:
        self.http.close()
        self.operator.close()
        self.server.close()


@contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None for the embedded SQLite default; for PostgreSQL a fresh database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    import psycopg

    admin = os.environ.get("ALTO_TEST_POSTGRES_URL")
    if not admin:
        pytest.fail("ALTO_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL.")
    name = f"alto_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One server per database for the whole module (select one with ``-k sqlite`` / ``-k postgresql``)."""
    with database(request.param) as url:
        c = Cloud(tmp_path_factory.mktemp("fuzz"), url)
        try:
            yield c
        finally:
            c.close()


def send(http: httpx.Client, method: str, url: str, body: Any) -> httpx.Response:
    r = http.request(method, url, content=dumps(body), headers=JSON)
    check_answer(r, f"{method} {url} {dumps(body)[:300]!r}")
    return r


def assert_absent(http: httpx.Client, url: str) -> None:
    """What a refused PUT named is not there: 404, or 400 for a name the API refuses even to look up."""
    r = http.get(url)
    check_answer(r, f"GET {url}")
    assert r.status_code in (400, 404), f"GET {url}: {r.status_code} {r.text[:300]}"


def refused(r: httpx.Response) -> bool:
    return 400 <= r.status_code < 500


def resource_ids(cloud: Cloud, group_url: str | None = None) -> set[str]:
    url = f"{group_url or cloud.group_url}/resources?{RG_API}"
    return {r["id"] for r in cloud.http.get(url).json()["value"]}


def state(http: httpx.Client, url: str) -> Any:
    """A resource as GET shows it, minus what changes on its own (a running operation's state)."""
    body = http.get(url).json()
    if isinstance(body.get("properties"), dict):
        body["properties"].pop("provisioningState", None)
    return body


@FUZZ
@given(body=mutated({"location": "local", "tags": {"env": "fuzz"}, "managedBy": "/subscriptions/x"}), name=path_names())
def test_resource_group_put(cloud: Cloud, body: Any, name: str) -> None:
    url = f"/subscriptions/{cloud.sub}/resourcegroups/{name}?{RG_API}"
    if refused(send(cloud.http, "PUT", url, body)):
        assert_absent(cloud.http, url)


@FUZZ
@given(body=mutated({"tags": {"env": "fuzz"}, "managedBy": "/subscriptions/x"}))
def test_resource_group_patch(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.group_url}?{RG_API}"
    before = state(cloud.http, url)
    if refused(send(cloud.http, "PATCH", url, body)):
        assert state(cloud.http, url) == before


@FUZZ
@given(body=mutated(vmss_body(0)), name=path_names())
def test_scale_set_put(cloud: Cloud, body: Any, name: str) -> None:
    url = f"{cloud.tenant.base}/{name}?{COMPUTE}"
    resources = resource_ids(cloud)
    if refused(send(cloud.http, "PUT", url, body)):
        assert_absent(cloud.http, url)
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
    url = f"{cloud.tenant.base}/keep?{COMPUTE}"
    before = state(cloud.http, url)
    if refused(send(cloud.http, "POST", f"{cloud.tenant.base}/keep/{verb}?{COMPUTE}", body)):
        assert state(cloud.http, url) == before


@FUZZ
@given(body=mutated({"properties": {"protectionPolicy": {"protectFromScaleIn": True}}, "tags": {"a": "b"}}))
def test_scale_set_vm_put(cloud: Cloud, body: Any) -> None:
    url = f"{cloud.steady_vm}?{COMPUTE}"
    before = state(cloud.http, url)
    if refused(send(cloud.http, "PUT", url, body)):
        assert state(cloud.http, url) == before


@FUZZ
@given(body=mutated(DEPLOYMENT), action=st.sampled_from(["PUT", "validate", "whatIf"]), name=path_names())
def test_deployment_put_validate_and_what_if(cloud: Cloud, body: Any, action: str, name: str) -> None:
    name = f"providers/Microsoft.Resources/deployments/{name}"
    if action == "PUT":
        url = f"{cloud.group_url}/{name}"
        if refused(send(cloud.http, "PUT", f"{url}?{RG_API}", body)):
            assert_absent(cloud.http, f"{url}?{RG_API}")
        return
    url = f"{cloud.quiet_url}/{name}"
    resources = resource_ids(cloud, cloud.quiet_url)
    send(cloud.http, "POST", f"{url}/{action}?{RG_API}", body)
    # validate and what-if record nothing, whatever their answer
    assert_absent(cloud.http, f"{url}?{RG_API}")
    assert resource_ids(cloud, cloud.quiet_url) == resources


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
    body=mutated({"properties": {"virtualMachineCount": 10, "coresLimit": 20, "vmScaleSetCount": 5}}),
    name=path_names(),
)
def test_admin_quota_put(cloud: Cloud, body: Any, name: str) -> None:
    url = f"{cloud.quotas}/{name}?{QUOTA_API}"
    if refused(send(cloud.operator, "PUT", url, body)):
        assert_absent(cloud.operator, url)


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


@FUZZ
@given(
    body=mutated({"properties": {"osDisk": {"uri": "/nonexistent/fuzz.raw", "osType": "Linux"}, "details": {}}}),
    publisher=path_names(),
)
def test_admin_platform_image_put(cloud: Cloud, body: Any, publisher: str) -> None:
    # An accepted PUT starts an import that fails (no such file): that is the operation's business, not this test's.
    url = f"{cloud.images.format(publisher=publisher)}/1.0.{next(IMAGE_VERSIONS)}?{IMAGE_API}"
    if refused(send(cloud.operator, "PUT", url, body)):
        assert_absent(cloud.operator, url)


# What the server logs when work a request started crashes: the request itself (its answer was a 500), an
# operation's step (retried, then InternalOperationError), the scale-set controller's pass.
CRASHES = re.compile(
    r"unhandled error in |operation \S+ \(\S+\) attempt \d+ failed|reconcile pass failed|could not record its failure"
)


def test_no_work_started_by_a_fuzzed_request_crashed(cloud: Cloud) -> None:
    """Runs after the fuzz tests of its database: an accepted body must not crash the operation, deployment or
    reconcile it started either, which no answer shows. (The operation runner's own retried hiccups, such as a
    deadlock between two claims on PostgreSQL, are not a request's doing and not counted here.)"""
    lines = cloud.server.log_path.read_text(errors="replace").splitlines()
    crashes = [i for i, line in enumerate(lines) if CRASHES.search(line) and not _retried_hiccup(lines, i)]
    # Each crash with the traceback after it: a CI failure must say what crashed, the log is gone after the run.
    assert not crashes, "\n\n".join("\n".join(lines[i : i + 40]) for i in crashes[:5])


# PostgreSQL aborting one of two transactions that wait on each other: the operation's step is retried (the log
# line says "attempt N failed", and the next attempt runs), which is how PostgreSQL expects clients to answer it.
HICCUPS = ("deadlock detected", "could not serialize access")


def _retried_hiccup(lines: list[str], at: int) -> bool:
    """The crash logged at ``at`` is an operation step PostgreSQL aborted for a deadlock or a serialization
    conflict (its traceback, up to the next log record, says so)."""
    if "attempt" not in lines[at]:
        return False
    end = next((j for j in range(at + 1, len(lines)) if re.match(r"\d{4}-\d\d-\d\d ", lines[j])), len(lines))
    return any(h in line for line in lines[at:end] for h in HICCUPS)


def _replace(value: Any, old: str, new: str) -> Any:
    """``value`` with every string ``old`` replaced by ``new`` (the owner is only known once the server runs)."""
    if value == old:
        return new
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value
