"""Microsoft.Insights/autoscalesettings: stored and validated; nothing acts on them (no autoscale engine yet).

Azure's VMSS quickstarts (``vmss-windows-autoscale``) declare an autoscale setting that targets the scale set; a
deployment of them must succeed, and the setting must read back as written. Azure Stack Hub itself has no
autoscale for scale sets, and neither has this cloud yet: the profiles and rules are checked for shape and kept,
and the scale set's capacity changes only when a client changes it.
"""

from __future__ import annotations

from typing import Any

from altostratus.arm.context import obj
from altostratus.arm.errors import invalid_parameter
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.fields import boolean, integer, parse_id
from altostratus.resources.generic import Draft, PlainType, register_plain_type

NS = "Microsoft.Insights"
VERSIONS = ("2022-10-01", "2021-05-01-preview", "2015-04-01")
MAX_PROFILES = 20
MAX_RULES = 10
MAX_CAPACITY = 1000


def _capacity(profile: dict[str, Any], at: str) -> dict[str, str]:
    capacity = obj(profile.get("capacity"), f"{at}.capacity")
    values = {
        key: integer(capacity.get(key), f"{at}.capacity.{key}", minimum=0, maximum=MAX_CAPACITY)
        for key in ("minimum", "maximum", "default")
    }
    if not values["minimum"] <= values["default"] <= values["maximum"]:
        raise invalid_parameter("The capacity needs minimum <= default <= maximum.", f"{at}.capacity")
    return {key: str(value) for key, value in values.items()}  # Azure's wire format has strings here


def complete_autoscale(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    target = props.get("targetResourceUri")
    if not isinstance(target, str) or parse_id(target) is None:
        raise invalid_parameter(
            "targetResourceUri must be a resource id (/subscriptions/{s}/resourceGroups/{g}/providers/...).",
            "properties.targetResourceUri",
        )
    profiles = props.get("profiles")
    if not isinstance(profiles, list) or not 1 <= len(profiles) <= MAX_PROFILES:
        raise invalid_parameter(f"'profiles' must be an array of 1 to {MAX_PROFILES} profiles.", "properties.profiles")
    for i, profile in enumerate(profiles):
        at = f"properties.profiles[{i}]"
        if not isinstance(profile, dict) or not isinstance(profile.get("name"), str):
            raise invalid_parameter("Every autoscale profile must be an object with a name.", at)
        profile["capacity"] = _capacity(profile, at)
        rules = profile.get("rules", [])
        if not isinstance(rules, list) or len(rules) > MAX_RULES or not all(isinstance(r, dict) for r in rules):
            raise invalid_parameter(f"'rules' must be an array of at most {MAX_RULES} objects.", f"{at}.rules")
    notifications = props.get("notifications")
    if notifications is not None and not isinstance(notifications, list):
        raise invalid_parameter("'notifications' must be an array.", "properties.notifications")
    props["enabled"] = boolean(props.get("enabled"), "properties.enabled", default=True)
    props["name"] = props.get("name") or d.name
    return {**d.body, "properties": props}


SPEC = PlainType(NS, "autoscalesettings", VERSIONS, complete_autoscale)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    register_plain_type(router, registry, SPEC)
