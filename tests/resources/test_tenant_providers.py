"""Providers at tenant scope, a provider's permissions and zone peers, through the official SDK on every line:
what a tenant's tooling asks of Resource Manager beside its subscriptions."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")  # the 2018-03-01 profile (resources 2018-02-01) has none
def test_providers_at_tenant_scope(server: AltoServer, sdk: SdkLine) -> None:
    providers = sdk.resource(server).providers
    listed = {p.namespace: p for p in providers.list_at_tenant_scope()}
    assert {"Microsoft.Compute", "Microsoft.Network", "Microsoft.Resources"} <= set(listed)
    assert not any(ns.lower().endswith(".admin") for ns in listed), "tenants never see admin namespaces"
    compute = providers.get_at_tenant_scope("microsoft.compute")
    assert compute.id == "/providers/Microsoft.Compute" and compute.namespace == "Microsoft.Compute"
    assert compute.registration_state is None, "registration belongs to a subscription, not to the tenant"
    sets = next(t for t in compute.resource_types if t.resource_type == "virtualMachineScaleSets")
    assert sets.api_versions == sorted(sets.api_versions, reverse=True) and sets.locations == ["local"]
    with pytest.raises(HttpResponseError) as exc:
        providers.get_at_tenant_scope("Microsoft.Nothing")
    assert exc.value.status_code == 404 and exc.value.error.code == "InvalidResourceNamespace"


@pytest.mark.sdk_lines("current")  # only the current line has it
def test_provider_permissions(server: AltoServer, sdk: SdkLine) -> None:
    providers = sdk.resource(server).providers
    assert list(providers.provider_permissions("Microsoft.Compute").value) == []
    with pytest.raises(HttpResponseError) as exc:
        providers.provider_permissions("Microsoft.Nothing")
    assert exc.value.error.code == "InvalidResourceNamespace"


def test_check_zone_peers(server: AltoServer, sdk: SdkLine) -> None:
    subs = sdk.subscriptions(server).subscriptions
    sub = server.credentials["tenant"]["subscriptionId"]
    result = subs.check_zone_peers(sub, {"location": "local", "subscriptionIds": [f"subscriptions/{sub}"]})
    assert result.subscription_id == sub and result.location == "local"
    assert result.availability_zone_peers == [], "the location has no availability zones, so no zone has peers"
    with pytest.raises(HttpResponseError) as exc:
        subs.check_zone_peers(sub, {"location": "westeurope", "subscriptionIds": [f"subscriptions/{sub}"]})
    assert exc.value.status_code == 400 and exc.value.error.code == "LocationNotAvailableForResourceType"
    stranger = "00000000-0000-0000-0000-0000000000ff"
    with pytest.raises(HttpResponseError) as exc:
        subs.check_zone_peers(sub, {"location": "local", "subscriptionIds": [f"subscriptions/{stranger}"]})
    assert exc.value.status_code == 404 and exc.value.error.code == "SubscriptionNotFound"
