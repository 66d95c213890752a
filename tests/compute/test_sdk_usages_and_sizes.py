"""The official SDK lists the VM sizes this cloud offers and the subscription's compute usage against its quota
(VirtualMachineSizes_List, Usage_List), on every SDK line the venv has."""

from __future__ import annotations

from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


def test_vm_sizes_and_usage(server: AltoServer, sdk: SdkLine) -> None:
    cc = sdk.compute(server)
    sizes = {s.name: s for s in cc.virtual_machine_sizes.list("local")}
    assert sizes["Standard_A1"].number_of_cores == 1 and sizes["Standard_A1"].memory_in_mb == 1792
    assert "Standard_D2_v2" in sizes
    usage = {u.name.value: u for u in cc.usage.list("local")}
    assert {"cores", "virtualMachines", "virtualMachineScaleSets", "availabilitySets"} <= set(usage)
    for item in usage.values():
        assert item.unit == "Count" and 0 <= item.current_value <= item.limit
        assert item.name.localized_value


def test_resource_skus(server: AltoServer, sdk: SdkLine) -> None:
    """ResourceSkus_List: the sizes a scale set here accepts, as Azure lists them (type, location, capabilities)."""
    cc = sdk.compute(server)
    skus = [s for s in cc.resource_skus.list() if s.resource_type == "virtualMachines"]
    by_name = {s.name: s for s in skus}
    assert "Standard_A1" in by_name and "Standard_D2_v2" in by_name
    a1 = by_name["Standard_A1"]
    assert [loc.lower() for loc in a1.locations] == ["local"]
    capabilities = {c.name: c.value for c in a1.capabilities or []}
    assert capabilities.get("vCPUs") == "1", capabilities
    assert "Standard_D2s_v5" not in by_name  # not offered here: the current az line's default is refused
