"""The rest of the SDK's scale-set surface (issue 17, compute half), through the official clients on every line:
scale-set extensions as child resources, extension and OS upgrade history, reapply, scale-out, approvals, the
list by location, and the operations this cloud answers as Azure answers a set without the feature they need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name, vm_extension
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

EXT_PUB, EXT_TYPE = "Microsoft.Azure.Extensions", "CustomScript"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("surface")
    upstream = root / "upstream"
    catalog = make_catalog(upstream, extra=[vm_extension(upstream, EXT_PUB, EXT_TYPE, "2.1.3")])
    server = AltoServer(root / "data", extra_args=("--upstream", str(catalog))).start()
    op = Operator(server)
    for product in (product_name(PUB, OFFER, SKU, "1.0.0"), f"{EXT_PUB}.{EXT_TYPE}.2.1.3"):
        assert op.download(product)["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def clients(server: AltoServer, sdk: SdkLine) -> tuple[Any, str]:
    rc = sdk.resource(server)
    group = unique("surf")
    rc.resource_groups.create_or_update(group, {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    return sdk.compute(server), group


def body(capacity: int, mode: str = "Automatic") -> dict[str, Any]:
    b = vmss_body(capacity)
    b["properties"]["upgradePolicy"] = {"mode": mode}
    b["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": False
    }
    return b


def extension(version: str = "2.1", command: str = "echo hi") -> dict[str, Any]:
    return {
        "properties": {
            "publisher": EXT_PUB,
            "type": EXT_TYPE,
            "typeHandlerVersion": version,
            "autoUpgradeMinorVersion": True,
            "settings": {"commandToExecute": command},
            "protectedSettings": {"secret": "s3cret"},
        }
    }


def wire_props(sdk: SdkLine, model: Any) -> dict[str, Any]:
    return dict(sdk.wire(model).get("properties") or {})


def model_extensions(cc: Any, sdk: SdkLine, group: str, name: str) -> dict[str, dict[str, Any]]:
    """The extensions as the scale set's own model shows them: the one source of truth."""
    wire = sdk.wire(cc.virtual_machine_scale_sets.get(group, name))
    profile = wire["properties"]["virtualMachineProfile"]
    return {e["name"]: e["properties"] for e in (profile.get("extensionProfile") or {}).get("extensions") or []}


def test_scale_set_extensions_are_the_model_s_extensions(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    exts = cc.virtual_machine_scale_set_extensions
    cc.virtual_machine_scale_sets.begin_create_or_update(group, "web", body(2)).result()
    assert list(exts.list(group, "web")) == []

    created = exts.begin_create_or_update(group, "web", "script", extension()).result()
    assert created.name == "script"
    assert created.id.endswith("/virtualMachineScaleSets/web/extensions/script")
    got = wire_props(sdk, exts.get(group, "web", "script"))
    assert got["publisher"] == EXT_PUB and got["typeHandlerVersion"] == "2.1"
    assert got["settings"] == {"commandToExecute": "echo hi"}
    assert got["provisioningState"] == "Succeeded"
    assert "protectedSettings" not in got, "secrets are never echoed"
    in_model = model_extensions(cc, sdk, group, "web")
    assert in_model["script"]["settings"] == {"commandToExecute": "echo hi"}
    assert "protectedSettings" not in in_model["script"]
    assert [e.name for e in exts.list(group, "web")] == ["script"]

    # Automatic upgrade mode: every instance took the new model, and the set's instance view counts the extension.
    vms = list(cc.virtual_machine_scale_set_vms.list(group, "web"))
    assert all(sdk.compute_properties(v).latest_model_applied for v in vms)
    view = cc.virtual_machine_scale_sets.get_instance_view(group, "web")
    summary = {e.name: {s.code: s.count for s in e.statuses_summary} for e in view.extensions}
    assert summary == {"script": {"ProvisioningState/succeeded": 2}}

    # PUT again (replace) with another command; the protected settings it omits are kept (clients can't resend).
    replaced = extension(command="echo again")
    replaced["properties"].pop("protectedSettings")
    exts.begin_create_or_update(group, "web", "script", replaced).result()
    assert model_extensions(cc, sdk, group, "web")["script"]["settings"] == {"commandToExecute": "echo again"}

    if hasattr(exts, "begin_update"):  # PATCH: 2020-06-01 and current
        exts.begin_update(group, "web", "script", {"properties": {"settings": {"commandToExecute": "echo p"}}}).result()
        patched = wire_props(sdk, exts.get(group, "web", "script"))
        assert patched["settings"] == {"commandToExecute": "echo p"} and patched["publisher"] == EXT_PUB

    # A handler the operator has not downloaded is refused, and nothing changes.
    with pytest.raises(HttpResponseError) as exc:
        exts.begin_create_or_update(group, "web", "other", extension(version="3.0")).result()
    assert exc.value.status_code == 404 and exc.value.error.code == "ArtifactNotFound"
    assert sorted(model_extensions(cc, sdk, group, "web")) == ["script"]

    with pytest.raises(ResourceNotFoundError):
        exts.get(group, "web", "nothere")

    if sdk.speaks("compute", "2020-06-01"):
        ru = cc.virtual_machine_scale_set_rolling_upgrades
        ru.begin_start_extension_upgrade(group, "web").result()
        latest = ru.get_latest(group, "web")
        latest_wire = sdk.wire(latest)["properties"]
        assert latest_wire["runningStatus"]["code"] == "Completed"
        assert latest_wire["progress"]["successfulInstanceCount"] == 2

    exts.begin_delete(group, "web", "script").result()
    assert list(exts.list(group, "web")) == [] and model_extensions(cc, sdk, group, "web") == {}
    exts.begin_delete(group, "web", "script").result()  # already gone: 204, as Azure


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_os_upgrade_history(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets = cc.virtual_machine_scale_sets
    sets.begin_create_or_update(group, "hist", body(1, mode="Rolling")).result()
    assert list(sets.get_os_upgrade_history(group, "hist")) == []
    cc.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade(group, "hist").result()
    cc.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade(group, "hist").result()
    history = [sdk.wire(h)["properties"] for h in sets.get_os_upgrade_history(group, "hist")]
    assert len(history) == 2
    assert all(h["runningStatus"]["code"] == "Completed" for h in history)
    assert history[0]["runningStatus"]["startTime"] >= history[1]["runningStatus"]["startTime"], "newest first"
    assert history[0]["targetImageReference"]["version"] == "1.0.0"
    assert history[0]["progress"]["successfulInstanceCount"] == 1


@pytest.mark.sdk_lines("current")
def test_current_line_actions(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, "act", body(1, mode="Manual")).result()

    sets.begin_scale_out(group, "act", {"capacity": 3}).result()
    assert sets.get(group, "act").sku.capacity == 3
    assert sorted(v.instance_id for v in vms.list(group, "act")) == ["0", "1", "2"]
    with pytest.raises(HttpResponseError) as exc:
        sets.begin_scale_out(group, "act", {"capacity": 1}).result()
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidParameter"

    # A model change under Manual leaves instances behind; reapply records it on them (no new disk needed).
    sets.begin_update(group, "act", {"tags": {"x": "y"}, "properties": {"overprovision": False}}).result()
    cc.virtual_machine_scale_set_extensions.begin_create_or_update(group, "act", "script", extension()).result()
    assert not any(v.properties.latest_model_applied for v in vms.list(group, "act"))
    sets.begin_reapply(group, "act").result()
    assert all(v.properties.latest_model_applied for v in vms.list(group, "act"))

    sets.begin_approve_rolling_upgrade(group, "act").result()
    vms.begin_approve_rolling_upgrade(group, "act", "1").result()
    with pytest.raises(HttpResponseError) as exc:
        vms.begin_approve_rolling_upgrade(group, "act", "99").result()
    assert exc.value.status_code == 404

    mine = [s.name for s in sets.list_by_location("local")]
    assert "act" in mine
    assert list(sets.list_by_location("elsewhere")) == []

    with pytest.raises(HttpResponseError) as exc:
        sets.begin_migrate_vm_availability_zone(group, "act", {"vmInstanceIds": {"instanceIds": ["0"]}}).result()
    assert exc.value.status_code == 409 and exc.value.error.code == "OperationNotAllowed"


@pytest.mark.sdk_lines("2020-09-01-hybrid", "current")
def test_features_this_cloud_lacks_answer_as_azure(cloud: AltoServer, sdk: SdkLine) -> None:
    cc, group = clients(cloud, sdk)
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, "plain", body(1)).result()
    calls = [
        lambda: sets.convert_to_single_placement_group(group, "plain", {"activePlacementGroupId": "x"}),
        lambda: sets.force_recovery_service_fabric_platform_update_domain_walk(
            group, "plain", platform_update_domain=0
        ),
        lambda: sets.begin_set_orchestration_service_state(
            group, "plain", {"serviceName": "AutomaticRepairs", "action": "Suspend"}
        ).result(),
        lambda: vms.simulate_eviction(group, "plain", "0"),
    ]
    for call in calls:
        with pytest.raises(HttpResponseError) as exc:
            call()
        assert exc.value.status_code == 409 and exc.value.error.code == "OperationNotAllowed", exc.value
        assert "'plain'" in exc.value.error.message, "it says which set lacks the feature"
    with pytest.raises(HttpResponseError) as exc:
        vms.simulate_eviction(group, "plain", "7")
    assert exc.value.status_code == 404, "an instance that does not exist is not found first"
    assert sdk.wire(sets.get(group, "plain"))["properties"]["provisioningState"] == "Succeeded", "nothing changed"


@pytest.mark.sdk_lines("current")
def test_edge_zone_images_answer_as_a_location_without_edge_zones(cloud: AltoServer, sdk: SdkLine) -> None:
    cc = sdk.compute(cloud)
    assert [p.name for p in cc.virtual_machine_images.list_publishers("local")] == [PUB]
    calls = [
        lambda: cc.virtual_machine_images.list_by_edge_zone("local", "losangeles"),
        lambda: cc.virtual_machine_images_edge_zone.list_publishers("local", "losangeles"),
        lambda: cc.virtual_machine_images_edge_zone.list_offers("local", "losangeles", PUB),
        lambda: cc.virtual_machine_images_edge_zone.list_skus("local", "losangeles", PUB, OFFER),
        lambda: cc.virtual_machine_images_edge_zone.list("local", "losangeles", PUB, OFFER, SKU),
        lambda: cc.virtual_machine_images_edge_zone.get("local", "losangeles", PUB, OFFER, SKU, "1.0.0"),
    ]
    for call in calls:
        with pytest.raises(HttpResponseError) as exc:
            call()
        assert exc.value.status_code == 400 and exc.value.error.code == "InvalidParameter"
        assert "no edge zones" in exc.value.error.message and exc.value.error.target == "edgeZone"
