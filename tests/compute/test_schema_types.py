"""The scale-set model is stored and answered in the schema's types: ``"true"`` in a boolean field is ``true``."""

from __future__ import annotations

from altostratus.compute.schema_types import with_schema_types
from tests.support.vmss import vmss_body


def test_spelled_out_booleans_and_integers_become_typed() -> None:
    body = vmss_body(2)
    body["sku"]["capacity"] = "3"
    nic = body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    nic["properties"]["primary"] = "true"  # what az vmss create's own template sends
    nic["properties"]["ipConfigurations"][0]["properties"]["primary"] = "True"
    body["properties"]["overprovision"] = "false"
    typed = with_schema_types(body)
    typed_nic = typed["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    assert typed_nic["properties"]["primary"] is True
    assert typed_nic["properties"]["ipConfigurations"][0]["properties"]["primary"] is True
    assert typed["properties"]["overprovision"] is False and typed["sku"]["capacity"] == 3
    assert nic["properties"]["primary"] == "true", "the input is not changed"


def test_other_values_are_left_for_validation() -> None:
    body = {"primary": "yes", "capacity": "3.5", "lun": "²", "computerNamePrefix": "true", "tags": {"primary": "x"}}
    assert with_schema_types(body) == body
