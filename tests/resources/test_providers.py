"""Providers list every control-plane type VMSS templates declare, with the api-versions the hybrid profiles
give it."""

from __future__ import annotations

from altostratus.templates.profiles import PROFILE_NAMES, profile_api_version
from tests.support.network import TYPES
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


def test_providers_list_every_type_with_the_hybrid_profile_versions(server: AltoServer) -> None:
    rc = SdkLine("2020-09-01-hybrid").resource(server)
    listed = {
        f"{p.namespace}/{t.resource_type}".lower(): list(t.api_versions)
        for p in rc.providers.list()
        for t in p.resource_types
    }
    for rtype in TYPES:
        versions = listed[rtype.lower()]
        assert versions == sorted(versions, reverse=True), rtype
        for profile in PROFILE_NAMES:
            wanted = profile_api_version(profile, rtype)
            assert wanted is None or wanted in versions, (profile, rtype, wanted)
    storage = rc.providers.get("Microsoft.Storage")
    accounts = next(t for t in storage.resource_types if t.resource_type == "storageAccounts")
    assert accounts.api_versions[0] == "2025-08-01" and "2019-06-01" in accounts.api_versions
    assert "2015-06-15" in listed["microsoft.storage/storageaccounts"]
    assert {"2015-04-01", "2022-10-01"} <= set(listed["microsoft.insights/autoscalesettings"])
