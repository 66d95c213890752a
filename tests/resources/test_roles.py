"""Role-based access through the official authorization SDK: a Reader on a resource group lists and gets but every
write is 403 AuthorizationFailed; a Contributor scales; only an Owner assigns roles."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.arm import RG_API, error_of
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.tenancy import TenancyAdmin, subscribe
from tests.support.vmss import vmss_body

pytestmark = pytest.mark.sdk_lines("2020-09-01-hybrid", "current")

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("roles")
    server = AltoServer(root / "data", extra_args=("--upstream", str(make_catalog(root / "upstream")))).start()
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def body(capacity: int, secret: bool = True) -> dict[str, Any]:
    b = vmss_body(capacity)
    profile = b["properties"]["virtualMachineProfile"]
    profile["osProfile"]["linuxConfiguration"] = {"disablePasswordAuthentication": False}
    if not secret:
        profile["osProfile"].pop("adminPassword")
    return b


def principal_of(assignment: Any) -> str:
    """The principal of a role assignment model: under ``properties`` in 2015-07-01, flattened in 2022-04-01."""
    return str((getattr(assignment, "properties", None) or assignment).principal_id)


def refused(exc: pytest.ExceptionInfo[HttpResponseError], code: str = "AuthorizationFailed") -> bool:
    return exc.value.error is not None and exc.value.error.code == code


def test_reader_contributor_owner_on_a_resource_group(cloud: AltoServer, sdk: SdkLine) -> None:
    admin = TenancyAdmin(cloud)
    owner = subscribe(cloud, admin.principal("owner"), "default-offer")
    sub = owner["subscriptionId"]
    reader, contributor, delegate = (
        {**admin.principal(n), "subscriptionId": sub} for n in ("reader", "contributor", "delegate")
    )
    group = unique("rbac")
    for name in (group, f"{group}-other"):
        sdk.resource(cloud, owner).resource_groups.create_or_update(name, {"location": "local"})
    sdk.compute(cloud, owner).virtual_machine_scale_sets.begin_create_or_update(group, "web", body(1)).result()
    rg_scope = f"/subscriptions/{sub}/resourceGroups/{group}"

    auth = sdk.authorization(cloud, owner)
    definitions = list(auth.role_definitions.list(rg_scope, filter="roleName eq 'Reader'"))
    assert [d.name for d in definitions] == [READER]
    for who, role in ((reader, READER), (contributor, CONTRIBUTOR), (delegate, OWNER)):
        role_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        auth.role_assignments.create(rg_scope, str(uuid.uuid4()), sdk.role_assignment(role_id, who["clientId"]))
    listed = list(auth.role_assignments.list_for_scope(rg_scope, filter="atScope()"))
    assert len(listed) == 3

    # The reader: lists and gets in the group, sees the subscription; every write is refused.
    sets = sdk.compute(cloud, reader).virtual_machine_scale_sets
    assert [s.name for s in sets.list(group)] == ["web"] and sets.get(group, "web").sku.capacity == 1
    assert sub in [s.subscription_id for s in sdk.subscriptions(cloud, reader).subscriptions.list()]
    assert [g.name for g in sdk.resource(cloud, reader).resource_groups.list()] == [group], "only its group"
    with pytest.raises(HttpResponseError) as exc:
        sdk.resource(cloud, reader).resource_groups.get(f"{group}-other")
    assert exc.value.status_code == 403 and refused(exc)
    with pytest.raises(HttpResponseError) as exc:
        sets.begin_create_or_update(group, "web", body(2, secret=False)).result()
    assert exc.value.status_code == 403 and refused(exc)
    assert "virtualmachinescalesets/write" in exc.value.error.message.lower()
    with pytest.raises(HttpResponseError) as exc:
        sdk.resource(cloud, reader).resource_groups.create_or_update(unique("no"), {"location": "local"})
    assert exc.value.status_code == 403 and refused(exc), "the subscription is outside the reader's scope"
    with cloud.client(creds=reader) as c:
        r = c.delete(f"{rg_scope}?{RG_API}")
        assert r.status_code == 403 and error_of(r)["code"] == "AuthorizationFailed"

    # The contributor scales (the LRO's status URL is outside the group: any role in the subscription reads it).
    csets = sdk.compute(cloud, contributor).virtual_machine_scale_sets
    assert csets.begin_create_or_update(group, "web", body(2, secret=False)).result().sku.capacity == 2
    reader_role = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    for who in (reader, contributor):
        with pytest.raises(HttpResponseError) as exc:
            sdk.authorization(cloud, who).role_assignments.create(
                rg_scope, str(uuid.uuid4()), sdk.role_assignment(reader_role, admin.principal()["clientId"])
            )
        assert exc.value.status_code == 403 and refused(exc), "only an Owner assigns roles"

    # An Owner by assignment assigns (and removes) roles in its scope.
    extra = admin.principal()
    dauth = sdk.authorization(cloud, delegate)
    made = dauth.role_assignments.create(
        rg_scope, str(uuid.uuid4()), sdk.role_assignment(reader_role, extra["clientId"])
    )
    dauth.role_assignments.delete(rg_scope, made.name)

    # The owner takes the reader's role away: the subscription is gone for it.
    mine = [a for a in auth.role_assignments.list_for_scope(rg_scope) if a.name != made.name]
    reader_assignment = next(a for a in mine if principal_of(a) == reader["clientId"])
    auth.role_assignments.delete(rg_scope, reader_assignment.name)
    with pytest.raises(HttpResponseError) as exc:
        sets.get(group, "web")
    assert exc.value.status_code == 404 and refused(exc, "SubscriptionNotFound")
