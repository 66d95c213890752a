"""Autoscale settings (Microsoft.Insights) are stored and read back as written."""

from __future__ import annotations

from typing import Any

from tests.support.network import Group, error


def test_autoscale_settings_are_stored(group: Group) -> None:
    target = group.id("Microsoft.Compute/virtualMachineScaleSets", "web")
    rule = {
        "metricTrigger": {
            "metricName": "Percentage CPU",
            "metricResourceUri": target,
            "timeGrain": "PT1M",
            "statistic": "Average",
            "timeWindow": "PT5M",
            "timeAggregation": "Average",
            "operator": "GreaterThan",
            "threshold": 75,
        },
        "scaleAction": {"direction": "Increase", "type": "ChangeCount", "value": "1", "cooldown": "PT1M"},
    }
    body: dict[str, Any] = {
        "location": "local",
        "properties": {
            "targetResourceUri": target,
            "profiles": [{"name": "cpu", "capacity": {"minimum": 1, "maximum": "10", "default": "2"}, "rules": [rule]}],
        },
    }
    created = group.ok(group.put("microsoft.insights/autoscalesettings", "scale", body, "api-version=2015-04-01"), 201)
    assert created["type"] == "Microsoft.Insights/autoscalesettings"
    props = created["properties"]
    assert props["enabled"] is True and props["name"] == "scale" and props["targetResourceUri"] == target
    assert props["profiles"][0]["capacity"] == {"minimum": "1", "maximum": "10", "default": "2"}
    assert props["profiles"][0]["rules"] == [rule]
    current = group.ok(group.get("Microsoft.Insights/autoscalesettings", "scale", "api-version=2022-10-01"))
    assert current["properties"] == props

    inverted = {"name": "p", "capacity": {"minimum": 3, "maximum": 2, "default": 2}}
    bad_values: list[dict[str, Any]] = [{"targetResourceUri": "web"}, {"profiles": []}, {"profiles": [inverted]}]
    for bad in bad_values:
        wrong = {**body, "properties": {**body["properties"], **bad}}
        error(group.put("Microsoft.Insights/autoscalesettings", "bad", wrong, "api-version=2015-04-01"), 400,
              "InvalidParameter")  # fmt: skip
    error(group.put("Microsoft.Insights/autoscalesettings", "bad", body, "api-version=2014-01-01"), 400,
          "NoRegisteredProviderFound")  # fmt: skip
